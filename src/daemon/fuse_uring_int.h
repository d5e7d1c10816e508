/* SPDX-License-Identifier: MIT */
/*
 * fuse_uring_int.h - what the pieces of FUSE over io_uring share.  The
 * pieces, named as the kernel's side (fs/fuse/dev_uring.c) names them:
 *
 *   fuse_uring.c        the ring: negotiation at INIT, one queue per
 *                       possible CPU and its threads, start and stop
 *   fuse_uring_cmd.c    the io_uring of each queue: its set-up, the
 *                       REGISTER and COMMIT_AND_FETCH commands it submits
 *                       and the completions it reaps
 *   fuse_uring_queue.c  the request loop: allocate and register a queue's
 *                       entries from its first thread, take each
 *                       request an entry completes with, dispatch it; the
 *                       watchdog of the queues' threads (pool.c)
 *   fuse_uring_reply.c  the reply written into the entry and committed
 *   fuse_uring_notify.c notifications handed to a helper thread
 *
 * The design is in the comment at the top of fuse_uring.c.
 */
#ifndef UDAXD_FUSE_URING_INT_H
#define UDAXD_FUSE_URING_INT_H

#include <linux/io_uring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <fuse_log.h>

#include "daemon.h"
#include "pool.h"

/*
 * The FUSE-over-io_uring ABI (include/uapi/linux/fuse.h, protocol 7.42),
 * defined here because the installed header may predate it (INIT's flag
 * is kio.c's).
 */
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

#define UFU_GAP		4096			/* room for header + op_in before the payload */
#define UFU_WAKE	0			/* user_data of a NOP: wake a waiter */

_Static_assert(sizeof(struct ufu_ent_in_out) == 32, "fuse_uring_ent_in_out");
_Static_assert(sizeof(struct ufu_cmd_req) == 24, "fuse_uring_cmd_req");

struct ufu_queue;

/* One ring entry: the kernel's struct fuse_ring_ent, seen from our side. */
struct ufu_ent {
	struct ufu_queue *q;
	struct ufu_req_header *hdr;	/* iov[0] */
	char *payload;			/* iov[1]; UFU_GAP bytes before it are ours */
	struct iovec iov[2];		/* what REGISTER names; read by the kernel at submit */
	uint64_t unique;		/* request being served, 0 none.  Atomic. */
	bool live;			/* the kernel holds it or we serve it; q->pool.lock */
};

/* One queue (the kernel's struct fuse_ring_queue): an io_uring of its own. */
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
	/* the threads; pool.lock also guards nlive and each entry's live */
	struct udaxd_pool pool;
	unsigned int nlive;		/* entries still live; pool.lock */
	bool started;			/* threads started (const after start) */
	int cpu;			/* pinned to this CPU, or -1 */
	struct ufu_ent refused;		/* a REGISTER the kernel must refuse (give_up) */
};

/* The whole transport (the kernel's struct fuse_ring). */
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
	/* notifications handed to the helper (fuse_uring_notify.c) */
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
extern __thread struct ufu_ent *ufu_cur_ent;
extern __thread struct ufu_queue *ufu_cur_q;

/* Through libfuse's log: stderr before the daemon detaches, syslog after. */
#define log_msg(u, level, fmt, ...) \
	((void)(u), fuse_log(level, "udaxfs: " fmt "\n", ##__VA_ARGS__))

/* ---- fuse_uring_cmd.c ---- */
int ufu_ring_setup(struct ufu_queue *q, unsigned int entries);
void ufu_ring_teardown(struct ufu_queue *q);
int ufu_queue_sqe(struct ufu_queue *q, uint8_t opcode, uint32_t cmd_op,
		  struct ufu_ent *e, uint64_t commit_id, bool inline_commit);
int ufu_flush_pending(struct ufu_queue *q);
bool ufu_next_cqe(struct ufu_queue *q, struct io_uring_cqe *out);

/* ---- fuse_uring_queue.c ---- */
void ufu_give_up(struct ufu_queue *q);
void *ufu_worker_main(void *arg);
void *ufu_queue_start_main(void *arg);
void *ufu_watchdog_main(void *arg);

/* ---- fuse_uring_reply.c ---- */
struct fuse_out_header;
int ufu_commit(struct ufu_ent *e, struct fuse_out_header *oh, size_t payload_sz,
	       bool inline_commit);

/* ---- fuse_uring_notify.c ---- */
void ufu_notify_start(struct udaxd_uring *u);
void ufu_notify_stop(struct udaxd_uring *u);

#endif /* UDAXD_FUSE_URING_INT_H */
