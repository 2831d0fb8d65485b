/*
 * tests/drills/client.c: the drills' caller of the VIPs.
 *
 * Behaves like a fleet's service that needs IDs: a few caller slots, each
 * running one logical request at a time over a LIST of addresses, round robin,
 * with short timeouts; a failed attempt is retried at once on the next
 * address, and only when every try failed does the slot back off. Every ID,
 * every failed attempt and every failed logical request is written to a file
 * with CLOCK_MONOTONIC timestamps (microseconds), so the drills can tell
 * duplicates, per-worker order and the client-visible error window (overall
 * and per address). Bounded in time (-d) and in logical requests (-n);
 * SIGTERM/SIGINT end it early (the footer is still written).
 *
 *   drill-client -a ADDR[,ADDR...] -p PORT -o FILE -d DURATION_MS [-c SLOTS=4 (1..64)] [-r RATE=500]
 *                [-n MAX_REQUESTS] [-R TRIES=number of addresses] [-T CONNECT_TIMEOUT_MS=200]
 *                [-t READ_TIMEOUT_MS=200] [-k BACKOFF_MS=10] [-J JSON_PCT=0] [-B IDS_PCT=0]
 *                [-N MAX_COUNT=16] [-l LABEL]
 *   drill-client now        prints "<monotonic us> <wall us>" (for event marks)
 *
 * Up to 8 IPv4 addresses, indexed 0..N-1 in the order given ("vip" below).
 * Each slot keeps one keep-alive connection per address, opened when first
 * needed and closed on any failure of an attempt on it. Logical request k of
 * slot s (k = 0, 1, ... per slot) goes first to address (s + k) mod N; a failed
 * attempt (any error kind below, any status but 200) is retried immediately on
 * the next address ((v + 1) mod N), up to TRIES attempts in all; after the last
 * one the slot backs off BACKOFF_MS. With one address and TRIES 1 this is the
 * old single-address client. RATE is per slot (logical requests per second,
 * 0 = as fast as answers come), counted from the start of each request's first
 * attempt.
 *
 * Request mix, deterministic by k: p = (37 k) mod 100 runs through 0..99 once
 * every 100 requests of a slot, interleaved; p < JSON_PCT is GET /id with
 * "Accept: application/json" (answer {"id":"<digits>"}), JSON_PCT <= p <
 * JSON_PCT + IDS_PCT is GET /ids?count=C (text, one ID per line), anything
 * else GET /id in text. The slot's j-th /ids request (j = 0, 1, ...) asks for
 * C = 1, 2, 4, 8, ... (the powers of two below MAX_COUNT, then MAX_COUNT, and
 * again; MAX_COUNT 1..4096). An /ids answer must hold exactly C IDs, strictly
 * increasing (else bad_response, detail ids_count, ids_not_increasing or
 * ids_syntax).
 *
 * Output lines (one per attempt, in completion order; every field is one token):
 *   I <start_us> <end_us> <slot> <id> <node> <vip> <try> <kind> <req> <worker>  an ID (200); an
 *                                 /ids answer gives one line per ID, all with the same times;
 *                                 node and worker: the X-Snowflake-Node and -Worker headers
 *   E <start_us> <end_us> <slot> <kind> <detail> <vip> <try> <req>     a failed attempt
 *   F <start_us> <end_us> <slot> <tries> <req>     a logical request that got no ID after all
 *                                 its tries (start of its first attempt, end of its last)
 * I kind: id (text /id), json (JSON /id), ids (/ids). try: 1..TRIES, the attempt
 * within its logical request. req: k, the slot's logical request number, so
 * (slot, req) names a logical request within one log.
 * E kind: connect_timeout, connect_refused, connect_error, read_timeout, reset,
 * closed (EOF mid-response), bad_response, http (detail "<status>:<error code>").
 * A detail's spaces become '_'. start_us is when the attempt began (connect
 * included), end_us when it ended. An attempt still in flight when the client
 * stops leaves no line, and its request no F line. Lines starting with '#' are
 * comments: a header with both clocks and the settings (addrs=A,B,C tries=T
 * ...), a footer with the counts (attempts, ids, errors, requests = logical
 * requests that ended with an ID or an F line, failed = F lines). The output is
 * flushed every 100 ms, so a killed client leaves a usable log.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 64
#define MAX_ADDRS 8
#define MAX_COUNT 4096 /* the service's default http.max_batch */
/* a full /ids answer: 4096 IDs of up to 19 digits and a newline (80 KiB),
 * plus the header block */
#define BUF_SIZE (96 * 1024)
#define REQ_SIZE 256

enum slot_state { ST_IDLE, ST_CONNECTING, ST_SENDING, ST_READING };
enum req_kind { RK_ID, RK_JSON, RK_IDS };
static const char *const req_kind_name[] = { "id", "json", "ids" };

struct slot {
	int idx;
	int fd[MAX_ADDRS]; /* one keep-alive connection per address, -1 when closed */
	enum slot_state st;
	int retry_due;     /* idle between two attempts of one logical request */
	long long req;     /* k: this slot's logical request number */
	long long n_batch; /* /ids requests so far: picks the next count */
	enum req_kind kind;
	int count;         /* IDs asked of /ids */
	int vip;           /* address index of the current attempt */
	int attempt;       /* 1..tries within the logical request */
	int64_t req_start;     /* us: first attempt of the logical request began */
	int64_t attempt_start; /* us: this attempt began */
	int64_t next_start;    /* us: not before */
	int64_t deadline;      /* us: of the current phase */
	char reqbuf[REQ_SIZE];
	size_t req_len;
	size_t sent;
	size_t got;
	char *buf; /* BUF_SIZE, allocated once at start */
};

static volatile sig_atomic_t stop_flag;

static int64_t now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_us(void) { return now_us(CLOCK_MONOTONIC); }

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static struct sockaddr_in targets[MAX_ADDRS];
static char addr_text[MAX_ADDRS][INET_ADDRSTRLEN];
static int n_addrs, tries;
static int json_pct, ids_pct;
static int count_cycle[16], count_cycle_len;
static FILE *out;
static int64_t connect_timeout_us = 200000, read_timeout_us = 200000, backoff_us = 10000, interval_us;
static long long n_attempts, n_ids, n_errors, max_requests;
static long long n_started, n_done, n_failed; /* logical requests */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The attempt's logical request is over: the next one is due after the rate's
 * interval (success) or the back-off (every try failed). */
static void end_request(struct slot *s, int64_t t, int ok)
{
	n_done++;
	s->st = ST_IDLE;
	s->retry_due = 0;
	s->req++;
	if (ok) {
		s->next_start = s->req_start + interval_us;
		if (s->next_start < t)
			s->next_start = t;
	} else {
		s->next_start = t + backoff_us;
	}
}

/* Ends an attempt with a failure: record it, drop its connection, then either
 * retry at once on the next address or, after the last try, fail the logical
 * request and back off. */
static void fail(struct slot *s, const char *kind, const char *detail)
{
	int64_t t = mono_us();
	char tok[128];
	size_t n = 0;

	/* one token, so the fields after it stay at fixed positions */
	for (const char *p = detail && *detail ? detail : "-"; *p && n < sizeof tok - 1; p++)
		tok[n++] = (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ? '_' : *p;
	tok[n] = '\0';
	fprintf(out, "E %lld %lld %d %s %s %d %d %lld\n", (long long)s->attempt_start, (long long)t, s->idx, kind,
	        tok, s->vip, s->attempt, s->req);
	n_errors++;
	close_fd(&s->fd[s->vip]);
	if (s->attempt < tries) {
		s->st = ST_IDLE;
		s->retry_due = 1;
		s->vip = (s->vip + 1) % n_addrs;
		s->attempt++;
		s->next_start = t; /* no back-off between tries: a caller moves on at once */
		return;
	}
	fprintf(out, "F %lld %lld %d %d %lld\n", (long long)s->req_start, (long long)t, s->idx, s->attempt, s->req);
	n_failed++;
	end_request(s, t, 0);
}

static const char *errno_kind_connect(int e)
{
	return e == ECONNREFUSED ? "connect_refused" : "connect_error";
}

/* Picks the logical request k's kind, count and first address. */
static void begin_request(struct slot *s)
{
	int p = (int)((s->req * 37) % 100);

	n_started++;
	s->kind = p < json_pct ? RK_JSON : p < json_pct + ids_pct ? RK_IDS : RK_ID;
	s->count = 0;
	if (s->kind == RK_IDS)
		s->count = count_cycle[s->n_batch++ % count_cycle_len];
	s->vip = (int)((s->idx + s->req) % n_addrs);
	s->attempt = 1;
}

/* Starts an attempt: reuse the address's connection when it is open, else
 * connect. */
static void start_attempt(struct slot *s)
{
	int64_t t = mono_us();

	if (!s->retry_due) {
		begin_request(s);
		s->req_start = t;
	}
	s->retry_due = 0;
	n_attempts++;
	s->attempt_start = t;
	s->sent = 0;
	s->got = 0;
	const char *host = addr_text[s->vip];
	int n;
	if (s->kind == RK_IDS)
		n = snprintf(s->reqbuf, sizeof s->reqbuf,
		             "GET /ids?count=%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: drill-client\r\n\r\n", s->count, host);
	else
		n = snprintf(s->reqbuf, sizeof s->reqbuf, "GET /id HTTP/1.1\r\nHost: %s\r\nUser-Agent: drill-client\r\n%s\r\n",
		             host, s->kind == RK_JSON ? "Accept: application/json\r\n" : "");
	s->req_len = (size_t)n;
	if (s->fd[s->vip] >= 0) {
		s->st = ST_SENDING;
		s->deadline = t + read_timeout_us;
		return;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		fail(s, "connect_error", strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	s->fd[s->vip] = fd;
	if (connect(fd, (struct sockaddr *)&targets[s->vip], sizeof targets[s->vip]) == 0) {
		s->st = ST_SENDING;
		s->deadline = t + read_timeout_us;
	} else if (errno == EINPROGRESS) {
		s->st = ST_CONNECTING;
		s->deadline = t + connect_timeout_us;
	} else {
		int e = errno;
		fail(s, errno_kind_connect(e), strerror(e));
	}
}

/* Finds "name:" in the header block (case-insensitive); copies the value. */
static int header_value(const char *head, size_t head_len, const char *name, char *val, size_t vsize)
{
	size_t nlen = strlen(name);
	const char *p = head, *end = head + head_len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			size_t n = (size_t)(ve - v);
			if (n >= vsize)
				n = vsize - 1;
			memcpy(val, v, n);
			val[n] = '\0';
			return 1;
		}
		p = eol + 1;
	}
	return 0;
}

/* Reads one decimal ID at p (no sign, no blanks; 0 is no ID). Returns the end
 * or NULL. */
static char *parse_id(char *p, unsigned long long *id)
{
	char *e;

	*id = 0;
	if (*p < '0' || *p > '9')
		return NULL;
	errno = 0;
	*id = strtoull(p, &e, 10);
	return errno || *id == 0 ? NULL : e;
}

/* Checks an /ids body: exactly want lines of one ID each, strictly increasing.
 * Returns NULL when good, else the detail of the bad_response. */
static const char *check_batch(char *body, int want)
{
	unsigned long long id, prev = 0;
	int n = 0;

	for (char *p = body; *p; n++) {
		char *e = parse_id(p, &id);
		if (!e || *e != '\n')
			return "ids_syntax";
		if (n > 0 && id <= prev)
			return "ids_not_increasing";
		prev = id;
		p = e + 1;
	}
	return n == want ? NULL : "ids_count";
}

/* One I line: the answer's headers as they came ("-" when absent, spaces made '_'). */
static void emit_id(const struct slot *s, unsigned long long id, const char *node, const char *worker, int64_t t)
{
	fprintf(out, "I %lld %lld %d %llu %s %d %d %s %lld %s\n", (long long)s->attempt_start, (long long)t, s->idx, id,
	        node, s->vip, s->attempt, req_kind_name[s->kind], s->req, worker);
	n_ids++;
}

/* Records a 200's IDs. Returns 0, or -1 after recording a bad_response. */
static int record_ids(struct slot *s, char *body, const char *node, const char *worker, int64_t t)
{
	unsigned long long id;
	char *e;

	if (s->kind == RK_IDS) {
		const char *why = check_batch(body, s->count);
		if (why) {
			fail(s, "bad_response", why);
			return -1;
		}
		/* checked above: every line is one ID */
		for (char *p = body; *p; p = e + 1) {
			e = parse_id(p, &id);
			emit_id(s, id, node, worker, t);
		}
		return 0;
	}
	if (s->kind == RK_JSON) {
		char *p = strstr(body, "\"id\":\"");
		e = p ? parse_id(p + 6, &id) : NULL;
		if (!e || *e != '"') {
			fail(s, "bad_response", "200 without a JSON ID");
			return -1;
		}
	} else {
		e = parse_id(body, &id);
		if (!e || (*e != '\n' && *e != '\0')) {
			fail(s, "bad_response", "200 without an ID");
			return -1;
		}
	}
	emit_id(s, id, node, worker, t);
	return 0;
}

/* Parses a complete response if the buffer holds one. Returns 0 when more
 * bytes are needed, 1 when the attempt is over (recorded). */
static int try_complete(struct slot *s)
{
	char *hend = memmem(s->buf, s->got, "\r\n\r\n", 4);
	char tmp[128], node[64] = "-", worker[24] = "-";
	int status;

	if (!hend) {
		if (s->got >= BUF_SIZE - 1) {
			fail(s, "bad_response", "header too long");
			return 1;
		}
		return 0;
	}
	size_t head_len = (size_t)(hend - s->buf) + 4;
	if (sscanf(s->buf, "HTTP/1.%*d %d", &status) != 1) {
		fail(s, "bad_response", "status line");
		return 1;
	}
	if (!header_value(s->buf, head_len, "content-length", tmp, sizeof tmp)) {
		fail(s, "bad_response", "no content-length");
		return 1;
	}
	size_t clen = (size_t)strtoul(tmp, NULL, 10);
	if (head_len + clen >= BUF_SIZE) {
		fail(s, "bad_response", "body too long");
		return 1;
	}
	if (s->got < head_len + clen)
		return 0;
	int keep = !(header_value(s->buf, head_len, "connection", tmp, sizeof tmp) && strcasecmp(tmp, "close") == 0);
	header_value(s->buf, head_len, "x-snowflake-node", node, sizeof node);
	header_value(s->buf, head_len, "x-snowflake-worker", worker, sizeof worker);
	for (char *q = node; *q; q++)
		if (*q == ' ')
			*q = '_';
	for (char *q = worker; *q; q++)
		if (*q == ' ')
			*q = '_';
	char *body = s->buf + head_len;
	body[clen] = '\0';
	int64_t t = mono_us();
	if (status != 200) {
		char code[64] = "-", detail[96];
		char *p = strstr(body, "\"error\":\"");
		if (p) {
			p += 9;
			size_t n = strcspn(p, "\"");
			if (n >= sizeof code)
				n = sizeof code - 1;
			memcpy(code, p, n);
			code[n] = '\0';
		}
		/* a refusal is a failure like any other: new connection, next address */
		snprintf(detail, sizeof detail, "%d:%s", status, code);
		fail(s, "http", detail);
		return 1;
	}
	if (record_ids(s, body, node, worker, t))
		return 1;
	/* leftover bytes would be a pipelining bug: we never pipeline */
	s->got = 0;
	if (!keep)
		close_fd(&s->fd[s->vip]);
	end_request(s, t, 1);
	return 1;
}

static void on_ready(struct slot *s, short rev)
{
	int fd = s->fd[s->vip];

	if (s->st == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err) {
			fail(s, errno_kind_connect(err), strerror(err));
			return;
		}
		s->st = ST_SENDING;
		s->deadline = mono_us() + read_timeout_us;
	}
	if (s->st == ST_SENDING) {
		ssize_t n = send(fd, s->reqbuf + s->sent, s->req_len - s->sent, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			int e = errno;
			fail(s, (e == ECONNRESET || e == EPIPE) ? "reset" : "connect_error", strerror(e));
			return;
		}
		s->sent += (size_t)n;
		if (s->sent == s->req_len)
			s->st = ST_READING;
		return;
	}
	if (s->st == ST_READING && (rev & (POLLIN | POLLHUP | POLLERR))) {
		for (;;) {
			ssize_t n = recv(fd, s->buf + s->got, BUF_SIZE - 1 - s->got, 0);
			if (n > 0) {
				s->got += (size_t)n;
				if (try_complete(s))
					return;
				continue;
			}
			if (n == 0) {
				fail(s, "closed", s->got ? "mid-response" : "before response");
				return;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			int e = errno;
			fail(s, e == ECONNRESET ? "reset" : "connect_error", strerror(e));
			return;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: drill-client -a ADDR[,ADDR...] -p PORT -o FILE -d DURATION_MS [-c SLOTS]\n"
	                "                    [-r RATE_PER_SLOT] [-n MAX] [-R TRIES] [-T CONNECT_MS] [-t READ_MS]\n"
	                "                    [-k BACKOFF_MS] [-J JSON_PCT] [-B IDS_PCT] [-N MAX_COUNT] [-l LABEL]\n"
	                "       drill-client now\n");
	exit(2);
}

/* Parses "A,B,C" into targets/addr_text; 0 on success. */
static int parse_addrs(const char *list, int port)
{
	char copy[MAX_ADDRS * (INET_ADDRSTRLEN + 1) + 1], *save = NULL;

	if (strlen(list) >= sizeof copy)
		return -1;
	strcpy(copy, list);
	for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		if (n_addrs == MAX_ADDRS)
			return -1;
		struct sockaddr_in *sin = &targets[n_addrs];
		memset(sin, 0, sizeof *sin);
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, a, &sin->sin_addr) != 1)
			return -1;
		inet_ntop(AF_INET, &sin->sin_addr, addr_text[n_addrs], sizeof addr_text[n_addrs]);
		n_addrs++;
	}
	return n_addrs > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *path = NULL, *label = "client";
	int port = 0, nslots = 4, max_count = 16, opt;
	long rate = 500;
	int64_t duration_us = 0;
	static struct slot slots[MAX_SLOTS];

	if (argc == 2 && strcmp(argv[1], "now") == 0) {
		printf("%lld %lld\n", (long long)mono_us(), (long long)now_us(CLOCK_REALTIME));
		return 0;
	}
	while ((opt = getopt(argc, argv, "a:p:o:d:c:r:n:R:T:t:k:J:B:N:l:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'o': path = optarg; break;
		case 'd': duration_us = atoll(optarg) * 1000; break;
		case 'c': nslots = atoi(optarg); break;
		case 'r': rate = atol(optarg); break;
		case 'n': max_requests = atoll(optarg); break;
		case 'R':
			tries = atoi(optarg);
			if (tries < 1)
				usage();
			break;
		case 'T': connect_timeout_us = atoll(optarg) * 1000; break;
		case 't': read_timeout_us = atoll(optarg) * 1000; break;
		case 'k': backoff_us = atoll(optarg) * 1000; break;
		case 'J': json_pct = atoi(optarg); break;
		case 'B': ids_pct = atoi(optarg); break;
		case 'N': max_count = atoi(optarg); break;
		case 'l': label = optarg; break;
		default: usage();
		}
	}
	if (!addr || !path || port <= 0 || port > 65535 || duration_us <= 0 || nslots < 1 || nslots > MAX_SLOTS ||
	    rate < 0 || json_pct < 0 || ids_pct < 0 || json_pct + ids_pct > 100 || max_count < 1 ||
	    max_count > MAX_COUNT || tries > 64)
		usage();
	if (parse_addrs(addr, port))
		usage();
	if (tries == 0)
		tries = n_addrs; /* one try on each address */
	for (int c = 1; c < max_count; c *= 2)
		count_cycle[count_cycle_len++] = c;
	count_cycle[count_cycle_len++] = max_count;
	interval_us = rate > 0 ? 1000000 / rate : 0;

	out = fopen(path, "w");
	if (!out) {
		perror(path);
		return 1;
	}
	setvbuf(out, NULL, _IOFBF, 1 << 20);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int64_t t0 = mono_us();
	fprintf(out, "# drill-client label=%s addr=%s port=%d conns=%d rate=%ld mono_us=%lld wall_us=%lld addrs=%s tries=%d"
	             " json_pct=%d ids_pct=%d max_count=%d\n",
	        label, addr_text[0], port, nslots, rate, (long long)t0, (long long)now_us(CLOCK_REALTIME), addr, tries,
	        json_pct, ids_pct, max_count);
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		s->idx = i;
		for (int a = 0; a < MAX_ADDRS; a++)
			s->fd[a] = -1;
		s->st = ST_IDLE;
		s->buf = malloc(BUF_SIZE);
		if (!s->buf) {
			perror("malloc");
			return 1;
		}
		/* spread the slots' first requests over one interval */
		s->next_start = t0 + (interval_us * i) / nslots;
	}
	int64_t end = t0 + duration_us, last_flush = t0;
	struct pollfd pfd[MAX_SLOTS];

	while (!stop_flag) {
		int64_t t = mono_us();
		if (t >= end)
			break;
		int limit_reached = max_requests && n_started >= max_requests;
		if (limit_reached) {
			int busy = 0;
			for (int i = 0; i < nslots; i++)
				busy |= slots[i].st != ST_IDLE || slots[i].retry_due;
			if (!busy)
				break;
		}
		/* often enough that a killed client leaves a usable log */
		if (t - last_flush >= 100000) {
			fflush(out);
			last_flush = t;
		}
		int64_t wake = end;
		for (int i = 0; i < nslots; i++) {
			struct slot *s = &slots[i];
			if (s->st == ST_IDLE) {
				/* the limit counts logical requests: a started one keeps its tries */
				if (limit_reached && !s->retry_due)
					continue;
				if (s->next_start <= t)
					start_attempt(s);
				else if (s->next_start < wake)
					wake = s->next_start;
			}
			if (s->st != ST_IDLE) {
				if (t >= s->deadline) {
					fail(s, s->st == ST_CONNECTING ? "connect_timeout" : "read_timeout",
					     s->st == ST_CONNECTING ? "no connection" : "no complete response");
				} else if (s->deadline < wake) {
					wake = s->deadline;
				}
			}
			/* a retry (or a request) due right away: do not sleep in poll */
			if (s->st == ST_IDLE && s->next_start < wake && !(limit_reached && !s->retry_due))
				wake = s->next_start;
		}
		int n = 0;
		int map[MAX_SLOTS];
		for (int i = 0; i < nslots; i++) {
			struct slot *s = &slots[i];
			if (s->st == ST_IDLE || s->fd[s->vip] < 0)
				continue;
			pfd[n].fd = s->fd[s->vip];
			pfd[n].events = s->st == ST_READING ? POLLIN : POLLOUT;
			pfd[n].revents = 0;
			map[n++] = i;
		}
		t = mono_us();
		int64_t wait_ms = wake > t ? (wake - t + 999) / 1000 : 0;
		if (wait_ms > 100)
			wait_ms = 100;
		int r = poll(pfd, (nfds_t)n, (int)wait_ms);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			perror("poll");
			break;
		}
		for (int k = 0; k < n && r > 0; k++) {
			if (pfd[k].revents)
				on_ready(&slots[map[k]], pfd[k].revents);
		}
	}
	for (int i = 0; i < nslots; i++) {
		for (int a = 0; a < MAX_ADDRS; a++)
			close_fd(&slots[i].fd[a]);
		free(slots[i].buf);
	}
	fprintf(out, "# end attempts=%lld ids=%lld errors=%lld mono_us=%lld requests=%lld failed=%lld\n", n_attempts,
	        n_ids, n_errors, (long long)mono_us(), n_done, n_failed);
	fclose(out);
	return 0;
}
