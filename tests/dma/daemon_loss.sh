#!/bin/sh
# daemon_loss: when the daemon dies, a libudax client (mapped and pinned,
# with a recall handler) and a preload shim client both see their direct
# mappings recalled within 5 s: accesses raise SIGBUS and the device is no
# longer mapped in the process (libudax(7), libudax-preload(7)).  Negative
# control: with the loss not delivered (UDAX_TEST_IGNORE_DAEMON_LOSS=1)
# the same probes must see the mappings still reach the device.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
PROG=$top_builddir/tests/dma/daemon_loss_client
[ -x "$PROG" ] || test_skip "tests/dma/daemon_loss_client is not built"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"
S=/dev/shm/$TEST_TAG

# run_case WANT [ENV...]: both clients must exit WANT after the daemon is killed
run_case() {
	want=$1; shift
	test_mount
	rm -f $S.ready-* $S.killed
	head -c 1048576 /dev/zero > "$TEST_MNT/lib" && head -c 1048576 /dev/zero > "$TEST_MNT/shim" || exit 1
	pid=$("$UDAXCTL" status "$TEST_MNT" --json | sed -n 's/^{"version":[0-9]*,"pid":\([0-9]*\).*/\1/p')
	[ -n "$pid" ] || { echo "FAIL: no daemon pid in the status"; exit 1; }
	env "$@" "$PROG" lib "$TEST_MNT/lib" "$TEST_DEV" $S.ready-lib $S.killed & c1=$!
	env "$@" LD_PRELOAD=$PRELOAD "$PROG" shim "$TEST_MNT/shim" "$TEST_DEV" $S.ready-shim $S.killed & c2=$!
	i=0
	until [ -e $S.ready-lib ] && [ -e $S.ready-shim ]; do
		sleep 0.1; i=$((i + 1))
		if [ $i -gt 200 ]; then
			echo "FAIL: the clients did not map"; kill $c1 $c2 2>/dev/null; exit 1
		fi
		if ! kill -0 $c1 2>/dev/null || ! kill -0 $c2 2>/dev/null; then
			wait $c1; r1=$?; wait $c2; r2=$?
			[ $r1 = 77 ] && test_skip "io_uring is not available"
			echo "FAIL: a client exited before mapping ($r1, $r2)"; exit 1
		fi
	done
	kill -KILL "$pid"
	touch $S.killed
	wait $c1; r1=$?
	wait $c2; r2=$?
	[ $r1 = 77 ] && test_skip "io_uring is not available"
	[ $r1 = "$want" ] && [ $r2 = "$want" ] ||
		{ echo "FAIL: expected $want from both clients, got lib $r1, shim $r2"; exit 1; }
	test_cleanup; TEST_MOUNTED=0
	rm -f $S.ready-* $S.killed
}

echo "== the daemon is killed"
run_case 0
echo "== negative control: the loss is not delivered"
run_case 2 UDAX_TEST_IGNORE_DAEMON_LOSS=1
echo PASS
exit 0
