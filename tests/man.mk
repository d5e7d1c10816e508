# Every installed man page is linted (mandoc -Tlint, groff -ww).
TESTS += tests/man-lint.sh
EXTRA_DIST += tests/man-lint.sh
