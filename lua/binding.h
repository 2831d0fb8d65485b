/*
 * What the two sources of snowflake.core share. Not installed.
 */
#ifndef SNOWFLAKE_LUA_BINDING_H
#define SNOWFLAKE_LUA_BINDING_H

#include <stdbool.h>

#include "compat.h"
#include "snowflake.h"

#define SFL_GEN_MT "snowflake.gen"

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
