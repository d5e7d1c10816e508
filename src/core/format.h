/* SPDX-License-Identifier: MIT */
/*
 * format.h - the udaxfs on-media format, version 1.  man/udaxfs.5 documents
 * the same thing for users; keep them in step.
 *
 * All integers are little-endian (x86-64 and arm64 hosts); structures are
 * packed by construction (explicit padding), sizes checked at compile time.
 * Block size is 4096 bytes in version 1 (the superblock records it so a
 * later version can relax that).
 *
 * Layout, in 4 KiB blocks from device offset 0:
 *
 *   0                         primary superblock (struct ufs_super, padded to a block)
 *   1 .. J                    journal (undo log), J = journal_blocks
 *   ibitmap_start ..          inode bitmap: one bit per inode slot
 *   bbitmap_start ..          block bitmap: one bit per device block (all of them,
 *                             metadata blocks included, set at mkfs)
 *   itable_start ..           inode table: inode_count slots of 256 bytes
 *   data_start ..             data blocks; data_start is 2 MiB aligned
 *   blocks_count - 1          backup superblock (a copy of block 0)
 *
 * Only the superblocks, journal header and bitmaps are written by mkfs;
 * the inode table is valid only where the inode bitmap says so, so a 1 TiB
 * device formats in well under a second.
 *
 * Crash model: every metadata change happens inside a journal transaction
 * (journal.h): the old bytes of each range are logged and made durable
 * before the range is changed in place; commit persists the changed ranges
 * and then empties the log with one 8-byte store.  Mount rolls back a
 * non-empty log.  File data is written in place with persisting stores, so
 * it is durable when write() returns; fsync() is a drain.
 */
#ifndef UDAX_FORMAT_H
#define UDAX_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* The structures below are the bytes on the media, read and written in
 * place: a big-endian host would see other numbers. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the udaxfs on-media format is little-endian; this host is not");

#define UFS_MAGIC		0x3153465841445555ULL	/* "UUDAXFS1" little-endian */
#define UFS_VERSION		1
#define UFS_BLOCK_SIZE		4096u
#define UFS_BLOCK_SHIFT		12
#define UFS_INODE_SIZE		256u
#define UFS_HUGE_SIZE		(2u * 1024 * 1024)
#define UFS_HUGE_BLOCKS		(UFS_HUGE_SIZE / UFS_BLOCK_SIZE)
#define UFS_MIN_BLOCKS		1024	/* 4 MiB: smallest device mkfs accepts */
/*
 * Inode numbers are inode table slot numbers.  Slot 0 is never used (its
 * bitmap bit is set at mkfs); slot 1 is the root directory.  mkfs makes the
 * root an empty directory with NO blocks (i_size 0, i_blocks 0, an empty
 * inline extent root, mode 040755, nlink 2, owner 0:0 unless mkfs was told
 * otherwise); the directory code allocates its first block on the first
 * insert.  A directory without blocks has the root as parent only if it is
 * the root; every other directory gets its block 0 when it is created.
 */
#define UFS_ROOT_INO		1

/* feature bits: a mount refuses unknown incompat bits, mounts read-only on
 * unknown ro_compat bits, ignores unknown compat bits. */
#define UFS_FEAT_COMPAT_SUPPORTED	0u
#define UFS_FEAT_INCOMPAT_SUPPORTED	0u
#define UFS_FEAT_RO_COMPAT_SUPPORTED	0u

/* s_state */
#define UFS_STATE_CLEAN		1u	/* unmounted cleanly */
#define UFS_STATE_MOUNTED	2u	/* mounted (or crashed while mounted) */

struct ufs_super {
	uint64_t s_magic;		/* UFS_MAGIC */
	uint32_t s_version;		/* UFS_VERSION */
	uint32_t s_block_size;		/* 4096 */
	uint32_t s_feat_compat;
	uint32_t s_feat_incompat;
	uint32_t s_feat_ro_compat;
	uint32_t s_state;		/* UFS_STATE_* */
	uint8_t  s_uuid[16];
	char     s_label[64];		/* NUL-padded */
	uint64_t s_blocks_count;	/* device size in blocks (what mkfs used) */
	uint64_t s_inode_count;		/* inode slots */
	uint64_t s_journal_start, s_journal_blocks;
	uint64_t s_ibitmap_start, s_ibitmap_blocks;
	uint64_t s_bbitmap_start, s_bbitmap_blocks;
	uint64_t s_itable_start, s_itable_blocks;
	uint64_t s_data_start;		/* first data block, 2 MiB aligned */
	uint64_t s_root_ino;		/* UFS_ROOT_INO */
	uint64_t s_orphan_head;		/* first inode on the orphan list, 0 = none */
	uint64_t s_free_blocks_hint;	/* written at unmount; recomputed at mount */
	uint64_t s_free_inodes_hint;
	uint64_t s_mkfs_time, s_mount_time, s_write_time;	/* seconds since the epoch */
	uint64_t s_mount_count;
	uint64_t s_reserved[32];
	uint32_t s_pad;
	uint32_t s_checksum;		/* crc32c of all bytes before this field */
};
static_assert(sizeof(struct ufs_super) <= UFS_BLOCK_SIZE, "superblock fits a block");

/* ---- journal (undo log) ---- */
#define UFS_JOURNAL_MAGIC	0x4c4e524a53465855ULL	/* "UXFSJRNL" */
/*
 * The journal region starts with this header (first 64 bytes of its first
 * block); records follow from byte UFS_JOURNAL_REC_START of the region to
 * its end.  j_used and j_seq are each changed with one 8-byte store, so
 * they are not covered by the checksum.
 *
 *  - ufs_tx_add(): when the log is empty, j_seq is first bumped (same
 *    fence as the record); the record (header + old bytes) is written at
 *    UFS_JOURNAL_REC_START + j_used and made durable; then j_used grows to
 *    cover it (8-byte store, made durable).  Only then does the caller
 *    change the range in place.
 *  - commit: flush every logged range, drain, then j_used = 0 (durable).
 *  - recovery (j_used != 0): every record in [0, j_used) must have a good
 *    checksum and r_seq == j_seq; they are applied in reverse order, then
 *    j_used = 0.  A bad record: -EUCLEAN, nothing written.
 */
struct ufs_journal_head {
	uint64_t j_magic;		/* UFS_JOURNAL_MAGIC */
	uint64_t j_seq;			/* sequence of the current/last transaction */
	uint64_t j_used;		/* bytes of valid records; 0 = log empty */
	uint32_t j_pad;			/* 0 */
	uint32_t j_checksum;		/* crc32c of j_magic then j_pad (12 bytes) */
};
#define UFS_JOURNAL_REC_START	64
/* A record: header then the old bytes, padded to 8 bytes.  The size is
 * computed in 64 bits: a 32-bit r_len near 2^32 must not wrap to 24. */
struct ufs_journal_rec {
	uint64_t r_dev_off;		/* where the old bytes lived (device offset) */
	uint32_t r_len;			/* how many, >= 1 */
	uint32_t r_crc;			/* crc32c of this header (r_crc = 0), then the bytes */
	uint64_t r_seq;			/* j_seq of the transaction that wrote it */
};
static_assert(sizeof(struct ufs_journal_rec) == 24, "journal record header is 24 bytes");
#define UFS_JOURNAL_REC_SIZE(len) (sizeof(struct ufs_journal_rec) + (((uint64_t)(len) + 7u) & ~7ull))

/* ---- inodes ---- */
#define UFS_INODE_FL_INLINE_SYMLINK 0x1	/* symlink target stored in i_u.symlink */
#define UFS_INODE_FL_ORPHAN	    0x2	/* on the orphan list */

/* One extent: [e_lblk, e_lblk + e_len) of the file -> [e_pblk, ...) on the device. */
struct ufs_extent {
	uint64_t e_lblk;
	uint64_t e_pblk;
	uint32_t e_len;			/* blocks, >= 1 */
	uint32_t e_flags;		/* reserved, 0 */
};
static_assert(sizeof(struct ufs_extent) == 24, "extent is 24 bytes");

/*
 * Extent tree node header.  The root lives in the inode (UFS_INLINE_EXTENTS
 * slots); other nodes are whole blocks.  Depth 0 nodes hold struct
 * ufs_extent; deeper nodes hold struct ufs_extent_idx.
 */
#define UFS_EXT_MAGIC 0xE7A1
struct ufs_extent_hdr {
	uint16_t h_magic;
	uint16_t h_entries;
	uint16_t h_max;
	uint16_t h_depth;
	uint32_t h_checksum;		/* block nodes: crc32c of the block with this 0 */
	uint32_t h_pad;
};
struct ufs_extent_idx {
	uint64_t x_lblk;		/* first logical block covered by the child */
	uint64_t x_child;		/* block number of the child node */
	uint64_t x_pad;
};
static_assert(sizeof(struct ufs_extent_idx) == 24, "index entry is 24 bytes");
#define UFS_INLINE_EXTENTS 4
#define UFS_NODE_ENTRIES ((UFS_BLOCK_SIZE - sizeof(struct ufs_extent_hdr)) / 24)

struct ufs_dinode {
	uint32_t i_mode;		/* 0 = free slot (with the bitmap bit clear) */
	uint32_t i_uid;
	uint32_t i_gid;
	uint32_t i_nlink;
	uint64_t i_size;
	uint64_t i_blocks;		/* data + tree + xattr blocks in use, in 4 KiB units */
	uint64_t i_atime_sec, i_mtime_sec, i_ctime_sec, i_crtime_sec;
	uint32_t i_atime_nsec, i_mtime_nsec, i_ctime_nsec, i_crtime_nsec;
	uint64_t i_rdev;
	uint64_t i_generation;
	uint64_t i_xattr_block;		/* one block of xattrs, 0 = none */
	uint64_t i_orphan_next;		/* orphan list link */
	uint32_t i_flags;		/* UFS_INODE_FL_* */
	uint32_t i_checksum;		/* crc32c of the inode with this field 0 */
	union {
		struct {
			struct ufs_extent_hdr hdr;
			struct ufs_extent ext[UFS_INLINE_EXTENTS];
		} tree;
		char symlink[UFS_INLINE_EXTENTS * 24 + 16];	/* inline target, NUL-terminated */
	} i_u;
	uint8_t i_pad[256 - 120 - (UFS_INLINE_EXTENTS * 24 + 16)];
};
static_assert(sizeof(struct ufs_dinode) == UFS_INODE_SIZE, "inode is 256 bytes");

/* ---- directories ---- */
/*
 * A directory is a file of 4 KiB blocks, each a chain of records that
 * covers the whole block (rec_len sums to 4096), like ext2.  A record with
 * d_ino == 0 is free space.  "." and ".." are not stored: the parent is
 * kept in the directory inode's first record block header.
 */
#define UFS_DIRBLK_MAGIC 0xD1B1
struct ufs_dirblk_hdr {
	uint16_t b_magic;
	uint16_t b_pad;
	uint32_t b_checksum;		/* reserved (0): records change in place */
	uint64_t b_parent;		/* block 0 only: the parent directory's inode */
};
struct ufs_dirent {
	uint64_t d_ino;			/* 0 = unused */
	uint16_t d_rec_len;		/* bytes to the next record, multiple of 8 */
	uint8_t  d_name_len;
	uint8_t  d_type;		/* DT_* */
	uint32_t d_hash;		/* hash of the name, for fsck and the DRAM index */
	char     d_name[];		/* not NUL-terminated */
};
#define UFS_DIRENT_SIZE(namelen) ((sizeof(struct ufs_dirent) + (namelen) + 7u) & ~7u)

/* ---- extended attributes: one block per inode ---- */
#define UFS_XATTR_MAGIC 0xA77E
struct ufs_xattr_hdr {
	uint16_t x_magic;
	uint16_t x_count;
	uint32_t x_used;		/* bytes used after the header */
	uint32_t x_checksum;
	uint32_t x_pad;
};
struct ufs_xattr_ent {
	uint8_t  e_name_len;		/* full name incl. namespace prefix */
	uint8_t  e_pad;
	uint16_t e_value_len;
	char     e_data[];		/* name then value, entry padded to 4 bytes */
};

/*
 * What the comments above promise, checked by the compiler: a change that
 * moves a field of the on-media format fails the build instead of making
 * images unreadable.  (A new format version changes these on purpose.)
 */
static_assert(sizeof(struct ufs_super) == 528, "superblock is 528 bytes");
static_assert(offsetof(struct ufs_super, s_uuid) == 32, "s_uuid at byte 32");
static_assert(offsetof(struct ufs_super, s_label) == 48, "s_label at byte 48");
static_assert(offsetof(struct ufs_super, s_blocks_count) == 112, "s_blocks_count at byte 112");
static_assert(offsetof(struct ufs_super, s_checksum) == sizeof(struct ufs_super) - 4,
	      "s_checksum is the superblock's last field (it covers every byte before it)");
static_assert(sizeof(struct ufs_journal_head) == 32, "journal header is 32 bytes");
static_assert(sizeof(struct ufs_journal_head) <= UFS_JOURNAL_REC_START,
	      "journal records start after the header");
static_assert(offsetof(struct ufs_journal_head, j_checksum) == 28, "j_checksum at byte 28");
static_assert(offsetof(struct ufs_journal_rec, r_crc) == 12, "r_crc at byte 12");
static_assert(sizeof(struct ufs_extent_hdr) == 16, "extent node header is 16 bytes");
static_assert(sizeof(struct ufs_extent) == sizeof(struct ufs_extent_idx),
	      "leaf and index entries have one size (UFS_NODE_ENTRIES)");
static_assert(offsetof(struct ufs_dinode, i_checksum) == 116, "i_checksum at byte 116");
static_assert(offsetof(struct ufs_dinode, i_u) == 120, "extent root / inline symlink at byte 120");
static_assert(sizeof(((struct ufs_dinode *)0)->i_u) == UFS_INLINE_EXTENTS * 24 + 16,
	      "extent root is a header and UFS_INLINE_EXTENTS extents");
static_assert(sizeof(struct ufs_dirblk_hdr) == 16, "directory block header is 16 bytes");
static_assert(sizeof(struct ufs_dirent) == 16 && offsetof(struct ufs_dirent, d_name) == 16,
	      "directory record header is 16 bytes, the name follows");
static_assert(sizeof(struct ufs_xattr_hdr) == 16, "xattr block header is 16 bytes");
static_assert(sizeof(struct ufs_xattr_ent) == 4 && offsetof(struct ufs_xattr_ent, e_data) == 4,
	      "xattr entry header is 4 bytes, name and value follow");

/* Device offset of inode slot @ino (the superblock must be validated). */
static inline uint64_t ufs_inode_off(const struct ufs_super *sb, uint64_t ino)
{
	return sb->s_itable_start * UFS_BLOCK_SIZE + ino * UFS_INODE_SIZE;
}

#endif /* UDAX_FORMAT_H */
