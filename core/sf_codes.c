/*
 * Stable names for the core's codes. The names are an external contract:
 * HTTP error bodies, metric labels and the Lua binding use them verbatim, so
 * an existing name is never changed, only new ones added.
 */
#include <stddef.h>

#include "snowflake.h"

struct code_entry {
	const char *name;
	const char *text;
};

static const struct code_entry code_table[] = {
	[0]  = { "ok", "success" },
	[1]  = { "invalid_argument", "an argument is out of its range" },
	[2]  = { "layout_widths", "the timestamp, worker and sequence widths must sum to 63 bits" },
	[3]  = { "layout_timestamp_bits", "the timestamp width is out of range" },
	[4]  = { "layout_worker_bits", "the worker width is out of range" },
	[5]  = { "layout_sequence_bits", "the sequence width is out of range" },
	[6]  = { "layout_epoch", "the epoch is negative or in the future" },
	[7]  = { "worker_out_of_range", "the worker ID does not fit the layout" },
	[8]  = { "no_lease", "this node holds no worker ID lease" },
	[9]  = { "fenced", "the worker ID lease is too close to expiry to mint safely" },
	[10] = { "clock_wait", "the clock is at or below the last used millisecond; wait and retry" },
	[11] = { "clock_regressed", "the clock went back further than the configured wait bound" },
	[12] = { "sequence_exhausted", "every sequence number of this millisecond is used" },
	[13] = { "hwm_stalled", "the durable high-water mark did not keep ahead of the clock" },
	[14] = { "hwm_ahead", "the stored high-water mark is further ahead of the clock than the bound" },
	[15] = { "registry_hwm_ahead", "the registry's high-water mark is further ahead of the clock than the bound" },
	[16] = { "state_io", "the state directory cannot be read or written" },
	[17] = { "state_corrupt", "a high-water mark file is unreadable" },
	[18] = { "timestamp_exhausted", "the layout's timestamp range is used up" },
	[19] = { "batch_out_of_range", "the batch size is out of range" },
	[20] = { "parked", "the node is parked" },
	[21] = { "id_out_of_range", "the ID is not valid for this layout" },
	[22] = { "not_found", "not found" },
	[23] = { "out_of_memory", "out of memory" },
	[24] = { "clock_unsynchronised", "the kernel reports the clock as unsynchronised" },
	[25] = { "clock_max_error", "the kernel's clock maximum error is above the bound" },
	[26] = { "registry_error", "the registry answered with an error" },
	[27] = { "no_free_worker", "every worker ID is taken or quarantined" },
	[28] = { "quarantined", "the worker ID is quarantined" },
	[29] = { "stopped", "the node is stopped" },
	[30] = { "registry_access", "the registry refused access, or its access control is not what the config requires" },
};

_Static_assert(sizeof code_table / sizeof code_table[0] == 1 - SF_CODE_MIN,
               "every code has a name");

static const struct code_entry *code_lookup(int code)
{
	if (code > 0 || code < SF_CODE_MIN)
		return NULL;
	return &code_table[-code];
}

const char *sf_code_name(int code)
{
	const struct code_entry *e = code_lookup(code);
	return e ? e->name : "unknown_error";
}

const char *sf_code_text(int code)
{
	const struct code_entry *e = code_lookup(code);
	return e ? e->text : "unknown error";
}
