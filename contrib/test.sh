#!/bin/bash
# test.sh - install what is needed, build, and run the whole test suite:
#   1. make check (unit, FUSE integration, direct access/DMA, crash states,
#      fuzzing for a bounded time, man page lint, the QEMU /dev/dax guest);
#   2. the core unit tests again under ASan+UBSan and under TSan;
#   3. make distcheck (tarball builds and passes its own checks).
# Run as root on Debian 12 from the top of the source tree.  Ends with one
# line "N passed, N failed, N skipped".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash contrib/deps.sh test || exit 1

jobs=$(nproc)
# In CI the real-device guest must run: a missing tool or kernel is a failure.
# CI has time to spare (the suite takes minutes of its 90): fuzz longer and
# check every crash state rather than make check's sample of 300.
if [ -n "${CI:-}" ]; then
	export UDAX_DEVDAX_REQUIRE=${UDAX_DEVDAX_REQUIRE:-1}
	export UDAX_FUZZ_SECONDS=${UDAX_FUZZ_SECONDS:-300}
	export UDAX_CRASH_STATES=${UDAX_CRASH_STATES:-100000}
fi
fail=0
log() { printf '\n==> %s\n' "$*"; }

log "autoreconf"
autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; exit 1; }

build() {	# build DIR [configure flags]
	local dir=$1; shift
	mkdir -p "$dir" && (cd "$dir" && "$top"/configure -q --enable-werror "$@" && make -j"$jobs" >/dev/null)
}

log "build (release) in build-check/"
build build-check || exit 1
log "make check"
(cd build-check && make -j"$jobs" check) || fail=1
# show the logs of the failures
for f in $(grep -l -E '^:test-result: (FAIL|ERROR)' $(find build-check -name '*.trs') 2>/dev/null); do
	echo "---- ${f%.trs}.log"; tail -n 60 "${f%.trs}.log"
done

unit=$(cd build-check && make -s print-unit-tests | tr '\n' ' ')
if [ "${UDAX_SKIP_SANITIZERS:-0}" != 1 ]; then
	log "core unit tests under ASan+UBSan"
	build build-asan --enable-asan --enable-ubsan &&
		(cd build-asan && make -j"$jobs" check TESTS="$unit") || fail=1
	log "core unit tests under TSan"
	build build-tsan --enable-tsan &&
		(cd build-tsan && make -j"$jobs" check TESTS="$unit") || fail=1
fi

if [ "${UDAX_SKIP_DISTCHECK:-0}" != 1 ]; then
	log "make distcheck"
	# the full suite already ran above; distcheck proves the tarball builds,
	# installs, and passes the unit tests out of a read-only source tree.
	(cd build-check && make distcheck TESTS="$unit" >distcheck.out 2>&1) ||
		{ tail -n 40 build-check/distcheck.out; fail=1; }
fi

pass=0; failed=0; skipped=0
for f in $(find build-check build-asan build-tsan -name '*.trs' 2>/dev/null); do
	case $(sed -n 's/^:global-test-result: //p' "$f") in
	PASS|XFAIL) pass=$((pass + 1));;
	SKIP) skipped=$((skipped + 1));;
	*) failed=$((failed + 1));;
	esac
done
[ $fail = 0 ] || [ $failed -gt 0 ] || failed=1
echo
echo "$pass passed, $failed failed, $skipped skipped"
[ $fail = 0 ] && [ $failed = 0 ]
