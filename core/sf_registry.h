/*
 * The registry seam: what the lease's state machine (sf_lease_sm.c) asks of
 * the registry, and nothing more. The ZooKeeper backend (sf_registry_zk.c)
 * is the only file that speaks ZooKeeper; tests put a scripted registry
 * behind the same interface. Not installed.
 *
 * Codes: every operation returns SF_OK or a negative SF_E_* code, never a
 * backend's own code; the backend maps its codes in one place. Any
 * operation may return SF_E_REGISTRY_ACCESS: the node's ACL refused this
 * identity. Paths are
 * full node paths ("/snowflake/default/workers/3"), built by the caller.
 *
 * Connections: a connection is one registry session. `open` starts it and
 * returns at once; the session comes up (or expires) later and says so
 * through the events. The events run on the backend's threads: they may
 * only record facts and wake the lease thread (sf_lease_sm.c keeps that
 * rule). After `close` returns no event of that connection runs any more,
 * so the events' context may be freed then.
 *
 * Threads: one connection is used by one thread at a time for the
 * synchronous calls; `set_async` and `ping` may be issued while their
 * completions run on the backend's threads.
 */
#ifndef SF_REGISTRY_H
#define SF_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "snowflake.h"

/* Session states an event reports. */
enum sf_registry_state {
	SF_REGISTRY_CONNECTING = 0, /* no usable session right now (it may come back) */
	SF_REGISTRY_CONNECTED,      /* requests are answered */
	SF_REGISTRY_EXPIRED,        /* the session is over for good (expired, or refused) */
};

/* Why a watched node's event fired. */
enum sf_registry_change {
	SF_REGISTRY_DELETED = 1,
	SF_REGISTRY_CHANGED,
	SF_REGISTRY_CREATED,        /* a watch set on a missing node */
};

/* The names of a node's children; free with sf_registry_list_free. */
typedef struct sf_registry_list {
	int    count;
	char **names;
} sf_registry_list;

static inline void sf_registry_list_free(sf_registry_list *list)
{
	for (int i = 0; i < list->count; i++)
		free(list->names[i]);
	free(list->names);
	list->names = NULL;
	list->count = 0;
}

/* What a connection reports, on the backend's threads; ctx is the one given
 * to `open`. */
typedef struct sf_registry_events {
	/* The session's state changed. */
	void (*session)(void *ctx, enum sf_registry_state state);
	/* A node watched with `exists(..., watch = true, ...)` was deleted or
	 * its data changed; path is that node's. */
	void (*node)(void *ctx, enum sf_registry_change change, const char *path);
	/* The answer to `ping`: rc is SF_OK (the node exists; owner is its
	 * ephemeral owner's session, ours says whether that is this
	 * connection's session), SF_E_NOT_FOUND (no such node), or
	 * SF_E_REGISTRY (no answer: the request was lost or failed). */
	void (*ping_done)(void *ctx, int rc, int64_t owner, bool ours);
	/* The answer to `set_async`: SF_OK (stored), SF_E_NOT_FOUND (no such
	 * node: nothing was stored) or SF_E_REGISTRY (not stored, or not known
	 * to be). */
	void (*set_done)(void *ctx, int rc);
} sf_registry_events;

typedef struct sf_registry_ops {
	/* Starts a session for the lease thread and returns at once; events
	 * go to ev with ev_ctx.
	 * \return SF_OK with *conn set, SF_E_NOMEM, or SF_E_REGISTRY (the
	 * client could not be started, e.g. unparsable hosts; errno says why). */
	int  (*open)(void *ctx, const sf_registry_events *ev, void *ev_ctx, void **conn);
	/* A session of its own for a short administrative call (quarantine
	 * list/clear), without events; blocks until it is usable, at most about
	 * five seconds.
	 * \return SF_OK with *conn set, SF_E_NOMEM, or SF_E_REGISTRY (no
	 * session came up). */
	int  (*open_admin)(void *ctx, void **conn);
	/* Ends the session (its ephemeral nodes go with it) and frees conn;
	 * pending completions run (with SF_E_REGISTRY) before it returns. */
	void (*close)(void *conn);
	/* Frees the registry (ctx) once its last connection is closed; may be
	 * NULL when the owner of ctx frees it. */
	void (*destroy)(void *ctx);

	/* \return SF_OK when the session answers requests right now, else
	 * SF_E_REGISTRY. */
	int  (*connected)(void *conn);
	/* The session's ID and its negotiated timeout.
	 * \return SF_OK, or SF_E_REGISTRY when no session was ever established
	 * (*session_id is then 0; the caller ignores both). */
	int  (*session)(void *conn, int64_t *session_id, int64_t *timeout_ms);
	/* The backend's own words for the latest synchronous failure on conn
	 * ("connection loss"), for log lines only; never NULL. */
	const char *(*last_error)(void *conn);

	/* Creates the persistent node path and its missing parents, empty;
	 * nodes that exist already are fine.
	 * \return SF_OK, SF_E_INVALID (path too long or malformed), or
	 * SF_E_REGISTRY. */
	int  (*ensure)(void *conn, const char *path);
	/* The children of path.
	 * \return SF_OK with *out filled (free it with sf_registry_list_free),
	 * SF_E_NOT_FOUND (no such node), SF_E_INVALID (a malformed path),
	 * SF_E_NOMEM, or SF_E_REGISTRY. */
	int  (*children)(void *conn, const char *path, sf_registry_list *out);
	/* A node's data into buf; *len is the room on entry, the node's whole
	 * length on return (0 for a node without data). Longer data is cut to
	 * the room, and *len then says it was longer than the room: a caller
	 * reading a record checks that before it parses.
	 * \return SF_OK, SF_E_NOT_FOUND (no such node), SF_E_INVALID (a
	 * malformed path), or SF_E_REGISTRY. */
	int  (*get)(void *conn, const char *path, char *buf, int *len);
	/* Does path exist, and does this session own it (as an ephemeral)?
	 * owner (may be NULL) gets its ephemeral owner's session, 0 for a
	 * persistent node. With watch, a later deletion or change of the node
	 * (or its creation, when it is missing) is reported through ev->node
	 * (once).
	 * \return SF_OK with *ours set, SF_E_NOT_FOUND (no such node; the
	 * watch, if asked for, is set all the same), SF_E_INVALID (a malformed
	 * path), or SF_E_REGISTRY. */
	int  (*exists)(void *conn, const char *path, bool watch, bool *ours, int64_t *owner);
	/* Creates path as an ephemeral node of this session with data: the
	 * claim of a worker ID. A lost answer (the create may have happened)
	 * is settled by asking whether the node is ours.
	 * \return SF_OK (the node is this session's, created now or before),
	 * SF_E_NO_FREE_WORKER (the node exists and is not known to be ours:
	 * this ID is not free), SF_E_NOT_FOUND (the parent is missing),
	 * SF_E_INVALID (a malformed path), or SF_E_REGISTRY (not created, or
	 * not known to be ours). */
	int  (*create_ephemeral)(void *conn, const char *path, const char *data, int len);
	/* Creates path as a persistent node with data; an existing node counts
	 * as success and keeps its data (a quarantine record is written once).
	 * \return SF_OK, SF_E_NOT_FOUND (the parent is missing), SF_E_INVALID
	 * (a malformed path), or SF_E_REGISTRY. */
	int  (*create)(void *conn, const char *path, const char *data, int len);
	/* Stores data at path: sets it, or creates it (persistent) when it
	 * does not exist.
	 * \return SF_OK, SF_E_NOT_FOUND (the parent is missing), SF_E_INVALID
	 * (a malformed path), or SF_E_REGISTRY (including a create that lost a
	 * race with another writer). */
	int  (*put)(void *conn, const char *path, const char *data, int len);
	/* Deletes path, whatever its version.
	 * \return SF_OK, SF_E_NOT_FOUND (no such node), SF_E_INVALID (a
	 * malformed path), or SF_E_REGISTRY (including a node with children). */
	int  (*remove)(void *conn, const char *path);

	/* May anyone (ZooKeeper's world:anyone) write, create or delete under
	 * path? perms (size bytes) gets what anyone may do, ZooKeeper's letters
	 * ("cdrwa"; "" for nothing).
	 * \return SF_OK with *open set, SF_E_NOT_FOUND, SF_E_REGISTRY_ACCESS, or
	 * SF_E_REGISTRY. */
	int  (*open_to_anyone)(void *conn, const char *path, bool *open, char *perms, size_t size);

	/* Asynchronous: sets the data of an existing node; the answer comes
	 * through ev->set_done (unless this returns an error).
	 * \return SF_OK (sent) or SF_E_REGISTRY (not sent: no set_done). */
	int  (*set_async)(void *conn, const char *path, const char *data, int len);
	/* Asynchronous: asks whether path exists and who owns it; the answer
	 * comes through ev->ping_done (unless this returns an error).
	 * \return SF_OK (sent) or SF_E_REGISTRY (not sent: no ping_done). */
	int  (*ping)(void *conn, const char *path);
} sf_registry_ops;

typedef struct sf_registry {
	const sf_registry_ops *ops;
	void *ctx;
} sf_registry;

/*
 * The ZooKeeper backend. hosts is copied; auth (NULL: none) is the digest
 * credential "user:password", copied: every node created is then writable
 * by that identity only (world-readable); log (may be NULL) receives the
 * ZooKeeper client's own log lines, rate-limited, at levels up to
 * log_level (see sf_log_fn in sf_lease.h: syslog levels).
 * \return SF_OK with *out filled (its ops->destroy frees it), or
 * SF_E_NOMEM.
 */
int sf_registry_zk_new(const char *hosts, int64_t session_timeout_ms, const char *auth,
                       void (*log)(void *ctx, int level, const char *line), void *log_ctx,
                       int log_level, sf_registry *out);

#endif /* SF_REGISTRY_H */
