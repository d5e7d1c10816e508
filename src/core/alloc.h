/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - block and inode allocators over the on-media bitmaps.
 *
 * The block allocator keeps 2 MiB-aligned runs available for large files:
 * it keeps a DRAM count of free blocks per 2 MiB chunk; requests smaller
 * than a chunk are served from partly used chunks first, requests of a
 * chunk or more take whole free chunks (2 MiB aligned), so huge direct
 * mappings stay possible.  DRAM cost: 2 bytes per 2 MiB of device.
 *
 * Every bitmap change is made inside the caller's transaction.  The free
 * path checks invariant I1 (dx_dax_assert_free(), always on) before a
 * single bit is cleared.
 */
#ifndef UDAX_ALLOC_H
#define UDAX_ALLOC_H

#include <stdint.h>

#include "dax.h"
#include "format.h"
#include "journal.h"
#include "media.h"

struct ufs_alloc;

/*
 * ufs_alloc_open() - scan the bitmaps and build the DRAM summary.
 * Context: mount, after journal recovery, before any transaction.
 * Return: 0 with *@out set, -ENOMEM, -EUCLEAN (a bitmap contradicts the
 * superblock; dx_errmsg() says which).
 */
int ufs_alloc_open(struct ufs_alloc **out, struct dx_media *m, const struct ufs_super *sb,
		   struct dx_dax *dax);
/*
 * ufs_alloc_close() - free the allocator and clear *@ap (NULL-safe).
 * Context: unmount, no transaction open.  Return: nothing.
 */
void ufs_alloc_close(struct ufs_alloc **ap);

#define UFS_ALLOC_HUGE 0x1	/* want a 2 MiB aligned run (goal ignored) */

/*
 * ufs_alloc_blocks() - allocate one contiguous run of between @min and
 * @want blocks, preferably at @goal (0: no preference).
 * Context: inside @tx.  Return: 0 with *pblk and *got set; -ENOSPC.
 */
int ufs_alloc_blocks(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t goal, uint32_t want,
		     uint32_t min, unsigned int flags, uint64_t *pblk, uint32_t *got);
/*
 * ufs_free_blocks() - free the run [@pblk, @pblk + @len).  Asserts I1 (no
 * page of it still referenced) first; a quarantined block joins the
 * quarantine instead of the free pool.
 * Context: inside @tx.  Return: 0, -EINVAL (outside the data area or not
 * allocated), -ENOMEM, -ENOSPC (log full).
 */
int ufs_free_blocks(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t pblk, uint32_t len);

/* A run of blocks. */
struct ufs_blk_range {
	uint64_t pblk, len;
};

/*
 * ufs_alloc_quarantine() - never hand out blocks of @r[0..n): they may
 * still be under a pin taken through an earlier mount (see the daemon's
 * pinrec.h).  A quarantined block that is free stays free on the media but
 * is not counted or allocated; one that a file frees later joins it
 * instead of the free pool.  Lasts until the allocator is closed.  Ranges
 * may overlap and may reach outside the data area (clipped).
 * Context: before the first allocation or free (at mount).  Return: 0, -ENOMEM.
 */
int ufs_alloc_quarantine(struct ufs_alloc *a, const struct ufs_blk_range *r, size_t n);
/*
 * ufs_alloc_quarantined() - Context: takes the allocator lock.
 * Return: blocks under quarantine (free or in use).
 */
uint64_t ufs_alloc_quarantined(const struct ufs_alloc *a);

/*
 * ufs_ialloc() - take a free inode slot.
 * Context: inside @tx.  Return: 0 with *@ino; -ENOSPC (table full or log full).
 */
int ufs_ialloc(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t *ino);
/*
 * ufs_ifree() - give inode slot @ino back.
 * Context: inside @tx.  Return: 0; -EINVAL (the root, out of range, or
 * not allocated: dx_errmsg() says which); -ENOSPC (log full).
 */
int ufs_ifree(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t ino);

/* ufs_alloc_free_blocks() - Context: takes the allocator lock.  Return: free, allocatable blocks. */
uint64_t ufs_alloc_free_blocks(const struct ufs_alloc *a);
/* ufs_alloc_free_inodes() - Context: takes the allocator lock.  Return: free inode slots. */
uint64_t ufs_alloc_free_inodes(const struct ufs_alloc *a);
/*
 * ufs_alloc_test() - is block @pblk allocated in the bitmap?  (fsck and tests)
 * Context: takes the allocator lock.  Return: 1, 0, -EINVAL (past the device).
 */
int ufs_alloc_test(const struct ufs_alloc *a, uint64_t pblk);
/* The first block of [pblk, pblk + len) that is free in the bitmap (or past
 * the device), or pblk + len. */
uint64_t ufs_alloc_first_free(const struct ufs_alloc *a, uint64_t pblk, uint64_t len);
/* Is inode slot @ino allocated in the bitmap?  1 yes, 0 no, -EINVAL past the table. */
int ufs_alloc_itest(const struct ufs_alloc *a, uint64_t ino);

#endif /* UDAX_ALLOC_H */
