// SPDX-License-Identifier: MIT
/*
 * mount.c - mount and unmount: the checks that may refuse a mount (and
 * write nothing when they do), the journal's rollback, the orphans left by
 * a crash, and the last evictions at unmount.  The highest piece of the
 * layer: it calls everything else, nothing calls it.
 */
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufs_int.h"

static const struct dx_wait_ctx wait_forever = { .uninterruptible = true };

/* ---- mount / unmount ---- */

static void fs_log(struct ufs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fs_log(struct ufs *fs, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (fs->log)
		fs->log(fs->log_arg, buf);
	else
		fprintf(stderr, "udaxfs: %s\n", buf);
}

/* Cut the orphan list (it points somewhere it should not): fsck reclaims the rest. */
static int orphans_cut(struct ufs *fs, uint64_t ino, const char *why)
{
	struct utx t;
	int rc;

	fs_log(fs, "orphan list: inode %" PRIu64 " %s; list truncated (run fsck)", ino, why);
	rc = utx_begin(fs, &t);
	if (!rc)
		rc = utx_super(&t);
	if (rc) {
		utx_abort(&t);
		return rc;
	}
	ufs_primary(fs)->s_orphan_head = 0;
	fs->sb.s_orphan_head = 0;
	utx_commit(&t);
	return 0;
}

/* What the orphans that orphans_reclaim() would evict give back. */
struct orphan_claim {
	uint64_t pblk, len, ino;
};

struct orphan_claims {
	struct ufs *fs;
	uint64_t ino;			/* the orphan being checked */
	struct orphan_claim *v;
	size_t n, cap;
};

/* An eviction frees each of these blocks: they must be allocated now. */
static int orphan_claim(void *arg, uint64_t pblk, uint64_t len)
{
	struct orphan_claims *c = arg;
	uint64_t b = ufs_alloc_first_free(c->fs->a, pblk, len);

	if (b - pblk < len) {
		dx_seterr("inode %" PRIu64 " holds block %" PRIu64 ", which is free in the "
			    "block bitmap", c->ino, b);
		return -EUCLEAN;
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct orphan_claim *nv = realloc(c->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = ncap;
	}
	c->v[c->n].pblk = pblk;
	c->v[c->n].len = len;
	c->v[c->n].ino = c->ino;
	c->n++;
	return 0;
}

static int cmp_claim(const void *x, const void *y)
{
	const struct orphan_claim *a = x, *b = y;

	return a->pblk < b->pblk ? -1 : a->pblk > b->pblk;
}

/* One block given back twice (two orphans, or one orphan twice, hold it):
 * the second free would find it free and stop the reclaim half way. */
static int orphan_claims_disjoint(struct orphan_claims *c)
{
	size_t i;

	qsort(c->v, c->n, sizeof(*c->v), cmp_claim);
	for (i = 1; i < c->n; i++) {
		if (c->v[i].pblk - c->v[i - 1].pblk < c->v[i - 1].len) {
			dx_seterr("inodes %" PRIu64 " and %" PRIu64 " both hold block %" PRIu64,
				    c->v[i - 1].ino, c->v[i].ino, c->v[i].pblk);
			return -EUCLEAN;
		}
	}
	return 0;
}

/* What orphans_reclaim() will free of one unlinked orphan, claimed in @c. */
static int orphan_check_one(struct ufs *fs, uint64_t ino, struct ufs_dinode *di,
			    struct orphan_claims *c)
{
	struct ufs_inode *ip;
	int rc = 0;

	c->ino = ino;
	if (ufs_alloc_itest(fs->a, ino) != 1) {
		dx_seterr("inode %" PRIu64 " is free in the inode bitmap", ino);
		return -EUCLEAN;
	}
	if (di->i_xattr_block) {
		if (!ufs_data_range(&fs->sb, di->i_xattr_block, 1)) {
			dx_seterr("inode %" PRIu64 ": xattr block %" PRIu64 " outside the data "
				    "area", ino, di->i_xattr_block);
			return -EUCLEAN;
		}
		rc = orphan_claim(c, di->i_xattr_block, 1);
		if (rc)
			return rc;
	}
	if (di->i_flags & UFS_INODE_FL_INLINE_SYMLINK)
		return 0;	/* i_u holds the target, not an extent root */
	/* a private handle: ufs_iget()/ufs_iput() would evict it */
	ip = ufs_inode_alloc(fs, ino);
	if (!ip)
		return -ENOMEM;
	rc = ufs_ext_check_blocks(ip, orphan_claim, c);
	ufs_inode_free(ip);
	return rc;
}

/*
 * orphans_precheck() - walk the orphan list without writing: every inode
 * that orphans_reclaim() would evict must be one that its eviction can
 * free completely (a sound extent tree; its slot, tree, data and xattr
 * blocks allocated in the bitmaps; no block held twice), or the eviction
 * would stop half way and refuse the mount after freeing blocks.
 * A list that points somewhere it should not is not a refusal (reclaim
 * cuts it and leaves the rest to fsck); nor is a loop: reclaim meets an
 * inode it has already evicted or taken off the list, and cuts there.
 * Context: mount, nothing else running.  Return: 0, -ENOMEM or -EUCLEAN
 * (message set).
 */
static int orphans_precheck(struct ufs *fs)
{
	struct orphan_claims c = { .fs = fs };
	uint64_t ino = fs->sb.s_orphan_head;
	uint8_t *seen;
	int rc = 0;

	if (!ino)
		return 0;
	seen = calloc((fs->sb.s_inode_count + 7) / 8, 1);
	if (!seen)
		return -ENOMEM;
	while (ino && ino < fs->sb.s_inode_count && !(seen[ino / 8] & (1u << (ino % 8)))) {
		struct ufs_dinode *di = ufs_dinode_ptr(fs, ino);

		seen[ino / 8] |= (uint8_t)(1u << (ino % 8));
		if (!di->i_mode || di->i_checksum != ufs_inode_csum(di) ||
		    !(di->i_flags & UFS_INODE_FL_ORPHAN))
			break;	/* reclaim cuts the list here */
		if (!di->i_nlink) {
			rc = orphan_check_one(fs, ino, di, &c);
			if (rc)
				break;
		}
		ino = di->i_orphan_next;
	}
	if (!rc)
		rc = orphan_claims_disjoint(&c);
	if (rc == -EUCLEAN) {
		char why[400];

		snprintf(why, sizeof(why), "%s", dx_errmsg());
		dx_seterr("orphan list: %s (run fsck)", why);
	}
	free(c.v);
	free(seen);
	return rc;
}

/*
 * replayed_super_check() - a journal record may have rewritten the primary
 * superblock: it must still be valid and describe the same file system as
 * the copy the mount loaded before the replay.
 * Context: mount, after ufs_journal_replay().  Return: 0 or -EUCLEAN.
 */
static int replayed_super_check(struct ufs *fs, bool backup)
{
	struct ufs_super now;
	bool now_backup = false;
	int rc;

	if (backup)
		return 0;	/* the mount reads the backup; the primary is rewritten later */
	rc = ufs_super_load(fs->m, &now, &now_backup);
	if (rc || now_backup ||
	    now.s_blocks_count != fs->sb.s_blocks_count || now.s_inode_count != fs->sb.s_inode_count ||
	    now.s_journal_start != fs->sb.s_journal_start ||
	    now.s_journal_blocks != fs->sb.s_journal_blocks ||
	    now.s_ibitmap_start != fs->sb.s_ibitmap_start ||
	    now.s_bbitmap_start != fs->sb.s_bbitmap_start ||
	    now.s_itable_start != fs->sb.s_itable_start || now.s_data_start != fs->sb.s_data_start) {
		dx_seterr("superblock (device offset 0): the journal's rollback leaves it %s",
			    rc || now_backup ? "invalid" : "describing another geometry");
		return -EUCLEAN;
	}
	return 0;
}

/* Free the inodes left on the orphan list by a crash (or a busy unmount). */
static int orphans_reclaim(struct ufs *fs)
{
	uint64_t n = 0;

	while (fs->sb.s_orphan_head) {
		uint64_t ino = fs->sb.s_orphan_head;
		struct ufs_inode *ip;
		int rc;

		if (++n > fs->sb.s_inode_count)
			return orphans_cut(fs, ino, "is part of a loop");
		rc = ufs_iget(fs, ino, &ip);
		if (rc)
			return orphans_cut(fs, ino, "cannot be read");
		if (!(ip->di->i_flags & UFS_INODE_FL_ORPHAN)) {
			ufs_iput(ip);
			return orphans_cut(fs, ino, "is not marked as an orphan");
		}
		if (ip->di->i_nlink) {
			struct utx t;

			/* linked again before the crash: just take it off the list */
			rc = utx_begin(fs, &t);
			if (!rc)
				rc = ufs_orphan_del(&t, ip);
			if (rc) {
				utx_abort(&t);
				ufs_iput(ip);
				return rc;
			}
			utx_commit(&t);
			ufs_iput(ip);
			continue;
		}
		pthread_mutex_lock(&fs->icache_lock);
		ip->evicting = true;
		pthread_mutex_unlock(&fs->icache_lock);
		rc = ufs_evict(ip, &wait_forever);
		if (rc)
			return rc;
		ufs_inode_free(ip);
	}
	if (n)
		fs_log(fs, "reclaimed %" PRIu64 " orphan inode%s", n, n == 1 ? "" : "s");
	return 0;
}

static void fs_free(struct ufs *fs)
{
	uint64_t i;

	if (!fs)
		return;
	if (fs->ihash) {
		for (i = 0; i < fs->ihash_size; i++) {
			while (fs->ihash[i]) {
				struct ufs_inode *ip = fs->ihash[i];

				fs->ihash[i] = ip->hnext;
				ufs_inode_free(ip);
			}
		}
		free(fs->ihash);
	}
	ufs_alloc_close(&fs->a);
	ufs_journal_close(&fs->j);
	dx_dax_delete(&fs->dax);
	pthread_rwlock_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->dix_lock);
	pthread_mutex_destroy(&fs->icache_lock);
	free(fs);
}

int ufs_mount(struct ufs **out, struct dx_media *m, const struct ufs_mount_opts *o)
{
	static const struct ufs_mount_opts defaults;
	struct dx_dax_opts dopts;
	struct ufs_journal_undo *undo = NULL;
	struct ufs_inode *root;
	struct ufs *fs;
	bool backup = false;
	int rc, replayed = 0;

	if (!o)
		o = &defaults;
	*out = NULL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->m = m;
	fs->base = dx_media_base(m);
	fs->log = o->log;
	fs->log_arg = o->log_arg;
	fs->ro = o->readonly || dx_media_readonly(m);
	pthread_rwlock_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->dix_lock, NULL);
	rc = ufs_icache_init(fs);
	if (rc)
		goto out_free;

	rc = ufs_super_load(m, &fs->sb, &backup);
	if (rc)
		goto out_free;
	if (backup)
		fs_log(fs, "primary superblock unusable (%s); using the backup at block %" PRIu64,
		       dx_errmsg(), fs->sb.s_blocks_count - 1);
	if (fs->sb.s_feat_ro_compat & ~UFS_FEAT_RO_COMPAT_SUPPORTED) {
		if (!fs->ro)
			fs_log(fs, "unknown read-only features 0x%x: mounting read-only",
			       fs->sb.s_feat_ro_compat & ~UFS_FEAT_RO_COMPAT_SUPPORTED);
		fs->ro = true;
	}
	rc = ufs_journal_open(&fs->j, m, &fs->sb);
	if (rc)
		goto out_free;
	/*
	 * A refused mount leaves the image as it found it: nothing is
	 * written before every check that can refuse has passed.  Replay
	 * keeps the log and a DRAM copy of what it overwrote, so a refusal
	 * after it puts those bytes back (and a crash replays again).
	 */
	if (ufs_journal_dirty(fs->j)) {
		if (fs->ro) {
			rc = ufs_journal_recover(fs->j, true);
			if (rc < 0)
				goto out_free;
			dx_seterr("journal holds an unfinished transaction: mount read-write once to roll it back");
			rc = -EROFS;
			goto out_free;
		}
		rc = ufs_journal_replay(fs->j, &undo);
		if (rc < 0)
			goto out_free;
		replayed = rc;
		rc = replayed_super_check(fs, backup);
		if (rc)
			goto out_undo;
	}
	/* the primary carries the orphan list (changed in place by transactions);
	 * a backup copy's may be stale: fsck reclaims what it would have freed */
	if (backup)
		fs->sb.s_orphan_head = 0;
	else
		fs->sb.s_orphan_head = ufs_primary(fs)->s_orphan_head;

	memset(&dopts, 0, sizeof(dopts));
	dopts.policy = o->policy;
	dopts.recall_timeout_ns = o->recall_timeout_ns;
	dopts.ops = o->dax_ops;
	dopts.ops_arg = o->dax_ops_arg;
	dopts.numa_node = dx_media_numa_node(m);
	rc = dx_dax_new(&fs->dax, &dopts);
	if (rc)
		goto out_undo;
	fs->unmount_timeout_ns = o->recall_timeout_ns ? o->recall_timeout_ns : 2000000000ULL;
	rc = ufs_alloc_open(&fs->a, m, &fs->sb, fs->dax);
	if (rc)
		goto out_undo;
	/* before orphans are reclaimed: their blocks may be under old pins */
	rc = ufs_alloc_quarantine(fs->a, o->quarantine, o->quarantine ? o->nquarantine : 0);
	if (rc)
		goto out_undo;
	fs->gen_next = (uint64_t)dx_now_ns();

	rc = ufs_iget(fs, UFS_ROOT_INO, &root);
	if (rc == -ENOENT) {
		dx_seterr("root inode (device offset %" PRIu64 ") is free",
			    ufs_inode_off(&fs->sb, UFS_ROOT_INO));
		rc = -EUCLEAN;
		goto out_undo;
	}
	if (rc) {
		dx_seterr("root inode: %s", dx_errmsg());
		rc = -EUCLEAN;
		goto out_undo;
	}
	if (!ufs_isdir(root)) {
		ufs_iput(root);
		dx_seterr("root inode (device offset %" PRIu64 ") is not a directory",
			    ufs_inode_off(&fs->sb, UFS_ROOT_INO));
		rc = -EUCLEAN;
		goto out_undo;
	}
	if (root->di->i_nlink == 0) {
		dx_seterr("root inode (device offset %" PRIu64 ") has link count %u: "
			    "run fsck.udaxfs", ufs_inode_off(&fs->sb, UFS_ROOT_INO),
			    (unsigned int)root->di->i_nlink);
		ufs_iput(root);
		rc = -EUCLEAN;
		goto out_undo;
	}
	ufs_iput(root);
	if (!fs->ro) {
		rc = orphans_precheck(fs);
		if (rc)
			goto out_undo;
	}

	/* every check passed: from here on the mount writes */
	if (undo) {
		ufs_journal_replay_end(fs->j, &undo, true);
		fs_log(fs, "journal: rolled back an unfinished transaction (%d records)", replayed);
	}
	if (backup && !fs->ro) {
		/* repair the primary from the backup: the device validated */
		ufs_super_write(m, &fs->sb);
	}
	if (!fs->ro) {
		rc = orphans_reclaim(fs);
		if (rc)
			goto out_free;
		fs->sb.s_state = UFS_STATE_MOUNTED;
		fs->sb.s_mount_time = (uint64_t)time(NULL);
		fs->sb.s_mount_count++;
		ufs_super_write(m, &fs->sb);
	}
	*out = fs;
	return 0;

out_undo:
	ufs_journal_replay_end(fs->j, &undo, false);
out_free:
	fs_free(fs);
	return rc;
}

/* An eviction that failed because a page is still referenced (or the wait
 * was cut short), as opposed to one that failed on what it read. */
static bool evict_busy(int rc)
{
	return rc == -EBUSY || rc == -EINTR || rc == -ETIMEDOUT || rc == -EAGAIN;
}

/*
 * ufs_unmount() - see ufs.h.  Besides -EBUSY (pages still referenced: the
 * mount is kept, nothing is freed under a pin) there is one more outcome:
 * an unlinked inode whose eviction fails on corruption (a bad extent tree,
 * say) cannot be freed, but nothing references it.  It is logged and
 * counted, left on the orphan list with its blocks (fsck reclaims them),
 * the state stays MOUNTED (not clean), and the mount is torn down anyway.
 * Context: no other thread uses @fs.  Return: 0 (*fsp freed and cleared);
 * -EUCLEAN (*fsp freed and cleared, unlinked inodes could not be freed:
 * run fsck); -EBUSY (*fsp kept, see ufs.h); -ENOMEM (*fsp kept).
 */
int ufs_unmount(struct ufs **fsp)
{
	struct ufs *fs = fsp ? *fsp : NULL;
	struct dx_wait_ctx w = { 0 };
	struct dx_dax_stats st;
	struct ufs_inode **v;
	uint64_t corrupt = 0, left = 0;
	bool busy = false;
	size_t n, i;

	if (!fs)
		return 0;
	w.timeout_ns = fs->unmount_timeout_ns;
	v = ufs_icache_snapshot(fs, &n);
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct ufs_inode *ip = v[i];

		if (ip->di->i_nlink == 0 && !fs->ro) {
			uint64_t ino = ip->ino;
			int rc;

			/* the kernel will never forget it now */
			pthread_mutex_lock(&fs->icache_lock);
			ip->nlookup = 0;
			ip->nopen = 0;
			pthread_mutex_unlock(&fs->icache_lock);
			rc = ufs_iput_rc(ip, &w);
			if (rc && evict_busy(rc)) {
				busy = true;
			} else if (rc) {
				if (++corrupt <= 8)
					fs_log(fs, "unmount: unlinked inode %" PRIu64 " cannot be "
					       "freed (%s: %s); left on the orphan list with its "
					       "blocks (run fsck)", ino, strerror(-rc), dx_errmsg());
			}
			continue;
		}
		pthread_rwlock_wrlock(&ip->rwsem);
		if (ufs_break(ip, 0, UDAX_END_OF_FILE, &w))
			busy = true;
		else
			dx_layout_unlock_excl(&ip->map);
		pthread_rwlock_unlock(&ip->rwsem);
		ufs_iput(ip);
	}
	free(v);
	/* anything still cached with nlink 0 and not counted as corrupt was busy */
	v = ufs_icache_snapshot(fs, &n);
	for (i = 0; v && i < n; i++) {
		if (v[i]->di->i_nlink == 0)
			left++;
		pthread_mutex_lock(&fs->icache_lock);
		v[i]->ref--;
		pthread_mutex_unlock(&fs->icache_lock);
	}
	free(v);
	if (!fs->ro && left > corrupt)
		busy = true;
	/* never free the handles (and the mount) while a page is referenced */
	dx_dax_stats(fs->dax, &st);
	if (st.live_handles)
		busy = true;
	if (!fs->ro) {
		dx_media_drain(fs->m);
		fs->sb.s_orphan_head = ufs_primary(fs)->s_orphan_head;
		fs->sb.s_free_blocks_hint = ufs_alloc_free_blocks(fs->a);
		fs->sb.s_free_inodes_hint = ufs_alloc_free_inodes(fs->a);
		fs->sb.s_write_time = (uint64_t)time(NULL);
		if (!busy && !corrupt)
			fs->sb.s_state = UFS_STATE_CLEAN;
		ufs_super_write(fs->m, &fs->sb);
	}
	if (busy) {
		dx_seterr("pages are still referenced (pins or mappings): left mounted; "
			    "unlinked files stay on the orphan list");
		return -EBUSY;
	}
	fs_free(fs);
	*fsp = NULL;
	if (corrupt) {
		dx_seterr("%" PRIu64 " unlinked inode%s could not be freed (corrupt); they stay "
			    "on the orphan list: run fsck", corrupt, corrupt == 1 ? "" : "s");
		return -EUCLEAN;
	}
	return 0;
}
