#!/bin/sh
# preload_rw: read()/write() and friends under libudax-preload.so are served
# from direct layouts and agree with processes that use the mount only;
# libudax's udax_pread/udax_pwrite/udax_file_*; a random-operation checker
# (pread/pwrite/read/write, truncate, punch, zero range, mapped writes) gives
# the same file with and without the shim; a reader through the mount sees
# every direct write that returned; the fallbacks (a uid not in
# dax_allow, UDAX_PRELOAD_IO=0) keep working through the mount.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/dma/bench_common.sh"
set -u	# an unset mount variable must stop the test, not write elsewhere
PROG=$top_builddir/tests/dma/preload_rw
[ -x "$PROG" ] || test_skip "tests/dma/preload_rw is not built"
test_mount_shim allow_other
rc=0
fail() { echo "FAIL: $*"; rc=1; }

# the test can see whether I/O went direct: it does not, without the shim
"$PROG" direct && fail "the direct-path detector sees a layout without the shim"

LD_PRELOAD=$PRELOAD "$PROG" calls "$TEST_MNT" || fail "calls under the shim"
"$PROG" api "$TEST_MNT" || fail "libudax API"

# the kernel's page cache: a reader through the mount whose descriptor was
# opened before the writer's grant re-reads after every direct write and must
# see it.  Negative control: with the invalidation off (UDAX_TEST_NO_INVAL=1)
# the same reader is served stale cached pages, and the check sees it.
LD_PRELOAD=$PRELOAD "$PROG" coherence "$TEST_MNT/coh" 8 ||
	fail "a reader through the mount read stale data after a direct write returned"
UDAX_TEST_NO_INVAL=1 LD_PRELOAD=$PRELOAD "$PROG" coherence "$TEST_MNT/coh-stale" 8 >/dev/null 2>&1
st=$?
[ $st = 1 ] || fail "negative control: without the invalidation no stale read was seen (exit $st)"

# fsx: the same seeds with and without the shim give the same file
for seed in 1 2 3; do
	a=$(LD_PRELOAD=$PRELOAD "$PROG" fsx "$TEST_MNT/fsx-shim" $seed 3000 2>"$TEST_DEV.err") ||
		{ cat "$TEST_DEV.err"; fail "fsx seed $seed under the shim"; }
	grep -q "direct layouts used" "$TEST_DEV.err" || fail "fsx seed $seed: the shim never went direct"
	b=$("$PROG" fsx "$TEST_MNT/fsx-fuse" $seed 3000) || fail "fsx seed $seed through FUSE"
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "fsx seed $seed: shim '$a' vs FUSE '$b'"
	echo "fsx seed $seed: $a"
done

# not allowed direct access (default dax_allow: the mount's owner): nobody
# gets the mount's answers, and no layout
chmod 777 "$TEST_MNT"
if command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups env LD_PRELOAD="$PRELOAD" \
		"$PROG" fsx "$TEST_MNT/fsx-nobody" 1 1500 2>"$TEST_DEV.err" >/dev/null ||
		fail "fsx as a uid not in dax_allow"
	grep -q "direct layouts not used" "$TEST_DEV.err" || fail "a uid not in dax_allow went direct"
	a=$(LD_PRELOAD=$PRELOAD "$PROG" fsx "$TEST_MNT/fsx-root" 1 1500)
	b=$(setpriv --reuid=65534 --regid=65534 --clear-groups env LD_PRELOAD="$PRELOAD" \
		"$PROG" fsx "$TEST_MNT/fsx-nobody" 1 1500)
	[ "$a" = "$b" ] || fail "not-allowed fsx differs: '$a' vs '$b'"
else
	echo "note: no setpriv; the not-allowed case is covered by dma_security"
fi
# the shim switched off: everything through the C library
a=$(UDAX_PRELOAD_IO=0 LD_PRELOAD=$PRELOAD "$PROG" fsx "$TEST_MNT/fsx-off" 2 1500) || fail "fsx with UDAX_PRELOAD_IO=0"
b=$(LD_PRELOAD=$PRELOAD "$PROG" fsx "$TEST_MNT/fsx-on" 2 1500)
[ "$a" = "$b" ] || fail "UDAX_PRELOAD_IO=0 fsx differs"

[ $rc = 0 ] && echo PASS
exit $rc
