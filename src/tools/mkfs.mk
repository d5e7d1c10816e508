# mkfs.udaxfs and the format/mkfs man pages.
sbin_PROGRAMS += mkfs.udaxfs
mkfs_udaxfs_SOURCES = src/tools/mkfs.c src/tools/cli.h
mkfs_udaxfs_CFLAGS = $(AM_CFLAGS) $(PMEM2_CFLAGS)
mkfs_udaxfs_LDADD = libudax-core.la
dist_man_MANS += man/udaxfs.5 man/mkfs.udaxfs.8
