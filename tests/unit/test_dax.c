/* SPDX-License-Identifier: MIT */
/*
 * test_dax.c - the page lifecycle of DESIGN.md section 2, transition by
 * transition; the I1 free-path assertion; entry locks and the wait table;
 * break_layouts and its policies; and the regression tests for the kernel
 * bugs the design names:
 *   - mapping_mapped(): a pin that outlives the mapping still blocks
 *     break_layouts (check_pin_outlives_mapping);
 *   - a locked entry is waited on, not skipped (check_locked_entry_waited);
 *   - fuse's end = 0: a range to end of file covers the whole file
 *     (check_range_to_eof);
 *   - a deleted entry wakes all its waiters (check_delete_wakes_all).
 * The waiter/waker stress is in test_dax_stress.c.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dax.h"
#include "core/dax_int.h"
#include "dax_test.h"
#include "core/util.h"

#define MS 1000000ULL
#define EOF_ UDAX_END_OF_FILE

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct dx_dax *dax_new(enum dx_policy pol, const struct dx_dax_ops *ops,
				void *arg)
{
	struct dx_dax_opts o = { .policy = pol, .ops = ops, .ops_arg = arg, .numa_node = -1 };
	struct dx_dax *d = NULL;

	CHECK_EQ(dx_dax_new(&d, &o), 0);
	return d;
}

static struct dx_dax_stats stats(struct dx_dax *d)
{
	struct dx_dax_stats s;

	dx_dax_stats(d, &s);
	return s;
}

/* Track under the layout lock, as the fs layer does. */
static int track(struct dx_mapping *m, uint64_t index, uint64_t pfn, unsigned int order,
		 enum dx_ref kind, struct dx_page **p)
{
	int r;

	dx_layout_lock_shared(m);
	r = dx_track(m, index, pfn, order, kind, p);
	dx_layout_unlock_shared(m);
	return r;
}

static int do_break(struct dx_mapping *m, uint64_t start, uint64_t end,
	       const struct dx_wait_ctx *w)
{
	int r;

	dx_layout_lock_excl(m);
	r = dx_break_layouts(m, start, end, w);
	dx_layout_unlock_excl(m);
	return r;
}

/* Join, failing the test (and exiting: a thread is stuck) after @ms. */
static void *join_within(pthread_t t, unsigned int ms)
{
	struct timespec ts;
	void *ret = NULL;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(t, &ret, &ts)) {
		CHECK(!"thread did not finish in time");
		t_exit("test_dax");
		_exit(1);
	}
	return ret;
}

/* ---- the I1 assertion, caught ---- */
static sigjmp_buf bug_jb;
static int bug_fired;

static void bug_handler(const char *file, int line, const char *cond)
{
	(void)file;
	(void)line;
	(void)cond;
	bug_fired++;
	siglongjmp(bug_jb, 1);
}

/* Return: true if dx_dax_assert_free() fired (aborted) for the range. */
static bool assert_free_fires(struct dx_dax *d, uint64_t pfn, uint64_t n)
{
	volatile bool fired = false;

	dx_set_bug_handler(bug_handler);
	if (sigsetjmp(bug_jb, 1) == 0)
		dx_dax_assert_free(d, pfn, n);
	else
		fired = true;
	dx_set_bug_handler(NULL);
	return fired;
}

/* ---- checks ---- */

/* I1 is always on: without a handler, freeing a busy block aborts. */
static void check_i1_aborts(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *p;
	int status = 0;
	pid_t pid;

	dx_mapping_init(&m, d, 99);
	dx_layout_lock_shared(&m);
	CHECK_EQ(dx_track(&m, 0, 123, 0, UDAX_REF_PIN, &p), 0);
	dx_layout_unlock_shared(&m);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* The allocator's free path, on a pinned block. */
		freopen("/dev/null", "w", stderr);
		dx_dax_assert_free(d, 123, 1);
		_exit(0);
	}
	CHECK(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	/* An idle untracked neighbour is fine. */
	dx_dax_assert_free(d, 124, 1);
	dx_page_put(p, UDAX_REF_PIN);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	dx_dax_assert_free(d, 123, 1);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}
static void check_policy_names(void)
{
	enum dx_policy p;

	CHECK_EQ(dx_policy_parse("default", &p), 0);
	CHECK_EQ(p, UDAX_POLICY_DEFAULT);
	CHECK_EQ(dx_policy_parse("untrack-first", &p), 0);
	CHECK_EQ(p, UDAX_POLICY_UNTRACK_FIRST);
	CHECK_EQ(dx_policy_parse("UNSAFE", &p), 0);
	CHECK_EQ(p, UDAX_POLICY_UNSAFE);
	CHECK_EQ(dx_policy_parse("fast", &p), -EINVAL);
	CHECK(!strcmp(dx_policy_name(UDAX_POLICY_UNTRACK_FIRST), "untrack-first"));
}

/*
 * Each transition: block free -> block allocated -> pfn untracked -> pfn
 * tracked -> page free -> page busy -> page free -> pfn untracked -> block free.
 */
static void check_lifecycle(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *p, *p2;
	struct dx_page_info pi;
	uint64_t pfn = 1000;

	CHECK_EQ(dx_mapping_init(&m, d, 42), 0);
	/* block allocated, pfn untracked: no handle, no DRAM, free is allowed. */
	CHECK(!dx_dax_pfn_busy(d, pfn, 1));
	CHECK(!assert_free_fires(d, pfn, 1));
	CHECK_EQ(stats(d).handle_bytes, 0);
	/* tracked: a layout grant maps it (one MAP ref). */
	CHECK_EQ(track(&m, 7, pfn, 0, UDAX_REF_MAP, &p), 0);
	dx_page_info(p, &pi);
	CHECK(pi.ino == 42 && pi.index == 7 && pi.pfn == pfn && pi.order == 0);
	CHECK(pi.refcount == 1 && pi.mapcount == 1 && pi.pincount == 0 && pi.tracked);
	CHECK(dx_entry_pfn(dx_entry_peek(&m, 7)) == pfn);
	CHECK_EQ(stats(d).tracked_entries, 1);
	CHECK_EQ(stats(d).live_handles, 1);
	CHECK(dx_dax_pfn_busy(d, pfn, 1));
	CHECK(assert_free_fires(d, pfn, 1));
	/* The same page granted again: same handle, another ref. */
	CHECK_EQ(track(&m, 7, pfn, 0, UDAX_REF_MAP, &p2), 0);
	CHECK(p2 == p && dx_page_refcount(p) == 2);
	/* Another pfn at that index, or that pfn at another index: refused. */
	CHECK_EQ(track(&m, 7, pfn + 1, 0, UDAX_REF_MAP, &p2), -EEXIST);
	CHECK_EQ(track(&m, 8, pfn, 0, UDAX_REF_MAP, &p2), -EEXIST);
	/* busy: a pin. */
	dx_layout_lock_shared(&m);
	CHECK_EQ(dx_pin_get(&m, p), 0);
	dx_layout_unlock_shared(&m);
	dx_page_info(p, &pi);
	CHECK(pi.refcount == 3 && pi.pincount == 1 && pi.mapcount == 2);
	CHECK_EQ(stats(d).busy_handles, 1);
	/* page free: every ref dropped; still tracked (tracking takes none). */
	dx_page_put(p, UDAX_REF_PIN);
	dx_page_put(p, UDAX_REF_MAP);
	dx_page_put(p, UDAX_REF_MAP);
	CHECK_EQ(dx_page_refcount(p), 0);
	CHECK_EQ(stats(d).busy_handles, 0);
	CHECK_EQ(stats(d).live_handles, 1);
	CHECK(assert_free_fires(d, pfn, 1));	/* tracked: still not free */
	/* page busy again through a new grant of the tracked page, then free. */
	CHECK_EQ(track(&m, 7, pfn, 0, UDAX_REF_ACCESS, &p2), 0);
	CHECK(p2 == p && dx_page_refcount(p) == 1);
	dx_page_put(p, UDAX_REF_ACCESS);
	/* pfn untracked: break_layouts of an idle page deletes it at once. */
	{
		struct dx_break_stats bs;
		struct dx_wait_ctx w = { .stats = &bs };

		CHECK_EQ(do_break(&m, 0, EOF_, &w), 0);
		CHECK_EQ(bs.passes, 1);
		CHECK_EQ(bs.waits, 0);
		CHECK(bs.t_start && bs.t_start <= bs.t_idle && bs.t_idle <= bs.t_done);
	}
	CHECK_EQ(dx_entry_peek(&m, 7), 0);
	CHECK_EQ(stats(d).tracked_entries, 0);
	CHECK_EQ(stats(d).live_handles, 0);
	/* block free: allowed, and DRAM is back to zero. */
	CHECK(!dx_dax_pfn_busy(d, pfn, 1));
	CHECK(!assert_free_fires(d, pfn, 1));
	CHECK_EQ(stats(d).handle_bytes, 0);
	CHECK_EQ(dx_mapping_mem_bytes(&m), 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
	CHECK(d == NULL);
	dx_dax_delete(&d);	/* NULL-safe */
}

static void check_huge(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *h, *s, *x;
	uint64_t e;

	dx_mapping_init(&m, d, 1);
	CHECK_EQ(track(&m, 512, 4096, UDAX_HUGE_ORDER, UDAX_REF_MAP, &h), 0);
	e = dx_entry_peek(&m, 700);
	CHECK(dx_entry_huge(e) && dx_entry_pfn(e) == 4096 && !dx_entry_locked(e));
	CHECK_EQ(dx_entry_order(e), UDAX_HUGE_ORDER);
	/* One handle for the whole 2 MiB. */
	CHECK_EQ(stats(d).live_handles, 1);
	/* A small entry inside it, or at a pfn inside it: refused. */
	CHECK_EQ(track(&m, 600, 9999, 0, UDAX_REF_MAP, &x), -EEXIST);
	CHECK_EQ(track(&m, 5, 4096 + 88, 0, UDAX_REF_MAP, &x), -EEXIST);
	/* Unaligned huge: -EINVAL.  Huge over small entries: never upgraded. */
	CHECK_EQ(track(&m, 1030, 8192, UDAX_HUGE_ORDER, UDAX_REF_MAP, &x), -EINVAL);
	CHECK_EQ(track(&m, 1030, 20000, 0, UDAX_REF_MAP, &s), 0);
	CHECK_EQ(track(&m, 1024, 8192, UDAX_HUGE_ORDER, UDAX_REF_MAP, &x), -EEXIST);
	/* Small pfn inside a new huge pfn range: refused. */
	CHECK_EQ(track(&m, 2048, 19968, UDAX_HUGE_ORDER, UDAX_REF_MAP, &x), -EEXIST);
	/* The free path sees the huge handle from any of its pfns. */
	CHECK(dx_dax_pfn_busy(d, 4096 + 511, 1));
	CHECK(!dx_dax_pfn_busy(d, 4096 + 512, 1));
	CHECK(dx_dax_pfn_busy(d, 4000, 100));
	CHECK(assert_free_fires(d, 4096 + 300, 1));
	/* A break of one page inside the huge entry breaks all of it. */
	dx_page_put(h, UDAX_REF_MAP);
	CHECK_EQ(do_break(&m, 600, 600, NULL), 0);
	CHECK_EQ(dx_entry_peek(&m, 512), 0);
	CHECK(!dx_dax_pfn_busy(d, 4096, 512));
	CHECK_EQ(stats(d).live_handles, 1);	/* the small one at 1030 */
	dx_page_put(s, UDAX_REF_MAP);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	CHECK_EQ(stats(d).live_handles, 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- threads used by several checks ---- */
struct brk_arg {
	struct dx_mapping *m;
	uint64_t start, end;
	struct dx_wait_ctx w;
	struct dx_break_stats bs;
	int ret;
	int done;			/* atomic */
	uint64_t t_ret;
};

static void *brk_thread(void *arg)
{
	struct brk_arg *a = arg;

	a->w.stats = &a->bs;
	a->ret = do_break(a->m, a->start, a->end, &a->w);
	a->t_ret = dx_now_ns();
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool wait_for_waiters(struct dx_dax *d, uint64_t n)
{
	for (int i = 0; i < 2000; i++) {
		if (stats(d).waiters >= n)
			return true;
		sleep_ms(1);
	}
	return false;
}

static int waiter_cb(const struct dx_waiter_info *wi, void *arg)
{
	struct dx_waiter_info *out = arg;

	*out = *wi;
	return 0;
}

/*
 * Regression (the mapping_mapped() bug): the client munmaps (MAP ref gone)
 * but its io_uring registration still pins the page.  break_layouts must
 * wait for the pin, not conclude "not mapped, so idle".
 */
static void check_pin_outlives_mapping(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *p;
	struct brk_arg a = { .m = &m, .start = 0, .end = EOF_ };
	struct dx_waiter_info wi = { 0 };
	uint64_t t_unpin;
	pthread_t t;

	dx_mapping_init(&m, d, 5);
	CHECK_EQ(track(&m, 3, 77, 0, UDAX_REF_MAP, &p), 0);
	dx_layout_lock_shared(&m);
	CHECK_EQ(dx_pin_get(&m, p), 0);
	dx_layout_unlock_shared(&m);
	dx_page_put(p, UDAX_REF_MAP);		/* munmap */
	pthread_create(&t, NULL, brk_thread, &a);
	CHECK(wait_for_waiters(d, 1));
	sleep_ms(20);
	CHECK(!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	CHECK_EQ(dx_entry_pfn(dx_entry_peek(&m, 3)), 77);
	/* Introspection shows who waits on what. */
	dx_dax_foreach_waiter(d, waiter_cb, &wi);
	CHECK(wi.ino == 5 && wi.wait_index == 3 && wi.wait_pfn == 77 && wi.refcount == 1);
	CHECK(wi.waiting_ns >= 10 * MS && !wi.entry_lock);
	CHECK(wi.start == 0 && wi.end == EOF_);
	/* New pins are refused while the recall is under way. */
	dx_layout_lock_shared(&m);
	CHECK_EQ(dx_pin_get(&m, p), -EBUSY);
	dx_layout_unlock_shared(&m);
	CHECK_EQ(track(&m, 9, 78, 0, UDAX_REF_MAP, &p), -EBUSY);
	t_unpin = dx_now_ns();
	dx_page_put(p, UDAX_REF_PIN);		/* the last unpin */
	join_within(t, 2000);
	CHECK_EQ(a.ret, 0);
	CHECK(a.bs.t_last_unpin >= t_unpin && a.bs.t_last_unpin <= a.bs.t_done);
	CHECK(a.bs.waits >= 1 && a.bs.passes >= 2);
	CHECK_EQ(stats(d).live_handles, 0);
	CHECK(!assert_free_fires(d, 77, 1));
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/*
 * Regression (dax_layout_busy_page_range skipping locked entries): a thread
 * holds an entry lock (mid-fault), will take a reference and unlock.
 * break_layouts must wait for the entry, reload it, and then wait for the
 * reference; it must never delete under it.
 */
struct locker_arg {
	struct dx_mapping *m;
	struct dx_page *p;
	int locked;			/* atomic */
	int put_done;			/* atomic */
};

static void *locker_thread(void *arg)
{
	struct locker_arg *a = arg;
	uint64_t e;

	CHECK_EQ(dx_entry_grab(a->m, 10, 0, &e), 0);
	CHECK(dx_entry_locked(e) && dx_entry_pfn(e) == 300);
	__atomic_store_n(&a->locked, 1, __ATOMIC_RELEASE);
	sleep_ms(40);
	dx_page_get(a->p, UDAX_REF_ACCESS);	/* the fault takes its ref... */
	dx_entry_unlock(a->m, 10, e);		/* ...and unlocks */
	sleep_ms(40);
	__atomic_store_n(&a->put_done, 1, __ATOMIC_RELEASE);
	dx_page_put(a->p, UDAX_REF_ACCESS);
	return NULL;
}

static void check_locked_entry_waited(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct locker_arg la = { .m = &m };
	struct brk_arg a = { .m = &m, .start = 0, .end = EOF_ };
	struct dx_waiter_info wi = { 0 };
	pthread_t tl, tb;

	dx_mapping_init(&m, d, 6);
	CHECK_EQ(track(&m, 10, 300, 0, UDAX_REF_MAP, &la.p), 0);
	dx_page_put(la.p, UDAX_REF_MAP);	/* idle, tracked */
	pthread_create(&tl, NULL, locker_thread, &la);
	while (!__atomic_load_n(&la.locked, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	pthread_create(&tb, NULL, brk_thread, &a);
	CHECK(wait_for_waiters(d, 1));
	dx_dax_foreach_waiter(d, waiter_cb, &wi);
	CHECK(wi.entry_lock && wi.wait_index == 10);
	join_within(tb, 3000);
	CHECK_EQ(a.ret, 0);
	/* It returned only after the reference taken under the lock was put. */
	CHECK(__atomic_load_n(&la.put_done, __ATOMIC_ACQUIRE));
	CHECK(a.bs.waits >= 1);	/* 2, unless a slow (TSan) run came back after the put */
	join_within(tl, 1000);
	CHECK_EQ(stats(d).live_handles, 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/*
 * Regression (fuse_dax's end = 0 meaning "page 0 only"): UDAX_END_OF_FILE
 * covers every tracked entry, however far; a bounded range covers only
 * itself, inclusively.
 */
static void check_range_to_eof(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *p0, *p1, *pf;
	struct dx_wait_ctx w = { .timeout_ns = 30 * MS };

	dx_mapping_init(&m, d, 7);
	CHECK_EQ(track(&m, 0, 10, 0, UDAX_REF_MAP, &p0), 0);
	CHECK_EQ(track(&m, 1000, 11, 0, UDAX_REF_MAP, &p1), 0);
	CHECK_EQ(track(&m, 1ULL << 40, 12, 0, UDAX_REF_PIN, &pf), 0);
	dx_page_put(p0, UDAX_REF_MAP);
	dx_page_put(p1, UDAX_REF_MAP);
	/* The far page is pinned: a break to EOF must see it and time out. */
	CHECK_EQ(do_break(&m, 0, EOF_, &w), -EBUSY);
	/* -EBUSY: nothing deleted. */
	CHECK_EQ(stats(d).tracked_entries, 3);
	CHECK(dx_entry_peek(&m, 0) && dx_entry_peek(&m, 1000));
	/* Inclusive bounds: [1, 1000] takes 1000 and leaves 0. */
	CHECK_EQ(do_break(&m, 1, 1000, NULL), 0);
	CHECK(dx_entry_peek(&m, 0) != 0 && dx_entry_peek(&m, 1000) == 0);
	/* start > end is an empty range. */
	CHECK_EQ(do_break(&m, 5, 4, NULL), 0);
	CHECK(dx_entry_peek(&m, 0) != 0);
	dx_page_put(pf, UDAX_REF_PIN);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	CHECK_EQ(stats(d).tracked_entries, 0);
	CHECK_EQ(stats(d).live_handles, 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- entry locks: wake-one, baton, wake-all ---- */
struct grab_arg {
	struct dx_mapping *m;
	uint64_t index;
	unsigned int order;
	int ret;
	bool then_delete;
};

static int grabs_done;		/* atomic */
static int grabs_release;	/* atomic: holders may delete their entry now */

static void *grab_thread(void *arg)
{
	struct grab_arg *a = arg;
	uint64_t e;

	a->ret = dx_entry_grab(a->m, a->index, a->order, &e);
	__atomic_add_fetch(&grabs_done, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&grabs_release, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	if (!a->ret && a->then_delete)
		dx_entry_delete(a->m, a->index);
	return NULL;
}

static bool wait_for_entry_waiters(struct dx_dax *d, uint64_t n)
{
	for (int i = 0; i < 2000; i++) {
		if (stats(d).entry_waiters >= n)
			return true;
		sleep_ms(1);
	}
	return false;
}

/* Regression: deleting an entry wakes every waiter, not one. */
static void check_delete_wakes_all(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct grab_arg g[4];
	pthread_t t[4];
	uint64_t e, before;

	dx_mapping_init(&m, d, 8);
	grabs_release = 0;
	CHECK_EQ(dx_entry_grab(&m, 20, 0, &e), 0);
	CHECK(dx_entry_empty(e) && dx_entry_locked(e));
	for (int i = 0; i < 4; i++) {
		g[i] = (struct grab_arg){ .m = &m, .index = 20, .then_delete = true };
		pthread_create(&t[i], NULL, grab_thread, &g[i]);
	}
	CHECK(wait_for_entry_waiters(d, 4));
	before = stats(d).entry_wakeups;
	dx_entry_delete(&m, 20);
	/* The wakes happen inside the delete: all four, at once. */
	CHECK_EQ(stats(d).entry_wakeups - before, 4);
	__atomic_store_n(&grabs_release, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++) {
		join_within(t[i], 2000);
		CHECK_EQ(g[i].ret, 0);
	}
	CHECK_EQ(dx_entry_peek(&m, 20), 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* Unlock wakes one exclusive waiter; a woken waiter that declines passes it on. */
static void check_unlock_wakes_one_and_baton(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct grab_arg g[3];
	pthread_t t[3];
	uint64_t e, before;

	dx_mapping_init(&m, d, 9);
	grabs_done = 0;
	grabs_release = 1;
	/* Wake-one: three waiters, one unlock, one wakeup. */
	CHECK_EQ(dx_entry_grab(&m, 30, 0, &e), 0);
	dx_entry_unlock(&m, 30, dx_entry_mk(555, UDAX_ENTRY_ZERO));
	CHECK_EQ(dx_entry_grab(&m, 30, 0, &e), 0);
	for (int i = 0; i < 3; i++) {
		g[i] = (struct grab_arg){ .m = &m, .index = 30, .then_delete = false };
		pthread_create(&t[i], NULL, grab_thread, &g[i]);
	}
	CHECK(wait_for_entry_waiters(d, 3));
	before = stats(d).entry_wakeups;
	dx_entry_unlock(&m, 30, e);
	CHECK_EQ(stats(d).entry_wakeups - before, 1);
	/* Each winner keeps the lock; unlock again twice to let the others in. */
	for (int k = 1; k <= 2; k++) {
		while (__atomic_load_n(&grabs_done, __ATOMIC_ACQUIRE) < k)
			sleep_ms(1);
		before = stats(d).entry_wakeups;
		dx_entry_unlock(&m, 30, e);
		CHECK_EQ(stats(d).entry_wakeups - before, 1);
	}
	for (int i = 0; i < 3; i++) {
		join_within(t[i], 2000);
		CHECK_EQ(g[i].ret, 0);
	}
	CHECK(dx_entry_locked(dx_entry_peek(&m, 30)));
	dx_entry_delete(&m, 30);

	/*
	 * Baton: A wants a huge entry at 512 and waits on the locked small
	 * entry there; B wants the small one.  The unlock wakes A only; A
	 * declines (-EEXIST: no upgrade) and must hand the wake-up to B.
	 */
	CHECK_EQ(dx_entry_grab(&m, 512, 0, &e), 0);
	g[0] = (struct grab_arg){ .m = &m, .index = 512, .order = UDAX_HUGE_ORDER };
	g[1] = (struct grab_arg){ .m = &m, .index = 512, .order = 0, .then_delete = true };
	pthread_create(&t[0], NULL, grab_thread, &g[0]);
	CHECK(wait_for_entry_waiters(d, 1));
	pthread_create(&t[1], NULL, grab_thread, &g[1]);
	CHECK(wait_for_entry_waiters(d, 2));
	dx_entry_unlock(&m, 512, dx_entry_mk(0, UDAX_ENTRY_ZERO | UDAX_ENTRY_LOCKED));
	join_within(t[0], 2000);
	CHECK_EQ(g[0].ret, -EEXIST);
	join_within(t[1], 2000);
	CHECK_EQ(g[1].ret, 0);
	CHECK_EQ(dx_entry_peek(&m, 512), 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- interruption and timeouts ---- */
static int intr_flag;
static int intr_cb(void *arg)
{
	(void)arg;
	return __atomic_load_n(&intr_flag, __ATOMIC_ACQUIRE);
}

static void check_eintr_leaves_entries(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *p, *q;
	struct brk_arg a = { .m = &m, .start = 0, .end = EOF_,
			     .w = { .interrupted = intr_cb } };
	pthread_t t;
	uint64_t t_kick, lat;

	dx_mapping_init(&m, d, 11);
	CHECK_EQ(track(&m, 1, 50, 0, UDAX_REF_MAP, &q), 0);
	dx_page_put(q, UDAX_REF_MAP);		/* idle page in the range */
	CHECK_EQ(track(&m, 2, 51, 0, UDAX_REF_PIN, &p), 0);
	intr_flag = 0;
	pthread_create(&t, NULL, brk_thread, &a);
	CHECK(wait_for_waiters(d, 1));
	sleep_ms(10);
	t_kick = dx_now_ns();
	__atomic_store_n(&intr_flag, 1, __ATOMIC_RELEASE);
	dx_dax_kick(d);			/* the FUSE interrupt arrives */
	join_within(t, 2000);
	lat = a.t_ret - t_kick;
	CHECK_EQ(a.ret, -EINTR);
	/* The kick wakes it at once (the 5 ms poll is the fallback). */
	printf("  EINTR %.2f ms after the kick\n", (double)lat / 1e6);
	CHECK(lat < 1000 * MS);
	/* The file is unchanged: both entries, both handles, still tracked. */
	CHECK_EQ(stats(d).tracked_entries, 2);
	CHECK_EQ(dx_entry_pfn(dx_entry_peek(&m, 1)), 50);
	CHECK_EQ(dx_entry_pfn(dx_entry_peek(&m, 2)), 51);
	CHECK_EQ(stats(d).live_handles, 2);
	CHECK_EQ(stats(d).waiters, 0);
	/* Recall over: new grants work again. */
	dx_layout_lock_shared(&m);
	CHECK_EQ(dx_pin_get(&m, p), 0);
	dx_layout_unlock_shared(&m);
	dx_page_put(p, UDAX_REF_PIN);
	/* Without kick the poll still notices within a few ms. */
	intr_flag = 0;
	a.done = 0;
	pthread_create(&t, NULL, brk_thread, &a);
	CHECK(wait_for_waiters(d, 1));
	__atomic_store_n(&intr_flag, 1, __ATOMIC_RELEASE);
	join_within(t, 2000);
	CHECK_EQ(a.ret, -EINTR);
	/* Uninterruptible ignores it (and a timeout then ends it: -EBUSY). */
	a.w.uninterruptible = true;
	a.w.timeout_ns = 20 * MS;
	CHECK_EQ(do_break(&m, 0, EOF_, &a.w), -EBUSY);
	CHECK_EQ(stats(d).tracked_entries, 2);
	dx_page_put(p, UDAX_REF_PIN);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	CHECK_EQ(stats(d).live_handles, 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* The mount-wide recall timeout applies when the caller gives none. */
static void check_mount_timeout(void)
{
	struct dx_dax_opts o = { .policy = UDAX_POLICY_DEFAULT, .recall_timeout_ns = 15 * MS,
				   .numa_node = -1 };
	struct dx_dax *d;
	struct dx_mapping m;
	struct dx_page *p;
	uint64_t t0;

	CHECK_EQ(dx_dax_new(&d, &o), 0);
	dx_mapping_init(&m, d, 12);
	CHECK_EQ(track(&m, 0, 1, 0, UDAX_REF_PIN, &p), 0);
	t0 = dx_now_ns();
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), -EBUSY);
	CHECK(dx_now_ns() - t0 >= 15 * MS);
	dx_page_put(p, UDAX_REF_PIN);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- the recall hook: a client that returns its layout asynchronously ---- */
struct client {
	struct dx_page *p;
	int recalls;			/* atomic */
	uint64_t ino, start, end;
	pthread_t t;
	int started;
};

static void *client_return(void *arg)
{
	struct client *c = arg;

	sleep_ms(15);
	dx_page_put(c->p, UDAX_REF_MAP);	/* munmap + layout return */
	return NULL;
}

static void client_recall(void *arg, uint64_t ino, uint64_t start, uint64_t end)
{
	struct client *c = arg;

	c->ino = ino;
	c->start = start;
	c->end = end;
	if (__atomic_add_fetch(&c->recalls, 1, __ATOMIC_RELAXED) == 1) {
		pthread_create(&c->t, NULL, client_return, c);
		c->started = 1;
	}
}

static void check_recall_hook(void)
{
	static const struct dx_dax_ops ops = { .recall = client_recall };
	struct client c = { 0 };
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, &ops, &c);
	struct dx_mapping m;
	struct dx_break_stats bs;
	struct dx_wait_ctx w = { .stats = &bs };

	dx_mapping_init(&m, d, 13);
	CHECK_EQ(track(&m, 4, 40, 0, UDAX_REF_MAP, &c.p), 0);
	/* Mapped only (no pin): still busy until the client returns it. */
	CHECK_EQ(do_break(&m, 2, 100, &w), 0);
	CHECK(c.recalls >= 2);
	CHECK(c.ino == 13 && c.start == 2 && c.end == 100);
	CHECK(bs.t_recall_sent >= bs.t_start && bs.t_last_unpin >= bs.t_recall_sent);
	CHECK(bs.t_done - bs.t_start >= 10 * MS);
	if (c.started)
		join_within(c.t, 1000);
	CHECK_EQ(stats(d).live_handles, 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- policies ---- */
static void check_untrack_first(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_UNTRACK_FIRST, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *p, *p2, *idle;
	struct brk_arg a = { .m = &m, .start = 0, .end = EOF_,
			     .w = { .interrupted = intr_cb } };
	pthread_t t;

	dx_mapping_init(&m, d, 14);
	CHECK_EQ(track(&m, 0, 60, 0, UDAX_REF_PIN, &p), 0);
	CHECK_EQ(track(&m, 1, 61, 0, UDAX_REF_MAP, &idle), 0);
	dx_page_put(idle, UDAX_REF_MAP);
	intr_flag = 0;
	pthread_create(&t, NULL, brk_thread, &a);
	CHECK(wait_for_waiters(d, 1));
	/* Entries are gone already; the referenced handle lives on, untracked. */
	CHECK_EQ(dx_entry_peek(&m, 0), 0);
	CHECK_EQ(stats(d).tracked_entries, 0);
	CHECK_EQ(stats(d).live_handles, 1);
	CHECK(dx_dax_pfn_busy(d, 60, 1));
	CHECK(!dx_dax_pfn_busy(d, 61, 1));
	CHECK(assert_free_fires(d, 60, 1));	/* I1 still holds for it */
	/* Interrupted: -EINTR; the blocks are not freed; re-track adopts. */
	__atomic_store_n(&intr_flag, 1, __ATOMIC_RELEASE);
	dx_dax_kick(d);
	join_within(t, 2000);
	CHECK_EQ(a.ret, -EINTR);
	CHECK_EQ(track(&m, 0, 60, 0, UDAX_REF_MAP, &p2), 0);
	CHECK(p2 == p && dx_page_refcount(p) == 2);
	CHECK_EQ(stats(d).tracked_entries, 1);
	dx_page_put(p, UDAX_REF_MAP);
	/* Now wait for real: the unpin ends it. */
	intr_flag = 0;
	a.done = 0;
	pthread_create(&t, NULL, brk_thread, &a);
	CHECK(wait_for_waiters(d, 1));
	dx_page_put(p, UDAX_REF_PIN);
	join_within(t, 2000);
	CHECK_EQ(a.ret, 0);
	CHECK(a.bs.t_last_unpin != 0);
	CHECK_EQ(stats(d).live_handles, 0);
	CHECK(!assert_free_fires(d, 60, 2));
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

static void check_unsafe(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_UNSAFE, NULL, NULL);
	struct dx_mapping m, m2;
	struct dx_page *p, *p2;

	dx_mapping_init(&m, d, 15);
	dx_mapping_init(&m2, d, 16);
	CHECK_EQ(track(&m, 0, 70, 0, UDAX_REF_PIN, &p), 0);
	/* No wait at all. */
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	CHECK_EQ(dx_entry_peek(&m, 0), 0);
	CHECK_EQ(stats(d).live_handles, 1);	/* the orphan */
	/* The free path counts the violation instead of aborting... */
	CHECK(!assert_free_fires(d, 70, 1));
	CHECK_EQ(stats(d).unsafe_frees, 1);
	/* ...and the block is reused by another file while DMA still targets it. */
	CHECK(!dx_dax_pfn_busy(d, 70, 1));
	CHECK_EQ(track(&m2, 0, 70, 0, UDAX_REF_MAP, &p2), 0);
	CHECK(p2 != p);
	dx_page_put(p, UDAX_REF_PIN);		/* the orphan goes away */
	CHECK_EQ(stats(d).live_handles, 1);
	dx_page_put(p2, UDAX_REF_MAP);
	CHECK_EQ(do_break(&m2, 0, EOF_, NULL), 0);
	CHECK_EQ(stats(d).live_handles, 0);
	dx_mapping_destroy(&m);
	dx_mapping_destroy(&m2);
	dx_dax_delete(&d);
}

/* ---- memory failure inside dx_track ---- */
static long fail_from, fail_to, alloc_calls;	/* fail calls in [from, to] */

static void *fail_alloc(size_t size, bool may_block, void *arg)
{
	long n = __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED);

	(void)may_block;
	(void)arg;
	return n >= fail_from && n <= fail_to ? NULL : malloc(size);
}

static void fail_free(void *p, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	free(p);
}

/*
 * Every node allocation dx_track makes (entry tree, pfn index) fails in
 * turn, both attempts (lock held, then lock dropped): -ENOMEM, and
 * nothing is left behind: no placeholder entry, no handle, no DRAM.
 */
static void check_track_enomem(void)
{
	static const struct xa_alloc_ops ops = { fail_alloc, fail_free, NULL };
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	struct dx_page *p;
	int nfail = 0;

	dx_mapping_init(&m, d, 18);
	xa_set_alloc_ops(&ops);
	for (long k = 1; k <= 8; k++) {
		int r;

		alloc_calls = 0;
		fail_from = k;
		fail_to = k + 1;
		r = track(&m, 1ULL << 30, 777, 0, UDAX_REF_MAP, &p);
		if (r == -ENOMEM) {
			nfail++;
			CHECK_EQ(dx_entry_peek(&m, 1ULL << 30), 0);
			CHECK_EQ(stats(d).live_handles, 0);
			CHECK_EQ(stats(d).tracked_entries, 0);
			CHECK_EQ(stats(d).handle_bytes, 0);
			CHECK_EQ(dx_mapping_mem_bytes(&m), 0);
			CHECK(!dx_dax_pfn_busy(d, 777, 1));
			continue;
		}
		CHECK_EQ(r, 0);
		dx_page_put(p, UDAX_REF_MAP);
		CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	}
	xa_set_alloc_ops(NULL);
	CHECK(nfail >= 2);	/* the entry tree's and the pfn index's nodes */
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- introspection and DRAM accounting ---- */
static int count_cb(const struct dx_page_info *pi, void *arg)
{
	uint64_t *n = arg;

	if (pi->refcount)
		n[1]++;
	n[0]++;
	return 0;
}

static void check_introspection_and_dram(void)
{
	struct dx_dax *d = dax_new(UDAX_POLICY_DEFAULT, NULL, NULL);
	struct dx_mapping m;
	const uint64_t small = 32768, huge = 8192;
	struct dx_page **p = calloc(small, sizeof(*p));
	uint64_t n[2] = { 0, 0 };
	double per;

	dx_mapping_init(&m, d, 17);
	for (uint64_t i = 0; i < small; i++) {
		CHECK_EQ(track(&m, i, 100000 + i, 0, UDAX_REF_MAP, &p[i]), 0);
		if (i % 2)
			dx_page_put(p[i], UDAX_REF_MAP);
	}
	dx_dax_foreach_handle(d, count_cb, n);
	CHECK_EQ(n[0], small);
	CHECK_EQ(n[1], small / 2);
	CHECK_EQ(stats(d).busy_handles, small / 2);
	CHECK_EQ(stats(d).tracked_entries, small);
	{
		char msg[512], tiny[8];

		CHECK_EQ(dx_dax_busy_report(d, msg, sizeof(msg)), small / 2);
		CHECK(!strncmp(msg, "16384 pages in use: ino 17 index ", 33));
		CHECK(strstr(msg, "mapped 1, pinned 0") && strstr(msg, "; ...") &&
		      strlen(msg) < sizeof(msg));
		printf("  %s\n", msg);
		CHECK_EQ(dx_dax_busy_report(d, tiny, sizeof(tiny)), small / 2);
		CHECK_EQ(strlen(tiny), sizeof(tiny) - 1);
	}
	per = (double)(stats(d).handle_bytes + dx_mapping_mem_bytes(&m)) / (double)small;
	printf("  DRAM per tracked 4 KiB page: %.1f bytes\n", per);
	CHECK(per <= 64.0);
	for (uint64_t i = 0; i < small; i += 2)
		dx_page_put(p[i], UDAX_REF_MAP);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	CHECK_EQ(stats(d).handle_bytes, 0);
	CHECK_EQ(dx_mapping_mem_bytes(&m), 0);
	{
		char msg[64];

		CHECK_EQ(dx_dax_busy_report(d, msg, sizeof(msg)), 0);
		CHECK(!strcmp(msg, "0 pages in use"));
	}
	/* Huge entries: one handle and one entry per 2 MiB. */
	for (uint64_t i = 0; i < huge; i++)
		CHECK_EQ(track(&m, i << UDAX_HUGE_ORDER, (1ULL << 30) + (i << UDAX_HUGE_ORDER),
			       UDAX_HUGE_ORDER, UDAX_REF_MAP, &p[i]), 0);
	per = (double)(stats(d).handle_bytes + dx_mapping_mem_bytes(&m)) / (double)huge;
	printf("  DRAM per tracked 2 MiB entry: %.1f bytes\n", per);
	CHECK(per <= 128.0);
	for (uint64_t i = 0; i < huge; i++)
		dx_page_put(p[i], UDAX_REF_MAP);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	CHECK_EQ(stats(d).handle_bytes, 0);
	CHECK_EQ(dx_mapping_mem_bytes(&m), 0);
	free(p);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/*
 * NUMA placement of the handle slab: a dax created for node 0 carves its
 * handles from chunks bound to node 0 (dx_numa_alloc) when the kernel
 * has NUMA (get_mempolicy works; a VM without it says ENOSYS), and from
 * malloc otherwise.  Checked through the address's memory policy (malloc
 * memory has the default policy, even on a one-node machine), the chunk
 * header each handle finds by masking its address (so the chunk must be
 * aligned), and the chunks all being given back.
 */
#define T_MPOL_DEFAULT 0
#define T_MPOL_PREFERRED 1
#define T_MPOL_BIND 2
#define T_MPOL_F_ADDR 2

static int mempolicy_at(void *addr, unsigned long *mask)
{
	int mode = -1;

	*mask = 0;
	if (syscall(SYS_get_mempolicy, &mode, mask, sizeof(*mask) * 8, addr, T_MPOL_F_ADDR))
		return -errno;
	return mode;
}

static void numa_chunks(int node, bool numa, bool bound, unsigned int n)
{
	struct dx_dax_opts o = { .policy = UDAX_POLICY_DEFAULT, .numa_node = node };
	struct dx_page **p = calloc(n, sizeof(*p));
	struct dx_dax *d = NULL;
	struct dx_mapping m;
	unsigned long mask;
	unsigned int i, bad_hdr = 0, bad_pol = 0;

	CHECK(p != NULL);
	CHECK_EQ(dx_dax_new(&d, &o), 0);
	if (!p || !d)
		return;
	CHECK_EQ(dx_mapping_init(&m, d, 5), 0);
	for (i = 0; i < n; i++) {
		struct dx_chunk *c;
		int mode;

		CHECK_EQ(track(&m, i, 5000 + i, 0, UDAX_REF_MAP, &p[i]), 0);
		if (!p[i])
			break;
		c = (struct dx_chunk *)((uintptr_t)p[i] & ~(UDAX_CHUNK_BYTES - 1));
		if (c->dax != d)
			bad_hdr++;
		mode = mempolicy_at(p[i], &mask);
		if (!numa)
			continue;
		if (bound && !((mode == T_MPOL_BIND || mode == T_MPOL_PREFERRED) &&
				(mask & (1UL << node))))
			bad_pol++;
		if (!bound && mode != T_MPOL_DEFAULT)
			bad_pol++;
	}
	CHECK_EQ(bad_hdr, 0);
	CHECK_EQ(bad_pol, 0);
	CHECK(stats(d).handle_bytes >= (uint64_t)n * sizeof(struct dx_page));
	for (i = 0; i < n; i++)
		if (p[i])
			dx_page_put(p[i], UDAX_REF_MAP);
	CHECK_EQ(do_break(&m, 0, EOF_, NULL), 0);
	CHECK_EQ(stats(d).handle_bytes, 0);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
	free(p);
}

static void check_numa_handle_slab(void)
{
	/* what numa_available() asks: ENOSYS (or EPERM in some VMs) = no NUMA */
	bool numa = syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0) == 0;

	printf("  NUMA %s: handle chunks %s\n", numa ? "available" : "unavailable",
	       numa ? "must be bound to node 0" : "come from malloc (fallback)");
	/* several chunks, freed and allocated again */
	numa_chunks(0, numa, numa, 3 * (unsigned int)UDAX_CHUNK_PAGES + 7);
	numa_chunks(0, numa, numa, 5);
	/* the contrast: no node, or one the machine lacks: malloc, default policy */
	numa_chunks(-1, numa, false, 2 * (unsigned int)UDAX_CHUNK_PAGES);
	numa_chunks(100000, numa, false, 5);
}

int main(void)
{
	RUN(check_policy_names);
	RUN(check_lifecycle);
	RUN(check_i1_aborts);
	RUN(check_huge);
	RUN(check_pin_outlives_mapping);
	RUN(check_locked_entry_waited);
	RUN(check_range_to_eof);
	RUN(check_delete_wakes_all);
	RUN(check_unlock_wakes_one_and_baton);
	RUN(check_eintr_leaves_entries);
	RUN(check_mount_timeout);
	RUN(check_recall_hook);
	RUN(check_untrack_first);
	RUN(check_unsafe);
	RUN(check_track_enomem);
	RUN(check_introspection_and_dram);
	RUN(check_numa_handle_slab);
	return t_exit("test_dax");
}
