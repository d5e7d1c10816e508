/* SPDX-License-Identifier: MIT */
/*
 * fsck_inode.c - pass 1: every allocated inode on its own: checksum,
 * mode, extent tree (walked with the core's node rules, extent.h), xattr
 * block, sizes and block counts; the blocks of every sound inode are
 * recorded.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/extent.h"
#include "core/format.h"
#include "core/super.h"
#include "core/util.h"
#include "fsck_int.h"

/* ---- extent trees ---- */


bool fsck_data_range_ok(const struct fsck *f, uint64_t pblk, uint64_t len)
{
	return pblk >= f->sb.s_data_start && len <= f->nblocks - 1 &&
	       pblk <= f->nblocks - 1 - len;
}

/* Record blocks [pblk, pblk + len) as used by @ino.  Return: number already used. */
uint64_t fsck_mark_used(struct fsck *f, uint64_t pblk, uint64_t len)
{
	uint64_t i, dups = 0;

	for (i = pblk; i < pblk + len; i++) {
		if (bit_test(f->used, i)) {
			bit_set(f->dup, i);
			dups++;
		} else {
			bit_set(f->used, i);
		}
	}
	return dups;
}

static void tree_bad(struct tree_walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tree_bad(struct tree_walk *w, const char *fmt, ...)
{
	va_list ap;

	if (w->bad)
		return;
	w->bad = true;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
}

/*
 * walk_node() - check one node (@hdr followed by its entries in @ent) that
 * covers logical blocks [lo, hi), at depth @depth.
 */
static int walk_node(struct fsck *f, struct tree_walk *w, const struct ufs_extent_hdr *hdr,
		     const uint8_t *ent, unsigned int cap, uint64_t lo, uint64_t hi, int level,
		     uint64_t holder)
{
	const char *why = ufs_ext_hdr_check(hdr, level < 0, level < 0 ? 0 : (unsigned int)level);
	unsigned int i;
	int r;

	/* the header rules mount applies; then h_entries <= h_max == cap */
	if (why) {
		tree_bad(w, "extent %s: %s (magic 0x%04x, %u entries, max %u, depth %u)",
			 level < 0 ? "root" : "node", why, hdr->h_magic, hdr->h_entries, hdr->h_max,
			 hdr->h_depth);
		return -1;
	}
	UDAX_BUG_ON(hdr->h_entries > cap);
	if (hdr->h_depth == 0) {
		for (i = 0; i < hdr->h_entries; i++) {
			struct ufs_extent e;

			memcpy(&e, ent + i * sizeof(e), sizeof(e));
			if (e.e_len == 0 || e.e_lblk > UINT64_MAX - e.e_len) {
				tree_bad(w, "extent %u: length %u at %" PRIu64, i, e.e_len, e.e_lblk);
				return -1;
			}
			if (e.e_lblk < w->last_end || e.e_lblk < lo || e.e_lblk + e.e_len > hi) {
				tree_bad(w, "extent %u: logical blocks %" PRIu64 "+%u unsorted, "
					 "overlapping or outside its index", i, e.e_lblk, e.e_len);
				return -1;
			}
			why = ufs_ext_leaf_check(&f->sb, &e);
			if (why) {
				tree_bad(w, "extent %u (logical %" PRIu64 ", blocks %" PRIu64 "+%u): %s",
					 i, e.e_lblk, e.e_pblk, e.e_len, why);
				return -1;
			}
			w->last_end = e.e_lblk + e.e_len;
			w->max_end = w->last_end;
			w->nblocks += e.e_len;
			w->dblocks += e.e_len;
			/* a block claimed twice is sorted out in pass 1B */
			if (w->mark)
				fsck_mark_used(f, e.e_pblk, e.e_len);
			w->holder = holder;
			w->idx = i;
			if (w->fn && (r = w->fn(f, w->ino, &e, w->arg)))
				return r;
		}
		return 0;
	}
	for (i = 0; i < hdr->h_entries; i++) {
		struct ufs_extent_idx x, nx;
		struct ufs_extent_hdr ch;
		const uint8_t *blk;
		uint8_t node[BS];
		uint64_t end = hi;

		memcpy(&x, ent + i * sizeof(x), sizeof(x));
		if (i + 1 < hdr->h_entries) {
			memcpy(&nx, ent + (i + 1) * sizeof(nx), sizeof(nx));
			if (nx.x_lblk <= x.x_lblk) {
				tree_bad(w, "index entries unsorted at %u", i);
				return -1;
			}
			end = nx.x_lblk;
		}
		if (x.x_lblk < lo || x.x_lblk >= hi) {
			tree_bad(w, "index %u: logical block %" PRIu64 " outside its parent", i,
				 x.x_lblk);
			return -1;
		}
		if (!fsck_data_range_ok(f, x.x_child, 1) || !(blk = fsck_blk(f, x.x_child))) {
			tree_bad(w, "index %u: node block %" PRIu64 " outside the data area", i,
				 x.x_child);
			return -1;
		}
		memcpy(node, blk, BS);
		memcpy(&ch, node, sizeof(ch));
		{
			uint32_t want = ch.h_checksum, got;

			((struct ufs_extent_hdr *)node)->h_checksum = 0;
			got = dx_crc32c(0, node, BS);
			if (got != want) {
				tree_bad(w, "extent node block %" PRIu64 " (offset %" PRIu64
					 "): bad checksum", x.x_child, x.x_child * BS);
				return -1;
			}
		}
		w->nblocks++;
		if (w->mark)
			fsck_mark_used(f, x.x_child, 1);
		if (w->node_fn) {
			w->holder = holder;
			w->idx = i;
			r = w->node_fn(f, w->ino, &x, w->arg);
			if (r)
				return r;
		}
		r = walk_node(f, w, &ch, node + sizeof(ch), (unsigned)UFS_NODE_ENTRIES, x.x_lblk,
			      end, hdr->h_depth - 1, x.x_child);
		if (r)
			return r;
	}
	return 0;
}

/* Walk the inode's extent tree.  Return: 0 walked, -1 bad tree (w->why), >0 fn stopped. */
int fsck_walk_tree(struct fsck *f, uint64_t ino, const struct ufs_dinode *di, struct tree_walk *w)
{
	struct ufs_extent_hdr hdr;

	w->ino = ino;
	memcpy(&hdr, &di->i_u.tree.hdr, sizeof(hdr));
	return walk_node(f, w, &hdr, (const uint8_t *)di->i_u.tree.ext, UFS_INLINE_EXTENTS, 0,
			 UINT64_MAX, -1, 0);
}

/* ---- xattr block ---- */

static bool check_xattr_block(struct fsck *f, uint64_t blk, char *why, size_t wl, bool *csum_only)
{
	const uint8_t *p = fsck_blk(f, blk);
	struct ufs_xattr_hdr h;
	uint8_t b[BS];
	uint32_t pos, n;

	if (!p) {
		snprintf(why, wl, "outside the device");
		return false;
	}
	memcpy(b, p, BS);
	memcpy(&h, b, sizeof(h));
	if (h.x_magic != UFS_XATTR_MAGIC) {
		snprintf(why, wl, "bad magic 0x%04x", h.x_magic);
		return false;
	}
	if (h.x_used > BS - sizeof(h)) {
		snprintf(why, wl, "%u bytes used", h.x_used);
		return false;
	}
	pos = sizeof(h);
	for (n = 0; n < h.x_count; n++) {
		struct ufs_xattr_ent e;
		uint32_t len;

		if (pos + sizeof(e) > sizeof(h) + h.x_used) {
			snprintf(why, wl, "entry %u past the used bytes", n);
			return false;
		}
		memcpy(&e, b + pos, sizeof(e));
		len = UDAX_ALIGN_UP((uint32_t)sizeof(e) + e.e_name_len + e.e_value_len, 4u);
		if (e.e_name_len == 0 || pos + len > sizeof(h) + h.x_used) {
			snprintf(why, wl, "entry %u: name %u bytes, value %u bytes overflows", n,
				 e.e_name_len, e.e_value_len);
			return false;
		}
		if (memchr(b + pos + sizeof(e), 0, e.e_name_len)) {
			snprintf(why, wl, "entry %u: NUL in the name", n);
			return false;
		}
		pos += len;
	}
	if (dx_crc32c(0, b + sizeof(h), h.x_used) != h.x_checksum) {
		snprintf(why, wl, "bad checksum");
		if (csum_only)
			*csum_only = true;
		return false;
	}
	return true;
}

/*
 * fsck_clear_inode() - free a garbage inode (repairs only): its slot and its
 * inode bitmap bit.  It has marked no block (pass 1 marks only sound
 * inodes), so its blocks show up as leaked and pass 5 frees those no
 * other inode uses.  Directory entries naming it are cleared in pass 2.
 */
void fsck_clear_inode(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;

	memset(&di, 0, sizeof(di));
	fsck_write_inode(f, ino, &di);
	fsck_write_bit(f, f->sb.s_ibitmap_start, ino, false);
	f->istate[ino] = IS_FREED;
}

/* Report an unusable inode; with repairs, clear it (never the root). */
static void bad_inode(struct fsck *f, uint64_t ino, const char *why)
{
	struct ufs_dinode di;

	fsck_read_inode(f, ino, &di);
	if (fsck_problem(f, ino != ROOT_INO, "inode %" PRIu64 " (offset %" PRIu64 "): %s%s", ino,
			 fsck_ino_off(f, ino), why, ino != ROOT_INO ? "; clear the inode" : "")) {
		/* what it named is named nowhere now: pass 3 reconnects it */
		fsck_clear_inode(f, ino);
	} else {
		/* a directory left as it is may still name inodes we cannot see */
		if (S_ISDIR(di.i_mode))
			f->dir_damaged = true;
		/* and blocks it owns are not marked: pass 5 must not free them */
		f->owners_unknown = true;
		f->istate[ino] |= IS_BADTREE;
	}
}

/* the largest file the file system makes: 2^32 blocks (ufs_int.h) */
#define MAX_FILE_SIZE ((uint64_t)1 << (32 + UFS_BLOCK_SHIFT))

static bool inode_csum_ok(const void *obj)
{
	const struct ufs_dinode *di = obj;

	return di->i_checksum == ufs_inode_csum(di) && fsck_mode_ok(di->i_mode);
}

/*
 * inode_fields_bad() - fields an inode with a bad checksum must pass before
 * fsck may take it as it is and recompute the checksum; a failure means the
 * damage is in the fields, not just the checksum.  Return: what is wrong,
 * or NULL.
 */
static const char *inode_fields_bad(const struct fsck *f, const struct ufs_dinode *di,
				    const struct tree_walk *w)
{
	if (di->i_size > MAX_FILE_SIZE)
		return "size beyond the largest file";
	if (di->i_nlink > f->ninodes)
		return "link count larger than the inode table";
	if (di->i_orphan_next >= f->ninodes)
		return "orphan link outside the inode table";
	if (di->i_atime_nsec >= 1000000000u || di->i_mtime_nsec >= 1000000000u ||
	    di->i_ctime_nsec >= 1000000000u || di->i_crtime_nsec >= 1000000000u)
		return "nanoseconds out of range";
	if (di->i_flags & ~(uint32_t)(UFS_INODE_FL_INLINE_SYMLINK | UFS_INODE_FL_ORPHAN))
		return "unknown flags";
	if (fsck_has_tree(di->i_mode, di->i_flags) && S_ISREG(di->i_mode) &&
	    w->max_end > fsck_div_up(di->i_size, BS) + 512 * 1024)
		return "extents far past the end of the file";
	if (fsck_has_tree(di->i_mode, di->i_flags) && di->i_blocks != w->nblocks +
	    (di->i_xattr_block ? 1 : 0))
		return "block count does not match the extents";
	return NULL;
}

/*
 * fsck_check_inode() - pass 1 for one allocated inode: everything that can be
 * judged from the inode alone.  The tree is validated first and its
 * blocks are recorded only when it is sound.
 */
void fsck_check_inode(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;
	uint64_t ioff = fsck_ino_off(f, ino);
	struct tree_walk w;
	uint64_t counted = 0;
	bool csum_ok, dirty = false;
	char why[200];

	fsck_read_inode(f, ino, &di);
	f->istate[ino] |= IS_ALLOC;
	f->st.inodes++;
	csum_ok = ufs_inode_csum(&di) == di.i_checksum;
	if (!csum_ok) {
		/* one flipped bit (the usual media error) can be put back exactly */
		struct ufs_dinode fixed = di;

		if (fsck_fix_one_bit(&fixed, 0, sizeof(fixed), inode_csum_ok)) {
			size_t i;

			for (i = 0; i < sizeof(di) && ((uint8_t *)&di)[i] == ((uint8_t *)&fixed)[i];
			     i++)
				;
			if (fsck_problem(f, true, "inode %" PRIu64 " (offset %" PRIu64 "): bad checksum; "
					 "one bit flipped at byte %zu: restore it", ino, ioff, i))
				fsck_write_inode(f, ino, &fixed);
			di = fixed;	/* judge the rest on what the inode was */
			csum_ok = true;
		}
	}
	if (di.i_mode == 0)
		return;		/* bitmap says allocated, slot says free: pass 5 */
	if (!fsck_mode_ok(di.i_mode)) {
		snprintf(why, sizeof(why), "bad mode 0%o", di.i_mode);
		bad_inode(f, ino, why);
		return;
	}
	memset(&w, 0, sizeof(w));
	if (fsck_has_tree(di.i_mode, di.i_flags)) {
		if (fsck_walk_tree(f, ino, &di, &w) < 0 || w.bad) {
			bad_inode(f, ino, w.why);
			return;
		}
		counted = w.nblocks;
	} else if (S_ISLNK(di.i_mode)) {
		if (di.i_size == 0 || di.i_size >= sizeof(di.i_u.symlink) ||
		    di.i_u.symlink[di.i_size] != '\0' || memchr(di.i_u.symlink, 0, di.i_size)) {
			snprintf(why, sizeof(why), "inline symlink of size %" PRIu64 " malformed",
				 di.i_size);
			bad_inode(f, ino, why);
			return;
		}
	}
	/*
	 * An unlinked inode being evicted loses its blocks from the end over
	 * several transactions while its size stays: on the orphan list, any
	 * size goes (mount finishes the eviction).  The size counts data
	 * blocks only: a directory past the inode's inline extents also owns
	 * extent-tree node blocks, which i_blocks counts and the size does not.
	 */
	if (S_ISDIR(di.i_mode) && !((f->istate[ino] & IS_ONLIST) && di.i_nlink == 0) &&
	    (di.i_size % BS || (di.i_size == 0 && ino != ROOT_INO) ||
	     w.max_end != di.i_size / BS || w.dblocks != di.i_size / BS)) {
		snprintf(why, sizeof(why), "directory size %" PRIu64 " does not match its %" PRIu64
			 " data blocks (holes or tail)", di.i_size, w.dblocks);
		bad_inode(f, ino, why);
		return;
	}
	if (S_ISLNK(di.i_mode) && !(di.i_flags & UFS_INODE_FL_INLINE_SYMLINK) &&
	    !((f->istate[ino] & IS_ONLIST) && di.i_nlink == 0) &&
	    (di.i_size == 0 || di.i_size > 4095u || w.max_end > 1)) {
		snprintf(why, sizeof(why), "symlink size %" PRIu64, di.i_size);
		bad_inode(f, ino, why);
		return;
	}
	if (!csum_ok) {
		/*
		 * Never recompute a checksum over damage: only an inode whose
		 * every field is plausible gets a new one.  Otherwise it stays
		 * as it is (mount refuses it) and fsck says so.
		 */
		const char *fbad = inode_fields_bad(f, &di, &w);

		if (fbad) {
			fsck_problem(f, false, "inode %" PRIu64 " (offset %" PRIu64 "): bad checksum and "
				     "damaged fields (%s): cannot repair it safely", ino, ioff, fbad);
			f->istate[ino] |= IS_BADTREE;
			/* its blocks are still its own: pass 5 must not free them */
			if (fsck_has_tree(di.i_mode, di.i_flags)) {
				memset(&w, 0, sizeof(w));
				w.mark = true;
				fsck_walk_tree(f, ino, &di, &w);
				f->istate[ino] |= IS_MARKED;
			}
			if (di.i_xattr_block && fsck_data_range_ok(f, di.i_xattr_block, 1)) {
				fsck_mark_used(f, di.i_xattr_block, 1);
				f->istate[ino] |= IS_XMARKED;
			}
			return;
		}
		if (!fsck_problem(f, true, "inode %" PRIu64 " (offset %" PRIu64 "): bad checksum; "
				  "its fields are sound: recompute it", ino, ioff)) {
			f->istate[ino] |= IS_BADTREE;	/* mount refuses it: treat as unusable */
			return;
		}
		dirty = true;
	}
	if (di.i_size > MAX_FILE_SIZE) {
		if (fsck_problem(f, true, "inode %" PRIu64 ": size %" PRIu64 " beyond the largest file; "
				 "set it to its last block's end", ino, di.i_size)) {
			di.i_size = w.max_end * BS;
			dirty = true;
		}
	}
	/* sound: record its blocks */
	if (fsck_has_tree(di.i_mode, di.i_flags)) {
		memset(&w, 0, sizeof(w));
		w.mark = true;
		fsck_walk_tree(f, ino, &di, &w);
		f->istate[ino] |= IS_MARKED;
		if (w.bad)
			fsck_problem(f, false, "inode %" PRIu64 " (offset %" PRIu64 "): %s", ino, ioff,
				     w.why);
	}
	if (di.i_xattr_block) {
		bool in = fsck_data_range_ok(f, di.i_xattr_block, 1);

		bool csum_only = false;

		if (in && !check_xattr_block(f, di.i_xattr_block, why, sizeof(why), &csum_only) &&
		    csum_only) {
			if (fsck_problem(f, true, "inode %" PRIu64 ": xattr block %" PRIu64 ": bad checksum",
					 ino, di.i_xattr_block)) {
				struct ufs_xattr_hdr xh;

				fsck_read(f, di.i_xattr_block * BS, &xh, sizeof(xh));
				xh.x_checksum = dx_crc32c(0, fsck_blk(f, di.i_xattr_block) + sizeof(xh),
							    xh.x_used);
				fsck_write(f, di.i_xattr_block * BS, &xh, sizeof(xh));
			}
		}
		if (!in || (!csum_only && !check_xattr_block(f, di.i_xattr_block, why, sizeof(why),
							     NULL))) {
			if (fsck_problem(f, true, "inode %" PRIu64 ": xattr block %" PRIu64 ": %s; drop "
					 "the extended attributes", ino, di.i_xattr_block,
					 in ? why : "outside the data area")) {
				di.i_xattr_block = 0;
				dirty = true;
			}
		} else {
			counted++;
			fsck_mark_used(f, di.i_xattr_block, 1);	/* shared: pass 1B */
			f->istate[ino] |= IS_XMARKED;
		}
	}
	if (di.i_flags & ~(uint32_t)(UFS_INODE_FL_INLINE_SYMLINK | UFS_INODE_FL_ORPHAN)) {
		if (fsck_problem(f, true, "inode %" PRIu64 ": unknown flags 0x%x", ino, di.i_flags)) {
			di.i_flags &= UFS_INODE_FL_INLINE_SYMLINK | UFS_INODE_FL_ORPHAN;
			dirty = true;
		}
	}
	if (di.i_blocks != counted) {
		if (fsck_problem(f, true, "inode %" PRIu64 ": i_blocks %" PRIu64 ", counted %" PRIu64,
				 ino, di.i_blocks, counted)) {
			di.i_blocks = counted;
			dirty = true;
		}
	}
	if (dirty)
		fsck_write_inode(f, ino, &di);
	f->istate[ino] |= IS_VALID;
	if (S_ISDIR(di.i_mode)) {
		f->istate[ino] |= IS_DIR;
		f->st.dirs++;
	} else {
		f->st.files++;
	}
}

/* Does slot @ino hold a valid inode (its bitmap bit aside)? */
bool fsck_slot_in_use(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;

	fsck_read_inode(f, ino, &di);
	return di.i_mode != 0 && inode_csum_ok(&di);
}

void fsck_pass1(struct fsck *f)
{
	uint64_t ino, steps;

	fsck_verbose(f, "udaxfs: pass 1: inodes, extent trees, xattr blocks");
	/* which inodes the orphan list reaches (judged properly in pass 3) */
	for (ino = f->sb.s_orphan_head, steps = 0; ino && ino < f->ninodes && steps < f->ninodes &&
	     !(f->istate[ino] & IS_ONLIST); steps++) {
		struct ufs_dinode di;

		f->istate[ino] |= IS_ONLIST;
		fsck_read_inode(f, ino, &di);
		ino = di.i_orphan_next;
	}
	/* metadata: superblocks, journal, bitmaps, inode table, alignment gap */
	fsck_mark_used(f, 0, f->sb.s_data_start);
	fsck_mark_used(f, f->nblocks - 1, 1);
	for (ino = 1; ino < f->ninodes; ino++) {
		fsck_progress(f, "pass 1", ino, f->ninodes);
		if (fsck_ibit(f, ino)) {
			fsck_check_inode(f, ino);
		} else if (ino == ROOT_INO && fsck_slot_in_use(f, ino)) {
			/* the root is always in use: a clear bit means a damaged
			 * bitmap; what the root names is taken back in pass 2 */
			if (fsck_problem(f, true, "inode bitmap: the root inode is marked free; mark it used"))
				fsck_write_bit(f, f->sb.s_ibitmap_start, ino, true);
			fsck_check_inode(f, ino);
		}
	}
	fsck_progress(f, "pass 1", f->ninodes, f->ninodes);
}
