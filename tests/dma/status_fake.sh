#!/bin/sh
# status_fake: `udaxctl status` against a stand-in daemon (status_fake).  A
# valid record stream is printed (text and JSON: device object, file name,
# page run); every broken stream - cut short, lengths that lie, no END, an
# unknown version, an older daemon's JSON, garbage - ends in exit 1 with a
# message naming the fault, never in a crash or a hang.  The valid stream is
# the control: it shows the stand-in is reached and its replies are read.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
command -v jq >/dev/null || test_skip "jq is not installed"
FAKE=$top_builddir/tests/dma/status_fake
[ -x "$FAKE" ] || test_skip "status_fake is not built"
out=/dev/shm/$TEST_TAG
trap 'rm -f "${out:?}".*' EXIT

# run_fake MODE [udaxctl options]: serve one reply of MODE; udaxctl's exit
# status in $rc, its output in $out.out / $out.err
run_fake() {
	mode=$1; shift
	: > "$out.name"
	"$FAKE" "$mode" > "$out.name" &
	fake=$!
	i=0
	until [ -s "$out.name" ]; do
		i=$((i + 1))
		if [ $i -gt 200 ] || ! kill -0 $fake 2>/dev/null; then
			echo "FAIL: the stand-in daemon ($mode) did not start"; exit 1
		fi
		sleep 0.05
	done
	rc=0
	UDAXCTL_TEST_STATUS_SOCKET=$(head -n 1 "$out.name") timeout 30 \
		"$UDAXCTL" status /fake/mnt "$@" > "$out.out" 2> "$out.err" || rc=$?
	kill $fake 2>/dev/null
	wait $fake 2>/dev/null
}

run_fake good
[ $rc = 0 ] || { echo "FAIL: a valid stream was refused ($rc)"; cat "$out.err"; exit 1; }
cat "$out.out"
grep -q "/dir/fakefile" "$out.out" || { echo "FAIL: the file name is not shown"; exit 1; }
grep -Eq "^ +12 +/dir/fakefile +8192 " "$out.out" ||
	{ echo "FAIL: the page run of 8192 pages is not counted"; exit 1; }
run_fake good --json
[ $rc = 0 ] || { echo "FAIL: --json of a valid stream ($rc)"; cat "$out.err"; exit 1; }
jq -e '.device.chardev == "dax7.1" and .device.mode == "devdax" and
	.device.size == 1073741824 and .device.align == 4096 and .device.target_node == 0 and
	.clients[0].layouts[0].file == "/dir/fakefile" and .pages[0].npages == 8192 and
	.truncated == 0 and .pid == 4242' "$out.out" > /dev/null ||
	{ echo "FAIL: JSON of the valid stream"; cat "$out.out"; exit 1; }

# MODE and a phrase its message must contain
while read -r mode phrase; do
	run_fake "$mode"
	if [ $rc -ne 1 ]; then
		echo "FAIL: $mode: exit status $rc, not 1"; cat "$out.out" "$out.err"; exit 1
	fi
	grep -q -- "$phrase" "$out.err" ||
		{ echo "FAIL: $mode: the message does not say \"$phrase\":"; cat "$out.err"; exit 1; }
	echo "ok: $mode: $(cat "$out.err")"
done <<LIST
cut runs past the end of the reply
noend ends without it
badlen is not a multiple of 8
shortrec shorter than the
hugelen runs past the end of the reply
tiny less than a record header
empty ends without it
nohead does not start with a HEAD record
version this reader knows version
orphan no earlier CLIENT record
nostring not NUL-terminated
miscount records before it
json older udaxfs
garbage status record 1
error the fake daemon refuses
LIST
echo PASS
exit 0
