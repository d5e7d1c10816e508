#!/bin/sh
# fuzz-replay: replay the seed corpus (regenerated here by fuzz_mkbase), the
# committed regression inputs (tests/fuzz/regressions) and what earlier
# fuzzing runs found, through the fuzz target built with the normal
# compiler.  Runs even without clang.  Exit 0 pass, 1 fail, 77 skip.
set -u
b=${top_builddir:-.}
s=${top_srcdir:-$(dirname "$0")/../..}
work=$(mktemp -d /dev/shm/udax-fuzzreplay.XXXXXX) || exit 77
trap 'rm -rf "$work"' EXIT INT TERM
# a failed unmount (a mount leaked on a corrupt image) is a finding;
# UDAX_FUZZ_STRICT_UNMOUNT=0 turns that off
UDAX_FUZZ_STRICT_UNMOUNT=${UDAX_FUZZ_STRICT_UNMOUNT:-1}
export UDAX_FUZZ_STRICT_UNMOUNT
"$b/tests/fuzz/fuzz_mkbase" "$work/base.img" "$work/seeds" || { echo "FAIL: fuzz_mkbase"; exit 1; }
set -- "$work/seeds"
[ -d "$s/tests/fuzz/regressions" ] && set -- "$@" "$s/tests/fuzz/regressions"
# what earlier run-fuzz.sh runs found (their corpus only with UDAX_FUZZ_REPLAY_CORPUS=1)
for f in "$b"/tests/fuzz/artifacts/crash-* "$b"/tests/fuzz/artifacts/timeout-*; do
	[ -f "$f" ] && set -- "$@" "$f"
done
[ "${UDAX_FUZZ_REPLAY_CORPUS:-0}" = 1 ] && [ -d "$b/tests/fuzz/corpus" ] && set -- "$@" "$b/tests/fuzz/corpus"
if ! "$b/tests/fuzz/fuzz_replay" "$work/base.img" "$@"; then
	mkdir -p "$b/tests/fuzz/artifacts"
	cp "$work/base.img" "$b/tests/fuzz/artifacts/replay-base.img"
	echo "FAIL: a replayed input crashed the target; the base image is in"
	echo "  $b/tests/fuzz/artifacts/replay-base.img (fuzz_replay BASE INPUT reproduces)"
	exit 1
fi
exit 0
