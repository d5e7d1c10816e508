/* SPDX-License-Identifier: MIT */
/*
 * layout.h - the daemon's layout service (issue #4): grants direct mappings
 * of file ranges to clients, tracks their pins, recalls them for
 * break_layouts.  Implemented in layout.c; the FUSE side (ops.c) only calls
 * these hooks.
 */
#ifndef UDAXD_LAYOUT_H
#define UDAXD_LAYOUT_H

#include <stdint.h>
#include <sys/types.h>

struct udaxd;
struct ufs;

struct layout_opts {
	const char *mountpoint;		/* absolute */
	uid_t owner_uid;		/* the mount owner */
	const char *dax_allow;		/* -o dax_allow=uid:0,uid:1000,gid:100 (NULL: root + owner) */
};

struct layout_service;

/* Start the service (socket, threads).  Return 0 or -errno. */
int layout_service_start(struct layout_service **out, struct ufs *fs, const struct layout_opts *o);
/* Stop it: refuse new requests, drop nothing that is still pinned. */
void layout_service_stop(struct layout_service **lsp);
/* udax_dax_ops.recall: queue recalls for [start, end] of @ino; never blocks. */
void layout_recall(void *arg, uint64_t ino, uint64_t start, uint64_t end);
/* FUSE ioctl on an open file (cmd from include/udax/udax_proto.h).
 * Fills *out (at most out_max bytes); return bytes or -errno. */
int layout_ioctl(struct layout_service *ls, uint64_t ino, int open_flags, uid_t uid, gid_t gid,
		 pid_t pid, unsigned int cmd, const void *in, size_t in_len, void *out, size_t out_max);

#endif /* UDAXD_LAYOUT_H */
