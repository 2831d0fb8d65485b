-- Peer handoff (SPEC "Fleet topology: active-active, with peer handoff"):
-- whether a request this proxy did not answer on its fast path goes to a
-- peer. HAProxy runs the decision as the action lua.sf_route on the slow
-- path only (haproxy.cfg), for GET /id and /ids.
--
--   local h = handoff.new(deps)
--   local reason = h:route(healthy_peers)  -- a refusal code: hand it off; nil: serve here
--
-- healthy_peers: function() -> how many peers pass their health check now
-- (inside HAProxy the fetch nbsrv(sf_peers)); called only on a refusal.
-- deps:
--   gen            the generator (probe)
--   ladder         the clock ladder (decide: would it wait this regression out)
--   count          function(name, n): the C counters (core.count)
--   log            function(level, line), syslog levels (optional)
--   wall_ns        function() -> ns (optional; with log: the page's rate)
--
-- Served here, not handed off:
--   - a node that can mint (the fast path lost a race, a HEAD, a batch);
--   - a refusal the ladder waits out: a small clock regression (clock_wait)
--     the ladder (or the operator's clock.policy) accepts to wait, a
--     millisecond whose sequence ran out (sequence_exhausted: the next one
--     is under a millisecond away);
--   - anything, when no peer is healthy: the service answers it as it
--     always has (it waits for a young lease, or answers 503).
-- Every other refusal (clock_regressed, fenced, parked, no_lease,
-- quarantined, hwm_*, registry_*, stopped, ...) is handed off; the peer
-- answers with its own worker. A clock regression still pages (SPEC "Clock
-- policy": a loud log line), at most once a second, though no caller sees
-- a 503; a small regression clock.policy refused to wait is handed off as
-- clock_regressed, the code the service would have refused with.

local setmetatable, tostring = setmetatable, tostring

local M = {}

-- refusals that are a wait of about a millisecond, never worth a hop
local WAITED_HERE = { sequence_exhausted = true }

local ALERT = 1
local PAGE_EVERY_MS = 1000

local Handoff = {}
Handoff.__index = Handoff

function M.new(deps)
  return setmetatable({ gen = deps.gen, ladder = deps.ladder, count = deps.count, log = deps.log,
                        wall_ns = deps.wall_ns, last_page_ms = nil }, Handoff)
end

-- The refusal code to hand the request off for, or nil to serve it here.
-- A handoff is counted ("handoff.<code>"); a refusal with no healthy peer
-- is counted by the service when it answers 503.
function Handoff:route(healthy_peers)
  local ok, code, detail, extra = self.gen:probe()
  if ok or WAITED_HERE[code] then return nil end
  if code == "clock_wait" then
    if self.ladder:decide(extra and extra.wait_ns or 0) == "wait" then return nil end
    code, detail = "clock_regressed", "the clock went back and clock.policy refused to wait: " .. tostring(detail)
  end
  if healthy_peers() < 1 then return nil end
  if code == "clock_regressed" then self:page(detail) end
  self.count("handoff." .. code, 1)
  return code
end

-- The clock page of a node that hands its requests off, at most once a
-- second (the service pages the same way when it answers the 503 itself).
function Handoff:page(detail)
  if not self.log then return end
  local now_ms = self.wall_ns and self.wall_ns() // 1000000 or 0
  if self.last_page_ms and now_ms - self.last_page_ms < PAGE_EVERY_MS then return end
  self.last_page_ms = now_ms
  self.log(ALERT, "PAGE clock regressed, handing requests to peers: " .. tostring(detail))
end

return M
