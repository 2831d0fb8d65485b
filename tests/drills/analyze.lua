-- tests/drills/analyze.lua: reads drill-client logs and judges them (Lua 5.4: IDs are integers).
--
--   lua5.4 analyze.lua [options] LOG...
--
-- Log lines (tests/drills/client.c); the fields after the old ones are optional, so logs of the
-- single-address client still parse (vip 0, try 1, kind id, each attempt its own request):
--   I <start_us> <end_us> <slot> <id> <node> [<vip> <try> <kind> [<req> [<worker>]]]  (worker: the
--   header, not used here: tests/chaos/check.c compares it with the ID's bits)
--   E <start_us> <end_us> <slot> <kind> <detail> [<vip> <try> [<req>]]
--   F <start_us> <end_us> <slot> <tries> [<req>]
-- A logical request is (log, slot, req); without req, (log, slot, start of the attempt).
--
-- Always printed ("key value" lines):
--   ids, errors (failed attempts), dups, order_violations, window_ms (the longest time without a
--   successful answer, over the whole run), errors_by (kind=count,...), workers (worker=count,...),
--   nodes (node=count), requests (logical requests that got an ID or an F line), failed_requests
--   (F lines), retried_requests (requests that got their ID on a try after the first),
--   errors_by_vip and ids_by_vip (vip=count,..., by address index), ids_by_kind (id, json, ids:
--   text /id, JSON /id, /ids), share_min_pct and share_min_node (the node with the smallest share
--   of all IDs by the node header, percent with one decimal, "none" without IDs; over the nodes
--   seen and those of --nodes)
-- Options:
--   --layout SEQ_BITS:WORKER_BITS[:EPOCH_MS]   ID layout (default 12:10:1704067200000)
--   --phase NAME:FROM_US:TO_US   "phase_NAME_window_ms", "phase_NAME_failed", "phase_NAME_ids":
--                                the longest gap between successful answers that ended in
--                                [FROM, TO] (the last success before FROM counts as the start),
--                                failed attempts and IDs that ended in it; "phase_NAME_last_ok_ms"
--                                and "phase_NAME_first_503_ms" (ms after FROM, "none"),
--                                "phase_NAME_max_ts" (latest ID timestamp, Unix ms, of requests
--                                that began in the phase), "phase_NAME_failed_requests" (F lines
--                                that ended in it)
--   --vip-phase NAME:VIP:FROM_US:TO_US  the same over attempts on address index VIP only:
--                                "vphase_NAME_window_ms" (and _from_us, _to_us; when no success on
--                                VIP ended in [FROM, TO], the window runs from the last one before
--                                FROM, or FROM, to TO), "vphase_NAME_errors" (failed attempts on VIP
--                                that ended in it), "vphase_NAME_ids" (IDs from VIP that ended in it)
--   --nodes NODE,NODE...         nodes that count for share_min_pct even when they served nothing
--   --fence NAME:WORKER:WALL_MS  "fence_NAME_late_ids": IDs of WORKER whose timestamp is at or after
--                                WALL_MS; "fence_NAME_last_ms": the latest such worker's timestamp
--                                minus WALL_MS (negative when all are before)
--   --since NAME:MONO_US:WALL_MS "since_NAME_first_ok_ms" (first success that began after MONO_US),
--                                "since_NAME_first_503_ms" (first HTTP 503 that ended after it),
--                                "since_NAME_last_ts_ms" (latest ID timestamp minus WALL_MS),
--                                "since_NAME_ids" (successes that began after MONO_US)
--   --worker-ids WORKER          "worker_WORKER_ids", "worker_WORKER_first_ts", "worker_WORKER_last_ts"
--   --worker-phase NAME:WORKER:FROM_US:TO_US  over IDs of WORKER whose request began and ended in
--                                [FROM, TO] (a request in flight across FROM or TO is in no phase,
--                                so two adjacent phases compare only answers the client saw in order):
--                                "wp_NAME_ids", "wp_NAME_min_id", "wp_NAME_max_id", "wp_NAME_min_ts",
--                                "wp_NAME_max_ts" ("none" when there are none)
--   --list-order N               print up to N order violations / duplicates as "# ..." lines
-- Per-worker order: an answer A that ended before a request B began was issued before B; if both
-- carry the same worker, A's ID must be below B's. Checked over every log together (one monotonic
-- clock), so it covers the VIP moving between hosts, a client's addresses and a host reusing a
-- worker ID. (The IDs of one /ids answer share their times: the client checks their order.)

local seq_bits, worker_bits, epoch = 12, 10, 1704067200000
local phases, fences, sinces, worker_q, wphases, vphases = {}, {}, {}, {}, {}, {}
local listed_nodes = {}
local list_n = 5
local files = {}

local function die(msg)
  io.stderr:write("analyze.lua: ", msg, "\n")
  os.exit(2)
end

local function int(s, what)
  local v = math.tointeger(tonumber(s))
  if not v then die("bad " .. what .. ": " .. tostring(s)) end
  return v
end

do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--layout" then
      local s, w, e = arg[i + 1]:match("^(%d+):(%d+):?(%d*)$")
      if not s then die("--layout SEQ:WORKER[:EPOCH]") end
      seq_bits, worker_bits = int(s, "seq bits"), int(w, "worker bits")
      if e ~= "" then epoch = int(e, "epoch") end
      i = i + 2
    elseif a == "--phase" then
      local n, f, t = arg[i + 1]:match("^([%w_]+):(%-?%d+):(%-?%d+)$")
      if not n then die("--phase NAME:FROM_US:TO_US") end
      phases[#phases + 1] = { name = n, from = int(f, "from"), to = int(t, "to") }
      i = i + 2
    elseif a == "--vip-phase" then
      local n, v, f, t = (arg[i + 1] or ""):match("^([%w_]+):(%d+):(%-?%d+):(%-?%d+)$")
      if not n then die("--vip-phase NAME:VIP:FROM_US:TO_US") end
      vphases[#vphases + 1] = { name = n, vip = int(v, "vip"), from = int(f, "from"), to = int(t, "to") }
      i = i + 2
    elseif a == "--nodes" then
      for n in (arg[i + 1] or ""):gmatch("[^,]+") do listed_nodes[#listed_nodes + 1] = n end
      i = i + 2
    elseif a == "--fence" then
      local n, w, t = arg[i + 1]:match("^([%w_]+):(%d+):(%d+)$")
      if not n then die("--fence NAME:WORKER:WALL_MS") end
      fences[#fences + 1] = { name = n, worker = int(w, "worker"), wall = int(t, "wall") }
      i = i + 2
    elseif a == "--since" then
      local n, m, w = arg[i + 1]:match("^([%w_]+):(%d+):(%d+)$")
      if not n then die("--since NAME:MONO_US:WALL_MS") end
      sinces[#sinces + 1] = { name = n, mono = int(m, "mono"), wall = int(w, "wall") }
      i = i + 2
    elseif a == "--worker-ids" then
      worker_q[#worker_q + 1] = int(arg[i + 1], "worker")
      i = i + 2
    elseif a == "--worker-phase" then
      local n, w, f, t = arg[i + 1]:match("^([%w_]+):(%d+):(%-?%d+):(%-?%d+)$")
      if not n then die("--worker-phase NAME:WORKER:FROM_US:TO_US") end
      wphases[#wphases + 1] = { name = n, worker = int(w, "worker"), from = int(f, "from"), to = int(t, "to") }
      i = i + 2
    elseif a == "--list-order" then
      list_n = int(arg[i + 1], "count")
      i = i + 2
    else
      files[#files + 1] = a
      i = i + 1
    end
  end
end
if #files == 0 then die("no log files") end

local ts_shift = seq_bits + worker_bits
local wmask = (1 << worker_bits) - 1

local oks, errs, fails = {}, {}, {}
local errors_by, nodes, ids_by_vip, errors_by_vip, ids_by_kind = {}, {}, {}, {}, {}
-- logical requests with an outcome (an ID or an F line): per log, per slot, a set of request
-- numbers (or "@<start>" for lines without one); n_retried: those that got their ID after try 1
local n_requests, n_retried = 0, 0
-- %d+ of a time, slot, vip or try always reads as an integer; an ID may overflow (checked)
local tointeger, tonum = math.tointeger, tonumber
-- the new fields are tried first (one match a line: a few hundred thousand lines stay fast)
local I_NEW = "^I (%d+) (%d+) (%d+) (%d+) (%S+) (%d+) (%d+) (%a+) (%d+) ?%S*$"
local I_OLD = "^I (%d+) (%d+) (%d+) (%d+) (%S+)(.*)$"
local E_NEW = "^E (%d+) (%d+) (%d+) (%S+) (%S+) (%d+) (%d+) (%d+)$"
local E_OLD = "^E (%d+) (%d+) (%d+) (%S+) (%S+)(.*)$"
for _, path in ipairs(files) do
  local fh = io.open(path, "r")
  if not fh then die("cannot read " .. path) end
  local slots = {}
  -- true the first time a logical request is seen
  local function outcome(conn, req)
    local set = slots[conn]
    if not set then set = {}; slots[conn] = set end
    if set[req] then return false end
    set[req], n_requests = true, n_requests + 1
    return true
  end
  for line in fh:lines() do
    local kind = line:sub(1, 1)
    if kind == "I" then
      local s, e, conn, id, node, vip, try, ik, req = line:match(I_NEW)
      if not s then
        local rest
        s, e, conn, id, node, rest = line:match(I_OLD)
        if s then
          vip, try, ik, req = rest:match("^ (%d+) (%d+) ?(%a*) ?(%d*)")
          if not ik or ik == "" then ik = "id" end
          if not req or req == "" then req = "@" .. s end
        end
      end
      if s then
        local v = tointeger(tonum(id))
        if not v then die("unparseable ID in " .. path .. ": " .. line) end
        vip, try = vip and tonum(vip) or 0, try and tonum(try) or 1
        oks[#oks + 1] = { s = tonum(s), e = tonum(e), id = v,
                          w = (v >> seq_bits) & wmask, ts = (v >> ts_shift) + epoch, node = node, vip = vip }
        nodes[node] = (nodes[node] or 0) + 1
        ids_by_vip[vip] = (ids_by_vip[vip] or 0) + 1
        ids_by_kind[ik] = (ids_by_kind[ik] or 0) + 1
        if outcome(conn, req) and try > 1 then n_retried = n_retried + 1 end
      end
    elseif kind == "E" then
      local s, e, _, k, d, vip = line:match(E_NEW)
      if not s then
        local rest
        s, e, _, k, d, rest = line:match(E_OLD)
        -- an old line's detail may run on in words: then the new fields are absent
        vip = s and rest:match("^ (%d+) %d+ ?%d*$")
      end
      if s then
        local key = k == "http" and ("http_" .. d) or k
        vip = vip and tonum(vip) or 0
        errs[#errs + 1] = { s = tonum(s), e = tonum(e), kind = k, detail = d, vip = vip }
        errors_by[key] = (errors_by[key] or 0) + 1
        errors_by_vip[vip] = (errors_by_vip[vip] or 0) + 1
      end
    elseif kind == "F" then
      local s, e, conn, _, req = line:match("^F (%d+) (%d+) (%d+) (%d+) ?(%d*)")
      if s then
        fails[#fails + 1] = { s = tonum(s), e = tonum(e) }
        outcome(conn, req ~= "" and req or ("@" .. s))
      end
    end
  end
  fh:close()
end

local out = {}
local function put(k, v) out[#out + 1] = k .. " " .. tostring(v) end

put("ids", #oks)
put("errors", #errs)
put("requests", n_requests)
put("failed_requests", #fails)
put("retried_requests", n_retried)

-- duplicates
local ids = {}
for i, r in ipairs(oks) do ids[i] = r.id end
table.sort(ids)
local dups, listed = 0, 0
for i = 2, #ids do
  if ids[i] == ids[i - 1] then
    dups = dups + 1
    if listed < list_n then
      listed = listed + 1
      print(string.format("# duplicate %d (worker %d, ts %d)", ids[i], (ids[i] >> seq_bits) & wmask,
        (ids[i] >> ts_shift) + epoch))
    end
  end
end
put("dups", dups)

-- recs sorted by their integer field f (ties in input order). Sorting plain integers is several
-- times faster than with a comparator: each key is the field's offset from the minimum above the
-- record's index; a comparator does it when the keys would not fit in 63 bits.
local function sorted_by(recs, f)
  local n, lo, hi = #recs, math.maxinteger, math.mininteger
  for i = 1, n do
    local v = recs[i][f]
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  local res = {}
  if n < (1 << 21) and (n == 0 or hi - lo < (1 << 41)) then
    local keys = {}
    for i = 1, n do keys[i] = ((recs[i][f] - lo) << 21) | i end
    table.sort(keys)
    for i = 1, n do res[i] = recs[keys[i] & ((1 << 21) - 1)] end
  else
    for i = 1, n do res[i] = recs[i] end
    table.sort(res, function(a, b) return a[f] < b[f] end)
  end
  return res
end

-- per-worker order: sweep requests by start time, answers by end time
local by_start, by_end = sorted_by(oks, "s"), sorted_by(oks, "e")
local maxid, maxrec = {}, {}
local j, violations, n_end = 1, 0, #by_end
listed = 0
for _, b in ipairs(by_start) do
  while j <= n_end and by_end[j].e < b.s do
    local a = by_end[j]
    if not maxid[a.w] or a.id > maxid[a.w] then maxid[a.w], maxrec[a.w] = a.id, a end
    j = j + 1
  end
  local m = maxid[b.w]
  if m and m >= b.id then
    violations = violations + 1
    if listed < list_n then
      listed = listed + 1
      local a = maxrec[b.w]
      print(string.format("# order: worker %d: %d (%s, ended %d us) then %d (%s, began %d us), ts %d then %d",
        b.w, a.id, a.node, a.e, b.id, b.node, b.s, a.ts, b.ts))
    end
  end
end
put("order_violations", violations)

-- the longest time without a successful answer (on address index vip only, when given)
local function window(from, to, vip)
  local last, best, bfrom, bto, seen = nil, 0, 0, 0, false
  for _, r in ipairs(by_end) do
    if r.e > to then break end
    if not vip or r.vip == vip then
      if r.e < from then
        last = r.e
      else
        if last and r.e - last > best then best, bfrom, bto = r.e - last, last, r.e end
        last, seen = r.e, true
      end
    end
  end
  -- when nothing ended in [from, to], last is the last success before from (or nil)
  return best, bfrom, bto, seen, last
end
local w, wf, wt = window(math.mininteger, math.maxinteger)
put("window_ms", string.format("%.1f", w / 1000))
put("window_from_us", wf)
put("window_to_us", wt)

for _, p in ipairs(phases) do
  local best, bf, bt = window(p.from, p.to)
  local failed, n, last_ok, first_503, max_ts = 0, 0, nil, nil, nil
  for _, e in ipairs(errs) do
    if e.e >= p.from and e.e <= p.to then
      failed = failed + 1
      if e.kind == "http" and e.detail:match("^503") and (not first_503 or e.e < first_503) then first_503 = e.e end
    end
  end
  for _, r in ipairs(oks) do
    if r.e >= p.from and r.e <= p.to then
      n = n + 1
      if not last_ok or r.e > last_ok then last_ok = r.e end
    end
    if r.s >= p.from and r.s <= p.to and (not max_ts or r.ts > max_ts) then max_ts = r.ts end
  end
  local function rel(v) return v and string.format("%.1f", (v - p.from) / 1000) or "none" end
  put("phase_" .. p.name .. "_last_ok_ms", rel(last_ok))
  put("phase_" .. p.name .. "_first_503_ms", rel(first_503))
  put("phase_" .. p.name .. "_max_ts", max_ts or "none")
  put("phase_" .. p.name .. "_window_ms", string.format("%.1f", best / 1000))
  put("phase_" .. p.name .. "_window_from_us", bf)
  put("phase_" .. p.name .. "_window_to_us", bt)
  put("phase_" .. p.name .. "_failed", failed)
  put("phase_" .. p.name .. "_ids", n)
  local failed_requests = 0
  for _, f in ipairs(fails) do
    if f.e >= p.from and f.e <= p.to then failed_requests = failed_requests + 1 end
  end
  put("phase_" .. p.name .. "_failed_requests", failed_requests)
end

for _, p in ipairs(vphases) do
  local best, bf, bt, seen, before = window(p.from, p.to, p.vip)
  if not seen then
    -- nothing from that address in the phase: as far as the client knows it was out until TO
    bf, bt = before or p.from, p.to
    best = bt - bf
  end
  local nerr, nids = 0, 0
  for _, e in ipairs(errs) do
    if e.vip == p.vip and e.e >= p.from and e.e <= p.to then nerr = nerr + 1 end
  end
  for _, r in ipairs(oks) do
    if r.vip == p.vip and r.e >= p.from and r.e <= p.to then nids = nids + 1 end
  end
  local pre = "vphase_" .. p.name
  put(pre .. "_window_ms", string.format("%.1f", best / 1000))
  put(pre .. "_window_from_us", bf)
  put(pre .. "_window_to_us", bt)
  put(pre .. "_errors", nerr)
  put(pre .. "_ids", nids)
end

for _, f in ipairs(fences) do
  local late, last = 0, nil
  for _, r in ipairs(oks) do
    if r.w == f.worker then
      if r.ts >= f.wall then late = late + 1 end
      if not last or r.ts > last then last = r.ts end
    end
  end
  put("fence_" .. f.name .. "_late_ids", late)
  put("fence_" .. f.name .. "_last_ms", last and (last - f.wall) or "none")
end

for _, s in ipairs(sinces) do
  local first_ok, first_503, last_ts, n
  n = 0
  for _, r in ipairs(oks) do
    if r.s >= s.mono then
      n = n + 1
      if not first_ok or r.e < first_ok then first_ok = r.e end
    end
    if not last_ts or r.ts > last_ts then last_ts = r.ts end
  end
  for _, e in ipairs(errs) do
    if e.e >= s.mono and e.kind == "http" and e.detail:match("^503") then
      if not first_503 or e.e < first_503 then first_503 = e.e end
    end
  end
  local function ms(v) return v and string.format("%.1f", (v - s.mono) / 1000) or "none" end
  put("since_" .. s.name .. "_first_ok_ms", ms(first_ok))
  put("since_" .. s.name .. "_first_503_ms", ms(first_503))
  put("since_" .. s.name .. "_last_ts_ms", last_ts and (last_ts - s.wall) or "none")
  put("since_" .. s.name .. "_ids", n)
end

for _, wq in ipairs(worker_q) do
  local n, first, last = 0, nil, nil
  for _, r in ipairs(oks) do
    if r.w == wq then
      n = n + 1
      if not first or r.ts < first then first = r.ts end
      if not last or r.ts > last then last = r.ts end
    end
  end
  put("worker_" .. wq .. "_ids", n)
  put("worker_" .. wq .. "_first_ts", first or "none")
  put("worker_" .. wq .. "_last_ts", last or "none")
end

for _, q in ipairs(wphases) do
  local n, min_id, max_id = 0, nil, nil
  for _, r in ipairs(oks) do
    if r.w == q.worker and r.s >= q.from and r.e <= q.to then
      n = n + 1
      if not min_id or r.id < min_id then min_id = r.id end
      if not max_id or r.id > max_id then max_id = r.id end
    end
  end
  put("wp_" .. q.name .. "_ids", n)
  put("wp_" .. q.name .. "_min_id", min_id or "none")
  put("wp_" .. q.name .. "_max_id", max_id or "none")
  put("wp_" .. q.name .. "_min_ts", min_id and ((min_id >> ts_shift) + epoch) or "none")
  put("wp_" .. q.name .. "_max_ts", max_id and ((max_id >> ts_shift) + epoch) or "none")
end

local function joined(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. tostring(t[k]) end
  return #parts > 0 and table.concat(parts, ",") or "-"
end
local workers = {}
for _, r in ipairs(oks) do workers[r.w] = (workers[r.w] or 0) + 1 end
put("errors_by", joined(errors_by))
put("workers", joined(workers))
put("nodes", joined(nodes))
put("errors_by_vip", joined(errors_by_vip))
put("ids_by_vip", joined(ids_by_vip))
put("ids_by_kind", joined(ids_by_kind))

-- the least loaded node: a node of --nodes that served nothing has 0 %
local shares = {}
for n, c in pairs(nodes) do shares[n] = c end
for _, n in ipairs(listed_nodes) do shares[n] = shares[n] or 0 end
local min_node, min_count
for n, c in pairs(shares) do
  if not min_count or c < min_count or (c == min_count and n < min_node) then min_node, min_count = n, c end
end
if #oks > 0 and min_node then
  put("share_min_pct", string.format("%.1f", 100 * min_count / #oks))
  put("share_min_node", min_node)
else
  put("share_min_pct", "none")
  put("share_min_node", "none")
end

print(table.concat(out, "\n"))
