-- tests/http/api.lua: SPEC "HTTP API" and "Operator interface" (CLI) against a running service.
-- Run by 01-api_test.sh:  lua5.4 api.lua PORT RUN_DIR RATE_PORT NODE_NAME
--   PORT/RUN_DIR: a service with the default limits and http.node_name = NODE_NAME; RATE_PORT: one
--   with limits.rate_per_10s = 50.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local H = require "httpc"
local socket = require "socket"

local PORT, RUN_DIR, RATE_PORT, NODE_NAME = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4]
local ok = H.ok

-- every response seen, for the checks that hold for all of them
local seen = {}          -- { what, r }
local unexpected_503 = {} -- 503s outside the parked phase
local parked_phase = false

local function fmt_resp(r)
  if not r then return "no response" end
  return string.format("%d %s | %s", r.status, r.reason, (r.raw_head:gsub("\r\n", " | ")))
    .. " || " .. string.format("%q", #r.body > 300 and r.body:sub(1, 300) .. "..." or r.body)
end

local function note(what, r)
  if r then
    seen[#seen + 1] = { what, r }
    if r.status == 503 and not parked_phase then unexpected_503[#unexpected_503 + 1] = what end
  end
  return r
end

-- one keep-alive connection for most requests (reopened if the server closes it)
local conn
local function req(method, path, headers)
  for _ = 1, 2 do
    if not conn then
      local c, err = H.connect("127.0.0.1", PORT)
      if not c then return nil, err end
      conn = c
    end
    local r, err = conn:request(method, path, headers)
    if r then
      if (r.headers["connection"] or ""):lower():find("close") or r.to_close then
        conn:close()
        conn = nil
      end
      return note(method .. " " .. path, r)
    end
    conn:close()
    conn = nil
    if err ~= "closed" then return nil, err end
  end
  return nil, "closed twice"
end

local function get(path, headers) return req("GET", path, headers) end

local function is_json_error(r, status)
  if not r or r.status ~= status then return false, "status " .. (r and r.status or "none") end
  if not (r.headers["content-type"] or ""):find("application/json", 1, true) then
    return false, "content-type " .. tostring(r.headers["content-type"])
  end
  local v, err = H.json_decode(r.body)
  if type(v) ~= "table" then return false, "body is not JSON: " .. tostring(err) end
  if type(v.error) ~= "string" or not v.error:match("^[a-z][a-z0-9_]*$") then
    return false, "error code not snake_case: " .. tostring(v.error)
  end
  if type(v.detail) ~= "string" or v.detail == "" then return false, "empty detail" end
  if r.body:sub(-1) ~= "\n" then return false, "body does not end in a newline" end
  return true, v
end

local function check_error(what, r, status, code)
  local good, v = is_json_error(r, status)
  if good and code and v.error ~= code then good, v = false, "code " .. v.error .. ", want " .. code end
  return ok(good, what, not good and (tostring(v) .. "\n" .. fmt_resp(r)) or nil), v
end

local function worker_header(r) return tonumber(r.headers["x-snowflake-worker"] or "") end

local function carries_id_headers(r, id)
  local w = worker_header(r)
  local node = r.headers["x-snowflake-node"]
  if not w then return false, "no X-Snowflake-Worker" end
  if not node or node == "" then return false, "no X-Snowflake-Node" end
  if id and H.split(id) ~= w then return false, "X-Snowflake-Worker " .. w .. " but the ID's worker is " .. H.split(id) end
  return true
end

-- ======================================================================================== /id
local minted = {}   -- every ID this script saw, in order of issue on one connection
local worker

do
  for _, accept in ipairs({ false, "*/*", "text/plain" }) do
    local label = accept and ("Accept: " .. accept) or "no Accept"
    local r = get("/id", accept and { Accept = accept } or nil)
    local id = r and r.status == 200 and H.id_of(r.body:match("^(%d+)\n$"))
    ok(id and (r.headers["content-type"] or ""):match("^text/plain"),
      "GET /id (" .. label .. ") is 200 text/plain, one decimal ID and a newline", fmt_resp(r))
    if id then
      minted[#minted + 1] = id
      local good, why = carries_id_headers(r, id)
      ok(good, "GET /id (" .. label .. ") carries X-Snowflake-Worker (= the ID's worker) and X-Snowflake-Node", why)
      worker = worker_header(r)
    end
  end
  local r = get("/id", { Accept = "application/json" })
  local v = r and H.json_decode(r.body)
  local id = type(v) == "table" and H.id_of(v.id)
  ok(r and r.status == 200 and (r.headers["content-type"] or ""):find("application/json", 1, true) and id
       and r.body:sub(-1) == "\n" and math.type(v.id) == nil,
     'GET /id (Accept: application/json) is 200 {"id":"<decimal string>"} and a newline', fmt_resp(r))
  if id then
    minted[#minted + 1] = id
    ok(carries_id_headers(r, id), "GET /id JSON carries X-Snowflake-Worker and X-Snowflake-Node")
  end
  r = get("/id", { Accept = "text/html, application/json;q=0.9" })
  ok(r and r.status == 200 and (r.headers["content-type"] or ""):find("application/json", 1, true),
    "GET /id with application/json among other Accept types gives JSON", fmt_resp(r))
  if r and r.status == 200 then
    local vv = H.json_decode(r.body)
    if type(vv) == "table" and H.id_of(vv.id) then minted[#minted + 1] = H.id_of(vv.id) end
  end

  for _, accept in ipairs({ false, "application/json" }) do
    local hr = req("HEAD", "/id", accept and { Accept = accept } or nil)
    ok(hr and hr.status == 200 and hr.body == "" and carries_id_headers(hr),
      "HEAD /id" .. (accept and " (JSON)" or "") .. " is 200 with the ID headers and no body", fmt_resp(hr))
  end

  -- 200 /id on one keep-alive connection: strictly increasing, one worker
  local prev, inc, same = minted[#minted], true, true
  for _ = 1, 200 do
    local rr = get("/id")
    local i = rr and rr.status == 200 and H.id_of(rr.body:match("^(%d+)\n$"))
    if not i then inc = false break end
    if i <= prev then inc = false end
    if worker_header(rr) ~= worker then same = false end
    minted[#minted + 1] = i
    prev = i
  end
  ok(inc, "200 GET /id on one keep-alive connection are strictly increasing")
  ok(same, "... and all come from one worker")
  local sorted = true
  for i = 2, #minted do if minted[i] <= minted[i - 1] then sorted = false end end
  ok(sorted, "every /id so far (text, JSON) is above the one before")
end

-- ======================================================================================== /ids
local function ids_text(n, headers)
  local r = get("/ids?count=" .. n, headers)
  if not r or r.status ~= 200 then return nil, r end
  local out = {}
  if r.body:sub(-1) ~= "\n" then return nil, r end
  for line in r.body:gmatch("([^\n]*)\n") do
    local id = H.id_of(line)
    if not id then return nil, r end
    out[#out + 1] = id
  end
  return out, r
end

local function increasing(list, after)
  local prev = after or -1
  for _, v in ipairs(list) do
    if v <= prev then return false end
    prev = v
  end
  return true
end

do
  for _, n in ipairs({ 1, 2, 100, 4096 }) do
    local list, r = ids_text(n)
    ok(list and #list == n and (r.headers["content-type"] or ""):match("^text/plain"),
      "GET /ids?count=" .. n .. " is 200 text/plain with " .. n .. " lines of decimal IDs", fmt_resp(r))
    if list then
      ok(increasing(list, minted[#minted]), "/ids?count=" .. n .. ": strictly increasing, above every earlier ID")
      local good, why = carries_id_headers(r, list[1])
      ok(good, "/ids?count=" .. n .. " carries X-Snowflake-Worker (= the IDs' worker) and X-Snowflake-Node", why)
      local one_worker = true
      for _, id in ipairs(list) do if H.split(id) ~= worker then one_worker = false end end
      ok(one_worker, "/ids?count=" .. n .. ": every ID is from the node's worker")
      for _, id in ipairs(list) do minted[#minted + 1] = id end
    end
  end
  for _, accept in ipairs({ "*/*", "text/plain" }) do
    local list, r = ids_text(3, { Accept = accept })
    ok(list and #list == 3, "GET /ids?count=3 with Accept: " .. accept .. " is text", fmt_resp(r))
    if list then for _, id in ipairs(list) do minted[#minted + 1] = id end end
  end
  for _, n in ipairs({ 1, 4096 }) do
    local r = get("/ids?count=" .. n, { Accept = "application/json" })
    local v = r and r.status == 200 and H.json_decode(r.body)
    local good = type(v) == "table" and type(v.ids) == "table" and #v.ids == n
      and (r.headers["content-type"] or ""):find("application/json", 1, true) and r.body:sub(-1) == "\n"
    local list = {}
    if good then
      for _, s in ipairs(v.ids) do
        if type(s) ~= "string" or not H.id_of(s) then good = false break end
        list[#list + 1] = H.id_of(s)
      end
    end
    ok(good, 'GET /ids?count=' .. n .. ' (JSON) is {"ids":[...]} of ' .. n .. " decimal strings and a newline", fmt_resp(r))
    if good then
      ok(increasing(list, minted[#minted]), "/ids?count=" .. n .. " (JSON): strictly increasing, above every earlier ID")
      ok(carries_id_headers(r, list[1]), "/ids?count=" .. n .. " (JSON) carries the ID headers")
      for _, id in ipairs(list) do minted[#minted + 1] = id end
    end
  end
  local hr = req("HEAD", "/ids?count=5")
  ok(hr and hr.status == 200 and hr.body == "" and carries_id_headers(hr), "HEAD /ids?count=5 is 200 with the ID headers", fmt_resp(hr))

  -- every malformed count (SPEC: plain ASCII digits only) is 400 with a JSON error
  local bad = {
    "/ids", "/ids?", "/ids?count", "/ids?count=", "/ids?count=0", "/ids?count=00", "/ids?count=-1",
    "/ids?count=1.0", "/ids?count=1e3", "/ids?count=0x10", "/ids?count=+1", "/ids?count=%2B1",
    "/ids?count=1&count=2", "/ids?count=2&count=2", "/ids?count=abc", "/ids?count=1a", "/ids?count=%31",
    "/ids?count=%201", "/ids?count=1%20", "/ids?count=1%00", "/ids?count=4097", "/ids?count=65536",
    "/ids?count=99999999999999999999", "/ids?count=18446744073709551617", "/ids?count=" .. ("9"):rep(400),
    "/ids?COUNT=1", "/ids?n=1", "/ids?count=1&x=1", "/ids?x=1&count=1", "/ids?count=1;count=2",
    "/ids?count=%EF%BC%91", "/ids?count=%D9%A1", "/ids?count=1,2", "/ids?count[]=1", "/ids?count==1",
    "/ids?&count=1", "/ids?count=1&", "/ids?count=Infinity", "/ids?count=NaN", "/ids?count=-0",
  }
  local all = true
  for _, path in ipairs(bad) do
    local r = get(path)
    local good, why = is_json_error(r, 400)
    if not good then
      all = false
      ok(false, "GET " .. path:sub(1, 60) .. " is 400 with a JSON error", tostring(why) .. "\n" .. fmt_resp(r))
    end
  end
  ok(all, #bad .. " malformed count forms are each 400 with a JSON error, snake_case code, detail, newline")
  check_error("count above http.max_batch (4097) is 400 invalid_count", get("/ids?count=4097"), 400, "invalid_count")
end

-- ======================================================================================== /decode
do
  local r = get("/id")
  local id = r and H.id_of(r.body:match("^(%d+)\n$"))
  local t_local = H.now_ms()
  minted[#minted + 1] = id
  local d = id and get("/decode/" .. id)
  local v = d and d.status == 200 and H.json_decode(d.body)
  ok(type(v) == "table" and (d.headers["content-type"] or ""):find("application/json", 1, true) and d.body:sub(-1) == "\n",
    "GET /decode/<minted id> is 200 JSON ending in a newline", fmt_resp(d))
  if type(v) == "table" then
    local w, seq, ts = H.split(id)
    ok(v.id == tostring(id), '/decode: "id" is the ID as a string', tostring(v.id))
    ok(math.type(v.timestamp_ms) == "integer" and v.timestamp_ms == ts,
      "/decode: timestamp_ms is Unix-epoch milliseconds (ID >> 22 + epoch)", tostring(v.timestamp_ms) .. " want " .. ts)
    ok(math.abs((v.timestamp_ms or 0) - t_local) < 10000, "/decode: timestamp_ms is within 10 s of this host's clock",
      tostring(v.timestamp_ms) .. " vs " .. t_local)
    local want_time = os.date("!%Y-%m-%dT%H:%M:%S", ts // 1000) .. string.format(".%03dZ", ts % 1000)
    ok(type(v.time) == "string" and v.time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$") and v.time == want_time,
      "/decode: time is RFC 3339 UTC with exactly 3 fraction digits, equal to timestamp_ms", tostring(v.time) .. " want " .. want_time)
    ok(v.worker == w and v.worker == worker, "/decode: worker is the ID's worker (the minting worker)", tostring(v.worker))
    ok(v.sequence == seq, "/decode: sequence is the ID's sequence", tostring(v.sequence) .. " want " .. seq)
    -- round trip: the fields rebuild the ID
    local rebuilt = ((v.timestamp_ms - H.EPOCH_MS) << 22) | (v.worker << 12) | v.sequence
    ok(rebuilt == id, "/decode round trip: (timestamp_ms - epoch, worker, sequence) rebuild the ID")
  end

  local m = get("/decode/9223372036854775807")
  local mv = m and m.status == 200 and H.json_decode(m.body)
  ok(type(mv) == "table" and mv.id == "9223372036854775807" and mv.worker == 1023 and mv.sequence == 4095
      and mv.timestamp_ms == (1 << 41) - 1 + H.EPOCH_MS,
    "GET /decode/9223372036854775807 is 200 with the fields of the largest ID", fmt_resp(m))
  local z = get("/decode/0")
  local zv = z and z.status == 200 and H.json_decode(z.body)
  ok(type(zv) == "table" and zv.timestamp_ms == H.EPOCH_MS and zv.time == "2024-01-01T00:00:00.000Z",
    "GET /decode/0 is the epoch, 2024-01-01T00:00:00.000Z", fmt_resp(z))

  check_error("GET /decode/ (no ID) is 400 with a JSON error", get("/decode/"), 400)
  local all = true
  for _, p in ipairs({ "abc", "12a", "-1", "+1", "1.0", "0x10", "1e3", "%31", "1%20", "%201", "1%00",
                       "%EF%BC%91", "%D9%A1", "123/456", "1;2", "%20" }) do
    local rr = get("/decode/" .. p)
    local good, why = is_json_error(rr, 400)
    if not good then
      all = false
      ok(false, "GET /decode/" .. p .. " is 400 with a JSON error", tostring(why) .. "\n" .. fmt_resp(rr))
    end
  end
  ok(all, "/decode/ with non-digits (16 forms) is 400 with a JSON error")
  all = true
  for _, p in ipairs({ "9223372036854775808", "18446744073709551615", "18446744073709551616",
                       "99999999999999999999", ("9"):rep(300), "00009223372036854775808" }) do
    local rr = get("/decode/" .. p)
    local good, why = is_json_error(rr, 400)
    if not good then
      all = false
      ok(false, "GET /decode/" .. p:sub(1, 40) .. " (overflow) is 400", tostring(why) .. "\n" .. fmt_resp(rr))
    end
  end
  ok(all, "/decode/ of numbers above 2^63-1 (6 forms) is 400 with a JSON error")
end

-- ======================================================================================== /health
do
  local r = get("/health")
  local v = r and r.status == 200 and H.json_decode(r.body)
  ok(type(v) == "table" and v.status == "ok" and (r.headers["content-type"] or ""):find("application/json", 1, true)
      and r.body:sub(-1) == "\n",
    'GET /health is 200 JSON with "status":"ok", ending in a newline', fmt_resp(r))
  ok(type(v) == "table" and v.worker == worker, "/health: worker equals the minting worker (X-Snowflake-Worker)",
    type(v) == "table" and ("health worker " .. tostring(v.worker) .. ", minting worker " .. tostring(worker)) or nil)
  ok(type(v) == "table" and math.type(v.lease_ms_left) == "integer" and v.lease_ms_left > 0,
    "/health: lease time left is reported (> 0)", fmt_resp(r))
  local hr = req("HEAD", "/health")
  ok(hr and hr.status == 200 and hr.body == "", "HEAD /health is 200 without a body", fmt_resp(hr))
end

-- ======================================================================================== /metrics
local function metric(text, name)
  local total, found = 0, false
  for line in text:gmatch("[^\n]+") do
    local n, val = line:match("^([%w_]+)[^ ]* ([^ ]+)$")
    if n == name then total, found = total + (tonumber(val) or 0), true end
  end
  return found and total or nil
end

do
  local r = get("/metrics")
  ok(r and r.status == 200 and (r.headers["content-type"] or ""):match("^text/plain") and r.body:sub(-1) == "\n",
    "GET /metrics is 200 text/plain ending in a newline", fmt_resp(r))
  if r and r.status == 200 then
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write(r.body)
    f:close()
    local p = io.popen("promtool check metrics < " .. tmp .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("a")
    p:close()
    os.remove(tmp)
    ok(out == "rc=0\n", "promtool check metrics accepts /metrics and prints nothing", out)
    local before = metric(r.body, "snowflake_ids_issued_total")
    local req_before = metric(r.body, "snowflake_requests_total")
    ok(before ~= nil, "/metrics has snowflake_ids_issued_total")
    get("/id")
    get("/ids?count=100")
    local r2 = get("/metrics")
    local after = r2 and metric(r2.body, "snowflake_ids_issued_total")
    ok(before and after and after >= before + 101, "snowflake_ids_issued_total moves by at least the 101 IDs minted",
      tostring(before) .. " -> " .. tostring(after))
    local req_after = r2 and metric(r2.body, "snowflake_requests_total")
    ok(req_before and req_after and req_after >= req_before + 2, "snowflake_requests_total moves after /id and /ids",
      tostring(req_before) .. " -> " .. tostring(req_after))
    local batch_before, batch_after = metric(r.body, "snowflake_batch_size_count"), r2 and metric(r2.body, "snowflake_batch_size_count")
    ok(batch_before and batch_after and batch_after >= batch_before + 1, "snowflake_batch_size_count moves after /ids",
      tostring(batch_before) .. " -> " .. tostring(batch_after))
  end
  local hr = req("HEAD", "/metrics")
  ok(hr and hr.status == 200 and hr.body == "", "HEAD /metrics is 200 without a body", fmt_resp(hr))
end

-- ======================================================================================== 404, 405
do
  local all = true
  for _, p in ipairs({ "/", "/id/extra", "/id/", "/ids/extra", "/ID", "/idx", "/health/x", "/metrics/",
                       "/decodex/1", "/nope", "/favicon.ico", "//id", "/./id", "/%69d", "/id%2F", "/robots.txt" }) do
    local r = get(p)
    local good, why = is_json_error(r, 404)
    if p == "/" or p == "/id/extra" then
      ok(good, "GET " .. p .. " is 404 with a JSON error", (good and "" or tostring(why)) .. "\n" .. fmt_resp(r))
    elseif not good then
      all = false
      ok(false, "GET " .. p .. " is 404 with a JSON error", tostring(why) .. "\n" .. fmt_resp(r))
    end
  end
  ok(all, "14 more unknown paths are each 404 with a JSON error")
  local hr = req("HEAD", "/nope")
  ok(hr and hr.status == 404 and hr.body == "", "HEAD /nope is 404 without a body", fmt_resp(hr))

  all = true
  local n = 0
  for _, m in ipairs({ "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "FOO" }) do
    for _, p in ipairs({ "/id", "/ids?count=1", "/decode/1", "/health", "/metrics" }) do
      n = n + 1
      local r = req(m, p, m == "POST" and { ["Content-Type"] = "text/plain", ["Content-Length"] = "0" } or nil)
      local good, why = is_json_error(r, 405)
      local allow = r and r.headers["allow"] or ""
      if good and not (allow:find("GET", 1, true) and allow:find("HEAD", 1, true)) then
        good, why = false, "Allow is " .. string.format("%q", allow)
      end
      if not good then
        all = false
        ok(false, m .. " " .. p .. " is 405 with Allow: GET, HEAD and a JSON error", tostring(why) .. "\n" .. fmt_resp(r))
      end
    end
  end
  ok(all, n .. " requests with other methods (POST, PUT, DELETE, PATCH, OPTIONS, PROPFIND, FOO) are 405"
    .. " with Allow listing GET and HEAD and a JSON error")
end

-- ======================================================================================== CLI
local function cli(cmd)
  local p = io.popen("printf '%s\\n' '" .. cmd .. "' | timeout 10 socat -t 5 - UNIX-CONNECT:" .. RUN_DIR .. "/haproxy.sock 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

do
  local st = cli("snowflake status")
  ok(st:match("state: minting") and st:match("worker: " .. tostring(worker) .. "\n"),
    "CLI snowflake status shows state minting and the minting worker", st)

  local out = cli("snowflake set clock.max_wait_ms 25")
  ok(out:match("^ok"), "CLI snowflake set clock.max_wait_ms 25 is accepted", out)
  ok(cli("snowflake status"):match("clock.max_wait_ms: 25\n"), "... and snowflake status shows it")
  cli("snowflake set clock.max_wait_ms 20")
  out = cli("snowflake set no.such_key 1")
  ok(out:match("^error") and out:match("no.such_key"), "CLI snowflake set of an unknown key is an error naming the key", out)
  out = cli("snowflake set lease.root /elsewhere")
  ok(out:match("^error") and out:match("lease.root"), "CLI snowflake set of a non-runtime key (lease.root) is an error", out)
  out = cli("snowflake set clock.max_wait_ms -5")
  ok(out:match("^error"), "CLI snowflake set clock.max_wait_ms -5 (out of range) is an error", out)
  out = cli("snowflake set clock.max_wait_ms abc")
  ok(out:match("^error"), "CLI snowflake set clock.max_wait_ms abc is an error", out)
  ok(cli("snowflake status"):match("clock.max_wait_ms: 20\n"), "... and the rejected values changed nothing")

  -- http.max_batch at runtime
  out = cli("snowflake set http.max_batch 10")
  ok(out:match("^ok"), "CLI snowflake set http.max_batch 10 is accepted", out)
  local list = ids_text(10)
  ok(list and #list == 10, "after it, /ids?count=10 is 200")
  if list then for _, id in ipairs(list) do minted[#minted + 1] = id end end
  check_error("after it, /ids?count=11 is 400 invalid_count", get("/ids?count=11"), 400, "invalid_count")
  cli("snowflake set http.max_batch 4096")
  list = ids_text(4096)
  ok(list and #list == 4096, "after setting http.max_batch back to 4096, /ids?count=4096 is 200")
  if list then for _, id in ipairs(list) do minted[#minted + 1] = id end end

  out = cli("snowflake quarantine list")
  ok(not out:match("^error") and not out:match("usage") and out ~= "", "CLI snowflake quarantine list answers (none quarantined)", out)
  ok(cli("snowflake quarantine bogus"):match("usage"), "CLI snowflake quarantine with a bad sub-command prints the usage")

  -- park: /id and /ids 503 "parked" with Retry-After, /health 503; the Retry-After is
  -- limits.retry_after_s as set at runtime
  out = cli("snowflake set limits.retry_after_s 9")
  ok(out:match("^ok"), "CLI snowflake set limits.retry_after_s 9 is accepted", out)
  parked_phase = true
  out = cli("snowflake park")
  ok(out:match("^ok"), "CLI snowflake park is accepted", out)
  local pr = get("/id")
  local good, v = is_json_error(pr, 503)
  ok(good and v.error == "parked" and pr.headers["retry-after"] and pr.headers["retry-after"]:match("^%d+$"),
    'while parked, GET /id is 503 "parked" with Retry-After', fmt_resp(pr))
  pr = get("/id", { Accept = "application/json" })
  good, v = is_json_error(pr, 503)
  ok(good and v.error == "parked" and pr.headers["retry-after"],
    'while parked, GET /id (JSON) is 503 "parked" with Retry-After', fmt_resp(pr))
  pr = get("/ids?count=10")
  good, v = is_json_error(pr, 503)
  ok(good and v.error == "parked" and pr.headers["retry-after"],
    'while parked, GET /ids?count=10 is 503 "parked" with Retry-After', fmt_resp(pr))
  ok(pr and pr.headers["retry-after"] == "9", "... and its Retry-After is limits.retry_after_s as set at runtime (9)", fmt_resp(pr))
  local hr = get("/health")
  ok(hr and hr.status == 503 and is_json_error(hr, 503), "while parked, /health is 503 with a JSON reason", fmt_resp(hr))
  ok(hr and hr.headers["retry-after"] == "9", "... with Retry-After limits.retry_after_s as set at runtime (9)", fmt_resp(hr))
  -- the lease thread applies the park: allow it a moment (bounded), report the lag
  local st_out
  local t_park = H.now_ms()
  repeat
    st_out = cli("snowflake status")
    if st_out:match("state: parked") then break end
    socket.sleep(0.02)
  until H.now_ms() - t_park > 2000
  ok(st_out:match("state: parked"), "while parked, snowflake status says state: parked (within 2 s)", st_out)
  H.figure("park_to_status_parked_ms", H.now_ms() - t_park)
  local dr = get("/decode/1")
  ok(dr and dr.status == 200, "while parked, /decode still answers 200", fmt_resp(dr))
  out = cli("snowflake unpark")
  ok(out:match("^ok"), "CLI snowflake unpark is accepted", out)
  cli("snowflake set limits.retry_after_s 1")
  local t0, back = H.now_ms(), nil
  while H.now_ms() - t0 < 10000 do
    local r = get("/id")
    if r and r.status == 200 then back = H.id_of(r.body:match("^(%d+)\n$")) break end
    socket.sleep(0.05)
  end
  parked_phase = false
  ok(back ~= nil, "after unpark, /id answers 200 again (within 10 s)")
  if back then
    H.figure("unpark_to_200_ms", H.now_ms() - t0)
    local w = H.split(back)
    ok(w ~= worker or back > minted[#minted], "the first ID after unpark is above every ID before the park (or from another worker)")
    minted[#minted + 1] = back
  end
  local hr2
  t0 = H.now_ms()
  repeat
    hr2 = get("/health")
    if hr2 and hr2.status == 200 then break end
    socket.sleep(0.05)
  until H.now_ms() - t0 > 10000
  parked_phase = false
  ok(hr2 and hr2.status == 200, "after unpark, /health is 200 again", fmt_resp(hr2))
  local list2 = ids_text(50)
  ok(list2 and #list2 == 50, "after unpark, /ids?count=50 is 200")
end

-- ======================================================================================== 429
do
  -- requests this address already made in the window (the launcher's /health
  -- polls while the instance started) count against the same limit
  local already = 0
  local rate_dir = arg[5]
  if rate_dir then
    local p = io.popen("printf 'show table api\\n' | timeout 10 socat -t 5 - UNIX-CONNECT:" .. rate_dir .. "/haproxy.sock 2>&1")
    local out = p:read("a") or ""
    p:close()
    already = tonumber(out:match("key=127%.0%.0%.1[^\n]-http_req_rate%(%d+%)=(%d+)")) or 0
  end
  local expected = 51 - already
  -- the 429's Retry-After follows limits.retry_after_s as set at runtime (the instance started with 1)
  local set_out = ""
  if rate_dir then
    local p = io.popen("printf 'snowflake set limits.retry_after_s 7\\n' | timeout 10 socat -t 5 - UNIX-CONNECT:"
      .. rate_dir .. "/haproxy.sock 2>&1")
    set_out = p:read("a") or ""
    p:close()
  end
  ok(set_out:match("^ok"), "CLI snowflake set limits.retry_after_s 7 on the rate-limited instance is accepted", set_out)
  local c = assert(H.connect("127.0.0.1", RATE_PORT))
  local codes, first429 = {}, nil
  for i = 1, 80 do
    local r, err = c:request("GET", "/id")
    if not r then
      c:close()
      c = assert(H.connect("127.0.0.1", RATE_PORT))
      r, err = c:request("GET", "/id")
    end
    if not r then codes[#codes + 1] = "err:" .. tostring(err) break end
    codes[#codes + 1] = r.status
    if r.status == 429 and not first429 then first429 = { i, r } end
    if r.status == 503 then unexpected_503[#unexpected_503 + 1] = "rate-limited instance /id" end
    seen[#seen + 1] = { "GET /id (rate-limited instance)", r }
  end
  c:close()
  ok(first429 ~= nil, "past limits.rate_per_10s = 50 requests in 10 s, /id is 429", table.concat(codes, " "))
  if first429 then
    local i, r = first429[1], first429[2]
    ok(math.abs(i - expected) <= 3, "the first 429 comes at the 51st request of the window",
      "first 429 at request " .. i .. ", " .. already .. " made before in the window")
    local good, v = is_json_error(r, 429)
    ok(good, "the 429 has a JSON error body (snake_case code, detail, newline)", tostring(v) .. "\n" .. fmt_resp(r))
    ok(r.headers["retry-after"] == "7", "the 429's Retry-After is limits.retry_after_s as set at runtime (7)", fmt_resp(r))
    local all429 = true
    for j = i, #codes do if codes[j] ~= 429 then all429 = false end end
    ok(all429, "... and every later request in the window is 429", table.concat(codes, " "))
    local rr = H.get(RATE_PORT, "/ids?count=2")
    ok(rr and rr.status == 429, "/ids is rate limited too", fmt_resp(rr))
  end
end

-- ======================================================================================== all responses
do
  local bad_nl, bad_err, missing_hdr = {}, {}, {}
  for _, e in ipairs(seen) do
    local what, r = e[1], e[2]
    local is_head = what:match("^HEAD ")
    if not is_head and r.body ~= "" and r.body:sub(-1) ~= "\n" then bad_nl[#bad_nl + 1] = what end
    if r.status >= 400 and not is_head then
      local good = is_json_error(r, r.status)
      if not good then bad_err[#bad_err + 1] = what .. " (" .. r.status .. ")" end
    end
    if r.status == 200 and (what:match("^GET /id") or what:match("^HEAD /id")) then
      if not carries_id_headers(r) then missing_hdr[#missing_hdr + 1] = what end
    end
  end
  ok(#bad_nl == 0, "every body of the " .. #seen .. " responses ends in a newline", table.concat(bad_nl, "\n"))
  ok(#bad_err == 0, "every error body is JSON with a snake_case code and a non-empty detail", table.concat(bad_err, "\n"))
  ok(#missing_hdr == 0, "every response carrying IDs has X-Snowflake-Worker and X-Snowflake-Node", table.concat(missing_hdr, "\n"))
  -- the configured node name (http.node_name) on the fast path (/id) and the Lua path (/ids) alike
  local nodes = {}
  for _, e in ipairs(seen) do
    local what, r = e[1], e[2]
    local nv = r.headers["x-snowflake-node"]
    if nv and not what:match("rate%-limited") then
      local key = (what:match("^%u+ /ids") and "/ids" or what:match("^%u+ /id") and "/id" or "other") .. "=" .. nv
      nodes[key] = (nodes[key] or 0) + 1
    end
  end
  local wrong = {}
  for k, n in pairs(nodes) do
    if not k:match("=" .. NODE_NAME:gsub("%-", "%%-") .. "$") then wrong[#wrong + 1] = k .. " (" .. n .. " responses)" end
  end
  table.sort(wrong)
  ok(#wrong == 0, "X-Snowflake-Node is the configured http.node_name (" .. NODE_NAME .. ") on /id and /ids", table.concat(wrong, "\n"))
  ok(#unexpected_503 == 0, "the healthy node never answered 503 (outside the operator's park)", table.concat(unexpected_503, "\n"))
  local all_inc = true
  for i = 2, #minted do
    if minted[i] <= minted[i - 1] and H.split(minted[i]) == H.split(minted[i - 1]) then all_inc = false end
  end
  ok(all_inc, #minted .. " IDs seen in issue order are strictly increasing per worker")
end

if conn then conn:close() end
H.done("01-api")
