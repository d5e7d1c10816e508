/* SPDX-License-Identifier: MIT */
/*
 * fsck_connect.c - pass 3: connectivity (every directory reachable from
 * the root, with one parent), the orphan list, and the reconnection of
 * unnamed inodes into /lost+found.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/format.h"
#include "core/super.h"
#include "core/util.h"
#include "fsck_int.h"

/* ---------------------------------------------------------------- connectivity, orphans */

/* Free an inode and its blocks (orphan reclaim; repairs only). */
static int unmark_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	uint64_t i;

	for (i = e->e_pblk; i < e->e_pblk + e->e_len; i++)
		if (!bit_test(f->dup, i))
			bit_clear(f->used, i);
	return 0;
}

void fsck_reclaim_inode(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;
	struct tree_walk w;

	fsck_read_inode(f, ino, &di);
	if (fsck_has_tree(di.i_mode, di.i_flags)) {
		/* forget its blocks; pass 5 then frees them in the bitmap */
		memset(&w, 0, sizeof(w));
		w.fn = unmark_fn;
		fsck_walk_tree(f, ino, &di, &w);
		/* tree node blocks: walk once more marking nothing, unmark nodes */
	}
	if (di.i_xattr_block && !bit_test(f->dup, di.i_xattr_block))
		bit_clear(f->used, di.i_xattr_block);
	fsck_clear_inode(f, ino);
}

/*
 * The node blocks of a reclaimed inode's tree must be forgotten too:
 * fsck_walk_tree only reports leaves, so collect the index children here.
 */
void fsck_unmark_nodes(struct fsck *f, const struct ufs_extent_hdr *hdr, const uint8_t *ent,
		       int budget)
{
	unsigned int i;

	if (hdr->h_magic != UFS_EXT_MAGIC || hdr->h_depth == 0 || budget <= 0)
		return;
	for (i = 0; i < hdr->h_entries && i < UFS_NODE_ENTRIES; i++) {
		struct ufs_extent_idx x;
		const uint8_t *blk;
		struct ufs_extent_hdr ch;

		memcpy(&x, ent + i * sizeof(x), sizeof(x));
		if (!fsck_data_range_ok(f, x.x_child, 1) || !(blk = fsck_blk(f, x.x_child)))
			continue;
		memcpy(&ch, blk, sizeof(ch));
		fsck_unmark_nodes(f, &ch, blk + sizeof(ch), budget - 1);
		if (!bit_test(f->dup, x.x_child))
			bit_clear(f->used, x.x_child);
	}
}

/* ---- reconnecting unattached inodes into the root directory ---- */

/* The name hash dir.c keeps in d_hash (format.h): crc32c of the name, never 0. */
static uint32_t name_hash(const char *name, size_t len)
{
	uint32_t h = dx_crc32c(0, name, len);

	return h ? h : 1;
}

struct blk_list {
	uint64_t pblk[256];
	unsigned int n;
};

static int collect_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	struct blk_list *l = arg;
	uint32_t i;

	for (i = 0; i < e->e_len && l->n < UDAX_ARRAY_SIZE(l->pblk); i++)
		l->pblk[l->n++] = e->e_pblk + i;
	return 0;
}

/*
 * add_entry() - add @name (at most 31 bytes) for @ino to directory @dir in
 * free record space (never allocates: a full directory is left alone).
 * The new record is written before the record that makes it visible.
 * Return: 0, -ENOSPC.
 */
static int add_entry(struct fsck *f, uint64_t dir, const char *name, uint64_t ino, uint32_t mode)
{
	struct ufs_dinode root;
	struct tree_walk w;
	struct blk_list *l = calloc(1, sizeof(*l));
	uint8_t rec[sizeof(struct ufs_dirent) + 32];
	struct ufs_dirent ne;
	unsigned int len = (unsigned int)strlen(name), need, i;
	int ret = -ENOSPC;

	if (!l)
		return -ENOMEM;
	need = UFS_DIRENT_SIZE(len);
	fsck_read_inode(f, dir, &root);
	memset(&w, 0, sizeof(w));
	w.fn = collect_fn;
	w.arg = l;
	fsck_walk_tree(f, dir, &root, &w);
	for (i = 0; i < l->n && ret; i++) {
		uint8_t b[BS];
		uint32_t pos;

		memcpy(b, fsck_blk(f, l->pblk[i]), BS);
		if (((struct ufs_dirblk_hdr *)b)->b_magic != UFS_DIRBLK_MAGIC)
			continue;
		for (pos = sizeof(struct ufs_dirblk_hdr); pos + sizeof(ne) <= BS;) {
			struct ufs_dirent e;
			uint32_t used;

			memcpy(&e, b + pos, sizeof(e));
			if (e.d_rec_len < sizeof(e) || e.d_rec_len % 8 || e.d_rec_len > BS - pos)
				break;
			used = e.d_ino ? UFS_DIRENT_SIZE(e.d_name_len) : 0;
			if (e.d_rec_len >= used + need) {
				uint64_t at = l->pblk[i] * BS + pos + used;

				memset(&ne, 0, sizeof(ne));
				ne.d_rec_len = (uint16_t)(e.d_rec_len - used);
				ne.d_name_len = (uint8_t)len;
				ne.d_type = (uint8_t)fsck_mode_dtype(mode);
				ne.d_hash = name_hash(name, len);
				memcpy(rec, &ne, sizeof(ne));
				memcpy(rec + sizeof(ne), name, len);
				fsck_write(f, at, rec, sizeof(ne) + len);	/* d_ino still 0 */
				if (used) {
					uint16_t rl = (uint16_t)used;

					fsck_write(f, l->pblk[i] * BS + pos +
						   offsetof(struct ufs_dirent, d_rec_len), &rl, 2);
				}
				fsck_write(f, at, &ino, sizeof(ino));		/* now visible */
				ret = 0;
				break;
			}
			pos += e.d_rec_len;
		}
	}
	free(l);
	return ret;
}

#define LOST_FOUND "lost+found"

static int find_name_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	uint64_t *found = arg;
	uint32_t i, pos;

	for (i = 0; i < e->e_len && !*found; i++) {
		const uint8_t *b = fsck_blk(f, e->e_pblk + i);

		if (!b || ((const struct ufs_dirblk_hdr *)b)->b_magic != UFS_DIRBLK_MAGIC)
			continue;
		for (pos = sizeof(struct ufs_dirblk_hdr); pos + sizeof(struct ufs_dirent) <= BS;) {
			struct ufs_dirent d;

			memcpy(&d, b + pos, sizeof(d));
			if (d.d_rec_len < sizeof(d) || d.d_rec_len > BS - pos)
				break;
			if (d.d_ino && d.d_name_len == strlen(LOST_FOUND) &&
			    pos + sizeof(d) + d.d_name_len <= BS &&
			    !memcmp(b + pos + sizeof(d), LOST_FOUND, d.d_name_len))
				*found = d.d_ino;
			pos += d.d_rec_len;
		}
	}
	return *found ? 1 : 0;
}

/*
 * lost_found() - repairs only: the /lost+found directory that pass 3
 * reconnects into, as e2fsck does; made (one empty block, mode 0700) when
 * the root does not name a usable one.  Return: its inode, or 0 when none
 * can be had (then the root is used).
 */
static uint64_t lost_found(struct fsck *f)
{
	struct ufs_dinode root, di;
	struct ufs_dirblk_hdr h;
	struct ufs_dirent fr;
	struct tree_walk w;
	struct timespec now;
	uint64_t ino = 0, blk;
	uint8_t b[BS];

	if (f->lost_found)
		return f->lost_found;
	fsck_read_inode(f, ROOT_INO, &root);
	memset(&w, 0, sizeof(w));
	w.fn = find_name_fn;
	w.arg = &ino;
	fsck_walk_tree(f, ROOT_INO, &root, &w);
	if (ino) {
		if (ino < f->ninodes && (f->istate[ino] & (IS_VALID | IS_DIR)) == (IS_VALID | IS_DIR))
			return f->lost_found = ino;
		return 0;	/* the name is taken by something else: use the root */
	}
	/* a free slot (bit clear, slot zero) and a free data block */
	for (ino = 2; ino < f->ninodes; ino++) {
		if (f->istate[ino] || fsck_ibit(f, ino))
			continue;
		fsck_read_inode(f, ino, &di);
		if (di.i_mode == 0)
			break;
	}
	for (blk = f->sb.s_data_start; blk < f->nblocks - 1; blk++)
		if (!bit_test(f->used, blk) && !fsck_bbit(f, blk))
			break;
	if (ino >= f->ninodes || blk >= f->nblocks - 1)
		return 0;
	/* the block first, then the inode, then the name that makes it visible */
	memset(b, 0, sizeof(b));
	memset(&h, 0, sizeof(h));
	h.b_magic = UFS_DIRBLK_MAGIC;
	h.b_parent = ROOT_INO;
	memcpy(b, &h, sizeof(h));
	memset(&fr, 0, sizeof(fr));
	fr.d_rec_len = (uint16_t)(BS - sizeof(h));
	memcpy(b + sizeof(h), &fr, sizeof(fr));
	fsck_write(f, blk * BS, b, BS);
	fsck_mark_used(f, blk, 1);
	fsck_write_bit(f, f->sb.s_bbitmap_start, blk, true);
	memset(&di, 0, sizeof(di));
	clock_gettime(CLOCK_REALTIME, &now);
	di.i_mode = S_IFDIR | 0700;
	di.i_nlink = 2;
	di.i_size = BS;
	di.i_blocks = 1;
	di.i_atime_sec = di.i_mtime_sec = di.i_ctime_sec = di.i_crtime_sec = (uint64_t)now.tv_sec;
	di.i_generation = (uint64_t)now.tv_nsec;
	di.i_u.tree.hdr.h_magic = UFS_EXT_MAGIC;
	di.i_u.tree.hdr.h_max = UFS_INLINE_EXTENTS;
	di.i_u.tree.hdr.h_entries = 1;
	di.i_u.tree.ext[0].e_lblk = 0;
	di.i_u.tree.ext[0].e_pblk = blk;
	di.i_u.tree.ext[0].e_len = 1;
	fsck_write_inode(f, ino, &di);
	fsck_write_bit(f, f->sb.s_ibitmap_start, ino, true);
	if (add_entry(f, ROOT_INO, LOST_FOUND, ino, di.i_mode)) {
		/* no room in the root: undo, the root takes the names */
		memset(&di, 0, sizeof(di));
		fsck_write_inode(f, ino, &di);
		fsck_write_bit(f, f->sb.s_ibitmap_start, ino, false);
		fsck_write_bit(f, f->sb.s_bbitmap_start, blk, false);
		bit_clear(f->used, blk);
		return 0;
	}
	fsck_say(f, "udaxfs: made /" LOST_FOUND " (inode %" PRIu64 ")", ino);
	f->istate[ino] = IS_ALLOC | IS_VALID | IS_DIR | IS_REACHED;
	f->parent[ino] = ROOT_INO;
	f->bparent[ino] = ROOT_INO;
	f->refs[ino] = 1;
	f->subdirs[ROOT_INO]++;
	f->st.inodes++;
	f->st.dirs++;
	return f->lost_found = ino;
}

/*
 * reconnect() - pass 3 under -y: give inodes that no directory names (and
 * that are not unlinked orphans) a name in the root, as e2fsck does with
 * lost+found.  Directories in a cycle of their own are left alone.
 */
static void reconnect(struct fsck *f)
{
	uint64_t ino, p, depth, lf;
	struct ufs_dinode di;
	char name[32];

	for (ino = 2; ino < f->ninodes; ino++) {
		uint16_t s = f->istate[ino];
		bool dir = s & IS_DIR;

		if (!(s & IS_VALID) || (s & IS_ORPHAN) || (dir ? (s & IS_REACHED) || f->parent[ino]
							   : f->refs[ino] != 0))
			continue;
		fsck_read_inode(f, ino, &di);
		if (di.i_nlink == 0)
			continue;	/* unlinked but not on the orphan list: pass 4 */
		if (!fsck_problem(f, !f->dir_damaged, "%s %" PRIu64 " (nlink %u) is in no directory; %s",
				  dir ? "directory" : "inode", ino, di.i_nlink, f->dir_damaged ?
				  "a damaged directory may still name it: not reconnected" :
				  "reconnect it in /" LOST_FOUND " as #<inode>"))
			continue;
		lf = lost_found(f);
		snprintf(name, sizeof(name), "#%" PRIu64, ino);
		if ((!lf || add_entry(f, lf, name, ino, di.i_mode)) &&
		    add_entry(f, lf = ROOT_INO, name, ino, di.i_mode)) {
			fsck_say(f, "udaxfs: no room in /" LOST_FOUND " or the root directory for #%" PRIu64,
				 ino);
			f->st.fixed--;
			f->status |= FSCK_UNCORRECTED;
			continue;
		}
		f->refs[ino]++;
		if (dir) {
			f->parent[ino] = lf;
			f->subdirs[lf]++;
			f->istate[ino] |= IS_REACHED;
		}
	}
	/* directories below a reconnected one are reachable now */
	for (ino = 2; ino < f->ninodes; ino++) {
		if ((f->istate[ino] & (IS_VALID | IS_DIR)) != (IS_VALID | IS_DIR))
			continue;
		for (p = ino, depth = 0; p && !(f->istate[p] & IS_REACHED) && depth < f->ninodes;
		     depth++)
			p = f->parent[p];
		if (p && (f->istate[p] & IS_REACHED))
			for (p = ino; !(f->istate[p] & IS_REACHED); p = f->parent[p])
				f->istate[p] |= IS_REACHED;
	}
}

void fsck_pass3(struct fsck *f)
{
	uint64_t ino, steps, cur, head, i, *list;
	struct ufs_dinode di;
	bool list_bad = false;

	fsck_verbose(f, "udaxfs: pass 3: connectivity and the orphan list");
	if (!(f->istate[ROOT_INO] & IS_VALID) || !(f->istate[ROOT_INO] & IS_DIR)) {
		fsck_problem(f, false, "root inode %u is missing or not a directory", ROOT_INO);
		return;
	}
	f->istate[ROOT_INO] |= IS_REACHED;
	f->parent[ROOT_INO] = ROOT_INO;
	/* reachability: follow parent links up to the root (bounded) */
	for (ino = 2; ino < f->ninodes; ino++) {
		uint64_t p, depth = 0;

		if ((f->istate[ino] & (IS_VALID | IS_DIR)) != (IS_VALID | IS_DIR))
			continue;
		for (p = ino; p && !(f->istate[p] & IS_REACHED) && depth < f->ninodes; depth++)
			p = f->parent[p];
		if (p && (f->istate[p] & IS_REACHED)) {
			for (p = ino; !(f->istate[p] & IS_REACHED); p = f->parent[p])
				f->istate[p] |= IS_REACHED;
		}
	}
	/* the orphan list: what mount's reclaim will walk */
	head = f->sb.s_orphan_head;
	list = calloc(dx_min(f->ninodes, (uint64_t)1 << 20), sizeof(*list));
	for (cur = head, steps = 0; cur; steps++) {
		const char *why = NULL;

		if (cur >= f->ninodes || !(f->istate[cur] & IS_ALLOC))
			why = "is not an allocated inode";
		else if (f->istate[cur] & IS_ORPHAN)
			why = "is part of a loop";
		else if (!(f->istate[cur] & IS_VALID))
			why = "is unusable";
		if (!why) {
			fsck_read_inode(f, cur, &di);
			if (!(di.i_flags & UFS_INODE_FL_ORPHAN))
				why = "is not marked as an orphan";
		}
		if (why || !list || steps >= ((uint64_t)1 << 20)) {
			fsck_problem(f, true, "orphan list: inode %" PRIu64 " (entry %" PRIu64 ") %s; "
				     "mount would cut the list there", cur, steps, why ? why : "too far");
			list_bad = true;
			break;
		}
		f->istate[cur] |= IS_ORPHAN;
		list[f->st.orphans++] = cur;
		cur = di.i_orphan_next;
	}
	if (f->st.orphans)
		fsck_say(f, "udaxfs: %" PRIu64 " inode%s on the orphan list (mount reclaims them)",
			 f->st.orphans, f->st.orphans == 1 ? "" : "s");
	/*
	 * -y: do what mount would: free the unlinked ones, take the linked ones
	 * off the list, empty the list.
	 */
	if ((f->st.orphans || list_bad) && f->can_write && f->o.repair == FSCK_REPAIR_YES && list) {
		for (i = 0; i < f->st.orphans; i++) {
			cur = list[i];
			fsck_read_inode(f, cur, &di);
			if (di.i_nlink == 0 && f->refs[cur] == 0) {
				if (fsck_has_tree(di.i_mode, di.i_flags))
					fsck_unmark_nodes(f, &di.i_u.tree.hdr,
							  (const uint8_t *)di.i_u.tree.ext, MAX_TREE_DEPTH);
				fsck_reclaim_inode(f, cur);
				fsck_verbose(f, "udaxfs: orphan %" PRIu64 " reclaimed", cur);
			} else {
				di.i_flags &= ~(uint32_t)UFS_INODE_FL_ORPHAN;
				di.i_orphan_next = 0;
				fsck_write_inode(f, cur, &di);
				f->istate[cur] &= ~IS_ORPHAN;
				fsck_verbose(f, "udaxfs: orphan %" PRIu64 " is linked: taken off the list", cur);
			}
		}
		f->sb.s_orphan_head = 0;
		fsck_super_write_both(f, &f->sb);
		f->status |= FSCK_CORRECTED;
	}
	free(list);
	if (f->can_write && f->o.repair != FSCK_REPAIR_NO)
		reconnect(f);
}
