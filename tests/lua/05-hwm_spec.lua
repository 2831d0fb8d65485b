-- High-water mark files and the keeper.
local helpers = require "spec_helpers"
local core = helpers.core
local MS, T0_MS, MONO0_NS = helpers.MS, helpers.T0_MS, helpers.MONO0_NS

describe("core.hwm_store and core.hwm_load", function()
	after_each(helpers.cleanup)

	it("store a mark durably and read it back", function()
		local dir = helpers.tmpdir()
		assert.is_true(core.hwm_store(dir, 3, T0_MS + 500))
		assert.are.equal("sfhwm1 " .. (T0_MS + 500) .. "\n", helpers.read_file(dir .. "/worker-3.hwm"))
		local mark = core.hwm_load(dir, 3)
		assert.are.equal(T0_MS + 500, mark)
		assert.are.equal("integer", math.type(mark))
		-- a later store replaces it; another worker has its own file
		assert.is_true(core.hwm_store(dir, 3, T0_MS + 900))
		assert.is_true(core.hwm_store(dir, 65535, 1))
		assert.are.equal(T0_MS + 900, core.hwm_load(dir, 3))
		assert.are.equal(1, core.hwm_load(dir, 65535))
		assert.is_true(core.hwm_store(dir, 0, 0))
		assert.are.equal(0, core.hwm_load(dir, 0))
	end)

	it("refuse not_found for a worker never stored", function()
		local dir = helpers.tmpdir()
		helpers.refused("not_found", "no high-water mark stored for worker 4 under '" .. dir .. "'")(core.hwm_load(dir, 4))
	end)

	it("refuse state_corrupt for a damaged file", function()
		local dir = helpers.tmpdir()
		for _, text in ipairs({ "sfhwm1 12x\n", "sfhwm1 12", "", "garbage\n", "sfhwm1 99999999999999999999\n" }) do
			helpers.write_file(dir .. "/worker-5.hwm", text)
			helpers.refused("state_corrupt", "worker 5 under '" .. dir .. "' is corrupt")(core.hwm_load(dir, 5))
		end
	end)

	it("refuse state_io with the system's reason", function()
		local dir = helpers.tmpdir()
		helpers.refused("state_io", "cannot be read or written: No such file or directory")(
			core.hwm_store(dir .. "/missing", 1, 5))
		helpers.write_file(dir .. "/file", "x")
		helpers.refused("state_io", "Not a directory")(core.hwm_load(dir .. "/file", 1))
	end)

	it("raise for bad arguments", function()
		local dir = helpers.tmpdir()
		helpers.raises(function() core.hwm_store(dir, 1, -1) end, "mark_ms must be >= 0, got -1")
		helpers.raises(function() core.hwm_store(dir, 1, 1.5) end, "mark_ms must be an integer, got float 1.5")
		helpers.raises(function() core.hwm_store(dir, 65536, 1) end, "worker must be 0..65535, got 65536")
		helpers.raises(function() core.hwm_load(dir, -1) end, "worker must be 0..65535, got -1")
		helpers.raises(function() core.hwm_load(dir, "1") end, "worker must be an integer, got string '1'")
		helpers.raises(function() core.hwm_load(nil, 1) end, "dir must be a string, got nil")
		helpers.raises(function() core.hwm_load(42, 1) end, "dir must be a string, got integer 42")
		assert.is_nil(helpers.read_file(dir .. "/worker-1.hwm"))
	end)
end)

describe("the keeper", function()
	after_each(helpers.cleanup)

	local function keeper_for(gen, dir, worker)
		return assert(gen:keeper({ dir = dir, worker = worker or 1, ahead_ms = 1000, refresh_ms = 200 }))
	end

	it("stores a mark ahead of the clock and publishes it as the local ceiling", function()
		local dir = helpers.tmpdir()
		local gen, clock = helpers.bare_gen()
		assert(gen:grant(1, MONO0_NS + helpers.HOUR_MS * MS))
		helpers.refused_mint("hwm_stalled")(gen:next())
		local keeper = keeper_for(gen, dir)
		assert.are.equal(math.mininteger, keeper:mark())
		assert.is_true(keeper:step())
		assert.are.equal(T0_MS + 1000, keeper:mark())
		assert.are.equal(T0_MS + 1000, core.hwm_load(dir, 1))
		assert.are.equal(T0_MS + 1000, gen:ceiling("local"))
		assert.are.equal("integer", math.type(gen:next()))
		assert.is_truthy(tostring(keeper):find("worker 1 under '" .. dir .. "', mark " .. (T0_MS + 1000), 1, true))
		-- plenty left: nothing stored
		clock:advance(700 * MS)
		assert.is_false(keeper:step())
		assert.are.equal(T0_MS + 1000, core.hwm_load(dir, 1))
		-- less than refresh_ms left: store again
		clock:advance(150 * MS)
		assert.is_true(keeper:step())
		assert.are.equal(T0_MS + 1850, core.hwm_load(dir, 1))
		assert.are.equal(T0_MS + 1850, gen:ceiling("local"))
	end)

	it("never stores a mark below one already durable", function()
		local dir = helpers.tmpdir()
		local gen, clock = helpers.bare_gen()
		assert(core.hwm_store(dir, 1, T0_MS + 5000))
		local keeper = keeper_for(gen, dir)
		local mark, found = keeper:start_mark()
		assert.are.equal(T0_MS + 5000, mark)
		assert.is_true(found)
		assert.is_false(keeper:step())
		assert.are.equal(T0_MS + 5000, core.hwm_load(dir, 1))
		assert.are.equal(T0_MS + 5000, gen:ceiling("local"))
		-- without a file, a start waits past now + ahead_ms
		local fresh = keeper_for(gen, dir, 2)
		local m2, found2 = fresh:start_mark()
		assert.are.equal(T0_MS + 1000, m2)
		assert.is_false(found2)
		assert.is_not_nil(clock)
	end)

	it("refuses start_mark on a corrupt file", function()
		local dir = helpers.tmpdir()
		local gen = helpers.bare_gen()
		helpers.write_file(dir .. "/worker-1.hwm", "nonsense")
		helpers.refused("state_corrupt")(keeper_for(gen, dir):start_mark())
	end)

	it("keeps minting on the old ceiling when a store fails", function()
		local base = helpers.tmpdir()
		local dir = base .. "/state"
		assert(os.execute("mkdir " .. dir))
		local gen, clock = helpers.bare_gen()
		assert(gen:grant(1, MONO0_NS + helpers.HOUR_MS * MS))
		local keeper = keeper_for(gen, dir)
		assert.is_true(keeper:step())
		helpers.rmdir(dir)
		clock:advance(900 * MS)
		helpers.refused("state_io", "the high-water mark of worker 1 under '" .. dir .. "' cannot be read or written: ")(
			keeper:step())
		assert.are.equal(T0_MS + 1000, gen:ceiling("local"))
		assert.are.equal("integer", math.type(gen:next()))
		clock:advance(101 * MS)
		helpers.refused_mint("hwm_stalled", "reached the durable local high-water mark (" .. (T0_MS + 1000) .. " ms)")(gen:next())
	end)

	it("refuses a missing directory and a worker outside the layout", function()
		local dir = helpers.tmpdir()
		local gen = helpers.bare_gen({ worker_bits = 4, sequence_bits = 18 })
		helpers.refused("state_io", "keeper.dir '" .. dir .. "/nope' is not a usable directory: No such file or directory")(
			gen:keeper({ dir = dir .. "/nope", worker = 1, ahead_ms = 1000, refresh_ms = 200 }))
		helpers.write_file(dir .. "/plain", "x")
		helpers.refused("state_io", "not a directory")(
			gen:keeper({ dir = dir .. "/plain", worker = 1, ahead_ms = 1000, refresh_ms = 200 }))
		helpers.refused("worker_out_of_range", "keeper.worker 16 is outside 0..15 (layout.worker_bits = 4)")(
			gen:keeper({ dir = dir, worker = 16, ahead_ms = 1000, refresh_ms = 200 }))
	end)

	it("raises for a bad configuration, naming the key", function()
		local dir = helpers.tmpdir()
		local gen = helpers.bare_gen()
		local function cfg(over)
			local c = { dir = dir, worker = 1, ahead_ms = 1000, refresh_ms = 200 }
			for k, v in pairs(over) do
				c[k] = v
			end
			return c
		end
		helpers.raises(function() gen:keeper(cfg({ dir = false })) end, "keeper.dir must be a string, got boolean")
		helpers.raises(function() gen:keeper({ worker = 1, ahead_ms = 1000, refresh_ms = 200 }) end, "keeper.dir is required")
		helpers.raises(function() gen:keeper({ dir = dir, ahead_ms = 1000, refresh_ms = 200 }) end, "keeper.worker is required")
		helpers.raises(function() gen:keeper({ dir = dir, worker = 1, refresh_ms = 200 }) end, "keeper.ahead_ms is required")
		helpers.raises(function() gen:keeper({ dir = dir, worker = 1, ahead_ms = 200 }) end, "keeper.refresh_ms is required")
		helpers.raises(function() gen:keeper(cfg({ worker = 1.5 })) end, "keeper.worker must be an integer, got float 1.5")
		helpers.raises(function() gen:keeper(cfg({ worker = -1 })) end, "keeper.worker must be 0..65535, got -1")
		helpers.raises(function() gen:keeper(cfg({ ahead_ms = 0 })) end, "keeper.ahead_ms must be >= 1, got 0")
		helpers.raises(function() gen:keeper(cfg({ refresh_ms = 2000 })) end,
			"keeper.refresh_ms must be 1..keeper.ahead_ms (1000), got 2000")
		helpers.raises(function() gen:keeper(cfg({ ahead = 5 })) end, "unknown key 'keeper.ahead'")
		helpers.raises(function() gen:keeper(dir) end, "keeper config must be a table")
	end)

	it("keeps its generator alive and frees itself", function()
		local dir = helpers.tmpdir()
		local weak = setmetatable({}, { __mode = "v" })
		local keeper
		do
			local gen = helpers.manual_gen()
			weak.gen = gen
			keeper = keeper_for(gen, dir)
		end
		collectgarbage()
		collectgarbage()
		assert.is_not_nil(weak.gen)
		assert.is_true(keeper:step())
		assert.are.equal(T0_MS + 1000, weak.gen:ceiling("local"))
		keeper = nil -- luacheck: no unused (dropped so the collector may take it)
		collectgarbage()
		collectgarbage()
		assert.is_nil(weak.gen)
	end)
end)
