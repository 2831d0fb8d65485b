/*
 * The layout check (sf_layout_check): any epoch, any three widths and any
 * "now" get the verdict of a reference written from SPEC "ID layout" and
 * snowflake.h (ranges, then the sum of 63, then the epoch in 0..now, in that
 * order), with the field it names, and no field on success. A layout it
 * accepts holds every ID 0..INT64_MAX: the largest ID decodes and composes
 * back, and so does 0 (decode refuses only where epoch + timestamp would
 * overflow int64_t).
 * Input: epoch (8 bytes), timestamp, worker and sequence bits (4 bytes each,
 * any unsigned), now (8 bytes); short inputs are zero-padded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snowflake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *reference(const sf_layout *l, int64_t now, int *rc)
{
	if (l->timestamp_bits < 35 || l->timestamp_bits > 47)
		return *rc = SF_E_LAYOUT_TIMESTAMP_BITS, "layout.timestamp_bits";
	if (l->worker_bits < 1 || l->worker_bits > 16)
		return *rc = SF_E_LAYOUT_WORKER_BITS, "layout.worker_bits";
	if (l->sequence_bits < 1 || l->sequence_bits > 22)
		return *rc = SF_E_LAYOUT_SEQUENCE_BITS, "layout.sequence_bits";
	if ((uint64_t)l->timestamp_bits + l->worker_bits + l->sequence_bits != 63)
		return *rc = SF_E_LAYOUT_WIDTHS, "layout.sequence_bits";
	if (l->epoch_ms < 0 || l->epoch_ms > now)
		return *rc = SF_E_LAYOUT_EPOCH, "layout.epoch_ms";
	*rc = SF_OK;
	return NULL;
}

static void round_trip(const sf_layout *l, int64_t id)
{
	sf_decoded parts;
	int64_t back = -1;
	const unsigned shift = l->worker_bits + l->sequence_bits;
	const int64_t ts = (int64_t)((uint64_t)id >> shift);
	int rc = sf_id_decode(l, id, &parts);

	if (ts > INT64_MAX - l->epoch_ms) {
		if (rc != SF_E_ID_RANGE)
			abort();
		return;
	}
	if (rc != SF_OK || parts.timestamp_ms != ts + l->epoch_ms ||
	    sf_id_compose(l, &parts, &back) != SF_OK || back != id)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t in[28] = { 0 };
	sf_layout layout;
	int64_t now;
	uint32_t bits[3];
	const char *field = "unset", *want_field;
	int rc, want_rc;

	memcpy(in, data, size < sizeof in ? size : sizeof in);
	memcpy(&layout.epoch_ms, in, 8);
	memcpy(bits, in + 8, 12);
	memcpy(&now, in + 20, 8);
	layout.timestamp_bits = bits[0];
	layout.worker_bits = bits[1];
	layout.sequence_bits = bits[2];

	rc = sf_layout_check(&layout, now, &field);
	want_field = reference(&layout, now, &want_rc);
	if (rc != want_rc || (want_field ? !field || strcmp(field, want_field) != 0 : field != NULL))
		abort();
	if (sf_layout_check(&layout, now, NULL) != rc)
		abort();
	if (rc == SF_OK) {
		round_trip(&layout, 0);
		round_trip(&layout, INT64_MAX);
	}
	return 0;
}
