/* SPDX-License-Identifier: MIT */
/*
 * dma_503 - a userspace xfstests generic/503: io_uring fixed-buffer I/O
 * (READ_FIXED of a 0xD5 pattern) keeps landing in the mapped pages of file
 * A while another process loops truncate, punch hole, zero range and
 * collapse range on A and rewrites other files B.. with known patterns
 * (each rewrite frees and reallocates, so A's freed blocks get reused).
 * During the run (O_DIRECT reads) and after a remount, every other file
 * must hold exactly its pattern: a DMA that landed in a block after it was
 * freed and reused would show up as foreign bytes.
 *
 * The DMA client answers recalls slowly on purpose (its handler lets DMA
 * run for HANDLER_DELAY_MS more before stopping it): the file system must
 * wait for it.  NEGATIVE CONTROL: the same run on a mount with
 * dax_policy=unsafe (no wait) must detect corruption, which proves that
 * the check can fail.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define DEV_SIZE (96ull << 20)
#define A_LEN (8u << 20)
#define NFILES 20
#define RUN_MS 4000
#define HANDLER_DELAY_MS 30
#define DMA_BYTE 0xD5

static const struct fsmount *g_fm;

/* ---- the DMA client ---- */

static atomic_int g_stop, g_drained;

static void on_recall(struct udax_map *m, void *arg)
{
	(void)m;
	(void)arg;
	t_sleep_ms(HANDLER_DELAY_MS);	/* DMA keeps running meanwhile */
	atomic_store(&g_stop, 1);
	while (!atomic_load(&g_drained))
		t_sleep_ms(1);
}

static int dma_client(void *arg)
{
	(void)arg;
	struct io_uring ring;
	struct udax_map_opts mo = { .recall = on_recall };
	if (io_uring_queue_init(32, &ring, 0) < 0)
		return T_SKIP;
	int src = t_pattern_file(1u << 20, DMA_BYTE);
	int fd = open(t_path(g_fm, "A"), O_RDWR);
	uint64_t maps = 0, ios = 0, pin_refused = 0;
	unsigned int seed = 5;
	for (;;) {
		struct udax_map *m = NULL;
		atomic_store(&g_stop, 0);
		atomic_store(&g_drained, 0);
		int err = udax_map_open(&m, fd, 0, A_LEN, PROT_READ | PROT_WRITE, &mo);
		if (err) {
			t_sleep_ms(1);
			continue;
		}
		maps++;
		unsigned int bi = UDAX_PIN_ANY;
		err = udax_pin(m, &ring, &bi);
		if (err == -EFAULT || err == -EOPNOTSUPP)
			return T_SKIP;
		if (err) {
			pin_refused++;
			atomic_store(&g_drained, 1);
			udax_map_close(&m);
			continue;
		}
		struct dma d = { .ring = &ring, .src_fd = src, .buf = udax_map_addr(m),
				 .len = A_LEN, .io = 16384, .qd = 8, .bi = bi, .seed = seed++ };
		while (!atomic_load(&g_stop)) {
			dma_submit(&d);
			dma_reap(&d, 1);
		}
		dma_drain(&d);
		ios += d.done;
		atomic_store(&g_drained, 1);
		while (!udax_map_recalled(m))
			t_sleep_ms(1);
		udax_map_close(&m);
		if (maps % 64 == 0)
			fprintf(stderr, "  dma client: %llu layouts, %llu READ_FIXED, %llu pins refused\n",
				(unsigned long long)maps, (unsigned long long)ios,
				(unsigned long long)pin_refused);
	}
}

/* ---- the mutator and the checks ---- */

static unsigned char fpat(int file, unsigned int gen)
{
	return (unsigned char)(1 + (file * 11 + gen * 3) % 200);	/* never DMA_BYTE */
}

struct files {
	unsigned int gen[NFILES];	/* generation last written (0: never) */
	size_t size;
	unsigned char *buf;		/* aligned, size bytes */
};

static void fname(char *b, size_t n, int i)
{
	snprintf(b, n, "%c", 'B' + i);
}

static int write_file(struct files *f, int i)
{
	char n[8];
	fname(n, sizeof(n), i);
	int fd = open(t_path(g_fm, n), O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, 0) < 0) {	/* frees: the next write reallocates */
		close(fd);
		return -errno;
	}
	unsigned int gen = f->gen[i] + 1;
	memset(f->buf, fpat(i, gen), f->size);
	ssize_t w = pwrite(fd, f->buf, f->size, 0);
	int e = w == (ssize_t)f->size ? 0 : (w < 0 ? -errno : -EIO);
	if (!e && fsync(fd) < 0)
		e = -errno;
	close(fd);
	if (!e)
		f->gen[i] = gen;
	return e;
}

/* Return the number of foreign bytes in file i (0: intact); -errno. */
static long check_file(struct files *f, int i, bool direct, long *dma_bytes)
{
	char n[8];
	fname(n, sizeof(n), i);
	if (!f->gen[i])
		return 0;
	int fd = open(t_path(g_fm, n), O_RDONLY | (direct ? O_DIRECT : 0));
	if (fd < 0)
		return -errno;
	ssize_t r = pread(fd, f->buf, f->size, 0);
	close(fd);
	if (r != (ssize_t)f->size)
		return r < 0 ? -errno : -EIO;
	long bad = 0;
	unsigned char want = fpat(i, f->gen[i]);
	for (size_t k = 0; k < f->size; k++) {
		if (f->buf[k] != want) {
			bad++;
			*dma_bytes += f->buf[k] == DMA_BYTE;
		}
	}
	return bad;
}

static void mutate_a(int fd, unsigned int *seed, unsigned long *ops)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	uint64_t size = (uint64_t)st.st_size, blk = 4096;
	uint64_t nblk = size / blk;
	uint64_t off = nblk ? (uint64_t)rand_r(seed) % nblk * blk : 0;
	uint64_t len = ((uint64_t)rand_r(seed) % 256 + 1) * blk;
	int r;
	switch (rand_r(seed) % 5) {
	case 0:
		r = ftruncate(fd, 0);
		break;
	case 1:
		r = ftruncate(fd, (off_t)off);
		break;
	case 2:
		r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
		break;
	case 3:
		r = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
		break;
	default:
		if (off + len >= size)
			return;
		r = fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, (off_t)off, (off_t)len);
		break;
	}
	if (r == 0)
		ops[0]++;
	else
		ops[1]++;
}

/* One run; return the number of corrupted files (or -1: could not run). */
static long run(struct fsmount *fm, const char *name, const char *opts)
{
	struct files f = { .size = 0 };
	unsigned long ops[2] = { 0, 0 };
	long corrupt = 0, dma_bytes = 0;
	unsigned int seed = 42;

	t_mount(fm, name, DEV_SIZE, opts);
	g_fm = fm;
	uint64_t free_bytes = t_free_blocks(fm) * 4096;
	if (free_bytes < A_LEN + 16ull * NFILES * 4096 + (8u << 20))
		t_die("the file system is too small: %llu free", (unsigned long long)free_bytes);
	/* fill most of what A leaves, so A's freed blocks are what gets reused */
	f.size = (size_t)((free_bytes - A_LEN - (6u << 20)) / NFILES) & ~(size_t)4095;
	if (posix_memalign((void **)&f.buf, 4096, f.size))
		t_die("out of memory");
	int afd = open(t_path(fm, "A"), O_RDWR | O_CREAT, 0644);
	for (int i = 0; i < NFILES; i++)
		if (write_file(&f, i))
			t_die("initial write of file %d: %s", i, strerror(errno));

	pid_t client = t_fork(dma_client, NULL);
	t_sleep_ms(100);
	uint64_t end = t_now_ns() + RUN_MS * 1000000ull;
	unsigned long writes = 0, checks = 0;
	while (t_now_ns() < end) {
		mutate_a(afd, &seed, ops);
		int i = rand_r(&seed) % NFILES;
		if (write_file(&f, i) == 0)
			writes++;
		int j = rand_r(&seed) % NFILES;
		long bad = check_file(&f, j, true, &dma_bytes);
		checks++;
		if (bad > 0) {
			corrupt++;
			fprintf(stderr, "  %s: file %c has %ld foreign bytes during the run\n", name,
				'B' + j, bad);
			f.gen[j] = 0;	/* counted once; not rechecked */
		} else if (bad < 0) {
			fprintf(stderr, "  %s: reading file %c: %s\n", name, 'B' + j,
				strerror((int)-bad));
		}
	}
	kill(client, SIGKILL);
	int rc = t_wait(client, 20000);
	if (rc == T_SKIP)
		t_skip("io_uring cannot pin here");
	close(afd);

	/* what is on the device, through a fresh mount */
	t_remount(fm);
	for (int i = 0; i < NFILES; i++) {
		long bad = check_file(&f, i, false, &dma_bytes);
		if (bad) {
			corrupt++;
			fprintf(stderr, "  %s: file %c: %ld foreign bytes after remount\n", name,
				'B' + i, bad);
		}
	}
	printf("%s: %lu ops on A (%lu refused), %lu rewrites of B.., %lu in-run checks: "
	       "%ld corrupted file(s), %ld DMA-pattern bytes in other files\n",
	       name, ops[0], ops[1], writes, checks, corrupt, dma_bytes);
	free(f.buf);
	t_umount(fm);
	return corrupt;
}

int main(void)
{
	struct fsmount fm;
	struct io_uring probe;

	t_require_env();
	t_uring_init(&probe, 4);
	io_uring_queue_exit(&probe);

	long bad = run(&fm, "503", NULL);
	CHECK(bad == 0, "DMA landed in reused blocks of other files: %ld file(s)", bad);

	/* negative control: skip the wait, the same check must see corruption */
	long neg = 0;
	for (int attempt = 0; attempt < 3 && neg == 0; attempt++)
		neg = run(&fm, "503-unsafe", "dax_policy=unsafe");
	CHECK(neg > 0, "negative control: with dax_policy=unsafe the check found nothing, "
	      "so it cannot be trusted");
	return t_exit("dma_503");
}
