// SPDX-License-Identifier: MIT
/*
 * grant.c - the layout grants of the direct-access path: allocate and
 * track the pages of a range under i_rwsem and the layout lock, so no
 * truncate frees a block between allocation and tracking.
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

/* One segment: the page of @order at file block @idx, device block @pfn. */
static void set_seg(struct ufs_layout_seg *s, unsigned int order, uint64_t idx, uint64_t pfn,
		    struct dx_page *pg)
{
	s->order = order;
	s->file_off = idx << UFS_BLOCK_SHIFT;
	s->dev_off = pfn << UFS_BLOCK_SHIFT;
	s->page = pg;
}

static void put_segs(struct ufs_layout_seg *out, int n)
{
	while (n-- > 0)
		dx_page_put(out[n].page, UDAX_REF_MAP);
}

/*
 * Take i_rwsem for a grant, but never wait behind a break_layouts that is
 * waiting for clients: the layout service that asks for this grant may be
 * the very thread that must deliver their unpins (deadlock).  While a
 * recall is under way the answer is -EBUSY, as dx_track() would give.
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
		dx_seterr("read-only mount: file block %" PRIu64 " is not in one 2 MiB aligned "
			    "device run, which this device's alignment needs", hidx);
		return -EROFS;
	}
	dx_layout_lock_excl(&ip->map);
	for (i = 0; i < UFS_HUGE_BLOCKS; i++) {
		uint64_t ent = dx_entry_peek(&ip->map, hidx + i);

		if (ent && !dx_entry_empty(ent)) {
			dx_layout_unlock_excl(&ip->map);
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
			n = dx_min(e.e_lblk + e.e_len - cur, (uint64_t)UFS_HUGE_BLOCKS - i);
			dx_media_memcpy_persist(fs->m, dst + (i << UFS_BLOCK_SHIFT),
						  ufs_blk(fs, e.e_pblk + (cur - e.e_lblk)),
						  n << UFS_BLOCK_SHIFT);
		} else {
			n = (uint64_t)UFS_HUGE_BLOCKS - i;
			if (e.e_len && e.e_lblk < hidx + UFS_HUGE_BLOCKS)
				n = e.e_lblk - cur;
			dx_media_memset_persist(fs->m, dst + (i << UFS_BLOCK_SHIFT), 0,
						  n << UFS_BLOCK_SHIFT);
		}
		i += n;
	}
	rc = ufs_ext_remove(&t, ip, hidx, hidx + UFS_HUGE_BLOCKS, &next);
	if (!rc && next > hidx) {
		dx_seterr("the journal cannot hold the relocation of file blocks %" PRIu64
			    "..+%u to an aligned run", hidx, UFS_HUGE_BLOCKS);
		rc = -ENOSPC;
	}
	if (!rc)
		rc = ufs_ext_insert(&t, ip, hidx, pblk, UFS_HUGE_BLOCKS);
	if (rc)
		goto abort;
	ufs_iblocks(ip, UFS_HUGE_BLOCKS);
	utx_commit(&t);
	dx_layout_unlock_excl(&ip->map);
	return 0;
abort:
	utx_abort(&t);
	dx_layout_unlock_excl(&ip->map);
	return rc;
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
	uint64_t align = dx_media_align(fs->m), b0, b1, idx;
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
			dx_seterr("device alignment %#" PRIx64 " is not supported for direct "
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
	rc = ufs_iget_reg(fs, ino, &ip);
	if (rc)
		return rc;
	rc = grant_lock(ip);
	if (rc) {
		ufs_iput(ip);
		return rc;
	}
	if (write && (flags & UFS_GRANT_KEEP_SIZE) && ip->di->i_size < size_end) {
		dx_seterr("the file ends at %" PRIu64 ", before the end of the writable "
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
	dx_layout_lock_shared(&ip->map);
	if (!fs->ro) {
		uint64_t newsize = write ? dx_max(ip->di->i_size, size_end) : ip->di->i_size;

		rc = ufs_alloc_range(ip, b0, b1, newsize);
		/*
		 * The client may store from now on without telling us (a
		 * kernel DAX file system updates the times on write faults):
		 * granting write access modifies the file.
		 */
		if (!rc && write)
			rc = ufs_touch_tx(ip, true, ip->di->i_size);
	} else if (write) {
		rc = -EROFS;
	}
	if (rc)
		goto out;
	for (idx = b0; idx < b1;) {
		uint64_t hidx = idx & ~(uint64_t)(UFS_HUGE_BLOCKS - 1), pfn, hpfn;
		struct dx_page *pg;
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
			rc = dx_track(&ip->map, hidx, hpfn, UDAX_HUGE_ORDER, UDAX_REF_MAP, &pg);
		if (rc == -EEXIST) {
			rc = dx_track(&ip->map, idx, pfn, 0, UDAX_REF_MAP, &pg);
			if (rc == 0) {
				set_seg(&out[nseg++], 0, idx, pfn, pg);
				idx++;
				continue;
			}
			/* a 2 MiB entry already covers it: hand that one out */
			if (rc == -EEXIST && huge_ok)
				rc = dx_track(&ip->map, hidx, hpfn, UDAX_HUGE_ORDER, UDAX_REF_MAP, &pg);
		}
		if (rc)
			goto fail;
		set_seg(&out[nseg++], UDAX_HUGE_ORDER, hidx, hpfn, pg);
		idx = hidx + UFS_HUGE_BLOCKS;
	}
	rc = nseg;
	goto out;
fail:
	put_segs(out, nseg);
out:
	dx_layout_unlock_shared(&ip->map);
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc;
}

struct dx_mapping *ufs_mapping(struct ufs *fs, uint64_t ino)
{
	struct ufs_inode *ip;
	struct dx_mapping *m;

	if (ufs_iget(fs, ino, &ip))
		return NULL;
	m = &ip->map;
	/* the caller's lookup or open reference keeps the inode cached */
	ufs_iput(ip);
	return m;
}
