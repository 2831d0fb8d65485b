/*
 * Boot-time clock discipline check: reads the kernel's NTP state without
 * changing it. Whether an unsynchronised clock or a large maximum error
 * stops the node is the caller's policy.
 */
#include <errno.h>
#include <string.h>
#include <sys/timex.h>

#include "sf_internal.h"

int sf_discipline_read(sf_discipline *out)
{
	struct timex tx;
	int state;

	if (!out)
		return SF_E_INVALID;
	memset(&tx, 0, sizeof tx); /* modes = 0: read only */
	state = adjtimex(&tx);
	if (state == -1)
		return SF_E_INVALID;
	out->state = state;
	out->synchronised = !(tx.status & STA_UNSYNC) && state != TIME_ERROR;
	out->max_error_us = tx.maxerror;
	out->est_error_us = tx.esterror;
	out->offset_us = (tx.status & STA_NANO) ? tx.offset / 1000 : tx.offset;
	return SF_OK;
}
