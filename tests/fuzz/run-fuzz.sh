#!/bin/sh
# run-fuzz: build the libFuzzer target with clang (ASan + libFuzzer) from
# the core's source list, regenerate the base image and seed corpus, and
# fuzz for UDAX_FUZZ_SECONDS (default 30).  Any crash, leak or sanitizer
# report fails the test; the reproducer is kept in
# $top_builddir/tests/fuzz/artifacts/ and the grown corpus in
# $top_builddir/tests/fuzz/corpus/ (fuzz-replay.sh replays both).
# The seed is fixed (UDAX_FUZZ_SEED, default 1) so that a run in the suite
# explores the same inputs on every machine, a shorter prefix on a slower
# one: a failure reproduces, and a long run with the same seed covers
# what the suite will try.  UDAX_FUZZ_SEED=0 lets libFuzzer pick one.
# Exit 77 only when clang or its libFuzzer runtime is missing.
set -u
b=${top_builddir:-.}
s=${top_srcdir:-$(dirname "$0")/../..}
CLANG=${UDAX_CLANG:-$(command -v clang || true)}
secs=${UDAX_FUZZ_SECONDS:-30}
seed=${UDAX_FUZZ_SEED:-1}
[ -n "$CLANG" ] || { echo "SKIP: clang not found"; exit 77; }
out="$b/tests/fuzz"
mkdir -p "$out/artifacts" "$out/corpus"

# the core's sources, from the Makefile (UDAX_CORE_SOURCES), else every src/core/*.c
srcs=""
for f in ${UDAX_CORE_SOURCES:-}; do
	case $f in *.c) srcs="$srcs $s/$f";; esac
done
[ -n "$srcs" ] || srcs=$(ls "$s"/src/core/*.c)
# the checker's sources, likewise (UDAX_FSCK_SOURCES), else src/tools/fsck_*.c
fsrcs=""
for f in ${UDAX_FSCK_SOURCES:-}; do
	case $f in *.c) fsrcs="$fsrcs $s/$f";; esac
done
[ -n "$fsrcs" ] || fsrcs=$(ls "$s"/src/tools/fsck_*.c)
srcs="$srcs $fsrcs $s/tests/fuzz/fuzz_image.c"
libs=${UDAX_CORE_LIBS:--lpmem2 -lnuma -luring}

bin="$out/fuzz_image_libfuzzer"
need=1
if [ -x "$bin" ]; then
	need=0
	for f in $srcs "$s"/src/core/*.h "$s"/src/tools/fsck_*.h "$s"/tests/fuzz/fuzz_image.h; do
		[ "$f" -nt "$bin" ] && { need=1; break; }
	done
fi
if [ $need = 1 ]; then
	echo "building $bin with $CLANG"
	# probe the libFuzzer runtime first: missing runtime = honest skip
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){return 0;}\n' \
		>"$out/probe.c"
	if ! "$CLANG" -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" 2>/dev/null; then
		rm -f "$out/probe.c" "$out/probe"
		echo "SKIP: $CLANG cannot link libFuzzer programs"; exit 77
	fi
	rm -f "$out/probe.c" "$out/probe"
	# shellcheck disable=SC2086
	"$CLANG" -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address \
		-DUDAX_LIBFUZZER -D_GNU_SOURCE -I"$b" -I"$s/include" -I"$s/src" \
		-I"$s/tests/fuzz" -w $srcs -o "$bin.tmp" $libs -lpthread \
		|| { echo "FAIL: cannot build the fuzz target"; exit 1; }
	mv "$bin.tmp" "$bin"
fi

work=$(mktemp -d /dev/shm/udax-fuzz.XXXXXX) || exit 77
trap 'rm -rf "$work"' EXIT INT TERM
"$b/tests/fuzz/fuzz_mkbase" "$work/base.img" "$work/seeds" || { echo "FAIL: fuzz_mkbase"; exit 1; }
cp "$work"/seeds/* "$out/corpus/" 2>/dev/null
# a failed unmount (a mount leaked on a corrupt image) is a finding;
# UDAX_FUZZ_STRICT_UNMOUNT=0 turns that off
UDAX_FUZZ_STRICT_UNMOUNT=${UDAX_FUZZ_STRICT_UNMOUNT:-1}
export UDAX_FUZZ_STRICT_UNMOUNT
export UDAX_FUZZ_BASE="$work/base.img"
# leaks are findings: every input must free its mount (ufs_unmount frees it
# even when an unlinked inode cannot be evicted on a corrupt image)
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
echo "fuzzing for $secs s, seed $seed"
"$bin" -seed="$seed" -max_total_time="$secs" -max_len=16384 -timeout=20 -rss_limit_mb=2048 \
	-artifact_prefix="$out/artifacts/" -print_final_stats=1 \
	"$out/corpus" 2>"$work/log"
rc=$?
grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss)' "$work/log"
if [ $rc != 0 ]; then
	tail -n 80 "$work/log"
	cp "$work/base.img" "$out/artifacts/base.img"
	echo "FAIL: the fuzzer found a crash (exit $rc); reproduce with"
	echo "  $b/tests/fuzz/fuzz_replay $out/artifacts/base.img $out/artifacts/<crash-file>"
	echo "(inputs patch that base image; fuzz-replay.sh also replays them on a fresh one)"
	exit 1
fi
exit 0
