#!/bin/bash
# quickstart.sh [/dev/daxX.Y]
# Installs what is needed, builds udaxfs, creates an emulated device (or uses
# the /dev/dax given), formats it, mounts it and runs a short demo.
# Run as root on Debian 12 from the top of the source tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

dev=${1:-}
bash contrib/deps.sh build

echo "==> building"
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q --prefix=/usr/local --sysconfdir=/etc
make -j"$(nproc)" >/dev/null
make install >/dev/null
ldconfig
cd "$top"

mnt=/mnt/udaxfs
if [ -z "$dev" ]; then
	dev=/dev/shm/udaxfs-demo.img
	echo "==> no device named: emulating one in $dev (1 GiB, sparse, on tmpfs)"
	if mountpoint -q "$mnt"; then fusermount3 -u "$mnt"; fi
	mkfs.udaxfs -f -s 1G -L demo "$dev"
else
	echo "==> formatting $dev (its contents are destroyed)"
	if mountpoint -q "$mnt"; then fusermount3 -u "$mnt"; fi
	mkfs.udaxfs -f -L demo "$dev"
fi

mkdir -p "$mnt"
echo "==> mounting: mount -t fuse.udaxfs $dev $mnt"
mount -t fuse.udaxfs "$dev" "$mnt" -o allow_other

echo "==> demo"
set -x
echo "hello from udaxfs" > "$mnt/hello.txt"
cat "$mnt/hello.txt"
mkdir -p "$mnt/dir/sub"
dd if=/dev/urandom of="$mnt/dir/blob" bs=1M count=16 status=none
sha256sum "$mnt/dir/blob"
truncate -s 4M "$mnt/dir/blob"
fallocate -p -o 0 -l 1M "$mnt/dir/blob"
ls -l "$mnt" "$mnt/dir"
df -h "$mnt"
set +x
if command -v udaxctl >/dev/null && [ -x build/tests/dma/direct_demo ]; then
	build/tests/dma/direct_demo "$mnt/direct.dat" || true
fi
echo
echo "udaxfs is mounted on $mnt (device: $dev)."
echo "Unmount with:  umount $mnt     (or: fusermount3 -u $mnt)"
