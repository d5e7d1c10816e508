# Unit tests of the device layer, superblock/mkfs, journal and allocator
# (the lower layer).
FS_TEST_CFLAGS = $(AM_CFLAGS) $(PMEM2_CFLAGS)
FS_TEST_LDADD = libudax-core.la
EXTRA_DIST += tests/unit/test_helpers.h

check_PROGRAMS += tests/unit/test_media
TESTS += tests/unit/test_media
tests_unit_test_media_SOURCES = tests/unit/test_media.c tests/unit/test_helpers.h
tests_unit_test_media_CFLAGS = $(FS_TEST_CFLAGS)
tests_unit_test_media_LDADD = $(FS_TEST_LDADD)

check_PROGRAMS += tests/unit/test_super
TESTS += tests/unit/test_super
tests_unit_test_super_SOURCES = tests/unit/test_super.c tests/unit/test_helpers.h
tests_unit_test_super_CFLAGS = $(FS_TEST_CFLAGS)
tests_unit_test_super_LDADD = $(FS_TEST_LDADD)

check_PROGRAMS += tests/unit/test_journal
TESTS += tests/unit/test_journal
tests_unit_test_journal_SOURCES = tests/unit/test_journal.c tests/unit/test_helpers.h
tests_unit_test_journal_CFLAGS = $(FS_TEST_CFLAGS)
tests_unit_test_journal_LDADD = $(FS_TEST_LDADD)

check_PROGRAMS += tests/unit/test_alloc
TESTS += tests/unit/test_alloc
tests_unit_test_alloc_SOURCES = tests/unit/test_alloc.c tests/unit/test_helpers.h
tests_unit_test_alloc_CFLAGS = $(FS_TEST_CFLAGS)
tests_unit_test_alloc_LDADD = $(FS_TEST_LDADD)

TESTS += tests/unit/mkfs-tool.sh
EXTRA_DIST += tests/unit/mkfs-tool.sh
