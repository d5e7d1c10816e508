/* SPDX-License-Identifier: MIT */
/*
 * test_xarray.c - every xarray operation, checked against a flat model.
 * Built twice: test_xarray (64-slot nodes, the library's build) and
 * test_xarray_deep (this file plus xarray.c with -DXA_CHUNK_SHIFT=2, so
 * 4-slot nodes make trees ten levels deep with a few thousand indexes).
 * Also: allocation-failure injection on every allocation, node leak count
 * zero at exit, and a concurrent readers/writers stress.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dax_test.h"
#include "core/util.h"
#include "core/xarray.h"

/* ---- a failable, counting allocator ---- */
struct fail_alloc {
	long calls;		/* allocations attempted */
	long fail_at;		/* fail the allocation with this number (1-based); 0 never */
	long fail_every;	/* or every Nth; 0 never */
	long failed;
	long live;
};
static struct fail_alloc fa;

static void *fa_alloc(size_t size, bool may_block, void *arg)
{
	struct fail_alloc *f = arg;
	long n = __atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);

	(void)may_block;
	if ((f->fail_at && n == f->fail_at) || (f->fail_every && n % f->fail_every == 0)) {
		__atomic_add_fetch(&f->failed, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	__atomic_add_fetch(&f->live, 1, __ATOMIC_RELAXED);
	return malloc(size);
}

static void fa_free(void *p, size_t size, void *arg)
{
	struct fail_alloc *f = arg;

	(void)size;
	__atomic_sub_fetch(&f->live, 1, __ATOMIC_RELAXED);
	free(p);
}

static const struct xa_alloc_ops fa_ops = { fa_alloc, fa_free, &fa };

/* ---- a flat model of a small index universe ---- */
#define U 4096
struct model {
	long start[U];			/* first index of the entry covering i, or -1 */
	unsigned int order[U];		/* at start */
	void *val[U];			/* at start */
	bool mark[XA_MAX_MARKS][U];	/* at start */
};

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	for (unsigned long i = 0; i < U; i++)
		m->start[i] = -1;
}

static void model_erase(struct model *m, unsigned long index)
{
	long s = m->start[index];

	if (s < 0)
		return;
	for (unsigned long i = (unsigned long)s; i < (unsigned long)s + (1UL << m->order[s]); i++)
		m->start[i] = -1;
	for (unsigned int k = 0; k < XA_MAX_MARKS; k++)
		m->mark[k][s] = false;
	m->val[s] = NULL;
}

/* Return: 0, or -EEXIST; mirrors xa_store_order's contract. */
static int model_store(struct model *m, unsigned long index, unsigned int order, void *e,
		       unsigned int flags, bool insert_only)
{
	unsigned long base = index & ~((1UL << order) - 1), last = base + (1UL << order) - 1;

	for (unsigned long i = base; i <= last; i++) {
		long s = m->start[i];

		if (s < 0)
			continue;
		if (insert_only)
			return -EEXIST;
		if (!(flags & XA_STORE_REPLACE) &&
		    ((unsigned long)s != base || m->order[s] != order))
			return -EEXIST;
	}
	if (flags & XA_STORE_REPLACE)
		for (unsigned long i = base; i <= last; i++)
			model_erase(m, i);
	for (unsigned long i = base; i <= last; i++)
		m->start[i] = (long)base;
	m->order[base] = order;
	m->val[base] = e;
	return 0;
}

static unsigned long rnd_state = 88172645463325252ULL;
static unsigned long rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* The whole tree agrees with the model: loads, orders, marks, find order. */
static bool model_verify(struct xarray *xa, struct model *m)
{
	unsigned long i, idx;
	bool ok = true;
	void *e;

	for (i = 0; i < U; i++) {
		long s = m->start[i];
		void *want = s < 0 ? NULL : m->val[s];

		if (xa_load(xa, i) != want) {
			fprintf(stderr, "  load(%lu) = %p, want %p\n", i, xa_load(xa, i), want);
			return false;
		}
		if (s == (long)i) {
			if (xa_get_order(xa, i) != m->order[s])
				return false;
			for (unsigned int k = 0; k < XA_MAX_MARKS; k++)
				if (xa_get_mark(xa, i, k) != m->mark[k][s])
					return false;
		}
	}
	/* Forward iteration visits exactly the model's entries, in order. */
	i = 0;
	idx = 0;
	e = xa_find(xa, &idx, ~0UL, XA_PRESENT);
	while (i < U) {
		while (i < U && m->start[i] != (long)i)
			i++;
		if (i == U)
			break;
		if (!e || idx != i || e != m->val[i])
			return false;
		e = xa_find_after(xa, &idx, ~0UL, XA_PRESENT);
		i++;
	}
	ok = ok && e == NULL;
	/* Marked iteration too. */
	for (unsigned int k = 0; k < XA_MAX_MARKS && ok; k++) {
		i = 0;
		idx = 0;
		e = xa_find(xa, &idx, ~0UL, k);
		for (;;) {
			while (i < U && !(m->start[i] == (long)i && m->mark[k][i]))
				i++;
			if (i == U)
				break;
			if (!e || idx != i)
				return false;
			e = xa_find_after(xa, &idx, ~0UL, k);
			i++;
		}
		ok = e == NULL;
	}
	return ok;
}

static void *val(unsigned long v)
{
	return xa_mk_value(v);
}

/* ---- checks ---- */
static void check_empty(void)
{
	struct xarray xa;
	unsigned long idx = 0;

	xa_init(&xa);
	CHECK(xa_empty(&xa));
	CHECK(xa_load(&xa, 0) == NULL);
	CHECK(xa_load(&xa, ~0UL) == NULL);
	CHECK(xa_erase(&xa, 5) == NULL);
	CHECK(xa_find(&xa, &idx, ~0UL, XA_PRESENT) == NULL);
	CHECK(xa_find(&xa, &idx, ~0UL, XA_MARK_0) == NULL);
	CHECK(xa_mem_bytes(&xa) == 0);
	xa_destroy(&xa);
}

static void check_store_load_erase(void)
{
	struct xarray xa;
	int obj[4];

	xa_init(&xa);
	CHECK(xa_store(&xa, 0, val(1)) == NULL);
	CHECK(xa_load(&xa, 0) == val(1));
	CHECK(xa_store(&xa, 0, val(2)) == val(1));
	CHECK(xa_store(&xa, 1000000, &obj[1]) == NULL);
	CHECK(xa_load(&xa, 1000000) == &obj[1]);
	CHECK(xa_load(&xa, 999999) == NULL);
	CHECK(xa_store(&xa, ~0UL, val(3)) == NULL);
	CHECK(xa_load(&xa, ~0UL) == val(3));
	CHECK(xa_store(&xa, 1UL << 63, val(4)) == NULL);
	CHECK(xa_load(&xa, 1UL << 63) == val(4));
	CHECK(xa_erase(&xa, ~0UL) == val(3));
	CHECK(xa_erase(&xa, 1UL << 63) == val(4));
	CHECK(xa_load(&xa, ~0UL) == NULL);
	CHECK(xa_erase(&xa, 1000000) == &obj[1]);
	CHECK(xa_erase(&xa, 0) == val(2));
	CHECK(xa_empty(&xa));
	CHECK(xa_mem_bytes(&xa) == 0);
	/* Storing NULL erases; internal entries are refused. */
	xa_store(&xa, 7, val(7));
	CHECK(xa_store(&xa, 7, NULL) == val(7));
	CHECK(xa_empty(&xa));
	CHECK(xa_err(xa_store(&xa, 3, (void *)(uintptr_t)0x1002)) == -EINVAL);
	CHECK(xa_err(xa_store_order(&xa, 3, 70, val(1), 0)) == -EINVAL);
	CHECK(xa_empty(&xa));
	xa_destroy(&xa);
}

static void check_insert_cmpxchg(void)
{
	struct xarray xa;

	xa_init(&xa);
	CHECK_EQ(xa_insert_order(&xa, 10, 0, val(1)), 0);
	CHECK_EQ(xa_insert_order(&xa, 10, 0, val(2)), -EEXIST);
	CHECK(xa_load(&xa, 10) == val(1));
	/* cmpxchg: wrong old -> returns current, nothing changes. */
	CHECK(xa_cmpxchg(&xa, 10, val(9), val(3)) == val(1));
	CHECK(xa_load(&xa, 10) == val(1));
	CHECK(xa_cmpxchg(&xa, 10, val(1), val(3)) == val(1));
	CHECK(xa_load(&xa, 10) == val(3));
	/* NULL old inserts, NULL new erases. */
	CHECK(xa_cmpxchg(&xa, 11, NULL, val(4)) == NULL);
	CHECK(xa_load(&xa, 11) == val(4));
	CHECK(xa_cmpxchg(&xa, 11, val(4), NULL) == val(4));
	CHECK(xa_load(&xa, 11) == NULL);
	/* cmpxchg on a multi-order entry keeps its extent. */
	CHECK(xa_store_order(&xa, 1024, 9, val(5), 0) == NULL);
	CHECK(xa_cmpxchg(&xa, 1100, val(5), val(6)) == val(5));
	CHECK(xa_load(&xa, 1024) == val(6) && xa_load(&xa, 1535) == val(6));
	CHECK_EQ(xa_get_order(&xa, 1300), 9);
	xa_erase(&xa, 10);
	xa_erase(&xa, 1500);
	CHECK(xa_empty(&xa));
	xa_destroy(&xa);
}

static void check_multiorder(void)
{
	struct xarray xa;
	unsigned long idx;

	xa_init(&xa);
	CHECK(xa_store_order(&xa, 700, 9, val(1), 0) == NULL);	/* -> [512, 1023] */
	CHECK(xa_load(&xa, 511) == NULL);
	CHECK(xa_load(&xa, 512) == val(1));
	CHECK(xa_load(&xa, 1023) == val(1));
	CHECK(xa_load(&xa, 1024) == NULL);
	CHECK_EQ(xa_get_order(&xa, 600), 9);
	/* A small entry inside a huge one is refused. */
	CHECK_EQ(xa_err(xa_store(&xa, 600, val(2))), -EEXIST);
	CHECK_EQ(xa_insert_order(&xa, 600, 0, val(2)), -EEXIST);
	/* A bigger entry over it is refused, a same-extent store replaces. */
	CHECK_EQ(xa_err(xa_store_order(&xa, 0, 10, val(2), 0)), -EEXIST);
	CHECK(xa_store_order(&xa, 512, 9, val(3), 0) == val(1));
	/* A huge entry over small ones is refused ("never upgrade small"). */
	CHECK(xa_store(&xa, 1030, val(4)) == NULL);
	CHECK_EQ(xa_err(xa_store_order(&xa, 1024, 9, val(5), 0)), -EEXIST);
	CHECK(xa_load(&xa, 1024) == NULL && xa_load(&xa, 1030) == val(4));
	/* find returns a covering entry with its first index. */
	idx = 800;
	CHECK(xa_find(&xa, &idx, ~0UL, XA_PRESENT) == val(3));
	CHECK_EQ(idx, 512);
	CHECK(xa_find_after(&xa, &idx, ~0UL, XA_PRESENT) == val(4));
	CHECK_EQ(idx, 1030);
	/* Downgrade: an explicit replace splits nothing, it replaces. */
	CHECK(xa_store_order(&xa, 600, 0, val(6), XA_STORE_REPLACE) == val(3));
	CHECK(xa_load(&xa, 512) == NULL && xa_load(&xa, 600) == val(6));
	/* Upgrade by explicit replace drops the small entries in the range. */
	CHECK(xa_store_order(&xa, 1024, 9, val(7), XA_STORE_REPLACE) == NULL);
	CHECK(xa_load(&xa, 1030) == val(7) && xa_load(&xa, 1535) == val(7));
	/* Erase through any index of the extent. */
	CHECK(xa_erase(&xa, 1535) == val(7));
	CHECK(xa_load(&xa, 1024) == NULL);
	CHECK(xa_erase(&xa, 600) == val(6));
	CHECK(xa_empty(&xa));
	/* Orders at and above the fan-out, up at high indexes. */
	for (unsigned int o = 0; o < 20; o++) {
		unsigned long base = (1UL << 40) + (3UL << o);

		base &= ~((1UL << o) - 1);
		CHECK(xa_store_order(&xa, base + ((1UL << o) >> 1), o, val(o), 0) == NULL);
		CHECK(xa_load(&xa, base) == val(o));
		CHECK(xa_load(&xa, base + (1UL << o) - 1) == val(o));
		CHECK_EQ(xa_get_order(&xa, base), o);
		CHECK(xa_erase(&xa, base) == val(o));
		CHECK(xa_empty(&xa));
	}
	/* A huge entry at the very top of the index space. */
	CHECK(xa_store_order(&xa, ~0UL, 9, val(8), 0) == NULL);
	CHECK(xa_load(&xa, ~0UL - 511) == val(8));
	idx = ~0UL - 3;
	CHECK(xa_find(&xa, &idx, ~0UL, XA_PRESENT) == val(8));
	CHECK(xa_find_after(&xa, &idx, ~0UL, XA_PRESENT) == NULL);
	CHECK(xa_erase(&xa, ~0UL) == val(8));
	CHECK(xa_empty(&xa));
	xa_destroy(&xa);
}

static void check_marks(void)
{
	struct xarray xa;
	unsigned long idx, n;
	void *e;

	xa_init(&xa);
	for (unsigned long i = 0; i < 10000; i += 7)
		xa_store(&xa, i, val(i));
	xa_store_order(&xa, 20480, 9, val(20480), 0);
	CHECK(!xa_get_mark(&xa, 14, XA_MARK_0));
	xa_set_mark(&xa, 14, XA_MARK_0);
	xa_set_mark(&xa, 9996, XA_MARK_0);
	xa_set_mark(&xa, 20700, XA_MARK_1);	/* inside the huge entry */
	xa_set_mark(&xa, 15, XA_MARK_2);		/* no entry: no mark */
	CHECK(xa_get_mark(&xa, 14, XA_MARK_0));
	CHECK(!xa_get_mark(&xa, 14, XA_MARK_1));
	CHECK(xa_get_mark(&xa, 20480, XA_MARK_1));
	CHECK(!xa_get_mark(&xa, 15, XA_MARK_2));
	idx = 0;
	CHECK(xa_find(&xa, &idx, ~0UL, XA_MARK_2) == NULL);
	idx = 0;
	CHECK(xa_find(&xa, &idx, ~0UL, XA_MARK_0) == val(14) && idx == 14);
	CHECK(xa_find_after(&xa, &idx, ~0UL, XA_MARK_0) == val(9996) && idx == 9996);
	CHECK(xa_find_after(&xa, &idx, ~0UL, XA_MARK_0) == NULL);
	idx = 15;
	CHECK(xa_find(&xa, &idx, 9995, XA_MARK_0) == NULL);	/* max honoured */
	idx = 20600;
	CHECK(xa_find(&xa, &idx, ~0UL, XA_MARK_1) == val(20480) && idx == 20480);
	/* Replacing keeps marks; clearing propagates (the root forgets it). */
	xa_store(&xa, 14, val(1));
	CHECK(xa_get_mark(&xa, 14, XA_MARK_0));
	xa_clear_mark(&xa, 14, XA_MARK_0);
	xa_clear_mark(&xa, 9996, XA_MARK_0);
	idx = 0;
	CHECK(xa_find(&xa, &idx, ~0UL, XA_MARK_0) == NULL);
	/* Erase clears marks. */
	xa_erase(&xa, 20480);
	xa_store_order(&xa, 20480, 9, val(1), 0);
	CHECK(!xa_get_mark(&xa, 20480, XA_MARK_1));
	/* Mark everything, count by marked iteration. */
	n = 0;
	for (unsigned long i = 0; i < 10000; i += 7)
		xa_set_mark(&xa, i, XA_MARK_2);
	idx = 0;
	for (e = xa_find(&xa, &idx, ~0UL, XA_MARK_2); e;
	     e = xa_find_after(&xa, &idx, ~0UL, XA_MARK_2))
		n++;
	CHECK_EQ(n, (10000 + 6) / 7);
	for (unsigned long i = 0; i < 10000; i += 7)
		xa_erase(&xa, i);
	xa_erase(&xa, 20480);
	CHECK(xa_empty(&xa));
	xa_destroy(&xa);
}

static void check_cursor_pause(void)
{
	struct xarray xa;
	struct xa_cursor c;
	unsigned long seen = 0, sum = 0;
	void *e;

	xa_init(&xa);
	for (unsigned long i = 0; i < 3000; i += 3)
		xa_store(&xa, i, val(i));
	xa_store_order(&xa, 4096, 9, val(4096), 0);
	xa_cursor_init(&c, &xa, 10, 5000, XA_PRESENT);
	xa_lock(&xa);
	while ((e = __xa_cursor_next(&c))) {
		CHECK(xa_to_value(e) == c.index);
		seen++;
		sum += c.index;
		if (seen % 100 == 0) {
			/* Drop the lock mid-walk; change the tree behind us and ahead. */
			xa_cursor_pause(&c);
			xa_unlock(&xa);
			xa_erase(&xa, c.index);		/* behind: not seen again */
			xa_store(&xa, c.index + 1, val(c.index + 1));	/* ahead: seen */
			xa_lock(&xa);
		}
	}
	xa_unlock(&xa);
	/* 12, 15, ... 2997 is 996 entries, +9 inserted (the 10th is past 3000? no) */
	CHECK(c.done);
	CHECK(seen >= 996 + 9);
	CHECK_EQ(c.index, 4096);
	CHECK_EQ(c.order, 9);
	/* Range ends inside an entry: the cursor still returns it, once. */
	xa_cursor_init(&c, &xa, 4200, 4300, XA_PRESENT);
	xa_lock(&xa);
	CHECK(__xa_cursor_next(&c) == val(4096));
	CHECK(__xa_cursor_next(&c) == NULL);
	xa_unlock(&xa);
	(void)sum;
	xa_destroy(&xa);
}

/* Erase each entry the cursor returns, lock held throughout: every entry
 * is seen exactly once even as leaves empty and are freed under it. */
static void check_cursor_erase_walk(void)
{
	struct xarray xa;
	struct xa_cursor c;
	unsigned long n = 0, want = 0, last = 0;
	void *e;

	xa_init(&xa);
	for (unsigned long i = 0; i < 20000; i += 3, want++)
		xa_store(&xa, i, val(i));
	for (unsigned long i = 1UL << 20; i < (1UL << 20) + 64 * 512; i += 512, want++)
		xa_store_order(&xa, i, 9, val(i), 0);
	xa_store(&xa, 1UL << 40, val(1UL << 40));
	want++;
	xa_cursor_init(&c, &xa, 0, ~0UL, XA_PRESENT);
	xa_lock(&xa);
	while ((e = __xa_cursor_next(&c))) {
		CHECK(xa_to_value(e) == c.index);
		CHECK(n == 0 || c.index > last);
		last = c.index;
		if (n % 2)
			CHECK(__xa_erase(&xa, c.index) == e);
		else
			CHECK(__xa_cursor_erase(&c) == e);
		n++;
	}
	xa_unlock(&xa);
	CHECK_EQ(n, want);
	CHECK(xa_empty(&xa));
	/* A marked walk over a sub-range, without erasing. */
	for (unsigned long i = 0; i < 5000; i++) {
		xa_store(&xa, i, val(i));
		if (i % 10 == 0)
			xa_set_mark(&xa, i, XA_MARK_1);
	}
	n = 0;
	xa_cursor_init(&c, &xa, 95, 4005, XA_MARK_1);
	xa_lock(&xa);
	while ((e = __xa_cursor_next(&c))) {
		CHECK(c.index % 10 == 0 && c.index >= 95 && c.index <= 4005);
		n++;
	}
	xa_unlock(&xa);
	CHECK_EQ(n, (4000 - 100) / 10 + 1);
	for (unsigned long i = 0; i < 5000; i++)
		xa_erase(&xa, i);
	CHECK(xa_empty(&xa));
	xa_destroy(&xa);
}

/* Random operations against the model. */
static void model_ops(struct xarray *xa, struct model *m, unsigned int nops, bool enomem_ok)
{
	for (unsigned int n = 0; n < nops; n++) {
		unsigned long r = rnd(), index = r % U;
		unsigned int order = (unsigned int)((r >> 12) % 11);
		unsigned int op = (unsigned int)((r >> 20) % 8);
		void *e = val(rnd() % 100000);
		void *old;
		int mr, xr;

		if ((r >> 24) % 4 != 0)
			order = 0;	/* mostly small */
		if (index + (1UL << order) > U)
			order = 0;
		switch (op) {
		case 0: case 1: case 2: {	/* store */
			unsigned int flags = op == 2 ? XA_STORE_REPLACE : 0;
			long s = m->start[index];
			void *want = s < 0 ? NULL : m->val[s];

			old = xa_store_order(xa, index, order, e, flags);
			if (xa_is_err(old)) {
				xr = xa_err(old);
				if (xr == -ENOMEM && enomem_ok)
					break;
				mr = model_store(m, index, order, e, flags, false);
				CHECK_EQ(xr, mr);
				break;
			}
			mr = model_store(m, index, order, e, flags, false);
			CHECK_EQ(mr, 0);
			CHECK(old == want);
			break;
		}
		case 3: {			/* insert */
			xr = xa_insert_order(xa, index, order, e);
			if (xr == -ENOMEM && enomem_ok)
				break;
			mr = model_store(m, index, order, e, 0, true);
			CHECK_EQ(xr, mr);
			break;
		}
		case 4: {			/* erase */
			long s = m->start[index];

			old = xa_erase(xa, index);
			CHECK(old == (s < 0 ? NULL : m->val[s]));
			model_erase(m, index);
			break;
		}
		case 5: {			/* cmpxchg */
			long s = m->start[index];
			void *cur = s < 0 ? NULL : m->val[s];
			void *expect = (r >> 30) & 1 ? cur : val(999999);

			old = xa_cmpxchg(xa, index, expect, e);
			if (xa_is_err(old)) {
				CHECK(enomem_ok && xa_err(old) == -ENOMEM);
				break;
			}
			CHECK(old == cur);
			if (cur == expect) {
				if (s < 0)
					model_store(m, index, 0, e, 0, false);
				else
					m->val[s] = e;
			}
			break;
		}
		default: {			/* marks */
			xa_mark_t k = (xa_mark_t)((r >> 32) % XA_MAX_MARKS);
			long s = m->start[index];

			if (op == 6) {
				xa_set_mark(xa, index, k);
				if (s >= 0)
					m->mark[k][s] = true;
			} else {
				xa_clear_mark(xa, index, k);
				if (s >= 0)
					m->mark[k][s] = false;
			}
			break;
		}
		}
	}
}

static void check_model_random(void)
{
	static struct model m;
	struct xarray xa;

	for (int round = 0; round < 20; round++) {
		xa_init(&xa);
		model_init(&m);
		model_ops(&xa, &m, 400, false);
		CHECK(model_verify(&xa, &m));
		/* Empty it through erases: no node may be left. */
		for (unsigned long i = 0; i < U; i++)
			xa_erase(&xa, i);
		CHECK(xa_empty(&xa));
		CHECK_EQ(xa_mem_bytes(&xa), 0);
		xa_destroy(&xa);
	}
}

/*
 * Allocation failure injection: fail the 1st, 2nd, ... Nth allocation of a
 * fixed operation sequence (and, separately, every 3rd).  Every failure is
 * -ENOMEM with the tree unchanged, and no node leaks.
 */
static void check_enomem(void)
{
	static struct model m;
	struct xarray xa;
	long total;

	xa_set_alloc_ops(&fa_ops);
	memset(&fa, 0, sizeof(fa));
	rnd_state = 12345;
	xa_init(&xa);
	model_init(&m);
	model_ops(&xa, &m, 300, false);
	xa_destroy(&xa);
	total = fa.calls;
	CHECK(total > 10);
	CHECK_EQ(fa.live, 0);
	for (long n = 1; n <= total + 1; n++) {
		memset(&fa, 0, sizeof(fa));
		fa.fail_at = n;
		rnd_state = 12345;
		xa_init(&xa);
		model_init(&m);
		model_ops(&xa, &m, 300, true);
		if (!model_verify(&xa, &m)) {
			CHECK(!"tree differs from model after an injected failure");
			fprintf(stderr, "  fail_at=%ld\n", n);
		}
		xa_destroy(&xa);
		CHECK_EQ(fa.live, 0);
	}
	/* Fail both attempts of an allocation: the store must report -ENOMEM. */
	memset(&fa, 0, sizeof(fa));
	fa.fail_every = 1;
	xa_init(&xa);
	CHECK_EQ(xa_err(xa_store(&xa, 5, val(5))), -ENOMEM);
	CHECK(xa_empty(&xa));
	CHECK_EQ(xa_insert_order(&xa, 5, 9, val(5)), -ENOMEM);
	CHECK(xa_err(xa_cmpxchg(&xa, 5, NULL, val(5))) == -ENOMEM);
	CHECK(xa_empty(&xa));
	/* The first (lock held) attempt fails, the retry without the lock works. */
	fa.fail_every = 2;
	fa.calls = 0;
	CHECK(xa_store(&xa, 5, val(5)) == NULL);
	CHECK(xa_load(&xa, 5) == val(5));
	xa_destroy(&xa);
	CHECK_EQ(fa.live, 0);
	/* Every third allocation failing, a long random run. */
	memset(&fa, 0, sizeof(fa));
	fa.fail_every = 3;
	xa_init(&xa);
	model_init(&m);
	model_ops(&xa, &m, 3000, true);
	CHECK(model_verify(&xa, &m));
	CHECK(fa.failed > 0);
	xa_destroy(&xa);
	CHECK_EQ(fa.live, 0);
	xa_set_alloc_ops(NULL);
}

/* Deep trees: what the shrunken fan-out build is for. */
static void check_deep(void)
{
	struct xarray xa;
	unsigned long idx, n = 0;
	void *e;

	xa_init(&xa);
	for (unsigned long i = 0; i < 64; i++)
		CHECK(xa_store(&xa, i << 26 | i, val(i)) == NULL);
	for (unsigned long i = 0; i < 64; i++)
		CHECK(xa_load(&xa, i << 26 | i) == val(i));
	idx = 0;
	for (e = xa_find(&xa, &idx, ~0UL, XA_PRESENT); e;
	     e = xa_find_after(&xa, &idx, ~0UL, XA_PRESENT)) {
		CHECK_EQ(idx, n << 26 | n);
		n++;
	}
	CHECK_EQ(n, 64);
	for (unsigned long i = 0; i < 64; i++)
		CHECK(xa_erase(&xa, i << 26 | i) == val(i));
	CHECK(xa_empty(&xa));
	CHECK_EQ(xa.nr_nodes, 0);
	xa_destroy(&xa);
}

/* ---- concurrent readers and writers ---- */
#define STRESS_KEYS 20000
static struct xarray stress_xa;
static int stress_stop;

static void *stress_writer(void *arg)
{
	unsigned long id = (unsigned long)arg, s = 0x9E3779B97F4A7C15ULL * (id + 1);

	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		unsigned long k;

		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		k = (s % (STRESS_KEYS / 2)) * 2 + id;	/* writer id owns keys k % 2 == id */
		if (s & 0x100000) {
			void *old = xa_store(&stress_xa, k, val(k));

			CHECK(old == NULL || old == val(k));
		} else if (s & 0x200000) {
			unsigned long base = (k / 512) * 512 + (1UL << 30);
			void *old = xa_store_order(&stress_xa, base, 9, val(base), 0);

			CHECK(old == NULL || old == val(base) || xa_err(old) == -EEXIST);
		} else {
			void *old = xa_erase(&stress_xa, k | (s & 0x400000 ? (1UL << 30) : 0));

			CHECK(old == NULL || xa_is_value(old));
		}
	}
	return NULL;
}

static void *stress_reader(void *arg)
{
	unsigned long s = (unsigned long)arg + 77, n = 0;

	(void)arg;
	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		unsigned long k, idx;
		void *e;

		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		k = s % STRESS_KEYS;
		e = xa_load(&stress_xa, k);
		CHECK(e == NULL || e == val(k));
		idx = k | (1UL << 30);
		e = xa_find(&stress_xa, &idx, ~0UL, XA_PRESENT);
		CHECK(e == NULL || (xa_to_value(e) == idx && idx % 512 == 0));
		n++;
	}
	return (void *)n;
}

static void check_concurrent(void)
{
	pthread_t w[2], r[2];
	struct timespec ts = { 0, 300 * 1000 * 1000 };

	xa_init(&stress_xa);
	stress_stop = 0;
	for (unsigned long i = 0; i < 2; i++) {
		pthread_create(&w[i], NULL, stress_writer, (void *)i);
		pthread_create(&r[i], NULL, stress_reader, (void *)i);
	}
	nanosleep(&ts, NULL);
	__atomic_store_n(&stress_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		pthread_join(w[i], NULL);
		pthread_join(r[i], NULL);
	}
	xa_destroy(&stress_xa);
}

int main(void)
{
	printf("xarray fan-out: %u slots per node, %zu bytes per node\n",
	       1U << xa_chunk_shift(), xa_node_size());
#ifdef TEST_DEEP
	CHECK_EQ(xa_chunk_shift(), 2);
#endif
	RUN(check_empty);
	RUN(check_store_load_erase);
	RUN(check_insert_cmpxchg);
	RUN(check_multiorder);
	RUN(check_marks);
	RUN(check_cursor_pause);
	RUN(check_cursor_erase_walk);
	RUN(check_model_random);
	RUN(check_deep);
	RUN(check_enomem);
	RUN(check_concurrent);
	/* Leak count: every node of every tree above is gone. */
	CHECK_EQ(xa_nodes_live(), 0);
	return t_exit("test_xarray");
}
