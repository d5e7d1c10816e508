/* SPDX-License-Identifier: MIT */
/*
 * mount.c - mount.udaxfs: the helper mount(8) runs for "mount -t udaxfs"
 * (and, installed as mount.fuse.udaxfs, for "mount -t fuse.udaxfs").
 *
 * mount(8) calls a helper as
 *
 *     mount.TYPE SOURCE TARGET [-s] [-f] [-n] [-v] [-o OPTIONS] [-t TYPE] [-N NS]
 *
 * and this one turns that into the daemon's own command line,
 *
 *     udaxfs SOURCE TARGET [-o OPTIONS]
 *
 * and executes the udaxfs installed next to it.  The daemon checks the
 * device and the options and returns only once the mount exists (or has
 * failed), so mount(8) sees the real outcome in the exit status.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* mount(8)'s exit status for a wrong invocation (see mount(8) "EXIT STATUS") */
#define EX_USAGE_MOUNT 1

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: mount.udaxfs DEVICE MOUNTPOINT [-s] [-f] [-n] [-v] [-o OPTIONS] [-t TYPE] [-N NS]\n"
		"Mount helper for mount(8): \"mount -t udaxfs DEVICE MOUNTPOINT\" runs it,\n"
		"and it runs \"udaxfs DEVICE MOUNTPOINT -o OPTIONS\" (see udaxfs(8) for OPTIONS).\n"
		"\n"
		"  -o OPTIONS    mount options, passed to udaxfs\n"
		"  -f            fake: check the arguments, do not mount\n"
		"  -v            verbose: print the udaxfs command line before running it\n"
		"  -n, -s        accepted for mount(8); no effect (there is no mtab to skip,\n"
		"                and udaxfs names every option it does not know)\n"
		"  -t TYPE       udaxfs, fuse.udaxfs or fuseblk.udaxfs\n"
		"  -N NS         mount in the mount namespace NS (a path or a pid)\n"
		"  -h, --help    print this help and exit\n"
		"  -V, --version print the version and exit\n");
}

/* The udaxfs that belongs to this helper: the one in our own directory. */
static int daemon_path(char *buf, size_t len)
{
	const char *env = getenv("UDAXFS_DAEMON");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		if ((size_t)snprintf(buf, len, "%s", env) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/udaxfs", self) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int enter_ns(const char *ns)
{
	char path[PATH_MAX];
	const char *p = ns;
	int fd;

	if (ns[0] >= '0' && ns[0] <= '9' && strspn(ns, "0123456789") == strlen(ns)) {
		snprintf(path, sizeof(path), "/proc/%s/ns/mnt", ns);
		p = path;
	}
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mount.udaxfs: -N %s: %s\n", ns, strerror(errno));
		return -1;
	}
	if (setns(fd, CLONE_NEWNS) < 0) {
		fprintf(stderr, "mount.udaxfs: -N %s: cannot enter that mount namespace: %s\n", ns,
			strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *opts = NULL, *ns = NULL, *pos[2] = { NULL, NULL };
	bool fake = false, verbose = false;
	char prog[PATH_MAX];
	char *args[8];
	int c, npos = 0, na = 0, rc;

	/* "-" first: positional arguments come back in order, options may
	 * sit anywhere (mount(8) puts them after SOURCE and TARGET) */
	while ((c = getopt_long(argc, argv, "-sfnvo:t:N:hV", lo, NULL)) != -1) {
		switch (c) {
		case 1:
			if (npos == 2) {
				fprintf(stderr, "mount.udaxfs: unexpected argument '%s'\n", optarg);
				usage(stderr);
				return EX_USAGE_MOUNT;
			}
			pos[npos++] = optarg;
			break;
		case 's':
		case 'n':
			break;
		case 'f':
			fake = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'o':
			opts = optarg;
			break;
		case 't':
			if (!cli_fstype_ok("mount.udaxfs", optarg))
				return EX_USAGE_MOUNT;
			break;
		case 'N':
			ns = optarg;
			break;
		default:
			return cli_common(c, "mount.udaxfs", usage, EX_USAGE_MOUNT);
		}
	}
	if (npos < 2) {
		fprintf(stderr, "mount.udaxfs: missing %s\n", npos ? "MOUNTPOINT" : "DEVICE and MOUNTPOINT");
		usage(stderr);
		return EX_USAGE_MOUNT;
	}
	rc = daemon_path(prog, sizeof(prog));
	if (rc < 0) {
		fprintf(stderr, "mount.udaxfs: cannot find udaxfs: %s\n", strerror(-rc));
		return EX_USAGE_MOUNT;
	}
	args[na++] = prog;
	args[na++] = (char *)pos[0];
	args[na++] = (char *)pos[1];
	if (opts && *opts) {
		args[na++] = (char *)"-o";
		args[na++] = (char *)opts;
	}
	args[na] = NULL;
	if (verbose || fake) {
		fprintf(stderr, "mount.udaxfs: %s", fake ? "would run:" : "running:");
		for (int i = 0; i < na; i++)
			fprintf(stderr, " %s", args[i]);
		fputc('\n', stderr);
	}
	if (access(prog, X_OK) < 0) {
		fprintf(stderr, "mount.udaxfs: %s: %s (udaxfs is installed next to mount.udaxfs)\n",
			prog, strerror(errno));
		return EX_USAGE_MOUNT;
	}
	if (fake)
		return 0;
	if (ns && enter_ns(ns) < 0)
		return EX_USAGE_MOUNT;
	execv(prog, args);
	fprintf(stderr, "mount.udaxfs: cannot run %s: %s\n", prog, strerror(errno));
	return EX_USAGE_MOUNT;
}
