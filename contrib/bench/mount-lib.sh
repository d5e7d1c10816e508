# contrib/bench/mount-lib.sh - sourced by the memory benchmarks: a fresh
# udaxfs in the foreground on an emulation file.
# bench_mount SIZE DIR: makes DIR/img of SIZE and mounts it on DIR/m
# (allow_other), the daemon's log in DIR/log; sets PID to the daemon's.
# Needs UDAXFS and MKFS set.
bench_mount() {
	"$MKFS" -q -s "$1" "$2/img"
	mkdir "$2/m"
	"$UDAXFS" -f "$2/img" "$2/m" -o allow_other 2>"$2/log" &
	PID=$!
	_i=0
	while ! awk -v m="$2/m" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; do
		_i=$((_i + 1)); [ $_i -lt 200 ] || { echo "mount failed"; cat "$2/log"; exit 1; }
		sleep 0.05
	done
}
