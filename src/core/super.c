/* SPDX-License-Identifier: MIT */
/*
 * super.c - superblock validation (with the backup fallback), foreign
 * signature probing, and mkfs.
 *
 * Validation never writes and never trusts a field before checking it:
 * every region must lie inside the device and follow the fixed layout of
 * format.h, so later code (journal, allocator, fsck, the fuzzer) can use
 * the geometry without re-checking for overflow.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "super.h"
#include "util.h"

#define BS UFS_BLOCK_SIZE
#define BITS_PER_BLOCK (UFS_BLOCK_SIZE * 8ULL)
#define INODES_PER_BLOCK (UFS_BLOCK_SIZE / UFS_INODE_SIZE)
/* Largest device version 1 accepts: 2^40 blocks (4 PiB); keeps all
 * geometry arithmetic far from overflow. */
#define UFS_MAX_BLOCKS (1ULL << 40)
#define UFS_MIN_JOURNAL_BLOCKS 16
#define UFS_MIN_DATA_BLOCKS 16

uint32_t ufs_super_csum(const struct ufs_super *sb)
{
	return dx_crc32c(0, sb, offsetof(struct ufs_super, s_checksum));
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* See super.h.  Mount and fsck both judge a superblock here. */
int ufs_super_check(const struct ufs_super *sb, uint64_t off, uint64_t dev_size,
		    char *why, size_t wlen)
{
	uint64_t end;

#define BAD(err, ...) do { snprintf(why, wlen, __VA_ARGS__); return (err); } while (0)
	if (sb->s_magic != UFS_MAGIC)
		BAD(-EINVAL, "no udaxfs magic");
	if (sb->s_checksum != ufs_super_csum(sb))
		BAD(-EUCLEAN, "bad checksum (stored 0x%08x, computed 0x%08x)",
		    sb->s_checksum, ufs_super_csum(sb));
	if (sb->s_version > UFS_VERSION)
		BAD(-EPROTONOSUPPORT, "format version %u is newer than this udaxfs supports (%u)",
		    sb->s_version, UFS_VERSION);
	if (sb->s_version == 0)
		BAD(-EUCLEAN, "format version 0 is invalid");
	if (sb->s_feat_incompat & ~UFS_FEAT_INCOMPAT_SUPPORTED)
		BAD(-EPROTONOSUPPORT, "unknown incompatible features 0x%x",
		    sb->s_feat_incompat & ~UFS_FEAT_INCOMPAT_SUPPORTED);
	if (sb->s_block_size != BS)
		BAD(-EUCLEAN, "block size %u is not %u", sb->s_block_size, BS);
	if (sb->s_state != UFS_STATE_CLEAN && sb->s_state != UFS_STATE_MOUNTED)
		BAD(-EUCLEAN, "invalid state %u", sb->s_state);
	if (sb->s_label[sizeof(sb->s_label) - 1] != '\0')
		BAD(-EUCLEAN, "label is not NUL-terminated");
	if (sb->s_blocks_count < UFS_MIN_BLOCKS || sb->s_blocks_count > UFS_MAX_BLOCKS)
		BAD(-EUCLEAN, "block count %" PRIu64 " out of range", sb->s_blocks_count);
	if (sb->s_inode_count < 2 || sb->s_inode_count > sb->s_blocks_count * INODES_PER_BLOCK)
		BAD(-EUCLEAN, "inode count %" PRIu64 " out of range", sb->s_inode_count);
	if (sb->s_journal_start != 1 || sb->s_journal_blocks < UFS_MIN_JOURNAL_BLOCKS ||
	    sb->s_journal_blocks > sb->s_blocks_count)
		BAD(-EUCLEAN, "journal region %" PRIu64 "+%" PRIu64 " invalid",
		    sb->s_journal_start, sb->s_journal_blocks);
	/* the metadata regions follow the journal and each other, sized by the counts */
	const struct {
		const char *what;
		uint64_t start, blocks, want;
	} regions[] = {
		{ "inode bitmap", sb->s_ibitmap_start, sb->s_ibitmap_blocks,
		  div_up(sb->s_inode_count, BITS_PER_BLOCK) },
		{ "block bitmap", sb->s_bbitmap_start, sb->s_bbitmap_blocks,
		  div_up(sb->s_blocks_count, BITS_PER_BLOCK) },
		{ "inode table", sb->s_itable_start, sb->s_itable_blocks,
		  div_up(sb->s_inode_count, INODES_PER_BLOCK) },
	};
	end = sb->s_journal_start + sb->s_journal_blocks;
	for (size_t i = 0; i < UDAX_ARRAY_SIZE(regions); i++) {
		if (regions[i].start != end || regions[i].blocks != regions[i].want)
			BAD(-EUCLEAN, "%s region %" PRIu64 "+%" PRIu64 " invalid",
			    regions[i].what, regions[i].start, regions[i].blocks);
		end = regions[i].start + regions[i].blocks;
	}
	if (sb->s_data_start < end || sb->s_data_start % UFS_HUGE_BLOCKS ||
	    sb->s_data_start > sb->s_blocks_count - 1 - UFS_MIN_DATA_BLOCKS)
		BAD(-EUCLEAN, "data start %" PRIu64 " invalid", sb->s_data_start);
	if (sb->s_root_ino != UFS_ROOT_INO)
		BAD(-EUCLEAN, "root inode %" PRIu64 " is not %u", sb->s_root_ino, UFS_ROOT_INO);
	if (sb->s_orphan_head >= sb->s_inode_count)
		BAD(-EUCLEAN, "orphan list head %" PRIu64 " out of range", sb->s_orphan_head);
	if (off && off != (sb->s_blocks_count - 1) * BS)
		BAD(-EUCLEAN, "backup found at offset %" PRIu64 " but the file system ends at %" PRIu64,
		    off, sb->s_blocks_count * BS);
	if (sb->s_blocks_count * BS > dev_size)
		BAD(-EFBIG, "the file system needs %" PRIu64 " bytes but the device has only %" PRIu64
		    " (truncated image?)", sb->s_blocks_count * BS, dev_size);
#undef BAD
	return 0;
}

int ufs_super_load(struct dx_media *m, struct ufs_super *out, bool *used_backup)
{
	const char *path = dx_media_path(m);
	uint64_t size = dx_media_size(m);
	uint64_t boff = (size / BS - 1) * BS;
	char why_p[200], why_b[200];
	struct ufs_super p, b;
	int rp, rb;

	*used_backup = false;
	memcpy(&p, dx_media_base(m), sizeof(p));
	rp = ufs_super_check(&p, 0, size, why_p, sizeof(why_p));
	if (rp == 0) {
		*out = p;
		return 0;
	}
	if (rp == -EPROTONOSUPPORT || rp == -EFBIG) {
		/* a sound superblock we cannot use: the backup says the same */
		dx_seterr("%s: superblock at offset 0: %s", path, why_p);
		return rp;
	}
	memcpy(&b, dx_media_ptr(m, boff), sizeof(b));
	rb = ufs_super_check(&b, boff, size, why_b, sizeof(why_b));
	if (rb == 0) {
		*out = b;
		*used_backup = true;
		dx_seterr("%s: primary superblock at offset 0: %s; using the backup at offset %" PRIu64,
			    path, why_p, boff);
		return 0;
	}
	if (rp == -EINVAL && rb == -EINVAL) {
		dx_seterr("%s: not a udaxfs file system (no superblock magic at offset 0 or %" PRIu64 ")",
			    path, boff);
		return -EINVAL;
	}
	if (rb == -EPROTONOSUPPORT || rb == -EFBIG) {
		dx_seterr("%s: primary superblock at offset 0: %s; backup at offset %" PRIu64 ": %s",
			    path, why_p, boff, why_b);
		return rb;
	}
	dx_seterr("%s: corrupted: primary superblock at offset 0: %s; backup superblock at offset %"
		    PRIu64 ": %s", path, why_p, boff, why_b);
	return -EUCLEAN;
}

void ufs_super_write(struct dx_media *m, struct ufs_super *sb)
{
	sb->s_checksum = ufs_super_csum(sb);
	dx_media_memcpy_persist(m, dx_media_base(m), sb, sizeof(*sb));
	dx_media_memcpy_persist(m, dx_media_ptr(m, (sb->s_blocks_count - 1) * BS), sb,
				  sizeof(*sb));
}

/* ---- signature probe ---- */

static const void *at(struct dx_media *m, uint64_t off, size_t len)
{
	if (off + len > dx_media_size(m))
		return NULL;
	return dx_media_ptr(m, off);
}

static bool match(struct dx_media *m, uint64_t off, const void *sig, size_t len)
{
	const void *p = at(m, off, len);

	return p && !memcmp(p, sig, len);
}

const char *ufs_probe_signature(struct dx_media *m)
{
	uint64_t last = (dx_media_size(m) / BS - 1) * BS;
	const uint8_t *p;
	uint16_t le16;
	uint32_t le32;

	if (match(m, 0, "UUDAXFS1", 8) || match(m, last, "UUDAXFS1", 8))
		return "udaxfs";
	if (match(m, 0, "XFSB", 4))
		return "xfs";
	if (match(m, 0x10040, "_BHRfS_M", 8))
		return "btrfs";
	if (match(m, 0, "LUKS\xba\xbe", 6) || match(m, 0x4000, "SKUL\xba\xbe", 6))
		return "LUKS";
	if (match(m, 0, "PMEMOBJ", 7) || match(m, 0, "PMEMBLK", 7) || match(m, 0, "PMEMLOG", 7) ||
	    match(m, 0, "PMEMPOOLSET", 11))
		return "PMDK pool";
	if (match(m, 4086, "SWAPSPACE2", 10) || match(m, 4086, "SWAP-SPACE", 10))
		return "swap";
	p = at(m, 0x438, 2);
	memcpy(&le16, p, 2);
	if (le16 == 0xEF53) {
		uint32_t compat, incompat;

		memcpy(&compat, (const char *)dx_media_base(m) + 0x45c, 4);
		memcpy(&incompat, (const char *)dx_media_base(m) + 0x460, 4);
		if (incompat & (0x40 | 0x80 | 0x200))	/* extents, 64bit, flex_bg */
			return "ext4";
		return (compat & 0x4) ? "ext3" : "ext2";
	}
	memcpy(&le32, (const char *)dx_media_base(m) + 0x400, 4);
	if (le32 == 0xF2F52010)
		return "f2fs";
	if (match(m, 0, "hsqs", 4))
		return "squashfs";
	if (match(m, 3, "NTFS    ", 8))
		return "ntfs";
	if (match(m, 0x8001, "CD001", 5))
		return "iso9660";
	if (match(m, 0x218, "LVM2 001", 8))
		return "LVM2 physical volume";
	memcpy(&le32, dx_media_base(m), 4);
	if (le32 == 0xa92b4efc)
		return "Linux RAID member";
	memcpy(&le32, (const char *)dx_media_base(m) + 4096, 4);
	if (le32 == 0xa92b4efc)
		return "Linux RAID member";
	if (match(m, 0x52, "FAT32   ", 8) || match(m, 0x36, "FAT16   ", 8) ||
	    match(m, 0x36, "FAT12   ", 8))
		return "vfat";
	if (match(m, 512, "EFI PART", 8))
		return "GPT partition table";
	if (match(m, 510, "\x55\xaa", 2))
		return "DOS partition table";
	return NULL;
}

/* ---- mkfs ---- */

/*
 * mkfs_layout() - compute the geometry of a fresh file system on
 * @blocks blocks into @sb (regions only).  Return: 0 or -ENOSPC.
 */
static int mkfs_layout(uint64_t blocks, const struct ufs_mkfs_opts *o, struct ufs_super *sb,
		       char *why, size_t wlen)
{
	uint64_t size = blocks * BS;
	uint64_t ratio = o->inode_ratio ? o->inode_ratio : 16 * UDAX_KIB;
	uint64_t jbytes = o->journal_bytes;
	uint64_t inodes, end;

	if (blocks < UFS_MIN_BLOCKS) {
		snprintf(why, wlen, "the device is smaller than the 4 MiB minimum");
		return -ENOSPC;
	}
	if (blocks > UFS_MAX_BLOCKS) {
		snprintf(why, wlen, "the device is larger than the 4 PiB maximum of format v1");
		return -EFBIG;
	}
	if (!jbytes) {
		/* 1/64 of the device, 4..64 MiB, but at most 1/8 of a small one */
		jbytes = dx_min(dx_max(size / 64, 4 * UDAX_MIB), 64 * UDAX_MIB);
		if (jbytes > size / 8)
			jbytes = dx_max(size / 8, 256 * UDAX_KIB);
	}
	sb->s_journal_start = 1;
	sb->s_journal_blocks = dx_max(div_up(jbytes, BS), (uint64_t)UFS_MIN_JOURNAL_BLOCKS);
	if (ratio < UFS_INODE_SIZE)
		ratio = UFS_INODE_SIZE;
	inodes = size / ratio;
	inodes = dx_max(inodes, (uint64_t)64);
	inodes = UDAX_ALIGN_UP(inodes, (uint64_t)INODES_PER_BLOCK);
	if (inodes > (1ULL << 32))
		inodes = 1ULL << 32;
	sb->s_inode_count = inodes;
	sb->s_blocks_count = blocks;
	sb->s_ibitmap_start = sb->s_journal_start + sb->s_journal_blocks;
	sb->s_ibitmap_blocks = div_up(inodes, BITS_PER_BLOCK);
	sb->s_bbitmap_start = sb->s_ibitmap_start + sb->s_ibitmap_blocks;
	sb->s_bbitmap_blocks = div_up(blocks, BITS_PER_BLOCK);
	sb->s_itable_start = sb->s_bbitmap_start + sb->s_bbitmap_blocks;
	sb->s_itable_blocks = div_up(inodes, INODES_PER_BLOCK);
	end = sb->s_itable_start + sb->s_itable_blocks;
	sb->s_data_start = UDAX_ALIGN_UP(end, (uint64_t)UFS_HUGE_BLOCKS);
	if (sb->s_data_start + UFS_MIN_DATA_BLOCKS > blocks - 1) {
		snprintf(why, wlen, "no room for data: the journal and inode table need %" PRIu64
			 " of the %" PRIu64 " blocks", sb->s_data_start, blocks);
		return -ENOSPC;
	}
	return 0;
}

/*
 * zero_range() - make [off, off + len) zero and durable.  On an emulation
 * file, holes already read as zero: only the data parts are written, so a
 * sparse 1 TiB file stays sparse and formats fast.
 */
static void zero_range(struct dx_media *m, uint64_t off, uint64_t len, bool sparse_ok)
{
	uint64_t end = off + len;
	int fd = dx_media_fd(m);

	if (!sparse_ok) {
		dx_media_memset_persist(m, dx_media_ptr(m, off), 0, len);
		return;
	}
	while (off < end) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);
		off_t h;

		if (d < 0 || (uint64_t)d >= end)
			break;		/* ENXIO: only holes from here */
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > end)
			h = (off_t)end;
		dx_media_memset_persist(m, dx_media_ptr(m, (uint64_t)d), 0,
					  (uint64_t)(h - d));
		off = (uint64_t)h;
	}
}

/* Set bits [first, first + n) in the bitmap at @bm (DRAM-side writes; caller persists). */
static void set_bits(uint8_t *bm, uint64_t first, uint64_t n)
{
	uint64_t i = first, end = first + n;

	while (i < end && (i & 7))
		bm[i / 8] |= (uint8_t)(1u << (i & 7)), i++;
	if (end - i >= 8) {
		memset(bm + i / 8, 0xff, (end - i) / 8);
		i += ((end - i) / 8) * 8;
	}
	while (i < end)
		bm[i / 8] |= (uint8_t)(1u << (i & 7)), i++;
}

uint32_t ufs_inode_csum(const struct ufs_dinode *di)
{
	struct ufs_dinode tmp = *di;

	tmp.i_checksum = 0;
	return dx_crc32c(0, &tmp, sizeof(tmp));
}

uint32_t ufs_journal_head_csum(const struct ufs_journal_head *jh)
{
	uint32_t crc = dx_crc32c(0, &jh->j_magic, sizeof(jh->j_magic));

	return dx_crc32c(crc, &jh->j_pad, sizeof(jh->j_pad));
}

int ufs_mkfs(struct dx_media *m, const struct ufs_mkfs_opts *o, struct ufs_super *out)
{
	static const struct ufs_mkfs_opts defaults;
	const char *path = dx_media_path(m);
	uint64_t blocks = dx_media_size(m) / BS;
	/* file holes read as zero, except in a crash-mode working copy */
	bool sparse_ok = dx_media_kind(m) == UDAX_MEDIA_EMUL && !dx_media_crash_mode(m);
	struct ufs_journal_head jh;
	struct ufs_dinode root;
	struct ufs_super sb;
	struct timespec now;
	const char *sig;
	uint8_t *bm;
	char why[160];
	uint64_t nbytes, used;
	int ret;

	if (!o)
		o = &defaults;
	if (dx_media_readonly(m)) {
		dx_seterr("%s: device opened read-only", path);
		return -EROFS;
	}
	if (o->label && strlen(o->label) >= sizeof(sb.s_label)) {
		dx_seterr("label \"%s\" is longer than %zu bytes", o->label, sizeof(sb.s_label) - 1);
		return -EINVAL;
	}
	memset(&sb, 0, sizeof(sb));
	ret = mkfs_layout(blocks, o, &sb, why, sizeof(why));
	if (ret) {
		dx_seterr("%s: %s", path, why);
		return ret;
	}
	sig = ufs_probe_signature(m);
	if (sig && !o->force) {
		dx_seterr("%s: contains a %s signature; use -f to overwrite it", path, sig);
		return -EEXIST;
	}
	dx_now_ts(&now);
	sb.s_magic = UFS_MAGIC;
	sb.s_version = UFS_VERSION;
	sb.s_block_size = BS;
	sb.s_state = UFS_STATE_CLEAN;
	if (o->uuid) {
		memcpy(sb.s_uuid, o->uuid, 16);
	} else if (getrandom(sb.s_uuid, 16, 0) != 16) {
		dx_seterr("getrandom: %s", strerror(errno));
		return -EIO;
	} else {
		sb.s_uuid[6] = (uint8_t)((sb.s_uuid[6] & 0x0f) | 0x40);	/* RFC 4122 v4 */
		sb.s_uuid[8] = (uint8_t)((sb.s_uuid[8] & 0x3f) | 0x80);
	}
	if (o->label)
		memcpy(sb.s_label, o->label, strlen(o->label));
	sb.s_root_ino = UFS_ROOT_INO;
	sb.s_mkfs_time = sb.s_write_time = (uint64_t)now.tv_sec;
	sb.s_free_blocks_hint = blocks - sb.s_data_start - 1;
	sb.s_free_inodes_hint = sb.s_inode_count - 2;

	/* 1. kill the old identity first: an interrupted mkfs is never mistaken
	 *    for the old file system.  Zero block 0 (ext*, xfs, LUKS, swap...),
	 *    the btrfs superblock and the last block. */
	zero_range(m, 0, BS, false);
	if ((sb.s_journal_blocks + 1) * BS > 0x11000)
		zero_range(m, 0x10000, BS, false);
	zero_range(m, (blocks - 1) * BS, BS, false);

	/* 2. journal head: an empty log */
	memset(&jh, 0, sizeof(jh));
	jh.j_magic = UFS_JOURNAL_MAGIC;
	jh.j_checksum = ufs_journal_head_csum(&jh);
	zero_range(m, sb.s_journal_start * BS, BS, sparse_ok);
	dx_media_memcpy_persist(m, dx_media_ptr(m, sb.s_journal_start * BS), &jh, sizeof(jh));

	/* 3. bitmaps: zero, then the used bits */
	zero_range(m, sb.s_ibitmap_start * BS, (sb.s_ibitmap_blocks + sb.s_bbitmap_blocks) * BS,
		   sparse_ok);
	bm = dx_media_ptr(m, sb.s_ibitmap_start * BS);
	set_bits(bm, 0, 2);				/* slot 0 unused, root */
	set_bits(bm, sb.s_inode_count, sb.s_ibitmap_blocks * BITS_PER_BLOCK - sb.s_inode_count);
	dx_media_persist(m, bm, 1);
	nbytes = sb.s_ibitmap_blocks * BS;
	if (sb.s_inode_count / 8 < nbytes)
		dx_media_persist(m, bm + sb.s_inode_count / 8, nbytes - sb.s_inode_count / 8);
	bm = dx_media_ptr(m, sb.s_bbitmap_start * BS);
	used = sb.s_data_start;
	set_bits(bm, 0, used);				/* all metadata, alignment gap */
	set_bits(bm, blocks - 1, sb.s_bbitmap_blocks * BITS_PER_BLOCK - (blocks - 1));
	dx_media_persist(m, bm, div_up(used, 8));
	nbytes = sb.s_bbitmap_blocks * BS;
	dx_media_persist(m, bm + (blocks - 1) / 8, nbytes - (blocks - 1) / 8);

	/* 4. root directory: an empty directory with no blocks (see format.h) */
	memset(&root, 0, sizeof(root));
	root.i_mode = 040755;
	root.i_uid = o->root_uid;
	root.i_gid = o->root_gid;
	root.i_nlink = 2;
	root.i_atime_sec = root.i_mtime_sec = root.i_ctime_sec = root.i_crtime_sec =
		(uint64_t)now.tv_sec;
	root.i_atime_nsec = root.i_mtime_nsec = root.i_ctime_nsec = root.i_crtime_nsec =
		(uint32_t)now.tv_nsec;
	root.i_generation = 1;
	root.i_u.tree.hdr.h_magic = UFS_EXT_MAGIC;
	root.i_u.tree.hdr.h_max = UFS_INLINE_EXTENTS;
	root.i_checksum = ufs_inode_csum(&root);
	dx_media_memset_persist(m, dx_media_ptr(m, sb.s_itable_start * BS), 0, UFS_INODE_SIZE);
	dx_media_memcpy_persist(m, dx_media_ptr(m, ufs_inode_off(&sb, UFS_ROOT_INO)), &root,
				  sizeof(root));

	/* 5. superblocks last: backup, then primary */
	sb.s_checksum = ufs_super_csum(&sb);
	dx_media_memcpy_persist(m, dx_media_ptr(m, (blocks - 1) * BS), &sb, sizeof(sb));
	dx_media_memcpy_persist(m, dx_media_base(m), &sb, sizeof(sb));
	if (out)
		*out = sb;
	return 0;
}
