/* SPDX-License-Identifier: MIT */
/*
 * pidfd_getfd_probe PID FD - take a duplicate of descriptor FD of process
 * PID with pidfd_getfd(2), as the daemon does with a client's io_uring
 * ring.  Exit 0 when it worked, 1 (with the reason) when it did not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int main(int argc, char **argv)
{
	int pidfd, fd;

	if (argc != 3) {
		fprintf(stderr, "Usage: pidfd_getfd_probe PID FD\n");
		return 2;
	}
	pidfd = (int)syscall(SYS_pidfd_open, atoi(argv[1]), 0);
	if (pidfd < 0) {
		printf("pidfd_open(%s): %s\n", argv[1], strerror(errno));
		return 1;
	}
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(argv[2]), 0);
	if (fd < 0) {
		printf("pidfd_getfd(%s, %s): %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	printf("pidfd_getfd(%s, %s): got descriptor %d\n", argv[1], argv[2], fd);
	return 0;
}
