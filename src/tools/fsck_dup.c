/* SPDX-License-Identifier: MIT */
/*
 * fsck_dup.c - pass 1B: blocks pass 1 found claimed more than once.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/format.h"
#include "core/util.h"
#include "fsck_int.h"

/* ---------------------------------------------------------------- pass 1B: shared blocks */

/*
 * A block two owners claim (two files, or a file and an extent node, an
 * xattr block or a directory) is given to one of them; every other
 * claimant gets its own copy, as e2fsck's passes 1B-1D do: each owner
 * keeps the bytes it reads today and a write to one no longer shows in
 * the other.  Metadata wins over file data (a node, xattr block or
 * directory keeps the block; the file's claim is copied away), then the
 * lowest inode.  An inode fsck cannot rewrite (damaged, left as it is)
 * keeps its blocks, whatever they are.
 */

enum claim_rank {
	CLAIM_FIXED,		/* an inode fsck may not rewrite */
	CLAIM_NODE,		/* an extent tree node block */
	CLAIM_XATTR,		/* an xattr block */
	CLAIM_DIR,		/* directory data */
	CLAIM_DATA,		/* file (or symlink) data */
};

struct claim {
	uint64_t ino;
	uint64_t pblk, len;
	uint64_t lblk;		/* first logical block (data claims) */
	uint64_t holder;	/* block holding the entry that points here, 0 = the inode */
	uint32_t idx;		/* that entry's index */
	uint8_t kind;		/* CLAIM_NODE, CLAIM_XATTR, CLAIM_DIR or CLAIM_DATA */
	uint8_t rank;		/* the lowest rank keeps a block */
	uint32_t seq;		/* discovery order: parents before children */
};

struct dupblk {
	uint64_t blk;
	uint32_t claims;	/* claimants left */
	uint32_t keeper;	/* index + 1 into the claims of who keeps it, 0 = none yet */
};

struct dup_scan {
	struct dupblk *d;
	size_t nd;
	struct claim *c;
	size_t nc, cap;
	const struct tree_walk *w;	/* the walk in fsck_progress */
	uint64_t ino;
	uint8_t rank_of_inode;	/* CLAIM_FIXED or 0 */
	bool dir;
	bool nomem;
};

/* moved node blocks, so that claims under them find their new holder */
struct node_move {
	uint64_t ino, from, to;
};

static struct dupblk *dup_find(struct dup_scan *s, uint64_t blk)
{
	size_t lo = 0, hi = s->nd;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->d[mid].blk == blk)
			return &s->d[mid];
		if (s->d[mid].blk < blk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Record a claim on [pblk, pblk + len) when any block of it is shared. */
static void add_claim(struct dup_scan *s, uint64_t pblk, uint64_t len, uint64_t lblk,
		      uint64_t holder, uint32_t idx, uint8_t kind)
{
	struct claim *c;
	uint64_t b;
	bool shared = false;

	for (b = pblk; b < pblk + len; b++) {
		struct dupblk *d = dup_find(s, b);

		if (d) {
			d->claims++;
			shared = true;
		}
	}
	if (!shared)
		return;
	if (s->nc == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct claim *n = realloc(s->c, cap * sizeof(*n));

		if (!n) {
			s->nomem = true;
			return;
		}
		s->c = n;
		s->cap = cap;
	}
	c = &s->c[s->nc];
	c->ino = s->ino;
	c->pblk = pblk;
	c->len = len;
	c->lblk = lblk;
	c->holder = holder;
	c->idx = idx;
	c->kind = kind;
	c->rank = s->rank_of_inode == CLAIM_FIXED ? CLAIM_FIXED : kind;
	c->seq = (uint32_t)s->nc;
	s->nc++;
}

static int claim_ext_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	struct dup_scan *s = arg;
	const struct tree_walk *w = s->w;

	(void)f;
	(void)ino;
	add_claim(s, e->e_pblk, e->e_len, e->e_lblk, w->holder, w->idx,
		  s->dir ? CLAIM_DIR : CLAIM_DATA);
	return 0;
}

static int claim_node_fn(struct fsck *f, uint64_t ino, const struct ufs_extent_idx *x, void *arg)
{
	struct dup_scan *s = arg;
	const struct tree_walk *w = s->w;

	(void)f;
	(void)ino;
	add_claim(s, x->x_child, 1, x->x_lblk, w->holder, w->idx, CLAIM_NODE);
	return 0;
}

static int claim_cmp(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A free run of @len data blocks (free in the bitmap and referenced by nobody). */
static uint64_t find_free_run(struct fsck *f, uint64_t len)
{
	uint64_t b, run = 0;

	for (b = f->sb.s_data_start; b < f->nblocks - 1; b++) {
		if (bit_test(f->used, b) || fsck_bbit(f, b)) {
			run = 0;
			continue;
		}
		if (++run == len)
			return b + 1 - len;
	}
	return 0;
}

/* Point entry @idx of @holder (0: the inode's root) of inode @ino at @to. */
static void repoint(struct fsck *f, uint64_t ino, uint64_t holder, uint32_t idx, uint8_t kind,
		    uint64_t to)
{
	if (holder == 0) {
		struct ufs_dinode di;

		fsck_read_inode(f, ino, &di);
		if (kind == CLAIM_XATTR)
			di.i_xattr_block = to;
		else if (kind == CLAIM_NODE)
			((struct ufs_extent_idx *)di.i_u.tree.ext)[idx].x_child = to;
		else
			di.i_u.tree.ext[idx].e_pblk = to;
		fsck_write_inode(f, ino, &di);
	} else {
		uint8_t node[BS];
		struct ufs_extent_hdr *h = (struct ufs_extent_hdr *)node;
		uint8_t *ent;

		memcpy(node, fsck_blk(f, holder), BS);
		ent = node + sizeof(*h) + (size_t)idx * sizeof(struct ufs_extent);
		if (kind == CLAIM_NODE)
			memcpy(ent + offsetof(struct ufs_extent_idx, x_child), &to, sizeof(to));
		else
			memcpy(ent + offsetof(struct ufs_extent, e_pblk), &to, sizeof(to));
		h->h_checksum = 0;
		h->h_checksum = dx_crc32c(0, node, BS);
		fsck_write(f, holder * BS, node, BS);
	}
}

/*
 * clone_claim() - give claim @c its own copy in the free run at @to: the
 * run is filled and allocated, then the pointer is switched, then the old
 * blocks only @c held are freed (fsck has no journal: a crash in between
 * leaves a leaked block, never a lost one).
 */
static void clone_claim(struct fsck *f, struct dup_scan *s, const struct claim *c,
			uint64_t holder, uint64_t to)
{
	uint64_t i;

	for (i = 0; i < c->len; i++) {
		fsck_write(f, (to + i) * BS, fsck_blk(f, c->pblk + i), BS);
		bit_set(f->used, to + i);
		fsck_write_bit(f, f->sb.s_bbitmap_start, to + i, true);
	}
	repoint(f, c->ino, holder, c->idx, c->kind, to);
	for (i = 0; i < c->len; i++) {
		struct dupblk *d = dup_find(s, c->pblk + i);

		if (d) {
			d->claims--;
		} else {
			bit_clear(f->used, c->pblk + i);
			fsck_write_bit(f, f->sb.s_bbitmap_start, c->pblk + i, false);
		}
	}
}

/* "data blocks 7+2 (logical block 0) are", "extent node block 9 is", ... */
static void claim_desc(const struct claim *c, char *buf, size_t len)
{
	static const char *const what[] = {
		[CLAIM_NODE] = "extent node", [CLAIM_XATTR] = "xattr",
		[CLAIM_DIR] = "directory", [CLAIM_DATA] = "data",
	};
	int n;

	if (c->len == 1)
		n = snprintf(buf, len, "%s block %" PRIu64, what[c->kind], c->pblk);
	else
		n = snprintf(buf, len, "%s blocks %" PRIu64 "+%" PRIu64, what[c->kind], c->pblk,
			     c->len);
	if (n > 0 && (size_t)n < len && (c->kind == CLAIM_DATA || c->kind == CLAIM_DIR))
		n += snprintf(buf + n, len - (size_t)n, " (logical block %" PRIu64 ")", c->lblk);
	if (n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, c->len == 1 ? " is" : " are");
}

/* What the keeper of a block uses it for. */
static const char *claim_use(uint8_t kind)
{
	switch (kind) {
	case CLAIM_NODE: return "an extent node";
	case CLAIM_XATTR: return "the xattr block";
	case CLAIM_DIR: return "directory data";
	}
	return "file data";
}

/* Collect every claim on a shared block, from the inodes whose blocks pass 1 recorded. */
static void collect_claims(struct fsck *f, struct dup_scan *s)
{
	uint64_t ino;

	for (ino = 1; ino < f->ninodes && !s->nomem; ino++) {
		uint16_t st = f->istate[ino];
		struct ufs_dinode di;
		struct tree_walk w;

		if (!(st & (IS_MARKED | IS_XMARKED)))
			continue;
		fsck_read_inode(f, ino, &di);
		s->ino = ino;
		s->dir = S_ISDIR(di.i_mode);
		/* an inode left damaged is never rewritten: it keeps what it has */
		s->rank_of_inode = (st & IS_BADTREE) ? CLAIM_FIXED : CLAIM_DATA;
		if (st & IS_MARKED) {
			memset(&w, 0, sizeof(w));
			w.fn = claim_ext_fn;
			w.node_fn = claim_node_fn;
			w.arg = s;
			s->w = &w;	/* the callbacks read the entry's place from it */
			fsck_walk_tree(f, ino, &di, &w);
		}
		if (st & IS_XMARKED)
			add_claim(s, di.i_xattr_block, 1, 0, 0, 0, CLAIM_XATTR);
	}
}

/*
 * fsck_pass1b() - settle every block pass 1 found claimed more than once: the
 * claims are ranked (metadata first, then by inode), the first claim on a
 * block keeps it, and each later claim on it is copied to free blocks.
 */
void fsck_pass1b(struct fsck *f)
{
	struct dup_scan s;
	struct node_move *mv = NULL;
	size_t nmv = 0, i;
	uint64_t b, n = 0;
	bool writing = f->can_write && f->o.repair != FSCK_REPAIR_NO;

	for (b = 0; b < f->nblocks; b++)
		n += bit_test(f->dup, b);
	if (!n)
		return;
	fsck_verbose(f, "udaxfs: pass 1B: %" PRIu64 " block%s claimed more than once", n,
		     n == 1 ? "" : "s");
	memset(&s, 0, sizeof(s));
	s.d = calloc(n, sizeof(*s.d));
	if (!s.d)
		goto nomem;
	for (b = 0; b < f->nblocks; b++)
		if (bit_test(f->dup, b))
			s.d[s.nd++].blk = b;
	collect_claims(f, &s);
	if (s.nomem)
		goto nomem;
	if (s.nc)
		qsort(s.c, s.nc, sizeof(*s.c), claim_cmp);
	mv = calloc(s.nc + 1, sizeof(*mv));
	if (!mv)
		goto nomem;
	for (i = 0; i < s.nc; i++) {
		const struct claim *c = &s.c[i];
		const struct claim *k;
		struct dupblk *d, *taken = NULL;
		uint64_t holder = c->holder, to;
		char desc[96];
		size_t j;

		for (b = c->pblk; b < c->pblk + c->len && !taken; b++)
			if ((d = dup_find(&s, b)) && d->keeper)
				taken = d;
		if (!taken) {
			for (b = c->pblk; b < c->pblk + c->len; b++)
				if ((d = dup_find(&s, b)))
					d->keeper = (uint32_t)(i + 1);
			continue;
		}
		k = &s.c[taken->keeper - 1];
		claim_desc(c, desc, sizeof(desc));
		/* the entry pointing here may be in a node this inode got its own copy of */
		for (j = 0; j < nmv; j++)
			if (mv[j].ino == c->ino && mv[j].from == holder)
				holder = mv[j].to;
		d = holder ? dup_find(&s, holder) : NULL;
		if (c->rank == CLAIM_FIXED || (writing && d && d->claims > 1)) {
			fsck_problem(f, false, "inode %" PRIu64 ": %s also %s of inode %" PRIu64 "; %s: "
				     "left shared", c->ino, desc, claim_use(k->kind), k->ino,
				     c->rank == CLAIM_FIXED ? "the inode is damaged and not rewritten" :
				     "the extent node pointing at it is shared as well");
			continue;
		}
		/* room for the copy first: never promise a repair that cannot be made */
		to = writing ? find_free_run(f, c->len) : 1;
		if (!to) {
			fsck_problem(f, false, "inode %" PRIu64 ": %s also %s of inode %" PRIu64 "; no free "
				     "space for a copy: left shared", c->ino, desc, claim_use(k->kind),
				     k->ino);
			continue;
		}
		if (!fsck_problem(f, true, "inode %" PRIu64 ": %s also %s of inode %" PRIu64 "; give "
				  "inode %" PRIu64 " its own copy", c->ino, desc, claim_use(k->kind), k->ino,
				  c->ino))
			continue;
		clone_claim(f, &s, c, holder, to);
		fsck_verbose(f, "udaxfs:   inode %" PRIu64 ": copied to blocks %" PRIu64 "+%" PRIu64,
			     c->ino, to, c->len);
		if (c->kind == CLAIM_NODE)
			mv[nmv++] = (struct node_move){ .ino = c->ino, .from = c->pblk, .to = to };
	}
	for (i = 0; i < s.nd; i++)
		if (s.d[i].claims <= 1)
			bit_clear(f->dup, s.d[i].blk);
	f->dups_reported = true;
	goto out;
nomem:
	fsck_problem(f, false, "out of memory for the %" PRIu64 " blocks claimed more than once", n);
out:
	free(mv);
	free(s.c);
	free(s.d);
}
