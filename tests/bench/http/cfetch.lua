-- Experiments only (tests/bench/http/experiments.sh): the product's C fetch, gen:fetch_id(),
-- alone in a per-thread Lua state: no config, no lease (a grant and a local ceiling that
-- never run out), none of the product's other registrations. Registers lua.cid.
local sf = require "snowflake.core"
local gen = assert(sf.process_generator())
gen:grant(1, math.maxinteger)
gen:set_ceiling("local", sf.wall_ns() // 1000000 + 10 * 365 * 86400 * 1000)
core.register_fetches("cid", gen:fetch_id())
