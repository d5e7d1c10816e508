/* SPDX-License-Identifier: MIT */
/*
 * pool.h - the threads that serve requests, for the /dev/fuse loop of
 * -o reader_loop (loop.c) and for each queue of FUSE over io_uring
 * (fuse_uring_queue.c):
 * exactly one thread, the reader, waits for the next request and serves
 * it inline; a watchdog makes another thread the reader when the one
 * serving has been inside one request for longer than UDAXD_STUCK_NS.
 * Why one hot reader rather than libfuse's pool: loop.c says.
 */
#ifndef UDAXD_POOL_H
#define UDAXD_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

#define UDAXD_STUCK_NS (2 * 1000 * 1000ULL)	/* 2 ms */

struct udaxd_pool;

struct udaxd_worker {
	struct udaxd_pool *pool;
	pthread_t thread;
	uint64_t busy_since;		/* ns, 0 = not in a request.  Atomic. */
	bool reader;			/* under pool->lock */
	struct udaxd_worker *next;	/* all workers, under pool->lock */
};

struct udaxd_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* spares wait here to become the reader */
	struct udaxd_worker *workers;	/* under lock */
	struct udaxd_worker *reader;	/* the one reading now, under lock */
	unsigned int nworkers;		/* under lock */
	unsigned int max_workers;	/* const */
	bool exit;			/* under lock; read atomically without it */
	bool block_signals;		/* const: new threads leave signals to others */
	void *(*main)(void *);		/* const: a promoted spare runs this (the worker) */
	void *owner;			/* const: what the threads serve */
};

/*
 * udaxd_pool_init() - an empty pool.  @main: the function of the threads
 * that promote() starts, given their struct udaxd_worker.  @block_signals:
 * start them with every signal blocked (signals stay with the main
 * thread); without it a reader blocked in read(2) can be kicked out with
 * pthread_kill().
 */
void udaxd_pool_init(struct udaxd_pool *p, unsigned int max_workers, void *(*main)(void *),
		     void *owner, bool block_signals);
void udaxd_pool_destroy(struct udaxd_pool *p);

/*
 * udaxd_pool_add() - start one more thread running @main (NULL: the
 * pool's), the reader when @reader.
 * Context: p->lock held.  Return: 0 or -errno.
 */
int udaxd_pool_add(struct udaxd_pool *p, bool reader, void *(*main)(void *));

/*
 * udaxd_pool_watch() - the watchdog's look: a reader inside one request
 * for longer than UDAXD_STUCK_NS hands the reading to an idle spare, or
 * to a new thread up to max_workers (at the limit it stays the reader).
 * Context: p->lock held.
 */
void udaxd_pool_watch(struct udaxd_pool *p);

/*
 * udaxd_pool_wait_turn() - wait until @w is the reader.
 * Return: true, or false when the pool is told to exit.
 */
bool udaxd_pool_wait_turn(struct udaxd_worker *w);

/* udaxd_pool_is_reader() - @w is still the reader (not promoted away). */
bool udaxd_pool_is_reader(struct udaxd_worker *w);

/*
 * udaxd_worker_process() - let libfuse dispatch one request, marked busy
 * meanwhile so that the watchdog sees how long it takes.
 */
void udaxd_worker_process(struct udaxd_worker *w, struct fuse_session *se,
			  const struct fuse_buf *buf);

static inline bool udaxd_pool_exiting(struct udaxd_pool *p)
{
	return __atomic_load_n(&p->exit, __ATOMIC_ACQUIRE);
}

#endif /* UDAXD_POOL_H */
