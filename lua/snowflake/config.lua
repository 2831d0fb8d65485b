-- edge-snowflake configuration: one schema, its defaults, and validation.
--
-- A config is a Lua table with the sections of SPEC "Operator interface":
-- layout, clock, lease, state, http, limits. A config file is a Lua chunk
-- returning such a table. Every key is checked: an unknown key or a bad value
-- stops the start with a message naming the key ("clock.max_wait_ms must be
-- an integer in 0..60000, got -5").

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local math_type = math.type
local string_format = string.format
local table_sort, table_concat = table.sort, table.concat

local M = {}

local function int(lo, hi, default, runtime)
  return { kind = "integer", lo = lo, hi = hi, default = default, runtime = runtime }
end

local function bool(default, runtime)
  return { kind = "boolean", default = default, runtime = runtime }
end

local function str(default, pattern, what, valid)
  return { kind = "string", default = default, pattern = pattern, what = what, valid = valid }
end

local function enum(values, default, runtime)
  return { kind = "enum", values = values, default = default, runtime = runtime }
end

local function func()
  return { kind = "function", optional = true }
end

-- an IPv4 address: four decimal octets 0..255, nothing else
local function ipv4(text)
  local a, b, c, d = string.match(text, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  for _, octet in ipairs({ a, b, c, d }) do
    if #octet > 3 or tonumber(octet) > 255 then return false end
  end
  return true
end

-- "a.b.c.d:port" -> address, port (1..65535), or nil
function M.split_peer(text)
  local addr, port = string.match(text, "^([%d%.]+):(%d+)$")
  port = port and #port <= 5 and tonumber(port)
  if not addr or not ipv4(addr) or not port or port < 1 or port > 65535 then return nil end
  return addr, math.tointeger(port)
end

-- a log target HAProxy takes: stderr, a syslog socket path, or a.b.c.d:port
local function log_target(text)
  return text == "stderr" or (text:find("^/[%w%._%-/]+$") ~= nil and #text <= 107) or M.split_peer(text) ~= nil
end

-- a Unix socket's path fits sockaddr_un (108 bytes with the NUL)
local function socket_path(text)
  return #text <= 107
end

-- The schema. `runtime = true` marks the keys `snowflake set` may change
-- while serving.
M.schema = {
  layout = {
    epoch_ms       = int(0, nil, 1704067200000),
    timestamp_bits = int(35, 47, 41),
    worker_bits    = int(1, 16, 10),
    sequence_bits  = int(1, 22, 12),
  },
  clock = {
    max_wait_ms      = int(0, 60000, 20, true),
    borrow           = bool(false, true),
    -- an operator's ladder: function(regression) -> "wait" | "refuse"
    policy           = func(),
    -- the boot-time adjtimex check: what an unsynchronised clock or a large
    -- maximum error does
    discipline       = enum({ "refuse", "log", "ignore" }, "log"),
    max_error_ms     = int(1, 3600000, 500),
    -- what a mint reads: the TSC where the machine allows it ("auto"), or
    -- always clock_gettime (half as fast, nothing between it and the kernel)
    source           = enum({ "auto", "clock_gettime" }, "auto"),
  },
  lease = {
    zk_hosts           = str("127.0.0.1:2181", "^[%w%.%-_:,%[%]]+$", "host:port[,host:port...]"),
    root               = str("/snowflake/default", "^/[%w%._%-/]*[%w%._%-]$", "an absolute ZooKeeper path"),
    node_name          = { kind = "string", optional = true, pattern = "^[%w%._%-]+$",
                           what = "letters, digits, '.', '_' or '-'" },
    session_timeout_ms = int(400, 120000, 6000),
    margin_ms          = int(0, 60000, 1500),
    registry_ahead_ms  = int(0, 3600000, 0),
    start_bound_ms     = int(0, 3600000, 30000),
    reclaim_delay_ms   = int(0, 3600000, 5000),
    start_timeout_ms   = int(0, 3600000, 15000),
    -- a file (mode 0600) holding user:password: the registry's digest
    -- identity; every node the lease creates is writable by it alone
    auth_file          = { kind = "string", optional = true, pattern = "^/", what = "an absolute path" },
    -- refuse to claim under a registry root anyone may write
    require_acl        = bool(false),
  },
  state = {
    dir      = str("/var/lib/edge-snowflake", "^/", "an absolute path"),
    -- how far ahead of the clock the local mark is stored: a restart waits
    -- at most this long; it is stored again when a third is used, which
    -- leaves the fsync a second on a busy host before minting would stall
    ahead_ms = int(30, 60000, 1500),
  },
  http = {
    max_batch = int(1, 65536, 4096, true),
    node_name = { kind = "string", optional = true, pattern = "^[%w%._%-]+$",
                  what = "letters, digits, '.', '_' or '-'" },
    -- the other proxies of the fleet (SPEC "Fleet topology"): name ->
    -- "a.b.c.d:port". A request this proxy cannot mint for goes to one of
    -- them; a handed-off request is honoured only from these addresses, so
    -- each proxy must reach its peers from the address they list it under
    -- (the host's own address on that network, as the kernel picks it).
    peers = { kind = "peers", default = {} },
    -- how often each peer's /health is checked
    peer_check_ms = int(50, 10000, 200),
    -- what the service (the package's edge-snowflake command) derives HAProxy's
    -- listener, threads, log and stats socket from; haproxy/run.sh takes them
    -- from its own knobs (PORT, BIND_ADDR, THREADS, LOG_TARGET, RUN_DIR) instead
    bind = str("127.0.0.1:8080", "^[%d%.]+:%d+$", "\"a.b.c.d:port\" (0.0.0.0: every address)",
               function(text) return M.split_peer(text) ~= nil end),
    threads = int(1, 64, 2),
    log_target = str("stderr", "^[%w%._%-/:]+$", "stderr, an absolute socket path or \"a.b.c.d:port\"",
                     log_target),
    admin_socket = str("/run/edge-snowflake/admin.sock", "^/[%w%._%-/]+$",
                       "an absolute path of at most 107 bytes (letters, digits, '.', '_', '-', '/')", socket_path),
  },
  limits = {
    rate_per_10s = int(1, 100000000, 100000),
    retry_after_s = int(1, 3600, 1, true),
    -- connections HAProxy holds at once (the service's global maxconn; the
    -- API's frontend takes 100 fewer, kept for the CLI and the peers'
    -- checks), and at most per caller address (an idle flood sends no
    -- request: the rate limit never sees it). The package's unit allows
    -- 65536 fds, HAProxy needs ~2 a connection: past ~32000, raise
    -- LimitNOFILE in a drop-in. haproxy/run.sh takes MAXCONN and
    -- CONN_PER_ADDR instead.
    maxconn = int(200, 1000000, 20000),
    conn_per_addr = int(1, 1000000, 1000),
  },
}

-- a table's keys as strings, sorted: every listing (errors, the conffile, the peers) in one order
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table_sort(keys)
  return keys
end
M.sorted_keys = sorted_keys

local function describe(v)
  if type(v) == "string" then return string_format("%q", v) end
  return tostring(v)
end

-- The keys of a section (or of the config), sorted; or nil and the first one
-- that is not a name. Never through tostring: a table whose __tostring says
-- "clock" is not the key clock.
local function name_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      local t_k = type(k)
      return nil, (t_k == "number" or t_k == "boolean") and describe(k) .. " (a " .. t_k .. ", not a name)"
        or "of type " .. t_k .. " (not a name)"
    end
    keys[#keys + 1] = k
  end
  table_sort(keys)
  return keys
end

-- Checks one value against its spec; returns the value or nil, message.
local function check_value(name, spec, v)
  if v == nil then
    return nil, name .. " is required"
  end
  local kind = spec.kind
  if kind == "integer" then
    if math_type(v) ~= "integer" then
      return nil, string_format("%s must be an integer, got %s", name, describe(v))
    end
    if (spec.lo and v < spec.lo) or (spec.hi and v > spec.hi) then
      return nil, string_format("%s must be an integer in %s..%s, got %s", name,
        tostring(spec.lo or "-inf"), tostring(spec.hi or "inf"), describe(v))
    end
  elseif kind == "boolean" then
    if type(v) ~= "boolean" then
      return nil, string_format("%s must be true or false, got %s", name, describe(v))
    end
  elseif kind == "string" then
    if type(v) ~= "string" or v == "" then
      return nil, string_format("%s must be a non-empty string, got %s", name, describe(v))
    end
    if (spec.pattern and not v:find(spec.pattern)) or (spec.valid and not spec.valid(v)) then
      return nil, string_format("%s must be %s, got %s", name, spec.what or "well-formed", describe(v))
    end
  elseif kind == "enum" then
    local ok = false
    for _, allowed in ipairs(spec.values) do
      if v == allowed then ok = true end
    end
    if not ok then
      return nil, string_format("%s must be one of %s, got %s", name,
        table_concat(spec.values, ", "), describe(v))
    end
  elseif kind == "function" then
    if type(v) ~= "function" then
      return nil, string_format("%s must be a function, got %s", name, describe(v))
    end
  elseif kind == "peers" then
    if type(v) ~= "table" then
      return nil, string_format("%s must be a table of name = \"a.b.c.d:port\", got %s", name, describe(v))
    end
    for peer in pairs(v) do
      if type(peer) ~= "string" then
        return nil, string_format("%s must map names to addresses (name = \"a.b.c.d:port\"), got the key %s",
          name, describe(peer))
      end
    end
    local out, seen = {}, {}
    for _, peer in ipairs(sorted_keys(v)) do
      local where = v[peer]
      if not peer:find("^[%a][%w%._%-]*$") or #peer > 32 then
        return nil, string_format("%s: a peer's name must start with a letter and hold letters, digits, "
          .. "'.', '_' or '-' (at most 32), got %s", name, describe(peer))
      end
      if type(where) ~= "string" or not M.split_peer(where) then
        return nil, string_format("%s.%s must be \"a.b.c.d:port\", got %s", name, peer, describe(where))
      end
      if seen[where] then
        return nil, string_format("%s.%s: %s is also %s.%s", name, peer, where, name, seen[where])
      end
      seen[where] = peer
      out[peer] = where
    end
    return out
  end
  return v
end

-- Builds a complete config from a partial one: defaults filled in, every key
-- checked. Returns the config, or nil and a message naming the key.
function M.build(input)
  if input == nil then input = {} end
  if type(input) ~= "table" then
    return nil, "config must be a table, got " .. type(input)
  end
  local sections, bad_section = name_keys(input)
  if not sections then
    return nil, "unknown config section " .. bad_section
  end
  for _, section in ipairs(sections) do
    if not M.schema[section] then
      return nil, "unknown config section '" .. section .. "'"
    end
    if type(input[section]) ~= "table" then
      return nil, string_format("config section %s must be a table, got %s", section, type(input[section]))
    end
    local keys, bad_key = name_keys(input[section])
    if not keys then
      return nil, "unknown config key in " .. section .. ": " .. bad_key
    end
    for _, key in ipairs(keys) do
      if not M.schema[section][key] then
        return nil, "unknown config key " .. section .. "." .. key
      end
    end
  end
  local out = {}
  for section, specs in pairs(M.schema) do
    out[section] = {}
    local given = input[section] or {}
    for key, spec in pairs(specs) do
      local v = given[key]
      if v == nil then v = spec.default end
      if v ~= nil or not spec.optional then
        local ok, err = check_value(section .. "." .. key, spec, v)
        if ok == nil then return nil, err end
        out[section][key] = ok
      end
    end
  end
  local l = out.layout
  if l.timestamp_bits + l.worker_bits + l.sequence_bits ~= 63 then
    return nil, string_format("layout.sequence_bits: timestamp_bits + worker_bits + sequence_bits "
      .. "must be 63, got %d + %d + %d", l.timestamp_bits, l.worker_bits, l.sequence_bits)
  end
  if out.lease.margin_ms * 2 > out.lease.session_timeout_ms then
    return nil, string_format("lease.margin_ms must be at most half of lease.session_timeout_ms (%d), got %d",
      out.lease.session_timeout_ms, out.lease.margin_ms)
  end
  return out
end

-- Loads a config file (a Lua chunk returning a table) in an empty
-- environment, then builds it.
function M.load(path)
  local env = {}
  local chunk, err = loadfile(path, "t", env)
  if not chunk then
    return nil, "cannot read config " .. tostring(path) .. ": " .. tostring(err)
  end
  local ok, result = pcall(chunk)
  if not ok then
    return nil, "config " .. path .. " failed: " .. tostring(result)
  end
  local cfg, berr = M.build(result)
  if not cfg then
    return nil, "config " .. path .. ": " .. berr
  end
  return cfg
end

-- Parses and checks a runtime change "section.key" = text (from the CLI).
-- Returns section, key, value, or nil and a message.
function M.parse_runtime(name, text)
  local section, key = tostring(name):match("^(%a+)%.([%w_]+)$")
  local spec = section and M.schema[section] and M.schema[section][key]
  if not spec then
    return nil, "unknown key " .. tostring(name)
  end
  if not spec.runtime then
    return nil, name .. " cannot be changed at runtime (restart with a new config)"
  end
  local v
  if spec.kind == "integer" then
    if not tostring(text):match("^%-?%d+$") then
      return nil, string_format("%s must be an integer, got %s", name, describe(text))
    end
    v = math.tointeger(tonumber(text))
    if v == nil then
      -- digits beyond a 64-bit integer: out of range, not missing
      return nil, string_format("%s must be an integer in %s..%s, got %s", name,
        tostring(spec.lo or "-inf"), tostring(spec.hi or "inf"), describe(text))
    end
  elseif spec.kind == "boolean" then
    if text == "true" or text == "on" then v = true
    elseif text == "false" or text == "off" then v = false
    else return nil, string_format("%s must be true or false, got %s", name, describe(text)) end
  else
    v = text
  end
  local ok, err = check_value(name, spec, v)
  if ok == nil then return nil, err end
  return section, key, ok
end

return M
