#!/bin/sh
# freespace.sh - the blocks of deleted files come back to statfs as soon
# as their last reference goes, with and without -o writeback_cache, and
# not before: a deleted file that a process still holds open keeps its
# space until it is closed (POSIX).
#
# The bug this guards against: with -o writeback_cache, 16 files deleted
# were still counted as used a second later, until unmount.  An unlinked
# file is only evicted (its blocks freed) once the kernel has released it
# (RELEASE) and forgotten it (FORGET); a reference that is never given
# back keeps its space for the whole mount.
#
# Cases, each in both write modes: files written and closed, then deleted;
# files deleted while still open with dirty (not yet written back) pages,
# then closed; and files deleted while another process holds one open.
# Every wait is bounded polling of statfs.  The held file is the negative
# control: the same wait that sees the space come back must time out while
# the file is held, and see it come back once it is closed.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"
M=$W/mnt
HOLDER=""
trap '[ -z "$HOLDER" ] || kill "$HOLDER" 2>/dev/null; cleanup' EXIT

free_blocks() { stat -f -c %f "$M"; }

# wait_free WANT SECONDS: poll statfs until its free blocks equal WANT,
# for at most SECONDS (wall clock: on a loaded machine a count of polls
# could take much longer).  Status 1 (and the last count in $GOT) if they
# never do.
wait_free() {
	local end=$(( $(date +%s) + $2 ))
	while :; do
		GOT=$(free_blocks)
		[ "$GOT" = "$1" ] && return 0
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# checked_wait WHAT WANT: wait up to 20 s for WANT free blocks
checked_wait() {
	if wait_free "$2" 20; then
		pass "$1 ($2 blocks free)"
	else
		fail "$1: $GOT blocks free after 20 s, want $2"
	fi
}

# write_files DIR N: N files of 1 MiB (the last one 1 MiB + 1 byte, so
# that the sizes are not all block multiples)
write_files() {
	local i=1
	mkdir -p "$1"
	while [ $i -le "$2" ]; do
		head -c 1048576 /dev/urandom >"$1/f$i" || return 1
		i=$((i + 1))
	done
	echo x >>"$1/f$2"
}

run_mode() {	# OPTS (empty or writeback_cache)
	local mode=${1:-"no write-back cache"} base used held i
	new_image fs.img 128M
	mount_fs "$W/fs.img" "$M" "$1" || { fail "$mode: mount"; return; }
	# a fresh root has no block; its first entry gives it one, which
	# it keeps (as every directory does) once the entry is gone
	mkdir "$M/d" && rmdir "$M/d"
	base=$(free_blocks)

	# 1. written, closed, deleted
	write_files "$M/d" 16 || fail "$mode: write 16 files"
	used=$(free_blocks)
	check "$mode: the 16 files use space" test "$used" -lt "$((base - 16 * 256))"
	rm -rf "$M/d"
	checked_wait "$mode: 16 closed files deleted, their space is back" "$base"

	# 2. deleted while open, with pages the kernel may not have written
	# back yet; closed afterwards
	mkdir "$M/d"
	for i in 3 4 5 6 7 8 9; do
		eval "exec $i>\"\$M/d/o$i\""
		head -c 1048576 /dev/urandom >&$i
		rm "$M/d/o$i"
	done
	for i in 3 4 5 6 7 8 9; do
		eval "exec $i>&-"
	done
	rmdir "$M/d"
	checked_wait "$mode: files deleted while open and dirty, then closed: space back" "$base"

	# 3. one of them held open by another process while all are deleted
	write_files "$M/d" 16 || fail "$mode: write 16 files"
	sleep 600 <"$M/d/f16" &
	HOLDER=$!
	i=0
	until [ "$(readlink "/proc/$HOLDER/fd/0" 2>/dev/null)" = "$M/d/f16" ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || { fail "$mode: the holder never opened the file"; break; }
		sleep 0.05
	done
	# the file's blocks, and its directory's: the kernel keeps the parent
	# of an open file's name, so the directory is forgotten only after it
	held=$(( $(stat -c '%b * %B' "$M/d/f16") / 4096 ))
	check "$mode: the held file has blocks" test "$held" -gt 256
	held=$((held + $(stat -c '%b * %B' "$M/d") / 4096))
	rm -rf "$M/d"
	checked_wait "$mode: all deleted, one held: the others' space is back" "$((base - held))"
	# the negative control: the wait that sees space come back times
	# out while the file is held (also once the kernel has been told to
	# forget whatever it can, when we may)
	[ -w /proc/sys/vm/drop_caches ] && echo 2 >/proc/sys/vm/drop_caches
	if wait_free "$base" 2; then
		fail "$mode: control: a deleted file still open gave its space back"
	else
		pass "$mode: control: a deleted file still open keeps its $held blocks ($GOT free)"
	fi
	kill "$HOLDER"
	wait "$HOLDER" 2>/dev/null
	HOLDER=""
	checked_wait "$mode: the holder closed it: its space is back" "$base"

	check "$mode: unmount" umount_fs "$M"
}

run_mode ""
run_mode writeback_cache
finish
