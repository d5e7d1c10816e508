# tests/fs/lib.sh - sourced by the FUSE integration tests.
#
# Gives: $B (build dir), $UDAXFS, $MKFS, $FSOPS, $SBEDIT, $W (a private
# work directory in /dev/shm), and
#   new_image NAME SIZE         mkfs.udaxfs an emulation file $W/NAME
#   mount_fs IMG MNT [OPTS]     mount in the background (udaxfs forks);
#                               $UDAX_TEST_MOUNT_OPTS is added to every mount
#   mount_fg IMG MNT [OPTS]     run `udaxfs -f` in the background; $FG_PID
#   umount_fs MNT               unmount (and check it went)
#   is_mounted MNT
#   check COND-COMMAND... / fail MSG / finish
# Every mount is undone and $W removed on any exit (trap).  Skips (77)
# only when /dev/fuse is missing.
set -u

B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
UDAXFS=$B/udaxfs
MKFS=$B/mkfs.udaxfs
FSOPS=$B/tests/fs/fsops
SBEDIT=$B/tests/fs/sbedit
export PATH="$B:$PATH"

if [ ! -c /dev/fuse ]; then
	echo "SKIP: /dev/fuse is missing (no FUSE in this kernel or container)"
	exit 77
fi
for p in "$UDAXFS" "$MKFS"; do
	if [ ! -x "$p" ]; then
		echo "FAIL: $p was not built"
		exit 1
	fi
done

W=$(mktemp -d /dev/shm/udax-fs-"$(basename "$0" .sh)".XXXXXX)
chmod 755 "$W"	# other users reach the mount points inside
MOUNTS=""
FG_PID=""
FAILED=0

cleanup() {
	for m in $MOUNTS; do
		if is_mounted "$m"; then
			fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	[ -n "$FG_PID" ] && kill -9 "$FG_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; FAILED=1; }
pass() { say "ok: $*"; }
# check DESCRIPTION COMMAND...: run it, count a failure if it fails (status 1)
check() {
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; return 1; fi
}
finish() {
	if [ $FAILED = 0 ]; then say "PASS"; exit 0; fi
	say "some checks failed"; exit 1
}

is_mounted() {
	local m
	m=$(realpath -m "$1")
	awk -v m="$m" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

new_image() {	# NAME SIZE
	rm -f "$W/$1"
	"$MKFS" -s "$2" "$W/$1" >/dev/null || { say "FAIL: mkfs.udaxfs -s $2 $W/$1"; exit 1; }
}

mount_fs() {	# IMG MNT [OPTS]
	mkdir -p "$2"
	MOUNTS="$MOUNTS $2"
	"$UDAXFS" "$1" "$2" -o "allow_other${3:+,$3}${UDAX_TEST_MOUNT_OPTS:+,$UDAX_TEST_MOUNT_OPTS}" || return 1
	is_mounted "$2"
}

mount_fg() {	# IMG MNT [OPTS]: daemon in the foreground, pid in FG_PID
	local i
	mkdir -p "$2"
	MOUNTS="$MOUNTS $2"
	"$UDAXFS" -f "$1" "$2" -o "allow_other${3:+,$3}${UDAX_TEST_MOUNT_OPTS:+,$UDAX_TEST_MOUNT_OPTS}" \
		2>>"$W/daemon.log" &
	FG_PID=$!
	for i in $(seq 1 200); do
		is_mounted "$2" && return 0
		kill -0 "$FG_PID" 2>/dev/null || { FG_PID=""; return 1; }
		sleep 0.05
	done
	return 1
}

# the udaxfs daemons serving MNT (an argument of their command line is MNT)
daemon_pids() {	# MNT
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = udaxfs ] || continue
		tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qxF -- "$1" && echo "${p#/proc/}"
	done
}

umount_fs() {	# MNT
	local i pids p
	pids=$(daemon_pids "$1")
	fusermount3 -u "$1" || return 1
	# the daemon finishes its unmount after the kernel lets go
	for i in $(seq 1 100); do
		is_mounted "$1" || break
		sleep 0.05
	done
	is_mounted "$1" && return 1
	# and it may still be writing (the journal, the superblock) until it
	# exits: a test that reads the image next must not race it
	for p in $pids; do
		for i in $(seq 1 200); do
			# gone, or a zombie our own shell has yet to reap
			[ -r "/proc/$p/stat" ] || break
			case $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) in Z*|'') break;; esac
			sleep 0.05
		done
	done
	return 0
}

# wait for a foreground daemon to exit; its status in FG_STATUS
wait_fg() {
	FG_STATUS=0
	wait "$FG_PID" || FG_STATUS=$?
	FG_PID=""
}
