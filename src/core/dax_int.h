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

struct udax_page {
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

static inline uint64_t udax_u64(const uint32_t v[2])
{
	return (uint64_t)v[0] | ((uint64_t)v[1] << 32);
}
static inline void udax_set_u64(uint32_t v[2], uint64_t x)
{
	v[0] = (uint32_t)x;
	v[1] = (uint32_t)(x >> 32);
}

#define UDAX_CHUNK_BYTES 16384UL

struct udax_chunk {
	struct udax_dax *dax;
	struct udax_chunk *prev, *next;	/* d->partial list; pfn lock */
	uint32_t nfree;			/* pfn lock */
	uint32_t free_head;		/* slot, or UINT32_MAX; pfn lock */
	uint32_t nr_init;		/* slots ever handed out; pfn lock */
	uint32_t pad;
	struct udax_page pages[];
};
#define UDAX_CHUNK_PAGES \
	((UDAX_CHUNK_BYTES - sizeof(struct udax_chunk)) / sizeof(struct udax_page))

/* A break_layouts call asleep (for kick and introspection). */
struct udax_bwait {
	struct udax_bwait *prev, *next;	/* d->waiters; pfn lock */
	struct udax_mapping *m;
	uint64_t start, end;
	uint64_t wait_index, wait_pfn;
	struct udax_page *page;		/* waited-on handle (a hold keeps it), or NULL */
	uint32_t *word;			/* the futex word it sleeps on */
	uint64_t t_begin;
	uint64_t t_unpin;		/* set by the final put; pfn lock */
	bool linked;
};

/* An entry-lock waiter, queued in a wait-table bucket. */
#define UDAX_WAKE_ONE 1U
#define UDAX_WAKE_ALL 2U
struct udax_ewait {
	struct udax_ewait *prev, *next;	/* bucket lock */
	struct udax_mapping *m;
	uint64_t index;			/* first index of the entry */
	bool excl;			/* wants the lock (wake-one) */
	bool queued;			/* bucket lock */
	uint32_t woken;			/* 0 / UDAX_WAKE_*: atomic; futex word */
};

#define UDAX_WAIT_BUCKETS 256
struct udax_wait_bucket {
	pthread_mutex_t lock;
	struct udax_ewait *head, *tail;	/* lock */
	uint32_t nwaiters;		/* atomic; changed under lock */
} __attribute__((aligned(64)));

struct udax_dax {
	struct udax_dax_opts opts;	/* immutable */
	uint64_t epoch_ns;		/* immutable */
	struct xarray pfns;		/* pfn -> small handle; its lock is the pfn-index lock */
	struct xarray pfns_huge;	/* pfn >> HUGE_ORDER -> huge handle; same lock */
	struct udax_chunk *partial;	/* chunks with a free slot; pfn lock */
	uint64_t nr_chunks;		/* pfn lock */
	uint64_t live_handles;		/* pfn lock */
	struct udax_bwait *waiters;	/* pfn lock */
	uint64_t nwaiters;		/* pfn lock */
	uint64_t tracked_entries;	/* atomic */
	uint64_t unsafe_frees;		/* atomic */
	uint64_t entry_waiters;		/* atomic */
	uint64_t entry_wakeups;		/* atomic */
	struct udax_wait_bucket buckets[UDAX_WAIT_BUCKETS];
};

/*
 * The pfn index is two trees under one lock: small handles keyed by pfn,
 * huge ones by pfn >> UDAX_HUGE_ORDER (one slot per 2 MiB, not 512 or a
 * sparse leaf each).  Return: the tree for a handle of @order, and its key.
 */
static inline struct xarray *udax_pfn_tree(struct udax_dax *d, unsigned int order,
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
int udax_futex_wait(uint32_t *word, uint32_t val, uint64_t timeout_ns);
void udax_futex_wake(uint32_t *word, int n);
struct udax_dax *udax_page_dax(const struct udax_page *p);
static inline uint32_t udax_page_flags(const struct udax_page *p)
{
	return __atomic_load_n(&p->flags, __ATOMIC_RELAXED);
}
/* pfn lock held for all four. */
struct udax_page *udax_handle_alloc(struct udax_dax *d);
void udax_handle_free_locked(struct udax_dax *d, struct udax_page *p);
/* Free @p if nothing keeps it alive any more. */
void udax_handle_maybe_free_locked(struct udax_dax *d, struct udax_page *p);
void udax_handle_chunks_free(struct udax_dax *d);

/*
 * Sleep until @p's refcount is 0.  The caller took a hold on @p (pfn lock);
 * this drops it unless @keep_hold.  @bw is registered in d->waiters meanwhile.
 * Return: 0, -EINTR, -EBUSY (deadline, CLOCK_MONOTONIC ns; 0 = none).
 */
int udax_page_wait_idle(struct udax_dax *d, struct udax_page *p, struct udax_bwait *bw,
			const struct udax_wait_ctx *w, uint64_t deadline, bool keep_hold);
/* 0, -EINTR or -EBUSY; and the futex timeout to use (0 = forever). */
int udax_wait_check(const struct udax_wait_ctx *w, uint64_t deadline, uint64_t *slice);
void udax_bwait_link_locked(struct udax_dax *d, struct udax_bwait *bw);
void udax_bwait_unlink_locked(struct udax_dax *d, struct udax_bwait *bw);

#endif /* UDAX_DAX_INT_H */
