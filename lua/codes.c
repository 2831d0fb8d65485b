/*
 * snowflake.core's codes: core.codes = {name = negative code} and
 * core.code_name, the core's sf_code_name() (core/sf_codes.c).
 */
#include <stdint.h>

#include "classes.h"
#include "helpers.h"

/* core.code_name(rc) -> "ok", a code's snake_case name, or "unknown_error" */
static int l_code_name(lua_State *L)
{
	int64_t rc = sfl_arg_int(L, 1, "rc");

	/* anything outside the codes (even beyond an int) is "unknown_error" */
	lua_pushstring(L, sf_code_name(rc < SF_CODE_MIN || rc > 0 ? 1 : (int)rc));
	return 1;
}

void sfl_codes_push(lua_State *L)
{
	lua_createtable(L, 0, -SF_CODE_MIN);
	for (int code = -1; code >= SF_CODE_MIN; code--) {
		lua_pushinteger(L, code);
		lua_setfield(L, -2, sf_code_name(code));
	}
}

const luaL_Reg sfl_codes_functions[] = {
	{ "code_name", l_code_name },
	{ NULL, NULL }
};
