/*
 * Clocks. The real ones are read with clock_gettime; a caller-supplied
 * sf_clock replaces both (tests drive time through it).
 */
#include <time.h>

#include "sf_internal.h"

static int64_t timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

int64_t sf_clock_wall_ns(const sf_clock *clock)
{
	struct timespec ts;

	if (clock && clock->wall_ns)
		return clock->wall_ns(clock->ctx);
	clock_gettime(CLOCK_REALTIME, &ts);
	return timespec_ns(&ts);
}

int64_t sf_clock_mono_ns(const sf_clock *clock)
{
	struct timespec ts;

	if (clock && clock->mono_ns)
		return clock->mono_ns(clock->ctx);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return timespec_ns(&ts);
}
