# CRC32C: known answers for the instruction and the table code.
check_PROGRAMS += tests/unit/test_crc32c
TESTS += tests/unit/test_crc32c
tests_unit_test_crc32c_SOURCES = tests/unit/test_crc32c.c tests/unit/test_helpers.h
tests_unit_test_crc32c_LDADD = libudax-core.la

# format.h's compile-time checks (byte order, struct sizes and offsets).
TESTS += tests/unit/format-asserts.sh
EXTRA_DIST += tests/unit/format-asserts.sh
AM_TESTS_ENVIRONMENT += UDAX_CC='$(CC)'; export UDAX_CC;

# tests/harness.h: failed checks are printed and counted, REQUIRE stops, skips exit 77.
check_PROGRAMS += tests/unit/test_harness
TESTS += tests/unit/test_harness
tests_unit_test_harness_SOURCES = tests/unit/test_harness.c tests/harness.h
