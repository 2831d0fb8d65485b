/*
 * Registry node data (core/sf_record.c): each parser takes what its
 * formatter writes and calls the rest corrupt. The fuzz targets
 * (tests/fuzz/) search the rest; these are the cases a reader can check.
 */
#include <string.h>

#include "snowflake.h"
#include "sf_record.h"
#include "check.h"

#define LEN(s) (sizeof(s) - 1)
/* a literal and its length */
#define LIT(s) s, LEN(s)

static void test_marks(void)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1\n", "12abc", "0x10", "1e9", "1.5",
	                                   "9223372036854775808", "99999999999999999999", "１" };
	char buf[32];
	int64_t m = 0;

	CHECK_RC(sf_record_mark_parse("0", 1, &m), SF_OK, "mark: 0");
	CHECK_RC(sf_record_mark_parse("1733140800000", 13, &m), SF_OK, "mark: a Unix ms");
	CHECK(m == 1733140800000, "mark: its value");
	CHECK_RC(sf_record_mark_parse("9223372036854775807", 19, &m), SF_OK, "mark: INT64_MAX");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_RC(sf_record_mark_parse(bad[i], strlen(bad[i]), &m), SF_E_STATE_CORRUPT, "mark: \"%s\" is not one", bad[i]);
	CHECK_RC(sf_record_mark_parse("12\0" "3", 4, &m), SF_E_STATE_CORRUPT, "mark: an embedded NUL is not one");
	CHECK(sf_record_mark_format(buf, sizeof buf, 42) == 2 && strcmp(buf, "42") == 0, "mark: formatted");
	CHECK(sf_record_mark_format(buf, sizeof buf, -1) == -1, "mark: a negative mark is never written");
	CHECK(sf_record_mark_format(buf, 2, 42) == -1, "mark: no room, nothing claimed written");
}

static void test_holder(void)
{
	sf_holder_record in = { "edge-1", "host \"a\"\\b", 123, 1733140800000 }, out;
	char buf[SF_RECORD_MAX];
	int n = sf_record_holder_format(buf, sizeof buf, &in);

	CHECK(n > 0 && strcmp(buf, "{\"node\":\"edge-1\",\"host\":\"host \\\"a\\\"\\\\b\",\"pid\":123,"
	                           "\"start_ms\":1733140800000}") == 0, "holder: formatted, escaped: %s", buf);
	CHECK_RC(sf_record_holder_parse(buf, (size_t)n, &out), SF_OK, "holder: read back");
	CHECK(strcmp(out.node, in.node) == 0 && strcmp(out.host, in.host) == 0 && out.pid == 123 &&
	      out.start_ms == in.start_ms, "holder: the same fields");
	CHECK_RC(sf_record_holder_parse(LIT("{\"node\":\"n\",\"host\":\"h\",\"pid\":1,\"start_ms\":2,\"later\":\"x\"}"), &out),
	         SF_OK, "holder: an unknown key is skipped");
	CHECK_RC(sf_record_holder_parse(LIT(" { \"node\" : \"n\" , \"host\":\"h\",\"pid\":1,\"start_ms\":2 } "), &out),
	         SF_OK, "holder: white space between tokens");
	CHECK_RC(sf_record_holder_parse(LIT("{\"node\":\"\\u0041\\n\xff\",\"host\":\"h\",\"pid\":1,\"start_ms\":2}"), &out),
	         SF_OK, "holder: escapes and bytes outside ASCII");
	CHECK(strcmp(out.node, "A??") == 0, "holder: read back printable (%s)", out.node);

	static const char *const bad[] = {
		"", "{}", "[]", "null", "{\"node\":\"n\"}",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":1}",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":\"1\",\"start_ms\":2}",
		"{\"node\":1,\"host\":\"h\",\"pid\":1,\"start_ms\":2}",
		"{\"node\":\"n\",\"node\":\"m\",\"host\":\"h\",\"pid\":1,\"start_ms\":2}",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":1,\"start_ms\":2",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":1,\"start_ms\":2}x",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":1,\"start_ms\":2,}",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":01,\"start_ms\":2}",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":1.5,\"start_ms\":2}",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":99999999999999999999,\"start_ms\":2}",
		"{\"node\":\"n\",\"host\":\"h\",\"pid\":1,\"start_ms\":2,\"x\":true}",
		"{\"node\":\"n\\x\",\"host\":\"h\",\"pid\":1,\"start_ms\":2}",
		"{\"node\":\"n\\u00\",\"host\":\"h\",\"pid\":1,\"start_ms\":2}",
		"{\"node\":\"n\n\",\"host\":\"h\",\"pid\":1,\"start_ms\":2}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_RC(sf_record_holder_parse(bad[i], strlen(bad[i]), &out), SF_E_STATE_CORRUPT,
		         "holder: corrupt #%zu (%s)", i, bad[i]);

	char longname[300];
	memset(longname, 'a', sizeof longname);
	n = snprintf(buf, sizeof buf, "{\"node\":\"%.*s\",\"host\":\"h\",\"pid\":1,\"start_ms\":2}", 200, longname);
	CHECK_RC(sf_record_holder_parse(buf, (size_t)n, &out), SF_E_STATE_CORRUPT,
	         "holder: a name longer than any we write is corrupt, not cut");
}

static void test_quarantine(void)
{
	sf_quarantine_record in = { .node = "n", .host = "h", .pid = 9, .at_ms = 5, .why = "w\"hy",
	                            .has_window = true, .first_ms = 1, .first_id = 10, .last_ms = 2,
	                            .last_id = 20, .seen = "node x" }, out;
	char buf[SF_RECORD_MAX];
	int n = sf_record_quarantine_format(buf, sizeof buf, &in);

	CHECK_RC(sf_record_quarantine_parse(buf, (size_t)n, &out), SF_OK, "quarantine: read back (%s)", buf);
	CHECK(out.has_window && out.first_id == 10 && out.last_id == 20 && out.first_ms == 1 && out.last_ms == 2 &&
	      strcmp(out.why, "w\"hy") == 0 && strcmp(out.seen, "node x") == 0, "quarantine: the same fields");
	in.has_window = false;
	in.seen[0] = '\0';
	n = sf_record_quarantine_format(buf, sizeof buf, &in);
	CHECK(sf_record_quarantine_parse(buf, (size_t)n, &out) == SF_OK && !out.has_window && !strstr(buf, "first"),
	      "quarantine: without a window (%s)", buf);
	CHECK_RC(sf_record_quarantine_parse(LIT("{\"node\":\"n\",\"host\":\"h\",\"pid\":1,\"at_ms\":2,\"why\":\"w\",\"first_ms\":1}"),
	                                    &out), SF_E_STATE_CORRUPT, "quarantine: half a window is corrupt");
	n = snprintf(buf, sizeof buf, "{\"node\":\"n\",\"host\":\"h\",\"pid\":1,\"at_ms\":2,\"why\":\"w\","
	             "\"first_ms\":5,\"first_id\":10,\"last_ms\":4,\"last_id\":20}");
	CHECK_RC(sf_record_quarantine_parse(buf, (size_t)n, &out), SF_E_STATE_CORRUPT,
	         "quarantine: a window the wrong way round is corrupt");
	CHECK_RC(sf_record_quarantine_parse(LIT("{\"why\":\"x\"}"), &out), SF_E_STATE_CORRUPT,
	         "quarantine: a record without who and when is corrupt");
	CHECK(sf_record_quarantine_format(buf, 10, &in) == -1, "quarantine: no room, -1");
}

static void test_printable(void)
{
	char out[8];

	CHECK(strcmp(sf_record_printable(out, sizeof out, "a\tb\x80\x01zzzzz", 10), "a?b??zz") == 0,
	      "printable: control and high bytes as '?', cut to fit (%s)", out);
}

int main(void)
{
	test_marks();
	test_holder();
	test_quarantine();
	test_printable();
	return CHECK_DONE();
}
