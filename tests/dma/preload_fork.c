// SPDX-License-Identifier: MIT
/*
 * preload_fork - under libudax-preload.so, a child of fork() maps udaxfs
 * files through its own connection to the daemon (a child that reused
 * its parent's connection waited forever: the reply went to the parent's
 * reader thread), and the parent's mappings keep working.
 *
 *   preload_fork MOUNTDIR        (run by preload_fork.sh under LD_PRELOAD)
 *
 * Exit: 0 pass, 1 fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SZ (256u << 10)

/* Map @len bytes of @path (read-write, shared) and check every byte is @want. */
static int map_check(const char *path, int want, int store)
{
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		perror(path);
		return -1;
	}
	unsigned char *p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	size_t bad = 0;
	for (size_t i = 0; i < SZ; i++)
		bad += p[i] != want;
	if (store >= 0)
		memset(p, store, SZ);
	munmap(p, SZ);
	if (bad)
		fprintf(stderr, "[%d] %s: %zu of %u bytes are not %#x\n", (int)getpid(), path, bad, SZ,
			want);
	return bad ? -1 : 0;
}

static int make_file(const char *path, int byte)
{
	char *b = malloc(SZ);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !b)
		return -1;
	memset(b, byte, SZ);
	int r = pwrite(fd, b, SZ, 0) == (ssize_t)SZ ? 0 : -1;
	close(fd);
	free(b);
	return r;
}

int main(int argc, char **argv)
{
	char a[4096], b[4096];

	if (argc != 2) {
		fprintf(stderr, "Usage: preload_fork MOUNTDIR\n");
		return 1;
	}
	snprintf(a, sizeof(a), "%s/fork-a", argv[1]);
	snprintf(b, sizeof(b), "%s/fork-b", argv[1]);
	if (make_file(a, 0x33) || make_file(b, 0x44)) {
		perror("creating the files");
		return 1;
	}
	/* the parent holds a direct mapping (and so a connection) across the fork */
	int fd = open(a, O_RDWR);
	unsigned char *held = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd < 0 || held == MAP_FAILED || held[0] != 0x33) {
		perror("parent: mmap before fork");
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		alarm(20);	/* a hang is a failure, not a stuck test */
		int r = map_check(a, 0x33, -1) || map_check(b, 0x44, 0x45) ? 1 : 0;
		_exit(r);
	}
	int status = 0, waited = 0;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (++waited > 250) {	/* 25 s */
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "FAIL: the child's mmap hung\n");
			return 1;
		}
		usleep(100000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "FAIL: child %s %d\n", WIFEXITED(status) ? "exited" : "killed by signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return 1;
	}
	/* the parent's connection and mapping still work, and see the child's stores */
	int bad = held[0] != 0x33 || held[SZ - 1] != 0x33;
	memset(held, 0x34, SZ);
	munmap(held, SZ);
	close(fd);
	if (bad || map_check(a, 0x34, -1) || map_check(b, 0x45, -1)) {
		fprintf(stderr, "FAIL: the parent after the fork\n");
		return 1;
	}
	printf("PASS\n");
	return 0;
}
