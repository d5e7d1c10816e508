/* SPDX-License-Identifier: MIT */
/*
 * fsck_super.c - pass 0: which superblock copy to trust (the other is
 * repaired), and the journal header and an unfinished transaction, judged
 * by the core's decoders (super.h, journal.h) so that fsck and mount agree.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/format.h"
#include "core/journal.h"
#include "core/media.h"
#include "core/super.h"
#include "core/util.h"
#include "fsck_int.h"

/* ---------------------------------------------------------------- superblock */

/*
 * super_validate() - is @sb, found at block @blk, a usable superblock?
 * The core's rules (ufs_super_check), the ones mount applies.
 * Return: 0 usable; 1 not udaxfs (no magic); 2 unsupported; 3 corrupt;
 * 4 larger than the device.  A reason is left in @why.
 */
static int super_validate(const struct ufs_super *sb, uint64_t blk, uint64_t dev_blocks,
			  char *why, size_t wl)
{
	switch (ufs_super_check(sb, blk * BS, dev_blocks * BS, why, wl)) {
	case 0:
		return 0;
	case -EINVAL:
		return 1;
	case -EPROTONOSUPPORT:
		return 2;
	case -EFBIG:
		return 4;
	}
	return 3;
}

/* Same geometry?  (state, times, orphan head and hints may differ.) */
static bool super_same_geometry(const struct ufs_super *a, const struct ufs_super *b)
{
	return !memcmp(a, b, offsetof(struct ufs_super, s_state)) &&
	       !memcmp(a->s_uuid, b->s_uuid, offsetof(struct ufs_super, s_orphan_head) -
						 offsetof(struct ufs_super, s_uuid));
}

void fsck_super_write_both(struct fsck *f, struct ufs_super *sb)
{
	uint8_t blk[BS];

	memset(blk, 0, sizeof(blk));
	sb->s_checksum = ufs_super_csum(sb);
	memcpy(blk, sb, sizeof(*sb));
	fsck_write(f, 0, blk, BS);
	fsck_write(f, (sb->s_blocks_count - 1) * BS, blk, BS);
}

/*
 * fsck_load_super() - pick the superblock to trust; repair the other copy.
 * Return: 0, or an FSCK_* status when nothing can be checked.
 */
int fsck_load_super(struct fsck *f)
{
	struct ufs_super p, b;
	char whyp[160], whyb[160];
	int rp, rb = 1;
	uint64_t boff = 0;

	memcpy(&p, fsck_blk(f, 0), sizeof(p));
	rp = super_validate(&p, 0, f->dev_blocks, whyp, sizeof(whyp));
	/* backup: at blocks_count - 1 of a readable primary, else the device's last block */
	if (rp == 0 || (p.s_magic == UFS_MAGIC && p.s_blocks_count >= 2 &&
			p.s_blocks_count <= f->dev_blocks))
		boff = p.s_blocks_count - 1;
	else
		boff = f->dev_blocks - 1;
	memcpy(&b, fsck_blk(f, boff), sizeof(b));
	rb = super_validate(&b, boff, f->dev_blocks, whyb, sizeof(whyb));
	if (rp != 0 && rb != 0) {
		if (rp == 1 && rb == 1) {
			fsck_say(f, "udaxfs: %s: not a udaxfs file system (superblock at offset 0: %s)",
				 dx_media_path(f->m), whyp);
			return FSCK_OPERATIONAL;
		}
		if (rp == 2 || rb == 2) {
			fsck_say(f, "udaxfs: superblock: %s", rp == 2 ? whyp : whyb);
			return FSCK_OPERATIONAL;
		}
		if (rp == 4 || rb == 4) {
			fsck_say(f, "udaxfs: superblock at offset 0: %s", rp == 4 ? whyp : whyb);
			return FSCK_UNCORRECTED;
		}
		fsck_say(f, "udaxfs: superblock at offset 0: %s; backup at offset %" PRIu64 ": %s",
			 whyp, boff * BS, whyb);
		return FSCK_UNCORRECTED;
	}
	if (rp != 0) {
		f->st.used_backup = true;
		f->sb = b;
		if (fsck_problem(f, rp != 2, "primary superblock at offset 0: %s; using the backup "
				 "at offset %" PRIu64, whyp, boff * BS)) {
			uint8_t blk[BS];

			memcpy(blk, fsck_blk(f, boff), BS);
			fsck_write(f, 0, blk, BS);
		}
	} else {
		f->sb = p;
		if (rb != 0) {
			if (fsck_problem(f, true, "backup superblock at offset %" PRIu64 ": %s",
					 (p.s_blocks_count - 1) * BS, whyb))
				fsck_write(f, (p.s_blocks_count - 1) * BS, fsck_blk(f, 0), BS);
		} else if (!super_same_geometry(&p, &b)) {
			if (fsck_problem(f, true, "backup superblock at offset %" PRIu64
					 " differs from the primary", (p.s_blocks_count - 1) * BS))
				fsck_write(f, (p.s_blocks_count - 1) * BS, fsck_blk(f, 0), BS);
		}
	}
	f->nblocks = f->sb.s_blocks_count;
	f->ninodes = f->sb.s_inode_count;
	fsck_verbose(f, "udaxfs: superblock: %" PRIu64 " blocks, %" PRIu64 " inodes, journal %" PRIu64
		     " blocks, data from block %" PRIu64 ", state %s", f->nblocks, f->ninodes,
		     f->sb.s_journal_blocks, f->sb.s_data_start,
		     f->sb.s_state == UFS_STATE_CLEAN ? "clean" : "not clean");
	return 0;
}

/* Re-read the trusted superblock after a rollback (it may have been logged). */
static int reload_super(struct fsck *f)
{
	struct ufs_super s;
	char why[160];

	memcpy(&s, fsck_blk(f, f->st.used_backup ? f->nblocks - 1 : 0), sizeof(s));
	if (super_validate(&s, f->st.used_backup ? f->nblocks - 1 : 0, f->dev_blocks, why,
			   sizeof(why)) != 0 ||
	    !super_same_geometry(&s, &f->sb)) {
		fsck_problem(f, false, "superblock after journal rollback: %s", why);
		return FSCK_UNCORRECTED;
	}
	f->sb = s;
	return 0;
}

/* ---------------------------------------------------------------- journal */

/*
 * fsck_fix_one_bit() - a structure whose checksum fails may differ from a valid
 * one by a single flipped bit (the common media error).  Try each bit of
 * bytes [from, to) of @obj; keep the flip when @ok() accepts the result.
 * CRC32C tells single-bit errors apart at these sizes, so at most one
 * flip can succeed.  Return: true (the bit is flipped back in @obj).
 */
bool fsck_fix_one_bit(void *obj, size_t from, size_t to, bool (*ok)(const void *obj))
{
	uint8_t *p = obj;
	size_t i;
	int b;

	for (i = from; i < to; i++) {
		for (b = 0; b < 8; b++) {
			p[i] ^= (uint8_t)(1u << b);
			if (ok(obj))
				return true;
			p[i] ^= (uint8_t)(1u << b);
		}
	}
	return false;
}

static bool journal_head_ok(const void *obj)
{
	return ufs_journal_head_ok(obj);
}

/* ufs_journal_scan() callback: roll one record back into the overlay (-n). */
static int ovl_rollback(void *arg, uint64_t dev_off, const void *old, uint32_t len)
{
	return fsck_ovl_write(arg, dev_off, old, len) ? -ENOMEM : 0;
}

/*
 * fsck_check_journal() - validate the journal header and an unfinished
 * transaction with the core's decoders (the rules mount applies); roll it
 * back (for real with repairs, else into the overlay).
 * Return: 0 to go on checking, or an FSCK_* status to stop.
 */
int fsck_check_journal(struct fsck *f)
{
	const struct ufs_super *sb = &f->sb;
	uint64_t joff = sb->s_journal_start * BS;
	struct ufs_journal_head h;
	struct ufs_journal *j = NULL;
	char why[256];
	int n, ret = 0;

	fsck_read(f, joff, &h, sizeof(h));
	if (!ufs_journal_head_ok(&h)) {
		struct ufs_journal_head fixed = h;
		bool one_bit = fsck_fix_one_bit(&fixed, 8, offsetof(struct ufs_journal_head, j_seq),
						journal_head_ok) ||
			       fsck_fix_one_bit(&fixed, offsetof(struct ufs_journal_head, j_pad),
						sizeof(h), journal_head_ok);

		/* j_seq and j_used are not covered: a flip there is judged below */
		if (!fsck_problem(f, true, "journal header at offset %" PRIu64 ": %s; %s", joff,
				  h.j_magic != UFS_JOURNAL_MAGIC ? "bad magic" : "bad checksum",
				  one_bit ? "one bit flipped: restore it" :
				  "rewrite it (an unfinished transaction in it is dropped)"))
			return FSCK_UNCORRECTED;	/* mount refuses it: nothing more to check */
		if (!one_bit) {
			fixed.j_magic = UFS_JOURNAL_MAGIC;
			fixed.j_pad = 0;
			fixed.j_used = 0;
			fixed.j_checksum = ufs_journal_head_csum(&fixed);
		}
		fsck_write(f, joff, &fixed, sizeof(fixed));
		h = fixed;
	}
	if (h.j_used == 0) {
		fsck_verbose(f, "udaxfs: journal: empty (sequence %" PRIu64 ")", h.j_seq);
		return 0;
	}
	/* the used-count, then every record, before anything is rolled back */
	n = ufs_journal_open(&j, f->m, sb);
	if (n == 0)
		n = ufs_journal_scan(j, NULL, NULL);
	if (n == -ENOMEM) {
		ret = FSCK_OPERATIONAL;
		goto out;
	}
	if (n < 0)
		goto bad;
	f->st.journal_records = (uint64_t)n;
	if (f->can_write && f->o.repair != FSCK_REPAIR_NO) {
		fsck_say(f, "udaxfs: journal: unfinished transaction (%d records): rolling it back", n);
		n = ufs_journal_recover(j, false);
		if (n < 0) {
			fsck_problem(f, false, "journal at offset %" PRIu64 ": rollback failed: %s",
				     joff, dx_errmsg());
			ret = FSCK_UNCORRECTED;
			goto out;
		}
		f->status |= FSCK_CORRECTED;
		/*
		 * A record may have rewritten the primary superblock, which
		 * fsck_load_super() had just repaired from the backup: the backup
		 * is the copy in use, so it repairs the primary again (the
		 * mount, too, rewrites both from it after its rollback).
		 */
		if (f->st.used_backup) {
			uint8_t blk[BS];

			memcpy(blk, fsck_blk(f, f->nblocks - 1), BS);
			fsck_write(f, 0, blk, BS);
		}
	} else {
		fsck_say(f, "udaxfs: journal: unfinished transaction (%d records); mount rolls it back, "
			 "checking the rolled-back state", n);
		if (ufs_journal_scan(j, ovl_rollback, f) < 0) {
			ret = FSCK_OPERATIONAL;
			goto out;
		}
	}
	ufs_journal_close(&j);
	return reload_super(f);
bad:
	/*
	 * The log cannot be rolled back (mount refuses it).  It is an undo
	 * log: emptying it keeps whatever the unfinished transaction had
	 * already changed in place, and the passes below repair that, as
	 * e2fsck does with a journal it cannot replay.
	 */
	snprintf(why, sizeof(why), "%s", dx_errmsg());
	if (fsck_problem(f, true, "journal at offset %" PRIu64 ": %s (mount refuses this image); "
			 "empty the log", joff, why)) {
		uint64_t zero = 0;

		fsck_write(f, joff + offsetof(struct ufs_journal_head, j_used), &zero, sizeof(zero));
	} else {
		ret = FSCK_UNCORRECTED;
	}
out:
	ufs_journal_close(&j);
	return ret;
}
