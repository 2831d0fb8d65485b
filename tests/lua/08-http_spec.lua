-- snowflake.http: strict parsing, bodies, routing; snowflake.ladder.
local helpers = require "spec_helpers"
local http = require "snowflake.http"
local ladder = require "snowflake.ladder"
local _ = helpers

describe("snowflake.http", function()
  it("accepts plain digit counts in range", function()
    assert.are.equal(1, http.parse_count("count=1", 4096))
    assert.are.equal(4096, http.parse_count("count=4096", 4096))
    assert.are.equal(7, http.parse_count("count=007", 4096))
  end)

  for _, qs in ipairs({ "", "count=", "count=0", "count=4097", "count=1.0", "count=1e3", "count=0x10",
                        "count=+1", "count=-1", "count= 1", "count=1&count=2", "count=1&x=2", "x=1",
                        "count", "count=99999999999999999999", "count=%31" }) do
    it("refuses count query " .. string.format("%q", qs), function()
      local n, why = http.parse_count(qs, 4096)
      assert.is_nil(n)
      assert.is_string(why)
      assert.truthy(#why > 0)
    end)
  end

  it("parses IDs up to 2^63-1 and nothing else", function()
    assert.are.equal(math.maxinteger, http.parse_id("9223372036854775807"))
    assert.are.equal(0, http.parse_id("0"))
    for _, bad in ipairs({ "", "9223372036854775808", "-1", "1.0", "12a", "0x1F", " 1", "99999999999999999999" }) do
      assert.is_nil(http.parse_id(bad), bad)
    end
  end)

  it("formats RFC 3339 UTC with exactly three fraction digits", function()
    assert.are.equal("2024-01-01T00:00:00.000Z", http.rfc3339_ms(1704067200000))
    assert.are.equal("2024-01-01T00:00:00.007Z", http.rfc3339_ms(1704067200007))
    assert.are.equal("2093-09-06T15:47:35.551Z", http.rfc3339_ms(3903090455551))
  end)

  it("routes the known paths only", function()
    assert.are.equal("id", http.route("/id"))
    assert.are.equal("ids", http.route("/ids"))
    assert.are.same({ "decode", "123" }, { http.route("/decode/123") })
    assert.are.same({ "decode", "" }, { http.route("/decode/") })
    assert.is_nil(http.route("/"))
    assert.is_nil(http.route("/id/extra"))
    assert.is_nil(http.route("/ids/"))
    assert.is_nil(http.route("/ID"))
  end)

  it("asks for JSON only on Accept: application/json", function()
    assert.is_false(http.wants_json(nil))
    assert.is_false(http.wants_json("*/*"))
    assert.is_false(http.wants_json("text/plain"))
    assert.is_true(http.wants_json("application/json"))
    assert.is_true(http.wants_json("text/html, application/json;q=0.9"))
  end)

  it("writes error bodies as one JSON line with escaped text", function()
    local status, ctype, body = http.error("invalid_count", 'bad "count"\n')
    assert.are.equal(400, status)
    assert.are.equal("application/json", ctype)
    assert.are.equal('{"error":"invalid_count","detail":"bad \\"count\\"\\u000a"}\n', body)
    -- a caller's bytes above 0x7f (not UTF-8, or UTF-8: they are not ours to judge) stay out raw
    local _, _, high = http.error("invalid_id", "got \xff\xc3\xa9")
    assert.are.equal('{"error":"invalid_id","detail":"got \\u00ff\\u00c3\\u00a9"}\n', high)
    assert.are.equal(503, (http.error("fenced", "x")))
    assert.are.equal(405, (http.error("method_not_allowed", "x")))
  end)
end)

describe("snowflake.ladder", function()
  local slept, logs
  local function new(clock)
    slept, logs = {}, {}
    return ladder.new(clock, function(ms) slept[#slept + 1] = ms end, function(_, l) logs[#logs + 1] = l end)
  end

  it("waits out clock_wait and returns the mint's values", function()
    local l = new({ max_wait_ms = 20, borrow = false })
    local calls = 0
    local a, b, c = l:retry(function()
      calls = calls + 1
      if calls < 2 then return nil, "clock_wait", "d", { wait_ns = 3500000 } end
      return 42, "x", "y"
    end, "clock_wait", "d", { wait_ns = 4200000 })
    assert.are.same({ 42, "x", "y" }, { a, b, c })
    assert.are.same({ 5, 4 }, slept)
  end)

  it("passes other refusals through untouched", function()
    local l = new({ max_wait_ms = 20 })
    local extra = { wait_ns = 0 }
    assert.are.same({ nil, "fenced", "gone", extra }, { l:retry(function() error("not called") end, "fenced", "gone", extra) })
    assert.are.same({}, slept)
  end)

  it("lets an operator's policy refuse, and survives a raising one", function()
    local l = new({ max_wait_ms = 20, policy = function(r) return r.regression_ms < 3 and "wait" or "refuse" end })
    assert.are.equal(60000, l:generator_bound_ms())
    local id = l:retry(function() return 7 end, "clock_wait", "d", { wait_ns = 2000000 })
    assert.are.equal(7, id)
    local none, code = l:retry(function() return 7 end, "clock_wait", "d", { wait_ns = 9000000 })
    assert.is_nil(none)
    assert.are.equal("clock_regressed", code)
    l = new({ max_wait_ms = 20, policy = function() error("boom") end })
    none, code = l:retry(function() return 7 end, "clock_wait", "d", { wait_ns = 1000000 })
    assert.is_nil(none)
    assert.are.equal("clock_regressed", code)
    assert.truthy(logs[1]:find("boom", 1, true))
  end)

  it("never waits past its ceiling", function()
    local l = new({ max_wait_ms = 20, policy = function() return "wait" end })
    local none, code = l:retry(function() return nil, "clock_wait", "d", { wait_ns = 40000 * 1000000 } end,
      "clock_wait", "d", { wait_ns = 40000 * 1000000 })
    assert.is_nil(none)
    assert.are.equal("clock_regressed", code)
    assert.are.same({ 40000 }, slept)
  end)
end)
