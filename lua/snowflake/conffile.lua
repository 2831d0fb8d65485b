-- The operator's config file the package installs (/etc/edge-snowflake/config.lua),
-- written from the schema (snowflake.config) so that it cannot drift from it:
-- every key, commented out, at its default, with one line saying what it is.
-- Loaded as it is, it gives config.build({}); with every key uncommented, too
-- (the config specs check both).
--
--   lua5.3 -e 'io.write(require("snowflake.conffile").text())' >config.lua   -- debian/rules

local config = require "snowflake.config"

local ipairs, pairs, next, type, tostring, error = ipairs, pairs, next, type, tostring, error
local string_format, string_rep = string.format, string.rep
local table_concat = table.concat

local M = {}

M.sections = { "lease", "state", "http", "limits", "clock", "layout" }

-- one line a key; a key without a line here fails the build (M.text raises)
M.doc = {
  ["layout.epoch_ms"] = "the IDs' epoch, Unix ms (2024-01-01T00:00:00Z); never change it on a serving fleet",
  ["layout.timestamp_bits"] = "bits of milliseconds since the epoch (41: about 69 years)",
  ["layout.worker_bits"] = "bits of worker ID (10: 1024 workers; a reload's new worker takes its own)",
  ["layout.sequence_bits"] = "bits of sequence a millisecond (12: 4096 IDs/ms/worker); the three sum to 63",
  ["clock.max_wait_ms"] = "a clock that stepped back by up to this is waited out; beyond it: 503 clock_regressed",
  ["clock.borrow"] = "use the rest of the frozen millisecond before waiting",
  ["clock.policy"] = "function(regression) -> \"wait\" | \"refuse\": an operator's own ladder",
  ["clock.discipline"] = "an unsynchronised clock at start: \"refuse\", \"log\" or \"ignore\"",
  ["clock.max_error_ms"] = "the NTP maximum error above which the clock counts as unsynchronised",
  ["clock.source"] = "\"auto\" (the TSC where the machine allows it) or \"clock_gettime\"",
  ["lease.zk_hosts"] = "the ZooKeeper ensemble, host:port[,host:port...]: the same on every proxy",
  ["lease.root"] = "the registry root: one per fleet (every proxy of a fleet the same)",
  ["lease.node_name"] = "this proxy's name in the registry (default: the host name)",
  ["lease.session_timeout_ms"] = "the ZooKeeper session timeout asked for (the fence follows it)",
  ["lease.margin_ms"] = "minting stops this long before the lease deadline",
  ["lease.registry_ahead_ms"] = "how far ahead the mark in ZooKeeper is kept (0: 1.5 to 2 session timeouts)",
  ["lease.start_bound_ms"] = "the longest a start waits for the clock to pass the marks, else it refuses",
  ["lease.reclaim_delay_ms"] = "how long a worker ID rests after its holder went before it is claimed again",
  ["lease.start_timeout_ms"] = "how long a start waits for its first lease",
  ["lease.auth_file"] = "a file (mode 0600, readable by edge-snowflake) holding user:password: ZooKeeper ACLs",
  ["lease.require_acl"] = "refuse to claim under a root anyone may write",
  ["state.dir"] = "the local marks (one file a worker ID); the unit may write only here and in /run",
  ["state.ahead_ms"] = "how far ahead of the clock the local mark is stored (a restart waits at most this)",
  ["http.max_batch"] = "the largest count GET /ids takes",
  ["http.node_name"] = "the X-Snowflake-Node header (default: lease.node_name)",
  ["http.peers"] = "the other proxies, name = \"a.b.c.d:port\": a request this one cannot mint for goes there",
  ["http.peer_check_ms"] = "how often each peer's /health is checked",
  ["http.bind"] = "where the API listens: \"a.b.c.d:port\" (\"0.0.0.0:8080\": every address, for a VIP)",
  ["http.threads"] = "HAProxy threads (nbthread)",
  ["http.log_target"] = "where HAProxy logs: \"stderr\" (the journal), \"/dev/log\" or \"a.b.c.d:port\"",
  ["http.admin_socket"] = "the stats socket: snowflake status / set / park / quarantine (socat)",
  ["limits.rate_per_10s"] = "requests a caller's address may make in 10 s (then 429)",
  ["limits.retry_after_s"] = "the Retry-After of a 429 or 503",
  ["limits.maxconn"] = "connections held at once (HAProxy's maxconn; past ~32000 raise the unit's LimitNOFILE)",
  ["limits.conn_per_addr"] = "connections one caller address may hold at once (then closed at accept)",
}

local sorted_keys = config.sorted_keys

-- a default as Lua source
local function literal(v)
  if v == nil then return "nil" end
  if type(v) == "string" then return string_format("%q", v) end
  if type(v) == "table" then
    if next(v) == nil then return "{}" end
    error("conffile: no literal for a non-empty table", 0)
  end
  return tostring(v)
end

-- The file's text. path: what its header calls it.
function M.text(path)
  path = path or "/etc/edge-snowflake/config.lua"
  local seen = {}
  for _, section in ipairs(M.sections) do seen[section] = true end
  for section in pairs(config.schema) do
    if not seen[section] then error("conffile: section " .. section .. " has no place in M.sections", 0) end
  end
  for name in pairs(M.doc) do
    local section, key = name:match("^(%w+)%.([%w_]+)$")
    if not (section and config.schema[section] and config.schema[section][key]) then
      error("conffile: M.doc names " .. name .. ", which is no key of the schema", 0)
    end
  end
  local out = {
    "-- " .. path .. ": edge-snowflake's one configuration (a Lua chunk returning a table).",
    "-- Every key is here at its default, commented out: uncomment a line to change it.",
    "-- Check it with `edge-snowflake check`; apply it with `systemctl reload edge-snowflake`",
    "-- (layout and lease changes take a new worker: a reload's new worker claims its own lease).",
    "-- Unknown keys and bad values stop the start (and a reload changes nothing), naming the key.",
    "-- Written from the schema (lua/snowflake/config.lua) when the package was built.",
    "return {",
  }
  for _, section in ipairs(M.sections) do
    out[#out + 1] = "  " .. section .. " = {"
    local specs = config.schema[section]
    for _, key in ipairs(sorted_keys(specs)) do
      local name = section .. "." .. key
      local doc = M.doc[name]
      if not doc then error("conffile: " .. name .. " has no line in M.doc", 0) end
      local assignment = string_format("%s = %s,", key, literal(specs[key].default))
      out[#out + 1] = string_format("    -- %s%s-- %s", assignment, string_rep(" ", math.max(1, 36 - #assignment)), doc)
    end
    out[#out + 1] = "  },"
  end
  out[#out + 1] = "}"
  return table_concat(out, "\n") .. "\n"
end

return M
