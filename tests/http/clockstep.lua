-- tests/http/clockstep.lua: steps the faked wall clock back right after a mint, on one keep-alive
-- connection, and mints at once until the step shows, so a request certainly lands in it.
--   lua5.4 clockstep.lua PORT FAKETIME_FILE START_OFFSET_MS STEP_MS N [MIN_MS [IDS_FILE]]
-- For i = 1..N: GET /id, write offset START - i*STEP ms to the file (rename: atomic), then GET /id
-- back to back (up to 1 s) until one answer took >= MIN_MS (default STEP - 2) ms: it waited the
-- regression out (with the TSC clock the first answer may still be stamped on an anchor taken just
-- before the step: the step reaches the generator within a millisecond). Prints
-- "STEP i <observed 0|1> <requests> <latency_ms of the waiting one> <ms until it showed>", and
-- "OFFSET <final offset ms>". IDS_FILE: every ID received is appended to it, one a line, in the
-- order received (an observed step's waiting answer is then its last line). Exit 0 when every
-- answer was 200 and the IDs strictly increased.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local H = require "httpc"
local socket = require "socket"

local port, file = tonumber(arg[1]), arg[2]
local start, step, n = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local min_ms = tonumber(arg[6]) or step - 2
local ids = arg[7] and assert(io.open(arg[7], "a"))
local c = assert(H.connect("127.0.0.1", port, 5))
local good, prev = true, -1
local off = start

local function mint()
  local t0 = socket.gettime()
  local r = assert(c:request("GET", "/id"))
  local ms = (socket.gettime() - t0) * 1000
  local id = H.id_of(r.body:match("^(%d+)\n$"))
  if r.status ~= 200 or not id or id <= prev then
    good = false
    io.write("# bad answer: ", r.status, " ", r.body, "\n")
  end
  prev = id or prev
  if ids and id then ids:write(tostring(id), "\n") ids:flush() end
  return ms
end

for i = 1, n do
  mint()
  off = start - i * step
  local f = assert(io.open(file .. ".tmp", "w"))
  f:write(string.format("%.3f\n", off / 1000))
  f:close()
  assert(os.rename(file .. ".tmp", file))
  local t_step = socket.gettime()
  local observed, reqs, lat = 0, 0, 0
  while socket.gettime() - t_step < 1 do
    lat = mint()
    reqs = reqs + 1
    if lat >= min_ms then observed = 1 break end
  end
  print(string.format("STEP %d %d %d %.3f %.1f", i, observed, reqs, lat, (socket.gettime() - t_step) * 1000))
  socket.sleep(0.05)
end
print(string.format("OFFSET %d", off))
c:close()
if ids then ids:close() end
os.exit(good and 0 or 1)
