// SPDX-License-Identifier: MIT
/*
 * test_dir_fsck - the directory code and fsck agree at every growth step.
 *
 * Bug this catches: fsck compared a directory's size with every block its
 * extent tree uses, extent-tree node blocks included.  A directory whose
 * blocks no longer fit the inode's four inline extents (570 names of
 * /usr/include/linux, with subdirectories allocated in between) gets a
 * tree node block; fsck then called it corrupt ("directory size 20480
 * does not match its 6 blocks") and -y cleared it with every file in it.
 *
 * A directory grows one block at a time; subdirectories made between the
 * names keep its blocks apart so that every extent is one block and the
 * tree grows from the inline root to depth 1 and then depth 2.  fsck -n
 * runs on the unmounted image after each growth step of the first 12,
 * around each tree shape change and every 64 steps, then after unlinking
 * every name (directories never shrink: their size stays) and after the
 * directory itself is removed.  Each run must find no error.
 */
#include "test_ufs.h"
#include "tools/fsck_check.h"

#define MiB (1024ull * 1024)

static struct t_fs T;
static int fsck_runs;

/* Unmount, fsck -n the image, mount again.  Return: fsck's exit status. */
static int fsck_now(const char *what)
{
	struct fsck_opts fo = { .repair = FSCK_REPAIR_NO, .force = true, .quiet = true };
	struct fsck_stats st;
	int rc;

	REQUIRE(ufs_unmount(&T.fs) == 0);
	dx_media_close(&T.m);
	memset(&st, 0, sizeof(st));
	rc = udax_fsck_path(T.path, &fo, &st);
	if (rc != FSCK_OK) {
		fprintf(stderr, "fsck after %s: status %d, %llu errors:\n", what, rc,
			(unsigned long long)st.errors);
		fo.quiet = false;
		fo.out = stderr;
		udax_fsck_path(T.path, &fo, NULL);
	}
	fsck_runs++;
	t_open_media(&T);
	REQUIRE(t_mount(&T) == 0);
	return rc;
}

static uint64_t dir_blocks(uint64_t ino, uint64_t *iblocks)
{
	struct stat st;

	REQUIRE(ufs_getattr(T.fs, ino, &st) == 0);
	*iblocks = (uint64_t)st.st_blocks / 8;	/* 512-byte units -> 4 KiB blocks */
	return (uint64_t)st.st_size / 4096;
}

/* Should fsck run after the directory reached @nb data blocks (@ib in all)? */
static bool checkpoint(uint64_t nb, uint64_t ib, uint64_t prev_ib)
{
	/* a tree node appeared: i_blocks grew by more than the data block */
	return nb <= 12 || ib - prev_ib > 1 || nb % 64 == 0;
}

int main(void)
{
	struct ufs_entry e;
	uint64_t dir, nb = 0, ib = 0, prev_ib = 0, names = 0, nodes_seen = 0, i;
	char name[300], what[128];
	int sub = 0, bad = 0;

	t_inode_ratio = 8192;
	t_setup(&T, "dirfsck", 128 * MiB);
	REQUIRE(ufs_mkdir(T.fs, &T.c, UFS_ROOT_INO, "d", 0755, &e) == 0);
	dir = e.ino;
	ufs_forget(T.fs, dir, 1);
	REQUIRE(ufs_mkdir(T.fs, &T.c, UFS_ROOT_INO, "spacer", 0755, &e) == 0);
	ufs_forget(T.fs, e.ino, 1);
	CHECK_EQ(fsck_now("mkdir"), FSCK_OK);

	/* grow to 700 one-block extents: 4 inline, then depth 1 (4 x 169), then depth 2 */
	while (nb < 700 && !bad) {
		uint64_t prev_nb = nb;

		/* 240-byte names: 16 a block, so the tree grows fast */
		snprintf(name, sizeof(name), "%06llu-%0233d", (unsigned long long)names, 0);
		REQUIRE(ufs_mknod(T.fs, &T.c, dir, name, S_IFREG | 0644, 0, &e) == 0);
		ufs_forget(T.fs, e.ino, 1);
		names++;
		nb = dir_blocks(dir, &ib);
		if (nb == prev_nb)
			continue;
		/* a subdirectory's block lands after ours: the next block cannot extend this extent */
		snprintf(what, sizeof(what), "s%d", sub++);
		REQUIRE(ufs_mkdir(T.fs, &T.c, UFS_ROOT_INO, what, 0755, &e) == 0);
		ufs_forget(T.fs, e.ino, 1);
		if (ib > nb)
			nodes_seen = ib - nb;
		if (checkpoint(nb, ib, prev_ib)) {
			snprintf(what, sizeof(what), "growth to %llu blocks (%llu with tree nodes)",
				 (unsigned long long)nb, (unsigned long long)ib);
			if (fsck_now(what) != FSCK_OK) {
				bad++;
				CHECK(bad == 0);
			}
		}
		prev_ib = ib;
	}
	printf("%llu names, %llu directory blocks, %llu tree node blocks, %d fsck runs\n",
	       (unsigned long long)names, (unsigned long long)nb,
	       (unsigned long long)nodes_seen, fsck_runs);
	CHECK(nb >= 700);
	CHECK(nodes_seen > 4);	/* depth 2: the root's four children and one above */

	/* unlink every name: the directory keeps its blocks, fsck agrees */
	for (i = 0; i < names; i++) {
		snprintf(name, sizeof(name), "%06llu-%0233d", (unsigned long long)i, 0);
		CHECK_EQ(ufs_unlink(T.fs, &T.c, dir, name), 0);
		if (i == names / 2)
			CHECK_EQ(fsck_now("unlinking half"), FSCK_OK);
	}
	CHECK_EQ(fsck_now("unlinking every name"), FSCK_OK);
	CHECK_EQ(ufs_rmdir(T.fs, &T.c, UFS_ROOT_INO, "d"), 0);
	CHECK_EQ(fsck_now("rmdir"), FSCK_OK);
	t_teardown(&T);
	return t_exit("test_dir_fsck");
}
