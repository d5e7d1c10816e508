// SPDX-License-Identifier: MIT
/*
 * txn.c - the transaction wrapper of the file system layer (struct utx)
 * over the journal: what a change logs before it stores, and the
 * checksums of inodes, extent nodes and the superblock recomputed at
 * commit.  The lowest piece of the layer: everything else calls it, it
 * calls only the journal.
 */
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufs_int.h"

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

	crc = dx_crc32c(0, b, offsetof(struct ufs_extent_hdr, h_checksum));
	crc = dx_crc32c(crc, zero, 4);
	return dx_crc32c(crc, b + offsetof(struct ufs_extent_hdr, h_pad),
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
		dx_media_flush(t->fs->m, h, UFS_BLOCK_SIZE);
	}
	if (t->nblks)
		dx_media_drain(t->fs->m);
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
