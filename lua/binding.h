/*
 * What the two sources of snowflake.core share. Not installed.
 */
#ifndef SNOWFLAKE_LUA_BINDING_H
#define SNOWFLAKE_LUA_BINDING_H

#include <stdbool.h>
#include <stdint.h>

#include "compat.h"
#include "snowflake.h"

#define SFL_GEN_MT "snowflake.gen"

/* A named integer of a refusal's extras table; a NULL name ends a list. */
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
/* A mint's refusal (rc from sf_next & co.): nil, code, detail, extras, all
 * from the report the core filled when it refused; extras has wait_ns
 * always, and the figures the detail quotes. Returns 4. */
int sfl_refuse_mint(lua_State *L, sf_gen *gen, int rc, const sf_report *rep);

/* The generator's userdata, checked: raises unless arg is a live "snowflake.gen". */
sf_gen *sfl_check_gen(lua_State *L, int arg);
/* Registers the metatable `name`: metamethods `meta`, __index = `methods`. */
void sfl_class_register(lua_State *L, const char *name, const luaL_Reg *meta,
                        const luaL_Reg *methods);
/* Adds the lease functions to the module table on top of the stack and
 * registers the "snowflake.lease" class. */
void sfl_lease_open(lua_State *L);
/* Adds the serving helpers (counters, settings, gen:fetch_id, gen:next_text,
 * gen:probe) to the module table on top of the stack. */
void sfl_serve_open(lua_State *L);

#endif
