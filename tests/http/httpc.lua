-- tests/http/httpc.lua: a small, strict HTTP/1.1 client over lua-socket for the HTTP tests, plus
-- the TAP-like reporting the test scripts share. Lua 5.3 or 5.4 (IDs are 64-bit integers).
--
--   local H = require "httpc"
--   local c = assert(H.connect("127.0.0.1", port))
--   local r = c:request("GET", "/id", { Accept = "application/json" })
--   -- r.status, r.reason, r.version, r.headers["x-snowflake-worker"] (last value), r.hlist (all, in
--   -- order, as { name, value } with the name lower-cased), r.body, r.raw_head; nil, err on failure
--   H.get(port, "/health")   -- one request on a fresh connection (Connection: close)
--   H.ok(cond, "what") / H.diag(...) / H.figure(name, value) / H.done()
--
-- Responses are parsed strictly: a status line "HTTP/1.x NNN reason", header lines "name: value",
-- then a body framed by Content-Length or chunked (or by close when neither is given). A violation
-- is an error, so "every response parseable" is what a successful parse means.

local socket = require "socket"

local M = {}

local string_lower, string_match, string_format = string.lower, string.match, string.format

-- ---- reporting ---------------------------------------------------------------------------------

M.passed, M.failed = 0, 0

function M.ok(cond, what, why)
  if cond then
    M.passed = M.passed + 1
    io.write("ok ", what, "\n")
  else
    M.failed = M.failed + 1
    io.write("not ok ", what, "\n")
    if why ~= nil then io.write("#   ", tostring(why):gsub("\n", "\n#   "), "\n") end
  end
  io.stdout:flush()
  return cond
end

function M.diag(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  io.write("# ", (table.concat(parts, " "):gsub("\n", "\n# ")), "\n")
  io.stdout:flush()
end

function M.figure(name, value)
  io.write("# figure ", name, " ", tostring(value), "\n")
  io.stdout:flush()
end

function M.done(name)
  M.diag(string_format("%s: %d passed, %d failed", name or "lua", M.passed, M.failed))
  os.exit(M.failed == 0 and 0 or 1)
end

function M.now_ms()
  return math.floor(socket.gettime() * 1000)
end

-- ---- connection -----------------------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

function M.connect(host, port, timeout)
  local s, err = socket.tcp()
  if not s then return nil, err end
  s:settimeout(timeout or 5)
  s:setoption("tcp-nodelay", true)
  local ok, cerr = s:connect(host, port)
  if not ok then
    s:close()
    return nil, "connect: " .. tostring(cerr)
  end
  return setmetatable({ sock = s, buf = "", host = host, port = port, closed = false, timeout = timeout or 5 }, Conn)
end

function Conn:settimeout(t)
  self.timeout = t
  self.sock:settimeout(t)
end

function Conn:close()
  if not self.closed then
    self.sock:close()
    self.closed = true
  end
end

-- sends raw bytes; true or nil, err
function Conn:send(bytes)
  local i = 1
  while i <= #bytes do
    local n, err = self.sock:send(bytes, i)
    if not n then return nil, "send: " .. tostring(err) end
    i = n + 1
  end
  return true
end

-- more bytes into the buffer (whatever has arrived, waiting up to the timeout for the first);
-- nil, "closed"|"timeout"|err when none came
function Conn:fill()
  local s = self.sock
  if not s:dirty() then
    local r = socket.select({ s }, nil, self.timeout)
    if not r or #r == 0 then return nil, "timeout" end
  end
  s:settimeout(0)
  local data, err, partial = s:receive(65536)
  s:settimeout(self.timeout)
  if data then
    self.buf = self.buf .. data
    return true
  end
  if partial and #partial > 0 then
    self.buf = self.buf .. partial
    return true
  end
  if err == "timeout" then return nil, "timeout" end
  return nil, err
end

-- one line ending in CRLF (the CRLF is removed); a bare LF is a protocol error
function Conn:line(limit)
  while true do
    local i = self.buf:find("\r\n", 1, true)
    if i then
      local l = self.buf:sub(1, i - 1)
      self.buf = self.buf:sub(i + 2)
      if l:find("\n", 1, true) then return nil, "bare LF in a line" end
      return l
    end
    if #self.buf > (limit or 65536) then return nil, "line longer than " .. (limit or 65536) end
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
end

function Conn:bytes(n)
  while #self.buf < n do
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
  local b = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return b
end

function Conn:rest()
  while true do
    local ok, err = self:fill()
    if not ok then
      if err == "closed" then break end
      return nil, err
    end
  end
  local b = self.buf
  self.buf = ""
  return b
end

-- Reads one response. no_body: the request was HEAD. Returns the response, or nil, err
-- (err "closed" with r == nil and no byte read means the server closed without answering).
function Conn:read_response(no_body)
  local status_line, err = self:line()
  if not status_line then return nil, err end
  local version, status, reason = string_match(status_line, "^HTTP/(1%.[01]) (%d%d%d) ?(.*)$")
  if not version then return nil, "bad status line: " .. string_format("%q", status_line) end
  local r = { version = version, status = tonumber(status), reason = reason, headers = {}, hlist = {} }
  local head = { status_line }
  while true do
    local l, lerr = self:line()
    if not l then return nil, "in headers: " .. tostring(lerr) end
    if l == "" then break end
    head[#head + 1] = l
    local name, value = string_match(l, "^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, "bad header line: " .. string_format("%q", l) end
    name = string_lower(name)
    r.headers[name] = value
    r.hlist[#r.hlist + 1] = { name, value }
  end
  r.raw_head = table.concat(head, "\r\n")
  local te, cl = r.headers["transfer-encoding"], r.headers["content-length"]
  if no_body or r.status == 204 or r.status == 304 or (r.status >= 100 and r.status < 200) then
    r.body = ""
  elseif te and string_lower(te):find("chunked", 1, true) then
    local parts = {}
    while true do
      local size_line, serr = self:line()
      if not size_line then return nil, "chunk size: " .. tostring(serr) end
      local hex = string_match(size_line, "^(%x+)")
      if not hex then return nil, "bad chunk size " .. string_format("%q", size_line) end
      local n = tonumber(hex, 16)
      if n == 0 then
        repeat
          local trailer, terr = self:line()
          if not trailer then return nil, "trailer: " .. tostring(terr) end
        until trailer == ""
        break
      end
      local chunk, cerr = self:bytes(n)
      if not chunk then return nil, "chunk: " .. tostring(cerr) end
      parts[#parts + 1] = chunk
      local crlf = self:bytes(2)
      if crlf ~= "\r\n" then return nil, "chunk not followed by CRLF" end
    end
    r.body = table.concat(parts)
  elseif cl then
    if not string_match(cl, "^%d+$") then return nil, "bad content-length " .. cl end
    local body, berr = self:bytes(tonumber(cl))
    if not body then return nil, "body: " .. tostring(berr) end
    r.body = body
  else
    local body, berr = self:rest()
    if not body then return nil, "body to close: " .. tostring(berr) end
    r.body = body
    r.to_close = true
  end
  return r
end

-- request(method, path, headers) -> response | nil, err. headers: a map or a list of {name, value}.
function Conn:request(method, path, headers, body)
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: " .. self.host .. ":" .. self.port }
  if headers then
    if headers[1] then
      for _, h in ipairs(headers) do lines[#lines + 1] = h[1] .. ": " .. h[2] end
    else
      local names = {}
      for k in pairs(headers) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do lines[#lines + 1] = k .. ": " .. headers[k] end
    end
  end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  local ok, err = self:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""))
  if not ok then return nil, err end
  return self:read_response(method == "HEAD")
end

-- one request on a fresh connection
function M.request(port, method, path, headers, body, timeout)
  local c, err = M.connect("127.0.0.1", port, timeout)
  if not c then return nil, err end
  local r, rerr = c:request(method, path, headers, body)
  c:close()
  return r, rerr
end

function M.get(port, path, headers)
  return M.request(port, "GET", path, headers)
end

-- ---- IDs and JSON ----------------------------------------------------------------------------

local okjson, json = pcall(require, "dkjson")
if not okjson then json = nil end
M.json = json

-- decodes a JSON body; nil, err when it is not JSON (or dkjson is missing)
function M.json_decode(s)
  if not json then return nil, "dkjson is not installed" end
  local v, _, err = json.decode(s, 1, json.null)
  if err then return nil, err end
  return v
end

-- a decimal ID string -> integer (nil unless plain digits within 0..2^63-1)
function M.id_of(s)
  if type(s) ~= "string" or not s:match("^%d+$") or #s > 19 then return nil end
  return math.tointeger(tonumber(s))
end

M.EPOCH_MS = 1704067200000

-- worker, sequence, unix ms of an ID with the default layout (41/10/12)
function M.split(id, worker_bits, sequence_bits)
  local wb, sb = worker_bits or 10, sequence_bits or 12
  return (id >> sb) & ((1 << wb) - 1), id & ((1 << sb) - 1), (id >> (wb + sb)) + M.EPOCH_MS
end

return M
