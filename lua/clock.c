/*
 * snowflake.core's clocks: the manual clock class, "snowflake.clock" (a
 * test clock for core.new that reads exactly what it was told), and the
 * real clocks a generator mints with (core.wall_ns, core.mono_ns,
 * core.clock_source) and the kernel's discipline of them (core.discipline).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "classes.h"
#include "helpers.h"

/* The three-value refusals, in the one shape. */
#define refuse(L, code, ...) sfl_refuse((L), (code), NULL, __VA_ARGS__)

/* A manual clock: the core reads the two atomics through clock.ctx. The
 * sf_clock comes first: sfl_check_clock (helpers.c) hands it out. */
typedef struct lclock {
	sf_clock        clock;
	_Atomic int64_t wall_ns;
	_Atomic int64_t mono_ns;
} lclock;

_Static_assert(offsetof(lclock, clock) == 0, "sfl_check_clock reads the sf_clock at offset 0");

/* ---- the manual clock ------------------------------------------------- */

static int64_t lclock_wall_ns(void *ctx)
{
	return atomic_load_explicit(&((lclock *)ctx)->wall_ns, memory_order_acquire);
}

static int64_t lclock_mono_ns(void *ctx)
{
	return atomic_load_explicit(&((lclock *)ctx)->mono_ns, memory_order_acquire);
}

static lclock *check_clock(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SFL_CLOCK_MT);
}

/*
 * core.manual_clock(wall_ns, mono_ns) -> clock
 * A test clock for core.new: it reads exactly what it was told (Unix ns for
 * wall, any origin for mono) and moves only through its methods. Nothing to
 * free: a generator using it keeps it alive.
 */
static int l_manual_clock(lua_State *L)
{
	int64_t wall = sfl_arg_int(L, 1, "wall_ns");
	int64_t mono = sfl_arg_int(L, 2, "mono_ns");
	lclock *c = sfl_newuserdata(L, sizeof *c);

	c->clock.wall_ns = lclock_wall_ns;
	c->clock.mono_ns = lclock_mono_ns;
	c->clock.ctx = c;
	atomic_init(&c->wall_ns, wall);
	atomic_init(&c->mono_ns, mono);
	luaL_setmetatable(L, SFL_CLOCK_MT);
	return 1;
}

/* clock:set_wall(ns): the wall clock reads ns (it may step back). */
static int l_clock_set_wall(lua_State *L)
{
	lclock *c = check_clock(L, 1);

	atomic_store_explicit(&c->wall_ns, sfl_arg_int(L, 2, "ns"), memory_order_release);
	return 0;
}

/* clock:set_mono(ns): the monotonic clock reads ns. */
static int l_clock_set_mono(lua_State *L)
{
	lclock *c = check_clock(L, 1);

	atomic_store_explicit(&c->mono_ns, sfl_arg_int(L, 2, "ns"), memory_order_release);
	return 0;
}

/* clock:advance(ns): both clocks move forward by ns >= 0. */
static int l_clock_advance(lua_State *L)
{
	lclock *c = check_clock(L, 1);
	int64_t ns = sfl_arg_int_range(L, 2, "ns", 0, INT64_MAX);

	atomic_fetch_add_explicit(&c->wall_ns, ns, memory_order_acq_rel);
	atomic_fetch_add_explicit(&c->mono_ns, ns, memory_order_acq_rel);
	return 0;
}

/* clock:wall() -> ns */
static int l_clock_wall(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lclock_wall_ns(check_clock(L, 1)));
	return 1;
}

/* clock:mono() -> ns */
static int l_clock_mono(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lclock_mono_ns(check_clock(L, 1)));
	return 1;
}

static int clock_tostring(lua_State *L)
{
	lclock *c = check_clock(L, 1);

	lua_pushfstring(L, SFL_CLOCK_MT " (wall %I ns, mono %I ns): %p",
	                (lua_Integer)lclock_wall_ns(c), (lua_Integer)lclock_mono_ns(c), (void *)c);
	return 1;
}

/* ---- the real clocks --------------------------------------------------- */

/*
 * core.discipline() -> {synchronised=, max_error_us=, est_error_us=, state=,
 * offset_us=} | nil, code, detail
 * The kernel's clock discipline (adjtimex, read only). Reports; the policy
 * decides.
 */
static int l_discipline(lua_State *L)
{
	sf_discipline d;
	int rc, err;

	errno = 0;
	rc = sf_discipline_read(&d);
	err = errno;
	if (rc != SF_OK)
		return refuse(L, sf_code_name(rc), "adjtimex cannot read the clock discipline: %s",
		              sfl_errno_text(err));
	lua_createtable(L, 0, 5);
	sfl_set_bool(L, "synchronised", d.synchronised);
	sfl_set_int(L, "max_error_us", d.max_error_us);
	sfl_set_int(L, "est_error_us", d.est_error_us);
	sfl_set_int(L, "state", d.state);
	sfl_set_int(L, "offset_us", d.offset_us);
	return 1;
}

/* core.wall_ns() -> CLOCK_REALTIME in ns */
static int l_wall_ns(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sf_clock_wall_ns(NULL));
	return 1;
}

/* core.mono_ns() -> CLOCK_MONOTONIC in ns */
static int l_mono_ns(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sf_clock_mono_ns(NULL));
	return 1;
}

/*
 * core.clock_source([want]) -> "tsc" | "clock_gettime", why_not
 * What generators on the real clocks mint with; why_not is "" while the TSC
 * is used, else why not (see sf_tsc.c). want = "clock_gettime" keeps the TSC
 * out of the process from then on; "auto" changes nothing.
 */
static int l_clock_source(lua_State *L)
{
	static const char *const wants[] = { "auto", "clock_gettime", NULL };
	const char *why_not;

	if (!lua_isnoneornil(L, 1) && luaL_checkoption(L, 1, NULL, wants) == 1)
		sf_clock_source_avoid_tsc();
	lua_pushstring(L, sf_clock_source(&why_not));
	lua_pushstring(L, why_not);
	return 2;
}

const luaL_Reg sfl_clock_methods[] = {
	{ "set_wall", l_clock_set_wall },
	{ "set_mono", l_clock_set_mono },
	{ "advance", l_clock_advance },
	{ "wall", l_clock_wall },
	{ "mono", l_clock_mono },
	{ NULL, NULL }
};

const luaL_Reg sfl_clock_meta[] = {
	{ "__tostring", clock_tostring },
	{ NULL, NULL }
};

const luaL_Reg sfl_clock_functions[] = {
	{ "manual_clock", l_manual_clock },
	{ "discipline", l_discipline },
	{ "wall_ns", l_wall_ns },
	{ "mono_ns", l_mono_ns },
	{ "clock_source", l_clock_source },
	{ NULL, NULL }
};
