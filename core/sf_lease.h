/*
 * edge-snowflake lease: worker IDs from ZooKeeper ephemeral nodes.
 *
 * The lease owns ZooKeeper and nothing else. It runs on threads of its own
 * (its lease thread plus libzookeeper-mt's two) which it starts in
 * sf_lease_start, so the process that serves must be the one to call it
 * (after HAProxy's fork). It drives the generator only through the
 * generator's atomic grant and ceilings: serving threads never wait on it.
 *
 * Registry layout under the root (default /snowflake/default):
 *   workers/<id>     ephemeral, data: {"node":..,"host":..,"pid":..,"start_ms":..}
 *   marks/<id>       persistent, data: the per-ID high-water mark, Unix ms
 *   quarantine/<id>  persistent, data: who, when, why
 *
 * Fencing: the deadline is the CLOCK_MONOTONIC send time of the last request
 * the server acknowledged plus the negotiated session timeout; minting stops
 * at deadline - margin_ms. Wall-clock steps never move it.
 *
 * Inside the core: sf_lease.c (this API, the lease thread), sf_lease_sm.c
 * (the state machine, behind sf_registry.h), sf_registry_zk.c (every
 * ZooKeeper call), sf_ratelog.c (the client log's rate limiter).
 */
#ifndef SF_LEASE_H
#define SF_LEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "snowflake.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_lease sf_lease;

typedef enum sf_lease_state {
	SF_LEASE_CONNECTING = 0, /* no session with the registry yet */
	SF_LEASE_CLAIMING,       /* choosing and creating a worker node */
	SF_LEASE_WAITING,        /* holds an ID, waiting for the clock to pass its marks */
	SF_LEASE_MINTING,
	SF_LEASE_PARKED,         /* holds no usable lease: fenced, canary, refusal, operator */
	SF_LEASE_STOPPED,
} sf_lease_state;

/* The state's stable name ("minting", ...), as status lines and metrics
 * use it; "unknown" for a value outside the enum. Never NULL. */
SF_API const char *sf_lease_state_name(sf_lease_state state);

/* Log levels are syslog's: 3 error, 4 warning, 5 notice, 6 info, 7 debug.
 * The callback runs on the lease's or ZooKeeper's threads: it must be
 * thread-safe and must not call back into the lease. */
typedef void (*sf_log_fn)(void *ctx, int level, const char *line);

typedef struct sf_lease_config {
	const char *zk_hosts;          /* "127.0.0.1:2181,..." */
	const char *root;              /* registry root, "/snowflake/default" */
	const char *node_name;         /* holder name; NULL = host name */
	const char *state_dir;         /* local high-water marks */
	int64_t session_timeout_ms;    /* requested; the server clamps it */
	int64_t margin_ms;             /* stop minting this long before the deadline */
	int64_t registry_ahead_ms;     /* registry mark reach; at least (and 0 =) 2 x negotiated timeout */
	int64_t local_ahead_ms;        /* local mark reach */
	int64_t start_bound_ms;        /* refuse an ID whose marks are further ahead */
	int64_t reclaim_delay_ms;      /* pause before claiming again after a canary */
	const char *auth_file;         /* NULL, or a file (mode 0600) holding "user:password": the
	                                  registry's digest identity, the only one that may write
	                                  the nodes the lease creates (world-readable) */
	bool require_acl;              /* refuse to claim under a root anyone may write */
	sf_log_fn log;
	void *log_ctx;
	int log_level;                 /* lines above it are dropped; 6 by default */
} sf_lease_config;

/* The documented defaults; a caller fills its config from these. Cannot
 * fail. */
SF_API void sf_lease_config_defaults(sf_lease_config *config);

/* Reads a credential file for lease.auth_file into cred ("user:password",
 * NUL-terminated; a trailing newline dropped). The file must be a regular
 * file no one but its owner can read or write (mode 0600 or 0400).
 * \return SF_OK, or SF_E_REGISTRY_ACCESS with why (why_size bytes) saying
 * what is wrong, naming the file. */
SF_API int sf_lease_auth_load(const char *path, char *cred, size_t size, char *why, size_t why_size);

typedef struct sf_lease_status {
	sf_lease_state state;
	int32_t  worker;               /* -1 when none is held */
	int64_t  lease_ms_left;        /* until deadline - margin; 0 when not minting */
	int      reason;               /* why it does not mint: SF_OK when minting, else
	                                  SF_E_NO_LEASE (connecting, claiming, session lost
	                                  or node gone while unreachable), SF_E_CLOCK_WAIT
	                                  (waiting past the marks), SF_E_FENCED,
	                                  SF_E_PARKED (operator), SF_E_QUARANTINED (canary),
	                                  SF_E_NO_FREE_WORKER, SF_E_HWM_AHEAD,
	                                  SF_E_REGISTRY_HWM_AHEAD, SF_E_STATE_IO,
	                                  SF_E_STATE_CORRUPT (local mark), SF_E_INVALID
	                                  (state_dir too long for a path), SF_E_REGISTRY
	                                  (a claimed ID could not be taken up),
	                                  SF_E_NOMEM, or SF_E_STOPPED */
	char     detail[200];          /* a sentence for operators */
	int64_t  session_id;
	int64_t  negotiated_timeout_ms;
	int64_t  mint_ready_unix_ms;   /* while waiting: when the clock passes the marks */
	int64_t  registry_mark_ms;     /* the acknowledged registry mark */
	int64_t  local_mark_ms;        /* the durable local mark */
	uint64_t registry_round_trips; /* acknowledged requests */
	uint64_t claims;               /* worker IDs claimed so far */
	uint64_t canaries;             /* lease nodes found gone or foreign */
	uint64_t sessions;             /* sessions established */
	int32_t  quarantined_ids;      /* worker IDs under quarantine/, as last counted (every
	                                  10 s while the registry answers); -1 before the first count */
	int64_t  last_rtt_us;          /* latest keep-alive round trip */
	int64_t  started_unix_ms;
	int64_t  first_mint_ready_unix_ms; /* when minting first became possible, 0 before */
} sf_lease_status;

/* Validates the config, starts the lease thread and returns at once; the
 * generator mints once a worker ID is claimed and its marks are passed.
 * The generator must outlive the lease. The registry is not contacted here:
 * an unreachable one shows in the status, not in this return.
 * \return SF_OK with *out set, or one of
 *   SF_E_INVALID: gen, config or out NULL; zk_hosts NULL or empty; root
 *     NULL, not "/a/b" shaped (no trailing or doubled '/') or 448 bytes or
 *     longer; state_dir NULL; session_timeout_ms <= 0; local_ahead_ms <= 0;
 *     margin_ms, registry_ahead_ms, start_bound_ms or reclaim_delay_ms < 0
 *   SF_E_NOMEM: out of memory, or the lease thread could not be started */
SF_API int  sf_lease_start(sf_gen *gen, const sf_lease_config *config, sf_lease **out);
/* A consistent copy of the status as of the lease thread's latest tick.
 * Any thread; never blocks for long. */
SF_API void sf_lease_status_get(sf_lease *lease, sf_lease_status *out);
/* Operator park: minting refuses "parked" at once, until unparked; the
 * lease is kept. Any thread. */
SF_API void sf_lease_park(sf_lease *lease, bool parked);
/* Stops minting, brings the registry mark down to what was issued, deletes
 * the worker node, closes the session, joins the thread and frees the
 * lease. Blocks up to about a session timeout. NULL is ignored. */
SF_API void sf_lease_stop(sf_lease *lease);

/* Quarantine administration, synchronous, on a short session of their own:
 * they block up to a session timeout, so never call them from an
 * event-loop thread. */

/* Writes the quarantined IDs, one "<id> <record>" a line, into buf (always
 * NUL-terminated; lines that do not fit are left out).
 * \return SF_OK (also when nothing is quarantined, or the registry root
 * was never used), or one of
 *   SF_E_INVALID: lease or buf NULL, or size 0
 *   SF_E_REGISTRY: no session came up within about five seconds, or the
 *     listing failed */
SF_API int sf_lease_quarantine_list(sf_lease *lease, char *buf, size_t size);
/* Deletes quarantine/<worker>, so the ID may be claimed again.
 * \return SF_OK, or one of
 *   SF_E_WORKER_RANGE: lease NULL, or worker outside the layout
 *   SF_E_NOT_FOUND: that ID has no quarantine record
 *   SF_E_REGISTRY: no session came up within about five seconds, or the
 *     delete failed */
SF_API int sf_lease_quarantine_clear(sf_lease *lease, uint32_t worker);

#ifdef __cplusplus
}
#endif

#endif /* SF_LEASE_H */
