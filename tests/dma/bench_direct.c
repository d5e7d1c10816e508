/* SPDX-License-Identifier: MIT */
/*
 * bench_direct - the cost of going through udaxfs for direct access,
 * measured side by side in one run against the raw device mapping: the
 * same emulation file mapped directly with libpmem2, and the very same
 * device pages that back the file (found by writing a marker into each page
 * through the direct mapping and looking for it in the raw one).  Comparing
 * the same physical pages matters: two shmem files of the same size differ
 * by 10-15% in memcpy bandwidth on this machine just from how their pages
 * were allocated.
 *   0. the first pass: 1 MiB copies into, then (on a second, fresh mapping)
 *      out of the direct mapping, each page touched for the first time by this
 *      process (page faults included: 4 KiB each on a plain emulation file,
 *      2 MiB each on a devdax or an emulation file on a tmpfs with huge
 *      pages and -o emul_align=2M);
 *   1. memcpy bandwidth into a 64 MiB direct mapping vs the raw mapping of
 *      the same pages (target: >= 90% of raw), all pages faulted in; and
 *      the yardsticks of read()/write() from direct layouts: 1 MiB copies
 *      from a 1 MiB buffer into and out of the raw pages, and non-temporal
 *      stores into them (+ one fence);
 *   2. a 4 KiB store + persist: udax_persist() vs libpmem2's persist
 *      function on the raw mapping (target: <= 1.1x raw).
 * The process is pinned to one CPU; rounds alternate between the two sides;
 * the verdict uses the median of per-round ratios (the machine is shared).
 *
 * Usage: bench_direct [MiB [FILE IMAGE]]
 *   Without FILE it mounts its own udaxfs (run with top_builddir set, or
 *   from the build dir); with FILE (on a mount of the emulation file IMAGE)
 *   it uses that.
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
#include <udax/udax_proto.h>

#include "harness.h"

#define ROUNDS 15
#define PERSIST_ROUNDS 21
#define PERSIST_OPS 2000
#define PG 4096ul

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A run of file pages that are contiguous on the device. */
struct run {
	size_t file_off, len;
	char *raw;
};

static double bw_udax(char *dst, const char *src, size_t len)
{
	uint64_t t0 = t_now_ns();
	memcpy(dst, src, len);
	return (double)len / (double)(t_now_ns() - t0) * 1e9 / (double)(1ull << 30);
}

static double bw_raw(const struct run *r, size_t nr, const char *src, size_t len)
{
	uint64_t t0 = t_now_ns();
	for (size_t i = 0; i < nr; i++)
		memcpy(r[i].raw, src + r[i].file_off, r[i].len);
	return (double)len / (double)(t_now_ns() - t0) * 1e9 / (double)(1ull << 30);
}

/*
 * The yardsticks of read()/write() of 1 MiB: copies between a 1 MiB buffer
 * (hot in the CPU's caches, as a program's buffer is) and the device pages,
 * 1 MiB at a time: memcpy into them, out of them, or non-temporal stores
 * into them with one fence at the end.
 */
#define YCHUNK (1ul << 20)
enum ymode { Y_WRITE, Y_READ, Y_NT };

static double bw_yard(const struct run *r, size_t nr, char *buf, size_t len, enum ymode mode,
		      pmem2_memcpy_fn cp, pmem2_drain_fn drain)
{
	uint64_t t0 = t_now_ns();
	for (size_t i = 0; i < nr; i++)
		for (size_t off = 0; off < r[i].len; off += YCHUNK) {
			size_t k = r[i].len - off < YCHUNK ? r[i].len - off : YCHUNK;
			char *p = r[i].raw + off;
			if (mode == Y_WRITE)
				memcpy(p, buf, k);
			else if (mode == Y_READ)
				memcpy(buf, p, k);
			else
				cp(p, buf, k, PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_NOFLUSH);
		}
	if (mode == Y_NT)
		drain();
	return (double)len / (double)(t_now_ns() - t0) * 1e9 / (double)(1ull << 30);
}

/* Where does each page of the direct mapping live in the raw mapping? */
static size_t find_runs(char *ud, size_t len, char *raw, size_t raw_len, struct run *runs)
{
	size_t npages = len / PG, nr = 0;
	uint64_t tag = t_now_ns();
	for (size_t i = 0; i < npages; i++) {
		uint64_t mark[2] = { tag, i };
		memcpy(ud + i * PG, mark, sizeof(mark));
	}
	for (size_t off = 0; off + PG <= raw_len; off += PG) {
		uint64_t mark[2];
		memcpy(mark, raw + off, sizeof(mark));
		if (mark[0] != tag || mark[1] >= npages)
			continue;
		size_t fo = mark[1] * PG;
		/* pages are visited in device order; merge file-contiguous ones */
		if (nr && runs[nr - 1].file_off + runs[nr - 1].len == fo &&
		    runs[nr - 1].raw + runs[nr - 1].len == raw + off)
			runs[nr - 1].len += PG;
		else
			runs[nr++] = (struct run){ fo, PG, raw + off };
	}
	size_t covered = 0;
	for (size_t i = 0; i < nr; i++)
		covered += runs[i].len;
	if (covered != len)
		t_die("found %zu of %zu bytes of the file in the raw mapping", covered, len);
	return nr;
}

static char *raw_page(const struct run *r, size_t nr, size_t file_off)
{
	for (size_t i = 0; i < nr; i++)
		if (file_off >= r[i].file_off && file_off < r[i].file_off + r[i].len)
			return r[i].raw + (file_off - r[i].file_off);
	return NULL;
}

int main(int argc, char **argv)
{
	struct fsmount fm = { .mounted = false };
	struct udax_map *m = NULL;
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 0) : 64) << 20;
	const char *file = argc > 3 ? argv[2] : NULL, *image = argc > 3 ? argv[3] : NULL;

	/* one CPU for the whole run, so both sides see the same caches */
	int cpu = sched_getcpu();
	cpu_set_t cs;
	CPU_ZERO(&cs);
	CPU_SET(cpu, &cs);
	sched_setaffinity(0, sizeof(cs), &cs);
	if (!file) {
		t_require_env();
		t_mount(&fm, "bench", len * 2 + (64u << 20), NULL);
		file = t_path(&fm, "bench");
		image = fm.img;
	}

	struct run *runs = calloc(len / PG, sizeof(*runs));
	char *srcbuf = malloc(len), *ybuf = malloc(YCHUNK);
	if (!runs || !srcbuf || !ybuf)
		t_die("out of memory");
	for (size_t i = 0; i < len; i++)
		srcbuf[i] = (char)(i * 131 + 7);
	memcpy(ybuf, srcbuf, YCHUNK < len ? YCHUNK : len);

	/* the direct mapping; the first pass over it, then over a fresh one */
	int fd = open(file, O_RDWR | O_CREAT, 0644);
	if (udax_map_open(&m, fd, 0, len, PROT_READ | PROT_WRITE, NULL))
		t_die("udax_map_open: %s", udax_last_error());
	struct run whole = { 0, len, udax_map_addr(m) };
	double first_w = bw_yard(&whole, 1, ybuf, len, Y_WRITE, NULL, NULL);
	udax_map_close(&m);
	if (udax_map_open(&m, fd, 0, len, PROT_READ, NULL))
		t_die("udax_map_open: %s", udax_last_error());
	whole.raw = udax_map_addr(m);
	double first_r = bw_yard(&whole, 1, ybuf, len, Y_READ, NULL, NULL);
	udax_map_close(&m);
	if (udax_map_open(&m, fd, 0, len, PROT_READ | PROT_WRITE, NULL))
		t_die("udax_map_open: %s", udax_last_error());
	char *ud = udax_map_addr(m);

	/* the raw mapping: the emulation file itself, mapped with libpmem2 */
	int rfd = open(image, O_RDWR);
	struct pmem2_config *cfg;
	struct pmem2_source *src;
	struct pmem2_map *pm;
	if (rfd < 0)
		t_die("%s: %s", image, strerror(errno));
	if (pmem2_config_new(&cfg) || pmem2_source_from_fd(&src, rfd) ||
	    pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE) ||
	    pmem2_map_new(&pm, cfg, src))
		t_die("libpmem2: %s", pmem2_errormsg());
	char *raw = pmem2_map_get_address(pm);
	size_t raw_len = pmem2_map_get_size(pm);
	pmem2_persist_fn raw_persist = pmem2_get_persist_fn(pm);
	pmem2_memcpy_fn raw_memcpy = pmem2_get_memcpy_fn(pm);
	pmem2_drain_fn raw_drain = pmem2_get_drain_fn(pm);

	size_t nr = find_runs(ud, len, raw, raw_len, runs);
	/* write-fault every page on both sides before timing */
	bw_udax(ud, srcbuf, len);
	bw_raw(runs, nr, srcbuf, len);

	double bu[ROUNDS], br[ROUNDS], rr[ROUNDS], bwr[ROUNDS], brd[ROUNDS], bnt[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		if (r & 1) {
			br[r] = bw_raw(runs, nr, srcbuf, len);
			bu[r] = bw_udax(ud, srcbuf, len);
		} else {
			bu[r] = bw_udax(ud, srcbuf, len);
			br[r] = bw_raw(runs, nr, srcbuf, len);
		}
		rr[r] = bu[r] / br[r];
		bwr[r] = bw_yard(runs, nr, ybuf, len, Y_WRITE, NULL, NULL);
		brd[r] = bw_yard(runs, nr, ybuf, len, Y_READ, NULL, NULL);
		bnt[r] = bw_yard(runs, nr, ybuf, len, Y_NT, raw_memcpy, raw_drain);
	}
	qsort(rr, ROUNDS, sizeof(double), cmp_d);
	qsort(bu, ROUNDS, sizeof(double), cmp_d);
	qsort(br, ROUNDS, sizeof(double), cmp_d);
	qsort(bwr, ROUNDS, sizeof(double), cmp_d);
	qsort(brd, ROUNDS, sizeof(double), cmp_d);
	qsort(bnt, ROUNDS, sizeof(double), cmp_d);
	double bw_ratio = rr[ROUNDS / 2];

	/* 4 KiB store + persist, over a 16 MiB window, alternating rounds */
	size_t window = len < (16u << 20) ? len : (16u << 20);
	double lu[PERSIST_ROUNDS], lr[PERSIST_ROUNDS];
	for (int r = 0; r < PERSIST_ROUNDS; r++) {
		for (int which = 0; which < 2; which++) {
			bool udax = (which ^ (r & 1)) == 0;
			uint64_t t0 = t_now_ns();
			for (int i = 0; i < PERSIST_OPS; i++) {
				size_t fo = ((size_t)i * PG) % window;
				char *p = udax ? ud + fo : raw_page(runs, nr, fo);
				memcpy(p, srcbuf + ((size_t)i * 64) % (len - PG), PG);
				if (udax)
					udax_persist(m, p, PG);
				else
					raw_persist(p, PG);
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

	printf("bench_direct: %zu MiB in %zu device run(s), pinned to cpu %d, emulation on "
	       "%s\n  (persist: udax = cache-line flush + fence; raw = libpmem2's "
	       "function for the file, page granularity = msync)\n", len >> 20, nr, cpu, image);
	printf("  memcpy bandwidth (best) udax %6.2f GiB/s   raw %6.2f GiB/s; median per-round "
	       "ratio %.3f  (target >= 0.90: %s)\n", bu[ROUNDS - 1], br[ROUNDS - 1], bw_ratio,
	       bw_ratio >= 0.90 ? "met" : "MISSED");
	/* one line for scripts (contrib/bench/fs-bench.sh), medians, MiB/s */
	printf("  yardstick MiB/s: first-write %.0f first-read %.0f write %.0f read %.0f "
	       "ntwrite %.0f\n", first_w * 1024, first_r * 1024, bwr[ROUNDS / 2] * 1024,
	       brd[ROUNDS / 2] * 1024, bnt[ROUNDS / 2] * 1024);
	printf("  4 KiB store+persist (median) udax %5.0f ns   raw %5.0f ns; ratio %.3f  "
	       "(target <= 1.10: %s)\n", lu[PERSIST_ROUNDS / 2], lr[PERSIST_ROUNDS / 2],
	       lat_ratio, lat_ratio <= 1.10 ? "met" : "MISSED");

	/*
	 * The control path, to back the choice of channel (libudax(7)): a
	 * FUSE ioctl round trip (how a request is bound to the open file), a
	 * round trip on the layout socket (pins, recalls), and a whole
	 * map + unmap of 4 KiB.
	 */
	enum { CTL_OPS = 2000 };
	struct udax_ioc_hello h;
	uint64_t t0 = t_now_ns();
	for (int i = 0; i < CTL_OPS; i++)
		proto_hello(fd, &h);
	double ioctl_us = (double)(t_now_ns() - t0) / CTL_OPS / 1e3;
	struct udax_wire *s = NULL;
	if (proto_connect(h.sock, &s))
		t_die("connect %s", h.sock);
	struct udax_pin_req ir = { .id = UINT64_MAX, .ring_fd = 0, .addr = 1 << 20, .len = 4096 };
	t0 = t_now_ns();
	for (int i = 0; i < CTL_OPS; i++)
		proto_call(s, UDAX_REQ_UNPIN, &ir, sizeof(ir), NULL, 0, NULL);
	double sock_us = (double)(t_now_ns() - t0) / CTL_OPS / 1e3;
	proto_close(&s);
	t0 = t_now_ns();
	for (int i = 0; i < CTL_OPS / 4; i++) {
		struct udax_map *m2 = NULL;
		if (udax_map_open(&m2, fd, 0, PG, PROT_READ | PROT_WRITE, NULL) == 0)
			udax_map_close(&m2);
	}
	double map_us = (double)(t_now_ns() - t0) / (CTL_OPS / 4) / 1e3;
	printf("  control path: FUSE ioctl round trip %.1f us, layout socket round trip %.1f us, "
	       "map+unmap of 4 KiB %.1f us\n", ioctl_us, sock_us, map_us);

	pmem2_map_delete(&pm);
	pmem2_source_delete(&src);
	pmem2_config_delete(&cfg);
	close(rfd);
	udax_map_close(&m);
	close(fd);
	free(srcbuf);
	free(ybuf);
	free(runs);
	if (fm.mounted)
		t_umount(&fm);
	return 0;
}
