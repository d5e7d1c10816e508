#!/bin/sh
# preload_race: a recall that overtakes the shim's MAP reply tears the fresh
# mapping down before the truncate frees the blocks (libudax-preload(7),
# "Recalls").  The shim is made to stall between the MAP reply and
# registering the layout while another process truncates the file; stores
# through the mapping afterwards must fault and must not reach the blocks
# the truncate freed (a second file refills them).  Negative control: with
# the recall dropped when it finds no layout (what the shim used to do),
# the same run must see the second file corrupted.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/preload_race
[ -x "$PROG" ] || test_skip "tests/dma/preload_race is not built"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"

test_mount
echo "== with the orphan recall delivered (the fix)"
UDAX_PRELOAD_TEST_MAP_DELAY_MS=1500 LD_PRELOAD=$PRELOAD "$PROG" "$TEST_MNT"
rc=$?
[ $rc = 0 ] || { echo "FAIL: the race corrupted the refill or did not fault (rc $rc)"; exit 1; }
test_cleanup; TEST_MOUNTED=0

test_mount
echo "== negative control: UDAX_TEST_DROP_ORPHANS=1"
UDAX_TEST_DROP_ORPHANS=1 UDAX_PRELOAD_TEST_MAP_DELAY_MS=1500 LD_PRELOAD=$PRELOAD "$PROG" "$TEST_MNT"
rc=$?
[ $rc = 2 ] || { echo "FAIL: the negative control did not see the corruption (rc $rc)"; exit 1; }
echo PASS
exit 0
