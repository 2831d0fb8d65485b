-- edge-snowflake HTTP service (SPEC "HTTP API"): the handlers behind
-- HAProxy's lua.snowflake, as plain Lua over the dependencies it is given,
-- so busted runs them on a manual clock with a fake lease.
--
-- HAProxy answers a healthy GET /id itself (haproxy.cfg: the C converter
-- lua.sf_id); this service answers everything else: /id after a refusal
-- there (clock waits through the ladder, a young lease), /ids, /decode,
-- /health, /metrics, 404 and 405.
--
--   local svc = service.new(deps)
--   local status, headers, body = svc:respond({ method =, path =, qs =, accept =, from_peer = })
--
-- from_peer: the request came from a peer address (haproxy.cfg's peers.acl)
-- on /peer/: a handoff (SPEC "Fleet topology"). /peer/id and /peer/ids are
-- then answered as /id and /ids, here, never handed on; without from_peer
-- /peer/ is an unknown path.
--
-- deps:
--   gen           the generator: next, next_text, decode, probe, stats
--   lease_status  function() -> the lease's status table, or nil before the lease exists
--   setting       function(name) -> integer: the live runtime keys (core.setting_get)
--   count         function(name, n): the C counters (core.count)
--   counters      function() -> their sums (core.counters)
--   ladder        the clock ladder (snowflake.ladder)
--   sleep         function(ms): inside HAProxy core.msleep (yields)
--   yield         function(): back to the event loop (core.yield)
--   log           function(level, line), syslog levels
--   wall_ns, mono_ns  function() -> ns, the clocks the generator reads
--   clock_source  function() -> source[, why_not] (core.clock_source)
--   node          the X-Snowflake-Node value
--   layout        the config's layout (sequence_bits, worker_bits)
--   peers         function() -> { up = { <name> = 1|0 } } (optional: no peers)

local http = require "snowflake.http"
local metrics = require "snowflake.metrics"

local pairs, pcall, tostring, setmetatable, type = pairs, pcall, tostring, setmetatable, type
local string_match = string.match
local math_max = math.max
local string_format = string.format
local table_concat = table.concat

local M = {}

-- syslog levels
local ALERT, ERR = 1, 3

-- A process that has just started (a reload's new worker takes the sockets
-- at once) holds no lease for a moment: while its lease is still on the way,
-- yield and try again instead of refusing. Bounded, and only for a young
-- lease: a node whose registry is down answers 503 at once.
local STARTUP_GRACE_MS = 10000
local STARTUP_WAIT_MS = 3000
local ON_THE_WAY = { connecting = true, claiming = true, waiting = true }

-- /ids spins at most this long in the event loop for a new millisecond when
-- one runs out of sequence; then it yields (core.yield: the event loop serves
-- others and comes back within microseconds) and mints the rest, so an /id
-- waiting behind it is held 0.05 ms, not up to 1 ms
local IDS_SPIN_NS = 50000
-- a batch that makes no progress for this long is refused (sequence_exhausted)
local IDS_STALL_NS = 100 * 1000000

-- a clock_regressed page is logged at most this often
local PAGE_EVERY_MS = 1000

local NOT_FOUND_DETAIL = "no such path; try /id, /ids?count=N, /decode/<id>, /health, /metrics"

-- the lease as /health and /metrics see it before it exists
local function no_lease_status()
  return { state = "connecting", lease_ms_left = 0, reason = "no_lease", detail = "the lease has not started" }
end

local Service = {}
Service.__index = Service

function M.new(deps)
  local self = setmetatable({}, Service)
  for k, v in pairs(deps) do self[k] = v end
  self.seq_bits = deps.layout.sequence_bits
  self.worker_mask = (1 << deps.layout.worker_bits) - 1
  self.last_page_ms = 0
  return self
end

-- Retry-After of a 503: the wait a clock refusal asks for (extra: the
-- refusal's named extras, extra.wait_ns), else the live limits.retry_after_s.
function Service:retry_after(code, extra)
  if code == "clock_regressed" or code == "clock_wait" then
    return tostring(math_max(1, ((extra and extra.wait_ns or 0) + 999999999) // 1000000000))
  end
  return tostring(self.setting("limits.retry_after_s"))
end

-- A 503 for a refusal the ladder did not wait out: counted by code; a
-- clock regression pages (at most once a second).
function Service:refusal(code, detail, extra)
  self.count("refusal." .. code, 1)
  if code == "clock_regressed" then
    local now = self.wall_ns() // 1000000
    if now - self.last_page_ms >= PAGE_EVERY_MS then
      self.last_page_ms = now
      self.log(ALERT, "PAGE clock regressed, refusing: " .. tostring(detail))
    end
  end
  return http.error(code, detail or code, { { "Retry-After", self:retry_after(code, extra) } })
end

function Service:id_headers(id)
  return {
    { "X-Snowflake-Worker", tostring((id >> self.seq_bits) & self.worker_mask) },
    { "X-Snowflake-Node", self.node },
  }
end

-- While a young lease is on its way, waits for it (yielding) and mints
-- again. mint() returns its success values or nil, code, detail, extra.
function Service:await_lease(mint, code, detail, extra)
  local waited = 0
  while code == "no_lease" and waited < STARTUP_WAIT_MS do
    local st = self.lease_status()
    local young = not st or self.wall_ns() // 1000000 - st.started_unix_ms < STARTUP_GRACE_MS
    if not young or (st and not ON_THE_WAY[st.state]) then break end
    self.sleep(20)
    waited = waited + 20
    local r1, r2, r3, r4 = mint()
    if r1 then return r1, r2, r3 end
    code, detail, extra = r2, r3, r4
  end
  return nil, code, detail, extra
end

-- /id: the slow path after the converter refused (or any /id HAProxy did
-- not answer itself: HEAD, a second rule's miss).
function Service:handle_id(json)
  local gen = self.gen
  local function mint_one() return gen:next() end
  local id, code, detail, extra = gen:next()
  if not id and code == "no_lease" then
    id, code, detail, extra = self:await_lease(mint_one, code, detail, extra)
  end
  if not id then
    id, code, detail, extra = self.ladder:retry(mint_one, code, detail, extra)
    if not id then return self:refusal(code, detail, extra) end
  end
  self.count("ids", 1)
  self.count("id_requests", 1)
  if json then
    return 200, "application/json", '{"id":"' .. id .. '"}\n', self:id_headers(id)
  end
  return 200, "text/plain", id .. "\n", self:id_headers(id)
end

-- n IDs as an /ids body: body, first_id, last_id | nil, code, detail, extra
function Service:mint_batch(n, json)
  local gen = self.gen
  local parts, got, first, stall_until = nil, 0, nil, nil
  local last
  while true do
    local piece, first_or_code, last_or_detail, count_or_extra = gen:next_text(n - got, json, IDS_SPIN_NS, got)
    if piece then
      if got == 0 and count_or_extra == n then return piece, first_or_code, last_or_detail end
      parts = parts or {}
      parts[#parts + 1] = piece
      first, last, got, stall_until = first or first_or_code, last_or_detail, got + count_or_extra, nil
      if got == n then return table_concat(parts), first, last end
    elseif first_or_code ~= "sequence_exhausted" then
      return nil, first_or_code, last_or_detail, count_or_extra
    end
    local now = self.mono_ns()
    stall_until = stall_until or now + IDS_STALL_NS
    if now > stall_until then
      return nil, "sequence_exhausted", "no sequence number came free for 100 ms", { wait_ns = 0 }
    end
    self.yield()
  end
end

function Service:handle_ids(qs, json)
  local n, why = http.parse_count(qs, self.setting("http.max_batch"))
  if not n then return http.error("invalid_count", why) end
  local function mint() return self:mint_batch(n, json) end
  -- success: body, first_id, last_id; refusal: nil, code, detail, extra
  local body, first_or_code, last_or_detail, extra = mint()
  if not body and first_or_code == "no_lease" then
    body, first_or_code, last_or_detail, extra = self:await_lease(mint, first_or_code, last_or_detail, extra)
  end
  if not body then
    body, first_or_code, last_or_detail, extra = self.ladder:retry(mint, first_or_code, last_or_detail, extra)
    if not body then return self:refusal(first_or_code, last_or_detail, extra) end
  end
  return 200, json and "application/json" or "text/plain", body, self:id_headers(first_or_code)
end

function Service:handle_decode(text)
  local id, why = http.parse_id(text)
  if not id then return http.error("invalid_id", why) end
  local d, code, detail = self.gen:decode(id)
  if not d then return http.error("invalid_id", detail or code) end
  return 200, "application/json", http.decode_body(id, d), {}
end

function Service:handle_health()
  local st = self.lease_status() or no_lease_status()
  local ok, code, detail, extra = self.gen:probe()
  -- a small regression being waited out is still a healthy node
  if ok or code == "clock_wait" then
    return 200, "application/json", string_format(
      '{"status":"ok","worker":%d,"lease_ms_left":%d,"can_mint":true,"mint_ready_unix_ms":%d,"node":%s}\n',
      st.worker or -1, st.lease_ms_left or 0, self.wall_ns() // 1000000, http.json_string(self.node)), {}
  end
  if code == "no_lease" and st.reason and st.reason ~= "ok" then
    code, detail = st.reason, st.detail
  end
  local fields = {
    { "status", '"unavailable"' },
    { "worker", tostring(st.worker or -1) },
    { "lease_state", http.json_string(st.state) },
    { "lease_ms_left", tostring(st.lease_ms_left or 0) },
  }
  if st.mint_ready_unix_ms and st.mint_ready_unix_ms > 0 then
    fields[#fields + 1] = { "mint_ready_unix_ms", tostring(st.mint_ready_unix_ms) }
  end
  -- A process whose first lease is still on its way (a reload's new worker,
  -- a start): how long it has been at it. The health watcher and the VRRP
  -- check give a node that was serving a few seconds of this before they
  -- call it down (a reload must not move the VIP); meanwhile its requests
  -- go to peers or wait for the lease.
  if st.started_unix_ms and ON_THE_WAY[st.state] then
    local age = self.wall_ns() // 1000000 - st.started_unix_ms
    if age >= 0 and age < STARTUP_GRACE_MS then fields[#fields + 1] = { "starting_ms", tostring(age) } end
  end
  return 503, "application/json", http.error_body(code, detail or code, fields),
    { { "Retry-After", self:retry_after(code, extra) } }
end

function Service:handle_metrics()
  local snap = {
    counters = self.counters(),
    gen = self.gen:stats(),
    lease = self.lease_status() or no_lease_status(),
    clock = { source = (self.clock_source()) },
    peers = self.peers and self.peers() or { up = {} },
  }
  return 200, "text/plain; version=0.0.4", metrics.text(snap), {}
end

-- status, content_type, body, headers for a request
function Service:handle(req)
  local path, handed_over = req.path, false
  if req.from_peer and type(path) == "string" then
    local inner = string_match(path, "^/peer(/.*)$")
    if inner then path, handed_over = inner, true end
  end
  local route, arg = http.route(path)
  if handed_over and route ~= "id" and route ~= "ids" then route = nil end
  if not route then
    return http.error("not_found", NOT_FOUND_DETAIL)
  end
  local method = req.method
  if method ~= "GET" and method ~= "HEAD" then
    return http.error("method_not_allowed", "only GET and HEAD are served here", { { "Allow", http.ALLOW } })
  end
  local json = http.wants_json(req.accept)
  if route == "id" or route == "ids" then
    local status, ctype, body, headers
    if route == "id" then
      status, ctype, body, headers = self:handle_id(json)
    else
      status, ctype, body, headers = self:handle_ids(req.qs, json)
    end
    if handed_over and status == 200 then self.count("handoffs_served", 1) end
    return status, ctype, body, headers
  end
  if route == "decode" then return self:handle_decode(arg) end
  if route == "health" then return self:handle_health() end
  return self:handle_metrics()
end

-- The answer to req = { method =, path =, qs =, accept = }:
-- status, headers (a list of {name, value}, in order), body. The body is
-- the GET body for HEAD too (its length is the content-length): the caller
-- sends none. A handler that raises is logged and answered 503.
function Service:respond(req)
  local ok, status, ctype, body, extra = pcall(self.handle, self, req)
  if not ok then
    self.log(ERR, "service error: " .. tostring(status))
    status, ctype, body = http.error("internal_refusal", "the request could not be served safely")
    extra = { { "Retry-After", self:retry_after("internal_refusal") } }
  end
  local headers = {
    { "content-type", ctype },
    { "content-length", tostring(#body) },
    { "cache-control", "no-store" },
  }
  for i = 1, #extra do headers[#headers + 1] = extra[i] end
  return status, headers, body
end

return M
