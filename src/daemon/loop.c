/* SPDX-License-Identifier: MIT */
/*
 * loop.c - the request loop: one hot reader, more only when one blocks.
 *
 * Why not fuse_session_loop_mt(): every idle libfuse worker sleeps on the
 * same kernel wait queue, which wakes the one that has slept longest, so a
 * synchronous stream of requests (psync I/O, a metadata loop) rotates
 * through all of them, each cold and often on the requester's CPU.
 * Measured here on 2 vCPUs: 4 KiB writes at 11-13k/s with libfuse's
 * loop against 40-53k/s with a single thread.  A single thread, though,
 * would stall the whole mount while one request sleeps (a truncate
 * waiting in break_layouts for DMA to drain, or any request queued behind
 * it on the inode's lock), and nobody would read the FUSE_INTERRUPT that
 * should end the wait.
 *
 * So: exactly one thread reads and serves requests inline.  A watchdog
 * looks every UDAXD_STUCK_NS; when the reader has been inside one request
 * for longer, another thread (an idle spare, or a new one, up to
 * max_threads) becomes the reader, and the stuck one becomes a spare when
 * its request ends.  Quick requests never pay a hand-off; a blocked one
 * delays the others by at most two watchdog periods.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "core/util.h"

#define UDAXD_STUCK_NS (2 * 1000 * 1000ULL)	/* 2 ms */

struct worker {
	struct loop *l;
	pthread_t thread;
	uint64_t busy_since;		/* ns, 0 = not in a request.  Atomic. */
	bool reader;			/* under l->lock */
	struct worker *next;		/* all workers, under l->lock */
};

struct loop {
	struct fuse_session *se;
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* spares wait here to become the reader */
	struct worker *workers;		/* under lock */
	struct worker *reader;		/* the one reading now, under lock */
	unsigned int nworkers, max_workers;	/* under lock */
	int error;			/* first receive error (negative), under lock */
	bool exit;			/* under lock */
};

static void *worker_main(void *arg);

/* Context: l->lock held.  Return: 0 or -errno. */
static int start_worker(struct loop *l, bool reader)
{
	struct worker *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	int rc;

	if (!w)
		return -ENOMEM;
	w->l = l;
	w->reader = reader;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1024 * 1024);
	rc = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (rc) {
		free(w);
		return -rc;
	}
	w->next = l->workers;
	l->workers = w;
	l->nworkers++;
	if (reader)
		l->reader = w;
	return 0;
}

/* Make some thread other than @stuck the reader.  Context: l->lock held. */
static void promote(struct loop *l, struct worker *stuck)
{
	struct worker *w;

	stuck->reader = false;
	for (w = l->workers; w; w = w->next) {
		if (w != stuck && !w->reader &&
		    __atomic_load_n(&w->busy_since, __ATOMIC_ACQUIRE) == 0) {
			w->reader = true;
			l->reader = w;
			pthread_cond_broadcast(&l->wake);
			return;
		}
	}
	if (l->nworkers < l->max_workers && start_worker(l, true) == 0)
		return;
	/* at the limit: the stuck one stays the reader */
	stuck->reader = true;
	l->reader = stuck;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop *l = w->l;
	struct fuse_buf fbuf;
	int res;

	memset(&fbuf, 0, sizeof(fbuf));
	for (;;) {
		pthread_mutex_lock(&l->lock);
		while (!w->reader && !l->exit)
			pthread_cond_wait(&l->wake, &l->lock);
		pthread_mutex_unlock(&l->lock);
		if (l->exit || fuse_session_exited(l->se))
			break;

		res = fuse_session_receive_buf(l->se, &fbuf);
		if (res == -EINTR)
			continue;
		if (res <= 0) {
			pthread_mutex_lock(&l->lock);
			if (res < 0 && res != -ENODEV && !l->error)
				l->error = res;
			l->exit = true;
			pthread_cond_broadcast(&l->wake);
			pthread_mutex_unlock(&l->lock);
			fuse_session_exit(l->se);
			break;
		}
		__atomic_store_n(&w->busy_since, dx_now_ns(), __ATOMIC_RELEASE);
		fuse_session_process_buf(l->se, &fbuf);
		__atomic_store_n(&w->busy_since, 0, __ATOMIC_RELEASE);
	}
	free(fbuf.mem);
	return NULL;
}

/*
 * udaxd_loop() - serve the session until it is unmounted or told to exit.
 * @max_threads: at most this many threads (0: 64).
 * Return: 0, or -errno from the channel.
 */
int udaxd_loop(struct fuse_session *se, unsigned int max_threads)
{
	struct timespec ts;
	struct worker *w, *next;
	struct loop l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.se = se;
	l.max_workers = max_threads ? max_threads : 64;
	pthread_mutex_init(&l.lock, NULL);
	pthread_cond_init(&l.wake, NULL);

	pthread_mutex_lock(&l.lock);
	rc = start_worker(&l, true);
	/* the watchdog */
	while (!rc && !l.exit) {
		struct worker *r = l.reader;
		uint64_t since = r ? __atomic_load_n(&r->busy_since, __ATOMIC_ACQUIRE) : 0;

		if (since && dx_now_ns() - since > UDAXD_STUCK_NS)
			promote(&l, r);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)UDAXD_STUCK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&l.wake, &l.lock, &ts);
		if (fuse_session_exited(se))
			l.exit = true;
	}
	l.exit = true;
	pthread_cond_broadcast(&l.wake);
	pthread_mutex_unlock(&l.lock);

	/*
	 * A reader blocked in read() on /dev/fuse wakes when the kernel
	 * connection goes (unmount) or on a signal (fuse_set_signal_handlers
	 * interrupts only the main thread): make sure each one leaves.
	 */
	for (w = l.workers; w; w = next) {
		next = w->next;
		for (;;) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000 * 1000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_timedjoin_np(w->thread, NULL, &ts) != ETIMEDOUT)
				break;
			pthread_kill(w->thread, SIGHUP);	/* out of read() */
		}
		free(w);
	}
	pthread_cond_destroy(&l.wake);
	pthread_mutex_destroy(&l.lock);
	if (rc)
		return rc;
	return l.error;
}
