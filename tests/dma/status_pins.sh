#!/bin/sh
# status_pins: `udaxctl status` shows a pin held by another process (its
# pid, command name and pin count) and --json is valid JSON with the same;
# a directory that is not a udaxfs mount is refused with a clear message.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
command -v jq >/dev/null || test_skip "jq is not installed"

out=$("$UDAXCTL" status /dev/shm 2>&1) && { echo "FAIL: status on tmpfs succeeded"; exit 1; }
echo "$out" | grep -q "not a udaxfs mount" || { echo "FAIL: unclear refusal: $out"; exit 1; }

test_mount
rc=1
f=$TEST_MNT/pinned
head -c 1048576 /dev/zero > "$f" || exit 1
"$UDAXCTL" pin "$f" --seconds 30 > /dev/shm/$TEST_TAG.pin &
holder=$!
i=0
until grep -q '^pinned' /dev/shm/$TEST_TAG.pin 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $holder 2>/dev/null; then
		echo "FAIL: the pin holder did not pin"; cat /dev/shm/$TEST_TAG.pin; exit 1
	fi
done

"$UDAXCTL" status "$TEST_MNT" > /dev/shm/$TEST_TAG.txt || { echo "FAIL: status"; exit 1; }
cat /dev/shm/$TEST_TAG.txt
grep -E "^ +$holder +udaxctl +[0-9]+ +[^ ]+ +1 +1 " /dev/shm/$TEST_TAG.txt >/dev/null ||
	{ echo "FAIL: status does not show pid $holder (udaxctl) with 1 layout, 1 pin"; rc=1; exit 1; }

"$UDAXCTL" status "$TEST_MNT" --json > /dev/shm/$TEST_TAG.json || { echo "FAIL: status --json"; exit 1; }
jq -e --argjson pid $holder '.clients[] | select(.pid == $pid) |
	select(.comm == "udaxctl") | select(([.layouts[].pins] | add) == 1)' \
	/dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: JSON lacks pid $holder / comm udaxctl / 1 pin"; cat /dev/shm/$TEST_TAG.json; exit 1; }
jq -e '[.pages[] | select(.pincount > 0)] | length > 0' /dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: JSON shows no pinned page"; exit 1; }

kill $holder; wait $holder
rm -f /dev/shm/$TEST_TAG.pin /dev/shm/$TEST_TAG.txt /dev/shm/$TEST_TAG.json
echo "PASS"
exit 0
