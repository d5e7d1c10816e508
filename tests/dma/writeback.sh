#!/bin/sh
# The direct-access tests again with -o writeback_cache (set by the harness
# and h7_mount from UDAX_TEST_MOUNT_OPTS): the kernel then holds write()s
# dirty and owns the file size.  A grant must write those pages back before
# the client sees the range (dma_coherence step 5), a mapping past EOF must
# grow the file as the kernel sees it, and truncate must still wait for
# every pin with the kernel's write-back in the picture.
# Exit: 0 all passed, 77 all skipped, 1 a failure.
b=${top_builddir:-.}
s=${top_srcdir:-.}
UDAX_TEST_MOUNT_OPTS=writeback_cache
export UDAX_TEST_MOUNT_OPTS
fail=0 ran=0
for t in dma_coherence dma_security dma_truncate_wait dma_eintr dma_pin_munmap \
	preload_semantics.sh preload_pmem2.sh; do
	echo "== $t (writeback_cache)"
	case $t in
	*.sh) sh "$s/tests/dma/$t" ;;
	*) "$b/tests/dma/$t" ;;
	esac
	rc=$?
	case $rc in
	0) ran=$((ran + 1)) ;;
	77) echo "$t: skipped" ;;
	*) echo "$t: FAILED (exit $rc)"; fail=1 ;;
	esac
done
[ $fail -ne 0 ] && exit 1
[ $ran -eq 0 ] && exit 77
exit 0
