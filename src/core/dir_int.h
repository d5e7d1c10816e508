/* SPDX-License-Identifier: MIT */
/*
 * dir_int.h - what the namespace shares: dir.c (a directory's record
 * blocks, their DRAM index and readdir) and namei.c (the operations that
 * change the namespace).  A record is named by its byte position in the
 * directory (never 0: block 0 starts with its header); namei.c never
 * reads a record or the index itself.
 */
#ifndef UDAX_DIR_INT_H
#define UDAX_DIR_INT_H

#include "ufs_int.h"

/* The name hash kept in each record's d_hash: crc32c of the name, never 0. */
uint32_t ufs_name_hash(const char *name, size_t len);

/*
 * ufs_dir_get() - the directory inode @ino, referenced.
 * Context: ns_lock held.  Return: 0, -ENOTDIR, or what ufs_iget() returned.
 */
int ufs_dir_get(struct ufs *fs, uint64_t ino, struct ufs_inode **out);
/*
 * ufs_dir_find() - the position of @name in @dir in *@pos, 0 if absent.
 * Context: ns_lock held.  Return: 0, or -errno when the index cannot be
 * built (a corrupt directory, no memory).
 */
int ufs_dir_find(struct ufs_inode *dir, const char *name, uint64_t *pos);
/* The inode number of the record at @pos.  Context: ns_lock held, @pos found. */
uint64_t ufs_dir_ino(struct ufs_inode *dir, uint64_t pos);
/* The parent of @dir (block 0's header; the root for a fresh root).  Context: ns_lock held. */
uint64_t ufs_dir_parent(struct ufs_inode *dir);
/* Does @dir hold no names?  False too when its index cannot be built.  Context: ns_lock held. */
bool ufs_dir_empty(struct ufs_inode *dir);

/*
 * The changes.  Context of each: in @t, ns_lock exclusive.  On an error
 * the caller aborts @t and drops the index (ufs_dix_free()), which may
 * hold what the abort takes back.  Return: 0 or -errno.
 */
/* ufs_dir_init() - the first record block of the new directory @dir. */
int ufs_dir_init(struct utx *t, struct ufs_inode *dir, uint64_t parent);
/* ufs_dir_add() - a record @name -> @ino of type @type (DT_*); @name absent. */
int ufs_dir_add(struct utx *t, struct ufs_inode *dir, const char *name, uint64_t ino,
		uint8_t type);
/* ufs_dir_remove() - remove the record at @pos. */
int ufs_dir_remove(struct utx *t, struct ufs_inode *dir, uint64_t pos);
/* ufs_dir_set_ino() - point the record at @pos to @ino of type @type. */
int ufs_dir_set_ino(struct utx *t, struct ufs_inode *dir, uint64_t pos, uint64_t ino,
		    uint8_t type);
/* ufs_dir_set_parent() - record @parent as the parent of @dir. */
int ufs_dir_set_parent(struct utx *t, struct ufs_inode *dir, uint64_t parent);

#endif /* UDAX_DIR_INT_H */
