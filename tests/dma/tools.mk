# Tests of udaxctl status, the LD_PRELOAD shim and the truncate-dma bench.
check_PROGRAMS += tests/dma/preload_pmem2 tests/dma/preload_semantics
tests_dma_preload_semantics_SOURCES = tests/dma/preload_semantics.c
tests_dma_preload_pmem2_SOURCES = tests/dma/preload_pmem2.c
tests_dma_preload_pmem2_CFLAGS = $(AM_CFLAGS) $(PMEM2_CFLAGS)
tests_dma_preload_pmem2_LDADD = $(PMEM2_LIBS)
TESTS += tests/dma/status_pins.sh tests/dma/status_waiters.sh tests/dma/preload_pmem2.sh tests/dma/preload_pmempool.sh \
	tests/dma/preload_semantics.sh \
	tests/dma/bench_policies.sh
EXTRA_DIST += tests/dma/status_pins.sh tests/dma/status_waiters.sh tests/dma/preload_pmem2.sh tests/dma/preload_pmempool.sh \
	tests/dma/preload_semantics.sh \
	tests/dma/bench_policies.sh tests/dma/bench_common.sh
