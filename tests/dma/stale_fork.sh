#!/bin/sh
# Stale DMA from a ring that outlives its client: a forked child keeps
# READ_FIXED in flight on the inherited ring, or another process took the
# ring with pidfd_getfd(2); the client is SIGKILLed and the daemon must
# revoke the buffer through its own reference to the ring.  Each with its
# negative control.
. "${top_srcdir:-.}/tests/dma/stale_common.sh"
stale default fork 10
stale default getfd 10
stale_exit
