/* SPDX-License-Identifier: MIT */
/*
 * layout.c - the daemon's layout service: direct mappings of file ranges
 * for libudax clients, their pins, and recalls for break_layouts.
 *
 * See layout.h for the threads and the lock order, udax_proto.h for the
 * protocol.  Objects:
 *
 *   struct layout_service  the service: listening socket, tickets, clients.
 *   struct lclient  one connection (one client process): its credentials,
 *                   a pidfd, input buffer, output queue, layouts.
 *   struct lmap     one layout: inode, byte range, writable, segments (each
 *                   a page handle), whether the map references are held
 *                   and how many pins were granted on it.
 *
 * References: a granted layout holds one UDAX_REF_MAP reference per
 * segment (taken by ufs_layout_grant); each pin holds one UDAX_REF_PIN per
 * segment.  References belong to the connection that took them: no request
 * can name another connection's layout.  When a connection ends, nothing
 * is dropped until its process has exited (the pidfd polls readable): only
 * then has the kernel cancelled its io_uring requests and released its
 * long-term pins.  (io_uring's worker threads belong to the client's thread
 * group, so no READ_FIXED is still copying into the pages once the pidfd
 * polls readable.  A real device's DMA is cancelled by the ring's exit
 * work, which runs asynchronously: with real hardware a grace period, or a
 * kernel interface reporting pin counts, would be needed as well.)
 *
 * Lifetime rule that keeps ufs_mapping() valid: an lmap in state ACTIVE
 * always holds references (map or pin) on its pages, so its inode cannot be
 * evicted past break_layouts while the record exists; records are freed only
 * by the event thread, after their last reference is put.
 */
#include "config.h"

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "dax.h"
#include "layout.h"
#include "media.h"
#include "ufs.h"
#include "util.h"

#define MAX_TICKETS 1024
#define MAX_ALLOW 64
#define MAX_GROUPS 64
#define STATUS_MAX_PAGES 4096
/* A client that does not read its replies loses its connection past this. */
#define OUT_MAX_BYTES (64u << 20)
/* Grants in flight per client (each has a thread). */
#define MAX_GRANTS 32

struct ticket {
	uint8_t key[16];
	uint64_t ino;
	bool writable;
	bool used;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	uint64_t t_ns;
};

enum lmap_state { LM_GRANTING, LM_ACTIVE };

struct lmap {
	struct lmap *next;		/* cl->maps; ls->lock */
	struct lclient *cl;
	uint64_t id, ino, off, len;	/* the granted range: device-aligned */
	uint64_t size_end;		/* i_size grows to it (0: UDAX_MAP_F_KEEP_SIZE) */
	bool writable;
	enum lmap_state state;		/* ls->lock */
	bool mapped;			/* MAP refs held; ls->lock */
	unsigned int pins;		/* PIN refs per segment; ls->lock */
	bool recall_pending;		/* recalled while GRANTING; ls->lock */
	bool recall_sent;		/* ls->lock */
	uint64_t recall_seq;		/* ls->lock */
	uint64_t t_grant, t_pin;
	size_t nseg;			/* set before ACTIVE, const after */
	struct ufs_layout_seg *segs;
};

struct outbuf {
	struct outbuf *next;
	size_t len, off;
	int fd;				/* -1, or a descriptor to pass with byte 0 */
	char data[];
};

struct lclient {
	struct lclient *next;		/* ls->clients; ls->lock */
	int sock;			/* -1 after EOF; event thread */
	int pidfd;			/* -1 after exit; event thread */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	char comm[32];
	uint64_t t_connect;
	bool eof, exited;		/* event thread (read under ls->lock by status) */
	int fd_access;			/* -1, O_RDONLY, O_RDWR: the device fd sent; ls->lock */
	uint64_t next_id;		/* ls->lock */
	struct lmap *maps;		/* ls->lock */
	unsigned int grants;		/* grant threads in flight; ls->lock */
	bool want_out;			/* EPOLLOUT armed; event thread */
	char *in;			/* event thread */
	size_t in_len, in_cap;
	struct outbuf *out_head, *out_tail;	/* ls->lock */
	size_t out_bytes;		/* queued; ls->lock */
	bool overflow;			/* out_bytes would pass OUT_MAX_BYTES; ls->lock */
};

struct inval {
	struct inval *next;
	uint64_t ino, off, len;
};

struct allow {
	bool gid;
	uint32_t id;
};

struct layout_service {
	struct ufs *fs;
	struct udax_media *media;
	char mountpoint[4096];
	bool keep_size;			/* layout_opts.keep_size; const after start */
	char sock_name[UDAX_SOCK_NAME_MAX];	/* '@' + abstract name */
	int lsock, efd, epfd;
	int dev_rw, dev_ro;		/* device descriptors handed to clients */
	struct allow allow[MAX_ALLOW];
	int nallow;
	bool allow_all;

	pthread_mutex_t lock;		/* the service lock: everything marked ls->lock */
	struct lclient *clients;
	struct ticket tickets[MAX_TICKETS];
	uint64_t recall_seq;
	bool stopping;
	struct fuse_session *se;	/* ls->lock */

	struct udax_break_rec *breaks;	/* ring of UDAX_BREAKS_MAX; ls->lock */
	unsigned int breaks_head, breaks_n;	/* ls->lock */

	pthread_t ev_thread;
	pthread_t inval_thread;
	pthread_cond_t inval_cond;	/* ls->lock */
	struct inval *inval_head, *inval_tail;	/* ls->lock */
};

static _Atomic(struct layout_service *) the_service;

/* ---- small helpers ---- */

static void wake(struct layout_service *ls)
{
	uint64_t one = 1;
	ssize_t r = write(ls->efd, &one, sizeof(one));
	(void)r;
}

static bool range_overlaps(const struct lmap *lm, uint64_t start, uint64_t end)
{
	uint64_t first = lm->off >> UDAX_PAGE_SHIFT;
	uint64_t last = (lm->off + lm->len - 1) >> UDAX_PAGE_SHIFT;
	return first <= end && start <= last;
}

static int parse_allow(struct layout_service *ls, const char *list, uid_t owner)
{
	ls->nallow = 0;
	if (!list) {
		ls->allow[ls->nallow++] = (struct allow){ false, 0 };
		ls->allow[ls->nallow++] = (struct allow){ false, owner };
		return 0;
	}
	char *dup = strdup(list), *save = NULL;
	if (!dup)
		return -ENOMEM;
	for (char *tok = strtok_r(dup, ",:", &save); tok; tok = strtok_r(NULL, ",:", &save)) {
		bool is_gid;
		if (strcmp(tok, "all") == 0) {
			ls->allow_all = true;
			continue;
		}
		if (strcmp(tok, "uid") == 0)
			is_gid = false;
		else if (strcmp(tok, "gid") == 0)
			is_gid = true;
		else
			goto bad;
		char *num = strtok_r(NULL, ",:", &save), *end;
		if (!num)
			goto bad;
		errno = 0;
		unsigned long v = strtoul(num, &end, 10);
		if (errno || *end || end == num || v > UINT32_MAX || ls->nallow == MAX_ALLOW)
			goto bad;
		ls->allow[ls->nallow++] = (struct allow){ is_gid, (uint32_t)v };
	}
	free(dup);
	return 0;
bad:
	free(dup);
	udax_seterr("dax_allow=%s: expected a list of uid:N, gid:N or all", list);
	return -EINVAL;
}

static bool allowed(const struct layout_service *ls, uid_t uid, gid_t gid,
		    const gid_t *groups, int ngroups)
{
	if (ls->allow_all)
		return true;
	for (int i = 0; i < ls->nallow; i++) {
		const struct allow *a = &ls->allow[i];
		if (!a->gid && a->id == uid)
			return true;
		if (a->gid && a->id == gid)
			return true;
		for (int g = 0; a->gid && g < ngroups; g++)
			if (groups[g] == a->id)
				return true;
	}
	return false;
}

/* Queue one message on @cl.  Context: ls->lock held.  Return: 0, -ENOMEM. */
static int queue_msg(struct lclient *cl, uint16_t type, uint32_t seq, int32_t status,
		     int fd, const void *p1, size_t l1, const void *p2, size_t l2)
{
	if (cl->eof || cl->overflow)
		return 0;
	if (cl->out_bytes + sizeof(struct udax_msg) + l1 + l2 > OUT_MAX_BYTES) {
		cl->overflow = true;	/* the event thread hangs up on it */
		return -ENOBUFS;
	}
	struct outbuf *ob = malloc(sizeof(*ob) + sizeof(struct udax_msg) + l1 + l2);
	if (!ob)
		return -ENOMEM;
	struct udax_msg h = {
		.magic = UDAX_MSG_MAGIC, .type = type, .flags = fd >= 0 ? UDAX_MSGF_FD : 0,
		.len = (uint32_t)(l1 + l2), .seq = seq, .status = status,
	};
	memcpy(ob->data, &h, sizeof(h));
	if (l1)
		memcpy(ob->data + sizeof(h), p1, l1);
	if (l2)
		memcpy(ob->data + sizeof(h) + l1, p2, l2);
	ob->len = sizeof(h) + l1 + l2;
	ob->off = 0;
	ob->fd = fd;
	ob->next = NULL;
	cl->out_bytes += ob->len;
	if (cl->out_tail)
		cl->out_tail->next = ob;
	else
		cl->out_head = ob;
	cl->out_tail = ob;
	return 0;
}

/* Reply with an error and a reason.  Context: ls->lock held. */
static void queue_err(struct lclient *cl, uint16_t type, uint32_t seq, int err,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void queue_err(struct lclient *cl, uint16_t type, uint32_t seq, int err,
		      const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	queue_msg(cl, type | UDAX_MSG_REPLY, seq, err, -1, msg, (size_t)n + 1, NULL, 0);
}

static void queue_inval(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len)
{
	struct inval *iv = malloc(sizeof(*iv));
	if (!iv)
		return;
	*iv = (struct inval){ NULL, ino, off, len };
	pthread_mutex_lock(&ls->lock);
	if (ls->inval_tail)
		ls->inval_tail->next = iv;
	else
		ls->inval_head = iv;
	ls->inval_tail = iv;
	pthread_cond_signal(&ls->inval_cond);
	pthread_mutex_unlock(&ls->lock);
}

/* Invalidate the FUSE page cache of a range.  Context: no lock held; not a FUSE worker. */
static void do_inval(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&ls->lock);
	struct fuse_session *se = ls->se;
	pthread_mutex_unlock(&ls->lock);
	if (se)
		fuse_lowlevel_notify_inval_inode(se, ino, (off_t)off, (off_t)len);
}

static void *inval_main(void *arg)
{
	struct layout_service *ls = arg;
	pthread_mutex_lock(&ls->lock);
	for (;;) {
		while (!ls->inval_head && !ls->stopping)
			pthread_cond_wait(&ls->inval_cond, &ls->lock);
		struct inval *iv = ls->inval_head;
		if (!iv)
			break;
		ls->inval_head = iv->next;
		if (!ls->inval_head)
			ls->inval_tail = NULL;
		pthread_mutex_unlock(&ls->lock);
		do_inval(ls, iv->ino, iv->off, iv->len);
		free(iv);
		pthread_mutex_lock(&ls->lock);
	}
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

/* ---- references ---- */

static void put_segs(struct lmap *lm, enum udax_ref kind, unsigned int times)
{
	for (unsigned int t = 0; t < times; t++)
		for (size_t i = 0; i < lm->nseg; i++)
			udax_page_put(lm->segs[i].page, kind);
}

/* Take one pin reference on every segment, or none.
 * Context: event thread, no ls->lock; takes the layout lock shared. */
static int pin_segs(struct layout_service *ls, struct lmap *lm)
{
	struct udax_mapping *m = ufs_mapping(ls->fs, lm->ino);
	if (!m)
		return -ESTALE;
	/*
	 * Under the layout lock (shared): break_layouts sets "recalling" with
	 * it held exclusively, so a pin either lands before its scan (and is
	 * seen busy) or is refused.
	 */
	udax_layout_lock_shared(m);
	for (size_t i = 0; i < lm->nseg; i++) {
		int err = udax_pin_get(m, lm->segs[i].page);
		if (err) {
			while (i--)
				udax_page_put(lm->segs[i].page, UDAX_REF_PIN);
			udax_layout_unlock_shared(m);
			return err;
		}
	}
	udax_layout_unlock_shared(m);
	return 0;
}

/* Unlink @lm from its client and free it.  Context: ls->lock held; no refs left. */
static void lmap_unlink_free(struct lmap *lm)
{
	struct lmap **pp = &lm->cl->maps;
	while (*pp && *pp != lm)
		pp = &(*pp)->next;
	if (*pp)
		*pp = lm->next;
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

/* ---- grants (own thread) ---- */

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
			udax_seterr("layout segments are not contiguous at file offset %" PRIu64,
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
		udax_seterr("layout covers %" PRIu64 " of %" PRIu64 " bytes",
			    expect_file - lm->off, lm->len);
		return -EIO;
	}
	for (uint32_t i = 0; i < n; i++) {
		int err = udax_media_check_map(ls->media, r[i].dev_off, r[i].len);
		if (err) {
			udax_seterr("device run %#" PRIx64 "+%#" PRIx64 " cannot be mapped "
				    "(device alignment %#" PRIx64 ")", r[i].dev_off, r[i].len,
				    udax_media_align(ls->media));
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
	do_inval(ls, lm->ino, lm->off, lm->len);
	unsigned int gflags = (lm->writable ? UFS_GRANT_WRITE : 0) |
			      (ls->keep_size ? UFS_GRANT_KEEP_SIZE : 0);
	int n = ufs_layout_grant_size(ls->fs, &ctx, lm->ino, lm->off, lm->len, lm->size_end,
				      gflags, lm->segs, max);
	if (n < 0) {
		/* -ERANGE: truncated under us after the client grew it; it retries */
		err = n == -ERANGE ? -EBUSY : n;
		if (n != -ERANGE)
			udax_seterr("allocating the layout failed: %s", strerror(-n));
		goto fail;
	}
	lm->nseg = (size_t)n;
	err = build_runs(ls, lm, &runs, &nruns);
	if (err)
		goto fail_put;
	lm->t_grant = udax_now_ns();
	/*
	 * Pages read into the cache between that invalidation and the grant
	 * would go stale under direct stores: drop them again, on the
	 * notifier thread (a write-back it may wait for must not hold up the
	 * grant, for the reason above).
	 */
	if (lm->writable)
		queue_inval(ls, lm->ino, lm->off, lm->len);

	pthread_mutex_lock(&ls->lock);
	if (lm->recall_pending || cl->eof || ls->stopping) {
		bool pend = lm->recall_pending;
		pthread_mutex_unlock(&ls->lock);
		err = pend ? -EBUSY : -ECONNRESET;
		udax_seterr("the range was recalled while it was being granted");
		goto fail_put;
	}
	lm->state = LM_ACTIVE;
	lm->mapped = true;
	struct udax_map_rep rep = {
		.id = lm->id, .ino = lm->ino, .off = lm->off, .len = lm->len,
		.prot = UDAX_PROT_READ | (lm->writable ? UDAX_PROT_WRITE : 0),
		.nruns = nruns, .media_kind = (uint32_t)udax_media_kind(ls->media),
		.fd_access = 0, .dev_align = udax_media_align(ls->media),
	};
	int fd = -1;
	if (lm->writable && cl->fd_access != O_RDWR) {
		fd = ls->dev_rw;
		rep.fd_access = O_RDWR;
	} else if (!lm->writable && cl->fd_access < 0) {
		fd = ls->dev_ro >= 0 ? ls->dev_ro : ls->dev_rw;
		rep.fd_access = ls->dev_ro >= 0 ? O_RDONLY : O_RDWR;
	}
	if (queue_msg(cl, UDAX_REQ_MAP | UDAX_MSG_REPLY, job->seq, 0, fd, &rep, sizeof(rep),
		      runs, nruns * sizeof(*runs)) == 0 && fd >= 0)
		cl->fd_access = (int)rep.fd_access;
	cl->grants--;
	pthread_mutex_unlock(&ls->lock);
	wake(ls);
	free(runs);
	free(job);
	return NULL;

fail_put:
	put_segs(lm, UDAX_REF_MAP, 1);
fail:
	free(runs);
	pthread_mutex_lock(&ls->lock);
	queue_err(cl, UDAX_REQ_MAP, job->seq, err, "%s", udax_errmsg());
	lmap_unlink_free(lm);
	cl->grants--;
	pthread_mutex_unlock(&ls->lock);
	wake(ls);
	free(job);
	return NULL;
}

static void req_map(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		    const void *payload)
{
	struct udax_map_req rq;
	uint64_t now = udax_now_ns();

	if (h->len < sizeof(rq)) {
		pthread_mutex_lock(&ls->lock);
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL, "short MAP request");
		pthread_mutex_unlock(&ls->lock);
		return;
	}
	memcpy(&rq, payload, sizeof(rq));

	pthread_mutex_lock(&ls->lock);
	struct ticket *t = NULL;
	for (int i = 0; i < MAX_TICKETS; i++) {
		struct ticket *c = &ls->tickets[i];
		if (c->t_ns && !c->used && memcmp(c->key, rq.ticket, sizeof(c->key)) == 0) {
			t = c;
			break;
		}
	}
	if (!t || now - t->t_ns > (uint64_t)UDAX_TICKET_TTL_S * 1000000000ull) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EACCES,
			  "unknown or expired ticket: issue UDAX_IOC_HELLO on the open file first");
		goto out;
	}
	t->used = true;
	if (t->uid != cl->uid) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EPERM,
			  "the ticket was issued to uid %u, the connection is uid %u",
			  (unsigned int)t->uid, (unsigned int)cl->uid);
		goto out;
	}
	if (!allowed(ls, cl->uid, cl->gid, cl->groups, cl->ngroups)) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EPERM,
			  "uid %u is not allowed direct access to %s (mount option dax_allow): "
			  "the device descriptor would reach the whole device",
			  (unsigned int)cl->uid, ls->mountpoint);
		goto out;
	}
	if (rq.flags & ~UDAX_MAP_F_KEEP_SIZE) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL, "unknown MAP flags %#x",
			  (unsigned int)(rq.flags & ~UDAX_MAP_F_KEEP_SIZE));
		goto out;
	}
	if ((rq.prot & UDAX_PROT_WRITE) && !t->writable) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EACCES,
			  "the file was opened read-only: no writable layout");
		goto out;
	}
	if (rq.len == 0 || rq.off % UDAX_PAGE_SIZE || rq.len % UDAX_PAGE_SIZE ||
	    rq.off + rq.len < rq.off || rq.len > udax_media_size(ls->media)) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL,
			  "offset and length must be page multiples within the device size");
		goto out;
	}
	if (ls->stopping) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -ESHUTDOWN, "the file system is unmounting");
		goto out;
	}
	if (cl->grants >= MAX_GRANTS) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EAGAIN, "too many layout requests in flight");
		goto out;
	}
	struct lmap *lm = calloc(1, sizeof(*lm));
	struct grant_job *job = calloc(1, sizeof(*job));
	if (!lm || !job) {
		free(lm);
		free(job);
		queue_err(cl, UDAX_REQ_MAP, h->seq, -ENOMEM, "out of memory");
		goto out;
	}
	/*
	 * A device-DAX maps only offsets and lengths that are multiples of its
	 * alignment (2 MiB by default): grant the aligned range around the
	 * request (the core backs each aligned chunk with one aligned run),
	 * but grow the file only to the end the client asked for.
	 */
	uint64_t al = udax_media_align(ls->media);
	uint64_t goff = rq.off, gend = rq.off + rq.len;
	if (al > UDAX_PAGE_SIZE) {
		goff &= ~(al - 1);
		gend = (gend + al - 1) & ~(al - 1);
		if (gend <= goff) {
			free(lm);
			free(job);
			queue_err(cl, UDAX_REQ_MAP, h->seq, -EINVAL, "range past the largest offset");
			goto out;
		}
	}
	*lm = (struct lmap){
		.cl = cl, .id = ++cl->next_id, .ino = t->ino, .off = goff, .len = gend - goff,
		.size_end = (rq.flags & UDAX_MAP_F_KEEP_SIZE) ? 0 : rq.off + rq.len,
		.writable = (rq.prot & UDAX_PROT_WRITE) != 0, .state = LM_GRANTING,
	};
	/* registered before the grant so that a recall racing it is seen */
	lm->next = cl->maps;
	cl->maps = lm;
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
		lmap_unlink_free(lm);
		free(job);
		queue_err(cl, UDAX_REQ_MAP, h->seq, -err, "cannot start a grant thread");
	}
out:
	pthread_mutex_unlock(&ls->lock);
}

/* ---- requests handled on the event thread ---- */

static void reply_simple(struct layout_service *ls, struct lclient *cl, uint16_t type,
			 uint32_t seq, int status)
{
	pthread_mutex_lock(&ls->lock);
	queue_msg(cl, type | UDAX_MSG_REPLY, seq, status, -1, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&ls->lock);
}

/* Drop every reference @lm holds and free it.  Context: event thread, no lock. */
static void lmap_drop_all(struct layout_service *ls, struct lmap *lm)
{
	pthread_mutex_lock(&ls->lock);
	bool mapped = lm->mapped;
	unsigned int pins = lm->pins;
	lm->mapped = false;
	lm->pins = 0;
	pthread_mutex_unlock(&ls->lock);
	if (pins)
		put_segs(lm, UDAX_REF_PIN, pins);
	if (mapped)
		put_segs(lm, UDAX_REF_MAP, 1);
	if (lm->writable)
		queue_inval(ls, lm->ino, lm->off, lm->len);
	pthread_mutex_lock(&ls->lock);
	lmap_unlink_free(lm);
	pthread_mutex_unlock(&ls->lock);
}

static void req_id(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		   const void *payload)
{
	struct udax_return_req rq = { 0, 0 };
	uint16_t type = h->type;

	if (h->len < sizeof(uint64_t)) {
		reply_simple(ls, cl, type, h->seq, -EINVAL);
		return;
	}
	memcpy(&rq, payload, udax_min(h->len, sizeof(rq)));
	pthread_mutex_lock(&ls->lock);
	struct lmap *lm = find_map(cl, rq.id);
	pthread_mutex_unlock(&ls->lock);
	if (!lm) {
		if (type != UDAX_REQ_RETURN)
			reply_simple(ls, cl, type, h->seq, -ESTALE);
		return;
	}

	switch (type) {
	case UDAX_REQ_PIN: {
		pthread_mutex_lock(&ls->lock);
		bool recalled = lm->recall_sent;
		pthread_mutex_unlock(&ls->lock);
		int err = recalled ? -EBUSY : pin_segs(ls, lm);
		if (!err) {
			pthread_mutex_lock(&ls->lock);
			if (!lm->pins)
				lm->t_pin = udax_now_ns();
			lm->pins++;
			pthread_mutex_unlock(&ls->lock);
		}
		reply_simple(ls, cl, type, h->seq, err);
		break;
	}
	case UDAX_REQ_UNPIN: {
		pthread_mutex_lock(&ls->lock);
		bool ok = lm->pins > 0;
		if (ok)
			lm->pins--;
		bool gone = !lm->mapped && !lm->pins;
		pthread_mutex_unlock(&ls->lock);
		if (ok)
			put_segs(lm, UDAX_REF_PIN, 1);
		if (gone)
			lmap_drop_all(ls, lm);
		reply_simple(ls, cl, type, h->seq, ok ? 0 : -EINVAL);
		break;
	}
	case UDAX_REQ_UNMAP: {
		pthread_mutex_lock(&ls->lock);
		bool was = lm->mapped;
		lm->mapped = false;
		bool gone = !lm->pins;
		pthread_mutex_unlock(&ls->lock);
		if (was)
			put_segs(lm, UDAX_REF_MAP, 1);
		if (gone)
			lmap_drop_all(ls, lm);
		reply_simple(ls, cl, type, h->seq, 0);
		break;
	}
	case UDAX_REQ_RETURN:
		lmap_drop_all(ls, lm);
		break;
	}
}

/* ---- status (JSON) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		if (sb->oom)
			return;
		size_t room = sb->cap - sb->len;
		va_start(ap, fmt);
		int n = vsnprintf(sb->p ? sb->p + sb->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			sb->len += (size_t)n;
			return;
		}
		size_t ncap = (sb->cap ? sb->cap * 2 : 4096) + (size_t)n;
		char *np = realloc(sb->p, ncap);
		if (!np) {
			sb->oom = true;
			return;
		}
		sb->p = np;
		sb->cap = ncap;
	}
}

static void sb_json_str(struct sbuf *sb, const char *s)
{
	sb_printf(sb, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(sb, "\\%c", c);
		else if (c < 0x20)
			sb_printf(sb, "\\u%04x", c);
		else
			sb_printf(sb, "%c", c);
	}
	sb_printf(sb, "\"");
}

struct status_ctx {
	struct sbuf *sb;
	unsigned int n;
};

static int status_page(const struct udax_page_info *pi, void *arg)
{
	struct status_ctx *sc = arg;
	if (pi->refcount == 0)
		return 0;
	if (sc->n >= STATUS_MAX_PAGES)
		return 1;
	sb_printf(sc->sb, "%s{\"ino\":%" PRIu64 ",\"index\":%" PRIu64 ",\"pfn\":%" PRIu64
		  ",\"order\":%u,\"refcount\":%u,\"mapcount\":%u,\"pincount\":%u,"
		  "\"tracked\":%s,\"age_ns\":%" PRIu64 "}",
		  sc->n ? "," : "", pi->ino, pi->index, pi->pfn, pi->order, pi->refcount,
		  pi->mapcount, pi->pincount, pi->tracked ? "true" : "false", pi->age_ns);
	sc->n++;
	return 0;
}

static int status_waiter(const struct udax_waiter_info *wi, void *arg)
{
	struct status_ctx *sc = arg;
	sb_printf(sc->sb, "%s{\"ino\":%" PRIu64 ",\"start\":%" PRIu64 ",\"end\":%" PRId64
		  ",\"wait_index\":%" PRIu64 ",\"wait_pfn\":%" PRIu64 ",\"refcount\":%u,"
		  "\"waiting_ns\":%" PRIu64 "}",
		  sc->n ? "," : "", wi->ino, wi->start,
		  wi->end == UDAX_END_OF_FILE ? (int64_t)-1 : (int64_t)wi->end,
		  wi->wait_index, wi->wait_pfn, wi->refcount, wi->waiting_ns);
	sc->n++;
	return 0;
}

static void req_status(struct layout_service *ls, struct lclient *asker, const struct udax_msg *h)
{
	struct sbuf sb = { 0 };
	uint64_t now = udax_now_ns();
	bool privileged = asker->uid == 0 ||
		allowed(ls, asker->uid, asker->gid, asker->groups, asker->ngroups);

	sb_printf(&sb, "{\"version\":%d,\"pid\":%d,\"mountpoint\":", UDAX_PROTO_VERSION,
		  (int)getpid());
	sb_json_str(&sb, ls->mountpoint);
	struct udax_dax_stats st;
	udax_dax_stats(ufs_dax(ls->fs), &st);
	sb_printf(&sb, ",\"dax\":{\"tracked_entries\":%" PRIu64 ",\"live_handles\":%" PRIu64
		  ",\"busy_handles\":%" PRIu64 ",\"waiters\":%" PRIu64 ",\"handle_bytes\":%"
		  PRIu64 ",\"unsafe_frees\":%" PRIu64 "}",
		  st.tracked_entries, st.live_handles, st.busy_handles, st.waiters,
		  st.handle_bytes, st.unsafe_frees);
	sb_printf(&sb, ",\"clients\":[");
	pthread_mutex_lock(&ls->lock);
	bool first = true;
	for (struct lclient *cl = ls->clients; cl; cl = cl->next) {
		if (!cl->maps && cl != asker)
			continue;
		bool show = privileged || cl->uid == asker->uid;
		sb_printf(&sb, "%s{\"pid\":%d,\"comm\":", first ? "" : ",", show ? (int)cl->pid : 0);
		sb_json_str(&sb, show ? cl->comm : "");
		sb_printf(&sb, ",\"uid\":%u,\"age_ns\":%" PRIu64 ",\"alive\":%s,\"layouts\":[",
			  (unsigned int)cl->uid, now - cl->t_connect, cl->exited ? "false" : "true");
		first = false;
		bool f2 = true;
		for (struct lmap *lm = cl->maps; lm; lm = lm->next) {
			if (lm->state != LM_ACTIVE)
				continue;
			sb_printf(&sb, "%s{\"id\":%" PRIu64 ",\"ino\":%" PRIu64 ",\"off\":%" PRIu64
				  ",\"len\":%" PRIu64 ",\"writable\":%s,\"mapped\":%s,\"pins\":%u,"
				  "\"recalling\":%s,\"age_ns\":%" PRIu64 ",\"pin_age_ns\":%" PRIu64 "}",
				  f2 ? "" : ",", lm->id, lm->ino, lm->off, lm->len,
				  lm->writable ? "true" : "false", lm->mapped ? "true" : "false",
				  lm->pins, lm->recall_sent ? "true" : "false", now - lm->t_grant,
				  lm->pins ? now - lm->t_pin : 0);
			f2 = false;
		}
		sb_printf(&sb, "]}");
	}
	pthread_mutex_unlock(&ls->lock);
	sb_printf(&sb, "],\"pages\":[");
	struct status_ctx sc = { &sb, 0 };
	udax_dax_foreach_handle(ufs_dax(ls->fs), status_page, &sc);
	sb_printf(&sb, "],\"waiters\":[");
	sc.n = 0;
	udax_dax_foreach_waiter(ufs_dax(ls->fs), status_waiter, &sc);
	sb_printf(&sb, "]}\n");

	pthread_mutex_lock(&ls->lock);
	if (sb.oom)
		queue_err(asker, UDAX_REQ_STATUS, h->seq, -ENOMEM, "out of memory");
	else
		queue_msg(asker, UDAX_REQ_STATUS | UDAX_MSG_REPLY, h->seq, 0, -1,
			  sb.p, sb.len + 1, NULL, 0);
	pthread_mutex_unlock(&ls->lock);
	free(sb.p);
}

/* ---- break records (UDAX_REQ_BREAKS) ---- */

void layout_note_break(struct layout_service *ls, uint64_t ino,
		       const struct udax_break_stats *bs, int rc, uint64_t t_freed)
{
	if (!ls || !bs)
		return;
	struct udax_break_rec r = {
		.ino = ino, .start = 0, .end = UINT64_MAX,
		.t_start = bs->t_start, .t_recall_sent = bs->t_recall_sent,
		.t_last_unpin = bs->t_last_unpin, .t_idle = bs->t_idle, .t_done = bs->t_done,
		.t_freed = t_freed, .passes = bs->passes, .waits = bs->waits, .result = rc,
	};
	pthread_mutex_lock(&ls->lock);
	if (ls->breaks) {
		unsigned int i = (ls->breaks_head + ls->breaks_n) % UDAX_BREAKS_MAX;
		ls->breaks[i] = r;
		if (ls->breaks_n < UDAX_BREAKS_MAX)
			ls->breaks_n++;
		else
			ls->breaks_head = (ls->breaks_head + 1) % UDAX_BREAKS_MAX;
	}
	pthread_mutex_unlock(&ls->lock);
}

static void req_breaks(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h)
{
	pthread_mutex_lock(&ls->lock);
	unsigned int n = ls->breaks_n, first = UDAX_BREAKS_MAX - ls->breaks_head;
	if (first > n)
		first = n;
	/* oldest first: the ring may wrap, so send it as two pieces */
	queue_msg(cl, UDAX_REQ_BREAKS | UDAX_MSG_REPLY, h->seq, ls->breaks ? 0 : -ENOSYS, -1,
		  ls->breaks + ls->breaks_head, first * sizeof(struct udax_break_rec),
		  ls->breaks, (n - first) * sizeof(struct udax_break_rec));
	pthread_mutex_unlock(&ls->lock);
}

/* ---- the event thread ---- */

static void dispatch(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		     const void *payload)
{
	switch (h->type) {
	case UDAX_REQ_MAP:
		req_map(ls, cl, h, payload);
		break;
	case UDAX_REQ_PIN:
	case UDAX_REQ_UNPIN:
	case UDAX_REQ_UNMAP:
	case UDAX_REQ_RETURN:
		req_id(ls, cl, h, payload);
		break;
	case UDAX_REQ_STATUS:
		req_status(ls, cl, h);
		break;
	case UDAX_REQ_BREAKS:
		req_breaks(ls, cl, h);
		break;
	default:
		pthread_mutex_lock(&ls->lock);
		queue_err(cl, h->type, h->seq, -EOPNOTSUPP, "unknown request type %u", h->type);
		pthread_mutex_unlock(&ls->lock);
	}
}

static void client_eof(struct layout_service *ls, struct lclient *cl)
{
	if (cl->sock < 0)
		return;
	epoll_ctl(ls->epfd, EPOLL_CTL_DEL, cl->sock, NULL);
	close(cl->sock);
	cl->sock = -1;
	pthread_mutex_lock(&ls->lock);
	cl->eof = true;
	struct outbuf *ob = cl->out_head;
	cl->out_head = cl->out_tail = NULL;
	cl->out_bytes = 0;
	pthread_mutex_unlock(&ls->lock);
	while (ob) {
		struct outbuf *n = ob->next;
		free(ob);
		ob = n;
	}
	free(cl->in);
	cl->in = NULL;
	cl->in_len = cl->in_cap = 0;
}

/* Read what is there; dispatch complete messages.  Context: event thread. */
static void client_read(struct layout_service *ls, struct lclient *cl)
{
	for (;;) {
		if (cl->in_cap - cl->in_len < 65536) {
			size_t ncap = cl->in_cap ? cl->in_cap * 2 : 65536;
			char *np = realloc(cl->in, ncap);
			if (!np) {
				client_eof(ls, cl);
				return;
			}
			cl->in = np;
			cl->in_cap = ncap;
		}
		ssize_t n = recv(cl->sock, cl->in + cl->in_len, cl->in_cap - cl->in_len,
				 MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_eof(ls, cl);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		cl->in_len += (size_t)n;
		size_t pos = 0;
		while (cl->in_len - pos >= sizeof(struct udax_msg)) {
			struct udax_msg h;
			memcpy(&h, cl->in + pos, sizeof(h));
			if (h.magic != UDAX_MSG_MAGIC || h.len > UDAX_MSG_MAX) {
				client_eof(ls, cl);
				return;
			}
			if (cl->in_len - pos - sizeof(h) < h.len)
				break;
			dispatch(ls, cl, &h, cl->in + pos + sizeof(h));
			if (cl->sock < 0)
				return;
			pos += sizeof(h) + h.len;
		}
		memmove(cl->in, cl->in + pos, cl->in_len - pos);
		cl->in_len -= pos;
	}
}

/* Send queued output.  Context: event thread. */
static void client_flush(struct layout_service *ls, struct lclient *cl)
{
	if (cl->sock < 0)
		return;
	pthread_mutex_lock(&ls->lock);
	for (;;) {
		struct outbuf *ob = cl->out_head;
		if (!ob)
			break;
		struct iovec iov = { ob->data + ob->off, ob->len - ob->off };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (ob->off == 0 && ob->fd >= 0) {
			memset(&u, 0, sizeof(u));
			mh.msg_control = u.buf;
			mh.msg_controllen = sizeof(u.buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &ob->fd, sizeof(int));
		}
		ssize_t n = sendmsg(cl->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			pthread_mutex_unlock(&ls->lock);
			client_eof(ls, cl);
			return;
		}
		ob->off += (size_t)n;
		if (ob->off == ob->len) {
			cl->out_head = ob->next;
			if (!cl->out_head)
				cl->out_tail = NULL;
			cl->out_bytes -= ob->len;
			free(ob);
		}
	}
	bool want = cl->out_head != NULL, overflow = cl->overflow;
	pthread_mutex_unlock(&ls->lock);
	if (overflow) {
		client_eof(ls, cl);
		return;
	}
	if (want != cl->want_out) {
		struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = cl };
		epoll_ctl(ls->epfd, EPOLL_CTL_MOD, cl->sock, &ev);
		cl->want_out = want;
	}
}

/* A tag in epoll data to tell a client's pidfd from its socket. */
#define PIDFD_TAG 1ul

static void client_accept(struct layout_service *ls)
{
	int s = accept4(ls->lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (s < 0)
		return;
	struct ucred cr;
	socklen_t sl = sizeof(cr);
	struct lclient *cl = calloc(1, sizeof(*cl));
	if (!cl || getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &sl) < 0) {
		free(cl);
		close(s);
		return;
	}
	cl->sock = s;
	cl->pid = cr.pid;
	cl->uid = cr.uid;
	cl->gid = cr.gid;
	cl->fd_access = -1;
	cl->t_connect = udax_now_ns();
	sl = sizeof(cl->groups);
	if (getsockopt(s, SOL_SOCKET, SO_PEERGROUPS, cl->groups, &sl) == 0)
		cl->ngroups = (int)(sl / sizeof(gid_t));
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)cr.pid);
	int cfd = open(path, O_RDONLY | O_CLOEXEC);
	if (cfd >= 0) {
		ssize_t n = read(cfd, cl->comm, sizeof(cl->comm) - 1);
		if (n > 0 && cl->comm[n - 1] == '\n')
			n--;
		cl->comm[n > 0 ? n : 0] = 0;
		close(cfd);
	}
	cl->pidfd = (int)syscall(SYS_pidfd_open, cr.pid, 0);
	if (cl->pidfd < 0)
		cl->exited = errno == ESRCH;	/* gone already: drop at EOF */
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cl };
	epoll_ctl(ls->epfd, EPOLL_CTL_ADD, s, &ev);
	if (cl->pidfd >= 0) {
		ev.data.u64 = (uint64_t)(uintptr_t)cl | PIDFD_TAG;
		epoll_ctl(ls->epfd, EPOLL_CTL_ADD, cl->pidfd, &ev);
	}
	pthread_mutex_lock(&ls->lock);
	cl->next = ls->clients;
	ls->clients = cl;
	pthread_mutex_unlock(&ls->lock);
}

/*
 * Drop a dead client's references and free it, once its socket is closed
 * and its process has exited (only then has the kernel released its pins).
 * Context: event thread.
 */
static void client_reap(struct layout_service *ls, struct lclient *cl)
{
	if (!cl->eof || !cl->exited)
		return;
	pthread_mutex_lock(&ls->lock);
	if (cl->grants) {
		pthread_mutex_unlock(&ls->lock);
		return;		/* the grant threads see eof and clean up; retried on wake */
	}
	pthread_mutex_unlock(&ls->lock);
	for (;;) {
		pthread_mutex_lock(&ls->lock);
		struct lmap *lm = cl->maps;
		pthread_mutex_unlock(&ls->lock);
		if (!lm)
			break;
		lmap_drop_all(ls, lm);
	}
	pthread_mutex_lock(&ls->lock);
	struct lclient **pp = &ls->clients;
	while (*pp && *pp != cl)
		pp = &(*pp)->next;
	if (*pp)
		*pp = cl->next;
	pthread_mutex_unlock(&ls->lock);
	if (cl->pidfd >= 0) {
		epoll_ctl(ls->epfd, EPOLL_CTL_DEL, cl->pidfd, NULL);
		close(cl->pidfd);
	}
	free(cl);
}

static void *event_main(void *arg)
{
	struct layout_service *ls = arg;
	struct epoll_event evs[32];

	for (;;) {
		int n = epoll_wait(ls->epfd, evs, UDAX_ARRAY_SIZE(evs), 1000);
		pthread_mutex_lock(&ls->lock);
		bool stop = ls->stopping;
		pthread_mutex_unlock(&ls->lock);
		if (stop)
			break;
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == ls) {
				client_accept(ls);
			} else if (p == &ls->efd) {
				uint64_t v;
				ssize_t r = read(ls->efd, &v, sizeof(v));
				(void)r;
			} else if (evs[i].data.u64 & PIDFD_TAG) {
				struct lclient *cl = (struct lclient *)(uintptr_t)
					(evs[i].data.u64 & ~PIDFD_TAG);
				epoll_ctl(ls->epfd, EPOLL_CTL_DEL, cl->pidfd, NULL);
				close(cl->pidfd);
				cl->pidfd = -1;
				cl->exited = true;
			} else {
				struct lclient *cl = p;
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					client_read(ls, cl);
			}
		}
		/* flush everyone (recalls and grant replies are queued from other threads),
		 * and reap the dead */
		pthread_mutex_lock(&ls->lock);
		struct lclient *cl = ls->clients;
		pthread_mutex_unlock(&ls->lock);
		while (cl) {
			pthread_mutex_lock(&ls->lock);
			struct lclient *next = cl->next;
			pthread_mutex_unlock(&ls->lock);
			client_flush(ls, cl);
			client_reap(ls, cl);
			cl = next;
		}
	}
	return NULL;
}

/* ---- the hooks layout.h promises ---- */

void layout_recall(void *arg, uint64_t ino, uint64_t start, uint64_t end)
{
	struct layout_service *ls = arg ? arg : atomic_load(&the_service);
	bool any = false;

	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	for (struct lclient *cl = ls->clients; cl; cl = cl->next) {
		for (struct lmap *lm = cl->maps; lm; lm = lm->next) {
			if (lm->ino != ino || !range_overlaps(lm, start, end))
				continue;
			if (lm->state == LM_GRANTING) {
				lm->recall_pending = true;
				continue;
			}
			if (lm->recall_sent)
				continue;
			lm->recall_sent = true;
			lm->recall_seq = ++ls->recall_seq;
			struct udax_recall_msg rm = {
				.id = lm->id, .recall_seq = lm->recall_seq, .ino = ino,
				.start = start, .end = end,
			};
			queue_msg(cl, UDAX_MSG_RECALL, 0, 0, -1, &rm, sizeof(rm), NULL, 0);
			any = true;
		}
	}
	pthread_mutex_unlock(&ls->lock);
	if (any)
		wake(ls);
}

bool layout_ino_has_writable(struct layout_service *ls, uint64_t ino)
{
	bool found = false;
	if (!ls)
		return false;
	pthread_mutex_lock(&ls->lock);
	for (struct lclient *cl = ls->clients; cl && !found; cl = cl->next)
		for (struct lmap *lm = cl->maps; lm && !found; lm = lm->next)
			found = lm->ino == ino && lm->writable;
	pthread_mutex_unlock(&ls->lock);
	return found;
}

void layout_set_session(struct layout_service *ls, struct fuse_session *se)
{
	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	ls->se = se;
	pthread_mutex_unlock(&ls->lock);
}

int layout_ioctl(struct layout_service *ls, uint64_t ino, int open_flags, uid_t uid, gid_t gid,
		 pid_t pid, unsigned int cmd, const void *in, size_t in_len, void *out, size_t out_max)
{
	struct udax_ioc_hello hello;

	if (!ls)
		return -ENOTTY;
	if (cmd != UDAX_IOC_HELLO)
		return -ENOTTY;
	if (out_max < sizeof(hello))
		return -EINVAL;
	memset(&hello, 0, sizeof(hello));
	if (in && in_len >= sizeof(uint32_t))
		memcpy(&hello.version, in, sizeof(uint32_t));
	if (hello.version != UDAX_PROTO_VERSION)
		return -EPROTO;

	uint64_t now = udax_now_ns();
	struct ticket t = {
		.ino = ino, .writable = (open_flags & O_ACCMODE) != O_RDONLY,
		.uid = uid, .gid = gid, .pid = pid, .t_ns = now,
	};
	if (getrandom(t.key, sizeof(t.key), 0) != (ssize_t)sizeof(t.key))
		return -EAGAIN;
	pthread_mutex_lock(&ls->lock);
	int slot = 0;
	for (int i = 0; i < MAX_TICKETS; i++) {
		const struct ticket *c = &ls->tickets[i];
		if (!c->t_ns || c->used ||
		    now - c->t_ns > (uint64_t)UDAX_TICKET_TTL_S * 1000000000ull) {
			slot = i;
			break;
		}
		if (c->t_ns < ls->tickets[slot].t_ns)
			slot = i;	/* all live: replace the oldest */
	}
	ls->tickets[slot] = t;
	pthread_mutex_unlock(&ls->lock);

	hello.version = UDAX_PROTO_VERSION;
	hello.flags = (t.writable ? UDAX_HELLO_WRITABLE : 0) |
		      (allowed(ls, uid, gid, NULL, 0) ? UDAX_HELLO_ALLOWED : 0);
	hello.ino = ino;
	memcpy(hello.ticket, t.key, sizeof(t.key));
	snprintf(hello.sock, sizeof(hello.sock), "%s", ls->sock_name);
	hello.media_kind = (uint32_t)udax_media_kind(ls->media);
	hello.pinnable = udax_media_pinnable(ls->media) ||
			 udax_media_kind(ls->media) == UDAX_MEDIA_DEVDAX;
	hello.dev_size = udax_media_size(ls->media);
	hello.dev_align = udax_media_align(ls->media);
	memcpy(out, &hello, sizeof(hello));
	return (int)sizeof(hello);
}

int layout_service_start(struct layout_service **out, struct ufs *fs, const struct layout_opts *o)
{
	struct layout_service *ls = calloc(1, sizeof(*ls));
	int err;

	if (!ls)
		return -ENOMEM;
	ls->fs = fs;
	ls->media = ufs_media(fs);
	ls->lsock = ls->efd = ls->epfd = ls->dev_ro = -1;
	snprintf(ls->mountpoint, sizeof(ls->mountpoint), "%s", o && o->mountpoint ? o->mountpoint : "");
	ls->keep_size = o && o->keep_size;
	err = parse_allow(ls, o ? o->dax_allow : NULL, o ? o->owner_uid : 0);
	if (err)
		goto fail_free;
	pthread_mutex_init(&ls->lock, NULL);
	pthread_cond_init(&ls->inval_cond, NULL);
	ls->breaks = calloc(UDAX_BREAKS_MAX, sizeof(*ls->breaks));	/* NULL: -ENOSYS */

	ls->dev_rw = udax_media_fd(ls->media);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ls->dev_rw);
	ls->dev_ro = open(path, O_RDONLY | O_CLOEXEC);	/* -1: hand out dev_rw instead */

	uint8_t rnd[4];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	snprintf(ls->sock_name, sizeof(ls->sock_name), "@udaxfs-%d-%02x%02x%02x%02x",
		 (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t nl = strlen(ls->sock_name);
	memcpy(sa.sun_path, ls->sock_name, nl);
	sa.sun_path[0] = 0;
	ls->lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ls->lsock < 0 ||
	    bind(ls->lsock, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + nl)) < 0 ||
	    listen(ls->lsock, 64) < 0) {
		err = -errno;
		udax_seterr("layout socket %s: %s", ls->sock_name, strerror(errno));
		goto fail_fds;
	}
	ls->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ls->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ls->efd < 0 || ls->epfd < 0) {
		err = -errno;
		goto fail_fds;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ls };
	epoll_ctl(ls->epfd, EPOLL_CTL_ADD, ls->lsock, &ev);
	ev.data.ptr = &ls->efd;
	epoll_ctl(ls->epfd, EPOLL_CTL_ADD, ls->efd, &ev);

	err = -pthread_create(&ls->inval_thread, NULL, inval_main, ls);
	if (err)
		goto fail_fds;
	err = -pthread_create(&ls->ev_thread, NULL, event_main, ls);
	if (err)
		goto fail_inval;
	atomic_store(&the_service, ls);
	*out = ls;
	return 0;

fail_inval:
	pthread_mutex_lock(&ls->lock);
	ls->stopping = true;
	pthread_cond_signal(&ls->inval_cond);
	pthread_mutex_unlock(&ls->lock);
	pthread_join(ls->inval_thread, NULL);
fail_fds:
	if (ls->epfd >= 0)
		close(ls->epfd);
	if (ls->efd >= 0)
		close(ls->efd);
	if (ls->lsock >= 0)
		close(ls->lsock);
	if (ls->dev_ro >= 0)
		close(ls->dev_ro);
	pthread_cond_destroy(&ls->inval_cond);
	pthread_mutex_destroy(&ls->lock);
	free(ls->breaks);
fail_free:
	free(ls);
	return err;
}

void layout_service_stop(struct layout_service **lsp)
{
	struct layout_service *ls = lsp ? *lsp : NULL;
	if (!ls)
		return;
	*lsp = NULL;
	pthread_mutex_lock(&ls->lock);
	ls->stopping = true;
	pthread_cond_signal(&ls->inval_cond);
	pthread_mutex_unlock(&ls->lock);
	wake(ls);
	pthread_join(ls->ev_thread, NULL);
	pthread_join(ls->inval_thread, NULL);

	/*
	 * Wait for grant threads in flight (they see stopping and undo).
	 * Then drop the map references of clients; pins are kept: a pinned
	 * page must never become idle while the kernel may still DMA into it,
	 * so unmount reports them busy (the inodes stay on the orphan list).
	 */
	for (;;) {
		pthread_mutex_lock(&ls->lock);
		unsigned int g = 0;
		for (struct lclient *cl = ls->clients; cl; cl = cl->next)
			g += cl->grants;
		pthread_mutex_unlock(&ls->lock);
		if (!g)
			break;
		usleep(1000);
	}
	atomic_store(&the_service, NULL);
	struct lclient *cl = ls->clients;
	while (cl) {
		struct lclient *next = cl->next;
		struct lmap *lm = cl->maps;
		while (lm) {
			struct lmap *ln = lm->next;
			if (lm->mapped && lm->state == LM_ACTIVE)
				put_segs(lm, UDAX_REF_MAP, 1);
			if (lm->pins && cl->exited)
				put_segs(lm, UDAX_REF_PIN, lm->pins);
			free(lm->segs);
			free(lm);
			lm = ln;
		}
		if (cl->sock >= 0)
			close(cl->sock);
		if (cl->pidfd >= 0)
			close(cl->pidfd);
		struct outbuf *ob = cl->out_head;
		while (ob) {
			struct outbuf *on = ob->next;
			free(ob);
			ob = on;
		}
		free(cl->in);
		free(cl);
		cl = next;
	}
	struct inval *iv = ls->inval_head;
	while (iv) {
		struct inval *in = iv->next;
		free(iv);
		iv = in;
	}
	close(ls->epfd);
	close(ls->efd);
	close(ls->lsock);
	if (ls->dev_ro >= 0)
		close(ls->dev_ro);
	pthread_cond_destroy(&ls->inval_cond);
	pthread_mutex_destroy(&ls->lock);
	free(ls->breaks);
	free(ls);
}
