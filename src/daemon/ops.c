/* SPDX-License-Identifier: MIT */
/*
 * ops.c - the FUSE lowlevel operations of udaxfs.
 *
 * Each handler decodes its request, calls the core (ufs.h) once and replies.
 * Rules every handler follows:
 *  - it replies exactly once, and never while holding a lock (it holds
 *    none: the core takes and drops its own locks inside each call) -
 *    but for a read, which replies from the device pages with the file's
 *    i_rwsem held shared (ufs_read_iov()), so that no truncate frees them
 *    under the copy: that reply waits for no other request (it copies into
 *    pages the reader has locked), so a writer waits only for the copy;
 *  - the core returns -errno, never sets errno: nothing to save;
 *  - a reply that hands the kernel a reference (an entry: one lookup; an
 *    open file: one open count) and fails to arrive (the request was
 *    interrupted or the connection is gone) gives that reference back, so
 *    an inode is never pinned in DRAM by a lookup the kernel never got.
 *
 * Interrupts: a request that may block in break_layouts (truncate, O_TRUNC
 * open, punch/zero/collapse/insert, unlink or rename over the last link)
 * carries a ufs_ctx whose wait ctx asks fuse_req_interrupted(), and
 * registers an interrupt callback that kicks every break_layouts waiter so
 * the blocked call notices at once and returns EINTR with the file
 * unchanged.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "ops.h"
#include "core/util.h"

/* Largest WRITE / READ the kernel sends (negotiated in op_init). */
#define UDAXD_MAX_IO (1024 * 1024)

/* ---- init / destroy ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct udaxd *d = userdata;

	/*
	 * The kernel's write-back cache is off unless -o writeback_cache: by
	 * default every write() is a request that stores into the device and
	 * is durable when it returns, as on a kernel DAX file system.  With
	 * it, the kernel keeps dirty pages and sends them later (at fsync,
	 * close, or when it writes back).  That is safe with direct access
	 * because (a) a truncate's SETATTR reaches us only after the kernel
	 * has waited for its in-flight write-back and holds further write-back
	 * back (FUSE's nowrite state), so break_layouts never waits on a
	 * write-back WRITE; (b) a layout grant writes back and drops the
	 * range's cached pages before it takes its references (layout.c); and
	 * (c) the kernel then owns the file size, so grants never change it
	 * (layout_opts.keep_size): clients grow a file through the mount.
	 */
	if (d->opts->writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* ufs_open() truncates itself, after break_layouts. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* the core is thread-safe: lookups and creates in one dir may run in parallel */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* UDAX_IOC_HELLO may be issued on a directory of the mount */
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;
	/*
	 * No FLUSH (each WRITE is durable when we answer it, and with the
	 * write-back cache the kernel writes dirty pages back at close before
	 * it would send FLUSH; no remote locks)
	 * and no OPENDIR/RELEASEDIR (nothing to track): .flush and .opendir
	 * are absent, so the kernel stops sending them after the first
	 * ENOSYS - two round trips fewer per open/close and per listing.
	 */
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		d->no_opendir = true;
	}
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	/*
	 * Requests are read into memory, not spliced into a pipe: a WRITE's
	 * data then reaches the device in one copy, from the request buffer
	 * (op_write_buf).
	 */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	conn->max_write = UDAXD_MAX_IO;
	conn->max_readahead = UDAXD_MAX_IO;
	conn->time_gran = 1;
}

/*
 * op_destroy() - the session is going away: stop the layout service (it
 * uses the file system), then unmount the core.  A busy file system (live
 * pins) is never freed under a pin: ufs_unmount() leaves those inodes on
 * the orphan list and says -EBUSY; the data is safe.
 * Context: main thread, after the worker threads were joined.
 */
static void op_destroy(void *userdata)
{
	struct udaxd *d = userdata;
	struct layout_service *ls;
	int rc;

	ls = __atomic_exchange_n(&d->ls, NULL, __ATOMIC_ACQ_REL);
	layout_service_stop(&ls);
	if (!d->fs)
		return;
	rc = ufs_unmount(&d->fs);
	if (rc == -EBUSY)
		fuse_log(FUSE_LOG_ERR, "udaxfs: %s: pages still pinned at unmount; "
			 "their files stay on the orphan list and are reclaimed at the "
			 "next mount\n", d->opts->device);
	else if (rc)
		fuse_log(FUSE_LOG_ERR, "udaxfs: %s: unmount: %s\n", d->opts->device,
			 dx_errmsg());
	d->fs = NULL;
	d->unmount_rc = rc;
}

/* ---- names ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_entry ue;
	int rc;

	rc = ufs_lookup(d->fs, parent, name, &ue);
	if (rc == -ENOENT) {
		/* a negative entry: the kernel caches "no such name" too */
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.entry_timeout = d->entry_timeout;
		fuse_reply_entry(req, &e);
	} else {
		reply_entry_rc(req, d, rc, &ue);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	ufs_forget(udaxd_of(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct udaxd *d = udaxd_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		ufs_forget(d->fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct stat st;
	int rc;

	rc = ufs_getattr(d->fs, ino, &st);
	reply_attr_rc(req, d, rc, &st);
}

/* What a SETATTR asks for, in the core's terms. */
static void decode_setattr(const struct stat *attr, int to_set, struct ufs_setattr *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa->valid |= UFS_SET_MODE;
		sa->mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa->valid |= UFS_SET_UID;
		sa->uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa->valid |= UFS_SET_GID;
		sa->gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa->valid |= UFS_SET_SIZE;
		sa->size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		sa->valid |= UFS_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa->valid |= UFS_SET_ATIME;
		sa->atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		sa->valid |= UFS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa->valid |= UFS_SET_MTIME;
		sa->mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa->valid |= UFS_SET_CTIME;
		sa->ctime = attr->st_ctim;
	}
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct dx_break_stats bs;
	struct ufs_setattr sa;
	struct ufs_ctx c;
	struct stat st;
	int rc;

	decode_setattr(attr, to_set, &sa);
	if (sa.valid & UFS_SET_SIZE)
		ctx_init_timed(&c, req, d, &bs);	/* a shrink runs break_layouts */
	else
		ctx_init(&c, req);
	/* the reply carries the mode the core left (privileges dropped) */
	rc = ufs_setattr(d->fs, &c, ino, &sa, &st);
	if (sa.valid & UFS_SET_SIZE)
		note_break(d, ino, &bs, rc);
	reply_attr_rc(req, d, rc, &st);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct udaxd *d = udaxd_of(req);
	char buf[UFS_SYMLINK_MAX + 1];
	ssize_t n;

	n = ufs_readlink(d->fs, ino, buf, sizeof(buf) - 1);
	if (n < 0) {
		reply_rc(req, (int)n);
	} else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

/*
 * The entry-creating handlers below are each one call and one reply: the
 * core checks names (-ENAMETOOLONG, ...) and takes the lookup that
 * reply_entry_rc() hands to the kernel or gives back.
 */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_entry ue;
	struct ufs_ctx c;

	reply_entry_rc(req, d, ufs_mknod(d->fs, ctx_init(&c, req), parent, name, mode, rdev, &ue),
		       &ue);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_entry ue;
	struct ufs_ctx c;

	reply_entry_rc(req, d, ufs_mkdir(d->fs, ctx_init(&c, req), parent, name, mode, &ue), &ue);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_entry ue;
	struct ufs_ctx c;

	reply_entry_rc(req, d, ufs_symlink(d->fs, ctx_init(&c, req), parent, name, target, &ue),
		       &ue);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_entry ue;
	struct ufs_ctx c;

	reply_entry_rc(req, d, ufs_link(d->fs, ctx_init(&c, req), ino, newparent, newname, &ue),
		       &ue);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_ctx c;

	/* may drop the last link: break_layouts */
	reply_rc(req, ufs_unlink(d->fs, ctx_init_blocking(&c, req, d), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_ctx c;

	reply_rc(req, ufs_rmdir(d->fs, ctx_init(&c, req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_ctx c;

	/* may drop the last link of the target: break_layouts */
	reply_rc(req, ufs_rename(d->fs, ctx_init_blocking(&c, req, d), parent, name, newparent,
				 newname, flags));
}

/* The recall hook handed to the core: forwards to the running service. */
void udaxd_recall(void *arg, uint64_t ino, uint64_t start, uint64_t end)
{
	struct udaxd *d = arg;
	struct layout_service *ls = udaxd_ls(d);

	if (ls)
		layout_recall(ls, ino, start, end);
}

const struct fuse_lowlevel_ops udaxd_ops = {
	.init		= op_init,
	.destroy	= op_destroy,
	.lookup		= op_lookup,
	.forget		= op_forget,
	.forget_multi	= op_forget_multi,
	.getattr	= op_getattr,
	.setattr	= op_setattr,
	.readlink	= op_readlink,
	.mknod		= op_mknod,
	.mkdir		= op_mkdir,
	.symlink	= op_symlink,
	.link		= op_link,
	.unlink		= op_unlink,
	.rmdir		= op_rmdir,
	.rename		= op_rename,
	.open		= op_open,
	.create		= op_create,
	.read		= op_read,
	.write		= op_write,
	.write_buf	= op_write_buf,
	.release	= op_release,
	.fsync		= op_fsync,
	.fallocate	= op_fallocate,
	.lseek		= op_lseek,
	.copy_file_range = op_copy_file_range,
	.opendir	= op_opendir,
	.readdir	= op_readdir,
	.readdirplus	= op_readdirplus,
	.fsyncdir	= op_fsyncdir,
	.statfs		= op_statfs,
	.setxattr	= op_setxattr,
	.getxattr	= op_getxattr,
	.listxattr	= op_listxattr,
	.removexattr	= op_removexattr,
	.ioctl		= op_ioctl,
};
