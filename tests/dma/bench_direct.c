/* SPDX-License-Identifier: MIT */
/*
 * bench_direct - the cost of going through udaxfs for direct access,
 * measured side by side in one run against the raw device mapping (the
 * same kind of emulation file on /dev/shm mapped directly with libpmem2):
 *   1. memcpy bandwidth into a 64 MiB direct mapping vs the raw mapping
 *      (target: >= 90% of raw);
 *   2. a 4 KiB store + persist: udax_persist() vs libpmem2's persist
 *      function on the raw mapping (target: <= 1.1x raw).
 * Rounds alternate between the two so that frequency and cache effects
 * hit both alike; the best round (bandwidth) and the median of per-round
 * means (latency) are reported.
 *
 * Usage: bench_direct [MiB]   (run with top_builddir set, or from the build dir)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define ROUNDS 7
#define PERSIST_ROUNDS 21
#define PERSIST_OPS 2000

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double bw_gibs(void *dst, const void *src, size_t len)
{
	uint64_t t0 = t_now_ns();
	memcpy(dst, src, len);
	uint64_t t1 = t_now_ns();
	return (double)len / (double)(t1 - t0) * 1e9 / (double)(1ull << 30);
}

int main(int argc, char **argv)
{
	struct fsmount fm;
	struct udax_map *m = NULL;
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 0) : 64) << 20;

	t_require_env();
	int cpu = sched_getcpu();
	t_mount(&fm, "bench", len * 2 + (64u << 20), NULL);

	/* the direct mapping */
	int fd = open(t_path(&fm, "bench"), O_RDWR | O_CREAT, 0644);
	if (udax_map_open(&m, fd, 0, len, PROT_READ | PROT_WRITE, NULL))
		t_die("udax_map_open: %s", udax_last_error());
	char *ud = udax_map_addr(m);

	/* the raw mapping: an emulation file on /dev/shm, libpmem2 */
	char raw_path[128];
	snprintf(raw_path, sizeof(raw_path), "/dev/shm/udaxfs-h5-bench-raw-%d", (int)getpid());
	int rfd = open(raw_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (rfd < 0 || ftruncate(rfd, (off_t)len) < 0)
		t_die("%s: %s", raw_path, strerror(errno));
	unlink(raw_path);
	struct pmem2_config *cfg;
	struct pmem2_source *src;
	struct pmem2_map *pm;
	if (pmem2_config_new(&cfg) || pmem2_source_from_fd(&src, rfd) ||
	    pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE) ||
	    pmem2_map_new(&pm, cfg, src))
		t_die("libpmem2: %s", pmem2_errormsg());
	char *raw = pmem2_map_get_address(pm);
	pmem2_persist_fn raw_persist = pmem2_get_persist_fn(pm);

	char *srcbuf = malloc(len);
	if (!srcbuf)
		t_die("out of memory");
	for (size_t i = 0; i < len; i++)
		srcbuf[i] = (char)(i * 131 + 7);
	/* fault everything in first */
	memset(ud, 1, len);
	memset(raw, 1, len);

	double bu[ROUNDS], br[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		if (r & 1) {
			br[r] = bw_gibs(raw, srcbuf, len);
			bu[r] = bw_gibs(ud, srcbuf, len);
		} else {
			bu[r] = bw_gibs(ud, srcbuf, len);
			br[r] = bw_gibs(raw, srcbuf, len);
		}
	}
	qsort(bu, ROUNDS, sizeof(double), cmp_d);
	qsort(br, ROUNDS, sizeof(double), cmp_d);
	double bw_ratio = bu[ROUNDS - 1] / br[ROUNDS - 1];

	/* 4 KiB store + persist, over a 16 MiB window, alternating rounds */
	size_t window = len < (16u << 20) ? len : (16u << 20);
	double lu[PERSIST_ROUNDS], lr[PERSIST_ROUNDS];
	for (int r = 0; r < PERSIST_ROUNDS; r++) {
		for (int which = 0; which < 2; which++) {
			bool udax = (which ^ (r & 1)) == 0;
			char *base = udax ? ud : raw;
			uint64_t t0 = t_now_ns();
			for (int i = 0; i < PERSIST_OPS; i++) {
				char *p = base + ((size_t)i * 4096) % window;
				memcpy(p, srcbuf + ((size_t)i * 64) % (len - 4096), 4096);
				if (udax)
					udax_persist(m, p, 4096);
				else
					raw_persist(p, 4096);
			}
			double ns = (double)(t_now_ns() - t0) / PERSIST_OPS;
			if (udax)
				lu[r] = ns;
			else
				lr[r] = ns;
		}
	}
	qsort(lu, PERSIST_ROUNDS, sizeof(double), cmp_d);
	qsort(lr, PERSIST_ROUNDS, sizeof(double), cmp_d);
	double lat_ratio = lu[PERSIST_ROUNDS / 2] / lr[PERSIST_ROUNDS / 2];

	printf("bench_direct: %zu MiB, started on cpu %d, emulation on /dev/shm "
	       "(persist granularity: page)\n", len >> 20, cpu);
	printf("  memcpy bandwidth   udax %6.2f GiB/s   raw %6.2f GiB/s   ratio %.3f  "
	       "(target >= 0.90: %s)\n", bu[ROUNDS - 1], br[ROUNDS - 1], bw_ratio,
	       bw_ratio >= 0.90 ? "met" : "MISSED");
	printf("  4 KiB store+persist udax %7.0f ns     raw %7.0f ns     ratio %.3f  "
	       "(target <= 1.10: %s)\n", lu[PERSIST_ROUNDS / 2], lr[PERSIST_ROUNDS / 2],
	       lat_ratio, lat_ratio <= 1.10 ? "met" : "MISSED");

	pmem2_map_delete(&pm);
	pmem2_source_delete(&src);
	pmem2_config_delete(&cfg);
	close(rfd);
	udax_map_close(&m);
	close(fd);
	free(srcbuf);
	t_umount(&fm);
	return 0;
}
