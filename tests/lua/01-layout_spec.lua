-- Module surface, layouts, compose/decode, the process generator.
local helpers = require "spec_helpers"
local core = helpers.core

describe("snowflake.core module", function()
	it("has a version and the code table", function()
		assert.are.equal("0.1.0", core.VERSION)
		assert.are.equal(-8, core.codes.no_lease)
		assert.are.equal(-9, core.codes.fenced)
		assert.are.equal(-11, core.codes.clock_regressed)
		assert.is_nil(core.codes.ok)
		local n = 0
		for name, code in pairs(core.codes) do
			n = n + 1
			assert.are.equal("integer", math.type(code))
			assert.is_true(code < 0)
			assert.are.equal(name, core.code_name(code))
			assert.is_truthy(name:match("^[a-z][a-z_]*$"), name)
		end
		assert.are.equal(30, n)
		assert.are.equal(-30, core.codes.registry_access)
	end)

	it("names codes, and anything else unknown_error", function()
		assert.are.equal("ok", core.code_name(0))
		assert.are.equal("parked", core.code_name(-20))
		assert.are.equal("unknown_error", core.code_name(1))
		assert.are.equal("registry_access", core.code_name(-30))
		assert.are.equal("unknown_error", core.code_name(-31))
		assert.are.equal("unknown_error", core.code_name(math.mininteger))
		helpers.raises(function() core.code_name(-9.5) end, "rc must be an integer, got float -9.5")
	end)
end)

describe("layouts", function()
	it("defaults to 41/10/12 from 2024-01-01", function()
		local gen = helpers.bare_gen()
		assert.are.same(helpers.DEFAULT_LAYOUT, gen:layout())
		assert.are.same(helpers.DEFAULT_LAYOUT, helpers.bare_gen({}):layout())
	end)

	it("takes every key, each optional", function()
		local l = { epoch_ms = 1600000000000, timestamp_bits = 43, worker_bits = 8, sequence_bits = 12 }
		assert.are.same(l, helpers.bare_gen(l):layout())
		local partial = helpers.bare_gen({ worker_bits = 12, sequence_bits = 10 }):layout()
		assert.are.equal(12, partial.worker_bits)
		assert.are.equal(10, partial.sequence_bits)
		assert.are.equal(41, partial.timestamp_bits)
		assert.are.equal(1704067200000, partial.epoch_ms)
	end)

	local function refuse_layout(layout, code, ...)
		local clock = core.manual_clock(helpers.T0_NS, 0)
		helpers.refused(code, ...)(core.new(layout, clock))
	end

	it("refuses widths out of range, naming the field", function()
		refuse_layout({ worker_bits = 17, sequence_bits = 5 }, "layout_worker_bits",
			"layout.worker_bits must be 1..16, got 17")
		refuse_layout({ worker_bits = 0, sequence_bits = 22 }, "layout_worker_bits",
			"layout.worker_bits must be 1..16, got 0")
		refuse_layout({ timestamp_bits = 34, sequence_bits = 19 }, "layout_timestamp_bits",
			"layout.timestamp_bits must be 35..47, got 34")
		refuse_layout({ timestamp_bits = 48, sequence_bits = 5 }, "layout_timestamp_bits",
			"layout.timestamp_bits must be 35..47, got 48")
		refuse_layout({ sequence_bits = 23, worker_bits = 1, timestamp_bits = 39 }, "layout_sequence_bits",
			"layout.sequence_bits must be 1..22, got 23")
	end)

	it("never wraps a huge or negative width into a valid one", function()
		refuse_layout({ worker_bits = -1, timestamp_bits = 47, sequence_bits = 17 }, "layout_worker_bits",
			"got -1")
		refuse_layout({ worker_bits = 4294967306 }, "layout_worker_bits", "got 4294967306")
		refuse_layout({ sequence_bits = 256 + 12 }, "layout_sequence_bits", "got 268")
	end)

	it("refuses widths that do not sum to 63", function()
		refuse_layout({ sequence_bits = 13 }, "layout_widths", "must be 63", "41 + 10 + 13 = 64")
		refuse_layout({ timestamp_bits = 40 }, "layout_widths", "40 + 10 + 12 = 62")
	end)

	it("refuses an epoch in the future or negative", function()
		refuse_layout({ epoch_ms = helpers.T0_MS + 1 }, "layout_epoch",
			"layout.epoch_ms must be 0..now (" .. helpers.T0_MS .. "), got " .. (helpers.T0_MS + 1))
		refuse_layout({ epoch_ms = -1 }, "layout_epoch", "layout.epoch_ms", "got -1")
		-- the check is against the generator's clock: this epoch is valid at T0
		assert.is_not_nil(core.new({ epoch_ms = helpers.T0_MS }, core.manual_clock(helpers.T0_NS, 0)))
		-- and on the real clock, the year 2400 is in the future
		helpers.refused("layout_epoch", "layout.epoch_ms")(core.new({ epoch_ms = 13574563200000 }))
	end)

	it("raises for unknown keys and non-integer values, naming the key", function()
		helpers.raises(function() core.new({ worker_bit = 10 }) end, "unknown key 'layout.worker_bit'")
		helpers.raises(function() core.new({ [1] = 10 }) end, "layout keys must be strings, got number")
		helpers.raises(function() core.new({ worker_bits = 1.5 }) end,
			"layout.worker_bits must be an integer, got float 1.5")
		helpers.raises(function() core.new({ worker_bits = 10.0 }) end,
			"layout.worker_bits must be an integer, got float 10.0")
		helpers.raises(function() core.new({ epoch_ms = "1704067200000" }) end,
			"layout.epoch_ms must be an integer, got string '1704067200000'")
		helpers.raises(function() core.new({ sequence_bits = true }) end,
			"layout.sequence_bits must be an integer, got boolean")
		helpers.raises(function() core.new({ timestamp_bits = {} }) end,
			"layout.timestamp_bits must be an integer, got table")
		helpers.raises(function() core.new("41/10/12") end, "layout must be a table, got string")
	end)
end)

describe("compose and decode", function()
	local function round_trip(layout)
		local gen = helpers.bare_gen(layout)
		local l = gen:layout()
		local last_ms = l.epoch_ms + (1 << l.timestamp_bits) - 1
		local cases = {
			{ l.epoch_ms, 0, 0 },
			{ helpers.T0_MS, 1, 1 },
			{ helpers.T0_MS + 12345, (1 << l.worker_bits) - 1, (1 << l.sequence_bits) - 1 },
			{ last_ms, (1 << l.worker_bits) - 1, (1 << l.sequence_bits) - 1 },
		}
		for _, c in ipairs(cases) do
			local id = assert(gen:compose(c[1], c[2], c[3]))
			assert.are.equal("integer", math.type(id))
			assert.is_true(id >= 0)
			assert.are.same({ timestamp_ms = c[1], worker = c[2], sequence = c[3] }, gen:decode(id))
		end
		assert.are.equal(0, gen:compose(l.epoch_ms, 0, 0))
		-- the largest ID is the last millisecond, last worker, last sequence
		assert.are.equal(math.maxinteger, gen:compose(last_ms, (1 << l.worker_bits) - 1, (1 << l.sequence_bits) - 1))
		assert.are.same({ timestamp_ms = last_ms, worker = (1 << l.worker_bits) - 1,
			sequence = (1 << l.sequence_bits) - 1 }, gen:decode(math.maxinteger))
	end

	it("round-trips the default layout", function()
		round_trip()
	end)

	it("round-trips a non-default layout", function()
		round_trip({ epoch_ms = 1600000000000, timestamp_bits = 45, worker_bits = 5, sequence_bits = 13 })
		round_trip({ epoch_ms = 0, timestamp_bits = 47, worker_bits = 15, sequence_bits = 1 })
	end)

	it("places the bits where the layout says", function()
		local gen = helpers.bare_gen({ epoch_ms = 1600000000000, timestamp_bits = 45, worker_bits = 5, sequence_bits = 13 })
		assert.are.equal((7 << 18) | (3 << 13) | 9, gen:compose(1600000000007, 3, 9))
		local default = helpers.bare_gen()
		assert.are.equal((1 << 22) | (1 << 12) | 1, default:compose(1704067200001, 1, 1))
	end)

	it("decodes what the generator mints", function()
		local gen = helpers.manual_gen(nil, 7)
		local id = assert(gen:next())
		assert.are.same({ timestamp_ms = helpers.T0_MS, worker = 7, sequence = 0 }, gen:decode(id))
		assert.are.same({ timestamp_ms = helpers.T0_MS, worker = 7, sequence = 1 }, gen:decode(gen:next()))
	end)

	it("refuses to decode a negative ID", function()
		local gen = helpers.bare_gen()
		helpers.refused("id_out_of_range", "id -1 is negative")(gen:decode(-1))
		helpers.refused("id_out_of_range", "is negative")(gen:decode(math.mininteger))
	end)

	it("refuses to compose outside the layout, quoting the ranges", function()
		local gen = helpers.bare_gen()
		local last_ms = 1704067200000 + (1 << 41) - 1
		local ranges = "timestamp_ms 1704067200000.." .. last_ms .. ", worker 0..1023, sequence 0..4095"
		helpers.refused("worker_out_of_range", ranges)(gen:compose(helpers.T0_MS, 1024, 0))
		helpers.refused("invalid_argument", ranges)(gen:compose(helpers.T0_MS, 0, 4096))
		helpers.refused("timestamp_exhausted", "(timestamp_ms 1704067199999, worker 0, sequence 0)")(
			gen:compose(1704067199999, 0, 0))
		helpers.refused("timestamp_exhausted", ranges)(gen:compose(last_ms + 1, 0, 0))
	end)
end)

describe("the process generator", function()
	it("is one generator per process, whatever the handle", function()
		local a = assert(core.process_generator(helpers.DEFAULT_LAYOUT))
		local b = assert(core.process_generator())
		assert.are_not.equal(a, b)
		assert.are.same(helpers.DEFAULT_LAYOUT, b:layout())
		assert.is_truthy(tostring(a):find("snowflake.gen process", 1, true))
		-- state set through one handle is seen through the other
		a:set_max_wait_ms(17)
		assert.are.equal(17, b:policy().max_wait_ms)
		b:set_max_wait_ms(20)
		helpers.arm_real(a, 5)
		assert.are.equal(5, (b:grant_info()))
		local id = assert(b:next())
		assert.are.equal(5, a:decode(id).worker)
		assert.is_true(assert(a:next()) > id)
	end)

	it("refuses a different layout", function()
		assert(core.process_generator())
		helpers.refused("layout_mismatch", "epoch_ms=1704067200000 timestamp_bits=41 worker_bits=10 sequence_bits=12",
			"asked for epoch_ms=1704067200000 timestamp_bits=41 worker_bits=12 sequence_bits=10")(
			core.process_generator({ worker_bits = 12, sequence_bits = 10 }))
	end)

	it("survives its handles", function()
		local h = assert(core.process_generator())
		helpers.arm_real(h, 6)
		h = nil -- luacheck: no unused (dropped so the collector may take the handle)
		collectgarbage()
		collectgarbage()
		local again = assert(core.process_generator())
		assert.are.equal(6, (again:grant_info()))
		assert.are.equal("integer", math.type(assert(again:next())))
	end)
end)
