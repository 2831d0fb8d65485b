/*
 * Registry node data (see sf_record.h): one strict parser of flat JSON
 * objects, driven by a table of the fields each record has, and the
 * formatters whose output it accepts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sf_record.h"
#include "snowflake.h"

int sf_record_mark_parse(const char *data, size_t len, int64_t *mark)
{
	int64_t value = 0;

	if (!data || len == 0 || len > 19)
		return SF_E_STATE_CORRUPT;
	for (size_t i = 0; i < len; i++) {
		int digit = data[i] - '0';

		if (digit < 0 || digit > 9 || value > (INT64_MAX - digit) / 10)
			return SF_E_STATE_CORRUPT;
		value = value * 10 + digit;
	}
	*mark = value;
	return SF_OK;
}

int sf_record_mark_format(char *buf, size_t size, int64_t mark)
{
	int n = mark < 0 ? -1 : snprintf(buf, size, "%" PRId64, mark);

	return (n < 0 || (size_t)n >= size) ? -1 : n;
}

char *sf_record_printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = 0;

	if (size == 0)
		return dst;
	for (; n < len && n + 1 < size; n++)
		dst[n] = (src[n] >= 0x20 && src[n] < 0x7f) ? src[n] : '?';
	dst[n] = '\0';
	return dst;
}

/* ---- the object parser --------------------------------------------------- */

enum field_type { FIELD_STRING, FIELD_INT };

struct field {
	const char     *key;
	enum field_type type;
	bool            required;
	void           *dst;      /* char[cap] or int64_t */
	size_t          cap;      /* a string's room, NUL included */
	bool            seen;
};

struct cursor {
	const char *p, *end;
};

static void skip_space(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool take(struct cursor *c, char ch)
{
	skip_space(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* A JSON string into out (cap bytes with its NUL; out NULL: skipped), or
 * false when malformed or too long for out. */
static bool parse_string(struct cursor *c, char *out, size_t cap)
{
	size_t n = 0;

	if (!take(c, '"'))
		return false;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p++;

		if (ch == '"') {
			if (out)
				out[n] = '\0';
			return true;
		}
		if (ch < 0x20)
			return false;
		if (ch == '\\') {
			if (c->p >= c->end)
				return false;
			ch = (unsigned char)*c->p++;
			switch (ch) {
			case '"': case '\\': case '/': break;
			case 'b': case 'f': case 'n': case 'r': case 't': ch = '?'; break;
			case 'u': {
				int code = 0;

				if (c->end - c->p < 4)
					return false;
				for (int i = 0; i < 4; i++) {
					int h = hex_value(c->p[i]);

					if (h < 0)
						return false;
					code = code * 16 + h;
				}
				c->p += 4;
				ch = (code >= 0x20 && code < 0x7f) ? (unsigned char)code : '?';
				break;
			}
			default:
				return false;
			}
		} else if (ch >= 0x7f) {
			ch = '?';
		}
		if (out) {
			if (n + 1 >= cap)
				return false;
			out[n++] = (char)ch;
		}
	}
	return false;
}

/* A JSON integer that fits int64_t: an optional '-', then digits without a
 * leading zero. */
static bool parse_int(struct cursor *c, int64_t *out)
{
	bool negative = false;
	uint64_t value = 0;
	const char *start;

	skip_space(c);
	if (c->p < c->end && *c->p == '-') {
		negative = true;
		c->p++;
	}
	start = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		unsigned digit = (unsigned)(*c->p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
		c->p++;
	}
	if (c->p == start || (*start == '0' && c->p - start > 1))
		return false;
	if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
		return false;
	if (value > (uint64_t)INT64_MAX + (negative ? 1 : 0))
		return false;
	*out = negative ? (int64_t)(0 - value) : (int64_t)value;
	return true;
}

static int parse_object(const char *data, size_t len, struct field *fields, size_t nfields)
{
	struct cursor c = { data, data + len };
	char key[32];

	if (!data || !take(&c, '{'))
		return SF_E_STATE_CORRUPT;
	if (!take(&c, '}')) {
		do {
			struct field *f = NULL;

			/* a key longer than ours is one we do not know: skipped */
			struct cursor at = c;
			if (!parse_string(&c, key, sizeof key)) {
				c = at;
				if (!parse_string(&c, NULL, 0))
					return SF_E_STATE_CORRUPT;
				key[0] = '\0';
			}
			if (!take(&c, ':'))
				return SF_E_STATE_CORRUPT;
			for (size_t i = 0; i < nfields; i++)
				if (key[0] && strcmp(fields[i].key, key) == 0)
					f = &fields[i];
			if (f && f->seen)
				return SF_E_STATE_CORRUPT;
			skip_space(&c);
			bool is_string = c.p < c.end && *c.p == '"';
			int64_t ignored;

			if (f && is_string != (f->type == FIELD_STRING))
				return SF_E_STATE_CORRUPT;
			if (is_string ? !parse_string(&c, f ? f->dst : NULL, f ? f->cap : 0)
			              : !parse_int(&c, f ? f->dst : &ignored))
				return SF_E_STATE_CORRUPT;
			if (f)
				f->seen = true;
		} while (take(&c, ','));
		if (!take(&c, '}'))
			return SF_E_STATE_CORRUPT;
	}
	skip_space(&c);
	if (c.p != c.end)
		return SF_E_STATE_CORRUPT;
	for (size_t i = 0; i < nfields; i++)
		if (fields[i].required && !fields[i].seen)
			return SF_E_STATE_CORRUPT;
	return SF_OK;
}

/* ---- the formatter ------------------------------------------------------- */

struct out {
	char  *buf;
	size_t size, used;
	bool   full;
};

static void put(struct out *o, const char *text, size_t len)
{
	if (o->full || o->used + len >= o->size) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->used, text, len);
	o->used += len;
	o->buf[o->used] = '\0';
}

static void put_key(struct out *o, const char *key)
{
	put(o, o->used > 1 ? ",\"" : "\"", o->used > 1 ? 2 : 1);
	put(o, key, strlen(key));
	put(o, "\":", 2);
}

static void put_string(struct out *o, const char *key, const char *value)
{
	put_key(o, key);
	put(o, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		char esc[8];

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(o, esc, 2);
		} else if (*p < 0x20 || *p >= 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", *p);
			put(o, esc, 6);
		} else {
			put(o, (const char *)p, 1);
		}
	}
	put(o, "\"", 1);
}

static void put_int(struct out *o, const char *key, int64_t value)
{
	char text[24];
	int n = snprintf(text, sizeof text, "%" PRId64, value);

	put_key(o, key);
	put(o, text, (size_t)n);
}

static int finish(struct out *o)
{
	put(o, "}", 1);
	return o->full ? -1 : (int)o->used;
}

/* ---- the records ---------------------------------------------------------- */

int sf_record_holder_parse(const char *data, size_t len, sf_holder_record *out)
{
	struct field fields[] = {
		{ "node", FIELD_STRING, true, out->node, sizeof out->node, false },
		{ "host", FIELD_STRING, true, out->host, sizeof out->host, false },
		{ "pid", FIELD_INT, true, &out->pid, 0, false },
		{ "start_ms", FIELD_INT, true, &out->start_ms, 0, false },
	};

	memset(out, 0, sizeof *out);
	return parse_object(data, len, fields, sizeof fields / sizeof fields[0]);
}

int sf_record_holder_format(char *buf, size_t size, const sf_holder_record *rec)
{
	struct out o = { buf, size, 0, size < 2 };

	put(&o, "{", 1);
	put_string(&o, "node", rec->node);
	put_string(&o, "host", rec->host);
	put_int(&o, "pid", rec->pid);
	put_int(&o, "start_ms", rec->start_ms);
	return finish(&o);
}

int sf_record_quarantine_parse(const char *data, size_t len, sf_quarantine_record *out)
{
	struct field fields[] = {
		{ "node", FIELD_STRING, true, out->node, sizeof out->node, false },
		{ "host", FIELD_STRING, true, out->host, sizeof out->host, false },
		{ "pid", FIELD_INT, true, &out->pid, 0, false },
		{ "at_ms", FIELD_INT, true, &out->at_ms, 0, false },
		{ "why", FIELD_STRING, true, out->why, sizeof out->why, false },
		{ "first_ms", FIELD_INT, false, &out->first_ms, 0, false },
		{ "first_id", FIELD_INT, false, &out->first_id, 0, false },
		{ "last_ms", FIELD_INT, false, &out->last_ms, 0, false },
		{ "last_id", FIELD_INT, false, &out->last_id, 0, false },
		{ "seen", FIELD_STRING, false, out->seen, sizeof out->seen, false },
	};
	int rc;
	int window = 0;

	memset(out, 0, sizeof *out);
	rc = parse_object(data, len, fields, sizeof fields / sizeof fields[0]);
	if (rc != SF_OK)
		return rc;
	for (size_t i = 5; i < 9; i++)
		window += fields[i].seen;
	/* the window comes whole or not at all, and the right way round */
	if (window != 0 && window != 4)
		return SF_E_STATE_CORRUPT;
	out->has_window = window == 4;
	if (out->has_window && (out->first_ms > out->last_ms || out->first_id > out->last_id))
		return SF_E_STATE_CORRUPT;
	return SF_OK;
}

int sf_record_quarantine_format(char *buf, size_t size, const sf_quarantine_record *rec)
{
	struct out o = { buf, size, 0, size < 2 };

	put(&o, "{", 1);
	put_string(&o, "node", rec->node);
	put_string(&o, "host", rec->host);
	put_int(&o, "pid", rec->pid);
	put_int(&o, "at_ms", rec->at_ms);
	put_string(&o, "why", rec->why);
	if (rec->has_window) {
		put_int(&o, "first_ms", rec->first_ms);
		put_int(&o, "first_id", rec->first_id);
		put_int(&o, "last_ms", rec->last_ms);
		put_int(&o, "last_id", rec->last_id);
	}
	if (rec->seen[0])
		put_string(&o, "seen", rec->seen);
	return finish(&o);
}
