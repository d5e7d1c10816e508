# Unit tests of the ufs.h layer: every operation and its error
# codes, remount persistence, orphan reclaim after a simulated crash,
# break_layouts on every freeing path, an fsx-like model check, and a
# 100k-entry directory.  Emulation files live in /dev/shm (udax-ufs-*).
UFS_TEST_CFLAGS = $(AM_CFLAGS) $(PMEM2_CFLAGS)
UFS_TEST_LDADD = libudax-core.la
EXTRA_DIST += tests/unit/test_ufs.h

check_PROGRAMS += tests/unit/test_ufs tests/unit/test_ufs_fsx tests/unit/test_ufs_bigdir \
	tests/unit/test_ufs_mt
TESTS += tests/unit/test_ufs tests/unit/test_ufs_fsx tests/unit/test_ufs_bigdir \
	tests/unit/test_ufs_mt
tests_unit_test_ufs_SOURCES = tests/unit/test_ufs.c tests/unit/test_ufs.h
tests_unit_test_ufs_CFLAGS = $(UFS_TEST_CFLAGS)
# the checker library: test_unmount_corrupt_orphan runs fsck -n/-y on its image
tests_unit_test_ufs_CPPFLAGS = $(AM_CPPFLAGS)
tests_unit_test_ufs_LDADD = libudax-fsck.la $(UFS_TEST_LDADD)
tests_unit_test_ufs_fsx_SOURCES = tests/unit/test_ufs_fsx.c tests/unit/test_ufs.h
tests_unit_test_ufs_fsx_CFLAGS = $(UFS_TEST_CFLAGS)
tests_unit_test_ufs_fsx_LDADD = $(UFS_TEST_LDADD)
tests_unit_test_ufs_bigdir_SOURCES = tests/unit/test_ufs_bigdir.c tests/unit/test_ufs.h
tests_unit_test_ufs_bigdir_CFLAGS = $(UFS_TEST_CFLAGS)
tests_unit_test_ufs_bigdir_LDADD = $(UFS_TEST_LDADD)
tests_unit_test_ufs_mt_SOURCES = tests/unit/test_ufs_mt.c tests/unit/test_ufs.h
tests_unit_test_ufs_mt_CFLAGS = $(UFS_TEST_CFLAGS)
tests_unit_test_ufs_mt_LDADD = $(UFS_TEST_LDADD)

# A directory at every growth step, checked by fsck (needs the checker library).
check_PROGRAMS += tests/unit/test_dir_fsck
TESTS += tests/unit/test_dir_fsck
tests_unit_test_dir_fsck_SOURCES = tests/unit/test_dir_fsck.c tests/unit/test_ufs.h
tests_unit_test_dir_fsck_CFLAGS = $(UFS_TEST_CFLAGS)
tests_unit_test_dir_fsck_CPPFLAGS = $(AM_CPPFLAGS)
tests_unit_test_dir_fsck_LDADD = libudax-fsck.la $(UFS_TEST_LDADD)
