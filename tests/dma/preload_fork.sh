#!/bin/sh
# preload_fork: under the shim, a forked child's first mmap of a udaxfs file
# opens its own connection (it must not hang on the parent's), and the
# parent's mapping and connection still work afterwards.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/preload_fork
[ -x "$PROG" ] || test_skip "tests/dma/preload_fork is not built"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"
test_mount
LD_PRELOAD=$PRELOAD UDAX_PRELOAD_DEBUG=${UDAX_PRELOAD_DEBUG:-0} "$PROG" "$TEST_MNT" || { echo "FAIL"; exit 1; }
echo PASS
exit 0
