#!/bin/sh
# preload_semantics: the shim's end-of-file, partial munmap, mremap, msync
# and access-mode decisions (libudax-preload(7)) hold on a udaxfs file.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/preload_semantics
[ -x "$PROG" ] || test_skip "tests/dma/preload_semantics is not built"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"
test_mount
LD_PRELOAD=$PRELOAD "$PROG" "$TEST_MNT/semantics" || { echo "FAIL"; exit 1; }
echo PASS
exit 0
