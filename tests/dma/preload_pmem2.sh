#!/bin/sh
# preload_pmem2: under libudax-preload.so, libpmem2 maps a udaxfs file with
# MAP_SYNC and reports CACHE_LINE (not PAGE) store granularity; the data it
# writes and persists reads back through the mount with read().  Without
# the shim FUSE refuses MAP_SYNC and libpmem2 falls back to PAGE.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/preload_pmem2
[ -x "$PROG" ] || test_skip "tests/dma/preload_pmem2 is not built"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"
test_mount
f=$TEST_MNT/pmem2-file
truncate -s 4M "$f" || exit 1

echo "== without the shim"
"$PROG" "$f" page; nos=$?
echo "== with LD_PRELOAD=libudax-preload.so"
LD_PRELOAD=$PRELOAD "$PROG" "$f" cacheline; shim=$?
if [ $nos != 0 ]; then echo "FAIL: without the shim libpmem2 should get PAGE"; exit 1; fi
if [ $shim != 0 ]; then echo "FAIL: with the shim libpmem2 should get CACHE_LINE and read back its data"; exit 1; fi
echo PASS
exit 0
