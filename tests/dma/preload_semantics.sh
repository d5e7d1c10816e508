#!/bin/sh
# preload_semantics: the shim's end-of-file, partial munmap, mremap, msync
# and access-mode decisions (libudax-preload(7)) hold on a udaxfs file.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/preload_semantics
[ -x "$PROG" ] || h7_skip "tests/dma/preload_semantics is not built"
[ -f "$PRELOAD" ] || h7_skip "libudax-preload.so is not built"
h7_mount
LD_PRELOAD=$PRELOAD "$PROG" "$H7_MNT/semantics" || { echo "FAIL"; exit 1; }
echo PASS
exit 0
