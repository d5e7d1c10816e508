// SPDX-License-Identifier: MIT
/*
 * preload_semantics - the LD_PRELOAD shim's documented decisions, checked
 * on a udaxfs file (run under LD_PRELOAD=libudax-preload.so):
 *  - MAP_SHARED_VALIDATE|MAP_SYNC succeeds (FUSE alone refuses it);
 *  - stores + msync() read back through the mount with read();
 *  - pages wholly past EOF raise SIGBUS, the page holding EOF does not;
 *  - a partial munmap leaves the rest usable; the unmapped part faults;
 *  - mremap cannot grow a direct mapping (ENOMEM) but can shrink it;
 *  - a read-only descriptor cannot get a writable shared mapping (EACCES).
 *   preload_semantics FILE      (FILE is created/truncated)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

static sigjmp_buf jb;
static volatile int last_sig;

static void on_fault(int sig)
{
	last_sig = sig;
	siglongjmp(jb, 1);
}

/* Touch *p; return the signal it raised, or 0. */
static int touch(volatile char *p)
{
	last_sig = 0;
	if (sigsetjmp(jb, 1) == 0)
		(void)*p;
	return last_sig;
}

int main(int argc, char **argv)
{
	long pg = sysconf(_SC_PAGESIZE);
	char buf[64];
	int fd;

	if (argc != 2) {
		fprintf(stderr, "Usage: %s FILE\n", argv[0]);
		return 2;
	}
	signal(SIGBUS, on_fault);
	signal(SIGSEGV, on_fault);
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 4 * pg + pg / 2) < 0) {
		perror(argv[1]);
		return 1;
	}
	/* 8 pages over a 4.5-page file */
	char *p = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	CHECK(p != MAP_FAILED, "MAP_SHARED_VALIDATE|MAP_SYNC mapping (%s)",
	      p == MAP_FAILED ? strerror(errno) : "granted");
	if (p == MAP_FAILED)
		return 1;
	memcpy(p + 3 * pg + 100, "through the mapping", 20);
	CHECK(msync(p, 5 * pg, MS_SYNC) == 0, "msync");
	CHECK(pread(fd, buf, 20, 3 * pg + 100) == 20 && !memcmp(buf, "through the mapping", 20),
	      "read() sees the stored bytes");
	CHECK(touch(p + 4 * pg + 10) == 0, "the page holding EOF is accessible");
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == 4 * pg + pg / 2,
	      "mapping does not change the file size (%lld)", (long long)st.st_size);
	CHECK(touch(p + 5 * pg) == SIGBUS, "a page wholly past EOF raises SIGBUS");
	CHECK(mremap(p, 8 * pg, 16 * pg, 0) == MAP_FAILED && errno == ENOMEM,
	      "mremap cannot grow it (ENOMEM)");
	CHECK(mremap(p, 8 * pg, 6 * pg, 0) == p, "mremap shrinks it in place");
	CHECK(munmap(p + pg, pg) == 0, "partial munmap");
	CHECK(touch(p + pg) == SIGSEGV, "the unmapped page faults (SIGSEGV)");
	CHECK(touch(p) == 0 && touch(p + 2 * pg) == 0, "the rest stays usable");
	CHECK(munmap(p, 6 * pg) == 0, "munmap of the rest");

	int ro = open(argv[1], O_RDONLY);
	void *q = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
	CHECK(q == MAP_FAILED && errno == EACCES, "writable mapping of a read-only descriptor: EACCES");
	q = mmap(NULL, pg, PROT_READ, MAP_SHARED, ro, 0);
	CHECK(q != MAP_FAILED && ((char *)q)[3 * 0] == 0, "read-only mapping of it");
	if (q != MAP_FAILED)
		munmap(q, pg);
	close(ro);
	close(fd);
	return t_exit("preload_semantics");
}
