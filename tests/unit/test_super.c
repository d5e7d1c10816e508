/* SPDX-License-Identifier: MIT */
/*
 * test_super: mkfs and superblock validation.  Round trip; corrupt primary
 * -> backup used and reported; both corrupt -> -EUCLEAN; newer version and
 * unknown incompat feature -> refused; truncated image -> refused; not
 * udaxfs -> refused; foreign signatures refused without force; and in
 * every failure nothing is written (file checksum before == after).
 * Also formats a 1 TiB sparse file and prints how long it took.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>

#include "core/super.h"
#include "test_helpers.h"

#define MIB (1024ULL * 1024)
#define BS 4096

static struct dx_media *open_media(const char *path, bool ro)
{
	struct dx_media_opts o = { .path = path, .readonly = ro };
	struct dx_media *m = NULL;
	int ret = dx_media_open(&m, &o);

	if (ret)
		fprintf(stderr, "open %s: %s\n", path, dx_errmsg());
	return m;
}

static void poke(const char *path, off_t off, const void *b, size_t n)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || pwrite(fd, b, n, off) != (ssize_t)n)
		perror("poke");
	close(fd);
}

/* load read-only and check the result and that nothing changed */
static int load_ro(const char *path, struct ufs_super *sb, bool *backup)
{
	uint32_t before = t_file_crc(path), after;
	struct dx_media *m = open_media(path, true);
	int ret;

	if (!m)
		return -999;
	ret = ufs_super_load(m, sb, backup);
	dx_media_close(&m);
	after = t_file_crc(path);
	CHECK_EQ(before, after);
	return ret;
}

static void check_round_trip(void)
{
	struct ufs_mkfs_opts mo = { .label = "label-test" };
	struct ufs_super sb, sb2;
	struct dx_media *m;
	char path[128];
	bool backup;
	uint64_t blocks = 64 * MIB / BS;
	uint8_t *bm;

	t_mkfile(path, sizeof(path), "sb", 64 * MIB);
	m = open_media(path, false);
	if (!m)
		return;
	CHECK_EQ(ufs_mkfs(m, &mo, &sb), 0);
	CHECK_EQ(sb.s_blocks_count, blocks);
	CHECK_EQ(sb.s_data_start % 512, 0);
	CHECK_EQ(sb.s_journal_blocks, 4 * MIB / BS);	/* default: 4 MiB minimum */
	CHECK_EQ(sb.s_inode_count, 64 * MIB / 16384);
	/* used bits: metadata and the backup block; first data block free */
	bm = (uint8_t *)dx_media_base(m) + sb.s_bbitmap_start * BS;
	CHECK(bm[0] & 1);
	CHECK(bm[(sb.s_data_start - 1) / 8] & (1u << ((sb.s_data_start - 1) % 8)));
	CHECK(!(bm[sb.s_data_start / 8] & (1u << (sb.s_data_start % 8))));
	CHECK(bm[(blocks - 1) / 8] & (1u << ((blocks - 1) % 8)));
	CHECK(!(bm[(blocks - 2) / 8] & (1u << ((blocks - 2) % 8))));
	bm = (uint8_t *)dx_media_base(m) + sb.s_ibitmap_start * BS;
	CHECK_EQ(bm[0] & 7, 3);		/* slot 0 and root used, 2 free */
	{
		struct ufs_dinode *root = (struct ufs_dinode *)((char *)dx_media_base(m) +
								ufs_inode_off(&sb, UFS_ROOT_INO));
		CHECK_EQ(root->i_mode, 040755);
		CHECK_EQ(root->i_nlink, 2);
		CHECK_EQ(root->i_checksum, ufs_inode_csum(root));
	}
	/* a second mkfs without force sees our own signature */
	CHECK_EQ(ufs_mkfs(m, &mo, NULL), -EEXIST);
	CHECK(strstr(dx_errmsg(), "udaxfs") != NULL);
	dx_media_close(&m);

	CHECK_EQ(load_ro(path, &sb2, &backup), 0);
	CHECK(!backup);
	CHECK(!memcmp(&sb, &sb2, sizeof(sb)));
	CHECK(!strcmp(sb2.s_label, "label-test"));

	/* corrupt the primary: the backup is used and the reason reported */
	poke(path, 100, "garbage", 7);
	CHECK_EQ(load_ro(path, &sb2, &backup), 0);
	CHECK(backup);
	CHECK(strstr(dx_errmsg(), "bad checksum") != NULL);
	CHECK(strstr(dx_errmsg(), "using the backup") != NULL);
	printf("  primary corrupt: %s\n", dx_errmsg());
	CHECK_EQ(sb2.s_blocks_count, blocks);

	/* both corrupt */
	poke(path, (off_t)((blocks - 1) * BS + 100), "garbage", 7);
	CHECK_EQ(load_ro(path, &sb2, &backup), -EUCLEAN);
	CHECK(strstr(dx_errmsg(), "offset 0") != NULL);
	printf("  both corrupt: %s\n", dx_errmsg());

	/* rewrite a good one with a newer version (valid checksum) */
	m = open_media(path, false);
	if (!m)
		return;
	sb2 = sb;
	sb2.s_version = 2;
	ufs_super_write(m, &sb2);
	dx_media_close(&m);
	CHECK_EQ(load_ro(path, &sb2, &backup), -EPROTONOSUPPORT);
	CHECK(strstr(dx_errmsg(), "newer") != NULL);
	printf("  newer: %s\n", dx_errmsg());

	m = open_media(path, false);
	sb2 = sb;
	sb2.s_feat_incompat = 0x80;
	ufs_super_write(m, &sb2);
	dx_media_close(&m);
	CHECK_EQ(load_ro(path, &sb2, &backup), -EPROTONOSUPPORT);

	/* a sound superblock with a bad geometry field: both copies say so */
	m = open_media(path, false);
	sb2 = sb;
	sb2.s_itable_blocks++;
	ufs_super_write(m, &sb2);
	dx_media_close(&m);
	CHECK_EQ(load_ro(path, &sb2, &backup), -EUCLEAN);
	CHECK(strstr(dx_errmsg(), "inode table") != NULL);

	/* truncated image */
	m = open_media(path, false);
	ufs_super_write(m, &sb);
	dx_media_close(&m);
	CHECK(truncate(path, 32 * MIB) == 0);
	CHECK_EQ(load_ro(path, &sb2, &backup), -EFBIG);
	CHECK(strstr(dx_errmsg(), "truncated") != NULL);
	printf("  truncated: %s\n", dx_errmsg());
	unlink(path);

	/* not udaxfs at all */
	t_mkfile(path, sizeof(path), "sb", 8 * MIB);
	CHECK_EQ(load_ro(path, &sb2, &backup), -EINVAL);
	CHECK(strstr(dx_errmsg(), "not a udaxfs") != NULL);
	unlink(path);
}

static void check_signatures(void)
{
	static const struct { off_t off; const char *sig; size_t len; const char *name; } sigs[] = {
		{ 0x438, "\x53\xef", 2, "ext2" },
		{ 0, "XFSB", 4, "xfs" },
		{ 0x10040, "_BHRfS_M", 8, "btrfs" },
		{ 4086, "SWAPSPACE2", 10, "swap" },
		{ 0, "PMEMOBJ", 8, "PMDK pool" },
		{ 0, "LUKS\xba\xbe", 6, "LUKS" },
	};
	struct ufs_mkfs_opts mo = { 0 };
	struct dx_media *m;
	char path[128];
	unsigned int i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		uint32_t crc;

		t_mkfile(path, sizeof(path), "sig", 8 * MIB);
		poke(path, sigs[i].off, sigs[i].sig, sigs[i].len);
		crc = t_file_crc(path);
		m = open_media(path, false);
		if (!m)
			continue;
		CHECK(ufs_probe_signature(m) && !strcmp(ufs_probe_signature(m), sigs[i].name));
		mo.force = false;
		CHECK_EQ(ufs_mkfs(m, &mo, NULL), -EEXIST);
		CHECK(strstr(dx_errmsg(), sigs[i].name) != NULL);
		dx_media_close(&m);
		CHECK_EQ(t_file_crc(path), crc);	/* refused: nothing written */
		m = open_media(path, false);
		mo.force = true;
		CHECK_EQ(ufs_mkfs(m, &mo, NULL), 0);
		CHECK(ufs_probe_signature(m) && !strcmp(ufs_probe_signature(m), "udaxfs"));
		dx_media_close(&m);
		unlink(path);
	}
	/* the smallest device formats; data start is still 2 MiB aligned */
	t_mkfile(path, sizeof(path), "min", 4 * MIB);
	m = open_media(path, false);
	if (m) {
		struct ufs_super sb;

		CHECK_EQ(ufs_mkfs(m, NULL, &sb), 0);
		CHECK_EQ(sb.s_data_start, 512);
		printf("  4 MiB device: journal %" PRIu64 " blocks, %" PRIu64 " inodes, data %"
		       PRIu64 "..%" PRIu64 "\n", sb.s_journal_blocks, sb.s_inode_count,
		       sb.s_data_start, sb.s_blocks_count - 2);
		dx_media_close(&m);
	}
	unlink(path);
}

/*
 * Random field corruption with a recomputed checksum, so that every field
 * check is reached: load never crashes, returns one of its documented
 * codes, and a superblock it accepts has its regions inside the device.
 */
static void check_fuzz_fields(void)
{
	struct ufs_super good, bad, out;
	struct dx_media *m;
	char path[128];
	unsigned int seed = 12345, i, accepted = 0;
	uint64_t size = 16 * MIB;
	bool backup;

	t_mkfile(path, sizeof(path), "fuzz", size);
	m = open_media(path, false);
	if (!m)
		return;
	CHECK_EQ(ufs_mkfs(m, NULL, &good), 0);
	for (i = 0; i < 20000; i++) {
		unsigned int k, n = 1 + rand_r(&seed) % 4;
		int ret;

		bad = good;
		for (k = 0; k < n; k++) {
			size_t at = (size_t)rand_r(&seed) % offsetof(struct ufs_super, s_checksum);

			((uint8_t *)&bad)[at] = (uint8_t)rand_r(&seed);
		}
		if (rand_r(&seed) % 8)
			bad.s_checksum = ufs_super_csum(&bad);
		memcpy(dx_media_base(m), &bad, sizeof(bad));
		if (rand_r(&seed) % 2)
			memcpy((char *)dx_media_base(m) + size - BS, &bad, sizeof(bad));
		else
			memcpy((char *)dx_media_base(m) + size - BS, &good, sizeof(good));
		ret = ufs_super_load(m, &out, &backup);
		CHECK(ret == 0 || ret == -EINVAL || ret == -EUCLEAN || ret == -EPROTONOSUPPORT ||
		      ret == -EFBIG);
		if (ret == 0) {
			accepted++;
			CHECK(out.s_blocks_count * BS <= size);
			CHECK(out.s_data_start < out.s_blocks_count - 1);
			CHECK((out.s_itable_start + out.s_itable_blocks) <= out.s_data_start);
			CHECK(out.s_orphan_head < out.s_inode_count);
		}
	}
	printf("  fuzzed superblock fields: 20000 tries, %u accepted (harmless fields or backup)\n",
	       accepted);
	dx_media_close(&m);
	unlink(path);
}

/*
 * The metadata regions must follow the journal and each other, each as
 * long as the counts make it: a superblock one block off in any of them is
 * refused, and the reason names that region.  The unchanged superblock is
 * accepted (the control: the refusals come from the change alone).
 */
static void check_regions(void)
{
	struct ufs_super good, bad;
	struct dx_media *m;
	char path[128], why[256];
	uint64_t size = 16 * MIB;
	static const char *const names[] = { "inode bitmap", "block bitmap", "inode table" };
	unsigned int r, f;

	t_mkfile(path, sizeof(path), "regions", size);
	m = open_media(path, false);
	if (!m)
		return;
	CHECK_EQ(ufs_mkfs(m, NULL, &good), 0);
	CHECK_EQ(ufs_super_check(&good, 0, size, why, sizeof(why)), 0);
	for (r = 0; r < 3; r++) {
		for (f = 0; f < 2; f++) {
			uint64_t *fields[3][2] = {
				{ &bad.s_ibitmap_start, &bad.s_ibitmap_blocks },
				{ &bad.s_bbitmap_start, &bad.s_bbitmap_blocks },
				{ &bad.s_itable_start, &bad.s_itable_blocks },
			};

			bad = good;
			(*fields[r][f])++;
			bad.s_checksum = ufs_super_csum(&bad);
			why[0] = 0;
			CHECK_EQ(ufs_super_check(&bad, 0, size, why, sizeof(why)), -EUCLEAN);
			CHECK(strstr(why, names[r]) != NULL);
			if (!strstr(why, names[r]))
				printf("  region %s, field %u: refused as \"%s\"\n", names[r], f, why);
		}
	}
	dx_media_close(&m);
	unlink(path);
}

/* mkfs in crash mode: the saved durable image is a valid file system */
static void check_mkfs_crash_mode(void)
{
	struct dx_media_opts o = { .crash_emul = true };
	struct ufs_mkfs_opts mo = { .force = true, .label = "crash" };
	struct dx_media *m;
	struct ufs_super sb, sb2;
	char path[128], img[160];
	bool backup;

	t_mkfile(path, sizeof(path), "crashmk", 16 * MIB);
	snprintf(img, sizeof(img), "%s.img", path);
	m = open_media(path, false);
	if (!m)
		return;
	CHECK_EQ(ufs_mkfs(m, NULL, &sb), 0);	/* an old file system underneath */
	dx_media_close(&m);
	o.path = path;
	CHECK_EQ(dx_media_open(&m, &o), 0);
	if (!m)
		return;
	CHECK_EQ(ufs_mkfs(m, &mo, &sb), 0);
	CHECK_EQ(dx_media_crash_save(m, img), 0);
	dx_media_close(&m);
	CHECK_EQ(load_ro(img, &sb2, &backup), 0);
	CHECK(!strcmp(sb2.s_label, "crash"));
	CHECK(!memcmp(sb.s_uuid, sb2.s_uuid, 16));
	unlink(img);
	unlink(path);
}

static void check_mkfs_1tib(void)
{
	struct ufs_super sb, sb2;
	struct dx_media *m;
	struct stat st;
	char path[128];
	uint64_t t0, t1;
	bool backup;

	t_mkfile(path, sizeof(path), "tib", 1024ULL * 1024 * MIB);
	t0 = dx_now_ns();
	m = open_media(path, false);
	if (!m) {
		unlink(path);
		return;
	}
	CHECK_EQ(ufs_mkfs(m, NULL, &sb), 0);
	dx_media_close(&m);
	t1 = dx_now_ns();
	CHECK(stat(path, &st) == 0);
	printf("  mkfs of a 1 TiB sparse file: %.3f s, %lld KiB allocated, journal %" PRIu64
	       " MiB, %" PRIu64 " inodes, data start block %" PRIu64 "\n",
	       (t1 - t0) / 1e9, (long long)st.st_blocks / 2,
	       (uint64_t)(sb.s_journal_blocks * BS / MIB), sb.s_inode_count, sb.s_data_start);
	/* bitmaps are mostly holes: well under the 40 MiB they span */
	CHECK(st.st_blocks / 2 < 4096);
	CHECK_EQ(sb.s_journal_blocks * BS, 64 * MIB);
	m = open_media(path, true);	/* (no file checksum: 1 TiB to read) */
	if (m) {
		CHECK_EQ(ufs_super_load(m, &sb2, &backup), 0);
		CHECK(!backup);
		dx_media_close(&m);
	}
	unlink(path);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	check_round_trip();
	check_signatures();
	check_mkfs_crash_mode();
	check_fuzz_fields();
	check_regions();
	check_mkfs_1tib();
	return t_exit("test_super");
}
