#!/bin/sh
# run.sh - the udaxfs suite on a real kernel device-DAX.
#
# Default: boot a Debian kernel in QEMU (software emulation) with an
# emulated NVDIMM, three times:
#   1. align 2M, fresh NVDIMM image A: create the devdax namespace, run
#      suite.sh first (device rules, mkfs, mount, tests, data set);
#   2. align 2M, image A again: the namespace and the data set must have
#      survived the reboot (suite.sh again, against boot 1's checksums);
#   3. align 4K, fresh image B: suite.sh first again.
# With UDAX_DEVDAX=/dev/daxX.Y: no QEMU, suite.sh runs on that host device
# (first, then again).  THAT DESTROYS EVERYTHING ON THE DEVICE.
#
# Environment (all optional):
#   UDAX_DEVDAX          a host device-DAX to test instead of a QEMU guest
#   UDAX_DEVDAX_CACHE    where the guest kernel is kept
#                        (default $top_builddir/tests/devdax/cache)
#   UDAX_DEVDAX_NOFETCH=1 never download a kernel
#   UDAX_DEVDAX_KERNEL   use this vmlinuz-KVER (modules in
#                        UDAX_DEVDAX_MODROOT/lib/modules/KVER, default /)
#   UDAX_DEVDAX_BOOTS    which boots to run (default "2M 2M-again 4K"); a
#                        ":short", ":full" or ":all" suffix picks a boot's
#                        profile (suite.sh; default: the first fresh boot
#                        full, the others short)
#   UDAX_DEVDAX_FULL=1   every boot runs everything (profile all: every
#                        test of tests/fs and tests/dma; many minutes)
#   UDAX_DEVDAX_TIMEOUT  seconds one boot may take (default 300)
#   UDAX_DEVDAX_FS_TESTS which tests of tests/fs run (comma list, or all;
#                        default posix,mount in a full boot, none in a short)
#   UDAX_DEVDAX_TEST_TIMEOUT seconds one test in the guest may take (120)
#   UDAX_DEVDAX_SHIM=0   other helpers' tests keep their emulation images
#                        (is it the device or the guest that fails them?)
#   UDAX_DEVDAX_NVSIZE   NVDIMM size, a multiple of 16M (default 256M)
#   UDAX_DEVDAX_ACCEL    tcg (default) or kvm
#   UDAX_DEVDAX_KEEP=1   keep the work directory (images, initramfs, logs)
#   UDAX_DEVDAX_SKIP=1   skip (77) without looking
#   UDAX_DEVDAX_REQUIRE=1 a missing tool or kernel fails instead of skipping (CI)
# Exit: 0 passed, 1 failed, 77 skipped (the reason is printed).
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
export top_srcdir top_builddir

skip() {
	echo "SKIP: $*"
	[ "${UDAX_DEVDAX_REQUIRE:-0}" = 1 ] && { echo "UDAX_DEVDAX_REQUIRE=1: failing instead"; exit 1; }
	exit 77
}
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

[ "${UDAX_DEVDAX_SKIP:-0}" = 1 ] && skip "UDAX_DEVDAX_SKIP=1"
command -v bc >/dev/null 2>&1 || skip "no bc"

outdir=$top_builddir/tests/devdax
mkdir -p "$outdir"
work=$(mktemp -d "$outdir/run.XXXXXX") || exit 1
cleanup() {
	if [ "${UDAX_DEVDAX_KEEP:-0}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- a real device on this host ----------------------------------------
if [ -n "${UDAX_DEVDAX:-}" ]; then
	[ -c "$UDAX_DEVDAX" ] || { echo "FAIL: UDAX_DEVDAX=$UDAX_DEVDAX is not a character device"; exit 1; }
	echo "######################################################################"
	echo "# WARNING: testing the host device $UDAX_DEVDAX."
	echo "# EVERYTHING STORED ON IT IS BEING DESTROYED."
	echo "######################################################################"
	if [ -t 0 ]; then
		echo "Ctrl-C within 10 s to stop."
		sleep 10
	fi
	for t in fusermount3 sha256sum; do
		command -v $t >/dev/null 2>&1 || skip "no $t on this host"
	done
	mkdir -p "$work/expect"
	export UDAX_PROFILE=full
	[ "${UDAX_DEVDAX_FULL:-0}" = 1 ] && UDAX_PROFILE=all
	[ -n "${UDAX_DEVDAX_FS_TESTS:-}" ] && export UDAX_FS_TESTS=$UDAX_DEVDAX_FS_TESTS
	[ -n "${UDAX_DEVDAX_TEST_TIMEOUT:-}" ] && export UDAX_TEST_TIMEOUT=$UDAX_DEVDAX_TEST_TIMEOUT
	t0=$(now)
	sh "$top_srcdir/tests/devdax/suite.sh" "$UDAX_DEVDAX" first "$work/first" 2>&1 | tee "$work/first.log"
	rc=$(grep -c '^suite: PASS' "$work/first.log")
	sed -n 's/^UDAX-SUM //p' "$work/first.log" > "$work/expect/sums"
	sed -n 's/^MARK //p' "$work/first.log" | tail -n1 > "$work/expect/mark"
	UDAX_EXPECT=$work/expect sh "$top_srcdir/tests/devdax/suite.sh" "$UDAX_DEVDAX" again "$work/again" 2>&1 |
		tee "$work/again.log"
	grep '^FACT ' "$work/first.log" > "$outdir/facts-host.txt"
	printf 'HOST device run: %.1f s\n' "$(since "$t0")"
	[ "$rc" = 1 ] && grep -q '^suite: PASS' "$work/again.log" && exit 0
	exit 1
fi

# ---- a QEMU guest --------------------------------------------------------
for t in qemu-system-x86_64 busybox ndctl daxctl cpio gzip modprobe depmod fusermount3 timeout; do
	command -v $t >/dev/null 2>&1 ||
		skip "no $t (Debian: apt-get install $(cat "$top_srcdir/tests/devdax/ci-packages.txt" | tr '\n' ' '))"
done
rules=$(find "$top_builddir" -path "$top_builddir/tests/devdax/run.*" -prune -o \
	-name devdax-rules -type f -perm -u+x -print | head -n1)
[ -n "$rules" ] || skip "tests/devdax/devdax-rules is not built (make check builds it)"

cache=${UDAX_DEVDAX_CACHE:-$outdir/cache}
t0=$(now)
kinfo=$(sh "$top_srcdir/tests/devdax/get-kernel.sh" "$cache") || skip "no guest kernel (see above)"
eval "$kinfo"
printf 'kernel %s (%s), ready in %.1f s\n' "$KVER" "$KERNEL" "$(since "$t0")"

t0=$(now)
sh "$top_srcdir/tests/devdax/mkinitramfs.sh" "$KVER" "$MODROOT" "$work/initramfs.cpio.gz"
case $? in
0) ;;
77) skip "cannot build the guest's initramfs (see above)" ;;
*) echo "FAIL: building the initramfs"; exit 1 ;;
esac
printf 'initramfs built in %.1f s\n' "$(since "$t0")"

nvsize=${UDAX_DEVDAX_NVSIZE:-256M}
fstests=${UDAX_DEVDAX_FS_TESTS:+ udax.fstests=$UDAX_DEVDAX_FS_TESTS}
fstests="$fstests${UDAX_DEVDAX_TEST_TIMEOUT:+ udax.timeout=$UDAX_DEVDAX_TEST_TIMEOUT}"
fstests="$fstests${UDAX_DEVDAX_SHIM:+ udax.shim=$UDAX_DEVDAX_SHIM}"
timeout_s=${UDAX_DEVDAX_TIMEOUT:-300}
case ${UDAX_DEVDAX_ACCEL:-tcg} in
kvm) accel="-accel kvm -cpu host" ;;
*) accel="-accel tcg -cpu max" ;;
esac

# boot IMAGE ALIGN PHASE INITRD NAME: one QEMU run, the serial console into
# the log with host timestamps.  Return: the guest's verdict (0, 1, 77), or
# 124 when it never reported one (timeout, crash, panic).
boot() {
	bt0=$(now)
	# -smp 1: multi-threaded TCG occasionally oopses the guest at boot.
	# shellcheck disable=SC2086
	{
		timeout -k 10 "$timeout_s" qemu-system-x86_64 $accel -smp 1 \
			-machine pc,nvdimm=on -m 1G,slots=2,maxmem=8G \
			-object memory-backend-file,id=nv0,share=on,mem-path="$1",size="$nvsize",align=2M \
			-device nvdimm,memdev=nv0,id=nvdimm0 \
			-kernel "$KERNEL" -initrd "$4" \
			-append "console=ttyS0 panic=-1 quiet loglevel=4 udax.align=$2 udax.phase=$3 udax.profile=$profile$fstests" \
			-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
			-display none -vga none -nic none -monitor none -serial stdio -no-reboot \
			< /dev/null 2>&1
		echo $? > "$work/$5.rc"
	} | sed -u 's/\r$//' | tee "$work/$5.log" |
	while IFS= read -r l; do
		printf '[%6.2f] %s\n' "$(since "$bt0")" "$l"
	done
	qrc=$(cat "$work/$5.rc")
	printf 'HOST %s: qemu exit %s after %.1f s\n' "$5" "$qrc" "$(since "$bt0")"
	case $qrc in
	1) return 0 ;;
	3) return 1 ;;
	155) return 77 ;;
	*) return 124 ;;
	esac
}

# boot_retry ...: a guest that never reports is booted once more.
boot_retry() {
	boot "$@"
	brc=$?
	[ $brc != 124 ] && return $brc
	echo "HOST $5: the guest never reported a verdict; booting it once more"
	[ "$3" = first ] && rm -f "$1" && truncate -s "$nvsize" "$1"
	boot "$@"
	brc=$?
	[ $brc = 124 ] && echo "HOST $5: no verdict twice: FAIL"
	return $brc
}

# the expectations of boot 1, in a second cpio archive for boot 2
expect_initrd() {	# LOG OUT
	mkdir -p "$work/exp/udax/expect"
	sed -n 's/^UDAX-SUM //p' "$1" > "$work/exp/udax/expect/sums"
	sed -n 's/^MARK //p' "$1" | tail -n1 > "$work/exp/udax/expect/mark"
	(cd "$work/exp" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/expect.cpio.gz"
	cat "$work/initramfs.cpio.gz" "$work/expect.cpio.gz" > "$2"
}

status=0
summary=""
total0=$(now)
nfirst=0
for spec in ${UDAX_DEVDAX_BOOTS:-2M 2M-again 4K}; do
	b=${spec%%:*}
	align=${b%-again}
	# the first fresh boot runs the full suite, later ones a short one
	# (software emulation is slow); "4K:full" or UDAX_DEVDAX_FULL=1 says otherwise
	case $spec in
	*:*) profile=${spec#*:} ;;
	*) profile=short
	   [ "$b" = "$align" ] && [ $nfirst = 0 ] && profile=full
	   [ "${UDAX_DEVDAX_FULL:-0}" = 1 ] && profile=all ;;
	esac
	[ "$b" = "$align" ] && nfirst=$((nfirst + 1))
	img=$work/nvdimm-$align.img
	if [ "$b" = "$align" ]; then
		phase=first
		rm -f "$img"
		truncate -s "$nvsize" "$img"	# sparse; label-less: a multiple of 16M
		initrd=$work/initramfs.cpio.gz
	else
		phase=again
		# boot 1 may have failed some test and still left its data set
		if ! grep -q -e '^UDAX-SUM ' -e '^MARK ' "$work/boot-$align.log" 2>/dev/null; then
			echo "HOST boot-$b: skipped, boot-$align left no data set to check"
			summary="$summary boot-$b=not-run"
			status=1
			continue
		fi
		initrd=$work/initramfs-$b.cpio.gz
		expect_initrd "$work/boot-$align.log" "$initrd"
	fi
	echo "======== boot-$b: align $align, phase $phase, profile $profile"
	bt=$(now)
	boot_retry "$img" "$align" "$phase" "$initrd" "boot-$b"
	rc=$?
	summary="$summary boot-$b=$(case $rc in 0) echo pass;; 77) echo skip;; *) echo FAIL;; esac)($(printf %.1f "$(since "$bt")")s)"
	grep '^FACT ' "$work/boot-$b.log" > "$outdir/facts-$b.txt" 2>/dev/null
	case $rc in
	0|77) ;;
	*) status=1 ;;
	esac
done
printf 'HOST devdax summary:%s; total %.1f s\n' "$summary" "$(since "$total0")"
exit $status
