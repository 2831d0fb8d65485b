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
-- answers with its own worker.

local setmetatable = setmetatable

local M = {}

-- refusals that are a wait of about a millisecond, never worth a hop
local WAITED_HERE = { sequence_exhausted = true }

local Handoff = {}
Handoff.__index = Handoff

function M.new(deps)
  return setmetatable({ gen = deps.gen, ladder = deps.ladder, count = deps.count }, Handoff)
end

-- The refusal code to hand the request off for, or nil to serve it here.
-- A handoff is counted ("handoff.<code>"); a refusal with no healthy peer
-- is counted by the service when it answers 503.
function Handoff:route(healthy_peers)
  local ok, code, _, extra = self.gen:probe()
  if ok or WAITED_HERE[code] then return nil end
  if code == "clock_wait" and self.ladder:decide(extra and extra.wait_ns or 0) == "wait" then
    return nil
  end
  if healthy_peers() < 1 then return nil end
  self.count("handoff." .. code, 1)
  return code
end

return M
