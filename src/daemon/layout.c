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
 * segment (taken by ufs_layout_grant); each pin (struct lpin) holds one
 * UDAX_REF_PIN per segment.  References belong to the connection that took
 * them: no request can name another connection's layout.
 *
 * Pins end on the kernel's word, not the client's (ringsup.h).  A PIN names
 * the client's ring; the daemon takes its own reference to it (struct
 * lring, pidfd_getfd, one per ring by kcmp) and refuses rings it could not
 * revoke.  Every end of a pin - UNPIN, RETURN, the client's death, UNMAP of
 * a layout with adopted pins - goes through pin_revoke_verify(): empty the
 * ring's slots over the range, cancel its fixed-buffer requests (waiting for
 * running ones), read the table again, and only then put the references.
 * Neither the client's word nor its pidfd is enough: io_uring_unregister
 * returns with requests in flight, and a ring outlives its process in a
 * fork()ed child or a pidfd_getfd taker.  Holding the ring makes the
 * revocation work whoever holds it by then.  Rings the client never
 * declared (a program under the shim registering its own mapping, a second
 * ring, cloned buffers) are found by discover_locked() from /proc of the
 * live client - before a recall is sent, at UNMAP and at RETURN - and
 * adopted as pins.  A pin that cannot be verified yet keeps its references
 * and is retried by the event loop (ls->retry); a truncate waits meanwhile.
 * What userspace cannot see at all is listed in udaxfs(8), PIN SUPERVISION.
 * UDAXFS_NO_RING_VERIFY=1 (a test aid for negative controls) restores the
 * old trust in the client's word.
 *
 * Lifetime rule that keeps ufs_mapping() valid: an lmap in state ACTIVE
 * always holds references (map or pin) on its pages, so its inode cannot be
 * evicted past break_layouts while the record exists; records are freed only
 * by the event thread, after their last reference is put.
 */
#include "config.h"

#define FUSE_USE_VERSION 314

#include <endian.h>
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
#include <syslog.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "dax.h"
#include "layout.h"
#include "media.h"
#include "pinrec.h"
#include "ringsup.h"
#include "ufs.h"
#include "util.h"

#define MAX_TICKETS 1024
#define MAX_ALLOW 64
#define MAX_GROUPS 64
/* A client that does not read its replies loses its connection past this. */
#define OUT_MAX_BYTES (64u << 20)
/* Grants in flight per client (each has a thread). */
#define MAX_GRANTS 32
/*
 * What one connection may cost.  Any local user can connect (the socket is
 * abstract); only a ticket (a file opened on the mount) leads to layouts.
 * With these limits the connections take at most about 2 x CONN_MAX_TOTAL
 * descriptors (socket + pidfd) of the daemon's 20000 and, for input, at
 * most IN_BUF_BYTES each while a message is being received.
 */
#define CONN_MAX_TOTAL 1024		/* open connections, all users */
#define CONN_ROOT_RESERVE 256		/* ... and this many more for uid 0 */
#define CONN_MAX_PER_UID 128		/* open connections of one uid */
#define IN_BUF_BYTES (16u << 10)	/* input buffered per connection */
#define OUT_PAUSE_BYTES (256u << 10)	/* stop reading requests while this much waits */
#define NOTICKET_TIMEOUT_S 10		/* a connection that never presented a ticket */

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

/* The daemon's own reference to a client's ring (pidfd_getfd). */
struct lring {
	struct lring *next;		/* cl->rings; ls->lock */
	int fd;				/* our descriptor; const */
	int info;			/* its /proc/self/fdinfo, kept open; const */
	int client_fd;			/* its number in the client when taken; const */
	unsigned int users;		/* lpins on it; ls->lock */
};

/*
 * One pin: a registered buffer over a layout's pages, declared by the
 * client (PIN) or adopted by discovery.  Holds one UDAX_REF_PIN per
 * segment of its layout until the daemon has seen, from the kernel, that
 * the ring no longer reaches the pages (pin_release()).
 */
struct lpin {
	struct lpin *next;		/* lm->pinlist; ls->lock */
	struct lring *ring;		/* NULL: not supervised (verification off), or
					 * adopted from a ring the daemon could not take:
					 * then watched through /proc; const */
	uint64_t addr, len;		/* the buffer, client virtual addresses; const */
	bool adopted;			/* found by discovery; const */
	bool want_release;		/* UNPIN, RETURN, UNMAP (adopted), death; ls->lock */
	bool revoking;			/* the event thread works on it; ls->lock */
	uint32_t unpin_seq;		/* an UNPIN waiting for the release (0: none);
					 * event thread */
	uint64_t t_fail_log;		/* last failure logged; event thread */
	bool t_fail_log_round;		/* visited by this retry round; ls->lock */
};

struct lmap {
	struct lmap *next;		/* cl->maps; ls->lock */
	struct lclient *cl;
	uint64_t id, ino, off, len;	/* the granted range: device-aligned */
	uint64_t size_end;		/* i_size grows to it (0: UDAX_MAP_F_KEEP_SIZE) */
	bool writable;
	enum lmap_state state;		/* ls->lock */
	bool mapped;			/* MAP refs held; ls->lock */
	unsigned int pins;		/* PIN refs per segment (lpins in pinlist); ls->lock */
	struct lpin *pinlist;		/* ls->lock */
	uint64_t va;			/* client address of file offset off (MAP.addr;
					 * 0: unknown); ls->lock */
	bool recall_pending;		/* recalled while GRANTING; ls->lock */
	bool recall_sent;		/* ls->lock */
	bool reap_seen;			/* client_reap's round; ls->lock */
	uint64_t recall_seq;		/* ls->lock */
	uint64_t t_grant, t_pin;
	uint64_t prec_key;		/* its record in ls->pinrec while pins > 0; event thread */
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
	int pidfd;			/* -1 after exit; written by the event thread
					 * under ls->lock */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	char comm[32];
	uint64_t t_connect;
	bool eof, exited;		/* event thread (read under ls->lock by status) */
	bool ticketed;			/* presented a valid ticket once; event thread */
	bool paused;			/* too much output waiting: not reading; event thread */
	uint32_t ev_mask;		/* the socket's epoll events; event thread */
	int fd_access;			/* -1, O_RDONLY, O_RDWR: the device fd sent; ls->lock */
	uint64_t next_id;		/* ls->lock */
	struct lmap *maps;		/* ls->lock */
	unsigned int grants;		/* grant and status threads in flight; ls->lock */
	bool want_out;			/* EPOLLOUT armed; event thread */
	char *in;			/* event thread */
	size_t in_len, in_cap;
	struct outbuf *out_head, *out_tail;	/* ls->lock */
	size_t out_bytes;		/* queued; ls->lock */
	bool overflow;			/* out_bytes would pass OUT_MAX_BYTES; ls->lock */
	struct lring *rings;		/* our references to its rings; ls->lock */
	bool adopt_logged;		/* an adoption was logged; ls->lock */
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
	struct pinrec *pinrec;		/* layout_opts.pinrec; const after start */
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

	unsigned int refused;		/* connections refused since the last log line; event thread */
	uint64_t t_refused_log;		/* event thread */
	uint64_t t_sweep;		/* last sweep for ticketless connections; event thread */

	bool retry;			/* pins wait for a release retry; ls->lock */
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

/*
 * ticket_live() - @c was issued less than UDAX_TICKET_TTL_S before @now.  A
 * ticket stamped after @now (by a worker that read the clock later) is live.
 */
static bool ticket_live(const struct ticket *c, uint64_t now)
{
	return c->t_ns >= now || now - c->t_ns <= (uint64_t)UDAX_TICKET_TTL_S * 1000000000ull;
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
		udax_seterr("cannot record the pin in %s: %s", PINREC_DIR, strerror(-err));
	return err;
}

/* The last pin of @lm is released: cross its record out.  Context: event thread. */
static void pin_unrecord(struct layout_service *ls, struct lmap *lm)
{
	pinrec_del(ls->pinrec, lm->prec_key);
	lm->prec_key = 0;
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
 * pin_revoke_verify() - the one way a pin ends: make sure, from the kernel,
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
static int pin_revoke_verify(struct layout_service *ls, struct lmap *lm, struct lpin *pin)
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
		uint64_t now = udax_now_ns();
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
		queue_msg(lm->cl, UDAX_REQ_UNPIN | UDAX_MSG_REPLY, seq, 0, -1, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&ls->lock);
	for (size_t i = 0; i < lm->nseg; i++)
		udax_page_put(lm->segs[i].page, UDAX_REF_PIN);
	if (last)
		pin_unrecord(ls, lm);	/* seen released: cross the record out */
	free(pin);
	return 0;
}

/*
 * Release every pin of @lm that wants it; free @lm once it holds nothing.
 * Context: event thread, no lock held.
 * Return: true if @lm was freed, false if it remains (pins left, or mapped).
 */
static bool lmap_progress(struct layout_service *ls, struct lmap *lm)
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
		if (pin_revoke_verify(ls, lm, todo[i]) == 0)
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
		queue_inval(ls, lm->ino, lm->off, lm->len);
	pthread_mutex_lock(&ls->lock);
	lmap_unlink_free(lm);
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
				udax_page_get(lm->segs[k].page, UDAX_REF_PIN);
			lm->pinlist = pin;
			if (!lm->pins)
				lm->t_pin = udax_now_ns();
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
 * discover_locked() - find io_uring buffers of the live client @cl that
 * overlap one of its layouts (all of them if @only is NULL and @ino is 0,
 * else @only, else those of @ino overlapping page indexes [start, end])
 * and are not known pins: adopt each as a pin (our own ring reference when
 * possible), holding page references like a declared pin.
 * Context: ls->lock held; reads /proc of the client (never its memory map).
 */
static void discover_locked(struct layout_service *ls, struct lclient *cl, struct lmap *only,
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
static void pins_want_release_locked(struct lmap *lm, bool adopted_only)
{
	for (struct lpin *p = lm->pinlist; p; p = p->next)
		if (!adopted_only || p->adopted)
			p->want_release = true;
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

static int client_watch(struct layout_service *ls, struct lclient *cl);

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
	now = udax_now_ns();
	struct ticket *t = NULL;
	for (int i = 0; i < MAX_TICKETS; i++) {
		struct ticket *c = &ls->tickets[i];
		if (c->t_ns && !c->used && memcmp(c->key, rq.ticket, sizeof(c->key)) == 0) {
			t = c;
			break;
		}
	}
	if (!t || !ticket_live(t, now)) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, -EACCES,
			  "unknown or expired ticket: issue UDAX_IOC_HELLO on the open file first");
		goto out;
	}
	t->used = true;
	cl->ticketed = true;
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
	/* references are dropped when the process exits: watch it before taking any */
	int perr = client_watch(ls, cl);
	if (perr) {
		queue_err(cl, UDAX_REQ_MAP, h->seq, perr,
			  "cannot watch the client process (pidfd): %s; no layout granted",
			  strerror(-perr));
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
		/* where the client maps file offset goff (for discovery) */
		.va = rq.addr > rq.off - goff ? rq.addr - (rq.off - goff) : 0,
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

/*
 * lmap_drop_all() - the layout is over (RETURN, or its client died): drop
 * its map references and release every pin once the kernel shows it
 * released; free it when nothing is left.  Pins that cannot be verified
 * yet stay, with their page references, and are retried by the event loop.
 * Context: event thread, no lock.  Return: true if @lm was freed.
 */
static bool lmap_drop_all(struct layout_service *ls, struct lmap *lm)
{
	pthread_mutex_lock(&ls->lock);
	bool mapped = lm->mapped;
	lm->mapped = false;
	pins_want_release_locked(lm, false);
	pthread_mutex_unlock(&ls->lock);
	pin_unrecord(ls, lm);
	if (mapped)
		put_segs(lm, UDAX_REF_MAP, 1);
	return lmap_progress(ls, lm);
}

static void reply_err(struct layout_service *ls, struct lclient *cl, uint16_t type, uint32_t seq,
		      int err, const char *why)
{
	pthread_mutex_lock(&ls->lock);
	queue_err(cl, type, seq, err, "%s", why);
	pthread_mutex_unlock(&ls->lock);
}

/*
 * PIN: take our own reference to the client's ring and a pin reference on
 * every page of the layout.  Refused when the pin could not be supervised.
 * Context: event thread, no lock.
 */
static void req_pin(struct layout_service *ls, struct lclient *cl, struct lmap *lm,
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
		reply_err(ls, cl, h->type, h->seq, -EINVAL,
			  "the pinned range lies outside the layout's mapping");
		return;
	}
	if (!recalled && ringsup_enabled())
		ring = ring_get_locked(cl, rq->ring_fd, &err, why, sizeof(why));
	pthread_mutex_unlock(&ls->lock);
	if (recalled) {
		reply_err(ls, cl, h->type, h->seq, -EBUSY,
			  "a recall of this layout is under way: the pin is refused");
		return;
	}
	if (err) {
		/* refuse what cannot be made safe */
		if (err != -ESRCH && err != -ENOMEM)
			err = -EOPNOTSUPP;
		reply_err(ls, cl, h->type, h->seq, err, why);
		return;
	}
	struct lpin *pin = calloc(1, sizeof(*pin));
	err = pin ? pin_segs(ls, lm) : -ENOMEM;
	if (!err) {
		/* written down before the client is told it may pin (pinrec.h) */
		err = pin_record(ls, lm, cl->pid);
		if (err)
			put_segs(lm, UDAX_REF_PIN, 1);
	}
	pthread_mutex_lock(&ls->lock);
	if (err) {
		ring_put_locked(cl, ring);
		free(pin);
		queue_err(cl, h->type, h->seq, err, err == -EBUSY ?
			  "a recall of this layout is under way: the pin is refused" :
			  "the layout is gone");
		pthread_mutex_unlock(&ls->lock);
		return;
	}
	*pin = (struct lpin){ .next = lm->pinlist, .ring = ring, .addr = rq->addr, .len = rq->len };
	lm->pinlist = pin;
	if (!lm->pins)
		lm->t_pin = udax_now_ns();
	lm->pins++;
	queue_msg(cl, h->type | UDAX_MSG_REPLY, h->seq, 0, -1, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&ls->lock);
}

/*
 * UNPIN: the reply waits until the daemon has seen that the ring no longer
 * holds the buffer and nothing in flight uses it (usually at once).
 * Context: event thread, no lock.
 */
static void req_unpin(struct layout_service *ls, struct lclient *cl, struct lmap *lm,
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
		queue_err(cl, h->type, h->seq, -EINVAL,
			  "no pin of %#" PRIx64 "+%#" PRIx64 " on this layout", rq->addr, rq->len);
	}
	pthread_mutex_unlock(&ls->lock);
	if (pin)
		lmap_progress(ls, lm);
}

static void req_id(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		   const void *payload)
{
	struct udax_return_req rq = { 0, 0 };
	struct udax_pin_req prq;
	uint16_t type = h->type;

	if (h->len < sizeof(uint64_t)) {
		reply_simple(ls, cl, type, h->seq, -EINVAL);
		return;
	}
	if (type == UDAX_REQ_PIN || type == UDAX_REQ_UNPIN) {
		if (h->len < sizeof(prq)) {
			reply_err(ls, cl, type, h->seq, -EINVAL,
				  "short PIN/UNPIN request: the daemon needs struct udax_pin_req "
				  "(the ring's descriptor and the buffer's range) to supervise pins; "
				  "this client speaks an older protocol");
			return;
		}
		memcpy(&prq, payload, sizeof(prq));
		if (prq.flags || prq.ring_fd < 0 || !prq.len || prq.addr + prq.len < prq.addr) {
			reply_err(ls, cl, type, h->seq, -EINVAL, prq.ring_fd < 0 ?
				  "PIN without the ring's descriptor: the daemon cannot see "
				  "whether the kernel still holds the buffer" :
				  "bad PIN request: flags must be 0 and the range non-empty");
			return;
		}
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
	case UDAX_REQ_PIN:
		req_pin(ls, cl, lm, h, &prq);
		break;
	case UDAX_REQ_UNPIN:
		req_unpin(ls, cl, lm, h, &prq);
		break;
	case UDAX_REQ_UNMAP: {
		/*
		 * A buffer the client registered over the mapping without
		 * declaring it cannot outlive the mapping it was given back
		 * with: adopt and revoke it.  Declared pins stay until UNPIN.
		 */
		pthread_mutex_lock(&ls->lock);
		discover_locked(ls, cl, lm, 0, 0, 0);
		pins_want_release_locked(lm, true);
		bool was = lm->mapped;
		lm->mapped = false;
		pthread_mutex_unlock(&ls->lock);
		if (was)
			put_segs(lm, UDAX_REF_MAP, 1);
		lmap_progress(ls, lm);
		reply_simple(ls, cl, type, h->seq, 0);
		break;
	}
	case UDAX_REQ_RETURN:
		pthread_mutex_lock(&ls->lock);
		discover_locked(ls, cl, lm, 0, 0, 0);
		pthread_mutex_unlock(&ls->lock);
		lmap_drop_all(ls, lm);
		break;
	}
}

/* ---- status (records, udax_proto.h) ---- */

/* Directory entries the name search visits at most, per status request. */
#define STATUS_WALK_MAX 1000000

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
	uint64_t n;			/* records written */
	uint64_t dropped;		/* records left out by UDAX_STATUS_MAX_RECORDS */
};

/*
 * Append a record of @type: @fixed bytes (the structure, fields already
 * little-endian; its header is filled here), then @str with its NUL,
 * padded to 8 bytes.  Counted as dropped once the stream is full (room is
 * kept for the END record).
 */
static void sb_rec(struct sbuf *sb, uint16_t type, void *rec, size_t fixed, const char *str)
{
	size_t slen = str ? strlen(str) + 1 : 0;
	size_t len = (fixed + slen + 7) & ~(size_t)7;
	struct udax_srec *h = rec;

	if (sb->oom)
		return;
	if (type != UDAX_SREC_END && sb->n + 1 >= UDAX_STATUS_MAX_RECORDS) {
		sb->dropped++;
		return;
	}
	if (sb->len + len > sb->cap) {
		size_t ncap = sb->cap ? sb->cap * 2 : 16384;
		while (ncap < sb->len + len)
			ncap *= 2;
		char *np = realloc(sb->p, ncap);
		if (!np) {
			sb->oom = true;
			return;
		}
		sb->p = np;
		sb->cap = ncap;
	}
	h->type = htole16(type);
	h->reserved = 0;
	h->len = htole32((uint32_t)len);
	memcpy(sb->p + sb->len, rec, fixed);
	memset(sb->p + sb->len + fixed, 0, len - fixed);
	if (slen)
		memcpy(sb->p + sb->len + fixed, str, slen);
	sb->len += len;
	sb->n++;
}

/* The inodes the reply names, to look up their names. */
struct inoset {
	uint64_t *v;
	size_t n, cap;
};

static void inoset_add(struct inoset *s, uint64_t ino)
{
	if (s->n && s->v[s->n - 1] == ino)
		return;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *nv = realloc(s->v, ncap * sizeof(*nv));
		if (!nv)
			return;		/* that file goes unnamed */
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = ino;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Page runs, built from the page handles (udax_dax_foreach_handle). */
struct run {
	struct udax_page_info first;	/* index and pfn of its first page */
	uint64_t npages;
	uint32_t handles;
};

struct runs {
	struct run *v;
	size_t n, cap;
	uint64_t dropped;		/* runs left out (at most that many records) */
};

static bool run_extends(const struct run *r, const struct udax_page_info *pi)
{
	const struct udax_page_info *f = &r->first;

	return f->ino == pi->ino && f->order == pi->order && f->refcount == pi->refcount &&
	       f->mapcount == pi->mapcount && f->pincount == pi->pincount &&
	       f->tracked == pi->tracked && f->index + r->npages == pi->index &&
	       f->pfn + r->npages == pi->pfn;
}

static void run_merge(struct run *r, const struct run *next)
{
	r->npages += next->npages;
	r->handles += next->handles;
	if (next->first.age_ns > r->first.age_ns)
		r->first.age_ns = next->first.age_ns;
}

/* Context: the pfn-index lock held (no call into the dax layer). */
static int runs_page(const struct udax_page_info *pi, void *arg)
{
	struct runs *rs = arg;
	struct run one = { *pi, 1ull << pi->order, 1 };

	if (pi->refcount == 0)
		return 0;
	if (rs->n && run_extends(&rs->v[rs->n - 1], pi)) {
		run_merge(&rs->v[rs->n - 1], &one);
		return 0;
	}
	if (rs->n == rs->cap) {
		size_t ncap = rs->cap ? rs->cap * 2 : 256;
		struct run *nv = rs->cap < UDAX_STATUS_MAX_RECORDS ?
			realloc(rs->v, ncap * sizeof(*nv)) : NULL;
		if (!nv) {
			rs->dropped++;
			return 0;
		}
		rs->v = nv;
		rs->cap = ncap;
	}
	rs->v[rs->n++] = one;
	return 0;
}

static int cmp_run(const void *a, const void *b)
{
	const struct udax_page_info *x = &((const struct run *)a)->first;
	const struct udax_page_info *y = &((const struct run *)b)->first;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void emit_runs(struct sbuf *sb, struct runs *rs, struct inoset *inos)
{
	/* handles come in device order: sort by file position and merge again */
	qsort(rs->v, rs->n, sizeof(*rs->v), cmp_run);
	for (size_t i = 0; i < rs->n;) {
		struct run r = rs->v[i];
		size_t j = i + 1;

		for (; j < rs->n && run_extends(&r, &rs->v[j].first); j++)
			run_merge(&r, &rs->v[j]);
		struct udax_srec_pages rec = {
			.ino = htole64(r.first.ino), .index = htole64(r.first.index),
			.npages = htole64(r.npages), .pfn = htole64(r.first.pfn),
			.handles = htole32(r.handles), .order = htole32(r.first.order),
			.refcount = htole32(r.first.refcount), .mapcount = htole32(r.first.mapcount),
			.pincount = htole32(r.first.pincount),
			.flags = htole32(r.first.tracked ? UDAX_SPAGES_TRACKED : 0),
			.age_ns = htole64(r.first.age_ns),
		};
		sb_rec(sb, UDAX_SREC_PAGES, &rec, sizeof(rec), NULL);
		inoset_add(inos, r.first.ino);
		i = j;
	}
	sb->dropped += rs->dropped;
}

struct waiters_ctx {
	struct sbuf *sb;
	struct inoset *inos;
};

/* Context: the pfn-index lock held. */
static int status_waiter(const struct udax_waiter_info *wi, void *arg)
{
	struct waiters_ctx *wc = arg;
	struct udax_srec_waiter rec = {
		.ino = htole64(wi->ino), .start = htole64(wi->start),
		.end = htole64(wi->end == UDAX_END_OF_FILE ? UINT64_MAX : wi->end),
		.wait_index = htole64(wi->wait_index), .wait_pfn = htole64(wi->wait_pfn),
		.refcount = htole32(wi->refcount),
		.flags = htole32(wi->entry_lock ? UDAX_SWAITER_ENTRY_LOCK : 0),
		.waiting_ns = htole64(wi->waiting_ns),
	};
	sb_rec(wc->sb, UDAX_SREC_WAITER, &rec, sizeof(rec), NULL);
	inoset_add(wc->inos, wi->ino);
	return 0;
}

/*
 * The names of the wanted inodes, from the file system's own directories:
 * a breadth-first walk from the root with ufs_readdir() (no lookup counts,
 * no inode lock: a file whose truncate waits for a pin is named all the
 * same; the namespace lock is only ever held shared here, and nothing
 * holds it exclusively while waiting for a layout).
 */
struct walk {
	const uint64_t *want;
	size_t nwant, found;
	char **name;			/* per wanted inode, malloc'd */
	struct wdir {
		uint64_t ino;
		char *path;
	} *q;
	size_t qhead, qn, qcap;
	const char *cur;		/* the directory being read */
	size_t visited;
	bool full;			/* STATUS_WALK_MAX reached */
};

static int walk_fill(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	struct walk *w = arg;
	(void)next;

	if (!e->ino)
		return 0;		/* "." and ".." */
	if (++w->visited > STATUS_WALK_MAX) {
		w->full = true;
		return 1;
	}
	const uint64_t *hit = bsearch(&e->ino, w->want, w->nwant, sizeof(*w->want), cmp_u64);
	bool dir = S_ISDIR(e->st.st_mode);
	if ((!hit || w->name[hit - w->want]) && !dir)
		return 0;
	char *path = NULL;
	if (asprintf(&path, "%s/%s", w->cur, name) < 0)
		return 0;
	if (hit && !w->name[hit - w->want]) {
		w->name[hit - w->want] = dir ? strdup(path) : path;
		w->found++;
		if (!dir)
			return 0;
	}
	if (w->qn == w->qcap) {
		size_t ncap = w->qcap ? w->qcap * 2 : 64;
		struct wdir *nq = realloc(w->q, ncap * sizeof(*nq));
		if (!nq) {
			free(path);
			w->full = true;	/* what is below stays unsearched */
			return 0;
		}
		w->q = nq;
		w->qcap = ncap;
	}
	w->q[w->qn++] = (struct wdir){ e->ino, path };
	return 0;
}

static void emit_names(struct layout_service *ls, struct sbuf *sb, struct inoset *inos)
{
	struct walk w = { 0 };

	qsort(inos->v, inos->n, sizeof(*inos->v), cmp_u64);
	size_t n = 0;
	for (size_t i = 0; i < inos->n; i++)
		if (!n || inos->v[n - 1] != inos->v[i])
			inos->v[n++] = inos->v[i];
	inos->n = n;
	if (!n)
		return;
	w.want = inos->v;
	w.nwant = n;
	w.name = calloc(n, sizeof(*w.name));
	if (!w.name) {
		sb->oom = true;
		return;
	}
	const uint64_t root = UFS_ROOT_INO;
	const uint64_t *rh = bsearch(&root, w.want, n, sizeof(root), cmp_u64);
	if (rh) {
		w.name[rh - w.want] = strdup("/");
		w.found++;
	}
	w.q = malloc(sizeof(*w.q));
	if (w.q) {
		w.q[0] = (struct wdir){ UFS_ROOT_INO, strdup("") };
		w.qn = w.qcap = 1;
	}
	while (w.qhead < w.qn && w.found < n && !w.full) {
		struct wdir d = w.q[w.qhead++];
		if (d.path) {
			w.cur = d.path;
			/* a directory removed meanwhile is skipped (-ENOENT, -ENOTDIR) */
			ufs_readdir(ls->fs, d.ino, 0, false, walk_fill, &w);
		} else {
			w.full = true;	/* out of memory: unsearched */
		}
		free(d.path);
	}
	bool complete = w.qhead == w.qn && !w.full;
	for (size_t i = w.qhead; i < w.qn; i++)
		free(w.q[i].path);
	free(w.q);
	for (size_t i = 0; i < n; i++) {
		struct udax_srec_file rec = {
			.ino = htole64(w.want[i]),
			.flags = htole32(w.name[i] ? 0 : complete ? UDAX_SFILE_UNLINKED :
					 UDAX_SFILE_UNKNOWN),
		};
		sb_rec(sb, UDAX_SREC_FILE, &rec, sizeof(rec), w.name[i] ? w.name[i] : "");
		free(w.name[i]);
	}
	free(w.name);
}

struct status_job {
	struct layout_service *ls;
	struct lclient *asker;
	uint32_t seq;
};

/*
 * Build the status records and queue them as the reply.  On a thread of
 * its own, like a grant: the name search reads directories and may take
 * long on a large tree; the event thread goes on meanwhile.
 */
static void *status_main(void *arg)
{
	struct status_job *job = arg;
	struct layout_service *ls = job->ls;
	struct lclient *asker = job->asker;
	struct sbuf sb = { 0 };
	struct inoset inos = { 0 };
	struct runs rs = { 0 };
	uint64_t now = udax_now_ns();
	bool privileged = asker->uid == 0 ||
		allowed(ls, asker->uid, asker->gid, asker->groups, asker->ngroups);

	struct udax_dax_stats st;
	udax_dax_stats(ufs_dax(ls->fs), &st);
	struct udax_srec_head head = {
		.version = htole32(UDAX_STATUS_VERSION), .pid = (int32_t)htole32((uint32_t)getpid()),
		.quarantined_blocks = htole64(ufs_quarantined_blocks(ls->fs)),
		.tracked_entries = htole64(st.tracked_entries),
		.live_handles = htole64(st.live_handles), .busy_handles = htole64(st.busy_handles),
		.waiters = htole64(st.waiters), .handle_bytes = htole64(st.handle_bytes),
		.unsafe_frees = htole64(st.unsafe_frees),
	};
	sb_rec(&sb, UDAX_SREC_HEAD, &head, sizeof(head), ls->mountpoint);

	struct udax_srec_device dev = {
		.size = htole64(udax_media_size(ls->media)),
		.align = htole64(udax_media_align(ls->media)),
		.target_node = (int32_t)htole32((uint32_t)udax_media_numa_node(ls->media)),
		.mode = htole32(udax_media_kind(ls->media) == UDAX_MEDIA_DEVDAX ?
				UDAX_SDEV_DEVDAX : UDAX_SDEV_EMULATION),
	};
	const char *path = udax_media_path(ls->media);
	sb_rec(&sb, UDAX_SREC_DEVICE, &dev, sizeof(dev), path ? path : "");

	pthread_mutex_lock(&ls->lock);
	uint32_t cid = 0;
	for (struct lclient *cl = ls->clients; cl; cl = cl->next) {
		if (!cl->maps && cl != asker)
			continue;
		bool show = privileged || cl->uid == asker->uid;
		struct udax_srec_client c = {
			.cid = htole32(++cid), .pid = (int32_t)htole32(show ? (uint32_t)cl->pid : 0),
			.uid = htole32((uint32_t)cl->uid),
			.flags = htole32((cl->exited ? 0 : UDAX_SCLIENT_ALIVE) |
					 (cl == asker ? UDAX_SCLIENT_ASKER : 0)),
			.age_ns = htole64(now - cl->t_connect),
		};
		if (show)
			snprintf(c.comm, sizeof(c.comm), "%s", cl->comm);
		sb_rec(&sb, UDAX_SREC_CLIENT, &c, sizeof(c), NULL);
		for (struct lmap *lm = cl->maps; lm; lm = lm->next) {
			if (lm->state != LM_ACTIVE)
				continue;
			struct udax_srec_layout l = {
				.cid = htole32(cid),
				.flags = htole32((lm->writable ? UDAX_SLAYOUT_WRITABLE : 0) |
						 (lm->mapped ? UDAX_SLAYOUT_MAPPED : 0) |
						 (lm->recall_sent ? UDAX_SLAYOUT_RECALLING : 0)),
				.id = htole64(lm->id), .ino = htole64(lm->ino),
				.off = htole64(lm->off), .len = htole64(lm->len),
				.pins = htole32(lm->pins), .age_ns = htole64(now - lm->t_grant),
				.pin_age_ns = htole64(lm->pins ? now - lm->t_pin : 0),
			};
			sb_rec(&sb, UDAX_SREC_LAYOUT, &l, sizeof(l), NULL);
			inoset_add(&inos, lm->ino);
			for (struct lpin *p = lm->pinlist; p; p = p->next) {
				struct udax_srec_pin pr = {
					.cid = htole32(cid),
					.flags = htole32((p->adopted ? UDAX_SPIN_ADOPTED : 0) |
							 (p->ring ? UDAX_SPIN_SUPERVISED : 0) |
							 (p->want_release ? UDAX_SPIN_RELEASING : 0)),
					.layout_id = htole64(lm->id),
					.addr = htole64(show ? p->addr : 0),
					.len = htole64(p->len),
					.ring_fd = (int32_t)htole32((uint32_t)(p->ring && show ?
									p->ring->client_fd : -1)),
				};
				sb_rec(&sb, UDAX_SREC_PIN, &pr, sizeof(pr), NULL);
			}
		}
	}
	pthread_mutex_unlock(&ls->lock);

	udax_dax_foreach_handle(ufs_dax(ls->fs), runs_page, &rs);
	emit_runs(&sb, &rs, &inos);
	free(rs.v);
	struct waiters_ctx wc = { &sb, &inos };
	udax_dax_foreach_waiter(ufs_dax(ls->fs), status_waiter, &wc);
	emit_names(ls, &sb, &inos);
	free(inos.v);

	struct udax_srec_end end = { .nrecords = htole64(sb.n), .dropped = htole64(sb.dropped) };
	sb_rec(&sb, UDAX_SREC_END, &end, sizeof(end), NULL);

	pthread_mutex_lock(&ls->lock);
	if (sb.oom)
		queue_err(asker, UDAX_REQ_STATUS, job->seq, -ENOMEM, "out of memory");
	else
		queue_msg(asker, UDAX_REQ_STATUS | UDAX_MSG_REPLY, job->seq, 0, -1,
			  sb.p, sb.len, NULL, 0);
	asker->grants--;
	pthread_mutex_unlock(&ls->lock);
	wake(ls);
	free(sb.p);
	free(job);
	return NULL;
}

static void req_status(struct layout_service *ls, struct lclient *asker, const struct udax_msg *h)
{
	struct status_job *job = malloc(sizeof(*job));
	pthread_attr_t attr;
	pthread_t th;
	int err;

	pthread_mutex_lock(&ls->lock);
	if (!job || asker->grants >= MAX_GRANTS) {
		queue_err(asker, UDAX_REQ_STATUS, h->seq, job ? -EAGAIN : -ENOMEM,
			  job ? "too many requests in flight" : "out of memory");
		pthread_mutex_unlock(&ls->lock);
		free(job);
		return;
	}
	asker->grants++;
	pthread_mutex_unlock(&ls->lock);
	*job = (struct status_job){ ls, asker, h->seq };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&th, &attr, status_main, job);
	pthread_attr_destroy(&attr);
	if (err) {
		pthread_mutex_lock(&ls->lock);
		asker->grants--;
		queue_err(asker, UDAX_REQ_STATUS, h->seq, -err, "cannot start a status thread");
		pthread_mutex_unlock(&ls->lock);
		free(job);
	}
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
	/* under the lock: client_send_now() may use the socket from another thread */
	pthread_mutex_lock(&ls->lock);
	int sock = cl->sock;
	cl->sock = -1;
	cl->eof = true;
	struct outbuf *ob = cl->out_head;
	cl->out_head = cl->out_tail = NULL;
	cl->out_bytes = 0;
	pthread_mutex_unlock(&ls->lock);
	close(sock);
	while (ob) {
		struct outbuf *n = ob->next;
		free(ob);
		ob = n;
	}
	free(cl->in);
	cl->in = NULL;
	cl->in_len = cl->in_cap = 0;
}

/*
 * client_send_now() - send @cl's only queued message right away, from the
 * thread that queued it, instead of waking the event thread to do it: a
 * recall then reaches the client one wake-up sooner (on a busy 2-CPU
 * machine each wake-up of another thread may wait for a CPU).  Anything
 * not sent whole (a full socket, a descriptor to pass, earlier output
 * still queued) stays queued for the event thread.
 * Context: ls->lock held; any thread; never blocks.
 * Return: true when the queue is empty afterwards.
 */
static bool client_send_now(struct lclient *cl)
{
	struct outbuf *ob = cl->out_head;

	if (!ob)
		return true;
	if (cl->sock < 0 || ob != cl->out_tail || ob->fd >= 0 || ob->off)
		return false;
	ssize_t n = send(cl->sock, ob->data, ob->len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n <= 0)
		return false;
	ob->off = (size_t)n;
	if (ob->off < ob->len)
		return false;
	cl->out_head = cl->out_tail = NULL;
	cl->out_bytes -= ob->len;
	free(ob);
	return true;
}

/*
 * The largest payload a request of @type may carry: every request is a
 * small fixed structure (twice its size leaves room for the protocol to
 * grow); nothing a client sends needs more.  A header announcing more ends
 * the connection before a byte of it is buffered.
 */
static uint32_t req_max_len(uint16_t type)
{
	switch (type) {
	case UDAX_REQ_MAP:
		return 2 * sizeof(struct udax_map_req);
	case UDAX_REQ_PIN:
	case UDAX_REQ_UNPIN:
		return 2 * sizeof(struct udax_pin_req);
	case UDAX_REQ_UNMAP:
	case UDAX_REQ_RETURN:
		return 2 * sizeof(struct udax_return_req);
	case UDAX_REQ_STATUS:
	case UDAX_REQ_BREAKS:
		return 64;
	default:
		return 256;	/* answered "unknown request type" */
	}
}

/* The events the socket waits for, given its state.  Context: event thread. */
static void client_arm(struct layout_service *ls, struct lclient *cl)
{
	if (cl->sock < 0)
		return;
	pthread_mutex_lock(&ls->lock);
	bool want = cl->out_head != NULL;
	pthread_mutex_unlock(&ls->lock);
	uint32_t ev = (cl->paused ? 0 : EPOLLIN) | (want ? EPOLLOUT : 0);
	if (ev != cl->ev_mask) {
		struct epoll_event e = { .events = ev, .data.ptr = cl };
		epoll_ctl(ls->epfd, EPOLL_CTL_MOD, cl->sock, &e);
		cl->ev_mask = ev;
	}
	cl->want_out = want;
}

/*
 * Dispatch the complete messages buffered, unless too many replies wait
 * unread (then pause: the client's own socket buffer holds the rest, and
 * its sends block).  Context: event thread.
 */
static void client_process(struct layout_service *ls, struct lclient *cl)
{
	size_t pos = 0;

	while (cl->sock >= 0 && cl->in_len - pos >= sizeof(struct udax_msg)) {
		struct udax_msg h;
		memcpy(&h, cl->in + pos, sizeof(h));
		if (h.magic != UDAX_MSG_MAGIC || h.len > req_max_len(h.type)) {
			client_eof(ls, cl);
			return;
		}
		if (cl->in_len - pos - sizeof(h) < h.len)
			break;
		pthread_mutex_lock(&ls->lock);
		bool full = cl->out_bytes >= OUT_PAUSE_BYTES;
		pthread_mutex_unlock(&ls->lock);
		if (full) {
			cl->paused = true;
			break;
		}
		dispatch(ls, cl, &h, cl->in + pos + sizeof(h));
		if (cl->sock < 0)
			return;
		pos += sizeof(h) + h.len;
	}
	memmove(cl->in, cl->in + pos, cl->in_len - pos);
	cl->in_len -= pos;
}

/* Read what is there; dispatch complete messages.  Context: event thread. */
static void client_read(struct layout_service *ls, struct lclient *cl)
{
	while (cl->sock >= 0 && !cl->paused) {
		if (!cl->in) {
			cl->in = malloc(IN_BUF_BYTES);
			if (!cl->in) {
				client_eof(ls, cl);
				return;
			}
			cl->in_cap = IN_BUF_BYTES;
		}
		/* a whole message always fits (req_max_len): a full buffer was dispatched */
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
		client_process(ls, cl);
	}
	if (cl->sock >= 0 && cl->in && !cl->in_len) {
		free(cl->in);	/* an idle connection keeps no buffer */
		cl->in = NULL;
		cl->in_cap = 0;
	}
	client_arm(ls, cl);
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
	bool overflow = cl->overflow, drained = cl->out_bytes < OUT_PAUSE_BYTES / 2;
	pthread_mutex_unlock(&ls->lock);
	if (overflow) {
		client_eof(ls, cl);
		return;
	}
	if (cl->paused && drained) {
		/* the client reads its replies again: take up its requests */
		cl->paused = false;
		if (cl->in_len)
			client_process(ls, cl);
		if (cl->sock < 0)
			return;
	}
	client_arm(ls, cl);
}

/* A tag in epoll data to tell a client's pidfd from its socket. */
#define PIDFD_TAG 1ul

/*
 * client_watch() - get a pidfd of the client process, to learn when it
 * exits (its references are dropped then), before it is granted anything.
 * Taken only for a connection that is about to hold references, so idle
 * or hostile connections cost no descriptor beyond their socket.  The
 * socket's own peer pidfd (SO_PEERPIDFD) names the process that connected
 * even if its pid was reused since; pidfd_open() is the fallback.
 * Context: event thread.  Return: 0, -errno (-EMFILE, -ESRCH: it is gone).
 */
static int client_watch(struct layout_service *ls, struct lclient *cl)
{
	int fd = -1;

	if (cl->pidfd >= 0)
		return 0;
#ifdef SO_PEERPIDFD
	socklen_t sl = sizeof(fd);
	if (getsockopt(cl->sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &sl) < 0)
		fd = -1;
	else if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
	if (fd < 0)
		fd = (int)syscall(SYS_pidfd_open, cl->pid, 0);
	if (fd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.u64 = (uint64_t)(uintptr_t)cl | PIDFD_TAG;
	if (epoll_ctl(ls->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	cl->pidfd = fd;
	return 0;
}

/* Log refused connections: the first at once, then a count every 10 s. */
static void note_refused(struct layout_service *ls, uid_t uid, pid_t pid, const char *why)
{
	uint64_t now = udax_now_ns();

	ls->refused++;
	if (ls->t_refused_log && now - ls->t_refused_log < 10000000000ull)
		return;
	syslog(LOG_WARNING, "%s: layout service: refused %u connection%s (last: uid %u pid %d): %s",
	       ls->mountpoint, ls->refused, ls->refused == 1 ? "" : "s", (unsigned int)uid,
	       (int)pid, why);
	ls->refused = 0;
	ls->t_refused_log = now;
}

static void client_accept(struct layout_service *ls)
{
	int s = accept4(ls->lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (s < 0)
		return;
	struct ucred cr;
	socklen_t sl = sizeof(cr);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &sl) < 0) {
		close(s);
		return;
	}
	unsigned int total = 0, mine = 0;
	pthread_mutex_lock(&ls->lock);
	for (struct lclient *c = ls->clients; c; c = c->next) {
		if (c->eof)
			continue;
		total++;
		mine += c->uid == cr.uid;
	}
	pthread_mutex_unlock(&ls->lock);
	char why[160] = "";
	if (mine >= CONN_MAX_PER_UID)
		snprintf(why, sizeof(why), "%u connections of that uid are open (limit %u)", mine,
			 CONN_MAX_PER_UID);
	else if (total >= CONN_MAX_TOTAL + (cr.uid == 0 ? CONN_ROOT_RESERVE : 0))
		snprintf(why, sizeof(why), "%u connections are open (limit %u, %u more for root)",
			 total, CONN_MAX_TOTAL, CONN_ROOT_RESERVE);
	if (why[0]) {
		close(s);
		note_refused(ls, cr.uid, cr.pid, why);
		return;
	}
	struct lclient *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(s);
		return;
	}
	cl->sock = s;
	cl->pidfd = -1;
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
	cl->ev_mask = EPOLLIN;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cl };
	epoll_ctl(ls->epfd, EPOLL_CTL_ADD, s, &ev);
	pthread_mutex_lock(&ls->lock);
	cl->next = ls->clients;
	ls->clients = cl;
	pthread_mutex_unlock(&ls->lock);
}

/*
 * A closed connection.  One that holds nothing goes at once, with its
 * pidfd.  One that holds references waits until its process has exited,
 * then:
 * drop its map references and release its pins - each only when the
 * kernel shows that the ring the daemon holds no longer reaches the pages
 * (a forked child or a process that took the ring with pidfd_getfd(2) may
 * still use it: the revocation stops them).  Free the client when nothing
 * is left; otherwise the event loop retries.
 * Context: event thread.
 */
static void client_reap(struct layout_service *ls, struct lclient *cl)
{
	if (!cl->eof)
		return;
	pthread_mutex_lock(&ls->lock);
	bool refs = cl->maps || cl->grants;
	unsigned int grants = cl->grants;
	pthread_mutex_unlock(&ls->lock);
	if (refs && !cl->exited)
		return;
	if (grants)
		return;		/* the grant threads see eof and clean up; retried on wake */
	bool left = false;
	for (;;) {
		pthread_mutex_lock(&ls->lock);
		struct lmap *lm = cl->maps;
		while (lm && lm->reap_seen)	/* visited and kept this round */
			lm = lm->next;
		if (lm)
			lm->reap_seen = true;
		pthread_mutex_unlock(&ls->lock);
		if (!lm)
			break;
		left |= !lmap_drop_all(ls, lm);
	}
	pthread_mutex_lock(&ls->lock);
	for (struct lmap *lm = cl->maps; lm; lm = lm->next)
		lm->reap_seen = false;
	if (left || cl->maps) {
		ls->retry = true;
		pthread_mutex_unlock(&ls->lock);
		return;
	}
	struct lclient **pp = &ls->clients;
	while (*pp && *pp != cl)
		pp = &(*pp)->next;
	if (*pp)
		*pp = cl->next;
	UDAX_BUG_ON(cl->rings);	/* every pin released its ring */
	pthread_mutex_unlock(&ls->lock);
	if (cl->pidfd >= 0) {
		epoll_ctl(ls->epfd, EPOLL_CTL_DEL, cl->pidfd, NULL);
		close(cl->pidfd);
	}
	free(cl);
}

/* Hang up on connections that never presented a ticket within the timeout. */
static void sweep_ticketless(struct layout_service *ls)
{
	uint64_t now = udax_now_ns();

	if (now - ls->t_sweep < 1000000000ull)
		return;
	ls->t_sweep = now;
	pthread_mutex_lock(&ls->lock);
	struct lclient *cl = ls->clients;
	pthread_mutex_unlock(&ls->lock);
	while (cl) {
		pthread_mutex_lock(&ls->lock);
		struct lclient *next = cl->next;
		bool idle = !cl->maps && !cl->grants;
		pthread_mutex_unlock(&ls->lock);
		if (cl->sock >= 0 && !cl->ticketed && idle &&
		    now - cl->t_connect > NOTICKET_TIMEOUT_S * 1000000000ull)
			client_eof(ls, cl);
		cl = next;
	}
}

/* Retry pins whose release could not be verified yet.  Context: event thread. */
static void retry_releases(struct layout_service *ls)
{
	pthread_mutex_lock(&ls->lock);
	bool retry = ls->retry;
	ls->retry = false;
	pthread_mutex_unlock(&ls->lock);
	if (!retry)
		return;
	for (bool again = true; again;) {
		again = false;
		pthread_mutex_lock(&ls->lock);
		struct lmap *found = NULL;
		for (struct lclient *cl = ls->clients; cl && !found; cl = cl->next) {
			if (cl->eof && cl->exited)
				continue;	/* client_reap's */
			for (struct lmap *lm = cl->maps; lm && !found; lm = lm->next)
				for (struct lpin *p = lm->pinlist; p && !found; p = p->next)
					if (p->want_release && !p->revoking && !p->t_fail_log_round) {
						p->t_fail_log_round = true;
						found = lm;
					}
		}
		pthread_mutex_unlock(&ls->lock);
		if (found) {
			lmap_progress(ls, found);
			again = true;
		}
	}
	pthread_mutex_lock(&ls->lock);
	for (struct lclient *cl = ls->clients; cl; cl = cl->next)
		for (struct lmap *lm = cl->maps; lm; lm = lm->next)
			for (struct lpin *p = lm->pinlist; p; p = p->next)
				p->t_fail_log_round = false;
	pthread_mutex_unlock(&ls->lock);
}

static void *event_main(void *arg)
{
	struct layout_service *ls = arg;
	struct epoll_event evs[32];

	for (;;) {
		pthread_mutex_lock(&ls->lock);
		int tmo = ls->retry ? 10 : 1000;
		pthread_mutex_unlock(&ls->lock);
		int n = epoll_wait(ls->epfd, evs, UDAX_ARRAY_SIZE(evs), tmo);
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
				pthread_mutex_lock(&ls->lock);
				int pfd = cl->pidfd;
				cl->pidfd = -1;		/* discovery reads it under the lock */
				cl->exited = true;
				pthread_mutex_unlock(&ls->lock);
				close(pfd);
			} else {
				struct lclient *cl = p;
				if (cl->paused && (evs[i].events & (EPOLLHUP | EPOLLERR)))
					client_eof(ls, cl);
				else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					client_read(ls, cl);
			}
		}
		sweep_ticketless(ls);
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
		retry_releases(ls);
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
		/*
		 * Before the recall makes the client replace its mappings: a
		 * ring it registered them on without declaring it is adopted
		 * now, so the break waits for the ring to let go, not only for
		 * the client's word.
		 */
		bool in_range = false;
		for (struct lmap *lm = cl->maps; lm && !in_range; lm = lm->next)
			in_range = lm->state == LM_ACTIVE && !lm->recall_sent && lm->ino == ino &&
				   range_overlaps(lm, start, end);
		if (in_range)
			discover_locked(ls, cl, NULL, ino, start, end);
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
			if (!client_send_now(cl))
				any = true;	/* the event thread sends the rest */
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
	/*
	 * Read the clock under the lock: a @now read before it could be older
	 * than a ticket another worker stored meanwhile, and that ticket must
	 * not look expired (it was the bug that lost concurrent clients'
	 * tickets: an unsigned now - t_ns wrapped around).
	 */
	now = udax_now_ns();
	t.t_ns = now;
	int slot = 0;
	for (int i = 0; i < MAX_TICKETS; i++) {
		const struct ticket *c = &ls->tickets[i];
		if (!c->t_ns || c->used || !ticket_live(c, now)) {
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
	ls->pinrec = o ? o->pinrec : NULL;
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
			/*
			 * A dead client's pins end as everywhere else: only
			 * once the ring we hold shows them gone (its ring may
			 * live on in another process).  What cannot be
			 * verified keeps its references: unmount reports busy.
			 */
			for (struct lpin *p = lm->pinlist, *pn; cl->exited && p; p = pn) {
				pn = p->next;
				if (lm->state == LM_ACTIVE)
					pin_revoke_verify(ls, lm, p);
			}
			while (lm->pinlist) {
				struct lpin *p = lm->pinlist;
				lm->pinlist = p->next;
				free(p);
			}
			/* pins not seen released stay in the record: the next mount quarantines them */
			free(lm->segs);
			free(lm);
			lm = ln;
		}
		if (cl->sock >= 0)
			close(cl->sock);
		if (cl->pidfd >= 0)
			close(cl->pidfd);
		while (cl->rings) {
			struct lring *r = cl->rings;
			cl->rings = r->next;
			close(r->info);
			close(r->fd);
			free(r);
		}
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
