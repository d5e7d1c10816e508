#!/bin/sh
# mkfs-shim.sh - stands in for mkfs.udaxfs while suite.sh runs other
# helpers' tests (tests/fs, tests/dma) on a real device.  Those tests make
# emulation images: `mkfs.udaxfs -s SIZE FILE`, or a FILE they sized
# themselves.  When the image is at least UDAX_SHIM_MIN (64 MiB) and the
# device is not in use, the device replaces it: FILE becomes a symlink to
# the device, which is formatted (-f, without -s), so the test mounts,
# fills, pins and remounts the real device-DAX.  Smaller images (ENOSPC,
# corrupted-image tests) and a second image while the device is busy stay
# emulation files.  Every other call reaches the real mkfs.udaxfs unchanged.
#
# Environment: UDAX_DEVICE (the device), UDAX_REAL_MKFS (the real program);
# UDAX_SHIM=0 keeps every image an emulation file (to tell a failure the
# device causes from one the guest causes).
set -u
real=${UDAX_REAL_MKFS:?}
dev=${UDAX_DEVICE:-}

size=""
file=""
prev=""
for a in "$@"; do
	[ "$prev" = -s ] && size=$a
	case $prev in -s|-b|-L) ;; *) case $a in -*) ;; *) file=$a ;; esac ;; esac
	prev=$a
done

bytes() {	# SIZE with an optional K/M/G suffix -> bytes (0 if unknown)
	case $1 in
	*[Gg]*) echo $(( ${1%%[Gg]*} * 1073741824 )) ;;
	*[Mm]*) echo $(( ${1%%[Mm]*} * 1048576 )) ;;
	*[Kk]*) echo $(( ${1%%[Kk]*} * 1024 )) ;;
	*[0-9]) echo "$1" ;;
	*) echo 0 ;;
	esac
}

# busy: does a process hold the device open (a mounted daemon)?
busy() {
	for fd in /proc/[0-9]*/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "$dev" ] && return 0
	done
	return 1
}

want=0
if [ -n "$size" ]; then
	want=$(bytes "$size")
elif [ -f "$file" ] && [ ! -L "$file" ]; then
	want=$(stat -c %s "$file")
fi
if [ -z "$dev" ] || [ "${UDAX_SHIM:-1}" = 0 ] || [ -z "$file" ] || [ "$want" -lt "$(bytes "${UDAX_SHIM_MIN:-64M}")" ] ||
   [ "$file" = "$dev" ] || busy; then
	exec "$real" "$@"
fi

# the same options, minus -s SIZE and -f, on the device
n=$#
skip=0
for a in "$@"; do
	if [ $skip = 1 ]; then skip=0; continue; fi
	case $a in
	-s) skip=1; continue ;;
	-f) continue ;;
	esac
	[ "$a" = "$file" ] && a=$dev
	set -- "$@" "$a"
done
shift $n
rm -f "$file"
ln -s "$dev" "$file"
echo "mkfs-shim: $file is $dev (the test asked for a $want-byte image)" >&2
exec "$real" -f "$@"
