/* SPDX-License-Identifier: MIT */
/*
 * fuse_uring.c - FUSE over io_uring (-o io_uring): requests and replies
 * travel through io_uring commands on per-CPU queues instead of a read(2)
 * and a write(2) on /dev/fuse each.
 *
 * The kernel side (fs/fuse/dev_uring.c, since 6.14, off unless the fuse
 * module parameter enable_uring is set): after INIT was answered with
 * FUSE_OVER_IO_URING, the daemon registers "entries" - a header buffer and
 * a payload buffer each - on one queue per possible CPU.  Once every queue
 * holds an entry, the kernel sends each request to the queue of the CPU its
 * caller runs on: the request header lands in the entry's header, the
 * opcode's fixed argument in header->op_in, the rest in the payload, and
 * the REGISTER (or the last COMMIT_AND_FETCH) command of that entry
 * completes.  The daemon writes the reply header into the same header and
 * the reply arguments into the payload, and one COMMIT_AND_FETCH both
 * delivers the reply and offers the entry for the next request: one system
 * call per request, which also waits for the next completion.
 *
 * FORGETs, INTERRUPTs and notifications (inval_inode, ...) keep travelling
 * over /dev/fuse, which the usual loop keeps serving; so do the requests
 * sent before every queue was registered, and everything if the kernel
 * refuses the registration.
 *
 * Dispatch: libfuse 3.14 knows nothing of io_uring, but its
 * fuse_session_process_buf() takes any buffer holding a request as
 * /dev/fuse would deliver it.  Each payload buffer has a gap in front of
 * it; the request header and the op_in argument are copied into that gap
 * so that header, argument and payload are contiguous: a WRITE's data is
 * never copied.  libfuse replies through the session's custom I/O
 * (kio.c), which hands every reply whose request came from a ring entry
 * to udaxd_uring_reply().
 *
 * Threads: like loop.c, per queue exactly one thread waits for completions
 * and serves requests inline; a watchdog promotes another thread when the
 * serving one has been inside one request for longer than 2 ms (a truncate
 * waiting for DMA must not hold up the queue): pool.c.  The serving thread
 * leaves its commit queued and submits it with its next wait, in the same
 * system call.
 *
 * A rule the kernel imposes: the kernel copies the next request into an
 * entry from the task that submitted the entry's last command, which must
 * never sleep uninterruptibly for long (fuse_uring_notify.c).
 *
 * The pieces (fuse_uring_int.h): this file negotiates, creates the queues
 * and their threads, and stops them; fuse_uring_cmd.c drives each queue's
 * io_uring; fuse_uring_queue.c is the request loop (from a queue's entries
 * to libfuse), fuse_uring_reply.c the reply, fuse_uring_notify.c the
 * notifications.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuse_uring_int.h"
#include "core/util.h"

/* Number of possible CPUs: the kernel makes one queue for each. */
static unsigned int possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	unsigned int max = 0, a, b;
	int c;

	if (!f)
		return (unsigned int)sysconf(_SC_NPROCESSORS_CONF);
	for (;;) {
		if (fscanf(f, "%u", &a) != 1)
			break;
		b = a;
		c = fgetc(f);
		if (c == '-') {
			if (fscanf(f, "%u", &b) != 1)
				break;
			c = fgetc(f);
		}
		if (b + 1 > max)
			max = b + 1;
		if (c != ',')
			break;
	}
	fclose(f);
	return max ? max : 1;
}

/*
 * udaxd_uring_param() - what the fuse module parameter says.
 * Return: 1 (Y), 0 (N), -ENOENT (this kernel has no FUSE over io_uring).
 */
int udaxd_uring_param(void)
{
	char c = 0;
	int fd = open(UDAXD_URING_PARAM, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -ENOENT;
	if (read(fd, &c, 1) != 1)
		c = 'N';
	close(fd);
	return c == 'Y' || c == 'y' || c == '1';
}

/*
 * udaxd_uring_prepare() - create the rings before INIT is answered, so
 * that the daemon offers io_uring only when it can serve it (once the
 * kernel accepted the INIT flag, requests wait for the queues).
 * Context: start-up, after the mount.  Return: 0 or -errno (transport off).
 */
int udaxd_uring_prepare(struct udaxd *d)
{
	struct udaxd_uring *u;
	unsigned int i, entries = 8;
	cpu_set_t allowed;
	int rc;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->d = d;
	u->dev_fd = fuse_session_fd(d->se);
	u->qdepth = d->opts->uring_qdepth ? d->opts->uring_qdepth : UDAXD_URING_QDEPTH;
	u->nq = possible_cpus();
	u->max_workers = d->opts->max_threads ? d->opts->max_threads : 16;
	pthread_mutex_init(&u->nlock, NULL);
	pthread_cond_init(&u->ncond, NULL);
	while (entries < 2 * u->qdepth + 4)
		entries *= 2;
	u->qs = calloc(u->nq, sizeof(*u->qs));
	if (!u->qs) {
		free(u);
		return -ENOMEM;
	}
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		CPU_ZERO(&allowed);
	for (i = 0; i < u->nq; i++) {
		struct ufu_queue *q = &u->qs[i];

		q->u = u;
		q->qid = i;
		q->ring_fd = -1;
		q->cpu = CPU_ISSET(i, &allowed) ? (int)i : -1;
		pthread_mutex_init(&q->sq_lock, NULL);
		/* queue threads leave signals to the main thread (fuse_set_signal_handlers) */
		udaxd_pool_init(&q->pool, u->max_workers, ufu_worker_main, q, true);
	}
	d->uring = u;
	for (i = 0; i < u->nq; i++) {
		rc = ufu_ring_setup(&u->qs[i], entries);
		if (rc) {
			udaxd_uring_stop(d);
			return rc;
		}
	}
	return 0;
}

/*
 * udaxd_uring_init_reply() - the INIT reply is about to be written: say
 * whether to add FUSE_OVER_IO_URING.  @offered: the kernel offered it.
 * Return: true to add the flag.
 */
bool udaxd_uring_init_reply(struct udaxd *d, bool offered)
{
	if (!d->uring)
		return false;
	if (!offered) {
		log_msg(d->uring, FUSE_LOG_WARNING,
			"io_uring: the kernel did not offer FUSE over io_uring at INIT; "
			"serving over /dev/fuse");
		return false;
	}
	return true;
}

/*
 * udaxd_uring_start() - INIT was answered with FUSE_OVER_IO_URING: start
 * one thread per queue, which registers the queue's entries.
 * @max_write, @max_pages: as negotiated (the payload must hold either).
 * Context: the thread that wrote the INIT reply.  Return: 0 or -errno.
 */
int udaxd_uring_start(struct udaxd *d, uint32_t max_write, uint32_t max_pages)
{
	struct udaxd_uring *u = d->uring;
	size_t pl = 8192;
	unsigned int i;
	int rc = 0;

	if (!u)
		return -EINVAL;
	if (max_write > pl)
		pl = max_write;
	if ((size_t)max_pages * 4096 > pl)
		pl = (size_t)max_pages * 4096;
	u->payload_len = UDAX_ALIGN_UP(pl, 4096);
	ufu_notify_start(u);
	for (i = 0; i < u->nq && !rc; i++) {
		struct ufu_queue *q = &u->qs[i];

		pthread_mutex_lock(&q->pool.lock);
		rc = udaxd_pool_add(&q->pool, true, ufu_queue_start_main);
		if (!rc)
			q->started = true;
		pthread_mutex_unlock(&q->pool.lock);
	}
	if (!rc && pthread_create(&u->watchdog, NULL, ufu_watchdog_main, u) == 0)
		u->watchdog_started = true;
	if (rc) {
		/*
		 * A queue without entries keeps the kernel waiting for the
		 * ring forever: make it give up on io_uring (a REGISTER it
		 * refuses turns the transport off) so /dev/fuse serves.
		 */
		for (i = 0; i < u->nq; i++) {
			struct ufu_queue *q = &u->qs[i];

			if (q->ring_fd >= 0) {
				ufu_give_up(q);
				break;
			}
		}
		log_msg(u, FUSE_LOG_ERR, "io_uring: cannot start the queues (%s); serving over /dev/fuse",
			strerror(-rc));
	}
	return rc;
}

/*
 * udaxd_uring_stop() - the session ended: stop every queue thread and
 * close the rings (the kernel ends whatever an entry still held).
 * Context: main thread, after the /dev/fuse loop returned.
 */
void udaxd_uring_stop(struct udaxd *d)
{
	struct udaxd_uring *u = d->uring;
	unsigned int i;

	if (!u)
		return;
	atomic_store(&u->stop, true);
	if (u->watchdog_started)
		pthread_join(u->watchdog, NULL);
	for (i = 0; i < u->nq; i++) {
		struct ufu_queue *q = &u->qs[i];
		struct udaxd_worker *w, *next;

		pthread_mutex_lock(&q->pool.lock);
		__atomic_store_n(&q->pool.exit, true, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&q->pool.wake);
		pthread_mutex_unlock(&q->pool.lock);
		if (q->ring_fd >= 0 && q->started)
			ufu_queue_sqe(q, IORING_OP_NOP, 0, NULL, 0, false);	/* out of the wait */
		for (w = q->pool.workers; w; w = next) {
			next = w->next;
			pthread_join(w->thread, NULL);
			free(w);
		}
		q->pool.workers = NULL;
	}
	ufu_notify_stop(u);
	d->uring = NULL;
	for (i = 0; i < u->nq; i++) {
		struct ufu_queue *q = &u->qs[i];

		ufu_ring_teardown(q);	/* the kernel cancels what the ring still held */
		if (q->bufs)
			munmap(q->bufs, q->buf_len);
		free(q->ents);
		udaxd_pool_destroy(&q->pool);
		pthread_mutex_destroy(&q->sq_lock);
	}
	free(u->qs);
	pthread_cond_destroy(&u->ncond);
	pthread_mutex_destroy(&u->nlock);
	free(u);
}

