/* SPDX-License-Identifier: MIT */
/*
 * fsck_int.h - what the files of the checker share: its state, the device
 * accessors and the passes.  The checker is split along its passes:
 *
 *   fsck_check.c    the driver: device, state, the passes in order;
 *   fsck_frame.c    what the passes stand on: reports, device access and
 *                   overlay, inode slots, bitmaps, mode rules;
 *   fsck_super.c    pass 0: superblocks (primary and backup) and the
 *                   journal; an unfinished transaction is rolled back (for
 *                   real with -y, in a private overlay of the affected
 *                   blocks with -n) so the rest checks what mount sees;
 *   fsck_inode.c    pass 1: every inode the inode bitmap marks allocated:
 *                   checksum, mode, extent tree, xattr block, i_blocks;
 *                   every block it references is recorded;
 *   fsck_dup.c      pass 1B: blocks claimed twice: the first claim
 *                   (metadata before file data) keeps the block, every
 *                   other claimant gets its own copy;
 *   fsck_dir.c      pass 2: directories: record chains, names, inode
 *                   numbers, d_type, duplicates; references are counted;
 *   fsck_connect.c  pass 3: connectivity (one parent, reachable from the
 *                   root), the orphan list, lost+found;
 *   fsck_count.c    passes 4 and 5: link counts; the block and inode
 *                   bitmaps against what passes 1-3 found.
 *
 * Safety: every device offset comes from a bounds-checked block accessor
 * (fsck_blk()), and every structure is copied out of the mapping before it
 * is parsed.  Nothing is written unless the caller asked for repairs and
 * the user (or -y) agreed, and never before the superblock was trusted.
 * On-media rules the core also applies (superblock, journal, extent node
 * headers and leaves) are the core's own decoders (super.h, journal.h,
 * extent.h), so that fsck never calls clean what mount refuses.
 */
#ifndef UDAX_FSCK_INT_H
#define UDAX_FSCK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/format.h"
#include "core/media.h"
#include "fsck_check.h"

#define BS		UFS_BLOCK_SIZE
#define INODES_PER_BLOCK (UFS_BLOCK_SIZE / UFS_INODE_SIZE)
#define BITS_PER_BLOCK	(UFS_BLOCK_SIZE * 8ull)
#define MAX_TREE_DEPTH	8
#define ROOT_INO	1u

/* per-inode state, fsck->istate[] */
#define IS_ALLOC	0x01	/* inode bitmap bit set */
#define IS_VALID	0x02	/* passed pass 1 (usable by later passes) */
#define IS_DIR		0x04
#define IS_ORPHAN	0x08	/* on the orphan list */
#define IS_REACHED	0x10	/* directory reachable from root */
#define IS_FREED	0x20	/* reclaimed by this run */
#define IS_BADTREE	0x40	/* extent tree unusable */
#define BPARENT_UNKNOWN	UINT32_MAX		/* block 0 unreadable */
#define BPARENT_BAD	(UINT32_MAX - 1)	/* b_parent beyond any inode */
#define IS_ONLIST	0x80	/* reached from the orphan list head (pass 1 pre-walk) */
#define IS_MARKED	0x100	/* its tree's blocks are recorded in fsck->used */
#define IS_XMARKED	0x200	/* its xattr block is recorded in fsck->used */

struct ovl_blk {
	uint64_t blk;
	uint8_t *buf;
};

struct fsck {
	struct dx_media *m;
	const uint8_t *base;
	uint64_t dev_size;
	uint64_t dev_blocks;
	bool can_write;
	struct fsck_opts o;
	FILE *out;
	struct fsck_stats st;
	int status;
	bool dir_damaged;		/* a directory block could not be read */
	bool owners_unknown;		/* an unrepaired inode's blocks are not marked */
	uint64_t lost_found;		/* /lost+found once found or made, else 0 */
	uint8_t *dir_checked;		/* pass 2: directories done */
	bool adopted_dirs;		/* pass 2 took a directory back into the bitmap */
	bool adopted;			/* pass 2 took an inode back into the bitmap */
	bool dups_reported;		/* pass 1B reported the shared blocks */
	const char *prog_pass;		/* -C: last line printed */
	unsigned int prog_pct;

	struct ufs_super sb;		/* the trusted copy */
	uint64_t nblocks;		/* s_blocks_count (<= dev_blocks) */
	uint64_t ninodes;

	/* private copies of blocks (journal rollback under -n) */
	uint8_t *ovl_map;		/* bit per device block */
	struct ovl_blk *ovl;
	size_t novl, capovl;

	uint8_t *used;			/* bit per block: referenced */
	uint8_t *dup;			/* bit per block: referenced twice */
	uint16_t *istate;		/* per inode slot */
	uint32_t *refs;			/* directory entries naming the inode */
	uint32_t *subdirs;		/* per directory: child directories */
	/* inode numbers fit 32 bits (udax_fsck_media refuses more slots) */
	uint32_t *parent;		/* per directory: the directory naming it */
	uint32_t *bparent;		/* per directory: b_parent of its block 0 (clamped) */
};

/* ---------------------------------------------------------------- bits */

static inline bool bit_test(const uint8_t *map, uint64_t i)
{
	return map[i >> 3] & (1u << (i & 7));
}
static inline void bit_set(uint8_t *map, uint64_t i)
{
	map[i >> 3] |= (uint8_t)(1u << (i & 7));
}
static inline void bit_clear(uint8_t *map, uint64_t i)
{
	map[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

static inline uint64_t fsck_div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* ---------------------------------------------------------------- extent trees */

/* Called for each leaf extent, in logical order.  Return non-zero to stop. */
typedef int (*ext_fn)(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg);

struct tree_walk {
	uint64_t ino;
	bool mark;		/* pass 1: record blocks and validate */
	bool bad;		/* something wrong: the tree is unusable */
	uint64_t nblocks;	/* data + node blocks (what i_blocks counts) */
	uint64_t dblocks;	/* data blocks only (what a directory's size counts) */
	uint64_t last_end;	/* end (lblk) of the previous extent */
	uint64_t max_end;	/* highest lblk + len */
	ext_fn fn;
	/* called for each index entry (its child is a node block), before the child */
	int (*node_fn)(struct fsck *f, uint64_t ino, const struct ufs_extent_idx *x, void *arg);
	void *arg;
	uint64_t holder;	/* for fn/node_fn: block holding the entry, 0 = the inode */
	unsigned int idx;	/* for fn/node_fn: the entry's index there */
	char why[160];
};

/* ---- fsck_frame.c: reports, device access and overlay, inode slots, bitmaps ---- */

bool fsck_bbit(struct fsck *f, uint64_t blk);
const uint8_t *fsck_blk(struct fsck *f, uint64_t b);
int fsck_read(struct fsck *f, uint64_t off, void *dst, size_t len);
int fsck_write(struct fsck *f, uint64_t off, const void *src, size_t len);
bool fsck_has_tree(uint32_t mode, uint32_t flags);
bool fsck_ibit(struct fsck *f, uint64_t ino);
uint64_t fsck_ino_off(const struct fsck *f, uint64_t ino);
unsigned int fsck_mode_dtype(uint32_t mode);
bool fsck_mode_ok(uint32_t mode);
int fsck_ovl_write(struct fsck *f, uint64_t off, const uint8_t *src, size_t len);
bool fsck_problem(struct fsck *f, bool fixable, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fsck_progress(struct fsck *f, const char *pass, uint64_t done, uint64_t total);
void fsck_read_inode(struct fsck *f, uint64_t ino, struct ufs_dinode *di);
void fsck_say(struct fsck *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void fsck_verbose(struct fsck *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void fsck_write_bit(struct fsck *f, uint64_t map_start, uint64_t i, bool set);
void fsck_write_inode(struct fsck *f, uint64_t ino, struct ufs_dinode *di);

/* ---- fsck_super.c: pass 0: superblocks and the journal ---- */

int fsck_check_journal(struct fsck *f);
bool fsck_fix_one_bit(void *obj, size_t from, size_t to, bool (*ok)(const void *obj));
int fsck_load_super(struct fsck *f);
void fsck_super_write_both(struct fsck *f, struct ufs_super *sb);

/* ---- fsck_inode.c: pass 1: inodes, extent trees, xattr blocks ---- */

void fsck_check_inode(struct fsck *f, uint64_t ino);
void fsck_clear_inode(struct fsck *f, uint64_t ino);
bool fsck_data_range_ok(const struct fsck *f, uint64_t pblk, uint64_t len);
uint64_t fsck_mark_used(struct fsck *f, uint64_t pblk, uint64_t len);
void fsck_pass1(struct fsck *f);
bool fsck_slot_in_use(struct fsck *f, uint64_t ino);
int fsck_walk_tree(struct fsck *f, uint64_t ino, const struct ufs_dinode *di, struct tree_walk *w);

/* ---- fsck_dup.c: pass 1B: shared blocks ---- */

void fsck_pass1b(struct fsck *f);

/* ---- fsck_dir.c: pass 2: directories ---- */

void fsck_pass2(struct fsck *f);

/* ---- fsck_connect.c: pass 3: connectivity, orphans, lost+found ---- */

void fsck_pass3(struct fsck *f);
void fsck_reclaim_inode(struct fsck *f, uint64_t ino);
void fsck_unmark_nodes(struct fsck *f, const struct ufs_extent_hdr *hdr, const uint8_t *ent,
		       int budget);

/* ---- fsck_count.c: passes 4 and 5: link counts and bitmaps ---- */

void fsck_pass4(struct fsck *f);
void fsck_pass5(struct fsck *f);

#endif /* UDAX_FSCK_INT_H */
