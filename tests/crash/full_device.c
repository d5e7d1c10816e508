/* SPDX-License-Identifier: MIT */
/*
 * full_device.c - fill a small device through the file system: writes fail with ENOSPC (never another error, never a crash),
 * creating inodes until the table is full fails with ENOSPC, nothing is
 * corrupted (fsck -n clean, with statfs and fsck agreeing on free blocks),
 * and all the space comes back after the files are deleted, twice over.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/fsck_check.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../harness.h"

#define IMG_SIZE (16u * 1024 * 1024)

static char path[256];
static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

static struct dx_media *m;
static struct ufs *fs;

static void do_mount(void)
{
	struct dx_media_opts mo = { .path = path };
	struct ufs_mount_opts o = { 0 };

	REQUIRE_OK(dx_media_open(&m, &mo));
	REQUIRE_OK(ufs_mount(&fs, m, &o));
}

static void do_unmount(void)
{
	REQUIRE_OK(ufs_unmount(&fs));
	dx_media_close(&m);
}

/* fsck -n must be clean; return its count of free blocks. */
static uint64_t fsck_free(const char *when)
{
	struct fsck_opts o = { .repair = FSCK_REPAIR_NO, .force = true, .quiet = true };
	struct fsck_stats st;
	int rc = udax_fsck_path(path, &o, &st);

	if (rc != 0) {
		t_fail("fsck -n %s: exit %d", when, rc);
		o.quiet = false;
		udax_fsck_path(path, &o, &st);
	}
	return st.free_blocks;
}

/* Fill with files of @chunk bytes per write; return how many bytes went in. */
static uint64_t fill(const char *prefix, size_t chunk, int *nfiles)
{
	static char buf[1 << 20];
	uint64_t total = 0;
	int i;

	memset(buf, 0xa5, sizeof(buf));
	for (i = 0;; i++) {
		struct ufs_entry e;
		char name[64];
		uint64_t off = 0;
		ssize_t n;
		int r;

		snprintf(name, sizeof(name), "%s%d", prefix, i);
		r = ufs_create(fs, &ctx, UFS_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &e);
		if (r == -ENOSPC)
			break;
		CHECK(r == 0, "create %s: %s", name, strerror(-r));
		if (r)
			break;
		for (;;) {
			n = ufs_write(fs, &ctx, e.ino, buf, chunk, off);
			if (n <= 0)
				break;
			off += (uint64_t)n;
			total += (uint64_t)n;
			if (off >= 2 * 1024 * 1024)
				break;	/* next file */
		}
		CHECK(n > 0 || n == -ENOSPC, "write %s at %" PRIu64 ": %s", name, off,
		       strerror((int)-n));
		ufs_release(fs, e.ino);
		ufs_forget(fs, e.ino, 1);
		if (n <= 0)
			break;
	}
	*nfiles = i + 1;
	return total;
}

/* Blocks held by the root directory (directories do not shrink). */
static uint64_t root_blocks(void)
{
	struct stat st;

	REQUIRE_OK(ufs_getattr(fs, UFS_ROOT_INO, &st));
	return (uint64_t)st.st_size / 4096;
}

static void remove_all(const char *prefix, int nfiles)
{
	int i;

	for (i = 0; i < nfiles; i++) {
		char name[64];
		int r;

		snprintf(name, sizeof(name), "%s%d", prefix, i);
		r = ufs_unlink(fs, &ctx, UFS_ROOT_INO, name);
		CHECK(r == 0 || r == -ENOENT, "unlink %s: %s", name, strerror(-r));
	}
}

int main(void)
{
	struct dx_media_opts mo;
	struct ufs_mkfs_opts mk = { .force = true };
	struct statvfs sv0, sv1, sv2;
	uint64_t wrote1, wrote2, ffree, inodes = 0, root0, root2;
	int fd, n1, n2, r;

	snprintf(path, sizeof(path), "/dev/shm/udax-full-device-%d.img", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0)
		t_skip("cannot create %s: %s", path, strerror(errno));
	close(fd);
	memset(&mo, 0, sizeof(mo));
	mo.path = path;
	REQUIRE_OK(dx_media_open(&m, &mo));
	REQUIRE_OK(ufs_mkfs(m, &mk, NULL));
	dx_media_close(&m);

	do_mount();
	REQUIRE_OK(ufs_statfs(fs, &sv0));
	root0 = root_blocks();
	printf("full: empty: %" PRIu64 " of %" PRIu64 " blocks free, %" PRIu64 " inodes free\n",
	       (uint64_t)sv0.f_bfree, (uint64_t)sv0.f_blocks, (uint64_t)sv0.f_ffree);

	/* 1. fill with data (odd-sized writes leave partial blocks) */
	wrote1 = fill("a", 100000, &n1);
	REQUIRE_OK(ufs_statfs(fs, &sv1));
	printf("full: wrote %" PRIu64 " bytes in %d files; %" PRIu64 " blocks free\n", wrote1, n1,
	       (uint64_t)sv1.f_bfree);
	CHECK(sv1.f_bfree < 16, "device not full after ENOSPC: %" PRIu64 " blocks free",
	       (uint64_t)sv1.f_bfree);
	CHECK(wrote1 > (uint64_t)IMG_SIZE / 2, "only %" PRIu64 " bytes fit", wrote1);
	/* a write into a full device fails cleanly and changes nothing */
	do_unmount();
	ffree = fsck_free("when full");
	CHECK(ffree == sv1.f_bfree, "statfs says %" PRIu64 " free blocks, fsck %" PRIu64,
	       (uint64_t)sv1.f_bfree, ffree);

	/* 2. inodes: create empty files until the table is full */
	do_mount();
	remove_all("a", n1);
	for (;;) {
		struct ufs_entry e;
		char name[64];

		snprintf(name, sizeof(name), "i%" PRIu64, inodes);
		r = ufs_mknod(fs, &ctx, UFS_ROOT_INO, name, S_IFREG | 0600, 0, &e);
		if (r)
			break;
		ufs_forget(fs, e.ino, 1);
		inodes++;
	}
	CHECK(r == -ENOSPC, "mknod #%" PRIu64 ": %s, expected ENOSPC", inodes, strerror(-r));
	REQUIRE_OK(ufs_statfs(fs, &sv1));
	printf("full: %" PRIu64 " inodes created before ENOSPC; %" PRIu64 " inodes free\n", inodes,
	       (uint64_t)sv1.f_ffree);
	CHECK(sv1.f_ffree == 0, "statfs reports %" PRIu64 " free inodes after ENOSPC",
	       (uint64_t)sv1.f_ffree);
	remove_all("i", (int)inodes);
	do_unmount();
	fsck_free("after the inode fill");

	/* 3. space comes back: fill again, the same amount fits */
	do_mount();
	REQUIRE_OK(ufs_statfs(fs, &sv2));
	root2 = root_blocks();
	printf("full: the root directory grew from %" PRIu64 " to %" PRIu64 " blocks\n", root0, root2);
	CHECK(sv2.f_bfree + root2 == sv0.f_bfree + root0, "after deleting everything %" PRIu64
	       " blocks free, %" PRIu64 " when empty", (uint64_t)sv2.f_bfree, (uint64_t)sv0.f_bfree);
	CHECK(sv2.f_ffree == sv0.f_ffree, "after deleting everything %" PRIu64
	       " inodes free, %" PRIu64 " when empty", (uint64_t)sv2.f_ffree, (uint64_t)sv0.f_ffree);
	wrote2 = fill("b", 4096 * 3, &n2);
	printf("full: refill wrote %" PRIu64 " bytes in %d files\n", wrote2, n2);
	CHECK(wrote2 + 1024 * 1024 >= wrote1, "refill: %" PRIu64 " bytes fit, %" PRIu64
	       " the first time", wrote2, wrote1);
	remove_all("b", n2);
	REQUIRE_OK(ufs_statfs(fs, &sv2));
	do_unmount();
	ffree = fsck_free("after the refill and delete");
	CHECK(ffree == sv2.f_bfree && ffree + root2 == sv0.f_bfree + root0, "fsck: %" PRIu64
	       " free blocks at the end, statfs %" PRIu64 ", %" PRIu64 " when empty", ffree,
	       (uint64_t)sv2.f_bfree, (uint64_t)sv0.f_bfree);
	unlink(path);
	return t_exit("full_device");
}
