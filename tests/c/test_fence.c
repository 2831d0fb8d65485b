/* The grant: worker ID and fencing deadline, checked by the minting thread. */
#include <string.h>

#include "snowflake.h"
#include "check.h"

int main(void)
{
	test_clock tc = { TEST_T0_MS * TEST_MS, 5000 * TEST_MS };
	sf_clock clock = test_clock_make(&tc);
	sf_layout l = SF_LAYOUT_DEFAULT;
	sf_gen *gen;
	int64_t id, prev, deadline;
	int32_t worker;
	int code;
	sf_decoded d;

	if (sf_gen_new(&l, &clock, &gen) != SF_OK)
		return 1;
	sf_gen_ceiling_set(gen, SF_CEILING_LOCAL, INT64_MAX);

	CHECK_RC(sf_next(gen, &id, NULL), SF_E_NO_LEASE, "no grant yet: no_lease");
	sf_gen_grant_get(gen, &worker, &deadline, &code);
	CHECK(worker == -1 && code == SF_E_NO_LEASE, "grant_get reports no worker");

	CHECK_RC(sf_gen_grant(gen, 1024, INT64_MAX), SF_E_WORKER_RANGE, "worker 1024 does not fit 10 bits");
	CHECK_RC(sf_gen_grant(gen, 1023, 6000 * TEST_MS), SF_OK, "grant worker 1023 until mono 6 s");
	sf_gen_grant_get(gen, &worker, &deadline, &code);
	CHECK(worker == 1023 && deadline == 6000 * TEST_MS && code == SF_OK, "grant_get reports it");

	CHECK_RC(sf_next(gen, &prev, NULL), SF_OK, "mints before the deadline");
	sf_id_decode(&l, prev, &d);
	CHECK(d.worker == 1023, "with the granted worker");

	tc.mono_ns = 6000 * TEST_MS - 1;
	tc.wall_ns += TEST_MS;
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "mints 1 ns before the deadline");
	tc.mono_ns = 6000 * TEST_MS;
	tc.wall_ns += TEST_MS;
	CHECK_RC(sf_next(gen, &id, NULL), SF_E_FENCED, "refuses at the deadline");
	CHECK_RC(sf_next_batch(gen, &id, 1, NULL, 0), SF_E_FENCED, "batches refuse too");

	/* a wall-clock step forward or back never moves the fence */
	tc.wall_ns -= 3600 * 1000 * TEST_MS;
	sf_gen_set_max_wait_ms(gen, INT64_MAX);
	CHECK(sf_next(gen, &id, NULL) != SF_OK, "a wall step back does not reopen the fence");
	tc.wall_ns += 2 * 3600 * 1000 * TEST_MS;
	CHECK_RC(sf_next(gen, &id, NULL), SF_E_FENCED, "a wall step forward does not reopen the fence");

	/* the lease extends; the deadline is rounded down to the ms, never up */
	sf_gen_grant(gen, 1023, 9000 * TEST_MS + 999999);
	sf_gen_grant_get(gen, NULL, &deadline, NULL);
	CHECK(deadline == 9000 * TEST_MS, "deadline rounded down to a whole ms");
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "an extended lease mints again");
	CHECK(id > prev, "above everything before");

	sf_gen_revoke(gen, SF_E_PARKED);
	CHECK_RC(sf_next(gen, &id, NULL), SF_E_PARKED, "revoked as parked: refuses parked");
	sf_gen_grant_get(gen, &worker, NULL, &code);
	CHECK(worker == -1 && code == SF_E_PARKED, "grant_get reports the park");
	sf_gen_revoke(gen, 5);
	CHECK_RC(sf_next(gen, &id, NULL), SF_E_NO_LEASE, "an unknown revoke code becomes no_lease");

	/* a new worker after a revoke: order is kept across workers */
	sf_gen_grant(gen, 4, INT64_MAX);
	prev = id = 0;
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "a new worker mints");
	sf_id_decode(&l, id, &d);
	CHECK(d.worker == 4, "with its own worker ID");
	sf_gen_free(gen);

	/* the real clock: the fence is read on the monotonic clock */
	if (sf_gen_new(&l, NULL, &gen) != SF_OK)
		return 1;
	sf_gen_ceiling_set(gen, SF_CEILING_LOCAL, INT64_MAX);
	sf_gen_grant(gen, 2, sf_clock_mono_ns(NULL) + 10000 * TEST_MS);
	CHECK_RC(sf_next(gen, &id, NULL), SF_OK, "real clocks: mints with 10 s left");
	{
		/* near the deadline the precise clock decides: a mint that starts at or
		 * after the deadline never succeeds, and minting does go on until close
		 * to it (how close is a matter of scheduling, not asserted) */
		int64_t deadline_ns = sf_clock_mono_ns(NULL) + 30 * TEST_MS;
		int64_t started, last_ok_ns = 0;
		int late_ok = 0, refused = 0;

		sf_gen_grant(gen, 2, deadline_ns);
		/* until 5 ms past the deadline and a refusal seen (a preemption right
		 * after the last mint may swallow those 5 ms), at most 1 s */
		while ((started = sf_clock_mono_ns(NULL)) < deadline_ns + 1000 * TEST_MS &&
		       (started < deadline_ns + 5 * TEST_MS || refused == 0)) {
			int rc = sf_next_spin(gen, &id, NULL, 2 * TEST_MS);

			if (rc == SF_OK && started >= deadline_ns)
				late_ok++;
			if (rc == SF_OK)
				last_ok_ns = started;
			refused += rc == SF_E_FENCED;
		}
		CHECK(late_ok == 0, "real clocks: no mint that started at or after the deadline succeeded (%d)", late_ok);
		CHECK(refused > 0 && last_ok_ns > 0, "real clocks: minted before the deadline, refused after it");
		printf("# minting stopped %lld us before the deadline\n", (long long)(deadline_ns - last_ok_ns) / 1000);
		CHECK_RC(sf_next(gen, &id, NULL), SF_E_FENCED, "real clocks: refuses past the deadline");
	}
	sf_gen_free(gen);
	return CHECK_DONE();
}
