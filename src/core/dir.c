// SPDX-License-Identifier: MIT
/*
 * dir.c - the contents of a directory: its record blocks on media, their
 * DRAM index, and readdir over them.  The namespace operations that
 * change them are in namei.c.
 *
 * On media (format.h): 4 KiB record blocks, ext2-like chains of records;
 * "." and ".." are synthesized; the parent is in block 0's header.  Every
 * directory but a fresh root has block 0.  Blocks are never freed while
 * the directory lives, and records never move: a record's byte position
 * in the directory is its identity, which makes readdir cookies stable
 * (cookie = position + 3; 1 and 2 are "." and "..").
 *
 * In DRAM, each directory gets on first use an open-addressing hash of
 * name -> record position (names are compared on the media), the address
 * of every block, and the largest free run per block, so lookup, insert
 * and remove stay O(1) at 100k entries.
 *
 * Locking: fs->ns_lock shared for readdir and lookups, exclusive for every
 * change.  The index is built under fs->dix_lock and published once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir_int.h"

#define DIR_HDR		sizeof(struct ufs_dirblk_hdr)
#define DIR_SPACE	(UFS_BLOCK_SIZE - DIR_HDR)
#define COOKIE_BASE	3

static_assert(sizeof(struct ufs_dirblk_hdr) == 16, "dir block header is 16 bytes");
static_assert(sizeof(struct ufs_dirent) == 16, "dirent header is 16 bytes");

uint32_t ufs_name_hash(const char *name, size_t len)
{
	uint32_t h = dx_crc32c(0, name, len);

	return h ? h : 1;
}

/* ---- the DRAM index ---- */

static inline char *dix_blk(struct ufs_dix *d, uint64_t lblk)
{
	return d->blk[lblk];
}

static inline struct ufs_dirent *dix_rec(struct ufs_dix *d, uint64_t pos)
{
	return (struct ufs_dirent *)(dix_blk(d, pos >> UFS_BLOCK_SHIFT) +
				     (pos & (UFS_BLOCK_SIZE - 1)));
}

static int dix_set_cap(struct ufs_dix *d, uint32_t cap)
{
	struct ufs_dix_slot *old = d->slots, *n;
	uint32_t ocap = d->cap, i;

	n = calloc(cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	d->slots = n;
	d->cap = cap;
	d->filled = d->used;
	for (i = 0; i < ocap; i++) {
		uint32_t j;

		if (!old[i].pos || old[i].tomb)
			continue;
		for (j = old[i].hash & (cap - 1); n[j].pos; j = (j + 1) & (cap - 1))
			;
		n[j] = old[i];
	}
	free(old);
	return 0;
}

static int dix_insert(struct ufs_dix *d, uint32_t hash, uint64_t pos)
{
	uint32_t j;
	int rc;

	if ((uint64_t)(d->filled + 1) * 10 > (uint64_t)d->cap * 7) {
		rc = dix_set_cap(d, (d->used + 1) * 2 > d->cap ? d->cap * 2 : d->cap);
		if (rc)
			return rc;
	}
	for (j = hash & (d->cap - 1); d->slots[j].pos && !d->slots[j].tomb;
	     j = (j + 1) & (d->cap - 1))
		;
	if (!d->slots[j].pos)
		d->filled++;
	d->slots[j].pos = pos;
	d->slots[j].hash = hash;
	d->slots[j].tomb = 0;
	d->used++;
	return 0;
}

/* Return the slot index of @name, or -1. */
static int64_t dix_find_slot(struct ufs_dix *d, const char *name, size_t len, uint32_t hash)
{
	uint32_t j;

	for (j = hash & (d->cap - 1); d->slots[j].pos; j = (j + 1) & (d->cap - 1)) {
		struct ufs_dirent *r;

		if (d->slots[j].tomb || d->slots[j].hash != hash)
			continue;
		r = dix_rec(d, d->slots[j].pos);
		if (r->d_name_len == len && !memcmp(r->d_name, name, len))
			return j;
	}
	return -1;
}

static void dix_remove_slot(struct ufs_dix *d, int64_t j)
{
	d->slots[j].tomb = 1;
	d->used--;
}

/* Largest record that fits in the block at @b. */
static uint16_t block_room(char *b)
{
	uint32_t off = DIR_HDR, best = 0;

	while (off < UFS_BLOCK_SIZE) {
		struct ufs_dirent *r = (struct ufs_dirent *)(b + off);
		uint32_t free = r->d_ino ? r->d_rec_len - UFS_DIRENT_SIZE(r->d_name_len)
					 : r->d_rec_len;

		if (free > best)
			best = free;
		off += r->d_rec_len;
	}
	return (uint16_t)best;
}

static int dir_corrupt(struct ufs_inode *dir, uint64_t lblk, uint32_t off, const char *what)
{
	dx_seterr("directory inode %llu, block %llu, offset %u: %s",
		    (unsigned long long)dir->ino, (unsigned long long)lblk, off, what);
	return -EUCLEAN;
}

static int dix_add_block(struct ufs_dix *d, char *ptr)
{
	if (d->nblocks == d->blk_cap) {
		size_t cap = d->blk_cap ? d->blk_cap * 2 : 8;
		char **n = realloc(d->blk, cap * sizeof(*n));
		uint16_t *r = realloc(d->room, cap * sizeof(*r));

		if (n)
			d->blk = n;
		if (r)
			d->room = r;
		if (!n || !r)
			return -ENOMEM;
		d->blk_cap = cap;
	}
	d->blk[d->nblocks] = ptr;
	d->room[d->nblocks] = block_room(ptr);
	d->nblocks++;
	return 0;
}

static int dix_build(struct ufs_inode *dir, struct ufs_dix **out)
{
	struct ufs *fs = dir->fs;
	uint64_t nblocks = dir->di->i_size >> UFS_BLOCK_SHIFT, lblk;
	struct ufs_dix *d;
	int rc;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	rc = dix_set_cap(d, 64);
	if (rc)
		goto fail;
	for (lblk = 0; lblk < nblocks; lblk++) {
		struct ufs_dirblk_hdr *h;
		struct ufs_extent e;
		uint32_t off;
		char *b;

		rc = ufs_ext_find(dir, lblk, &e);
		if (rc < 0)
			goto fail;
		if (rc != 1) {
			rc = dir_corrupt(dir, lblk, 0, "hole in a directory");
			goto fail;
		}
		b = ufs_blk(fs, e.e_pblk + (lblk - e.e_lblk));
		h = (struct ufs_dirblk_hdr *)b;
		if (h->b_magic != UFS_DIRBLK_MAGIC) {
			rc = dir_corrupt(dir, lblk, 0, "bad block magic");
			goto fail;
		}
		for (off = DIR_HDR; off < UFS_BLOCK_SIZE;) {
			struct ufs_dirent *r = (struct ufs_dirent *)(b + off);

			if (r->d_rec_len < sizeof(*r) || r->d_rec_len % 8 ||
			    off + r->d_rec_len > UFS_BLOCK_SIZE ||
			    (r->d_ino && UFS_DIRENT_SIZE(r->d_name_len) > r->d_rec_len)) {
				rc = dir_corrupt(dir, lblk, off, "bad record");
				goto fail;
			}
			if (r->d_ino) {
				rc = dix_insert(d, ufs_name_hash(r->d_name, r->d_name_len),
						(lblk << UFS_BLOCK_SHIFT) + off);
				if (rc)
					goto fail;
			}
			off += r->d_rec_len;
		}
		rc = dix_add_block(d, b);
		if (rc)
			goto fail;
	}
	*out = d;
	return 0;
fail:
	ufs_dix_destroy(d);
	return rc;
}

static int dix_get(struct ufs_inode *dir, struct ufs_dix **out)
{
	struct ufs_dix *d = __atomic_load_n(&dir->dix, __ATOMIC_ACQUIRE);
	int rc = 0;

	if (d) {
		*out = d;
		return 0;
	}
	pthread_mutex_lock(&dir->fs->dix_lock);
	d = dir->dix;
	if (!d) {
		rc = dix_build(dir, &d);
		if (!rc)
			__atomic_store_n(&dir->dix, d, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&dir->fs->dix_lock);
	*out = d;
	return rc;
}

/* Position of @name in @dir, 0 if absent.  Context: ns_lock held. */
int ufs_dir_find(struct ufs_inode *dir, const char *name, uint64_t *pos)
{
	size_t len = strlen(name);
	struct ufs_dix *d;
	int64_t j;
	int rc;

	rc = dix_get(dir, &d);
	if (rc)
		return rc;
	j = dix_find_slot(d, name, len, ufs_name_hash(name, len));
	*pos = j < 0 ? 0 : d->slots[j].pos;
	return 0;
}

/* ---- records on media ---- */

uint64_t ufs_dir_parent(struct ufs_inode *dir)
{
	struct ufs_extent e;

	if (dir->di->i_size && ufs_ext_find(dir, 0, &e) == 1) {
		struct ufs_dirblk_hdr *h = ufs_blk(dir->fs, e.e_pblk);

		if (h->b_magic == UFS_DIRBLK_MAGIC && h->b_parent)
			return h->b_parent;
	}
	return UFS_ROOT_INO;
}

static struct ufs_dirblk_hdr *dir_hdr0(struct ufs_inode *dir)
{
	struct ufs_extent e;

	if (!dir->di->i_size || ufs_ext_find(dir, 0, &e) != 1)
		return NULL;
	return ufs_blk(dir->fs, e.e_pblk);
}

/* Append a fresh record block to @dir.  Context: in @t, ns_lock exclusive. */
static int dir_grow(struct utx *t, struct ufs_inode *dir, uint64_t parent)
{
	struct ufs *fs = t->fs;
	uint64_t lblk = dir->di->i_size >> UFS_BLOCK_SHIFT;
	struct ufs_dirblk_hdr *h;
	struct ufs_dirent *r;
	struct ufs_extent e;
	int64_t got;
	int rc;

	rc = utx_inode(t, dir);
	if (rc)
		return rc;
	got = ufs_ext_alloc(t, dir, lblk, 1, 0, 0);
	if (got < 0)
		return (int)got;
	if (got == 0)
		return -ENOSPC;
	rc = ufs_ext_find(dir, lblk, &e);
	if (rc != 1)
		return rc < 0 ? rc : -EIO;
	h = ufs_blk(fs, e.e_pblk + (lblk - e.e_lblk));
	h->b_magic = UFS_DIRBLK_MAGIC;
	h->b_parent = lblk ? 0 : parent;
	r = (struct ufs_dirent *)(h + 1);
	r->d_ino = 0;
	r->d_rec_len = DIR_SPACE;
	dx_media_persist(fs->m, h, DIR_HDR + sizeof(*r));
	dir->di->i_size += UFS_BLOCK_SIZE;
	if (dir->dix)
		return dix_add_block(dir->dix, (char *)h);
	return 0;
}

int ufs_dir_init(struct utx *t, struct ufs_inode *dir, uint64_t parent)
{
	return dir_grow(t, dir, parent);
}

int ufs_dir_set_parent(struct utx *t, struct ufs_inode *dir, uint64_t parent)
{
	struct ufs_dirblk_hdr *h = dir_hdr0(dir);
	int rc;

	if (!h)
		return dir_grow(t, dir, parent);
	rc = utx_add(t, h, DIR_HDR);
	if (rc)
		return rc;
	h->b_parent = parent;
	return 0;
}

/* Add a record.  Context: in @t, ns_lock exclusive, name absent. */
int ufs_dir_add(struct utx *t, struct ufs_inode *dir, const char *name, uint64_t ino,
		uint8_t type)
{
	size_t len = strlen(name);
	uint32_t need = UFS_DIRENT_SIZE(len), hash = ufs_name_hash(name, len), off, i;
	struct ufs_dirent *r, *n;
	struct ufs_dix *d;
	uint64_t lblk = 0;
	char *b;
	int rc;

	if (!dir->di->i_size) {
		rc = dir_grow(t, dir, dir->ino == UFS_ROOT_INO ? UFS_ROOT_INO : dir->ino);
		if (rc)
			return rc;
	}
	rc = dix_get(dir, &d);
	if (rc)
		return rc;
	for (i = 0; i < d->nblocks; i++) {
		lblk = (d->room_cursor + i) % d->nblocks;
		if (d->room[lblk] >= need)
			break;
	}
	if (i == d->nblocks) {
		rc = dir_grow(t, dir, 0);
		if (rc)
			return rc;
		lblk = d->nblocks - 1;
	}
	d->room_cursor = (uint32_t)lblk;
	b = dix_blk(d, lblk);
	for (off = DIR_HDR; off < UFS_BLOCK_SIZE; off += r->d_rec_len) {
		uint32_t used;

		r = (struct ufs_dirent *)(b + off);
		used = r->d_ino ? UFS_DIRENT_SIZE(r->d_name_len) : 0;
		if (r->d_rec_len - used < need)
			continue;
		rc = utx_add(t, r, sizeof(*r));
		if (rc)
			return rc;
		if (used) {
			n = (struct ufs_dirent *)((char *)r + used);
			rc = utx_add(t, n, need);
			if (rc)
				return rc;
			n->d_rec_len = (uint16_t)(r->d_rec_len - used);
			r->d_rec_len = (uint16_t)used;
			off += used;
		} else {
			n = r;
			rc = utx_add(t, n, need);
			if (rc)
				return rc;
		}
		n->d_ino = ino;
		n->d_name_len = (uint8_t)len;
		n->d_type = type;
		n->d_hash = hash;
		memcpy(n->d_name, name, len);
		d->room[lblk] = block_room(b);
		return dix_insert(d, hash, (lblk << UFS_BLOCK_SHIFT) + off);
	}
	return dir_corrupt(dir, lblk, 0, "room index out of date");
}

/* Remove the record at @pos.  Context: in @t, ns_lock exclusive. */
int ufs_dir_remove(struct utx *t, struct ufs_inode *dir, uint64_t pos)
{
	struct ufs_dix *d = dir->dix;
	uint64_t lblk = pos >> UFS_BLOCK_SHIFT;
	uint32_t off = pos & (UFS_BLOCK_SIZE - 1), o;
	struct ufs_dirent *r = dix_rec(d, pos), *prev = NULL;
	char *b = dix_blk(d, lblk);
	int64_t j;
	int rc;

	j = dix_find_slot(d, r->d_name, r->d_name_len, ufs_name_hash(r->d_name, r->d_name_len));
	UDAX_BUG_ON(j < 0 || d->slots[j].pos != pos);
	for (o = DIR_HDR; o < off; o += ((struct ufs_dirent *)(b + o))->d_rec_len)
		prev = (struct ufs_dirent *)(b + o);
	if (prev) {
		rc = utx_add(t, prev, sizeof(*prev));
		if (rc)
			return rc;
		prev->d_rec_len += r->d_rec_len;
	} else {
		rc = utx_add(t, r, sizeof(*r));
		if (rc)
			return rc;
		r->d_ino = 0;
	}
	dix_remove_slot(d, j);
	d->room[lblk] = block_room(b);
	return 0;
}

int ufs_dir_set_ino(struct utx *t, struct ufs_inode *dir, uint64_t pos, uint64_t ino,
		    uint8_t type)
{
	struct ufs_dirent *r = dix_rec(dir->dix, pos);
	int rc = utx_add(t, r, sizeof(*r));

	if (rc)
		return rc;
	r->d_ino = ino;
	r->d_type = type;
	return 0;
}

bool ufs_dir_empty(struct ufs_inode *dir)
{
	struct ufs_dix *d;

	if (dix_get(dir, &d))
		return false;
	return d->used == 0;
}

uint64_t ufs_dir_ino(struct ufs_inode *dir, uint64_t pos)
{
	return dix_rec(dir->dix, pos)->d_ino;
}

/* Get a directory that can take new names.  Context: ns_lock held. */
int ufs_dir_get(struct ufs *fs, uint64_t ino, struct ufs_inode **out)
{
	struct ufs_inode *dir;
	int rc = ufs_iget(fs, ino, &dir);

	if (rc)
		return rc;
	if (!ufs_isdir(dir)) {
		ufs_iput(dir);
		return -ENOTDIR;
	}
	*out = dir;
	return 0;
}

int ufs_readdir(struct ufs *fs, uint64_t dino, uint64_t off, bool plus,
		ufs_fill_t fill, void *arg)
{
	struct ufs_inode *dir;
	struct ufs_entry e;
	struct ufs_dix *d;
	uint64_t start, lblk;
	int rc;

	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = ufs_dir_get(fs, dino, &dir);
	if (rc)
		goto out;
	rc = dix_get(dir, &d);
	if (rc)
		goto out_dir;
	memset(&e, 0, sizeof(e));
	e.st.st_mode = S_IFDIR;
	if (off == 0) {
		e.st.st_ino = dir->ino;
		if (fill(arg, ".", &e, 1))
			goto out_dir;
	}
	if (off <= 1) {
		e.st.st_ino = ufs_dir_parent(dir);
		if (fill(arg, "..", &e, 2))
			goto out_dir;
	}
	start = off >= COOKIE_BASE ? off - COOKIE_BASE : 0;
	for (lblk = start >> UFS_BLOCK_SHIFT; lblk < d->nblocks; lblk++) {
		char *b = dix_blk(d, lblk);
		uint32_t o;

		for (o = DIR_HDR; o < UFS_BLOCK_SIZE; o += ((struct ufs_dirent *)(b + o))->d_rec_len) {
			struct ufs_dirent *r = (struct ufs_dirent *)(b + o);
			uint64_t pos = (lblk << UFS_BLOCK_SHIFT) + o;
			struct ufs_inode *ip = NULL;
			char name[UFS_NAME_MAX + 1];

			if (!r->d_ino || pos < start)
				continue;
			memcpy(name, r->d_name, r->d_name_len);
			name[r->d_name_len] = 0;
			memset(&e, 0, sizeof(e));
			if (plus) {
				rc = ufs_iget(fs, r->d_ino, &ip);
				if (rc)
					goto out_dir;
				ufs_nlookup_inc(ip);
				ufs_fill_entry(ip, &e);
			} else {
				e.ino = r->d_ino;
				e.st.st_ino = r->d_ino;
				e.st.st_mode = (mode_t)r->d_type << 12;
			}
			if (fill(arg, name, &e, pos + COOKIE_BASE + 1)) {
				if (ip) {
					pthread_mutex_lock(&fs->icache_lock);
					ip->nlookup--;
					pthread_mutex_unlock(&fs->icache_lock);
					ufs_iput(ip);
				}
				goto out_dir;
			}
			ufs_iput(ip);
		}
	}
out_dir:
	ufs_iput(dir);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int ufs_fsyncdir(struct ufs *fs, uint64_t dir)
{
	(void)dir;
	dx_media_drain(fs->m);
	return 0;
}
