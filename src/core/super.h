/* SPDX-License-Identifier: MIT */
/*
 * super.h - superblock validation and mkfs.
 */
#ifndef UDAX_SUPER_H
#define UDAX_SUPER_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "media.h"

/*
 * ufs_super_load() - find a valid superblock: the primary at block 0, else
 * the backup at the last block (and *used_backup = true; the caller says
 * so).  Checks magic, version, checksum, feature bits and that every region
 * lies inside the device.  Never writes.
 * Return: 0; -EINVAL "not a udaxfs file system" (no magic anywhere);
 * -EPROTONOSUPPORT newer version or unknown incompat feature; -EUCLEAN
 * corrupted (both copies bad); -EFBIG the device is smaller than the file
 * system says (truncated image).  dx_errmsg() names the structure and
 * its offset.  When the backup was used, dx_errmsg() says why the
 * primary was refused (the caller prints it).
 * Context: mount, fsck; nothing else may use @m yet.
 */
int ufs_super_load(struct dx_media *m, struct ufs_super *out, bool *used_backup);
/*
 * ufs_super_check() - validate one copy of a superblock, found at device
 * offset @off (0: the primary; else it must be the file system's last
 * block), on a device of @dev_size bytes: magic, checksum, version,
 * features, block size, state, label, and the layout of every region.
 * The one set of rules mount (ufs_super_load) and fsck both apply, so
 * fsck never calls clean what mount refuses.
 * Context: any; reads only @sb; never writes.
 * Return: 0 usable; -EINVAL no udaxfs magic; -EPROTONOSUPPORT newer
 * format or unknown incompatible features; -EUCLEAN corrupt; -EFBIG the
 * device is smaller than the file system.  On error the reason is left in
 * @why (@wlen bytes).
 */
int ufs_super_check(const struct ufs_super *sb, uint64_t off, uint64_t dev_size,
		    char *why, size_t wlen);
/*
 * ufs_super_write() - write @sb (checksum recomputed into it) to the
 * primary and the backup, durably.
 * Context: outside a transaction (the superblock is not journaled here):
 * mkfs, mount, unmount, fsck -y.  Return: nothing.
 */
void ufs_super_write(struct dx_media *m, struct ufs_super *sb);
/* ufs_super_csum() - crc32c of @sb up to s_checksum.  Context: any.  Return: the checksum. */
uint32_t ufs_super_csum(const struct ufs_super *sb);
/*
 * ufs_inode_csum() - crc32c of an inode with i_checksum taken as 0
 * (format.h).  Context: any.  Return: the checksum.
 */
uint32_t ufs_inode_csum(const struct ufs_dinode *di);
/*
 * ufs_journal_head_csum() - crc32c of a journal head's static fields
 * (format.h).  Context: any.  Return: the checksum.
 */
uint32_t ufs_journal_head_csum(const struct ufs_journal_head *jh);

struct ufs_mkfs_opts {
	const char *label;		/* may be NULL */
	uint64_t inode_ratio;		/* bytes per inode; 0 = default (16 KiB) */
	uint64_t journal_bytes;		/* 0 = default (scaled, 4..64 MiB) */
	const uint8_t *uuid;		/* 16 bytes, NULL = random */
	bool force;			/* overwrite an existing signature */
	uint32_t root_uid, root_gid;	/* owner of the root directory (default 0:0) */
};
/*
 * ufs_mkfs() - write a fresh file system: superblocks, journal header,
 * bitmaps, root directory.  Never touches the inode table or data area
 * beyond what the root needs.  Refuses (-EEXIST, naming what it found) to
 * overwrite a udaxfs or other recognisable signature unless opts->force.
 * *@out (may be NULL) receives the superblock written.
 * Context: the device is not mounted.
 * Return: 0, -ENOSPC (device too small), -EEXIST, -errno.
 */
int ufs_mkfs(struct dx_media *m, const struct ufs_mkfs_opts *o, struct ufs_super *out);
/*
 * ufs_probe_signature() - name a recognisable signature at the start of the
 * device ("udaxfs", "ext4", "xfs", "btrfs", "swap", "PMDK pool", ...).
 * Context: any; reads only.  Return: a static string, or NULL (none found).
 */
const char *ufs_probe_signature(struct dx_media *m);

#endif /* UDAX_SUPER_H */
