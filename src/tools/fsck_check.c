/* SPDX-License-Identifier: MIT */
/*
 * fsck_check.c - the udaxfs consistency checker (see fsck_check.h).
 *
 * Passes, in order:
 *   0  superblocks (primary and backup) and the journal; an unfinished
 *      transaction is rolled back (for real with -y, in a private overlay
 *      of the affected blocks with -n) so the rest checks what mount sees;
 *   1  every inode the inode bitmap marks allocated: checksum, mode, extent
 *      tree, xattr block, i_blocks; every block it references is recorded
 *      (doubly used blocks are errors);
 *   2  directories: record chains, names, inode numbers, d_type,
 *      duplicates; references are counted per inode;
 *   3  connectivity: each directory has one parent, reachable from root;
 *      the orphan list;
 *   4  link counts;
 *   5  the block and inode bitmaps against what passes 1-3 found.
 *
 * Safety: every device offset comes from a bounds-checked block accessor
 * (fsck_blk()), and every structure is copied out of the mapping before it
 * is parsed.  Nothing is written unless the caller asked for repairs and
 * the user (or -y) agreed, and never before the superblock was trusted.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "journal.h"
#include "media.h"
#include "super.h"
#include "util.h"
#include "fsck_check.h"

#define BS		UFS_BLOCK_SIZE
#define INODES_PER_BLOCK (UFS_BLOCK_SIZE / UFS_INODE_SIZE)
#define BITS_PER_BLOCK	(UFS_BLOCK_SIZE * 8ull)
#define MAX_TREE_DEPTH	8
#define ROOT_INO	1u

/* per-inode state, fsck->istate[] */
#define IS_ALLOC	0x01	/* inode bitmap bit set */
#define IS_VALID	0x02	/* passed pass 1 (usable by later passes) */
#define IS_DIR		0x04
#define IS_ORPHAN	0x08	/* on the orphan list */
#define IS_REACHED	0x10	/* directory reachable from root */
#define IS_FREED	0x20	/* reclaimed by this run */
#define IS_BADTREE	0x40	/* extent tree unusable */
#define BPARENT_UNKNOWN	UINT32_MAX		/* block 0 unreadable */
#define BPARENT_BAD	(UINT32_MAX - 1)	/* b_parent beyond any inode */
#define IS_ONLIST	0x80	/* reached from the orphan list head (pass 1 pre-walk) */

struct ovl_blk {
	uint64_t blk;
	uint8_t *buf;
};

struct fsck {
	struct udax_media *m;
	const uint8_t *base;
	uint64_t dev_size;
	uint64_t dev_blocks;
	bool can_write;
	struct fsck_opts o;
	FILE *out;
	struct fsck_stats st;
	int status;
	bool dir_damaged;		/* a directory block could not be read */
	bool owners_unknown;		/* an unrepaired inode's blocks are not marked */
	uint64_t lost_found;		/* /lost+found once found or made, else 0 */
	uint8_t *dir_checked;		/* pass 2: directories done */
	bool adopted_dirs;		/* pass 2 took a directory back into the bitmap */
	const char *prog_pass;		/* -C: last line printed */
	unsigned int prog_pct;

	struct ufs_super sb;		/* the trusted copy */
	uint64_t nblocks;		/* s_blocks_count (<= dev_blocks) */
	uint64_t ninodes;

	/* private copies of blocks (journal rollback under -n) */
	uint8_t *ovl_map;		/* bit per device block */
	struct ovl_blk *ovl;
	size_t novl, capovl;

	uint8_t *used;			/* bit per block: referenced */
	uint8_t *dup;			/* bit per block: referenced twice */
	uint8_t *istate;		/* per inode slot */
	uint32_t *refs;			/* directory entries naming the inode */
	uint32_t *subdirs;		/* per directory: child directories */
	/* inode numbers fit 32 bits (udax_fsck_media refuses more slots) */
	uint32_t *parent;		/* per directory: the directory naming it */
	uint32_t *bparent;		/* per directory: b_parent of its block 0 (clamped) */
};

/* ---------------------------------------------------------------- output */

static void say(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	if (f->o.quiet)
		return;
	va_start(ap, fmt);
	vfprintf(f->out, fmt, ap);
	va_end(ap);
	fputc('\n', f->out);
}

static void verbose(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verbose(struct fsck *f, const char *fmt, ...)
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
 * problem() - report one error and decide whether to repair it.
 * @fixable: a safe repair exists.
 * Return: true when the caller must repair now (and then the error counts
 * as corrected), false when it stays (uncorrected).
 */
static bool problem(struct fsck *f, bool fixable, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool problem(struct fsck *f, bool fixable, const char *fmt, ...)
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

static void progress(struct fsck *f, const char *pass, uint64_t done, uint64_t total)
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

/* ---------------------------------------------------------------- bits */

static inline bool bit_test(const uint8_t *map, uint64_t i)
{
	return map[i >> 3] & (1u << (i & 7));
}
static inline void bit_set(uint8_t *map, uint64_t i)
{
	map[i >> 3] |= (uint8_t)(1u << (i & 7));
}
static inline void bit_clear(uint8_t *map, uint64_t i)
{
	map[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

/* ---------------------------------------------------------------- device access */

/*
 * fsck_blk() - the contents of device block @b, from the private overlay
 * when it has a copy.  Return: NULL when @b lies outside the device.
 */
static const uint8_t *fsck_blk(struct fsck *f, uint64_t b)
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
static int fsck_read(struct fsck *f, uint64_t off, void *dst, size_t len)
{
	uint8_t *d = dst;

	if (off > f->dev_size || len > f->dev_size - off)
		return -ERANGE;
	while (len) {
		uint64_t b = off / BS;
		size_t in = off % BS;
		size_t n = udax_min(len, (size_t)(BS - in));
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
 * caller decided to repair (problem() returned true or -y was given).
 */
static int fsck_write(struct fsck *f, uint64_t off, const void *src, size_t len)
{
	UDAX_BUG_ON(!f->can_write);
	UDAX_BUG_ON(f->novl != 0);	/* never mix repairs with a rollback overlay */
	if (off > f->dev_size || len > f->dev_size - off)
		return -ERANGE;
	udax_media_memcpy_persist(f->m, udax_media_ptr(f->m, off), src, len);
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

static int ovl_write(struct fsck *f, uint64_t off, const uint8_t *src, size_t len)
{
	while (len) {
		uint64_t b = off / BS;
		size_t in = off % BS;
		size_t n = udax_min(len, (size_t)(BS - in));
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

/* ---------------------------------------------------------------- superblock */

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/*
 * super_validate() - is @sb a usable superblock?  The same rules as mount
 * (super.c): fsck must never call clean what mount refuses.
 * Return: 0 usable; 1 not udaxfs (no magic); 2 unsupported; 3 corrupt;
 * 4 larger than the device.  A reason is left in @why.
 */
static int super_validate(const struct ufs_super *sb, uint64_t dev_blocks, char *why, size_t wl)
{
	uint64_t nb = sb->s_blocks_count, ni = sb->s_inode_count;

#define BAD(code, ...) do { snprintf(why, wl, __VA_ARGS__); return (code); } while (0)
	if (sb->s_magic != UFS_MAGIC)
		BAD(1, "bad magic 0x%016" PRIx64, sb->s_magic);
	if (ufs_super_csum(sb) != sb->s_checksum)
		BAD(3, "bad checksum 0x%08x (computed 0x%08x)", sb->s_checksum, ufs_super_csum(sb));
	if (sb->s_version > UFS_VERSION)
		BAD(2, "format version %u is newer than this fsck (%u)", sb->s_version, UFS_VERSION);
	if (sb->s_version == 0)
		BAD(3, "format version 0");
	if (sb->s_feat_incompat & ~UFS_FEAT_INCOMPAT_SUPPORTED)
		BAD(2, "unknown incompatible features 0x%x", sb->s_feat_incompat);
	if (sb->s_block_size != UFS_BLOCK_SIZE)
		BAD(3, "block size %u", sb->s_block_size);
	if (sb->s_state != UFS_STATE_CLEAN && sb->s_state != UFS_STATE_MOUNTED)
		BAD(3, "invalid state %u", sb->s_state);
	if (sb->s_label[sizeof(sb->s_label) - 1] != '\0')
		BAD(3, "label is not NUL-terminated");
	if (nb < UFS_MIN_BLOCKS || nb > (1ULL << 40))
		BAD(3, "blocks_count %" PRIu64 " out of range", nb);
	if (ni < 2 || ni > nb * INODES_PER_BLOCK)
		BAD(3, "inode_count %" PRIu64 " out of range", ni);
	if (sb->s_journal_start != 1 || sb->s_journal_blocks < 16 || sb->s_journal_blocks > nb)
		BAD(3, "journal region %" PRIu64 "+%" PRIu64 " invalid", sb->s_journal_start,
		    sb->s_journal_blocks);
	if (sb->s_ibitmap_start != sb->s_journal_start + sb->s_journal_blocks ||
	    sb->s_ibitmap_blocks != div_up(ni, BITS_PER_BLOCK))
		BAD(3, "inode bitmap region %" PRIu64 "+%" PRIu64 " invalid", sb->s_ibitmap_start,
		    sb->s_ibitmap_blocks);
	if (sb->s_bbitmap_start != sb->s_ibitmap_start + sb->s_ibitmap_blocks ||
	    sb->s_bbitmap_blocks != div_up(nb, BITS_PER_BLOCK))
		BAD(3, "block bitmap region %" PRIu64 "+%" PRIu64 " invalid", sb->s_bbitmap_start,
		    sb->s_bbitmap_blocks);
	if (sb->s_itable_start != sb->s_bbitmap_start + sb->s_bbitmap_blocks ||
	    sb->s_itable_blocks != div_up(ni, INODES_PER_BLOCK))
		BAD(3, "inode table region %" PRIu64 "+%" PRIu64 " invalid", sb->s_itable_start,
		    sb->s_itable_blocks);
	if (sb->s_data_start < sb->s_itable_start + sb->s_itable_blocks ||
	    sb->s_data_start % UFS_HUGE_BLOCKS || sb->s_data_start + 16 > nb - 1)
		BAD(3, "data start %" PRIu64 " invalid", sb->s_data_start);
	if (sb->s_root_ino != ROOT_INO)
		BAD(3, "root inode %" PRIu64, sb->s_root_ino);
	if (sb->s_orphan_head >= ni)
		BAD(3, "orphan head %" PRIu64 " out of range", sb->s_orphan_head);
	if (nb > dev_blocks)
		BAD(4, "the file system needs %" PRIu64 " blocks but the device has %" PRIu64
		    " (truncated image?)", nb, dev_blocks);
#undef BAD
	return 0;
}

/* Same geometry?  (state, times, orphan head and hints may differ.) */
static bool super_same_geometry(const struct ufs_super *a, const struct ufs_super *b)
{
	return !memcmp(a, b, offsetof(struct ufs_super, s_state)) &&
	       !memcmp(a->s_uuid, b->s_uuid, offsetof(struct ufs_super, s_orphan_head) -
						 offsetof(struct ufs_super, s_uuid));
}

static void super_write_both(struct fsck *f, struct ufs_super *sb)
{
	uint8_t blk[BS];

	memset(blk, 0, sizeof(blk));
	sb->s_checksum = ufs_super_csum(sb);
	memcpy(blk, sb, sizeof(*sb));
	fsck_write(f, 0, blk, BS);
	fsck_write(f, (sb->s_blocks_count - 1) * BS, blk, BS);
}

/*
 * load_super() - pick the superblock to trust; repair the other copy.
 * Return: 0, or an FSCK_* status when nothing can be checked.
 */
static int load_super(struct fsck *f)
{
	struct ufs_super p, b;
	char whyp[160], whyb[160];
	int rp, rb = 1;
	uint64_t boff = 0;

	memcpy(&p, fsck_blk(f, 0), sizeof(p));
	rp = super_validate(&p, f->dev_blocks, whyp, sizeof(whyp));
	/* backup: at blocks_count - 1 of a readable primary, else the device's last block */
	if (rp == 0 || (p.s_magic == UFS_MAGIC && p.s_blocks_count >= 2 &&
			p.s_blocks_count <= f->dev_blocks))
		boff = p.s_blocks_count - 1;
	else
		boff = f->dev_blocks - 1;
	memcpy(&b, fsck_blk(f, boff), sizeof(b));
	rb = super_validate(&b, f->dev_blocks, whyb, sizeof(whyb));
	if (rb == 0 && b.s_blocks_count - 1 != boff) {
		snprintf(whyb, sizeof(whyb), "backup at block %" PRIu64 " claims %" PRIu64 " blocks",
			 boff, b.s_blocks_count);
		rb = 3;
	}
	if (rp != 0 && rb != 0) {
		if (rp == 1 && rb == 1) {
			say(f, "udaxfs: %s: not a udaxfs file system (superblock at offset 0: %s)",
			    udax_media_path(f->m), whyp);
			return FSCK_OPERATIONAL;
		}
		if (rp == 2 || rb == 2) {
			say(f, "udaxfs: superblock: %s", rp == 2 ? whyp : whyb);
			return FSCK_OPERATIONAL;
		}
		if (rp == 4 || rb == 4) {
			say(f, "udaxfs: superblock at offset 0: %s", rp == 4 ? whyp : whyb);
			return FSCK_UNCORRECTED;
		}
		say(f, "udaxfs: superblock at offset 0: %s; backup at offset %" PRIu64 ": %s",
		    whyp, boff * BS, whyb);
		return FSCK_UNCORRECTED;
	}
	if (rp != 0) {
		f->st.used_backup = true;
		f->sb = b;
		if (problem(f, rp != 2, "primary superblock at offset 0: %s; using the backup "
			    "at offset %" PRIu64, whyp, boff * BS)) {
			uint8_t blk[BS];

			memcpy(blk, fsck_blk(f, boff), BS);
			fsck_write(f, 0, blk, BS);
		}
	} else {
		f->sb = p;
		if (rb != 0) {
			if (problem(f, true, "backup superblock at offset %" PRIu64 ": %s",
				    (p.s_blocks_count - 1) * BS, whyb))
				fsck_write(f, (p.s_blocks_count - 1) * BS, fsck_blk(f, 0), BS);
		} else if (!super_same_geometry(&p, &b)) {
			if (problem(f, true, "backup superblock at offset %" PRIu64
				    " differs from the primary", (p.s_blocks_count - 1) * BS))
				fsck_write(f, (p.s_blocks_count - 1) * BS, fsck_blk(f, 0), BS);
		}
	}
	f->nblocks = f->sb.s_blocks_count;
	f->ninodes = f->sb.s_inode_count;
	verbose(f, "udaxfs: superblock: %" PRIu64 " blocks, %" PRIu64 " inodes, journal %" PRIu64
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
	if (super_validate(&s, f->dev_blocks, why, sizeof(why)) != 0 ||
	    !super_same_geometry(&s, &f->sb)) {
		problem(f, false, "superblock after journal rollback: %s", why);
		return FSCK_UNCORRECTED;
	}
	f->sb = s;
	return 0;
}

/* ---------------------------------------------------------------- journal */

static uint32_t jrec_csum(const struct ufs_journal_rec *r, const void *bytes)
{
	struct ufs_journal_rec c = *r;

	c.r_crc = 0;
	return udax_crc32c(udax_crc32c(0, &c, sizeof(c)), bytes, r->r_len);
}

struct jrec_pos {
	uint64_t off;		/* device offset of the record header */
};

/*
 * check_journal() - validate the journal header and an unfinished
 * transaction; roll it back (for real with repairs, else into the overlay).
 * Return: 0 to go on checking, or an FSCK_* status to stop.
 */
/*
 * fix_one_bit() - a structure whose checksum fails may differ from a valid
 * one by a single flipped bit (the common media error).  Try each bit of
 * bytes [from, to) of @obj; keep the flip when @ok() accepts the result.
 * CRC32C tells single-bit errors apart at these sizes, so at most one
 * flip can succeed.  Return: true (the bit is flipped back in @obj).
 */
static bool fix_one_bit(void *obj, size_t from, size_t to, bool (*ok)(const void *obj))
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
	const struct ufs_journal_head *h = obj;

	return h->j_magic == UFS_JOURNAL_MAGIC && h->j_pad == 0 &&
	       ufs_journal_head_csum(h) == h->j_checksum;
}

static int check_journal(struct fsck *f)
{
	const struct ufs_super *sb = &f->sb;
	uint64_t joff = sb->s_journal_start * BS;
	uint64_t jsize = sb->s_journal_blocks * BS;
	uint64_t jend = joff + jsize;
	struct ufs_journal_head h;
	struct jrec_pos *recs = NULL;
	size_t nrec = 0, cap = 0;
	uint64_t pos, rstart;
	int ret = 0;

	fsck_read(f, joff, &h, sizeof(h));
	if (h.j_magic != UFS_JOURNAL_MAGIC || ufs_journal_head_csum(&h) != h.j_checksum ||
	    h.j_pad != 0) {
		struct ufs_journal_head fixed = h;
		bool one_bit = fix_one_bit(&fixed, 8, offsetof(struct ufs_journal_head, j_seq),
					   journal_head_ok) ||
			       fix_one_bit(&fixed, offsetof(struct ufs_journal_head, j_pad),
					   sizeof(h), journal_head_ok);

		/* j_seq and j_used are not covered: a flip there is judged below */
		if (!problem(f, true, "journal header at offset %" PRIu64 ": %s; %s", joff,
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
		verbose(f, "udaxfs: journal: empty (sequence %" PRIu64 ")", h.j_seq);
		return 0;
	}
	if (h.j_used > jsize - UFS_JOURNAL_REC_START || h.j_used % 8) {
		pos = joff;
		goto bad;
	}
	/* validate every record before anything is rolled back */
	rstart = joff + UFS_JOURNAL_REC_START;
	pos = rstart;
	while (pos < rstart + h.j_used) {
		struct ufs_journal_rec r;
		uint8_t *bytes;
		uint64_t padded;

		if (pos + sizeof(r) > rstart + h.j_used)
			goto bad;
		fsck_read(f, pos, &r, sizeof(r));
		padded = UDAX_ALIGN_UP((uint64_t)r.r_len, 8);
		if (r.r_len == 0 || padded > rstart + h.j_used - pos - sizeof(r))
			goto bad;
		if (r.r_dev_off > f->nblocks * BS || r.r_len > f->nblocks * BS - r.r_dev_off ||
		    (r.r_dev_off < jend && r.r_dev_off + r.r_len > joff))
			goto bad;
		bytes = malloc(r.r_len);
		if (!bytes) {
			ret = FSCK_OPERATIONAL;
			goto out;
		}
		fsck_read(f, pos + sizeof(r), bytes, r.r_len);
		if (jrec_csum(&r, bytes) != r.r_crc || r.r_seq != h.j_seq) {
			free(bytes);
			goto bad;
		}
		free(bytes);
		if (nrec == cap) {
			struct jrec_pos *n;

			cap = cap ? cap * 2 : 32;
			n = realloc(recs, cap * sizeof(*n));
			if (!n) {
				ret = FSCK_OPERATIONAL;
				goto out;
			}
			recs = n;
		}
		recs[nrec++].off = pos;
		pos += sizeof(r) + padded;
	}
	f->st.journal_records = nrec;
	if (f->can_write && f->o.repair != FSCK_REPAIR_NO) {
		struct ufs_journal *j = NULL;
		int r;

		say(f, "udaxfs: journal: unfinished transaction (%zu records): rolling it back", nrec);
		r = ufs_journal_open(&j, f->m, sb);
		if (r == 0)
			r = ufs_journal_recover(j, false);
		ufs_journal_close(&j);
		if (r < 0) {
			problem(f, false, "journal at offset %" PRIu64 ": rollback failed: %s",
				joff, udax_errmsg());
			ret = FSCK_UNCORRECTED;
			goto out;
		}
		f->status |= FSCK_CORRECTED;
		/*
		 * A record may have rewritten the primary superblock, which
		 * load_super() had just repaired from the backup: the backup
		 * is the copy in use, so it repairs the primary again (the
		 * mount, too, rewrites both from it after its rollback).
		 */
		if (f->st.used_backup) {
			uint8_t blk[BS];

			memcpy(blk, fsck_blk(f, f->nblocks - 1), BS);
			fsck_write(f, 0, blk, BS);
		}
	} else {
		size_t i;

		say(f, "udaxfs: journal: unfinished transaction (%zu records); mount rolls it back, "
		    "checking the rolled-back state", nrec);
		for (i = nrec; i-- > 0;) {
			struct ufs_journal_rec r;
			uint8_t *bytes;

			fsck_read(f, recs[i].off, &r, sizeof(r));
			bytes = malloc(r.r_len);
			if (!bytes || fsck_read(f, recs[i].off + sizeof(r), bytes, r.r_len) ||
			    ovl_write(f, r.r_dev_off, bytes, r.r_len)) {
				free(bytes);
				ret = FSCK_OPERATIONAL;
				goto out;
			}
			free(bytes);
		}
	}
	ret = reload_super(f);
	goto out;
bad:
	/*
	 * The log cannot be rolled back (mount refuses it).  It is an undo
	 * log: emptying it keeps whatever the unfinished transaction had
	 * already changed in place, and the passes below repair that, as
	 * e2fsck does with a journal it cannot replay.
	 */
	if (problem(f, true, "journal at offset %" PRIu64 ": %s at offset %" PRIu64 " (mount "
		    "refuses this image); empty the log", joff, pos == joff ?
		    "used-count larger than the log or unaligned" : "corrupt record", pos)) {
		uint64_t zero = 0;

		fsck_write(f, joff + offsetof(struct ufs_journal_head, j_used), &zero, sizeof(zero));
		ret = 0;
	} else {
		ret = FSCK_UNCORRECTED;
	}
out:
	free(recs);
	return ret;
}

/* ---------------------------------------------------------------- inodes */

static uint64_t ino_off(const struct fsck *f, uint64_t ino)
{
	return f->sb.s_itable_start * BS + ino * UFS_INODE_SIZE;
}

static void read_inode(struct fsck *f, uint64_t ino, struct ufs_dinode *di)
{
	if (fsck_read(f, ino_off(f, ino), di, sizeof(*di)))
		memset(di, 0, sizeof(*di));
}

static void write_inode(struct fsck *f, uint64_t ino, struct ufs_dinode *di)
{
	di->i_checksum = ufs_inode_csum(di);
	fsck_write(f, ino_off(f, ino), di, sizeof(*di));
}

static bool ibit(struct fsck *f, uint64_t ino)
{
	const uint8_t *p = fsck_blk(f, f->sb.s_ibitmap_start + ino / BITS_PER_BLOCK);

	return p && bit_test(p, ino % BITS_PER_BLOCK);
}

static bool bbit(struct fsck *f, uint64_t blk)
{
	const uint8_t *p = fsck_blk(f, f->sb.s_bbitmap_start + blk / BITS_PER_BLOCK);

	return p && bit_test(p, blk % BITS_PER_BLOCK);
}

/* Set or clear one bit of an on-media bitmap (repairs only). */
static void write_bit(struct fsck *f, uint64_t map_start, uint64_t i, bool set)
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

static bool mode_ok(uint32_t mode)
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

static unsigned int mode_dtype(uint32_t mode)
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

static bool has_tree(uint32_t mode, uint32_t flags)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR:
		return true;
	case S_IFLNK:
		return !(flags & UFS_INODE_FL_INLINE_SYMLINK);
	}
	return false;
}

/* ---- extent trees ---- */

/* Called for each leaf extent, in logical order.  Return non-zero to stop. */
typedef int (*ext_fn)(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg);

struct tree_walk {
	uint64_t ino;
	bool mark;		/* pass 1: record blocks and validate */
	bool bad;		/* something wrong: the tree is unusable */
	uint64_t nblocks;	/* data + node blocks (what i_blocks counts) */
	uint64_t dblocks;	/* data blocks only (what a directory's size counts) */
	uint64_t last_end;	/* end (lblk) of the previous extent */
	uint64_t max_end;	/* highest lblk + len */
	ext_fn fn;
	void *arg;
	char why[160];
};

static bool data_range_ok(const struct fsck *f, uint64_t pblk, uint64_t len)
{
	return pblk >= f->sb.s_data_start && len <= f->nblocks - 1 &&
	       pblk <= f->nblocks - 1 - len;
}

/* Record blocks [pblk, pblk + len) as used by @ino.  Return: number already used. */
static uint64_t mark_used(struct fsck *f, uint64_t pblk, uint64_t len)
{
	uint64_t i, dups = 0;

	for (i = pblk; i < pblk + len; i++) {
		if (bit_test(f->used, i)) {
			bit_set(f->dup, i);
			dups++;
		} else {
			bit_set(f->used, i);
		}
	}
	return dups;
}

static void tree_bad(struct tree_walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tree_bad(struct tree_walk *w, const char *fmt, ...)
{
	va_list ap;

	if (w->bad)
		return;
	w->bad = true;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
}

/*
 * walk_node() - check one node (@hdr followed by its entries in @ent) that
 * covers logical blocks [lo, hi), at depth @depth.
 */
static int walk_node(struct fsck *f, struct tree_walk *w, const struct ufs_extent_hdr *hdr,
		     const uint8_t *ent, unsigned int cap, uint64_t lo, uint64_t hi, int level)
{
	unsigned int i;
	int r;

	if (hdr->h_magic != UFS_EXT_MAGIC) {
		tree_bad(w, "extent node: bad magic 0x%04x", hdr->h_magic);
		return -1;
	}
	if (hdr->h_entries > cap || hdr->h_max > cap) {
		tree_bad(w, "extent node: %u entries, max %u (room for %u)", hdr->h_entries,
			 hdr->h_max, cap);
		return -1;
	}
	if (hdr->h_depth > MAX_TREE_DEPTH || (level >= 0 && hdr->h_depth != (unsigned)level)) {
		tree_bad(w, "extent node: depth %u", hdr->h_depth);
		return -1;
	}
	if (hdr->h_depth == 0) {
		for (i = 0; i < hdr->h_entries; i++) {
			struct ufs_extent e;

			memcpy(&e, ent + i * sizeof(e), sizeof(e));
			if (e.e_len == 0 || e.e_lblk > UINT64_MAX - e.e_len) {
				tree_bad(w, "extent %u: length %u at %" PRIu64, i, e.e_len, e.e_lblk);
				return -1;
			}
			if (e.e_lblk < w->last_end || e.e_lblk < lo || e.e_lblk + e.e_len > hi) {
				tree_bad(w, "extent %u: logical blocks %" PRIu64 "+%u unsorted, "
					 "overlapping or outside its index", i, e.e_lblk, e.e_len);
				return -1;
			}
			if (!data_range_ok(f, e.e_pblk, e.e_len)) {
				tree_bad(w, "extent %u: blocks %" PRIu64 "+%u outside the data area",
					 i, e.e_pblk, e.e_len);
				return -1;
			}
			w->last_end = e.e_lblk + e.e_len;
			w->max_end = w->last_end;
			w->nblocks += e.e_len;
			w->dblocks += e.e_len;
			if (w->mark && mark_used(f, e.e_pblk, e.e_len))
				tree_bad(w, "extent %u: blocks %" PRIu64 "+%u already used by another "
					 "inode or structure", i, e.e_pblk, e.e_len);
			if (w->fn && (r = w->fn(f, w->ino, &e, w->arg)))
				return r;
		}
		return 0;
	}
	for (i = 0; i < hdr->h_entries; i++) {
		struct ufs_extent_idx x, nx;
		struct ufs_extent_hdr ch;
		const uint8_t *blk;
		uint8_t node[BS];
		uint64_t end = hi;

		memcpy(&x, ent + i * sizeof(x), sizeof(x));
		if (i + 1 < hdr->h_entries) {
			memcpy(&nx, ent + (i + 1) * sizeof(nx), sizeof(nx));
			if (nx.x_lblk <= x.x_lblk) {
				tree_bad(w, "index entries unsorted at %u", i);
				return -1;
			}
			end = nx.x_lblk;
		}
		if (x.x_lblk < lo || x.x_lblk >= hi) {
			tree_bad(w, "index %u: logical block %" PRIu64 " outside its parent", i,
				 x.x_lblk);
			return -1;
		}
		if (!data_range_ok(f, x.x_child, 1) || !(blk = fsck_blk(f, x.x_child))) {
			tree_bad(w, "index %u: node block %" PRIu64 " outside the data area", i,
				 x.x_child);
			return -1;
		}
		memcpy(node, blk, BS);
		memcpy(&ch, node, sizeof(ch));
		{
			uint32_t want = ch.h_checksum, got;

			((struct ufs_extent_hdr *)node)->h_checksum = 0;
			got = udax_crc32c(0, node, BS);
			if (got != want) {
				tree_bad(w, "extent node block %" PRIu64 " (offset %" PRIu64
					 "): bad checksum", x.x_child, x.x_child * BS);
				return -1;
			}
		}
		w->nblocks++;
		if (w->mark && mark_used(f, x.x_child, 1))
			tree_bad(w, "extent node block %" PRIu64 " already used", x.x_child);
		r = walk_node(f, w, &ch, node + sizeof(ch), (unsigned)UFS_NODE_ENTRIES, x.x_lblk,
			      end, hdr->h_depth - 1);
		if (r)
			return r;
	}
	return 0;
}

/* Walk the inode's extent tree.  Return: 0 walked, -1 bad tree (w->why), >0 fn stopped. */
static int walk_tree(struct fsck *f, uint64_t ino, const struct ufs_dinode *di, struct tree_walk *w)
{
	struct ufs_extent_hdr hdr;

	w->ino = ino;
	memcpy(&hdr, &di->i_u.tree.hdr, sizeof(hdr));
	return walk_node(f, w, &hdr, (const uint8_t *)di->i_u.tree.ext, UFS_INLINE_EXTENTS, 0,
			 UINT64_MAX, -1);
}

/* ---- xattr block ---- */

static bool check_xattr_block(struct fsck *f, uint64_t blk, char *why, size_t wl, bool *csum_only)
{
	const uint8_t *p = fsck_blk(f, blk);
	struct ufs_xattr_hdr h;
	uint8_t b[BS];
	uint32_t pos, n;

	if (!p) {
		snprintf(why, wl, "outside the device");
		return false;
	}
	memcpy(b, p, BS);
	memcpy(&h, b, sizeof(h));
	if (h.x_magic != UFS_XATTR_MAGIC) {
		snprintf(why, wl, "bad magic 0x%04x", h.x_magic);
		return false;
	}
	if (h.x_used > BS - sizeof(h)) {
		snprintf(why, wl, "%u bytes used", h.x_used);
		return false;
	}
	pos = sizeof(h);
	for (n = 0; n < h.x_count; n++) {
		struct ufs_xattr_ent e;
		uint32_t len;

		if (pos + sizeof(e) > sizeof(h) + h.x_used) {
			snprintf(why, wl, "entry %u past the used bytes", n);
			return false;
		}
		memcpy(&e, b + pos, sizeof(e));
		len = UDAX_ALIGN_UP((uint32_t)sizeof(e) + e.e_name_len + e.e_value_len, 4u);
		if (e.e_name_len == 0 || pos + len > sizeof(h) + h.x_used) {
			snprintf(why, wl, "entry %u: name %u bytes, value %u bytes overflows", n,
				 e.e_name_len, e.e_value_len);
			return false;
		}
		if (memchr(b + pos + sizeof(e), 0, e.e_name_len)) {
			snprintf(why, wl, "entry %u: NUL in the name", n);
			return false;
		}
		pos += len;
	}
	if (udax_crc32c(0, b + sizeof(h), h.x_used) != h.x_checksum) {
		snprintf(why, wl, "bad checksum");
		if (csum_only)
			*csum_only = true;
		return false;
	}
	return true;
}

/*
 * clear_inode() - free a garbage inode (repairs only): its slot and its
 * inode bitmap bit.  It has marked no block (pass 1 marks only sound
 * inodes), so its blocks show up as leaked and pass 5 frees those no
 * other inode uses.  Directory entries naming it are cleared in pass 2.
 */
static void clear_inode(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;

	memset(&di, 0, sizeof(di));
	write_inode(f, ino, &di);
	write_bit(f, f->sb.s_ibitmap_start, ino, false);
	f->istate[ino] = IS_FREED;
}

/* Report an unusable inode; with repairs, clear it (never the root). */
static void bad_inode(struct fsck *f, uint64_t ino, const char *why)
{
	struct ufs_dinode di;

	read_inode(f, ino, &di);
	if (problem(f, ino != ROOT_INO, "inode %" PRIu64 " (offset %" PRIu64 "): %s%s", ino,
		    ino_off(f, ino), why, ino != ROOT_INO ? "; clear the inode" : "")) {
		/* what it named is named nowhere now: pass 3 reconnects it */
		clear_inode(f, ino);
	} else {
		/* a directory left as it is may still name inodes we cannot see */
		if (S_ISDIR(di.i_mode))
			f->dir_damaged = true;
		/* and blocks it owns are not marked: pass 5 must not free them */
		f->owners_unknown = true;
		f->istate[ino] |= IS_BADTREE;
	}
}

/* the largest file the file system makes: 2^32 blocks (ufs_int.h) */
#define MAX_FILE_SIZE ((uint64_t)1 << (32 + UFS_BLOCK_SHIFT))

static bool inode_csum_ok(const void *obj)
{
	const struct ufs_dinode *di = obj;

	return di->i_checksum == ufs_inode_csum(di) && mode_ok(di->i_mode);
}

/*
 * inode_fields_bad() - fields an inode with a bad checksum must pass before
 * fsck may take it as it is and recompute the checksum; a failure means the
 * damage is in the fields, not just the checksum.  Return: what is wrong,
 * or NULL.
 */
static const char *inode_fields_bad(const struct fsck *f, const struct ufs_dinode *di,
				    const struct tree_walk *w)
{
	if (di->i_size > MAX_FILE_SIZE)
		return "size beyond the largest file";
	if (di->i_nlink > f->ninodes)
		return "link count larger than the inode table";
	if (di->i_orphan_next >= f->ninodes)
		return "orphan link outside the inode table";
	if (di->i_atime_nsec >= 1000000000u || di->i_mtime_nsec >= 1000000000u ||
	    di->i_ctime_nsec >= 1000000000u || di->i_crtime_nsec >= 1000000000u)
		return "nanoseconds out of range";
	if (di->i_flags & ~(uint32_t)(UFS_INODE_FL_INLINE_SYMLINK | UFS_INODE_FL_ORPHAN))
		return "unknown flags";
	if (has_tree(di->i_mode, di->i_flags) && S_ISREG(di->i_mode) &&
	    w->max_end > div_up(di->i_size, BS) + 512 * 1024)
		return "extents far past the end of the file";
	if (has_tree(di->i_mode, di->i_flags) && di->i_blocks != w->nblocks +
	    (di->i_xattr_block ? 1 : 0))
		return "block count does not match the extents";
	return NULL;
}

/*
 * check_inode() - pass 1 for one allocated inode: everything that can be
 * judged from the inode alone.  The tree is validated first and its
 * blocks are recorded only when it is sound.
 */
static void check_inode(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;
	uint64_t ioff = ino_off(f, ino);
	struct tree_walk w;
	uint64_t counted = 0;
	bool csum_ok, dirty = false;
	char why[200];

	read_inode(f, ino, &di);
	f->istate[ino] |= IS_ALLOC;
	f->st.inodes++;
	csum_ok = ufs_inode_csum(&di) == di.i_checksum;
	if (!csum_ok) {
		/* one flipped bit (the usual media error) can be put back exactly */
		struct ufs_dinode fixed = di;

		if (fix_one_bit(&fixed, 0, sizeof(fixed), inode_csum_ok)) {
			size_t i;

			for (i = 0; i < sizeof(di) && ((uint8_t *)&di)[i] == ((uint8_t *)&fixed)[i];
			     i++)
				;
			if (problem(f, true, "inode %" PRIu64 " (offset %" PRIu64 "): bad checksum; "
				    "one bit flipped at byte %zu: restore it", ino, ioff, i))
				write_inode(f, ino, &fixed);
			di = fixed;	/* judge the rest on what the inode was */
			csum_ok = true;
		}
	}
	if (di.i_mode == 0)
		return;		/* bitmap says allocated, slot says free: pass 5 */
	if (!mode_ok(di.i_mode)) {
		snprintf(why, sizeof(why), "bad mode 0%o", di.i_mode);
		bad_inode(f, ino, why);
		return;
	}
	memset(&w, 0, sizeof(w));
	if (has_tree(di.i_mode, di.i_flags)) {
		if (walk_tree(f, ino, &di, &w) < 0 || w.bad) {
			bad_inode(f, ino, w.why);
			return;
		}
		counted = w.nblocks;
	} else if (S_ISLNK(di.i_mode)) {
		if (di.i_size == 0 || di.i_size >= sizeof(di.i_u.symlink) ||
		    di.i_u.symlink[di.i_size] != '\0' || memchr(di.i_u.symlink, 0, di.i_size)) {
			snprintf(why, sizeof(why), "inline symlink of size %" PRIu64 " malformed",
				 di.i_size);
			bad_inode(f, ino, why);
			return;
		}
	}
	/*
	 * An unlinked inode being evicted loses its blocks from the end over
	 * several transactions while its size stays: on the orphan list, any
	 * size goes (mount finishes the eviction).  The size counts data
	 * blocks only: a directory past the inode's inline extents also owns
	 * extent-tree node blocks, which i_blocks counts and the size does not.
	 */
	if (S_ISDIR(di.i_mode) && !((f->istate[ino] & IS_ONLIST) && di.i_nlink == 0) &&
	    (di.i_size % BS || (di.i_size == 0 && ino != ROOT_INO) ||
	     w.max_end != di.i_size / BS || w.dblocks != di.i_size / BS)) {
		snprintf(why, sizeof(why), "directory size %" PRIu64 " does not match its %" PRIu64
			 " data blocks (holes or tail)", di.i_size, w.dblocks);
		bad_inode(f, ino, why);
		return;
	}
	if (S_ISLNK(di.i_mode) && !(di.i_flags & UFS_INODE_FL_INLINE_SYMLINK) &&
	    !((f->istate[ino] & IS_ONLIST) && di.i_nlink == 0) &&
	    (di.i_size == 0 || di.i_size > 4095u || w.max_end > 1)) {
		snprintf(why, sizeof(why), "symlink size %" PRIu64, di.i_size);
		bad_inode(f, ino, why);
		return;
	}
	if (!csum_ok) {
		/*
		 * Never recompute a checksum over damage: only an inode whose
		 * every field is plausible gets a new one.  Otherwise it stays
		 * as it is (mount refuses it) and fsck says so.
		 */
		const char *fbad = inode_fields_bad(f, &di, &w);

		if (fbad) {
			problem(f, false, "inode %" PRIu64 " (offset %" PRIu64 "): bad checksum and "
				"damaged fields (%s): cannot repair it safely", ino, ioff, fbad);
			f->istate[ino] |= IS_BADTREE;
			/* its blocks are still its own: pass 5 must not free them */
			if (has_tree(di.i_mode, di.i_flags)) {
				memset(&w, 0, sizeof(w));
				w.mark = true;
				walk_tree(f, ino, &di, &w);
			}
			if (di.i_xattr_block && data_range_ok(f, di.i_xattr_block, 1))
				mark_used(f, di.i_xattr_block, 1);
			return;
		}
		if (!problem(f, true, "inode %" PRIu64 " (offset %" PRIu64 "): bad checksum; "
			     "its fields are sound: recompute it", ino, ioff)) {
			f->istate[ino] |= IS_BADTREE;	/* mount refuses it: treat as unusable */
			return;
		}
		dirty = true;
	}
	if (di.i_size > MAX_FILE_SIZE) {
		if (problem(f, true, "inode %" PRIu64 ": size %" PRIu64 " beyond the largest file; "
			    "set it to its last block's end", ino, di.i_size)) {
			di.i_size = w.max_end * BS;
			dirty = true;
		}
	}
	/* sound: record its blocks */
	if (has_tree(di.i_mode, di.i_flags)) {
		memset(&w, 0, sizeof(w));
		w.mark = true;
		walk_tree(f, ino, &di, &w);
		if (w.bad)
			problem(f, false, "inode %" PRIu64 " (offset %" PRIu64 "): %s", ino, ioff,
				w.why);
	}
	if (di.i_xattr_block) {
		bool in = data_range_ok(f, di.i_xattr_block, 1);

		bool csum_only = false;

		if (in && !check_xattr_block(f, di.i_xattr_block, why, sizeof(why), &csum_only) &&
		    csum_only) {
			if (problem(f, true, "inode %" PRIu64 ": xattr block %" PRIu64 ": bad checksum",
				    ino, di.i_xattr_block)) {
				struct ufs_xattr_hdr xh;

				fsck_read(f, di.i_xattr_block * BS, &xh, sizeof(xh));
				xh.x_checksum = udax_crc32c(0, fsck_blk(f, di.i_xattr_block) + sizeof(xh),
							    xh.x_used);
				fsck_write(f, di.i_xattr_block * BS, &xh, sizeof(xh));
			}
		}
		if (!in || (!csum_only && !check_xattr_block(f, di.i_xattr_block, why, sizeof(why),
							     NULL))) {
			if (problem(f, true, "inode %" PRIu64 ": xattr block %" PRIu64 ": %s; drop "
				    "the extended attributes", ino, di.i_xattr_block,
				    in ? why : "outside the data area")) {
				di.i_xattr_block = 0;
				dirty = true;
			}
		} else {
			counted++;
			if (mark_used(f, di.i_xattr_block, 1))
				problem(f, false, "inode %" PRIu64 ": xattr block %" PRIu64
					" already used", ino, di.i_xattr_block);
		}
	}
	if (di.i_flags & ~(uint32_t)(UFS_INODE_FL_INLINE_SYMLINK | UFS_INODE_FL_ORPHAN)) {
		if (problem(f, true, "inode %" PRIu64 ": unknown flags 0x%x", ino, di.i_flags)) {
			di.i_flags &= UFS_INODE_FL_INLINE_SYMLINK | UFS_INODE_FL_ORPHAN;
			dirty = true;
		}
	}
	if (di.i_blocks != counted) {
		if (problem(f, true, "inode %" PRIu64 ": i_blocks %" PRIu64 ", counted %" PRIu64,
			    ino, di.i_blocks, counted)) {
			di.i_blocks = counted;
			dirty = true;
		}
	}
	if (dirty)
		write_inode(f, ino, &di);
	f->istate[ino] |= IS_VALID;
	if (S_ISDIR(di.i_mode)) {
		f->istate[ino] |= IS_DIR;
		f->st.dirs++;
	} else {
		f->st.files++;
	}
}

/* Does slot @ino hold a valid inode (its bitmap bit aside)? */
static bool slot_in_use(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;

	read_inode(f, ino, &di);
	return di.i_mode != 0 && inode_csum_ok(&di);
}

static void pass1(struct fsck *f)
{
	uint64_t ino, steps;

	verbose(f, "udaxfs: pass 1: inodes, extent trees, xattr blocks");
	/* which inodes the orphan list reaches (judged properly in pass 3) */
	for (ino = f->sb.s_orphan_head, steps = 0; ino && ino < f->ninodes && steps < f->ninodes &&
	     !(f->istate[ino] & IS_ONLIST); steps++) {
		struct ufs_dinode di;

		f->istate[ino] |= IS_ONLIST;
		read_inode(f, ino, &di);
		ino = di.i_orphan_next;
	}
	/* metadata: superblocks, journal, bitmaps, inode table, alignment gap */
	mark_used(f, 0, f->sb.s_data_start);
	mark_used(f, f->nblocks - 1, 1);
	for (ino = 1; ino < f->ninodes; ino++) {
		progress(f, "pass 1", ino, f->ninodes);
		if (ibit(f, ino)) {
			check_inode(f, ino);
		} else if (ino == ROOT_INO && slot_in_use(f, ino)) {
			/* the root is always in use: a clear bit means a damaged
			 * bitmap; what the root names is taken back in pass 2 */
			if (problem(f, true, "inode bitmap: the root inode is marked free; mark it used"))
				write_bit(f, f->sb.s_ibitmap_start, ino, true);
			check_inode(f, ino);
		}
	}
	progress(f, "pass 1", f->ninodes, f->ninodes);
}

/* ---------------------------------------------------------------- directories */

struct dname {
	uint32_t len;
	uint32_t pos;		/* into the arena */
	uint64_t off;		/* device offset of the record */
	uint64_t ino;
};

struct dir_walk {
	uint64_t dir;
	uint64_t parent;	/* b_parent of block 0 */
	bool bad_block0;	/* its header cannot be trusted */
	struct dname *names;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
	bool nomem;
};

static void clear_dirent(struct fsck *f, uint64_t off)
{
	uint64_t zero = 0;

	fsck_write(f, off + offsetof(struct ufs_dirent, d_ino), &zero, sizeof(zero));
}

static bool name_ok(const char *n, unsigned int len)
{
	if (len == 0 || memchr(n, '/', len) || memchr(n, 0, len))
		return false;
	if ((len == 1 && n[0] == '.') || (len == 2 && n[0] == '.' && n[1] == '.'))
		return false;
	return true;
}

static int add_name(struct dir_walk *d, const char *name, unsigned len, uint64_t off, uint64_t ino)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct dname *n = realloc(d->names, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->names = n;
		d->cap = cap;
	}
	if (d->alen + len > d->acap) {
		size_t cap = udax_max(d->acap * 2, d->alen + len + 4096);
		char *a = realloc(d->arena, cap);

		if (!a)
			return -ENOMEM;
		d->arena = a;
		d->acap = cap;
	}
	memcpy(d->arena + d->alen, name, len);
	d->names[d->n].len = len;
	d->names[d->n].pos = (uint32_t)d->alen;
	d->names[d->n].off = off;
	d->names[d->n].ino = ino;
	d->n++;
	d->alen += len;
	return 0;
}

/* Check one directory block (an extent's block @pblk, logical @lblk). */
/* Where the chain of records in block @b stops being sound (BS: all sound). */
static uint32_t dir_chain_end(const uint8_t *b)
{
	uint32_t pos = sizeof(struct ufs_dirblk_hdr);

	while (pos < BS) {
		struct ufs_dirent e;

		if (pos + sizeof(e) > BS)
			return pos;
		memcpy(&e, b + pos, sizeof(e));
		if (e.d_rec_len < sizeof(e) || e.d_rec_len % 8 || e.d_rec_len > BS - pos ||
		    (e.d_ino && e.d_rec_len < UFS_DIRENT_SIZE(e.d_name_len)))
			return pos;
		pos += e.d_rec_len;
	}
	return BS;
}

/*
 * salvage_dir_block() - repairs only: keep the sound records before @end,
 * make the rest of the block one free record, and give the block its
 * magic (block 0 keeps a plausible parent; pass 4 corrects it).  Names
 * lost this way leave their inodes unnamed: pass 3 reconnects them, as
 * e2fsck salvages a directory.  @b is updated to what was written.
 */
static void salvage_dir_block(struct fsck *f, uint64_t pblk, uint8_t *b, uint32_t end, bool block0)
{
	struct ufs_dirblk_hdr h;
	struct ufs_dirent fr;

	memcpy(&h, b, sizeof(h));
	h.b_magic = UFS_DIRBLK_MAGIC;
	h.b_pad = 0;
	h.b_checksum = 0;
	if (!block0 || h.b_parent >= f->ninodes)
		h.b_parent = 0;
	memcpy(b, &h, sizeof(h));
	if (end < BS) {
		memset(&fr, 0, sizeof(fr));
		fr.d_rec_len = (uint16_t)(BS - end);
		memset(b + end, 0, BS - end);
		memcpy(b + end, &fr, sizeof(fr));
	}
	fsck_write(f, pblk * BS, b, BS);
}

static void check_dir_block(struct fsck *f, struct dir_walk *d, uint64_t lblk, uint64_t pblk)
{
	uint8_t b[BS];
	struct ufs_dirblk_hdr h;
	uint32_t pos;
	const uint8_t *p = fsck_blk(f, pblk);

	if (!p)
		return;
	memcpy(b, p, BS);
	memcpy(&h, b, sizeof(h));
	if (h.b_magic != UFS_DIRBLK_MAGIC) {
		if (!problem(f, true, "directory %" PRIu64 ": block %" PRIu64 " (offset %" PRIu64
			     "): bad magic 0x%04x; salvage its records", d->dir, lblk, pblk * BS,
			     h.b_magic)) {
			if (lblk == 0)
				d->bad_block0 = true;
			f->dir_damaged = true;
			return;
		}
		salvage_dir_block(f, pblk, b, dir_chain_end(b), lblk == 0);
		memcpy(&h, b, sizeof(h));
	}
	if (dir_chain_end(b) != BS) {
		pos = dir_chain_end(b);
		if (!problem(f, true, "directory %" PRIu64 ": block %" PRIu64 " (offset %" PRIu64
			     "): record chain broken at %u; salvage the records before it",
			     d->dir, lblk, pblk * BS, pos)) {
			f->dir_damaged = true;
			return;
		}
		salvage_dir_block(f, pblk, b, pos, lblk == 0);
		memcpy(&h, b, sizeof(h));	/* what was written, parent included */
	}
	if (lblk == 0)
		d->parent = h.b_parent;
	for (pos = sizeof(h); pos < BS;) {
		struct ufs_dirent e;
		uint64_t eoff = pblk * BS + pos;
		const char *name = (const char *)b + pos + sizeof(e);

		if (pos + sizeof(e) > BS) {
			problem(f, false, "directory %" PRIu64 ": block %" PRIu64 " (offset %" PRIu64
				"): record chain ends at %u", d->dir, lblk, pblk * BS, pos);
			f->dir_damaged = true;
			return;
		}
		memcpy(&e, b + pos, sizeof(e));
		if (e.d_rec_len < sizeof(e) || e.d_rec_len % 8 || e.d_rec_len > BS - pos ||
		    (e.d_ino && e.d_rec_len < UFS_DIRENT_SIZE(e.d_name_len))) {
			problem(f, false, "directory %" PRIu64 ": record at offset %" PRIu64
				": bad rec_len %u", d->dir, eoff, e.d_rec_len);
			f->dir_damaged = true;
			return;
		}
		pos += e.d_rec_len;
		if (!e.d_ino)
			continue;
		if (!name_ok(name, e.d_name_len)) {
			if (problem(f, true, "directory %" PRIu64 ": entry at offset %" PRIu64
				    ": bad name (length %u)", d->dir, eoff, e.d_name_len))
				clear_dirent(f, eoff);
			continue;
		}
		if (e.d_ino < f->ninodes && !f->istate[e.d_ino] && e.d_ino != ROOT_INO &&
		    slot_in_use(f, e.d_ino)) {
			/*
			 * Named, and its slot holds a valid inode, but the bitmap
			 * says free: the bitmap block was damaged (a zeroed one
			 * hid every inode in it).  A slot alone proves nothing
			 * (the table is valid only where the bitmap says so: an
			 * inode whose creation was rolled back stays written);
			 * a name in a sound directory does.
			 */
			if (problem(f, true, "inode bitmap: inode %" PRIu64 " (offset %" PRIu64 "), named "
				    "'%.*s' in directory %" PRIu64 ", is marked free; mark it used",
				    e.d_ino, ino_off(f, e.d_ino), e.d_name_len, name, d->dir))
				write_bit(f, f->sb.s_ibitmap_start, e.d_ino, true);
			check_inode(f, e.d_ino);
			if (f->istate[e.d_ino] & IS_DIR)
				f->adopted_dirs = true;
		}
		if (e.d_ino >= f->ninodes || !(f->istate[e.d_ino] & IS_ALLOC) ||
		    !(f->istate[e.d_ino] & (IS_VALID | IS_BADTREE))) {
			if (problem(f, true, "directory %" PRIu64 ": entry '%.*s' at offset %" PRIu64
				    " names inode %" PRIu64 ", which is %s", d->dir, e.d_name_len, name,
				    eoff, e.d_ino, e.d_ino >= f->ninodes ? "out of range" :
				    !(f->istate[e.d_ino] & IS_ALLOC) ? "not allocated" : "invalid"))
				clear_dirent(f, eoff);
			continue;
		}
		if (e.d_ino == ROOT_INO) {
			if (problem(f, true, "directory %" PRIu64 ": entry '%.*s' names the root",
				    d->dir, e.d_name_len, name))
				clear_dirent(f, eoff);
			continue;
		}
		if (add_name(d, name, e.d_name_len, eoff, e.d_ino))
			d->nomem = true;
	}
}

static int dir_ext_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	uint32_t i;

	for (i = 0; i < e->e_len; i++)
		check_dir_block(f, arg, e->e_lblk + i, e->e_pblk + i);
	return 0;
}

static int name_cmp(const void *a, const void *b, void *arg)
{
	const struct dname *x = a, *y = b;
	const char *arena = arg;
	int c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = memcmp(arena + x->pos, arena + y->pos, x->len);
	if (c)
		return c;
	return x->off < y->off ? -1 : x->off > y->off;
}

static void check_dir(struct fsck *f, uint64_t dir)
{
	struct ufs_dinode di;
	struct dir_walk d;
	struct tree_walk w;
	size_t i;

	memset(&d, 0, sizeof(d));
	d.dir = dir;
	d.parent = UINT64_MAX;
	read_inode(f, dir, &di);
	memset(&w, 0, sizeof(w));
	w.fn = dir_ext_fn;
	w.arg = &d;
	walk_tree(f, dir, &di, &w);
	if (d.nomem) {
		problem(f, false, "directory %" PRIu64 ": out of memory", dir);
		goto out;
	}
	/* duplicates: sort by name, the first (lowest offset) one wins */
	if (d.n)
		qsort_r(d.names, d.n, sizeof(*d.names), name_cmp, d.arena);
	for (i = 0; i < d.n; i++) {
		struct dname *n = &d.names[i];
		struct ufs_dinode ci;

		if (i > 0 && n->len == d.names[i - 1].len &&
		    !memcmp(d.arena + n->pos, d.arena + d.names[i - 1].pos, n->len)) {
			if (problem(f, true, "directory %" PRIu64 ": duplicate name '%.*s' at offset %"
				    PRIu64, dir, (int)n->len, d.arena + n->pos, n->off))
				clear_dirent(f, n->off);
			else
				f->refs[n->ino]++;	/* still there: counts as a link */
			continue;
		}
		read_inode(f, n->ino, &ci);
		{
			uint8_t dt;

			fsck_read(f, n->off + offsetof(struct ufs_dirent, d_type), &dt, 1);
			if (dt != mode_dtype(ci.i_mode)) {
				if (problem(f, true, "directory %" PRIu64 ": entry '%.*s': d_type %u, "
					    "inode %" PRIu64 " is type %u", dir, (int)n->len,
					    d.arena + n->pos, dt, n->ino, mode_dtype(ci.i_mode))) {
					dt = (uint8_t)mode_dtype(ci.i_mode);
					fsck_write(f, n->off + offsetof(struct ufs_dirent, d_type), &dt, 1);
				}
			}
		}
		f->refs[n->ino]++;
		if (f->istate[n->ino] & IS_DIR) {
			f->subdirs[dir]++;
			if (f->parent[n->ino]) {
				problem(f, false, "directory %" PRIu64 " has a second name '%.*s' in "
					"directory %" PRIu64 " (first in %" PRIu32 ")", n->ino,
					(int)n->len, d.arena + n->pos, dir, f->parent[n->ino]);
			} else {
				f->parent[n->ino] = (uint32_t)dir;
			}
		}
	}
	/* b_parent is checked in pass 4, once every parent is known */
	if (d.bad_block0)
		f->bparent[dir] = BPARENT_UNKNOWN;	/* not checked, never rewritten */
	else if (d.parent != UINT64_MAX)
		f->bparent[dir] = (uint32_t)udax_min(d.parent, (uint64_t)BPARENT_BAD);
	else if (dir == ROOT_INO)
		f->bparent[dir] = ROOT_INO;	/* an empty root has no block 0 (format.h) */
out:
	free(d.names);
	free(d.arena);
}

static void pass2(struct fsck *f)
{
	uint64_t ino;

	verbose(f, "udaxfs: pass 2: directories");
	f->dir_checked = calloc(f->ninodes / 8 + 1, 1);
	do {
		/* a directory adopted back into the bitmap may sit before us: go again */
		f->adopted_dirs = false;
		for (ino = 1; ino < f->ninodes; ino++) {
			progress(f, "pass 2", ino, f->ninodes);
			if ((f->istate[ino] & (IS_VALID | IS_DIR)) != (IS_VALID | IS_DIR) ||
			    (f->dir_checked && bit_test(f->dir_checked, ino)))
				continue;
			if (f->dir_checked)
				bit_set(f->dir_checked, ino);
			check_dir(f, ino);
		}
	} while (f->adopted_dirs && f->dir_checked);
	free(f->dir_checked);
	f->dir_checked = NULL;
	progress(f, "pass 2", f->ninodes, f->ninodes);
}

/* ---------------------------------------------------------------- connectivity, orphans */

/* Free an inode and its blocks (orphan reclaim; repairs only). */
static int unmark_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	uint64_t i;

	for (i = e->e_pblk; i < e->e_pblk + e->e_len; i++)
		if (!bit_test(f->dup, i))
			bit_clear(f->used, i);
	return 0;
}

static void reclaim_inode(struct fsck *f, uint64_t ino)
{
	struct ufs_dinode di;
	struct tree_walk w;

	read_inode(f, ino, &di);
	if (has_tree(di.i_mode, di.i_flags)) {
		/* forget its blocks; pass 5 then frees them in the bitmap */
		memset(&w, 0, sizeof(w));
		w.fn = unmark_fn;
		walk_tree(f, ino, &di, &w);
		/* tree node blocks: walk once more marking nothing, unmark nodes */
	}
	if (di.i_xattr_block && !bit_test(f->dup, di.i_xattr_block))
		bit_clear(f->used, di.i_xattr_block);
	clear_inode(f, ino);
}

/*
 * The node blocks of a reclaimed inode's tree must be forgotten too:
 * walk_tree only reports leaves, so collect the index children here.
 */
static void unmark_nodes(struct fsck *f, const struct ufs_extent_hdr *hdr, const uint8_t *ent,
			 int budget)
{
	unsigned int i;

	if (hdr->h_magic != UFS_EXT_MAGIC || hdr->h_depth == 0 || budget <= 0)
		return;
	for (i = 0; i < hdr->h_entries && i < UFS_NODE_ENTRIES; i++) {
		struct ufs_extent_idx x;
		const uint8_t *blk;
		struct ufs_extent_hdr ch;

		memcpy(&x, ent + i * sizeof(x), sizeof(x));
		if (!data_range_ok(f, x.x_child, 1) || !(blk = fsck_blk(f, x.x_child)))
			continue;
		memcpy(&ch, blk, sizeof(ch));
		unmark_nodes(f, &ch, blk + sizeof(ch), budget - 1);
		if (!bit_test(f->dup, x.x_child))
			bit_clear(f->used, x.x_child);
	}
}

/* ---- reconnecting unattached inodes into the root directory ---- */

/* The name hash dir.c keeps in d_hash (format.h): crc32c of the name, never 0. */
static uint32_t name_hash(const char *name, size_t len)
{
	uint32_t h = udax_crc32c(0, name, len);

	return h ? h : 1;
}

struct blk_list {
	uint64_t pblk[256];
	unsigned int n;
};

static int collect_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	struct blk_list *l = arg;
	uint32_t i;

	for (i = 0; i < e->e_len && l->n < UDAX_ARRAY_SIZE(l->pblk); i++)
		l->pblk[l->n++] = e->e_pblk + i;
	return 0;
}

/*
 * add_entry() - add @name (at most 31 bytes) for @ino to directory @dir in
 * free record space (never allocates: a full directory is left alone).
 * The new record is written before the record that makes it visible.
 * Return: 0, -ENOSPC.
 */
static int add_entry(struct fsck *f, uint64_t dir, const char *name, uint64_t ino, uint32_t mode)
{
	struct ufs_dinode root;
	struct tree_walk w;
	struct blk_list *l = calloc(1, sizeof(*l));
	uint8_t rec[sizeof(struct ufs_dirent) + 32];
	struct ufs_dirent ne;
	unsigned int len = (unsigned int)strlen(name), need, i;
	int ret = -ENOSPC;

	if (!l)
		return -ENOMEM;
	need = UFS_DIRENT_SIZE(len);
	read_inode(f, dir, &root);
	memset(&w, 0, sizeof(w));
	w.fn = collect_fn;
	w.arg = l;
	walk_tree(f, dir, &root, &w);
	for (i = 0; i < l->n && ret; i++) {
		uint8_t b[BS];
		uint32_t pos;

		memcpy(b, fsck_blk(f, l->pblk[i]), BS);
		if (((struct ufs_dirblk_hdr *)b)->b_magic != UFS_DIRBLK_MAGIC)
			continue;
		for (pos = sizeof(struct ufs_dirblk_hdr); pos + sizeof(ne) <= BS;) {
			struct ufs_dirent e;
			uint32_t used;

			memcpy(&e, b + pos, sizeof(e));
			if (e.d_rec_len < sizeof(e) || e.d_rec_len % 8 || e.d_rec_len > BS - pos)
				break;
			used = e.d_ino ? UFS_DIRENT_SIZE(e.d_name_len) : 0;
			if (e.d_rec_len >= used + need) {
				uint64_t at = l->pblk[i] * BS + pos + used;

				memset(&ne, 0, sizeof(ne));
				ne.d_rec_len = (uint16_t)(e.d_rec_len - used);
				ne.d_name_len = (uint8_t)len;
				ne.d_type = (uint8_t)mode_dtype(mode);
				ne.d_hash = name_hash(name, len);
				memcpy(rec, &ne, sizeof(ne));
				memcpy(rec + sizeof(ne), name, len);
				fsck_write(f, at, rec, sizeof(ne) + len);	/* d_ino still 0 */
				if (used) {
					uint16_t rl = (uint16_t)used;

					fsck_write(f, l->pblk[i] * BS + pos +
						   offsetof(struct ufs_dirent, d_rec_len), &rl, 2);
				}
				fsck_write(f, at, &ino, sizeof(ino));		/* now visible */
				ret = 0;
				break;
			}
			pos += e.d_rec_len;
		}
	}
	free(l);
	return ret;
}

#define LOST_FOUND "lost+found"

static int find_name_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	uint64_t *found = arg;
	uint32_t i, pos;

	for (i = 0; i < e->e_len && !*found; i++) {
		const uint8_t *b = fsck_blk(f, e->e_pblk + i);

		if (!b || ((const struct ufs_dirblk_hdr *)b)->b_magic != UFS_DIRBLK_MAGIC)
			continue;
		for (pos = sizeof(struct ufs_dirblk_hdr); pos + sizeof(struct ufs_dirent) <= BS;) {
			struct ufs_dirent d;

			memcpy(&d, b + pos, sizeof(d));
			if (d.d_rec_len < sizeof(d) || d.d_rec_len > BS - pos)
				break;
			if (d.d_ino && d.d_name_len == strlen(LOST_FOUND) &&
			    pos + sizeof(d) + d.d_name_len <= BS &&
			    !memcmp(b + pos + sizeof(d), LOST_FOUND, d.d_name_len))
				*found = d.d_ino;
			pos += d.d_rec_len;
		}
	}
	return *found ? 1 : 0;
}

/*
 * lost_found() - repairs only: the /lost+found directory that pass 3
 * reconnects into, as e2fsck does; made (one empty block, mode 0700) when
 * the root does not name a usable one.  Return: its inode, or 0 when none
 * can be had (then the root is used).
 */
static uint64_t lost_found(struct fsck *f)
{
	struct ufs_dinode root, di;
	struct ufs_dirblk_hdr h;
	struct ufs_dirent fr;
	struct tree_walk w;
	struct timespec now;
	uint64_t ino = 0, blk;
	uint8_t b[BS];

	if (f->lost_found)
		return f->lost_found;
	read_inode(f, ROOT_INO, &root);
	memset(&w, 0, sizeof(w));
	w.fn = find_name_fn;
	w.arg = &ino;
	walk_tree(f, ROOT_INO, &root, &w);
	if (ino) {
		if (ino < f->ninodes && (f->istate[ino] & (IS_VALID | IS_DIR)) == (IS_VALID | IS_DIR))
			return f->lost_found = ino;
		return 0;	/* the name is taken by something else: use the root */
	}
	/* a free slot (bit clear, slot zero) and a free data block */
	for (ino = 2; ino < f->ninodes; ino++) {
		if (f->istate[ino] || ibit(f, ino))
			continue;
		read_inode(f, ino, &di);
		if (di.i_mode == 0)
			break;
	}
	for (blk = f->sb.s_data_start; blk < f->nblocks - 1; blk++)
		if (!bit_test(f->used, blk) && !bbit(f, blk))
			break;
	if (ino >= f->ninodes || blk >= f->nblocks - 1)
		return 0;
	/* the block first, then the inode, then the name that makes it visible */
	memset(b, 0, sizeof(b));
	memset(&h, 0, sizeof(h));
	h.b_magic = UFS_DIRBLK_MAGIC;
	h.b_parent = ROOT_INO;
	memcpy(b, &h, sizeof(h));
	memset(&fr, 0, sizeof(fr));
	fr.d_rec_len = (uint16_t)(BS - sizeof(h));
	memcpy(b + sizeof(h), &fr, sizeof(fr));
	fsck_write(f, blk * BS, b, BS);
	mark_used(f, blk, 1);
	write_bit(f, f->sb.s_bbitmap_start, blk, true);
	memset(&di, 0, sizeof(di));
	clock_gettime(CLOCK_REALTIME, &now);
	di.i_mode = S_IFDIR | 0700;
	di.i_nlink = 2;
	di.i_size = BS;
	di.i_blocks = 1;
	di.i_atime_sec = di.i_mtime_sec = di.i_ctime_sec = di.i_crtime_sec = (uint64_t)now.tv_sec;
	di.i_generation = (uint64_t)now.tv_nsec;
	di.i_u.tree.hdr.h_magic = UFS_EXT_MAGIC;
	di.i_u.tree.hdr.h_max = UFS_INLINE_EXTENTS;
	di.i_u.tree.hdr.h_entries = 1;
	di.i_u.tree.ext[0].e_lblk = 0;
	di.i_u.tree.ext[0].e_pblk = blk;
	di.i_u.tree.ext[0].e_len = 1;
	write_inode(f, ino, &di);
	write_bit(f, f->sb.s_ibitmap_start, ino, true);
	if (add_entry(f, ROOT_INO, LOST_FOUND, ino, di.i_mode)) {
		/* no room in the root: undo, the root takes the names */
		memset(&di, 0, sizeof(di));
		write_inode(f, ino, &di);
		write_bit(f, f->sb.s_ibitmap_start, ino, false);
		write_bit(f, f->sb.s_bbitmap_start, blk, false);
		bit_clear(f->used, blk);
		return 0;
	}
	say(f, "udaxfs: made /" LOST_FOUND " (inode %" PRIu64 ")", ino);
	f->istate[ino] = IS_ALLOC | IS_VALID | IS_DIR | IS_REACHED;
	f->parent[ino] = ROOT_INO;
	f->bparent[ino] = ROOT_INO;
	f->refs[ino] = 1;
	f->subdirs[ROOT_INO]++;
	f->st.inodes++;
	f->st.dirs++;
	return f->lost_found = ino;
}

/*
 * reconnect() - pass 3 under -y: give inodes that no directory names (and
 * that are not unlinked orphans) a name in the root, as e2fsck does with
 * lost+found.  Directories in a cycle of their own are left alone.
 */
static void reconnect(struct fsck *f)
{
	uint64_t ino, p, depth, lf;
	struct ufs_dinode di;
	char name[32];

	for (ino = 2; ino < f->ninodes; ino++) {
		uint8_t s = f->istate[ino];
		bool dir = s & IS_DIR;

		if (!(s & IS_VALID) || (s & IS_ORPHAN) || (dir ? (s & IS_REACHED) || f->parent[ino]
							   : f->refs[ino] != 0))
			continue;
		read_inode(f, ino, &di);
		if (di.i_nlink == 0)
			continue;	/* unlinked but not on the orphan list: pass 4 */
		if (!problem(f, !f->dir_damaged, "%s %" PRIu64 " (nlink %u) is in no directory; %s",
			     dir ? "directory" : "inode", ino, di.i_nlink, f->dir_damaged ?
			     "a damaged directory may still name it: not reconnected" :
			     "reconnect it in /" LOST_FOUND " as #<inode>"))
			continue;
		lf = lost_found(f);
		snprintf(name, sizeof(name), "#%" PRIu64, ino);
		if ((!lf || add_entry(f, lf, name, ino, di.i_mode)) &&
		    add_entry(f, lf = ROOT_INO, name, ino, di.i_mode)) {
			say(f, "udaxfs: no room in /" LOST_FOUND " or the root directory for #%" PRIu64,
			    ino);
			f->st.fixed--;
			f->status |= FSCK_UNCORRECTED;
			continue;
		}
		f->refs[ino]++;
		if (dir) {
			f->parent[ino] = lf;
			f->subdirs[lf]++;
			f->istate[ino] |= IS_REACHED;
		}
	}
	/* directories below a reconnected one are reachable now */
	for (ino = 2; ino < f->ninodes; ino++) {
		if ((f->istate[ino] & (IS_VALID | IS_DIR)) != (IS_VALID | IS_DIR))
			continue;
		for (p = ino, depth = 0; p && !(f->istate[p] & IS_REACHED) && depth < f->ninodes;
		     depth++)
			p = f->parent[p];
		if (p && (f->istate[p] & IS_REACHED))
			for (p = ino; !(f->istate[p] & IS_REACHED); p = f->parent[p])
				f->istate[p] |= IS_REACHED;
	}
}

static void pass3(struct fsck *f)
{
	uint64_t ino, steps, cur, head, i, *list;
	struct ufs_dinode di;
	bool list_bad = false;

	verbose(f, "udaxfs: pass 3: connectivity and the orphan list");
	if (!(f->istate[ROOT_INO] & IS_VALID) || !(f->istate[ROOT_INO] & IS_DIR)) {
		problem(f, false, "root inode %u is missing or not a directory", ROOT_INO);
		return;
	}
	f->istate[ROOT_INO] |= IS_REACHED;
	f->parent[ROOT_INO] = ROOT_INO;
	/* reachability: follow parent links up to the root (bounded) */
	for (ino = 2; ino < f->ninodes; ino++) {
		uint64_t p, depth = 0;

		if ((f->istate[ino] & (IS_VALID | IS_DIR)) != (IS_VALID | IS_DIR))
			continue;
		for (p = ino; p && !(f->istate[p] & IS_REACHED) && depth < f->ninodes; depth++)
			p = f->parent[p];
		if (p && (f->istate[p] & IS_REACHED)) {
			for (p = ino; !(f->istate[p] & IS_REACHED); p = f->parent[p])
				f->istate[p] |= IS_REACHED;
		}
	}
	/* the orphan list: what mount's reclaim will walk */
	head = f->sb.s_orphan_head;
	list = calloc(udax_min(f->ninodes, (uint64_t)1 << 20), sizeof(*list));
	for (cur = head, steps = 0; cur; steps++) {
		const char *why = NULL;

		if (cur >= f->ninodes || !(f->istate[cur] & IS_ALLOC))
			why = "is not an allocated inode";
		else if (f->istate[cur] & IS_ORPHAN)
			why = "is part of a loop";
		else if (!(f->istate[cur] & IS_VALID))
			why = "is unusable";
		if (!why) {
			read_inode(f, cur, &di);
			if (!(di.i_flags & UFS_INODE_FL_ORPHAN))
				why = "is not marked as an orphan";
		}
		if (why || !list || steps >= ((uint64_t)1 << 20)) {
			problem(f, true, "orphan list: inode %" PRIu64 " (entry %" PRIu64 ") %s; "
				"mount would cut the list there", cur, steps, why ? why : "too far");
			list_bad = true;
			break;
		}
		f->istate[cur] |= IS_ORPHAN;
		list[f->st.orphans++] = cur;
		cur = di.i_orphan_next;
	}
	if (f->st.orphans)
		say(f, "udaxfs: %" PRIu64 " inode%s on the orphan list (mount reclaims them)",
		    f->st.orphans, f->st.orphans == 1 ? "" : "s");
	/*
	 * -y: do what mount would: free the unlinked ones, take the linked ones
	 * off the list, empty the list.
	 */
	if ((f->st.orphans || list_bad) && f->can_write && f->o.repair == FSCK_REPAIR_YES && list) {
		for (i = 0; i < f->st.orphans; i++) {
			cur = list[i];
			read_inode(f, cur, &di);
			if (di.i_nlink == 0 && f->refs[cur] == 0) {
				if (has_tree(di.i_mode, di.i_flags))
					unmark_nodes(f, &di.i_u.tree.hdr,
						     (const uint8_t *)di.i_u.tree.ext, MAX_TREE_DEPTH);
				reclaim_inode(f, cur);
				verbose(f, "udaxfs: orphan %" PRIu64 " reclaimed", cur);
			} else {
				di.i_flags &= ~(uint32_t)UFS_INODE_FL_ORPHAN;
				di.i_orphan_next = 0;
				write_inode(f, cur, &di);
				f->istate[cur] &= ~IS_ORPHAN;
				verbose(f, "udaxfs: orphan %" PRIu64 " is linked: taken off the list", cur);
			}
		}
		f->sb.s_orphan_head = 0;
		super_write_both(f, &f->sb);
		f->status |= FSCK_CORRECTED;
	}
	free(list);
	if (f->can_write && f->o.repair != FSCK_REPAIR_NO)
		reconnect(f);
}

/* ---------------------------------------------------------------- link counts */

static int block0_fn(struct fsck *f, uint64_t ino, const struct ufs_extent *e, void *arg)
{
	if (e->e_lblk == 0) {
		*(uint64_t *)arg = e->e_pblk;
		return 1;
	}
	return 2;
}

/* The device block holding logical block 0 of directory @ino.  Return: 0, -ENOENT. */
static int dir_block0(struct fsck *f, uint64_t ino, const struct ufs_dinode *di, uint64_t *pblk)
{
	struct tree_walk w;

	memset(&w, 0, sizeof(w));
	w.fn = block0_fn;
	w.arg = pblk;
	return walk_tree(f, ino, di, &w) == 1 ? 0 : -ENOENT;
}

static void pass4(struct fsck *f)
{
	uint64_t ino;
	struct ufs_dinode di;

	verbose(f, "udaxfs: pass 4: link counts");
	for (ino = 1; ino < f->ninodes; ino++) {
		uint8_t s = f->istate[ino];
		uint64_t want;

		progress(f, "pass 4", ino, f->ninodes);
		if (!(s & IS_VALID))
			continue;
		read_inode(f, ino, &di);
		if (s & IS_DIR) {
			if (ino != ROOT_INO && !(s & IS_REACHED) && !(s & IS_ORPHAN)) {
				problem(f, false, "directory inode %" PRIu64 " is not reachable from "
					"the root", ino);
				continue;
			}
			if ((s & IS_REACHED) && f->bparent[ino] != BPARENT_UNKNOWN &&
			    f->bparent[ino] != f->parent[ino]) {
				uint64_t pb = 0;

				if (problem(f, true, "directory %" PRIu64 ": parent recorded as %"
					    PRIu32 ", named in %" PRIu32, ino, f->bparent[ino],
					    f->parent[ino]) && dir_block0(f, ino, &di, &pb) == 0) {
					uint64_t par = f->parent[ino];

					fsck_write(f, pb * BS + offsetof(struct ufs_dirblk_hdr, b_parent),
						   &par, sizeof(par));
				}
			}
			if (s & IS_ORPHAN && di.i_nlink == 0)
				continue;
			want = 2 + f->subdirs[ino];
		} else {
			if (f->refs[ino] == 0) {
				if (s & IS_ORPHAN)
					continue;
				/*
				 * Unlinked (nlink 0) and named nowhere: a file that was
				 * deleted and not yet reclaimed (the orphan list that
				 * held it was lost, e.g. with the primary superblock).
				 * Reclaim it, as mount would have.
				 */
				if (problem(f, di.i_nlink == 0, "inode %" PRIu64 " (nlink %u) is in no "
					    "directory and not on the orphan list%s", ino, di.i_nlink,
					    di.i_nlink == 0 ? "; reclaim it (it was unlinked)" : "")) {
					if (has_tree(di.i_mode, di.i_flags))
						unmark_nodes(f, &di.i_u.tree.hdr,
							     (const uint8_t *)di.i_u.tree.ext,
							     MAX_TREE_DEPTH);
					reclaim_inode(f, ino);
				}
				continue;
			}
			want = f->refs[ino];
		}
		if (di.i_nlink != want) {
			if (problem(f, true, "inode %" PRIu64 ": link count %u, should be %" PRIu64,
				    ino, di.i_nlink, want)) {
				di.i_nlink = (uint32_t)want;
				write_inode(f, ino, &di);
			}
		}
	}
	progress(f, "pass 4", f->ninodes, f->ninodes);
}

/* ---------------------------------------------------------------- bitmaps */

static void pass5(struct fsck *f)
{
	uint64_t b, ino, run_start = 0, run_len = 0;
	uint64_t missing = 0, leaked = 0, used = 0;
	bool fix_missing = false, fix_leaked = false, asked_m = false, asked_l = false;

	verbose(f, "udaxfs: pass 5: bitmaps");
	/* blocks */
	for (b = 0; b < f->nblocks; b++) {
		bool on = bbit(f, b), want = bit_test(f->used, b);

		progress(f, "pass 5", b, f->nblocks);
		if (want)
			used++;
		if (on == want)
			continue;
		if (want) {
			missing++;
			if (!asked_m) {
				asked_m = true;
				fix_missing = problem(f, true, "block bitmap: block %" PRIu64
						      " is in use but marked free", b);
			} else {
				f->st.errors++;
				if (fix_missing)
					f->st.fixed++;
			}
			if (fix_missing)
				write_bit(f, f->sb.s_bbitmap_start, b, true);
		} else {
			leaked++;
			if (!asked_l) {
				asked_l = true;
				/* an inode left unrepaired may own it: never free data on a guess */
				fix_leaked = problem(f, !f->owners_unknown, "block bitmap: block %" PRIu64
						     " is marked used but nothing references it%s", b,
						     f->owners_unknown ? " (an unrepaired inode may own "
						     "it: not freed)" : "");
			} else {
				f->st.errors++;
				if (fix_leaked)
					f->st.fixed++;
			}
			if (fix_leaked)
				write_bit(f, f->sb.s_bbitmap_start, b, false);
			if (run_len && run_start + run_len == b) {
				run_len++;
			} else {
				if (run_len)
					verbose(f, "udaxfs:   leaked blocks %" PRIu64 "+%" PRIu64,
						run_start, run_len);
				run_start = b;
				run_len = 1;
			}
		}
	}
	if (run_len)
		verbose(f, "udaxfs:   leaked blocks %" PRIu64 "+%" PRIu64, run_start, run_len);
	progress(f, "pass 5", f->nblocks, f->nblocks);
	if (missing)
		say(f, "udaxfs: block bitmap: %" PRIu64 " used block%s marked free", missing,
		    missing == 1 ? "" : "s");
	if (leaked)
		say(f, "udaxfs: block bitmap: %" PRIu64 " leaked block%s", leaked,
		    leaked == 1 ? "" : "s");
	for (b = 0; b < f->nblocks; b++)
		if (bit_test(f->dup, b)) {
			problem(f, false, "block %" PRIu64 " is used more than once", b);
			break;
		}
	f->st.used_blocks = used;
	{
		uint64_t on = 0;

		for (b = 0; b < f->nblocks; b++)
			on += bbit(f, b);
		f->st.free_blocks = f->nblocks - on;
	}

	/* inodes: allocated in the bitmap but free (mode 0) or unusable and unreferenced */
	f->st.free_inodes = 0;
	for (ino = 1; ino < f->ninodes; ino++) {
		uint8_t s = f->istate[ino];

		if (!(s & IS_ALLOC) || (s & IS_FREED)) {
			f->st.free_inodes++;
			continue;
		}
		if (!(s & (IS_VALID | IS_BADTREE))) {
			struct ufs_dinode di;

			read_inode(f, ino, &di);
			if (di.i_mode == 0 && f->refs[ino] == 0) {
				if (problem(f, true, "inode bitmap: inode %" PRIu64 " marked used but "
					    "its slot is free", ino)) {
					write_bit(f, f->sb.s_ibitmap_start, ino, false);
					f->st.free_inodes++;
				}
			}
		}
	}
}

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

int udax_fsck_media(struct udax_media *m, const struct fsck_opts *opts, struct fsck_stats *st)
{
	struct fsck f;
	int r;

	memset(&f, 0, sizeof(f));
	f.m = m;
	f.o = *opts;
	f.out = opts->out ? opts->out : stdout;
	f.base = udax_media_base(m);
	f.dev_size = udax_media_size(m) & ~(uint64_t)(BS - 1);
	f.dev_blocks = f.dev_size / BS;
	f.can_write = opts->repair != FSCK_REPAIR_NO && !udax_media_readonly(m);
	if (f.dev_blocks < 2) {
		say(&f, "udaxfs: %s: device too small (%" PRIu64 " bytes) for udaxfs",
		    udax_media_path(m), udax_media_size(m));
		r = FSCK_OPERATIONAL;
		goto out;
	}
	f.ovl_map = calloc(f.dev_blocks / 8 + 1, 1);
	if (!f.ovl_map) {
		r = FSCK_OPERATIONAL;
		goto out;
	}
	r = load_super(&f);
	if (r)
		goto out;
	if (opts->preen && !opts->force && f.sb.s_state == UFS_STATE_CLEAN && f.status == 0) {
		struct ufs_journal_head h;

		fsck_read(&f, f.sb.s_journal_start * BS, &h, sizeof(h));
		if (h.j_magic == UFS_JOURNAL_MAGIC && h.j_used == 0) {
			say(&f, "udaxfs: %s: clean", udax_media_path(m));
			f.st.skipped = true;
			r = 0;
			goto out;
		}
	}
	r = check_journal(&f);
	if (r)
		goto out;
	if (f.ninodes >= BPARENT_BAD) {
		say(&f, "udaxfs: %" PRIu64 " inode slots: more than this fsck handles", f.ninodes);
		r = FSCK_OPERATIONAL;
		goto out;
	}
	f.used = calloc(f.nblocks / 8 + 1, 1);
	f.dup = calloc(f.nblocks / 8 + 1, 1);
	f.istate = calloc(f.ninodes, 1);
	f.refs = calloc(f.ninodes, sizeof(*f.refs));
	f.subdirs = calloc(f.ninodes, sizeof(*f.subdirs));
	f.parent = calloc(f.ninodes, sizeof(*f.parent));
	f.bparent = calloc(f.ninodes, sizeof(*f.bparent));
	if (!f.used || !f.dup || !f.istate || !f.refs || !f.subdirs || !f.parent || !f.bparent) {
		say(&f, "udaxfs: out of memory for %" PRIu64 " blocks / %" PRIu64 " inodes",
		    f.nblocks, f.ninodes);
		r = FSCK_OPERATIONAL;
		goto out;
	}
	pass1(&f);
	pass2(&f);
	pass3(&f);
	pass4(&f);
	pass5(&f);
	/* a crashed file system that is now sound is marked clean, as e2fsck does */
	if (f.can_write && opts->repair == FSCK_REPAIR_YES && !(f.status & FSCK_UNCORRECTED) &&
	    f.sb.s_state != UFS_STATE_CLEAN) {
		f.sb.s_state = UFS_STATE_CLEAN;
		super_write_both(&f, &f.sb);
		verbose(&f, "udaxfs: marked clean");
	}
	r = f.status;
	if (!opts->quiet) {
		char a[32], b[32];

		fprintf(f.out, "udaxfs: %s: %" PRIu64 " inodes (%" PRIu64 " dirs, %" PRIu64
			" others), %s used of %s, %" PRIu64 " errors, %" PRIu64 " fixed\n",
			udax_media_path(m), f.st.inodes, f.st.dirs, f.st.files,
			udax_fmt_size((f.nblocks - f.st.free_blocks) * BS, a, sizeof(a)),
			udax_fmt_size(f.nblocks * BS, b, sizeof(b)), f.st.errors, f.st.fixed);
	}
out:
	if (st)
		*st = f.st;
	fsck_free(&f);
	return r;
}

int udax_fsck_path(const char *path, const struct fsck_opts *opts, struct fsck_stats *st)
{
	struct udax_media_opts mo;
	struct udax_media *m = NULL;
	FILE *out = opts->out ? opts->out : stdout;
	int r;

	memset(&mo, 0, sizeof(mo));
	mo.path = path;
	mo.readonly = opts->repair == FSCK_REPAIR_NO;
	r = udax_media_open(&m, &mo);
	if (r < 0) {
		if (!opts->quiet)
			fprintf(out, "udaxfs: cannot open %s: %s\n", path, udax_errmsg());
		return FSCK_OPERATIONAL;
	}
	/* refuse to repair a device a daemon holds (it takes the same lock) */
	if (!mo.readonly && flock(udax_media_fd(m), LOCK_EX | LOCK_NB) < 0) {
		if (!opts->quiet)
			fprintf(out, "udaxfs: %s is in use (mounted?): not repairing\n", path);
		udax_media_close(&m);
		return FSCK_OPERATIONAL;
	}
	if (mo.readonly && flock(udax_media_fd(m), LOCK_SH | LOCK_NB) < 0 && !opts->quiet)
		fprintf(out, "udaxfs: warning: %s is in use (mounted?): it may change while it is "
			"checked\n", path);
	r = udax_fsck_media(m, opts, st);
	udax_media_close(&m);
	return r;
}
