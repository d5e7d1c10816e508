#!/bin/sh
# persist.sh - everything written is there after unmount and mount:
# a 64 MiB file (written with dd, checksummed), 3000 small files in 30
# directories, and a read-only mount that serves them without writing.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"

new_image p.img 256M
M=$W/mnt
mount_fs "$W/p.img" "$M" || { fail "mount"; finish; }

head -c 64M /dev/urandom >"$W/big.src"
want=$(sha256sum <"$W/big.src" | cut -d' ' -f1)
check "dd 64 MiB into the mount" dd if="$W/big.src" of="$M/big" bs=1M conv=fsync status=none
got=$(sha256sum <"$M/big" | cut -d' ' -f1)
check "64 MiB file reads back the same" test "$got" = "$want"
rm -f "$W/big.src"

# 3000 files, each naming itself, in 30 directories
i=0
while [ $i -lt 30 ]; do
	mkdir "$M/d$i"
	j=0
	while [ $j -lt 100 ]; do
		echo "file $i/$j" >"$M/d$i/f$j"
		j=$((j + 1))
	done
	i=$((i + 1))
done
find "$M" -type f -name 'f*' -exec cat {} + | sha256sum >"$W/small.sum"
check "3000 files listed" test "$(find "$M" -type f -name 'f*' | wc -l)" = 3000
# a few removed and renamed, to persist directory changes too
rm "$M/d0/f1" "$M/d0/f2"
mv "$M/d1/f1" "$M/d2/moved"
check "unmount" umount_fs "$M"

mount_fs "$W/p.img" "$M" || { fail "remount"; finish; }
got=$(sha256sum <"$M/big" | cut -d' ' -f1)
check "64 MiB file intact after remount" test "$got" = "$want"
check "2997 files after remount (2 removed, 1 renamed)" \
	test "$(find "$M" -type f -name 'f*' | wc -l)" = 2997
check "removed files stay removed" test ! -e "$M/d0/f1" -a ! -e "$M/d0/f2"
check "renamed file moved" sh -c "test ! -e '$M/d1/f1' && grep -qx 'file 1/1' '$M/d2/moved'"
check "every small file has its content" sh -c '
	i=2; bad=0
	while [ $i -lt 30 ]; do j=0
		while [ $j -lt 100 ]; do
			[ "$(cat "$1/d$i/f$j")" = "file $i/$j" ] || bad=1; j=$((j + 1)); done
		i=$((i + 1)); done
	exit $bad' sh "$M"
check "unmount" umount_fs "$M"

# read-only: the data is served, every change is refused, nothing written
# (the image hash only where the image is a file: a device-DAX has no read())
before=""
# (the unmounted daemon writes its clean state after the mount is gone and
# holds its lock on the image until that is durable: wait for the lock)
[ -f "$W/p.img" ] && [ ! -L "$W/p.img" ] && flock "$W/p.img" true &&
	before=$(sha256sum <"$W/p.img")
mount_fs "$W/p.img" "$M" ro || { fail "mount -o ro"; finish; }
check "ro mount shows ro in /proc/mounts" \
	awk -v m="$M" '$2 == m && $4 ~ /^ro(,|$)/ { f = 1 } END { exit !f }' /proc/self/mounts
got=$(sha256sum <"$M/big" | cut -d' ' -f1)
check "64 MiB file readable read-only" test "$got" = "$want"
check "write refused on a ro mount" sh -c "! touch '$M/new' 2>/dev/null"
check "unmount ro" umount_fs "$M"
sleep 0.2
[ -n "$before" ] &&
	check "a read-only mount writes nothing" test "$(sha256sum <"$W/p.img")" = "$before"
finish
