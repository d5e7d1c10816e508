/* SPDX-License-Identifier: MIT */
/*
 * test_journal: undo-log transactions.  Commit keeps new bytes; abort
 * restores old ones; ranges logged twice cost nothing; a log overflow is
 * -ENOSPC; a crash at EVERY fence of a transaction (crash backend) leaves,
 * after recovery, either all old or all new bytes; a corrupt record is
 * reported (-EUCLEAN, offset named) and nothing is written.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>

#include "core/journal.h"
#include "core/super.h"
#include "test_helpers.h"

#define MIB (1024ULL * 1024)
#define BS 4096

static char base[128];
static struct ufs_super sb;

struct fsh {
	struct dx_media *m;
	struct ufs_journal *j;
};

static int fs_open(struct fsh *f, const char *path, bool crash, bool ro)
{
	struct dx_media_opts o = { .path = path, .crash_emul = crash, .readonly = ro };
	bool backup;
	int ret;

	memset(f, 0, sizeof(*f));
	ret = dx_media_open(&f->m, &o);
	if (!ret)
		ret = ufs_super_load(f->m, &sb, &backup);
	if (!ret)
		ret = ufs_journal_open(&f->j, f->m, &sb);
	if (ret)
		fprintf(stderr, "fs_open %s: %d %s\n", path, ret, dx_errmsg());
	return ret;
}

static void fs_close(struct fsh *f)
{
	ufs_journal_close(&f->j);
	dx_media_close(&f->m);
}

static char *blk(struct fsh *f, uint64_t b)
{
	return dx_media_ptr(f->m, b * BS);
}

static void check_commit_abort(void)
{
	struct fsh f;
	struct ufs_tx *tx;
	size_t room;
	char *p;

	if (fs_open(&f, base, false, false))
		return;
	CHECK(!ufs_journal_dirty(f.j));
	CHECK_EQ(ufs_journal_recover(f.j, false), 0);
	p = blk(&f, sb.s_data_start);
	memset(p, 'a', 256);

	tx = ufs_tx_begin(f.j);
	room = ufs_tx_room(tx);
	CHECK_EQ(ufs_tx_add(tx, p, 100), 0);
	CHECK(ufs_journal_dirty(f.j));
	CHECK_EQ(ufs_tx_room(tx), room - 24 - 104);
	CHECK_EQ(ufs_tx_add(tx, p + 10, 50), 0);	/* inside: nothing more */
	CHECK_EQ(ufs_tx_room(tx), room - 24 - 104);
	CHECK_EQ(ufs_tx_add(tx, p + 50, 100), 0);	/* logs only [100, 150) */
	CHECK_EQ(ufs_tx_room(tx), room - 2 * 24 - 104 - 56);
	CHECK_EQ(ufs_tx_add(tx, p, 150), 0);
	CHECK_EQ(ufs_tx_room(tx), room - 2 * 24 - 104 - 56);
	memset(p, 'b', 150);
	ufs_tx_commit(tx);
	CHECK(!ufs_journal_dirty(f.j));
	CHECK(p[0] == 'b' && p[149] == 'b' && p[150] == 'a');

	tx = ufs_tx_begin(f.j);
	CHECK_EQ(ufs_tx_add(tx, p + 200, 8), 0);
	CHECK_EQ(ufs_tx_add(tx, p, 8), 0);
	CHECK_EQ(ufs_tx_add(tx, p + 4, 200), 0);	/* spans both and the gap */
	memset(p, 'c', 204);
	ufs_tx_abort(tx);
	CHECK(!ufs_journal_dirty(f.j));
	CHECK(p[0] == 'b' && p[149] == 'b' && p[150] == 'a' && p[255] == 'a');

	/* overflow: -ENOSPC, the caller aborts and nothing changed */
	tx = ufs_tx_begin(f.j);
	CHECK_EQ(ufs_tx_add(tx, blk(&f, sb.s_data_start + 1), sb.s_journal_blocks * BS), -ENOSPC);
	CHECK_EQ(ufs_tx_add(tx, blk(&f, sb.s_journal_start), 8), -EINVAL);	/* the log itself */
	ufs_tx_abort(tx);
	tx = ufs_tx_begin(f.j);
	ufs_tx_commit(tx);		/* empty transaction */
	CHECK_EQ(ufs_journal_commits(f.j), 4);
	fs_close(&f);
}

/* One transaction over three ranges; save the durable image at fence @k. */
static uint64_t run_tx(const char *img, uint64_t k)
{
	struct fsh f;
	struct ufs_tx *tx;
	uint64_t fences;
	char *p, *q;

	if (fs_open(&f, base, true, false))
		return 0;
	if (k)
		dx_media_crash_set_trigger(f.m, k, img);
	p = blk(&f, sb.s_data_start);
	q = blk(&f, sb.s_data_start + 7);
	tx = ufs_tx_begin(f.j);
	CHECK_EQ(ufs_tx_add(tx, p, 150), 0);
	memset(p, 'N', 150);
	dx_media_persist(f.m, p, 150);	/* worst case: new bytes reach media early */
	CHECK_EQ(ufs_tx_add(tx, q, 4096), 0);
	memset(q, 'N', 4096);
	/* a superblock field too */
	CHECK_EQ(ufs_tx_add(tx, &((struct ufs_super *)dx_media_base(f.m))->s_mount_count, 8), 0);
	((struct ufs_super *)dx_media_base(f.m))->s_mount_count = 77;
	ufs_tx_commit(tx);
	fences = dx_media_crash_fences(f.m);
	fs_close(&f);
	return fences;
}

static void check_crash_every_fence(void)
{
	char img[160];
	uint64_t n, k, rolled = 0, kept = 0;

	snprintf(img, sizeof(img), "%s.crash", base);
	n = run_tx(NULL, 0);
	CHECK(n >= 6);
	for (k = 1; k <= n; k++) {
		struct fsh f;
		int r;
		char *p, *q;
		uint64_t i, nn = 0, oo = 0;

		unlink(img);
		run_tx(img, k);
		if (fs_open(&f, img, false, false))
			continue;
		r = ufs_journal_recover(f.j, false);
		CHECK(r >= 0);
		CHECK(!ufs_journal_dirty(f.j));
		if (r > 0)
			rolled++;
		p = blk(&f, sb.s_data_start);
		q = blk(&f, sb.s_data_start + 7);
		for (i = 0; i < 150; i++)
			p[i] == 'N' ? nn++ : oo++;
		for (i = 0; i < 4096; i++)
			q[i] == 'N' ? nn++ : oo++;
		if (((struct ufs_super *)dx_media_base(f.m))->s_mount_count == 77)
			nn++;
		else
			oo++;
		/* atomic: all new or all old */
		if (!(nn == 0 || oo == 0)) printf("  fence %" PRIu64 ": %" PRIu64 " new, %" PRIu64 " old bytes, recover %d\n", k, nn, oo, r);
		CHECK(nn == 0 || oo == 0);
		if (oo == 0)
			kept++;
		fs_close(&f);
	}
	printf("  crash states checked: %" PRIu64 " (rolled back %" PRIu64 ", committed %" PRIu64 ")\n",
	       n, rolled, kept);
	CHECK(rolled > 0);
	CHECK(kept > 0);
	unlink(img);
}

static void check_corrupt_record(void)
{
	char img[160];
	struct fsh f;
	uint32_t crc;
	int fd;

	snprintf(img, sizeof(img), "%s.corrupt", base);
	run_tx(img, 5);		/* mid-transaction: the log holds records */
	if (fs_open(&f, img, false, true))
		return;
	CHECK(ufs_journal_dirty(f.j));
	CHECK(ufs_journal_recover(f.j, true) > 0);	/* dry run on a read-only device */
	CHECK_EQ(ufs_journal_recover(f.j, false), -EROFS);
	fs_close(&f);
	/* flip one byte of the first record's saved bytes */
	fd = open(img, O_RDWR);
	{
		char c;
		off_t off = (off_t)(sb.s_journal_start * BS + UFS_JOURNAL_REC_START + 24 + 3);

		CHECK(pread(fd, &c, 1, off) == 1);
		c ^= 0x40;
		CHECK(pwrite(fd, &c, 1, off) == 1);
	}
	close(fd);
	crc = t_file_crc(img);
	if (fs_open(&f, img, false, false))
		return;
	CHECK_EQ(ufs_journal_recover(f.j, false), -EUCLEAN);
	CHECK(strstr(dx_errmsg(), "journal record at offset") != NULL);
	printf("  corrupt record: %s\n", dx_errmsg());
	fs_close(&f);
	CHECK_EQ(t_file_crc(img), crc);
	unlink(img);
}

/* A record length near 2^32: its padded size once wrapped to 24 bytes
 * in 32-bit arithmetic, so the length check let it through (to be
 * stopped only by the range check, which a large enough device passes). */
static void check_huge_record_len(void)
{
	char img[160];
	struct fsh f;
	uint32_t len = UINT32_MAX - 2, crc;
	int fd;

	snprintf(img, sizeof(img), "%s.hugelen", base);
	run_tx(img, 5);
	fd = open(img, O_RDWR);
	CHECK(pwrite(fd, &len, 4, (off_t)(sb.s_journal_start * BS + UFS_JOURNAL_REC_START +
					  offsetof(struct ufs_journal_rec, r_len))) == 4);
	close(fd);
	crc = t_file_crc(img);
	if (fs_open(&f, img, false, false))
		return;
	CHECK_EQ(ufs_journal_recover(f.j, false), -EUCLEAN);
	CHECK(strstr(dx_errmsg(), "length runs past the end of the log") != NULL);
	printf("  huge record length: %s\n", dx_errmsg());
	fs_close(&f);
	CHECK_EQ(t_file_crc(img), crc);
	unlink(img);
}

/* Random corruption of a dirty log: open/recover never crash and either
 * refuse (-EUCLEAN) or roll back; a refused log is left as it was. */
static void check_fuzz_log(void)
{
	char img[160];
	struct fsh f;
	unsigned int seed = 777, i, refused = 0, rolled = 0;
	uint64_t used, span;
	char *saved, *jr;
	size_t jlen;

	snprintf(img, sizeof(img), "%s.fuzz", base);
	run_tx(img, 7);
	if (fs_open(&f, img, false, false))
		return;
	jr = dx_media_ptr(f.m, sb.s_journal_start * BS);
	used = ((struct ufs_journal_head *)jr)->j_used;
	CHECK(used > 0);
	ufs_journal_close(&f.j);
	jlen = (size_t)(UFS_JOURNAL_REC_START + used);
	span = jlen;
	saved = malloc(jlen);
	memcpy(saved, jr, jlen);
	for (i = 0; i < 3000; i++) {
		unsigned int k, n = 1 + rand_r(&seed) % 3;
		int r;

		memcpy(jr, saved, jlen);
		for (k = 0; k < n; k++)
			jr[rand_r(&seed) % span] ^= (char)(1 + rand_r(&seed) % 255);
		r = ufs_journal_open(&f.j, f.m, &sb);
		CHECK(r == 0 || r == -EUCLEAN);
		if (r)
			continue;
		r = ufs_journal_recover(f.j, true);
		CHECK(r >= 0 || r == -EUCLEAN);
		if (r == -EUCLEAN)
			refused++;
		else
			rolled++;
		ufs_journal_close(&f.j);
	}
	printf("  fuzzed log: 3000 tries, %u refused, %u would roll back\n", refused, rolled);
	free(saved);
	fs_close(&f);
	unlink(img);
}

int main(void)
{
	struct dx_media_opts o = { 0 };
	struct dx_media *m = NULL;

	setvbuf(stdout, NULL, _IONBF, 0);
	t_mkfile(base, sizeof(base), "jrnl", 16 * MIB);
	o.path = base;
	if (dx_media_open(&m, &o) || ufs_mkfs(m, NULL, &sb)) {
		fprintf(stderr, "setup: %s\n", dx_errmsg());
		return 99;
	}
	dx_media_close(&m);
	check_commit_abort();
	check_crash_every_fence();
	check_corrupt_record();
	check_huge_record_len();
	check_fuzz_log();
	unlink(base);
	return t_exit("test_journal");
}
