/* SPDX-License-Identifier: MIT */
/*
 * dax_int.h - private structures shared by page.c and dax.c.  Not a
 * contract: only the DAX core and its unit tests include it.
 */
#ifndef UDAX_DAX_INT_H
#define UDAX_DAX_INT_H

#include <stdint.h>

#include "dax.h"
#include "util.h"
#include "xarray.h"

/*
 * A page handle: 44 bytes (all 32-bit fields, so no padding), carved from
 * 64 KiB chunks so there is no malloc overhead per handle.  With the two
 * tree slots (mapping entry, pfn index) that is ~62 bytes per tracked 4 KiB
 * page.
 */
#define UDAX_PG_WAITERS 0x80000000U	/* in refcount: a break_layouts sleeps on it */
#define UDAX_PG_REFS    0x7fffffffU

#define UDAX_PG_TRACKED  0x1U		/* an entry of its owner points at it */
#define UDAX_PG_DETACHED 0x2U		/* out of the pfn index (unsafe policy orphan) */

struct dx_page {
	uint32_t refcount;	/* refs | UDAX_PG_WAITERS: atomic; the futex word */
	uint32_t mapcount;	/* atomic */
	uint32_t pincount;	/* atomic */
	uint16_t holds;		/* pfn lock: sleeping waiters keeping it alive */
	uint8_t flags;		/* pfn lock (atomic reads outside it) */
	uint8_t order;		/* immutable */
	uint32_t ino[2];	/* immutable owner inode, low/high halves */
	uint32_t index[2];	/* immutable first file page index */
	uint32_t pfn[2];	/* immutable first pfn */
	uint32_t born_ms;	/* immutable: ms since the dax epoch */
};

static inline uint64_t dx_u64(const uint32_t v[2])
{
	return (uint64_t)v[0] | ((uint64_t)v[1] << 32);
}
static inline void dx_set_u64(uint32_t v[2], uint64_t x)
{
	v[0] = (uint32_t)x;
	v[1] = (uint32_t)(x >> 32);
}

#define UDAX_CHUNK_BYTES 16384UL

struct dx_chunk {
	struct dx_dax *dax;
	struct dx_chunk *prev, *next;	/* d->partial list; pfn lock */
	uint32_t nfree;			/* pfn lock */
	uint32_t free_head;		/* slot, or UINT32_MAX; pfn lock */
	uint32_t nr_init;		/* slots ever handed out; pfn lock */
	uint32_t pad;
	struct dx_page pages[];
};
#define UDAX_CHUNK_PAGES \
	((UDAX_CHUNK_BYTES - sizeof(struct dx_chunk)) / sizeof(struct dx_page))

/* A break_layouts call asleep (for kick and introspection). */
struct dx_bwait {
	struct dx_bwait *prev, *next;	/* d->waiters; pfn lock */
	struct dx_mapping *m;
	uint64_t start, end;
	uint64_t wait_index, wait_pfn;
	struct dx_page *page;		/* waited-on handle (a hold keeps it), or NULL */
	uint32_t *word;			/* the futex word it sleeps on */
	uint64_t t_begin;
	uint64_t t_unpin;		/* set by the final put; pfn lock */
	bool linked;
};

/* An entry-lock waiter, queued in a wait-table bucket. */
#define UDAX_WAKE_ONE 1U
#define UDAX_WAKE_ALL 2U
struct dx_ewait {
	struct dx_ewait *prev, *next;	/* bucket lock */
	struct dx_mapping *m;
	uint64_t index;			/* first index of the entry */
	bool excl;			/* wants the lock (wake-one) */
	bool queued;			/* bucket lock */
	uint32_t woken;			/* 0 / UDAX_WAKE_*: atomic; futex word */
};

#define UDAX_WAIT_BUCKETS 256
struct dx_wait_bucket {
	pthread_mutex_t lock;
	struct dx_ewait *head, *tail;	/* lock */
	uint32_t nwaiters;		/* atomic; changed under lock */
} __attribute__((aligned(64)));

struct dx_dax {
	struct dx_dax_opts opts;	/* immutable */
	uint64_t epoch_ns;		/* immutable */
	struct xarray pfns;		/* pfn -> small handle; its lock is the pfn-index lock */
	struct xarray pfns_huge;	/* pfn >> HUGE_ORDER -> huge handle; same lock */
	struct dx_chunk *partial;	/* chunks with a free slot; pfn lock */
	uint64_t nr_chunks;		/* pfn lock */
	uint64_t live_handles;		/* pfn lock */
	struct dx_bwait *waiters;	/* pfn lock */
	uint64_t nwaiters;		/* pfn lock */
	uint64_t tracked_entries;	/* atomic */
	uint64_t unsafe_frees;		/* atomic */
	uint64_t entry_waiters;		/* atomic */
	uint64_t entry_wakeups;		/* atomic */
	struct dx_wait_bucket buckets[UDAX_WAIT_BUCKETS];
};

/*
 * The pfn index is two trees under one lock: small handles keyed by pfn,
 * huge ones by pfn >> UDAX_HUGE_ORDER (one slot per 2 MiB, not 512 or a
 * sparse leaf each).  Return: the tree for a handle of @order, and its key.
 */
static inline struct xarray *dx_pfn_tree(struct dx_dax *d, unsigned int order,
					   uint64_t pfn, unsigned long *key)
{
	if (order) {
		*key = (unsigned long)(pfn >> UDAX_HUGE_ORDER);
		return &d->pfns_huge;
	}
	*key = (unsigned long)pfn;
	return &d->pfns;
}

/* ---- page.c ---- */
int dx_futex_wait(uint32_t *word, uint32_t val, uint64_t timeout_ns);
void dx_futex_wake(uint32_t *word, int n);
struct dx_dax *dx_page_dax(const struct dx_page *p);
static inline uint32_t dx_page_flags(const struct dx_page *p)
{
	return __atomic_load_n(&p->flags, __ATOMIC_RELAXED);
}
/* pfn lock held for all four. */
struct dx_page *dx_handle_alloc(struct dx_dax *d);
void dx_handle_free_locked(struct dx_dax *d, struct dx_page *p);
/* Free @p if nothing keeps it alive any more. */
void dx_handle_maybe_free_locked(struct dx_dax *d, struct dx_page *p);
void dx_handle_chunks_free(struct dx_dax *d);

/*
 * Sleep until @p's refcount is 0.  The caller took a hold on @p (pfn lock);
 * this drops it unless @keep_hold.  @bw is registered in d->waiters meanwhile.
 * Return: 0, -EINTR, -EBUSY (deadline, CLOCK_MONOTONIC ns; 0 = none).
 */
int dx_page_wait_idle(struct dx_dax *d, struct dx_page *p, struct dx_bwait *bw,
			const struct dx_wait_ctx *w, uint64_t deadline, bool keep_hold);
/* 0, -EINTR or -EBUSY; and the futex timeout to use (0 = forever). */
int dx_wait_check(const struct dx_wait_ctx *w, uint64_t deadline, uint64_t *slice);
void dx_bwait_link_locked(struct dx_dax *d, struct dx_bwait *bw);
void dx_bwait_unlink_locked(struct dx_dax *d, struct dx_bwait *bw);

#endif /* UDAX_DAX_INT_H */
