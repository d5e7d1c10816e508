// SPDX-License-Identifier: MIT
/*
 * udaxctl - inspect and benchmark udaxfs mounts: picks the command
 * (status, pin, quarantine, bench truncate-dma; see udaxctl(8)).  What
 * the commands share is in udaxctl_util.c.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "udaxctl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: udaxctl status MOUNTPOINT [--json]\n"
		"       udaxctl pin FILE [--offset O] [--length L] [--seconds N] [--ignore-recall]\n"
		"       udaxctl bench truncate-dma [MOUNTPOINT] [options]\n"
		"       udaxctl quarantine [--release] DEVICE\n"
		"       udaxctl --version | --help\n"
		"Each command answers --help with its options.  See udaxctl(8).\n");
}

static void bench_usage(FILE *f)
{
	fprintf(f,
		"Usage: udaxctl bench BENCHMARK [options]\n"
		"Benchmarks:\n"
		"  truncate-dma   how long truncate waits for DMA to drain\n"
		"                 (udaxctl bench truncate-dma --help)\n"
		"\n"
		"  -h, --help     print this help and exit\n"
		"  -V, --version  print the version and exit\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		return ctl_version();
	}
	if (!strcmp(argv[1], "status"))
		return udaxctl_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pin"))
		return udaxctl_pin(argc - 1, argv + 1);
	if (!strcmp(argv[1], "quarantine"))
		return udaxctl_quarantine(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bench")) {
		if (argc >= 3 && !strcmp(argv[2], "truncate-dma"))
			return bench_truncate_dma(argc - 2, argv + 2);
		if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			bench_usage(stdout);
			return 0;
		}
		if (argc >= 3 && (!strcmp(argv[2], "--version") || !strcmp(argv[2], "-V")))
			return ctl_version();
		if (argc < 3) {
			bench_usage(stderr);
			return 2;
		}
		fprintf(stderr, "udaxctl bench: unknown benchmark '%s' (known: truncate-dma)\n",
			argv[2]);
		bench_usage(stderr);
		return 2;
	}
	fprintf(stderr, "udaxctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
