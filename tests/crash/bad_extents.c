/* SPDX-License-Identifier: MIT */
/*
 * bad_extents.c - an extent, extent-tree node or xattr block that points
 * at metadata is refused when it is used; nothing is read from, written
 * through or freed at such a block.
 *
 * Bug this catches: a file extent pointing at the backup superblock (the
 * last block, inside [s_data_start, s_blocks_count)) was accepted, and a
 * write through the mount landed in the backup superblock.  Tree nodes
 * could point into the inode table.
 *
 * A crafted image per case: one inode's first extent (or its index entry,
 * or its xattr block) is pointed at block 0, the journal, each bitmap,
 * the inode table, the backup superblock, past the end, or across the end.
 * Mounted through the core: read and write of the file must fail, the
 * target block must not receive the written marker (looked for at both
 * ends of the block: unmount rewrites a superblock's first bytes), unlink + unmount must
 * not free it (its bitmap bit stays set).
 *
 * Negative control: the same steps with the extent pointed at a free data
 * block: the write succeeds and the marker is found there, so the check
 * can see a write through an extent.
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

#include "core/format.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../harness.h"
#include "image_util.h"

#define IMG_SIZE (16u * 1024 * 1024)
#define BS UFS_BLOCK_SIZE

static char good_path[256], img_path[256];
static uint8_t *good, marker[BS];
static struct ufs_super sb;
static uint64_t ino_f, ino_big, ino_x;
static int cases;
static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

static uint64_t mkfile(struct ufs *fs, const char *name, int nblocks, int stride)
{
	uint64_t ino = img_mkfile(fs, UFS_ROOT_INO, name, (unsigned int)nblocks,
				  (unsigned int)stride, 'd');

	ufs_forget(fs, ino, 1);
	return ino;
}

static void make_good(void)
{
	struct ufs_mkfs_opts mk = { .force = true };
	struct ufs_mount_opts o = { .log = img_quiet };
	struct dx_media *m;
	struct ufs *fs;

	img_mkfs_mount(good_path, IMG_SIZE, &mk, &o, &sb, &m, &fs);
	ino_f = mkfile(fs, "f", 1, 1);
	ino_big = mkfile(fs, "big", 8, 2);	/* 8 extents: the tree leaves the inode */
	ino_x = mkfile(fs, "x", 1, 1);
	REQUIRE_OK(ufs_setxattr(fs, &ctx, ino_x, "user.k", "v", 1, 0));
	img_unmount(&fs, &m);
	good = img_load(good_path, IMG_SIZE);
	memcpy(&sb, good, sizeof(sb));
}

static uint8_t *img;	/* the case's image, read back */


static struct ufs_dinode *inode(uint64_t ino)
{
	return (struct ufs_dinode *)(img + ufs_inode_off(&sb, ino));
}

static bool marker_in(uint64_t blk, uint64_t n)
{
	uint64_t b;

	for (b = blk; b < blk + n && b < sb.s_blocks_count; b++)
		if (memmem(img + b * BS, BS, marker, 64) ||
		    memmem(img + b * BS, BS, marker + BS - 64, 64))
			return true;
	return false;
}

static bool bbit(uint64_t blk)
{
	return img[sb.s_bbitmap_start * BS + blk / 8] & (1u << (blk % 8));
}

enum what { EXTENT, NODE, XATTR };

/*
 * One case: point @what of the right inode at @target (@len blocks),
 * mount, use it, unlink it, unmount; judge.  @legit: the control, where
 * the write must go through.
 */
static void one(const char *name, enum what what, uint64_t target, uint32_t len, bool legit)
{
	struct dx_media_opts mo = { .path = img_path };
	struct ufs_mount_opts o = { .log = img_quiet };
	struct dx_media *m;
	struct ufs *fs;
	struct ufs_dinode *di;
	uint64_t ino = what == EXTENT ? ino_f : what == NODE ? ino_big : ino_x;
	static char buf[BS];
	ssize_t rd = 0, wr = 0;
	char v[8];
	bool bits_before = target < sb.s_blocks_count && bbit(target);
	int bad = 0;

	cases++;
	memcpy(img, good, IMG_SIZE);
	di = inode(ino);
	if (what == EXTENT) {
		di->i_u.tree.ext[0].e_pblk = target;
		di->i_u.tree.ext[0].e_len = len;
	} else if (what == NODE) {
		struct ufs_extent_idx *x = (struct ufs_extent_idx *)di->i_u.tree.ext;

		if (!di->i_u.tree.hdr.h_depth)
			t_die("'big' has no tree node");
		x[0].x_child = target;
	} else {
		di->i_xattr_block = target;
	}
	di->i_checksum = ufs_inode_csum(di);
	img_store(img_path, img, IMG_SIZE);

	REQUIRE_OK(dx_media_open(&m, &mo));
	REQUIRE_OK(ufs_mount(&fs, m, &o));
	if (what == XATTR) {
		rd = ufs_getxattr(fs, ino, "user.k", v, sizeof(v));
		wr = ufs_setxattr(fs, &ctx, ino, "user.k2", marker, 64, 0);
		if (!legit && (rd >= 0 || wr >= 0)) {
			t_fail("%s: getxattr %zd, setxattr %zd: the block was used", name, rd, wr);
			bad++;
		}
	} else {
		rd = ufs_read(fs, ino, buf, BS, 0);
		wr = ufs_write(fs, &ctx, ino, marker, BS, 0);
		if (!legit && (rd >= 0 || wr >= 0)) {
			t_fail("%s: read %zd, write %zd: the extent was used", name, rd, wr);
			bad++;
		}
	}
	ufs_unlink(fs, &ctx, UFS_ROOT_INO, what == EXTENT ? "f" : what == NODE ? "big" : "x");
	ufs_unmount(&fs);	/* may report the inode it could not free */
	dx_media_close(&m);
	free(img);
	img = img_load(img_path, IMG_SIZE);
	if (legit) {
		if (wr < 0 || !marker_in(target, len)) {
			t_fail("control %s: write %zd, marker %sfound: the check cannot see "
			       "a write through an extent", name, wr,
			       marker_in(target, len) ? "" : "not ");
			bad++;
		}
	} else {
		if (marker_in(target, len)) {
			t_fail("%s: the marker was written into block %" PRIu64, name, target);
			bad++;
		}
		if (bits_before && !bbit(target)) {
			t_fail("%s: block %" PRIu64 " was freed", name, target);
			bad++;
		}
	}
	if (!bad)
		printf("ok: %s%s (read %zd, write %zd)\n", legit ? "control: " : "", name, rd, wr);
}

int main(void)
{
	uint64_t last;
	char name[100];

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(marker, 'W', sizeof(marker));
	memcpy(marker, "udax-bad-extents-marker", 23);
	/* the end too: unmount rewrites the start of a superblock's block */
	memcpy(marker + BS - 32, "udax-bad-extents-marker-tail", 28);
	snprintf(good_path, sizeof(good_path), "/dev/shm/udax-fsck-badext-good-%d", (int)getpid());
	snprintf(img_path, sizeof(img_path), "/dev/shm/udax-fsck-badext-img-%d", (int)getpid());
	make_good();
	img = malloc(IMG_SIZE);
	last = sb.s_blocks_count - 1;

	one("extent at a free data block", EXTENT, last - 100, 1, true);
	one("extent at block 0", EXTENT, 0, 1, false);
	one("extent at the journal", EXTENT, sb.s_journal_start, 1, false);
	one("extent at the inode bitmap", EXTENT, sb.s_ibitmap_start, 1, false);
	one("extent at the block bitmap", EXTENT, sb.s_bbitmap_start, 1, false);
	one("extent at the inode table", EXTENT, sb.s_itable_start, 1, false);
	one("extent at the last block before the data area", EXTENT, sb.s_data_start - 1, 1,
	    false);
	one("extent at the backup superblock", EXTENT, last, 1, false);
	one("extent across the backup superblock", EXTENT, last - 1, 2, false);
	one("extent past the end", EXTENT, sb.s_blocks_count, 1, false);
	one("extent far past the end", EXTENT, 1ull << 62, 1, false);
	one("tree node at the inode table", NODE, sb.s_itable_start, 0, false);
	one("tree node at the backup superblock", NODE, last, 0, false);
	one("tree node at the journal", NODE, sb.s_journal_start, 0, false);
	snprintf(name, sizeof(name), "xattr block at the backup superblock");
	one(name, XATTR, last, 1, false);
	one("xattr block at the inode table", XATTR, sb.s_itable_start, 1, false);

	unlink(good_path);
	unlink(img_path);
	free(good);
	free(img);
	printf("%d cases\n", cases);
	return t_exit("bad_extents");
}
