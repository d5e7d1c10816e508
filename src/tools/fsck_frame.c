/* SPDX-License-Identifier: MIT */
/*
 * fsck_frame.c - what every pass of the checker stands on (fsck_int.h):
 * reports and questions, bounds-checked device access with the private
 * overlay that -n rolls the journal back into, inode slots, bitmaps and
 * mode rules.  It calls no pass: the passes and the driver (fsck_check.c)
 * call it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/format.h"
#include "core/media.h"
#include "core/super.h"
#include "core/util.h"
#include "fsck_int.h"

/* ---------------------------------------------------------------- output */

void fsck_say(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	if (f->o.quiet)
		return;
	va_start(ap, fmt);
	vfprintf(f->out, fmt, ap);
	va_end(ap);
	fputc('\n', f->out);
}

void fsck_verbose(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	if (f->o.quiet || !f->o.verbose)
		return;
	va_start(ap, fmt);
	vfprintf(f->out, fmt, ap);
	va_end(ap);
	fputc('\n', f->out);
}

/*
 * fsck_problem() - report one error and decide whether to repair it.
 * @fixable: a safe repair exists.
 * Return: true when the caller must repair now (and then the error counts
 * as corrected), false when it stays (uncorrected).
 */
bool fsck_problem(struct fsck *f, bool fixable, const char *fmt, ...)
{
	va_list ap;
	bool fix = false;

	f->st.errors++;
	if (!f->o.quiet) {
		va_start(ap, fmt);
		fputs("udaxfs: ", f->out);
		vfprintf(f->out, fmt, ap);
		va_end(ap);
	}
	if (fixable && f->can_write) {
		if (f->o.repair == FSCK_REPAIR_YES) {
			fix = true;
		} else if (f->o.repair == FSCK_REPAIR_ASK) {
			char line[16];

			fputs(". Fix? [y/N] ", f->out);
			fflush(f->out);
			fix = fgets(line, sizeof(line), stdin) && (line[0] == 'y' || line[0] == 'Y');
		}
	}
	if (!f->o.quiet)
		fprintf(f->out, "%s\n", fix ? " (fixed)" : (fixable ? "" : " (not fixed)"));
	if (fix) {
		f->st.fixed++;
		f->status |= FSCK_CORRECTED;
	} else {
		f->status |= FSCK_UNCORRECTED;
	}
	return fix;
}

void fsck_progress(struct fsck *f, const char *pass, uint64_t done, uint64_t total)
{
	unsigned int pct;

	if (!f->o.progress || f->o.quiet || total == 0)
		return;
	if (done != total && (done & 0xffff))
		return;
	pct = (unsigned int)(done * 100 / total);
	if (pass == f->prog_pass && pct == f->prog_pct)
		return;
	f->prog_pass = pass;
	f->prog_pct = pct;
	fprintf(stderr, "\rudaxfs: %s: %3u%%", pass, pct);
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}
/* ---------------------------------------------------------------- device access */

/*
 * fsck_blk() - the contents of device block @b, from the private overlay
 * when it has a copy.  Return: NULL when @b lies outside the device.
 */
const uint8_t *fsck_blk(struct fsck *f, uint64_t b)
{
	size_t lo, hi;

	if (b >= f->dev_blocks)
		return NULL;
	if (f->ovl_map && bit_test(f->ovl_map, b)) {
		lo = 0;
		hi = f->novl;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (f->ovl[mid].blk == b)
				return f->ovl[mid].buf;
			if (f->ovl[mid].blk < b)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return f->base + b * BS;
}

/* Copy [off, off + len) of the device (overlay applied).  Return: 0, -ERANGE. */
int fsck_read(struct fsck *f, uint64_t off, void *dst, size_t len)
{
	uint8_t *d = dst;

	if (off > f->dev_size || len > f->dev_size - off)
		return -ERANGE;
	while (len) {
		uint64_t b = off / BS;
		size_t in = off % BS;
		size_t n = dx_min(len, (size_t)(BS - in));
		const uint8_t *p = fsck_blk(f, b);

		if (!p)
			return -ERANGE;
		memcpy(d, p + in, n);
		d += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * fsck_write() - durably write [off, off + len).  Only reached after the
 * caller decided to repair (fsck_problem() returned true or -y was given).
 */
int fsck_write(struct fsck *f, uint64_t off, const void *src, size_t len)
{
	UDAX_BUG_ON(!f->can_write);
	UDAX_BUG_ON(f->novl != 0);	/* never mix repairs with a rollback overlay */
	if (off > f->dev_size || len > f->dev_size - off)
		return -ERANGE;
	dx_media_memcpy_persist(f->m, dx_media_ptr(f->m, off), src, len);
	return 0;
}

static uint8_t *ovl_get(struct fsck *f, uint64_t b)
{
	size_t i;
	uint8_t *buf;

	if (b >= f->dev_blocks)
		return NULL;
	if (bit_test(f->ovl_map, b)) {
		for (i = 0; i < f->novl; i++)
			if (f->ovl[i].blk == b)
				return f->ovl[i].buf;
	}
	if (f->novl == f->capovl) {
		size_t cap = f->capovl ? f->capovl * 2 : 64;
		struct ovl_blk *n = realloc(f->ovl, cap * sizeof(*n));

		if (!n)
			return NULL;
		f->ovl = n;
		f->capovl = cap;
	}
	buf = malloc(BS);
	if (!buf)
		return NULL;
	memcpy(buf, f->base + b * BS, BS);
	/* keep sorted by block for fsck_blk()'s binary search */
	for (i = f->novl; i > 0 && f->ovl[i - 1].blk > b; i--)
		f->ovl[i] = f->ovl[i - 1];
	f->ovl[i].blk = b;
	f->ovl[i].buf = buf;
	f->novl++;
	bit_set(f->ovl_map, b);
	return buf;
}

int fsck_ovl_write(struct fsck *f, uint64_t off, const uint8_t *src, size_t len)
{
	while (len) {
		uint64_t b = off / BS;
		size_t in = off % BS;
		size_t n = dx_min(len, (size_t)(BS - in));
		uint8_t *p = ovl_get(f, b);

		if (!p)
			return -ENOMEM;
		memcpy(p + in, src, n);
		src += n;
		off += n;
		len -= n;
	}
	return 0;
}
/* ---------------------------------------------------------------- inodes */

uint64_t fsck_ino_off(const struct fsck *f, uint64_t ino)
{
	return f->sb.s_itable_start * BS + ino * UFS_INODE_SIZE;
}

void fsck_read_inode(struct fsck *f, uint64_t ino, struct ufs_dinode *di)
{
	if (fsck_read(f, fsck_ino_off(f, ino), di, sizeof(*di)))
		memset(di, 0, sizeof(*di));
}

void fsck_write_inode(struct fsck *f, uint64_t ino, struct ufs_dinode *di)
{
	di->i_checksum = ufs_inode_csum(di);
	fsck_write(f, fsck_ino_off(f, ino), di, sizeof(*di));
}

bool fsck_ibit(struct fsck *f, uint64_t ino)
{
	const uint8_t *p = fsck_blk(f, f->sb.s_ibitmap_start + ino / BITS_PER_BLOCK);

	return p && bit_test(p, ino % BITS_PER_BLOCK);
}

bool fsck_bbit(struct fsck *f, uint64_t blk)
{
	const uint8_t *p = fsck_blk(f, f->sb.s_bbitmap_start + blk / BITS_PER_BLOCK);

	return p && bit_test(p, blk % BITS_PER_BLOCK);
}

/* Set or clear one bit of an on-media bitmap (repairs only). */
void fsck_write_bit(struct fsck *f, uint64_t map_start, uint64_t i, bool set)
{
	uint64_t off = map_start * BS + i / 8;
	uint8_t byte;

	fsck_read(f, off, &byte, 1);
	if (set)
		byte |= (uint8_t)(1u << (i & 7));
	else
		byte &= (uint8_t)~(1u << (i & 7));
	fsck_write(f, off, &byte, 1);
}

bool fsck_mode_ok(uint32_t mode)
{
	if (mode & ~(uint32_t)(S_IFMT | 07777))
		return false;
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR:
	case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return true;
	}
	return false;
}

unsigned int fsck_mode_dtype(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return 8;		/* DT_REG */
	case S_IFDIR: return 4;		/* DT_DIR */
	case S_IFLNK: return 10;	/* DT_LNK */
	case S_IFCHR: return 2;		/* DT_CHR */
	case S_IFBLK: return 6;		/* DT_BLK */
	case S_IFIFO: return 1;		/* DT_FIFO */
	case S_IFSOCK: return 12;	/* DT_SOCK */
	}
	return 0;
}

bool fsck_has_tree(uint32_t mode, uint32_t flags)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR:
		return true;
	case S_IFLNK:
		return !(flags & UFS_INODE_FL_INLINE_SYMLINK);
	}
	return false;
}
