#!/bin/sh
# mount.sh - standard use: `mkfs -t udaxfs`, `mount -t fuse.udaxfs`
# (through mount.fuse3, finding udaxfs in PATH), an /etc/fstab line (a
# private fstab via mount -T), and how mount options reach the kernel.
#
# mount(8) runs mount.fuse3 with PATH removed from the environment, so its
# shell finds udaxfs only in the default PATH (/usr/local/sbin first).  The
# test therefore runs in a private mount namespace where this build's
# programs are bind-mounted over /usr/local/sbin: nothing on the host
# changes, and every mount made here vanishes with the namespace.
if [ -z "${UDAX_MOUNT_NS:-}" ]; then
	if ! command -v unshare >/dev/null; then
		echo "FAIL: unshare (util-linux) is missing"
		exit 1
	fi
	UDAX_MOUNT_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"

mkdir "$W/sbin"
ln -s "$UDAXFS" "$W/sbin/udaxfs"
ln -s "$MKFS" "$W/sbin/mkfs.udaxfs"
mount --bind "$W/sbin" /usr/local/sbin || { fail "bind mount over /usr/local/sbin"; finish; }

M=$W/mnt
mkdir -p "$M"
MOUNTS=$M
opts_of() { awk -v m="$1" '$2 == m { print $3 " " $4 }' /proc/self/mounts; }

# mkfs -t udaxfs on an existing file
truncate -s 64M "$W/m.img"
if command -v mkfs >/dev/null; then
	check "mkfs -t udaxfs" sh -c "mkfs -t udaxfs '$W/m.img' >/dev/null"
else
	"$MKFS" "$W/m.img" >/dev/null
fi

if ! command -v mount.fuse3 >/dev/null && ! command -v mount.fuse >/dev/null; then
	fail "mount.fuse3 (package fuse3) is missing"
	finish
fi

# mount -t fuse.udaxfs
check "mount -t fuse.udaxfs" mount -t fuse.udaxfs -o allow_other "$W/m.img" "$M" || finish
o=$(opts_of "$M")
say "  /proc/mounts: $o"
check "type fuse.udaxfs" test "${o%% *}" = fuse.udaxfs
check "source is the device" awk -v m="$M" -v d="$W/m.img" \
	'$2 == m && $1 == d { f = 1 } END { exit !f }' /proc/self/mounts
check "default_permissions and allow_other reach the kernel" \
	sh -c "echo '$o' | grep -q default_permissions && echo '$o' | grep -q allow_other"
check "usable" sh -c "echo hello >'$M/hello' && grep -qx hello '$M/hello'"
check "umount" sh -c "umount '$M' && sleep 0.2 && ! grep -q ' $M ' /proc/self/mounts"

# read-only and mount flags through mount(8)
check "mount -t fuse.udaxfs -o ro,noexec,nosuid,nodev,noatime" \
	mount -t fuse.udaxfs -o ro,noexec,nosuid,nodev,noatime "$W/m.img" "$M" || finish
o=$(opts_of "$M")
say "  /proc/mounts: $o"
check "ro,nosuid,nodev,noexec,noatime in /proc/mounts" sh -c "
	echo '$o' | grep -q ' ro,' && echo '$o' | grep -q nosuid && echo '$o' | grep -q nodev &&
	echo '$o' | grep -q noexec && echo '$o' | grep -q noatime"
check "ro: data visible" grep -qx hello "$M/hello"
check "ro: writes refused" sh -c "! echo x 2>/dev/null >'$M/hello'"
check "umount ro" sh -c "umount '$M'"
sleep 0.2

# an fstab line, as contrib/fstab.example shows it
cat >"$W/fstab" <<EOT
# device            mountpoint  type         options                                      dump pass
$W/m.img $M fuse.udaxfs defaults,allow_other,noatime,_netdev,nofail,x-systemd.device-timeout=5s 0 0
EOT
check "mount -T fstab MOUNTPOINT" mount -T "$W/fstab" "$M" || finish
o=$(opts_of "$M")
say "  /proc/mounts: $o"
check "fstab options applied (noatime)" sh -c "echo '$o' | grep -q noatime"
check "fstab mount usable" grep -qx hello "$M/hello"
check "umount fstab mount" sh -c "umount '$M'"
sleep 0.2

# our own options through mount(8)
check "mount -o emul_align=2M,dax_policy=untrack-first,recall_timeout=500" \
	mount -t fuse.udaxfs -o emul_align=2M,dax_policy=untrack-first,recall_timeout=500 \
	"$W/m.img" "$M" || finish
check "umount" sh -c "umount '$M'"
sleep 0.2
rc=0
mount -t fuse.udaxfs -o bogus_option "$W/m.img" "$M" 2>"$W/err" || rc=$?
check "mount -o bogus_option fails and names it" \
	sh -c "test $rc != 0 && grep -q bogus_option '$W/err' && ! grep -q ' $M ' /proc/self/mounts"
umount /usr/local/sbin
finish
