// SPDX-License-Identifier: MIT
/*
 * falloc.c - fallocate: preallocate, punch, zero, collapse and insert
 * ranges, each freeing path in the shape inode.c describes.
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

/* Allocate (zeroed) every hole of [b0, b1), growing the size to @newsize if larger. */
int ufs_alloc_range(struct ufs_inode *ip, uint64_t b0, uint64_t b1, uint64_t newsize)
{
	uint64_t cur = b0;
	int rc = 0;

	while (cur < b1 || (cur == b1 && newsize > ip->di->i_size)) {
		uint64_t n = dx_min(b1 - cur, (uint64_t)UFS_STEP_BLOCKS);
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
			uint64_t sz = dx_min(newsize, cur << UFS_BLOCK_SHIFT);

			if (cur >= b1)
				sz = newsize;
			if (sz > old) {
				rc = ufs_zero_past_eof(ip, old, sz);
				ufs_set_size(ip, sz);
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

static int do_punch(struct ufs_inode *ip, uint64_t off, uint64_t len,
		    const struct dx_wait_ctx *w)
{
	uint64_t end = off + len, fb = ufs_blocks_up(off), lb = end >> UFS_BLOCK_SHIFT;
	int rc;

	if (fb >= lb) {
		/* inside one block (or two partial ones): zero in place */
		rc = ufs_zero_mapped(ip, off, len);
	} else {
		struct ufs_rm_finish fin = { .touch = true };

		rc = ufs_break(ip, off >> UFS_BLOCK_SHIFT, (end - 1) >> UFS_BLOCK_SHIFT, w);
		if (rc)
			return rc;
		rc = ufs_zero_mapped(ip, off, (fb << UFS_BLOCK_SHIFT) - off);
		if (!rc)
			rc = ufs_zero_mapped(ip, lb << UFS_BLOCK_SHIFT, end - (lb << UFS_BLOCK_SHIFT));
		if (!rc)
			rc = ufs_remove_blocks(ip, fb, lb, &fin);
		dx_layout_unlock_excl(&ip->map);
		return rc;
	}
	if (rc)
		return rc;
	return ufs_touch_tx(ip, true, ip->di->i_size);
}

static int do_zero(struct ufs_inode *ip, uint64_t off, uint64_t len, bool keep,
		   const struct dx_wait_ctx *w)
{
	uint64_t end = off + len, b0 = off >> UFS_BLOCK_SHIFT, b1 = ufs_blocks_up(end);
	uint64_t newsize = keep ? ip->di->i_size : dx_max(ip->di->i_size, end);
	int rc;

	rc = ufs_break(ip, b0, b1 - 1, w);
	if (rc)
		return rc;
	rc = ufs_zero_mapped(ip, off, len);
	dx_layout_unlock_excl(&ip->map);
	if (!rc)
		rc = ufs_alloc_range(ip, b0, b1, newsize);
	if (!rc)
		rc = ufs_touch_tx(ip, true, dx_max(newsize, ip->di->i_size));
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
		dx_seterr("inode %llu: shifting its extents needs %zu bytes of journal, %zu free",
			    (unsigned long long)ip->ino, cost, room);
		return -ENOSPC;
	}
	if (costp)
		*costp = cost;
	return 0;
}

static int do_collapse(struct ufs_inode *ip, uint64_t off, uint64_t len,
		       const struct dx_wait_ctx *w)
{
	uint64_t ob = off >> UFS_BLOCK_SHIFT, nb = len >> UFS_BLOCK_SHIFT;
	struct ufs_rm_finish fin = {
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
	rc = ufs_remove_blocks(ip, ob, ob + nb, &fin);
	dx_layout_unlock_excl(&ip->map);
	return rc;
}

static int do_insert(struct ufs_inode *ip, uint64_t off, uint64_t len,
		     const struct dx_wait_ctx *w)
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
	ufs_set_size(ip, ip->di->i_size + len);
	ufs_touch(ip, false, true, true);
	utx_commit(&t);
out:
	dx_layout_unlock_excl(&ip->map);
	return rc;
}

int ufs_fallocate(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, int mode,
		  uint64_t off, uint64_t len)
{
	const struct dx_wait_ctx *w = ufs_wctx(c);
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
		rc = ufs_alloc_range(ip, off >> UFS_BLOCK_SHIFT, ufs_blocks_up(off + len),
				 mode ? ip->di->i_size : dx_max(ip->di->i_size, off + len));
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
