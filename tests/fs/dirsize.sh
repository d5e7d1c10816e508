#!/bin/sh
# dirsize.sh - a directory the mounted file system grew is one fsck calls
# healthy, in both write modes.
#
# Bug this catches: the names of /usr/include/linux (570 entries, files
# and subdirectories, created in the order tar lists them) in one
# directory gave it a fifth and sixth block in separate extents, so its
# extent tree left the inode for a node block; fsck -n then reported
# "directory size 20480 does not match its 6 blocks ... clear the inode"
# and fsck -y deleted the directory and its 570 files.
#
# The names come from /usr/include/linux when it is there (in readdir
# order, as tar stores them), otherwise from a generated list of the same
# shape.  After unmount, fsck -n must be clean and fsck -y must change
# nothing; every name is still there after a remount.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"
FSCK=$B/fsck.udaxfs
M=$W/mnt
L=$W/names

if [ -d /usr/include/linux ] && [ "$(ls -A /usr/include/linux | wc -l)" -ge 500 ]; then
	find /usr/include/linux -mindepth 1 -maxdepth 1 -printf '%y %f\n' >"$L"
else
	i=0
	while [ $i -lt 570 ]; do
		if [ $((i % 8)) = 0 ]; then echo "d dir$i"; else echo "f header-file-number-$i.h"; fi
		i=$((i + 1))
	done >"$L"
fi
N=$(wc -l <"$L")
say "$N names"

for mode in "" writeback_cache; do
	what="-o ${mode:-default}"
	new_image ds.img 64M
	mount_fs "$W/ds.img" "$M" "$mode" || { fail "mount $what"; continue; }
	mkdir "$M/linux"
	while read -r t n; do
		if [ "$t" = d ]; then mkdir "$M/linux/$n"; else : >"$M/linux/$n"; fi
	done <"$L"
	check "$what: $N names listed while mounted" test "$(ls -A "$M/linux" | wc -l)" = "$N"
	check "$what: unmount" umount_fs "$M"
	"$FSCK" -n -f "$W/ds.img" >"$W/fsck.out" 2>&1
	rc=$?
	check "$what: fsck -n finds the directory healthy (status $rc)" test $rc = 0 ||
		head -5 "$W/fsck.out"
	cp "$W/ds.img" "$W/ds.before"
	"$FSCK" -y -f "$W/ds.img" >"$W/fsck.out" 2>&1
	rc=$?
	check "$what: fsck -y has nothing to repair (status $rc)" test $rc = 0
	check "$what: fsck -y left the image unchanged" cmp -s "$W/ds.before" "$W/ds.img"
	mount_fs "$W/ds.img" "$M" "$mode" || { fail "remount $what"; continue; }
	check "$what: $N names after fsck and remount" test "$(ls -A "$M/linux" | wc -l)" = "$N"
	check "$what: unmount" umount_fs "$M"
done
finish
