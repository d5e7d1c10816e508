#!/bin/sh
# badinput.sh - mounting what is not a good udaxfs, and bad command lines:
# one line on stderr naming what is wrong, a non-zero exit status, no
# mount, and not one byte of the device changed.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"

M=$W/mnt
mkdir -p "$M"
MOUNTS=$M

# refuse IMG PATTERN ARGS...: udaxfs IMG $M ARGS must fail with one line
# matching PATTERN, leave IMG unchanged and mount nothing.
refuse() {
	img=$1; pat=$2; shift 2
	sum=$( { sha256sum <"$img"; } 2>/dev/null)
	rc=0
	"$UDAXFS" "$img" "$M" "$@" 2>"$W/err" >/dev/null || rc=$?
	msg=$(cat "$W/err")
	lines=$(wc -l <"$W/err")
	if is_mounted "$M"; then
		fail "$img $*: mounted"; fusermount3 -u "$M"; return
	fi
	[ "$rc" != 0 ] || { fail "$img $*: exit status 0"; return; }
	[ "$lines" = 1 ] || { fail "$img $*: $lines lines on stderr: $msg"; return; }
	printf '%s\n' "$msg" | grep -q -- "$pat" || { fail "$img $*: message '$msg' lacks '$pat'"; return; }
	case $msg in udaxfs:*) ;; *) fail "$img $*: message does not start with 'udaxfs:'"; return;; esac
	[ "$( { sha256sum <"$img"; } 2>/dev/null)" = "$sum" ] || { fail "$img $*: device changed"; return; }
	pass "refused (exit $rc): $msg"
}

# not a udaxfs at all
head -c 16M /dev/urandom >"$W/garbage.img"
refuse "$W/garbage.img" "not a udaxfs"
truncate -s 16M "$W/zero.img"
refuse "$W/zero.img" "not a udaxfs"
# a good image whose magic was wiped in both copies
new_image nomagic.img 32M
"$SBEDIT" "$W/nomagic.img" magic-both
refuse "$W/nomagic.img" "not a udaxfs"

# a newer format version, or an incompat feature we do not know
new_image newer.img 32M
"$SBEDIT" "$W/newer.img" version 2
refuse "$W/newer.img" "version"
new_image feat.img 32M
"$SBEDIT" "$W/feat.img" incompat 0x80
refuse "$W/feat.img" "feature"

# truncated image: cut in half
new_image trunc.img 64M
truncate -s 32M "$W/trunc.img"
refuse "$W/trunc.img" "truncat\|smaller"

# both superblocks corrupted
new_image bad2.img 32M
"$SBEDIT" "$W/bad2.img" corrupt-both
refuse "$W/bad2.img" "corrupt\|checksum"

# missing device, directory as device
refuse "$W/nonexistent.img" "No such file"
refuse "$W" "not a device-DAX or regular file\|directory"

# the primary superblock corrupted: the backup is used, and it says so
new_image bad1.img 32M
"$SBEDIT" "$W/bad1.img" corrupt-primary
rc=0
"$UDAXFS" "$W/bad1.img" "$M" 2>"$W/err" || rc=$?
check "corrupt primary: mounts from the backup (exit $rc)" is_mounted "$M"
check "corrupt primary: says it used the backup" grep -qi "backup" "$W/err"
say "  stderr: $(cat "$W/err")"
is_mounted "$M" && check "corrupt primary: usable" sh -c "echo x >'$M/f' && grep -qx x '$M/f'"
is_mounted "$M" && umount_fs "$M"

# bad options and command lines: refused before the device is touched
new_image good.img 32M
refuse "$W/good.img" "unknown mount option 'bogus'" -o bogus
refuse "$W/good.img" "unknown mount option 'nonsense=1'" -o allow_other,nonsense=1
refuse "$W/good.img" "emul_align" -o emul_align=3000
refuse "$W/good.img" "emul_align" -o emul_align=banana
refuse "$W/good.img" "dax_policy" -o dax_policy=sometimes
refuse "$W/good.img" "recall_timeout" -o recall_timeout=-5
refuse "$W/good.img" "max_threads" -o max_threads=0
refuse "$W/good.img" "timeout" -o timeout=soon
refuse "$W/good.img" "poll_us" -o poll_us=-1
refuse "$W/good.img" "dax_allow" -o dax_allow=bob
refuse "$W/good.img" "unknown mount option 'bob'" -o dax_allow=uid:0,bob
refuse "$W/good.img" "unknown option '-x'" -x
refuse "$W/good.img" "option -o needs an argument" -o
refuse "$W/good.img" "unexpected argument" extra-arg
# an emulation whose size is not a multiple of the alignment asked for
truncate -s 33M "$W/odd.img"
refuse "$W/odd.img" "align" -o emul_align=2M

rc=0; "$UDAXFS" 2>"$W/err" || rc=$?
check "no arguments: exit 1 and one line" test "$rc" = 1 -a "$(wc -l <"$W/err")" = 1
rc=0; "$UDAXFS" "$W/good.img" 2>"$W/err" || rc=$?
check "no mount point: exit 1 and one line" test "$rc" = 1 -a "$(wc -l <"$W/err")" = 1
rc=0; "$UDAXFS" "$W/good.img" "$W/no-such-dir" 2>"$W/err" || rc=$?
check "missing mount point: exit 1, names it" sh -c "test $rc = 1 && grep -q no-such-dir '$W/err'"
check "-h prints usage, exits 0" sh -c "'$UDAXFS' -h | grep -q '^Usage: udaxfs DEVICE MOUNTPOINT'"
check "-V prints the version, exits 0" sh -c "'$UDAXFS' -V | grep -q '^udaxfs (udaxfs) [0-9]'"

# one daemon per device (and a dax_allow list, commas and all, is accepted)
check "mount with -o dax_allow=uid:0,uid:1000,gid:100,recall_timeout=0" \
	mount_fs "$W/good.img" "$M" dax_allow=uid:0,uid:1000,gid:100,recall_timeout=0
mkdir -p "$W/mnt2"
MOUNTS="$MOUNTS $W/mnt2"
rc=0; "$UDAXFS" "$W/good.img" "$W/mnt2" 2>"$W/err" || rc=$?
check "second mount of one device refused" sh -c "test $rc != 0 && grep -q 'in use' '$W/err'"
umount_fs "$M"
finish
