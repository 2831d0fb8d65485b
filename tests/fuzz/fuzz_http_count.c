/*
 * ?count= of GET /ids: http.parse_count(qs, max_batch) (lua/snowflake/http.lua)
 * on any query string, for any http.max_batch 1..65536 (the config's range),
 * never raises, and accepts exactly what SPEC allows (a reference here): one
 * parameter, named count, plain ASCII digits (at most 6), 1..max_batch;
 * then it returns that integer (a Lua integer, never a float). Anything else
 * is nil and a detail that survives the JSON error body byte for byte.
 * Input: max_batch - 1 (2 bytes, little-endian, one more than 65535 is
 * 65536), then the query string.
 */
#include <stdint.h>

#include "lua_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 0 when refused, else the count */
static long reference(const char *qs, size_t len, long max_batch)
{
	const char *part = qs, *end = qs + len;
	long count = -1;

	if (len == 0)
		return 0;
	for (;;) {
		const char *amp = memchr(part, '&', (size_t)(end - part));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(part, '=', (size_t)(stop - part));
		long n = 0;

		if (!eq || eq - part != 5 || memcmp(part, "count", 5) != 0 || count != -1)
			return 0;
		if (stop - (eq + 1) < 1 || stop - (eq + 1) > 6)
			return 0;
		for (const char *d = eq + 1; d < stop; d++) {
			if (*d < '0' || *d > '9')
				return 0;
			n = n * 10 + (*d - '0');
		}
		count = n;
		if (!amp)
			break;
		part = amp + 1;
	}
	return count >= 1 && count <= max_batch ? count : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int ref;
	lua_State *L = http_state(&ref);
	long max_batch, want;
	const char *qs;
	size_t len;

	if (size < 2)
		return 0;
	max_batch = 1 + (long)(data[0] | (data[1] << 8));
	qs = (const char *)data + 2;
	len = size - 2;
	want = reference(qs, len, max_batch);

	http_push_function(L, ref, "parse_count");
	lua_pushlstring(L, qs, len);
	lua_pushinteger(L, max_batch);
	if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
		fprintf(stderr, "parse_count raised: %s\n", lua_tostring(L, -1));
		abort();
	}
	if (want) {
		if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) != want || !lua_isnil(L, -1))
			abort();
	} else {
		if (!lua_isnil(L, -2))
			abort();
		check_error_body(L, ref, "invalid_count", -1);
	}
	lua_settop(L, 0);
	return 0;
}
