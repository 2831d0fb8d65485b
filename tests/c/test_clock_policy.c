/* The generator's side of the clock policy: regressions, borrow, exhaustion. */
#include "snowflake.h"
#include "check.h"

struct fixture {
	test_clock tc;
	sf_clock clock;
	sf_gen *gen;
};

static void setup(struct fixture *f, sf_layout layout)
{
	f->tc = (test_clock){ TEST_T0_MS * TEST_MS, 1000 * TEST_MS };
	f->clock = test_clock_make(&f->tc);
	if (sf_gen_new(&layout, &f->clock, &f->gen) != SF_OK) {
		printf("not ok setup: sf_gen_new failed\n");
		exit(1);
	}
	sf_gen_grant(f->gen, 3, INT64_MAX);
	sf_gen_ceiling_set(f->gen, SF_CEILING_LOCAL, INT64_MAX);
}

static void teardown(struct fixture *f)
{
	sf_gen_free(f->gen);
}

static int64_t ts_of(const sf_gen *gen, int64_t id)
{
	sf_decoded d;

	sf_id_decode(sf_gen_layout(gen), id, &d);
	return d.timestamp_ms;
}

/* Mint at t0 + 100 ms, step the clock back by `back_ms`, mint again. */
static void regression(int64_t back_ms, int want_rc, const char *what)
{
	struct fixture f;
	sf_report rep = { -1, -1 };
	int64_t before, after = 0;

	setup(&f, (sf_layout)SF_LAYOUT_DEFAULT);
	test_clock_set_ms(&f.tc, TEST_T0_MS + 100);
	CHECK_RC(sf_next(f.gen, &before, NULL), SF_OK, "%s: first mint", what);
	f.tc.wall_ns -= back_ms * TEST_MS;
	CHECK_RC(sf_next(f.gen, &after, &rep), want_rc, "%s: outcome", what);
	CHECK(rep.regression_ms == back_ms, "%s: regression reported as %lld ms (got %lld)", what,
	      (long long)back_ms, (long long)rep.regression_ms);
	CHECK(rep.wait_ns == back_ms * TEST_MS + TEST_MS - 0,
	      "%s: wait is the time until the clock passes the last ms (got %lld ns)", what,
	      (long long)rep.wait_ns);
	/* after waiting as told, minting resumes above the last ID */
	f.tc.wall_ns += rep.wait_ns;
	CHECK_RC(sf_next(f.gen, &after, NULL), SF_OK, "%s: mints after the wait", what);
	CHECK(after > before && ts_of(f.gen, after) == TEST_T0_MS + 101,
	      "%s: the next ID is above the last and in the next ms", what);
	teardown(&f);
}

static void test_default_ladder(void)
{
	regression(1, SF_E_CLOCK_WAIT, "1 ms regression");
	regression(19, SF_E_CLOCK_WAIT, "19 ms regression");
	regression(20, SF_E_CLOCK_WAIT, "20 ms regression (the bound)");
	regression(21, SF_E_CLOCK_REGRESSED, "21 ms regression");
	regression(5000, SF_E_CLOCK_REGRESSED, "5 s regression");
}

static void test_thresholds_from_outside(void)
{
	struct fixture f;
	sf_gen_stats st;
	int64_t id;

	setup(&f, (sf_layout)SF_LAYOUT_DEFAULT);
	CHECK(sf_gen_max_wait_ms(f.gen) == 20 && !sf_gen_borrow(f.gen), "defaults: wait 20 ms, borrow off");
	CHECK_RC(sf_gen_set_max_wait_ms(f.gen, -1), SF_E_INVALID, "negative max wait refused");
	test_clock_set_ms(&f.tc, TEST_T0_MS + 1000);
	sf_next(f.gen, &id, NULL);
	f.tc.wall_ns -= 30 * TEST_MS;
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_E_CLOCK_REGRESSED, "30 ms refused with the default bound");
	sf_gen_set_max_wait_ms(f.gen, 50);
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_E_CLOCK_WAIT, "30 ms waited once the bound is 50");
	sf_gen_set_max_wait_ms(f.gen, 0);
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_E_CLOCK_REGRESSED, "bound 0 refuses every regression");
	sf_gen_stats_get(f.gen, &st);
	CHECK(st.clock_refusals == 2 && st.clock_waits == 1 && st.last_regression_ms == 30,
	      "stats count waits and refusals by outcome");
	teardown(&f);
}

static void test_borrow(void)
{
	struct fixture f;
	sf_gen_stats st;
	int64_t first, id, prev;
	sf_decoded d;
	int ok = 0;

	/* borrow off: a regression refuses even with sequence left */
	setup(&f, (sf_layout)SF_LAYOUT_DEFAULT);
	test_clock_set_ms(&f.tc, TEST_T0_MS + 500);
	sf_next(f.gen, &first, NULL);
	f.tc.wall_ns -= 100 * TEST_MS;
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_E_CLOCK_REGRESSED, "borrow off: 100 ms back refuses");

	/* borrow on: the rest of the frozen millisecond is used, then refusal */
	sf_gen_set_borrow(f.gen, true);
	prev = first;
	for (int i = 0; i < 4095; i++) {
		if (sf_next(f.gen, &id, NULL) == SF_OK && id > prev) {
			sf_id_decode(sf_gen_layout(f.gen), id, &d);
			ok += d.timestamp_ms == TEST_T0_MS + 500;
			prev = id;
		}
	}
	CHECK(ok == 4095, "borrow on: the 4,095 numbers left in the frozen ms are issued in order (%d)", ok);
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_E_CLOCK_REGRESSED,
	         "borrow on: once the frozen ms is used up, a 100 ms regression refuses");
	sf_gen_stats_get(f.gen, &st);
	CHECK(st.clock_borrows == 4095, "borrowed IDs are counted (%llu)", (unsigned long long)st.clock_borrows);

	/* borrow on with a small regression: borrow, then wait */
	sf_gen_set_max_wait_ms(f.gen, 200);
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_E_CLOCK_WAIT, "borrow on, frozen ms used up, within bound: wait");
	teardown(&f);
}

static void test_sequence_exhaustion(void)
{
	struct fixture f;
	sf_report rep;
	int64_t id, last = 0;
	int issued = 0;

	setup(&f, (sf_layout)SF_LAYOUT_DEFAULT);
	test_clock_set_ms(&f.tc, TEST_T0_MS + 7);
	f.tc.wall_ns += 250000; /* 0.25 ms into the millisecond */
	for (int i = 0; i < 4096; i++)
		if (sf_next(f.gen, &id, NULL) == SF_OK && id > last) {
			issued++;
			last = id;
		}
	CHECK(issued == 4096, "4,096 IDs in one millisecond (%d)", issued);
	CHECK_RC(sf_next(f.gen, &id, &rep), SF_E_SEQUENCE_EXHAUSTED, "the 4,097th is refused: exhausted");
	CHECK(rep.wait_ns == 750000 && rep.regression_ms == 0,
	      "exhaustion reports the rest of the ms as the wait (%lld ns)", (long long)rep.wait_ns);
	CHECK_RC(sf_next_spin(f.gen, &id, &rep, 1000 * TEST_MS), SF_E_SEQUENCE_EXHAUSTED,
	         "spinning on a stopped clock gives up instead of hanging");
	f.tc.wall_ns += rep.wait_ns;
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_OK, "the next millisecond mints");
	CHECK(id > last, "and above the exhausted millisecond");
	teardown(&f);
}

/* The health probe agrees with minting and consumes nothing. */
static void test_probe(void)
{
	struct fixture f;
	sf_gen_stats before, after;
	sf_report rep;
	int64_t id, last;

	setup(&f, (sf_layout)SF_LAYOUT_DEFAULT);
	test_clock_set_ms(&f.tc, TEST_T0_MS + 300);
	CHECK_RC(sf_gen_probe(f.gen, NULL), SF_OK, "probe: a granted generator can mint");
	sf_next(f.gen, &last, NULL);
	f.tc.wall_ns -= 5 * TEST_MS;
	sf_gen_stats_get(f.gen, &before);
	CHECK_RC(sf_gen_probe(f.gen, &rep), SF_E_CLOCK_WAIT, "probe: 5 ms back is a wait");
	CHECK(rep.regression_ms == 5, "probe: with its size (%lld)", (long long)rep.regression_ms);
	f.tc.wall_ns -= 100 * TEST_MS;
	CHECK_RC(sf_gen_probe(f.gen, NULL), SF_E_CLOCK_REGRESSED, "probe: 105 ms back refuses");
	sf_gen_stats_get(f.gen, &after);
	CHECK(after.clock_waits == before.clock_waits && after.clock_refusals == before.clock_refusals,
	      "probe: counts nothing");
	f.tc.wall_ns += 106 * TEST_MS;
	CHECK_RC(sf_next(f.gen, &id, NULL), SF_OK, "probe: consumed nothing, minting goes on");
	CHECK(id > last, "probe: above the last ID");
	sf_gen_revoke(f.gen, SF_E_PARKED);
	CHECK_RC(sf_gen_probe(f.gen, NULL), SF_E_PARKED, "probe: a revoked grant reports its code");
	sf_gen_grant(f.gen, 3, 0);
	CHECK_RC(sf_gen_probe(f.gen, NULL), SF_E_FENCED, "probe: a passed deadline is fenced");
	sf_gen_grant(f.gen, 3, INT64_MAX);
	sf_gen_ceiling_set(f.gen, SF_CEILING_LOCAL, TEST_T0_MS);
	CHECK_RC(sf_gen_probe(f.gen, NULL), SF_E_HWM_STALLED, "probe: above the durable mark is hwm_stalled");
	teardown(&f);
}

int main(void)
{
	test_probe();
	test_default_ladder();
	test_thresholds_from_outside();
	test_borrow();
	test_sequence_exhaustion();
	return CHECK_DONE();
}
