#!/bin/sh
# preload_pmempool: Debian's pmempool (pmdk-tools) creates and checks an obj
# pool on a udaxfs mount under libudax-preload.so.  Without the shim it is
# run too and what happens is printed (FUSE refuses MAP_SYNC, so PMDK falls
# back to msync-based persistence, or refuses) - that part asserts nothing.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
command -v pmempool >/dev/null || test_skip "pmempool (pmdk-tools) is not installed"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"
test_mount

echo "== without the shim (for contrast)"
PMEM_IS_PMEM_FORCE= pmempool create obj --layout x "$TEST_MNT/pool-plain" 2>&1; echo "create: exit $?"
pmempool check -v "$TEST_MNT/pool-plain" 2>&1; echo "check: exit $?"

echo "== with LD_PRELOAD=libudax-preload.so"
LD_PRELOAD=$PRELOAD UDAX_PRELOAD_DEBUG=1 pmempool create obj --layout x "$TEST_MNT/pool" 2> /dev/shm/$TEST_TAG.err
rc=$?
grep -c 'direct mapping' /dev/shm/$TEST_TAG.err | sed 's/^/direct mappings made: /'
if [ $rc != 0 ]; then cat /dev/shm/$TEST_TAG.err; echo "FAIL: pmempool create under the shim: exit $rc"; exit 1; fi
grep -q 'direct mapping' /dev/shm/$TEST_TAG.err || { echo "FAIL: the shim made no direct mapping"; exit 1; }
LD_PRELOAD=$PRELOAD pmempool check -v "$TEST_MNT/pool" || { echo "FAIL: pmempool check under the shim"; exit 1; }
LD_PRELOAD=$PRELOAD pmempool info "$TEST_MNT/pool" | head -20
rm -f /dev/shm/$TEST_TAG.err
echo PASS
exit 0
