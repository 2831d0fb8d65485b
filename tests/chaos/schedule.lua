-- tests/chaos/schedule.lua: the nemesis's schedule, drawn from a seed (Lua 5.3 or 5.4).
--
--   lua5.4 schedule.lua SEED SECONDS [MAX_AT_ONCE=3]
--
-- Prints one action a line, in time order (a heal before a start at the same millisecond):
--   <at_ms> start <fault> <kind> <target> <duration_ms> <param>
--   <at_ms> heal  <fault> <kind> <target> <duration_ms> <param>
-- at_ms counts from the start of the load. The same SEED and SECONDS give the same schedule on
-- any Lua: the generator is our own (splitmix64 in 64-bit integers), not math.random, whose
-- algorithm differs between 5.3 and 5.4.
--
-- Kinds (target: a proxy p1..p3, or a ZooKeeper server z1..z3):
--   kill_now       kill -9 the proxy's HAProxy and start it again at once (the heal is a no-op:
--                  the duration only keeps the target busy while it comes back)
--   kill_later     kill -9, start it again at the heal
--   pause          SIGSTOP, past the lease (drill session 2 s), SIGCONT at the heal
--   link_cut       the host's link down, up at the heal
--   zk_partition   the proxy cannot reach ZooKeeper (still reaches clients and peers)
--   clock_back     the proxy's wall clock steps back by param seconds, forward again at the heal
--   clock_forward  steps forward by param seconds, back at the heal
--   zk_kill        kill -9 a ZooKeeper server, start it again at the heal
--   reload         USR2 to the proxy's HAProxy master (a hitless reload; no heal needed)
--   park           `snowflake park` on the CLI, `unpark` at the heal
--
-- Bounds: at most MAX_AT_ONCE faults at once; one fault per target at a time, and a target rests
-- COOLDOWN_MS after its heal; at most 2 of the 3 ZooKeeper servers down at once (2 is past quorum
-- loss); no fault starts in the first LEAD_MS or the last TAIL_MS, and every heal comes
-- TAIL_MS - 5 s before the end at the latest, so the run ends at rest.

local seed, seconds, max_at_once = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3] or "3")
if not seed or not seconds or seconds < 30 or not max_at_once or max_at_once < 1 then
  io.stderr:write("usage: schedule.lua SEED SECONDS(>=30) [MAX_AT_ONCE=3]\n")
  os.exit(2)
end

local LEAD_MS, TAIL_MS, COOLDOWN_MS = 6000, 25000, 3000
local MEAN_GAP_MS = 4000
local PROXIES = { "p1", "p2", "p3" }
local ZKS = { "z1", "z2", "z3" }

-- splitmix64: integer arithmetic wraps in Lua 5.3 and 5.4 alike
local state = math.tointeger(seed) or 1
local function next64()
  state = state + 0x9E3779B97F4A7C15
  local z = state
  z = (z ~ (z >> 30)) * -4658895280553007687 -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685 -- 0x94D049BB133111EB
  return z ~ (z >> 31)
end
-- uniform in [0, 1)
local function uniform() return (next64() >> 11) / 9007199254740992.0 end
local function between(lo, hi) return lo + math.floor(uniform() * (hi - lo + 1)) end
local function pick(list) return list[between(1, #list)] end

-- kind -> { weight, target list, min ms, max ms, params }
local KINDS = {
  { "kill_now", 3, PROXIES, 3000, 3000 },
  { "kill_later", 3, PROXIES, 1000, 5000 },
  { "pause", 3, PROXIES, 2500, 6000 },
  { "link_cut", 2, PROXIES, 1500, 5000 },
  { "zk_partition", 3, PROXIES, 2000, 8000 },
  { "clock_back", 4, PROXIES, 2000, 8000, { "0.005", "0.050", "0.500", "5" } },
  { "clock_forward", 2, PROXIES, 2000, 6000, { "0.050", "0.500", "5" } },
  { "zk_kill", 4, ZKS, 2000, 10000 },
  { "reload", 2, PROXIES, 2000, 2000 },
  { "park", 2, PROXIES, 1500, 5000 },
}
local total_weight = 0
for _, k in ipairs(KINDS) do total_weight = total_weight + k[2] end

local function draw_kind()
  local r = uniform() * total_weight
  for _, k in ipairs(KINDS) do
    r = r - k[2]
    if r < 0 then return k end
  end
  return KINDS[#KINDS]
end

local end_ms = seconds * 1000
local last_heal_ms = end_ms - TAIL_MS + 5000
local faults = {}        -- { id, kind, target, start, heal, param }
local busy_until = {}    -- target -> ms
local function active_at(t)
  local n, zk = 0, 0
  for _, f in ipairs(faults) do
    if f.start <= t and t < f.heal then
      n = n + 1
      if f.kind == "zk_kill" then zk = zk + 1 end
    end
  end
  return n, zk
end

local t = LEAD_MS
while true do
  t = t + math.max(500, math.floor(-math.log(1 - uniform()) * MEAN_GAP_MS))
  if t > end_ms - TAIL_MS then break end
  -- a few draws for a kind and target that fit; else this arrival is skipped
  for _ = 1, 8 do
    local k = draw_kind()
    local target = pick(k[3])
    local dur = between(k[4], k[5])
    local heal = math.min(t + dur, last_heal_ms)
    local n, zk = active_at(t)
    local fits = (busy_until[target] or 0) <= t and n < max_at_once and heal > t
    if fits and k[1] == "zk_kill" and zk >= 2 then fits = false end
    if fits then
      -- the overlap bound over the whole span, not only at its start
      for _, f in ipairs(faults) do
        if f.start > t and f.start < heal then
          local m = active_at(f.start)
          if m + 1 > max_at_once then fits = false end
        end
      end
    end
    if fits then
      faults[#faults + 1] = { id = #faults + 1, kind = k[1], target = target, start = t, heal = heal,
                              param = k[6] and pick(k[6]) or "-" }
      busy_until[target] = heal + COOLDOWN_MS
      break
    end
  end
end

local actions = {}
for _, f in ipairs(faults) do
  actions[#actions + 1] = { at = f.start, order = 1, f = f, what = "start" }
  actions[#actions + 1] = { at = f.heal, order = 0, f = f, what = "heal" }
end
table.sort(actions, function(a, b)
  if a.at ~= b.at then return a.at < b.at end
  if a.order ~= b.order then return a.order < b.order end
  return a.f.id < b.f.id
end)
for _, a in ipairs(actions) do
  local f = a.f
  io.write(string.format("%d %s %d %s %s %d %s\n", a.at, a.what, f.id, f.kind, f.target, f.heal - f.start, f.param))
end
