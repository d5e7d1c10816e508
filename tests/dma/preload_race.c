// SPDX-License-Identifier: MIT
/*
 * preload_race - a recall that arrives right behind the MAP reply of a
 * mapping the preload shim is making must still tear that mapping down
 * before the blocks are freed (run under LD_PRELOAD=libudax-preload.so by
 * preload_race.sh).
 *
 *   preload_race MOUNTDIR
 *
 * The shim stalls between the MAP reply and registering the layout
 * (UDAX_PRELOAD_TEST_MAP_DELAY_MS, set by the script).  Meanwhile a child
 * waits until the daemon shows the layout, truncates the file (its recall
 * reaches the shim during the stall), refills the freed blocks with a
 * second file of 0x55 and tells the parent, which then stores 0xAA
 * through every page of its mapping.  The child finally reads the second
 * file through its own direct mapping.  The device is filled first, so the
 * second file can only get the truncated file's blocks.
 *
 * Exit: 0 the second file is intact and every store faulted (SIGBUS); 2
 * the second file was corrupted by the stores (what the negative control,
 * UDAX_TEST_DROP_ORPHANS=1, must show); 1 anything else; 77 skip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/status.h"
#include "lib/wire.h"

#define F_SIZE (1u << 20)		/* the truncated file */
#define G_SIZE (768u << 10)		/* the refill: fits in F's blocks with room for metadata */
#define PAGE 4096u

static sigjmp_buf g_jb;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(g_jb, 1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Fill the free space of the mount with one file, ENOSPC being the end. */
static int fill_device(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/filler", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	off_t off = 0;
	for (off_t chunk = 16 << 20; chunk >= (off_t)PAGE; chunk /= 2)
		while (fallocate(fd, 0, off, chunk) == 0)
			off += chunk;
	close(fd);
	printf("filler: %lld MiB\n", (long long)(off >> 20));
	return off > 0 ? 0 : -ENOSPC;
}

/* Has the daemon granted a layout of inode @ino?  (its status document) */
static int layout_shown(const char *dir, uint64_t ino)
{
	struct udax_ioc_hello h;
	struct udax_wire *w = NULL;
	struct udax_status *st = NULL;
	char why[256] = "";
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = fd < 0 ? -errno : udax_wire_hello(fd, &h);

	if (fd >= 0)
		close(fd);
	if (!ret)
		ret = udax_wire_open(&w, h.sock);
	if (!ret)
		ret = udax_status_get(w, &st, why, sizeof(why));
	udax_wire_put(&w);
	if (ret < 0) {
		fprintf(stderr, "status: %s\n", why);
		return ret;
	}
	/* granted (mapped), not still being granted: a recall then fails the grant */
	ret = 0;
	for (size_t i = 0; i < st->nlayouts; i++)
		if (st->layouts[i].ino == ino && (st->layouts[i].flags & UDAX_SLAYOUT_MAPPED))
			ret = 1;
	udax_status_free(&st);
	return ret;
}

static int child(const char *dir, uint64_t ino, int go_fd, int stored_fd)
{
	char f_path[4096], g_path[4096];
	char c = 'g';

	unsetenv("UDAX_PRELOAD_TEST_MAP_DELAY_MS");	/* only the parent's mapping stalls */
	snprintf(f_path, sizeof(f_path), "%s/victim", dir);
	snprintf(g_path, sizeof(g_path), "%s/refill", dir);
	uint64_t t0 = now_ms();
	for (;;) {
		int r = layout_shown(dir, ino);

		if (r < 0) {
			fprintf(stderr, "child: status: %s\n", strerror(-r));
			return 1;
		}
		if (r)
			break;
		if (now_ms() - t0 > 20000) {
			fprintf(stderr, "child: the parent's layout never showed\n");
			return 1;
		}
		usleep(2000);
	}
	uint64_t t1 = now_ms();
	if (truncate(f_path, 0) < 0) {
		perror("child: truncate");
		return 1;
	}
	printf("child: layout seen after %" PRIu64 " ms; truncate took %" PRIu64 " ms\n", t1 - t0,
	       now_ms() - t1);

	int g = open(g_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(G_SIZE);
	if (g < 0 || !buf) {
		perror("child: refill");
		return 1;
	}
	memset(buf, 0x55, G_SIZE);
	if (pwrite(g, buf, G_SIZE, 0) != (ssize_t)G_SIZE || fsync(g) < 0) {
		perror("child: writing the refill (did the truncate free the blocks?)");
		return 1;
	}
	if (write(go_fd, &c, 1) != 1 || read(stored_fd, &c, 1) != 1) {
		fprintf(stderr, "child: the parent went away\n");
		return 1;
	}
	/* read the device through a direct mapping (not the page cache) */
	unsigned char *p = mmap(NULL, G_SIZE, PROT_READ, MAP_SHARED, g, 0);
	if (p == MAP_FAILED) {
		perror("child: mmap refill");
		return 1;
	}
	size_t bad = 0;
	for (size_t i = 0; i < G_SIZE; i++)
		bad += p[i] != 0x55;
	munmap(p, G_SIZE);
	close(g);
	printf("child: refill %s (%zu of %u bytes changed)\n", bad ? "CORRUPTED" : "intact", bad,
	       G_SIZE);
	return bad ? 2 : 0;
}

int main(int argc, char **argv)
{
	char path[4096];
	int go[2], stored[2];

	if (argc != 2) {
		fprintf(stderr, "Usage: preload_race MOUNTDIR\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(path, sizeof(path), "%s/victim", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(F_SIZE);
	if (fd < 0 || !buf) {
		perror("victim");
		return 1;
	}
	memset(buf, 0x11, F_SIZE);
	if (pwrite(fd, buf, F_SIZE, 0) != (ssize_t)F_SIZE || fsync(fd) < 0) {
		perror("victim: write");
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || fill_device(argv[1]) < 0) {
		perror("filling the device");
		return 1;
	}
	if (pipe(go) < 0 || pipe(stored) < 0)
		return 1;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
		_exit(child(argv[1], (uint64_t)st.st_ino, go[1], stored[0]));

	/* stalls in the shim after the MAP reply (UDAX_PRELOAD_TEST_MAP_DELAY_MS) */
	uint64_t t0 = now_ms();
	unsigned char *p = mmap(NULL, F_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		kill(pid, SIGKILL);
		return 1;
	}
	printf("parent: mmap took %" PRIu64 " ms\n", now_ms() - t0);
	char c;
	if (read(go[0], &c, 1) != 1) {
		fprintf(stderr, "parent: the child failed before the refill\n");
		int status;
		waitpid(pid, &status, 0);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_sigbus };
	sigaction(SIGBUS, &sa, NULL);
	unsigned int faults = 0, stores = 0;
	for (volatile size_t off = 0; off < F_SIZE; off += PAGE) {
		if (sigsetjmp(g_jb, 1)) {
			faults++;
			continue;
		}
		memset(p + off, 0xAA, PAGE);
		stores++;
	}
	printf("parent: %u pages stored, %u raised SIGBUS\n", stores, faults);
	if (write(stored[1], "s", 1) != 1)
		return 1;
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 1;
	munmap(p, F_SIZE);
	close(fd);
	int rc = WEXITSTATUS(status);
	if (rc == 0 && faults != F_SIZE / PAGE) {
		fprintf(stderr, "parent: the refill is intact but %u stores did not fault\n", stores);
		return 1;
	}
	return rc;
}
