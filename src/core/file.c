// SPDX-License-Identifier: MIT
/*
 * file.c - file data: read (also without a copy: ufs_read_iov()), write,
 * fsync, lseek and copy_file_range.
 *
 * Data is written in place with persisting stores before the transaction
 * that makes fresh blocks reachable commits, so a crash never exposes a
 * stale block, and write() data is durable when it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inode_int.h"

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
	dx_media_memcpy_persist(a->fs->m, dev, a->buf + (foff - a->base), n);
	return 0;
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
		uint64_t k = dev ? n : dx_min(n, (uint64_t)ZERO_REGION);
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
	size = (size_t)dx_min((uint64_t)size, isize - dx_min(off, isize));
	if (size && iov_max(off, size) > READ_IOV_STACK) {
		a.max = iov_max(off, size);
		a.iov = malloc(a.max * sizeof(*a.iov));
		if (!a.iov)
			rc = -ENOMEM;
	}
	if (!rc && size)
		rc = ufs_for_each_piece(ip, off, size, piece_iov, &a);
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
	uint64_t b0 = off >> UFS_BLOCK_SHIFT, b1 = ufs_blocks_up(off + len), old = ip->di->i_size;
	struct utx t;
	int64_t got;
	int rc;

	rc = utx_begin_inode(&t, ip);
	if (!rc)
		rc = ufs_zero_past_eof(ip, old, off);
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
		rc = ufs_for_each_piece(ip, off, len, piece_write, &a);
		if (rc) {
			utx_commit(&t);
			return rc;
		}
		if (off + len > old)
			ufs_set_size(ip, off + len);
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
	rc = ufs_iget_reg(fs, ino, &ip);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&ip->rwsem);
	while (done < size) {
		uint64_t pos = off + done;
		uint64_t max = ((uint64_t)UFS_STEP_BLOCKS << UFS_BLOCK_SHIFT) -
			       (pos & (UFS_BLOCK_SIZE - 1));
		uint64_t n = dx_min((uint64_t)size - done, max);

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
	dx_media_drain(fs->m);
	ufs_iput(ip);
	return 0;
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
	rc = (int64_t)dx_min(dx_max((uint64_t)off, b << UFS_BLOCK_SHIFT), size);
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
	len = dx_min(len, (size_t)CFR_MAX);
	buf = malloc(dx_min(len, (size_t)CFR_CHUNK) + 1);
	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t n = dx_min(len - done, (size_t)CFR_CHUNK);
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
