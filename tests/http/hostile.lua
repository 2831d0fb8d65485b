-- tests/http/hostile.lua: hundreds of malformed, odd and hostile requests over raw TCP.
-- Run by 02-hostile_test.sh:  lua5.4 hostile.lua PORT
-- Every request gets a fresh connection (except the pipelined ones). Checks: every response is a
-- well-formed HTTP/1.x response, none is 5xx, the requests that reach the service get what SPEC
-- "HTTP API" says, nothing injected comes back as a header; a summary line per group.
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local H = require "httpc"
local socket = require "socket"

local PORT = tonumber(arg[1])
local ok, diag = H.ok, H.diag

local total_requests, total_responses = 0, 0
local statuses = {}          -- status -> count
local html_errors = {}       -- responses that are errors without a JSON body (HAProxy's own pages)

local function fmt(r)
  if not r then return "no response" end
  return (r.raw_head:gsub("\r\n", " | ")) .. " || " .. string.format("%q", r.body:sub(1, 200))
end

local function show(bytes)
  local s = bytes:sub(1, 80):gsub("[%c\128-\255]", function(c) return string.format("\\x%02x", c:byte()) end)
  if #bytes > 80 then s = s .. "...(" .. #bytes .. " bytes)" end
  return s
end

-- send(bytes) on a fresh connection, read up to `n` responses (default 1); `head` = HEAD responses.
-- Returns a list of responses and the error that stopped reading (nil when n were read).
local function exchange(bytes, n, head, timeout)
  local c, err = H.connect("127.0.0.1", PORT, timeout or 3)
  if not c then return {}, err end
  local sent, serr = c:send(bytes)
  local out = {}
  for i = 1, n or 1 do
    local no_body
    if type(head) == "table" then no_body = head[i] else no_body = head end
    local r, rerr = c:read_response(no_body)
    if not r then
      c:close()
      return out, rerr or serr
    end
    out[#out + 1] = r
    if r.to_close then break end
  end
  c:close()
  return out, (#out < (n or 1)) and "closed early" or (not sent and serr or nil)
end

local function is_json_error(r)
  if not (r.headers["content-type"] or ""):find("application/json", 1, true) then return false end
  local v = H.json_decode(r.body)
  return type(v) == "table" and type(v.error) == "string" and v.error:match("^[a-z][a-z0-9_]*$")
    and type(v.detail) == "string" and v.detail ~= "" and r.body:sub(-1) == "\n"
end

-- the groups' failures, reported once per group (with the first few cases)
local group_fail = {}
local group_count = {}

local function record(group, what, cond, why)
  group_count[group] = (group_count[group] or 0) + 1
  if not cond then
    group_fail[group] = group_fail[group] or {}
    local g = group_fail[group]
    if #g < 8 then g[#g + 1] = what .. ": " .. tostring(why) end
    g.n = (g.n or 0) + 1
  end
end

-- one case: bytes on a fresh connection, expect one response whose status satisfies `want`
-- (a number, a set, or a function), never 5xx.
local function case(group, bytes, want, opts)
  opts = opts or {}
  total_requests = total_requests + 1
  local rs, err = exchange(bytes, 1, opts.head, opts.timeout)
  local r = rs[1]
  local what = show(bytes)
  if not r then
    if opts.may_close and (err == "closed" or err == "closed early") then
      record(group, what, true)
      return nil
    end
    record(group, what, false, "no parseable response (" .. tostring(err) .. ")")
    return nil
  end
  total_responses = total_responses + 1
  statuses[r.status] = (statuses[r.status] or 0) + 1
  if r.status >= 400 and not opts.head and not is_json_error(r) then
    html_errors[#html_errors + 1] = { what = r.status .. " for " .. what, body = r.body }
  end
  local good, why = true, nil
  if r.status >= 500 then
    good, why = false, "5xx: " .. fmt(r)
  elseif type(want) == "number" and r.status ~= want then
    good, why = false, "want " .. want .. ", got " .. fmt(r)
  elseif type(want) == "table" and not want[r.status] then
    good, why = false, "unexpected status: " .. fmt(r)
  elseif type(want) == "function" then
    local g, w = want(r)
    if not g then good, why = false, (w or "check failed") .. ": " .. fmt(r) end
  end
  record(group, what, good, why)
  return r
end

local function report(group, desc)
  local n, f = group_count[group] or 0, group_fail[group]
  ok(f == nil, string.format("%s (%d requests)", desc, n),
    f and (f.n .. " failed:\n" .. table.concat(f, "\n")) or nil)
end

local function get(path, extra)
  return "GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\n" .. (extra or "") .. "Connection: close\r\n\r\n"
end

local ANY4 = function(r) return r.status >= 400 and r.status < 500, "want 4xx" end
local JSON400 = function(r) return r.status == 400 and is_json_error(r), "want a JSON 400" end
local ID200 = function(r) return r.status == 200 and r.body:match("^%d+\n$") ~= nil, "want 200 and an ID" end

-- ---- stalled and abandoned requests: opened first, checked at the end (after timeout http-request)
local stalled = {}
do
  local partials = {
    "GET /id HTTP/1.1\r\nHost: 127.0.0.1\r\n",      -- headers never end
    "GET /ids?count=10 HTT",                         -- request line cut
    "G",                                              -- one byte
    "POST /id HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", -- body never completes
  }
  for _, p in ipairs(partials) do
    local c = H.connect("127.0.0.1", PORT, 12)
    if c then
      c:send(p)
      stalled[#stalled + 1] = { c = c, what = show(p), t0 = H.now_ms() }
    end
  end
  -- abandoned: half a request, then close at once
  for _ = 1, 10 do
    local c = H.connect("127.0.0.1", PORT, 2)
    if c then
      c:send("GET /ids?count=4096 HTTP/1.1\r\nHost: 127.0.0.1\r\nAcc")
      c:close()
      total_requests = total_requests + 1
    end
    local c2 = H.connect("127.0.0.1", PORT, 2)
    if c2 then -- a complete request whose answer is never read
      c2:send(get("/ids?count=4096"))
      c2:close()
      total_requests = total_requests + 1
    end
  end
end

-- ---- methods
do
  local g = "methods"
  for _, m in ipairs({ "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "LINK", "UNLINK", "PROPFIND",
                       "MKCOL", "COPY", "MOVE", "LOCK", "SEARCH", "PURGE", "X", "GETT", "ID", "BREW" }) do
    case(g, "" .. m .. " /id HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      function(r) return r.status == 405 and (r.headers["allow"] or ""):find("GET", 1, true) ~= nil, "want 405 with Allow" end)
  end
  for _, m in ipairs({ "get", "Get", "gEt", "head" }) do
    -- methods are case-sensitive: lower-case get is another method
    case(g, m .. " /id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ANY4)
  end
  case(g, ("A"):rep(5000) .. " /id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ANY4)
  case(g, "G\0ET /id HTTP/1.1\r\nHost: x\r\n\r\n", ANY4, { may_close = true })
  -- HAProxy's parser tolerates extra blanks between the parts of the request line: no 5xx is all
  local NO5XX = function(r) return r.status < 500, "no 5xx" end
  case(g, "GET\t/id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NO5XX, { may_close = true })
  case(g, " GET /id HTTP/1.1\r\nHost: x\r\n\r\n", ANY4, { may_close = true })
  case(g, "GET  /id  HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NO5XX, { may_close = true })
  case(g, "CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", ANY4, { may_close = true })
  case(g, "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ANY4)
  case(g, "HEAD /id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, { head = true })
  case(g, "HEAD /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, { head = true })
  case(g, "HEAD /ids?count=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, { head = true })
  report(g, "odd methods: 405 with Allow for other methods, 4xx for broken ones, never 5xx")
end

-- ---- paths
do
  local g = "paths"
  local unknown = { "/", "/x", "/id/", "/id/extra", "/id/1", "/ids/", "/ids/extra?count=1", "/health/", "/metrics/x",
    "/ID", "/Id", "/iD", "/IDS?count=1", "/%2f", "/%2fid", "/%69d", "/i%64", "/id%00", "/id%0d%0aX-Injected:%201",
    "/.", "/..", "/../id", "/./id", "//id", "///", "/id;", "/id;x=1", "/ids;count=1", "/%", "/%%", "/%zz", "/%G0",
    "/%e0%80%80", "/%ff%fe", "/%c0%af", "/\xc3\xa9", "/\xff\xfe", "/~", "/a?b#c", "/id#x",
    "/" .. ("a"):rep(1000), "/" .. ("%41"):rep(1000), "/" .. ("/"):rep(2000),
    "/decodex/1", "/healthz", "/metrics.txt", "/id.json", "/status", "/admin", "/stats", "/.env", "/cgi-bin/x",
  }
  for _, p in ipairs(unknown) do
    local raw = p:find("[\128-\255]")
    case(g, get(p), raw and ANY4 or function(r)
      if r.status == 404 then return is_json_error(r), "404 without a JSON body" end
      return r.status >= 400 and r.status < 500, "want 4xx"
    end)
  end
  case(g, get("/" .. ("a"):rep(10000)), ANY4)
  -- paths that are the API
  case(g, get("/id?"), ID200)
  case(g, get("/id?x=1"), ID200)
  case(g, "GET http://127.0.0.1/id HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", ID200)
  case(g, "GET http://127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 200)
  case(g, "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ANY4)
  case(g, "GET id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ANY4)
  case(g, "GET ?count=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ANY4)
  for _, p in ipairs({ "/decode/%", "/decode/%3", "/decode/%zz", "/decode/%31%32", "/decode/1%", "/decode/%2F1",
                       "/decode/1/", "/decode//1", "/decode/1?x=1", "/decode/1?x=%", "/decode/-0", "/decode/0x0",
                       "/decode/" .. ("1"):rep(5000), "/decode/" .. ("%39"):rep(100) }) do
    case(g, get(p), function(r)
      if p == "/decode/1?x=1" or p == "/decode/1?x=%" then return r.status == 200 or r.status == 400, "want 200 or 400" end
      return r.status >= 400 and r.status < 500 and (r.status ~= 400 or is_json_error(r)), "want a JSON 4xx"
    end)
  end
  report(g, "odd paths: unknown ones 404 (JSON), broken ones 4xx, the API's own paths still served")
end

-- ---- every odd shape of count
do
  local g = "count"
  for k = 1, 25 do
    local digits = ("1"):rep(k)
    local n = tonumber(digits)
    case(g, get("/ids?count=" .. digits), function(r)
      if n <= 4096 then
        local lines = select(2, r.body:gsub("\n", ""))
        return r.status == 200 and lines == n, "want 200 and " .. n .. " IDs"
      end
      return r.status == 400 and is_json_error(r), "want a JSON 400"
    end)
  end
  for _, n in ipairs({ 4095, 4096, 4097, 8192, 65535, 65536, 65537, 2147483647, 2147483648, 4294967296,
                       9223372036854775807 }) do
    case(g, get("/ids?count=" .. n), n <= 4096 and 200 or JSON400)
  end
  case(g, get("/ids?count=9223372036854775808"), JSON400)
  case(g, get("/ids?count=-9223372036854775808"), JSON400)
  case(g, get("/ids?count=" .. ("0"):rep(50) .. "1"),
    function(r) return r.status == 200 or (r.status == 400 and is_json_error(r)), "want 200 or a JSON 400" end)
  local printable_odd = { "", "0", "00", "-0", "+0", "-1", "+1", "1.", ".1", "1.0", "1e0", "1E3", "0x1", "0X1", "0b1",
    "0o1", "1_000", "1,000", "1%2C000", "%201", "1%20", "%091", "1%09", "%0a1", "1%0a", "%0d%0a1",
    "%00", "1%00", "%001", "%2B1", "%2D1", "%31", "%31%30", "%", "%1", "%%31", "%g1", "1%", "1%2",
    "%EF%BC%91", "%D9%A1", "%E0%A5%A7", "%C2%B9", "%E2%91%A0", "one", "ten", "NaN", "nan", "inf", "Infinity",
    "-inf", "null", "true", "[]", "{}", "[1]", "%5B1%5D", "1]", "'1'", "%221%22", "\"1\"", "1;", "1;2",
    "1&", "&1", "=1", "1=1", "count", "count=1", "1&count=1", "1&count=2", "2&count=2", "1+1", "1-1", "1*1",
    "1/1", "(1)", "$1", "1$", "~1", "!1", "1!", "@1", "1@", "^1", "1^", "|1", "`1`", "1:", ":1" }
  for _, v in ipairs(printable_odd) do
    local raw = v:find("[\"'`|^%[%]{}]")  -- characters HAProxy may itself refuse unencoded
    case(g, get("/ids?count=" .. v), raw and ANY4 or JSON400)
  end
  for _, q in ipairs({ "", "?", "?count", "?count=", "?count&count=1", "?count=1&count=1", "?count=1&count=",
                       "?count=&count=1", "?Count=1", "?COUNT=1", "?count%3D1", "?c%6funt=1", "?count=1&n=1",
                       "?n=1", "?&", "?&&", "?count=1&&", "?=", "?==", "?count==", "?count=1=1",
                       "?" .. ("count=1&"):rep(100), "?count=" .. ("9"):rep(3000), "?" .. ("x"):rep(8000) }) do
    case(g, get("/ids" .. q), function(r) return r.status == 400 and is_json_error(r), "want a JSON 400" end)
  end
  -- raw whitespace and control bytes: HAProxy's request-line parser decides (it tolerates a
  -- trailing space, "count=1 " is then count=1); whatever it decides, never a 5xx
  for _, v in ipairs({ " 1", "1 ", "\t1", "1\0", "\0", "\r1", "1\n" }) do
    case(g, get("/ids?count=" .. v), function(r) return r.status < 500, "no 5xx" end, { may_close = true })
  end
  report(g, "every odd shape of count: 200 with N IDs only for plain digits 1..4096, else 400 (JSON when it reaches the service)")
end

-- ---- overlong request lines and headers, NUL bytes
do
  local g = "overlong"
  case(g, get("/id?" .. ("a"):rep(100 * 1024)), ANY4, { may_close = true })
  case(g, get("/" .. ("b"):rep(100 * 1024)), ANY4, { may_close = true })
  case(g, get("/ids?count=" .. ("1"):rep(100 * 1024)), ANY4, { may_close = true })
  case(g, get("/id", "X-Big: " .. ("c"):rep(100 * 1024) .. "\r\n"), ANY4, { may_close = true })
  case(g, get("/id", "Accept: " .. ("application/json, "):rep(6000) .. "\r\n"), ANY4, { may_close = true })
  case(g, get("/id", ("X-Many: 0123456789012345678901234567890123456789\r\n"):rep(2000)), ANY4, { may_close = true })
  case(g, get("/id", ("X-h%d: v\r\n"):rep(150):gsub("%%d", "")),
    function(r) return r.status == 200 or (r.status >= 400 and r.status < 500), "want 200 or 4xx" end)
  case(g, get("/id", ("Cookie: " .. ("k=v; "):rep(2000) .. "\r\n")), function(r) return r.status < 500, "no 5xx" end, { may_close = true })
  case(g, get("/id", "X-" .. ("n"):rep(20000) .. ": v\r\n"), ANY4, { may_close = true })
  case(g, get("/id", "X-Long: " .. ("d"):rep(8000) .. "\r\n"), ID200)
  report(g, "overlong request lines and headers (up to 100 KB) get a 4xx, never a 5xx")

  g = "nul"
  for _, b in ipairs({
    "GET /id\0 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /\0id HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /ids?count=1\0 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /decode/1\0 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /id HTTP/1.1\0\r\nHost: x\r\n\r\n", "GET /id HTTP/1.1\r\nHost: x\r\nX\0A: 1\r\n\r\n",
    "\0\0\0\0\r\n\r\n", "\0GET /id HTTP/1.1\r\nHost: x\r\n\r\n", ("\0"):rep(20000),
  }) do
    case(g, b, ANY4, { may_close = true })
  end
  -- NUL in a header value: HAProxy 2.6 passes it on; the service must still answer sanely
  for _, b in ipairs({ "GET /id HTTP/1.1\r\nHost: x\0y\r\nConnection: close\r\n\r\n",
                       "GET /id HTTP/1.1\r\nHost: x\r\nX-A: \0\r\nConnection: close\r\n\r\n",
                       "GET /id HTTP/1.1\r\nHost: x\r\nAccept: application/json\0text/plain\r\nConnection: close\r\n\r\n",
                       "GET /ids?count=2 HTTP/1.1\r\nHost: x\r\nAccept: \0\0\0\r\nConnection: close\r\n\r\n" }) do
    case(g, b, function(r) return r.status == 200 or (r.status >= 400 and r.status < 500), "want 200 or 4xx" end, { may_close = true })
  end
  report(g, "NUL bytes in the method, path, version and header names get a 4xx (or a close); in header values, no 5xx")
end

-- ---- HTTP versions
do
  local g = "versions"
  for _, v in ipairs({ "HTTP/1.2", "HTTP/1.9", "HTTP/2.0", "HTTP/3", "HTTP/9.9", "HTTP/1", "HTTP/1.", "HTTP/.1",
                       "HTTP/11.1", "HTTP/1.10", "HTTP/01.1", "http/1.1", "Http/1.1", "HTTPS/1.1", "HTTP 1.1", "HTTP/1.1 x",
                       "HTTP/-1.1", "HTTP/a.b", "FTP/1.0", "HTTP/0.9", "HTTP/1.1/1.1", ("HTTP/1.1"):rep(100) }) do
    case(g, "GET /id " .. v .. "\r\nHost: x\r\nConnection: close\r\n\r\n",
      function(r) return r.status < 500, "no 5xx" end, { may_close = true })
  end
  case(g, "GET /id\r\n\r\n", function(r) return r.status < 500, "no 5xx" end, { may_close = true })
  case(g, "GET /id HTTP/1.0\r\n\r\n", ID200)
  case(g, "GET /id HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ID200)
  case(g, "GET /id HTTP/1.1\r\n\r\n", function(r) return r.status == 400 or r.status == 200, "want 400 (no Host) or 200" end)
  case(g, "GET /id HTTP/1.1\nHost: x\nConnection: close\n\n", function(r) return r.status < 500, "no 5xx" end, { may_close = true })
  case(g, "GET /id HTTP/1.1\rHost: x\r\r", ANY4, { may_close = true, timeout = 7 })
  -- an HTTP/2 preface: HAProxy may switch to h2 (binary) or refuse; it must not answer 5xx or crash
  do
    total_requests = total_requests + 1
    local c = H.connect("127.0.0.1", PORT, 3)
    local okp = false
    if c then
      c:send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
      local got = ""
      local t0 = H.now_ms()
      while #got < 9 and H.now_ms() - t0 < 3000 do
        if not c:fill() then break end
        got = c.buf
      end
      c:close()
      -- an h2 frame header (SETTINGS = type 4, or GOAWAY = 7), or an HTTP/1 4xx
      okp = (#got >= 9 and (got:byte(4) == 4 or got:byte(4) == 7)) or got:match("^HTTP/1%.[01] 4%d%d") ~= nil or got == ""
    end
    record(g, "h2 preface", okp, "neither an h2 frame nor an HTTP/1 4xx")
  end
  report(g, "bad HTTP versions (22 forms, HTTP/0.9, bare LF, bare CR, h2 preface) never get a 5xx")
end

-- ---- header injection and framing tricks
do
  local g = "injection"
  local function no_injected(r)
    for _, h in ipairs(r.hlist) do
      if h[1] == "x-injected" or h[1] == "set-cookie" then return false, "injected header came back" end
    end
    if r.status >= 500 then return false, "5xx" end
    return true
  end
  for _, b in ipairs({
    get("/id%0d%0aX-Injected:%201"), get("/id%0aSet-Cookie:%20a=b"), get("/decode/1%0d%0aX-Injected:%201"),
    get("/ids?count=1%0d%0aX-Injected:%201"), get("/nope%0d%0aSet-Cookie:%20a=b"),
    get("/id", "Accept: application/json%0d%0aX-Injected: 1\r\n"),
    get("/id", "X-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n"),
    "GET /id HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n X-Injected: 1\r\nConnection: close\r\n\r\n", -- obs-fold
    "GET /id HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\tX-Injected: 1\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\rX-Injected: 1\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nX-A: a\rX-Injected: 1\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nX-A : a\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nNoColon\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\n: empty-name\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!",
    "GET /id HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n0\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST /id HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST /id HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nGET ",
    "GET /id HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings, close\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nConnection: close, close, keep-alive, foo\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nAccept: " .. ("\255"):rep(10) .. "\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nAccept:\r\nConnection: close\r\n\r\n",
    "GET /id HTTP/1.1\r\nHost: x\r\nX-Snowflake-Worker: 7\r\nX-Snowflake-Node: evil\r\nConnection: close\r\n\r\n",
  }) do
    case(g, b, no_injected, { may_close = true })
  end
  -- a client's X-Snowflake-* headers are never echoed in place of the service's own
  local r = case(g, "GET /id HTTP/1.1\r\nHost: x\r\nX-Snowflake-Worker: 1023\r\nConnection: close\r\n\r\n", ID200)
  if r then
    local n = 0
    for _, h in ipairs(r.hlist) do if h[1] == "x-snowflake-worker" then n = n + 1 end end
    record(g, "one X-Snowflake-Worker", n == 1 and H.split(H.id_of(r.body:match("%d+"))) == tonumber(r.headers["x-snowflake-worker"]),
      "X-Snowflake-Worker count " .. n)
  end
  report(g, "header injection and framing tricks (CRLF in the path, obs-fold, bare CR, duplicate Content-Length, CL+TE,"
    .. " bad chunks, upgrades): never a 5xx, nothing injected")
end

-- ---- pipelining
do
  local g = "pipelining"
  local reqs, heads, wants = {}, {}, {}
  local kinds = {
    { "GET /id HTTP/1.1\r\nHost: x\r\n\r\n", false, 200 },
    { "GET /ids?count=3 HTTP/1.1\r\nHost: x\r\n\r\n", false, 200 },
    { "GET /id HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n", false, 200 },
    { "HEAD /id HTTP/1.1\r\nHost: x\r\n\r\n", true, 200 },
    { "GET /decode/1 HTTP/1.1\r\nHost: x\r\n\r\n", false, 200 },
    { "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", false, 404 },
    { "GET /ids?count=1.0 HTTP/1.1\r\nHost: x\r\n\r\n", false, 400 },
    { "DELETE /id HTTP/1.1\r\nHost: x\r\n\r\n", false, 405 },
    { "POST /ids HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", false, 405 },
    { "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", false, 200 },
  }
  for i = 1, 200 do
    local k = kinds[(i - 1) % #kinds + 1]
    reqs[#reqs + 1], heads[#heads + 1], wants[#wants + 1] = k[1], k[2], k[3]
  end
  reqs[#reqs + 1], heads[#heads + 1], wants[#wants + 1] = get("/id"), false, 200
  total_requests = total_requests + #reqs
  local rs, err = exchange(table.concat(reqs), #reqs, heads, 10)
  total_responses = total_responses + #rs
  record(g, "201 pipelined requests in one write", #rs == #reqs, "got " .. #rs .. " responses (" .. tostring(err) .. ")")
  local bad, prev, inc = 0, -1, true
  for i, r in ipairs(rs) do
    statuses[r.status] = (statuses[r.status] or 0) + 1
    if r.status ~= wants[i] then bad = bad + 1 end
    if r.status == 200 and (reqs[i]:match("^GET /id ") or reqs[i]:match("^GET /ids")) then
      for id in r.body:gmatch("%d+") do
        local v = H.id_of(id)
        if not v or v <= prev then inc = false end
        prev = v or prev
      end
    end
  end
  record(g, "pipelined statuses", bad == 0, bad .. " responses with another status than expected")
  record(g, "pipelined IDs increasing", inc, "IDs of the pipelined responses are not increasing")

  -- 500 /id pipelined in one write
  local many = ("GET /id HTTP/1.1\r\nHost: x\r\n\r\n"):rep(499) .. get("/id")
  total_requests = total_requests + 500
  rs, err = exchange(many, 500, false, 10)
  total_responses = total_responses + #rs
  local n200 = 0
  prev, inc = -1, true
  for _, r in ipairs(rs) do
    statuses[r.status] = (statuses[r.status] or 0) + 1
    if r.status == 200 then n200 = n200 + 1 end
    local v = H.id_of(r.body:match("^(%d+)\n$"))
    if not v or v <= prev then inc = false end
    prev = v or prev
  end
  record(g, "500 pipelined /id", n200 == 500 and inc,
    n200 .. " of 500 answered 200 (" .. tostring(err) .. "), increasing: " .. tostring(inc))

  -- a malformed request in the middle of a pipeline: the ones before it are answered, then a 4xx
  local mixed = ("GET /id HTTP/1.1\r\nHost: x\r\n\r\n"):rep(5) .. "GET /id HTTP/7.7\0\r\n\r\n"
    .. ("GET /id HTTP/1.1\r\nHost: x\r\n\r\n"):rep(5)
  total_requests = total_requests + 11
  rs = exchange(mixed, 11, false, 5)
  total_responses = total_responses + #rs
  local first5 = #rs >= 6
  for i = 1, 5 do if not rs[i] or rs[i].status ~= 200 then first5 = false end end
  record(g, "pipeline with a bad request", first5 and rs[6].status >= 400 and rs[6].status < 500,
    "got " .. #rs .. " responses: "
      .. table.concat((function() local t = {} for _, r in ipairs(rs) do t[#t + 1] = r.status end return t end)(), " "))
  -- byte by byte (slow client) still answered
  do
    total_requests = total_requests + 1
    local c = H.connect("127.0.0.1", PORT, 5)
    local r
    if c then
      for ch in get("/ids?count=7"):gmatch(".") do c:send(ch) socket.sleep(0.002) end
      r = c:read_response()
      c:close()
    end
    record(g, "byte-by-byte request", r and r.status == 200 and select(2, r.body:gsub("\n", "")) == 7, fmt(r))
  end
  report(g, "pipelining (201 mixed and 500 /id requests in one write, a bad one mid-pipeline, a byte-by-byte client)")
end

-- ---- random garbage
do
  local g = "garbage"
  math.randomseed(20240101)
  for i = 1, 40 do
    local len = math.random(1, 600)
    local t = {}
    for j = 1, len do t[j] = string.char(math.random(0, 255)) end
    local b = table.concat(t) .. "\r\n\r\n"
    if i % 2 == 0 then b = "GET /" .. table.concat(t):gsub("[%s]", "") .. " HTTP/1.1\r\nHost: x\r\n\r\n" end
    case(g, b, function(r) return r.status < 500, "no 5xx" end, { may_close = true })
  end
  report(g, "random bytes (40 requests) never get a 5xx")
end

-- ---- the stalled requests: answered with a 4xx (408) or closed once timeout http-request ends
do
  local g = "stalled"
  for _, s in ipairs(stalled) do
    total_requests = total_requests + 1
    local r, err = s.c:read_response()
    s.c:close()
    if r then
      total_responses = total_responses + 1
      statuses[r.status] = (statuses[r.status] or 0) + 1
      record(g, s.what, r.status >= 400 and r.status < 500, fmt(r))
    else
      record(g, s.what, err == "closed", "neither an answer nor a close within 12 s: " .. tostring(err))
    end
    H.figure("stalled_request_closed_after_ms", H.now_ms() - s.t0)
  end
  report(g, "stalled partial requests get a 4xx or a close (timeout http-request), nothing hangs")
end

local parts = {}
local codes = {}
for k in pairs(statuses) do codes[#codes + 1] = k end
table.sort(codes)
for _, k in ipairs(codes) do parts[#parts + 1] = k .. "x" .. statuses[k] end
diag("statuses: " .. table.concat(parts, " "))
H.figure("hostile_requests", total_requests)
H.figure("hostile_responses", total_responses)
ok(total_requests >= 300, "at least 300 hostile requests were sent (" .. total_requests .. ")")
local five = 0
for k, v in pairs(statuses) do if k >= 500 then five = five + v end end
ok(five == 0, "no response among " .. total_responses .. " was a 5xx")
-- SPEC: "400, 404 and 405 bodies are JSON". A request HAProxy's HTTP/1 parser rejects never reaches
-- the service, and HAProxy 2.6 answers those from its built-in pages (mux_h1's h1_send_error uses
-- http_err_msgs, not the errorfiles): such HTML pages are counted, every other 4xx must be JSON.
local foreign = {}
for _, e in ipairs(html_errors) do
  if not e.body:match("^<html><body><h1>%d%d%d ") then foreign[#foreign + 1] = e.what end
end
H.figure("haproxy_builtin_error_pages", #html_errors - #foreign)
ok(#foreign == 0, "every 4xx body is a JSON error, except HAProxy's own parser refusals ("
    .. (#html_errors - #foreign) .. " built-in HTML pages)",
  #foreign > 0 and table.concat(foreign, "\n", 1, math.min(#foreign, 10)) or nil)
H.done("02-hostile")
