// SPDX-License-Identifier: MIT
/*
 * test_ufs_bigdir - a directory of 100k entries: create, look every one up
 * (before and after a remount, which rebuilds the DRAM index), readdir
 * them all exactly once, unlink half, and check the rest.  Prints timings
 * (per-op microseconds) but asserts only correctness: the index must keep
 * lookups O(1), which the timings show.
 */
#include "test_ufs.h"

#define MiB (1024ull * 1024)
#define N 100000

static struct t_fs T;
static unsigned char *seen;
static uint64_t nseen, dups;

static int count_fill(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	unsigned long k;

	(void)arg;
	(void)e;
	(void)next;
	if (name[0] != 'f')
		return 0;
	k = strtoul(name + 5, NULL, 10);
	if (k < N) {
		if (seen[k])
			dups++;
		seen[k] = 1;
		nseen++;
	}
	return 0;
}

static double per_op_us(uint64_t t0, uint64_t n)
{
	return (double)(dx_now_ns() - t0) / 1e3 / (double)n;
}

static int lookup_all(uint64_t dir, int step, const char *what)
{
	struct ufs_entry e;
	char name[64];
	uint64_t t0 = dx_now_ns(), n = 0;
	int bad = 0, i;

	for (i = 0; i < N; i += step) {
		snprintf(name, sizeof(name), "file-%d-with-a-longer-name", i);
		if (ufs_lookup(T.fs, dir, name, &e)) {
			bad++;
			continue;
		}
		ufs_forget(T.fs, e.ino, 1);
		n++;
	}
	printf("%s: %llu lookups, %.2f us each\n", what, (unsigned long long)n, per_op_us(t0, n ? n : 1));
	return bad;
}

int main(void)
{
	struct ufs_entry e;
	uint64_t dir, t0;
	char name[64];
	int i, bad = 0;
	double first_k = 0, last_k;

	seen = calloc(N, 1);
	REQUIRE(seen);
	t_inode_ratio = 4096;
	t_setup(&T, "bigdir", 512 * MiB);
	REQUIRE(ufs_mkdir(T.fs, &T.c, UFS_ROOT_INO, "big", 0755, &e) == 0);
	dir = e.ino;

	t0 = dx_now_ns();
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%d-with-a-longer-name", i);
		if (ufs_mknod(T.fs, &T.c, dir, name, S_IFREG | 0644, 0, &e)) {
			bad++;
			continue;
		}
		ufs_forget(T.fs, e.ino, 1);
		if (i == 999)
			first_k = per_op_us(t0, 1000);
		if (i == N - 1001)
			t0 = dx_now_ns();
	}
	last_k = per_op_us(t0, 1000);
	CHECK_EQ(bad, 0);
	printf("create: first 1000 %.2f us each, last 1000 %.2f us each\n", first_k, last_k);
	CHECK_EQ(ufs_mknod(T.fs, &T.c, dir, "file-5-with-a-longer-name", S_IFREG | 0644, 0, &e),
		 -EEXIST);

	CHECK_EQ(lookup_all(dir, 1, "lookup (warm index)"), 0);
	t_remount(&T);
	t0 = dx_now_ns();
	CHECK_EQ(ufs_lookup(T.fs, dir, "file-77-with-a-longer-name", &e), 0);
	ufs_forget(T.fs, e.ino, 1);
	printf("first lookup after remount (index rebuild of %d entries): %.1f ms\n", N,
	       (double)(dx_now_ns() - t0) / 1e6);
	CHECK_EQ(lookup_all(dir, 1, "lookup (after remount)"), 0);

	t0 = dx_now_ns();
	CHECK_EQ(ufs_readdir(T.fs, dir, 0, false, count_fill, NULL), 0);
	printf("readdir: %llu entries in %.1f ms\n", (unsigned long long)nseen,
	       (double)(dx_now_ns() - t0) / 1e6);
	CHECK_EQ(nseen, N);
	CHECK_EQ(dups, 0);

	t0 = dx_now_ns();
	for (i = 0, bad = 0; i < N; i += 2) {
		snprintf(name, sizeof(name), "file-%d-with-a-longer-name", i);
		bad += ufs_unlink(T.fs, &T.c, dir, name) != 0;
	}
	printf("unlink: %.2f us each\n", per_op_us(t0, N / 2));
	CHECK_EQ(bad, 0);
	CHECK_EQ(lookup_all(dir, 1, "lookup (half gone)"), N / 2);
	memset(seen, 0, N);
	nseen = 0;
	CHECK_EQ(ufs_readdir(T.fs, dir, 0, false, count_fill, NULL), 0);
	CHECK_EQ(nseen, N / 2);
	CHECK(!seen[0] && seen[1]);
	/* reuse of the freed records */
	for (i = 0, bad = 0; i < N; i += 2) {
		snprintf(name, sizeof(name), "file-%d-with-a-longer-name", i);
		bad += ufs_mknod(T.fs, &T.c, dir, name, S_IFREG | 0644, 0, &e) != 0;
		if (!bad)
			ufs_forget(T.fs, e.ino, 1);
	}
	CHECK_EQ(bad, 0);
	{
		struct stat st;

		CHECK_EQ(ufs_getattr(T.fs, dir, &st), 0);
		printf("directory size %.1f MiB for %d entries\n", (double)st.st_size / MiB, N);
	}
	CHECK_EQ(lookup_all(dir, 7, "lookup (refilled)"), 0);
	t_teardown(&T);
	free(seen);
	return t_exit("test_ufs_bigdir");
}
