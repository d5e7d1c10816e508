/* SPDX-License-Identifier: MIT */
/*
 * pool.c - one hot reader, spares promoted when it sticks in a request
 * (pool.h).  Quick requests never pay a hand-off; a blocked one (a
 * truncate waiting in break_layouts for DMA to drain, or any request
 * queued behind it on the inode's lock) delays the others by at most two
 * watchdog periods.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "core/util.h"

void udaxd_pool_init(struct udaxd_pool *p, unsigned int max_workers, void *(*main)(void *),
		     void *owner, bool block_signals)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->max_workers = max_workers;
	p->main = main;
	p->owner = owner;
	p->block_signals = block_signals;
}

void udaxd_pool_destroy(struct udaxd_pool *p)
{
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
}

int udaxd_pool_add(struct udaxd_pool *p, bool reader, void *(*main)(void *))
{
	struct udaxd_worker *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	if (!w)
		return -ENOMEM;
	w->pool = p;
	w->reader = reader;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1024 * 1024);
	if (p->block_signals) {
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
	}
	rc = pthread_create(&w->thread, &attr, main ? main : p->main, w);
	if (p->block_signals)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc) {
		free(w);
		return -rc;
	}
	w->next = p->workers;
	p->workers = w;
	p->nworkers++;
	if (reader)
		p->reader = w;
	return 0;
}

/* Make some thread other than @stuck the reader.  Context: p->lock held. */
static void promote(struct udaxd_pool *p, struct udaxd_worker *stuck)
{
	struct udaxd_worker *w;

	stuck->reader = false;
	for (w = p->workers; w; w = w->next) {
		if (w != stuck && !w->reader &&
		    __atomic_load_n(&w->busy_since, __ATOMIC_ACQUIRE) == 0) {
			w->reader = true;
			p->reader = w;
			pthread_cond_broadcast(&p->wake);
			return;
		}
	}
	if (p->nworkers < p->max_workers && udaxd_pool_add(p, true, NULL) == 0)
		return;
	/* at the limit: the stuck one stays the reader */
	stuck->reader = true;
	p->reader = stuck;
}

void udaxd_pool_watch(struct udaxd_pool *p)
{
	struct udaxd_worker *r = p->reader;
	uint64_t since = r ? __atomic_load_n(&r->busy_since, __ATOMIC_ACQUIRE) : 0;

	if (!p->exit && since && dx_now_ns() - since > UDAXD_STUCK_NS)
		promote(p, r);
}

bool udaxd_pool_wait_turn(struct udaxd_worker *w)
{
	struct udaxd_pool *p = w->pool;
	bool go;

	pthread_mutex_lock(&p->lock);
	while (!w->reader && !p->exit)
		pthread_cond_wait(&p->wake, &p->lock);
	go = !p->exit;
	pthread_mutex_unlock(&p->lock);
	return go;
}

bool udaxd_pool_is_reader(struct udaxd_worker *w)
{
	bool r;

	pthread_mutex_lock(&w->pool->lock);
	r = w->reader;
	pthread_mutex_unlock(&w->pool->lock);
	return r;
}

void udaxd_worker_process(struct udaxd_worker *w, struct fuse_session *se,
			  const struct fuse_buf *buf)
{
	__atomic_store_n(&w->busy_since, dx_now_ns(), __ATOMIC_RELEASE);
	fuse_session_process_buf(se, buf);
	__atomic_store_n(&w->busy_since, 0, __ATOMIC_RELEASE);
}
