/*
 * Core benchmarks. Prints "BENCH <name> <value> <unit>" lines; every figure
 * is the median of `rounds` runs, ratios are taken round by round. The mint
 * reads the TSC clock where the machine allows it (core/sf_tsc.c); `make
 * bench` also runs the unsaturated mint without it (SNOWFLAKE_CLOCK_SOURCE=
 * clock_gettime), as core_next_clock_gettime_*.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snowflake.h"

#define CEILING_IDS_PER_S 4096000.0

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static sf_gen *make_gen(sf_layout l)
{
	sf_gen *gen;

	if (sf_gen_new(&l, NULL, &gen) != SF_OK)
		exit(1);
	sf_gen_ceiling_set(gen, SF_CEILING_LOCAL, INT64_MAX);
	sf_gen_grant(gen, 1, sf_clock_mono_ns(NULL) + 3600LL * 1000000000LL);
	return gen;
}

static volatile int64_t sink;

static double bench_clock_ns(int n)
{
	int64_t t0 = now_ns(), acc = 0;

	for (int i = 0; i < n; i++)
		acc += sf_clock_wall_ns(NULL);
	sink = acc;
	return (double)(now_ns() - t0) / n;
}

static double bench_next_ns(sf_gen *gen, int n)
{
	int64_t t0 = now_ns(), acc = 0, id;

	for (int i = 0; i < n; i++) {
		if (sf_next(gen, &id, NULL) != SF_OK)
			exit(2);
		acc += id;
	}
	sink = acc;
	return (double)(now_ns() - t0) / n;
}

struct sat_arg {
	sf_gen *gen;
	int64_t until_ns;
	uint64_t count;
};

static void *saturate(void *p)
{
	struct sat_arg *a = p;
	int64_t id;

	while (now_ns() < a->until_ns)
		for (int i = 0; i < 256; i++)
			if (sf_next_spin(a->gen, &id, NULL, 2000000) == SF_OK)
				a->count++;
	return NULL;
}

static double bench_saturated(int threads, int64_t duration_ns)
{
	sf_layout l = SF_LAYOUT_DEFAULT;
	sf_gen *gen = make_gen(l);
	struct sat_arg args[8];
	pthread_t tid[8];
	uint64_t total = 0;
	int64_t t0 = now_ns();

	for (int i = 0; i < threads; i++) {
		args[i] = (struct sat_arg){ gen, t0 + duration_ns, 0 };
		pthread_create(&tid[i], NULL, saturate, &args[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		total += args[i].count;
	}
	sf_gen_free(gen);
	return (double)total / ((double)(now_ns() - t0) / 1e9);
}

static double bench_batch_ns(sf_gen *gen, int n)
{
	static int64_t ids[4096];
	int64_t t0 = now_ns();

	for (int i = 0; i < n; i++)
		if (sf_next_batch(gen, ids, 4096, NULL, 2000000) != SF_OK)
			exit(3);
	sink = ids[4095];
	return (double)(now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	/* bench_core ROUNDS NAME: only the unsaturated mint, printed as core_next_NAME_* */
	const char *only_next = argc > 2 ? argv[2] : NULL;
	/* 21 sequence bits: 2 M IDs a millisecond, which one thread never reaches */
	sf_layout wide = { SF_DEFAULT_EPOCH_MS, 41, 1, 21 };
	sf_gen *gen = make_gen(wide);
	double clk[32], nxt[32], ratio[32], s1[32], s2[32], bt[32];

	if (rounds < 1 || rounds > 32)
		rounds = 5;
	bench_next_ns(gen, 1000000); /* warm up */
	for (int r = 0; r < rounds; r++) {
		clk[r] = bench_clock_ns(2000000);
		nxt[r] = bench_next_ns(gen, 2000000);
		ratio[r] = nxt[r] / clk[r];
		if (only_next)
			continue;
		bt[r] = bench_batch_ns(gen, 2000);
		s1[r] = bench_saturated(1, 300000000);
		s2[r] = bench_saturated(2, 300000000);
	}
	{
		const char *why_not;
		const char *source = sf_clock_source(&why_not);

		printf("# core: minting reads %s%s%s\n", source, *why_not ? ": " : "", why_not);
	}
	if (only_next) {
		/* the same figures for a generator that does not use the TSC */
		printf("BENCH core_next_%s_ns %.2f ns\n", only_next, median(nxt, rounds));
		printf("BENCH core_next_%s_vs_clock %.3f ratio\n", only_next, median(ratio, rounds));
		sf_gen_free(gen);
		return 0;
	}
	printf("BENCH clock_read_ns %.2f ns\n", median(clk, rounds));
	printf("BENCH core_next_ns %.2f ns\n", median(nxt, rounds));
	printf("BENCH core_next_vs_clock %.3f ratio\n", median(ratio, rounds));
	{
		double m1 = median(s1, rounds), m2 = median(s2, rounds);

		printf("BENCH core_saturated_1t_ids_per_s %.0f ids/s\n", m1);
		printf("BENCH core_saturated_1t_vs_ceiling %.4f ratio\n", m1 / CEILING_IDS_PER_S);
		printf("BENCH core_saturated_2t_ids_per_s %.0f ids/s\n", m2);
		printf("BENCH core_saturated_2t_vs_ceiling %.4f ratio\n", m2 / CEILING_IDS_PER_S);
	}
	printf("BENCH core_batch4096_ns %.0f ns\n", median(bt, rounds));
	sf_gen_free(gen);
	return 0;
}
