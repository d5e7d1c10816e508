/* SPDX-License-Identifier: MIT */
/*
 * udax_io.c - read()/write()-style calls served from direct layouts.
 *
 * udax_pread()/udax_pwrite() copy between a buffer and an open map.  A copy
 * holds the map's I/O count (udax__map_io_get); a recall, unmap or close
 * first closes the map to new copies and waits for the count to drain, and
 * only then replaces the range and gives the layout back, so no copy runs
 * into a block after its recall was answered.
 *
 * struct udax_file serves a whole file: it keeps windows, maps of aligned
 * UDAX_WIN_SIZE pieces of the file, opened on first use, and sends to the
 * mount everything it must not serve directly:
 *   - reads at or past the end of file the library knows, writes that
 *     would change the size (the size is the kernel's and the daemon's; the
 *     windows never grow the file: UDAX_MAP_KEEP_SIZE);
 *   - O_APPEND writes (the kernel appends atomically at its own size);
 *   - everything, once the daemon refused a layout with EPERM/EACCES/ENOTTY
 *     (not allowed direct access; not udaxfs);
 *   - the rest of a call whose window cannot be opened now (EBUSY: a
 *     recall is under way; the grant is not retried on this path, and the
 *     slot goes to the mount for BUSY_BACKOFF_NS).  UDAX_TEST_BUSY_FAILS=1
 *     (a test aid) fails the call with EBUSY instead: the negative control
 *     of the fallback test.
 * End of file.  A shrink to size S recalls the layouts over the blocks
 * from ceil(S / block) on, not the block holding S.  So a window maps one
 * block more than it serves, both below the size seen by fstat() just
 * before the grant: while the window is live (not recalled), every byte it
 * serves is below the true EOF, whatever other processes do, and a direct
 * write never changes the size.  The last block of the file is always
 * served by the mount.  f->eof is a hint only (which calls to try
 * directly): stale-small sends calls to the mount, stale-large costs an
 * fstat at the next grant.
 *
 * Windows are read-only until the first write into them, then reopened
 * read-write: a writable grant sets mtime and ctime, a read must not.
 *
 * Time stamps: the grant of a writable window sets mtime/ctime; later
 * direct writes are made visible by udax_file_sync() and udax_file_close(),
 * which touch the file through the mount (utimensat(fd, NULL)).
 *
 * DRAM: struct udax_file (about 100 bytes) plus one pointer per
 * UDAX_WIN_SIZE of file size (up to WIN_SLOTS_MAX), plus per open window a
 * struct win and the library's struct udax_map (about 400 bytes together).
 * Measured under the shim (contrib/bench/shim-memory.sh, 10,000 files of
 * 64 KiB open at once, one window each): 584 bytes of the client's heap
 * per file, nothing per descriptor before its first call; the daemon
 * holds about 2.2 KiB per layout.
 *
 * Locks: f->lock protects the slot table and the windows' fields marked so;
 * it is never held across udax_map_close() of a window whose recall handler
 * may be running (the handler only touches atomics).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <udax/udax.h>

#include "libudax_int.h"
#include "wire.h"

#define UDAX_EXPORT __attribute__((visibility("default")))

#define PAGE 4096ull
#define UDAX_BLOCK 4096ull		/* the file system's block (format.h) */
#define UDAX_WIN_SIZE (32ull << 20)	/* one layout covers this much of the file */
#define WIN_SLOTS_MAX 4096u		/* 128 GiB of file mapped at most, per file */
#define BUSY_BACKOFF_NS 1000000ull	/* after an EBUSY grant, serve the slot by FUSE this long */
#define POP_PIECE (2ull << 20)		/* faulted in at once on first use */
_Static_assert(UDAX_WIN_SIZE / POP_PIECE < 32, "struct win's populated bits");

struct win {
	struct udax_file *f;
	uint64_t start;			/* file offset, multiple of UDAX_WIN_SIZE; const */
	uint64_t len;			/* served bytes from start (mapped: one block more); const */
	bool writable;			/* const */
	struct udax_map *map;		/* const once published */
	char *addr;			/* start's address; const */
	atomic_uint populated;		/* bit i: piece i (POP_PIECE bytes) faulted in */
};

struct udax_file {
	int fd;
	bool append;			/* O_APPEND: writes go through the mount */
	bool can_read, can_write;	/* the descriptor's access mode */
	atomic_bool no_direct;		/* refused once: everything through the mount */
	atomic_bool dirty;		/* direct writes since the last touch */
	atomic_bool no_cachestat;	/* cachestat(2) failed: every direct write asks the daemon */
	pthread_mutex_t lock;		/* the fields below */
	_Atomic uint64_t eof;		/* size hint (see the file comment); written under lock */
	struct win **slot;		/* by (offset / UDAX_WIN_SIZE) % nslots */
	unsigned int nslots;
	uint64_t *busy_until;		/* per slot: CLOCK_MONOTONIC ns of the last EBUSY + backoff */
};

/* ---- on a map ---- */

/* Clip [off, off + n) to the map.  Return: bytes, 0 at the end, -EINVAL outside. */
static ssize_t map_clip(struct udax_map *m, size_t n, off_t off, char **at, bool *writable)
{
	char *addr;
	uint64_t moff, mlen;

	udax__map_info(m, &addr, &moff, &mlen, writable);
	if (off < 0 || (uint64_t)off < moff || (uint64_t)off > moff + mlen)
		return udax__set_err(-EINVAL, "offset %lld is outside the map [%llu, %llu)",
				     (long long)off, (unsigned long long)moff,
				     (unsigned long long)(moff + mlen));
	uint64_t left = moff + mlen - (uint64_t)off;
	if (n > left)
		n = (size_t)left;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX & ~(size_t)(PAGE - 1);
	*at = addr + ((uint64_t)off - moff);
	return (ssize_t)n;
}

/* One copy between @buf and map @m: memcpy out, or the durable store in. */
static ssize_t map_copy(struct udax_map *m, char *buf, size_t n, off_t off, bool write)
{
	char *at = NULL;
	bool w = false;

	if (!m || (!buf && n))
		return udax__set_err(-EINVAL, "map or buffer is NULL");
	ssize_t r = map_clip(m, n, off, &at, &w);
	if (r <= 0)
		return r;
	if (write && !w)
		return udax__set_err(-EBADF, "the map is read-only");
	if (udax__map_io_get(m))
		return udax__set_err(-ESTALE, "the layout was recalled, unmapped or closed");
	int err = 0;
	if (write)
		err = udax__map_store(m, at, buf, (size_t)r);
	else
		memcpy(buf, at, (size_t)r);
	udax__map_io_put(m);
	return err ? err : r;
}

UDAX_EXPORT ssize_t udax_pread(struct udax_map *m, void *buf, size_t n, off_t off)
{
	return map_copy(m, buf, n, off, false);
}

UDAX_EXPORT ssize_t udax_pwrite(struct udax_map *m, const void *buf, size_t n, off_t off)
{
	return map_copy(m, (char *)buf, n, off, true);
}

/* ---- on a file ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Recall handler: runs on the library's recall thread.  Nothing to do: the
 * library drains the copies and the next call finds the map closed.
 * Context: must not take f->lock (see Locks).
 */
static void win_recalled(struct udax_map *m, void *arg)
{
	(void)m;
	(void)arg;
}

/*
 * Grow the slot table to cover the known size (one slot per window, up to
 * WIN_SLOTS_MAX).  Failing to grow keeps the smaller table: still correct.
 * Context: f->lock held.
 */
static void grow_slots(struct udax_file *f)
{
	uint64_t want = (f->eof + UDAX_WIN_SIZE - 1) / UDAX_WIN_SIZE;
	if (want > WIN_SLOTS_MAX)
		want = WIN_SLOTS_MAX;
	if (want > f->nslots) {
		/* grow the table: rehash the live windows into it */
		unsigned int ns = f->nslots ? f->nslots : 1;
		while (ns < want)
			ns *= 2;
		if (ns > WIN_SLOTS_MAX)
			ns = WIN_SLOTS_MAX;
		struct win **sl = calloc(ns, sizeof(*sl));
		uint64_t *bu = calloc(ns, sizeof(*bu));
		if (!sl || !bu) {
			free(sl);
			free(bu);
			return;		/* keep the small table: still correct */
		}
		for (unsigned int i = 0; i < f->nslots; i++) {
			struct win *w = f->slot[i];
			if (w)
				sl[(w->start / UDAX_WIN_SIZE) % ns] = w;	/* no collisions: ns grew */
		}
		free(f->slot);
		free(f->busy_until);
		f->slot = sl;
		f->busy_until = bu;
		f->nslots = ns;
	}
}

/* Refresh the known size.  Context: f->lock held.  Return: 0, -errno. */
static int refresh_eof(struct udax_file *f)
{
	struct stat st;
	if (syscall(SYS_fstat, f->fd, &st) < 0)
		return -errno;
	f->eof = (uint64_t)st.st_size;
	grow_slots(f);
	return 0;
}

/*
 * The end of what a window at @start may serve when the file is @eof long:
 * the mapping ends one block further, both below the size (file comment).
 */
static uint64_t served_end(uint64_t eof, uint64_t start)
{
	uint64_t mend = eof & ~(UDAX_BLOCK - 1);
	if (mend > start + UDAX_WIN_SIZE + UDAX_BLOCK)
		mend = start + UDAX_WIN_SIZE + UDAX_BLOCK;
	return mend < start + 2 * UDAX_BLOCK ? start : mend - UDAX_BLOCK;
}

/*
 * win_close() - give a window back.  Context: no f->lock (udax_map_close
 * waits for a running recall handler); @w already unlinked.
 */
static void win_close(struct win *w)
{
	struct udax_map *m = w->map;	/* w->map stays valid for copies still draining */
	udax_map_close(&m);
	free(w);
}

/*
 * win_get() - the window covering file offset @off, entered for a copy
 * (udax__map_io_get held), opened or upgraded as needed.
 * Context: takes f->lock; may call the daemon.
 * Return: the window, or NULL: serve this piece through the mount (*busy:
 * because the daemon refused the grant with EBUSY, now or just before).
 */
static struct win *win_get(struct udax_file *f, uint64_t off, bool write, bool *busy)
{
	struct win *old = NULL, *w = NULL;

	pthread_mutex_lock(&f->lock);
	if (!f->nslots && (refresh_eof(f) < 0 || !f->nslots))
		goto out;
	uint64_t start = off & ~(UDAX_WIN_SIZE - 1);
	unsigned int si = (unsigned int)((start / UDAX_WIN_SIZE) % f->nslots);
	struct win *cur = f->slot[si];
	if (cur && cur->start == start && (!write || cur->writable) && off < start + cur->len &&
	    udax__map_io_get(cur->map) == 0) {
		w = cur;
		goto out;
	}
	if (cur && cur->start == start && (!write || cur->writable) && off >= start + cur->len) {
		/*
		 * Past the window's end (the last block of the file): only a
		 * file grown since gives a window that serves @off.  Otherwise
		 * keep this one: a stream over the whole file would give it
		 * back and take it again at every pass.
		 */
		if (refresh_eof(f) < 0 || off >= served_end(f->eof, start))
			goto out;
	}
	/* a miss: a recalled, too short, read-only or other window goes */
	if (f->busy_until[si] && now_ns() < f->busy_until[si]) {
		*busy = true;
		goto out;
	}
	f->slot[si] = NULL;
	old = cur;
	pthread_mutex_unlock(&f->lock);
	if (old)
		win_close(old);
	pthread_mutex_lock(&f->lock);
	if (atomic_load(&f->no_direct) || f->slot[si])
		goto out;		/* refused meanwhile, or another thread filled the slot */
	/* a fresh size: the window's served range must lie below it (file comment) */
	if (refresh_eof(f) < 0)
		goto out;
	uint64_t send = served_end(f->eof, start);
	if (off >= send)
		goto out;		/* the last block of the file: the mount's */
	w = calloc(1, sizeof(*w));
	if (!w)
		goto out;
	*w = (struct win){ .f = f, .start = start, .len = send - start,
			   .writable = write || (cur && cur->writable) };
	struct udax_map_opts o = { .recall = win_recalled, .recall_arg = w,
				   .flags = UDAX_MAP_KEEP_SIZE };
	int prot = PROT_READ | (w->writable ? PROT_WRITE : 0);
	/* the grant runs with f->lock held: other threads of this file wait for it, as they would for FUSE */
	int err = udax__map_open(&w->map, f->fd, (off_t)start, (size_t)(send + UDAX_BLOCK - start),
				 prot, &o, true);
	if (err) {
		free(w);
		w = NULL;
		if (err == -EBUSY || err == -EAGAIN) {
			f->busy_until[si] = now_ns() + BUSY_BACKOFF_NS;
			*busy = true;
		}
		else
			atomic_store(&f->no_direct, true);	/* EPERM, EACCES, ENOTTY, ...: for good */
		goto out;
	}
	f->busy_until[si] = 0;
	uint64_t moff, mlen;
	bool wr;
	udax__map_info(w->map, &w->addr, &moff, &mlen, &wr);
	if (udax__map_io_get(w->map)) {
		/* recalled before the first copy: give it back, use the mount this time */
		struct win *dead = w;
		w = NULL;
		pthread_mutex_unlock(&f->lock);
		win_close(dead);
		return NULL;
	}
	f->slot[si] = w;
out:
	pthread_mutex_unlock(&f->lock);
	return w;
}

UDAX_EXPORT int udax_file_open(struct udax_file **out, int fd, unsigned int flags)
{
	struct stat st;

	if (!out)
		return udax__set_err(-EINVAL, "out is NULL");
	*out = NULL;
	if (flags)
		return udax__set_err(-EINVAL, "unknown flags %#x", flags);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return udax__set_err(-errno, "fcntl(F_GETFL): %s", strerror(errno));
	if (fstat(fd, &st) < 0)
		return udax__set_err(-errno, "fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return udax__set_err(-EINVAL, "not a regular file");
	struct udax_file *f = calloc(1, sizeof(*f));
	if (!f)
		return udax__set_err(-ENOMEM, "out of memory");
	f->fd = fd;
	f->append = (fl & O_APPEND) != 0;
	f->can_read = (fl & O_ACCMODE) != O_WRONLY;
	f->can_write = (fl & O_ACCMODE) != O_RDONLY;
	f->eof = (uint64_t)st.st_size;
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	return 0;
}

/*
 * Page-cache coherence.  The kernel caches the pages a descriptor opened
 * through the mount before a writable layout was granted reads (the daemon
 * drops the range's pages at the grant and opens later descriptors without
 * cache); a direct store goes around them.  So a direct write, before it
 * returns, looks whether the kernel holds pages of the range (cachestat(2),
 * which counts a page being read in) and if it does has the daemon drop
 * them (UDAX_REQ_INVAL, answered once they are gone).  A page the look did
 * not see is read in after it, from the stored data.  Guarantee: a read
 * through the mount that starts after a direct write returned sees it.
 * Without cachestat(2) (ENOSYS, EPERM) every direct write asks the daemon.
 * Before it looks, a write reads the daemon's page-cache flag of the
 * window's layout (udax__map_cache_clean(): a fence and a load): while no
 * READ through the mount touched the layout's range since the daemon last
 * dropped it, there is nothing to look at.  That saves the system call,
 * 40% of a 4 KiB write.
 * UDAX_TEST_NO_INVAL=1 (a test aid) skips all this, so that the coherence
 * test can show it sees the stale read.
 */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cstat_range { uint64_t off, len; };
struct cstat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

/* Does the kernel (maybe) cache pages of [off, off + len)?  Context: any; a syscall. */
static bool cache_holds(struct udax_file *f, uint64_t off, uint64_t len)
{
	struct cstat_range r = { off & ~(PAGE - 1), 0 };
	struct cstat cs;

	r.len = ((off + len + PAGE - 1) & ~(PAGE - 1)) - r.off;
	if (atomic_load_explicit(&f->no_cachestat, memory_order_relaxed))
		return true;
	if (syscall(__NR_cachestat, f->fd, &r, &cs, 0) == 0)
		return cs.nr_cache != 0;
	atomic_store(&f->no_cachestat, true);	/* not here or not allowed: always ask */
	return true;
}

/* A test aid's switch, read once: set to 1 in the environment. */
static int t_no_inval = -1, t_busy_fails = -1;
static bool test_flag(int *v, const char *name)
{
	if (*v < 0) {
		const char *e = getenv(name);
		*v = e && *e == '1';
	}
	return *v;
}

/* The mount's answer for [off, off + n); updates the size hint.  Return: bytes or -errno. */
static ssize_t mount_io(struct udax_file *f, char *buf, size_t n, uint64_t off, bool write)
{
	ssize_t r;
	do
		r = syscall(write ? SYS_pwrite64 : SYS_pread64, f->fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	uint64_t end = off + (uint64_t)r;
	/* an O_APPEND write went to the end, not to @off */
	if (r > 0 && !(write && f->append) && end > atomic_load_explicit(&f->eof, memory_order_relaxed)) {
		pthread_mutex_lock(&f->lock);
		if (end > f->eof) {
			f->eof = end;	/* it is at least this long now */
			grow_slots(f);
		}
		pthread_mutex_unlock(&f->lock);
	}
	return r;
}

/*
 * Before a direct write, fault in the window's pieces under [pos, pos + k)
 * on their first use, a piece per madvise(MADV_POPULATE_WRITE): one call
 * instead of a write fault per page.  On an emulation file (4 KiB pages) a
 * first pass of 1 MiB writes over a file ran at ~60 MiB/s with a fault per
 * page, ~1.2 GiB/s so.  (Reads showed no clear gain: left to faults.)  A
 * failure leaves the faults to the copy.
 * Context: inside io_get/io_put (the range stays mapped).
 */
static void win_populate(struct win *w, uint64_t pos, size_t k)
{
	uint64_t first = (pos - w->start) / POP_PIECE, last = (pos + k - 1 - w->start) / POP_PIECE;
	for (uint64_t i = first; i <= last; i++) {
		unsigned int bit = 1u << i;
		if (atomic_load_explicit(&w->populated, memory_order_relaxed) & bit)
			continue;
		uint64_t end = (i + 1) * POP_PIECE < w->len ? (i + 1) * POP_PIECE : w->len;
		madvise(w->addr + i * POP_PIECE, (size_t)(end - i * POP_PIECE), MADV_POPULATE_WRITE);
		atomic_fetch_or_explicit(&w->populated, bit, memory_order_relaxed);
	}
}

/*
 * walk() - serve [off, off + n) from windows, piece by piece, as far as
 * they go: memcpy out for a read, the durable store (then the page-cache
 * step, above) for a write.
 * Return: the bytes served (the caller sends the rest to the mount), or
 * -errno of a failed store when nothing was served.
 */
static ssize_t walk(struct udax_file *f, char *buf, size_t n, uint64_t off, bool write)
{
	size_t done = 0;

	while (done < n) {
		uint64_t pos = off + done;
		bool busy = false;
		struct win *w = win_get(f, pos, write, &busy);
		if (!w && busy && test_flag(&t_busy_fails, "UDAX_TEST_BUSY_FAILS"))
			return done ? (ssize_t)done : -EBUSY;	/* no fallback: a test's negative control */
		if (!w)
			break;
		/* a live window serves only bytes below the true EOF (see the file comment) */
		size_t k = n - done;
		if (k > w->start + w->len - pos)
			k = (size_t)(w->start + w->len - pos);
		char *at = w->addr + (pos - w->start);
		if (write)
			win_populate(w, pos, k);
		struct udax_wire *conn = NULL;
		uint64_t id = 0;
		int err = 0;
		if (!write) {
			memcpy(buf + done, at, k);
		} else {
			err = udax__map_store(w->map, at, buf + done, k);
			/* looked at while the map is held: the stores are in the device */
			if (!err && !test_flag(&t_no_inval, "UDAX_TEST_NO_INVAL") &&
			    !udax__map_cache_clean(w->map) && cache_holds(f, pos, k))
				udax__map_conn(w->map, &conn, &id);
		}
		udax__map_io_put(w->map);
		if (err)
			return done ? (ssize_t)done : err;
		if (conn) {
			err = udax__inval(conn, id, pos, k);
			udax_wire_put(&conn);
			if (err) {
				/*
				 * No daemon to drop the pages: store the piece
				 * again through the mount (which updates them)
				 * and use the mount from now on.
				 */
				atomic_store(&f->no_direct, true);
				ssize_t r = mount_io(f, buf + done, k, pos, true);
				if (r != (ssize_t)k)
					return done ? (ssize_t)done : r < 0 ? r : -EIO;
			}
			atomic_store(&f->dirty, true);
		} else if (write) {
			atomic_store(&f->dirty, true);
		}
		done += k;
	}
	return (ssize_t)done;
}

/* The checks both calls start with.  Return: 0, or -EINVAL. */
static int io_args(struct udax_file *f, const void *buf, size_t *n, off_t off)
{
	if (!f || (!buf && *n))
		return udax__set_err(-EINVAL, "file or buffer is NULL");
	if (off < 0)
		return udax__set_err(-EINVAL, "negative offset");
	if (*n > SSIZE_MAX)
		*n = SSIZE_MAX & ~(size_t)(PAGE - 1);
	return 0;
}

/* Serve directly what @direct allows, the rest through the mount. */
static ssize_t file_io(struct udax_file *f, char *buf, size_t n, uint64_t off, bool direct,
		       bool write)
{
	ssize_t done = direct ? walk(f, buf, n, off, write) : 0;
	if (done < 0 || (size_t)done == n)
		return done;
	ssize_t r = mount_io(f, buf + done, n - (size_t)done, off + (uint64_t)done, write);
	if (r < 0)
		return done ? done : r;
	return done + r;
}

UDAX_EXPORT ssize_t udax_file_pread(struct udax_file *f, void *buf, size_t n, off_t off)
{
	int err = io_args(f, buf, &n, off);
	if (err)
		return err;
	bool direct = f->can_read && !atomic_load(&f->no_direct) &&
		      (uint64_t)off < atomic_load_explicit(&f->eof, memory_order_relaxed);
	return file_io(f, buf, n, (uint64_t)off, direct, false);
}

UDAX_EXPORT ssize_t udax_file_pwrite(struct udax_file *f, const void *buf, size_t n, off_t off)
{
	int err = io_args(f, buf, &n, off);
	if (err)
		return err;
	bool direct = f->can_write && !f->append && !atomic_load(&f->no_direct);
	/*
	 * A write past the size hint: look at the size again (another process
	 * may have grown the file); still past it, the write goes through the
	 * mount, whole (it grows the file).
	 */
	if (direct && (uint64_t)off + n > atomic_load_explicit(&f->eof, memory_order_relaxed)) {
		pthread_mutex_lock(&f->lock);
		direct = refresh_eof(f) == 0 && (uint64_t)off + n <= f->eof;
		pthread_mutex_unlock(&f->lock);
	}
	return file_io(f, (char *)buf, n, (uint64_t)off, direct, true);
}

UDAX_EXPORT int udax_file_sync(struct udax_file *f)
{
	if (!f)
		return udax__set_err(-EINVAL, "file is NULL");
	if (!atomic_exchange(&f->dirty, false))
		return 0;
	/* a touch through the mount: mtime and ctime become "now", as a write(2) leaves them */
	if (syscall(SYS_utimensat, f->fd, NULL, NULL, 0) < 0) {
		int e = errno;
		atomic_store(&f->dirty, true);
		return udax__set_err(-e, "setting mtime after direct writes: %s", strerror(e));
	}
	return 0;
}

UDAX_EXPORT int udax_file_close(struct udax_file **fp)
{
	struct udax_file *f = fp ? *fp : NULL;
	if (!f)
		return 0;
	*fp = NULL;
	int err = udax_file_sync(f);
	for (unsigned int i = 0; i < f->nslots; i++)
		if (f->slot[i])
			win_close(f->slot[i]);
	free(f->slot);
	free(f->busy_until);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return err;
}
