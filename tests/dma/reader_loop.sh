#!/bin/sh
# The direct-access tests again with -o reader_loop (set by the harness from
# UDAX_TEST_MOUNT_OPTS): one reader thread serves requests inline and a
# watchdog hands the reading over when that thread sleeps inside a request.
# A truncate that waits in break_layouts for DMA to drain must not stall
# the mount (dma_truncate_wait: the pin's release goes through the same
# mount), its FUSE_INTERRUPT must still be read and end the wait
# (dma_eintr), and a client's death must still release its pins (dma_kill).
# Exit: 0 all passed, 77 all skipped, 1 a failure.
. "${top_srcdir:-.}/tests/dma/rerun.sh"
UDAX_TEST_MOUNT_OPTS=reader_loop
export UDAX_TEST_MOUNT_OPTS
rerun reader_loop dma_truncate_wait dma_eintr dma_kill preload_semantics.sh
