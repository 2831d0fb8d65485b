/*
 * The ZooKeeper lease. See sf_lease.h for the contract.
 *
 * Threads:
 *  - the lease thread (ours) runs the state machine and makes every
 *    synchronous ZooKeeper call, the disk writes of the local mark, and the
 *    generator grants;
 *  - libzookeeper-mt's IO and completion threads run the watchers and the
 *    completions below. Those only record facts into the session's atomics
 *    and wake the lease thread; the one exception is the canary, which
 *    revokes the grant at once, from the completion thread, because a node
 *    that is not ours any more must stop minting before anything else runs.
 *
 * A `struct session` lives from zookeeper_init to zookeeper_close and is the
 * context of every callback, so a late callback of a closed session can
 * only touch its own (still allocated) record.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADED 1 /* the synchronous API of libzookeeper-mt */
#include <zookeeper/zookeeper.h>

#include "sf_internal.h"
#include "sf_lease.h"

#define LEASE_TICK_MS      50

enum { PING_NONE = 0, PING_OURS, PING_FOREIGN, PING_GONE };
#define PATH_LEN           512
#define DATA_LEN           512

enum { LOG_ERR = 3, LOG_WARNING = 4, LOG_NOTICE = 5, LOG_INFO = 6, LOG_DEBUG = 7 };

struct session {
	sf_lease        *lease;
	zhandle_t       *zh;
	char             own_path[PATH_LEN]; /* lease thread only */
	_Atomic int32_t  own_worker;         /* the ID whose node is ours, -1 none; watchers read it */
	_Atomic int      zk_state;           /* latest session state from the watcher */
	_Atomic bool     expired;
	_Atomic bool     canary;             /* own node deleted or changed by someone */
	_Atomic bool     suspect;            /* own node gone while our lease was not provably
	                                        alive: lost if the session expired, a canary if
	                                        the session answers again */
	_Atomic int64_t  timeout_ns;         /* negotiated session timeout */
	_Atomic int64_t  ack_send_ns;        /* latest send time of an acknowledged request */
	_Atomic bool     ping_outstanding;
	_Atomic int64_t  ping_send_ns;
	_Atomic int32_t  ping_worker;        /* the ID the ping in flight asks about */
	_Atomic bool     ping_in_lease;      /* the ping was sent while our lease was alive */
	_Atomic int64_t  ping_verdict;       /* PING_* of the last answer, for ping_verdict_worker */
	_Atomic int32_t  ping_verdict_worker;
	_Atomic int64_t  ping_owner;         /* ephemeralOwner the last ping saw */
	_Atomic bool     mark_outstanding;
	_Atomic int64_t  mark_sending;       /* value of the mark write in flight */
	_Atomic int64_t  mark_send_ns;
	_Atomic int64_t  mark_acked;         /* latest acknowledged registry mark */
	_Atomic int      mark_rc;
	_Atomic uint64_t round_trips;
	_Atomic int64_t  last_rtt_us;
};

struct sf_lease {
	sf_gen          *gen;
	sf_lease_config  cfg;              /* strings point at the copies below */
	char            *zk_hosts, *root, *node_name, *state_dir;
	char             host[256];
	pthread_t        thread;
	bool             thread_started;

	pthread_mutex_t  lock;             /* guards the fields down to `status` */
	pthread_cond_t   wake;
	bool             stop_requested;
	_Atomic bool     park_requested;   /* set before the operator's revoke */
	sf_lease_status  status;

	/* lease thread only */
	struct session  *s;
	int64_t          session_id;
	int64_t          timeout_ms;       /* negotiated */
	int64_t          margin_ms;        /* effective */
	int32_t          worker;
	sf_keeper       *keeper;
	int64_t          local_mark;       /* start mark of the held ID */
	int64_t          registry_mark;    /* registry mark read at claim */
	bool             minted;           /* this lease wrote the mark of the held ID and minted */
	int64_t          published_fence_ms;
	uint64_t         round_trips_closed; /* acknowledged requests of closed sessions */
	bool             operator_parked;
	int64_t          claim_not_before_ns;
	int32_t          pending_quarantine;
	char             pending_quarantine_why[128];
	const char      *clock_source;     /* at start: "tsc" or "clock_gettime" */
	bool             clock_source_changed;
	sf_lease_state   state;
	int              reason;
	char             detail[200];
};

/* libzookeeper's log callback has no context pointer: one process-wide sink,
 * the most recently started lease's logger. */
static pthread_mutex_t zk_log_lock = PTHREAD_MUTEX_INITIALIZER;
static sf_log_fn zk_log_fn;
static void *zk_log_ctx;

static int64_t mono_ns(void)
{
	return sf_clock_mono_ns(NULL);
}

static int64_t wall_ms(const sf_lease *lease)
{
	return sf_floor_div(sf_clock_wall_ns(sf_gen_clock(lease->gen)), SF_NS_PER_MS);
}

static void atomic_max_i64(_Atomic int64_t *slot, int64_t value)
{
	int64_t cur = atomic_load(slot);

	while (cur < value && !atomic_compare_exchange_weak(slot, &cur, value))
		;
}

__attribute__((format(printf, 3, 4)))
static void lease_log(sf_lease *lease, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!lease->cfg.log || level > lease->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	lease->cfg.log(lease->cfg.log_ctx, level, line);
}

/* While a server refuses connections the client logs two lines every
 * ~33 ms: pass ZK_LOG_BURST lines a second and count the rest. */
#define ZK_LOG_BURST 5
static int64_t zk_log_window_ns;
static int zk_log_in_window;
static uint64_t zk_log_suppressed;

static void zk_log_forward(const char *message)
{
	int level = LOG_INFO;
	char line[512];
	size_t n;
	int64_t now = mono_ns();

	if (strstr(message, "ZOO_ERROR"))
		level = LOG_ERR;
	else if (strstr(message, "ZOO_WARN"))
		level = LOG_WARNING;
	else if (strstr(message, "ZOO_DEBUG"))
		level = LOG_DEBUG;
	snprintf(line, sizeof line, "zookeeper: %s", message);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	pthread_mutex_lock(&zk_log_lock);
	if (now - zk_log_window_ns >= 1000 * SF_NS_PER_MS) {
		if (zk_log_suppressed && zk_log_fn) {
			char note[96];

			snprintf(note, sizeof note, "zookeeper: %" PRIu64 " more client log lines suppressed",
			         zk_log_suppressed);
			zk_log_fn(zk_log_ctx, LOG_WARNING, note);
		}
		zk_log_window_ns = now;
		zk_log_in_window = 0;
		zk_log_suppressed = 0;
	}
	if (zk_log_in_window++ < ZK_LOG_BURST) {
		if (zk_log_fn)
			zk_log_fn(zk_log_ctx, level, line);
	} else {
		zk_log_suppressed++;
	}
	pthread_mutex_unlock(&zk_log_lock);
}

const char *sf_lease_state_name(sf_lease_state state)
{
	static const char *const names[] = {
		"connecting", "claiming", "waiting", "minting", "parked", "stopped",
	};

	return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "unknown";
}

void sf_lease_config_defaults(sf_lease_config *c)
{
	*c = (sf_lease_config){ 0 };
	c->zk_hosts = "127.0.0.1:2181";
	c->root = "/snowflake/default";
	c->state_dir = "/var/lib/edge-snowflake";
	c->session_timeout_ms = 6000;
	c->margin_ms = 1500;
	c->registry_ahead_ms = 0;
	c->local_ahead_ms = 1500;
	c->start_bound_ms = 30000;
	c->reclaim_delay_ms = 5000;
	c->log_level = LOG_INFO;
}

/* ---- state and status ---------------------------------------------------- */

static void set_state(sf_lease *lease, sf_lease_state state, int reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* One log line per change of state or reason, never for repeats. */
static void set_state(sf_lease *lease, sf_lease_state state, int reason, const char *fmt, ...)
{
	char detail[sizeof lease->detail];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (state != lease->state || reason != lease->reason)
		lease_log(lease, state == SF_LEASE_PARKED ? LOG_WARNING : LOG_NOTICE,
		          "lease state=%s worker=%" PRId32 " reason=%s: %s", sf_lease_state_name(state),
		          lease->worker, sf_code_name(reason), detail);
	lease->state = state;
	lease->reason = reason;
	memcpy(lease->detail, detail, sizeof detail);
}

static void publish_status(sf_lease *lease)
{
	sf_lease_status *st = &lease->status;
	struct session *s = lease->s;
	int64_t fence_left = 0;

	pthread_mutex_lock(&lease->lock);
	st->state = lease->state;
	st->worker = lease->worker;
	st->reason = lease->reason;
	memcpy(st->detail, lease->detail, sizeof st->detail);
	st->session_id = lease->session_id;
	st->negotiated_timeout_ms = lease->timeout_ms;
	st->local_mark_ms = lease->keeper ? sf_keeper_mark(lease->keeper) : 0;
	st->registry_round_trips = lease->round_trips_closed;
	if (s) {
		st->registry_mark_ms = atomic_load(&s->mark_acked);
		st->last_rtt_us = atomic_load(&s->last_rtt_us);
		st->registry_round_trips += atomic_load(&s->round_trips);
	}
	if (lease->state == SF_LEASE_MINTING) {
		fence_left = lease->published_fence_ms - mono_ns() / SF_NS_PER_MS;
		if (fence_left < 0)
			fence_left = 0;
	}
	st->lease_ms_left = fence_left;
	if (lease->state == SF_LEASE_MINTING && st->first_mint_ready_unix_ms == 0)
		st->first_mint_ready_unix_ms = wall_ms(lease);
	pthread_mutex_unlock(&lease->lock);
}

void sf_lease_status_get(sf_lease *lease, sf_lease_status *out)
{
	pthread_mutex_lock(&lease->lock);
	*out = lease->status;
	pthread_mutex_unlock(&lease->lock);
}

static void wake_lease(sf_lease *lease)
{
	pthread_mutex_lock(&lease->lock);
	pthread_cond_signal(&lease->wake);
	pthread_mutex_unlock(&lease->lock);
}

void sf_lease_park(sf_lease *lease, bool parked)
{
	/* the flag first, then the revoke: publish_grant re-checks the flag
	 * after granting, so a grant can never overwrite this park */
	atomic_store(&lease->park_requested, parked);
	if (parked)
		sf_gen_revoke(lease->gen, SF_E_PARKED); /* now, not at the next tick */
	wake_lease(lease);
}

/* ---- callbacks (ZooKeeper's threads) ------------------------------------- */

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct session *s = ctx;

	(void)zh;
	(void)path;
	if (type != ZOO_SESSION_EVENT)
		return;
	atomic_store(&s->zk_state, state);
	if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
		atomic_store(&s->expired, true);
	wake_lease(s->lease);
}

/* Could the server still hold our session? True until the last acknowledged
 * send time plus the negotiated timeout, on the monotonic clock. */
static bool lease_alive(struct session *s)
{
	int64_t ack = atomic_load(&s->ack_send_ns);

	return ack != INT64_MIN && mono_ns() < ack + atomic_load(&s->timeout_ns);
}

/* The worker ID a ".../workers/<id>" path names, or -1. */
static int32_t path_worker(const sf_lease *lease, const char *path)
{
	size_t root_len = strlen(lease->root);
	const char *tail;
	char *end;
	long id;

	if (!path || strncmp(path, lease->root, root_len) != 0 ||
	    strncmp(path + root_len, "/workers/", 9) != 0)
		return -1;
	tail = path + root_len + 9;
	errno = 0;
	id = strtol(tail, &end, 10);
	return (errno || end == tail || *end || id < 0 || id > INT32_MAX) ? -1 : (int32_t)id;
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct session *s = ctx;
	int32_t worker;

	(void)zh;
	(void)state;
	if (type != ZOO_DELETED_EVENT && type != ZOO_CHANGED_EVENT)
		return;
	/* own_worker is cleared before we delete our own node ourselves */
	worker = path_worker(s->lease, path);
	if (worker < 0 || worker != atomic_load(&s->own_worker))
		return;
	if (!lease_alive(s)) {
		/* Past our last ack + timeout the server may have expired the session
		 * (after our pause the DELETED event comes before EXPIRED), or a
		 * restarted server may have kept it alive with fresh timers, and then
		 * only someone else removed the node. Stop minting; the lease thread
		 * decides on evidence: EXPIRED, or an answer on this same session. */
		atomic_store(&s->suspect, true);
		sf_gen_revoke(s->lease->gen, SF_E_NO_LEASE);
	} else {
		/* someone else removed or rewrote our node while it was ours: stop
		 * minting before anything else runs (flag first: see publish_grant) */
		atomic_store(&s->canary, true);
		sf_gen_revoke(s->lease->gen, SF_E_QUARANTINED);
	}
	wake_lease(s->lease);
}

static void ack(struct session *s, int64_t send_ns)
{
	atomic_max_i64(&s->ack_send_ns, send_ns);
	atomic_fetch_add(&s->round_trips, 1);
}

static void ping_done(int rc, const struct Stat *stat, const void *data)
{
	struct session *s = (struct session *)data;
	int64_t sent = atomic_load(&s->ping_send_ns);

	if (rc == ZOK || rc == ZNONODE) {
		const int64_t owner = rc == ZOK && stat ? stat->ephemeralOwner : 0;

		/* an answer, either way: the session was alive when it was sent */
		ack(s, sent);
		atomic_store(&s->last_rtt_us, (mono_ns() - sent) / 1000);
		atomic_store(&s->ping_owner, owner);
		atomic_store(&s->ping_verdict_worker, atomic_load(&s->ping_worker));
		atomic_store(&s->ping_verdict,
		             rc == ZNONODE ? PING_GONE :
		             owner == zoo_client_id(s->zh)->client_id ? PING_OURS : PING_FOREIGN);
	}
	atomic_store(&s->ping_outstanding, false);
	wake_lease(s->lease);
}

static void mark_done(int rc, const struct Stat *stat, const void *data)
{
	struct session *s = (struct session *)data;

	(void)stat;
	atomic_store(&s->mark_rc, rc);
	if (rc == ZOK) {
		ack(s, atomic_load(&s->mark_send_ns));
		atomic_max_i64(&s->mark_acked, atomic_load(&s->mark_sending));
	}
	atomic_store(&s->mark_outstanding, false);
	wake_lease(s->lease);
}

/* ---- registry helpers (lease thread, synchronous) ------------------------ */

static void registry_path(const sf_lease *lease, char *buf, const char *kind, int32_t worker)
{
	if (worker < 0)
		snprintf(buf, PATH_LEN, "%s/%s", lease->root, kind);
	else
		snprintf(buf, PATH_LEN, "%s/%s/%" PRId32, lease->root, kind, worker);
}

/* Creates a persistent path and its parents; existing nodes are fine. */
static int ensure_path(zhandle_t *zh, const char *path)
{
	char partial[PATH_LEN];
	size_t len = strlen(path);

	if (len >= sizeof partial)
		return ZBADARGUMENTS;
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(partial, path, i);
		partial[i] = '\0';
		int rc = zoo_create(zh, partial, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);

		if (rc != ZOK && rc != ZNODEEXISTS)
			return rc;
	}
	return ZOK;
}

static int read_mark(zhandle_t *zh, const char *path, int64_t *mark)
{
	char buf[64];
	int len = sizeof buf - 1;
	char *end;
	int rc = zoo_get(zh, path, 0, buf, &len, NULL);

	if (rc != ZOK)
		return rc;
	if (len <= 0)
		return ZBADARGUMENTS;
	buf[len] = '\0';
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || end == buf || v < 0)
		return ZBADARGUMENTS;
	*mark = v;
	return ZOK;
}

/* lower: allow the mark to move down (only on a clean release) */
static int write_mark_sync(sf_lease *lease, int32_t worker, int64_t mark, bool lower)
{
	struct session *s = lease->s;
	char path[PATH_LEN], buf[32];
	int len = snprintf(buf, sizeof buf, "%" PRId64, mark);
	int64_t sent = mono_ns();
	int rc;

	registry_path(lease, path, "marks", worker);
	rc = zoo_set(s->zh, path, buf, len, -1);
	if (rc == ZNONODE)
		rc = zoo_create(s->zh, path, buf, len, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	if (rc == ZOK) {
		ack(s, sent);
		if (lower)
			atomic_store(&s->mark_acked, mark);
		else
			atomic_max_i64(&s->mark_acked, mark);
	}
	return rc;
}

/* ---- session ------------------------------------------------------------- */

static void session_close(sf_lease *lease)
{
	struct session *s = lease->s;

	if (!s)
		return;
	lease->s = NULL;
	/* completions of pending requests run inside close; they touch only s */
	zookeeper_close(s->zh);
	lease->round_trips_closed += atomic_load(&s->round_trips);
	free(s);
}

static int session_open(sf_lease *lease)
{
	struct session *s = calloc(1, sizeof *s);

	if (!s)
		return SF_E_NOMEM;
	s->lease = lease;
	atomic_init(&s->zk_state, 0);
	atomic_init(&s->own_worker, -1);
	atomic_init(&s->ping_worker, -1);
	atomic_init(&s->ping_verdict_worker, -1);
	atomic_init(&s->ack_send_ns, INT64_MIN);
	atomic_init(&s->mark_acked, INT64_MIN);
	s->zh = zookeeper_init2(lease->zk_hosts, session_watcher, (int)lease->cfg.session_timeout_ms,
	                        NULL, s, 0, zk_log_forward);
	if (!s->zh) {
		int err = errno;

		free(s);
		lease_log(lease, LOG_ERR, "lease: cannot start a ZooKeeper client for %s: %s",
		          lease->zk_hosts, strerror(err));
		return SF_E_REGISTRY;
	}
	lease->s = s;
	return SF_OK;
}

/* ---- worker node --------------------------------------------------------- */

static void drop_worker(sf_lease *lease, int revoke_code)
{
	sf_gen_revoke(lease->gen, revoke_code);
	sf_gen_ceiling_set(lease->gen, SF_CEILING_REGISTRY, INT64_MAX);
	sf_keeper_free(lease->keeper);
	lease->keeper = NULL;
	lease->worker = -1;
	lease->minted = false;
	lease->published_fence_ms = 0;
	if (lease->s) {
		atomic_store(&lease->s->own_worker, -1);
		atomic_store(&lease->s->suspect, false);
		lease->s->own_path[0] = '\0';
	}
}

/* Deletes our own node if it is still ours. */
static void release_node(sf_lease *lease)
{
	struct session *s = lease->s;
	struct Stat stat;

	if (!s || lease->worker < 0 || !s->own_path[0])
		return;
	atomic_store(&s->own_worker, -1); /* our own delete is not a canary */
	if (zoo_state(s->zh) == ZOO_CONNECTED_STATE &&
	    zoo_exists(s->zh, s->own_path, 0, &stat) == ZOK &&
	    stat.ephemeralOwner == zoo_client_id(s->zh)->client_id) {
		/* minting is revoked and our node still ours: bring the registry
		 * mark down to what was really issued, so the next holder waits
		 * only past that, not past our write-ahead reach */
		int64_t issued = sf_gen_last_ms(lease->gen);
		int32_t grant_worker;

		/* only a mark this lease wrote: a refused or unreadable mark is
		 * someone else's history and stays as it is */
		sf_gen_grant_get(lease->gen, &grant_worker, NULL, NULL);
		if (lease->minted && grant_worker < 0 && issued >= lease->registry_mark)
			write_mark_sync(lease, lease->worker, issued, true);
		zoo_delete(s->zh, s->own_path, -1);
	}
}

static int quarantine_write(sf_lease *lease, int32_t worker, const char *why)
{
	char path[PATH_LEN], data[DATA_LEN];
	int len, rc;

	registry_path(lease, path, "quarantine", worker);
	len = snprintf(data, sizeof data,
	               "{\"node\":\"%s\",\"host\":\"%s\",\"pid\":%ld,\"at_ms\":%" PRId64 ",\"why\":\"%s\"}",
	               lease->node_name, lease->host, (long)getpid(), wall_ms(lease), why);
	rc = zoo_create(lease->s->zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	return rc == ZNODEEXISTS ? ZOK : rc;
}

struct candidate {
	int32_t id;
	int64_t mark;   /* INT64_MIN: never marked */
	uint32_t shuffle;
};

static int cmp_candidate(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	if (x->mark != y->mark)
		return x->mark < y->mark ? -1 : 1;
	return (x->shuffle > y->shuffle) - (x->shuffle < y->shuffle);
}

static bool in_vector(const struct String_vector *v, int32_t id)
{
	char name[16];

	snprintf(name, sizeof name, "%" PRId32, id);
	for (int i = 0; i < v->count; i++)
		if (strcmp(v->data[i], name) == 0)
			return true;
	return false;
}

/* Is the node at path ours (our session is its ephemeral owner)? */
static bool node_is_ours(struct session *s, const char *path)
{
	struct Stat stat;

	return zoo_exists(s->zh, path, 0, &stat) == ZOK &&
	       stat.ephemeralOwner == zoo_client_id(s->zh)->client_id;
}

/*
 * Chooses a free, non-quarantined ID, oldest mark first (never-marked IDs
 * are the oldest), and creates its ephemeral node. Returns SF_OK with
 * lease->worker set, SF_E_NO_FREE_WORKER, or SF_E_REGISTRY.
 */
static int claim(sf_lease *lease)
{
	struct session *s = lease->s;
	const uint32_t ids = 1U << sf_gen_layout(lease->gen)->worker_bits;
	struct String_vector taken = { 0 }, quarantined = { 0 }, marked = { 0 };
	struct candidate *cands = NULL;
	char path[PATH_LEN], data[DATA_LEN];
	uint32_t n = 0, seed = (uint32_t)getpid() ^ (uint32_t)mono_ns();
	int rc, result = SF_E_REGISTRY;

	set_state(lease, SF_LEASE_CLAIMING, SF_E_NO_LEASE, "choosing a worker ID under %s", lease->root);
	publish_status(lease);
	const char *kinds[] = { "workers", "marks", "quarantine" };
	for (size_t k = 0; k < 3; k++) {
		registry_path(lease, path, kinds[k], -1);
		if ((rc = ensure_path(s->zh, path)) != ZOK)
			goto out_rc;
	}
	registry_path(lease, path, "workers", -1);
	if ((rc = zoo_get_children(s->zh, path, 0, &taken)) != ZOK)
		goto out_rc;
	registry_path(lease, path, "quarantine", -1);
	if ((rc = zoo_get_children(s->zh, path, 0, &quarantined)) != ZOK)
		goto out_rc;
	registry_path(lease, path, "marks", -1);
	if ((rc = zoo_get_children(s->zh, path, 0, &marked)) != ZOK)
		goto out_rc;

	cands = calloc(ids, sizeof *cands);
	if (!cands) {
		result = SF_E_NOMEM;
		goto out;
	}
	for (uint32_t id = 0; id < ids; id++) {
		if (in_vector(&taken, (int32_t)id) || in_vector(&quarantined, (int32_t)id))
			continue;
		/* xorshift: spreads concurrent claimants over the equally old IDs */
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		cands[n] = (struct candidate){ (int32_t)id, INT64_MIN, seed };
		if (in_vector(&marked, (int32_t)id)) {
			registry_path(lease, path, "marks", (int32_t)id);
			if (read_mark(s->zh, path, &cands[n].mark) != ZOK)
				cands[n].mark = INT64_MAX - 1; /* unreadable: last resort */
		}
		n++;
	}
	if (n == 0) {
		result = SF_E_NO_FREE_WORKER;
		goto out;
	}
	qsort(cands, n, sizeof *cands, cmp_candidate);

	int len = snprintf(data, sizeof data,
	                   "{\"node\":\"%s\",\"host\":\"%s\",\"pid\":%ld,\"start_ms\":%" PRId64 "}",
	                   lease->node_name, lease->host, (long)getpid(),
	                   lease->status.started_unix_ms);
	for (uint32_t i = 0; i < n; i++) {
		int64_t sent = mono_ns();

		registry_path(lease, path, "workers", cands[i].id);
		rc = zoo_create(s->zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
		if (rc == ZNODEEXISTS && !node_is_ours(s, path))
			continue;
		if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
			/* the create may have happened: it is ours only if we own it */
			if (zoo_state(s->zh) != ZOO_CONNECTED_STATE || !node_is_ours(s, path))
				goto out_rc;
		} else if (rc != ZOK && rc != ZNODEEXISTS) {
			goto out_rc;
		}
		ack(s, sent);
		lease->worker = cands[i].id;
		lease->registry_mark = cands[i].mark == INT64_MAX - 1 ? INT64_MIN : cands[i].mark;
		snprintf(s->own_path, sizeof s->own_path, "%s", path);
		result = SF_OK;
		goto out;
	}
	/* every candidate was taken while we tried */
	result = SF_E_NO_FREE_WORKER;
	goto out;
out_rc:
	lease_log(lease, LOG_WARNING, "lease: claim under %s failed: %s", lease->root, zerror(rc));
	result = SF_E_REGISTRY;
out:
	deallocate_String_vector(&taken);
	deallocate_String_vector(&quarantined);
	deallocate_String_vector(&marked);
	free(cands);
	return result;
}

/* After a claim: watch the node, read the registry mark again (a
 * concurrent holder may have moved it), prepare the local mark. */
static int adopt_worker(sf_lease *lease)
{
	struct session *s = lease->s;
	/* stored again once a third of the reach is used: the rest is slack for
	 * an fsync on a busy host (seen: 138 ms) */
	sf_keeper_config kc = { lease->state_dir, (uint32_t)lease->worker, lease->cfg.local_ahead_ms,
	                        lease->cfg.local_ahead_ms * 2 / 3 > 0 ? lease->cfg.local_ahead_ms * 2 / 3 : 1 };
	char path[PATH_LEN];
	struct Stat stat;
	int64_t mark;
	int rc;

	atomic_store(&s->own_worker, lease->worker);
	rc = zoo_wexists(s->zh, s->own_path, node_watcher, s, &stat);
	if (rc != ZOK || stat.ephemeralOwner != zoo_client_id(s->zh)->client_id)
		return SF_E_REGISTRY;
	registry_path(lease, path, "marks", lease->worker);
	rc = read_mark(s->zh, path, &mark);
	if (rc == ZOK)
		lease->registry_mark = mark;
	else if (rc == ZNONODE)
		lease->registry_mark = INT64_MIN;
	else
		return SF_E_REGISTRY;
	rc = sf_keeper_new(lease->gen, &kc, &lease->keeper);
	if (rc != SF_OK)
		return rc;
	return sf_keeper_start_mark(lease->keeper, &lease->local_mark, NULL);
}

/* ---- the loop ------------------------------------------------------------ */

static int64_t registry_ahead_ms(const sf_lease *lease)
{
	/* never less than 2 timeouts: the mark is renewed once less than 1.5
	 * timeouts are left, and must outlast the fence through any outage */
	return lease->cfg.registry_ahead_ms > 2 * lease->timeout_ms ? lease->cfg.registry_ahead_ms
	                                                             : 2 * lease->timeout_ms;
}

static void hold_claims(sf_lease *lease)
{
	lease->claim_not_before_ns = mono_ns() + lease->cfg.reclaim_delay_ms * SF_NS_PER_MS;
}

static void handle_canary(sf_lease *lease)
{
	struct session *s = lease->s;
	int32_t worker = lease->worker;
	int64_t owner = atomic_load(&s->ping_owner);

	atomic_store(&s->canary, false);
	lease_log(lease, LOG_ERR,
	          "lease: CANARY worker %" PRId32 " node %s is gone or owned by another session "
	          "(ours 0x%" PRIx64 ", seen 0x%" PRIx64 "): parked, quarantining the ID",
	          worker, s->own_path, (uint64_t)lease->session_id, (uint64_t)owner);
	release_node(lease);
	drop_worker(lease, SF_E_QUARANTINED);
	lease->pending_quarantine = worker;
	snprintf(lease->pending_quarantine_why, sizeof lease->pending_quarantine_why,
	         "lease node vanished or changed owner while held by session 0x%" PRIx64,
	         (uint64_t)lease->session_id);
	hold_claims(lease);
	set_state(lease, SF_LEASE_PARKED, SF_E_QUARANTINED,
	          "worker %" PRId32 " lost its lease node to someone else and is quarantined", worker);
	{
		sf_lease_status *st = &lease->status;

		pthread_mutex_lock(&lease->lock);
		st->canaries++;
		pthread_mutex_unlock(&lease->lock);
	}
}

static void step_minting(sf_lease *lease);

/* Waiting for the clock to pass the marks of the held ID; then mint. */
static void step_waiting(sf_lease *lease)
{
	sf_report rep;
	int rc = sf_gen_start_check(lease->gen, lease->local_mark, lease->registry_mark,
	                            lease->cfg.start_bound_ms, &rep);

	if (rc == SF_E_CLOCK_WAIT) {
		pthread_mutex_lock(&lease->lock);
		lease->status.mint_ready_unix_ms = wall_ms(lease) + rep.wait_ns / SF_NS_PER_MS + 1;
		pthread_mutex_unlock(&lease->lock);
		set_state(lease, SF_LEASE_WAITING, SF_E_CLOCK_WAIT,
		          "waiting %" PRId64 " ms for the clock to pass the marks of worker %" PRId32,
		          rep.wait_ns / SF_NS_PER_MS + 1, lease->worker);
		return;
	}
	if (rc != SF_OK) {
		int32_t worker = lease->worker;

		lease_log(lease, LOG_ERR, "lease: worker %" PRId32 " refused: its %s mark is %" PRId64
		          " ms ahead of the clock, more than lease.start_bound_ms = %" PRId64,
		          worker, rc == SF_E_REGISTRY_HWM_AHEAD ? "registry" : "local",
		          rep.regression_ms, lease->cfg.start_bound_ms);
		release_node(lease);
		drop_worker(lease, rc);
		hold_claims(lease);
		set_state(lease, SF_LEASE_PARKED, rc,
		          "worker %" PRId32 " has a high-water mark %" PRId64 " ms ahead of this clock",
		          worker, rep.regression_ms);
		return;
	}
	/* the marks are passed: write ahead, registry first, then local */
	int64_t mark = wall_ms(lease) + registry_ahead_ms(lease);

	rc = write_mark_sync(lease, lease->worker, mark, false);
	if (rc != ZOK) {
		lease_log(lease, LOG_WARNING, "lease: writing the registry mark of worker %" PRId32
		          " failed: %s", lease->worker, zerror(rc));
		return; /* retried next tick */
	}
	sf_gen_ceiling_set(lease->gen, SF_CEILING_REGISTRY, mark);
	lease->minted = true;
	rc = sf_keeper_step(lease->keeper, NULL);
	if (rc != SF_OK) {
		set_state(lease, SF_LEASE_WAITING, rc, "cannot store the local mark in %s: %s",
		          lease->state_dir, sf_code_text(rc));
		return;
	}
	lease->published_fence_ms = 0;
	step_minting(lease); /* publishes the grant now, not a tick later */
}

/*
 * Grants the held worker ID until fence_ns, unless the generator already has
 * exactly that. A canary, a lost lease or an operator park is signalled by
 * setting its flag and then revoking, from other threads; the flags are read
 * again after the grant (all seq_cst), so either that revoke lands after
 * this grant or this thread sees the flag and revokes itself.
 */
static void publish_grant(sf_lease *lease, int64_t fence_ns)
{
	struct session *s = lease->s;
	int64_t current_ns;
	int32_t current_worker;
	int code;

	sf_gen_grant_get(lease->gen, &current_worker, &current_ns, &code);
	if (code == SF_OK && current_worker == lease->worker &&
	    current_ns / SF_NS_PER_MS == fence_ns / SF_NS_PER_MS)
		return;
	sf_gen_grant(lease->gen, (uint32_t)lease->worker, fence_ns);
	lease->published_fence_ms = fence_ns / SF_NS_PER_MS;
	/* the grant exchange and these loads are seq_cst, as are the flag
	 * stores and the revoke on the other side */
	if (atomic_load(&s->canary))
		sf_gen_revoke(lease->gen, SF_E_QUARANTINED);
	else if (atomic_load(&s->suspect))
		sf_gen_revoke(lease->gen, SF_E_NO_LEASE);
	else if (atomic_load(&lease->park_requested))
		sf_gen_revoke(lease->gen, SF_E_PARKED);
}

/* Holding a minting lease: keep-alive, marks, fence. */
static void step_minting(sf_lease *lease)
{
	struct session *s = lease->s;
	const int64_t now = mono_ns();
	const bool connected = atomic_load(&s->zk_state) == ZOO_CONNECTED_STATE;
	const int64_t ping_every_ns = lease->timeout_ms * SF_NS_PER_MS / 6;
	int rc;

	/* keep-alive: an exists on our own node, also the slow canary */
	if (connected && !atomic_load(&s->ping_outstanding) &&
	    now - atomic_load(&s->ping_send_ns) >= ping_every_ns) {
		atomic_store(&s->ping_outstanding, true);
		atomic_store(&s->ping_send_ns, now);
		atomic_store(&s->ping_worker, lease->worker);
		atomic_store(&s->ping_in_lease, lease_alive(s));
		rc = zoo_aexists(s->zh, s->own_path, 0, ping_done, s);
		if (rc != ZOK)
			atomic_store(&s->ping_outstanding, false);
	}
	/* the slow canary: an answer about our own ID that says it is not ours */
	int64_t verdict = atomic_exchange(&s->ping_verdict, PING_NONE);

	if ((verdict == PING_GONE || verdict == PING_FOREIGN) &&
	    atomic_load(&s->ping_verdict_worker) == lease->worker) {
		if (atomic_load(&s->ping_in_lease)) {
			/* asked and answered while our session was provably alive */
			atomic_store(&s->canary, true);
			sf_gen_revoke(lease->gen, SF_E_QUARANTINED);
		} else {
			atomic_store(&s->suspect, true);
			sf_gen_revoke(lease->gen, SF_E_NO_LEASE);
		}
		return;
	}

	/* registry mark: keep it more than a timeout ahead, so that it outlasts
	 * the fence through any outage (the fence closes within a timeout of
	 * the last acknowledged request) */
	int64_t acked = atomic_load(&s->mark_acked);
	int64_t wall = wall_ms(lease);

	if (acked != INT64_MIN)
		sf_gen_ceiling_set(lease->gen, SF_CEILING_REGISTRY, acked);
	if (connected && !atomic_load(&s->mark_outstanding) &&
	    acked - wall < registry_ahead_ms(lease) - lease->timeout_ms / 2) {
		char path[PATH_LEN], buf[32];
		int64_t mark = wall + registry_ahead_ms(lease);
		int len = snprintf(buf, sizeof buf, "%" PRId64, mark);

		if (atomic_load(&s->mark_rc) == ZNONODE) {
			/* someone removed marks/<id>: recreate it synchronously */
			atomic_store(&s->mark_rc, ZOK);
			write_mark_sync(lease, lease->worker, mark, false);
		} else {
			registry_path(lease, path, "marks", lease->worker);
			atomic_store(&s->mark_outstanding, true);
			atomic_store(&s->mark_sending, mark);
			atomic_store(&s->mark_send_ns, now);
			if (zoo_aset(s->zh, path, buf, len, -1, mark_done, s) != ZOK)
				atomic_store(&s->mark_outstanding, false);
		}
	}

	/* the TSC clock turns itself off when the kernel stops trusting the TSC
	 * or the clock is slewed hard: say so once */
	sf_tsc_recheck();
	if (!lease->clock_source_changed) {
		const char *why_not;

		if (strcmp(sf_clock_source(&why_not), lease->clock_source) != 0) {
			lease->clock_source_changed = true;
			lease_log(lease, LOG_WARNING, "clock: minting reads clock_gettime from now on: %s", why_not);
		}
	}

	/* local mark: the keeper writes only when it must */
	rc = sf_keeper_step(lease->keeper, NULL);
	if (rc != SF_OK)
		lease_log(lease, LOG_ERR, "lease: cannot store the local mark in %s: %s",
		          lease->state_dir, sf_code_text(rc));

	/* the fence: last acknowledged send + negotiated timeout - margin */
	int64_t fence_ns = atomic_load(&s->ack_send_ns) + (lease->timeout_ms - lease->margin_ms) * SF_NS_PER_MS;

	if (fence_ns <= now) {
		sf_gen_revoke(lease->gen, SF_E_FENCED);
		lease->published_fence_ms = 0;
		set_state(lease, SF_LEASE_PARKED, SF_E_FENCED,
		          "no registry answer for %" PRId64 " ms; minting stopped %" PRId64
		          " ms before the lease could expire",
		          (now - atomic_load(&s->ack_send_ns)) / SF_NS_PER_MS, lease->margin_ms);
		return;
	}
	if (atomic_load(&s->suspect))
		return; /* parked until the keep-alive or the session event decides */
	if (lease->operator_parked) {
		sf_gen_revoke(lease->gen, SF_E_PARKED);
		lease->published_fence_ms = 0;
		set_state(lease, SF_LEASE_PARKED, SF_E_PARKED, "parked by the operator");
		return;
	}
	publish_grant(lease, fence_ns);
	if (lease->state != SF_LEASE_MINTING || lease->reason != SF_OK)
		set_state(lease, SF_LEASE_MINTING, SF_OK, "minting as worker %" PRId32, lease->worker);
}

/* The margin in force: the configured one, but at most half the negotiated
 * timeout, or the fence would close before the next keep-alive could open it. */
static void set_margin(sf_lease *lease)
{
	lease->margin_ms = lease->cfg.margin_ms;
	if (lease->margin_ms > lease->timeout_ms / 2) {
		lease->margin_ms = lease->timeout_ms / 2;
		lease_log(lease, LOG_WARNING, "lease: lease.margin_ms %" PRId64 " is more than half"
		          " the negotiated session timeout %" PRId64 " ms; using %" PRId64,
		          lease->cfg.margin_ms, lease->timeout_ms, lease->margin_ms);
	}
}

static void step(sf_lease *lease)
{
	struct session *s;
	int rc;

	if (!lease->s) {
		if (session_open(lease) != SF_OK)
			return;
		set_state(lease, SF_LEASE_CONNECTING, SF_E_NO_LEASE, "connecting to %s", lease->zk_hosts);
	}
	s = lease->s;
	if (atomic_load(&s->expired)) {
		lease_log(lease, LOG_WARNING, "lease: session 0x%" PRIx64 " expired", (uint64_t)lease->session_id);
		drop_worker(lease, SF_E_NO_LEASE);
		session_close(lease);
		lease->session_id = 0;
		set_state(lease, SF_LEASE_CONNECTING, SF_E_NO_LEASE,
		          "the registry session expired; opening a new one");
		return;
	}
	if (atomic_load(&s->zk_state) == ZOO_CONNECTED_STATE) {
		int64_t id = zoo_client_id(s->zh)->client_id;
		int64_t negotiated = zoo_recv_timeout(s->zh);

		if (id == lease->session_id && negotiated != lease->timeout_ms && negotiated > 0) {
			lease_log(lease, LOG_NOTICE, "lease: negotiated timeout changed from %" PRId64
			          " to %" PRId64 " ms", lease->timeout_ms, negotiated);
			lease->timeout_ms = negotiated;
			atomic_store(&s->timeout_ns, negotiated * SF_NS_PER_MS);
			set_margin(lease);
		}

		if (id != lease->session_id) {
			lease->session_id = id;
			lease->timeout_ms = zoo_recv_timeout(s->zh);
			atomic_store(&s->timeout_ns, lease->timeout_ms * SF_NS_PER_MS);
			set_margin(lease);
			pthread_mutex_lock(&lease->lock);
			lease->status.sessions++;
			pthread_mutex_unlock(&lease->lock);
			lease_log(lease, LOG_NOTICE, "lease: session 0x%" PRIx64 " established, timeout %" PRId64
			          " ms (requested %" PRId64 ")", (uint64_t)id, lease->timeout_ms,
			          lease->cfg.session_timeout_ms);
		}
	}
	if (atomic_load(&s->canary) && lease->worker >= 0)
		handle_canary(lease);
	if (atomic_load(&s->suspect) && lease->worker >= 0 && lease->state != SF_LEASE_PARKED)
		set_state(lease, SF_LEASE_PARKED, SF_E_NO_LEASE,
		          "the node of worker %" PRId32 " went away while the registry was out of reach;"
		          " waiting to learn whether the session expired", lease->worker);
	if (lease->pending_quarantine >= 0 && atomic_load(&s->zk_state) == ZOO_CONNECTED_STATE) {
		rc = quarantine_write(lease, lease->pending_quarantine, lease->pending_quarantine_why);
		if (rc == ZOK) {
			lease_log(lease, LOG_ERR, "lease: worker %" PRId32 " quarantined under %s/quarantine",
			          lease->pending_quarantine, lease->root);
			lease->pending_quarantine = -1;
		}
	}

	if (lease->worker < 0) {
		if (atomic_load(&s->zk_state) != ZOO_CONNECTED_STATE)
			return;
		if (mono_ns() < lease->claim_not_before_ns)
			return;
		rc = claim(lease);
		if (rc == SF_OK) {
			pthread_mutex_lock(&lease->lock);
			lease->status.claims++;
			pthread_mutex_unlock(&lease->lock);
			char mark_text[32] = "none";

			if (lease->registry_mark != INT64_MIN)
				snprintf(mark_text, sizeof mark_text, "%" PRId64, lease->registry_mark);
			lease_log(lease, LOG_NOTICE, "lease: claimed worker %" PRId32 " (%s), registry mark %s",
			          lease->worker, s->own_path, mark_text);
			rc = adopt_worker(lease);
			if (rc != SF_OK) {
				lease_log(lease, LOG_ERR, "lease: cannot take up worker %" PRId32 ": %s",
				          lease->worker, sf_code_text(rc));
				release_node(lease);
				drop_worker(lease, SF_E_NO_LEASE);
				hold_claims(lease);
				set_state(lease, SF_LEASE_PARKED, rc, "could not take up the claimed worker ID: %s",
				          sf_code_text(rc));
				return;
			}
			step_waiting(lease);
		} else if (rc == SF_E_NO_FREE_WORKER) {
			hold_claims(lease);
			set_state(lease, SF_LEASE_PARKED, rc,
			          "all %u worker IDs under %s are taken or quarantined",
			          1U << sf_gen_layout(lease->gen)->worker_bits, lease->root);
		} else {
			lease->claim_not_before_ns = mono_ns() + 500 * SF_NS_PER_MS;
		}
		return;
	}
	if (lease->state == SF_LEASE_WAITING || lease->state == SF_LEASE_CLAIMING) {
		step_waiting(lease);
		return;
	}
	step_minting(lease);
}

static void *lease_thread(void *arg)
{
	sf_lease *lease = arg;

	for (;;) {
		struct timespec until;

		pthread_mutex_lock(&lease->lock);
		bool stop = lease->stop_requested;
		pthread_mutex_unlock(&lease->lock);
		lease->operator_parked = atomic_load(&lease->park_requested);
		if (stop)
			break;
		step(lease);
		publish_status(lease);

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += LEASE_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&lease->lock);
		if (!lease->stop_requested)
			pthread_cond_timedwait(&lease->wake, &lease->lock, &until);
		pthread_mutex_unlock(&lease->lock);
	}
	sf_gen_revoke(lease->gen, SF_E_STOPPED);
	release_node(lease);
	drop_worker(lease, SF_E_STOPPED);
	session_close(lease);
	set_state(lease, SF_LEASE_STOPPED, SF_E_STOPPED, "stopped");
	publish_status(lease);
	return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */

static void lease_free(sf_lease *lease)
{
	pthread_mutex_lock(&zk_log_lock);
	if (zk_log_ctx == lease->cfg.log_ctx && zk_log_fn == lease->cfg.log)
		zk_log_fn = NULL;
	pthread_mutex_unlock(&zk_log_lock);
	pthread_cond_destroy(&lease->wake);
	pthread_mutex_destroy(&lease->lock);
	free(lease->zk_hosts);
	free(lease->root);
	free(lease->node_name);
	free(lease->state_dir);
	free(lease);
}

static bool root_valid(const char *root)
{
	size_t len = strlen(root);

	if (len < 2 || root[0] != '/' || root[len - 1] == '/' || strstr(root, "//"))
		return false;
	return len < PATH_LEN - 64;
}

int sf_lease_start(sf_gen *gen, const sf_lease_config *config, sf_lease **out)
{
	sigset_t all, old;
	pthread_condattr_t cattr;
	sf_lease *lease;
	int rc;

	if (!gen || !config || !out || !config->zk_hosts || !config->zk_hosts[0] || !config->root ||
	    !root_valid(config->root) || !config->state_dir || config->session_timeout_ms <= 0 ||
	    config->margin_ms < 0 || config->local_ahead_ms <= 0 || config->start_bound_ms < 0 ||
	    config->reclaim_delay_ms < 0 || config->registry_ahead_ms < 0)
		return SF_E_INVALID;
	lease = calloc(1, sizeof *lease);
	if (!lease)
		return SF_E_NOMEM;
	lease->gen = gen;
	lease->cfg = *config;
	if (gethostname(lease->host, sizeof lease->host - 1) != 0)
		snprintf(lease->host, sizeof lease->host, "unknown");
	lease->zk_hosts = strdup(config->zk_hosts);
	lease->root = strdup(config->root);
	lease->node_name = strdup(config->node_name ? config->node_name : lease->host);
	lease->state_dir = strdup(config->state_dir);
	pthread_mutex_init(&lease->lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&lease->wake, &cattr);
	pthread_condattr_destroy(&cattr);
	if (!lease->zk_hosts || !lease->root || !lease->node_name || !lease->state_dir) {
		lease_free(lease);
		return SF_E_NOMEM;
	}
	lease->worker = -1;
	lease->pending_quarantine = -1;
	lease->state = SF_LEASE_CONNECTING;
	lease->reason = SF_E_NO_LEASE;
	lease->status.worker = -1;
	lease->status.state = SF_LEASE_CONNECTING;
	lease->status.reason = SF_E_NO_LEASE;
	lease->status.started_unix_ms = wall_ms(lease);
	snprintf(lease->status.detail, sizeof lease->status.detail, "starting");
	sf_gen_revoke(gen, SF_E_NO_LEASE);

	pthread_mutex_lock(&zk_log_lock);
	zk_log_fn = config->log;
	zk_log_ctx = config->log_ctx;
	pthread_mutex_unlock(&zk_log_lock);
	zoo_set_debug_level(config->log_level >= LOG_DEBUG ? ZOO_LOG_LEVEL_DEBUG :
	                    config->log_level >= LOG_INFO ? ZOO_LOG_LEVEL_WARN : ZOO_LOG_LEVEL_ERROR);

	lease->clock_source = sf_clock_source(NULL);

	/* the lease thread and ZooKeeper's threads take no process signals */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&lease->thread, NULL, lease_thread, lease);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		lease_free(lease);
		return SF_E_NOMEM;
	}
	lease->thread_started = true;
	lease_log(lease, LOG_NOTICE, "lease: starting, registry %s root %s, node %s, state %s",
	          lease->zk_hosts, lease->root, lease->node_name, lease->state_dir);
	*out = lease;
	return SF_OK;
}

void sf_lease_stop(sf_lease *lease)
{
	if (!lease)
		return;
	sf_gen_revoke(lease->gen, SF_E_STOPPED);
	pthread_mutex_lock(&lease->lock);
	lease->stop_requested = true;
	pthread_cond_signal(&lease->wake);
	pthread_mutex_unlock(&lease->lock);
	if (lease->thread_started)
		pthread_join(lease->thread, NULL);
	lease_free(lease);
}

/* ---- quarantine administration (caller's thread) ------------------------- */

/* A short-lived session of the caller's own: the lease thread's handle is
 * not shared, so these never race with its state machine. */
static zhandle_t *admin_connect(sf_lease *lease)
{
	zhandle_t *zh = zookeeper_init2(lease->zk_hosts, NULL, (int)lease->cfg.session_timeout_ms,
	                                NULL, NULL, 0, zk_log_forward);

	for (int i = 0; zh && i < 100 && zoo_state(zh) != ZOO_CONNECTED_STATE; i++)
		usleep(50000);
	if (zh && zoo_state(zh) != ZOO_CONNECTED_STATE) {
		zookeeper_close(zh);
		zh = NULL;
	}
	return zh;
}

int sf_lease_quarantine_list(sf_lease *lease, char *buf, size_t size)
{
	struct String_vector ids = { 0 };
	char path[PATH_LEN], data[DATA_LEN];
	size_t used = 0;
	zhandle_t *zh;
	int rc;

	if (!lease || !buf || size == 0)
		return SF_E_INVALID;
	buf[0] = '\0';
	zh = admin_connect(lease);
	if (!zh)
		return SF_E_REGISTRY;
	registry_path(lease, path, "quarantine", -1);
	rc = zoo_get_children(zh, path, 0, &ids);
	if (rc == ZNONODE) {
		zookeeper_close(zh);
		return SF_OK;
	}
	if (rc != ZOK) {
		zookeeper_close(zh);
		return SF_E_REGISTRY;
	}
	for (int i = 0; i < ids.count; i++) {
		int len = sizeof data - 1;
		char child[PATH_LEN * 2];

		snprintf(child, sizeof child, "%s/%s", path, ids.data[i]);
		if (zoo_get(zh, child, 0, data, &len, NULL) != ZOK || len < 0)
			len = 0;
		data[len] = '\0';
		int n = snprintf(buf + used, size - used, "%s %s\n", ids.data[i], data);

		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	deallocate_String_vector(&ids);
	zookeeper_close(zh);
	return SF_OK;
}

int sf_lease_quarantine_clear(sf_lease *lease, uint32_t worker)
{
	char path[PATH_LEN];
	zhandle_t *zh;
	int rc;

	if (!lease || (uint64_t)worker >> sf_gen_layout(lease->gen)->worker_bits)
		return SF_E_WORKER_RANGE;
	zh = admin_connect(lease);
	if (!zh)
		return SF_E_REGISTRY;
	registry_path(lease, path, "quarantine", (int32_t)worker);
	rc = zoo_delete(zh, path, -1);
	zookeeper_close(zh);
	if (rc == ZNONODE)
		return SF_E_NOT_FOUND;
	if (rc == ZOK)
		lease_log(lease, LOG_NOTICE, "lease: quarantine of worker %" PRIu32 " cleared", worker);
	return rc == ZOK ? SF_OK : SF_E_REGISTRY;
}
