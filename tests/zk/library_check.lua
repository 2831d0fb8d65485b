-- Library mode as a user runs it: plain Lua, the installed modules only.
-- Usage: lua library_check.lua <zk_hosts> <state_dir> <root>
-- Prints "ok ..." / "not ok ..." lines and "# figure ..." lines.
local hosts, state_dir, root = arg[1], arg[2], arg[3]
local function check(cond, what, extra)
  print((cond and "ok " or "not ok ") .. _VERSION .. ": " .. what .. (extra and ("  [" .. tostring(extra) .. "]") or ""))
end

local snowflake = require "snowflake"
local core = require "snowflake.core"
local logs = {}
local function log(_, line) logs[#logs + 1] = line end

local t0 = core.mono_ns()
local node, _, detail = snowflake.start({
  lease = { zk_hosts = hosts, root = root, session_timeout_ms = 2000, margin_ms = 500 },
  state = { dir = state_dir },
}, { log = log })
check(node ~= nil, "start with a real ZooKeeper returns a node", detail)
if not node then os.exit(1) end
print(string.format("# figure library_time_to_first_id_ms %d", (core.mono_ns() - t0) // 1000000))

local id = node:next_id()
check(math.type(id) == "integer" and id > 0, "next_id returns a positive integer", id)
local ids = node:next_ids(500)
local increasing = ids and #ids == 500
for i = 2, ids and #ids or 0 do
  if math.type(ids[i]) ~= "integer" or ids[i] <= ids[i - 1] then increasing = false end
end
check(increasing and ids[1] > id, "next_ids(500) gives 500 strictly increasing integers above the last ID")

local st = node:status()
check(st.state == "minting", "status.state is minting", st.state)
check(math.type(st.worker) == "integer" and st.worker >= 0 and st.worker < 1024, "status.worker is the held ID", st.worker)
check(st.lease_ms_left > 0 and st.lease_ms_left <= 2000, "status.lease_ms_left is within the session timeout", st.lease_ms_left)
local d = node:decode(id)
check(d and d.worker == st.worker, "the IDs carry the leased worker", d and d.worker)
local found_claim = false
for _, line in ipairs(logs) do if line:find("claimed worker " .. st.worker, 1, true) then found_claim = true end end
check(found_claim, "the lease's log lines reach the log function")

local bad, bcode, bdetail = snowflake.start{ lease = { zk_host = "x" } }
check(bad == nil and bcode == "invalid_config" and bdetail:find("lease.zk_host", 1, true), "an unknown key is named", bdetail)
bad, _, bdetail = snowflake.start{ state = { ahead_ms = 1.5 } }
check(bad == nil and bdetail:find("state.ahead_ms", 1, true), "a float where an integer is needed is named", bdetail)
bad, _, bdetail = snowflake.start{ layout = { worker_bits = 11 } }
check(bad == nil and bdetail:find("layout.", 1, true), "widths not summing to 63 are named", bdetail)
bad, bcode, bdetail = snowflake.start{ lease = { zk_hosts = hosts, root = root }, state = { dir = state_dir } }
check(bad == nil and bcode == "invalid_argument", "a second node in the same process is refused", bdetail)
local okn = pcall(node.next_ids, node, 0)
check(not okn, "next_ids(0) raises")
okn = pcall(node.next_ids, node, 1.5)
check(not okn, "next_ids(1.5) raises")

node:park(true)
local pid, pcode = node:next_id()
check(pid == nil and pcode == "parked", "park: next_id refuses parked", pcode)
node:park(false)
local resumed
for _ = 1, 100 do
  resumed = node:next_id()
  if resumed then break end
  core.sleep_ms(10)
end
check(resumed and resumed > ids[500], "unpark: minting resumes above everything before")

check(node:set("clock.max_wait_ms", 50) == true, "clock.max_wait_ms can be set at runtime")
local sok, _, sdetail = node:set("layout.worker_bits", 3)
check(sok == nil and sdetail:find("runtime", 1, true), "layout.worker_bits cannot", sdetail)

-- the clock ladder: an operator's function that refuses every regression
node._cfg.clock.policy = function() return "refuse" end
local rid, rcode = node:_retry(function() return nil, "clock_wait", "regressed 5 ms", 5000000 end,
  "clock_wait", "regressed 5 ms", 5000000)
check(rid == nil and rcode == "clock_regressed", "clock.policy refusing turns a small regression into clock_regressed", rcode)
node._cfg.clock.policy = nil

local worker = st.worker
node:stop()
local sid, scode2 = node:next_id()
check(sid == nil and scode2 == "stopped", "after stop: stopped", scode2)

-- the released ID is free at once (no session timeout to wait for)
local again = snowflake.start({
  lease = { zk_hosts = hosts, root = root, session_timeout_ms = 2000, margin_ms = 500 },
  state = { dir = state_dir },
}, { log = log })
check(again ~= nil, "a new node starts after stop")
if again then
  local a = again:next_id()
  check(a and a > resumed, "and its IDs are above the previous node's", a)
  again:stop()
end

local t1 = core.mono_ns()
local none, ncode, ndetail = snowflake.start({
  lease = { zk_hosts = "127.0.0.1:1", root = root, start_timeout_ms = 300 },
  state = { dir = state_dir },
}, { log = log })
check(none == nil and ncode == "no_lease" and ndetail:find("start_timeout_ms", 1, true),
  "an unreachable registry: start gives up after lease.start_timeout_ms", ndetail)
check((core.mono_ns() - t1) // 1000000 < 5000, "and returns (bounded)")
print("# worker used " .. worker)
