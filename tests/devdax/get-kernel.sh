#!/bin/sh
# get-kernel.sh - find or fetch a guest kernel for the devdax harness.
#
# Usage: get-kernel.sh CACHE_DIR
#
# Prints three lines on success (exit 0), for the caller to eval:
#   KVER=6.12.x+deb12-amd64
#   KERNEL=/path/to/vmlinuz-KVER
#   MODROOT=/path/to/root    (modules live in MODROOT/lib/modules/KVER)
# Exit 77 (with the reason on stderr) when no usable kernel can be had.
#
# Order of preference:
#  1. UDAX_DEVDAX_KERNEL=/path/vmlinuz-KVER (+ UDAX_DEVDAX_MODROOT, default /);
#  2. a kernel already unpacked in CACHE_DIR/kernel/;
#  3. Debian's <codename>-backports linux-image-amd64 (6.12 on bookworm),
#     downloaded with a private apt configuration that uses the machine's own
#     configured mirror and never touches /etc/apt, unpacked with dpkg-deb -x;
#     then <codename> itself (trixie's own kernel is already 6.12);
#  4. an installed /boot/vmlinuz-* with its /lib/modules tree.
# io_uring fixed buffers over a devdax mapping need >= 6.5: older kernels
# boot, and the guest skips the pin tests with a reason.
# UDAX_DEVDAX_NOFETCH=1 forbids the download (step 3).
set -u

cache=${1:?Usage: get-kernel.sh CACHE_DIR}
mkdir -p "$cache" || exit 77
cache=$(cd "$cache" && pwd)

say() { echo "get-kernel: $*" >&2; }

emit() {	# KVER KERNEL MODROOT
	echo "KVER=$1"
	echo "KERNEL=$2"
	echo "MODROOT=$3"
	exit 0
}

# depmod -b needs a modules.dep it can write: run it once per unpacked tree.
prepare_tree() {	# ROOT KVER
	[ -f "$1/lib/modules/$2/modules.dep.udax-stamp" ] && return 0
	depmod -b "$1" "$2" || return 1
	touch "$1/lib/modules/$2/modules.dep.udax-stamp"
}

# 1. explicit kernel
if [ -n "${UDAX_DEVDAX_KERNEL:-}" ]; then
	k=$UDAX_DEVDAX_KERNEL
	root=${UDAX_DEVDAX_MODROOT:-/}
	kver=${k##*/vmlinuz-}
	if [ ! -r "$k" ] || [ ! -d "$root/lib/modules/$kver" ]; then
		say "UDAX_DEVDAX_KERNEL=$k: unreadable, or no $root/lib/modules/$kver"
		exit 77
	fi
	# an unpacked package has no modules.dep yet
	if [ ! -f "$root/lib/modules/$kver/modules.dep" ] && ! prepare_tree "$root" "$kver"; then
		say "depmod -b $root $kver failed"
		exit 77
	fi
	emit "$kver" "$k" "$root"
fi

# 2. already in the cache
for k in $(ls -1 "$cache"/kernel/root/boot/vmlinuz-* 2>/dev/null | sort -V -r); do
	kver=${k##*/vmlinuz-}
	if [ -d "$cache/kernel/root/lib/modules/$kver" ] &&
	   prepare_tree "$cache/kernel/root" "$kver"; then
		emit "$kver" "$k" "$cache/kernel/root"
	fi
done

# 3. download with a private apt configuration
mirror_uri() {
	# The machine's own Debian mirror: deb822 first, then one-line format.
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		     /Suites:[^\n]*(bookworm|trixie|sid|stable)( |\n|$)/ &&
		     !/debian-security/ {
			for (i = 1; i <= NF; i++)
				if ($i ~ /^URIs:/) { sub(/^URIs: */, "", $i);
						     split($i, u, " "); print u[1]; exit }
		     }' "$f"
	done | head -n1 | grep . && return 0
	sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\)[[:space:]].*/\2/p' \
		/etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 | grep .
}

fetch() {
	command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 ||
		{ say "no apt-get/dpkg-deb"; return 1; }
	command -v depmod >/dev/null 2>&1 || { say "no depmod (kmod)"; return 1; }
	codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || { say "cannot tell the Debian codename"; return 1; }
	uri=$(mirror_uri) || { say "no Debian mirror configured in /etc/apt"; return 1; }
	apt=$cache/apt
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$cache/kernel" || return 1
	for suite in "$codename-backports" "$codename"; do
		echo "deb $uri $suite main" > "$apt/sources.list"
		set -- -o Dir::Etc::sourcelist="$apt/sources.list" \
			-o Dir::Etc::sourceparts=- \
			-o Dir::State::Lists="$apt/lists" \
			-o Dir::Cache="$apt/cache" \
			-o Debug::NoLocking=1 -q
		say "apt-get update ($uri $suite)"
		apt-get "$@" update >&2 || continue
		pkg=$(apt-cache "$@" depends linux-image-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
		[ -n "$pkg" ] || { say "no linux-image-amd64 in $suite"; continue; }
		kver=${pkg#linux-image-}
		say "downloading $pkg"
		rm -f "$cache/kernel/"*.deb
		(cd "$cache/kernel" && apt-get "$@" download "$pkg" >&2) || continue
		rm -rf "$cache/kernel/root.tmp"
		dpkg-deb -x "$cache/kernel/${pkg}"_*.deb "$cache/kernel/root.tmp" || continue
		rm -rf "$cache/kernel/root"
		mv "$cache/kernel/root.tmp" "$cache/kernel/root"
		rm -f "$cache/kernel/"*.deb	# 100 MB we no longer need
		prepare_tree "$cache/kernel/root" "$kver" || continue
		emit "$kver" "$cache/kernel/root/boot/vmlinuz-$kver" "$cache/kernel/root"
	done
	return 1
}

if [ "${UDAX_DEVDAX_NOFETCH:-0}" != 1 ]; then
	# one fetch at a time per cache (parallel make check)
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$cache/.fetch.lock" && flock 9
		# another run may have fetched it while we waited
		for k in $(ls -1 "$cache"/kernel/root/boot/vmlinuz-* 2>/dev/null | sort -V -r); do
			kver=${k##*/vmlinuz-}
			prepare_tree "$cache/kernel/root" "$kver" &&
				emit "$kver" "$k" "$cache/kernel/root"
		done
	fi
	fetch
fi

# 4. an installed kernel
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
	kver=${k##*/vmlinuz-}
	if [ -r "$k" ] && [ -d "/lib/modules/$kver/kernel" ]; then
		say "using the installed kernel $kver"
		emit "$kver" "$k" /
	fi
done
if [ "${UDAX_DEVDAX_NOFETCH:-0}" = 1 ]; then
	say "no guest kernel: none in $cache, none in /boot, and UDAX_DEVDAX_NOFETCH=1"
else
	say "no guest kernel: download from the Debian mirror failed and /boot has none readable"
fi
exit 77
