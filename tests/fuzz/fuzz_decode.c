/*
 * sf_id_decode and sf_id_compose, what /decode/<id> runs on an ID a caller
 * sends. Under a layout sf_layout_check accepts: every non-negative ID
 * decodes to the fields a reference computes with plain shifts and masks
 * (or is refused only where the epoch plus its timestamp would overflow
 * int64_t), a negative one is id_out_of_range, and composing the parts gives
 * the ID back; composing arbitrary parts succeeds exactly when each is in
 * its range and decodes back to them. Under a layout the check refuses
 * (handed in unchecked by a library caller), neither reads past anything or
 * overflows: the sanitizers judge.
 * Input: epoch (8 bytes), three widths (1 byte each), the ID (8 bytes),
 * parts to compose: timestamp_ms (8), worker (4), sequence (4).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snowflake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decode(const sf_layout *l, int64_t id)
{
	sf_decoded got;
	int64_t back = -1;
	const unsigned shift = l->worker_bits + l->sequence_bits;
	int rc = sf_id_decode(l, id, &got);

	if (id < 0) {
		if (rc != SF_E_ID_RANGE)
			abort();
		return;
	}
	const uint64_t raw = (uint64_t)id;
	const int64_t ts = (int64_t)(raw >> shift);

	if (ts > INT64_MAX - l->epoch_ms) {
		if (rc != SF_E_ID_RANGE)
			abort();
		return;
	}
	if (rc != SF_OK || got.timestamp_ms != ts + l->epoch_ms ||
	    got.worker != ((raw >> l->sequence_bits) & ((1u << l->worker_bits) - 1)) ||
	    got.sequence != (raw & ((1u << l->sequence_bits) - 1)))
		abort();
	if (sf_id_compose(l, &got, &back) != SF_OK || back != id)
		abort();
}

static void check_compose(const sf_layout *l, const sf_decoded *parts)
{
	sf_decoded again;
	int64_t id = -1;
	int rc = sf_id_compose(l, parts, &id);
	int want = SF_OK;

	if (parts->timestamp_ms < l->epoch_ms ||
	    ((uint64_t)parts->timestamp_ms - (uint64_t)l->epoch_ms) >> l->timestamp_bits)
		want = SF_E_TIMESTAMP_OVERFLOW;
	else if (parts->worker >> l->worker_bits)
		want = SF_E_WORKER_RANGE;
	else if (parts->sequence >> l->sequence_bits)
		want = SF_E_INVALID;
	if (rc != want)
		abort();
	if (rc == SF_OK &&
	    (id < 0 || sf_id_decode(l, id, &again) != SF_OK || again.timestamp_ms != parts->timestamp_ms ||
	     again.worker != parts->worker || again.sequence != parts->sequence))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t in[8 + 3 + 8 + 16] = { 0 };
	sf_layout layout;
	sf_decoded parts, scratch;
	int64_t id, scratch_id;

	memcpy(in, data, size < sizeof in ? size : sizeof in);
	memcpy(&layout.epoch_ms, in, 8);
	layout.timestamp_bits = in[8];
	layout.worker_bits = in[9];
	layout.sequence_bits = in[10];
	memcpy(&id, in + 11, 8);
	memcpy(&parts.timestamp_ms, in + 19, 8);
	memcpy(&parts.worker, in + 27, 4);
	memcpy(&parts.sequence, in + 31, 4);

	if (sf_layout_check(&layout, INT64_MAX, NULL) == SF_OK) {
		check_decode(&layout, id);
		check_compose(&layout, &parts);
	} else {
		/* only the sanitizers judge: no shift past 63 bits, no signed overflow */
		(void)sf_id_decode(&layout, id, &scratch);
		(void)sf_id_compose(&layout, &parts, &scratch_id);
	}
	if (sf_id_decode(NULL, id, &scratch) != SF_E_INVALID || sf_id_decode(&layout, id, NULL) != SF_E_INVALID)
		abort();
	return 0;
}
