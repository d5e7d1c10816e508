#!/bin/sh
# man-options: each program's man page and its --help name the same
# options.  Every option --help lists (and, for udaxfs, every -o mount
# option) appears in the page; every option the page lists in an option
# tag (.TP/.TQ) is one --help knows.  The pages are read as roff source,
# so no formatter is needed.  The negative control runs the same check on
# a --help that names an option no page documents, and on a page tag that
# no --help knows, and must see both.
set -u
B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
rc=0
fail() { echo "FAIL: $*"; rc=1; }
tmp=$(mktemp -d /tmp/udax-man-options.XXXXXX) || exit 99
trap 'rm -rf "${tmp:?}"' EXIT

# plain PAGE: the page's text without roff escapes or macro names
plain() {
	sed -e 's/\\f[BIRP]//g; s/\\-/-/g; s/\\ / /g; s/\\(lq//g; s/\\(rq//g; s/\\c//g' \
	    -e 's/^\.[A-Za-z]* *//; s/"//g' "$1"
}

# tags PAGE: the option names in the page's .TP/.TQ tags, one a line
tags() {
	sed -e 's/\\f[BIRP]//g; s/\\-/-/g; s/\\ / /g' "$1" |
		awk '/^\.T[PQ]/ { t = 1; next } t { print; t = 0 }' |
		sed -e 's/^\.[A-Za-z]* *//; s/"//g' |
		grep -oE '(^|[ ,|[])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[ ,|[]//' | sort -u
}

# helpopts FILE: the options a --help text lists (its option lines and
# the bracketed ones of its Usage lines), one a line
helpopts() {
	{
		grep -E '^ +-' "$1" | sed -E 's/^ +//; s/   .*//; s/ [a-z].*//'
		grep -E '^(Usage: |       udaxctl)' "$1" | grep -oE '\[--?[A-Za-z][^] ]*' | tr -d '['
	} | grep -oE '(^|[ ,|])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[ ,|]//' | sort -u
}

# mountopts FILE: the -o options udaxfs --help lists, one a line
mountopts() {
	sed -n '/^  -o OPTIONS/,/^$/p' "$1" | grep -E '^     [a-z_]' | grep -v '^     and ' |
		sed -E 's/^ +//; s/   .*//' | tr ',' '\n' | sed -E 's/^ +//; s/=.*//; s/ .*//' |
		grep . | sort -u
}

# check PAGE HELP...: every HELP option in PAGE, every PAGE tag in a HELP
check() {
	page=$1; shift
	cat "$@" > "$tmp/help"
	plain "$page" > "$tmp/page"
	helpopts "$tmp/help" > "$tmp/hopts"
	tags "$page" > "$tmp/tags"
	n=0
	while read -r o; do
		n=$((n + 1))
		grep -q -e "\(^\|[^A-Za-z0-9-]\)$o\([^A-Za-z0-9-]\|$\)" "$tmp/page" ||
			fail "${page##*/}: does not document $o (its --help lists it)"
	done < "$tmp/hopts"
	while read -r o; do
		grep -qx -e "$o" "$tmp/hopts" ||
			fail "${page##*/}: documents $o, which --help does not list"
	done < "$tmp/tags"
	[ $n -gt 2 ] || fail "${page##*/}: only $n options found in --help: the parser is broken"
}

h() { out=$tmp/h.$#.$(echo "$*" | tr ' /' '__'); "$@" --help > "$out" 2>&1; echo "$out"; }

check "$S/man/udaxfs.8" "$(h "$B/udaxfs")"
check "$S/man/mkfs.udaxfs.8" "$(h "$B/mkfs.udaxfs")"
check "$S/man/fsck.udaxfs.8" "$(h "$B/fsck.udaxfs")"
check "$S/man/mount.udaxfs.8" "$(h "$B/mount.udaxfs")"
check "$S/man/udaxctl.8" "$(h "$B/udaxctl")" "$(h "$B/udaxctl" status)" \
	"$(h "$B/udaxctl" pin)" "$(h "$B/udaxctl" quarantine)" "$(h "$B/udaxctl" bench)" \
	"$(h "$B/udaxctl" bench truncate-dma)"

# udaxfs -o: every mount option --help names is in udaxfs(8)
"$B/udaxfs" --help > "$tmp/daemon"
mountopts "$tmp/daemon" > "$tmp/mopts"
[ "$(wc -l < "$tmp/mopts")" -gt 10 ] || fail "udaxfs --help: mount option list not found"
plain "$S/man/udaxfs.8" > "$tmp/page"
while read -r o; do
	grep -q -e "\(^\|[ ,]\)$o\(=\|[ ,]\|$\)" "$tmp/page" ||
		fail "udaxfs.8 does not document -o $o (udaxfs --help lists it)"
done < "$tmp/mopts"

# negative control: an undocumented option and a tag --help does not know
before=$rc; rc=0
printf 'Usage: prog [-q] [--frobnicate]\n  -q, --quiet   q\n  -h, --help    h\n' > "$tmp/fake-help"
printf '.TH X 8\n.SH OPTIONS\n.TP\n.BR \\-q ", " \\-\\-quiet\nq\n.TP\n.B \\-h\nh\n.TP\n.B \\-\\-help\nh\n.TP\n.B \\-\\-stale\ns\n' > "$tmp/fake.8"
check "$tmp/fake.8" "$tmp/fake-help" > "$tmp/control"
grep -q 'does not document --frobnicate' "$tmp/control" ||
	{ echo "FAIL (control): an option missing from the page went unseen"; before=1; }
grep -q 'documents --stale' "$tmp/control" ||
	{ echo "FAIL (control): a page option --help does not know went unseen"; before=1; }
[ "$(grep -c FAIL "$tmp/control")" = 2 ] ||
	{ echo "FAIL (control): unexpected findings: $(cat "$tmp/control")"; before=1; }
rc=$before

[ $rc = 0 ] && echo "man-options: all passed"
exit $rc
