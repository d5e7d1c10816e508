#!/bin/sh
# recall_scope: a truncate recalls the layouts of its own file and no other.
# Four files are pinned by four holders (udaxctl pin, which gives its layout
# back when recalled); truncating one completes (its holder was recalled and
# let go), while the other three layouts stay granted, pinned and not
# recalling, and their holders keep running.  Recalls find layouts through
# the daemon's per-inode index: a layout missing from it would leave the
# truncate waiting (FAIL: it did not finish), one recalled through a shared
# chain would show "recalling" (FAIL below).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
command -v jq >/dev/null || test_skip "jq is not installed"
test_mount
holders=""
for n in a b c d; do
	head -c 262144 /dev/zero > "$TEST_MNT/$n" || exit 1
	"$UDAXCTL" pin "$TEST_MNT/$n" --seconds 120 > "/dev/shm/$TEST_TAG.$n" &
	eval "pid_$n=$!"
	holders="$holders $!"
done
for n in a b c d; do
	i=0
	until grep -q '^pinned' "/dev/shm/$TEST_TAG.$n" 2>/dev/null; do
		sleep 0.1; i=$((i + 1))
		[ $i -lt 150 ] || { echo "FAIL: holder of $n did not pin"; kill $holders; exit 1; }
	done
done

timeout 60 truncate -s 0 "$TEST_MNT/a" ||
	{ echo "FAIL: the truncate of a did not finish (its layout was not recalled)"; kill $holders; exit 1; }
i=0
while kill -0 $pid_a 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
	[ $i -lt 150 ] || { echo "FAIL: the holder of a was not recalled"; kill $holders; exit 1; }
done

"$UDAXCTL" status "$TEST_MNT" --json > "/dev/shm/$TEST_TAG.json" ||
	{ echo "FAIL: status"; kill $holders; exit 1; }
for n in b c d; do
	eval "p=\$pid_$n"
	kill -0 "$p" 2>/dev/null || { echo "FAIL: the holder of $n went away"; kill $holders; exit 1; }
	jq -e --arg f "/$n" '[.clients[].layouts[] | select(.file == $f and .pins == 1 and
		(.recalling | not) and .mapped)] | length == 1' "/dev/shm/$TEST_TAG.json" > /dev/null ||
		{ echo "FAIL: the layout of $n was touched by the recall of a"
		  jq . "/dev/shm/$TEST_TAG.json"; kill $holders; exit 1; }
done
jq -e '[.clients[].layouts[] | select(.file == "/a")] | length == 0' "/dev/shm/$TEST_TAG.json" \
	> /dev/null || { echo "FAIL: a's layout is still there"; kill $holders; exit 1; }
kill $holders 2>/dev/null
wait
echo PASS
exit 0
