// SPDX-License-Identifier: MIT
/*
 * namei.c - the namespace operations: lookup, mknod/mkdir/symlink/create,
 * readlink, link, unlink, rmdir, rename.  They change directories only
 * through dir_int.h (dir.c keeps the records and their index).
 *
 * Locking: fs->ns_lock shared for lookup, exclusive for every change.
 * Evicting a victim (unlink, rmdir, rename over) happens after ns_lock is
 * dropped, because it may wait in break_layouts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir_int.h"


static inline uint8_t mode_dt(uint32_t mode)
{
	return (uint8_t)((mode >> 12) & 15);
}

static int name_check(const char *name)
{
	size_t len = strlen(name);

	if (!len)
		return -ENOENT;
	if (len > UFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	return 0;
}

static bool is_dot(const char *name)
{
	return name[0] == '.' && name[1] == 0;
}

static bool is_dotdot(const char *name)
{
	return name[0] == '.' && name[1] == '.' && name[2] == 0;
}

/* A directory that can take new names: one not removed.  Context: ns_lock held. */
static int get_live_dir(struct ufs *fs, uint64_t ino, struct ufs_inode **out)
{
	struct ufs_inode *dir;
	int rc = ufs_dir_get(fs, ino, &dir);

	if (rc)
		return rc;
	if (!dir->di->i_nlink) {
		ufs_iput(dir);
		return -ENOENT;
	}
	*out = dir;
	return 0;
}

/* The position of @name, which @dir must hold.  Context: ns_lock held. */
static int find_name(struct ufs_inode *dir, const char *name, uint64_t *pos)
{
	int rc = ufs_dir_find(dir, name, pos);

	return !rc && !*pos ? -ENOENT : rc;
}

int ufs_lookup(struct ufs *fs, uint64_t parent, const char *name, struct ufs_entry *e)
{
	struct ufs_inode *dir, *ip;
	uint64_t ino, pos;
	int rc;

	if (strlen(name) > UFS_NAME_MAX)
		return -ENAMETOOLONG;
	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = ufs_dir_get(fs, parent, &dir);
	if (rc)
		goto out;
	if (is_dot(name)) {
		ino = dir->ino;
	} else if (is_dotdot(name)) {
		ino = ufs_dir_parent(dir);
	} else {
		rc = find_name(dir, name, &pos);
		if (rc)
			goto out_dir;
		ino = ufs_dir_ino(dir, pos);
	}
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		goto out_dir;
	ufs_nlookup_inc(ip);
	ufs_fill_entry(ip, e);
	ufs_iput(ip);
out_dir:
	ufs_iput(dir);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

/* Store a symlink target in a fresh inode.  Context: in @t. */
static int symlink_store(struct utx *t, struct ufs_inode *ip, const char *target)
{
	size_t len = strlen(target);
	struct ufs_extent e;
	int64_t got;
	int rc;

	if (len < sizeof(ip->di->i_u.symlink)) {
		memset(ip->di->i_u.symlink, 0, sizeof(ip->di->i_u.symlink));
		memcpy(ip->di->i_u.symlink, target, len);
		ip->di->i_flags |= UFS_INODE_FL_INLINE_SYMLINK;
	} else {
		got = ufs_ext_alloc(t, ip, 0, 1, 0, len);
		if (got < 0)
			return (int)got;
		if (got == 0)
			return -ENOSPC;
		rc = ufs_ext_find(ip, 0, &e);
		if (rc != 1)
			return rc < 0 ? rc : -EIO;
		dx_media_memcpy_persist(t->fs->m, ufs_blk(t->fs, e.e_pblk), target, len);
	}
	ip->di->i_size = len;
	return 0;
}

/*
 * Make a new object @name in @parent.  @target: symlink target.  Returns
 * the new inode with a lookup count taken (and a call reference in *out if
 * out is non-NULL).
 */
static int make_node(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent, const char *name,
		     mode_t mode, dev_t rdev, const char *target, struct ufs_entry *e,
		     struct ufs_inode **out, bool *existed)
{
	struct ufs_inode *dir, *ip = NULL;
	uint64_t pos;
	struct utx t;
	int rc;

	rc = name_check(name);
	if (rc)
		return rc;
	if (is_dot(name) || is_dotdot(name))
		return -EEXIST;
	if (target && (!*target || strlen(target) > UFS_SYMLINK_MAX))
		return *target ? -ENAMETOOLONG : -ENOENT;
	pthread_rwlock_wrlock(&fs->ns_lock);
	rc = get_live_dir(fs, parent, &dir);
	if (rc)
		goto out;
	rc = ufs_dir_find(dir, name, &pos);
	if (rc)
		goto out_dir;
	if (pos) {
		rc = -EEXIST;
		if (existed) {
			*existed = true;
			if (!ufs_iget(fs, ufs_dir_ino(dir, pos), &ip))
				*out = ip;
		}
		goto out_dir;
	}
	if (S_ISDIR(mode) && dir->di->i_nlink >= UFS_LINK_MAX) {
		rc = -EMLINK;
		goto out_dir;
	}
	rc = utx_begin(fs, &t);
	if (rc)
		goto out_dir;
	rc = utx_inode(&t, dir);
	if (!rc)
		rc = ufs_inew(fs, &t, c, dir, mode, rdev, &ip);
	if (rc)
		goto abort;
	if (S_ISDIR(mode)) {
		rc = ufs_dir_init(&t, ip, dir->ino);
		if (rc)
			goto abort;
		dir->di->i_nlink++;
	}
	if (target) {
		rc = symlink_store(&t, ip, target);
		if (rc)
			goto abort;
	}
	rc = ufs_dir_add(&t, dir, name, ip->ino, mode_dt(mode));
	if (rc) {
		/* the index may hold what the abort takes back */
		ufs_dix_free(dir);
		goto abort;
	}
	ufs_touch(dir, false, true, true);
	utx_commit(&t);
	ufs_nlookup_inc(ip);
	ufs_fill_entry(ip, e);
	if (out)
		*out = ip;
	else
		ufs_iput(ip);
	goto out_dir;
abort:
	utx_abort(&t);
	if (ip)
		ufs_inew_undo(ip);
out_dir:
	ufs_iput(dir);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

static mode_t apply_umask(const struct ufs_ctx *c, mode_t mode)
{
	return c ? (mode & ~(c->umask & 0777)) : mode;
}

int ufs_mknod(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
	      const char *name, mode_t mode, dev_t rdev, struct ufs_entry *e)
{
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		break;
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	case S_IFDIR:
		return ufs_mkdir(fs, c, parent, name, mode, e);
	default:
		return -EINVAL;
	}
	if (!S_ISCHR(mode) && !S_ISBLK(mode))
		rdev = 0;
	return make_node(fs, c, parent, name, apply_umask(c, mode), rdev, NULL, e, NULL, NULL);
}

int ufs_mkdir(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
	      const char *name, mode_t mode, struct ufs_entry *e)
{
	mode = S_IFDIR | (apply_umask(c, mode) & 07777);
	return make_node(fs, c, parent, name, mode, 0, NULL, e, NULL, NULL);
}

int ufs_symlink(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
		const char *name, const char *target, struct ufs_entry *e)
{
	return make_node(fs, c, parent, name, S_IFLNK | 0777, 0, target, e, NULL, NULL);
}

int ufs_create(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
	       const char *name, mode_t mode, int flags, struct ufs_entry *e)
{
	struct ufs_inode *ip = NULL;
	bool existed = false;
	int rc;

	if (is_dot(name) || is_dotdot(name))
		return (flags & O_EXCL) ? -EEXIST : -EISDIR;
	mode = S_IFREG | (apply_umask(c, mode) & 07777);
	rc = make_node(fs, c, parent, name, mode, 0, NULL, e, &ip, (flags & O_EXCL) ? NULL : &existed);
	if (rc == -EEXIST && existed) {
		if (!ip)
			return -EEXIST;
		if (ufs_isdir(ip)) {
			ufs_iput(ip);
			return -EISDIR;
		}
		/* open the existing file (O_TRUNC waits in break_layouts: no ns_lock here) */
		rc = ufs_open(fs, c, ip->ino, flags);
		if (!rc) {
			ufs_nlookup_inc(ip);
			pthread_rwlock_rdlock(&ip->rwsem);
			ufs_fill_entry(ip, e);
			pthread_rwlock_unlock(&ip->rwsem);
		}
		ufs_iput(ip);
		return rc;
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->icache_lock);
	ip->nopen++;
	pthread_mutex_unlock(&fs->icache_lock);
	ufs_iput(ip);
	return 0;
}

ssize_t ufs_readlink(struct ufs *fs, uint64_t ino, char *buf, size_t size)
{
	struct ufs_inode *ip;
	struct ufs_extent e;
	ssize_t rc;
	size_t len;

	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	if (!ufs_islnk(ip)) {
		ufs_iput(ip);
		return -EINVAL;
	}
	pthread_rwlock_rdlock(&ip->rwsem);
	len = dx_min((size_t)ip->di->i_size, size);
	if (ip->di->i_flags & UFS_INODE_FL_INLINE_SYMLINK) {
		memcpy(buf, ip->di->i_u.symlink, len);
		rc = (ssize_t)len;
	} else {
		rc = ufs_ext_find(ip, 0, &e);
		if (rc == 1) {
			memcpy(buf, ufs_blk(fs, e.e_pblk), len);
			rc = (ssize_t)len;
		} else if (rc == 0) {
			rc = -EIO;
		}
	}
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc;
}

int ufs_link(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino,
	     uint64_t newparent, const char *newname, struct ufs_entry *e)
{
	struct ufs_inode *dir = NULL, *ip = NULL;
	uint64_t pos;
	struct utx t;
	int rc;

	(void)c;
	rc = name_check(newname);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&fs->ns_lock);
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		goto out;
	if (ufs_isdir(ip)) {
		rc = -EPERM;
		goto out;
	}
	if (!ip->di->i_nlink) {
		rc = -ENOENT;
		goto out;
	}
	if (ip->di->i_nlink >= UFS_LINK_MAX) {
		rc = -EMLINK;
		goto out;
	}
	rc = get_live_dir(fs, newparent, &dir);
	if (rc)
		goto out;
	rc = ufs_dir_find(dir, newname, &pos);
	if (!rc && pos)
		rc = -EEXIST;
	if (rc)
		goto out;
	rc = utx_begin_inode(&t, ip);
	if (!rc)
		rc = utx_inode(&t, dir);
	if (!rc)
		rc = ufs_dir_add(&t, dir, newname, ip->ino, mode_dt(ip->di->i_mode));
	if (rc) {
		utx_abort(&t);
		ufs_dix_free(dir);
		goto out;
	}
	ip->di->i_nlink++;
	ufs_touch(ip, false, false, true);
	ufs_touch(dir, false, true, true);
	utx_commit(&t);
	ufs_nlookup_inc(ip);
	ufs_fill_entry(ip, e);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	ufs_iput(dir);
	ufs_iput(ip);
	return rc;
}

/* Drop one link of @ip (all of them for a directory), orphaning it at 0. */
static int drop_link(struct utx *t, struct ufs_inode *ip)
{
	int rc = utx_inode(t, ip);

	if (rc)
		return rc;
	if (ufs_isdir(ip) || ip->di->i_nlink <= 1)
		ip->di->i_nlink = 0;
	else
		ip->di->i_nlink--;
	ufs_touch(ip, false, false, true);
	if (!ip->di->i_nlink)
		return ufs_orphan_add(t, ip);
	return 0;
}

static int remove_name(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
		       const char *name, bool rmdir)
{
	struct ufs_inode *dir = NULL, *ip = NULL;
	uint64_t pos;
	struct utx t;
	int rc;

	if (rmdir && is_dot(name))
		return -EINVAL;
	if (rmdir && is_dotdot(name))
		return -ENOTEMPTY;
	rc = name_check(name);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&fs->ns_lock);
	rc = ufs_dir_get(fs, parent, &dir);
	if (rc)
		goto out;
	rc = find_name(dir, name, &pos);
	if (rc)
		goto out;
	rc = ufs_iget(fs, ufs_dir_ino(dir, pos), &ip);
	if (rc)
		goto out;
	if (rmdir && !ufs_isdir(ip))
		rc = -ENOTDIR;
	else if (!rmdir && ufs_isdir(ip))
		rc = -EISDIR;
	else if (rmdir && !ufs_dir_empty(ip))
		rc = -ENOTEMPTY;
	if (rc)
		goto out;
	rc = utx_begin(fs, &t);
	if (!rc)
		rc = utx_inode(&t, dir);
	if (!rc)
		rc = ufs_dir_remove(&t, dir, pos);
	if (!rc)
		rc = drop_link(&t, ip);
	if (rc) {
		utx_abort(&t);
		ufs_dix_free(dir);
		goto out;
	}
	if (rmdir)
		dir->di->i_nlink--;
	ufs_touch(dir, false, true, true);
	utx_commit(&t);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	ufs_iput(dir);
	/* eviction (if this was the last reference) waits with the caller's ctx */
	if (ip)
		ufs_iput_ctx(ip, c ? &c->wait : NULL);
	return rc;
}

int ufs_unlink(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent, const char *name)
{
	return remove_name(fs, c, parent, name, false);
}

int ufs_rmdir(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent, const char *name)
{
	return remove_name(fs, c, parent, name, true);
}

/*
 * May the directory @anc move into @dir?  Not if @dir is @anc or below it.
 * Context: ns_lock held.  Return: 0, -EINVAL, or -EUCLEAN (a cycle of
 * parents).
 */
static int check_not_under(struct ufs *fs, struct ufs_inode *dir, uint64_t anc)
{
	uint64_t cur = dir->ino, steps = 0;

	while (steps++ < fs->sb.s_inode_count) {
		struct ufs_inode *ip;
		uint64_t up;

		if (cur == anc)
			return -EINVAL;
		if (cur == UFS_ROOT_INO)
			return 0;
		if (ufs_iget(fs, cur, &ip))
			return 0;
		up = ufs_dir_parent(ip);
		ufs_iput(ip);
		if (up == cur)
			return 0;
		cur = up;
	}
	return -EUCLEAN;
}

/* Directory @ip moves from @from to @to: its parent and both link counts. */
static int move_dir(struct utx *t, struct ufs_inode *ip, struct ufs_inode *from,
		    struct ufs_inode *to)
{
	from->di->i_nlink--;
	to->di->i_nlink++;
	return ufs_dir_set_parent(t, ip, to->ino);
}

int ufs_rename(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent, const char *name,
	       uint64_t newparent, const char *newname, unsigned int flags)
{
	struct ufs_inode *sdir = NULL, *ddir = NULL, *sip = NULL, *dip = NULL;
	bool exchange = flags & RENAME_EXCHANGE, sisdir, disdir = false;
	uint64_t spos, dpos;
	struct utx t;
	int rc;

	if (flags & ~(unsigned int)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && exchange)
		return -EINVAL;
	if (is_dot(name) || is_dotdot(name) || is_dot(newname) || is_dotdot(newname))
		return -EBUSY;
	rc = name_check(name);
	if (!rc)
		rc = name_check(newname);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&fs->ns_lock);
	rc = ufs_dir_get(fs, parent, &sdir);
	if (!rc)
		rc = get_live_dir(fs, newparent, &ddir);
	if (!rc)
		rc = find_name(sdir, name, &spos);
	if (!rc)
		rc = ufs_dir_find(ddir, newname, &dpos);
	if (rc)
		goto out;
	rc = ufs_iget(fs, ufs_dir_ino(sdir, spos), &sip);
	if (rc)
		goto out;
	if (dpos) {
		rc = ufs_iget(fs, ufs_dir_ino(ddir, dpos), &dip);
		if (rc)
			goto out;
		disdir = ufs_isdir(dip);
	}
	sisdir = ufs_isdir(sip);
	if (exchange && !dip) {
		rc = -ENOENT;
		goto out;
	}
	if (dip && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}
	if (dip == sip) {
		rc = 0;		/* two names of one file: nothing to do */
		goto out;
	}
	if (sisdir && sdir != ddir)
		rc = check_not_under(fs, ddir, sip->ino);
	if (!rc && exchange && disdir && sdir != ddir)
		rc = check_not_under(fs, sdir, dip->ino);
	if (rc)
		goto out;
	if (dip && !exchange) {
		if (sisdir && !disdir)
			rc = -ENOTDIR;
		else if (!sisdir && disdir)
			rc = -EISDIR;
		else if (disdir && !ufs_dir_empty(dip))
			rc = -ENOTEMPTY;
		if (rc)
			goto out;
	}
	if (sisdir && sdir != ddir && !(dip && disdir) && ddir->di->i_nlink >= UFS_LINK_MAX) {
		rc = -EMLINK;
		goto out;
	}

	rc = utx_begin(fs, &t);
	if (!rc)
		rc = utx_inode(&t, sdir);
	if (!rc)
		rc = utx_inode(&t, ddir);
	if (!rc)
		rc = utx_inode(&t, sip);
	if (!rc && dip)
		rc = utx_inode(&t, dip);
	if (rc)
		goto abort;
	if (exchange) {
		rc = ufs_dir_set_ino(&t, sdir, spos, dip->ino, mode_dt(dip->di->i_mode));
		if (!rc)
			rc = ufs_dir_set_ino(&t, ddir, dpos, sip->ino, mode_dt(sip->di->i_mode));
		if (!rc && sdir != ddir && sisdir)
			rc = move_dir(&t, sip, sdir, ddir);
		if (!rc && sdir != ddir && disdir)
			rc = move_dir(&t, dip, ddir, sdir);
		ufs_touch(dip, false, false, true);
	} else {
		if (dip) {
			rc = ufs_dir_set_ino(&t, ddir, dpos, sip->ino, mode_dt(sip->di->i_mode));
			if (!rc)
				rc = drop_link(&t, dip);
			if (!rc && disdir)
				ddir->di->i_nlink--;
		} else {
			rc = ufs_dir_add(&t, ddir, newname, sip->ino, mode_dt(sip->di->i_mode));
		}
		if (!rc)
			rc = ufs_dir_remove(&t, sdir, spos);
		if (!rc && sisdir && sdir != ddir)
			rc = move_dir(&t, sip, sdir, ddir);
	}
	if (rc)
		goto abort;
	ufs_touch(sip, false, false, true);
	ufs_touch(sdir, false, true, true);
	ufs_touch(ddir, false, true, true);
	utx_commit(&t);
	goto out;
abort:
	utx_abort(&t);
	ufs_dix_free(sdir);
	ufs_dix_free(ddir);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	ufs_iput(sdir);
	ufs_iput(ddir);
	ufs_iput(sip);
	if (dip)
		ufs_iput_ctx(dip, c ? &c->wait : NULL);
	return rc;
}
