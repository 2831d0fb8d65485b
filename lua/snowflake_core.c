/*
 * snowflake.core: the Lua binding of the edge-snowflake core (core/snowflake.h).
 *
 * Thin by design: a function checks its arguments, makes one core call and
 * pushes the result. A bad argument raises, naming it (wrong type, a float
 * where an integer is needed, a value outside a fixed range). A runtime
 * refusal returns nil, code, detail (sfl_refuse): code is sf_code_name()
 * (stable snake_case, used verbatim by the HTTP layer and the metrics),
 * detail a sentence with the figures the core reported when it refused.
 * A mint's refusal adds a fourth value, always: a table of named extras
 * with at least wait_ns (0 when there is nothing to wait for).
 * Values whose validity depends on the layout (widths, a worker ID against
 * worker_bits) are the core's to judge, so they come back as refusals.
 *
 * Integer arguments must be Lua integers (math.type "integer"): floats are
 * refused even when integral, since a float ID or nanosecond time above 2^53
 * has already lost precision. IDs are always returned as integers.
 *
 * State lives in userdata ("snowflake.gen", "snowflake.clock",
 * "snowflake.keeper"). The one exception is the process-wide generator of
 * core.process_generator: one sf_gen per process, shared by every Lua state
 * and thread (HAProxy runs one state per thread), never freed.
 *
 * One source for Lua 5.3 (HAProxy 2.6) and 5.4; version differences live in
 * compat.h. The module is not linked to a liblua: the host provides the API.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "binding.h"
#include "compat.h"
#include "snowflake.h"

#define SFL_EXPORT __attribute__((visibility("default")))

#define SFL_VERSION "0.1.0"

#define GEN_MT    SFL_GEN_MT
#define CLOCK_MT  "snowflake.clock"
#define KEEPER_MT "snowflake.keeper"

#define NS_PER_MS     1000000LL
#define SPIN_LIMIT_NS (2 * NS_PER_MS)   /* a used-up millisecond is waited out */
#define BATCH_MAX     65536
#define RESERVE_MAX   (1 << 22)
/* Fixed bounds, whatever the layout; the layout's own bounds are the core's. */
#define WORKER_MAX    ((1 << SF_WORKER_BITS_MAX) - 1)
#define SEQUENCE_MAX  ((1 << SF_SEQUENCE_BITS_MAX) - 1)

SFL_EXPORT int luaopen_snowflake_core(lua_State *L);

_Static_assert(sizeof(lua_Integer) >= sizeof(int64_t), "IDs need 64-bit Lua integers");

typedef struct lgen {
	sf_gen *gen;    /* NULL when creation failed or after __gc */
	bool    shared; /* the process generator: never freed by a handle */
} lgen;

/* A test clock: the core reads the two atomics through clock.ctx. */
typedef struct lclock {
	sf_clock        clock;
	_Atomic int64_t wall_ns;
	_Atomic int64_t mono_ns;
} lclock;

typedef struct lkeeper {
	sf_keeper *keeper; /* NULL when creation failed or after __gc */
	uint32_t   worker;
	char       dir[];  /* for messages; the core keeps its own copy */
} lkeeper;

/* The documented exception to "no C state in globals": see process_generator. */
static _Atomic(sf_gen *) process_gen;

/* ---- arguments --------------------------------------------------------- */

/*
 * Raises "bad argument #arg to 'f' (<name> must be <expected>, got <what>)".
 * idx is the offending value's slot: arg itself, or a table field pushed on
 * top. Numbers and strings are shown with their value (float 1.5).
 */
static int raise_bad(lua_State *L, int arg, int idx, const char *name, const char *expected)
{
	const char *got;

	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TNUMBER:
		got = lua_pushfstring(L, "%s %s", lua_isinteger(L, idx) ? "integer" : "float",
		                      luaL_tolstring(L, idx, NULL));
		break;
	case LUA_TSTRING:
		got = lua_pushfstring(L, "string '%s'", lua_tostring(L, idx));
		break;
	default:
		got = luaL_typename(L, idx);
		break;
	}
	return luaL_argerror(L, arg, lua_pushfstring(L, "%s must be %s, got %s", name, expected, got));
}

/* The integer at idx, or a raise naming it; no floats, no strings. */
static int64_t value_int(lua_State *L, int arg, int idx, const char *name)
{
	if (!lua_isinteger(L, idx))
		raise_bad(L, arg, idx, name, "an integer");
	return (int64_t)lua_tointeger(L, idx);
}

/* As value_int, and within lo..hi (hi = INT64_MAX means no upper bound). */
static int64_t value_int_range(lua_State *L, int arg, int idx, const char *name,
                               int64_t lo, int64_t hi)
{
	int64_t v = value_int(L, arg, idx, name);

	if (v >= lo && v <= hi)
		return v;
	if (hi == INT64_MAX)
		luaL_argerror(L, arg, lua_pushfstring(L, "%s must be >= %I, got %I", name,
		                                      (lua_Integer)lo, (lua_Integer)v));
	return luaL_argerror(L, arg, lua_pushfstring(L, "%s must be %I..%I, got %I", name,
	                                             (lua_Integer)lo, (lua_Integer)hi,
	                                             (lua_Integer)v));
}

static int64_t arg_int(lua_State *L, int arg, const char *name)
{
	return value_int(L, arg, arg, name);
}

static int64_t arg_int_range(lua_State *L, int arg, const char *name, int64_t lo, int64_t hi)
{
	return value_int_range(L, arg, arg, name, lo, hi);
}

static const char *arg_string(lua_State *L, int arg, const char *name)
{
	if (lua_type(L, arg) != LUA_TSTRING)
		raise_bad(L, arg, arg, name, "a string");
	return lua_tostring(L, arg);
}

/* ---- results ----------------------------------------------------------- */

/* The one refusal shape of the binding (see binding.h). */
int sfl_refuse(lua_State *L, const char *code, const sfl_extra *extras, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	lua_pushnil(L);
	lua_pushstring(L, code);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	if (!extras)
		return 3;
	while (extras[n].name)
		n++;
	lua_createtable(L, 0, n);
	for (int i = 0; i < n; i++) {
		lua_pushinteger(L, (lua_Integer)extras[i].value);
		lua_setfield(L, -2, extras[i].name);
	}
	return 4;
}

/* The three-value refusals, in the one shape. */
#define refuse(L, code, ...) sfl_refuse((L), (code), NULL, __VA_ARGS__)

static void set_int(lua_State *L, const char *key, int64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, const char *key, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, key);
}

static int64_t floor_ms(int64_t ns)
{
	return ns / NS_PER_MS - (ns % NS_PER_MS < 0);
}

static const char *errno_text(int err)
{
	return err != 0 ? strerror(err) : "no system error reported";
}

/* ---- layout ------------------------------------------------------------ */

/* The layout as given, before narrowing, so that messages quote it. */
typedef struct layout_in {
	int64_t epoch_ms, timestamp_bits, worker_bits, sequence_bits;
} layout_in;

/* Out-of-range widths are kept out of range (never wrapped into a valid one). */
static unsigned width_narrow(int64_t v)
{
	return v < 0 ? 0u : v > 255 ? 255u : (unsigned)v;
}

/*
 * Reads an optional layout table at arg into *layout (defaults for missing
 * keys: SF_LAYOUT_DEFAULT). Raises on a non-table, an unknown key, or a
 * value that is not an integer, naming the key. Ranges are the core's.
 */
static void layout_read(lua_State *L, int arg, sf_layout *layout, layout_in *in)
{
	const sf_layout def = SF_LAYOUT_DEFAULT;

	in->epoch_ms = def.epoch_ms;
	in->timestamp_bits = def.timestamp_bits;
	in->worker_bits = def.worker_bits;
	in->sequence_bits = def.sequence_bits;
	if (!lua_isnoneornil(L, arg)) {
		if (lua_type(L, arg) != LUA_TTABLE)
			raise_bad(L, arg, arg, "layout", "a table");
		lua_pushnil(L);
		while (lua_next(L, arg) != 0) {
			const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

			if (key && strcmp(key, "epoch_ms") == 0)
				in->epoch_ms = value_int(L, arg, -1, "layout.epoch_ms");
			else if (key && strcmp(key, "timestamp_bits") == 0)
				in->timestamp_bits = value_int(L, arg, -1, "layout.timestamp_bits");
			else if (key && strcmp(key, "worker_bits") == 0)
				in->worker_bits = value_int(L, arg, -1, "layout.worker_bits");
			else if (key && strcmp(key, "sequence_bits") == 0)
				in->sequence_bits = value_int(L, arg, -1, "layout.sequence_bits");
			else if (key)
				luaL_argerror(L, arg, lua_pushfstring(L, "unknown key 'layout.%s' (expected "
				              "epoch_ms, timestamp_bits, worker_bits, sequence_bits)", key));
			else
				luaL_argerror(L, arg, lua_pushfstring(L, "layout keys must be strings, got %s",
				                                      luaL_typename(L, -2)));
			lua_pop(L, 1);
		}
	}
	layout->epoch_ms = in->epoch_ms;
	layout->timestamp_bits = width_narrow(in->timestamp_bits);
	layout->worker_bits = width_narrow(in->worker_bits);
	layout->sequence_bits = width_narrow(in->sequence_bits);
}

/* The refusal of sf_gen_new for a layout, with the key and the figures. */
static int refuse_layout(lua_State *L, int rc, const layout_in *in, const sf_clock *clock)
{
	const char *code = sf_code_name(rc);

	switch (rc) {
	case SF_E_LAYOUT_TIMESTAMP_BITS:
		return refuse(L, code, "layout.timestamp_bits must be %d..%d, got %I",
		              SF_TIMESTAMP_BITS_MIN, SF_TIMESTAMP_BITS_MAX, (lua_Integer)in->timestamp_bits);
	case SF_E_LAYOUT_WORKER_BITS:
		return refuse(L, code, "layout.worker_bits must be %d..%d, got %I",
		              SF_WORKER_BITS_MIN, SF_WORKER_BITS_MAX, (lua_Integer)in->worker_bits);
	case SF_E_LAYOUT_SEQUENCE_BITS:
		return refuse(L, code, "layout.sequence_bits must be %d..%d, got %I",
		              SF_SEQUENCE_BITS_MIN, SF_SEQUENCE_BITS_MAX, (lua_Integer)in->sequence_bits);
	case SF_E_LAYOUT_WIDTHS:
		return refuse(L, code, "layout.timestamp_bits + layout.worker_bits + layout.sequence_bits "
		              "must be 63, got %I + %I + %I = %I", (lua_Integer)in->timestamp_bits,
		              (lua_Integer)in->worker_bits, (lua_Integer)in->sequence_bits,
		              (lua_Integer)(in->timestamp_bits + in->worker_bits + in->sequence_bits));
	case SF_E_LAYOUT_EPOCH:
		return refuse(L, code, "layout.epoch_ms must be 0..now (%I), got %I",
		              (lua_Integer)floor_ms(sf_clock_wall_ns(clock)), (lua_Integer)in->epoch_ms);
	default:
		return refuse(L, code, "cannot create the generator: %s", sf_code_text(rc));
	}
}

static bool layout_equal(const sf_layout *a, const sf_layout *b)
{
	return a->epoch_ms == b->epoch_ms && a->timestamp_bits == b->timestamp_bits &&
	       a->worker_bits == b->worker_bits && a->sequence_bits == b->sequence_bits;
}

static void push_layout(lua_State *L, const sf_layout *layout)
{
	lua_createtable(L, 0, 4);
	set_int(L, "epoch_ms", layout->epoch_ms);
	set_int(L, "timestamp_bits", layout->timestamp_bits);
	set_int(L, "worker_bits", layout->worker_bits);
	set_int(L, "sequence_bits", layout->sequence_bits);
}

/* ---- generator --------------------------------------------------------- */

/* Raises unless idx is a live "snowflake.gen". Not static: the lease binding
 * (lua/snowflake_lease.c, lua/binding.h) checks generators with it; hidden
 * from the .so's exports by -fvisibility=hidden. */

sf_gen *sfl_check_gen(lua_State *L, int idx)
{
	lgen *g = luaL_checkudata(L, idx, GEN_MT);

	luaL_argcheck(L, g->gen != NULL, idx, "the generator was freed");
	return g->gen;
}

/* A new handle with its metatable, not yet bound to a generator. */
static lgen *gen_push(lua_State *L)
{
	lgen *g = sfl_newuserdata(L, sizeof *g);

	g->gen = NULL;
	g->shared = false;
	luaL_setmetatable(L, GEN_MT);
	return g;
}

/*
 * The refusal of a mint (next, next_ids, reserve, next_text, probe): nil,
 * code, detail, extras. The detail and the extras come from rep, what the
 * core reported when it refused (never from the generator read again: a
 * grant or a ceiling may have moved since). extras always has wait_ns.
 */
int sfl_refuse_mint(lua_State *L, sf_gen *gen, int rc, const sf_report *rep)
{
	const sf_layout *layout = sf_gen_layout(gen);
	const char *code = sf_code_name(rc);
	const sfl_extra wait_only[] = { { "wait_ns", 0 }, { NULL, 0 } };

	switch (rc) {
	case SF_E_CLOCK_WAIT: {
		const sfl_extra x[] = {
			{ "wait_ns", rep->wait_ns }, { "regression_ms", rep->regression_ms },
			{ "max_wait_ms", rep->max_wait_ms }, { "last_ms", rep->last_ms },
			{ "clock_ms", rep->clock_ms }, { NULL, 0 }
		};
		return sfl_refuse(L, code, x, "clock regressed by %I ms, within clock.max_wait_ms = %I: "
		                  "retry in %I us", (lua_Integer)rep->regression_ms,
		                  (lua_Integer)rep->max_wait_ms, (lua_Integer)(rep->wait_ns / 1000));
	}
	case SF_E_CLOCK_REGRESSED: {
		const sfl_extra x[] = {
			{ "wait_ns", rep->wait_ns }, { "regression_ms", rep->regression_ms },
			{ "max_wait_ms", rep->max_wait_ms }, { "last_ms", rep->last_ms },
			{ "clock_ms", rep->clock_ms }, { NULL, 0 }
		};
		return sfl_refuse(L, code, x, "clock regressed by %I ms, more than clock.max_wait_ms = %I",
		                  (lua_Integer)rep->regression_ms, (lua_Integer)rep->max_wait_ms);
	}
	case SF_E_SEQUENCE_EXHAUSTED: {
		const sfl_extra x[] = {
			{ "wait_ns", rep->wait_ns }, { "last_ms", rep->last_ms }, { NULL, 0 }
		};
		return sfl_refuse(L, code, x, "all %I sequence numbers of millisecond %I are used: "
		                  "retry in %I us", (lua_Integer)(1LL << layout->sequence_bits),
		                  (lua_Integer)rep->last_ms, (lua_Integer)(rep->wait_ns / 1000));
	}
	case SF_E_FENCED: {
		const sfl_extra x[] = {
			{ "wait_ns", 0 }, { "worker", rep->worker }, { "deadline_ns", rep->deadline_ns },
			{ "mono_ns", rep->mono_ns }, { NULL, 0 }
		};
		if (rep->worker < 0)
			return sfl_refuse(L, code, wait_only, "the lease was withdrawn as fenced; minting "
			                  "resumes on the next grant");
		return sfl_refuse(L, code, x, "the monotonic clock (%I ns) reached the fencing "
		                  "deadline of worker %d (%I ns)", (lua_Integer)rep->mono_ns,
		                  (int)rep->worker, (lua_Integer)rep->deadline_ns);
	}
	case SF_E_HWM_STALLED: {
		const sfl_extra x[] = {
			{ "wait_ns", 0 }, { "clock_ms", rep->clock_ms },
			{ "local_ceiling_ms", rep->local_ceiling_ms },
			{ "registry_ceiling_ms", rep->registry_ceiling_ms }, { NULL, 0 }
		};
		if (rep->local_ceiling_ms == INT64_MIN)
			return sfl_refuse(L, code, x, "no local high-water mark is published yet "
			                  "(a keeper step or gen:set_ceiling('local', ms) publishes one)");
		if (rep->registry_ceiling_ms == INT64_MAX)
			return sfl_refuse(L, code, x, "the clock (%I ms) reached the durable local "
			                  "high-water mark (%I ms)", (lua_Integer)rep->clock_ms,
			                  (lua_Integer)rep->local_ceiling_ms);
		return sfl_refuse(L, code, x, "the clock (%I ms) reached the durable high-water mark "
		                  "(local %I ms, registry %I ms)", (lua_Integer)rep->clock_ms,
		                  (lua_Integer)rep->local_ceiling_ms, (lua_Integer)rep->registry_ceiling_ms);
	}
	case SF_E_NO_LEASE:
		return sfl_refuse(L, code, wait_only, "no worker ID is granted to this generator yet");
	case SF_E_PARKED:
		return sfl_refuse(L, code, wait_only, "the generator is parked until the next grant");
	case SF_E_TIMESTAMP_OVERFLOW: {
		const sfl_extra x[] = { { "wait_ns", 0 }, { "clock_ms", rep->clock_ms }, { NULL, 0 } };

		return sfl_refuse(L, code, x, "the layout's time range (epoch_ms %I, timestamp_bits %d) "
		                  "is used up", (lua_Integer)layout->epoch_ms, (int)layout->timestamp_bits);
	}
	default:
		return sfl_refuse(L, code, wait_only, "%s", sf_code_text(rc));
	}
}

/*
 * core.new([layout [, clock]]) -> gen | nil, code, detail
 * layout: table with any of epoch_ms, timestamp_bits, worker_bits,
 * sequence_bits (integers; defaults SF_LAYOUT_DEFAULT). clock: a
 * core.manual_clock(), kept alive by the generator; the real clocks when
 * absent. Refuses an invalid layout with the layout_* code and a detail
 * naming the key. The generator refuses no_lease until granted and
 * hwm_stalled until a local ceiling is set.
 */
static int l_new(lua_State *L)
{
	sf_layout layout;
	layout_in in;
	const sf_clock *clock = NULL;
	lgen *g;
	int rc;

	layout_read(L, 1, &layout, &in);
	if (!lua_isnoneornil(L, 2))
		clock = &((lclock *)luaL_checkudata(L, 2, CLOCK_MT))->clock;
	g = gen_push(L);
	lua_pushvalue(L, 2);
	sfl_setuservalue(L, -2);
	rc = sf_gen_new(&layout, clock, &g->gen);
	if (rc != SF_OK)
		return refuse_layout(L, rc, &in, clock);
	return 1;
}

/*
 * core.process_generator([layout]) -> gen | nil, code, detail
 * The process-wide generator on the real clocks: created by the first call
 * (an atomic compare-and-swap settles concurrent first calls from several
 * threads), then shared by every Lua state and thread of the process. A later
 * call with an equal layout returns another handle to it; a different one
 * refuses "layout_mismatch". Never freed: handles do not free it on __gc,
 * and any state of the process may still be minting.
 */
static int l_process_generator(lua_State *L)
{
	sf_layout layout;
	layout_in in;
	sf_gen *gen = atomic_load(&process_gen);
	const sf_layout *have;
	lgen *g;

	layout_read(L, 1, &layout, &in);
	if (gen == NULL) {
		sf_gen *fresh = NULL;
		int rc = sf_gen_new(&layout, NULL, &fresh);

		if (rc != SF_OK)
			return refuse_layout(L, rc, &in, NULL);
		if (atomic_compare_exchange_strong(&process_gen, &gen, fresh))
			gen = fresh;
		else
			sf_gen_free(fresh); /* another thread won; gen holds its generator */
	}
	have = sf_gen_layout(gen);
	if (!layout_equal(have, &layout))
		return refuse(L, "layout_mismatch", "the process generator has layout epoch_ms=%I "
		              "timestamp_bits=%d worker_bits=%d sequence_bits=%d; asked for epoch_ms=%I "
		              "timestamp_bits=%I worker_bits=%I sequence_bits=%I",
		              (lua_Integer)have->epoch_ms, (int)have->timestamp_bits,
		              (int)have->worker_bits, (int)have->sequence_bits,
		              (lua_Integer)in.epoch_ms, (lua_Integer)in.timestamp_bits,
		              (lua_Integer)in.worker_bits, (lua_Integer)in.sequence_bits);
	g = gen_push(L);
	g->gen = gen;
	g->shared = true;
	return 1;
}

/*
 * gen:next() -> id | nil, code, detail, extras
 * One ID. A used-up millisecond is waited out by spinning up to 2 ms.
 * extras (see sfl_refuse_mint): wait_ns, non-zero with clock_wait,
 * clock_regressed and sequence_exhausted, and the figures of the detail.
 */
static int l_gen_next(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	sf_report rep;
	int64_t id;
	int rc = sf_next_spin(gen, &id, &rep, SPIN_LIMIT_NS);

	if (rc != SF_OK)
		return sfl_refuse_mint(L, gen, rc, &rep);
	lua_pushinteger(L, (lua_Integer)id);
	return 1;
}

/*
 * gen:next_ids(n) -> {id, ...} | nil, code, detail, extras
 * Exactly n (1..65536) increasing IDs, across milliseconds as needed
 * (spinning up to 2 ms for each new one), or a refusal that drops the IDs
 * reserved so far (a gap, never a duplicate).
 */
static int l_gen_next_ids(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	uint32_t n = (uint32_t)arg_int_range(L, 2, "n", 1, BATCH_MAX);
	sf_report rep;
	/* a garbage-collected buffer: nothing leaks when a later push raises */
	int64_t *ids = sfl_newbuffer(L, (size_t)n * sizeof *ids);
	int rc = sf_next_batch(gen, ids, n, &rep, SPIN_LIMIT_NS);

	if (rc != SF_OK)
		return sfl_refuse_mint(L, gen, rc, &rep);
	lua_createtable(L, (int)n, 0);
	for (uint32_t i = 0; i < n; i++) {
		lua_pushinteger(L, (lua_Integer)ids[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/*
 * gen:reserve(n) -> first, count | nil, code, detail, extras
 * Up to n (1..2^22) consecutive IDs first .. first+count-1 of the current
 * millisecond, with one compare-and-swap; count may be less than n.
 */
static int l_gen_reserve(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	uint32_t n = (uint32_t)arg_int_range(L, 2, "n", 1, RESERVE_MAX);
	sf_report rep;
	sf_run run;
	int rc = sf_reserve(gen, n, &run, &rep);

	if (rc != SF_OK)
		return sfl_refuse_mint(L, gen, rc, &rep);
	lua_pushinteger(L, (lua_Integer)run.first);
	lua_pushinteger(L, (lua_Integer)run.count);
	return 2;
}

/*
 * gen:decode(id) -> {timestamp_ms=, worker=, sequence=} | nil, code, detail
 * timestamp_ms is Unix milliseconds. Refuses id_out_of_range for a negative
 * ID or one outside the layout.
 */
static int l_gen_decode(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	int64_t id = arg_int(L, 2, "id");
	sf_decoded parts;
	int rc = sf_id_decode(sf_gen_layout(gen), id, &parts);

	if (rc != SF_OK) {
		if (id < 0)
			return refuse(L, sf_code_name(rc), "id %I is negative", (lua_Integer)id);
		return refuse(L, sf_code_name(rc), "id %I is not valid for this layout",
		              (lua_Integer)id);
	}
	lua_createtable(L, 0, 3);
	set_int(L, "timestamp_ms", parts.timestamp_ms);
	set_int(L, "worker", parts.worker);
	set_int(L, "sequence", parts.sequence);
	return 1;
}

/*
 * gen:compose(timestamp_ms, worker, sequence) -> id | nil, code, detail
 * The inverse of decode. worker must be 0..65535 and sequence 0..2^22-1 (else
 * raise); values outside this layout's ranges are refused with the ranges.
 */
static int l_gen_compose(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	const sf_layout *layout = sf_gen_layout(gen);
	sf_decoded parts;
	int64_t id;
	int rc;

	parts.timestamp_ms = arg_int(L, 2, "timestamp_ms");
	parts.worker = (uint32_t)arg_int_range(L, 3, "worker", 0, WORKER_MAX);
	parts.sequence = (uint32_t)arg_int_range(L, 4, "sequence", 0, SEQUENCE_MAX);
	rc = sf_id_compose(layout, &parts, &id);
	if (rc != SF_OK)
		return refuse(L, sf_code_name(rc), "(timestamp_ms %I, worker %I, sequence %I) is outside "
		              "the layout: timestamp_ms %I..%I, worker 0..%I, sequence 0..%I",
		              (lua_Integer)parts.timestamp_ms, (lua_Integer)parts.worker,
		              (lua_Integer)parts.sequence, (lua_Integer)layout->epoch_ms,
		              (lua_Integer)(layout->epoch_ms + (1LL << layout->timestamp_bits) - 1),
		              (lua_Integer)((1LL << layout->worker_bits) - 1),
		              (lua_Integer)((1LL << layout->sequence_bits) - 1));
	lua_pushinteger(L, (lua_Integer)id);
	return 1;
}

/* gen:layout() -> {epoch_ms=, timestamp_bits=, worker_bits=, sequence_bits=} */
static int l_gen_layout(lua_State *L)
{
	push_layout(L, sf_gen_layout(sfl_check_gen(L, 1)));
	return 1;
}

/*
 * gen:grant(worker, fence_deadline_ns) -> true | nil, code, detail
 * Publishes the worker ID and the fencing deadline (CLOCK_MONOTONIC ns, or
 * the manual clock's mono) together; minting refuses "fenced" from the
 * deadline on. worker must be 0..65535 (else raise); one outside the layout
 * is refused worker_out_of_range.
 */
static int l_gen_grant(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	int64_t worker = arg_int_range(L, 2, "worker", 0, WORKER_MAX);
	int64_t deadline_ns = arg_int(L, 3, "fence_deadline_ns");
	int rc = sf_gen_grant(gen, (uint32_t)worker, deadline_ns);

	if (rc != SF_OK)
		return refuse(L, sf_code_name(rc), "worker %I is outside 0..%I (layout.worker_bits = %d)",
		              (lua_Integer)worker,
		              (lua_Integer)((1LL << sf_gen_layout(gen)->worker_bits) - 1),
		              (int)sf_gen_layout(gen)->worker_bits);
	lua_pushboolean(L, 1);
	return 1;
}

/* The negative code named `name`, or 0. */
static int code_by_name(const char *name)
{
	for (int code = -1; code >= SF_CODE_MIN; code--)
		if (strcmp(sf_code_name(code), name) == 0)
			return code;
	return 0;
}

/*
 * gen:revoke(code_name)
 * Withdraws the grant; minting refuses with that code ("no_lease",
 * "parked", "fenced", ... any name of core.codes) until the next grant.
 * An unknown name raises.
 */
static int l_gen_revoke(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	const char *name = arg_string(L, 2, "code_name");
	int code = code_by_name(name);

	if (code == 0)
		return luaL_argerror(L, 2, lua_pushfstring(L, "unknown code '%s' (expected a name of "
		                     "snowflake.core.codes, e.g. 'no_lease', 'parked', 'fenced')", name));
	sf_gen_revoke(gen, code);
	return 0;
}

/*
 * gen:grant_info() -> worker or nil, fence_deadline_ns, code_name
 * The current grant: the deadline as the core keeps it (rounded down to the
 * millisecond), and code_name "ok" when granted, or why minting refuses.
 */
static int l_gen_grant_info(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	int32_t worker;
	int64_t deadline_ns;
	int code;

	sf_gen_grant_get(gen, &worker, &deadline_ns, &code);
	if (worker < 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, worker);
	lua_pushinteger(L, (lua_Integer)deadline_ns);
	lua_pushstring(L, sf_code_name(code));
	return 3;
}

/* gen:set_max_wait_ms(n): the clock regression waited out (n >= 0 ms). */
static int l_gen_set_max_wait_ms(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	int64_t n = arg_int_range(L, 2, "max_wait_ms", 0, INT64_MAX);

	sf_gen_set_max_wait_ms(gen, n);
	return 0;
}

/* gen:set_borrow(bool): use the rest of a frozen millisecond on a regression. */
static int l_gen_set_borrow(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);

	if (lua_type(L, 2) != LUA_TBOOLEAN)
		raise_bad(L, 2, 2, "borrow", "a boolean");
	sf_gen_set_borrow(gen, lua_toboolean(L, 2));
	return 0;
}

/* gen:policy() -> {max_wait_ms=, borrow=} */
static int l_gen_policy(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);

	lua_createtable(L, 0, 2);
	set_int(L, "max_wait_ms", sf_gen_max_wait_ms(gen));
	set_bool(L, "borrow", sf_gen_borrow(gen));
	return 1;
}

static enum sf_ceiling check_ceiling(lua_State *L, int arg)
{
	static const char *const names[] = { "local", "registry", NULL };

	return luaL_checkoption(L, arg, NULL, names) == 0 ? SF_CEILING_LOCAL : SF_CEILING_REGISTRY;
}

/*
 * gen:set_ceiling("local"|"registry", unix_ms)
 * A write-ahead ceiling: minting never uses a timestamp above the lower of
 * the two. math.maxinteger unsets one; the local one must be set before
 * the generator mints at all.
 */
static int l_gen_set_ceiling(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	enum sf_ceiling which = check_ceiling(L, 2);

	sf_gen_ceiling_set(gen, which, arg_int(L, 3, "unix_ms"));
	return 0;
}

/*
 * gen:ceiling("local"|"registry") -> unix_ms
 * math.mininteger for a local ceiling never set, math.maxinteger for an
 * unset registry one.
 */
static int l_gen_ceiling(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);

	lua_pushinteger(L, (lua_Integer)sf_gen_ceiling_get(gen, check_ceiling(L, 2)));
	return 1;
}

/*
 * gen:floor_raise(unix_ms) -> true | nil, code, detail
 * Nothing at or below unix_ms (>= 0) is issued afterwards. Refuses
 * timestamp_exhausted past the layout's range.
 */
static int l_gen_floor_raise(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	int64_t unix_ms = arg_int_range(L, 2, "unix_ms", 0, INT64_MAX);
	int rc = sf_gen_floor_raise(gen, unix_ms);

	if (rc != SF_OK)
		return refuse(L, sf_code_name(rc), "%I ms is past the layout's time range",
		              (lua_Integer)unix_ms);
	lua_pushboolean(L, 1);
	return 1;
}

/* gen:last_ms() -> the highest timestamp issued (Unix ms), epoch_ms - 1 if none */
static int l_gen_last_ms(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sf_gen_last_ms(sfl_check_gen(L, 1)));
	return 1;
}

/* A start-check mark: nil for none, else Unix ms whose next millisecond
 * still fits int64 nanoseconds (the core computes the wait in ns). */
static int64_t arg_mark(lua_State *L, int arg, const char *name)
{
	if (lua_isnoneornil(L, arg))
		return INT64_MIN;
	return arg_int_range(L, arg, name, 0, INT64_MAX / NS_PER_MS - 1);
}

/*
 * gen:start_check(local_mark_ms|nil, registry_mark_ms|nil, bound_ms)
 *   -> true | nil, code, detail, extras
 * On start or on claiming a worker ID: true once the clock passed the larger
 * mark (the floor is raised past it); clock_wait while the remaining wait is
 * within bound_ms (>= 0); hwm_ahead / registry_hwm_ahead beyond it. extras:
 * wait_ns, regression_ms, clock_ms, local_mark_ms, registry_mark_ms (0 for
 * none), bound_ms.
 */
static int l_gen_start_check(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	int64_t local = arg_mark(L, 2, "local_mark_ms");
	int64_t registry = arg_mark(L, 3, "registry_mark_ms");
	int64_t bound_ms = arg_int_range(L, 4, "bound_ms", 0, INT64_MAX);
	sf_report rep;
	int rc = sf_gen_start_check(gen, local, registry, bound_ms, &rep);
	const char *code = sf_code_name(rc);
	const sfl_extra x[] = {
		{ "wait_ns", rep.wait_ns }, { "regression_ms", rep.regression_ms },
		{ "clock_ms", rep.clock_ms }, { "local_mark_ms", local == INT64_MIN ? 0 : local },
		{ "registry_mark_ms", registry == INT64_MIN ? 0 : registry }, { "bound_ms", bound_ms },
		{ NULL, 0 }
	};

	switch (rc) {
	case SF_OK:
		lua_pushboolean(L, 1);
		return 1;
	case SF_E_CLOCK_WAIT:
		return sfl_refuse(L, code, x, "the clock is %I ms behind the high-water mark %I ms: "
		                  "wait %I us, within the start bound of %I ms",
		                  (lua_Integer)rep.regression_ms,
		                  (lua_Integer)(local > registry ? local : registry),
		                  (lua_Integer)(rep.wait_ns / 1000), (lua_Integer)bound_ms);
	case SF_E_HWM_AHEAD:
		return sfl_refuse(L, code, x, "the local high-water mark %I ms is %I ms ahead of the "
		                  "clock, beyond the start bound of %I ms", (lua_Integer)local,
		                  (lua_Integer)rep.regression_ms, (lua_Integer)bound_ms);
	case SF_E_REGISTRY_HWM_AHEAD:
		return sfl_refuse(L, code, x, "the registry's high-water mark %I ms is %I ms ahead of "
		                  "the clock, beyond the start bound of %I ms", (lua_Integer)registry,
		                  (lua_Integer)rep.regression_ms, (lua_Integer)bound_ms);
	default:
		return sfl_refuse(L, code, x, "%s", sf_code_text(rc));
	}
}

/* gen:stats() -> table of the sf_gen_stats counters */
static int l_gen_stats(lua_State *L)
{
	sf_gen_stats st;

	sf_gen_stats_get(sfl_check_gen(L, 1), &st);
	lua_createtable(L, 0, 7);
	set_int(L, "clock_waits", (int64_t)st.clock_waits);
	set_int(L, "clock_refusals", (int64_t)st.clock_refusals);
	set_int(L, "clock_borrows", (int64_t)st.clock_borrows);
	set_int(L, "sequence_exhausted", (int64_t)st.sequence_exhausted);
	set_int(L, "fenced_refusals", (int64_t)st.fenced_refusals);
	set_int(L, "hwm_stalls", (int64_t)st.hwm_stalls);
	set_int(L, "last_regression_ms", st.last_regression_ms);
	return 1;
}

static int gen_gc(lua_State *L)
{
	lgen *g = luaL_checkudata(L, 1, GEN_MT);

	if (g->gen && !g->shared)
		sf_gen_free(g->gen);
	g->gen = NULL;
	return 0;
}

static int gen_tostring(lua_State *L)
{
	lgen *g = luaL_checkudata(L, 1, GEN_MT);
	const sf_layout *layout;
	int32_t worker;

	if (!g->gen) {
		lua_pushfstring(L, GEN_MT " (freed): %p", (void *)g);
		return 1;
	}
	layout = sf_gen_layout(g->gen);
	sf_gen_grant_get(g->gen, &worker, NULL, NULL);
	if (worker < 0)
		lua_pushliteral(L, "no grant");
	else
		lua_pushfstring(L, "worker %d", (int)worker);
	lua_pushfstring(L, GEN_MT "%s (%s, layout %I/%d/%d/%d): %p",
	                g->shared ? " process" : "", lua_tostring(L, -1), (lua_Integer)layout->epoch_ms,
	                (int)layout->timestamp_bits, (int)layout->worker_bits,
	                (int)layout->sequence_bits, (void *)g->gen);
	return 1;
}

/* ---- keeper ------------------------------------------------------------ */

static lkeeper *check_keeper(lua_State *L, int idx)
{
	lkeeper *k = luaL_checkudata(L, idx, KEEPER_MT);

	luaL_argcheck(L, k->keeper != NULL, idx, "the keeper was freed");
	return k;
}

/*
 * gen:keeper{dir=, worker=, ahead_ms=, refresh_ms=} -> keeper | nil, code, detail
 * A keeper storing this generator's local high-water mark under dir (a
 * string) for worker (0..65535), now + ahead_ms (>= 1) whenever less than
 * refresh_ms (1..ahead_ms) is left. All four keys are required; others
 * raise. Refuses state_io when dir is not a directory, worker_out_of_range
 * for a worker outside the layout. The keeper keeps the generator alive.
 */
static int l_gen_keeper(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	sf_keeper_config cfg = { NULL, 0, 0, 0 };
	bool have_worker = false;
	size_t dir_len = 0;
	lkeeper *k;
	int rc, err;

	if (lua_type(L, 2) != LUA_TTABLE)
		raise_bad(L, 2, 2, "keeper config", "a table {dir=, worker=, ahead_ms=, refresh_ms=}");
	lua_pushnil(L);
	while (lua_next(L, 2) != 0) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

		if (key && strcmp(key, "dir") == 0) {
			if (lua_type(L, -1) != LUA_TSTRING)
				raise_bad(L, 2, -1, "keeper.dir", "a string");
			cfg.dir = lua_tolstring(L, -1, &dir_len); /* anchored by the table */
		} else if (key && strcmp(key, "worker") == 0) {
			cfg.worker = (uint32_t)value_int_range(L, 2, -1, "keeper.worker", 0, WORKER_MAX);
			have_worker = true;
		} else if (key && strcmp(key, "ahead_ms") == 0) {
			cfg.ahead_ms = value_int_range(L, 2, -1, "keeper.ahead_ms", 1, INT64_MAX);
		} else if (key && strcmp(key, "refresh_ms") == 0) {
			cfg.refresh_ms = value_int_range(L, 2, -1, "keeper.refresh_ms", 1, INT64_MAX);
		} else if (key) {
			luaL_argerror(L, 2, lua_pushfstring(L, "unknown key 'keeper.%s' (expected dir, "
			              "worker, ahead_ms, refresh_ms)", key));
		} else {
			luaL_argerror(L, 2, lua_pushfstring(L, "keeper keys must be strings, got %s",
			                                    luaL_typename(L, -2)));
		}
		lua_pop(L, 1);
	}
	luaL_argcheck(L, cfg.dir != NULL, 2, "keeper.dir is required");
	luaL_argcheck(L, have_worker, 2, "keeper.worker is required");
	luaL_argcheck(L, cfg.ahead_ms != 0, 2, "keeper.ahead_ms is required");
	luaL_argcheck(L, cfg.refresh_ms != 0, 2, "keeper.refresh_ms is required");
	if (cfg.refresh_ms > cfg.ahead_ms)
		luaL_argerror(L, 2, lua_pushfstring(L, "keeper.refresh_ms must be 1..keeper.ahead_ms "
		              "(%I), got %I", (lua_Integer)cfg.ahead_ms, (lua_Integer)cfg.refresh_ms));

	k = sfl_newuserdata(L, sizeof *k + dir_len + 1);
	k->keeper = NULL;
	k->worker = cfg.worker;
	memcpy(k->dir, cfg.dir, dir_len + 1);
	luaL_setmetatable(L, KEEPER_MT);
	lua_pushvalue(L, 1);
	sfl_setuservalue(L, -2);
	errno = 0;
	rc = sf_keeper_new(gen, &cfg, &k->keeper);
	err = errno;
	switch (rc) {
	case SF_OK:
		return 1;
	case SF_E_STATE_IO:
		return refuse(L, sf_code_name(rc), "keeper.dir '%s' is not a usable directory: %s",
		              k->dir, err != 0 ? strerror(err) : "not a directory");
	case SF_E_WORKER_RANGE:
		return refuse(L, sf_code_name(rc), "keeper.worker %I is outside 0..%I "
		              "(layout.worker_bits = %d)", (lua_Integer)cfg.worker,
		              (lua_Integer)((1LL << sf_gen_layout(gen)->worker_bits) - 1),
		              (int)sf_gen_layout(gen)->worker_bits);
	default:
		return refuse(L, sf_code_name(rc), "cannot create the keeper: %s", sf_code_text(rc));
	}
}

/* The refusal of a high-water mark file operation, with the path and errno. */
static int refuse_hwm(lua_State *L, int rc, int err, const char *dir, uint32_t worker)
{
	const char *code = sf_code_name(rc);

	switch (rc) {
	case SF_E_NOT_FOUND:
		return refuse(L, code, "no high-water mark stored for worker %d under '%s'",
		              (int)worker, dir);
	case SF_E_STATE_IO:
		return refuse(L, code, "the high-water mark of worker %d under '%s' cannot be read "
		              "or written: %s", (int)worker, dir, errno_text(err));
	case SF_E_STATE_CORRUPT:
		return refuse(L, code, "the high-water mark file of worker %d under '%s' is corrupt",
		              (int)worker, dir);
	case SF_E_INVALID:
		return refuse(L, code, "the high-water mark path under '%s' is too long", dir);
	default:
		return refuse(L, code, "%s", sf_code_text(rc));
	}
}

/*
 * keeper:step() -> stored | nil, code, detail
 * One step: stores now + ahead_ms when less than refresh_ms is left, and
 * publishes the durable mark as the generator's local ceiling. stored is
 * true when a file was written. On a failed store the old ceiling stays.
 * Call keeper:start_mark() first on start: the first step does not read
 * the file, and would otherwise store below a mark already there.
 */
static int l_keeper_step(lua_State *L)
{
	lkeeper *k = check_keeper(L, 1);
	bool stored = false;
	int rc, err;

	errno = 0;
	rc = sf_keeper_step(k->keeper, &stored);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, k->dir, k->worker);
	lua_pushboolean(L, stored);
	return 1;
}

/* keeper:mark() -> the durable mark (Unix ms), math.mininteger before any */
static int l_keeper_mark(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sf_keeper_mark(check_keeper(L, 1)->keeper));
	return 1;
}

/*
 * keeper:start_mark() -> mark_ms, found | nil, code, detail
 * The mark a start must wait past: the stored one (found = true, and the
 * keeper will never store below it), or now + ahead_ms when no file exists
 * (found = false). A corrupt or unreadable file is refused.
 */
static int l_keeper_start_mark(lua_State *L)
{
	lkeeper *k = check_keeper(L, 1);
	int64_t mark = 0;
	bool found = false;
	int rc, err;

	errno = 0;
	rc = sf_keeper_start_mark(k->keeper, &mark, &found);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, k->dir, k->worker);
	lua_pushinteger(L, (lua_Integer)mark);
	lua_pushboolean(L, found);
	return 2;
}

static int keeper_gc(lua_State *L)
{
	lkeeper *k = luaL_checkudata(L, 1, KEEPER_MT);

	sf_keeper_free(k->keeper);
	k->keeper = NULL;
	return 0;
}

static int keeper_tostring(lua_State *L)
{
	lkeeper *k = luaL_checkudata(L, 1, KEEPER_MT);

	if (!k->keeper)
		lua_pushfstring(L, KEEPER_MT " (freed): %p", (void *)k);
	else
		lua_pushfstring(L, KEEPER_MT " (worker %d under '%s', mark %I): %p", (int)k->worker,
		                k->dir, (lua_Integer)sf_keeper_mark(k->keeper), (void *)k);
	return 1;
}

/* ---- manual clock ------------------------------------------------------ */

static int64_t lclock_wall_ns(void *ctx)
{
	return atomic_load_explicit(&((lclock *)ctx)->wall_ns, memory_order_acquire);
}

static int64_t lclock_mono_ns(void *ctx)
{
	return atomic_load_explicit(&((lclock *)ctx)->mono_ns, memory_order_acquire);
}

static lclock *check_clock(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, CLOCK_MT);
}

/*
 * core.manual_clock(wall_ns, mono_ns) -> clock
 * A test clock for core.new: it reads exactly what it was told (Unix ns for
 * wall, any origin for mono) and moves only through its methods. Nothing to
 * free: a generator using it keeps it alive.
 */
static int l_manual_clock(lua_State *L)
{
	int64_t wall = arg_int(L, 1, "wall_ns");
	int64_t mono = arg_int(L, 2, "mono_ns");
	lclock *c = sfl_newuserdata(L, sizeof *c);

	c->clock.wall_ns = lclock_wall_ns;
	c->clock.mono_ns = lclock_mono_ns;
	c->clock.ctx = c;
	atomic_init(&c->wall_ns, wall);
	atomic_init(&c->mono_ns, mono);
	luaL_setmetatable(L, CLOCK_MT);
	return 1;
}

/* clock:set_wall(ns): the wall clock reads ns (it may step back). */
static int l_clock_set_wall(lua_State *L)
{
	lclock *c = check_clock(L, 1);

	atomic_store_explicit(&c->wall_ns, arg_int(L, 2, "ns"), memory_order_release);
	return 0;
}

/* clock:set_mono(ns): the monotonic clock reads ns. */
static int l_clock_set_mono(lua_State *L)
{
	lclock *c = check_clock(L, 1);

	atomic_store_explicit(&c->mono_ns, arg_int(L, 2, "ns"), memory_order_release);
	return 0;
}

/* clock:advance(ns): both clocks move forward by ns >= 0. */
static int l_clock_advance(lua_State *L)
{
	lclock *c = check_clock(L, 1);
	int64_t ns = arg_int_range(L, 2, "ns", 0, INT64_MAX);

	atomic_fetch_add_explicit(&c->wall_ns, ns, memory_order_acq_rel);
	atomic_fetch_add_explicit(&c->mono_ns, ns, memory_order_acq_rel);
	return 0;
}

/* clock:wall() -> ns */
static int l_clock_wall(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lclock_wall_ns(check_clock(L, 1)));
	return 1;
}

/* clock:mono() -> ns */
static int l_clock_mono(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lclock_mono_ns(check_clock(L, 1)));
	return 1;
}

static int clock_tostring(lua_State *L)
{
	lclock *c = check_clock(L, 1);

	lua_pushfstring(L, CLOCK_MT " (wall %I ns, mono %I ns): %p",
	                (lua_Integer)lclock_wall_ns(c), (lua_Integer)lclock_mono_ns(c), (void *)c);
	return 1;
}

/* ---- module functions -------------------------------------------------- */

/* core.hwm_load(dir, worker) -> mark_ms | nil, code, detail (not_found, state_io, ...) */
static int l_hwm_load(lua_State *L)
{
	const char *dir = arg_string(L, 1, "dir");
	uint32_t worker = (uint32_t)arg_int_range(L, 2, "worker", 0, WORKER_MAX);
	int64_t mark = 0;
	int rc, err;

	errno = 0;
	rc = sf_hwm_load(dir, worker, &mark);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, dir, worker);
	lua_pushinteger(L, (lua_Integer)mark);
	return 1;
}

/*
 * core.hwm_store(dir, worker, mark_ms) -> true | nil, code, detail
 * Atomic and durable (temp file, fsync, rename, fsync of dir). mark_ms >= 0.
 */
static int l_hwm_store(lua_State *L)
{
	const char *dir = arg_string(L, 1, "dir");
	uint32_t worker = (uint32_t)arg_int_range(L, 2, "worker", 0, WORKER_MAX);
	int64_t mark = arg_int_range(L, 3, "mark_ms", 0, INT64_MAX);
	int rc, err;

	errno = 0;
	rc = sf_hwm_store(dir, worker, mark);
	err = errno;
	if (rc != SF_OK)
		return refuse_hwm(L, rc, err, dir, worker);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * core.discipline() -> {synchronised=, max_error_us=, est_error_us=, state=,
 * offset_us=} | nil, code, detail
 * The kernel's clock discipline (adjtimex, read only). Reports; the policy
 * decides.
 */
static int l_discipline(lua_State *L)
{
	sf_discipline d;
	int rc, err;

	errno = 0;
	rc = sf_discipline_read(&d);
	err = errno;
	if (rc != SF_OK)
		return refuse(L, sf_code_name(rc), "adjtimex cannot read the clock discipline: %s",
		              errno_text(err));
	lua_createtable(L, 0, 5);
	set_bool(L, "synchronised", d.synchronised);
	set_int(L, "max_error_us", d.max_error_us);
	set_int(L, "est_error_us", d.est_error_us);
	set_int(L, "state", d.state);
	set_int(L, "offset_us", d.offset_us);
	return 1;
}

/* core.wall_ns() -> CLOCK_REALTIME in ns */
static int l_wall_ns(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sf_clock_wall_ns(NULL));
	return 1;
}

/* core.mono_ns() -> CLOCK_MONOTONIC in ns */
static int l_mono_ns(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sf_clock_mono_ns(NULL));
	return 1;
}

/* core.code_name(rc) -> "ok", a code's snake_case name, or "unknown_error" */
static int l_code_name(lua_State *L)
{
	int64_t rc = arg_int(L, 1, "rc");

	/* anything outside the codes (even beyond an int) is "unknown_error" */
	lua_pushstring(L, sf_code_name(rc < SF_CODE_MIN || rc > 0 ? 1 : (int)rc));
	return 1;
}

/*
 * core.clock_source([want]) -> "tsc" | "clock_gettime", why_not
 * What generators on the real clocks mint with; why_not is "" while the TSC
 * is used, else why not (see sf_tsc.c). want = "clock_gettime" keeps the TSC
 * out of the process from then on; "auto" changes nothing.
 */
static int l_clock_source(lua_State *L)
{
	static const char *const wants[] = { "auto", "clock_gettime", NULL };
	const char *why_not;

	if (!lua_isnoneornil(L, 1) && luaL_checkoption(L, 1, NULL, wants) == 1)
		sf_clock_source_avoid_tsc();
	lua_pushstring(L, sf_clock_source(&why_not));
	lua_pushstring(L, why_not);
	return 2;
}

/* ---- registration ------------------------------------------------------ */

static const luaL_Reg gen_methods[] = {
	{ "next", l_gen_next },
	{ "next_ids", l_gen_next_ids },
	{ "reserve", l_gen_reserve },
	{ "decode", l_gen_decode },
	{ "compose", l_gen_compose },
	{ "layout", l_gen_layout },
	{ "grant", l_gen_grant },
	{ "revoke", l_gen_revoke },
	{ "grant_info", l_gen_grant_info },
	{ "set_max_wait_ms", l_gen_set_max_wait_ms },
	{ "set_borrow", l_gen_set_borrow },
	{ "policy", l_gen_policy },
	{ "set_ceiling", l_gen_set_ceiling },
	{ "ceiling", l_gen_ceiling },
	{ "floor_raise", l_gen_floor_raise },
	{ "last_ms", l_gen_last_ms },
	{ "start_check", l_gen_start_check },
	{ "stats", l_gen_stats },
	{ "keeper", l_gen_keeper },
	{ NULL, NULL }
};

static const luaL_Reg gen_meta[] = {
	{ "__gc", gen_gc },
	{ "__tostring", gen_tostring },
	{ NULL, NULL }
};

static const luaL_Reg clock_methods[] = {
	{ "set_wall", l_clock_set_wall },
	{ "set_mono", l_clock_set_mono },
	{ "advance", l_clock_advance },
	{ "wall", l_clock_wall },
	{ "mono", l_clock_mono },
	{ NULL, NULL }
};

static const luaL_Reg clock_meta[] = {
	{ "__tostring", clock_tostring },
	{ NULL, NULL }
};

static const luaL_Reg keeper_methods[] = {
	{ "step", l_keeper_step },
	{ "mark", l_keeper_mark },
	{ "start_mark", l_keeper_start_mark },
	{ NULL, NULL }
};

static const luaL_Reg keeper_meta[] = {
	{ "__gc", keeper_gc },
	{ "__tostring", keeper_tostring },
	{ NULL, NULL }
};

static const luaL_Reg core_functions[] = {
	{ "new", l_new },
	{ "process_generator", l_process_generator },
	{ "manual_clock", l_manual_clock },
	{ "hwm_load", l_hwm_load },
	{ "hwm_store", l_hwm_store },
	{ "discipline", l_discipline },
	{ "wall_ns", l_wall_ns },
	{ "mono_ns", l_mono_ns },
	{ "code_name", l_code_name },
	{ "clock_source", l_clock_source },
	{ NULL, NULL }
};

/* The metatable `name` with its metamethods and __index = the methods. */
void sfl_class_register(lua_State *L, const char *name, const luaL_Reg *meta,
                        const luaL_Reg *methods)
{
	luaL_newmetatable(L, name);
	luaL_setfuncs(L, meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

/*
 * require "snowflake.core": the module table (functions above, codes =
 * {name = negative code}, VERSION). Loading it again in another state of
 * the process shares only the process generator.
 */
SFL_EXPORT int luaopen_snowflake_core(lua_State *L)
{
	sfl_class_register(L, GEN_MT, gen_meta, gen_methods);
	sfl_class_register(L, CLOCK_MT, clock_meta, clock_methods);
	sfl_class_register(L, KEEPER_MT, keeper_meta, keeper_methods);
	luaL_newlib(L, core_functions);
	lua_createtable(L, 0, -SF_CODE_MIN);
	for (int code = -1; code >= SF_CODE_MIN; code--) {
		lua_pushinteger(L, code);
		lua_setfield(L, -2, sf_code_name(code));
	}
	lua_setfield(L, -2, "codes");
	lua_pushliteral(L, SFL_VERSION);
	lua_setfield(L, -2, "VERSION");
	sfl_lease_open(L);
	sfl_serve_open(L);
	return 1;
}
