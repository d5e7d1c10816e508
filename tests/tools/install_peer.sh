#!/bin/sh
# install_peer.sh - the installed udaxctl finds its benchmark peer.
#
# `make install DESTDIR=...` installs bench-passthrough_ll in pkglibexecdir;
# the staged udaxctl must find it there (relative to itself, since a DESTDIR
# install is not at the configured path) and measure the no-DMA truncate of
# passthrough_ll.  Bug fixed: the installed udaxctl said "passthrough_ll not
# measured: No such file or directory".  Negative control: with the peer
# removed from the staged tree the same run no longer measures the staged
# binary: it reports the peer as not measured, or (when an earlier install
# put one at the configured pkglibexecdir) names that other binary.
# Starts at rc=77 (skip) and switches to rc=1 once set up.
rc=77
top_builddir=${top_builddir:-.}
TAG=udaxfs-restart-install-$$
STAGE=/tmp/$TAG
trap 'rm -rf "$STAGE" /dev/shm/$TAG-*' EXIT

[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
command -v fusermount3 >/dev/null || { echo "SKIP: no fusermount3"; exit 77; }
if grep -q 'was not available at build time' "$top_builddir/src/tools/bench-passthrough_ll.c" 2>/dev/null; then
	echo "SKIP: libfuse3-dev's example passthrough_ll.c was not there at build time"
	exit 77
fi
make -C "$top_builddir" -s install DESTDIR="$STAGE" >"$STAGE.log" 2>&1 || {
	echo "FAIL: make install DESTDIR=$STAGE"; cat "$STAGE.log"; rm -f "$STAGE.log"; exit 1; }
rm -f "$STAGE.log"
rc=1
CTL=$(find "$STAGE" -path '*/bin/udaxctl' -type f | head -n 1)
PEER=$(find "$STAGE" -path '*/libexec/*/bench-passthrough_ll' -type f | head -n 1)
LIBDIR=$(dirname "$(find "$STAGE" -name 'libudax.so*' | head -n 1)")
[ -x "$CTL" ] || { echo "FAIL: no udaxctl in $STAGE"; exit 1; }
[ -x "$PEER" ] || { echo "FAIL: bench-passthrough_ll is not installed in pkglibexecdir"; exit 1; }

run_bench() {	# a tiny bench on its own mount; output in $1
	env -u UDAX_PASSTHROUGH_LL LD_LIBRARY_PATH="$LIBDIR" PATH=/usr/bin:/bin \
		UDAX_DAEMON="$top_builddir/udaxfs" UDAX_MKFS="$top_builddir/mkfs.udaxfs" \
		"$CTL" bench truncate-dma --iterations 2 --nodma-iterations 3 --futex-rounds 10 \
		--device-size 64M --file-size 1M --source-dir /dev/shm >"$1" 2>&1
}

OUT=/dev/shm/$TAG-out
run_bench "$OUT"
if grep -q 'passthrough_ll (tmpfs, -o writeback) no-DMA ftruncate: p50' "$OUT" &&
   grep -qxF "passthrough_ll binary: $PEER" "$OUT" &&
   ! grep -q 'passthrough_ll not measured' "$OUT"; then
	echo "ok: the installed udaxctl measured its peer $PEER"
else
	echo "FAIL: the installed udaxctl did not measure passthrough_ll:"; cat "$OUT"; exit 1
fi
# negative control: without the installed peer it says so
rm -f "$PEER"
run_bench "$OUT"
if grep -q 'passthrough_ll not measured' "$OUT"; then
	echo "ok (control): without it, the same run reports the peer as not measured"
elif grep -q '^passthrough_ll binary: ' "$OUT" && ! grep -qxF "passthrough_ll binary: $PEER" "$OUT"; then
	echo "ok (control): without it, the run measured another install's peer:" \
		"$(grep '^passthrough_ll binary: ' "$OUT")"
else
	echo "FAIL (control): the run did not notice the missing peer:"; cat "$OUT"; exit 1
fi
exit 0
