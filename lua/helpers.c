/*
 * snowflake.core's helpers (see helpers.h): argument checks, the refusal
 * shape, class registration. Uses only the Lua API and the core's headers.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"

/* ---- arguments --------------------------------------------------------- */

int sfl_raise_bad(lua_State *L, int arg, int idx, const char *name, const char *expected)
{
	const char *got;

	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TNUMBER:
		got = lua_pushfstring(L, "%s %s", lua_isinteger(L, idx) ? "integer" : "float",
		                      luaL_tolstring(L, idx, NULL));
		break;
	case LUA_TSTRING:
		got = lua_pushfstring(L, "string '%s'", lua_tostring(L, idx));
		break;
	default:
		got = luaL_typename(L, idx);
		break;
	}
	return luaL_argerror(L, arg, lua_pushfstring(L, "%s must be %s, got %s", name, expected, got));
}

int64_t sfl_value_int(lua_State *L, int arg, int idx, const char *name)
{
	if (!lua_isinteger(L, idx))
		sfl_raise_bad(L, arg, idx, name, "an integer");
	return (int64_t)lua_tointeger(L, idx);
}

int64_t sfl_value_int_range(lua_State *L, int arg, int idx, const char *name, int64_t lo, int64_t hi)
{
	int64_t v = sfl_value_int(L, arg, idx, name);

	if (v >= lo && v <= hi)
		return v;
	if (hi == INT64_MAX)
		luaL_argerror(L, arg, lua_pushfstring(L, "%s must be >= %I, got %I", name,
		                                      (lua_Integer)lo, (lua_Integer)v));
	return luaL_argerror(L, arg, lua_pushfstring(L, "%s must be %I..%I, got %I", name,
	                                             (lua_Integer)lo, (lua_Integer)hi,
	                                             (lua_Integer)v));
}

int64_t sfl_arg_int(lua_State *L, int arg, const char *name)
{
	return sfl_value_int(L, arg, arg, name);
}

int64_t sfl_arg_int_range(lua_State *L, int arg, const char *name, int64_t lo, int64_t hi)
{
	return sfl_value_int_range(L, arg, arg, name, lo, hi);
}

int64_t sfl_opt_int_range(lua_State *L, int arg, const char *name, int64_t dflt, int64_t lo, int64_t hi)
{
	if (lua_isnoneornil(L, arg))
		return dflt;
	return sfl_value_int_range(L, arg, arg, name, lo, hi);
}

const char *sfl_arg_string(lua_State *L, int arg, const char *name)
{
	if (lua_type(L, arg) != LUA_TSTRING)
		sfl_raise_bad(L, arg, arg, name, "a string");
	return lua_tostring(L, arg);
}

bool sfl_arg_bool(lua_State *L, int arg, const char *name)
{
	if (lua_type(L, arg) != LUA_TBOOLEAN)
		sfl_raise_bad(L, arg, arg, name, "a boolean");
	return lua_toboolean(L, arg);
}

/* ---- results ----------------------------------------------------------- */

int sfl_refuse(lua_State *L, const char *code, const sfl_extra *extras, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	lua_pushnil(L);
	lua_pushstring(L, code);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	if (!extras)
		return 3;
	while (extras[n].name)
		n++;
	lua_createtable(L, 0, n);
	for (int i = 0; i < n; i++) {
		lua_pushinteger(L, (lua_Integer)extras[i].value);
		lua_setfield(L, -2, extras[i].name);
	}
	return 4;
}

int sfl_refuse_mint(lua_State *L, sf_gen *gen, int rc, const sf_report *rep)
{
	const sf_layout *layout = sf_gen_layout(gen);
	const char *code = sf_code_name(rc);
	const sfl_extra wait_only[] = { { "wait_ns", 0 }, { NULL, 0 } };

	switch (rc) {
	case SF_E_CLOCK_WAIT: {
		const sfl_extra x[] = {
			{ "wait_ns", rep->wait_ns }, { "regression_ms", rep->regression_ms },
			{ "max_wait_ms", rep->max_wait_ms }, { "last_ms", rep->last_ms },
			{ "clock_ms", rep->clock_ms }, { NULL, 0 }
		};

		return sfl_refuse(L, code, x, "clock regressed by %I ms, within clock.max_wait_ms = %I: "
		                  "retry in %I us", (lua_Integer)rep->regression_ms,
		                  (lua_Integer)rep->max_wait_ms, (lua_Integer)(rep->wait_ns / 1000));
	}
	case SF_E_CLOCK_REGRESSED: {
		const sfl_extra x[] = {
			{ "wait_ns", rep->wait_ns }, { "regression_ms", rep->regression_ms },
			{ "max_wait_ms", rep->max_wait_ms }, { "last_ms", rep->last_ms },
			{ "clock_ms", rep->clock_ms }, { NULL, 0 }
		};

		return sfl_refuse(L, code, x, "clock regressed by %I ms, more than clock.max_wait_ms = %I",
		                  (lua_Integer)rep->regression_ms, (lua_Integer)rep->max_wait_ms);
	}
	case SF_E_SEQUENCE_EXHAUSTED: {
		const sfl_extra x[] = {
			{ "wait_ns", rep->wait_ns }, { "last_ms", rep->last_ms }, { NULL, 0 }
		};

		return sfl_refuse(L, code, x, "all %I sequence numbers of millisecond %I are used: "
		                  "retry in %I us", (lua_Integer)(1LL << layout->sequence_bits),
		                  (lua_Integer)rep->last_ms, (lua_Integer)(rep->wait_ns / 1000));
	}
	case SF_E_FENCED: {
		const sfl_extra x[] = {
			{ "wait_ns", 0 }, { "worker", rep->worker }, { "deadline_ns", rep->deadline_ns },
			{ "mono_ns", rep->mono_ns }, { NULL, 0 }
		};

		if (rep->worker < 0)
			return sfl_refuse(L, code, wait_only, "the lease was withdrawn as fenced; minting "
			                  "resumes on the next grant");
		return sfl_refuse(L, code, x, "the monotonic clock (%I ns) reached the fencing "
		                  "deadline of worker %d (%I ns)", (lua_Integer)rep->mono_ns,
		                  (int)rep->worker, (lua_Integer)rep->deadline_ns);
	}
	case SF_E_HWM_STALLED: {
		const sfl_extra x[] = {
			{ "wait_ns", 0 }, { "clock_ms", rep->clock_ms },
			{ "local_ceiling_ms", rep->local_ceiling_ms },
			{ "registry_ceiling_ms", rep->registry_ceiling_ms }, { NULL, 0 }
		};

		if (rep->local_ceiling_ms == INT64_MIN)
			return sfl_refuse(L, code, x, "no local high-water mark is published yet "
			                  "(a keeper step or gen:set_ceiling('local', ms) publishes one)");
		if (rep->registry_ceiling_ms == INT64_MAX)
			return sfl_refuse(L, code, x, "the clock (%I ms) reached the durable local "
			                  "high-water mark (%I ms)", (lua_Integer)rep->clock_ms,
			                  (lua_Integer)rep->local_ceiling_ms);
		return sfl_refuse(L, code, x, "the clock (%I ms) reached the durable high-water mark "
		                  "(local %I ms, registry %I ms)", (lua_Integer)rep->clock_ms,
		                  (lua_Integer)rep->local_ceiling_ms, (lua_Integer)rep->registry_ceiling_ms);
	}
	case SF_E_NO_LEASE:
		return sfl_refuse(L, code, wait_only, "no worker ID is granted to this generator yet");
	case SF_E_PARKED:
		return sfl_refuse(L, code, wait_only, "the generator is parked until the next grant");
	case SF_E_TIMESTAMP_OVERFLOW: {
		const sfl_extra x[] = { { "wait_ns", 0 }, { "clock_ms", rep->clock_ms }, { NULL, 0 } };

		return sfl_refuse(L, code, x, "the layout's time range (epoch_ms %I, timestamp_bits %d) "
		                  "is used up", (lua_Integer)layout->epoch_ms, (int)layout->timestamp_bits);
	}
	default:
		return sfl_refuse(L, code, wait_only, "%s", sf_code_text(rc));
	}
}

const char *sfl_errno_text(int err)
{
	return err != 0 ? strerror(err) : "no system error reported";
}

void sfl_set_int(lua_State *L, const char *key, int64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, key);
}

void sfl_set_bool(lua_State *L, const char *key, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, key);
}

/* ---- classes ----------------------------------------------------------- */

void sfl_setfuncs_once(lua_State *L, const luaL_Reg *const *lists, const char *owner)
{
	for (size_t i = 0; lists[i]; i++) {
		for (const luaL_Reg *r = lists[i]; r->name; r++) {
			if (lua_getfield(L, -1, r->name) != LUA_TNIL)
				luaL_error(L, "snowflake.core: %s.%s is defined twice", owner, r->name);
			lua_pop(L, 1);
		}
		luaL_setfuncs(L, lists[i], 0);
	}
}

void sfl_class_register(lua_State *L, const char *name, const luaL_Reg *meta,
                        const luaL_Reg *const *methods)
{
	luaL_newmetatable(L, name);
	luaL_setfuncs(L, meta, 0);
	lua_newtable(L);
	sfl_setfuncs_once(L, methods, name);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

const sf_clock *sfl_check_clock(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SFL_CLOCK_MT);
}
