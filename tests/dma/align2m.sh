#!/bin/sh
# Regression test: direct access on a device whose mappings must be 2 MiB
# aligned (the default of a real device-DAX).  Runs the direct-access tests
# again with the emulation enforcing that alignment (-o emul_align=2M, set
# by the harness from UDAX_TEST_EMUL_ALIGN).  Exit: 0 all passed, 77 all
# skipped, 1 a failure.
. "${top_srcdir:-.}/tests/dma/rerun.sh"
UDAX_TEST_EMUL_ALIGN=2M
export UDAX_TEST_EMUL_ALIGN
rerun "emul_align=2M" dma_coherence dma_security dma_truncate_wait dma_eintr dma_pin_munmap
