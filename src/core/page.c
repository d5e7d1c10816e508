/* SPDX-License-Identifier: MIT */
/*
 * page.c - page handles: references, the handle slab, and the wait for a
 * handle to become idle.
 *
 * Lifetime.  A handle is created by dx_track() and lives in the pfn index
 * while any of these hold: it is TRACKED (an entry points at it), its
 * refcount is non-zero, or a sleeping break_layouts holds it ("holds").
 * Whoever makes the last of them false, under the pfn-index lock, frees it.
 * The put that drops the last reference therefore takes the pfn-index lock;
 * every other put is one lock-free compare-and-swap.
 *
 * Why no wake-up is lost.  The waiter sets UDAX_PG_WAITERS in the refcount
 * word with a compare-and-swap that also proves the count is still
 * non-zero, then sleeps with FUTEX_WAIT on exactly that value: if the count
 * changed in between, the kernel returns at once and the waiter re-tests.
 * The final put decrements (the word changes, so a waiter not yet asleep
 * will not sleep), sees the WAITERS bit it now owns, clears it and wakes
 * every sleeper on the word.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <numa.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dax_int.h"
#include "media.h"

int dx_futex_wait(uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	long r;

	if (timeout_ns) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000ULL);
		ts.tv_nsec = (long)(timeout_ns % 1000000000ULL);
		tsp = &ts;
	}
	r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
	return r < 0 ? -errno : 0;
}

void dx_futex_wake(uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- the slab ---- */
static inline struct dx_chunk *dx_chunk_of(const struct dx_page *p)
{
	return (struct dx_chunk *)((uintptr_t)p & ~(UDAX_CHUNK_BYTES - 1));
}

struct dx_dax *dx_page_dax(const struct dx_page *p)
{
	return dx_chunk_of(p)->dax;
}

static void dx_chunk_link(struct dx_dax *d, struct dx_chunk *c)
{
	c->prev = NULL;
	c->next = d->partial;
	if (d->partial)
		d->partial->prev = c;
	d->partial = c;
}

static void dx_chunk_unlink(struct dx_dax *d, struct dx_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		d->partial = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/*
 * Chunks go on the device's NUMA node (opts.numa_node) when there is one
 * and libnuma works; otherwise they come from malloc.  The answer depends
 * only on the dax's fixed node and on libnuma (asked once), so a chunk is
 * always freed the way it was allocated.
 */
static bool chunk_on_node(const struct dx_dax *d)
{
	static int numa_ok = -1;	/* -1 unknown, 0 no, 1 yes; set once */
	int ok = __atomic_load_n(&numa_ok, __ATOMIC_RELAXED);
	int node = d->opts.numa_node;

	if (node < 0)
		return false;
	if (ok < 0) {
		ok = numa_available() >= 0;
		__atomic_store_n(&numa_ok, ok, __ATOMIC_RELAXED);
	}
	return ok && node <= numa_max_node();
}

/*
 * chunk_alloc() - a chunk of UDAX_CHUNK_BYTES aligned to its size (a
 * handle finds its chunk by masking its address).  On a node: twice the
 * size from dx_numa_alloc(), the unaligned head and tail given back.
 * Context: pfn lock.  Return: the chunk or NULL.
 */
static struct dx_chunk *chunk_alloc(struct dx_dax *d)
{
	uintptr_t p, a;
	size_t head;

	if (!chunk_on_node(d))
		return aligned_alloc(UDAX_CHUNK_BYTES, UDAX_CHUNK_BYTES);
	p = (uintptr_t)dx_numa_alloc(2 * UDAX_CHUNK_BYTES, d->opts.numa_node);
	if (!p)
		return NULL;
	a = (p + UDAX_CHUNK_BYTES - 1) & ~(UDAX_CHUNK_BYTES - 1);
	head = a - p;
	if (head)
		dx_numa_free((void *)p, head);
	if (UDAX_CHUNK_BYTES - head)
		dx_numa_free((void *)(a + UDAX_CHUNK_BYTES), UDAX_CHUNK_BYTES - head);
	return (struct dx_chunk *)a;
}

static void chunk_free(struct dx_dax *d, struct dx_chunk *c)
{
	if (chunk_on_node(d))
		dx_numa_free(c, UDAX_CHUNK_BYTES);
	else
		free(c);
}

struct dx_page *dx_handle_alloc(struct dx_dax *d)
{
	struct dx_chunk *c = d->partial;
	struct dx_page *p;
	uint32_t slot;

	if (!c) {
		c = chunk_alloc(d);
		if (!c)
			return NULL;
		memset(c, 0, sizeof(*c));
		c->dax = d;
		c->nfree = UDAX_CHUNK_PAGES;
		c->free_head = UINT32_MAX;
		dx_chunk_link(d, c);
		d->nr_chunks++;
	}
	if (c->free_head != UINT32_MAX) {
		slot = c->free_head;
		c->free_head = __atomic_load_n(&c->pages[slot].refcount, __ATOMIC_RELAXED);
	} else {
		slot = c->nr_init++;
	}
	if (--c->nfree == 0)
		dx_chunk_unlink(d, c);
	p = &c->pages[slot];
	memset(p, 0, sizeof(*p));
	return p;
}

/* Return a slot to its chunk (the handle is out of the index). */
static void dx_handle_release(struct dx_dax *d, struct dx_page *p)
{
	struct dx_chunk *c = dx_chunk_of(p);
	uint32_t slot = (uint32_t)(p - c->pages);

	__atomic_store_n(&p->refcount, c->free_head, __ATOMIC_RELAXED);
	__atomic_store_n(&p->flags, 0, __ATOMIC_RELAXED);
	c->free_head = slot;
	if (++c->nfree == 1)
		dx_chunk_link(d, c);
	if (c->nfree == UDAX_CHUNK_PAGES) {
		dx_chunk_unlink(d, c);
		chunk_free(d, c);
		d->nr_chunks--;
	}
}

void dx_handle_free_locked(struct dx_dax *d, struct dx_page *p)
{
	if (!(dx_page_flags(p) & UDAX_PG_DETACHED)) {
		unsigned long key;
		struct xarray *xa = dx_pfn_tree(d, p->order, dx_u64(p->pfn), &key);
		void *old = __xa_erase(xa, key);

		UDAX_BUG_ON(old != p);
	}
	d->live_handles--;
	dx_handle_release(d, p);
}

/* Take @p out of the pfn index; it lives on for whoever holds it. */
static void dx_handle_detach_locked(struct dx_dax *d, struct dx_page *p)
{
	unsigned long key;
	struct xarray *xa;

	if (dx_page_flags(p) & UDAX_PG_DETACHED)
		return;
	xa = dx_pfn_tree(d, p->order, dx_u64(p->pfn), &key);
	UDAX_BUG_ON(__xa_erase(xa, key) != p);
	__atomic_or_fetch(&p->flags, UDAX_PG_DETACHED, __ATOMIC_RELAXED);
}

/*
 * An untracked handle with no reference is idle: its block may be freed
 * and reused at once.  If a sleeping waiter still holds its memory, it
 * leaves the pfn index now (so the free path and a new handle for the
 * reused pfn do not see it) and is freed when the last hold goes.
 */
void dx_handle_maybe_free_locked(struct dx_dax *d, struct dx_page *p)
{
	if ((dx_page_flags(p) & UDAX_PG_TRACKED) ||
	    (__atomic_load_n(&p->refcount, __ATOMIC_ACQUIRE) & UDAX_PG_REFS))
		return;
	if (p->holds) {
		dx_handle_detach_locked(d, p);
		return;
	}
	dx_handle_free_locked(d, p);
}

void dx_handle_chunks_free(struct dx_dax *d)
{
	while (d->partial) {
		struct dx_chunk *c = d->partial;

		dx_chunk_unlink(d, c);
		chunk_free(d, c);
		d->nr_chunks--;
	}
}

/* ---- references ---- */
uint32_t dx_page_refcount(const struct dx_page *p)
{
	return __atomic_load_n(&p->refcount, __ATOMIC_ACQUIRE) & UDAX_PG_REFS;
}

void dx_page_get(struct dx_page *p, enum dx_ref kind)
{
	uint32_t old = __atomic_fetch_add(&p->refcount, 1, __ATOMIC_ACQ_REL);

	UDAX_BUG_ON((old & UDAX_PG_REFS) == UDAX_PG_REFS);
	if (kind == UDAX_REF_MAP)
		__atomic_add_fetch(&p->mapcount, 1, __ATOMIC_RELAXED);
	else if (kind == UDAX_REF_PIN)
		__atomic_add_fetch(&p->pincount, 1, __ATOMIC_RELAXED);
}

/* The final put: under the pfn-index lock so lifetime decisions serialise. */
static void dx_page_put_final(struct dx_page *p)
{
	struct dx_dax *d = dx_page_dax(p);
	uint32_t *word = &p->refcount;	/* only an address after the unlock */
	bool wake = false;
	uint32_t old;

	xa_lock(&d->pfns);
	old = __atomic_fetch_sub(&p->refcount, 1, __ATOMIC_ACQ_REL);
	UDAX_BUG_ON((old & UDAX_PG_REFS) == 0);
	if ((old & UDAX_PG_REFS) == 1) {
		if (old & UDAX_PG_WAITERS) {
			struct dx_bwait *bw;
			uint64_t now = dx_now_ns();

			__atomic_and_fetch(&p->refcount, ~UDAX_PG_WAITERS, __ATOMIC_RELEASE);
			for (bw = d->waiters; bw; bw = bw->next)
				if (bw->page == p)
					bw->t_unpin = now;
			wake = true;
		}
		dx_handle_maybe_free_locked(d, p);
	}
	xa_unlock(&d->pfns);
	/*
	 * Wake after the unlock, so the waiter does not run straight into the
	 * lock we hold.  @p may be gone by now (the waiter saw the count drop,
	 * dropped its hold and freed it): FUTEX_WAKE only hashes the address,
	 * never touches the memory, and every waiter re-tests after a wake,
	 * so at worst some other sleeper on a reused address wakes for nothing.
	 */
	if (wake)
		dx_futex_wake(word, INT_MAX);
}

void dx_page_put(struct dx_page *p, enum dx_ref kind)
{
	uint32_t v, old;

	if (kind == UDAX_REF_MAP) {
		old = __atomic_fetch_sub(&p->mapcount, 1, __ATOMIC_RELAXED);
		UDAX_BUG_ON(old == 0);
	} else if (kind == UDAX_REF_PIN) {
		old = __atomic_fetch_sub(&p->pincount, 1, __ATOMIC_RELAXED);
		UDAX_BUG_ON(old == 0);
	}
	v = __atomic_load_n(&p->refcount, __ATOMIC_RELAXED);
	for (;;) {
		UDAX_BUG_ON((v & UDAX_PG_REFS) == 0);
		if ((v & UDAX_PG_REFS) == 1)
			break;
		if (__atomic_compare_exchange_n(&p->refcount, &v, v - 1, false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return;
	}
	dx_page_put_final(p);
}

void dx_page_info(const struct dx_page *p, struct dx_page_info *out)
{
	struct dx_dax *d = dx_page_dax(p);
	uint32_t now_ms = (uint32_t)((dx_now_ns() - d->epoch_ns) / 1000000ULL);

	out->ino = dx_u64(p->ino);
	out->index = dx_u64(p->index);
	out->pfn = dx_u64(p->pfn);
	out->order = p->order;
	out->refcount = dx_page_refcount(p);
	out->mapcount = __atomic_load_n(&p->mapcount, __ATOMIC_RELAXED);
	out->pincount = __atomic_load_n(&p->pincount, __ATOMIC_RELAXED);
	out->tracked = dx_page_flags(p) & UDAX_PG_TRACKED;
	out->age_ns = (uint64_t)(uint32_t)(now_ms - p->born_ms) * 1000000ULL;
}

/* ---- waiting ---- */
#define UDAX_POLL_NS 5000000ULL	/* re-check interruption this often */

int dx_wait_check(const struct dx_wait_ctx *w, uint64_t deadline, uint64_t *slice)
{
	bool poll = w && !w->uninterruptible && w->interrupted;
	uint64_t now;

	*slice = 0;
	if (poll && w->interrupted(w->arg))
		return -EINTR;
	if (deadline) {
		now = dx_now_ns();
		if (now >= deadline)
			return -EBUSY;
		*slice = deadline - now;
	}
	if (poll && (!*slice || *slice > UDAX_POLL_NS))
		*slice = UDAX_POLL_NS;
	return 0;
}

void dx_bwait_link_locked(struct dx_dax *d, struct dx_bwait *bw)
{
	bw->prev = NULL;
	bw->next = d->waiters;
	if (d->waiters)
		d->waiters->prev = bw;
	d->waiters = bw;
	d->nwaiters++;
	bw->linked = true;
}

void dx_bwait_unlink_locked(struct dx_dax *d, struct dx_bwait *bw)
{
	if (!bw->linked)
		return;
	if (bw->prev)
		bw->prev->next = bw->next;
	else
		d->waiters = bw->next;
	if (bw->next)
		bw->next->prev = bw->prev;
	d->nwaiters--;
	bw->linked = false;
}

int dx_page_wait_idle(struct dx_dax *d, struct dx_page *p, struct dx_bwait *bw,
			const struct dx_wait_ctx *w, uint64_t deadline, bool keep_hold)
{
	uint64_t slice;
	uint32_t v;
	int r;

	xa_lock(&d->pfns);
	bw->page = p;
	bw->word = &p->refcount;
	bw->wait_pfn = dx_u64(p->pfn);
	bw->t_begin = dx_now_ns();
	bw->t_unpin = 0;
	dx_bwait_link_locked(d, bw);
	xa_unlock(&d->pfns);

	for (;;) {
		v = __atomic_load_n(&p->refcount, __ATOMIC_ACQUIRE);
		if (!(v & UDAX_PG_REFS)) {
			r = 0;
			break;
		}
		r = dx_wait_check(w, deadline, &slice);
		if (r)
			break;
		if (!(v & UDAX_PG_WAITERS)) {
			if (!__atomic_compare_exchange_n(&p->refcount, &v, v | UDAX_PG_WAITERS,
							 false, __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE))
				continue;
			v |= UDAX_PG_WAITERS;
		}
		dx_futex_wait(&p->refcount, v, slice);
	}

	xa_lock(&d->pfns);
	dx_bwait_unlink_locked(d, bw);
	bw->page = NULL;
	bw->word = NULL;
	if (!keep_hold) {
		UDAX_BUG_ON(p->holds == 0);
		p->holds--;
		dx_handle_maybe_free_locked(d, p);
	}
	xa_unlock(&d->pfns);
	return r;
}
