/*
 * The TSC clock (core/sf_tsc.c) against the kernel's clocks: readings and
 * minted timestamps agree with clock_gettime, never go back; wall-clock steps
 * reach the generator within milliseconds; a kernel clock that slows down
 * against the TSC turns the TSC clock off. The steps run in a copy of this
 * program under libfaketime (its clock_gettime reads an offset from a file),
 * the only way to step a clock without touching the machine's.
 *
 * On a machine whose kernel does not use the TSC the program checks that the
 * fallback is reported with a reason, and that minting works on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snowflake.h"
#include "sf_internal.h"
#include "check.h"

#define US 1000LL
#define FAKETIME_DEFAULT "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

static int64_t kernel_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static sf_gen *real_gen(void)
{
	sf_layout l = SF_LAYOUT_DEFAULT;
	sf_gen *gen;

	if (sf_gen_new(&l, NULL, &gen) != SF_OK)
		exit(1);
	sf_gen_ceiling_set(gen, SF_CEILING_LOCAL, INT64_MAX);
	sf_gen_grant(gen, 7, kernel_ns(CLOCK_MONOTONIC) + 3600LL * 1000 * TEST_MS);
	return gen;
}

static int64_t id_unix_ms(int64_t id)
{
	sf_layout l = SF_LAYOUT_DEFAULT;
	sf_decoded d;

	sf_id_decode(&l, id, &d);
	return d.timestamp_ms;
}

/* readings bracketed by clock_gettime, across many anchors (one a ms) */
static void check_agreement(void)
{
	const int64_t until = kernel_ns(CLOCK_MONOTONIC) + 60 * TEST_MS;
	int64_t worst_behind = 0, worst_ahead = 0, worst_back = 0, prev_mono = 0;
	long readings = 0, outside = 0, fallbacks = 0;

	while (kernel_ns(CLOCK_MONOTONIC) < until) {
		for (int i = 0; i < 64; i++, readings++) {
			const int64_t w1 = kernel_ns(CLOCK_REALTIME), m1 = kernel_ns(CLOCK_MONOTONIC);
			int64_t wall, mono;

			if (!sf_tsc_now(&wall, &mono)) {
				fallbacks++;
				continue;
			}
			const int64_t w2 = kernel_ns(CLOCK_REALTIME), m2 = kernel_ns(CLOCK_MONOTONIC);

			if (w1 - wall > worst_behind) worst_behind = w1 - wall;
			if (m1 - mono > worst_behind) worst_behind = m1 - mono;
			if (wall - w2 > worst_ahead) worst_ahead = wall - w2;
			if (mono - m2 > worst_ahead) worst_ahead = mono - m2;
			outside += wall < w1 - 5 * US || wall > w2 + 2 * US || mono < m1 - 5 * US || mono > m2 + 2 * US;
			if (prev_mono && prev_mono - mono > worst_back)
				worst_back = prev_mono - mono;
			prev_mono = mono;
		}
	}
	printf("# %ld readings over 60 ms: at worst %lld ns behind and %lld ns ahead of clock_gettime, "
	       "%lld ns back; %ld fell back to clock_gettime\n", readings, (long long)worst_behind,
	       (long long)worst_ahead, (long long)worst_back, fallbacks);
	CHECK(outside == 0, "every TSC reading lies between the clock_gettime reads around it "
	      "(-5 us .. +2 us; %ld outside)", outside);
	CHECK(worst_back <= 2 * US, "the TSC clock never goes back more than the generator's slack (%lld ns)",
	      (long long)worst_back);
	CHECK(fallbacks < readings / 100, "readings rarely fall back to clock_gettime (%ld of %ld)",
	      fallbacks, readings);
}

/* minted timestamps against clock_gettime */
static void check_mints(const char *what)
{
	sf_gen *gen = real_gen();
	const int64_t until = kernel_ns(CLOCK_MONOTONIC) + 40 * TEST_MS;
	long minted = 0, outside = 0, failed = 0;
	int64_t prev = 0;
	long order = 0;

	while (kernel_ns(CLOCK_MONOTONIC) < until) {
		const int64_t before_ms = sf_floor_div(kernel_ns(CLOCK_REALTIME) - 5 * US, TEST_MS);
		int64_t id;

		if (sf_next_spin(gen, &id, NULL, 2 * TEST_MS) != SF_OK) {
			failed++;
			continue;
		}
		const int64_t after_ms = sf_floor_div(kernel_ns(CLOCK_REALTIME) + 2 * US, TEST_MS);
		const int64_t ms = id_unix_ms(id);

		minted++;
		outside += ms < before_ms || ms > after_ms;
		order += id <= prev;
		prev = id;
	}
	CHECK(failed == 0, "%s: every mint succeeds (%ld failed)", what, failed);
	CHECK(minted > 1000 && outside == 0, "%s: each of %ld IDs carries the millisecond of clock_gettime "
	      "around its mint (%ld outside)", what, minted, outside);
	CHECK(order == 0, "%s: strictly increasing", what);
	sf_gen_free(gen);
}

/* ---- under libfaketime -------------------------------------------------- */

static const char *offset_file;

static void step_to(const char *offset)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.tmp", offset_file);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", offset) < 0 || fclose(f) != 0 || rename(tmp, offset_file) != 0) {
		perror("faketime offset file");
		exit(1);
	}
}

/* mints until `want` (bounded by 300 ms of monotonic time); the time it took */
static int64_t mint_until(sf_gen *gen, int want, int64_t *id, sf_report *report)
{
	const int64_t t0 = kernel_ns(CLOCK_MONOTONIC);

	while (kernel_ns(CLOCK_MONOTONIC) - t0 < 300 * TEST_MS)
		if (sf_next(gen, id, report) == want)
			return kernel_ns(CLOCK_MONOTONIC) - t0;
	return -1;
}

static int steps_child(void)
{
	const char *why;
	sf_gen *gen;
	int64_t id0, id, took;
	sf_report rep;

	CHECK(strcmp(sf_clock_source(&why), "tsc") == 0, "under libfaketime: still the TSC clock (%s)", why);
	gen = real_gen();
	CHECK_RC(sf_next(gen, &id0, NULL), SF_OK, "under libfaketime: mints");

	step_to("-0.500");
	took = mint_until(gen, SF_E_CLOCK_REGRESSED, &id, &rep);
	CHECK(took >= 0 && rep.regression_ms >= 495 && rep.regression_ms <= 505,
	      "a 500 ms wall step back is refused as a regression of %lld ms, %lld us after the step",
	      (long long)rep.regression_ms, (long long)took / 1000);
	/* it reaches it within 1 ms of the kernel's clock; the bound is for a loaded box */
	CHECK(took >= 0 && took < 200 * TEST_MS, "the step reached the generator within 200 ms");

	step_to("+0");
	took = mint_until(gen, SF_OK, &id, NULL);
	CHECK(took >= 0 && id > id0, "back on time: mints again, above the IDs before the step");
	id0 = id;

	step_to("-0.005");
	took = mint_until(gen, SF_E_CLOCK_WAIT, &id, &rep);
	CHECK(took >= 0 && rep.regression_ms >= 1 && rep.regression_ms <= 6,
	      "a 5 ms step back is a wait (%lld ms, wait %lld us)", (long long)rep.regression_ms,
	      (long long)rep.wait_ns / 1000);
	took = mint_until(gen, SF_OK, &id, NULL);
	CHECK(took >= 0 && took < 100 * TEST_MS && id > id0,
	      "and is waited out in %lld us, above the IDs before", (long long)took / 1000);

	step_to("+10");
	{
		const int64_t t0 = kernel_ns(CLOCK_MONOTONIC), before_ms = id_unix_ms(id);
		bool jumped = false;

		while (!jumped && kernel_ns(CLOCK_MONOTONIC) - t0 < 300 * TEST_MS)
			jumped = sf_next(gen, &id, NULL) == SF_OK && id_unix_ms(id) >= before_ms + 9900;
		CHECK(jumped, "a 10 s wall step forward reaches the minted timestamps");
	}
	CHECK(strcmp(sf_clock_source(&why), "tsc") == 0,
	      "every step was seen through the TSC clock, which stayed on (%s)", why);
	sf_gen_free(gen);
	return CHECK_DONE();
}

/* the monotonic clock faked too: a step back of CLOCK_MONOTONIC is the
 * kernel's clock running slower than the TSC clock */
static int slow_child(void)
{
	const char *why;
	sf_gen *gen;
	int64_t id;
	long ok = 0;

	CHECK(strcmp(sf_clock_source(&why), "tsc") == 0, "under libfaketime (monotonic too): the TSC clock");
	gen = real_gen();
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "mints");
	step_to("-0.002");
	for (int i = 0; i < 200000 && strcmp(sf_clock_source(NULL), "tsc") == 0; i++)
		ok += sf_next(gen, &id, NULL) == SF_OK;
	CHECK(strcmp(sf_clock_source(&why), "clock_gettime") == 0 && strstr(why, "ran ahead"),
	      "CLOCK_MONOTONIC 2 ms behind the TSC clock turns it off (\"%s\")", why);
	step_to("+0");
	sf_gen_free(gen);
	return CHECK_DONE();
}

/* runs this program again under libfaketime in `mode` */
static void run_faked(const char *self, const char *mode, bool fake_monotonic)
{
	const char *lib = getenv("FAKETIME_LIB") ? getenv("FAKETIME_LIB") : FAKETIME_DEFAULT;
	char file[] = "/tmp/sf-test-tsc-XXXXXX";
	int fd = mkstemp(file), status;
	pid_t pid;

	if (access(lib, R_OK) != 0) {
		CHECK(0, "libfaketime is installed (%s; apt-get install faketime)", lib);
		return;
	}
	if (fd < 0 || write(fd, "+0\n", 3) != 3) {
		CHECK(0, "a faketime offset file (%s)", strerror(errno));
		return;
	}
	close(fd);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		setenv("LD_PRELOAD", lib, 1);
		setenv("FAKETIME_TIMESTAMP_FILE", file, 1);
		setenv("FAKETIME_NO_CACHE", "1", 1);
		if (!fake_monotonic)
			setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
		/* the sanitizer builds' runtime wants to come first: it still works second */
		setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
		execl(self, self, mode, file, (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the %s run under libfaketime exits cleanly", mode);
	unlink(file);
}

int main(int argc, char **argv)
{
	const char *why;
	const char *source;

	if (argc == 3) {
		offset_file = argv[2];
		if (strcmp(argv[1], "--steps") == 0)
			return steps_child();
		if (strcmp(argv[1], "--slow") == 0)
			return slow_child();
		return 2;
	}
	source = sf_clock_source(&why);
	printf("# clock source: %s%s%s\n", source, *why ? ": " : "", why);
	CHECK((strcmp(source, "tsc") == 0 && *why == '\0') || (strcmp(source, "clock_gettime") == 0 && *why),
	      "the clock source is named, with a reason when it is not the TSC");
	CHECK(strcmp(sf_clock_source(NULL), source) == 0, "and stays the same");
	if (strcmp(source, "tsc") != 0) {
		check_mints("clock_gettime");
		return CHECK_DONE();
	}
	check_agreement();
	check_mints("TSC clock");
	run_faked("/proc/self/exe", "--steps", false);
	run_faked("/proc/self/exe", "--slow", true);

	/* the operator's choice, at any time: from then on clock_gettime */
	sf_clock_source_avoid_tsc();
	CHECK(strcmp(sf_clock_source(&why), "clock_gettime") == 0 && strstr(why, "configured"),
	      "sf_clock_source_avoid_tsc turns the TSC clock off (\"%s\")", why);
	check_mints("after turning the TSC off");
	return CHECK_DONE();
}
