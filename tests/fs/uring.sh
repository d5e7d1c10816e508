#!/bin/sh
# uring.sh - -o io_uring: FUSE requests served over io_uring queues.
#  1. the mount negotiates the transport and serves LOOKUP/GETATTR from
#     its rings (the rings' completion counts grow with every request;
#     control: without the option the daemon holds no ring);
#  2. with the module parameter off, the daemon says so in one line naming
#     the parameter and serves /dev/fuse;
#  3. unmount (lazy) and an aborted connection with requests in flight,
#     and SIGKILL of the daemon under load: no client and no daemon hangs;
#  4. posix.sh, persist.sh, crash.sh (SIGKILL, fsync'd data survives) and
#     posix.sh with -o writeback_cache again over io_uring.
# As root the module parameter is set for the test and restored after;
# skips (77) when the kernel lacks FUSE over io_uring.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/uring_lib.sh"
S=${top_srcdir:-$(dirname "$0")/../..}/tests/fs

uring_enable
trap 'cleanup; uring_restore' EXIT

new_image u.img 128M
M=$W/mnt

# wait_rings PID: the daemon made its rings (it does before serving)
wait_rings() {
	local i
	for i in $(seq 1 100); do
		[ "$(uring_cq "$1")" != -1 ] && return 0
		sleep 0.05
	done
	return 1
}

# 1. LOOKUP and GETATTR over the rings (timeout=0: every stat asks)
: >"$W/daemon.log"
mount_fg "$W/u.img" "$M" "io_uring,timeout=0" || { fail "mount -o io_uring"; cat "$W/daemon.log"; finish; }
check "the daemon made its rings" wait_rings "$FG_PID"
mkdir "$M/d"
for i in $(seq 1 50); do echo "$i" >"$M/d/f$i"; done
c0=$(uring_cq "$FG_PID")
for i in $(seq 1 50); do stat "$M/d/f$i" >/dev/null || fail "stat f$i"; done
c1=$(uring_cq "$FG_PID")
say "ring completions for 50 stats: $((c1 - c0))"
check "50 stats (lookups and getattrs) were answered through the rings" \
	test $((c1 - c0)) -ge 100
check "the daemon says it serves over io_uring" grep -q "serving FUSE requests over io_uring" "$W/daemon.log"
check "contents read back" test "$(cat "$M/d/f37")" = 37
check "unmount" umount_fs "$M"
wait_fg
check "daemon exited 0 after unmount" test "$FG_STATUS" = 0

# control: the same mount without the option has no ring at all
mount_fg "$W/u.img" "$M" "timeout=0" || { fail "mount without io_uring"; finish; }
stat "$M/d/f1" >/dev/null
check "control: without -o io_uring the daemon holds no ring" test "$(uring_cq "$FG_PID")" = -1
check "unmount" umount_fs "$M"
wait_fg

# 2. the parameter off: one line naming it, /dev/fuse serves
uring_param N
: >"$W/daemon.log"
mount_fg "$W/u.img" "$M" "io_uring" || { fail "mount -o io_uring, parameter N"; finish; }
check "parameter N: the daemon names the parameter and falls back" \
	grep -q "$URING_PARAM is N; serving over /dev/fuse" "$W/daemon.log"
check "parameter N: the message is one line" test "$(grep -c io_uring "$W/daemon.log")" = 1
check "parameter N: served over /dev/fuse" test "$(cat "$M/d/f5")" = 5
check "parameter N: no ring" test "$(uring_cq "$FG_PID")" = -1
check "unmount" umount_fs "$M"
wait_fg
uring_param Y

# 3. teardown with requests in flight
# load MNT: four clients writing, reading and stat'ing until the mount fails
LOAD=""
load() {
	local i
	LOAD=""
	for i in 1 2 3 4; do
		( while dd if=/dev/zero of="$1/w$i" bs=64k count=8 2>/dev/null &&
			cat "$1/w$i" >/dev/null 2>&1 && stat "$1/d" >/dev/null 2>&1; do :; done ) &
		LOAD="$LOAD $!"
	done
}
# gone PID...: every one exits within 10 s
gone() {
	local i p left
	for i in $(seq 1 200); do
		left=""
		for p in "$@"; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
		[ -z "$left" ] && return 0
		sleep 0.05
	done
	say "still running after 10 s:$left"
	for p in $left; do cat /proc/"$p"/stack 2>/dev/null | head -5; done
	return 1
}

mount_fg "$W/u.img" "$M" "io_uring" || { fail "mount for lazy unmount"; finish; }
load "$M"
sleep 0.5
fusermount3 -u -z "$M"
check "lazy unmount under load: the clients end" gone $LOAD
check "lazy unmount under load: the daemon exits" gone "$FG_PID" || kill -9 "$FG_PID"
wait_fg

# the connection's abort file (mount fusectl for the test when it is not)
FUSECTL=/sys/fs/fuse/connections
if ! grep -q " $FUSECTL fusectl " /proc/mounts && mount -t fusectl fusectl "$FUSECTL" 2>/dev/null; then
	say "mounted fusectl on $FUSECTL for the abort case (unmounted at exit)"
	trap 'cleanup; uring_restore; umount "$FUSECTL"' EXIT
fi
mount_fg "$W/u.img" "$M" "io_uring" || { fail "mount for abort"; finish; }
dev=$(stat -c %d "$M")
if [ -w "$FUSECTL/$dev/abort" ]; then
	load "$M"
	sleep 0.5
	echo 1 >"$FUSECTL/$dev/abort"
	check "aborted connection under load: the clients end" gone $LOAD
	check "aborted connection under load: the daemon exits" gone "$FG_PID" || kill -9 "$FG_PID"
	wait_fg
	fusermount3 -u -z "$M" 2>/dev/null
else
	say "SKIP the abort case: no $FUSECTL/$dev/abort"
	umount_fs "$M"
	wait_fg
fi

mount_fg "$W/u.img" "$M" "io_uring" || { fail "mount for SIGKILL"; finish; }
load "$M"
sleep 0.5
kill -9 "$FG_PID"
check "SIGKILL of the daemon under load: the clients end" gone $LOAD
check "SIGKILL of the daemon under load: the daemon is gone" gone "$FG_PID"
wait_fg
fusermount3 -u -z "$M" 2>/dev/null
mount_fs "$W/u.img" "$M" "io_uring" || fail "mount after SIGKILL"
check "after SIGKILL the file system mounts and reads" test "$(cat "$M/d/f9")" = 9
check "unmount" umount_fs "$M"

# 4. the FUSE tests again over io_uring
UDAX_TEST_MOUNT_OPTS=io_uring
export UDAX_TEST_MOUNT_OPTS
for t in posix persist crash; do
	say "== $t.sh -o io_uring"
	check "$t.sh with -o io_uring" sh "$S/$t.sh"
done
UDAX_TEST_MOUNT_OPTS=io_uring,writeback_cache
say "== posix.sh -o io_uring,writeback_cache"
check "posix.sh with -o io_uring,writeback_cache" sh "$S/posix.sh"
finish
