/* SPDX-License-Identifier: MIT */
/*
 * test_ufs.h - helpers for the ufs.h unit tests: an emulation file in
 * /dev/shm, mkfs + mount in one call (the checks are ../harness.h's).
 */
#ifndef UDAX_TEST_UFS_H
#define UDAX_TEST_UFS_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../harness.h"

struct t_fs {
	char path[256];
	struct dx_media *m;
	struct ufs *fs;
	struct ufs_ctx c;
};

static inline void t_log(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "[ufs] %s\n", msg);
}

static inline void t_open_media(struct t_fs *t)
{
	struct dx_media_opts mo = { .path = t->path };

	REQUIRE(dx_media_open(&t->m, &mo) == 0);
}

static bool t_readonly;

static inline int t_mount(struct t_fs *t)
{
	struct ufs_mount_opts o = { .log = t_log, .readonly = t_readonly };

	return ufs_mount(&t->fs, t->m, &o);
}

/* A fresh file system of @size bytes on /dev/shm, mounted. */
static uint64_t t_inode_ratio;	/* 0: mkfs default */
static uint64_t t_journal_bytes;	/* 0: mkfs default */

static inline void t_setup(struct t_fs *t, const char *tag, uint64_t size)
{
	struct ufs_mkfs_opts mk = { .label = tag, .inode_ratio = t_inode_ratio,
				     .journal_bytes = t_journal_bytes };
	struct ufs_super sb;
	int fd;

	memset(t, 0, sizeof(*t));
	snprintf(t->path, sizeof(t->path), "/dev/shm/udax-ufs-%s-%d", tag, (int)getpid());
	fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
	close(fd);
	t_open_media(t);
	REQUIRE(ufs_mkfs(t->m, &mk, &sb) == 0);
	REQUIRE(t_mount(t) == 0);
	t->c.uid = 0;
	t->c.gid = 0;
	t->c.umask = 022;
}

static inline void t_remount(struct t_fs *t)
{
	REQUIRE(ufs_unmount(&t->fs) == 0);
	dx_media_close(&t->m);
	t_open_media(t);
	REQUIRE(t_mount(t) == 0);
}

static inline void t_teardown(struct t_fs *t)
{
	if (t->fs)
		CHECK_EQ(ufs_unmount(&t->fs), 0);
	dx_media_close(&t->m);
	if (getenv("UDAX_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", t->path);
	else
		unlink(t->path);
}

#endif /* UDAX_TEST_UFS_H */
