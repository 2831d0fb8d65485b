/*
 * tests/http/connflood.c: connection-level hostility against the ID service, with a real caller
 * measured beside it (issue 12 point 5: tests/http/09-connections_test.sh, tests/bench/hostile_bench.sh).
 *
 *   connflood -p PORT [-m idle|slowloris|none] [-c CONNS=10000] [-a ADDRS=50] [-b BASE=127.77.0.1]
 *             [-d SECONDS=8] [-u RAMP_SECONDS=10] [-t MAX_SECONDS=60] [-i DRIBBLE_MS=1000]
 *             [-R REQS_PER_S=500] [-k NEW_CONN_EVERY=50] [-s CALLER_ADDR=127.0.0.1]
 *
 * The attackers: CONNS connections to 127.0.0.1:PORT from ADDRS source addresses (BASE, BASE+1, ...:
 * the kernel routes all of 127/8 to lo, so each is a different caller to HAProxy's stick table),
 * driven by one epoll loop. -m idle: connect and send nothing. -m slowloris: send a request line and
 * headers one byte every DRIBBLE_MS, never the blank line that ends them. Every connection the
 * server closes is opened again (after 100 ms when the server closed it within 1 s: a refusal loop
 * does not spin). -m none: no attacker (the baseline).
 *
 * The caller: once the attackers are open (all CONNS, or after RAMP_SECONDS), a thread from
 * CALLER_ADDR sends GET /id, one at a time on a keep-alive connection, REQS_PER_S a second (paced:
 * the service's per-address rate limit stays out of reach), for SECONDS; every NEW_CONN_EVERY-th
 * request goes on a new connection (0: never), so accepting new connections is measured too. Each
 * answer must be a 200 with a decimal ID as its body; anything else (another status, a reset, no
 * answer in 2 s) is an error. Latency: from the write of the request (or the connect, for a new
 * connection) to the last byte of the answer.
 *
 * Prints one line:
 *   CONNFLOOD mode=M target=N open_min=N open_avg=N open_max=N opened=N connect_failed=N
 *             server_closed=N got_408=N life_p50_ms=N life_max_ms=N open_age_max_ms=N
 *             requests=N ok=N errors=N new_conns=N p50_ms=F p99_ms=F max_ms=F elapsed_ms=N
 * (open_*: attacker connections established, sampled every 100 ms while the caller ran; life_*:
 * how long the connections the server closed had been open; open_age_max_ms: the oldest attacker
 * connection still open at the end) and "FIRST_ERROR ..." lines for the first few caller errors.
 * Exit status: 0 when every caller request succeeded, 1 when one failed, 2 on a usage or set-up error.
 * Bounded: everything stops after MAX_SECONDS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { MODE_NONE, MODE_IDLE, MODE_SLOWLORIS };
enum slot_state { S_WAIT, S_CONNECTING, S_OPEN };

struct slot {
	int fd;
	enum slot_state state;
	uint32_t src;          /* source address, host order */
	int64_t opened_ms;     /* connect() called */
	int64_t next_ms;       /* S_WAIT: reopen at; S_OPEN (slowloris): next byte at */
	size_t sent;           /* slowloris: bytes of the dribble sent */
};

static int opt_port, opt_conns = 10000, opt_addrs = 50, opt_dur_s = 8, opt_ramp_s = 10, opt_max_s = 60;
static int opt_dribble_ms = 1000, opt_new_every = 50;
static double opt_rate = 500;
static enum mode opt_mode = MODE_IDLE;
static uint32_t opt_base, opt_caller;

static atomic_int caller_go, caller_done;
static int64_t t_start_ms;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* a socket from SRC (host order) connecting to 127.0.0.1:opt_port; -1 on failure */
static int open_from(uint32_t src, int nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	int one = 1;
	/* the port is picked at connect(): per destination, so 10k sources never run out of ports */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(src) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)opt_port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------- the caller */

#define MAX_SAMPLES 1000000
static double *lat;
static long n_lat, c_requests, c_ok, c_errors, c_new_conns;
static int errors_printed;

static void caller_error(const char *fmt, const char *detail, long req)
{
	c_errors++;
	if (errors_printed++ < 5)
		printf("FIRST_ERROR request %ld: %s%s%s\n", req, fmt, detail ? ": " : "", detail ? detail : "");
}

/* one GET /id on *FD (opened first when -1); 0 when answered 200 with an ID */
static int caller_request(int *fd, long req, double *ms)
{
	static const char rq[] = "GET /id HTTP/1.1\r\nHost: edge\r\n\r\n";
	char buf[4096];
	double t0 = now_ms_f();
	if (*fd < 0) {
		*fd = open_from(opt_caller, 0);
		if (*fd < 0) {
			caller_error("connect", strerror(errno), req);
			return -1;
		}
		c_new_conns++;
	}
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(*fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (send(*fd, rq, sizeof rq - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof rq - 1)) {
		caller_error("send", strerror(errno), req);
		goto fail;
	}
	size_t have = 0;
	for (;;) {
		ssize_t n = recv(*fd, buf + have, sizeof buf - 1 - have, 0);
		if (n <= 0) {
			caller_error(n == 0 ? "closed before a full answer" : "recv", n == 0 ? NULL : strerror(errno), req);
			goto fail;
		}
		have += (size_t)n;
		buf[have] = 0;
		char *end = strstr(buf, "\r\n\r\n");
		if (!end) {
			if (have >= sizeof buf - 1) {
				caller_error("headers too long", NULL, req);
				goto fail;
			}
			continue;
		}
		char *cl = strcasestr(buf, "\r\ncontent-length:");
		if (!cl || cl > end) {
			caller_error("no Content-Length", NULL, req);
			goto fail;
		}
		size_t body_len = strtoul(cl + 17, NULL, 10), head = (size_t)(end + 4 - buf);
		if (head + body_len > sizeof buf - 1) {
			caller_error("body too long", NULL, req);
			goto fail;
		}
		if (have < head + body_len)
			continue;
		*ms = now_ms_f() - t0;
		if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0) {
			char line[64];
			snprintf(line, sizeof line, "%.*s", (int)strcspn(buf, "\r"), buf);
			caller_error("status", line, req);
			goto fail;
		}
		char *b = end + 4, *q;
		strtoull(b, &q, 10);
		if (q == b || *q != '\n' || (size_t)(q + 1 - b) != body_len) {
			caller_error("the body is not one ID", NULL, req);
			goto fail;
		}
		if (have != head + body_len) {
			caller_error("bytes after the answer", NULL, req);
			goto fail;
		}
		return 0;
	}
fail:
	close(*fd);
	*fd = -1;
	return -1;
}

static void *caller_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&caller_go))
		usleep(1000);
	int fd = -1;
	double gap_ms = 1000.0 / opt_rate, t_next = now_ms_f();
	double t_end = t_next + opt_dur_s * 1000.0, t_hard = (double)t_start_ms + opt_max_s * 1000.0;
	for (long req = 1; now_ms_f() < t_end && now_ms_f() < t_hard && n_lat < MAX_SAMPLES; req++) {
		if (opt_new_every > 0 && req % opt_new_every == 0 && fd >= 0) {
			close(fd);
			fd = -1;
		}
		double ms;
		c_requests++;
		if (caller_request(&fd, req, &ms) == 0) {
			c_ok++;
			lat[n_lat++] = ms;
		}
		t_next += gap_ms;
		double wait = t_next - now_ms_f();
		if (wait > 0)
			usleep((useconds_t)(wait * 1000));
		else if (wait < -1000)
			t_next = now_ms_f(); /* far behind (a stall): do not burst to catch up */
	}
	if (fd >= 0)
		close(fd);
	atomic_store(&caller_done, 1);
	return NULL;
}

/* ---------------------------------------------------------------- the attackers */

static struct slot *slots;
static int ep;
static long a_open, a_opened, a_connect_failed, a_server_closed, a_408;
static int64_t *lives;
static long n_lives, lives_cap;

/* the bytes a slowloris connection dribbles: a request whose headers never end */
static char dribble(size_t i)
{
	static const char head[] = "GET /id HTTP/1.1\r\nHost: edge\r\nX-Slow: ";
	if (i < sizeof head - 1)
		return head[i];
	return "abcdefghijklmnopqrstuvwxyz"[(i - (sizeof head - 1)) % 26];
}

static void slot_open(struct slot *s, int64_t now)
{
	s->fd = open_from(s->src, 1);
	s->sent = 0;
	s->opened_ms = now;
	if (s->fd < 0) {
		a_connect_failed++;
		s->state = S_WAIT;
		s->next_ms = now + 100;
		return;
	}
	a_opened++;
	s->state = S_CONNECTING;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = s };
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void slot_closed(struct slot *s, int64_t now, int by_server)
{
	if (s->state == S_OPEN)
		a_open--;
	if (by_server && s->state == S_OPEN) {
		a_server_closed++;
		if (n_lives == lives_cap) {
			lives_cap = lives_cap ? lives_cap * 2 : 65536;
			int64_t *p = realloc(lives, (size_t)lives_cap * sizeof *lives);
			if (p)
				lives = p;
			else
				lives_cap = n_lives; /* keep what we have */
		}
		if (n_lives < lives_cap)
			lives[n_lives++] = now - s->opened_ms;
	} else if (s->state == S_CONNECTING) {
		a_connect_failed++;
	}
	close(s->fd);
	s->fd = -1;
	s->state = S_WAIT;
	/* closed (or refused) at once: wait before trying again, so a refusal does not spin */
	s->next_ms = now - s->opened_ms < 1000 ? now + 100 : now;
}

static void slot_event(struct slot *s, uint32_t events, int64_t now)
{
	if (s->state == S_CONNECTING && (events & EPOLLOUT)) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			slot_closed(s, now, 0);
			return;
		}
		s->state = S_OPEN;
		a_open++;
		s->next_ms = now;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };
		epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		char buf[2048];
		ssize_t n;
		while ((n = recv(s->fd, buf, sizeof buf - 1, 0)) > 0) {
			buf[n] = 0;
			if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 408", 4) == 0)
				a_408++;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			slot_closed(s, now, 1);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: connflood -p PORT [-m idle|slowloris|none] [-c CONNS] [-a ADDRS] [-b BASE]"
			" [-d SECONDS] [-u RAMP_SECONDS] [-t MAX_SECONDS] [-i DRIBBLE_MS] [-R REQS_PER_S]"
			" [-k NEW_CONN_EVERY] [-s CALLER_ADDR]\n");
	exit(2);
}

static uint32_t parse_addr(const char *s)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
		fprintf(stderr, "connflood: %s is not a 127/8 address\n", s);
		exit(2);
	}
	return ntohl(a.s_addr);
}

/* room for every attacker, the caller and stdio; raises the hard limit too when allowed (root) */
static void raise_nofile(long need)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((long)rl.rlim_cur >= need)
		return;
	struct rlimit want = { (rlim_t)need, rl.rlim_max > (rlim_t)need ? rl.rlim_max : (rlim_t)need };
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	want.rlim_cur = want.rlim_max = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &want);
	fprintf(stderr, "connflood: RLIMIT_NOFILE is %ld, below the %ld this run needs\n", (long)rl.rlim_max, need);
	exit(2);
}

int main(int argc, char **argv)
{
	int o;
	opt_base = parse_addr("127.77.0.1");
	opt_caller = parse_addr("127.0.0.1");
	while ((o = getopt(argc, argv, "p:m:c:a:b:d:u:t:i:R:k:s:")) != -1) {
		switch (o) {
		case 'p': opt_port = atoi(optarg); break;
		case 'm':
			if (strcmp(optarg, "idle") == 0) opt_mode = MODE_IDLE;
			else if (strcmp(optarg, "slowloris") == 0) opt_mode = MODE_SLOWLORIS;
			else if (strcmp(optarg, "none") == 0) opt_mode = MODE_NONE;
			else usage();
			break;
		case 'c': opt_conns = atoi(optarg); break;
		case 'a': opt_addrs = atoi(optarg); break;
		case 'b': opt_base = parse_addr(optarg); break;
		case 'd': opt_dur_s = atoi(optarg); break;
		case 'u': opt_ramp_s = atoi(optarg); break;
		case 't': opt_max_s = atoi(optarg); break;
		case 'i': opt_dribble_ms = atoi(optarg); break;
		case 'R': opt_rate = atof(optarg); break;
		case 'k': opt_new_every = atoi(optarg); break;
		case 's': opt_caller = parse_addr(optarg); break;
		default: usage();
		}
	}
	if (opt_port <= 0 || opt_port > 65535 || opt_conns < 0 || opt_conns > 200000 || opt_addrs < 1 ||
	    opt_dur_s < 1 || opt_max_s < 1 || opt_dribble_ms < 1 || opt_rate <= 0 || opt_ramp_s < 0)
		usage();
	if (opt_mode == MODE_NONE)
		opt_conns = 0;
	raise_nofile(opt_conns + 64L);
	lat = malloc(MAX_SAMPLES * sizeof *lat);
	slots = calloc((size_t)opt_conns + 1, sizeof *slots);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!lat || !slots || ep < 0) {
		fprintf(stderr, "connflood: out of memory or epoll\n");
		return 2;
	}
	t_start_ms = now_ms();
	int64_t hard_end = t_start_ms + opt_max_s * 1000LL, ramp_end = t_start_ms + opt_ramp_s * 1000LL;
	for (int i = 0; i < opt_conns; i++) {
		slots[i].fd = -1;
		slots[i].state = S_WAIT;
		slots[i].src = opt_base + (uint32_t)(i % opt_addrs);
		slots[i].next_ms = t_start_ms + (int64_t)i / 500 * 10; /* ramp: 500 connects per 10 ms */
	}
	pthread_t th;
	if (pthread_create(&th, NULL, caller_main, NULL) != 0) {
		fprintf(stderr, "connflood: pthread_create\n");
		return 2;
	}
	long open_min = -1, open_max = 0, samples = 0;
	double open_sum = 0;
	int64_t next_sample = 0, next_scan = 0;
	struct epoll_event evs[1024];
	for (;;) {
		int64_t now = now_ms();
		if (now >= hard_end || atomic_load(&caller_done))
			break;
		if (!atomic_load(&caller_go) && (a_open >= opt_conns || now >= ramp_end)) {
			atomic_store(&caller_go, 1);
			next_sample = now;
		}
		if (atomic_load(&caller_go) && now >= next_sample) {
			open_min = open_min < 0 || a_open < open_min ? a_open : open_min;
			open_max = a_open > open_max ? a_open : open_max;
			open_sum += (double)a_open;
			samples++;
			next_sample = now + 100;
		}
		if (now >= next_scan) {
			for (int i = 0; i < opt_conns; i++) {
				struct slot *s = &slots[i];
				if (s->state == S_WAIT && now >= s->next_ms) {
					slot_open(s, now);
				} else if (opt_mode == MODE_SLOWLORIS && s->state == S_OPEN && now >= s->next_ms) {
					char c = dribble(s->sent);
					if (send(s->fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
						s->sent++;
					s->next_ms = now + opt_dribble_ms;
				}
			}
			next_scan = now + 10;
		}
		int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), 10);
		now = now_ms();
		for (int i = 0; i < n; i++)
			slot_event(evs[i].data.ptr, evs[i].events, now);
	}
	atomic_store(&caller_go, 1); /* the ramp never ended: the caller still runs (and ends) */
	pthread_join(th, NULL);
	int64_t end = now_ms(), oldest = 0;
	for (int i = 0; i < opt_conns; i++) {
		if (slots[i].state == S_OPEN && end - slots[i].opened_ms > oldest)
			oldest = end - slots[i].opened_ms;
		if (slots[i].fd >= 0)
			close(slots[i].fd);
	}
	qsort(lat, (size_t)n_lat, sizeof *lat, cmp_double);
	qsort(lives, (size_t)n_lives, sizeof *lives, cmp_i64);
	double p50 = n_lat ? lat[(n_lat - 1) / 2] : 0, p99 = n_lat ? lat[(long)((double)(n_lat - 1) * 0.99)] : 0;
	double mx = n_lat ? lat[n_lat - 1] : 0;
	static const char *names[] = { "none", "idle", "slowloris" };
	printf("CONNFLOOD mode=%s target=%d open_min=%ld open_avg=%.0f open_max=%ld opened=%ld connect_failed=%ld"
	       " server_closed=%ld got_408=%ld life_p50_ms=%lld life_max_ms=%lld open_age_max_ms=%lld"
	       " requests=%ld ok=%ld errors=%ld new_conns=%ld p50_ms=%.3f p99_ms=%.3f max_ms=%.3f elapsed_ms=%lld\n",
	       names[opt_mode], opt_conns, open_min < 0 ? 0 : open_min, samples ? open_sum / (double)samples : 0.0,
	       open_max, a_opened, a_connect_failed, a_server_closed, a_408,
	       (long long)(n_lives ? lives[(n_lives - 1) / 2] : 0), (long long)(n_lives ? lives[n_lives - 1] : 0),
	       (long long)oldest, c_requests, c_ok, c_errors, c_new_conns, p50, p99, mx,
	       (long long)(end - t_start_ms));
	return c_errors == 0 && c_requests > 0 ? 0 : 1;
}
