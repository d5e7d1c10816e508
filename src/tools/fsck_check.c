/* SPDX-License-Identifier: MIT */
/*
 * fsck_check.c - the checker's driver (fsck_check.h): opens and locks the
 * device, sets up the state, runs the passes in order (their list is in
 * fsck_int.h) and reports the result.  What the passes share is in
 * fsck_frame.c.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "core/format.h"
#include "core/journal.h"
#include "core/media.h"
#include "core/super.h"
#include "core/util.h"
#include "fsck_int.h"

/* ---------------------------------------------------------------- driver */

static void fsck_free(struct fsck *f)
{
	size_t i;

	for (i = 0; i < f->novl; i++)
		free(f->ovl[i].buf);
	free(f->ovl);
	free(f->ovl_map);
	free(f->used);
	free(f->dup);
	free(f->istate);
	free(f->refs);
	free(f->subdirs);
	free(f->parent);
	free(f->bparent);
}

int udax_fsck_media(struct dx_media *m, const struct fsck_opts *opts, struct fsck_stats *st)
{
	struct fsck f;
	int r;

	memset(&f, 0, sizeof(f));
	f.m = m;
	f.o = *opts;
	f.out = opts->out ? opts->out : stdout;
	f.base = dx_media_base(m);
	f.dev_size = dx_media_size(m) & ~(uint64_t)(BS - 1);
	f.dev_blocks = f.dev_size / BS;
	f.can_write = opts->repair != FSCK_REPAIR_NO && !dx_media_readonly(m);
	if (f.dev_blocks < 2) {
		fsck_say(&f, "udaxfs: %s: device too small (%" PRIu64 " bytes) for udaxfs",
			 dx_media_path(m), dx_media_size(m));
		r = FSCK_OPERATIONAL;
		goto out;
	}
	f.ovl_map = calloc(f.dev_blocks / 8 + 1, 1);
	if (!f.ovl_map) {
		r = FSCK_OPERATIONAL;
		goto out;
	}
	r = fsck_load_super(&f);
	if (r)
		goto out;
	if (opts->preen && !opts->force && f.sb.s_state == UFS_STATE_CLEAN && f.status == 0) {
		struct ufs_journal_head h;

		fsck_read(&f, f.sb.s_journal_start * BS, &h, sizeof(h));
		if (h.j_magic == UFS_JOURNAL_MAGIC && h.j_used == 0) {
			fsck_say(&f, "udaxfs: %s: clean", dx_media_path(m));
			f.st.skipped = true;
			r = 0;
			goto out;
		}
	}
	r = fsck_check_journal(&f);
	if (r)
		goto out;
	if (f.ninodes >= BPARENT_BAD) {
		fsck_say(&f, "udaxfs: %" PRIu64 " inode slots: more than this fsck handles", f.ninodes);
		r = FSCK_OPERATIONAL;
		goto out;
	}
	f.used = calloc(f.nblocks / 8 + 1, 1);
	f.dup = calloc(f.nblocks / 8 + 1, 1);
	f.istate = calloc(f.ninodes, sizeof(*f.istate));
	f.refs = calloc(f.ninodes, sizeof(*f.refs));
	f.subdirs = calloc(f.ninodes, sizeof(*f.subdirs));
	f.parent = calloc(f.ninodes, sizeof(*f.parent));
	f.bparent = calloc(f.ninodes, sizeof(*f.bparent));
	if (!f.used || !f.dup || !f.istate || !f.refs || !f.subdirs || !f.parent || !f.bparent) {
		fsck_say(&f, "udaxfs: out of memory for %" PRIu64 " blocks / %" PRIu64 " inodes",
			 f.nblocks, f.ninodes);
		r = FSCK_OPERATIONAL;
		goto out;
	}
	fsck_pass1(&f);
	fsck_pass1b(&f);
	fsck_pass2(&f);
	if (f.adopted)
		fsck_pass1b(&f);	/* an inode taken back in pass 2 may share blocks too */
	fsck_pass3(&f);
	fsck_pass4(&f);
	fsck_pass5(&f);
	/* a crashed file system that is now sound is marked clean, as e2fsck does */
	if (f.can_write && opts->repair == FSCK_REPAIR_YES && !(f.status & FSCK_UNCORRECTED) &&
	    f.sb.s_state != UFS_STATE_CLEAN) {
		f.sb.s_state = UFS_STATE_CLEAN;
		fsck_super_write_both(&f, &f.sb);
		fsck_verbose(&f, "udaxfs: marked clean");
	}
	r = f.status;
	if (!opts->quiet) {
		char a[32], b[32];

		fprintf(f.out, "udaxfs: %s: %" PRIu64 " inodes (%" PRIu64 " dirs, %" PRIu64
			" others), %s used of %s, %" PRIu64 " errors, %" PRIu64 " fixed\n",
			dx_media_path(m), f.st.inodes, f.st.dirs, f.st.files,
			dx_fmt_size((f.nblocks - f.st.free_blocks) * BS, a, sizeof(a)),
			dx_fmt_size(f.nblocks * BS, b, sizeof(b)), f.st.errors, f.st.fixed);
	}
out:
	if (st)
		*st = f.st;
	fsck_free(&f);
	return r;
}

int udax_fsck_path(const char *path, const struct fsck_opts *opts, struct fsck_stats *st)
{
	struct dx_media_opts mo;
	struct dx_media *m = NULL;
	FILE *out = opts->out ? opts->out : stdout;
	int r;

	memset(&mo, 0, sizeof(mo));
	mo.path = path;
	mo.readonly = opts->repair == FSCK_REPAIR_NO;
	r = dx_media_open(&m, &mo);
	if (r < 0) {
		if (!opts->quiet)
			fprintf(out, "udaxfs: cannot open %s: %s\n", path, dx_errmsg());
		return FSCK_OPERATIONAL;
	}
	/* refuse to repair a device a daemon holds (it takes the same lock) */
	if (!mo.readonly && flock(dx_media_fd(m), LOCK_EX | LOCK_NB) < 0) {
		if (!opts->quiet)
			fprintf(out, "udaxfs: %s is in use (mounted?): not repairing\n", path);
		dx_media_close(&m);
		return FSCK_OPERATIONAL;
	}
	if (mo.readonly && flock(dx_media_fd(m), LOCK_SH | LOCK_NB) < 0 && !opts->quiet)
		fprintf(out, "udaxfs: warning: %s is in use (mounted?): it may change while it is "
			"checked\n", path);
	r = udax_fsck_media(m, opts, st);
	dx_media_close(&m);
	return r;
}
