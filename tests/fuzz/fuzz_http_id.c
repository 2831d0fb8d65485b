/*
 * The ID of GET /decode/<id>: http.parse_id(text) (lua/snowflake/http.lua)
 * on any bytes never raises and accepts exactly 1..19 ASCII digits whose
 * value is at most 2^63-1 (a reference here), returning that Lua integer;
 * anything else is nil and a detail that survives the JSON error body byte
 * for byte. An accepted ID goes on as the handler takes it: sf_id_decode
 * under the default layout, then http.decode_body, which must be the JSON
 * the C side formats from the same fields (RFC 3339 UTC, three fraction
 * digits, from gmtime).
 */
#include <stdint.h>
#include <time.h>

#include "lua_http.h"
#include "snowflake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int reference(const uint8_t *text, size_t len, int64_t *id)
{
	int64_t v = 0;

	if (len < 1 || len > 19)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int d = text[i] - '0';

		if (d < 0 || d > 9 || v > (INT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*id = v;
	return 1;
}

static void check_decode_body(lua_State *L, int ref, int64_t id)
{
	const sf_layout layout = SF_LAYOUT_DEFAULT;
	sf_decoded d;
	char want[256], date[32];
	struct tm tm;
	time_t secs;
	const char *body;
	size_t len;
	int n;

	if (sf_id_decode(&layout, id, &d) != SF_OK)
		abort();
	secs = (time_t)(d.timestamp_ms / 1000);
	if (!gmtime_r(&secs, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		abort();
	n = snprintf(want, sizeof want,
	             "{\"id\":\"%lld\",\"timestamp_ms\":%lld,\"time\":\"%s.%03dZ\",\"worker\":%u,\"sequence\":%u}\n",
	             (long long)id, (long long)d.timestamp_ms, date, (int)(d.timestamp_ms % 1000), d.worker,
	             d.sequence);

	http_push_function(L, ref, "decode_body");
	lua_pushinteger(L, id);
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, d.timestamp_ms);
	lua_setfield(L, -2, "timestamp_ms");
	lua_pushinteger(L, d.worker);
	lua_setfield(L, -2, "worker");
	lua_pushinteger(L, d.sequence);
	lua_setfield(L, -2, "sequence");
	if (lua_pcall(L, 2, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING)
		abort();
	body = lua_tolstring(L, -1, &len);
	if ((size_t)n != len || memcmp(body, want, len) != 0)
		abort();
	lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int ref;
	lua_State *L = http_state(&ref);
	int64_t want = -1;
	int ok = reference(data, size, &want);

	http_push_function(L, ref, "parse_id");
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
		fprintf(stderr, "parse_id raised: %s\n", lua_tostring(L, -1));
		abort();
	}
	if (ok) {
		if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) != want || !lua_isnil(L, -1))
			abort();
		check_decode_body(L, ref, want);
	} else {
		if (!lua_isnil(L, -2))
			abort();
		check_error_body(L, ref, "invalid_id", -1);
	}
	lua_settop(L, 0);
	return 0;
}
