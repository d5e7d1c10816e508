# udaxctl: status, pins, quarantine and the benchmarks.
bin_PROGRAMS += udaxctl
udaxctl_SOURCES = src/tools/udaxctl.c src/tools/udaxctl.h src/tools/cli.h src/tools/udaxctl_util.c src/tools/udaxctl_status.c src/tools/udaxctl_pin.c \
	src/tools/bench_truncate.c src/tools/bench_truncate.h src/tools/bench_common.c \
	src/tools/bench_truncate_dma.c \
	src/tools/bench_mount.c src/tools/bench_stats.c src/tools/bench_futex.c \
	src/tools/bench_dma.c src/tools/udaxctl_quarantine.c \
	src/daemon/procscan.c src/daemon/procscan.h src/daemon/pinrec.c src/daemon/pinrec.h
udaxctl_CPPFLAGS = $(AM_CPPFLAGS)
udaxctl_CFLAGS = $(AM_CFLAGS) $(URING_CFLAGS) $(JSONC_CFLAGS) -DUDAX_PKGLIBEXECDIR='"$(pkglibexecdir)"' \
	-DUDAX_BINDIR='"$(bindir)"'
udaxctl_LDADD = libudax.la libudaxwire.la libudax-core.la $(URING_LIBS) $(JSONC_LIBS) -lm -lpthread
EXTRA_DIST += src/tools/bench_dma_none.c

# libudax-preload.so: LD_PRELOAD shim giving unmodified programs direct
# mappings of udaxfs files.  Its source lives with the library.  It
# places its mappings itself (see preload.c for why), so its mmap side does
# not use libudax; its protocol traffic goes through wire.h.  Its
# read()/write() serving (preload_io.c) uses libudax's udax_file, whose
# recalls arrive through libudax's own wire connection.
lib_LTLIBRARIES += libudax-preload.la
libudax_preload_la_SOURCES = src/lib/preload.c src/lib/preload_mmap.c src/lib/preload_uring.c \
	src/lib/preload_int.h src/lib/preload_io.c
libudax_preload_la_CPPFLAGS = $(AM_CPPFLAGS)
libudax_preload_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(URING_CFLAGS)
libudax_preload_la_LIBADD = libudaxwire.la libudax.la -ldl -lpthread
libudax_preload_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -no-undefined

# libfuse's passthrough_ll, the no-DMA peer the bench compares against.  Built
# from the example libfuse3-dev installs (never copied into this tree); the
# HAVE_* defines are what its own build sets, or it drops those operations.
# Installed in pkglibexecdir, where the installed udaxctl looks for it.
LIBFUSE_EXAMPLES ?= /usr/share/doc/libfuse3-dev/examples
pkglibexec_PROGRAMS += src/tools/bench-passthrough_ll
nodist_src_tools_bench_passthrough_ll_SOURCES = src/tools/bench-passthrough_ll.c
src_tools_bench_passthrough_ll_CPPFLAGS = -I$(LIBFUSE_EXAMPLES) -DHAVE_FALLOCATE -DHAVE_SETXATTR \
	-DHAVE_UTIMENSAT -DHAVE_COPY_FILE_RANGE -DHAVE_POSIX_FALLOCATE
src_tools_bench_passthrough_ll_CFLAGS = $(FUSE_CFLAGS) -w
src_tools_bench_passthrough_ll_LDADD = $(FUSE_LIBS) -lpthread
CLEANFILES += src/tools/bench-passthrough_ll.c
src/tools/bench-passthrough_ll.c:
	$(AM_V_GEN)$(MKDIR_P) src/tools; \
	if test -f $(LIBFUSE_EXAMPLES)/passthrough_ll.c; then \
		echo '#include "$(LIBFUSE_EXAMPLES)/passthrough_ll.c"' > $@; \
	else \
		printf '%s\n' '#include <stdio.h>' \
		'int main(void) { fputs("passthrough_ll.c (libfuse3-dev examples) was not available at build time\\n", stderr); return 77; }' > $@; \
	fi

dist_man_MANS += man/udaxctl.8 man/libudax-preload.7
