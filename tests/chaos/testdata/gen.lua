-- tests/chaos/testdata/gen.lua: writes the saved history that tests/chaos/check_test.sh judges.
--
--   lua5.4 tests/chaos/testdata/gen.lua OUTDIR      (then: gzip -9n OUTDIR/vip.log)
--
-- A simulation, not a recording: a drill-client (tests/drills/client.c: 6 slots, 50 requests/s
-- each, three VIPs round robin, 3 tries, 10% JSON, 10% /ids batches of 1..16) in front of three
-- proxies p1 p2 p3, each the owner of one VIP and minting with its own worker, through 14 s of
-- faults with the timings the drills measured (1501 ms clock wait after a claim, 2000 ms session,
-- 200 ms fence margin, about 1.2 s for keepalived to move a VIP):
--    1.5 s  delay on p2's answers (25 ms) until 2.5 s                        chaos fault f1
--    3.0 s  p1's HAProxy killed (SIGKILL: its lease logs nothing more)       drill event kill
--    4.2 s  p2 takes p1's VIP
--    5.0 s  p1 restarted: new pid, claims worker 227 (418 is still held by the dead session)
--    5.5 s  the client cut off from every VIP until 6.2 s: timeouts, F lines chaos fault f2
--    6.65 s p1 mints as 227; 7.0 s it takes its VIP back (old connections reset)
--    8.0 s  p3 cut off from ZooKeeper until 11.0 s                            chaos fault f3
--    9.8 s  p3 reaches its fence: parked, fenced (fence_mono_ms in the line); 503:fenced
--   10.3 s  p1 takes p3's VIP
--   11.0 s  p3's session has expired: a new one, re-claims worker 358, mints again at 12.58 s
--   12.9 s  p3 takes its VIP back; 14.0 s the client stops; 14.5 s the proxies stop
-- Files: vip.log (the client), p1.log p2.log p3.log (HAProxy logs with the lease lines), events,
-- notify-p1.log notify-p2.log notify-p3.log (keepalived notify lines). Deterministic: a fixed LCG,
-- no math.random, so the same file comes out on any Lua 5.3/5.4.

local out_dir = assert(arg[1], "usage: lua5.4 gen.lua OUTDIR")

local M0, W0 = 18734916960, 1796190487808880 -- client start: mono us, wall us (a real drill run's)
local EPOCH, SEQ_BITS, WORKER_BITS = 1704067200000, 12, 10
local S = 1000000 -- us in a second
local DURATION = 14 * S

local rng_state = 20261202
local function rand(lo, hi) -- an integer in [lo, hi]
  rng_state = (rng_state * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
  return lo + (rng_state >> 20) % (hi - lo + 1)
end

local function sec(x) return math.floor(x * S + 0.5) end
local function mono(t) return M0 + t end         -- t: us since the client's start
local function wall_us(t) return W0 + t end

-- ---- the fleet -------------------------------------------------------------------------------
-- A process: the node it runs on, its pid, its life, and its lease's states over time.
local procs = {
  { node = "p1", pid = 4101, born = sec(-4.0), died = sec(3.0), worker = 418 },
  { node = "p1", pid = 4377, born = sec(5.0), died = sec(14.5), worker = 227 },
  { node = "p2", pid = 4102, born = sec(-3.8), died = sec(14.5), worker = 77 },
  { node = "p3", pid = 4103, born = sec(-3.6), died = sec(14.5), worker = 358 },
}
local function proc_at(node, t)
  for _, p in ipairs(procs) do
    if p.node == node and p.born <= t and t < p.died then return p end
  end
end

-- lease lines per process: { t, state, worker, reason, fence (ms or nil), text }
local function lease_start(p, reclaim_at)
  local t = reclaim_at or p.born
  local wait_end = t + sec(0.08) + 1501000 + rand(500, 1500)
  p.lease = p.lease or {}
  local L = p.lease
  if reclaim_at then
    L[#L + 1] = { t = t + sec(0.02), state = "connecting", worker = -1, reason = "no_lease",
                  text = "the registry session expired; opening a new one" }
  end
  L[#L + 1] = { t = t + sec(0.05), state = "claiming", worker = -1, reason = "no_lease",
                text = "choosing a worker ID under /snowflake/chaos" }
  L[#L + 1] = { t = t + sec(0.08), state = "waiting", worker = p.worker, reason = "clock_wait",
                text = ("waiting 1501 ms for the clock to pass the marks of worker %d"):format(p.worker) }
  L[#L + 1] = { t = wait_end, state = "minting", worker = p.worker, reason = "ok",
                text = ("minting as worker %d"):format(p.worker) }
  return wait_end
end

for _, p in ipairs(procs) do lease_start(p) end
local p3 = procs[4]
-- p3 loses ZooKeeper at 8.0 s: the last answer is just before; fence = ack + 2000 - 200 ms
local P3_FENCE_MS = (mono(sec(8.0)) - 900) // 1000 + 1800
local P3_FENCED_AT = (P3_FENCE_MS + 1) * 1000 - M0 -- the first ms past the fence, client time
p3.lease[#p3.lease + 1] = { t = P3_FENCED_AT, state = "parked", worker = p3.worker, reason = "fenced",
  fence = P3_FENCE_MS, text = "no registry answer for 1801 ms; minting stopped 200 ms before the lease could expire" }
local P3_MINTS_AGAIN = lease_start(p3, sec(11.0))
for _, p in ipairs(procs) do
  if p.died == sec(14.5) then
    p.lease[#p.lease + 1] = { t = sec(14.5), state = "stopped", worker = p.worker, reason = "stopped",
      fence = (mono(sec(14.5)) - 40000) // 1000 + 1800, text = "stopped" }
  end
end
table.sort(p3.lease, function(a, b) return a.t < b.t end)

-- The answer of a process at t: "mint" or an error code of a 503.
local function answer_of(p, t)
  local state, reason = "connecting", "no_lease"
  for _, l in ipairs(p.lease) do
    if l.t <= t then state, reason = l.state, l.reason end
  end
  if state == "minting" then return "mint" end
  return reason == "clock_wait" and "no_lease" or reason
end

-- VIP holders over time (VIP i is owned by p(i+1)): { from, host }
local holders = {
  [0] = { { sec(-2.0), "p1" }, { sec(4.2), "p2" }, { sec(7.0), "p1" } },
  [1] = { { sec(-2.0), "p2" } },
  [2] = { { sec(-2.0), "p3" }, { sec(10.3), "p1" }, { sec(12.9), "p3" } },
}
local function holder(vip, t)
  local h
  for _, e in ipairs(holders[vip]) do
    if e[1] <= t then h = e[2] end
  end
  return h
end

local P2_DELAY = { sec(1.5), sec(2.5) }
local CUT = { sec(5.5), sec(6.2) }

-- per worker: the last millisecond used and its sequence (the generator's state)
local gen = {}
local function mint(worker, t, count)
  local ms = wall_us(t) // 1000
  local g = gen[worker] or { ms = -1, seq = -1 }
  gen[worker] = g
  if ms > g.ms then g.ms, g.seq = ms, -1 end
  local ids = {}
  for i = 1, count do
    g.seq = g.seq + 1
    assert(g.seq < (1 << SEQ_BITS), "sequence exhausted")
    ids[i] = ((g.ms - EPOCH) << (SEQ_BITS + WORKER_BITS)) | (worker << SEQ_BITS) | g.seq
  end
  return ids
end

-- ---- the client ------------------------------------------------------------------------------
local SLOTS, INTERVAL, TRIES, TIMEOUT, BACKOFF = 6, 20000, 3, 200000, 10000
local JSON_PCT, IDS_PCT, MAX_COUNT = 10, 10, 16
local counts = { 1, 2, 4, 8, 16 }
local lines = {}
local n_attempts, n_ids, n_errors, n_requests, n_failed = 0, 0, 0, 0, 0

local slots = {}
for s = 0, SLOTS - 1 do
  slots[s] = { idx = s, req = 0, n_batch = 0, conn = {}, at = s * 300, step = "begin_request" }
end

local function emit(fmt, ...) lines[#lines + 1] = fmt:format(...) end

local function fail(sl, t_end, kind, detail)
  emit("E %d %d %d %s %s %d %d %d", mono(sl.start), mono(t_end), sl.idx, kind, detail, sl.vip, sl.try, sl.req)
  n_errors = n_errors + 1
  sl.conn[sl.vip] = nil
  if sl.try < TRIES then
    sl.try, sl.vip = sl.try + 1, (sl.vip + 1) % 3
    sl.at, sl.step = t_end, "begin_attempt"
    return
  end
  emit("F %d %d %d %d %d", mono(sl.req_start), mono(t_end), sl.idx, sl.try, sl.req)
  n_failed, n_requests = n_failed + 1, n_requests + 1
  sl.req = sl.req + 1
  sl.at, sl.step = t_end + BACKOFF, "begin_request"
end

local function succeed(sl, t_end, ids, p)
  for _, id in ipairs(ids) do
    emit("I %d %d %d %d %s %d %d %s %d %d", mono(sl.start), mono(t_end), sl.idx, id, p.node, sl.vip, sl.try,
         sl.kind, sl.req, p.worker)
  end
  n_ids, n_requests = n_ids + #ids, n_requests + 1
  sl.req = sl.req + 1
  sl.at, sl.step = math.max(sl.req_start + INTERVAL, t_end), "begin_request"
end

local steps = {}

function steps.begin_request(sl, t)
  if t >= DURATION then sl.step = "done" return end
  local p = (37 * sl.req) % 100
  sl.kind, sl.count = "id", 1
  if p < JSON_PCT then
    sl.kind = "json"
  elseif p < JSON_PCT + IDS_PCT then
    sl.kind, sl.count = "ids", counts[sl.n_batch % #counts + 1]
    sl.n_batch = sl.n_batch + 1
  end
  assert(sl.count <= MAX_COUNT)
  sl.vip, sl.try, sl.req_start = (sl.idx + sl.req) % 3, 1, t
  return steps.begin_attempt(sl, t)
end

function steps.begin_attempt(sl, t)
  n_attempts = n_attempts + 1
  sl.start = t
  local host = holder(sl.vip, t)
  local p = proc_at(host, t)
  local conn = sl.conn[sl.vip]
  if t >= CUT[1] and t < CUT[2] then
    -- nothing reaches the VIPs: a request on a kept connection waits for its answer, a SYN is lost
    if conn then return fail(sl, t + TIMEOUT + rand(50, 900), "read_timeout", "no_complete_response") end
    return fail(sl, t + TIMEOUT + rand(50, 900), "connect_timeout", "no_connection")
  end
  if conn and conn ~= p then
    -- the VIP moved or the process died: the other end has no such connection
    return fail(sl, t + rand(80, 200), "reset", "Connection_reset_by_peer")
  end
  if not p then return fail(sl, t + rand(50, 120), "connect_refused", "Connection_refused") end
  sl.conn[sl.vip] = p
  sl.proc = p
  sl.at, sl.step = t + (conn and 0 or rand(60, 150)) + rand(80, 200), "mint"
end

function steps.mint(sl, t)
  local p = sl.proc
  local delay = rand(100, 400) + 2 * sl.count
  if p.node == "p2" and t >= P2_DELAY[1] and t < P2_DELAY[2] then delay = delay + 25000 end
  local a = answer_of(p, t)
  if a == "mint" then
    sl.ids = mint(p.worker, t, sl.count)
  else
    sl.ids, sl.code = nil, a
  end
  sl.at, sl.step = t + delay, "finish"
end

function steps.finish(sl, t)
  if t > DURATION + 5000 then sl.step = "done" return end -- in flight when the client stopped
  if sl.ids then return succeed(sl, t, sl.ids, sl.proc) end
  return fail(sl, t, "http", "503:" .. sl.code)
end

while true do
  local next_sl
  for s = 0, SLOTS - 1 do
    local sl = slots[s]
    if sl.step ~= "done" and (not next_sl or sl.at < next_sl.at) then next_sl = sl end
  end
  if not next_sl then break end
  steps[next_sl.step](next_sl, next_sl.at)
end

-- ---- files ---------------------------------------------------------------------------------------
local function write(name, text)
  local f = assert(io.open(out_dir .. "/" .. name, "w"))
  f:write(text)
  f:close()
end

write("vip.log", table.concat({
  ("# drill-client label=vip addr=10.213.0.100 port=8080 conns=%d rate=50 mono_us=%d wall_us=%d "
   .. "addrs=10.213.0.100,10.213.0.101,10.213.0.102 tries=%d json_pct=%d ids_pct=%d max_count=%d")
    :format(SLOTS, M0, W0, TRIES, JSON_PCT, IDS_PCT, MAX_COUNT),
  table.concat(lines, "\n"),
  ("# end attempts=%d ids=%d errors=%d mono_us=%d requests=%d failed=%d"):format(n_attempts, n_ids, n_errors,
    mono(DURATION), n_requests, n_failed),
}, "\n") .. "\n")

-- HAProxy logs: the lease lines among a few others, as the service writes them
local ZK = "10.213.0.21:2181,10.213.0.22:2181,10.213.0.23:2181"
for _, node in ipairs({ "p1", "p2", "p3" }) do
  local rows = {}
  local function row(t, text) rows[#rows + 1] = { t = t, n = #rows, text = text } end
  for _, p in ipairs(procs) do
    if p.node == node then
      row(p.born, "edge-snowflake: clock: minting reads clock_gettime (the kernel's clocksource is not tsc)")
      row(p.born + 1, ("edge-snowflake lease: starting, registry %s root /snowflake/chaos, node %s"):format(ZK, node))
      row(p.born + 2, ("edge-snowflake lease: session 0x%x established, timeout 2000 ms (requested 2000)")
        :format(0x200011db3f30000 + p.pid))
      for _, l in ipairs(p.lease) do
        row(l.t, ("edge-snowflake lease state=%s worker=%d reason=%s pid=%d mono_ms=%d%s: %s"):format(l.state,
          l.worker, l.reason, p.pid, mono(l.t) // 1000, l.fence and (" fence_mono_ms=%d"):format(l.fence) or "",
          l.text))
        if l.state == "waiting" then
          row(l.t - 1, ("edge-snowflake lease: claimed worker %d (/snowflake/chaos/workers/%d), registry mark none")
            :format(p.worker, p.worker))
        end
      end
    end
  end
  if node ~= "p1" then
    row(sec(3.0) + 21000, "Server sf_peers/p1 is DOWN, reason: Layer4 connection problem, info: \"Connection "
      .. "refused\", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 "
      .. "remaining in queue.")
  end
  table.sort(rows, function(a, b) if a.t ~= b.t then return a.t < b.t end return a.n < b.n end)
  local text = {}
  for _, r in ipairs(rows) do text[#text + 1] = r.text end
  write(node .. ".log", table.concat(text, "\n") .. "\n")
end

local ev = { "# chaos events of the synthetic history (tests/chaos/testdata/gen.lua)" }
local function event(t, name, keys)
  ev[#ev + 1] = ("%s %d %d%s"):format(name, mono(t), wall_us(t), keys and " " .. keys or "")
end
event(P2_DELAY[1], "start", "fault=f1 kind=delay target=p2 detail=25ms")
event(P2_DELAY[2], "heal", "fault=f1")
event(sec(3.0), "kill")
event(sec(5.0), "restart")
event(CUT[1], "start", "fault=f2 kind=partition target=client detail=all_vips")
event(CUT[2], "heal", "fault=f2")
event(sec(8.0), "start", "fault=f3 kind=partition target=p3 detail=zookeeper")
event(sec(11.0), "heal", "fault=f3")
write("events", table.concat(ev, "\n") .. "\n")

-- keepalived: every host logs its own transitions of every instance
local notes = { p1 = {}, p2 = {}, p3 = {} }
local function note(t, host, inst, state, prio)
  local ms = wall_us(t) // 1000
  local n = notes[host]
  n[#n + 1] = ("%s.%03dZ %d host=%s INSTANCE %s %s prio=%d"):format(os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000),
    ms % 1000, ms, host, inst, state, prio)
end
for i, host in ipairs({ "p1", "p2", "p3" }) do
  for j, inst in ipairs({ "sf_vip_p1", "sf_vip_p2", "sf_vip_p3" }) do
    note(sec(-4.5) + 10000 * j + 1000 * i, host, inst, "BACKUP", 60)
  end
end
for vip = 0, 2 do
  local inst = ("sf_vip_p%d"):format(vip + 1)
  local prev
  for _, e in ipairs(holders[vip]) do
    if prev then note(e[1] - rand(1000, 9000), prev, inst, "BACKUP", 60) end
    note(e[1], e[2], inst, "MASTER", e[2] == ("p%d"):format(vip + 1) and 250 or 249)
    prev = e[2]
  end
end
for i, host in ipairs({ "p1", "p2", "p3" }) do
  for j, inst in ipairs({ "sf_vip_p1", "sf_vip_p2", "sf_vip_p3" }) do
    note(sec(14.6) + 7000 * j + 1000 * i, host, inst, "STOP", 60)
  end
  local n = notes[host]
  -- appended in the order the transitions happened (instances changing at once may swap)
  table.sort(n, function(a, b)
    local x, y = a:match(" (%d+) "), b:match(" (%d+) ")
    if x ~= y then return x < y end
    return a < b
  end)
  write("notify-" .. host .. ".log", table.concat(n, "\n") .. "\n")
end

io.stderr:write(("gen.lua: %d lines, %d IDs, %d errors, %d requests, %d failed; p3 fence_mono_ms %d, "
  .. "mints again at mono_ms %d\n"):format(#lines, n_ids, n_errors, n_requests, n_failed, P3_FENCE_MS,
  mono(P3_MINTS_AGAIN) // 1000))
