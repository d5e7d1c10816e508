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
 * waiting for DMA must not hold up the queue).  Any thread may submit (the
 * submission ring is under q->sq_lock); the serving thread leaves its
 * commit queued and submits it with its next wait, in the same system call.
 *
 * A rule the kernel imposes: the kernel copies the next request into an
 * entry from the task that submitted the entry's last command (task work).
 * That task must never sleep uninterruptibly for long, or the entry is
 * stuck with a request nobody can serve.  The one such sleep a handler
 * makes is a notification written to /dev/fuse (inval_inode waits for the
 * kernel's page locks and write-back, which may need a WRITE served by
 * this very queue): udaxd_uring_notify() has a helper thread write it
 * while the handler waits interruptibly.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include <fuse_log.h>
#include <unistd.h>

#include "daemon.h"
#include "core/util.h"

/*
 * The FUSE-over-io_uring ABI (include/uapi/linux/fuse.h, protocol 7.42),
 * defined here because the installed header may predate it.
 */
#define UFU_OVER_IO_URING_FLAGS2	(1u << (41 - 32))	/* FUSE_OVER_IO_URING in flags2 */
#define UFU_INIT_EXT			(1u << 30)		/* FUSE_INIT_EXT */
#define UFU_MAX_PAGES			(1u << 22)		/* FUSE_MAX_PAGES */
#define UFU_CMD_REGISTER		1u
#define UFU_CMD_COMMIT_AND_FETCH	2u
#define UFU_HEADER_SZ			128
#define UFU_OP_IN_SZ			128

struct ufu_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;		/* the request's unique */
	uint32_t payload_sz;		/* bytes valid in the payload */
	uint32_t padding;
	uint64_t reserved;
};

struct ufu_req_header {
	char in_out[UFU_HEADER_SZ];	/* fuse_in_header / fuse_out_header */
	char op_in[UFU_OP_IN_SZ];	/* the opcode's fixed argument */
	struct ufu_ent_in_out ring_ent_in_out;
};

struct ufu_cmd_req {			/* in the SQE's 80-byte command area */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

#define UFU_STUCK_NS	(2 * 1000 * 1000ULL)	/* as loop.c */
#define UFU_GAP		4096			/* room for header + op_in before the payload */
#define UFU_WAKE	0			/* user_data of a NOP: wake a waiter */

_Static_assert(sizeof(struct ufu_ent_in_out) == 32, "fuse_uring_ent_in_out");
_Static_assert(sizeof(struct ufu_cmd_req) == 24, "fuse_uring_cmd_req");

struct ufu_queue;

struct ufu_ent {
	struct ufu_queue *q;
	struct ufu_req_header *hdr;	/* iov[0] */
	char *payload;			/* iov[1]; UFU_GAP bytes before it are ours */
	struct iovec iov[2];		/* what REGISTER names; read by the kernel at submit */
	uint64_t unique;		/* request being served, 0 none.  Atomic. */
	bool live;			/* the kernel holds it or we serve it; q->lock */
};

struct ufu_worker {
	struct ufu_queue *q;
	pthread_t thread;
	uint64_t busy_since;		/* ns, 0 = not in a request.  Atomic. */
	bool reader;			/* under q->lock */
	struct ufu_worker *next;	/* under q->lock */
};

struct ufu_queue {
	struct udaxd_uring *u;
	unsigned int qid;
	int ring_fd;
	void *sq_map, *cq_map, *sqe_map;
	size_t sq_map_len, cq_map_len, sqe_map_len;
	/* submission ring, under sq_lock */
	pthread_mutex_t sq_lock;
	unsigned int *sq_khead, *sq_ktail, *sq_array, sq_mask, sq_entries;
	unsigned int sq_tail;		/* local tail, under sq_lock */
	unsigned int sq_pending;	/* published, not yet claimed by an enter; sq_lock */
	struct io_uring_sqe *sqes;	/* 128-byte entries */
	/* completion ring: only the reader touches the head */
	unsigned int *cq_khead, *cq_ktail, cq_mask;
	struct io_uring_cqe *cqes;
	/* entries */
	struct ufu_ent *ents;
	char *bufs;			/* every entry's gap and payload */
	size_t buf_len;
	/* threads, under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct ufu_worker *workers, *reader;
	unsigned int nworkers;
	unsigned int nlive;		/* entries still live; lock */
	bool exit;			/* lock */
	bool started;			/* threads started (const after start) */
	int cpu;			/* pinned to this CPU, or -1 */
	struct ufu_ent refused;		/* a REGISTER the kernel must refuse (give_up) */
};

struct udaxd_uring {
	struct udaxd *d;
	int dev_fd;			/* the session's /dev/fuse */
	unsigned int nq, qdepth, max_workers;
	size_t payload_len;
	struct ufu_queue *qs;
	/* registration outcome */
	atomic_int reg_error;		/* first REGISTER error (negative) */
	atomic_bool announced;
	/* the watchdog */
	pthread_t watchdog;
	bool watchdog_started;
	atomic_bool stop;
	/* notifications handed to the helper (see the file comment) */
	pthread_mutex_t nlock;
	pthread_cond_t ncond;
	pthread_t nthread;
	bool nthread_started, nexit;	/* nlock */
	struct iovec *niov;		/* the one being written, nlock */
	int ncount;
	ssize_t nres;
	int nerr;
	uint64_t nseq, ndone;		/* nlock */
};

/* The entry this thread serves inline, and its queue (while serving). */
static __thread struct ufu_ent *cur_ent;
static __thread struct ufu_queue *cur_q;

static int sys_io_uring_setup(unsigned int entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_io_uring_enter(int fd, unsigned int to_submit, unsigned int min_complete,
			      unsigned int flags)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

/* Through libfuse's log: stderr before the daemon detaches, syslog after. */
#define log_msg(u, level, fmt, ...) \
	((void)(u), fuse_log(level, "udaxfs: " fmt "\n", ##__VA_ARGS__))

/* ---- the rings ---- */

static int ring_setup(struct ufu_queue *q, unsigned int entries)
{
	struct io_uring_params p;
	int fd;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQE128;
	fd = sys_io_uring_setup(entries, &p);
	if (fd < 0)
		return -errno;
	q->ring_fd = fd;
	q->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	q->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (q->cq_map_len > q->sq_map_len)
			q->sq_map_len = q->cq_map_len;
		q->cq_map_len = q->sq_map_len;
	}
	q->sq_map = mmap(NULL, q->sq_map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	if (q->sq_map == MAP_FAILED) {
		q->sq_map = NULL;
		return -errno;
	}
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		q->cq_map = q->sq_map;
	} else {
		q->cq_map = mmap(NULL, q->cq_map_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
		if (q->cq_map == MAP_FAILED) {
			q->cq_map = NULL;
			return -errno;
		}
	}
	q->sqe_map_len = p.sq_entries * 2 * sizeof(struct io_uring_sqe);	/* SQE128 */
	q->sqe_map = mmap(NULL, q->sqe_map_len, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (q->sqe_map == MAP_FAILED) {
		q->sqe_map = NULL;
		return -errno;
	}
	q->sq_khead = (unsigned int *)((char *)q->sq_map + p.sq_off.head);
	q->sq_ktail = (unsigned int *)((char *)q->sq_map + p.sq_off.tail);
	q->sq_mask = *(unsigned int *)((char *)q->sq_map + p.sq_off.ring_mask);
	q->sq_entries = p.sq_entries;
	q->sq_array = (unsigned int *)((char *)q->sq_map + p.sq_off.array);
	q->sqes = q->sqe_map;
	q->sq_tail = *q->sq_ktail;
	q->cq_khead = (unsigned int *)((char *)q->cq_map + p.cq_off.head);
	q->cq_ktail = (unsigned int *)((char *)q->cq_map + p.cq_off.tail);
	q->cq_mask = *(unsigned int *)((char *)q->cq_map + p.cq_off.ring_mask);
	q->cqes = (struct io_uring_cqe *)((char *)q->cq_map + p.cq_off.cqes);
	return 0;
}

static void ring_teardown(struct ufu_queue *q)
{
	if (q->sqe_map)
		munmap(q->sqe_map, q->sqe_map_len);
	if (q->cq_map && q->cq_map != q->sq_map)
		munmap(q->cq_map, q->cq_map_len);
	if (q->sq_map)
		munmap(q->sq_map, q->sq_map_len);
	q->sqe_map = q->cq_map = q->sq_map = NULL;
	if (q->ring_fd >= 0)
		close(q->ring_fd);
	q->ring_fd = -1;
}

/*
 * Submit @n claimed entries.  Return: 0, or -errno (the unsubmitted rest
 * is given back to sq_pending for the next caller).
 */
static int submit_claimed(struct ufu_queue *q, unsigned int n, unsigned int wait)
{
	int rc;

	for (;;) {
		rc = sys_io_uring_enter(q->ring_fd, n, wait, wait ? IORING_ENTER_GETEVENTS : 0);
		if (rc >= 0)
			break;
		if (errno == EINTR)
			continue;
		rc = -errno;
		if (rc == -EAGAIN || rc == -EBUSY) {
			/* completions must be reaped first: the reader will */
			pthread_mutex_lock(&q->sq_lock);
			q->sq_pending += n;
			pthread_mutex_unlock(&q->sq_lock);
			return rc;
		}
		return rc;
	}
	if ((unsigned int)rc < n) {
		pthread_mutex_lock(&q->sq_lock);
		q->sq_pending += n - (unsigned int)rc;
		pthread_mutex_unlock(&q->sq_lock);
	}
	return 0;
}

/*
 * Queue one SQE.  @inline_commit: the caller is the thread that reaps this
 * queue and will submit with its next wait; otherwise submit now.
 * Return: 0 or -errno.
 */
static int queue_sqe(struct ufu_queue *q, uint8_t opcode, uint32_t cmd_op,
		     struct ufu_ent *e, uint64_t commit_id, bool inline_commit)
{
	struct io_uring_sqe *sqe;
	struct ufu_cmd_req *cr;
	unsigned int idx, n = 0;

	pthread_mutex_lock(&q->sq_lock);
	while (q->sq_tail - __atomic_load_n(q->sq_khead, __ATOMIC_ACQUIRE) >= q->sq_entries) {
		/* full: cannot happen with one command per entry, but never overwrite */
		unsigned int k = q->sq_pending;

		q->sq_pending = 0;
		pthread_mutex_unlock(&q->sq_lock);
		if (k)
			submit_claimed(q, k, 0);
		else
			sched_yield();
		pthread_mutex_lock(&q->sq_lock);
	}
	idx = q->sq_tail & q->sq_mask;
	sqe = &q->sqes[idx * 2];
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = opcode;
	if (opcode == IORING_OP_URING_CMD) {
		sqe->fd = q->u->dev_fd;
		sqe->cmd_op = cmd_op;
		sqe->user_data = (uint64_t)(uintptr_t)e;
		if (cmd_op == UFU_CMD_REGISTER) {
			sqe->addr = (uint64_t)(uintptr_t)e->iov;
			sqe->len = 2;
		}
		cr = (struct ufu_cmd_req *)sqe->cmd;
		cr->commit_id = commit_id;
		cr->qid = (uint16_t)q->qid;
	} else {
		sqe->fd = -1;
		sqe->user_data = UFU_WAKE;
	}
	q->sq_array[idx] = idx;
	q->sq_tail++;
	__atomic_store_n(q->sq_ktail, q->sq_tail, __ATOMIC_RELEASE);
	q->sq_pending++;
	if (!inline_commit) {
		n = q->sq_pending;
		q->sq_pending = 0;
	}
	pthread_mutex_unlock(&q->sq_lock);
	return n ? submit_claimed(q, n, 0) : 0;
}

/* Submit what this queue has pending.  Return: 0 or -errno. */
static int flush_pending(struct ufu_queue *q)
{
	unsigned int n;

	pthread_mutex_lock(&q->sq_lock);
	n = q->sq_pending;
	q->sq_pending = 0;
	pthread_mutex_unlock(&q->sq_lock);
	return n ? submit_claimed(q, n, 0) : 0;
}

/*
 * Next completion of @q, submitting pending commands on the way (one
 * system call for both).  Context: the queue's reader.
 * Return: true with *@out filled, false when told to exit.
 */
static bool next_cqe(struct ufu_queue *q, struct io_uring_cqe *out)
{
	for (;;) {
		unsigned int head = *q->cq_khead;
		unsigned int tail = __atomic_load_n(q->cq_ktail, __ATOMIC_ACQUIRE);
		unsigned int n;

		pthread_mutex_lock(&q->sq_lock);
		n = q->sq_pending;
		q->sq_pending = 0;
		pthread_mutex_unlock(&q->sq_lock);
		if (head != tail) {
			*out = q->cqes[head & q->cq_mask];
			__atomic_store_n(q->cq_khead, head + 1, __ATOMIC_RELEASE);
			if (n)
				submit_claimed(q, n, 0);
			return true;
		}
		if (__atomic_load_n(&q->exit, __ATOMIC_ACQUIRE)) {
			if (n)
				submit_claimed(q, n, 0);
			return false;
		}
		if (submit_claimed(q, n, 1) < 0)
			sched_yield();
	}
}

/* ---- serving ---- */

/* An entry is gone (torn down by the kernel, or refused). */
static void ent_dead(struct ufu_ent *e, int res)
{
	struct ufu_queue *q = e->q;
	struct udaxd_uring *u = q->u;

	pthread_mutex_lock(&q->lock);
	if (e->live) {
		e->live = false;
		q->nlive--;
	}
	pthread_mutex_unlock(&q->lock);
	if (res != -ENOTCONN && res != -ECANCELED && e != &q->refused) {
		int zero = 0;

		if (atomic_compare_exchange_strong(&u->reg_error, &zero, res))
			log_msg(u, FUSE_LOG_WARNING,
				"io_uring: the kernel refused a queue entry (%s); "
				"serving over /dev/fuse", strerror(-res));
	}
}

/*
 * give_up() - make the kernel drop io_uring for this connection: once INIT
 * said yes, requests wait until every queue holds an entry, so a queue we
 * cannot fill must not stay silent.  A REGISTER the kernel refuses (an
 * empty header buffer) turns the transport off; /dev/fuse then serves.
 */
static void give_up(struct ufu_queue *q)
{
	memset(&q->refused, 0, sizeof(q->refused));
	q->refused.q = q;
	queue_sqe(q, IORING_OP_URING_CMD, UFU_CMD_REGISTER, &q->refused, 0, false);
}

/* Rebuild the request as /dev/fuse delivers it and let libfuse dispatch it. */
static void serve_ent(struct ufu_worker *w, struct ufu_ent *e)
{
	struct udaxd_uring *u = e->q->u;
	struct ufu_req_header *h = e->hdr;
	struct fuse_in_header in;
	struct fuse_buf fbuf;
	size_t psz, opsz;
	char *start;

	memcpy(&in, h->in_out, sizeof(in));
	psz = h->ring_ent_in_out.payload_sz;
	if (in.len < sizeof(in) + psz || in.len - sizeof(in) - psz > UFU_OP_IN_SZ ||
	    psz > u->payload_len || in.unique == 0) {
		/* the kernel broke its own format: answer EIO rather than guess */
		struct fuse_out_header oh = { .len = sizeof(oh), .error = -EIO,
					      .unique = in.unique };

		log_msg(u, FUSE_LOG_ERR, "io_uring: malformed request (opcode %u, len %u, payload %zu)",
			in.opcode, in.len, psz);
		memcpy(h->in_out, &oh, sizeof(oh));
		h->ring_ent_in_out.payload_sz = 0;
		queue_sqe(e->q, IORING_OP_URING_CMD, UFU_CMD_COMMIT_AND_FETCH, e, in.unique, true);
		return;
	}
	opsz = in.len - sizeof(in) - psz;
	start = e->payload - opsz - sizeof(in);
	memcpy(start + sizeof(in), h->op_in, opsz);
	memcpy(start, &in, sizeof(in));

	memset(&fbuf, 0, sizeof(fbuf));
	fbuf.mem = start;
	fbuf.size = in.len;
	__atomic_store_n(&e->unique, in.unique, __ATOMIC_RELEASE);
	cur_ent = e;
	cur_q = e->q;
	udaxd_kio_note(u->d, start, in.len);
	__atomic_store_n(&w->busy_since, dx_now_ns(), __ATOMIC_RELEASE);
	fuse_session_process_buf(u->d->se, &fbuf);
	__atomic_store_n(&w->busy_since, 0, __ATOMIC_RELEASE);
	cur_ent = NULL;
	cur_q = NULL;
	if (in.opcode == FUSE_NOTIFY_REPLY &&
	    __atomic_load_n(&e->unique, __ATOMIC_ACQUIRE) == in.unique) {
		/* libfuse never answers a retrieve reply: give the entry back */
		struct fuse_out_header oh = { .len = sizeof(oh), .unique = in.unique };
		struct iovec iov = { &oh, sizeof(oh) };

		udaxd_uring_reply(u->d, &iov, 1);
	}
}

static void *worker_main(void *arg);

/* Context: q->lock held.  Return: 0 or -errno. */
static int start_worker(struct ufu_queue *q, bool reader)
{
	struct ufu_worker *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	if (!w)
		return -ENOMEM;
	w->q = q;
	w->reader = reader;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1024 * 1024);
	/* signals stay with the main thread (fuse_set_signal_handlers) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc) {
		free(w);
		return -rc;
	}
	w->next = q->workers;
	q->workers = w;
	q->nworkers++;
	if (reader)
		q->reader = w;
	return 0;
}

/* Make a thread other than @stuck the reader.  Context: q->lock held. */
static void promote(struct ufu_queue *q, struct ufu_worker *stuck)
{
	struct ufu_worker *w;

	stuck->reader = false;
	for (w = q->workers; w; w = w->next) {
		if (w != stuck && !w->reader &&
		    __atomic_load_n(&w->busy_since, __ATOMIC_ACQUIRE) == 0) {
			w->reader = true;
			q->reader = w;
			pthread_cond_broadcast(&q->wake);
			return;
		}
	}
	if (q->nworkers < q->u->max_workers && start_worker(q, true) == 0)
		return;
	stuck->reader = true;
	q->reader = stuck;
}

static void pin_to_cpu(struct ufu_queue *q)
{
	cpu_set_t set;

	if (q->cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(q->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Register every entry of the queue; the first thread of a queue does it. */
static void register_entries(struct ufu_queue *q)
{
	struct udaxd_uring *u = q->u;
	unsigned int i;

	for (i = 0; i < u->qdepth; i++) {
		struct ufu_ent *e = &q->ents[i];

		pthread_mutex_lock(&q->lock);
		e->live = true;
		q->nlive++;
		pthread_mutex_unlock(&q->lock);
		/* the first command of each entry must come from a thread that stays */
		if (queue_sqe(q, IORING_OP_URING_CMD, UFU_CMD_REGISTER, e, 0, true))
			ent_dead(e, -EIO);
	}
}

static void *worker_main(void *arg)
{
	struct ufu_worker *w = arg;
	struct ufu_queue *q = w->q;
	struct udaxd_uring *u = q->u;
	struct io_uring_cqe cqe;

	pin_to_cpu(q);
	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (!w->reader && !q->exit)
			pthread_cond_wait(&q->wake, &q->lock);
		pthread_mutex_unlock(&q->lock);
		if (__atomic_load_n(&q->exit, __ATOMIC_ACQUIRE))
			break;
		if (!next_cqe(q, &cqe))
			break;
		if (cqe.user_data == UFU_WAKE)
			continue;
		if (cqe.res < 0) {
			ent_dead((struct ufu_ent *)(uintptr_t)cqe.user_data, cqe.res);
			continue;
		}
		{
			struct ufu_ent *e = (struct ufu_ent *)(uintptr_t)cqe.user_data;

			if (!atomic_exchange(&u->announced, true))
				log_msg(u, FUSE_LOG_INFO, "serving FUSE requests over io_uring (%u queues of %u)",
					u->nq, u->qdepth);
			serve_ent(w, e);
		}
		/*
		 * Still the reader: the commit goes with the next wait.
		 * Promoted away meanwhile: submit it now, then rest.
		 */
		pthread_mutex_lock(&q->lock);
		if (!w->reader) {
			pthread_mutex_unlock(&q->lock);
			flush_pending(q);
			continue;
		}
		pthread_mutex_unlock(&q->lock);
	}
	flush_pending(q);
	return NULL;
}

static void *watchdog_main(void *arg)
{
	struct udaxd_uring *u = arg;
	struct timespec ts = { 0, (long)UFU_STUCK_NS };
	unsigned int i;

	while (!atomic_load(&u->stop)) {
		nanosleep(&ts, NULL);
		for (i = 0; i < u->nq; i++) {
			struct ufu_queue *q = &u->qs[i];
			struct ufu_worker *r;
			uint64_t since;

			if (!q->started)
				continue;
			pthread_mutex_lock(&q->lock);
			r = q->reader;
			since = r ? __atomic_load_n(&r->busy_since, __ATOMIC_ACQUIRE) : 0;
			if (!q->exit && since && dx_now_ns() - since > UFU_STUCK_NS)
				promote(q, r);
			pthread_mutex_unlock(&q->lock);
		}
	}
	return NULL;
}

/* ---- notifications from a ring thread (see the file comment) ---- */

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

	if (!u || !cur_q || !u->nthread_started)
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

/* ---- replies ---- */

static struct ufu_ent *find_ent(struct udaxd_uring *u, uint64_t unique)
{
	unsigned int i, j;

	for (i = 0; i < u->nq; i++) {
		struct ufu_queue *q = &u->qs[i];

		if (!q->ents)
			continue;
		for (j = 0; j < u->qdepth; j++)
			if (__atomic_load_n(&q->ents[j].unique, __ATOMIC_ACQUIRE) == unique)
				return &q->ents[j];
	}
	return NULL;
}

/*
 * udaxd_uring_reply() - send a reply libfuse wrote, if its request came
 * from a ring entry.
 * Return: the bytes "written" (the reply's length), or -2 when the request
 * did not come from a ring (the caller writes it to /dev/fuse).
 */
ssize_t udaxd_uring_reply(struct udaxd *d, struct iovec *iov, int count)
{
	struct udaxd_uring *u = d->uring;
	struct fuse_out_header oh;
	struct ufu_ent *e;
	size_t total = 0, off = 0;
	bool inline_commit;
	int i;

	if (!u || count < 1 || iov[0].iov_len < sizeof(oh))
		return -2;
	memcpy(&oh, iov[0].iov_base, sizeof(oh));
	if (oh.unique == 0)
		return -2;	/* a notification */
	e = cur_ent;
	if (!e || __atomic_load_n(&e->unique, __ATOMIC_ACQUIRE) != oh.unique)
		e = find_ent(u, oh.unique);
	if (!e)
		return -2;
	for (i = 0; i < count; i++)
		total += iov[i].iov_len;
	for (i = 1; i < count; i++) {
		if (off + iov[i].iov_len > u->payload_len) {
			oh.error = -EIO;	/* cannot happen: replies fit max_write */
			off = 0;
			break;
		}
		if (iov[i].iov_base != e->payload + off)
			memcpy(e->payload + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	if (oh.error)
		off = 0;
	oh.len = (uint32_t)(sizeof(oh) + off);
	memcpy(e->hdr->in_out, &oh, sizeof(oh));
	e->hdr->ring_ent_in_out.payload_sz = (uint32_t)off;
	inline_commit = cur_ent == e;
	__atomic_store_n(&e->unique, 0, __ATOMIC_RELEASE);
	if (queue_sqe(e->q, IORING_OP_URING_CMD, UFU_CMD_COMMIT_AND_FETCH, e, oh.unique,
		      inline_commit) < 0) {
		errno = EIO;
		return -1;
	}
	return (ssize_t)total;
}

/* ---- set-up and tear-down ---- */

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
		pthread_mutex_init(&q->lock, NULL);
		pthread_cond_init(&q->wake, NULL);
	}
	d->uring = u;
	for (i = 0; i < u->nq; i++) {
		rc = ring_setup(&u->qs[i], entries);
		if (rc) {
			udaxd_uring_stop(d);
			return rc;
		}
	}
	return 0;
}

/* Allocate a queue's entries (on the daemon's NUMA node, by first touch). */
static int alloc_entries(struct ufu_queue *q)
{
	struct udaxd_uring *u = q->u;
	size_t per = UFU_GAP + u->payload_len + 4096;	/* gap, payload, header */
	unsigned int i;

	q->ents = calloc(u->qdepth, sizeof(*q->ents));
	if (!q->ents)
		return -ENOMEM;
	q->buf_len = per * u->qdepth;
	q->bufs = mmap(NULL, q->buf_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q->bufs == MAP_FAILED) {
		q->bufs = NULL;
		return -errno;
	}
	for (i = 0; i < u->qdepth; i++) {
		struct ufu_ent *e = &q->ents[i];
		char *base = q->bufs + per * i;

		e->q = q;
		e->payload = base + UFU_GAP;
		e->hdr = (struct ufu_req_header *)(e->payload + u->payload_len);
		e->iov[0].iov_base = e->hdr;
		e->iov[0].iov_len = sizeof(*e->hdr);
		e->iov[1].iov_base = e->payload;
		e->iov[1].iov_len = u->payload_len;
	}
	return 0;
}

/*
 * The first thread of each queue: allocate its entries and register them
 * from a thread that stays for the life of the ring, then serve.
 */
static void *queue_start_main(void *arg)
{
	struct ufu_worker *w = arg;
	struct ufu_queue *q = w->q;
	int rc;

	pin_to_cpu(q);
	rc = alloc_entries(q);
	if (rc) {
		int zero = 0;

		atomic_compare_exchange_strong(&q->u->reg_error, &zero, rc);
		log_msg(q->u, FUSE_LOG_ERR, "io_uring: queue %u: %s; serving over /dev/fuse",
			q->qid, strerror(-rc));
		give_up(q);
		return NULL;
	}
	register_entries(q);
	return worker_main(w);
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
	if (pthread_create(&u->nthread, NULL, notify_main, u) == 0)
		u->nthread_started = true;
	for (i = 0; i < u->nq && !rc; i++) {
		struct ufu_queue *q = &u->qs[i];
		struct ufu_worker *w = calloc(1, sizeof(*w));
		pthread_attr_t attr;
		sigset_t all, old;

		if (!w) {
			rc = -ENOMEM;
			break;
		}
		w->q = q;
		w->reader = true;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 1024 * 1024);
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		pthread_mutex_lock(&q->lock);
		rc = -pthread_create(&w->thread, &attr, queue_start_main, w);
		if (!rc) {
			w->next = q->workers;
			q->workers = w;
			q->nworkers++;
			q->reader = w;
			q->started = true;
		} else {
			free(w);
		}
		pthread_mutex_unlock(&q->lock);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (!rc && pthread_create(&u->watchdog, NULL, watchdog_main, u) == 0)
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
				give_up(q);
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
		struct ufu_worker *w, *next;

		pthread_mutex_lock(&q->lock);
		__atomic_store_n(&q->exit, true, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&q->wake);
		pthread_mutex_unlock(&q->lock);
		if (q->ring_fd >= 0 && q->started)
			queue_sqe(q, IORING_OP_NOP, 0, NULL, 0, false);	/* out of the wait */
		for (w = q->workers; w; w = next) {
			next = w->next;
			pthread_join(w->thread, NULL);
			free(w);
		}
		q->workers = NULL;
	}
	pthread_mutex_lock(&u->nlock);
	u->nexit = true;
	pthread_cond_broadcast(&u->ncond);
	pthread_mutex_unlock(&u->nlock);
	if (u->nthread_started)
		pthread_join(u->nthread, NULL);
	d->uring = NULL;
	for (i = 0; i < u->nq; i++) {
		struct ufu_queue *q = &u->qs[i];

		ring_teardown(q);	/* the kernel cancels what the ring still held */
		if (q->bufs)
			munmap(q->bufs, q->buf_len);
		free(q->ents);
		pthread_cond_destroy(&q->wake);
		pthread_mutex_destroy(&q->lock);
		pthread_mutex_destroy(&q->sq_lock);
	}
	free(u->qs);
	pthread_cond_destroy(&u->ncond);
	pthread_mutex_destroy(&u->nlock);
	free(u);
}

