/*
 * What the two sources of snowflake.core share. Not installed.
 */
#ifndef SNOWFLAKE_LUA_BINDING_H
#define SNOWFLAKE_LUA_BINDING_H

#include <stdbool.h>

#include "compat.h"
#include "snowflake.h"

/* The generator's userdata, checked: raises unless arg is a live "snowflake.gen". */
sf_gen *sfl_check_gen(lua_State *L, int arg);
/* Adds the lease functions to the module table on top of the stack and
 * registers the "snowflake.lease" class. */
void sfl_lease_open(lua_State *L);

#endif
