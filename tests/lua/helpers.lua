-- Shared set-up for the snowflake.core busted specs.
--
-- busted loads it before the specs (`--helper tests/lua/helpers.lua`, as
-- tests/tools/run-busted.sh runs them); every spec takes it with
--   local helpers = require "spec_helpers"
--
-- The module is found through SNOWFLAKE_CPATH (a package.cpath template such as
-- "build/lua5.3/?.so", as tests/tools/run-busted.sh sets it), else through
-- build/lua<version>/?.so under the current directory.

local os, io, math, string, table = os, io, math, string, table
local assert, ipairs, pairs, pcall, select, tostring, type = assert, ipairs, pairs, pcall, select, tostring, type

local helpers = {}

local version = _VERSION:match("%d+%.%d+")
local cpath = os.getenv("SNOWFLAKE_CPATH")
if not cpath or cpath == "" then
	cpath = "build/lua" .. version .. "/?.so"
end
package.cpath = cpath .. ";" .. package.cpath

local core = require("snowflake.core")
helpers.core = core

helpers.MS = 1000000                        -- ns in a millisecond
helpers.S = 1000 * helpers.MS               -- ns in a second
helpers.T0_MS = 1718000000000               -- 2024-06-10T06:13:20Z, after the default epoch
helpers.T0_NS = helpers.T0_MS * helpers.MS
helpers.MONO0_NS = 5000 * helpers.S         -- the manual monotonic clock's start
helpers.HOUR_MS = 3600 * 1000

helpers.DEFAULT_LAYOUT = {
	epoch_ms = 1704067200000, timestamp_bits = 41, worker_bits = 10, sequence_bits = 12,
}

-- A generator on a manual clock at T0, granted `worker` (default 1) with a
-- fencing deadline an hour away and a local ceiling an hour ahead: it mints.
function helpers.manual_gen(layout, worker)
	local clock = core.manual_clock(helpers.T0_NS, helpers.MONO0_NS)
	local gen = assert(core.new(layout or {}, clock))
	assert(gen:grant(worker or 1, helpers.MONO0_NS + 3600 * helpers.S))
	gen:set_ceiling("local", helpers.T0_MS + helpers.HOUR_MS)
	return gen, clock
end

-- A generator on a manual clock at T0 that is neither granted nor ceilinged.
function helpers.bare_gen(layout)
	local clock = core.manual_clock(helpers.T0_NS, helpers.MONO0_NS)
	return assert(core.new(layout or {}, clock)), clock
end

-- Makes `gen` (on the real clocks) mint: grant with a deadline an hour away,
-- local ceiling an hour ahead.
function helpers.arm_real(gen, worker)
	assert(gen:grant(worker or 1, core.mono_ns() + 3600 * helpers.S))
	gen:set_ceiling("local", core.wall_ns() // helpers.MS + helpers.HOUR_MS)
	return gen
end

-- Calls fn(...) again while it refuses sequence_exhausted, at most `tries`
-- times. Only for the real clock: a spin waiting out a used-up millisecond
-- gives up after 2 ms, which a preempted thread on a busy host can exceed;
-- the contract is then "retry after wait_ns".
function helpers.retry_exhausted(tries, fn, ...)
	for _ = 1, tries do
		local r = table.pack(fn(...))
		if r[1] ~= nil or r[2] ~= "sequence_exhausted" then
			return table.unpack(r, 1, r.n)
		end
	end
	error(string.format("sequence_exhausted %d times in a row", tries))
end

-- Runs fn, which must raise; returns the message. The message must contain
-- every further argument (plain substrings).
function helpers.raises(fn, ...)
	local ok, err = pcall(fn)
	assert(not ok, "expected an error, the call succeeded")
	err = tostring(err)
	for i = 1, select("#", ...) do
		local want = select(i, ...)
		assert(err:find(want, 1, true), string.format("error %q does not contain %q", err, want))
	end
	return err
end

-- The refusal shape: nil, code, a detail containing each of wants, then
-- exactly `extras` more values (0, or 1: a table of named integers).
local function check_refusal(code, wants, extras, ...)
	local n, v, c, detail, extra = select("#", ...), ...
	assert(v == nil, string.format("expected a refusal %q, got %s", code, tostring(v)))
	assert(c == code, string.format("expected code %q, got %q (%s)", code, tostring(c), tostring(detail)))
	assert(type(detail) == "string" and #detail > 0, "the detail is empty")
	for _, want in ipairs(wants) do
		assert(detail:find(want, 1, true), string.format("detail %q does not contain %q", detail, want))
	end
	assert(n == 3 + extras, string.format("expected %d values, got %d", 3 + extras, n))
	if extras == 1 then
		assert(type(extra) == "table", "the 4th value is the table of extras, got " .. type(extra))
		for k, x in pairs(extra) do
			assert(type(k) == "string" and math.type(x) == "integer",
				string.format("extra %s = %s is not a named integer", tostring(k), tostring(x)))
		end
		assert(math.type(extra.wait_ns) == "integer", "extras.wait_ns is an integer")
	end
	return extra
end

-- Asserts a refusal other than a mint's: exactly nil, code, a detail
-- containing each further argument.
function helpers.refused(code, ...)
	local wants = { ... }
	return function(...)
		return check_refusal(code, wants, 0, ...)
	end
end

-- Asserts a mint's refusal (next, next_ids, reserve, next_text, probe,
-- start_check): nil, code, detail as helpers.refused, and a table of named
-- integer extras with wait_ns, which it returns.
function helpers.refused_mint(code, ...)
	local wants = { ... }
	return function(...)
		return check_refusal(code, wants, 1, ...)
	end
end

local function shell_quote(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end

local created = {}

-- A fresh empty directory, removed by helpers.cleanup().
function helpers.tmpdir()
	local base = os.getenv("TMPDIR") or "/tmp"
	local p = assert(io.popen("mktemp -d " .. shell_quote(base .. "/snowflake-spec.XXXXXX")))
	local dir = p:read("*l")
	p:close()
	assert(dir and dir ~= "", "mktemp -d failed")
	created[#created + 1] = dir
	return dir
end

function helpers.rmdir(dir)
	assert(os.execute("rm -rf " .. shell_quote(dir)))
end

function helpers.cleanup()
	for i = #created, 1, -1 do
		helpers.rmdir(created[i])
		created[i] = nil
	end
end

function helpers.read_file(path)
	local f = io.open(path, "rb")
	if not f then
		return nil
	end
	local s = f:read("*a")
	f:close()
	return s
end

function helpers.write_file(path, text)
	local f = assert(io.open(path, "wb"))
	assert(f:write(text))
	assert(f:close())
end

-- true when ids is a sequence of Lua integers, strictly increasing.
function helpers.strictly_increasing_integers(ids)
	for i = 1, #ids do
		if math.type(ids[i]) ~= "integer" then
			return false, string.format("ids[%d] is %s", i, tostring(ids[i]))
		end
		if i > 1 and ids[i] <= ids[i - 1] then
			return false, string.format("ids[%d] = %d is not above ids[%d] = %d", i, ids[i], i - 1, ids[i - 1])
		end
	end
	return true
end

package.loaded.spec_helpers = helpers
return helpers
