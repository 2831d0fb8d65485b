/*
 * tests/http/loadgen.c: a keep-alive HTTP/1.1 load client for the ID service, checking as it goes.
 *
 *   http-loadgen -p PORT [-c CONNS=32] [-n IDS] [-d SECONDS] [-t MAX_SECONDS=90] [-m mixed|small|id]
 *                [-o DIR] [-r] [-k] [-w WORKER_BITS=10] [-s SEQUENCE_BITS=12]
 *
 * CONNS threads, one keep-alive connection each (reopened when the server closes it). Each sends
 * requests back to back: -m id: GET /id only; -m mixed: a rotation of /id (text and JSON) and
 * /ids?count=K (K from 1 to 4096, text and JSON); -m small: the same with K from 1 to 64. Stops when IDS IDs were received (-n), or SECONDS
 * passed (-d), and in any case after MAX_SECONDS (-t) (a stop by -t is reported as "timed_out").
 *
 * Checks, per response: status 200; a well-formed response (status line, headers, Content-Length
 * body); the IDs in it are decimal, strictly increasing, as many as asked; X-Snowflake-Worker equals
 * their worker and X-Snowflake-Node is present. Per connection: the IDs of one worker are strictly
 * increasing in the order received ("per-worker order").
 *
 * Failures are counted, never retried, except with -r: a request that got no byte of answer on a
 * reused keep-alive connection that the server closed (the race every HTTP client retries for
 * idempotent requests) is sent again on a new connection and counted as "retried".
 * -k: keep going after connection errors (reconnect, 20 ms apart): for kill/restart tests.
 * -R RATE: at most RATE requests per second over all connections (paced per connection).
 *
 * -o DIR: every ID received is written to DIR/conn-N.ids, one a line, in the order received.
 * Prints one line:
 *   SUMMARY ids=N requests=N ok=N non200=N bad=N conn_errors=N retried=N order_violations=N
 *           header_mismatch=N elapsed_ms=N ids_per_s=N req_per_s=N timed_out=0|1 workers=W,W codes=C:N,...
 * and "FIRST_ERROR ..." lines for the first few failures. Exit status 0 when nothing failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (512 * 1024)
#define MAX_WORKERS 65536

static int opt_port, opt_conns = 32, opt_max_s = 90, opt_retry, opt_keep_going;
static double opt_rate; /* requests per second over all connections; 0 = as fast as possible */
static long long opt_ids, opt_duration_ms;
static const char *opt_mode = "mixed", *opt_dir;
static int opt_wbits = 10, opt_sbits = 12;

static atomic_llong total_ids, total_requests, total_ok, total_non200, total_bad, total_conn_errors,
	total_retried, total_order, total_hdr;
static atomic_int stop_flag, timed_out;
static atomic_llong codes[600];
static atomic_uchar workers_seen[MAX_WORKERS];
static atomic_int errors_printed;
static long long t_start_ms;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* the first few failures of each kind are printed: 0 connection, 1 status, 2 content, 3 order, 4 headers */
static atomic_int printed_kind[5];
static void first_error_k(int kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void first_error_k(int kind, const char *fmt, ...)
{
	if (atomic_fetch_add(&printed_kind[kind], 1) >= 5)
		return;
	atomic_fetch_add(&errors_printed, 1);
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&print_lock);
	printf("FIRST_ERROR t=%lldms ", now_ms() - t_start_ms);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
	va_end(ap);
}

struct req {
	const char *path;
	int json;
	int count; /* IDs expected */
};

static const struct req mixed[] = {
	{ "/id", 0, 1 }, { "/ids?count=1000", 0, 1000 }, { "/id", 1, 1 }, { "/id", 0, 1 },
	{ "/ids?count=64", 1, 64 }, { "/id", 0, 1 }, { "/ids?count=4096", 0, 4096 }, { "/id", 0, 1 },
	{ "/ids?count=1", 0, 1 }, { "/id", 1, 1 }, { "/ids?count=2048", 1, 2048 }, { "/id", 0, 1 },
	{ "/ids?count=7", 0, 7 }, { "/id", 0, 1 }, { "/ids?count=500", 0, 500 }, { "/id", 0, 1 },
};
static const struct req small[] = {
	{ "/id", 0, 1 }, { "/ids?count=16", 0, 16 }, { "/id", 1, 1 }, { "/ids?count=3", 1, 3 },
	{ "/id", 0, 1 }, { "/ids?count=64", 0, 64 }, { "/id", 0, 1 }, { "/ids?count=1", 0, 1 },
};
static const struct req only_id[] = { { "/id", 0, 1 } };

struct conn {
	int idx;
	int fd;
	int used; /* requests answered on this connection */
	char *buf;
	size_t len;
	FILE *out;
	unsigned long long *last; /* per worker, last ID seen on this connection */
};

static int do_connect(struct conn *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	c->fd = fd;
	c->used = 0;
	c->len = 0;
	return 0;
}

static void drop(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* reads until the buffer holds at least `need` bytes; 1 ok, 0 EOF, -1 error */
static int fill(struct conn *c, size_t need)
{
	while (c->len < need) {
		if (c->len >= BUF_SIZE)
			return -1;
		ssize_t n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->len += (size_t)n;
	}
	return 1;
}

static const char *find_crlf2(const char *b, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n')
			return b + i;
	return NULL;
}

static int header_value(const char *head, size_t hlen, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	const char *p = head, *end = head + hlen;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			size_t n = (size_t)(ve - v);
			if (n >= outsz)
				n = outsz - 1;
			memcpy(out, v, n);
			out[n] = 0;
			return 1;
		}
		p = eol + 1;
	}
	return 0;
}

enum { RES_OK, RES_NON200, RES_BAD, RES_CONN, RES_RETRY };

/* one request/response; returns R_* */
static int exchange(struct conn *c, const struct req *rq)
{
	char reqbuf[256];
	int rl = snprintf(reqbuf, sizeof reqbuf, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", rq->path,
			  rq->json ? "Accept: application/json\r\n" : "");
	int reused = c->used > 0;
	size_t off = 0;
	while (off < (size_t)rl) {
		ssize_t n = send(c->fd, reqbuf + off, (size_t)rl - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (reused && opt_retry && (errno == EPIPE || errno == ECONNRESET))
				return RES_RETRY;
			first_error_k(0, "conn %d: send: %s", c->idx, strerror(errno));
			return RES_CONN;
		}
		off += (size_t)n;
	}
	/* headers */
	const char *hend;
	for (;;) {
		hend = c->len ? find_crlf2(c->buf, c->len) : NULL;
		if (hend)
			break;
		size_t before = c->len;
		int f = fill(c, c->len + 1);
		if (f <= 0) {
			int e = errno;
			if (before == 0 && reused && opt_retry && (f == 0 || e == ECONNRESET))
				return RES_RETRY;
			first_error_k(0, "conn %d: %s while reading the response to %s (%zu bytes read, reused=%d)", c->idx,
				    f == 0 ? "EOF" : strerror(e), rq->path, before, reused);
			return RES_CONN;
		}
	}
	size_t hlen = (size_t)(hend - c->buf) + 4;
	int status = 0;
	if (c->len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0 || sscanf(c->buf + 9, "%3d", &status) != 1) {
		first_error_k(2, "conn %d: bad status line", c->idx);
		return RES_BAD;
	}
	char v[128];
	if (!header_value(c->buf, hlen, "content-length", v, sizeof v)) {
		first_error_k(2, "conn %d: no content-length (status %d)", c->idx, status);
		return RES_BAD;
	}
	size_t clen = (size_t)strtoull(v, NULL, 10);
	char wbuf[32] = "", nbuf[128] = "", cbuf[64] = "";
	int has_w = header_value(c->buf, hlen, "x-snowflake-worker", wbuf, sizeof wbuf);
	int has_n = header_value(c->buf, hlen, "x-snowflake-node", nbuf, sizeof nbuf);
	int close_after = header_value(c->buf, hlen, "connection", cbuf, sizeof cbuf) && strcasestr(cbuf, "close");
	if (hlen + clen > BUF_SIZE) {
		first_error_k(2, "conn %d: body too large (%zu)", c->idx, clen);
		return RES_BAD;
	}
	int f = fill(c, hlen + clen);
	if (f <= 0) {
		first_error_k(0, "conn %d: %s in the body", c->idx, f == 0 ? "EOF" : strerror(errno));
		return RES_CONN;
	}
	if (status >= 0 && status < 600)
		atomic_fetch_add(&codes[status], 1);
	c->used++;
	const char *body = c->buf + hlen;
	int rc = RES_OK;
	if (status != 200) {
		first_error_k(1, "conn %d: %s -> status %d: %.*s", c->idx, rq->path, status, (int)(clen > 200 ? 200 : clen),
			    body);
		rc = RES_NON200;
	} else {
		/* the IDs: every run of digits in the body (text lines, or JSON strings) */
		int n = 0, worker = -1;
		unsigned long long prev = 0;
		const char *p = body, *end = body + clen;
		while (p < end) {
			if (*p < '0' || *p > '9') {
				p++;
				continue;
			}
			unsigned long long id = 0;
			int digits = 0;
			while (p < end && *p >= '0' && *p <= '9') {
				id = id * 10 + (unsigned long long)(*p - '0');
				p++;
				digits++;
			}
			if (digits > 19 || id > 0x7fffffffffffffffULL) {
				rc = RES_BAD;
				break;
			}
			int w = (int)((id >> opt_sbits) & ((1ULL << opt_wbits) - 1));
			if (n > 0 && id <= prev) {
				first_error_k(2, "conn %d: IDs of one response not increasing: %llu after %llu", c->idx, id, prev);
				rc = RES_BAD;
			}
			if (worker < 0)
				worker = w;
			else if (w != worker) {
				first_error_k(2, "conn %d: one response holds IDs of workers %d and %d", c->idx, worker, w);
				rc = RES_BAD;
			}
			if (c->last[w] && id <= c->last[w]) {
				atomic_fetch_add(&total_order, 1);
				first_error_k(3, "conn %d: per-worker order: %llu after %llu (worker %d)", c->idx, id, c->last[w], w);
			}
			c->last[w] = id;
			atomic_store(&workers_seen[w], 1);
			if (c->out)
				fprintf(c->out, "%llu\n", id);
			prev = id;
			n++;
		}
		if (n != rq->count) {
			first_error_k(2, "conn %d: %s gave %d IDs", c->idx, rq->path, n);
			rc = RES_BAD;
		}
		if (!has_w || !has_n || atoi(wbuf) != worker) {
			atomic_fetch_add(&total_hdr, 1);
			first_error_k(4, "conn %d: X-Snowflake-Worker '%s' (IDs of worker %d), node '%s'", c->idx, wbuf, worker,
				    nbuf);
			rc = RES_BAD;
		}
		atomic_fetch_add(&total_ids, n);
	}
	/* keep what follows (nothing, without pipelining) */
	memmove(c->buf, c->buf + hlen + clen, c->len - hlen - clen);
	c->len -= hlen + clen;
	if (close_after)
		drop(c);
	return rc;
}

static int should_stop(void)
{
	if (atomic_load(&stop_flag))
		return 1;
	long long el = now_ms() - t_start_ms;
	if (el >= (long long)opt_max_s * 1000) {
		atomic_store(&timed_out, 1);
		atomic_store(&stop_flag, 1);
		return 1;
	}
	if (opt_duration_ms && el >= opt_duration_ms) {
		atomic_store(&stop_flag, 1);
		return 1;
	}
	if (opt_ids && atomic_load(&total_ids) >= opt_ids) {
		atomic_store(&stop_flag, 1);
		return 1;
	}
	return 0;
}

static void *run(void *arg)
{
	struct conn *c = arg;
	const struct req *rot = mixed;
	size_t nrot = sizeof mixed / sizeof mixed[0];
	if (strcmp(opt_mode, "id") == 0) {
		rot = only_id;
		nrot = 1;
	} else if (strcmp(opt_mode, "small") == 0) {
		rot = small;
		nrot = sizeof small / sizeof small[0];
	}
	size_t i = (size_t)c->idx * 5;
	/* pacing: this connection's requests at t0 + k * interval */
	long long interval_us = opt_rate > 0 ? (long long)(1e6 * opt_conns / opt_rate) : 0;
	long long next_us = now_ms() * 1000 + (interval_us * c->idx) / opt_conns;
	while (!should_stop()) {
		if (interval_us) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			long long now_us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			if (next_us > now_us)
				usleep((useconds_t)(next_us - now_us));
			next_us += interval_us;
		}
		if (c->fd < 0 && do_connect(c) < 0) {
			atomic_fetch_add(&total_conn_errors, 1);
			first_error_k(0, "conn %d: connect: %s", c->idx, strerror(errno));
			if (!opt_keep_going)
				break;
			usleep(20000);
			continue;
		}
		const struct req *rq = &rot[i % nrot];
		atomic_fetch_add(&total_requests, 1);
		int rc = exchange(c, rq);
		switch (rc) {
		case RES_OK:
			atomic_fetch_add(&total_ok, 1);
			i++;
			break;
		case RES_RETRY:
			atomic_fetch_add(&total_retried, 1);
			atomic_fetch_sub(&total_requests, 1);
			drop(c);
			break; /* same request again, on a new connection */
		case RES_NON200:
			atomic_fetch_add(&total_non200, 1);
			i++;
			break;
		case RES_BAD:
			atomic_fetch_add(&total_bad, 1);
			drop(c);
			i++;
			break;
		default:
			atomic_fetch_add(&total_conn_errors, 1);
			drop(c);
			i++;
			if (!opt_keep_going)
				goto out;
			usleep(20000);
		}
	}
out:
	drop(c);
	return NULL;
}

int main(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "p:c:n:d:t:m:o:rkw:s:R:")) != -1) {
		switch (o) {
		case 'p': opt_port = atoi(optarg); break;
		case 'c': opt_conns = atoi(optarg); break;
		case 'n': opt_ids = atoll(optarg); break;
		case 'd': opt_duration_ms = (long long)(atof(optarg) * 1000); break;
		case 't': opt_max_s = atoi(optarg); break;
		case 'm': opt_mode = optarg; break;
		case 'o': opt_dir = optarg; break;
		case 'r': opt_retry = 1; break;
		case 'k': opt_keep_going = 1; break;
		case 'w': opt_wbits = atoi(optarg); break;
		case 's': opt_sbits = atoi(optarg); break;
		case 'R': opt_rate = atof(optarg); break;
		default:
			fprintf(stderr, "usage: %s -p PORT [-c CONNS] [-n IDS] [-d S] [-t MAX_S] [-m mixed|small|id] [-o DIR] [-r] [-k] [-R RATE]\n",
				argv[0]);
			return 2;
		}
	}
	if (opt_port <= 0 || opt_conns <= 0 || opt_conns > 1024 || opt_wbits + opt_sbits > 40 ||
	    (1 << opt_wbits) > MAX_WORKERS) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	struct conn *cs = calloc((size_t)opt_conns, sizeof *cs);
	pthread_t *th = calloc((size_t)opt_conns, sizeof *th);
	for (int i = 0; i < opt_conns; i++) {
		cs[i].idx = i;
		cs[i].fd = -1;
		cs[i].buf = malloc(BUF_SIZE);
		cs[i].last = calloc((size_t)1 << opt_wbits, sizeof(unsigned long long));
		if (opt_dir) {
			char path[4096];
			snprintf(path, sizeof path, "%s/conn-%d.ids", opt_dir, i);
			cs[i].out = fopen(path, "w");
			if (!cs[i].out) {
				perror(path);
				return 2;
			}
			setvbuf(cs[i].out, NULL, _IOFBF, 1 << 20);
		}
	}
	t_start_ms = now_ms();
	for (int i = 0; i < opt_conns; i++)
		pthread_create(&th[i], NULL, run, &cs[i]);
	for (int i = 0; i < opt_conns; i++)
		pthread_join(th[i], NULL);
	long long el = now_ms() - t_start_ms;
	for (int i = 0; i < opt_conns; i++)
		if (cs[i].out)
			fclose(cs[i].out);
	long long ids = atomic_load(&total_ids), reqs = atomic_load(&total_requests);
	printf("SUMMARY ids=%lld requests=%lld ok=%lld non200=%lld bad=%lld conn_errors=%lld retried=%lld "
	       "order_violations=%lld header_mismatch=%lld elapsed_ms=%lld ids_per_s=%lld req_per_s=%lld timed_out=%d",
	       ids, reqs, (long long)atomic_load(&total_ok), (long long)atomic_load(&total_non200),
	       (long long)atomic_load(&total_bad), (long long)atomic_load(&total_conn_errors),
	       (long long)atomic_load(&total_retried), (long long)atomic_load(&total_order),
	       (long long)atomic_load(&total_hdr), el, el > 0 ? ids * 1000 / el : 0, el > 0 ? reqs * 1000 / el : 0,
	       atomic_load(&timed_out));
	printf(" workers=");
	int first = 1;
	for (int w = 0; w < (1 << opt_wbits); w++)
		if (atomic_load(&workers_seen[w])) {
			printf("%s%d", first ? "" : ",", w);
			first = 0;
		}
	printf(" codes=");
	first = 1;
	for (int s = 0; s < 600; s++)
		if (atomic_load(&codes[s])) {
			printf("%s%d:%lld", first ? "" : ",", s, (long long)atomic_load(&codes[s]));
			first = 0;
		}
	printf("\n");
	int failed = atomic_load(&total_non200) || atomic_load(&total_bad) || atomic_load(&total_conn_errors) ||
		     atomic_load(&total_order) || atomic_load(&timed_out);
	return failed ? 1 : 0;
}
