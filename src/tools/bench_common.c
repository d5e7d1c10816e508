// SPDX-License-Identifier: MIT
/*
 * bench_common.c - what every part of udaxctl bench truncate-dma uses
 * (bench_truncate.h): the options, the interrupt flag, the progress line,
 * the bell of the shared memory the processes meet in, and putting back
 * the blocks a truncate freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/util.h"
#include "bench_truncate.h"

struct opts O;
volatile sig_atomic_t interrupted;
static FILE *progress;

void prog_start(void)
{
	/* a progress line on stderr when it is a terminal; never on stdout */
	progress = isatty(2) || getenv("UDAX_BENCH_PROGRESS") ? stderr : NULL;
}

void prog(const char *fmt, ...)
{
	va_list ap;

	if (O.quiet || !progress)
		return;
	va_start(ap, fmt);
	fputc('\r', progress);
	vfprintf(progress, fmt, ap);
	fputs("\033[K", progress);
	fflush(progress);
	va_end(ap);
}

void prog_done(void)
{
	if (!O.quiet && progress) {
		fputs("\r\033[K", progress);
		fflush(progress);
	}
}

void bench_ring(struct bench_shm *shm)
{
	__atomic_add_fetch(&shm->bell, 1, __ATOMIC_SEQ_CST);
	fx_wake(&shm->bell);
}

int bench_wait(struct bench_shm *shm, bool (*cond)(void *arg), void *arg, uint64_t timeout_ns)
{
	uint64_t end = ctl_now_ns() + timeout_ns;

	for (;;) {
		uint32_t b = __atomic_load_n(&shm->bell, __ATOMIC_SEQ_CST);

		if (cond(arg))
			return 0;
		uint64_t now = ctl_now_ns();
		if (now >= end || interrupted)
			return interrupted ? -EINTR : -ETIMEDOUT;
		fx_wait(&shm->bell, b, dx_min(end - now, 100000000ull));
	}
}

/*
 * Bring back the blocks a truncate frees: fallocate (both udaxfs and
 * passthrough_ll over tmpfs allocate real blocks/pages), or write zeros
 * when a file system lacks fallocate.
 */
int refill(int fd, uint64_t size)
{
	static char zero[65536];

	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	for (uint64_t off = 0; off < size; off += sizeof(zero)) {
		size_t n = (size_t)dx_min(sizeof(zero), size - off);

		if (pwrite(fd, zero, n, (off_t)off) != (ssize_t)n)
			return -errno;
	}
	return 0;
}

uint64_t shrink_to(uint64_t size)
{
	return O.shrink_half ? UDAX_ALIGN_DOWN(size / 2, 4096) : 0;
}
