/* SPDX-License-Identifier: MIT */
/*
 * dma_coherence - data stored through a direct mapping is what read()
 * through the mount returns, and data written through the mount is what the
 * mapping shows; both survive a remount.  Also: a writable mapping past EOF
 * extends the file; a file that is not on udaxfs is refused with ENOTTY;
 * a child of fork() does not inherit the direct mapping (its copy would
 * outlive a recall and reach reused blocks).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define LEN (1u << 20)

static unsigned char pat(size_t i, unsigned int gen)
{
	return (unsigned char)((i / 4096) * 13 + (i % 251) + gen * 7 + 1);
}

static sigjmp_buf g_jb;
static void on_fault(int sig)
{
	(void)sig;
	siglongjmp(g_jb, 1);
}

static volatile unsigned char *g_child_p;

/* 0: the mapping faulted in the child (not inherited); 1: it was readable. */
static int child_touch(void *arg)
{
	(void)arg;
	struct sigaction sa = { .sa_handler = on_fault };
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	if (sigsetjmp(g_jb, 1) == 0) {
		unsigned char c = g_child_p[0];
		(void)c;
		return 1;
	}
	return 0;
}

int main(void)
{
	struct fsmount fm;
	struct udax_map *m = NULL;
	unsigned char *buf = malloc(LEN);
	int err;

	t_require_env();
	t_mount(&fm, "coh", 64u << 20, NULL);
	if (!buf)
		t_die("out of memory");

	/* not a udaxfs file */
	int other = open("/dev/shm", O_RDONLY | O_DIRECTORY);
	err = udax_map_open(&m, other, 0, 4096, PROT_READ, NULL);
	CHECK(err == -ENOTTY, "map of a /dev/shm directory: %d (%s)", err, udax_last_error());
	close(other);

	int fd = open(t_path(&fm, "a"), O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		t_die("open: %s", strerror(errno));

	/* 1: stores through the mapping, read() through the mount */
	err = udax_map_open(&m, fd, 0, LEN, PROT_READ | PROT_WRITE, NULL);
	if (err)
		t_die("udax_map_open: %d %s", err, udax_last_error());
	CHECK(udax_map_len(m) == LEN, "len %zu", udax_map_len(m));
	struct stat st;
	fstat(fd, &st);
	CHECK(st.st_size == LEN, "a writable mapping extends the file: size %lld",
	      (long long)st.st_size);
	unsigned char *p = udax_map_addr(m);
	for (size_t i = 0; i < LEN; i++)
		p[i] = pat(i, 1);
	CHECK(udax_persist(m, p, LEN) == 0, "persist: %s", udax_last_error());
	CHECK(udax_persist(m, p + LEN, 1) == -EINVAL, "persist outside the map is refused");
	memset(buf, 0, LEN);
	CHECK(pread(fd, buf, LEN, 0) == LEN, "pread: %s", strerror(errno));
	size_t bad = 0;
	for (size_t i = 0; i < LEN; i++)
		bad += buf[i] != pat(i, 1);
	CHECK(bad == 0, "%zu bytes read through the mount differ from the direct stores", bad);

	/* 2: write() through the mount, seen in the mapping (after fsync:
	 * write-back caching may hold it until then) */
	for (size_t i = 0; i < 65536; i++)
		buf[i] = pat(i, 2);
	CHECK(pwrite(fd, buf, 65536, 131072) == 65536, "pwrite: %s", strerror(errno));
	CHECK(fsync(fd) == 0, "fsync: %s", strerror(errno));
	bad = 0;
	for (size_t i = 0; i < 65536; i++)
		bad += p[131072 + i] != pat(i, 2);
	CHECK(bad == 0, "%zu bytes in the mapping differ from what write() stored", bad);
	g_child_p = p;
	CHECK(t_wait(t_fork(child_touch, NULL), 10000) == 0,
	      "a forked child can still reach the direct mapping");
	CHECK(udax_map_close(&m) == 0, "close: %s", udax_last_error());
	CHECK(m == NULL, "close clears the pointer");
	close(fd);

	/* 3: both survive a remount; a read-only mapping shows them */
	t_remount(&fm);
	fd = open(t_path(&fm, "a"), O_RDONLY);
	if (fd < 0)
		t_die("open after remount: %s", strerror(errno));
	err = udax_map_open(&m, fd, 0, LEN, PROT_READ, NULL);
	if (err)
		t_die("read-only udax_map_open: %d %s", err, udax_last_error());
	p = udax_map_addr(m);
	bad = 0;
	for (size_t i = 0; i < LEN; i++) {
		unsigned char want = i >= 131072 && i < 131072 + 65536 ? pat(i - 131072, 2) :
									 pat(i, 1);
		bad += p[i] != want;
	}
	CHECK(bad == 0, "%zu bytes differ after remount", bad);
	CHECK(pread(fd, buf, 4096, 0) == 4096 && buf[5] == pat(5, 1), "read after remount");
	udax_map_close(&m);
	close(fd);

	/*
	 * 4: a file written through the mount in pieces (holes between, the
	 * last piece far from the first) mapped afterwards: on a device with
	 * 2 MiB alignment its blocks are moved to one aligned run first
	 * (UDAX_TEST_EMUL_ALIGN=2M); the data, the holes and the size stay.
	 */
	fd = open(t_path(&fm, "pieces"), O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		t_die("open pieces: %s", strerror(errno));
	static const off_t piece[] = { 0, 8192, 1 << 20 };
	for (size_t k = 0; k < 3; k++) {
		for (size_t i = 0; i < 4096; i++)
			buf[i] = pat(i + k, 3);
		CHECK(pwrite(fd, buf, 4096, piece[k]) == 4096, "pwrite piece: %s", strerror(errno));
	}
	CHECK(fsync(fd) == 0, "fsync: %s", strerror(errno));
	err = udax_map_open(&m, fd, 0, 12288, PROT_READ | PROT_WRITE, NULL);
	if (err)
		t_die("udax_map_open of a file written in pieces: %d %s", err, udax_last_error());
	p = udax_map_addr(m);
	bad = 0;
	for (size_t i = 0; i < 4096; i++)
		bad += p[i] != pat(i, 3) || p[4096 + i] != 0 || p[8192 + i] != pat(i + 1, 3);
	CHECK(bad == 0, "%zu bytes of the pieces differ in the mapping", bad);
	udax_map_close(&m);
	fstat(fd, &st);
	CHECK(st.st_size == (1 << 20) + 4096, "mapping inside the file keeps its size: %lld",
	      (long long)st.st_size);
	CHECK(pread(fd, buf, 4096, 1 << 20) == 4096 && buf[7] == pat(7 + 2, 3),
	      "the last piece reads back");
	close(fd);
	t_remount(&fm);
	fd = open(t_path(&fm, "pieces"), O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, 4096, 8192) == 4096 && buf[9] == pat(9 + 1, 3),
	      "the pieces survive a remount");
	close(fd);

	/*
	 * 5: write() without fsync, then map: the grant writes back and drops
	 * the kernel's cached pages first, so the mapping shows them even
	 * with -o writeback_cache (tests/dma/writeback.sh), where they sit
	 * dirty in the kernel until then.  A mapping past EOF grows the file
	 * as the kernel sees it (fstat), which then owns the size.
	 */
	fd = open(t_path(&fm, "unsynced"), O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		t_die("open unsynced: %s", strerror(errno));
	for (size_t i = 0; i < 65536; i++)
		buf[i] = pat(i, 5);
	CHECK(pwrite(fd, buf, 65536, 0) == 65536, "pwrite: %s", strerror(errno));
	err = udax_map_open(&m, fd, 0, 131072, PROT_READ | PROT_WRITE, NULL);
	if (err)
		t_die("udax_map_open after an unsynced write: %d %s", err, udax_last_error());
	p = udax_map_addr(m);
	bad = 0;
	for (size_t i = 0; i < 65536; i++)
		bad += p[i] != pat(i, 5) || p[65536 + i] != 0;
	CHECK(bad == 0, "%zu bytes in the mapping differ from an unsynced write()", bad);
	fstat(fd, &st);
	CHECK(st.st_size == 131072, "the mapping grew the file as the kernel sees it: %lld",
	      (long long)st.st_size);
	for (size_t i = 0; i < 65536; i++)
		p[65536 + i] = pat(i, 6);
	CHECK(udax_persist(m, p + 65536, 65536) == 0, "persist: %s", udax_last_error());
	int fd2 = open(t_path(&fm, "unsynced"), O_RDONLY);
	CHECK(fd2 >= 0 && pread(fd2, buf, 131072, 0) == 131072, "pread 128 KiB: %s",
	      strerror(errno));
	bad = 0;
	for (size_t i = 0; i < 65536; i++)
		bad += buf[i] != pat(i, 5) || buf[65536 + i] != pat(i, 6);
	CHECK(bad == 0, "%zu bytes read through the mount differ from the direct stores", bad);
	if (fd2 >= 0)
		close(fd2);
	udax_map_close(&m);
	close(fd);

	/*
	 * 6: granting write access sets mtime and ctime, as a kernel DAX file
	 * system does on write faults: the client's stores tell nobody.  (With
	 * -o writeback_cache the kernel keeps its own times: not checked.)
	 */
	const char *mo = getenv("UDAX_TEST_MOUNT_OPTS");
	if (!mo || !strstr(mo, "writeback_cache")) {
		struct timespec past[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
		fd = open(t_path(&fm, "mtime"), O_RDWR | O_CREAT, 0644);
		CHECK(fd >= 0 && pwrite(fd, buf, 4096, 0) == 4096, "create mtime: %s",
		      strerror(errno));
		CHECK(futimens(fd, past) == 0, "futimens: %s", strerror(errno));
		fstat(fd, &st);
		CHECK(st.st_mtim.tv_sec == 1000000000, "mtime set to the past: %lld",
		      (long long)st.st_mtim.tv_sec);
		err = udax_map_open(&m, fd, 0, 4096, PROT_READ | PROT_WRITE, NULL);
		CHECK(err == 0, "map: %s", udax_last_error());
		fstat(fd, &st);
		CHECK(st.st_mtim.tv_sec > 1000000000 && st.st_ctim.tv_sec > 1000000000,
		      "a writable mapping sets mtime and ctime: %lld %lld",
		      (long long)st.st_mtim.tv_sec, (long long)st.st_ctim.tv_sec);
		udax_map_close(&m);
		close(fd);
	}
	free(buf);
	return t_exit("dma_coherence");
}
