/* SPDX-License-Identifier: MIT */
/*
 * dax_test.h - RUN() for the DAX core's unit tests (the check_* style of the
 * kernel's lib/test_xarray.c): each test function is named with its verdict;
 * the checks are ../harness.h's (a failed CHECK prints where and keeps going).
 */
#ifndef UDAX_DAX_TEST_H
#define UDAX_DAX_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "../harness.h"

#define RUN(fn)								\
	do {								\
		int f_ = __atomic_load_n(&t_failures, __ATOMIC_RELAXED); \
		fn();							\
		printf("%-40s %s\n", #fn,				\
		       __atomic_load_n(&t_failures, __ATOMIC_RELAXED) == f_ ? \
		       "ok" : "FAILED");				\
		fflush(stdout);						\
	} while (0)

#endif /* UDAX_DAX_TEST_H */
