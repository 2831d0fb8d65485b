/* The lease's log rate limiter (core/sf_ratelog.c) on a hand-set clock. */
#include "snowflake.h"
#include "sf_ratelog.h"
#include "check.h"

int main(void)
{
	sf_ratelog rl = SF_RATELOG_INIT(1000 * TEST_MS, 5);
	const int64_t t0 = 5000 * TEST_MS;
	uint64_t dropped = 99;
	int passed = 0;
	bool any_note = false;

	for (int i = 0; i < 12; i++) {
		passed += sf_ratelog_admit(&rl, t0 + i * TEST_MS, &dropped);
		any_note |= dropped != 0;
	}
	CHECK(passed == 5, "a burst of 12 lines in a window passes 5 (%d)", passed);
	CHECK(!any_note, "no note while the window lasts");
	CHECK(!sf_ratelog_admit(&rl, t0 + 999 * TEST_MS, &dropped) && dropped == 0,
	      "1 ms before the window ends: still dropped");
	CHECK(sf_ratelog_admit(&rl, t0 + 1000 * TEST_MS, &dropped), "a new window passes again");
	CHECK(dropped == 8, "and hands back how many the last one dropped (%llu)", (unsigned long long)dropped);
	CHECK(sf_ratelog_admit(&rl, t0 + 1001 * TEST_MS, &dropped) && dropped == 0,
	      "the count is handed back once");
	CHECK(sf_ratelog_admit(&rl, t0 + 5000 * TEST_MS, &dropped) && dropped == 0,
	      "a quiet window has nothing to report");
	for (int i = 0; i < 100000; i++)
		sf_ratelog_admit(&rl, t0 + 6000 * TEST_MS, &dropped);
	CHECK(rl.in_window == 5 && rl.suppressed == 100000 - 5, "a flood is counted, the window's count does not grow");
	return CHECK_DONE();
}
