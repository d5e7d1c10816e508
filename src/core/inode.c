// SPDX-License-Identifier: MIT
/*
 * inode.c - the life of a file's blocks and attributes: truncate and
 * eviction (the freeing paths, and the helpers the other files of this
 * layer share: inode_int.h), getattr/setattr, open/release/forget.
 * File data is in file.c, fallocate in falloc.c, the layout grants of the
 * direct-access path in grant.c.
 *
 * Every path that frees blocks follows the same shape (DESIGN.md §2):
 *   i_rwsem exclusive -> layout lock exclusive + dx_break_layouts(range)
 *   -> transactions that unmap and free -> layout unlock -> i_rwsem unlock
 * so the blocks are untracked and idle (I1) when ufs_free_blocks() sees
 * them, and an interrupted or timed-out wait leaves the file unchanged.
 *
 * Data is written in place with persisting stores before the transaction
 * that makes fresh blocks reachable commits, so a crash never exposes a
 * stale block, and write() data is durable when it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "inode_int.h"

static const struct dx_wait_ctx wait_default;

const struct dx_wait_ctx *ufs_wctx(const struct ufs_ctx *c)
{
	return c ? &c->wait : &wait_default;
}

int ufs_iget_reg(struct ufs *fs, uint64_t ino, struct ufs_inode **out)
{
	struct ufs_inode *ip;
	int rc = ufs_iget(fs, ino, &ip);

	if (rc)
		return rc;
	if (!ufs_isreg(ip)) {
		rc = ufs_isdir(ip) ? -EISDIR : -EINVAL;
		ufs_iput(ip);
		return rc;
	}
	*out = ip;
	return 0;
}

int ufs_touch_tx(struct ufs_inode *ip, bool m, uint64_t newsize)
{
	struct utx t;
	int rc;

	rc = utx_begin_inode(&t, ip);
	if (rc) {
		utx_abort(&t);
		return rc;
	}
	if (newsize != ip->di->i_size)
		ufs_set_size(ip, newsize);
	ufs_touch(ip, false, m, true);
	utx_commit(&t);
	return 0;
}

/* Publish / withdraw the getattr snapshot (see struct ufs_inode). */
static void snap_publish(struct ufs_inode *ip)
{
	pthread_mutex_lock(&ip->snap_lock);
	ufs_fill_stat(ip, &ip->snap);
	ip->snap_valid = true;
	pthread_mutex_unlock(&ip->snap_lock);
}

static void snap_withdraw(struct ufs_inode *ip)
{
	pthread_mutex_lock(&ip->snap_lock);
	ip->snap_valid = false;
	pthread_mutex_unlock(&ip->snap_lock);
}

/*
 * ufs_break() - take the layout lock exclusively and break layouts over
 * [first, last]; on success the lock stays held for the caller's frees.
 * Context: i_rwsem held exclusively (so the getattr snapshot is exact);
 * may sleep for as long as pins take to drain.
 */
int ufs_break(struct ufs_inode *ip, uint64_t first, uint64_t last, const struct dx_wait_ctx *w)
{
	int rc;

	snap_publish(ip);
	dx_layout_lock_excl(&ip->map);
	rc = dx_break_layouts(&ip->map, first, last, w ? w : &wait_default);
	if (rc)
		dx_layout_unlock_excl(&ip->map);
	snap_withdraw(ip);
	return rc;
}

/*
 * Walk the mapped pieces of the byte range [off, off + len): @fn gets the
 * device address (NULL for a hole), the file offset and the length.
 * Context: i_rwsem held.
 */
int ufs_for_each_piece(struct ufs_inode *ip, uint64_t off, uint64_t len,
		       int (*fn)(void *arg, char *dev, uint64_t foff, uint64_t n), void *arg)
{
	struct ufs *fs = ip->fs;
	uint64_t pos = off, end = off + len;
	int rc;

	while (pos < end) {
		struct ufs_extent e;
		uint64_t lblk = pos >> UFS_BLOCK_SHIFT, n;
		char *dev = NULL;

		rc = ufs_ext_find(ip, lblk, &e);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			n = ((e.e_lblk + e.e_len) << UFS_BLOCK_SHIFT) - pos;
			dev = (char *)ufs_blk(fs, e.e_pblk + (lblk - e.e_lblk)) +
			      (pos & (UFS_BLOCK_SIZE - 1));
		} else if (e.e_len) {
			n = (e.e_lblk << UFS_BLOCK_SHIFT) - pos;
		} else {
			n = end - pos;
		}
		n = dx_min(n, end - pos);
		if (!n) {
			dx_seterr("inode %llu: extent lookup of block %llu went backwards",
				    (unsigned long long)ip->ino, (unsigned long long)lblk);
			return -EUCLEAN;
		}
		rc = fn(arg, dev, pos, n);
		if (rc)
			return rc;
		pos += n;
	}
	return 0;
}

static int piece_zero(void *arg, char *dev, uint64_t foff, uint64_t n)
{
	struct ufs *fs = arg;

	(void)foff;
	if (dev)
		dx_media_memset_persist(fs->m, dev, 0, n);
	return 0;
}

/* Zero mapped bytes of [off, off + len). */
int ufs_zero_mapped(struct ufs_inode *ip, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	return ufs_for_each_piece(ip, off, len, piece_zero, ip->fs);
}

/*
 * The size grows from @old to @new: bytes after the old end of file in its
 * last block may hold what a direct-access client stored past EOF; zero
 * them as the kernel does before they become visible.
 */
int ufs_zero_past_eof(struct ufs_inode *ip, uint64_t old, uint64_t new)
{
	uint64_t end;

	if (new <= old || !(old & (UFS_BLOCK_SIZE - 1)))
		return 0;
	end = dx_min(new, UDAX_ALIGN_UP(old, (uint64_t)UFS_BLOCK_SIZE));
	return ufs_zero_mapped(ip, old, end - old);
}

/*
 * Unmap and free [first, end) blocks in as many transactions as the
 * journal needs, from the end.  Every step is a consistent file: with
 * f->shrink, i_size follows the removal down (never below f->size); the
 * last step applies the rest of @f (final size, times, collapse shift) in
 * its own transaction, so a removal that fits one transaction is atomic.
 * @f may be NULL.
 * Context: i_rwsem and the layout lock held exclusively, range untracked.
 */
int ufs_remove_blocks(struct ufs_inode *ip, uint64_t first, uint64_t end,
		      const struct ufs_rm_finish *f)
{
	int rc = 0;

	for (;;) {
		uint64_t next = first;
		struct utx t;

		rc = utx_begin_inode(&t, ip);
		if (!rc && end > first)
			rc = ufs_ext_remove(&t, ip, first, end, &next);
		if (rc) {
			utx_abort(&t);
			return rc;
		}
		if (next > first) {
			/* an intermediate step */
			if (f && f->shrink) {
				uint64_t sz = dx_max(f->size, next << UFS_BLOCK_SHIFT);

				if (sz < ip->di->i_size)
					ufs_set_size(ip, sz);
			}
			utx_commit(&t);
			UDAX_BUG_ON(next >= end);
			end = next;
			continue;
		}
		if (f && f->shift) {
			if (utx_room(&t) < f->shift_cost + 4 * UFS_BLOCK_SIZE + 1024) {
				/* the shift gets a transaction of its own */
				utx_commit(&t);
				rc = utx_begin_inode(&t, ip);
			}
			if (!rc)
				rc = ufs_ext_shift(&t, ip, f->shift_from, f->shift_delta);
			if (rc) {
				utx_abort(&t);
				return rc;
			}
		}
		if (f && f->setsize)
			ufs_set_size(ip, f->size);
		if (f && f->touch)
			ufs_touch(ip, false, true, true);
		if (f && f->last) {
			if (f->last_room && utx_room(&t) < f->last_room) {
				utx_commit(&t);
				rc = utx_begin_inode(&t, ip);
			}
			if (!rc)
				rc = f->last(&t, ip, f->last_arg);
			if (rc) {
				utx_abort(&t);
				return rc;
			}
		}
		utx_commit(&t);
		return 0;
	}
}

/* Journal room the last work of a truncate needs: an xattr block rewritten, inode. */
#define TRUNCATE_LAST_ROOM	(4 * UFS_BLOCK_SIZE + 1024)

/*
 * truncate_to() - set the size to @size, freeing the blocks past it, and do
 * @last (may be NULL: the attributes and privileges of the request) in
 * the transaction that sets the final size, so that a truncate that fits
 * one transaction is one atomic change: no crash leaves it half done (the
 * file cut but still set-ID).  A truncate of more than one transaction
 * (UFS_STEP_BLOCKS) commits the removal in steps from the end, each a
 * consistent file, as it always has.
 * Context: i_rwsem held exclusively; may sleep in break_layouts.
 * Return: 0 or -errno (-EINTR / -EBUSY: the file is unchanged).
 */
static int truncate_to(struct ufs_inode *ip, uint64_t size, const struct dx_wait_ctx *w,
		       int (*last)(struct utx *t, struct ufs_inode *ip, void *arg), void *last_arg)
{
	struct ufs *fs = ip->fs;
	uint64_t old = ip->di->i_size, nb = ufs_blocks_up(size);
	struct ufs_rm_finish fin = { .shrink = true, .setsize = true, .size = size, .touch = true,
				 .last = last, .last_arg = last_arg,
				 .last_room = TRUNCATE_LAST_ROOM };
	struct ufs_extent e;
	struct utx t;
	int rc;

	if (size > UFS_MAX_FILE_SIZE)
		return -EFBIG;
	if (fs->ro)
		return -EROFS;
	rc = ufs_ext_find(ip, nb, &e);
	if (rc < 0)
		return rc;
	if (rc == 1 || e.e_len) {
		/* blocks past the new end: a layout may reach past EOF, so to EOF */
		rc = ufs_break(ip, nb, UDAX_END_OF_FILE, w);
		if (rc)
			return rc;
		rc = ufs_remove_blocks(ip, nb, UFS_MAX_FILE_BLOCKS, &fin);
		dx_layout_unlock_excl(&ip->map);
	} else {
		rc = utx_begin_inode(&t, ip);
		/* growing: bytes past the old EOF (invisible until commit) become zeros */
		if (!rc)
			rc = ufs_zero_past_eof(ip, old, size);
		if (rc) {
			utx_abort(&t);
			return rc;
		}
		ufs_set_size(ip, size);
		ufs_touch(ip, false, true, true);
		if (last)
			rc = last(&t, ip, last_arg);
		if (rc) {
			utx_abort(&t);
			return rc;
		}
		utx_commit(&t);
	}
	/*
	 * The tail of a partial last block is zeroed after the commit: it is
	 * past EOF by then (a crash before it leaves bytes that ufs_zero_past_eof()
	 * clears before the size grows again), and mapped readers see zeros.
	 */
	if (!rc && size < old && (size & (UFS_BLOCK_SIZE - 1)))
		rc = ufs_zero_mapped(ip, size, UFS_BLOCK_SIZE - (size & (UFS_BLOCK_SIZE - 1)));
	return rc;
}

/* The last step of an eviction: xattrs, orphan list, the slot itself. */
static int evict_last(struct utx *t, struct ufs_inode *ip, void *arg)
{
	(void)arg;
	int rc = ufs_xattr_free(t, ip);

	if (!rc)
		rc = ufs_orphan_del(t, ip);
	if (!rc)
		rc = ufs_ifree(t->fs->a, t->tx, ip->ino);
	if (!rc)
		memset(ip->di, 0, sizeof(*ip->di));
	return rc;
}

int ufs_evict(struct ufs_inode *ip, const struct dx_wait_ctx *w)
{
	struct ufs_rm_finish fin = { .last = evict_last };
	uint64_t end = UFS_MAX_FILE_BLOCKS;
	int rc;

	pthread_rwlock_wrlock(&ip->rwsem);
	rc = ufs_break(ip, 0, UDAX_END_OF_FILE, w);
	if (rc)
		goto out;
	if (ip->di->i_flags & UFS_INODE_FL_INLINE_SYMLINK)
		end = 0;	/* i_u holds the target, not an extent root */
	/* blocks from the end in steps; the last one frees the slot too */
	rc = ufs_remove_blocks(ip, 0, end, &fin);
	if (!rc) {
		/*
		 * Unhashed only now: until here ufs_iget() finds it evicting
		 * and says -ENOENT instead of loading the half-freed slot.  A
		 * ufs_inew() that got the slot in between takes the stale
		 * entry out itself.
		 */
		ufs_icache_unhash(ip);
	}
	dx_layout_unlock_excl(&ip->map);
out:
	pthread_rwlock_unlock(&ip->rwsem);
	return rc;
}

/* ---- attributes ---- */

int ufs_getattr(struct ufs *fs, uint64_t ino, struct stat *st)
{
	struct ufs_inode *ip;
	int rc = ufs_iget(fs, ino, &ip);

	if (rc)
		return rc;
	if (pthread_rwlock_tryrdlock(&ip->rwsem) != 0) {
		/* a truncate may be waiting for DMA: answer from its snapshot */
		bool done = false;

		pthread_mutex_lock(&ip->snap_lock);
		if (ip->snap_valid) {
			*st = ip->snap;
			done = true;
		}
		pthread_mutex_unlock(&ip->snap_lock);
		if (done) {
			ufs_iput(ip);
			return 0;
		}
		pthread_rwlock_rdlock(&ip->rwsem);
	}
	ufs_fill_stat(ip, st);
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return 0;
}

static void set_ts(uint64_t *sec, uint32_t *nsec, const struct timespec *ts)
{
	*sec = (uint64_t)ts->tv_sec;
	*nsec = (uint32_t)ts->tv_nsec;
}

struct setattr_arg {
	const struct ufs_ctx *c;
	const struct ufs_setattr *sa;
};

/*
 * setattr_apply() - everything but the size of a setattr, in the caller's
 * transaction: mode, owner, the privileges that a truncate or a chown drops
 * (ufs_kill_mask()), times.  An explicit mode is what was asked: it keeps
 * its set-ID bits.
 * Context: i_rwsem exclusive, in @t with the inode logged.
 * Return: 0 or -errno.
 */
static int setattr_apply(struct utx *t, struct ufs_inode *ip, void *arg)
{
	const struct setattr_arg *a = arg;
	const struct ufs_setattr *sa = a->sa;
	struct ufs_dinode *di = ip->di;
	struct timespec now;
	unsigned int kill;
	int rc;

	dx_now_ts(&now);
	kill = ufs_kill_mask(a->c, sa->valid & UFS_SET_SIZE,
			     sa->valid & (UFS_SET_UID | UFS_SET_GID));
	if (sa->valid & UFS_SET_MODE) {
		di->i_mode = (di->i_mode & S_IFMT) | (sa->mode & 07777);
		kill &= ~(unsigned int)UFS_KILL_SUIDGID;
	}
	if (sa->valid & UFS_SET_UID)
		di->i_uid = sa->uid;
	if (sa->valid & UFS_SET_GID)
		di->i_gid = sa->gid;
	rc = ufs_kill_privs_ctx(t, ip, a->c, kill);
	if (rc)
		return rc;
	if (sa->valid & UFS_SET_ATIME_NOW)
		set_ts(&di->i_atime_sec, &di->i_atime_nsec, &now);
	else if (sa->valid & UFS_SET_ATIME)
		set_ts(&di->i_atime_sec, &di->i_atime_nsec, &sa->atime);
	if (sa->valid & UFS_SET_MTIME_NOW)
		set_ts(&di->i_mtime_sec, &di->i_mtime_nsec, &now);
	else if (sa->valid & UFS_SET_MTIME)
		set_ts(&di->i_mtime_sec, &di->i_mtime_nsec, &sa->mtime);
	if (sa->valid & UFS_SET_CTIME)
		set_ts(&di->i_ctime_sec, &di->i_ctime_nsec, &sa->ctime);
	else
		set_ts(&di->i_ctime_sec, &di->i_ctime_nsec, &now);
	return 0;
}

int ufs_setattr(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino,
		const struct ufs_setattr *sa, struct stat *st)
{
	struct setattr_arg a = { .c = c, .sa = sa };
	struct ufs_inode *ip;
	struct utx t;
	int rc;

	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (fs->ro && (sa->valid & ~0u)) {
		rc = -EROFS;
		goto out;
	}
	pthread_rwlock_wrlock(&ip->rwsem);
	if (sa->valid & UFS_SET_SIZE) {
		/* the rest of the request goes in the transaction that sets the size */
		if (ufs_isdir(ip))
			rc = -EISDIR;
		else if (!ufs_isreg(ip))
			rc = -EINVAL;
		else
			rc = truncate_to(ip, sa->size, ufs_wctx(c), setattr_apply, &a);
	} else if (sa->valid) {
		rc = utx_begin_inode(&t, ip);
		if (!rc)
			rc = setattr_apply(&t, ip, &a);
		if (rc)
			utx_abort(&t);
		else
			utx_commit(&t);
	}
	if (!rc && st)
		ufs_fill_stat(ip, st);
	pthread_rwlock_unlock(&ip->rwsem);
out:
	ufs_iput(ip);
	return rc;
}

/* ---- open files ---- */

/* The last work of an O_TRUNC open: the privileges a truncate drops. */
static int open_trunc_last(struct utx *t, struct ufs_inode *ip, void *arg)
{
	const struct ufs_ctx *c = arg;

	return ufs_kill_privs_ctx(t, ip, c, ufs_kill_mask(c, true, false));
}

int ufs_open(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, int flags)
{
	struct ufs_inode *ip;
	int rc, acc = flags & O_ACCMODE;

	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (ufs_isdir(ip) && acc != O_RDONLY) {
		ufs_iput(ip);
		return -EISDIR;
	}
	if (fs->ro && acc != O_RDONLY) {
		ufs_iput(ip);
		return -EROFS;
	}
	pthread_mutex_lock(&fs->icache_lock);
	ip->nopen++;
	pthread_mutex_unlock(&fs->icache_lock);
	if ((flags & O_TRUNC) && ufs_isreg(ip) && acc != O_RDONLY) {
		pthread_rwlock_wrlock(&ip->rwsem);
		/* under the same inode lock and in the same transaction:
		 * nobody sees the file truncated but privileged */
		rc = truncate_to(ip, 0, ufs_wctx(c), open_trunc_last, (void *)c);
		pthread_rwlock_unlock(&ip->rwsem);
		if (rc) {
			pthread_mutex_lock(&fs->icache_lock);
			ip->nopen--;
			pthread_mutex_unlock(&fs->icache_lock);
		}
	}
	ufs_iput(ip);
	return rc;
}

/* Find a cached inode and take a call reference (no load). */
static struct ufs_inode *icache_peek(struct ufs *fs, uint64_t ino)
{
	struct ufs_inode *ip;

	if (ufs_iget(fs, ino, &ip))
		return NULL;
	return ip;
}

void ufs_release(struct ufs *fs, uint64_t ino)
{
	struct ufs_inode *ip = icache_peek(fs, ino);

	if (!ip)
		return;
	pthread_mutex_lock(&fs->icache_lock);
	if (ip->nopen)
		ip->nopen--;
	pthread_mutex_unlock(&fs->icache_lock);
	ufs_iput(ip);
}

void ufs_forget(struct ufs *fs, uint64_t ino, uint64_t nlookup)
{
	struct ufs_inode *ip = icache_peek(fs, ino);

	if (!ip)
		return;
	pthread_mutex_lock(&fs->icache_lock);
	ip->nlookup -= dx_min(nlookup, ip->nlookup);
	if (!ip->nlookup)
		ip->forgotten = true;	/* a directory may now leave DRAM too */
	pthread_mutex_unlock(&fs->icache_lock);
	ufs_iput(ip);
}
