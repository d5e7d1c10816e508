#!/bin/sh
# memory.sh - the daemon's memory follows what is live: entries the kernel
# has forgotten, and files unlinked, give their memory back.
#
# The bug this guards against: the daemon grew by about 0.5 KiB per
# directory entry and kept it until unmount, also after the files were
# unlinked (a fixed inode hash, directories and their indexes cached for
# the whole mount).
#
# Measures the daemon's own memory (RssAnon in /proc/PID/status: its heap,
# not the mapped device's pages) after a warm-up round (so that the worker
# threads, the C library's arenas and the root directory's block exist
# before the baseline), then: 20,000 empty files in 4 directories; the
# kernel told to forget them (drop_caches sends FORGET); the files and
# directories removed and forgotten.  The negative control is the first
# measurement: with the entries live and referenced the daemon holds at
# least HELD_B bytes each, so the test sees retention; after the forget,
# and after the unlink, it must be back within LEFT_B bytes a file of the
# baseline (plus what any worker thread started meanwhile brings: its
# stack and buffers).  Every wait is bounded polling.  Needs root
# (drop_caches); skips otherwise.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"
M=$W/mnt
PER_DIR=5000
DIRS="d0 d1 d2 d3"
N=$((PER_DIR * 4))
HELD_B=256	# at least, a live cached entry (about 500 measured)
LEFT_B=96	# at most, a forgotten or unlinked one (0 to 35 measured)
THREAD_KIB=256	# at most, a worker thread started during the test

if ! [ -w /proc/sys/vm/drop_caches ]; then
	echo "SKIP: needs root (writes /proc/sys/vm/drop_caches to make the kernel forget)"
	exit 77
fi

status_field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/status"; }
rss() { status_field RssAnon; }
threads() { status_field Threads; }

# make the kernel drop the dentries and inodes it does not use (FORGET;
# nothing on this mount is dirty: no write-back cache, so no sync first)
forget() {
	echo 2 >/proc/sys/vm/drop_caches
}

# make_files DIR COUNT: empty files, with no process started for each
make_files() {
	local i=0
	mkdir "$1" || return 1
	while [ $i -lt "$2" ]; do
		: >"$1/file-$i" || return 1
		i=$((i + 1))
	done
}

# wait_rss KIB SECONDS: tell the kernel to forget, and poll until the
# daemon's RssAnon is at most KIB (the forgets arrive asynchronously);
# status 1 if it never is.  The last value in $GOT.
wait_rss() {
	local end=$(( $(date +%s) + $2 ))
	while :; do
		forget
		GOT=$(rss)
		[ "$GOT" -le "$1" ] && return 0
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# allowed: the baseline, LEFT_B a file, and THREAD_KIB a new thread
allowed() {
	local t
	t=$(( $(threads) - T0 ))
	[ "$t" -gt 0 ] || t=0
	echo $((R0 + N * LEFT_B / 1024 + t * THREAD_KIB))
}

new_image mem.img 512M
mount_fs "$W/mem.img" "$M" || { fail "mount"; finish; }
PID=$(daemon_pids "$M")
case $PID in
''|*[!0-9]*) fail "cannot tell the daemon's pid: '$PID'"; finish;;
esac

# warm-up: what stays for the mount's life (threads, arenas, the root's block)
for d in $DIRS; do
	make_files "$M/$d" 500 || fail "warm-up: create in $d"
done
forget
for d in $DIRS; do rm -rf "${M:?}/$d"; done
forget
R0=$(rss)
T0=$(threads)
say "baseline: RssAnon $R0 KiB, $T0 threads"

for d in $DIRS; do
	make_files "$M/$d" $PER_DIR || fail "create $PER_DIR files in $d"
done
R1=$(rss)
say "$N files created: RssAnon $R1 KiB ($(( (R1 - R0) * 1024 / N )) B a file)"
check "control: $N live entries hold at least $HELD_B B each" \
	test $((R1 - R0)) -ge $((N * HELD_B / 1024))

lim=$(allowed)
if wait_rss "$lim" 30; then
	pass "forgotten (not unlinked): RssAnon $GOT KiB <= $lim"
else
	fail "forgotten (not unlinked): RssAnon $GOT KiB after 30 s, want <= $lim"
fi
say "forgotten: $(( (GOT - R0) * 1024 / N )) B a file left"

for d in $DIRS; do rm -rf "${M:?}/$d"; done
check "every file is gone" test "$(find "$M" -mindepth 1 | wc -l)" = 0
lim=$(allowed)
if wait_rss "$lim" 30; then
	pass "unlinked: RssAnon $GOT KiB <= $lim"
else
	fail "unlinked: RssAnon $GOT KiB after 30 s, want <= $lim"
fi
say "unlinked: $(( (GOT - R0) * 1024 / N )) B a file left, $(threads) threads"
check "unmount" umount_fs "$M"
finish
