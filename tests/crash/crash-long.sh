#!/bin/sh
# crash-long: every crash state of the crash workload (not part of make
# check; make check samples at most 300).  Run from the build directory:
#   sh $srcdir/tests/crash/crash-long.sh [extra crash_states args]
# Failing images are kept in $UDAX_CRASH_KEEP (default /dev/shm/udax-crash-keep).
set -u
b=${top_builddir:-.}
keep=${UDAX_CRASH_KEEP:-/dev/shm/udax-crash-keep}
mkdir -p "$keep"
exec "$b/tests/crash/crash_states" -a -k "$keep" "$@"
