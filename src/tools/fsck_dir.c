/* SPDX-License-Identifier: MIT */
/*
 * fsck_dir.c - pass 2: directories: record chains, names, inode
 * numbers, entry types, duplicate names; references are counted per inode.
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

/* ---------------------------------------------------------------- directories */

struct dname {
	uint32_t len;
	uint32_t pos;		/* into the arena */
	uint64_t off;		/* device offset of the record */
	uint64_t ino;
};

struct dir_walk {
	uint64_t dir;
	uint64_t parent;	/* b_parent of block 0 */
	bool bad_block0;	/* its header cannot be trusted */
	struct dname *names;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
	bool nomem;
};

static void clear_dirent(struct fsck *f, uint64_t off)
{
	uint64_t zero = 0;

	fsck_write(f, off + offsetof(struct ufs_dirent, d_ino), &zero, sizeof(zero));
}

static bool name_ok(const char *n, unsigned int len)
{
	if (len == 0 || memchr(n, '/', len) || memchr(n, 0, len))
		return false;
	if ((len == 1 && n[0] == '.') || (len == 2 && n[0] == '.' && n[1] == '.'))
		return false;
	return true;
}

static int add_name(struct dir_walk *d, const char *name, unsigned len, uint64_t off, uint64_t ino)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct dname *n = realloc(d->names, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->names = n;
		d->cap = cap;
	}
	if (d->alen + len > d->acap) {
		size_t cap = dx_max(d->acap * 2, d->alen + len + 4096);
		char *a = realloc(d->arena, cap);

		if (!a)
			return -ENOMEM;
		d->arena = a;
		d->acap = cap;
	}
	memcpy(d->arena + d->alen, name, len);
	d->names[d->n].len = len;
	d->names[d->n].pos = (uint32_t)d->alen;
	d->names[d->n].off = off;
	d->names[d->n].ino = ino;
	d->n++;
	d->alen += len;
	return 0;
}

/* Check one directory block (an extent's block @pblk, logical @lblk). */
/* Where the chain of records in block @b stops being sound (BS: all sound). */
static uint32_t dir_chain_end(const uint8_t *b)
{
	uint32_t pos = sizeof(struct ufs_dirblk_hdr);

	while (pos < BS) {
		struct ufs_dirent e;

		if (pos + sizeof(e) > BS)
			return pos;
		memcpy(&e, b + pos, sizeof(e));
		if (e.d_rec_len < sizeof(e) || e.d_rec_len % 8 || e.d_rec_len > BS - pos ||
		    (e.d_ino && e.d_rec_len < UFS_DIRENT_SIZE(e.d_name_len)))
			return pos;
		pos += e.d_rec_len;
	}
	return BS;
}

/*
 * salvage_dir_block() - repairs only: keep the sound records before @end,
 * make the rest of the block one free record, and give the block its
 * magic (block 0 keeps a plausible parent; pass 4 corrects it).  Names
 * lost this way leave their inodes unnamed: pass 3 reconnects them, as
 * e2fsck salvages a directory.  @b is updated to what was written.
 */
static void salvage_dir_block(struct fsck *f, uint64_t pblk, uint8_t *b, uint32_t end, bool block0)
{
	struct ufs_dirblk_hdr h;
	struct ufs_dirent fr;

	memcpy(&h, b, sizeof(h));
	h.b_magic = UFS_DIRBLK_MAGIC;
	h.b_pad = 0;
	h.b_checksum = 0;
	if (!block0 || h.b_parent >= f->ninodes)
		h.b_parent = 0;
	memcpy(b, &h, sizeof(h));
	if (end < BS) {
		memset(&fr, 0, sizeof(fr));
		fr.d_rec_len = (uint16_t)(BS - end);
		memset(b + end, 0, BS - end);
		memcpy(b + end, &fr, sizeof(fr));
	}
	fsck_write(f, pblk * BS, b, BS);
}

static void check_dir_block(struct fsck *f, struct dir_walk *d, uint64_t lblk, uint64_t pblk)
{
	uint8_t b[BS];
	struct ufs_dirblk_hdr h;
	uint32_t pos;
	const uint8_t *p = fsck_blk(f, pblk);

	if (!p)
		return;
	memcpy(b, p, BS);
	memcpy(&h, b, sizeof(h));
	if (h.b_magic != UFS_DIRBLK_MAGIC) {
		if (!fsck_problem(f, true, "directory %" PRIu64 ": block %" PRIu64 " (offset %" PRIu64
				  "): bad magic 0x%04x; salvage its records", d->dir, lblk, pblk * BS,
				  h.b_magic)) {
			if (lblk == 0)
				d->bad_block0 = true;
			f->dir_damaged = true;
			return;
		}
		salvage_dir_block(f, pblk, b, dir_chain_end(b), lblk == 0);
		memcpy(&h, b, sizeof(h));
	}
	if (dir_chain_end(b) != BS) {
		pos = dir_chain_end(b);
		if (!fsck_problem(f, true, "directory %" PRIu64 ": block %" PRIu64 " (offset %" PRIu64
				  "): record chain broken at %u; salvage the records before it",
				  d->dir, lblk, pblk * BS, pos)) {
			f->dir_damaged = true;
			return;
		}
		salvage_dir_block(f, pblk, b, pos, lblk == 0);
		memcpy(&h, b, sizeof(h));	/* what was written, parent included */
	}
	if (lblk == 0)
		d->parent = h.b_parent;
	for (pos = sizeof(h); pos < BS;) {
		struct ufs_dirent e;
		uint64_t eoff = pblk * BS + pos;
		const char *name = (const char *)b + pos + sizeof(e);

		if (pos + sizeof(e) > BS) {
			fsck_problem(f, false, "directory %" PRIu64 ": block %" PRIu64 " (offset %" PRIu64
				     "): record chain ends at %u", d->dir, lblk, pblk * BS, pos);
			f->dir_damaged = true;
			return;
		}
		memcpy(&e, b + pos, sizeof(e));
		if (e.d_rec_len < sizeof(e) || e.d_rec_len % 8 || e.d_rec_len > BS - pos ||
		    (e.d_ino && e.d_rec_len < UFS_DIRENT_SIZE(e.d_name_len))) {
			fsck_problem(f, false, "directory %" PRIu64 ": record at offset %" PRIu64
				     ": bad rec_len %u", d->dir, eoff, e.d_rec_len);
			f->dir_damaged = true;
			return;
		}
		pos += e.d_rec_len;
		if (!e.d_ino)
			continue;
		if (!name_ok(name, e.d_name_len)) {
			if (fsck_problem(f, true, "directory %" PRIu64 ": entry at offset %" PRIu64
					 ": bad name (length %u)", d->dir, eoff, e.d_name_len))
				clear_dirent(f, eoff);
			continue;
		}
		if (e.d_ino < f->ninodes && !f->istate[e.d_ino] && e.d_ino != ROOT_INO &&
		    fsck_slot_in_use(f, e.d_ino)) {
			/*
			 * Named, and its slot holds a valid inode, but the bitmap
			 * says free: the bitmap block was damaged (a zeroed one
			 * hid every inode in it).  A slot alone proves nothing
			 * (the table is valid only where the bitmap says so: an
			 * inode whose creation was rolled back stays written);
			 * a name in a sound directory does.
			 */
			if (fsck_problem(f, true, "inode bitmap: inode %" PRIu64 " (offset %" PRIu64 "), named "
					 "'%.*s' in directory %" PRIu64 ", is marked free; mark it used",
					 e.d_ino, fsck_ino_off(f, e.d_ino), e.d_name_len, name, d->dir))
				fsck_write_bit(f, f->sb.s_ibitmap_start, e.d_ino, true);
			fsck_check_inode(f, e.d_ino);
			f->adopted = true;
			if (f->istate[e.d_ino] & IS_DIR)
				f->adopted_dirs = true;
		}
		if (e.d_ino >= f->ninodes || !(f->istate[e.d_ino] & IS_ALLOC) ||
		    !(f->istate[e.d_ino] & (IS_VALID | IS_BADTREE))) {
			if (fsck_problem(f, true, "directory %" PRIu64 ": entry '%.*s' at offset %" PRIu64
					 " names inode %" PRIu64 ", which is %s", d->dir, e.d_name_len, name,
					 eoff, e.d_ino, e.d_ino >= f->ninodes ? "out of range" :
					 !(f->istate[e.d_ino] & IS_ALLOC) ? "not allocated" : "invalid"))
				clear_dirent(f, eoff);
			continue;
		}
		if (e.d_ino == ROOT_INO) {
			if (fsck_problem(f, true, "directory %" PRIu64 ": entry '%.*s' names the root",
					 d->dir, e.d_name_len, name))
				clear_dirent(f, eoff);
			continue;
		}
		if (add_name(d, name, e.d_name_len, eoff, e.d_ino))
			d->nomem = true;
	}
}

static int dir_ext_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	uint32_t i;

	for (i = 0; i < e->e_len; i++)
		check_dir_block(f, arg, e->e_lblk + i, e->e_pblk + i);
	return 0;
}

static int name_cmp(const void *a, const void *b, void *arg)
{
	const struct dname *x = a, *y = b;
	const char *arena = arg;
	int c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = memcmp(arena + x->pos, arena + y->pos, x->len);
	if (c)
		return c;
	return x->off < y->off ? -1 : x->off > y->off;
}

static void check_dir(struct fsck *f, uint64_t dir)
{
	struct ufs_dinode di;
	struct dir_walk d;
	struct tree_walk w;
	size_t i;

	memset(&d, 0, sizeof(d));
	d.dir = dir;
	d.parent = UINT64_MAX;
	fsck_read_inode(f, dir, &di);
	memset(&w, 0, sizeof(w));
	w.fn = dir_ext_fn;
	w.arg = &d;
	fsck_walk_tree(f, dir, &di, &w);
	if (d.nomem) {
		fsck_problem(f, false, "directory %" PRIu64 ": out of memory", dir);
		goto out;
	}
	/* duplicates: sort by name, the first (lowest offset) one wins */
	if (d.n)
		qsort_r(d.names, d.n, sizeof(*d.names), name_cmp, d.arena);
	for (i = 0; i < d.n; i++) {
		struct dname *n = &d.names[i];
		struct ufs_dinode ci;

		if (i > 0 && n->len == d.names[i - 1].len &&
		    !memcmp(d.arena + n->pos, d.arena + d.names[i - 1].pos, n->len)) {
			if (fsck_problem(f, true, "directory %" PRIu64 ": duplicate name '%.*s' at offset %"
					 PRIu64, dir, (int)n->len, d.arena + n->pos, n->off))
				clear_dirent(f, n->off);
			else
				f->refs[n->ino]++;	/* still there: counts as a link */
			continue;
		}
		fsck_read_inode(f, n->ino, &ci);
		{
			uint8_t dt;

			fsck_read(f, n->off + offsetof(struct ufs_dirent, d_type), &dt, 1);
			if (dt != fsck_mode_dtype(ci.i_mode)) {
				if (fsck_problem(f, true, "directory %" PRIu64 ": entry '%.*s': d_type %u, "
						 "inode %" PRIu64 " is type %u", dir, (int)n->len,
						 d.arena + n->pos, dt, n->ino, fsck_mode_dtype(ci.i_mode))) {
					dt = (uint8_t)fsck_mode_dtype(ci.i_mode);
					fsck_write(f, n->off + offsetof(struct ufs_dirent, d_type), &dt, 1);
				}
			}
		}
		f->refs[n->ino]++;
		if (f->istate[n->ino] & IS_DIR) {
			f->subdirs[dir]++;
			if (f->parent[n->ino]) {
				fsck_problem(f, false, "directory %" PRIu64 " has a second name '%.*s' in "
					     "directory %" PRIu64 " (first in %" PRIu32 ")", n->ino,
					     (int)n->len, d.arena + n->pos, dir, f->parent[n->ino]);
			} else {
				f->parent[n->ino] = (uint32_t)dir;
			}
		}
	}
	/* b_parent is checked in pass 4, once every parent is known */
	if (d.bad_block0)
		f->bparent[dir] = BPARENT_UNKNOWN;	/* not checked, never rewritten */
	else if (d.parent != UINT64_MAX)
		f->bparent[dir] = (uint32_t)dx_min(d.parent, (uint64_t)BPARENT_BAD);
	else if (dir == ROOT_INO)
		f->bparent[dir] = ROOT_INO;	/* an empty root has no block 0 (format.h) */
out:
	free(d.names);
	free(d.arena);
}

void fsck_pass2(struct fsck *f)
{
	uint64_t ino;

	fsck_verbose(f, "udaxfs: pass 2: directories");
	f->dir_checked = calloc(f->ninodes / 8 + 1, 1);
	do {
		/* a directory adopted back into the bitmap may sit before us: go again */
		f->adopted_dirs = false;
		for (ino = 1; ino < f->ninodes; ino++) {
			fsck_progress(f, "pass 2", ino, f->ninodes);
			if ((f->istate[ino] & (IS_VALID | IS_DIR)) != (IS_VALID | IS_DIR) ||
			    (f->dir_checked && bit_test(f->dir_checked, ino)))
				continue;
			if (f->dir_checked)
				bit_set(f->dir_checked, ino);
			check_dir(f, ino);
		}
	} while (f->adopted_dirs && f->dir_checked);
	free(f->dir_checked);
	f->dir_checked = NULL;
	fsck_progress(f, "pass 2", f->ninodes, f->ninodes);
}
