#!/bin/sh
# install: what "make install DESTDIR=..." puts down besides the programs.
#   - udax.pc names libpmem2 and liburing in Requires.private: a shared
#     link gets -ludax only, a static one (--static) gets them all, and a
#     program built with its flags links against the staged library;
#   - the systemd unit, when configured, names the installed daemon and
#     passes systemd-analyze verify (an unknown or misspelt key fails);
#   - every installed man page's .TH line carries "udaxfs VERSION" and
#     still lints clean;
#   - make uninstall takes all of it away again.
set -u
B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
MAKE=${UDAX_MAKE:-make}
V=${UDAX_VERSION:?UDAX_VERSION is set by make check}
libdir=${UDAX_LIBDIR:?}
sbindir=${UDAX_SBINDIR:?}
mandir=${UDAX_MANDIR:?}
unitdir=${UDAX_SYSTEMDUNITDIR-}
cc=${UDAX_CC:-cc}
rc=0
fail() { echo "FAIL: $*"; rc=1; }
tmp=$(mktemp -d /tmp/udax-install.XXXXXX) || exit 99
D=$tmp/root
trap 'rm -rf "$tmp"' EXIT

if ! $MAKE -C "$B" install DESTDIR="$D" > "$tmp/install.log" 2>&1; then
	tail -20 "$tmp/install.log"; echo "FAIL: make install DESTDIR=$D"; exit 1
fi

# ---- udax.pc ----
pc=$D$libdir/pkgconfig/udax.pc
if [ ! -f "$pc" ]; then
	fail "udax.pc not installed in $libdir/pkgconfig"
elif ! command -v pkg-config >/dev/null 2>&1; then
	echo "pkg-config is not installed: udax.pc checks skipped"
else
	export PKG_CONFIG_PATH="$D$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
	req=$(pkg-config --print-requires-private udax) || fail "pkg-config cannot read udax.pc"
	for r in libpmem2 liburing; do
		echo "$req" | grep -q "^$r" || fail "Requires.private lacks $r: $req"
	done
	shared=$(pkg-config --libs udax)
	static=$(pkg-config --static --libs udax)
	echo "pkg-config --libs udax: $shared"
	echo "pkg-config --static --libs udax: $static"
	for l in -ludax -lpmem2 -luring -lpthread; do
		echo " $static " | grep -q -- " $l " || fail "--static --libs lacks $l"
	done
	for l in -lpmem2 -luring; do
		echo " $shared " | grep -q -- " $l " && fail "--libs (shared) overlinks $l"
	done
	printf '#include <udax/udax.h>\nint main(void) { return udax_last_error() == 0; }\n' > "$tmp/t.c"
	if PKG_CONFIG_SYSROOT_DIR=$D $cc "$tmp/t.c" -o "$tmp/t" \
		$(PKG_CONFIG_SYSROOT_DIR=$D pkg-config --cflags --libs udax) 2> "$tmp/cc.err"; then
		echo "ok: a program links with pkg-config's flags"
	else
		fail "linking with pkg-config --cflags --libs udax: $(cat "$tmp/cc.err")"
	fi
fi

# ---- the systemd unit ----
if [ -n "$unitdir" ]; then
	u=$D$unitdir/udaxfs@.service
	if [ ! -f "$u" ]; then
		fail "udaxfs@.service not installed in $unitdir"
	else
		grep -q "^ExecStart=$sbindir/udaxfs " "$u" || fail "the unit does not run $sbindir/udaxfs: $(grep ^ExecStart= "$u")"
		grep -q '@[a-z_]*@' "$u" && fail "the unit has an unsubstituted @variable@"
		if command -v systemd-analyze >/dev/null 2>&1; then
			# (the daemon is only staged under DESTDIR: that one complaint is expected)
			out=$(systemd-analyze verify --man=no "$u" 2>&1 | grep -v "is not executable")
			[ -z "$out" ] || fail "systemd-analyze verify: $out"
		fi
	fi
else
	echo "no systemd unit directory configured: unit not checked"
fi

# ---- man pages ----
n=0
for f in "$D$mandir"/man*/*; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	grep -q "^\.TH .*\"udaxfs $V\"" "$f" || fail "$f: .TH does not say udaxfs $V: $(grep '^\.TH' "$f")"
	if command -v groff >/dev/null 2>&1; then
		out=$(groff -ww -z -man -Tutf8 "$f" 2>&1)
		[ -z "$out" ] || fail "$f does not lint: $out"
	fi
done
[ $n -gt 0 ] || fail "no man pages installed"
echo "man pages installed with version $V: $n"

# ---- uninstall ----
$MAKE -C "$B" uninstall DESTDIR="$D" > "$tmp/uninstall.log" 2>&1 || fail "make uninstall"
left=$(find "$D" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
[ $rc = 0 ] && echo "install: all passed"
exit $rc
