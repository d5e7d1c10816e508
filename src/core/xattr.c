// SPDX-License-Identifier: MIT
/*
 * xattr.c - extended attributes: one block per inode (format.h), entries
 * packed after the header, each padded to 4 bytes.  A change rebuilds the
 * entries in DRAM and writes them back inside one transaction.  x_checksum
 * is crc32c of the x_used bytes after the header.
 *
 * Namespaces user., trusted., security. and system. are stored as given;
 * who may touch trusted.* and security.* is the kernel's business (it
 * checks capabilities before FUSE sees the request).
 *
 * Context: i_rwsem of the inode (exclusive for changes).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "ufs_int.h"

#define XHDR		sizeof(struct ufs_xattr_hdr)
#define XSPACE		(UFS_BLOCK_SIZE - XHDR)
#define XENT_SIZE(nl, vl) ((sizeof(struct ufs_xattr_ent) + (nl) + (vl) + 3u) & ~3u)

static_assert(sizeof(struct ufs_xattr_hdr) == 16, "xattr header is 16 bytes");
static_assert(sizeof(struct ufs_xattr_ent) == 4, "xattr entry header is 4 bytes");

static int name_check(const char *name)
{
	static const char *const ns[] = { "user.", "trusted.", "security.", "system." };
	size_t len = strlen(name), i;

	if (len > UFS_XATTR_NAME_MAX)
		return -ERANGE;
	for (i = 0; i < UDAX_ARRAY_SIZE(ns); i++) {
		size_t pl = strlen(ns[i]);

		if (!strncmp(name, ns[i], pl))
			return len > pl ? 0 : -EINVAL;
	}
	return -EOPNOTSUPP;
}

/* The inode's xattr block, validated, or NULL (none).  Return <0: corrupt. */
static int xblock(struct ufs_inode *ip, struct ufs_xattr_hdr **out)
{
	struct ufs *fs = ip->fs;
	uint64_t blk = ip->di->i_xattr_block;
	struct ufs_xattr_hdr *h;

	*out = NULL;
	if (!blk)
		return 0;
	if (!ufs_data_range(&fs->sb, blk, 1))
		goto bad;
	h = ufs_blk(fs, blk);
	if (h->x_magic != UFS_XATTR_MAGIC || h->x_used > XSPACE)
		goto bad;
	*out = h;
	return 0;
bad:
	dx_seterr("inode %llu: bad xattr block %llu", (unsigned long long)ip->ino,
		    (unsigned long long)blk);
	return -EUCLEAN;
}

/* Iterate entries of @h: returns the next entry or NULL. */
static struct ufs_xattr_ent *xnext(struct ufs_xattr_hdr *h, uint32_t *off)
{
	struct ufs_xattr_ent *e;
	uint32_t sz;

	if (*off + sizeof(*e) > h->x_used)
		return NULL;
	e = (struct ufs_xattr_ent *)((char *)(h + 1) + *off);
	sz = XENT_SIZE(e->e_name_len, e->e_value_len);
	if (!e->e_name_len || *off + sz > h->x_used)
		return NULL;
	*off += sz;
	return e;
}

static struct ufs_xattr_ent *xfind(struct ufs_xattr_hdr *h, const char *name)
{
	size_t len = strlen(name);
	struct ufs_xattr_ent *e;
	uint32_t off = 0;

	if (!h)
		return NULL;
	while ((e = xnext(h, &off)))
		if (e->e_name_len == len && !memcmp(e->e_data, name, len))
			return e;
	return NULL;
}

/*
 * Rebuild the block without @skip and with (@name, @value) appended when
 * @name is non-NULL.  Context: i_rwsem exclusive.
 */
static int xrewrite_tx(struct utx *t, struct ufs_inode *ip, struct ufs_xattr_hdr *h,
		       struct ufs_xattr_ent *skip, const char *name, const void *value, size_t size);

static int xrewrite(struct ufs_inode *ip, struct ufs_xattr_hdr *h, struct ufs_xattr_ent *skip,
		    const char *name, const void *value, size_t size)
{
	struct utx t;
	int rc;

	rc = utx_begin_inode(&t, ip);
	if (!rc)
		rc = xrewrite_tx(&t, ip, h, skip, name, value, size);
	if (rc) {
		utx_abort(&t);
		return rc;
	}
	utx_commit(&t);
	return 0;
}

/* xrewrite() inside the caller's transaction @t (the inode already logged). */
static int xrewrite_tx(struct utx *t, struct ufs_inode *ip, struct ufs_xattr_hdr *h,
		       struct ufs_xattr_ent *skip, const char *name, const void *value, size_t size)
{
	struct ufs *fs = ip->fs;
	char buf[UFS_BLOCK_SIZE];
	struct ufs_xattr_hdr *nh = (struct ufs_xattr_hdr *)buf;
	struct ufs_xattr_ent *e;
	uint32_t off = 0, used = 0, count = 0;
	uint64_t blk = ip->di->i_xattr_block;
	int rc;

	memset(buf, 0, sizeof(buf));
	while (h && (e = xnext(h, &off))) {
		uint32_t sz = XENT_SIZE(e->e_name_len, e->e_value_len);

		if (e == skip)
			continue;
		memcpy(buf + XHDR + used, e, sz);
		used += sz;
		count++;
	}
	if (name) {
		size_t nl = strlen(name);
		uint32_t sz = XENT_SIZE(nl, size);

		if (used + sz > XSPACE)
			return -ENOSPC;
		e = (struct ufs_xattr_ent *)(buf + XHDR + used);
		e->e_name_len = (uint8_t)nl;
		e->e_value_len = (uint16_t)size;
		memcpy(e->e_data, name, nl);
		if (size)
			memcpy(e->e_data + nl, value, size);
		used += sz;
		count++;
	}
	nh->x_magic = UFS_XATTR_MAGIC;
	nh->x_count = (uint16_t)count;
	nh->x_used = used;
	nh->x_checksum = dx_crc32c(0, buf + XHDR, used);

	if (!count && blk) {
		rc = ufs_free_blocks(fs->a, t->tx, blk, 1);
		if (rc)
			return rc;
		ip->di->i_xattr_block = 0;
		ufs_iblocks(ip, -1);
	} else if (count && !blk) {
		uint32_t got;

		rc = ufs_alloc_blocks(fs->a, t->tx, 0, 1, 1, 0, &blk, &got);
		if (rc)
			return rc;
		/* fresh block: not reachable before commit, written durably here */
		dx_media_memcpy_persist(fs->m, ufs_blk(fs, blk), buf, XHDR + used);
		ip->di->i_xattr_block = blk;
		ufs_iblocks(ip, 1);
	} else if (count) {
		uint32_t len = XHDR + dx_max(used, h->x_used);

		rc = utx_add(t, ufs_blk(fs, blk), len);
		if (rc)
			return rc;
		memcpy(ufs_blk(fs, blk), buf, len);
	}
	ufs_touch(ip, false, false, true);
	return 0;
}

/*
 * ufs_kill_privs() - drop what @kill (UFS_KILL_*) names from @ip inside
 * the caller's transaction, as the VFS does before a write, truncate or
 * chown.  Context: i_rwsem exclusive, in @t with the inode logged.
 * Return: 1 something changed, 0 nothing to drop, -errno.
 */
int ufs_kill_privs(struct utx *t, struct ufs_inode *ip, unsigned int kill)
{
	struct ufs_dinode *di = ip->di;
	int changed = 0, rc;

	if (S_ISDIR(di->i_mode))
		return 0;
	if (kill & UFS_KILL_SUIDGID) {
		uint32_t m = di->i_mode & ~(uint32_t)S_ISUID;

		if (m & S_IXGRP)
			m &= ~(uint32_t)S_ISGID;
		if (m != di->i_mode) {
			di->i_mode = m;
			changed = 1;
		}
	}
	if ((kill & UFS_KILL_CAPS) && di->i_xattr_block) {
		struct ufs_xattr_hdr *h;
		struct ufs_xattr_ent *e;

		rc = xblock(ip, &h);
		if (rc)
			return rc;
		e = xfind(h, "security.capability");
		if (e) {
			rc = xrewrite_tx(t, ip, h, e, NULL, NULL, 0);
			if (rc)
				return rc;
			changed = 1;
		}
	}
	return changed;
}

/*
 * ufs_kill_mask() - the privileges rule, in one place: changing data (@data:
 * a write or a truncate) drops security.capability, and the set-ID bits of
 * a caller without CAP_FSETID, when the file system and not the kernel
 * drops privileges (@c->killpriv); a chown (@chown) drops the set-ID bits
 * of a non-directory whoever asks, as the VFS does (tmpfs shows it), and
 * the capability when the file system drops privileges.
 * Context: any.  Return: UFS_KILL_* bits.
 */
unsigned int ufs_kill_mask(const struct ufs_ctx *c, bool data, bool chown)
{
	unsigned int kill = 0;
	bool fs_kills = c && c->killpriv;

	if (data && fs_kills)
		kill |= UFS_KILL_CAPS | (c->no_fsetid ? UFS_KILL_SUIDGID : 0);
	if (chown)
		kill |= UFS_KILL_SUIDGID | (fs_kills ? UFS_KILL_CAPS : 0);
	return kill;
}

/*
 * ufs_kill_privs_ctx() - ufs_kill_privs() for the request @c, telling it
 * (*@c->killed) when something was dropped: the kernel's cached
 * attributes are stale then.
 * Context: as ufs_kill_privs().  Return: 0 or -errno.
 */
int ufs_kill_privs_ctx(struct utx *t, struct ufs_inode *ip, const struct ufs_ctx *c,
		       unsigned int kill)
{
	int rc;

	if (!kill)
		return 0;
	rc = ufs_kill_privs(t, ip, kill);
	if (rc > 0 && c && c->killed)
		*c->killed = true;
	return rc < 0 ? rc : 0;
}

/*
 * Set @name of inode @ino to @value (or remove it, @remove), as @flags
 * (XATTR_CREATE / XATTR_REPLACE) allow.  Context: the name and size are
 * checked.  Return: 0 or -errno.
 */
static int xupdate(struct ufs *fs, uint64_t ino, const char *name, const void *value,
		   size_t size, int flags, bool remove)
{
	struct ufs_xattr_hdr *h;
	struct ufs_xattr_ent *e;
	struct ufs_inode *ip;
	int rc;

	if (fs->ro)
		return -EROFS;
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&ip->rwsem);
	rc = xblock(ip, &h);
	if (rc)
		goto out;
	e = xfind(h, name);
	if (e && (flags & XATTR_CREATE))
		rc = -EEXIST;
	else if (!e && (flags & XATTR_REPLACE))
		rc = -ENODATA;
	else if (size >= XSPACE)
		rc = -ENOSPC;
	else
		rc = xrewrite(ip, h, e, remove ? NULL : name, value, size);
out:
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc;
}

int ufs_setxattr(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags)
{
	int rc;

	(void)c;
	rc = name_check(name);
	if (rc)
		return rc;
	if (size > UFS_XATTR_SIZE_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	return xupdate(fs, ino, name, value, size, flags, false);
}

ssize_t ufs_getxattr(struct ufs *fs, uint64_t ino, const char *name, void *value, size_t size)
{
	struct ufs_xattr_hdr *h;
	struct ufs_xattr_ent *e;
	struct ufs_inode *ip;
	ssize_t rc;

	rc = name_check(name);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&ip->rwsem);
	rc = xblock(ip, &h);
	if (rc)
		goto out;
	e = xfind(h, name);
	if (!e)
		rc = -ENODATA;
	else if (!size)
		rc = e->e_value_len;
	else if (size < e->e_value_len)
		rc = -ERANGE;
	else {
		memcpy(value, e->e_data + e->e_name_len, e->e_value_len);
		rc = e->e_value_len;
	}
out:
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc;
}

ssize_t ufs_listxattr(struct ufs *fs, uint64_t ino, char *list, size_t size)
{
	struct ufs_xattr_hdr *h;
	struct ufs_xattr_ent *e;
	struct ufs_inode *ip;
	uint32_t off = 0;
	size_t need = 0;
	ssize_t rc;

	rc = ufs_iget(fs, ino, &ip);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&ip->rwsem);
	rc = xblock(ip, &h);
	if (rc || !h)
		goto out;
	while ((e = xnext(h, &off))) {
		if (size && need + e->e_name_len + 1 > size) {
			rc = -ERANGE;
			goto out;
		}
		if (size) {
			memcpy(list + need, e->e_data, e->e_name_len);
			list[need + e->e_name_len] = 0;
		}
		need += e->e_name_len + 1u;
	}
	rc = (ssize_t)need;
out:
	pthread_rwlock_unlock(&ip->rwsem);
	ufs_iput(ip);
	return rc;
}

int ufs_removexattr(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, const char *name)
{
	int rc;

	(void)c;
	rc = name_check(name);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	return xupdate(fs, ino, name, NULL, 0, XATTR_REPLACE, true);
}

int ufs_xattr_free(struct utx *t, struct ufs_inode *ip)
{
	int rc;

	if (!ip->di->i_xattr_block)
		return 0;
	if (!ufs_data_range(&t->fs->sb, ip->di->i_xattr_block, 1)) {
		dx_seterr("inode %" PRIu64 ": xattr block %" PRIu64 " outside the data area",
			    ip->ino, ip->di->i_xattr_block);
		return -EUCLEAN;
	}
	rc = utx_inode(t, ip);
	if (!rc)
		rc = ufs_free_blocks(t->fs->a, t->tx, ip->di->i_xattr_block, 1);
	if (rc)
		return rc;
	ip->di->i_xattr_block = 0;
	ufs_iblocks(ip, -1);
	return 0;
}
