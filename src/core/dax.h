/* SPDX-License-Identifier: MIT */
/*
 * dax.h - the userspace fs-dax page lifecycle (DESIGN.md section 2).
 *
 *   block free -> block allocated -> pfn untracked -> pfn tracked -> page free
 *     -> page busy -> page free -> pfn untracked -> block free
 *
 * Objects:
 *   struct udax_dax      one per mount: the global pfn -> handle index, the
 *                        hashed entry wait table, the policy, the recall hook.
 *   struct udax_mapping  one per inode (embedded in the fs inode): the xarray
 *                        of file page index -> entry (pfn + flags), and the
 *                        inode's layout lock.
 *   struct udax_page     a page handle: refcount, mapcount, pincount, owner.
 *                        Exists only while its pfn is tracked or referenced.
 *
 * Units: "index" is a file page index (file offset >> UDAX_PAGE_SHIFT), "pfn"
 * is a device page number (device offset >> UDAX_PAGE_SHIFT).  A huge entry
 * has order UDAX_HUGE_ORDER (2 MiB over 4 KiB pages), one handle, and an
 * index and pfn aligned to 1 << order.
 *
 * Lock order (outermost first), written here once for the whole tree:
 *   fs inode i_rwsem  ->  mapping layout lock  ->  mapping xarray lock
 *     ->  dax pfn-index lock  ->  wait-table bucket lock
 * Page-handle reference puts take no lock that ranks above the wait table,
 * so an unpin can always make progress while break_layouts waits.
 *
 * Invariant I1 (always on): a block is returned to the allocator only when
 * its pfn is untracked, its refcount is 0, and the owning inode's layout lock
 * is held exclusively.  udax_dax_assert_free() checks it in the free path.
 */
#ifndef UDAX_DAX_H
#define UDAX_DAX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "xarray.h"

#define UDAX_PAGE_SHIFT 12
#define UDAX_PAGE_SIZE  (1UL << UDAX_PAGE_SHIFT)
#define UDAX_HUGE_ORDER 9
/* Inclusive range end meaning "to the end of the file, whatever its size". */
#define UDAX_END_OF_FILE UINT64_MAX

struct udax_dax;
struct udax_page;

enum udax_policy {
	UDAX_POLICY_DEFAULT = 0,	/* scan, wait with lock dropped, rescan, delete, free */
	UDAX_POLICY_UNTRACK_FIRST,	/* untrack first, then wait for refcount 0 on handles */
	UDAX_POLICY_UNSAFE,		/* no wait: demonstration only, disables I1 */
};
const char *udax_policy_name(enum udax_policy p);
/* Return: 0 and *out, or -EINVAL for an unknown name. */
int udax_policy_parse(const char *name, enum udax_policy *out);

enum udax_ref {
	UDAX_REF_MAP,		/* a client mapping: refcount and mapcount */
	UDAX_REF_PIN,		/* a long-term pin (io_uring fixed buffer): refcount and pincount */
	UDAX_REF_ACCESS,	/* a short access outliving the layout lock: refcount only */
};

/*
 * Hooks the daemon provides.  recall() is called by break_layouts, with the
 * layout lock held, once per pass, for the range it is about to wait on: it
 * must not block (it queues recall messages to clients and returns).
 */
struct udax_dax_ops {
	void (*recall)(void *arg, uint64_t ino, uint64_t start, uint64_t end);
};

struct udax_dax_opts {
	enum udax_policy policy;
	uint64_t recall_timeout_ns;	/* 0: wait forever (interruptibly) */
	const struct udax_dax_ops *ops;	/* may be NULL */
	void *ops_arg;
	int numa_node;			/* -1: no preference */
};

/* Timestamps of one break_layouts call (CLOCK_MONOTONIC ns; 0 = not reached). */
struct udax_break_stats {
	uint64_t t_start;		/* lock taken */
	uint64_t t_recall_sent;		/* first recall hook returned */
	uint64_t t_last_unpin;		/* the final put that made the range idle */
	uint64_t t_idle;		/* a full pass found nothing busy */
	uint64_t t_done;		/* entries deleted, about to return */
	unsigned int passes;		/* scans made */
	unsigned int waits;		/* times it slept */
};

/* How a blocked break_layouts may end early. */
struct udax_wait_ctx {
	/* Return non-zero when the caller was interrupted (-> -EINTR). */
	int (*interrupted)(void *arg);
	void *arg;
	/* Overrides the mount's recall timeout when non-zero (-> -EBUSY). */
	uint64_t timeout_ns;
	/* Uninterruptible (eviction, unmount): interrupted() is ignored. */
	bool uninterruptible;
	struct udax_break_stats *stats;	/* optional out */
};

struct udax_mapping {
	struct udax_dax *dax;
	uint64_t ino;
	struct xarray entries;		/* index -> entry value; its own lock */
	pthread_rwlock_t layout_lock;	/* see lock order above */
	/* set while break_layouts runs: pin grants are refused.  Atomic. */
	int recalling;
};

/* ---- the per-mount object ---- */
int udax_dax_new(struct udax_dax **out, const struct udax_dax_opts *o);
/* NULL-safe; asserts (always on) that no handle is left. */
void udax_dax_delete(struct udax_dax **dp);
enum udax_policy udax_dax_policy(const struct udax_dax *d);
/* Wake every waiter so it re-checks interruption (a FUSE interrupt arrived). */
void udax_dax_kick(struct udax_dax *d);

/* ---- the per-inode mapping ---- */
int udax_mapping_init(struct udax_mapping *m, struct udax_dax *dax, uint64_t ino);
/* Asserts (always on) that nothing is tracked. */
void udax_mapping_destroy(struct udax_mapping *m);

void udax_layout_lock_shared(struct udax_mapping *m);
void udax_layout_unlock_shared(struct udax_mapping *m);
void udax_layout_lock_excl(struct udax_mapping *m);
void udax_layout_unlock_excl(struct udax_mapping *m);

/*
 * udax_track() - track [index, index + (1 << order)) -> pfn and return its
 * handle with one reference of @kind taken.
 * Context: layout lock held (shared or exclusive); may sleep on an entry lock.
 * Return: 0; -EEXIST if a different pfn or a conflicting order is tracked
 * there (small entries are never upgraded to huge); -EBUSY if a recall is
 * under way on this mapping; -ENOMEM.
 */
int udax_track(struct udax_mapping *m, uint64_t index, uint64_t pfn,
	       unsigned int order, enum udax_ref kind, struct udax_page **out);

/*
 * udax_page_get()/udax_page_put() - take/drop a reference of @kind.
 * The put that brings refcount to 0 wakes every waiter on the handle and,
 * if the pfn is no longer tracked, frees the handle.
 * Context: any; never sleeps; takes no lock above the wait table.
 */
void udax_page_get(struct udax_page *p, enum udax_ref kind);
void udax_page_put(struct udax_page *p, enum udax_ref kind);
/*
 * udax_pin_get() - take a pin reference under the layout lock (shared),
 * refused while a recall is under way.  Return: 0, -EBUSY.
 */
int udax_pin_get(struct udax_mapping *m, struct udax_page *p);

struct udax_page_info {
	uint64_t ino, index, pfn;
	unsigned int order;
	uint32_t refcount, mapcount, pincount;
	bool tracked;
	uint64_t age_ns;		/* since the handle was created */
};
void udax_page_info(const struct udax_page *p, struct udax_page_info *out);

/*
 * udax_break_layouts() - make [start, end] (inclusive page indexes; end may
 * be UDAX_END_OF_FILE) idle and untracked, so its blocks may be freed.
 * Recalls layouts, scans tracked entries (never shortcuts on "not mapped",
 * never skips a locked entry), waits with the layout lock dropped, rescans,
 * then deletes the entries.
 * Context: caller holds the layout lock exclusively; it is dropped and
 * retaken while waiting and is held again on return, whatever the result.
 * Return: 0 (range idle and untracked); -EINTR (interrupted) or -EBUSY
 * (recall timeout): nothing was deleted, the file is unchanged.
 */
int udax_break_layouts(struct udax_mapping *m, uint64_t start, uint64_t end,
		       const struct udax_wait_ctx *w);

/*
 * udax_dax_assert_free() - I1 in the allocator's free path: abort (always
 * on) if any pfn in [pfn, pfn + npages) has a live handle (tracked or
 * referenced).  Under UDAX_POLICY_UNSAFE it only counts the violation.
 */
void udax_dax_assert_free(struct udax_dax *d, uint64_t pfn, uint64_t npages);
/* True if any pfn in the range has a live handle. */
bool udax_dax_pfn_busy(struct udax_dax *d, uint64_t pfn, uint64_t npages);

/* ---- introspection (issue #3 part 6; udaxctl status shows it) ---- */
struct udax_dax_stats {
	uint64_t tracked_entries;	/* entries in all mappings */
	uint64_t live_handles;
	uint64_t busy_handles;		/* refcount != 0 */
	uint64_t waiters;		/* break_layouts calls sleeping now */
	uint64_t handle_bytes;		/* DRAM used by handles and index nodes */
	uint64_t unsafe_frees;		/* I1 violations allowed by the unsafe policy */
};
void udax_dax_stats(struct udax_dax *d, struct udax_dax_stats *out);
/* Calls @cb for each live handle; stops early when cb returns non-zero. */
int udax_dax_foreach_handle(struct udax_dax *d,
			    int (*cb)(const struct udax_page_info *pi, void *arg), void *arg);
struct udax_waiter_info {
	uint64_t ino, start, end;	/* the break_layouts range */
	uint64_t wait_index, wait_pfn;	/* the busy page it sleeps on */
	uint32_t refcount;		/* that page's refcount now */
	uint64_t waiting_ns;		/* how long it has waited so far */
};
int udax_dax_foreach_waiter(struct udax_dax *d,
			    int (*cb)(const struct udax_waiter_info *wi, void *arg), void *arg);

#endif /* UDAX_DAX_H */
