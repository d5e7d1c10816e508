#!/bin/sh
# status_waiters: a truncate blocked behind a pin whose holder ignores the
# recall shows up in `udaxctl status` as a waiter (text and JSON); the
# truncate stays blocked while the pin is held and completes once the
# holder exits.  The waiter's file is named by the daemon.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
command -v jq >/dev/null || test_skip "jq is not installed"
test_mount
f=$TEST_MNT/waited-on
out=/dev/shm/$TEST_TAG.out
head -c 1048576 /dev/zero > "$f" || exit 1
"$UDAXCTL" pin "$f" --seconds 60 --ignore-recall > $out &
holder=$!
i=0
until grep -q '^pinned' $out 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
	[ $i -lt 100 ] && kill -0 $holder 2>/dev/null || { echo "FAIL: no pin"; cat $out; exit 1; }
done
truncate -s 0 "$f" &
trunc=$!
# wait until the daemon shows the truncate waiting (a condition, not a delay)
i=0
until "$UDAXCTL" status "$TEST_MNT" --json | jq -e '(.waiters | length) >= 1' >/dev/null; do
	sleep 0.1; i=$((i + 1))
	[ $i -lt 300 ] && kill -0 $trunc 2>/dev/null ||
		{ echo "FAIL: the truncate did not wait for the pin"; kill $holder; exit 1; }
done
kill -0 $trunc 2>/dev/null || { echo "FAIL: the truncate did not wait for the pin"; kill $holder; exit 1; }
# stat(2) must not queue behind the waiting truncate (getattr answers from
# the snapshot the truncate published): the old size, at once.
sz=$(timeout 3 stat -c %s "$f") ||
	{ echo "FAIL: stat blocked behind the truncate waiting for DMA"; kill $holder; exit 1; }
[ "$sz" = 1048576 ] || { echo "FAIL: stat during the wait shows size $sz, not 1048576"; kill $holder; exit 1; }

"$UDAXCTL" status "$TEST_MNT" | tee $out.txt
grep -E "ino [0-9]+ \(/waited-on\) pages 0\.\.(EOF|[0-9]+): waiting" $out.txt >/dev/null ||
	{ echo "FAIL: status shows no waiter on /waited-on"; kill $holder; exit 1; }
"$UDAXCTL" status "$TEST_MNT" --json > $out.json
jq -e '(.waiters | length) >= 1 and ([.clients[].layouts[] | select(.recalling)] | length) >= 1' \
	$out.json >/dev/null || { echo "FAIL: JSON lacks the waiter / recalling layout"; cat $out $out.json; kill $holder; exit 1; }
# the daemon names the file although its truncate holds the inode's lock
jq -e '[.waiters[] | select(.file == "/waited-on" and .end == -1)] | length >= 1' $out.json >/dev/null ||
	{ echo "FAIL: the waiter is not on /waited-on to EOF"; cat $out.json; kill $holder; exit 1; }

kill $holder
wait $holder
i=0
while kill -0 $trunc 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
	[ $i -lt 100 ] || { echo "FAIL: the truncate did not finish after the pin went"; exit 1; }
done
wait $trunc || { echo "FAIL: the truncate failed"; exit 1; }
[ "$(stat -c %s "$f")" = 0 ] || { echo "FAIL: size is not 0"; exit 1; }
rm -f $out $out.txt $out.json
echo PASS
exit 0
