-- snowflake.boot: the clock-discipline check and the lease options, shared
-- by library mode and HAProxy; library mode's refusal on "refuse".
local helpers = require "spec_helpers"
local boot = require "snowflake.boot"
local config = require "snowflake.config"
local snowflake = require "snowflake"
local core = helpers.core

local SYNCED = { synchronised = true, max_error_us = 1000 }

local function check(discipline, reading)
  local cfg = assert(config.build({ clock = { discipline = discipline, max_error_ms = 100 } }))
  local logs, reads = {}, 0
  local function read()
    reads = reads + 1
    if reading == nil then return nil, "clock_unsynchronised", "adjtimex failed" end
    return reading
  end
  local r = table.pack(boot.check_discipline(cfg, read, function(level, line)
    logs[#logs + 1] = { level = level, line = line }
  end))
  return r, logs, reads
end

describe("snowflake.boot.check_discipline", function()
  it("passes a disciplined clock silently", function()
    local r, logs = check("refuse", SYNCED)
    assert.are.same({ n = 1, true }, r)
    assert.are.same({}, logs)
  end)

  it("reads nothing under clock.discipline = ignore", function()
    local r, logs, reads = check("ignore", { synchronised = false, max_error_us = 0 })
    assert.are.same({ n = 1, true }, r)
    assert.are.equal(0, reads)
    assert.are.same({}, logs)
  end)

  it("returns the problem under refuse, for the caller to refuse with", function()
    local r, logs = check("refuse", { synchronised = false, max_error_us = 0 })
    assert.are.same({ n = 3, nil, "clock_unsynchronised",
      "the kernel reports the clock as unsynchronised (no NTP discipline)" }, r)
    assert.are.same({}, logs)
    r = check("refuse", { synchronised = true, max_error_us = 250000 })
    assert.are.same({ n = 3, nil, "clock_max_error",
      "the kernel's maximum clock error is 250 ms, above clock.max_error_ms = 100" }, r)
  end)

  it("logs the problem as a warning under log, and lets the start go on", function()
    local r, logs = check("log", { synchronised = true, max_error_us = 250000 })
    assert.are.same({ n = 1, true }, r)
    assert.are.same({ { level = 4, line = "the kernel's maximum clock error is 250 ms, above clock.max_error_ms = 100"
      .. ' (clock.discipline = "log")' } }, logs)
  end)

  it("logs an unreadable discipline and lets the start go on", function()
    local r, logs = check("refuse", nil)
    assert.are.same({ n = 1, true }, r)
    assert.are.same({ { level = 4, line = "cannot read the clock discipline: adjtimex failed" } }, logs)
  end)

  it("takes the kernel's reading as core.discipline gives it", function()
    local cfg = assert(config.build({ clock = { discipline = "log" } }))
    assert.is_true(boot.check_discipline(cfg, core.discipline, function() end))
  end)
end)

describe("snowflake.boot.lease_options", function()
  after_each(helpers.cleanup)

  it("maps the config onto the lease's keys", function()
    local cfg = assert(config.build({
      lease = { zk_hosts = "10.0.0.1:2181,10.0.0.2:2181", root = "/snowflake/x", session_timeout_ms = 4000, margin_ms = 1000,
                registry_ahead_ms = 9000, start_bound_ms = 7000, reclaim_delay_ms = 300 },
      state = { dir = "/var/lib/x", ahead_ms = 900 },
    }))
    assert.are.same({
      zk_hosts = "10.0.0.1:2181,10.0.0.2:2181", root = "/snowflake/x", node_name = "edge-1", state_dir = "/var/lib/x",
      session_timeout_ms = 4000, margin_ms = 1000, registry_ahead_ms = 9000, local_ahead_ms = 900,
      start_bound_ms = 7000, reclaim_delay_ms = 300, require_acl = false,
    }, boot.lease_options(cfg, "edge-1"))
    assert.is_nil(boot.lease_options(cfg).node_name)
    cfg.lease.node_name = "named"
    assert.are.equal("named", boot.lease_options(cfg, "edge-1").node_name)
    cfg = assert(config.build({ lease = { auth_file = "/etc/edge-snowflake/zk.auth", require_acl = true } }))
    assert.are.equal("/etc/edge-snowflake/zk.auth", boot.lease_options(cfg).auth_file)
    assert.is_true(boot.lease_options(cfg).require_acl)
  end)

  it("refuses a lease.auth_file that is not an absolute path, or a require_acl that is not a boolean", function()
    local cfg, err = config.build({ lease = { auth_file = "zk.auth" } })
    assert.is_nil(cfg)
    assert.is_truthy(err:find("lease.auth_file", 1, true), err)
    cfg, err = config.build({ lease = { require_acl = "yes" } })
    assert.is_nil(cfg)
    assert.is_truthy(err:find("lease.require_acl", 1, true), err)
  end)

  it("refuses to start the lease on a credential file others may read, saying so", function()
    local dir = helpers.tmpdir()
    local f = assert(io.open(dir .. "/zk.auth", "w"))
    f:write("edge:pw\n")
    f:close()
    os.execute("chmod 644 " .. dir .. "/zk.auth")
    local cfg = assert(config.build({ lease = { zk_hosts = "127.0.0.1:1", root = "/snowflake/spec",
                                                auth_file = dir .. "/zk.auth" }, state = { dir = dir } }))
    local lease, code, detail = core.lease_start(helpers.bare_gen(), boot.lease_options(cfg, "spec-node"))
    assert.is_nil(lease)
    assert.are.equal("registry_access", code)
    assert.is_truthy(detail:find("has mode 0644: others than its owner may read it; chmod 600 it", 1, true), detail)
    core.logs()
  end)

  it("gives only keys core.lease_start takes (it raises on any other)", function()
    local dir = helpers.tmpdir()
    local cfg = assert(config.build({ lease = { zk_hosts = "127.0.0.1:1", root = "/snowflake/spec" }, state = { dir = dir } }))
    local lease = assert(core.lease_start(helpers.bare_gen(), boot.lease_options(cfg, "spec-node")))
    lease:stop()
    core.logs()
  end)
end)

describe("library mode's start under clock.discipline = refuse", function()
  it("returns nil, code, detail and logs that it refuses", function()
    local real = core.discipline
    core.discipline = function() return { synchronised = false, max_error_us = 0 } end
    local logs = {}
    local ok, node, code, detail = pcall(snowflake.start, { clock = { discipline = "refuse" } },
      { log = function(level, line) logs[#logs + 1] = { level = level, line = line } end })
    core.discipline = real
    assert.is_true(ok, node)
    assert.is_nil(node)
    assert.are.equal("clock_unsynchronised", code)
    assert.are.equal("the kernel reports the clock as unsynchronised (no NTP discipline)", detail)
    assert.are.same({ { level = 3, line = "the kernel reports the clock as unsynchronised (no NTP discipline)"
      .. '; refusing to start (clock.discipline = "refuse")' } }, logs)
  end)
end)
