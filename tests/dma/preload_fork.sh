#!/bin/sh
# preload_fork: under the shim, a forked child's first mmap of a udaxfs file
# opens its own connection (it must not hang on the parent's), and the
# parent's mapping and connection still work afterwards.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/preload_fork
[ -x "$PROG" ] || h7_skip "tests/dma/preload_fork is not built"
[ -f "$PRELOAD" ] || h7_skip "libudax-preload.so is not built"
h7_mount
LD_PRELOAD=$PRELOAD UDAX_PRELOAD_DEBUG=${UDAX_PRELOAD_DEBUG:-0} "$PROG" "$H7_MNT" || { echo "FAIL"; exit 1; }
echo PASS
exit 0
