/* SPDX-License-Identifier: MIT */
/*
 * shim-memory DIR N [DAEMON_PID|- [ROUNDS]] - the memory read()/write() from direct
 * layouts costs, per open file and per layout, run under
 * LD_PRELOAD=libudax-preload.so on a udaxfs directory.
 *
 * Makes N files of 64 KiB in DIR, then prints this process's RssAnon
 * (its heap: the device pages it maps are shared memory, not counted) and
 * the daemon's, at each step, with the growth per file from the step
 * before:
 *   open      N descriptors open, no I/O yet (the shim looks at a
 *             descriptor at its first call);
 *   read      one 4 KiB pread on each: the shim's per-file state and a
 *             read-only layout (a window) per file;
 *   write     one 4 KiB pwrite on each: the window reopened writable;
 *   closed    all closed (the first 200 timed: the daemon's cost of a
 *             layout given back grows with the descriptors the process
 *             holds).  The heap keeps what was freed for reuse, so RssAnon
 *             does not fall here: with ROUNDS > 1 the same is done again,
 *             and a round after the first grows only by what leaked.
 * Also the number of shared mappings (the layouts' device pages) per step.  Not a
 * test: contrib/bench/shim-memory.sh runs it; it asserts nothing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CLOSE_TIMED 200

static long field(const char *path, const char *key)
{
	char line[256];
	long v = -1;
	size_t kl = strlen(key);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* Shared mappings: the device pages of the layouts (and the C library's few) */
static long nmaps(void)
{
	char line[512], perm[8];
	long n = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		n += sscanf(line, "%*s %7s", perm) == 1 && perm[3] == 's';
	if (f)
		fclose(f);
	return n;
}

static long last_self = -1, last_d = -1;
static char dstat[64];

static void step(const char *name, long n)
{
	long s = field("/proc/self/status", "RssAnon"), d = *dstat ? field(dstat, "RssAnon") : -1;
	printf("%-8s client RssAnon %8ld KiB", name, s);
	if (last_self >= 0)
		printf(" (%+7.0f B/file)", (double)(s - last_self) * 1024 / (double)n);
	if (d >= 0) {
		printf("   daemon RssAnon %8ld KiB", d);
		if (last_d >= 0)
			printf(" (%+7.0f B/file)", (double)(d - last_d) * 1024 / (double)n);
	}
	printf("   shared maps %ld\n", nmaps());
	fflush(stdout);
	last_self = s;
	last_d = d;
}

/* Open all, read each, write each, close (the first CLOSE_TIMED timed).  Return: 0, 1. */
static int one_round(const char *dir, int *fds, long n)
{
	static char buf[4096];
	char path[4096];

	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		fds[i] = open(path, O_RDWR);
		if (fds[i] < 0) {
			fprintf(stderr, "open %s (file %ld): %m\n", path, i);
			return 1;
		}
	}
	step("open", n);
	for (long i = 0; i < n; i++)
		if (pread(fds[i], buf, 4096, 4096) != 4096) {
			fprintf(stderr, "pread file %ld: %m\n", i);
			return 1;
		}
	step("read", n);
	for (long i = 0; i < n; i++)
		if (pwrite(fds[i], buf, 4096, 8192) != 4096) {
			fprintf(stderr, "pwrite file %ld: %m\n", i);
			return 1;
		}
	step("write", n);
	/*
	 * Closing gives each layout back; the daemon's cost per return grows
	 * with the descriptors the process holds (it reads /proc/PID/fd to
	 * find io_uring rings), so only the first CLOSE_TIMED are closed and
	 * timed one by one, then the rest.
	 */
	long nc = n < CLOSE_TIMED ? n : CLOSE_TIMED;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < nc; i++)
		close(fds[i]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("close    %.2f ms per file, %ld files closed with %ld open\n",
	       ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
	       (double)nc, nc, n);
	for (long i = nc; i < n; i++)
		close(fds[i]);
	step("closed", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "Usage: shim-memory DIR N [DAEMON_PID|- [ROUNDS]]\n");
		return 2;
	}
	const char *dir = argv[1];
	long n = strtol(argv[2], NULL, 10);
	int rounds = argc > 4 ? atoi(argv[4]) : 1;
	if (argc > 3 && strcmp(argv[3], "-") != 0)
		snprintf(dstat, sizeof(dstat), "/proc/%s/status", argv[3]);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	static char buf[64 << 10];
	char path[4096];
	memset(buf, 'x', sizeof(buf));
	int *fds = calloc((size_t)n, sizeof(*fds));
	if (!fds)
		return 1;
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || close(fd)) {
			perror(path);
			return 1;
		}
	}
	/* a warm-up file: the shim's and libudax's one-time state exists before the baseline */
	snprintf(path, sizeof(path), "%s/f0", dir);
	int w = open(path, O_RDWR);
	if (w < 0 || pread(w, buf, 4096, 4096) != 4096 || pwrite(w, buf, 4096, 4096) != 4096) {
		perror("warm-up");
		return 1;
	}
	close(w);
	step("start", n);
	for (int r = 1; r <= rounds; r++) {
		if (rounds > 1)
			printf("round %d\n", r);
		if (one_round(dir, fds, n))
			return 1;
	}
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		unlink(path);
	}
	free(fds);
	return 0;
}
