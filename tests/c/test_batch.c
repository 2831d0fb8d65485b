/* Reservations and batches: one CAS a run, across millisecond boundaries. */
#include "snowflake.h"
#include "check.h"

static sf_gen *make_gen(test_clock *tc, sf_clock *clock)
{
	sf_layout l = SF_LAYOUT_DEFAULT;
	sf_gen *gen = NULL;

	*tc = (test_clock){ TEST_T0_MS * TEST_MS, 1000 * TEST_MS };
	*clock = test_clock_make(tc);
	if (sf_gen_new(&l, clock, &gen) != SF_OK)
		exit(1);
	sf_gen_grant(gen, 9, INT64_MAX);
	sf_gen_ceiling_set(gen, SF_CEILING_LOCAL, INT64_MAX);
	return gen;
}

static int strictly_increasing(const int64_t *ids, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		if (ids[i] <= ids[i - 1])
			return 0;
	return 1;
}

/* A test clock that moves one millisecond each time it is read `every` times. */
struct ticking {
	test_clock tc;
	int reads;
	int every;
};

static int64_t ticking_wall(void *ctx)
{
	struct ticking *t = ctx;

	if (++t->reads % t->every == 0)
		t->tc.wall_ns += TEST_MS;
	return t->tc.wall_ns;
}

static void test_reserve(void)
{
	test_clock tc;
	sf_clock clock;
	sf_gen *gen = make_gen(&tc, &clock);
	sf_run run;
	sf_decoded d;
	int64_t id;

	CHECK_RC(sf_reserve(gen, 0, &run, NULL), SF_E_BATCH_RANGE, "reserve(0) is refused");
	CHECK_RC(sf_reserve(gen, 1000, &run, NULL), SF_OK, "reserve 1000");
	CHECK(run.count == 1000, "a fresh millisecond gives all 1000 at once");
	sf_id_decode(sf_gen_layout(gen), run.first, &d);
	CHECK(d.sequence == 0 && d.worker == 9 && d.timestamp_ms == TEST_T0_MS, "the run starts at sequence 0");
	CHECK_RC(sf_reserve(gen, 5000, &run, NULL), SF_OK, "reserve 5000 with 3096 left");
	CHECK(run.count == 3096, "a run stops at the end of the millisecond (%u)", run.count);
	sf_id_decode(sf_gen_layout(gen), run.first + run.count - 1, &d);
	CHECK(d.sequence == 4095, "the last ID of the run is sequence 4095");
	CHECK_RC(sf_reserve(gen, 1, &run, NULL), SF_E_SEQUENCE_EXHAUSTED, "nothing left in this ms");
	tc.wall_ns += TEST_MS;
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "next ms mints");
	sf_gen_free(gen);
}

static void test_batch_across_boundary(void)
{
	struct ticking t = { { TEST_T0_MS * TEST_MS, 0 }, 0, 3 };
	/* tc is the first member, so the plain mono reader works on &t too */
	sf_clock clock = { ticking_wall, test_clock_mono, &t };
	sf_layout l = SF_LAYOUT_DEFAULT;
	static int64_t ids[10000];
	sf_decoded first, last;
	sf_gen *gen;
	int64_t id;

	if (sf_gen_new(&l, &clock, &gen) != SF_OK)
		exit(1);
	sf_gen_grant(gen, 1, INT64_MAX);
	sf_gen_ceiling_set(gen, SF_CEILING_LOCAL, INT64_MAX);

	/* use part of a millisecond so the batch has to cross into later ones */
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "one ID first");
	CHECK_RC(sf_next_batch(gen, ids, 10000, NULL, 10 * TEST_MS), SF_OK,
	         "a batch of 10,000 spans three milliseconds");
	CHECK(strictly_increasing(ids, 10000) && ids[0] > id, "the batch is strictly increasing and above");
	sf_id_decode(&l, ids[0], &first);
	sf_id_decode(&l, ids[9999], &last);
	CHECK(last.timestamp_ms - first.timestamp_ms >= 2, "the batch crosses millisecond boundaries (%lld ms)",
	      (long long)(last.timestamp_ms - first.timestamp_ms));
	sf_gen_free(gen);
}

static void test_batch_refusals(void)
{
	test_clock tc;
	sf_clock clock;
	sf_gen *gen = make_gen(&tc, &clock);
	int64_t ids[8192];
	int64_t id, after;

	CHECK_RC(sf_next_batch(gen, ids, 0, NULL, 0), SF_E_BATCH_RANGE, "batch of 0 is refused");
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "one ID");
	/* the clock is stopped: 4,095 are left, 8,192 cannot be had */
	CHECK_RC(sf_next_batch(gen, ids, 8192, NULL, 2 * TEST_MS), SF_E_SEQUENCE_EXHAUSTED,
	         "a batch larger than what is left, on a stopped clock, is refused whole");
	tc.wall_ns += TEST_MS;
	CHECK_RC(sf_next(gen, &after, NULL), SF_OK, "minting goes on after the refusal");
	CHECK(after > id, "the dropped run leaves a gap, never a repeat");

	/* the same, keeping what was reserved: the rest comes after the next ms */
	{
		uint32_t got = 12345, more = 0;
		int64_t mark;

		CHECK_RC(sf_next(gen, &mark, NULL), SF_OK, "one ID in a fresh millisecond");
		CHECK_RC(sf_next_batch_some(gen, ids, 8192, &got, NULL, 0), SF_E_SEQUENCE_EXHAUSTED,
		         "batch_some on a stopped clock stops at the end of the millisecond");
		CHECK(got == 4094 && ids[0] > mark && strictly_increasing(ids, got),
		      "and reports the 4,094 left of it, increasing, above (%u)", got);
		tc.wall_ns += TEST_MS;
		CHECK_RC(sf_next_batch_some(gen, ids + got, 8192 - got, &more, NULL, 0), SF_E_SEQUENCE_EXHAUSTED,
		         "the next millisecond gives the next 4,096");
		CHECK(more == 4096 && strictly_increasing(ids, got + more), "all 8,190 strictly increasing");
		CHECK_RC(sf_next_batch_some(gen, ids, 0, &got, NULL, 0), SF_E_BATCH_RANGE, "batch_some of 0 is refused");
		CHECK(got == 0, "and reports none");
		CHECK_RC(sf_next_batch_some(gen, ids, 1, NULL, NULL, 0), SF_E_BATCH_RANGE, "batch_some needs *got");
		tc.wall_ns += TEST_MS;
	}

	/* a regression in the middle of a batch refuses it */
	tc.wall_ns -= 500 * TEST_MS;
	CHECK_RC(sf_next_batch(gen, ids, 10, NULL, TEST_MS), SF_E_CLOCK_REGRESSED,
	         "a batch during a 500 ms regression is refused");
	sf_gen_free(gen);
}

int main(void)
{
	test_reserve();
	test_batch_across_boundary();
	test_batch_refusals();
	return CHECK_DONE();
}
