-- edge-snowflake inside HAProxy 2.6: the file `lua-load-per-thread` loads.
--
-- Runs once per HAProxy thread, each in its own Lua state; what must be
-- shared lives in C (the process generator, the process lease, counters,
-- runtime settings). The body runs before HAProxy forks and under
-- `haproxy -c`: it only reads and checks the config (a bad key stops the
-- start, naming it) and registers; the lease starts from a task, which runs
-- only in the serving process, once per process.
--
-- Paths:
--   GET /id     fast path in the configuration: the C function as the converter
--               lua.sf_id; on any refusal the request falls through to the service below
--   GET /id and /ids the fast path did not answer -> action lua.sf_route
--               (snowflake/handoff.lua): a refusal the ladder will not wait out
--               goes to a healthy peer (backend sf_peers)
--   everything else (and /id refusals, clock waits) -> service lua.snowflake
--               (snowflake/service.lua)
-- The operator's CLI commands are in snowflake/cli.lua.

local core_sf = require "snowflake.core"
local config = require "snowflake.config"
local boot = require "snowflake.boot"
local ladder_mod = require "snowflake.ladder"
local service = require "snowflake.service"
local handoff_mod = require "snowflake.handoff"
local cli = require "snowflake.cli"

local ipairs, pairs, tostring, setmetatable = ipairs, pairs, tostring, setmetatable

-- ---- the config ---------------------------------------------------------------

local config_path = os.getenv("SNOWFLAKE_CONFIG")
local cfg, err
if config_path and config_path ~= "" then
  cfg, err = config.load(config_path)
else
  cfg, err = config.build({})
end
if not cfg then
  error("edge-snowflake: " .. err, 0)
end

core_sf.clock_source(cfg.clock.source)
local gen, gcode, gdetail = core_sf.process_generator(cfg.layout)
if not gen then
  error("edge-snowflake: " .. tostring(gcode) .. ": " .. tostring(gdetail), 0)
end

local NODE = cfg.http.node_name or cfg.lease.node_name or core_sf.hostname()

-- runtime-tunable values, shared by every thread of the process
core_sf.setting_init("http.max_batch", cfg.http.max_batch)
core_sf.setting_init("limits.retry_after_s", cfg.limits.retry_after_s)
core_sf.setting_init("clock.max_wait_ms", cfg.clock.max_wait_ms)
core_sf.setting_init("clock.borrow", cfg.clock.borrow and 1 or 0)

local function log(level, line)
  core.log(level, "edge-snowflake: " .. line)
end

-- the ladder reads the live values (a CLI `set` in any thread applies to all)
local clock_view = setmetatable({}, { __index = function(_, key)
  if key == "max_wait_ms" then return core_sf.setting_get("clock.max_wait_ms") end
  if key == "borrow" then return core_sf.setting_get("clock.borrow") == 1 end
  return cfg.clock[key]
end })
local ladder = ladder_mod.new(clock_view, core.msleep, log, core_sf.count)

local function apply_clock()
  gen:set_max_wait_ms(ladder:generator_bound_ms())
  gen:set_borrow(clock_view.borrow)
end
apply_clock()

local function lease_status()
  local lease = core_sf.process_lease()
  return lease and lease:status()
end

local function clock_source_text()
  local source, why_not = core_sf.clock_source()
  return why_not == "" and source or (source .. " (" .. why_not .. ")")
end

-- The peer backend's servers as their health checks see them:
-- { up = { name = 1|0 }, list = { {name=, addr=, status=, check=, since_s=}, ... } }
local function peers()
  local out = { up = {}, list = {} }
  local be = core.backends["sf_peers"]
  if not be then return out end
  for name, srv in pairs(be.servers) do
    local st = srv:get_stats()
    -- "UP", or "UP 1/3" while a failing check has not yet taken it out
    out.up[name] = tostring(st.status):find("^UP") and 1 or 0
    out.list[#out.list + 1] = { name = name, addr = srv:get_addr(), status = st.status,
                                check = st.check_status, since_s = st.lastchg }
  end
  table.sort(out.list, function(a, b) return a.name < b.name end)
  return out
end

local svc = service.new({
  gen = gen, lease_status = lease_status, setting = core_sf.setting_get,
  count = core_sf.count, counters = core_sf.counters, ladder = ladder,
  sleep = core.msleep, yield = core.yield, log = log,
  wall_ns = core_sf.wall_ns, mono_ns = core_sf.mono_ns, clock_source = core_sf.clock_source,
  node = NODE, layout = cfg.layout, peers = peers,
})

local handoff = handoff_mod.new({ gen = gen, ladder = ladder, count = core_sf.count, log = log,
                                  wall_ns = core_sf.wall_ns })

local ops = cli.new({
  gen = gen, lease = core_sf.process_lease, counters = core_sf.counters,
  setting = core_sf.setting_get, setting_set = core_sf.setting_set, apply_clock = apply_clock,
  clock = clock_view, clock_source_text = clock_source_text, sleep = core.msleep, log = log, node = NODE,
  peers = peers,
})

-- The lease, started once per serving process; then its log lines (queued
-- by its own threads) go to HAProxy's log.
local function run_lease()
  if not core_sf.process_once("lease") then return end
  local ok, code, problem = boot.check_discipline(cfg, core_sf.discipline, log)
  if not ok then
    log(core.err, problem .. "; not minting (clock.discipline = \"refuse\")")
    gen:revoke(code)
    return
  end
  log(core.info, "clock: minting reads " .. clock_source_text())
  if not core_sf.module_pinned then
    log(core.warning, "snowflake.core could not pin itself in memory (dlopen RTLD_NODELETE): "
      .. "this worker may crash when it exits (a reload, a stop)")
  end
  core_sf.mkdir_p(cfg.state.dir)
  local lease, started_or_code, detail = core_sf.process_lease_start(gen, boot.lease_options(cfg, NODE))
  if not lease then
    log(core.err, "cannot start the lease: " .. tostring(started_or_code) .. ": " .. tostring(detail))
    return
  end
  while true do
    local lines, dropped = core_sf.logs()
    for i = 1, #lines do
      core.log(lines[i].level, "edge-snowflake " .. lines[i].line)
    end
    if dropped > 0 then
      log(core.warning, dropped .. " lease log lines dropped (queue full)")
    end
    core.msleep(100)
  end
end

-- ---- registration ---------------------------------------------------------------

-- The /id fast path. Registered as a converter, not a sample fetch: HAProxy
-- 2.6 builds a Lua txn object (with its tables and metatables) for every
-- fetch call and none for a converter, ~22k instructions a call, half of an
-- /id request. The converter ignores its input (the config feeds it int(0)).
core.register_converters("sf_id", gen:fetch_id())

-- The 429's Retry-After (haproxy.cfg): the live limits.retry_after_s, read
-- only when the rate limit answers.
core.register_converters("sf_retry_after", function()
  return core_sf.setting_get("limits.retry_after_s")
end)

-- The handoff decision, on the slow path only (haproxy.cfg): sets
-- txn.sf_handoff to the refusal when the request goes to a peer.
core.register_action("sf_route", { "http-req" }, function(txn)
  local reason = handoff:route(function() return txn.f:nbsrv("sf_peers") end)
  if reason then txn:set_var("txn.sf_handoff", reason) end
end, 0)

core.register_service("snowflake", "http", function(applet)
  local values = applet.headers["accept"]
  local status, headers, body = svc:respond({
    method = applet.method, path = applet.path, qs = applet.qs, accept = values and values[0],
    from_peer = applet:get_var("txn.sf_from_peer") == 1,
  })
  applet:set_status(status)
  for _, h in ipairs(headers) do applet:add_header(h[1], h[2]) end
  applet:start_response()
  if applet.method ~= "HEAD" then applet:send(body) end
end)

core.register_task(run_lease)

for _, c in ipairs(cli.COMMANDS) do
  local method = c[3]
  core.register_cli(c[1], c[2], function(applet, _, _, a, b)
    applet:send(ops[method](ops, a, b))
  end)
end
