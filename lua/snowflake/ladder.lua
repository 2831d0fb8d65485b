-- The clock ladder: what a node does when the generator reports that the
-- clock is at or below the last used millisecond.
--
-- The generator classifies: a regression up to clock.max_wait_ms comes back
-- as "clock_wait" (with how long), a larger one as "clock_regressed". The
-- default ladder waits out the first and refuses the second. An operator's
-- clock.policy function, when set, sees every regression (the generator's
-- bound is then pushed out of its way) and answers "wait" or "refuse".
-- Waiting uses the sleep function it is given: core.msleep inside HAProxy
-- (it yields; the event loop goes on), a blocking sleep in library mode.

local pcall, tostring = pcall, tostring
local math_max = math.max

local M = {}

-- No wait is longer than this, whatever a policy says.
M.WAIT_CEILING_MS = 60000

local Ladder = {}
Ladder.__index = Ladder

-- clock: the live config section (read on every decision, so runtime
-- changes apply); sleep(ms); log(level, line) with syslog levels;
-- count(name, n) for the wait metrics (optional).
function M.new(clock, sleep, log, count)
  return setmetatable({ clock = clock, sleep = sleep, log = log, count = count or function() end }, Ladder)
end

-- The bound to give the generator for the current config.
function Ladder:generator_bound_ms()
  return self.clock.policy and M.WAIT_CEILING_MS or self.clock.max_wait_ms
end

function Ladder:decide(wait_ns)
  local fn = self.clock.policy
  if not fn then return "wait" end
  local wait_ms = (wait_ns + 999999) // 1000000
  local ok, verdict = pcall(fn, {
    regression_ms = math_max(wait_ms - 1, 0),
    wait_ms = wait_ms,
    max_wait_ms = self.clock.max_wait_ms,
    borrow = self.clock.borrow,
  })
  if not ok then
    self.log(3, "clock.policy raised an error, refusing: " .. tostring(verdict))
    return "refuse"
  end
  return verdict == "wait" and "wait" or "refuse"
end

-- After a refusal (code, detail, extra) from mint(): waits out what the
-- ladder allows and mints again. extra is the refusal's table of named
-- extras (extra.wait_ns: how long until the clock passes the last used ms).
-- mint() returns its values, or nil, code, detail, extra. Returns mint()'s
-- values, or nil, code, detail, extra (the last refusal's extras).
function Ladder:retry(mint, code, detail, extra)
  local waited_ms = 0
  while code == "clock_wait" or code == "sequence_exhausted" do
    local wait_ns = extra and extra.wait_ns or 0
    if code == "clock_wait" and self:decide(wait_ns) ~= "wait" then
      self.log(3, "PAGE clock regression refused by clock.policy: " .. tostring(detail))
      return nil, "clock_regressed", "the clock went back and clock.policy refused to wait", extra
    end
    local ms = math_max((wait_ns + 999999) // 1000000, 1)
    if waited_ms + ms > M.WAIT_CEILING_MS then
      return nil, "clock_regressed", detail, extra
    end
    self.sleep(ms)
    waited_ms = waited_ms + ms
    if code == "clock_wait" then
      self.count("clock_waits", 1)
      self.count("clock_wait_ns", ms * 1000000)
    end
    -- success: up to three values; refusal: nil, code, detail, extra
    local r1, r2, r3, r4 = mint()
    if r1 then return r1, r2, r3 end
    code, detail, extra = r2, r3, r4
  end
  return nil, code, detail, extra
end

return M
