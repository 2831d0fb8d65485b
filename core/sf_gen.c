/*
 * The generator: lock-free minting over one 64-bit word.
 *
 * `last` holds (milliseconds since the epoch << sequence_bits) | sequence of
 * the last reservation. Every mint reads the wall clock, computes the next
 * word and publishes it with one compare-and-swap, so the word only grows and
 * no (timestamp, sequence) pair is handed out twice, whatever the number of
 * threads.
 *
 * `grant` packs a valid flag, the fencing deadline (CLOCK_MONOTONIC ms) and
 * the worker ID into one word, so a minting thread never pairs a worker with
 * another lease's deadline. After reading the wall clock, the minting thread
 * reads the monotonic clock itself and compares it with the deadline: the
 * check holds even when the thread that maintains the lease is frozen, and a
 * timestamp is never newer than the moment its lease was seen alive (a mint
 * frozen between the two reads refuses on resume).
 *
 * A revocation or a change of worker bumps `last` by one after publishing
 * the new grant, and a mint loads `last` before the grant: a mint that saw
 * the old grant fails its CAS and starts over. So once sf_gen_revoke returns,
 * nothing more is issued under the old grant, and the last issued timestamp
 * is final (the lease relies on that to lower its registry mark on release).
 *
 * With the real clocks a mint reads the time from the TSC where it can
 * (sf_tsc.c): one RDTSC gives both the wall time it stamps and a monotonic
 * time for the fence, lagging the kernel's by under a microsecond. Far from
 * the deadline that settles the fence; within FENCE_GUARD_NS of it the
 * kernel's CLOCK_MONOTONIC, read after the TSC, decides.
 *
 * Without the TSC the fence is first read on CLOCK_MONOTONIC_COARSE
 * (≈4 ns instead of ≈19 ns here). The coarse clock lags the precise one by
 * about a tick, but more after idle or under a loaded hypervisor (seen here:
 * beyond its 4 ms resolution), so it only settles the common case, far from
 * the deadline: within FENCE_GUARD_NS of it the precise CLOCK_MONOTONIC
 * decides, and the fence closes exactly on time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "sf_internal.h"

#define GRANT_VALID         (1ULL << 63)
#define GRANT_WORKER_MASK   0xffffULL
#define GRANT_DEADLINE_MAX  ((1LL << 47) - 1) /* ms; 4,000+ years of uptime */

#define CACHE_LINE 64

/* far more than the coarse clock's lag, small enough that the precise read
 * is needed only in the last moments of a lease */
#define FENCE_GUARD_NS (64 * SF_NS_PER_MS)
/* The fast fence reads the coarse monotonic clock before the wall clock (the
 * two reads overlap). A thread frozen between them would stamp a fresh wall
 * time under a stale fence reading; it shows as a jump of (wall - mono) by
 * the freeze's length. Jumps beyond this slack take the precise path; those
 * within it are far inside FENCE_GUARD_NS, so the timestamp still cannot
 * reach the deadline. */
#define FREEZE_SLACK_MS 32
/* A TSC reading may be taken a little before the load of `last` that
 * precedes it (no LFENCE, see sf_tsc_read), and the TSCs of two CPUs may
 * differ by a little: a reading this close below the last used millisecond
 * is that millisecond, not a clock regression. Stamping it with that
 * millisecond moves no ID more than this into the future. */
#define TSC_SLACK_NS (2 * 1000)

struct sf_gen {
	/* written by every mint: alone on its line */
	_Alignas(CACHE_LINE) _Atomic uint64_t last;

	/* read by every mint, written rarely */
	_Alignas(CACHE_LINE) _Atomic uint64_t grant;
	_Atomic int64_t ceiling_rel_ms;   /* min of the ceilings, relative to the epoch */
	_Atomic int64_t max_wait_ms;
	_Atomic bool    borrow;
	bool            real_clock;
	bool            tsc;              /* real clocks read through the TSC clock */
	unsigned        seq_bits;
	unsigned        id_ts_shift;      /* worker_bits + sequence_bits */
	uint64_t        seq_mask;
	int64_t         max_ts_rel;
	int64_t         epoch_ms;
	int64_t         epoch_ns;
	int64_t         fence_guard_ns;   /* margin the fast fence check keeps */
	_Atomic int64_t wall_mono_ms;     /* wall - precise mono, in ms, at the last precise check */
	sf_clock        clock;
	sf_layout       layout;

	/* cold */
	_Alignas(CACHE_LINE) _Atomic int revoke_code;
	pthread_mutex_t ceiling_lock;
	int64_t         ceilings[2];      /* Unix ms; guarded by ceiling_lock */
	_Atomic uint64_t clock_waits;
	_Atomic uint64_t clock_refusals;
	_Atomic uint64_t clock_borrows;
	_Atomic uint64_t sequence_exhausted;
	_Atomic uint64_t fenced_refusals;
	_Atomic uint64_t hwm_stalls;
	_Atomic int64_t  last_regression_ms;
};

static inline int64_t gen_wall_ns(const sf_gen *gen)
{
	struct timespec ts;

	if (sf_likely(gen->real_clock)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	}
	return gen->clock.wall_ns(gen->clock.ctx);
}

/*
 * Without the TSC: true when the fence is closed for a timestamp read at
 * wall_ms_rel, with fast_mono_ns (CLOCK_MONOTONIC_COARSE) read just before
 * that wall clock read. The fast answer needs the deadline well away and no
 * sign of a freeze between the two reads; otherwise the precise
 * CLOCK_MONOTONIC, read now (after the wall clock), decides.
 */
static inline bool gen_fence_closed(sf_gen *gen, int64_t deadline_ns, int64_t fast_mono_ns,
                                    int64_t wall_ms_rel)
{
	if (sf_likely(fast_mono_ns + gen->fence_guard_ns < deadline_ns)) {
		const int64_t skew = wall_ms_rel - fast_mono_ns / SF_NS_PER_MS -
		                     atomic_load_explicit(&gen->wall_mono_ms, memory_order_relaxed);

		/* the coarse clock lags, so skew is >= 0 plus its lag when nothing froze */
		if (sf_likely(skew >= -1 && skew <= FREEZE_SLACK_MS))
			return false;
	}
	const int64_t mono_ns = sf_clock_mono_ns(NULL);

	if (mono_ns >= deadline_ns)
		return true;
	atomic_store_explicit(&gen->wall_mono_ms, wall_ms_rel - mono_ns / SF_NS_PER_MS,
	                      memory_order_relaxed);
	return false;
}

/*
 * One reading of the time for a mint: returns the wall time it stamps, in ns
 * since the epoch, and sets *fenced when the fence was closed at that reading.
 */
static inline __attribute__((always_inline))
int64_t gen_read_time(sf_gen *gen, int64_t deadline_ns, bool *fenced)
{
	int64_t wall_ns, mono_ns;

	if (sf_likely(gen->tsc) && sf_likely(sf_tsc_now(&wall_ns, &mono_ns))) {
		*fenced = mono_ns + gen->fence_guard_ns >= deadline_ns &&
		          sf_clock_mono_ns(NULL) >= deadline_ns;
		return wall_ns - gen->epoch_ns;
	}
	if (gen->real_clock) {
		struct timespec coarse, now;

		clock_gettime(CLOCK_MONOTONIC_COARSE, &coarse);
		clock_gettime(CLOCK_REALTIME, &now);

		/* tv_nsec is 0..999999999, so this division is unsigned and cheap */
		const int64_t wall_ms_rel = (int64_t)now.tv_sec * 1000 +
		                            (int64_t)((unsigned long)now.tv_nsec / 1000000UL) - gen->epoch_ms;

		*fenced = gen_fence_closed(gen, deadline_ns,
		                           (int64_t)coarse.tv_sec * 1000000000LL + coarse.tv_nsec, wall_ms_rel);
		return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec - gen->epoch_ns;
	}
	wall_ns = gen->clock.wall_ns(gen->clock.ctx);
	*fenced = gen->clock.mono_ns(gen->clock.ctx) >= deadline_ns;
	return wall_ns - gen->epoch_ns;
}

/* ms since the epoch; a test clock may read before the epoch */
static inline int64_t gen_ms_of(int64_t ns_rel)
{
	if (sf_likely(ns_rel >= 0))
		return (int64_t)((uint64_t)ns_rel / (uint64_t)SF_NS_PER_MS);
	return sf_floor_div(ns_rel, SF_NS_PER_MS);
}

int sf_gen_new(const sf_layout *layout, const sf_clock *clock, sf_gen **out)
{
	sf_gen *gen;
	int rc;

	if (!layout || !out)
		return SF_E_INVALID;
	if (clock && (!clock->wall_ns || !clock->mono_ns))
		return SF_E_INVALID;
	rc = sf_layout_check(layout, sf_clock_wall_ns(clock) / SF_NS_PER_MS, NULL);
	if (rc != SF_OK)
		return rc;
	gen = aligned_alloc(CACHE_LINE, (sizeof *gen + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE);
	if (!gen)
		return SF_E_NOMEM;
	*gen = (sf_gen){ 0 };
	gen->layout = *layout;
	gen->real_clock = clock == NULL;
	if (clock)
		gen->clock = *clock;
	gen->seq_bits = layout->sequence_bits;
	gen->id_ts_shift = layout->worker_bits + layout->sequence_bits;
	gen->seq_mask = (1ULL << layout->sequence_bits) - 1;
	gen->max_ts_rel = (int64_t)((1ULL << layout->timestamp_bits) - 1);
	gen->epoch_ms = layout->epoch_ms;
	gen->epoch_ns = layout->epoch_ms * SF_NS_PER_MS;
	gen->tsc = gen->real_clock && sf_tsc_start();
	gen->fence_guard_ns = gen->real_clock ? FENCE_GUARD_NS : 0;
	atomic_init(&gen->wall_mono_ms, INT64_MIN / 2); /* first mint: precise path */
	atomic_init(&gen->last, 0);
	atomic_init(&gen->grant, 0);
	atomic_init(&gen->revoke_code, SF_E_NO_LEASE);
	atomic_init(&gen->ceiling_rel_ms, INT64_MIN);
	atomic_init(&gen->max_wait_ms, 20);
	atomic_init(&gen->borrow, false);
	atomic_init(&gen->last_regression_ms, 0);
	gen->ceilings[SF_CEILING_LOCAL] = INT64_MIN;
	gen->ceilings[SF_CEILING_REGISTRY] = INT64_MAX;
	if (pthread_mutex_init(&gen->ceiling_lock, NULL) != 0) {
		free(gen);
		return SF_E_NOMEM;
	}
	*out = gen;
	return SF_OK;
}

void sf_gen_free(sf_gen *gen)
{
	if (!gen)
		return;
	pthread_mutex_destroy(&gen->ceiling_lock);
	free(gen);
}

const sf_layout *sf_gen_layout(const sf_gen *gen)
{
	return &gen->layout;
}

const sf_clock *sf_gen_clock(const sf_gen *gen)
{
	return gen->real_clock ? NULL : &gen->clock;
}

int sf_gen_set_max_wait_ms(sf_gen *gen, int64_t max_wait_ms)
{
	if (max_wait_ms < 0)
		return SF_E_INVALID;
	atomic_store_explicit(&gen->max_wait_ms, max_wait_ms, memory_order_relaxed);
	return SF_OK;
}

void sf_gen_set_borrow(sf_gen *gen, bool borrow)
{
	atomic_store_explicit(&gen->borrow, borrow, memory_order_relaxed);
}

int64_t sf_gen_max_wait_ms(const sf_gen *gen)
{
	return atomic_load_explicit(&gen->max_wait_ms, memory_order_relaxed);
}

bool sf_gen_borrow(const sf_gen *gen)
{
	return atomic_load_explicit(&gen->borrow, memory_order_relaxed);
}

/* Strictly increasing, so no mint that read `last` before can CAS after.
 * A bump from the last sequence number of a millisecond marks the next
 * millisecond's first number used: a gap, and at worst a wait of under a
 * millisecond for a mint on a clock still in the old one. */
static void gen_bump(sf_gen *gen)
{
	atomic_fetch_add_explicit(&gen->last, 1, memory_order_acq_rel);
}

int sf_gen_grant(sf_gen *gen, uint32_t worker, int64_t fence_deadline_ns)
{
	int64_t deadline_ms;

	if ((uint64_t)worker >> gen->layout.worker_bits)
		return SF_E_WORKER_RANGE;
	/* rounded down: the fence may close early, never late */
	deadline_ms = sf_floor_div(fence_deadline_ns, SF_NS_PER_MS);
	if (deadline_ms < 0)
		deadline_ms = 0;
	if (deadline_ms > GRANT_DEADLINE_MAX)
		deadline_ms = GRANT_DEADLINE_MAX;
	const uint64_t grant = GRANT_VALID | ((uint64_t)deadline_ms << 16) | worker;
	/* seq_cst: the lease re-checks its park/canary flags after this */
	const uint64_t before = atomic_exchange_explicit(&gen->grant, grant, memory_order_seq_cst);

	/* Only a valid grant can have mints in flight. A later deadline for the
	 * same worker needs no bump: a mint that read the earlier one checked a
	 * stricter fence. */
	if ((before & GRANT_VALID) &&
	    ((before & GRANT_WORKER_MASK) != worker || (before & ~GRANT_WORKER_MASK) > (grant & ~GRANT_WORKER_MASK)))
		gen_bump(gen);
	return SF_OK;
}

void sf_gen_revoke(sf_gen *gen, int code)
{
	if (code >= 0 || code < SF_CODE_MIN)
		code = SF_E_NO_LEASE;
	atomic_store_explicit(&gen->revoke_code, code, memory_order_relaxed);
	if (atomic_exchange_explicit(&gen->grant, 0, memory_order_seq_cst) & GRANT_VALID)
		gen_bump(gen); /* mints in flight under the withdrawn grant fail their CAS */
}

int sf_gen_grant_get(const sf_gen *gen, int32_t *worker, int64_t *fence_deadline_ns, int *code)
{
	uint64_t grant = atomic_load_explicit(&gen->grant, memory_order_acquire);

	if (!(grant & GRANT_VALID)) {
		if (worker)
			*worker = -1;
		if (fence_deadline_ns)
			*fence_deadline_ns = 0;
		if (code)
			*code = atomic_load_explicit(&gen->revoke_code, memory_order_relaxed);
		return SF_OK;
	}
	if (worker)
		*worker = (int32_t)(grant & GRANT_WORKER_MASK);
	if (fence_deadline_ns)
		*fence_deadline_ns = (int64_t)((grant & ~GRANT_VALID) >> 16) * SF_NS_PER_MS;
	if (code)
		*code = SF_OK;
	return SF_OK;
}

void sf_gen_ceiling_set(sf_gen *gen, enum sf_ceiling which, int64_t unix_ms)
{
	int64_t lowest, rel;

	if (which != SF_CEILING_LOCAL && which != SF_CEILING_REGISTRY)
		return;
	pthread_mutex_lock(&gen->ceiling_lock);
	gen->ceilings[which] = unix_ms;
	lowest = gen->ceilings[SF_CEILING_LOCAL] < gen->ceilings[SF_CEILING_REGISTRY]
	         ? gen->ceilings[SF_CEILING_LOCAL] : gen->ceilings[SF_CEILING_REGISTRY];
	if (lowest == INT64_MAX)
		rel = INT64_MAX;
	else if (lowest < gen->epoch_ms)
		rel = INT64_MIN;
	else
		rel = lowest - gen->epoch_ms;
	atomic_store_explicit(&gen->ceiling_rel_ms, rel, memory_order_release);
	pthread_mutex_unlock(&gen->ceiling_lock);
}

int64_t sf_gen_ceiling_get(const sf_gen *gen, enum sf_ceiling which)
{
	int64_t v;

	if (which != SF_CEILING_LOCAL && which != SF_CEILING_REGISTRY)
		return INT64_MIN;
	pthread_mutex_lock((pthread_mutex_t *)&gen->ceiling_lock);
	v = gen->ceilings[which];
	pthread_mutex_unlock((pthread_mutex_t *)&gen->ceiling_lock);
	return v;
}

int sf_gen_floor_raise(sf_gen *gen, int64_t unix_ms)
{
	uint64_t floor_word, old;
	int64_t rel;

	if (unix_ms < gen->epoch_ms)
		return SF_OK;
	if (unix_ms - gen->epoch_ms > gen->max_ts_rel) /* no overflow: both >= 0 here */
		return SF_E_TIMESTAMP_OVERFLOW;
	rel = unix_ms - gen->epoch_ms;
	/* the whole millisecond counts as used */
	floor_word = ((uint64_t)rel << gen->seq_bits) | gen->seq_mask;
	old = atomic_load_explicit(&gen->last, memory_order_relaxed);
	while (old < floor_word &&
	       !atomic_compare_exchange_weak_explicit(&gen->last, &old, floor_word,
	                                              memory_order_acq_rel, memory_order_relaxed))
		;
	return SF_OK;
}

void sf_gen_position(const sf_gen *gen, int64_t *unix_ms, uint32_t *seq)
{
	uint64_t last = atomic_load_explicit(&gen->last, memory_order_acquire);

	if (last == 0) {
		*unix_ms = gen->epoch_ms - 1;
		*seq = (uint32_t)gen->seq_mask;
		return;
	}
	*unix_ms = (int64_t)(last >> gen->seq_bits) + gen->epoch_ms;
	*seq = (uint32_t)(last & gen->seq_mask);
}

int64_t sf_gen_last_ms(const sf_gen *gen)
{
	uint64_t last = atomic_load_explicit(&gen->last, memory_order_acquire);

	if (last == 0)
		return gen->epoch_ms - 1;
	return (int64_t)(last >> gen->seq_bits) + gen->epoch_ms;
}

/*
 * The refusal paths' report (see sf_report), from what the refusing call
 * saw: the grant and the word `last` it loaded, the timestamp it refused
 * (ms since the epoch). Cold: a mint that succeeds never comes here, so the
 * minting path neither locks nor writes a report. Returns code.
 */
static __attribute__((noinline, cold))
int gen_refused(const sf_gen *gen, int code, uint64_t grant, uint64_t last, int64_t ts_rel,
                sf_report *report)
{
	if (!report)
		return code;
	*report = (sf_report){ 0 };
	report->worker = grant & GRANT_VALID ? (int32_t)(grant & GRANT_WORKER_MASK) : -1;
	report->last_ms = last == 0 ? gen->epoch_ms - 1 : (int64_t)(last >> gen->seq_bits) + gen->epoch_ms;
	switch (code) {
	case SF_E_FENCED:
		if (grant & GRANT_VALID)
			report->deadline_ns = (int64_t)((grant & ~GRANT_VALID) >> 16) * SF_NS_PER_MS;
		report->mono_ns = sf_clock_mono_ns(sf_gen_clock(gen));
		break;
	case SF_E_HWM_STALLED:
		pthread_mutex_lock((pthread_mutex_t *)&gen->ceiling_lock);
		report->local_ceiling_ms = gen->ceilings[SF_CEILING_LOCAL];
		report->registry_ceiling_ms = gen->ceilings[SF_CEILING_REGISTRY];
		pthread_mutex_unlock((pthread_mutex_t *)&gen->ceiling_lock);
		report->clock_ms = ts_rel + gen->epoch_ms;
		break;
	case SF_E_TIMESTAMP_OVERFLOW:
		report->clock_ms = ts_rel + gen->epoch_ms;
		break;
	default:
		break;
	}
	return code;
}

/* The clock part of a report: the clock is at or below the last used
 * millisecond last_ms (relative), read as now_ns_rel; max_wait_ms the bound
 * the regression was held to. */
static __attribute__((noinline, cold))
int gen_refused_behind(const sf_gen *gen, int code, uint64_t grant, uint64_t last, int64_t now_ns_rel,
                       int64_t now_ms, int64_t last_ms, int64_t max_wait_ms, sf_report *report)
{
	if (report) {
		gen_refused(gen, code, grant, last, now_ms, report);
		report->wait_ns = (last_ms + 1) * SF_NS_PER_MS - now_ns_rel;
		report->regression_ms = last_ms - now_ms;
		report->max_wait_ms = max_wait_ms;
		report->clock_ms = now_ms + gen->epoch_ms;
	}
	return code;
}

/* The clock is at or below the last used millisecond and that millisecond
 * cannot give more numbers: classify as exhaustion, wait or refusal. */
static __attribute__((noinline, cold))
int gen_behind(sf_gen *gen, uint64_t grant, uint64_t last, int64_t now_ns_rel, int64_t now_ms,
               int64_t last_ms, sf_report *report)
{
	const int64_t regression_ms = last_ms - now_ms;
	const int64_t max_wait_ms = atomic_load_explicit(&gen->max_wait_ms, memory_order_relaxed);
	int code;

	if (regression_ms == 0) {
		atomic_fetch_add_explicit(&gen->sequence_exhausted, 1, memory_order_relaxed);
		return gen_refused_behind(gen, SF_E_SEQUENCE_EXHAUSTED, grant, last, now_ns_rel, now_ms,
		                          last_ms, 0, report);
	}
	atomic_store_explicit(&gen->last_regression_ms, regression_ms, memory_order_relaxed);
	if (regression_ms <= max_wait_ms) {
		atomic_fetch_add_explicit(&gen->clock_waits, 1, memory_order_relaxed);
		code = SF_E_CLOCK_WAIT;
	} else {
		atomic_fetch_add_explicit(&gen->clock_refusals, 1, memory_order_relaxed);
		code = SF_E_CLOCK_REGRESSED;
	}
	return gen_refused_behind(gen, code, grant, last, now_ns_rel, now_ms, last_ms, max_wait_ms, report);
}

/*
 * Reserves up to `want` (>= 1) numbers of one millisecond with one CAS.
 * The hot path: no lock, no allocation, no syscall but the two vDSO clock
 * reads.
 */
static inline __attribute__((always_inline))
int gen_reserve(sf_gen *gen, uint32_t want, sf_run *run, sf_report *report)
{
	const unsigned seq_bits = gen->seq_bits;
	const uint64_t seq_mask = gen->seq_mask;

	for (;;) {
		/* the word first: then a later millisecond in it was published before
		 * the clock read below began (it means the clock went back, not that
		 * another thread won a race), and a grant change bumps it (see top) */
		uint64_t old = atomic_load_explicit(&gen->last, memory_order_acquire);
		const uint64_t grant = atomic_load_explicit(&gen->grant, memory_order_acquire);

		if (sf_unlikely(!(grant & GRANT_VALID)))
			return gen_refused(gen, atomic_load_explicit(&gen->revoke_code, memory_order_relaxed),
			                   grant, old, 0, report);

		const int64_t deadline_ns = (int64_t)((grant & ~GRANT_VALID) >> 16) * SF_NS_PER_MS;
		bool fenced;
		const int64_t now_ns_rel = gen_read_time(gen, deadline_ns, &fenced);
		int64_t now_ms = gen_ms_of(now_ns_rel);
		const int64_t last_ms = (int64_t)(old >> seq_bits);
		const uint64_t last_seq = old & seq_mask;
		uint64_t first;
		uint64_t room;
		bool borrowed = false;

		if (sf_unlikely(now_ms < last_ms) && gen->tsc &&
		    now_ns_rel + TSC_SLACK_NS >= last_ms * SF_NS_PER_MS)
			now_ms = last_ms;
		if (sf_likely(now_ms > last_ms)) {
			first = (uint64_t)now_ms << seq_bits;
			room = seq_mask + 1;
		} else if (last_seq != seq_mask &&
		           (now_ms == last_ms ||
		            atomic_load_explicit(&gen->borrow, memory_order_relaxed))) {
			first = old + 1;
			room = seq_mask - last_seq;
			borrowed = now_ms != last_ms;
		} else {
			return gen_behind(gen, grant, old, now_ns_rel, now_ms, last_ms, report);
		}

		const uint32_t count = want < room ? want : (uint32_t)room;
		const int64_t ts = (int64_t)(first >> seq_bits);

		if (sf_unlikely(ts > atomic_load_explicit(&gen->ceiling_rel_ms, memory_order_acquire))) {
			atomic_fetch_add_explicit(&gen->hwm_stalls, 1, memory_order_relaxed);
			return gen_refused(gen, SF_E_HWM_STALLED, grant, old, ts, report);
		}
		if (sf_unlikely(ts > gen->max_ts_rel))
			return gen_refused(gen, SF_E_TIMESTAMP_OVERFLOW, grant, old, ts, report);

		/* the fence, by this thread, on a monotonic clock, checked against
		 * the reading it stamps (see gen_read_time) */
		if (sf_unlikely(fenced)) {
			atomic_fetch_add_explicit(&gen->fenced_refusals, 1, memory_order_relaxed);
			return gen_refused(gen, SF_E_FENCED, grant, old, ts, report);
		}
		if (!atomic_compare_exchange_weak_explicit(&gen->last, &old, first + count - 1,
		                                           memory_order_acq_rel, memory_order_relaxed))
			continue;

		if (sf_unlikely(borrowed))
			atomic_fetch_add_explicit(&gen->clock_borrows, count, memory_order_relaxed);

		run->first = (int64_t)(((uint64_t)ts << gen->id_ts_shift) |
		                       ((grant & GRANT_WORKER_MASK) << seq_bits) |
		                       (first & seq_mask));
		run->count = count;
		return SF_OK;
	}
}

int sf_next(sf_gen *gen, int64_t *id, sf_report *report)
{
	sf_run run = { 0, 0 };
	int rc = gen_reserve(gen, 1, &run, report);

	if (sf_likely(rc == SF_OK))
		*id = run.first;
	return rc;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Spins while a used-up millisecond ends. Bounded twice: by the clock, and
 * by a count of rounds so that a stopped test clock cannot hang the caller.
 */
struct spin_budget {
	int64_t start_ns;
	int64_t limit_ns;
	int64_t rounds_left;
};

static void spin_budget_init(struct spin_budget *b, int64_t limit_ns)
{
	b->start_ns = INT64_MIN;
	b->limit_ns = limit_ns;
	b->rounds_left = limit_ns / 8 + 64;
}

/* true when another round is allowed */
static bool spin_budget_take(sf_gen *gen, struct spin_budget *b)
{
	int64_t now = gen_wall_ns(gen);

	if (b->start_ns == INT64_MIN)
		b->start_ns = now;
	if (b->limit_ns <= 0 || now - b->start_ns > b->limit_ns || --b->rounds_left < 0)
		return false;
	cpu_relax();
	return true;
}

int sf_next_spin(sf_gen *gen, int64_t *id, sf_report *report, int64_t spin_limit_ns)
{
	struct spin_budget budget;
	int rc;

	spin_budget_init(&budget, spin_limit_ns);
	for (;;) {
		rc = sf_next(gen, id, report);
		if (sf_likely(rc != SF_E_SEQUENCE_EXHAUSTED))
			return rc;
		/* preempted past the budget, the next millisecond may be here by now:
		 * one more try, never a stale refusal */
		if (!spin_budget_take(gen, &budget))
			return sf_next(gen, id, report);
	}
}

int sf_reserve(sf_gen *gen, uint32_t want, sf_run *run, sf_report *report)
{
	if (want == 0 || !run)
		return SF_E_BATCH_RANGE;
	return gen_reserve(gen, want, run, report);
}

int sf_next_batch_some(sf_gen *gen, int64_t *out, uint32_t n, uint32_t *got, sf_report *report,
                       int64_t spin_limit_ns)
{
	struct spin_budget budget;
	uint32_t filled = 0;
	sf_run run = { 0, 0 };
	int rc = SF_OK;

	if (got)
		*got = 0;
	if (n == 0 || !out || !got)
		return SF_E_BATCH_RANGE;
	spin_budget_init(&budget, spin_limit_ns);
	while (filled < n) {
		rc = gen_reserve(gen, n - filled, &run, report);
		if (rc == SF_E_SEQUENCE_EXHAUSTED) {
			if (spin_budget_take(gen, &budget))
				continue;
			rc = gen_reserve(gen, n - filled, &run, report);
		}
		if (rc != SF_OK)
			break;
		for (uint32_t i = 0; i < run.count; i++)
			out[filled + i] = run.first + (int64_t)i;
		filled += run.count;
		spin_budget_init(&budget, spin_limit_ns);
	}
	*got = filled;
	return rc;
}

int sf_next_batch(sf_gen *gen, int64_t *out, uint32_t n, sf_report *report, int64_t spin_limit_ns)
{
	uint32_t got;

	return sf_next_batch_some(gen, out, n, &got, report, spin_limit_ns);
}

int sf_gen_probe(const sf_gen *gen, sf_report *report)
{
	const uint64_t grant = atomic_load_explicit(&gen->grant, memory_order_acquire);
	const uint64_t last = atomic_load_explicit(&gen->last, memory_order_acquire);

	if (report) {
		*report = (sf_report){ 0 };
		report->worker = -1;
	}
	if (!(grant & GRANT_VALID))
		return gen_refused(gen, atomic_load_explicit(&gen->revoke_code, memory_order_relaxed),
		                   grant, last, 0, report);

	/* the same reading a mint takes, so the probe and the mints agree on the
	 * millisecond (only the cache of wall - mono it may refresh is written) */
	bool fenced;
	const int64_t now_ns_rel = gen_read_time((sf_gen *)gen,
	                                         (int64_t)((grant & ~GRANT_VALID) >> 16) * SF_NS_PER_MS,
	                                         &fenced);

	const int64_t now_ms = gen_ms_of(now_ns_rel);

	if (fenced)
		return gen_refused(gen, SF_E_FENCED, grant, last, now_ms, report);

	const int64_t last_ms = (int64_t)(last >> gen->seq_bits);

	if (now_ms < last_ms) {
		const int64_t regression_ms = last_ms - now_ms;
		const int64_t max_wait_ms = atomic_load_explicit(&gen->max_wait_ms, memory_order_relaxed);
		const int code = atomic_load_explicit(&gen->borrow, memory_order_relaxed) &&
		                 (last & gen->seq_mask) != gen->seq_mask ? SF_OK
		                 : regression_ms <= max_wait_ms ? SF_E_CLOCK_WAIT : SF_E_CLOCK_REGRESSED;

		/* a borrowed answer still says how far the clock is behind */
		return gen_refused_behind(gen, code, grant, last, now_ns_rel, now_ms, last_ms, max_wait_ms,
		                          report);
	}
	if (now_ms > atomic_load_explicit(&gen->ceiling_rel_ms, memory_order_acquire))
		return gen_refused(gen, SF_E_HWM_STALLED, grant, last, now_ms, report);
	if (now_ms > gen->max_ts_rel)
		return gen_refused(gen, SF_E_TIMESTAMP_OVERFLOW, grant, last, now_ms, report);
	return SF_OK;
}

void sf_gen_stats_get(const sf_gen *gen, sf_gen_stats *out)
{
	out->clock_waits = atomic_load_explicit(&gen->clock_waits, memory_order_relaxed);
	out->clock_refusals = atomic_load_explicit(&gen->clock_refusals, memory_order_relaxed);
	out->clock_borrows = atomic_load_explicit(&gen->clock_borrows, memory_order_relaxed);
	out->sequence_exhausted = atomic_load_explicit(&gen->sequence_exhausted, memory_order_relaxed);
	out->fenced_refusals = atomic_load_explicit(&gen->fenced_refusals, memory_order_relaxed);
	out->hwm_stalls = atomic_load_explicit(&gen->hwm_stalls, memory_order_relaxed);
	out->last_regression_ms = atomic_load_explicit(&gen->last_regression_ms, memory_order_relaxed);
}

int sf_gen_start_check(sf_gen *gen, int64_t local_mark_ms, int64_t registry_mark_ms,
                       int64_t bound_ms, sf_report *report)
{
	const int64_t mark = local_mark_ms > registry_mark_ms ? local_mark_ms : registry_mark_ms;
	const int64_t now_ns = gen_wall_ns(gen);
	const int64_t now_ms = sf_floor_div(now_ns, SF_NS_PER_MS);

	if (report) {
		*report = (sf_report){ 0 };
		report->worker = -1;
		report->clock_ms = now_ms;
	}
	if (bound_ms < 0)
		return SF_E_INVALID;
	if (mark == INT64_MIN || now_ms > mark)
		return mark == INT64_MIN ? SF_OK : sf_gen_floor_raise(gen, mark);
	/* a mark beyond any sane clock reading (INT64_MAX / 1e6 ms) is refused
	 * before the ns arithmetic below could overflow */
	if (mark - now_ms >= bound_ms || mark >= INT64_MAX / SF_NS_PER_MS - 1) {
		if (report) {
			report->regression_ms = mark - now_ms;
			report->wait_ns = mark >= INT64_MAX / SF_NS_PER_MS - 1 ? INT64_MAX
			                  : (mark + 1) * SF_NS_PER_MS - now_ns;
		}
		return registry_mark_ms > local_mark_ms ? SF_E_REGISTRY_HWM_AHEAD : SF_E_HWM_AHEAD;
	}
	if (report) {
		report->wait_ns = (mark + 1) * SF_NS_PER_MS - now_ns;
		report->regression_ms = mark - now_ms;
	}
	return SF_E_CLOCK_WAIT;
}
