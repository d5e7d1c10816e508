/* SPDX-License-Identifier: MIT */
/*
 * fuse_uring_cmd.c - the io_uring of each FUSE-over-io_uring queue: its
 * set-up (one ring per queue, 128-byte SQEs for the command area), the
 * REGISTER and COMMIT_AND_FETCH commands it submits to /dev/fuse, and the
 * completions its reader reaps.
 *
 * Any thread may submit (the submission ring is under q->sq_lock); the
 * thread that serves a queue inline leaves its commit pending and submits
 * it with its next wait for a completion, in the same system call.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fuse_uring_int.h"

static int sys_io_uring_setup(unsigned int entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_io_uring_enter(int fd, unsigned int to_submit, unsigned int min_complete,
			      unsigned int flags)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

/*
 * ufu_ring_setup() - create @q's io_uring of @entries and map its rings.
 * Return: 0 or -errno (what is mapped is undone by ufu_ring_teardown()).
 */
int ufu_ring_setup(struct ufu_queue *q, unsigned int entries)
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

void ufu_ring_teardown(struct ufu_queue *q)
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
int ufu_queue_sqe(struct ufu_queue *q, uint8_t opcode, uint32_t cmd_op,
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

/* Claim what this queue has pending: the caller submits it. */
static unsigned int claim_pending(struct ufu_queue *q)
{
	unsigned int n;

	pthread_mutex_lock(&q->sq_lock);
	n = q->sq_pending;
	q->sq_pending = 0;
	pthread_mutex_unlock(&q->sq_lock);
	return n;
}

/* Submit what this queue has pending.  Return: 0 or -errno. */
int ufu_flush_pending(struct ufu_queue *q)
{
	unsigned int n = claim_pending(q);

	return n ? submit_claimed(q, n, 0) : 0;
}

/*
 * Next completion of @q, submitting pending commands on the way (one
 * system call for both).  Context: the queue's reader.
 * Return: true with *@out filled, false when told to exit.
 */
bool ufu_next_cqe(struct ufu_queue *q, struct io_uring_cqe *out)
{
	for (;;) {
		unsigned int head = *q->cq_khead;
		unsigned int tail = __atomic_load_n(q->cq_ktail, __ATOMIC_ACQUIRE);
		unsigned int n = claim_pending(q);

		if (head != tail) {
			*out = q->cqes[head & q->cq_mask];
			__atomic_store_n(q->cq_khead, head + 1, __ATOMIC_RELEASE);
			if (n)
				submit_claimed(q, n, 0);
			return true;
		}
		if (udaxd_pool_exiting(&q->pool)) {
			if (n)
				submit_claimed(q, n, 0);
			return false;
		}
		if (submit_claimed(q, n, 1) < 0)
			sched_yield();
	}
}
