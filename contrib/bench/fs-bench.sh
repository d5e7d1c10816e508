#!/bin/bash
# fs-bench.sh - udaxfs beside libfuse's passthrough_ll over tmpfs, and
# beside tmpfs itself, in one run.  Like is compared with like: each FUSE
# file system runs twice, write-through (both defaults) and with the
# kernel's write-back cache (passthrough_ll -o writeback, udaxfs -o
# writeback_cache):
#   fio: 4 KiB random read and random write (psync), 1 MiB sequential read
#        and write, on one file of 1 GiB, time-based;
#   metaloop: create+write+close, stat and unlink of 20k files.
# Prints one table with the ratio udaxfs / passthrough_ll per row for each
# pair (higher is better for udaxfs).  Not part of make check.
#
# Usage: fs-bench.sh [-t SECONDS] [-s FILESIZE] [-n FILES] [-B BUILDDIR] [-q]
#   -t  seconds per fio job (default 10)      -q  quick: -t 3 -s 256M -n 5000
#   -s  fio file size (default 1G)            -n  files in the metadata loop (20000)
#   -B  where udaxfs and mkfs.udaxfs were built (default: this tree's build,
#       else PATH)
#   -j  also write the table as JSON to this file
#   -r  rounds (default 1): every job and the metadata loop run this many
#       times, round by round, and the table shows each cell's median
# Environment: UDAX_BENCH_OPTS adds mount options to both udaxfs mounts,
# UDAX_BENCH_PEER_OPTS to both passthrough_ll mounts.  passthrough_ll as
# shipped checks no permissions and has no xattrs, so the kernel skips
# work udaxfs needs on every create and unlink (a GETATTR of the directory
# for default_permissions, a GETXATTR of security.capability on a new
# file's first write); UDAX_BENCH_PEER_OPTS=default_permissions,xattr
# gives the peer the same duties.
# Needs: root, fio, a C compiler, libfuse3-dev (its examples), /dev/fuse.
set -euo pipefail

secs=10 size=1G nfiles=20000 build="" json="" rounds=1
while getopts "t:s:n:B:j:r:qh" opt; do
	case $opt in
	t) secs=$OPTARG;;
	s) size=$OPTARG;;
	n) nfiles=$OPTARG;;
	B) build=$OPTARG;;
	j) json=$OPTARG;;
	r) rounds=$OPTARG;;
	q) secs=3 size=256M nfiles=5000;;
	*) sed -n '2,28p' "$0"; exit 2;;
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

ex=/usr/share/doc/libfuse3-dev/examples
[ -e "$ex/passthrough_ll.c" ] || [ -e "$ex/passthrough_ll.c.gz" ] ||
	die "$ex/passthrough_ll.c missing (apt-get install libfuse3-dev)"

W=$(mktemp -d /dev/shm/udax-fs-bench.XXXXXX)
PT=$W/pt UD=$W/ud PTW=$W/ptwb UDW=$W/udwb TM=$W/tmpfs
cleanup() {
	for m in "$PT" "$UD" "$PTW" "$UDW"; do
		if grep -q " $m " /proc/self/mounts; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true
		fi
	done
	sleep 0.3
	rm -rf "$W"
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
peer=${UDAX_BENCH_PEER_OPTS:+,$UDAX_BENCH_PEER_OPTS}
"$W/passthrough_ll" -o source="$W/ptsrc",allow_other$peer "$PT"
"$W/passthrough_ll" -o writeback,source="$W/ptwbsrc",allow_other$peer "$PTW"
for m in "$PT" "$UD" "$PTW" "$UDW"; do
	grep -q " $m " /proc/self/mounts || die "$m did not mount"
done

declare -A R	# R[fs,row] = number
rows=("randread 4k psync (IOPS)" "randwrite 4k psync (IOPS)"
      "seqread 1M (MiB/s)" "seqwrite 1M (MiB/s)"
      "create+write+close (ops/s)" "stat (ops/s)" "unlink (ops/s)")

# fio_job FS DIR NAME RW BS -> value (IOPS or MiB/s)
fio_job() {
	local fs=$1 dir=$2 row=$3 rw=$4 bs=$5 out
	out=$(fio --name=b --filename="$dir/bench.dat" --size="$size" --rw="$rw" --bs="$bs" \
		--ioengine=psync --time_based --runtime="$secs" --ramp_time=1 \
		--minimal 2>/dev/null) || die "fio $rw on $fs failed"
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
		[udaxfs_wb]=$UDW)
fss=(tmpfs passthrough_ll udaxfs passthrough_ll_wb udaxfs_wb)
for fs in "${fss[@]}"; do
	echo "== laying out $size on $fs" >&2
	fio --name=layout --filename="${DIR[$fs]}/bench.dat" --size="$size" --rw=write --bs=1M \
		--ioengine=psync --minimal >/dev/null 2>&1 || die "fio layout on $fs failed"
done
jobs=("${rows[3]}|write|1M" "${rows[2]}|read|1M" "${rows[1]}|randwrite|4k" "${rows[0]}|randread|4k")
for ((rd = 1; rd <= rounds; rd++)); do
	for j in "${jobs[@]}"; do
		IFS='|' read -r row rw bs <<<"$j"
		for fs in "${fss[@]}"; do
			echo "== round $rd/$rounds: $row on $fs" >&2
			fio_job "$fs" "${DIR[$fs]}" "$row" "$rw" "$bs"
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

ratio() { awk -v u="$1" -v p="$2" 'BEGIN { if (p > 0) printf "%.2f", u / p; else print "-" }'; }
echo
printf 'udaxfs %s vs passthrough_ll over tmpfs, and tmpfs; fio %s s per job, %s file, %s files, median of %s round(s)\n' \
	"$("$UDAXFS" -V | awk 'NR == 1 { print $3 }')" "$secs" "$size" "$nfiles" "$rounds"
printf 'kernel %s, %s CPUs.  write-through: both defaults; write-back: passthrough_ll\n' \
	"$(uname -r)" "$(nproc)"
printf -- '-o writeback, udaxfs -o writeback_cache (the kernel caches writes)\n'
printf 'passthrough_ll options added: %s; udaxfs: %s\n\n' "${UDAX_BENCH_PEER_OPTS:-none}" \
	"${UDAX_BENCH_OPTS:-none}"
printf '%-27s %9s | %9s %9s %6s | %9s %9s %6s\n' "" "" "write-through" "" "" "write-back" "" ""
printf '%-27s %9s | %9s %9s %6s | %9s %9s %6s\n' "row" "tmpfs" "pt_ll" "udaxfs" "ratio" \
	"pt_ll" "udaxfs" "ratio"
for row in "${rows[@]}"; do
	t=${R[tmpfs,$row]:-0} p=${R[passthrough_ll,$row]:-0} u=${R[udaxfs,$row]:-0}
	pw=${R[passthrough_ll_wb,$row]:-0} uw=${R[udaxfs_wb,$row]:-0}
	printf '%-27s %9s | %9s %9s %6s | %9s %9s %6s\n' "$row" "$t" "$p" "$u" "$(ratio "$u" "$p")" \
		"$pw" "$uw" "$(ratio "$uw" "$pw")"
done
if [ -n "$json" ]; then
	{
		echo "["
		sep=""
		for row in "${rows[@]}"; do
			printf '%s  {"row": "%s", "tmpfs": %s, "passthrough_ll": %s, "udaxfs": %s, ' \
				"$sep" "$row" "${R[tmpfs,$row]:-0}" "${R[passthrough_ll,$row]:-0}" \
				"${R[udaxfs,$row]:-0}"
			printf '"passthrough_ll_writeback": %s, "udaxfs_writeback_cache": %s}' \
				"${R[passthrough_ll_wb,$row]:-0}" "${R[udaxfs_wb,$row]:-0}"
			sep=$',\n'
		done
		printf '\n]\n'
	} >"$json"
fi
