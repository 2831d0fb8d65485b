/*
 * What the two fuzz targets of the HTTP arguments share: the parsers of
 * ?count= and /decode/<id> are Lua (lua/snowflake/http.lua, run by HAProxy's
 * Lua 5.3), so the targets embed a Lua 5.3 state, load that very file once
 * (HTTP_LUA, its path, set by tests/fuzz/fuzz.mk) and call into it; the
 * reference parsers they compare with are C (and give libFuzzer its
 * coverage: liblua is not instrumented).
 */
#ifndef SF_FUZZ_LUA_HTTP_H
#define SF_FUZZ_LUA_HTTP_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HTTP_LUA
#error "HTTP_LUA: the path of lua/snowflake/http.lua"
#endif

/* No leak checks: Lua frees on its collector's schedule, never within the input that
 * allocated, so libFuzzer would run LeakSanitizer's full scan after every input (a
 * hundred times slower) for leaks that are not leaks. ASan still checks every access. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return 1;
}

/* The state, with the module table at registry slot `http_ref`. */
static lua_State *http_state(int *http_ref)
{
	static lua_State *L;
	static int ref;

	if (!L) {
		L = luaL_newstate();
		if (!L)
			abort();
		luaL_openlibs(L);
		if (luaL_dofile(L, HTTP_LUA) != LUA_OK || !lua_istable(L, -1)) {
			fprintf(stderr, "cannot load %s: %s\n", HTTP_LUA, lua_tostring(L, -1));
			abort();
		}
		ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	*http_ref = ref;
	return L;
}

/* Pushes http[name]. */
static void http_push_function(lua_State *L, int ref, const char *name)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
	if (!lua_isfunction(L, -1))
		abort();
}

/*
 * The JSON string that starts at *p (at its opening quote), decoded the way
 * a JSON parser would into out (cap bytes; \u escapes above 0xff are not
 * something http.lua writes, so they fail here). Returns the decoded length
 * and moves *p past the closing quote, or -1 when it is not a JSON string: a
 * raw control character, a bad escape, no closing quote.
 */
static long json_string_decode(const char **p, const char *end, char *out, size_t cap)
{
	const char *s = *p;
	size_t n = 0;

	if (s >= end || *s++ != '"')
		return -1;
	while (s < end && *s != '"') {
		unsigned char c = (unsigned char)*s++;

		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (s >= end)
				return -1;
			c = (unsigned char)*s++;
			if (c == 'u') {
				unsigned v = 0;

				if (end - s < 4)
					return -1;
				for (int i = 0; i < 4; i++) {
					char h = *s++;

					v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' :
					                        h >= 'a' && h <= 'f' ? h - 'a' + 10 :
					                        h >= 'A' && h <= 'F' ? h - 'A' + 10 : 99);
					if (v > 0xffff)
						return -1;
				}
				if (v > 0xff)
					return -1;
				c = (unsigned char)v;
			} else if (c == 'n') {
				c = '\n';
			} else if (c == 't') {
				c = '\t';
			} else if (c == 'r') {
				c = '\r';
			} else if (c == 'b') {
				c = '\b';
			} else if (c == 'f') {
				c = '\f';
			} else if (c != '"' && c != '\\' && c != '/') {
				return -1;
			}
		}
		if (n >= cap)
			return -1;
		out[n++] = (char)c;
	}
	if (s >= end)
		return -1;
	*p = s + 1;
	return (long)n;
}

/*
 * A refusal of a parser: detail must be a non-empty string, and the error
 * body http.error_body(code, detail) must be exactly
 * {"error":"<code>","detail":<detail as a JSON string>}\n with the detail
 * decoding back to itself byte for byte.
 */
static void check_error_body(lua_State *L, int ref, const char *code, int detail_idx)
{
	size_t detail_len, body_len;
	const char *detail, *body, *p, *end;
	char *decoded;
	char head[64];
	long got;
	int top = lua_gettop(L);

	detail_idx = lua_absindex(L, detail_idx);
	if (lua_type(L, detail_idx) != LUA_TSTRING)
		abort();
	detail = lua_tolstring(L, detail_idx, &detail_len);
	if (detail_len == 0)
		abort();
	http_push_function(L, ref, "error_body");
	lua_pushstring(L, code);
	lua_pushvalue(L, detail_idx);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING)
		abort();
	body = lua_tolstring(L, -1, &body_len);
	end = body + body_len;
	/* ASCII only: a caller's bytes above 0x7f are escaped, never passed on
	 * raw (they would make the body invalid UTF-8, so invalid JSON) */
	for (size_t i = 0; i < body_len; i++)
		if ((unsigned char)body[i] >= 0x80)
			abort();
	snprintf(head, sizeof head, "{\"error\":\"%s\",\"detail\":", code);
	if (body_len < strlen(head) + 4 || memcmp(body, head, strlen(head)) != 0)
		abort();
	p = body + strlen(head);
	/* one byte more than the detail: a longer decoding is a mismatch, seen as such */
	decoded = malloc(detail_len + 1);
	if (!decoded)
		abort();
	got = json_string_decode(&p, end, decoded, detail_len + 1);
	if (got < 0 || (size_t)got != detail_len || memcmp(decoded, detail, detail_len) != 0)
		abort();
	free(decoded);
	if (end - p != 2 || p[0] != '}' || p[1] != '\n')
		abort();
	lua_settop(L, top);
}

#endif
