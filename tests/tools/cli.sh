#!/bin/sh
# cli: every installed program and udaxctl subcommand answers --help and
# --version (and -h, -V) the GNU way: help on standard output starting
# "Usage:", exit 0; the version as "PROG (udaxfs) VERSION" on the first
# line, exit 0; nothing on standard error.  A bad option fails with a
# usage message on standard error.  udaxctl pin --help lists its options.
# mount.udaxfs turns mount(8)'s calling convention into udaxfs's (checked
# with a stand-in daemon that records its arguments).
set -u
B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
V=${UDAX_VERSION:?UDAX_VERSION is set by make check}
rc=0
tmp=$(mktemp -d /tmp/udax-cli.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; rc=1; }

# check_prog NAME COMMAND...: NAME is what --version must print first
check_prog() {
	name=$1; shift
	before=$rc; rc=0
	for h in --help -h; do
		"$@" $h >"$tmp/out" 2>"$tmp/err"; st=$?
		[ $st = 0 ] || fail "$* $h exits $st"
		[ -s "$tmp/err" ] && fail "$* $h writes to stderr: $(head -1 "$tmp/err")"
		head -1 "$tmp/out" | grep -q '^Usage: ' || fail "$* $h: first line is not 'Usage: ...': $(head -1 "$tmp/out")"
		grep -q 'usage:' "$tmp/out" && fail "$* $h spells 'usage:' in lower case"
		grep -q -- '--version' "$tmp/out" || fail "$* $h does not mention --version"
	done
	for v in --version -V; do
		"$@" $v >"$tmp/out" 2>"$tmp/err"; st=$?
		[ $st = 0 ] || fail "$* $v exits $st"
		[ -s "$tmp/err" ] && fail "$* $v writes to stderr: $(head -1 "$tmp/err")"
		[ "$(head -1 "$tmp/out")" = "$name (udaxfs) $V" ] ||
			fail "$* $v: '$(head -1 "$tmp/out")', not '$name (udaxfs) $V'"
	done
	"$@" --no-such-option >"$tmp/out" 2>"$tmp/err"; st=$?
	[ $st = 0 ] && fail "$* --no-such-option exits 0"
	grep -q '^Usage: \|see .*--help\|see .* -h' "$tmp/err" || fail "$* --no-such-option: no usage on stderr"
	[ $rc = 0 ] && echo "ok: $*"
	[ $before = 0 ] || rc=$before
}

check_prog udaxfs "$B/udaxfs"
check_prog mkfs.udaxfs "$B/mkfs.udaxfs"
check_prog fsck.udaxfs "$B/fsck.udaxfs"
check_prog mount.udaxfs "$B/mount.udaxfs"
check_prog udaxctl "$B/udaxctl"
check_prog udaxctl "$B/udaxctl" status
check_prog udaxctl "$B/udaxctl" pin
check_prog udaxctl "$B/udaxctl" bench
check_prog udaxctl "$B/udaxctl" bench truncate-dma
check_prog udaxctl "$B/udaxctl" quarantine

# fsck(8)'s convention: a usage error is exit 16
"$B/fsck.udaxfs" --no-such-option >/dev/null 2>&1; st=$?
[ $st = 16 ] || fail "fsck.udaxfs --no-such-option exits $st, not 16"

# -t names the file system type (mkfs(8), fsck(8) and mount(8) may pass it
# through): udaxfs and FUSE's spellings of it go on, another type is refused
# before anything is touched, with a usage-error exit and a clear message.
"$B/fsck.udaxfs" -t ext4 -n "$tmp/none.img" >/dev/null 2>"$tmp/err"; st=$?
[ $st = 16 ] || fail "fsck.udaxfs -t ext4 exits $st, not 16"
grep -q "fsck.udaxfs: -t ext4: this program handles udaxfs only" "$tmp/err" ||
	fail "fsck.udaxfs -t ext4: no clear error: $(cat "$tmp/err")"
"$B/mkfs.udaxfs" -t ext4 -s 64M "$tmp/none.img" >/dev/null 2>"$tmp/err"; st=$?
[ $st = 1 ] || fail "mkfs.udaxfs -t ext4 exits $st, not 1"
grep -q "mkfs.udaxfs: -t ext4: this program handles udaxfs only" "$tmp/err" ||
	fail "mkfs.udaxfs -t ext4: no clear error: $(cat "$tmp/err")"
[ -e "$tmp/none.img" ] && fail "mkfs.udaxfs -t ext4 created its device file"
for t in udaxfs fuse.udaxfs; do
	"$B/fsck.udaxfs" -t $t --version >/dev/null 2>&1 || fail "fsck.udaxfs -t $t refused"
	"$B/mkfs.udaxfs" -t $t --version >/dev/null 2>&1 || fail "mkfs.udaxfs -t $t refused"
done

# udaxctl pin --help lists every option it takes
"$B/udaxctl" pin --help > "$tmp/pin"
for o in --offset --length --seconds --ignore-recall --help --version; do
	grep -q -- "$o" "$tmp/pin" || fail "udaxctl pin --help does not list $o"
done
"$B/udaxctl" pin --offset banana f 2>&1 | grep -q -- "--offset banana: not a size" ||
	fail "udaxctl pin --offset banana: no clear error"

# No program, test program or script spells "usage:" in lower case.
if grep -rn '"usage: \|# usage: \|?usage: ' "$S/src" "$S/tests" "$S/contrib" | grep -v 'tests/tools/cli.sh' > "$tmp/grep"; then
	fail "lower-case usage: in $(cut -d: -f1,2 "$tmp/grep" | tr '\n' ' ')"
fi

# mount.udaxfs: mount(8) -> udaxfs calling convention, with a stand-in daemon
cat > "$tmp/fake-udaxfs" <<EOS
#!/bin/sh
printf '%s\n' "\$@" > "$tmp/args"
exit 7
EOS
chmod +x "$tmp/fake-udaxfs"
UDAXFS_DAEMON=$tmp/fake-udaxfs "$B/mount.udaxfs" /dev/dax9.9 /mnt/x -s -n -v \
	-o ro,allow_other,nofail -t fuse.udaxfs 2>"$tmp/err"; st=$?
[ $st = 7 ] || fail "mount.udaxfs does not return the daemon's exit status ($st, not 7)"
printf '%s\n' /dev/dax9.9 /mnt/x -o ro,allow_other,nofail > "$tmp/want"
cmp -s "$tmp/args" "$tmp/want" || fail "mount.udaxfs ran udaxfs with: $(tr '\n' ' ' < "$tmp/args" 2>/dev/null)"
grep -q "running: $tmp/fake-udaxfs /dev/dax9.9 /mnt/x -o ro,allow_other,nofail" "$tmp/err" ||
	fail "mount.udaxfs -v does not show the command: $(cat "$tmp/err")"
rm -f "$tmp/args"
UDAXFS_DAEMON=$tmp/fake-udaxfs "$B/mount.udaxfs" -f /dev/dax9.9 /mnt/x 2>/dev/null ||
	fail "mount.udaxfs -f fails"
[ -e "$tmp/args" ] && fail "mount.udaxfs -f ran the daemon"
UDAXFS_DAEMON=$tmp/fake-udaxfs "$B/mount.udaxfs" /dev/dax9.9 /mnt/x 2>/dev/null
[ "$(cat "$tmp/args" 2>/dev/null | wc -l)" = 2 ] || fail "mount.udaxfs without -o passes more than DEVICE MOUNTPOINT"
UDAXFS_DAEMON=$tmp/fake-udaxfs "$B/mount.udaxfs" /dev/dax9.9 /mnt/x -t ext4 2>"$tmp/err" && fail "-t ext4 accepted"
grep -q "udaxfs only" "$tmp/err" || fail "-t ext4: no clear error"
"$B/mount.udaxfs" /dev/dax9.9 2>"$tmp/err" && fail "mount.udaxfs without MOUNTPOINT succeeds"
grep -q "missing MOUNTPOINT" "$tmp/err" || fail "missing MOUNTPOINT: no clear error"
# without UDAXFS_DAEMON it runs the udaxfs next to itself (here: the build's)
"$B/mount.udaxfs" -f /dev/dax9.9 /mnt/x 2>&1 | grep -q "would run: $B/udaxfs " ||
	fail "mount.udaxfs does not pick the udaxfs in its own directory"

[ $rc = 0 ] && echo "cli: all passed"
exit $rc
