/*
 * The lease's state machine, inside the core: shared by sf_lease.c (the
 * public API, the lease thread, quarantine administration) and
 * sf_lease_sm.c (claim, marks, keep-alive, fence, canary, outage, release),
 * and the entry points a unit test drives with a scripted registry and an
 * injected clock. Not installed.
 *
 * Time: the lease reads both clocks through the generator's sf_clock (the
 * real CLOCK_REALTIME / CLOCK_MONOTONIC when the generator has none), so the
 * fence it computes and the one the generator enforces are on one clock, and
 * a test moves the lease's time by moving the generator's.
 */
#ifndef SF_LEASE_SM_H
#define SF_LEASE_SM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "sf_lease.h"
#include "sf_record.h"
#include "sf_registry.h"

#define SF_LEASE_PATH_LEN 512
#define SF_LEASE_DATA_LEN SF_RECORD_MAX

enum { SF_LOG_ERR = 3, SF_LOG_WARNING = 4, SF_LOG_NOTICE = 5, SF_LOG_INFO = 6, SF_LOG_DEBUG = 7 };

/* PING_* verdicts of the keep-alive */
enum { SF_PING_NONE = 0, SF_PING_OURS, SF_PING_FOREIGN, SF_PING_GONE };

/*
 * One registry session, from open to close: the context of every event of
 * its connection, so a late event of a closed session can only touch its own
 * (still allocated) record. The events only record facts here and wake the
 * lease thread; the one exception is the canary, which revokes the grant at
 * once, from the backend's thread, because a node that is not ours any more
 * must stop minting before anything else runs.
 */
struct sf_lease_session {
	sf_lease        *lease;
	void            *conn;               /* the registry's connection */
	char             own_path[SF_LEASE_PATH_LEN]; /* lease thread only */
	_Atomic int32_t  own_worker;         /* the ID whose node is ours, -1 none; events read it */
	_Atomic int      reg_state;          /* latest enum sf_registry_state from the events */
	_Atomic bool     expired;
	_Atomic bool     canary;             /* own node deleted or changed by someone */
	_Atomic bool     quarantined;        /* quarantine/<own id> appeared: park (both claimants park) */
	_Atomic bool     quarantine_rearm;   /* quarantine/<own id> deleted: set the watch again */
	_Atomic bool     mark_event;         /* marks/<own id> changed or deleted */
	bool             workers_audited;    /* lease thread: workers/ looked over for persistent nodes */
	bool             acl_checked;        /* lease thread: the root's ACL looked at */
	_Atomic bool     suspect;            /* own node gone while our lease was not provably
	                                        alive: lost if the session expired, a canary if
	                                        the session answers again */
	_Atomic int64_t  timeout_ns;         /* negotiated session timeout */
	_Atomic int64_t  ack_send_ns;        /* latest send time of an acknowledged request */
	_Atomic bool     ping_outstanding;
	_Atomic int64_t  ping_send_ns;
	_Atomic int32_t  ping_worker;        /* the ID the ping in flight asks about */
	_Atomic bool     ping_in_lease;      /* the ping was sent while our lease was alive */
	_Atomic int64_t  ping_verdict;       /* SF_PING_* of the last answer, for ping_verdict_worker */
	_Atomic int32_t  ping_verdict_worker;
	_Atomic int64_t  ping_owner;         /* ephemeral owner the last ping saw */
	_Atomic bool     mark_outstanding;
	_Atomic int64_t  mark_sending;       /* value of the mark write in flight */
	_Atomic int64_t  mark_send_ns;
	_Atomic int64_t  mark_acked;         /* latest acknowledged registry mark */
	_Atomic int      mark_rc;            /* SF code of the latest asynchronous mark write */
	_Atomic uint64_t round_trips;
	_Atomic int64_t  last_rtt_us;
};

struct sf_lease {
	sf_gen          *gen;
	const sf_clock  *clock;            /* the generator's: NULL = the real clocks */
	sf_registry      reg;
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
	struct sf_lease_session *s;
	int64_t          session_id;
	int64_t          timeout_ms;       /* negotiated */
	int64_t          margin_ms;        /* effective */
	int32_t          worker;
	sf_keeper       *keeper;
	int64_t          local_mark;       /* start mark of the held ID */
	int64_t          registry_mark;    /* registry mark read at claim */
	bool             minted;           /* this lease wrote the mark of the held ID and minted */
	int64_t          published_fence_ms;
	int64_t          granted_fence_ms; /* the last fence granted to the generator, rounded up; logged on leaving minting */
	uint64_t         round_trips_closed; /* acknowledged requests of closed sessions */
	bool             operator_parked;
	int64_t          claim_not_before_ns;
	int64_t          quarantine_counted_ns; /* when quarantine/ was last counted */
	int32_t          pending_quarantine;
	sf_quarantine_record pending_record; /* what goes into quarantine/<pending_quarantine> */
	int64_t          window_floor_ms;  /* the generator's position when this tenure began minting: */
	uint32_t         window_floor_seq; /* every ID it issues is above it (the audit window) */
	const char      *clock_source;     /* at start: "tsc" or "clock_gettime" */
	bool             clock_source_changed;
	sf_lease_state   state;
	int              reason;
	char             detail[200];
};

/*
 * Validates config and makes a lease on reg without starting any thread:
 * sf_lease_start's first half, and what a unit test calls. The lease owns
 * reg from here on (reg->ops->destroy, when set, runs in sf_lease_stop, also
 * on failure here). Revokes the generator's grant (no_lease).
 * \return SF_OK with *out set, SF_E_INVALID (a NULL argument or a config
 * value out of range; see sf_lease_start), or SF_E_NOMEM.
 */
int  sf_lease_sm_new(sf_gen *gen, const sf_lease_config *config, const sf_registry *reg,
                     sf_lease **out);
/* The checks of sf_lease_start on a config: true when it may be used. */
bool sf_lease_config_valid(const sf_lease_config *config);
/* One tick of the state machine on the caller's thread: takes up the
 * operator's park request, runs one step (connect, claim, wait, keep-alive,
 * marks, fence, canary, quarantine write), publishes the status. The lease
 * thread calls it every 50 ms and on every event; a test calls it directly. */
void sf_lease_sm_tick(sf_lease *lease);
/* The end of the lease thread: stops minting, releases the worker node
 * (the mark brought down to what was issued), closes the session, state
 * "stopped". */
void sf_lease_sm_finish(sf_lease *lease);
/* Frees a lease whose thread has finished (or never started). */
void sf_lease_sm_free(sf_lease *lease);

/* Wakes the lease thread (any thread). */
void sf_lease_wake(sf_lease *lease);
/* A log line through the config's logger, if level passes its log_level. */
void sf_lease_log(sf_lease *lease, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The worker ID a child's name under workers/, marks/ or quarantine/
 * stands for: plain decimal digits without a leading zero, at most max_id;
 * -1 for any other name ("abc", "-1", "007"). */
int32_t sf_lease_worker_name(const char *name, int64_t max_id);
/* "<root>/<kind>" (worker < 0) or "<root>/<kind>/<worker>" into buf
 * (SF_LEASE_PATH_LEN bytes). */
void sf_lease_path(const sf_lease *lease, char *buf, const char *kind, int32_t worker);

#endif /* SF_LEASE_SM_H */
