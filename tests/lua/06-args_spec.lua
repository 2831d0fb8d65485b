-- Every function raises a clear error for a bad argument: wrong type, a
-- float where an integer is needed, a value out of range, a wrong object.
local helpers = require "spec_helpers"
local core = helpers.core
local T0_MS = helpers.T0_MS

describe("bad arguments", function()
	local gen, clock, keeper, dir

	before_each(function()
		gen, clock = helpers.manual_gen()
		dir = helpers.tmpdir()
		keeper = assert(gen:keeper({ dir = dir, worker = 1, ahead_ms = 1000, refresh_ms = 200 }))
	end)

	after_each(helpers.cleanup)

	-- { description, call, substrings the message must contain }
	local cases = {
		{ "new: layout not a table", function() core.new(12) end, "bad argument #1 to", "layout must be a table, got integer 12" },
		{ "new: clock of the wrong kind", function() core.new(nil, gen) end, "bad argument #2 to", "snowflake.clock expected" },
		{ "new: clock not a userdata", function() core.new({}, 5) end, "snowflake.clock expected" },
		{ "process_generator: float width", function() core.process_generator({ worker_bits = 10.5 }) end,
			"layout.worker_bits must be an integer, got float 10.5" },
		{ "process_generator: unknown key", function() core.process_generator({ epoch = 0 }) end, "unknown key 'layout.epoch'" },
		{ "manual_clock: string", function() core.manual_clock("0", 0) end, "wall_ns must be an integer, got string '0'" },
		{ "hwm_store: no mark", function() core.hwm_store(dir, 1) end, "mark_ms must be an integer, got no value" },
		{ "code_name: string", function() core.code_name("fenced") end, "rc must be an integer, got string 'fenced'" },
		{ "next: not a generator", function() gen.next(clock) end, "snowflake.gen expected" },
		{ "next: nothing", function() gen.next() end, "snowflake.gen expected" },
		{ "next_ids: float", function() gen:next_ids(2.5) end, "bad argument #1 to 'next_ids'", "n must be an integer, got float 2.5" },
		{ "reserve: too many", function() gen:reserve(1 << 23) end, "n must be 1..4194304, got 8388608" },
		{ "decode: float ID", function() gen:decode(2.0 ^ 60) end, "id must be an integer, got float" },
		{ "decode: string ID", function() gen:decode("123") end, "id must be an integer, got string '123'" },
		{ "decode: nil", function() gen:decode(nil) end, "id must be an integer, got nil" },
		{ "compose: float timestamp", function() gen:compose(T0_MS + 0.5, 1, 1) end, "timestamp_ms must be an integer, got float" },
		{ "compose: negative worker", function() gen:compose(T0_MS, -1, 0) end, "worker must be 0..65535, got -1" },
		{ "compose: huge sequence", function() gen:compose(T0_MS, 0, 1 << 22) end, "sequence must be 0..4194303, got 4194304" },
		{ "grant: string worker", function() gen:grant("1", 0) end, "worker must be an integer, got string '1'" },
		{ "grant: worker beyond any layout", function() gen:grant(65536, 0) end, "worker must be 0..65535, got 65536" },
		{ "grant: float deadline", function() gen:grant(1, 1e18) end, "fence_deadline_ns must be an integer, got float" },
		{ "revoke: unknown code", function() gen:revoke("expired") end, "unknown code 'expired'" },
		{ "revoke: nothing", function() gen:revoke() end, "code_name must be a string, got no value" },
		{ "set_max_wait_ms: negative", function() gen:set_max_wait_ms(-5) end, "max_wait_ms must be >= 0, got -5" },
		{ "set_borrow: number", function() gen:set_borrow(1) end, "borrow must be a boolean, got integer 1" },
		{ "set_ceiling: unknown which", function() gen:set_ceiling("global", 1) end, "invalid option 'global'" },
		{ "set_ceiling: float", function() gen:set_ceiling("local", 1.5) end, "unix_ms must be an integer, got float 1.5" },
		{ "ceiling: no which", function() gen:ceiling() end, "bad argument #1 to 'ceiling'" },
		{ "floor_raise: negative", function() gen:floor_raise(-1) end, "unix_ms must be >= 0, got -1" },
		{ "start_check: bound float", function() gen:start_check(nil, nil, 0.5) end, "bound_ms must be an integer, got float 0.5" },
		{ "keeper: not a table", function() gen:keeper() end, "keeper config must be a table" },
		{ "keeper: non-string key", function() gen:keeper({ dir, 1 }) end, "keeper keys must be strings, got number" },
		{ "keeper:step on a generator", function() keeper.step(gen) end, "snowflake.keeper expected" },
		{ "keeper:mark on nothing", function() keeper.mark() end, "snowflake.keeper expected" },
		{ "clock:advance float", function() clock:advance(0.5) end, "ns must be an integer, got float 0.5" },
		{ "clock:wall on a keeper", function() clock.wall(keeper) end, "snowflake.clock expected" },
		-- the serving helpers take integers the same way: no 10.0, no "10"
		{ "next_text: integral float", function() gen:next_text(10.0, false) end, "count must be an integer, got float 10.0" },
		{ "next_text: numeric string", function() gen:next_text("10", false) end, "count must be an integer, got string '10'" },
		{ "next_text: float spin", function() gen:next_text(1, false, 1e6) end, "spin_limit_ns must be an integer, got float" },
		{ "next_text: float offset", function() gen:next_text(1, false, 0, 1.0) end, "offset must be an integer, got float 1.0" },
		{ "count: float", function() core.count("ids", 1.0) end, "n must be an integer, got float 1.0" },
		{ "count: negative", function() core.count("ids", -1) end, "n must be >= 0, got -1" },
		{ "count: unknown", function() core.count("idz") end, "unknown counter 'idz'" },
		{ "count: number as name", function() core.count(5) end, "name must be a string, got integer 5" },
		{ "setting_init: numeric string", function() core.setting_init("spec.x", "10") end,
			"value must be an integer, got string '10'" },
		{ "setting_set: float", function() core.setting_set("spec.x", 10.0) end, "value must be an integer, got float 10.0" },
		{ "setting_get: no name", function() core.setting_get() end, "name must be a string, got no value" },
		{ "sleep_ms: float", function() core.sleep_ms(1.0) end, "ms must be an integer, got float 1.0" },
		{ "sleep_ms: too long", function() core.sleep_ms(3600001) end, "ms must be 0..3600000, got 3600001" },
		{ "mkdir_p: float mode", function() core.mkdir_p(dir .. "/m", 488.0) end, "mode must be an integer, got float" },
		{ "logs: zero", function() core.logs(0) end, "max must be >= 1, got 0" },
		{ "process_once: number", function() core.process_once(1) end, "name must be a string, got integer 1" },
		{ "lease_start: float timeout", function() core.lease_start(gen, { session_timeout_ms = 2000.0 }) end,
			"lease.session_timeout_ms must be an integer, got float 2000.0" },
		{ "lease_start: out of range", function() core.lease_start(gen, { margin_ms = -1 }) end,
			"lease.margin_ms must be 0..3600000, got -1" },
		{ "lease_start: unknown key", function() core.lease_start(gen, { zk_host = "x" }) end, "unknown key 'lease.zk_host'" },
		{ "lease_start: number host", function() core.lease_start(gen, { zk_hosts = 1 }) end,
			"lease.zk_hosts must be a string, got integer 1" },
	}

	for _, case in ipairs(cases) do
		it(case[1], function()
			helpers.raises(case[2], table.unpack(case, 3))
		end)
	end

	it("leave the generator usable", function()
		for _, case in ipairs(cases) do
			pcall(case[2])
		end
		-- no state was changed by a refused call: same grant, policy, ceiling
		assert.are.equal(1, (gen:grant_info()))
		assert.are.same({ max_wait_ms = 20, borrow = false }, gen:policy())
		assert.are.equal(T0_MS + helpers.HOUR_MS, gen:ceiling("local"))
		assert.are.same({ timestamp_ms = T0_MS, worker = 1, sequence = 0 }, gen:decode(assert(gen:next())))
	end)
end)

describe("runtime refusals are values, not errors", function()
	it("return nil, code, detail for every refusal kind here", function()
		local gen, clock = helpers.bare_gen()
		local results = {
			{ "no_lease", { gen:next() } },
			{ "layout_worker_bits", { core.new({ worker_bits = 20 }) } },
			{ "id_out_of_range", { gen:decode(-5) } },
			{ "worker_out_of_range", { gen:grant(1024, 0) } },
		}
		assert(gen:grant(1, helpers.MONO0_NS + helpers.S))
		results[#results + 1] = { "hwm_stalled", { gen:next() } }
		gen:set_ceiling("local", T0_MS + 100)
		assert(gen:next())
		clock:set_wall(helpers.T0_NS - 30 * helpers.MS)
		results[#results + 1] = { "clock_regressed", { gen:next() } }
		for _, r in ipairs(results) do
			local v = r[2]
			assert.is_nil(v[1])
			assert.are.equal(r[1], v[2])
			assert.is_string(v[3])
			assert.is_true(#v[3] > 10)
			assert.is_falsy(v[3]:find("bad argument", 1, true))
		end
	end)
end)
