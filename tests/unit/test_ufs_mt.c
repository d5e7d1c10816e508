// SPDX-License-Identifier: MIT
/*
 * test_ufs_mt - the daemon calls ufs.h from many FUSE worker threads: run
 * creates, writes, reads, truncates, punches, renames, readdirs, layout
 * grants, unlinks and forgets from several threads at once on shared and
 * private directories, then check that every file reads back what its
 * owner wrote, and that deleting everything gives every block and inode
 * back.  Meant for --enable-tsan too.
 */
#include "test_ufs.h"

#include <linux/falloc.h>
#include <pthread.h>

#define MiB (1024ull * 1024)
#define NTHREADS 4
#define NFILES 16
#define NOPS 3000

static struct t_fs T;
static uint64_t shared_dir;

struct worker {
	int id;
	uint64_t dir;
	uint64_t rng;
	int errors;
};

static uint64_t rnd(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

struct rd {
	int n;
	uint64_t inos[64];	/* lookups taken by readdirplus, forgotten after */
	int ninos;
};

static int rd_count(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	struct rd *r = arg;

	(void)name;
	(void)next;
	if (e->ino && r->ninos == 64)
		return 1;
	r->n++;
	if (e->ino)
		r->inos[r->ninos++] = e->ino;
	return 0;
}

/* Each file's content is a function of (thread, file, generation). */
static void pattern(char *b, size_t n, int id, int k, unsigned int gen)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (char)(id * 37 + k * 11 + gen + i / 512);
}

/* debugging aid: free inodes according to the on-media bitmap */
static uint64_t bitmap_free_inodes(void)
{
	struct ufs_super *sb = dx_media_base(T.m);
	const uint8_t *bm = (const uint8_t *)dx_media_base(T.m) + sb->s_ibitmap_start * 4096;
	uint64_t i, n = 0;

	for (i = 0; i < sb->s_inode_count; i++)
		n += !(bm[i / 8] & (1u << (i % 8)));
	return n;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned int gen[NFILES] = { 0 };
	size_t len[NFILES] = { 0 };
	char buf[65536], rbuf[65536], name[64];
	struct ufs_ctx c = T.c;
	struct ufs_entry e;
	int op, k;

	for (op = 0; op < NOPS; op++) {
		unsigned int what = (unsigned int)(rnd(w) % 10);

		if (getenv("UDAX_MT_DEBUG")) {
			struct statvfs sv;

			ufs_statfs(T.fs, &sv);
			if (sv.f_ffree != bitmap_free_inodes()) {
				fprintf(stderr, "op %d: free inodes %llu, bitmap %llu\n", op - 1,
					(unsigned long long)sv.f_ffree,
					(unsigned long long)bitmap_free_inodes());
				exit(1);
			}
			fprintf(stderr, "op %d: %u\n", op, what);
		}

		k = (int)(rnd(w) % NFILES);
		snprintf(name, sizeof(name), "t%d-f%d", w->id, k);
		switch (what) {
		case 0:
		case 1: { /* (re)write a file */
			size_t n = 1 + rnd(w) % sizeof(buf);
			int rc = ufs_create(T.fs, &c, w->dir, name, 0644, O_RDWR | O_TRUNC, &e);

			if (rc) {
				w->errors++;
				break;
			}
			gen[k]++;
			pattern(buf, n, w->id, k, gen[k]);
			if (ufs_write(T.fs, &c, e.ino, buf, n, 0) != (ssize_t)n)
				w->errors++;
			len[k] = n;
			ufs_release(T.fs, e.ino);
			ufs_forget(T.fs, e.ino, 1);
			break;
		}
		case 2:
		case 3: /* read it back */
			if (ufs_lookup(T.fs, w->dir, name, &e)) {
				if (len[k])
					w->errors++;
				break;
			}
			if (ufs_read(T.fs, e.ino, rbuf, sizeof(rbuf), 0) != (ssize_t)len[k]) {
				w->errors++;
			} else {
				pattern(buf, len[k], w->id, k, gen[k]);
				if (memcmp(buf, rbuf, len[k]))
					w->errors++;
			}
			ufs_forget(T.fs, e.ino, 1);
			break;
		case 4: /* unlink */
			if (ufs_unlink(T.fs, &c, w->dir, name) != (len[k] ? 0 : -ENOENT))
				w->errors++;
			len[k] = 0;
			break;
		case 5: { /* a shared directory: names collide across threads */
			char sname[32];

			snprintf(sname, sizeof(sname), "s%d", (int)(rnd(w) % 32));
			if (rnd(w) & 1) {
				if (!ufs_mknod(T.fs, &c, shared_dir, sname, S_IFREG | 0600, 0, &e))
					ufs_forget(T.fs, e.ino, 1);
			} else {
				(void)ufs_unlink(T.fs, &c, shared_dir, sname);
			}
			break;
		}
		case 6: { /* rename within the shared dir (may race with unlink) */
			char a[32], b[32];

			snprintf(a, sizeof(a), "s%d", (int)(rnd(w) % 32));
			snprintf(b, sizeof(b), "s%d", (int)(rnd(w) % 32));
			(void)ufs_rename(T.fs, &c, shared_dir, a, shared_dir, b, 0);
			break;
		}
		case 7: { /* readdir(plus): plus takes lookups, given back like the kernel does */
			struct rd r = { 0 };
			bool plus = rnd(w) & 1;

			if (ufs_readdir(T.fs, shared_dir, 0, plus, rd_count, &r))
				w->errors++;
			if (r.n < 2)
				w->errors++;
			while (plus && r.ninos > 0)
				ufs_forget(T.fs, r.inos[--r.ninos], 1);
			break;
		}
		case 8: /* punch then restore via write of the same content */
			if (!len[k] || ufs_lookup(T.fs, w->dir, name, &e))
				break;
			if (ufs_fallocate(T.fs, &c, e.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  0, len[k]))
				w->errors++;
			pattern(buf, len[k], w->id, k, gen[k]);
			if (ufs_write(T.fs, &c, e.ino, buf, len[k], 0) != (ssize_t)len[k])
				w->errors++;
			ufs_forget(T.fs, e.ino, 1);
			break;
		case 9: { /* a layout grant held briefly, then a truncate-and-restore */
			struct ufs_layout_seg seg[2];
			struct ufs_setattr sa = { .valid = UFS_SET_SIZE, .size = 0 };
			int n, i;

			if (!len[k] || ufs_lookup(T.fs, w->dir, name, &e))
				break;
			n = ufs_layout_grant(T.fs, &c, e.ino, 0, 4096, false, seg, 2);
			if (n < 1)
				w->errors++;
			for (i = 0; i < n; i++)
				dx_page_put(seg[i].page, UDAX_REF_MAP);
			if (ufs_setattr(T.fs, &c, e.ino, &sa, NULL))
				w->errors++;
			pattern(buf, len[k], w->id, k, gen[k]);
			if (ufs_write(T.fs, &c, e.ino, buf, len[k], 0) != (ssize_t)len[k])
				w->errors++;
			ufs_forget(T.fs, e.ino, 1);
			break;
		}
		}
	}
	/* clean up */
	for (k = 0; k < NFILES; k++) {
		snprintf(name, sizeof(name), "t%d-f%d", w->id, k);
		if (len[k] && ufs_unlink(T.fs, &c, w->dir, name))
			w->errors++;
	}
	return NULL;
}

static int unlink_all(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	(void)e;
	(void)next;
	if (strcmp(name, ".") && strcmp(name, ".."))
		snprintf((char *)arg + strlen(arg), 4096 - strlen(arg), "%s/", name);
	return 0;
}

int main(void)
{
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct statvfs sv0, sv1;
	struct ufs_entry e;
	char names[4096] = "", *p, *q;
	uint64_t t0;
	int i, errors = 0, nthreads = NTHREADS;

	if (getenv("UDAX_MT_THREADS"))
		nthreads = dx_min(atoi(getenv("UDAX_MT_THREADS")), NTHREADS);
	t_setup(&T, "mt", 128 * MiB);
	REQUIRE(ufs_mkdir(T.fs, &T.c, UFS_ROOT_INO, "shared", 0755, &e) == 0);
	shared_dir = e.ino;
	for (i = 0; i < NTHREADS; i++) {
		char dn[16];

		snprintf(dn, sizeof(dn), "own%d", i);
		REQUIRE(ufs_mkdir(T.fs, &T.c, UFS_ROOT_INO, dn, 0755, &e) == 0);
		w[i].dir = e.ino;
		w[i].id = i;
		w[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
		w[i].errors = 0;
	}
	CHECK_EQ(ufs_statfs(T.fs, &sv0), 0);
	t0 = dx_now_ns();
	for (i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, work, &w[i]);
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
	}
	printf("%d threads x %d ops in %.2f s\n", NTHREADS, NOPS,
	       (double)(dx_now_ns() - t0) / 1e9);
	CHECK_EQ(errors, 0);
	/* empty the shared directory: everything comes back */
	CHECK_EQ(ufs_readdir(T.fs, shared_dir, 0, false, unlink_all, names), 0);
	for (p = names; (q = strchr(p, '/')); p = q + 1) {
		*q = 0;
		CHECK_EQ(ufs_unlink(T.fs, &T.c, shared_dir, p), 0);
		if (getenv("UDAX_MT_DEBUG")) {
			struct statvfs sv;

			ufs_statfs(T.fs, &sv);
			fprintf(stderr, "unlink %s: free %llu bitmap %llu\n", p,
				(unsigned long long)sv.f_ffree,
				(unsigned long long)bitmap_free_inodes());
		}
	}
	CHECK_EQ(ufs_statfs(T.fs, &sv1), 0);
	CHECK_EQ(sv1.f_ffree, sv0.f_ffree);
	/* own dirs may have grown a block or two; data blocks are all back */
	CHECK(sv1.f_bfree + 64 >= sv0.f_bfree);
	if (getenv("UDAX_MT_DEBUG"))
		fprintf(stderr, "before remount: bitmap free %llu\n",
			(unsigned long long)bitmap_free_inodes());
	t_remount(&T);
	if (getenv("UDAX_MT_DEBUG"))
		fprintf(stderr, "after remount: bitmap free %llu\n",
			(unsigned long long)bitmap_free_inodes());
	CHECK_EQ(ufs_statfs(T.fs, &sv1), 0);
	CHECK_EQ(sv1.f_ffree, sv0.f_ffree);
	t_teardown(&T);
	return t_exit("test_ufs_mt");
}
