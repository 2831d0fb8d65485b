/*
 * tests/drills/client.c: the drills' caller of the VIP.
 *
 * Behaves like a service that needs IDs: a few keep-alive connections to one
 * address, GET /id on each, short timeouts, and on any failure a fresh
 * connection after a short back-off. Every ID and every error is written to
 * a file with CLOCK_MONOTONIC timestamps (microseconds), so the drills can
 * tell duplicates, per-worker order and the client-visible error window.
 * Bounded in time (-d) and in requests (-n); SIGTERM/SIGINT end it early.
 *
 *   drill-client -a ADDR -p PORT -o FILE -d DURATION_MS [-c CONNS=4] [-r RATE=500]
 *                [-n MAX_REQUESTS] [-T CONNECT_TIMEOUT_MS=200] [-t READ_TIMEOUT_MS=200]
 *                [-k BACKOFF_MS=10] [-l LABEL]
 *   drill-client now        prints "<monotonic us> <wall us>" (for event marks)
 *
 * RATE is per connection (requests per second, 0 = as fast as answers come).
 *
 * Output lines (one per attempt, in completion order):
 *   I <start_us> <end_us> <conn> <id> <node>            an ID (200)
 *   E <start_us> <end_us> <conn> <kind> <detail>        a failure
 * kind: connect_timeout, connect_refused, connect_error, read_timeout, reset,
 * closed (EOF mid-response), bad_response, http (detail "<status>:<error code>").
 * start_us is when the attempt began (connect included), end_us when it ended.
 * Lines starting with '#' are comments (a header with both clocks, a footer).
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

#define MAX_CONNS 64
#define BUF_SIZE 8192

enum conn_state { ST_IDLE, ST_CONNECTING, ST_SENDING, ST_READING };

struct conn {
	int fd;
	enum conn_state st;
	int64_t attempt_start; /* us: when this attempt began */
	int64_t next_start;    /* us: not before */
	int64_t deadline;      /* us: of the current phase */
	size_t sent;
	size_t got;
	char buf[BUF_SIZE];
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

static const char *req_text;
static size_t req_len;
static struct sockaddr_in target;
static FILE *out;
static int64_t connect_timeout_us = 200000, read_timeout_us = 200000, backoff_us = 10000, interval_us;
static long long n_attempts, n_ids, n_errors, max_requests;

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Ends an attempt with a failure: record it, drop the connection, back off. */
static void fail(struct conn *c, int idx, const char *kind, const char *detail)
{
	int64_t t = mono_us();

	fprintf(out, "E %lld %lld %d %s %s\n", (long long)c->attempt_start, (long long)t, idx, kind,
	        detail && *detail ? detail : "-");
	n_errors++;
	conn_close(c);
	c->st = ST_IDLE;
	c->next_start = t + backoff_us;
}

static const char *errno_kind_connect(int e)
{
	return e == ECONNREFUSED ? "connect_refused" : "connect_error";
}

/* Starts an attempt: reuse the connection when it is open, else connect. */
static void start_attempt(struct conn *c, int idx)
{
	int64_t t = mono_us();

	n_attempts++;
	c->attempt_start = t;
	c->sent = 0;
	c->got = 0;
	if (c->fd >= 0) {
		c->st = ST_SENDING;
		c->deadline = t + read_timeout_us;
		return;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		fail(c, idx, "connect_error", strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	if (connect(fd, (struct sockaddr *)&target, sizeof target) == 0) {
		c->st = ST_SENDING;
		c->deadline = t + read_timeout_us;
	} else if (errno == EINPROGRESS) {
		c->st = ST_CONNECTING;
		c->deadline = t + connect_timeout_us;
	} else {
		int e = errno;
		fail(c, idx, errno_kind_connect(e), strerror(e));
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

/* Parses a complete response if the buffer holds one. Returns 0 when more
 * bytes are needed, 1 when the attempt is over (recorded). */
static int try_complete(struct conn *c, int idx)
{
	char *hend = memmem(c->buf, c->got, "\r\n\r\n", 4);
	char tmp[128], node[64] = "-";
	int status;

	if (!hend) {
		if (c->got >= BUF_SIZE - 1) {
			fail(c, idx, "bad_response", "header too long");
			return 1;
		}
		return 0;
	}
	size_t head_len = (size_t)(hend - c->buf) + 4;
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1) {
		fail(c, idx, "bad_response", "status line");
		return 1;
	}
	if (!header_value(c->buf, head_len, "content-length", tmp, sizeof tmp)) {
		fail(c, idx, "bad_response", "no content-length");
		return 1;
	}
	size_t clen = (size_t)strtoul(tmp, NULL, 10);
	if (head_len + clen >= BUF_SIZE) {
		fail(c, idx, "bad_response", "body too long");
		return 1;
	}
	if (c->got < head_len + clen)
		return 0;
	int keep = !(header_value(c->buf, head_len, "connection", tmp, sizeof tmp) && strcasecmp(tmp, "close") == 0);
	header_value(c->buf, head_len, "x-snowflake-node", node, sizeof node);
	for (char *q = node; *q; q++)
		if (*q == ' ')
			*q = '_';
	char *body = c->buf + head_len;
	body[clen] = '\0';
	int64_t t = mono_us();
	if (status == 200) {
		char *e;
		errno = 0;
		unsigned long long id = strtoull(body, &e, 10);
		if (errno || e == body || (*e != '\n' && *e != '\0') || id == 0) {
			fail(c, idx, "bad_response", "200 without an ID");
			return 1;
		}
		fprintf(out, "I %lld %lld %d %llu %s\n", (long long)c->attempt_start, (long long)t, idx, id, node);
		n_ids++;
	} else {
		char code[64] = "-";
		char *p = strstr(body, "\"error\":\"");
		if (p) {
			p += 9;
			size_t n = strcspn(p, "\"");
			if (n >= sizeof code)
				n = sizeof code - 1;
			memcpy(code, p, n);
			code[n] = '\0';
		}
		fprintf(out, "E %lld %lld %d http %d:%s\n", (long long)c->attempt_start, (long long)t, idx, status,
		        code);
		n_errors++;
		/* a refusal is a failure like any other: back off, new connection */
		conn_close(c);
		c->st = ST_IDLE;
		c->next_start = t + backoff_us;
		return 1;
	}
	/* leftover bytes would be a pipelining bug: we never pipeline */
	c->got = 0;
	if (!keep)
		conn_close(c);
	c->st = ST_IDLE;
	c->next_start = c->attempt_start + interval_us;
	if (c->next_start < t)
		c->next_start = t;
	return 1;
}

static void on_ready(struct conn *c, int idx, short rev)
{
	if (c->st == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err) {
			fail(c, idx, errno_kind_connect(err), strerror(err));
			return;
		}
		c->st = ST_SENDING;
		c->deadline = mono_us() + read_timeout_us;
	}
	if (c->st == ST_SENDING) {
		ssize_t n = send(c->fd, req_text + c->sent, req_len - c->sent, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			int e = errno;
			fail(c, idx, (e == ECONNRESET || e == EPIPE) ? "reset" : "connect_error", strerror(e));
			return;
		}
		c->sent += (size_t)n;
		if (c->sent == req_len)
			c->st = ST_READING;
		return;
	}
	if (c->st == ST_READING && (rev & (POLLIN | POLLHUP | POLLERR))) {
		for (;;) {
			ssize_t n = recv(c->fd, c->buf + c->got, BUF_SIZE - 1 - c->got, 0);
			if (n > 0) {
				c->got += (size_t)n;
				if (try_complete(c, idx))
					return;
				continue;
			}
			if (n == 0) {
				fail(c, idx, "closed", c->got ? "mid-response" : "before response");
				return;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			int e = errno;
			fail(c, idx, e == ECONNRESET ? "reset" : "connect_error", strerror(e));
			return;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: drill-client -a ADDR -p PORT -o FILE -d DURATION_MS [-c CONNS] [-r RATE_PER_CONN]\n"
	                "                    [-n MAX] [-T CONNECT_MS] [-t READ_MS] [-k BACKOFF_MS] [-l LABEL]\n"
	                "       drill-client now\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *path = NULL, *label = "client";
	int port = 0, nconns = 4, opt;
	long rate = 500;
	int64_t duration_us = 0;
	static struct conn conns[MAX_CONNS];
	static char req[256];

	if (argc == 2 && strcmp(argv[1], "now") == 0) {
		printf("%lld %lld\n", (long long)mono_us(), (long long)now_us(CLOCK_REALTIME));
		return 0;
	}
	while ((opt = getopt(argc, argv, "a:p:o:d:c:r:n:T:t:k:l:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'o': path = optarg; break;
		case 'd': duration_us = atoll(optarg) * 1000; break;
		case 'c': nconns = atoi(optarg); break;
		case 'r': rate = atol(optarg); break;
		case 'n': max_requests = atoll(optarg); break;
		case 'T': connect_timeout_us = atoll(optarg) * 1000; break;
		case 't': read_timeout_us = atoll(optarg) * 1000; break;
		case 'k': backoff_us = atoll(optarg) * 1000; break;
		case 'l': label = optarg; break;
		default: usage();
		}
	}
	if (!addr || !path || port <= 0 || port > 65535 || duration_us <= 0 || nconns < 1 || nconns > MAX_CONNS ||
	    rate < 0)
		usage();
	memset(&target, 0, sizeof target);
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &target.sin_addr) != 1)
		usage();
	snprintf(req, sizeof req, "GET /id HTTP/1.1\r\nHost: %s\r\nUser-Agent: drill-client\r\n\r\n", addr);
	req_text = req;
	req_len = strlen(req);
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
	fprintf(out, "# drill-client label=%s addr=%s port=%d conns=%d rate=%ld mono_us=%lld wall_us=%lld\n", label,
	        addr, port, nconns, rate, (long long)t0, (long long)now_us(CLOCK_REALTIME));
	for (int i = 0; i < nconns; i++) {
		conns[i].fd = -1;
		conns[i].st = ST_IDLE;
		/* spread the connections' first requests over one interval */
		conns[i].next_start = t0 + (interval_us * i) / nconns;
	}
	int64_t end = t0 + duration_us, last_flush = t0;
	struct pollfd pfd[MAX_CONNS];

	while (!stop_flag) {
		int64_t t = mono_us();
		if (t >= end)
			break;
		if (max_requests && n_attempts >= max_requests) {
			int busy = 0;
			for (int i = 0; i < nconns; i++)
				busy |= conns[i].st != ST_IDLE;
			if (!busy)
				break;
		}
		if (t - last_flush >= 500000) {
			fflush(out);
			last_flush = t;
		}
		int64_t wake = end;
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			if (c->st == ST_IDLE) {
				if (max_requests && n_attempts >= max_requests)
					continue;
				if (c->next_start <= t)
					start_attempt(c, i);
				else if (c->next_start < wake)
					wake = c->next_start;
			}
			if (c->st != ST_IDLE) {
				if (t >= c->deadline) {
					fail(c, i, c->st == ST_CONNECTING ? "connect_timeout" : "read_timeout",
					     c->st == ST_CONNECTING ? "no connection" : "no complete response");
					if (c->next_start < wake)
						wake = c->next_start;
				} else if (c->deadline < wake) {
					wake = c->deadline;
				}
			}
		}
		int n = 0;
		int map[MAX_CONNS];
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			if (c->st == ST_IDLE || c->fd < 0)
				continue;
			pfd[n].fd = c->fd;
			pfd[n].events = c->st == ST_READING ? POLLIN : POLLOUT;
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
				on_ready(&conns[map[k]], map[k], pfd[k].revents);
		}
	}
	for (int i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	fprintf(out, "# end attempts=%lld ids=%lld errors=%lld mono_us=%lld\n", n_attempts, n_ids, n_errors,
	        (long long)mono_us());
	fclose(out);
	return 0;
}
