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
# targets.  fio's io_uring engine is not measured under the shim: its reads
# and writes are SQEs the kernel executes (io_uring_enter), no C library
# call the shim could intercept, so it would measure FUSE.
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
# Environment: UDAX_BENCH_OPTS adds mount options to both udaxfs mounts,
# UDAX_BENCH_PEER_OPTS to both passthrough_ll mounts.  passthrough_ll as
# shipped checks no permissions and has no xattrs, so the kernel skips
# work udaxfs needs on every create and unlink (a GETATTR of the directory
# for default_permissions, a GETXATTR of security.capability on a new
# file's first write); UDAX_BENCH_PEER_OPTS=default_permissions,xattr
# gives the peer the same duties.
# Needs: root, fio, a C compiler, libfuse3-dev (its examples), /dev/fuse.
set -euo pipefail

secs=10 size=1G nfiles=20000 build="" json="" rounds=1 preload=""
while getopts "t:s:n:B:j:r:P:qh" opt; do
	case $opt in
	t) secs=$OPTARG;;
	s) size=$OPTARG;;
	n) nfiles=$OPTARG;;
	B) build=$OPTARG;;
	j) json=$OPTARG;;
	r) rounds=$OPTARG;;
	P) preload=$OPTARG;;
	q) secs=3 size=256M nfiles=5000;;
	*) sed -n '2,35p' "$0"; exit 2;;
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
PT=$W/pt UD=$W/ud PTW=$W/ptwb UDW=$W/udwb TM=$W/tmpfs UR=$W/ur URW=$W/urwb
URING_PARAM=/sys/module/fuse/parameters/enable_uring URING_SAVED=""
cleanup() {
	for m in "$PT" "$UD" "$PTW" "$UDW" "$UR" "$URW"; do
		if grep -q " $m " /proc/self/mounts; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true
		fi
	done
	sleep 0.3
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
"$cc" -O2 -Wall -o "$W/metaloop" "$here/metaloop.c" || die "cannot build metaloop"

# ---- the three file systems ----
to_bytes() { numfmt --from=iec "$1"; }
img_bytes=$(( $(to_bytes "$size") * 2 + 1024 * 1024 * 1024 ))
mkdir -p "$PT" "$UD" "$PTW" "$UDW" "$TM" "$W/ptsrc" "$W/ptwbsrc"
"$MKFS" -s "$img_bytes" "$W/udax.img" >/dev/null
"$MKFS" -s "$img_bytes" "$W/udaxwb.img" >/dev/null
"$UDAXFS" "$W/udax.img" "$UD" -o allow_other${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
"$UDAXFS" "$W/udaxwb.img" "$UDW" -o allow_other,writeback_cache${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
# udaxfs over io_uring, when this kernel has it
uring=0
if [ -e "$URING_PARAM" ]; then
	if [ "$(cat "$URING_PARAM")" != Y ]; then
		URING_SAVED=$(cat "$URING_PARAM")
		echo "fs-bench: setting $URING_PARAM=Y for the io_uring columns (restored at exit)" >&2
		echo Y >"$URING_PARAM"
	fi
	mkdir -p "$UR" "$URW"
	"$MKFS" -s "$img_bytes" "$W/ur.img" >/dev/null
	"$MKFS" -s "$img_bytes" "$W/urwb.img" >/dev/null
	"$UDAXFS" "$W/ur.img" "$UR" -o allow_other,io_uring${UDAX_BENCH_OPTS:+,$UDAX_BENCH_OPTS}
	"$UDAXFS" "$W/urwb.img" "$URW" \
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
[ $uring = 0 ] || for m in "$UR" "$URW"; do
	grep -q " $m " /proc/self/mounts || die "$m did not mount"
done

declare -A R	# R[fs,row] = number
rows=("randread 4k psync (IOPS)" "randwrite 4k psync (IOPS)"
      "seqread 1M (MiB/s)" "seqwrite 1M (MiB/s)"
      "create+write+close (ops/s)" "stat (ops/s)" "unlink (ops/s)")

# fio_job FS DIR NAME RW BS [ENGINE] -> value (IOPS or MiB/s); ud+shim runs under the shim
fio_job() {
	local fs=$1 dir=$2 row=$3 rw=$4 bs=$5 engine=${6:-psync} out pre=""
	case $fs in ud+shim*) pre=$preload;; esac
	out=$(LD_PRELOAD=$pre fio --name=b --filename="$dir/bench.dat" --size="$size" --rw="$rw" \
		--bs="$bs" --ioengine="$engine" --time_based --runtime="$secs" --ramp_time=1 \
		--minimal 2>/dev/null) || die "fio $rw ($engine) on $fs failed"
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
		[udaxfs_wb]=$UDW [udaxfs_uring]=$UR [udaxfs_wb_uring]=$URW [ud+shim]=$UD)
if [ $uring = 1 ]; then
	fss=(tmpfs passthrough_ll udaxfs udaxfs_uring passthrough_ll_wb udaxfs_wb udaxfs_wb_uring)
else
	fss=(tmpfs passthrough_ll udaxfs passthrough_ll_wb udaxfs_wb)
fi
iofss=("${fss[@]}")
[ "$preload" = none ] || iofss+=(ud+shim)	# the same file as udaxfs, under the shim
for fs in "${fss[@]}"; do
	echo "== laying out $size on $fs" >&2
	fio --name=layout --filename="${DIR[$fs]}/bench.dat" --size="$size" --rw=write --bs=1M \
		--ioengine=psync --minimal >/dev/null 2>&1 || die "fio layout on $fs failed"
done
jobs=("${rows[3]}|write|1M" "${rows[2]}|read|1M" "${rows[1]}|randwrite|4k" "${rows[0]}|randread|4k")
mrows=("randread 4k mmap (IOPS)" "randwrite 4k mmap (IOPS)")
mfss=(tmpfs)
[ "$preload" = none ] || mfss+=(ud+shim)
for ((rd = 1; rd <= rounds; rd++)); do
	for j in "${jobs[@]}"; do
		IFS='|' read -r row rw bs <<<"$j"
		for fs in "${iofss[@]}"; do
			echo "== round $rd/$rounds: $row on $fs" >&2
			fio_job "$fs" "${DIR[$fs]}" "$row" "$rw" "$bs"
		done
	done
	# fio's mmap engine: memory speed through a mapping, the yardstick of the shim
	for j in "${mrows[0]}|randread" "${mrows[1]}|randwrite"; do
		IFS='|' read -r row rw <<<"$j"
		for fs in "${mfss[@]}"; do
			echo "== round $rd/$rounds: $row on $fs" >&2
			fio_job "$fs" "${DIR[$fs]}" "$row" "$rw" 4k mmap
		done
	done
	# the raw bandwidth of the device mapping (memcpy into the very pages)
	if [ -n "$bench_direct" ] && [ "$preload" != none ]; then
		echo "== round $rd/$rounds: raw memcpy bandwidth (bench_direct)" >&2
		bw=$("$bench_direct" 64 "$UD/bench_direct.dat" "$W/udax.img" 2>/dev/null |
			sed -n 's/.*raw *\([0-9.]*\) GiB\/s.*/\1/p' | head -1)
		rm -f "$UD/bench_direct.dat"
		[ -n "$bw" ] && R[raw,memcpy]="${R[raw,memcpy]:-} $(awk -v g="$bw" 'BEGIN { printf "%.0f", g * 1024 }')"
	fi
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

ratio() { awk -v u="$1" -v p="$2" 'BEGIN { if (p > 0) printf "%.2f", u / p; else print "-" }'; }
echo
printf 'udaxfs %s vs passthrough_ll over tmpfs, and tmpfs; fio %s s per job, %s file, %s files, median of %s round(s)\n' \
	"$("$UDAXFS" -V | awk 'NR == 1 { print $3 }')" "$secs" "$size" "$nfiles" "$rounds"
printf 'kernel %s, %s CPUs.  write-through: both defaults; write-back: passthrough_ll\n' \
	"$(uname -r)" "$(nproc)"
printf -- '-o writeback, udaxfs -o writeback_cache (the kernel caches writes)\n'
printf 'passthrough_ll options added: %s; udaxfs: %s\n\n' "${UDAX_BENCH_PEER_OPTS:-none}" \
	"${UDAX_BENCH_OPTS:-none}"
if [ $uring = 1 ]; then
	printf 'uring: udaxfs -o io_uring; ratios: udaxfs/pt_ll, uring/pt_ll, uring/udaxfs\n\n'
	f='%-27s %9s | %9s %9s %9s %5s %5s %5s | %9s %9s %9s %5s %5s %5s\n'
	printf "$f" "" "" "write-through" "" "" "" "" "" "write-back" "" "" "" "" ""
	printf "$f" "row" "tmpfs" "pt_ll" "udaxfs" "uring" "u/p" "r/p" "r/u" \
		"pt_ll" "udaxfs" "uring" "u/p" "r/p" "r/u"
	for row in "${rows[@]}"; do
		t=${R[tmpfs,$row]:-0} p=${R[passthrough_ll,$row]:-0} u=${R[udaxfs,$row]:-0}
		r=${R[udaxfs_uring,$row]:-0}
		pw=${R[passthrough_ll_wb,$row]:-0} uw=${R[udaxfs_wb,$row]:-0}
		rw=${R[udaxfs_wb_uring,$row]:-0}
		printf "$f" "$row" "$t" "$p" "$u" "$r" "$(ratio "$u" "$p")" "$(ratio "$r" "$p")" \
			"$(ratio "$r" "$u")" "$pw" "$uw" "$rw" "$(ratio "$uw" "$pw")" \
			"$(ratio "$rw" "$pw")" "$(ratio "$rw" "$uw")"
	done
else
printf '%-27s %9s | %9s %9s %6s | %9s %9s %6s\n' "" "" "write-through" "" "" "write-back" "" ""
printf '%-27s %9s | %9s %9s %6s | %9s %9s %6s\n' "row" "tmpfs" "pt_ll" "udaxfs" "ratio" \
	"pt_ll" "udaxfs" "ratio"
for row in "${rows[@]}"; do
	t=${R[tmpfs,$row]:-0} p=${R[passthrough_ll,$row]:-0} u=${R[udaxfs,$row]:-0}
	pw=${R[passthrough_ll_wb,$row]:-0} uw=${R[udaxfs_wb,$row]:-0}
	printf '%-27s %9s | %9s %9s %6s | %9s %9s %6s\n' "$row" "$t" "$p" "$u" "$(ratio "$u" "$p")" \
		"$pw" "$uw" "$(ratio "$uw" "$pw")"
done
fi
if [ "$preload" != none ]; then
	# target: NAME VALUE REFERENCE FACTOR -> "value/reference = x (target >= f: met)"
	target() { awk -v n="$1" -v v="$2" -v r="$3" -v f="$4" 'BEGIN {
		if (r + 0 <= 0) { printf "  %-44s %9s   (reference not measured)\n", n, v; exit }
		x = v / r; printf "  %-44s %9s / %9s = %6.2fx (target >= %s: %s)\n", n, v, r, x, f,
			(x >= f ? "met" : "NOT met") }'; }
	rr=${rows[0]} rw_=${rows[1]} sr=${rows[2]} sw=${rows[3]}
	raw=${R[raw,memcpy]:-0}
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
	printf '  raw memcpy bandwidth of the device mapping (bench_direct): %s MiB/s\n' "${raw}"
	target "4k randread: shim / mmap engine under shim" "${R[ud+shim,$rr]:-0}" "${R[ud+shim,${mrows[0]}]:-0}" 0.8
	target "4k randread: shim / tmpfs psync" "${R[ud+shim,$rr]:-0}" "${R[tmpfs,$rr]:-0}" 1.5
	target "4k randwrite: shim / tmpfs psync" "${R[ud+shim,$rw_]:-0}" "${R[tmpfs,$rw_]:-0}" 1.2
	target "4k randread: shim / passthrough_ll" "${R[ud+shim,$rr]:-0}" "${R[passthrough_ll,$rr]:-0}" 10
	target "4k randwrite: shim / passthrough_ll" "${R[ud+shim,$rw_]:-0}" "${R[passthrough_ll,$rw_]:-0}" 10
	target "1M seqread: shim / raw memcpy" "${R[ud+shim,$sr]:-0}" "$raw" 0.8
	target "1M seqwrite: shim / raw memcpy" "${R[ud+shim,$sw]:-0}" "$raw" 0.8
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
			printf '"udaxfs_preload": %s}' "${R[ud+shim,$row]:-null}"
			sep=$',\n'
		done
		printf '\n]\n'
	} >"$json"
fi
