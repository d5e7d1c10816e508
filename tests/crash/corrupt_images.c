/* SPDX-License-Identifier: MIT */
/*
 * corrupt_images.c - corrupted images: mount refuses (naming the structure
 * and its offset) or mounts where that is safe, and never writes to an
 * image it refused; fsck.udaxfs -n reports without writing; fsck -y
 * repairs what has a safe repair, after which fsck -n is clean.
 *
 * Every case starts from a fresh copy of one populated image, corrupts one
 * structure, and checks:
 *   - ufs_mount(): refused with a message containing the structure's name
 *     and "offset", image byte-identical afterwards; or mounted (then the
 *     namespace is walked: nothing may crash);
 *   - the daemon (udaxfs, when built) refuses the same images;
 *   - fsck.udaxfs -n: the expected exit status, image byte-identical;
 *   - fsck.udaxfs -y: the expected exit status; when it says "corrected"
 *     (1), fsck -n afterwards exits 0.
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
#include <sys/wait.h>
#include <unistd.h>

#include "core/format.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../harness.h"
#include "image_util.h"

#define IMG_SIZE (8u * 1024 * 1024)
#define BS UFS_BLOCK_SIZE

static char good_path[256], img_path[256], fsck_bin[1024], log_path[256];
static uint8_t *good;
static struct ufs_super sb;
static uint64_t ino_dir, ino_f1, ino_f2;
static char mount_log[2048];
static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

static void log_msg(void *arg, const char *msg)
{
	snprintf(mount_log + strlen(mount_log), sizeof(mount_log) - strlen(mount_log), "%s\n", msg);
}

/* ---------------------------------------------------------------- the image */

static void mkfile(struct ufs *fs, uint64_t dir, const char *name, size_t len, uint64_t *ino)
{
	struct ufs_entry e;
	char *buf = malloc(len);

	memset(buf, 'x', len);
	REQUIRE_OK(ufs_create(fs, &ctx, dir, name, 0644, O_RDWR | O_CREAT, &e));
	if (len)
		REQUIRE_OK((int)ufs_write(fs, &ctx, e.ino, buf, len, 0));
	ufs_release(fs, e.ino);
	ufs_forget(fs, e.ino, 1);
	*ino = e.ino;
	free(buf);
}

static void make_good(void)
{
	struct ufs_mkfs_opts mk = { .force = true };
	struct ufs_mount_opts o = { 0 };
	struct dx_media *m;
	struct ufs *fs;
	uint64_t junk;

	img_mkfs_mount(good_path, IMG_SIZE, &mk, &o, &sb, &m, &fs);
	ino_dir = img_mkdir(fs, UFS_ROOT_INO, "dir");
	mkfile(fs, ino_dir, "f1", 3 * BS, &ino_f1);
	mkfile(fs, UFS_ROOT_INO, "f2", 2 * BS + 100, &ino_f2);
	mkfile(fs, ino_dir, "f3", 10, &junk);
	REQUIRE_OK(ufs_setxattr(fs, &ctx, ino_f2, "user.x", "1", 1, 0));
	img_unmount(&fs, &m);
	good = img_load(good_path, IMG_SIZE);
	memcpy(&sb, good, sizeof(sb));
}

static void fresh_copy(void)
{
	img_store(img_path, good, IMG_SIZE);
}

static void poke(uint64_t off, const void *p, size_t len)
{
	img_poke(img_path, off, p, len);
}

static void peek(uint64_t off, void *p, size_t len)
{
	memcpy(p, good + off, len);
}

static uint32_t image_crc(void)
{
	return img_crc(img_path);
}

static uint64_t inode_off(uint64_t ino)
{
	return ufs_inode_off(&sb, ino);
}

static void get_inode(uint64_t ino, struct ufs_dinode *di)
{
	img_inode(good, &sb, ino, di);
}

static void put_inode(uint64_t ino, struct ufs_dinode *di, bool fix_csum)
{
	if (fix_csum)
		di->i_checksum = ufs_inode_csum(di);
	poke(inode_off(ino), di, sizeof(*di));
}

/* ---------------------------------------------------------------- the corruptions */

static void c_primary_sb(void)
{
	uint8_t b = 0x55;

	poke(offsetof(struct ufs_super, s_label) + 3, &b, 1);
}

static void c_both_sb(void)
{
	uint8_t b = 0x55;

	poke(offsetof(struct ufs_super, s_label) + 3, &b, 1);
	poke((sb.s_blocks_count - 1) * BS + offsetof(struct ufs_super, s_label) + 3, &b, 1);
}

static void c_no_magic(void)
{
	uint64_t z = 0;

	poke(0, &z, 8);
	poke((sb.s_blocks_count - 1) * BS, &z, 8);
}

static void c_truncated(void)
{
	if (truncate(img_path, IMG_SIZE - 2 * 1024 * 1024) < 0)
		exit(1);
}

static void c_journal_head(void)
{
	uint8_t b = 0x00;

	poke(sb.s_journal_start * BS + 1, &b, 1);
}

/* An unfinished transaction whose record @bad is corrupt, or a sound one
 * that rolls the root inode back to uid 4321. */
static void journal_with_record(bool bad)
{
	struct ufs_journal_head h;
	struct ufs_journal_rec r;
	struct ufs_dinode root;
	uint64_t joff = sb.s_journal_start * BS;
	uint8_t rec[sizeof(r) + sizeof(root)];

	peek(joff, &h, sizeof(h));
	get_inode(UFS_ROOT_INO, &root);
	root.i_uid = 4321;
	root.i_checksum = ufs_inode_csum(&root);
	memset(&r, 0, sizeof(r));
	r.r_dev_off = inode_off(UFS_ROOT_INO);
	r.r_len = sizeof(root);
	r.r_seq = h.j_seq;
	memcpy(rec, &r, sizeof(r));
	memcpy(rec + sizeof(r), &root, sizeof(root));
	r.r_crc = dx_crc32c(0, rec, sizeof(rec));
	if (bad)
		r.r_crc ^= 1;
	memcpy(rec, &r, sizeof(r));
	poke(joff + UFS_JOURNAL_REC_START, rec, sizeof(rec));
	h.j_used = sizeof(rec);
	poke(joff + offsetof(struct ufs_journal_head, j_used), &h.j_used, 8);
}

static void c_journal_bad_record(void) { journal_with_record(true); }
static void c_journal_pending(void) { journal_with_record(false); }

/* A bad primary superblock and an unfinished transaction that logged it:
 * the rollback writes the bad bytes back over the primary that fsck -y
 * had just repaired from the backup. */
static void c_primary_sb_record(void)
{
	struct ufs_journal_head h;
	struct ufs_journal_rec r;
	uint64_t joff = sb.s_journal_start * BS;
	uint8_t rec[sizeof(r) + sizeof(struct ufs_super)];

	c_primary_sb();
	peek(joff, &h, sizeof(h));
	memset(&r, 0, sizeof(r));
	r.r_dev_off = 0;
	r.r_len = sizeof(struct ufs_super);
	r.r_seq = h.j_seq;
	memcpy(rec, &r, sizeof(r));
	/* the old bytes: the primary as c_primary_sb() left it */
	peek(0, rec + sizeof(r), sizeof(struct ufs_super));
	rec[sizeof(r) + offsetof(struct ufs_super, s_label) + 3] = 0x55;
	r.r_crc = dx_crc32c(0, rec, sizeof(rec));
	memcpy(rec, &r, sizeof(r));
	poke(joff + UFS_JOURNAL_REC_START, rec, sizeof(rec));
	h.j_used = sizeof(rec);
	poke(joff + offsetof(struct ufs_journal_head, j_used), &h.j_used, 8);
}

static void c_inode_mode(void)
{
	struct ufs_dinode di;

	get_inode(ino_f1, &di);
	di.i_mode = 0xffff;
	put_inode(ino_f1, &di, true);
}

static void c_inode_csum(void)
{
	struct ufs_dinode di;

	get_inode(ino_f2, &di);
	di.i_atime_sec ^= 0x1000;
	put_inode(ino_f2, &di, false);
}

static void c_inode_nlink(void)
{
	struct ufs_dinode di;

	get_inode(ino_f2, &di);
	di.i_nlink = 5;
	put_inode(ino_f2, &di, true);
}

static void c_extent_range(void)
{
	struct ufs_dinode di;

	get_inode(ino_f2, &di);
	di.i_u.tree.ext[0].e_pblk = sb.s_blocks_count + 100;
	put_inode(ino_f2, &di, true);
}

static void c_xattr_csum(void)
{
	struct ufs_dinode di;
	uint8_t b = 'Z';

	get_inode(ino_f2, &di);
	if (!di.i_xattr_block) {
		t_fail("f2 has no xattr block (format changed?)");
		return;
	}
	/* the value "1" of user.x: the last used byte of the block */
	{
		struct ufs_xattr_hdr h;

		peek(di.i_xattr_block * BS, &h, sizeof(h));
		poke(di.i_xattr_block * BS + sizeof(h) + h.x_used - 1, &b, 1);
	}
}

static uint64_t dir_block0(void)
{
	struct ufs_dinode di;

	get_inode(ino_dir, &di);
	return di.i_u.tree.ext[0].e_pblk;
}

static void c_dir_magic(void)
{
	uint16_t m = 0x1234;

	poke(dir_block0() * BS, &m, 2);
}

/* Find /dir's entry for @name: device offset of its record, or 0. */
static uint64_t find_dirent(const char *name)
{
	uint64_t blk = dir_block0();
	uint32_t pos = sizeof(struct ufs_dirblk_hdr);

	while (pos + sizeof(struct ufs_dirent) <= BS) {
		struct ufs_dirent e;

		peek(blk * BS + pos, &e, sizeof(e));
		if (e.d_rec_len == 0)
			break;
		if (e.d_ino && e.d_name_len == strlen(name) &&
		    !memcmp(good + blk * BS + pos + sizeof(e), name, e.d_name_len))
			return blk * BS + pos;
		pos += e.d_rec_len;
	}
	return 0;
}

static void c_dirent_type(void)
{
	uint64_t off = find_dirent("f3");
	uint8_t t = 4;	/* DT_DIR */

	if (!off) {
		t_fail("dirent f3 not found in /dir (format changed?)");
		return;
	}
	poke(off + offsetof(struct ufs_dirent, d_type), &t, 1);
}

static void c_dirent_ino(void)
{
	uint64_t off = find_dirent("f3");
	uint64_t ino = sb.s_inode_count - 3;	/* a free slot */

	if (!off) {
		t_fail("dirent f3 not found in /dir (format changed?)");
		return;
	}
	poke(off, &ino, 8);
}

static void c_bitmap_leak(void)
{
	uint64_t blk = sb.s_blocks_count - 40;	/* free: the allocator fills from the front */
	uint64_t off = sb.s_bbitmap_start * BS + blk / 8;
	uint8_t b = good[off] | (uint8_t)(1u << (blk % 8));

	poke(off, &b, 1);
}

static void c_bitmap_missing(void)
{
	struct ufs_dinode di;
	uint64_t blk, off;
	uint8_t b;

	get_inode(ino_f1, &di);
	blk = di.i_u.tree.ext[0].e_pblk;
	off = sb.s_bbitmap_start * BS + blk / 8;
	b = good[off] & (uint8_t)~(1u << (blk % 8));
	poke(off, &b, 1);
}

/* ---------------------------------------------------------------- the checks */

enum { REFUSE, MOUNTS };
#define ANY (-1)

struct ccase {
	const char *name;
	void (*corrupt)(void);
	int mount;		/* REFUSE or MOUNTS */
	const char *keyword;	/* REFUSE: must appear in the message */
	int fsck_n;		/* expected exit of fsck -n */
	int fsck_y;		/* expected exit of fsck -y (ANY: 1 or 4) */
};

static const struct ccase cases[] = {
	{ "primary superblock", c_primary_sb, MOUNTS, NULL, 4, 1 },
	{ "primary superblock logged by a pending record", c_primary_sb_record, MOUNTS, NULL, 4, 1 },
	{ "both superblocks", c_both_sb, REFUSE, "superblock", 4, 4 },
	{ "not udaxfs", c_no_magic, REFUSE, "udaxfs", 8, 8 },
	{ "truncated image", c_truncated, REFUSE, "superblock", 4, 4 },
	{ "journal header", c_journal_head, REFUSE, "journal", 4, 1 },	/* header rewritten */
	{ "journal record", c_journal_bad_record, REFUSE, "journal", 4, 1 },	/* log emptied */
	{ "journal pending", c_journal_pending, MOUNTS, NULL, 0, 1 },
	{ "inode mode", c_inode_mode, MOUNTS, NULL, 4, 1 },
	{ "inode checksum", c_inode_csum, MOUNTS, NULL, 4, 1 },
	{ "inode nlink", c_inode_nlink, MOUNTS, NULL, 4, 1 },
	{ "extent out of range", c_extent_range, MOUNTS, NULL, 4, 1 },
	{ "xattr checksum", c_xattr_csum, MOUNTS, NULL, 4, 1 },
	{ "directory block magic", c_dir_magic, MOUNTS, NULL, 4, 1 },	/* salvaged */
	{ "dirent type", c_dirent_type, MOUNTS, NULL, 4, 1 },
	/* the entry is cleared; its inode, then in no directory, is
	 * reconnected as /lost+found/#<ino> */
	{ "dirent inode", c_dirent_ino, MOUNTS, NULL, 4, 1 },
	{ "block bitmap leak", c_bitmap_leak, MOUNTS, NULL, 4, 1 },
	{ "block bitmap missing", c_bitmap_missing, MOUNTS, NULL, 4, 1 },
};

static int run_fsck(const char *flag)
{
	char cmd[2048];
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' %s '%s' >'%s' 2>&1", fsck_bin, flag, img_path, log_path);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void show_log(void)
{
	char line[512];
	FILE *f = fopen(log_path, "r");

	while (f && fgets(line, sizeof(line), f))
		printf("    | %s", line);
	if (f)
		fclose(f);
}

static int fill_walk(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	return 0;
}

static void walk_some(struct ufs *fs)
{
	static const char *names[] = { "dir", "f2" };
	char buf[4096];
	size_t i;

	ufs_readdir(fs, UFS_ROOT_INO, 0, false, fill_walk, NULL);
	for (i = 0; i < UDAX_ARRAY_SIZE(names); i++) {
		struct ufs_entry e, c;

		if (ufs_lookup(fs, UFS_ROOT_INO, names[i], &e) < 0)
			continue;
		if (S_ISDIR(e.st.st_mode)) {
			ufs_readdir(fs, e.ino, 0, false, fill_walk, NULL);
			if (ufs_lookup(fs, e.ino, "f1", &c) == 0) {
				if (ufs_open(fs, &ctx, c.ino, O_RDONLY) == 0) {
					ufs_read(fs, c.ino, buf, sizeof(buf), 0);
					ufs_release(fs, c.ino);
				}
				ufs_forget(fs, c.ino, 1);
			}
		} else if (ufs_open(fs, &ctx, e.ino, O_RDONLY) == 0) {
			ufs_read(fs, e.ino, buf, sizeof(buf), 0);
			ufs_release(fs, e.ino);
		}
		ufs_forget(fs, e.ino, 1);
	}
}

static void check_mount(const struct ccase *c)
{
	struct dx_media_opts mo = { .path = img_path };
	struct ufs_mount_opts o = { .log = log_msg };
	struct dx_media *m = NULL;
	struct ufs *fs = NULL;
	uint32_t before = image_crc();
	int r;

	mount_log[0] = '\0';
	r = dx_media_open(&m, &mo);
	if (r == 0)
		r = ufs_mount(&fs, m, &o);
	if (c->mount == REFUSE) {
		const char *msg = dx_errmsg();

		if (r == 0) {
			t_fail("%s: mount succeeded, should refuse", c->name);
			ufs_unmount(&fs);
		} else {
			printf("  mount refused: %s\n", msg);
			if (!strstr(msg, c->keyword) ||
			    (strcmp(c->name, "not udaxfs") && !strstr(msg, "offset")))
				t_fail("%s: message does not name '%s' and its offset: %s", c->name,
				     c->keyword, msg);
		}
		dx_media_close(&m);
		if (image_crc() != before)
			t_fail("%s: a refused mount changed the image", c->name);
		return;
	}
	if (r) {
		t_fail("%s: mount refused (%s), expected to mount", c->name, dx_errmsg());
		dx_media_close(&m);
		return;
	}
	if (mount_log[0])
		printf("  mount said: %s", mount_log);
	if (!strcmp(c->name, "journal pending")) {
		struct stat st;

		if (ufs_getattr(fs, UFS_ROOT_INO, &st) || st.st_uid != 4321)
			t_fail("%s: the unfinished transaction was not rolled back (root uid %u)",
			     c->name, (unsigned)st.st_uid);
	}
	walk_some(fs);
	ufs_unmount(&fs);
	dx_media_close(&m);
}

static void check_daemon(const struct ccase *c)
{
	char cmd[2048], mnt[256];
	const char *b = getenv("top_builddir");
	int st;

	if (c->mount != REFUSE || !b)
		return;
	snprintf(cmd, sizeof(cmd), "%s/udaxfs", b);
	if (access(cmd, X_OK))
		return;
	snprintf(mnt, sizeof(mnt), "/tmp/udax-corrupt-mnt-%d", (int)getpid());
	mkdir(mnt, 0700);
	/* -f: foreground, so a (wrong) successful mount would hang the test;
	 * timeout bounds that, and the unmount below cleans up */
	snprintf(cmd, sizeof(cmd), "timeout 10 %s/udaxfs -f '%s' '%s' >'%s' 2>&1", b, img_path,
		 mnt, log_path);
	st = system(cmd);
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 124) {
		char out[4096] = "";
		size_t n = 0;
		FILE *f = fopen(log_path, "r");

		if (f) {
			n = fread(out, 1, sizeof(out) - 1, f);
			fclose(f);
		}
		out[n] = '\0';
		printf("  daemon refused (exit %d): %s", WEXITSTATUS(st), out);
		if (!strstr(out, c->keyword))
			t_fail("%s: the daemon's message does not name '%s'", c->name, c->keyword);
	} else {
		t_fail("%s: the daemon did not refuse the image", c->name);
		snprintf(cmd, sizeof(cmd), "fusermount3 -u '%s' 2>/dev/null", mnt);
		if (system(cmd)) {
			/* not mounted */
		}
	}
	rmdir(mnt);
}

int main(void)
{
	const char *b = getenv("top_builddir");
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(good_path, sizeof(good_path), "/dev/shm/udax-corrupt-%d.good", (int)getpid());
	snprintf(img_path, sizeof(img_path), "/dev/shm/udax-corrupt-%d.img", (int)getpid());
	snprintf(log_path, sizeof(log_path), "/dev/shm/udax-corrupt-%d.log", (int)getpid());
	snprintf(fsck_bin, sizeof(fsck_bin), "%s/fsck.udaxfs", b ? b : ".");
	if (access(fsck_bin, X_OK)) {
		t_skip("%s not built", fsck_bin);
	}
	make_good();
	for (i = 0; i < UDAX_ARRAY_SIZE(cases); i++) {
		const struct ccase *c = &cases[i];
		uint32_t crc;
		pid_t pid;
		int rc, wst = 0;

		printf("case: %s\n", c->name);
		fresh_copy();
		c->corrupt();
		/* in a child: a crash in mount or in the walk fails this case only */
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			t_failures = 0;
			check_mount(c);
			fflush(stdout);
			_exit(t_failures ? 3 : 0);
		}
		if (pid < 0 || waitpid(pid, &wst, 0) < 0 || !WIFEXITED(wst) || WEXITSTATUS(wst)) {
			if (pid > 0 && WIFSIGNALED(wst))
				t_fail("%s: mounting or using the image crashed (signal %d)", c->name,
				     WTERMSIG(wst));
			else if (pid > 0 && WIFEXITED(wst) && WEXITSTATUS(wst) != 3)
				t_fail("%s: mounting or using the image crashed (exit %d)", c->name,
				     WEXITSTATUS(wst));
			else
				t_failures++;	/* the child said what failed */
		}
		fresh_copy();
		c->corrupt();
		check_daemon(c);
		fresh_copy();
		c->corrupt();
		crc = image_crc();
		rc = run_fsck("-n");
		if (rc != c->fsck_n) {
			t_fail("%s: fsck -n exited %d, expected %d", c->name, rc, c->fsck_n);
			show_log();
		}
		if (image_crc() != crc)
			t_fail("%s: fsck -n wrote to the image", c->name);
		rc = run_fsck("-y");
		if (c->fsck_y != ANY && rc != c->fsck_y) {
			t_fail("%s: fsck -y exited %d, expected %d", c->name, rc, c->fsck_y);
			show_log();
		}
		if (rc == 1 || rc == 0) {
			rc = run_fsck("-n");
			if (rc != 0) {
				t_fail("%s: fsck -n after fsck -y exited %d", c->name, rc);
				show_log();
			}
		}
	}
	unlink(good_path);
	unlink(img_path);
	unlink(log_path);
	printf("corrupt: %zu cases\n", UDAX_ARRAY_SIZE(cases));
	return t_exit("corrupt_images");
}
