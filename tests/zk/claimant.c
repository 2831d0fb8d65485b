/*
 * A lease client for the ZooKeeper tests: starts a generator and a lease,
 * mints at a steady pace and reports on stdout, one event a line:
 *
 *   START <mono_ms> <wall_ms> <pid>
 *   STATE <mono_ms> <wall_ms> <state> <worker> <reason> <detail...>
 *   FENCE <mono_ms> <fence_deadline_mono_ms>   (each change of the published fence)
 *   ID <mono_start_ns> <mono_end_ns> <id>      (with --print-ids; else one SUMMARY a second)
 *   REFUSE <mono_ms> <code>                    (each change of refusal code)
 *   SUMMARY <mono_ms> <issued> <refused> <first_id> <last_id>
 *   LOG <level> <line>
 *   EXIT <mono_ms> <issued>
 *
 * Options: --hosts H --root R --state DIR --timeout MS --margin MS --node NAME
 *          --duration MS (0 = until SIGTERM/SIGINT) --every US (pause between mints)
 *          --print-ids --worker-bits N --start-bound MS --reclaim MS --exit-on-mint
 *          --auth-file FILE --require-acl
 *          --print-mono (print CLOCK_MONOTONIC ms and exit)
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sf_lease.h"
#include "snowflake.h"

static volatile sig_atomic_t stop_signal;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ms(void) { return sf_clock_mono_ns(NULL) / 1000000; }
static int64_t wall_ms(void) { return sf_clock_wall_ns(NULL) / 1000000; }

static void on_signal(int sig)
{
	(void)sig;
	stop_signal = 1;
}

static void log_line(void *ctx, int level, const char *line)
{
	(void)ctx;
	pthread_mutex_lock(&out_lock);
	printf("LOG %d %s\n", level, line);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static int64_t arg_int(const char *s, const char *name)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "claimant: %s needs an integer, got '%s'\n", name, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	sf_lease_config cfg;
	sf_layout layout = SF_LAYOUT_DEFAULT;
	int64_t duration_ms = 0, every_us = 1000;
	bool print_ids = false, exit_on_mint = false;
	sf_gen *gen;
	sf_lease *lease;
	int rc;

	sf_lease_config_defaults(&cfg);
	cfg.session_timeout_ms = 2000;
	cfg.margin_ms = 500;
	cfg.reclaim_delay_ms = 1000;
	cfg.log = log_line;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--print-mono") == 0) {
			printf("%" PRId64 "\n", mono_ms());
			return 0;
		} else if (strcmp(a, "--print-ids") == 0) {
			print_ids = true;
			continue;
		} else if (strcmp(a, "--exit-on-mint") == 0) {
			exit_on_mint = true;
			continue;
		} else if (strcmp(a, "--require-acl") == 0) {
			cfg.require_acl = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "claimant: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--hosts") == 0) cfg.zk_hosts = v;
		else if (strcmp(a, "--root") == 0) cfg.root = v;
		else if (strcmp(a, "--state") == 0) cfg.state_dir = v;
		else if (strcmp(a, "--node") == 0) cfg.node_name = v;
		else if (strcmp(a, "--timeout") == 0) cfg.session_timeout_ms = arg_int(v, a);
		else if (strcmp(a, "--margin") == 0) cfg.margin_ms = arg_int(v, a);
		else if (strcmp(a, "--start-bound") == 0) cfg.start_bound_ms = arg_int(v, a);
		else if (strcmp(a, "--reclaim") == 0) cfg.reclaim_delay_ms = arg_int(v, a);
		else if (strcmp(a, "--auth-file") == 0) cfg.auth_file = v;
		else if (strcmp(a, "--duration") == 0) duration_ms = arg_int(v, a);
		else if (strcmp(a, "--every") == 0) every_us = arg_int(v, a);
		else if (strcmp(a, "--worker-bits") == 0) {
			layout.worker_bits = (unsigned)arg_int(v, a);
			layout.sequence_bits = 63 - layout.timestamp_bits - layout.worker_bits;
		} else {
			fprintf(stderr, "claimant: unknown option %s\n", a);
			return 2;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if ((rc = sf_gen_new(&layout, NULL, &gen)) != SF_OK) {
		fprintf(stderr, "claimant: generator: %s\n", sf_code_name(rc));
		return 1;
	}
	emit("START %" PRId64 " %" PRId64 " %ld\n", mono_ms(), wall_ms(), (long)getpid());
	if ((rc = sf_lease_start(gen, &cfg, &lease)) != SF_OK) {
		fprintf(stderr, "claimant: lease: %s\n", sf_code_name(rc));
		return 1;
	}

	sf_lease_state last_state = (sf_lease_state)-1;
	int last_reason = 1, last_refusal = 1;
	int32_t last_worker = -2;
	int64_t last_fence = -1, issued = 0, refused = 0, first_id = 0, last_id = 0;
	int64_t next_summary = mono_ms() + 1000, started = mono_ms();

	while (!stop_signal && (duration_ms == 0 || mono_ms() - started < duration_ms)) {
		sf_lease_status st;
		int64_t fence_ns, id;
		int32_t worker;
		int code;

		sf_lease_status_get(lease, &st);
		if (st.state != last_state || st.worker != last_worker || st.reason != last_reason) {
			emit("STATE %" PRId64 " %" PRId64 " %s %" PRId32 " %s %s\n", mono_ms(), wall_ms(),
			     sf_lease_state_name(st.state), st.worker, sf_code_name(st.reason), st.detail);
			last_state = st.state;
			last_worker = st.worker;
			last_reason = st.reason;
		}
		sf_gen_grant_get(gen, &worker, &fence_ns, &code);
		if (fence_ns / 1000000 != last_fence) {
			last_fence = fence_ns / 1000000;
			emit("FENCE %" PRId64 " %" PRId64 "\n", mono_ms(), last_fence);
		}

		int64_t t0 = sf_clock_mono_ns(NULL);
		rc = sf_next_spin(gen, &id, NULL, 2000000);
		int64_t t1 = sf_clock_mono_ns(NULL);

		if (rc == SF_OK) {
			if (!issued)
				first_id = id;
			issued++;
			last_id = id;
			if (print_ids)
				emit("ID %" PRId64 " %" PRId64 " %" PRId64 "\n", t0, t1, id);
			if (exit_on_mint)
				break;
			last_refusal = SF_OK;
		} else {
			refused++;
			if (rc != last_refusal) {
				emit("REFUSE %" PRId64 " %s\n", mono_ms(), sf_code_name(rc));
				last_refusal = rc;
			}
		}
		if (mono_ms() >= next_summary) {
			emit("SUMMARY %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", mono_ms(),
			     issued, refused, first_id, last_id);
			next_summary += 1000;
		}
		if (every_us > 0)
			usleep((useconds_t)every_us);
	}
	emit("SUMMARY %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", mono_ms(), issued,
	     refused, first_id, last_id);
	sf_lease_stop(lease);
	emit("EXIT %" PRId64 " %" PRId64 "\n", mono_ms(), issued);
	sf_gen_free(gen);
	return 0;
}
