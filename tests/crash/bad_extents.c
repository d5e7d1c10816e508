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

#include "format.h"
#include "media.h"
#include "super.h"
#include "ufs.h"
#include "util.h"

#define IMG_SIZE (16u * 1024 * 1024)
#define BS UFS_BLOCK_SIZE

static char good_path[256], img_path[256];
static uint8_t *good, marker[BS];
static struct ufs_super sb;
static uint64_t ino_f, ino_big, ino_x;
static int failures, cases;
static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

#define DIE_IF(x) do { int r_ = (x); if (r_ < 0) { \
	fprintf(stderr, "bad_extents: %s: %s (%s)\n", #x, strerror(-r_), udax_errmsg()); \
	exit(1); } } while (0)

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static uint64_t mkfile(struct ufs *fs, const char *name, int nblocks, int stride)
{
	struct ufs_entry e;
	static char buf[BS];
	int i;

	memset(buf, 'd', BS);
	DIE_IF(ufs_create(fs, &ctx, UFS_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &e));
	for (i = 0; i < nblocks; i++)
		DIE_IF((int)ufs_write(fs, &ctx, e.ino, buf, BS, (uint64_t)i * BS * stride));
	ufs_release(fs, e.ino);
	ufs_forget(fs, e.ino, 1);
	return e.ino;
}

static void make_good(void)
{
	struct udax_media_opts mo = { .path = good_path };
	struct ufs_mkfs_opts mk = { .force = true };
	struct ufs_mount_opts o = { .log = quiet };
	struct udax_media *m;
	struct ufs *fs;
	int fd = open(good_path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0) {
		printf("SKIP: cannot create %s\n", good_path);
		exit(77);
	}
	close(fd);
	DIE_IF(udax_media_open(&m, &mo));
	DIE_IF(ufs_mkfs(m, &mk, &sb));
	DIE_IF(ufs_mount(&fs, m, &o));
	ino_f = mkfile(fs, "f", 1, 1);
	ino_big = mkfile(fs, "big", 8, 2);	/* 8 extents: the tree leaves the inode */
	ino_x = mkfile(fs, "x", 1, 1);
	DIE_IF(ufs_setxattr(fs, &ctx, ino_x, "user.k", "v", 1, 0));
	DIE_IF(ufs_unmount(&fs));
	udax_media_close(&m);
	good = malloc(IMG_SIZE);
	fd = open(good_path, O_RDONLY);
	if (!good || fd < 0 || pread(fd, good, IMG_SIZE, 0) != IMG_SIZE) {
		fprintf(stderr, "bad_extents: cannot read back %s\n", good_path);
		exit(1);
	}
	close(fd);
	memcpy(&sb, good, sizeof(sb));
}

static uint8_t *img;	/* the case's image, read back */

static void write_img(void)
{
	int fd = open(img_path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || pwrite(fd, img, IMG_SIZE, 0) != IMG_SIZE) {
		fprintf(stderr, "bad_extents: cannot write %s\n", img_path);
		exit(1);
	}
	close(fd);
}

static void read_img(void)
{
	int fd = open(img_path, O_RDONLY);

	if (fd < 0 || pread(fd, img, IMG_SIZE, 0) != IMG_SIZE) {
		fprintf(stderr, "bad_extents: cannot read %s\n", img_path);
		exit(1);
	}
	close(fd);
}

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
	struct udax_media_opts mo = { .path = img_path };
	struct ufs_mount_opts o = { .log = quiet };
	struct udax_media *m;
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

		if (!di->i_u.tree.hdr.h_depth) {
			fprintf(stderr, "bad_extents: 'big' has no tree node\n");
			exit(1);
		}
		x[0].x_child = target;
	} else {
		di->i_xattr_block = target;
	}
	di->i_checksum = ufs_inode_csum(di);
	write_img();

	DIE_IF(udax_media_open(&m, &mo));
	DIE_IF(ufs_mount(&fs, m, &o));
	if (what == XATTR) {
		rd = ufs_getxattr(fs, ino, "user.k", v, sizeof(v));
		wr = ufs_setxattr(fs, &ctx, ino, "user.k2", marker, 64, 0);
		if (!legit && (rd >= 0 || wr >= 0)) {
			printf("FAIL: %s: getxattr %zd, setxattr %zd: the block was used\n", name, rd,
			       wr);
			bad++;
		}
	} else {
		rd = ufs_read(fs, ino, buf, BS, 0);
		wr = ufs_write(fs, &ctx, ino, marker, BS, 0);
		if (!legit && (rd >= 0 || wr >= 0)) {
			printf("FAIL: %s: read %zd, write %zd: the extent was used\n", name, rd, wr);
			bad++;
		}
	}
	ufs_unlink(fs, &ctx, UFS_ROOT_INO, what == EXTENT ? "f" : what == NODE ? "big" : "x");
	ufs_unmount(&fs);	/* may report the inode it could not free */
	udax_media_close(&m);
	read_img();
	if (legit) {
		if (wr < 0 || !marker_in(target, len)) {
			printf("FAIL: control %s: write %zd, marker %sfound: the check cannot see "
			       "a write through an extent\n", name, wr,
			       marker_in(target, len) ? "" : "not ");
			bad++;
		}
	} else {
		if (marker_in(target, len)) {
			printf("FAIL: %s: the marker was written into block %" PRIu64 "\n", name,
			       target);
			bad++;
		}
		if (bits_before && !bbit(target)) {
			printf("FAIL: %s: block %" PRIu64 " was freed\n", name, target);
			bad++;
		}
	}
	if (!bad)
		printf("ok: %s%s (read %zd, write %zd)\n", legit ? "control: " : "", name, rd, wr);
	failures += bad;
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
	printf("%d cases, %d failed\n", cases, failures);
	return failures ? 1 : 0;
}
