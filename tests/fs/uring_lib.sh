# tests/fs/uring_lib.sh - sourced by the io_uring transport tests
# (tests/fs/uring.sh, tests/dma/uring.sh).
#
#   uring_enable    skip (77) when this kernel has no FUSE over io_uring,
#                   or the module parameter is off and we are not root;
#                   as root, set the parameter (saying so) and restore it
#                   on exit.  Holds a lock for the whole test so that two
#                   io_uring tests never change the parameter under each
#                   other.
#   uring_param Y|N set the parameter (root, after uring_enable)
#   uring_cq PID    completions the daemon's rings have posted (sum of the
#                   CqTail of every io_uring descriptor it holds), or -1
#                   when it holds none
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_SAVED=""

uring_restore() {
	[ -n "$URING_SAVED" ] || return 0
	echo "$URING_SAVED" >"$URING_PARAM" 2>/dev/null &&
		echo "restored $URING_PARAM=$URING_SAVED"
	URING_SAVED=""
}

uring_enable() {
	local cur
	if [ ! -e "$URING_PARAM" ]; then
		echo "SKIP: this kernel has no FUSE over io_uring ($URING_PARAM is missing)"
		exit 77
	fi
	# one io_uring test at a time on this machine (the parameter is global)
	exec 8>/dev/shm/udax-uring-param.lock
	flock 8
	cur=$(cat "$URING_PARAM")
	if [ "$cur" != Y ]; then
		if [ "$(id -u)" != 0 ]; then
			echo "SKIP: $URING_PARAM is $cur and only root may set it"
			exit 77
		fi
		URING_SAVED=$cur
		echo "setting $URING_PARAM=Y for this test (restored to $cur at exit)"
		echo Y >"$URING_PARAM" || { echo "FAIL: cannot set $URING_PARAM"; exit 1; }
	fi
}

uring_param() {
	[ -n "$URING_SAVED" ] || URING_SAVED=$(cat "$URING_PARAM")
	echo "$1" >"$URING_PARAM"
}

uring_cq() {
	local pid=$1 fd sum=-1 t
	for fd in /proc/"$pid"/fd/*; do
		case $(readlink "$fd" 2>/dev/null) in
		*io_uring*)
			t=$(awk '$1 == "CqTail:" { print $2 }' /proc/"$pid"/fdinfo/"${fd##*/}")
			[ $sum = -1 ] && sum=0
			sum=$((sum + ${t:-0}))
			;;
		esac
	done
	echo $sum
}
