#!/bin/sh
# status_pins: `udaxctl status` shows a pin held by another process (its
# pid, command name and pin count) and --json is valid JSON with the same;
# a pin over 32 MiB (8192 pages, twice the old limit of the page list) is
# reported whole as page runs, nothing truncated; the file is named by the
# daemon (its path, or "(unlinked)" once its last name is gone: the name
# comes from the directories at the time of asking); the device object has
# daxctl's keys; another user sees neither pids nor names of root's
# layouts; a directory that is not a udaxfs mount is refused with a clear
# message.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
command -v jq >/dev/null || test_skip "jq is not installed"

out=$("$UDAXCTL" status /dev/shm 2>&1) && { echo "FAIL: status on tmpfs succeeded"; exit 1; }
echo "$out" | grep -q "not a udaxfs mount" || { echo "FAIL: unclear refusal: $out"; exit 1; }

test_mount
rc=1
f=$TEST_MNT/pinned
mkdir "$TEST_MNT/sub" || exit 1
head -c 33554432 /dev/zero > "$f" || exit 1
"$UDAXCTL" pin "$f" --seconds 60 > /dev/shm/$TEST_TAG.pin &
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
# every pinned page, as runs: 8192 pages of 4 KiB, more than any old limit
pinned=$(jq '[.pages[] | select(.pincount > 0) | .npages] | add' /dev/shm/$TEST_TAG.json)
[ "$pinned" -ge 8192 ] 2>/dev/null ||
	{ echo "FAIL: the page runs cover $pinned pinned pages, not 8192"; exit 1; }
jq -e '.truncated == 0' /dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: the status was truncated"; exit 1; }
jq -e '.clients[].layouts[] | select(.file == "/pinned")' /dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: the layout is not named /pinned"; exit 1; }
grep -q " /pinned " /dev/shm/$TEST_TAG.txt || { echo "FAIL: the table does not name /pinned"; exit 1; }
jq -e '.device | (.chardev | type) == "string" and .size >= 33554432 and .align >= 4096 and
	(.target_node | type) == "number" and (.mode == "emulation" or .mode == "devdax")' /dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: the device object"; jq .device /dev/shm/$TEST_TAG.json; exit 1; }

# another user (neither root nor allowed direct access), asking the daemon's
# socket directly (the mount itself is closed to it): no pid, no comm, no
# file names of root's layouts; root above saw all three
if command -v setpriv >/dev/null; then
	dpid=$(jq .pid /dev/shm/$TEST_TAG.json)
	sock=$(grep -o "@udaxfs-$dpid-[0-9a-f]*" /proc/net/unix | head -n 1)
	[ -n "$sock" ] || { echo "FAIL: the daemon's socket is not in /proc/net/unix"; exit 1; }
	UDAXCTL_TEST_STATUS_SOCKET=$sock setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$UDAXCTL" status "$TEST_MNT" --json > /dev/shm/$TEST_TAG.other ||
		{ echo "FAIL: status as another user"; exit 1; }
	jq -e '([.clients[] | select(.asker | not)] | length) >= 1 and
		([.clients[] | select(.asker | not) | select(.pid != null or .comm != "")] | length) == 0 and
		([.clients[].layouts[] | select(.file != null)] | length) == 0 and
		(.files | length) == 0' /dev/shm/$TEST_TAG.other > /dev/null ||
		{ echo "FAIL: another user sees root's pids or file names"; cat /dev/shm/$TEST_TAG.other; exit 1; }
fi

# a file in a subdirectory, pinned, then unlinked: named while it has a
# name, "(unlinked)" after
g=$TEST_MNT/sub/gone
head -c 65536 /dev/zero > "$g" || exit 1
"$UDAXCTL" pin "$g" --seconds 60 > /dev/shm/$TEST_TAG.pin2 &
holder2=$!
i=0
until grep -q '^pinned' /dev/shm/$TEST_TAG.pin2 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $holder2 2>/dev/null; then
		echo "FAIL: the second pin holder did not pin"; cat /dev/shm/$TEST_TAG.pin2; exit 1
	fi
done
"$UDAXCTL" status "$TEST_MNT" --json > /dev/shm/$TEST_TAG.json || { echo "FAIL: status --json"; exit 1; }
jq -e '.files[] | select(.name == "/sub/gone")' /dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: /sub/gone is not named"; jq .files /dev/shm/$TEST_TAG.json; exit 1; }
rm "$g" || exit 1
"$UDAXCTL" status "$TEST_MNT" --json > /dev/shm/$TEST_TAG.json || { echo "FAIL: status --json"; exit 1; }
jq -e --argjson pid $holder2 '.clients[] | select(.pid == $pid) | .layouts[] |
	select(.file == "(unlinked)")' /dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: the unlinked file is not shown as (unlinked)"; jq . /dev/shm/$TEST_TAG.json; exit 1; }
jq -e '.clients[].layouts[] | select(.file == "/pinned")' /dev/shm/$TEST_TAG.json > /dev/null ||
	{ echo "FAIL: /pinned lost its name"; exit 1; }
kill $holder2; wait $holder2

kill $holder; wait $holder
rm -f /dev/shm/$TEST_TAG.pin /dev/shm/$TEST_TAG.pin2 /dev/shm/$TEST_TAG.txt /dev/shm/$TEST_TAG.json \
	/dev/shm/$TEST_TAG.other
echo "PASS"
exit 0
