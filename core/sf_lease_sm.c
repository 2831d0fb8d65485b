/*
 * The lease's state machine: claim, marks, keep-alive, fence, canary and
 * suspect, outage park, resume, quarantine, release. It reaches the
 * registry only through sf_registry.h and reads time only through the
 * generator's clock, so a unit test drives it with a scripted registry and
 * an injected clock, with no server and no sleep. See sf_lease.h for the
 * contract, sf_lease_sm.h for the structures.
 *
 * Threads:
 *  - the lease thread runs sf_lease_sm_tick: every synchronous registry
 *    call, the disk writes of the local mark, and the generator grants;
 *  - the registry's threads run the events below. Those only record facts
 *    into the session's atomics and wake the lease thread; the one exception
 *    is the canary, which revokes the grant at once, from the event's
 *    thread, because a node that is not ours any more must stop minting
 *    before anything else runs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sf_internal.h"
#include "sf_lease_sm.h"
#include "sf_record.h"

typedef struct sf_lease_session session;

static int64_t mono_ns(const sf_lease *lease)
{
	return sf_clock_mono_ns(lease->clock);
}

static int64_t wall_ms(const sf_lease *lease)
{
	return sf_floor_div(sf_clock_wall_ns(lease->clock), SF_NS_PER_MS);
}

static void atomic_max_i64(_Atomic int64_t *slot, int64_t value)
{
	int64_t cur = atomic_load(slot);

	while (cur < value && !atomic_compare_exchange_weak(slot, &cur, value))
		;
}

void sf_lease_log(sf_lease *lease, int level, const char *fmt, ...)
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

void sf_lease_path(const sf_lease *lease, char *buf, const char *kind, int32_t worker)
{
	if (worker < 0)
		snprintf(buf, SF_LEASE_PATH_LEN, "%s/%s", lease->root, kind);
	else
		snprintf(buf, SF_LEASE_PATH_LEN, "%s/%s/%" PRId32, lease->root, kind, worker);
}

/* ---- state and status ---------------------------------------------------- */

/* format(printf, 5, 0): clang's -Wformat-nonliteral wants the va_list form declared too */
static void vset_state_at(sf_lease *lease, int64_t at_ns, sf_lease_state state, int reason,
                          const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void vset_state_at(sf_lease *lease, int64_t at_ns, sf_lease_state state, int reason,
                          const char *fmt, va_list ap)
{
	char detail[sizeof lease->detail];
	char fence[48] = "";

	vsnprintf(detail, sizeof detail, fmt, ap);
	/* A line that leaves minting names the fence the generator held until then: with mono_ms
	 * (CLOCK_MONOTONIC, the clock the fence is kept on) and pid, a history checker can tell from
	 * the log alone whether an ID was minted outside this process's lease. */
	if (lease->state == SF_LEASE_MINTING && state != SF_LEASE_MINTING && lease->granted_fence_ms > 0)
		snprintf(fence, sizeof fence, " fence_mono_ms=%" PRId64, lease->granted_fence_ms);
	if (state != lease->state || reason != lease->reason)
		sf_lease_log(lease, state == SF_LEASE_PARKED ? SF_LOG_WARNING : SF_LOG_NOTICE,
		             "lease state=%s worker=%" PRId32 " reason=%s pid=%ld mono_ms=%" PRId64 "%s: %s",
		             sf_lease_state_name(state), lease->worker, sf_code_name(reason), (long)getpid(),
		             at_ns / SF_NS_PER_MS, fence, detail);
	lease->state = state;
	lease->reason = reason;
	memcpy(lease->detail, detail, sizeof detail);
}

static void set_state_at(sf_lease *lease, int64_t at_ns, sf_lease_state state, int reason,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void set_state(sf_lease *lease, sf_lease_state state, int reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* One log line per change of state or reason, never for repeats, stamped at_ns: for the change
 * to minting, a reading taken before the grant, so no ID of the window predates its line. */
static void set_state_at(sf_lease *lease, int64_t at_ns, sf_lease_state state, int reason,
                         const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset_state_at(lease, at_ns, state, reason, fmt, ap);
	va_end(ap);
}

static void set_state(sf_lease *lease, sf_lease_state state, int reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset_state_at(lease, mono_ns(lease), state, reason, fmt, ap);
	va_end(ap);
}

static void publish_status(sf_lease *lease)
{
	sf_lease_status *st = &lease->status;
	session *s = lease->s;
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
		fence_left = lease->published_fence_ms - mono_ns(lease) / SF_NS_PER_MS;
		if (fence_left < 0)
			fence_left = 0;
	}
	st->lease_ms_left = fence_left;
	if (lease->state == SF_LEASE_MINTING && st->first_mint_ready_unix_ms == 0)
		st->first_mint_ready_unix_ms = wall_ms(lease);
	pthread_mutex_unlock(&lease->lock);
}

void sf_lease_wake(sf_lease *lease)
{
	pthread_mutex_lock(&lease->lock);
	pthread_cond_signal(&lease->wake);
	pthread_mutex_unlock(&lease->lock);
}

/* ---- events (the registry's threads) ------------------------------------- */

static void on_session(void *ctx, enum sf_registry_state state)
{
	session *s = ctx;

	atomic_store(&s->reg_state, (int)state);
	if (state == SF_REGISTRY_EXPIRED)
		atomic_store(&s->expired, true);
	sf_lease_wake(s->lease);
}

/* Could the server still hold our session? True until the last acknowledged
 * send time plus the negotiated timeout, on the monotonic clock. */
static bool lease_alive(session *s)
{
	int64_t ack = atomic_load(&s->ack_send_ns);

	return ack != INT64_MIN && mono_ns(s->lease) < ack + atomic_load(&s->timeout_ns);
}

/* The worker ID a "<root>/<kind>/<id>" path names, or -1. Only the names
 * the lease writes count: plain digits without a leading zero. */
static int32_t path_worker(const sf_lease *lease, const char *path, const char *kind)
{
	size_t root_len = strlen(lease->root), kind_len = strlen(kind);

	if (!path || strncmp(path, lease->root, root_len) != 0 || path[root_len] != '/' ||
	    strncmp(path + root_len + 1, kind, kind_len) != 0 || path[root_len + 1 + kind_len] != '/')
		return -1;
	return sf_lease_worker_name(path + root_len + kind_len + 2, INT32_MAX);
}

int32_t sf_lease_worker_name(const char *name, int64_t max_id)
{
	int64_t id = 0;
	size_t len = strlen(name);

	if (len == 0 || len > 10 || (name[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		id = id * 10 + (name[i] - '0');
	}
	return id <= max_id && id <= INT32_MAX ? (int32_t)id : -1;
}

static void on_node(void *ctx, enum sf_registry_change change, const char *path)
{
	session *s = ctx;
	int32_t own = atomic_load(&s->own_worker);

	if (own < 0)
		return; /* own_worker is cleared before we delete our own node ourselves */
	if (path_worker(s->lease, path, "quarantine") == own) {
		/* someone quarantined the ID we hold (the other claimant's canary):
		 * both claimants park. Created or changed: stop minting at once; the
		 * lease thread looks again (a deletion only re-arms the watch). */
		if (change == SF_REGISTRY_DELETED) {
			atomic_store(&s->quarantine_rearm, true);
		} else {
			atomic_store(&s->quarantined, true); /* flag first: see publish_grant */
			sf_gen_revoke(s->lease->gen, SF_E_QUARANTINED);
		}
		sf_lease_wake(s->lease);
		return;
	}
	if (path_worker(s->lease, path, "marks") == own) {
		atomic_store(&s->mark_event, true);
		sf_lease_wake(s->lease);
		return;
	}
	if (path_worker(s->lease, path, "workers") != own || change == SF_REGISTRY_CREATED)
		return;
	/* deleted or rewritten: either way not ours as we made it */
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
	sf_lease_wake(s->lease);
}

static void ack(session *s, int64_t send_ns)
{
	atomic_max_i64(&s->ack_send_ns, send_ns);
	atomic_fetch_add(&s->round_trips, 1);
}

static void on_ping_done(void *ctx, int rc, int64_t owner, bool ours)
{
	session *s = ctx;
	int64_t sent = atomic_load(&s->ping_send_ns);

	if (rc == SF_OK || rc == SF_E_NOT_FOUND) {
		/* an answer, either way: the session was alive when it was sent */
		ack(s, sent);
		atomic_store(&s->last_rtt_us, (mono_ns(s->lease) - sent) / 1000);
		atomic_store(&s->ping_owner, rc == SF_OK ? owner : 0);
		atomic_store(&s->ping_verdict_worker, atomic_load(&s->ping_worker));
		atomic_store(&s->ping_verdict,
		             rc == SF_E_NOT_FOUND ? SF_PING_GONE : ours ? SF_PING_OURS : SF_PING_FOREIGN);
	}
	atomic_store(&s->ping_outstanding, false);
	sf_lease_wake(s->lease);
}

static void on_set_done(void *ctx, int rc)
{
	session *s = ctx;

	atomic_store(&s->mark_rc, rc);
	if (rc == SF_OK) {
		ack(s, atomic_load(&s->mark_send_ns));
		atomic_max_i64(&s->mark_acked, atomic_load(&s->mark_sending));
	}
	atomic_store(&s->mark_outstanding, false);
	sf_lease_wake(s->lease);
}

static const sf_registry_events session_events = {
	.session = on_session,
	.node = on_node,
	.ping_done = on_ping_done,
	.set_done = on_set_done,
};

/* ---- registry helpers (lease thread, synchronous) ------------------------ */

/* A log line about a node whose data is not what the lease writes: the
 * path, the length, a printable prefix, and what the lease does about it. */
static void log_unreadable(sf_lease *lease, const char *path, const char *what, const char *data,
                           int len, int room, const char *consequence)
{
	char prefix[41];

	sf_record_printable(prefix, sizeof prefix, data, (size_t)(len < room ? len : room));
	sf_lease_log(lease, SF_LOG_WARNING, "lease: %s is not %s (%d bytes: \"%s%s\"): %s", path, what,
	             len, prefix, len > (int)sizeof prefix - 1 ? "..." : "", consequence);
}

/* The mark stored at path (why: what the caller does when it is unreadable,
 * for the log line).
 * \return SF_OK with *mark set, SF_E_NOT_FOUND, SF_E_STATE_CORRUPT (not a
 * mark: logged), or SF_E_REGISTRY. */
static int read_mark(sf_lease *lease, const char *path, int64_t *mark, const char *why)
{
	char buf[32];
	int len = sizeof buf;
	int rc = lease->reg.ops->get(lease->s->conn, path, buf, &len);

	if (rc != SF_OK)
		return rc;
	/* longer than any mark: cut by the registry, so not one either */
	if (len > (int)sizeof buf || sf_record_mark_parse(buf, (size_t)len, mark) != SF_OK) {
		log_unreadable(lease, path, "a mark", buf, len, sizeof buf, why);
		return SF_E_STATE_CORRUPT;
	}
	return SF_OK;
}

/* lower: allow the mark to move down (only on a clean release) */
static int write_mark_sync(sf_lease *lease, int32_t worker, int64_t mark, bool lower)
{
	session *s = lease->s;
	char path[SF_LEASE_PATH_LEN], buf[32];
	int len = sf_record_mark_format(buf, sizeof buf, mark);
	int64_t sent = mono_ns(lease);
	int rc;

	sf_lease_path(lease, path, "marks", worker);
	rc = lease->reg.ops->put(s->conn, path, buf, len);
	if (rc == SF_OK) {
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
	session *s = lease->s;

	if (!s)
		return;
	lease->s = NULL;
	/* completions of pending requests run inside close; they touch only s */
	lease->reg.ops->close(s->conn);
	lease->round_trips_closed += atomic_load(&s->round_trips);
	free(s);
}

static int session_open(sf_lease *lease)
{
	session *s = calloc(1, sizeof *s);
	int rc;

	if (!s)
		return SF_E_NOMEM;
	s->lease = lease;
	atomic_init(&s->reg_state, SF_REGISTRY_CONNECTING);
	atomic_init(&s->own_worker, -1);
	atomic_init(&s->ping_worker, -1);
	atomic_init(&s->ping_verdict_worker, -1);
	atomic_init(&s->ack_send_ns, INT64_MIN);
	atomic_init(&s->mark_acked, INT64_MIN);
	atomic_init(&s->mark_rc, SF_OK);
	rc = lease->reg.ops->open(lease->reg.ctx, &session_events, s, &s->conn);
	if (rc != SF_OK) {
		int err = errno;

		free(s);
		sf_lease_log(lease, SF_LOG_ERR, "lease: cannot start a ZooKeeper client for %s: %s",
		             lease->zk_hosts, rc == SF_E_NOMEM ? sf_code_text(rc) : strerror(err));
		return rc;
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

/* Deletes our own node if it is still ours; with lower_mark, first brings
 * the registry mark down to what this lease issued. */
static void release_node(sf_lease *lease, bool lower_mark)
{
	const sf_registry_ops *reg = lease->reg.ops;
	session *s = lease->s;
	bool ours = false;

	if (!s || lease->worker < 0 || !s->own_path[0])
		return;
	atomic_store(&s->own_worker, -1); /* our own delete is not a canary */
	if (reg->connected(s->conn) == SF_OK && reg->exists(s->conn, s->own_path, false, &ours, NULL) == SF_OK &&
	    ours) {
		/* minting is revoked and our node still ours: bring the registry
		 * mark down to what was really issued, so the next holder waits
		 * only past that, not past our write-ahead reach */
		int64_t issued = sf_gen_last_ms(lease->gen);
		int32_t grant_worker;

		/* only a mark this lease wrote: a refused or unreadable mark is
		 * someone else's history and stays as it is */
		sf_gen_grant_get(lease->gen, &grant_worker, NULL, NULL);
		if (lower_mark && lease->minted && grant_worker < 0 && issued >= lease->registry_mark)
			write_mark_sync(lease, lease->worker, issued, true);
		reg->remove(s->conn, s->own_path);
	}
}

/* \return SF_OK (written, or there already) or the registry's code. */
static int quarantine_write(sf_lease *lease, int32_t worker, const sf_quarantine_record *rec)
{
	char path[SF_LEASE_PATH_LEN], data[SF_LEASE_DATA_LEN];
	int len = sf_record_quarantine_format(data, sizeof data, rec);

	sf_lease_path(lease, path, "quarantine", worker);
	return lease->reg.ops->create(lease->s->conn, path, data, len);
}

/* The audit window of this tenure on lease->worker so far, into rec (the
 * IDs it issued lie in it); has_window false when it issued none. */
static void issued_window(sf_lease *lease, sf_quarantine_record *rec)
{
	const sf_layout *layout = sf_gen_layout(lease->gen);
	const uint32_t seq_max = (uint32_t)((1ULL << layout->sequence_bits) - 1);
	sf_decoded first = { lease->window_floor_ms, (uint32_t)lease->worker, lease->window_floor_seq + 1 };
	sf_decoded last = { 0, (uint32_t)lease->worker, 0 };

	rec->has_window = false;
	if (!lease->minted || lease->worker < 0)
		return;
	sf_gen_position(lease->gen, &last.timestamp_ms, &last.sequence);
	if (last.timestamp_ms < lease->window_floor_ms ||
	    (last.timestamp_ms == lease->window_floor_ms && last.sequence <= lease->window_floor_seq))
		return;
	if (lease->window_floor_seq >= seq_max) {
		first.timestamp_ms++;
		first.sequence = 0;
	}
	if (sf_id_compose(layout, &first, &rec->first_id) != SF_OK ||
	    sf_id_compose(layout, &last, &rec->last_id) != SF_OK)
		return;
	rec->first_ms = first.timestamp_ms;
	rec->last_ms = last.timestamp_ms;
	rec->has_window = true;
}

/* "IDs a..b (Unix ms c..d)" or "no ID", for log lines. */
static const char *window_text(char *buf, size_t size, const sf_quarantine_record *rec)
{
	if (!rec->has_window)
		snprintf(buf, size, "no ID");
	else
		snprintf(buf, size, "IDs %" PRId64 "..%" PRId64 " (Unix ms %" PRId64 "..%" PRId64 ")",
		         rec->first_id, rec->last_id, rec->first_ms, rec->last_ms);
	return buf;
}

/* A record of this node, about now, into rec. */
static void record_self(sf_lease *lease, sf_quarantine_record *rec, const char *why)
{
	memset(rec, 0, sizeof *rec);
	sf_record_printable(rec->node, sizeof rec->node, lease->node_name, strlen(lease->node_name));
	sf_record_printable(rec->host, sizeof rec->host, lease->host, strlen(lease->host));
	rec->pid = (int64_t)getpid();
	rec->at_ms = wall_ms(lease);
	snprintf(rec->why, sizeof rec->why, "%s", why);
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

static bool in_list(const sf_registry_list *v, int32_t id)
{
	char name[16];

	snprintf(name, sizeof name, "%" PRId32, id);
	for (int i = 0; i < v->count; i++)
		if (strcmp(v->names[i], name) == 0)
			return true;
	return false;
}

/* Children the lease did not name (it writes plain IDs of its layout):
 * logged, and matched to no ID, so they neither take nor quarantine one. */
static void note_odd_children(sf_lease *lease, const char *kind, const sf_registry_list *list,
                              uint32_t ids)
{
	for (int i = 0; i < list->count; i++) {
		char name[41];

		if (sf_lease_worker_name(list->names[i], (int64_t)ids - 1) >= 0)
			continue;
		sf_record_printable(name, sizeof name, list->names[i], strlen(list->names[i]));
		sf_lease_log(lease, SF_LOG_WARNING, "lease: ignoring %s/%s/%s: not a worker ID of this layout "
		             "(0..%u)%s", lease->root, kind, name, ids - 1,
		             strcmp(kind, "quarantine") == 0 ? "; it quarantines no ID" : "");
	}
}

/* Once a session: a persistent node under workers/ is held by no session
 * and never goes away by itself; its ID is never claimed while it is
 * there, which is safe, and an operator should know. */
static void note_persistent_workers(sf_lease *lease, const sf_registry_list *taken, uint32_t ids)
{
	session *s = lease->s;

	if (s->workers_audited)
		return;
	s->workers_audited = true;
	for (int i = 0; i < taken->count; i++) {
		int32_t id = sf_lease_worker_name(taken->names[i], (int64_t)ids - 1);
		char path[SF_LEASE_PATH_LEN], data[64], shown[41];
		int64_t owner = -1;
		int len = sizeof data;
		bool ours;

		if (id < 0)
			continue;
		sf_lease_path(lease, path, "workers", id);
		if (lease->reg.ops->exists(s->conn, path, false, &ours, &owner) != SF_OK || owner != 0)
			continue;
		if (lease->reg.ops->get(s->conn, path, data, &len) != SF_OK)
			len = 0;
		sf_record_printable(shown, sizeof shown, data, (size_t)(len < (int)sizeof data ? len : (int)sizeof data));
		sf_lease_log(lease, SF_LOG_WARNING, "lease: %s is a persistent node (%d bytes: \"%s\"), not a "
		             "holder's ephemeral one: worker %" PRId32 " is not claimed until an operator deletes it",
		             path, len, shown, id);
	}
}

/* Once a session: may anyone write the registry root or the nodes under
 * it? Then anyone who reaches ZooKeeper can delete a worker node, forge a
 * mark or clear a quarantine. Reported; refused under lease.require_acl.
 * \return SF_OK (go on), SF_E_REGISTRY_ACCESS (refused), or SF_E_REGISTRY. */
static int check_acl(sf_lease *lease)
{
	static const char *const kinds[] = { NULL, "workers", "marks", "quarantine" };
	session *s = lease->s;

	if (s->acl_checked)
		return SF_OK;
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		char path[SF_LEASE_PATH_LEN], perms[8];
		bool open = false;
		int rc;

		if (kinds[k])
			sf_lease_path(lease, path, kinds[k], -1);
		else
			snprintf(path, sizeof path, "%s", lease->root);
		rc = lease->reg.ops->open_to_anyone(s->conn, path, &open, perms, sizeof perms);
		if (rc != SF_OK)
			return rc == SF_E_REGISTRY_ACCESS ? rc : SF_E_REGISTRY;
		if (!open)
			continue;
		if (lease->cfg.require_acl) {
			sf_lease_log(lease, SF_LOG_ERR, "lease: %s can be changed by anyone (ACL world:anyone %s) and "
			             "lease.require_acl is set: not claiming; set lease.auth_file on every node and "
			             "give the registry root to that identity", path, perms);
			return SF_E_REGISTRY_ACCESS;
		}
		sf_lease_log(lease, SF_LOG_WARNING, "lease: %s can be changed by anyone (ACL world:anyone %s): any "
		             "client that reaches ZooKeeper can delete worker nodes, forge marks or clear a "
		             "quarantine; set lease.auth_file (and lease.require_acl)", path, perms);
		break; /* one line says it */
	}
	s->acl_checked = true;
	return SF_OK;
}

/* How many worker IDs the registry quarantines (names the lease did not
 * write quarantine nothing), for the status and its metric. */
static void set_quarantined_count(sf_lease *lease, const sf_registry_list *list)
{
	const int64_t max_id = ((int64_t)1 << sf_gen_layout(lease->gen)->worker_bits) - 1;
	int32_t n = 0;

	for (int i = 0; i < list->count; i++)
		n += sf_lease_worker_name(list->names[i], max_id) >= 0;
	lease->quarantine_counted_ns = mono_ns(lease);
	pthread_mutex_lock(&lease->lock);
	lease->status.quarantined_ids = n;
	pthread_mutex_unlock(&lease->lock);
}

static void count_quarantine(sf_lease *lease)
{
	char path[SF_LEASE_PATH_LEN];
	sf_registry_list list = { 0 };

	if (mono_ns(lease) - lease->quarantine_counted_ns < 10000 * SF_NS_PER_MS)
		return;
	sf_lease_path(lease, path, "quarantine", -1);
	int rc = lease->reg.ops->children(lease->s->conn, path, &list);

	if (rc == SF_OK)
		set_quarantined_count(lease, &list);
	else if (rc == SF_E_NOT_FOUND)
		set_quarantined_count(lease, &list); /* none yet */
	else
		lease->quarantine_counted_ns = mono_ns(lease); /* not before the next round */
	sf_registry_list_free(&list);
}

/*
 * Chooses a free, non-quarantined ID, oldest mark first (never-marked IDs
 * are the oldest), and creates its ephemeral node.
 * \return SF_OK with lease->worker set, SF_E_NO_FREE_WORKER, SF_E_NOMEM, or
 * SF_E_REGISTRY.
 */
static int claim(sf_lease *lease)
{
	const sf_registry_ops *reg = lease->reg.ops;
	session *s = lease->s;
	const uint32_t ids = 1U << sf_gen_layout(lease->gen)->worker_bits;
	sf_registry_list taken = { 0 }, quarantined = { 0 }, marked = { 0 };
	struct candidate *cands = NULL;
	char path[SF_LEASE_PATH_LEN], data[SF_LEASE_DATA_LEN];
	uint32_t n = 0, seed = (uint32_t)getpid() ^ (uint32_t)mono_ns(lease);
	int rc, result = SF_E_REGISTRY;

	set_state(lease, SF_LEASE_CLAIMING, SF_E_NO_LEASE, "choosing a worker ID under %s", lease->root);
	publish_status(lease);
	const char *kinds[] = { "workers", "marks", "quarantine" };
	for (size_t k = 0; k < 3; k++) {
		sf_lease_path(lease, path, kinds[k], -1);
		if ((rc = reg->ensure(s->conn, path)) != SF_OK)
			goto out_failed;
	}
	if ((rc = check_acl(lease)) != SF_OK) {
		if (rc == SF_E_REGISTRY_ACCESS) {
			result = rc;
			goto out;
		}
		goto out_failed;
	}
	sf_lease_path(lease, path, "workers", -1);
	if ((rc = reg->children(s->conn, path, &taken)) != SF_OK)
		goto out_failed;
	sf_lease_path(lease, path, "quarantine", -1);
	if ((rc = reg->children(s->conn, path, &quarantined)) != SF_OK)
		goto out_failed;
	sf_lease_path(lease, path, "marks", -1);
	if ((rc = reg->children(s->conn, path, &marked)) != SF_OK)
		goto out_failed;
	note_odd_children(lease, "workers", &taken, ids);
	note_odd_children(lease, "marks", &marked, ids);
	note_odd_children(lease, "quarantine", &quarantined, ids);
	note_persistent_workers(lease, &taken, ids);
	set_quarantined_count(lease, &quarantined);

	cands = calloc(ids, sizeof *cands);
	if (!cands) {
		result = SF_E_NOMEM;
		goto out;
	}
	for (uint32_t id = 0; id < ids; id++) {
		if (in_list(&taken, (int32_t)id) || in_list(&quarantined, (int32_t)id))
			continue;
		/* xorshift: spreads concurrent claimants over the equally old IDs */
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		cands[n] = (struct candidate){ (int32_t)id, INT64_MIN, seed };
		if (in_list(&marked, (int32_t)id)) {
			sf_lease_path(lease, path, "marks", (int32_t)id);
			rc = read_mark(lease, path, &cands[n].mark, "skipping this worker ID");
			if (rc == SF_E_STATE_CORRUPT)
				continue; /* never mint below a mark we could not read */
			if (rc != SF_OK && rc != SF_E_NOT_FOUND)
				goto out_failed;
		}
		n++;
	}
	if (n == 0) {
		result = SF_E_NO_FREE_WORKER;
		goto out;
	}
	qsort(cands, n, sizeof *cands, cmp_candidate);

	sf_holder_record holder = { .pid = (int64_t)getpid(), .start_ms = lease->status.started_unix_ms };

	sf_record_printable(holder.node, sizeof holder.node, lease->node_name, strlen(lease->node_name));
	sf_record_printable(holder.host, sizeof holder.host, lease->host, strlen(lease->host));
	int len = sf_record_holder_format(data, sizeof data, &holder);
	for (uint32_t i = 0; i < n; i++) {
		int64_t sent = mono_ns(lease);

		sf_lease_path(lease, path, "workers", cands[i].id);
		rc = reg->create_ephemeral(s->conn, path, data, len);
		if (rc == SF_E_NO_FREE_WORKER)
			continue; /* taken by another session */
		if (rc != SF_OK)
			goto out_failed;
		ack(s, sent);
		lease->worker = cands[i].id;
		lease->registry_mark = cands[i].mark;
		snprintf(s->own_path, sizeof s->own_path, "%s", path);
		result = SF_OK;
		goto out;
	}
	/* every candidate was taken while we tried */
	result = SF_E_NO_FREE_WORKER;
	goto out;
out_failed:
	if (rc == SF_E_REGISTRY_ACCESS) {
		/* the nodes belong to another identity: lease.auth_file is missing or wrong */
		sf_lease_log(lease, SF_LOG_ERR, "lease: the registry refused access under %s (%s): %s",
		             lease->root, reg->last_error(s->conn),
		             lease->cfg.auth_file ? "the credentials in lease.auth_file are not the identity the "
		                                    "registry's ACL allows"
		                                  : "its nodes belong to an identity; set lease.auth_file");
		result = rc;
		goto out;
	}
	sf_lease_log(lease, SF_LOG_WARNING, "lease: claim under %s failed: %s", lease->root,
	             reg->last_error(s->conn));
	result = SF_E_REGISTRY;
out:
	sf_registry_list_free(&taken);
	sf_registry_list_free(&quarantined);
	sf_registry_list_free(&marked);
	free(cands);
	return result;
}

/* After a claim: watch the node, read the registry mark again (a
 * concurrent holder may have moved it), prepare the local mark.
 * \return SF_OK, SF_E_REGISTRY, or a code of sf_keeper_new /
 * sf_keeper_start_mark (SF_E_STATE_IO, SF_E_STATE_CORRUPT, SF_E_NOMEM, ...). */
static int adopt_worker(sf_lease *lease)
{
	session *s = lease->s;
	/* stored again once a third of the reach is used: the rest is slack for
	 * an fsync on a busy host (seen: 138 ms) */
	sf_keeper_config kc = { lease->state_dir, (uint32_t)lease->worker, lease->cfg.local_ahead_ms,
	                        lease->cfg.local_ahead_ms * 2 / 3 > 0 ? lease->cfg.local_ahead_ms * 2 / 3 : 1 };
	char path[SF_LEASE_PATH_LEN];
	bool ours = false;
	int64_t mark;
	int rc;

	atomic_store(&s->quarantined, false);
	atomic_store(&s->quarantine_rearm, false);
	atomic_store(&s->mark_event, false);
	atomic_store(&s->own_worker, lease->worker);
	rc = lease->reg.ops->exists(s->conn, s->own_path, true, &ours, NULL);
	if (rc != SF_OK || !ours)
		return SF_E_REGISTRY;
	/* both claimants park: a quarantine record for this ID, written from
	 * now on by anyone, stops us (the watch fires on its creation) */
	sf_lease_path(lease, path, "quarantine", lease->worker);
	rc = lease->reg.ops->exists(s->conn, path, true, &ours, NULL);
	if (rc == SF_OK)
		return SF_E_QUARANTINED; /* quarantined since we listed */
	if (rc != SF_E_NOT_FOUND)
		return SF_E_REGISTRY;
	/* a watch on the mark: someone else's write is seen and undone */
	sf_lease_path(lease, path, "marks", lease->worker);
	rc = lease->reg.ops->exists(s->conn, path, true, &ours, NULL);
	if (rc != SF_OK && rc != SF_E_NOT_FOUND)
		return SF_E_REGISTRY;
	rc = read_mark(lease, path, &mark, "not taking up this worker ID; a later claim skips it");
	if (rc == SF_OK)
		lease->registry_mark = mark;
	else if (rc == SF_E_NOT_FOUND)
		lease->registry_mark = INT64_MIN;
	else
		return rc == SF_E_STATE_CORRUPT ? rc : SF_E_REGISTRY;
	rc = sf_keeper_new(lease->gen, &kc, &lease->keeper);
	if (rc != SF_OK)
		return rc;
	return sf_keeper_start_mark(lease->keeper, &lease->local_mark, NULL);
}

/* ---- the steps ----------------------------------------------------------- */

static int64_t registry_ahead_ms(const sf_lease *lease)
{
	/* never less than 2 timeouts: the mark is renewed once less than 1.5
	 * timeouts are left, and must outlast the fence through any outage */
	return lease->cfg.registry_ahead_ms > 2 * lease->timeout_ms ? lease->cfg.registry_ahead_ms
	                                                             : 2 * lease->timeout_ms;
}

static void hold_claims(sf_lease *lease)
{
	lease->claim_not_before_ns = mono_ns(lease) + lease->cfg.reclaim_delay_ms * SF_NS_PER_MS;
}

/* Who holds our node now, from its holder record, into buf ("" when it is
 * gone or the registry does not answer). */
static void seen_holder(sf_lease *lease, char *buf, size_t size)
{
	char data[SF_LEASE_DATA_LEN];
	int len = sizeof data;
	sf_holder_record holder;

	buf[0] = '\0';
	if (lease->reg.ops->get(lease->s->conn, lease->s->own_path, data, &len) != SF_OK)
		return;
	if (len <= (int)sizeof data && sf_record_holder_parse(data, (size_t)len, &holder) == SF_OK) {
		snprintf(buf, size, "node %.50s (host %.50s, pid %" PRId64 ")", holder.node, holder.host,
		         holder.pid);
		return;
	}
	log_unreadable(lease, lease->s->own_path, "a holder record", data, len, sizeof data,
	               "quarantining all the same");
	snprintf(buf, size, "an unreadable holder record (%d bytes)", len);
}

static void count_canary(sf_lease *lease)
{
	pthread_mutex_lock(&lease->lock);
	lease->status.canaries++;
	pthread_mutex_unlock(&lease->lock);
}

static void handle_canary(sf_lease *lease)
{
	session *s = lease->s;
	int32_t worker = lease->worker;
	int64_t owner = atomic_load(&s->ping_owner);
	sf_quarantine_record *rec = &lease->pending_record;
	char why[SF_RECORD_WHY_MAX + 1], window[160];

	atomic_store(&s->canary, false);
	snprintf(why, sizeof why, "lease node vanished or changed owner while held by session 0x%" PRIx64,
	         (uint64_t)lease->session_id);
	record_self(lease, rec, why);
	seen_holder(lease, rec->seen, sizeof rec->seen);
	issued_window(lease, rec);
	sf_lease_log(lease, SF_LOG_ERR,
	             "lease: CANARY worker %" PRId32 " node %s is gone or owned by another session "
	             "(ours 0x%" PRIx64 ", seen 0x%" PRIx64 "%s%s): parked, quarantining the ID; this node "
	             "issued %s on it", worker, s->own_path, (uint64_t)lease->session_id, (uint64_t)owner,
	             rec->seen[0] ? ", held by " : "", rec->seen, window_text(window, sizeof window, rec));
	release_node(lease, false);
	drop_worker(lease, SF_E_QUARANTINED);
	lease->pending_quarantine = worker;
	hold_claims(lease);
	set_state(lease, SF_LEASE_PARKED, SF_E_QUARANTINED,
	          "worker %" PRId32 " lost its lease node to someone else and is quarantined", worker);
	count_canary(lease);
}

/* The other side of a canary: someone quarantined the ID we hold. Park,
 * leave the mark as it is (the overlap's IDs may be above what we issued)
 * and say what we issued, for the audit. */
static void handle_quarantined(sf_lease *lease)
{
	session *s = lease->s;
	int32_t worker = lease->worker;
	char path[SF_LEASE_PATH_LEN], data[SF_LEASE_DATA_LEN], by[SF_RECORD_WHY_MAX + 300], window[160];
	sf_quarantine_record theirs, mine;
	int len = sizeof data;

	atomic_store(&s->quarantined, false);
	sf_lease_path(lease, path, "quarantine", worker);
	snprintf(by, sizeof by, "someone");
	if (lease->reg.ops->get(s->conn, path, data, &len) == SF_OK) {
		if (len <= (int)sizeof data && sf_record_quarantine_parse(data, (size_t)len, &theirs) == SF_OK)
			snprintf(by, sizeof by, "node %s (host %s, pid %" PRId64 ", at Unix ms %" PRId64 "): %s",
			         theirs.node, theirs.host, theirs.pid, theirs.at_ms, theirs.why);
		else
			log_unreadable(lease, path, "a quarantine record", data, len, sizeof data, "parking all the same");
	}
	issued_window(lease, &mine);
	sf_lease_log(lease, SF_LOG_ERR, "lease: worker %" PRId32 " was quarantined under %s by %s; parked "
	             "(both claimants park); this node issued %s on it", worker, path, by,
	             window_text(window, sizeof window, &mine));
	release_node(lease, false);
	drop_worker(lease, SF_E_QUARANTINED);
	hold_claims(lease);
	set_state(lease, SF_LEASE_PARKED, SF_E_QUARANTINED,
	          "worker %" PRId32 " was quarantined by another claimant; parked", worker);
	count_canary(lease);
}

/* A quarantine watch that fired for a deletion: set it again, and park if
 * the record is back already. */
static void rearm_quarantine_watch(sf_lease *lease)
{
	char path[SF_LEASE_PATH_LEN];
	bool ours;
	int rc;

	sf_lease_path(lease, path, "quarantine", lease->worker);
	rc = lease->reg.ops->exists(lease->s->conn, path, true, &ours, NULL);
	if (rc == SF_OK) {
		atomic_store(&lease->s->quarantined, true);
		sf_gen_revoke(lease->gen, SF_E_QUARANTINED);
	} else if (rc != SF_E_NOT_FOUND) {
		atomic_store(&lease->s->quarantine_rearm, true); /* next tick */
	}
}

/* The watch on our mark fired: set it again, and if the mark is not one we
 * wrote (someone else's value, garbage, or gone), write ours again. */
static void check_own_mark(sf_lease *lease)
{
	session *s = lease->s;
	char path[SF_LEASE_PATH_LEN];
	int64_t mark = 0;
	bool ours;
	int rc;

	sf_lease_path(lease, path, "marks", lease->worker);
	/* the watch first: a write after it is seen next time */
	rc = lease->reg.ops->exists(s->conn, path, true, &ours, NULL);
	if (rc == SF_OK)
		rc = read_mark(lease, path, &mark, "writing the mark again");
	if (rc == SF_E_REGISTRY) {
		atomic_store(&s->mark_event, true); /* next tick */
		return;
	}
	if (rc == SF_OK && (mark == atomic_load(&s->mark_acked) || mark == atomic_load(&s->mark_sending)))
		return; /* our own write */
	if (rc == SF_OK)
		sf_lease_log(lease, SF_LOG_WARNING, "lease: %s was changed by someone else (%" PRId64 ", ours %"
		             PRId64 "): writing the mark again", path, mark, atomic_load(&s->mark_acked));
	else if (rc == SF_E_NOT_FOUND)
		sf_lease_log(lease, SF_LOG_WARNING, "lease: %s was deleted by someone else: writing the mark again", path);
	if (!lease->minted)
		return; /* not written yet: step_waiting writes it */
	int64_t ahead = wall_ms(lease) + registry_ahead_ms(lease);
	int64_t acked = atomic_load(&s->mark_acked);

	write_mark_sync(lease, lease->worker, acked > ahead ? acked : ahead, false);
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

		sf_lease_log(lease, SF_LOG_ERR, "lease: worker %" PRId32 " refused: its %s mark is %" PRId64
		             " ms ahead of the clock, more than lease.start_bound_ms = %" PRId64,
		             worker, rc == SF_E_REGISTRY_HWM_AHEAD ? "registry" : "local",
		             rep.regression_ms, lease->cfg.start_bound_ms);
		release_node(lease, true);
		drop_worker(lease, rc);
		hold_claims(lease);
		set_state(lease, SF_LEASE_PARKED, rc,
		          "worker %" PRId32 " has a high-water mark %" PRId64 " ms ahead of this clock",
		          worker, rep.regression_ms);
		return;
	}
	/* the marks are passed: write ahead, registry first, then local */
	int64_t mark = wall_ms(lease) + registry_ahead_ms(lease);
	int wrc = write_mark_sync(lease, lease->worker, mark, false);

	if (wrc != SF_OK) {
		sf_lease_log(lease, SF_LOG_WARNING, "lease: writing the registry mark of worker %" PRId32
		             " failed: %s", lease->worker, lease->reg.ops->last_error(lease->s->conn));
		return; /* retried next tick */
	}
	sf_gen_ceiling_set(lease->gen, SF_CEILING_REGISTRY, mark);
	if (!lease->minted)
		sf_gen_position(lease->gen, &lease->window_floor_ms, &lease->window_floor_seq);
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
	session *s = lease->s;
	int64_t current_ns;
	int32_t current_worker;
	int code;

	sf_gen_grant_get(lease->gen, &current_worker, &current_ns, &code);
	if (code == SF_OK && current_worker == lease->worker &&
	    current_ns / SF_NS_PER_MS == fence_ns / SF_NS_PER_MS)
		return;
	sf_gen_grant(lease->gen, (uint32_t)lease->worker, fence_ns);
	lease->published_fence_ms = fence_ns / SF_NS_PER_MS;
	lease->granted_fence_ms = (fence_ns + SF_NS_PER_MS - 1) / SF_NS_PER_MS;
	/* the grant exchange and these loads are seq_cst, as are the flag
	 * stores and the revoke on the other side */
	if (atomic_load(&s->canary) || atomic_load(&s->quarantined))
		sf_gen_revoke(lease->gen, SF_E_QUARANTINED);
	else if (atomic_load(&s->suspect))
		sf_gen_revoke(lease->gen, SF_E_NO_LEASE);
	else if (atomic_load(&lease->park_requested))
		sf_gen_revoke(lease->gen, SF_E_PARKED);
}

/* Holding a minting lease: keep-alive, marks, fence. */
static void step_minting(sf_lease *lease)
{
	const sf_registry_ops *reg = lease->reg.ops;
	session *s = lease->s;
	const int64_t now = mono_ns(lease);
	const bool connected = atomic_load(&s->reg_state) == SF_REGISTRY_CONNECTED;
	const int64_t ping_every_ns = lease->timeout_ms * SF_NS_PER_MS / 6;
	int rc;

	/* keep-alive: an exists on our own node, also the slow canary */
	if (connected && !atomic_load(&s->ping_outstanding) &&
	    now - atomic_load(&s->ping_send_ns) >= ping_every_ns) {
		atomic_store(&s->ping_outstanding, true);
		atomic_store(&s->ping_send_ns, now);
		atomic_store(&s->ping_worker, lease->worker);
		atomic_store(&s->ping_in_lease, lease_alive(s));
		if (reg->ping(s->conn, s->own_path) != SF_OK)
			atomic_store(&s->ping_outstanding, false);
	}
	/* the slow canary: an answer about our own ID that says it is not ours */
	int64_t verdict = atomic_exchange(&s->ping_verdict, SF_PING_NONE);

	if ((verdict == SF_PING_GONE || verdict == SF_PING_FOREIGN) &&
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
		char path[SF_LEASE_PATH_LEN], buf[32];
		int64_t mark = wall + registry_ahead_ms(lease);
		int len = sf_record_mark_format(buf, sizeof buf, mark);

		if (atomic_load(&s->mark_rc) == SF_E_NOT_FOUND) {
			/* someone removed marks/<id>: recreate it synchronously */
			atomic_store(&s->mark_rc, SF_OK);
			write_mark_sync(lease, lease->worker, mark, false);
		} else {
			sf_lease_path(lease, path, "marks", lease->worker);
			atomic_store(&s->mark_outstanding, true);
			atomic_store(&s->mark_sending, mark);
			atomic_store(&s->mark_send_ns, now);
			if (reg->set_async(s->conn, path, buf, len) != SF_OK)
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
			sf_lease_log(lease, SF_LOG_WARNING, "clock: minting reads clock_gettime from now on: %s", why_not);
		}
	}

	/* local mark: the keeper writes only when it must */
	rc = sf_keeper_step(lease->keeper, NULL);
	if (rc != SF_OK)
		sf_lease_log(lease, SF_LOG_ERR, "lease: cannot store the local mark in %s: %s",
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
		set_state_at(lease, now, SF_LEASE_MINTING, SF_OK, "minting as worker %" PRId32, lease->worker);
}

/* The margin in force: the configured one, but at most half the negotiated
 * timeout, or the fence would close before the next keep-alive could open it. */
static void set_margin(sf_lease *lease)
{
	lease->margin_ms = lease->cfg.margin_ms;
	if (lease->margin_ms > lease->timeout_ms / 2) {
		lease->margin_ms = lease->timeout_ms / 2;
		sf_lease_log(lease, SF_LOG_WARNING, "lease: lease.margin_ms %" PRId64 " is more than half"
		             " the negotiated session timeout %" PRId64 " ms; using %" PRId64,
		             lease->cfg.margin_ms, lease->timeout_ms, lease->margin_ms);
	}
}

/* Holding no worker ID: claim one once the registry answers and any hold
 * (after a canary, a refusal, a failed claim) has passed. */
static void step_claim(sf_lease *lease)
{
	session *s = lease->s;
	int rc;

	if (atomic_load(&s->reg_state) != SF_REGISTRY_CONNECTED)
		return;
	if (mono_ns(lease) < lease->claim_not_before_ns)
		return;
	rc = claim(lease);
	if (rc == SF_OK) {
		pthread_mutex_lock(&lease->lock);
		lease->status.claims++;
		pthread_mutex_unlock(&lease->lock);
		char mark_text[32] = "none";

		if (lease->registry_mark != INT64_MIN)
			snprintf(mark_text, sizeof mark_text, "%" PRId64, lease->registry_mark);
		sf_lease_log(lease, SF_LOG_NOTICE, "lease: claimed worker %" PRId32 " (%s), registry mark %s",
		             lease->worker, s->own_path, mark_text);
		rc = adopt_worker(lease);
		if (rc != SF_OK) {
			sf_lease_log(lease, SF_LOG_ERR, "lease: cannot take up worker %" PRId32 ": %s",
			             lease->worker, sf_code_text(rc));
			release_node(lease, true);
			drop_worker(lease, SF_E_NO_LEASE);
			hold_claims(lease);
			set_state(lease, SF_LEASE_PARKED, rc, "could not take up the claimed worker ID: %s",
			          sf_code_text(rc));
			return;
		}
		step_waiting(lease);
	} else if (rc == SF_E_REGISTRY_ACCESS) {
		hold_claims(lease);
		set_state(lease, SF_LEASE_PARKED, rc, "the registry refused access under %s, or anyone may "
		          "change it and lease.require_acl is set (see the log)", lease->root);
	} else if (rc == SF_E_NO_FREE_WORKER) {
		hold_claims(lease);
		set_state(lease, SF_LEASE_PARKED, rc,
		          "all %u worker IDs under %s are taken or quarantined",
		          1U << sf_gen_layout(lease->gen)->worker_bits, lease->root);
	} else {
		lease->claim_not_before_ns = mono_ns(lease) + 500 * SF_NS_PER_MS;
	}
}

static void step(sf_lease *lease)
{
	session *s;

	if (!lease->s) {
		if (session_open(lease) != SF_OK)
			return;
		set_state(lease, SF_LEASE_CONNECTING, SF_E_NO_LEASE, "connecting to %s", lease->zk_hosts);
	}
	s = lease->s;
	if (atomic_load(&s->expired)) {
		sf_lease_log(lease, SF_LOG_WARNING, "lease: session 0x%" PRIx64 " expired", (uint64_t)lease->session_id);
		drop_worker(lease, SF_E_NO_LEASE);
		session_close(lease);
		lease->session_id = 0;
		set_state(lease, SF_LEASE_CONNECTING, SF_E_NO_LEASE,
		          "the registry session expired; opening a new one");
		return;
	}
	if (atomic_load(&s->reg_state) == SF_REGISTRY_CONNECTED) {
		int64_t id, negotiated;

		if (lease->reg.ops->session(s->conn, &id, &negotiated) == SF_OK) {
			if (id == lease->session_id && negotiated != lease->timeout_ms && negotiated > 0) {
				sf_lease_log(lease, SF_LOG_NOTICE, "lease: negotiated timeout changed from %" PRId64
				             " to %" PRId64 " ms", lease->timeout_ms, negotiated);
				lease->timeout_ms = negotiated;
				atomic_store(&s->timeout_ns, negotiated * SF_NS_PER_MS);
				set_margin(lease);
			}
			if (id != lease->session_id) {
				lease->session_id = id;
				lease->timeout_ms = negotiated;
				atomic_store(&s->timeout_ns, lease->timeout_ms * SF_NS_PER_MS);
				set_margin(lease);
				pthread_mutex_lock(&lease->lock);
				lease->status.sessions++;
				pthread_mutex_unlock(&lease->lock);
				sf_lease_log(lease, SF_LOG_NOTICE, "lease: session 0x%" PRIx64 " established, timeout %" PRId64
				             " ms (requested %" PRId64 ")", (uint64_t)id, lease->timeout_ms,
				             lease->cfg.session_timeout_ms);
			}
		}
	}
	if (atomic_load(&s->canary) && lease->worker >= 0)
		handle_canary(lease);
	if (atomic_exchange(&s->quarantine_rearm, false) && lease->worker >= 0)
		rearm_quarantine_watch(lease);
	if (atomic_load(&s->quarantined) && lease->worker >= 0)
		handle_quarantined(lease);
	if (atomic_exchange(&s->mark_event, false) && lease->worker >= 0 &&
	    atomic_load(&s->reg_state) == SF_REGISTRY_CONNECTED)
		check_own_mark(lease);
	if (atomic_load(&s->suspect) && lease->worker >= 0 && lease->state != SF_LEASE_PARKED)
		set_state(lease, SF_LEASE_PARKED, SF_E_NO_LEASE,
		          "the node of worker %" PRId32 " went away while the registry was out of reach;"
		          " waiting to learn whether the session expired", lease->worker);
	if (lease->pending_quarantine >= 0 && atomic_load(&s->reg_state) == SF_REGISTRY_CONNECTED &&
	    quarantine_write(lease, lease->pending_quarantine, &lease->pending_record) == SF_OK) {
		sf_lease_log(lease, SF_LOG_ERR, "lease: worker %" PRId32 " quarantined under %s/quarantine",
		             lease->pending_quarantine, lease->root);
		lease->pending_quarantine = -1;
	}

	if (atomic_load(&s->reg_state) == SF_REGISTRY_CONNECTED)
		count_quarantine(lease);
	if (lease->worker < 0) {
		step_claim(lease);
		return;
	}
	if (lease->state == SF_LEASE_WAITING || lease->state == SF_LEASE_CLAIMING) {
		step_waiting(lease);
		return;
	}
	step_minting(lease);
}

/* ---- entry points -------------------------------------------------------- */

void sf_lease_sm_tick(sf_lease *lease)
{
	lease->operator_parked = atomic_load(&lease->park_requested);
	step(lease);
	publish_status(lease);
}

void sf_lease_sm_finish(sf_lease *lease)
{
	sf_gen_revoke(lease->gen, SF_E_STOPPED);
	release_node(lease, true);
	drop_worker(lease, SF_E_STOPPED);
	session_close(lease);
	set_state(lease, SF_LEASE_STOPPED, SF_E_STOPPED, "stopped");
	publish_status(lease);
}

void sf_lease_sm_free(sf_lease *lease)
{
	if (lease->reg.ops && lease->reg.ops->destroy)
		lease->reg.ops->destroy(lease->reg.ctx);
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
	return len < SF_LEASE_PATH_LEN - 64;
}

bool sf_lease_config_valid(const sf_lease_config *config)
{
	return config && config->zk_hosts && config->zk_hosts[0] && config->root &&
	       root_valid(config->root) && config->state_dir && config->session_timeout_ms > 0 &&
	       config->margin_ms >= 0 && config->local_ahead_ms > 0 && config->start_bound_ms >= 0 &&
	       config->reclaim_delay_ms >= 0 && config->registry_ahead_ms >= 0;
}

int sf_lease_sm_new(sf_gen *gen, const sf_lease_config *config, const sf_registry *reg,
                    sf_lease **out)
{
	pthread_condattr_t cattr;
	sf_lease *lease;

	if (!gen || !out || !reg || !reg->ops || !sf_lease_config_valid(config)) {
		if (reg && reg->ops && reg->ops->destroy)
			reg->ops->destroy(reg->ctx);
		return SF_E_INVALID;
	}
	lease = calloc(1, sizeof *lease);
	if (!lease) {
		if (reg->ops->destroy)
			reg->ops->destroy(reg->ctx);
		return SF_E_NOMEM;
	}
	lease->gen = gen;
	lease->clock = sf_gen_clock(gen);
	lease->reg = *reg;
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
		sf_lease_sm_free(lease);
		return SF_E_NOMEM;
	}
	lease->worker = -1;
	lease->pending_quarantine = -1;
	lease->state = SF_LEASE_CONNECTING;
	lease->reason = SF_E_NO_LEASE;
	lease->status.worker = -1;
	lease->status.quarantined_ids = -1;
	lease->quarantine_counted_ns = INT64_MIN / 2;
	lease->status.state = SF_LEASE_CONNECTING;
	lease->status.reason = SF_E_NO_LEASE;
	lease->status.started_unix_ms = wall_ms(lease);
	snprintf(lease->status.detail, sizeof lease->status.detail, "starting");
	sf_gen_revoke(gen, SF_E_NO_LEASE);
	lease->clock_source = sf_clock_source(NULL);
	*out = lease;
	return SF_OK;
}
