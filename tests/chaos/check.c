/*
 * tests/chaos/check.c: the history checker of the chaos soak (make chaos).
 *
 * Reads what the soak recorded (the callers' logs, the proxies' lease lines, the
 * faults injected, the VRRP transitions) and judges the history as a whole: no
 * ID twice, per-worker real-time order, every ID minted inside a lease window
 * of the node that answered, and the worker header true to the ID's bits. Then
 * the figures an operator reads: availability, latency, the longest outage and
 * the faults active during it.
 *
 *   check [--layout SEQ_BITS:WORKER_BITS:EPOCH_MS] [--slot-ms 100] [--timeline OUTDIR]
 *         [--events FILE] [--notify FILE]... --proxy NAME=LOGFILE... --client FILE...
 *
 * --proxy and --client take one or more arguments each (up to the next option)
 * and may be repeated. Default layout 12:10:1704067200000:
 * ID = (timestamp_ms - EPOCH) << (W + S) | worker << S | seq.
 *
 * Inputs (every time a CLOCK_MONOTONIC reading; all hosts are network namespaces
 * of one kernel, so the clock is one):
 *   client logs (tests/drills/client.c, whose header comment is the reference):
 *     # drill-client ... mono_us=M wall_us=W ...    wall = W + (mono - M) in that file
 *     I <start_us> <end_us> <slot> <id> <node> <vip> <try> <kind> <req> [<worker>]
 *     E <start_us> <end_us> <slot> <kind> <detail> <vip> <try> <req>
 *     F <start_us> <end_us> <slot> <tries> <req>
 *     other lines starting with '#' are ignored.
 *   proxy logs: lines holding "lease state=" (others are ignored):
 *     ... lease state=S worker=W reason=R pid=P mono_ms=M[ fence_mono_ms=F]: text
 *   --events: <name> <mono_us> <wall_us> [key=value...]; "start" with fault= kind=
 *     target= [detail=] opens a fault, "heal" with fault= ends it, any other name
 *     is a point event of a drill; '#' lines are comments. pids=P,P... with
 *     target=NODE (the nemesis's SIGKILL) ends those processes of NODE there: each
 *     gets a "stopped" lease line at that time (a killed process logs nothing).
 *   --notify: <RFC 3339> <unix_ms> host=H INSTANCE <instance> <STATE> prio=N
 *     (GROUP lines are ignored; unix ms become mono with the first client log's
 *     header).
 *
 * Lease windows, per (node, pid): a state=minting line opens a window of (node,
 * worker) at mono_ms (read before the grant, so nothing of the window was minted
 * earlier) unless that pid has one open; the pid's next line in any other state
 * closes it at min(mono_ms, fence_mono_ms). A window never closed (SIGKILL logs
 * nothing) stays open to the end.
 *
 * A response is the I lines of one attempt (consecutive, same times); a logical
 * request is (file, slot, req), its latency from its first attempt's start to
 * its successful attempt's end. Time is cut into slots of --slot-ms from the
 * first attempt's start (t = 0) to the last attempt's end; a response's IDs
 * count in the slot of its end.
 *
 * Figures, one "CHAOS <figure> <value>" line each, in this order, on stdout (and
 * in OUTDIR/figures.txt):
 *   ids_checked        I lines
 *   requests           logical requests that got an ID or an F line
 *   failed_requests    F lines
 *   attempts_failed    E lines
 *   duplicates         extra copies of IDs received more than once
 *   order_violations   responses B of a worker (the ID's bits) with an ID at or
 *                      below the highest of a response that ended before B began
 *   fence_violations   IDs of node N, worker W whose response began after
 *                      fence_mono_ms F + 1 ms of a closed window of (N, W), in no
 *                      window of (N, W)
 *   lease_violations   the other IDs of a node with a --proxy log whose response
 *                      meets no window of (N, W)
 *   header_mismatches  IDs whose worker header is not their worker bits
 *   unjudged_ids       IDs of nodes without a --proxy log (or no node header)
 *   faults, fault_kinds, fault_kind_list   chaos fault starts, their distinct
 *                      kinds, kind=count
 *   availability_pct   share of the slots with an ID received, one decimal
 *   latency_p50_ms, latency_p99_ms, latency_max_ms   over the successful logical
 *                      requests (nearest rank), 2 decimals
 *   longest_outage_ms, longest_outage_at_s, longest_outage_during   the longest
 *                      run of slots without an ID: its length, its start (s since
 *                      t = 0; 0.0 without an outage) and the faults and drill
 *                      points within it (kind@target, none)
 *   errors_by_code     E lines by the service's error code (http "503:fenced":
 *                      fenced) or else their kind, code=count
 *   ids_by_node        IDs by node header, node=count (a --proxy node may be 0)
 *   check_seconds      the checker's own wall time
 * Lists are sorted by name; an empty list is "none". Violations: up to 10
 * "# violation <kind> ..." lines per kind on stderr, naming the client log's
 * file:line (and for a fence the proxy log's line).
 *
 * --timeline OUTDIR: slots.tsv (per slot: t_s ids_total ids_<node>... err_<code>...
 * failed_requests p99_ms), faults.tsv (id kind target start_s heal_s detail; a
 * drill point is kind=<name> target=- lasting no time), vips.tsv (instance holder
 * from_s to_s, MASTER to the next other state), lease.tsv (node pid state worker
 * from_s to_s, to that pid's next line) and figures.txt. Times in s since t = 0;
 * what never ends lasts to the last attempt's end.
 *
 * Exit status: 0 when duplicates, order, fence, lease and header violations are
 * all 0; 1 when one is not; 2 on a usage error, an unreadable file or a
 * malformed line (stderr names file:line).
 *
 * Build: cc -std=gnu11 -O2 -Wall -Wextra -Werror -o build/chaos/check tests/chaos/check.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VIOLATIONS_SHOWN 10 /* per kind: enough to find the first ones in the logs */
#define NO_TIME INT64_MAX

/* ---- failure ---------------------------------------------------------------- */

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void input_error(const char *file, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("check: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nusage: check [--layout SEQ_BITS:WORKER_BITS:EPOCH_MS] [--slot-ms 100] [--timeline OUTDIR]\n"
	      "             [--events FILE] [--notify FILE]... --proxy NAME=LOGFILE... --client FILE...\n",
	      stderr);
	exit(2);
}

/* line 0: the file as a whole */
static void input_error(const char *file, size_t line, const char *fmt, ...)
{
	va_list ap;

	if (line)
		fprintf(stderr, "check: %s:%zu: ", file, line);
	else
		fprintf(stderr, "check: %s: ", file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "check: out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return q;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p) {
		fprintf(stderr, "check: out of memory (%zu x %zu bytes)\n", n, size);
		exit(2);
	}
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *d = xrealloc(NULL, n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Grows *p (of *cap elements of size) to hold at least need; doubling keeps
 * appending 10M elements linear. */
static void grow(void *p, size_t *cap, size_t need, size_t size)
{
	void **pp = p;

	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 1024;
	while (c < need)
		c *= 2;
	*pp = xrealloc(*pp, c * size);
	*cap = c;
}

#define PUSH(arr, n, cap) (grow(&(arr), &(cap), (n) + 1, sizeof *(arr)), &(arr)[(n)++])

/* qsort, but an empty array may be NULL (qsort's may not) */
static void sort_array(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

static int64_t mono_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- files and tokens ------------------------------------------------------- */

struct text {
	const char *path;
	const char *data;
	size_t len;
	bool mapped;
};

/* Maps a regular file (the logs of a long soak are large: no copy); reads
 * anything else (a pipe, /dev/stdin) into memory. */
static void text_load(struct text *t, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	t->path = path;
	t->data = NULL;
	t->len = 0;
	t->mapped = false;
	if (fd == -1)
		input_error(path, 0, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) == -1)
		input_error(path, 0, "cannot stat: %s", strerror(errno));
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);

		if (m == MAP_FAILED)
			input_error(path, 0, "cannot map: %s", strerror(errno));
		madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
		t->data = m;
		t->len = (size_t)st.st_size;
		t->mapped = true;
	} else if (!S_ISREG(st.st_mode)) {
		char *buf = NULL;
		size_t cap = 0;

		for (;;) {
			grow(&buf, &cap, t->len + 65536, 1);
			ssize_t n = read(fd, buf + t->len, cap - t->len);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				input_error(path, 0, "cannot read: %s", strerror(errno));
			if (n == 0)
				break;
			t->len += (size_t)n;
		}
		t->data = buf;
	}
	close(fd);
}

static void text_free(struct text *t)
{
	if (t->mapped)
		munmap((void *)t->data, t->len);
	else
		free((void *)t->data);
	t->data = NULL;
}

struct tok {
	const char *s;
	size_t n;
};

#define MAX_TOKS 16

/* Splits [p, end) at spaces and tabs into at most MAX_TOKS tokens; returns the
 * count, or MAX_TOKS + 1 when there are more. */
static int tokenize(const char *p, const char *end, struct tok *t)
{
	int n = 0;

	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			return n;
		if (n == MAX_TOKS)
			return MAX_TOKS + 1;
		t[n].s = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		t[n].n = (size_t)(p - t[n].s);
		n++;
	}
}

static bool tok_is(struct tok t, const char *s)
{
	size_t n = strlen(s);

	return t.n == n && memcmp(t.s, s, n) == 0;
}

/* decimal digits only, no sign, no overflow */
static bool tok_u64(struct tok t, uint64_t *v)
{
	uint64_t x = 0;

	if (t.n == 0 || t.n > 20)
		return false;
	for (size_t i = 0; i < t.n; i++) {
		unsigned d = (unsigned char)t.s[i] - '0';
		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

static bool tok_i64(struct tok t, int64_t *v)
{
	uint64_t x;
	bool neg = t.n > 1 && t.s[0] == '-';
	struct tok d = neg ? (struct tok){ t.s + 1, t.n - 1 } : t;

	if (!tok_u64(d, &x) || x > (uint64_t)INT64_MAX)
		return false;
	*v = neg ? -(int64_t)x : (int64_t)x;
	return true;
}

/* a time: fits int64 so differences never overflow */
static bool tok_time(struct tok t, int64_t *v)
{
	uint64_t x;

	if (!tok_u64(t, &x) || x > (uint64_t)INT64_MAX / 4)
		return false;
	*v = (int64_t)x;
	return true;
}

/* The value of key=value in t (key given with its '='), or false. */
static bool tok_kv(struct tok t, const char *key_eq, struct tok *val)
{
	size_t n = strlen(key_eq);

	if (t.n < n || memcmp(t.s, key_eq, n) != 0)
		return false;
	*val = (struct tok){ t.s + n, t.n - n };
	return true;
}

/* Iterates lines: *line and *lineno for each; the newline (and a '\r') is not
 * part of the line. */
struct lines {
	const char *p, *end;
	size_t lineno;
};

static bool lines_next(struct lines *it, const char **s, const char **e)
{
	if (it->p >= it->end)
		return false;
	const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	const char *le = nl ? nl : it->end;

	*s = it->p;
	*e = le > *s && le[-1] == '\r' ? le - 1 : le;
	it->p = nl ? nl + 1 : it->end;
	it->lineno++;
	return true;
}

/* ---- interned names (nodes, error codes, fault kinds) ------------------------ */

struct names {
	char **v;
	size_t n, cap;
	size_t last; /* consecutive lines mostly name the same node: checked first */
};

static uint32_t names_find(struct names *nm, const char *s, size_t n)
{
	if (nm->last < nm->n && strlen(nm->v[nm->last]) == n && memcmp(nm->v[nm->last], s, n) == 0)
		return (uint32_t)nm->last;
	for (size_t i = 0; i < nm->n; i++)
		if (strlen(nm->v[i]) == n && memcmp(nm->v[i], s, n) == 0)
			return (uint32_t)(nm->last = i);
	return UINT32_MAX;
}

static uint32_t names_add(struct names *nm, const char *s, size_t n)
{
	uint32_t i = names_find(nm, s, n);

	if (i != UINT32_MAX)
		return i;
	*PUSH(nm->v, nm->n, nm->cap) = xstrndup(s, n);
	nm->last = nm->n - 1;
	return (uint32_t)nm->last;
}

static const struct names *sort_names_of;

static int cmp_name_index(const void *a, const void *b)
{
	return strcmp(sort_names_of->v[*(const uint32_t *)a], sort_names_of->v[*(const uint32_t *)b]);
}

/* The indices of nm in the names' byte order: the order of every printed list. */
static uint32_t *names_sorted(const struct names *nm)
{
	uint32_t *ix = xcalloc(nm->n, sizeof *ix);

	for (size_t i = 0; i < nm->n; i++)
		ix[i] = (uint32_t)i;
	sort_names_of = nm;
	sort_array(ix, nm->n, sizeof *ix, cmp_name_index);
	return ix;
}

/* ---- radix sort --------------------------------------------------------------- */

/* Sorts key[0..n) ascending, moving val[] (when not NULL) along: LSD, 8 bits a
 * pass. The histograms of all 8 bytes come from one read of the keys (a
 * permutation does not change them), and a pass where every key has the same
 * byte is skipped: IDs of one run share their top bytes. 10M keys: ~0.3 s. */
static void radix_sort(uint64_t *key, uint32_t *val, size_t n)
{
	static size_t count[8][256];
	uint64_t *k0 = key, *k1;
	uint32_t *v0 = val, *v1 = NULL;

	if (n < 2)
		return;
	memset(count, 0, sizeof count);
	for (size_t i = 0; i < n; i++) {
		uint64_t k = key[i];
		for (int b = 0; b < 8; b++)
			count[b][(k >> (8 * b)) & 0xff]++;
	}
	k1 = xrealloc(NULL, n * sizeof *k1);
	if (val)
		v1 = xrealloc(NULL, n * sizeof *v1);
	for (int b = 0; b < 8; b++) {
		size_t *c = count[b], sum = 0;
		unsigned sh = 8u * (unsigned)b;

		if (c[(k0[0] >> sh) & 0xff] == n)
			continue;
		for (int d = 0; d < 256; d++) {
			size_t t = c[d];
			c[d] = sum;
			sum += t;
		}
		for (size_t i = 0; i < n; i++) {
			size_t at = c[(k0[i] >> sh) & 0xff]++;
			k1[at] = k0[i];
			if (val)
				v1[at] = v0[i];
		}
		uint64_t *tk = k0;
		k0 = k1;
		k1 = tk;
		uint32_t *tv = v0;
		v0 = v1;
		v1 = tv;
	}
	if (k0 != key) {
		memcpy(key, k0, n * sizeof *key);
		if (val)
			memcpy(val, v0, n * sizeof *val);
		k1 = k0;
		v1 = v0;
	}
	free(k1);
	free(v1);
}

/* ---- the history -------------------------------------------------------------- */

/* A response: the consecutive I lines of one attempt (one worker's part of them,
 * should an answer ever mix workers): the unit of the order and lease checks. */
struct seg {
	int64_t start_us, end_us;
	uint64_t lo, hi;  /* lowest and highest ID */
	uint32_t first;   /* index of its first ID in hist.ids */
	uint32_t line;    /* line of its first ID in its client log */
	uint16_t file;    /* index in opt.clients */
	uint16_t node;    /* X-Snowflake-Node, in hist.nodes */
	uint32_t worker;  /* from the IDs' bits */
};

struct lease_line {
	uint32_t node;
	int64_t pid;
	int state;        /* index in lease_states */
	int64_t worker;
	int64_t mono_ms;
	int64_t fence_ms; /* -1: none on the line */
	int64_t to_ms;    /* the same pid's next line, NO_TIME: none (lasts to the end) */
	uint32_t file;    /* index in opt.proxies */
	uint32_t line;
};

struct window {
	uint32_t node;
	uint32_t worker;
	int64_t open_us, close_us; /* close_us NO_TIME: never closed */
	int64_t fence_ms;          /* the closing line's fence_mono_ms, -1 when none */
	int64_t pid;
	uint32_t file, line;       /* the opening line */
	int64_t prefix_close_us;   /* max close_us of its group up to it (groups sorted by open) */
};

struct fault {
	char *id, *target, *detail;
	uint32_t kind; /* in hist.fault_kinds for chaos faults, hist.point_names for points */
	bool point;    /* a drill's point event */
	int64_t start_us, heal_us; /* heal_us NO_TIME: never healed */
};

struct vip_hold {
	char *host, *instance;
	bool master;
	int64_t mono_us;
	size_t order;
};

struct err_rec {
	int64_t end_us;
	uint32_t code;
};

struct latency {
	uint64_t us;
	int64_t end_us; /* of the successful attempt */
};

struct slot_state {
	bool active, done;
	int64_t req;
	int64_t first_start_us;
};

struct proxy_arg {
	const char *node;
	const char *path;
};

static const char *const lease_states[] = { "connecting", "claiming", "waiting", "minting", "parked", "stopped" };
#define LEASE_MINTING 3
#define LEASE_STOPPED 5

static struct {
	unsigned seq_bits, worker_bits;
	int64_t epoch_ms;
	int64_t slot_ms;
	const char *timeline;
	const char *events;
	const char **notify;
	size_t n_notify, cap_notify;
	struct proxy_arg *proxies;
	size_t n_proxies, cap_proxies;
	const char **clients;
	size_t n_clients, cap_clients;
} opt = { 12, 10, 1704067200000LL, 100, NULL, NULL, NULL, 0, 0, NULL, 0, 0, NULL, 0, 0 };

/* The history of one run: a program judges one per process, so its state is
 * this one file-scope object (as a main's locals would be), filled by the
 * parsers, read by the checks. */
static struct {
	uint64_t *ids;
	size_t n_ids, cap_ids;
	struct seg *segs;
	size_t n_segs, cap_segs;
	struct names nodes, codes, fault_kinds, point_names;
	bool *node_judged;          /* per node: a --proxy log was given for it */
	uint64_t *ids_by_node;
	uint64_t requests, failed_requests, attempts_failed;
	struct latency *lat;        /* of the successful logical requests */
	size_t n_lat, cap_lat;
	struct err_rec *errs;
	size_t n_errs, cap_errs;
	int64_t *fails_end_us;
	size_t n_fails, cap_fails;
	int64_t t0_us, t1_us;       /* first attempt's start, last attempt's end */
	bool have_attempts;
	bool have_offset;           /* the first client log's header: wall = mono + offset */
	int64_t wall_minus_mono_us;
	struct lease_line *leases;
	size_t n_leases, cap_leases;
	struct window *wins;
	size_t n_wins, cap_wins;
	struct fault *faults;
	size_t n_faults, cap_faults;
	struct vip_hold *holds;
	size_t n_holds, cap_holds;
} hist;

static struct {
	uint64_t duplicates, order, fence, lease, header, unjudged;
	int shown[5];
} viol;

enum { V_DUP, V_ORDER, V_FENCE, V_LEASE, V_HEADER };

static bool violation_shown(int kind)
{
	return viol.shown[kind]++ < VIOLATIONS_SHOWN;
}

static uint32_t id_worker(uint64_t id)
{
	return (uint32_t)((id >> opt.seq_bits) & ((UINT64_C(1) << opt.worker_bits) - 1));
}

static int64_t id_wall_ms(uint64_t id)
{
	return (int64_t)(id >> (opt.seq_bits + opt.worker_bits)) + opt.epoch_ms;
}

/* ---- client logs ---------------------------------------------------------------- */

static void note_attempt(int64_t start_us, int64_t end_us)
{
	hist.have_attempts = true;
	if (start_us < hist.t0_us)
		hist.t0_us = start_us;
	if (end_us > hist.t1_us)
		hist.t1_us = end_us;
}

/* A line of (slot, req) begins or continues its logical request. The client runs
 * one logical request at a time per slot and writes in completion order, so every
 * line of request k comes before any line of k + 1 of the same slot. */
static struct slot_state *request_line(struct slot_state **slots, size_t *cap, uint64_t slot, int64_t req,
                                       int64_t start_us, const char *file, size_t lineno)
{
	if (slot > 65535)
		input_error(file, lineno, "slot %" PRIu64 " out of range (0..65535)", slot);
	if (slot >= *cap) {
		size_t old = *cap;
		grow(slots, cap, (size_t)slot + 1, sizeof **slots);
		memset(*slots + old, 0, (*cap - old) * sizeof **slots);
	}
	struct slot_state *st = &(*slots)[slot];
	if (!st->active || st->req != req) {
		st->active = true;
		st->done = false;
		st->req = req;
		st->first_start_us = start_us;
	} else if (start_us < st->first_start_us) {
		st->first_start_us = start_us;
	}
	return st;
}

/* The clocks of a "# drill-client ... mono_us=M wall_us=W ..." header: the
 * first client log's places the notify lines (wall clock) on the mono clock. */
static void parse_client_header(const char *s, const char *e)
{
	int64_t mono = -1, wall = -1;

	for (const char *p = s; p < e;) {
		struct tok t, v;

		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		t.s = p;
		while (p < e && *p != ' ' && *p != '\t')
			p++;
		t.n = (size_t)(p - t.s);
		if (tok_kv(t, "mono_us=", &v))
			tok_time(v, &mono);
		else if (tok_kv(t, "wall_us=", &v))
			tok_time(v, &wall);
	}
	if (mono >= 0 && wall >= 0) {
		hist.have_offset = true;
		hist.wall_minus_mono_us = wall - mono;
	}
}

static void parse_client(uint16_t file_ix)
{
	const char *path = opt.clients[file_ix];
	struct text txt;
	struct lines it;
	const char *s, *e;
	struct tok t[MAX_TOKS];
	struct slot_state *slots = NULL;
	size_t cap_slots = 0;
	/* the attempt the previous I line belonged to */
	size_t prev_line = 0;
	int64_t prev_start = -1, prev_end = -1, prev_req = -1;
	uint64_t prev_slot = 0, prev_try = 0;
	struct seg *cur = NULL;

	text_load(&txt, path);
	it = (struct lines){ txt.data, txt.data + txt.len, 0 };
	while (lines_next(&it, &s, &e)) {
		if (s < e && *s == '#') {
			if (e - s >= 14 && memcmp(s, "# drill-client", 14) == 0) {
				/* a second run appended to the same file starts its slots afresh */
				if (cap_slots)
					memset(slots, 0, cap_slots * sizeof *slots);
				cur = NULL;
				if (file_ix == 0 && !hist.have_offset)
					parse_client_header(s, e);
			}
			continue;
		}
		int n = tokenize(s, e, t);
		int64_t start, end, req;
		uint64_t slot, v;

		if (n < 1 || t[0].n != 1)
			input_error(path, it.lineno, "malformed line (expected I, E, F or #)");
		switch (t[0].s[0]) {
		case 'I': {
			uint64_t id, try;
			int64_t hdr = -1;

			if (n != 10 && n != 11)
				input_error(path, it.lineno, "malformed I line: %d fields, expected "
				            "I <start_us> <end_us> <slot> <id> <node> <vip> <try> <kind> <req> [<worker>]", n);
			if (!tok_time(t[1], &start) || !tok_time(t[2], &end) || !tok_u64(t[3], &slot) ||
			    !tok_u64(t[4], &id) || !tok_u64(t[6], &v) || !tok_u64(t[7], &try) || !tok_time(t[9], &req))
				input_error(path, it.lineno, "malformed I line: a time, slot, id, vip, try or req is not a number");
			if (!tok_is(t[8], "id") && !tok_is(t[8], "json") && !tok_is(t[8], "ids"))
				input_error(path, it.lineno, "malformed I line: kind %.*s (expected id, json or ids)",
				            (int)t[8].n, t[8].s);
			if (end < start)
				input_error(path, it.lineno, "malformed I line: end_us before start_us");
			if (n == 11 && !tok_is(t[10], "-") && (!tok_i64(t[10], &hdr) || hdr < 0))
				input_error(path, it.lineno, "malformed I line: worker header %.*s (expected a number or -)",
				            (int)t[10].n, t[10].s);
			uint32_t node = names_add(&hist.nodes, t[5].s, t[5].n);
			uint32_t w = id_worker(id);
			if (node > UINT16_MAX)
				input_error(path, it.lineno, "more than %d node names", UINT16_MAX + 1);
			if (hist.n_ids >= UINT32_MAX)
				input_error(path, it.lineno, "more than %" PRIu32 " IDs", UINT32_MAX);
			note_attempt(start, end);
			if (cur && prev_line + 1 == it.lineno && start == prev_start && end == prev_end && slot == prev_slot &&
			    req == prev_req && try == prev_try && cur->node == node && cur->worker == w) {
				if (id < cur->lo)
					cur->lo = id;
				if (id > cur->hi)
					cur->hi = id;
			} else {
				cur = PUSH(hist.segs, hist.n_segs, hist.cap_segs);
				*cur = (struct seg){ start, end, id, id, (uint32_t)hist.n_ids, (uint32_t)it.lineno, file_ix,
				                     (uint16_t)node, w };
			}
			*PUSH(hist.ids, hist.n_ids, hist.cap_ids) = id;
			prev_line = it.lineno;
			prev_start = start;
			prev_end = end;
			prev_slot = slot;
			prev_req = req;
			prev_try = try;
			if (hdr >= 0 && (uint64_t)hdr != w) {
				viol.header++;
				if (violation_shown(V_HEADER))
					fprintf(stderr, "# violation header id=%" PRIu64 " worker=%" PRIu32 " header=%" PRId64
					        " node=%s start_us=%" PRId64 " end_us=%" PRId64 " at=%s:%zu\n", id, w, hdr,
					        hist.nodes.v[node], start, end, path, it.lineno);
			}
			struct slot_state *st = request_line(&slots, &cap_slots, slot, req, start, path, it.lineno);
			if (!st->done) {
				st->done = true;
				hist.requests++;
				*PUSH(hist.lat, hist.n_lat, hist.cap_lat) = (struct latency){ (uint64_t)(end - st->first_start_us), end };
			}
			break;
		}
		case 'E': {
			struct tok code;

			if (n != 9)
				input_error(path, it.lineno, "malformed E line: %d fields, expected "
				            "E <start_us> <end_us> <slot> <kind> <detail> <vip> <try> <req>", n);
			if (!tok_time(t[1], &start) || !tok_time(t[2], &end) || !tok_u64(t[3], &slot) ||
			    !tok_u64(t[6], &v) || !tok_u64(t[7], &v) || !tok_time(t[8], &req))
				input_error(path, it.lineno, "malformed E line: a time, slot, vip, try or req is not a number");
			if (end < start)
				input_error(path, it.lineno, "malformed E line: end_us before start_us");
			code = t[4];
			if (tok_is(t[4], "http")) {
				/* "503:fenced": the service's error code names the failure */
				const char *colon = memchr(t[5].s, ':', t[5].n);
				if (!colon || colon + 1 == t[5].s + t[5].n)
					input_error(path, it.lineno, "malformed E line: http detail %.*s (expected <status>:<code>)",
					            (int)t[5].n, t[5].s);
				code = (struct tok){ colon + 1, (size_t)(t[5].s + t[5].n - colon - 1) };
			}
			note_attempt(start, end);
			hist.attempts_failed++;
			*PUSH(hist.errs, hist.n_errs, hist.cap_errs) = (struct err_rec){ end, names_add(&hist.codes, code.s, code.n) };
			request_line(&slots, &cap_slots, slot, req, start, path, it.lineno);
			break;
		}
		case 'F': {
			if (n != 6)
				input_error(path, it.lineno, "malformed F line: %d fields, expected "
				            "F <start_us> <end_us> <slot> <tries> <req>", n);
			if (!tok_time(t[1], &start) || !tok_time(t[2], &end) || !tok_u64(t[3], &slot) ||
			    !tok_u64(t[4], &v) || !tok_time(t[5], &req))
				input_error(path, it.lineno, "malformed F line: a time, slot, tries or req is not a number");
			if (end < start)
				input_error(path, it.lineno, "malformed F line: end_us before start_us");
			note_attempt(start, end);
			struct slot_state *st = request_line(&slots, &cap_slots, slot, req, start, path, it.lineno);
			if (!st->done) {
				st->done = true;
				hist.requests++;
				hist.failed_requests++;
				*PUSH(hist.fails_end_us, hist.n_fails, hist.cap_fails) = end;
			}
			break;
		}
		default:
			input_error(path, it.lineno, "malformed line (expected I, E, F or #)");
		}
	}
	free(slots);
	text_free(&txt);
}

/* ---- proxy logs ------------------------------------------------------------------ */

static void parse_proxy(uint32_t file_ix)
{
	const struct proxy_arg *pa = &opt.proxies[file_ix];
	uint32_t node = names_add(&hist.nodes, pa->node, strlen(pa->node));
	struct text txt;
	const char *p, *end, *counted;
	size_t lineno = 1;
	static const char needle[] = "lease state=";

	text_load(&txt, pa->path);
	p = counted = txt.data;
	end = txt.data + txt.len;
	/* A proxy log may hold every request's log line: search the file for the
	 * lease lines instead of splitting all of it into lines. */
	while (p && p < end && (p = memmem(p, (size_t)(end - p), needle, sizeof needle - 1))) {
		const char *ls = p, *le;

		while (ls > txt.data && ls[-1] != '\n')
			ls--;
		le = memchr(p, '\n', (size_t)(end - p));
		if (!le)
			le = end;
		for (const char *q = counted; q < ls; q++) {
			q = memchr(q, '\n', (size_t)(ls - q));
			if (!q)
				break;
			lineno++;
		}
		counted = ls;

		struct tok t[MAX_TOKS], v;
		const char *fields = p + 6; /* "state=..." */
		const char *colon = memchr(fields, ':', (size_t)(le - fields));
		struct lease_line ll = { node, -1, -1, -2, -1, -1, NO_TIME, file_ix, (uint32_t)lineno };
		int n;

		if (!colon)
			input_error(pa->path, lineno, "malformed lease line: no ':' after its fields");
		n = tokenize(fields, colon, t);
		if (n > MAX_TOKS)
			input_error(pa->path, lineno, "malformed lease line: too many fields");
		for (int i = 0; i < n; i++) {
			if (tok_kv(t[i], "state=", &v)) {
				for (int k = 0; k < (int)(sizeof lease_states / sizeof *lease_states); k++)
					if (tok_is(v, lease_states[k]))
						ll.state = k;
				if (ll.state < 0)
					input_error(pa->path, lineno, "malformed lease line: state %.*s", (int)v.n, v.s);
			} else if (tok_kv(t[i], "worker=", &v)) {
				if (!tok_i64(v, &ll.worker) || ll.worker < -1)
					input_error(pa->path, lineno, "malformed lease line: worker %.*s", (int)v.n, v.s);
			} else if (tok_kv(t[i], "pid=", &v)) {
				if (!tok_i64(v, &ll.pid) || ll.pid < 0)
					input_error(pa->path, lineno, "malformed lease line: pid %.*s", (int)v.n, v.s);
			} else if (tok_kv(t[i], "mono_ms=", &v)) {
				if (!tok_time(v, &ll.mono_ms))
					input_error(pa->path, lineno, "malformed lease line: mono_ms %.*s", (int)v.n, v.s);
			} else if (tok_kv(t[i], "fence_mono_ms=", &v)) {
				if (!tok_time(v, &ll.fence_ms))
					input_error(pa->path, lineno, "malformed lease line: fence_mono_ms %.*s", (int)v.n, v.s);
			}
		}
		if (ll.state < 0 || ll.worker < -1 || ll.pid < 0 || ll.mono_ms < 0)
			input_error(pa->path, lineno, "malformed lease line: expected state=S worker=W reason=R pid=P "
			            "mono_ms=M[ fence_mono_ms=F]: (an older log without pid and mono_ms cannot be judged)");
		if (ll.state == LEASE_MINTING && (ll.worker < 0 || ll.worker > (int64_t)((1u << opt.worker_bits) - 1)))
			input_error(pa->path, lineno, "malformed lease line: minting as worker %" PRId64
			            " (out of the layout's range)", ll.worker);
		*PUSH(hist.leases, hist.n_leases, hist.cap_leases) = ll;
		p = le;
	}
	text_free(&txt);
}

/* Lease lines to windows, per (node, pid) in log order; also sets each line's
 * to_ms for lease.tsv. */
static void build_windows(void)
{
	struct pid_state {
		uint32_t node;
		int64_t pid;
		size_t last_line;   /* index in hist.leases */
		size_t open_window; /* index in hist.wins, SIZE_MAX: none */
	} *ps = NULL;
	size_t n_ps = 0, cap_ps = 0;

	for (size_t i = 0; i < hist.n_leases; i++) {
		struct lease_line *ll = &hist.leases[i];
		struct pid_state *st = NULL;

		for (size_t k = 0; k < n_ps; k++)
			if (ps[k].node == ll->node && ps[k].pid == ll->pid)
				st = &ps[k];
		if (!st) {
			st = PUSH(ps, n_ps, cap_ps);
			*st = (struct pid_state){ ll->node, ll->pid, SIZE_MAX, SIZE_MAX };
		} else {
			hist.leases[st->last_line].to_ms = ll->mono_ms;
		}
		st->last_line = i;
		if (ll->state == LEASE_MINTING) {
			if (st->open_window == SIZE_MAX) {
				st->open_window = hist.n_wins;
				*PUSH(hist.wins, hist.n_wins, hist.cap_wins) =
					(struct window){ ll->node, (uint32_t)ll->worker, ll->mono_ms * 1000, NO_TIME, -1, ll->pid,
					                 ll->file, ll->line, 0 };
			}
		} else if (st->open_window != SIZE_MAX) {
			struct window *w = &hist.wins[st->open_window];
			int64_t close_ms = ll->mono_ms;

			if (ll->fence_ms >= 0 && ll->fence_ms < close_ms)
				close_ms = ll->fence_ms;
			/* +1: the line's millisecond is truncated, an ID of that millisecond is in */
			w->close_us = (close_ms + 1) * 1000;
			w->fence_ms = ll->fence_ms;
			st->open_window = SIZE_MAX;
		}
	}
	free(ps);
}

static int cmp_window(const void *a, const void *b)
{
	const struct window *x = a, *y = b;

	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	if (x->worker != y->worker)
		return x->worker < y->worker ? -1 : 1;
	if (x->open_us != y->open_us)
		return x->open_us < y->open_us ? -1 : 1;
	return 0;
}

/* ---- events and notify logs ------------------------------------------------------- */

/* An event with pids=P,P... (a SIGKILL by the nemesis) ends those processes of node target=: a
 * killed process logs nothing, so without this its last lease line would last to the end. Each
 * pid with lease lines gets a "stopped" line at the event's time, after its own lines (the
 * proxies are parsed first), which closes its window there. */
static void kill_pids(const char *path, size_t lineno, struct tok target, struct tok pids, int64_t mono_us)
{
	uint32_t node;
	const char *p = pids.s, *end = pids.s + pids.n;

	if (!target.n)
		input_error(path, lineno, "malformed event line: pids= needs target=");
	node = names_find(&hist.nodes, target.s, target.n);
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		struct tok one = { p, (size_t)((comma ? comma : end) - p) };
		int64_t pid;
		size_t last = SIZE_MAX;

		if (!tok_i64(one, &pid) || pid <= 0)
			input_error(path, lineno, "malformed event line: pids= holds %.*s", (int)one.n, one.s);
		for (size_t i = 0; node != UINT32_MAX && i < hist.n_leases; i++)
			if (hist.leases[i].node == node && hist.leases[i].pid == pid)
				last = i;
		if (last != SIZE_MAX && hist.leases[last].mono_ms * 1000 <= mono_us) {
			struct lease_line ll = hist.leases[last];

			ll.state = LEASE_STOPPED;
			ll.worker = -1;
			ll.mono_ms = mono_us / 1000;
			ll.fence_ms = -1;
			ll.to_ms = NO_TIME;
			*PUSH(hist.leases, hist.n_leases, hist.cap_leases) = ll;
		}
		p = comma ? comma + 1 : end;
	}
}

static void parse_events(const char *path)
{
	struct text txt;
	struct lines it;
	const char *s, *e;

	text_load(&txt, path);
	it = (struct lines){ txt.data, txt.data + txt.len, 0 };
	while (lines_next(&it, &s, &e)) {
		struct tok t[MAX_TOKS], v, fid = { 0 }, kind = { 0 }, target = { 0 }, detail = { 0 }, pids = { 0 };
		int64_t mono, wall;
		int n;

		if (s < e && *s == '#')
			continue;
		n = tokenize(s, e, t);
		if (n < 3 || n > MAX_TOKS || !tok_time(t[1], &mono) || !tok_time(t[2], &wall))
			input_error(path, it.lineno, "malformed event line: expected <name> <mono_us> <wall_us> [key=value...]");
		for (int i = 3; i < n; i++) {
			if (!memchr(t[i].s, '=', t[i].n))
				input_error(path, it.lineno, "malformed event line: %.*s is not key=value", (int)t[i].n, t[i].s);
			if (tok_kv(t[i], "fault=", &v))
				fid = v;
			else if (tok_kv(t[i], "kind=", &v))
				kind = v;
			else if (tok_kv(t[i], "target=", &v))
				target = v;
			else if (tok_kv(t[i], "detail=", &v))
				detail = v;
			else if (tok_kv(t[i], "pids=", &v))
				pids = v;
		}
		if (pids.n)
			kill_pids(path, it.lineno, target, pids, mono);
		if (tok_is(t[0], "start")) {
			if (!fid.n || !kind.n || !target.n)
				input_error(path, it.lineno, "malformed start line: fault=, kind= and target= are required");
			for (size_t k = 0; k < hist.n_faults; k++)
				if (!hist.faults[k].point && tok_is(fid, hist.faults[k].id))
					input_error(path, it.lineno, "fault %.*s started twice", (int)fid.n, fid.s);
			*PUSH(hist.faults, hist.n_faults, hist.cap_faults) = (struct fault){
				xstrndup(fid.s, fid.n), xstrndup(target.s, target.n),
				detail.n ? xstrndup(detail.s, detail.n) : xstrndup("-", 1),
				names_add(&hist.fault_kinds, kind.s, kind.n), false, mono, NO_TIME };
		} else if (tok_is(t[0], "heal")) {
			struct fault *f = NULL;

			if (!fid.n)
				input_error(path, it.lineno, "malformed heal line: fault= is required");
			for (size_t k = 0; k < hist.n_faults; k++)
				if (!hist.faults[k].point && tok_is(fid, hist.faults[k].id))
					f = &hist.faults[k];
			if (!f)
				input_error(path, it.lineno, "heal of fault %.*s, which never started", (int)fid.n, fid.s);
			if (f->heal_us != NO_TIME)
				input_error(path, it.lineno, "fault %.*s healed twice", (int)fid.n, fid.s);
			if (mono < f->start_us)
				input_error(path, it.lineno, "fault %.*s healed before it started", (int)fid.n, fid.s);
			f->heal_us = mono;
		} else {
			*PUSH(hist.faults, hist.n_faults, hist.cap_faults) = (struct fault){
				xstrndup("-", 1), xstrndup("-", 1), xstrndup("-", 1),
				names_add(&hist.point_names, t[0].s, t[0].n), true, mono, mono };
		}
	}
	text_free(&txt);
}

static void parse_notify(const char *path)
{
	struct text txt;
	struct lines it;
	const char *s, *e;

	text_load(&txt, path);
	it = (struct lines){ txt.data, txt.data + txt.len, 0 };
	while (lines_next(&it, &s, &e)) {
		struct tok t[MAX_TOKS], host;
		int64_t wall_ms;
		int n = tokenize(s, e, t);

		if (n != 7 || !tok_time(t[1], &wall_ms) || !tok_kv(t[2], "host=", &host) ||
		    !(tok_is(t[3], "INSTANCE") || tok_is(t[3], "GROUP")) || !tok_kv(t[6], "prio=", &(struct tok){ 0 }))
			input_error(path, it.lineno, "malformed notify line: expected "
			            "<RFC3339> <unix_ms> host=<H> INSTANCE <instance> <STATE> prio=<N>");
		if (tok_is(t[3], "GROUP"))
			continue; /* a sync group's transition: its instances log their own */
		if (!hist.have_offset)
			input_error(path, it.lineno, "the first client log has no '# drill-client' header with mono_us and "
			            "wall_us: cannot place notify lines on the monotonic clock");
		*PUSH(hist.holds, hist.n_holds, hist.cap_holds) = (struct vip_hold){
			xstrndup(host.s, host.n), xstrndup(t[4].s, t[4].n), tok_is(t[5], "MASTER"),
			wall_ms * 1000 - hist.wall_minus_mono_us, hist.n_holds };
	}
	text_free(&txt);
}

/* ---- the checks ----------------------------------------------------------------------- */

static size_t seg_of_id(size_t idx)
{
	size_t lo = 0, hi = hist.n_segs;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (hist.segs[mid].first <= idx)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* "file:line" of the idx-th ID: a response's I lines are consecutive */
static void id_where(size_t idx, char *buf, size_t size)
{
	const struct seg *g = &hist.segs[seg_of_id(idx)];

	snprintf(buf, size, "%s:%zu", opt.clients[g->file], (size_t)g->line + (idx - g->first));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void check_duplicates(void)
{
	uint64_t *sorted = xrealloc(NULL, hist.n_ids * sizeof *sorted + 1);
	uint64_t shown[VIOLATIONS_SHOWN];
	size_t n_shown = 0;

	if (hist.n_ids)
		memcpy(sorted, hist.ids, hist.n_ids * sizeof *sorted);
	radix_sort(sorted, NULL, hist.n_ids);
	for (size_t i = 1; i < hist.n_ids; i++) {
		if (sorted[i] != sorted[i - 1])
			continue;
		viol.duplicates++;
		if (n_shown < VIOLATIONS_SHOWN && (n_shown == 0 || shown[n_shown - 1] != sorted[i]))
			shown[n_shown++] = sorted[i];
	}
	free(sorted);
	if (!n_shown)
		return;
	/* the few shown: find where each copy was received */
	char where[VIOLATIONS_SHOWN][512];
	unsigned copies[VIOLATIONS_SHOWN] = { 0 };

	for (size_t k = 0; k < n_shown; k++)
		where[k][0] = '\0';
	for (size_t i = 0; i < hist.n_ids; i++) {
		uint64_t *hit = bsearch(&hist.ids[i], shown, n_shown, sizeof *shown, cmp_u64);
		if (!hit)
			continue;
		size_t k = (size_t)(hit - shown), len = strlen(where[k]);
		const struct seg *g = &hist.segs[seg_of_id(i)];
		char at[300];

		if (++copies[k] > 4)
			continue;
		id_where(i, at, sizeof at);
		snprintf(where[k] + len, sizeof where[k] - len, " %s(node=%s start_us=%" PRId64 " end_us=%" PRId64 ")",
		         at, hist.nodes.v[g->node], g->start_us, g->end_us);
	}
	for (size_t k = 0; k < n_shown; k++) {
		viol.shown[V_DUP]++;
		fprintf(stderr, "# violation duplicate id=%" PRIu64 " worker=%" PRIu32 " ts_ms=%" PRId64 " copies=%u at%s\n",
		        shown[k], id_worker(shown[k]), id_wall_ms(shown[k]), copies[k], where[k]);
	}
}

/* Per worker, a response B that began after a response A ended must carry IDs
 * above A's. Responses sorted by (worker, start) and by (worker, end): sweeping
 * B in start order, every A that ended before B.start has been folded into a
 * running maximum of highest IDs, so each B is judged against all its
 * predecessors at once: O(n log n) however many workers. */
static void check_order(void)
{
	size_t n = hist.n_segs;
	int64_t tmin = INT64_MAX, tmax = 0;
	unsigned time_bits = 64 - opt.worker_bits;

	if (n < 2)
		return;
	for (size_t i = 0; i < n; i++) {
		if (hist.segs[i].start_us < tmin)
			tmin = hist.segs[i].start_us;
		if (hist.segs[i].end_us > tmax)
			tmax = hist.segs[i].end_us;
	}
	if ((uint64_t)(tmax - tmin) >> time_bits) {
		fprintf(stderr, "check: the run spans %" PRId64 " us: too long for the order check's sort keys\n",
		        tmax - tmin);
		exit(2);
	}
	uint64_t *key = xrealloc(NULL, n * sizeof *key);
	uint32_t *by_start = xrealloc(NULL, n * sizeof *by_start);
	uint32_t *by_end = xrealloc(NULL, n * sizeof *by_end);

	for (size_t i = 0; i < n; i++) {
		key[i] = (uint64_t)hist.segs[i].worker << time_bits | (uint64_t)(hist.segs[i].start_us - tmin);
		by_start[i] = (uint32_t)i;
	}
	radix_sort(key, by_start, n);
	for (size_t i = 0; i < n; i++) {
		key[i] = (uint64_t)hist.segs[i].worker << time_bits | (uint64_t)(hist.segs[i].end_us - tmin);
		by_end[i] = (uint32_t)i;
	}
	radix_sort(key, by_end, n);
	free(key);

	size_t j = 0, arg_max = 0;
	uint32_t cur_w = UINT32_MAX;
	bool have = false;
	uint64_t run_max = 0;

	for (size_t i = 0; i < n; i++) {
		const struct seg *b = &hist.segs[by_start[i]];

		if (b->worker != cur_w) {
			cur_w = b->worker;
			have = false;
			while (j < n && hist.segs[by_end[j]].worker < cur_w)
				j++;
		}
		while (j < n && hist.segs[by_end[j]].worker == cur_w && hist.segs[by_end[j]].end_us < b->start_us) {
			const struct seg *a = &hist.segs[by_end[j]];
			if (!have || a->hi > run_max) {
				run_max = a->hi;
				arg_max = by_end[j];
				have = true;
			}
			j++;
		}
		if (!have || b->lo > run_max)
			continue;
		viol.order++;
		if (violation_shown(V_ORDER)) {
			const struct seg *a = &hist.segs[arg_max];
			char at_b[300], at_a[300];

			snprintf(at_b, sizeof at_b, "%s:%" PRIu32, opt.clients[b->file], b->line);
			snprintf(at_a, sizeof at_a, "%s:%" PRIu32, opt.clients[a->file], a->line);
			fprintf(stderr, "# violation order id=%" PRIu64 " worker=%" PRIu32 " node=%s start_us=%" PRId64
			        " end_us=%" PRId64 " at=%s is not above id=%" PRIu64 " node=%s start_us=%" PRId64
			        " end_us=%" PRId64 " at=%s, received before it began\n",
			        b->lo, b->worker, hist.nodes.v[b->node], b->start_us, b->end_us, at_b, a->hi,
			        hist.nodes.v[a->node], a->start_us, a->end_us, at_a);
		}
	}
	free(by_start);
	free(by_end);
}

static void check_leases(void)
{
	size_t nw = hist.n_wins;

	sort_array(hist.wins, nw, sizeof *hist.wins, cmp_window);
	for (size_t i = 0; i < nw; i++) {
		struct window *w = &hist.wins[i];
		bool same_group = i > 0 && w[-1].node == w->node && w[-1].worker == w->worker;

		w->prefix_close_us = same_group && w[-1].prefix_close_us > w->close_us ? w[-1].prefix_close_us : w->close_us;
	}
	for (size_t i = 0; i < hist.n_segs; i++) {
		const struct seg *g = &hist.segs[i];
		uint64_t n_ids = (i + 1 < hist.n_segs ? hist.segs[i + 1].first : hist.n_ids) - g->first;

		if (!hist.node_judged[g->node]) {
			viol.unjudged += n_ids;
			continue;
		}
		/* the group of (node, worker), then its last window opened by g's end */
		size_t lo = 0, hi = nw;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct window *w = &hist.wins[mid];
			if (w->node < g->node || (w->node == g->node && w->worker < g->worker))
				lo = mid + 1;
			else
				hi = mid;
		}
		size_t first = lo, last = lo;
		while (last < nw && hist.wins[last].node == g->node && hist.wins[last].worker == g->worker)
			last++;
		lo = first;
		hi = last;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (hist.wins[mid].open_us <= g->end_us)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > first && hist.wins[lo - 1].prefix_close_us >= g->start_us)
			continue;
		/* outside every window: after a fence the generator held, or simply unleased */
		const struct window *fw = NULL;
		for (size_t k = first; k < last; k++)
			if (hist.wins[k].fence_ms >= 0 && (!fw || hist.wins[k].fence_ms < fw->fence_ms))
				fw = &hist.wins[k];
		bool fenced = fw && g->start_us > (fw->fence_ms + 1) * 1000;
		char at[300];

		snprintf(at, sizeof at, "%s:%" PRIu32, opt.clients[g->file], g->line);
		if (fenced) {
			viol.fence += n_ids;
			if (violation_shown(V_FENCE))
				fprintf(stderr, "# violation fence id=%" PRIu64 " ids=%" PRIu64 " worker=%" PRIu32 " node=%s start_us=%"
				        PRId64 " end_us=%" PRId64 " at=%s began after fence_mono_ms=%" PRId64
				        " of pid %" PRId64 " (window opened at %s:%" PRIu32 ")\n",
				        g->lo, n_ids, g->worker, hist.nodes.v[g->node], g->start_us, g->end_us, at, fw->fence_ms,
				        fw->pid, opt.proxies[fw->file].path, fw->line);
		} else {
			viol.lease += n_ids;
			if (!violation_shown(V_LEASE))
				continue;
			fprintf(stderr, "# violation lease id=%" PRIu64 " ids=%" PRIu64 " worker=%" PRIu32 " node=%s start_us=%"
			        PRId64 " end_us=%" PRId64 " at=%s is in no lease window of (%s, %" PRIu32 ")",
			        g->lo, n_ids, g->worker, hist.nodes.v[g->node], g->start_us, g->end_us, at,
			        hist.nodes.v[g->node], g->worker);
			/* the window before it, if any: where to look in the proxy's log */
			if (lo > first) {
				const struct window *w = &hist.wins[lo - 1];
				fprintf(stderr, "; the last before it: pid %" PRId64 " open_us=%" PRId64 " close_us=%" PRId64
				        " (opened at %s:%" PRIu32 ")\n", w->pid, w->open_us, w->close_us,
				        opt.proxies[w->file].path, w->line);
			} else {
				fprintf(stderr, "; none opened before it ended (%zu later)\n", last - first);
			}
		}
	}
}

/* ---- figures ----------------------------------------------------------------------- */

struct outage {
	int64_t slots;     /* longest run of slots without an ID */
	int64_t first;     /* its first slot */
};

static int64_t n_slots(void)
{
	int64_t slot_us = opt.slot_ms * 1000;

	if (!hist.have_attempts)
		return 0;
	int64_t n = (hist.t1_us - hist.t0_us + slot_us - 1) / slot_us;
	return n < 1 ? 1 : n;
}

/* the last attempt's end falls in the last slot, not one past it */
static int64_t slot_of(int64_t t_us, int64_t nslots)
{
	int64_t k = (t_us - hist.t0_us) / (opt.slot_ms * 1000);

	return k < 0 ? 0 : k >= nslots ? nslots - 1 : k;
}

static uint64_t seg_ids(size_t i)
{
	return (i + 1 < hist.n_segs ? hist.segs[i + 1].first : hist.n_ids) - hist.segs[i].first;
}

/* nearest rank: the smallest value with at least pct percent at or below it */
static uint64_t percentile(const uint64_t *sorted, size_t n, unsigned pct)
{
	if (!n)
		return 0;
	size_t rank = (n * pct + 99) / 100;
	return sorted[rank ? rank - 1 : 0];
}

static double rel_s(int64_t t_us)
{
	return (double)(t_us - hist.t0_us) / 1e6;
}

/* "kind@target,...": the faults active at some time of [from, to], once each */
static void print_during(FILE *f, int64_t from_us, int64_t to_us)
{
	size_t printed = 0;
	char **seen = xcalloc(hist.n_faults, sizeof *seen);

	for (size_t i = 0; i < hist.n_faults; i++) {
		const struct fault *ft = &hist.faults[i];
		int64_t heal = ft->heal_us == NO_TIME ? INT64_MAX : ft->heal_us;
		const char *kind = ft->point ? hist.point_names.v[ft->kind] : hist.fault_kinds.v[ft->kind];
		char label[256];
		bool dup = false;

		if (ft->start_us > to_us || heal < from_us)
			continue;
		snprintf(label, sizeof label, "%s@%s", kind, ft->target);
		for (size_t k = 0; k < printed; k++)
			dup = dup || strcmp(seen[k], label) == 0;
		if (dup)
			continue;
		seen[printed] = xstrndup(label, strlen(label));
		fprintf(f, "%s%s", printed++ ? "," : "", label);
	}
	if (!printed)
		fputs("none", f);
	for (size_t k = 0; k < printed; k++)
		free(seen[k]);
	free(seen);
}

static int cmp_fault_start(const void *a, const void *b)
{
	const struct fault *x = a, *y = b;

	return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

static void print_counts(FILE *f, const struct names *nm, const uint64_t *count)
{
	uint32_t *ix = names_sorted(nm);
	size_t printed = 0;

	/* every name was added with a count, but a --proxy node that served nothing: shown as 0 */
	for (size_t i = 0; i < nm->n; i++)
		fprintf(f, "%s%s=%" PRIu64, printed++ ? "," : "", nm->v[ix[i]], count[ix[i]]);
	if (!printed)
		fputs("none", f);
	free(ix);
}

/* Writes the CHAOS lines into a memory stream: printed to stdout and, with
 * --timeline, to figures.txt. */
static char *figures(int64_t started_us, const uint64_t *ids_per_slot, int64_t nslots)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t *lat_sorted = xrealloc(NULL, hist.n_lat * sizeof *lat_sorted + 1);
	uint64_t *by_kind = xcalloc(hist.fault_kinds.n, sizeof *by_kind);
	uint64_t *by_code = xcalloc(hist.codes.n, sizeof *by_code);
	int64_t served = 0;
	struct outage out = { 0, 0 };
	size_t n_fault_starts = 0;

	if (!f) {
		perror("check: open_memstream");
		exit(2);
	}
	for (size_t i = 0; i < hist.n_lat; i++)
		lat_sorted[i] = hist.lat[i].us;
	radix_sort(lat_sorted, NULL, hist.n_lat);
	for (size_t i = 0; i < hist.n_faults; i++)
		if (!hist.faults[i].point) {
			by_kind[hist.faults[i].kind]++;
			n_fault_starts++;
		}
	for (size_t i = 0; i < hist.n_errs; i++)
		by_code[hist.errs[i].code]++;
	for (int64_t k = 0, run = 0; k < nslots; k++) {
		if (ids_per_slot[k]) {
			served++;
			run = 0;
			continue;
		}
		if (++run > out.slots) {
			out.slots = run;
			out.first = k - run + 1;
		}
	}

	fprintf(f, "CHAOS ids_checked %zu\n", hist.n_ids);
	fprintf(f, "CHAOS requests %" PRIu64 "\n", hist.requests);
	fprintf(f, "CHAOS failed_requests %" PRIu64 "\n", hist.failed_requests);
	fprintf(f, "CHAOS attempts_failed %" PRIu64 "\n", hist.attempts_failed);
	fprintf(f, "CHAOS duplicates %" PRIu64 "\n", viol.duplicates);
	fprintf(f, "CHAOS order_violations %" PRIu64 "\n", viol.order);
	fprintf(f, "CHAOS fence_violations %" PRIu64 "\n", viol.fence);
	fprintf(f, "CHAOS lease_violations %" PRIu64 "\n", viol.lease);
	fprintf(f, "CHAOS header_mismatches %" PRIu64 "\n", viol.header);
	fprintf(f, "CHAOS unjudged_ids %" PRIu64 "\n", viol.unjudged);
	fprintf(f, "CHAOS faults %zu\n", n_fault_starts);
	fprintf(f, "CHAOS fault_kinds %zu\n", hist.fault_kinds.n);
	fputs("CHAOS fault_kind_list ", f);
	print_counts(f, &hist.fault_kinds, by_kind);
	fputc('\n', f);
	fprintf(f, "CHAOS availability_pct %.1f\n", nslots ? 100.0 * (double)served / (double)nslots : 0.0);
	fprintf(f, "CHAOS latency_p50_ms %.2f\n", (double)percentile(lat_sorted, hist.n_lat, 50) / 1000.0);
	fprintf(f, "CHAOS latency_p99_ms %.2f\n", (double)percentile(lat_sorted, hist.n_lat, 99) / 1000.0);
	fprintf(f, "CHAOS latency_max_ms %.2f\n", hist.n_lat ? (double)lat_sorted[hist.n_lat - 1] / 1000.0 : 0.0);
	fprintf(f, "CHAOS longest_outage_ms %" PRId64 "\n", out.slots * opt.slot_ms);
	fprintf(f, "CHAOS longest_outage_at_s %.1f\n", (double)(out.first * opt.slot_ms) / 1000.0);
	fputs("CHAOS longest_outage_during ", f);
	if (out.slots) {
		int64_t from = hist.t0_us + out.first * opt.slot_ms * 1000;
		print_during(f, from, from + out.slots * opt.slot_ms * 1000);
	} else {
		fputs("none", f);
	}
	fputc('\n', f);
	fputs("CHAOS errors_by_code ", f);
	print_counts(f, &hist.codes, by_code);
	fputc('\n', f);
	fputs("CHAOS ids_by_node ", f);
	print_counts(f, &hist.nodes, hist.ids_by_node);
	fputc('\n', f);
	fprintf(f, "CHAOS check_seconds %.2f\n", (double)(mono_now_us() - started_us) / 1e6);
	fclose(f);
	free(lat_sorted);
	free(by_kind);
	free(by_code);
	return buf;
}

/* ---- timeline ---------------------------------------------------------------------- */

static FILE *timeline_open(const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", opt.timeline, name);
	f = fopen(path, "w");
	if (!f)
		input_error(path, 0, "cannot write: %s", strerror(errno));
	return f;
}

static void timeline_close(FILE *f, const char *name)
{
	if (ferror(f) | fclose(f)) {
		fprintf(stderr, "check: %s/%s: cannot write\n", opt.timeline, name);
		exit(2);
	}
}

static void write_slots(int64_t nslots, const uint64_t *ids_per_slot)
{
	FILE *f = timeline_open("slots.tsv");
	size_t nn = hist.nodes.n, nc = hist.codes.n;
	uint32_t *node_ix = names_sorted(&hist.nodes), *code_ix = names_sorted(&hist.codes);
	uint32_t *by_node = xcalloc((size_t)nslots * (nn ? nn : 1), sizeof *by_node);
	uint32_t *by_code = xcalloc((size_t)nslots * (nc ? nc : 1), sizeof *by_code);
	uint32_t *fails = xcalloc((size_t)nslots, sizeof *fails);
	uint64_t *p99 = xcalloc((size_t)nslots, sizeof *p99);
	uint64_t *key = xrealloc(NULL, hist.n_lat * sizeof *key + 1);

	for (size_t i = 0; i < hist.n_segs; i++)
		by_node[(size_t)slot_of(hist.segs[i].end_us, nslots) * nn + hist.segs[i].node] += (uint32_t)seg_ids(i);
	for (size_t i = 0; i < hist.n_errs; i++)
		by_code[(size_t)slot_of(hist.errs[i].end_us, nslots) * nc + hist.errs[i].code]++;
	for (size_t i = 0; i < hist.n_fails; i++)
		fails[slot_of(hist.fails_end_us[i], nslots)]++;
	/* (slot, latency) keys: sorted, each slot's latencies are a sorted run */
	for (size_t i = 0; i < hist.n_lat; i++) {
		uint64_t lat = hist.lat[i].us < (UINT64_C(1) << 40) ? hist.lat[i].us : (UINT64_C(1) << 40) - 1;
		key[i] = (uint64_t)slot_of(hist.lat[i].end_us, nslots) << 40 | lat;
	}
	radix_sort(key, NULL, hist.n_lat);
	for (size_t i = 0; i < hist.n_lat;) {
		size_t j = i;
		while (j < hist.n_lat && key[j] >> 40 == key[i] >> 40)
			j++;
		p99[key[i] >> 40] = percentile(key + i, j - i, 99) & ((UINT64_C(1) << 40) - 1);
		i = j;
	}

	fputs("t_s\tids_total", f);
	for (size_t k = 0; k < nn; k++)
		fprintf(f, "\tids_%s", hist.nodes.v[node_ix[k]]);
	for (size_t k = 0; k < nc; k++)
		fprintf(f, "\terr_%s", hist.codes.v[code_ix[k]]);
	fputs("\tfailed_requests\tp99_ms\n", f);
	for (int64_t s = 0; s < nslots; s++) {
		fprintf(f, "%.3f\t%" PRIu64, (double)(s * opt.slot_ms) / 1000.0, ids_per_slot[s]);
		for (size_t k = 0; k < nn; k++)
			fprintf(f, "\t%" PRIu32, by_node[(size_t)s * nn + node_ix[k]]);
		for (size_t k = 0; k < nc; k++)
			fprintf(f, "\t%" PRIu32, by_code[(size_t)s * nc + code_ix[k]]);
		fprintf(f, "\t%" PRIu32 "\t%.2f\n", fails[s], (double)p99[s] / 1000.0);
	}
	timeline_close(f, "slots.tsv");
	free(node_ix);
	free(code_ix);
	free(by_node);
	free(by_code);
	free(fails);
	free(p99);
	free(key);
}

static void write_faults(void)
{
	FILE *f = timeline_open("faults.tsv");
	struct fault *sorted = xrealloc(NULL, hist.n_faults * sizeof *sorted + 1);

	if (hist.n_faults)
		memcpy(sorted, hist.faults, hist.n_faults * sizeof *sorted);
	sort_array(sorted, hist.n_faults, sizeof *sorted, cmp_fault_start);
	fputs("id\tkind\ttarget\tstart_s\theal_s\tdetail\n", f);
	for (size_t i = 0; i < hist.n_faults; i++) {
		const struct fault *ft = &sorted[i];
		int64_t heal = ft->heal_us == NO_TIME ? hist.t1_us : ft->heal_us;

		fprintf(f, "%s\t%s\t%s\t%.3f\t%.3f\t%s\n", ft->id,
		        ft->point ? hist.point_names.v[ft->kind] : hist.fault_kinds.v[ft->kind], ft->target,
		        rel_s(ft->start_us), rel_s(heal), ft->detail);
	}
	timeline_close(f, "faults.tsv");
	free(sorted);
}

static int cmp_hold(const void *a, const void *b)
{
	const struct vip_hold *x = a, *y = b;
	int c = strcmp(x->instance, y->instance);

	if (!c)
		c = strcmp(x->host, y->host);
	if (!c)
		c = x->mono_us < y->mono_us ? -1 : x->mono_us > y->mono_us;
	if (!c)
		c = x->order < y->order ? -1 : x->order > y->order;
	return c;
}

struct hold_row {
	const char *instance, *host;
	int64_t from_us, to_us;
};

static int cmp_hold_row(const void *a, const void *b)
{
	const struct hold_row *x = a, *y = b;
	int c = x->from_us < y->from_us ? -1 : x->from_us > y->from_us;

	return c ? c : strcmp(x->instance, y->instance);
}

static void write_vips(void)
{
	FILE *f = timeline_open("vips.tsv");
	struct hold_row *rows = NULL;
	size_t n_rows = 0, cap_rows = 0;

	/* Instances that change at once log at once, so one file's lines are not in
	 * time order across instances: sorted per (instance, host) first. */
	sort_array(hist.holds, hist.n_holds, sizeof *hist.holds, cmp_hold);
	for (size_t i = 0; i < hist.n_holds;) {
		size_t j = i;
		struct hold_row *open = NULL;

		while (j < hist.n_holds && !strcmp(hist.holds[j].instance, hist.holds[i].instance) &&
		       !strcmp(hist.holds[j].host, hist.holds[i].host)) {
			const struct vip_hold *h = &hist.holds[j++];
			if (h->master && !open) {
				open = PUSH(rows, n_rows, cap_rows);
				*open = (struct hold_row){ h->instance, h->host, h->mono_us, NO_TIME };
			} else if (!h->master && open) {
				open->to_us = h->mono_us;
				open = NULL;
			}
		}
		i = j;
	}
	sort_array(rows, n_rows, sizeof *rows, cmp_hold_row);
	fputs("instance\tholder\tfrom_s\tto_s\n", f);
	for (size_t i = 0; i < n_rows; i++) {
		int64_t to = rows[i].to_us == NO_TIME ? (hist.t1_us > rows[i].from_us ? hist.t1_us : rows[i].from_us)
		                                      : rows[i].to_us;
		fprintf(f, "%s\t%s\t%.3f\t%.3f\n", rows[i].instance, rows[i].host, rel_s(rows[i].from_us), rel_s(to));
	}
	timeline_close(f, "vips.tsv");
	free(rows);
}

static void write_lease(void)
{
	FILE *f = timeline_open("lease.tsv");
	uint32_t *node_ix = names_sorted(&hist.nodes);

	fputs("node\tpid\tstate\tworker\tfrom_s\tto_s\n", f);
	for (size_t k = 0; k < hist.nodes.n; k++)
		for (size_t i = 0; i < hist.n_leases; i++) {
			const struct lease_line *ll = &hist.leases[i];
			int64_t from = ll->mono_ms * 1000;
			int64_t to = ll->to_ms == NO_TIME ? (hist.t1_us > from ? hist.t1_us : from) : ll->to_ms * 1000;

			if (ll->node != node_ix[k])
				continue;
			fprintf(f, "%s\t%" PRId64 "\t%s\t%" PRId64 "\t%.3f\t%.3f\n", hist.nodes.v[ll->node], ll->pid,
			        lease_states[ll->state], ll->worker, rel_s(from), rel_s(to));
		}
	timeline_close(f, "lease.tsv");
	free(node_ix);
}

/* ---- arguments --------------------------------------------------------------------- */

static int64_t parse_positive(const char *what, const char *s)
{
	struct tok t = { s, strlen(s) };
	int64_t v;

	if (!tok_time(t, &v) || v < 1)
		usage_error("%s must be a positive integer, got '%s'", what, s);
	return v;
}

static void parse_layout(const char *s)
{
	struct tok parts[3];
	int n = 0;
	const char *p = s;
	uint64_t seq, worker;
	int64_t epoch = opt.epoch_ms;

	for (;;) {
		const char *c = strchr(p, ':');
		if (n == 3)
			usage_error("--layout SEQ_BITS:WORKER_BITS:EPOCH_MS, got '%s'", s);
		parts[n++] = (struct tok){ p, c ? (size_t)(c - p) : strlen(p) };
		if (!c)
			break;
		p = c + 1;
	}
	if (n < 2 || !tok_u64(parts[0], &seq) || !tok_u64(parts[1], &worker) || (n == 3 && !tok_time(parts[2], &epoch)))
		usage_error("--layout SEQ_BITS:WORKER_BITS:EPOCH_MS, got '%s'", s);
	/* the order check packs (worker, time) into 64 bits: 20 worker bits leave
	 * 44 for microseconds, half a year of run */
	if (worker < 1 || worker > 20 || seq > 40 || seq + worker > 62)
		usage_error("--layout: worker bits must be 1..20, sequence bits 0..40, together at most 62; got '%s'", s);
	opt.seq_bits = (unsigned)seq;
	opt.worker_bits = (unsigned)worker;
	opt.epoch_ms = epoch;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0;

		if (!strcmp(a, "--layout") || !strcmp(a, "--slot-ms") || !strcmp(a, "--timeline") ||
		    !strcmp(a, "--events") || !strcmp(a, "--notify")) {
			if (!has_value)
				usage_error("%s needs a value", a);
			const char *v = argv[++i];
			if (!strcmp(a, "--layout"))
				parse_layout(v);
			else if (!strcmp(a, "--slot-ms"))
				opt.slot_ms = parse_positive("--slot-ms", v);
			else if (!strcmp(a, "--timeline"))
				opt.timeline = v;
			else if (!strcmp(a, "--events"))
				opt.events = v;
			else
				*PUSH(opt.notify, opt.n_notify, opt.cap_notify) = v;
		} else if (!strcmp(a, "--proxy")) {
			if (!has_value)
				usage_error("--proxy needs NAME=LOGFILE");
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
				const char *v = argv[++i], *eq = strchr(v, '=');
				if (!eq || eq == v || !eq[1])
					usage_error("--proxy NAME=LOGFILE, got '%s'", v);
				if (memchr(v, ' ', (size_t)(eq - v)) || memchr(v, '\t', (size_t)(eq - v)))
					usage_error("--proxy: a node name has no blanks, got '%s'", v);
				*PUSH(opt.proxies, opt.n_proxies, opt.cap_proxies) = (struct proxy_arg){ xstrndup(v, (size_t)(eq - v)),
				                                                                      eq + 1 };
			}
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: check [--layout SEQ_BITS:WORKER_BITS:EPOCH_MS] [--slot-ms 100] [--timeline OUTDIR]\n"
			       "             [--events FILE] [--notify FILE]... --proxy NAME=LOGFILE... --client FILE...\n"
			       "(the header comment of tests/chaos/check.c says what each input and figure means)\n");
			exit(0);
		} else if (!strcmp(a, "--client")) {
			if (!has_value)
				usage_error("--client needs a FILE");
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
				*PUSH(opt.clients, opt.n_clients, opt.cap_clients) = argv[++i];
		} else {
			usage_error("unknown argument '%s'", a);
		}
	}
	if (!opt.n_clients)
		usage_error("no --client log");
	if (opt.n_clients > UINT16_MAX)
		usage_error("more than %d client logs", UINT16_MAX);
}

int main(int argc, char **argv)
{
	int64_t started_us = mono_now_us();

	parse_args(argc, argv);
	hist.t0_us = INT64_MAX;
	hist.t1_us = INT64_MIN;
	/* proxies first: their node names are known before any client line */
	for (size_t i = 0; i < opt.n_proxies; i++)
		parse_proxy((uint32_t)i);
	for (size_t i = 0; i < opt.n_clients; i++)
		parse_client((uint16_t)i);
	if (hist.t1_us < hist.t0_us)
		hist.t0_us = hist.t1_us = 0; /* no attempt at all */
	if (opt.events)
		parse_events(opt.events);
	for (size_t i = 0; i < opt.n_notify; i++)
		parse_notify(opt.notify[i]);

	hist.node_judged = xcalloc(hist.nodes.n, sizeof *hist.node_judged);
	for (size_t i = 0; i < opt.n_proxies; i++)
		hist.node_judged[names_find(&hist.nodes, opt.proxies[i].node, strlen(opt.proxies[i].node))] = true;

	hist.ids_by_node = xcalloc(hist.nodes.n, sizeof *hist.ids_by_node);
	for (size_t i = 0; i < hist.n_segs; i++)
		hist.ids_by_node[hist.segs[i].node] += seg_ids(i);

	check_duplicates();
	check_order();
	build_windows();
	check_leases();

	int64_t nslots = n_slots();
	uint64_t *ids_per_slot = xcalloc((size_t)nslots, sizeof *ids_per_slot);
	for (size_t i = 0; i < hist.n_segs; i++)
		ids_per_slot[slot_of(hist.segs[i].end_us, nslots)] += seg_ids(i);

	if (opt.timeline) {
		if (mkdir(opt.timeline, 0777) == -1 && errno != EEXIST)
			input_error(opt.timeline, 0, "cannot create: %s", strerror(errno));
		write_slots(nslots, ids_per_slot);
		write_faults();
		write_vips();
		write_lease();
	}
	char *text = figures(started_us, ids_per_slot, nslots);
	fputs(text, stdout);
	if (opt.timeline) {
		FILE *f = timeline_open("figures.txt");
		fputs(text, f);
		timeline_close(f, "figures.txt");
	}
	if (fflush(stdout) == EOF)
		return 2;
	free(text);
	free(ids_per_slot);
	return viol.duplicates || viol.order || viol.fence || viol.lease || viol.header ? 1 : 0;
}
