// SPDX-License-Identifier: MIT
/*
 * extent.c - the per-inode extent tree (format.h): a B+tree whose root is
 * the inode's four inline slots and whose other nodes are whole blocks of
 * UFS_NODE_ENTRIES.  Leaves (depth 0) hold struct ufs_extent, index nodes
 * struct ufs_extent_idx.
 *
 * Key rule: in an index node, child i holds every extent with
 * key[i] <= lblk < key[i + 1]; key[0] is treated as minus infinity by the
 * search, so it may go stale (lower extents inserted into child 0) without
 * being rewritten.  Keys are separators, not copies of the first extent:
 * trimming the head of a child's first extent leaves them valid.
 *
 * Splits are made on the way down (a full child is split before we enter
 * it), so an insert never has to walk back up.  Empty nodes are unlinked
 * and freed at once; the root shrinks back into the inode when its only
 * child fits.
 *
 * Every in-place change is logged first (utx_inode for the root,
 * utx_node for blocks); node checksums are recomputed at commit.
 *
 * Context: every function here runs with the inode's i_rwsem held
 * (exclusively for changes) and, for changes, inside a transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "extent.h"
#include "ufs_int.h"

struct elevel {
	struct ufs_extent_hdr *h;
	uint64_t blk;			/* 0: the root in the inode */
	int slot;
};
struct epath {
	int depth;
	struct elevel lv[UFS_MAX_DEPTH + 1];
};

#define EXT_LEN_MAX (1u << 30)

static inline struct ufs_extent *n_ext(struct ufs_extent_hdr *h)
{
	return (struct ufs_extent *)(h + 1);
}
static inline struct ufs_extent_idx *n_idx(struct ufs_extent_hdr *h)
{
	return (struct ufs_extent_idx *)(h + 1);
}
static inline uint64_t n_key(struct ufs_extent_hdr *h, int i)
{
	return h->h_depth ? n_idx(h)[i].x_lblk : n_ext(h)[i].e_lblk;
}
static inline struct ufs_extent_hdr *root_of(struct ufs_inode *ip)
{
	return &ip->di->i_u.tree.hdr;
}

void ufs_ext_init(struct ufs_dinode *di)
{
	memset(&di->i_u, 0, sizeof(di->i_u));
	di->i_u.tree.hdr.h_magic = UFS_EXT_MAGIC;
	di->i_u.tree.hdr.h_max = UFS_INLINE_EXTENTS;
}

static int corrupt(struct ufs_inode *ip, uint64_t blk, const char *what)
{
	dx_seterr("inode %llu: extent tree node at block %llu (device offset %llu): %s",
		    (unsigned long long)ip->ino, (unsigned long long)blk,
		    (unsigned long long)(blk << UFS_BLOCK_SHIFT), what);
	return -EUCLEAN;
}

const char *ufs_ext_hdr_check(const struct ufs_extent_hdr *h, bool root, unsigned int depth)
{
	if (h->h_magic != UFS_EXT_MAGIC)
		return "bad magic";
	if (h->h_max != (root ? UFS_INLINE_EXTENTS : UFS_NODE_ENTRIES))
		return "bad header: wrong capacity";
	if (h->h_entries > h->h_max)
		return "bad header: more entries than room";
	if (root ? h->h_depth > UFS_MAX_DEPTH : h->h_depth != depth)
		return "bad header: wrong depth";
	if (root && h->h_depth && !h->h_entries)
		return "bad header: an index root with no entries";
	return NULL;
}

const char *ufs_ext_leaf_check(const struct ufs_super *sb, const struct ufs_extent *e)
{
	if (!ufs_data_range(sb, e->e_pblk, e->e_len))
		return "extent maps blocks outside the data area";
	if (e->e_lblk >= UFS_MAX_FILE_BLOCKS || e->e_len > UFS_MAX_FILE_BLOCKS - e->e_lblk)
		return "extent maps logical blocks past the largest file";
	return NULL;
}

static int node_get(struct ufs_inode *ip, uint64_t blk, unsigned int depth,
		    struct ufs_extent_hdr **out)
{
	struct ufs *fs = ip->fs;
	struct ufs_extent_hdr *h;
	const char *why;

	if (!ufs_data_range(&fs->sb, blk, 1))
		return corrupt(ip, blk, "child pointer outside the data area");
	h = ufs_blk(fs, blk);
	why = ufs_ext_hdr_check(h, false, depth);
	if (why)
		return corrupt(ip, blk, why);
	*out = h;
	return 0;
}

static int root_check(struct ufs_inode *ip)
{
	const char *why = ufs_ext_hdr_check(root_of(ip), true, 0);

	return why ? corrupt(ip, 0, why) : 0;
}

/* Last slot whose key is <= @target, or -1. */
static int node_search(struct ufs_extent_hdr *h, uint64_t target)
{
	int lo = 0, hi = (int)h->h_entries - 1, r = -1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;

		if (n_key(h, mid) <= target) {
			r = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return r;
}

/* Fill @p down to the leaf that would hold @target. */
static int ep_walk(struct ufs_inode *ip, uint64_t target, struct epath *p)
{
	struct ufs_extent_hdr *h = root_of(ip);
	uint64_t blk = 0;
	int lvl, rc;

	rc = root_check(ip);
	if (rc)
		return rc;
	p->depth = h->h_depth;
	for (lvl = 0;; lvl++) {
		int s = node_search(h, target);

		p->lv[lvl].h = h;
		p->lv[lvl].blk = blk;
		if (lvl == p->depth) {
			p->lv[lvl].slot = s;
			return 0;
		}
		if (!h->h_entries)
			return corrupt(ip, blk, "empty index node");
		if (s < 0)
			s = 0;
		p->lv[lvl].slot = s;
		blk = n_idx(h)[s].x_child;
		rc = node_get(ip, blk, h->h_depth - 1, &h);
		if (rc)
			return rc;
	}
}

/* Descend from level @lvl (slot already set) to the leaf, leftmost or rightmost. */
static int ep_descend(struct ufs_inode *ip, struct epath *p, int lvl, bool left)
{
	for (; lvl < p->depth; lvl++) {
		struct ufs_extent_hdr *h = p->lv[lvl].h, *c;
		uint64_t blk = n_idx(h)[p->lv[lvl].slot].x_child;
		int rc = node_get(ip, blk, h->h_depth - 1, &c);

		if (rc)
			return rc;
		if (!c->h_entries && lvl + 1 < p->depth)
			return corrupt(ip, blk, "empty index node");
		p->lv[lvl + 1].h = c;
		p->lv[lvl + 1].blk = blk;
		p->lv[lvl + 1].slot = left ? 0 : (int)c->h_entries - 1;
	}
	return 0;
}

/* Move to the next (or previous) leaf.  Return: 1 moved, 0 none, <0 error. */
static int ep_step_leaf(struct ufs_inode *ip, struct epath *p, bool next)
{
	int lvl, rc;

	for (lvl = p->depth - 1; lvl >= 0; lvl--) {
		struct elevel *l = &p->lv[lvl];

		if (next ? l->slot + 1 < (int)l->h->h_entries : l->slot > 0) {
			l->slot += next ? 1 : -1;
			rc = ep_descend(ip, p, lvl, next);
			return rc ? rc : 1;
		}
	}
	return 0;
}

/* A leaf extent must map data blocks inside the device. */
static int ext_valid(struct ufs_inode *ip, uint64_t blk, const struct ufs_extent *x)
{
	const char *why = ufs_ext_leaf_check(&ip->fs->sb, x);

	return why ? corrupt(ip, blk, why) : 0;
}

int ufs_ext_find(struct ufs_inode *ip, uint64_t lblk, struct ufs_extent *e)
{
	struct epath p;
	struct ufs_extent_hdr *leaf;
	int s, rc;

	e->e_len = 0;
	rc = ep_walk(ip, lblk, &p);
	if (rc)
		return rc;
	leaf = p.lv[p.depth].h;
	s = p.lv[p.depth].slot;
	if (s >= 0) {
		struct ufs_extent *x = &n_ext(leaf)[s];

		if (lblk < x->e_lblk + x->e_len) {
			rc = ext_valid(ip, p.lv[p.depth].blk, x);
			if (rc)
				return rc;
			*e = *x;
			return 1;
		}
	}
	if (s + 1 < (int)leaf->h_entries) {
		rc = ext_valid(ip, p.lv[p.depth].blk, &n_ext(leaf)[s + 1]);
		if (rc)
			return rc;
		*e = n_ext(leaf)[s + 1];
		return 0;
	}
	for (;;) {
		rc = ep_step_leaf(ip, &p, true);
		if (rc <= 0)
			return rc;
		leaf = p.lv[p.depth].h;
		if (leaf->h_entries) {
			rc = ext_valid(ip, p.lv[p.depth].blk, &n_ext(leaf)[0]);
			if (rc)
				return rc;
			*e = n_ext(leaf)[0];
			return 0;
		}
	}
}

/* Log a node (root: the inode) before changing it. */
static int node_log(struct utx *t, struct ufs_inode *ip, uint64_t blk)
{
	return blk ? utx_node(t, blk) : utx_inode(t, ip);
}

static int node_alloc(struct utx *t, struct ufs_inode *ip, unsigned int depth, uint64_t goal,
		      uint64_t *blk, struct ufs_extent_hdr **out)
{
	struct ufs *fs = t->fs;
	struct ufs_extent_hdr *h;
	uint32_t got;
	int rc;

	rc = ufs_alloc_blocks(fs->a, t->tx, goal, 1, 1, 0, blk, &got);
	if (rc)
		return rc;
	rc = utx_node_fresh(t, *blk);
	if (rc)
		return rc;
	h = ufs_blk(fs, *blk);
	memset(h, 0, UFS_BLOCK_SIZE);
	h->h_magic = UFS_EXT_MAGIC;
	h->h_depth = depth;
	h->h_max = UFS_NODE_ENTRIES;
	ufs_iblocks(ip, 1);
	*out = h;
	return 0;
}

/* Root is full: move its contents into a new block, one level down. */
static int root_grow(struct utx *t, struct ufs_inode *ip)
{
	struct ufs_extent_hdr *r = root_of(ip), *h;
	uint64_t blk;
	int rc;

	if (r->h_depth >= UFS_MAX_DEPTH - 1)
		return -EFBIG;
	rc = node_alloc(t, ip, r->h_depth, 0, &blk, &h);
	if (rc)
		return rc;
	memcpy(h + 1, r + 1, (size_t)r->h_entries * 24);
	h->h_entries = r->h_entries;
	r->h_depth++;
	r->h_entries = 1;
	n_idx(r)[0].x_lblk = n_key(h, 0);
	n_idx(r)[0].x_child = blk;
	n_idx(r)[0].x_pad = 0;
	return 0;
}

/* Insert raw slot @slot (24 bytes) at @pos of a node that has room. */
static void node_insert_slot(struct ufs_extent_hdr *h, int pos, const void *slot)
{
	char *base = (char *)(h + 1);

	memmove(base + (size_t)(pos + 1) * 24, base + (size_t)pos * 24,
		(size_t)(h->h_entries - pos) * 24);
	memcpy(base + (size_t)pos * 24, slot, 24);
	h->h_entries++;
}

static void node_delete_slot(struct ufs_extent_hdr *h, int pos)
{
	char *base = (char *)(h + 1);

	memmove(base + (size_t)pos * 24, base + (size_t)(pos + 1) * 24,
		(size_t)(h->h_entries - pos - 1) * 24);
	h->h_entries--;
	memset(base + (size_t)h->h_entries * 24, 0, 24);
}

/*
 * Split full child @c (block @cblk) of @parent at slot @s: the upper half
 * moves to a new block that becomes slot s + 1.  *newkey is its key.
 */
static int node_split(struct utx *t, struct ufs_inode *ip, struct ufs_extent_hdr *parent,
		      uint64_t pblk, int s, struct ufs_extent_hdr *c, uint64_t cblk,
		      uint64_t *newblk, uint64_t *newkey)
{
	struct ufs_extent_hdr *n;
	struct ufs_extent_idx x;
	int half = c->h_entries / 2, move = c->h_entries - half, rc;

	rc = node_log(t, ip, pblk);
	if (!rc)
		rc = utx_node(t, cblk);
	if (!rc)
		rc = node_alloc(t, ip, c->h_depth, cblk + 1, newblk, &n);
	if (rc)
		return rc;
	memcpy(n + 1, (char *)(c + 1) + (size_t)half * 24, (size_t)move * 24);
	memset((char *)(c + 1) + (size_t)half * 24, 0, (size_t)move * 24);
	n->h_entries = move;
	c->h_entries = half;
	*newkey = n_key(n, 0);
	x.x_lblk = *newkey;
	x.x_child = *newblk;
	x.x_pad = 0;
	node_insert_slot(parent, s + 1, &x);
	return 0;
}

static bool ext_contig(const struct ufs_extent *a, uint64_t lblk, uint64_t pblk, uint64_t len)
{
	return a->e_lblk + a->e_len == lblk && a->e_pblk + a->e_len == pblk &&
	       a->e_len + len <= EXT_LEN_MAX;
}

/*
 * An extent that ends at @end now lives in the leaf of @p: every right
 * sibling key on the way up must stay >= end, so that the extent lies
 * inside its subtree's [key, next key) range.  Raising them is safe: the
 * right siblings only hold extents after the (formerly free) range.
 */
static int raise_keys(struct utx *t, struct ufs_inode *ip, struct epath *p, uint64_t end)
{
	int lvl, rc;

	for (lvl = p->depth - 1; lvl >= 0; lvl--) {
		struct elevel *l = &p->lv[lvl];

		if (l->slot + 1 < (int)l->h->h_entries && n_idx(l->h)[l->slot + 1].x_lblk < end) {
			rc = node_log(t, ip, l->blk);
			if (rc)
				return rc;
			n_idx(l->h)[l->slot + 1].x_lblk = end;
		}
	}
	return 0;
}

static int ext_insert(struct utx *t, struct ufs_inode *ip, uint64_t lblk, uint64_t pblk,
		      uint32_t len, bool merge)
{
	struct ufs_extent_hdr *h, *c;
	struct ufs_extent *x, *prev, *next;
	struct epath p;
	uint64_t blk = 0, end;
	int s, rc, lvl = 0;

	rc = root_check(ip);
	if (rc)
		return rc;
	rc = utx_inode(t, ip);
	if (rc)
		return rc;
	h = root_of(ip);
	if (h->h_entries == h->h_max) {
		rc = root_grow(t, ip);
		if (rc)
			return rc;
	}
	p.depth = h->h_depth;
	while (h->h_depth > 0) {
		uint64_t cblk, nblk, nkey;

		s = node_search(h, lblk);
		if (s < 0) {
			/* keep keys sorted: key[0] follows the lowest extent down */
			s = 0;
			rc = node_log(t, ip, blk);
			if (rc)
				return rc;
			n_idx(h)[0].x_lblk = lblk;
		}
		cblk = n_idx(h)[s].x_child;
		rc = node_get(ip, cblk, h->h_depth - 1, &c);
		if (rc)
			return rc;
		if (c->h_entries == c->h_max) {
			rc = node_split(t, ip, h, blk, s, c, cblk, &nblk, &nkey);
			if (rc)
				return rc;
			if (lblk >= nkey) {
				s++;
				cblk = nblk;
				c = ufs_blk(t->fs, nblk);
			}
		}
		p.lv[lvl].h = h;
		p.lv[lvl].blk = blk;
		p.lv[lvl].slot = s;
		lvl++;
		h = c;
		blk = cblk;
	}
	p.lv[lvl].h = h;
	p.lv[lvl].blk = blk;
	/* leaf with room */
	s = node_search(h, lblk);
	x = n_ext(h);
	prev = s >= 0 ? &x[s] : NULL;
	next = s + 1 < (int)h->h_entries ? &x[s + 1] : NULL;
	if ((prev && prev->e_lblk + prev->e_len > lblk) || (next && lblk + len > next->e_lblk)) {
		dx_seterr("inode %llu: extent insert overlaps at block %llu",
			    (unsigned long long)ip->ino, (unsigned long long)lblk);
		return -EUCLEAN;
	}
	rc = node_log(t, ip, blk);
	if (rc)
		return rc;
	end = lblk + len;
	if (merge && prev && ext_contig(prev, lblk, pblk, len)) {
		prev->e_len += len;
		if (next && ext_contig(prev, next->e_lblk, next->e_pblk, next->e_len)) {
			prev->e_len += next->e_len;
			node_delete_slot(h, s + 1);
		}
		end = prev->e_lblk + prev->e_len;
	} else if (merge && next && lblk + len == next->e_lblk && pblk + len == next->e_pblk &&
		   next->e_len + len <= EXT_LEN_MAX) {
		next->e_lblk = lblk;
		next->e_pblk = pblk;
		next->e_len += len;
		end = next->e_lblk + next->e_len;
	} else {
		struct ufs_extent e = { .e_lblk = lblk, .e_pblk = pblk, .e_len = len };

		node_insert_slot(h, s + 1, &e);
	}
	return raise_keys(t, ip, &p, end);
}

int ufs_ext_insert(struct utx *t, struct ufs_inode *ip, uint64_t lblk, uint64_t pblk,
		   uint32_t len)
{
	return ext_insert(t, ip, lblk, pblk, len, true);
}

/* Pull the only child of the root back into the inode while it fits. */
static int root_shrink(struct utx *t, struct ufs_inode *ip)
{
	struct ufs_extent_hdr *r = root_of(ip), *c;
	uint64_t cblk;
	int rc;

	while (r->h_depth > 0 && r->h_entries == 1) {
		cblk = n_idx(r)[0].x_child;
		rc = node_get(ip, cblk, r->h_depth - 1, &c);
		if (rc)
			return rc;
		if (c->h_entries > UFS_INLINE_EXTENTS)
			return 0;
		memset(r + 1, 0, UFS_INLINE_EXTENTS * 24);
		memcpy(r + 1, c + 1, (size_t)c->h_entries * 24);
		r->h_entries = c->h_entries;
		r->h_depth = c->h_depth;
		rc = ufs_free_blocks(t->fs->a, t->tx, cblk, 1);
		if (rc)
			return rc;
		ufs_iblocks(ip, -1);
	}
	if (r->h_depth > 0 && r->h_entries == 0)
		r->h_depth = 0;
	return 0;
}

/* Delete slot lv[lvl].slot; unlink and free nodes that become empty. */
static int path_delete(struct utx *t, struct ufs_inode *ip, struct epath *p, int lvl)
{
	int rc;

	for (;; lvl--) {
		struct elevel *l = &p->lv[lvl];

		rc = node_log(t, ip, l->blk);
		if (rc)
			return rc;
		node_delete_slot(l->h, l->slot);
		if (l->h->h_entries || lvl == 0)
			break;
		rc = ufs_free_blocks(t->fs->a, t->tx, l->blk, 1);
		if (rc)
			return rc;
		ufs_iblocks(ip, -1);
	}
	return root_shrink(t, ip);
}

int ufs_ext_remove(struct utx *t, struct ufs_inode *ip, uint64_t start, uint64_t end,
		   uint64_t *next_end)
{
	uint64_t cur = end, freed = 0;
	int rc = 0;

	rc = utx_inode(t, ip);
	if (rc)
		return rc;
	while (cur > start) {
		struct epath p;
		struct ufs_extent *e, old;
		uint64_t a, b, eend, fpblk;
		int s;

		if (freed && (freed >= UFS_STEP_BLOCKS || utx_room(t) < UFS_STEP_ROOM))
			break;
		rc = ep_walk(ip, cur - 1, &p);
		if (rc)
			break;
		s = p.lv[p.depth].slot;
		while (s < 0) {
			rc = ep_step_leaf(ip, &p, false);
			if (rc < 0)
				goto out;
			if (rc == 0)
				break;
			s = (int)p.lv[p.depth].h->h_entries - 1;
			p.lv[p.depth].slot = s;
		}
		rc = 0;
		if (s < 0) {
			cur = start;
			break;
		}
		e = &n_ext(p.lv[p.depth].h)[s];
		old = *e;
		rc = ext_valid(ip, p.lv[p.depth].blk, &old);
		if (rc)
			break;
		eend = old.e_lblk + old.e_len;
		if (eend <= start) {
			cur = start;
			break;
		}
		a = dx_max(start, old.e_lblk);
		b = dx_min(cur, eend);
		if (b - a > UFS_STEP_BLOCKS - freed)
			a = b - (UFS_STEP_BLOCKS - freed);
		fpblk = old.e_pblk + (a - old.e_lblk);
		rc = node_log(t, ip, p.lv[p.depth].blk);
		if (rc)
			break;
		if (a == old.e_lblk && b == eend) {
			rc = path_delete(t, ip, &p, p.depth);
		} else if (b == eend) {
			e->e_len = (uint32_t)(a - old.e_lblk);
		} else if (a == old.e_lblk) {
			e->e_lblk = b;
			e->e_pblk = old.e_pblk + (b - old.e_lblk);
			e->e_len = (uint32_t)(eend - b);
		} else {
			e->e_len = (uint32_t)(a - old.e_lblk);
			rc = ext_insert(t, ip, b, old.e_pblk + (b - old.e_lblk),
					(uint32_t)(eend - b), false);
		}
		if (rc)
			break;
		rc = ufs_free_blocks(t->fs->a, t->tx, fpblk, (uint32_t)(b - a));
		if (rc)
			break;
		ufs_iblocks(ip, -(int64_t)(b - a));
		freed += b - a;
		cur = a;
	}
out:
	*next_end = cur;
	return rc < 0 ? rc : 0;
}

int ufs_ext_split(struct utx *t, struct ufs_inode *ip, uint64_t lblk)
{
	struct epath p;
	struct ufs_extent *e, old;
	int s, rc;

	rc = ep_walk(ip, lblk, &p);
	if (rc)
		return rc;
	s = p.lv[p.depth].slot;
	if (s < 0)
		return 0;
	e = &n_ext(p.lv[p.depth].h)[s];
	old = *e;
	if (old.e_lblk >= lblk || old.e_lblk + old.e_len <= lblk)
		return 0;
	rc = node_log(t, ip, p.lv[p.depth].blk);
	if (rc)
		return rc;
	e->e_len = (uint32_t)(lblk - old.e_lblk);
	return ext_insert(t, ip, lblk, old.e_pblk + (lblk - old.e_lblk),
			  (uint32_t)(old.e_lblk + old.e_len - lblk), false);
}

static uint64_t shift_key(uint64_t key, uint64_t from, int64_t delta)
{
	if (key >= from)
		return key + (uint64_t)delta;
	if (delta < 0 && key >= from - (uint64_t)(-delta))
		return from - (uint64_t)(-delta);
	return key;
}

/* Shift keys under @h; with @cost, only count the bytes that would be logged. */
static int shift_node(struct utx *t, struct ufs_inode *ip, struct ufs_extent_hdr *h,
		      uint64_t blk, uint64_t from, int64_t delta, size_t *cost)
{
	uint64_t lo = delta < 0 ? from - (uint64_t)(-delta) : from;
	bool logged = false;
	int i, rc;

	for (i = 0; i < (int)h->h_entries; i++) {
		uint64_t key = n_key(h, i), nk = shift_key(key, from, delta);

		if (h->h_depth) {
			struct ufs_extent_hdr *c;
			uint64_t cblk = n_idx(h)[i].x_child;

			/* child i ends before key[i + 1]: skip it when that is below lo */
			if (i + 1 >= (int)h->h_entries || n_key(h, i + 1) > lo) {
				rc = node_get(ip, cblk, h->h_depth - 1, &c);
				if (!rc)
					rc = shift_node(t, ip, c, cblk, from, delta, cost);
				if (rc)
					return rc;
			}
		}
		if (nk == key)
			continue;
		if (!logged) {
			if (cost) {
				*cost += (blk ? UFS_BLOCK_SIZE : UFS_INODE_SIZE) + 64;
			} else {
				rc = node_log(t, ip, blk);
				if (rc)
					return rc;
			}
			logged = true;
		}
		if (cost)
			continue;
		if (h->h_depth)
			n_idx(h)[i].x_lblk = nk;
		else
			n_ext(h)[i].e_lblk = nk;
	}
	return 0;
}

int ufs_ext_shift(struct utx *t, struct ufs_inode *ip, uint64_t from, int64_t delta)
{
	int rc = root_check(ip);

	if (rc)
		return rc;
	return shift_node(t, ip, root_of(ip), 0, from, delta, NULL);
}

int ufs_ext_shift_cost(struct ufs_inode *ip, uint64_t from, int64_t delta, size_t *bytes)
{
	int rc = root_check(ip);

	*bytes = 0;
	if (rc)
		return rc;
	return shift_node(NULL, ip, root_of(ip), 0, from, delta, bytes);
}

/* @fn (may be NULL) is told every node block and every extent's blocks */
static int check_node(struct ufs_inode *ip, struct ufs_extent_hdr *h, uint64_t blk,
		      uint64_t lo, uint64_t hi, uint64_t *last_end, uint64_t *count,
		      ufs_ext_blocks_fn fn, void *arg)
{
	int i, rc;

	for (i = 0; i < (int)h->h_entries; i++) {
		if (h->h_depth) {
			struct ufs_extent_hdr *c;
			uint64_t klo = i ? n_idx(h)[i].x_lblk : lo;
			uint64_t khi = i + 1 < (int)h->h_entries ? n_idx(h)[i + 1].x_lblk : hi;

			if (klo > khi || klo < lo || khi > hi ||
			    (i && n_idx(h)[i - 1].x_lblk > n_idx(h)[i].x_lblk))
				return corrupt(ip, blk, "keys out of order");
			rc = node_get(ip, n_idx(h)[i].x_child, h->h_depth - 1, &c);
			if (rc)
				return rc;
			if (!c->h_entries)
				return corrupt(ip, n_idx(h)[i].x_child, "empty node");
			if (fn) {
				rc = fn(arg, n_idx(h)[i].x_child, 1);
				if (rc)
					return rc;
			}
			rc = check_node(ip, c, n_idx(h)[i].x_child, klo, khi, last_end, count,
					fn, arg);
			if (rc)
				return rc;
		} else {
			struct ufs_extent *e = &n_ext(h)[i];

			if (!e->e_len || e->e_lblk < *last_end || e->e_lblk < lo ||
			    e->e_lblk + e->e_len > hi)
				return corrupt(ip, blk, "extents overlap or out of order");
			rc = ext_valid(ip, blk, e);
			if (!rc && fn)
				rc = fn(arg, e->e_pblk, e->e_len);
			if (rc)
				return rc;
			*last_end = e->e_lblk + e->e_len;
			(*count)++;
		}
	}
	return 0;
}

int ufs_ext_check(struct ufs_inode *ip, uint64_t *nextents)
{
	uint64_t last_end = 0, count = 0;
	int rc = root_check(ip);

	if (!rc)
		rc = check_node(ip, root_of(ip), 0, 0, UINT64_MAX, &last_end, &count, NULL, NULL);
	if (nextents)
		*nextents = count;
	return rc;
}

int ufs_ext_check_blocks(struct ufs_inode *ip, ufs_ext_blocks_fn fn, void *arg)
{
	uint64_t last_end = 0, count = 0;
	int rc = root_check(ip);

	if (!rc)
		rc = check_node(ip, root_of(ip), 0, 0, UINT64_MAX, &last_end, &count, fn, arg);
	return rc;
}

int64_t ufs_ext_alloc(struct utx *t, struct ufs_inode *ip, uint64_t lblk, uint64_t len,
		      uint64_t skip_lo, uint64_t skip_hi)
{
	struct ufs *fs = t->fs;
	uint64_t done = 0;
	int rc;

	rc = utx_inode(t, ip);
	if (rc)
		return rc;
	while (done < len) {
		uint64_t cur = lblk + done, hole, goal = 0, pblk, lo, hi;
		struct ufs_extent e, pe;
		unsigned int flags = 0;
		uint32_t want, min, got;

		rc = ufs_ext_find(ip, cur, &e);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			done += dx_min(e.e_lblk + e.e_len - cur, len - done);
			continue;
		}
		hole = (e.e_len && e.e_lblk < lblk + len ? e.e_lblk : lblk + len) - cur;
		if (hole > UFS_STEP_BLOCKS)
			hole = UFS_STEP_BLOCKS;
		want = (uint32_t)hole;
		min = 1;
		if (cur % UFS_HUGE_BLOCKS == 0 && hole >= UFS_HUGE_BLOCKS) {
			want = (uint32_t)(hole - hole % UFS_HUGE_BLOCKS);
			min = UFS_HUGE_BLOCKS;
			flags = UFS_ALLOC_HUGE;
		} else if (cur > 0 && ufs_ext_find(ip, cur - 1, &pe) == 1) {
			goal = pe.e_pblk + (cur - pe.e_lblk);
		}
		rc = ufs_alloc_blocks(fs->a, t->tx, goal, want, min, flags, &pblk, &got);
		if (rc == -ENOSPC && flags) {
			/* no free 2 MiB run: take what there is */
			want = (uint32_t)hole;
			rc = ufs_alloc_blocks(fs->a, t->tx, 0, want, 1, 0, &pblk, &got);
		}
		if (rc == -ENOSPC)
			break;
		if (rc)
			return rc;
		/* zero what the caller will not write before it becomes reachable */
		lo = cur << UFS_BLOCK_SHIFT;
		hi = (cur + got) << UFS_BLOCK_SHIFT;
		if (skip_lo >= hi || skip_hi <= lo || skip_lo >= skip_hi) {
			dx_media_memset_persist(fs->m, ufs_blk(fs, pblk), 0, hi - lo);
		} else {
			if (skip_lo > lo)
				dx_media_memset_persist(fs->m, ufs_blk(fs, pblk), 0, skip_lo - lo);
			if (skip_hi < hi)
				dx_media_memset_persist(fs->m,
							  (char *)ufs_blk(fs, pblk) + (skip_hi - lo),
							  0, hi - skip_hi);
		}
		rc = ufs_ext_insert(t, ip, cur, pblk, got);
		if (rc)
			return rc;
		ufs_iblocks(ip, got);
		done += got;
	}
	return (int64_t)done;
}

static void dump_node(struct ufs_inode *ip, struct ufs_extent_hdr *h, uint64_t blk, int indent,
		      FILE *f)
{
	int i;

	fprintf(f, "%*snode blk %llu depth %u entries %u\n", indent, "", (unsigned long long)blk,
		h->h_depth, h->h_entries);
	for (i = 0; i < (int)h->h_entries; i++) {
		if (h->h_depth) {
			struct ufs_extent_hdr *c;

			fprintf(f, "%*s[%d] key %llu -> %llu\n", indent, "", i,
				(unsigned long long)n_idx(h)[i].x_lblk,
				(unsigned long long)n_idx(h)[i].x_child);
			if (!node_get(ip, n_idx(h)[i].x_child, h->h_depth - 1, &c))
				dump_node(ip, c, n_idx(h)[i].x_child, indent + 2, f);
		} else {
			struct ufs_extent *e = &n_ext(h)[i];

			fprintf(f, "%*s[%d] %llu+%u -> %llu\n", indent, "", i,
				(unsigned long long)e->e_lblk, e->e_len,
				(unsigned long long)e->e_pblk);
		}
	}
}

void ufs_ext_dump(struct ufs_inode *ip, FILE *f)
{
	dump_node(ip, root_of(ip), 0, 0, f);
}
