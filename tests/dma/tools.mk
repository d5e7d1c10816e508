# Tests of udaxctl status, the LD_PRELOAD shim and the truncate-dma bench.
check_PROGRAMS += tests/dma/preload_pmem2 tests/dma/preload_semantics
tests_dma_preload_semantics_SOURCES = tests/dma/preload_semantics.c
tests_dma_preload_pmem2_SOURCES = tests/dma/preload_pmem2.c
tests_dma_preload_pmem2_CFLAGS = $(AM_CFLAGS) $(PMEM2_CFLAGS)
tests_dma_preload_pmem2_LDADD = $(PMEM2_LIBS)
TESTS += tests/dma/status_pins.sh tests/dma/status_waiters.sh tests/dma/preload_pmem2.sh tests/dma/preload_pmempool.sh \
	tests/dma/preload_semantics.sh \
	tests/dma/bench_policies.sh
EXTRA_DIST += tests/dma/status_pins.sh tests/dma/status_waiters.sh tests/dma/preload_pmem2.sh tests/dma/preload_pmempool.sh \
	tests/dma/preload_semantics.sh \
	tests/dma/bench_policies.sh tests/dma/bench_common.sh

# udaxctl status against a stand-in daemon: valid and broken record streams.
check_PROGRAMS += tests/dma/status_fake
tests_dma_status_fake_SOURCES = tests/dma/status_fake.c
TESTS += tests/dma/status_fake.sh
EXTRA_DIST += tests/dma/status_fake.sh

# A recall reaches the layouts of its own file only (the per-inode index).
TESTS += tests/dma/recall_scope.sh
EXTRA_DIST += tests/dma/recall_scope.sh

# The shim's protocol client (wire.h): a recall racing a mapping, fork.
check_PROGRAMS += tests/dma/preload_race tests/dma/preload_fork
tests_dma_preload_race_SOURCES = tests/dma/preload_race.c
tests_dma_preload_race_CFLAGS = $(AM_CFLAGS)
tests_dma_preload_race_LDADD = libudaxwire.la -lpthread
tests_dma_preload_fork_SOURCES = tests/dma/preload_fork.c
TESTS += tests/dma/preload_race.sh tests/dma/preload_fork.sh
EXTRA_DIST += tests/dma/preload_race.sh tests/dma/preload_fork.sh

# The daemon's loss is a recall (libudax and the shim).
check_PROGRAMS += tests/dma/daemon_loss_client
tests_dma_daemon_loss_client_SOURCES = tests/dma/daemon_loss_client.c
tests_dma_daemon_loss_client_CFLAGS = $(AM_CFLAGS) $(URING_CFLAGS)
tests_dma_daemon_loss_client_LDADD = libudax.la $(URING_LIBS)
TESTS += tests/dma/daemon_loss.sh
EXTRA_DIST += tests/dma/daemon_loss.sh

# The shim declares the pins of an unmodified program (io_uring fixed buffers).
check_PROGRAMS += tests/dma/preload_pin
tests_dma_preload_pin_SOURCES = tests/dma/preload_pin.c
tests_dma_preload_pin_CFLAGS = $(AM_CFLAGS) $(URING_CFLAGS)
tests_dma_preload_pin_LDADD = libudaxwire.la $(URING_LIBS) -lpthread
TESTS += tests/dma/preload_pin.sh
EXTRA_DIST += tests/dma/preload_pin.sh
