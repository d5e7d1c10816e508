/* SPDX-License-Identifier: MIT */
/*
 * image_util.c - see image_util.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/super.h"
#include "core/util.h"

#include "../harness.h"
#include "../unit/test_helpers.h"
#include "image_util.h"

const struct ufs_ctx img_ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

void img_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

void img_mkfs_mount(const char *path, uint64_t size, const struct ufs_mkfs_opts *mk,
		    const struct ufs_mount_opts *o, struct ufs_super *sb, struct dx_media **m,
		    struct ufs **fs)
{
	struct dx_media_opts mo = { .path = path };
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		t_skip("cannot create %s: %s", path, strerror(errno));
	close(fd);
	REQUIRE_OK(dx_media_open(m, &mo));
	REQUIRE_OK(ufs_mkfs(*m, mk, sb));
	REQUIRE_OK(ufs_mount(fs, *m, o));
}

void img_unmount(struct ufs **fs, struct dx_media **m)
{
	REQUIRE_OK(ufs_unmount(fs));
	dx_media_close(m);
}

uint64_t img_mkfile(struct ufs *fs, uint64_t dir, const char *name, unsigned int nblocks,
		    unsigned int stride, int fill)
{
	static char buf[UFS_BLOCK_SIZE];
	struct ufs_entry e;
	unsigned int i;

	memset(buf, fill, sizeof(buf));
	REQUIRE_OK(ufs_create(fs, &img_ctx, dir, name, 0644, O_RDWR | O_CREAT, &e));
	for (i = 0; i < nblocks; i++)
		REQUIRE_OK(ufs_write(fs, &img_ctx, e.ino, buf, sizeof(buf),
				     (uint64_t)i * stride * sizeof(buf)));
	ufs_release(fs, e.ino);
	return e.ino;
}

uint64_t img_mkdir(struct ufs *fs, uint64_t dir, const char *name)
{
	struct ufs_entry e;

	REQUIRE_OK(ufs_mkdir(fs, &img_ctx, dir, name, 0755, &e));
	ufs_forget(fs, e.ino, 1);
	return e.ino;
}

uint8_t *img_load(const char *path, uint64_t size)
{
	uint8_t *buf = malloc(size);
	int fd = open(path, O_RDONLY);

	if (!buf || fd < 0 || pread(fd, buf, size, 0) != (ssize_t)size)
		t_die("cannot read back %s", path);
	close(fd);
	return buf;
}

void img_store(const char *path, const void *buf, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || pwrite(fd, buf, size, 0) != (ssize_t)size)
		t_die("cannot write %s", path);
	close(fd);
}

void img_poke(const char *path, uint64_t off, const void *p, size_t len)
{
	int fd = open(path, O_RDWR);

	if (fd < 0 || pwrite(fd, p, len, (off_t)off) != (ssize_t)len)
		t_die("%s: poke at %" PRIu64 " failed", path, off);
	close(fd);
}

uint32_t img_crc(const char *path)
{
	return t_file_crc(path);
}

void img_inode(const uint8_t *image, const struct ufs_super *sb, uint64_t ino,
	       struct ufs_dinode *di)
{
	memcpy(di, image + ufs_inode_off(sb, ino), sizeof(*di));
}
