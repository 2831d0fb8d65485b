/*
 * quarantine/<id>: sf_record_quarantine_parse on any bytes returns SF_OK or
 * SF_E_STATE_CORRUPT; an accepted record has printable strings and a
 * window that is whole and the right way round; it formats and parses back
 * to the same record.
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
		abort();
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	sf_quarantine_record rec, again;
	char buf[SF_RECORD_MAX];
	int rc, n;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	rc = sf_record_quarantine_parse(copy, size, &rec);
	if (rc != SF_OK && rc != SF_E_STATE_CORRUPT)
		abort();
	if (rc == SF_OK) {
		printable_string(rec.node, sizeof rec.node);
		printable_string(rec.host, sizeof rec.host);
		printable_string(rec.why, sizeof rec.why);
		printable_string(rec.seen, sizeof rec.seen);
		if (rec.has_window && (rec.first_ms > rec.last_ms || rec.first_id > rec.last_id))
			abort();
		n = sf_record_quarantine_format(buf, sizeof buf, &rec);
		if (n <= 0 || sf_record_quarantine_parse(buf, (size_t)n, &again) != SF_OK ||
		    strcmp(rec.node, again.node) != 0 || strcmp(rec.host, again.host) != 0 ||
		    strcmp(rec.why, again.why) != 0 || strcmp(rec.seen, again.seen) != 0 ||
		    rec.pid != again.pid || rec.at_ms != again.at_ms || rec.has_window != again.has_window ||
		    (rec.has_window && (rec.first_ms != again.first_ms || rec.first_id != again.first_id ||
		                        rec.last_ms != again.last_ms || rec.last_id != again.last_id)))
			abort();
	}
	free(copy);
	return 0;
}
