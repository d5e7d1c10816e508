/* SPDX-License-Identifier: MIT */
/*
 * req.c - what every FUSE handler of udaxfs needs around its one core
 * call: the request's context (ufs_ctx), a per-thread scratch buffer,
 * and the replies that give a reference back when the kernel never gets it.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"
#include "core/util.h"

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
void *thread_buf(size_t size)
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
		size_t n = dx_max(size, (size_t)64 * 1024);
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
struct ufs_ctx *ctx_init(struct ufs_ctx *c, fuse_req_t req)
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

	dx_dax_kick(ufs_dax(d->fs));
}

/* ctx_init() for a request that may block in break_layouts. */
struct ufs_ctx *ctx_init_blocking(struct ufs_ctx *c, fuse_req_t req, struct udaxd *d)
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
void ctx_init_timed(struct ufs_ctx *c, fuse_req_t req, struct udaxd *d,
		    struct dx_break_stats *bs)
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
void note_break(struct udaxd *d, fuse_ino_t ino, const struct dx_break_stats *bs, int rc)
{
	struct layout_service *ls = udaxd_ls(d);

	if (ls && bs->t_start)
		layout_note_break(ls, ino, bs, rc, dx_now_ns());
}

/* ---- replies ---- */

void reply_rc(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

void fill_entry_param(struct udaxd *d, const struct ufs_entry *ue,
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
void reply_entry(fuse_req_t req, struct udaxd *d, const struct ufs_entry *ue)
{
	struct fuse_entry_param e;

	fill_entry_param(d, ue, &e);
	if (fuse_reply_entry(req, &e) != 0)
		ufs_forget(d->fs, ue->ino, 1);
}

/* Reply the entry a successful call produced, or its error. */
void reply_entry_rc(fuse_req_t req, struct udaxd *d, int rc, const struct ufs_entry *ue)
{
	if (rc)
		reply_rc(req, rc);
	else
		reply_entry(req, d, ue);
}

/* Reply the attributes a successful call produced, or its error. */
void reply_attr_rc(fuse_req_t req, struct udaxd *d, int rc, const struct stat *st)
{
	if (rc)
		reply_rc(req, rc);
	else
		fuse_reply_attr(req, st, d->attr_timeout);
}

/*
 * The kernel caches attributes for attr_timeout: after the core dropped
 * privilege bits behind a write or an O_TRUNC open (whose replies carry
 * no attributes), tell it to ask again, or stat shows the old mode.  An
 * attribute-only invalidation takes no page or inode lock in the kernel,
 * so it is safe from inside the request.
 */
void killed_notify(struct udaxd *d, fuse_ino_t ino, bool killed)
{
	if (killed && d->se)
		fuse_lowlevel_notify_inval_inode(d->se, ino, -1, 0);
}
