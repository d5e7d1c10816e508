#!/bin/sh
# unit-hardening: the restrictions contrib/udaxfs@.service puts on the
# daemon leave it working.  Without systemd as PID 1 the unit cannot be
# started here, so this applies what can be applied by hand and checks the
# rest against a trace:
#   - the unit's CapabilityBoundingSet and NoNewPrivileges (setpriv): the
#     daemon mounts, serves FUSE, answers on its abstract socket (udaxctl
#     status), grants and recalls an io_uring pin (udaxctl pin, truncate);
#     pidfd_getfd of another user's descriptor, and reading their
#     /proc/PID/fd and fdinfo (how the daemon finds the rings), work inside
#     that bounding set;
#   - under strace, every system call the daemon made is in the unit's
#     SystemCallFilter (as systemd-analyze syscall-filter expands it), every
#     socket is AF_UNIX (RestrictAddressFamilies), no mapping is writable
#     and executable (MemoryDenyWriteExecute), no namespace is created
#     (RestrictNamespaces), every device opened is in DeviceAllow or
#     DevicePolicy=closed's list.
# Negative controls: without CAP_SYS_ADMIN in the bounding set the mount
# fails, without CAP_SYS_PTRACE pidfd_getfd of another user's descriptor
# fails, without CAP_DAC_READ_SEARCH their /proc/PID/fd cannot be listed:
# the restrictions applied here are real and each capability is needed.
# Skips (77) when not root or without /dev/fuse, setpriv, strace or
# systemd-analyze.
set -u
B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
unit=$B/contrib/udaxfs@.service
[ "$(id -u)" = 0 ] || { echo "SKIP: not root"; exit 77; }
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
for t in setpriv strace systemd-analyze; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t is not installed"; exit 77; }
done
[ -f "$unit" ] || { echo "FAIL: $unit was not generated"; exit 1; }
rc=0
fail() { echo "FAIL: $*"; rc=1; }
tmp=$(mktemp -d /tmp/udax-unit-hardening.XXXXXX) || exit 99
img=/dev/shm/udax-unit-hardening-$$.img
mnt=$tmp/mnt
dpid=""
cleanup() {
	grep -qs " $mnt " /proc/self/mounts && { fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt"; }
	[ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null
	[ -n "${holder:-}" ] && kill -9 "$holder" 2>/dev/null
	rm -rf "$tmp" "$img"
}
trap cleanup EXIT
mkdir -p "$mnt"

# the unit's own settings
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
filter=$(sed -n 's/^SystemCallFilter=//p' "$unit")
[ -n "$caps" ] && [ -n "$filter" ] || { echo "FAIL: the unit sets no CapabilityBoundingSet or SystemCallFilter"; exit 1; }
grep -q '^NoNewPrivileges=yes' "$unit" || fail "the unit lacks NoNewPrivileges=yes"
bset=-all
for c in $caps; do
	bset="$bset,+$(echo "${c#CAP_}" | tr 'A-Z' 'a-z')"
done
echo "bounding set from the unit: $caps ($bset)"
restricted() { setpriv --bounding-set="$bset" --inh-caps=-all --no-new-privs "$@"; }

"$B/mkfs.udaxfs" -q -s 64M "$img" || { echo "FAIL: mkfs"; exit 1; }

# negative control: no CAP_SYS_ADMIN, no mount
setpriv --bounding-set="$(echo "$bset" | sed 's/,+sys_admin//')" --inh-caps=-all --no-new-privs \
	"$B/udaxfs" "$img" "$mnt" > "$tmp/ctl.out" 2>&1 && {
	fail "the daemon mounted without CAP_SYS_ADMIN: setpriv restricts nothing here"
	fusermount3 -u "$mnt"; }

# the daemon under the unit's restrictions, traced (LeakSanitizer cannot
# run under ptrace: in a sanitizer build, leaks are the unit tests' job)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
restricted strace -f -qq -o "$tmp/trace" "$B/udaxfs" -f "$img" "$mnt" -o allow_other \
	> "$tmp/daemon.out" 2>&1 &
dpid=$!
i=0
until grep -qs " $mnt " /proc/self/mounts; do
	sleep 0.1; i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $dpid 2>/dev/null; then
		echo "FAIL: the restricted daemon did not mount"; cat "$tmp/daemon.out"; exit 1
	fi
done
echo hello > "$mnt/f" && [ "$(cat "$mnt/f")" = hello ] || fail "FUSE read/write"
mkdir "$mnt/d" && mv "$mnt/f" "$mnt/d/g" && rm -r "$mnt/d" || fail "FUSE namespace operations"
"$B/udaxctl" status "$mnt" > "$tmp/status.out" 2>&1 || fail "udaxctl status (abstract socket): $(cat "$tmp/status.out")"
head -c 1048576 /dev/zero > "$mnt/p"
"$B/udaxctl" pin "$mnt/p" --seconds 20 > "$tmp/pin.out" 2>&1 &
holder=$!
i=0
until grep -qs '^pinned' "$tmp/pin.out"; do
	sleep 0.1; i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $holder 2>/dev/null; then
		fail "udaxctl pin under the restricted daemon: $(cat "$tmp/pin.out")"; break
	fi
done
truncate -s 0 "$mnt/p" || fail "truncate of a pinned file"
wait $holder
grep -q "^recalled" "$tmp/pin.out" || fail "the pin was not recalled: $(cat "$tmp/pin.out")"
holder=""
fusermount3 -u "$mnt" || fail "unmount"
wait $dpid || fail "the daemon exited with $?: $(cat "$tmp/daemon.out")"
dpid=""

# pidfd_getfd of another user's descriptor, inside the bounding set
setpriv --reuid=65534 --regid=65534 --clear-groups sleep 30 < /dev/null &
victim=$!
sleep 0.2
restricted "$B/tests/tools/pidfd_getfd_probe" $victim 0 > "$tmp/probe.out" 2>&1 ||
	fail "pidfd_getfd inside the unit's bounding set: $(cat "$tmp/probe.out")"
setpriv --bounding-set="$(echo "$bset" | sed 's/,+sys_ptrace//')" --inh-caps=-all --no-new-privs \
	"$B/tests/tools/pidfd_getfd_probe" $victim 0 > "$tmp/probe2.out" 2>&1 &&
	fail "pidfd_getfd of another user's descriptor worked without CAP_SYS_PTRACE (control)"
# ... and the ring discovery's reads: /proc/PID/fd (CAP_DAC_READ_SEARCH)
# and /proc/PID/fdinfo (CAP_SYS_PTRACE) of another user's process
restricted sh -c "ls /proc/$victim/fd > /dev/null && cat /proc/$victim/fdinfo/0 > /dev/null" \
	2> "$tmp/proc.err" || fail "reading another user's /proc/PID/fd{,info}: $(cat "$tmp/proc.err")"
setpriv --bounding-set="$(echo "$bset" | sed 's/,+dac_read_search//')" --inh-caps=-all \
	--no-new-privs ls /proc/$victim/fd > /dev/null 2>&1 &&
	fail "another user's /proc/PID/fd listed without CAP_DAC_READ_SEARCH (control)"
kill $victim; wait $victim 2>/dev/null

# the trace against the unit's other settings
systemd-analyze syscall-filter > "$tmp/groups" 2>/dev/null || { echo "FAIL: systemd-analyze syscall-filter"; exit 1; }
expand() {	# one filter item -> syscall names
	case $1 in
	@*) awk -v g="$1" '/^@/ { in_g = ($1 == g) } in_g && /^    [a-z]/ { print $1 }
		in_g && /^    @/ { print $1 }' "$tmp/groups" ;;
	*) echo "$1" ;;
	esac
}
: > "$tmp/allowed"
todo=$filter
while [ -n "$todo" ]; do
	next=""
	for item in $todo; do
		grep -qx -- "$item" "$tmp/allowed" && continue
		echo "$item" >> "$tmp/allowed"
		case $item in @*) next="$next $(expand "$item" | tr '\n' ' ')";; esac
	done
	todo=$next
done
sed -n 's/^[0-9]\{1,\} \{1,\}\([a-z_0-9]\{1,\}\)(.*/\1/p' "$tmp/trace" | sort -u > "$tmp/used"
[ -s "$tmp/used" ] || fail "the trace is empty"
outside=$(grep -vxF -f "$tmp/allowed" "$tmp/used" | tr '\n' ' ')
[ -z "$outside" ] || fail "system calls outside SystemCallFilter=$filter: $outside"
bad=$(grep -o 'socket(AF_[A-Z0-9]*' "$tmp/trace" | grep -v 'AF_UNIX' | sort -u | tr '\n' ' ')
[ -z "$bad" ] || fail "sockets other than AF_UNIX: $bad"
grep -E 'PROT_WRITE\|PROT_EXEC|PROT_READ\|PROT_WRITE\|PROT_EXEC' "$tmp/trace" > "$tmp/wx" &&
	fail "a writable and executable mapping: $(head -1 "$tmp/wx")"
grep -E '(unshare|setns|clone3?)\(.*CLONE_NEW' "$tmp/trace" > "$tmp/ns" &&
	fail "a namespace created: $(head -1 "$tmp/ns")"
devs=$(grep -o 'open[a-z]*([^"]*"/dev/[^"]*"' "$tmp/trace" | sed 's/.*"\(\/dev\/[^"]*\)"/\1/' | sort -u)
for d in $devs; do
	case $d in
	/dev/fuse|/dev/dax*|/dev/null|/dev/zero|/dev/full|/dev/random|/dev/urandom|/dev/tty|/dev/ptmx) ;;
	/dev/shm/*|/dev/pts/*) ;;
	*) fail "opened $d, which DeviceAllow does not allow" ;;
	esac
done
echo "system calls used: $(wc -l < "$tmp/used"); devices opened: $(echo $devs)"

score=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security --offline: exposure $score"
[ $rc = 0 ] && echo "unit-hardening: all passed"
exit $rc
