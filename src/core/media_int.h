/* SPDX-License-Identifier: MIT */
/*
 * media_int.h - private to media.c and media_crash.c.
 */
#ifndef UDAX_MEDIA_INT_H
#define UDAX_MEDIA_INT_H

#include <pthread.h>
#include <libpmem2.h>

#include "media.h"

#define UDAX_CACHELINE 64u

/* The crash-emulation state (media_crash.c). */
struct dx_crash {
	pthread_mutex_t lock;		/* protects everything below */
	char *durable;			/* the durable image: private map of the file */
	uint64_t *dirty;		/* one bit per cache line flushed, not drained */
	uint64_t *pending;		/* those lines, in flush order */
	size_t npending, cap;
	uint64_t fences;		/* drains so far */
	uint64_t trigger;		/* save after this drain (0 = none) */
	char *trigger_path;
	bool stopped;			/* trigger fired: the durable image is frozen */
	int trigger_err;		/* result of the triggered save */
};

struct dx_media {
	enum dx_media_kind kind;
	char *path;
	int fd;
	bool readonly;
	bool pinnable;
	int numa_node;
	uint64_t size;
	uint64_t align;
	char *base;
	struct pmem2_source *src;
	struct pmem2_map *map;
	pmem2_persist_fn persist;
	pmem2_flush_fn flush;
	pmem2_drain_fn drain;
	pmem2_memcpy_fn memcpy_fn;
	pmem2_memset_fn memset_fn;
	struct dx_crash *crash;	/* NULL unless crash_emul */
	bool cpu_persist;		/* tmpfs emulation: CPU flushes, not msync */
};

int dx_crash_init(struct dx_media *m);
void dx_crash_fini(struct dx_media *m);
void dx_crash_flush(struct dx_media *m, const void *addr, size_t len);
void dx_crash_drain(struct dx_media *m);

#endif /* UDAX_MEDIA_INT_H */
