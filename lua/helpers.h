/*
 * snowflake.core's helpers: what every class file of the binding shares,
 * and all it may use besides the core's headers (core/snowflake.h,
 * core/sf_lease.h) and compat.h. Not installed.
 *
 *  - arguments: a bad argument raises, naming it and the value it got
 *    ("layout.worker_bits must be 1..16, got float 1.5"); integers must be
 *    Lua integers, never floats or numeric strings;
 *  - the one refusal shape of runtime failures, sfl_refuse;
 *  - class registration and the checks of the userdata several classes take
 *    (a generator, a manual clock);
 *  - small pushes (sfl_set_int, sfl_set_bool).
 *
 * Names: sfl_ for what is shared; a class file keeps the rest static.
 */
#ifndef SNOWFLAKE_LUA_HELPERS_H
#define SNOWFLAKE_LUA_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include "compat.h"
#include "snowflake.h"

_Static_assert(sizeof(lua_Integer) >= sizeof(int64_t), "IDs need 64-bit Lua integers");

/* Metatable names, one per class. */
#define SFL_GEN_MT    "snowflake.gen"
#define SFL_CLOCK_MT  "snowflake.clock"
#define SFL_KEEPER_MT "snowflake.keeper"
#define SFL_LEASE_MT  "snowflake.lease"
#define SFL_ADMIN_MT  "snowflake.lease_admin"

#define SFL_NS_PER_MS 1000000LL
/* Fixed bounds of a worker ID and a sequence number, whatever the layout
 * (the layout's own bounds are the core's to judge, as refusals). */
#define SFL_WORKER_MAX   ((1 << SF_WORKER_BITS_MAX) - 1)
#define SFL_SEQUENCE_MAX ((1 << SF_SEQUENCE_BITS_MAX) - 1)

/* ---- arguments (raise on a bad one) ----------------------------------- */

/*
 * Raises "bad argument #arg to 'f' (<name> must be <expected>, got <what>)".
 * idx is the offending value's slot: arg itself, or a table field pushed on
 * top. Numbers and strings are shown with their value (float 1.5,
 * string '10').
 */
int sfl_raise_bad(lua_State *L, int arg, int idx, const char *name, const char *expected);
/* The integer at idx (a table field for argument arg), or a raise naming
 * it: no floats, even integral ones, and no numeric strings. */
int64_t sfl_value_int(lua_State *L, int arg, int idx, const char *name);
/* As sfl_value_int, within lo..hi (hi = INT64_MAX: no upper bound). */
int64_t sfl_value_int_range(lua_State *L, int arg, int idx, const char *name, int64_t lo, int64_t hi);
/* The same for argument arg itself. */
int64_t sfl_arg_int(lua_State *L, int arg, const char *name);
int64_t sfl_arg_int_range(lua_State *L, int arg, const char *name, int64_t lo, int64_t hi);
/* As sfl_arg_int_range, dflt when the argument is absent or nil. */
int64_t sfl_opt_int_range(lua_State *L, int arg, const char *name, int64_t dflt, int64_t lo, int64_t hi);
/* A string argument (not a number converted to one). */
const char *sfl_arg_string(lua_State *L, int arg, const char *name);
/* A boolean argument (not any truthy value). */
bool sfl_arg_bool(lua_State *L, int arg, const char *name);

/* ---- results ------------------------------------------------------------ */

/* A named integer of a refusal's extras; a NULL name ends a list. */
typedef struct sfl_extra {
	const char *name;
	int64_t     value;
} sfl_extra;

/*
 * The one refusal shape: pushes nil, code, detail (a lua_pushfstring format)
 * and returns 3; with extras (not NULL), also a table {name = value, ...}
 * and returns 4. Runtime failures only: a bad argument raises instead.
 */
int sfl_refuse(lua_State *L, const char *code, const sfl_extra *extras, const char *fmt, ...);
/*
 * A mint's refusal (rc from sf_next, sf_reserve, sf_next_batch*, sf_gen_probe):
 * nil, code, detail, extras, all from the report the core filled when it
 * refused (never from the generator read again: a grant or a ceiling may
 * have moved since). extras has wait_ns always (0 when there is nothing to
 * wait for) and the figures the detail quotes. Returns 4.
 */
int sfl_refuse_mint(lua_State *L, sf_gen *gen, int rc, const sf_report *rep);

/* strerror(err), or a sentence saying no system error was reported (err 0) */
const char *sfl_errno_text(int err);

/* core.c: whether this object stays mapped until the process ends (RTLD_NODELETE); an atexit
 * handler in it is safe only then. */
bool sfl_module_pinned(void);
void sfl_set_int(lua_State *L, const char *key, int64_t v);
void sfl_set_bool(lua_State *L, const char *key, bool v);

/* ---- classes ------------------------------------------------------------ */

/* Sets every function of the lists (NULL-terminated) into the table on top
 * of the stack, in order; a name already there raises, naming owner.name. */
void sfl_setfuncs_once(lua_State *L, const luaL_Reg *const *lists, const char *owner);
/*
 * Registers the metatable `name`: the metamethods `meta`, and __index = one
 * table of every list in `methods` (NULL-terminated), in that order. A
 * method defined by two lists raises: each name has one home.
 */
void sfl_class_register(lua_State *L, const char *name, const luaL_Reg *meta,
                        const luaL_Reg *const *methods);

/* A generator's userdata ("snowflake.gen"): gen.c makes them. */
typedef struct sfl_gen {
	sf_gen *gen;    /* NULL when creation failed or after __gc */
	bool    shared; /* the process generator: never freed by a handle */
} sfl_gen;

/* The generator at idx; raises unless it is a live "snowflake.gen". Inline:
 * every gen:next pays for it. */
static inline sf_gen *sfl_check_gen(lua_State *L, int idx)
{
	sfl_gen *g = luaL_checkudata(L, idx, SFL_GEN_MT);

	luaL_argcheck(L, g->gen != NULL, idx, "the generator was freed");
	return g->gen;
}
/* The clock of the manual clock at idx ("snowflake.clock", clock.c: every
 * such userdata starts with its sf_clock); raises otherwise. */
const sf_clock *sfl_check_clock(lua_State *L, int idx);

#endif /* SNOWFLAKE_LUA_HELPERS_H */
