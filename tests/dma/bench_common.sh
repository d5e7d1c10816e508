# bench_common.sh - sourced by H7's tests (status_*, preload_*, bench_*):
# find the programs, mount udaxfs on an emulated device in /dev/shm, clean up.
# Tests start at rc=77 (skip) and switch to rc=1 once set up.
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_srcdir=${top_srcdir:-$top_builddir}
H7_TAG="udax-h7-$(basename "$0" .sh)-$$"
H7_DEV=/dev/shm/$H7_TAG.img
H7_MNT=/dev/shm/$H7_TAG-mnt
H7_MOUNTED=0

h7_find() {		# h7_find NAME: print the path of a built program (or one in PATH)
	for d in "$top_builddir" "$top_builddir/src/daemon" "$top_builddir/src/tools"; do
		if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
	done
	command -v "$1" 2>/dev/null
}

h7_skip() { echo "SKIP: $*"; exit 77; }

h7_cleanup() {
	if [ "$H7_MOUNTED" = 1 ]; then
		i=0
		while ! fusermount3 -u "$H7_MNT" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1; i=$((i + 1))
		done
		[ $i -lt 50 ] || fusermount3 -u -z "$H7_MNT" 2>/dev/null
	fi
	rmdir "$H7_MNT" 2>/dev/null
	rm -f "$H7_DEV" /dev/shm/"$H7_TAG".*	# the image and the tests' scratch files
}

# h7_mount [MOUNT OPTIONS]: a fresh udaxfs on a 256 MiB emulated device
h7_mount() {
	MKFS=$(h7_find mkfs.udaxfs) || h7_skip "mkfs.udaxfs is not built"
	UDAXFS=$(h7_find udaxfs) || h7_skip "udaxfs is not built"
	[ -e /dev/fuse ] || h7_skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || h7_skip "no fusermount3"
	trap h7_cleanup EXIT
	truncate -s 256M "$H7_DEV" || exit 1
	"$MKFS" "$H7_DEV" >/dev/null || { echo "FAIL: mkfs.udaxfs $H7_DEV"; exit 1; }
	mkdir -p "$H7_MNT"
	# $UDAX_TEST_MOUNT_OPTS (tests/dma/writeback.sh) is added to every mount
	o=${1:-}${UDAX_TEST_MOUNT_OPTS:+${1:+,}$UDAX_TEST_MOUNT_OPTS}
	"$UDAXFS" "$H7_DEV" "$H7_MNT" ${o:+-o "$o"} || { echo "FAIL: mounting udaxfs"; exit 1; }
	H7_MOUNTED=1
}

UDAXCTL=$(h7_find udaxctl) || h7_skip "udaxctl is not built"
PRELOAD=$top_builddir/.libs/libudax-preload.so
