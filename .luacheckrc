-- luacheck options for `make lint` (every Lua file in the tree)
std = "lua53"
max_line_length = 140
codes = true

-- HAProxy's Lua API: the glue it loads and the tests that emulate it
files["lua/snowflake/haproxy.lua"] = { read_globals = { "core" } }
-- busted specs and their helpers
files["tests/lua"] = { std = "+busted" }
-- operator configs are data: a returned table, nothing else
files["tests/bench/http"] = { read_globals = { "core" } }
