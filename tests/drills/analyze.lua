-- tests/drills/analyze.lua: reads drill-client logs and judges them (Lua 5.4: IDs are integers).
--
--   lua5.4 analyze.lua [options] LOG...
--
-- Always printed ("key value" lines):
--   ids, errors, dups, order_violations, window_ms (the longest time without a successful answer,
--   over the whole run), errors_by (kind=count,...), workers (worker=count,...), nodes (node=count).
-- Options:
--   --layout SEQ_BITS:WORKER_BITS[:EPOCH_MS]   ID layout (default 12:10:1704067200000)
--   --phase NAME:FROM_US:TO_US   "phase_NAME_window_ms", "phase_NAME_failed", "phase_NAME_ids":
--                                the longest gap between successful answers that ended in
--                                [FROM, TO] (the last success before FROM counts as the start),
--                                failed attempts and IDs that ended in it; "phase_NAME_last_ok_ms"
--                                and "phase_NAME_first_503_ms" (ms after FROM, "none"), and
--                                "phase_NAME_max_ts" (latest ID timestamp, Unix ms, of requests
--                                that began in the phase)
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
-- clock), so it covers the VIP moving between hosts and a host reusing a worker ID.

local seq_bits, worker_bits, epoch = 12, 10, 1704067200000
local phases, fences, sinces, worker_q, wphases = {}, {}, {}, {}, {}
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

local oks, errs = {}, {}
local errors_by, nodes = {}, {}
for _, path in ipairs(files) do
  local fh = io.open(path, "r")
  if not fh then die("cannot read " .. path) end
  for line in fh:lines() do
    local kind = line:sub(1, 1)
    if kind == "I" then
      local s, e, conn, id, node = line:match("^I (%d+) (%d+) (%d+) (%d+) (%S+)")
      if s then
        local v = math.tointeger(tonumber(id))
        if not v then die("unparseable ID in " .. path .. ": " .. line) end
        oks[#oks + 1] = { s = int(s, "start"), e = int(e, "end"), id = v,
                          w = (v >> seq_bits) & wmask, ts = (v >> ts_shift) + epoch, node = node,
                          conn = path .. "#" .. conn }
        nodes[node] = (nodes[node] or 0) + 1
      end
    elseif kind == "E" then
      local s, e, _, k, d = line:match("^E (%d+) (%d+) (%d+) (%S+) (%S+)")
      if s then
        local key = k == "http" and ("http_" .. d) or k
        errs[#errs + 1] = { s = int(s, "start"), e = int(e, "end"), kind = k, detail = d }
        errors_by[key] = (errors_by[key] or 0) + 1
      end
    end
  end
  fh:close()
end

local out = {}
local function put(k, v) out[#out + 1] = k .. " " .. tostring(v) end

put("ids", #oks)
put("errors", #errs)

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

-- per-worker order: sweep requests by start time, answers by end time
local by_start, by_end = {}, {}
for i = 1, #oks do by_start[i] = oks[i]; by_end[i] = oks[i] end
table.sort(by_start, function(a, b) return a.s < b.s end)
table.sort(by_end, function(a, b) return a.e < b.e end)
local maxid, maxrec = {}, {}
local j, violations = 1, 0
listed = 0
for _, b in ipairs(by_start) do
  while j <= #by_end and by_end[j].e < b.s do
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

-- the longest time without a successful answer
local function window(from, to)
  local last, best, bfrom, bto = nil, 0, 0, 0
  for _, r in ipairs(by_end) do
    if r.e > to then break end
    if r.e < from then
      last = r.e
    else
      if last and r.e - last > best then best, bfrom, bto = r.e - last, last, r.e end
      last = r.e
    end
  end
  return best, bfrom, bto
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

print(table.concat(out, "\n"))
