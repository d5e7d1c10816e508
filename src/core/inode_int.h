/* SPDX-License-Identifier: MIT */
/*
 * inode_int.h - what the files of the file-data layer share: inode.c
 * (truncate, eviction, attributes, open/release), file.c (read, write,
 * fsync, lseek, copy_file_range), falloc.c (fallocate) and grant.c (the
 * layout grants of the direct-access path).
 */
#ifndef UDAX_INODE_INT_H
#define UDAX_INODE_INT_H

#include "ufs_int.h"

static inline uint64_t ufs_blocks_up(uint64_t bytes)
{
	return (bytes + UFS_BLOCK_SIZE - 1) >> UFS_BLOCK_SHIFT;
}

/* Context: i_rwsem exclusive, in a transaction with the inode logged. */
static inline void ufs_set_size(struct ufs_inode *ip, uint64_t size)
{
	ip->di->i_size = size;
}

/*
 * ufs_iget_reg() - the regular file @ino, referenced (the file-data calls).
 * Return: 0, -EISDIR or -EINVAL (another type), or what ufs_iget() returned.
 */
int ufs_iget_reg(struct ufs *fs, uint64_t ino, struct ufs_inode **out);
/*
 * ufs_touch_tx() - in a transaction of its own: the size = @newsize, the
 * ctime and (with @m) the mtime = now.  Context: i_rwsem exclusive.
 * Return: 0 or -errno.
 */
int ufs_touch_tx(struct ufs_inode *ip, bool m, uint64_t newsize);

/* The wait context of @c's request (NULL: wait without interruption). */
const struct dx_wait_ctx *ufs_wctx(const struct ufs_ctx *c);

/*
 * ufs_for_each_piece() - walk the mapped pieces of the byte range
 * [off, off + len): @fn gets the device address (NULL for a hole), the
 * file offset and the length; a non-zero return stops the walk.
 * Context: i_rwsem held.  Return: 0, what @fn returned, or -errno.
 */
int ufs_for_each_piece(struct ufs_inode *ip, uint64_t off, uint64_t len,
		       int (*fn)(void *arg, char *dev, uint64_t foff, uint64_t n), void *arg);
/* Zero the mapped bytes of [off, off + len), durably.  Context: i_rwsem held. */
int ufs_zero_mapped(struct ufs_inode *ip, uint64_t off, uint64_t len);
/*
 * ufs_zero_past_eof() - the size grows from @old to @new: zero what a
 * direct-access client may have stored past the old end of file in its
 * last block.  Context: i_rwsem exclusive.
 */
int ufs_zero_past_eof(struct ufs_inode *ip, uint64_t old, uint64_t new);

/*
 * How the last step of ufs_remove_blocks() finishes the operation inside its
 * own transaction, so that an operation that fits one transaction is atomic
 * across a crash.
 */
struct ufs_rm_finish {
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
 * ufs_remove_blocks() - unmap and free blocks [first, end) in as many
 * transactions as the journal needs, from the end; the last step applies
 * the rest of @f (may be NULL).
 * Context: i_rwsem and the layout lock held exclusively, range untracked.
 * Return: 0 or -errno.
 */
int ufs_remove_blocks(struct ufs_inode *ip, uint64_t first, uint64_t end,
		      const struct ufs_rm_finish *f);
/*
 * ufs_alloc_range() - allocate (zeroed) every hole of blocks [b0, b1),
 * growing the size to @newsize if larger (falloc.c).
 * Context: i_rwsem exclusive.  Return: 0 or -errno.
 */
int ufs_alloc_range(struct ufs_inode *ip, uint64_t b0, uint64_t b1, uint64_t newsize);

#endif /* UDAX_INODE_INT_H */
