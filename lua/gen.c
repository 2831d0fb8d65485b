/*
 * snowflake.core's generator class, "snowflake.gen" (core/snowflake.h's
 * sf_gen): core.new, core.process_generator and the methods below. Each
 * method checks its arguments, makes one core call and pushes the result or
 * the refusal (helpers.h). The methods of the HTTP paths (gen:fetch_id,
 * gen:next_text, gen:probe) live in serve.c, gen:keeper in keeper.c; core.c
 * puts them all in the one method table.
 *
 * The one piece of C state in a global, documented: the process generator
 * of core.process_generator, one sf_gen per process shared by every Lua
 * state and thread (HAProxy runs one state per thread), never freed.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "classes.h"
#include "helpers.h"

#define SPIN_LIMIT_NS (2 * SFL_NS_PER_MS)   /* a used-up millisecond is waited out */
#define BATCH_MAX     65536
#define RESERVE_MAX   (1 << 22)

/* The three-value refusals, in the one shape. */
#define refuse(L, code, ...) sfl_refuse((L), (code), NULL, __VA_ARGS__)

static _Atomic(sf_gen *) process_gen;

static int64_t floor_ms(int64_t ns)
{
	return ns / SFL_NS_PER_MS - (ns % SFL_NS_PER_MS < 0);
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
			sfl_raise_bad(L, arg, arg, "layout", "a table");
		lua_pushnil(L);
		while (lua_next(L, arg) != 0) {
			const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

			if (key && strcmp(key, "epoch_ms") == 0)
				in->epoch_ms = sfl_value_int(L, arg, -1, "layout.epoch_ms");
			else if (key && strcmp(key, "timestamp_bits") == 0)
				in->timestamp_bits = sfl_value_int(L, arg, -1, "layout.timestamp_bits");
			else if (key && strcmp(key, "worker_bits") == 0)
				in->worker_bits = sfl_value_int(L, arg, -1, "layout.worker_bits");
			else if (key && strcmp(key, "sequence_bits") == 0)
				in->sequence_bits = sfl_value_int(L, arg, -1, "layout.sequence_bits");
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
	sfl_set_int(L, "epoch_ms", layout->epoch_ms);
	sfl_set_int(L, "timestamp_bits", layout->timestamp_bits);
	sfl_set_int(L, "worker_bits", layout->worker_bits);
	sfl_set_int(L, "sequence_bits", layout->sequence_bits);
}

/* ---- generator --------------------------------------------------------- */

/* A new handle with its metatable, not yet bound to a generator. */
static sfl_gen *gen_push(lua_State *L)
{
	sfl_gen *g = sfl_newuserdata(L, sizeof *g);

	g->gen = NULL;
	g->shared = false;
	luaL_setmetatable(L, SFL_GEN_MT);
	return g;
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
	sfl_gen *g;
	int rc;

	layout_read(L, 1, &layout, &in);
	if (!lua_isnoneornil(L, 2))
		clock = sfl_check_clock(L, 2);
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
	sfl_gen *g;

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
	uint32_t n = (uint32_t)sfl_arg_int_range(L, 2, "n", 1, BATCH_MAX);
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
	uint32_t n = (uint32_t)sfl_arg_int_range(L, 2, "n", 1, RESERVE_MAX);
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
	int64_t id = sfl_arg_int(L, 2, "id");
	sf_decoded parts;
	int rc = sf_id_decode(sf_gen_layout(gen), id, &parts);

	if (rc != SF_OK) {
		if (id < 0)
			return refuse(L, sf_code_name(rc), "id %I is negative", (lua_Integer)id);
		return refuse(L, sf_code_name(rc), "id %I is not valid for this layout",
		              (lua_Integer)id);
	}
	lua_createtable(L, 0, 3);
	sfl_set_int(L, "timestamp_ms", parts.timestamp_ms);
	sfl_set_int(L, "worker", parts.worker);
	sfl_set_int(L, "sequence", parts.sequence);
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

	parts.timestamp_ms = sfl_arg_int(L, 2, "timestamp_ms");
	parts.worker = (uint32_t)sfl_arg_int_range(L, 3, "worker", 0, SFL_WORKER_MAX);
	parts.sequence = (uint32_t)sfl_arg_int_range(L, 4, "sequence", 0, SFL_SEQUENCE_MAX);
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
	int64_t worker = sfl_arg_int_range(L, 2, "worker", 0, SFL_WORKER_MAX);
	int64_t deadline_ns = sfl_arg_int(L, 3, "fence_deadline_ns");
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
	const char *name = sfl_arg_string(L, 2, "code_name");
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
	int64_t n = sfl_arg_int_range(L, 2, "max_wait_ms", 0, INT64_MAX);

	sf_gen_set_max_wait_ms(gen, n);
	return 0;
}

/* gen:set_borrow(bool): use the rest of a frozen millisecond on a regression. */
static int l_gen_set_borrow(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);

	sf_gen_set_borrow(gen, sfl_arg_bool(L, 2, "borrow"));
	return 0;
}

/* gen:policy() -> {max_wait_ms=, borrow=} */
static int l_gen_policy(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);

	lua_createtable(L, 0, 2);
	sfl_set_int(L, "max_wait_ms", sf_gen_max_wait_ms(gen));
	sfl_set_bool(L, "borrow", sf_gen_borrow(gen));
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

	sf_gen_ceiling_set(gen, which, sfl_arg_int(L, 3, "unix_ms"));
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
	int64_t unix_ms = sfl_arg_int_range(L, 2, "unix_ms", 0, INT64_MAX);
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
	return sfl_arg_int_range(L, arg, name, 0, INT64_MAX / SFL_NS_PER_MS - 1);
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
	int64_t bound_ms = sfl_arg_int_range(L, 4, "bound_ms", 0, INT64_MAX);
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
	sfl_set_int(L, "clock_waits", (int64_t)st.clock_waits);
	sfl_set_int(L, "clock_refusals", (int64_t)st.clock_refusals);
	sfl_set_int(L, "clock_borrows", (int64_t)st.clock_borrows);
	sfl_set_int(L, "sequence_exhausted", (int64_t)st.sequence_exhausted);
	sfl_set_int(L, "fenced_refusals", (int64_t)st.fenced_refusals);
	sfl_set_int(L, "hwm_stalls", (int64_t)st.hwm_stalls);
	sfl_set_int(L, "last_regression_ms", st.last_regression_ms);
	return 1;
}

static int gen_gc(lua_State *L)
{
	sfl_gen *g = luaL_checkudata(L, 1, SFL_GEN_MT);

	if (g->gen && !g->shared)
		sf_gen_free(g->gen);
	g->gen = NULL;
	return 0;
}

static int gen_tostring(lua_State *L)
{
	sfl_gen *g = luaL_checkudata(L, 1, SFL_GEN_MT);
	const sf_layout *layout;
	int32_t worker;

	if (!g->gen) {
		lua_pushfstring(L, SFL_GEN_MT " (freed): %p", (void *)g);
		return 1;
	}
	layout = sf_gen_layout(g->gen);
	sf_gen_grant_get(g->gen, &worker, NULL, NULL);
	if (worker < 0)
		lua_pushliteral(L, "no grant");
	else
		lua_pushfstring(L, "worker %d", (int)worker);
	lua_pushfstring(L, SFL_GEN_MT "%s (%s, layout %I/%d/%d/%d): %p",
	                g->shared ? " process" : "", lua_tostring(L, -1), (lua_Integer)layout->epoch_ms,
	                (int)layout->timestamp_bits, (int)layout->worker_bits,
	                (int)layout->sequence_bits, (void *)g->gen);
	return 1;
}


const luaL_Reg sfl_gen_methods[] = {
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
	{ NULL, NULL }
};

const luaL_Reg sfl_gen_meta[] = {
	{ "__gc", gen_gc },
	{ "__tostring", gen_tostring },
	{ NULL, NULL }
};

const luaL_Reg sfl_gen_functions[] = {
	{ "new", l_new },
	{ "process_generator", l_process_generator },
	{ NULL, NULL }
};
