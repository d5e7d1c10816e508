/* SPDX-License-Identifier: MIT */
/*
 * layout_conn.c - the connections of the layout service: the event thread
 * (accepting, reading, dispatching, flushing), framing, the output queues
 * and their limits, what one connection may cost, the client's process
 * (pidfd) and the reaping of what a dead client held.
 */
#include "config.h"

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "layout_int.h"
#include "core/util.h"

/* Queue one message on @cl.  Context: ls->lock held.  Return: 0, -ENOMEM. */
int ls_queue_msg(struct lclient *cl, uint16_t type, uint32_t seq, int32_t status,
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

void ls_queue_err(struct lclient *cl, uint16_t type, uint32_t seq, int err,
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
	ls_queue_msg(cl, type | UDAX_MSG_REPLY, seq, err, -1, msg, (size_t)n + 1, NULL, 0);
}

void ls_reply_simple(struct layout_service *ls, struct lclient *cl, uint16_t type,
		     uint32_t seq, int status)
{
	pthread_mutex_lock(&ls->lock);
	ls_queue_msg(cl, type | UDAX_MSG_REPLY, seq, status, -1, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&ls->lock);
}

void ls_reply_err(struct layout_service *ls, struct lclient *cl, uint16_t type, uint32_t seq,
		  int err, const char *why)
{
	pthread_mutex_lock(&ls->lock);
	ls_queue_err(cl, type, seq, err, "%s", why);
	pthread_mutex_unlock(&ls->lock);
}

/* ---- the event thread ---- */

static void dispatch(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		     const void *payload)
{
	switch (h->type) {
	case UDAX_REQ_MAP:
		ls_req_map(ls, cl, h, payload);
		break;
	case UDAX_REQ_PIN:
	case UDAX_REQ_UNPIN:
	case UDAX_REQ_UNMAP:
	case UDAX_REQ_RETURN:
		ls_req_id(ls, cl, h, payload);
		break;
	case UDAX_REQ_STATUS:
		ls_req_status(ls, cl, h);
		break;
	case UDAX_REQ_BREAKS:
		ls_req_breaks(ls, cl, h);
		break;
	case UDAX_REQ_INVAL:
		ls_req_inval(ls, cl, h, payload);
		break;
	case UDAX_REQ_CACHETAB:
		ls_req_cachetab(ls, cl, h);
		break;
	default:
		pthread_mutex_lock(&ls->lock);
		ls_queue_err(cl, h->type, h->seq, -EOPNOTSUPP, "unknown request type %u", h->type);
		pthread_mutex_unlock(&ls->lock);
	}
}

/* Free a chain of output buffers (unlinked from its client: no lock). */
void ls_outbufs_free(struct outbuf *ob)
{
	while (ob) {
		struct outbuf *n = ob->next;
		free(ob);
		ob = n;
	}
}

static void client_eof(struct layout_service *ls, struct lclient *cl)
{
	if (cl->sock < 0)
		return;
	epoll_ctl(ls->epfd, EPOLL_CTL_DEL, cl->sock, NULL);
	/* under the lock: ls_client_send_now() may use the socket from another thread */
	pthread_mutex_lock(&ls->lock);
	int sock = cl->sock;
	cl->sock = -1;
	cl->eof = true;
	struct outbuf *ob = cl->out_head;
	cl->out_head = cl->out_tail = NULL;
	cl->out_bytes = 0;
	pthread_mutex_unlock(&ls->lock);
	close(sock);
	ls_outbufs_free(ob);
	free(cl->in);
	cl->in = NULL;
	cl->in_len = cl->in_cap = 0;
}

/*
 * ls_client_send_now() - send @cl's only queued message right away, from the
 * thread that queued it, instead of waking the event thread to do it: a
 * recall then reaches the client one wake-up sooner (on a busy 2-CPU
 * machine each wake-up of another thread may wait for a CPU).  Anything
 * not sent whole (a full socket, a descriptor to pass, earlier output
 * still queued) stays queued for the event thread.
 * Context: ls->lock held; any thread; never blocks.
 * Return: true when the queue is empty afterwards.
 */
bool ls_client_send_now(struct lclient *cl)
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
	case UDAX_REQ_INVAL:
		return 2 * sizeof(struct udax_inval_req);
	case UDAX_REQ_STATUS:
	case UDAX_REQ_BREAKS:
	case UDAX_REQ_CACHETAB:
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
 * ls_client_watch() - get a pidfd of the client process, to learn when it
 * exits (its references are dropped then), before it is granted anything.
 * Taken only for a connection that is about to hold references, so idle
 * or hostile connections cost no descriptor beyond their socket.  The
 * socket's own peer pidfd (SO_PEERPIDFD) names the process that connected
 * even if its pid was reused since; pidfd_open() is the fallback.
 * Context: event thread.  Return: 0, -errno (-EMFILE, -ESRCH: it is gone).
 */
int ls_client_watch(struct layout_service *ls, struct lclient *cl)
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
	uint64_t now = dx_now_ns();

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
	cl->t_connect = dx_now_ns();
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
		left |= !ls_lmap_drop_all(ls, lm);
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

/*
 * The client after @cl in ls->clients (the first when @cl is NULL).  Only
 * the event thread takes a client off the list (client_reap), so its
 * walks drop the lock between steps and may end the client they stand on.
 * Context: event thread.
 */
static struct lclient *client_next(struct layout_service *ls, struct lclient *cl)
{
	pthread_mutex_lock(&ls->lock);
	struct lclient *next = cl ? cl->next : ls->clients;
	pthread_mutex_unlock(&ls->lock);
	return next;
}

/* Hang up on connections that never presented a ticket within the timeout. */
static void sweep_ticketless(struct layout_service *ls)
{
	uint64_t now = dx_now_ns();

	if (now - ls->t_sweep < 1000000000ull)
		return;
	ls->t_sweep = now;
	for (struct lclient *cl = client_next(ls, NULL), *next; cl; cl = next) {
		next = client_next(ls, cl);
		pthread_mutex_lock(&ls->lock);
		bool idle = !cl->maps && !cl->grants;
		pthread_mutex_unlock(&ls->lock);
		if (cl->sock >= 0 && !cl->ticketed && idle &&
		    now - cl->t_connect > NOTICKET_TIMEOUT_S * 1000000000ull)
			client_eof(ls, cl);
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
			ls_lmap_progress(ls, found);
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

void *ls_event_main(void *arg)
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
		for (struct lclient *cl = client_next(ls, NULL), *next; cl; cl = next) {
			next = client_next(ls, cl);
			client_flush(ls, cl);
			client_reap(ls, cl);	/* may free cl */
		}
		retry_releases(ls);
	}
	return NULL;
}
