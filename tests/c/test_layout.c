/* Layout validation, compose/decode round trips, code names. */
#include <string.h>

#include "snowflake.h"
#include "check.h"

static void check_rejects(sf_layout l, int want_rc, const char *want_field, const char *what)
{
	const char *field = NULL;
	int rc = sf_layout_check(&l, TEST_T0_MS, &field);

	CHECK_RC(rc, want_rc, "layout: %s is rejected", what);
	CHECK(field && strcmp(field, want_field) == 0, "layout: %s names %s (got %s)", what,
	      want_field, field ? field : "(null)");
}

static void test_validation(void)
{
	sf_layout ok = SF_LAYOUT_DEFAULT;
	const char *field = "unset";

	CHECK_RC(sf_layout_check(&ok, TEST_T0_MS, &field), SF_OK, "default layout is valid");
	CHECK(field == NULL, "no field named for a valid layout");

	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 34, 12, 17 }, SF_E_LAYOUT_TIMESTAMP_BITS,
	              "layout.timestamp_bits", "timestamp_bits 34");
	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 48, 5, 10 }, SF_E_LAYOUT_TIMESTAMP_BITS,
	              "layout.timestamp_bits", "timestamp_bits 48");
	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 41, 0, 22 }, SF_E_LAYOUT_WORKER_BITS,
	              "layout.worker_bits", "worker_bits 0");
	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 40, 17, 6 }, SF_E_LAYOUT_WORKER_BITS,
	              "layout.worker_bits", "worker_bits 17");
	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 47, 16, 0 }, SF_E_LAYOUT_SEQUENCE_BITS,
	              "layout.sequence_bits", "sequence_bits 0");
	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 40, 1, 23 }, SF_E_LAYOUT_SEQUENCE_BITS,
	              "layout.sequence_bits", "sequence_bits 23");
	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 41, 10, 11 }, SF_E_LAYOUT_WIDTHS,
	              "layout.sequence_bits", "widths summing to 62");
	check_rejects((sf_layout){ SF_DEFAULT_EPOCH_MS, 41, 10, 13 }, SF_E_LAYOUT_WIDTHS,
	              "layout.sequence_bits", "widths summing to 64");
	check_rejects((sf_layout){ TEST_T0_MS + 1, 41, 10, 12 }, SF_E_LAYOUT_EPOCH,
	              "layout.epoch_ms", "an epoch in the future");
	check_rejects((sf_layout){ -1, 41, 10, 12 }, SF_E_LAYOUT_EPOCH,
	              "layout.epoch_ms", "a negative epoch");
	CHECK_RC(sf_layout_check(NULL, TEST_T0_MS, NULL), SF_E_INVALID, "NULL layout is invalid");

	/* every rejection has a stable name */
	CHECK(strcmp(sf_code_name(SF_E_LAYOUT_WIDTHS), "layout_widths") == 0, "layout_widths name");
	CHECK(strcmp(sf_code_name(SF_E_CLOCK_REGRESSED), "clock_regressed") == 0, "clock_regressed name");
	CHECK(strcmp(sf_code_name(SF_E_REGISTRY_HWM_AHEAD), "registry_hwm_ahead") == 0, "registry_hwm_ahead name");
	CHECK(strcmp(sf_code_name(1), "unknown_error") == 0, "positive code is unknown");
	CHECK(strcmp(sf_code_name(SF_CODE_MIN - 1), "unknown_error") == 0, "code past the table is unknown");
	for (int c = 0; c >= SF_CODE_MIN; c--)
		if (strcmp(sf_code_name(c), "unknown_error") == 0 || sf_code_text(c)[0] == '\0')
			CHECK(0, "code %d has a name and a text", c);
}

static void round_trip(sf_layout l, const char *what)
{
	const int64_t max_worker = (1LL << l.worker_bits) - 1;
	const int64_t max_seq = (1LL << l.sequence_bits) - 1;
	const int64_t max_ts = l.epoch_ms + (1LL << l.timestamp_bits) - 1;
	const sf_decoded cases[] = {
		{ l.epoch_ms, 0, 0 },
		{ TEST_T0_MS, (uint32_t)(max_worker < 7 ? max_worker : 7), 42 },
		{ TEST_T0_MS + 123, (uint32_t)max_worker, (uint32_t)max_seq },
		{ max_ts, (uint32_t)max_worker, (uint32_t)max_seq },
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t id;
		sf_decoded back;

		if (sf_id_compose(&l, &cases[i], &id) != SF_OK || id < 0 ||
		    sf_id_decode(&l, id, &back) != SF_OK ||
		    back.timestamp_ms != cases[i].timestamp_ms || back.worker != cases[i].worker ||
		    back.sequence != cases[i].sequence)
			bad++;
	}
	CHECK(bad == 0, "decode(compose(x)) == x for %s", what);
}

static void test_decode(void)
{
	sf_layout def = SF_LAYOUT_DEFAULT;
	sf_layout wide = { 1262304000000LL, 39, 16, 8 };
	sf_decoded d;
	int64_t id;

	round_trip(def, "the default layout");
	round_trip(wide, "a 39/16/8 layout with a 2010 epoch");
	round_trip((sf_layout){ SF_DEFAULT_EPOCH_MS, 41, 1, 21 }, "a 41/1/21 layout");

	CHECK_RC(sf_id_decode(&def, INT64_MAX, &d), SF_OK, "INT64_MAX decodes");
	CHECK(d.worker == 1023 && d.sequence == 4095 &&
	      d.timestamp_ms == SF_DEFAULT_EPOCH_MS + (1LL << 41) - 1,
	      "INT64_MAX is the last ms, worker 1023, sequence 4095");
	CHECK_RC(sf_id_decode(&def, -1, &d), SF_E_ID_RANGE, "a negative ID is refused");

	/* a known value: 2025-06-01T00:00:00Z, worker 5, sequence 9 */
	CHECK_RC(sf_id_compose(&def, &(sf_decoded){ TEST_T0_MS, 5, 9 }, &id), SF_OK, "compose");
	CHECK(id == (((TEST_T0_MS - SF_DEFAULT_EPOCH_MS) << 22) | (5 << 12) | 9), "bit positions");

	CHECK_RC(sf_id_compose(&def, &(sf_decoded){ TEST_T0_MS, 1024, 0 }, &id), SF_E_WORKER_RANGE,
	         "compose refuses worker 1024 with 10 worker bits");
	CHECK_RC(sf_id_compose(&def, &(sf_decoded){ TEST_T0_MS, 0, 4096 }, &id), SF_E_INVALID,
	         "compose refuses sequence 4096 with 12 sequence bits");
	CHECK_RC(sf_id_compose(&def, &(sf_decoded){ SF_DEFAULT_EPOCH_MS - 1, 0, 0 }, &id),
	         SF_E_TIMESTAMP_OVERFLOW, "compose refuses a time before the epoch");
}

int main(void)
{
	test_validation();
	test_decode();
	return CHECK_DONE();
}
