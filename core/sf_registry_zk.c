/*
 * The registry on ZooKeeper (libzookeeper-mt): every ZooKeeper call of the
 * lease is here, and ZooKeeper's codes end here (sf_code_from_zk). See
 * sf_registry.h for the contract.
 *
 * A `struct zk_conn` lives from zookeeper_init to zookeeper_close and is the
 * context of every callback, so a late callback of a closed session can only
 * touch its own (still allocated) record and the caller's event context,
 * which the caller frees only after close.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADED 1 /* the synchronous API of libzookeeper-mt */
#include <zookeeper/zookeeper.h>

#include "sf_internal.h"
#include "sf_ratelog.h"
#include "sf_registry.h"

#define PATH_LEN 512

enum { LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

typedef void (*zk_log_fn_t)(void *ctx, int level, const char *line);

struct zk_registry {
	char        *hosts;
	char        *auth;        /* "user:password" for the digest scheme, or NULL */
	int          timeout_ms;
	zk_log_fn_t  log;
	void        *log_ctx;
};

struct zk_conn {
	zhandle_t                *zh;
	const struct ACL_vector  *acl;     /* of every node this connection creates */
	const sf_registry_events *ev;      /* NULL for an admin session */
	void                     *ev_ctx;
	int                       last_zrc; /* latest failure of a synchronous call */
};

/* The one mapping from ZooKeeper's codes to the core's. ZNODEEXISTS means
 * something different to each caller and is settled before this. */
static int sf_code_from_zk(int zrc)
{
	switch (zrc) {
	case ZOK:
		return SF_OK;
	case ZNONODE:
		return SF_E_NOT_FOUND;
	case ZBADARGUMENTS:
		return SF_E_INVALID;
	case ZCONNECTIONLOSS:     /* the answer was lost: the request may have happened */
	case ZOPERATIONTIMEOUT:
	case ZSESSIONEXPIRED:
	case ZSESSIONMOVED:
	case ZINVALIDSTATE:
	case ZCLOSING:
	case ZNOAUTH:             /* the node's ACL does not let this identity do that */
	case ZAUTHFAILED:
		return SF_E_REGISTRY_ACCESS;
	case ZBADVERSION:
	case ZNODEEXISTS:
	case ZNOTEMPTY:
	case ZNOCHILDRENFOREPHEMERALS:
	case ZMARSHALLINGERROR:
	case ZSYSTEMERROR:
	default:
		return SF_E_REGISTRY;
	}
}

/* ---- ZooKeeper's own log ------------------------------------------------- */

/* libzookeeper's log callback has no context pointer: one process-wide sink,
 * the most recently started lease's logger. */
static pthread_mutex_t zk_log_lock = PTHREAD_MUTEX_INITIALIZER;
static zk_log_fn_t zk_log_fn;
static void *zk_log_ctx;

/* While a server refuses connections the client logs two lines every
 * ~33 ms: pass ZK_LOG_BURST lines a second and count the rest. */
#define ZK_LOG_BURST 5
static sf_ratelog zk_log_rate = SF_RATELOG_INIT(1000 * SF_NS_PER_MS, ZK_LOG_BURST);

static void zk_log_forward(const char *message)
{
	int level = LOG_INFO;
	char line[512];
	size_t n;
	uint64_t dropped;
	int64_t now = sf_clock_mono_ns(NULL);

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
	bool pass = sf_ratelog_admit(&zk_log_rate, now, &dropped);

	if (dropped && zk_log_fn) {
		char note[96];

		snprintf(note, sizeof note, "zookeeper: %" PRIu64 " more client log lines suppressed", dropped);
		zk_log_fn(zk_log_ctx, LOG_WARNING, note);
	}
	if (pass && zk_log_fn)
		zk_log_fn(zk_log_ctx, level, line);
	pthread_mutex_unlock(&zk_log_lock);
}

/* ---- callbacks (ZooKeeper's threads) ------------------------------------- */

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_conn *c = ctx;
	enum sf_registry_state st = SF_REGISTRY_CONNECTING;

	(void)zh;
	(void)path;
	if (type != ZOO_SESSION_EVENT || !c->ev)
		return;
	if (state == ZOO_CONNECTED_STATE)
		st = SF_REGISTRY_CONNECTED;
	else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
		st = SF_REGISTRY_EXPIRED;
	c->ev->session(c->ev_ctx, st);
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_conn *c = ctx;

	(void)zh;
	(void)state;
	if (!c->ev)
		return;
	if (type == ZOO_DELETED_EVENT)
		c->ev->node(c->ev_ctx, SF_REGISTRY_DELETED, path);
	else if (type == ZOO_CHANGED_EVENT)
		c->ev->node(c->ev_ctx, SF_REGISTRY_CHANGED, path);
	else if (type == ZOO_CREATED_EVENT)
		c->ev->node(c->ev_ctx, SF_REGISTRY_CREATED, path);
}

static bool owned_by_us(struct zk_conn *c, const struct Stat *stat)
{
	return stat && stat->ephemeralOwner == zoo_client_id(c->zh)->client_id;
}

static void ping_completion(int zrc, const struct Stat *stat, const void *data)
{
	struct zk_conn *c = (struct zk_conn *)data;
	const int64_t owner = zrc == ZOK && stat ? stat->ephemeralOwner : 0;

	c->ev->ping_done(c->ev_ctx, sf_code_from_zk(zrc), owner, zrc == ZOK && owned_by_us(c, stat));
}

static void set_completion(int zrc, const struct Stat *stat, const void *data)
{
	struct zk_conn *c = (struct zk_conn *)data;

	(void)stat;
	c->ev->set_done(c->ev_ctx, sf_code_from_zk(zrc));
}

/* ---- access control ------------------------------------------------------ */

/* With a credential, what the lease creates is writable by that identity
 * only ("auth": the digest this session added) and readable by anyone, so
 * operators and monitoring can still look. */
static char scheme_auth[] = "auth", id_auth[] = "", scheme_world[] = "world", id_anyone[] = "anyone";
/* the permissions are set in sf_registry_zk_new: ZOO_PERM_* are not constants */
static struct ACL owner_acl_entries[] = {
	{ 0, { scheme_auth, id_auth } },
	{ 0, { scheme_world, id_anyone } },
};
static struct ACL_vector owner_acl = { 2, owner_acl_entries };

/* The new handle's identity: the digest credential, sent before any
 * request (libzookeeper-mt sends it again on every reconnect). */
static void conn_auth(struct zk_registry *r, struct zk_conn *c)
{
	c->acl = r->auth ? &owner_acl : &ZOO_OPEN_ACL_UNSAFE;
	if (r->auth)
		zoo_add_auth(c->zh, "digest", r->auth, (int)strlen(r->auth), NULL, NULL);
}

/* ---- connections --------------------------------------------------------- */

static int zk_open(void *ctx, const sf_registry_events *ev, void *ev_ctx, void **conn)
{
	struct zk_registry *r = ctx;
	struct zk_conn *c = calloc(1, sizeof *c);

	if (!c)
		return SF_E_NOMEM;
	c->ev = ev;
	c->ev_ctx = ev_ctx;
	c->zh = zookeeper_init2(r->hosts, session_watcher, r->timeout_ms, NULL, c, 0, zk_log_forward);
	if (!c->zh) {
		int err = errno;

		free(c);
		errno = err; /* the caller says why */
		return SF_E_REGISTRY;
	}
	conn_auth(r, c);
	*conn = c;
	return SF_OK;
}

static void zk_close(void *conn)
{
	struct zk_conn *c = conn;

	/* completions of pending requests run inside close; they touch only c
	 * and the caller's event context */
	zookeeper_close(c->zh);
	free(c);
}

/* A short-lived session of the caller's own: the lease thread's handle is
 * not shared, so an administrative call never races with its state machine. */
static int zk_open_admin(void *ctx, void **conn)
{
	struct zk_registry *r = ctx;
	struct zk_conn *c = calloc(1, sizeof *c);

	if (!c)
		return SF_E_NOMEM;
	c->zh = zookeeper_init2(r->hosts, NULL, r->timeout_ms, NULL, NULL, 0, zk_log_forward);
	if (c->zh)
		conn_auth(r, c);
	for (int i = 0; c->zh && i < 100 && zoo_state(c->zh) != ZOO_CONNECTED_STATE; i++)
		usleep(50000);
	if (!c->zh || zoo_state(c->zh) != ZOO_CONNECTED_STATE) {
		if (c->zh)
			zookeeper_close(c->zh);
		free(c);
		return SF_E_REGISTRY;
	}
	*conn = c;
	return SF_OK;
}

static void zk_destroy(void *ctx)
{
	struct zk_registry *r = ctx;

	pthread_mutex_lock(&zk_log_lock);
	if (zk_log_ctx == r->log_ctx && zk_log_fn == r->log)
		zk_log_fn = NULL;
	pthread_mutex_unlock(&zk_log_lock);
	free(r->hosts);
	if (r->auth) {
		memset(r->auth, 0, strlen(r->auth));
		free(r->auth);
	}
	free(r);
}

static int zk_connected(void *conn)
{
	struct zk_conn *c = conn;

	return zoo_state(c->zh) == ZOO_CONNECTED_STATE ? SF_OK : SF_E_REGISTRY;
}

static int zk_session(void *conn, int64_t *session_id, int64_t *timeout_ms)
{
	struct zk_conn *c = conn;
	const clientid_t *id = zoo_client_id(c->zh);

	*session_id = id ? id->client_id : 0;
	*timeout_ms = zoo_recv_timeout(c->zh);
	return *session_id != 0 ? SF_OK : SF_E_REGISTRY;
}

static const char *zk_last_error(void *conn)
{
	struct zk_conn *c = conn;

	return zerror(c->last_zrc);
}

/* Records a synchronous call's ZooKeeper code and maps it. */
static int sync_rc(struct zk_conn *c, int zrc)
{
	if (zrc != ZOK)
		c->last_zrc = zrc;
	return sf_code_from_zk(zrc);
}

/* ---- synchronous requests (the caller's thread) -------------------------- */

static int zk_ensure(void *conn, const char *path)
{
	struct zk_conn *c = conn;
	char partial[PATH_LEN];
	size_t len = strlen(path);

	if (len >= sizeof partial)
		return sync_rc(c, ZBADARGUMENTS);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(partial, path, i);
		partial[i] = '\0';
		int zrc = zoo_create(c->zh, partial, NULL, -1, c->acl, ZOO_PERSISTENT, NULL, 0);

		if (zrc != ZOK && zrc != ZNODEEXISTS)
			return sync_rc(c, zrc);
	}
	return SF_OK;
}

static int zk_children(void *conn, const char *path, sf_registry_list *out)
{
	struct zk_conn *c = conn;
	struct String_vector v = { 0 };
	int zrc = zoo_get_children(c->zh, path, 0, &v);
	int rc = SF_OK;

	*out = (sf_registry_list){ 0 };
	if (zrc != ZOK)
		return sync_rc(c, zrc);
	if (v.count > 0 && !(out->names = calloc((size_t)v.count, sizeof *out->names)))
		rc = SF_E_NOMEM;
	for (int i = 0; rc == SF_OK && i < v.count; i++) {
		if (!(out->names[i] = strdup(v.data[i])))
			rc = SF_E_NOMEM;
		else
			out->count++;
	}
	deallocate_String_vector(&v);
	if (rc != SF_OK)
		sf_registry_list_free(out);
	return rc;
}

static int zk_get(void *conn, const char *path, char *buf, int *len)
{
	struct zk_conn *c = conn;
	struct Stat stat;
	int zrc = zoo_get(c->zh, path, 0, buf, len, &stat);

	if (zrc == ZOK)
		*len = stat.dataLength > 0 ? stat.dataLength : 0; /* the whole length, maybe more than was copied */
	return sync_rc(c, zrc);
}

static int zk_exists(void *conn, const char *path, bool watch, bool *ours, int64_t *owner)
{
	struct zk_conn *c = conn;
	struct Stat stat;
	int zrc = watch ? zoo_wexists(c->zh, path, node_watcher, c, &stat)
	                : zoo_exists(c->zh, path, 0, &stat);

	*ours = zrc == ZOK && owned_by_us(c, &stat);
	if (owner)
		*owner = zrc == ZOK ? stat.ephemeralOwner : 0;
	return sync_rc(c, zrc);
}

static bool node_is_ours(struct zk_conn *c, const char *path)
{
	bool ours;

	return zk_exists(c, path, false, &ours, NULL) == SF_OK && ours;
}

static int zk_create_ephemeral(void *conn, const char *path, const char *data, int len)
{
	struct zk_conn *c = conn;
	int zrc = zoo_create(c->zh, path, data, len, c->acl, ZOO_EPHEMERAL, NULL, 0);

	if (zrc == ZNODEEXISTS)
		return node_is_ours(c, path) ? SF_OK : SF_E_NO_FREE_WORKER;
	if (zrc == ZCONNECTIONLOSS || zrc == ZOPERATIONTIMEOUT) {
		/* the create may have happened: it is ours only if we own it */
		if (zoo_state(c->zh) == ZOO_CONNECTED_STATE && node_is_ours(c, path))
			return SF_OK;
		return sync_rc(c, zrc);
	}
	return sync_rc(c, zrc);
}

static int zk_create(void *conn, const char *path, const char *data, int len)
{
	struct zk_conn *c = conn;
	int zrc = zoo_create(c->zh, path, data, len, c->acl, ZOO_PERSISTENT, NULL, 0);

	return zrc == ZNODEEXISTS ? SF_OK : sync_rc(c, zrc);
}

static int zk_put(void *conn, const char *path, const char *data, int len)
{
	struct zk_conn *c = conn;
	int zrc = zoo_set(c->zh, path, data, len, -1);

	if (zrc == ZNONODE)
		zrc = zoo_create(c->zh, path, data, len, c->acl, ZOO_PERSISTENT, NULL, 0);
	return sync_rc(c, zrc);
}

static int zk_remove(void *conn, const char *path)
{
	struct zk_conn *c = conn;

	return sync_rc(c, zoo_delete(c->zh, path, -1));
}

static int zk_open_to_anyone(void *conn, const char *path, bool *open, char *perms, size_t size)
{
	struct zk_conn *c = conn;
	struct ACL_vector acl = { 0, NULL };
	struct Stat stat;
	int zrc = zoo_get_acl(c->zh, path, &acl, &stat);
	int32_t world = 0;

	*open = false;
	if (size > 0)
		perms[0] = '\0';
	if (zrc != ZOK)
		return sync_rc(c, zrc);
	for (int i = 0; i < acl.count; i++)
		if (acl.data[i].id.scheme && acl.data[i].id.id && strcmp(acl.data[i].id.scheme, "world") == 0 &&
		    strcmp(acl.data[i].id.id, "anyone") == 0)
			world |= acl.data[i].perms;
	deallocate_ACL_vector(&acl);
	*open = (world & (ZOO_PERM_WRITE | ZOO_PERM_CREATE | ZOO_PERM_DELETE | ZOO_PERM_ADMIN)) != 0;
	snprintf(perms, size, "%s%s%s%s%s", world & ZOO_PERM_CREATE ? "c" : "", world & ZOO_PERM_DELETE ? "d" : "",
	         world & ZOO_PERM_READ ? "r" : "", world & ZOO_PERM_WRITE ? "w" : "", world & ZOO_PERM_ADMIN ? "a" : "");
	return SF_OK;
}

/* ---- asynchronous requests ----------------------------------------------- */

static int zk_set_async(void *conn, const char *path, const char *data, int len)
{
	struct zk_conn *c = conn;

	return zoo_aset(c->zh, path, data, len, -1, set_completion, c) == ZOK ? SF_OK : SF_E_REGISTRY;
}

static int zk_ping(void *conn, const char *path)
{
	struct zk_conn *c = conn;

	return zoo_aexists(c->zh, path, 0, ping_completion, c) == ZOK ? SF_OK : SF_E_REGISTRY;
}

static const sf_registry_ops zk_ops = {
	.open = zk_open,
	.open_admin = zk_open_admin,
	.close = zk_close,
	.destroy = zk_destroy,
	.connected = zk_connected,
	.session = zk_session,
	.last_error = zk_last_error,
	.ensure = zk_ensure,
	.children = zk_children,
	.get = zk_get,
	.exists = zk_exists,
	.create_ephemeral = zk_create_ephemeral,
	.create = zk_create,
	.put = zk_put,
	.remove = zk_remove,
	.open_to_anyone = zk_open_to_anyone,
	.set_async = zk_set_async,
	.ping = zk_ping,
};

int sf_registry_zk_new(const char *hosts, int64_t session_timeout_ms, const char *auth,
                       void (*log)(void *ctx, int level, const char *line), void *log_ctx,
                       int log_level, sf_registry *out)
{
	struct zk_registry *r = calloc(1, sizeof *r);

	if (!r)
		return SF_E_NOMEM;
	r->hosts = strdup(hosts);
	r->auth = auth ? strdup(auth) : NULL;
	if (!r->hosts || (auth && !r->auth)) {
		free(r->hosts);
		free(r->auth);
		free(r);
		return SF_E_NOMEM;
	}
	owner_acl_entries[0].perms = ZOO_PERM_ALL;
	owner_acl_entries[1].perms = ZOO_PERM_READ;
	r->timeout_ms = (int)session_timeout_ms;
	r->log = log;
	r->log_ctx = log_ctx;
	pthread_mutex_lock(&zk_log_lock);
	zk_log_fn = log;
	zk_log_ctx = log_ctx;
	pthread_mutex_unlock(&zk_log_lock);
	zoo_set_debug_level(log_level >= LOG_DEBUG ? ZOO_LOG_LEVEL_DEBUG :
	                    log_level >= LOG_INFO ? ZOO_LOG_LEVEL_WARN : ZOO_LOG_LEVEL_ERROR);
	out->ops = &zk_ops;
	out->ctx = r;
	return SF_OK;
}
