// SPDX-License-Identifier: MIT
/*
 * udaxctl_util.c - what the commands of udaxctl share (udaxctl.h): the
 * clock, finding the programs installed beside udaxctl, JSON strings,
 * recognising a udaxfs mount, size lists and the --version line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "core/util.h"
#include "cli.h"
#include "udaxctl.h"

uint64_t ctl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *ctl_self_dir(void)
{
	static char dir[PATH_MAX];
	ssize_t n;

	if (dir[0])
		return dir;
	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0) {
		strcpy(dir, ".");
		return dir;
	}
	dir[n] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	/* libtool wrapper: the real binary lives in .libs/ */
	slash = strrchr(dir, '/');
	if (slash && strcmp(slash, "/.libs") == 0)
		*slash = '\0';
	return dir;
}

static bool is_exec(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

#ifdef UDAX_PKGLIBEXECDIR
/*
 * ctl_libexec_rel() - pkglibexecdir relative to bindir (where udaxctl is
 * installed), e.g. "../libexec/udaxfs".  Return 0, or -ENAMETOOLONG.
 */
static int ctl_libexec_rel(char *out, size_t size)
{
	const char *b = UDAX_BINDIR, *l = UDAX_PKGLIBEXECDIR;
	size_t common = 0, i = 0, n = 0;

	/* the longest common prefix that ends at a directory boundary */
	for (; b[i] && b[i] == l[i]; i++)
		if (b[i] == '/')
			common = i;
	if (!b[i] && (l[i] == '/' || !l[i]))
		common = i;
	out[0] = '\0';
	/* one ".." per component of bindir below it */
	for (const char *p = b + common; *p; p++) {
		if (*p != '/' && (p == b + common || p[-1] == '/')) {
			int w = snprintf(out + n, size - n, "%s..", n ? "/" : "");
			if (w < 0 || (size_t)w >= size - n)
				return -ENAMETOOLONG;
			n += (size_t)w;
		}
	}
	const char *rest = l + common;
	while (*rest == '/')
		rest++;
	int w = snprintf(out + n, size - n, "%s%s", n && *rest ? "/" : "", rest);
	if (w < 0 || (size_t)w >= size - n)
		return -ENAMETOOLONG;
	if (!out[0])
		snprintf(out, size, ".");
	return 0;
}
#endif

char *ctl_find_prog(const char *env, const char *name, const char *const *subdirs)
{
	const char *e = env ? getenv(env) : NULL;
	char buf[2 * PATH_MAX + 64];

	if (e && *e)
		return is_exec(e) ? strdup(e) : NULL;
	snprintf(buf, sizeof(buf), "%s/%s", ctl_self_dir(), name);
	if (is_exec(buf))
		return strdup(buf);
	for (; subdirs && *subdirs; subdirs++) {
		snprintf(buf, sizeof(buf), "%s/%s/%s", ctl_self_dir(), *subdirs, name);
		if (is_exec(buf))
			return strdup(buf);
	}
#ifdef UDAX_PKGLIBEXECDIR
	/*
	 * Our helper programs (bench-passthrough_ll) are installed in
	 * pkglibexecdir: look there beside this binary first (an install
	 * staged with DESTDIR, or a moved prefix), then at the configured path.
	 */
	char rel[PATH_MAX];
	if (ctl_libexec_rel(rel, sizeof(rel)) == 0) {
		snprintf(buf, sizeof(buf), "%s/%s/%s", ctl_self_dir(), rel, name);
		if (is_exec(buf))
			return strdup(buf);
	}
	snprintf(buf, sizeof(buf), "%s/%s", UDAX_PKGLIBEXECDIR, name);
	if (is_exec(buf))
		return strdup(buf);
#endif
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *dup = strdup(path), *save = NULL;
	for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", *d ? d : ".", name);
		if (is_exec(buf)) {
			free(dup);
			return strdup(buf);
		}
	}
	free(dup);
	return NULL;
}

void ctl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Undo the octal escapes of /proc/self/mountinfo (\040 etc.) in place. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

int ctl_is_udaxfs_mount(const char *path, char *fstype, size_t len)
{
	char real[PATH_MAX], line[4096];
	FILE *f;
	int found = 0;

	if (!realpath(path, real))
		return -errno;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	/* the last matching line wins (a later mount hides an earlier one) */
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		char mnt[PATH_MAX], type[256];

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%255s", type) != 1)
			continue;
		unescape(mnt);
		if (strcmp(mnt, real) != 0)
			continue;
		found = strcmp(type, "fuse.udaxfs") == 0 || strcmp(type, "fuseblk.udaxfs") == 0;
		if (fstype)
			snprintf(fstype, len, "%s", type);
	}
	fclose(f);
	return found;
}

int ctl_parse_size_list(const char *s, uint64_t **out)
{
	char *dup = strdup(s), *save = NULL;
	uint64_t *v = NULL;
	int n = 0;

	if (!dup)
		return -ENOMEM;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		uint64_t x;
		uint64_t *nv;

		if (dx_parse_size(t, &x) < 0) {
			free(dup);
			free(v);
			return -EINVAL;
		}
		nv = realloc(v, (size_t)(n + 1) * sizeof(*v));
		if (!nv) {
			free(dup);
			free(v);
			return -ENOMEM;
		}
		v = nv;
		v[n++] = x;
	}
	free(dup);
	if (n == 0)
		return -EINVAL;
	*out = v;
	return n;
}

int ctl_version(void)
{
	return cli_version("udaxctl");
}
