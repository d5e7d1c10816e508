#!/bin/sh
# contrib/bench/memory.sh [N] - the daemon's memory per directory entry,
# and how much of it comes back after the entries are unlinked.
#
# Mounts a fresh udaxfs (emulation file in /dev/shm), creates N empty files
# (default 1,000,000) in one directory, makes the kernel forget them
# (echo 2 > /proc/sys/vm/drop_caches sends FORGET), unlinks them, forgets
# again, and prints the daemon's own memory (RssAnon; VmRSS beside it also
# counts the mapped device's pages) at each step with the cost per entry.  Needs root (drop_caches, allow_other).  Run from the
# build directory (or set UDAXFS and MKFS).  Not a test: it asserts nothing.
set -eu
N=${1:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
UDAXFS=${UDAXFS:-./udaxfs}
MKFS=${MKFS:-./mkfs.udaxfs}
W=$(mktemp -d /dev/shm/udax-bench-memory.XXXXXX)
PID=""
trap 'fusermount3 -u -z "$W/m" 2>/dev/null || :; [ -z "$PID" ] || kill "$PID" 2>/dev/null || :; rm -rf "$W"' EXIT
# 16 KiB an inode: N files need N * 16 KiB of device (sparse: only metadata is touched)
SIZE=$(( (N / 1024 + 1024) * 16 ))M
. "$HERE/mount-lib.sh"
bench_mount "$SIZE" "$W"
echo "udaxfs memory, $N files in one directory (RssAnon in KiB):"
python3 "$HERE/memory.py" "$W/m" "$PID" "$N"
fusermount3 -u "$W/m"
wait "$PID" || true
