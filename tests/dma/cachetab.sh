#!/bin/sh
# cachetab: the reason the daemon's page-cache table exists (its protocol
# is tests/dma/dma_cachetab's): a reader through the mount, whose pages the
# flag must account for, re-reads after each direct write and must see it.
# Negative control: a daemon that does not mark READs
# (UDAX_TEST_NO_FILL_NOTE=1) leaves the flag clear, the writer skips its
# look, and the coherence check sees the stale reads.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
set -u	# an unset mount variable must stop the test, not write elsewhere
RW=$top_builddir/tests/dma/preload_rw
[ -x "$RW" ] || test_skip "tests/dma/preload_rw is not built"
test_mount_shim allow_other
rc=0
fail() { echo "FAIL: $*"; rc=1; }

LD_PRELOAD=$PRELOAD "$RW" coherence "$TEST_MNT/coh" 16 ||
	fail "a reader through the mount read stale data after a direct write returned"

fusermount3 -u "$TEST_MNT" || fail "unmount"
TEST_MOUNTED=0
rm -f "$TEST_DEV"	# a fresh image for the second mount
UDAX_TEST_NO_FILL_NOTE=1 test_mount allow_other
LD_PRELOAD=$PRELOAD "$RW" coherence "$TEST_MNT/coh-stale" 16 >/dev/null 2>&1
st=$?
[ $st = 1 ] || fail "negative control: a daemon that does not mark READs, and no stale read was seen (exit $st)"

[ $rc = 0 ] && echo PASS
exit $rc
