#!/bin/sh
# killpriv.sh - a write, truncate or chown drops privileges on udaxfs
# exactly as on tmpfs, and stat shows it at once.
#
# udaxfs negotiates FUSE_HANDLE_KILLPRIV_V2, so the kernel leaves these to
# the file system.  Bugs this catches:
#  - chown by a non-root owner of a FIFO, socket, character or block
#    device with mode 06555 kept setuid/setgid (tmpfs clears them for every
#    non-directory), and root's chown of a FIFO kept them too;
#  - a non-root write to a writable file carrying security.capability
#    failed (EIO) and the capability stayed; tmpfs lets the write succeed
#    and drops the capability;
#  - after a non-root write or O_TRUNC open of a 06777 file the bits were
#    cleared on the device but stat showed 6777 for up to a second (the
#    kernel's cached attributes were not invalidated).
# Every step runs on tmpfs and on udaxfs (allow_other; both write modes),
# as root with
# setpriv children for the non-root side; the transcripts must match.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fs/lib.sh"
M=$W/mnt
T=$W/tmpfs
U=4242

mkdir -p "$T"
if ! mount -t tmpfs -o size=8m "udax-fsck-tmpfs-$$" "$T" 2>/dev/null; then
	echo "SKIP: cannot mount a tmpfs to compare with (needs root)"
	exit 77
fi
MOUNTS="$MOUNTS $T"
command -v setcap >/dev/null && command -v getcap >/dev/null || {
	echo "SKIP: setcap/getcap missing"; exit 77; }

as_user() { setpriv --reuid=$U --regid=$U --clear-groups "$@"; }

# transcript DIR: run the steps in DIR, print what each left
transcript() {
	d=$1
	chmod 1777 "$d"
	# 6: chown by the non-root owner of special files, and by root of a FIFO
	mkfifo "$d/fifo"
	python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$d/sock"
	mknod "$d/chr" c 1 3
	mknod "$d/blk" b 7 0
	touch "$d/reg"
	for n in fifo sock chr blk reg; do
		chown $U:$U "$d/$n" && chmod 06555 "$d/$n"
		as_user chown $U:$U "$d/$n"
		echo "6 user chown $n: rc $? mode $(stat -c %a "$d/$n")"
	done
	mkfifo "$d/rootfifo"
	chmod 06555 "$d/rootfifo"
	chown 0:0 "$d/rootfifo"
	echo "6 root chown fifo: mode $(stat -c %a "$d/rootfifo")"
	# 7: a non-root write to a writable file with a capability
	echo data >"$d/capfile"
	chmod 0666 "$d/capfile"
	setcap cap_net_raw+ep "$d/capfile" || echo "7 setcap failed"
	echo "7 before: $(getcap "$d/capfile" | sed 's|.*capfile *||')"
	as_user sh -c "echo more >>'$d/capfile'"
	echo "7 user write: rc $? caps '$(getcap "$d/capfile" | sed 's|.*capfile *||')' size $(stat -c %s "$d/capfile")"
	# 8: what stat says right after a non-root write / O_TRUNC open of 06777
	echo data >"$d/suid"
	chmod 06777 "$d/suid"
	stat -c %a "$d/suid" >/dev/null	# the kernel caches 6777 now
	as_user sh -c "echo more >>'$d/suid'"
	echo "8 user write: rc $? mode $(stat -c %a "$d/suid")"
	echo data >"$d/suidt"
	chmod 06777 "$d/suidt"
	stat -c %a "$d/suidt" >/dev/null
	as_user sh -c ": >'$d/suidt'"
	echo "8 user O_TRUNC open: rc $? mode $(stat -c %a "$d/suidt")"
	echo data >"$d/suidx"
	chmod 06777 "$d/suidx"
	stat -c %a "$d/suidx" >/dev/null
	as_user truncate -s 2 "$d/suidx"
	echo "8 user truncate: rc $? mode $(stat -c %a "$d/suidx")"
	# root keeps its bits on write (it has CAP_FSETID)
	echo data >"$d/rootw"
	chmod 06777 "$d/rootw"
	echo more >>"$d/rootw"
	echo "8 root write: mode $(stat -c %a "$d/rootw")"
}

transcript "$T" >"$W/tmpfs.out" 2>&1
say "tmpfs:"
sed 's/^/  /' "$W/tmpfs.out"
for mode in "" writeback_cache; do
	new_image kp.img 64M
	mount_fs "$W/kp.img" "$M" "$mode" || { fail "mount ${mode:-default}"; continue; }
	transcript "$M" >"$W/udaxfs.out" 2>&1
	check "unmount" umount_fs "$M"
	if diff -u "$W/tmpfs.out" "$W/udaxfs.out" >"$W/diff"; then
		pass "udaxfs -o ${mode:-default} drops privileges as tmpfs does"
	else
		fail "udaxfs -o ${mode:-default} differs from tmpfs:"
		sed 's/^/  /' "$W/diff"
	fi
done
# the reference itself: tmpfs did clear what the kernel clears
check "control: tmpfs cleared the set-ID bits on a user's write" grep -q "^8 user write: rc 0 mode 777" "$W/tmpfs.out"
finish
