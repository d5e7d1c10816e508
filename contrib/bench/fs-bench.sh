#!/bin/bash
# fs-bench.sh - udaxfs beside libfuse's passthrough_ll over tmpfs, and
# beside tmpfs itself, in one run.  Like is compared with like: each FUSE
# file system runs twice, write-through (both defaults) and with the
# kernel's write-back cache (passthrough_ll -o writeback, udaxfs -o
# writeback_cache):
#   fio: 4 KiB random read and random write (psync), 1 MiB sequential read
#        and write, on one file of 1 GiB, time-based;
#   metaloop: create+write+close, stat and unlink of 20k files.
# udaxfs runs a second time in each pair with -o io_uring (FUSE over
# io_uring; columns "uring"), when the kernel has it: as root the fuse
# module parameter enable_uring is set for the run and restored after
# (the script says so).
# Prints one table with the ratios udaxfs / passthrough_ll, udaxfs over
# io_uring / passthrough_ll and udaxfs over io_uring / udaxfs per row for
# each pair (higher is better for udaxfs).  Not part of make check.
# The column "ud+shim" is the write-through udaxfs mount with an unmodified
# fio under LD_PRELOAD=libudax-preload.so, which serves pread/pwrite from
# direct layouts; a second table sets it against fio's mmap engine on the
# same file under the shim, tmpfs (psync and mmap), passthrough_ll and the
# raw memcpy bandwidth of the device mapping (bench_direct), with the
# targets.  fio's io_uring engine rows have a ud+shim cell too, but it
# measures FUSE: io_uring's reads and writes are SQEs the kernel executes
# (io_uring_enter), no C library call the shim could intercept.
# The 1 MiB rows are run twice: time-based (mostly the steady state: every
# page of the file mapped) and "first pass" (one pass over the file by a
# fresh process: every page of the device mapping faulted in by this
# process, as a program that reads a file once pays).  The yardstick is
# bench_direct on the same image: the first pass over a fresh direct
# mapping, and memcpy into / out of / non-temporal stores into the raw
# device pages, all faulted in.
# Device pages: the udaxfs images live on a tmpfs of our own mounted with
# huge=within_size, and udaxfs runs with -o emul_align=2M, so a mapping
# faults 2 MiB at a time as on a real device-DAX of alignment 2M (the
# default on most); -4 puts them on /dev/shm (4 KiB faults) instead.
# libfuse's passthrough_hp (C++) gets a column when it can be had: the
# binary in UDAX_BENCH_PASSTHROUGH_HP, else built from passthrough_hp.cc
# and cxxopts.hpp of the installed libfuse3-dev's own release.  Debian's
# libfuse3-dev ships only the C examples, so the two files are taken from
# Debian's source package of that exact version (apt-get source, with a
# private source list: the system's apt configuration is not touched;
# kept in ~/.cache/udaxfs-bench).  Without them the script says why and
# leaves the column out.
#
# Usage: fs-bench.sh [-t SECONDS] [-s FILESIZE] [-n FILES] [-B BUILDDIR] [-q]
#   -t  seconds per fio job (default 10)      -q  quick: -t 3 -s 256M -n 5000
#   -s  fio file size (default 1G)            -n  files in the metadata loop (20000)
#   -B  where udaxfs and mkfs.udaxfs were built (default: this tree's build,
#       else PATH)
#   -j  also write the table as JSON to this file
#   -r  rounds (default 1): every job and the metadata loop run this many
#       times, round by round, and the table shows each cell's median
#   -P  libudax-preload.so to use (default: BUILDDIR/.libs, else the
#       installed one); "none" drops the shim column
#   -4  udaxfs images on /dev/shm (4 KiB pages) instead of a huge-page tmpfs
#   -c  only these file systems (comma list of column keys: tmpfs,
#       passthrough_ll, passthrough_hp, udaxfs, udaxfs_uring,
#       passthrough_ll_wb, udaxfs_wb, udaxfs_wb_uring, ud+shim)
# Environment: UDAX_BENCH_OPTS adds mount options to both udaxfs mounts,
# UDAX_BENCH_PEER_OPTS to both passthrough_ll mounts.  passthrough_ll as
# shipped checks no permissions and has no xattrs, so the kernel skips
# work udaxfs needs on every create and unlink (a GETATTR of the directory
# for default_permissions, a GETXATTR of security.capability on a new
# file's first write); UDAX_BENCH_PEER_OPTS=default_permissions,xattr
# gives the peer the same duties.  UDAX_BENCH_PASSTHROUGH_HP: a
# passthrough_hp binary (the column is left out without one, and why is
# printed).
# Needs: root, fio, a C compiler, libfuse3-dev (its examples), /dev/fuse.
set -euo pipefail

secs=10 size=1G nfiles=20000 build="" json="" rounds=1 preload="" huge=1 only=""
while getopts "t:s:n:B:j:r:P:c:4qh" opt; do
	case $opt in
	t) secs=$OPTARG;;
	s) size=$OPTARG;;
	n) nfiles=$OPTARG;;
	B) build=$OPTARG;;
	j) json=$OPTARG;;
	r) rounds=$OPTARG;;
	P) preload=$OPTARG;;
	4) huge=0;;
	c) only=",$OPTARG,";;
	q) secs=3 size=256M nfiles=5000;;
	*) sed -n '2,65p' "$0"; exit 2;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "fs-bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (mounts with allow_other)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
command -v fio >/dev/null || die "fio is not installed (apt-get install fio)"
cc=${CC:-cc}
command -v "$cc" >/dev/null || die "no C compiler ($cc)"

if [ -z "$build" ]; then
	for d in "$here/../.." "$here/../../build" "$PWD"; do
		[ -x "$d/udaxfs" ] && [ -x "$d/mkfs.udaxfs" ] && { build=$(cd "$d" && pwd); break; }
	done
fi
if [ -n "$build" ]; then
	UDAXFS=$build/udaxfs MKFS=$build/mkfs.udaxfs
else
	UDAXFS=$(command -v udaxfs) || die "udaxfs not found: give -B BUILDDIR"
	MKFS=$(command -v mkfs.udaxfs) || die "mkfs.udaxfs not found"
fi

if [ -z "$preload" ]; then
	for p in ${build:+"$build/.libs/libudax-preload.so"} /usr/local/lib/libudax-preload.so \
		 /usr/lib/libudax-preload.so; do
		[ -f "$p" ] && { preload=$p; break; }
	done
	[ -n "$preload" ] || preload=none
fi
[ "$preload" = none ] || [ -f "$preload" ] || die "$preload: no such file"
bench_direct=${build:+$build/tests/dma/bench_direct}
[ -n "$bench_direct" ] && [ -x "$bench_direct" ] || bench_direct=""

ex=/usr/share/doc/libfuse3-dev/examples
[ -e "$ex/passthrough_ll.c" ] || [ -e "$ex/passthrough_ll.c.gz" ] ||
	die "$ex/passthrough_ll.c missing (apt-get install libfuse3-dev)"

W=$(mktemp -d /dev/shm/udax-fs-bench.XXXXXX)
PT=$W/pt UD=$W/ud PTW=$W/ptwb UDW=$W/udwb TM=$W/tmpfs UR=$W/ur URW=$W/urwb HP=$W/hp
IMG=$W		# where the udaxfs images live (a huge-page tmpfs unless -4)
URING_PARAM=/sys/module/fuse/parameters/enable_uring URING_SAVED=""
cleanup() {
	for m in "$PT" "$UD" "$PTW" "$UDW" "$UR" "$URW" "$HP"; do
		if grep -q " $m " /proc/self/mounts; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true
		fi
	done
	sleep 0.3
	if grep -q " $W/huge " /proc/self/mounts; then
		umount "$W/huge" 2>/dev/null || umount -l "$W/huge" || true
	fi
	rm -rf "$W"
	if [ -n "$URING_SAVED" ]; then
		echo "$URING_SAVED" >"$URING_PARAM" && echo "fs-bench: restored $URING_PARAM=$URING_SAVED" >&2
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- build the peer and the metadata loop ----
mkdir -p "$W/src"
for f in passthrough_ll.c passthrough_helpers.h; do
	if [ -e "$ex/$f" ]; then cp "$ex/$f" "$W/src/"; else zcat "$ex/$f.gz" >"$W/src/$f"; fi
done
# Outside libfuse's tree these must be given, or passthrough_ll silently
# drops fallocate, xattrs, utimensat and copy_file_range.
"$cc" -O2 -w -DHAVE_FALLOCATE -DHAVE_SETXATTR -DHAVE_UTIMENSAT -DHAVE_COPY_FILE_RANGE \
	-DHAVE_POSIX_FALLOCATE -I"$W/src" -o "$W/passthrough_ll" "$W/src/passthrough_ll.c" \
	$(pkg-config --cflags --libs fuse3) -lpthread || die "cannot build passthrough_ll"
# passthrough_hp: C++, not in Debian's libfuse3-dev (which ships the C
# examples only): from Debian's source package of the installed version.
# Prints the directory holding passthrough_hp.cc and cxxopts.hpp.
fetch_hp_src() {
	local ver cache d list
	ver=$(dpkg-query -W -f='${Version}' libfuse3-dev 2>/dev/null) || return 1
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/udaxfs-bench/fuse3-$ver
	d=$(ls -d "$cache"/fuse-*/example 2>/dev/null | head -1)
	if [ -z "$d" ]; then
		mkdir -p "$cache/lists/partial" || return 1
		list=$cache/sources.list
		sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\(.*\)/deb-src \1\2/p' /etc/apt/sources.list \
			2>/dev/null >"$list" || true
		[ -s "$list" ] || echo "deb-src http://deb.debian.org/debian $(. /etc/os-release; echo "$VERSION_CODENAME") main" >"$list"
		local apt=(apt-get -q -o Dir::Etc::SourceList="$list" -o Dir::Etc::SourceParts=/dev/null
			   -o Dir::State::Lists="$cache/lists")
		echo "fs-bench: fetching Debian's source of fuse3 $ver for passthrough_hp" >&2
		(cd "$cache" && "${apt[@]}" update && "${apt[@]}" source --download-only "fuse3=$ver") \
			>"$W/hp-fetch.log" 2>&1 || return 1
		local orig
		orig=$(ls "$cache"/fuse3_*.orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -1)
		[ -n "$orig" ] || { echo "no fuse3 orig tarball downloaded" >>"$W/hp-fetch.log"; return 1; }
		tar xf "$orig" -C "$cache" --wildcards '*/example/passthrough_hp.cc' \
			'*/example/cxxopts.hpp' >>"$W/hp-fetch.log" 2>&1 || return 1
		d=$(ls -d "$cache"/fuse-*/example 2>/dev/null | head -1)
	fi
	[ -n "$d" ] && [ -e "$d/passthrough_hp.cc" ] && [ -e "$d/cxxopts.hpp" ] && echo "$d"
}
hp=${UDAX_BENCH_PASSTHROUGH_HP:-} hp_why="" hp_ex=""
if [ -n "$hp" ]; then
	[ -x "$hp" ] || die "UDAX_BENCH_PASSTHROUGH_HP=$hp is not an executable"
else
	hp_ex=$ex
	[ -e "$hp_ex/passthrough_hp.cc" ] && [ -e "$hp_ex/cxxopts.hpp" ] || hp_ex=$(fetch_hp_src) || hp_ex=""
fi
if [ -n "$hp" ] || [ -n "$hp_why" ]; then
	:
elif [ -n "$hp_ex" ]; then
	cp "$hp_ex/passthrough_hp.cc" "$hp_ex/cxxopts.hpp" "$W/src/"
	if ${CXX:-c++} -O2 -w -std=c++17 -DHAVE_SETXATTR -DHAVE_UTIMENSAT -I"$W/src" \
		-o "$W/passthrough_hp" "$W/src/passthrough_hp.cc" \
		$(pkg-config --cflags --libs fuse3) -lpthread 2>"$W/hp.log"; then
		hp=$W/passthrough_hp
	else
		hp_why="$hp_ex/passthrough_hp.cc does not build against libfuse3 $(pkg-config --modversion fuse3): $(head -1 "$W/hp.log")"
	fi
else
	hp_why="libfuse3-dev $(dpkg-query -W -f='${Version}' libfuse3-dev 2>/dev/null || pkg-config --modversion fuse3) ships no passthrough_hp.cc/cxxopts.hpp in $ex (only the C examples) and Debian's source package fuse3 could not be fetched ($(tail -1 "$W/hp-fetch.log" 2>/dev/null)); give a binary built from the same libfuse release in UDAX_BENCH_PASSTHROUGH_HP"
fi
[ -z "$hp_why" ] || echo "fs-bench: no passthrough_hp column: $hp_why" >&2
"$cc" -O2 -Wall -o "$W/metaloop" "$here/metaloop.c" || die "cannot build metaloop"

# ---- the three file systems ----
to_bytes() { numfmt --from=iec "$1"; }
img_bytes=$(( $(to_bytes "$size") * 2 + 1024 * 1024 * 1024 ))
img_bytes=$(( (img_bytes + (2 << 20) - 1) / (2 << 20) * (2 << 20) ))	# emul_align=2M
pages="4 KiB pages (/dev/shm)"
if [ $huge = 1 ]; then
	mkdir -p "$W/huge"
	if mount -t tmpfs -o "huge=within_size,size=$(( img_bytes * 4 / 1048576 + 64 ))m" tmpfs "$W/huge" 2>/dev/null &&
	   grep -q " $W/huge .*huge=within_size" /proc/self/mounts; then
		IMG=$W/huge pages="2 MiB pages (tmpfs huge=within_size, udaxfs -o emul_align=2M)"
		UDAX_BENCH_OPTS=emul_align=2M${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
	else
		echo "fs-bench: cannot mount a tmpfs with huge=within_size (no THP in this kernel?): images on /dev/shm" >&2
	fi
fi
echo "fs-bench: udaxfs device pages: $pages" >&2
mkdir -p "$PT" "$UD" "$PTW" "$UDW" "$TM" "$W/ptsrc" "$W/ptwbsrc" "$HP" "$W/hpsrc"
"$MKFS" -s "$img_bytes" "$IMG/udax.img" >/dev/null
"$MKFS" -s "$img_bytes" "$IMG/udaxwb.img" >/dev/null
"$UDAXFS" "$IMG/udax.img" "$UD" -o allow_other${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
"$UDAXFS" "$IMG/udaxwb.img" "$UDW" -o allow_other,writeback_cache${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
# udaxfs over io_uring, when this kernel has it
uring=0
if [ -e "$URING_PARAM" ]; then
	if [ "$(cat "$URING_PARAM")" != Y ]; then
		URING_SAVED=$(cat "$URING_PARAM")
		echo "fs-bench: setting $URING_PARAM=Y for the io_uring columns (restored at exit)" >&2
		echo Y >"$URING_PARAM"
	fi
	mkdir -p "$UR" "$URW"
	"$MKFS" -s "$img_bytes" "$IMG/ur.img" >/dev/null
	"$MKFS" -s "$img_bytes" "$IMG/urwb.img" >/dev/null
	"$UDAXFS" "$IMG/ur.img" "$UR" -o allow_other,io_uring${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
	"$UDAXFS" "$IMG/urwb.img" "$URW" \
		-o allow_other,writeback_cache,io_uring${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
	uring=1
else
	echo "fs-bench: no FUSE over io_uring in this kernel ($URING_PARAM): no uring columns" >&2
fi
peer=${UDAX_BENCH_PEER_OPTS:+,$UDAX_BENCH_PEER_OPTS}
"$W/passthrough_ll" -o source="$W/ptsrc",allow_other$peer "$PT"
"$W/passthrough_ll" -o writeback,source="$W/ptwbsrc",allow_other$peer "$PTW"
for m in "$PT" "$UD" "$PTW" "$UDW"; do
	grep -q " $m " /proc/self/mounts || die "$m did not mount"
done
if [ -n "$hp" ]; then
	# its defaults (kernel cache on); it may stay in the foreground: wait for the mount
	# cxxopts options only (no -o); as root it needs no allow_other
	"$hp" "$W/hpsrc" "$HP" >"$W/hp.out" 2>&1 &
	for _ in $(seq 100); do grep -q " $HP " /proc/self/mounts && break; sleep 0.1; done
	grep -q " $HP " /proc/self/mounts || die "passthrough_hp did not mount: $(head -3 "$W/hp.out")"
fi
[ $uring = 0 ] || for m in "$UR" "$URW"; do
	grep -q " $m " /proc/self/mounts || die "$m did not mount"
done

declare -A R	# R[fs,row] = number
rows=("randread 4k psync (IOPS)" "randwrite 4k psync (IOPS)"
      "seqread 1M (MiB/s)" "seqwrite 1M (MiB/s)"
      "create+write+close (ops/s)" "stat (ops/s)" "unlink (ops/s)"
      "randread 4k io_uring (IOPS)" "randwrite 4k io_uring (IOPS)"
      "seqread 1M first pass (MiB/s)" "seqwrite 1M first pass (MiB/s)")

# fio_job FS DIR NAME RW BS [ENGINE [once]] -> value (IOPS or MiB/s); ud+shim runs under
# the shim; "once": one pass over the file, not time-based
fio_job() {
	local fs=$1 dir=$2 row=$3 rw=$4 bs=$5 engine=${6:-psync} out pre="" tb
	case $fs in ud+shim*) pre=$preload;; esac
	tb=(--time_based --runtime="$secs" --ramp_time=1)
	[ "${7:-}" != once ] || tb=()
	out=$(LD_PRELOAD=$pre fio --name=b --filename="$dir/bench.dat" --size="$size" --rw="$rw" \
		--bs="$bs" --ioengine="$engine" "${tb[@]}" --minimal 2>/dev/null) ||
		die "fio $rw ($engine) on $fs failed"
	# terse v3: field 7/8 = read KiB/s / IOPS, 48/49 = write KiB/s / IOPS
	local v
	case $rw in
	randread) v=$(echo "$out" | cut -d';' -f8);;
	randwrite) v=$(echo "$out" | cut -d';' -f49);;
	read) v=$(echo "$out" | cut -d';' -f7 | awk '{ printf "%.0f", $1 / 1024 }');;
	write) v=$(echo "$out" | cut -d';' -f48 | awk '{ printf "%.0f", $1 / 1024 }');;
	esac
	R[$fs,$row]="${R[$fs,$row]:-} $v"
}

# median of a list of numbers
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END {
	if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
	else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Row by row (each job on the five file systems back to back), so that
# a change in machine load hits all columns of a row alike.
declare -A DIR=([tmpfs]=$TM [passthrough_ll]=$PT [udaxfs]=$UD [passthrough_ll_wb]=$PTW
		[udaxfs_wb]=$UDW [udaxfs_uring]=$UR [udaxfs_wb_uring]=$URW [ud+shim]=$UD
		[passthrough_hp]=$HP)
fss=(tmpfs passthrough_ll)
[ -z "$hp" ] || fss+=(passthrough_hp)
fss+=(udaxfs)
[ $uring = 0 ] || fss+=(udaxfs_uring)
fss+=(passthrough_ll_wb udaxfs_wb)
[ $uring = 0 ] || fss+=(udaxfs_wb_uring)
iofss=("${fss[@]}")
[ "$preload" = none ] || iofss+=(ud+shim)	# the same file as udaxfs, under the shim
if [ -n "$only" ]; then
	keep() { local out=() x; for x in "$@"; do [[ $only == *,$x,* ]] && out+=("$x"); done; echo "${out[@]}"; }
	read -ra fss <<<"$(keep "${fss[@]}")"
	read -ra iofss <<<"$(keep "${iofss[@]}")"
	if [[ $only == *,ud+shim,* ]] && ! [[ $only == *,udaxfs,* ]]; then
		fss+=(udaxfs)	# lays out the shim's file
	fi
	[ ${#iofss[@]} -gt 0 ] || die "-c $only: no such file system"
fi
for fs in "${fss[@]}"; do
	echo "== laying out $size on $fs" >&2
	fio --name=layout --filename="${DIR[$fs]}/bench.dat" --size="$size" --rw=write --bs=1M \
		--ioengine=psync --minimal >/dev/null 2>&1 || die "fio layout on $fs failed"
done
jobs=("${rows[10]}|write|1M|psync|once" "${rows[9]}|read|1M|psync|once"
      "${rows[3]}|write|1M" "${rows[2]}|read|1M" "${rows[1]}|randwrite|4k" "${rows[0]}|randread|4k"
      "${rows[8]}|randwrite|4k|io_uring" "${rows[7]}|randread|4k|io_uring")
mrows=("randread 4k mmap (IOPS)" "randwrite 4k mmap (IOPS)" "seqread 1M mmap (MiB/s)"
       "seqwrite 1M mmap (MiB/s)")
mfss=(tmpfs)
[ "$preload" = none ] || mfss+=(ud+shim)
# yardstick: the raw bandwidth of the device mapping (bench_direct), run
# between the 1 MiB rows of each round so that it sees the same load
yardstick() {
	if [ -n "$bench_direct" ] && [[ " ${iofss[*]} " == *" ud+shim "* ]]; then
		echo "== round $rd/$rounds: raw memcpy bandwidth (bench_direct)" >&2
		# "yardstick MiB/s: first-write A first-read B write C read D ntwrite E"
		# as large as fio's file, so that both miss or hit the CPU's caches alike
		ys=$("$bench_direct" $(( $(to_bytes "$size") >> 20 )) "$UD/bench_direct.dat" \
			"$IMG/udax.img" 2>/dev/null |
			sed -n 's/.*yardstick MiB\/s: //p' | head -1)
		rm -f "$UD/bench_direct.dat"
		set -- $ys
		while [ $# -ge 2 ]; do
			R[raw,$1]="${R[raw,$1]:-} $2"
			shift 2
		done
	fi
}
for ((rd = 1; rd <= rounds; rd++)); do
	for j in "${jobs[@]}"; do
		IFS='|' read -r row rw bs engine once <<<"$j"
		for fs in "${iofss[@]}"; do
			echo "== round $rd/$rounds: $row on $fs" >&2
			fio_job "$fs" "${DIR[$fs]}" "$row" "$rw" "$bs" "${engine:-psync}" "$once"
		done
		[ "$row" != "${rows[2]}" ] || yardstick
	done
	# fio's mmap engine: memory speed through a mapping, the yardstick of the shim
	# (its 1 MiB rows: the same harness's ceiling, with no flush at all)
	for j in "${mrows[0]}|randread|4k" "${mrows[1]}|randwrite|4k" "${mrows[2]}|read|1M" \
		 "${mrows[3]}|write|1M"; do
		IFS='|' read -r row rw bs <<<"$j"
		for fs in "${mfss[@]}"; do
			[[ " ${iofss[*]} " == *" $fs "* ]] || continue
			echo "== round $rd/$rounds: $row on $fs" >&2
			fio_job "$fs" "${DIR[$fs]}" "$row" "$rw" "$bs" mmap
		done
	done
done
# The metadata loop runs in rounds of at most 5000 files: passthrough_ll
# holds one descriptor per inode the kernel knows, and RLIMIT_NOFILE may be
# capped (20000 here), so 20000 live files at once would fail there.
round=$(( nfiles < 5000 ? nfiles : 5000 ))
for fs in "${fss[@]}"; do
	rm -f "${DIR[$fs]}/bench.dat"
done
for ((rd = 1; rd <= rounds; rd++)); do
for fs in "${fss[@]}"; do
	echo "== round $rd/$rounds: metadata loop on $fs" >&2
	declare -A N=() T=()
	done_files=0 r=0
	while [ $done_files -lt "$nfiles" ]; do
		n=$(( nfiles - done_files < round ? nfiles - done_files : round ))
		mkdir -p "${DIR[$fs]}/meta$r"
		while read -r phase cnt t ops; do
			N[$phase]=$(( ${N[$phase]:-0} + cnt ))
			T[$phase]=$(awk -v a="${T[$phase]:-0}" -v b="$t" 'BEGIN { print a + b }')
		done < <("$W/metaloop" "${DIR[$fs]}/meta$r" "$n" || echo "failed 0 0 0")
		rmdir "${DIR[$fs]}/meta$r" 2>/dev/null || die "metadata loop failed on $fs"
		done_files=$(( done_files + n )) r=$(( r + 1 ))
	done
	for phase in "${!N[@]}"; do
		ops=$(awk -v n="${N[$phase]}" -v t="${T[$phase]}" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
		case $phase in
		create*) k=${rows[4]};;
		stat) k=${rows[5]};;
		unlink) k=${rows[6]};;
		*) continue;;
		esac
		R[$fs,$k]="${R[$fs,$k]:-} $ops"
	done
	unset N T
done
done
for key in "${!R[@]}"; do
	R[$key]=$(median "${R[$key]}")
done

ratio() { awk -v u="$1" -v p="$2" 'BEGIN { if (p > 0 && u > 0) printf "%.2f", u / p; else print "-" }'; }
echo
printf 'udaxfs %s vs passthrough_ll over tmpfs, and tmpfs; fio %s s per job, %s file, %s files, median of %s round(s)\n' \
	"$("$UDAXFS" -V | awk 'NR == 1 { print $3 }')" "$secs" "$size" "$nfiles" "$rounds"
printf 'kernel %s, %s CPUs.  write-through: both defaults; write-back: passthrough_ll\n' \
	"$(uname -r)" "$(nproc)"
printf -- '-o writeback, udaxfs -o writeback_cache (the kernel caches writes)\n'
printf 'passthrough_ll options added: %s; udaxfs: %s; udaxfs device pages: %s\n' \
	"${UDAX_BENCH_PEER_OPTS:-none}" "${UDAX_BENCH_OPTS:-none}" "$pages"
printf 'passthrough_hp: %s\n' "${hp:+$hp (its defaults)}${hp_why:+not measured: $hp_why}"
printf 'columns: uring = udaxfs -o io_uring; ud+shim = the udaxfs column'"'"'s file, fio under\n'
printf 'libudax-preload.so (its io_uring rows are FUSE: the shim sees no call); raw = bench_direct\n'
printf 'on the same image (1 MiB rows: 1 MiB copies from a 1 MiB buffer into / out of the device\n'
printf 'pages; first pass: a fresh direct mapping); u/p = udaxfs / pt_ll, r/p = uring / pt_ll, s/p = ud+shim / pt_ll\n\n'
# the columns this run has, and their short names
declare -A SHORT=([tmpfs]=tmpfs [passthrough_ll]=pt_ll [passthrough_hp]=pt_hp [udaxfs]=udaxfs
		  [udaxfs_uring]=uring [ud+shim]=ud+shim [passthrough_ll_wb]=pt_ll_wb
		  [udaxfs_wb]=udaxfs_wb [udaxfs_wb_uring]=uring_wb [raw]=raw)
cols=()
for fs in tmpfs passthrough_ll passthrough_hp udaxfs udaxfs_uring ud+shim passthrough_ll_wb \
	  udaxfs_wb udaxfs_wb_uring; do
	[[ " ${iofss[*]} " == *" $fs "* ]] && cols+=("$fs")
done
[ -z "${R[raw,write]:-}" ] || cols+=(raw)
printf '%-31s' row
for c in "${cols[@]}"; do printf ' %9s' "${SHORT[$c]}"; done
printf ' %5s %5s %5s\n' u/p r/p s/p
for row in "${rows[@]}"; do
	printf '%-31s' "$row"
	for c in "${cols[@]}"; do
		if [ "$c" = raw ]; then
			case $row in
			"seqwrite 1M (MiB/s)") v=${R[raw,write]:-};;
			"seqread 1M (MiB/s)") v=${R[raw,read]:-};;
			"seqwrite 1M first pass"*) v=${R[raw,first-write]:-};;
			"seqread 1M first pass"*) v=${R[raw,first-read]:-};;
			*) v="";;
			esac
		else
			v=${R[$c,$row]:-}
		fi
		printf ' %9s' "${v:--}"
	done
	p=${R[passthrough_ll,$row]:-0}
	printf ' %5s %5s %5s\n' "$(ratio "${R[udaxfs,$row]:-0}" "$p")" \
		"$(ratio "${R[udaxfs_uring,$row]:-0}" "$p")" "$(ratio "${R[ud+shim,$row]:-0}" "$p")"
done
[ -z "${R[raw,ntwrite]:-}" ] ||
	printf '%-31s %s MiB/s (raw non-temporal stores into the device pages + one fence)\n' \
		"raw yardstick: nt stores" "${R[raw,ntwrite]}"
if [ "$preload" != none ]; then
	# target: NAME VALUE REFERENCE FACTOR -> "value/reference = x (target >= f: met)"
	target() { awk -v n="$1" -v v="$2" -v r="$3" -v f="$4" 'BEGIN {
		if (r + 0 <= 0) { printf "  %-44s %9s   (reference not measured)\n", n, v; exit }
		x = v / r; printf "  %-44s %9s / %9s = %6.2fx (target >= %s: %s)\n", n, v, r, x, f,
			(x >= f ? "met" : "NOT met") }'; }
	rr=${rows[0]} rw_=${rows[1]} sr=${rows[2]} sw=${rows[3]}
	raw=${R[raw,write]:-0} rawr=${R[raw,read]:-0} rawnt=${R[raw,ntwrite]:-0}
	echo
	echo "read()/write() from direct layouts (ud+shim: fio psync under libudax-preload.so)"
	printf '  %-27s %9s %9s %6s\n' row udaxfs ud+shim ratio
	for row in "${rows[@]}"; do
		case $row in create*|stat*|unlink*) continue;; esac
		printf '  %-27s %9s %9s %6s\n' "$row" "${R[udaxfs,$row]:-0}" "${R[ud+shim,$row]:--}" \
			"$(ratio "${R[ud+shim,$row]:-0}" "${R[udaxfs,$row]:-0}")"
	done
	printf '  fio mmap engine: tmpfs %s / %s IOPS, udaxfs under the shim %s / %s IOPS (randread / randwrite)\n' \
		"${R[tmpfs,${mrows[0]}]:-0}" "${R[tmpfs,${mrows[1]}]:-0}" \
		"${R[ud+shim,${mrows[0]}]:-0}" "${R[ud+shim,${mrows[1]}]:-0}"
	printf '  fio mmap engine, 1 MiB, udaxfs under the shim: read %s, write %s MiB/s (no flush)\n' \
		"${R[ud+shim,${mrows[2]}]:-0}" "${R[ud+shim,${mrows[3]}]:-0}"
	printf '  raw device mapping (bench_direct): memcpy in %s, out %s, nt stores %s MiB/s; first pass in %s, out %s\n' \
		"$raw" "$rawr" "$rawnt" "${R[raw,first-write]:-0}" "${R[raw,first-read]:-0}"
	target "4k randread: shim / mmap engine under shim" "${R[ud+shim,$rr]:-0}" "${R[ud+shim,${mrows[0]}]:-0}" 0.8
	target "4k randread: shim / tmpfs psync" "${R[ud+shim,$rr]:-0}" "${R[tmpfs,$rr]:-0}" 1.5
	target "4k randwrite: shim / tmpfs psync" "${R[ud+shim,$rw_]:-0}" "${R[tmpfs,$rw_]:-0}" 1.2
	target "4k randread: shim / passthrough_ll" "${R[ud+shim,$rr]:-0}" "${R[passthrough_ll,$rr]:-0}" 10
	target "4k randwrite: shim / passthrough_ll" "${R[ud+shim,$rw_]:-0}" "${R[passthrough_ll,$rw_]:-0}" 10
	fr=${rows[9]} fw=${rows[10]}
	target "1M seqread: shim / raw memcpy out" "${R[ud+shim,$sr]:-0}" "$rawr" 0.8
	target "1M seqwrite: shim / raw memcpy in" "${R[ud+shim,$sw]:-0}" "$raw" 0.8
	target "1M seqwrite: shim / raw nt stores" "${R[ud+shim,$sw]:-0}" "$rawnt" 0.8
	target "1M seqread: shim / fio mmap engine" "${R[ud+shim,$sr]:-0}" "${R[ud+shim,${mrows[2]}]:-0}" 0.8
	target "1M seqwrite: shim / fio mmap engine" "${R[ud+shim,$sw]:-0}" "${R[ud+shim,${mrows[3]}]:-0}" 0.8
	# The first pass has no target of its own (the targets compare the
	# steady state with the raw device mapping); it is shown because a
	# program that reads a file once pays it: each 32 MiB window waits for
	# its grant, which first drops what the kernel caches of the range
	# (here the udaxfs column's passes through the mount filled it).
	shown() { awk -v n="$1" -v v="$2" -v r="$3" 'BEGIN {
		if (r + 0 <= 0) { printf "  %-44s %9s   (reference not measured)\n", n, v; exit }
		printf "  %-44s %9s / %9s = %6.2fx (no target: shown)\n", n, v, r, v / r }'; }
	shown "1M seqread first pass: shim / raw" "${R[ud+shim,$fr]:-0}" "${R[raw,first-read]:-0}"
	shown "1M seqwrite first pass: shim / raw" "${R[ud+shim,$fw]:-0}" "${R[raw,first-write]:-0}"
fi
if [ -n "$json" ]; then
	{
		echo "["
		sep=""
		for row in "${rows[@]}"; do
			printf '%s  {"row": "%s", "tmpfs": %s, "passthrough_ll": %s, "udaxfs": %s, ' \
				"$sep" "$row" "${R[tmpfs,$row]:-0}" "${R[passthrough_ll,$row]:-0}" \
				"${R[udaxfs,$row]:-0}"
			printf '"udaxfs_io_uring": %s, ' "${R[udaxfs_uring,$row]:-0}"
			printf '"passthrough_ll_writeback": %s, "udaxfs_writeback_cache": %s, ' \
				"${R[passthrough_ll_wb,$row]:-0}" "${R[udaxfs_wb,$row]:-0}"
			printf '"udaxfs_writeback_cache_io_uring": %s, ' "${R[udaxfs_wb_uring,$row]:-0}"
			printf '"passthrough_hp": %s, ' "${R[passthrough_hp,$row]:-null}"
			printf '"udaxfs_preload": %s}' "${R[ud+shim,$row]:-null}"
			sep=$',\n'
		done
		printf '\n]\n'
	} >"$json"
fi
