-- snowflake.service: the HTTP handlers on a generator on the manual clock,
-- with a fake lease, a recording sleep (it moves the manual clock, never
-- waits) and recording counters. No HAProxy.
local helpers = require "spec_helpers"
local config = require "snowflake.config"
local ladder_mod = require "snowflake.ladder"
local service = require "snowflake.service"
local core = helpers.core
local MS, T0_MS, T0_NS = helpers.MS, helpers.T0_MS, helpers.T0_NS

-- A service over `gen` (default: a minting generator on a manual clock).
-- opts: gen, clock, lease (a status table, or a function returning one),
-- settings (overrides), clock_cfg (the ladder's clock section), on_sleep(ms).
local function fixture(opts)
  opts = opts or {}
  local gen, clock = opts.gen, opts.clock
  if not gen then gen, clock = helpers.manual_gen() end
  local f = { gen = gen, clock = clock, slept = {}, yields = 0, counted = {}, logs = {} }
  f.settings = { ["http.max_batch"] = 4096, ["limits.retry_after_s"] = 1, ["clock.max_wait_ms"] = 20 }
  for k, v in pairs(opts.settings or {}) do f.settings[k] = v end
  local function count(name, n)
    core.count(name, n) -- the real counter: an unknown name raises
    f.counted[name] = (f.counted[name] or 0) + n
  end
  local function sleep(ms)
    f.slept[#f.slept + 1] = ms
    clock:advance(ms * MS)
    if opts.on_sleep then opts.on_sleep(ms) end
  end
  local function log(level, line) f.logs[#f.logs + 1] = { level = level, line = line } end
  local lease = opts.lease
  local clock_cfg = opts.clock_cfg or { max_wait_ms = 20, borrow = false }
  f.ladder = ladder_mod.new(clock_cfg, sleep, log, count)
  f.svc = service.new({
    gen = gen,
    lease_status = function()
      if type(lease) == "function" then return lease() end
      return lease
    end,
    setting = function(name) return f.settings[name] end,
    count = count,
    counters = core.counters,
    ladder = f.ladder,
    sleep = sleep,
    yield = function()
      f.yields = f.yields + 1
      clock:advance(MS)
    end,
    log = log,
    wall_ns = function() return clock:wall() end,
    mono_ns = function() return clock:mono() end,
    clock_source = function() return "clock_gettime", "" end,
    node = "node-a",
    layout = assert(config.build({})).layout,
  })
  -- from_peer: the request came from a peer address (a handoff, on /peer/)
  function f.get(path, accept, method, from_peer)
    local qs
    path, qs = path:match("^([^?]*)%??(.*)$")
    local status, headers, body = f.svc:respond({ method = method or "GET", path = path, qs = qs, accept = accept,
                                                   from_peer = from_peer })
    local h = {}
    for _, kv in ipairs(headers) do h[kv[1]:lower()] = kv[2] end
    return { status = status, headers = h, list = headers, body = body }
  end
  return f
end

local function minting_lease(extra)
  local st = { state = "minting", worker = 1, lease_ms_left = 4500, reason = "ok", detail = "",
               started_unix_ms = T0_MS - 60000, mint_ready_unix_ms = T0_MS - 59000 }
  for k, v in pairs(extra or {}) do st[k] = v end
  return st
end

local function error_of(r)
  return r.body:match('^{"error":"([%w_]+)","detail":"[^"]+".*}\n$')
end

describe("the service's /id", function()
  it("answers an ID with the worker and node headers, JSON on request", function()
    local f = fixture({ lease = minting_lease() })
    local r = f.get("/id")
    assert.are.equal(200, r.status)
    local id = math.tointeger(tonumber(r.body:match("^(%d+)\n$")))
    assert.are.same({ timestamp_ms = T0_MS, worker = 1, sequence = 0 }, f.gen:decode(id))
    assert.are.same({
      { "content-type", "text/plain" }, { "content-length", tostring(#r.body) }, { "cache-control", "no-store" },
      { "X-Snowflake-Worker", "1" }, { "X-Snowflake-Node", "node-a" },
    }, r.list)
    assert.are.same({ ids = 1, id_requests = 1 }, f.counted)
    r = f.get("/id", "application/json")
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.equal('{"id":"' .. (id + 1) .. '"}\n', r.body)
  end)

  it("waits out a small regression through the ladder (sleep called, counters moved), then mints", function()
    local f = fixture({ lease = minting_lease() })
    local before = assert(f.gen:next())
    f.clock:set_wall(T0_NS - 5 * MS)
    local r = f.get("/id")
    assert.are.equal(200, r.status)
    assert.are.same({ 6 }, f.slept)
    assert.are.equal(1, f.counted.clock_waits)
    assert.are.equal(6 * MS, f.counted.clock_wait_ns)
    assert.are.equal(1, f.counted.ids)
    local id = math.tointeger(tonumber(r.body:match("^(%d+)\n$")))
    assert.is_true(id > before)
    assert.are.same({ timestamp_ms = T0_MS + 1, worker = 1, sequence = 0 }, f.gen:decode(id))
    assert.is_nil(f.counted["refusal.clock_wait"])
  end)

  it("refuses a regression past clock.max_wait_ms: 503 clock_regressed, Retry-After the wait, one page a second",
    function()
      local f = fixture({ lease = minting_lease(), settings = { ["limits.retry_after_s"] = 9 } })
      assert(f.gen:next())
      f.clock:set_wall(T0_NS - 1500 * MS)
      local r = f.get("/id")
      assert.are.equal(503, r.status)
      assert.are.equal("clock_regressed", error_of(r))
      -- the clock is 1,500 ms behind the last used millisecond: 1,501 ms to wait, 2 s whole
      assert.are.equal("2", r.headers["retry-after"])
      assert.are.same({}, f.slept)
      assert.are.equal(1, f.counted["refusal.clock_regressed"])
      assert.are.equal(1, #f.logs)
      assert.are.equal(1, f.logs[1].level)
      assert.truthy(f.logs[1].line:find("PAGE clock regressed, refusing: ", 1, true))
      f.clock:advance(500 * MS)
      r = f.get("/id", "application/json")
      assert.are.equal(503, r.status)
      assert.are.equal("2", r.headers["retry-after"])
      assert.are.equal(1, #f.logs, "a second page within a second")
      f.clock:advance(600 * MS)
      r = f.get("/ids?count=3")
      assert.are.equal(503, r.status)
      assert.are.equal("1", r.headers["retry-after"])
      assert.are.equal(2, #f.logs)
      assert.are.equal(3, f.counted["refusal.clock_regressed"])
    end)

  it("answers other refusals 503 with Retry-After limits.retry_after_s as it is now", function()
    local f = fixture({ lease = minting_lease({ state = "parked" }) })
    f.gen:revoke("parked")
    local r = f.get("/id")
    assert.are.equal(503, r.status)
    assert.are.equal("parked", error_of(r))
    assert.are.equal("1", r.headers["retry-after"])
    f.settings["limits.retry_after_s"] = 30
    r = f.get("/ids?count=2")
    assert.are.equal("parked", error_of(r))
    assert.are.equal("30", r.headers["retry-after"])
    assert.are.equal(2, f.counted["refusal.parked"])
  end)

  it("waits for a young lease on its way, then mints", function()
    local gen, clock = helpers.bare_gen()
    local lease = { state = "claiming", reason = "no_lease", detail = "claiming", lease_ms_left = 0,
                    started_unix_ms = T0_MS }
    local f
    f = fixture({ gen = gen, clock = clock, lease = lease, on_sleep = function()
      if #f.slept == 3 then
        assert(gen:grant(4, clock:mono() + 3600 * helpers.S))
        gen:set_ceiling("local", T0_MS + helpers.HOUR_MS)
        lease.state = "minting"
      end
    end })
    local r = f.get("/id")
    assert.are.equal(200, r.status)
    assert.are.same({ 20, 20, 20 }, f.slept)
    assert.are.equal("4", r.headers["x-snowflake-worker"])
  end)

  it("does not wait for a lease that is not young, nor for one that is not on its way", function()
    local gen, clock = helpers.bare_gen()
    local f = fixture({ gen = gen, clock = clock, lease = { state = "connecting", reason = "no_lease",
      detail = "registry down", lease_ms_left = 0, started_unix_ms = T0_MS - 60000 } })
    local r = f.get("/id")
    assert.are.equal(503, r.status)
    assert.are.equal("no_lease", error_of(r))
    assert.are.same({}, f.slept)
    f = fixture({ gen = gen, clock = clock, lease = { state = "parked", reason = "parked", detail = "x",
      lease_ms_left = 0, started_unix_ms = T0_MS } })
    assert.are.equal(503, f.get("/ids?count=1").status)
    assert.are.same({}, f.slept)
  end)

  it("answers HEAD with the GET headers (the glue sends no body)", function()
    local f = fixture({ lease = minting_lease() })
    local r = f.get("/id", nil, "HEAD")
    assert.are.equal(200, r.status)
    assert.are.equal(tostring(#r.body), r.headers["content-length"])
  end)
end)

describe("the service's /ids", function()
  it("answers n strictly increasing IDs, one a line, or JSON", function()
    local f = fixture({ lease = minting_lease() })
    local r = f.get("/ids?count=5")
    assert.are.equal(200, r.status)
    assert.are.equal("text/plain", r.headers["content-type"])
    local ids = {}
    for line in r.body:gmatch("(%d+)\n") do ids[#ids + 1] = math.tointeger(tonumber(line)) end
    assert.are.equal(5, #ids)
    assert.is_true(helpers.strictly_increasing_integers(ids))
    assert.are.equal("1", r.headers["x-snowflake-worker"])
    r = f.get("/ids?count=2", "application/json")
    assert.are.equal('{"ids":["' .. (ids[5] + 1) .. '","' .. (ids[5] + 2) .. '"]}\n', r.body)
  end)

  it("mints a batch across a used-up millisecond in pieces, yielding between them", function()
    local f = fixture({ lease = minting_lease() })
    local first = assert(f.gen:next())
    for _, accept in ipairs({ "text/plain", "application/json" }) do
      f.yields = 0
      local r = f.get("/ids?count=4096", accept)
      assert.are.equal(200, r.status)
      assert.are.equal(1, f.yields)
      local ids = {}
      for d in r.body:gmatch("%d+") do ids[#ids + 1] = math.tointeger(tonumber(d)) end
      assert.are.equal(4096, #ids)
      assert.is_true(helpers.strictly_increasing_integers(ids))
      assert.is_true(ids[1] > first)
      first = ids[#ids]
      if accept == "application/json" then
        assert.are.equal('{"ids":[' .. ("x,"):rep(4095) .. 'x]}\n', (r.body:gsub('"%d+"', "x")))
      else
        assert.truthy(r.body:match("^%d+\n[%d\n]*$"))
      end
    end
    assert.are.same({}, f.slept)
  end)

  it("takes its bound from http.max_batch as it is now, and refuses malformed counts with 400", function()
    local f = fixture({ lease = minting_lease() })
    assert.are.equal(200, f.get("/ids?count=4096").status)
    f.settings["http.max_batch"] = 10
    assert.are.equal(200, f.get("/ids?count=10").status)
    for _, qs in ipairs({ "count=11", "count=0", "count=1.0", "count=1&count=2", "", "x=1" }) do
      local r = f.get("/ids?" .. qs)
      assert.are.equal(400, r.status, qs)
      assert.are.equal("invalid_count", error_of(r), qs)
      assert.is_nil(r.headers["retry-after"])
    end
  end)
end)

describe("the service's /decode", function()
  it("decodes with the configured layout and refuses what is not an ID", function()
    local f = fixture({ lease = minting_lease() })
    local id = assert(f.gen:next())
    local r = f.get("/decode/" .. id)
    assert.are.equal(200, r.status)
    assert.are.equal(string.format('{"id":"%d","timestamp_ms":%d,"time":"2024-06-10T06:13:20.000Z","worker":1,"sequence":0}\n',
      id, T0_MS), r.body)
    for _, bad in ipairs({ "/decode/", "/decode", "/decode/x1", "/decode/9223372036854775808" }) do
      r = f.get(bad)
      assert.are.equal(400, r.status, bad)
      assert.are.equal("invalid_id", error_of(r), bad)
    end
    assert.are.equal(200, f.get("/decode/9223372036854775807").status)
  end)
end)

describe("the service's /health", function()
  it("is 200 with the worker and lease time left while the generator mints", function()
    local f = fixture({ lease = minting_lease() })
    local r = f.get("/health")
    assert.are.equal(200, r.status)
    assert.are.equal(string.format(
      '{"status":"ok","worker":1,"lease_ms_left":4500,"can_mint":true,"mint_ready_unix_ms":%d,"node":"node-a"}\n', T0_MS),
      r.body)
  end)

  it("stays 200 while a small regression is waited out", function()
    local f = fixture({ lease = minting_lease() })
    assert(f.gen:next())
    f.clock:set_wall(T0_NS - 5 * MS)
    assert.are.equal(200, f.get("/health").status)
    assert.are.same({}, f.slept)
  end)

  it("is 503 with the lease's reason, its state and Retry-After when the generator cannot mint", function()
    local gen, clock = helpers.bare_gen()
    local f = fixture({ gen = gen, clock = clock, settings = { ["limits.retry_after_s"] = 4 }, lease = {
      state = "waiting", reason = "hwm_ahead", detail = "waiting past the mark", lease_ms_left = 3000, worker = 2,
      mint_ready_unix_ms = T0_MS + 700, started_unix_ms = T0_MS } })
    local r = f.get("/health")
    assert.are.equal(503, r.status)
    assert.are.equal('{"error":"hwm_ahead","detail":"waiting past the mark","status":"unavailable","worker":2,'
      .. '"lease_state":"waiting","lease_ms_left":3000,"mint_ready_unix_ms":' .. (T0_MS + 700)
      .. ',"starting_ms":0}\n', r.body)
    assert.are.equal("4", r.headers["retry-after"])
    assert.is_nil(f.counted["refusal.hwm_ahead"])
  end)

  it("says how long a young process has been on its way to its first lease (starting_ms), and only then", function()
    local function health(st)
      local gen, clock = helpers.bare_gen()
      return fixture({ gen = gen, clock = clock, lease = st }).get("/health")
    end
    local young = health({ state = "claiming", reason = "no_lease", detail = "choosing", lease_ms_left = 0,
                           started_unix_ms = T0_MS - 1234 })
    assert.are.equal(503, young.status)
    assert.truthy(young.body:find(',"starting_ms":1234}\n$'), young.body)
    -- a lease that started long ago (a registry outage, a lost ID): no grace for the watchers
    local old = health({ state = "claiming", reason = "no_lease", detail = "choosing", lease_ms_left = 0,
                         started_unix_ms = T0_MS - 60000 })
    assert.are.equal(503, old.status)
    assert.is_nil(old.body:find("starting_ms", 1, true))
    -- parked is not on its way to anything
    local parked = health({ state = "parked", reason = "parked", detail = "operator", lease_ms_left = 4000,
                            started_unix_ms = T0_MS - 100 })
    assert.is_nil(parked.body:find("starting_ms", 1, true))
  end)

  it("is 503 no_lease before the lease exists", function()
    local gen, clock = helpers.bare_gen()
    local r = fixture({ gen = gen, clock = clock }).get("/health")
    assert.are.equal(503, r.status)
    assert.are.equal('{"error":"no_lease","detail":"the lease has not started","status":"unavailable","worker":-1,'
      .. '"lease_state":"connecting","lease_ms_left":0}\n', r.body)
  end)
end)

describe("the service's routing", function()
  it("answers unknown paths 404 and other methods 405 with Allow, as JSON", function()
    local f = fixture({ lease = minting_lease() })
    for _, path in ipairs({ "/", "/id/extra", "/ids/", "/ID", "/metrics/x" }) do
      local r = f.get(path)
      assert.are.equal(404, r.status, path)
      assert.are.equal("not_found", error_of(r), path)
    end
    local none = f.svc:respond({ method = "OPTIONS", path = nil })
    assert.are.equal(404, none)
    for _, method in ipairs({ "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO" }) do
      local r = f.get("/id", nil, method)
      assert.are.equal(405, r.status, method)
      assert.are.equal("method_not_allowed", error_of(r), method)
      assert.are.equal("GET, HEAD", r.headers["allow"])
    end
    assert.are.same({}, f.counted)
  end)

  it("answers 503 internal_refusal with Retry-After when a handler raises, and logs it", function()
    local f = fixture({ lease = minting_lease(), settings = { ["limits.retry_after_s"] = 5 } })
    f.svc.gen = setmetatable({}, { __index = function() return function() error("boom") end end })
    local r = f.get("/id")
    assert.are.equal(503, r.status)
    assert.are.equal("internal_refusal", error_of(r))
    assert.are.equal("5", r.headers["retry-after"])
    assert.are.equal(3, f.logs[1].level)
    assert.truthy(f.logs[1].line:find("service error: ", 1, true))
    assert.truthy(f.logs[1].line:find("boom", 1, true))
  end)
end)

describe("the service's /metrics", function()
  local VALID_TYPES = { counter = true, gauge = true, histogram = true }

  it("is Prometheus text: HELP then TYPE once per family, samples of that family, numeric values", function()
    local f = fixture({ lease = minting_lease() })
    assert.are.equal(200, f.get("/id").status)
    local r = f.get("/metrics")
    assert.are.equal(200, r.status)
    assert.are.equal("text/plain; version=0.0.4", r.headers["content-type"])
    assert.are.equal("\n", r.body:sub(-1))
    local families, current, series = {}, nil, {}
    local lines = {}
    for line in r.body:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
    for i, line in ipairs(lines) do
      local help_name = line:match("^# HELP ([%w_:]+) %S")
      local type_name, kind = line:match("^# TYPE ([%w_:]+) (%a+)$")
      if help_name then
        assert.is_nil(families[help_name], "two HELP lines for " .. help_name)
        assert.truthy(lines[i + 1]:match("^# TYPE " .. help_name .. " "), "HELP not followed by its TYPE: " .. line)
        families[help_name] = true
        current = help_name
      elseif type_name then
        assert.are.equal(current, type_name)
        assert.is_true(VALID_TYPES[kind] ~= nil, line)
        families[type_name] = kind
        if kind == "counter" then assert.truthy(type_name:match("_total$"), type_name) end
      else
        local name, labels, value = line:match("^([%w_:]+)(%b{}) (%S+)$")
        if not name then
          name, value = line:match("^([%w_:]+) (%S+)$")
          labels = ""
        end
        assert.is_not_nil(name, "not a sample line: " .. line)
        assert.is_not_nil(tonumber(value), "not a number: " .. line)
        local base = name
        if families[current] == "histogram" then
          base = name:match("^(.-)_bucket$") or name:match("^(.-)_sum$") or name:match("^(.-)_count$") or name
        end
        assert.are.equal(current, base, "a sample outside its family: " .. line)
        assert.is_nil(series[name .. labels], "a series twice: " .. line)
        series[name .. labels] = true
      end
    end
    assert.truthy(series['snowflake_lease_state{state="minting"}'])
    assert.truthy(r.body:find('\nsnowflake_lease_state{state="minting"} 1\n', 1, true))
    assert.truthy(r.body:find('\nsnowflake_worker_id 1\n', 1, true))
    assert.truthy(r.body:find('\nsnowflake_lease_seconds_left 4.5\n', 1, true))
    assert.truthy(r.body:find('\nsnowflake_clock_source_info{source="clock_gettime"} 1\n', 1, true))
    assert.truthy(r.body:find('\nsnowflake_batch_size_bucket{le="+Inf"} ', 1, true))
  end)

  it("shows the lease as connecting, worker -1, before the lease exists", function()
    local gen, clock = helpers.bare_gen()
    local body = fixture({ gen = gen, clock = clock }).get("/metrics").body
    assert.truthy(body:find('\nsnowflake_lease_state{state="connecting"} 1\n', 1, true))
    assert.truthy(body:find('\nsnowflake_worker_id -1\n', 1, true))
    assert.truthy(body:find('\nsnowflake_high_water_mark_seconds{store="registry"} 0\n', 1, true))
  end)
end)

describe("the service's side of a handoff", function()
  local function peer_get(f, path) return f.get(path, nil, "GET", true) end

  it("answers /peer/id and /peer/ids from a peer as /id and /ids, with its own worker, counted as served", function()
    local f = fixture({ lease = minting_lease() })
    local r = peer_get(f, "/peer/id")
    assert.are.equal(200, r.status)
    assert.truthy(r.body:match("^%d+\n$"))
    assert.are.equal("1", r.headers["x-snowflake-worker"])
    assert.are.equal("node-a", r.headers["x-snowflake-node"])
    r = peer_get(f, "/peer/ids?count=3")
    assert.are.equal(200, r.status)
    assert.truthy(r.body:match("^%d+\n%d+\n%d+\n$"))
    assert.are.equal(2, f.counted.handoffs_served)
  end)

  it("does not count a handed-over request it refused, nor an ordinary one", function()
    local f = fixture({ lease = minting_lease() })
    assert.are.equal(400, peer_get(f, "/peer/ids?count=0").status)
    assert.are.equal(200, f.get("/id").status)
    assert.is_nil(f.counted.handoffs_served)
  end)

  it("treats /peer/ as an unknown path from anyone but a peer, and serves only /id and /ids through it", function()
    local f = fixture({ lease = minting_lease() })
    assert.are.equal(404, f.get("/peer/id").status)
    assert.are.equal(404, f.get("/peer/ids?count=2").status)
    for _, path in ipairs({ "/peer/health", "/peer/metrics", "/peer" }) do
      assert.are.equal(404, peer_get(f, path).status, path)
    end
    assert.is_nil(f.counted.handoffs_served)
  end)
end)
