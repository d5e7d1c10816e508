#!/bin/sh
# suite.sh - the udaxfs suite on one real device-DAX.  DESTROYS ITS CONTENTS.
#
# Usage: suite.sh DEVICE PHASE WORKDIR
#   PHASE first  probe the device's rules (devdax-rules), mkfs, mount, run
#                the POSIX tests and the smoke test, remount and check, run
#                the direct-access tests, and leave a data set on the device
#                whose checksums are printed as "UDAX-SUM <sha256>  <path>"
#                (and "MARK <sum>" for the raw-device mark);
#   PHASE again  the device after a reboot (or a second run): the data set
#                must still be there, checked against $UDAX_EXPECT/sums
#                (or $UDAX_EXPECT/mark when no udaxfs is built yet).
# Runs in the QEMU guest's busybox (from guest-init.sh) or on the host
# (run.sh with UDAX_DEVDAX=/dev/daxX.Y).  top_srcdir and top_builddir name
# the trees; the guest has them at /udax/src and /udax/build.
# Exit: 0 passed, 1 something failed.
set -u

dev=$1
phase=$2
work=$3
src=${top_srcdir:?}
bld=${top_builddir:?}
expect=${UDAX_EXPECT:-/udax/expect}
test_timeout=${UDAX_TEST_TIMEOUT:-120}
use_shim=${UDAX_SHIM:-1}
# Software emulation is slow (tests/fs: persist about 60 s, badinput 40,
# crash 25; dma_503 over 60): profiles pick what runs.
#   short  the programs of guest-tests.list marked '+'
#   full   and the unmarked ones, and tests/fs posix and mount
#   all    everything: every test of tests/fs and the programs marked '-'
# UDAX_FS_TESTS=all (or a list) overrides the tests/fs part.
profile=${UDAX_PROFILE:-full}
case $profile in
short) fs_sel=${UDAX_FS_TESTS:-none} ;;
all) fs_sel=${UDAX_FS_TESTS:-all} ;;
*) fs_sel=${UDAX_FS_TESTS:-posix,mount} ;;
esac
mnt=$work/mnt
mkdir -p "$work" "$mnt"

nfail=0
ran=""
skipped=""
failed=""

up() { cut -d' ' -f1 /proc/uptime; }
step() { echo "==== $* (uptime $(up))"; }
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; nfail=$((nfail + 1)); }
record() {	# NAME RC: a test's outcome in the summary
	case $2 in
	0) ran="$ran $1" ;;
	77) skipped="$skipped $1" ;;
	*) failed="$failed $1"; nfail=$((nfail + 1)) ;;
	esac
}

# prog NAME: the program NAME in the build tree (top level first).
prog() {
	if [ -x "$bld/$1" ]; then
		echo "$bld/$1"
		return 0
	fi
	find "$bld" -path "$bld/tests/devdax/cache" -prune -o -path '*/.libs' -prune -o \
		-name "$1" -type f -perm -u+x -print 2>/dev/null | head -n1 | grep .
}

mounted() { grep -q " $mnt fuse" /proc/mounts; }

# Mount udaxfs on the device; the daemon forks once the mount is up.
fs_mount() {
	"$udaxfs" "$dev" "$mnt" "$@" || return 1
	mounted || { echo "udaxfs returned but $mnt is not mounted"; return 1; }
}

# Unmount and wait for the daemon to finish (it writes the clean flag).
fs_umount() {
	mounted || return 0
	fusermount3 -u "$mnt" || umount "$mnt" || return 1
	i=0
	while pidof udaxfs lt-udaxfs >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "udaxfs still running 10 s after unmount"; return 1; }
		sleep 0.1
	done
}

fs_fsck() {
	[ -n "$fsck" ] || return 0
	if "$fsck" "$dev"; then ok "fsck.udaxfs: clean"; else fail "fsck.udaxfs $dev"; fi
}

# A file of N KiB of pseudo-random data.
mkdata() { dd if=/dev/urandom of="$1" bs=1024 count="$2" 2>/dev/null; }

# ---- the smoke test: what every file system must do --------------------
smoke() {
	d=$mnt/smoke
	mkdir "$d" || { fail "smoke: mkdir"; return; }
	echo "hello devdax" > "$d/a" && [ "$(cat "$d/a")" = "hello devdax" ] &&
		ok "smoke: create, write, read" || fail "smoke: create/write/read"
	mv "$d/a" "$d/b" && [ ! -e "$d/a" ] && [ "$(cat "$d/b")" = "hello devdax" ] &&
		ok "smoke: rename" || fail "smoke: rename"
	ln "$d/b" "$d/hard" && ln -s b "$d/sym" && [ "$(cat "$d/sym")" = "hello devdax" ] &&
		[ "$(stat -c %h "$d/b")" = 2 ] && ok "smoke: link, symlink" || fail "smoke: link/symlink"
	rm "$d/hard" "$d/sym" && rm "$d/b" && [ -z "$(ls "$d")" ] &&
		ok "smoke: unlink" || fail "smoke: unlink"
	mkdata "$work/big" 16384
	cp "$work/big" "$d/big" && cmp "$work/big" "$d/big" &&
		ok "smoke: 16 MiB file, same checksum" || fail "smoke: 16 MiB file differs"
	truncate -s 3000000 "$d/big" && [ "$(stat -c %s "$d/big")" = 3000000 ] &&
		head -c 3000000 "$work/big" | cmp - "$d/big" &&
		ok "smoke: truncate down keeps the head" || fail "smoke: truncate down"
	truncate -s 5000000 "$d/big" && [ "$(stat -c %s "$d/big")" = 5000000 ] &&
		[ "$(tail -c 2000000 "$d/big" | tr -d '\000' | wc -c)" = 0 ] &&
		ok "smoke: truncate up reads zeros" || fail "smoke: truncate up"
	dd if="$work/big" of="$d/big" bs=4096 seek=100 count=10 conv=notrunc 2>/dev/null &&
		dd if="$d/big" bs=4096 skip=100 count=10 2>/dev/null | cmp - "$work/big" -n 40960 &&
		ok "smoke: overwrite inside a file" || fail "smoke: overwrite"
	if command -v setfattr >/dev/null 2>&1; then
		setfattr -n user.udax -v devdax "$d/big" &&
			[ "$(getfattr --only-values -n user.udax "$d/big")" = devdax ] &&
			setfattr -x user.udax "$d/big" && ! getfattr -n user.udax "$d/big" 2>/dev/null &&
			ok "smoke: xattr set, get, remove" || fail "smoke: xattr"
	else
		echo "skip smoke: xattr (no setfattr: apt-get install attr)"
	fi
	mkdir -p "$d/x/y/z" && rmdir "$d/x/y/z" "$d/x/y" "$d/x" && ok "smoke: mkdir, rmdir" ||
		fail "smoke: mkdir/rmdir"
	df "$mnt" | tail -n1
	rm -f "$d/big" && rmdir "$d" && ok "smoke: cleanup" || fail "smoke: cleanup"
}

# ---- the persistence data set ------------------------------------------
persist_write() {
	p=$mnt/persist
	mkdir -p "$p/dir/sub" || { fail "persist: mkdir"; return; }
	: > "$p/empty"
	mkdata "$p/one-k" 1
	head -c 4095 /dev/urandom > "$p/page-less-one"
	mkdata "$p/page" 4
	mkdata "$p/huge-plus" 2049
	mkdata "$p/dir/sub/eight-m" 8192
	echo "written in phase first on $(uname -r)" > "$p/dir/note"
	ln -s ../page "$p/dir/link"
	(cd "$mnt" && find persist -type f | sort | xargs sha256sum) > "$work/sums" ||
		{ fail "persist: checksums"; return; }
	sed 's/^/UDAX-SUM /' "$work/sums"
	ok "persist: $(wc -l < "$work/sums") files written"
}

persist_check() {	# SUMS WHAT
	if (cd "$mnt" && sha256sum -c "$1" >/dev/null); then
		ok "persist: $2: $(wc -l < "$1") files intact"
	else
		(cd "$mnt" && sha256sum -c "$1")
		fail "persist: $2: data differs"
	fi
	[ "$(readlink "$mnt/persist/dir/link")" = ../page ] && ok "persist: $2: symlink intact" ||
		fail "persist: $2: symlink lost"
}

# ---- other helpers' tests, on the device ----------------------------------
# They make emulation images with mkfs.udaxfs; they run against a copy of
# the build tree whose mkfs.udaxfs is mkfs-shim.sh, which hands them the
# device instead of each large image (see there).
make_shim() {
	shim=$work/shim
	rm -rf "$shim"
	mkdir -p "$shim"
	for e in "$bld"/* "$bld"/.libs; do
		[ -e "$e" ] && ln -s "$e" "$shim/${e##*/}"
	done
	rm -f "$shim/mkfs.udaxfs"
	printf '#!/bin/sh\nexec sh "%s" "$@"\n' "$src/tests/devdax/mkfs-shim.sh" > "$shim/mkfs.udaxfs"
	chmod 755 "$shim/mkfs.udaxfs"
}

# A test that failed or was killed may leave its mounts and daemons: undo
# them, so the device is free for the next one.
reap_mounts() {
	# on a host, other people's mounts and daemons are none of our business
	[ "${UDAX_IN_GUEST:-0}" = 1 ] || return 0
	awk '$3 == "fuse" || $3 ~ /^fuse\./ { print $2 }' /proc/mounts | while read -r m; do
		[ "$m" = "$mnt" ] && continue
		echo "reaping a mount left behind: $m"
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
	done
	if [ -z "$(awk '$3 == "fuse" || $3 ~ /^fuse\./' /proc/mounts)" ]; then
		kill_daemons
	fi
	return 0
}

# kill_daemons: every udaxfs process (the guest has no pkill)
kill_daemons() {
	for c in /proc/[0-9]*/comm; do
		case $(cat "$c" 2>/dev/null) in
		udaxfs|lt-udaxfs)
			p=${c%/comm}
			echo "killing a udaxfs daemon left behind: ${p#/proc/}"
			kill -9 "${p#/proc/}" 2>/dev/null ;;
		esac
	done
}

# watchdog PID: after $test_timeout s, kill the test.  A process blocked in
# a FUSE request whose daemon hangs cannot even be killed: in the guest,
# abort every FUSE connection first (fusectl).
watchdog() {
	sleep "$test_timeout"
	kill -0 "$1" 2>/dev/null || exit 0
	: > "$work/timedout"
	if [ "${UDAX_IN_GUEST:-0}" = 1 ]; then
		for c in /sys/fs/fuse/connections/*/abort; do
			[ -e "$c" ] && echo 1 > "$c"
		done
		kill_daemons
	fi
	kill -9 "$1" 2>/dev/null
}

# run_other NAME COMMAND...: one test of another helper, its log condensed
run_other() {
	name=$1
	shift
	step "$name"
	t0=$(up)
	rm -f "$work/timedout"
	UDAX_DEVICE=$dev UDAX_MOUNT=$mnt UDAX_REAL_MKFS=$mkfs top_builddir=$shim \
		UDAX_SHIM=$use_shim "$@" > "$work/other.log" 2>&1 &
	tpid=$!
	watchdog "$tpid" &
	wpid=$!
	wait "$tpid"
	rc=$?
	kill "$wpid" 2>/dev/null
	if [ -e "$work/timedout" ]; then
		echo "FAIL $name: still running after $test_timeout s: killed"
		rc=124
	fi
	reap_mounts
	# what went wrong, with runs of the same line folded
	grep -v -e '^ok' -e '^PASS' "$work/other.log" | awk '
		$0 == prev { n++; next }
		{ if (n) print "    (the line above " n " more times)"; n = 0; print; prev = $0 }
		END { if (n) print "    (the line above " n " more times)" }' | tail -n 80
	echo "$name rc=$rc: $(grep -c -e '^ok' -e '^PASS' "$work/other.log") ok lines," \
		"$(grep -c FAIL "$work/other.log") FAIL lines;" \
		"on the device: $(grep -q mkfs-shim "$work/other.log" && echo yes || echo no);" \
		"$(awk "BEGIN { print $(up) - $t0 }") s"
	record "$name" $rc
}

# the POSIX integration tests (tests/fs/*.sh; UDAX_FS_TESTS picks them)
fs_tests() {
	n=0
	for t in "$src"/tests/fs/*.sh; do
		[ -f "$t" ] || continue
		head -n1 "$t" | grep -q '^#!' || continue	# lib.sh is sourced, not run
		n=$((n + 1))
		name=${t##*/}
		name=${name%.sh}
		if [ "$fs_sel" != all ] && ! echo ",$fs_sel," | grep -q ",$name,"; then
			echo "skip fs/$name: not in UDAX_FS_TESTS ($fs_sel; 'all' runs every one)"
			continue
		fi
		sh=sh
		head -n1 "$t" | grep -q bash && sh=bash
		case $name in
		mount)	# it checks mount(8)'s plumbing: the source it names
			# must stay its own image, not the shim's device
			use_shim=0
			run_other "fs/$name" $sh "$t"
			use_shim=${UDAX_SHIM:-1} ;;
		*)	run_other "fs/$name" $sh "$t" ;;
		esac
	done
	[ $n = 0 ] && echo "skip fs tests: tests/fs has no scripts yet"
}

# Programs of guest-tests.list: those whose arguments name @MNT@ run on our
# mounted file system (listed_tests mounted); the others mount the device
# themselves through the shim (listed_tests free).
listed_tests() {
	list=$src/tests/devdax/guest-tests.list
	[ -f "$list" ] || return 0
	grep -v -e '^#' -e '^[[:space:]]*$' "$list" > "$work/list"
	while read -r name rest; do
		case $rest in *@MNT@*) where=mounted ;; *) where=free ;; esac
		[ "$where" = "$1" ] || continue
		case $name in
		+*) name=${name#+} ;;
		-*) name=${name#-}
		    [ "$profile" = all ] || { echo "skip $name: only with UDAX_DEVDAX_FULL=1"; continue; } ;;
		*) [ "$profile" = short ] && { echo "skip $name: a short boot"; continue; } ;;
		esac
		case $name in
		*.sh)	# a shell test of the source tree
			p="sh $src/$name"
			[ -f "$src/$name" ] || { echo "skip $name: not in the tree"; skipped="$skipped $name"; continue; } ;;
		*)	p=$(prog "$name") || { echo "skip $name: not built"; skipped="$skipped $name"; continue; } ;;
		esac
		args=$(echo "$rest" | sed -e "s|@DEV@|$dev|g" -e "s|@MNT@|$mnt|g" -e "s|@WORK@|$work|g")
		# shellcheck disable=SC2086
		run_other "$name" $p $args < /dev/null
	done < "$work/list"
}

# ------------------------------------------------------------------------
rules=$(prog devdax-rules) || { echo "FAIL: devdax-rules is not built"; exit 1; }
mkfs=$(prog mkfs.udaxfs) || mkfs=""
udaxfs=$(prog udaxfs) || udaxfs=""
fsck=$(prog fsck.udaxfs) || fsck=""
have_fs=0
[ -n "$mkfs" ] && [ -n "$udaxfs" ] && have_fs=1
echo "device $dev, phase $phase, profile $profile; mkfs.udaxfs: ${mkfs:-not built}; udaxfs: ${udaxfs:-not built};" \
	"fsck.udaxfs: ${fsck:-not built}"

case $phase in
first)
	step "devdax-rules $dev"
	"$rules" "$dev" "$work"
	record devdax-rules $?
	if [ $have_fs = 0 ] && [ -n "$mkfs" ]; then
		# mkfs alone: it must format the real device; boot 2 checks the
		# file system is still recognised
		step "mkfs.udaxfs $dev (no udaxfs built yet)"
		"$mkfs" -f "$dev"
		record mkfs.udaxfs $?
		fs_fsck
	fi
	if [ $have_fs = 0 ]; then
		echo "skip the file system part: mkfs.udaxfs and udaxfs are not both built"
	else
		make_shim
		fs_tests
		listed_tests free
		step "mkfs.udaxfs $dev"
		if ! "$mkfs" -f "$dev"; then
			fail "mkfs.udaxfs $dev"
		elif ! fs_mount; then
			fail "mount udaxfs on $dev"
		else
			ok "mounted: $(grep " $mnt " /proc/mounts)"
			step "smoke test"
			smoke
			step "persistence data set"
			persist_write
			fs_umount || fail "unmount"
			fs_fsck
			step "remount"
			if fs_mount; then
				persist_check "$work/sums" "after remount"
				listed_tests mounted
				fs_umount || fail "unmount after the tests on the mount"
				fs_fsck
			else
				fail "remount"
			fi
		fi
	fi
	;;
again)
	if [ $have_fs = 1 ] && [ -s "$expect/sums" ]; then
		fs_fsck
		step "mount the previous boot's file system"
		if fs_mount; then
			persist_check "$expect/sums" "after reboot"
			echo "$(cat "$mnt/persist/dir/note" 2>/dev/null)"
			fs_umount || fail "unmount"
		else
			fail "mount after reboot"
		fi
	elif [ -n "$mkfs" ]; then
		# only mkfs ran in boot 1: its file system must still be recognised
		if [ -n "$fsck" ]; then
			fs_fsck
		else
			step "mkfs.udaxfs $dev without -f must refuse: the file system persisted"
			out=$("$mkfs" "$dev" 2>&1)
			rc=$?
			echo "$out"
			if [ $rc != 0 ] && echo "$out" | grep -q udaxfs; then
				echo "ok   the previous boot's udaxfs is still on $dev"
				record mkfs-signature-persisted 0
			else
				echo "FAIL no udaxfs found on $dev after the reboot"
				record mkfs-signature-persisted 1
			fi
		fi
	elif [ -s "$expect/mark" ]; then
		step "devdax-rules -c $dev"
		"$rules" -c "$dev" "$(cat "$expect/mark")"
		record devdax-rules-mark $?
	else
		fail "phase again: nothing to check (no $expect/sums or $expect/mark)"
	fi
	;;
*)
	echo "Usage: suite.sh DEVICE first|again WORKDIR" >&2
	exit 2
	;;
esac

echo "SUMMARY ran:${ran:- none} skipped:${skipped:- none} failed:${failed:- none}"
[ $nfail = 0 ] && echo "suite: PASS" || echo "suite: FAIL ($nfail)"
[ $nfail = 0 ]
