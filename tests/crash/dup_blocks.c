/* SPDX-License-Identifier: MIT */
/*
 * dup_blocks.c - fsck -y gives every claimant of a shared block its own
 * copy, so that no owner loses the bytes it reads, and metadata keeps its
 * block.
 *
 * Bug this catches: when two files (or a file and an extent node, an
 * xattr block or a directory) claimed one block, fsck reported "already
 * used" and left it: every later fsck failed again, and a write through
 * one file changed the other (or the metadata).
 *
 * From one image (files a, b, c, a file with an extent node, a file with
 * an xattr block, a directory), each case makes one file's extent point
 * at blocks someone else owns, with the bitmap consistent otherwise:
 *   1. fsck -n must report the sharing (status 4): the damage is seen;
 *   2. what every file reads, the xattr's value and the directory's names
 *      are taken from a read-only mount;
 *   3. fsck -y must exit 1 (all repaired), then fsck -n must exit 0;
 *   4. the repaired image mounts and reads exactly what step 2 read;
 *   5. a write to the file that was given a copy changes nothing else,
 *      and the image is still clean afterwards.
 * Negative control: on the damaged image, the write of step 5 does change
 * the other owner (so step 5 sees sharing).  On a full device, fsck -y
 * must say there is no free space for the copy and leave the files as
 * they read (status 4).
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/format.h"
#include "tools/fsck_check.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#define IMG_SIZE (8u * 1024 * 1024)
#define BS UFS_BLOCK_SIZE
#define NFILES 6

static char base_path[256], full_path[256], img_path[256], out_path[256];
static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };
static int failures;

static const char *const names[NFILES] = { "c", "a", "b", "tree", "x", "d" };
enum { C, A, B, TREE, X, D };

#define DIE_IF(x) do { int r_ = (int)(x); if (r_ < 0) { \
	fprintf(stderr, "dup_blocks: %s: %s (%s)\n", #x, strerror(-r_), dx_errmsg()); \
	exit(1); } } while (0)

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: %s: ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

static void put(struct ufs *fs, uint64_t ino, uint64_t blocks, uint64_t stride, uint8_t seed)
{
	static uint8_t buf[BS];
	uint64_t i, k;

	for (i = 0; i < blocks; i++) {
		for (k = 0; k < BS; k++)
			buf[k] = (uint8_t)(seed + i * 13 + k * 7 + (k >> 8));
		DIE_IF(ufs_write(fs, &ctx, ino, buf, BS, i * stride * BS));
	}
}

/* The image every case starts from; @full: then a filler takes every free block. */
static void make_base(const char *path, bool full)
{
	struct dx_media_opts mo = { .path = path };
	struct ufs_mkfs_opts mk = { .force = true, .inode_ratio = 16384 };
	struct ufs_mount_opts o = { .log = quiet };
	struct dx_media *m;
	struct ufs_super sb;
	struct ufs *fs;
	struct ufs_entry e;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), i;

	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0) {
		printf("SKIP: cannot create %s\n", path);
		exit(77);
	}
	close(fd);
	DIE_IF(dx_media_open(&m, &mo));
	DIE_IF(ufs_mkfs(m, &mk, &sb));
	DIE_IF(ufs_mount(&fs, m, &o));
	for (i = 0; i < NFILES; i++) {
		if (i == D) {
			DIE_IF(ufs_mkdir(fs, &ctx, UFS_ROOT_INO, names[i], 0755, &e));
		} else {
			DIE_IF(ufs_create(fs, &ctx, UFS_ROOT_INO, names[i], 0644, O_RDWR, &e));
			ufs_release(fs, e.ino);
		}
		if (i == C)
			put(fs, e.ino, 1, 1, 0x11);
		else if (i == A)
			put(fs, e.ino, 3, 1, 0x22);
		else if (i == B)
			put(fs, e.ino, 2, 1, 0x33);
		else if (i == TREE)
			put(fs, e.ino, 10, 2, 0x44);	/* holes: ten extents need a node */
		else if (i == X) {
			put(fs, e.ino, 1, 1, 0x55);
			DIE_IF(ufs_setxattr(fs, &ctx, e.ino, "user.kept", "the value", 9, 0));
		} else {
			uint64_t dir = e.ino;
			struct ufs_entry fe;
			char n[32];
			int k;

			for (k = 0; k < 8; k++) {
				snprintf(n, sizeof(n), "entry-%d", k);
				DIE_IF(ufs_create(fs, &ctx, dir, n, 0644, O_RDWR, &fe));
				ufs_release(fs, fe.ino);
				ufs_forget(fs, fe.ino, 1);
			}
		}
		ufs_forget(fs, e.ino, 1);
	}
	if (full) {
		static uint8_t buf[BS];
		uint64_t off = 0;
		ssize_t r;

		DIE_IF(ufs_create(fs, &ctx, UFS_ROOT_INO, "filler", 0644, O_RDWR, &e));
		memset(buf, 0xf1, sizeof(buf));
		while ((r = ufs_write(fs, &ctx, e.ino, buf, BS, off)) == BS)
			off += BS;
		if (r != -ENOSPC) {
			fprintf(stderr, "dup_blocks: filling the device: %zd\n", r);
			exit(1);
		}
		ufs_release(fs, e.ino);
		ufs_forget(fs, e.ino, 1);
	}
	DIE_IF(ufs_unmount(&fs));
	dx_media_close(&m);
}

/* ---- the image, raw ---- */

static uint8_t *img;
static struct ufs_super sb;

static void load(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0 || pread(fd, img, IMG_SIZE, 0) != IMG_SIZE) {
		fprintf(stderr, "dup_blocks: cannot read %s\n", path);
		exit(1);
	}
	close(fd);
	memcpy(&sb, img, sizeof(sb));
}

static void store(void)
{
	int fd = open(img_path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || pwrite(fd, img, IMG_SIZE, 0) != IMG_SIZE) {
		fprintf(stderr, "dup_blocks: cannot write %s\n", img_path);
		exit(1);
	}
	close(fd);
}

static struct ufs_dinode *dinode(uint64_t ino)
{
	return (struct ufs_dinode *)(img + ufs_inode_off(&sb, ino));
}

static void set_bbit(uint64_t blk, bool on)
{
	uint8_t *p = img + sb.s_bbitmap_start * BS + blk / 8;

	if (on)
		*p |= (uint8_t)(1u << (blk % 8));
	else
		*p &= (uint8_t)~(1u << (blk % 8));
}

/*
 * Point the (single) extent of inode @ino at @to; its old blocks are
 * freed in the bitmap unless @keep_old (then they look leaked).
 */
static void share(uint64_t ino, uint64_t to, bool keep_old)
{
	struct ufs_dinode *di = dinode(ino);
	uint64_t b;

	if (di->i_u.tree.hdr.h_depth != 0 || di->i_u.tree.hdr.h_entries != 1) {
		fprintf(stderr, "dup_blocks: inode %" PRIu64 " has not one extent\n", ino);
		exit(1);
	}
	if (!keep_old)
		for (b = 0; b < di->i_u.tree.ext[0].e_len; b++)
			set_bbit(di->i_u.tree.ext[0].e_pblk + b, false);
	di->i_u.tree.ext[0].e_pblk = to;
	di->i_checksum = ufs_inode_csum(di);
}

/*
 * Give inode @ino the extent tree of inode @src (its root, size and block
 * count): the two share the node and every block under it.  @ino's own
 * blocks are freed in the bitmap.
 */
static void share_tree(uint64_t ino, uint64_t src)
{
	struct ufs_dinode *di = dinode(ino);
	const struct ufs_dinode *s = dinode(src);
	uint64_t b;

	for (b = 0; b < di->i_u.tree.ext[0].e_len; b++)
		set_bbit(di->i_u.tree.ext[0].e_pblk + b, false);
	memcpy(&di->i_u.tree, &s->i_u.tree, sizeof(di->i_u.tree));
	di->i_size = s->i_size;
	di->i_blocks = s->i_blocks;
	di->i_checksum = ufs_inode_csum(di);
}

/* ---- what the file system shows ---- */

struct view {
	uint64_t ino[NFILES];
	uint8_t *data[NFILES];
	size_t len[NFILES];
	char xattr[64];
	char dirnames[512];
};

static int names_fill(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	char *s = arg;

	(void)e;
	(void)next;
	if (strlen(s) + strlen(name) + 2 < 512) {
		strcat(s, name);
		strcat(s, " ");
	}
	return 0;
}

static void view_free(struct view *v)
{
	int i;

	for (i = 0; i < NFILES; i++)
		free(v->data[i]);
	memset(v, 0, sizeof(*v));
}

/* Mount @path (read-only unless @rw) and read everything.  Return: 0, -1 no mount. */
static int view_get(const char *path, struct view *v, struct ufs **keep, struct dx_media **km)
{
	struct dx_media_opts mo = { .path = path, .readonly = !keep };
	struct ufs_mount_opts o = { .log = quiet, .readonly = !keep };
	struct dx_media *m;
	struct ufs *fs;
	struct ufs_entry e;
	struct stat st;
	int i;

	memset(v, 0, sizeof(*v));
	if (dx_media_open(&m, &mo))
		return -1;
	if (ufs_mount(&fs, m, &o)) {
		dx_media_close(&m);
		return -1;
	}
	for (i = 0; i < NFILES; i++) {
		if (ufs_lookup(fs, UFS_ROOT_INO, names[i], &e))
			continue;
		v->ino[i] = e.ino;
		if (i == D) {
			ufs_readdir(fs, e.ino, 0, false, names_fill, v->dirnames);
		} else if (!ufs_getattr(fs, e.ino, &st)) {
			v->len[i] = (size_t)st.st_size;
			v->data[i] = calloc(1, v->len[i] + 1);
			if (!v->data[i] || ufs_read(fs, e.ino, v->data[i], v->len[i], 0) !=
			    (ssize_t)v->len[i])
				v->len[i] = SIZE_MAX;	/* unreadable: never equal */
		}
		if (i == X && ufs_getxattr(fs, e.ino, "user.kept", v->xattr,
					   sizeof(v->xattr) - 1) < 0)
			strcpy(v->xattr, "(none)");
		ufs_forget(fs, e.ino, 1);
	}
	if (keep) {
		*keep = fs;
		*km = m;
		return 0;
	}
	ufs_unmount(&fs);
	dx_media_close(&m);
	return 0;
}

/* Return: the first thing that differs, or NULL. */
static const char *view_diff(const struct view *x, const struct view *y)
{
	int i;

	for (i = 0; i < NFILES; i++) {
		if (x->ino[i] != y->ino[i])
			return names[i];
		if (i != D && (x->len[i] != y->len[i] ||
			       (x->len[i] != SIZE_MAX && memcmp(x->data[i], y->data[i], x->len[i]))))
			return names[i];
	}
	if (strcmp(x->xattr, y->xattr))
		return "x's xattr";
	if (strcmp(x->dirnames, y->dirnames))
		return "d's names";
	return NULL;
}

/* ---- fsck ---- */

static int fsck_run(enum fsck_repair rep, bool *said_shared, bool *said_nospace)
{
	FILE *out = fopen(out_path, "w+");
	struct fsck_opts fo = { .repair = rep, .force = true, .out = out };
	char line[512];
	int s;

	if (!out) {
		fprintf(stderr, "dup_blocks: cannot open %s\n", out_path);
		exit(1);
	}
	s = udax_fsck_path(img_path, &fo, NULL);
	rewind(out);
	if (said_shared)
		*said_shared = false;
	if (said_nospace)
		*said_nospace = false;
	while (fgets(line, sizeof(line), out)) {
		if (getenv("UDAX_TEST_VERBOSE"))
			fputs(line, stdout);
		if (said_shared && strstr(line, " also ") && strstr(line, "its own copy"))
			*said_shared = true;
		if (said_nospace && strstr(line, "no free space for a copy"))
			*said_nospace = true;
	}
	fclose(out);
	return s;
}

/* Write through file @w; return what changed elsewhere (NULL: nothing). */
static const char *write_changes_others(int w)
{
	struct view before, after;
	struct ufs *fs;
	struct dx_media *m;
	const char *what = NULL;
	uint8_t *buf;
	int i;

	if (view_get(img_path, &before, &fs, &m)) {
		printf("FAIL: the image does not mount for the write\n");
		failures++;
		return NULL;
	}
	buf = malloc(before.len[w]);
	if (!buf)
		exit(1);
	memset(buf, 0xee, before.len[w]);
	DIE_IF(ufs_write(fs, &ctx, before.ino[w], buf, before.len[w], 0));
	ufs_unmount(&fs);
	dx_media_close(&m);
	if (view_get(img_path, &after, NULL, NULL)) {
		printf("FAIL: the image does not mount after the write\n");
		failures++;
		view_free(&before);
		free(buf);
		return NULL;
	}
	/* the written file reads its new bytes; everything else as before */
	for (i = 0; i < NFILES; i++) {
		if (i == w)
			continue;
		if (after.len[i] != before.len[i] ||
		    (i != D && after.len[i] != SIZE_MAX &&
		     memcmp(after.data[i], before.data[i], after.len[i])))
			what = names[i];
	}
	if (!what && strcmp(after.xattr, before.xattr))
		what = "x's xattr";
	if (!what && strcmp(after.dirnames, before.dirnames))
		what = "d's names";
	if (after.len[w] != before.len[w] || memcmp(after.data[w], buf, after.len[w]))
		what = "the written file itself";
	view_free(&before);
	view_free(&after);
	free(buf);
	return what;
}

/*
 * One case: file @victim's extent points at @to, which @owner_desc owns.
 * @writer: the file that must have been given a copy.
 */
static void run_case(const char *name, int victim, uint64_t to, uint64_t victim_ino,
		     uint64_t tree_of)
{
	struct view before, after;
	const char *d;
	bool shared;
	int s;

	load(base_path);
	if (tree_of)
		share_tree(to, tree_of);
	else
		share(victim_ino, to, false);
	store();
	s = fsck_run(FSCK_REPAIR_NO, &shared, NULL);
	if (s != FSCK_UNCORRECTED || !shared) {
		printf("FAIL: %s: fsck -n of the damaged image says %d%s\n", name, s,
		       shared ? "" : " and does not report the shared blocks");
		failures++;
	}
	if (view_get(img_path, &before, NULL, NULL)) {
		fail(name, "%s", "the damaged image does not mount");
		return;
	}
	s = fsck_run(FSCK_REPAIR_YES, NULL, NULL);
	if (s != FSCK_CORRECTED) {
		printf("FAIL: %s: fsck -y says %d, not 1 (all repaired)\n", name, s);
		failures++;
		fsck_run(FSCK_REPAIR_NO, NULL, NULL);
	}
	s = fsck_run(FSCK_REPAIR_NO, NULL, NULL);
	if (s != FSCK_OK) {
		printf("FAIL: %s: fsck -n after fsck -y says %d\n", name, s);
		failures++;
	}
	if (view_get(img_path, &after, NULL, NULL)) {
		fail(name, "%s", "the repaired image does not mount");
		view_free(&before);
		return;
	}
	d = view_diff(&before, &after);
	if (d)
		fail(name, "after fsck -y, %s does not read what it read before", d);
	view_free(&before);
	view_free(&after);
	d = write_changes_others(victim);
	if (d)
		fail(name, "after fsck -y, a write to the copied file changed %s", d);
	s = fsck_run(FSCK_REPAIR_NO, NULL, NULL);
	if (s != FSCK_OK) {
		printf("FAIL: %s: fsck -n after a write to the repaired image says %d\n", name, s);
		failures++;
	}
	if (!failures)
		printf("ok: %s\n", name);
}

static void cleanup(void)
{
	unlink(base_path);
	unlink(full_path);
	unlink(img_path);
	unlink(out_path);
}

int main(void)
{
	struct view v;
	struct ufs_dinode di;
	uint64_t ino[NFILES], tree_node, xblk, dblk, a_blk;
	const char *d;
	bool shared, nospace;
	int i, s;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(base_path, sizeof(base_path), "/dev/shm/udax-fsck-dup-base-%d", (int)getpid());
	snprintf(full_path, sizeof(full_path), "/dev/shm/udax-fsck-dup-full-%d", (int)getpid());
	snprintf(img_path, sizeof(img_path), "/dev/shm/udax-fsck-dup-img-%d", (int)getpid());
	snprintf(out_path, sizeof(out_path), "/dev/shm/udax-fsck-dup-out-%d", (int)getpid());
	atexit(cleanup);	/* every way out, early failures included */
	img = malloc(IMG_SIZE);
	if (!img)
		return 1;
	make_base(base_path, false);
	make_base(full_path, true);

	load(base_path);
	store();
	if (view_get(img_path, &v, NULL, NULL)) {
		printf("FAIL: the base image does not mount\n");
		return 1;
	}
	for (i = 0; i < NFILES; i++)
		ino[i] = v.ino[i];
	view_free(&v);
	s = fsck_run(FSCK_REPAIR_NO, NULL, NULL);
	if (s != FSCK_OK) {
		printf("FAIL: the base image is not clean (%d)\n", s);
		return 1;
	}
	memcpy(&di, dinode(ino[TREE]), sizeof(di));
	if (di.i_u.tree.hdr.h_depth != 1) {
		printf("FAIL: the tree file has no extent node (depth %u)\n", di.i_u.tree.hdr.h_depth);
		return 1;
	}
	tree_node = ((struct ufs_extent_idx *)di.i_u.tree.ext)[0].x_child;
	xblk = dinode(ino[X])->i_xattr_block;
	dblk = dinode(ino[D])->i_u.tree.ext[0].e_pblk;
	a_blk = dinode(ino[A])->i_u.tree.ext[0].e_pblk;

	/* negative control: on the damaged image a write to b shows in a */
	load(base_path);
	share(ino[B], a_blk + 1, false);
	store();
	d = write_changes_others(B);
	if (!d || strcmp(d, "a")) {
		printf("FAIL: control: a write through a file sharing a's blocks changed %s, "
		       "not a\n", d ? d : "nothing");
		failures++;
	}

	run_case("two files share two blocks", B, a_blk + 1, ino[B], 0);
	/* c has the lowest inode: metadata keeps the block all the same */
	run_case("file data on another file's extent node", C, tree_node, ino[C], 0);
	run_case("file data on another file's xattr block", C, xblk, ino[C], 0);
	run_case("file data on a directory block", C, dblk, ino[C], 0);
	/*
	 * a takes tree's whole tree: a (the lower inode) keeps the node and
	 * the data; tree gets a copy of the node, and its copied node is
	 * what then points at its copies of the data
	 */
	run_case("two files share an extent node and its data", TREE, ino[A], 0, ino[TREE]);

	/* a full device: nothing to copy into; fsck says so and changes no file */
	{
		struct view before, after;
		uint64_t fa;

		load(full_path);
		fa = dinode(ino[A])->i_u.tree.ext[0].e_pblk;
		share(ino[B], fa + 1, true);	/* b's own blocks stay allocated */
		store();
		if (view_get(img_path, &before, NULL, NULL)) {
			fail("full device", "%s", "the damaged image does not mount");
		} else {
			s = fsck_run(FSCK_REPAIR_YES, &shared, &nospace);
			if (!(s & FSCK_UNCORRECTED) || !nospace) {
				printf("FAIL: full device: fsck -y says %d%s\n", s, nospace ? "" :
				       " and does not say there is no free space for the copy");
				failures++;
			}
			if (view_get(img_path, &after, NULL, NULL)) {
				fail("full device", "%s", "the image does not mount after fsck -y");
			} else {
				d = view_diff(&before, &after);
				if (d)
					fail("full device", "after fsck -y, %s reads differently", d);
				view_free(&after);
			}
			view_free(&before);
			if (!failures)
				printf("ok: full device: fsck -y says it has no room for a copy\n");
		}
	}

	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
