#!/bin/sh
# Stale DMA from a client that does not drain on recall: a NULL recall
# handler (libudax unregisters and returns the layout with READ_FIXED still
# pending on a pipe), and a handler that returns without reaping.  Each with
# its negative control.
. "${top_srcdir:-.}/tests/dma/stale_common.sh"
stale default nullh 10
stale default noreap 10
stale_exit
