/*
 * zkctl: out-of-band registry edits for the ZooKeeper tests (a fast stand-in
 * for zkCli.sh, which needs a JVM per call).
 *
 *   zkctl [-t SESSION_MS] [-w CONNECT_WAIT_MS] [-a USER:PASSWORD] HOSTS COMMAND ARGS...
 *
 * -a: authenticate with the digest scheme; nodes this call creates are then
 * writable by that identity only (world-readable), as the lease makes them.
 *
 * Commands (paths are absolute znode paths):
 *   get PATH                 print the data (no newline added)
 *   put PATH DATA            set the data; create it (persistent, with parents) if missing;
 *                            DATA @FILE: the file's bytes (data longer than an argument may be)
 *   create PATH DATA [-e] [--hold MS]
 *                            create (persistent, parents too; -e: ephemeral, parents
 *                            persistent); with --hold keep the session open MS ms
 *                            (0 = until SIGTERM/SIGINT) after printing HELD
 *   delete PATH              delete (any version)
 *   ls PATH                  children, one a line, sorted
 *   stat PATH                "owner=0x<ephemeralOwner> version=N length=N ctime_ms=N"
 *   ephemerals PARENT FROM TO HOLD_MS
 *                            create PARENT/FROM..PARENT/TO as ephemerals of one session
 *                            (batched multi-ops), print HELD, hold as for create --hold
 *   replace PATH DATA HOLD_MS [--multi]
 *                            delete PATH and create it again as an ephemeral of this
 *                            session (two requests, or one atomic multi), print HELD, hold
 *   acl PATH                 the node's ACL, one "scheme:id perms" entry a line (perms as
 *                            ZooKeeper's letters, cdrwa)
 *   mono                     print CLOCK_MONOTONIC ms (the clock the claimant's lines use)
 *
 * Mutations print "DONE <cmd> <mono_ms_sent> <mono_ms_acked>" on stdout.
 * Holding commands print "HELD <mono_ms> <session_id_hex> <count>" once the
 * nodes exist, then wait; on SIGTERM/SIGINT or at the end of the hold they
 * close the session (so the ephemerals go at once) and print "RELEASED <mono_ms>".
 * Exit: 0 ok, 1 ZooKeeper error (named on stderr), 2 usage, 3 no node.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#define BATCH 128

static volatile sig_atomic_t stop;

static char scheme_auth[] = "auth", id_auth[] = "", scheme_world[] = "world", id_anyone[] = "anyone";
static struct ACL owner_acl_entries[] = { { 0, { scheme_auth, id_auth } }, { 0, { scheme_world, id_anyone } } };
static struct ACL_vector owner_acl = { 2, owner_acl_entries };
/* what nodes are created with: open, or (with -a) the identity's */
static struct ACL_vector *create_acl = &ZOO_OPEN_ACL_UNSAFE;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(void)
{
	fprintf(stderr, "usage: zkctl [-t SESSION_MS] [-w CONNECT_WAIT_MS] [-a USER:PASSWORD] HOSTS "
	                "get|put|create|delete|ls|stat|acl|ephemerals|replace|mono ARGS...\n");
	return 2;
}

static int fail(const char *what, const char *path, int rc)
{
	fprintf(stderr, "zkctl: %s %s: %s\n", what, path, zerror(rc));
	return rc == ZNONODE ? 3 : 1;
}

static int64_t arg_int(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "zkctl: not a non-negative integer: '%s'\n", s);
		exit(2);
	}
	return v;
}

static void connected_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)type;
	(void)state;
	(void)path;
	(void)ctx;
}

/* Creates every missing ancestor of path as a persistent node. */
static int ensure_parents(zhandle_t *zh, const char *path)
{
	char partial[1024];
	size_t len = strlen(path);

	if (len >= sizeof partial)
		return ZBADARGUMENTS;
	for (size_t i = 1; i < len; i++) {
		if (path[i] != '/')
			continue;
		memcpy(partial, path, i);
		partial[i] = '\0';
		int rc = zoo_create(zh, partial, NULL, -1, create_acl, 0, NULL, 0);

		if (rc != ZOK && rc != ZNODEEXISTS)
			return rc;
	}
	return ZOK;
}

static void done(const char *cmd, int64_t sent)
{
	printf("DONE %s %" PRId64 " %" PRId64 "\n", cmd, sent, mono_ms());
	fflush(stdout);
}

/* Keeps the session (and its ephemerals) for hold_ms, 0 = until a signal. */
static bool held;

static void hold(zhandle_t *zh, int64_t hold_ms, int count)
{
	held = true;
	int64_t until = mono_ms() + hold_ms;

	printf("HELD %" PRId64 " 0x%" PRIx64 " %d\n", mono_ms(), (uint64_t)zoo_client_id(zh)->client_id,
	       count);
	fflush(stdout);
	while (!stop && (hold_ms == 0 || mono_ms() < until))
		usleep(20000);
}

int main(int argc, char **argv)
{
	int64_t session_ms = 4000, wait_ms = 10000;
	const char *auth = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "+t:w:a:")) != -1) {
		if (opt == 't')
			session_ms = arg_int(optarg);
		else if (opt == 'w')
			wait_ms = arg_int(optarg);
		else if (opt == 'a')
			auth = optarg;
		else
			return usage();
	}
	if (optind < argc && strcmp(argv[optind], "mono") == 0) {
		printf("%" PRId64 "\n", mono_ms());
		return 0;
	}
	if (argc - optind == 2 && strcmp(argv[optind + 1], "mono") == 0) {
		printf("%" PRId64 "\n", mono_ms());
		return 0;
	}
	if (argc - optind < 3)
		return usage();
	const char *hosts = argv[optind];
	const char *cmd = argv[optind + 1];
	char **a = argv + optind + 2;
	int na = argc - optind - 2;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	zoo_set_log_stream(stderr);

	zhandle_t *zh = zookeeper_init(hosts, connected_watcher, (int)session_ms, NULL, NULL, 0);

	if (!zh) {
		fprintf(stderr, "zkctl: zookeeper_init %s: %s\n", hosts, strerror(errno));
		return 1;
	}
	if (auth) {
		zoo_add_auth(zh, "digest", auth, (int)strlen(auth), NULL, NULL);
		create_acl = &owner_acl;
		owner_acl_entries[0].perms = ZOO_PERM_ALL;
		owner_acl_entries[1].perms = ZOO_PERM_READ;
	}
	int64_t give_up = mono_ms() + wait_ms;

	while (zoo_state(zh) != ZOO_CONNECTED_STATE && mono_ms() < give_up && !stop)
		usleep(10000);
	if (zoo_state(zh) != ZOO_CONNECTED_STATE) {
		fprintf(stderr, "zkctl: no session with %s within %" PRId64 " ms\n", hosts, wait_ms);
		zookeeper_close(zh);
		return 1;
	}

	int rc, status = 0;
	int64_t sent;

	if (strcmp(cmd, "get") == 0 && na == 1) {
		char buf[65536];
		int len = sizeof buf;

		rc = zoo_get(zh, a[0], 0, buf, &len, NULL);
		if (rc != ZOK)
			status = fail("get", a[0], rc);
		else if (len > 0)
			fwrite(buf, 1, (size_t)len, stdout);
	} else if (strcmp(cmd, "acl") == 0 && na == 1) {
		struct ACL_vector acl;
		struct Stat st;

		rc = zoo_get_acl(zh, a[0], &acl, &st);
		if (rc != ZOK) {
			status = fail("acl", a[0], rc);
		} else {
			for (int i = 0; i < acl.count; i++) {
				int p = acl.data[i].perms;

				printf("%s:%s %s%s%s%s%s\n", acl.data[i].id.scheme, acl.data[i].id.id,
				       p & ZOO_PERM_CREATE ? "c" : "", p & ZOO_PERM_DELETE ? "d" : "",
				       p & ZOO_PERM_READ ? "r" : "", p & ZOO_PERM_WRITE ? "w" : "",
				       p & ZOO_PERM_ADMIN ? "a" : "");
			}
			deallocate_ACL_vector(&acl);
		}
	} else if (strcmp(cmd, "put") == 0 && na == 2) {
		const char *data = a[1];
		char *file_data = NULL;
		int len = (int)strlen(a[1]);

		if (a[1][0] == '@') {
			FILE *f = fopen(a[1] + 1, "rb");
			long size = -1;

			if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
			    (file_data = malloc((size_t)size + 1)) && fread(file_data, 1, (size_t)size, f) == (size_t)size) {
				data = file_data;
				len = (int)size;
			} else {
				fprintf(stderr, "zkctl: cannot read %s\n", a[1] + 1);
				if (f)
					fclose(f);
				free(file_data);
				zookeeper_close(zh);
				return 2;
			}
			fclose(f);
		}
		sent = mono_ms();
		rc = zoo_set(zh, a[0], data, len, -1);
		if (rc == ZNONODE) {
			rc = ensure_parents(zh, a[0]);
			if (rc == ZOK)
				rc = zoo_create(zh, a[0], data, len, create_acl, 0, NULL, 0);
			if (rc == ZNODEEXISTS)
				rc = zoo_set(zh, a[0], data, len, -1);
		}
		free(file_data);
		if (rc != ZOK)
			status = fail("put", a[0], rc);
		else
			done("put", sent);
	} else if (strcmp(cmd, "create") == 0 && na >= 2) {
		int mode = 0;
		int64_t hold_ms = -1;

		for (int i = 2; i < na; i++) {
			if (strcmp(a[i], "-e") == 0)
				mode = ZOO_EPHEMERAL;
			else if (strcmp(a[i], "--hold") == 0 && i + 1 < na)
				hold_ms = arg_int(a[++i]);
			else
				return usage();
		}
		sent = mono_ms();
		rc = ensure_parents(zh, a[0]);
		if (rc == ZOK)
			rc = zoo_create(zh, a[0], a[1], (int)strlen(a[1]), create_acl, mode, NULL, 0);
		if (rc != ZOK) {
			status = fail("create", a[0], rc);
		} else {
			done("create", sent);
			if (hold_ms >= 0)
				hold(zh, hold_ms, 1);
		}
	} else if (strcmp(cmd, "delete") == 0 && na == 1) {
		sent = mono_ms();
		rc = zoo_delete(zh, a[0], -1);
		if (rc != ZOK)
			status = fail("delete", a[0], rc);
		else
			done("delete", sent);
	} else if (strcmp(cmd, "ls") == 0 && na == 1) {
		struct String_vector v = { 0 };

		rc = zoo_get_children(zh, a[0], 0, &v);
		if (rc != ZOK) {
			status = fail("ls", a[0], rc);
		} else {
			for (int i = 0; i < v.count; i++)
				printf("%s\n", v.data[i]);
			deallocate_String_vector(&v);
		}
	} else if (strcmp(cmd, "stat") == 0 && na == 1) {
		struct Stat st;

		rc = zoo_exists(zh, a[0], 0, &st);
		if (rc != ZOK)
			status = fail("stat", a[0], rc);
		else
			printf("owner=0x%" PRIx64 " version=%d length=%d ctime_ms=%" PRId64 "\n",
			       (uint64_t)st.ephemeralOwner, st.version, st.dataLength, (int64_t)st.ctime);
	} else if (strcmp(cmd, "ephemerals") == 0 && na == 4) {
		int64_t from = arg_int(a[1]), to = arg_int(a[2]), hold_ms = arg_int(a[3]);
		static char paths[BATCH][512];
		zoo_op_t ops[BATCH];
		zoo_op_result_t res[BATCH];
		int made = 0;

		char probe[600];
		snprintf(probe, sizeof probe, "%s/x", a[0]);
		rc = ensure_parents(zh, probe);
		if (rc != ZOK)
			return fail("ephemerals", a[0], rc);
		sent = mono_ms();
		for (int64_t i = from; i <= to && rc == ZOK;) {
			int n = 0;

			for (; n < BATCH && i <= to; n++, i++) {
				snprintf(paths[n], sizeof paths[n], "%s/%" PRId64, a[0], i);
				zoo_create_op_init(&ops[n], paths[n], "zkctl", 5, create_acl,
				                   ZOO_EPHEMERAL, NULL, 0);
			}
			rc = zoo_multi(zh, n, ops, res);
			if (rc == ZOK)
				made += n;
		}
		if (rc != ZOK) {
			status = fail("ephemerals", a[0], rc);
		} else {
			done("ephemerals", sent);
			hold(zh, hold_ms, made);
		}
	} else if (strcmp(cmd, "replace") == 0 && (na == 3 || (na == 4 && strcmp(a[3], "--multi") == 0))) {
		int64_t hold_ms = arg_int(a[2]);
		int len = (int)strlen(a[1]);

		sent = mono_ms();
		if (na == 4) {
			zoo_op_t ops[2];
			zoo_op_result_t res[2];

			zoo_delete_op_init(&ops[0], a[0], -1);
			zoo_create_op_init(&ops[1], a[0], a[1], len, create_acl, ZOO_EPHEMERAL,
			                   NULL, 0);
			rc = zoo_multi(zh, 2, ops, res);
		} else {
			rc = zoo_delete(zh, a[0], -1);
			if (rc == ZOK)
				rc = zoo_create(zh, a[0], a[1], len, create_acl, ZOO_EPHEMERAL, NULL, 0);
		}
		if (rc != ZOK) {
			status = fail("replace", a[0], rc);
		} else {
			done("replace", sent);
			hold(zh, hold_ms, 1);
		}
	} else {
		zookeeper_close(zh);
		return usage();
	}
	fflush(stdout);
	zookeeper_close(zh);
	if (held) {
		printf("RELEASED %" PRId64 "\n", mono_ms());
		fflush(stdout);
	}
	return status;
}
