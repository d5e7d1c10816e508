/* SPDX-License-Identifier: MIT */
/*
 * ops_dir.c - the FUSE handlers of directories: opendir, readdir(plus),
 * fsyncdir, and statfs.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "core/util.h"

/* ENOSYS once: the kernel then opens directories without asking (see op_init) */
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (udaxd_of(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = (uint64_t)(unsigned int)fi->flags;
	fuse_reply_open(req, fi);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
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
	if (!f.buf)
		rc = -ENOMEM;
	else if (off < 0)
		rc = -EINVAL;
	else
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

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc;

	rc = ufs_statfs(udaxd_of(req)->fs, &sv);
	if (rc)
		reply_rc(req, rc);
	else
		fuse_reply_statfs(req, &sv);
}
