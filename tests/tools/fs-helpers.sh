#!/bin/sh
# fs-helpers: "make install" links mount.udaxfs, mount.fuse.udaxfs,
# mkfs.udaxfs and fsck.udaxfs into the directory util-linux searches
# (configure --with-fs-helpers-dir), under DESTDIR, pointing at the
# programs in sbindir; "make uninstall" removes exactly those links.
#
# Then, as root and in a private mount namespace where that DESTDIR
# install is laid over the real directories (overlayfs), with the minimal
# PATH a boot script has: mkfs -t udaxfs formats an emulation file, fsck -t
# udaxfs -n checks it (and, the negative control, fails with 8 on a zeroed
# file: without the links fsck exits 0 having checked nothing), mount -t
# udaxfs and mount -t fuse.udaxfs mount it.  That part is skipped (with
# the reason) when not root, without unshare/overlayfs//dev/fuse, or when
# the configured directory is not one mount(8) searches (distcheck).
set -u
B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
MAKE=${UDAX_MAKE:-make}
helpers=${UDAX_FS_HELPERS_DIR-/usr/sbin}
sbindir=${UDAX_SBINDIR:-/usr/local/sbin}
MINPATH=/usr/sbin:/usr/bin:/sbin:/bin
rc=0
fail() { echo "FAIL: $*"; rc=1; }
tmp=$(mktemp -d /tmp/udax-fs-helpers.XXXXXX) || exit 99
D=$tmp/root
trap 'rm -rf "$tmp"' EXIT

# ---- 1. DESTDIR install and uninstall ----
if ! $MAKE -C "$B" install DESTDIR="$D" > "$tmp/install.log" 2>&1; then
	tail -20 "$tmp/install.log"; echo "FAIL: make install DESTDIR=$D"; exit 1
fi
if [ -z "$helpers" ]; then
	echo "configured --with-fs-helpers-dir=no: checking that nothing is linked"
	found=$(find "$D" -type l -name '*.udaxfs')
	[ -z "$found" ] || fail "links installed although disabled: $found"
else
	for pair in mount.udaxfs:mount.udaxfs mount.fuse.udaxfs:mount.udaxfs \
		    mkfs.udaxfs:mkfs.udaxfs fsck.udaxfs:fsck.udaxfs; do
		link=${pair%%:*}; prog=${pair#*:}
		if [ "$D$helpers" -ef "$D$sbindir" ]; then
			[ -f "$D$sbindir/$prog" ] || fail "$prog not installed"
			continue
		fi
		if [ ! -L "$D$helpers/$link" ]; then
			fail "$D$helpers/$link is not a link"; continue
		fi
		t=$(readlink "$D$helpers/$link")
		[ "$t" = "$sbindir/$prog" ] || fail "$link points at $t, not $sbindir/$prog"
		[ -x "$D$t" ] || fail "$link: $D$t is not an installed program"
	done
fi
[ -x "$D$sbindir/mount.udaxfs" ] || fail "mount.udaxfs not installed in sbindir"

# ---- 2. as root: the real tools, minimal PATH, a real mount ----
skip=""
[ "$(id -u)" = 0 ] || skip="not root"
[ -z "$skip" ] && ! command -v unshare >/dev/null 2>&1 && skip="no unshare(1)"
[ -z "$skip" ] && [ ! -c /dev/fuse ] && skip="no /dev/fuse"
case $helpers in
/sbin|/usr/sbin|/sbin/fs.d|/sbin/fs) ;;
*) [ -z "$skip" ] && skip="helpers go to $helpers, which mount(8) does not search" ;;
esac
[ -z "$skip" ] && [ ! -d "$helpers" ] && skip="$helpers does not exist on this system"
[ -z "$skip" ] && [ ! -d "$sbindir" ] && skip="$sbindir does not exist on this system"
[ -z "$skip" ] && ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null && skip="no overlayfs"

if [ -n "$skip" ]; then
	echo "real-mount part skipped: $skip"
else
	img=/dev/shm/udax-fs-helpers-$$.img
	bad=/dev/shm/udax-fs-helpers-bad-$$.img
	mnt=$tmp/mnt
	mkdir -p "$mnt"
	cat > "$tmp/ns.sh" <<EOS
set -u
mount --make-rprivate / || exit 90
[ "$helpers" -ef "$sbindir" ] ||
	mount -t overlay overlay -o "lowerdir=$D$helpers:$helpers" "$helpers" || exit 91
mount -t overlay overlay -o "lowerdir=$D$sbindir:$sbindir" "$sbindir" || exit 92
trap 'umount "$mnt" 2>/dev/null; rm -f "$img" "$bad"' EXIT
run() { env -i PATH=$MINPATH "\$@"; }
truncate -s 64M "$img" "$bad"
run mkfs -t udaxfs "$img" > "$tmp/mkfs.out" 2>&1; echo "mkfs \$?"
run fsck -t udaxfs -n "$img" > "$tmp/fsck.out" 2>&1; echo "fsck \$?"
run fsck -t udaxfs -n "$bad" > "$tmp/fsck-bad.out" 2>&1; echo "fsck-bad \$?"
run mount -t udaxfs -o allow_other "$img" "$mnt" > "$tmp/mount.out" 2>&1; echo "mount \$?"
awk -v m="$mnt" '\$2 == m { print "type", \$3 }' /proc/self/mounts
echo written > "$mnt/f" 2>/dev/null; echo "write \$?"
umount "$mnt"; echo "umount \$?"
run mount -t fuse.udaxfs "$img" "$mnt" > "$tmp/mount2.out" 2>&1; echo "mount2 \$?"
cat "$mnt/f" 2>/dev/null | sed 's/^/read /'
umount "$mnt"; echo "umount2 \$?"
EOS
	unshare -m sh "$tmp/ns.sh" > "$tmp/ns.out" 2>&1
	st=$?
	case $st in 90|91|92)
		echo "real-mount part skipped: cannot lay the install over $helpers and $sbindir (exit $st)"
		cat "$tmp/ns.out"
		[ $rc = 0 ] && echo "fs-helpers: install checks passed"
		exit $rc ;;
	esac
	want="mkfs 0
fsck 0
fsck-bad 8
mount 0
type fuse.udaxfs
write 0
umount 0
mount2 0
read written
umount2 0"
	if [ "$(cat "$tmp/ns.out")" != "$want" ]; then
		fail "the util-linux tools with PATH=$MINPATH:"
		diff "$tmp/ns.out" - <<EOW
$want
EOW
		for f in mkfs fsck fsck-bad mount mount2; do
			echo "--- $f:"; cat "$tmp/$f.out" 2>/dev/null
		done
	else
		grep -q "0 errors" "$tmp/fsck.out" || fail "fsck -t udaxfs did not report its check: $(cat "$tmp/fsck.out")"
		grep -q "not a udaxfs file system" "$tmp/fsck-bad.out" ||
			fail "fsck -t udaxfs on a wiped image does not say why: $(cat "$tmp/fsck-bad.out")"
		echo "ok: mkfs/fsck/mount -t udaxfs and mount -t fuse.udaxfs with PATH=$MINPATH"
	fi
fi

# ---- 3. uninstall removes the links and leaves what is not ours ----
if [ -n "$helpers" ] && ! [ "$D$helpers" -ef "$D$sbindir" ]; then
	ln -sf /somewhere/else/fsck.udaxfs "$D$helpers/fsck.udaxfs"
fi
if ! $MAKE -C "$B" uninstall DESTDIR="$D" > "$tmp/uninstall.log" 2>&1; then
	tail -20 "$tmp/uninstall.log"; fail "make uninstall DESTDIR=$D"
fi
if [ -n "$helpers" ] && ! [ "$D$helpers" -ef "$D$sbindir" ]; then
	for link in mount.udaxfs mount.fuse.udaxfs mkfs.udaxfs; do
		[ -L "$D$helpers/$link" ] && fail "uninstall left $link"
	done
	[ -L "$D$helpers/fsck.udaxfs" ] || fail "uninstall removed a link that is not ours"
	rm -f "$D$helpers/fsck.udaxfs"
fi
left=$(find "$D" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
[ $rc = 0 ] && echo "fs-helpers: all passed"
exit $rc
