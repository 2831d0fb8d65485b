/*
 * snowflake.core: the Lua binding of the edge-snowflake core
 * (core/snowflake.h, core/sf_lease.h). This file only registers; it is the
 * module's one export, luaopen_snowflake_core (built -fvisibility=hidden and
 * linked --exclude-libs,ALL).
 *
 * Thin by design: a function checks its arguments, makes one core call and
 * pushes the result. A bad argument raises, naming it and the value (wrong
 * type, a float or a string where an integer is needed, an unknown key, a
 * value outside a fixed range). A runtime failure never raises: it returns
 * nil, code, detail (helpers.h's sfl_refuse), code being sf_code_name()
 * (stable snake_case, used verbatim by the HTTP layer and the metrics) and
 * detail a sentence with the figures the core reported when it refused. A
 * mint's refusal (gen:next, next_ids, reserve, next_text, probe,
 * start_check) adds a fourth value, always: a table of named integers with
 * at least wait_ns. Values whose validity depends on the layout (widths, a
 * worker ID against worker_bits) are the core's to judge, so they come back
 * as refusals.
 *
 * Integer arguments must be Lua integers (math.type "integer"): a float ID
 * or nanosecond time above 2^53 has already lost precision. IDs are always
 * returned as integers.
 *
 * The files, one class each (luv's layout), using only helpers.c and the
 * core's headers, never each other:
 *   helpers.c  argument checks, the refusal shape, class registration
 *   gen.c      "snowflake.gen": core.new, core.process_generator, minting
 *   keeper.c   "snowflake.keeper": gen:keeper; core.hwm_load, core.hwm_store
 *   clock.c    "snowflake.clock": core.manual_clock; the real clocks
 *   lease.c    "snowflake.lease", "snowflake.lease_admin": the ZooKeeper
 *              lease; core.logs, core.sleep_ms, core.mkdir_p
 *   serve.c    the HTTP paths: gen:fetch_id, gen:next_text, gen:probe;
 *              counters, settings
 *   codes.c    core.codes, core.code_name
 *
 * One source for Lua 5.3 (HAProxy 2.6) and 5.4; version differences live in
 * compat.h. The module is not linked to a liblua: the host provides the API.
 * Loading it again in another Lua state of the process shares only the
 * process-wide statics (the process generator and lease, counters, settings).
 */
#include <dlfcn.h>

#include "classes.h"
#include "helpers.h"

#define SFL_VERSION "0.1.0"

__attribute__((visibility("default"))) int luaopen_snowflake_core(lua_State *L);

/* The generator's one method table, in this order: its own methods, then
 * the keeper's gen:keeper, then the HTTP paths' (a name defined twice
 * raises at load, see sfl_class_register). */
static const luaL_Reg *const gen_methods[] = {
	sfl_gen_methods, sfl_keeper_gen_methods, sfl_serve_gen_methods, NULL
};
static const luaL_Reg *const clock_methods[] = { sfl_clock_methods, NULL };
static const luaL_Reg *const keeper_methods[] = { sfl_keeper_methods, NULL };
static const luaL_Reg *const lease_methods[] = { sfl_lease_methods, NULL };
static const luaL_Reg *const admin_methods[] = { sfl_admin_methods, NULL };

static const luaL_Reg *const module_functions[] = {
	sfl_gen_functions, sfl_clock_functions, sfl_keeper_functions, sfl_lease_functions,
	sfl_serve_functions, sfl_codes_functions, NULL
};

/*
 * require "snowflake.core" -> the module table: the functions of every
 * class file, codes = {name = negative code}, VERSION.
 */
/* The lease's thread and the ZooKeeper client's run this object's code (and
 * the libraries it loaded) until the process ends. Lua unloads a C module
 * when its state closes: HAProxy closes its Lua states when a worker exits
 * (a reload's old worker, a soft stop), which unmapped the code under those
 * threads (the old worker died of SIGSEGV after every reload). Loaded once
 * more with RTLD_NODELETE, the object stays mapped whatever dlclose Lua
 * calls. */
static int pin_module(void)
{
	static int pinned;
	Dl_info self;

	if (pinned || !dladdr((void *)&luaopen_snowflake_core, &self) || !self.dli_fname)
		return pinned;
	/* RTLD_NOLOAD: only the object already loaded, with one more reference
	 * that is never dropped */
	if (dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE))
		pinned = 1;
	return pinned;
}

bool sfl_module_pinned(void)
{
	return pin_module() != 0;
}

int luaopen_snowflake_core(lua_State *L)
{
	/* 0. a module built for another Lua (5.4 headers in HAProxy's 5.3)
	 * stops here, saying so */
	luaL_checkversion(L);
	int pinned = pin_module();
	/* 1. classes first, each metatable complete before anything can reach
	 * it: nothing below or later adds a method to a class */
	sfl_class_register(L, SFL_GEN_MT, sfl_gen_meta, gen_methods);
	sfl_class_register(L, SFL_CLOCK_MT, sfl_clock_meta, clock_methods);
	sfl_class_register(L, SFL_KEEPER_MT, sfl_keeper_meta, keeper_methods);
	sfl_class_register(L, SFL_LEASE_MT, sfl_lease_meta, lease_methods);
	sfl_class_register(L, SFL_ADMIN_MT, sfl_admin_meta, admin_methods);

	/* 2. then the module table: functions (the file order above; a name
	 * defined twice raises), the codes, the version */
	lua_newtable(L);
	sfl_setfuncs_once(L, module_functions, "snowflake.core");
	sfl_codes_push(L);
	lua_setfield(L, -2, "codes");
	lua_pushliteral(L, SFL_VERSION);
	lua_setfield(L, -2, "VERSION");
	/* false: a process that unloads the module (HAProxy at a worker's
	 * exit) may crash under the lease's threads; haproxy.lua says so */
	lua_pushboolean(L, pinned);
	lua_setfield(L, -2, "module_pinned");
	return 1;
}
