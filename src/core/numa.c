/* SPDX-License-Identifier: MIT */
/*
 * numa.c - DRAM tables placed on the device's NUMA node (libnuma).
 */
#include "config.h"

#include <numa.h>
#include <sys/mman.h>

#include "media.h"

void *dx_numa_alloc(size_t len, int node)
{
	void *p;

	if (!len)
		return NULL;
	if (node >= 0 && numa_available() >= 0 && node <= numa_max_node())
		return numa_alloc_onnode(len, node);	/* zeroed anonymous pages */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * Both kinds of memory are anonymous mappings, so any page-aligned part of
 * an allocation may be given back on its own (page.c trims an allocation
 * to an aligned handle chunk this way).
 */
void dx_numa_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);	/* numa_alloc_onnode memory is an anonymous mapping too */
}
