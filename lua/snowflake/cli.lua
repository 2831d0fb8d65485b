-- edge-snowflake operator commands on HAProxy's CLI (SPEC "Operator
-- interface"): snowflake status | set <key> <value> | park | unpark |
-- quarantine list|clear <id>. Each command returns the text to send back;
-- haproxy.lua registers them (M.COMMANDS) and sends it.
--
--   local ops = cli.new(deps)
--   local text = ops:set("clock.max_wait_ms", "25")
--
-- deps:
--   gen           the generator (probe)
--   lease         function() -> the process lease object, or nil before it exists
--   counters      function() -> core.counters()
--   setting, setting_set  function(name[, value]): the live runtime keys
--   apply_clock   function(): hands the live clock keys to the generator
--   clock         the live clock section (max_wait_ms, borrow, policy)
--   clock_source_text  function() -> "tsc", "clock_gettime (why)", ...
--   sleep         function(ms) (core.msleep: yields)
--   log           function(level, line), syslog levels
--   node          the node name
--   peers         function() -> { list = { {name=, addr=, status=, check=, since_s=}, ... } }
--                 (optional: a proxy without peers)

local config = require "snowflake.config"

local ipairs, pairs, tonumber, tostring, setmetatable = ipairs, pairs, tonumber, tostring, setmetatable
local string_format = string.format
local math_tointeger = math.tointeger
local table_concat = table.concat

local M = {}

-- syslog level of the operator's changes
local NOTICE = 5

-- an admin request (quarantine) is polled this often, at most this many times
local ADMIN_POLL_MS = 20
local ADMIN_POLLS = 300

-- { words, help, method }: what haproxy.lua registers; the method gets the
-- words after the command's own.
M.COMMANDS = {
  { { "snowflake", "status" }, "snowflake status : show the lease, clock policy and counters", "status" },
  { { "snowflake", "set" },
    "snowflake set <key> <value> : change a runtime key (clock.max_wait_ms, clock.borrow, http.max_batch, limits.retry_after_s)",
    "set" },
  { { "snowflake", "park" }, "snowflake park : stop minting (503 parked), keep the lease", "park" },
  { { "snowflake", "unpark" }, "snowflake unpark : resume minting", "unpark" },
  { { "snowflake", "quarantine" }, "snowflake quarantine list|clear <id> : show or clear quarantined worker IDs",
    "quarantine" },
}

local Cli = {}
Cli.__index = Cli

function M.new(deps)
  local self = setmetatable({}, Cli)
  for k, v in pairs(deps) do self[k] = v end
  return self
end

function Cli:status()
  local lease = self.lease()
  local st = lease and lease:status() or {}
  local c = self.counters()
  local ok, code = self.gen:probe()
  local lines = {
    "state: " .. tostring(st.state or "connecting"),
    "can_mint: " .. tostring(ok == true or code == "clock_wait") .. (ok and "" or (" (" .. tostring(code) .. ")")),
    "worker: " .. tostring(st.worker or "none"),
    "lease_ms_left: " .. tostring(st.lease_ms_left or 0),
    "reason: " .. tostring(st.reason or "no_lease"),
    "detail: " .. tostring(st.detail or ""),
    "session: " .. tostring(st.session or "none") .. " timeout_ms=" .. tostring(st.negotiated_timeout_ms or 0),
    "marks: local=" .. tostring(st.local_mark_ms or 0) .. " registry=" .. tostring(st.registry_mark_ms or 0),
    "clock.max_wait_ms: " .. tostring(self.clock.max_wait_ms),
    "clock.borrow: " .. tostring(self.clock.borrow),
    "clock.policy: " .. (self.clock.policy and "operator function" or "default ladder"),
    "clock.source: " .. self.clock_source_text(),
    "http.max_batch: " .. tostring(self.setting("http.max_batch")),
    "limits.retry_after_s: " .. tostring(self.setting("limits.retry_after_s")),
    "ids_issued: " .. tostring(c.ids),
    "node: " .. self.node,
  }
  -- one line a peer: what the handoff backend's health checks see
  local list = self.peers and self.peers().list or {}
  lines[#lines + 1] = "peers: " .. (#list == 0 and "none" or tostring(#list))
  for _, p in ipairs(list) do
    lines[#lines + 1] = string_format("peer %s: %s %s check=%s since_s=%s", p.name, tostring(p.addr),
      tostring(p.status), tostring(p.check), tostring(p.since_s))
  end
  return table_concat(lines, "\n") .. "\n"
end

function Cli:set(key, value)
  if not key or not value then
    return "usage: snowflake set <key> <value>\n"
  end
  local section, name, v = config.parse_runtime(key, value)
  if not section then
    return "error: " .. name .. "\n"
  end
  local setting = section .. "." .. name
  if setting == "clock.borrow" then v = v and 1 or 0 end
  self.setting_set(setting, v)
  if section == "clock" then self.apply_clock() end
  self.log(NOTICE, "runtime change: " .. setting .. " = " .. tostring(value))
  return "ok: " .. setting .. " = " .. tostring(value) .. "\n"
end

local function park(self, on)
  local lease = self.lease()
  if not lease then
    return "error: the lease has not started\n"
  end
  lease:park(on)
  self.log(NOTICE, on and "parked by the operator" or "unparked by the operator")
  return on and "ok: parked\n" or "ok: unparked\n"
end

function Cli:park() return park(self, true) end
function Cli:unpark() return park(self, false) end

function Cli:quarantine(op, id)
  local lease = self.lease()
  if not lease then
    return "error: the lease has not started\n"
  end
  local req
  if op == "list" then
    req = lease:admin("quarantine_list")
  elseif op == "clear" and id and id:match("^%d+$") and #id <= 5 then
    req = lease:admin("quarantine_clear", math_tointeger(tonumber(id)))
  else
    return "usage: snowflake quarantine list | snowflake quarantine clear <id>\n"
  end
  -- the registry call runs on a thread of its own; yield while it does
  for _ = 1, ADMIN_POLLS do
    local done, text_or_code, detail = req:poll()
    if done then
      if op == "clear" then self.log(NOTICE, "quarantine of worker " .. id .. " cleared by the operator") end
      return op == "list" and (text_or_code ~= "" and text_or_code or "(none)\n") or ("ok: cleared " .. id .. "\n")
    elseif text_or_code then
      return "error: " .. text_or_code .. ": " .. tostring(detail) .. "\n"
    end
    self.sleep(ADMIN_POLL_MS)
  end
  return "error: the registry did not answer within 6 s\n"
end

return M
