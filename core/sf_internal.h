/*
 * Internal helpers shared by the core's files. Not installed.
 */
#ifndef SF_INTERNAL_H
#define SF_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "snowflake.h"

#define SF_NS_PER_MS ((int64_t)1000000)

#define sf_likely(x)   __builtin_expect(!!(x), 1)
#define sf_unlikely(x) __builtin_expect(!!(x), 0)

/* Floor division for time values that may be negative (a test clock). */
static inline int64_t sf_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- the generator (sf_gen.c) ------------------------------------------ */

/* Where the generator stands: the millisecond (Unix) and sequence of the
 * last ID it issued, or of the floor it was raised to. The next ID is
 * above it. */
void sf_gen_position(const sf_gen *gen, int64_t *unix_ms, uint32_t *seq);

/* ---- the local mark file (sf_hwm.c) ------------------------------------ */

/* The whole of a mark file's bytes: "sfhwm1 <digits>\n", the value within
 * int64_t. Returns SF_OK (and *mark) or SF_E_STATE_CORRUPT. Here for the
 * mark file's fuzz target: it is read from outside bytes. */
int sf_hwm_parse(const char *text, size_t len, int64_t *mark);
/* What sf_hwm_store writes for mark (snprintf's return). */
int sf_hwm_format(char *buf, size_t size, int64_t mark);

/* ---- the TSC clock (sf_tsc.c) ------------------------------------------ */

struct sf_tsc_clock {
	_Alignas(64) _Atomic uint64_t anchor_tsc;  /* TSC of the newest anchor; 0 when off */
	_Atomic int64_t mono_off_ns;   /* CLOCK_MONOTONIC = scaled(tsc) + this; only grows */
	_Atomic int64_t wall_mono_ns;  /* CLOCK_REALTIME - CLOCK_MONOTONIC, as of the last step */
	uint64_t        mult;          /* ns per tick, 32.32 fixed point; set once */
	uint64_t        span_ticks;    /* one millisecond of ticks: the most a reading extrapolates */
	_Atomic bool    on;
};

extern struct sf_tsc_clock sf_tsc __attribute__((visibility("hidden")));

bool sf_tsc_start(void);     /* once per process: checks and calibrates; true when on */
bool sf_tsc_reanchor(void);  /* false: read clock_gettime instead */
void sf_tsc_recheck(void);   /* off the hot path: still the kernel's clocksource? */

/* A mint's read: not ordered after earlier instructions (an LFENCE would
 * cost a quarter of the mint). It may run a few dozen ns early, before the
 * load of the generator's word; the generator allows for that (TSC_SLACK_NS). */
static inline uint64_t sf_tsc_read(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
#else
	return 0;
#endif
}

/* An anchor's read: after every earlier instruction, so it brackets the
 * clock_gettime calls around it. */
static inline uint64_t sf_tsc_read_ordered(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;

	__asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
#else
	return 0;
#endif
}

static inline int64_t sf_tsc_scaled(uint64_t tsc)
{
	return (int64_t)(((unsigned __int128)tsc * sf_tsc.mult) >> 32);
}

/* Both clocks from one TSC reading; false when the caller must read
 * clock_gettime (TSC off, or an anchor could not be taken). */
static inline __attribute__((always_inline)) bool sf_tsc_now(int64_t *wall_ns, int64_t *mono_ns)
{
	for (int round = 0; round < 2; round++) {
		const uint64_t tsc = sf_tsc_read();
		const uint64_t anchor = atomic_load_explicit(&sf_tsc.anchor_tsc, memory_order_acquire);
		const uint64_t span = sf_tsc.span_ticks;

		/* within one span of the anchor, either side (unsigned wrap-around
		 * makes both sides one comparison) */
		if (sf_likely(tsc - anchor + span <= 2 * span)) {
			const int64_t mono = sf_tsc_scaled(tsc) +
			                     atomic_load_explicit(&sf_tsc.mono_off_ns, memory_order_relaxed);

			*mono_ns = mono;
			*wall_ns = mono + atomic_load_explicit(&sf_tsc.wall_mono_ns, memory_order_relaxed);
			return true;
		}
		if (!sf_tsc_reanchor())
			return false;
	}
	return false;
}

#endif
