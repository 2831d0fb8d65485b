-- gen:next, the grant (lease) and the write-ahead ceilings.
local helpers = require "spec_helpers"
local core = helpers.core
local MS, T0_MS, MONO0_NS = helpers.MS, helpers.T0_MS, helpers.MONO0_NS

describe("gen:next", function()
	it("mints integers in order on the manual clock", function()
		local gen, clock = helpers.manual_gen(nil, 3)
		local a = assert(gen:next())
		local b = assert(gen:next())
		assert.are.equal("integer", math.type(a))
		assert.are.equal(a + 1, b)
		assert.are.same({ timestamp_ms = T0_MS, worker = 3, sequence = 1 }, gen:decode(b))
		assert.are.equal(T0_MS, gen:last_ms())
		clock:advance(MS)
		local c = assert(gen:next())
		assert.are.same({ timestamp_ms = T0_MS + 1, worker = 3, sequence = 0 }, gen:decode(c))
		assert.are.equal(T0_MS + 1, gen:last_ms())
	end)

	it("reports epoch_ms - 1 as last_ms before the first ID", function()
		local gen = helpers.manual_gen()
		assert.are.equal(1704067200000 - 1, gen:last_ms())
	end)

	it("mints 10^6 unique, strictly increasing integer IDs on the real clock", function()
		local gen = helpers.arm_real(assert(core.process_generator()), 9)
		-- Strictly increasing implies unique. (No set of seen IDs: Lua 5.3 hashes
		-- an integer key by its low bits, the sequence and worker fields here,
		-- so a table of 10^6 IDs degrades to a few thousand chains.)
		local n, prev, retries = 1000000, -1, 0
		local first_ms
		for i = 1, n do
			local id, code, detail = gen:next()
			while not id and code == "sequence_exhausted" and retries < 100 do
				retries = retries + 1 -- preempted past the 2 ms spin: retry, see helpers
				id, code, detail = gen:next()
			end
			if not id then
				error(string.format("ID %d refused: %s (%s)", i, tostring(code), tostring(detail)))
			end
			if math.type(id) ~= "integer" then
				error(string.format("ID %d is a %s", i, math.type(id)))
			end
			if id <= prev then
				error(string.format("ID %d = %d is not above the previous %d", i, id, prev))
			end
			prev = id
			first_ms = first_ms or gen:decode(id).timestamp_ms
		end
		local last = gen:decode(prev)
		assert.are.equal(9, last.worker)
		-- 4,096 IDs a millisecond at most: 10^6 IDs span at least 245 ms
		assert.is_true(last.timestamp_ms - first_ms >= 244)
	end)

	it("mints 10^6 IDs from a new real-clock generator too", function()
		local gen = helpers.arm_real(assert(core.new()), 2)
		local prev, retries = -1, 0
		for i = 1, 1000000 do
			local id, code = gen:next()
			while not id and code == "sequence_exhausted" and retries < 100 do
				retries = retries + 1
				id, code = gen:next()
			end
			if math.type(id) ~= "integer" or id <= prev then
				error(string.format("ID %d = %s after %d", i, tostring(id), prev))
			end
			prev = id
		end
		assert.are.equal(0, gen:stats().clock_refusals)
	end)
end)

describe("the grant", function()
	it("refuses no_lease before any grant", function()
		local gen = helpers.bare_gen()
		gen:set_ceiling("local", T0_MS + 1000)
		helpers.refused_mint("no_lease", "no worker ID is granted")(gen:next())
		assert.are.same({ nil, 0, "no_lease" }, { gen:grant_info() })
		assert.is_truthy(tostring(gen):find("no grant", 1, true))
	end)

	it("mints once granted and reports the grant", function()
		local gen, clock = helpers.bare_gen()
		gen:set_ceiling("local", T0_MS + 1000)
		local deadline = MONO0_NS + 10 * helpers.S + 123456
		assert.is_true(gen:grant(42, deadline))
		local worker, got_deadline, code = gen:grant_info()
		assert.are.equal(42, worker)
		-- the core keeps the deadline in whole milliseconds, rounded down
		assert.are.equal(deadline - 123456, got_deadline)
		assert.are.equal("ok", code)
		assert.are.equal(42, gen:decode(assert(gen:next())).worker)
		assert.is_truthy(tostring(gen):find("worker 42", 1, true))
		assert.is_not_nil(clock)
	end)

	it("refuses a worker outside the layout", function()
		local gen = helpers.bare_gen({ worker_bits = 4, sequence_bits = 18 })
		helpers.refused("worker_out_of_range", "worker 16 is outside 0..15 (layout.worker_bits = 4)")(
			gen:grant(16, MONO0_NS + helpers.S))
		assert.is_nil((gen:grant_info()))
		assert.is_true(gen:grant(15, MONO0_NS + helpers.S))
	end)

	it("withdraws the grant with the code given", function()
		local gen = helpers.manual_gen()
		assert(gen:next())
		for _, name in ipairs({ "parked", "fenced", "no_lease", "stopped" }) do
			gen:revoke(name)
			local v, code = gen:next()
			assert.is_nil(v)
			assert.are.equal(name, code)
			assert.are.same({ nil, 0, name }, { gen:grant_info() })
		end
		gen:revoke("parked")
		helpers.refused_mint("parked", "parked until the next grant")(gen:next())
		gen:revoke("fenced")
		helpers.refused_mint("fenced", "withdrawn as fenced")(gen:next())
		assert(gen:grant(1, MONO0_NS + helpers.S))
		assert.are.equal("integer", math.type(gen:next()))
	end)

	it("raises for an unknown revoke code", function()
		local gen = helpers.manual_gen()
		helpers.raises(function() gen:revoke("gone") end, "unknown code 'gone'")
		helpers.raises(function() gen:revoke("ok") end, "unknown code 'ok'")
		helpers.raises(function() gen:revoke(-9) end, "code_name must be a string, got integer -9")
		-- the grant is untouched
		assert.are.equal(1, (gen:grant_info()))
	end)
end)

describe("the write-ahead ceilings", function()
	it("refuse hwm_stalled until a local ceiling is set", function()
		local gen = helpers.bare_gen()
		assert(gen:grant(1, MONO0_NS + helpers.S))
		assert.are.equal(math.mininteger, gen:ceiling("local"))
		assert.are.equal(math.maxinteger, gen:ceiling("registry"))
		helpers.refused_mint("hwm_stalled", "no local high-water mark is published yet")(gen:next())
		assert.are.equal(1, gen:stats().hwm_stalls)
		gen:set_ceiling("local", T0_MS)
		assert.are.equal(T0_MS, gen:ceiling("local"))
		assert.are.equal("integer", math.type(gen:next()))
	end)

	it("never mint past the lower ceiling", function()
		local gen, clock = helpers.bare_gen()
		assert(gen:grant(1, MONO0_NS + helpers.S))
		gen:set_ceiling("local", T0_MS + 1)
		assert(gen:next())
		clock:advance(MS)
		assert(gen:next())
		clock:advance(MS)
		helpers.refused_mint("hwm_stalled", "the clock (" .. (T0_MS + 2) .. " ms) reached the durable local high-water mark ("
			.. (T0_MS + 1) .. " ms)")(gen:next())
		gen:set_ceiling("local", T0_MS + 100)
		gen:set_ceiling("registry", T0_MS + 2)
		assert.are.equal(T0_MS + 2, gen:ceiling("registry"))
		assert.are.equal(T0_MS + 2, gen:decode(assert(gen:next())).timestamp_ms)
		clock:advance(MS)
		helpers.refused_mint("hwm_stalled", "local " .. (T0_MS + 100) .. " ms, registry " .. (T0_MS + 2) .. " ms")(gen:next())
		gen:set_ceiling("registry", math.maxinteger)
		assert.are.equal(T0_MS + 3, gen:decode(assert(gen:next())).timestamp_ms)
		assert.are.equal(2, gen:stats().hwm_stalls)
	end)

	it("floor_raise skips what may have been issued before", function()
		local gen, clock = helpers.manual_gen()
		assert.is_true(gen:floor_raise(T0_MS + 5))
		assert.are.equal(T0_MS + 5, gen:last_ms())
		-- the clock is now 5 ms behind the floor: a wait, not an ID at or below it
		local v, code = gen:next()
		assert.is_nil(v)
		assert.are.equal("clock_wait", code)
		clock:advance(6 * MS)
		assert.are.same({ timestamp_ms = T0_MS + 6, worker = 1, sequence = 0 }, gen:decode(assert(gen:next())))
		-- a lower floor changes nothing
		assert.is_true(gen:floor_raise(T0_MS))
		assert.are.equal(T0_MS + 6, gen:last_ms())
		helpers.refused("timestamp_exhausted", "past the layout's time range")(
			gen:floor_raise(1704067200000 + (1 << 41)))
	end)
end)
