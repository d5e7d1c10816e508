/* SPDX-License-Identifier: MIT */
/*
 * layout_pin.c - pins: PIN and UNPIN, and their supervision.
 *
 * Pins end on the kernel's word, not the client's (ringsup.h).  A PIN names
 * the client's ring; the daemon takes its own reference to it (struct
 * lring, pidfd_getfd, one per ring by kcmp) and refuses rings it could not
 * revoke.  Every end of a pin - UNPIN, RETURN, the client's death, UNMAP of
 * a layout with adopted pins - goes through ls_pin_revoke_verify(): empty
 * the ring's slots over the range, cancel its fixed-buffer requests
 * (waiting for running ones), read the table again, and only then put the
 * references.  Neither the client's word nor its pidfd is enough:
 * io_uring_unregister returns with requests in flight, and a ring outlives
 * its process in a fork()ed child or a pidfd_getfd taker.  Holding the ring
 * makes the revocation work whoever holds it by then.  Rings the client
 * never declared (a program under the shim registering its own mapping, a
 * second ring, cloned buffers) are found by ls_discover_locked() from /proc
 * of the live client - before a recall is sent, at UNMAP and at RETURN -
 * and adopted as pins.  A pin that cannot be verified yet keeps its
 * references and is retried by the event loop (ls->retry); a truncate waits
 * meanwhile.  What userspace cannot see at all is listed in udaxfs(8), PIN
 * SUPERVISION.  UDAXFS_NO_RING_VERIFY=1 (a test aid for negative controls)
 * restores the old trust in the client's word.
 */
#include "config.h"

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout_int.h"
#include "pinrec.h"
#include "ringsup.h"
#include "core/util.h"

/* ---- references ---- */

/* Take one pin reference on every segment, or none.
 * Context: event thread, no ls->lock; takes the layout lock shared. */
static int pin_segs(struct layout_service *ls, struct lmap *lm)
{
	struct dx_mapping *m = ufs_mapping(ls->fs, lm->ino);
	if (!m)
		return -ESTALE;
	/*
	 * Under the layout lock (shared): break_layouts sets "recalling" with
	 * it held exclusively, so a pin either lands before its scan (and is
	 * seen busy) or is refused.
	 */
	dx_layout_lock_shared(m);
	for (size_t i = 0; i < lm->nseg; i++) {
		int err = dx_pin_get(m, lm->segs[i].page);
		if (err) {
			while (i--)
				dx_page_put(lm->segs[i].page, UDAX_REF_PIN);
			dx_layout_unlock_shared(m);
			return err;
		}
	}
	dx_layout_unlock_shared(m);
	return 0;
}

/*
 * Write down the device ranges of @lm's first pin in the record that
 * outlives the daemon (pinrec.h), before the client is told it may pin.
 * Context: event thread, no lock.  Return: 0 or -errno.
 */
static int pin_record(struct layout_service *ls, struct lmap *lm, pid_t pid)
{
	struct pinrec_range *r;
	size_t n = 0;
	int err;

	if (!ls->pinrec || lm->prec_key)
		return 0;
	r = calloc(lm->nseg ? lm->nseg : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < lm->nseg; i++) {
		uint64_t off = lm->segs[i].dev_off, len = UDAX_PAGE_SIZE << lm->segs[i].order;

		if (n && r[n - 1].off + r[n - 1].len == off)
			r[n - 1].len += len;
		else
			r[n++] = (struct pinrec_range){ .off = off, .len = len };
	}
	err = pinrec_add(ls->pinrec, pid, r, n, &lm->prec_key);
	free(r);
	if (err)
		dx_seterr("cannot record the pin in %s: %s", PINREC_DIR, strerror(-err));
	return err;
}

/* The last pin of @lm is released: cross its record out.  Context: event thread. */
void ls_pin_unrecord(struct layout_service *ls, struct lmap *lm)
{
	pinrec_del(ls->pinrec, lm->prec_key);
	lm->prec_key = 0;
}

/* ---- pin supervision (see ringsup.h) ---- */

/* How long one revocation may wait for a running request, per opcode. */
#define REVOKE_WAIT_MS 200

/*
 * Our reference to descriptor @client_fd of @cl: an existing one if it is
 * the same ring (kcmp), else a new one (pidfd_getfd, checked).
 * Context: ls->lock held; does not block.
 * Return: the lring (users taken), or NULL with *@err = -errno and @why.
 */
static struct lring *ring_get_locked(struct lclient *cl, int client_fd, int *err, char *why,
				     size_t whylen)
{
	for (struct lring *r = cl->rings; r; r = r->next) {
		if (ringsup_same(cl->pid, client_fd, r->fd) == 1) {
			r->users++;
			return r;
		}
	}
	if (cl->pidfd < 0 || cl->exited) {
		*err = -ESRCH;
		snprintf(why, whylen, "the client process has exited");
		return NULL;
	}
	struct lring *r = calloc(1, sizeof(*r));
	if (!r) {
		*err = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	int fd = ringsup_take(cl->pidfd, client_fd, why, whylen);
	int info = fd < 0 ? fd : ringsup_info_open(0, fd);
	if (fd < 0 || info < 0) {
		if (fd >= 0) {
			close(fd);
			snprintf(why, whylen, "cannot read the ring's fdinfo: %s", strerror(-info));
		}
		free(r);
		*err = fd < 0 ? fd : info;
		return NULL;
	}
	*r = (struct lring){ cl->rings, fd, info, client_fd, 1 };
	cl->rings = r;
	return r;
}

/* Context: ls->lock held.  Closing our descriptor may end the ring. */
static void ring_put_locked(struct lclient *cl, struct lring *r)
{
	if (!r || --r->users)
		return;
	struct lring **pp = &cl->rings;
	while (*pp && *pp != r)
		pp = &(*pp)->next;
	if (*pp)
		*pp = r->next;
	close(r->info);
	close(r->fd);
	free(r);
}

/* The client address ranges @pin guards: its buffer and its layout's mapping. */
static size_t pin_ranges(const struct lmap *lm, const struct lpin *pin, struct ringsup_range *r)
{
	size_t n = 0;
	r[n++] = (struct ringsup_range){ pin->addr, pin->addr + pin->len };
	if (lm->va)
		r[n++] = (struct ringsup_range){ lm->va, lm->va + lm->len };
	return n;
}

struct watch_ctx {
	const struct ringsup_range *r;
	size_t nr;
};

static int watch_cb(void *arg, int fd, const struct ringsup_buf *b, size_t n)
{
	struct watch_ctx *w = arg;
	(void)fd;
	for (size_t i = 0; i < n; i++)
		if (ringsup_overlaps(b[i].addr, b[i].len, w->r, w->nr))
			return 1;
	return 0;
}

/*
 * ls_pin_revoke_verify() - the one way a pin ends: make sure, from the kernel,
 * that nothing can still write into the pin's pages through its ring, then
 * free the record and put its page references.  A ring the daemon holds is
 * revoked (ringsup_revoke: slots emptied, fixed-buffer requests cancelled,
 * table read again); an adopted pin on a ring the daemon could not take is
 * only watched: released once no ring of the live client covers the range
 * (or the client is gone: the boundary udaxfs(8) documents).  With
 * verification off (UDAXFS_NO_RING_VERIFY, a test aid) the client's word is
 * taken as before.
 * Context: event thread, no lock held; may wait REVOKE_WAIT_MS per opcode.
 * Return: 0 released, or -errno (the pin stays; retried later).
 */
int ls_pin_revoke_verify(struct layout_service *ls, struct lmap *lm, struct lpin *pin)
{
	struct ringsup_range r[2];
	size_t nr;
	char why[256] = "";
	int err = 0;

	pthread_mutex_lock(&ls->lock);
	nr = pin_ranges(lm, pin, r);
	pid_t pid = lm->cl->pid;
	bool alive = !lm->cl->exited;
	pthread_mutex_unlock(&ls->lock);

	int left = 0;
	if (pin->ring) {
		err = ringsup_revoke(pin->ring->fd, pin->ring->info, r, nr, REVOKE_WAIT_MS, why,
				     sizeof(why));
		/* the verification: a fresh look at the table, after the revocation */
		left = err ? 0 : ringsup_count_overlaps(pin->ring->info, r, nr);
		if (left < 0) {
			err = left;
			snprintf(why, sizeof(why), "reading the ring's table again: %s",
				 strerror(-left));
		} else if (left > 0) {
			err = -EAGAIN;	/* registered again meanwhile */
			snprintf(why, sizeof(why), "%d slot(s) of the ring cover the range again",
				 left);
		}
	} else if (pin->adopted && alive) {
		struct watch_ctx w = { r, nr };
		err = ringsup_scan_pid(pid, watch_cb, &w);
		if (err == 1) {
			err = -EBUSY;
			snprintf(why, sizeof(why), "a ring the daemon cannot revoke still holds it");
		} else if (err == -ESRCH) {
			err = 0;
		}
	}
	if (err) {
		uint64_t now = dx_now_ns();
		if (now - pin->t_fail_log > 5000000000ull) {
			pin->t_fail_log = now;
			fuse_log(FUSE_LOG_WARNING, "udaxfs: pin %#" PRIx64 "+%#" PRIx64 " of pid %d "
				 "(layout %" PRIu64 ") not released yet: %s\n", pin->addr, pin->len,
				 (int)pid, lm->id, why);
		}
		return err;
	}
	/*
	 * Never free a pin record while its ring still shows the buffer: the
	 * only free site, and the look at the table it rests on is the one
	 * just taken after the revocation.
	 */
	UDAX_BUG_ON(pin->ring && left != 0);
	pthread_mutex_lock(&ls->lock);
	struct lpin **pp = &lm->pinlist;
	while (*pp && *pp != pin)
		pp = &(*pp)->next;
	UDAX_BUG_ON(!*pp);
	*pp = pin->next;
	lm->pins--;
	bool last = !lm->pins;
	ring_put_locked(lm->cl, pin->ring);
	uint32_t seq = pin->unpin_seq;
	if (seq)
		ls_queue_msg(lm->cl, UDAX_REQ_UNPIN | UDAX_MSG_REPLY, seq, 0, -1, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&ls->lock);
	for (size_t i = 0; i < lm->nseg; i++)
		dx_page_put(lm->segs[i].page, UDAX_REF_PIN);
	if (last)
		ls_pin_unrecord(ls, lm);	/* seen released: cross the record out */
	free(pin);
	return 0;
}

/*
 * Release every pin of @lm that wants it; free @lm once it holds nothing.
 * Context: event thread, no lock held.
 * Return: true if @lm was freed, false if it remains (pins left, or mapped).
 */
bool ls_lmap_progress(struct layout_service *ls, struct lmap *lm)
{
	struct lpin **todo = NULL;
	size_t n = 0;

	pthread_mutex_lock(&ls->lock);
	for (struct lpin *p = lm->pinlist; p; p = p->next)
		n += p->want_release && !p->revoking;
	if (n)
		todo = calloc(n, sizeof(*todo));
	n = 0;
	for (struct lpin *p = lm->pinlist; todo && p; p = p->next) {
		if (p->want_release && !p->revoking) {
			p->revoking = true;
			todo[n++] = p;
		}
	}
	if (!todo && lm->pinlist)
		ls->retry = true;	/* out of memory: later */
	pthread_mutex_unlock(&ls->lock);
	for (size_t i = 0; i < n; i++) {
		if (ls_pin_revoke_verify(ls, lm, todo[i]) == 0)
			continue;
		pthread_mutex_lock(&ls->lock);
		todo[i]->revoking = false;
		ls->retry = true;
		pthread_mutex_unlock(&ls->lock);
	}
	free(todo);
	pthread_mutex_lock(&ls->lock);
	bool gone = lm->state == LM_ACTIVE && !lm->mapped && !lm->pins;
	pthread_mutex_unlock(&ls->lock);
	if (!gone)
		return false;
	if (lm->writable)
		ls_queue_inval(ls, lm->ino, lm->off, lm->len, UDAX_CACHE_SLOT_NONE);
	pthread_mutex_lock(&ls->lock);
	ls_lmap_unlink_free(ls, lm);
	pthread_mutex_unlock(&ls->lock);
	return true;
}

/* ---- discovery of rings the client never declared ---- */

struct disc_ctx {
	struct layout_service *ls;
	struct lclient *cl;
	struct lmap **lms;
	size_t n;
};

/* Is [addr, addr+len) on ring @fd of the client one of @lm's pins already? */
static bool disc_known(struct lclient *cl, struct lmap *lm, int fd, uint64_t addr, uint64_t len)
{
	for (struct lpin *p = lm->pinlist; p; p = p->next) {
		if (!(addr < p->addr + p->len && p->addr < addr + len) &&
		    !(p->adopted && p->addr == addr && p->len == len))
			continue;
		if (!p->ring)
			return p->adopted && p->addr == addr && p->len == len;
		if (ringsup_same(cl->pid, fd, p->ring->fd) != 0)
			return true;	/* same ring, or kcmp unavailable */
	}
	return false;
}

/* Context: ls->lock held (through disc_ctx's caller). */
static int disc_cb(void *arg, int fd, const struct ringsup_buf *b, size_t n)
{
	struct disc_ctx *d = arg;
	struct lclient *cl = d->cl;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < d->n; j++) {
			struct lmap *lm = d->lms[j];
			if (!(b[i].addr < lm->va + lm->len && lm->va < b[i].addr + b[i].len))
				continue;
			if (disc_known(cl, lm, fd, b[i].addr, b[i].len))
				continue;
			struct lpin *pin = calloc(1, sizeof(*pin));
			if (!pin)
				return -ENOMEM;
			char why[256] = "";
			int err = 0;
			struct lring *r = ring_get_locked(cl, fd, &err, why, sizeof(why));
			*pin = (struct lpin){ .next = lm->pinlist, .ring = r, .addr = b[i].addr,
					      .len = b[i].len, .adopted = true };
			/* the layout holds references (mapped or pinned): get is safe */
			for (size_t k = 0; k < lm->nseg; k++)
				dx_page_get(lm->segs[k].page, UDAX_REF_PIN);
			lm->pinlist = pin;
			if (!lm->pins)
				lm->t_pin = dx_now_ns();
			lm->pins++;
			if (!cl->adopt_logged || !r) {
				cl->adopt_logged = true;
				fuse_log(FUSE_LOG_WARNING, "udaxfs: pid %d (%s) registered its direct "
					 "mapping %#" PRIx64 "+%#" PRIx64 " on io_uring descriptor %d "
					 "without declaring it: %s\n", (int)cl->pid, cl->comm,
					 b[i].addr, b[i].len, fd,
					 r ? "the daemon supervises that ring now" : why);
			}
		}
	}
	return 0;
}

/*
 * ls_discover_locked() - find io_uring buffers of the live client @cl that
 * overlap one of its layouts (all of them if @only is NULL and @ino is 0,
 * else @only, else those of @ino overlapping page indexes [start, end])
 * and are not known pins: adopt each as a pin (our own ring reference when
 * possible), holding page references like a declared pin.
 * Context: ls->lock held; reads /proc of the client (never its memory map).
 */
void ls_discover_locked(struct layout_service *ls, struct lclient *cl, struct lmap *only,
			uint64_t ino, uint64_t start, uint64_t end)
{
	if (!ringsup_enabled() || cl->exited || cl->pidfd < 0)
		return;
	size_t n = 0, cap = 0;
	struct lmap **lms = NULL;
	for (struct lmap *lm = cl->maps; lm; lm = lm->next) {
		if (lm->state != LM_ACTIVE || !lm->va || !(lm->mapped || lm->pins))
			continue;
		if (only && lm != only)
			continue;
		if (!only && ino && (lm->ino != ino || !range_overlaps(lm, start, end)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			struct lmap **nl = realloc(lms, cap * sizeof(*lms));
			if (!nl)
				break;
			lms = nl;
		}
		lms[n++] = lm;
	}
	if (n) {
		struct disc_ctx d = { ls, cl, lms, n };
		ringsup_scan_pid(cl->pid, disc_cb, &d);
	}
	free(lms);
}

/* Mark pins of @lm for release (all, or only adopted ones).  Context: ls->lock held. */
void ls_pins_want_release_locked(struct lmap *lm, bool adopted_only)
{
	for (struct lpin *p = lm->pinlist; p; p = p->next)
		if (!adopted_only || p->adopted)
			p->want_release = true;
}

/*
 * PIN: take our own reference to the client's ring and a pin reference on
 * every page of the layout.  Refused when the pin could not be supervised.
 * Context: event thread, no lock.
 */
void ls_req_pin(struct layout_service *ls, struct lclient *cl, struct lmap *lm,
		const struct udax_msg *h, const struct udax_pin_req *rq)
{
	char why[256] = "";
	struct lring *ring = NULL;
	int err = 0;

	pthread_mutex_lock(&ls->lock);
	bool recalled = lm->recall_sent;
	uint64_t va = lm->va;
	if (va && (rq->addr < va || rq->addr + rq->len > va + lm->len)) {
		pthread_mutex_unlock(&ls->lock);
		ls_reply_err(ls, cl, h->type, h->seq, -EINVAL,
			     "the pinned range lies outside the layout's mapping");
		return;
	}
	if (!recalled && ringsup_enabled())
		ring = ring_get_locked(cl, rq->ring_fd, &err, why, sizeof(why));
	pthread_mutex_unlock(&ls->lock);
	if (recalled) {
		ls_reply_err(ls, cl, h->type, h->seq, -EBUSY,
			     "a recall of this layout is under way: the pin is refused");
		return;
	}
	if (err) {
		/* refuse what cannot be made safe */
		if (err != -ESRCH && err != -ENOMEM)
			err = -EOPNOTSUPP;
		ls_reply_err(ls, cl, h->type, h->seq, err, why);
		return;
	}
	struct lpin *pin = calloc(1, sizeof(*pin));
	err = pin ? pin_segs(ls, lm) : -ENOMEM;
	if (!err) {
		/* written down before the client is told it may pin (pinrec.h) */
		err = pin_record(ls, lm, cl->pid);
		if (err)
			ls_put_segs(lm, UDAX_REF_PIN, 1);
	}
	pthread_mutex_lock(&ls->lock);
	if (err) {
		ring_put_locked(cl, ring);
		free(pin);
		ls_queue_err(cl, h->type, h->seq, err, err == -EBUSY ?
			     "a recall of this layout is under way: the pin is refused" :
			     "the layout is gone");
		pthread_mutex_unlock(&ls->lock);
		return;
	}
	*pin = (struct lpin){ .next = lm->pinlist, .ring = ring, .addr = rq->addr, .len = rq->len };
	lm->pinlist = pin;
	if (!lm->pins)
		lm->t_pin = dx_now_ns();
	lm->pins++;
	ls_queue_msg(cl, h->type | UDAX_MSG_REPLY, h->seq, 0, -1, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&ls->lock);
}

/*
 * UNPIN: the reply waits until the daemon has seen that the ring no longer
 * holds the buffer and nothing in flight uses it (usually at once).
 * Context: event thread, no lock.
 */
void ls_req_unpin(struct layout_service *ls, struct lclient *cl, struct lmap *lm,
		  const struct udax_msg *h, const struct udax_pin_req *rq)
{
	pthread_mutex_lock(&ls->lock);
	/*
	 * The same range may be pinned on several rings (cloned buffers):
	 * the one on the ring the request names, else - the client closed
	 * that descriptor already - one whose ring cannot be compared.
	 */
	struct lpin *pin = NULL, *loose = NULL;
	for (struct lpin *p = lm->pinlist; p && !pin; p = p->next) {
		if (p->adopted || p->want_release || p->addr != rq->addr || p->len != rq->len)
			continue;
		int same = p->ring ? ringsup_same(cl->pid, rq->ring_fd, p->ring->fd) : -EBADF;
		if (same == 1)
			pin = p;
		else if (same < 0 && !loose)
			loose = p;
	}
	if (!pin)
		pin = loose;
	if (pin) {
		pin->want_release = true;
		pin->unpin_seq = h->seq;
	} else {
		ls_queue_err(cl, h->type, h->seq, -EINVAL,
			     "no pin of %#" PRIx64 "+%#" PRIx64 " on this layout", rq->addr, rq->len);
	}
	pthread_mutex_unlock(&ls->lock);
	if (pin)
		ls_lmap_progress(ls, lm);
}
