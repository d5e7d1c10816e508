/* SPDX-License-Identifier: MIT */
/*
 * fsck_check.h - the udaxfs consistency checker as a library, so that
 * fsck.udaxfs, the crash-state tests and the fuzz target run the same code.
 *
 * The checker reads the on-media format (format.h) directly through the
 * device mapping; it never calls ufs_mount(): it checks what mount would
 * trust.  Every offset and length read from the device is bounds-checked
 * against the device size before it is dereferenced, so any image, however
 * corrupt, is safe to check.
 */
#ifndef UDAX_FSCK_CHECK_H
#define UDAX_FSCK_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/media.h"

/* Exit status bits, as fsck(8). */
#define FSCK_OK			0
#define FSCK_CORRECTED		1
#define FSCK_UNCORRECTED	4
#define FSCK_OPERATIONAL	8
#define FSCK_USAGE		16

enum fsck_repair {
	FSCK_REPAIR_NO = 0,	/* -n: report only, never write */
	FSCK_REPAIR_YES,	/* -y: repair everything that is safe to repair */
	FSCK_REPAIR_ASK,	/* interactive: ask on the terminal */
};

struct fsck_opts {
	enum fsck_repair repair;
	bool verbose;		/* -v: say what is checked */
	bool progress;		/* -C: progress line on stderr */
	bool force;		/* -f: check even a clean file system */
	bool preen;		/* -a/-p: may skip a clean file system */
	bool quiet;		/* print nothing (fuzzing); counts still kept */
	FILE *out;		/* reports; NULL = stdout */
};

struct fsck_stats {
	uint64_t errors;	/* problems found */
	uint64_t fixed;		/* of which repaired */
	uint64_t inodes;	/* allocated inodes checked */
	uint64_t dirs;
	uint64_t files;
	uint64_t used_blocks;	/* blocks referenced (metadata included) */
	uint64_t free_blocks;	/* according to the block bitmap, after repair */
	uint64_t free_inodes;
	uint64_t journal_records;	/* in an unfinished transaction */
	uint64_t orphans;	/* inodes on the orphan list */
	bool used_backup;	/* the primary superblock was bad */
	bool skipped;		/* clean and -p without -f: not checked */
};

/*
 * udax_fsck_media() - check (and with opts->repair, repair) the file system
 * on an open device.  The media must be writable for repairs; with
 * FSCK_REPAIR_NO nothing is ever written (an unfinished journal transaction
 * is rolled back in a private copy of the affected blocks, so what is
 * checked is what mount would see).
 * Return: an fsck(8) exit status (FSCK_* bits); @st (may be NULL) is filled.
 */
int udax_fsck_media(struct dx_media *m, const struct fsck_opts *opts, struct fsck_stats *st);

/*
 * udax_fsck_path() - open @path (read-only for FSCK_REPAIR_NO) and run
 * udax_fsck_media().  Return: an fsck(8) exit status.
 */
int udax_fsck_path(const char *path, const struct fsck_opts *opts, struct fsck_stats *st);

#endif /* UDAX_FSCK_CHECK_H */
