# bench_common.sh - sourced by the status_*, preload_* and bench_* tests:
# find the programs, mount udaxfs on an emulated device in /dev/shm, clean up.
# Tests start at rc=77 (skip) and switch to rc=1 once set up.
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_srcdir=${top_srcdir:-$top_builddir}
TEST_TAG="udax-$(basename "$0" .sh)-$$"
TEST_DEV=/dev/shm/$TEST_TAG.img
TEST_MNT=/dev/shm/$TEST_TAG-mnt
TEST_MOUNTED=0

test_find() {		# test_find NAME: print the path of a built program (or one in PATH)
	for d in "$top_builddir" "$top_builddir/src/daemon" "$top_builddir/src/tools"; do
		if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
	done
	command -v "$1" 2>/dev/null
}

test_skip() { echo "SKIP: $*"; exit 77; }

test_cleanup() {
	if [ "$TEST_MOUNTED" = 1 ]; then
		i=0
		while ! fusermount3 -u "$TEST_MNT" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1; i=$((i + 1))
		done
		[ $i -lt 50 ] || fusermount3 -u -z "$TEST_MNT" 2>/dev/null
	fi
	rmdir "$TEST_MNT" 2>/dev/null
	# a daemon killed under a pin leaves its record of live pins (udaxfs(8)):
	# the image goes, so does its record
	[ -e "$TEST_DEV" ] && rm -f "/run/udaxfs/file-$(stat -c '%d-%i' "$TEST_DEV").pins"
	rm -f "$TEST_DEV" /dev/shm/"$TEST_TAG".*	# the image and the tests' scratch files
}

# test_mount [MOUNT OPTIONS]: a fresh udaxfs on a 256 MiB emulated device
test_mount() {
	MKFS=$(test_find mkfs.udaxfs) || test_skip "mkfs.udaxfs is not built"
	UDAXFS=$(test_find udaxfs) || test_skip "udaxfs is not built"
	[ -e /dev/fuse ] || test_skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || test_skip "no fusermount3"
	trap test_cleanup EXIT
	truncate -s 256M "$TEST_DEV" || exit 1
	"$MKFS" "$TEST_DEV" >/dev/null || { echo "FAIL: mkfs.udaxfs $TEST_DEV"; exit 1; }
	mkdir -p "$TEST_MNT"
	# $UDAX_TEST_MOUNT_OPTS (tests/dma/writeback.sh) is added to every mount
	o=${1:-}${UDAX_TEST_MOUNT_OPTS:+${1:+,}$UDAX_TEST_MOUNT_OPTS}
	"$UDAXFS" "$TEST_DEV" "$TEST_MNT" ${o:+-o "$o"} || { echo "FAIL: mounting udaxfs"; exit 1; }
	TEST_MOUNTED=1
}

# test_mount_shim [MOUNT OPTIONS]: test_mount for a test that runs programs
# under libudax-preload.so: skips without the shim, fails without a mount,
# and tells the programs which device is the mount's ($UDAX_TEST_DEV).
test_mount_shim() {
	[ -f "$PRELOAD" ] || test_skip "libudax-preload.so is not built"
	test_mount "$@"
	[ -n "$TEST_MNT" ] && mountpoint -q "$TEST_MNT" || { echo "FAIL: no mount"; exit 1; }
	export UDAX_TEST_DEV="$TEST_DEV"
}

UDAXCTL=$(test_find udaxctl) || test_skip "udaxctl is not built"
PRELOAD=$top_builddir/.libs/libudax-preload.so
