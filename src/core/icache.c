// SPDX-License-Identifier: MIT
/*
 * icache.c - the DRAM inode cache, inode creation and the last put that
 * evicts, the orphan list, stat and statfs.
 *
 * An inode enters the cache on first use.  It leaves it when it is evicted
 * (nlink == 0, no lookup, no open, no call in progress: its blocks and slot
 * are freed), or, for a linked regular file or symlink, as soon as nothing
 * references it and its mapping tracks no page (a directory once the
 * kernel has forgotten it).  The struct ufs_inode points straight at its
 * slot in the device mapping: every change of a dinode happens inside a
 * transaction (txn.c), so the checksum is recomputed at commit.
 *
 * An eviction that cannot finish (interrupted, recall timeout) leaves the
 * inode on the orphan list and in the cache; unmount tries again, and the
 * next mount reclaims what is still there.
 */
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufs_int.h"

static const struct dx_wait_ctx wait_forever = { .uninterruptible = true };

/* ---- the inode cache ---- */

struct ufs_dinode *ufs_dinode_ptr(struct ufs *fs, uint64_t ino)
{
	return (struct ufs_dinode *)(fs->base + ufs_inode_off(&fs->sb, ino));
}

#define IHASH_MIN	((uint64_t)1 << 10)
#define IHASH_MAX	((uint64_t)1 << 40)

static inline uint64_t ihash(struct ufs *fs, uint64_t ino)
{
	return (ino * 0x9E3779B97F4A7C15ULL >> 20) & (fs->ihash_size - 1);
}

/* Context: icache_lock held. */
static struct ufs_inode *icache_find(struct ufs *fs, uint64_t ino)
{
	struct ufs_inode *ip;

	for (ip = fs->ihash[ihash(fs, ino)]; ip; ip = ip->hnext)
		if (ip->ino == ino)
			return ip;
	return NULL;
}

/*
 * icache_resize() - rehash into @nsize buckets, so that the table follows
 * what is cached (grown past two inodes a bucket, shrunk below one in
 * eight).  A failed allocation keeps the old table: longer chains, still
 * correct.  Context: icache_lock held (the table is small next to what it
 * indexes; the allocation is not worth a retry loop outside the lock).
 */
static void icache_resize(struct ufs *fs, uint64_t nsize)
{
	struct ufs_inode **nh = calloc(nsize, sizeof(*nh)), **oh = fs->ihash, *ip, *next;
	uint64_t i, osize = fs->ihash_size;

	if (!nh)
		return;
	fs->ihash = nh;
	fs->ihash_size = nsize;
	for (i = 0; i < osize; i++) {
		for (ip = oh[i]; ip; ip = next) {
			uint64_t h = ihash(fs, ip->ino);

			next = ip->hnext;
			ip->hnext = nh[h];
			nh[h] = ip;
		}
	}
	free(oh);
}

/* Context: icache_lock held. */
static void icache_insert(struct ufs *fs, struct ufs_inode *ip)
{
	uint64_t h = ihash(fs, ip->ino);

	ip->hnext = fs->ihash[h];
	fs->ihash[h] = ip;
	ip->hashed = true;
	fs->icount++;
	if (fs->icount > 2 * fs->ihash_size && fs->ihash_size < IHASH_MAX)
		icache_resize(fs, fs->ihash_size * 2);
}

/* Context: icache_lock held. */
static void icache_remove(struct ufs *fs, struct ufs_inode *ip)
{
	struct ufs_inode **pp;

	if (!ip->hashed)
		return;
	for (pp = &fs->ihash[ihash(fs, ip->ino)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == ip) {
			*pp = ip->hnext;
			ip->hashed = false;
			fs->icount--;
			if (fs->ihash_size > IHASH_MIN && fs->icount < fs->ihash_size / 8)
				icache_resize(fs, fs->ihash_size / 2);
			return;
		}
	}
}


void ufs_icache_unhash(struct ufs_inode *ip)
{
	pthread_mutex_lock(&ip->fs->icache_lock);
	icache_remove(ip->fs, ip);
	pthread_mutex_unlock(&ip->fs->icache_lock);
}

void ufs_inew_undo(struct ufs_inode *ip)
{
	ufs_icache_unhash(ip);
	ufs_inode_free(ip);
}

struct ufs_inode *ufs_inode_alloc(struct ufs *fs, uint64_t ino)
{
	struct ufs_inode *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	ip->fs = fs;
	ip->ino = ino;
	ip->di = ufs_dinode_ptr(fs, ino);
	pthread_rwlock_init(&ip->rwsem, NULL);
	pthread_mutex_init(&ip->snap_lock, NULL);
	if (dx_mapping_init(&ip->map, fs->dax, ino)) {
		pthread_mutex_destroy(&ip->snap_lock);
		pthread_rwlock_destroy(&ip->rwsem);
		free(ip);
		return NULL;
	}
	return ip;
}

void ufs_inode_free(struct ufs_inode *ip)
{
	if (!ip)
		return;
	ufs_dix_free(ip);
	dx_mapping_destroy(&ip->map);
	pthread_mutex_destroy(&ip->snap_lock);
	pthread_rwlock_destroy(&ip->rwsem);
	free(ip);
}

int ufs_iget(struct ufs *fs, uint64_t ino, struct ufs_inode **out)
{
	struct ufs_inode *ip, *other;
	struct ufs_dinode *di;

	if (ino == 0 || ino >= fs->sb.s_inode_count)
		return -ENOENT;
	pthread_mutex_lock(&fs->icache_lock);
	ip = icache_find(fs, ino);
	if (ip && !ip->evicting) {
		ip->ref++;
		pthread_mutex_unlock(&fs->icache_lock);
		*out = ip;
		return 0;
	}
	pthread_mutex_unlock(&fs->icache_lock);
	if (ip)
		return -ENOENT;
	di = ufs_dinode_ptr(fs, ino);
	if (di->i_mode == 0)
		return -ENOENT;
	if (di->i_checksum != ufs_inode_csum(di)) {
		dx_seterr("inode %" PRIu64 " (device offset %" PRIu64 "): bad checksum",
			    ino, ufs_inode_off(&fs->sb, ino));
		return -EUCLEAN;
	}
	ip = ufs_inode_alloc(fs, ino);
	if (!ip)
		return -ENOMEM;
	pthread_mutex_lock(&fs->icache_lock);
	other = icache_find(fs, ino);
	if (other) {
		if (other->evicting) {
			pthread_mutex_unlock(&fs->icache_lock);
			ufs_inode_free(ip);
			return -ENOENT;
		}
		other->ref++;
		pthread_mutex_unlock(&fs->icache_lock);
		ufs_inode_free(ip);
		*out = other;
		return 0;
	}
	ip->ref = 1;
	icache_insert(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
	*out = ip;
	return 0;
}

void ufs_nlookup_inc(struct ufs_inode *ip)
{
	pthread_mutex_lock(&ip->fs->icache_lock);
	ip->nlookup++;
	ip->forgotten = false;
	pthread_mutex_unlock(&ip->fs->icache_lock);
}

/*
 * Freed inodes and directory indexes are many small blocks: the C library
 * keeps them for reuse and the daemon's memory would not go down after a
 * mass unlink.  Every TRIM_EVERY frees, hand what is free back to the
 * system.  Context: no lock held (it walks the whole heap).
 */
#define TRIM_EVERY 4096

static void heap_trim(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/*
 * ufs_iput_rc() - ufs_iput_ctx() that says how an eviction it started ended.
 * Context: no inode locks held.  Return: 0 (no eviction, or the inode was
 * freed), else the error of the failed eviction (the inode stays cached
 * and on the orphan list).
 */
int ufs_iput_rc(struct ufs_inode *ip, const struct dx_wait_ctx *w)
{
	struct ufs *fs;
	bool evict;
	int rc;

	if (!ip)
		return 0;
	fs = ip->fs;
	pthread_mutex_lock(&fs->icache_lock);
	UDAX_BUG_ON(ip->ref == 0);
	ip->ref--;
	/* the root is never evicted: a root with no links is corruption,
	 * refused at mount, not a file to free */
	evict = !ip->ref && !ip->nlookup && !ip->nopen && !ip->evicting &&
		ip->di->i_nlink == 0 && !fs->ro && ip->ino != UFS_ROOT_INO;
	if (evict) {
		ip->evicting = true;
		ip->ref++;
	} else if (!ip->ref && !ip->nlookup && !ip->nopen && !ip->evicting &&
		   ip->di->i_nlink && ip->ino != UFS_ROOT_INO && xa_empty(&ip->map.entries) &&
		   (!S_ISDIR(ip->di->i_mode) || ip->forgotten)) {
		/*
		 * Unused (nobody holds it) and nothing tracked: drop it from
		 * DRAM.  A directory goes, with its index, only once the kernel
		 * has forgotten it (FORGET): a caller that walks it without
		 * a lookup would otherwise rebuild the index at every call.
		 * The next use rebuilds it from the blocks; readdir cookies
		 * are block positions and stay valid.
		 */
		bool trim;

		icache_remove(fs, ip);
		trim = ++fs->freed_since_trim >= TRIM_EVERY;
		if (trim)
			fs->freed_since_trim = 0;
		pthread_mutex_unlock(&fs->icache_lock);
		ufs_inode_free(ip);
		if (trim)
			heap_trim();
		return 0;
	}
	pthread_mutex_unlock(&fs->icache_lock);
	if (!evict)
		return 0;
	rc = ufs_evict(ip, w ? w : &wait_forever);
	if (rc) {
		/* stays an orphan; retried at the next put or at unmount/mount */
		pthread_mutex_lock(&fs->icache_lock);
		ip->evicting = false;
		ip->ref--;
		pthread_mutex_unlock(&fs->icache_lock);
		return rc;
	}
	ufs_inode_free(ip);
	pthread_mutex_lock(&fs->icache_lock);
	evict = ++fs->freed_since_trim >= TRIM_EVERY;
	if (evict)
		fs->freed_since_trim = 0;
	pthread_mutex_unlock(&fs->icache_lock);
	if (evict)
		heap_trim();
	return 0;
}

void ufs_iput_ctx(struct ufs_inode *ip, const struct dx_wait_ctx *w)
{
	ufs_iput_rc(ip, w);
}

void ufs_iput(struct ufs_inode *ip)
{
	ufs_iput_ctx(ip, NULL);
}

void ufs_touch(struct ufs_inode *ip, bool a, bool m, bool c)
{
	struct ufs_dinode *di = ip->di;
	struct timespec ts;

	dx_now_ts(&ts);
	if (a) {
		di->i_atime_sec = (uint64_t)ts.tv_sec;
		di->i_atime_nsec = (uint32_t)ts.tv_nsec;
	}
	if (m) {
		di->i_mtime_sec = (uint64_t)ts.tv_sec;
		di->i_mtime_nsec = (uint32_t)ts.tv_nsec;
	}
	if (c) {
		di->i_ctime_sec = (uint64_t)ts.tv_sec;
		di->i_ctime_nsec = (uint32_t)ts.tv_nsec;
	}
}

int ufs_inew(struct ufs *fs, struct utx *t, const struct ufs_ctx *c, struct ufs_inode *dir,
	     mode_t mode, dev_t rdev, struct ufs_inode **out)
{
	struct ufs_dinode *di;
	struct ufs_inode *ip;
	struct timespec ts;
	uint64_t ino;
	int rc;

	rc = ufs_ialloc(fs->a, t->tx, &ino);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->icache_lock);
	ip = icache_find(fs, ino);
	if (ip && ip->evicting) {
		/* freed by a committed eviction that has not unhashed it yet */
		icache_remove(fs, ip);
		ip = NULL;
	}
	pthread_mutex_unlock(&fs->icache_lock);
	if (ip) {
		/* the bitmap calls a live inode free: never hand it out twice */
		dx_seterr("inode bitmap (block %" PRIu64 "): inode %" PRIu64
			    " is in use but marked free; run fsck", fs->sb.s_ibitmap_start, ino);
		return -EUCLEAN;
	}
	di = ufs_dinode_ptr(fs, ino);
	rc = utx_dinode(t, di);
	if (rc)
		return rc;
	memset(di, 0, sizeof(*di));
	di->i_uid = c->uid;
	di->i_gid = c->gid;
	if (dir && (dir->di->i_mode & S_ISGID)) {
		di->i_gid = dir->di->i_gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
		else if (c->uid != 0 && c->gid != di->i_gid && (mode & S_IXGRP))
			mode &= ~(mode_t)S_ISGID;
	}
	di->i_mode = mode;
	di->i_nlink = S_ISDIR(mode) ? 2 : 1;
	dx_now_ts(&ts);
	di->i_atime_sec = di->i_mtime_sec = di->i_ctime_sec = di->i_crtime_sec =
		(uint64_t)ts.tv_sec;
	di->i_atime_nsec = di->i_mtime_nsec = di->i_ctime_nsec = di->i_crtime_nsec =
		(uint32_t)ts.tv_nsec;
	di->i_rdev = rdev;
	di->i_generation = ++fs->gen_next;
	ufs_ext_init(di);
	ip = ufs_inode_alloc(fs, ino);
	if (!ip)
		return -ENOMEM;
	pthread_mutex_lock(&fs->icache_lock);
	UDAX_BUG_ON(icache_find(fs, ino) != NULL);	/* checked above, under the journal */
	ip->ref = 1;
	icache_insert(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
	*out = ip;
	return 0;
}

/* ---- the orphan list ---- */

struct ufs_super *ufs_primary(struct ufs *fs)
{
	return (struct ufs_super *)fs->base;
}

int ufs_orphan_add(struct utx *t, struct ufs_inode *ip)
{
	struct ufs *fs = t->fs;
	int rc;

	if (ip->di->i_flags & UFS_INODE_FL_ORPHAN)
		return 0;
	rc = utx_super(t);
	if (!rc)
		rc = utx_inode(t, ip);
	if (rc)
		return rc;
	ip->di->i_orphan_next = ufs_primary(fs)->s_orphan_head;
	ip->di->i_flags |= UFS_INODE_FL_ORPHAN;
	ufs_primary(fs)->s_orphan_head = ip->ino;
	fs->sb.s_orphan_head = ip->ino;
	return 0;
}

int ufs_orphan_del(struct utx *t, struct ufs_inode *ip)
{
	struct ufs *fs = t->fs;
	uint64_t cur, steps = 0;
	int rc;

	if (!(ip->di->i_flags & UFS_INODE_FL_ORPHAN))
		return 0;
	rc = utx_inode(t, ip);
	if (rc)
		return rc;
	if (ufs_primary(fs)->s_orphan_head == ip->ino) {
		rc = utx_super(t);
		if (rc)
			return rc;
		ufs_primary(fs)->s_orphan_head = ip->di->i_orphan_next;
		fs->sb.s_orphan_head = ip->di->i_orphan_next;
	} else {
		for (cur = ufs_primary(fs)->s_orphan_head; cur && steps < fs->sb.s_inode_count;
		     steps++) {
			struct ufs_dinode *cdi;

			if (cur >= fs->sb.s_inode_count)
				break;
			cdi = ufs_dinode_ptr(fs, cur);
			if (cdi->i_orphan_next == ip->ino) {
				rc = utx_dinode(t, cdi);
				if (rc)
					return rc;
				cdi->i_orphan_next = ip->di->i_orphan_next;
				break;
			}
			cur = cdi->i_orphan_next;
		}
	}
	ip->di->i_orphan_next = 0;
	ip->di->i_flags &= ~UFS_INODE_FL_ORPHAN;
	return 0;
}

/* ---- stat ---- */

void ufs_fill_stat(struct ufs_inode *ip, struct stat *st)
{
	struct ufs_dinode *di = ip->di;

	memset(st, 0, sizeof(*st));
	st->st_ino = ip->ino;
	st->st_mode = di->i_mode;
	st->st_nlink = di->i_nlink;
	st->st_uid = di->i_uid;
	st->st_gid = di->i_gid;
	st->st_rdev = di->i_rdev;
	st->st_size = (off_t)di->i_size;
	st->st_blksize = UFS_BLOCK_SIZE;
	st->st_blocks = (blkcnt_t)(di->i_blocks * (UFS_BLOCK_SIZE / 512));
	st->st_atim.tv_sec = (time_t)di->i_atime_sec;
	st->st_atim.tv_nsec = di->i_atime_nsec;
	st->st_mtim.tv_sec = (time_t)di->i_mtime_sec;
	st->st_mtim.tv_nsec = di->i_mtime_nsec;
	st->st_ctim.tv_sec = (time_t)di->i_ctime_sec;
	st->st_ctim.tv_nsec = di->i_ctime_nsec;
}

void ufs_fill_entry(struct ufs_inode *ip, struct ufs_entry *e)
{
	e->ino = ip->ino;
	e->generation = ip->di->i_generation;
	ufs_fill_stat(ip, &e->st);
}

int ufs_statfs(struct ufs *fs, struct statvfs *sv)
{
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = UFS_BLOCK_SIZE;
	sv->f_frsize = UFS_BLOCK_SIZE;
	sv->f_blocks = fs->sb.s_blocks_count;
	sv->f_bfree = ufs_alloc_free_blocks(fs->a);
	sv->f_bavail = sv->f_bfree;
	sv->f_files = fs->sb.s_inode_count - 1;
	sv->f_ffree = ufs_alloc_free_inodes(fs->a);
	sv->f_favail = sv->f_ffree;
	memcpy(&sv->f_fsid, fs->sb.s_uuid, sizeof(sv->f_fsid));
	sv->f_namemax = UFS_NAME_MAX;
	if (fs->ro)
		sv->f_flag |= ST_RDONLY;
	return 0;
}

uint64_t ufs_quarantined_blocks(struct ufs *fs)
{
	return fs->a ? ufs_alloc_quarantined(fs->a) : 0;
}

struct dx_media *ufs_media(struct ufs *fs)
{
	return fs->m;
}

struct dx_dax *ufs_dax(struct ufs *fs)
{
	return fs->dax;
}

uint32_t ufs_block_size(const struct ufs *fs)
{
	return fs->sb.s_block_size;
}

/* Collect every cached inode (with a reference) so they can be worked on unlocked. */
struct ufs_inode **ufs_icache_snapshot(struct ufs *fs, size_t *n)
{
	struct ufs_inode **v, *ip;
	size_t k = 0;
	uint64_t i;

	pthread_mutex_lock(&fs->icache_lock);
	v = malloc((fs->icount + 1) * sizeof(*v));
	if (v) {
		for (i = 0; i < fs->ihash_size; i++)
			for (ip = fs->ihash[i]; ip; ip = ip->hnext)
				if (!ip->evicting) {
					ip->ref++;
					v[k++] = ip;
				}
	}
	pthread_mutex_unlock(&fs->icache_lock);
	*n = k;
	return v;
}

int ufs_icache_init(struct ufs *fs)
{
	pthread_mutex_init(&fs->icache_lock, NULL);
	fs->ihash_size = IHASH_MIN;
	fs->ihash = calloc(fs->ihash_size, sizeof(*fs->ihash));
	return fs->ihash ? 0 : -ENOMEM;
}
