/* SPDX-License-Identifier: MIT */
/*
 * fuse_uring_queue.c - the request loop of FUSE over io_uring: each
 * queue's first thread registers the queue's entries (the kernel's
 * FUSE_IO_URING_CMD_REGISTER), then its reader takes each request an
 * entry completes with, rebuilds it as /dev/fuse would deliver it and
 * lets libfuse dispatch it; the reply goes back with the entry's next
 * COMMIT_AND_FETCH (fuse_uring_reply.c).  The threads of a queue are a
 * pool (pool.c): one reader, spares promoted by the watchdog below when
 * it sticks in a request.
 */
#include "config.h"

#include <errno.h>
#include <linux/fuse.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "fuse_uring_int.h"
#include "core/util.h"

__thread struct ufu_ent *ufu_cur_ent;
__thread struct ufu_queue *ufu_cur_q;

/* An entry is gone (torn down by the kernel, or refused). */
static void ent_dead(struct ufu_ent *e, int res)
{
	struct ufu_queue *q = e->q;
	struct udaxd_uring *u = q->u;

	pthread_mutex_lock(&q->pool.lock);
	if (e->live) {
		e->live = false;
		q->nlive--;
	}
	pthread_mutex_unlock(&q->pool.lock);
	if (res != -ENOTCONN && res != -ECANCELED && e != &q->refused) {
		int zero = 0;

		if (atomic_compare_exchange_strong(&u->reg_error, &zero, res))
			log_msg(u, FUSE_LOG_WARNING,
				"io_uring: the kernel refused a queue entry (%s); "
				"serving over /dev/fuse", strerror(-res));
	}
}

/*
 * ufu_give_up() - make the kernel drop io_uring for this connection: once
 * INIT said yes, requests wait until every queue holds an entry, so a
 * queue we cannot fill must not stay silent.  A REGISTER the kernel
 * refuses (an empty header buffer) turns the transport off; /dev/fuse
 * then serves.
 */
void ufu_give_up(struct ufu_queue *q)
{
	memset(&q->refused, 0, sizeof(q->refused));
	q->refused.q = q;
	ufu_queue_sqe(q, IORING_OP_URING_CMD, UFU_CMD_REGISTER, &q->refused, 0, false);
}

/*
 * Rebuild the request as /dev/fuse delivers it (header, op_in and payload
 * contiguous, in the gap before the payload: a WRITE's data is never
 * copied) and let libfuse dispatch it.
 */
static void serve_ent(struct udaxd_worker *w, struct ufu_ent *e)
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
		struct fuse_out_header oh = { .error = -EIO, .unique = in.unique };

		log_msg(u, FUSE_LOG_ERR, "io_uring: malformed request (opcode %u, len %u, payload %zu)",
			in.opcode, in.len, psz);
		ufu_commit(e, &oh, 0, true);
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
	ufu_cur_ent = e;
	ufu_cur_q = e->q;
	udaxd_kio_note(u->d, start, in.len);
	udaxd_worker_process(w, u->d->se, &fbuf);
	ufu_cur_ent = NULL;
	ufu_cur_q = NULL;
	if (in.opcode == FUSE_NOTIFY_REPLY &&
	    __atomic_load_n(&e->unique, __ATOMIC_ACQUIRE) == in.unique) {
		/* libfuse never answers a retrieve reply: give the entry back */
		struct fuse_out_header oh = { .unique = in.unique };

		ufu_commit(e, &oh, 0, false);
	}
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

		pthread_mutex_lock(&q->pool.lock);
		e->live = true;
		q->nlive++;
		pthread_mutex_unlock(&q->pool.lock);
		/* the first command of each entry must come from a thread that stays */
		if (ufu_queue_sqe(q, IORING_OP_URING_CMD, UFU_CMD_REGISTER, e, 0, true))
			ent_dead(e, -EIO);
	}
}

/* A thread of a queue's pool: serve while it is the reader. */
void *ufu_worker_main(void *arg)
{
	struct udaxd_worker *w = arg;
	struct ufu_queue *q = w->pool->owner;
	struct udaxd_uring *u = q->u;
	struct io_uring_cqe cqe;

	pin_to_cpu(q);
	while (udaxd_pool_wait_turn(w) && ufu_next_cqe(q, &cqe)) {
		struct ufu_ent *e = (struct ufu_ent *)(uintptr_t)cqe.user_data;

		if (cqe.user_data == UFU_WAKE)
			continue;
		if (cqe.res < 0) {
			ent_dead(e, cqe.res);
			continue;
		}
		if (!atomic_exchange(&u->announced, true))
			log_msg(u, FUSE_LOG_INFO, "serving FUSE requests over io_uring (%u queues of %u)",
				u->nq, u->qdepth);
		serve_ent(w, e);
		/*
		 * Still the reader: the commit goes with the next wait.
		 * Promoted away meanwhile: submit it now, then rest.
		 */
		if (!udaxd_pool_is_reader(w))
			ufu_flush_pending(q);
	}
	ufu_flush_pending(q);
	return NULL;
}

/*
 * Allocate a queue's entries, on its CPU's NUMA node by first touch
 * (udaxd_uring_stop() frees them).  Context: the queue's first thread.
 * Return: 0 or -errno.
 */
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
void *ufu_queue_start_main(void *arg)
{
	struct udaxd_worker *w = arg;
	struct ufu_queue *q = w->pool->owner;
	int rc;

	pin_to_cpu(q);
	rc = alloc_entries(q);
	if (rc) {
		int zero = 0;

		atomic_compare_exchange_strong(&q->u->reg_error, &zero, rc);
		log_msg(q->u, FUSE_LOG_ERR, "io_uring: queue %u: %s; serving over /dev/fuse",
			q->qid, strerror(-rc));
		ufu_give_up(q);
		return NULL;
	}
	register_entries(q);
	return ufu_worker_main(w);
}

/* Every UDAXD_STUCK_NS: promote a spare where a queue's reader is stuck. */
void *ufu_watchdog_main(void *arg)
{
	struct udaxd_uring *u = arg;
	struct timespec ts = { 0, (long)UDAXD_STUCK_NS };
	unsigned int i;

	while (!atomic_load(&u->stop)) {
		nanosleep(&ts, NULL);
		for (i = 0; i < u->nq; i++) {
			struct ufu_queue *q = &u->qs[i];

			if (!q->started)
				continue;
			pthread_mutex_lock(&q->pool.lock);
			udaxd_pool_watch(&q->pool);
			pthread_mutex_unlock(&q->pool.lock);
		}
	}
	return NULL;
}
