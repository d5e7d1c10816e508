#!/bin/sh
# format-asserts: format.h refuses to compile where its promises do not
# hold.  It compiles as is; it must fail on a big-endian host (simulated by
# redefining __BYTE_ORDER__) and when a field moves (simulated by growing
# a reserved array).  Each failure must name what is wrong.
set -u
src=${top_srcdir:-$(dirname "$0")/../..}
cc=${UDAX_CC:-cc}
tmp=$(mktemp -d /tmp/udax-format-asserts.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
printf '#include "format.h"\nint main(void) { return 0; }\n' > "$tmp/t.c"
rc=0
if ! $cc -std=gnu11 -fsyntax-only -I"$src/src/core" "$tmp/t.c" 2>"$tmp/err"; then
	echo "FAIL: format.h does not compile as is"; cat "$tmp/err"; rc=1
fi
if $cc -std=gnu11 -fsyntax-only -Wno-builtin-macro-redefined -U__BYTE_ORDER__ \
	-D__BYTE_ORDER__=__ORDER_BIG_ENDIAN__ -I"$src/src/core" "$tmp/t.c" 2>"$tmp/err"; then
	echo "FAIL: format.h compiles on a (simulated) big-endian host"; rc=1
elif ! grep -q "little-endian" "$tmp/err"; then
	echo "FAIL: the big-endian error does not say why"; cat "$tmp/err"; rc=1
fi
sed 's/uint64_t s_reserved\[32\];/uint64_t s_reserved[33];/' "$src/src/core/format.h" > "$tmp/format.h"
if cmp -s "$tmp/format.h" "$src/src/core/format.h"; then
	echo "FAIL: could not make the moved-field variant (s_reserved not found)"; rc=1
elif $cc -std=gnu11 -fsyntax-only -I"$tmp" "$tmp/t.c" 2>"$tmp/err"; then
	echo "FAIL: format.h compiles with a grown superblock"; rc=1
elif ! grep -q "superblock is 528 bytes" "$tmp/err"; then
	echo "FAIL: the grown-superblock error does not say why"; cat "$tmp/err"; rc=1
fi
[ $rc = 0 ] && echo "format.h: compiles; refuses big-endian and a moved field"
exit $rc
