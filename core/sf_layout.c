/*
 * ID layout: validation, composition and decoding.
 */
#include "sf_internal.h"

int sf_layout_check(const sf_layout *layout, int64_t now_unix_ms, const char **field)
{
	const char *bad = NULL;
	int rc = SF_OK;

	if (!layout) {
		bad = "layout";
		rc = SF_E_INVALID;
	} else if (layout->timestamp_bits < SF_TIMESTAMP_BITS_MIN ||
	           layout->timestamp_bits > SF_TIMESTAMP_BITS_MAX) {
		bad = "layout.timestamp_bits";
		rc = SF_E_LAYOUT_TIMESTAMP_BITS;
	} else if (layout->worker_bits < SF_WORKER_BITS_MIN ||
	           layout->worker_bits > SF_WORKER_BITS_MAX) {
		bad = "layout.worker_bits";
		rc = SF_E_LAYOUT_WORKER_BITS;
	} else if (layout->sequence_bits < SF_SEQUENCE_BITS_MIN ||
	           layout->sequence_bits > SF_SEQUENCE_BITS_MAX) {
		bad = "layout.sequence_bits";
		rc = SF_E_LAYOUT_SEQUENCE_BITS;
	} else if (layout->timestamp_bits + layout->worker_bits + layout->sequence_bits != 63) {
		/* named after the last width: the one an operator most often changes */
		bad = "layout.sequence_bits";
		rc = SF_E_LAYOUT_WIDTHS;
	} else if (layout->epoch_ms < 0 || layout->epoch_ms > now_unix_ms) {
		bad = "layout.epoch_ms";
		rc = SF_E_LAYOUT_EPOCH;
	}
	if (field)
		*field = bad;
	return rc;
}

/* Whether a layout handed in unchecked can be computed with at all: every
 * shift below 64 bits and an epoch that cannot overflow a difference or a
 * sum with a timestamp. A checked layout always can. */
static bool computable(const sf_layout *layout)
{
	return layout->timestamp_bits <= 63 && layout->worker_bits <= 63 && layout->sequence_bits <= 63 &&
	       layout->worker_bits + layout->sequence_bits <= 63 && layout->epoch_ms >= 0;
}

int sf_id_decode(const sf_layout *layout, int64_t id, sf_decoded *out)
{
	if (!layout || !out || !computable(layout))
		return SF_E_INVALID;
	if (id < 0)
		return SF_E_ID_RANGE;

	const uint64_t raw = (uint64_t)id;
	const unsigned ts_shift = layout->worker_bits + layout->sequence_bits;
	const uint64_t seq_mask = (1ULL << layout->sequence_bits) - 1;
	const uint64_t worker_mask = (1ULL << layout->worker_bits) - 1;
	const uint64_t ts = raw >> ts_shift;

	/* the widths sum to 63, so any non-negative ID fits; the check guards
	 * an invalid layout handed in unchecked */
	if (ts >> layout->timestamp_bits)
		return SF_E_ID_RANGE;
	if ((int64_t)ts > INT64_MAX - layout->epoch_ms)
		return SF_E_ID_RANGE;
	out->timestamp_ms = (int64_t)ts + layout->epoch_ms;
	out->worker = (uint32_t)((raw >> layout->sequence_bits) & worker_mask);
	out->sequence = (uint32_t)(raw & seq_mask);
	return SF_OK;
}

int sf_id_compose(const sf_layout *layout, const sf_decoded *parts, int64_t *id)
{
	if (!layout || !parts || !id || !computable(layout))
		return SF_E_INVALID;
	if (parts->timestamp_ms < layout->epoch_ms)
		return SF_E_TIMESTAMP_OVERFLOW;

	/* only now: a timestamp far below the epoch would overflow the difference */
	const int64_t rel = parts->timestamp_ms - layout->epoch_ms;

	if ((uint64_t)rel >> layout->timestamp_bits)
		return SF_E_TIMESTAMP_OVERFLOW;
	if ((uint64_t)parts->worker >> layout->worker_bits)
		return SF_E_WORKER_RANGE;
	if ((uint64_t)parts->sequence >> layout->sequence_bits)
		return SF_E_INVALID;
	*id = (int64_t)(((uint64_t)rel << (layout->worker_bits + layout->sequence_bits)) |
	                ((uint64_t)parts->worker << layout->sequence_bits) |
	                (uint64_t)parts->sequence);
	return SF_OK;
}
