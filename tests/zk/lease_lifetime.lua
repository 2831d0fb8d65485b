-- The lease outlives every user of it: a node stopped while a quarantine
-- call is in flight on the admin thread, and a second handle to the process
-- lease used after another one stopped it. Run under ASan (the module built
-- with -fsanitize=address, lua5.4 with libasan preloaded): a use after free
-- aborts the interpreter with ASan's report.
-- Usage: lua5.4 lease_lifetime.lua <zk_hosts> <state_dir> <root> <rounds>
-- Prints "ok ..." / "not ok ..." lines.
local hosts, state_dir, root, rounds = arg[1], arg[2], arg[3], math.tointeger(tonumber(arg[4] or "5"))
local snowflake = require "snowflake"
local core = require "snowflake.core"

local function check(cond, what, extra)
  print((cond and "ok " or "not ok ") .. what .. (extra and ("  [" .. tostring(extra) .. "]") or ""))
  io.stdout:flush()
end

local function start()
  return snowflake.start({
    lease = { zk_hosts = hosts, root = root, session_timeout_ms = 2000, margin_ms = 500 },
    state = { dir = state_dir },
  }, { log = function() end })
end

-- a request's answer, polled until it comes (the registry calls are bounded: 5 s to connect,
-- then a session timeout a call)
local function await(req)
  for _ = 1, 1000 do
    local done, text_or_code, detail = req:poll()
    if done or text_or_code then return done, text_or_code, detail end
    core.sleep_ms(20)
  end
  return nil, "timeout", "no answer in 20 s"
end

-- 1. node:stop() while lease:admin("quarantine_list") / ("quarantine_clear") runs on its thread
local answered = 0
for round = 1, rounds do
  local node, code, detail = start()
  if not node then
    check(false, "round " .. round .. ": a node starts", tostring(code) .. ": " .. tostring(detail))
    os.exit(1)
  end
  local req = round % 2 == 1 and node._lease:admin("quarantine_list") or node._lease:admin("quarantine_clear", 1023)
  local t0 = core.mono_ns()
  node:stop()
  local stop_ms = (core.mono_ns() - t0) // 1000000
  local polled_ok, polled_code = req:poll()
  print(string.format("# round %d: node:stop() took %d ms; the request then: %s", round, stop_ms,
    polled_ok and "answered" or polled_code or "not answered yet (its lease call had ended)"))
  local done, text_or_code = await(req)
  -- either answer is fine (the call may finish before the stop, or fail on it): it must not crash
  if done or (text_or_code ~= "timeout") then answered = answered + 1 end
  local sid, scode = node:next_id()
  check(sid == nil and scode == "stopped", "round " .. round .. ": stopped with a quarantine call in flight", scode)
end
check(answered == rounds, "every in-flight quarantine request answered after the stop", answered .. "/" .. rounds)

-- 2. two handles to the process lease: one stops it, the other is used afterwards
local gen = assert(core.process_generator())
local a, started = core.process_lease_start(gen, {
  zk_hosts = hosts, root = root, state_dir = state_dir, session_timeout_ms = 2000, margin_ms = 500,
})
check(a ~= nil and started == true, "the process lease starts", started)
local b = core.process_lease()
check(b ~= nil, "a second handle to the process lease")
local req = b:admin("quarantine_list")
a:stop()
check(core.process_lease() == nil, "after stop, core.process_lease() is nil")
local ok, err = pcall(b.status, b)
check(not ok and tostring(err):find("the lease is stopped", 1, true), "the other handle says the lease is stopped", err)
local done, text_or_code = await(req)
check(done or text_or_code ~= "timeout", "its in-flight request answered", tostring(done) .. " " .. tostring(text_or_code))
ok, err = pcall(b.admin, b, "quarantine_list")
check(not ok and tostring(err):find("the lease is stopped", 1, true), "a new request on the stopped lease raises", err)
b:stop() -- idempotent, also from another handle
a, b, req = nil, nil, nil -- luacheck: no unused (dropped: the collector takes them)
collectgarbage()
collectgarbage()
check(true, "the handles and requests are collected after the stop")
