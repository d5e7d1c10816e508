# read()/write() from direct layouts: libudax's udax_pread/udax_file and the
# preload shim's I/O, against processes that use the mount only.
check_PROGRAMS += tests/dma/preload_rw
tests_dma_preload_rw_SOURCES = tests/dma/preload_rw.c
tests_dma_preload_rw_LDADD = libudax.la
TESTS += tests/dma/preload_rw.sh tests/dma/preload_rw_recall.sh
EXTRA_DIST += tests/dma/preload_rw.sh tests/dma/preload_rw_recall.sh
