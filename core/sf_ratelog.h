/*
 * A log rate limiter: at most `burst` lines a period pass, the rest are
 * counted, and the count is handed back when the next period opens so the
 * caller can say how many it dropped. Time comes from the caller. Not
 * thread-safe: the caller serialises (ZooKeeper's log sink holds a mutex).
 */
#ifndef SF_RATELOG_H
#define SF_RATELOG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sf_ratelog {
	int64_t  period_ns;     /* length of a window */
	int      burst;         /* lines passed per window */
	int64_t  window_ns;     /* start of the current window (0 before the first line) */
	int      in_window;     /* lines seen in the current window */
	uint64_t suppressed;    /* lines dropped in the current window */
} sf_ratelog;

#define SF_RATELOG_INIT(period_ns, burst) { (period_ns), (burst), 0, 0, 0 }

/* One line at now_ns (a monotonic clock). Returns true when it may be
 * written. *dropped (never NULL) is set to the number of lines suppressed in
 * the window that just closed, when this line opens a new window after
 * drops, else to 0: the caller writes a note about them before this line. */
bool sf_ratelog_admit(sf_ratelog *rl, int64_t now_ns, uint64_t *dropped);

#endif /* SF_RATELOG_H */
