-- snowflake.cli: the operator's commands over fake settings and a fake lease.
local helpers = require "spec_helpers"
local cli = require "snowflake.cli"

local function fixture(lease)
  local f = { settings = { ["http.max_batch"] = 4096, ["limits.retry_after_s"] = 1, ["clock.max_wait_ms"] = 20,
                           ["clock.borrow"] = 0 }, applied = 0, logs = {}, slept = {} }
  local gen = helpers.manual_gen()
  f.ops = cli.new({
    gen = gen,
    lease = function() return lease end,
    counters = function() return { ids = 12 } end,
    setting = function(name) return f.settings[name] end,
    setting_set = function(name, v) f.settings[name] = v end,
    apply_clock = function() f.applied = f.applied + 1 end,
    clock = setmetatable({}, { __index = function(_, k)
      if k == "max_wait_ms" then return f.settings["clock.max_wait_ms"] end
      if k == "borrow" then return f.settings["clock.borrow"] == 1 end
    end }),
    clock_source_text = function() return "clock_gettime" end,
    sleep = function(ms) f.slept[#f.slept + 1] = ms end,
    log = function(level, line) f.logs[#f.logs + 1] = { level = level, line = line } end,
    node = "node-a",
  })
  return f
end

describe("snowflake.cli", function()
  it("registers every command with its help", function()
    local names = {}
    for _, c in ipairs(cli.COMMANDS) do
      assert.are.equal("snowflake", c[1][1])
      assert.truthy(c[2]:find("^snowflake " .. c[1][2]))
      assert.is_function(cli.new({})[c[3]])
      names[#names + 1] = c[1][2]
    end
    assert.are.same({ "status", "set", "park", "unpark", "quarantine" }, names)
  end)

  it("sets runtime keys, applies the clock ones, logs each change", function()
    local f = fixture()
    assert.are.equal("ok: limits.retry_after_s = 7\n", f.ops:set("limits.retry_after_s", "7"))
    assert.are.equal(7, f.settings["limits.retry_after_s"])
    assert.are.equal(0, f.applied)
    assert.are.equal("ok: clock.borrow = on\n", f.ops:set("clock.borrow", "on"))
    assert.are.equal(1, f.settings["clock.borrow"])
    assert.are.equal(1, f.applied)
    assert.are.same({ level = 5, line = "runtime change: limits.retry_after_s = 7" }, f.logs[1])
    assert.are.equal(2, #f.logs)
  end)

  it("refuses unknown, start-only and bad values, changing nothing", function()
    local f = fixture()
    assert.are.equal("usage: snowflake set <key> <value>\n", f.ops:set("clock.max_wait_ms"))
    assert.truthy(f.ops:set("no.such_key", "1"):find("^error: unknown key no.such_key"))
    assert.truthy(f.ops:set("lease.root", "/x"):find("^error: lease.root cannot be changed at runtime"))
    assert.truthy(f.ops:set("clock.max_wait_ms", "-5"):find("^error: clock.max_wait_ms must be an integer in 0..60000"))
    assert.truthy(f.ops:set("limits.retry_after_s", "1.5"):find("^error: limits.retry_after_s must be an integer"))
    assert.are.equal(20, f.settings["clock.max_wait_ms"])
    assert.are.equal(1, f.settings["limits.retry_after_s"])
    assert.are.same({}, f.logs)
  end)

  it("shows the state, the live keys and the counters", function()
    local f = fixture({ status = function()
      return { state = "minting", worker = 3, lease_ms_left = 4000, reason = "ok", detail = "", session = "0x1",
               negotiated_timeout_ms = 6000, local_mark_ms = 10, registry_mark_ms = 20 }
    end })
    f.settings["limits.retry_after_s"] = 9
    assert.are.equal(table.concat({
      "state: minting", "can_mint: true", "worker: 3", "lease_ms_left: 4000", "reason: ok", "detail: ",
      "session: 0x1 timeout_ms=6000", "marks: local=10 registry=20", "clock.max_wait_ms: 20", "clock.borrow: false",
      "clock.policy: default ladder", "clock.source: clock_gettime", "http.max_batch: 4096",
      "limits.retry_after_s: 9", "ids_issued: 12", "node: node-a", "peers: none",
    }, "\n") .. "\n", f.ops:status())
  end)

  it("answers park, unpark and quarantine with an error before the lease exists", function()
    local f = fixture()
    assert.are.equal("error: the lease has not started\n", f.ops:park())
    assert.are.equal("error: the lease has not started\n", f.ops:quarantine("list"))
  end)

  it("parks and unparks the lease, and polls a quarantine request (yielding) until it is done", function()
    local parked = {}
    local polls = 0
    local lease = {
      park = function(_, on) parked[#parked + 1] = on end,
      admin = function(_, op, id)
        assert.are.equal("quarantine_clear", op)
        assert.are.equal(12, id)
        return { poll = function()
          polls = polls + 1
          if polls < 3 then return false end
          return true, ""
        end }
      end,
    }
    local f = fixture(lease)
    assert.are.equal("ok: parked\n", f.ops:park())
    assert.are.equal("ok: unparked\n", f.ops:unpark())
    assert.are.same({ true, false }, parked)
    assert.are.equal("ok: cleared 12\n", f.ops:quarantine("clear", "12"))
    assert.are.same({ 20, 20 }, f.slept)
    assert.are.equal("usage: snowflake quarantine list | snowflake quarantine clear <id>\n", f.ops:quarantine("clear", "x"))
    assert.are.equal("usage: snowflake quarantine list | snowflake quarantine clear <id>\n", f.ops:quarantine("bogus"))
    assert.are.same({ "parked by the operator", "unparked by the operator", "quarantine of worker 12 cleared by the operator" },
      { f.logs[1].line, f.logs[2].line, f.logs[3].line })
  end)
end)
