// SPDX-License-Identifier: MIT
/*
 * preload_pmem2 - what libpmem2 gets for a file: maps FILE with libpmem2
 * (required granularity PAGE, the widest), prints the store granularity it
 * was given, writes a pattern with pmem2's memcpy + persist, unmaps, and
 * reads the pattern back with read().
 *
 * libpmem2 picks CACHE_LINE (or BYTE on eADR machines) only when
 * mmap(MAP_SHARED_VALIDATE|MAP_SYNC) of the file succeeds; FUSE refuses
 * MAP_SYNC, so without libudax-preload.so a udaxfs file gets PAGE.
 *
 *   preload_pmem2 FILE [expect]   expect: page | cacheline (CACHE_LINE or BYTE) | any
 * Exit: 0 as expected, 1 otherwise, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *gran_name(enum pmem2_granularity g)
{
	switch (g) {
	case PMEM2_GRANULARITY_BYTE: return "BYTE";
	case PMEM2_GRANULARITY_CACHE_LINE: return "CACHE_LINE";
	case PMEM2_GRANULARITY_PAGE: return "PAGE";
	}
	return "?";
}

int main(int argc, char **argv)
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	struct pmem2_map *map = NULL;
	const char *expect = argc > 2 ? argv[2] : "any";
	struct stat st;
	int fd, r, rc = 1;

	if (argc < 2) {
		fprintf(stderr, "Usage: %s FILE [page|cacheline|any]\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	if (st.st_size < 65536) {
		fprintf(stderr, "%s: make it at least 64 KiB first\n", argv[1]);
		return 2;
	}
	if (pmem2_config_new(&cfg) || pmem2_source_from_fd(&src, fd) ||
	    pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE)) {
		fprintf(stderr, "libpmem2 setup: %s\n", pmem2_errormsg());
		return 1;
	}
	r = pmem2_map_new(&map, cfg, src);
	if (r) {
		printf("pmem2_map_new: failed: %s\n", pmem2_errormsg());
		goto out;
	}
	enum pmem2_granularity g = pmem2_map_get_store_granularity(map);
	printf("granularity: %s\n", gran_name(g));

	/* write a pattern with pmem2's own memcpy (flushes as the granularity needs) */
	size_t len = (size_t)st.st_size < (1u << 20) ? (size_t)st.st_size : (1u << 20);
	char *buf = malloc(len), *back = malloc(len);
	if (!buf || !back)
		goto out;
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('A' + (i * 31 + (size_t)getpid()) % 26);
	pmem2_memcpy_fn cp = pmem2_get_memcpy_fn(map);
	cp(pmem2_map_get_address(map), buf, len, 0);
	pmem2_get_persist_fn(map)(pmem2_map_get_address(map), len);
	if (pmem2_map_delete(&map)) {
		fprintf(stderr, "pmem2_map_delete: %s\n", pmem2_errormsg());
		goto out;
	}
	/* the data must be visible through the mount with read() */
	int rfd = open(argv[1], O_RDONLY);
	if (rfd < 0 || pread(rfd, back, len, 0) != (ssize_t)len) {
		perror("read back");
		goto out;
	}
	close(rfd);
	if (memcmp(buf, back, len)) {
		size_t i = 0;

		while (buf[i] == back[i])
			i++;
		printf("read(): MISMATCH at byte %zu (wrote %#x, read %#x)\n", i,
		       (unsigned char)buf[i], (unsigned char)back[i]);
		goto out;
	}
	printf("read(): the %zu bytes written through the mapping read back\n", len);
	free(buf);
	free(back);
	if (!strcmp(expect, "page"))
		rc = g != PMEM2_GRANULARITY_PAGE;
	else if (!strcmp(expect, "cacheline"))
		rc = g == PMEM2_GRANULARITY_PAGE;
	else
		rc = 0;
	if (rc)
		printf("expected %s granularity\n", expect);
out:
	if (map)
		pmem2_map_delete(&map);
	pmem2_source_delete(&src);
	pmem2_config_delete(&cfg);
	close(fd);
	return rc;
}
