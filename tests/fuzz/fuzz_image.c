/* SPDX-License-Identifier: MIT */
/*
 * fuzz_image.c - the image fuzz target (see fuzz_image.h).
 *
 * For every input: build the image in a memfd, then
 *   1. fsck -n (the checker library) must not crash;
 *   2. ufs_mount() must refuse (leaving the image byte-identical) or
 *      succeed without crashing; on success the namespace is walked
 *      (readdir, lookup, getattr, read, readlink, xattrs), a file is
 *      created, written and removed, and the file system is unmounted;
 *   3. fsck -y repairs what it can; when it claims to have left nothing
 *      uncorrected, a second fsck -n must find the image clean (repairs
 *      converge).
 * Any crash, sanitizer report or failed assertion is a finding.
 *
 * Built two ways: with -DUDAX_LIBFUZZER by run-fuzz.sh (clang, libFuzzer,
 * ASan), and as a library for fuzz_replay (gcc) which replays the corpus.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/format.h"
#include "tools/fsck_check.h"
#include "fuzz_image.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

static uint8_t *base_img, *work_img;
static int work_fd = -1;
static char work_path[64];
static struct {
	uint64_t start, len;
} regions[UDAX_FUZZ_NREGIONS];
static const struct ufs_ctx fuzz_ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };
/* UDAX_FUZZ_MODE: "fsck" (checker only), "ro" (no writes through the fs), default all */
static bool mode_fsck_only, mode_no_write;
/* UDAX_FUZZ_STRICT_UNMOUNT=1 (the scripts' default): a failed unmount is a finding */
static bool strict_unmount;

static void silent_log(void *arg, const char *msg)
{
}

int udax_fuzz_init(const char *base_path)
{
	struct ufs_super sb;
	int fd;
	ssize_t n;

	base_img = malloc(UDAX_FUZZ_IMAGE_SIZE);
	work_img = malloc(UDAX_FUZZ_IMAGE_SIZE);
	if (!base_img || !work_img)
		return -ENOMEM;
	fd = open(base_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "fuzz: cannot open the base image %s: %s\n", base_path,
			strerror(errno));
		return -errno;
	}
	n = pread(fd, base_img, UDAX_FUZZ_IMAGE_SIZE, 0);
	close(fd);
	if (n != (ssize_t)UDAX_FUZZ_IMAGE_SIZE) {
		fprintf(stderr, "fuzz: %s is not a %u-byte image\n", base_path, UDAX_FUZZ_IMAGE_SIZE);
		return -EINVAL;
	}
	memcpy(&sb, base_img, sizeof(sb));
	if (sb.s_magic != UFS_MAGIC || sb.s_blocks_count * UFS_BLOCK_SIZE != UDAX_FUZZ_IMAGE_SIZE) {
		fprintf(stderr, "fuzz: %s is not a udaxfs base image\n", base_path);
		return -EINVAL;
	}
	regions[0].start = 0;
	regions[0].len = sizeof(struct ufs_super);
	regions[1].start = sb.s_journal_start * UFS_BLOCK_SIZE;
	regions[1].len = UFS_BLOCK_SIZE;
	regions[2].start = sb.s_ibitmap_start * UFS_BLOCK_SIZE;
	regions[2].len = (sb.s_inode_count + 7) / 8;
	regions[3].start = sb.s_bbitmap_start * UFS_BLOCK_SIZE;
	regions[3].len = (sb.s_blocks_count + 7) / 8;
	regions[4].start = sb.s_itable_start * UFS_BLOCK_SIZE;
	regions[4].len = 64 * UFS_INODE_SIZE;	/* the inodes the base image uses */
	regions[5].start = sb.s_data_start * UFS_BLOCK_SIZE;
	regions[5].len = 128 * UFS_BLOCK_SIZE;	/* where the base image's blocks are */
	regions[6].start = UDAX_FUZZ_IMAGE_SIZE - UFS_BLOCK_SIZE;
	regions[6].len = sizeof(struct ufs_super);
	if (getenv("UDAX_FUZZ_MODE")) {
		mode_fsck_only = !strcmp(getenv("UDAX_FUZZ_MODE"), "fsck");
		mode_no_write = !strcmp(getenv("UDAX_FUZZ_MODE"), "ro");
	}
	strict_unmount = getenv("UDAX_FUZZ_STRICT_UNMOUNT") &&
			 !strcmp(getenv("UDAX_FUZZ_STRICT_UNMOUNT"), "1");
	work_fd = memfd_create("udax-fuzz", MFD_CLOEXEC);
	if (work_fd < 0)
		return -errno;
	snprintf(work_path, sizeof(work_path), "/proc/self/fd/%d", work_fd);
	return 0;
}

/* the log's records in [0, @used): this transaction's sequence, good checksums */
static void fix_records(uint64_t jo, uint64_t seq, uint64_t used)
{
	const struct ufs_super *sb = (const struct ufs_super *)base_img;
	uint64_t area = sb->s_journal_blocks * UFS_BLOCK_SIZE - UFS_JOURNAL_REC_START, pos = 0;

	if (used > area)
		used = area;
	while (used - pos >= sizeof(struct ufs_journal_rec)) {
		uint8_t *p = work_img + jo + UFS_JOURNAL_REC_START + pos;
		struct ufs_journal_rec r;

		memcpy(&r, p, sizeof(r));
		if (!r.r_len || UFS_JOURNAL_REC_SIZE(r.r_len) > used - pos)
			return;
		r.r_seq = seq;
		r.r_crc = 0;
		r.r_crc = dx_crc32c(dx_crc32c(0, &r, sizeof(r)), p + sizeof(r), r.r_len);
		memcpy(p, &r, sizeof(r));
		pos += UFS_JOURNAL_REC_SIZE(r.r_len);
	}
}

/* an xattr block: x_checksum over the x_used bytes after the header */
static void fix_xattr(uint64_t off)
{
	struct ufs_xattr_hdr x;

	memcpy(&x, work_img + off, sizeof(x));
	if (x.x_used > UFS_BLOCK_SIZE - sizeof(x))
		return;
	x.x_checksum = dx_crc32c(0, work_img + off + sizeof(x), x.x_used);
	memcpy(work_img + off, &x, sizeof(x));
}

/*
 * fix_checksums() - recompute every checksum the patches may have broken
 * (superblocks, journal header and records, the inodes, extent nodes and
 * xattr blocks of the base image's regions), so inputs get past checksum
 * checks into the code behind them.  Records also get the header's
 * sequence: with both, a patch can make the mount roll back any bytes.
 */
static void fix_checksums(void)
{
	struct ufs_super sb;
	struct ufs_journal_head jh;
	uint64_t off, jo;

	memcpy(&sb, work_img, sizeof(sb));
	sb.s_checksum = ufs_super_csum(&sb);
	memcpy(work_img, &sb, sizeof(sb));
	memcpy(&sb, work_img + regions[6].start, sizeof(sb));
	sb.s_checksum = ufs_super_csum(&sb);
	memcpy(work_img + regions[6].start, &sb, sizeof(sb));
	jo = regions[1].start;
	memcpy(&jh, work_img + jo, sizeof(jh));
	jh.j_checksum = ufs_journal_head_csum(&jh);
	memcpy(work_img + jo, &jh, sizeof(jh));
	fix_records(jo, jh.j_seq, jh.j_used);
	for (off = regions[4].start; off < regions[4].start + regions[4].len; off += UFS_INODE_SIZE) {
		struct ufs_dinode di;

		memcpy(&di, work_img + off, sizeof(di));
		if (!di.i_mode)
			continue;
		di.i_checksum = ufs_inode_csum(&di);
		memcpy(work_img + off, &di, sizeof(di));
	}
	for (off = regions[5].start; off < regions[5].start + regions[5].len; off += UFS_BLOCK_SIZE) {
		struct ufs_extent_hdr h;

		memcpy(&h, work_img + off, sizeof(h));
		if (h.h_magic == UFS_XATTR_MAGIC) {
			fix_xattr(off);
			continue;
		}
		if (h.h_magic != UFS_EXT_MAGIC || h.h_depth > 8)
			continue;
		h.h_checksum = 0;
		memcpy(work_img + off, &h, sizeof(h));
		h.h_checksum = dx_crc32c(0, work_img + off, UFS_BLOCK_SIZE);
		memcpy(work_img + off, &h, sizeof(h));
	}
}

static void apply_patches(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	bool fix = false;

	memcpy(work_img, base_img, UDAX_FUZZ_IMAGE_SIZE);
	while (pos + 7 <= size) {
		uint8_t op = data[pos];
		uint32_t off = (uint32_t)data[pos + 1] | (uint32_t)data[pos + 2] << 8 |
			       (uint32_t)data[pos + 3] << 16 | (uint32_t)data[pos + 4] << 24;
		size_t len = (size_t)data[pos + 5] | (size_t)data[pos + 6] << 8;
		uint64_t at;

		pos += 7;
		if (len > size - pos)
			len = size - pos;
		fix |= (op & 0x80) != 0;
		if (op & 1) {
			at = off % UDAX_FUZZ_IMAGE_SIZE;
		} else {
			unsigned r = ((op & 0x7f) >> 1) % UDAX_FUZZ_NREGIONS;

			at = regions[r].start + off % regions[r].len;
		}
		if (len > UDAX_FUZZ_IMAGE_SIZE - at)
			len = UDAX_FUZZ_IMAGE_SIZE - at;
		memcpy(work_img + at, data + pos, len);
		pos += len;
	}
	if (fix)
		fix_checksums();
}

static int write_image(void)
{
	size_t done = 0;

	while (done < UDAX_FUZZ_IMAGE_SIZE) {
		ssize_t n = pwrite(work_fd, work_img + done, UDAX_FUZZ_IMAGE_SIZE - done, (off_t)done);

		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

struct fuzz_names {
	char names[64][UFS_NAME_MAX + 1];
	int n;
};

static int fill(void *arg, const char *name, const struct ufs_entry *e, uint64_t next_off)
{
	struct fuzz_names *fn = arg;

	if (fn->n >= 64)
		return 1;
	snprintf(fn->names[fn->n++], sizeof(fn->names[0]), "%s", name);
	return 0;
}

static void walk(struct ufs *fs, uint64_t dir, int depth, int *budget)
{
	struct fuzz_names *fn;
	int i;

	if (depth > 6 || *budget <= 0)
		return;
	fn = calloc(1, sizeof(*fn));
	if (!fn)
		return;
	if (ufs_readdir(fs, dir, 0, false, fill, fn) < 0)
		goto out;
	for (i = 0; i < fn->n && --*budget > 0; i++) {
		struct ufs_entry e;
		struct stat st;
		char buf[4096];

		if (!strcmp(fn->names[i], ".") || !strcmp(fn->names[i], ".."))
			continue;
		if (ufs_lookup(fs, dir, fn->names[i], &e) < 0)
			continue;
		ufs_getattr(fs, e.ino, &st);
		if (ufs_listxattr(fs, e.ino, buf, sizeof(buf)) > 0)
			ufs_getxattr(fs, e.ino, buf, buf + 2048, 2048);
		if (S_ISREG(e.st.st_mode) && ufs_open(fs, &fuzz_ctx, e.ino, O_RDONLY) == 0) {
			ufs_read(fs, e.ino, buf, sizeof(buf), 0);
			ufs_read(fs, e.ino, buf, sizeof(buf), 4096 * 7);
			ufs_lseek(fs, e.ino, 0, 3 /* SEEK_DATA */);
			ufs_release(fs, e.ino);
		} else if (S_ISLNK(e.st.st_mode)) {
			ufs_readlink(fs, e.ino, buf, sizeof(buf));
		} else if (S_ISDIR(e.st.st_mode)) {
			walk(fs, e.ino, depth + 1, budget);
		}
		ufs_forget(fs, e.ino, 1);
	}
out:
	free(fn);
}

static void exercise(struct ufs *fs)
{
	struct ufs_entry e;
	struct statvfs sv;
	static char buf[8192];
	int budget = 300;

	walk(fs, UFS_ROOT_INO, 0, &budget);
	ufs_statfs(fs, &sv);
	if (!mode_no_write &&
	    ufs_create(fs, &fuzz_ctx, UFS_ROOT_INO, "fuzz-new", 0644, O_RDWR | O_CREAT, &e) == 0) {
		memset(buf, 0x5a, sizeof(buf));
		ufs_write(fs, &fuzz_ctx, e.ino, buf, sizeof(buf), 0);
		ufs_setxattr(fs, &fuzz_ctx, e.ino, "user.fuzz", "v", 1, 0);
		ufs_release(fs, e.ino);
		ufs_unlink(fs, &fuzz_ctx, UFS_ROOT_INO, "fuzz-new");
		ufs_forget(fs, e.ino, 1);
	}
}

/*
 * check_untouched() - a refused mount must leave the image as it found it
 * (nothing before the mount writes: fsck ran read-only): any byte that
 * differs from the patched input is a finding.
 */
static void check_untouched(const char *what, int rc)
{
	static uint8_t now[UDAX_FUZZ_IMAGE_SIZE];
	size_t done = 0, i;

	while (done < UDAX_FUZZ_IMAGE_SIZE) {
		ssize_t n = pread(work_fd, now + done, UDAX_FUZZ_IMAGE_SIZE - done, (off_t)done);

		if (n <= 0)
			return;
		done += (size_t)n;
	}
	if (!memcmp(now, work_img, UDAX_FUZZ_IMAGE_SIZE))
		return;
	for (i = 0; now[i] == work_img[i]; i++)
		;
	fprintf(stderr, "fuzz: %s (%s: %s) changed the image at device offset %zu\n", what,
		strerror(-rc), dx_errmsg(), i);
	abort();
}

int udax_fuzz_one(const uint8_t *data, size_t size)
{
	struct dx_media_opts ro = { .path = work_path, .readonly = true };
	struct dx_media_opts rw = { .path = work_path };
	struct fsck_opts fo = { .repair = FSCK_REPAIR_NO, .quiet = true, .force = true };
	struct ufs_mount_opts mo = { .log = silent_log };
	struct dx_media *m = NULL;
	struct ufs *fs = NULL;
	int rc;

	apply_patches(data, size);
	if (write_image())
		return 0;
	/* 1. check, read-only */
	if (dx_media_open(&m, &ro) == 0) {
		udax_fsck_media(m, &fo, NULL);
		dx_media_close(&m);
	}
	/* 2. mount, use, unmount */
	if (!mode_fsck_only && dx_media_open(&m, &rw) == 0) {
		rc = ufs_mount(&fs, m, &mo);
		if (rc)
			check_untouched("a refused mount", rc);
		if (rc == 0) {
			exercise(fs);
			rc = ufs_unmount(&fs);
			/* no pin exists here: only -EUCLEAN (an unlinked inode could
			 * not be freed; the mount is freed all the same) is allowed;
			 * -EBUSY would leak the mount */
			if (strict_unmount && (fs || (rc && rc != -EUCLEAN))) {
				fprintf(stderr, "fuzz: ufs_unmount: %s: %s\n", strerror(-rc),
					dx_errmsg());
				abort();
			}
		}
		dx_media_close(&m);
	}
	/* 3. repair, then the repairs must converge */
	if (dx_media_open(&m, &rw) == 0) {
		fo.repair = FSCK_REPAIR_YES;
		rc = udax_fsck_media(m, &fo, NULL);
		fo.repair = FSCK_REPAIR_NO;
		if (!(rc & (FSCK_UNCORRECTED | FSCK_OPERATIONAL))) {
			int again = udax_fsck_media(m, &fo, NULL);

			if (again != 0) {
				fprintf(stderr, "fuzz: fsck -y returned %d but a second fsck -n "
					"returned %d:\n", rc, again);
				fo.quiet = false;
				fo.out = stderr;
				udax_fsck_media(m, &fo, NULL);
				abort();
			}
		}
		dx_media_close(&m);
	}
	return 0;
}

#ifdef UDAX_LIBFUZZER
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = getenv("UDAX_FUZZ_BASE");

	if (!base || udax_fuzz_init(base)) {
		fprintf(stderr, "fuzz: set UDAX_FUZZ_BASE to an image made by fuzz_mkbase\n");
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return udax_fuzz_one(data, size);
}
#endif
