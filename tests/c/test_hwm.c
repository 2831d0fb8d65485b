/* Write-ahead high-water mark: files, keeper, start checks, restarts. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snowflake.h"
#include "check.h"

static char dir[256];

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_files(void)
{
	int64_t mark = 0;
	char path[512];

	CHECK_RC(sf_hwm_load(dir, 3, &mark), SF_E_NOT_FOUND, "no file: not_found");
	CHECK_RC(sf_hwm_store(dir, 3, 1748736000123LL), SF_OK, "store a mark");
	CHECK_RC(sf_hwm_load(dir, 3, &mark), SF_OK, "load it back");
	CHECK(mark == 1748736000123LL, "same value");
	snprintf(path, sizeof path, "%s/worker-3.hwm.tmp.%ld", dir, (long)getpid());
	CHECK(access(path, F_OK) == -1, "no temp file left behind");
	CHECK_RC(sf_hwm_store(dir, 3, 1748736000999LL), SF_OK, "store over it");
	sf_hwm_load(dir, 3, &mark);
	CHECK(mark == 1748736000999LL, "the new value replaces the old");

	write_file("worker-4.hwm", "sfhwm1 12x4\n");
	CHECK_RC(sf_hwm_load(dir, 4, &mark), SF_E_STATE_CORRUPT, "garbage digits: state_corrupt");
	write_file("worker-4.hwm", "sfhwm1 1234");
	CHECK_RC(sf_hwm_load(dir, 4, &mark), SF_E_STATE_CORRUPT, "torn file without newline: state_corrupt");
	write_file("worker-4.hwm", "");
	CHECK_RC(sf_hwm_load(dir, 4, &mark), SF_E_STATE_CORRUPT, "empty file: state_corrupt");
	write_file("worker-4.hwm", "sfhwm1 99999999999999999999\n");
	CHECK_RC(sf_hwm_load(dir, 4, &mark), SF_E_STATE_CORRUPT, "overflowing number: state_corrupt");
	CHECK_RC(sf_hwm_store("/nonexistent/edge-snowflake", 3, 1), SF_E_STATE_IO, "missing dir: state_io");
	CHECK_RC(sf_hwm_store(dir, 3, -5), SF_E_INVALID, "negative mark refused");
}

struct node {
	test_clock *tc;
	sf_clock clock;
	sf_gen *gen;
	sf_keeper *keeper;
};

/*
 * What a process does on start: take the mark once, wait past it (moving
 * the test clock as a sleep would), then keep ahead and take the grant.
 * wait_allowed = false returns the first SF_E_CLOCK_WAIT instead.
 */
static int node_boot(struct node *n, test_clock *tc, uint32_t worker, int64_t registry_mark,
                     bool wait_allowed, sf_report *rep, int64_t *waited_ms)
{
	sf_layout l = SF_LAYOUT_DEFAULT;
	sf_keeper_config kc = { dir, worker, 500, 250 };
	sf_report local_rep;
	int64_t mark;
	int rc;

	if (!rep)
		rep = &local_rep;
	if (waited_ms)
		*waited_ms = 0;
	n->tc = tc;
	n->clock = test_clock_make(tc);
	if (sf_gen_new(&l, &n->clock, &n->gen) != SF_OK ||
	    sf_keeper_new(n->gen, &kc, &n->keeper) != SF_OK)
		exit(1);
	rc = sf_keeper_start_mark(n->keeper, &mark, NULL);
	if (rc != SF_OK)
		return rc;
	while ((rc = sf_gen_start_check(n->gen, mark, registry_mark, 5000, rep)) == SF_E_CLOCK_WAIT &&
	       wait_allowed) {
		tc->wall_ns += rep->wait_ns;
		if (waited_ms)
			*waited_ms += rep->wait_ns / TEST_MS;
	}
	if (rc != SF_OK)
		return rc;
	rc = sf_keeper_step(n->keeper, NULL);
	if (rc != SF_OK)
		return rc;
	return sf_gen_grant(n->gen, worker, INT64_MAX);
}

static int node_start(struct node *n, test_clock *tc, uint32_t worker, int64_t registry_mark,
                      sf_report *rep)
{
	return node_boot(n, tc, worker, registry_mark, false, rep, NULL);
}

static int node_start_waiting(struct node *n, test_clock *tc, uint32_t worker, int64_t registry_mark,
                              int64_t *waited_ms)
{
	return node_boot(n, tc, worker, registry_mark, true, NULL, waited_ms);
}

static void node_free(struct node *n)
{
	sf_keeper_free(n->keeper);
	sf_gen_free(n->gen);
}

static void test_keeper(void)
{
	test_clock tc = { TEST_T0_MS * TEST_MS, 0 };
	struct node n;
	bool stored;
	int64_t id, mark;

	CHECK_RC(node_start(&n, &tc, 11, INT64_MIN, NULL), SF_E_CLOCK_WAIT,
	         "first use of a worker ID here: wait one write-ahead window");
	node_free(&n);
	tc.wall_ns += 501 * TEST_MS;
	/* the keeper has not stored anything for worker 11 yet: same answer from the new now */
	CHECK_RC(node_start(&n, &tc, 11, INT64_MIN, NULL), SF_E_CLOCK_WAIT,
	         "a missing file always asks for the window from now");
	node_free(&n);

	/* a generator without a local ceiling refuses */
	{
		sf_layout l = SF_LAYOUT_DEFAULT;
		sf_clock c = test_clock_make(&tc);
		sf_gen *g;

		sf_gen_new(&l, &c, &g);
		sf_gen_grant(g, 1, INT64_MAX);
		CHECK_RC(sf_next(g, &id, NULL), SF_E_HWM_STALLED, "no durable mark yet: hwm_stalled");
		sf_gen_free(g);
	}

	sf_hwm_store(dir, 12, TEST_T0_MS);
	tc.wall_ns = (TEST_T0_MS + 1) * TEST_MS;
	CHECK_RC(node_start(&n, &tc, 12, INT64_MIN, NULL), SF_OK, "clock past the mark: starts at once");
	mark = sf_keeper_mark(n.keeper);
	CHECK(mark == TEST_T0_MS + 1 + 500, "the keeper stored now + 500 ms (%lld)", (long long)(mark - TEST_T0_MS));
	CHECK(sf_gen_ceiling_get(n.gen, SF_CEILING_LOCAL) == mark, "and published it as the ceiling");
	CHECK_RC(sf_next(n.gen, &id, NULL), SF_OK, "mints");

	tc.wall_ns += 200 * TEST_MS;
	sf_keeper_step(n.keeper, &stored);
	CHECK(!stored, "300 ms still ahead: no store (refresh at 250)");
	tc.wall_ns += 60 * TEST_MS;
	sf_keeper_step(n.keeper, &stored);
	CHECK(stored && sf_keeper_mark(n.keeper) == TEST_T0_MS + 261 + 500, "240 ms ahead: stored again");

	/* a keeper that cannot store leaves minting to run into the old ceiling */
	tc.wall_ns = (sf_keeper_mark(n.keeper) + 1) * TEST_MS;
	CHECK_RC(sf_next(n.gen, &id, NULL), SF_E_HWM_STALLED, "past the durable mark: hwm_stalled");
	CHECK_RC(sf_keeper_step(n.keeper, &stored), SF_OK, "the keeper catches up");
	CHECK_RC(sf_next(n.gen, &id, NULL), SF_OK, "and minting resumes");
	node_free(&n);
}

static void test_restart_same_ms(void)
{
	test_clock tc = { (TEST_T0_MS + 10000) * TEST_MS + 400000, 0 };
	struct node a, b;
	int64_t before = 0, after = 0, waited, id;
	int ok = 0;

	CHECK_RC(node_start_waiting(&a, &tc, 21, INT64_MIN, &waited), SF_OK, "first run starts");
	for (int i = 0; i < 1000; i++)
		if (sf_next(a.gen, &id, NULL) == SF_OK)
			before = id;
	/* crash: no clean shutdown; the new process starts in the same millisecond */
	CHECK_RC(node_start_waiting(&b, &tc, 21, INT64_MIN, &waited), SF_OK,
	         "restart in the same millisecond starts after a wait");
	CHECK(waited > 0 && waited <= 501, "it waited past the stored mark (%lld ms)", (long long)waited);
	if (sf_next(b.gen, &after, NULL) == SF_OK)
		ok = after > before;
	CHECK(ok, "no replay: the first ID after the restart is above the last before");
	node_free(&a);
	node_free(&b);
}

static void test_lost_file(void)
{
	test_clock tc = { (TEST_T0_MS + 20000) * TEST_MS, 0 };
	struct node a, b;
	int64_t before = 0, after = 0, waited, id;
	char path[512];

	CHECK_RC(node_start_waiting(&a, &tc, 22, INT64_MIN, &waited), SF_OK, "first run starts");
	tc.wall_ns += 100 * TEST_MS;
	sf_keeper_step(a.keeper, NULL);
	for (int i = 0; i < 100; i++)
		if (sf_next(a.gen, &id, NULL) == SF_OK)
			before = id;
	snprintf(path, sizeof path, "%s/worker-22.hwm", dir);
	CHECK(unlink(path) == 0, "state file lost");
	CHECK_RC(node_start_waiting(&b, &tc, 22, INT64_MIN, &waited), SF_OK, "restart without the file");
	CHECK(waited >= 1, "it still waited (%lld ms)", (long long)waited);
	sf_next(b.gen, &after, NULL);
	CHECK(after > before, "no replay with the state file lost");
	node_free(&a);
	node_free(&b);
}

static void test_marks_ahead(void)
{
	test_clock tc = { (TEST_T0_MS + 30000) * TEST_MS, 0 };
	struct node n;
	sf_report rep;
	int64_t waited;

	sf_hwm_store(dir, 23, TEST_T0_MS + 30000 + 6000);
	CHECK_RC(node_start(&n, &tc, 23, INT64_MIN, &rep), SF_E_HWM_AHEAD,
	         "local mark 6 s ahead with a 5 s bound: refuse");
	CHECK(rep.regression_ms == 6000, "and says by how much (%lld ms)", (long long)rep.regression_ms);
	node_free(&n);

	sf_hwm_store(dir, 24, TEST_T0_MS + 30000 - 1);
	CHECK_RC(node_start(&n, &tc, 24, TEST_T0_MS + 30000 + 7000, &rep), SF_E_REGISTRY_HWM_AHEAD,
	         "registry mark 7 s ahead: refuse as registry_hwm_ahead");
	node_free(&n);
	CHECK_RC(node_start_waiting(&n, &tc, 24, TEST_T0_MS + 30000 + 3000, &waited), SF_OK,
	         "registry mark 3 s ahead: waits past it");
	CHECK(waited >= 3000, "waited %lld ms", (long long)waited);
	CHECK(sf_gen_last_ms(n.gen) >= TEST_T0_MS + 33000, "the floor is raised to the mark");
	node_free(&n);

	sf_hwm_store(dir, 25, TEST_T0_MS);
	write_file("worker-25.hwm", "junk\n");
	CHECK_RC(node_start(&n, &tc, 25, INT64_MIN, NULL), SF_E_STATE_CORRUPT,
	         "a corrupt mark file refuses the start");
	node_free(&n);
}

int main(void)
{
	char tmpl[] = "/tmp/sf-hwm-XXXXXX";

	if (!mkdtemp(tmpl))
		return 1;
	snprintf(dir, sizeof dir, "%s", tmpl);
	test_files();
	test_keeper();
	test_restart_same_ms();
	test_lost_file();
	test_marks_ahead();
	{
		char cmd[300];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return CHECK_DONE();
}
