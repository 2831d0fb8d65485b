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

  it("gives the service's listener, threads, log and socket their defaults", function()
    local cfg = assert(config.build({}))
    assert.are.equal("127.0.0.1:8080", cfg.http.bind)
    assert.are.equal(2, cfg.http.threads)
    assert.are.equal("stderr", cfg.http.log_target)
    assert.are.equal("/run/edge-snowflake/admin.sock", cfg.http.admin_socket)
    cfg = assert(config.build({ http = { bind = "0.0.0.0:80", threads = 4, log_target = "/dev/log" } }))
    assert.are.same({ "0.0.0.0:80", 4, "/dev/log" }, { cfg.http.bind, cfg.http.threads, cfg.http.log_target })
    assert.are.equal("10.0.0.1:514", assert(config.build({ http = { log_target = "10.0.0.1:514" } })).http.log_target)
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
    { { http = { bind = "8080" } }, "http.bind must be \"a.b.c.d:port\"" },
    { { http = { bind = "127.0.0.1:0" } }, "http.bind must be \"a.b.c.d:port\"" },
    { { http = { bind = "256.0.0.1:80" } }, "http.bind must be \"a.b.c.d:port\"" },
    { { http = { bind = "localhost:8080" } }, "http.bind must be \"a.b.c.d:port\"" },
    { { http = { threads = 0 } }, "http.threads must be an integer in 1..64" },
    { { limits = { maxconn = 199 } }, "limits.maxconn must be an integer in 200..1000000" },
    { { limits = { conn_per_addr = 0 } }, "limits.conn_per_addr must be an integer in 1..1000000" },
    { { http = { log_target = "syslog" } }, "http.log_target must be stderr, an absolute socket path" },
    { { http = { log_target = "10.0.0.1" } }, "http.log_target must be stderr, an absolute socket path" },
    { { http = { admin_socket = "admin.sock" } }, "http.admin_socket must be an absolute path" },
    { { http = { admin_socket = "/run/" .. string.rep("x", 110) } }, "http.admin_socket must be an absolute path of at most 107" },
    { { http = { admin_socket = "/run/a b" } }, "http.admin_socket must be an absolute path" },
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

  -- the package's /etc/edge-snowflake/config.lua (snowflake.conffile)
  local function load_text(text)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    local cfg, err = config.load(path)
    os.remove(path)
    return cfg, err
  end

  it("writes the package's config file with every key, commented out, loading to the defaults", function()
    local conffile = require "snowflake.conffile"
    local text = conffile.text()
    local defaults = assert(config.build({}))
    assert.are.same(defaults, assert(load_text(text)))
    local n = 0
    for section, specs in pairs(config.schema) do
      for key in pairs(specs) do
        n = n + 1
        assert.truthy(text:find("\n    %-%- " .. key .. " = [^\n]*%-%- [^\n]+\n"), section .. "." .. key)
      end
    end
    -- every line uncommented: the values written are the defaults themselves
    local uncommented, k = text:gsub("\n    %-%- ([%w_]+ = [^\n]-,)%s+%-%- [^\n]*", "\n    %1")
    assert.are.equal(n, k)
    assert.are.same(defaults, assert(load_text(uncommented)))
    -- and a changed value there is seen (the test can fail)
    local changed = uncommented:gsub("threads = 2,", "threads = 3,")
    assert.are.equal(3, assert(load_text(changed)).http.threads)
  end)

  it("refuses to write a config file for a key it has no line for", function()
    local conffile = require "snowflake.conffile"
    local saved = conffile.doc["http.threads"]
    conffile.doc["http.threads"] = nil
    local ok, err = pcall(conffile.text)
    conffile.doc["http.threads"] = saved
    assert.is_false(ok)
    assert.truthy(tostring(err):find("http.threads has no line", 1, true))
  end)
end)
