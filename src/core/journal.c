/* SPDX-License-Identifier: MIT */
/*
 * journal.c - metadata transactions over the on-media undo log.
 *
 * The protocol is in format.h.  Why it is crash-safe: a range is changed
 * in place only after its old bytes are durable in the log AND j_used
 * covers them (two fences in ufs_tx_add); commit makes every changed range
 * durable before the one 8-byte store that empties the log.  So at any
 * fence either the log is empty and the media holds only finished
 * transactions, or the log holds the old bytes of every range the current
 * transaction may have touched, and rolling them back in reverse order
 * gives the state before it.
 *
 * Only one transaction runs at a time (j->lock); the transaction object is
 * embedded in the journal and reused.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "super.h"
#include "util.h"

#define UFS_JOURNAL_MAX_HOOKS 8

struct tx_range {
	uint64_t off, len;
};

struct ufs_tx {
	struct ufs_journal *j;
	uint64_t used;			/* bytes of records written by this tx */
	struct tx_range *ranges;	/* logged ranges: sorted, disjoint, merged */
	size_t nranges, cap;
	uint64_t *recs;			/* record positions (offsets into the area) */
	size_t nrecs, rcap;
};

struct ufs_journal {
	struct dx_media *m;
	struct ufs_journal_head *head;	/* in the mapping */
	char *area;			/* records start here (in the mapping) */
	uint64_t area_len;
	uint64_t j_off, j_len;		/* the journal region (excluded from logging) */
	uint64_t dev_len;		/* file system size in bytes */
	pthread_mutex_t lock;		/* serialises transactions; protects tx, commits */
	/* protects hooks/nhooks; nests inside lock (hooks are added from
	 * inside a transaction by the allocator) */
	pthread_mutex_t hook_lock;
	struct ufs_tx tx;
	struct {
		const struct ufs_tx_hooks *h;
		void *arg;
	} hooks[UFS_JOURNAL_MAX_HOOKS];
	unsigned int nhooks;
	uint64_t commits;
};

static uint32_t rec_crc(const struct ufs_journal_rec *r, const void *bytes)
{
	struct ufs_journal_rec h = *r;

	h.r_crc = 0;
	return dx_crc32c(dx_crc32c(0, &h, sizeof(h)), bytes, r->r_len);
}

bool ufs_journal_head_ok(const struct ufs_journal_head *h)
{
	return h->j_magic == UFS_JOURNAL_MAGIC && h->j_pad == 0 &&
	       h->j_checksum == ufs_journal_head_csum(h);
}

int ufs_journal_open(struct ufs_journal **out, struct dx_media *m, const struct ufs_super *sb)
{
	struct ufs_journal_head *h;
	struct ufs_journal *j;
	uint64_t j_off = sb->s_journal_start * UFS_BLOCK_SIZE;

	*out = NULL;
	h = dx_media_ptr(m, j_off);
	if (h->j_magic != UFS_JOURNAL_MAGIC) {
		dx_seterr("%s: journal header at offset %" PRIu64 ": bad magic 0x%016" PRIx64,
			    dx_media_path(m), j_off, h->j_magic);
		return -EUCLEAN;
	}
	if (!ufs_journal_head_ok(h)) {
		dx_seterr("%s: journal header at offset %" PRIu64 ": bad checksum",
			    dx_media_path(m), j_off);
		return -EUCLEAN;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->m = m;
	j->head = h;
	j->j_off = j_off;
	j->j_len = sb->s_journal_blocks * UFS_BLOCK_SIZE;
	j->area = (char *)h + UFS_JOURNAL_REC_START;
	j->area_len = j->j_len - UFS_JOURNAL_REC_START;
	j->dev_len = sb->s_blocks_count * UFS_BLOCK_SIZE;
	if (h->j_used > j->area_len || h->j_used % 8) {
		dx_seterr("%s: journal header at offset %" PRIu64 ": %" PRIu64
			    " bytes used does not fit the %" PRIu64 "-byte log",
			    dx_media_path(m), j_off, h->j_used, j->area_len);
		free(j);
		return -EUCLEAN;
	}
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->hook_lock, NULL);
	j->tx.j = j;
	*out = j;
	return 0;
}

void ufs_journal_close(struct ufs_journal **jp)
{
	struct ufs_journal *j = jp ? *jp : NULL;

	if (!j)
		return;
	pthread_mutex_destroy(&j->lock);
	pthread_mutex_destroy(&j->hook_lock);
	free(j->tx.ranges);
	free(j->tx.recs);
	free(j);
	*jp = NULL;
}

bool ufs_journal_dirty(const struct ufs_journal *j)
{
	return __atomic_load_n(&j->head->j_used, __ATOMIC_ACQUIRE) != 0;
}

uint64_t ufs_journal_commits(const struct ufs_journal *j)
{
	return __atomic_load_n(&j->commits, __ATOMIC_RELAXED);
}

/* Empty the log durably: the one store that ends a transaction. */
static void log_empty(struct ufs_journal *j)
{
	__atomic_store_n(&j->head->j_used, 0, __ATOMIC_RELEASE);
	dx_media_persist(j->m, &j->head->j_used, sizeof(j->head->j_used));
}

/* Room in tx->recs for one more record position.  Return: 0 or -ENOMEM. */
static int recs_reserve(struct ufs_tx *tx)
{
	size_t ncap;
	uint64_t *n;

	if (tx->nrecs < tx->rcap)
		return 0;
	ncap = tx->rcap ? tx->rcap * 2 : 64;
	n = realloc(tx->recs, ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	tx->recs = n;
	tx->rcap = ncap;
	return 0;
}

/* Is [off, off + len) a range a record may name? */
static bool range_ok(const struct ufs_journal *j, uint64_t off, uint64_t len)
{
	if (len == 0 || off >= j->dev_len || len > j->dev_len - off)
		return false;
	return off + len <= j->j_off || off >= j->j_off + j->j_len;
}

/*
 * scan_records() - validate every record in [0, used) and collect their
 * positions in j->tx.recs.  Return: count or -EUCLEAN (message set).
 */
static int scan_records(struct ufs_journal *j, uint64_t used)
{
	struct ufs_tx *tx = &j->tx;
	uint64_t pos = 0, seq = j->head->j_seq;

	tx->nrecs = 0;
	while (pos < used) {
		const struct ufs_journal_rec *r = (const void *)(j->area + pos);
		uint64_t roff = j->j_off + UFS_JOURNAL_REC_START + pos;
		const char *why = NULL;

		if (used - pos < sizeof(*r))
			why = "truncated header";
		else if (r->r_len == 0 || UFS_JOURNAL_REC_SIZE(r->r_len) > used - pos)
			why = "length runs past the end of the log";
		else if (r->r_seq != seq)
			why = "sequence does not match the journal header";
		else if (!range_ok(j, r->r_dev_off, r->r_len))
			why = "target range outside the file system or inside the journal";
		else if (r->r_crc != rec_crc(r, r + 1))
			why = "bad checksum";
		if (why) {
			dx_seterr("%s: journal record at offset %" PRIu64 ": %s",
				    dx_media_path(j->m), roff, why);
			return -EUCLEAN;
		}
		if (recs_reserve(tx))
			return -ENOMEM;
		tx->recs[tx->nrecs++] = pos;
		pos += UFS_JOURNAL_REC_SIZE(r->r_len);
	}
	return (int)tx->nrecs;
}

/* Put back the old bytes of the collected records, newest first. */
static void apply_records(struct ufs_journal *j)
{
	struct ufs_tx *tx = &j->tx;
	size_t i;

	for (i = tx->nrecs; i-- > 0;) {
		const struct ufs_journal_rec *r = (const void *)(j->area + tx->recs[i]);

		dx_media_memcpy_persist(j->m, dx_media_ptr(j->m, r->r_dev_off), r + 1, r->r_len);
	}
}

/* Apply the collected records in reverse order; call restored() hooks. */
static void rollback(struct ufs_journal *j, bool hooks)
{
	struct ufs_tx *tx = &j->tx;
	size_t i;
	unsigned int k;

	apply_records(j);
	log_empty(j);
	if (!hooks)
		return;
	pthread_mutex_lock(&j->hook_lock);
	for (i = 0; i < tx->nrecs; i++) {
		const struct ufs_journal_rec *r = (const void *)(j->area + tx->recs[i]);

		for (k = 0; k < j->nhooks; k++)
			if (j->hooks[k].h->restored)
				j->hooks[k].h->restored(j->hooks[k].arg, r->r_dev_off, r->r_len);
	}
	pthread_mutex_unlock(&j->hook_lock);
}

/*
 * What recovery and replay start with: collect the records of the
 * interrupted transaction and, when they are to be applied (@apply),
 * refuse a read-only device.  Context: j->lock held.  Return: the number
 * of records (0: the journal is empty; the caller has nothing to do),
 * -EUCLEAN (a bad record) or -EROFS (message set).
 */
static int recover_begin(struct ufs_journal *j, bool apply)
{
	uint64_t used = j->head->j_used;
	int n;

	if (!used)
		return 0;
	n = scan_records(j, used);
	if (n >= 0 && apply && dx_media_readonly(j->m)) {
		dx_seterr("%s: the journal needs recovery but the device is read-only",
			    dx_media_path(j->m));
		return -EROFS;
	}
	return n;
}

int ufs_journal_recover(struct ufs_journal *j, bool dry_run)
{
	int n;

	pthread_mutex_lock(&j->lock);
	n = recover_begin(j, !dry_run);
	if (n > 0 && !dry_run)
		rollback(j, false);
	j->tx.nrecs = 0;
	pthread_mutex_unlock(&j->lock);
	return n;
}

int ufs_journal_scan(struct ufs_journal *j,
		     int (*fn)(void *arg, uint64_t dev_off, const void *old, uint32_t len),
		     void *arg)
{
	size_t i;
	int n;

	pthread_mutex_lock(&j->lock);
	n = recover_begin(j, false);
	for (i = n > 0 && fn ? j->tx.nrecs : 0; i-- > 0;) {
		const struct ufs_journal_rec *r = (const void *)(j->area + j->tx.recs[i]);
		int rc = fn(arg, r->r_dev_off, r + 1, r->r_len);

		if (rc) {
			n = rc;
			break;
		}
	}
	j->tx.nrecs = 0;
	pthread_mutex_unlock(&j->lock);
	return n;
}

/* What a replay overwrote, kept in DRAM until the mount decides. */
struct ufs_journal_undo {
	size_t n;
	struct {
		uint64_t off;
		uint32_t len;
		size_t at;		/* offset in bytes[] */
	} *r;
	uint8_t *bytes;
};

static void undo_free(struct ufs_journal_undo *u)
{
	if (!u)
		return;
	free(u->r);
	free(u->bytes);
	free(u);
}

int ufs_journal_replay(struct ufs_journal *j, struct ufs_journal_undo **out)
{
	struct ufs_journal_undo *u = NULL;
	struct ufs_tx *tx = &j->tx;
	size_t i, total = 0;
	int n;

	*out = NULL;
	pthread_mutex_lock(&j->lock);
	n = recover_begin(j, true);
	if (n <= 0)
		goto out;
	for (i = 0; i < tx->nrecs; i++)
		total += ((const struct ufs_journal_rec *)(j->area + tx->recs[i]))->r_len;
	u = calloc(1, sizeof(*u));
	if (u) {
		u->r = calloc(tx->nrecs, sizeof(*u->r));
		u->bytes = malloc(total ? total : 1);
	}
	if (!u || !u->r || !u->bytes) {
		undo_free(u);
		n = -ENOMEM;
		goto out;
	}
	/* every range's bytes as they are now, before any record is applied */
	for (i = 0, total = 0; i < tx->nrecs; i++) {
		const struct ufs_journal_rec *r = (const void *)(j->area + tx->recs[i]);

		u->r[i].off = r->r_dev_off;
		u->r[i].len = r->r_len;
		u->r[i].at = total;
		memcpy(u->bytes + total, dx_media_ptr(j->m, r->r_dev_off), r->r_len);
		total += r->r_len;
	}
	u->n = tx->nrecs;
	apply_records(j);
	*out = u;
out:
	j->tx.nrecs = 0;
	pthread_mutex_unlock(&j->lock);
	return n;
}

void ufs_journal_replay_end(struct ufs_journal *j, struct ufs_journal_undo **up, bool keep)
{
	struct ufs_journal_undo *u = up ? *up : NULL;
	size_t i;

	if (!u)
		return;
	pthread_mutex_lock(&j->lock);
	if (keep) {
		log_empty(j);
	} else {
		/*
		 * Each saved copy holds the bytes from before the replay, so
		 * overlapping ranges agree and any order restores the image.
		 * The log is untouched: a crash in here replays again.
		 */
		for (i = 0; i < u->n; i++)
			dx_media_memcpy_persist(j->m, dx_media_ptr(j->m, u->r[i].off),
						  u->bytes + u->r[i].at, u->r[i].len);
	}
	pthread_mutex_unlock(&j->lock);
	undo_free(u);
	*up = NULL;
}

int ufs_journal_add_hooks(struct ufs_journal *j, const struct ufs_tx_hooks *h, void *arg)
{
	int ret = 0;

	pthread_mutex_lock(&j->hook_lock);
	if (j->nhooks == UFS_JOURNAL_MAX_HOOKS) {
		ret = -ENOSPC;
	} else {
		j->hooks[j->nhooks].h = h;
		j->hooks[j->nhooks].arg = arg;
		j->nhooks++;
	}
	pthread_mutex_unlock(&j->hook_lock);
	return ret;
}

void ufs_journal_remove_hooks(struct ufs_journal *j, const struct ufs_tx_hooks *h, void *arg)
{
	unsigned int i;

	pthread_mutex_lock(&j->hook_lock);
	for (i = 0; i < j->nhooks; i++) {
		if (j->hooks[i].h == h && j->hooks[i].arg == arg) {
			j->hooks[i] = j->hooks[--j->nhooks];
			break;
		}
	}
	pthread_mutex_unlock(&j->hook_lock);
}

struct ufs_tx *ufs_tx_begin(struct ufs_journal *j)
{
	pthread_mutex_lock(&j->lock);
	/* recovery runs at mount, before any transaction */
	UDAX_BUG_ON(j->head->j_used != 0);
	UDAX_BUG_ON(dx_media_readonly(j->m));
	j->tx.used = 0;
	j->tx.nranges = 0;
	j->tx.nrecs = 0;
	return &j->tx;
}

struct ufs_journal *ufs_tx_journal(struct ufs_tx *tx)
{
	return tx->j;
}

size_t ufs_tx_room(const struct ufs_tx *tx)
{
	return (size_t)(tx->j->area_len - tx->used);
}

/* First range index whose end is > off. */
static size_t range_search(const struct ufs_tx *tx, uint64_t off)
{
	size_t lo = 0, hi = tx->nranges;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (tx->ranges[mid].off + tx->ranges[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Insert [off, off + len) (not overlapping any logged range) and merge neighbours. */
static int range_insert(struct ufs_tx *tx, uint64_t off, uint64_t len)
{
	size_t i = range_search(tx, off);

	if (i > 0 && tx->ranges[i - 1].off + tx->ranges[i - 1].len == off) {
		tx->ranges[i - 1].len += len;
		if (i < tx->nranges && tx->ranges[i].off == off + len) {
			tx->ranges[i - 1].len += tx->ranges[i].len;
			memmove(&tx->ranges[i], &tx->ranges[i + 1],
				(tx->nranges - i - 1) * sizeof(tx->ranges[0]));
			tx->nranges--;
		}
		return 0;
	}
	if (i < tx->nranges && tx->ranges[i].off == off + len) {
		tx->ranges[i].off = off;
		tx->ranges[i].len += len;
		return 0;
	}
	if (tx->nranges == tx->cap) {
		size_t ncap = tx->cap ? tx->cap * 2 : 64;
		struct tx_range *n = realloc(tx->ranges, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		tx->ranges = n;
		tx->cap = ncap;
	}
	memmove(&tx->ranges[i + 1], &tx->ranges[i], (tx->nranges - i) * sizeof(tx->ranges[0]));
	tx->ranges[i].off = off;
	tx->ranges[i].len = len;
	tx->nranges++;
	return 0;
}

/* Append one record with the current bytes of [off, off + len); flush it. */
static int append_record(struct ufs_tx *tx, uint64_t off, uint64_t len)
{
	struct ufs_journal *j = tx->j;
	struct ufs_journal_rec *r = (void *)(j->area + tx->used);
	const void *src = dx_media_ptr(j->m, off);
	uint64_t size = UFS_JOURNAL_REC_SIZE(len);

	if (recs_reserve(tx))
		return -ENOMEM;
	r->r_dev_off = off;
	r->r_len = (uint32_t)len;
	r->r_seq = j->head->j_seq;
	memcpy(r + 1, src, len);
	memset((char *)(r + 1) + len, 0, size - sizeof(*r) - len);
	r->r_crc = rec_crc(r, r + 1);
	dx_media_flush(j->m, r, size);
	tx->recs[tx->nrecs++] = tx->used;
	tx->used += size;
	return 0;
}

/*
 * next_gap() - the next piece of [*cur, end) not covered by a logged range;
 * *i walks the sorted ranges.  Return: true with [*gs, *ge).
 */
static bool next_gap(const struct ufs_tx *tx, size_t *i, uint64_t *cur, uint64_t end,
		     uint64_t *gs, uint64_t *ge)
{
	while (*cur < end) {
		const struct tx_range *r = *i < tx->nranges ? &tx->ranges[*i] : NULL;

		if (r && r->off < end) {
			(*i)++;
			if (r->off > *cur) {
				*gs = *cur;
				*ge = r->off;
				*cur = r->off + r->len;
				return true;
			}
			if (r->off + r->len > *cur)
				*cur = r->off + r->len;
			continue;
		}
		*gs = *cur;
		*ge = end;
		*cur = end;
		return true;
	}
	return false;
}

int ufs_tx_add(struct ufs_tx *tx, void *ptr, size_t len)
{
	struct ufs_journal *j = tx->j;
	uint64_t off = dx_media_off(j->m, ptr);
	uint64_t cur, gs, ge, end = off + len, need = 0, used0 = tx->used;
	size_t i, first;
	int ret = 0;

	if (!range_ok(j, off, len) || len > UINT32_MAX)
		return -EINVAL;
	/* pass 1: how much log do the uncovered pieces need? */
	first = range_search(tx, off);
	for (cur = off, i = first; next_gap(tx, &i, &cur, end, &gs, &ge);)
		need += UFS_JOURNAL_REC_SIZE(ge - gs);
	if (!need)
		return 0;		/* all of it is logged already */
	if (need > j->area_len - tx->used)
		return -ENOSPC;
	if (tx->used == 0) {
		/* a new transaction in an empty log: new sequence, same fence as the record */
		j->head->j_seq++;
		dx_media_flush(j->m, &j->head->j_seq, sizeof(j->head->j_seq));
	}
	/* pass 2: write the records (the ranges vector is not changed yet) */
	for (cur = off, i = first; next_gap(tx, &i, &cur, end, &gs, &ge);) {
		ret = append_record(tx, gs, ge - gs);
		if (ret)
			goto undo;
	}
	dx_media_drain(j->m);
	__atomic_store_n(&j->head->j_used, tx->used, __ATOMIC_RELEASE);
	dx_media_persist(j->m, &j->head->j_used, sizeof(j->head->j_used));
	/* pass 3: remember the new pieces */
	for (i = 0; i < tx->nrecs; i++) {
		const struct ufs_journal_rec *r = (const void *)(j->area + tx->recs[i]);

		if (tx->recs[i] < used0)
			continue;
		ret = range_insert(tx, r->r_dev_off, r->r_len);
		/* out of memory here: the record is durable, only dedup is lost */
		UDAX_BUG_ON(ret);
	}
	return 0;
undo:
	/* nothing was published: j_used still says used0 */
	while (tx->nrecs && tx->recs[tx->nrecs - 1] >= used0)
		tx->nrecs--;
	tx->used = used0;
	return ret;
}

static void tx_end(struct ufs_journal *j, bool committed)
{
	unsigned int k;

	pthread_mutex_lock(&j->hook_lock);
	for (k = 0; k < j->nhooks; k++)
		if (j->hooks[k].h->end)
			j->hooks[k].h->end(j->hooks[k].arg, committed);
	pthread_mutex_unlock(&j->hook_lock);
	j->commits++;
	pthread_mutex_unlock(&j->lock);
}

void ufs_tx_commit(struct ufs_tx *tx)
{
	struct ufs_journal *j = tx->j;
	size_t i;

	if (tx->used) {
		for (i = 0; i < tx->nranges; i++)
			dx_media_flush(j->m, dx_media_ptr(j->m, tx->ranges[i].off),
					 tx->ranges[i].len);
		dx_media_drain(j->m);
		log_empty(j);
	}
	tx_end(j, true);
}

void ufs_tx_abort(struct ufs_tx *tx)
{
	struct ufs_journal *j = tx->j;

	if (tx->used)
		rollback(j, true);
	tx_end(j, false);
}
