#!/bin/sh
# preload_rw_recall: a process streams 1 MiB direct pwrite()s (under
# libudax-preload.so) while another truncates the file, refills the freed
# blocks with a second file and checks that file never changes: no copy may
# run into a block after its recall was answered, and the writer must never
# fail.  Negative control: UDAX_TEST_RECALL_NO_DRAIN=1 makes the recall skip
# waiting for copies in progress; the late copy then faults in the writer
# (the recalled range raises SIGBUS), and the checker must see that failure.
# Then the EBUSY fallback (preload_rw busy).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
set -u	# an unset mount variable must stop the test, not write elsewhere
PROG=$top_builddir/tests/dma/preload_rw
[ -x "$PROG" ] || test_skip "tests/dma/preload_rw is not built"
test_mount_shim
rc=0
LD_PRELOAD=$PRELOAD "$PROG" stream "$TEST_MNT/f" "$TEST_MNT/g" 4 || { echo "FAIL: recall during direct writes"; rc=1; }
caught=0
for i in 1 2 3; do
	LD_PRELOAD=$PRELOAD UDAX_TEST_RECALL_NO_DRAIN=1 "$PROG" stream "$TEST_MNT/f$i" "$TEST_MNT/g$i" 3 \
		>/dev/null 2>&1
	st=$?
	if [ $st != 0 ]; then caught=1; echo "negative control: caught (exit status $st)"; break; fi
done
[ $caught = 1 ] || { echo "FAIL: without the drain the checker saw nothing"; rc=1; }

# a recall under way: grants are refused with EBUSY and pread/pwrite under the
# shim fall back to the mount, whole and with the right data.  Negative
# control: UDAX_TEST_BUSY_FAILS=1 (no fallback: the call fails with EBUSY)
LD_PRELOAD=$PRELOAD "$PROG" busy "$TEST_MNT" || { echo "FAIL: fallback while a recall is under way"; rc=1; }
LD_PRELOAD=$PRELOAD UDAX_TEST_BUSY_FAILS=1 "$PROG" busy "$TEST_MNT" >/dev/null 2>&1 &&
	{ echo "FAIL: negative control: the fallback test passed without the fallback"; rc=1; }
[ $rc = 0 ] && echo PASS
exit $rc
