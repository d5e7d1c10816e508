// SPDX-License-Identifier: MIT
/*
 * udaxctl_pin.c - udaxctl pin FILE [--offset O] [--length L] [--seconds N] [--ignore-recall]:
 * map a range of a udaxfs file with libudax and register it as an io_uring
 * fixed buffer, then hold the pin until the time is up, a signal arrives,
 * or the layout is recalled (with --ignore-recall it keeps the pin through
 * a recall: the truncate then waits until it exits).  Shows what udaxctl
 * status reports and how a truncate waits; the tests use it as a pin holder.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>

#include "core/util.h"
#include "udaxctl.h"

static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static void pin_usage(FILE *f)
{
	fprintf(f,
		"Usage: udaxctl pin FILE [--offset O] [--length L] [--seconds N] [--ignore-recall]\n"
		"Map a range of FILE (on a udaxfs mount) directly, register it as an io_uring\n"
		"fixed buffer, and hold that pin until the time is up, a signal arrives or the\n"
		"daemon recalls the layout (then unpin and give it back).\n"
		"\n"
		"  -o, --offset O       start of the range (default 0; suffixes K, M, G)\n"
		"  -l, --length L       bytes to pin, rounded up to 4 KiB\n"
		"                       (default: from O to the end of the file)\n"
		"  -s, --seconds N      give up the pin after N seconds (default: hold it\n"
		"                       until a signal or a recall)\n"
		"  -i, --ignore-recall  keep the pin through a recall: a truncate of the\n"
		"                       range then waits until this process exits\n"
		"  -h, --help           print this help and exit\n"
		"  -V, --version        print the version and exit\n");
}

int udaxctl_pin(int argc, char **argv)
{
	static const struct option lo[] = { { "offset", 1, 0, 'o' }, { "length", 1, 0, 'l' },
					    { "seconds", 1, 0, 's' }, { "ignore-recall", 0, 0, 'i' },
					    { "help", 0, 0, 'h' }, { "version", 0, 0, 'V' },
					    { 0, 0, 0, 0 } };
	bool ignore = false;
	struct udax_map_opts mo = { .flags = UDAX_MAP_RECALL_FD };
	uint64_t off = 0, len = 0;
	double secs = 0;
	struct udax_map *map = NULL;
	struct io_uring ring;
	unsigned int idx = UDAX_PIN_ANY;
	struct stat st;
	int c, fd, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:l:s:ihV", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			ignore = true;
			break;
		case 'o':
			if (dx_parse_size(optarg, &off) < 0) {
				fprintf(stderr, "udaxctl pin: --offset %s: not a size\n", optarg);
				goto usage;
			}
			break;
		case 'l':
			if (dx_parse_size(optarg, &len) < 0) {
				fprintf(stderr, "udaxctl pin: --length %s: not a size\n", optarg);
				goto usage;
			}
			break;
		case 's': {
			char *end;

			secs = strtod(optarg, &end);
			if (end == optarg || *end || !(secs >= 0)) {
				fprintf(stderr, "udaxctl pin: --seconds %s: not a number of seconds\n",
					optarg);
				goto usage;
			}
			break;
		}
		case 'h':
			pin_usage(stdout);
			return 0;
		case 'V':
			return ctl_version();
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc)
		goto usage;
	fd = open(argv[optind], O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "udaxctl pin: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	if (!len)
		len = st.st_size > (off_t)off ? (uint64_t)st.st_size - off : 0;
	len = UDAX_ALIGN_UP(len, 4096);
	if (!len) {
		fprintf(stderr, "udaxctl pin: nothing to pin (empty file: give --length)\n");
		return 1;
	}
	ret = io_uring_queue_init(4, &ring, 0);
	if (ret < 0) {
		fprintf(stderr, "udaxctl pin: io_uring: %s\n", strerror(-ret));
		return 1;
	}
	ret = udax_map_open(&map, fd, (off_t)off, len, PROT_READ | PROT_WRITE, &mo);
	if (ret == 0)
		ret = udax_pin(map, &ring, &idx);
	if (ret < 0) {
		fprintf(stderr, "udaxctl pin: %s: %s: %s\n", argv[optind], strerror(-ret),
			udax_last_error());
		udax_map_close(&map);
		return 1;
	}
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	printf("pinned %s [%llu, +%llu) as fixed buffer %u, pid %d\n", argv[optind],
	       (unsigned long long)off, (unsigned long long)len, idx, (int)getpid());
	fflush(stdout);
	uint64_t end = secs > 0 ? ctl_now_ns() + (uint64_t)(secs * 1e9) : UINT64_MAX;
	struct pollfd p = { .fd = udax_recall_fd(map), .events = POLLIN };
	bool told = false;
	while (!stop && ctl_now_ns() < end) {
		if (poll(&p, 1, 100) != 1)
			continue;
		if (ignore) {
			/* a client that never answers: the truncate waits (status shows it) */
			if (!told) {
				printf("recalled: ignoring it, holding the pin\n");
				fflush(stdout);
			}
			told = true;
			usleep(100000);
			continue;
		}
		printf("recalled: unpinning and giving the layout back\n");
		fflush(stdout);
		udax_unpin(map, &ring);
		udax_recall_process(map);
		break;
	}
	udax_map_close(&map);
	io_uring_queue_exit(&ring);
	close(fd);
	return 0;
usage:
	pin_usage(stderr);
	return 2;
}
