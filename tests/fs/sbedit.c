/* SPDX-License-Identifier: MIT */
/*
 * sbedit - damage a udaxfs image's superblocks on purpose (bad-input tests).
 *
 *   sbedit IMAGE version N        set s_version in both copies (checksums fixed)
 *   sbedit IMAGE incompat BITS    set s_feat_incompat in both copies (fixed)
 *   sbedit IMAGE corrupt-primary  flip a label byte of the primary (checksum now wrong)
 *   sbedit IMAGE corrupt-both     the same in both copies
 *   sbedit IMAGE magic-both       clear the magic of both copies
 *
 * Works on emulation files only (pread/pwrite).  The backup lives in the
 * last block of the file system (s_blocks_count - 1).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/format.h"
#include "core/util.h"

static int rw_super(int fd, off_t off, struct ufs_super *sb, bool write)
{
	ssize_t n = write ? pwrite(fd, sb, sizeof(*sb), off) : pread(fd, sb, sizeof(*sb), off);

	return n == (ssize_t)sizeof(*sb) ? 0 : -1;
}

static void fix_csum(struct ufs_super *sb)
{
	sb->s_checksum = dx_crc32c(0, sb, offsetof(struct ufs_super, s_checksum));
}

int main(int argc, char **argv)
{
	struct ufs_super sb[2];
	off_t off[2];
	const char *cmd;
	int fd, i;

	if (argc < 3) {
		fprintf(stderr, "Usage: sbedit IMAGE version N|incompat BITS|corrupt-primary|"
			"corrupt-both|magic-both\n");
		return 2;
	}
	cmd = argv[2];
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || rw_super(fd, 0, &sb[0], false)) {
		perror(argv[1]);
		return 1;
	}
	if (sb[0].s_magic != UFS_MAGIC) {
		fprintf(stderr, "sbedit: %s: no primary superblock\n", argv[1]);
		return 1;
	}
	off[0] = 0;
	off[1] = (off_t)((sb[0].s_blocks_count - 1) * UFS_BLOCK_SIZE);
	if (rw_super(fd, off[1], &sb[1], false) || sb[1].s_magic != UFS_MAGIC) {
		fprintf(stderr, "sbedit: %s: no backup superblock at %lld\n", argv[1],
			(long long)off[1]);
		return 1;
	}
	for (i = 0; i < 2; i++) {
		if (!strcmp(cmd, "version") && argc == 4) {
			sb[i].s_version = (uint32_t)strtoul(argv[3], NULL, 0);
			fix_csum(&sb[i]);
		} else if (!strcmp(cmd, "incompat") && argc == 4) {
			sb[i].s_feat_incompat = (uint32_t)strtoul(argv[3], NULL, 0);
			fix_csum(&sb[i]);
		} else if (!strcmp(cmd, "corrupt-primary")) {
			if (i == 0)
				sb[i].s_label[5] ^= 0x5a;
		} else if (!strcmp(cmd, "corrupt-both")) {
			sb[i].s_label[5] ^= 0x5a;
		} else if (!strcmp(cmd, "magic-both")) {
			sb[i].s_magic = 0;
		} else {
			fprintf(stderr, "sbedit: unknown command '%s'\n", cmd);
			return 2;
		}
		if (rw_super(fd, off[i], &sb[i], true)) {
			perror(argv[1]);
			return 1;
		}
	}
	if (fsync(fd) || close(fd)) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
