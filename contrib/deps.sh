#!/bin/bash
# deps.sh - install what udaxfs needs to build, run and test on Debian 12.
# Sourced by quickstart.sh and test.sh; safe to run twice.  Needs root.
#   deps.sh build   - the build and runtime packages
#   deps.sh test    - those plus everything the test suite uses
set -euo pipefail

build_pkgs=(build-essential autoconf automake libtool pkg-config
	libfuse3-dev fuse3 liburing-dev libpmem2-dev libnuma-dev libdaxctl-dev libjson-c-dev)
test_pkgs=(groff mandoc clang libclang-rt-14-dev fio pmdk-tools jq gnuplot-nox
	util-linux procps attr psmisc strace systemd
	qemu-system-x86 busybox-static ndctl daxctl cpio kmod xz-utils zstd bc)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps.sh: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "==> installing: ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# /dev/fuse must exist for mounts (it does on Debian with the fuse module or built-in)
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
