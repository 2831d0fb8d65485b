-- gen:next_ids and gen:reserve.
local helpers = require "spec_helpers"
local core = helpers.core
local MS, T0_MS = helpers.MS, helpers.T0_MS

describe("gen:next_ids", function()
	it("returns n strictly increasing integers", function()
		local gen = helpers.manual_gen(nil, 4)
		local ids = assert(gen:next_ids(100))
		assert.are.equal(100, #ids)
		assert(helpers.strictly_increasing_integers(ids))
		assert.are.same({ timestamp_ms = T0_MS, worker = 4, sequence = 0 }, gen:decode(ids[1]))
		assert.are.same({ timestamp_ms = T0_MS, worker = 4, sequence = 99 }, gen:decode(ids[100]))
		local one = assert(gen:next_ids(1))
		assert.are.equal(1, #one)
		assert.are.equal(ids[100] + 1, one[1])
	end)

	it("crosses millisecond boundaries on the real clock", function()
		local gen = helpers.arm_real(core.new(), 8)
		local ids = assert(helpers.retry_exhausted(5, gen.next_ids, gen, 10000))
		assert.are.equal(10000, #ids)
		assert(helpers.strictly_increasing_integers(ids))
		local first, last = gen:decode(ids[1]), gen:decode(ids[#ids])
		-- 4,096 a millisecond: 10,000 IDs need at least three milliseconds
		assert.is_true(last.timestamp_ms >= first.timestamp_ms + 2)
		assert.are.equal(8, last.worker)
		local next_id = assert(helpers.retry_exhausted(5, gen.next, gen))
		assert.is_true(next_id > ids[#ids])
	end)

	it("crosses many milliseconds with a small sequence field", function()
		local gen = helpers.arm_real(core.new({ worker_bits = 16, sequence_bits = 6 }), 65535)
		local ids = assert(helpers.retry_exhausted(5, gen.next_ids, gen, 640))
		assert(helpers.strictly_increasing_integers(ids))
		local per_ms = {}
		for _, id in ipairs(ids) do
			local d = gen:decode(id)
			assert.are.equal(65535, d.worker)
			per_ms[d.timestamp_ms] = (per_ms[d.timestamp_ms] or 0) + 1
		end
		local n = 0
		for _, count in pairs(per_ms) do
			n = n + 1
			assert.is_true(count <= 64)
		end
		assert.is_true(n >= 10)
	end)

	it("gives the largest batch, 65536", function()
		local gen = helpers.arm_real(core.new())
		local ids = assert(helpers.retry_exhausted(5, gen.next_ids, gen, 65536))
		assert.are.equal(65536, #ids)
		assert(helpers.strictly_increasing_integers(ids))
	end)

	it("refuses when the millisecond runs out on a stopped clock, dropping the IDs", function()
		local gen, clock = helpers.manual_gen()
		local extra = helpers.refused_mint("sequence_exhausted", "all 4096 sequence numbers of millisecond "
			.. T0_MS .. " are used")(gen:next_ids(5000))
		assert.are.equal(MS, extra.wait_ns)
		-- the 4,096 numbers reserved before the refusal are a gap, never reissued
		helpers.refused_mint("sequence_exhausted")(gen:next_ids(1))
		clock:advance(MS)
		local ids = assert(gen:next_ids(10))
		assert.are.same({ timestamp_ms = T0_MS + 1, worker = 1, sequence = 0 }, gen:decode(ids[1]))
		assert.is_true(gen:stats().sequence_exhausted >= 2)
	end)

	it("passes the generator's refusals on", function()
		local gen = helpers.bare_gen()
		gen:set_ceiling("local", T0_MS + 10)
		helpers.refused_mint("no_lease")(gen:next_ids(3))
		local ready = helpers.bare_gen()
		assert(ready:grant(1, helpers.MONO0_NS + helpers.S))
		helpers.refused_mint("hwm_stalled")(ready:next_ids(3))
	end)

	it("raises for n outside 1..65536 or not an integer", function()
		local gen = helpers.manual_gen()
		helpers.raises(function() gen:next_ids(0) end, "bad argument #1 to 'next_ids'", "n must be 1..65536, got 0")
		helpers.raises(function() gen:next_ids(65537) end, "n must be 1..65536, got 65537")
		helpers.raises(function() gen:next_ids(-1) end, "n must be 1..65536, got -1")
		helpers.raises(function() gen:next_ids(1.5) end, "n must be an integer, got float 1.5")
		helpers.raises(function() gen:next_ids("10") end, "n must be an integer, got string '10'")
		helpers.raises(function() gen:next_ids() end, "n must be an integer, got no value")
		-- nothing was minted by the refused calls
		assert.are.equal(0, gen:decode(assert(gen:next())).sequence)
	end)
end)

describe("gen:reserve", function()
	it("hands out a run of the current millisecond", function()
		local gen, clock = helpers.manual_gen(nil, 2)
		local first, count = gen:reserve(10)
		assert.are.equal(10, count)
		assert.are.equal("integer", math.type(first))
		assert.are.same({ timestamp_ms = T0_MS, worker = 2, sequence = 0 }, gen:decode(first))
		-- the rest of the millisecond, less than asked
		local second, rest = gen:reserve(5000)
		assert.are.equal(first + 10, second)
		assert.are.equal(4086, rest)
		assert.are.same({ timestamp_ms = T0_MS, worker = 2, sequence = 4095 }, gen:decode(second + rest - 1))
		local extra = helpers.refused_mint("sequence_exhausted")(gen:reserve(1))
		assert.are.equal(MS, extra.wait_ns)
		clock:advance(MS)
		local third, c3 = gen:reserve(1 << 22)
		assert.are.equal(4096, c3)
		assert.are.same({ timestamp_ms = T0_MS + 1, worker = 2, sequence = 0 }, gen:decode(third))
	end)

	it("raises for n outside 1..2^22", function()
		local gen = helpers.manual_gen()
		helpers.raises(function() gen:reserve(0) end, "n must be 1..4194304, got 0")
		helpers.raises(function() gen:reserve((1 << 22) + 1) end, "n must be 1..4194304, got 4194305")
		helpers.raises(function() gen:reserve(2.0) end, "n must be an integer, got float 2.0")
	end)

	it("refuses no_lease before a grant", function()
		local gen = helpers.bare_gen()
		helpers.refused_mint("no_lease")(gen:reserve(4))
	end)
end)

describe("gen:next_text", function()
	local function lines(body)
		local out = {}
		for line in body:gmatch("([^\n]*)\n") do out[#out + 1] = line end
		return out
	end

	-- each line a canonical decimal integer, strictly increasing
	local function canonical_increasing(list)
		local prev
		for _, text in ipairs(list) do
			local n = math.tointeger(tonumber(text))
			if not n or tostring(n) ~= text or (prev and n <= prev) then return false, text end
			prev = n
		end
		return true
	end

	it("builds a whole body: one ID a line, or JSON strings", function()
		local gen = helpers.manual_gen(nil, 4)
		local body, first, last, count = gen:next_text(3, false)
		assert.are.equal(3, count)
		assert.are.equal(first .. "\n" .. (first + 1) .. "\n" .. last .. "\n", body)
		body, first, last, count = gen:next_text(2, true)
		assert.are.equal(2, count)
		assert.are.equal('{"ids":["' .. first .. '","' .. last .. '"]}\n', body)
	end)

	it("formats small and large IDs like tostring", function()
		-- epoch = the clock's time and worker 0: the IDs are 1, 2, 3, ...
		-- (0 is the generator's starting point, never issued)
		local gen = helpers.manual_gen({ epoch_ms = T0_MS }, 0)
		local body, first, _, count = gen:next_text(1000, false)
		assert.are.equal(1, first)
		local got = lines(body)
		assert.are.equal(1000, count)
		assert.are.equal(1000, #got)
		for i = 1, 1000 do assert.are.equal(tostring(i), got[i]) end
		local big = helpers.manual_gen({ timestamp_bits = 41, worker_bits = 10, sequence_bits = 12 }, 1023)
		local b2 = big:next_text(50, false)
		assert(canonical_increasing(lines(b2)))
	end)

	it("on a used-up millisecond returns a piece; the rest follows with offset", function()
		local gen, clock = helpers.manual_gen(nil, 4)
		assert(gen:next())
		-- the clock stands still: 4,095 are left of this millisecond
		local piece1, first, last1, count1 = gen:next_text(5000, false, 0)
		assert.are.equal(4095, count1)
		clock:advance(MS)
		local piece2, first2, last2, count2 = gen:next_text(5000 - count1, false, 0, count1)
		assert.are.equal(905, count2)
		assert.is_true(first2 > last1)
		local all = lines(piece1 .. piece2)
		assert.are.equal(5000, #all)
		assert(canonical_increasing(all))
		assert.are.equal(tostring(first), all[1])
		assert.are.equal(tostring(last2), all[5000])
	end)

	it("JSON pieces concatenate into one JSON body", function()
		local gen, clock = helpers.manual_gen(nil, 4)
		assert(gen:next())
		local piece1, _, _, count1 = gen:next_text(4100, true, 0)
		assert.are.equal(4095, count1)
		assert.is_truthy(piece1:find('^{"ids":%["%d+"'))
		assert.is_nil(piece1:find("]}", 1, true))
		clock:advance(MS)
		local piece2, _, _, count2 = gen:next_text(5, true, 0, count1)
		assert.are.equal(5, count2)
		assert.is_truthy(piece2:find('^,"%d+"'))
		local body = piece1 .. piece2
		assert.is_truthy(body:find('"]}\n$'))
		local ids = {}
		for id in body:gmatch('"(%d+)"') do ids[#ids + 1] = id end
		assert.are.equal(4100, #ids)
		assert(canonical_increasing(ids))
	end)

	it("refuses with nil, code, detail, extras; checks its arguments", function()
		local gen = helpers.bare_gen()
		helpers.refused_mint("no_lease", "no worker ID is granted")(gen:next_text(3, false))
		local armed = helpers.manual_gen(nil, 4)
		helpers.raises(function() armed:next_text(0, false) end, "count must be 1..65536, got 0")
		helpers.raises(function() armed:next_text(3, false, -1) end, "spin_limit_ns must be >= 0, got -1")
		helpers.raises(function() armed:next_text(3, false, 0, -1) end, "offset must be 0..65533, got -1")
		helpers.raises(function() armed:next_text(10, false, 0, 65530) end, "offset must be 0..65526, got 65530")
	end)
end)
