/*
 * Registry node data: the bytes the lease writes into the nodes under its
 * root and reads back. Everything read from the registry is outside input
 * (anyone who reaches ZooKeeper may have written it, unless ACLs keep them
 * out), so each parser accepts exactly what the matching formatter writes
 * and calls anything else corrupt; the lease then refuses or skips what it
 * could not read, never guesses. Not installed.
 *
 *   marks/<id>       the decimal Unix ms up to which the holder may mint
 *   workers/<id>     {"node":S,"host":S,"pid":N,"start_ms":N}
 *   quarantine/<id>  {"node":S,"host":S,"pid":N,"at_ms":N,"why":S
 *                     [,"first_ms":N,"first_id":N,"last_ms":N,"last_id":N]
 *                     [,"seen":S]}
 *
 * Records are flat JSON objects of strings and integers; unknown keys are
 * skipped (a newer writer may add some), a key given twice or a value of the
 * wrong type makes the record corrupt. Strings come back printable ASCII:
 * any other byte or escape reads as '?', so a record can go into a log line.
 */
#ifndef SF_RECORD_H
#define SF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* room for a formatted record, with every string at its longest, escaped */
#define SF_RECORD_MAX 4096
/* longest string field, without its NUL */
#define SF_RECORD_NAME_MAX 127
#define SF_RECORD_WHY_MAX 255

typedef struct sf_holder_record {
	char    node[SF_RECORD_NAME_MAX + 1];
	char    host[SF_RECORD_NAME_MAX + 1];
	int64_t pid;
	int64_t start_ms;
} sf_holder_record;

typedef struct sf_quarantine_record {
	char    node[SF_RECORD_NAME_MAX + 1]; /* who wrote it */
	char    host[SF_RECORD_NAME_MAX + 1];
	int64_t pid;
	int64_t at_ms;                        /* when (Unix ms) */
	char    why[SF_RECORD_WHY_MAX + 1];
	/* The audit window: the IDs the writer issued on that worker lie in
	 * [first_id, last_id], timestamps [first_ms, last_ms]. first_* is the
	 * generator's position when minting began, plus one: no ID of this
	 * holder is lower. */
	bool    has_window;                   /* false: it issued none */
	int64_t first_ms, first_id, last_ms, last_id;
	char    seen[SF_RECORD_NAME_MAX + 1]; /* who held the node instead, "" unknown */
} sf_quarantine_record;

/* A mark: 1..19 decimal digits, nothing else, at most INT64_MAX.
 * \return SF_OK with *mark set, or SF_E_STATE_CORRUPT. */
int sf_record_mark_parse(const char *data, size_t len, int64_t *mark);
/* \return the length written (NUL not counted), or -1 when it does not fit. */
int sf_record_mark_format(char *buf, size_t size, int64_t mark);

/* \return SF_OK with *out filled, or SF_E_STATE_CORRUPT. */
int sf_record_holder_parse(const char *data, size_t len, sf_holder_record *out);
/* \return the length written, or -1 when it does not fit (SF_RECORD_MAX always does). */
int sf_record_holder_format(char *buf, size_t size, const sf_holder_record *rec);

/* \return SF_OK with *out filled, or SF_E_STATE_CORRUPT. */
int sf_record_quarantine_parse(const char *data, size_t len, sf_quarantine_record *out);
/* \return the length written, or -1 when it does not fit (SF_RECORD_MAX always does). */
int sf_record_quarantine_format(char *buf, size_t size, const sf_quarantine_record *rec);

/* Copies src into dst (size bytes, NUL-terminated, cut to fit) with every
 * byte that is not printable ASCII as '?': for log lines naming outside
 * bytes (a node's name, a prefix of its data). \return dst. */
char *sf_record_printable(char *dst, size_t size, const char *src, size_t len);

#endif /* SF_RECORD_H */
