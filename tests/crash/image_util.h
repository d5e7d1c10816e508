/* SPDX-License-Identifier: MIT */
/*
 * image_util.h - the image-making pieces the corrupted-image tests share:
 * build a populated image through the core, keep it in DRAM, give each
 * case a fresh copy on /dev/shm, change bytes in it, and tell whether the
 * file changed (crc32c of the whole file).
 *
 * Every helper stops the test on a set-up failure: T_SKIP when /dev/shm
 * refuses the file, T_FAIL (with the call and the core's message) when the
 * core does.  None of them judges anything: the tests do.
 */
#ifndef UDAX_TESTS_CRASH_IMAGE_UTIL_H
#define UDAX_TESTS_CRASH_IMAGE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/format.h"
#include "core/media.h"
#include "core/ufs.h"

/* root, umask 022: who makes the files of the image */
extern const struct ufs_ctx img_ctx;

/* A mount log that says nothing (the tests read dx_errmsg()). */
void img_quiet(void *arg, const char *msg);

/*
 * img_mkfs_mount() - create @path (@size bytes, sparse), mkfs it with @mk
 * and mount it with @o.  *@sb is the superblock mkfs wrote.
 */
void img_mkfs_mount(const char *path, uint64_t size, const struct ufs_mkfs_opts *mk,
		    const struct ufs_mount_opts *o, struct ufs_super *sb, struct dx_media **m,
		    struct ufs **fs);
/* Unmount and close what img_mkfs_mount() opened. */
void img_unmount(struct ufs **fs, struct dx_media **m);

/*
 * img_mkfile() - a file @name in @dir of @nblocks blocks of @fill, block i
 * written at i * @stride blocks (a stride of 2 leaves holes: one extent a
 * block).  The file is released, not forgotten (the caller may keep it
 * referenced, as an orphan).  Return: its inode number.
 */
uint64_t img_mkfile(struct ufs *fs, uint64_t dir, const char *name, unsigned int nblocks,
		    unsigned int stride, int fill);

/* A directory @name in @dir, mode 0755, forgotten.  Return: its inode number. */
uint64_t img_mkdir(struct ufs *fs, uint64_t dir, const char *name);

/* The whole file @path (@size bytes) read into a new buffer. */
uint8_t *img_load(const char *path, uint64_t size);
/* Write @buf (@size bytes) over @path, created if missing: a fresh copy. */
void img_store(const char *path, const void *buf, uint64_t size);
/* Write @len bytes of @p at @off of @path. */
void img_poke(const char *path, uint64_t off, const void *p, size_t len);
/* crc32c of the whole file @path (0 when it cannot be read). */
uint32_t img_crc(const char *path);
/* Copy inode @ino out of the image @image (in DRAM, superblock @sb). */
void img_inode(const uint8_t *image, const struct ufs_super *sb, uint64_t ino,
	       struct ufs_dinode *di);

#endif /* UDAX_TESTS_CRASH_IMAGE_UTIL_H */
