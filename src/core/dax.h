/* SPDX-License-Identifier: MIT */
/*
 * dax.h - the userspace fs-dax page lifecycle (DESIGN.md section 2).
 *
 *   block free -> block allocated -> pfn untracked -> pfn tracked -> page free
 *     -> page busy -> page free -> pfn untracked -> block free
 *
 * Objects:
 *   struct dx_dax      one per mount: the global pfn -> handle index, the
 *                        hashed entry wait table, the policy, the recall hook.
 *   struct dx_mapping  one per inode (embedded in the fs inode): the xarray
 *                        of file page index -> entry (pfn + flags), and the
 *                        inode's layout lock.
 *   struct dx_page     a page handle: refcount, mapcount, pincount, owner.
 *                        Exists only while its pfn is tracked or referenced.
 *
 * Units: "index" is a file page index (file offset >> UDAX_PAGE_SHIFT), "pfn"
 * is a device page number (device offset >> UDAX_PAGE_SHIFT).  A huge entry
 * has order UDAX_HUGE_ORDER (2 MiB over 4 KiB pages), one handle, and an
 * index and pfn aligned to 1 << order.
 *
 * Lock order (outermost first), written here once for the whole tree:
 *   fs inode i_rwsem  ->  mapping layout lock  ->  mapping xarray lock
 *     ->  wait-table bucket lock  ->  dax pfn-index lock
 * (the bucket and pfn-index locks are never held together today; the
 * order says which may be taken inside which.)
 * The pfn-index lock (d->pfns.lock) also protects handle lifetime (the
 * handle slab, the TRACKED flag, waiter holds) and the list of sleeping
 * break_layouts calls.  It is the innermost lock: held only for short
 * sections, never while sleeping, never while calling a hook.
 * Page-handle reference puts take no lock but that one (and only for the
 * put that drops the last reference; it ranks below the wait table), so
 * an unpin can always make progress while break_layouts waits:
 * break_layouts holds no dax or xarray lock while asleep, and (except
 * under UDAX_POLICY_UNTRACK_FIRST) not the layout lock either.
 *
 * Handle lifetime.  A handle lives while it is tracked, referenced, or
 * held by a sleeping break_layouts (so the word it sleeps on stays valid);
 * the pfn index holds it only while it is tracked or referenced, so an
 * idle block is never reported busy.  Handles are 44 bytes, carved from
 * 16 KiB slabs; the pfn index is two trees under one lock (4 KiB handles
 * by pfn, 2 MiB handles by pfn >> 9).  DRAM: ~62 bytes per tracked 4 KiB
 * page, ~124 per tracked 2 MiB entry, nothing for untracked blocks.
 *
 * Waiting.  A break_layouts waiting for a page sleeps on a futex on the
 * handle's refcount word after setting a WAITERS bit in that same word
 * (so registration and re-test are one atomic step and the final put, which
 * clears the bit and wakes, cannot be missed).  Entry-lock waiters sleep on
 * a word of their own, queued in a hashed wait table keyed by (mapping,
 * first index of the entry) before the entry is re-tested.
 *
 * Invariant I1 (always on): a block is returned to the allocator only when
 * its pfn is untracked, its refcount is 0, and the owning inode's layout lock
 * is held exclusively.  dx_dax_assert_free() checks it in the free path.
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

struct dx_dax;
struct dx_page;

/*
 * Mapping entry values (what the per-inode xarray holds, as value entries):
 * pfn << UDAX_ENTRY_SHIFT | flags.  An EMPTY entry is a locked placeholder
 * (no pfn yet); a ZERO entry maps no device block (no handle).
 */
#define UDAX_ENTRY_LOCKED 0x1ULL
#define UDAX_ENTRY_HUGE   0x2ULL
#define UDAX_ENTRY_ZERO   0x4ULL
#define UDAX_ENTRY_EMPTY  0x8ULL
#define UDAX_ENTRY_SHIFT  4
/*
 * dx_entry_mk() - the entry value for @pfn with @flags; the others take
 * an entry value apart.  Context: any (pure).  Return: the value, its
 * pfn, whether a flag is set, its order (UDAX_HUGE_ORDER or 0).
 */
static inline uint64_t dx_entry_mk(uint64_t pfn, uint64_t flags)
{
	return (pfn << UDAX_ENTRY_SHIFT) | flags;
}
static inline uint64_t dx_entry_pfn(uint64_t e) { return e >> UDAX_ENTRY_SHIFT; }
static inline bool dx_entry_locked(uint64_t e) { return e & UDAX_ENTRY_LOCKED; }
static inline bool dx_entry_huge(uint64_t e) { return e & UDAX_ENTRY_HUGE; }
static inline bool dx_entry_zero(uint64_t e) { return e & UDAX_ENTRY_ZERO; }
static inline bool dx_entry_empty(uint64_t e) { return e & UDAX_ENTRY_EMPTY; }
static inline unsigned int dx_entry_order(uint64_t e)
{
	return dx_entry_huge(e) ? UDAX_HUGE_ORDER : 0;
}

enum dx_policy {
	UDAX_POLICY_DEFAULT = 0,	/* scan, wait with lock dropped, rescan, delete, free */
	UDAX_POLICY_UNTRACK_FIRST,	/* untrack first, then wait for refcount 0 on handles */
	UDAX_POLICY_UNSAFE,		/* no wait: demonstration only, disables I1 */
};
/*
 * dx_policy_name() - the mount option's name of @p ("default",
 * "untrack-first", "unsafe").  Context: any.  Return: a static string
 * ("unknown" for a value out of range).
 */
const char *dx_policy_name(enum dx_policy p);
/*
 * dx_policy_parse() - the policy named @name (dx_policy_name()'s names).
 * Context: any.  Return: 0 and *@out, or -EINVAL for an unknown name.
 */
int dx_policy_parse(const char *name, enum dx_policy *out);

enum dx_ref {
	UDAX_REF_MAP,		/* a client mapping: refcount and mapcount */
	UDAX_REF_PIN,		/* a long-term pin (io_uring fixed buffer): refcount and pincount */
	UDAX_REF_ACCESS,	/* a short access outliving the layout lock: refcount only */
};

/*
 * Hooks the daemon provides.  recall() is called by break_layouts, with the
 * layout lock held, once per pass, for the range it is about to wait on: it
 * must not block (it queues recall messages to clients and returns).
 */
struct dx_dax_ops {
	void (*recall)(void *arg, uint64_t ino, uint64_t start, uint64_t end);
};

struct dx_dax_opts {
	enum dx_policy policy;
	uint64_t recall_timeout_ns;	/* 0: wait forever (interruptibly) */
	const struct dx_dax_ops *ops;	/* may be NULL */
	void *ops_arg;
	int numa_node;			/* -1: no preference */
};

/* Timestamps of one break_layouts call (CLOCK_MONOTONIC ns; 0 = not reached). */
struct dx_break_stats {
	uint64_t t_start;		/* lock taken */
	uint64_t t_recall_sent;		/* first recall hook returned */
	uint64_t t_last_unpin;		/* the final put that made the range idle */
	uint64_t t_idle;		/* a full pass found nothing busy */
	uint64_t t_done;		/* entries deleted, about to return */
	unsigned int passes;		/* scans made */
	unsigned int waits;		/* times it slept */
};

/* How a blocked break_layouts may end early. */
struct dx_wait_ctx {
	/* Return non-zero when the caller was interrupted (-> -EINTR). */
	int (*interrupted)(void *arg);
	void *arg;
	/* Overrides the mount's recall timeout when non-zero (-> -EBUSY). */
	uint64_t timeout_ns;
	/* Uninterruptible (eviction, unmount): interrupted() is ignored. */
	bool uninterruptible;
	struct dx_break_stats *stats;	/* optional out */
};

struct dx_mapping {
	struct dx_dax *dax;
	uint64_t ino;
	struct xarray entries;		/* index -> entry value; its own lock */
	pthread_rwlock_t layout_lock;	/* see lock order above */
	/*
	 * Non-zero while a break_layouts runs on this mapping (a count:
	 * several may wait at once): layout and pin grants are refused.
	 * Atomic; read with __atomic_load_n.
	 */
	int recalling;
};

/* ---- the per-mount object ---- */
/*
 * dx_dax_new() - the per-mount page lifecycle state with options @o.
 * Context: mount.  Return: 0 with *@out set, -EINVAL (bad options), -ENOMEM.
 */
int dx_dax_new(struct dx_dax **out, const struct dx_dax_opts *o);
/*
 * dx_dax_delete() - free it and clear *@dp; NULL-safe; asserts (always
 * on) that no handle is left.  Context: unmount, every mapping destroyed.
 * Return: nothing.
 */
void dx_dax_delete(struct dx_dax **dp);
/* dx_dax_policy() - Context: any.  Return: the mount's break_layouts policy. */
enum dx_policy dx_dax_policy(const struct dx_dax *d);
/*
 * dx_dax_kick() - wake every waiter so it re-checks interruption (a FUSE
 * interrupt arrived).  Context: any; takes the pfn-index lock briefly.
 * Return: nothing.
 */
void dx_dax_kick(struct dx_dax *d);

/* ---- the per-inode mapping ---- */
/*
 * dx_mapping_init() - set up the mapping of inode @ino (embedded in the
 * fs inode): an empty entry tree and a writer-preferring layout lock, so
 * that a truncate does not starve behind a stream of grants.
 * Context: before the inode is visible.  Return: 0, -errno from pthread.
 */
int dx_mapping_init(struct dx_mapping *m, struct dx_dax *dax, uint64_t ino);
/*
 * dx_mapping_destroy() - tear it down; asserts (always on) that nothing
 * is tracked.  Context: eviction, nobody else holds @m.  Return: nothing.
 */
void dx_mapping_destroy(struct dx_mapping *m);

/*
 * The layout lock (a pthread rwlock): shared for grants and I/O that must
 * not race a block being freed, exclusive for truncate, punch, eviction.
 * Context: may sleep; ranks below the fs inode i_rwsem and above the
 * xarray lock (lock order above).  Return: nothing.
 */
void dx_layout_lock_shared(struct dx_mapping *m);
void dx_layout_unlock_shared(struct dx_mapping *m);
void dx_layout_lock_excl(struct dx_mapping *m);
void dx_layout_unlock_excl(struct dx_mapping *m);

/*
 * dx_track() - track [index, index + (1 << order)) -> pfn and return its
 * handle with one reference of @kind taken.
 * Context: layout lock held (shared or exclusive); may sleep on an entry lock.
 * Return: 0; -EEXIST if a different pfn or a conflicting order is tracked
 * there (small entries are never upgraded to huge); -EBUSY if a recall is
 * under way on this mapping; -ENOMEM.
 */
int dx_track(struct dx_mapping *m, uint64_t index, uint64_t pfn,
	       unsigned int order, enum dx_ref kind, struct dx_page **out);

/*
 * dx_page_get()/dx_page_put() - take/drop a reference of @kind.
 * The put that brings refcount to 0 wakes every waiter on the handle and,
 * if the pfn is no longer tracked, frees the handle.  The caller of get
 * must already hold a reference on @p, or have found @p through a tracked
 * entry under the layout lock (dx_track does that).
 * Context: any; never sleeps.  A put is one compare-and-swap, except the
 * final one, which takes the pfn-index lock (the innermost lock, below
 * the wait table, never held while sleeping): no layout, xarray or entry
 * lock, so unpins always make progress while break_layouts waits.
 * Return: nothing.
 */
void dx_page_get(struct dx_page *p, enum dx_ref kind);
void dx_page_put(struct dx_page *p, enum dx_ref kind);
/*
 * dx_pin_get() - take a pin reference under the layout lock (shared),
 * refused while a recall is under way.
 * Context: the caller holds the layout lock (shared) and a reference on
 * @p; never sleeps.  Return: 0, -EBUSY.
 */
int dx_pin_get(struct dx_mapping *m, struct dx_page *p);

/*
 * dx_page_refcount() - the current reference count (for tests and
 * introspection; racy by nature).  Context: any.  Return: the count.
 */
uint32_t dx_page_refcount(const struct dx_page *p);

/*
 * Entry locks (the kernel's grab_mapping_entry / dax_unlock_entry).
 *
 * dx_entry_grab() - lock the entry covering @index, waiting while another
 * thread holds it; when nothing is there insert a locked EMPTY placeholder
 * of @order (0 or UDAX_HUGE_ORDER) at the aligned index.
 * Context: no xarray or dax lock held (the layout lock may be); may sleep.
 * Return: 0 and *entryp (the locked entry, LOCKED set); -EEXIST if @order is
 * huge and smaller entries already sit in the aligned range (small entries
 * are never upgraded), or a huge entry is asked for where a small one is;
 * -ENOMEM.
 */
int dx_entry_grab(struct dx_mapping *m, uint64_t index, unsigned int order,
		    uint64_t *entryp);
/*
 * dx_entry_unlock() - store @entry (LOCKED ignored) over the locked entry
 * covering @index and wake one exclusive waiter (and every non-exclusive
 * one).  An EMPTY @entry deletes the placeholder instead (wakes all).
 * Context: the caller holds that entry lock (dx_entry_grab()); takes the
 * xarray and wait-table locks briefly, never sleeps.  Return: nothing.
 */
void dx_entry_unlock(struct dx_mapping *m, uint64_t index, uint64_t entry);
/*
 * dx_entry_delete() - erase the locked entry covering @index, wake all.
 * Context: as dx_entry_unlock().  Return: nothing.
 */
void dx_entry_delete(struct dx_mapping *m, uint64_t index);
/*
 * dx_entry_peek() - the entry covering @index, locked or not.
 * Context: takes the xarray lock; never sleeps.
 * Return: the entry value (0 if none).
 */
uint64_t dx_entry_peek(struct dx_mapping *m, uint64_t index);

struct dx_page_info {
	uint64_t ino, index, pfn;
	unsigned int order;
	uint32_t refcount, mapcount, pincount;
	bool tracked;
	uint64_t age_ns;		/* since the handle was created */
};
/*
 * dx_page_info() - a snapshot of handle @p into *@out (counts read
 * without a lock: racy by nature).  Context: the caller keeps @p alive
 * (a reference, or the pfn-index lock as in dx_dax_foreach_handle()).
 * Return: nothing.
 */
void dx_page_info(const struct dx_page *p, struct dx_page_info *out);

/*
 * dx_break_layouts() - make [start, end] (inclusive page indexes; end may
 * be UDAX_END_OF_FILE) idle and untracked, so its blocks may be freed.
 * Recalls layouts, scans tracked entries (never shortcuts on "not mapped",
 * never skips a locked entry), waits with the layout lock dropped, rescans,
 * then deletes the entries.
 * Context: caller holds the layout lock exclusively; it is dropped and
 * retaken while waiting (except by UNTRACK_FIRST, see below) and is held
 * again on return, whatever the result.  Sleeps.
 * Return: 0 (range idle and untracked); -EINTR (interrupted) or -EBUSY
 * (recall timeout): nothing was deleted, the file is unchanged.
 *
 * Policies:
 *  DEFAULT: entries are deleted only by a pass that found every handle in
 *    the range idle (refcount 0, mappings included: recall is asynchronous,
 *    so a mapped page is busy until its client returned the layout).
 *  UNTRACK_FIRST (the 2024 linux-mm proposal): after waiting for locked
 *    entries, delete the entries and untrack the handles at once, then wait
 *    for each referenced handle's refcount to reach 0.  Handles stay alive
 *    (and in the pfn index, so I1 still protects their blocks) until then.
 *    Once the entries are gone nothing in the mapping shows that the range
 *    is still referenced, so this wait keeps the layout lock held (as the
 *    kernel keeps its invalidate lock): otherwise a second truncate would
 *    find the range empty, return 0, and its caller would free blocks
 *    under DMA (the stress test caught exactly that).  Puts take no layout
 *    lock, so they still make progress; pin grants wait on the lock.
 *    On -EINTR/-EBUSY the entries of the handles still referenced are put
 *    back (retracked), so "the file is unchanged" holds here too; entries
 *    of pages that went idle meanwhile are not, which only drops a cache.
 *  UNSAFE: no waiting for references (locked entries are still waited
 *    for): entries deleted, referenced handles left as orphans; the free
 *    path then counts the I1 violation (stats.unsafe_frees) and detaches
 *    the orphans instead of aborting.  For the benchmark's demonstration.
 */
int dx_break_layouts(struct dx_mapping *m, uint64_t start, uint64_t end,
		       const struct dx_wait_ctx *w);

/*
 * dx_dax_assert_free() - I1 in the allocator's free path: abort (always
 * on) if any pfn in [pfn, pfn + npages) has a live handle (tracked or
 * referenced).  Under UDAX_POLICY_UNSAFE it only counts the violation.
 * Context: the owner's layout lock held exclusively; takes the pfn-index
 * lock.  Return: nothing (it does not return on a violation).
 */
void dx_dax_assert_free(struct dx_dax *d, uint64_t pfn, uint64_t npages);
/*
 * dx_dax_pfn_busy() - Context: takes the pfn-index lock.
 * Return: true if any pfn in [@pfn, @pfn + @npages) has a live handle.
 */
bool dx_dax_pfn_busy(struct dx_dax *d, uint64_t pfn, uint64_t npages);

/* ---- introspection (udaxctl status shows it) ---- */
struct dx_dax_stats {
	uint64_t tracked_entries;	/* entries in all mappings */
	uint64_t live_handles;
	uint64_t busy_handles;		/* refcount != 0 */
	uint64_t waiters;		/* break_layouts calls sleeping now */
	uint64_t handle_bytes;		/* DRAM used by handles and index nodes */
	uint64_t unsafe_frees;		/* I1 violations allowed by the unsafe policy */
	uint64_t entry_waiters;		/* threads sleeping on an entry lock */
	uint64_t entry_wakeups;		/* entry-lock waiters woken so far */
};
/*
 * dx_dax_stats() - the counters above into *@out.
 * Context: takes the pfn-index lock (the counters outside it are atomics).
 * Return: nothing.
 */
void dx_dax_stats(struct dx_dax *d, struct dx_dax_stats *out);
/*
 * dx_mapping_mem_bytes() - bytes used by one mapping's entry tree (DRAM
 * accounting).  Context: takes the xarray lock.  Return: the bytes.
 */
size_t dx_mapping_mem_bytes(struct dx_mapping *m);
/*
 * dx_dax_foreach_handle() - call @cb for each live handle; stop early
 * when @cb returns non-zero.  Context: @cb runs with the pfn-index lock
 * held: it must not call back into the dax layer (copy what it needs).
 * Return: 0, or the non-zero value @cb stopped with.
 */
int dx_dax_foreach_handle(struct dx_dax *d,
			    int (*cb)(const struct dx_page_info *pi, void *arg), void *arg);
struct dx_waiter_info {
	uint64_t ino, start, end;	/* the break_layouts range */
	uint64_t wait_index, wait_pfn;	/* the busy page it sleeps on */
	uint32_t refcount;		/* that page's refcount now */
	uint64_t waiting_ns;		/* how long it has waited so far */
	bool entry_lock;		/* waits for a locked entry, not a page */
};
/*
 * dx_dax_busy_report() - one line saying what keeps blocks busy, for
 * unmount's refusal and for logs, e.g. "2 pages in use: ino 12 index 7
 * pfn 0x1a refs 2 (mapped 1, pinned 1) for 4.1 s; ...".  Lists the oldest
 * few; truncated to @len (always NUL-terminated when @len > 0).
 * Context: takes the pfn-index lock.
 * Return: the number of handles with a non-zero refcount.
 */
uint64_t dx_dax_busy_report(struct dx_dax *d, char *buf, size_t len);
/*
 * dx_dax_foreach_waiter() - as dx_dax_foreach_handle(), for the
 * break_layouts calls sleeping now.  Context and Return: the same.
 */
int dx_dax_foreach_waiter(struct dx_dax *d,
			    int (*cb)(const struct dx_waiter_info *wi, void *arg), void *arg);

#endif /* UDAX_DAX_H */
