// SPDX-License-Identifier: MIT
/*
 * daemon_loss_client - hold a direct mapping of a udaxfs file until the
 * daemon goes away, then see it treated as recalled (run by
 * daemon_loss.sh).
 *
 *   daemon_loss_client lib|shim FILE IMAGE READY KILLED
 *
 * lib: udax_map_open() + udax_pin() on an io_uring, with a recall handler.
 * shim: plain mmap(2) (run under LD_PRELOAD=libudax-preload.so).
 * Writes READY (a file) once mapped; once the file KILLED exists, probes
 * the mapping (a read under a SIGBUS handler) for up to 5 s.
 *
 * Exit: 0 the mapping raised SIGBUS and /proc/self/maps no longer maps
 * IMAGE (lib: and the handler ran, the map says recalled); 2 the mapping
 * still reached the device after 5 s; 1 other failure; 77 no io_uring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <udax/udax.h>

#include "../harness.h"

#define LEN (1u << 20)

static sigjmp_buf g_jb;
static atomic_int g_handler_ran;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(g_jb, 1);
}

static void on_recall(struct udax_map *m, void *arg)
{
	(void)m;
	(void)arg;
	atomic_store(&g_handler_ran, 1);
}

/* 1 if reading *p raises SIGBUS, 0 if it reads. */
static int probe(volatile const char *p)
{
	if (sigsetjmp(g_jb, 1))
		return 1;
	(void)*p;
	return 0;
}

/* Does /proc/self/maps still show @image mapped? */
static bool image_mapped(const char *image)
{
	char line[8192];
	bool yes = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, image))
			yes = true;
	fclose(f);
	return yes;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct udax_map *m = NULL;
	struct io_uring ring;
	const char *p;
	bool lib;

	if (argc != 6 || (strcmp(argv[1], "lib") && strcmp(argv[1], "shim"))) {
		fprintf(stderr, "Usage: daemon_loss_client lib|shim FILE IMAGE READY KILLED\n");
		return 1;
	}
	lib = !strcmp(argv[1], "lib");
	int fd = open(argv[2], O_RDWR);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	if (lib) {
		struct udax_map_opts mo = { .recall = on_recall };
		unsigned int bi = UDAX_PIN_ANY;

		t_require_uring(io_uring_queue_init(4, &ring, 0));
		if (udax_map_open(&m, fd, 0, LEN, PROT_READ | PROT_WRITE, &mo) ||
		    udax_pin(m, &ring, &bi)) {
			fprintf(stderr, "lib: %s\n", udax_last_error());
			return 1;
		}
		p = udax_map_addr(m);
	} else {
		p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
	}
	struct sigaction sa = { .sa_handler = on_sigbus };
	sigaction(SIGBUS, &sa, NULL);
	if (probe(p) || !image_mapped(argv[3])) {
		fprintf(stderr, "%s: the fresh mapping does not reach the device\n", argv[1]);
		return 1;
	}
	FILE *rf = fopen(argv[4], "w");
	if (!rf || fclose(rf))
		return 1;
	double deadline = now_s() + 60;
	while (access(argv[5], F_OK) != 0) {
		if (now_s() > deadline) {
			fprintf(stderr, "%s: never told the daemon was killed\n", argv[1]);
			return 1;
		}
		usleep(10000);
	}
	double t0 = now_s();
	int bus = 0;
	bool mapped = true;
	while (now_s() - t0 < 5.0) {
		bus = probe(p);
		mapped = image_mapped(argv[3]);
		if (bus && !mapped && (!lib || (udax_map_recalled(m) && atomic_load(&g_handler_ran))))
			break;
		usleep(10000);
	}
	printf("%s: after %.3f s: access %s, device %s mapped", argv[1], now_s() - t0,
	       bus ? "raises SIGBUS" : "reads", mapped ? "still" : "no longer");
	if (lib)
		printf(", handler %s, recalled %d", atomic_load(&g_handler_ran) ? "ran" : "did not run",
		       udax_map_recalled(m));
	printf("\n");
	if (!bus || mapped)
		return 2;
	if (lib && (!atomic_load(&g_handler_ran) || !udax_map_recalled(m)))
		return 1;
	if (lib) {
		udax_unpin(m, &ring);
		udax_map_close(&m);
	}
	return 0;
}
