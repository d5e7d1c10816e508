#!/bin/sh
# preload_rw_memory: the client's memory for read()/write() from direct
# layouts stays bounded per open file, and closing gives it back.
#
# Under libudax-preload.so, N files are opened at once, each read once (a
# layout per file), written once (the layout reopened writable) and closed;
# three rounds (contrib/bench/shim-memory.c).  RssAnon (the heap; the
# device pages are shared memory) is read at each step.
#   - round 1, read: at least HELD_B a file (the negative control: the
#     measurement sees per-file state of the size a leak would have) and at
#     most MAX_B a file (the bound: about 400-600 bytes measured);
#   - rounds 2 and 3 (the heap reuses what round 1 freed): at most LEFT_B a
#     file in all, from round 1's end to round 3's.  A close that leaked its
#     window and layout would grow each round by about HELD_B or more.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
set -u	# an unset mount variable must stop the test, not write elsewhere
PROG=$top_builddir/tests/dma/shim_memory
N=400
HELD_B=128
MAX_B=2048
LEFT_B=64
[ -x "$PROG" ] || test_skip "tests/dma/shim_memory is not built"
[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"
test_mount
[ -n "$TEST_MNT" ] && mountpoint -q "$TEST_MNT" || { echo "FAIL: no mount"; exit 1; }
mkdir "$TEST_MNT/mem" || exit 1
out=$(LD_PRELOAD=$PRELOAD "$PROG" "$TEST_MNT/mem" $N - 3) || { echo "FAIL: shim_memory: $out"; exit 1; }
echo "$out"
# KIB STEP ROUND: the client's RssAnon at STEP of ROUND (0: the start)
kib() { echo "$out" | awk -v s="$1" -v r="$2" '/^round/ { cur = $2 }
	$1 == s && (cur + 0) == r { print $4; exit }'; }
start=$(kib start 0) read1=$(kib read 1) end1=$(kib closed 1) end3=$(kib closed 3)
for v in "$start" "$read1" "$end1" "$end3"; do
	[ -n "$v" ] || { echo "FAIL: could not read the figures"; exit 1; }
done
held=$(( (read1 - start) * 1024 / N )) left=$(( (end3 - end1) * 1024 / N ))
echo "per file: $held B with a layout (bounds $HELD_B..$MAX_B), $left B left over two more rounds (<= $LEFT_B)"
rc=0
[ $held -ge $HELD_B ] || { echo "FAIL: negative control: the measurement saw no per-file memory"; rc=1; }
[ $held -le $MAX_B ] || { echo "FAIL: $held bytes a file open with a layout (bound $MAX_B)"; rc=1; }
[ $left -le $LEFT_B ] || { echo "FAIL: $left bytes a file kept after close, round after round"; rc=1; }
[ $rc = 0 ] && echo PASS
exit $rc
