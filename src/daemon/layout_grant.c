/* SPDX-License-Identifier: MIT */
/*
 * layout_grant.c - layouts: MAP (each grant on a thread of its own: it may
 * wait for i_rwsem held by a truncate that waits for the event thread),
 * UNMAP and RETURN, and the map references a layout holds.
 *
 * References: a granted layout holds one UDAX_REF_MAP reference per
 * segment (taken by ufs_layout_grant); each pin (struct lpin) holds one
 * UDAX_REF_PIN per segment.  References belong to the connection that took
 * them: no request can name another connection's layout.
 *
 * Lifetime rule that keeps ufs_mapping() valid: an lmap in state ACTIVE
 * always holds references (map or pin) on its pages, so its inode cannot be
 * evicted past break_layouts while the record exists; records are freed only
 * by the event thread, after their last reference is put.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout_int.h"
#include "core/util.h"

/* ---- grants (own thread) ---- */

void ls_put_segs(struct lmap *lm, enum dx_ref kind, unsigned int times)
{
	for (unsigned int t = 0; t < times; t++)
		for (size_t i = 0; i < lm->nseg; i++)
			dx_page_put(lm->segs[i].page, kind);
}

/*
 * Unlink @lm from its client and its inode's chain, and free it.
 * Context: ls->lock held; no references left.
 */
void ls_lmap_unlink_free(struct layout_service *ls, struct lmap *lm)
{
	struct lmap **pp = &lm->cl->maps;
	while (*pp && *pp != lm)
		pp = &(*pp)->next;
	if (*pp)
		*pp = lm->next;
	pthread_mutex_lock(&ls->chain_lock);	/* READs walk the chain under it */
	if (lm->ino_pprev) {
		*lm->ino_pprev = lm->ino_next;
		if (lm->ino_next)
			lm->ino_next->ino_pprev = lm->ino_pprev;
	}
	pthread_mutex_unlock(&ls->chain_lock);
	ls_ctab_put_locked(ls, lm->cslot);
	free(lm->segs);
	free(lm);
}

static struct lmap *find_map(struct lclient *cl, uint64_t id)
{
	for (struct lmap *lm = cl->maps; lm; lm = lm->next)
		if (lm->id == id && lm->state == LM_ACTIVE)
			return lm;
	return NULL;
}

struct grant_job {
	struct layout_service *ls;
	struct lclient *cl;
	struct lmap *lm;
	uint32_t seq;
	uid_t uid;
	gid_t gid;
	pid_t pid;
};

/* Merge segments into device runs and check each against the device alignment. */
static int build_runs(struct layout_service *ls, struct lmap *lm, struct udax_run **out,
		      uint32_t *nout)
{
	struct udax_run *r = calloc(lm->nseg ? lm->nseg : 1, sizeof(*r));
	uint32_t n = 0;
	if (!r)
		return -ENOMEM;
	uint64_t expect_file = lm->off;
	for (size_t i = 0; i < lm->nseg; i++) {
		const struct ufs_layout_seg *s = &lm->segs[i];
		uint64_t slen = UDAX_PAGE_SIZE << s->order;
		uint64_t skip = 0;
		/* a huge segment may start before the requested offset */
		if (s->file_off < expect_file)
			skip = expect_file - s->file_off;
		if (s->file_off + skip != expect_file || skip >= slen) {
			free(r);
			dx_seterr("layout segments are not contiguous at file offset %" PRIu64,
				    expect_file);
			return -EIO;
		}
		uint64_t dev = s->dev_off + skip, len = slen - skip;
		if (expect_file + len > lm->off + lm->len)
			len = lm->off + lm->len - expect_file;
		if (n && r[n - 1].dev_off + r[n - 1].len == dev)
			r[n - 1].len += len;
		else
			r[n++] = (struct udax_run){ dev, len };
		expect_file += len;
	}
	if (expect_file != lm->off + lm->len) {
		free(r);
		dx_seterr("layout covers %" PRIu64 " of %" PRIu64 " bytes",
			    expect_file - lm->off, lm->len);
		return -EIO;
	}
	for (uint32_t i = 0; i < n; i++) {
		int err = dx_media_check_map(ls->media, r[i].dev_off, r[i].len);
		if (err) {
			dx_seterr("device run %#" PRIx64 "+%#" PRIx64 " cannot be mapped "
				    "(device alignment %#" PRIx64 ")", r[i].dev_off, r[i].len,
				    dx_media_align(ls->media));
			free(r);
			return err;
		}
	}
	*out = r;
	*nout = n;
	return 0;
}

static void *grant_main(void *arg)
{
	struct grant_job *job = arg;
	struct layout_service *ls = job->ls;
	struct lclient *cl = job->cl;
	struct lmap *lm = job->lm;
	struct udax_run *runs = NULL;
	uint32_t nruns = 0;
	size_t max = lm->len / UDAX_PAGE_SIZE + 1;
	struct ufs_ctx ctx = { .uid = job->uid, .gid = job->gid, .pid = job->pid };
	int err;

	lm->segs = calloc(max, sizeof(*lm->segs));
	if (!lm->segs) {
		err = -ENOMEM;
		goto fail;
	}
	/*
	 * The client reads and stores around the kernel's page cache of this
	 * file: write back what it holds dirty for the range and drop it
	 * before the range is handed out, so what write() stored through the
	 * mount before the request is what the mapping shows.  This runs
	 * BEFORE the grant takes its references: the write-back it waits for
	 * may be held back by a truncate (FUSE's nowrite state) that is itself
	 * waiting in break_layouts for every reference on the file; holding
	 * ours here would deadlock the two.  No lock held, not a FUSE worker.
	 */
	ls_do_inval(ls, lm->ino, lm->off, lm->len);
	unsigned int gflags = (lm->writable ? UFS_GRANT_WRITE : 0) |
			      (ls->keep_size ? UFS_GRANT_KEEP_SIZE : 0);
	int n = ufs_layout_grant_size(ls->fs, &ctx, lm->ino, lm->off, lm->len, lm->size_end,
				      gflags, lm->segs, max);
	if (n < 0) {
		/* -ERANGE: truncated under us after the client grew it; it retries */
		err = n == -ERANGE ? -EBUSY : n;
		if (n != -ERANGE)
			dx_seterr("allocating the layout failed: %s", strerror(-n));
		goto fail;
	}
	lm->nseg = (size_t)n;
	err = build_runs(ls, lm, &runs, &nruns);
	if (err)
		goto fail_put;
	lm->t_grant = dx_now_ns();
	/*
	 * Pages read into the cache between that invalidation and the grant
	 * would go stale under direct stores: drop them again, on the
	 * notifier thread (a write-back it may wait for must not hold up the
	 * grant, for the reason above).
	 */
	if (lm->writable)
		ls_queue_inval(ls, lm->ino, lm->off, lm->len, lm->cslot);

	pthread_mutex_lock(&ls->lock);
	if (lm->recall_pending || cl->eof || ls->stopping) {
		bool pend = lm->recall_pending;
		pthread_mutex_unlock(&ls->lock);
		err = pend ? -EBUSY : -ECONNRESET;
		dx_seterr("the range was recalled while it was being granted");
		goto fail_put;
	}
	lm->state = LM_ACTIVE;
	lm->mapped = true;
	struct udax_map_rep rep = {
		.id = lm->id, .ino = lm->ino, .off = lm->off, .len = lm->len,
		.prot = UDAX_PROT_READ | (lm->writable ? UDAX_PROT_WRITE : 0),
		.nruns = nruns, .media_kind = (uint32_t)dx_media_kind(ls->media),
		.fd_access = 0, .dev_align = dx_media_align(ls->media), .cache_slot = lm->cslot,
	};
	int fd = -1;
	if (lm->writable && cl->fd_access != O_RDWR) {
		fd = ls->dev_rw;
		rep.fd_access = O_RDWR;
	} else if (!lm->writable && cl->fd_access < 0) {
		fd = ls->dev_ro >= 0 ? ls->dev_ro : ls->dev_rw;
		rep.fd_access = ls->dev_ro >= 0 ? O_RDONLY : O_RDWR;
	}
	if (ls_queue_msg(cl, UDAX_REQ_MAP | UDAX_MSG_REPLY, job->seq, 0, fd, &rep, sizeof(rep),
			 runs, nruns * sizeof(*runs)) == 0 && fd >= 0)
		cl->fd_access = (int)rep.fd_access;
	cl->grants--;
	pthread_mutex_unlock(&ls->lock);
	ls_wake(ls);
	free(runs);
	free(job);
	return NULL;

fail_put:
	ls_put_segs(lm, UDAX_REF_MAP, 1);
fail:
	free(runs);
	pthread_mutex_lock(&ls->lock);
	ls_queue_err(cl, UDAX_REQ_MAP, job->seq, err, "%s", dx_errmsg());
	ls_lmap_unlink_free(ls, lm);
	cl->grants--;
	pthread_mutex_unlock(&ls->lock);
	ls_wake(ls);
	free(job);
	return NULL;
}

void ls_req_map(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		const void *payload)
{
	struct udax_map_req rq;
	uint64_t now = dx_now_ns();

	if (h->len < sizeof(rq)) {
		pthread_mutex_lock(&ls->lock);
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL, "short MAP request");
		pthread_mutex_unlock(&ls->lock);
		return;
	}
	memcpy(&rq, payload, sizeof(rq));

	pthread_mutex_lock(&ls->lock);
	now = dx_now_ns();
	struct ticket *t = NULL;
	for (int i = 0; i < MAX_TICKETS; i++) {
		struct ticket *c = &ls->tickets[i];
		if (c->t_ns && !c->used && memcmp(c->key, rq.ticket, sizeof(c->key)) == 0) {
			t = c;
			break;
		}
	}
	if (!t || !ticket_live(t, now)) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EACCES,
			     "unknown or expired ticket: issue UDAX_IOC_HELLO on the open file first");
		goto out;
	}
	t->used = true;
	cl->ticketed = true;
	if (t->uid != cl->uid) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EPERM,
			     "the ticket was issued to uid %u, the connection is uid %u",
			     (unsigned int)t->uid, (unsigned int)cl->uid);
		goto out;
	}
	if (!ls_allowed(ls, cl->uid, cl->gid, cl->groups, cl->ngroups)) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EPERM,
			     "uid %u is not allowed direct access to %s (mount option dax_allow): "
			     "the device descriptor would reach the whole device",
			     (unsigned int)cl->uid, ls->mountpoint);
		goto out;
	}
	if (rq.flags & ~UDAX_MAP_F_KEEP_SIZE) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL, "unknown MAP flags %#x",
			     (unsigned int)(rq.flags & ~UDAX_MAP_F_KEEP_SIZE));
		goto out;
	}
	if ((rq.prot & UDAX_PROT_WRITE) && !t->writable) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EACCES,
			     "the file was opened read-only: no writable layout");
		goto out;
	}
	if (rq.len == 0 || rq.off % UDAX_PAGE_SIZE || rq.len % UDAX_PAGE_SIZE ||
	    rq.off + rq.len < rq.off || rq.len > dx_media_size(ls->media)) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL,
			     "offset and length must be page multiples within the device size");
		goto out;
	}
	if (ls->stopping) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -ESHUTDOWN, "the file system is unmounting");
		goto out;
	}
	if (cl->grants >= MAX_GRANTS) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EAGAIN, "too many layout requests in flight");
		goto out;
	}
	/* references are dropped when the process exits: watch it before taking any */
	int perr = ls_client_watch(ls, cl);
	if (perr) {
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, perr,
			     "cannot watch the client process (pidfd): %s; no layout granted",
			     strerror(-perr));
		goto out;
	}
	struct lmap *lm = calloc(1, sizeof(*lm));
	struct grant_job *job = calloc(1, sizeof(*job));
	if (!lm || !job) {
		free(lm);
		free(job);
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -ENOMEM, "out of memory");
		goto out;
	}
	/*
	 * A device-DAX maps only offsets and lengths that are multiples of its
	 * alignment (2 MiB by default): grant the aligned range around the
	 * request (the core backs each aligned chunk with one aligned run),
	 * but grow the file only to the end the client asked for.
	 */
	uint64_t al = dx_media_align(ls->media);
	uint64_t goff = rq.off, gend = rq.off + rq.len;
	if (al > UDAX_PAGE_SIZE) {
		goff &= ~(al - 1);
		gend = (gend + al - 1) & ~(al - 1);
		if (gend <= goff) {
			free(lm);
			free(job);
			ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL, "range past the largest offset");
			goto out;
		}
	}
	*lm = (struct lmap){
		.cl = cl, .id = ++cl->next_id, .ino = t->ino, .off = goff, .len = gend - goff,
		.size_end = (rq.flags & UDAX_MAP_F_KEEP_SIZE) ? 0 : rq.off + rq.len,
		.writable = (rq.prot & UDAX_PROT_WRITE) != 0, .state = LM_GRANTING,
		/* where the client maps file offset goff (for discovery) */
		.va = rq.addr > rq.off - goff ? rq.addr - (rq.off - goff) : 0,
		.cslot = (rq.prot & UDAX_PROT_WRITE) ? ls_ctab_get_locked(ls) : UDAX_CACHE_SLOT_NONE,
	};
	/* registered before the grant so that a recall racing it is seen */
	lm->next = cl->maps;
	cl->maps = lm;
	struct lmap **chain = ls_ino_chain(ls, lm->ino);
	pthread_mutex_lock(&ls->chain_lock);	/* READs walk the chain under it */
	lm->ino_next = *chain;
	if (*chain)
		(*chain)->ino_pprev = &lm->ino_next;
	lm->ino_pprev = chain;
	*chain = lm;
	pthread_mutex_unlock(&ls->chain_lock);
	*job = (struct grant_job){ ls, cl, lm, h->seq, t->uid, t->gid, t->pid };
	cl->grants++;
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int err = pthread_create(&th, &attr, grant_main, job);
	pthread_attr_destroy(&attr);
	if (err) {
		cl->grants--;
		ls_lmap_unlink_free(ls, lm);
		free(job);
		ls_queue_err(cl, UDAX_REQ_MAP, h->seq, -err, "cannot start a grant thread");
	}
out:
	pthread_mutex_unlock(&ls->lock);
}


/*
 * UDAX_REQ_INVAL: drop the kernel's cached pages of a range the client
 * stored into directly, on the notifier thread (the kernel may wait there
 * for a page being read in, which a truncate waiting for this very event
 * thread can hold up), and answer when done.  Only ranges of the client's
 * own writable layouts are dropped; an unknown id is a barrier behind the
 * invalidations already queued (a returned layout's).
 * Context: event thread.
 */
void ls_req_inval(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		  const void *payload)
{
	struct udax_inval_req rq;
	struct inval *iv;

	if (h->len < sizeof(rq)) {
		ls_reply_simple(ls, cl, h->type, h->seq, -EINVAL);
		return;
	}
	memcpy(&rq, payload, sizeof(rq));
	iv = calloc(1, sizeof(*iv));
	if (!iv) {
		ls_reply_simple(ls, cl, h->type, h->seq, -ENOMEM);
		return;
	}
	pthread_mutex_lock(&ls->lock);
	struct lmap *lm = find_map(cl, rq.id);
	iv->cslot = UDAX_CACHE_SLOT_NONE;
	if (lm && lm->writable && rq.off < lm->off + lm->len && rq.len &&
	    rq.off + rq.len > lm->off) {
		/*
		 * The whole layout, its flag cleared first: a flag is cleared
		 * only right before a drop of everything it covers.
		 */
		*iv = (struct inval){ .ino = lm->ino, .off = lm->off, .len = lm->len,
				      .cslot = lm->cslot };
		ls_ctab_hold_locked(ls, lm->cslot);
	}
	iv->cl = cl;
	iv->seq = h->seq;
	cl->grants++;
	ls_inval_push(ls, iv);
	pthread_mutex_unlock(&ls->lock);
}

/*
 * ls_lmap_drop_all() - the layout is over (RETURN, or its client died): drop
 * its map references and release every pin once the kernel shows it
 * released; free it when nothing is left.  Pins that cannot be verified
 * yet stay, with their page references, and are retried by the event loop.
 * Context: event thread, no lock.  Return: true if @lm was freed.
 */
bool ls_lmap_drop_all(struct layout_service *ls, struct lmap *lm)
{
	pthread_mutex_lock(&ls->lock);
	bool mapped = lm->mapped;
	lm->mapped = false;
	ls_pins_want_release_locked(lm, false);
	pthread_mutex_unlock(&ls->lock);
	ls_pin_unrecord(ls, lm);
	if (mapped)
		ls_put_segs(lm, UDAX_REF_MAP, 1);
	return ls_lmap_progress(ls, lm);
}

void ls_req_id(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
	       const void *payload)
{
	struct udax_return_req rq = { 0, 0 };
	struct udax_pin_req prq;
	uint16_t type = h->type;

	if (h->len < sizeof(uint64_t)) {
		ls_reply_simple(ls, cl, type, h->seq, -EINVAL);
		return;
	}
	if (type == UDAX_REQ_PIN || type == UDAX_REQ_UNPIN) {
		if (h->len < sizeof(prq)) {
			ls_reply_err(ls, cl, type, h->seq, -EINVAL,
				     "short PIN/UNPIN request: the daemon needs struct udax_pin_req "
				     "(the ring's descriptor and the buffer's range) to supervise pins; "
				     "this client speaks an older protocol");
			return;
		}
		memcpy(&prq, payload, sizeof(prq));
		if (prq.flags || prq.ring_fd < 0 || !prq.len || prq.addr + prq.len < prq.addr) {
			ls_reply_err(ls, cl, type, h->seq, -EINVAL, prq.ring_fd < 0 ?
				     "PIN without the ring's descriptor: the daemon cannot see "
				     "whether the kernel still holds the buffer" :
				     "bad PIN request: flags must be 0 and the range non-empty");
			return;
		}
	}
	memcpy(&rq, payload, dx_min(h->len, sizeof(rq)));
	pthread_mutex_lock(&ls->lock);
	struct lmap *lm = find_map(cl, rq.id);
	pthread_mutex_unlock(&ls->lock);
	if (!lm) {
		if (type != UDAX_REQ_RETURN)
			ls_reply_simple(ls, cl, type, h->seq, -ESTALE);
		return;
	}

	switch (type) {
	case UDAX_REQ_PIN:
		ls_req_pin(ls, cl, lm, h, &prq);
		break;
	case UDAX_REQ_UNPIN:
		ls_req_unpin(ls, cl, lm, h, &prq);
		break;
	case UDAX_REQ_UNMAP: {
		/*
		 * A buffer the client registered over the mapping without
		 * declaring it cannot outlive the mapping it was given back
		 * with: adopt and revoke it.  Declared pins stay until UNPIN.
		 */
		pthread_mutex_lock(&ls->lock);
		ls_discover_locked(ls, cl, lm, 0, 0, 0);
		ls_pins_want_release_locked(lm, true);
		bool was = lm->mapped;
		lm->mapped = false;
		pthread_mutex_unlock(&ls->lock);
		if (was)
			ls_put_segs(lm, UDAX_REF_MAP, 1);
		ls_lmap_progress(ls, lm);
		ls_reply_simple(ls, cl, type, h->seq, 0);
		break;
	}
	case UDAX_REQ_RETURN:
		pthread_mutex_lock(&ls->lock);
		ls_discover_locked(ls, cl, lm, 0, 0, 0);
		pthread_mutex_unlock(&ls->lock);
		ls_lmap_drop_all(ls, lm);
		break;
	}
}
