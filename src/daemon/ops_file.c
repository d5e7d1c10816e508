/* SPDX-License-Identifier: MIT */
/*
 * ops_file.c - the FUSE handlers of open files: open, create, read, write,
 * release, fsync, fallocate, lseek, copy_file_range.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>

#include "ops.h"
#include "core/util.h"

/*
 * The open flags are kept in fi->fh: the layout service needs the access
 * mode of the descriptor an ioctl arrives on, and FUSE_IOCTL does not carry
 * the flags.  FH_CACHED above them: the descriptor was opened without
 * direct_io, so its writes leave pages in the kernel's cache.
 */
#define FH_CACHED (1ull << 40)
static void set_open_info(struct udaxd *d, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct layout_service *ls = udaxd_ls(d);

	fi->fh = (uint64_t)(unsigned int)fi->flags;
	fi->keep_cache = 0;
	/*
	 * O_DIRECT is honoured as the kernel would: no page cache.  A file
	 * a client holds a writable direct layout of is opened the same
	 * way, so no read through the mount returns a stale cached page.
	 */
	fi->direct_io = (fi->flags & O_DIRECT) || (ls && layout_ino_has_writable(ls, ino));
	if (!fi->direct_io)
		fi->fh |= FH_CACHED;
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct dx_break_stats bs;
	bool killed = false;
	struct ufs_ctx c;
	int rc;

	if (fi->flags & O_TRUNC)
		ctx_init_timed(&c, req, d, &bs);
	else
		ctx_init(&c, req);
	c.killed = &killed;	/* O_TRUNC drops privileges: tell the kernel */
	rc = ufs_open(d->fs, &c, ino, fi->flags);
	if (fi->flags & O_TRUNC)
		note_break(d, ino, &bs, rc);
	if (rc) {
		reply_rc(req, rc);
		return;
	}
	killed_notify(d, ino, killed);
	set_open_info(d, ino, fi);
	if (fuse_reply_open(req, fi) != 0)
		ufs_release(d->fs, ino);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct fuse_entry_param e;
	struct ufs_entry ue;
	struct ufs_ctx c;
	int rc;

	if (fi->flags & O_TRUNC)
		ctx_init_blocking(&c, req, d);
	else
		ctx_init(&c, req);
	rc = ufs_create(d->fs, &c, parent, name, mode, fi->flags, &ue);
	if (rc) {
		reply_rc(req, rc);
		return;
	}
	set_open_info(d, ue.ino, fi);
	fill_entry_param(d, &ue, &e);
	if (fuse_reply_create(req, &e, fi) != 0) {
		ufs_release(d->fs, ue.ino);
		ufs_forget(d->fs, ue.ino, 1);
	}
}

/* Reply a read with the device's bytes (ufs_read_iov(): under the file's lock). */
static void read_reply(void *arg, const struct iovec *iov, int cnt, size_t len)
{
	(void)len;
	fuse_reply_iov(arg, iov, cnt);
}

/*
 * op_read() - one copy: the kernel copies the reply from the device
 * mapping (over /dev/fuse, writev; over io_uring, the reply is built in
 * the ring entry's payload straight from the device).
 */
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	int rc;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/*
	 * Any READ may fill the kernel's cache (a private mapping of a
	 * direct_io descriptor reads through it too): tell the layout service
	 * before the device is read.
	 */
	layout_note_fill(udaxd_ls(udaxd_of(req)), ino, (uint64_t)off, size);
	rc = ufs_read_iov(udaxd_of(req)->fs, ino, size, (uint64_t)off, read_reply, req);
	if (rc)
		reply_rc(req, rc);
}

static void reply_write(fuse_req_t req, ssize_t n)
{
	if (n < 0)
		reply_rc(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	bool killed = false;
	struct ufs_ctx c;
	ssize_t n;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ctx_init(&c, req)->killed = &killed;
	if (fi && (fi->fh & FH_CACHED))
		layout_note_fill(udaxd_ls(d), ino, (uint64_t)off, size);
	n = ufs_write(d->fs, &c, ino, buf, size, (uint64_t)off);
	killed_notify(d, ino, killed);
	reply_write(req, n);
}

/*
 * op_write_buf() - the data arrives in the request buffer itself (requests
 * are read into memory, never spliced: see op_init): write it from there,
 * one copy into the device.  Any other buffer (a vector, a descriptor)
 * goes through the thread's scratch buffer.
 */
void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		  off_t off, struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	size_t size = fuse_buf_size(bufv);
	const struct fuse_buf *b = &bufv->buf[bufv->idx];
	bool one = bufv->count - bufv->idx == 1;
	bool killed = false;
	struct ufs_ctx c;
	const char *src;
	ssize_t n;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ctx_init(&c, req)->killed = &killed;
	if (one && !(b->flags & FUSE_BUF_IS_FD)) {
		src = (const char *)b->mem + bufv->off;
	} else {
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
		ssize_t got;

		dst.buf[0].mem = thread_buf(size);
		if (!dst.buf[0].mem) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		got = fuse_buf_copy(&dst, bufv, 0);
		if (got < 0) {
			reply_rc(req, (int)got);
			return;
		}
		size = (size_t)got;
		src = dst.buf[0].mem;
	}
	/* the kernel keeps what a cached descriptor wrote: tell the layout service first */
	if (fi && (fi->fh & FH_CACHED))
		layout_note_fill(udaxd_ls(d), ino, (uint64_t)off, size);
	n = ufs_write(d->fs, &c, ino, src, size, (uint64_t)off);
	killed_notify(d, ino, killed);
	reply_write(req, n);
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ufs_release(udaxd_of(req)->fs, ino);
	fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	reply_rc(req, ufs_fsync(udaxd_of(req)->fs, ino, datasync != 0));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct dx_break_stats bs;
	struct ufs_ctx c;
	int rc;

	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ctx_init_timed(&c, req, d, &bs);	/* punch, zero, collapse, insert free blocks */
	rc = ufs_fallocate(d->fs, &c, ino, mode, (uint64_t)off, (uint64_t)len);
	note_break(d, ino, &bs, rc);
	reply_rc(req, rc);
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);

	/*
	 * With the write-back cache the kernel sends SEEK_DATA/SEEK_HOLE
	 * without writing its dirty pages back first: data written a moment
	 * ago may still be a hole here, and a sparse-aware copy (cp, tar)
	 * would then skip it.  ENOSYS makes the kernel answer from its own
	 * size for good: every byte is data, which is always safe.
	 */
	if (d->opts->writeback_cache) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	int64_t r = ufs_lseek(d->fs, ino, off, whence);

	if (r < 0)
		reply_rc(req, (int)r);
	else
		fuse_reply_lseek(req, r);
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_ctx c;

	if (off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ctx_init(&c, req);
	reply_write(req, ufs_copy_file_range(d->fs, &c, ino_in, (uint64_t)off_in, ino_out,
					     (uint64_t)off_out, len, (unsigned int)flags));
}
