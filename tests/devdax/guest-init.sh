#!/bin/sh
# guest-init.sh - /init of the devdax test guest (see run.sh).
#
# Kernel command line knobs:
#   udax.align=2M|4K     devdax alignment of the namespace created
#   udax.phase=first     fresh NVDIMM: create the namespace, run the suite
#   udax.phase=again     the same NVDIMM rebooted: the namespace must be found
#                        on the media, the data of the first boot still there
#   udax.shell=1         drop to a shell at the end (debugging by hand)
#   udax.profile=full|short  how much of the suite runs (see suite.sh)
#   udax.fstests=a,b     these tests of tests/fs (default: suite.sh's; all)
#   udax.timeout=S       seconds one test may take
#   udax.shim=0          other helpers' tests keep their emulation images
# The verdict leaves through isa-debug-exit (I/O port 0xf4): QEMU exits with
# (v << 1) | 1, v = 0 passed, 1 failed, 77 nothing could be tested.
# GNU tools (/usr) before busybox's applets (/bin)
export PATH=/udax/build:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm

up() { cut -d' ' -f1 /proc/uptime; }

verdict() {
	echo "GUEST-VERDICT $1 uptime=$(up)"
	sync
	[ "$shell" = 1 ] && setsid cttyhack sh
	printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null
	poweroff -f
}

align=2M
phase=first
shell=0
for a in $(cat /proc/cmdline); do
	case $a in
	udax.align=*) align=${a#*=} ;;
	udax.phase=*) phase=${a#*=} ;;
	udax.shell=*) shell=${a#*=} ;;
	udax.fstests=*) export UDAX_FS_TESTS=${a#*=} ;;
	udax.timeout=*) export UDAX_TEST_TIMEOUT=${a#*=} ;;
	udax.profile=*) export UDAX_PROFILE=${a#*=} ;;
	udax.shim=*) export UDAX_SHIM=${a#*=} ;;
	esac
done
echo "GUEST-INIT-START kernel=$(uname -r) align=$align phase=$phase uptime=$(up)"

while read -r ko; do
	insmod "$ko" || echo "insmod $ko failed"
done < /modules.order
echo "modules loaded uptime=$(up)"
mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null

# Label-less NVDIMM: the raw namespace is reconfigured as devdax; on a
# later boot the kernel finds the devdax info block and makes dax0.0 itself.
dev=/dev/dax0.0
for i in 1 2 3 4 5 6 7 8 9 10; do
	[ -e $dev ] && break
	[ "$phase" = first ] && break
	sleep 0.2
done
if [ "$phase" = first ]; then
	echo "+ ndctl create-namespace -f -e namespace0.0 -m devdax -a $align"
	if ! ndctl create-namespace -f -e namespace0.0 -m devdax -a "$align"; then
		ndctl list -RNu
		verdict 1
	fi
elif [ -e $dev ]; then
	echo "namespace found again on the media: $(ndctl list -N | tr -d ' \n')"
else
	echo "FAIL: after the reboot the media holds no devdax namespace"
	ndctl list -RNu
	verdict 1
fi
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e $dev ] && break; sleep 0.1; done
[ -e $dev ] || { echo "FAIL: no $dev"; verdict 1; }
echo "DAX-READY uptime=$(up) $(ls -l $dev)"
for f in size align target_node; do
	echo "sysfs dax0.0/$f = $(cat /sys/bus/dax/devices/dax0.0/$f)"
done
echo "FACT persistence_domain=$(cat /sys/bus/nd/devices/region0/persistence_domain 2>/dev/null)"
echo "FACT cpu_flags=$(grep -o -w -E 'clwb|clflushopt|avx512f|movdir64b' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "FACT kernel=$(uname -r)"

# the host's expectations from the first boot ride in a second cpio archive
export UDAX_IN_GUEST=1 UDAX_DEVICE=$dev top_srcdir=/udax/src top_builddir=/udax/build
sh /udax/src/tests/devdax/suite.sh "$dev" "$phase" /tmp/udax-suite
rc=$?
echo "suite rc=$rc uptime=$(up)"
case $rc in
0) verdict 0 ;;
77) verdict 77 ;;
*) verdict 1 ;;
esac
