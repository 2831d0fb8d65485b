/*
 * A scripted registry for the lease's unit tests: an in-memory tree of
 * nodes behind the sf_registry interface (core/sf_registry.h), whose
 * availability, sessions and answers the test decides.
 *
 * Nothing happens on its own: every event (a session coming up or expiring,
 * a watch firing, the answer to a ping or an asynchronous set) is queued and
 * delivered when the test calls sr_pump(), the way ZooKeeper's completion
 * thread would deliver it between two ticks of the lease thread. Requests
 * are served at delivery time, so an answer held back (sr->hold) is what a
 * paused or unreachable server looks like to a client that still believes
 * it is connected.
 */
#ifndef SCRIPTED_REGISTRY_H
#define SCRIPTED_REGISTRY_H

#include <stdio.h>
#include <string.h>

#include "sf_registry.h"

#define SR_NODES   64
#define SR_CONNS   16
#define SR_EVENTS  64
#define SR_WATCHES 8
#define SR_PATH    256
#define SR_DATA    4096

typedef struct sr_node {
	bool    used;
	char    path[SR_PATH];
	char    data[SR_DATA];
	int     len;
	int64_t owner;            /* ephemeral owner's session, 0 = persistent */
} sr_node;

struct scripted_registry;

typedef struct sr_conn {
	struct scripted_registry *sr;
	const sf_registry_events *ev;   /* NULL: an admin session */
	void    *ev_ctx;
	int64_t  session_id;
	bool     open;
	bool     expired;               /* the server ended the session */
	char     watches[SR_WATCHES][SR_PATH];
	int      nwatches;
} sr_conn;

enum sr_event_kind { SR_EV_SESSION = 1, SR_EV_NODE, SR_EV_PING, SR_EV_SET };

typedef struct sr_event {
	enum sr_event_kind kind;
	sr_conn *c;
	int      state;                 /* SR_EV_SESSION: enum sf_registry_state; SR_EV_NODE: change */
	char     path[SR_PATH];
	char     data[64];
	int      len;
} sr_event;

typedef struct scripted_registry {
	bool     up;                    /* the server answers requests */
	bool     hold;                  /* answers to pings and sets are held back */
	int64_t  timeout_ms;            /* what "negotiation" gives every session */
	int64_t  next_session;
	int      fail_creates;          /* persistent creates still to refuse (SF_E_REGISTRY) */
	unsigned creates_tried;         /* persistent creates asked for */
	bool     world_writable;        /* open_to_anyone says every node is ("cdrwa") */
	bool     deny_creates;          /* creates under the root are refused (SF_E_REGISTRY_ACCESS) */
	unsigned pings;                 /* pings sent */
	unsigned sessions_opened;
	sr_node  nodes[SR_NODES];
	sr_conn  conns[SR_CONNS];
	sr_event events[SR_EVENTS];
	int      nevents;
	const char *why;                /* last_error */
} scripted_registry;

/* ---- the tree -------------------------------------------------------- */

/* strlcpy that tolerates src inside the registry (snprintf's restrict does not) */
static inline void sr_copy(char *dst, const char *src, size_t size)
{
	size_t len = src ? strlen(src) : 0;

	if (len >= size)
		len = size - 1;
	memmove(dst, src ? src : "", len);
	dst[len] = '\0';
}

static inline sr_node *sr_find(scripted_registry *sr, const char *path)
{
	for (int i = 0; i < SR_NODES; i++)
		if (sr->nodes[i].used && strcmp(sr->nodes[i].path, path) == 0)
			return &sr->nodes[i];
	return NULL;
}

static inline void sr_queue(scripted_registry *sr, enum sr_event_kind kind, sr_conn *c, int state,
                            const char *path, const char *data, int len)
{
	sr_event *e;

	if (sr->nevents == SR_EVENTS) {
		fprintf(stderr, "scripted registry: event queue full\n");
		abort();
	}
	e = &sr->events[sr->nevents++];
	*e = (sr_event){ kind, c, state, "", "", 0 };
	sr_copy(e->path, path, sizeof e->path);
	if (data && len > 0 && len < (int)sizeof e->data) {
		memcpy(e->data, data, (size_t)len);
		e->len = len;
	}
}

/* Fires (queues) the watches set on path, once each. */
static inline void sr_fire(scripted_registry *sr, const char *path, enum sf_registry_change change)
{
	for (int i = 0; i < SR_CONNS; i++) {
		sr_conn *c = &sr->conns[i];

		for (int w = 0; c->open && c->ev && w < c->nwatches; w++) {
			if (strcmp(c->watches[w], path) != 0)
				continue;
			sr_queue(sr, SR_EV_NODE, c, change, path, NULL, 0);
			memmove(c->watches[w], c->watches[c->nwatches - 1], SR_PATH);
			c->nwatches--;
			w--;
		}
	}
}

/* Sets a node (creating it) as the test sees fit: owner 0 for a persistent
 * node, another session's ID for a node someone else holds. Fires a CHANGED
 * watch on an existing node when fire is set. */
static inline sr_node *sr_node_set(scripted_registry *sr, const char *path, const char *data,
                                   int64_t owner, bool fire)
{
	sr_node *n = sr_find(sr, path);

	if (!n) {
		for (int i = 0; i < SR_NODES && !n; i++)
			if (!sr->nodes[i].used)
				n = &sr->nodes[i];
		if (!n) {
			fprintf(stderr, "scripted registry: tree full\n");
			abort();
		}
		*n = (sr_node){ .used = true };
		sr_copy(n->path, path, sizeof n->path);
		if (fire)
			sr_fire(sr, path, SF_REGISTRY_CREATED);
	} else if (fire) {
		sr_fire(sr, path, SF_REGISTRY_CHANGED);
	}
	n->len = data ? (int)strlen(data) : 0;
	sr_copy(n->data, data, sizeof n->data);
	n->owner = owner;
	return n;
}

/* Deletes a node; fires its watches when fire is set. */
static inline bool sr_node_delete(scripted_registry *sr, const char *path, bool fire)
{
	sr_node *n = sr_find(sr, path);

	if (!n)
		return false;
	n->used = false;
	if (fire)
		sr_fire(sr, path, SF_REGISTRY_DELETED);
	return true;
}

/* The mark stored at path, or -1. */
static inline int64_t sr_mark(scripted_registry *sr, const char *path)
{
	sr_node *n = sr_find(sr, path);

	return n ? strtoll(n->data, NULL, 10) : -1;
}

/* ---- the server's moods ------------------------------------------------ */

/* The lease's connection: the newest open one with events. */
static inline sr_conn *sr_lease_conn(scripted_registry *sr)
{
	for (int i = SR_CONNS - 1; i >= 0; i--)
		if (sr->conns[i].open && sr->conns[i].ev)
			return &sr->conns[i];
	return NULL;
}

/* The registry becomes unreachable and the client notices: requests fail,
 * held answers fail at delivery, every session hears "connecting". */
static inline void sr_outage(scripted_registry *sr)
{
	sr->up = false;
	for (int i = 0; i < SR_CONNS; i++)
		if (sr->conns[i].open && sr->conns[i].ev)
			sr_queue(sr, SR_EV_SESSION, &sr->conns[i], SF_REGISTRY_CONNECTING, NULL, NULL, 0);
}

/* The registry is back: sessions it still holds hear "connected", the ones
 * it expired meanwhile hear "expired". */
static inline void sr_restore(scripted_registry *sr)
{
	sr->up = true;
	sr->hold = false;
	for (int i = 0; i < SR_CONNS; i++)
		if (sr->conns[i].open && sr->conns[i].ev)
			sr_queue(sr, SR_EV_SESSION, &sr->conns[i],
			         sr->conns[i].expired ? SF_REGISTRY_EXPIRED : SF_REGISTRY_CONNECTED, NULL, NULL, 0);
}

/* The server expires the session of c: its ephemeral nodes go. With
 * tell_deleted, c hears its watches fire first (seen after a pause: the
 * DELETED event comes before EXPIRED); it hears "expired" now if the
 * registry is up, else when it is restored. */
static inline void sr_expire(scripted_registry *sr, sr_conn *c, bool tell_deleted)
{
	c->expired = true;
	for (int i = 0; i < SR_NODES; i++) {
		sr_node *n = &sr->nodes[i];

		if (!n->used || n->owner != c->session_id)
			continue;
		n->used = false;
		for (int w = 0; tell_deleted && w < c->nwatches; w++)
			if (strcmp(c->watches[w], n->path) == 0)
				sr_queue(sr, SR_EV_NODE, c, SF_REGISTRY_DELETED, n->path, NULL, 0);
	}
	if (sr->up)
		sr_queue(sr, SR_EV_SESSION, c, SF_REGISTRY_EXPIRED, NULL, NULL, 0);
}

/* Delivers the queued events in order, as the client's completion thread
 * would; requests are answered now. Held answers stay queued. Returns how
 * many were delivered. */
static inline int sr_pump(scripted_registry *sr)
{
	sr_event batch[SR_EVENTS];
	int n = 0, kept = 0, delivered = 0;

	memcpy(batch, sr->events, sizeof batch[0] * (size_t)sr->nevents);
	n = sr->nevents;
	sr->nevents = 0;
	for (int i = 0; i < n; i++) {
		sr_event *e = &batch[i];
		sr_conn *c = e->c;

		if (!c->open || !c->ev)
			continue;
		if (sr->hold && sr->up && (e->kind == SR_EV_PING || e->kind == SR_EV_SET)) {
			sr->events[sr->nevents++] = *e;
			kept++;
			continue;
		}
		delivered++;
		switch (e->kind) {
		case SR_EV_SESSION:
			c->ev->session(c->ev_ctx, (enum sf_registry_state)e->state);
			break;
		case SR_EV_NODE:
			c->ev->node(c->ev_ctx, (enum sf_registry_change)e->state, e->path);
			break;
		case SR_EV_PING: {
			sr_node *node = sr_find(sr, e->path);

			if (!sr->up || c->expired)
				c->ev->ping_done(c->ev_ctx, SF_E_REGISTRY, 0, false);
			else if (!node)
				c->ev->ping_done(c->ev_ctx, SF_E_NOT_FOUND, 0, false);
			else
				c->ev->ping_done(c->ev_ctx, SF_OK, node->owner, node->owner == c->session_id);
			break;
		}
		case SR_EV_SET: {
			sr_node *node = sr_find(sr, e->path);

			if (!sr->up || c->expired) {
				c->ev->set_done(c->ev_ctx, SF_E_REGISTRY);
			} else if (!node) {
				c->ev->set_done(c->ev_ctx, SF_E_NOT_FOUND);
			} else {
				memcpy(node->data, e->data, (size_t)e->len);
				node->data[e->len] = '\0';
				node->len = e->len;
				sr_fire(sr, e->path, SF_REGISTRY_CHANGED);
				c->ev->set_done(c->ev_ctx, SF_OK);
			}
			break;
		}
		}
	}
	(void)kept;
	return delivered;
}

/* ---- the sf_registry operations ---------------------------------------- */

static inline bool sr_serving(sr_conn *c)
{
	if (!c->sr->up || c->expired) {
		c->sr->why = c->expired ? "session expired" : "connection loss";
		return false;
	}
	return true;
}

static inline sr_conn *sr_conn_new(scripted_registry *sr)
{
	for (int i = 0; i < SR_CONNS; i++) {
		if (!sr->conns[i].open && sr->conns[i].session_id == 0) {
			sr_conn *c = &sr->conns[i];

			*c = (sr_conn){ .sr = sr, .open = true, .session_id = sr->next_session++ };
			sr->sessions_opened++;
			return c;
		}
	}
	fprintf(stderr, "scripted registry: too many connections\n");
	abort();
}

static int sr_op_open(void *ctx, const sf_registry_events *ev, void *ev_ctx, void **conn)
{
	scripted_registry *sr = ctx;
	sr_conn *c = sr_conn_new(sr);

	c->ev = ev;
	c->ev_ctx = ev_ctx;
	if (sr->up)
		sr_queue(sr, SR_EV_SESSION, c, SF_REGISTRY_CONNECTED, NULL, NULL, 0);
	*conn = c;
	return SF_OK;
}

static int sr_op_open_admin(void *ctx, void **conn)
{
	scripted_registry *sr = ctx;

	if (!sr->up)
		return SF_E_REGISTRY;
	*conn = sr_conn_new(sr);
	return SF_OK;
}

static void sr_op_close(void *conn)
{
	sr_conn *c = conn;
	scripted_registry *sr = c->sr;
	int kept = 0;

	/* pending completions run inside close, as ZooKeeper's do */
	for (int i = 0; i < sr->nevents; i++) {
		sr_event *e = &sr->events[i];

		if (e->c != c) {
			sr->events[kept++] = *e;
		} else if (e->kind == SR_EV_PING) {
			c->ev->ping_done(c->ev_ctx, SF_E_REGISTRY, 0, false);
		} else if (e->kind == SR_EV_SET) {
			c->ev->set_done(c->ev_ctx, SF_E_REGISTRY);
		}
	}
	sr->nevents = kept;
	for (int i = 0; i < SR_NODES; i++) /* a closed session's ephemerals go */
		if (sr->nodes[i].used && sr->nodes[i].owner == c->session_id && !c->expired)
			sr_node_delete(sr, sr->nodes[i].path, true);
	c->open = false;
}

static int sr_op_connected(void *conn)
{
	sr_conn *c = conn;

	return c->sr->up && !c->expired ? SF_OK : SF_E_REGISTRY;
}

static int sr_op_session(void *conn, int64_t *session_id, int64_t *timeout_ms)
{
	sr_conn *c = conn;

	*session_id = c->session_id;
	*timeout_ms = c->sr->timeout_ms;
	return SF_OK;
}

static const char *sr_op_last_error(void *conn)
{
	sr_conn *c = conn;

	return c->sr->why ? c->sr->why : "no error";
}

static int sr_op_ensure(void *conn, const char *path)
{
	sr_conn *c = conn;
	char partial[SR_PATH];
	size_t len = strlen(path);

	if (!sr_serving(c))
		return SF_E_REGISTRY;
	if (len >= sizeof partial)
		return SF_E_INVALID;
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(partial, path, i);
		partial[i] = '\0';
		if (!sr_find(c->sr, partial))
			sr_node_set(c->sr, partial, NULL, 0, false);
	}
	return SF_OK;
}

static int sr_op_children(void *conn, const char *path, sf_registry_list *out)
{
	sr_conn *c = conn;
	size_t plen = strlen(path);

	*out = (sf_registry_list){ 0 };
	if (!sr_serving(c))
		return SF_E_REGISTRY;
	if (!sr_find(c->sr, path))
		return SF_E_NOT_FOUND;
	out->names = calloc(SR_NODES, sizeof *out->names);
	for (int i = 0; i < SR_NODES; i++) {
		const sr_node *n = &c->sr->nodes[i];

		if (n->used && strncmp(n->path, path, plen) == 0 && n->path[plen] == '/' &&
		    !strchr(n->path + plen + 1, '/'))
			out->names[out->count++] = strdup(n->path + plen + 1);
	}
	return SF_OK;
}

static int sr_op_get(void *conn, const char *path, char *buf, int *len)
{
	sr_conn *c = conn;
	sr_node *n;

	if (!sr_serving(c))
		return SF_E_REGISTRY;
	if (!(n = sr_find(c->sr, path)))
		return SF_E_NOT_FOUND;
	memcpy(buf, n->data, (size_t)(n->len < *len ? n->len : *len));
	*len = n->len; /* the whole length, as the interface says */
	return SF_OK;
}

static int sr_op_exists(void *conn, const char *path, bool watch, bool *ours, int64_t *owner)
{
	sr_conn *c = conn;
	sr_node *n;

	*ours = false;
	if (owner)
		*owner = 0;
	if (!sr_serving(c))
		return SF_E_REGISTRY;
	if (watch && c->nwatches < SR_WATCHES)
		sr_copy(c->watches[c->nwatches++], path, SR_PATH);
	if (!(n = sr_find(c->sr, path)))
		return SF_E_NOT_FOUND;
	*ours = n->owner == c->session_id;
	if (owner)
		*owner = n->owner;
	return SF_OK;
}

static int sr_op_create_ephemeral(void *conn, const char *path, const char *data, int len)
{
	sr_conn *c = conn;
	sr_node *n;
	char copy[SR_DATA];

	if (!sr_serving(c))
		return SF_E_REGISTRY;
	if (c->sr->deny_creates) {
		c->sr->why = "not authenticated";
		return SF_E_REGISTRY_ACCESS;
	}
	if ((n = sr_find(c->sr, path)))
		return n->owner == c->session_id ? SF_OK : SF_E_NO_FREE_WORKER;
	snprintf(copy, sizeof copy, "%.*s", len, data);
	sr_node_set(c->sr, path, copy, c->session_id, false);
	return SF_OK;
}

static int sr_op_create(void *conn, const char *path, const char *data, int len)
{
	sr_conn *c = conn;
	char copy[SR_DATA];

	c->sr->creates_tried++;
	if (!sr_serving(c))
		return SF_E_REGISTRY;
	if (c->sr->fail_creates > 0) {
		c->sr->fail_creates--;
		c->sr->why = "scripted failure";
		return SF_E_REGISTRY;
	}
	if (sr_find(c->sr, path))
		return SF_OK;
	snprintf(copy, sizeof copy, "%.*s", len, data);
	sr_node_set(c->sr, path, copy, 0, false);
	return SF_OK;
}

static int sr_op_put(void *conn, const char *path, const char *data, int len)
{
	sr_conn *c = conn;
	char copy[SR_DATA];
	bool existed;

	if (!sr_serving(c))
		return SF_E_REGISTRY;
	existed = sr_find(c->sr, path) != NULL;
	snprintf(copy, sizeof copy, "%.*s", len, data);
	sr_node_set(c->sr, path, copy, 0, existed);
	return SF_OK;
}

static int sr_op_open_to_anyone(void *conn, const char *path, bool *open, char *perms, size_t size)
{
	sr_conn *c = conn;

	*open = false;
	if (!sr_serving(c))
		return SF_E_REGISTRY;
	if (!sr_find(c->sr, path))
		return SF_E_NOT_FOUND;
	*open = c->sr->world_writable;
	snprintf(perms, size, "%s", *open ? "cdrwa" : "r");
	return SF_OK;
}

static int sr_op_remove(void *conn, const char *path)
{
	sr_conn *c = conn;

	if (!sr_serving(c))
		return SF_E_REGISTRY;
	return sr_node_delete(c->sr, path, true) ? SF_OK : SF_E_NOT_FOUND;
}

static int sr_op_set_async(void *conn, const char *path, const char *data, int len)
{
	sr_conn *c = conn;

	sr_queue(c->sr, SR_EV_SET, c, 0, path, data, len);
	return SF_OK;
}

static int sr_op_ping(void *conn, const char *path)
{
	sr_conn *c = conn;

	c->sr->pings++;
	sr_queue(c->sr, SR_EV_PING, c, 0, path, NULL, 0);
	return SF_OK;
}

static const sf_registry_ops sr_ops = {
	.open = sr_op_open,
	.open_admin = sr_op_open_admin,
	.close = sr_op_close,
	.destroy = NULL,
	.connected = sr_op_connected,
	.session = sr_op_session,
	.last_error = sr_op_last_error,
	.ensure = sr_op_ensure,
	.children = sr_op_children,
	.get = sr_op_get,
	.exists = sr_op_exists,
	.open_to_anyone = sr_op_open_to_anyone,
	.create_ephemeral = sr_op_create_ephemeral,
	.create = sr_op_create,
	.put = sr_op_put,
	.remove = sr_op_remove,
	.set_async = sr_op_set_async,
	.ping = sr_op_ping,
};

/* An empty registry, up, that negotiates timeout_ms for every session. */
static inline void sr_init(scripted_registry *sr, int64_t timeout_ms)
{
	memset(sr, 0, sizeof *sr);
	sr->up = true;
	sr->timeout_ms = timeout_ms;
	sr->next_session = 0x1000;
}

static inline sf_registry sr_registry(scripted_registry *sr)
{
	sf_registry r = { &sr_ops, sr };
	return r;
}

#endif /* SCRIPTED_REGISTRY_H */
