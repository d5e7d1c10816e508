/* SPDX-License-Identifier: MIT */
/*
 * test_helpers.h - emulation files for the lower layer's unit tests (media,
 * superblock, mkfs, journal, allocator, crash backend); the checks are
 * ../harness.h's.
 */
#ifndef UDAX_TEST_HELPERS_H
#define UDAX_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/util.h"

#include "../harness.h"

/* A temporary emulation file of @size bytes in /dev/shm (sparse). */
static inline void t_mkfile(char *path, size_t plen, const char *tag, unsigned long long size)
{
	int fd;

	snprintf(path, plen, "/dev/shm/udax-unit-%s-%d", tag, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror(path);
		exit(T_ERROR);
	}
	close(fd);
}

/* crc32c of a whole file (to prove that nothing was written). */
static inline uint32_t t_file_crc(const char *path)
{
	char buf[65536];
	uint32_t crc = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = dx_crc32c(crc, buf, (size_t)n);
	close(fd);
	return crc;
}

#endif
