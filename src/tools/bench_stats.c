// SPDX-License-Identifier: MIT
/*
 * bench_stats.c - latency samples, percentiles and CDF output for
 * udaxctl bench.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "udaxctl.h"

void lat_add(struct lat *l, double us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		double *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return;		/* a lost sample is better than a dead bench */
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = us;
	l->sorted = false;
}

void lat_free(struct lat *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void lat_sort(struct lat *l)
{
	if (!l->sorted && l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_double);
	l->sorted = true;
}

/* Nearest rank: the smallest sample with at least q of the samples <= it. */
static double rank(const struct lat *l, double q)
{
	size_t k = (size_t)(q * (double)l->n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > l->n)
		k = l->n;
	return l->v[k - 1];
}

void lat_pct(struct lat *l, struct pct *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (!l->n)
		return;
	lat_sort(l);
	for (size_t i = 0; i < l->n; i++)
		sum += l->v[i];
	out->n = l->n;
	out->min = l->v[0];
	out->max = l->v[l->n - 1];
	out->mean = sum / (double)l->n;
	out->p50 = rank(l, 0.50);
	out->p90 = rank(l, 0.90);
	out->p99 = rank(l, 0.99);
	out->p999 = rank(l, 0.999);
}

void pct_json(FILE *f, const struct pct *p)
{
	fprintf(f, "{\"n\": %zu, \"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, "
		"\"p999\": %.2f, \"max\": %.2f, \"min\": %.2f, \"mean\": %.2f}",
		p->n, p->p50, p->p90, p->p99, p->p999, p->max, p->min, p->mean);
}

int lat_write_cdf(struct lat *l, FILE *f)
{
	lat_sort(l);
	for (size_t i = 0; i < l->n; i++)
		if (fprintf(f, "%.3f %.6f\n", l->v[i], (double)(i + 1) / (double)l->n) < 0)
			return -EIO;
	return 0;
}
