-- tests/chaos/testdata/report/gen.lua: timelines for tests/chaos/report_test.sh, in the format the
-- history checker writes (tests/chaos/report.lua's header lists it). Lua 5.3 or 5.4.
--
--   lua5.4 gen.lua sample DIR                  the committed sample (tests/chaos/testdata/report/sample)
--   lua5.4 gen.lua soak DIR SECONDS FAULTS [SEED]   a long synthetic run (the size and speed check)
--
-- The sample, 30 s of 100 ms slots, three proxies p1 p2 p3 at about 1000 IDs/s each:
--   fault 1 pause@p1 8.0-13.5: p1 serves nothing; read timeouts and a few failed requests until
--     sf_vip_p1 moves to p2 at 9.2 (back at 14.8); on the thaw p1 has lost its session: fenced
--     answers 13.5-14.6 while it reconnects, claims and waits, then mints as worker 4
--   fault 2 zk_kill@z2 10.0-18.0, overlapping fault 1 (quorum holds: no client effect); its detail
--     holds markup characters (the report escapes them)
--   fault 3 reload@p3 at 21.0, a point event: the new pid claims while the old one still mints
--   fault 4 clock_back@p2 24.0-26.0: a few clock_regressed answers
-- Output is deterministic (no math.random: its algorithm differs between Lua versions).

local mode, dir = arg[1], arg[2]
if not (mode == "sample" or mode == "soak") or not dir then
  io.stderr:write("usage: gen.lua sample DIR | gen.lua soak DIR SECONDS FAULTS [SEED]\n")
  os.exit(2)
end

local string_format, table_concat = string.format, table.concat

local function write(name, lines)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(table_concat(lines, "\n"), "\n")
  f:close()
end

-- a 31-bit LCG, the same on every Lua
local state = 12345
local function rand(n)
  state = (state * 1103515245 + 12345) % 2147483648
  return state % n
end

local NODES = { "p1", "p2", "p3" }

-- slots[k] = { ids = { node = n }, err = { code = n }, failed = n, p99 = ms }; writes slots.tsv and
-- figures.txt (figures: extra CHAOS lines after ids_checked)
local function write_slots(slots, codes, width, figures)
  local head = { "t_s", "ids_total" }
  for _, n in ipairs(NODES) do head[#head + 1] = "ids_" .. n end
  for _, c in ipairs(codes) do head[#head + 1] = "err_" .. c end
  head[#head + 1] = "failed_requests"
  head[#head + 1] = "p99_ms"
  local lines, ids, failed, up = { table_concat(head, "\t") }, 0, 0, 0
  for k, s in ipairs(slots) do
    local total = 0
    for _, n in ipairs(NODES) do total = total + (s.ids[n] or 0) end
    local row = { string_format("%.3f", (k - 1) * width), tostring(total) }
    for _, n in ipairs(NODES) do row[#row + 1] = tostring(s.ids[n] or 0) end
    for _, c in ipairs(codes) do row[#row + 1] = tostring(s.err[c] or 0) end
    row[#row + 1] = tostring(s.failed)
    row[#row + 1] = string_format("%.1f", s.p99)
    lines[#lines + 1] = table_concat(row, "\t")
    ids, failed = ids + total, failed + s.failed
    if total > 0 then up = up + 1 end
  end
  write("slots.tsv", lines)
  local fig = { "CHAOS seconds " .. string_format("%g", #slots * width), "CHAOS ids_checked " .. ids,
                "CHAOS duplicates 0", "CHAOS order_violations 0", "CHAOS fence_violations 0",
                "CHAOS lease_violations 0", "CHAOS header_mismatches 0", "CHAOS failed_requests " .. failed,
                string_format("CHAOS availability_pct %.1f", 100 * up / #slots) }
  for _, l in ipairs(figures) do fig[#fig + 1] = l end
  write("figures.txt", fig)
end

local function empty_slots(n)
  local slots = {}
  for k = 1, n do
    slots[k] = { ids = {}, err = {}, failed = 0, p99 = 2.5 + rand(20) / 10 }
    for _, node in ipairs(NODES) do slots[k].ids[node] = 95 + rand(11) end
  end
  return slots
end

if mode == "sample" then
  local slots = empty_slots(300)
  local function each(from, to, fn)
    for k = math.floor(from * 10 + 0.5) + 1, math.floor(to * 10 + 0.5) do fn(slots[k]) end
  end
  each(8.0, 9.2, function(s)
    s.ids.p2, s.ids.p3 = s.ids.p2 + 30, s.ids.p3 + 30
    s.ids.p1, s.err.read_timeout, s.p99 = 0, 14 + rand(4), 200
  end)
  each(8.0, 8.4, function(s) s.failed = 2 end)
  each(9.2, 9.3, function(s) s.err.reset = 6 end)
  each(9.2, 14.8, function(s) s.ids.p2, s.ids.p1 = s.ids.p2 + s.ids.p1, 0 end)
  each(13.5, 14.6, function(s) s.err.fenced, s.p99 = 18 + rand(5), 40 end)
  each(14.8, 14.9, function(s) s.err.reset = 4 end)
  each(21.0, 21.1, function(s) s.err.connect_refused = 2 end)
  each(24.0, 24.1, function(s) s.err.clock_regressed = 3 end)
  write_slots(slots, { "fenced", "clock_regressed", "connect_refused", "reset", "read_timeout", "no_lease" }, 0.1,
              { "CHAOS longest_outage_ms 1200", "CHAOS longest_outage_during pause@p1" })
  write("faults.tsv", {
    "id\tkind\ttarget\tstart_s\theal_s\tdetail",
    "1\tpause\tp1\t8.000\t13.500\tSIGSTOP past the 2 s session",
    '2\tzk_kill\tz2\t10.000\t18.000\tkill -9 <z2> & restart "later"',
    "3\treload\tp3\t21.000\t21.000\t-",
    "4\tclock_back\tp2\t24.000\t26.000\t0.050",
  })
  write("vips.tsv", {
    "instance\tholder\tfrom_s\tto_s",
    "sf_vip_p1\tp1\t0.000\t9.200",
    "sf_vip_p1\tp2\t9.200\t14.800",
    "sf_vip_p1\tp1\t14.800\t30.000",
    "sf_vip_p2\tp2\t0.000\t30.000",
    "sf_vip_p3\tp3\t0.000\t30.000",
  })
  write("lease.tsv", {
    "node\tpid\tstate\tworker\tfrom_s\tto_s",
    "p1\t1101\tminting\t1\t0.000\t13.500",
    "p1\t1101\tconnecting\t-\t13.500\t13.800",
    "p1\t1101\tclaiming\t-\t13.800\t14.100",
    "p1\t1101\twaiting\t4\t14.100\t14.600",
    "p1\t1101\tminting\t4\t14.600\t30.000",
    "p2\t1201\tminting\t2\t0.000\t30.000",
    "p3\t1301\tminting\t3\t0.000\t21.200",
    "p3\t1301\tstopped\t-\t21.200\t30.000",
    "p3\t1302\tconnecting\t-\t21.000\t21.100",
    "p3\t1302\tclaiming\t-\t21.100\t21.300",
    "p3\t1302\tminting\t3\t21.300\t30.000",
  })
  os.exit(0)
end

-- soak: SECONDS of 100 ms slots, FAULTS faults (some overlapping, some point events); each fault on a
-- proxy takes its traffic away (kills, pauses, cuts) or adds errors, moves its VIP and restarts or
-- re-claims its lease
local seconds, nfaults = tonumber(arg[3]), tonumber(arg[4])
state = tonumber(arg[5] or "1") or 1
if not seconds or not nfaults then
  io.stderr:write("usage: gen.lua soak DIR SECONDS FAULTS [SEED]\n")
  os.exit(2)
end
local n = math.floor(seconds * 10 + 0.5)
local slots = empty_slots(n)
local CODES = { "fenced", "clock_regressed", "connect_refused", "reset", "read_timeout", "no_lease", "parked",
                "handoff_failed" }
local KINDS = { { "kill_now", "connect_refused", true }, { "kill_later", "connect_refused", true },
                { "pause", "read_timeout", true }, { "link_cut", "read_timeout", true },
                { "zk_partition", "no_lease" }, { "clock_back", "clock_regressed" },
                { "clock_forward", "fenced" }, { "zk_kill", "handoff_failed" }, { "reload", "reset" },
                { "park", "parked" } }
local faults = { "id\tkind\ttarget\tstart_s\theal_s\tdetail" }
local vips = { "instance\tholder\tfrom_s\tto_s" }
local lease = { "node\tpid\tstate\tworker\tfrom_s\tto_s" }
local vip_from, vip_holder, pid, pid_from = {}, {}, {}, {}
for i, node in ipairs(NODES) do
  vip_from[node], vip_holder[node], pid[node], pid_from[node] = 0, node, 1000 * i, 0
end
local span = seconds - 31
for i = 1, nfaults do
  local start = 6 + (i - 1) * span / nfaults + rand(math.floor(span / nfaults * 10)) / 10
  local kind = KINDS[rand(#KINDS) + 1]
  local node = NODES[rand(#NODES) + 1]
  local target = kind[1]:match("^zk_kill") and ("z" .. (rand(3) + 1)) or node
  local point = kind[1] == "reload" or kind[1] == "kill_now"
  local heal = point and start or start + 1 + rand(90) / 10
  faults[#faults + 1] = string_format("%d\t%s\t%s\t%.3f\t%.3f\t%s", i, kind[1], target, start, heal,
                                      point and "-" or "synthetic")
  local k0, k1 = math.floor(start * 10) + 1, math.min(n, math.floor(math.max(heal, start + 0.5) * 10))
  for k = k0, k1 do
    local s = slots[k]
    s.err[kind[2]] = (s.err[kind[2]] or 0) + 1 + rand(30)
    if kind[3] then s.ids[node], s.p99 = 0, 150 + rand(100) end
    if rand(10) == 0 then s.failed = s.failed + 1 end
  end
  if kind[3] and vip_holder[node] == node and target == node then
    local moved, back = start + 1, heal + 1.5
    local other = NODES[(rand(2) + 1 + (node == "p1" and 0 or node == "p2" and 1 or 2)) % 3 + 1]
    vips[#vips + 1] = string_format("sf_vip_%s\t%s\t%.3f\t%.3f", node, node, vip_from[node], moved)
    vips[#vips + 1] = string_format("sf_vip_%s\t%s\t%.3f\t%.3f", node, other, moved, back)
    vip_from[node] = back
  end
  if target == node then
    local old, w = pid[node], node:sub(2)
    lease[#lease + 1] = string_format("%s\t%d\tminting\t%s\t%.3f\t%.3f", node, old, w, pid_from[node], start)
    if kind[1]:match("^kill") or kind[1] == "reload" then
      local new = old + 1
      lease[#lease + 1] = string_format("%s\t%d\tstopped\t-\t%.3f\t%.3f", node, old, start + 0.2, seconds)
      lease[#lease + 1] = string_format("%s\t%d\tconnecting\t-\t%.3f\t%.3f", node, new, start + 0.1, start + 0.4)
      lease[#lease + 1] = string_format("%s\t%d\tclaiming\t-\t%.3f\t%.3f", node, new, start + 0.4, start + 0.7)
      pid[node], pid_from[node] = new, start + 0.7
    else
      local st = kind[1] == "park" and "parked" or "waiting"
      lease[#lease + 1] = string_format("%s\t%d\t%s\t-\t%.3f\t%.3f", node, old, st, start, heal + 0.3)
      pid_from[node] = heal + 0.3
    end
  end
end
for _, node in ipairs(NODES) do
  vips[#vips + 1] = string_format("sf_vip_%s\t%s\t%.3f\t%.3f", node, node, vip_from[node], seconds)
  lease[#lease + 1] = string_format("%s\t%d\tminting\t%s\t%.3f\t%.3f", node, pid[node], node:sub(2), pid_from[node], seconds)
end
write_slots(slots, CODES, 0.1, { "CHAOS longest_outage_during synthetic" })
write("faults.tsv", faults)
write("vips.tsv", vips)
write("lease.tsv", lease)
