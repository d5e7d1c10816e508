/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mkbase.c - make the fuzz base image and a seed corpus.
 *
 * Usage: fuzz_mkbase BASE_IMAGE SEED_DIR
 *
 * The base image is a 4 MiB file system with something in every structure
 * the fuzzer should reach: directories over several blocks, a file with a
 * deep (indexed) extent tree, an inline and a block symlink, xattrs, a hard
 * link, a FIFO.  Seeds (patch lists, see fuzz_image.h) are:
 *   - the empty patch (the base itself);
 *   - crash states: a short workload runs on the base in crash mode, the
 *     durable image at a spread of fences is diffed against the base
 *     (unfinished transactions, orphans);
 *   - one targeted corruption of each structure.
 * Nothing binary is committed: make check regenerates all of this.
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
#include "fuzz_image.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../crash/image_util.h"
#include "../harness.h"

static const struct ufs_ctx ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

static uint64_t mkfile(struct ufs *fs, uint64_t dir, const char *name, size_t len, int stride)
{
	struct ufs_entry e;
	static char buf[4096];
	size_t i;

	REQUIRE_OK(ufs_create(fs, &ctx, dir, name, 0644, O_RDWR | O_CREAT, &e));
	memset(buf, name[0], sizeof(buf));
	for (i = 0; i * 4096 < len; i++)
		REQUIRE_OK(ufs_write(fs, &ctx, e.ino, buf, dx_min(sizeof(buf), len - i * 4096),
				(uint64_t)i * 4096 * stride));
	ufs_release(fs, e.ino);
	ufs_forget(fs, e.ino, 1);
	return e.ino;
}

static void populate(struct ufs *fs)
{
	struct ufs_entry d, sub, e;
	char name[256], target[300];
	int i;

	REQUIRE_OK(ufs_mkdir(fs, &ctx, UFS_ROOT_INO, "dir", 0755, &d));
	REQUIRE_OK(ufs_mkdir(fs, &ctx, d.ino, "sub", 0700, &sub));
	mkfile(fs, d.ino, "file1", 5000, 1);
	/* 24 separate extents: more than the inode holds, so an indexed tree */
	mkfile(fs, UFS_ROOT_INO, "big", 24 * 4096, 2);
	REQUIRE_OK(ufs_symlink(fs, &ctx, UFS_ROOT_INO, "lnk", "dir/file1", &e));
	ufs_forget(fs, e.ino, 1);
	memset(target, 't', 200);
	target[200] = '\0';
	REQUIRE_OK(ufs_symlink(fs, &ctx, UFS_ROOT_INO, "longlnk", target, &e));
	ufs_forget(fs, e.ino, 1);
	REQUIRE_OK(ufs_lookup(fs, d.ino, "file1", &e));
	REQUIRE_OK(ufs_setxattr(fs, &ctx, e.ino, "user.a", "hello", 5, 0));
	REQUIRE_OK(ufs_setxattr(fs, &ctx, e.ino, "trusted.b", "world!", 6, 0));
	REQUIRE_OK(ufs_link(fs, &ctx, e.ino, UFS_ROOT_INO, "hard", &e));
	ufs_forget(fs, e.ino, 2);
	REQUIRE_OK(ufs_mknod(fs, &ctx, sub.ino, "fifo", S_IFIFO | 0600, 0, &e));
	ufs_forget(fs, e.ino, 1);
	/* long names: the directory needs several blocks */
	for (i = 0; i < 40; i++) {
		memset(name, 'a' + i % 26, 180);
		snprintf(name + 180, sizeof(name) - 180, "-%d", i);
		mkfile(fs, sub.ino, name, i % 3 ? 0 : 100, 1);
	}
	ufs_forget(fs, sub.ino, 1);
	ufs_forget(fs, d.ino, 1);
}

static void write_seed(const char *dir, const char *name, const void *p, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len)
		t_die("%s: %s", path, strerror(errno));
	fclose(f);
}

/* One patch at an absolute offset. */
static size_t put_patch(uint8_t *out, uint64_t off, const void *bytes, uint16_t len)
{
	out[0] = 1;
	out[1] = (uint8_t)off;
	out[2] = (uint8_t)(off >> 8);
	out[3] = (uint8_t)(off >> 16);
	out[4] = (uint8_t)(off >> 24);
	out[5] = (uint8_t)len;
	out[6] = (uint8_t)(len >> 8);
	memcpy(out + 7, bytes, len);
	return 7u + len;
}

/* Diff @img against @base into a patch list.  Return: its length. */
static size_t diff(const uint8_t *base, const uint8_t *img, uint8_t *out, size_t cap)
{
	size_t pos = 0, i = 0, n = UDAX_FUZZ_IMAGE_SIZE;

	while (i < n) {
		size_t j, last;

		if (base[i] == img[i]) {
			i++;
			continue;
		}
		/* extend while differences are at most 16 bytes apart */
		for (j = i, last = i; j < n && j - i < 4096 && j - last <= 16; j++)
			if (base[j] != img[j])
				last = j;
		if (pos + 7 + (last + 1 - i) > cap)
			break;
		pos += put_patch(out + pos, i, img + i, (uint16_t)(last + 1 - i));
		i = last + 1;
	}
	return pos;
}

static uint8_t *load(const char *path)
{
	return img_load(path, UDAX_FUZZ_IMAGE_SIZE);
}

/* A short workload; returns the fences it took. */
static uint64_t crash_workload(const char *base, uint64_t trigger, const char *out)
{
	struct dx_media_opts mo = { .path = base, .crash_emul = true };
	struct dx_media *m = NULL;
	struct ufs_mount_opts o = { 0 };
	struct ufs *fs = NULL;
	struct ufs_entry e, d;
	struct ufs_setattr sa = { .valid = UFS_SET_SIZE, .size = 3 };
	struct stat st;
	uint64_t n;

	REQUIRE_OK(dx_media_open(&m, &mo));
	if (trigger)
		REQUIRE_OK(dx_media_crash_set_trigger(m, trigger, out));
	REQUIRE_OK(ufs_mount(&fs, m, &o));
	REQUIRE_OK(ufs_lookup(fs, UFS_ROOT_INO, "dir", &d));
	REQUIRE_OK(ufs_rename(fs, &ctx, d.ino, "file1", UFS_ROOT_INO, "moved", 0));
	mkfile(fs, UFS_ROOT_INO, "new", 9000, 1);
	REQUIRE_OK(ufs_lookup(fs, UFS_ROOT_INO, "big", &e));
	REQUIRE_OK(ufs_open(fs, &ctx, e.ino, O_RDWR));
	REQUIRE_OK(ufs_unlink(fs, &ctx, UFS_ROOT_INO, "big"));	/* an orphan while open */
	REQUIRE_OK(ufs_lookup(fs, UFS_ROOT_INO, "new", &d));
	REQUIRE_OK(ufs_setattr(fs, &ctx, d.ino, &sa, &st));
	ufs_forget(fs, d.ino, 1);
	REQUIRE_OK(ufs_mkdir(fs, &ctx, UFS_ROOT_INO, "nd", 0755, &d));
	ufs_forget(fs, d.ino, 1);
	n = dx_media_crash_fences(m);
	ufs_release(fs, e.ino);
	ufs_forget(fs, e.ino, 1);
	ufs_forget(fs, d.ino, 0);
	ufs_unmount(&fs);
	dx_media_close(&m);
	return n;
}

int main(int argc, char **argv)
{
	struct dx_media_opts mo = { 0 };
	struct ufs_mkfs_opts mk = { .force = true, .label = "fuzz" };
	struct ufs_mount_opts o = { 0 };
	struct dx_media *m = NULL;
	struct ufs *fs = NULL;
	struct ufs_super sb;
	uint8_t *base, *img, *out;
	char crash_path[1100], name[64];
	uint64_t fences, i;
	size_t len;
	int fd, k;

	if (argc != 3) {
		fprintf(stderr, "Usage: fuzz_mkbase BASE_IMAGE SEED_DIR\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, UDAX_FUZZ_IMAGE_SIZE) < 0) {
		fprintf(stderr, "fuzz_mkbase: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(fd);
	mkdir(argv[2], 0755);
	mo.path = argv[1];
	REQUIRE_OK(dx_media_open(&m, &mo));
	REQUIRE_OK(ufs_mkfs(m, &mk, &sb));
	REQUIRE_OK(ufs_mount(&fs, m, &o));
	populate(fs);
	REQUIRE_OK(ufs_unmount(&fs));
	dx_media_close(&m);

	base = load(argv[1]);
	out = malloc(1 << 20);
	write_seed(argv[2], "base", "", 0);

	/* crash states */
	snprintf(crash_path, sizeof(crash_path), "%s/.crash.img", argv[2]);
	fences = crash_workload(argv[1], 0, NULL);
	for (k = 1; k <= 12; k++) {
		uint64_t n = 1 + fences * (uint64_t)k / 13;

		unlink(crash_path);
		crash_workload(argv[1], n, crash_path);
		if (access(crash_path, F_OK))
			continue;
		img = load(crash_path);
		len = diff(base, img, out, 1 << 20);
		snprintf(name, sizeof(name), "crash-%02d", k);
		write_seed(argv[2], name, out, len);
		free(img);
	}
	unlink(crash_path);

	/* one corruption per structure */
	{
		static const struct {
			const char *name;
			uint64_t off;
		} spots[] = {
			{ "sb-csum", offsetof(struct ufs_super, s_checksum) },
			{ "sb-geom", offsetof(struct ufs_super, s_itable_start) },
			{ "sb-orphan", offsetof(struct ufs_super, s_orphan_head) },
			{ "journal-used", 8 },
			{ "ibitmap", 0 },
			{ "bbitmap", 64 },
			{ "root-inode", UFS_INODE_SIZE },
			{ "inode-extents", 2 * UFS_INODE_SIZE + 120 },
			{ "inode-nlink", 3 * UFS_INODE_SIZE + 12 },
			{ "dirblock", 16 },
		};
		uint64_t region[] = { 0, 0, 0, sb.s_journal_start, sb.s_ibitmap_start,
				      sb.s_bbitmap_start, sb.s_itable_start, sb.s_itable_start,
				      sb.s_itable_start, sb.s_data_start };
		uint8_t junk[8] = { 0x01, 0xff, 0x00, 0x80, 0x7f, 0x10, 0x00, 0x02 };

		for (i = 0; i < UDAX_ARRAY_SIZE(spots); i++) {
			uint64_t off = region[i] * UFS_BLOCK_SIZE + spots[i].off;

			len = put_patch(out, off, junk, i % 2 ? 8 : 2);
			snprintf(name, sizeof(name), "corrupt-%s", spots[i].name);
			write_seed(argv[2], name, out, len);
			/* the same with checksums recomputed: past the checksum checks */
			out[0] |= 0x80;
			snprintf(name, sizeof(name), "corrupt-%s-csum", spots[i].name);
			write_seed(argv[2], name, out, len);
		}
	}
	printf("fuzz_mkbase: base image %s, seeds in %s (%" PRIu64 " fences in the crash workload)\n",
	       argv[1], argv[2], fences);
	free(base);
	free(out);
	return 0;
}
