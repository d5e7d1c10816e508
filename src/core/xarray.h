/* SPDX-License-Identifier: MIT */
/*
 * xarray.h - a radix tree from an unsigned long index to a pointer-sized
 * entry, with multi-order entries and three marks.  Our own, written for
 * udaxfs after reading the Linux xarray (lib/xarray.c) for its ideas.
 *
 * Entries.  A user entry is either a pointer aligned to 4 bytes or a value
 * entry made with xa_mk_value() (low bit set).  NULL means "empty".  Entries
 * whose two low bits are 10 are internal (tree nodes, sibling slots, errors)
 * and are never accepted from or returned to the user, except error entries
 * returned by the store functions (test them with xa_is_err()/xa_err()).
 *
 * Multi-order entries.  xa_store_order(xa, index, order, entry, flags) stores
 * one entry over the 2^order aligned indexes containing @index; a load of any
 * of them returns it, erase of any of them removes it.  A store whose extent
 * overlaps an entry of a different extent (a small entry inside a huge one,
 * or a huge entry over small ones) is refused with -EEXIST, unless the caller
 * asks for XA_STORE_REPLACE, which first erases everything overlapping.
 *
 * Marks.  XA_MARK_0..2 are per-entry bits, propagated towards the root so
 * xa_find(..., XA_MARK_n) skips unmarked subtrees.  A multi-order entry has
 * one set of marks.  Replacing an entry by another of the same extent keeps
 * its marks; erasing clears them.
 *
 * Locking.  Each tree has one mutex, xa->lock (or shares another tree's,
 * see xa_init_shared(); xa_lock() takes whichever it uses).
 *   xa_*    take and drop the lock themselves;
 *   __xa_*  must be called with the lock held (xa_lock()/xa_unlock());
 *           the ones that may allocate (store, insert, cmpxchg) may DROP and
 *           RETAKE the lock to allocate memory (see below), so a caller must
 *           not rely on state read before the call; erase, load, find, marks
 *           and cursors never drop it.
 * Memory.  Nodes a store needs are counted first, without changing the tree;
 * they are allocated (first with the lock held, "may_block = false"; if that
 * fails, the lock is dropped, the allocation made with "may_block = true",
 * the lock retaken and the whole operation re-evaluated), and only then is
 * the tree changed.  So a store that returns -ENOMEM left the tree unchanged.
 *
 * Fan-out.  XA_CHUNK_SHIFT (default 6: 64 slots per node) is a compile-time
 * constant; the unit tests build this file a second time with
 * -DXA_CHUNK_SHIFT=2 so that small index sets make deep trees.  The
 * structures in this header do not depend on it.
 */
#ifndef UDAX_XARRAY_H
#define UDAX_XARRAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XA_MAX_MARKS 3
typedef unsigned int xa_mark_t;
#define XA_MARK_0  0U
#define XA_MARK_1  1U
#define XA_MARK_2  2U
#define XA_PRESENT 8U		/* filter for xa_find: any present entry */

/* xa_store_order() flags */
#define XA_STORE_REPLACE 0x1U	/* erase overlapping entries of other extents */

struct xa_node;

struct xarray {
	pthread_mutex_t lock;
	pthread_mutex_t *lockp;		/* &lock, or another tree's (xa_init_shared) */
	struct xa_node *head;		/* root node or NULL; *lockp */
	unsigned long nr_nodes;		/* nodes in this tree; *lockp */
	unsigned long node_gen;		/* bumped when a node is freed; *lockp */
};

/*
 * ---- entry encoding ----
 * Context: any (pure functions of their argument).
 * xa_mk_value() - Return: the value entry holding @v (v < LONG_MAX).
 * xa_to_value() - Return: the value a value entry holds.
 * xa_is_value() / xa_is_internal() - Return: is @entry of that kind?
 */
static inline void *xa_mk_value(unsigned long v)
{
	return (void *)((v << 1) | 1UL);
}
static inline unsigned long xa_to_value(const void *entry)
{
	return (unsigned long)entry >> 1;
}
static inline bool xa_is_value(const void *entry)
{
	return (unsigned long)entry & 1UL;
}
static inline bool xa_is_internal(const void *entry)
{
	return ((unsigned long)entry & 3UL) == 2UL;
}
/*
 * Error entries: internal entries holding a small negative errno.
 * xa_mk_err() - Return: the error entry for @err (-4095 <= @err < 0).
 * xa_is_err() - Return: is @entry an error entry?
 */
static inline void *xa_mk_err(int err)
{
	return (void *)(((unsigned long)(long)err << 2) | 2UL);
}
static inline bool xa_is_err(const void *entry)
{
	return xa_is_internal(entry) && (long)entry < 0 && (long)entry >= -(4096L << 2);
}
/* Return: the -errno held by an error entry, else 0. */
static inline int xa_err(const void *entry)
{
	return xa_is_err(entry) ? (int)(((long)entry - 2) / 4) : 0;
}

/* ---- lifetime ---- */
/* xa_init() - an empty tree with a lock of its own.  Context: before use.  Return: nothing. */
void xa_init(struct xarray *xa);
/*
 * xa_init_shared() - a tree protected by @owner's lock (taken and dropped
 * through either tree): for two indexes that must change together.
 * @owner must outlive @xa.  Context: before use.  Return: nothing.
 */
void xa_init_shared(struct xarray *xa, struct xarray *owner);
/*
 * xa_destroy() - free every node; the entries themselves are the caller's.
 * Context: no lock held, nobody else uses @xa.  Return: nothing.
 */
void xa_destroy(struct xarray *xa);
/* xa_lock() / xa_unlock() - the tree's lock (its own or the shared one).  Context: may sleep. */
static inline void xa_lock(struct xarray *xa) { pthread_mutex_lock(xa->lockp); }
static inline void xa_unlock(struct xarray *xa) { pthread_mutex_unlock(xa->lockp); }
/* xa_empty() - Context: the lock held, or a racy hint.  Return: does the tree hold nothing? */
static inline bool xa_empty(const struct xarray *xa) { return xa->head == NULL; }

/* ---- single entries ---- */
/*
 * xa_load() - Context: takes the lock (the __ form: lock held); never sleeps
 * otherwise.  Return: the entry covering @index, or NULL.
 */
void *xa_load(struct xarray *xa, unsigned long index);
void *__xa_load(const struct xarray *xa, unsigned long index);
/*
 * __xa_load_extent() - like __xa_load, and also report the covering
 * entry's first index and order (both untouched when nothing is there).
 * Context: lock held.  Return: the entry, or NULL.
 */
void *__xa_load_extent(const struct xarray *xa, unsigned long index,
		       unsigned long *firstp, unsigned int *orderp);

/*
 * xa_store_order() - store @entry over the aligned 2^@order indexes
 * containing @index.  A NULL @entry erases the entry covering @index.
 * Context: takes xa->lock (the __ form: lock held, may drop and retake it).
 * Return: the entry previously there (NULL if none), or an error entry:
 * -EEXIST (overlap with an entry of a different extent and no
 * XA_STORE_REPLACE), -EINVAL (internal entry or order too big), -ENOMEM.
 * With XA_STORE_REPLACE the old entry returned is the one that covered
 * @index (others erased on the way are dropped: the caller owns them).
 */
void *xa_store_order(struct xarray *xa, unsigned long index, unsigned int order,
		     void *entry, unsigned int flags);
void *__xa_store_order(struct xarray *xa, unsigned long index, unsigned int order,
		       void *entry, unsigned int flags);
/* xa_store() - xa_store_order() of order 0, no flags.  Context and Return: the same. */
static inline void *xa_store(struct xarray *xa, unsigned long index, void *entry)
{
	return xa_store_order(xa, index, 0, entry, 0);
}
/*
 * xa_insert_order() - store only if every index of the extent is empty.
 * Return: 0, -EEXIST, -EINVAL, -ENOMEM.  Context: as xa_store_order.
 */
int xa_insert_order(struct xarray *xa, unsigned long index, unsigned int order, void *entry);
int __xa_insert_order(struct xarray *xa, unsigned long index, unsigned int order, void *entry);
/*
 * xa_cmpxchg() - if the entry covering @index is @old, replace it by @entry
 * (same extent; order 0 when @old is NULL; NULL @entry erases).
 * Context: as xa_store_order().
 * Return: the entry that was there (== @old on success) or an error entry.
 */
void *xa_cmpxchg(struct xarray *xa, unsigned long index, void *old, void *entry);
void *__xa_cmpxchg(struct xarray *xa, unsigned long index, void *old, void *entry);
/*
 * xa_erase() - erase the entry covering @index (its whole extent) and its
 * marks, freeing nodes that become empty.
 * Context: takes the lock (the __ form: lock held; never drops it).
 * Return: the erased entry, or NULL.
 */
void *xa_erase(struct xarray *xa, unsigned long index);
void *__xa_erase(struct xarray *xa, unsigned long index);
/* xa_get_order() - Context: takes the lock.  Return: order of the entry covering @index, 0 if none. */
unsigned int xa_get_order(struct xarray *xa, unsigned long index);

/*
 * ---- marks ----
 * xa_set_mark() / xa_clear_mark() - set or clear @mark on the entry
 * covering @index (nothing there: nothing done), propagating to the root.
 * xa_get_mark() - Return: is @mark set on the entry covering @index?
 * Context: take the lock (the __ forms: lock held); never drop it.
 */
void xa_set_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);
void xa_clear_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);
bool xa_get_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);
void __xa_set_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);
void __xa_clear_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);
bool __xa_get_mark(const struct xarray *xa, unsigned long index, xa_mark_t mark);

/* ---- search ---- */
/*
 * xa_find() - the first entry matching @filter (XA_PRESENT or a mark) that
 * covers an index in [*indexp, max].  On success *indexp is set to the
 * entry's first index (which may be below the starting *indexp when a
 * multi-order entry covers it).
 * Context: takes the lock (the __ form: lock held, and *@orderp, if not
 * NULL, receives the entry's order).
 * Return: the entry or NULL.
 */
void *xa_find(struct xarray *xa, unsigned long *indexp, unsigned long max, xa_mark_t filter);
void *__xa_find(const struct xarray *xa, unsigned long *indexp, unsigned long max,
		xa_mark_t filter, unsigned int *orderp);
/*
 * xa_find_after() - like xa_find, strictly after the entry at *indexp (past
 * its whole extent).  Context and Return: as xa_find().
 */
void *xa_find_after(struct xarray *xa, unsigned long *indexp, unsigned long max,
		    xa_mark_t filter);

/*
 * A cursor walks [start, max] in index order and may be paused: the caller
 * holds xa->lock across __xa_cursor_next() calls, and may drop it between
 * two calls after xa_cursor_pause(); the walk then resumes after the last
 * entry returned (entries stored or erased meanwhile are seen or not seen
 * according to where they lie).  Erasing entries (even the one just
 * returned) between calls with the lock held is allowed.  The cursor
 * remembers the leaf it is in and steps along its slots, re-descending
 * from the root only at the end of a leaf or after a node was freed
 * (xa->node_gen changed), so a walk costs about one slot per entry.
 */
struct xa_cursor {
	struct xarray *xa;
	unsigned long next;		/* where the next search starts */
	unsigned long max;
	unsigned long index;		/* first index of the entry last returned */
	unsigned int order;		/* its order */
	xa_mark_t filter;
	bool done;
	struct xa_node *node;		/* leaf of the last entry; NULL after pause */
	unsigned long gen;		/* xa->node_gen when node was cached */
};
/*
 * xa_cursor_init() - a cursor over the entries of [@start, @max] of @xa
 * matching @filter (XA_PRESENT or a mark).  Context: any.  Return: nothing.
 */
void xa_cursor_init(struct xa_cursor *c, struct xarray *xa, unsigned long start,
		    unsigned long max, xa_mark_t filter);
/*
 * __xa_cursor_next() - the next matching entry; c->index and c->order say
 * where it lies.  Context: lock held.  Return: the entry, or NULL (done).
 */
void *__xa_cursor_next(struct xa_cursor *c);
/*
 * __xa_cursor_erase() - erase the entry last returned (no descent when the
 * leaf is cached).  Context: lock held.  Return: the erased entry.
 */
void *__xa_cursor_erase(struct xa_cursor *c);
/*
 * xa_cursor_pause() - forget the cached leaf, so that the lock may be
 * dropped before the next __xa_cursor_next().  Context: any.  Return: nothing.
 */
static inline void xa_cursor_pause(struct xa_cursor *c) { c->node = NULL; }

#define xa_for_each_range(xa, index, entry, start, last)			\
	for ((index) = (start), (entry) = xa_find((xa), &(index), (last), XA_PRESENT); \
	     (entry); (entry) = xa_find_after((xa), &(index), (last), XA_PRESENT))

/* ---- memory accounting and test hooks ---- */
struct xa_alloc_ops {
	/* may_block is false for the first attempt, made with the lock held. */
	void *(*alloc)(size_t size, bool may_block, void *arg);
	void (*free)(void *p, size_t size, void *arg);
	void *arg;
};
/*
 * xa_set_alloc_ops() - replace the node allocator for every tree (NULL:
 * malloc).  Tests only.  Context: no tree is changing.  Return: nothing.
 */
void xa_set_alloc_ops(const struct xa_alloc_ops *ops);
/* xa_nodes_live() - Context: any (atomic).  Return: nodes alive in all trees (leak checks). */
long xa_nodes_live(void);
/* xa_node_size() - Context: any.  Return: bytes of one node. */
size_t xa_node_size(void);
/* xa_mem_bytes() - Context: takes the lock.  Return: bytes used by this tree's nodes. */
size_t xa_mem_bytes(struct xarray *xa);
/* xa_chunk_shift() - Context: any.  Return: the fan-out shift this file was built with. */
unsigned int xa_chunk_shift(void);

#endif /* UDAX_XARRAY_H */
