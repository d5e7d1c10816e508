# Unit tests and the benchmark of the DAX core.
EXTRA_DIST += tests/unit/dax_test.h

check_PROGRAMS += tests/unit/test_xarray
TESTS += tests/unit/test_xarray
tests_unit_test_xarray_SOURCES = tests/unit/test_xarray.c tests/unit/dax_test.h
tests_unit_test_xarray_LDADD = libudax-core.la

# The same tests over the same xarray.c built with 4-slot nodes: deep trees.
check_PROGRAMS += tests/unit/test_xarray_deep
TESTS += tests/unit/test_xarray_deep
tests_unit_test_xarray_deep_SOURCES = tests/unit/test_xarray.c tests/unit/dax_test.h \
	src/core/xarray.c src/core/util.c
tests_unit_test_xarray_deep_CPPFLAGS = $(AM_CPPFLAGS) -DXA_CHUNK_SHIFT=2 -DTEST_DEEP
tests_unit_test_xarray_deep_LDADD = -lpthread

check_PROGRAMS += tests/unit/test_dax
TESTS += tests/unit/test_dax
tests_unit_test_dax_SOURCES = tests/unit/test_dax.c tests/unit/dax_test.h
tests_unit_test_dax_LDADD = libudax-core.la

check_PROGRAMS += tests/unit/test_dax_stress
TESTS += tests/unit/test_dax_stress
tests_unit_test_dax_stress_SOURCES = tests/unit/test_dax_stress.c tests/unit/dax_test.h
tests_unit_test_dax_stress_LDADD = libudax-core.la

# bench-dax: xarray loads/s, break_layouts cost vs tracked entries, DRAM
# per tracked page, and the unpin -> return wake path.  Not run by make check.
noinst_PROGRAMS += bench-dax
bench_dax_SOURCES = tests/unit/bench_dax.c
bench_dax_LDADD = libudax-core.la
