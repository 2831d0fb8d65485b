/*
 * edge-snowflake core: unique, time-sortable 64-bit IDs.
 *
 * Plain C11, no Lua, no HAProxy, no ZooKeeper. Every function returns SF_OK
 * (0) or a negative SF_E_* code and hands values back through out-parameters;
 * the comment above each one lists the codes it returns ("a revoke code" is
 * whatever the last sf_gen_revoke set: SF_E_NO_LEASE before any grant).
 * sf_code_name() maps a code to a stable snake_case string that the HTTP layer
 * and the metrics use as-is; sf_code_text() gives a human sentence.
 *
 * Time sources come through sf_clock so that tests drive time exactly; a NULL
 * clock means the real CLOCK_REALTIME / CLOCK_MONOTONIC.
 */
#ifndef SNOWFLAKE_H
#define SNOWFLAKE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_API __attribute__((visibility("default")))

/* ---- codes ------------------------------------------------------------ */

enum sf_code {
	SF_OK                       =   0,
	SF_E_INVALID                =  -1, /* invalid_argument */
	SF_E_LAYOUT_WIDTHS          =  -2, /* layout_widths: the three widths do not sum to 63 */
	SF_E_LAYOUT_TIMESTAMP_BITS  =  -3, /* layout_timestamp_bits */
	SF_E_LAYOUT_WORKER_BITS     =  -4, /* layout_worker_bits */
	SF_E_LAYOUT_SEQUENCE_BITS   =  -5, /* layout_sequence_bits */
	SF_E_LAYOUT_EPOCH           =  -6, /* layout_epoch: negative or in the future */
	SF_E_WORKER_RANGE           =  -7, /* worker_out_of_range */
	SF_E_NO_LEASE               =  -8, /* no_lease: no worker ID granted */
	SF_E_FENCED                 =  -9, /* fenced: the lease deadline (minus margin) passed */
	SF_E_CLOCK_WAIT             = -10, /* clock_wait: small regression, wait sf_report.wait_ns */
	SF_E_CLOCK_REGRESSED        = -11, /* clock_regressed: regression above the wait bound */
	SF_E_SEQUENCE_EXHAUSTED     = -12, /* sequence_exhausted: this millisecond is used up */
	SF_E_HWM_STALLED            = -13, /* hwm_stalled: the durable mark did not keep ahead */
	SF_E_HWM_AHEAD              = -14, /* hwm_ahead: local mark further ahead than the bound */
	SF_E_REGISTRY_HWM_AHEAD     = -15, /* registry_hwm_ahead: registry mark beyond the bound */
	SF_E_STATE_IO               = -16, /* state_io: the state directory cannot be used */
	SF_E_STATE_CORRUPT          = -17, /* state_corrupt: a mark file is unreadable */
	SF_E_TIMESTAMP_OVERFLOW     = -18, /* timestamp_exhausted: the layout's time range is over */
	SF_E_BATCH_RANGE            = -19, /* batch_out_of_range */
	SF_E_PARKED                 = -20, /* parked: an operator or the canary parked the node */
	SF_E_ID_RANGE               = -21, /* id_out_of_range: not a valid ID for this layout */
	SF_E_NOT_FOUND              = -22, /* not_found */
	SF_E_NOMEM                  = -23, /* out_of_memory */
	SF_E_CLOCK_UNSYNCED         = -24, /* clock_unsynchronised: adjtimex says so */
	SF_E_CLOCK_MAXERROR         = -25, /* clock_max_error: adjtimex max error too large */
	SF_E_REGISTRY               = -26, /* registry_error */
	SF_E_NO_FREE_WORKER         = -27, /* no_free_worker: every worker ID is taken or quarantined */
	SF_E_QUARANTINED            = -28, /* quarantined */
	SF_E_STOPPED                = -29, /* stopped */
	SF_E_REGISTRY_ACCESS        = -30, /* registry_access: refused by the registry's ACL, an
	                                      unusable lease.auth_file, or an ACL open to anyone
	                                      under lease.require_acl */
	SF_CODE_MIN                 = -30
};

/* Stable snake_case name of a code ("ok" for 0, "unknown_error" otherwise). */
SF_API const char *sf_code_name(int code);
/* One human sentence describing a code. */
SF_API const char *sf_code_text(int code);

/* ---- clocks ----------------------------------------------------------- */

/* Nanoseconds. wall_ns is Unix time (CLOCK_REALTIME); mono_ns is a clock that
 * never steps (CLOCK_MONOTONIC). A test clock returns whatever it was told. */
typedef struct sf_clock {
	int64_t (*wall_ns)(void *ctx);
	int64_t (*mono_ns)(void *ctx);
	void *ctx;
} sf_clock;

SF_API int64_t sf_clock_wall_ns(const sf_clock *clock);
SF_API int64_t sf_clock_mono_ns(const sf_clock *clock);

/* What a generator on the real clocks mints with: "tsc" (the CPU's invariant
 * TSC, re-anchored on clock_gettime every millisecond; see sf_tsc.c) or
 * "clock_gettime". With *why_not (may be NULL) why the TSC is not used, or ""
 * while it is. The environment variable SNOWFLAKE_CLOCK_SOURCE=clock_gettime,
 * read once per process, keeps the TSC out. */
SF_API const char *sf_clock_source(const char **why_not);
/* Keeps the TSC out of this process from now on (an operator's choice, e.g.
 * the Lua config's clock.source = "clock_gettime"). Safe at any time: mints
 * already under way finish on the TSC clock, later ones read clock_gettime. */
SF_API void sf_clock_source_avoid_tsc(void);

/* ---- layout ----------------------------------------------------------- */

#define SF_DEFAULT_EPOCH_MS 1704067200000LL /* 2024-01-01T00:00:00Z */

/* Accepted ranges; the three widths must sum to 63 (the sign bit stays 0). */
#define SF_TIMESTAMP_BITS_MIN 35
#define SF_TIMESTAMP_BITS_MAX 47
#define SF_WORKER_BITS_MIN     1
#define SF_WORKER_BITS_MAX    16
#define SF_SEQUENCE_BITS_MIN   1
#define SF_SEQUENCE_BITS_MAX  22

typedef struct sf_layout {
	int64_t  epoch_ms;       /* Unix milliseconds of timestamp 0 */
	unsigned timestamp_bits;
	unsigned worker_bits;
	unsigned sequence_bits;
} sf_layout;

#define SF_LAYOUT_DEFAULT { SF_DEFAULT_EPOCH_MS, 41, 10, 12 }

/* Checks a layout against now_unix_ms (the epoch must not be in the future).
 * On failure *field, when not NULL, names the offending key ("layout.epoch_ms",
 * "layout.timestamp_bits", ...). Returns SF_OK or one of SF_E_INVALID (NULL
 * layout), SF_E_LAYOUT_TIMESTAMP_BITS, SF_E_LAYOUT_WORKER_BITS,
 * SF_E_LAYOUT_SEQUENCE_BITS, SF_E_LAYOUT_WIDTHS, SF_E_LAYOUT_EPOCH, checked in
 * that order. */
SF_API int sf_layout_check(const sf_layout *layout, int64_t now_unix_ms, const char **field);

typedef struct sf_decoded {
	int64_t  timestamp_ms;   /* Unix milliseconds, not relative to the epoch */
	uint32_t worker;
	uint32_t sequence;
} sf_decoded;

/* Splits an ID. Returns SF_OK or one of SF_E_INVALID (NULL argument, or an
 * unchecked layout with a width above 63, worker plus sequence bits above 63
 * or a negative epoch), SF_E_ID_RANGE (a negative ID, or bits outside the
 * layout's widths). */
SF_API int sf_id_decode(const sf_layout *layout, int64_t id, sf_decoded *out);
/* The inverse of sf_id_decode, range-checked. Returns SF_OK or one of
 * SF_E_INVALID (NULL argument, a layout sf_id_decode refuses, or a sequence
 * beyond sequence_bits),
 * SF_E_TIMESTAMP_OVERFLOW (before the epoch or past the layout's range),
 * SF_E_WORKER_RANGE. */
SF_API int sf_id_compose(const sf_layout *layout, const sf_decoded *parts, int64_t *id);

/* ---- generator -------------------------------------------------------- */

/*
 * One generator per process is the intended use (the Lua binding keeps the
 * process-wide instance); tests make as many as they like. All functions are
 * safe to call from any thread at any time.
 *
 * Minting is lock-free: a single 64-bit word holds (timestamp, sequence) of
 * the last issue and is advanced by compare-and-swap. A second word, the
 * grant, holds the worker ID and the fencing deadline together so that a
 * minting thread always sees a consistent pair.
 */
typedef struct sf_gen sf_gen;

/*
 * What a refusal or a wait is about, as the generator saw it at that moment
 * (a caller that re-read the generator afterwards could describe a later
 * state). Every field is set on every refusal, 0 where it does not apply
 * (worker: -1); a mint that succeeds leaves the report untouched, so the
 * minting path pays nothing for it. The figures per code:
 *   SF_E_CLOCK_WAIT, SF_E_CLOCK_REGRESSED: wait_ns, regression_ms,
 *     max_wait_ms, last_ms, clock_ms
 *   SF_E_SEQUENCE_EXHAUSTED: wait_ns, last_ms, clock_ms
 *   SF_E_FENCED: worker, deadline_ns, mono_ns (worker -1: the grant was
 *     withdrawn with SF_E_FENCED)
 *   SF_E_HWM_STALLED: clock_ms, local_ceiling_ms, registry_ceiling_ms
 *   SF_E_TIMESTAMP_OVERFLOW: clock_ms
 *   sf_gen_start_check's refusals: wait_ns, regression_ms, clock_ms
 * and last_ms (the last used millisecond) on every mint refusal.
 */
typedef struct sf_report {
	int64_t wait_ns;             /* how long until the clock passes the last used ms */
	int64_t regression_ms;       /* last used ms minus the clock's ms (0 if none) */
	int64_t max_wait_ms;         /* the bound the regression was held to */
	int64_t last_ms;             /* Unix ms: the last used millisecond */
	int64_t clock_ms;            /* Unix ms: the clock reading (or timestamp) refused */
	int64_t deadline_ns;         /* the grant's fencing deadline (monotonic ns) */
	int64_t mono_ns;             /* the monotonic reading at the refusal */
	int64_t local_ceiling_ms;    /* INT64_MIN: never published */
	int64_t registry_ceiling_ms; /* INT64_MAX: unset */
	int32_t worker;              /* the grant's worker, -1 without a grant */
} sf_report;

/* A contiguous run of IDs: first, first+1, ..., first+count-1. */
typedef struct sf_run {
	int64_t  first;
	uint32_t count;
} sf_run;

typedef struct sf_gen_stats {
	uint64_t clock_waits;          /* regressions reported as wait */
	uint64_t clock_refusals;       /* regressions refused */
	uint64_t clock_borrows;        /* IDs issued from a frozen millisecond */
	uint64_t sequence_exhausted;   /* times a millisecond ran out */
	uint64_t fenced_refusals;
	uint64_t hwm_stalls;
	int64_t  last_regression_ms;   /* size of the latest regression seen */
} sf_gen_stats;

/* A generator for layout on clock (NULL: the real clocks); it refuses
 * SF_E_NO_LEASE until granted and SF_E_HWM_STALLED until a local ceiling is
 * set. Returns SF_OK or one of SF_E_INVALID (NULL layout or out, a clock
 * without both functions), the codes of sf_layout_check, SF_E_NOMEM. */
SF_API int  sf_gen_new(const sf_layout *layout, const sf_clock *clock, sf_gen **out);
SF_API void sf_gen_free(sf_gen *gen);
SF_API const sf_layout *sf_gen_layout(const sf_gen *gen);
SF_API const sf_clock *sf_gen_clock(const sf_gen *gen);

/* Clock-regression thresholds (the policy lives with the caller).
 * sf_gen_set_max_wait_ms returns SF_OK or SF_E_INVALID (max_wait_ms < 0). */
SF_API int  sf_gen_set_max_wait_ms(sf_gen *gen, int64_t max_wait_ms);
SF_API void sf_gen_set_borrow(sf_gen *gen, bool borrow);
SF_API int64_t sf_gen_max_wait_ms(const sf_gen *gen);
SF_API bool sf_gen_borrow(const sf_gen *gen);

/* Publishes the worker ID and the fencing deadline (CLOCK_MONOTONIC ns)
 * together. Minting refuses SF_E_FENCED from the deadline on. Returns SF_OK
 * or SF_E_WORKER_RANGE (a worker outside the layout). */
SF_API int  sf_gen_grant(sf_gen *gen, uint32_t worker, int64_t fence_deadline_ns);
/* Withdraws the grant: minting refuses with `code` (SF_E_NO_LEASE,
 * SF_E_PARKED, SF_E_FENCED, ...) until the next grant. */
SF_API void sf_gen_revoke(sf_gen *gen, int code);
/* Current worker (or -1) and fencing deadline; *code is why minting refuses
 * when there is no grant (SF_OK while granted). Any out-parameter may be
 * NULL. Returns SF_OK. */
SF_API int  sf_gen_grant_get(const sf_gen *gen, int32_t *worker, int64_t *fence_deadline_ns, int *code);

/* Write-ahead ceilings (Unix ms): minting never uses a timestamp above the
 * lower of the two. The local one comes from the state file, the registry
 * one from the lease; an unset ceiling (INT64_MAX) does not limit. Until a
 * local ceiling is published the generator refuses SF_E_HWM_STALLED. */
enum sf_ceiling { SF_CEILING_LOCAL = 0, SF_CEILING_REGISTRY = 1 };
SF_API void sf_gen_ceiling_set(sf_gen *gen, enum sf_ceiling which, int64_t unix_ms);
SF_API int64_t sf_gen_ceiling_get(const sf_gen *gen, enum sf_ceiling which);

/* Raises the last-issued point so that nothing at or below unix_ms is ever
 * issued again (used on start with the stored marks); a point before the
 * epoch changes nothing. Returns SF_OK or SF_E_TIMESTAMP_OVERFLOW (past the
 * layout's range). */
SF_API int  sf_gen_floor_raise(sf_gen *gen, int64_t unix_ms);
/* The highest timestamp (Unix ms) issued so far, or epoch - 1 if none. */
SF_API int64_t sf_gen_last_ms(const sf_gen *gen);

/*
 * One ID. Returns SF_OK or one of:
 *   a revoke code (no grant: SF_E_NO_LEASE, SF_E_PARKED, SF_E_FENCED,
 *     SF_E_STOPPED, SF_E_QUARANTINED, ...),
 *   SF_E_SEQUENCE_EXHAUSTED (this millisecond is used up),
 *   SF_E_CLOCK_WAIT (a regression within max_wait_ms),
 *   SF_E_CLOCK_REGRESSED (a larger one),
 *   SF_E_HWM_STALLED (the timestamp would pass a ceiling),
 *   SF_E_TIMESTAMP_OVERFLOW (the layout's time range is used up),
 *   SF_E_FENCED (the fencing deadline passed).
 * On a refusal the report (may be NULL) says what it was about; with
 * SF_E_SEQUENCE_EXHAUSTED and SF_E_CLOCK_WAIT, retry after wait_ns.
 */
SF_API int  sf_next(sf_gen *gen, int64_t *id, sf_report *report);
/* As sf_next, but a used-up millisecond is waited out here by spinning on
 * the clock, at most spin_limit_ns (SF_E_SEQUENCE_EXHAUSTED after that).
 * Returns the codes of sf_next. */
SF_API int  sf_next_spin(sf_gen *gen, int64_t *id, sf_report *report, int64_t spin_limit_ns);
/* Reserves up to `want` consecutive IDs of the current millisecond with one
 * compare-and-swap; run->count may be less than want. Returns the codes of
 * sf_next, or SF_E_BATCH_RANGE (want 0, or run NULL). */
SF_API int  sf_reserve(sf_gen *gen, uint32_t want, sf_run *run, sf_report *report);
/* Exactly n IDs in increasing order into out[], across milliseconds as
 * needed (spinning up to spin_limit_ns for each new millisecond), or a
 * refusal; IDs reserved before a refusal are dropped (a gap, never a
 * duplicate). Returns the codes of sf_next, or SF_E_BATCH_RANGE (n 0, or out
 * NULL). */
SF_API int  sf_next_batch(sf_gen *gen, int64_t *out, uint32_t n, sf_report *report,
                          int64_t spin_limit_ns);
/* As sf_next_batch, but *got (always set) says how many of out[] were
 * reserved before a refusal: they are valid, unique IDs the caller may hand
 * out (e.g. the rest after a yield, when the refusal is
 * SF_E_SEQUENCE_EXHAUSTED) or drop. Returns the codes of sf_next, or
 * SF_E_BATCH_RANGE (n 0, or out or got NULL). */
SF_API int  sf_next_batch_some(sf_gen *gen, int64_t *out, uint32_t n, uint32_t *got,
                               sf_report *report, int64_t spin_limit_ns);

SF_API void sf_gen_stats_get(const sf_gen *gen, sf_gen_stats *out);
/* Would a mint succeed now? The checks of sf_next without reserving
 * anything (for health checks): SF_OK or the code a mint would refuse with
 * (a revoke code, SF_E_FENCED, SF_E_CLOCK_WAIT, SF_E_CLOCK_REGRESSED,
 * SF_E_HWM_STALLED, SF_E_TIMESTAMP_OVERFLOW; never SF_E_SEQUENCE_EXHAUSTED,
 * which lasts under a millisecond), report filled as sf_next would (cleared
 * first; a borrow answers SF_OK with the regression reported). Counts
 * nothing. */
SF_API int  sf_gen_probe(const sf_gen *gen, sf_report *report);

/* On start (or on claiming a worker ID): the clock must pass the larger of
 * the stored local mark and the supplied (registry) mark. Returns SF_OK once
 * it has (and raises the floor), SF_E_CLOCK_WAIT with report->wait_ns while
 * the remaining wait is within bound_ms, or SF_E_HWM_AHEAD /
 * SF_E_REGISTRY_HWM_AHEAD when it is beyond the bound. Either mark may be
 * INT64_MIN for "none". Also SF_E_INVALID (bound_ms < 0) and
 * SF_E_TIMESTAMP_OVERFLOW (a mark past the layout's range, from
 * sf_gen_floor_raise). The report is cleared first. */
SF_API int  sf_gen_start_check(sf_gen *gen, int64_t local_mark_ms, int64_t registry_mark_ms,
                               int64_t bound_ms, sf_report *report);

/* ---- high-water mark files -------------------------------------------- */

/* One file a worker ID under dir: "<dir>/worker-<id>.hwm". Stored with a
 * temp file, fsync, rename and an fsync of the directory. errno is left as
 * the failing call set it.
 * sf_hwm_load returns SF_OK or one of SF_E_INVALID (NULL argument, a path
 * too long), SF_E_NOT_FOUND, SF_E_STATE_IO, SF_E_STATE_CORRUPT.
 * sf_hwm_store returns SF_OK or one of SF_E_INVALID (NULL dir, a negative
 * mark, a path too long), SF_E_STATE_IO. */
SF_API int sf_hwm_load(const char *dir, uint32_t worker, int64_t *mark_unix_ms);
SF_API int sf_hwm_store(const char *dir, uint32_t worker, int64_t mark_unix_ms);

/*
 * The keeper advances the local mark ahead of need, off the minting path.
 * Each step: when the durable mark is less than refresh_ms ahead of the
 * clock, store now + ahead_ms and publish it as the generator's local
 * ceiling. A failed store leaves the old ceiling in place: minting goes on
 * until the clock reaches it, then refuses SF_E_HWM_STALLED.
 */
typedef struct sf_keeper sf_keeper;
typedef struct sf_keeper_config {
	const char *dir;
	uint32_t    worker;
	int64_t     ahead_ms;     /* how far ahead of the clock a stored mark reaches */
	int64_t     refresh_ms;   /* store again when less than this is left */
} sf_keeper_config;

/* Returns SF_OK or one of SF_E_INVALID (NULL argument, ahead_ms or
 * refresh_ms not positive, refresh_ms > ahead_ms), SF_E_WORKER_RANGE,
 * SF_E_STATE_IO (dir is not a directory), SF_E_NOMEM. */
SF_API int  sf_keeper_new(sf_gen *gen, const sf_keeper_config *config, sf_keeper **out);
SF_API void sf_keeper_free(sf_keeper *keeper);
/* One step; *stored is set when a new mark was written. Returns SF_OK or a
 * code of sf_hwm_load (first step only; SF_E_NOT_FOUND is no error) or of
 * sf_hwm_store. */
SF_API int  sf_keeper_step(sf_keeper *keeper, bool *stored);
SF_API int64_t sf_keeper_mark(const sf_keeper *keeper);
/* The mark a start must wait past for this worker ID: the stored one, or,
 * when the file is missing (first use here, or lost), now + ahead_ms: no
 * earlier run could have stored a mark further ahead of its clock than that.
 * A corrupt or unreadable file is an error: the node must not guess.
 * Returns SF_OK or one of SF_E_INVALID, SF_E_STATE_IO, SF_E_STATE_CORRUPT. */
SF_API int sf_keeper_start_mark(sf_keeper *keeper, int64_t *mark_unix_ms, bool *found);

/* ---- clock discipline ------------------------------------------------- */

typedef struct sf_discipline {
	bool    synchronised;    /* the kernel does not flag STA_UNSYNC */
	int64_t max_error_us;    /* adjtimex maxerror */
	int64_t est_error_us;    /* adjtimex esterror */
	int     state;           /* adjtimex return: TIME_OK, TIME_ERROR, ... */
	int64_t offset_us;
} sf_discipline;

/* Reads adjtimex(2) without changing anything. Reports; the policy decides.
 * Returns SF_OK or SF_E_INVALID (NULL out, or adjtimex failed: see errno). */
SF_API int sf_discipline_read(sf_discipline *out);

#ifdef __cplusplus
}
#endif

#endif /* SNOWFLAKE_H */
