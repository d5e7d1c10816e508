#!/bin/sh
# mkfs-tool: mkfs.udaxfs end to end: -s creates a sparse file, options after
# the device, a second run refuses without -f, -b other than 4096, a too
# small size, a non-device, -V, and mkfs -t udaxfs through util-linux.
set -u
rc=0
img=/dev/shm/udax-mkfs-tool-$$.img
trap 'rm -f "$img"' EXIT
fail() { echo "FAIL: $*"; rc=1; }
command -v mkfs.udaxfs >/dev/null 2>&1 || { echo "FAIL: mkfs.udaxfs not in PATH"; exit 1; }

out=$(mkfs.udaxfs "$img" -s 64M -L t1) || fail "format 64M"
echo "$out" | grep -q "label: *t1" || fail "label not printed: $out"
echo "$out" | grep -q "uuid:" || fail "uuid not printed"
[ "$(stat -c %s "$img")" = 67108864 ] || fail "size not 64 MiB"
[ "$(stat -c %b "$img")" -lt 4096 ] || fail "file not sparse"
err=$(mkfs.udaxfs "$img" 2>&1) && fail "second mkfs without -f succeeded"
echo "$err" | grep -q "udaxfs signature" || fail "wrong refusal: $err"
[ "$(echo "$err" | wc -l)" = 1 ] || fail "error is not one line: $err"
mkfs.udaxfs -q -f "$img" > /tmp/udax-mkfs-tool-q.$$ || fail "-f -q"
[ -s /tmp/udax-mkfs-tool-q.$$ ] && fail "-q printed something"
rm -f /tmp/udax-mkfs-tool-q.$$
mkfs.udaxfs -b 1024 -f "$img" 2>/dev/null && fail "-b 1024 accepted"
mkfs.udaxfs -f "$img" -b 4096 -q || fail "-b 4096 after the device refused"
mkfs.udaxfs "$img.small" -s 3M 2>&1 | grep -q "smaller than the 4 MiB minimum" || fail "3M accepted"
rm -f "$img.small"
mkfs.udaxfs /dev/null 2>&1 | grep -q "not a device-DAX or regular file" || fail "/dev/null"
mkfs.udaxfs 2>/dev/null && fail "no device accepted"
mkfs.udaxfs -V | grep -q "format version 1" || fail "-V"
if command -v mkfs >/dev/null 2>&1; then
	PATH=$(dirname "$(command -v mkfs.udaxfs)"):$PATH mkfs -t udaxfs -f "$img" -q || fail "mkfs -t udaxfs"
fi
[ $rc = 0 ] && echo "mkfs-tool: all passed"
exit $rc
