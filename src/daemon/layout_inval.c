/* SPDX-License-Identifier: MIT */
/*
 * layout_inval.c - the notifier thread: invalidation of the kernel's page
 * cache of a range when a writable layout is granted or ends, so reads
 * through the mount never see pages that direct stores went around.
 * fuse_lowlevel_notify_inval_inode() may wait for write-back that FUSE
 * workers serve, so it never runs on the event thread or under a lock.
 */
#include "config.h"

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>

#include "layout_int.h"

void ls_inval_push(struct layout_service *ls, struct inval *iv)
{
	iv->next = NULL;
	if (ls->inval_tail)
		ls->inval_tail->next = iv;
	else
		ls->inval_head = iv;
	ls->inval_tail = iv;
	pthread_cond_signal(&ls->inval_cond);
}

/* @cslot: a page-cache flag to clear right before the drop (a reference is taken), or NONE. */
void ls_queue_inval(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len,
		    uint32_t cslot)
{
	struct inval *iv = malloc(sizeof(*iv));
	if (!iv)
		return;	/* the flag stays set: its client keeps looking */
	*iv = (struct inval){ .ino = ino, .off = off, .len = len, .cslot = cslot };
	pthread_mutex_lock(&ls->lock);
	ls_ctab_hold_locked(ls, cslot);
	ls_inval_push(ls, iv);
	pthread_mutex_unlock(&ls->lock);
}

/* Invalidate the FUSE page cache of a range.  Context: no lock held; not a FUSE worker. */
void ls_do_inval(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&ls->lock);
	struct fuse_session *se = ls->se;
	if (se)
		ls->notifying++;	/* layout_set_session(NULL) waits for it */
	pthread_mutex_unlock(&ls->lock);
	if (!se)
		return;
	fuse_lowlevel_notify_inval_inode(se, ino, (off_t)off, (off_t)len);
	pthread_mutex_lock(&ls->lock);
	if (!--ls->notifying)
		pthread_cond_broadcast(&ls->notify_cond);
	pthread_mutex_unlock(&ls->lock);
}

void *ls_inval_main(void *arg)
{
	struct layout_service *ls = arg;
	pthread_mutex_lock(&ls->lock);
	for (;;) {
		while (!ls->inval_head && !ls->stopping)
			pthread_cond_wait(&ls->inval_cond, &ls->lock);
		struct inval *iv = ls->inval_head;
		if (!iv)
			break;
		ls->inval_head = iv->next;
		if (!ls->inval_head)
			ls->inval_tail = NULL;
		pthread_mutex_unlock(&ls->lock);
		if (iv->len) {
			ls_ctab_clear(ls, iv->cslot);	/* before the drop: layout_cache.c */
			ls_do_inval(ls, iv->ino, iv->off, iv->len);
		}
		pthread_mutex_lock(&ls->lock);
		ls_ctab_put_locked(ls, iv->cslot);
		if (iv->cl) {
			/* the queue is in order: everything queued before it is done too */
			ls_queue_msg(iv->cl, UDAX_REQ_INVAL | UDAX_MSG_REPLY, iv->seq, 0, -1, NULL, 0,
				     NULL, 0);
			iv->cl->grants--;
			ls_wake(ls);
		}
		free(iv);
	}
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}
