/*
 * snowflake.core's lease class, "snowflake.lease" (core/sf_lease.h: worker
 * IDs from ZooKeeper), its asynchronous admin requests,
 * "snowflake.lease_admin", and what library mode needs around it (a log
 * queue, sleeping, making the state directory). Same rules as every class
 * file: check the arguments, one core call, push the result or the refusal.
 *
 * The lease logs from its own threads, where no Lua may run. Its lines go
 * into a bounded process-wide queue that Lua drains with core.logs() (HAProxy
 * from a task, library mode on status calls) and hands to its own logger.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "classes.h"
#include "helpers.h"
#include "sf_lease.h"

#define LEASE_MT   SFL_LEASE_MT
#define ADMIN_MT   SFL_ADMIN_MT
#define LOG_SLOTS  256
#define LOG_LINE   400

/*
 * A lease and everyone who may use it. sf_lease_stop frees the lease, and
 * its users live on other threads: the handles in every Lua state of the
 * process (HAProxy runs one per thread, all reaching the process lease) and
 * the admin requests, whose calls run on threads of their own for up to a
 * session timeout. So the binding never hands out the sf_lease itself:
 *
 *  - the box is reference-counted (each handle, the process slot and each
 *    admin request in flight hold one) and freed by the last;
 *  - a call on the lease holds a use for its duration (lease_use /
 *    lease_unuse); stopping waits for the uses in flight to end (join
 *    before free), and once it has begun no new use starts: the handles
 *    left say "the lease is stopped".
 */
struct lease_box {
	pthread_mutex_t lock;
	pthread_cond_t  idle;      /* signalled when uses drop to 0 and when a stop ends */
	int             refs;
	int             uses;      /* calls running on `lease` now */
	bool            stopping;  /* a stop began: no new use */
	sf_lease       *lease;     /* NULL once stopped */
};

typedef struct llease {
	struct lease_box *box;     /* a reference, dropped by __gc */
	bool              shared;  /* a handle to the process lease: __gc leaves it running */
} llease;

/* The process lease (the documented exception to "no C state in globals",
 * like the process generator): HAProxy runs one Lua state per thread and
 * all of them must reach the one lease the process holds. The slot holds a
 * reference. The pid guards against a forked child using its parent's
 * lease, whose threads it lacks. */
static pthread_mutex_t proc_lease_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lease_box *proc_box;
static pid_t proc_box_pid;

/* ---- the lease's lifetime ---------------------------------------------- */

/* A box holding a started lease, with one reference; NULL without memory. */
static struct lease_box *box_new(sf_lease *lease)
{
	struct lease_box *box = calloc(1, sizeof *box);

	if (!box)
		return NULL;
	if (pthread_mutex_init(&box->lock, NULL) != 0) {
		free(box);
		return NULL;
	}
	if (pthread_cond_init(&box->idle, NULL) != 0) {
		pthread_mutex_destroy(&box->lock);
		free(box);
		return NULL;
	}
	box->refs = 1;
	box->lease = lease;
	return box;
}

static void box_ref(struct lease_box *box)
{
	pthread_mutex_lock(&box->lock);
	box->refs++;
	pthread_mutex_unlock(&box->lock);
}

static void box_stop(struct lease_box *box);

/* Drops a reference; the last one stops a lease still running (a handle
 * that was never stopped) and frees the box. */
static void box_unref(struct lease_box *box)
{
	bool last;

	if (!box)
		return;
	pthread_mutex_lock(&box->lock);
	last = --box->refs == 0;
	pthread_mutex_unlock(&box->lock);
	if (!last)
		return;
	box_stop(box);
	pthread_cond_destroy(&box->idle);
	pthread_mutex_destroy(&box->lock);
	free(box);
}

/* The lease for one call, or NULL once a stop began; a non-NULL answer must
 * be handed back with lease_unuse, and nothing may raise in between. */
static sf_lease *lease_use(struct lease_box *box)
{
	sf_lease *lease = NULL;

	pthread_mutex_lock(&box->lock);
	if (!box->stopping && box->lease) {
		box->uses++;
		lease = box->lease;
	}
	pthread_mutex_unlock(&box->lock);
	return lease;
}

static void lease_unuse(struct lease_box *box)
{
	pthread_mutex_lock(&box->lock);
	if (--box->uses == 0)
		pthread_cond_broadcast(&box->idle);
	pthread_mutex_unlock(&box->lock);
}

/* Stops the lease once every use in flight has ended; idempotent, and a
 * second caller returns when the first one's stop is done. */
static void box_stop(struct lease_box *box)
{
	sf_lease *lease;

	pthread_mutex_lock(&box->lock);
	if (box->stopping) {
		while (box->lease)
			pthread_cond_wait(&box->idle, &box->lock);
		pthread_mutex_unlock(&box->lock);
		return;
	}
	box->stopping = true;
	while (box->uses > 0)
		pthread_cond_wait(&box->idle, &box->lock);
	lease = box->lease;
	pthread_mutex_unlock(&box->lock);
	sf_lease_stop(lease); /* blocks; NULL-safe */
	pthread_mutex_lock(&box->lock);
	box->lease = NULL;
	pthread_cond_broadcast(&box->idle);
	pthread_mutex_unlock(&box->lock);
}

/* ---- the log queue ----------------------------------------------------- */

struct log_entry {
	int  level;
	char line[LOG_LINE];
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_entry log_ring[LOG_SLOTS];
static unsigned log_head, log_count;
static uint64_t log_dropped;

/* Runs on the lease's threads: copy and return. A full queue keeps the
 * oldest lines (the start of an incident) and counts what it drops. */
static void log_enqueue(void *ctx, int level, const char *line)
{
	(void)ctx;
	pthread_mutex_lock(&log_lock);
	if (log_count == LOG_SLOTS) {
		log_dropped++;
	} else {
		struct log_entry *e = &log_ring[(log_head + log_count) % LOG_SLOTS];

		e->level = level;
		snprintf(e->line, sizeof e->line, "%s", line);
		log_count++;
	}
	pthread_mutex_unlock(&log_lock);
}

/* core.logs([max]) -> array of {level=, line=}, dropped_since_last_call */
static int l_logs(lua_State *L)
{
	lua_Integer max = (lua_Integer)sfl_opt_int_range(L, 1, "max", LOG_SLOTS, 1, INT64_MAX);
	struct log_entry batch[32];
	unsigned taken = 0, n;
	uint64_t dropped;

	lua_newtable(L);
	do {
		pthread_mutex_lock(&log_lock);
		n = log_count < 32 ? log_count : 32;
		if ((lua_Integer)(taken + n) > max)
			n = (unsigned)(max - taken);
		for (unsigned i = 0; i < n; i++) {
			batch[i] = log_ring[log_head];
			log_head = (log_head + 1) % LOG_SLOTS;
			log_count--;
		}
		pthread_mutex_unlock(&log_lock);
		for (unsigned i = 0; i < n; i++) {
			lua_createtable(L, 0, 2);
			lua_pushinteger(L, batch[i].level);
			lua_setfield(L, -2, "level");
			lua_pushstring(L, batch[i].line);
			lua_setfield(L, -2, "line");
			lua_rawseti(L, -2, ++taken);
		}
	} while (n == 32 && (lua_Integer)taken < max);
	pthread_mutex_lock(&log_lock);
	dropped = log_dropped;
	log_dropped = 0;
	pthread_mutex_unlock(&log_lock);
	lua_pushinteger(L, (lua_Integer)dropped);
	return 2;
}

/* At exit: the lines the lease logged since the last drain, to stderr (no
 * Lua runs any more to hand them to its logger). */
static void log_drain_to_stderr(void)
{
	pthread_mutex_lock(&log_lock);
	while (log_count > 0) {
		fprintf(stderr, "edge-snowflake %s\n", log_ring[log_head].line);
		log_head = (log_head + 1) % LOG_SLOTS;
		log_count--;
	}
	pthread_mutex_unlock(&log_lock);
	fflush(stderr);
}

/* ---- lease ------------------------------------------------------------- */

/* cfg[key] (the table at argument tbl), an integer within lo..hi, or dflt
 * when absent; anything else raises, naming lease.<key> and the value. */
static int64_t field_int(lua_State *L, int tbl, const char *key, int64_t dflt, int64_t lo, int64_t hi)
{
	int64_t v = dflt;

	lua_getfield(L, tbl, key);
	if (!lua_isnil(L, -1)) {
		const char *name = lua_pushfstring(L, "lease.%s", key);

		v = sfl_value_int_range(L, tbl, -2, name, lo, hi);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return v;
}

/* cfg[key], a string, or dflt when absent. The string stays referenced by
 * the config table, which the caller holds until sf_lease_start has copied
 * it. */
static const char *field_str(lua_State *L, int tbl, const char *key, const char *dflt)
{
	const char *v = dflt;

	lua_getfield(L, tbl, key);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING) {
			const char *name = lua_pushfstring(L, "lease.%s", key);

			sfl_raise_bad(L, tbl, -2, name, "a string");
		}
		v = lua_tostring(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* cfg[key], a boolean, or dflt when absent. */
static bool field_bool(lua_State *L, int tbl, const char *key, bool dflt)
{
	bool v = dflt;

	lua_getfield(L, tbl, key);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TBOOLEAN) {
			const char *name = lua_pushfstring(L, "lease.%s", key);

			sfl_raise_bad(L, tbl, -2, name, "a boolean");
		}
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

static const char *const lease_keys[] = {
	"zk_hosts", "root", "node_name", "state_dir", "session_timeout_ms", "margin_ms",
	"registry_ahead_ms", "local_ahead_ms", "start_bound_ms", "reclaim_delay_ms", "log_level",
	"auth_file", "require_acl", NULL
};

/* Reads the lease config table at arg 2 into *cfg (defaults for missing
 * keys); raises on an unknown key or a bad value, naming it. The strings stay
 * referenced by the table, which stays on the stack while the caller uses
 * them (sf_lease_start copies them). */
static void lease_config_read(lua_State *L, sf_lease_config *cfg)
{
	if (lua_type(L, 2) != LUA_TTABLE)
		sfl_raise_bad(L, 2, 2, "lease config", "a table");
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		bool known = false;

		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, 2, lua_pushfstring(L, "lease config keys must be strings, got %s",
			                                    luaL_typename(L, -1)));
		for (int i = 0; lease_keys[i]; i++)
			known |= strcmp(lua_tostring(L, -1), lease_keys[i]) == 0;
		if (!known)
			luaL_argerror(L, 2, lua_pushfstring(L, "unknown key 'lease.%s' (expected zk_hosts, "
			              "root, node_name, state_dir, session_timeout_ms, margin_ms, "
			              "registry_ahead_ms, local_ahead_ms, start_bound_ms, "
			              "reclaim_delay_ms, log_level, auth_file, require_acl)", lua_tostring(L, -1)));
	}
	sf_lease_config_defaults(cfg);
	cfg->zk_hosts = field_str(L, 2, "zk_hosts", cfg->zk_hosts);
	cfg->root = field_str(L, 2, "root", cfg->root);
	cfg->node_name = field_str(L, 2, "node_name", NULL);
	cfg->state_dir = field_str(L, 2, "state_dir", cfg->state_dir);
	cfg->session_timeout_ms = field_int(L, 2, "session_timeout_ms", cfg->session_timeout_ms, 1, 3600000);
	cfg->margin_ms = field_int(L, 2, "margin_ms", cfg->margin_ms, 0, 3600000);
	cfg->registry_ahead_ms = field_int(L, 2, "registry_ahead_ms", 0, 0, 86400000);
	cfg->local_ahead_ms = field_int(L, 2, "local_ahead_ms", cfg->local_ahead_ms, 1, 3600000);
	cfg->start_bound_ms = field_int(L, 2, "start_bound_ms", cfg->start_bound_ms, 0, 86400000);
	cfg->reclaim_delay_ms = field_int(L, 2, "reclaim_delay_ms", cfg->reclaim_delay_ms, 0, 86400000);
	cfg->log_level = (int)field_int(L, 2, "log_level", cfg->log_level, 0, 7);
	cfg->auth_file = field_str(L, 2, "auth_file", NULL);
	cfg->require_acl = field_bool(L, 2, "require_acl", false);
	cfg->log = log_enqueue;
	cfg->log_ctx = NULL;
}

/* A new handle, not yet holding a box; gen_arg's generator (0: none) is kept
 * alive with it (the lease drives the generator). */
static llease *handle_push(lua_State *L, int gen_arg)
{
	llease *ud = sfl_newuserdata(L, sizeof *ud);

	ud->box = NULL;
	ud->shared = false;
	luaL_setmetatable(L, LEASE_MT);
	if (gen_arg) {
		lua_pushvalue(L, gen_arg);
		sfl_setuservalue(L, -2);
	}
	return ud;
}

/* Starts the lease into ud (no Lua call: safe under a lock); returns the
 * SF code. */
static int lease_start_into(llease *ud, sf_gen *gen, const sf_lease_config *cfg)
{
	sf_lease *lease = NULL;
	int rc = sf_lease_start(gen, cfg, &lease);

	if (rc != SF_OK)
		return rc;
	ud->box = box_new(lease);
	if (!ud->box) {
		sf_lease_stop(lease);
		return SF_E_NOMEM;
	}
	return SF_OK;
}

static int refuse_start(lua_State *L, int rc, const sf_lease_config *cfg)
{
	char cred[1100], why[600];

	/* the credential file's own words say what is wrong with it */
	if (rc == SF_E_REGISTRY_ACCESS && cfg->auth_file &&
	    sf_lease_auth_load(cfg->auth_file, cred, sizeof cred, why, sizeof why) != SF_OK)
		return sfl_refuse(L, sf_code_name(rc), NULL, "cannot start the lease: %s", why);
	memset(cred, 0, sizeof cred);
	return sfl_refuse(L, sf_code_name(rc), NULL, "cannot start the lease with registry %s "
	                  "under %s: %s", cfg->zk_hosts, cfg->root, sf_code_text(rc));
}

/*
 * core.lease_start(gen, cfg) -> lease | nil, code, detail
 * cfg keys: zk_hosts, root, node_name, state_dir, session_timeout_ms,
 * margin_ms, registry_ahead_ms, local_ahead_ms, start_bound_ms,
 * reclaim_delay_ms, log_level (syslog 0..7), auth_file, require_acl. Unknown
 * keys and bad values raise. Starts threads: call it in the process that
 * serves.
 */
static int l_lease_start(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	sf_lease_config cfg;
	llease *ud;
	int rc;

	lease_config_read(L, &cfg);
	ud = handle_push(L, 1);
	rc = lease_start_into(ud, gen, &cfg);
	if (rc != SF_OK)
		return refuse_start(L, rc, &cfg);
	return 1;
}

/* A handle to the process lease: the slot's box, one more reference. Under
 * proc_lease_lock (the slot's reference keeps the box alive). */
static void handle_share(llease *ud, struct lease_box *box)
{
	box_ref(box);
	ud->box = box;
	ud->shared = true;
}

/*
 * The process's exit (a reload's old worker, a soft stop: HAProxy calls exit()
 * once its last connection is done) stops the process lease: its worker node
 * goes at once (free for the next claim, not a session timeout later) with the
 * registry mark brought down to what was issued, and the "stopped" line says
 * so, on stderr (HAProxy's own: run.log, the journal). Without it the node
 * outlived the process by a session timeout and no line marked the end of its
 * window (found by the chaos soak: every reload's old worker). A SIGKILL or a
 * hard stop skips it: the session then expires as before.
 */
static void process_lease_at_exit(void)
{
	struct lease_box *box = NULL;

	pthread_mutex_lock(&proc_lease_lock);
	if (proc_box && proc_box_pid == getpid())
		box = proc_box;
	pthread_mutex_unlock(&proc_lease_lock);
	if (!box)
		return;
	box_stop(box); /* blocks at most about a session timeout */
	log_drain_to_stderr();
}

/*
 * core.process_lease_start(gen, cfg) -> lease, started | nil, code, detail
 * Starts the lease of this process once: the first caller in the process
 * starts it (started = true), later callers (other threads' Lua states) get
 * a handle to the same lease (started = false). The generator must be the
 * process generator, which is never freed.
 */
static int l_process_lease_start(lua_State *L)
{
	sf_gen *gen = sfl_check_gen(L, 1);
	sf_lease_config cfg;
	llease *ud;
	bool started = false;
	int rc = SF_OK;

	/* everything that may raise first: nothing raises under the lock */
	lease_config_read(L, &cfg);
	ud = handle_push(L, 1);
	pthread_mutex_lock(&proc_lease_lock);
	if (proc_box && proc_box_pid == getpid()) {
		handle_share(ud, proc_box);
	} else {
		/* starting under the lock: two threads never both start one */
		rc = lease_start_into(ud, gen, &cfg);
		if (rc == SF_OK) {
			ud->shared = true;
			box_ref(ud->box); /* the slot's reference */
			proc_box = ud->box;
			proc_box_pid = getpid();
			started = true;
			/* only from a pinned object: an unloaded one would take the
			 * handler's code with it */
			static bool at_exit_registered;
			if (!at_exit_registered && sfl_module_pinned())
				at_exit_registered = atexit(process_lease_at_exit) == 0;
		}
	}
	pthread_mutex_unlock(&proc_lease_lock);
	if (rc != SF_OK)
		return refuse_start(L, rc, &cfg);
	lua_pushboolean(L, started);
	return 2;
}

/* core.process_lease() -> lease | nil: a handle to this process's lease */
static int l_process_lease(lua_State *L)
{
	llease *ud = handle_push(L, 0);

	pthread_mutex_lock(&proc_lease_lock);
	if (proc_box && proc_box_pid == getpid())
		handle_share(ud, proc_box);
	pthread_mutex_unlock(&proc_lease_lock);
	if (!ud->box)
		lua_pushnil(L);
	return 1;
}

/* The handle's box, for a call on its lease: raises when it is stopped.
 * The caller checks its other arguments first, then lease_use, and hands
 * the use back before anything that may raise. */
static struct lease_box *check_box(lua_State *L)
{
	llease *ud = luaL_checkudata(L, 1, LEASE_MT);

	if (!ud->box)
		luaL_error(L, "the lease is stopped");
	return ud->box;
}

static sf_lease *use_or_raise(lua_State *L, struct lease_box *box)
{
	sf_lease *lease = lease_use(box);

	if (!lease)
		luaL_error(L, "the lease is stopped");
	return lease;
}

/* lease:status() -> table; worker is absent when none is held */
static int l_lease_status(lua_State *L)
{
	struct lease_box *box = check_box(L);
	sf_lease *lease = use_or_raise(L, box);
	sf_lease_status st;
	char session[24];

	sf_lease_status_get(lease, &st);
	lease_unuse(box);
	lua_createtable(L, 0, 20);
	lua_pushstring(L, sf_lease_state_name(st.state));
	lua_setfield(L, -2, "state");
	if (st.worker >= 0)
		sfl_set_int(L, "worker", st.worker);
	sfl_set_int(L, "lease_ms_left", st.lease_ms_left);
	lua_pushstring(L, sf_code_name(st.reason));
	lua_setfield(L, -2, "reason");
	lua_pushstring(L, st.detail);
	lua_setfield(L, -2, "detail");
	snprintf(session, sizeof session, "0x%" PRIx64, (uint64_t)st.session_id);
	lua_pushstring(L, session);
	lua_setfield(L, -2, "session");
	sfl_set_int(L, "negotiated_timeout_ms", st.negotiated_timeout_ms);
	sfl_set_int(L, "mint_ready_unix_ms", st.mint_ready_unix_ms);
	sfl_set_int(L, "registry_mark_ms", st.registry_mark_ms == INT64_MIN ? 0 : st.registry_mark_ms);
	sfl_set_int(L, "local_mark_ms", st.local_mark_ms == INT64_MIN ? 0 : st.local_mark_ms);
	sfl_set_int(L, "registry_round_trips", (int64_t)st.registry_round_trips);
	sfl_set_int(L, "claims", (int64_t)st.claims);
	sfl_set_int(L, "canaries", (int64_t)st.canaries);
	sfl_set_int(L, "sessions", (int64_t)st.sessions);
	sfl_set_int(L, "quarantined_ids", st.quarantined_ids);
	sfl_set_int(L, "last_rtt_us", st.last_rtt_us);
	sfl_set_int(L, "started_unix_ms", st.started_unix_ms);
	sfl_set_int(L, "first_mint_ready_unix_ms", st.first_mint_ready_unix_ms);
	return 1;
}

/* lease:park(bool) */
static int l_lease_park(lua_State *L)
{
	struct lease_box *box = check_box(L);
	bool parked = sfl_arg_bool(L, 2, "parked");
	sf_lease *lease = use_or_raise(L, box);

	sf_lease_park(lease, parked);
	lease_unuse(box);
	return 0;
}

/*
 * lease:stop(): releases the worker node and closes the session; blocks up
 * to about a session timeout, after the calls in flight on the lease (a
 * quarantine request: up to its connect time and a session timeout) have
 * ended. Idempotent, from any handle to the lease: every handle says "the
 * lease is stopped" afterwards, and core.process_lease() gives nil.
 */
static int l_lease_stop(lua_State *L)
{
	llease *ud = luaL_checkudata(L, 1, LEASE_MT);
	struct lease_box *slot = NULL;

	if (!ud->box)
		return 0;
	pthread_mutex_lock(&proc_lease_lock);
	if (proc_box == ud->box) {
		slot = proc_box;
		proc_box = NULL;
	}
	pthread_mutex_unlock(&proc_lease_lock);
	box_stop(ud->box);
	box_unref(slot); /* the slot's reference; the handle keeps its own */
	return 0;
}

/* lease:quarantine_list() -> array of {worker=, record=} ({name=, record=} for a child that is
 * not a worker ID) | nil, code, detail; record is the list's readable line after the ID */
static int l_lease_quarantine_list(lua_State *L)
{
	struct lease_box *box = check_box(L);
	sf_lease *lease = use_or_raise(L, box);
	char buf[16384];
	int rc = sf_lease_quarantine_list(lease, buf, sizeof buf);
	lua_Integer n = 0;

	lease_unuse(box);
	if (rc != SF_OK)
		return sfl_refuse(L, sf_code_name(rc), NULL, "cannot list the quarantine: %s",
		                  sf_code_text(rc));
	lua_newtable(L);
	for (char *line = buf, *next; *line; line = next) {
		char *nl = strchr(line, '\n');
		char *space = strchr(line, ' ');

		next = nl ? nl + 1 : line + strlen(line);
		if (nl)
			*nl = '\0';
		if (!space)
			continue;
		*space = '\0';
		lua_createtable(L, 0, 2);
		/* a child the lease did not name ("abc") has a name and no worker */
		if (line[strspn(line, "0123456789")] == '\0') {
			lua_pushinteger(L, (lua_Integer)strtoll(line, NULL, 10));
			lua_setfield(L, -2, "worker");
		} else {
			lua_pushstring(L, line);
			lua_setfield(L, -2, "name");
		}
		lua_pushstring(L, space + 1);
		lua_setfield(L, -2, "record");
		lua_rawseti(L, -2, ++n);
	}
	return 1;
}

/* lease:quarantine_clear(worker) -> true | nil, code, detail */
static int l_lease_quarantine_clear(lua_State *L)
{
	struct lease_box *box = check_box(L);
	int64_t worker = sfl_arg_int_range(L, 2, "worker", 0, SFL_WORKER_MAX);
	sf_lease *lease = use_or_raise(L, box);
	int rc = sf_lease_quarantine_clear(lease, (uint32_t)worker);

	lease_unuse(box);
	if (rc != SF_OK)
		return sfl_refuse(L, sf_code_name(rc), NULL, "cannot clear the quarantine of worker %d: %s",
		                  (int)worker, sf_code_text(rc));
	lua_pushboolean(L, 1);
	return 1;
}

static int lease_gc(lua_State *L)
{
	llease *ud = luaL_checkudata(L, 1, LEASE_MT);

	/* a handle of its own stops its lease; the process lease outlives any
	 * one handle (box_unref stops a lease only with its last reference) */
	if (!ud->shared)
		l_lease_stop(L);
	box_unref(ud->box);
	ud->box = NULL;
	return 0;
}

/* ---- asynchronous administration --------------------------------------- */

/*
 * The quarantine calls block on ZooKeeper for up to a session timeout, so an
 * event loop (HAProxy's CLI) must not make them: lease:admin(op[, worker])
 * runs the call on a thread of its own and returns a request; req:poll()
 * answers nil while it runs, then what the synchronous call would have.
 * The request record is shared by the thread and the userdata; the last
 * one to let go frees it. The thread holds a reference to the lease's box
 * and a use of the lease, taken before lease:admin returns: a stop waits
 * for the call to end, and the box outlives it.
 */
struct admin_req {
	pthread_mutex_t lock;
	int        refs;
	bool       done;
	bool       list;
	uint32_t   worker;
	struct lease_box *box;   /* the thread's: a reference and a use */
	sf_lease  *lease;
	int        rc;
	char       text[16384];
};

typedef struct ladmin {
	struct admin_req *req;
} ladmin;

static void admin_release(struct admin_req *req)
{
	bool last;

	pthread_mutex_lock(&req->lock);
	last = --req->refs == 0;
	pthread_mutex_unlock(&req->lock);
	if (last) {
		pthread_mutex_destroy(&req->lock);
		free(req);
	}
}

static void *admin_thread(void *arg)
{
	struct admin_req *req = arg;
	int rc;

	if (req->list)
		rc = sf_lease_quarantine_list(req->lease, req->text, sizeof req->text);
	else
		rc = sf_lease_quarantine_clear(req->lease, req->worker);
	lease_unuse(req->box);
	box_unref(req->box);
	pthread_mutex_lock(&req->lock);
	req->rc = rc;
	req->done = true;
	pthread_mutex_unlock(&req->lock);
	admin_release(req);
	return NULL;
}

/* lease:admin("quarantine_list") | lease:admin("quarantine_clear", worker) -> request */
static int l_lease_admin(lua_State *L)
{
	static const char *const ops[] = { "quarantine_list", "quarantine_clear", NULL };
	struct lease_box *box = check_box(L);
	int op = luaL_checkoption(L, 2, NULL, ops);
	uint32_t worker = op == 1 ? (uint32_t)sfl_arg_int_range(L, 3, "worker", 0, SFL_WORKER_MAX) : 0;
	ladmin *h = sfl_newuserdata(L, sizeof *h);
	struct admin_req *req;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t tid;
	int rc;

	h->req = NULL;
	luaL_setmetatable(L, ADMIN_MT);
	req = calloc(1, sizeof *req);
	if (!req)
		return luaL_error(L, "out of memory");
	req->lease = lease_use(box);
	if (!req->lease) {
		free(req);
		return luaL_error(L, "the lease is stopped");
	}
	/* no raise from here on: the use is handed back by the thread */
	box_ref(box);
	req->box = box;
	req->worker = worker;
	pthread_mutex_init(&req->lock, NULL);
	req->refs = 2;
	req->list = op == 0;
	h->req = req;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&tid, &attr, admin_thread, req);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		lease_unuse(box);
		box_unref(box);
		req->done = true;
		req->rc = SF_E_NOMEM;
		admin_release(req); /* the thread's reference */
	}
	return 1;
}

/* req:poll() -> nil while running | true[, text] | nil, code, detail */
static int l_admin_poll(lua_State *L)
{
	ladmin *h = luaL_checkudata(L, 1, ADMIN_MT);
	struct admin_req *req = h->req;
	bool done;
	int rc;

	pthread_mutex_lock(&req->lock);
	done = req->done;
	rc = req->rc;
	pthread_mutex_unlock(&req->lock);
	if (!done) {
		lua_pushnil(L);
		return 1;
	}
	if (rc != SF_OK) {
		if (req->list)
			return sfl_refuse(L, sf_code_name(rc), NULL, "cannot list the quarantine: %s",
			                  sf_code_text(rc));
		return sfl_refuse(L, sf_code_name(rc), NULL, "cannot clear the quarantine of worker %d: %s",
		                  (int)req->worker, sf_code_text(rc));
	}
	lua_pushboolean(L, 1);
	lua_pushstring(L, req->list ? req->text : "");
	return 2;
}

static int admin_gc(lua_State *L)
{
	ladmin *h = luaL_checkudata(L, 1, ADMIN_MT);

	if (h->req) {
		admin_release(h->req);
		h->req = NULL;
	}
	return 0;
}

static int lease_tostring(lua_State *L)
{
	llease *ud = luaL_checkudata(L, 1, LEASE_MT);
	bool running = false;

	if (ud->box) {
		pthread_mutex_lock(&ud->box->lock);
		running = ud->box->lease && !ud->box->stopping;
		pthread_mutex_unlock(&ud->box->lock);
	}
	lua_pushfstring(L, "snowflake.lease (%s)", running ? "running" : "stopped");
	return 1;
}

/* ---- library-mode helpers ---------------------------------------------- */

/* core.sleep_ms(ms): blocks the calling thread (library mode; never inside
 * HAProxy, which has core.msleep) */
static int l_sleep_ms(lua_State *L)
{
	int64_t ms = sfl_arg_int_range(L, 1, "ms", 0, 3600000);
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	return 0;
}

/* core.auth_file_check(path) -> true | nil, "registry_access", detail: the
 * credential file as the lease will read it (sf_lease_auth_load: a regular
 * file, mode 0600 or 0400, holding user:password), so that a check before
 * start refuses what the lease would. The credential itself is wiped. */
static int l_auth_file_check(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char cred[1100], why[600];
	int rc = sf_lease_auth_load(path, cred, sizeof cred, why, sizeof why);

	memset(cred, 0, sizeof cred);
	if (rc != SF_OK)
		return sfl_refuse(L, sf_code_name(rc), NULL, "%s", why);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.mkdir_p(path[, mode]) -> true | nil, "state_io", detail */
static int l_mkdir_p(lua_State *L)
{
	const char *path = sfl_arg_string(L, 1, "path");
	int64_t mode = sfl_opt_int_range(L, 2, "mode", 0750, 0, 07777);
	char buf[4096];
	size_t len = strlen(path);
	struct stat st;

	luaL_argcheck(L, len > 0 && len < sizeof buf && path[0] == '/', 1, "an absolute path is needed");
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];

		buf[i] = '\0';
		if (mkdir(buf, (mode_t)mode) == -1 && errno != EEXIST) {
			int err = errno;

			return sfl_refuse(L, sf_code_name(SF_E_STATE_IO), NULL, "cannot create %s: %s", buf,
			                  strerror(err));
		}
		buf[i] = saved;
	}
	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return sfl_refuse(L, sf_code_name(SF_E_STATE_IO), NULL, "%s is not a directory", path);
	lua_pushboolean(L, 1);
	return 1;
}

const luaL_Reg sfl_lease_methods[] = {
	{ "status", l_lease_status },
	{ "park", l_lease_park },
	{ "stop", l_lease_stop },
	{ "quarantine_list", l_lease_quarantine_list },
	{ "quarantine_clear", l_lease_quarantine_clear },
	{ "admin", l_lease_admin },
	{ NULL, NULL }
};

const luaL_Reg sfl_lease_meta[] = {
	{ "__gc", lease_gc },
	{ "__tostring", lease_tostring },
	{ NULL, NULL }
};

const luaL_Reg sfl_lease_functions[] = {
	{ "lease_start", l_lease_start },
	{ "process_lease_start", l_process_lease_start },
	{ "process_lease", l_process_lease },
	{ "logs", l_logs },
	{ "sleep_ms", l_sleep_ms },
	{ "mkdir_p", l_mkdir_p },
	{ "auth_file_check", l_auth_file_check },
	{ NULL, NULL }
};

/* a request of lease:admin() */
const luaL_Reg sfl_admin_methods[] = {
	{ "poll", l_admin_poll },
	{ NULL, NULL }
};

const luaL_Reg sfl_admin_meta[] = {
	{ "__gc", admin_gc },
	{ NULL, NULL }
};
