/* SPDX-License-Identifier: MIT */
/*
 * preload_rw - read()/write() served from direct layouts (libudax-preload.so,
 * libudax's udax_file and udax_pread/udax_pwrite), checked against processes
 * that use the mount only.  Driven by tests/dma/preload_rw.sh.
 *
 *   preload_rw calls DIR        every interposed call, offsets, dup, fork,
 *                                O_APPEND from two processes, size/mtime,
 *                                read-only descriptor; a peer without the
 *                                shim checks the data
 *   preload_rw api DIR          libudax's udax_pread/udax_pwrite/udax_file_*
 *   preload_rw fsx FILE SEED N  random operations checked against a model;
 *                                prints a hash of the final file
 *   preload_rw stream F G SECS  direct writes to F while another process
 *                                truncates F and fills the freed blocks with
 *                                G: G must never change, the writer never fail
 *   preload_rw busy DIR         pread/pwrite fall back to the mount while
 *                                a recall of the file is under way (EBUSY)
 *   preload_rw coherence F N    N direct pwrite()s, each re-read by a reader
 *                                through the mount (opened before the grant):
 *                                exit 1 if it ever reads stale data
 *   preload_rw direct           exit 0 if this process maps the device
 *                                ($UDAX_TEST_DEV) now, i.e. I/O went direct
 *   preload_rw peer-check F OFF LEN SEED / peer-write F OFF LEN SEED
 *                                the mount-only side (run without the shim)
 * Exit: 0 pass, 1 fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <udax/udax.h>

#include "../harness.h"

static const char *self;

static unsigned char pat(uint64_t seed, uint64_t off)
{
	uint64_t x = (off / 8) * 0x9e3779b97f4a7c15ull ^ seed * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	return (unsigned char)(x >> (8 * (off % 8)));
}

static void fill(unsigned char *b, size_t n, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(seed, off + i);
}

static bool same(const unsigned char *b, size_t n, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(seed, off + i))
			return false;
	return true;
}

extern char **environ;

/* The environment without LD_PRELOAD: the peer uses the mount only. */
static char **clean_env(void)
{
	static char *env[256];
	int n = 0;
	for (char **e = environ; *e && n < 255; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			env[n++] = *e;
	env[n] = NULL;
	return env;
}

/* Run this program as the mount-only peer (no LD_PRELOAD). */
static int peer(const char *mode, const char *f, uint64_t off, size_t len, uint64_t seed)
{
	char a[32], b[32], c[32];
	snprintf(a, sizeof(a), "%" PRIu64, off);
	snprintf(b, sizeof(b), "%zu", len);
	snprintf(c, sizeof(c), "%" PRIu64, seed);
	/* posix_spawn runs no fork handlers: the shim keeps its descriptors unshared */
	pid_t p;
	char *av[] = { (char *)self, (char *)mode, (char *)f, a, b, c, NULL };
	if (posix_spawn(&p, self, NULL, NULL, av, clean_env()) != 0)
		return 127;
	int st;
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int peer_main(bool write_, const char *f, uint64_t off, size_t len, uint64_t seed)
{
	unsigned char *b = malloc(len);
	int fd = open(f, write_ ? O_WRONLY : O_RDONLY);
	if (!b || fd < 0)
		return 2;
	if (write_) {
		fill(b, len, seed, off);
		return pwrite(fd, b, len, (off_t)off) == (ssize_t)len ? 0 : 3;
	}
	if (pread(fd, b, len, (off_t)off) != (ssize_t)len)
		return 3;
	return same(b, len, seed, off) ? 0 : 1;
}

static bool maps_device(void)
{
	const char *dev = getenv("UDAX_TEST_DEV");
	char line[4096];
	bool yes = false;
	FILE *m = fopen("/proc/self/maps", "re");
	if (!dev || !m)
		return false;
	while (fgets(line, sizeof(line), m))
		if (strstr(line, dev))
			yes = true;
	fclose(m);
	return yes;
}

/* ---- calls ---- */

#define MB (1u << 20)

static void calls(const char *dir)
{
	char f[4096], g[4096];
	unsigned char *b = malloc(4 * MB), *c = malloc(4 * MB);
	snprintf(f, sizeof(f), "%s/calls", dir);
	snprintf(g, sizeof(g), "%s/append", dir);
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open %s: %s", f, strerror(errno));

	/* growth goes through the mount; the size is right at once */
	fill(b, 4 * MB, 1, 0);
	CHECK(write(fd, b, 4 * MB) == 4 * MB, "write 4 MiB: %s", strerror(errno));
	struct stat st;
	fstat(fd, &st);
	CHECK(st.st_size == 4 * MB, "size %lld after write, want 4 MiB", (long long)st.st_size);
	CHECK(lseek(fd, 0, SEEK_CUR) == 4 * MB, "offset after write");
	CHECK(peer("peer-check", f, 0, 4 * MB, 1) == 0, "peer sees the first write");

	/* pread/pwrite inside EOF: direct */
	fill(c, 8192, 2, 100000);
	CHECK(pwrite(fd, c, 8192, 100000) == 8192, "pwrite");
	CHECK(maps_device(), "the shim did not serve pwrite from a direct layout");
	CHECK(peer("peer-check", f, 100000, 8192, 2) == 0, "peer sees pwrite");
	CHECK(peer("peer-write", f, 200000, 12345, 3) == 0, "peer write");
	memset(c, 0, 12345);
	CHECK(pread(fd, c, 12345, 200000) == 12345 && same(c, 12345, 3, 200000),
	      "pread sees the peer's write");
	/* pread64/pwrite64 are the same symbols' 64-bit names */
	fill(c, 4096, 4, 300000);
	CHECK(pwrite64(fd, c, 4096, 300000) == 4096, "pwrite64");
	memset(c, 0, 4096);
	CHECK(pread64(fd, c, 4096, 300000) == 4096 && same(c, 4096, 4, 300000), "pread64");

	/* vectors */
	struct iovec v[3] = { { c, 1000 }, { c + 1000, 0 }, { c + 1000, 5000 } };
	fill(c, 6000, 5, 400000);
	CHECK(pwritev(fd, v, 3, 400000) == 6000, "pwritev");
	CHECK(peer("peer-check", f, 400000, 6000, 5) == 0, "peer sees pwritev");
	fill(c, 6000, 6, 500000);
	CHECK(pwritev2(fd, v, 3, 500000, RWF_DSYNC) == 6000, "pwritev2");
	CHECK(peer("peer-check", f, 500000, 6000, 6) == 0, "peer sees pwritev2");
	memset(c, 0, 6000);
	CHECK(preadv(fd, v, 3, 400000) == 6000 && same(c, 6000, 5, 400000), "preadv");
	memset(c, 0, 6000);
	CHECK(preadv2(fd, v, 3, 500000, 0) == 6000 && same(c, 6000, 6, 500000), "preadv2");

	/* the kernel's offset: read/write/readv/writev, dup shares it */
	CHECK(lseek(fd, 600000, SEEK_SET) == 600000, "lseek");
	fill(c, 3000, 7, 600000);
	CHECK(write(fd, c, 3000) == 3000, "write inside EOF");
	CHECK(lseek(fd, 0, SEEK_CUR) == 603000, "offset after write: %lld",
	      (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(peer("peer-check", f, 600000, 3000, 7) == 0, "peer sees write");
	int fd2 = dup(fd);
	fill(c, 2000, 8, 603000);
	CHECK(writev(fd2, v, 2) == 1000, "writev");
	CHECK(lseek(fd, 0, SEEK_CUR) == 604000, "dup shares the offset");
	CHECK(pwritev2(fd, v, 1, -1, 0) == 1000, "pwritev2 at the offset");
	CHECK(lseek(fd2, 0, SEEK_CUR) == 605000, "pwritev2(-1) moved the offset");
	CHECK(peer("peer-check", f, 603000, 1000, 8) == 0, "peer sees writev");
	lseek(fd, 600000, SEEK_SET);
	memset(c, 0, 3000);
	CHECK(read(fd2, c, 3000) == 3000 && same(c, 3000, 7, 600000), "read");
	CHECK(lseek(fd, 0, SEEK_CUR) == 603000, "offset after read");
	lseek(fd, 600000, SEEK_SET);
	CHECK(readv(fd, v, 1) == 1000 && same(c, 1000, 7, 600000), "readv");
	CHECK(preadv2(fd, v, 1, -1, 0) == 1000 && same(c, 1000, 7, 601000), "preadv2(-1)");
	CHECK(lseek(fd, 0, SEEK_CUR) == 602000, "offset after preadv2(-1)");
	close(fd2);

	/* reads at and past EOF */
	CHECK(pread(fd, c, 100, 4 * MB) == 0, "pread at EOF returns 0");
	CHECK(pread(fd, c, 100, 4 * MB - 10) == 10, "pread across EOF is short");

	/* writes past EOF extend; holes read zero */
	fill(c, 5000, 9, 6 * MB);
	CHECK(pwrite(fd, c, 5000, 6 * MB) == 5000, "pwrite past EOF");
	fstat(fd, &st);
	CHECK(st.st_size == 6 * MB + 5000, "size after pwrite past EOF: %lld",
	      (long long)st.st_size);
	CHECK(pread(fd, c, 4096, 5 * MB) == 4096, "pread the hole");
	bool zero = true;
	for (int i = 0; i < 4096; i++)
		zero &= c[i] == 0;
	CHECK(zero, "the hole reads zero");
	CHECK(peer("peer-check", f, 6 * MB, 5000, 9) == 0, "peer sees the extension");

	/* mtime: direct writes show by close at the latest */
	struct stat s0, s1;
	fstat(fd, &s0);
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	fill(c, 100, 10, 1000);
	CHECK(pwrite(fd, c, 100, 1000) == 100, "pwrite for mtime");
	CHECK(fsync(fd) == 0, "fsync");
	stat(f, &s1);
	CHECK(s1.st_mtim.tv_sec > s0.st_mtim.tv_sec ||
	      (s1.st_mtim.tv_sec == s0.st_mtim.tv_sec && s1.st_mtim.tv_nsec > s0.st_mtim.tv_nsec),
	      "mtime moved after a direct write and fsync");

	/* fork shares the offset: the child's read() moves the parent's */
	lseek(fd, 0, SEEK_SET);
	pid_t p = fork();
	if (p == 0) {
		unsigned char x[1000];
		_exit(read(fd, x, 1000) == 1000 && same(x, 1000, 1, 0) ? 0 : 1);
	}
	int wst;
	waitpid(p, &wst, 0);
	CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "child read");
	CHECK(lseek(fd, 0, SEEK_CUR) == 1000, "the child's read moved the shared offset: %lld",
	      (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(read(fd, c, 10) == 10 && same(c, 10, 10, 1000), "parent reads on after the child");
	close(fd);

	/* a read-only descriptor: reads direct, writes refused */
	int ro = open(f, O_RDONLY);
	CHECK(pread(ro, c, 8192, 100000) == 8192 && same(c, 8192, 2, 100000), "read-only pread");
	errno = 0;
	CHECK(pwrite(ro, c, 10, 0) == -1 && errno == EBADF, "pwrite on a read-only fd: EBADF");
	CHECK(peer("peer-check", f, 100000, 8192, 2) == 0, "the refused write changed nothing");
	close(ro);
	/* a write-only descriptor: writes direct, reads refused */
	int wo = open(f, O_WRONLY);
	fill(c, 4096, 15, 700000);
	CHECK(pwrite(wo, c, 4096, 700000) == 4096, "write-only pwrite");
	CHECK(peer("peer-check", f, 700000, 4096, 15) == 0, "peer sees the write-only pwrite");
	errno = 0;
	CHECK(pread(wo, c, 10, 0) == -1 && errno == EBADF, "pread on a write-only fd: EBADF");
	close(wo);

	/* O_APPEND from two processes at once: no record lost or torn */
	int a = open(g, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	close(a);
	enum { RECS = 500, RL = 64 };
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			int af = open(g, O_WRONLY | O_APPEND);
			char r[RL];
			for (int i = 0; i < RECS; i++) {
				memset(r, 'a' + k, RL);
				snprintf(r, RL, "%d:%d", k, i);
				if (write(af, r, RL) != RL)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		waitpid(kids[k], &wst, 0);
		CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "appender %d", k);
	}
	stat(g, &st);
	CHECK(st.st_size == 2 * RECS * RL, "O_APPEND size %lld, want %d", (long long)st.st_size,
	      2 * RECS * RL);
	int seen[2] = { 0, 0 };
	a = open(g, O_RDONLY);
	for (int i = 0; i < 2 * RECS; i++) {
		char r[RL];
		int k, n;
		if (read(a, r, RL) != RL || sscanf(r, "%d:%d", &k, &n) != 2 || k < 0 || k > 1 ||
		    r[RL - 1] != 'a' + k) {
			CHECK(0, "append record %d torn", i);
			break;
		}
		CHECK(n == seen[k], "appender %d record %d out of order (want %d)", k, n, seen[k]);
		seen[k] = n + 1;
	}
	close(a);
	free(b);
	free(c);
}

/* ---- libudax API ---- */

static void api(const char *dir)
{
	char f[4096];
	snprintf(f, sizeof(f), "%s/api", dir);
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	unsigned char *b = malloc(MB), *c = malloc(MB);
	fill(b, MB, 11, 0);
	CHECK(pwrite(fd, b, MB, 0) == MB, "fill");
	struct udax_map *m = NULL;
	int err = udax_map_open(&m, fd, 0, MB, PROT_READ | PROT_WRITE, NULL);
	CHECK(err == 0, "udax_map_open: %s", udax_last_error());
	if (err)
		return;
	CHECK(udax_pread(m, c, 100, MB - 50) == 50, "udax_pread is cut at the map's end");
	CHECK(udax_pread(m, c, 100, MB) == 0, "udax_pread at the map's end returns 0");
	CHECK(udax_pread(m, c, 100, MB + 1) == -EINVAL, "udax_pread outside: EINVAL");
	CHECK(udax_pread(m, c, 100, -1) == -EINVAL, "udax_pread negative: EINVAL");
	CHECK(udax_pread(NULL, c, 100, 0) == -EINVAL, "udax_pread NULL map: EINVAL");
	CHECK(udax_pread(m, c, 4096, 8192) == 4096 && same(c, 4096, 11, 8192), "udax_pread data");
	fill(c, 5000, 12, 70000);
	CHECK(udax_pwrite(m, c, 5000, 70000) == 5000, "udax_pwrite");
	CHECK(peer("peer-check", f, 70000, 5000, 12) == 0, "the mount sees udax_pwrite");
	udax_map_close(&m);
	/* read-only map */
	err = udax_map_open(&m, fd, 0, MB, PROT_READ, NULL);
	CHECK(err == 0, "read-only udax_map_open: %s", udax_last_error());
	if (!err) {
		CHECK(udax_pwrite(m, c, 10, 0) == -EBADF, "udax_pwrite on a read-only map: EBADF");
		udax_map_close(&m);
	}
	/* recalled: ESTALE */
	err = udax_map_open(&m, fd, 0, MB, PROT_READ | PROT_WRITE, NULL);
	if (!err) {
		CHECK(peer("peer-trunc", f, 0, 0, 0) == 0, "peer truncate");
		for (int i = 0; i < 500 && !udax_map_recalled(m); i++)
			usleep(2000);
		CHECK(udax_map_recalled(m), "truncate recalled the map");
		CHECK(udax_pread(m, c, 10, 0) == -ESTALE, "udax_pread after a recall: ESTALE");
		CHECK(udax_pwrite(m, c, 10, 0) == -ESTALE, "udax_pwrite after a recall: ESTALE");
		udax_map_close(&m);
	}
	/* udax_file: direct inside EOF, the mount past it */
	CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, b, MB, 0) == MB, "refill");
	struct udax_file *uf = NULL;
	CHECK(udax_file_open(&uf, fd, 1) == -EINVAL, "udax_file_open bad flags: EINVAL");
	CHECK(udax_file_open(&uf, -1, 0) == -EBADF, "udax_file_open bad fd: EBADF");
	CHECK(udax_file_open(&uf, fd, 0) == 0, "udax_file_open: %s", udax_last_error());
	CHECK(udax_file_pread(uf, c, MB, 0) == MB && same(c, MB, 11, 0), "udax_file_pread");
	fill(c, 3000, 13, 500000);
	CHECK(udax_file_pwrite(uf, c, 3000, 500000) == 3000, "udax_file_pwrite inside");
	CHECK(peer("peer-check", f, 500000, 3000, 13) == 0, "the mount sees udax_file_pwrite");
	fill(c, 3000, 14, MB + 10);
	CHECK(udax_file_pwrite(uf, c, 3000, MB + 10) == 3000, "udax_file_pwrite past EOF");
	struct stat st;
	fstat(fd, &st);
	CHECK(st.st_size == MB + 3010, "size after udax_file_pwrite past EOF: %lld",
	      (long long)st.st_size);
	CHECK(udax_file_pread(uf, c, 5000, MB + 10) == 3000 && same(c, 3000, 14, MB + 10),
	      "udax_file_pread of the grown part (through the mount)");
	CHECK(udax_file_pread(uf, c, 10, MB + 3010) == 0, "udax_file_pread at EOF: 0");
	CHECK(udax_file_sync(uf) == 0, "udax_file_sync");
	CHECK(udax_file_close(&uf) == 0 && !uf, "udax_file_close");
	CHECK(udax_file_close(NULL) == 0, "udax_file_close(NULL)");
	close(fd);
	free(b);
	free(c);
}

/* ---- fsx ---- */

static uint64_t rng_s;
static uint64_t rnd(void)
{
	rng_s ^= rng_s << 13;
	rng_s ^= rng_s >> 7;
	rng_s ^= rng_s << 17;
	return rng_s;
}

static int fsx(const char *f, uint64_t seed, int nops)
{
	const size_t MAXSZ = 8 * MB;
	unsigned char *model = calloc(1, MAXSZ), *buf = malloc(MAXSZ);
	size_t size = 0;
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !model || !buf)
		return 1;
	rng_s = seed * 0x9e3779b97f4a7c15ull + 1;
	bool direct = false;
	for (int op = 0; op < nops && !t_failures; op++) {
		if (op % 50 == 49 && !direct)
			direct = maps_device();
		int kind = (int)(rnd() % 10);
		uint64_t off = rnd() % (MAXSZ / 2);
		size_t len = 1 + rnd() % (rnd() % 4 ? 8192 : 512 * 1024);
		if (off + len > MAXSZ)
			len = MAXSZ - off;
		switch (kind) {
		case 0: case 1: case 2: {	/* pwrite, often inside EOF */
			if (size && rnd() % 2)
				off = rnd() % size;
			if (off + len > MAXSZ)
				len = MAXSZ - off;
			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)rnd();
			CHECK(pwrite(fd, buf, len, (off_t)off) == (ssize_t)len, "op %d pwrite", op);
			memcpy(model + off, buf, len);
			if (off + len > size)
				size = off + len;
			break;
		}
		case 3: case 4: {		/* pread */
			if (size && rnd() % 4)
				off = rnd() % size;
			ssize_t want = off >= size ? 0 : (ssize_t)(off + len > size ? size - off : len);
			ssize_t r = pread(fd, buf, len, (off_t)off);
			CHECK(r == want, "op %d pread %zu@%" PRIu64 ": %zd want %zd", op, len, off, r, want);
			CHECK(r <= 0 || memcmp(buf, model + off, (size_t)r) == 0,
			      "op %d pread %zu@%" PRIu64 ": data differs", op, len, off);
			break;
		}
		case 5: {			/* read/write at the offset */
			if (size)
				off = rnd() % size;
			lseek(fd, (off_t)off, SEEK_SET);
			if (rnd() % 2) {
				ssize_t want = off >= size ? 0 :
					       off + len > size ? (ssize_t)(size - off) : (ssize_t)len;
				ssize_t r = read(fd, buf, len);
				CHECK(r == want && memcmp(buf, model + off, (size_t)(r > 0 ? r : 0)) == 0,
				      "op %d read", op);
				CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)(off + (size_t)(r > 0 ? r : 0)),
				      "op %d offset after read", op);
			} else {
				for (size_t i = 0; i < len; i++)
					buf[i] = (unsigned char)rnd();
				CHECK(write(fd, buf, len) == (ssize_t)len, "op %d write", op);
				memcpy(model + off, buf, len);
				if (off + len > size)
					size = off + len;
			}
			break;
		}
		case 6: {			/* truncate */
			size_t ns = rnd() % (MAXSZ / 2);
			CHECK(ftruncate(fd, (off_t)ns) == 0, "op %d ftruncate", op);
			if (ns < size)
				memset(model + ns, 0, size - ns);
			size = ns;
			break;
		}
		case 7: {			/* punch hole / zero range */
			if (!size)
				break;
			off = rnd() % size;
			if (off + len > size)
				len = size - off;
			int mode = rnd() % 2 ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
					       FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
			CHECK(fallocate(fd, mode, (off_t)off, (off_t)len) == 0, "op %d fallocate %#x: %s",
			      op, mode, strerror(errno));
			memset(model + off, 0, len);
			break;
		}
		case 8: {			/* mapped write */
			if (size < 8192)
				break;
			size_t ml = size & ~(size_t)4095;
			unsigned char *p = mmap(NULL, ml, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			CHECK(p != MAP_FAILED, "op %d mmap: %s", op, strerror(errno));
			if (p == MAP_FAILED)
				break;
			off = rnd() % ml;
			if (off + len > ml)
				len = ml - off;
			for (size_t i = 0; i < len; i++)
				p[off + i] = model[off + i] = (unsigned char)rnd();
			CHECK(memcmp(p, model, ml) == 0, "op %d mapping differs from the model", op);
			msync(p, ml, MS_SYNC);
			munmap(p, ml);
			break;
		}
		case 9: {			/* fstat */
			struct stat st;
			fstat(fd, &st);
			CHECK((size_t)st.st_size == size, "op %d size %lld want %zu", op,
			      (long long)st.st_size, size);
			break;
		}
		}
	}
	/* did any of it go direct?  (the shell checks this for the shim's runs) */
	fprintf(stderr, "fsx: direct layouts %s\n", direct || maps_device() ? "used" : "not used");
	/* the whole file, through a fresh descriptor */
	close(fd);
	fd = open(f, O_RDONLY);
	ssize_t r = pread(fd, buf, MAXSZ, 0);
	CHECK(r == (ssize_t)size && memcmp(buf, model, size) == 0, "final content differs");
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < size; i++)
		h = (h ^ model[i]) * 1099511628211ull;
	printf("%zu %016" PRIx64 "\n", size, h);
	close(fd);
	return t_failures ? T_FAIL : T_PASS;
}

/* ---- page-cache coherence with a reader through the mount ---- */

/*
 * The reader: a process without the shim whose descriptor was opened
 * before the writer's writable layout was granted, so the kernel caches
 * what it reads.  Per round: wait for the writer's "w", pread the range,
 * answer "y" (the round's data) or "n" (anything else: a stale page).
 */
static int reader_main(const char *f, uint64_t off, size_t len)
{
	unsigned char *b = malloc(len);
	int fd = open(f, O_RDONLY);
	char c = 'o';
	if (!b || fd < 0 || write(4, &c, 1) != 1)
		return 2;
	for (uint64_t round = 0; read(3, &c, 1) == 1 && c == 'w'; round++) {
		if (pread(fd, b, len, (off_t)off) != (ssize_t)len)
			return 3;
		c = same(b, len, 100 + round, off) ? 'y' : 'n';
		if (write(4, &c, 1) != 1)
			return 2;
	}
	return 0;
}

/*
 * Direct pwrite()s under the shim while a reader through the mount re-reads
 * the range after each: every re-read must see the write that returned
 * before it.  Prints the number of stale rounds; exit 0 when none.
 */
static int coherence(const char *f, int rounds)
{
	const uint64_t off = 128 * 1024;
	const size_t len = 64 * 1024;
	unsigned char *b = malloc(len);
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !b || ftruncate(fd, 4 * MB) < 0)
		return 2;
	int to[2], from[2];
	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return 2;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, to[0], 3);
	posix_spawn_file_actions_adddup2(&fa, from[1], 4);
	char a[32], l[32];
	snprintf(a, sizeof(a), "%" PRIu64, off);
	snprintf(l, sizeof(l), "%zu", len);
	char *av[] = { (char *)self, "reader", (char *)f, a, l, NULL };
	pid_t p;
	if (posix_spawn(&p, self, &fa, NULL, av, clean_env()) != 0)
		return 2;
	close(to[0]);
	close(from[1]);
	char c;
	if (read(from[0], &c, 1) != 1 || c != 'o')
		return 2;	/* the reader has its descriptor: opened before any grant */
	int stale = 0, direct = 0;
	for (int r = 0; r < rounds; r++) {
		fill(b, len, 100 + (uint64_t)r, off);
		if (pwrite(fd, b, len, (off_t)off) != (ssize_t)len)
			return 2;
		direct += maps_device();
		c = 'w';
		if (write(to[1], &c, 1) != 1 || read(from[0], &c, 1) != 1)
			return 2;
		if (c != 'y') {
			stale++;
			fprintf(stderr, "round %d: the reader through the mount read stale data\n", r);
		}
	}
	close(to[1]);
	int st;
	waitpid(p, &st, 0);
	printf("coherence: %d rounds, %d direct, %d stale\n", rounds, direct, stale);
	if (direct != rounds) {
		fprintf(stderr, "FAIL: the writes did not all go direct: the test proves nothing\n");
		return 2;
	}
	return stale ? 1 : 0;
}

/* ---- fallback while a recall is under way (the daemon answers EBUSY) ---- */

struct busy_io {
	int fd;
	bool wr;
	uint64_t off, seed;
	size_t len;
	ssize_t r;
	bool data_ok;
	_Atomic pid_t tid;
	atomic_bool done;
};

static void *busy_io_main(void *arg)
{
	struct busy_io *a = arg;
	unsigned char *b = NULL;
	a->tid = gettid();
	if (posix_memalign((void **)&b, 4096, a->len))
		return NULL;
	if (a->wr) {
		fill(b, a->len, a->seed, a->off);
		a->r = pwrite(a->fd, b, a->len, (off_t)a->off);
	} else {
		a->r = pread(a->fd, b, a->len, (off_t)a->off);
		a->data_ok = a->r == (ssize_t)a->len && same(b, a->len, a->seed, a->off);
	}
	free(b);
	a->done = true;
	return NULL;
}

struct punch {
	int fd;
	off_t off;
	int rc;
};

static void *punch_main(void *arg)
{
	struct punch *p = arg;
	p->rc = fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, p->off, 4096);
	return NULL;
}

/* The system call thread @tid is blocked in, or -1 (running, or unreadable). */
static long task_syscall(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	FILE *f = fopen(path, "re");
	long nr = -1;
	if (f && fgets(line, sizeof(line), f) && line[0] >= '0' && line[0] <= '9')
		nr = strtol(line, NULL, 10);
	if (f)
		fclose(f);
	return nr;
}

/*
 * Under the shim: a process holds a layout of the file and does not answer
 * its recall yet, so a punch through the mount waits with the file's recall
 * under way, and every grant for the file is refused with EBUSY.  A pread()
 * (then a pwrite()) in another thread must fall back to the mount: it is
 * seen inside the kernel's pread64/pwrite64 (the direct path makes no such
 * call) while the recall is pending, and returns whole, with the right
 * data, once the holder answers.  Negative control: UDAX_TEST_BUSY_FAILS=1
 * (the call fails with EBUSY instead of falling back) must fail this.  Control: with no recall the same call
 * goes direct (the device becomes mapped).
 */
static void busy(const char *dir)
{
	const uint64_t off = 4 * MB;
	const size_t len = 64 * 1024, SZ = 8 * MB;
	char f[4096];
	snprintf(f, sizeof(f), "%s/busy", dir);
	unsigned char *b = malloc(SZ);
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && b, "open %s", f);
	if (fd < 0 || !b)
		return;
	fill(b, SZ, 30, 0);
	CHECK(pwrite(fd, b, SZ, 0) == (ssize_t)SZ, "fill (through the mount: it grows the file)");
	for (int cycle = 0; cycle < 2 && !t_failures; cycle++) {
		bool wr = cycle == 1;
		CHECK(!maps_device(), "cycle %d: a direct mapping before the test", cycle);
		struct udax_map *m = NULL;
		struct udax_map_opts o = { .flags = UDAX_MAP_RECALL_FD };
		int err = udax_map_open(&m, fd, 0, 2 * MB, PROT_READ, &o);
		CHECK(err == 0, "the holder's udax_map_open: %s", udax_last_error());
		if (err)
			return;
		struct punch pu = { fd, (off_t)cycle * 4096, -1 };
		pthread_t pt, at;
		pthread_create(&pt, NULL, punch_main, &pu);
		struct pollfd pfd = { udax_recall_fd(m), POLLIN, 0 };
		CHECK(poll(&pfd, 1, 120000) == 1, "the punch never recalled the holder's layout");
		/*
		 * O_DIRECT: the mount's answer comes from the daemon, never
		 * from the kernel's cache, so the fallback call waits for the
		 * punch and is seen inside the kernel's call.
		 */
		int dfd = open(f, O_RDWR | O_DIRECT);
		CHECK(dfd >= 0, "open O_DIRECT: %s", strerror(errno));
		struct busy_io a = { .fd = dfd, .wr = wr, .off = off, .len = len,
				     .seed = wr ? 31 : 30, .r = -2 };
		pthread_create(&at, NULL, busy_io_main, &a);
		/* a bound only so that a broken fallback fails instead of hanging */
		long want = wr ? SYS_pwrite64 : SYS_pread64, nr = -1;
		for (int i = 0; i < 120000; i++) {
			if (a.tid && (nr = task_syscall(a.tid)) == want)
				break;
			if (a.done)
				break;	/* returned without the mount */
			usleep(1000);
		}
		CHECK(nr == want, "cycle %d: the %s under the shim did not fall back to the mount "
		      "while the recall was under way (thread in syscall %ld)", cycle,
		      wr ? "pwrite" : "pread", nr);
		CHECK(udax_recall_process(m) == 1, "the holder answers its recall");
		pthread_join(pt, NULL);
		pthread_join(at, NULL);
		CHECK(pu.rc == 0, "punch: %s", strerror(errno));
		udax_map_close(&m);
		CHECK(a.r == (ssize_t)len, "cycle %d: the fallback %s returned %zd, want %zu", cycle,
		      wr ? "pwrite" : "pread", a.r, len);
		if (wr)
			CHECK(peer("peer-check", f, off, len, 31) == 0,
			      "the mount does not show the fallback pwrite's data");
		else
			CHECK(a.data_ok, "the fallback pread returned wrong data");
		/* control: nothing under way, the same call goes direct */
		CHECK(!maps_device(), "cycle %d: the fallback left a direct mapping", cycle);
		/* a fresh descriptor: dfd's file waits out the EBUSY back-off */
		int cfd = open(f, O_RDWR | O_DIRECT);
		struct busy_io c = { .fd = cfd, .wr = wr, .off = off, .len = len,
				     .seed = wr ? 32 : 30 };
		busy_io_main(&c);
		CHECK(c.r == (ssize_t)len && (wr || c.data_ok), "cycle %d: control %s", cycle,
		      wr ? "pwrite" : "pread");
		CHECK(maps_device(), "cycle %d: control: with no recall the call did not go direct",
		      cycle);
		if (wr)
			CHECK(peer("peer-check", f, off, len, 32) == 0, "the mount does not show the "
			      "direct pwrite's data");
		/* the punched block reads zero; what was not punched is intact */
		unsigned char z[4096];
		CHECK(peer("peer-check", f, 8192, 4096, 30) == 0, "data outside the punch");
		CHECK(pread(fd, z, 4096, cycle * 4096) == 4096, "read the punched block");
		bool zero = true;
		for (int i = 0; i < 4096; i++)
			zero &= z[i] == 0;
		CHECK(zero, "cycle %d: the punched block does not read zero", cycle);
		/* give the shim's windows back: the next cycle starts unmapped */
		close(cfd);
		close(dfd);
		close(fd);
		fd = open(f, O_RDWR);
	}
	close(fd);
	free(b);
}

/* ---- recall during a stream of direct writes ---- */

static int stream(const char *f, const char *g, int secs)
{
	const size_t SZ = 16 * MB, CH = MB;
	unsigned char *b = malloc(CH);
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !b)
		return 1;
	memset(b, 'F', CH);
	for (size_t o = 0; o < SZ; o += CH)
		if (pwrite(fd, b, CH, (off_t)o) != (ssize_t)CH)
			return 1;
	/* the truncator: a process that uses the mount only */
	pid_t t;
	char s[16];
	snprintf(s, sizeof(s), "%d", secs);
	char *av[] = { (char *)self, "truncator", (char *)f, (char *)g, s, NULL };
	if (posix_spawn(&t, self, NULL, NULL, av, clean_env()) != 0)
		return 1;
	/* the writer: 1 MiB direct writes, as long as the truncator runs */
	uint64_t n = 0, direct_seen = 0;
	int st;
	while (waitpid(t, &st, WNOHANG) == 0) {
		off_t o = (off_t)((n++ % (SZ / CH)) * CH);
		ssize_t r = pwrite(fd, b, CH, o);
		if (r != (ssize_t)CH) {
			fprintf(stderr, "FAIL: writer pwrite at %lld: %zd (%s)\n", (long long)o, r,
				strerror(errno));
			kill(t, SIGKILL);
			return 1;
		}
		if ((n & 3) == 0 && maps_device())
			direct_seen++;
	}
	printf("writer: %" PRIu64 " writes, direct seen %" PRIu64 " times\n", n, direct_seen);
	if (!direct_seen) {
		fprintf(stderr, "FAIL: the writes never went direct: the test proves nothing\n");
		return 1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* Truncate F, fill the freed space with G, check G stays G; grow F back. */
static int truncator(const char *f, const char *g, int secs)
{
	const size_t SZ = 16 * MB;
	unsigned char *b = malloc(SZ), *c = malloc(SZ);
	memset(b, 'G', SZ);
	time_t end = time(NULL) + secs;
	int cycles = 0, bad = 0;
	while (time(NULL) < end && !bad) {
		int fd = open(f, O_RDWR);
		if (fd < 0 || ftruncate(fd, 0) < 0)
			return 2;
		int gd = open(g, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (gd < 0 || pwrite(gd, b, SZ, 0) != (ssize_t)SZ)
			return 2;
		usleep(2000);	/* the writer keeps writing meanwhile */
		if (pread(gd, c, SZ, 0) != (ssize_t)SZ)
			return 2;
		for (size_t i = 0; i < SZ; i++)
			if (c[i] != 'G') {
				fprintf(stderr, "FAIL: cycle %d: the refilled file changed at %zu "
					"('%c'): a write landed after its recall was answered\n",
					cycles, i, c[i]);
				bad = 1;
				break;
			}
		close(gd);
		unlink(g);
		if (ftruncate(fd, (off_t)SZ) < 0)
			return 2;
		close(fd);
		cycles++;
		usleep(1000);
	}
	printf("truncator: %d cycles\n", cycles);
	return bad;
}

int main(int argc, char **argv)
{
	self = argv[0];
	if (argc >= 2 && !strcmp(argv[1], "direct"))
		return maps_device() ? 0 : 1;
	if (argc == 6 && !strcmp(argv[1], "peer-check"))
		return peer_main(false, argv[2], strtoull(argv[3], 0, 0), strtoul(argv[4], 0, 0),
				 strtoull(argv[5], 0, 0));
	if (argc == 6 && !strcmp(argv[1], "peer-write"))
		return peer_main(true, argv[2], strtoull(argv[3], 0, 0), strtoul(argv[4], 0, 0),
				 strtoull(argv[5], 0, 0));
	if (argc == 6 && !strcmp(argv[1], "peer-trunc"))
		return truncate(argv[2], 0) == 0 ? 0 : 1;
	if (argc == 3 && !strcmp(argv[1], "calls")) {
		calls(argv[2]);
		return t_failures ? T_FAIL : T_PASS;
	}
	if (argc == 3 && !strcmp(argv[1], "api")) {
		api(argv[2]);
		return t_failures ? T_FAIL : T_PASS;
	}
	if (argc == 5 && !strcmp(argv[1], "fsx"))
		return fsx(argv[2], strtoull(argv[3], 0, 0), atoi(argv[4]));
	if (argc == 3 && !strcmp(argv[1], "busy")) {
		busy(argv[2]);
		return t_failures ? T_FAIL : T_PASS;
	}
	if (argc == 4 && !strcmp(argv[1], "coherence"))
		return coherence(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "reader"))
		return reader_main(argv[2], strtoull(argv[3], 0, 0), strtoul(argv[4], 0, 0));
	if (argc == 5 && !strcmp(argv[1], "stream"))
		return stream(argv[2], argv[3], atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "truncator"))
		return truncator(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "Usage: %s calls DIR | api DIR | fsx FILE SEED N | stream F G SECS | "
		"direct | peer-check|peer-write|peer-trunc F OFF LEN SEED\n", argv[0]);
	return 1;
}
