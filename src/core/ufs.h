/* SPDX-License-Identifier: MIT */
/*
 * ufs.h - the udaxfs file system objects, as the FUSE daemon calls them.
 *
 * The daemon only decodes requests, calls these and replies.  Every call
 * returns 0 (or a byte count) on success and -errno on failure.  Inode
 * numbers are the FUSE node ids (the root is UFS_ROOT_INO == FUSE_ROOT_ID).
 *
 * Lookup counts: every call that returns a struct ufs_entry (lookup, create,
 * mknod, mkdir, symlink, link, readdirplus) adds one to that inode's lookup
 * count, exactly like the kernel's nlookup; ufs_forget() drops them.  An
 * inode whose link count and lookup count and open count are all zero is
 * evicted: break_layouts over the whole file, then its blocks and the inode
 * are freed.  Unlinked-but-referenced inodes sit on an on-media orphan list
 * so a crash cannot leak them.
 *
 * Permission checks are the kernel's (mounted with default_permissions); the
 * core only uses the caller's identity for ownership of new objects and for
 * the setgid-directory rule.
 *
 * Context: all calls are thread-safe; calls that free blocks may sleep in
 * break_layouts and return -EINTR (interrupted) or -EBUSY (recall timeout),
 * leaving the file unchanged.
 */
#ifndef UDAX_UFS_H
#define UDAX_UFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "dax.h"
#include "media.h"

#define UFS_ROOT_INO 1
#define UFS_NAME_MAX 255
#define UFS_SYMLINK_MAX 4095
#define UFS_XATTR_NAME_MAX 255
#define UFS_XATTR_SIZE_MAX 65536

struct ufs;
struct ufs_inode;

/* Who is asking, and how to tell that they gave up. */
struct ufs_ctx {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	mode_t umask;
	struct dx_wait_ctx wait;	/* interrupt / timeout for break_layouts */
	/*
	 * Who drops privileges on a write, a truncate (ufs_setattr size, an
	 * O_TRUNC open) and a chown: the kernel, or the file system
	 * (@killpriv: FUSE_HANDLE_KILLPRIV_V2 negotiated).  What each of them
	 * drops is the core's rule, applied in the operation's own
	 * transaction: security.capability always; the set-ID bits on a write
	 * or truncate when @no_fsetid (the kernel says the caller lacks
	 * CAP_FSETID); on a chown of a non-directory, the set-ID bits always
	 * (whoever drops privileges: the VFS does it too).
	 */
	bool killpriv;
	bool no_fsetid;
	bool *killed;			/* out (may be NULL): set when the mode or xattrs changed */
};

struct ufs_entry {
	uint64_t ino;
	uint64_t generation;
	struct stat st;
};

struct ufs_mount_opts {
	bool readonly;
	enum dx_policy policy;
	uint64_t recall_timeout_ns;
	const struct dx_dax_ops *dax_ops;
	void *dax_ops_arg;
	/* print "using backup superblock" etc. here (NULL: stderr) */
	void (*log)(void *arg, const char *msg);
	void *log_arg;
	/*
	 * Blocks the allocator must never hand out, nor put back in the free
	 * pool when a file frees them (ufs_alloc_quarantine()): they may be
	 * under pins an earlier mount granted.  Applied before orphans are
	 * reclaimed.  NULL: none.
	 */
	const struct ufs_blk_range *quarantine;
	size_t nquarantine;
};

/*
 * ufs_mount() - validate the superblock (falling back to the backup, and
 * saying so), replay/roll back the journal, reclaim orphans.
 * Return: 0, or -errno with dx_errmsg() naming the structure and its
 * offset (not udaxfs, newer version, truncated image, corrupted ...).
 * Nothing is written to a device that fails validation.
 * Context: may sleep (orphan reclaim); @m stays the caller's and must
 * outlive the mount.
 */
int ufs_mount(struct ufs **out, struct dx_media *m, const struct ufs_mount_opts *o);
/*
 * ufs_unmount() - make everything durable, mark the file system clean.
 * Inodes still referenced by pins are left on the orphan list, never freed
 * under a pin.  Return: 0 (*fsp freed and cleared), or -EBUSY when pages
 * are still referenced after the recall timeout (2 s when the mount set
 * none): the data is safe, the unlinked files stay on the orphan list (the
 * next mount reclaims them), the state stays MOUNTED, and *fsp is left
 * valid so the caller may retry once the pins drain, or just exit;
 * -EUCLEAN when unlinked inodes could not be freed because their metadata is
 * corrupt: they stay on the orphan list with their blocks, the mount is
 * freed and *fsp cleared; run fsck.udaxfs.
 * Context: no other call on this mount may run or follow; sleeps
 * (break_layouts on the orphans).
 */
int ufs_unmount(struct ufs **fsp);

/* The mount's parts.  Context: any.  Return: the part (owned by the mount). */
/* ufs_media() - Return: the device the mount is on. */
struct dx_media *ufs_media(struct ufs *fs);
/*
 * ufs_quarantined_blocks() - Context: takes the allocator lock.
 * Return: blocks under quarantine (ufs_mount_opts.quarantine), free or in use.
 */
uint64_t ufs_quarantined_blocks(struct ufs *fs);
/* ufs_dax() - Return: the mount's page lifecycle state (dax.h). */
struct dx_dax *ufs_dax(struct ufs *fs);
/* ufs_block_size() - Return: the file system block size in bytes. */
uint32_t ufs_block_size(const struct ufs *fs);

/* ---- names ---- */
/*
 * ufs_lookup() - find @name in directory @parent; fill *@e and take one
 * lookup count on it.
 * Context: takes the namespace lock shared.
 * Return: 0, -ENOENT, -ENOTDIR, -ENAMETOOLONG, -EUCLEAN, -ENOMEM.
 */
int ufs_lookup(struct ufs *fs, uint64_t parent, const char *name, struct ufs_entry *e);
/*
 * ufs_forget() - drop @nlookup lookup counts of @ino (as FUSE_FORGET); an
 * inode with no link, lookup or open left is evicted (see above).
 * Context: may sleep (eviction frees blocks after break_layouts).
 * Return: nothing (an unknown @ino is ignored).
 */
void ufs_forget(struct ufs *fs, uint64_t ino, uint64_t nlookup);
/*
 * ufs_getattr() - the attributes of @ino into *@st.
 * Context: never waits for a writer of the inode: while one holds its
 * i_rwsem the last committed snapshot is returned.
 * Return: 0, -ENOENT, -EUCLEAN.
 */
int ufs_getattr(struct ufs *fs, uint64_t ino, struct stat *st);

/* Fields of struct ufs_setattr to apply. */
#define UFS_SET_MODE      (1u << 0)
#define UFS_SET_UID       (1u << 1)
#define UFS_SET_GID       (1u << 2)
#define UFS_SET_SIZE      (1u << 3)
#define UFS_SET_ATIME     (1u << 4)
#define UFS_SET_MTIME     (1u << 5)
#define UFS_SET_ATIME_NOW (1u << 6)
#define UFS_SET_MTIME_NOW (1u << 7)
#define UFS_SET_CTIME     (1u << 8)
struct ufs_setattr {
	unsigned int valid;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};
/*
 * ufs_setattr() - apply the fields of @sa named in sa->valid, in one
 * transaction; a size change frees blocks only after break_layouts, and
 * drops what c->kill says.  *@st (may be NULL) receives the new attributes.
 * Context: takes the inode's lock exclusively; may sleep in break_layouts.
 * Return: 0, -EINTR or -EBUSY (recall interrupted or timed out: nothing
 * changed), -EINVAL, -EFBIG, -EISDIR, -ENOSPC, -EROFS, -EUCLEAN.
 */
int ufs_setattr(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino,
		const struct ufs_setattr *sa, struct stat *st);

/*
 * Creating names: ufs_mknod() (any file type but a directory; @rdev for
 * devices), ufs_mkdir(), ufs_symlink() (target up to UFS_SYMLINK_MAX),
 * ufs_link() (a new name @newname in @newparent for @ino).  The new
 * object is owned by c->uid and c->gid (or the setgid directory's group),
 * with @mode less c->umask; *@e is filled and one lookup count taken.
 * Context: takes the namespace lock exclusively; one transaction.
 * Return: 0, or -errno:
 * -ENOENT, -ENOTDIR, -EEXIST, -ENAMETOOLONG, -EMLINK, -ENOSPC (no block,
 * inode or log room), -EROFS, -EUCLEAN (corrupt metadata: dx_errmsg()
 * says where), -ENOMEM.
 */
int ufs_mknod(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
	      const char *name, mode_t mode, dev_t rdev, struct ufs_entry *e);
int ufs_mkdir(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
	      const char *name, mode_t mode, struct ufs_entry *e);
int ufs_symlink(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
		const char *name, const char *target, struct ufs_entry *e);
/*
 * ufs_readlink() - copy the target of symlink @ino into @buf (@size bytes).
 * Context: takes the inode's lock shared.
 * Return: length of the target copied into buf (not NUL-terminated), or
 * -errno (-EINVAL: not a symlink; -ENOENT; -EUCLEAN).
 */
ssize_t ufs_readlink(struct ufs *fs, uint64_t ino, char *buf, size_t size);
int ufs_link(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino,
	     uint64_t newparent, const char *newname, struct ufs_entry *e);
/*
 * ufs_unlink() / ufs_rmdir() - remove @name from @parent (rmdir: an empty
 * directory).  The inode goes when no link, lookup or open is left; until
 * then it sits on the orphan list.
 * Context: takes the namespace lock exclusively for one transaction; the
 * victim is evicted after it is dropped (that may sleep in break_layouts).
 * Return: 0, -ENOENT, -ENOTDIR, -EISDIR (unlink of a directory),
 * -ENOTEMPTY, -ENOSPC (log), -EROFS, -EUCLEAN.
 */
int ufs_unlink(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent, const char *name);
int ufs_rmdir(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent, const char *name);
/*
 * ufs_rename() - move @name in @parent to @newname in @newparent, atomically
 * (one transaction).  @flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE
 * (RENAME_WHITEOUT: -EINVAL).  A replaced target is unlinked as by
 * ufs_unlink().
 * Context: takes the namespace lock exclusively for one transaction; a
 * replaced victim is evicted after it is dropped.
 * Return: 0, or -errno: -ENOENT, -EEXIST (NOREPLACE), -EINVAL (a directory
 * into itself, unknown flags), -EBUSY ("." or ".."), -ENOTDIR, -EISDIR,
 * -ENOTEMPTY, -EMLINK, -ENOSPC, -EROFS, -EUCLEAN.
 */
int ufs_rename(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent, const char *name,
	       uint64_t newparent, const char *newname, unsigned int flags);

/* ---- open files ---- */
/*
 * ufs_open() - count an open reference on @ino; O_TRUNC truncates to 0
 * (break_layouts first, and what c->kill says is dropped).
 * Context: may sleep in break_layouts (O_TRUNC).
 * Return: 0, -ENOENT, -EISDIR (writable open of a directory), -EINTR or
 * -EBUSY (O_TRUNC's recall: nothing changed), -EROFS, -EUCLEAN.
 */
int ufs_open(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, int flags);
/*
 * ufs_create() - create and open a regular file @name in @parent (O_EXCL
 * honoured; an existing file is opened as by ufs_open()).  *@e is filled,
 * one lookup count and one open reference taken.
 * Context: as ufs_mknod().  Return: as ufs_mknod(), and as ufs_open().
 */
int ufs_create(struct ufs *fs, const struct ufs_ctx *c, uint64_t parent,
	       const char *name, mode_t mode, int flags, struct ufs_entry *e);
/*
 * ufs_release() - drop an open reference (FUSE_RELEASE); the inode may be
 * evicted (see ufs_forget()).  Context: may sleep.  Return: nothing.
 */
void ufs_release(struct ufs *fs, uint64_t ino);
/*
 * ufs_read() - copy up to @size bytes at @off into @buf (holes read as
 * zeros, nothing past EOF).
 * Context: takes the inode's lock shared.
 * Return: bytes copied (0 at or past EOF), or -errno (-EISDIR, -ENOENT,
 * -EIO/-EUCLEAN: an extent pointing outside the data area).
 */
ssize_t ufs_read(struct ufs *fs, uint64_t ino, void *buf, size_t size, uint64_t off);
/*
 * ufs_read_iov() - read without a copy: @fn gets [off, off + size) of the
 * file, cut at the end of file, as @cnt iovecs (@len bytes in all; none at
 * or past the end of file): mapped bytes point into the device, holes at a
 * shared read-only region of zeros.  The pointers are valid only until @fn
 * returns: it runs with the file's i_rwsem held shared, so no truncate,
 * punch or eviction can free those blocks under it, and it must copy or
 * send the bytes before it returns, without calling the core for this
 * file (a writer waits for it) and without waiting for another request.
 * Context: may sleep on the file's i_rwsem.
 * Return: 0 (@fn was called exactly once) or -errno (@fn was not called).
 */
typedef void (*ufs_read_actor_t)(void *arg, const struct iovec *iov, int cnt, size_t len);
int ufs_read_iov(struct ufs *fs, uint64_t ino, size_t size, uint64_t off,
		 ufs_read_actor_t fn, void *arg);
/*
 * ufs_write() - copy @size bytes of @buf to @off, allocating blocks as
 * needed; the data is durable on return, the size and times are committed
 * in a transaction; what c->kill says is dropped.
 * Context: takes the inode's lock exclusively.
 * Return: bytes written (all of @size, or short when the device filled up
 * part way), or -errno (-ENOSPC, -EFBIG, -EISDIR, -EROFS, -EIO, -EUCLEAN).
 */
ssize_t ufs_write(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino,
		  const void *buf, size_t size, uint64_t off);
/*
 * ufs_fsync() - make @ino durable: data goes out with persisting stores and
 * metadata with committed transactions, so what is left is a final fence.
 * Context: any.  Return: 0, -ENOENT.
 */
int ufs_fsync(struct ufs *fs, uint64_t ino, bool datasync);
/*
 * ufs_fallocate() - FALLOC_FL_* modes: 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE,
 * ZERO_RANGE, COLLAPSE_RANGE, INSERT_RANGE; anything else -EOPNOTSUPP.
 * Modes that free or move blocks break the layouts of the range first.
 * Context: takes the inode's lock exclusively; may sleep in break_layouts.
 * Return: 0, -EOPNOTSUPP, -EINVAL (unaligned collapse/insert, bad range),
 * -ENOSPC, -EFBIG, -EINTR or -EBUSY (recall: nothing changed), -EROFS.
 */
int ufs_fallocate(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, int mode,
		  uint64_t off, uint64_t len);
/*
 * ufs_lseek() - SEEK_DATA / SEEK_HOLE from @off (SEEK_SET/CUR/END are the
 * kernel's).  Context: takes the inode's lock shared.
 * Return: the offset, -ENXIO (@off at or past EOF, or no data after it),
 * -EINVAL (another @whence).
 */
int64_t ufs_lseek(struct ufs *fs, uint64_t ino, int64_t off, int whence);
/*
 * ufs_copy_file_range() - copy @len bytes from @ino_in at @off_in to
 * @ino_out at @off_out inside the file system (@flags must be 0), as
 * ufs_read() + ufs_write() without a trip through the kernel.
 * Context: takes both inodes' locks in inode order.
 * Return: bytes copied (short at EOF of @ino_in), or -errno as ufs_write().
 */
ssize_t ufs_copy_file_range(struct ufs *fs, const struct ufs_ctx *c,
			    uint64_t ino_in, uint64_t off_in,
			    uint64_t ino_out, uint64_t off_out, size_t len, unsigned int flags);

/* ---- directories ---- */
/*
 * ufs_readdir() - emit entries starting at cookie @off (0 = start; "." and
 * ".." included).  Cookies stay valid across concurrent changes.  For each
 * entry @fill is called with the cookie of the *next* entry; a non-zero
 * return stops (buffer full) without consuming that entry.  With @plus the
 * entry's attributes are filled in and its lookup count is taken (only for
 * entries the filler accepted; the core drops it again if fill refused).
 * "." and ".." come first (cookies 1 and 2) with e->ino == 0 and no lookup
 * count taken (st.st_ino and st.st_mode are set); other cookies are the
 * record's byte position in the directory + 3, so an entry that stays is
 * returned exactly once even while others are created and removed.
 * Return: 0 or -errno.
 */
typedef int (*ufs_fill_t)(void *arg, const char *name, const struct ufs_entry *e,
			  uint64_t next_off);
int ufs_readdir(struct ufs *fs, uint64_t dir, uint64_t off, bool plus,
		ufs_fill_t fill, void *arg);
/*
 * ufs_fsyncdir() - directory changes are committed transactions already:
 * only a final fence is left.  Context: any.  Return: 0.
 */
int ufs_fsyncdir(struct ufs *fs, uint64_t dir);

/*
 * ufs_statfs() - sizes and free counts into *@sv (all free blocks are
 * available: no reserve).  Context: takes the allocator lock.  Return: 0.
 */
int ufs_statfs(struct ufs *fs, struct statvfs *sv);

/* ---- extended attributes ---- */
/*
 * Extended attributes live in one block per inode.  @flags: 0,
 * XATTR_CREATE, XATTR_REPLACE.  A @size of 0 on get/list returns the size
 * needed.
 * Context: take the inode's lock (shared to read, exclusive to change);
 * changes are one transaction.
 * Return: set/remove: 0 or -errno; get/list: the value's or the list's
 * length, or -errno.  Errors: -ENODATA (no such attribute, or a get of an
 * unknown namespace), -EEXIST (XATTR_CREATE), -ERANGE (@size too small,
 * name or value too long), -ENOSPC (the block is full), -EOPNOTSUPP (a set
 * in an unknown namespace), -EROFS, -EUCLEAN.
 */
int ufs_setxattr(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags);
ssize_t ufs_getxattr(struct ufs *fs, uint64_t ino, const char *name, void *value, size_t size);
ssize_t ufs_listxattr(struct ufs *fs, uint64_t ino, char *list, size_t size);
int ufs_removexattr(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, const char *name);

/* ---- direct access: the layout service's view of a file ---- */
struct ufs_layout_seg {
	uint64_t file_off;	/* byte offset in the file (aligned to 4 KiB << order) */
	uint64_t dev_off;	/* byte offset on the device */
	unsigned int order;	/* 0: one 4 KiB page; UDAX_HUGE_ORDER: 2 MiB */
	struct dx_page *page;	/* its handle, with one UDAX_REF_MAP reference */
};
/*
 * ufs_layout_grant() - allocate every block of [off, off+len) (page
 * aligned), extend the file size to off+len if @write and it is smaller
 * (and set mtime and ctime: the client may store from then on),
 * track each page (a 2 MiB entry where file range and device run are both
 * 2 MiB aligned) and take one UDAX_REF_MAP reference per segment, all under
 * the inode's i_rwsem (exclusive: it may allocate) and its layout lock
 * (shared), so that no truncate can free a block between allocation and
 * tracking.  Fresh blocks are zeroed.  When a small entry is already
 * tracked where a 2 MiB one could go (or the reverse), the existing entry's
 * order is used, so a huge segment may cover more than [off, off+len).
 * @out must hold len / 4096 entries.  The caller drops the references with
 * dx_page_put(seg.page, UDAX_REF_MAP).
 * Context: takes the inode's i_rwsem exclusively and its layout lock
 * shared; one transaction when it allocates or grows the size.
 * Return: number of segments, or -errno (-ENOSPC, -EFBIG, -EINVAL unaligned,
 * -EBUSY a recall is under way on the file).
 */
int ufs_layout_grant(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, uint64_t off,
		     uint64_t len, bool write, struct ufs_layout_seg *out, size_t max);
/*
 * ufs_layout_grant_size() - the same, but the file size grows (with
 * UFS_GRANT_WRITE) only to @size_end (<= off + len): the end of what the
 * client asked for.  With UFS_GRANT_KEEP_SIZE the size never changes: a
 * writable grant whose @size_end lies past EOF fails with -ERANGE (the
 * kernel's write-back cache owns the size; the client grows the file
 * through the mount first, with fallocate).
 * On a device whose mappings must be 2 MiB aligned, [off, off + len) is
 * rounded out to 2 MiB and every chunk of it is one 2 MiB-aligned device run
 * (relocating blocks written earlier in smaller pieces), tracked as one huge
 * entry; blocks past EOF so allocated stay past EOF.  Device alignments
 * other than 4 KiB and 2 MiB: -EINVAL.
 * Context and Return: as ufs_layout_grant(), and -ERANGE (above).
 */
int ufs_layout_grant_size(struct ufs *fs, const struct ufs_ctx *c, uint64_t ino, uint64_t off,
			  uint64_t len, uint64_t size_end, unsigned int flags,
			  struct ufs_layout_seg *out, size_t max);
#define UFS_GRANT_WRITE		1u	/* a writable layout: allocate, may grow the size */
#define UFS_GRANT_KEEP_SIZE	2u	/* never change the size: -ERANGE instead */
/*
 * ufs_mapping() - the inode's dx_mapping (valid while the caller holds a
 * lookup or open reference).  Context: takes the inode cache lock briefly.
 * Return: the mapping, or NULL (no such inode).
 */
struct dx_mapping *ufs_mapping(struct ufs *fs, uint64_t ino);

#endif /* UDAX_UFS_H */
