/* SPDX-License-Identifier: MIT */
/*
 * bench_dax.c - numbers for the DAX core:
 *   - xarray loads per second, one thread, over a 1 M-entry tree;
 *   - break_layouts over an idle file: 1 tracked page, a 1 GiB file fully
 *     tracked (262144 pages, and 512 huge entries), and a 1 GiB file with
 *     only a few tracked pages: the cost must follow tracked entries;
 *   - DRAM per tracked 4 KiB page and per 2 MiB entry;
 *   - the wake path: last unpin -> break_layouts returns, beside a raw
 *     futex one-way wake between two threads, same CPU and across CPUs.
 * Usage: bench-dax [-q] (-q: smaller sizes, for a quick run)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dax.h"
#include "core/dax_int.h"
#include "core/util.h"
#include "core/xarray.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1));

	return v[i];
}

static void row(const char *what, double v, const char *unit, const char *note)
{
	printf("  %-52s %14.1f %-10s %s\n", what, v, unit, note ? note : "");
}

/* ---- xarray loads ---- */
enum xa_mode { XA_SEQ, XA_RANDOM, XA_RANDOM_LOCKED };

/* One pass over @n keys.  Return: lookups per second. */
static double xa_pass(struct xarray *xa, const unsigned long *keys, unsigned long n,
		      enum xa_mode mode, unsigned long *sum)
{
	uint64_t t0 = dx_now_ns(), t1;

	if (mode == XA_SEQ) {
		for (unsigned long i = 0; i < n; i++)
			*sum += (unsigned long)xa_load(xa, i);
	} else if (mode == XA_RANDOM) {
		for (unsigned long i = 0; i < n; i++)
			*sum += (unsigned long)xa_load(xa, keys[i]);
	} else {
		xa_lock(xa);
		for (unsigned long i = 0; i < n; i++)
			*sum += (unsigned long)__xa_load(xa, keys[i]);
		xa_unlock(xa);
	}
	t1 = dx_now_ns();
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void bench_xa_load(unsigned long n)
{
	static const char *const what[] = {
		"xa_load, sequential keys, 1 thread",
		"xa_load, random keys, 1 thread",
		"__xa_load, random keys, lock held once",
	};
	struct xarray xa;
	unsigned long *keys = malloc(n * sizeof(*keys)), s = 88172645463325252ULL, sum = 0;
	enum { ROUNDS = 7 };
	double rate[ROUNDS];
	char note[64];

	xa_init(&xa);
	for (unsigned long i = 0; i < n; i++)
		xa_store(&xa, i, xa_mk_value(i));
	for (unsigned long i = 0; i < n; i++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		keys[i] = s % n;
	}
	for (int mode = XA_SEQ; mode <= XA_RANDOM_LOCKED; mode++) {
		for (int r = 0; r < ROUNDS; r++)
			rate[r] = xa_pass(&xa, keys, n, (enum xa_mode)mode, &sum);
		qsort(rate, ROUNDS, sizeof(rate[0]), cmp_dbl);
		snprintf(note, sizeof(note), "(best of %d; median %.1f M/s)", ROUNDS,
			 rate[ROUNDS / 2] / 1e6);
		row(what[mode], rate[ROUNDS - 1] / 1e6, "M/s", note);
	}
	if (sum == 42)
		printf(" ");
	printf("  (tree of %lu entries: %.1f MiB of nodes)\n", n,
	       (double)xa_mem_bytes(&xa) / (1 << 20));
	xa_destroy(&xa);
	free(keys);
}

/* ---- break_layouts over idle files ---- */
static struct dx_dax *bench_dax(void)
{
	struct dx_dax_opts o = { .policy = UDAX_POLICY_DEFAULT, .numa_node = -1 };
	struct dx_dax *d;

	if (dx_dax_new(&d, &o))
		abort();
	return d;
}

/* Track @n entries of @order spread evenly over @span pages, then idle them. */
static void track_idle(struct dx_mapping *m, uint64_t n, uint64_t span, unsigned int order)
{
	uint64_t step = span / n;
	struct dx_page *p;

	step &= ~((1ULL << order) - 1);
	dx_layout_lock_shared(m);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t idx = i * step;

		if (dx_track(m, idx, (1ULL << 32) + idx, order, UDAX_REF_MAP, &p))
			abort();
		dx_page_put(p, UDAX_REF_MAP);
	}
	dx_layout_unlock_shared(m);
}

static double time_break(struct dx_mapping *m, uint64_t n, uint64_t span, unsigned int order,
			 unsigned int reps)
{
	uint64_t *v = calloc(reps, sizeof(*v)), med;

	for (unsigned int r = 0; r < reps; r++) {
		uint64_t t0, t1;

		track_idle(m, n, span, order);
		dx_layout_lock_excl(m);
		t0 = dx_now_ns();
		if (dx_break_layouts(m, 0, UDAX_END_OF_FILE, NULL))
			abort();
		t1 = dx_now_ns();
		dx_layout_unlock_excl(m);
		v[r] = t1 - t0;
	}
	qsort(v, reps, sizeof(*v), cmp_u64);
	med = v[reps / 2];
	free(v);
	return (double)med;
}

static void bench_break(bool quick)
{
	struct dx_dax *d = bench_dax();
	struct dx_mapping m;
	const uint64_t gib = 262144;	/* 1 GiB in 4 KiB pages */
	double t;

	dx_mapping_init(&m, d, 1);
	t = time_break(&m, 1, 1, 0, 2001);
	row("break_layouts, 4 KiB file, 1 tracked page", t / 1e3, "us", "(median)");
	t = time_break(&m, 4, gib, 0, 2001);
	row("break_layouts, 1 GiB file, 4 tracked pages", t / 1e3, "us", "(median)");
	t = time_break(&m, 512, gib, 9, 201);
	row("break_layouts, 1 GiB file, 512 huge entries", t / 1e3, "us", "(median)");
	t = time_break(&m, quick ? gib / 8 : gib, quick ? gib / 8 : gib, 0, quick ? 3 : 5);
	row(quick ? "break_layouts, 128 MiB file, all 32768 pages tracked" :
	    "break_layouts, 1 GiB file, all 262144 pages tracked",
	    t / 1e6, "ms", "(median)");
	printf("  %-52s %14.1f %-10s\n", "  per tracked page", t / (double)(quick ? gib / 8 : gib),
	       "ns");
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- DRAM ---- */
static void bench_dram(bool quick)
{
	struct dx_dax *d = bench_dax();
	struct dx_mapping m;
	struct dx_dax_stats st;
	uint64_t n = quick ? 65536 : 1048576, nh = quick ? 4096 : 32768;

	dx_mapping_init(&m, d, 2);
	track_idle(&m, n, n, 0);
	dx_dax_stats(d, &st);
	row("DRAM per tracked 4 KiB page", (double)(st.handle_bytes + dx_mapping_mem_bytes(&m)) /
	    (double)n, "bytes", "(handle 44 B + two tree slots)");
	dx_layout_lock_excl(&m);
	dx_break_layouts(&m, 0, UDAX_END_OF_FILE, NULL);
	dx_layout_unlock_excl(&m);
	track_idle(&m, nh, nh << 9, 9);
	dx_dax_stats(d, &st);
	row("DRAM per tracked 2 MiB entry", (double)(st.handle_bytes + dx_mapping_mem_bytes(&m)) /
	    (double)nh, "bytes", NULL);
	dx_layout_lock_excl(&m);
	dx_break_layouts(&m, 0, UDAX_END_OF_FILE, NULL);
	dx_layout_unlock_excl(&m);
	dx_dax_stats(d, &st);
	row("DRAM once untracked", (double)(st.handle_bytes + dx_mapping_mem_bytes(&m)),
	    "bytes", NULL);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
}

/* ---- the wake path ---- */
static void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct wake {
	struct dx_mapping *m;
	struct dx_page *p;
	int cpu;
	unsigned int reps;
	uint64_t *t_unpin;		/* per rep, set by the unpinner */
	uint64_t *lat;			/* per rep: return - unpin */
	uint32_t go;			/* futex: rep number the unpinner may run */
	uint32_t word;			/* futex for the raw ping */
};

static void *unpinner(void *arg)
{
	struct wake *w = arg;

	pin_cpu(w->cpu);
	for (unsigned int r = 1; r <= w->reps; r++) {
		/* Wait until the breaker sleeps on the page. */
		while (__atomic_load_n(&w->go, __ATOMIC_ACQUIRE) != r)
			dx_futex_wait(&w->go, r - 1, 0);
		for (;;) {
			struct dx_dax_stats st;

			dx_dax_stats(w->m->dax, &st);
			if (st.waiters)
				break;
			sched_yield();
		}
		w->t_unpin[r - 1] = dx_now_ns();
		dx_page_put(w->p, UDAX_REF_PIN);
	}
	return NULL;
}

static void bench_wake_one(int cpu_a, int cpu_b, unsigned int reps)
{
	struct dx_dax *d = bench_dax();
	struct dx_mapping m;
	struct wake w = { .m = &m, .cpu = cpu_b, .reps = reps };
	pthread_t t;
	uint64_t *lat = calloc(reps, sizeof(*lat));
	char what[80];

	w.t_unpin = calloc(reps, sizeof(uint64_t));
	dx_mapping_init(&m, d, 3);
	pin_cpu(cpu_a);
	pthread_create(&t, NULL, unpinner, &w);
	for (unsigned int r = 1; r <= reps; r++) {
		dx_layout_lock_shared(&m);
		if (dx_track(&m, 0, 5, 0, UDAX_REF_PIN, &w.p))
			abort();
		dx_layout_unlock_shared(&m);
		__atomic_store_n(&w.go, r, __ATOMIC_RELEASE);
		dx_futex_wake(&w.go, 1);
		dx_layout_lock_excl(&m);
		if (dx_break_layouts(&m, 0, UDAX_END_OF_FILE, NULL))
			abort();
		lat[r - 1] = dx_now_ns() - w.t_unpin[r - 1];
		dx_layout_unlock_excl(&m);
	}
	pthread_join(t, NULL);
	qsort(lat, reps, sizeof(*lat), cmp_u64);
	snprintf(what, sizeof(what), "last unpin -> break_layouts returns, CPUs %d/%d", cpu_a, cpu_b);
	printf("  %-52s %8.1f us p50 %8.1f us p99\n", what, (double)pct(lat, reps, 0.5) / 1e3,
	       (double)pct(lat, reps, 0.99) / 1e3);
	free(lat);
	free(w.t_unpin);
	dx_mapping_destroy(&m);
	dx_dax_delete(&d);
	pin_cpu(cpu_a);
}

/* The floor: one futex wake from one thread to another asleep. */
struct ping {
	uint32_t word;
	int cpu;
	unsigned int reps;
	uint64_t *t_wake;
};

static void *pinger(void *arg)
{
	struct ping *p = arg;

	pin_cpu(p->cpu);
	for (unsigned int r = 1; r <= p->reps; r++) {
		/* Give the other thread time to fall asleep. */
		while (__atomic_load_n(&p->word, __ATOMIC_ACQUIRE) != 2 * r - 1)
			sched_yield();
		usleep(50);
		p->t_wake[r - 1] = dx_now_ns();
		__atomic_store_n(&p->word, 2 * r, __ATOMIC_RELEASE);
		dx_futex_wake(&p->word, 1);
	}
	return NULL;
}

static void bench_futex(int cpu_a, int cpu_b, unsigned int reps)
{
	struct ping p = { .cpu = cpu_b, .reps = reps };
	uint64_t *lat = calloc(reps, sizeof(*lat));
	pthread_t t;
	char what[80];

	p.t_wake = calloc(reps, sizeof(uint64_t));
	pin_cpu(cpu_a);
	pthread_create(&t, NULL, pinger, &p);
	for (unsigned int r = 1; r <= reps; r++) {
		__atomic_store_n(&p.word, 2 * r - 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&p.word, __ATOMIC_ACQUIRE) != 2 * r)
			dx_futex_wait(&p.word, 2 * r - 1, 0);
		lat[r - 1] = dx_now_ns() - p.t_wake[r - 1];
	}
	pthread_join(t, NULL);
	qsort(lat, reps, sizeof(*lat), cmp_u64);
	snprintf(what, sizeof(what), "futex one-way wake (floor), CPUs %d/%d", cpu_a, cpu_b);
	printf("  %-52s %8.1f us p50 %8.1f us p99\n", what, (double)pct(lat, reps, 0.5) / 1e3,
	       (double)pct(lat, reps, 0.99) / 1e3);
	free(lat);
	free(p.t_wake);
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && !strcmp(argv[1], "-q");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int reps = quick ? 200 : 2000;

	printf("bench-dax: the DAX core (xarray fan-out %u, handle %zu bytes, %ld CPUs)\n",
	       1U << xa_chunk_shift(), sizeof(struct dx_page), ncpu);
	printf("xarray\n");
	bench_xa_load(1UL << 20);
	printf("break_layouts over idle files (cost follows tracked entries)\n");
	bench_break(quick);
	printf("DRAM\n");
	bench_dram(quick);
	printf("wake path (threads pinned to the CPUs shown)\n");
	bench_futex(0, 0, reps);
	bench_wake_one(0, 0, reps);
	if (ncpu > 1) {
		bench_futex(0, 1, reps);
		bench_wake_one(0, 1, reps);
	}
	return 0;
}
