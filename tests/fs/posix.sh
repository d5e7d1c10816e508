#!/bin/sh
# posix.sh - every file system operation through a real FUSE mount of
# udaxfs, with its error cases (fsops.c: ENOENT, EEXIST, ENOTEMPTY, EISDIR,
# ENOTDIR, ENAMETOOLONG, EACCES/EPERM as another user, xattr namespaces,
# RENAME_NOREPLACE/EXCHANGE, fallocate modes, SEEK_DATA/HOLE,
# copy_file_range, mknod, links), then ENOSPC on a small device.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"

new_image big.img 256M
M=$W/mnt
mount_fs "$W/big.img" "$M" || { fail "mount"; finish; }
pass "mounted $W/big.img on $M"

check "fsops: every operation and error code" "$FSOPS" "$M"

# the same permission rules seen from a shell as another user
echo secret >"$M/root-only"; chmod 600 "$M/root-only"
check "nobody cannot read root's 0600 file" \
	sh -c "! setpriv --reuid=65534 --regid=65534 --clear-groups cat '$M/root-only' 2>/dev/null"
check "nobody can list the root directory" \
	sh -c "setpriv --reuid=65534 --regid=65534 --clear-groups ls '$M' >/dev/null"

check "unmount" umount_fs "$M"
# what fsops left behind is still there after a remount
mount_fs "$W/big.img" "$M" || { fail "remount"; finish; }
check "fsops' files, links, nodes and xattrs survive a remount" "$FSOPS" "$M" after_remount
check "unmount" umount_fs "$M"

# ENOSPC: fill a small device, free it, use it again
new_image small.img 16M
mount_fs "$W/small.img" "$M" || { fail "mount small"; finish; }
check "fsops enospc" "$FSOPS" "$M" enospc
check "unmount small" umount_fs "$M"
finish
