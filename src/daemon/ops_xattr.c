/* SPDX-License-Identifier: MIT */
/*
 * ops_xattr.c - the FUSE handlers of extended attributes (the namespaces a
 * kernel file system has) and the ioctl channel of the layout service.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "ops.h"
#include "core/util.h"

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

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
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

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
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

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
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

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
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

void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
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
