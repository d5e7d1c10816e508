/* SPDX-License-Identifier: MIT */
/*
 * fsck_count.c - passes 4 and 5: link counts, and the block and inode
 * bitmaps against what the passes before found.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/format.h"
#include "core/util.h"
#include "fsck_int.h"

/* ---------------------------------------------------------------- link counts */

static int block0_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	if (e->e_lblk == 0) {
		*(uint64_t *)arg = e->e_pblk;
		return 1;
	}
	return 2;
}

/* The device block holding logical block 0 of directory @ino.  Return: 0, -ENOENT. */
static int dir_block0(struct fsck *f, uint64_t ino, const struct ufs_dinode *di, uint64_t *pblk)
{
	struct tree_walk w;

	memset(&w, 0, sizeof(w));
	w.fn = block0_fn;
	w.arg = pblk;
	return fsck_walk_tree(f, ino, di, &w) == 1 ? 0 : -ENOENT;
}

void fsck_pass4(struct fsck *f)
{
	uint64_t ino;
	struct ufs_dinode di;

	fsck_verbose(f, "udaxfs: pass 4: link counts");
	for (ino = 1; ino < f->ninodes; ino++) {
		uint16_t s = f->istate[ino];
		uint64_t want;

		fsck_progress(f, "pass 4", ino, f->ninodes);
		if (!(s & IS_VALID))
			continue;
		fsck_read_inode(f, ino, &di);
		if (s & IS_DIR) {
			if (ino != ROOT_INO && !(s & IS_REACHED) && !(s & IS_ORPHAN)) {
				fsck_problem(f, false, "directory inode %" PRIu64 " is not reachable from "
					     "the root", ino);
				continue;
			}
			if ((s & IS_REACHED) && f->bparent[ino] != BPARENT_UNKNOWN &&
			    f->bparent[ino] != f->parent[ino]) {
				uint64_t pb = 0;

				if (fsck_problem(f, true, "directory %" PRIu64 ": parent recorded as %"
						 PRIu32 ", named in %" PRIu32, ino, f->bparent[ino],
						 f->parent[ino]) && dir_block0(f, ino, &di, &pb) == 0) {
					uint64_t par = f->parent[ino];

					fsck_write(f, pb * BS + offsetof(struct ufs_dirblk_hdr, b_parent),
						   &par, sizeof(par));
				}
			}
			if (s & IS_ORPHAN && di.i_nlink == 0)
				continue;
			want = 2 + f->subdirs[ino];
		} else {
			if (f->refs[ino] == 0) {
				if (s & IS_ORPHAN)
					continue;
				/*
				 * Unlinked (nlink 0) and named nowhere: a file that was
				 * deleted and not yet reclaimed (the orphan list that
				 * held it was lost, e.g. with the primary superblock).
				 * Reclaim it, as mount would have.
				 */
				if (fsck_problem(f, di.i_nlink == 0, "inode %" PRIu64 " (nlink %u) is in no "
						 "directory and not on the orphan list%s", ino, di.i_nlink,
						 di.i_nlink == 0 ? "; reclaim it (it was unlinked)" : "")) {
					if (fsck_has_tree(di.i_mode, di.i_flags))
						fsck_unmark_nodes(f, &di.i_u.tree.hdr,
								  (const uint8_t *)di.i_u.tree.ext,
								  MAX_TREE_DEPTH);
					fsck_reclaim_inode(f, ino);
				}
				continue;
			}
			want = f->refs[ino];
		}
		if (di.i_nlink != want) {
			if (fsck_problem(f, true, "inode %" PRIu64 ": link count %u, should be %" PRIu64,
					 ino, di.i_nlink, want)) {
				di.i_nlink = (uint32_t)want;
				fsck_write_inode(f, ino, &di);
			}
		}
	}
	fsck_progress(f, "pass 4", f->ninodes, f->ninodes);
}

/* ---------------------------------------------------------------- bitmaps */

/*
 * One block bitmap error of a kind already asked about (a damaged bitmap
 * may be wrong for thousands of blocks: one question per kind, not per
 * block): count it, and count it repaired when the first was repaired.
 */
static void problem_again(struct fsck *f, bool fix)
{
	f->st.errors++;
	if (fix)
		f->st.fixed++;
}

void fsck_pass5(struct fsck *f)
{
	uint64_t b, ino, run_start = 0, run_len = 0;
	uint64_t missing = 0, leaked = 0, used = 0;
	bool fix_missing = false, fix_leaked = false;

	fsck_verbose(f, "udaxfs: pass 5: bitmaps");
	/* blocks */
	for (b = 0; b < f->nblocks; b++) {
		bool on = fsck_bbit(f, b), want = bit_test(f->used, b);

		fsck_progress(f, "pass 5", b, f->nblocks);
		if (want)
			used++;
		if (on == want)
			continue;
		if (want) {
			if (missing++ == 0)
				fix_missing = fsck_problem(f, true, "block bitmap: block %" PRIu64
							   " is in use but marked free", b);
			else
				problem_again(f, fix_missing);
			if (fix_missing)
				fsck_write_bit(f, f->sb.s_bbitmap_start, b, true);
		} else {
			/* an inode left unrepaired may own it: never free data on a guess */
			if (leaked++ == 0)
				fix_leaked = fsck_problem(f, !f->owners_unknown, "block bitmap: block %" PRIu64
							  " is marked used but nothing references it%s", b,
							  f->owners_unknown ? " (an unrepaired inode may own "
							  "it: not freed)" : "");
			else
				problem_again(f, fix_leaked);
			if (fix_leaked)
				fsck_write_bit(f, f->sb.s_bbitmap_start, b, false);
			if (run_len && run_start + run_len == b) {
				run_len++;
			} else {
				if (run_len)
					fsck_verbose(f, "udaxfs:   leaked blocks %" PRIu64 "+%" PRIu64,
						     run_start, run_len);
				run_start = b;
				run_len = 1;
			}
		}
	}
	if (run_len)
		fsck_verbose(f, "udaxfs:   leaked blocks %" PRIu64 "+%" PRIu64, run_start, run_len);
	fsck_progress(f, "pass 5", f->nblocks, f->nblocks);
	if (missing)
		fsck_say(f, "udaxfs: block bitmap: %" PRIu64 " used block%s marked free", missing,
			 missing == 1 ? "" : "s");
	if (leaked)
		fsck_say(f, "udaxfs: block bitmap: %" PRIu64 " leaked block%s", leaked,
			 leaked == 1 ? "" : "s");
	for (b = 0; b < f->nblocks && !f->dups_reported; b++)
		if (bit_test(f->dup, b)) {
			fsck_problem(f, false, "block %" PRIu64 " is used more than once", b);
			break;
		}
	f->st.used_blocks = used;
	{
		uint64_t on = 0;

		for (b = 0; b < f->nblocks; b++)
			on += fsck_bbit(f, b);
		f->st.free_blocks = f->nblocks - on;
	}

	/* inodes: allocated in the bitmap but free (mode 0) or unusable and unreferenced */
	f->st.free_inodes = 0;
	for (ino = 1; ino < f->ninodes; ino++) {
		uint16_t s = f->istate[ino];

		if (!(s & IS_ALLOC) || (s & IS_FREED)) {
			f->st.free_inodes++;
			continue;
		}
		if (!(s & (IS_VALID | IS_BADTREE))) {
			struct ufs_dinode di;

			fsck_read_inode(f, ino, &di);
			if (di.i_mode == 0 && f->refs[ino] == 0) {
				if (fsck_problem(f, true, "inode bitmap: inode %" PRIu64 " marked used but "
						 "its slot is free", ino)) {
					fsck_write_bit(f, f->sb.s_ibitmap_start, ino, false);
					f->st.free_inodes++;
				}
			}
		}
	}
}
