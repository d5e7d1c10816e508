// SPDX-License-Identifier: MIT
/*
 * preload.c - libudax-preload.so: give unmodified programs direct mappings
 * of udaxfs files (LD_PRELOAD=libudax-preload.so program ...).
 *
 * mmap()/mmap64() of a file on a udaxfs mount with MAP_SHARED, or with
 * MAP_SHARED_VALIDATE|MAP_SYNC (which FUSE alone refuses with EOPNOTSUPP),
 * gets a direct mapping of the device pages through libudax, at the address
 * the caller asked for (MAP_FIXED honoured).  munmap() gives the layout
 * back, msync() is udax_persist(), mremap() of such a mapping may shrink it
 * but not grow or move it (ENOMEM, as the kernel says when it cannot).
 * Every other mapping goes straight to the C library.  See libudax-preload(7).
 *
 * End of file: a kernel mapping of a file may extend past EOF; touching a
 * page wholly past EOF raises SIGBUS.  Granting those pages would allocate
 * them and extend the file (a direct mapping has no fault handler), so the
 * shim maps only up to EOF rounded up to a page, and backs the rest of the
 * range with an empty memfd, where an access raises SIGBUS just as with
 * the kernel.  Unlike the kernel, a later extension of the file does not
 * make those pages appear: map again after growing the file.
 *
 * Partial munmap: the unmapped part is replaced by an inaccessible
 * reservation (an access raises SIGSEGV, as after munmap) and the layout
 * is given back when the last part of it is unmapped; the address range is
 * reusable once the whole mapping has been unmapped.
 *
 * Thread safety: the mapping table has one mutex; calls made by libudax
 * itself (it maps the device) pass straight through (a per-thread flag).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <udax/udax.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#define FUSE_SUPER_MAGIC_ 0x65735546
#define EXPORT __attribute__((visibility("default")))

/* Placement: newer libudax has it; without it MAP_FIXED requests pass through. */
extern int udax_map_open_at(struct udax_map **out, void *addr, int fd, off_t off, size_t len,
			    int prot, const struct udax_map_opts *o) __attribute__((weak));

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef int (*msync_fn)(void *, size_t, int);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);

static mmap_fn real_mmap, real_mmap64;
static munmap_fn real_munmap;
static msync_fn real_msync;
static mremap_fn real_mremap;

static __thread int in_shim;		/* libudax's own calls pass through */
static bool debug;
static long page_size = 4096;

struct pmap {
	char *addr;			/* start of the caller's range */
	size_t len;			/* caller's range, page rounded */
	size_t granted;			/* [addr, addr+granted) is the direct mapping */
	size_t live;			/* bytes of the range not yet munmapped */
	struct udax_map *map;		/* NULL once given back */
	pid_t pid;			/* the process that made it (fork) */
	struct pmap *next;
};

static pthread_mutex_t tbl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pmap *tbl;		/* tbl_lock */

/* st_dev -> is it udaxfs; a few entries are enough (tbl_lock) */
static struct { dev_t dev; bool udax; } devcache[32];
static unsigned int ndevcache;

static int sigbus_fd = -1;		/* empty memfd: accesses raise SIGBUS */

static void dbg(const char *fmt, ...)
{
	va_list ap;

	if (!debug)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "udax-preload[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

__attribute__((constructor)) static void shim_init(void)
{
	in_shim++;
	real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	real_mmap64 = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
	real_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	real_msync = (msync_fn)dlsym(RTLD_NEXT, "msync");
	real_mremap = (mremap_fn)dlsym(RTLD_NEXT, "mremap");
	if (!real_mmap64)
		real_mmap64 = real_mmap;
	page_size = sysconf(_SC_PAGESIZE);
	debug = getenv("UDAX_PRELOAD_DEBUG") && *getenv("UDAX_PRELOAD_DEBUG") != '0';
	in_shim--;
}

static void resolve(void)
{
	if (!real_mmap)
		shim_init();
}

/* Is @dev a fuse.udaxfs mount?  Look in /proc/self/mountinfo. */
static bool mountinfo_is_udax(dev_t dev)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool yes = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned int ma, mi;
		char *sep = strstr(line, " - ");
		char type[128];

		if (!sep || sscanf(line, "%*u %*u %u:%u", &ma, &mi) != 2 ||
		    sscanf(sep + 3, "%127s", type) != 1)
			continue;
		if (makedev(ma, mi) == dev)
			yes = strcmp(type, "fuse.udaxfs") == 0;
	}
	fclose(f);
	return yes;
}

static bool is_udaxfs(int fd, struct stat *st)
{
	struct statfs sfs;
	bool yes;

	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))
		return false;
	pthread_mutex_lock(&tbl_lock);
	for (unsigned int i = 0; i < ndevcache; i++)
		if (devcache[i].dev == st->st_dev) {
			yes = devcache[i].udax;
			pthread_mutex_unlock(&tbl_lock);
			return yes;
		}
	pthread_mutex_unlock(&tbl_lock);
	yes = fstatfs(fd, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC_ &&
	      mountinfo_is_udax(st->st_dev);
	pthread_mutex_lock(&tbl_lock);
	if (ndevcache < sizeof(devcache) / sizeof(devcache[0])) {
		devcache[ndevcache].dev = st->st_dev;
		devcache[ndevcache++].udax = yes;
	}
	pthread_mutex_unlock(&tbl_lock);
	return yes;
}

static size_t round_up(size_t x)
{
	return (x + (size_t)page_size - 1) & ~((size_t)page_size - 1);
}

/* Back [addr, addr+len) with the empty memfd (SIGBUS on access). */
static int sigbus_back(void *addr, size_t len, int prot)
{
	if (sigbus_fd < 0) {
		int fd = memfd_create("udax-preload-eof", MFD_CLOEXEC);

		if (fd < 0)
			return -errno;
		if (!__sync_bool_compare_and_swap(&sigbus_fd, -1, fd))
			close(fd);
	}
	void *p = real_mmap(addr, len, prot ? prot : PROT_READ, MAP_SHARED | MAP_FIXED, sigbus_fd, 0);
	return p == MAP_FAILED ? -errno : 0;
}

/*
 * The direct path.  Return the address, or MAP_FAILED with errno set;
 * *pass = true when the caller should fall back to the C library (not
 * allowed direct access, or no placement support for a MAP_FIXED request).
 */
static void *direct_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t off,
			 const struct stat *st, bool *pass)
{
	size_t len = round_up(length), granted;
	bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	struct udax_map *map = NULL;
	struct pmap *pm;
	char *base;
	int ret, accmode = fcntl(fd, F_GETFL) & O_ACCMODE;

	*pass = false;
	if (length == 0 || off < 0 || (off & (page_size - 1))) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (accmode == O_WRONLY || ((prot & PROT_WRITE) && accmode != O_RDWR)) {
		errno = EACCES;		/* what the kernel says for MAP_SHARED */
		return MAP_FAILED;
	}
	if (fixed && !udax_map_open_at) {
		dbg("MAP_FIXED needs udax_map_open_at(), not in this libudax: passing through");
		*pass = true;
		return MAP_FAILED;
	}
	/* grant only up to EOF rounded to a page (see the header comment) */
	uint64_t eof = round_up((size_t)st->st_size);
	granted = (uint64_t)off >= eof ? 0 : (size_t)((eof - (uint64_t)off) < len ? eof - (uint64_t)off : len);

	/* the whole range first: the caller's address, or one we reserve */
	if (fixed) {
		base = addr;
		if ((flags & MAP_FIXED_NOREPLACE) && !(flags & MAP_FIXED)) {
			void *p = real_mmap(addr, len, PROT_NONE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (p == MAP_FAILED)
				return MAP_FAILED;
		}
	} else {
		base = real_mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
		if (base == MAP_FAILED)
			return MAP_FAILED;
	}
	if (granted) {
		int uprot = PROT_READ | (prot & PROT_WRITE);

		if (udax_map_open_at)
			ret = udax_map_open_at(&map, base, fd, off, granted, uprot, NULL);
		else
			ret = udax_map_open(&map, fd, off, granted, uprot, NULL);
		if (ret < 0) {
			dbg("udax_map_open(off %lld, len %zu): %s: %s", (long long)off, granted,
			    strerror(-ret), udax_last_error());
			if (!fixed)
				real_munmap(base, len);
			/* not allowed direct access: the ordinary FUSE path */
			*pass = ret == -EPERM || ret == -ENOTTY || ret == -EOPNOTSUPP;
			errno = -ret;
			return MAP_FAILED;
		}
		if (!udax_map_open_at) {
			/* no placement: use the library's own address */
			real_munmap(base, len);
			base = udax_map_addr(map);
			if (granted < len) {
				/* the tail must sit right after it: reserve and check */
				void *t = real_mmap(base + granted, len - granted, PROT_NONE,
						    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
				if (t == MAP_FAILED) {
					udax_map_close(&map);
					errno = ENOMEM;
					return MAP_FAILED;
				}
			}
		}
		if ((prot & ~(PROT_READ | PROT_WRITE)) || !(prot & PROT_READ))
			mprotect(base, granted, prot);
	}
	if (granted < len && sigbus_back(base + granted, len - granted, prot) < 0) {
		int e = errno;

		udax_map_close(&map);
		errno = e;
		return MAP_FAILED;
	}
	pm = calloc(1, sizeof(*pm));
	if (!pm) {
		udax_map_close(&map);
		real_munmap(base, len);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	*pm = (struct pmap){ .addr = base, .len = len, .granted = granted, .live = len,
			     .map = map, .pid = getpid() };
	pthread_mutex_lock(&tbl_lock);
	pm->next = tbl;
	tbl = pm;
	pthread_mutex_unlock(&tbl_lock);
	dbg("direct mapping %p+%zu (granted %zu) of fd %d off %lld%s%s", (void *)base, len, granted,
	    fd, (long long)off, fixed ? " MAP_FIXED" : "", (flags & MAP_SYNC) ? " MAP_SYNC" : "");
	return base;
}

static void *shim_mmap(mmap_fn real, void *addr, size_t length, int prot, int flags, int fd,
		       off_t off)
{
	int type = flags & MAP_TYPE;
	struct stat st;
	bool pass;

	resolve();
	if (in_shim || fd < 0 || (flags & MAP_ANONYMOUS) ||
	    (type != MAP_SHARED && type != MAP_SHARED_VALIDATE))
		return real(addr, length, prot, flags, fd, off);
	in_shim++;
	int saved = errno;
	if (!is_udaxfs(fd, &st)) {
		errno = saved;
		in_shim--;
		return real(addr, length, prot, flags, fd, off);
	}
	void *p = direct_mmap(addr, length, prot, flags, fd, off, &st, &pass);
	in_shim--;
	if (p == MAP_FAILED && pass) {
		errno = saved;
		return real(addr, length, prot, flags, fd, off);
	}
	return p;
}

EXPORT void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t off)
{
	resolve();
	return shim_mmap(real_mmap, addr, length, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t off)
{
	resolve();
	return shim_mmap(real_mmap64, addr, length, prot, flags, fd, off);
}

/* Give back the layout of @pm and free it.  Context: tbl_lock not held. */
static void pmap_close(struct pmap *pm)
{
	if (pm->map && pm->pid == getpid()) {
		in_shim++;
		udax_map_close(&pm->map);	/* unmaps [addr, addr+granted) */
		in_shim--;
	}
	free(pm);
}

EXPORT int munmap(void *addr, size_t length)
{
	char *a = addr, *e;
	struct pmap **pp, *done = NULL;
	int ret;

	resolve();
	if (in_shim || !tbl)
		return real_munmap(addr, length);
	if (((uintptr_t)a & (page_size - 1)) || length == 0) {
		errno = EINVAL;
		return -1;
	}
	e = a + round_up(length);
	in_shim++;
	pthread_mutex_lock(&tbl_lock);
	for (pp = &tbl; *pp;) {
		struct pmap *pm = *pp;
		char *lo = pm->addr > a ? pm->addr : a;
		char *hi = pm->addr + pm->len < e ? pm->addr + pm->len : e;

		if (lo >= hi) {
			pp = &pm->next;
			continue;
		}
		if (pm->pid != getpid()) {
			/* inherited over fork: the parent owns the layout */
			*pp = pm->next;
			free(pm);
			continue;
		}
		pm->live -= (size_t)(hi - lo) <= pm->live ? (size_t)(hi - lo) : pm->live;
		if (pm->live == 0 || (lo == pm->addr && hi == pm->addr + pm->len)) {
			*pp = pm->next;
			pm->next = done;
			done = pm;
			continue;
		}
		/* partial: keep the layout, make the part inaccessible (see above) */
		real_mmap(lo, (size_t)(hi - lo), PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		dbg("partial munmap %p+%zu of %p+%zu: layout kept until the rest goes", (void *)lo,
		    (size_t)(hi - lo), (void *)pm->addr, pm->len);
		pp = &pm->next;
	}
	pthread_mutex_unlock(&tbl_lock);
	while (done) {
		struct pmap *n = done->next;
		char *b = done->addr;
		size_t l = done->len;

		dbg("munmap %p+%zu: layout given back", (void *)b, l);
		pmap_close(done);
		real_munmap(b, l);	/* the tail and any partial reservations */
		done = n;
	}
	/* and whatever else the caller asked to unmap */
	ret = real_munmap(addr, length);
	in_shim--;
	return ret;
}

/* Find the direct mapping holding [a, a+len).  Context: tbl_lock held. */
static struct pmap *find(char *a, size_t len)
{
	for (struct pmap *pm = tbl; pm; pm = pm->next)
		if (a >= pm->addr && a + len <= pm->addr + pm->len && pm->pid == getpid())
			return pm;
	return NULL;
}

EXPORT int msync(void *addr, size_t length, int flags)
{
	struct pmap *pm;
	int ret;

	resolve();
	if (in_shim || !tbl)
		return real_msync(addr, length, flags);
	pthread_mutex_lock(&tbl_lock);
	pm = find(addr, length);
	if (!pm || !pm->map) {
		pthread_mutex_unlock(&tbl_lock);
		return real_msync(addr, length, flags);
	}
	if (((uintptr_t)addr & (page_size - 1)) ||
	    (flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE)) ||
	    ((flags & MS_ASYNC) && (flags & MS_SYNC))) {
		pthread_mutex_unlock(&tbl_lock);
		errno = EINVAL;
		return -1;
	}
	/* stores go straight to the device: msync is a CPU flush of the granted part */
	size_t l = length;
	char *g_end = pm->addr + pm->granted;
	if ((char *)addr + l > g_end)
		l = (char *)addr >= g_end ? 0 : (size_t)(g_end - (char *)addr);
	in_shim++;
	ret = l ? udax_persist(pm->map, addr, l) : 0;
	in_shim--;
	pthread_mutex_unlock(&tbl_lock);
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return 0;
}

EXPORT void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...)
{
	void *new_addr = NULL;
	struct pmap *pm;
	va_list ap;

	resolve();
	va_start(ap, flags);
	if (flags & MREMAP_FIXED)
		new_addr = va_arg(ap, void *);
	va_end(ap);
	if (!in_shim && tbl) {
		pthread_mutex_lock(&tbl_lock);
		pm = find(old, old_size ? old_size : 1);
		pthread_mutex_unlock(&tbl_lock);
		if (pm) {
			/* a direct mapping cannot move or grow: shrinking is a munmap of the tail */
			if (round_up(new_size) <= round_up(old_size) && !(flags & MREMAP_FIXED) &&
			    new_size) {
				if (round_up(new_size) < round_up(old_size) &&
				    munmap((char *)old + round_up(new_size),
					   round_up(old_size) - round_up(new_size)) < 0)
					return MAP_FAILED;
				return old;
			}
			dbg("mremap of a direct mapping refused (ENOMEM)");
			errno = ENOMEM;
			return MAP_FAILED;
		}
	}
	if (flags & MREMAP_FIXED)
		return real_mremap(old, old_size, new_size, flags, new_addr);
	return real_mremap(old, old_size, new_size, flags);
}
