/* SPDX-License-Identifier: MIT */
/*
 * extent.h - the on-media rules of extent tree nodes (format.h), shared by
 * the extent code (extent.c) and fsck, so that fsck never calls clean a
 * tree that mount refuses.  Pure functions of the bytes they are given:
 * the caller reads the node (and checks its block lies in the data area)
 * first.
 */
#ifndef UDAX_EXTENT_H
#define UDAX_EXTENT_H

#include <stdbool.h>

#include "format.h"

/*
 * ufs_ext_hdr_check() - is @h a sound node header: magic, capacity (the
 * inode's UFS_INLINE_EXTENTS slots for the root, UFS_NODE_ENTRIES for a
 * block), entries within it, and depth (a block node: @depth, the one its
 * parent expects; the root: at most the deepest tree, and an index root
 * is never empty)?
 * Context: any; reads only @h.
 * Return: NULL when sound, else what is wrong (a static string).
 */
const char *ufs_ext_hdr_check(const struct ufs_extent_hdr *h, bool root, unsigned int depth);

/*
 * ufs_ext_leaf_check() - does leaf extent @e of a file system described by
 * @sb map device blocks inside the data area, and logical blocks below the
 * largest file?  (Order and overlap are the walker's to judge.)
 * Context: any; reads only @sb and @e.
 * Return: NULL when sound, else what is wrong (a static string).
 */
const char *ufs_ext_leaf_check(const struct ufs_super *sb, const struct ufs_extent *e);

#endif /* UDAX_EXTENT_H */
