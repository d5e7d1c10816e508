/* SPDX-License-Identifier: MIT */
/*
 * cli.h - the command-line conventions the file system helpers
 * (mkfs.udaxfs, fsck.udaxfs, mount.udaxfs) and udaxctl share, kept in one
 * place so that they cannot drift apart: the GNU --version line, the
 * -h/--help and bad-option answers, and the -t TYPE that mkfs(8), fsck(8)
 * and mount(8) may pass through.  Include after config.h.
 */
#ifndef UDAX_TOOLS_CLI_H
#define UDAX_TOOLS_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* --version: "PROG (udaxfs) VERSION" on standard output.  Return: 0, the exit status. */
static inline int cli_version(const char *prog)
{
	printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION);
	return 0;
}

/*
 * cli_common() - answer an option every helper treats alike: 'h' (help on
 * standard output), 'V' (the version), and whatever getopt refused (usage
 * on standard error).  @bad is the program's usage-error exit status.
 * Return: the exit status.
 */
static inline int cli_common(int opt, const char *prog, void (*usage)(FILE *), int bad)
{
	switch (opt) {
	case 'h':
		usage(stdout);
		return 0;
	case 'V':
		return cli_version(prog);
	default:
		usage(stderr);
		return bad;
	}
}

/*
 * cli_fstype_ok() - may "-t @type" select this program?  udaxfs answers to
 * its own name and to FUSE's spellings of it (mount -t fuse.udaxfs); any
 * other type was meant for another program, which is said on standard
 * error.  Return: true to go on.
 */
static inline bool cli_fstype_ok(const char *prog, const char *type)
{
	if (!strcmp(type, "udaxfs") || !strcmp(type, "fuse.udaxfs") ||
	    !strcmp(type, "fuseblk.udaxfs"))
		return true;
	fprintf(stderr, "%s: -t %s: this program handles udaxfs only\n", prog, type);
	return false;
}

#endif /* UDAX_TOOLS_CLI_H */
