-- snowflake.config: defaults, every kind of rejection names its key, runtime keys.
local helpers = require "spec_helpers"
local config = require "snowflake.config"
local _ = helpers

describe("snowflake.config", function()
  it("fills every default from SPEC", function()
    local cfg = assert(config.build({}))
    assert.are.equal(1704067200000, cfg.layout.epoch_ms)
    assert.are.equal(41, cfg.layout.timestamp_bits)
    assert.are.equal(10, cfg.layout.worker_bits)
    assert.are.equal(12, cfg.layout.sequence_bits)
    assert.are.equal(20, cfg.clock.max_wait_ms)
    assert.is_false(cfg.clock.borrow)
    assert.are.equal("/snowflake/default", cfg.lease.root)
    assert.are.equal(4096, cfg.http.max_batch)
    assert.is_nil(cfg.clock.policy)
    assert.are.equal("auto", cfg.clock.source)
  end)

  it("keeps what is given", function()
    local cfg = assert(config.build({ clock = { max_wait_ms = 5, borrow = true }, http = { max_batch = 10 } }))
    assert.are.equal(5, cfg.clock.max_wait_ms)
    assert.is_true(cfg.clock.borrow)
    assert.are.equal(10, cfg.http.max_batch)
  end)

  local cases = {
    { { colck = {} }, "unknown config section 'colck'" },
    { { clock = { max_wait = 1 } }, "unknown config key clock.max_wait" },
    { { clock = { max_wait_ms = -1 } }, "clock.max_wait_ms must be an integer in 0..60000" },
    { { clock = { max_wait_ms = 2.5 } }, "clock.max_wait_ms must be an integer" },
    { { clock = { max_wait_ms = "20" } }, "clock.max_wait_ms must be an integer" },
    { { clock = { borrow = 1 } }, "clock.borrow must be true or false" },
    { { clock = { policy = "wait" } }, "clock.policy must be a function" },
    { { clock = { discipline = "maybe" } }, "clock.discipline must be one of" },
    { { clock = { source = "tsc" } }, "clock.source must be one of" },
    { { lease = { zk_hosts = "" } }, "lease.zk_hosts must be a non-empty string" },
    { { lease = { zk_hosts = "a b" } }, "lease.zk_hosts must be host:port" },
    { { lease = { root = "relative" } }, "lease.root must be an absolute ZooKeeper path" },
    { { lease = { root = "/trailing/" } }, "lease.root must be an absolute ZooKeeper path" },
    { { lease = { session_timeout_ms = 100 } }, "lease.session_timeout_ms must be an integer in 400..120000" },
    { { lease = { margin_ms = 4000, session_timeout_ms = 6000 } }, "lease.margin_ms must be at most half" },
    { { layout = { worker_bits = 11 } }, "layout.sequence_bits: timestamp_bits + worker_bits + sequence_bits must be 63" },
    { { layout = { timestamp_bits = 34, sequence_bits = 19 } }, "layout.timestamp_bits must be an integer in 35..47" },
    { { state = { dir = "relative/dir" } }, "state.dir must be an absolute path" },
    { { http = { max_batch = 0 } }, "http.max_batch must be an integer in 1..65536" },
    { { http = 5 }, "config section http must be a table" },
    { "nope", "config must be a table" },
  }
  for _, case in ipairs(cases) do
    it("rejects " .. case[2], function()
      local cfg, err = config.build(case[1])
      assert.is_nil(cfg)
      assert.truthy(err:find(case[2], 1, true), err)
    end)
  end

  -- found by tests/fuzz/config_fuzz.lua: keys were compared through tostring, so a table
  -- printing as a known name passed the unknown-key check and was dropped silently
  it("refuses keys that are not names, whatever they print as", function()
    local as = function(name) return setmetatable({}, { __tostring = function() return name end }) end
    local cfg, err = config.build({ clock = { [as("max_wait_ms")] = -1 } })
    assert.is_nil(cfg)
    assert.are.equal("unknown config key in clock: of type table (not a name)", err)
    cfg, err = config.build({ [as("lease")] = { root = "relative" } })
    assert.is_nil(cfg)
    assert.are.equal("unknown config section of type table (not a name)", err)
    cfg, err = config.build({ layout = { [1] = 41 } })
    assert.is_nil(cfg)
    assert.are.equal("unknown config key in layout: 1 (a number, not a name)", err)
    cfg, err = config.build({ [true] = {} })
    assert.is_nil(cfg)
    assert.are.equal("unknown config section true (a boolean, not a name)", err)
  end)

  it("loads a file in an empty environment and names the file on errors", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write('return { clock = { max_wait_ms = 7, policy = function(r) return "refuse" end } }')
    f:close()
    local cfg = assert(config.load(path))
    assert.are.equal(7, cfg.clock.max_wait_ms)
    assert.are.equal("refuse", cfg.clock.policy({}))
    f = assert(io.open(path, "w"))
    f:write('return { clock = { max_wait_ms = os.time() } }') -- no os in a config
    f:close()
    local bad, err = config.load(path)
    assert.is_nil(bad)
    assert.truthy(err:find(path, 1, true))
    os.remove(path)
    bad, err = config.load("/nonexistent/edge-snowflake.lua")
    assert.is_nil(bad)
    assert.truthy(err:find("cannot read config", 1, true))
  end)

  it("parses runtime changes of runtime keys only", function()
    assert.are.same({ "clock", "max_wait_ms", 100 }, { config.parse_runtime("clock.max_wait_ms", "100") })
    assert.are.same({ "clock", "borrow", true }, { config.parse_runtime("clock.borrow", "on") })
    assert.are.same({ "http", "max_batch", 5 }, { config.parse_runtime("http.max_batch", "5") })
    local ok, err = config.parse_runtime("clock.max_wait_ms", "1.5")
    assert.is_nil(ok); assert.truthy(err:find("integer", 1, true))
    ok, err = config.parse_runtime("clock.max_wait_ms", "-1")
    assert.is_nil(ok); assert.truthy(err:find("0..60000", 1, true))
    ok, err = config.parse_runtime("layout.worker_bits", "3")
    assert.is_nil(ok); assert.truthy(err:find("cannot be changed at runtime", 1, true))
    ok, err = config.parse_runtime("nope", "3")
    assert.is_nil(ok); assert.truthy(err:find("unknown key", 1, true))
    ok, err = config.parse_runtime("clock.borrow", "yes")
    assert.is_nil(ok); assert.truthy(err:find("true or false", 1, true))
    -- found by tests/fuzz/config_fuzz.lua: this was "clock.max_wait_ms is required"
    ok, err = config.parse_runtime("clock.max_wait_ms", "99999999999999999999")
    assert.is_nil(ok)
    assert.are.equal('clock.max_wait_ms must be an integer in 0..60000, got "99999999999999999999"', err)
  end)
end)
