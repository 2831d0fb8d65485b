/*
 * snowflake.core's serving helpers: what the HTTP service in HAProxy needs
 * beyond the generator itself.
 *
 *  - counters: one block per OS thread, written only by its thread (plain
 *    loads and stores, no lock prefix, no shared cache line on the minting
 *    path), summed over every thread when /metrics is scraped;
 *  - settings: runtime-tunable integers shared by all Lua states of the
 *    process (HAProxy runs one state per thread, so a CLI `set` in one must
 *    be seen by all);
 *  - gen:fetch_id(): the C function HAProxy calls for /id, registered as the
 *    converter lua.sf_id (haproxy.lua, haproxy/haproxy.cfg);
 *  - gen:next_text(n, json, ...): an /ids body (or its pieces) built in C;
 *  - gen:probe(): would a mint succeed, without minting (for /health);
 *  - core.hostname, core.process_once.
 *
 * The counters, the settings and the once-names are process-wide statics:
 * every Lua state of the process (one per HAProxy thread) must see the same.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "classes.h"
#include "helpers.h"

/* ---- counters ---------------------------------------------------------- */

enum {
	CNT_IDS = 0,          /* IDs handed out, all paths */
	CNT_ID_REQUESTS,      /* /id answered with an ID */
	CNT_BATCH_REQUESTS,   /* /ids answered */
	CNT_WAITS,            /* clock regressions waited out */
	CNT_WAIT_NS,          /* time spent waiting them out */
	CNT_HANDOFFS_SERVED,  /* requests a peer handed over, answered with IDs */
	CNT_REFUSALS,         /* the first of -SF_CODE_MIN + 1 slots, by code */
	CNT_HANDOFFS = CNT_REFUSALS + 1 - SF_CODE_MIN, /* handed to a peer, by code: as many */
	CNT_BATCH_HIST = CNT_HANDOFFS + 1 - SF_CODE_MIN,
	CNT_SLOTS = CNT_BATCH_HIST + 8
};

/* batch size buckets: le 1, 10, 100, 1000, 4096, 16384, 65536, +Inf */
static const uint64_t batch_bounds[] = { 1, 10, 100, 1000, 4096, 16384, 65536 };
#define BATCH_BUCKETS (sizeof batch_bounds / sizeof batch_bounds[0] + 1)

static const char *const counter_names[] = {
	[CNT_IDS] = "ids", [CNT_ID_REQUESTS] = "id_requests", [CNT_BATCH_REQUESTS] = "batch_requests",
	[CNT_WAITS] = "clock_waits", [CNT_WAIT_NS] = "clock_wait_ns",
	[CNT_HANDOFFS_SERVED] = "handoffs_served",
};

/* the counters kept by refusal code: "<prefix>.<code>" */
static const struct {
	const char *prefix;
	const char *table; /* its key in core.counters() */
	int first_slot;
} by_code[] = {
	{ "refusal", "refusals", CNT_REFUSALS },
	{ "handoff", "handoffs", CNT_HANDOFFS },
};

#define MAX_THREADS 256

struct counter_block {
	_Atomic uint64_t v[CNT_SLOTS];
};

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct counter_block blocks[MAX_THREADS];
static int blocks_used;
static _Thread_local struct counter_block *my_block;
/* threads beyond MAX_THREADS share the last block, with atomic adds */
static bool shared_overflow_block_in_use;

static struct counter_block *block_get(bool *shared)
{
	*shared = false;
	if (__builtin_expect(my_block != NULL, 1)) {
		*shared = my_block == &blocks[MAX_THREADS - 1] && shared_overflow_block_in_use;
		return my_block;
	}
	pthread_mutex_lock(&blocks_lock);
	if (blocks_used < MAX_THREADS - 1) {
		my_block = &blocks[blocks_used++];
	} else {
		my_block = &blocks[MAX_THREADS - 1];
		shared_overflow_block_in_use = true;
		*shared = true;
	}
	pthread_mutex_unlock(&blocks_lock);
	return my_block;
}

static inline void count(int slot, uint64_t n)
{
	bool shared;
	struct counter_block *b = block_get(&shared);

	if (__builtin_expect(!shared, 1))
		atomic_store_explicit(&b->v[slot],
		                      atomic_load_explicit(&b->v[slot], memory_order_relaxed) + n,
		                      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&b->v[slot], n, memory_order_relaxed);
}

static uint64_t counter_sum(int slot)
{
	uint64_t sum = 0;
	int used;

	pthread_mutex_lock(&blocks_lock);
	used = blocks_used;
	pthread_mutex_unlock(&blocks_lock);
	for (int i = 0; i < used; i++)
		sum += atomic_load_explicit(&blocks[i].v[slot], memory_order_relaxed);
	sum += atomic_load_explicit(&blocks[MAX_THREADS - 1].v[slot], memory_order_relaxed);
	return sum;
}

static void count_batch(uint64_t n)
{
	size_t b = 0;

	while (b < BATCH_BUCKETS - 1 && n > batch_bounds[b])
		b++;
	count(CNT_BATCH_HIST + (int)b, 1);
	count(CNT_IDS, n);
}

static int counter_slot(lua_State *L, int arg)
{
	const char *name = sfl_arg_string(L, arg, "name");

	for (size_t i = 0; i < sizeof counter_names / sizeof counter_names[0]; i++)
		if (counter_names[i] && strcmp(counter_names[i], name) == 0)
			return (int)i;
	for (size_t k = 0; k < sizeof by_code / sizeof by_code[0]; k++) {
		size_t len = strlen(by_code[k].prefix);

		if (strncmp(name, by_code[k].prefix, len) != 0 || name[len] != '.')
			continue;
		for (int code = 0; code >= SF_CODE_MIN; code--)
			if (strcmp(sf_code_name(code), name + len + 1) == 0)
				return by_code[k].first_slot - code;
	}
	return luaL_argerror(L, arg, lua_pushfstring(L, "unknown counter '%s'", name));
}

/* core.count(name, n): adds n (>= 0) to this thread's counter `name`
 * ("ids", "id_requests", "batch_requests", "clock_waits", "clock_wait_ns",
 * "handoffs_served", "refusal.<code>", "handoff.<code>") */
static int l_count(lua_State *L)
{
	int slot = counter_slot(L, 1);
	/* a counter only grows */
	int64_t n = sfl_opt_int_range(L, 2, "n", 1, 0, INT64_MAX);

	count(slot, (uint64_t)n);
	return 0;
}

/* core.counters() -> { ids=, id_requests=, ..., refusals = {code = n}, handoffs = {code = n},
 *                      batch_buckets = { {le=1, count=}, ..., {le="+Inf", count=} } }
 * Sums over every thread of the process; bucket counts are cumulative. */
static int l_counters(lua_State *L)
{
	uint64_t cumulative = 0;

	lua_newtable(L);
	for (size_t i = 0; i < sizeof counter_names / sizeof counter_names[0]; i++) {
		if (!counter_names[i])
			continue;
		lua_pushinteger(L, (lua_Integer)counter_sum((int)i));
		lua_setfield(L, -2, counter_names[i]);
	}
	for (size_t k = 0; k < sizeof by_code / sizeof by_code[0]; k++) {
		lua_newtable(L);
		for (int code = -1; code >= SF_CODE_MIN; code--) {
			lua_pushinteger(L, (lua_Integer)counter_sum(by_code[k].first_slot - code));
			lua_setfield(L, -2, sf_code_name(code));
		}
		lua_setfield(L, -2, by_code[k].table);
	}
	lua_newtable(L);
	for (size_t b = 0; b < BATCH_BUCKETS; b++) {
		cumulative += counter_sum(CNT_BATCH_HIST + (int)b);
		lua_createtable(L, 0, 2);
		if (b < BATCH_BUCKETS - 1)
			lua_pushinteger(L, (lua_Integer)batch_bounds[b]);
		else
			lua_pushliteral(L, "+Inf");
		lua_setfield(L, -2, "le");
		lua_pushinteger(L, (lua_Integer)cumulative);
		lua_setfield(L, -2, "count");
		lua_rawseti(L, -2, (lua_Integer)b + 1);
	}
	lua_setfield(L, -2, "batch_buckets");
	return 1;
}

/* ---- settings ---------------------------------------------------------- */

#define SETTINGS_MAX 16
static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static char setting_names[SETTINGS_MAX][48];
static _Atomic int64_t setting_values[SETTINGS_MAX];
static int settings_used;

static int setting_find(const char *name, bool create)
{
	int found = -1;

	pthread_mutex_lock(&settings_lock);
	for (int i = 0; i < settings_used; i++)
		if (strcmp(setting_names[i], name) == 0)
			found = i;
	if (found < 0 && create && settings_used < SETTINGS_MAX && strlen(name) < sizeof setting_names[0]) {
		found = settings_used++;
		snprintf(setting_names[found], sizeof setting_names[found], "%s", name);
	}
	pthread_mutex_unlock(&settings_lock);
	return found;
}

/* core.setting_init(name, value): sets it unless some state of this process
 * already did (the first config loaded wins; later `set`s overwrite) */
static int l_setting_init(lua_State *L)
{
	const char *name = sfl_arg_string(L, 1, "name");
	int64_t v = sfl_arg_int(L, 2, "value");
	bool fresh;
	int i;

	pthread_mutex_lock(&settings_lock);
	fresh = true;
	for (int k = 0; k < settings_used; k++)
		fresh &= strcmp(setting_names[k], name) != 0;
	pthread_mutex_unlock(&settings_lock);
	i = setting_find(name, true);
	luaL_argcheck(L, i >= 0, 1, "too many settings");
	if (fresh)
		atomic_store(&setting_values[i], v);
	return 0;
}

/* core.setting_set(name, value) */
static int l_setting_set(lua_State *L)
{
	const char *name = sfl_arg_string(L, 1, "name");
	int64_t v = sfl_arg_int(L, 2, "value");
	int i = setting_find(name, true);

	luaL_argcheck(L, i >= 0, 1, "too many settings");
	atomic_store(&setting_values[i], v);
	return 0;
}

/* core.setting_get(name) -> integer | nil */
static int l_setting_get(lua_State *L)
{
	int i = setting_find(sfl_arg_string(L, 1, "name"), false);

	if (i < 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, (lua_Integer)atomic_load(&setting_values[i]));
	return 1;
}

/* ---- minting for the HTTP paths ---------------------------------------- */

typedef struct lgen_ref {
	sf_gen *gen;
} lgen_ref;

/* The /id converter (lua.sf_id): called by HAProxy with the converter's
 * input (ignored: the configuration feeds it int(0)); returns the ID as a
 * Lua integer (exact: HAProxy keeps it as a 64-bit signed sample) or nil on
 * any refusal, which the configuration turns into the Lua service's slow
 * path. Upvalue 1: the generator. The hot path: one mint, two counter
 * stores, no report. */
static int fetch_id(lua_State *L)
{
	lgen_ref *ref = lua_touserdata(L, lua_upvalueindex(1));
	int64_t id;

	if (__builtin_expect(sf_next_spin(ref->gen, &id, NULL, 0) == SF_OK, 1)) {
		count(CNT_IDS, 1);
		count(CNT_ID_REQUESTS, 1);
		lua_pushinteger(L, (lua_Integer)id);
	} else {
		lua_pushnil(L);
	}
	return 1;
}

/* gen:fetch_id() -> a function for core.register_converters (the /id fast path) */
static int l_gen_fetch_id(lua_State *L)
{
	lgen_ref *ref;

	sfl_check_gen(L, 1);
	ref = sfl_newuserdata(L, sizeof *ref);
	ref->gen = sfl_check_gen(L, 1);
	/* keep the generator's userdata alive with the closure */
	lua_pushvalue(L, 1);
	sfl_setuservalue(L, -2);
	lua_pushcclosure(L, fetch_id, 1);
	return 1;
}

#define TEXT_CHUNK 512
#define TEXT_MAX   65536

/* "00".."99": two digits a step; snprintf costs about four times as much
 * for an ID, and a 4,096-ID body holds the event loop for all of them */
static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* the decimal digits of v, ending at end; returns where they start */
static char *format_decimal(char *end, uint64_t v)
{
	char *p = end;

	while (v >= 100) {
		const unsigned pair = (unsigned)(v % 100);

		v /= 100;
		p -= 2;
		memcpy(p, digit_pairs + 2 * pair, 2);
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digit_pairs + 2 * v, 2);
	} else {
		*--p = (char)('0' + v);
	}
	return p;
}

/*
 * gen:next_text(n, json[, spin_limit_ns[, offset]])
 *   -> body, first_id, last_id, count | nil, code, detail, extras
 * n IDs (1..65536), strictly increasing, as the body of /ids: one a line, or
 * {"ids":["…",…]} with json; the body ends in a newline. spin_limit_ns >= 0;
 * offset 0..65536 - n.
 *
 * A millisecond whose sequence runs out is waited for by spinning at most
 * spin_limit_ns (default 2 ms). Past that, if some IDs were minted, the call
 * returns them (count < n) as the first piece of the body: the caller yields
 * and asks for the rest with offset = the IDs it has, and the pieces,
 * concatenated, are the body. Any other refusal drops what was minted (a gap,
 * never a duplicate). The IDs and the batch are counted when a body is
 * complete.
 */
static int l_gen_next_text(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	lua_Integer n = (lua_Integer)sfl_arg_int_range(L, 2, "count", 1, TEXT_MAX);
	bool json = lua_toboolean(L, 3);
	lua_Integer spin = (lua_Integer)sfl_opt_int_range(L, 4, "spin_limit_ns", 2000000, 0, INT64_MAX);
	lua_Integer offset = (lua_Integer)sfl_opt_int_range(L, 5, "offset", 0, 0, TEXT_MAX - n);
	int64_t ids[TEXT_CHUNK], first = 0, last = 0;
	luaL_Buffer b;
	sf_report rep;
	lua_Integer done = 0;

	luaL_buffinit(L, &b);
	if (json && offset == 0)
		luaL_addstring(&b, "{\"ids\":[");
	while (done < n) {
		uint32_t want = (uint32_t)(n - done < TEXT_CHUNK ? n - done : TEXT_CHUNK);
		uint32_t got = 0;
		int rc = sf_next_batch_some(gen, ids, want, &got, &rep, (int64_t)spin);

		if (got > 0) {
			if (done == 0)
				first = ids[0];
			last = ids[got - 1];
		}
		for (uint32_t i = 0; i < got; i++) {
			/* ',"' + 19 digits + '"' or 19 digits + newline */
			char num[24], *end = num + sizeof num, *p;

			if (json) {
				*--end = '"';
				p = format_decimal(end, (uint64_t)ids[i]);
				*--p = '"';
				if (offset + done + i > 0)
					*--p = ',';
			} else {
				*--end = '\n';
				p = format_decimal(end, (uint64_t)ids[i]);
			}
			luaL_addlstring(&b, p, (size_t)(num + sizeof num - p));
		}
		done += got;
		if (rc != SF_OK) {
			if (rc == SF_E_SEQUENCE_EXHAUSTED && done > 0)
				break; /* a piece: the rest after the caller yields */
			lua_settop(L, 1);
			return sfl_refuse_mint(L, gen, rc, &rep);
		}
	}
	if (done == n) {
		if (json)
			luaL_addstring(&b, "]}\n");
		count_batch((uint64_t)(offset + n));
		count(CNT_BATCH_REQUESTS, 1);
	}
	luaL_pushresult(&b);
	lua_pushinteger(L, (lua_Integer)first);
	lua_pushinteger(L, (lua_Integer)last);
	lua_pushinteger(L, done);
	return 4;
}

/* gen:probe() -> true | nil, code, detail, extras (see sf_gen_probe: what a
 * mint would refuse with, counting nothing) */
static int l_gen_probe(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	sf_report rep;
	int rc = sf_gen_probe(gen, &rep);

	if (rc == SF_OK) {
		lua_pushboolean(L, 1);
		return 1;
	}
	return sfl_refuse_mint(L, gen, rc, &rep);
}

/* core.hostname() -> the host name, for the X-Snowflake-Node default */
static int l_hostname(lua_State *L)
{
	char name[256];

	if (gethostname(name, sizeof name - 1) != 0)
		snprintf(name, sizeof name, "unknown");
	name[sizeof name - 1] = '\0';
	lua_pushstring(L, name);
	return 1;
}

/* core.process_once(name) -> true the first time this process asks for
 * `name`, false afterwards (for work one thread of the process must do,
 * such as starting the lease; a forked child starts afresh) */
#define ONCE_MAX 16
static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;
static char once_names[ONCE_MAX][48];
static int once_used;
static pid_t once_pid;

static int l_process_once(lua_State *L)
{
	const char *name = sfl_arg_string(L, 1, "name");
	bool first = true;

	luaL_argcheck(L, strlen(name) < sizeof once_names[0], 1, "name too long");
	pthread_mutex_lock(&once_lock);
	if (once_pid != getpid()) {
		once_pid = getpid();
		once_used = 0;
	}
	for (int i = 0; i < once_used; i++)
		first &= strcmp(once_names[i], name) != 0;
	if (first && once_used < ONCE_MAX)
		snprintf(once_names[once_used++], sizeof once_names[0], "%s", name);
	pthread_mutex_unlock(&once_lock);
	luaL_argcheck(L, !first || once_used <= ONCE_MAX, 1, "too many names");
	lua_pushboolean(L, first);
	return 1;
}

/* the generator's methods for the HTTP paths */
const luaL_Reg sfl_serve_gen_methods[] = {
	{ "fetch_id", l_gen_fetch_id },
	{ "next_text", l_gen_next_text },
	{ "probe", l_gen_probe },
	{ NULL, NULL }
};

const luaL_Reg sfl_serve_functions[] = {
	{ "count", l_count },
	{ "counters", l_counters },
	{ "setting_init", l_setting_init },
	{ "setting_set", l_setting_set },
	{ "setting_get", l_setting_get },
	{ "hostname", l_hostname },
	{ "process_once", l_process_once },
	{ NULL, NULL }
};
