/*
 * The local mark file (state.dir/worker-<id>.hwm): sf_hwm_parse takes
 * exactly "sfhwm1 " + decimal digits that fit int64_t + "\n" and nothing
 * else (a reference parser here says so independently), never reads past
 * the bytes, and what it accepts formats back to the same mark (and to the
 * same bytes, unless the file had leading zeros). sf_hwm_load on a file
 * holding the bytes agrees with the parser: a file of 64 bytes or more is
 * corrupt whatever it holds (sf_hwm.c reads at most 63).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sf_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAGIC "sfhwm1 "
#define LOAD_FILE_MAX 64 /* sf_hwm.c's HWM_FILE_MAX */

static int reference(const uint8_t *data, size_t size, int64_t *mark)
{
	const size_t magic_len = sizeof MAGIC - 1;
	int64_t value = 0;

	if (size < magic_len + 2 || memcmp(data, MAGIC, magic_len) != 0 || data[size - 1] != '\n')
		return 0;
	for (size_t i = magic_len; i < size - 1; i++) {
		int digit = data[i] - '0';

		if (digit < 0 || digit > 9 || value > (INT64_MAX - digit) / 10)
			return 0;
		value = value * 10 + digit;
	}
	*mark = value;
	return 1;
}

static char state_dir[64];

static void write_mark_file(const uint8_t *data, size_t size)
{
	char path[128];
	int fd;

	snprintf(path, sizeof path, "%s/worker-0.hwm", state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
}

static void remove_state_dir(void)
{
	char path[128];

	snprintf(path, sizeof path, "%s/worker-0.hwm", state_dir);
	unlink(path);
	rmdir(state_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly size bytes on the heap: ASan reports a read past them */
	char *copy = malloc(size ? size : 1);
	int64_t mark = -1, want = -1, loaded = -1;
	int rc, ok;

	if (!copy)
		abort();
	memcpy(copy, data, size);
	rc = sf_hwm_parse(copy, size, &mark);
	ok = reference(data, size, &want);
	if (rc != (ok ? SF_OK : SF_E_STATE_CORRUPT))
		abort();
	if (ok) {
		char buf[64];
		int64_t back = -1;
		int n = sf_hwm_format(buf, sizeof buf, mark);

		if (mark != want || n <= 0 || (size_t)n >= sizeof buf ||
		    sf_hwm_parse(buf, (size_t)n, &back) != SF_OK || back != mark)
			abort();
		/* canonical digits (no leading zero, or the one "0") come back byte for byte */
		if ((data[7] != '0' || size == 9) && ((size_t)n != size || memcmp(buf, data, size) != 0))
			abort();
	}
	free(copy);

	if (size <= 2 * LOAD_FILE_MAX) {
		if (!state_dir[0]) {
			/* tmpfs: on a disk each exec's two opens cost twenty times the parse */
			const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") :
			                  access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

			snprintf(state_dir, sizeof state_dir, "%s/sf-fuzz-hwm.XXXXXX", tmp);
			if (!mkdtemp(state_dir))
				abort();
			atexit(remove_state_dir);
		}
		write_mark_file(data, size);
		rc = sf_hwm_load(state_dir, 0, &loaded);
		if (size >= LOAD_FILE_MAX ? rc != SF_E_STATE_CORRUPT
		                          : rc != (ok ? SF_OK : SF_E_STATE_CORRUPT) || (ok && loaded != want))
			abort();
	}
	return 0;
}
