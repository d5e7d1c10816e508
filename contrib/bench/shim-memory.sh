#!/bin/sh
# contrib/bench/shim-memory.sh [N] - the memory of read()/write() from
# direct layouts: N files (default 10,000) open at once under
# libudax-preload.so, each read once (a read-only layout) then written once
# (the layout reopened writable), then closed; prints the client's and the
# daemon's RssAnon at each step with the growth per file (shim-memory.c).
# Mounts a fresh udaxfs (emulation file in /dev/shm).  Needs root
# (allow_other), a C compiler.  Run from the build directory (or set
# UDAXFS, MKFS, PRELOAD).  Not a test: it asserts nothing.
set -eu
N=${1:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
UDAXFS=${UDAXFS:-./udaxfs}
MKFS=${MKFS:-./mkfs.udaxfs}
PRELOAD=${PRELOAD:-$PWD/.libs/libudax-preload.so}
[ -f "$PRELOAD" ] || { echo "$PRELOAD: no such file (set PRELOAD)" >&2; exit 1; }
W=$(mktemp -d /dev/shm/udax-bench-shimmem.XXXXXX)
PID=""
trap 'fusermount3 -u -z "$W/m" 2>/dev/null || :; [ -z "$PID" ] || kill "$PID" 2>/dev/null || :; rm -rf "$W"' EXIT
${CC:-cc} -O2 -o "$W/shim-memory" "$HERE/shim-memory.c"
# 64 KiB a file plus 16 KiB of metadata, and room
SIZE=$(( N * 96 / 1024 + 256 ))M
. "$HERE/mount-lib.sh"
bench_mount "$SIZE" "$W"
echo "read()/write() from direct layouts: memory for $N open files (RssAnon, KiB)"
LD_PRELOAD=$PRELOAD "$W/shim-memory" "$W/m" "$N" "$PID"
fusermount3 -u "$W/m"
wait "$PID" || true
