/* SPDX-License-Identifier: MIT */
/*
 * layout_recall.c - recalls: the fan-out of break_layouts to the clients
 * holding layouts of the range, and the record of the most recent breaks
 * (UDAX_REQ_BREAKS, for udaxctl bench truncate-dma).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "layout_int.h"
#include "core/util.h"

/* ---- break records (UDAX_REQ_BREAKS) ---- */

void layout_note_break(struct layout_service *ls, uint64_t ino,
		       const struct dx_break_stats *bs, int rc, uint64_t t_freed)
{
	if (!ls || !bs)
		return;
	struct udax_break_rec r = {
		.ino = ino, .start = 0, .end = UINT64_MAX,
		.t_start = bs->t_start, .t_recall_sent = bs->t_recall_sent,
		.t_last_unpin = bs->t_last_unpin, .t_idle = bs->t_idle, .t_done = bs->t_done,
		.t_freed = t_freed, .passes = bs->passes, .waits = bs->waits, .result = rc,
	};
	pthread_mutex_lock(&ls->lock);
	if (ls->breaks) {
		unsigned int i = (ls->breaks_head + ls->breaks_n) % UDAX_BREAKS_MAX;
		ls->breaks[i] = r;
		if (ls->breaks_n < UDAX_BREAKS_MAX)
			ls->breaks_n++;
		else
			ls->breaks_head = (ls->breaks_head + 1) % UDAX_BREAKS_MAX;
	}
	pthread_mutex_unlock(&ls->lock);
}

void ls_req_breaks(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h)
{
	pthread_mutex_lock(&ls->lock);
	unsigned int n = ls->breaks_n, first = UDAX_BREAKS_MAX - ls->breaks_head;
	if (first > n)
		first = n;
	/* oldest first: the ring may wrap, so send it as two pieces */
	ls_queue_msg(cl, UDAX_REQ_BREAKS | UDAX_MSG_REPLY, h->seq, ls->breaks ? 0 : -ENOSYS, -1,
		     ls->breaks + ls->breaks_head, first * sizeof(struct udax_break_rec),
		     ls->breaks, (n - first) * sizeof(struct udax_break_rec));
	pthread_mutex_unlock(&ls->lock);
}

/* ---- recalls (layout.h hooks) ---- */

void layout_recall(void *arg, uint64_t ino, uint64_t start, uint64_t end)
{
	struct layout_service *ls = arg ? arg : atomic_load(&ls_current);
	bool any = false;

	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	struct lmap *chain = *ls_ino_chain(ls, ino);
	/*
	 * Before a recall makes a client replace its mappings: a ring it
	 * registered them on without declaring it is adopted now (once per
	 * client), so the break waits for the ring to let go, not only for the
	 * client's word.  Discovery adopts pins; it adds or frees no layout.
	 */
	for (struct lmap *lm = chain; lm; lm = lm->ino_next) {
		if (lm->ino != ino || lm->state != LM_ACTIVE || lm->recall_sent ||
		    !range_overlaps(lm, start, end) || lm->cl->recall_mark)
			continue;
		lm->cl->recall_mark = true;
		ls_discover_locked(ls, lm->cl, NULL, ino, start, end);
	}
	for (struct lmap *lm = chain; lm; lm = lm->ino_next) {
		if (lm->ino != ino)
			continue;
		lm->cl->recall_mark = false;
		if (!range_overlaps(lm, start, end))
			continue;
		if (lm->state == LM_GRANTING) {
			lm->recall_pending = true;
			continue;
		}
		if (lm->recall_sent)
			continue;
		lm->recall_sent = true;
		lm->recall_seq = ++ls->recall_seq;
		struct udax_recall_msg rm = {
			.id = lm->id, .recall_seq = lm->recall_seq, .ino = ino,
			.start = start, .end = end,
		};
		ls_queue_msg(lm->cl, UDAX_MSG_RECALL, 0, 0, -1, &rm, sizeof(rm), NULL, 0);
		if (!ls_client_send_now(lm->cl))
			any = true;	/* the event thread sends the rest */
	}
	pthread_mutex_unlock(&ls->lock);
	if (any)
		ls_wake(ls);
}

bool layout_ino_has_writable(struct layout_service *ls, uint64_t ino)
{
	bool found = false;
	if (!ls)
		return false;
	pthread_mutex_lock(&ls->lock);
	for (struct lmap *lm = *ls_ino_chain(ls, ino); lm && !found; lm = lm->ino_next)
		found = lm->ino == ino && lm->writable;
	pthread_mutex_unlock(&ls->lock);
	return found;
}
