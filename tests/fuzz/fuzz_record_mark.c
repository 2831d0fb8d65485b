/*
 * marks/<id>: sf_record_mark_parse accepts exactly 1..19 decimal digits
 * whose value fits int64_t, and the formatter's output parses back equal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sf_record.h"
#include "snowflake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t mark = -1;
	int rc = sf_record_mark_parse((const char *)data, size, &mark);
	/* the reference: digits only, no overflow */
	int64_t want = 0;
	int ok = size >= 1 && size <= 19;

	for (size_t i = 0; ok && i < size; i++) {
		if (data[i] < '0' || data[i] > '9' || want > (INT64_MAX - (data[i] - '0')) / 10)
			ok = 0;
		else
			want = want * 10 + (data[i] - '0');
	}
	if ((rc == SF_OK) != ok || (rc != SF_OK && rc != SF_E_STATE_CORRUPT))
		abort();
	if (ok) {
		char buf[32];
		int64_t back = -1;
		int n;

		if (mark != want || mark < 0)
			abort();
		n = sf_record_mark_format(buf, sizeof buf, mark);
		if (n <= 0 || sf_record_mark_parse(buf, (size_t)n, &back) != SF_OK || back != mark)
			abort();
	}
	return 0;
}
