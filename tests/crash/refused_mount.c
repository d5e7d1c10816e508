/* SPDX-License-Identifier: MIT */
/*
 * refused_mount.c - a mount that is refused leaves the image byte-identical.
 *
 * Bug this catches: mount rolled back an unfinished journal transaction
 * (records with valid checksums) and only then found the root inode, a
 * bitmap or the orphan list unusable and refused; the image had already
 * been changed.  A primary superblock was likewise rewritten from the
 * backup, and orphans reclaimed, before a later check refused.
 *
 * Each case starts from one populated image (with two orphan inodes, as a
 * crash leaves them), crafts a journal record with a valid checksum and
 * sequence (or other damage), and checks: ufs_mount() is refused, and the
 * crc32c of the whole image is the same before and after.  Two cases must
 * mount (a harmless record; the untouched image) and empty the log.
 *
 * The root inode's bad checksum is reported with the whole message
 * (dx_seterr() once formatted "root inode: %s" into the buffer that
 * dx_errmsg() returned, printing "root inode: root inode: ice offset").
 *
 * Negative control: the same crafted record rolled back directly
 * (ufs_journal_recover) changes the image checksum, so the comparison can
 * see a replay.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/format.h"
#include "core/journal.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../harness.h"
#include "image_util.h"

#define IMG_SIZE (16u * 1024 * 1024)
#define BS UFS_BLOCK_SIZE

static char good_path[256], img_path[256];
static uint8_t *good;
static struct ufs_super sb;
static uint64_t ino_dir, ino_keep, orphan_a, orphan_b;
static int cases;
static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

static uint64_t mkfile(struct ufs *fs, uint64_t dir, const char *name, size_t len, int holes)
{
	/* holes between blocks: one extent each, so the tree leaves the inode */
	return img_mkfile(fs, dir, name, (unsigned int)(len / BS), holes ? 2 : 1, 'x');
}

/* The image: a directory, files, and two unlinked files still referenced
 * (on the orphan list) when the image is copied, as after a crash. */
static void make_good(void)
{
	struct ufs_mkfs_opts mk = { .force = true };
	struct ufs_mount_opts o = { .log = img_quiet };
	struct dx_media *m;
	struct ufs *fs;
	uint64_t junk;

	img_mkfs_mount(good_path, IMG_SIZE, &mk, &o, &sb, &m, &fs);
	ino_dir = img_mkdir(fs, UFS_ROOT_INO, "dir");
	ino_keep = mkfile(fs, ino_dir, "keep", 3 * BS, 0);
	ufs_forget(fs, ino_keep, 1);
	junk = mkfile(fs, UFS_ROOT_INO, "f2", 2 * BS, 0);
	ufs_forget(fs, junk, 1);
	/* b first: the list is a -> b, so a is reclaimed before b is reached */
	orphan_b = mkfile(fs, UFS_ROOT_INO, "orphan-b", 8 * BS, 1);
	orphan_a = mkfile(fs, UFS_ROOT_INO, "orphan-a", 4 * BS, 0);
	REQUIRE_OK(ufs_unlink(fs, &ctx, UFS_ROOT_INO, "orphan-b"));
	REQUIRE_OK(ufs_unlink(fs, &ctx, UFS_ROOT_INO, "orphan-a"));
	/* "crash": copy the image while the two are still referenced */
	good = img_load(good_path, IMG_SIZE);
	ufs_forget(fs, orphan_a, 1);
	ufs_forget(fs, orphan_b, 1);
	img_unmount(&fs, &m);
	memcpy(&sb, good, sizeof(sb));
	if (((struct ufs_super *)good)->s_orphan_head != orphan_a)
		t_die("the crash image has no orphan list");
}

static void fresh_copy(void)
{
	img_store(img_path, good, IMG_SIZE);
}

static void poke(uint64_t off, const void *p, size_t len)
{
	img_poke(img_path, off, p, len);
}

static uint32_t image_crc(void)
{
	return img_crc(img_path);
}

/*
 * Put one record in the log saying the old bytes of [off, off + len) were
 * @old: a rollback writes @old there.  Checksum and sequence are valid.
 */
static void craft_record(uint64_t off, const void *old, uint32_t len)
{
	uint64_t joff = sb.s_journal_start * BS;
	struct ufs_journal_head h;
	struct ufs_journal_rec r;
	uint8_t *buf = calloc(1, UFS_JOURNAL_REC_SIZE(len));

	memcpy(&h, good + joff, sizeof(h));
	h.j_seq++;
	r.r_dev_off = off;
	r.r_len = len;
	r.r_crc = 0;
	r.r_seq = h.j_seq;
	r.r_crc = dx_crc32c(dx_crc32c(0, &r, sizeof(r)), old, len);
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), old, len);
	poke(joff + UFS_JOURNAL_REC_START, buf, UFS_JOURNAL_REC_SIZE(len));
	h.j_used = UFS_JOURNAL_REC_SIZE(len);
	poke(joff, &h, sizeof(h));
	free(buf);
}

static void inode_at(uint64_t ino, struct ufs_dinode *di)
{
	img_inode(good, &sb, ino, di);
}

/* ---- the cases: each crafts damage in a fresh copy ---- */

static void rec_root_zeroed(void)
{
	struct ufs_dinode di;

	memset(&di, 0, sizeof(di));
	craft_record(ufs_inode_off(&sb, UFS_ROOT_INO), &di, sizeof(di));
}

static void rec_root_regular(void)
{
	struct ufs_dinode di;

	inode_at(UFS_ROOT_INO, &di);
	di.i_mode = S_IFREG | 0644;
	di.i_checksum = ufs_inode_csum(&di);
	craft_record(ufs_inode_off(&sb, UFS_ROOT_INO), &di, sizeof(di));
}

static void rec_root_badcsum(void)
{
	struct ufs_dinode di;

	inode_at(UFS_ROOT_INO, &di);
	di.i_uid ^= 0x100;	/* checksum now wrong */
	craft_record(ufs_inode_off(&sb, UFS_ROOT_INO), &di, sizeof(di));
}

/* a root with no links: the mount once evicted it (freeing its blocks)
 * while a replayed log was still open, and tripped a journal assertion */
static void rec_root_unlinked(void)
{
	struct ufs_dinode di;

	inode_at(UFS_ROOT_INO, &di);
	di.i_nlink = 0;
	di.i_checksum = ufs_inode_csum(&di);
	craft_record(ufs_inode_off(&sb, UFS_ROOT_INO), &di, sizeof(di));
}

/* the same damage in place, no journal involved */
static void root_unlinked(void)
{
	struct ufs_dinode di;

	inode_at(UFS_ROOT_INO, &di);
	di.i_nlink = 0;
	di.i_checksum = ufs_inode_csum(&di);
	poke(ufs_inode_off(&sb, UFS_ROOT_INO), &di, sizeof(di));
}

static void rec_bbitmap_zeroed(void)
{
	static uint8_t z[BS];

	craft_record(sb.s_bbitmap_start * BS, z, BS);
}

static void rec_ibitmap_zeroed(void)
{
	static uint8_t z[BS];

	craft_record(sb.s_ibitmap_start * BS, z, BS);
}

static void rec_super_geometry(void)
{
	struct ufs_super s;

	memcpy(&s, good, sizeof(s));
	s.s_inode_count /= 2;
	s.s_checksum = ufs_super_csum(&s);
	craft_record(0, &s, sizeof(s));
}

static void rec_super_garbage(void)
{
	static uint8_t junk[512];

	memset(junk, 0xa5, sizeof(junk));
	craft_record(0, junk, sizeof(junk));
}

/* primary bad (the backup is used and would be written back) + root zeroed by replay */
static void backup_and_rec_root(void)
{
	uint8_t b = 0x55;

	rec_root_zeroed();
	poke(offsetof(struct ufs_super, s_label) + 3, &b, 1);
}

/* the second orphan's extent tree is unusable: reclaiming the first, then
 * failing on the second, would refuse after freeing */
static void orphan_b_badtree(void)
{
	struct ufs_dinode di;

	inode_at(orphan_b, &di);
	di.i_u.tree.hdr.h_depth++;	/* its leaves are read as index nodes: "bad header" */
	di.i_checksum = ufs_inode_csum(&di);
	poke(ufs_inode_off(&sb, orphan_b), &di, sizeof(di));
}

/* the same, done by a journal record */
static void rec_orphan_b_badtree(void)
{
	struct ufs_dinode di;

	inode_at(orphan_b, &di);
	di.i_u.tree.hdr.h_depth++;
	di.i_checksum = ufs_inode_csum(&di);
	craft_record(ufs_inode_off(&sb, orphan_b), &di, sizeof(di));
}

/* the first data block of @ino: its first leaf extent (inline or one level down) */
static uint64_t first_pblk(uint64_t ino)
{
	struct ufs_dinode di;
	const struct ufs_extent_hdr *h;

	inode_at(ino, &di);
	h = &di.i_u.tree.hdr;
	if (h->h_depth) {
		const struct ufs_extent_idx *x = (const void *)(h + 1);

		h = (const void *)(good + x[0].x_child * BS);
	}
	return ((const struct ufs_extent *)(h + 1))[0].e_pblk;
}

/* the second orphan's slot is free in the inode bitmap: freeing it fails
 * after the first orphan was reclaimed */
static void orphan_b_slot_free(void)
{
	uint64_t off = sb.s_ibitmap_start * BS + orphan_b / 8;
	uint8_t byte = good[off] & (uint8_t)~(1u << (orphan_b % 8));

	poke(off, &byte, 1);
}

/* one of the second orphan's data blocks is free in the block bitmap */
static void orphan_b_block_free(void)
{
	uint64_t b = first_pblk(orphan_b);
	uint64_t off = sb.s_bbitmap_start * BS + b / 8;
	uint8_t byte = good[off] & (uint8_t)~(1u << (b % 8));

	poke(off, &byte, 1);
}

/* the second orphan's xattr block is one of the first orphan's data
 * blocks: reclaiming the first frees it, freeing the second fails */
static void orphan_b_xattr_crosslinked(void)
{
	struct ufs_dinode di;

	inode_at(orphan_b, &di);
	di.i_xattr_block = first_pblk(orphan_a);
	di.i_blocks++;
	di.i_checksum = ufs_inode_csum(&di);
	poke(ufs_inode_off(&sb, orphan_b), &di, sizeof(di));
}

/* the second orphan's xattr block lies outside the data area */
static void orphan_b_xattr_outside(void)
{
	struct ufs_dinode di;

	inode_at(orphan_b, &di);
	di.i_xattr_block = sb.s_itable_start;
	di.i_blocks++;
	di.i_checksum = ufs_inode_csum(&di);
	poke(ufs_inode_off(&sb, orphan_b), &di, sizeof(di));
}

/* the list loops back to its head: reclaim frees both and cuts the list
 * where it meets the freed head again, so this mounts */
static void orphan_loop(void)
{
	struct ufs_dinode di;

	inode_at(orphan_b, &di);
	di.i_orphan_next = orphan_a;
	di.i_checksum = ufs_inode_csum(&di);
	poke(ufs_inode_off(&sb, orphan_b), &di, sizeof(di));
}

static void rec_bad_crc(void)
{
	struct ufs_dinode di;
	uint8_t x = 0xff;

	memset(&di, 0, sizeof(di));
	craft_record(ufs_inode_off(&sb, UFS_ROOT_INO), &di, sizeof(di));
	poke(sb.s_journal_start * BS + UFS_JOURNAL_REC_START + sizeof(struct ufs_journal_rec), &x, 1);
}

/* harmless: the old bytes are the current ones */
static void rec_harmless(void)
{
	struct ufs_dinode di;

	inode_at(ino_keep, &di);
	craft_record(ufs_inode_off(&sb, ino_keep), &di, sizeof(di));
}

static void nothing(void)
{
}

static int try_mount(char *msg, size_t ml)
{
	struct dx_media_opts mo = { .path = img_path };
	struct ufs_mount_opts o = { .log = img_quiet };
	struct dx_media *m;
	struct ufs *fs = NULL;
	int rc;

	dx_clearerr();
	rc = dx_media_open(&m, &mo);
	if (rc)
		return rc;
	rc = ufs_mount(&fs, m, &o);
	snprintf(msg, ml, "%s", rc ? dx_errmsg() : "");
	if (!rc) {
		struct ufs_entry e;

		if (ufs_lookup(fs, ino_dir, "keep", &e) == 0)
			ufs_forget(fs, e.ino, 1);
		else
			rc = 1;	/* mounted without the file the image holds */
		if (ufs_unmount(&fs))
			rc = 1;
	}
	dx_media_close(&m);
	return rc;
}

static void refused(const char *name, void (*damage)(void), const char *expect)
{
	char msg[600];
	uint32_t before, after;
	int rc;

	cases++;
	fresh_copy();
	damage();
	before = image_crc();
	rc = try_mount(msg, sizeof(msg));
	after = image_crc();
	if (rc >= 0) {
		t_fail("%s: mounted (rc %d), expected a refusal", name, rc);
	} else if (before != after) {
		t_fail("%s: refused (%s) but the image changed (crc %08x -> %08x)", name,
		       msg, before, after);
	} else if (expect && !strstr(msg, expect)) {
		t_fail("%s: refused, image unchanged, but the message \"%s\" lacks \"%s\"",
		       name, msg, expect);
	} else {
		printf("ok: %s: refused, image unchanged: %s\n", name, msg);
	}
}

static void mounts(const char *name, void (*damage)(void))
{
	char msg[600];
	uint64_t joff = sb.s_journal_start * BS;
	struct ufs_journal_head h;
	int rc, fd;

	cases++;
	fresh_copy();
	damage();
	rc = try_mount(msg, sizeof(msg));
	fd = open(img_path, O_RDONLY);
	if (fd < 0 || pread(fd, &h, sizeof(h), (off_t)joff) != sizeof(h))
		h.j_used = ~0ull;
	if (fd >= 0)
		close(fd);
	if (rc || h.j_used) {
		t_fail("%s: rc %d (%s), log %" PRIu64 " bytes after the mount", name, rc,
		       msg, h.j_used);
	} else {
		printf("ok: %s: mounted, log empty\n", name);
	}
}

/* Negative control: a rollback of the crafted record does change the image. */
static void control(void)
{
	struct dx_media_opts mo = { .path = img_path };
	struct ufs_journal *j;
	struct dx_media *m;
	uint32_t before, after;
	int rc;

	fresh_copy();
	rec_root_zeroed();
	before = image_crc();
	REQUIRE_OK(dx_media_open(&m, &mo));
	REQUIRE_OK(ufs_journal_open(&j, m, &sb));
	rc = ufs_journal_recover(j, false);
	ufs_journal_close(&j);
	dx_media_close(&m);
	after = image_crc();
	if (rc != 1 || before == after) {
		t_fail("control: a direct rollback (rc %d) left the crc at %08x: the check "
		       "cannot see a replay", rc, after);
	} else {
		printf("ok: control: a direct rollback changes the image (%08x -> %08x)\n", before,
		       after);
	}
}

int main(void)
{
	char want[200];

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(good_path, sizeof(good_path), "/dev/shm/udax-fsck-refused-good-%d", (int)getpid());
	snprintf(img_path, sizeof(img_path), "/dev/shm/udax-fsck-refused-img-%d", (int)getpid());
	make_good();

	control();
	refused("journal record zeroes the root inode", rec_root_zeroed, "root inode");
	refused("journal record makes the root a regular file", rec_root_regular, "not a directory");
	/* the whole message: it was once garbled into "root inode: root inode: ice offset" */
	snprintf(want, sizeof(want), "root inode: inode 1 (device offset %" PRIu64 "): bad checksum",
		 ufs_inode_off(&sb, UFS_ROOT_INO));
	refused("journal record breaks the root's checksum", rec_root_badcsum, want);
	refused("journal record unlinks the root", rec_root_unlinked, "link count 0");
	refused("root inode with link count 0", root_unlinked, "link count 0");
	refused("journal record zeroes the block bitmap", rec_bbitmap_zeroed, "bitmap");
	refused("journal record zeroes the inode bitmap", rec_ibitmap_zeroed, "bitmap");
	refused("journal record changes the superblock's geometry", rec_super_geometry,
		"superblock");
	refused("journal record writes garbage over the superblock", rec_super_garbage,
		"superblock");
	refused("bad primary superblock and a record zeroing the root", backup_and_rec_root,
		"root inode");
	refused("second orphan's extent tree is unusable", orphan_b_badtree, "orphan list");
	refused("journal record breaks the second orphan's tree", rec_orphan_b_badtree,
		"orphan list");
	refused("second orphan's slot is free in the inode bitmap", orphan_b_slot_free,
		"orphan list");
	refused("second orphan's data block is free in the block bitmap", orphan_b_block_free,
		"orphan list");
	refused("second orphan's xattr block is the first orphan's data block",
		orphan_b_xattr_crosslinked, "orphan list");
	refused("second orphan's xattr block is outside the data area", orphan_b_xattr_outside,
		"orphan list");
	refused("journal record with a bad checksum", rec_bad_crc, "checksum");
	mounts("harmless journal record", rec_harmless);
	mounts("untouched crash image (two orphans)", nothing);
	mounts("orphan list that loops back to its head", orphan_loop);

	unlink(good_path);
	unlink(img_path);
	free(good);
	printf("%d cases\n", cases);
	return t_exit("refused_mount");
}
