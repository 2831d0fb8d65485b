/*
 * The lease's public API (sf_lease.h): configuration, life cycle, the lease
 * thread, status, operator park and quarantine administration. The state
 * machine lives in sf_lease_sm.c, every ZooKeeper call in sf_registry_zk.c.
 *
 * The lease thread is a thin loop: one sf_lease_sm_tick, then a wait of at
 * most LEASE_TICK_MS on the real CLOCK_MONOTONIC that any registry event, an
 * operator park or a stop cuts short.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sf_internal.h"
#include "sf_lease_sm.h"

#define LEASE_TICK_MS 50

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
	c->log_level = SF_LOG_INFO;
}

void sf_lease_status_get(sf_lease *lease, sf_lease_status *out)
{
	pthread_mutex_lock(&lease->lock);
	*out = lease->status;
	pthread_mutex_unlock(&lease->lock);
}

void sf_lease_park(sf_lease *lease, bool parked)
{
	/* the flag first, then the revoke: publish_grant re-checks the flag
	 * after granting, so a grant can never overwrite this park */
	atomic_store(&lease->park_requested, parked);
	if (parked)
		sf_gen_revoke(lease->gen, SF_E_PARKED); /* now, not at the next tick */
	sf_lease_wake(lease);
}

/* ---- the lease thread ---------------------------------------------------- */

static void *lease_thread(void *arg)
{
	sf_lease *lease = arg;

	for (;;) {
		struct timespec until;

		pthread_mutex_lock(&lease->lock);
		bool stop = lease->stop_requested;
		pthread_mutex_unlock(&lease->lock);
		if (stop)
			break;
		sf_lease_sm_tick(lease);

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
	sf_lease_sm_finish(lease);
	return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */

int sf_lease_start(sf_gen *gen, const sf_lease_config *config, sf_lease **out)
{
	sigset_t all, old;
	sf_registry reg;
	sf_lease *lease;
	int rc;

	char cred[1100], why[600];

	if (!gen || !out || !sf_lease_config_valid(config))
		return SF_E_INVALID;
	if (config->auth_file) {
		rc = sf_lease_auth_load(config->auth_file, cred, sizeof cred, why, sizeof why);
		if (rc != SF_OK) {
			if (config->log && config->log_level >= SF_LOG_ERR)
				config->log(config->log_ctx, SF_LOG_ERR, why);
			return rc;
		}
	}
	rc = sf_registry_zk_new(config->zk_hosts, config->session_timeout_ms,
	                        config->auth_file ? cred : NULL, config->log, config->log_ctx,
	                        config->log_level, &reg);
	memset(cred, 0, sizeof cred);
	if (rc != SF_OK)
		return rc;
	rc = sf_lease_sm_new(gen, config, &reg, &lease); /* owns reg from here on */
	if (rc != SF_OK)
		return rc;

	/* the lease thread and ZooKeeper's threads take no process signals */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&lease->thread, NULL, lease_thread, lease);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		sf_lease_sm_free(lease);
		return SF_E_NOMEM;
	}
	lease->thread_started = true;
	sf_lease_log(lease, SF_LOG_NOTICE, "lease: starting, registry %s root %s, node %s, state %s",
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
	else
		sf_lease_sm_finish(lease); /* driven by ticks of its caller (a test) */
	sf_lease_sm_free(lease);
}

/* ---- quarantine administration (caller's thread) ------------------------- */

/* Each call opens a short-lived session of its own (open_admin): the lease
 * thread's connection is not shared, so these never race with its state
 * machine. */

/* One line of the quarantine list for child name with data (len: the
 * node's whole length, room: what was read of it). */
static int quarantine_line(char *out, size_t size, const char *name, const char *data, int len,
                           int room, uint32_t ids)
{
	sf_quarantine_record rec;
	char shown[41], when[96] = "?";

	if (sf_lease_worker_name(name, (int64_t)ids - 1) < 0)
		return snprintf(out, size, "%s not a worker ID of this layout: the lease ignores it\n",
		                sf_record_printable(shown, sizeof shown, name, strlen(name)));
	if (len > room || sf_record_quarantine_parse(data, (size_t)len, &rec) != SF_OK)
		return snprintf(out, size, "%s unreadable record (%d bytes: \"%s\"): the ID stays quarantined\n",
		                name, len, sf_record_printable(shown, sizeof shown, data, (size_t)(len < room ? len : room)));
	{
		time_t secs = (time_t)(rec.at_ms / 1000);
		struct tm tm;

		if (rec.at_ms >= 0 && gmtime_r(&secs, &tm))
			snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rec.at_ms % 1000));
	}
	int n = snprintf(out, size, "%s at %s by node %s (host %s, pid %" PRId64 "): %s; ", name, when,
	                 rec.node, rec.host, rec.pid, rec.why);
	if (n < 0 || (size_t)n >= size)
		return n;
	int m = rec.has_window
	        ? snprintf(out + n, size - (size_t)n, "it issued IDs %" PRId64 "..%" PRId64 " (Unix ms %" PRId64
	                   "..%" PRId64 ")", rec.first_id, rec.last_id, rec.first_ms, rec.last_ms)
	        : snprintf(out + n, size - (size_t)n, "it issued no ID");
	if (m < 0 || (size_t)(n + m) >= size)
		return n + m;
	int k = snprintf(out + n + m, size - (size_t)(n + m), "%s%s\n", rec.seen[0] ? "; seen instead: " : "",
	                 rec.seen);
	return n + m + k;
}

int sf_lease_quarantine_list(sf_lease *lease, char *buf, size_t size)
{
	const sf_registry_ops *reg;
	sf_registry_list ids = { 0 };
	char path[SF_LEASE_PATH_LEN], data[SF_LEASE_DATA_LEN];
	size_t used = 0;
	void *conn;
	int rc;

	if (!lease || !buf || size == 0)
		return SF_E_INVALID;
	reg = lease->reg.ops;
	buf[0] = '\0';
	if (reg->open_admin(lease->reg.ctx, &conn) != SF_OK)
		return SF_E_REGISTRY;
	sf_lease_path(lease, path, "quarantine", -1);
	rc = reg->children(conn, path, &ids);
	if (rc == SF_E_NOT_FOUND) {
		reg->close(conn);
		return SF_OK;
	}
	if (rc != SF_OK) {
		reg->close(conn);
		return SF_E_REGISTRY;
	}
	for (int i = 0; i < ids.count; i++) {
		int len = sizeof data;
		char child[SF_LEASE_PATH_LEN * 2];

		snprintf(child, sizeof child, "%s/%s", path, ids.names[i]);
		if (reg->get(conn, child, data, &len) != SF_OK || len < 0)
			len = 0;
		int n = quarantine_line(buf + used, size - used, ids.names[i], data, len, sizeof data,
		                        1U << sf_gen_layout(lease->gen)->worker_bits);

		if (n < 0 || (size_t)n >= size - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
	sf_registry_list_free(&ids);
	reg->close(conn);
	return SF_OK;
}

int sf_lease_quarantine_clear(sf_lease *lease, uint32_t worker)
{
	const sf_registry_ops *reg;
	char path[SF_LEASE_PATH_LEN];
	void *conn;
	int rc;

	if (!lease || (uint64_t)worker >> sf_gen_layout(lease->gen)->worker_bits)
		return SF_E_WORKER_RANGE;
	reg = lease->reg.ops;
	if (reg->open_admin(lease->reg.ctx, &conn) != SF_OK)
		return SF_E_REGISTRY;
	sf_lease_path(lease, path, "quarantine", (int32_t)worker);
	rc = reg->remove(conn, path);
	reg->close(conn);
	if (rc == SF_E_NOT_FOUND)
		return SF_E_NOT_FOUND;
	if (rc == SF_OK)
		sf_lease_log(lease, SF_LOG_NOTICE, "lease: quarantine of worker %" PRIu32 " cleared", worker);
	return rc == SF_OK ? SF_OK : SF_E_REGISTRY;
}
