#!/bin/sh
# mkinitramfs.sh - build the devdax test guest's initramfs.
#
# Usage: mkinitramfs.sh KVER MODROOT OUT.cpio.gz
# Environment: top_srcdir, top_builddir (the udaxfs trees).
#
# The guest is busybox-static plus:
#  - the nvdimm/devdax/fuse modules, decompressed (busybox insmod reads only
#    plain .ko) and listed in load order in /modules.order;
#  - ndctl, daxctl, fusermount3, mount.fuse3, bash (for shell tests), the
#    attr tools when installed, each with its ldd libraries and the loader;
#  - every program of the udaxfs build tree, at the same relative path under
#    /udax/build (the real ELF, never a libtool wrapper script), and the
#    project's shared libraries in /lib/x86_64-linux-gnu where the guest's
#    loader finds them without ld.so.cache;
#  - the test scripts of the source tree under /udax/src;
#  - tests/devdax/guest-init.sh as /init.
# Exit: 0, 77 when a tool it needs is missing, 1 on error.
set -eu

kver=$1
modroot=$2
out=$3
src=${top_srcdir:?}
bld=${top_builddir:?}

say() { echo "mkinitramfs: $*" >&2; }

busybox=$(command -v busybox) || { say "SKIP: no busybox (apt-get install busybox-static)"; exit 77; }
if ldd "$busybox" >/dev/null 2>&1; then
	say "SKIP: $busybox is dynamically linked (apt-get install busybox-static)"
	exit 77
fi
for t in cpio gzip depmod modprobe ndctl daxctl fusermount3; do
	command -v $t >/dev/null 2>&1 || { say "SKIP: no $t"; exit 77; }
done

# stage in memory when we can: the tree is about 40 MB of small files
stage=${TMPDIR:-/tmp}
[ -w /dev/shm ] && stage=/dev/shm
root=$(mktemp -d "$stage/udax-initramfs.XXXXXX")
trap 'rm -rf "$root" "$root.elfs"' EXIT
# /lib is /usr/lib as on the host (one copy of each library, whichever
# path ldd names); /bin stays busybox's own directory.
mkdir -p "$root/usr/lib/x86_64-linux-gnu" "$root/usr/lib64"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" \
	"$root/proc" "$root/sys" "$root/tmp" "$root/run" "$root/mnt" "$root/etc" "$root/root" \
	"$root/udax/build" "$root/udax/src" "$root/lib/modules/$kver" \
	"$root/usr/local/bin" "$root/usr/local/sbin"

# busybox and its applets.  `busybox --list` names busybox itself: linking
# that name would replace the binary with a symlink to itself (ELOOP at /init).
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
	[ "$a" = busybox ] && continue
	ln -s busybox "$root/bin/$a"
done

# A libtool wrapper finds the project's libraries through LD_LIBRARY_PATH;
# so must ldd of the real ELF behind it.
LD_LIBRARY_PATH=$(find "$bld" -path "$bld/tests/devdax/cache" -prune -o \
	-type d -name .libs -print | tr '\n' ':')${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH

# copy_bin FILE DEST: an ELF; its libraries are copied at the end, for
# all ELFs at once (one ldd run instead of one per program).
elfs=$root.elfs
: > "$elfs"
copy_bin() {
	mkdir -p "$root${2%/*}"
	rm -f "$root$2"
	cp -L "$1" "$root$2"
	echo "$1" >> "$elfs"
}

# copy_libs: the libraries ldd resolves for every ELF listed, and the
# loader.  Libraries from the build tree go where the guest's loader looks
# by default.
copy_libs() {
	tr '\n' '\0' < "$elfs" | xargs -0 -P 4 -n 40 ldd 2>/dev/null |
	awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u |
	while read -r lib; do
		[ -f "$lib" ] || continue
		case $lib in
		"$bld"/*) dst=/usr/lib/x86_64-linux-gnu/${lib##*/} ;;
		/usr/*) dst=$lib ;;
		*) dst=/usr$lib ;;
		esac
		[ -e "$root$dst" ] && continue
		mkdir -p "$root${dst%/*}"
		cp -L "$lib" "$root$dst"
	done
}

for b in ndctl daxctl fusermount3 mount.fuse3; do
	p=$(command -v $b) || continue
	copy_bin "$p" "$p"
done
# A Debian userland beside busybox, for shell tests written on a Debian
# host (realpath -m, setpriv, unshare, mount -t fuse.X, pgrep...): the
# guest's PATH has /usr/bin before busybox's /bin.  About 4 MB compressed.
userland="coreutils util-linux mount procps psmisc findutils grep sed diffutils mawk dash bash attr"
for b in $(dpkg -L $userland 2>/dev/null | grep -E '^(/usr)?/s?bin/[^/]+$') awk xxd; do
	case $b in /*) p=$b ;; *) p=$(command -v $b 2>/dev/null) || continue ;; esac
	[ -f "$p" ] || continue
	case $p in */rbash) continue ;; /bin/*|/sbin/*) p=/usr$p ;; esac
	copy_bin "$p" "$p"
done
# mount -t fuse.udaxfs runs /sbin/mount.fuse.udaxfs or /sbin/mount.fuse
ln -s mount.fuse3 "$root/usr/sbin/mount.fuse"
# The host's /bin is /usr/bin (merged /usr): tests that say /bin/X mean the
# real tool.  busybox keeps /bin/sh and what has no GNU twin here.
for p in "$root"/usr/bin/* "$root"/usr/sbin/*; do
	b=${p##*/}
	[ "$b" = sh ] && continue
	d=${p#"$root"}
	case $d in /usr/sbin/*) l=$root/sbin/$b ;; *) l=$root/bin/$b ;; esac
	rm -f "$l"
	ln -s "$d" "$l"
done
# /bin/sh is Debian's dash: busybox's sh runs its own applets before PATH
# (standalone shell), so scripts would never reach the GNU tools
if [ -x "$root/usr/bin/dash" ]; then
	rm -f "$root/bin/sh"
	ln -s /usr/bin/dash "$root/bin/sh"
fi
cp -L /lib64/ld-linux-x86-64.so.2 "$root/usr/lib64/"

# Kernel modules in dependency order.  --ignore-install: ndctl's modprobe.d
# has an "install libnvdimm ..." rule that would hide libnvdimm.ko.
: > "$root/modules.order"
for m in libnvdimm nd_pmem nd_btt nd_e820 nfit dax_pmem device_dax fuse; do
	modprobe -d "$modroot" -S "$kver" --ignore-install --show-depends "$m" 2>/dev/null |
		awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
	rel=${ko#"$modroot"/lib/modules/$kver/}
	rel=${rel#/lib/modules/$kver/}
	mkdir -p "$root/lib/modules/$kver/${rel%/*}"
	case $ko in
	*.xz) xz -dc "$ko" > "$root/lib/modules/$kver/${rel%.xz}"; rel=${rel%.xz} ;;
	*.zst) zstd -qdc "$ko" > "$root/lib/modules/$kver/${rel%.zst}"; rel=${rel%.zst} ;;
	*.gz) gzip -dc "$ko" > "$root/lib/modules/$kver/${rel%.gz}"; rel=${rel%.gz} ;;
	*) cp "$ko" "$root/lib/modules/$kver/$rel" ;;
	esac
	echo "/lib/modules/$kver/$rel" >> "$root/modules.order"
done
if ! grep -q nfit "$root/modules.order" && ! grep -qw nfit "$modroot/lib/modules/$kver/modules.builtin" 2>/dev/null; then
	say "kernel $kver has no nfit module: cannot see an NVDIMM"
	exit 77
fi

# The build tree's programs: ELF files and libtool wrappers (whose real ELF
# lives in .libs/).  Object files and libraries are not executable.
# Only what the guest runs: the top level (udaxfs, mkfs, fsck, udaxctl),
# src/tools, and the tests of tests/devdax, tests/fs and tests/dma (unit,
# crash and fuzz tests need no device).  Never a distcheck's tree.
(cd "$bld" && { find . -maxdepth 1 -type f -perm -u+x
	find src/tools tests/devdax tests/fs tests/dma -path tests/devdax/cache -prune -o \
		-path 'tests/devdax/run.*' -prune -o -path '*/.libs' -prune -o \
		-type f -perm -u+x -print 2>/dev/null; } |
	grep -v -e '\.so' -e '\.sh$' -e '/config\.' -e '^\./libtool$') |
while read -r rel; do
	rel=${rel#./}
	f=$bld/$rel
	case $(head -c 4 "$f" | od -An -c | tr -d ' ') in
	177ELF) real=$f ;;
	*)
		grep -q 'temporary wrapper script' "$f" 2>/dev/null || continue
		d=${f%/*}/.libs
		b=${f##*/}
		if [ -f "$d/$b" ]; then real=$d/$b
		elif [ -f "$d/lt-$b" ]; then real=$d/lt-$b
		else say "no real binary for the libtool wrapper $rel"; continue
		fi ;;
	esac
	copy_bin "$real" "/udax/build/$rel"
done
# the project's shared libraries themselves (dlopen'ed or LD_PRELOAD'ed too)
find "$bld" -path "$bld/tests/devdax/cache" -prune -o -path '*/.libs/*.so*' -print 2>/dev/null |
while read -r lib; do
	cp -L "$lib" "$root/usr/lib/x86_64-linux-gnu/${lib##*/}"
	echo "$lib" >> "$elfs"
done
copy_libs
rm -f "$elfs"

# the source tree's tests (shell tests read their data from top_srcdir)
(cd "$src" && find tests -type f \( -name '*.sh' -o -name '*.list' -o -name '*.txt' \
	-o -name '*.in' -o -name '*.exp' \) -print) |
while read -r rel; do
	mkdir -p "$root/udax/src/${rel%/*}"
	cp "$src/$rel" "$root/udax/src/$rel"
done

echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh" >> "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
echo "nogroup:x:65534:" >> "$root/etc/group"
ln -s /proc/self/mounts "$root/etc/mtab"
: > "$root/etc/fuse.conf"
cp "$src/tests/devdax/guest-init.sh" "$root/init"
chmod 755 "$root/init"

chmod 755 "$root"	# mktemp made it 0700: the guest's / must be searchable
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
say "$out: $(du -k "$out" | cut -f1) KiB, modules: $(wc -l < "$root/modules.order")," \
	"programs: $(find "$root/udax/build" -type f | wc -l)"
