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
--   everything else (and /id refusals, clock waits) -> service lua.snowflake

local core_sf = require "snowflake.core"
local config = require "snowflake.config"
local http = require "snowflake.http"
local ladder_mod = require "snowflake.ladder"

local tostring, ipairs, pairs = tostring, ipairs, pairs
local string_format = string.format

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
local SEQ_BITS = cfg.layout.sequence_bits
local WORKER_MASK = (1 << cfg.layout.worker_bits) - 1

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

-- ---- the fast path ----------------------------------------------------------

-- Registered as a converter, not a sample fetch: HAProxy 2.6 builds a Lua txn
-- object (with its tables and metatables) for every fetch call and none for a
-- converter, ~22k instructions a call, half of an /id request. The converter
-- ignores its input (the config feeds it int(0)).
core.register_converters("sf_id", gen:fetch_id())

-- ---- the service --------------------------------------------------------------

local last_page_ms = 0

-- extra: a refusal's table of named extras (extra.wait_ns), or nil
local function retry_after(code, extra)
  if code == "clock_regressed" or code == "clock_wait" then
    return tostring(math.max(1, ((extra and extra.wait_ns or 0) + 999999999) // 1000000000))
  end
  return tostring(core_sf.setting_get("limits.retry_after_s"))
end

local function refusal(code, detail, extra)
  core_sf.count("refusal." .. code, 1)
  if code == "clock_regressed" then
    local now = core_sf.wall_ns() // 1000000
    if now - last_page_ms >= 1000 then
      last_page_ms = now
      log(core.alert, "PAGE clock regressed, refusing: " .. tostring(detail))
    end
  end
  return http.error(code, detail or code, { { "Retry-After", retry_after(code, extra) } })
end

local function id_headers(id)
  return {
    { "X-Snowflake-Worker", tostring((id >> SEQ_BITS) & WORKER_MASK) },
    { "X-Snowflake-Node", NODE },
  }
end

local function mint_one()
  return gen:next()
end

-- A process that has just started (a reload's new worker takes the sockets
-- at once) holds no lease for a moment: while its lease is still on the way,
-- yield and try again instead of refusing. Bounded, and only for a young
-- lease: a node whose registry is down answers 503 at once.
local STARTUP_GRACE_MS = 10000
local STARTUP_WAIT_MS = 3000
local ON_THE_WAY = { connecting = true, claiming = true, waiting = true }

local function await_lease(mint, code, detail, extra)
  local waited = 0
  while code == "no_lease" and waited < STARTUP_WAIT_MS do
    local lease = core_sf.process_lease()
    local st = lease and lease:status()
    local young = not st or core_sf.wall_ns() // 1000000 - st.started_unix_ms < STARTUP_GRACE_MS
    if not young or (st and not ON_THE_WAY[st.state]) then break end
    core.msleep(20)
    waited = waited + 20
    local r1, r2, r3, r4 = mint()
    if r1 then return r1, r2, r3 end
    code, detail, extra = r2, r3, r4
  end
  return nil, code, detail, extra
end

local function handle_id(json)
  local id, code, detail, extra = gen:next()
  if not id and code == "no_lease" then
    id, code, detail, extra = await_lease(mint_one, code, detail, extra)
  end
  if not id then
    id, code, detail, extra = ladder:retry(mint_one, code, detail, extra)
    if not id then return refusal(code, detail, extra) end
  end
  core_sf.count("ids", 1)
  core_sf.count("id_requests", 1)
  if json then
    return 200, "application/json", '{"id":"' .. id .. '"}\n', id_headers(id)
  end
  return 200, "text/plain", id .. "\n", id_headers(id)
end

-- /ids spins at most this long in the event loop for a new millisecond when
-- one runs out of sequence; then it yields (core.yield: the event loop serves
-- others and comes back within microseconds) and mints the rest, so an /id
-- waiting behind it is held 0.05 ms, not up to 1 ms
local IDS_SPIN_NS = 50000
-- a batch that makes no progress for this long is refused (sequence_exhausted)
local IDS_STALL_NS = 100 * 1000000

-- n IDs as an /ids body: body, first_id, last_id | nil, code, detail, extra
local function mint_batch(n, json)
  local parts, got, first, last, stall_until = nil, 0
  while true do
    local piece, first_or_code, last_or_detail, count_or_extra = gen:next_text(n - got, json, IDS_SPIN_NS, got)
    if piece then
      if got == 0 and count_or_extra == n then return piece, first_or_code, last_or_detail end
      parts = parts or {}
      parts[#parts + 1] = piece
      first, last, got, stall_until = first or first_or_code, last_or_detail, got + count_or_extra, nil
      if got == n then return table.concat(parts), first, last end
    elseif first_or_code ~= "sequence_exhausted" then
      return nil, first_or_code, last_or_detail, count_or_extra
    end
    local now = core_sf.mono_ns()
    stall_until = stall_until or now + IDS_STALL_NS
    if now > stall_until then
      return nil, "sequence_exhausted", "no sequence number came free for 100 ms", { wait_ns = 0 }
    end
    core.yield()
  end
end

local function handle_ids(qs, json)
  local max_batch = core_sf.setting_get("http.max_batch")
  local n, why = http.parse_count(qs, max_batch)
  if not n then return http.error("invalid_count", why) end
  local function mint() return mint_batch(n, json) end
  -- success: body, first_id, last_id; refusal: nil, code, detail, extra
  local body, first_or_code, last_or_detail, extra = mint()
  if not body and first_or_code == "no_lease" then
    body, first_or_code, last_or_detail, extra = await_lease(mint, first_or_code, last_or_detail, extra)
  end
  if not body then
    body, first_or_code, last_or_detail, extra = ladder:retry(mint, first_or_code, last_or_detail, extra)
    if not body then return refusal(first_or_code, last_or_detail, extra) end
  end
  return 200, json and "application/json" or "text/plain", body, id_headers(first_or_code)
end

local function handle_decode(text)
  local id, why = http.parse_id(text)
  if not id then return http.error("invalid_id", why) end
  local d, code, detail = gen:decode(id)
  if not d then return http.error("invalid_id", detail or code) end
  return 200, "application/json", http.decode_body(id, d), {}
end

local function handle_health()
  local lease = core_sf.process_lease()
  local st = lease and lease:status() or { state = "connecting", lease_ms_left = 0, reason = "no_lease",
                                            detail = "the lease has not started" }
  local ok, code, detail, probe_extra = gen:probe()
  -- a small regression being waited out is still a healthy node
  if ok or code == "clock_wait" then
    return 200, "application/json", string_format(
      '{"status":"ok","worker":%d,"lease_ms_left":%d,"can_mint":true,"mint_ready_unix_ms":%d,"node":%s}\n',
      st.worker or -1, st.lease_ms_left or 0, core_sf.wall_ns() // 1000000, http.json_string(NODE)), {}
  end
  if code == "no_lease" and st.reason and st.reason ~= "ok" then
    code, detail = st.reason, st.detail
  end
  local extra = {
    { "status", '"unavailable"' },
    { "worker", tostring(st.worker or -1) },
    { "lease_state", http.json_string(st.state) },
    { "lease_ms_left", tostring(st.lease_ms_left or 0) },
  }
  if st.mint_ready_unix_ms and st.mint_ready_unix_ms > 0 then
    extra[#extra + 1] = { "mint_ready_unix_ms", tostring(st.mint_ready_unix_ms) }
  end
  return 503, "application/json", http.error_body(code, detail or code, extra),
    { { "Retry-After", retry_after(code, probe_extra) } }
end

local LEASE_STATES = { "connecting", "claiming", "waiting", "minting", "parked", "stopped" }

local function handle_metrics()
  local m = http.metrics()
  local c = core_sf.counters()
  local s = gen:stats()
  local lease = core_sf.process_lease()
  local st = lease and lease:status() or { state = "connecting", lease_ms_left = 0 }

  m:family("snowflake_ids_issued_total", "counter", "IDs handed out by this process.")
  m:sample("snowflake_ids_issued_total", c.ids)
  m:family("snowflake_requests_total", "counter", "Requests answered with IDs, by endpoint.")
  m:sample("snowflake_requests_total", c.id_requests, { endpoint = "id" })
  m:sample("snowflake_requests_total", c.batch_requests, { endpoint = "ids" })
  m:family("snowflake_batch_size", "histogram", "IDs per /ids request.")
  for _, b in ipairs(c.batch_buckets) do
    m:sample("snowflake_batch_size_bucket", b.count, { le = tostring(b.le) })
  end
  m:sample("snowflake_batch_size_sum", c.ids - c.id_requests)
  m:sample("snowflake_batch_size_count", c.batch_requests)
  m:family("snowflake_clock_regressions_total", "counter", "Clock readings at or below the last used millisecond, by outcome.")
  m:sample("snowflake_clock_regressions_total", s.clock_waits, { outcome = "wait" })
  m:sample("snowflake_clock_regressions_total", s.clock_refusals, { outcome = "refuse" })
  m:sample("snowflake_clock_regressions_total", s.clock_borrows, { outcome = "borrow" })
  m:family("snowflake_clock_wait_seconds_total", "counter", "Time spent waiting out clock regressions.")
  m:sample("snowflake_clock_wait_seconds_total", c.clock_wait_ns / 1e9)
  m:family("snowflake_clock_last_regression_seconds", "gauge", "Size of the latest clock regression seen.")
  m:sample("snowflake_clock_last_regression_seconds", s.last_regression_ms / 1e3)
  m:family("snowflake_refusals_total", "counter", "Requests refused with 503, by reason.")
  for reason, n in pairs(c.refusals) do
    if n > 0 or reason == "clock_regressed" or reason == "fenced" or reason == "no_lease" then
      m:sample("snowflake_refusals_total", n, { reason = reason })
    end
  end
  local source = core_sf.clock_source()
  m:family("snowflake_clock_source_info", "gauge", "1 for the clock minting reads: tsc, or clock_gettime.")
  m:sample("snowflake_clock_source_info", 1, { source = source })
  m:family("snowflake_sequence_exhausted_total", "counter", "Milliseconds whose sequence ran out.")
  m:sample("snowflake_sequence_exhausted_total", s.sequence_exhausted)
  m:family("snowflake_lease_state", "gauge", "1 for the lease's current state.")
  for _, name in ipairs(LEASE_STATES) do
    m:sample("snowflake_lease_state", st.state == name and 1 or 0, { state = name })
  end
  m:family("snowflake_lease_seconds_left", "gauge", "Time until minting stops without a registry answer.")
  m:sample("snowflake_lease_seconds_left", (st.lease_ms_left or 0) / 1e3)
  m:family("snowflake_worker_id", "gauge", "The worker ID held, -1 for none.")
  m:sample("snowflake_worker_id", st.worker or -1)
  m:family("snowflake_registry_round_trips_total", "counter", "Registry requests acknowledged.")
  m:sample("snowflake_registry_round_trips_total", st.registry_round_trips or 0)
  m:family("snowflake_registry_rtt_seconds", "gauge", "Latest keep-alive round trip to the registry.")
  m:sample("snowflake_registry_rtt_seconds", (st.last_rtt_us or 0) / 1e6)
  m:family("snowflake_lease_claims_total", "counter", "Worker IDs claimed.")
  m:sample("snowflake_lease_claims_total", st.claims or 0)
  m:family("snowflake_lease_canaries_total", "counter", "Lease nodes found gone or foreign while held.")
  m:sample("snowflake_lease_canaries_total", st.canaries or 0)
  m:family("snowflake_registry_sessions_total", "counter", "Registry sessions established.")
  m:sample("snowflake_registry_sessions_total", st.sessions or 0)
  m:family("snowflake_high_water_mark_seconds", "gauge", "Durable high-water marks, Unix time.")
  m:sample("snowflake_high_water_mark_seconds", (st.local_mark_ms or 0) / 1e3, { store = "local" })
  m:sample("snowflake_high_water_mark_seconds", (st.registry_mark_ms or 0) / 1e3, { store = "registry" })
  return 200, "text/plain; version=0.0.4", m:text(), {}
end

local function first_header(applet, name)
  local values = applet.headers[name]
  return values and values[0]
end

local function handle(applet)
  local route, arg = http.route(applet.path)
  if not route then
    return http.error("not_found", "no such path; try /id, /ids?count=N, /decode/<id>, /health, /metrics")
  end
  local method = applet.method
  if method ~= "GET" and method ~= "HEAD" then
    return http.error("method_not_allowed", "only GET and HEAD are served here", { { "Allow", http.ALLOW } })
  end
  local json = http.wants_json(first_header(applet, "accept"))
  if route == "id" then return handle_id(json) end
  if route == "ids" then return handle_ids(applet.qs, json) end
  if route == "decode" then return handle_decode(arg) end
  if route == "health" then return handle_health() end
  return handle_metrics()
end

core.register_service("snowflake", "http", function(applet)
  local ok, status, ctype, body, headers = pcall(handle, applet)
  if not ok then
    log(core.err, "service error: " .. tostring(status))
    status, ctype, body = http.error("internal_refusal", "the request could not be served safely")
    headers = { { "Retry-After", "1" } }
  end
  applet:set_status(status)
  applet:add_header("content-type", ctype)
  applet:add_header("content-length", tostring(#body))
  applet:add_header("cache-control", "no-store")
  for _, h in ipairs(headers) do applet:add_header(h[1], h[2]) end
  applet:start_response()
  if applet.method ~= "HEAD" then applet:send(body) end
end)

-- ---- the lease, started in the serving process ------------------------------------

local function clock_source_text()
  local source, why_not = core_sf.clock_source()
  return why_not == "" and source or (source .. " (" .. why_not .. ")")
end

local function discipline_ok()
  if cfg.clock.discipline == "ignore" then return true end
  local d = core_sf.discipline()
  if not d then return true end
  local problem, code
  if not d.synchronised then
    code, problem = "clock_unsynchronised", "the kernel reports the clock as unsynchronised"
  elseif d.max_error_us > cfg.clock.max_error_ms * 1000 then
    code, problem = "clock_max_error", string_format("the kernel's maximum clock error is %d ms", d.max_error_us // 1000)
  end
  if not problem then return true end
  if cfg.clock.discipline == "refuse" then
    log(core.err, problem .. "; not minting (clock.discipline = \"refuse\")")
    gen:revoke(code)
    return false
  end
  log(core.warning, problem .. " (clock.discipline = \"log\")")
  return true
end

core.register_task(function()
  if not core_sf.process_once("lease") then return end
  if not discipline_ok() then return end
  log(core.info, "clock: minting reads " .. clock_source_text())
  core_sf.mkdir_p(cfg.state.dir)
  local lease, started_or_code, detail = core_sf.process_lease_start(gen, {
    zk_hosts = cfg.lease.zk_hosts, root = cfg.lease.root, node_name = cfg.lease.node_name or NODE,
    state_dir = cfg.state.dir, session_timeout_ms = cfg.lease.session_timeout_ms,
    margin_ms = cfg.lease.margin_ms, registry_ahead_ms = cfg.lease.registry_ahead_ms,
    local_ahead_ms = cfg.state.ahead_ms, start_bound_ms = cfg.lease.start_bound_ms,
    reclaim_delay_ms = cfg.lease.reclaim_delay_ms,
  })
  if not lease then
    log(core.err, "cannot start the lease: " .. tostring(started_or_code) .. ": " .. tostring(detail))
    return
  end
  -- lease log lines come from its own threads: hand them to HAProxy's log
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
end)

-- ---- the CLI (stats socket) -----------------------------------------------------------

local function cli_status(applet)
  local lease = core_sf.process_lease()
  local st = lease and lease:status() or {}
  local c = core_sf.counters()
  local ok, code = gen:probe()
  local lines = {
    "state: " .. tostring(st.state or "connecting"),
    "can_mint: " .. tostring(ok == true or code == "clock_wait") .. (ok and "" or (" (" .. tostring(code) .. ")")),
    "worker: " .. tostring(st.worker or "none"),
    "lease_ms_left: " .. tostring(st.lease_ms_left or 0),
    "reason: " .. tostring(st.reason or "no_lease"),
    "detail: " .. tostring(st.detail or ""),
    "session: " .. tostring(st.session or "none") .. " timeout_ms=" .. tostring(st.negotiated_timeout_ms or 0),
    "marks: local=" .. tostring(st.local_mark_ms or 0) .. " registry=" .. tostring(st.registry_mark_ms or 0),
    "clock.max_wait_ms: " .. tostring(clock_view.max_wait_ms),
    "clock.borrow: " .. tostring(clock_view.borrow),
    "clock.policy: " .. (cfg.clock.policy and "operator function" or "default ladder"),
    "clock.source: " .. clock_source_text(),
    "http.max_batch: " .. tostring(core_sf.setting_get("http.max_batch")),
    "limits.retry_after_s: " .. tostring(core_sf.setting_get("limits.retry_after_s")),
    "ids_issued: " .. tostring(c.ids),
    "node: " .. NODE,
  }
  applet:send(table.concat(lines, "\n") .. "\n")
end

core.register_cli({ "snowflake", "status" }, "snowflake status : show the lease, clock policy and counters", cli_status)

core.register_cli({ "snowflake", "set" },
  "snowflake set <key> <value> : change a runtime key (clock.max_wait_ms, clock.borrow, http.max_batch, limits.retry_after_s)",
  function(applet, _, _, key, value)
    if not key or not value then
      applet:send("usage: snowflake set <key> <value>\n")
      return
    end
    local section, name, v = config.parse_runtime(key, value)
    if not section then
      applet:send("error: " .. name .. "\n")
      return
    end
    local setting = section .. "." .. name
    if setting == "clock.borrow" then v = v and 1 or 0 end
    core_sf.setting_set(setting, v)
    if section == "clock" then apply_clock() end
    log(core.notice, "runtime change: " .. setting .. " = " .. tostring(value))
    applet:send("ok: " .. setting .. " = " .. tostring(value) .. "\n")
  end)

local function cli_park(on)
  return function(applet)
    local lease = core_sf.process_lease()
    if not lease then
      applet:send("error: the lease has not started\n")
      return
    end
    lease:park(on)
    log(core.notice, on and "parked by the operator" or "unparked by the operator")
    applet:send(on and "ok: parked\n" or "ok: unparked\n")
  end
end
core.register_cli({ "snowflake", "park" }, "snowflake park : stop minting (503 parked), keep the lease", cli_park(true))
core.register_cli({ "snowflake", "unpark" }, "snowflake unpark : resume minting", cli_park(false))

core.register_cli({ "snowflake", "quarantine" }, "snowflake quarantine list|clear <id> : show or clear quarantined worker IDs",
  function(applet, _, _, op, id)
    local lease = core_sf.process_lease()
    if not lease then
      applet:send("error: the lease has not started\n")
      return
    end
    local req
    if op == "list" then
      req = lease:admin("quarantine_list")
    elseif op == "clear" and id and id:match("^%d+$") and #id <= 5 then
      req = lease:admin("quarantine_clear", math.tointeger(tonumber(id)))
    else
      applet:send("usage: snowflake quarantine list | snowflake quarantine clear <id>\n")
      return
    end
    -- the registry call runs on a thread of its own; yield while it does
    for _ = 1, 300 do
      local done, text_or_code, detail = req:poll()
      if done then
        if op == "clear" then log(core.notice, "quarantine of worker " .. id .. " cleared by the operator") end
        applet:send(op == "list" and (text_or_code ~= "" and text_or_code or "(none)\n") or ("ok: cleared " .. id .. "\n"))
        return
      elseif text_or_code then
        applet:send("error: " .. text_or_code .. ": " .. tostring(detail) .. "\n")
        return
      end
      core.msleep(20)
    end
    applet:send("error: the registry did not answer within 6 s\n")
  end)
