/*
 * Write-ahead high-water mark: one small file a worker ID under a state
 * directory, "sfhwm1 <unix_ms>\n". A store is atomic and durable: write a
 * temp file, fsync it, rename it over the old one, fsync the directory. A
 * reader sees either the old mark or the new one, never a torn write.
 *
 * The keeper stores marks ahead of the clock so that minting never waits on
 * the disk; the generator is only ever allowed up to a mark that is already
 * durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sf_internal.h"

#define HWM_MAGIC "sfhwm1 "
#define HWM_FILE_MAX 64

struct sf_keeper {
	sf_gen  *gen;
	char    *dir;
	uint32_t worker;
	int64_t  ahead_ms;
	int64_t  refresh_ms;
	int64_t  mark_ms;   /* the durable mark, INT64_MIN before the first store */
};

static int hwm_path(char *buf, size_t size, const char *dir, uint32_t worker, const char *suffix)
{
	int n = snprintf(buf, size, "%s/worker-%" PRIu32 ".hwm%s", dir, worker, suffix);

	return (n < 0 || (size_t)n >= size) ? SF_E_INVALID : SF_OK;
}

int sf_hwm_parse(const char *text, size_t len, int64_t *mark)
{
	const size_t magic_len = sizeof HWM_MAGIC - 1;
	int64_t value = 0;
	size_t i = magic_len;

	if (len < magic_len + 2 || memcmp(text, HWM_MAGIC, magic_len) != 0 || text[len - 1] != '\n')
		return SF_E_STATE_CORRUPT;
	for (; i < len - 1; i++) {
		if (text[i] < '0' || text[i] > '9')
			return SF_E_STATE_CORRUPT;
		if (value > (INT64_MAX - (text[i] - '0')) / 10)
			return SF_E_STATE_CORRUPT;
		value = value * 10 + (text[i] - '0');
	}
	*mark = value;
	return SF_OK;
}

int sf_hwm_format(char *buf, size_t size, int64_t mark)
{
	return snprintf(buf, size, HWM_MAGIC "%" PRId64 "\n", mark);
}

int sf_hwm_load(const char *dir, uint32_t worker, int64_t *mark_unix_ms)
{
	char path[PATH_MAX];
	char text[HWM_FILE_MAX];
	ssize_t got;
	size_t len = 0;
	int fd, rc;

	if (!dir || !mark_unix_ms)
		return SF_E_INVALID;
	rc = hwm_path(path, sizeof path, dir, worker, "");
	if (rc != SF_OK)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		struct stat st;

		/* a missing file is a first use; a missing directory is a mistake */
		if (errno == ENOENT && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return SF_E_NOT_FOUND;
		return SF_E_STATE_IO;
	}
	while (len < sizeof text) {
		got = read(fd, text + len, sizeof text - len);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			close(fd);
			return SF_E_STATE_IO;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (len == sizeof text)
		return SF_E_STATE_CORRUPT;
	return sf_hwm_parse(text, len, mark_unix_ms);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int sf_hwm_store(const char *dir, uint32_t worker, int64_t mark_unix_ms)
{
	char path[PATH_MAX];
	char tmp[PATH_MAX];
	char suffix[32];
	char text[HWM_FILE_MAX];
	int fd, dir_fd, len, rc;

	if (!dir || mark_unix_ms < 0)
		return SF_E_INVALID;
	/* the pid keeps two processes sharing a directory off each other's temp file */
	snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
	if ((rc = hwm_path(path, sizeof path, dir, worker, "")) != SF_OK ||
	    (rc = hwm_path(tmp, sizeof tmp, dir, worker, suffix)) != SF_OK)
		return rc;
	len = sf_hwm_format(text, sizeof text, mark_unix_ms);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return SF_E_STATE_IO;
	if (write_all(fd, text, (size_t)len) == -1 || fsync(fd) == -1) {
		close(fd);
		unlink(tmp);
		return SF_E_STATE_IO;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		unlink(tmp);
		return SF_E_STATE_IO;
	}
	/* the rename itself is durable only once the directory is */
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd == -1)
		return SF_E_STATE_IO;
	rc = fsync(dir_fd) == -1 ? SF_E_STATE_IO : SF_OK;
	close(dir_fd);
	return rc;
}

int sf_keeper_new(sf_gen *gen, const sf_keeper_config *config, sf_keeper **out)
{
	sf_keeper *keeper;
	struct stat st;

	if (!gen || !config || !out || !config->dir || config->ahead_ms <= 0 ||
	    config->refresh_ms <= 0 || config->refresh_ms > config->ahead_ms)
		return SF_E_INVALID;
	if ((uint64_t)config->worker >> sf_gen_layout(gen)->worker_bits)
		return SF_E_WORKER_RANGE;
	if (stat(config->dir, &st) == -1 || !S_ISDIR(st.st_mode))
		return SF_E_STATE_IO;
	keeper = calloc(1, sizeof *keeper);
	if (!keeper)
		return SF_E_NOMEM;
	keeper->dir = strdup(config->dir);
	if (!keeper->dir) {
		free(keeper);
		return SF_E_NOMEM;
	}
	keeper->gen = gen;
	keeper->worker = config->worker;
	keeper->ahead_ms = config->ahead_ms;
	keeper->refresh_ms = config->refresh_ms;
	keeper->mark_ms = INT64_MIN;
	*out = keeper;
	return SF_OK;
}

void sf_keeper_free(sf_keeper *keeper)
{
	if (!keeper)
		return;
	free(keeper->dir);
	free(keeper);
}

int64_t sf_keeper_mark(const sf_keeper *keeper)
{
	return keeper->mark_ms;
}

int sf_keeper_start_mark(sf_keeper *keeper, int64_t *mark_unix_ms, bool *found)
{
	int64_t mark;
	int rc = sf_hwm_load(keeper->dir, keeper->worker, &mark);

	if (found)
		*found = rc == SF_OK;
	if (rc == SF_E_NOT_FOUND) {
		mark = sf_floor_div(sf_clock_wall_ns(sf_gen_clock(keeper->gen)), SF_NS_PER_MS) +
		       keeper->ahead_ms;
		rc = SF_OK;
	} else if (rc == SF_OK && mark > keeper->mark_ms) {
		keeper->mark_ms = mark; /* durable already: never store below it */
	}
	if (rc == SF_OK)
		*mark_unix_ms = mark;
	return rc;
}

int sf_keeper_step(sf_keeper *keeper, bool *stored)
{
	const int64_t now_ms = sf_floor_div(sf_clock_wall_ns(sf_gen_clock(keeper->gen)), SF_NS_PER_MS);
	int64_t next;
	int rc;

	if (stored)
		*stored = false;
	if (keeper->mark_ms == INT64_MIN) {
		/* the first step: never store below what is already on disk */
		int64_t on_disk;

		rc = sf_hwm_load(keeper->dir, keeper->worker, &on_disk);
		if (rc == SF_OK)
			keeper->mark_ms = on_disk;
		else if (rc != SF_E_NOT_FOUND)
			return rc;
	}
	if (keeper->mark_ms != INT64_MIN && keeper->mark_ms - now_ms >= keeper->refresh_ms) {
		if (sf_gen_ceiling_get(keeper->gen, SF_CEILING_LOCAL) != keeper->mark_ms)
			sf_gen_ceiling_set(keeper->gen, SF_CEILING_LOCAL, keeper->mark_ms);
		return SF_OK;
	}
	next = now_ms + keeper->ahead_ms;
	/* a mark never moves back, even when the clock did */
	if (next <= keeper->mark_ms)
		next = keeper->mark_ms;
	rc = sf_hwm_store(keeper->dir, keeper->worker, next);
	if (rc != SF_OK)
		return rc;
	keeper->mark_ms = next;
	sf_gen_ceiling_set(keeper->gen, SF_CEILING_LOCAL, next);
	if (stored)
		*stored = true;
	return SF_OK;
}
