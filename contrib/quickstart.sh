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
echo
echo "==> direct access: a process pins the pages of a file (io_uring fixed buffers),"
echo "    a truncate from another process waits until the pin is released"
head -c 4M /dev/urandom > "$mnt/pinned.dat"
udaxctl pin "$mnt/pinned.dat" --seconds 2 --ignore-recall &
pinner=$!
sleep 0.5
udaxctl status "$mnt" || true
start=$(date +%s.%N)
truncate -s 0 "$mnt/pinned.dat"
end=$(date +%s.%N)
wait $pinner || true
awk -v s="$start" -v e="$end" 'BEGIN { printf "truncate waited %.2f s for the pin to go, then freed the blocks\n", e - s }'
echo
echo "udaxfs is mounted on $mnt (device: $dev)."
echo "Unmount with:  umount $mnt     (or: fusermount3 -u $mnt)"
