# read()/write() from direct layouts: libudax's udax_pread/udax_file and the
# preload shim's I/O, against processes that use the mount only.
check_PROGRAMS += tests/dma/preload_rw tests/dma/shim_memory
tests_dma_preload_rw_SOURCES = tests/dma/preload_rw.c
tests_dma_preload_rw_LDADD = libudax.la
# the memory benchmark's program, also the memory bound test's
tests_dma_shim_memory_SOURCES = contrib/bench/shim-memory.c
TESTS += tests/dma/preload_rw.sh tests/dma/preload_rw_recall.sh tests/dma/preload_rw_memory.sh \
	tests/dma/cachetab.sh
EXTRA_DIST += tests/dma/preload_rw.sh tests/dma/preload_rw_recall.sh \
	tests/dma/preload_rw_memory.sh tests/dma/cachetab.sh
