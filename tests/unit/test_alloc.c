/* SPDX-License-Identifier: MIT */
/*
 * test_alloc: the block and inode allocators.  Alloc/free and the free
 * counts; 2 MiB-aligned huge runs stay available after many small
 * allocations; ENOSPC at full and the space back after frees; abort
 * restores the DRAM counts; a block freed in a transaction is not reused
 * before commit; and freeing a block whose page is tracked trips I1.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/media.h"
#include "core/super.h"
#include "test_helpers.h"

#define MIB (1024ULL * 1024)

static struct ufs_super sb;
static struct dx_media *m;
static struct ufs_journal *j;
static struct ufs_alloc *a;

static int one(uint64_t goal, uint32_t want, uint32_t min, unsigned int fl, uint64_t *p,
	       uint32_t *got)
{
	struct ufs_tx *tx = ufs_tx_begin(j);
	int ret = ufs_alloc_blocks(a, tx, goal, want, min, fl, p, got);

	ufs_tx_commit(tx);
	return ret;
}

static int put(uint64_t p, uint32_t n)
{
	struct ufs_tx *tx = ufs_tx_begin(j);
	int ret = ufs_free_blocks(a, tx, p, n);

	ufs_tx_commit(tx);
	return ret;
}

static void check_basic(void)
{
	uint64_t total = sb.s_blocks_count - sb.s_data_start - 1, p, p2, ino;
	uint32_t got;
	struct ufs_tx *tx;

	CHECK_EQ(ufs_alloc_free_blocks(a), total);
	CHECK_EQ(ufs_alloc_free_inodes(a), sb.s_inode_count - 2);
	CHECK_EQ(one(0, 1, 1, 0, &p, &got), 0);
	CHECK_EQ(got, 1);
	CHECK(p >= sb.s_data_start);
	CHECK_EQ(ufs_alloc_test(a, p), 1);
	CHECK_EQ(ufs_alloc_free_blocks(a), total - 1);
	/* goal: the next block */
	CHECK_EQ(one(p + 1, 8, 1, 0, &p2, &got), 0);
	CHECK_EQ(p2, p + 1);
	CHECK_EQ(got, 8);
	CHECK_EQ(put(p, 9), 0);
	CHECK_EQ(ufs_alloc_free_blocks(a), total);
	CHECK_EQ(put(p, 1), -EINVAL);			/* double free */
	CHECK_EQ(put(sb.s_data_start - 1, 1), -EINVAL);	/* metadata */
	CHECK_EQ(ufs_alloc_test(a, 0), 1);

	/* abort: bits and counts come back */
	tx = ufs_tx_begin(j);
	CHECK_EQ(ufs_alloc_blocks(a, tx, 0, 100, 100, 0, &p, &got), 0);
	CHECK_EQ(ufs_ialloc(a, tx, &ino), 0);
	CHECK_EQ(ino, 2);
	CHECK_EQ(ufs_alloc_free_blocks(a), total - 100);
	ufs_tx_abort(tx);
	CHECK_EQ(ufs_alloc_free_blocks(a), total);
	CHECK_EQ(ufs_alloc_free_inodes(a), sb.s_inode_count - 2);
	CHECK_EQ(ufs_alloc_test(a, p), 0);

	/* freed in a transaction: not reused before it commits */
	CHECK_EQ(one(0, 4, 4, 0, &p, &got), 0);
	tx = ufs_tx_begin(j);
	CHECK_EQ(ufs_free_blocks(a, tx, p, 4), 0);
	CHECK_EQ(ufs_alloc_blocks(a, tx, p, 4, 1, 0, &p2, &got), 0);
	CHECK(p2 + got <= p || p2 >= p + 4);
	CHECK_EQ(ufs_free_blocks(a, tx, p2, got), 0);
	ufs_tx_commit(tx);
	CHECK_EQ(ufs_alloc_free_blocks(a), total);

	/* inodes */
	tx = ufs_tx_begin(j);
	CHECK_EQ(ufs_ialloc(a, tx, &ino), 0);
	CHECK(ino >= 2);
	CHECK_EQ(ufs_ifree(a, tx, ino), 0);
	CHECK_EQ(ufs_ifree(a, tx, ino), -EINVAL);
	CHECK_EQ(ufs_ifree(a, tx, UFS_ROOT_INO), -EINVAL);
	ufs_tx_commit(tx);
	CHECK_EQ(ufs_alloc_free_inodes(a), sb.s_inode_count - 2);
}

static void check_huge_after_small(void)
{
	uint64_t p[600], h;
	uint32_t got;
	int i, n = 0;

	/* many small, scattered allocations */
	for (i = 0; i < 600; i++) {
		CHECK_EQ(one(0, 1 + (i % 3), 1, 0, &p[i], &got), 0);
		n++;
	}
	/* free every other one: holes everywhere in the used chunks */
	for (i = 0; i < 600; i += 2)
		CHECK_EQ(put(p[i], 1 + (i % 3)), 0);
	CHECK_EQ(one(0, 1024, 512, UFS_ALLOC_HUGE, &h, &got), 0);
	CHECK_EQ(h % 512, 0);
	CHECK_EQ(got, 1024);
	printf("  after %d small allocations a 4 MiB run at block %" PRIu64 " (2 MiB aligned)\n",
	       n, h);
	CHECK_EQ(put(h, got), 0);
	/* a 2 MiB request without the flag is aligned too */
	CHECK_EQ(one(0, 512, 512, 0, &h, &got), 0);
	CHECK_EQ(h % 512, 0);
	CHECK_EQ(put(h, got), 0);
	for (i = 1; i < 600; i += 2)
		CHECK_EQ(put(p[i], 1 + (i % 3)), 0);
	CHECK_EQ(ufs_alloc_free_blocks(a), sb.s_blocks_count - sb.s_data_start - 1);
}

static void check_full(void)
{
	uint64_t total = ufs_alloc_free_blocks(a), sum = 0, p, ino;
	static uint64_t runs[70000][2];
	uint32_t got;
	size_t n = 0, i;
	struct ufs_tx *tx;

	while (one(0, 37, 1, 0, &p, &got) == 0) {
		runs[n][0] = p;
		runs[n][1] = got;
		n++;
		sum += got;
	}
	CHECK_EQ(sum, total);
	CHECK_EQ(ufs_alloc_free_blocks(a), 0);
	CHECK_EQ(one(0, 1, 1, 0, &p, &got), -ENOSPC);
	for (i = 0; i < n; i++)
		CHECK_EQ(put(runs[i][0], (uint32_t)runs[i][1]), 0);
	CHECK_EQ(ufs_alloc_free_blocks(a), total);
	/* inodes run out too */
	tx = ufs_tx_begin(j);
	for (i = 0; i < sb.s_inode_count - 2; i++)
		if (ufs_ialloc(a, tx, &ino))
			break;
	CHECK_EQ(i, sb.s_inode_count - 2);
	CHECK_EQ(ufs_ialloc(a, tx, &ino), -ENOSPC);
	ufs_tx_abort(tx);
	CHECK_EQ(ufs_alloc_free_inodes(a), sb.s_inode_count - 2);
}

/* Two threads allocate and free in their own transactions; statfs-style
 * counters are read concurrently.  At the end everything is free again. */
static void *churn(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	uint64_t held[64][2];
	int i, n = 0, k;

	for (i = 0; i < 3000; i++) {
		uint32_t want = 1 + (uint32_t)(rand_r(&seed) % 700), got;
		uint64_t p;

		if (n < 64 && one(0, want, 1, 0, &p, &got) == 0) {
			held[n][0] = p;
			held[n][1] = got;
			n++;
		}
		if (n && (rand_r(&seed) & 1)) {
			k = (int)(rand_r(&seed) % (unsigned int)n);
			CHECK_EQ(put(held[k][0], (uint32_t)held[k][1]), 0);
			held[k][0] = held[n - 1][0];
			held[k][1] = held[n - 1][1];
			n--;
		}
		(void)ufs_alloc_free_blocks(a);
	}
	while (n--)
		CHECK_EQ(put(held[n][0], (uint32_t)held[n][1]), 0);
	return NULL;
}

static void check_threads(void)
{
	uint64_t total = ufs_alloc_free_blocks(a);
	pthread_t t1, t2;

	pthread_create(&t1, NULL, churn, (void *)1);
	pthread_create(&t2, NULL, churn, (void *)2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK_EQ(ufs_alloc_free_blocks(a), total);
}

static jmp_buf bug_jmp;
static int bugs;

static void on_bug(const char *file, int line, const char *cond)
{
	bugs++;
	longjmp(bug_jmp, 1);
}

static void check_i1(void)
{
	struct dx_dax_opts dopts = { .numa_node = -1 };
	struct dx_dax *dax = NULL;
	struct ufs_alloc *a2 = NULL;
	struct dx_mapping map;
	struct dx_page *pg = NULL;
	struct ufs_tx *tx;
	uint64_t p;
	uint32_t got;

	CHECK_EQ(dx_dax_new(&dax, &dopts), 0);
	CHECK_EQ(ufs_alloc_open(&a2, m, &sb, dax), 0);
	if (!dax || !a2)
		return;
	ufs_alloc_close(&a);
	a = a2;
	CHECK_EQ(one(0, 1, 1, 0, &p, &got), 0);
	CHECK_EQ(dx_mapping_init(&map, dax, 5), 0);
	dx_layout_lock_excl(&map);
	CHECK_EQ(dx_track(&map, 0, p, 0, UDAX_REF_MAP, &pg), 0);
	dx_set_bug_handler(on_bug);
	tx = ufs_tx_begin(j);
	if (!setjmp(bug_jmp))
		ufs_free_blocks(a, tx, p, 1);
	dx_set_bug_handler(NULL);
	ufs_tx_abort(tx);
	CHECK_EQ(bugs, 1);		/* I1 fired */
	CHECK_EQ(ufs_alloc_test(a, p), 1);	/* and the block is still allocated */
	printf("  I1 fired on freeing a tracked block: %s\n", bugs == 1 ? "yes" : "no");
	/* the proper way: drop the reference, break layouts, then free */
	{
		struct dx_wait_ctx wc = { .uninterruptible = true };

		dx_page_put(pg, UDAX_REF_MAP);
		CHECK_EQ(dx_break_layouts(&map, 0, UDAX_END_OF_FILE, &wc), 0);
		CHECK_EQ(put(p, 1), 0);
		CHECK_EQ(ufs_alloc_test(a, p), 0);
	}
	dx_layout_unlock_excl(&map);
	dx_mapping_destroy(&map);
	ufs_alloc_close(&a);
	dx_dax_delete(&dax);
}

/*
 * The allocator's per-chunk table comes from dx_numa_alloc() on the
 * device's node: for node 0 it must be zeroed, writable, and (when the
 * kernel has NUMA: get_mempolicy works) bound to node 0; for no node, or
 * without NUMA (then only usability is checked), plain anonymous memory
 * with the default policy.
 */
static void numa_table(int node, bool numa, bool bound)
{
	size_t len = 3 * 4096 + 100;
	unsigned long mask = 0;
	unsigned char *p = dx_numa_alloc(len, node);
	size_t i, nonzero = 0;
	int mode = -1;

	CHECK(p != NULL);
	if (!p)
		return;
	for (i = 0; i < len; i++)
		nonzero += p[i] != 0;
	CHECK_EQ(nonzero, 0);
	memset(p, 0xa5, len);
	if (numa) {
		CHECK_EQ(syscall(SYS_get_mempolicy, &mode, &mask, sizeof(mask) * 8,
				 p + len - 1, 2 /* MPOL_F_ADDR */), 0);
		if (bound)
			CHECK((mode == 2 /* BIND */ || mode == 1 /* PREFERRED */) && (mask & 1));
		else
			CHECK_EQ(mode, 0 /* MPOL_DEFAULT */);
	}
	dx_numa_free(p, len);
}

static void check_numa_table(void)
{
	/* what numa_available() asks: ENOSYS (or EPERM in some VMs) = no NUMA */
	bool numa = syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0) == 0;

	printf("numa: %s\n", numa ? "available: node 0 tables must be bound"
				  : "unavailable: anonymous memory (fallback)");
	numa_table(0, numa, numa);
	numa_table(-1, numa, false);
	CHECK(dx_numa_alloc(0, 0) == NULL);
}

int main(void)
{
	struct dx_media_opts o = { 0 };
	char path[128];
	bool backup;

	setvbuf(stdout, NULL, _IONBF, 0);
	t_mkfile(path, sizeof(path), "alloc", 64 * MIB);
	o.path = path;
	if (dx_media_open(&m, &o) || ufs_mkfs(m, NULL, &sb) ||
	    ufs_super_load(m, &sb, &backup) || ufs_journal_open(&j, m, &sb) ||
	    ufs_alloc_open(&a, m, &sb, NULL)) {
		fprintf(stderr, "setup: %s\n", dx_errmsg());
		return 99;
	}
	check_basic();
	check_huge_after_small();
	check_full();
	check_threads();
	check_i1();		/* closes a */
	check_numa_table();
	ufs_alloc_close(&a);
	ufs_journal_close(&j);
	dx_media_close(&m);
	unlink(path);
	return t_exit("test_alloc");
}
