/* SPDX-License-Identifier: MIT */
/*
 * ops.h - what the FUSE handlers of udaxfs share: the request's context,
 * a scratch buffer and the replies (req.c), and the handlers themselves,
 * one file per kind of object: names and attributes (ops.c), open files
 * (ops_file.c), directories (ops_dir.c), extended attributes and the
 * layout service's ioctl (ops_xattr.c).  The rules every handler follows
 * are at the top of ops.c.
 */
#ifndef UDAXD_OPS_H
#define UDAXD_OPS_H

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

/* ---- req.c ---- */

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

/* ---- ops_file.c ---- */
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		  off_t off, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi);
void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi);
void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags);

/* ---- ops_dir.c ---- */
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void op_statfs(fuse_req_t req, fuse_ino_t ino);

/* ---- ops_xattr.c ---- */
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
	      struct fuse_file_info *fi, unsigned flags, const void *in_buf,
	      size_t in_bufsz, size_t out_bufsz);

#endif /* UDAXD_OPS_H */
