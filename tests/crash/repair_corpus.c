/* SPDX-License-Identifier: MIT */
/*
 * repair_corpus.c - fsck -y repairs what it reports, or says that it
 * cannot; it never deletes the data of a healthy file.
 *
 * Bugs this catches: after fsck -y, single-field damage was still there
 * (bit flips in the journal header, a bogus journal used-count, a zeroed
 * inode-bitmap block); an inode with a bit flip got its checksum
 * recomputed over the damage (an 8-byte file became a 64 PiB sparse file
 * that fsck then called clean).
 *
 * One populated image (directories, a multi-block directory, files from 0
 * bytes to a multi-extent tree, symlinks, hard links, xattrs, an orphan)
 * is damaged in many ways, each in a fresh copy, generated here from a
 * fixed seed: single bit flips in every kind of metadata (superblocks,
 * journal header, bitmaps, every used inode, directory blocks, extent
 * nodes, xattr blocks), bogus values in single fields, zeroed blocks.
 * For each image:
 *   1. fsck -y; its status S;
 *   2. fsck -n must exit 0, unless S has FSCK_UNCORRECTED (4: fsck said
 *      it cannot repair everything), as fsck.udaxfs(8) documents;
 *   3. if the image mounts, every healthy file (its inode, extent nodes
 *      and data untouched by the damage) must be reachable from the root
 *      (lost+found included) with its content intact.
 * And once: a zeroed directory block leaves names that fsck -y puts in
 * /lost+found (made if missing).
 * And: an extent root of the wrong capacity and an extent past the largest
 * file, which the core refuses to use, are not called clean by fsck -n.
 * Negative control: the checker is run on a damaged image without fsck -y
 * and must see the damage (fsck -n status 4), and the content check must
 * see a file whose data was changed.
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
#include "tools/fsck_check.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../harness.h"
#include "image_util.h"

#define IMG_SIZE (8u * 1024 * 1024)
#define BS UFS_BLOCK_SIZE
#define MAXF 256
#define MAXMETA 4096

static char good_path[256], img_path[256];
static uint8_t *good, *img;
static struct ufs_super sb;
static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };
static int cases, unrepaired, verbose_cases;

/* the files whose data is checked */
static struct file {
	uint64_t ino;
	uint64_t size;
	uint64_t blocks[64];	/* device blocks: data and nodes */
	unsigned int nblocks;
	bool healthy;		/* per case */
	bool found;
} files[MAXF];
static unsigned int nfiles;

/* metadata ranges to damage: [off, off + len) and what it is */
static struct meta {
	uint64_t off;
	uint32_t len;
	uint64_t owner;		/* inode whose structure it is, 0 = global */
	const char *what;
} meta[MAXMETA];
static unsigned int nmeta;

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t pattern(uint64_t ino, uint64_t off)
{
	return (uint8_t)(ino * 131 + off * 7 + (off >> 12));
}

static uint64_t mkfile(struct ufs *fs, uint64_t dir, const char *name, uint64_t size, int stride)
{
	struct ufs_entry e;
	static uint8_t buf[BS];
	uint64_t off;

	REQUIRE_OK(ufs_create(fs, &ctx, dir, name, 0644, O_RDWR | O_CREAT, &e));
	for (off = 0; off < size; off += BS) {
		uint64_t n = dx_min(size - off, (uint64_t)BS), i;

		for (i = 0; i < n; i++)
			buf[i] = pattern(e.ino, off * stride + i);
		REQUIRE_OK((int)ufs_write(fs, &ctx, e.ino, buf, n, off * stride));
	}
	ufs_release(fs, e.ino);
	ufs_forget(fs, e.ino, 1);
	if (nfiles < MAXF) {
		files[nfiles].ino = e.ino;
		files[nfiles].size = size ? (size - BS) * stride + BS : 0;	/* last write's end */
		nfiles++;
	}
	return e.ino;
}

static void add_meta(uint64_t off, uint32_t len, uint64_t owner, const char *what)
{
	if (nmeta < MAXMETA)
		meta[nmeta++] = (struct meta){ off, len, owner, what };
}

static struct file *file_of(uint64_t ino)
{
	unsigned int i;

	for (i = 0; i < nfiles; i++)
		if (files[i].ino == ino)
			return &files[i];
	return NULL;
}

/* Walk an extent node of inode @ino: record node blocks (metadata) and,
 * for files we check, every block it maps; directories: their blocks. */
static void walk(uint64_t ino, const struct ufs_extent_hdr *h, const uint8_t *ent, bool dir)
{
	struct file *f = file_of(ino);
	unsigned int i;

	for (i = 0; i < h->h_entries; i++) {
		if (h->h_depth) {
			struct ufs_extent_idx x;

			memcpy(&x, ent + i * sizeof(x), sizeof(x));
			add_meta(x.x_child * BS, BS, ino, "extent node");
			if (f && f->nblocks < 64)
				f->blocks[f->nblocks++] = x.x_child;
			walk(ino, (const struct ufs_extent_hdr *)(good + x.x_child * BS),
			     good + x.x_child * BS + sizeof(*h), dir);
		} else {
			struct ufs_extent e;
			uint64_t b;

			memcpy(&e, ent + i * sizeof(e), sizeof(e));
			for (b = e.e_pblk; b < e.e_pblk + e.e_len; b++) {
				if (dir)
					add_meta(b * BS, BS, ino, "directory block");
				if (f && f->nblocks < 64)
					f->blocks[f->nblocks++] = b;
			}
		}
	}
}

static void make_good(void)
{
	struct ufs_mkfs_opts mk = { .force = true, .inode_ratio = 16384 };
	struct ufs_mount_opts o = { .log = img_quiet };
	struct dx_media *m;
	struct ufs *fs;
	struct ufs_entry e;
	uint64_t d1, d2, big, ino, i, orphan;
	char name[64];

	img_mkfs_mount(good_path, IMG_SIZE, &mk, &o, &sb, &m, &fs);
	d1 = img_mkdir(fs, UFS_ROOT_INO, "d1");
	d2 = img_mkdir(fs, d1, "d2");
	big = img_mkdir(fs, UFS_ROOT_INO, "big");
	mkfile(fs, UFS_ROOT_INO, "empty", 0, 1);
	mkfile(fs, UFS_ROOT_INO, "eight", 8, 1);
	mkfile(fs, d1, "small", 100, 1);
	mkfile(fs, d1, "three-blocks", 3 * BS, 1);
	mkfile(fs, d2, "tree", 10 * BS, 2);	/* holes: ten extents, a node block */
	ino = mkfile(fs, d2, "linked", 5000, 1);
	REQUIRE_OK(ufs_link(fs, &ctx, ino, UFS_ROOT_INO, "hardlink", &e));
	ufs_forget(fs, e.ino, 1);
	ino = mkfile(fs, UFS_ROOT_INO, "xattrs", 300, 1);
	REQUIRE_OK(ufs_setxattr(fs, &ctx, ino, "user.one", "1", 1, 0));
	REQUIRE_OK(ufs_setxattr(fs, &ctx, ino, "user.two", "22", 2, 0));
	REQUIRE_OK(ufs_symlink(fs, &ctx, d1, "short-link", "three-blocks", &e));
	ufs_forget(fs, e.ino, 1);
	memset(name, 'l', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	{
		char target[300];

		memset(target, 't', sizeof(target) - 1);
		target[sizeof(target) - 1] = '\0';
		REQUIRE_OK(ufs_symlink(fs, &ctx, d1, "long-link", target, &e));
		ufs_forget(fs, e.ino, 1);
	}
	for (i = 0; i < 120; i++) {
		snprintf(name, sizeof(name), "entry-%03" PRIu64 "-with-a-long-name", i);
		mkfile(fs, big, name, i % 7 == 0 ? 64 : 0, 1);
	}
	/* an orphan: unlinked while still referenced, as a crash leaves it */
	orphan = mkfile(fs, UFS_ROOT_INO, "orphan", 2 * BS, 1);
	nfiles--;	/* not a healthy file: mount or fsck reclaims it */
	REQUIRE_OK(ufs_lookup(fs, UFS_ROOT_INO, "orphan", &e));
	REQUIRE_OK(ufs_unlink(fs, &ctx, UFS_ROOT_INO, "orphan"));
	good = img_load(good_path, IMG_SIZE);
	ufs_forget(fs, orphan, 1);
	img_unmount(&fs, &m);
	memcpy(&sb, good, sizeof(sb));
	(void)d2;

	/* what to damage */
	add_meta(0, sizeof(struct ufs_super), 0, "primary superblock");
	add_meta((sb.s_blocks_count - 1) * BS, sizeof(struct ufs_super), 0, "backup superblock");
	add_meta(sb.s_journal_start * BS, sizeof(struct ufs_journal_head), 0, "journal header");
	add_meta(sb.s_ibitmap_start * BS, (uint32_t)dx_min(sb.s_inode_count / 8 + 1, (uint64_t)BS),
		 0, "inode bitmap");
	add_meta(sb.s_bbitmap_start * BS, (uint32_t)dx_min(sb.s_blocks_count / 8, (uint64_t)BS),
		 0, "block bitmap");
	for (ino = 1; ino < sb.s_inode_count; ino++) {
		const struct ufs_dinode *di = (const void *)(good + ufs_inode_off(&sb, ino));

		if (!di->i_mode)
			continue;
		add_meta(ufs_inode_off(&sb, ino), UFS_INODE_SIZE, ino, "inode");
		if (di->i_xattr_block) {
			add_meta(di->i_xattr_block * BS, 64, ino, "xattr block");
			if (file_of(ino))
				file_of(ino)->blocks[file_of(ino)->nblocks++] = di->i_xattr_block;
		}
		if (!(di->i_flags & UFS_INODE_FL_INLINE_SYMLINK))
			walk(ino, &di->i_u.tree.hdr, (const uint8_t *)di->i_u.tree.ext,
			     S_ISDIR(di->i_mode));
	}
}

static void write_img(void)
{
	img_store(img_path, img, IMG_SIZE);
}

/* ---- the content check ---- */

static struct ufs *cfs;

static int scan_fill(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	uint64_t *v = arg;

	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (v[0] < 4096)
		v[++v[0]] = e->ino | ((uint64_t)S_ISDIR(e->st.st_mode) << 63);
	return 0;
}

static void scan(uint64_t dir, int depth)
{
	uint64_t *v = calloc(4097, sizeof(*v)), i;

	if (!v || depth > 16) {
		free(v);
		return;
	}
	if (ufs_readdir(cfs, dir, 0, false, scan_fill, v) == 0) {
		for (i = 1; i <= v[0]; i++) {
			uint64_t ino = v[i] & ~(1ull << 63);
			struct file *f;

			if (v[i] >> 63)
				scan(ino, depth + 1);
			else if ((f = file_of(ino)))
				f->found = true;
		}
	}
	free(v);
}

static bool content_ok(const struct file *f)
{
	static uint8_t buf[BS];
	uint64_t off;
	struct stat st;

	if (ufs_getattr(cfs, f->ino, &st) || (uint64_t)st.st_size != f->size)
		return false;
	for (off = 0; off < f->size; off += BS) {
		ssize_t n = ufs_read(cfs, f->ino, buf, BS, off);
		uint64_t i;

		if (n != (ssize_t)dx_min((uint64_t)BS, f->size - off))
			return false;
		for (i = 0; i < (uint64_t)n; i++) {
			uint64_t o = off + i;

			/* the "tree" file is written with holes: stride 2 */
			if (buf[i] && buf[i] != pattern(f->ino, o))
				return false;
		}
	}
	return true;
}

/* Return: healthy files lost or changed; -1 if the image does not mount. */
static int check_files(const char *name, bool *mounted)
{
	struct dx_media_opts mo = { .path = img_path };
	struct ufs_mount_opts o = { .log = img_quiet };
	struct dx_media *m;
	unsigned int i;
	int lost = 0;

	*mounted = false;
	if (dx_media_open(&m, &mo))
		return -1;
	if (ufs_mount(&cfs, m, &o)) {
		dx_media_close(&m);
		return -1;
	}
	*mounted = true;
	for (i = 0; i < nfiles; i++)
		files[i].found = false;
	scan(UFS_ROOT_INO, 0);
	for (i = 0; i < nfiles; i++) {
		if (!files[i].healthy)
			continue;
		if (!files[i].found || !content_ok(&files[i])) {
			if (lost++ < 3)
				printf("  %s: healthy file inode %" PRIu64 " %s\n", name, files[i].ino,
				       files[i].found ? "has changed content" : "is gone");
		}
	}
	ufs_unmount(&cfs);
	dx_media_close(&m);
	return lost;
}

/* ---- one case ---- */

static int fsck_run(enum fsck_repair rep, bool show)
{
	struct fsck_opts fo = { .repair = rep, .force = true, .quiet = !show, .out = stdout };

	return udax_fsck_path(img_path, &fo, NULL);
}

static void mark_healthy(uint64_t off, uint32_t len)
{
	unsigned int i, k;

	for (i = 0; i < nfiles; i++) {
		uint64_t io = ufs_inode_off(&sb, files[i].ino);

		files[i].healthy = !(off < io + UFS_INODE_SIZE && io < off + len);
		for (k = 0; k < files[i].nblocks && files[i].healthy; k++) {
			uint64_t bo = files[i].blocks[k] * BS;

			if (off < bo + BS && bo < off + len)
				files[i].healthy = false;
		}
	}
}

/*
 * @must: damage fsck can always repair (derived data, one flipped bit):
 * "cannot repair" is a failure too.  @restored: a file whose damage fsck
 * must undo exactly (a flipped bit in its inode), checked as healthy.
 */
static void run_case(const char *name, uint64_t doff, uint32_t dlen, bool must, uint64_t restored)
{
	int s1, s2, lost;
	bool mounted;
	unsigned int i;

	cases++;
	mark_healthy(doff, dlen);
	for (i = 0; i < nfiles; i++)
		if (files[i].ino == restored)
			files[i].healthy = true;
	write_img();
	s1 = fsck_run(FSCK_REPAIR_YES, verbose_cases || (getenv("UDAX_TEST_SHOW") &&
						       strstr(name, getenv("UDAX_TEST_SHOW"))));
	s2 = fsck_run(FSCK_REPAIR_NO, false);
	lost = check_files(name, &mounted);
	if (s1 & FSCK_OPERATIONAL) {
		t_fail("%s: fsck -y: operational error (%d)", name, s1);
	} else if (s2 != FSCK_OK && !(s1 & FSCK_UNCORRECTED)) {
		t_fail("%s: fsck -y said %d (all repaired) but fsck -n then says %d", name,
		       s1, s2);
		if (verbose_cases < 3) {
			verbose_cases++;
			write_img();
			fsck_run(FSCK_REPAIR_YES, true);
			fsck_run(FSCK_REPAIR_NO, true);
			verbose_cases--;
		}
	} else if (must && (s1 & FSCK_UNCORRECTED)) {
		t_fail("%s: fsck -y says it cannot repair (%d), but this damage is "
		       "repairable", name, s1);
	} else if (lost > 0) {
		t_fail("%s: fsck -y (%d) lost %d healthy file(s)", name, s1, lost);
	} else {
		if (s1 & FSCK_UNCORRECTED)
			unrepaired++;
		if (getenv("UDAX_TEST_VERBOSE"))
			printf("ok: %s: fsck -y %d, fsck -n %d%s\n", name, s1, s2,
			       mounted ? ", healthy files intact" : ", does not mount");
	}
}

static void flip_case(const struct meta *mt, uint64_t bit)
{
	char name[160];
	uint64_t off = mt->off + bit / 8;

	memcpy(img, good, IMG_SIZE);
	img[off] ^= (uint8_t)(1u << (bit % 8));
	snprintf(name, sizeof(name), "bit %" PRIu64 " of %s%s%.0" PRIu64 " (offset %" PRIu64 ")",
		 bit, mt->what, mt->owner ? " of inode " : "", mt->owner, off);
	if (mt->owner)
		snprintf(name, sizeof(name), "bit %" PRIu64 " of %s of inode %" PRIu64
			 " (offset %" PRIu64 ")", bit, mt->what, mt->owner, off);
	/* one flipped bit anywhere in metadata is always repairable */
	run_case(name, off, 1, true, !strcmp(mt->what, "inode") ? mt->owner : 0);
}

static void field_case(const char *name, uint64_t off, const void *val, uint32_t len, bool must)
{
	memcpy(img, good, IMG_SIZE);
	memcpy(img + off, val, len);
	run_case(name, off, len, must, 0);
}

static void zero_case(const char *name, uint64_t blk, bool must)
{
	memcpy(img, good, IMG_SIZE);
	memset(img + blk * BS, 0, BS);
	run_case(name, blk * BS, BS, must, 0);
}

int main(void)
{
	uint64_t joff, v, i, k;
	unsigned int j;
	int s;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(good_path, sizeof(good_path), "/dev/shm/udax-fsck-corpus-good-%d", (int)getpid());
	snprintf(img_path, sizeof(img_path), "/dev/shm/udax-fsck-corpus-img-%d", (int)getpid());
	make_good();
	img = malloc(IMG_SIZE);
	joff = sb.s_journal_start * BS;
	printf("%u metadata ranges, %u files checked\n", nmeta, nfiles);

	/* controls: the checker sees damage, the content check sees changed data */
	memcpy(img, good, IMG_SIZE);
	memset(img + sb.s_ibitmap_start * BS, 0, BS);
	write_img();
	s = fsck_run(FSCK_REPAIR_NO, false);
	if (s != FSCK_UNCORRECTED) {
		t_fail("control: fsck -n of a zeroed inode bitmap says %d", s);
	}
	{
		bool mounted;
		struct file *f = file_of(files[1].ino);

		memcpy(img, good, IMG_SIZE);
		img[f->blocks[0] * BS] ^= 1;
		write_img();
		for (j = 0; j < nfiles; j++)
			files[j].healthy = true;
		if (check_files("control", &mounted) != 1) {
			t_fail("control: a changed data byte was not seen");
		}
	}

	/*
	 * A rolled-back create leaves a valid inode in a slot the bitmap
	 * calls free (the table is valid only where the bitmap says so):
	 * not an error, and nothing for fsck -y to take back.
	 */
	{
		uint64_t ino, src = ufs_inode_off(&sb, files[1].ino);

		for (ino = sb.s_inode_count - 1; ino > 1; ino--)
			if (!((const struct ufs_dinode *)(good + ufs_inode_off(&sb, ino)))->i_mode)
				break;
		memcpy(img, good, IMG_SIZE);
		memcpy(img + ufs_inode_off(&sb, ino), good + src, UFS_INODE_SIZE);
		write_img();
		s = fsck_run(FSCK_REPAIR_NO, false);
		if (s != FSCK_OK) {
			t_fail("a valid inode in a free, unnamed slot (a rolled-back create): "
			       "fsck -n says %d", s);
			fsck_run(FSCK_REPAIR_NO, true);
		}
	}

	/*
	 * What the core refuses fsck must not call clean: an extent root whose
	 * capacity is not the inode's four slots, an extent past the largest
	 * file (both with a valid checksum).
	 */
	{
		uint64_t off = ufs_inode_off(&sb, files[2].ino);
		struct ufs_dinode di;
		int c;

		for (c = 0; c < 2; c++) {
			memcpy(&di, good + off, sizeof(di));
			if (c == 0)
				di.i_u.tree.hdr.h_max = UFS_INLINE_EXTENTS - 1;
			else
				di.i_u.tree.ext[0].e_lblk = 1ull << 40;
			di.i_checksum = ufs_inode_csum(&di);
			memcpy(img, good, IMG_SIZE);
			memcpy(img + off, &di, sizeof(di));
			write_img();
			s = fsck_run(FSCK_REPAIR_NO, false);
			if (s != FSCK_UNCORRECTED) {
				t_fail("%s: fsck -n says %d; the core refuses it", c == 0 ?
				       "extent root with capacity 3" : "extent past the largest file", s);
			}
		}
	}

	/* single bit flips: a few in every range, the whole of the small ones */
	for (j = 0; j < nmeta; j++) {
		uint64_t bits = (uint64_t)meta[j].len * 8;
		unsigned int n = !strcmp(meta[j].what, "journal header") ? 64 :
				 !strcmp(meta[j].what, "inode") && meta[j].owner < 8 ? 24 : 3;

		for (k = 0; k < n; k++)
			flip_case(&meta[j], n == 64 && bits >= 64 ? k * 4 % bits : rnd() % bits);
	}
	/* single fields with bogus values */
	for (v = 8; v; v = v < (1ull << 40) ? v * 37 : 0)
		field_case("journal j_used bogus", joff + offsetof(struct ufs_journal_head, j_used), &v,
			   8, true);
	v = 7;
	field_case("journal j_used odd", joff + offsetof(struct ufs_journal_head, j_used), &v, 8,
		   true);
	v = 12345;
	field_case("orphan head bogus", offsetof(struct ufs_super, s_orphan_head), &v, 8, false);
	for (i = 0; i < 4; i++) {
		uint64_t ino = files[i * 2].ino, off = ufs_inode_off(&sb, ino);
		struct ufs_dinode di;

		memcpy(&di, good + off, sizeof(di));
		/* one bit: the 8-byte file that became 64 PiB; fsck must put it back */
		di.i_size ^= 1ull << 56;
		memcpy(img, good, IMG_SIZE);
		memcpy(img + off, &di, sizeof(di));
		run_case("inode i_size bit 56 flipped (64 PiB), checksum stale", off, sizeof(di), true,
			 ino);
		di.i_size = 1ull << (50 + i);	/* several bits: not one flip away */
		field_case("inode i_size huge, checksum stale", off, &di, sizeof(di), false);
		di.i_checksum = ufs_inode_csum(&di);
		field_case("inode i_size huge, checksum valid", off, &di, sizeof(di), true);
		memcpy(&di, good + off, sizeof(di));
		di.i_nlink += 5;
		di.i_checksum = ufs_inode_csum(&di);
		field_case("inode nlink too high", off, &di, sizeof(di), true);
	}
	/* zeroed blocks */
	zero_case("zeroed inode bitmap block", sb.s_ibitmap_start, true);
	zero_case("zeroed block bitmap block", sb.s_bbitmap_start, true);
	zero_case("zeroed journal header block", sb.s_journal_start, true);
	zero_case("zeroed backup superblock", sb.s_blocks_count - 1, true);
	zero_case("zeroed primary superblock", 0, true);
	for (j = 0; j < nmeta; j++)
		if (!strcmp(meta[j].what, "directory block") || !strcmp(meta[j].what, "extent node") ||
		    !strcmp(meta[j].what, "xattr block"))
			zero_case(meta[j].what, meta[j].off / BS, true);
	{
		uint64_t b;

		for (b = sb.s_itable_start; b < sb.s_itable_start + 2; b++)
			zero_case("zeroed inode table block", b, false);
	}

	/* what a salvaged directory no longer names goes to /lost+found, as with e2fsck */
	for (j = 0; j < nmeta; j++) {
		struct dx_media_opts mo = { .path = img_path };
		struct ufs_mount_opts o = { .log = img_quiet };
		struct dx_media *m;
		struct ufs_entry e;
		uint64_t v2[4097];

		if (strcmp(meta[j].what, "directory block") || meta[j].owner == UFS_ROOT_INO)
			continue;
		memcpy(img, good, IMG_SIZE);
		memset(img + meta[j].off, 0, BS);
		write_img();
		fsck_run(FSCK_REPAIR_YES, false);
		memset(v2, 0, sizeof(v2));
		if (dx_media_open(&m, &mo) || ufs_mount(&cfs, m, &o)) {
			t_fail("lost+found: the repaired image does not mount");
			break;
		}
		if (ufs_lookup(cfs, UFS_ROOT_INO, "lost+found", &e) || !S_ISDIR(e.st.st_mode)) {
			t_fail("lost+found: no /lost+found after a directory block was salvaged");
		} else {
			ufs_readdir(cfs, e.ino, 0, false, scan_fill, v2);
			ufs_forget(cfs, e.ino, 1);
			if (v2[0] == 0) {
				t_fail("lost+found: empty after a directory block was salvaged");
			} else {
				printf("ok: zeroed block of directory %" PRIu64 ": %" PRIu64
				       " names reconnected in /lost+found\n", meta[j].owner, v2[0]);
			}
		}
		ufs_unmount(&cfs);
		dx_media_close(&m);
		break;
	}

	unlink(good_path);
	unlink(img_path);
	printf("%d cases, %d where fsck said it could not repair everything\n", cases, unrepaired);
	return t_exit("repair_corpus");
}
