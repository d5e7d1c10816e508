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

/*
 * xattr_access() - may the caller read (@write false) or change the
 * attribute @name?  Readers other than root do not see trusted.*; only
 * root writes outside user.*.
 * Return: 0, or the -errno to answer.
 */
static int xattr_access(fuse_req_t req, const char *name, bool write)
{
	enum xns ns = xattr_ns(name);

	if (ns == XNS_OTHER)
		return -EOPNOTSUPP;
	if (ns == XNS_USER || req_is_root(req))
		return 0;
	if (write)
		return -EPERM;
	return ns == XNS_TRUSTED ? -ENODATA : 0;
}

/*
 * The thread's scratch buffer for a reply of up to @size bytes, in *@buf
 * (NULL for a size probe, @size 0).  Return: 0 or -ENOMEM.
 */
static int reply_scratch(size_t size, void **buf)
{
	*buf = size ? thread_buf(size) : NULL;
	return size && !*buf ? -ENOMEM : 0;
}

/*
 * The reply of a getxattr or listxattr: for a size probe (@size 0) the
 * length @n, else the @n bytes at @buf; or the error @n.
 */
static void reply_xattr(fuse_req_t req, ssize_t n, size_t size, const void *buf)
{
	if (n < 0)
		reply_rc(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_ctx c;
	int rc = xattr_access(req, name, true);

	if (!rc && strlen(name) > UFS_XATTR_NAME_MAX)
		rc = -ERANGE;
	if (!rc && size > UFS_XATTR_SIZE_MAX)
		rc = -E2BIG;
	if (!rc)
		rc = ufs_setxattr(d->fs, ctx_init(&c, req), ino, name, value, size, flags);
	reply_rc(req, rc);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct udaxd *d = udaxd_of(req);
	void *buf = NULL;
	ssize_t n = xattr_access(req, name, false);

	if (!n && strlen(name) > UFS_XATTR_NAME_MAX)
		n = -ERANGE;
	if (!n)
		n = reply_scratch(size, &buf);
	if (!n)
		n = ufs_getxattr(d->fs, ino, name, buf, size);
	reply_xattr(req, n, size, buf);
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

/*
 * The names a caller other than root may see: the whole list, fetched
 * into the thread's buffer (*@buf), with trusted.* taken out.
 * Return: the length of what is left, or -errno.
 */
static ssize_t list_visible(struct udaxd *d, fuse_ino_t ino, void **buf)
{
	char *list = NULL;
	ssize_t n;
	int tries;

	for (tries = 0; ; tries++) {
		n = ufs_listxattr(d->fs, ino, NULL, 0);
		if (n <= 0)
			break;
		list = thread_buf((size_t)n);
		if (!list)
			return -ENOMEM;
		n = ufs_listxattr(d->fs, ino, list, (size_t)n);
		if (n != -ERANGE || tries == 8)
			break;		/* -ERANGE: the list grew meanwhile */
	}
	*buf = list;
	if (n <= 0)
		return n;
	return (ssize_t)filter_trusted(list, (size_t)n);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct udaxd *d = udaxd_of(req);
	void *buf = NULL;
	ssize_t n;

	if (req_is_root(req)) {
		n = reply_scratch(size, &buf);
		if (!n)
			n = ufs_listxattr(d->fs, ino, buf, size);
	} else {
		/* the core's -ERANGE would count the hidden names: judge the filtered list */
		n = list_visible(d, ino, &buf);
		if (size && n > 0 && (size_t)n > size)
			n = -ERANGE;
	}
	reply_xattr(req, n, size, buf);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct udaxd *d = udaxd_of(req);
	struct ufs_ctx c;
	int rc = xattr_access(req, name, true);

	/*
	 * security.capability is the one exception: before a write by a user
	 * the kernel drops it itself (file_remove_privs -> cap_inode_killpriv)
	 * with the writer's credentials, and must succeed, as on tmpfs.  A
	 * user's own removexattr(2) of it never gets here: the kernel's
	 * capability check (CAP_SETFCAP) refuses it first.
	 */
	if (rc == -EPERM && strcmp(name, "security.capability") == 0)
		rc = 0;
	if (!rc)
		rc = ufs_removexattr(d->fs, ctx_init(&c, req), ino, name);
	reply_rc(req, rc);
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

	if (flags & FUSE_IOCTL_COMPAT)
		n = -ENOSYS;
	else if (!ls)
		n = -ENOTTY;
	else
		n = reply_scratch(out_bufsz, &out);
	if (!n) {
		if (out)
			memset(out, 0, out_bufsz);
		n = layout_ioctl(ls, ino, (int)fi->fh, fc->uid, fc->gid, fc->pid, cmd, in_buf,
				 in_bufsz, out, out_bufsz);
	}
	if (n < 0)
		reply_rc(req, n);
	else
		fuse_reply_ioctl(req, 0, n ? out : NULL, (size_t)n);
}
