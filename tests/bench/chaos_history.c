/*
 * tests/bench/chaos_history.c: a synthetic history of N IDs for timing the chaos
 * checker (tests/chaos/check.c) the way make bench times everything else: the
 * same history every run, shaped like a soak's.
 *
 *   chaos_history N DIR    writes DIR/client0.log DIR/client1.log (the drill
 *                          client's format: 16 slots each, three nodes behind
 *                          three VIPs, a tenth JSON, a tenth /ids of 1..64, one
 *                          request in 1024 a 503 then a failed request) and
 *                          DIR/p1.log .. DIR/p3.log (one lease window each)
 *
 * Deterministic (an LCG with a fixed seed); IDs follow the default layout and
 * are valid (no duplicate, per-worker order, inside the windows), so the checker
 * must exit 0 on it.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 16
#define FILES 2
#define MONO0_US 18734916960LL
#define WALL0_US 1796190487808880LL
#define EPOCH_MS 1704067200000LL

static const int workers[3] = { 418, 77, 358 };
static const char *const nodes[3] = { "p1", "p2", "p3" };

int main(int argc, char **argv)
{
	long target = argc > 1 ? atol(argv[1]) : 0;
	const char *dir = argc > 2 ? argv[2] : NULL;
	int64_t last_ms[3] = { -1, -1, -1 }, seq[3] = { 0, 0, 0 };
	long n_ids = 0, next_req[FILES][SLOTS] = { { 0 } }, n_batches[FILES][SLOTS] = { { 0 } };
	int64_t t = MONO0_US + 1000;
	uint64_t r = 12345;
	char path[512];
	FILE *f[FILES];

	if (target <= 0 || !dir) {
		fprintf(stderr, "usage: chaos_history N DIR\n");
		return 2;
	}
	for (int i = 0; i < FILES; i++) {
		snprintf(path, sizeof path, "%s/client%d.log", dir, i);
		if (!(f[i] = fopen(path, "w"))) {
			perror(path);
			return 1;
		}
		fprintf(f[i], "# drill-client label=c%d addr=10.213.0.100 port=8080 conns=%d rate=0 mono_us=%lld "
		        "wall_us=%lld addrs=10.213.0.100,10.213.0.101,10.213.0.102 tries=3 json_pct=10 ids_pct=10 "
		        "max_count=64\n", i, SLOTS, MONO0_US, WALL0_US);
	}
	while (n_ids < target) {
		for (int fi = 0; fi < FILES; fi++)
			for (int s = 0; s < SLOTS; s++) {
				r = r * 6364136223846793005ULL + 1442695040888963407ULL;
				t += 3 + (int64_t)(r >> 60);
				int64_t start = t, end = t + 200 + (int64_t)((r >> 40) & 255);
				long req = next_req[fi][s]++;
				int mix = (int)((req * 37) % 100), node = (int)((s + req) % 3), count = 1;

				if (((r >> 20) & 1023) == 0) {
					fprintf(f[fi], "E %" PRId64 " %" PRId64 " %d http 503:fenced %d 1 %ld\n", start, end, s, node, req);
					fprintf(f[fi], "F %" PRId64 " %" PRId64 " %d 1 %ld\n", start, end, s, req);
					continue;
				}
				const char *kind = mix < 10 ? "json" : mix < 20 ? "ids" : "id";
				if (mix >= 10 && mix < 20)
					count = 1 << (n_batches[fi][s]++ % 7);
				int64_t ms = (WALL0_US + (start - MONO0_US) + 100) / 1000;
				if (ms > last_ms[node]) {
					last_ms[node] = ms;
					seq[node] = 0;
				}
				if (seq[node] + count > 4096) {
					fprintf(stderr, "chaos_history: sequence overflow\n");
					return 1;
				}
				for (int c = 0; c < count; c++) {
					uint64_t id = (uint64_t)(ms - EPOCH_MS) << 22 | (uint64_t)workers[node] << 12 | (uint64_t)seq[node]++;
					fprintf(f[fi], "I %" PRId64 " %" PRId64 " %d %" PRIu64 " %s %d 1 %s %ld %d\n", start, end, s, id,
					        nodes[node], node, kind, req, workers[node]);
					n_ids++;
				}
			}
	}
	for (int i = 0; i < FILES; i++)
		if (fclose(f[i]) != 0) {
			perror("fclose");
			return 1;
		}
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s.log", dir, nodes[i]);
		FILE *p = fopen(path, "w");
		if (!p) {
			perror(path);
			return 1;
		}
		fprintf(p, "edge-snowflake lease state=minting worker=%d reason=ok pid=%d mono_ms=%lld: minting\n",
		        workers[i], 100 + i, MONO0_US / 1000 - 1000);
		fprintf(p, "edge-snowflake lease state=stopped worker=-1 reason=stopped pid=%d mono_ms=%" PRId64
		        " fence_mono_ms=%" PRId64 ": stopped\n", 100 + i, t / 1000 + 1000, t / 1000 + 2000);
		fclose(p);
	}
	fprintf(stderr, "chaos_history: %ld IDs over %.1f s\n", n_ids, (double)(t - MONO0_US) / 1e6);
	return 0;
}
