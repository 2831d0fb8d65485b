/*
 * Internal helpers shared by the core's files. Not installed.
 */
#ifndef SF_INTERNAL_H
#define SF_INTERNAL_H

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

#endif
