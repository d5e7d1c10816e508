/* SPDX-License-Identifier: MIT */
/*
 * dax.c - mapping entries, entry locks and their wait table, the busy scan,
 * break_layouts and its policies, the free-path invariant, introspection.
 * See dax.h for the model, the lock order and the contracts.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dax_int.h"

/* ---- policies ---- */
static const char *const dx_policy_names[] = {
	[UDAX_POLICY_DEFAULT] = "default",
	[UDAX_POLICY_UNTRACK_FIRST] = "untrack-first",
	[UDAX_POLICY_UNSAFE] = "unsafe",
};

const char *dx_policy_name(enum dx_policy p)
{
	if ((unsigned int)p >= UDAX_ARRAY_SIZE(dx_policy_names))
		return "unknown";
	return dx_policy_names[p];
}

int dx_policy_parse(const char *name, enum dx_policy *out)
{
	unsigned int i;

	for (i = 0; name && i < UDAX_ARRAY_SIZE(dx_policy_names); i++) {
		if (!strcasecmp(name, dx_policy_names[i])) {
			*out = (enum dx_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the per-mount object ---- */
int dx_dax_new(struct dx_dax **out, const struct dx_dax_opts *o)
{
	struct dx_dax *d;
	unsigned int i;

	*out = NULL;
	if (o && (unsigned int)o->policy > UDAX_POLICY_UNSAFE)
		return -EINVAL;
	d = aligned_alloc(64, UDAX_ALIGN_UP(sizeof(*d), 64));
	if (!d)
		return -ENOMEM;
	memset(d, 0, sizeof(*d));
	if (o)
		d->opts = *o;
	else
		d->opts.numa_node = -1;
	d->epoch_ns = dx_now_ns();
	xa_init(&d->pfns);
	xa_init_shared(&d->pfns_huge, &d->pfns);
	for (i = 0; i < UDAX_WAIT_BUCKETS; i++)
		pthread_mutex_init(&d->buckets[i].lock, NULL);
	*out = d;
	return 0;
}

void dx_dax_delete(struct dx_dax **dp)
{
	struct dx_dax *d = dp ? *dp : NULL;
	unsigned int i;

	if (!d)
		return;
	xa_lock(&d->pfns);
	UDAX_BUG_ON(d->live_handles != 0);
	UDAX_BUG_ON(d->waiters != NULL);
	dx_handle_chunks_free(d);
	xa_unlock(&d->pfns);
	xa_destroy(&d->pfns_huge);
	xa_destroy(&d->pfns);
	for (i = 0; i < UDAX_WAIT_BUCKETS; i++) {
		UDAX_BUG_ON(d->buckets[i].head != NULL);
		pthread_mutex_destroy(&d->buckets[i].lock);
	}
	free(d);
	*dp = NULL;
}

enum dx_policy dx_dax_policy(const struct dx_dax *d)
{
	return d->opts.policy;
}

/* ---- the per-inode mapping ---- */
int dx_mapping_init(struct dx_mapping *m, struct dx_dax *dax, uint64_t ino)
{
	pthread_rwlockattr_t a;
	int r;

	m->dax = dax;
	m->ino = ino;
	m->recalling = 0;
	xa_init(&m->entries);
	pthread_rwlockattr_init(&a);
	/* A truncate must not starve behind a stream of layout grants. */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	r = pthread_rwlock_init(&m->layout_lock, &a);
	pthread_rwlockattr_destroy(&a);
	if (r) {
		xa_destroy(&m->entries);
		return -r;
	}
	return 0;
}

void dx_mapping_destroy(struct dx_mapping *m)
{
	UDAX_BUG_ON(!xa_empty(&m->entries));
	xa_destroy(&m->entries);
	pthread_rwlock_destroy(&m->layout_lock);
}

void dx_layout_lock_shared(struct dx_mapping *m)
{
	pthread_rwlock_rdlock(&m->layout_lock);
}

void dx_layout_unlock_shared(struct dx_mapping *m)
{
	pthread_rwlock_unlock(&m->layout_lock);
}

void dx_layout_lock_excl(struct dx_mapping *m)
{
	pthread_rwlock_wrlock(&m->layout_lock);
}

void dx_layout_unlock_excl(struct dx_mapping *m)
{
	pthread_rwlock_unlock(&m->layout_lock);
}

size_t dx_mapping_mem_bytes(struct dx_mapping *m)
{
	return xa_mem_bytes(&m->entries);
}

static inline bool dx_recalling(const struct dx_mapping *m)
{
	return __atomic_load_n(&m->recalling, __ATOMIC_ACQUIRE) != 0;
}

/* ---- entry values ---- */
static inline uint64_t dx_xa_to_entry(const void *e)
{
	return (uint64_t)xa_to_value(e);
}
static inline void *dx_entry_to_xa(uint64_t v)
{
	return xa_mk_value((unsigned long)v);
}

/* ---- the entry wait table ---- */
static struct dx_wait_bucket *dx_bucket(struct dx_dax *d, const struct dx_mapping *m,
					    uint64_t index)
{
	uint64_t h = ((uint64_t)(uintptr_t)m >> 4) * 0x9E3779B97F4A7C15ULL;

	h ^= index * 0xC2B2AE3D27D4EB4FULL;
	h ^= h >> 29;
	return &d->buckets[(h * 0x9E3779B97F4A7C15ULL) >> 56 & (UDAX_WAIT_BUCKETS - 1)];
}

/*
 * Queue @ew for the entry (m, index).  Context: the mapping's xa lock held,
 * and the entry seen LOCKED under it: the unlocker changes the entry under
 * that lock first, so its wake comes after this and cannot be lost.
 */
static void dx_ewait_queue(struct dx_dax *d, struct dx_ewait *ew)
{
	struct dx_wait_bucket *b = dx_bucket(d, ew->m, ew->index);

	__atomic_store_n(&ew->woken, 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&b->lock);
	ew->next = NULL;
	ew->prev = b->tail;
	if (b->tail)
		b->tail->next = ew;
	else
		b->head = ew;
	b->tail = ew;
	ew->queued = true;
	__atomic_add_fetch(&b->nwaiters, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&b->lock);
	__atomic_add_fetch(&d->entry_waiters, 1, __ATOMIC_RELAXED);
}

static void dx_ewait_unqueue_locked(struct dx_wait_bucket *b, struct dx_ewait *ew)
{
	if (!ew->queued)
		return;
	if (ew->prev)
		ew->prev->next = ew->next;
	else
		b->head = ew->next;
	if (ew->next)
		ew->next->prev = ew->prev;
	else
		b->tail = ew->prev;
	ew->queued = false;
	__atomic_sub_fetch(&b->nwaiters, 1, __ATOMIC_RELEASE);
}

/* Leave the queue (if a waker did not already take us off).  Return: woken. */
static uint32_t dx_ewait_finish(struct dx_dax *d, struct dx_ewait *ew)
{
	struct dx_wait_bucket *b = dx_bucket(d, ew->m, ew->index);
	uint32_t woken;

	pthread_mutex_lock(&b->lock);
	dx_ewait_unqueue_locked(b, ew);
	woken = __atomic_load_n(&ew->woken, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&b->lock);
	__atomic_sub_fetch(&d->entry_waiters, 1, __ATOMIC_RELAXED);
	return woken;
}

/*
 * Wake waiters of (m, index): UDAX_WAKE_ONE wakes every non-exclusive
 * waiter and the first exclusive one (an unlock), UDAX_WAKE_ALL everyone
 * (the entry was deleted or replaced).
 * Context: any lock up to the mapping's xa lock may be held.
 */
static void dx_entry_wake(struct dx_dax *d, struct dx_mapping *m, uint64_t index,
			    uint32_t mode)
{
	struct dx_wait_bucket *b = dx_bucket(d, m, index);
	struct dx_ewait *ew, *next;
	bool one_done = false;

	if (!__atomic_load_n(&b->nwaiters, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&b->lock);
	for (ew = b->head; ew; ew = next) {
		next = ew->next;
		if (ew->m != m || ew->index != index)
			continue;
		if (ew->excl && mode == UDAX_WAKE_ONE) {
			if (one_done)
				continue;
			one_done = true;
		}
		dx_ewait_unqueue_locked(b, ew);
		__atomic_add_fetch(&d->entry_wakeups, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&ew->woken, mode, __ATOMIC_RELEASE);
		/* Still under the bucket lock: ew cannot have gone away. */
		dx_futex_wake(&ew->woken, 1);
	}
	pthread_mutex_unlock(&b->lock);
}

/*
 * Sleep until @ew is woken.  With @w, interruptible and bounded by
 * @deadline.  Return: 0 (woken), -EINTR, -EBUSY.
 */
static int dx_ewait_sleep(struct dx_ewait *ew, const struct dx_wait_ctx *w,
			    uint64_t deadline)
{
	uint64_t slice;
	int r;

	for (;;) {
		if (__atomic_load_n(&ew->woken, __ATOMIC_ACQUIRE))
			return 0;
		r = dx_wait_check(w, deadline, &slice);
		if (r)
			return r;
		dx_futex_wait(&ew->woken, 0, slice);
	}
}

/* ---- entry locks ---- */
int dx_entry_grab(struct dx_mapping *m, uint64_t index, unsigned int order,
		    uint64_t *entryp)
{
	struct dx_dax *d = m->dax;
	struct xarray *xa = &m->entries;
	uint64_t aligned, v;
	unsigned long first = 0;
	unsigned int eorder = 0;
	bool woken_one = false;
	void *e;
	int r;

	if (order != 0 && order != UDAX_HUGE_ORDER)
		return -EINVAL;
	aligned = index & ~((1ULL << order) - 1);
	xa_lock(xa);
	for (;;) {
		e = __xa_load_extent(xa, index, &first, &eorder);
		if (e) {
			v = dx_xa_to_entry(e);
			if (dx_entry_locked(v)) {
				struct dx_ewait ew = { .m = m, .index = first, .excl = true };

				dx_ewait_queue(d, &ew);
				xa_unlock(xa);
				dx_ewait_sleep(&ew, NULL, 0);
				woken_one = dx_ewait_finish(d, &ew) == UDAX_WAKE_ONE;
				xa_lock(xa);
				continue;
			}
			if (eorder < order) {
				r = -EEXIST;
				break;
			}
			v |= UDAX_ENTRY_LOCKED;
			/* Same extent: needs no memory, never drops the lock. */
			__xa_store_order(xa, first, eorder, dx_entry_to_xa(v), 0);
			*entryp = v;
			xa_unlock(xa);
			return 0;
		}
		v = UDAX_ENTRY_EMPTY | UDAX_ENTRY_LOCKED | (order ? UDAX_ENTRY_HUGE : 0);
		r = __xa_insert_order(xa, aligned, order, dx_entry_to_xa(v));
		if (r == -EEXIST && __xa_load(xa, index))
			continue;	/* raced while the lock was dropped to allocate */
		if (r)
			break;
		*entryp = v;
		xa_unlock(xa);
		return 0;
	}
	xa_unlock(xa);
	/* We were handed the lock by an unlock but do not take it: pass it on. */
	if (woken_one)
		dx_entry_wake(d, m, first, UDAX_WAKE_ONE);
	return r;
}

void dx_entry_unlock(struct dx_mapping *m, uint64_t index, uint64_t entry)
{
	struct xarray *xa = &m->entries;
	unsigned long first = 0;
	unsigned int order = 0;
	void *e;

	if (dx_entry_empty(entry)) {
		dx_entry_delete(m, index);
		return;
	}
	xa_lock(xa);
	e = __xa_load_extent(xa, index, &first, &order);
	UDAX_BUG_ON(!e || !dx_entry_locked(dx_xa_to_entry(e)));
	UDAX_BUG_ON(dx_entry_order(entry) != order);
	__xa_store_order(xa, first, order, dx_entry_to_xa(entry & ~UDAX_ENTRY_LOCKED), 0);
	xa_unlock(xa);
	dx_entry_wake(m->dax, m, first, UDAX_WAKE_ONE);
}

void dx_entry_delete(struct dx_mapping *m, uint64_t index)
{
	struct xarray *xa = &m->entries;
	unsigned long first = 0;
	unsigned int order = 0;
	void *e;

	xa_lock(xa);
	e = __xa_load_extent(xa, index, &first, &order);
	UDAX_BUG_ON(!e || !dx_entry_locked(dx_xa_to_entry(e)));
	__xa_erase(xa, first);
	xa_unlock(xa);
	dx_entry_wake(m->dax, m, first, UDAX_WAKE_ALL);
}

uint64_t dx_entry_peek(struct dx_mapping *m, uint64_t index)
{
	void *e = xa_load(&m->entries, index);

	return e ? dx_xa_to_entry(e) : 0;
}

/* ---- tracking ---- */

/*
 * The first live handle (in the index) covering a pfn of [pfn, pfn + n).
 * Context: pfn-index lock held.
 */
static struct dx_page *dx_pfn_busy_locked(struct dx_dax *d, uint64_t pfn, uint64_t n)
{
	unsigned long last, idx;
	struct dx_page *p;

	if (!n)
		return NULL;
	last = pfn + n - 1 >= pfn ? (unsigned long)(pfn + n - 1) : ~0UL;
	idx = (unsigned long)pfn;
	p = __xa_find(&d->pfns, &idx, last, XA_PRESENT, NULL);
	if (p)
		return p;
	idx = (unsigned long)(pfn >> UDAX_HUGE_ORDER);
	return __xa_find(&d->pfns_huge, &idx, last >> UDAX_HUGE_ORDER, XA_PRESENT, NULL);
}

/* Call @fn for every handle in the index.  Context: pfn-index lock held. */
static int dx_for_each_handle_locked(struct dx_dax *d,
				       int (*fn)(struct dx_page *p, void *arg), void *arg)
{
	struct xarray *trees[2] = { &d->pfns, &d->pfns_huge };
	struct dx_page *p;
	int r;

	for (unsigned int t = 0; t < 2; t++) {
		unsigned long idx = 0;

		while ((p = __xa_find(trees[t], &idx, ~0UL, XA_PRESENT, NULL))) {
			r = fn(p, arg);
			if (r)
				return r;
			if (idx == ~0UL)
				break;
			idx++;
		}
	}
	return 0;
}

/*
 * Create (or re-adopt) the handle for a new entry, with one ref of @kind.
 * Context: no xa lock held; the entry is locked (EMPTY placeholder).
 */
static int dx_handle_create(struct dx_mapping *m, uint64_t index, uint64_t pfn,
			      unsigned int order, enum dx_ref kind, struct dx_page **out)
{
	struct dx_dax *d = m->dax;
	struct dx_page *p;
	int r;

	unsigned long key;
	struct xarray *tree = dx_pfn_tree(d, order, pfn, &key);

	xa_lock(&d->pfns);
	for (;;) {
		p = __xa_load(tree, key);
		if (p) {
			/* An untracked handle still referenced (untrack-first policy). */
			if (!(dx_page_flags(p) & UDAX_PG_TRACKED) &&
			    dx_u64(p->ino) == m->ino && dx_u64(p->index) == index &&
			    p->order == order) {
				__atomic_or_fetch(&p->flags, UDAX_PG_TRACKED, __ATOMIC_RELAXED);
				dx_page_get(p, kind);
				r = 0;
				break;
			}
			r = -EEXIST;
			break;
		}
		if (dx_pfn_busy_locked(d, pfn, 1ULL << order)) {
			r = -EEXIST;
			break;
		}
		p = dx_handle_alloc(d);
		if (!p) {
			r = -ENOMEM;
			break;
		}
		p->order = (uint8_t)order;
		dx_set_u64(p->ino, m->ino);
		dx_set_u64(p->index, index);
		dx_set_u64(p->pfn, pfn);
		p->born_ms = (uint32_t)((dx_now_ns() - d->epoch_ns) / 1000000ULL);
		p->flags = UDAX_PG_TRACKED;
		p->refcount = 1;
		if (kind == UDAX_REF_MAP)
			p->mapcount = 1;
		else if (kind == UDAX_REF_PIN)
			p->pincount = 1;
		d->live_handles++;
		/* May drop the pfn lock to allocate: p is ours, not yet visible. */
		r = __xa_insert_order(tree, key, 0, p);
		if (r) {
			p->flags = UDAX_PG_DETACHED;
			dx_handle_free_locked(d, p);
			if (r == -EEXIST)
				continue;
			break;
		}
		break;
	}
	xa_unlock(&d->pfns);
	if (!r)
		*out = p;
	return r;
}

/* The handle of a tracked entry.  Context: pfn-index lock held. */
static struct dx_page *dx_handle_lookup_locked(struct dx_dax *d, uint64_t entry)
{
	uint64_t pfn = dx_entry_pfn(entry);
	unsigned long key;
	struct xarray *tree = dx_pfn_tree(d, dx_entry_order(entry), pfn, &key);
	struct dx_page *p = __xa_load(tree, key);

	UDAX_BUG_ON(!p || dx_u64(p->pfn) != pfn);
	return p;
}

int dx_track(struct dx_mapping *m, uint64_t index, uint64_t pfn,
	       unsigned int order, enum dx_ref kind, struct dx_page **out)
{
	struct dx_dax *d = m->dax;
	uint64_t e, want;
	struct dx_page *p;
	int r;

	if (order != 0 && order != UDAX_HUGE_ORDER)
		return -EINVAL;
	if ((index | pfn) & ((1ULL << order) - 1))
		return -EINVAL;
	if (dx_recalling(m))
		return -EBUSY;
	r = dx_entry_grab(m, index, order, &e);
	if (r)
		return r;
	if (dx_entry_empty(e)) {
		r = dx_handle_create(m, index, pfn, order, kind, &p);
		if (r) {
			dx_entry_delete(m, index);
			return r;
		}
		__atomic_add_fetch(&d->tracked_entries, 1, __ATOMIC_RELAXED);
		dx_entry_unlock(m, index, dx_entry_mk(pfn, order ? UDAX_ENTRY_HUGE : 0));
		*out = p;
		return 0;
	}
	want = dx_entry_mk(pfn, (order ? UDAX_ENTRY_HUGE : 0) | UDAX_ENTRY_LOCKED);
	if (e != want) {
		dx_entry_unlock(m, index, e);
		return -EEXIST;
	}
	xa_lock(&d->pfns);
	p = dx_handle_lookup_locked(d, e);
	dx_page_get(p, kind);
	xa_unlock(&d->pfns);
	dx_entry_unlock(m, index, e);
	*out = p;
	return 0;
}

int dx_pin_get(struct dx_mapping *m, struct dx_page *p)
{
	if (dx_recalling(m))
		return -EBUSY;
	dx_page_get(p, UDAX_REF_PIN);
	return 0;
}

/* ---- break_layouts ---- */
enum dx_scan { UDAX_SCAN_CLEAN, UDAX_SCAN_BUSY, UDAX_SCAN_LOCKED };

/*
 * One pass over the tracked entries of [start, end].  Stops at the first
 * locked entry (queues @ew on it: it will be waited on, then the same slot
 * reloaded by the next pass) or, with @check_busy, at the first handle with
 * a non-zero refcount (takes a hold on it).  Counts busy handles in *nbusy
 * when not stopping on them.
 * Context: the mapping's xa lock held; takes the pfn-index lock.
 */
static enum dx_scan dx_bl_scan(struct dx_mapping *m, uint64_t start, uint64_t end,
				   bool check_busy, struct dx_page **busyp,
				   struct dx_ewait *ew, uint64_t *idxp, size_t *nbusy)
{
	struct dx_dax *d = m->dax;
	enum dx_scan res = UDAX_SCAN_CLEAN;
	struct xa_cursor c;
	uint64_t v;
	void *e;

	*nbusy = 0;
	xa_cursor_init(&c, &m->entries, start, end, XA_PRESENT);
	xa_lock(&d->pfns);
	while ((e = __xa_cursor_next(&c))) {
		struct dx_page *p;

		v = dx_xa_to_entry(e);
		if (dx_entry_locked(v)) {
			*idxp = c.index;
			res = UDAX_SCAN_LOCKED;
			break;
		}
		if (dx_entry_zero(v) || dx_entry_empty(v))
			continue;
		p = dx_handle_lookup_locked(d, v);
		if (!dx_page_refcount(p))
			continue;
		if (check_busy) {
			UDAX_BUG_ON(p->holds == UINT16_MAX);
			p->holds++;
			*busyp = p;
			*idxp = c.index;
			res = UDAX_SCAN_BUSY;
			break;
		}
		(*nbusy)++;
	}
	xa_unlock(&d->pfns);
	if (res == UDAX_SCAN_LOCKED) {
		/* Queued under the xa lock, before the holder can unlock it. */
		ew->m = m;
		ew->index = *idxp;
		ew->excl = false;
		dx_ewait_queue(d, ew);
	}
	return res;
}

/* Untrack the handles of a batch of deleted entries.  Context: pfn lock. */
struct dx_untrack {
	struct dx_page **held;
	size_t nheld, n;
	uint64_t v[64];
	unsigned int nv;
};

static void dx_untrack_batch(struct dx_dax *d, struct dx_untrack *u)
{
	if (!u->nv)
		return;
	xa_lock(&d->pfns);
	for (unsigned int i = 0; i < u->nv; i++) {
		struct dx_page *p = dx_handle_lookup_locked(d, u->v[i]);

		__atomic_and_fetch(&p->flags, (uint8_t)~UDAX_PG_TRACKED, __ATOMIC_RELAXED);
		if (u->held && dx_page_refcount(p) && u->n < u->nheld) {
			UDAX_BUG_ON(p->holds == UINT16_MAX);
			p->holds++;
			u->held[u->n++] = p;
			continue;
		}
		dx_handle_maybe_free_locked(d, p);
	}
	xa_unlock(&d->pfns);
	u->nv = 0;
}

/*
 * Delete every entry of [start, end] and untrack its handle.  Idle handles
 * are freed; referenced ones (only possible under the untrack-first and
 * unsafe policies) stay alive, and with @held get a hold and are returned
 * in @held (room for @nheld of them, counted by the scan just before).
 * Context: the mapping's xa lock held, nothing locked in the range.
 */
static size_t dx_bl_delete(struct dx_mapping *m, uint64_t start, uint64_t end,
			     struct dx_page **held, size_t nheld)
{
	struct dx_dax *d = m->dax;
	struct dx_untrack u = { .held = held, .nheld = nheld };
	struct xa_cursor c;
	size_t deleted = 0;
	void *e;

	xa_cursor_init(&c, &m->entries, start, end, XA_PRESENT);
	while ((e = __xa_cursor_next(&c))) {
		uint64_t v = dx_xa_to_entry(e);

		UDAX_BUG_ON(dx_entry_locked(v));
		__xa_cursor_erase(&c);
		deleted++;
		/* Bucket lock under the xa lock only: the pfn lock is innermost. */
		dx_entry_wake(d, m, c.index, UDAX_WAKE_ALL);
		if (dx_entry_zero(v) || dx_entry_empty(v))
			continue;
		u.v[u.nv++] = v;
		if (u.nv == UDAX_ARRAY_SIZE(u.v))
			dx_untrack_batch(d, &u);
	}
	dx_untrack_batch(d, &u);
	__atomic_sub_fetch(&d->tracked_entries, deleted, __ATOMIC_RELAXED);
	return u.n;
}

static void dx_unhold(struct dx_dax *d, struct dx_page *p)
{
	xa_lock(&d->pfns);
	UDAX_BUG_ON(p->holds == 0);
	p->holds--;
	dx_handle_maybe_free_locked(d, p);
	xa_unlock(&d->pfns);
}

/*
 * Undo an untrack-first break that was interrupted: put back the entries
 * of the handles still referenced (each held by us) and drop the holds.
 * The layout lock has been held exclusively since the entries were
 * deleted, so their slots are still free.
 * Context: layout lock held exclusively; may sleep to allocate.
 */
static void dx_bl_retrack(struct dx_mapping *m, struct dx_page **held, size_t n)
{
	struct dx_dax *d = m->dax;

	for (size_t i = 0; i < n; i++) {
		struct dx_page *p = held[i];
		uint64_t index = dx_u64(p->index), pfn = dx_u64(p->pfn);
		uint64_t e = dx_entry_mk(pfn, p->order ? UDAX_ENTRY_HUGE : 0);
		int r;

		/* Nothing can have taken the slot; only memory can fail. */
		while ((r = xa_insert_order(&m->entries, index, p->order,
					    dx_entry_to_xa(e))) == -ENOMEM)
			dx_futex_wait(&(uint32_t){ 0 }, 0, 1000000ULL);
		UDAX_BUG_ON(r != 0);
		xa_lock(&m->entries);
		xa_lock(&d->pfns);
		if (dx_page_flags(p) & UDAX_PG_DETACHED) {
			/* Went idle meanwhile: no need to track it. */
			__xa_erase(&m->entries, index);
		} else {
			__atomic_or_fetch(&p->flags, UDAX_PG_TRACKED, __ATOMIC_RELAXED);
			__atomic_add_fetch(&d->tracked_entries, 1, __ATOMIC_RELAXED);
		}
		UDAX_BUG_ON(p->holds == 0);
		p->holds--;
		dx_handle_maybe_free_locked(d, p);
		xa_unlock(&d->pfns);
		xa_unlock(&m->entries);
	}
}

/* Wait for the locked entry @ew is queued on, lock dropped.  0/-EINTR/-EBUSY. */
static int dx_bl_wait_entry(struct dx_mapping *m, struct dx_ewait *ew,
			      struct dx_bwait *bw, const struct dx_wait_ctx *w,
			      uint64_t deadline)
{
	struct dx_dax *d = m->dax;
	int r;

	xa_lock(&d->pfns);
	bw->page = NULL;
	bw->word = &ew->woken;
	bw->wait_index = ew->index;
	bw->wait_pfn = 0;
	bw->t_begin = dx_now_ns();
	dx_bwait_link_locked(d, bw);
	xa_unlock(&d->pfns);
	r = dx_ewait_sleep(ew, w, deadline);
	dx_ewait_finish(d, ew);
	xa_lock(&d->pfns);
	dx_bwait_unlink_locked(d, bw);
	bw->word = NULL;
	xa_unlock(&d->pfns);
	return r;
}

/* One dx_break_layouts() call: its range, its deadline, what it measures. */
struct dx_break {
	struct dx_mapping *m;
	uint64_t start, end;
	const struct dx_wait_ctx *w;
	uint64_t deadline;		/* 0: none */
	struct dx_break_stats st;
	struct dx_bwait bw;		/* what introspection sees while it sleeps */
};

/* Wait for handle @p (found at @idx) to go idle.  0/-EINTR/-EBUSY. */
static int dx_bl_wait_page(struct dx_break *b, struct dx_page *p, uint64_t idx,
			   bool keep_hold)
{
	int r;

	b->st.waits++;
	b->bw.wait_index = idx;
	r = dx_page_wait_idle(b->m->dax, p, &b->bw, b->w, b->deadline, keep_hold);
	if (!r && b->bw.t_unpin > b->st.t_last_unpin)
		b->st.t_last_unpin = b->bw.t_unpin;
	return r;
}

/*
 * The scan and wait every policy shares: recall, then pass over the range
 * until a pass from @start to @end finds nothing to wait for: no locked
 * entry and, with @wait_busy, no referenced handle.  Each wait drops the
 * layout lock.  After a wait the scan goes on from the entry it waited on
 * (reloading that same slot) rather than from @start, so n busy pages cost
 * n waits, not n full scans; but only a pass that went from @start to
 * @end without waiting may delete anything.
 * Return: 0 with the mapping's xa lock held and *@nbusy the referenced
 * handles of the clean pass (without @wait_busy), or -EINTR/-EBUSY.
 */
static int dx_bl_wait_clean(struct dx_break *b, bool wait_busy, size_t *nbusy)
{
	struct dx_mapping *m = b->m;
	uint64_t pos = b->start;
	int r;

	for (;;) {
		struct dx_ewait ew = { 0 };
		struct dx_page *busy = NULL;
		enum dx_scan res;
		uint64_t idx = 0;

		if (pos == b->start) {
			struct dx_dax *d = m->dax;

			b->st.passes++;
			if (d->opts.ops && d->opts.ops->recall)
				d->opts.ops->recall(d->opts.ops_arg, m->ino, b->start, b->end);
			if (!b->st.t_recall_sent)
				b->st.t_recall_sent = dx_now_ns();
		}
		xa_lock(&m->entries);
		res = dx_bl_scan(m, pos, b->end, wait_busy, &busy, &ew, &idx, nbusy);
		if (res == UDAX_SCAN_CLEAN && pos == b->start)
			return 0;
		xa_unlock(&m->entries);
		if (res == UDAX_SCAN_CLEAN) {
			pos = b->start;	/* resumed pass done: now a full one */
			continue;
		}
		dx_layout_unlock_excl(m);
		if (res == UDAX_SCAN_BUSY) {
			r = dx_bl_wait_page(b, busy, idx, false);
		} else {
			b->st.waits++;
			r = dx_bl_wait_entry(m, &ew, &b->bw, b->w, b->deadline);
		}
		dx_layout_lock_excl(m);
		if (r)
			return r;
		/* Reload the same slot (a huge entry may start before @start). */
		pos = dx_max(idx, b->start);
	}
}

/* DEFAULT: delete only after a pass found every handle idle. */
static int dx_break_default(struct dx_break *b)
{
	size_t nbusy;
	int r = dx_bl_wait_clean(b, true, &nbusy);

	if (r)
		return r;
	b->st.t_idle = dx_now_ns();
	dx_bl_delete(b->m, b->start, b->end, NULL, 0);
	xa_unlock(&b->m->entries);
	return 0;
}

/* UNSAFE: delete at once, leaving referenced handles as orphans. */
static int dx_break_unsafe(struct dx_break *b)
{
	size_t nbusy;
	int r = dx_bl_wait_clean(b, false, &nbusy);

	if (r)
		return r;
	dx_bl_delete(b->m, b->start, b->end, NULL, 0);
	xa_unlock(&b->m->entries);
	b->st.t_idle = dx_now_ns();
	return 0;
}

/* UNTRACK_FIRST: delete at once, then wait for the handles still referenced. */
static int dx_break_untrack_first(struct dx_break *b)
{
	struct dx_page **held = NULL;
	size_t nbusy, nheld, i;
	int r = dx_bl_wait_clean(b, false, &nbusy);

	if (r)
		return r;
	if (nbusy) {
		held = calloc(nbusy, sizeof(*held));
		if (!held) {
			xa_unlock(&b->m->entries);
			return -ENOMEM;
		}
	}
	nheld = dx_bl_delete(b->m, b->start, b->end, held, nbusy);
	xa_unlock(&b->m->entries);
	/*
	 * The entries are gone, so nothing in the mapping says these blocks
	 * are still referenced.  Wait with the layout lock held (as the
	 * kernel waits holding its invalidate lock), so no other
	 * break_layouts can find the range empty and free what is still
	 * under DMA; puts take no layout lock, so they make progress.
	 */
	for (i = 0; i < nheld; i++) {
		r = dx_bl_wait_page(b, held[i], dx_u64(held[i]->index), true);
		if (r)
			break;
		dx_unhold(b->m->dax, held[i]);
	}
	/* Interrupted: track again what is still referenced. */
	if (r)
		dx_bl_retrack(b->m, held + i, nheld - i);
	else
		b->st.t_idle = dx_now_ns();
	free(held);
	return r;
}

int dx_break_layouts(struct dx_mapping *m, uint64_t start, uint64_t end,
		     const struct dx_wait_ctx *w)
{
	struct dx_break b = {
		.m = m, .start = start, .end = end, .w = w,
		.bw = { .m = m, .start = start, .end = end },
	};
	uint64_t timeout;
	int r = 0;

	b.st.t_start = dx_now_ns();
	if (start <= end) {
		timeout = w && w->timeout_ns ? w->timeout_ns : m->dax->opts.recall_timeout_ns;
		if (timeout)
			b.deadline = b.st.t_start + timeout;
		__atomic_add_fetch(&m->recalling, 1, __ATOMIC_ACQ_REL);
		switch (m->dax->opts.policy) {
		case UDAX_POLICY_DEFAULT:
			r = dx_break_default(&b);
			break;
		case UDAX_POLICY_UNTRACK_FIRST:
			r = dx_break_untrack_first(&b);
			break;
		case UDAX_POLICY_UNSAFE:
			r = dx_break_unsafe(&b);
			break;
		}
		__atomic_sub_fetch(&m->recalling, 1, __ATOMIC_ACQ_REL);
	}
	b.st.t_done = dx_now_ns();
	if (w && w->stats)
		*w->stats = b.st;
	return r;
}

/* ---- the free path ---- */
void dx_dax_assert_free(struct dx_dax *d, uint64_t pfn, uint64_t npages)
{
	struct dx_page *p;
	bool busy;

	xa_lock(&d->pfns);
	p = dx_pfn_busy_locked(d, pfn, npages);
	busy = p != NULL;
	if (busy && d->opts.policy == UDAX_POLICY_UNSAFE) {
		__atomic_add_fetch(&d->unsafe_frees, 1, __ATOMIC_RELAXED);
		/* Let the block be reused: orphans leave the index, live on. */
		while ((p = dx_pfn_busy_locked(d, pfn, npages))) {
			if (dx_page_flags(p) & UDAX_PG_TRACKED)
				break;	/* a tracked block: nothing we can do */
			unsigned long key;
			struct xarray *tree = dx_pfn_tree(d, p->order, dx_u64(p->pfn), &key);

			__xa_erase(tree, key);
			__atomic_or_fetch(&p->flags, UDAX_PG_DETACHED, __ATOMIC_RELAXED);
		}
		busy = false;
	}
	xa_unlock(&d->pfns);
	/* I1: a tracked or referenced block must never reach the allocator. */
	UDAX_BUG_ON(busy);
}

bool dx_dax_pfn_busy(struct dx_dax *d, uint64_t pfn, uint64_t npages)
{
	bool busy;

	xa_lock(&d->pfns);
	busy = dx_pfn_busy_locked(d, pfn, npages) != NULL;
	xa_unlock(&d->pfns);
	return busy;
}

/* ---- wake-ups for interruption ---- */
void dx_dax_kick(struct dx_dax *d)
{
	struct dx_bwait *bw;

	xa_lock(&d->pfns);
	for (bw = d->waiters; bw; bw = bw->next)
		if (bw->word)
			dx_futex_wake(bw->word, INT_MAX);
	xa_unlock(&d->pfns);
}

/* ---- introspection ---- */
static int dx_count_busy(struct dx_page *p, void *arg)
{
	if (dx_page_refcount(p))
		(*(uint64_t *)arg)++;
	return 0;
}

void dx_dax_stats(struct dx_dax *d, struct dx_dax_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->tracked_entries = __atomic_load_n(&d->tracked_entries, __ATOMIC_RELAXED);
	out->unsafe_frees = __atomic_load_n(&d->unsafe_frees, __ATOMIC_RELAXED);
	out->entry_waiters = __atomic_load_n(&d->entry_waiters, __ATOMIC_RELAXED);
	out->entry_wakeups = __atomic_load_n(&d->entry_wakeups, __ATOMIC_RELAXED);
	xa_lock(&d->pfns);
	out->live_handles = d->live_handles;
	out->waiters = d->nwaiters;
	out->handle_bytes = d->nr_chunks * UDAX_CHUNK_BYTES +
		(d->pfns.nr_nodes + d->pfns_huge.nr_nodes) * xa_node_size();
	dx_for_each_handle_locked(d, dx_count_busy, &out->busy_handles);
	xa_unlock(&d->pfns);
}

struct dx_foreach {
	int (*cb)(const struct dx_page_info *pi, void *arg);
	void *arg;
};

static int dx_foreach_one(struct dx_page *p, void *arg)
{
	struct dx_foreach *f = arg;
	struct dx_page_info pi;

	dx_page_info(p, &pi);
	return f->cb(&pi, f->arg);
}

int dx_dax_foreach_handle(struct dx_dax *d,
			    int (*cb)(const struct dx_page_info *pi, void *arg), void *arg)
{
	struct dx_foreach f = { cb, arg };
	int r;

	xa_lock(&d->pfns);
	r = dx_for_each_handle_locked(d, dx_foreach_one, &f);
	xa_unlock(&d->pfns);
	return r;
}

int dx_dax_foreach_waiter(struct dx_dax *d,
			    int (*cb)(const struct dx_waiter_info *wi, void *arg), void *arg)
{
	struct dx_waiter_info wi;
	struct dx_bwait *bw;
	uint64_t now = dx_now_ns();
	int r = 0;

	xa_lock(&d->pfns);
	for (bw = d->waiters; bw && !r; bw = bw->next) {
		memset(&wi, 0, sizeof(wi));
		wi.ino = bw->m->ino;
		wi.start = bw->start;
		wi.end = bw->end;
		wi.wait_index = bw->wait_index;
		wi.wait_pfn = bw->wait_pfn;
		wi.refcount = bw->page ? dx_page_refcount(bw->page) : 0;
		wi.waiting_ns = now > bw->t_begin ? now - bw->t_begin : 0;
		wi.entry_lock = bw->page == NULL;
		r = cb(&wi, arg);
	}
	xa_unlock(&d->pfns);
	return r;
}

/* ---- a human-readable summary of busy pages ---- */
#define UDAX_REPORT_MAX 4
struct dx_report {
	uint64_t busy;
	struct dx_page_info oldest[UDAX_REPORT_MAX];	/* by age, oldest first */
	unsigned int n;
};

static int dx_report_one(const struct dx_page_info *pi, void *arg)
{
	struct dx_report *r = arg;
	unsigned int i;

	if (!pi->refcount)
		return 0;
	r->busy++;
	for (i = r->n; i > 0 && r->oldest[i - 1].age_ns < pi->age_ns; i--)
		if (i < UDAX_REPORT_MAX)
			r->oldest[i] = r->oldest[i - 1];
	if (i < UDAX_REPORT_MAX) {
		r->oldest[i] = *pi;
		if (r->n < UDAX_REPORT_MAX)
			r->n++;
	}
	return 0;
}

uint64_t dx_dax_busy_report(struct dx_dax *d, char *buf, size_t len)
{
	struct dx_report r = { 0 };
	size_t off = 0;
	int k;

	dx_dax_foreach_handle(d, dx_report_one, &r);
	if (!len)
		return r.busy;
	buf[0] = '\0';
	k = snprintf(buf, len, "%" PRIu64 " page%s in use", r.busy, r.busy == 1 ? "" : "s");
	for (unsigned int i = 0; i < r.n && k >= 0 && (size_t)k < len - off; i++) {
		const struct dx_page_info *pi = &r.oldest[i];

		off += (size_t)k;
		k = snprintf(buf + off, len - off,
			     "%s ino %" PRIu64 " index %" PRIu64 " pfn %#" PRIx64 "%s refs %u "
			     "(mapped %u, pinned %u) for %.1f s", i ? ";" : ":", pi->ino,
			     pi->index, pi->pfn, pi->order ? " (2 MiB)" : "", pi->refcount,
			     pi->mapcount, pi->pincount, (double)pi->age_ns / 1e9);
	}
	if (r.busy > r.n && k >= 0 && (size_t)k < len - off) {
		off += (size_t)k;
		snprintf(buf + off, len - off, "; ...");
	}
	return r.busy;
}
