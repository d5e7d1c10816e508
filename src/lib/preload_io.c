// SPDX-License-Identifier: MIT
/*
 * preload_io.c - libudax-preload.so: read()/write() and friends on udaxfs
 * files served from direct layouts (libudax's udax_file), at memory speed.
 *
 * Interposed: read, pread, pread64, readv, preadv, preadv64, preadv2,
 * preadv64v2, write, pwrite, pwrite64, writev, pwritev, pwritev64,
 * pwritev2, pwritev64v2, __read_chk, __pread_chk, __pread64_chk; and, to
 * keep the descriptor table true, close, close_range, fclose, dup2, dup3,
 * open, open64, openat, openat64, fsync, fdatasync.  lseek is the kernel's
 * (the offset lives there).  Everything on a descriptor that is not a
 * regular file on a fuse.udaxfs mount goes to the C library unchanged.
 *
 * Descriptor table: ftab[fd] is NULL (not looked at yet), PF_NOT (not a
 * udaxfs file: pass through), PF_FRESH (opened by this process since its
 * last fork) or a struct pfile.  Entries are installed and removed under
 * the write lock of the descriptor's stripe, with the descriptor's
 * identity (st_dev, st_ino, open flags) checked again under it; a call
 * holds the read lock for its whole duration, so close() never frees a
 * udax_file in use, and a number reused by another file is never served
 * from the old file's windows.
 *
 * The file offset (read, write, readv, writev, preadv2 with offset -1) is
 * the kernel's: lseek(fd, 0, SEEK_CUR), the positional call, lseek(fd,
 * pos, SEEK_SET); FUSE answers both lseeks in the kernel.  Threads of this
 * process are serialised per inode (a striped mutex), so concurrent
 * read()s on one description never return the same bytes.  Another
 * process sharing the description (fork) could interleave with that
 * sequence, so a descriptor that existed at a fork() is "shared" in both
 * parent and child, and its offset-based calls go to the C library (the
 * kernel serialises them); positional calls stay direct.  A description
 * inherited through exec() or received over a socket is not known to be
 * shared: two processes using one description's offset at the same time
 * that way should set UDAX_PRELOAD_IO=pos (only positional calls direct).
 *
 * O_APPEND writes go to the C library (the kernel appends atomically).
 * Calls made by libudax itself pass straight through (in_io).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <udax/udax.h>

#define EXPORT __attribute__((visibility("default")))
#define FUSE_MAGIC_ 0x65735546
#define NSTRIPES 64u
#define FTAB_MAX (1 << 20)

#ifndef RWF_APPEND
#define RWF_APPEND 0x10
#endif
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x8
#endif

struct pfile {
	struct udax_file *uf;
	dev_t dev;
	ino_t ino;
	int flags;			/* F_GETFL at install */
	bool shared;			/* existed at a fork: offset calls through libc */
};

#define PF_NOT ((struct pfile *)1)
#define PF_FRESH ((struct pfile *)2)
#define IS_PF(p) ((uintptr_t)(p) > 2)

static _Atomic(struct pfile *) *ftab;	/* writes under the stripe's write lock */
static int ftab_n;
static pthread_rwlock_t stripes[NSTRIPES];
static pthread_mutex_t offlock[NSTRIPES];	/* by inode: read()/write() offset updates */
static int io_mode = 2;			/* 0 off, 1 positional only, 2 all */
static bool g_forked;			/* this process forked or is a child */
static __thread int in_io;
static pthread_once_t io_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { dev_t dev; bool udax; } devs[32];	/* dev_lock */
static unsigned int ndevs;

#define REAL(name) static __typeof__(name) *real_##name
REAL(read); REAL(pread); REAL(pread64); REAL(readv); REAL(preadv); REAL(preadv64);
REAL(preadv2); REAL(preadv64v2); REAL(write); REAL(pwrite); REAL(pwrite64); REAL(writev);
REAL(pwritev); REAL(pwritev64); REAL(pwritev2); REAL(pwritev64v2); REAL(close);
REAL(fclose); REAL(dup2); REAL(dup3); REAL(fsync); REAL(fdatasync); REAL(lseek64);
static int (*real_close_range)(unsigned int, unsigned int, int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static ssize_t (*real___read_chk)(int, void *, size_t, size_t);
static ssize_t (*real___pread_chk)(int, void *, size_t, off_t, size_t);
static ssize_t (*real___pread64_chk)(int, void *, size_t, off64_t, size_t);

static void *sym(const char *n)
{
	return dlsym(RTLD_NEXT, n);
}

/*
 * Writers first: a close() must not starve behind threads whose I/O calls
 * on other descriptors of the stripe overlap without end.  (Non-recursive:
 * nothing takes a stripe twice; in_io makes a signal handler's call pass.)
 */
static void stripes_init(void)
{
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (unsigned int i = 0; i < NSTRIPES; i++) {
		pthread_rwlock_init(&stripes[i], &a);
		pthread_mutex_init(&offlock[i], NULL);
	}
	pthread_rwlockattr_destroy(&a);
}

static void atfork_parent(void)
{
	g_forked = true;
	for (int i = 0; ftab && i < ftab_n; i++) {
		struct pfile *p = atomic_load(&ftab[i]);
		if (IS_PF(p))
			p->shared = true;
		else if (p == PF_FRESH)
			atomic_store(&ftab[i], NULL);	/* inherited by the child now */
	}
}

static void atfork_child(void)
{
	/*
	 * The windows are not mapped here (MADV_DONTFORK) and libudax starts
	 * afresh: forget the parent's files (leaked: their state belongs to
	 * the parent) but remember the descriptors were inherited: shared.
	 */
	g_forked = true;
	stripes_init();
	for (int i = 0; ftab && i < ftab_n; i++)
		if (atomic_load(&ftab[i]) != PF_NOT)
			atomic_store(&ftab[i], NULL);
	pthread_mutex_init(&dev_lock, NULL);
}

static void io_init(void)
{
	in_io++;
#define R(n) real_##n = (__typeof__(real_##n))sym(#n)
	R(read); R(pread); R(pread64); R(readv); R(preadv); R(preadv64); R(preadv2);
	R(preadv64v2); R(write); R(pwrite); R(pwrite64); R(writev); R(pwritev); R(pwritev64);
	R(pwritev2); R(pwritev64v2); R(close); R(fclose); R(dup2); R(dup3); R(fsync);
	R(fdatasync); R(lseek64); R(close_range); R(open); R(open64); R(openat); R(openat64);
	R(__read_chk); R(__pread_chk); R(__pread64_chk);
#undef R
	const char *e = getenv("UDAX_PRELOAD_IO");
	if (e && (!strcmp(e, "0") || !strcmp(e, "off")))
		io_mode = 0;
	else if (e && !strcmp(e, "pos"))
		io_mode = 1;
	struct rlimit rl;
	ftab_n = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY ?
		 (int)(rl.rlim_max < FTAB_MAX ? rl.rlim_max : FTAB_MAX) : FTAB_MAX;
	/* virtual until touched: a page of entries per 512 descriptors in use */
	ftab = calloc((size_t)ftab_n, sizeof(*ftab));
	if (!ftab)
		io_mode = 0;
	stripes_init();
	pthread_atfork(NULL, atfork_parent, atfork_child);
	in_io--;
}

__attribute__((constructor)) static void io_ctor(void)
{
	pthread_once(&io_once, io_init);
}

static inline void ensure(void)
{
	if (__builtin_expect(!real_read, 0))
		pthread_once(&io_once, io_init);
}

static bool dev_is_udax(int fd, dev_t dev)
{
	pthread_mutex_lock(&dev_lock);
	for (unsigned int i = 0; i < ndevs; i++)
		if (devs[i].dev == dev) {
			bool y = devs[i].udax;
			pthread_mutex_unlock(&dev_lock);
			return y;
		}
	pthread_mutex_unlock(&dev_lock);
	struct statfs sfs;
	bool yes = false;
	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == FUSE_MAGIC_) {
		char line[4096];
		FILE *f = fopen("/proc/self/mountinfo", "re");
		while (f && fgets(line, sizeof(line), f)) {
			unsigned int ma, mi;
			char type[128], *sep = strstr(line, " - ");
			if (sep && sscanf(line, "%*u %*u %u:%u", &ma, &mi) == 2 &&
			    sscanf(sep + 3, "%127s", type) == 1 && makedev(ma, mi) == dev)
				yes = strcmp(type, "fuse.udaxfs") == 0;
		}
		if (f)
			real_fclose(f);
	}
	pthread_mutex_lock(&dev_lock);
	if (ndevs < sizeof(devs) / sizeof(devs[0]))
		devs[ndevs++] = (typeof(devs[0])){ dev, yes };
	pthread_mutex_unlock(&dev_lock);
	return yes;
}

static pthread_rwlock_t *stripe(int fd)
{
	return &stripes[(unsigned int)fd % NSTRIPES];
}

/* Drop fd's entry.  Context: stripe write lock held. */
static void drop_locked(int fd)
{
	if (fd < 0 || fd >= ftab_n)
		return;
	struct pfile *p = atomic_exchange(&ftab[fd], NULL);
	if (IS_PF(p)) {
		udax_file_close(&p->uf);
		free(p);
	}
}

/*
 * Look @fd up, classifying it the first time.
 * Return: a pfile with the stripe's read lock held (release with pf_put),
 * or NULL: pass the call to the C library.
 */
static struct pfile *pf_get(int fd)
{
	ensure();
	if (in_io || !io_mode || fd < 0 || fd >= ftab_n)
		return NULL;
	struct pfile *p = atomic_load_explicit(&ftab[fd], memory_order_acquire);
	if (p == PF_NOT)
		return NULL;
	if (!IS_PF(p)) {
		in_io++;
		struct stat st;
		int fl = fcntl(fd, F_GETFL);
		bool udax = fl >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			    dev_is_udax(fd, st.st_dev);
		struct pfile *np = PF_NOT;
		if (udax) {
			np = calloc(1, sizeof(*np));
			if (np && udax_file_open(&np->uf, fd, 0) != 0) {
				free(np);
				np = NULL;
			}
			if (!np) {
				in_io--;
				return NULL;	/* try again next time */
			}
			np->dev = st.st_dev;
			np->ino = st.st_ino;
			np->flags = fl;
			np->shared = g_forked && p != PF_FRESH;
		}
		/* install under the write lock, if fd is still what we looked at */
		pthread_rwlock_wrlock(stripe(fd));
		struct stat st2;
		int fl2 = fcntl(fd, F_GETFL);
		struct pfile *cur = atomic_load(&ftab[fd]);
		bool same = fl2 == fl && (!udax || (fstat(fd, &st2) == 0 && st2.st_dev == st.st_dev &&
						    st2.st_ino == st.st_ino));
		if (fl < 0 || !same || IS_PF(cur) || cur == PF_NOT) {
			pthread_rwlock_unlock(stripe(fd));
			if (IS_PF(np)) {
				udax_file_close(&np->uf);
				free(np);
			}
			in_io--;
			return NULL;	/* changed under us: libc this time */
		}
		atomic_store_explicit(&ftab[fd], np, memory_order_release);
		pthread_rwlock_unlock(stripe(fd));
		in_io--;
		if (np == PF_NOT)
			return NULL;
		p = np;
	}
	in_io++;		/* first: a signal handler's write() here passes through */
	pthread_rwlock_rdlock(stripe(fd));
	if (atomic_load(&ftab[fd]) != p) {
		pthread_rwlock_unlock(stripe(fd));
		in_io--;
		return NULL;
	}
	return p;
}

static void pf_put(int fd)
{
	pthread_rwlock_unlock(stripe(fd));
	in_io--;
}

static pthread_mutex_t *off_lock(const struct pfile *p)
{
	return &offlock[((uint64_t)p->ino * 0x9e3779b97f4a7c15ull >> 40) % NSTRIPES];
}

static ssize_t ret(ssize_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* ---- positional ---- */

/* The vector at @off, piece by piece, through libudax; a short piece ends it. */
static ssize_t do_iov(struct pfile *p, const struct iovec *iov, int cnt, off_t off, bool wr)
{
	ssize_t total = 0;
	for (int i = 0; i < cnt; i++) {
		if (!iov[i].iov_len)
			continue;
		ssize_t r = wr ? udax_file_pwrite(p->uf, iov[i].iov_base, iov[i].iov_len, off + total) :
				 udax_file_pread(p->uf, iov[i].iov_base, iov[i].iov_len, off + total);
		if (r < 0)
			return total ? total : r;
		total += r;
		if ((size_t)r < iov[i].iov_len)
			break;
	}
	return total;
}

static bool iov_ok(const struct iovec *iov, int cnt)
{
	if (cnt < 0 || cnt > IOV_MAX || (cnt && !iov))
		return false;
	size_t sum = 0;
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - sum)
			return false;
		sum += iov[i].iov_len;
	}
	return true;
}

/* Serve a positional call; -ENOSYS: hand it to libc.  Context: pf_get held. */
static ssize_t pos_call(struct pfile *p, const struct iovec *iov, int cnt, off_t off, bool wr)
{
	if (off < 0 || !iov_ok(iov, cnt))
		return -ENOSYS;		/* libc reports EINVAL */
	if (wr && (p->flags & O_APPEND))
		return -ENOSYS;		/* Linux pwrite on O_APPEND appends: the kernel's */
	return do_iov(p, iov, cnt, off, wr);
}

/* Serve an offset call (read/write).  -ENOSYS: hand it to libc.  Context: pf_get held. */
static ssize_t cur_call(struct pfile *p, int fd, const struct iovec *iov, int cnt, bool wr)
{
	if (p->shared || io_mode < 2 || !iov_ok(iov, cnt) || (wr && (p->flags & O_APPEND)))
		return -ENOSYS;
	pthread_mutex_t *ol = off_lock(p);
	pthread_mutex_lock(ol);
	off_t cur = real_lseek64(fd, 0, SEEK_CUR);
	ssize_t r;
	if (cur < 0) {
		r = -errno;
	} else {
		r = do_iov(p, iov, cnt, cur, wr);
		if (r > 0 && real_lseek64(fd, cur + r, SEEK_SET) < 0)
			r = -errno;
	}
	pthread_mutex_unlock(ol);
	return r;
}

/* Serve @call (p_ is the file) on a udaxfs descriptor, else return @fallback (libc). */
#define SERVE(fd, call, fallback)                                              \
	do {                                                                    \
		struct pfile *p_ = pf_get(fd);                                  \
		if (p_) {                                                       \
			ssize_t r_ = (call);                                    \
			pf_put(fd);                                             \
			if (r_ != -ENOSYS)                                      \
				return ret(r_);                                 \
		}                                                               \
		return fallback;                                                \
	} while (0)
#define POS(fd, iov, cnt, off, wr, fallback) SERVE(fd, pos_call(p_, iov, cnt, off, wr), fallback)
#define CUR(fd, iov, cnt, wr, fallback) SERVE(fd, cur_call(p_, fd, iov, cnt, wr), fallback)

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	struct iovec v = { buf, n };
	POS(fd, &v, 1, off, false, real_pread(fd, buf, n, off));
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	struct iovec v = { buf, n };
	POS(fd, &v, 1, off, false, real_pread64(fd, buf, n, off));
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct iovec v = { (void *)buf, n };
	POS(fd, &v, 1, off, true, real_pwrite(fd, buf, n, off));
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	struct iovec v = { (void *)buf, n };
	POS(fd, &v, 1, off, true, real_pwrite64(fd, buf, n, off));
}

EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	POS(fd, iov, cnt, off, false, real_preadv(fd, iov, cnt, off));
}

EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	POS(fd, iov, cnt, off, false, real_preadv64(fd, iov, cnt, off));
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	POS(fd, iov, cnt, off, true, real_pwritev(fd, iov, cnt, off));
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	POS(fd, iov, cnt, off, true, real_pwritev64(fd, iov, cnt, off));
}

/* RWF_HIPRI, RWF_DSYNC, RWF_SYNC keep their meaning directly; APPEND and NOWAIT are the kernel's. */
#define RWF_DIRECT_OK(fl) (((fl) & (RWF_APPEND | RWF_NOWAIT)) == 0)

/* preadv2/pwritev2 and their 64-bit names: offset -1 is the file offset. */
#define V2(fd, iov, cnt, off, fl, wr, fallback)                                \
	do {                                                                    \
		if (!RWF_DIRECT_OK(fl))                                         \
			return fallback;                                        \
		if ((off) == -1)                                                \
			CUR(fd, iov, cnt, wr, fallback);                        \
		POS(fd, iov, cnt, off, wr, fallback);                           \
	} while (0)

EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	V2(fd, iov, cnt, off, fl, false, real_preadv2(fd, iov, cnt, off, fl));
}

EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int fl)
{
	V2(fd, iov, cnt, off, fl, false, real_preadv64v2(fd, iov, cnt, off, fl));
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	V2(fd, iov, cnt, off, fl, true, real_pwritev2(fd, iov, cnt, off, fl));
}

EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int fl)
{
	V2(fd, iov, cnt, off, fl, true, real_pwritev64v2(fd, iov, cnt, off, fl));
}

/* ---- offset ---- */

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct iovec v = { buf, n };
	CUR(fd, &v, 1, false, real_read(fd, buf, n));
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct iovec v = { (void *)buf, n };
	CUR(fd, &v, 1, true, real_write(fd, buf, n));
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	CUR(fd, iov, cnt, false, real_readv(fd, iov, cnt));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	CUR(fd, iov, cnt, true, real_writev(fd, iov, cnt));
}

/* _FORTIFY_SOURCE entry points: the check stays libc's */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen);
EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	ensure();
	if (n > buflen)
		return real___read_chk(fd, buf, n, buflen);
	return read(fd, buf, n);
}

EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	ensure();
	if (n > buflen)
		return real___pread_chk(fd, buf, n, off, buflen);
	return pread(fd, buf, n, off);
}

EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	ensure();
	if (n > buflen)
		return real___pread64_chk(fd, buf, n, off, buflen);
	return pread64(fd, buf, n, off);
}

/* ---- keeping the table true ---- */

/* Forget @fd (about to be closed or replaced), then run @op under the stripe's write lock. */
#define REPLACING(fd, op)                                                       \
	({                                                                      \
		ensure();                                                       \
		__typeof__(op) r_;                                              \
		if (!in_io && (fd) >= 0 && (fd) < ftab_n && atomic_load(&ftab[fd])) { \
			int e_;                                                 \
			in_io++;                                                \
			pthread_rwlock_wrlock(stripe(fd));                      \
			drop_locked(fd);                                        \
			r_ = (op);                                              \
			e_ = errno;                                             \
			pthread_rwlock_unlock(stripe(fd));                      \
			in_io--;                                                \
			errno = e_;                                             \
		} else {                                                        \
			r_ = (op);                                              \
		}                                                               \
		r_;                                                             \
	})

EXPORT int close(int fd)
{
	return REPLACING(fd, real_close(fd));
}

EXPORT int fclose(FILE *stream)
{
	int fd = stream ? fileno(stream) : -1;
	return REPLACING(fd, real_fclose(stream));
}

EXPORT int dup2(int oldfd, int newfd)
{
	if (oldfd == newfd)
		return real_dup2(oldfd, newfd);
	return REPLACING(newfd, real_dup2(oldfd, newfd));
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return REPLACING(newfd, real_dup3(oldfd, newfd, flags));
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	ensure();
	if (!in_io && !(flags & CLOSE_RANGE_CLOEXEC) && ftab) {
		/* forget every entry in the range first: a later call reclassifies */
		for (unsigned int fd = first; fd <= last && fd < (unsigned int)ftab_n; fd++) {
			if (!atomic_load(&ftab[fd]))
				continue;
			in_io++;
			pthread_rwlock_wrlock(stripe((int)fd));
			drop_locked((int)fd);
			pthread_rwlock_unlock(stripe((int)fd));
			in_io--;
		}
	}
	return real_close_range(first, last, flags);
}

/* A descriptor opened since the last fork is not shared with another process. */
static int opened(int fd)
{
	if (fd >= 0 && fd < ftab_n && g_forked && !in_io) {
		in_io++;
		pthread_rwlock_wrlock(stripe(fd));
		struct pfile *p = atomic_load(&ftab[fd]);
		if (!IS_PF(p))
			atomic_store(&ftab[fd], PF_FRESH);
		pthread_rwlock_unlock(stripe(fd));
		in_io--;
	}
	return fd;
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = open_mode(flags, ap);
	va_end(ap);
	ensure();
	return opened(real_open(path, flags, m));
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = open_mode(flags, ap);
	va_end(ap);
	ensure();
	return opened(real_open64(path, flags, m));
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = open_mode(flags, ap);
	va_end(ap);
	ensure();
	return opened(real_openat(dirfd, path, flags, m));
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = open_mode(flags, ap);
	va_end(ap);
	ensure();
	return opened(real_openat64(dirfd, path, flags, m));
}

/* fsync: mtime/ctime of the direct writes first (a touch), then the mount's fsync */
EXPORT int fsync(int fd)
{
	struct pfile *p = pf_get(fd);
	if (p) {
		udax_file_sync(p->uf);
		pf_put(fd);
	}
	return real_fsync(fd);
}

EXPORT int fdatasync(int fd)
{
	struct pfile *p = pf_get(fd);
	if (p) {
		udax_file_sync(p->uf);
		pf_put(fd);
	}
	return real_fdatasync(fd);
}
