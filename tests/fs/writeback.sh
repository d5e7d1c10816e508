#!/bin/sh
# writeback.sh - -o writeback_cache: the kernel caches writes and sends
# them at fsync, close or its own write-back.  Checks that the option takes
# effect (a write() returns while the daemon is stopped, which without the
# option it cannot; close writes it back), then reruns posix.sh (every
# operation and error code, ENOSPC reported at fsync), persist.sh and
# crash.sh (SIGKILL: every fsync'd file survives) with it.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"
S=${top_srcdir:-$(dirname "$0")/../..}/tests/fs

new_image wb.img 64M
M=$W/mnt

# wb_probe: with the daemon stopped (SIGSTOP), does a write() into a page
# the kernel holds return?  With the write-back cache it lands in the page
# cache and returns; without it, it is a request and waits for the daemon.
# Status 0: it returned within 3 s.  timeout=60 keeps the kernel from
# asking for attributes meanwhile.
wb_probe() {
	local rc
	mount_fg "$W/wb.img" "$M" "timeout=60$1" || { fail "mount${1:+ -o ${1#,}}"; return 2; }
	"$FSOPS" wbprobe "$M/f" "$FG_PID" "udaxwb-second-$$"
	rc=$?
	check "close wrote everything back" grep -q -a -F "udaxwb-second-$$" "$W/wb.img"
	check "unmount" umount_fs "$M"
	wait "$FG_PID" 2>/dev/null
	FG_PID=""
	return $rc
}
wb_probe ""
r=$?
check "control: without the option a write() waits for a stopped daemon" test $r = 1
new_image wb.img 64M
wb_probe ",writeback_cache"
r=$?
check "-o writeback_cache: a write() returns while the daemon is stopped" test $r = 0

mount_fs "$W/wb.img" "$M" writeback_cache || { fail "mount -o writeback_cache"; finish; }
# a file the kernel caches is the same after a remount
head -c 3000000 /dev/urandom >"$W/src"
cp "$W/src" "$M/copy"
check "unmount" umount_fs "$M"
mount_fs "$W/wb.img" "$M" writeback_cache || { fail "remount"; finish; }
check "a cached copy survives unmount and mount" cmp "$W/src" "$M/copy"
check "unmount" umount_fs "$M"

UDAX_TEST_MOUNT_OPTS=writeback_cache
export UDAX_TEST_MOUNT_OPTS
for t in posix persist crash; do
	say "== $t.sh -o writeback_cache"
	check "$t.sh with -o writeback_cache" sh "$S/$t.sh"
done
finish
