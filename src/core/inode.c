// SPDX-License-Identifier: MIT
/*
 * inode.c - file data and attributes: open/release, read/write, truncate,
 * fallocate, lseek, copy_file_range, getattr/setattr, eviction and the
 * layout grants of the direct-access path.
 *
 * Every path that frees blocks follows the same shape (DESIGN.md §2):
 *   i_rwsem exclusive -> layout lock exclusive + udax_break_layouts(range)
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

#include "ufs_int.h"

static const struct udax_wait_ctx wait_default;

static const struct udax_wait_ctx *wctx(const struct ufs_ctx *c)
{
	return c ? &c->wait : &wait_default;
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
int ufs_break(struct ufs_inode *ip, uint64_t first, uint64_t last, const struct udax_wait_ctx *w)
{
	int rc;

	snap_publish(ip);
	udax_layout_lock_excl(&ip->map);
	rc = udax_break_layouts(&ip->map, first, last, w ? w : &wait_default);
	if (rc)
		udax_layout_unlock_excl(&ip->map);
	snap_withdraw(ip);
	return rc;
}

static inline uint64_t blocks_up(uint64_t bytes)
{
	return (bytes + UFS_BLOCK_SIZE - 1) >> UFS_BLOCK_SHIFT;
}

/*
 * Walk the mapped pieces of the byte range [off, off + len): @fn gets the
 * device address (NULL for a hole), the file offset and the length.
 * Context: i_rwsem held.
 */
static int for_each_piece(struct ufs_inode *ip, uint64_t off, uint64_t len,
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
		n = udax_min(n, end - pos);
		if (!n) {
			udax_seterr("inode %llu: extent lookup of block %llu went backwards",
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

struct copy_arg {
	struct ufs *fs;
	char *buf;
	uint64_t base;		/* file offset of buf[0] */
};

static int piece_write(void *arg, char *dev, uint64_t foff, uint64_t n)
{
	struct copy_arg *a = arg;

	if (!dev)
		return -EIO;	/* the caller allocated every block first */
	udax_media_memcpy_persist(a->fs->m, dev, a->buf + (foff - a->base), n);
	return 0;
}

static int piece_zero(void *arg, char *dev, uint64_t foff, uint64_t n)
{
	struct copy_arg *a = arg;

	(void)foff;
	if (dev)
		udax_media_memset_persist(a->fs->m, dev, 0, n);
	return 0;
}

/* Zero mapped bytes of [off, off + len). */
static int zero_mapped(struct ufs_inode *ip, uint64_t off, uint64_t len)
{
	struct copy_arg a = { .fs = ip->fs };

	if (!len)
		return 0;
	return for_each_piece(ip, off, len, piece_zero, &a);
}

/*
 * The size grows from @old to @new: bytes after the old end of file in its
 * last block may hold what a direct-access client stored past EOF; zero
 * them as the kernel does before they become visible.
 */
static int zero_past_eof(struct ufs_inode *ip, uint64_t old, uint64_t new)
{
	uint64_t end;

	if (new <= old || !(old & (UFS_BLOCK_SIZE - 1)))
		return 0;
	end = udax_min(new, UDAX_ALIGN_UP(old, (uint64_t)UFS_BLOCK_SIZE));
	return zero_mapped(ip, old, end - old);
}

static void set_size(struct ufs_inode *ip, uint64_t size)
{
	ip->di->i_size = size;
}

/*
 * How the last step of remove_blocks() finishes the operation inside its
 * own transaction, so that an operation that fits one transaction is atomic
 * across a crash.
 */
struct rm_finish {
	bool shrink;		/* i_size follows the removal down (not below size) */
	bool setsize;		/* the last step sets i_size = size */
	uint64_t size;
	bool touch;		/* mtime and ctime on the last step */
	/* collapse: shift extents after the range down in the last step */
	bool shift;
	uint64_t shift_from;
	int64_t shift_delta;
	size_t shift_cost;
	/*
	 * The operation's own last work, after the size and times (eviction:
	 * free the slot; a truncate: the attributes and privileges of its
	 * request), needing @last_room bytes of journal: when the last
	 * removal step left less, it gets a transaction of its own.
	 */
	int (*last)(struct utx *t, struct ufs_inode *ip, void *arg);
	void *last_arg;
	size_t last_room;
};

/*
 * Unmap and free [first, end) blocks in as many transactions as the
 * journal needs, from the end.  Every step is a consistent file: with
 * f->shrink, i_size follows the removal down (never below f->size); the
 * last step applies the rest of @f (final size, times, collapse shift) in
 * its own transaction, so a removal that fits one transaction is atomic.
 * @f may be NULL.
 * Context: i_rwsem and the layout lock held exclusively, range untracked.
 */
static int remove_blocks(struct ufs_inode *ip, uint64_t first, uint64_t end,
			 const struct rm_finish *f)
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
				uint64_t sz = udax_max(f->size, next << UFS_BLOCK_SHIFT);

				if (sz < ip->di->i_size)
					set_size(ip, sz);
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
			set_size(ip, f->size);
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
static int truncate_to(struct ufs_inode *ip, uint64_t size, const struct udax_wait_ctx *w,
		       int (*last)(struct utx *t, struct ufs_inode *ip, void *arg), void *last_arg)
{
	struct ufs *fs = ip->fs;
	uint64_t old = ip->di->i_size, nb = blocks_up(size);
	struct rm_finish fin = { .shrink = true, .setsize = true, .size = size, .touch = true,
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
		rc = remove_blocks(ip, nb, UFS_MAX_FILE_BLOCKS, &fin);
		udax_layout_unlock_excl(&ip->map);
	} else {
		rc = utx_begin_inode(&t, ip);
		/* growing: bytes past the old EOF (invisible until commit) become zeros */
		if (!rc)
			rc = zero_past_eof(ip, old, size);
		if (rc) {
			utx_abort(&t);
			return rc;
		}
		set_size(ip, size);
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
	 * past EOF by then (a crash before it leaves bytes that zero_past_eof()
	 * clears before the size grows again), and mapped readers see zeros.
	 */
	if (!rc && size < old && (size & (UFS_BLOCK_SIZE - 1)))
		rc = zero_mapped(ip, size, UFS_BLOCK_SIZE - (size & (UFS_BLOCK_SIZE - 1)));
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

int ufs_evict(struct ufs_inode *ip, const struct udax_wait_ctx *w)
{
	struct rm_finish fin = { .last = evict_last };
	uint64_t end = UFS_MAX_FILE_BLOCKS;
	int rc;

	pthread_rwlock_wrlock(&ip->rwsem);
	rc = ufs_break(ip, 0, UDAX_END_OF_FILE, w);
	if (rc)
		goto out;
	if (ip->di->i_flags & UFS_INODE_FL_INLINE_SYMLINK)
		end = 0;	/* i_u holds the target, not an extent root */
	/* blocks from the end in steps; the last one frees the slot too */
	rc = remove_blocks(ip, 0, end, &fin);
	if (!rc) {
		/*
		 * Unhashed only now: until here ufs_iget() finds it evicting
		 * and says -ENOENT instead of loading the half-freed slot.  A
		 * ufs_inew() that got the slot in between takes the stale
		 * entry out itself.
		 */
		ufs_icache_unhash(ip);
	}
	udax_layout_unlock_excl(&ip->map);
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

	udax_now_ts(&now);
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
			rc = truncate_to(ip, sa->size, wctx(c), setattr_apply, &a);
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
		rc = truncate_to(ip, 0, wctx(c), open_trunc_last, (void *)c);
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
	ip->nlookup -= udax_min(nlookup, ip->nlookup);
	if (!ip->nlookup)
		ip->forgotten = true;	/* a directory may now leave DRAM too */
	pthread_mutex_unlock(&fs->icache_lock);
	ufs_iput(ip);
}

/*
 * Holes are read from one region of anonymous read-only memory: every page
 * of it is the kernel's zero page, so it costs no memory, and a hole of
 * any length up to ZERO_REGION is one iovec.  Mapped once, for the life
 * of the process.
 */
#define ZERO_REGION	(1ul << 20)
static const char *zero_region;
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static void zero_region_map(void)
{
	void *p = mmap(NULL, ZERO_REGION, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	zero_region = p == MAP_FAILED ? NULL : p;
}

/* Iovecs of a read: device pieces and zero-region pieces. */
struct iov_arg {
	struct iovec *iov;
	size_t cnt, max;
};

static int piece_iov(void *arg, char *dev, uint64_t foff, uint64_t n)
{
	struct iov_arg *a = arg;

	(void)foff;
	while (n) {
		uint64_t k = dev ? n : udax_min(n, (uint64_t)ZERO_REGION);
		struct iovec *last = a->cnt ? &a->iov[a->cnt - 1] : NULL;

		if (dev && last && (char *)last->iov_base + last->iov_len == dev) {
			last->iov_len += k;	/* the next extent continues the run */
		} else {
			UDAX_BUG_ON(a->cnt == a->max);
			a->iov[a->cnt].iov_base = dev ? dev : (char *)zero_region;
			a->iov[a->cnt].iov_len = k;
			a->cnt++;
		}
		n -= k;
	}
	return 0;
}

/* Iovecs [off, off + size) can need: each block its own extent or hole. */
static size_t iov_max(uint64_t off, size_t size)
{
	uint64_t blocks = ((off + size + UFS_BLOCK_SIZE - 1) >> UFS_BLOCK_SHIFT) -
			  (off >> UFS_BLOCK_SHIFT);

	return (size_t)(blocks + size / ZERO_REGION + 1);
}

#define READ_IOV_STACK 16

int ufs_read_iov(struct ufs *fs, uint64_t ino, size_t size, uint64_t off,
		 ufs_read_actor_t fn, void *arg)
{
	struct iovec stack_iov[READ_IOV_STACK];
	struct iov_arg a = { .iov = stack_iov, .max = READ_IOV_STACK };
	struct ufs_inode *ip;
	uint64_t isize;
	int rc;

	pthread_once(&zero_once, zero_region_map);
	if (!zero_region)
		return -ENOMEM;
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (ufs_isdir(ip)) {
		ufs_iput(ip);
		return -EISDIR;
	}
	pthread_rwlock_rdlock(&ip->rwsem);
	isize = ip->di->i_size;
	if (off >= isize)
		size = 0;
	size = (size_t)udax_min((uint64_t)size, isize - udax_min(off, isize));
	if (size && iov_max(off, size) > READ_IOV_STACK) {
		a.max = iov_max(off, size);
		a.iov = malloc(a.max * sizeof(*a.iov));
		if (!a.iov)
			rc = -ENOMEM;
	}
	if (!rc && size)
		rc = for_each_piece(ip, off, size, piece_iov, &a);
	/* under the shared i_rwsem: no truncate or punch frees these blocks meanwhile */
	if (!rc)
		fn(arg, a.iov, (int)a.cnt, size);
	pthread_rwlock_unlock(&ip->rwsem);
	if (a.iov != stack_iov)
		free(a.iov);
	ufs_iput(ip);
	return rc;
}

struct read_copy {
	char *buf;
	ssize_t n;
};

static void read_copy(void *arg, const struct iovec *iov, int cnt, size_t len)
{
	struct read_copy *r = arg;
	size_t pos = 0;
	int i;

	for (i = 0; i < cnt; i++) {
		memcpy(r->buf + pos, iov[i].iov_base, iov[i].iov_len);
		pos += iov[i].iov_len;
	}
	UDAX_BUG_ON(pos != len);
	r->n = (ssize_t)len;
}

ssize_t ufs_read(struct ufs *fs, uint64_t ino, void *buf, size_t size, uint64_t off)
{
	struct read_copy r = { .buf = buf };
	int rc = ufs_read_iov(fs, ino, size, off, read_copy, &r);

	return rc ? rc : r.n;
}

/*
 * Write one step (at most UFS_STEP_BLOCKS blocks) in one transaction.
 * Return: bytes written (may be short on ENOSPC) or -errno.
 */
static ssize_t write_step(struct ufs_inode *ip, const char *buf, uint64_t len, uint64_t off,
			  const struct ufs_ctx *c)
{
	struct ufs *fs = ip->fs;
	struct copy_arg a = { .fs = fs, .buf = (char *)buf, .base = off };
	uint64_t b0 = off >> UFS_BLOCK_SHIFT, b1 = blocks_up(off + len), old = ip->di->i_size;
	struct utx t;
	int64_t got;
	int rc;

	rc = utx_begin_inode(&t, ip);
	if (!rc)
		rc = zero_past_eof(ip, old, off);
	if (!rc && c)	/* privileges go in the transaction that writes */
		rc = ufs_kill_privs_ctx(&t, ip, c, ufs_kill_mask(c, true, false));
	if (rc) {
		utx_abort(&t);
		return rc;
	}
	got = ufs_ext_alloc(&t, ip, b0, b1 - b0, off, off + len);
	if (got < 0) {
		utx_abort(&t);
		return got;
	}
	if ((uint64_t)got < b1 - b0)
		len = ((b0 + (uint64_t)got) << UFS_BLOCK_SHIFT) > off ?
		      ((b0 + (uint64_t)got) << UFS_BLOCK_SHIFT) - off : 0;
	if (len) {
		rc = for_each_piece(ip, off, len, piece_write, &a);
		if (rc) {
			utx_commit(&t);
			return rc;
		}
		if (off + len > old)
			set_size(ip, off + len);
		ufs_touch(ip, false, true, true);
	}
	utx_commit(&t);
	return len ? (ssize_t)len : -ENOSPC;
}

ssize_t ufs_write(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino,
		  const void *buf, size_t size, uint64_t off)
{
	struct ufs_inode *ip;
	uint64_t done = 0;
	ssize_t rc = 0;

	if (fs->ro)
		return -EROFS;
	if (off >= UFS_MAX_FILE_SIZE)
		return size ? -EFBIG : 0;
	if (size > UFS_MAX_FILE_SIZE - off)
		size = (size_t)(UFS_MAX_FILE_SIZE - off);
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (!ufs_isreg(ip)) {
		ufs_iput(ip);
		return ufs_isdir(ip) ? -EISDIR : -EINVAL;
	}
	pthread_rwlock_wrlock(&ip->rwsem);
	while (done < size) {
		uint64_t pos = off + done;
		uint64_t max = ((uint64_t)UFS_STEP_BLOCKS << UFS_BLOCK_SHIFT) -
			       (pos & (UFS_BLOCK_SIZE - 1));
		uint64_t n = udax_min((uint64_t)size - done, max);

		rc = write_step(ip, (const char *)buf + done, n, pos, done ? NULL : c);
		if (rc < 0)
			break;
		done += (uint64_t)rc;
		if ((uint64_t)rc < n)
			break;
	}
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return done ? (ssize_t)done : (rc < 0 ? rc : 0);
}

static int piece_hole(void *arg, char *dev, uint64_t foff, uint64_t n)
{
	(void)arg;
	(void)foff;
	(void)n;
	return dev ? 0 : -EAGAIN;
}

struct fill_arg {
	struct ufs *fs;
	ufs_fill_actor_t fill;
	void *arg;
	uint64_t done;		/* bytes stored so far */
	bool stop;		/* the source gave fewer bytes than asked */
};

/* Store a mapped piece straight from the source, durably. */
static int piece_fill(void *arg, char *dev, uint64_t foff, uint64_t n)
{
	struct fill_arg *a = arg;
	uint64_t got = 0;

	(void)foff;
	UDAX_BUG_ON(!dev);	/* ufs_write_fill() checked: no hole */
	while (got < n && !a->stop) {
		ssize_t k = a->fill(a->arg, dev + got, (size_t)(n - got));

		if (k <= 0) {
			a->stop = true;
			if (k < 0 && !a->done && !got)
				return (int)k;
			break;
		}
		udax_media_persist(a->fs->m, dev + got, (size_t)k);
		got += (uint64_t)k;
	}
	a->done += got;
	return a->stop ? 1 : 0;
}

ssize_t ufs_write_fill(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, size_t size,
		       uint64_t off, ufs_fill_actor_t fill, void *arg)
{
	struct fill_arg a = { .fs = fs, .fill = fill, .arg = arg };
	struct utx t = { .tx = NULL };
	struct ufs_inode *ip;
	uint64_t old;
	int rc;

	if (fs->ro)
		return -EROFS;
	if (!size)
		return 0;
	if (off >= UFS_MAX_FILE_SIZE || size > UFS_MAX_FILE_SIZE - off)
		return -EAGAIN;	/* ufs_write() says what is wrong */
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (!ufs_isreg(ip)) {
		ufs_iput(ip);
		return ufs_isdir(ip) ? -EISDIR : -EINVAL;
	}
	pthread_rwlock_wrlock(&ip->rwsem);
	old = ip->di->i_size;
	/* only where every block is there: a fresh block half filled would show stale bytes */
	rc = for_each_piece(ip, off, size, piece_hole, NULL);
	if (!rc)
		rc = utx_begin_inode(&t, ip);
	if (!rc)
		rc = zero_past_eof(ip, old, off);
	if (!rc && c)
		rc = ufs_kill_privs_ctx(&t, ip, c, ufs_kill_mask(c, true, false));
	if (!rc) {
		rc = for_each_piece(ip, off, size, piece_fill, &a);
		if (rc > 0)
			rc = 0;		/* a short source: a short write */
	}
	if (rc && !a.done) {
		utx_abort(&t);
		goto out;
	}
	/* the data is durable; the size and times follow in one transaction */
	if (off + a.done > old)
		set_size(ip, off + a.done);
	if (a.done)
		ufs_touch(ip, false, true, true);
	utx_commit(&t);
	rc = 0;
out:
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc ? rc : (ssize_t)a.done;
}

int ufs_fsync(struct ufs *fs, uint64_t ino, bool datasync)
{
	struct ufs_inode *ip;
	int rc;

	(void)datasync;
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	/* data went out with persisting stores, metadata with committed
	 * transactions: what is left is the final fence */
	udax_media_drain(fs->m);
	ufs_iput(ip);
	return 0;
}

/* ---- fallocate ---- */

/* Allocate (zeroed) every hole of [b0, b1), growing the size to @newsize if larger. */
static int alloc_range(struct ufs_inode *ip, uint64_t b0, uint64_t b1, uint64_t newsize)
{
	uint64_t cur = b0;
	int rc = 0;

	while (cur < b1 || (cur == b1 && newsize > ip->di->i_size)) {
		uint64_t n = udax_min(b1 - cur, (uint64_t)UFS_STEP_BLOCKS);
		uint64_t old = ip->di->i_size;
		struct utx t;
		int64_t got = 0;

		rc = utx_begin_inode(&t, ip);
		if (rc) {
			utx_abort(&t);
			return rc;
		}
		if (n) {
			got = ufs_ext_alloc(&t, ip, cur, n, 0, 0);
			if (got < 0) {
				utx_abort(&t);
				return (int)got;
			}
		}
		cur += (uint64_t)got;
		if (newsize > old) {
			uint64_t sz = udax_min(newsize, cur << UFS_BLOCK_SHIFT);

			if (cur >= b1)
				sz = newsize;
			if (sz > old) {
				rc = zero_past_eof(ip, old, sz);
				set_size(ip, sz);
			}
		}
		ufs_touch(ip, false, newsize > old, true);
		utx_commit(&t);
		if ((uint64_t)got < n)
			return -ENOSPC;
		if (!n)
			break;
	}
	return rc;
}

static int touch_tx(struct ufs_inode *ip, bool m, uint64_t newsize)
{
	struct utx t;
	int rc;

	rc = utx_begin_inode(&t, ip);
	if (rc) {
		utx_abort(&t);
		return rc;
	}
	if (newsize != ip->di->i_size)
		set_size(ip, newsize);
	ufs_touch(ip, false, m, true);
	utx_commit(&t);
	return 0;
}

static int do_punch(struct ufs_inode *ip, uint64_t off, uint64_t len,
		    const struct udax_wait_ctx *w)
{
	uint64_t end = off + len, fb = blocks_up(off), lb = end >> UFS_BLOCK_SHIFT;
	int rc;

	if (fb >= lb) {
		/* inside one block (or two partial ones): zero in place */
		rc = zero_mapped(ip, off, len);
	} else {
		struct rm_finish fin = { .touch = true };

		rc = ufs_break(ip, off >> UFS_BLOCK_SHIFT, (end - 1) >> UFS_BLOCK_SHIFT, w);
		if (rc)
			return rc;
		rc = zero_mapped(ip, off, (fb << UFS_BLOCK_SHIFT) - off);
		if (!rc)
			rc = zero_mapped(ip, lb << UFS_BLOCK_SHIFT, end - (lb << UFS_BLOCK_SHIFT));
		if (!rc)
			rc = remove_blocks(ip, fb, lb, &fin);
		udax_layout_unlock_excl(&ip->map);
		return rc;
	}
	if (rc)
		return rc;
	return touch_tx(ip, true, ip->di->i_size);
}

static int do_zero(struct ufs_inode *ip, uint64_t off, uint64_t len, bool keep,
		   const struct udax_wait_ctx *w)
{
	uint64_t end = off + len, b0 = off >> UFS_BLOCK_SHIFT, b1 = blocks_up(end);
	uint64_t newsize = keep ? ip->di->i_size : udax_max(ip->di->i_size, end);
	int rc;

	rc = ufs_break(ip, b0, b1 - 1, w);
	if (rc)
		return rc;
	rc = zero_mapped(ip, off, len);
	udax_layout_unlock_excl(&ip->map);
	if (!rc)
		rc = alloc_range(ip, b0, b1, newsize);
	if (!rc)
		rc = touch_tx(ip, true, udax_max(newsize, ip->di->i_size));
	return rc;
}

/*
 * Collapse and insert shift every extent after the range in one
 * transaction (a half-shifted file would not be a consistent state): refuse
 * up front, with the file unchanged, when the journal could not hold it.
 */
static int shift_fits(struct ufs_inode *ip, uint64_t from, int64_t delta, size_t *costp)
{
	size_t cost, room;
	struct utx t;
	int rc;

	rc = ufs_ext_shift_cost(ip, from, delta, &cost);
	if (rc)
		return rc;
	rc = utx_begin(ip->fs, &t);
	if (rc)
		return rc;
	room = utx_room(&t);
	utx_abort(&t);
	/* + a split (two leaves, an index and a fresh node) and the inode */
	if (cost + 4 * UFS_BLOCK_SIZE + 1024 > room) {
		udax_seterr("inode %llu: shifting its extents needs %zu bytes of journal, %zu free",
			    (unsigned long long)ip->ino, cost, room);
		return -ENOSPC;
	}
	if (costp)
		*costp = cost;
	return 0;
}

static int do_collapse(struct ufs_inode *ip, uint64_t off, uint64_t len,
		       const struct udax_wait_ctx *w)
{
	uint64_t ob = off >> UFS_BLOCK_SHIFT, nb = len >> UFS_BLOCK_SHIFT;
	struct rm_finish fin = {
		.setsize = true, .size = ip->di->i_size - len, .touch = true,
		.shift = true, .shift_from = ob + nb, .shift_delta = -(int64_t)nb,
	};
	int rc;

	if (off + len >= ip->di->i_size)
		return -EINVAL;
	rc = shift_fits(ip, ob + nb, -(int64_t)nb, &fin.shift_cost);
	if (rc)
		return rc;
	rc = ufs_break(ip, ob, UDAX_END_OF_FILE, w);
	if (rc)
		return rc;
	/* the range goes first (steps keep the size), then the shift and the
	 * new size together with the last step when they fit */
	rc = remove_blocks(ip, ob, ob + nb, &fin);
	udax_layout_unlock_excl(&ip->map);
	return rc;
}

static int do_insert(struct ufs_inode *ip, uint64_t off, uint64_t len,
		     const struct udax_wait_ctx *w)
{
	uint64_t ob = off >> UFS_BLOCK_SHIFT, nb = len >> UFS_BLOCK_SHIFT;
	struct utx t;
	int rc;

	if (off >= ip->di->i_size)
		return -EINVAL;
	if (ip->di->i_size + len > UFS_MAX_FILE_SIZE)
		return -EFBIG;
	rc = shift_fits(ip, ob, (int64_t)nb, NULL);
	if (rc)
		return rc;
	rc = ufs_break(ip, ob, UDAX_END_OF_FILE, w);
	if (rc)
		return rc;
	rc = utx_begin_inode(&t, ip);
	if (!rc)
		rc = ufs_ext_split(&t, ip, ob);
	if (!rc)
		rc = ufs_ext_shift(&t, ip, ob, (int64_t)nb);
	if (rc) {
		utx_abort(&t);
		goto out;
	}
	set_size(ip, ip->di->i_size + len);
	ufs_touch(ip, false, true, true);
	utx_commit(&t);
out:
	udax_layout_unlock_excl(&ip->map);
	return rc;
}

int ufs_fallocate(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, int mode,
		  uint64_t off, uint64_t len)
{
	const struct udax_wait_ctx *w = wctx(c);
	struct ufs_inode *ip;
	int rc;

	switch (mode) {
	case 0:
	case FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_ZERO_RANGE:
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
		break;
	case FALLOC_FL_COLLAPSE_RANGE:
	case FALLOC_FL_INSERT_RANGE:
		if ((off | len) & (UFS_BLOCK_SIZE - 1))
			return -EINVAL;
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (!len)
		return -EINVAL;
	if (off > UFS_MAX_FILE_SIZE || len > UFS_MAX_FILE_SIZE - off)
		return -EFBIG;
	if (fs->ro)
		return -EROFS;
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (!ufs_isreg(ip)) {
		rc = ufs_isdir(ip) ? -EISDIR : -ENODEV;
		goto out;
	}
	pthread_rwlock_wrlock(&ip->rwsem);
	switch (mode) {
	case 0:
	case FALLOC_FL_KEEP_SIZE:
		rc = alloc_range(ip, off >> UFS_BLOCK_SHIFT, blocks_up(off + len),
				 mode ? ip->di->i_size : udax_max(ip->di->i_size, off + len));
		break;
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
		rc = do_punch(ip, off, len, w);
		break;
	case FALLOC_FL_ZERO_RANGE:
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
		rc = do_zero(ip, off, len, mode & FALLOC_FL_KEEP_SIZE, w);
		break;
	case FALLOC_FL_COLLAPSE_RANGE:
		rc = do_collapse(ip, off, len, w);
		break;
	case FALLOC_FL_INSERT_RANGE:
		rc = do_insert(ip, off, len, w);
		break;
	}
	pthread_rwlock_unlock(&ip->rwsem);
out:
	ufs_iput(ip);
	return rc;
}

int64_t ufs_lseek(struct ufs *fs, uint64_t ino, int64_t off, int whence)
{
	struct ufs_inode *ip;
	struct ufs_extent e;
	uint64_t size, b;
	int64_t rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0)
		return -ENXIO;
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&ip->rwsem);
	size = ip->di->i_size;
	if ((uint64_t)off >= size) {
		rc = -ENXIO;
		goto out;
	}
	b = (uint64_t)off >> UFS_BLOCK_SHIFT;
	if (whence == SEEK_DATA) {
		rc = ufs_ext_find(ip, b, &e);
		if (rc < 0)
			goto out;
		if (rc == 1)
			rc = off;
		else if (e.e_len && (e.e_lblk << UFS_BLOCK_SHIFT) < size)
			rc = (int64_t)(e.e_lblk << UFS_BLOCK_SHIFT);
		else
			rc = -ENXIO;
		goto out;
	}
	for (;;) {
		rc = ufs_ext_find(ip, b, &e);
		if (rc < 0)
			goto out;
		if (rc == 0)
			break;
		b = e.e_lblk + e.e_len;
		if ((b << UFS_BLOCK_SHIFT) >= size)
			break;
	}
	rc = (int64_t)udax_min(udax_max((uint64_t)off, b << UFS_BLOCK_SHIFT), size);
out:
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc;
}

#define CFR_CHUNK (1u << 20)
#define CFR_MAX (64u << 20)

ssize_t ufs_copy_file_range(struct ufs *fs, const struct ufs_ctx *c,
			    uint64_t ino_in, uint64_t off_in,
			    uint64_t ino_out, uint64_t off_out, size_t len, unsigned int flags)
{
	size_t done = 0;
	ssize_t rc = 0;
	char *buf;

	if (flags)
		return -EINVAL;
	if (ino_in == ino_out && off_in < off_out + len && off_out < off_in + len)
		return -EINVAL;
	len = udax_min(len, (size_t)CFR_MAX);
	buf = malloc(udax_min(len, (size_t)CFR_CHUNK) + 1);
	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t n = udax_min(len - done, (size_t)CFR_CHUNK);
		ssize_t r = ufs_read(fs, ino_in, buf, n, off_in + done), wr;

		if (r <= 0) {
			rc = r;
			break;
		}
		wr = ufs_write(fs, c, ino_out, buf, (size_t)r, off_out + done);
		if (wr < 0) {
			rc = wr;
			break;
		}
		done += (size_t)wr;
		if (wr < r || (size_t)r < n)
			break;
	}
	free(buf);
	return done ? (ssize_t)done : rc;
}

/* ---- direct access ---- */

static void put_segs(struct ufs_layout_seg *out, int n)
{
	while (n-- > 0)
		udax_page_put(out[n].page, UDAX_REF_MAP);
}

/*
 * Take i_rwsem for a grant, but never wait behind a break_layouts that is
 * waiting for clients: the layout service that asks for this grant may be
 * the very thread that must deliver their unpins (deadlock).  While a
 * recall is under way the answer is -EBUSY, as udax_track() would give.
 * Every breaker holds i_rwsem, so once we have it none is running.
 */
static int grant_lock(struct ufs_inode *ip)
{
	for (;;) {
		struct timespec ts;

		if (__atomic_load_n(&ip->map.recalling, __ATOMIC_ACQUIRE))
			return -EBUSY;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!pthread_rwlock_timedwrlock(&ip->rwsem, &ts))
			return 0;
	}
}

/*
 * On a device whose mappings must be 2 MiB aligned (a device-DAX's default
 * alignment), a layout can only hand out whole 2 MiB chunks each backed by
 * one 2 MiB-aligned device run.  huge_chunk() makes the chunk at @hidx so:
 * nothing to do when it already is one aligned run; otherwise (holes, or
 * blocks written earlier in 4 KiB pieces through FUSE) a fresh aligned run
 * is allocated, the old contents copied into it (holes as zeros) before it
 * becomes reachable, and one transaction replaces the chunk's extents with
 * it and frees the old blocks.  The old blocks cannot be tracked: a 4 KiB
 * entry on such a device could never have been mapped, and any entry in the
 * chunk makes us refuse (-EBUSY) rather than move blocks under it.  Blocks
 * past EOF stay allocated past EOF: i_size is not changed here.
 * Context: i_rwsem held exclusively, layout lock not held (taken here).
 * Return: 0, -ENOSPC (no free 2 MiB run, or the journal cannot hold the
 * swap), -EROFS (read-only mount and the chunk needs work), -EBUSY, -EIO.
 */
static int huge_chunk(struct ufs_inode *ip, uint64_t hidx)
{
	struct ufs *fs = ip->fs;
	char *dst;
	struct ufs_extent e;
	uint64_t i, pblk, next;
	uint32_t got;
	struct utx t;
	int rc;

	rc = ufs_ext_find(ip, hidx, &e);
	if (rc < 0)
		return rc;
	if (rc == 1 && hidx + UFS_HUGE_BLOCKS <= e.e_lblk + e.e_len &&
	    (e.e_pblk + (hidx - e.e_lblk)) % UFS_HUGE_BLOCKS == 0)
		return 0;
	if (fs->ro) {
		udax_seterr("read-only mount: file block %" PRIu64 " is not in one 2 MiB aligned "
			    "device run, which this device's alignment needs", hidx);
		return -EROFS;
	}
	udax_layout_lock_excl(&ip->map);
	for (i = 0; i < UFS_HUGE_BLOCKS; i++) {
		uint64_t ent = udax_entry_peek(&ip->map, hidx + i);

		if (ent && !udax_entry_empty(ent)) {
			udax_layout_unlock_excl(&ip->map);
			return -EBUSY;
		}
	}
	rc = utx_begin_inode(&t, ip);
	if (!rc)
		rc = ufs_alloc_blocks(fs->a, t.tx, 0, UFS_HUGE_BLOCKS, UFS_HUGE_BLOCKS,
				      UFS_ALLOC_HUGE, &pblk, &got);
	if (rc)
		goto abort;
	UDAX_BUG_ON(got != UFS_HUGE_BLOCKS || pblk % UFS_HUGE_BLOCKS);
	dst = ufs_blk(fs, pblk);
	for (i = 0; i < UFS_HUGE_BLOCKS;) {
		uint64_t cur = hidx + i, n;

		rc = ufs_ext_find(ip, cur, &e);
		if (rc < 0)
			goto abort;
		if (rc == 1) {
			n = udax_min(e.e_lblk + e.e_len - cur, (uint64_t)UFS_HUGE_BLOCKS - i);
			udax_media_memcpy_persist(fs->m, dst + (i << UFS_BLOCK_SHIFT),
						  ufs_blk(fs, e.e_pblk + (cur - e.e_lblk)),
						  n << UFS_BLOCK_SHIFT);
		} else {
			n = (uint64_t)UFS_HUGE_BLOCKS - i;
			if (e.e_len && e.e_lblk < hidx + UFS_HUGE_BLOCKS)
				n = e.e_lblk - cur;
			udax_media_memset_persist(fs->m, dst + (i << UFS_BLOCK_SHIFT), 0,
						  n << UFS_BLOCK_SHIFT);
		}
		i += n;
	}
	rc = ufs_ext_remove(&t, ip, hidx, hidx + UFS_HUGE_BLOCKS, &next);
	if (!rc && next > hidx) {
		udax_seterr("the journal cannot hold the relocation of file blocks %" PRIu64
			    "..+%u to an aligned run", hidx, UFS_HUGE_BLOCKS);
		rc = -ENOSPC;
	}
	if (!rc)
		rc = ufs_ext_insert(&t, ip, hidx, pblk, UFS_HUGE_BLOCKS);
	if (rc)
		goto abort;
	ufs_iblocks(ip, UFS_HUGE_BLOCKS);
	utx_commit(&t);
	udax_layout_unlock_excl(&ip->map);
	return 0;
abort:
	utx_abort(&t);
	udax_layout_unlock_excl(&ip->map);
	return rc;
}

/* mtime and ctime = now, in a transaction of their own.  Context: i_rwsem held. */
static int touch_modified(struct ufs_inode *ip)
{
	struct utx t;
	int rc;

	rc = utx_begin_inode(&t, ip);
	if (rc) {
		utx_abort(&t);
		return rc;
	}
	ufs_touch(ip, false, true, true);
	utx_commit(&t);
	return 0;
}

int ufs_layout_grant(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, uint64_t off,
		     uint64_t len, bool write, struct ufs_layout_seg *out, size_t max)
{
	return ufs_layout_grant_size(fs, c, ino, off, len, off + len,
				     write ? UFS_GRANT_WRITE : 0, out, max);
}

int ufs_layout_grant_size(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, uint64_t off,
			  uint64_t len, uint64_t size_end, unsigned int flags,
			  struct ufs_layout_seg *out, size_t max)
{
	bool write = flags & UFS_GRANT_WRITE;
	uint64_t align = udax_media_align(fs->m), b0, b1, idx;
	struct ufs_inode *ip;
	int rc, nseg = 0;

	(void)c;
	if (!len || ((off | len) & (UFS_BLOCK_SIZE - 1)) || max < len / UFS_BLOCK_SIZE)
		return -EINVAL;
	if (off > UFS_MAX_FILE_SIZE || len > UFS_MAX_FILE_SIZE - off)
		return -EFBIG;
	if (size_end > off + len)
		return -EINVAL;
	if (align > UFS_BLOCK_SIZE) {
		if (align != (uint64_t)UFS_HUGE_BLOCKS << UFS_BLOCK_SHIFT) {
			udax_seterr("device alignment %#" PRIx64 " is not supported for direct "
				    "access (only 4 KiB and 2 MiB are)", align);
			return -EINVAL;
		}
		len = UDAX_ALIGN_UP(off + len, align) - (off & ~(align - 1));
		off &= ~(align - 1);
		if (len > UFS_MAX_FILE_SIZE - off)
			return -EFBIG;
	}
	b0 = off >> UFS_BLOCK_SHIFT;
	b1 = (off + len) >> UFS_BLOCK_SHIFT;
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (!ufs_isreg(ip)) {
		ufs_iput(ip);
		return ufs_isdir(ip) ? -EISDIR : -EINVAL;
	}
	rc = grant_lock(ip);
	if (rc) {
		ufs_iput(ip);
		return rc;
	}
	if (write && (flags & UFS_GRANT_KEEP_SIZE) && ip->di->i_size < size_end) {
		udax_seterr("the file ends at %" PRIu64 ", before the end of the writable "
			    "mapping (%" PRIu64 "): grow it through the mount first",
			    ip->di->i_size, size_end);
		pthread_rwlock_unlock(&ip->rwsem);
		ufs_iput(ip);
		return -ERANGE;
	}
	rc = 0;
	/* whole aligned chunks first (they take the layout lock exclusively) */
	for (idx = b0; align > UFS_BLOCK_SIZE && idx < b1 && !rc; idx += UFS_HUGE_BLOCKS)
		rc = huge_chunk(ip, idx);
	if (rc) {
		pthread_rwlock_unlock(&ip->rwsem);
		ufs_iput(ip);
		return rc;
	}
	udax_layout_lock_shared(&ip->map);
	if (!fs->ro) {
		uint64_t newsize = write ? udax_max(ip->di->i_size, size_end) : ip->di->i_size;

		rc = alloc_range(ip, b0, b1, newsize);
		/*
		 * The client may store from now on without telling us (a
		 * kernel DAX file system updates the times on write faults):
		 * granting write access modifies the file.
		 */
		if (!rc && write)
			rc = touch_modified(ip);
	} else if (write) {
		rc = -EROFS;
	}
	if (rc)
		goto out;
	for (idx = b0; idx < b1;) {
		uint64_t hidx = idx & ~(uint64_t)(UFS_HUGE_BLOCKS - 1), pfn, hpfn;
		struct udax_page *pg;
		struct ufs_extent e;
		bool huge_ok;

		rc = ufs_ext_find(ip, idx, &e);
		if (rc != 1) {
			rc = rc < 0 ? rc : -EIO;	/* read-only mount with a hole */
			goto fail;
		}
		pfn = e.e_pblk + (idx - e.e_lblk);
		hpfn = e.e_pblk + (hidx - e.e_lblk);
		huge_ok = e.e_lblk <= hidx && hidx + UFS_HUGE_BLOCKS <= e.e_lblk + e.e_len &&
			  hpfn % UFS_HUGE_BLOCKS == 0;
		rc = -EEXIST;
		if (huge_ok && idx == hidx && hidx + UFS_HUGE_BLOCKS <= b1)
			rc = udax_track(&ip->map, hidx, hpfn, UDAX_HUGE_ORDER, UDAX_REF_MAP, &pg);
		if (rc == 0) {
			out[nseg].order = UDAX_HUGE_ORDER;
			out[nseg].file_off = hidx << UFS_BLOCK_SHIFT;
			out[nseg].dev_off = hpfn << UFS_BLOCK_SHIFT;
			out[nseg++].page = pg;
			idx = hidx + UFS_HUGE_BLOCKS;
			continue;
		}
		if (rc != -EEXIST)
			goto fail;
		rc = udax_track(&ip->map, idx, pfn, 0, UDAX_REF_MAP, &pg);
		if (rc == -EEXIST && huge_ok) {
			/* a 2 MiB entry already covers it: hand that one out */
			rc = udax_track(&ip->map, hidx, hpfn, UDAX_HUGE_ORDER, UDAX_REF_MAP, &pg);
			if (rc == 0) {
				out[nseg].order = UDAX_HUGE_ORDER;
				out[nseg].file_off = hidx << UFS_BLOCK_SHIFT;
				out[nseg].dev_off = hpfn << UFS_BLOCK_SHIFT;
				out[nseg++].page = pg;
				idx = hidx + UFS_HUGE_BLOCKS;
				continue;
			}
		}
		if (rc)
			goto fail;
		out[nseg].order = 0;
		out[nseg].file_off = idx << UFS_BLOCK_SHIFT;
		out[nseg].dev_off = pfn << UFS_BLOCK_SHIFT;
		out[nseg++].page = pg;
		idx++;
	}
	rc = nseg;
	goto out;
fail:
	put_segs(out, nseg);
out:
	udax_layout_unlock_shared(&ip->map);
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc;
}

struct udax_mapping *ufs_mapping(struct ufs *fs, uint64_t ino)
{
	struct ufs_inode *ip;
	struct udax_mapping *m;

	if (ufs_iget(fs, ino, &ip))
		return NULL;
	m = &ip->map;
	/* the caller's lookup or open reference keeps the inode cached */
	ufs_iput(ip);
	return m;
}
