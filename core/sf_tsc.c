/*
 * The TSC clock: a mint's wall and monotonic time from one RDTSC.
 *
 * Why: a mint is a clock read plus one CAS, and clock_gettime costs about
 * twice what RDTSC does (its vDSO adds a seqlock, a clock-ID switch and a
 * timespec). The kernel's clocks stay the reference; this clock is
 *
 *     mono_ns = scaled(tsc) + mono_off_ns      wall_ns = mono_ns + wall_mono_ns
 *
 * where `scaled` is a fixed rate measured at start and set RATE_BIAS slower
 * than the kernel's clocks, and the offsets are re-measured with
 * clock_gettime whenever the newest anchor is more than one millisecond of
 * ticks away. So every reading is within a millisecond of ticks of a kernel
 * reading, and lags it by at most RATE_BIAS of that millisecond plus the
 * anchor's read error (together well under a microsecond).
 *
 * mono_off_ns only grows (CAS to the larger value): with the slower rate a
 * fresh anchor always finds the clock behind, never ahead. So the clock never
 * goes back, and a thread that saw another thread's ID (acquire on the
 * generator's word) reads a time at least as late, as with the kernel's clock.
 * wall_mono_ns changes only when the kernel's (wall - mono) moves by more than
 * STEP_NS: a wall-clock step. A step back then shows to the generator as a
 * regression, within a millisecond, as it would on clock_gettime.
 *
 * If the kernel's monotonic clock slows down against the TSC by more than
 * RATE_BIAS (an operator or chrony slewing hard), readings would run ahead of
 * it; the first anchor that finds them ahead by more than LEAD_LIMIT_NS turns
 * the TSC clock off for the process, and minting reads clock_gettime from
 * then on. The same happens when the kernel stops using the TSC as its
 * clocksource (sf_tsc_recheck, from the mark keeper's thread).
 *
 * Used only on x86-64 with an invariant TSC, when the kernel's clocksource is
 * "tsc" (the kernel then checked that the CPUs' TSCs agree), and unless
 * SNOWFLAKE_CLOCK_SOURCE=clock_gettime.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "sf_internal.h"

#define RATE_BIAS      200e-6               /* our rate is this much slower than the kernel's, */
                                            /* beyond the calibration's own error bound */
#define STEP_NS        (100 * 1000)         /* (wall - mono) moves beyond this: a clock step */
#define LEAD_LIMIT_NS  (50 * 1000)          /* ahead of CLOCK_MONOTONIC by more: rate too fast */
#define ANCHOR_WINDOW_NS 20000              /* an anchor's TSC-mono pair must fit in this */
#define WALL_WINDOW_NS (40 * 1000)          /* and its wall read in this */
#define FRESH_NS       SF_NS_PER_MS         /* an anchor older than this when applied is dropped */
#define CALIBRATION_NS (5 * SF_NS_PER_MS)
#define CLOCKSOURCE_PATH "/sys/devices/system/clocksource/clocksource0/current_clocksource"

struct sf_tsc_clock sf_tsc;

static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;
static uint64_t window_ticks;
static uint64_t fresh_ticks;
static _Atomic int tsc_off_reason; /* enum tsc_off; 0 while on or never tried */

enum tsc_off {
	TSC_OFF_NONE = 0,
	TSC_OFF_UNSUPPORTED,    /* no invariant TSC, or not x86-64 */
	TSC_OFF_CLOCKSOURCE,    /* the kernel does not use the TSC */
	TSC_OFF_CONFIGURED,     /* SNOWFLAKE_CLOCK_SOURCE=clock_gettime */
	TSC_OFF_CALLER,         /* sf_clock_source_avoid_tsc (clock.source in the config) */
	TSC_OFF_CALIBRATION,    /* rate out of any sane range */
	TSC_OFF_RAN_AHEAD,      /* readings ran ahead of CLOCK_MONOTONIC */
};

static const char *const tsc_off_text[] = {
	[TSC_OFF_NONE] = "",
	[TSC_OFF_UNSUPPORTED] = "no invariant TSC",
	[TSC_OFF_CLOCKSOURCE] = "the kernel's clocksource is not tsc",
	[TSC_OFF_CONFIGURED] = "SNOWFLAKE_CLOCK_SOURCE=clock_gettime",
	[TSC_OFF_CALLER] = "configured: clock.source = \"clock_gettime\"",
	[TSC_OFF_CALIBRATION] = "TSC rate out of range at calibration",
	[TSC_OFF_RAN_AHEAD] = "TSC readings ran ahead of CLOCK_MONOTONIC (clock slewed hard)",
};

static int64_t timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static bool clocksource_is_tsc(void)
{
	char name[32] = "";
	FILE *f = fopen(CLOCKSOURCE_PATH, "re");

	if (!f)
		return false;
	if (!fgets(name, sizeof name, f))
		name[0] = '\0';
	fclose(f);
	return strcmp(name, "tsc\n") == 0 || strcmp(name, "tsc") == 0;
}

static bool cpu_has_invariant_tsc(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;

	if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
		return false;
	__get_cpuid(0x80000007u, &a, &b, &c, &d);
	return (d >> 8) & 1;
#else
	return false;
#endif
}

static void tsc_turn_off(enum tsc_off why)
{
	int none = TSC_OFF_NONE;

	atomic_store_explicit(&sf_tsc.on, false, memory_order_seq_cst);
	/* no tick is within a span of 0: every reading goes to sf_tsc_reanchor,
	 * which now says no */
	atomic_store_explicit(&sf_tsc.anchor_tsc, 0, memory_order_seq_cst);
	atomic_compare_exchange_strong(&tsc_off_reason, &none, (int)why);
}

/*
 * An anchor: the TSC at the moment CLOCK_MONOTONIC was read (the middle of a
 * window of at most window_ticks; a few tries, then give up), and the
 * kernel's (wall - mono) read just after, to within WALL_WINDOW_NS (far
 * inside STEP_NS; a wall read may be slow, e.g. under libfaketime).
 */
static bool tsc_anchor_read(uint64_t *tsc, int64_t *mono_ns, int64_t *wall_mono_ns)
{
	for (int tries = 0; tries < 4; tries++) {
		struct timespec m1, w, m2;
		const uint64_t t1 = sf_tsc_read_ordered();

		clock_gettime(CLOCK_MONOTONIC, &m1);

		const uint64_t t2 = sf_tsc_read_ordered();

		if (t2 - t1 > window_ticks)
			continue;
		clock_gettime(CLOCK_REALTIME, &w);
		clock_gettime(CLOCK_MONOTONIC, &m2);
		if (timespec_ns(&m2) - timespec_ns(&m1) > WALL_WINDOW_NS)
			continue;
		*tsc = t1 + (t2 - t1) / 2;
		*mono_ns = timespec_ns(&m1);
		*wall_mono_ns = timespec_ns(&w) - (timespec_ns(&m1) + timespec_ns(&m2)) / 2;
		return true;
	}
	return false;
}

/* For the rate: the tightest of several (TSC, CLOCK_MONOTONIC) pairs, and
 * its window (how far the pairing may be off, in ticks). */
static void tsc_calibration_pair(uint64_t *tsc, int64_t *mono_ns, uint64_t *window)
{
	*window = UINT64_MAX;
	for (int tries = 0; tries < 16; tries++) {
		struct timespec m;
		const uint64_t t1 = sf_tsc_read_ordered();

		clock_gettime(CLOCK_MONOTONIC, &m);

		const uint64_t t2 = sf_tsc_read_ordered();

		if (t2 - t1 < *window) {
			*window = t2 - t1;
			*tsc = t1 + (t2 - t1) / 2;
			*mono_ns = timespec_ns(&m);
		}
	}
}

static void tsc_init(void)
{
	const char *want = getenv("SNOWFLAKE_CLOCK_SOURCE");
	uint64_t t1, t2, window1, window2, t;
	int64_t m1, m2, m, wall_mono;

	if (want && strcmp(want, "clock_gettime") == 0) {
		atomic_store(&tsc_off_reason, TSC_OFF_CONFIGURED);
		return;
	}
	if (!cpu_has_invariant_tsc()) {
		atomic_store(&tsc_off_reason, TSC_OFF_UNSUPPORTED);
		return;
	}
	if (!clocksource_is_tsc()) {
		atomic_store(&tsc_off_reason, TSC_OFF_CLOCKSOURCE);
		return;
	}
	tsc_calibration_pair(&t1, &m1, &window1);

	const struct timespec pause = { 0, CALIBRATION_NS };

	while (nanosleep(&pause, NULL) != 0 && errno == EINTR)
		;
	tsc_calibration_pair(&t2, &m2, &window2);
	if (t2 <= t1 || m2 <= m1) {
		atomic_store(&tsc_off_reason, TSC_OFF_CALIBRATION);
		return;
	}
	const double ns_per_tick = (double)(m2 - m1) / (double)(t2 - t1);
	/* each pair may be off by half its window: the rate by this much at most.
	 * The bias must cover it, or readings could run ahead of the kernel's
	 * (a loaded machine, or a sanitizer build, widens the windows) */
	const double rate_error = (double)(window1 + window2) / 2.0 / (double)(t2 - t1);

	if (!(ns_per_tick > 0.05 && ns_per_tick < 20.0) || rate_error > 0.01) { /* 50 MHz .. 20 GHz */
		atomic_store(&tsc_off_reason, TSC_OFF_CALIBRATION);
		return;
	}
	sf_tsc.mult = (uint64_t)(ns_per_tick * (1.0 - RATE_BIAS - rate_error) * 4294967296.0);
	sf_tsc.span_ticks = (uint64_t)((double)SF_NS_PER_MS / ns_per_tick);
	window_ticks = (uint64_t)((double)ANCHOR_WINDOW_NS / ns_per_tick);
	fresh_ticks = (uint64_t)((double)FRESH_NS / ns_per_tick);
	if (!tsc_anchor_read(&t, &m, &wall_mono)) {
		atomic_store(&tsc_off_reason, TSC_OFF_CALIBRATION);
		return;
	}
	atomic_store(&sf_tsc.mono_off_ns, m - sf_tsc_scaled(t));
	atomic_store(&sf_tsc.wall_mono_ns, wall_mono);
	atomic_store(&sf_tsc.on, true);
	atomic_store(&sf_tsc.anchor_tsc, t);
}

bool sf_tsc_start(void)
{
	pthread_once(&tsc_once, tsc_init);
	return atomic_load_explicit(&sf_tsc.on, memory_order_acquire);
}

bool sf_tsc_reanchor(void)
{
	uint64_t t;
	int64_t mono_ns, wall_mono;

	if (!atomic_load_explicit(&sf_tsc.on, memory_order_acquire))
		return false;
	if (!tsc_anchor_read(&t, &mono_ns, &wall_mono))
		return false; /* preempted every try: this mint reads clock_gettime */

	const int64_t mono_off = mono_ns - sf_tsc_scaled(t);

	/* an anchor held up (preempted) for long before it is applied would look
	 * like the TSC clock running ahead: apply only fresh ones */
	if (sf_tsc_read_ordered() - t > fresh_ticks)
		return true;

	int64_t cur = atomic_load_explicit(&sf_tsc.mono_off_ns, memory_order_relaxed);

	if (mono_off < cur - LEAD_LIMIT_NS) {
		tsc_turn_off(TSC_OFF_RAN_AHEAD);
		return false;
	}
	while (mono_off > cur &&
	       !atomic_compare_exchange_weak_explicit(&sf_tsc.mono_off_ns, &cur, mono_off,
	                                              memory_order_seq_cst, memory_order_relaxed))
		;
	cur = atomic_load_explicit(&sf_tsc.wall_mono_ns, memory_order_relaxed);
	if (wall_mono > cur + STEP_NS || wall_mono < cur - STEP_NS)
		atomic_store_explicit(&sf_tsc.wall_mono_ns, wall_mono, memory_order_seq_cst);
	/* last: a reader that sees this anchor sees offsets at least this new */
	atomic_store_explicit(&sf_tsc.anchor_tsc, t, memory_order_seq_cst);
	if (!atomic_load_explicit(&sf_tsc.on, memory_order_seq_cst)) {
		atomic_store_explicit(&sf_tsc.anchor_tsc, 0, memory_order_seq_cst); /* turned off meanwhile */
		return false;
	}
	return true;
}

void sf_tsc_recheck(void)
{
	static _Atomic int64_t next_check_ns;
	struct timespec now;

	if (!atomic_load_explicit(&sf_tsc.on, memory_order_relaxed))
		return;
	/* a sysfs read: at most once a second, whoever calls */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);

	int64_t due = atomic_load_explicit(&next_check_ns, memory_order_relaxed);

	if (timespec_ns(&now) < due ||
	    !atomic_compare_exchange_strong(&next_check_ns, &due, timespec_ns(&now) + 1000 * SF_NS_PER_MS))
		return;
	if (!clocksource_is_tsc())
		tsc_turn_off(TSC_OFF_CLOCKSOURCE);
}

void sf_clock_source_avoid_tsc(void)
{
	sf_tsc_start(); /* after this the TSC clock never turns on */
	if (atomic_load(&sf_tsc.on))
		tsc_turn_off(TSC_OFF_CALLER);
}

const char *sf_clock_source(const char **why_not)
{
	const bool on = sf_tsc_start();

	if (why_not)
		*why_not = tsc_off_text[atomic_load(&tsc_off_reason)];
	return on ? "tsc" : "clock_gettime";
}
