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
 * its request ends (pool.c, shared with the io_uring queues).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "pool.h"

struct loop {
	struct fuse_session *se;
	struct udaxd_pool pool;		/* its lock also guards error */
	int error;			/* first receive error (negative), under pool.lock */
};

static void *worker_main(void *arg)
{
	struct udaxd_worker *w = arg;
	struct loop *l = w->pool->owner;
	struct fuse_buf fbuf;
	int res;

	memset(&fbuf, 0, sizeof(fbuf));
	while (udaxd_pool_wait_turn(w) && !fuse_session_exited(l->se)) {
		res = fuse_session_receive_buf(l->se, &fbuf);
		if (res == -EINTR)
			continue;
		if (res <= 0) {
			pthread_mutex_lock(&l->pool.lock);
			if (res < 0 && res != -ENODEV && !l->error)
				l->error = res;
			l->pool.exit = true;
			pthread_cond_broadcast(&l->pool.wake);
			pthread_mutex_unlock(&l->pool.lock);
			fuse_session_exit(l->se);
			break;
		}
		udaxd_worker_process(w, l->se, &fbuf);
	}
	free(fbuf.mem);
	return NULL;
}

/* @ts: @ns from now on CLOCK_REALTIME, for the timed waits below. */
static void deadline(struct timespec *ts, uint64_t ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += (long)ns;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * udaxd_loop() - serve the session until it is unmounted or told to exit.
 * @max_threads: at most this many threads (0: 64).
 * Return: 0, or -errno from the channel.
 */
int udaxd_loop(struct fuse_session *se, unsigned int max_threads)
{
	struct udaxd_worker *w, *next;
	struct timespec ts;
	struct loop l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.se = se;
	/* signals stay deliverable: a reader blocked in read() is kicked out with one */
	udaxd_pool_init(&l.pool, max_threads ? max_threads : 64, worker_main, &l, false);

	pthread_mutex_lock(&l.pool.lock);
	rc = udaxd_pool_add(&l.pool, true, NULL);
	/* the watchdog */
	while (!rc && !l.pool.exit) {
		udaxd_pool_watch(&l.pool);
		deadline(&ts, UDAXD_STUCK_NS);
		pthread_cond_timedwait(&l.pool.wake, &l.pool.lock, &ts);
		if (fuse_session_exited(se))
			l.pool.exit = true;
	}
	l.pool.exit = true;
	pthread_cond_broadcast(&l.pool.wake);
	pthread_mutex_unlock(&l.pool.lock);

	/*
	 * A reader blocked in read() on /dev/fuse wakes when the kernel
	 * connection goes (unmount) or on a signal (fuse_set_signal_handlers
	 * interrupts only the main thread): make sure each one leaves.
	 */
	for (w = l.pool.workers; w; w = next) {
		next = w->next;
		for (;;) {
			deadline(&ts, 50 * 1000 * 1000ULL);
			if (pthread_timedjoin_np(w->thread, NULL, &ts) != ETIMEDOUT)
				break;
			pthread_kill(w->thread, SIGHUP);	/* out of read() */
		}
		free(w);
	}
	udaxd_pool_destroy(&l.pool);
	if (rc)
		return rc;
	return l.error;
}
