# fsck.udaxfs.  The checker is a convenience library
# so the crash tests and the fuzzer run the very same code.
noinst_LTLIBRARIES += libudax-fsck.la
libudax_fsck_la_SOURCES = src/tools/fsck_check.h src/tools/fsck_int.h \
	src/tools/fsck_check.c src/tools/fsck_frame.c src/tools/fsck_super.c src/tools/fsck_inode.c \
	src/tools/fsck_dup.c src/tools/fsck_dir.c src/tools/fsck_connect.c \
	src/tools/fsck_count.c
sbin_PROGRAMS += fsck.udaxfs
fsck_udaxfs_SOURCES = src/tools/fsck.c src/tools/cli.h
fsck_udaxfs_CPPFLAGS = $(AM_CPPFLAGS)
fsck_udaxfs_LDADD = libudax-fsck.la libudax-core.la
dist_man_MANS += man/fsck.udaxfs.8
