#!/bin/sh
# preload_pin: the shim declares the pins an unmodified program makes by
# registering its direct mapping as io_uring fixed buffers (liburing and
# syscall()), releases them on unregistration, keeps a pinned layout past
# munmap, and fails a registration during a recall with EBUSY.  Negative
# control: with the declarations disabled (UDAX_PRELOAD_TEST_NO_PIN=1),
# the daemon sees no pin and the registration during the recall succeeds.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/preload_pin
[ -x "$PROG" ] || test_skip "tests/dma/preload_pin is not built"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"

test_mount
UDAX_PRELOAD_TEST_RECALL_DELAY_MS=1000 LD_PRELOAD=$PRELOAD "$PROG" "$TEST_MNT" declare
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || { echo "FAIL: declared pins (rc $rc)"; exit 1; }
test_cleanup; TEST_MOUNTED=0

test_mount
UDAX_PRELOAD_TEST_NO_PIN=1 UDAX_PRELOAD_TEST_RECALL_DELAY_MS=1000 LD_PRELOAD=$PRELOAD "$PROG" "$TEST_MNT" control
rc=$?
[ $rc = 0 ] || { echo "FAIL: the negative control (rc $rc)"; exit 1; }
echo PASS
exit 0
