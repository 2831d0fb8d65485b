/*
 * A minimal test harness: CHECK prints a TAP-like "ok"/"not ok" line per
 * assertion so the runner can count them; a failing CHECK does not stop the
 * test, so one run reports every broken point.
 */
#ifndef CHECK_H
#define CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failed_count;

#define CHECK(cond, ...) do { \
	if (cond) { \
		printf("ok "); printf(__VA_ARGS__); printf("\n"); \
	} else { \
		check_failed_count++; \
		printf("not ok %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); \
		printf("  [%s]\n", #cond); \
	} \
} while (0)

#define CHECK_RC(rc, want, ...) do { \
	int check_rc_ = (rc); \
	if (check_rc_ == (want)) { \
		printf("ok "); printf(__VA_ARGS__); printf("\n"); \
	} else { \
		check_failed_count++; \
		printf("not ok %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); \
		printf("  [got %s (%d), want %s]\n", sf_code_name(check_rc_), check_rc_, sf_code_name(want)); \
	} \
} while (0)

#define CHECK_DONE() (check_failed_count ? EXIT_FAILURE : EXIT_SUCCESS)

/* A clock the test sets by hand. */
typedef struct test_clock {
	int64_t wall_ns;
	int64_t mono_ns;
} test_clock;

static int64_t test_clock_wall(void *ctx) { return ((test_clock *)ctx)->wall_ns; }
static int64_t test_clock_mono(void *ctx) { return ((test_clock *)ctx)->mono_ns; }

#define TEST_MS 1000000LL
/* 2025-06-01T00:00:00Z, well after the default epoch */
#define TEST_T0_MS 1748736000000LL

static inline sf_clock test_clock_make(test_clock *tc)
{
	sf_clock c = { test_clock_wall, test_clock_mono, tc };
	return c;
}

static inline void test_clock_set_ms(test_clock *tc, int64_t wall_ms)
{
	tc->wall_ns = wall_ms * TEST_MS;
}

#endif
