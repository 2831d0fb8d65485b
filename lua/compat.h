/*
 * Lua 5.3 / 5.4 differences used by snowflake.core, and nothing else.
 *
 * The module is built from one source for both versions (HAProxy 2.6 links
 * Lua 5.3; the 5.4 build serves the busted specs and other hosts). Every
 * object of the module carries at most one user value, which is what 5.3
 * offers, so the wrappers take no user-value index.
 */
#ifndef SNOWFLAKE_LUA_COMPAT_H
#define SNOWFLAKE_LUA_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 504

/* A full userdata of `size` bytes with one user value (nil until set). */
#define sfl_newuserdata(L, size)  lua_newuserdatauv((L), (size), 1)
/* A full userdata used as a scratch buffer: no user value needed. */
#define sfl_newbuffer(L, size)    lua_newuserdatauv((L), (size), 0)
/* Pops a value and makes it the user value of the userdata at idx. */
#define sfl_setuservalue(L, idx)  ((void)lua_setiuservalue((L), (idx), 1))

#elif LUA_VERSION_NUM == 503

#define sfl_newuserdata(L, size)  lua_newuserdata((L), (size))
#define sfl_newbuffer(L, size)    lua_newuserdata((L), (size))
#define sfl_setuservalue(L, idx)  lua_setuservalue((L), (idx))

#else
#error "snowflake.core needs the headers of Lua 5.3 or 5.4"
#endif

#endif /* SNOWFLAKE_LUA_COMPAT_H */
