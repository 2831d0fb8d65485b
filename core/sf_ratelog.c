/* The log rate limiter. See sf_ratelog.h. */
#include "sf_ratelog.h"

bool sf_ratelog_admit(sf_ratelog *rl, int64_t now_ns, uint64_t *dropped)
{
	*dropped = 0;
	if (now_ns - rl->window_ns >= rl->period_ns) {
		*dropped = rl->suppressed;
		rl->window_ns = now_ns;
		rl->in_window = 0;
		rl->suppressed = 0;
	}
	if (rl->in_window < rl->burst) {
		rl->in_window++;
		return true;
	}
	rl->suppressed++;
	return false;
}
