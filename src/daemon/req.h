/* SPDX-License-Identifier: MIT */
/*
 * req.h - what every FUSE handler needs around its one core call (req.c):
 * the request's context, a per-thread scratch buffer, and the replies
 * that give a reference back when the kernel never gets it.
 */
#ifndef UDAXD_REQ_H
#define UDAXD_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"
#include "layout.h"

static inline struct udaxd *udaxd_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct layout_service *udaxd_ls(struct udaxd *d)
{
	return __atomic_load_n(&d->ls, __ATOMIC_ACQUIRE);
}

/* This worker thread's scratch buffer, at least @size bytes, or NULL. */
void *thread_buf(size_t size);
/* The request's context (who asks, what the kernel left to us); returns @c. */
struct ufs_ctx *ctx_init(struct ufs_ctx *c, fuse_req_t req);
/* ctx_init() for a request that may block in break_layouts (FUSE_INTERRUPT kicks it). */
struct ufs_ctx *ctx_init_blocking(struct ufs_ctx *c, fuse_req_t req, struct udaxd *d);
/* ctx_init_blocking() that also collects break_layouts timestamps into @bs. */
void ctx_init_timed(struct ufs_ctx *c, fuse_req_t req, struct udaxd *d,
		    struct dx_break_stats *bs);
/* Hand the timestamps of a break_layouts that really ran to the layout service. */
void note_break(struct udaxd *d, fuse_ino_t ino, const struct dx_break_stats *bs, int rc);
void reply_rc(fuse_req_t req, int rc);
void fill_entry_param(struct udaxd *d, const struct ufs_entry *ue,
		      struct fuse_entry_param *e);
/* Reply an entry; give the lookup back if the kernel never gets it. */
void reply_entry(fuse_req_t req, struct udaxd *d, const struct ufs_entry *ue);
/* Reply the entry a successful call produced, or its error. */
void reply_entry_rc(fuse_req_t req, struct udaxd *d, int rc, const struct ufs_entry *ue);
/* Reply the attributes a successful call produced, or its error. */
void reply_attr_rc(fuse_req_t req, struct udaxd *d, int rc, const struct stat *st);
/* The core dropped privileges: the kernel's cached attributes are stale. */
void killed_notify(struct udaxd *d, fuse_ino_t ino, bool killed);

#endif /* UDAXD_REQ_H */
