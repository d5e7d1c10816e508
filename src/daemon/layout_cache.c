/* SPDX-License-Identifier: MIT */
/*
 * layout_cache.c - the page-cache table: one flag per writable layout, in
 * a memfd its clients map read-only, that says whether the kernel may
 * cache a page of the layout's range that a direct store went around.
 *
 * Why: a direct store bypasses the FUSE page cache.  Pages read into it
 * through the mount (by a descriptor opened before the grant, or a
 * private mapping) would show what was there before the store.  Without
 * the flag a client must look after every direct write (cachestat(2): a
 * system call, 40% of a 4 KiB write); with it, a load.
 *
 * The rule (udax_proto.h, struct udax_cachetab_rep):
 *   - a READ through the mount, and a WRITE through a cached descriptor,
 *     set the flag of every writable layout they overlap, with a full
 *     fence, BEFORE they touch the device (layout_note_fill());
 *   - the notifier clears a flag, with a full fence, right BEFORE it drops
 *     the layout's range from the page cache (the grant's invalidation and
 *     every UDAX_REQ_INVAL of the layout; layout_inval.c);
 *   - a client stores, fences, then loads the flag.
 * Either the client's load sees the flag, and it looks and asks; or the
 * READ's device load comes after the store and returns the new bytes.  A
 * page that was read in before the clear is a locked or cached folio when
 * the drop that follows the clear runs, and the drop takes it (FUSE's
 * inval_inode locks every folio of the range).  A READ that found no
 * layout to mark (ctab_live 0, or the layout not linked yet) was sent for
 * a folio that was in the cache before the layout was linked, and so
 * before the grant's clear and drop.
 *
 * Slots are reference counted: the layout holds one, and every queued
 * invalidation that will clear it holds one, so a slot is never cleared
 * after it was handed to another layout.  When the table is full a layout
 * gets no slot (UDAX_CACHE_SLOT_NONE) and its client looks every time.
 *
 * UDAX_TEST_NO_FILL_NOTE=1 in the daemon's environment (a test aid) stops
 * the marking, so that the coherence test's negative control can show it
 * sees the stale read the flag exists to prevent.  UDAX_TEST_CTAB_SLOTS=N
 * (a test aid) makes the table N slots, so that a test can fill it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layout.h"
#include "layout_int.h"
#include "core/util.h"

#define CTAB_BYTES(ls) ((size_t)(ls)->ctab_n * sizeof(uint32_t))

int ls_ctab_init(struct layout_service *ls)
{
	ls->ctab_fd = -1;
	ls->ctab_n = LS_CTAB_SLOTS;
	/* a test aid: a small table, to fill it and see slots come back */
	const char *e = getenv("UDAX_TEST_CTAB_SLOTS");
	if (e && atoi(e) > 0 && (unsigned int)atoi(e) < LS_CTAB_SLOTS)
		ls->ctab_n = (uint32_t)atoi(e);
	ls->ctab_ref = calloc(ls->ctab_n, sizeof(*ls->ctab_ref));
	ls->ctab_free = calloc(ls->ctab_n, sizeof(*ls->ctab_free));
	if (!ls->ctab_ref || !ls->ctab_free)
		goto fail;
	int fd = memfd_create("udaxfs-cachetab", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto fail;
	void *p = MAP_FAILED;
	if (ftruncate(fd, (off_t)CTAB_BYTES(ls)) == 0)
		p = mmap(NULL, CTAB_BYTES(ls), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	/* clients can map it, never writable, and never change its size */
	if (p == MAP_FAILED ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
		  F_SEAL_SEAL) < 0) {
		if (p != MAP_FAILED)
			munmap(p, CTAB_BYTES(ls));
		close(fd);
		goto fail;
	}
	ls->ctab = p;
	ls->ctab_fd = fd;
	for (uint32_t i = 0; i < ls->ctab_n; i++)
		ls->ctab_free[i] = ls->ctab_n - 1 - i;
	ls->ctab_nfree = ls->ctab_n;
	return 0;
fail:
	/* no table: every layout goes without a flag, as before it existed */
	free(ls->ctab_ref);
	free(ls->ctab_free);
	ls->ctab_ref = ls->ctab_free = NULL;
	return -ENOMEM;
}

void ls_ctab_fini(struct layout_service *ls)
{
	if (ls->ctab)
		munmap((void *)ls->ctab, CTAB_BYTES(ls));
	if (ls->ctab_fd >= 0)
		close(ls->ctab_fd);
	free(ls->ctab_ref);
	free(ls->ctab_free);
	ls->ctab = NULL;
	ls->ctab_fd = -1;
}

/*
 * A slot for a new writable layout, its flag set (nothing is known about
 * the cache yet), one reference.  Context: ls->lock, before the layout is
 * linked.  Return: the slot, or UDAX_CACHE_SLOT_NONE.
 */
uint32_t ls_ctab_get_locked(struct layout_service *ls)
{
	if (!ls->ctab || !ls->ctab_nfree)
		return UDAX_CACHE_SLOT_NONE;
	uint32_t s = ls->ctab_free[--ls->ctab_nfree];
	UDAX_BUG_ON(ls->ctab_ref[s] != 0);
	ls->ctab_ref[s] = 1;
	atomic_store(&ls->ctab[s], 1u);
	atomic_fetch_add(&ls->ctab_live, 1);
	return s;
}

void ls_ctab_hold_locked(struct layout_service *ls, uint32_t slot)
{
	if (slot == UDAX_CACHE_SLOT_NONE)
		return;
	UDAX_BUG_ON(slot >= ls->ctab_n || ls->ctab_ref[slot] == 0);
	ls->ctab_ref[slot]++;
}

void ls_ctab_put_locked(struct layout_service *ls, uint32_t slot)
{
	if (slot == UDAX_CACHE_SLOT_NONE)
		return;
	UDAX_BUG_ON(slot >= ls->ctab_n || ls->ctab_ref[slot] == 0);
	if (--ls->ctab_ref[slot])
		return;
	atomic_store(&ls->ctab[slot], 1u);	/* a stale reader of the slot looks */
	ls->ctab_free[ls->ctab_nfree++] = slot;
	atomic_fetch_sub(&ls->ctab_live, 1);
}

/*
 * Clear a flag: the caller drops the layout's range from the page cache
 * right after.  Context: the notifier thread, holding a reference.
 */
void ls_ctab_clear(struct layout_service *ls, uint32_t slot)
{
	if (slot == UDAX_CACHE_SLOT_NONE)
		return;
	atomic_store(&ls->ctab[slot], 0u);
	atomic_thread_fence(memory_order_seq_cst);
}

static int no_fill_note = -1;

/*
 * layout_note_fill() - the mount is about to serve a READ (or a cached
 * WRITE) of [off, off + len) of @ino: set the flag of every writable
 * layout of @ino it overlaps, then fence, before the device is touched.
 * Context: a FUSE worker; takes ls->chain_lock (never ls->lock), and only
 * while some layout has a flag.
 */
void layout_note_fill(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len)
{
	if (!ls || !ls->ctab || atomic_load(&ls->ctab_live) == 0)
		return;
	if (no_fill_note < 0) {
		const char *e = getenv("UDAX_TEST_NO_FILL_NOTE");
		no_fill_note = e && *e == '1';
	}
	if (no_fill_note)
		return;
	uint64_t first = off >> UDAX_PAGE_SHIFT;
	uint64_t last = (len ? off + len - 1 : off) >> UDAX_PAGE_SHIFT;
	if (off + len < off)
		last = UINT64_MAX >> UDAX_PAGE_SHIFT;
	pthread_mutex_lock(&ls->chain_lock);
	for (struct lmap *lm = *ls_ino_chain(ls, ino); lm; lm = lm->ino_next)
		if (lm->ino == ino && lm->cslot != UDAX_CACHE_SLOT_NONE &&
		    range_overlaps(lm, first, last))
			atomic_store(&ls->ctab[lm->cslot], 1u);
	pthread_mutex_unlock(&ls->chain_lock);
	atomic_thread_fence(memory_order_seq_cst);
}

/*
 * UDAX_REQ_CACHETAB: hand the client the table, read-only (the seals
 * refuse a writable mapping of it), once it presented a ticket (it was
 * allowed to map a file).  Context: event thread.
 */
void ls_req_cachetab(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h)
{
	struct udax_cachetab_rep rep = { .nslots = ls->ctab_n };

	pthread_mutex_lock(&ls->lock);
	if (!cl->ticketed)
		ls_queue_err(cl, h->type, h->seq, -EACCES,
			     "no ticket presented on this connection: map a file first");
	else if (!ls->ctab)
		ls_queue_err(cl, h->type, h->seq, -ENOSYS, "the daemon keeps no page-cache table");
	else
		ls_queue_msg(cl, h->type | UDAX_MSG_REPLY, h->seq, 0, ls->ctab_fd, &rep,
			     sizeof(rep), NULL, 0);
	pthread_mutex_unlock(&ls->lock);
}
