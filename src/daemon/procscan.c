/* SPDX-License-Identifier: MIT */
/*
 * procscan.c - see procscan.h.
 *
 * A descriptor matches when stat() through /proc/PID/fd/N names the same
 * device: st_rdev for a character device (any node of it, wherever it was
 * made), st_dev and st_ino for an emulation file.  A mapping matches when
 * its maps line names the same dev:inode (an emulation file, or the device
 * node itself) or, for a character device, when stat() through
 * /proc/PID/map_files/START-END shows the same st_rdev.  A pin taken through
 * a mapping that was since unmapped leaves no trace here: the pin record
 * (pinrec.h) covers that case.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "procscan.h"

int procscan_id_of(const char *path, struct procscan_id *id)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	memset(id, 0, sizeof(*id));
	id->chr = S_ISCHR(st.st_mode);
	id->rdev = st.st_rdev;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	return 0;
}

static bool stat_matches(const struct procscan_id *id, const struct stat *st)
{
	if (id->chr)
		return S_ISCHR(st->st_mode) && st->st_rdev == id->rdev;
	return !S_ISCHR(st->st_mode) && st->st_dev == id->dev && st->st_ino == id->ino;
}

/* Count @pid's mappings of @id. */
static unsigned int scan_maps(const struct procscan_id *id, const char *pid)
{
	char path[64], line[4096];
	unsigned int hits = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, ino;
		unsigned int maj, min;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %*s %x:%x %llu", &start, &end, perms, &maj, &min,
			   &ino) != 6 || ino == 0)
			continue;
		/* the node or the emulation file itself */
		if (makedev(maj, min) == id->dev && (ino_t)ino == id->ino) {
			hits++;
			continue;
		}
		if (!id->chr)
			continue;
		/* a character device reached through another node */
		struct stat st;
		char mf[96];

		snprintf(mf, sizeof(mf), "/proc/%s/map_files/%llx-%llx", pid, start, end);
		if (stat(mf, &st) == 0 && stat_matches(id, &st))
			hits++;
	}
	fclose(f);
	return hits;
}

/* Append to @what the descriptors of @pid that reach @id; return how many. */
static unsigned int scan_fds(const struct procscan_id *id, const char *pid, char *what,
			     size_t size)
{
	char path[300];
	unsigned int hits = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char fp[600];
		struct stat st;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(fp, sizeof(fp), "/proc/%s/fd/%s", pid, de->d_name);
		if (stat(fp, &st) < 0 || !stat_matches(id, &st))
			continue;
		hits++;
		size_t l = strlen(what);
		if (hits <= 4)
			snprintf(what + l, size - l, "%sfd %.16s", l ? ", " : "", de->d_name);
		else if (hits == 5)
			snprintf(what + l, size - l, ", ...");
	}
	closedir(d);
	return hits;
}

int procscan_holders(const struct procscan_id *id, struct procscan_hit **hits, size_t *n,
		     size_t max)
{
	struct procscan_hit *h = NULL;
	size_t cnt = 0, cap = 0;
	pid_t self = getpid();
	struct dirent *de;
	DIR *d;

	*hits = NULL;
	*n = 0;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d)) && cnt < max) {
		char what[96] = "";

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		if (pid == self)
			continue;
		unsigned int maps = scan_maps(id, de->d_name);
		if (maps)
			snprintf(what, sizeof(what), "maps it (%u mapping%s)", maps,
				 maps == 1 ? "" : "s");
		unsigned int fds = scan_fds(id, de->d_name, what, sizeof(what));
		if (!maps && !fds)
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct procscan_hit *nh = realloc(h, ncap * sizeof(*nh));
			if (!nh) {
				free(h);
				closedir(d);
				return -ENOMEM;
			}
			h = nh;
			cap = ncap;
		}
		struct procscan_hit *e = &h[cnt++];
		memset(e, 0, sizeof(*e));
		e->pid = pid;
		snprintf(e->what, sizeof(e->what), "%s", what);
		char cp[300];
		snprintf(cp, sizeof(cp), "/proc/%s/comm", de->d_name);
		FILE *f = fopen(cp, "re");
		if (f) {
			if (fgets(e->comm, sizeof(e->comm), f))
				e->comm[strcspn(e->comm, "\n")] = 0;
			fclose(f);
		}
	}
	closedir(d);
	*hits = h;
	*n = cnt;
	return 0;
}
