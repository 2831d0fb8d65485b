-- edge-snowflake HTTP surface (SPEC "HTTP API"), independent of HAProxy:
-- routing, strict parsing of counts and IDs, response bodies. The handlers
-- (snowflake/service.lua) build their answers with it; the Prometheus text
-- is snowflake/metrics.lua's.
--
-- A handler returns status, content_type, body, headers (a list of
-- {name, value}); every body ends in a newline; errors are
-- {"error":"<code>","detail":"<sentence>"}.

local string_format, string_match, string_find = string.format, string.match, string.find
local table_concat = table.concat
local tostring, tonumber, type, ipairs = tostring, tonumber, type, ipairs
local math_tointeger = math.tointeger
local os_date = os.date

local M = {}

-- HTTP status of each refusal code of the core; anything else is 503.
M.STATUS = {
  invalid_count = 400, invalid_id = 400, id_out_of_range = 400, invalid_query = 400,
  not_found = 404, method_not_allowed = 405, rate_limited = 429,
}

-- Control characters and bytes above 0x7f (a caller's, echoed in a detail) as \u00XX: the body
-- stays ASCII, so valid JSON whatever the caller sent
local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\\128-\255]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string_format("\\u%04x", c:byte())
  end) .. '"'
end
M.json_string = json_string

-- {"error":code,"detail":detail[, extra fields]}\n
function M.error_body(code, detail, extra)
  local parts = { '{"error":', json_string(code), ',"detail":', json_string(detail) }
  if extra then
    for _, kv in ipairs(extra) do
      parts[#parts + 1] = "," .. json_string(kv[1]) .. ":" .. kv[2]
    end
  end
  parts[#parts + 1] = "}\n"
  return table_concat(parts)
end

function M.error(code, detail, headers, extra)
  return M.STATUS[code] or 503, "application/json", M.error_body(code, detail, extra), headers or {}
end

-- Does the Accept header ask for JSON? (no header or */* means text)
function M.wants_json(accept)
  return accept ~= nil and string_find(accept, "application/json", 1, true) ~= nil
end

-- Parses "count=N" strictly: plain ASCII digits, exactly one count, nothing
-- else. Returns n or nil, detail.
function M.parse_count(qs, max_batch)
  if qs == nil or qs == "" then
    return nil, "count is required: /ids?count=N with N in 1.." .. max_batch
  end
  local count
  for part in (qs .. "&"):gmatch("([^&]*)&") do
    local key, value = string_match(part, "^([^=]*)=(.*)$")
    if key ~= "count" then
      return nil, "unknown query parameter " .. json_string(key or part) .. "; only count=N is accepted"
    end
    if count ~= nil then
      return nil, "count is given more than once"
    end
    count = value
  end
  if not string_match(count, "^%d+$") or #count > 6 then
    return nil, "count must be plain digits 1.." .. max_batch .. ", got " .. json_string(count)
  end
  local n = math_tointeger(tonumber(count))
  if not n or n < 1 or n > max_batch then
    return nil, "count must be 1.." .. max_batch .. ", got " .. count
  end
  return n
end

-- Parses the ID of /decode/<id>: decimal digits, 0..2^63-1.
function M.parse_id(text)
  if text == nil or text == "" then
    return nil, "an ID is required: /decode/<id>"
  end
  if not string_match(text, "^%d+$") or #text > 19 then
    return nil, "an ID is a decimal integer 0..9223372036854775807, got " .. json_string(text)
  end
  local id = math_tointeger(tonumber(text))
  if not id then
    return nil, "an ID is at most 9223372036854775807, got " .. text
  end
  return id
end

-- RFC 3339 UTC with exactly three fraction digits.
function M.rfc3339_ms(unix_ms)
  return os_date("!%Y-%m-%dT%H:%M:%S", unix_ms // 1000) .. string_format(".%03dZ", unix_ms % 1000)
end

function M.decode_body(id, d)
  return string_format('{"id":"%d","timestamp_ms":%d,"time":"%s","worker":%d,"sequence":%d}\n',
    id, d.timestamp_ms, M.rfc3339_ms(d.timestamp_ms), d.worker, d.sequence)
end

-- The known paths and how they are matched; anything else is 404.
function M.route(path)
  -- "OPTIONS *", "CONNECT host:port" and the like carry no path
  if type(path) ~= "string" then return nil end
  if path == "/id" then return "id" end
  if path == "/ids" then return "ids" end
  if path == "/health" then return "health" end
  if path == "/metrics" then return "metrics" end
  if path == "/decode" then return "decode", nil end
  local rest = string_match(path, "^/decode/(.*)$")
  if rest then return "decode", rest end
  return nil
end

M.ALLOW = "GET, HEAD"

return M
