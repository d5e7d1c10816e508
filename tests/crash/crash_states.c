/* SPDX-License-Identifier: MIT */
/*
 * crash_states.c - crash-consistency test over the crash-emulation backend.
 *
 * 1. mkfs a small emulation image (the base; never modified afterwards).
 * 2. Recording run: open it in crash mode, ufs_mount(), run the workload
 *    (create, write, fsync, rename plain/EXCHANGE/NOREPLACE, link, unlink,
 *    truncate, fallocate, punch hole, mkdir/rmdir, setxattr, symlink,
 *    unlink-while-open), and after each operation record the fence count
 *    and the namespace state (a canonical text: path, inode, mode, links,
 *    size, data hash, xattrs, symlink target; timestamps excluded).
 * 3. For each fence n (or a seeded sample), rerun the workload with the
 *    crash trigger at n, which saves the durable image as it was right
 *    after the n-th drain.  On that image:
 *      - fsck -n (the checker library) must find nothing wrong (an
 *        unfinished transaction and orphans are the normal crash state);
 *      - ufs_mount() must succeed;
 *      - the namespace must equal the state after op k or after op k+1,
 *        where op k is the last op whose fences all lie at or before n
 *        (each op entirely present or entirely absent); for a data op in
 *        flight only the metadata must match (data stores are not atomic);
 *        everything written before the crash fence is there (state k holds
 *        all data of completed writes, and writes are durable on return);
 *      - after unmount, fsck -n is still clean and statfs's free blocks
 *        (the allocator after recovery) equal the bitmap's;
 *      - a copy of the crash image repaired by fsck -y alone (journal
 *        rollback, orphan reclaim) passes the same namespace check.
 *    Each state is checked in a child process: a crash while recovering
 *    one state fails that state, and the run goes on.
 *
 * Usage: crash_states [-n MAX_STATES] [-s SEED] [-a] [-v] [-k KEEP_DIR] [-f MAX_FAIL]
 *   -a  every fence (crash-long.sh); default: at most 300 (make check),
 *       the last fence of every op plus a seeded random sample.
 *   env UDAX_CRASH_STATES overrides -n, UDAX_CRASH_SEED the seed,
 *   UDAX_CRASH_KEEP where failing images are kept.
 * Prints how many crash states it checked.  Exit 0 pass, 1 fail, 77 skip.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/fsck_check.h"
#include "core/media.h"
#include "core/super.h"
#include "core/ufs.h"
#include "core/util.h"

#include "../harness.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef XATTR_CREATE
#define XATTR_CREATE 1
#endif

#define IMG_SIZE (8u * 1024 * 1024)

static bool verbose;
static uint64_t nfail_printed;
static const char *op_names[] = {
	"create", "write", "fsync", "rename", "link", "unlink", "truncate", "fallocate",
	"punch", "mkdir", "rmdir", "setxattr", "symlink", "create+hold", "release",
	"removexattr",
};
static char base_path[256], state_path[256], repair_path[300];
static const struct ufs_ctx root_ctx = { .uid = 0, .gid = 0, .pid = 1, .umask = 022 };

/* ---------------------------------------------------------------- strings */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (b->s && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
		if (b->len == 0)
			b->s[0] = '\0';
	}
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *c = p;

	while (n--)
		h = (h ^ *c++) * 0x100000001b3ULL;
	return h;
}

/* ---------------------------------------------------------------- the walk */

struct names {
	char **v;
	size_t n, cap;
};

static int fill_names(void *arg, const char *name, const struct ufs_entry *e, uint64_t next_off)
{
	struct names *ns = arg;

	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 16;
		ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
		if (!ns->v)
			abort();
	}
	ns->v[ns->n++] = strdup(name);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * walk() - append the canonical state of directory @dir (named @path) to
 * @full (with data hashes) and @meta (without).  Return: 0 or -errno.
 */
static int walk(struct ufs *fs, uint64_t dir, const char *path, struct sbuf *full,
		struct sbuf *meta, int depth)
{
	struct names ns = { 0 };
	size_t i;
	int r;

	if (depth > 16)
		return -ELOOP;
	r = ufs_readdir(fs, dir, 0, false, fill_names, &ns);
	if (r < 0)
		goto out;
	qsort(ns.v, ns.n, sizeof(*ns.v), cmp_str);
	for (i = 0; i < ns.n; i++) {
		struct ufs_entry e;
		char sub[512], line[1024], xl[1024];
		uint64_t h = 0xcbf29ce484222325ULL;
		ssize_t xn;

		snprintf(sub, sizeof(sub), "%s/%s", path, ns.v[i]);
		r = ufs_lookup(fs, dir, ns.v[i], &e);
		if (r < 0) {
			fprintf(stderr, "crash: lookup %s: %s\n", sub, strerror(-r));
			goto out;
		}
		snprintf(line, sizeof(line), "%s ino=%" PRIu64 " mode=%o nlink=%u size=%" PRIu64,
			 sub, e.ino, (unsigned)e.st.st_mode, (unsigned)e.st.st_nlink,
			 S_ISDIR(e.st.st_mode) ? 0 : (uint64_t)e.st.st_size);
		sb_printf(meta, "%s", line);
		sb_printf(full, "%s", line);
		xn = ufs_listxattr(fs, e.ino, xl, sizeof(xl));
		if (xn > 0) {
			char *p;

			for (p = xl; p < xl + xn; p += strlen(p) + 1) {
				char v[256];
				ssize_t vn = ufs_getxattr(fs, e.ino, p, v, sizeof(v));

				sb_printf(meta, " x:%s=%.*s", p, vn > 0 ? (int)vn : 0, v);
				sb_printf(full, " x:%s=%.*s", p, vn > 0 ? (int)vn : 0, v);
			}
		}
		if (S_ISLNK(e.st.st_mode)) {
			char t[256];
			ssize_t tn = ufs_readlink(fs, e.ino, t, sizeof(t));

			sb_printf(meta, " ->%.*s", tn > 0 ? (int)tn : 0, t);
			sb_printf(full, " ->%.*s", tn > 0 ? (int)tn : 0, t);
		} else if (S_ISREG(e.st.st_mode)) {
			static char buf[65536];
			uint64_t off = 0;

			r = ufs_open(fs, &root_ctx, e.ino, O_RDONLY);
			if (r < 0) {
				ufs_forget(fs, e.ino, 1);
				goto out;
			}
			while (off < (uint64_t)e.st.st_size) {
				ssize_t n = ufs_read(fs, e.ino, buf, sizeof(buf), off);

				if (n <= 0) {
					r = n < 0 ? (int)n : -EIO;
					break;
				}
				h = fnv(h, buf, (size_t)n);
				off += (uint64_t)n;
			}
			ufs_release(fs, e.ino);
			if (r < 0) {
				ufs_forget(fs, e.ino, 1);
				goto out;
			}
			sb_printf(full, " data=%016" PRIx64, h);
		}
		sb_printf(meta, "\n");
		sb_printf(full, "\n");
		if (S_ISDIR(e.st.st_mode))
			r = walk(fs, e.ino, sub, full, meta, depth + 1);
		ufs_forget(fs, e.ino, 1);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	for (i = 0; i < ns.n; i++)
		free(ns.v[i]);
	free(ns.v);
	return r;
}

/* ---------------------------------------------------------------- the workload */

/* Resolve "/a/b" to (parent inode, last name).  Lookups are forgotten at once. */
static int resolve(struct ufs *fs, const char *path, uint64_t *parent, const char **name)
{
	char comp[256];
	const char *p = path + 1, *slash;
	uint64_t dir = UFS_ROOT_INO;

	while ((slash = strchr(p, '/'))) {
		struct ufs_entry e;
		int r;

		snprintf(comp, sizeof(comp), "%.*s", (int)(slash - p), p);
		r = ufs_lookup(fs, dir, comp, &e);
		if (r < 0)
			return r;
		ufs_forget(fs, e.ino, 1);
		dir = e.ino;
		p = slash + 1;
	}
	*parent = dir;
	*name = p;
	return 0;
}

/* Look @path up and keep one lookup reference (caller forgets). */
static int get(struct ufs *fs, const char *path, uint64_t *ino)
{
	uint64_t dir;
	const char *name;
	struct ufs_entry e;
	int r = resolve(fs, path, &dir, &name);

	if (r == 0)
		r = ufs_lookup(fs, dir, name, &e);
	if (r == 0)
		*ino = e.ino;
	return r;
}

static void pattern(uint8_t *buf, size_t len, unsigned seed, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)((off + i) * 131 + seed * 7 + ((off + i) >> 12));
}

enum op_kind {
	OP_CREATE, OP_WRITE, OP_FSYNC, OP_RENAME, OP_LINK, OP_UNLINK, OP_TRUNC, OP_FALLOC,
	OP_PUNCH, OP_MKDIR, OP_RMDIR, OP_SETXATTR, OP_SYMLINK, OP_HOLD, OP_RELEASE, OP_RMXATTR,
};
#define XATTR_REPLACE_ 2	/* flags field: setxattr with XATTR_REPLACE, expected to fail */

struct op {
	enum op_kind kind;
	const char *a, *b;
	uint64_t off, len;
	unsigned int flags;
	bool data;		/* changes file data: data may be torn while in flight */
};

#define LONGNAME(n) "/m/a-long-name-so-that-the-directory-needs-several-blocks-" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-" #n

static const struct op workload[] = {
	{ OP_MKDIR, "/d1" },
	{ OP_CREATE, "/d1/a" },
	{ OP_WRITE, "/d1/a", NULL, 0, 10000, 1, true },
	{ OP_FSYNC, "/d1/a" },
	{ OP_CREATE, "/b" },
	{ OP_WRITE, "/b", NULL, 0, 3 * 4096, 2, true },
	{ OP_RENAME, "/b", "/d1/b2", 0, 0, 0 },
	{ OP_LINK, "/d1/a", "/a_link" },
	{ OP_RENAME, "/d1/a", "/d1/b2", 0, 0, RENAME_EXCHANGE },
	{ OP_RENAME, "/a_link", "/c", 0, 0, RENAME_NOREPLACE },
	{ OP_SETXATTR, "/c", "user.k1", 0, 0, 0 },
	{ OP_TRUNC, "/d1/b2", NULL, 100 },
	{ OP_FALLOC, "/c", NULL, 0, 65536, 0, true },
	{ OP_PUNCH, "/c", NULL, 4096, 8192, 0, true },
	{ OP_MKDIR, "/d2" },
	{ OP_MKDIR, "/d2/sub" },
	{ OP_CREATE, "/d2/sub/f" },
	{ OP_WRITE, "/d2/sub/f", NULL, 5000, 9000, 3, true },
	{ OP_UNLINK, "/d2/sub/f" },
	{ OP_RMDIR, "/d2/sub" },
	{ OP_SYMLINK, "/d1/s", "some/target" },
	{ OP_WRITE, "/c", NULL, 6000, 20000, 4, true },
	{ OP_FSYNC, "/c" },
	{ OP_RENAME, "/d2", "/d1/d2", 0, 0, 0 },
	{ OP_CREATE, "/x" },
	{ OP_WRITE, "/x", NULL, 0, 4096 * 5, 5, true },
	{ OP_RENAME, "/x", "/c", 0, 0, 0 },		/* replaces: old /c loses a link */
	{ OP_HOLD, "/d1/tmp" },				/* create and keep open */
	{ OP_WRITE, "/d1/tmp", NULL, 0, 8192, 6, true },
	{ OP_UNLINK, "/d1/tmp" },			/* orphan while open */
	{ OP_SETXATTR, "/d1/d2", "user.dir" },
	{ OP_RELEASE, "/d1/tmp" },			/* last close: evicted */
	{ OP_TRUNC, "/c", NULL, 4096 * 2 + 17 },
	{ OP_UNLINK, "/d1/b2" },
	{ OP_RENAME, "/d1/d2", "/d3", 0, 0, RENAME_NOREPLACE },
	{ OP_RENAME, "/d3", "/d1", 0, 0, RENAME_EXCHANGE },	/* exchange two directories */
	/* a fragmented file: the fifth extent splits the inode's extent root */
	{ OP_CREATE, "/frag" },
	{ OP_WRITE, "/frag", NULL, 0, 4096, 7, true },
	{ OP_WRITE, "/frag", NULL, 8192, 4096, 8, true },
	{ OP_WRITE, "/frag", NULL, 16384, 4096, 9, true },
	{ OP_WRITE, "/frag", NULL, 24576, 4096, 10, true },
	{ OP_WRITE, "/frag", NULL, 32768, 4096, 11, true },
	{ OP_WRITE, "/frag", NULL, 40960, 4096, 12, true },
	{ OP_PUNCH, "/frag", NULL, 8192, 16384, 0, true },
	{ OP_SETXATTR, "/frag", "user.r", 0, 0, XATTR_REPLACE_ },	/* absent: fails, no change */
	{ OP_SETXATTR, "/frag", "user.r" },
	{ OP_RMXATTR, "/frag", "user.r" },
	{ OP_MKDIR, "/e1" },
	{ OP_MKDIR, "/e2" },
	{ OP_RENAME, "/e1", "/e2", 0, 0, 0 },		/* replaces an empty directory */
	{ OP_UNLINK, "/frag" },
	/* a directory over several blocks (long names), with holes after unlinks */
	{ OP_MKDIR, "/m" },
	{ OP_CREATE, LONGNAME(0) },
	{ OP_CREATE, LONGNAME(1) },
	{ OP_CREATE, LONGNAME(2) },
	{ OP_CREATE, LONGNAME(3) },
	{ OP_CREATE, LONGNAME(4) },
	{ OP_CREATE, LONGNAME(5) },
	{ OP_CREATE, LONGNAME(6) },
	{ OP_CREATE, LONGNAME(7) },
	{ OP_CREATE, LONGNAME(8) },
	{ OP_CREATE, LONGNAME(9) },
	{ OP_CREATE, LONGNAME(10) },
	{ OP_CREATE, LONGNAME(11) },
	{ OP_CREATE, LONGNAME(12) },
	{ OP_CREATE, LONGNAME(13) },
	{ OP_CREATE, LONGNAME(14) },
	{ OP_CREATE, LONGNAME(15) },
	{ OP_CREATE, LONGNAME(16) },
	{ OP_CREATE, LONGNAME(17) },
	{ OP_CREATE, LONGNAME(18) },
	{ OP_CREATE, LONGNAME(19) },
	{ OP_CREATE, LONGNAME(20) },
	{ OP_CREATE, LONGNAME(21) },
	{ OP_CREATE, LONGNAME(22) },
	{ OP_CREATE, LONGNAME(23) },
	{ OP_CREATE, LONGNAME(24) },
	{ OP_CREATE, LONGNAME(25) },
	{ OP_CREATE, LONGNAME(26) },
	{ OP_CREATE, LONGNAME(27) },
	{ OP_CREATE, LONGNAME(28) },
	{ OP_CREATE, LONGNAME(29) },
	{ OP_UNLINK, LONGNAME(0) },
	{ OP_UNLINK, LONGNAME(3) },
	{ OP_UNLINK, LONGNAME(6) },
	{ OP_UNLINK, LONGNAME(9) },
	{ OP_UNLINK, LONGNAME(12) },
	{ OP_UNLINK, LONGNAME(15) },
	{ OP_UNLINK, LONGNAME(18) },
	{ OP_UNLINK, LONGNAME(21) },
	{ OP_UNLINK, LONGNAME(24) },
	{ OP_UNLINK, LONGNAME(27) },
	{ OP_RENAME, LONGNAME(1), "/moved-out", 0, 0, 0 },
	/* a large file: 2 MiB-aligned allocation, then a punch across extents */
	{ OP_CREATE, "/huge" },
	{ OP_WRITE, "/huge", NULL, 0, 2621440, 13, true },
	{ OP_PUNCH, "/huge", NULL, 1048576, 1048576, 0, true },
	{ OP_UNLINK, "/huge" },
};
#define NOPS (sizeof(workload) / sizeof(workload[0]))

static uint64_t held_ino;
static uint64_t op_failed[NOPS + 1], op_states[NOPS + 1];

static int run_op(struct ufs *fs, const struct op *o)
{
	const struct ufs_ctx *c = &root_ctx;
	struct ufs_entry e;
	uint64_t ino = 0, dir, dir2;
	const char *name, *name2;
	int r = 0;

	switch (o->kind) {
	case OP_CREATE:
	case OP_HOLD:
		r = resolve(fs, o->a, &dir, &name);
		if (r == 0)
			r = ufs_create(fs, c, dir, name, 0644, O_RDWR | O_CREAT | O_EXCL, &e);
		if (r == 0) {
			if (o->kind == OP_HOLD) {
				held_ino = e.ino;	/* keeps its open and lookup refs */
			} else {
				ufs_release(fs, e.ino);
				ufs_forget(fs, e.ino, 1);
			}
		}
		return r;
	case OP_RELEASE:
		ufs_release(fs, held_ino);
		ufs_forget(fs, held_ino, 1);
		held_ino = 0;
		return 0;
	case OP_MKDIR:
		r = resolve(fs, o->a, &dir, &name);
		if (r == 0)
			r = ufs_mkdir(fs, c, dir, name, 0755, &e);
		if (r == 0)
			ufs_forget(fs, e.ino, 1);
		return r;
	case OP_SYMLINK:
		r = resolve(fs, o->a, &dir, &name);
		if (r == 0)
			r = ufs_symlink(fs, c, dir, name, o->b, &e);
		if (r == 0)
			ufs_forget(fs, e.ino, 1);
		return r;
	case OP_RMDIR:
	case OP_UNLINK:
		r = resolve(fs, o->a, &dir, &name);
		if (r == 0)
			r = o->kind == OP_RMDIR ? ufs_rmdir(fs, c, dir, name) : ufs_unlink(fs, c, dir, name);
		return r;
	case OP_RENAME:
		r = resolve(fs, o->a, &dir, &name);
		if (r == 0)
			r = resolve(fs, o->b, &dir2, &name2);
		if (r == 0)
			r = ufs_rename(fs, c, dir, name, dir2, name2, o->flags);
		return r;
	case OP_LINK:
		r = get(fs, o->a, &ino);
		if (r)
			return r;
		r = resolve(fs, o->b, &dir, &name);
		if (r == 0)
			r = ufs_link(fs, c, ino, dir, name, &e);
		if (r == 0)
			ufs_forget(fs, e.ino, 1);
		ufs_forget(fs, ino, 1);
		return r;
	default:
		break;
	}
	/* operations on an existing file */
	r = get(fs, o->a, &ino);
	if (r)
		return r;
	if (o->kind != OP_SETXATTR && o->kind != OP_TRUNC && o->kind != OP_RMXATTR) {
		r = ufs_open(fs, c, ino, O_RDWR);
		if (r) {
			ufs_forget(fs, ino, 1);
			return r;
		}
	}
	switch (o->kind) {
	case OP_WRITE: {
		uint8_t *buf = malloc(o->len);
		ssize_t n;

		pattern(buf, o->len, o->flags, o->off);
		n = ufs_write(fs, c, ino, buf, o->len, o->off);
		r = n < 0 ? (int)n : (n == (ssize_t)o->len ? 0 : -EIO);
		free(buf);
		break;
	}
	case OP_FSYNC:
		r = ufs_fsync(fs, ino, false);
		break;
	case OP_TRUNC: {
		struct ufs_setattr sa = { .valid = UFS_SET_SIZE, .size = o->off };
		struct stat st;

		r = ufs_setattr(fs, c, ino, &sa, &st);
		break;
	}
	case OP_FALLOC:
		r = ufs_fallocate(fs, c, ino, 0, o->off, o->len);
		break;
	case OP_PUNCH:
		r = ufs_fallocate(fs, c, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, o->off,
				  o->len);
		break;
	case OP_SETXATTR:
		if (o->flags == XATTR_REPLACE_) {
			r = ufs_setxattr(fs, c, ino, o->b, "value", 5, 2 /* XATTR_REPLACE */);
			r = r == -ENODATA ? 0 : (r ? r : -EEXIST);
		} else {
			r = ufs_setxattr(fs, c, ino, o->b, "value", 5, XATTR_CREATE);
		}
		break;
	case OP_RMXATTR:
		r = ufs_removexattr(fs, c, ino, o->b);
		break;
	default:
		r = -EINVAL;
	}
	if (o->kind != OP_SETXATTR && o->kind != OP_TRUNC && o->kind != OP_RMXATTR)
		ufs_release(fs, ino);
	ufs_forget(fs, ino, 1);
	return r;
}

static void quiet_log(void *arg, const char *msg)
{
	if (verbose)
		fprintf(stderr, "crash: mount: %s\n", msg);
}

/* ---------------------------------------------------------------- recording and replay */

struct record {
	uint64_t fences_mount;		/* after ufs_mount */
	uint64_t fences_after[NOPS];	/* after each op */
	uint64_t fences_total;		/* after unmount */
	char *full[NOPS + 1];		/* state after op i (index 0: before any op) */
	char *meta[NOPS + 1];
};

static int state_of(struct ufs *fs, char **full, char **meta)
{
	struct sbuf f = { 0 }, m = { 0 };
	int r;

	sb_printf(&f, "%s", "");
	sb_printf(&m, "%s", "");
	r = walk(fs, UFS_ROOT_INO, "", &f, &m, 0);
	if (r < 0) {
		free(f.s);
		free(m.s);
		return r;
	}
	*full = f.s;
	*meta = m.s;
	return 0;
}

static int open_crash(struct dx_media **m)
{
	struct dx_media_opts mo = { .path = base_path, .crash_emul = true };
	int r = dx_media_open(m, &mo);

	if (r)
		fprintf(stderr, "crash: open %s in crash mode: %s\n", base_path, dx_errmsg());
	return r;
}

static int mount_fs(struct dx_media *m, struct ufs **fs)
{
	struct ufs_mount_opts o = { .log = quiet_log };
	int r = ufs_mount(fs, m, &o);

	if (r)
		fprintf(stderr, "crash: ufs_mount: %s: %s\n", strerror(-r), dx_errmsg());
	return r;
}

static int record_run(struct record *rec)
{
	struct dx_media *m = NULL;
	struct ufs *fs = NULL;
	size_t i;
	int r;

	if (open_crash(&m))
		return -1;
	if (mount_fs(m, &fs))
		goto fail;
	rec->fences_mount = dx_media_crash_fences(m);
	if (state_of(fs, &rec->full[0], &rec->meta[0]))
		goto fail;
	for (i = 0; i < NOPS; i++) {
		r = run_op(fs, &workload[i]);
		if (r) {
			fprintf(stderr, "crash: op %zu (kind %d, %s): %s\n", i, workload[i].kind,
				workload[i].a, strerror(-r));
			goto fail;
		}
		rec->fences_after[i] = dx_media_crash_fences(m);
		if (state_of(fs, &rec->full[i + 1], &rec->meta[i + 1])) {
			fprintf(stderr, "crash: walk after op %zu failed\n", i);
			goto fail;
		}
		if (verbose)
			fprintf(stderr, "crash: op %zu done at fence %" PRIu64 "\n", i,
				rec->fences_after[i]);
	}
	r = ufs_unmount(&fs);
	if (r) {
		fprintf(stderr, "crash: unmount: %s\n", strerror(-r));
		goto fail;
	}
	rec->fences_total = dx_media_crash_fences(m);
	dx_media_close(&m);
	return 0;
fail:
	if (fs)
		ufs_unmount(&fs);
	dx_media_close(&m);
	return -1;
}

/* Rerun the workload until fence @n has been passed; the image is in state_path. */
static int replay_to(uint64_t n)
{
	struct dx_media *m = NULL;
	struct ufs *fs = NULL;
	size_t i;

	unlink(state_path);
	if (open_crash(&m))
		return -1;
	if (dx_media_crash_set_trigger(m, n, state_path)) {
		fprintf(stderr, "crash: set trigger: %s\n", dx_errmsg());
		dx_media_close(&m);
		return -1;
	}
	if (mount_fs(m, &fs) == 0) {
		for (i = 0; i < NOPS && dx_media_crash_fences(m) < n; i++)
			if (run_op(fs, &workload[i]))
				break;
		if (held_ino) {
			ufs_release(fs, held_ino);
			ufs_forget(fs, held_ino, 1);
			held_ino = 0;
		}
		ufs_unmount(&fs);
	}
	dx_media_close(&m);
	if (access(state_path, F_OK)) {
		fprintf(stderr, "crash: the trigger at fence %" PRIu64 " did not fire\n", n);
		return -1;
	}
	return 0;
}

static int run_fsck(const char *path, bool repair, const char *when, uint64_t n)
{
	struct fsck_opts o = { .repair = repair ? FSCK_REPAIR_YES : FSCK_REPAIR_NO,
			       .quiet = !verbose, .force = true, .out = stderr };
	struct fsck_stats st;
	int rc = udax_fsck_path(path, &o, &st);

	/* -y may say "corrected" (a rollback, orphans); -n must find nothing */
	if (rc != 0 && !(repair && rc == FSCK_CORRECTED)) {
		fprintf(stderr, "crash: fence %" PRIu64 ": fsck %s %s: exit %d, %" PRIu64
			" errors:\n", n, repair ? "-y" : "-n", when, rc, st.errors);
		if (!repair) {
			o.quiet = false;
			udax_fsck_path(path, &o, &st);
		}
		return 1;
	}
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", from, to);
	return system(cmd) == 0 ? 0 : -1;
}

static void keep_image(const char *keep, uint64_t n)
{
	char cmd[1024];

	if (!keep)
		return;
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s/crash-fence-%" PRIu64 ".img'",
		 state_path, keep, n);
	if (system(cmd) == 0)
		fprintf(stderr, "crash: image kept in %s/crash-fence-%" PRIu64 ".img\n", keep, n);
}

/* How many ops completed before fence @n (the next one was in flight). */
static size_t op_in_flight(const struct record *rec, uint64_t n)
{
	size_t k = 0;

	while (k < NOPS && rec->fences_after[k] <= n && n > rec->fences_mount)
		k++;
	return k;
}

static int check_state_failed;

/*
 * judge() - mount @path and compare its namespace with the states before
 * and after op @k.  Return: 0 pass, 1 fail.
 */
static int judge(const char *path, const char *how, const struct record *rec, size_t k,
		 uint64_t n)
{
	struct dx_media_opts mo = { .path = path };
	struct dx_media *m = NULL;
	struct ufs *fs = NULL;
	char *full = NULL, *meta = NULL;
	struct statvfs sv;
	int fail = 0;

	memset(&sv, 0, sizeof(sv));
	if (dx_media_open(&m, &mo)) {
		fprintf(stderr, "crash: open %s: %s\n", path, dx_errmsg());
		return 1;
	}
	if (mount_fs(m, &fs)) {
		fprintf(stderr, "crash: fence %" PRIu64 " (after op %zu, %s): mount failed\n", n, k,
			how);
		dx_media_close(&m);
		return 1;
	}
	if (state_of(fs, &full, &meta)) {
		fprintf(stderr, "crash: fence %" PRIu64 " (%s): walking the namespace failed\n", n,
			how);
		fail = 1;
	} else if (strcmp(full, rec->full[k]) && (k == NOPS || strcmp(full, rec->full[k + 1]))) {
		bool data_op = k < NOPS && workload[k].data;

		if (!(data_op && (!strcmp(meta, rec->meta[k]) || !strcmp(meta, rec->meta[k + 1])))) {
			fprintf(stderr, "crash: fence %" PRIu64 " (%s): op %zu (%s %s) not atomic: the "
				"state is neither before nor after it\n", n, how, k, k < NOPS ?
				op_names[workload[k].kind] : "unmount", k < NOPS ? workload[k].a : "");
			if (nfail_printed++ < 3) {
				fprintf(stderr, "--- found:\n%s--- before op %zu:\n%s", full, k,
					rec->full[k]);
				if (k < NOPS)
					fprintf(stderr, "--- after op %zu:\n%s", k, rec->full[k + 1]);
			}
			fail = 1;
		}
	}
	if (ufs_statfs(fs, &sv)) {
		fprintf(stderr, "crash: fence %" PRIu64 " (%s): statfs failed\n", n, how);
		fail = 1;
	}
	if (ufs_unmount(&fs)) {
		fprintf(stderr, "crash: fence %" PRIu64 " (%s): unmount failed\n", n, how);
		fail = 1;
	}
	dx_media_close(&m);
	free(full);
	free(meta);
	/* what the allocator counted after recovery is what the bitmap says */
	if (!fail) {
		struct fsck_opts o = { .repair = FSCK_REPAIR_NO, .quiet = true, .force = true };
		struct fsck_stats st;

		if (udax_fsck_path(path, &o, &st) == 0 && st.free_blocks != sv.f_bfree) {
			fprintf(stderr, "crash: fence %" PRIu64 " (%s): statfs says %" PRIu64 " free "
				"blocks, the bitmap %" PRIu64 "\n", n, how, (uint64_t)sv.f_bfree,
				st.free_blocks);
			fail = 1;
		}
	}
	return fail;
}

/*
 * check_state() - crash at fence @n and judge the image twice: as mount
 * recovers it, and as fsck -y repairs it.
 * Return: 0 pass, 1 fail, -1 infrastructure failure.
 */
static int check_state(const struct record *rec, uint64_t n, const char *keep)
{
	size_t k = op_in_flight(rec, n);		/* completed ops */
	int fail = 0, f2;

	if (replay_to(n))
		return -1;
	fail |= run_fsck(state_path, false, "on the crash image", n);
	/* fsck -y recovers like mount does */
	if (copy_file(state_path, repair_path))
		return -1;
	f2 = run_fsck(repair_path, true, "on the crash image", n);
	if (!f2)
		f2 = run_fsck(repair_path, false, "after fsck -y", n);
	if (!f2)
		f2 = judge(repair_path, "after fsck -y", rec, k, n);
	fail |= f2;
	/* mount recovers */
	f2 = judge(state_path, "mount", rec, k, n);
	if (!f2)
		f2 = run_fsck(state_path, false, "after mount and unmount", n);
	fail |= f2;
	if (fail)
		keep_image(keep, n);
	check_state_failed = fail;
	return fail;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

int main(int argc, char **argv)
{
	struct dx_media_opts mo = { 0 };
	struct ufs_mkfs_opts mk = { .force = true, .journal_bytes = 256 * 1024 };
	struct dx_media *m = NULL;
	struct record rec;
	uint64_t max_states = 300, seed = 0, n, checked = 0, failed = 0, max_fail = 50;
	uint8_t *pick = NULL;
	const char *keep = getenv("UDAX_CRASH_KEEP");
	bool all = false;
	int c, fd, ret = T_FAIL;
	size_t i;

	memset(&rec, 0, sizeof(rec));
	while ((c = getopt(argc, argv, "n:s:avk:f:")) != -1) {
		switch (c) {
		case 'f': max_fail = strtoull(optarg, NULL, 0); break;
		case 'n': max_states = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'a': all = true; break;
		case 'v': verbose = true; break;
		case 'k': keep = optarg; break;
		default:
			fprintf(stderr, "Usage: crash_states [-n MAX] [-s SEED] [-a] [-v] [-k DIR]\n");
			return 2;
		}
	}
	if (getenv("UDAX_CRASH_STATES"))
		max_states = strtoull(getenv("UDAX_CRASH_STATES"), NULL, 0);
	if (!seed)
		seed = getenv("UDAX_CRASH_SEED") ? strtoull(getenv("UDAX_CRASH_SEED"), NULL, 0)
						  : (uint64_t)time(NULL);
	rng_state = seed | 1;
	snprintf(base_path, sizeof(base_path), "/dev/shm/udax-crash-states-%d.base", (int)getpid());
	snprintf(state_path, sizeof(state_path), "/dev/shm/udax-crash-states-%d.state", (int)getpid());
	snprintf(repair_path, sizeof(repair_path), "%s.y", state_path);

	fd = open(base_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0)
		t_skip("cannot create %s: %s", base_path, strerror(errno));
	close(fd);
	mo.path = base_path;
	if (dx_media_open(&m, &mo) || ufs_mkfs(m, &mk, NULL)) {
		fprintf(stderr, "crash: mkfs: %s\n", dx_errmsg());
		goto out;
	}
	dx_media_close(&m);

	if (record_run(&rec))
		goto out;
	printf("crash: workload of %zu ops: %" PRIu64 " fences (mount %" PRIu64 ", unmount %"
	       PRIu64 ")\n", NOPS, rec.fences_total, rec.fences_mount,
	       rec.fences_total - rec.fences_after[NOPS - 1]);

	pick = calloc(rec.fences_total + 1, 1);
	if (all || rec.fences_total <= max_states) {
		memset(pick + 1, 1, rec.fences_total);
	} else {
		uint64_t want = max_states, got = 0;

		printf("crash: sampling %" PRIu64 " of %" PRIu64 " fences (seed %" PRIu64 ")\n",
		       want, rec.fences_total, seed);
		/* always the last fence of every op, then random ones */
		for (i = 0; i < NOPS && got < want; i++)
			if (!pick[rec.fences_after[i]]) {
				pick[rec.fences_after[i]] = 1;
				got++;
			}
		while (got < want) {
			n = 1 + rnd() % rec.fences_total;
			if (!pick[n]) {
				pick[n] = 1;
				got++;
			}
		}
	}
	for (n = 1; n <= rec.fences_total; n++) {
		int r, wst;
		pid_t pid;
		size_t k;

		if (!pick[n])
			continue;
		/* in a child: a crash while recovering one state is that state's failure */
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid == 0)
			_exit(check_state(&rec, n, keep) < 0 ? 2 : check_state_failed);
		if (pid < 0 || waitpid(pid, &wst, 0) < 0) {
			r = -1;
		} else if (WIFEXITED(wst) && WEXITSTATUS(wst) <= 1) {
			r = WEXITSTATUS(wst);
		} else if (WIFEXITED(wst) && WEXITSTATUS(wst) == 2) {
			r = -1;
		} else {
			fprintf(stderr, "crash: fence %" PRIu64 ": the check crashed (%s %d)\n", n,
				WIFSIGNALED(wst) ? "signal" : "exit", WIFSIGNALED(wst) ?
				WTERMSIG(wst) : WEXITSTATUS(wst));
			r = 1;
		}
		k = op_in_flight(&rec, n);
		op_states[k]++;
		if (r == 1 && k < NOPS)
			op_failed[k]++;
		if (r == 1)
			nfail_printed++;	/* the child printed its details */
		if (r < 0) {
			fprintf(stderr, "crash: infrastructure failure at fence %" PRIu64 "\n", n);
			goto out;
		}
		checked++;
		failed += (uint64_t)r;
		if (failed >= max_fail) {
			fprintf(stderr, "crash: stopping after %" PRIu64 " failing states\n", failed);
			break;
		}
	}
	for (i = 0; i <= NOPS; i++)
		if (op_failed[i])
			printf("crash: op %zu (%s %s): %" PRIu64 " of %" PRIu64 " crash states inside "
			       "it failed\n", i, i < NOPS ? op_names[workload[i].kind] : "unmount",
			       i < NOPS ? workload[i].a : "", op_failed[i], op_states[i]);
	printf("crash: checked %" PRIu64 " crash states, %" PRIu64 " failed\n", checked, failed);
	ret = failed ? T_FAIL : T_PASS;
out:
	for (i = 0; i <= NOPS; i++) {
		free(rec.full[i]);
		free(rec.meta[i]);
	}
	free(pick);
	dx_media_close(&m);
	unlink(base_path);
	unlink(state_path);
	unlink(repair_path);
	return ret;
}
