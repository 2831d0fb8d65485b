-- The refusal contract: nil, code, detail; a mint's refusal adds a table of
-- named extras (always wait_ns) holding the figures its detail quotes, as
-- the core reported them when it refused.
local helpers = require "spec_helpers"
local core = helpers.core
local MS, T0_MS, T0_NS, MONO0_NS = helpers.MS, helpers.T0_MS, helpers.T0_NS, helpers.MONO0_NS

describe("a mint's refusal", function()
	it("carries the clock figures of a regression", function()
		local gen, clock = helpers.manual_gen()
		assert(gen:next())
		clock:set_wall(T0_NS - 5 * MS)
		local x = helpers.refused_mint("clock_wait", "clock regressed by 5 ms, within clock.max_wait_ms = 20")(gen:next())
		assert.are.same({ wait_ns = 6 * MS, regression_ms = 5, max_wait_ms = 20, last_ms = T0_MS,
			clock_ms = T0_MS - 5 }, x)
		clock:set_wall(T0_NS - 25 * MS)
		x = helpers.refused_mint("clock_regressed", "clock regressed by 25 ms, more than clock.max_wait_ms = 20")(
			gen:next_ids(2))
		assert.are.same({ wait_ns = 26 * MS, regression_ms = 25, max_wait_ms = 20, last_ms = T0_MS,
			clock_ms = T0_MS - 25 }, x)
	end)

	it("names the used-up millisecond and the wait", function()
		local gen = helpers.manual_gen()
		assert(gen:reserve(4096))
		local x = helpers.refused_mint("sequence_exhausted", "millisecond " .. T0_MS)(gen:reserve(1))
		assert.are.same({ wait_ns = MS, last_ms = T0_MS }, x)
	end)

	it("gives the fence's figures, or says the grant was withdrawn", function()
		local gen, clock = helpers.bare_gen()
		gen:set_ceiling("local", T0_MS + 100)
		assert(gen:grant(3, MONO0_NS + 10 * MS))
		clock:set_mono(MONO0_NS + 12 * MS)
		local x = helpers.refused_mint("fenced", "the monotonic clock (" .. (MONO0_NS + 12 * MS)
			.. " ns) reached the fencing deadline of worker 3 (" .. (MONO0_NS + 10 * MS) .. " ns)")(gen:next())
		assert.are.same({ wait_ns = 0, worker = 3, deadline_ns = MONO0_NS + 10 * MS, mono_ns = MONO0_NS + 12 * MS }, x)
		gen:revoke("fenced")
		x = helpers.refused_mint("fenced", "withdrawn as fenced")(gen:next())
		assert.are.same({ wait_ns = 0 }, x)
	end)

	it("gives the ceilings a stall ran into", function()
		local gen, clock = helpers.manual_gen()
		gen:set_ceiling("local", T0_MS + 100)
		gen:set_ceiling("registry", T0_MS + 2)
		clock:advance(3 * MS)
		local x = helpers.refused_mint("hwm_stalled", "the clock (" .. (T0_MS + 3) .. " ms) reached the durable high-water mark "
			.. "(local " .. (T0_MS + 100) .. " ms, registry " .. (T0_MS + 2) .. " ms)")(gen:next())
		assert.are.same({ wait_ns = 0, clock_ms = T0_MS + 3, local_ceiling_ms = T0_MS + 100,
			registry_ceiling_ms = T0_MS + 2 }, x)
	end)

	it("has wait_ns = 0 and a sentence for the grant refusals", function()
		local gen = helpers.bare_gen()
		assert.are.same({ wait_ns = 0 }, helpers.refused_mint("no_lease", "no worker ID is granted")(gen:next()))
		gen:revoke("parked")
		assert.are.same({ wait_ns = 0 }, helpers.refused_mint("parked", "parked until the next grant")(gen:reserve(3)))
	end)

	it("is the same from the serving helpers: next_text and probe", function()
		local gen, clock = helpers.manual_gen()
		assert(gen:next())
		clock:set_wall(T0_NS - 7 * MS)
		local from_text = helpers.refused_mint("clock_wait", "clock regressed by 7 ms")(gen:next_text(3, false))
		local from_probe = helpers.refused_mint("clock_wait", "clock regressed by 7 ms")(gen:probe())
		assert.are.same(from_text, from_probe)
		assert.are.equal(8 * MS, from_probe.wait_ns)
		gen:revoke("no_lease")
		helpers.refused_mint("no_lease", "no worker ID is granted")(gen:next_text(3, true, 0, 0))
		helpers.refused_mint("no_lease", "no worker ID is granted")(gen:probe())
	end)

	it("from start_check, quotes the marks and the bound", function()
		local gen = helpers.manual_gen()
		local x = helpers.refused_mint("hwm_ahead", "beyond the start bound of 10 ms")(gen:start_check(T0_MS + 50, nil, 10))
		assert.are.same({ wait_ns = 51 * MS, regression_ms = 50, clock_ms = T0_MS, local_mark_ms = T0_MS + 50,
			registry_mark_ms = 0, bound_ms = 10 }, x)
	end)
end)

describe("other refusals", function()
	it("are exactly nil, code, detail", function()
		local gen = helpers.manual_gen()
		helpers.refused("id_out_of_range", "id -1 is negative")(gen:decode(-1))
		helpers.refused("worker_out_of_range")(gen:grant(1024, MONO0_NS))
		helpers.refused("layout_worker_bits", "layout.worker_bits must be 1..16, got 17")(
			core.new({ worker_bits = 17, sequence_bits = 5 }))
	end)

	it("never raise; bad arguments do, naming the value", function()
		local gen = helpers.manual_gen()
		helpers.raises(function() gen:next_ids(1.5) end, "n must be an integer, got float 1.5")
	end)
end)
