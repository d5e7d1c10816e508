// SPDX-License-Identifier: MIT
/*
 * test_ufs_fsx - an fsx-like random operation loop against an in-memory
 * model: write, read, truncate, punch hole, zero range, collapse range,
 * insert range, fallocate, copy_file_range, with remounts in between.  A
 * second file is written in between so extents fragment and the extent
 * tree grows index levels.  Seeded (argv[1] or UDAX_FSX_SEED), a few
 * thousand ops; on a mismatch it prints the op log tail, the seed and the
 * tree.  UDAX_FSX_CHECK=1 checks the tree after every op; UDAX_FSX_SMALL=1
 * keeps ops small so the file fragments into many more extents.
 */
#include "test_ufs.h"

#include <linux/falloc.h>

#include "core/ufs_int.h"

#define MiB (1024ull * 1024)
#define MAXSZ (6 * MiB)
#define NOPS 4000
#define LOGN 16

static struct t_fs T;
static char *model, *rbuf, *wbuf;
static uint64_t msize, ino, other;
static uint64_t rng;
static char oplog[LOGN][96];
static unsigned int nlog;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void logop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logop(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(oplog[nlog++ % LOGN], sizeof(oplog[0]), fmt, ap);
	va_end(ap);
}

static void dump_log(void)
{
	unsigned int i, start = nlog > LOGN ? nlog - LOGN : 0;

	for (i = start; i < nlog; i++)
		fprintf(stderr, "  op %u: %s\n", i, oplog[i % LOGN]);
}

static int verify(uint64_t off, uint64_t len, const char *why)
{
	ssize_t n;
	uint64_t i;
	struct stat st;

	CHECK_EQ(ufs_getattr(T.fs, ino, &st), 0);
	if ((uint64_t)st.st_size != msize) {
		fprintf(stderr, "%s: size %llu, model %llu\n", why,
			(unsigned long long)st.st_size, (unsigned long long)msize);
		return -1;
	}
	if (off >= msize)
		return 0;
	len = dx_min(len, msize - off);
	n = ufs_read(T.fs, ino, rbuf, len, off);
	if (n != (ssize_t)len) {
		fprintf(stderr, "%s: read %zd of %llu at %llu\n", why, n,
			(unsigned long long)len, (unsigned long long)off);
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (rbuf[i] != model[off + i]) {
			fprintf(stderr, "%s: byte %llu is 0x%02x, model 0x%02x\n", why,
				(unsigned long long)(off + i), (unsigned char)rbuf[i],
				(unsigned char)model[off + i]);
			return -1;
		}
	}
	return 0;
}

static int check_tree(void)
{
	struct ufs_inode *ip;
	uint64_t n = 0;
	int rc = ufs_iget(T.fs, ino, &ip);

	if (rc)
		return rc;
	rc = ufs_ext_check(ip, &n);
	ufs_iput(ip);
	return rc;
}

static void run(uint64_t seed, bool small)
{
	struct ufs_entry e;
	unsigned int op, counts[10] = { 0 };
	uint64_t max_ext = 0;
	int bad = 0;

	rng = seed ? seed : 1;
	msize = 0;
	nlog = 0;
	model = calloc(1, 2 * MAXSZ);
	rbuf = malloc(2 * MAXSZ);
	wbuf = malloc(MAXSZ);
	REQUIRE(model && rbuf && wbuf);
	t_setup(&T, "fsx", 256 * MiB);
	REQUIRE(ufs_create(T.fs, &T.c, UFS_ROOT_INO, "fsx", 0644, O_RDWR, &e) == 0);
	ino = e.ino;
	REQUIRE(ufs_create(T.fs, &T.c, UFS_ROOT_INO, "other", 0644, O_RDWR, &e) == 0);
	other = e.ino;
	printf("test_ufs_fsx: seed %llu, %d %s ops\n", (unsigned long long)seed, NOPS,
	       small ? "small" : "mixed");

	for (op = 0; op < NOPS && !bad; op++) {
		unsigned int kind = (unsigned int)rnd_below(10);
		uint64_t off = rnd_below(MAXSZ), len = 1 + rnd_below(rnd_below(4) ? 64 * 1024 : MAXSZ / 4);
		uint64_t i;
		int rc;

		if (small && (kind == 3 || kind == 6) && rnd_below(20))
			kind = 0;	/* keep the file big and fragmented */
		if (small && kind != 6 && kind != 7)
			len = 1 + len % 8192;	/* many small extents: a deeper tree */
		if (off + len > MAXSZ)
			len = MAXSZ - off;
		if (!len)
			len = 1;
		switch (kind) {
		case 0:
		case 1: /* write */
			for (i = 0; i < len; i++)
				wbuf[i] = (char)(rnd() | 1);
			logop("write %llu+%llu", (unsigned long long)off, (unsigned long long)len);
			CHECK_EQ(ufs_write(T.fs, &T.c, ino, wbuf, len, off), (ssize_t)len);
			memcpy(model + off, wbuf, len);
			msize = dx_max(msize, off + len);
			/* fragment: a block of the other file in between */
			CHECK_EQ(ufs_write(T.fs, &T.c, other, wbuf, 4096, (op % 512) * 4096), 4096);
			break;
		case 2: /* read */
			logop("read %llu+%llu", (unsigned long long)off, (unsigned long long)len);
			bad |= verify(off, len, "read");
			break;
		case 3: { /* truncate */
			struct ufs_setattr sa = { .valid = UFS_SET_SIZE };

			sa.size = rnd_below(4) ? rnd_below(MAXSZ) : off & ~4095ull;
			logop("truncate %llu", (unsigned long long)sa.size);
			CHECK_EQ(ufs_setattr(T.fs, &T.c, ino, &sa, NULL), 0);
			if (sa.size < msize)
				memset(model + sa.size, 0, msize - sa.size);
			msize = sa.size;
			break;
		}
		case 4: /* punch */
			logop("punch %llu+%llu", (unsigned long long)off, (unsigned long long)len);
			CHECK_EQ(ufs_fallocate(T.fs, &T.c, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					       off, len), 0);
			if (off < msize)
				memset(model + off, 0, dx_min(len, msize - off));
			break;
		case 5: { /* zero range */
			bool keep = rnd_below(2);

			logop("zero%s %llu+%llu", keep ? "(keep)" : "", (unsigned long long)off,
			      (unsigned long long)len);
			CHECK_EQ(ufs_fallocate(T.fs, &T.c, ino,
					       FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0),
					       off, len), 0);
			if (off < msize)
				memset(model + off, 0, dx_min(len, msize - off));
			if (!keep)
				msize = dx_max(msize, off + len);
			break;
		}
		case 6: /* collapse */
			off &= ~4095ull;
			len = (len + 4095) & ~4095ull;
			logop("collapse %llu+%llu (size %llu)", (unsigned long long)off,
			      (unsigned long long)len, (unsigned long long)msize);
			rc = ufs_fallocate(T.fs, &T.c, ino, FALLOC_FL_COLLAPSE_RANGE, off, len);
			if (off + len >= msize) {
				CHECK_EQ(rc, -EINVAL);
				break;
			}
			CHECK_EQ(rc, 0);
			memmove(model + off, model + off + len, msize - off - len);
			memset(model + msize - len, 0, len);
			msize -= len;
			break;
		case 7: /* insert */
			off &= ~4095ull;
			len = (len + 4095) & ~4095ull;
			logop("insert %llu+%llu (size %llu)", (unsigned long long)off,
			      (unsigned long long)len, (unsigned long long)msize);
			if (msize + len > MAXSZ) {
				break;
			}
			rc = ufs_fallocate(T.fs, &T.c, ino, FALLOC_FL_INSERT_RANGE, off, len);
			if (off >= msize) {
				CHECK_EQ(rc, -EINVAL);
				break;
			}
			CHECK_EQ(rc, 0);
			memmove(model + off + len, model + off, msize - off);
			memset(model + off, 0, len);
			msize += len;
			break;
		case 8: { /* fallocate */
			bool keep = rnd_below(2);

			logop("falloc%s %llu+%llu", keep ? "(keep)" : "", (unsigned long long)off,
			      (unsigned long long)len);
			CHECK_EQ(ufs_fallocate(T.fs, &T.c, ino, keep ? FALLOC_FL_KEEP_SIZE : 0, off, len), 0);
			if (!keep)
				msize = dx_max(msize, off + len);
			break;
		}
		case 9: /* copy_file_range from the other file */
			len = dx_min(len, (uint64_t)512 * 4096);
			logop("copy %llu+%llu", (unsigned long long)off, (unsigned long long)len);
			{
				ssize_t n = ufs_read(T.fs, other, wbuf, len, 0);

				CHECK(n >= 0);
				if (n <= 0)
					break;
				CHECK_EQ(ufs_copy_file_range(T.fs, &T.c, other, 0, ino, off, (size_t)n, 0), n);
				memcpy(model + off, wbuf, (size_t)n);
				msize = dx_max(msize, off + (uint64_t)n);
			}
			break;
		}
		counts[kind]++;
		if (getenv("UDAX_FSX_CHECK") && check_tree()) {
			fprintf(stderr, "tree broken after op %u: %s\n", op, dx_errmsg());
			bad = 1;
		}
		if (t_failures)
			bad = 1;
		if (!bad && op % 50 == 49) {
			uint64_t n = 0;
			struct ufs_inode *ip;

			bad |= verify(0, msize, "full verify");
			if (!ufs_iget(T.fs, ino, &ip)) {
				CHECK_EQ(ufs_ext_check(ip, &n), 0);
				ufs_iput(ip);
			}
			max_ext = dx_max(max_ext, n);
		}
		if (!bad && op % 1000 == 999) {
			ufs_release(T.fs, ino);
			ufs_release(T.fs, other);
			t_remount(&T);
			CHECK_EQ(ufs_open(T.fs, &T.c, ino, O_RDWR), 0);
			CHECK_EQ(ufs_open(T.fs, &T.c, other, O_RDWR), 0);
			bad |= verify(0, msize, "after remount");
		}
	}
	if (!bad)
		bad |= verify(0, msize, "final");
	CHECK_EQ(check_tree(), 0);
	if (bad || t_failures) {
		CHECK(!bad);
		fprintf(stderr, "FAILED with seed %llu at op %u; last ops:\n",
			(unsigned long long)seed, op);
		dump_log();
		{
			struct ufs_inode *ip;

			if (!ufs_iget(T.fs, ino, &ip)) {
				ufs_ext_dump(ip, stderr);
				ufs_iput(ip);
			}
		}
	}
	printf("ops: write %u read %u truncate %u punch %u zero %u collapse %u insert %u "
	       "falloc %u copy %u; max extents %llu\n",
	       counts[0] + counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
	       counts[7], counts[8], counts[9], (unsigned long long)max_ext);
	ufs_release(T.fs, ino);
	ufs_release(T.fs, other);
	t_teardown(&T);
	free(model);
	free(rbuf);
	free(wbuf);
}

int main(int argc, char **argv)
{
	const char *env = getenv("UDAX_FSX_SEED");
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : env ? strtoull(env, NULL, 0) : 12345;

	if (argc > 1 || env) {
		run(seed, getenv("UDAX_FSX_SMALL") != NULL);
	} else {
		/* make check: mixed sizes, then small ops that grow a deeper tree */
		run(seed, false);
		if (!t_failures)
			run(seed + 1, true);
	}
	return t_exit("test_ufs_fsx");
}
