#!/bin/sh
# The direct-access tests again with -o writeback_cache (set by the harness
# and test_mount from UDAX_TEST_MOUNT_OPTS): the kernel then holds write()s
# dirty and owns the file size.  A grant must write those pages back before
# the client sees the range (dma_coherence step 5), a mapping past EOF must
# grow the file as the kernel sees it, and truncate must still wait for
# every pin with the kernel's write-back in the picture.
# Exit: 0 all passed, 77 all skipped, 1 a failure.
. "${top_srcdir:-.}/tests/dma/rerun.sh"
UDAX_TEST_MOUNT_OPTS=writeback_cache
export UDAX_TEST_MOUNT_OPTS
rerun writeback_cache dma_coherence dma_security dma_truncate_wait dma_eintr dma_pin_munmap \
	preload_semantics.sh preload_pmem2.sh
