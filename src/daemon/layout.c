/* SPDX-License-Identifier: MIT */
/*
 * layout.c - the daemon's layout service: direct mappings of file ranges
 * for libudax clients, their pins, and recalls for break_layouts.
 *
 * See layout.h for the threads and the lock order, layout_int.h for the
 * objects and which file handles what, udax_proto.h for the protocol.
 * This file: starting and stopping the service, and the HELLO ioctl with
 * the one-time tickets it issues (bound to inode, access mode and
 * credentials; MAP redeems them, layout_grant.c).
 */
#include "config.h"

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "layout_int.h"
#include "pinrec.h"
#include "core/util.h"

_Atomic(struct layout_service *) ls_current;

/* Wake the event thread: output was queued from another thread, or a client can be reaped. */
void ls_wake(struct layout_service *ls)
{
	uint64_t one = 1;
	ssize_t r = write(ls->efd, &one, sizeof(one));
	(void)r;
}

void layout_set_session(struct layout_service *ls, struct fuse_session *se)
{
	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	ls->se = se;
	/*
	 * Taken away: wait for a notification being written, so that none
	 * looks up the descriptor after unmount closed it (the number could
	 * be another file's by then).  Bounded: one that is still running
	 * after a second is blocked inside its write (an invalidation waiting
	 * for write-back no worker serves any more), past the look-up, and
	 * the unmount that follows is what ends it.
	 */
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 1;
	while (!se && ls->notifying &&
	       pthread_cond_timedwait(&ls->notify_cond, &ls->lock, &dl) != ETIMEDOUT)
		;
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

	uint64_t now = dx_now_ns();
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
	now = dx_now_ns();
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
		      (ls_allowed(ls, uid, gid, NULL, 0) ? UDAX_HELLO_ALLOWED : 0);
	hello.ino = ino;
	memcpy(hello.ticket, t.key, sizeof(t.key));
	snprintf(hello.sock, sizeof(hello.sock), "%s", ls->sock_name);
	hello.media_kind = (uint32_t)dx_media_kind(ls->media);
	hello.pinnable = dx_media_pinnable(ls->media) ||
			 dx_media_kind(ls->media) == UDAX_MEDIA_DEVDAX;
	hello.dev_size = dx_media_size(ls->media);
	hello.dev_align = dx_media_align(ls->media);
	memcpy(out, &hello, sizeof(hello));
	return (int)sizeof(hello);
}

/* What start set up before the threads: descriptors, lock, break records. */
static void service_free(struct layout_service *ls)
{
	if (ls->epfd >= 0)
		close(ls->epfd);
	if (ls->efd >= 0)
		close(ls->efd);
	if (ls->lsock >= 0)
		close(ls->lsock);
	if (ls->dev_ro >= 0)
		close(ls->dev_ro);
	pthread_cond_destroy(&ls->inval_cond);
	pthread_cond_destroy(&ls->notify_cond);
	pthread_mutex_destroy(&ls->chain_lock);
	pthread_mutex_destroy(&ls->lock);
	free(ls->breaks);
	ls_ctab_fini(ls);
	free(ls);
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
	err = ls_parse_allow(ls, o ? o->dax_allow : NULL, o ? o->owner_uid : 0);
	if (err)
		goto fail_free;
	pthread_mutex_init(&ls->lock, NULL);
	pthread_cond_init(&ls->inval_cond, NULL);
	pthread_cond_init(&ls->notify_cond, NULL);
	pthread_mutex_init(&ls->chain_lock, NULL);
	ls->breaks = calloc(UDAX_BREAKS_MAX, sizeof(*ls->breaks));	/* NULL: -ENOSYS */
	ls_ctab_init(ls);	/* fails: no flags, clients look after every direct write */

	ls->dev_rw = dx_media_fd(ls->media);
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
		dx_seterr("layout socket %s: %s", ls->sock_name, strerror(errno));
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

	err = -pthread_create(&ls->inval_thread, NULL, ls_inval_main, ls);
	if (err)
		goto fail_fds;
	err = -pthread_create(&ls->ev_thread, NULL, ls_event_main, ls);
	if (err)
		goto fail_inval;
	atomic_store(&ls_current, ls);
	*out = ls;
	return 0;

fail_inval:
	pthread_mutex_lock(&ls->lock);
	ls->stopping = true;
	pthread_cond_signal(&ls->inval_cond);
	pthread_mutex_unlock(&ls->lock);
	pthread_join(ls->inval_thread, NULL);
fail_fds:
	service_free(ls);
	return err;
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
	ls_wake(ls);
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
	atomic_store(&ls_current, NULL);
	struct lclient *cl = ls->clients;
	while (cl) {
		struct lclient *next = cl->next;
		struct lmap *lm = cl->maps;
		while (lm) {
			struct lmap *ln = lm->next;
			if (lm->mapped && lm->state == LM_ACTIVE)
				ls_put_segs(lm, UDAX_REF_MAP, 1);
			/*
			 * A dead client's pins end as everywhere else: only
			 * once the ring we hold shows them gone (its ring may
			 * live on in another process).  What cannot be
			 * verified keeps its references: unmount reports busy.
			 */
			for (struct lpin *p = lm->pinlist, *pn; cl->exited && p; p = pn) {
				pn = p->next;
				if (lm->state == LM_ACTIVE)
					ls_pin_revoke_verify(ls, lm, p);
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
		ls_outbufs_free(cl->out_head);
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
	service_free(ls);
}
