/*
 * lease.auth_file: the registry credential, read once at start. The secret
 * lives in a file only its owner can read, never in the config, so it does
 * not end up in a config dump, a ps listing or a log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sf_lease.h"

#define AUTH_FILE_MAX 1024

int sf_lease_auth_load(const char *path, char *cred, size_t size, char *why, size_t why_size)
{
	struct stat st;
	char text[AUTH_FILE_MAX + 1];
	ssize_t got;
	size_t len = 0;
	int fd;

	if (size > 0)
		cred[0] = '\0';
	if (!path || !path[0]) {
		snprintf(why, why_size, "lease.auth_file is empty");
		return SF_E_REGISTRY_ACCESS;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		snprintf(why, why_size, "lease.auth_file %s cannot be opened: %s", path, strerror(errno));
		return SF_E_REGISTRY_ACCESS;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "lease.auth_file %s is not a regular file", path);
		close(fd);
		return SF_E_REGISTRY_ACCESS;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, why_size, "lease.auth_file %s has mode %04o: others than its owner may read "
		         "it; chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return SF_E_REGISTRY_ACCESS;
	}
	while (len < sizeof text) {
		got = read(fd, text + len, sizeof text - len);
		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (len > AUTH_FILE_MAX) {
		snprintf(why, why_size, "lease.auth_file %s is longer than %d bytes", path, AUTH_FILE_MAX);
		return SF_E_REGISTRY_ACCESS;
	}
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len > 0 && text[len - 1] == '\r')
		len--;
	text[len] = '\0';
	const char *colon = memchr(text, ':', len);

	if (!colon || colon == text || colon == text + len - 1 || strlen(text) != len ||
	    strpbrk(text, "\n\r")) {
		snprintf(why, why_size, "lease.auth_file %s must hold one line user:password (a user and a "
		         "password, neither empty)", path);
		return SF_E_REGISTRY_ACCESS;
	}
	if (len + 1 > size) {
		snprintf(why, why_size, "lease.auth_file %s: the credential is too long", path);
		return SF_E_REGISTRY_ACCESS;
	}
	memcpy(cred, text, len + 1);
	return SF_OK;
}
