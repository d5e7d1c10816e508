/* SPDX-License-Identifier: MIT */
/*
 * ufs_int.h - internals of the ufs.h layer: the mounted file system, the
 * DRAM inode cache, the transaction wrapper, the extent tree and the
 * directory index.  Not a contract: only txn.c, icache.c, mount.c, the
 * file-data files (through inode_int.h: inode.c, file.c, falloc.c, grant.c),
 * extent.c, the namespace (through dir_int.h: dir.c, namei.c) and xattr.c
 * include it (and the ufs unit tests).
 *
 * The layer's pieces, lowest first: txn.c (transactions over the journal),
 * icache.c (the inode cache, the orphan list), extent.c, the file data
 * (inode.c, file.c, falloc.c, grant.c), dir.c, namei.c and xattr.c (the
 * namespace), mount.c (mount and unmount, which call all of them).
 *
 * Lock order (journal.h / dax.h, repeated for this layer):
 *   fs->ns_lock (namespace, rwlock)  ->  inode i_rwsem  ->  layout lock
 *     ->  journal mutex  ->  allocator lock
 *   fs->icache_lock and fs->dix_lock are leaves: nothing is taken under
 *   them, and nothing sleeps under them.
 * break_layouts is only ever waited in with i_rwsem (and the layout lock,
 * by contract) held: never with ns_lock or a transaction open.
 */
#ifndef UDAX_UFS_INT_H
#define UDAX_UFS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "dax.h"
#include "format.h"
#include "journal.h"
#include "media.h"
#include "super.h"
#include "ufs.h"
#include "util.h"

#define UFS_LINK_MAX		65000u
#define UFS_MAX_DEPTH		8
/* largest file: 2^32 blocks keeps every lblk arithmetic far from overflow */
#define UFS_MAX_FILE_BLOCKS	(1ULL << 32)
#define UFS_MAX_FILE_SIZE	(UFS_MAX_FILE_BLOCKS << UFS_BLOCK_SHIFT)
/* at most this many blocks are freed or allocated per transaction step */
#define UFS_STEP_BLOCKS		16384u
/* journal room a step needs before it starts (bitmap + nodes + inode) */
#define UFS_STEP_ROOM		(96u * 1024)

/* DRAM index of one directory: name hash -> record position. */
struct ufs_dix_slot {
	uint64_t pos;			/* byte position of the record in the dir; 0 = empty */
	uint32_t hash;
	uint32_t tomb;			/* 1: deleted (probe continues) */
};
struct ufs_dix {
	struct ufs_dix_slot *slots;
	uint32_t cap;			/* power of two */
	uint32_t used;			/* live entries */
	uint32_t filled;		/* live + tombstones */
	uint32_t nblocks;		/* record blocks known */
	uint16_t *room;			/* per block: largest free run (bytes) */
	char **blk;			/* per block: its device address */
	size_t blk_cap;			/* room for blocks in room[] and blk[] */
	uint32_t room_cursor;		/* where insert starts looking */
};

/* Free an index: plain memory, so eviction needs nothing of dir.c for it. */
static inline void ufs_dix_destroy(struct ufs_dix *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d->room);
	free(d->blk);
	free(d);
}

struct ufs_inode {
	/* immutable while cached */
	struct ufs *fs;
	uint64_t ino;
	struct ufs_dinode *di;		/* in the device mapping */
	/* protected by fs->icache_lock */
	struct ufs_inode *hnext;
	uint64_t nlookup;		/* the kernel's lookup count */
	bool forgotten;			/* icache_lock: the kernel's lookups all went (FORGET) */
	uint64_t nopen;			/* open files */
	uint64_t ref;			/* calls in progress */
	bool evicting;
	bool hashed;
	/* size, extents, data; dinode fields change only inside a transaction */
	pthread_rwlock_t rwsem;
	/* built on first use under fs->dix_lock, then changed under ns_lock
	 * exclusive and read under ns_lock shared */
	struct ufs_dix *dix;
	struct dx_mapping map;	/* the page lifecycle of this file */
	/*
	 * While a holder of rwsem (exclusive) sleeps in break_layouts waiting
	 * for DMA to drain, getattr answers from this snapshot instead of
	 * queueing behind it: stat(2), ls -l and `udaxctl status` must not
	 * hang for as long as a client takes to return its pins (the
	 * kernel's getattr does not take i_rwsem either).  The file cannot
	 * change while the waiter holds rwsem, so the snapshot is exact.
	 */
	pthread_mutex_t snap_lock;
	bool snap_valid;		/* protected by snap_lock */
	struct stat snap;		/* protected by snap_lock */
};

struct ufs {
	struct dx_media *m;
	char *base;			/* device offset 0 */
	struct ufs_super sb;		/* DRAM copy; the on-media primary is at base */
	struct ufs_journal *j;
	struct ufs_alloc *a;
	struct dx_dax *dax;
	bool ro;
	uint64_t unmount_timeout_ns;
	void (*log)(void *arg, const char *msg);
	void *log_arg;

	pthread_rwlock_t ns_lock;	/* the namespace */
	pthread_mutex_t dix_lock;	/* builds directory indexes */
	pthread_mutex_t icache_lock;	/* the inode hash and the counts in ufs_inode */
	struct ufs_inode **ihash;
	uint64_t ihash_size;		/* power of two, resized with icount (icache_lock) */
	uint64_t icount;
	uint64_t freed_since_trim;	/* icache_lock: frees since the heap was last trimmed */
	uint64_t gen_next;		/* protected by the journal (inside a tx) */
};

/* ---- transactions: the journal plus the checksums it owes ---- */
struct utx {
	struct ufs *fs;
	struct ufs_tx *tx;
	struct ufs_dinode *dinodes[32];	/* dinodes whose checksum is due */
	unsigned int ndinodes;
	uint64_t *blks;			/* extent node blocks whose checksum is due */
	size_t nblks, capblks;
	bool super;			/* primary superblock checksum due */
};

/* ---- transactions (txn.c) ---- */
int utx_begin(struct ufs *fs, struct utx *t);
int utx_add(struct utx *t, void *ptr, size_t len);
int utx_dinode(struct utx *t, struct ufs_dinode *di);
static inline int utx_inode(struct utx *t, struct ufs_inode *ip)
{
	return utx_dinode(t, ip->di);
}
/* Begin a transaction on @ip's file system and log @ip in it.  On failure
 * the caller still calls utx_abort() (a no-op when nothing began). */
static inline int utx_begin_inode(struct utx *t, struct ufs_inode *ip)
{
	int rc = utx_begin(ip->fs, t);

	return rc ? rc : utx_inode(t, ip);
}
int utx_node(struct utx *t, uint64_t blk);
/* A node block allocated in this transaction: checksummed and flushed at
 * commit, not logged (unreachable if the transaction rolls back). */
int utx_node_fresh(struct utx *t, uint64_t blk);
int utx_super(struct utx *t);
size_t utx_room(struct utx *t);
void utx_commit(struct utx *t);
void utx_abort(struct utx *t);

/* ---- inodes (icache.c) ---- */
/*
 * Do blocks [pblk, pblk + len) lie in the data area?  File data, extent
 * nodes and xattr blocks must: never block 0, the journal, the bitmaps,
 * the inode table, the backup superblock (the last block) or past the end.
 * Everything read from an extent or an inode passes this before use.
 */
static inline bool ufs_data_range(const struct ufs_super *sb, uint64_t pblk, uint64_t len)
{
	return len && pblk >= sb->s_data_start && pblk < sb->s_blocks_count - 1 &&
	       len <= sb->s_blocks_count - 1 - pblk;
}

static inline void *ufs_blk(struct ufs *fs, uint64_t blk)
{
	return fs->base + (blk << UFS_BLOCK_SHIFT);
}
struct ufs_dinode *ufs_dinode_ptr(struct ufs *fs, uint64_t ino);
uint32_t ufs_dinode_csum(const struct ufs_dinode *di);
uint32_t ufs_node_csum(const void *blk);
/* Take a reference on a cached inode, loading it.  Return: 0, -ENOENT, -EUCLEAN. */
int ufs_iget(struct ufs *fs, uint64_t ino, struct ufs_inode **out);
/* Drop a reference; evicts when unlinked and unreferenced.  Context: no
 * ns_lock, no transaction. */
void ufs_iput(struct ufs_inode *ip);
/* Like ufs_iput but with the caller's wait ctx for the break_layouts. */
void ufs_iput_ctx(struct ufs_inode *ip, const struct dx_wait_ctx *w);
/* Allocate and initialise a new inode inside @t; returns it with one ref. */
int ufs_inew(struct ufs *fs, struct utx *t, const struct ufs_ctx *c, struct ufs_inode *dir,
	     mode_t mode, dev_t rdev, struct ufs_inode **out);
/* Undo ufs_inew() after the transaction was aborted. */
void ufs_inew_undo(struct ufs_inode *ip);
/* Make an inode unfindable (eviction, before its slot is freed). */
void ufs_icache_unhash(struct ufs_inode *ip);
/* Free a cached inode's DRAM (it is out of the hash).  Context: no lock held. */
void ufs_inode_free(struct ufs_inode *ip);
/* Every cached inode not being evicted, each with a reference taken, so
 * they can be worked on unlocked (@n set; NULL when out of memory).
 * Context: unmount; takes icache_lock. */
struct ufs_inode **ufs_icache_snapshot(struct ufs *fs, size_t *n);
/* Set up the empty cache (and the heap's trim policy).  Context: mount.
 * Return: 0 or -ENOMEM. */
int ufs_icache_init(struct ufs *fs);
/* A private, uncached inode for @ino (freed with ufs_inode_free()).
 * Context: any.  Return: the inode, or NULL when out of memory. */
struct ufs_inode *ufs_inode_alloc(struct ufs *fs, uint64_t ino);
/* ufs_iput_ctx() that says how an eviction it started ended.  Return: 0
 * (no eviction, or the inode was freed), else the failed eviction's error. */
int ufs_iput_rc(struct ufs_inode *ip, const struct dx_wait_ctx *w);
/* The primary superblock in the device mapping (the orphan list's head). */
struct ufs_super *ufs_primary(struct ufs *fs);
int ufs_orphan_add(struct utx *t, struct ufs_inode *ip);
int ufs_orphan_del(struct utx *t, struct ufs_inode *ip);
void ufs_fill_stat(struct ufs_inode *ip, struct stat *st);
void ufs_fill_entry(struct ufs_inode *ip, struct ufs_entry *e);
void ufs_touch(struct ufs_inode *ip, bool a, bool m, bool c);
/* Add/remove @nblocks to i_blocks (inside a tx, inode already added). */
static inline void ufs_iblocks(struct ufs_inode *ip, int64_t nblocks)
{
	ip->di->i_blocks += (uint64_t)nblocks;
}
/* Lookup count: +1 (under icache lock). */
void ufs_nlookup_inc(struct ufs_inode *ip);
static inline bool ufs_isdir(const struct ufs_inode *ip) { return S_ISDIR(ip->di->i_mode); }
static inline bool ufs_isreg(const struct ufs_inode *ip) { return S_ISREG(ip->di->i_mode); }
static inline bool ufs_islnk(const struct ufs_inode *ip) { return S_ISLNK(ip->di->i_mode); }

/* ---- the extent tree (extent.c) ---- */
/* Initialise an empty tree in a fresh dinode (inside a tx, inode added). */
void ufs_ext_init(struct ufs_dinode *di);
/*
 * ufs_ext_find() - the extent containing @lblk (return 1, *e filled), or
 * the first one after it (return 0, *e filled, e->e_len != 0), or none
 * (return 0, e->e_len == 0).  Context: i_rwsem held.  Return <0: corrupt.
 */
int ufs_ext_find(struct ufs_inode *ip, uint64_t lblk, struct ufs_extent *e);
/* Insert a mapping for a hole (merging with neighbours).  Context: in @t. */
int ufs_ext_insert(struct utx *t, struct ufs_inode *ip, uint64_t lblk, uint64_t pblk,
		   uint32_t len);
/*
 * ufs_ext_remove() - unmap and free up to @max blocks of [start, end),
 * working from the end.  *next_end is set to the lowest lblk unmapped so
 * far (the caller continues with [start, *next_end)), == start when done.
 * Stops early when the journal is low (returns 0, *next_end > start).
 * Context: in @t, layout lock held exclusively, range untracked.
 */
int ufs_ext_remove(struct utx *t, struct ufs_inode *ip, uint64_t start, uint64_t end,
		   uint64_t *next_end);
/* Split the extent containing @lblk so that one starts at @lblk. */
int ufs_ext_split(struct utx *t, struct ufs_inode *ip, uint64_t lblk);
/* Add @delta (may be negative) to every extent and key with lblk >= @from
 * (keys inside [from + delta, from) for negative delta become from + delta). */
int ufs_ext_shift(struct utx *t, struct ufs_inode *ip, uint64_t from, int64_t delta);
/* Journal bytes ufs_ext_shift() would log (it runs in one transaction). */
int ufs_ext_shift_cost(struct ufs_inode *ip, uint64_t from, int64_t delta, size_t *bytes);
/* Number of extents (tests, fsck-ish checks). Call ufs_ext_check for structure. */
int ufs_ext_check(struct ufs_inode *ip, uint64_t *nextents);
/*
 * ufs_ext_check_blocks() - ufs_ext_check() that also reports the blocks
 * the tree holds: @fn gets every node block (len 1) and every extent's
 * run, each after it was found sound; a non-zero return stops the walk
 * and is returned.  Context: i_rwsem held or a private handle.
 */
typedef int (*ufs_ext_blocks_fn)(void *arg, uint64_t pblk, uint64_t len);
int ufs_ext_check_blocks(struct ufs_inode *ip, ufs_ext_blocks_fn fn, void *arg);
/* Print the tree (debugging, tests). */
void ufs_ext_dump(struct ufs_inode *ip, FILE *f);
/* Free every extent-tree node block (the mapping must be empty). */
int ufs_ext_free_tree(struct utx *t, struct ufs_inode *ip);
/* Allocate blocks for [lblk, lblk + len) holes only; zero fresh blocks except
 * [skip_lo, skip_hi) bytes of the file which the caller writes.
 * Return: blocks now mapped from lblk (< len when the device is full) or -errno. */
int64_t ufs_ext_alloc(struct utx *t, struct ufs_inode *ip, uint64_t lblk, uint64_t len,
		      uint64_t skip_lo, uint64_t skip_hi);

/* ---- data (inode.c) ---- */
/* Free every block of an unlinked inode and the inode itself. */
int ufs_evict(struct ufs_inode *ip, const struct dx_wait_ctx *w);
/* break_layouts for [first, last] pages: takes the layout lock exclusively,
 * which stays held on success (caller unlocks).  Context: i_rwsem held. */
int ufs_break(struct ufs_inode *ip, uint64_t first, uint64_t last, const struct dx_wait_ctx *w);

/* ---- directories (dir.c; its API is in dir_int.h) ---- */
/* Drop @dir's DRAM index (eviction, or a change the abort takes back). */
static inline void ufs_dix_free(struct ufs_inode *dir)
{
	ufs_dix_destroy(dir->dix);
	dir->dix = NULL;
}

/* ---- xattrs (xattr.c) ---- */
/* What ufs_kill_privs() drops. */
#define UFS_KILL_SUIDGID	0x1	/* setuid, and setgid when group-executable */
#define UFS_KILL_CAPS		0x2	/* the security.capability xattr */
/* What changing data (a write, a truncate) and/or a chown drops for @c's caller. */
unsigned int ufs_kill_mask(const struct ufs_ctx *c, bool data, bool chown);
int ufs_kill_privs(struct utx *t, struct ufs_inode *ip, unsigned int kill);
int ufs_kill_privs_ctx(struct utx *t, struct ufs_inode *ip, const struct ufs_ctx *c,
		       unsigned int kill);
int ufs_xattr_free(struct utx *t, struct ufs_inode *ip);

#endif /* UDAX_UFS_INT_H */
