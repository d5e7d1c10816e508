# tests/dma/rerun.sh - sourced by align2m.sh and writeback.sh: run direct-
# access tests again under a changed environment.
#   rerun LABEL TEST...   a TEST ending in .sh is a script in tests/dma/,
#                         anything else a built test program there.
# Exits: 0 all passed, 77 all skipped, 1 a failure.
rerun() {
	label=$1
	shift
	fail=0 ran=0
	for t in "$@"; do
		echo "== $t ($label)"
		case $t in
		*.sh) sh "${top_srcdir:-.}/tests/dma/$t" ;;
		*) "${top_builddir:-.}/tests/dma/$t" ;;
		esac
		rc=$?
		case $rc in
		0) ran=$((ran + 1)) ;;
		77) echo "$t: skipped" ;;
		*) echo "$t: FAILED (exit $rc)"; fail=1 ;;
		esac
	done
	[ $fail -ne 0 ] && exit 1
	[ $ran -eq 0 ] && exit 77
	exit 0
}
