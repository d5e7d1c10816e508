#!/bin/sh
# Stale DMA through an unmodified program under libudax-preload.so that
# registers its own direct mapping as an io_uring fixed buffer (liburing,
# and a raw io_uring_register(2)); the daemon must discover the ring and
# revoke the buffer before truncate/punch/unlink free the blocks.  Also on a
# 2 MiB-aligned device.  Each with its negative control.
. "${top_srcdir:-.}/tests/dma/stale_common.sh"
stale default shim-liburing 10
stale default shim-raw 10
UDAX_TEST_EMUL_ALIGN=2M
export UDAX_TEST_EMUL_ALIGN
stale emul_align=2M shim-liburing 6
stale_exit
