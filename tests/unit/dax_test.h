/* SPDX-License-Identifier: MIT */
/*
 * dax_test.h - the counting assertion used by the DAX core's unit tests
 * (the check_* style of the kernel's lib/test_xarray.c): a failed CHECK
 * prints where and keeps going; the program exits non-zero at the end.
 */
#ifndef UDAX_DAX_TEST_H
#define UDAX_DAX_TEST_H

#include <stdio.h>
#include <stdlib.h>

static unsigned long tests_run, tests_failed;

#define CHECK(cond)							\
	do {								\
		__atomic_add_fetch(&tests_run, 1, __ATOMIC_RELAXED);	\
		if (!(cond)) {						\
			__atomic_add_fetch(&tests_failed, 1, __ATOMIC_RELAXED); \
			fprintf(stderr, "FAIL %s:%d %s(): %s\n",	\
				__FILE__, __LINE__, __func__, #cond);	\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		__atomic_add_fetch(&tests_run, 1, __ATOMIC_RELAXED);	\
		if (_a != _b) {						\
			__atomic_add_fetch(&tests_failed, 1, __ATOMIC_RELAXED); \
			fprintf(stderr, "FAIL %s:%d %s(): %s == %lld, expected %s == %lld\n", \
				__FILE__, __LINE__, __func__, #a, _a, #b, _b); \
		}							\
	} while (0)

#define RUN(fn)								\
	do {								\
		unsigned long _f = tests_failed;			\
		fn();							\
		printf("%-40s %s\n", #fn, tests_failed == _f ? "ok" : "FAILED"); \
		fflush(stdout);						\
	} while (0)

static inline int test_report(const char *name)
{
	printf("%s: %lu checks, %lu failed\n", name, tests_run, tests_failed);
	return tests_failed ? 1 : 0;
}

#endif /* UDAX_DAX_TEST_H */
