#!/bin/sh
# Regression test: direct access on a device whose mappings must be 2 MiB
# aligned (the default of a real device-DAX).  Runs the direct-access tests
# again with the emulation enforcing that alignment (-o emul_align=2M, set
# by the harness from UDAX_TEST_EMUL_ALIGN).  Exit: 0 all passed, 77 all
# skipped, 1 a failure.
b=${top_builddir:-.}
UDAX_TEST_EMUL_ALIGN=2M
export UDAX_TEST_EMUL_ALIGN
fail=0 ran=0
for t in dma_coherence dma_security dma_truncate_wait dma_eintr dma_pin_munmap; do
	echo "== $t (emul_align=2M)"
	"$b/tests/dma/$t"
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
