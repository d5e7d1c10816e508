/* SPDX-License-Identifier: MIT */
/*
 * test_dax_stress.c - waiters and wakers: many threads take and drop page
 * references (maps, pins, short accesses, refs held after the layout lock
 * is gone, as DMA does) while other threads run break_layouts over random
 * ranges, again and again, each followed by the free path.  Every
 * break_layouts must finish, and none may ever let a referenced block be
 * freed: a shadow count of the references the workers hold must be zero
 * for the whole range when break_layouts returns, and the I1 assertion in
 * the free path must never fire.  Run once per waiting policy, and once
 * with the unsafe policy as a control: there the same checks must fail.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dax.h"
#include "dax_test.h"
#include "core/util.h"

#define NFILES   2
#define NPAGES   48
#define NWORKERS 5
#define NBREAKERS 2

struct file {
	struct dx_mapping m;
	uint32_t shadow[NPAGES];	/* atomic: refs workers hold */
};

static struct dx_dax *dax;
static struct file files[NFILES];
static int stop;			/* atomic */
static uint64_t n_refs, n_busy_refusals, n_breaks, n_eintr;	/* atomic */
static uint64_t violations;		/* atomic */
static uint64_t max_break_ns;		/* atomic (max) */
static bool quiet;			/* the control run: violations expected */

static uint64_t pfn_of(unsigned int f, unsigned int i)
{
	return 10000ULL * (f + 1) + i;
}

static unsigned long xs(unsigned long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void spin_us(unsigned int us)
{
	uint64_t end = dx_now_ns() + us * 1000ULL;

	while (dx_now_ns() < end)
		sched_yield();
}

static void *worker(void *arg)
{
	unsigned long s = 0x1234567ULL * ((unsigned long)(uintptr_t)arg + 1);

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		unsigned long r = xs(&s);
		unsigned int f = (unsigned int)(r % NFILES), i = (unsigned int)((r >> 8) % NPAGES);
		enum dx_ref kind = (enum dx_ref)((r >> 16) % 3);
		struct file *fl = &files[f];
		struct dx_page *p;
		bool pinned = false;
		int ret;

		dx_layout_lock_shared(&fl->m);
		ret = dx_track(&fl->m, i, pfn_of(f, i), 0, kind, &p);
		if (ret == 0) {
			__atomic_add_fetch(&fl->shadow[i], 1, __ATOMIC_ACQ_REL);
			/* A mapped client sometimes pins too (refused during a recall). */
			if (kind == UDAX_REF_MAP && (r >> 20) % 2 && dx_pin_get(&fl->m, p) == 0) {
				__atomic_add_fetch(&fl->shadow[i], 1, __ATOMIC_ACQ_REL);
				pinned = true;
			}
		}
		dx_layout_unlock_shared(&fl->m);
		if (ret == -EBUSY) {
			__atomic_add_fetch(&n_busy_refusals, 1, __ATOMIC_RELAXED);
			sched_yield();
			continue;
		}
		if (ret) {
			CHECK_EQ(ret, 0);
			continue;
		}
		__atomic_add_fetch(&n_refs, 1, __ATOMIC_RELAXED);
		/* Hold it without the layout lock, like DMA in flight. */
		if ((r >> 24) % 4 == 0)
			spin_us((unsigned int)((r >> 28) % 200));
		if (pinned) {
			__atomic_sub_fetch(&fl->shadow[i], 1, __ATOMIC_ACQ_REL);
			dx_page_put(p, UDAX_REF_PIN);
		}
		/* Extra short references taken from one we hold. */
		dx_page_get(p, UDAX_REF_ACCESS);
		dx_page_put(p, UDAX_REF_ACCESS);
		__atomic_sub_fetch(&fl->shadow[i], 1, __ATOMIC_ACQ_REL);
		dx_page_put(p, kind);
	}
	return NULL;
}

static sigjmp_buf bug_jb;
static void bug_handler(const char *file, int line, const char *cond)
{
	if (!quiet && __atomic_load_n(&violations, __ATOMIC_RELAXED) < 5)
		fprintf(stderr, "I1 fired: %s:%d %s\n", file, line, cond);
	siglongjmp(bug_jb, 1);
}

/* The allocator's free path.  Return: false if I1 fired. */
static bool free_blocks(uint64_t pfn, uint64_t n)
{
	if (sigsetjmp(bug_jb, 1) == 0) {
		dx_dax_assert_free(dax, pfn, n);
		return true;
	}
	return false;
}

static int intr_now(void *arg)
{
	return dx_now_ns() >= *(uint64_t *)arg;
}

static void *breaker(void *arg)
{
	unsigned long s = 0xABCDEF1ULL * ((unsigned long)(uintptr_t)arg + 3);

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		unsigned long r = xs(&s);
		struct file *fl = &files[r % NFILES];
		unsigned int f = (unsigned int)(fl - files);
		uint64_t a = (r >> 8) % NPAGES, b = (r >> 16) % NPAGES, t0, dt, intr_at;
		uint64_t start = dx_min(a, b), end = dx_max(a, b);
		struct dx_wait_ctx w = { .timeout_ns = 10ULL * 1000 * 1000 * 1000 };
		int ret;

		if ((r >> 24) % 4 == 0)
			end = UDAX_END_OF_FILE;
		if ((r >> 26) % 8 == 0) {
			/* Sometimes interrupted after 100 us. */
			intr_at = dx_now_ns() + 100000ULL;
			w.interrupted = intr_now;
			w.arg = &intr_at;
		}
		dx_layout_lock_excl(&fl->m);
		t0 = dx_now_ns();
		ret = dx_break_layouts(&fl->m, start, end, &w);
		dt = dx_now_ns() - t0;
		if (ret == -EINTR) {
			__atomic_add_fetch(&n_eintr, 1, __ATOMIC_RELAXED);
		} else {
			CHECK_EQ(ret, 0);	/* never -EBUSY: it always finishes */
		}
		if (ret == 0) {
			uint64_t last = dx_min(end, (uint64_t)NPAGES - 1);

			for (uint64_t i = start; i <= last; i++) {
				if (__atomic_load_n(&fl->shadow[i], __ATOMIC_ACQUIRE) ||
				    dx_entry_peek(&fl->m, i)) {
					__atomic_add_fetch(&violations, 1, __ATOMIC_RELAXED);
					if (!quiet && __atomic_load_n(&violations, __ATOMIC_RELAXED) < 5)
						fprintf(stderr, "page %u/%lu referenced after "
							"break_layouts [%lu, %lu]: shadow %u entry %#lx\n",
							f, (unsigned long)i, (unsigned long)start,
							(unsigned long)end, fl->shadow[i],
							(unsigned long)dx_entry_peek(&fl->m, i));
				}
			}
			/* Free the blocks: I1 must hold. */
			if (!free_blocks(pfn_of(f, (unsigned int)start), last - start + 1))
				__atomic_add_fetch(&violations, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&n_breaks, 1, __ATOMIC_RELAXED);
		}
		dx_layout_unlock_excl(&fl->m);
		while (dt > __atomic_load_n(&max_break_ns, __ATOMIC_RELAXED))
			__atomic_store_n(&max_break_ns, dt, __ATOMIC_RELAXED);
		sched_yield();
	}
	return NULL;
}

static void run(enum dx_policy pol, unsigned int ms, bool expect_violations)
{
	struct dx_dax_opts o = { .policy = pol, .numa_node = -1 };
	pthread_t wt[NWORKERS], bt[NBREAKERS];
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	struct dx_dax_stats st;

	CHECK_EQ(dx_dax_new(&dax, &o), 0);
	memset(files, 0, sizeof(files));
	for (unsigned int f = 0; f < NFILES; f++)
		CHECK_EQ(dx_mapping_init(&files[f].m, dax, f + 1), 0);
	n_refs = n_busy_refusals = n_breaks = n_eintr = violations = max_break_ns = 0;
	stop = 0;
	quiet = expect_violations;
	dx_set_bug_handler(bug_handler);
	for (uintptr_t i = 0; i < NWORKERS; i++)
		pthread_create(&wt[i], NULL, worker, (void *)i);
	for (uintptr_t i = 0; i < NBREAKERS; i++)
		pthread_create(&bt[i], NULL, breaker, (void *)i);
	nanosleep(&ts, NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(wt[i], NULL);
	for (int i = 0; i < NBREAKERS; i++)
		pthread_join(bt[i], NULL);
	dx_set_bug_handler(NULL);
	printf("  %-13s refs %lu, breaks %lu (EINTR %lu), refused grants %lu, "
	       "longest break %.2f ms\n", dx_policy_name(pol), (unsigned long)n_refs,
	       (unsigned long)n_breaks, (unsigned long)n_eintr,
	       (unsigned long)n_busy_refusals, (double)max_break_ns / 1e6);
	if (expect_violations)
		CHECK(violations > 0);
	else
		CHECK_EQ(violations, 0);
	CHECK(n_breaks > 10);
	CHECK(n_refs > 100);
	dx_dax_stats(dax, &st);
	CHECK_EQ(st.busy_handles, 0);
	CHECK_EQ(st.waiters, 0);
	for (unsigned int f = 0; f < NFILES; f++) {
		dx_layout_lock_excl(&files[f].m);
		CHECK_EQ(dx_break_layouts(&files[f].m, 0, UDAX_END_OF_FILE, NULL), 0);
		dx_layout_unlock_excl(&files[f].m);
		dx_mapping_destroy(&files[f].m);
	}
	dx_dax_stats(dax, &st);
	CHECK_EQ(st.live_handles, 0);
	CHECK_EQ(st.handle_bytes, 0);
	dx_dax_delete(&dax);
}

static void check_stress_default(void)
{
	run(UDAX_POLICY_DEFAULT, 700, false);
}

static void check_stress_untrack_first(void)
{
	run(UDAX_POLICY_UNTRACK_FIRST, 500, false);
}

/* The control: without the wait, the same checks must catch it. */
static void check_stress_unsafe_is_caught(void)
{
	run(UDAX_POLICY_UNSAFE, 200, true);
}

int main(void)
{
	RUN(check_stress_default);
	RUN(check_stress_untrack_first);
	RUN(check_stress_unsafe_is_caught);
	return t_exit("test_dax_stress");
}
