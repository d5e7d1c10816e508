#!/bin/sh
# man-lint: every man page in man/ must render with no warnings under
# groff -ww and mandoc -Tlint (style notes are allowed), and every
# section 3 page has a RETURN VALUE section.  Skips (77) only
# when neither tool is installed.
set -u
src=${top_srcdir:-$(dirname "$0")/..}
have_groff=0; have_mandoc=0
command -v groff >/dev/null 2>&1 && have_groff=1
command -v mandoc >/dev/null 2>&1 && have_mandoc=1
if [ $have_groff = 0 ] && [ $have_mandoc = 0 ]; then
	echo "SKIP: neither groff nor mandoc is installed"; exit 77
fi
rc=0; n=0
for page in "$src"/man/*.[1-8]; do
	[ -f "$page" ] || continue
	n=$((n + 1))
	if [ $have_groff = 1 ]; then
		out=$(groff -ww -z -man -Tutf8 "$page" 2>&1)
		if [ -n "$out" ]; then echo "FAIL groff: $page"; echo "$out"; rc=1; fi
	fi
	# a library function's page says what it returns
	case $page in *.3)
		grep -q '^\.SH RETURN VALUE' "$page" || { echo "FAIL: $page has no RETURN VALUE section"; rc=1; }
	esac
	if [ $have_mandoc = 1 ]; then
		# WARNING and above fail; STYLE messages are informational.
		out=$(mandoc -Tlint -W warning "$page" 2>&1)
		if [ -n "$out" ]; then echo "FAIL mandoc: $page"; echo "$out"; rc=1; fi
	fi
done
if [ $n = 0 ]; then echo "FAIL: no man pages found in $src/man"; exit 1; fi
echo "linted $n man pages"
exit $rc
