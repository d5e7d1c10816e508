#!/bin/sh
# mkfs-shim.sh - stands in for mkfs.udaxfs while suite.sh runs the tests of
# tests/fs on a real device.  Those tests make emulation images with
# `mkfs.udaxfs -s SIZE FILE`; the first image of at least UDAX_SHIM_MIN
# (128 MiB) that a test makes becomes the device instead: the device is
# formatted (-f, no -s) and FILE is made a symlink to it, so the test mounts,
# fills and remounts the real device-DAX.  Smaller images (ENOSPC tests,
# corrupted-image tests) stay emulation files.  Any other call goes to the
# real mkfs.udaxfs unchanged.
#
# Environment: UDAX_DEVICE (the device), UDAX_REAL_MKFS (the real program).
set -u
real=${UDAX_REAL_MKFS:?}

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

used=${file%/*}/.udax-devdax-shim
if [ -z "${UDAX_DEVICE:-}" ] || [ -z "$size" ] || [ -z "$file" ] || [ -e "$used" ] ||
   [ "$(bytes "$size")" -lt "$(bytes "${UDAX_SHIM_MIN:-128M}")" ]; then
	exec "$real" "$@"
fi

# the same options, minus -s SIZE, on the device
n=$#
skip=0
i=0
for a in "$@"; do
	i=$((i + 1))
	if [ $skip = 1 ]; then skip=0; continue; fi
	case $a in
	-s) skip=1; continue ;;
	-f) continue ;;
	esac
	[ "$a" = "$file" ] && a=$UDAX_DEVICE
	set -- "$@" "$a"
done
shift $n
touch "$used"
rm -f "$file"
ln -s "$UDAX_DEVICE" "$file"
echo "mkfs-shim: $file is $UDAX_DEVICE (asked for a $size image)" >&2
exec "$real" -f "$@"
