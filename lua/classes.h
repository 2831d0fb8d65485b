/*
 * What each class file of snowflake.core exports to the registration file
 * (core.c), and nothing else: method and metamethod lists, module
 * functions. A class file includes this header only to have its own
 * definitions checked against it; it calls nothing of another class.
 *
 * The generator's methods come from three files (gen.c, keeper.c for
 * gen:keeper, serve.c for the HTTP helpers); core.c builds the one
 * method table from them, so nothing patches a class after the fact.
 */
#ifndef SNOWFLAKE_LUA_CLASSES_H
#define SNOWFLAKE_LUA_CLASSES_H

#include "compat.h"

/* gen.c: the generator ("snowflake.gen"); core.new, core.process_generator */
extern const luaL_Reg sfl_gen_methods[], sfl_gen_meta[], sfl_gen_functions[];
/* clock.c: the manual clock ("snowflake.clock"); the real clocks and their
 * discipline */
extern const luaL_Reg sfl_clock_methods[], sfl_clock_meta[], sfl_clock_functions[];
/* keeper.c: the keeper ("snowflake.keeper"), gen:keeper; core.hwm_load,
 * core.hwm_store */
extern const luaL_Reg sfl_keeper_methods[], sfl_keeper_meta[], sfl_keeper_gen_methods[],
                      sfl_keeper_functions[];
/* lease.c: the lease ("snowflake.lease") and its admin requests
 * ("snowflake.lease_admin"); core.lease_start & co., the log queue, the
 * library-mode helpers (sleep_ms, mkdir_p) */
extern const luaL_Reg sfl_lease_methods[], sfl_lease_meta[], sfl_admin_methods[], sfl_admin_meta[],
                      sfl_lease_functions[];
/* codes.c: core.code_name; sfl_codes_push pushes the core.codes table */
extern const luaL_Reg sfl_codes_functions[];
void sfl_codes_push(lua_State *L);
/* serve.c: what the HTTP service needs: gen:fetch_id, gen:next_text,
 * gen:probe; counters, settings, hostname, process_once */
extern const luaL_Reg sfl_serve_gen_methods[], sfl_serve_functions[];

#endif /* SNOWFLAKE_LUA_CLASSES_H */
