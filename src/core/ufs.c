// SPDX-License-Identifier: MIT
/*
 * ufs.c - mount/unmount, the transaction wrapper, the DRAM inode cache,
 * inode creation and eviction, the orphan list, statfs.
 *
 * An inode enters the cache on first use.  It leaves it when it is evicted
 * (nlink == 0, no lookup, no open, no call in progress: its blocks and slot
 * are freed), or, for a linked regular file or symlink, as soon as nothing
 * references it and its mapping tracks no page (directories stay, with
 * their index, until unmount).  The struct ufs_inode points straight at its
 * slot in the device mapping: every change of a dinode happens inside a
 * transaction (only one runs at a time, under the journal mutex), so the
 * checksum is recomputed at commit.
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

static const struct udax_wait_ctx wait_forever = { .uninterruptible = true };

/* ---- transactions ---- */

int utx_begin(struct ufs *fs, struct utx *t)
{
	memset(t, 0, sizeof(*t));
	t->fs = fs;
	if (fs->ro)
		return -EROFS;
	t->tx = ufs_tx_begin(fs->j);
	if (!t->tx)
		return -ENOMEM;
	return 0;
}

int utx_add(struct utx *t, void *ptr, size_t len)
{
	return ufs_tx_add(t->tx, ptr, len);
}

int utx_dinode(struct utx *t, struct ufs_dinode *di)
{
	unsigned int i;
	int rc;

	for (i = 0; i < t->ndinodes; i++)
		if (t->dinodes[i] == di)
			return 0;
	UDAX_BUG_ON(t->ndinodes == UDAX_ARRAY_SIZE(t->dinodes));
	rc = ufs_tx_add(t->tx, di, sizeof(*di));
	if (rc)
		return rc;
	t->dinodes[t->ndinodes++] = di;
	return 0;
}

static int utx_node_rec(struct utx *t, uint64_t blk, bool log)
{
	int rc;

	if (t->nblks && t->blks[t->nblks - 1] == blk)
		return 0;
	if (log) {
		rc = ufs_tx_add(t->tx, ufs_blk(t->fs, blk), UFS_BLOCK_SIZE);
		if (rc)
			return rc;
	}
	if (t->nblks == t->capblks) {
		size_t cap = t->capblks ? t->capblks * 2 : 16;
		uint64_t *n = realloc(t->blks, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->blks = n;
		t->capblks = cap;
	}
	t->blks[t->nblks++] = blk;
	return 0;
}

int utx_node(struct utx *t, uint64_t blk)
{
	return utx_node_rec(t, blk, true);
}

int utx_node_fresh(struct utx *t, uint64_t blk)
{
	return utx_node_rec(t, blk, false);
}

int utx_super(struct utx *t)
{
	int rc;

	if (t->super)
		return 0;
	rc = ufs_tx_add(t->tx, t->fs->base, sizeof(struct ufs_super));
	if (!rc)
		t->super = true;
	return rc;
}

size_t utx_room(struct utx *t)
{
	return ufs_tx_room(t->tx);
}

uint32_t ufs_node_csum(const void *blk)
{
	static const uint8_t zero[4];
	const char *b = blk;
	uint32_t crc;

	crc = udax_crc32c(0, b, offsetof(struct ufs_extent_hdr, h_checksum));
	crc = udax_crc32c(crc, zero, 4);
	return udax_crc32c(crc, b + offsetof(struct ufs_extent_hdr, h_pad),
			   UFS_BLOCK_SIZE - offsetof(struct ufs_extent_hdr, h_pad));
}

uint32_t ufs_dinode_csum(const struct ufs_dinode *di)
{
	return ufs_inode_csum(di);
}

void utx_commit(struct utx *t)
{
	unsigned int i;
	size_t k;

	for (i = 0; i < t->ndinodes; i++)
		t->dinodes[i]->i_checksum = ufs_inode_csum(t->dinodes[i]);
	for (k = 0; k < t->nblks; k++) {
		struct ufs_extent_hdr *h = ufs_blk(t->fs, t->blks[k]);

		if (h->h_magic == UFS_EXT_MAGIC)
			h->h_checksum = ufs_node_csum(h);
		/* fresh nodes were not logged, so the journal will not flush them */
		udax_media_flush(t->fs->m, h, UFS_BLOCK_SIZE);
	}
	if (t->nblks)
		udax_media_drain(t->fs->m);
	if (t->super) {
		struct ufs_super *p = (struct ufs_super *)t->fs->base;

		p->s_checksum = ufs_super_csum(p);
	}
	ufs_tx_commit(t->tx);
	free(t->blks);
	t->tx = NULL;
	t->blks = NULL;
}

void utx_abort(struct utx *t)
{
	if (t->tx)
		ufs_tx_abort(t->tx);
	free(t->blks);
	t->tx = NULL;
	t->blks = NULL;
}

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

static void inode_free(struct ufs_inode *ip);

void ufs_icache_unhash(struct ufs_inode *ip)
{
	pthread_mutex_lock(&ip->fs->icache_lock);
	icache_remove(ip->fs, ip);
	pthread_mutex_unlock(&ip->fs->icache_lock);
}

void ufs_inew_undo(struct ufs_inode *ip)
{
	ufs_icache_unhash(ip);
	inode_free(ip);
}

static struct ufs_inode *inode_alloc(struct ufs *fs, uint64_t ino)
{
	struct ufs_inode *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	ip->fs = fs;
	ip->ino = ino;
	ip->di = ufs_dinode_ptr(fs, ino);
	pthread_rwlock_init(&ip->rwsem, NULL);
	pthread_mutex_init(&ip->snap_lock, NULL);
	if (udax_mapping_init(&ip->map, fs->dax, ino)) {
		pthread_mutex_destroy(&ip->snap_lock);
		pthread_rwlock_destroy(&ip->rwsem);
		free(ip);
		return NULL;
	}
	return ip;
}

static void inode_free(struct ufs_inode *ip)
{
	if (!ip)
		return;
	ufs_dix_free(ip);
	udax_mapping_destroy(&ip->map);
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
		udax_seterr("inode %" PRIu64 " (device offset %" PRIu64 "): bad checksum",
			    ino, ufs_inode_off(&fs->sb, ino));
		return -EUCLEAN;
	}
	ip = inode_alloc(fs, ino);
	if (!ip)
		return -ENOMEM;
	pthread_mutex_lock(&fs->icache_lock);
	other = icache_find(fs, ino);
	if (other) {
		if (other->evicting) {
			pthread_mutex_unlock(&fs->icache_lock);
			inode_free(ip);
			return -ENOENT;
		}
		other->ref++;
		pthread_mutex_unlock(&fs->icache_lock);
		inode_free(ip);
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
 * malloc_trim() gives back the free pages inside the heaps, but not the
 * free top of a worker thread's arena: the C library keeps that up to its
 * trim threshold, which it raises (up to 64 MiB) each time a large block
 * it had mapped is freed (a big directory's index, a request buffer).
 * After a mass unlink in a big directory about 10 MB stayed resident that
 * way.  Fixing the threshold at its default also stops the raising.
 * Context: at mount (process-wide, idempotent).
 */
static void heap_policy(void)
{
#ifdef __GLIBC__
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
}

/*
 * iput_rc() - ufs_iput_ctx() that says how an eviction it started ended.
 * Context: no inode locks held.  Return: 0 (no eviction, or the inode was
 * freed), else the error of the failed eviction (the inode stays cached
 * and on the orphan list).
 */
static int iput_rc(struct ufs_inode *ip, const struct udax_wait_ctx *w)
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
		inode_free(ip);
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
	inode_free(ip);
	pthread_mutex_lock(&fs->icache_lock);
	evict = ++fs->freed_since_trim >= TRIM_EVERY;
	if (evict)
		fs->freed_since_trim = 0;
	pthread_mutex_unlock(&fs->icache_lock);
	if (evict)
		heap_trim();
	return 0;
}

void ufs_iput_ctx(struct ufs_inode *ip, const struct udax_wait_ctx *w)
{
	iput_rc(ip, w);
}

void ufs_iput(struct ufs_inode *ip)
{
	ufs_iput_ctx(ip, NULL);
}

void ufs_touch(struct ufs_inode *ip, bool a, bool m, bool c)
{
	struct ufs_dinode *di = ip->di;
	struct timespec ts;

	udax_now_ts(&ts);
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
		udax_seterr("inode bitmap (block %" PRIu64 "): inode %" PRIu64
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
	udax_now_ts(&ts);
	di->i_atime_sec = di->i_mtime_sec = di->i_ctime_sec = di->i_crtime_sec =
		(uint64_t)ts.tv_sec;
	di->i_atime_nsec = di->i_mtime_nsec = di->i_ctime_nsec = di->i_crtime_nsec =
		(uint32_t)ts.tv_nsec;
	di->i_rdev = rdev;
	di->i_generation = ++fs->gen_next;
	ufs_ext_init(di);
	ip = inode_alloc(fs, ino);
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

static struct ufs_super *primary(struct ufs *fs)
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
	ip->di->i_orphan_next = primary(fs)->s_orphan_head;
	ip->di->i_flags |= UFS_INODE_FL_ORPHAN;
	primary(fs)->s_orphan_head = ip->ino;
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
	if (primary(fs)->s_orphan_head == ip->ino) {
		rc = utx_super(t);
		if (rc)
			return rc;
		primary(fs)->s_orphan_head = ip->di->i_orphan_next;
		fs->sb.s_orphan_head = ip->di->i_orphan_next;
	} else {
		for (cur = primary(fs)->s_orphan_head; cur && steps < fs->sb.s_inode_count;
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

struct udax_media *ufs_media(struct ufs *fs)
{
	return fs->m;
}

struct udax_dax *ufs_dax(struct ufs *fs)
{
	return fs->dax;
}

uint32_t ufs_block_size(const struct ufs *fs)
{
	return fs->sb.s_block_size;
}

/* ---- mount / unmount ---- */

static void fs_log(struct ufs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fs_log(struct ufs *fs, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (fs->log)
		fs->log(fs->log_arg, buf);
	else
		fprintf(stderr, "udaxfs: %s\n", buf);
}

/* Cut the orphan list (it points somewhere it should not): fsck reclaims the rest. */
static int orphans_cut(struct ufs *fs, uint64_t ino, const char *why)
{
	struct utx t;
	int rc;

	fs_log(fs, "orphan list: inode %" PRIu64 " %s; list truncated (run fsck)", ino, why);
	rc = utx_begin(fs, &t);
	if (!rc)
		rc = utx_super(&t);
	if (rc) {
		utx_abort(&t);
		return rc;
	}
	primary(fs)->s_orphan_head = 0;
	fs->sb.s_orphan_head = 0;
	utx_commit(&t);
	return 0;
}

/* What the orphans that orphans_reclaim() would evict give back. */
struct orphan_claim {
	uint64_t pblk, len, ino;
};

struct orphan_claims {
	struct ufs *fs;
	uint64_t ino;			/* the orphan being checked */
	struct orphan_claim *v;
	size_t n, cap;
};

/* An eviction frees each of these blocks: they must be allocated now. */
static int orphan_claim(void *arg, uint64_t pblk, uint64_t len)
{
	struct orphan_claims *c = arg;
	uint64_t b = ufs_alloc_first_free(c->fs->a, pblk, len);

	if (b - pblk < len) {
		udax_seterr("inode %" PRIu64 " holds block %" PRIu64 ", which is free in the "
			    "block bitmap", c->ino, b);
		return -EUCLEAN;
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct orphan_claim *nv = realloc(c->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = ncap;
	}
	c->v[c->n].pblk = pblk;
	c->v[c->n].len = len;
	c->v[c->n].ino = c->ino;
	c->n++;
	return 0;
}

static int cmp_claim(const void *x, const void *y)
{
	const struct orphan_claim *a = x, *b = y;

	return a->pblk < b->pblk ? -1 : a->pblk > b->pblk;
}

/* One block given back twice (two orphans, or one orphan twice, hold it):
 * the second free would find it free and stop the reclaim half way. */
static int orphan_claims_disjoint(struct orphan_claims *c)
{
	size_t i;

	qsort(c->v, c->n, sizeof(*c->v), cmp_claim);
	for (i = 1; i < c->n; i++) {
		if (c->v[i].pblk - c->v[i - 1].pblk < c->v[i - 1].len) {
			udax_seterr("inodes %" PRIu64 " and %" PRIu64 " both hold block %" PRIu64,
				    c->v[i - 1].ino, c->v[i].ino, c->v[i].pblk);
			return -EUCLEAN;
		}
	}
	return 0;
}

/* What orphans_reclaim() will free of one unlinked orphan, claimed in @c. */
static int orphan_check_one(struct ufs *fs, uint64_t ino, struct ufs_dinode *di,
			    struct orphan_claims *c)
{
	struct ufs_inode *ip;
	int rc = 0;

	c->ino = ino;
	if (ufs_alloc_itest(fs->a, ino) != 1) {
		udax_seterr("inode %" PRIu64 " is free in the inode bitmap", ino);
		return -EUCLEAN;
	}
	if (di->i_xattr_block) {
		if (!ufs_data_range(&fs->sb, di->i_xattr_block, 1)) {
			udax_seterr("inode %" PRIu64 ": xattr block %" PRIu64 " outside the data "
				    "area", ino, di->i_xattr_block);
			return -EUCLEAN;
		}
		rc = orphan_claim(c, di->i_xattr_block, 1);
		if (rc)
			return rc;
	}
	if (di->i_flags & UFS_INODE_FL_INLINE_SYMLINK)
		return 0;	/* i_u holds the target, not an extent root */
	/* a private handle: ufs_iget()/ufs_iput() would evict it */
	ip = inode_alloc(fs, ino);
	if (!ip)
		return -ENOMEM;
	rc = ufs_ext_check_blocks(ip, orphan_claim, c);
	inode_free(ip);
	return rc;
}

/*
 * orphans_precheck() - walk the orphan list without writing: every inode
 * that orphans_reclaim() would evict must be one that its eviction can
 * free completely (a sound extent tree; its slot, tree, data and xattr
 * blocks allocated in the bitmaps; no block held twice), or the eviction
 * would stop half way and refuse the mount after freeing blocks.
 * A list that points somewhere it should not is not a refusal (reclaim
 * cuts it and leaves the rest to fsck); nor is a loop: reclaim meets an
 * inode it has already evicted or taken off the list, and cuts there.
 * Context: mount, nothing else running.  Return: 0, -ENOMEM or -EUCLEAN
 * (message set).
 */
static int orphans_precheck(struct ufs *fs)
{
	struct orphan_claims c = { .fs = fs };
	uint64_t ino = fs->sb.s_orphan_head;
	uint8_t *seen;
	int rc = 0;

	if (!ino)
		return 0;
	seen = calloc((fs->sb.s_inode_count + 7) / 8, 1);
	if (!seen)
		return -ENOMEM;
	while (ino && ino < fs->sb.s_inode_count && !(seen[ino / 8] & (1u << (ino % 8)))) {
		struct ufs_dinode *di = ufs_dinode_ptr(fs, ino);

		seen[ino / 8] |= (uint8_t)(1u << (ino % 8));
		if (!di->i_mode || di->i_checksum != ufs_inode_csum(di) ||
		    !(di->i_flags & UFS_INODE_FL_ORPHAN))
			break;	/* reclaim cuts the list here */
		if (!di->i_nlink) {
			rc = orphan_check_one(fs, ino, di, &c);
			if (rc)
				break;
		}
		ino = di->i_orphan_next;
	}
	if (!rc)
		rc = orphan_claims_disjoint(&c);
	if (rc == -EUCLEAN) {
		char why[400];

		snprintf(why, sizeof(why), "%s", udax_errmsg());
		udax_seterr("orphan list: %s (run fsck)", why);
	}
	free(c.v);
	free(seen);
	return rc;
}

/*
 * replayed_super_check() - a journal record may have rewritten the primary
 * superblock: it must still be valid and describe the same file system as
 * the copy the mount loaded before the replay.
 * Context: mount, after ufs_journal_replay().  Return: 0 or -EUCLEAN.
 */
static int replayed_super_check(struct ufs *fs, bool backup)
{
	struct ufs_super now;
	bool now_backup = false;
	int rc;

	if (backup)
		return 0;	/* the mount reads the backup; the primary is rewritten later */
	rc = ufs_super_load(fs->m, &now, &now_backup);
	if (rc || now_backup ||
	    now.s_blocks_count != fs->sb.s_blocks_count || now.s_inode_count != fs->sb.s_inode_count ||
	    now.s_journal_start != fs->sb.s_journal_start ||
	    now.s_journal_blocks != fs->sb.s_journal_blocks ||
	    now.s_ibitmap_start != fs->sb.s_ibitmap_start ||
	    now.s_bbitmap_start != fs->sb.s_bbitmap_start ||
	    now.s_itable_start != fs->sb.s_itable_start || now.s_data_start != fs->sb.s_data_start) {
		udax_seterr("superblock (device offset 0): the journal's rollback leaves it %s",
			    rc || now_backup ? "invalid" : "describing another geometry");
		return -EUCLEAN;
	}
	return 0;
}

/* Free the inodes left on the orphan list by a crash (or a busy unmount). */
static int orphans_reclaim(struct ufs *fs)
{
	uint64_t n = 0;

	while (fs->sb.s_orphan_head) {
		uint64_t ino = fs->sb.s_orphan_head;
		struct ufs_inode *ip;
		int rc;

		if (++n > fs->sb.s_inode_count)
			return orphans_cut(fs, ino, "is part of a loop");
		rc = ufs_iget(fs, ino, &ip);
		if (rc)
			return orphans_cut(fs, ino, "cannot be read");
		if (!(ip->di->i_flags & UFS_INODE_FL_ORPHAN)) {
			ufs_iput(ip);
			return orphans_cut(fs, ino, "is not marked as an orphan");
		}
		if (ip->di->i_nlink) {
			struct utx t;

			/* linked again before the crash: just take it off the list */
			rc = utx_begin(fs, &t);
			if (!rc)
				rc = ufs_orphan_del(&t, ip);
			if (rc) {
				utx_abort(&t);
				ufs_iput(ip);
				return rc;
			}
			utx_commit(&t);
			ufs_iput(ip);
			continue;
		}
		pthread_mutex_lock(&fs->icache_lock);
		ip->evicting = true;
		pthread_mutex_unlock(&fs->icache_lock);
		rc = ufs_evict(ip, &wait_forever);
		if (rc)
			return rc;
		inode_free(ip);
	}
	if (n)
		fs_log(fs, "reclaimed %" PRIu64 " orphan inode%s", n, n == 1 ? "" : "s");
	return 0;
}

static void fs_free(struct ufs *fs)
{
	uint64_t i;

	if (!fs)
		return;
	if (fs->ihash) {
		for (i = 0; i < fs->ihash_size; i++) {
			while (fs->ihash[i]) {
				struct ufs_inode *ip = fs->ihash[i];

				fs->ihash[i] = ip->hnext;
				inode_free(ip);
			}
		}
		free(fs->ihash);
	}
	ufs_alloc_close(&fs->a);
	ufs_journal_close(&fs->j);
	udax_dax_delete(&fs->dax);
	pthread_rwlock_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->dix_lock);
	pthread_mutex_destroy(&fs->icache_lock);
	free(fs);
}

int ufs_mount(struct ufs **out, struct udax_media *m, const struct ufs_mount_opts *o)
{
	static const struct ufs_mount_opts defaults;
	struct udax_dax_opts dopts;
	struct ufs_journal_undo *undo = NULL;
	struct ufs_inode *root;
	struct ufs *fs;
	bool backup = false;
	int rc, replayed = 0;

	if (!o)
		o = &defaults;
	*out = NULL;
	heap_policy();
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->m = m;
	fs->base = udax_media_base(m);
	fs->log = o->log;
	fs->log_arg = o->log_arg;
	fs->ro = o->readonly || udax_media_readonly(m);
	pthread_rwlock_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->dix_lock, NULL);
	pthread_mutex_init(&fs->icache_lock, NULL);
	fs->ihash_size = IHASH_MIN;
	fs->ihash = calloc(fs->ihash_size, sizeof(*fs->ihash));
	if (!fs->ihash) {
		rc = -ENOMEM;
		goto out_free;
	}

	rc = ufs_super_load(m, &fs->sb, &backup);
	if (rc)
		goto out_free;
	if (backup)
		fs_log(fs, "primary superblock unusable (%s); using the backup at block %" PRIu64,
		       udax_errmsg(), fs->sb.s_blocks_count - 1);
	if (fs->sb.s_feat_ro_compat & ~UFS_FEAT_RO_COMPAT_SUPPORTED) {
		if (!fs->ro)
			fs_log(fs, "unknown read-only features 0x%x: mounting read-only",
			       fs->sb.s_feat_ro_compat & ~UFS_FEAT_RO_COMPAT_SUPPORTED);
		fs->ro = true;
	}
	rc = ufs_journal_open(&fs->j, m, &fs->sb);
	if (rc)
		goto out_free;
	/*
	 * A refused mount leaves the image as it found it: nothing is
	 * written before every check that can refuse has passed.  Replay
	 * keeps the log and a DRAM copy of what it overwrote, so a refusal
	 * after it puts those bytes back (and a crash replays again).
	 */
	if (ufs_journal_dirty(fs->j)) {
		if (fs->ro) {
			rc = ufs_journal_recover(fs->j, true);
			if (rc < 0)
				goto out_free;
			udax_seterr("journal holds an unfinished transaction: mount read-write once to roll it back");
			rc = -EROFS;
			goto out_free;
		}
		rc = ufs_journal_replay(fs->j, &undo);
		if (rc < 0)
			goto out_free;
		replayed = rc;
		rc = replayed_super_check(fs, backup);
		if (rc)
			goto out_undo;
	}
	/* the primary carries the orphan list (changed in place by transactions);
	 * a backup copy's may be stale: fsck reclaims what it would have freed */
	if (backup)
		fs->sb.s_orphan_head = 0;
	else
		fs->sb.s_orphan_head = primary(fs)->s_orphan_head;

	memset(&dopts, 0, sizeof(dopts));
	dopts.policy = o->policy;
	dopts.recall_timeout_ns = o->recall_timeout_ns;
	dopts.ops = o->dax_ops;
	dopts.ops_arg = o->dax_ops_arg;
	dopts.numa_node = udax_media_numa_node(m);
	rc = udax_dax_new(&fs->dax, &dopts);
	if (rc)
		goto out_undo;
	fs->unmount_timeout_ns = o->recall_timeout_ns ? o->recall_timeout_ns : 2000000000ULL;
	rc = ufs_alloc_open(&fs->a, m, &fs->sb, fs->dax);
	if (rc)
		goto out_undo;
	/* before orphans are reclaimed: their blocks may be under old pins */
	rc = ufs_alloc_quarantine(fs->a, o->quarantine, o->quarantine ? o->nquarantine : 0);
	if (rc)
		goto out_undo;
	fs->gen_next = (uint64_t)udax_now_ns();

	rc = ufs_iget(fs, UFS_ROOT_INO, &root);
	if (rc == -ENOENT) {
		udax_seterr("root inode (device offset %" PRIu64 ") is free",
			    ufs_inode_off(&fs->sb, UFS_ROOT_INO));
		rc = -EUCLEAN;
		goto out_undo;
	}
	if (rc) {
		udax_seterr("root inode: %s", udax_errmsg());
		rc = -EUCLEAN;
		goto out_undo;
	}
	if (!ufs_isdir(root)) {
		ufs_iput(root);
		udax_seterr("root inode (device offset %" PRIu64 ") is not a directory",
			    ufs_inode_off(&fs->sb, UFS_ROOT_INO));
		rc = -EUCLEAN;
		goto out_undo;
	}
	if (root->di->i_nlink == 0) {
		udax_seterr("root inode (device offset %" PRIu64 ") has link count %u: "
			    "run fsck.udaxfs", ufs_inode_off(&fs->sb, UFS_ROOT_INO),
			    (unsigned int)root->di->i_nlink);
		ufs_iput(root);
		rc = -EUCLEAN;
		goto out_undo;
	}
	ufs_iput(root);
	if (!fs->ro) {
		rc = orphans_precheck(fs);
		if (rc)
			goto out_undo;
	}

	/* every check passed: from here on the mount writes */
	if (undo) {
		ufs_journal_replay_end(fs->j, &undo, true);
		fs_log(fs, "journal: rolled back an unfinished transaction (%d records)", replayed);
	}
	if (backup && !fs->ro) {
		/* repair the primary from the backup: the device validated */
		ufs_super_write(m, &fs->sb);
	}
	if (!fs->ro) {
		rc = orphans_reclaim(fs);
		if (rc)
			goto out_free;
		fs->sb.s_state = UFS_STATE_MOUNTED;
		fs->sb.s_mount_time = (uint64_t)time(NULL);
		fs->sb.s_mount_count++;
		ufs_super_write(m, &fs->sb);
	}
	*out = fs;
	return 0;

out_undo:
	ufs_journal_replay_end(fs->j, &undo, false);
out_free:
	fs_free(fs);
	return rc;
}

/* Collect every cached inode (with a reference) so they can be worked on unlocked. */
static struct ufs_inode **icache_snapshot(struct ufs *fs, size_t *n)
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

/* An eviction that failed because a page is still referenced (or the wait
 * was cut short), as opposed to one that failed on what it read. */
static bool evict_busy(int rc)
{
	return rc == -EBUSY || rc == -EINTR || rc == -ETIMEDOUT || rc == -EAGAIN;
}

/*
 * ufs_unmount() - see ufs.h.  Besides -EBUSY (pages still referenced: the
 * mount is kept, nothing is freed under a pin) there is one more outcome:
 * an unlinked inode whose eviction fails on corruption (a bad extent tree,
 * say) cannot be freed, but nothing references it.  It is logged and
 * counted, left on the orphan list with its blocks (fsck reclaims them),
 * the state stays MOUNTED (not clean), and the mount is torn down anyway.
 * Context: no other thread uses @fs.  Return: 0 (*fsp freed and cleared);
 * -EUCLEAN (*fsp freed and cleared, unlinked inodes could not be freed:
 * run fsck); -EBUSY (*fsp kept, see ufs.h); -ENOMEM (*fsp kept).
 */
int ufs_unmount(struct ufs **fsp)
{
	struct ufs *fs = fsp ? *fsp : NULL;
	struct udax_wait_ctx w = { 0 };
	struct udax_dax_stats st;
	struct ufs_inode **v;
	uint64_t corrupt = 0, left = 0;
	bool busy = false;
	size_t n, i;

	if (!fs)
		return 0;
	w.timeout_ns = fs->unmount_timeout_ns;
	v = icache_snapshot(fs, &n);
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct ufs_inode *ip = v[i];

		if (ip->di->i_nlink == 0 && !fs->ro) {
			uint64_t ino = ip->ino;
			int rc;

			/* the kernel will never forget it now */
			pthread_mutex_lock(&fs->icache_lock);
			ip->nlookup = 0;
			ip->nopen = 0;
			pthread_mutex_unlock(&fs->icache_lock);
			rc = iput_rc(ip, &w);
			if (rc && evict_busy(rc)) {
				busy = true;
			} else if (rc) {
				if (++corrupt <= 8)
					fs_log(fs, "unmount: unlinked inode %" PRIu64 " cannot be "
					       "freed (%s: %s); left on the orphan list with its "
					       "blocks (run fsck)", ino, strerror(-rc), udax_errmsg());
			}
			continue;
		}
		pthread_rwlock_wrlock(&ip->rwsem);
		if (ufs_break(ip, 0, UDAX_END_OF_FILE, &w))
			busy = true;
		else
			udax_layout_unlock_excl(&ip->map);
		pthread_rwlock_unlock(&ip->rwsem);
		ufs_iput(ip);
	}
	free(v);
	/* anything still cached with nlink 0 and not counted as corrupt was busy */
	v = icache_snapshot(fs, &n);
	for (i = 0; v && i < n; i++) {
		if (v[i]->di->i_nlink == 0)
			left++;
		pthread_mutex_lock(&fs->icache_lock);
		v[i]->ref--;
		pthread_mutex_unlock(&fs->icache_lock);
	}
	free(v);
	if (!fs->ro && left > corrupt)
		busy = true;
	/* never free the handles (and the mount) while a page is referenced */
	udax_dax_stats(fs->dax, &st);
	if (st.live_handles)
		busy = true;
	if (!fs->ro) {
		udax_media_drain(fs->m);
		fs->sb.s_orphan_head = primary(fs)->s_orphan_head;
		fs->sb.s_free_blocks_hint = ufs_alloc_free_blocks(fs->a);
		fs->sb.s_free_inodes_hint = ufs_alloc_free_inodes(fs->a);
		fs->sb.s_write_time = (uint64_t)time(NULL);
		if (!busy && !corrupt)
			fs->sb.s_state = UFS_STATE_CLEAN;
		ufs_super_write(fs->m, &fs->sb);
	}
	if (busy) {
		udax_seterr("pages are still referenced (pins or mappings): left mounted; "
			    "unlinked files stay on the orphan list");
		return -EBUSY;
	}
	fs_free(fs);
	*fsp = NULL;
	if (corrupt) {
		udax_seterr("%" PRIu64 " unlinked inode%s could not be freed (corrupt); they stay "
			    "on the orphan list: run fsck", corrupt, corrupt == 1 ? "" : "s");
		return -EUCLEAN;
	}
	return 0;
}
