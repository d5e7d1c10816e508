/* SPDX-License-Identifier: MIT */
/*
 * fsck.c - fsck.udaxfs: check and repair a udaxfs file system.
 * The checking itself lives in libudax-fsck (fsck_check.c runs the passes
 * listed in fsck_int.h), shared with the tests and the fuzzer.
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fsck_check.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: fsck.udaxfs [-n | -y | -a | -p] [-f] [-v] [-C [fd]] DEVICE\n"
		"  -n      check only, open read-only, never write\n"
		"  -y      repair every problem that is safe to repair\n"
		"  -a, -p  preen: as -y, and skip a cleanly unmounted file system\n"
		"  -f      check even when the file system is clean\n"
		"  -v      verbose\n"
		"  -C      show progress on standard error\n"
		"  -t udaxfs      accepted as fsck(8) may pass it; another type is refused\n"
		"  -h, --help     print this help and exit\n"
		"  -V, --version  print the version and exit\n"
		"Exit status: 0 clean, 1 errors corrected, 4 errors left uncorrected,\n"
		"8 operational error, 16 usage error.\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct fsck_opts o;
	int c, modes = 0;
	bool no = false, yes = false;

	memset(&o, 0, sizeof(o));
	while ((c = getopt_long(argc, argv, "nyapfvC::Vht:", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			no = true;
			modes++;
			break;
		case 'y':
			yes = true;
			modes++;
			break;
		case 'a':
		case 'p':
			o.preen = true;
			yes = true;
			modes++;
			break;
		case 'f':
			o.force = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'C':
			o.progress = true;
			/* fsck(8) may pass "-C 0": swallow a separate numeric fd */
			if (!optarg && optind < argc - 1 && isdigit((unsigned char)argv[optind][0]))
				optind++;
			break;
		case 't':
			/* fsck -t udaxfs passes the type through on some systems */
			if (!cli_fstype_ok("fsck.udaxfs", optarg))
				return FSCK_USAGE;
			break;
		default:
			return cli_common(c, "fsck.udaxfs", usage, FSCK_USAGE);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return FSCK_USAGE;
	}
	if (modes > 1 && no && yes) {
		fprintf(stderr, "fsck.udaxfs: -n cannot be combined with -y, -a or -p\n");
		return FSCK_USAGE;
	}
	if (no)
		o.repair = FSCK_REPAIR_NO;
	else if (yes)
		o.repair = FSCK_REPAIR_YES;
	else if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		o.repair = FSCK_REPAIR_ASK;
	else
		o.repair = FSCK_REPAIR_NO;
	o.out = stdout;
	return udax_fsck_path(argv[optind], &o, NULL);
}
