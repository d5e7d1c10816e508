#!/bin/sh
# Stale DMA through rings a libudax client never declared: its map
# registered on a second ring of its own, and cloned into a second ring
# (IORING_REGISTER_CLONE_BUFFERS; skipped when the kernel lacks it).
# And a ring the daemon could not revoke (IORING_SETUP_SINGLE_ISSUER) is
# refused.  Each with its negative control.
. "${top_srcdir:-.}/tests/dma/stale_common.sh"
stale default ring2 10
stale default clone 10
stale default refuse 1
stale_exit
