# tests/dma/stale_common.sh - sourced by the stale_*.sh tests: run modes of
# the stale-DMA detector (tests/dma/dma_stale), each followed by its
# NEGATIVE CONTROL (the same mode with the daemon's ring verification off,
# which must report corrupted pages).
#   stale LABEL MODE ITERATIONS
# Sets fail=1 on a failure; counts ran/skipped.  stale_exit ends the test:
# 0 all passed, 77 all skipped, 1 a failure.
fail=0 ran=0
PROG=${top_builddir:-.}/tests/dma/dma_stale
stale() {
	label=$1 mode=$2 n=$3
	echo "== $mode ($label)"
	"$PROG" "$mode" "$n"
	rc=$?
	case $rc in
	0) ran=$((ran + 1)) ;;
	77) echo "$mode: skipped"; return ;;
	*) echo "$mode: FAILED (exit $rc)"; fail=1; return ;;
	esac
	"$PROG" "$mode" "$n" --control
	rc=$?
	case $rc in
	0) ;;
	77) echo "$mode --control: skipped" ;;
	*) echo "$mode --control: FAILED (exit $rc): the detector saw nothing"; fail=1 ;;
	esac
}
stale_exit() {
	[ $fail -ne 0 ] && exit 1
	[ $ran -eq 0 ] && exit 77
	exit 0
}
