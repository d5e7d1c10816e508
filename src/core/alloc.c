/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - block and inode allocators over the on-media bitmaps.
 *
 * DRAM summary: a free-block count per 2 MiB chunk (512 blocks), kept on
 * the device's NUMA node.  Small requests look at partly used chunks first
 * (starting where the last small request ended), so fully free chunks stay
 * whole for huge (2 MiB aligned) runs; requests of a chunk or more take
 * whole free chunks.
 *
 * Blocks freed inside a transaction are not handed out again before it
 * commits: if it rolled back, their old owner would get them back with
 * someone else's data in them.  They are kept on a small per-transaction
 * list and join the free counts at commit (journal end hook).
 *
 * Lock: a->lock protects the bitmaps' bits, the summary, the counters and
 * the tx-freed list.  It is the innermost lock (journal mutex -> here).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "util.h"

#define CHUNK UFS_HUGE_BLOCKS		/* blocks per 2 MiB chunk */
#define BS UFS_BLOCK_SIZE

struct blk_run {
	uint64_t pblk, len;
};

struct ufs_alloc {
	struct dx_media *m;
	struct dx_dax *dax;
	struct ufs_journal *j;		/* hooks registered on it (first tx seen) */
	pthread_mutex_t lock;
	uint8_t *bbm, *ibm;		/* bitmaps, in the mapping */
	uint64_t nblocks, data_start, data_end;	/* data area [data_start, data_end) */
	uint64_t ninodes;
	uint64_t nchunks;
	uint16_t *chunk_free;		/* free blocks per chunk (tx-freed not counted) */
	size_t chunk_bytes;
	uint64_t free_blocks, free_inodes;
	uint64_t small_hint;		/* chunk where the last small request ended */
	uint64_t ino_hint;
	struct blk_run *txfree;		/* freed by the running transaction */
	size_t ntxfree, txcap;
	int64_t tx_ino_delta;		/* free inode change by the running transaction */
	/* quarantined runs, sorted, disjoint; set at mount, const after */
	struct blk_run *quar;
	size_t nquar;
	uint64_t quar_blocks;
};

static inline bool bit_test(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] & (1u << (i % 8));
}

static inline void bit_set(uint8_t *bm, uint64_t i)
{
	bm[i / 8] |= (uint8_t)(1u << (i % 8));
}

static inline void bit_clear(uint8_t *bm, uint64_t i)
{
	bm[i / 8] &= (uint8_t)~(1u << (i % 8));
}

/* Is @b in a quarantined run?  (binary search) */
static bool in_quar(const struct ufs_alloc *a, uint64_t b)
{
	size_t lo = 0, hi = a->nquar;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b < a->quar[mid].pblk)
			hi = mid;
		else if (b >= a->quar[mid].pblk + a->quar[mid].len)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static uint16_t chunk_count_bits(const struct ufs_alloc *a, uint64_t c);

/*
 * Count the allocatable blocks of chunk @c: free (clear) bits, less the
 * free ones under quarantine; blocks past the data area count as used.
 */
static uint16_t chunk_count(const struct ufs_alloc *a, uint64_t c)
{
	uint16_t n = chunk_count_bits(a, c);
	uint64_t lo = c * CHUNK, hi = lo + CHUNK;

	for (size_t i = 0; i < a->nquar; i++) {
		uint64_t s = dx_max(a->quar[i].pblk, dx_max(lo, a->data_start));
		uint64_t e = dx_min(a->quar[i].pblk + a->quar[i].len, dx_min(hi, a->data_end));

		for (uint64_t b = s; b < e; b++)
			if (!bit_test(a->bbm, b))
				n--;
	}
	return n;
}

static uint16_t chunk_count_bits(const struct ufs_alloc *a, uint64_t c)
{
	uint64_t b = c * CHUNK, end = dx_min(b + CHUNK, a->data_end);
	uint16_t n = 0;

	if (b < a->data_start)
		b = a->data_start;
	for (; b < end; b++) {
		if ((b & 63) == 0 && b + 64 <= end) {
			uint64_t w;

			memcpy(&w, a->bbm + b / 8, 8);
			n += (uint16_t)(64 - __builtin_popcountll(w));
			b += 63;
			continue;
		}
		if (!bit_test(a->bbm, b))
			n++;
	}
	return n;
}

static bool txfreed(const struct ufs_alloc *a, uint64_t b)
{
	size_t i;

	for (i = 0; i < a->ntxfree; i++)
		if (b >= a->txfree[i].pblk && b < a->txfree[i].pblk + a->txfree[i].len)
			return true;
	return false;
}

static inline bool blk_avail(const struct ufs_alloc *a, uint64_t b)
{
	return b >= a->data_start && b < a->data_end && !bit_test(a->bbm, b) &&
	       (a->ntxfree == 0 || !txfreed(a, b)) && (a->nquar == 0 || !in_quar(a, b));
}

/* journal hooks: keep the DRAM summary in step with aborts and commits */
static void alloc_restored(void *arg, uint64_t off, uint64_t len)
{
	struct ufs_alloc *a = arg;
	uint64_t bstart = dx_media_off(a->m, a->bbm);
	uint64_t bend = bstart + (a->nblocks + 7) / 8;
	uint64_t lo, hi, c, c0, c1;

	if (off + len <= bstart || off >= bend)
		return;
	lo = dx_max(off, bstart) - bstart;
	hi = dx_min(off + len, bend) - bstart;
	c0 = lo * 8 / CHUNK;
	c1 = (hi * 8 - 1) / CHUNK;
	pthread_mutex_lock(&a->lock);
	for (c = c0; c <= c1 && c < a->nchunks; c++) {
		uint16_t n = chunk_count(a, c);

		a->free_blocks += n;
		a->free_blocks -= a->chunk_free[c];
		a->chunk_free[c] = n;
	}
	pthread_mutex_unlock(&a->lock);
}

static void alloc_end(void *arg, bool committed)
{
	struct ufs_alloc *a = arg;
	size_t i;

	pthread_mutex_lock(&a->lock);
	if (committed) {
		for (i = 0; i < a->ntxfree; i++) {
			uint64_t b;

			for (b = a->txfree[i].pblk; b < a->txfree[i].pblk + a->txfree[i].len; b++) {
				/* a quarantined block stays out of the pool */
				if (a->nquar && in_quar(a, b))
					continue;
				a->chunk_free[b / CHUNK]++;
				a->free_blocks++;
			}
		}
	} else {
		/* the bitmap bytes were restored: undo the inode count change */
		a->free_inodes = (uint64_t)((int64_t)a->free_inodes - a->tx_ino_delta);
	}
	a->ntxfree = 0;
	a->tx_ino_delta = 0;
	pthread_mutex_unlock(&a->lock);
}

static const struct ufs_tx_hooks alloc_hooks = {
	.restored = alloc_restored,
	.end = alloc_end,
};

/* Register the hooks on the transaction's journal the first time we see it. */
static int alloc_hook(struct ufs_alloc *a, struct ufs_tx *tx)
{
	struct ufs_journal *j = ufs_tx_journal(tx);
	int ret;

	if (a->j == j)
		return 0;
	UDAX_BUG_ON(a->j != NULL);	/* one journal per allocator */
	ret = ufs_journal_add_hooks(j, &alloc_hooks, a);
	if (!ret)
		a->j = j;
	return ret;
}

int ufs_alloc_open(struct ufs_alloc **out, struct dx_media *m, const struct ufs_super *sb,
		   struct dx_dax *dax)
{
	struct ufs_alloc *a;
	uint64_t c, i;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->m = m;
	a->dax = dax;
	pthread_mutex_init(&a->lock, NULL);
	a->bbm = dx_media_ptr(m, sb->s_bbitmap_start * BS);
	a->ibm = dx_media_ptr(m, sb->s_ibitmap_start * BS);
	a->nblocks = sb->s_blocks_count;
	a->data_start = sb->s_data_start;
	a->data_end = sb->s_blocks_count - 1;	/* the backup superblock */
	a->ninodes = sb->s_inode_count;
	a->nchunks = (a->nblocks + CHUNK - 1) / CHUNK;
	a->chunk_bytes = a->nchunks * sizeof(uint16_t);
	a->chunk_free = dx_numa_alloc(a->chunk_bytes, dx_media_numa_node(m));
	if (!a->chunk_free) {
		free(a);
		return -ENOMEM;
	}
	/* metadata blocks must be marked used: otherwise the bitmap is corrupt */
	for (i = 0; i < a->data_start; i += 8) {
		if (i + 8 <= a->data_start ? a->bbm[i / 8] != 0xff : !bit_test(a->bbm, i)) {
			dx_seterr("%s: block bitmap at offset %" PRIu64
				    ": metadata block %" PRIu64 " is marked free",
				    dx_media_path(m), sb->s_bbitmap_start * BS, i);
			dx_numa_free(a->chunk_free, a->chunk_bytes);
			free(a);
			return -EUCLEAN;
		}
	}
	for (c = 0; c < a->nchunks; c++) {
		a->chunk_free[c] = chunk_count(a, c);
		a->free_blocks += a->chunk_free[c];
	}
	for (i = 0; i < a->ninodes; i++) {
		if ((i & 63) == 0 && i + 64 <= a->ninodes) {
			uint64_t w;

			memcpy(&w, a->ibm + i / 8, 8);
			a->free_inodes += (uint64_t)(64 - __builtin_popcountll(w));
			i += 63;
			continue;
		}
		if (!bit_test(a->ibm, i))
			a->free_inodes++;
	}
	if (!bit_test(a->ibm, 0) || !bit_test(a->ibm, UFS_ROOT_INO)) {
		dx_seterr("%s: inode bitmap at offset %" PRIu64 ": reserved slot 0 or the root is free",
			    dx_media_path(m), sb->s_ibitmap_start * BS);
		dx_numa_free(a->chunk_free, a->chunk_bytes);
		free(a);
		return -EUCLEAN;
	}
	a->small_hint = a->data_start / CHUNK;
	a->ino_hint = 2;
	*out = a;
	return 0;
}

void ufs_alloc_close(struct ufs_alloc **ap)
{
	struct ufs_alloc *a = ap ? *ap : NULL;

	if (!a)
		return;
	if (a->j)
		ufs_journal_remove_hooks(a->j, &alloc_hooks, a);
	dx_numa_free(a->chunk_free, a->chunk_bytes);
	free(a->txfree);
	free(a->quar);
	pthread_mutex_destroy(&a->lock);
	free(a);
	*ap = NULL;
}

/*
 * take_run() - log and set the bits of [pblk, pblk + n), update the summary.
 * Context: a->lock held, inside @tx.  Return: 0 or ufs_tx_add()'s error.
 */
static int take_run(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t pblk, uint64_t n)
{
	uint64_t b;
	int ret;

	ret = ufs_tx_add(tx, a->bbm + pblk / 8, (pblk + n - 1) / 8 - pblk / 8 + 1);
	if (ret)
		return ret;
	for (b = pblk; b < pblk + n; b++) {
		UDAX_BUG_ON(bit_test(a->bbm, b));
		bit_set(a->bbm, b);
		a->chunk_free[b / CHUNK]--;
	}
	a->free_blocks -= n;
	return 0;
}

/* Length of the available run starting at @b, at most @max. */
static uint64_t run_at(const struct ufs_alloc *a, uint64_t b, uint64_t max)
{
	uint64_t n = 0;

	while (n < max && blk_avail(a, b + n))
		n++;
	return n;
}

/* Is chunk @c entirely free and inside the data area? */
static bool chunk_whole(const struct ufs_alloc *a, uint64_t c)
{
	return a->chunk_free[c] == CHUNK && c * CHUNK >= a->data_start &&
	       (c + 1) * CHUNK <= a->data_end;
}

/*
 * find_chunks() - @k consecutive whole free chunks, searching from chunk
 * @from and wrapping.  Return: first chunk or UINT64_MAX.
 */
static uint64_t find_chunks(const struct ufs_alloc *a, uint64_t k, uint64_t from)
{
	uint64_t c, run = 0, i;

	if (from >= a->nchunks)
		from = 0;
	for (i = 0, c = from; i < a->nchunks + k; i++, c++) {
		if (c == a->nchunks) {
			c = 0;
			run = 0;
		}
		if (!chunk_whole(a, c)) {
			run = 0;
			continue;
		}
		if (++run == k) {
			uint64_t first = c + 1 - k;
			uint64_t b;
			bool ok = true;

			/* tx-freed blocks are clear but not counted: whole means whole */
			for (b = first * CHUNK; ok && a->ntxfree && b < (c + 1) * CHUNK; b++)
				ok = !txfreed(a, b);
			if (ok)
				return first;
			run = 0;
		}
	}
	return UINT64_MAX;
}

/*
 * find_small() - a run for a request smaller than a chunk, searching from
 * chunk @start: first a run of @want in a partly used chunk, else the
 * start of a whole free chunk, else the longest run >= @min seen.  At most
 * @budget partly used chunks are searched bit by bit before a whole chunk
 * is preferred, so a fragmented device does not cost a full bitmap scan
 * per allocation while free chunks remain (0 = no limit).
 */
static bool find_small(struct ufs_alloc *a, uint64_t start, uint64_t want, uint64_t min,
		       unsigned int budget, uint64_t *pblk, uint64_t *got)
{
	uint64_t c, i, best = 0, best_len = 0, whole = UINT64_MAX;
	unsigned int scanned = 0;

	for (i = 0, c = start; i < a->nchunks; i++, c = (c + 1) % a->nchunks) {
		uint64_t b, end;

		if (a->chunk_free[c] == 0)
			continue;
		if (chunk_whole(a, c)) {
			if (whole == UINT64_MAX)
				whole = c;
			if (budget && scanned >= budget)
				break;
			continue;
		}
		if (a->chunk_free[c] < min || (budget && scanned >= budget))
			continue;
		scanned++;
		b = dx_max(c * CHUNK, a->data_start);
		end = dx_min((c + 1) * CHUNK, a->data_end);
		while (b < end) {
			uint64_t n;

			if (!blk_avail(a, b)) {
				b++;
				continue;
			}
			n = run_at(a, b, dx_min(want, end - b));
			if (n >= want) {
				*pblk = b;
				*got = want;
				a->small_hint = c;
				return true;
			}
			if (n > best_len) {
				best = b;
				best_len = n;
			}
			b += n;
		}
	}
	if (whole != UINT64_MAX) {
		*pblk = whole * CHUNK;
		*got = want;
		a->small_hint = whole;
		return true;
	}
	if (budget && scanned >= budget)
		return find_small(a, start, want, min, 0, pblk, got);
	if (best_len >= min) {
		*pblk = best;
		*got = best_len;
		return true;
	}
	return false;
}

int ufs_alloc_blocks(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t goal, uint32_t want,
		     uint32_t min, unsigned int flags, uint64_t *pblk, uint32_t *got)
{
	uint64_t p = 0, n = 0;
	bool found = false;
	int ret;

	if (want == 0 || min == 0 || min > want)
		return -EINVAL;
	ret = alloc_hook(a, tx);
	if (ret)
		return ret;
	pthread_mutex_lock(&a->lock);
	if (a->free_blocks < min) {
		ret = -ENOSPC;
		goto out;
	}
	/* 1. right at the goal (contiguity with the file's previous extent) */
	if (goal && !(flags & UFS_ALLOC_HUGE) && blk_avail(a, goal)) {
		n = run_at(a, goal, want);
		if (n >= min && (n == want || want < CHUNK)) {
			p = goal;
			found = true;
		}
	}
	/* 2. big or huge: whole free chunks, 2 MiB aligned */
	if (!found && ((flags & UFS_ALLOC_HUGE) || want >= CHUNK)) {
		uint64_t k = (want + CHUNK - 1) / CHUNK, kmin = (min + CHUNK - 1) / CHUNK;
		uint64_t from = goal ? goal / CHUNK : a->data_start / CHUNK;

		for (; k >= kmin && k > 0; k--) {
			uint64_t c = find_chunks(a, k, from);

			if (c != UINT64_MAX) {
				p = c * CHUNK;
				n = dx_min((uint64_t)want, k * CHUNK);
				found = true;
				break;
			}
		}
	}
	/* 3. small requests (and big ones when no whole chunk is left) */
	if (!found) {
		/* no whole chunk left: a run inside a partly used one (< 512 blocks) */
		uint64_t w = dx_min((uint64_t)want, (uint64_t)CHUNK - 1);

		if (min <= w)
			found = find_small(a, goal && goal < a->nblocks ? goal / CHUNK : a->small_hint,
					   w, min, 64, &p, &n);
	}
	if (!found) {
		ret = -ENOSPC;
		goto out;
	}
	ret = take_run(a, tx, p, n);
	if (!ret) {
		*pblk = p;
		*got = (uint32_t)n;
	}
out:
	pthread_mutex_unlock(&a->lock);
	return ret;
}

int ufs_free_blocks(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t pblk, uint32_t len)
{
	uint64_t b;
	int ret;

	if (len == 0 || pblk < a->data_start || pblk >= a->data_end || len > a->data_end - pblk) {
		dx_seterr("free of blocks %" PRIu64 "+%u outside the data area", pblk, len);
		return -EINVAL;
	}
	/* I1: never give back a block whose page is tracked or referenced */
	if (a->dax)
		dx_dax_assert_free(a->dax, pblk, len);
	ret = alloc_hook(a, tx);
	if (ret)
		return ret;
	pthread_mutex_lock(&a->lock);
	for (b = pblk; b < pblk + len; b++) {
		if (!bit_test(a->bbm, b) || (a->ntxfree && txfreed(a, b))) {
			dx_seterr("free of block %" PRIu64 " which is not allocated", b);
			ret = -EINVAL;
			goto out;
		}
	}
	if (a->ntxfree == a->txcap) {
		size_t ncap = a->txcap ? a->txcap * 2 : 16;
		struct blk_run *nr = realloc(a->txfree, ncap * sizeof(*nr));

		if (!nr) {
			ret = -ENOMEM;
			goto out;
		}
		a->txfree = nr;
		a->txcap = ncap;
	}
	ret = ufs_tx_add(tx, a->bbm + pblk / 8, (pblk + len - 1) / 8 - pblk / 8 + 1);
	if (ret)
		goto out;
	for (b = pblk; b < pblk + len; b++)
		bit_clear(a->bbm, b);
	a->txfree[a->ntxfree].pblk = pblk;
	a->txfree[a->ntxfree].len = len;
	a->ntxfree++;
out:
	pthread_mutex_unlock(&a->lock);
	return ret;
}

int ufs_ialloc(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t *ino)
{
	uint64_t i, n;
	int ret;

	ret = alloc_hook(a, tx);
	if (ret)
		return ret;
	pthread_mutex_lock(&a->lock);
	ret = -ENOSPC;
	if (!a->free_inodes)
		goto out;
	for (n = 0, i = a->ino_hint; n < a->ninodes; n++, i++) {
		if (i >= a->ninodes)
			i = 0;
		if ((i & 63) == 0 && i + 64 <= a->ninodes) {
			uint64_t w;

			memcpy(&w, a->ibm + i / 8, 8);
			if (w == ~0ULL) {
				n += 63;
				i += 63;
				continue;
			}
		}
		if (bit_test(a->ibm, i))
			continue;
		ret = ufs_tx_add(tx, a->ibm + i / 8, 1);
		if (ret)
			goto out;
		bit_set(a->ibm, i);
		a->free_inodes--;
		a->tx_ino_delta--;
		a->ino_hint = i + 1;
		*ino = i;
		ret = 0;
		goto out;
	}
out:
	pthread_mutex_unlock(&a->lock);
	return ret;
}

int ufs_ifree(struct ufs_alloc *a, struct ufs_tx *tx, uint64_t ino)
{
	int ret;

	if (ino <= UFS_ROOT_INO || ino >= a->ninodes) {
		dx_seterr("free of inode %" PRIu64 ": not a freeable inode number", ino);
		return -EINVAL;
	}
	ret = alloc_hook(a, tx);
	if (ret)
		return ret;
	pthread_mutex_lock(&a->lock);
	if (!bit_test(a->ibm, ino)) {
		dx_seterr("free of inode %" PRIu64 " which is not allocated", ino);
		ret = -EINVAL;
		goto out;
	}
	ret = ufs_tx_add(tx, a->ibm + ino / 8, 1);
	if (ret)
		goto out;
	bit_clear(a->ibm, ino);
	a->free_inodes++;
	a->tx_ino_delta++;
out:
	pthread_mutex_unlock(&a->lock);
	return ret;
}

static int cmp_run(const void *x, const void *y)
{
	const struct blk_run *a = x, *b = y;

	return a->pblk < b->pblk ? -1 : a->pblk > b->pblk;
}

int ufs_alloc_quarantine(struct ufs_alloc *a, const struct ufs_blk_range *r, size_t n)
{
	struct blk_run *q;
	size_t i, w = 0;
	uint64_t c;

	if (!n)
		return 0;
	q = calloc(n + a->nquar, sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (i = 0; i < a->nquar; i++)
		q[w++] = a->quar[i];
	for (i = 0; i < n; i++) {
		uint64_t s = dx_max(r[i].pblk, a->data_start);
		uint64_t e = r[i].pblk + r[i].len < r[i].pblk ? a->data_end :
			     dx_min(r[i].pblk + r[i].len, a->data_end);

		if (s < e)
			q[w++] = (struct blk_run){ s, e - s };
	}
	qsort(q, w, sizeof(*q), cmp_run);
	n = w;
	w = 0;
	for (i = 0; i < n; i++) {
		if (w && q[i].pblk <= q[w - 1].pblk + q[w - 1].len) {
			uint64_t end = dx_max(q[w - 1].pblk + q[w - 1].len, q[i].pblk + q[i].len);

			q[w - 1].len = end - q[w - 1].pblk;
			continue;
		}
		q[w++] = q[i];
	}
	pthread_mutex_lock(&a->lock);
	free(a->quar);
	a->quar = q;
	a->nquar = w;
	a->quar_blocks = 0;
	for (i = 0; i < w; i++)
		a->quar_blocks += q[i].len;
	a->free_blocks = 0;
	for (c = 0; c < a->nchunks; c++) {
		a->chunk_free[c] = chunk_count(a, c);
		a->free_blocks += a->chunk_free[c];
	}
	pthread_mutex_unlock(&a->lock);
	return 0;
}

uint64_t ufs_alloc_quarantined(const struct ufs_alloc *a)
{
	struct ufs_alloc *w = (struct ufs_alloc *)a;
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	n = a->quar_blocks;
	pthread_mutex_unlock(&w->lock);
	return n;
}

uint64_t ufs_alloc_free_blocks(const struct ufs_alloc *a)
{
	struct ufs_alloc *w = (struct ufs_alloc *)a;	/* the lock is not part of the value */
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	n = a->free_blocks;
	pthread_mutex_unlock(&w->lock);
	return n;
}

uint64_t ufs_alloc_free_inodes(const struct ufs_alloc *a)
{
	struct ufs_alloc *w = (struct ufs_alloc *)a;
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	n = a->free_inodes;
	pthread_mutex_unlock(&w->lock);
	return n;
}

int ufs_alloc_test(const struct ufs_alloc *a, uint64_t pblk)
{
	struct ufs_alloc *w = (struct ufs_alloc *)a;
	int r;

	if (pblk >= a->nblocks)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	r = bit_test(a->bbm, pblk) ? 1 : 0;
	pthread_mutex_unlock(&w->lock);
	return r;
}

uint64_t ufs_alloc_first_free(const struct ufs_alloc *a, uint64_t pblk, uint64_t len)
{
	struct ufs_alloc *w = (struct ufs_alloc *)a;
	uint64_t b;

	/* a block past the device counts as free: nothing can free it */
	pthread_mutex_lock(&w->lock);
	for (b = pblk; b - pblk < len; b++)
		if (b >= a->nblocks || !bit_test(a->bbm, b))
			break;
	pthread_mutex_unlock(&w->lock);
	return b;
}

int ufs_alloc_itest(const struct ufs_alloc *a, uint64_t ino)
{
	struct ufs_alloc *w = (struct ufs_alloc *)a;
	int r;

	if (ino >= a->ninodes)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	r = bit_test(a->ibm, ino) ? 1 : 0;
	pthread_mutex_unlock(&w->lock);
	return r;
}
