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
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "daemon.h"
#include "layout.h"
#include "util.h"

/* Largest WRITE / READ the kernel sends (negotiated in op_init). */
#define UDAXD_MAX_IO (1024 * 1024)

static inline struct udaxd *udaxd_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct layout_service *udaxd_ls(struct udaxd *d)
{
	return __atomic_load_n(&d->ls, __ATOMIC_ACQUIRE);
}

/* ---- per-thread scratch buffer (readdir, xattr lists, ioctl replies) ---- */

struct tbuf {
	char *p;
	size_t size;
};
static pthread_key_t tbuf_key;
static pthread_once_t tbuf_once = PTHREAD_ONCE_INIT;

static void tbuf_free(void *arg)
{
	struct tbuf *t = arg;

	free(t->p);
	free(t);
}

static void tbuf_key_init(void)
{
	UDAX_BUG_ON(pthread_key_create(&tbuf_key, tbuf_free) != 0);
}

/*
 * thread_buf() - this worker thread's scratch buffer, at least @size bytes.
 * FUSE worker threads come and go (libfuse retires idle ones); the key's
 * destructor frees a retired thread's buffer.
 * Return: the buffer, or NULL when out of memory.
 */
static void *thread_buf(size_t size)
{
	struct tbuf *t;

	pthread_once(&tbuf_once, tbuf_key_init);
	t = pthread_getspecific(tbuf_key);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return NULL;
		if (pthread_setspecific(tbuf_key, t)) {
			free(t);
			return NULL;
		}
	}
	if (t->size < size) {
		size_t n = udax_max(size, (size_t)64 * 1024);
		char *p = malloc(n);

		if (!p)
			return NULL;
		free(t->p);
		t->p = p;
		t->size = n;
	}
	return t->p;
}

/* ---- request context ---- */

static int req_interrupted(void *arg)
{
	return fuse_req_interrupted(arg);
}

/*
 * ctx_init() - who asks, and what the kernel left to us: under
 * FUSE_HANDLE_KILLPRIV_V2 (kio.c) the core drops privileges on write,
 * truncate and chown, and the request says whether the caller lacks
 * CAP_FSETID.  What is dropped when is the core's rule (ufs.h).
 * Return: @c.
 */
static struct ufs_ctx *ctx_init(struct ufs_ctx *c, fuse_req_t req)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct udaxd *d = udaxd_of(req);

	memset(c, 0, sizeof(*c));
	c->uid = fc->uid;
	c->gid = fc->gid;
	c->pid = fc->pid;
	c->umask = fc->umask;
	c->wait.interrupted = req_interrupted;
	c->wait.arg = req;
	c->killpriv = __atomic_load_n(&d->killpriv_v2, __ATOMIC_ACQUIRE);
	c->no_fsetid = udaxd_req_flags() & UDAXD_REQ_KILL_SUIDGID;
	return c;
}

/* A FUSE_INTERRUPT arrived for a request that may sleep in break_layouts. */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct udaxd *d = data;

	udax_dax_kick(ufs_dax(d->fs));
}

/* ctx_init() for a request that may block in break_layouts. */
static struct ufs_ctx *ctx_init_blocking(struct ufs_ctx *c, fuse_req_t req, struct udaxd *d)
{
	ctx_init(c, req);
	fuse_req_interrupt_func(req, on_interrupt, d);
	return c;
}

/*
 * ctx_init_timed() - ctx_init_blocking() that also collects the daemon-side
 * timestamps of the break_layouts the request makes (recall sent, last
 * unpin, idle, done) into @bs, for note_break().
 */
static void ctx_init_timed(struct ufs_ctx *c, fuse_req_t req, struct udaxd *d,
			   struct udax_break_stats *bs)
{
	ctx_init_blocking(c, req, d);
	memset(bs, 0, sizeof(*bs));
	c->wait.stats = bs;
}

/*
 * note_break() - hand the timestamps of a truncate/punch/zero/collapse that
 * really ran break_layouts to the layout service, which serves them to
 * `udaxctl bench truncate-dma` (UDAX_REQ_BREAKS).  t_freed is "the blocks
 * are back in the allocator": the core call has returned.
 */
static void note_break(struct udaxd *d, fuse_ino_t ino, const struct udax_break_stats *bs, int rc)
{
	struct layout_service *ls = udaxd_ls(d);

	if (ls && bs->t_start)
		layout_note_break(ls, ino, bs, rc, udax_now_ns());
}

/* ---- replies ---- */

static void reply_rc(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void fill_entry_param(struct udaxd *d, const struct ufs_entry *ue,
			     struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ue->ino;
	e->generation = ue->generation;
	e->attr = ue->st;
	e->attr_timeout = d->attr_timeout;
	e->entry_timeout = d->entry_timeout;
}

/* Reply an entry; give the lookup back if the kernel never gets it. */
static void reply_entry(fuse_req_t req, struct udaxd *d, const struct ufs_entry *ue)
{
	struct fuse_entry_param e;

	fill_entry_param(d, ue, &e);
	if (fuse_reply_entry(req, &e) != 0)
		ufs_forget(d->fs, ue->ino, 1);
}

/* Reply the entry a successful call produced, or its error. */
static void reply_entry_rc(fuse_req_t req, struct udaxd *d, int rc, const struct ufs_entry *ue)
{
	if (rc)
		reply_rc(req, rc);
	else
		reply_entry(req, d, ue);
}

/*
 * The kernel caches attributes for attr_timeout: after the core dropped
 * privilege bits behind a write or an O_TRUNC open (whose replies carry
 * no attributes), tell it to ask again, or stat shows the old mode.  An
 * attribute-only invalidation takes no page or inode lock in the kernel,
 * so it is safe from inside the request.
 */
static void killed_notify(struct udaxd *d, fuse_ino_t ino, bool killed)
{
	if (killed && d->se)
		fuse_lowlevel_notify_inval_inode(d->se, ino, -1, 0);
}

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
			 udax_errmsg());
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
		return;
	}
	reply_entry_rc(req, d, rc, &ue);
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
	if (rc)
		reply_rc(req, rc);
	else
		fuse_reply_attr(req, &st, d->attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct udax_break_stats bs;
	struct ufs_setattr sa;
	struct ufs_ctx c;
	struct stat st;
	int rc;

	memset(&sa, 0, sizeof(sa));
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.valid |= UFS_SET_MODE;
		sa.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.valid |= UFS_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.valid |= UFS_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa.valid |= UFS_SET_SIZE;
		sa.size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		sa.valid |= UFS_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa.valid |= UFS_SET_ATIME;
		sa.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		sa.valid |= UFS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.valid |= UFS_SET_MTIME;
		sa.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa.valid |= UFS_SET_CTIME;
		sa.ctime = attr->st_ctim;
	}
	if (sa.valid & UFS_SET_SIZE)
		ctx_init_timed(&c, req, d, &bs);	/* a shrink runs break_layouts */
	else
		ctx_init(&c, req);
	/* the reply carries the mode the core left (privileges dropped) */
	rc = ufs_setattr(d->fs, &c, ino, &sa, &st);
	if (sa.valid & UFS_SET_SIZE)
		note_break(d, ino, &bs, rc);
	if (rc)
		reply_rc(req, rc);
	else
		fuse_reply_attr(req, &st, d->attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct udaxd *d = udaxd_of(req);
	char buf[UFS_SYMLINK_MAX + 1];
	ssize_t n;

	n = ufs_readlink(d->fs, ino, buf, sizeof(buf) - 1);
	if (n < 0) {
		reply_rc(req, (int)n);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
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

/* ---- open files ---- */

/*
 * The open flags are kept in fi->fh: the layout service needs the access
 * mode of the descriptor an ioctl arrives on, and FUSE_IOCTL does not carry
 * the flags.
 */
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
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct udax_break_stats bs;
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

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
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
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	int rc;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
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

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
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
	n = ufs_write(d->fs, &c, ino, buf, size, (uint64_t)off);
	killed_notify(d, ino, killed);
	reply_write(req, n);
}

/* ufs_fill_actor_t: read the request's data from the pipe libfuse spliced it into. */
static ssize_t pipe_fill(void *arg, void *dst, size_t n)
{
	const struct fuse_buf *b = arg;
	ssize_t k;

	do
		k = read(b->fd, dst, n);
	while (k < 0 && errno == EINTR);
	return k < 0 ? -errno : k;
}

/*
 * op_write_buf() - the data usually arrives in the request buffer itself:
 * write it from there, without a copy.  Spliced data (a pipe) is read
 * straight into the device where the range is allocated (ufs_write_fill()),
 * else through the thread's scratch buffer (fresh blocks are filled whole).
 */
static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
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
	if (one && (b->flags & FUSE_BUF_IS_FD) && !(b->flags & FUSE_BUF_FD_SEEK) && !bufv->off) {
		n = ufs_write_fill(d->fs, &c, ino, size, (uint64_t)off, pipe_fill, (void *)b);
		if (n != -EAGAIN)
			goto reply;
	}
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
	n = ufs_write(d->fs, &c, ino, src, size, (uint64_t)off);
reply:
	killed_notify(d, ino, killed);
	reply_write(req, n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ufs_release(udaxd_of(req)->fs, ino);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	reply_rc(req, ufs_fsync(udaxd_of(req)->fs, ino, datasync != 0));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct udaxd *d = udaxd_of(req);
	struct udax_break_stats bs;
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

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
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

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
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

/* ---- directories ---- */

/* ENOSYS once: the kernel then opens directories without asking (see op_init) */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (udaxd_of(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = (uint64_t)(unsigned int)fi->flags;
	fuse_reply_open(req, fi);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	reply_rc(req, ufs_fsyncdir(udaxd_of(req)->fs, ino));
}

struct dir_fill {
	fuse_req_t req;
	struct udaxd *d;
	char *buf;
	size_t size, pos;
	bool plus;
	/* plus: the inodes whose lookup the reply hands to the kernel */
	uint64_t *inos;
	size_t ninos, cap;
	/* plus: lookups taken for "." and "..", which the kernel never takes */
	uint64_t dots[2];
	unsigned int ndots;
};

static bool is_dot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/*
 * dir_filler() - ufs_fill_t: add one entry to the reply buffer.
 * For readdirplus, "." and ".." go out without a node id: the kernel takes
 * no lookup for them (fs/fuse/readdir.c skips them).  The core passes them
 * with ino 0 and takes no lookup; should it ever set ino (and so take one),
 * that lookup is dropped after ufs_readdir() returns (not here: the core
 * holds the directory's lock).
 * Context: called by ufs_readdir() with core locks held; takes none.
 * Return: 0, or 1 when the buffer is full (entry not consumed).
 */
static int dir_filler(void *arg, const char *name, const struct ufs_entry *ue,
		      uint64_t next_off)
{
	struct dir_fill *f = arg;
	size_t room = f->size - f->pos;
	size_t len;

	if (!f->plus) {
		len = fuse_add_direntry(f->req, f->buf + f->pos, room, name, &ue->st,
					(off_t)next_off);
		if (len > room)
			return 1;
		f->pos += len;
		return 0;
	}

	struct fuse_entry_param e;
	bool dot = is_dot(name);

	fill_entry_param(f->d, ue, &e);
	if (dot) {
		e.ino = 0;	/* no lookup handed over */
		e.attr.st_ino = ue->st.st_ino;
	} else if (f->ninos == f->cap) {
		size_t ncap = f->cap ? 2 * f->cap : 64;
		uint64_t *n = realloc(f->inos, ncap * sizeof(*n));

		if (!n)
			return 1;	/* stop here; what we have goes out */
		f->inos = n;
		f->cap = ncap;
	}
	len = fuse_add_direntry_plus(f->req, f->buf + f->pos, room, name, &e, (off_t)next_off);
	if (len > room)
		return 1;
	f->pos += len;
	if (dot) {
		/* a core that took a lookup for a dot (ino set) gets it back */
		if (ue->ino && f->ndots < UDAX_ARRAY_SIZE(f->dots))
			f->dots[f->ndots++] = ue->ino;
	} else {
		f->inos[f->ninos++] = ue->ino;
	}
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct udaxd *d = udaxd_of(req);
	struct dir_fill f;
	unsigned int i;
	int rc;

	memset(&f, 0, sizeof(f));
	f.req = req;
	f.d = d;
	f.plus = plus;
	f.size = size;
	f.buf = thread_buf(size);
	if (!f.buf || off < 0) {
		fuse_reply_err(req, f.buf ? EINVAL : ENOMEM);
		return;
	}
	rc = ufs_readdir(d->fs, ino, (uint64_t)off, plus, dir_filler, &f);
	for (i = 0; i < f.ndots; i++)
		ufs_forget(d->fs, f.dots[i], 1);
	/* entries already accepted carry lookups: send them even after an error */
	if (rc && f.pos == 0) {
		reply_rc(req, rc);
	} else if (fuse_reply_buf(req, f.buf, f.pos) != 0) {
		size_t k;

		for (k = 0; k < f.ninos; k++)
			ufs_forget(d->fs, f.inos[k], 1);
	}
	free(f.inos);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc;

	rc = ufs_statfs(udaxd_of(req)->fs, &sv);
	if (rc)
		reply_rc(req, rc);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ---- */

/*
 * Namespaces as a kernel file system has them: user.*, trusted.* and
 * security.*; trusted.* is invisible to and unwritable by anyone but root,
 * security.* is writable only by root (the VFS checks trusted.* for
 * CAP_SYS_ADMIN too; this is the same rule for a caller it cannot see).
 * system.* (POSIX ACLs) is not supported.
 */
enum xns { XNS_USER, XNS_TRUSTED, XNS_SECURITY, XNS_OTHER };

static enum xns xattr_ns(const char *name)
{
	if (strncmp(name, "user.", 5) == 0)
		return XNS_USER;
	if (strncmp(name, "trusted.", 8) == 0)
		return XNS_TRUSTED;
	if (strncmp(name, "security.", 9) == 0)
		return XNS_SECURITY;
	return XNS_OTHER;
}

static bool req_is_root(fuse_req_t req)
{
	return fuse_req_ctx(req)->uid == 0;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct udaxd *d = udaxd_of(req);
	enum xns ns = xattr_ns(name);
	struct ufs_ctx c;

	if (ns == XNS_OTHER) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (ns != XNS_USER && !req_is_root(req)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (strlen(name) > UFS_XATTR_NAME_MAX) {
		fuse_reply_err(req, ERANGE);
		return;
	}
	if (size > UFS_XATTR_SIZE_MAX) {
		fuse_reply_err(req, E2BIG);
		return;
	}
	ctx_init(&c, req);
	reply_rc(req, ufs_setxattr(d->fs, &c, ino, name, value, size, flags));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct udaxd *d = udaxd_of(req);
	enum xns ns = xattr_ns(name);
	ssize_t n;
	void *buf = NULL;

	if (ns == XNS_OTHER) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (ns == XNS_TRUSTED && !req_is_root(req)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (strlen(name) > UFS_XATTR_NAME_MAX) {
		fuse_reply_err(req, ERANGE);
		return;
	}
	if (size) {
		buf = thread_buf(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = ufs_getxattr(d->fs, ino, name, buf, size);
	if (n < 0)
		reply_rc(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/* Drop trusted.* names from a NUL-separated list; return the new length. */
static size_t filter_trusted(char *list, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		size_t l = strnlen(list + in, len - in) + 1;

		if (xattr_ns(list + in) != XNS_TRUSTED) {
			memmove(list + out, list + in, l);
			out += l;
		}
		in += l;
	}
	return out;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct udaxd *d = udaxd_of(req);
	bool root = req_is_root(req);
	char *buf = NULL;
	ssize_t n;
	int tries;

	if (root) {
		buf = size ? thread_buf(size) : NULL;
		if (size && !buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n = ufs_listxattr(d->fs, ino, buf, size);
		if (n < 0)
			reply_rc(req, (int)n);
		else if (size == 0)
			fuse_reply_xattr(req, (size_t)n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		return;
	}
	/* not root: fetch the whole list, hide trusted.*, then answer */
	for (tries = 0; ; tries++) {
		n = ufs_listxattr(d->fs, ino, NULL, 0);
		if (n <= 0)
			break;
		buf = thread_buf((size_t)n);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n = ufs_listxattr(d->fs, ino, buf, (size_t)n);
		if (n != -ERANGE || tries == 8)
			break;		/* -ERANGE: the list grew meanwhile */
	}
	if (n < 0) {
		reply_rc(req, (int)n);
		return;
	}
	n = n ? (ssize_t)filter_trusted(buf, (size_t)n) : 0;
	if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, n ? buf : NULL, (size_t)n);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct udaxd *d = udaxd_of(req);
	enum xns ns = xattr_ns(name);
	struct ufs_ctx c;

	if (ns == XNS_OTHER) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	/*
	 * security.capability is the one exception: before a write by a user
	 * the kernel drops it itself (file_remove_privs -> cap_inode_killpriv)
	 * with the writer's credentials, and must succeed, as on tmpfs.  A
	 * user's own removexattr(2) of it never gets here: the kernel's
	 * capability check (CAP_SETFCAP) refuses it first.
	 */
	if (ns != XNS_USER && !req_is_root(req) && strcmp(name, "security.capability") != 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ctx_init(&c, req);
	reply_rc(req, ufs_removexattr(d->fs, &c, ino, name));
}

/* ---- ioctl: the layout service's channel ---- */

static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	struct udaxd *d = udaxd_of(req);
	struct layout_service *ls = udaxd_ls(d);
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	void *out = NULL;
	int n;

	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (!ls) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if (out_bufsz) {
		out = thread_buf(out_bufsz);
		if (!out) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memset(out, 0, out_bufsz);
	}
	n = layout_ioctl(ls, ino, (int)fi->fh, fc->uid, fc->gid, fc->pid, cmd, in_buf,
			 in_bufsz, out, out_bufsz);
	if (n < 0)
		reply_rc(req, n);
	else
		fuse_reply_ioctl(req, 0, n ? out : NULL, (size_t)n);
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
