/* SPDX-License-Identifier: MIT */
/*
 * fuse_uring_notify.c - notifications written for a thread that serves a
 * FUSE-over-io_uring queue.
 *
 * A rule the kernel imposes: the kernel copies the next request into an
 * entry from the task that submitted the entry's last command (task work).
 * That task must never sleep uninterruptibly for long, or the entry is
 * stuck with a request nobody can serve.  The one such sleep a handler
 * makes is a notification written to /dev/fuse (inval_inode waits for the
 * kernel's page locks and write-back, which may need a WRITE served by
 * this very queue): a helper thread writes it while the handler waits
 * interruptibly.
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "fuse_uring_int.h"

static void *notify_main(void *arg)
{
	struct udaxd_uring *u = arg;

	pthread_mutex_lock(&u->nlock);
	for (;;) {
		while (!u->niov && !u->nexit)
			pthread_cond_wait(&u->ncond, &u->nlock);
		if (u->nexit)
			break;
		pthread_mutex_unlock(&u->nlock);
		{
			ssize_t r = writev(u->dev_fd, u->niov, u->ncount);
			int err = r < 0 ? errno : 0;

			pthread_mutex_lock(&u->nlock);
			u->nres = r;
			u->nerr = err;
		}
		u->niov = NULL;
		u->ndone++;
		pthread_cond_broadcast(&u->ncond);
	}
	pthread_mutex_unlock(&u->nlock);
	return NULL;
}

/* Start the helper; without it, ring threads write their notifications themselves. */
void ufu_notify_start(struct udaxd_uring *u)
{
	if (pthread_create(&u->nthread, NULL, notify_main, u) == 0)
		u->nthread_started = true;
}

/* Stop the helper.  Context: after the queue threads were joined. */
void ufu_notify_stop(struct udaxd_uring *u)
{
	pthread_mutex_lock(&u->nlock);
	u->nexit = true;
	pthread_cond_broadcast(&u->ncond);
	pthread_mutex_unlock(&u->nlock);
	if (u->nthread_started)
		pthread_join(u->nthread, NULL);
}

/*
 * udaxd_uring_notify() - write a notification for a thread that serves a
 * ring queue: a helper writes it, the caller waits interruptibly.
 * Return: writev()'s result (errno set), or -2 when the caller may write
 * it itself (not a ring thread).
 */
ssize_t udaxd_uring_notify(struct udaxd *d, struct iovec *iov, int count)
{
	struct udaxd_uring *u = d->uring;
	uint64_t my;
	ssize_t r;
	int err;

	if (!u || !ufu_cur_q || !u->nthread_started)
		return -2;
	pthread_mutex_lock(&u->nlock);
	while (u->niov && !u->nexit)
		pthread_cond_wait(&u->ncond, &u->nlock);
	if (u->nexit) {
		pthread_mutex_unlock(&u->nlock);
		return -2;
	}
	u->niov = iov;
	u->ncount = count;
	my = ++u->nseq;
	pthread_cond_broadcast(&u->ncond);
	while (u->ndone < my)
		pthread_cond_wait(&u->ncond, &u->nlock);
	r = u->nres;
	err = u->nerr;
	pthread_mutex_unlock(&u->nlock);
	if (r < 0)
		errno = err;
	return r;
}
