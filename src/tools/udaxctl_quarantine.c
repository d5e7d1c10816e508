// SPDX-License-Identifier: MIT
/*
 * udaxctl_quarantine.c - udaxctl quarantine [--release] DEVICE: show, or
 * clear, the device blocks a mount keeps out of use because pins granted
 * by an earlier daemon were never seen released (the daemon's pinrec.h
 * says why and what the record holds).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "config.h"
#include "daemon/pinrec.h"
#include "daemon/procscan.h"
#include "udaxctl.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: udaxctl quarantine [--release] DEVICE\n"
		"List the device blocks kept out of use because pins an earlier mount\n"
		"granted were never seen released; --release clears them (unmounted only).\n"
		"\n"
		"      --release  forget the record: the next mount uses those blocks again\n"
		"  -h, --help     print this help and exit\n"
		"  -V, --version  print the version and exit\n"
		"See udaxctl(8).\n");
}

/* Is a udaxfs daemon serving @dev?  It holds an exclusive flock on the device. */
static int mounted(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = flock(fd, LOCK_SH | LOCK_NB) < 0 ? (errno == EWOULDBLOCK ? 1 : -errno) : 0;
	close(fd);
	return r;
}

int udaxctl_quarantine(int argc, char **argv)
{
	struct procscan_id id;
	char path[PATH_MAX];
	const char *dev = NULL;
	bool release = false;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--release"))
			release = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			return ctl_version();
		} else if (argv[i][0] == '-' || dev) {
			fprintf(stderr, "udaxctl quarantine: %s: unexpected argument\n", argv[i]);
			usage(stderr);
			return 2;
		} else
			dev = argv[i];
	}
	if (!dev) {
		usage(stderr);
		return 2;
	}
	r = procscan_id_of(dev, &id);
	if (r) {
		fprintf(stderr, "udaxctl quarantine: %s: %s\n", dev, strerror(-r));
		return 1;
	}
	pinrec_path(path, sizeof(path), NULL, &id);
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT) {
			printf("%s: nothing quarantined (no record %s)\n", dev, path);
			return 0;
		}
		fprintf(stderr, "udaxctl quarantine: %s: %s\n", path, strerror(errno));
		return 1;
	}
	char line[256];
	unsigned long long total = 0;
	unsigned int n = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long off, len, start;
		int pid;
		if ((line[0] == 'q' && sscanf(line, "q %llu %llu %d %llu", &off, &len, &pid, &start) == 4) ||
		    (line[0] == '+' && sscanf(line, "+ %*u %llu %llu %d %llu", &off, &len, &pid, &start) == 4)) {
			if (!release)
				printf("  %#llx+%#llx  client pid %d (start time %llu)%s\n", off, len, pid,
				       start, line[0] == '+' ? "  pinned through the running mount" : "");
			total += len;
			n++;
		}
	}
	fclose(f);
	if (!release) {
		printf("%s: %u record%s, %llu KiB (%s); a crossed-out pin is not listed\n", dev, n,
		       n == 1 ? "" : "s", total >> 10, path);
		return 0;
	}
	r = mounted(dev);
	if (r != 0) {
		fprintf(stderr, "udaxctl quarantine: %s: %s\n", dev,
			r > 0 ? "mounted: unmount it first (the running daemon keeps its quarantine "
			"and records its own pins)" : strerror(-r));
		return 1;
	}
	/*
	 * What this risks: the listed blocks go back to use at the next mount.
	 * If a ring still pins them - its process, a fork()ed child holding
	 * the ring, another ring its buffers were cloned into - that DMA lands
	 * in other files.
	 */
	if (unlink(path) < 0) {
		fprintf(stderr, "udaxctl quarantine: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(stderr, "udaxctl quarantine: %s: released %llu KiB; the next mount will use "
		"these blocks again.  If any process still pins them (an io_uring of a client of "
		"an earlier mount, a child that inherited its ring, a ring its buffers were cloned "
		"into), its DMA will land in other files' data.\n", dev, total >> 10);
	return 0;
}
