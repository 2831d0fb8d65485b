/*
 * workers/<id>: sf_record_holder_parse on any bytes returns SF_OK or
 * SF_E_STATE_CORRUPT, never reads past the input, and what it accepts comes
 * back printable and NUL-terminated; formatting an accepted record and
 * parsing that gives the same record (the formatter writes only what the
 * parser takes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sf_record.h"
#include "snowflake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void printable_string(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		abort(); /* not terminated */
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: ASan catches a read past the end */
	char *copy = malloc(size ? size : 1);
	sf_holder_record rec, again;
	char buf[SF_RECORD_MAX];
	int rc, n;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	rc = sf_record_holder_parse(copy, size, &rec);
	if (rc != SF_OK && rc != SF_E_STATE_CORRUPT)
		abort();
	if (rc == SF_OK) {
		printable_string(rec.node, sizeof rec.node);
		printable_string(rec.host, sizeof rec.host);
		n = sf_record_holder_format(buf, sizeof buf, &rec);
		if (n <= 0 || sf_record_holder_parse(buf, (size_t)n, &again) != SF_OK ||
		    strcmp(rec.node, again.node) != 0 || strcmp(rec.host, again.host) != 0 ||
		    rec.pid != again.pid || rec.start_ms != again.start_ms)
			abort();
	}
	free(copy);
	return 0;
}
