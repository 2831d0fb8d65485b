/*
 * snowflake.core's keeper class, "snowflake.keeper" (core/snowflake.h's
 * sf_keeper): the local high-water mark kept ahead of the clock, off the
 * minting path; gen:keeper makes one. Also the mark files themselves:
 * core.hwm_load, core.hwm_store.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "classes.h"
#include "helpers.h"

/* The three-value refusals, in the one shape. */
#define refuse(L, code, ...) sfl_refuse((L), (code), NULL, __VA_ARGS__)

typedef struct lkeeper {
	sf_keeper *keeper; /* NULL when creation failed or after __gc */
	uint32_t   worker;
	char       dir[];  /* for messages; the core keeps its own copy */
} lkeeper;

static lkeeper *check_keeper(lua_State *L, int idx)
{
	lkeeper *k = luaL_checkudata(L, idx, SFL_KEEPER_MT);

	luaL_argcheck(L, k->keeper != NULL, idx, "the keeper was freed");
	return k;
}

/*
 * gen:keeper{dir=, worker=, ahead_ms=, refresh_ms=} -> keeper | nil, code, detail
 * A keeper storing this generator's local high-water mark under dir (a
 * string) for worker (0..65535), now + ahead_ms (>= 1) whenever less than
 * refresh_ms (1..ahead_ms) is left. All four keys are required; others
 * raise. Refuses state_io when dir is not a directory, worker_out_of_range
 * for a worker outside the layout. The keeper keeps the generator alive.
 */
static int l_gen_keeper(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	sf_keeper_config cfg = { NULL, 0, 0, 0 };
	bool have_worker = false;
	size_t dir_len = 0;
	lkeeper *k;
	int rc, err;

	if (lua_type(L, 2) != LUA_TTABLE)
		sfl_raise_bad(L, 2, 2, "keeper config", "a table {dir=, worker=, ahead_ms=, refresh_ms=}");
	lua_pushnil(L);
	while (lua_next(L, 2) != 0) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

		if (key && strcmp(key, "dir") == 0) {
			if (lua_type(L, -1) != LUA_TSTRING)
				sfl_raise_bad(L, 2, -1, "keeper.dir", "a string");
			cfg.dir = lua_tolstring(L, -1, &dir_len); /* anchored by the table */
		} else if (key && strcmp(key, "worker") == 0) {
			cfg.worker = (uint32_t)sfl_value_int_range(L, 2, -1, "keeper.worker", 0, SFL_WORKER_MAX);
			have_worker = true;
		} else if (key && strcmp(key, "ahead_ms") == 0) {
			cfg.ahead_ms = sfl_value_int_range(L, 2, -1, "keeper.ahead_ms", 1, INT64_MAX);
		} else if (key && strcmp(key, "refresh_ms") == 0) {
			cfg.refresh_ms = sfl_value_int_range(L, 2, -1, "keeper.refresh_ms", 1, INT64_MAX);
		} else if (key) {
			luaL_argerror(L, 2, lua_pushfstring(L, "unknown key 'keeper.%s' (expected dir, "
			              "worker, ahead_ms, refresh_ms)", key));
		} else {
			luaL_argerror(L, 2, lua_pushfstring(L, "keeper keys must be strings, got %s",
			                                    luaL_typename(L, -2)));
		}
		lua_pop(L, 1);
	}
	luaL_argcheck(L, cfg.dir != NULL, 2, "keeper.dir is required");
	luaL_argcheck(L, have_worker, 2, "keeper.worker is required");
	luaL_argcheck(L, cfg.ahead_ms != 0, 2, "keeper.ahead_ms is required");
	luaL_argcheck(L, cfg.refresh_ms != 0, 2, "keeper.refresh_ms is required");
	if (cfg.refresh_ms > cfg.ahead_ms)
		luaL_argerror(L, 2, lua_pushfstring(L, "keeper.refresh_ms must be 1..keeper.ahead_ms "
		              "(%I), got %I", (lua_Integer)cfg.ahead_ms, (lua_Integer)cfg.refresh_ms));

	k = sfl_newuserdata(L, sizeof *k + dir_len + 1);
	k->keeper = NULL;
	k->worker = cfg.worker;
	memcpy(k->dir, cfg.dir, dir_len + 1);
	luaL_setmetatable(L, SFL_KEEPER_MT);
	lua_pushvalue(L, 1);
	sfl_setuservalue(L, -2);
	errno = 0;
	rc = sf_keeper_new(gen, &cfg, &k->keeper);
	err = errno;
	switch (rc) {
	case SF_OK:
		return 1;
	case SF_E_STATE_IO:
		return refuse(L, sf_code_name(rc), "keeper.dir '%s' is not a usable directory: %s",
		              k->dir, err != 0 ? strerror(err) : "not a directory");
	case SF_E_WORKER_RANGE:
		return refuse(L, sf_code_name(rc), "keeper.worker %I is outside 0..%I "
		              "(layout.worker_bits = %d)", (lua_Integer)cfg.worker,
		              (lua_Integer)((1LL << sf_gen_layout(gen)->worker_bits) - 1),
		              (int)sf_gen_layout(gen)->worker_bits);
	default:
		return refuse(L, sf_code_name(rc), "cannot create the keeper: %s", sf_code_text(rc));
	}
}

/* The refusal of a high-water mark file operation, with the path and errno. */
static int refuse_hwm(lua_State *L, int rc, int err, const char *dir, uint32_t worker)
{
	const char *code = sf_code_name(rc);

	switch (rc) {
	case SF_E_NOT_FOUND:
		return refuse(L, code, "no high-water mark stored for worker %d under '%s'",
		              (int)worker, dir);
	case SF_E_STATE_IO:
		return refuse(L, code, "the high-water mark of worker %d under '%s' cannot be read "
		              "or written: %s", (int)worker, dir, sfl_errno_text(err));
	case SF_E_STATE_CORRUPT:
		return refuse(L, code, "the high-water mark file of worker %d under '%s' is corrupt",
		              (int)worker, dir);
	case SF_E_INVALID:
		return refuse(L, code, "the high-water mark path under '%s' is too long", dir);
	default:
		return refuse(L, code, "%s", sf_code_text(rc));
	}
}

/*
 * keeper:step() -> stored | nil, code, detail
 * One step: stores now + ahead_ms when less than refresh_ms is left, and
 * publishes the durable mark as the generator's local ceiling. stored is
 * true when a file was written. On a failed store the old ceiling stays.
 * Call keeper:start_mark() first on start: the first step does not read
 * the file, and would otherwise store below a mark already there.
 */
static int l_keeper_step(lua_State *L)
{
	lkeeper *k = check_keeper(L, 1);
	bool stored = false;
	int rc, err;

	errno = 0;
	rc = sf_keeper_step(k->keeper, &stored);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, k->dir, k->worker);
	lua_pushboolean(L, stored);
	return 1;
}

/* keeper:mark() -> the durable mark (Unix ms), math.mininteger before any */
static int l_keeper_mark(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sf_keeper_mark(check_keeper(L, 1)->keeper));
	return 1;
}

/*
 * keeper:start_mark() -> mark_ms, found | nil, code, detail
 * The mark a start must wait past: the stored one (found = true, and the
 * keeper will never store below it), or now + ahead_ms when no file exists
 * (found = false). A corrupt or unreadable file is refused.
 */
static int l_keeper_start_mark(lua_State *L)
{
	lkeeper *k = check_keeper(L, 1);
	int64_t mark = 0;
	bool found = false;
	int rc, err;

	errno = 0;
	rc = sf_keeper_start_mark(k->keeper, &mark, &found);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, k->dir, k->worker);
	lua_pushinteger(L, (lua_Integer)mark);
	lua_pushboolean(L, found);
	return 2;
}

static int keeper_gc(lua_State *L)
{
	lkeeper *k = luaL_checkudata(L, 1, SFL_KEEPER_MT);

	sf_keeper_free(k->keeper);
	k->keeper = NULL;
	return 0;
}

static int keeper_tostring(lua_State *L)
{
	lkeeper *k = luaL_checkudata(L, 1, SFL_KEEPER_MT);

	if (!k->keeper)
		lua_pushfstring(L, SFL_KEEPER_MT " (freed): %p", (void *)k);
	else
		lua_pushfstring(L, SFL_KEEPER_MT " (worker %d under '%s', mark %I): %p", (int)k->worker,
		                k->dir, (lua_Integer)sf_keeper_mark(k->keeper), (void *)k);
	return 1;
}

/* ---- high-water mark files ------------------------------------------------ */

/* core.hwm_load(dir, worker) -> mark_ms | nil, code, detail (not_found, state_io, ...) */
static int l_hwm_load(lua_State *L)
{
	const char *dir = sfl_arg_string(L, 1, "dir");
	uint32_t worker = (uint32_t)sfl_arg_int_range(L, 2, "worker", 0, SFL_WORKER_MAX);
	int64_t mark = 0;
	int rc, err;

	errno = 0;
	rc = sf_hwm_load(dir, worker, &mark);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, dir, worker);
	lua_pushinteger(L, (lua_Integer)mark);
	return 1;
}

/*
 * core.hwm_store(dir, worker, mark_ms) -> true | nil, code, detail
 * Atomic and durable (temp file, fsync, rename, fsync of dir). mark_ms >= 0.
 */
static int l_hwm_store(lua_State *L)
{
	const char *dir = sfl_arg_string(L, 1, "dir");
	uint32_t worker = (uint32_t)sfl_arg_int_range(L, 2, "worker", 0, SFL_WORKER_MAX);
	int64_t mark = sfl_arg_int_range(L, 3, "mark_ms", 0, INT64_MAX);
	int rc, err;

	errno = 0;
	rc = sf_hwm_store(dir, worker, mark);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, dir, worker);
	lua_pushboolean(L, 1);
	return 1;
}

const luaL_Reg sfl_keeper_methods[] = {
	{ "step", l_keeper_step },
	{ "mark", l_keeper_mark },
	{ "start_mark", l_keeper_start_mark },
	{ NULL, NULL }
};

const luaL_Reg sfl_keeper_meta[] = {
	{ "__gc", keeper_gc },
	{ "__tostring", keeper_tostring },
	{ NULL, NULL }
};

/* a generator's method: the keeper of its local mark */
const luaL_Reg sfl_keeper_gen_methods[] = {
	{ "keeper", l_gen_keeper },
	{ NULL, NULL }
};

const luaL_Reg sfl_keeper_functions[] = {
	{ "hwm_load", l_hwm_load },
	{ "hwm_store", l_hwm_store },
	{ NULL, NULL }
};
