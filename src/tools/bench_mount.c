// SPDX-License-Identifier: MIT
/*
 * bench_mount.c - the mounts udaxctl bench truncate-dma makes: it runs the
 * helper programs (mkfs.udaxfs, udaxfs, fusermount3, the passthrough_ll
 * peer) and waits for their mounts; without a MOUNTPOINT it formats an
 * emulated device in /dev/shm and mounts udaxfs on it once per policy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_truncate.h"

int run_cmd(char *const argv[], bool quiet)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (quiet) {
			int nul = open("/dev/null", O_WRONLY);

			if (nul >= 0) {
				dup2(nul, 1);
				close(nul);
			}
		}
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	return 0;
}

int unmount_fuse(const char *mnt)
{
	char *fm = ctl_find_prog(NULL, "fusermount3", NULL);
	char *argv[] = { fm, "-u", "-z", (char *)mnt, NULL };
	int ret;

	if (!fm)
		return -ENOENT;
	ret = run_cmd(argv, true);
	free(fm);
	return ret;
}

/* The daemon forks away: its mount shows up a moment later. */
int wait_mounted(const char *mnt, const char *type)
{
	for (int i = 0; i < 500; i++) {
		char t[256] = "";

		ctl_is_udaxfs_mount(mnt, t, sizeof(t));
		if (strcmp(t, type) == 0)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

int self_mount(struct selfmount *sm, const char *policy)
{
	static const char *const sub[] = { "src/tools", "src/daemon", NULL };
	char *mkfs = ctl_find_prog("UDAX_MKFS", "mkfs.udaxfs", sub);
	char *daemon = ctl_find_prog("UDAX_DAEMON", "udaxfs", sub);
	char mopt[256];
	int fd, ret = -ENOENT;

	if (!mkfs || !daemon) {
		fprintf(stderr, "udaxctl bench: %s not found (build it, or set %s)\n",
			!mkfs ? "mkfs.udaxfs" : "udaxfs", !mkfs ? "UDAX_MKFS" : "UDAX_DAEMON");
		goto out;
	}
	snprintf(sm->dev, sizeof(sm->dev), "/dev/shm/%s.img", O.tag);
	snprintf(sm->mnt, sizeof(sm->mnt), "/dev/shm/%s-mnt", O.tag);
	fd = open(sm->dev, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)O.device_size) < 0) {
		ret = -errno;
		fprintf(stderr, "udaxctl bench: %s: %s\n", sm->dev, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	char *mk[] = { mkfs, sm->dev, NULL };
	ret = run_cmd(mk, true);
	if (ret < 0) {
		fprintf(stderr, "udaxctl bench: mkfs.udaxfs %s failed\n", sm->dev);
		goto out;
	}
	mkdir(sm->mnt, 0700);
	snprintf(mopt, sizeof(mopt), "dax_policy=%s", policy);
	if (O.recall_timeout_ms)
		snprintf(mopt + strlen(mopt), sizeof(mopt) - strlen(mopt), ",recall_timeout=%llu",
			 (unsigned long long)O.recall_timeout_ms);
	char *mo[] = { daemon, sm->dev, sm->mnt, "-o", mopt, NULL };
	ret = run_cmd(mo, true);
	if (ret == 0)
		ret = wait_mounted(sm->mnt, "fuse.udaxfs");
	if (ret < 0) {
		fprintf(stderr, "udaxctl bench: mounting udaxfs -o %s on %s failed\n", mopt, sm->mnt);
		unmount_fuse(sm->mnt);
		goto out;
	}
	sm->mounted = true;
out:
	free(mkfs);
	free(daemon);
	return ret;
}

void self_unmount(struct selfmount *sm)
{
	if (sm->mounted) {
		for (int i = 0; i < 50 && unmount_fuse(sm->mnt) < 0; i++)
			usleep(100000);
		sm->mounted = false;
	}
	rmdir(sm->mnt);
	unlink(sm->dev);
}
