#!/bin/sh
# The direct-access and shim tests again with -o io_uring (set by the
# harness and test_mount from UDAX_TEST_MOUNT_OPTS): every request - grants,
# pins, a truncate waiting for DMA and its FUSE_INTERRUPT (dma_eintr), a
# client or daemon killed (dma_kill, daemon_loss), DMA into freed blocks
# (dma_503, and the stale-DMA detector for every pin the client's word
# misses: stale_shim, stale_rings, stale_fork, stale_recall) -
# served over io_uring queues while /dev/fuse carries the interrupts and
# the inval_inode notifications.  Then the write-back subset again with
# -o io_uring,writeback_cache: dma_coherence, dma_truncate_wait, dma_eintr
# and preload_semantics (each feature once; the rest adds nothing new).
# First a probe proves such a mount really serves from its rings.
# As root the fuse module parameter is set for the test and restored after;
# skips (77) when the kernel lacks FUSE over io_uring.
# Exit: 0 all passed, 77 all skipped, 1 a failure.
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
. "$top_srcdir/tests/fs/uring_lib.sh"
. "$top_srcdir/tests/dma/rerun.sh"

[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
uring_enable
P=/dev/shm/udax-uring-dma-$$
trap 'fusermount3 -u -z "$P.mnt" 2>/dev/null; rm -rf "$P.img" "$P.mnt"; uring_restore' EXIT

# the probe: an io_uring mount answers stats from its rings
"$top_builddir/mkfs.udaxfs" -s 64M "$P.img" >/dev/null || { echo "FAIL: mkfs.udaxfs"; exit 1; }
mkdir -p "$P.mnt"
"$top_builddir/udaxfs" -f "$P.img" "$P.mnt" -o io_uring,timeout=0 &
pid=$!
i=0
while [ "$(uring_cq $pid)" = -1 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
c0=$(uring_cq $pid)
for i in $(seq 1 20); do stat "$P.mnt" >/dev/null; done
c1=$(uring_cq $pid)
fusermount3 -u "$P.mnt"
wait $pid
if [ "$c0" = -1 ] || [ $((c1 - c0)) -lt 20 ]; then
	echo "FAIL: the probe mount did not serve over io_uring (completions $c0 -> $c1)"
	exit 1
fi
echo "ok: probe: 20 stats, $((c1 - c0)) ring completions"

UDAX_TEST_MOUNT_OPTS=io_uring
export UDAX_TEST_MOUNT_OPTS
(rerun io_uring dma_coherence dma_security dma_truncate_wait dma_pin_munmap dma_kill \
	dma_eintr dma_503 dma_protocol \
	status_pins.sh status_waiters.sh preload_semantics.sh preload_pmem2.sh preload_pmempool.sh \
	preload_pin.sh preload_race.sh preload_fork.sh daemon_loss.sh preload_rw.sh preload_rw_recall.sh \
	stale_shim.sh stale_rings.sh stale_fork.sh stale_recall.sh)
r1=$?
UDAX_TEST_MOUNT_OPTS=io_uring,writeback_cache
(rerun io_uring,writeback_cache dma_coherence dma_truncate_wait dma_eintr preload_semantics.sh)
r2=$?
[ $r1 = 1 ] || [ $r2 = 1 ] && exit 1
[ $r1 = 77 ] && [ $r2 = 77 ] && exit 77
exit 0
