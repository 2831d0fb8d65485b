-- The config loader's fuzz harness (make fuzz, make test-fuzz): generated tables through
-- config.build, generated files through config.load, generated CLI strings through
-- config.parse_runtime (lua/snowflake/config.lua). Each result must be
--   * a config the schema allows: every given key known, every value of its kind and range,
--     the given value or the default, the widths summing to 63 (an oracle here checks it);
--   * or nil and a clear message: a non-empty string naming a key or a section (load: the file);
-- never a raised error. A failure is a "crash": its case is printed and written under
-- --artefacts. Regression cases live in --corpus and run first (Lua files named without
-- .lua, so that make lint leaves the broken ones alone): load-* through config.load,
-- build-* run with dofile (a full environment: metatables allowed) and their result
-- through config.build, runtime-* return { name, text } for config.parse_runtime.
--
-- Usage: lua5.X tests/fuzz/config_fuzz.lua --seed N [--seconds S] [--iterations N]
--          [--corpus DIR] [--artefacts DIR] [--replay I]
-- Every iteration draws from its own generator state (seed, iteration), so --replay I
-- re-runs iteration I of a seed alone. Last line: "execs <n> crashes <n>".
local config = require "snowflake.config"

local schema = config.schema
local string_format, string_char, string_rep = string.format, string.char, string.rep
local table_concat, table_sort = table.concat, table.sort
local math_type, maxinteger, mininteger = math.type, math.maxinteger, math.mininteger

-- ---- arguments ---------------------------------------------------------------

local opts = { seed = os.time(), seconds = 60, iterations = 1000000000 }
do
  local i = 1
  while i <= #arg do
    local name, value = arg[i]:match("^%-%-(%w+)$"), arg[i + 1]
    if not name or value == nil then
      io.stderr:write("usage: config_fuzz.lua --seed N [--seconds S] [--iterations N] [--corpus DIR] "
        .. "[--artefacts DIR] [--replay I]\n")
      os.exit(2)
    end
    opts[name] = math.tointeger(tonumber(value)) or value
    i = i + 2
  end
end

-- ---- a generator that gives the same numbers under Lua 5.3 and 5.4 (xorshift64) ----

local state = 1
local function reseed(iteration)
  state = (opts.seed * 1000003 + iteration) ~ 0x2545F4914F6CDD1D
  if state == 0 then state = 1 end
end
local function next_raw()
  state = state ~ (state << 13)
  state = state ~ (state >> 7)
  state = state ~ (state << 17)
  return state
end
local function rand(n) return (next_raw() >> 1) % n + 1 end -- 1..n
local function pick(list) return list[rand(#list)] end
local function chance(percent) return rand(100) <= percent end

-- ---- values --------------------------------------------------------------------

local section_names, key_names, runtime_names = {}, {}, {}
for section, specs in pairs(schema) do
  section_names[#section_names + 1] = section
  for key, spec in pairs(specs) do
    key_names[#key_names + 1] = key
    runtime_names[#runtime_names + 1] = section .. "." .. key
    if spec.runtime then runtime_names[#runtime_names + 1] = section .. "." .. key end
  end
end
table_sort(section_names); table_sort(key_names); table_sort(runtime_names)

local nan = 0 / 0
local floats = { nan, -nan, 1 / 0, -1 / 0, -0.0, 0.0, 0.5, 20.0, 1.5, 2.0 ^ 53, 2.0 ^ 63, -2.0 ^ 63,
  1e308, 5e-324, math.pi, 4096.0 }
local shaped_strings = { "", " ", "\0", "abc", "20", "-5", "007", "1e3", "0x10", "1.0", "+1", "nan", "inf",
  "-0", "%", "%d+", "[", "(", "%z", "/abs/path", "relative", "/trailing/", "/", "//", "/a b",
  "127.0.0.1:2181", "1.2.3.4:80", "256.1.1.1:80", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:080",
  "01.2.3.4:80", "::1", "[::1]:2181", "a,b", "host:2181,host2:2181", "true", "false", "on", "off",
  "refuse", "log", "ignore", "auto", "clock_gettime", "é✓", "\r\n", "\255\254", "a\0b",
  "99999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775809" }

local function random_bytes(n)
  local b = {}
  for i = 1, n do b[i] = string_char(rand(256) - 1) end
  return table_concat(b)
end

local function random_string()
  local r = rand(10)
  if r <= 5 then return pick(shaped_strings) end
  if r <= 7 then return random_bytes(rand(40) - 1) end
  if r == 8 then return pick(shaped_strings) .. pick(shaped_strings) end
  if r == 9 then return pick(runtime_names) end
  return string_rep(pick({ "x", "9", "/", "%", "\0" }), chance(5) and rand(200000) or rand(300))
end

local function random_integer()
  local r = rand(6)
  if r == 1 then return pick({ 0, 1, -1, maxinteger, mininteger, maxinteger - 1, mininteger + 1 }) end
  if r == 2 then return rand(100) - 50 end
  if r == 3 then return next_raw() end
  -- near a bound of some key
  local specs = schema[pick(section_names)]
  local keys = {}
  for k, s in pairs(specs) do if s.kind == "integer" then keys[#keys + 1] = k end end
  if #keys == 0 then return rand(1000) end
  table_sort(keys)
  local spec = specs[pick(keys)]
  local bound = (chance(50) and spec.lo or spec.hi) or spec.lo or 0
  return bound + rand(3) - 2
end

local value -- forward: any value, of some depth

local function random_table(depth)
  local t = {}
  local n = rand(6) - 1
  for _ = 1, n do
    local k
    local r = rand(5)
    if r <= 2 then k = random_string() elseif r == 3 then k = random_integer()
    elseif r == 4 then k = pick(key_names) else k = pick({ true, false, 1.5, {}, print }) end
    if k == k and k ~= nil then t[k] = value(depth + 1) end -- never NaN or nil as a key
  end
  if chance(20) then for i = 1, rand(5) do t[i] = value(depth + 1) end end
  return t
end

function value(depth)
  local r = rand(depth > 3 and 9 or 12)
  if r <= 2 then return random_integer() end
  if r == 3 then return pick(floats) end
  if r <= 5 then return random_string() end
  if r == 6 then return chance(50) end
  if r == 7 then return nil end
  if r == 8 then return pick({ function() return "wait" end, function() error("boom") end, print }) end
  if r == 9 then return pick({ io.stdout, coroutine.create(function() end) }) end
  return random_table(depth)
end

-- A value the spec allows (so that some generated configs are accepted).
local valid_strings = {
  ["lease.zk_hosts"] = { "127.0.0.1:2181", "zk1:2181,zk2:2181", "[::1]:2181" },
  ["lease.root"] = { "/snowflake/default", "/a", "/x/y_z-1.2" },
  ["lease.node_name"] = { "node-1", "a.b_c" },
  ["lease.auth_file"] = { "/etc/edge-snowflake/zk.auth" },
  ["state.dir"] = { "/var/lib/edge-snowflake", "/tmp" },
  ["http.node_name"] = { "proxy1" },
}
local function valid_value(name, spec)
  local kind = spec.kind
  if kind == "integer" then
    local lo, hi = spec.lo or 0, spec.hi or 4102444800000
    if chance(30) then return pick({ lo, hi }) end
    return lo + (next_raw() >> 1) % (hi - lo + 1)
  elseif kind == "boolean" then return chance(50)
  elseif kind == "string" then return pick(valid_strings[name] or { spec.default or "/x" })
  elseif kind == "enum" then return pick(spec.values)
  elseif kind == "function" then return function() return "refuse" end
  elseif kind == "peers" then
    return pick({ {}, { b = "10.0.0.2:8080" }, { a = "10.0.0.1:80", c = "10.0.0.3:80" } })
  end
end

-- A config input: mostly the schema's own sections and keys, with wrong values among right ones.
local function random_config_input()
  if chance(3) then return value(3) end
  local input = {}
  for _, section in ipairs(section_names) do
    if chance(60) then
      if chance(4) then
        input[section] = value(3)
      else
        local t, keys = {}, {}
        for key in pairs(schema[section]) do keys[#keys + 1] = key end
        table_sort(keys)
        for _, key in ipairs(keys) do
          if chance(40) then
            if chance(70) then t[key] = valid_value(section .. "." .. key, schema[section][key])
            else t[key] = value(1) end
          end
        end
        if chance(8) then t[pick({ random_string(), rand(9), pick(key_names) .. "_" })] = value(2) end
        input[section] = t
      end
    end
  end
  if input.layout and type(input.layout) == "table" and chance(50) then
    -- consistent widths, so that the layout passes the sum
    local ts = 35 + rand(13) - 1
    local w = rand(16)
    input.layout.timestamp_bits, input.layout.worker_bits, input.layout.sequence_bits = ts, w, 63 - ts - w
  end
  if chance(5) then input[pick({ random_string(), "colck", 1, true })] = value(2) end
  if chance(3) then
    -- a key that prints as a known one: tostring of a table with __tostring
    local fake = setmetatable({}, { __tostring = function() return pick(section_names) end })
    input[fake] = {}
  end
  if chance(3) and type(input.clock) == "table" then
    local fake = setmetatable({}, { __tostring = function() return "max_wait_ms" end })
    input.clock[fake] = -1
  end
  return input
end

-- ---- the oracle --------------------------------------------------------------------

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b or (a ~= a and b ~= b)
  end
  for k, v in next, a do if b[k] ~= v then return false end end
  for k, v in next, b do if a[k] ~= v then return false end end
  return true
end

-- What a built config must satisfy, given its input; nil, or what is wrong.
local function accepted_wrongly(input, cfg)
  if type(cfg) ~= "table" then return "the result is a " .. type(cfg) end
  if input == nil then input = {} end
  if type(input) ~= "table" then return "a " .. type(input) .. " was accepted as a config" end
  for section, t in next, input do
    if type(section) ~= "string" or not schema[section] then
      return "unknown section " .. tostring(section) .. " (a " .. type(section) .. ") was accepted"
    end
    if type(t) ~= "table" then return "section " .. section .. " is a " .. type(t) end
    for key in next, t do
      if type(key) ~= "string" or not schema[section][key] then
        return "unknown key " .. section .. "." .. tostring(key) .. " (a " .. type(key) .. ") was accepted"
      end
    end
  end
  for section, specs in pairs(schema) do
    local out = cfg[section]
    if type(out) ~= "table" then return "no section " .. section end
    for key, spec in pairs(specs) do
      local name, v = section .. "." .. key, out[key]
      local given = input[section] and input[section][key]
      if given == nil then given = spec.default end
      if not same(v, given) then return name .. " is " .. tostring(v) .. ", not " .. tostring(given) end
      if v == nil then
        if not spec.optional then return name .. " is missing" end
      elseif spec.kind == "integer" then
        if math_type(v) ~= "integer" or (spec.lo and v < spec.lo) or (spec.hi and v > spec.hi) then
          return name .. " = " .. tostring(v) .. " is outside its range"
        end
      elseif spec.kind == "boolean" then
        if type(v) ~= "boolean" then return name .. " is not a boolean" end
      elseif spec.kind == "string" then
        if type(v) ~= "string" or v == "" or (spec.pattern and not v:find(spec.pattern)) then
          return name .. " = " .. string_format("%q", tostring(v)) .. " is not well-formed"
        end
      elseif spec.kind == "enum" then
        local ok = false
        for _, allowed in ipairs(spec.values) do ok = ok or v == allowed end
        if not ok then return name .. " is not one of its values" end
      elseif spec.kind == "function" then
        if type(v) ~= "function" then return name .. " is not a function" end
      elseif spec.kind == "peers" then
        local seen = {}
        for peer, where in next, v do
          if type(peer) ~= "string" or not peer:find("^%a[%w%._%-]*$") or #peer > 32 or
             type(where) ~= "string" or not config.split_peer(where) or seen[where] then
            return name .. "." .. tostring(peer) .. " is not a well-formed peer"
          end
          seen[where] = true
        end
      end
    end
  end
  local l = cfg.layout
  if l.timestamp_bits + l.worker_bits + l.sequence_bits ~= 63 then return "the widths do not sum to 63" end
  if cfg.lease.margin_ms * 2 > cfg.lease.session_timeout_ms then return "lease.margin_ms is above half" end
  return nil
end

-- A refusal's message: nil when it is clear, else what is wrong with it.
local function unclear(err, must_name)
  if type(err) ~= "string" or err == "" then return "the message is a " .. type(err) .. ", not a sentence" end
  -- "is required" is for a key nobody gave: a given value must be quoted, never reported missing
  if err:find(" is required", 1, true) then return "a given value reported missing: " .. err end
  if must_name and not err:find(must_name, 1, true) then return "the message does not name " .. must_name end
  if err:find("unknown config", 1, true) or err:find("config must be a table", 1, true) or
     err:find("config section ", 1, true) or err:find("cannot read config", 1, true) or
     err:find("failed: ", 1, true) or err:find("unknown key ", 1, true) then
    return nil
  end
  for _, name in ipairs(runtime_names) do if err:find(name, 1, true) then return nil end end
  return "the message names no key: " .. err
end

-- ---- files -----------------------------------------------------------------------

local serialise
local function literal(v, depth)
  local t = type(v)
  if t == "number" then
    if math_type(v) == "integer" then
      return v == mininteger and "0x8000000000000000" or string_format("%d", v)
    end
    if v ~= v then return "(0/0)" end
    if v == 1 / 0 then return "(1/0)" end
    if v == -1 / 0 then return "(-1/0)" end
    if v == 0 and 1 / v < 0 then return "(-0.0)" end
    return string_format("%.17g", v):find("[%.en]") and string_format("%.17g", v) or string_format("%.1f", v)
  elseif t == "string" then
    return string_format("%q", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    return serialise(v, depth + 1)
  end
  return "function(r) return 'wait' end" -- functions and userdata: a function the file defines
end

function serialise(t, depth)
  if depth > 8 then return "{}" end
  local parts = {}
  for k, v in next, t do
    if type(k) ~= "function" and type(k) ~= "userdata" and type(k) ~= "thread" and type(k) ~= "table" then
      parts[#parts + 1] = "[" .. literal(k, depth) .. "] = " .. literal(v, depth)
    end
  end
  table_sort(parts)
  return "{ " .. table_concat(parts, ", ") .. " }"
end

local function garbled(source)
  local r = rand(4)
  local at = rand(#source + 1) - 1
  if r == 1 then return source:sub(1, at) end
  if r == 2 then return source:sub(1, at) .. random_bytes(rand(8)) .. source:sub(at + 1) end
  if r == 3 then return source:sub(1, at) .. pick({ "end", "(", "}", "=", "--[[", "\"", "..", "local" }) .. source:sub(at + 1) end
  return source:sub(1, at) .. source:sub(at + rand(10) + 1)
end

local function random_file_source()
  local r = rand(11)
  if r == 10 and not chance(3) then r = 11 end -- huge files are slow: a few of them go a long way
  local body = "return " .. literal(random_config_input(), 0)
  if r <= 4 then return body end
  if r <= 6 then return garbled(body) end
  if r == 7 then
    -- a stack overflow costs a few hundred ms: one case in a hundred of these
    if chance(1) then return "local function f(n) return f(n + 1) + 1 end return f(1)" end
    return pick({ 'error("boom")', "error(nil)", "error({})", "error()", "return nil + 1", "local t; return t.x",
      "return os.exit(1)", "return require('os')", "return { clock = { max_wait_ms = math.huge } }", "return setmetatable({}, {})",
      "return ('x'):rep(-1)", "local s = ('x'):rep(100) return { state = { dir = '/' .. s } }" })
  end
  if r == 8 then
    return pick({ "return 5", "return 'config'", "return", "return nil", "return true", "return function() end",
      "return 1, 2", "return {}, 'extra'", "return (0/0)", "", "#!/usr/bin/lua\nreturn {}", "\239\187\191return {}",
      "return { [1] = {} }", "return { clock = 'fast' }" })
  end
  if r == 9 then return string.dump(function() return {} end) end
  if r == 10 then
    -- a huge file: 1..2 MB of unknown keys, comments, or one long string
    local n = rand(2) * 1024 * 1024
    local kind = rand(3)
    if kind == 1 then return "return { layout = {} }\n--" .. string_rep("x", n) end
    if kind == 2 then return "return { state = { dir = '/" .. string_rep("a", n) .. "' } }" end
    local entries = {}
    for i = 1, n // 16 do entries[i] = "k" .. i .. " = " .. i end
    return "return { http = { " .. table_concat(entries, ", ") .. " } }"
  end
  return random_bytes(rand(200))
end

-- ---- the cases -----------------------------------------------------------------------

local execs, crashes = 0, 0
local scratch = os.tmpname()

local function crash(what, detail, case_text, iteration)
  crashes = crashes + 1
  io.write(string_format("crash %s (iteration %s, seed %d): %s\n", what, tostring(iteration), opts.seed,
    tostring(detail):sub(1, 2000)))
  if opts.artefacts then
    local path = string_format("%s/%s-%s-%s.lua", opts.artefacts, what, tostring(opts.seed), tostring(iteration))
    local f = io.open(path, "wb")
    if f then
      f:write(case_text)
      f:close()
      io.write("  case written to " .. path .. "\n")
    end
  end
end

local function traceback(e) return debug.traceback(tostring(e), 2) end

local function run_build(input, case_text, iteration)
  execs = execs + 1
  local ok, cfg, err = xpcall(config.build, traceback, input)
  if not ok then return crash("build", "raised: " .. tostring(cfg), case_text(), iteration) end
  if cfg ~= nil then
    local wrong = accepted_wrongly(input, cfg)
    if wrong then crash("build", "accepted: " .. wrong, case_text(), iteration) end
  else
    local why = unclear(err)
    if why then crash("build", why, case_text(), iteration) end
  end
end

local function run_load(path, source, iteration)
  execs = execs + 1
  local ok, cfg, err = xpcall(config.load, traceback, path)
  if not ok then return crash("load", "raised: " .. tostring(cfg), source or path, iteration) end
  if cfg == nil then
    local why = unclear(err, path)
    if why then crash("load", why, source or path, iteration) end
  elseif type(cfg) ~= "table" then
    crash("load", "the result is a " .. type(cfg), source or path, iteration)
  end
end

local function run_runtime(name, text, iteration)
  execs = execs + 1
  local ok, section, key, v = xpcall(config.parse_runtime, traceback, name, text)
  local case = string_format("return config.parse_runtime(%s, %s)", literal(name, 0), literal(text, 0))
  if not ok then return crash("runtime", "raised: " .. tostring(section), case, iteration) end
  if section == nil then
    local named = type(name) == "string" and type(key) == "string" and not key:find("unknown key", 1, true)
    local why = unclear(key, named and name or nil)
    if why then crash("runtime", why, case, iteration) end
    return
  end
  local spec = schema[section] and schema[section][key]
  if not spec or not spec.runtime or section .. "." .. key ~= name then
    return crash("runtime", "accepted a key that is not runtime-tunable", case, iteration)
  end
  local good
  if spec.kind == "integer" then
    good = math_type(v) == "integer" and v >= spec.lo and v <= spec.hi and math.tointeger(tonumber(text)) == v
  elseif spec.kind == "boolean" then
    good = v == (text == "true" or text == "on") and (text == "true" or text == "on" or text == "false" or text == "off")
  else
    good = v == text
  end
  if not good then crash("runtime", "accepted " .. tostring(v) .. " from " .. tostring(text), case, iteration) end
end

local function one_iteration(i)
  reseed(i)
  local r = rand(10)
  if r <= 5 then
    local input = random_config_input()
    run_build(input, function() return "return " .. literal(input, 0) end, i)
  elseif r <= 8 then
    local source = random_file_source()
    local f = assert(io.open(scratch, "wb"))
    f:write(source)
    f:close()
    run_load(scratch, source, i)
  elseif r == 9 then
    run_load(pick({ "/nonexistent/edge-snowflake.lua", "/", "/tmp", "", "\0", random_string(), scratch .. "/x" }), nil, i)
  else
    local name = chance(70) and pick(runtime_names) or random_string()
    local text = chance(50) and tostring(random_integer()) or random_string()
    run_runtime(name, text, i)
  end
end

-- the regression corpus first
if opts.corpus then
  local listing = io.popen("ls " .. string_format("%q", opts.corpus) .. " 2>/dev/null")
  for file in listing:lines() do
    local path = opts.corpus .. "/" .. file
    if file:find("^load%-") then
      run_load(path, nil, file)
    elseif file:find("^build%-") then
      local f = assert(io.open(path, "rb"))
      local source = f:read("a")
      f:close()
      run_build(dofile(path), function() return source end, file)
    elseif file:find("^runtime%-") then
      local case = dofile(path)
      run_runtime(case[1], case[2], file)
    end
  end
  listing:close()
end

if opts.replay then
  one_iteration(opts.replay)
else
  local deadline = os.time() + opts.seconds
  for i = 1, opts.iterations do
    one_iteration(i)
    if os.time() >= deadline then break end
  end
end
os.remove(scratch)
io.write(string_format("execs %d crashes %d\n", execs, crashes))
os.exit(crashes == 0 and 0 or 1)
