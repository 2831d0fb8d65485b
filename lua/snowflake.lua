-- edge-snowflake library mode: mint IDs in-process, from plain Lua 5.3/5.4
-- (or from Lua inside HAProxy, which passes its own sleep function).
--
--   local snowflake = require "snowflake"
--   local node = assert(snowflake.start{ lease = { zk_hosts = "127.0.0.1:2181", root = "/snowflake/x" },
--                                         state = { dir = "/var/lib/snowflake/a" } })
--   local id, code, detail = node:next_id()
--   local ids = node:next_ids(500)
--   local st = node:status()
--   node:stop()
--
-- Safety lives in C (snowflake.core): the generator never issues at or below
-- its last (timestamp, sequence), refuses past the lease's fence and above
-- the durable marks. This file holds the policy: what to do on a clock
-- regression, when start-up is good enough, where logs go.

local core = require "snowflake.core"
local config = require "snowflake.config"
local ladder = require "snowflake.ladder"

local type, pairs, setmetatable, tostring = type, pairs, setmetatable, tostring
local string_format = string.format
local io_stderr = io.stderr

local M = { VERSION = core.VERSION }

-- syslog levels, as the lease reports them
local LEVEL_NAMES = { [0] = "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" }


local function default_log(level, line)
  if level <= 5 then
    io_stderr:write(string_format("edge-snowflake %s: %s\n", LEVEL_NAMES[level] or level, line))
  end
end

local Node = {}
Node.__index = Node

-- Hands queued lease log lines to the node's logger.
function Node:drain_logs()
  local lines, dropped = core.logs()
  for i = 1, #lines do
    self._log(lines[i].level, lines[i].line)
  end
  if dropped > 0 then
    self._log(4, string_format("%d lease log lines were dropped (queue full)", dropped))
  end
end

-- The slow path after a refusal: the shared clock ladder, then a record of
-- the refusal for status().
function Node:_retry(mint, code, detail, extra)
  local r1, r2, r3, r4 = self._ladder:retry(mint, code, detail, extra)
  if r1 then return r1, r2, r3 end
  if r2 == "clock_regressed" then
    self._log(3, "PAGE clock regressed: " .. tostring(r3))
  end
  self._last_refusal, self._last_refusal_ms = r2, core.wall_ns() // 1000000
  return nil, r2, r3, r4
end

-- node:next_id() -> integer | nil, code, detail, extra (extra.wait_ns, as gen:next)
function Node:next_id()
  local gen = self._gen
  local id, code, detail, extra = gen:next()
  if id then return id end
  if not self._lease then return nil, "stopped", "the node is stopped", { wait_ns = 0 } end
  return self:_retry(function() return gen:next() end, code, detail, extra)
end

-- node:next_ids(n) -> array of n increasing integers | nil, code, detail, extra
function Node:next_ids(n)
  if math.type(n) ~= "integer" then
    error(string_format("bad argument #1 to 'next_ids' (count must be an integer, got %s)", tostring(n)), 2)
  end
  local max_batch = self._cfg.http.max_batch
  if n < 1 or n > max_batch then
    error(string_format("bad argument #1 to 'next_ids' (count must be 1..%d, got %d)", max_batch, n), 2)
  end
  local gen = self._gen
  local ids, code, detail, extra = gen:next_ids(n)
  if ids then return ids end
  if not self._lease then return nil, "stopped", "the node is stopped", { wait_ns = 0 } end
  return self:_retry(function() return gen:next_ids(n) end, code, detail, extra)
end

-- node:decode(id) -> {timestamp_ms=, worker=, sequence=} | nil, code, detail
function Node:decode(id)
  return self._gen:decode(id)
end

local SIMPLE_STATE = {
  connecting = "waiting", claiming = "waiting", waiting = "waiting",
  minting = "minting", parked = "parked", stopped = "parked",
}

-- node:status() -> { state = "minting"|"waiting"|"parked", worker =, lease_ms_left =,
--                    reason =, detail =, lease = <the lease's full status> }
function Node:status()
  if not self._lease then
    return { state = "parked", reason = "stopped", detail = "the node is stopped", lease_ms_left = 0 }
  end
  self:drain_logs()
  local ls = self._lease:status()
  local st = {
    state = SIMPLE_STATE[ls.state] or "parked",
    worker = ls.worker,
    lease_ms_left = ls.lease_ms_left,
    reason = ls.reason ~= "ok" and ls.reason or nil,
    detail = ls.detail,
    lease = ls,
    clock = self._gen:stats(),
  }
  -- a clock regression parks minting without the lease knowing
  local now_ms = core.wall_ns() // 1000000
  if st.state == "minting" and self._last_refusal == "clock_regressed"
      and now_ms - self._last_refusal_ms < 1000 then
    st.state, st.reason = "parked", "clock_regressed"
    st.detail = "the clock went back further than clock.max_wait_ms"
  end
  if st.state == "waiting" and ls.mint_ready_unix_ms > 0 then
    st.mint_ready_unix_ms = ls.mint_ready_unix_ms
  end
  return st
end

-- node:set(key, value): a runtime-tunable key ("clock.max_wait_ms", ...)
function Node:set(name, value)
  local section, key, v = config.parse_runtime(name, tostring(value))
  if not section then return nil, "invalid_config", key end
  self._cfg[section][key] = v
  self:_apply_clock()
  return true
end

function Node:_apply_clock()
  self._gen:set_borrow(self._cfg.clock.borrow)
  self._gen:set_max_wait_ms(self._ladder:generator_bound_ms())
end

function Node:park(on)
  if self._lease then self._lease:park(on and true or false) end
end

function Node:quarantine_list()
  return self._lease:quarantine_list()
end

function Node:quarantine_clear(worker)
  return self._lease:quarantine_clear(worker)
end

-- node:stop(): releases the lease (deletes the worker node, closes the
-- session). Minting refuses "stopped" afterwards.
function Node:stop()
  if self._lease then
    self._lease:stop()
    self._lease = nil
    self:drain_logs()
    M._running = nil
  end
end

-- Checks the kernel's clock discipline per clock.discipline; returns true or
-- nil, code, detail.
local function check_discipline(cfg, log)
  if cfg.clock.discipline == "ignore" then return true end
  local d, _, detail = core.discipline()
  if not d then
    log(4, "cannot read the clock discipline: " .. tostring(detail))
    return true
  end
  local problem
  if not d.synchronised then
    problem = { "clock_unsynchronised", "the kernel reports the clock as unsynchronised (no NTP discipline)" }
  elseif d.max_error_us > cfg.clock.max_error_ms * 1000 then
    problem = { "clock_max_error", string_format("the kernel's maximum clock error is %d ms, above clock.max_error_ms = %d",
      d.max_error_us // 1000, cfg.clock.max_error_ms) }
  end
  if not problem then return true end
  if cfg.clock.discipline == "refuse" then
    log(3, problem[2] .. "; refusing to start (clock.discipline = \"refuse\")")
    return nil, problem[1], problem[2]
  end
  log(4, problem[2] .. " (clock.discipline = \"log\")")
  return true
end

-- snowflake.start(config[, options]) -> node | nil, code, detail
-- config: the sections of SPEC "Operator interface" (see snowflake.config).
-- options: log = function(level, line) (syslog levels; default: warnings and
-- worse to stderr), sleep = function(ms) (default: block the thread),
-- wait = false to return before the node mints (poll node:status()).
function M.start(input, options)
  options = options or {}
  if type(options) ~= "table" then
    error("bad argument #2 to 'start' (options must be a table)", 2)
  end
  for k in pairs(options) do
    if k ~= "log" and k ~= "sleep" and k ~= "wait" then
      return nil, "invalid_config", "unknown start option " .. tostring(k)
    end
  end
  local cfg, err = config.build(input)
  if not cfg then return nil, "invalid_config", err end
  if M._running then
    return nil, "invalid_argument", "a node is already running in this process: stop it first"
  end
  local log = options.log or default_log
  local ok, code, detail = check_discipline(cfg, log)
  if not ok then return nil, code, detail end

  core.clock_source(cfg.clock.source)
  local gen, gcode, gdetail = core.process_generator(cfg.layout)
  if not gen then return nil, gcode, gdetail end
  local made, mcode, mdetail = core.mkdir_p(cfg.state.dir)
  if not made then return nil, mcode, mdetail end

  local lease, lcode, ldetail = core.lease_start(gen, {
    zk_hosts = cfg.lease.zk_hosts,
    root = cfg.lease.root,
    node_name = cfg.lease.node_name,
    state_dir = cfg.state.dir,
    session_timeout_ms = cfg.lease.session_timeout_ms,
    margin_ms = cfg.lease.margin_ms,
    registry_ahead_ms = cfg.lease.registry_ahead_ms,
    local_ahead_ms = cfg.state.ahead_ms,
    start_bound_ms = cfg.lease.start_bound_ms,
    reclaim_delay_ms = cfg.lease.reclaim_delay_ms,
  })
  if not lease then return nil, lcode, ldetail end

  local sleep = options.sleep or core.sleep_ms
  local node = setmetatable({
    _cfg = cfg, _gen = gen, _lease = lease, _log = log, _sleep = sleep,
    _ladder = ladder.new(cfg.clock, sleep, log),
  }, Node)
  node:_apply_clock()
  M._running = node

  if options.wait == false then return node end
  local deadline = core.mono_ns() + cfg.lease.start_timeout_ms * 1000000
  while true do
    local st = node:status()
    if st.state == "minting" then return node end
    if core.mono_ns() >= deadline then
      node:stop()
      return nil, st.reason or "no_lease", string_format(
        "not minting after lease.start_timeout_ms = %d: %s", cfg.lease.start_timeout_ms, st.detail or "")
    end
    node._sleep(20)
  end
end

M.config = config

return M
