/*
 * Many threads, one generator, real clocks: no duplicate, strict order per
 * thread. Also built with ThreadSanitizer.
 */
#include <pthread.h>
#include <string.h>

#include "snowflake.h"
#include "check.h"

#define THREADS        4
#define IDS_PER_THREAD (1024 * 1024)
#define BATCH          100

struct worker_arg {
	sf_gen  *gen;
	int      index;
	int64_t *ids;
	int      failures;          /* refusals other than a spin that ran out */
	int      spin_timeouts;     /* sequence_exhausted after the spin limit: descheduled mid-spin */
	int      order_violations;
	int      last_failure;      /* the code of the latest failure, for the report */
};

static void *mint_thread(void *p)
{
	struct worker_arg *w = p;
	uint32_t n = 0;

	while (n < IDS_PER_THREAD) {
		int rc;

		if (w->index % 2 == 0) {
			rc = sf_next_spin(w->gen, &w->ids[n], NULL, 5 * TEST_MS);
			if (rc == SF_OK)
				n++;
		} else {
			uint32_t want = IDS_PER_THREAD - n < BATCH ? IDS_PER_THREAD - n : BATCH;

			rc = sf_next_batch(w->gen, &w->ids[n], want, NULL, 5 * TEST_MS);
			if (rc == SF_OK)
				n += want;
		}
		if (rc == SF_E_SEQUENCE_EXHAUSTED)
			w->spin_timeouts++;
		else if (rc != SF_OK && (w->last_failure = rc, ++w->failures > 1000))
			break;
	}
	for (uint32_t i = 1; i < n; i++)
		if (w->ids[i] <= w->ids[i - 1])
			w->order_violations++;
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	sf_layout l = SF_LAYOUT_DEFAULT;
	struct worker_arg args[THREADS];
	pthread_t threads[THREADS];
	int64_t *all = malloc(sizeof(int64_t) * THREADS * IDS_PER_THREAD);
	sf_gen *gen;
	size_t dups = 0;
	int violations = 0, failures = 0;

	if (!all || sf_gen_new(&l, NULL, &gen) != SF_OK)
		return 1;
	sf_gen_ceiling_set(gen, SF_CEILING_LOCAL, INT64_MAX);
	sf_gen_grant(gen, 77, sf_clock_mono_ns(NULL) + 600000 * TEST_MS);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct worker_arg){ gen, i, all + (size_t)i * IDS_PER_THREAD, 0, 0, 0, 0 };
		pthread_create(&threads[i], NULL, mint_thread, &args[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		violations += args[i].order_violations;
		failures += args[i].failures;
	}
	CHECK(failures == 0, "%d threads minted %d IDs each, refused only by a spin running out (%d)",
	      THREADS, IDS_PER_THREAD, failures);
	for (int i = 0; i < THREADS; i++)
		printf("# thread %d: %d spins ran out, %d failures (latest: %s)\n", i, args[i].spin_timeouts,
		       args[i].failures, args[i].failures ? sf_code_name(args[i].last_failure) : "none");
	CHECK(violations == 0, "strict order within every thread (%d violations)", violations);
	qsort(all, (size_t)THREADS * IDS_PER_THREAD, sizeof *all, cmp_id);
	for (size_t i = 1; i < (size_t)THREADS * IDS_PER_THREAD; i++)
		dups += all[i] == all[i - 1];
	CHECK(dups == 0, "zero duplicates over %d IDs (%zu)", THREADS * IDS_PER_THREAD, dups);
	sf_gen_free(gen);
	free(all);
	return CHECK_DONE();
}
