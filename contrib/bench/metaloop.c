/* SPDX-License-Identifier: MIT */
/*
 * metaloop - a metadata loop for comparing file systems:
 *
 *   metaloop DIR [N] [SIZE]
 *
 * creates N files (default 20000) in DIR (open O_CREAT|O_EXCL, write SIZE
 * bytes (default 4096), close), then stats each, then unlinks each, and
 * prints one line per phase: "PHASE N SECONDS OPS_PER_SECOND".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *phase, long n, double t)
{
	printf("%s %ld %.3f %.0f\n", phase, n, t, t > 0 ? (double)n / t : 0.0);
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 20000;
	size_t size = argc > 3 ? (size_t)atol(argv[3]) : 4096;
	char *buf, name[4096];
	struct stat st;
	double t;
	long i;
	int fd;

	if (argc < 2 || n <= 0) {
		fprintf(stderr, "Usage: metaloop DIR [N] [SIZE]\n");
		return 2;
	}
	buf = malloc(size ? size : 1);
	if (!buf)
		return 1;
	memset(buf, 'm', size);

	t = now();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/m%07ld", argv[1], i);
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 || write(fd, buf, size) != (ssize_t)size || close(fd)) {
			fprintf(stderr, "metaloop: create %s: %s\n", name, strerror(errno));
			return 1;
		}
	}
	report("create+write+close", n, now() - t);

	t = now();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/m%07ld", argv[1], i);
		if (stat(name, &st) || st.st_size != (off_t)size) {
			fprintf(stderr, "metaloop: stat %s: %s\n", name, strerror(errno));
			return 1;
		}
	}
	report("stat", n, now() - t);

	t = now();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/m%07ld", argv[1], i);
		if (unlink(name)) {
			fprintf(stderr, "metaloop: unlink %s: %s\n", name, strerror(errno));
			return 1;
		}
	}
	report("unlink", n, now() - t);
	free(buf);
	return 0;
}
