-- Experiments only (tests/bench/http/experiments.sh): the fetches of the bench as Lua
-- *converters* (HAProxy 2.6 builds no txn object for a converter call, it does for a fetch).
-- lua.empty returns 1 (the twin of empty.lua's fetch); lua.sf_idc is the product's C fetch
-- gen:fetch_id() on the process generator (loaded beside the product: its lease; the
-- input sample is ignored). Use as %[int(0),lua.empty] or int(0),lua.sf_idc,set-var(...).
local sf = require "snowflake.core"
core.register_converters("empty", function() return 1 end)
core.register_converters("sf_idc", assert(sf.process_generator()):fetch_id())
-- the product registers its C function as the converter lua.sf_id; the variants written
-- for the fetch shape (orig, prod_min, bare, ...) get it as the fetch lua.sf_id here
core.register_fetches("sf_id", assert(sf.process_generator()):fetch_id())
