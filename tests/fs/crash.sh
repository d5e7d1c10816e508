#!/bin/sh
# crash.sh - SIGKILL the daemon at random moments under a workload that
# writes, fsyncs, renames and deletes files; after each kill the file
# system mounts again, every file whose fsync returned has its data, and
# the file system is usable (fsck.udaxfs, when built, finds it clean).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"

ROUNDS=${UDAX_CRASH_ROUNDS:-6}
new_image c.img 128M
M=$W/mnt
LOG=$W/durable.log	# "NAME SHA256" once the file and its name are durable
: >"$LOG"
mkdir -p "$W/src"

# workload ROUND: runs until the mount dies under it
workload() {
	r=$1; n=0
	mkdir -p "$M/r$r" 2>/dev/null || return
	while :; do
		n=$((n + 1))
		src=$W/src/$r.$n
		head -c $(( (n * 7919) % 300000 + 1 )) /dev/urandom >"$src"
		sum=$(sha256sum <"$src" | cut -d' ' -f1)
		# write under a temporary name, fsync, rename into place, fsync the dir
		dd if="$src" of="$M/r$r/tmp.$n" bs=64k conv=fsync status=none 2>/dev/null || return
		mv "$M/r$r/tmp.$n" "$M/r$r/f$n" 2>/dev/null || return
		sync "$M/r$r" 2>/dev/null || return
		echo "r$r/f$n $sum" >>"$LOG"
		rm -f "$src"
		# churn: delete an older file (never one in the log: it must stay)
		touch "$M/r$r/junk.$n" 2>/dev/null && rm -f "$M/r$r/junk.$((n - 1))" 2>/dev/null
		[ $((n % 5)) = 0 ] && { mkdir "$M/r$r/dir$n" && rmdir "$M/r$r/dir$n"; } 2>/dev/null
	done
}

verify() {
	bad=0
	while read -r name sum; do
		got=$(sha256sum <"$M/$name" 2>/dev/null | cut -d' ' -f1)
		if [ "$got" != "$sum" ]; then
			say "  lost or damaged after a kill: $name"
			bad=1
		fi
	done <"$LOG"
	return $bad
}

r=1
while [ $r -le $ROUNDS ]; do
	mount_fg "$W/c.img" "$M" || { fail "round $r: mount after kill"; cat "$W/daemon.log"; finish; }
	if [ $r -gt 1 ]; then
		check "round $r: $(wc -l <"$LOG") fsync'd files intact after SIGKILL" verify
	fi
	workload $r &
	wl=$!
	# kill somewhere between 0.2 and 1.7 s into the workload
	sleep "$(awk -v s="$$$r" 'BEGIN { srand(s); printf "%.2f", 0.2 + rand() * 1.5 }')"
	kill -9 "$FG_PID"
	wait "$FG_PID" 2>/dev/null
	FG_PID=""
	fusermount3 -u -z "$M" 2>/dev/null || umount -l "$M"
	wait "$wl" 2>/dev/null
	r=$((r + 1))
done

mount_fg "$W/c.img" "$M" || { fail "final mount"; finish; }
check "final: $(wc -l <"$LOG") fsync'd files intact" verify
check "final: file system usable (create, write, read, remove)" sh -c "
	mkdir '$M/after' && echo ok >'$M/after/x' && grep -qx ok '$M/after/x' &&
	rm -r '$M/after' && ! test -e '$M/after'"
check "final: clean unmount" umount_fs "$M"
wait_fg
check "final: daemon exited 0" test "$FG_STATUS" = 0
if [ -x "$B/fsck.udaxfs" ]; then
	check "fsck.udaxfs finds the file system clean" "$B/fsck.udaxfs" -n "$W/c.img"
fi
finish
