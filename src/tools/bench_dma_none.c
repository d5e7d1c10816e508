// SPDX-License-Identifier: MIT
/*
 * bench_dma_none.c - stand-in for bench_dma.c while libudax is not built:
 * the bench then measures the floor and the no-DMA truncates only.
 */
#include <errno.h>

#include "udaxctl.h"

bool bdma_available(void)
{
	return false;
}

int bdma_client_main(struct bench_shm *shm, unsigned int idx, const struct bench_case *bc,
		     const char *path, const char *src_path)
{
	(void)shm; (void)idx; (void)bc; (void)path; (void)src_path;
	return 1;
}

int bdma_checker_main(struct bench_shm *shm, const char *canary_path)
{
	(void)shm; (void)canary_path;
	return 1;
}

int bdma_break_stats(int fd, struct bench_break *out, unsigned int max)
{
	(void)fd; (void)out; (void)max;
	return -ENOSYS;
}
