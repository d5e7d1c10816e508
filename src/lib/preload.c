// SPDX-License-Identifier: MIT
/*
 * preload.c - libudax-preload.so: give unmodified programs direct mappings
 * of udaxfs files (LD_PRELOAD=libudax-preload.so program ...).
 *
 * mmap()/mmap64() of a file on a udaxfs mount with MAP_SHARED, or with
 * MAP_SHARED_VALIDATE|MAP_SYNC (which FUSE alone refuses with EOPNOTSUPP),
 * gets a direct mapping of the device pages through libudax, at the address
 * the caller asked for (MAP_FIXED honoured).  munmap() gives the layout
 * back, msync() is a CPU cache flush, mremap() of such a mapping may shrink it
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
 * Why the shim places its mappings itself instead of calling libudax's
 * map functions: libpmem2 and libpmem reserve an address range and then
 * map the file MAP_FIXED into it, so the mapping must land exactly there;
 * and libudax registers its tmpfs maps with libpmem2
 * (pmem2_map_from_existing), which makes the application's own
 * pmem2_map_new() of the same range fail with PMEM2_E_MAP_EXISTS.  Its
 * protocol traffic goes through wire.h, the client libudax uses too:
 * HELLO ioctl, one connection per daemon, MAP with the ticket and the
 * address, UNMAP on munmap, RETURN on a recall.
 *
 * Recalls: the connection's reader thread calls pmap_recall(), which
 * replaces a recalled range with the empty memfd (SIGBUS on access, as
 * after a kernel truncate) and gives the layout back.  The program is not
 * told; it sees SIGBUS if it touches the range again.  A recall that
 * overtook its MAP reply is held by wire.c and delivered when the mapping
 * registers (direct_mmap), so it never misses the fresh mapping.  The end
 * of the connection (the daemon died) is handled as a recall of every
 * mapping made through it.  A forked child gets its own connection
 * (wire.c) and ignores the parent's entries in the table (pmap.pid).
 *
 * Thread safety: the mapping table has one mutex (tbl_lock), never held
 * while calling into wire.c except udax_wire_send; calls made by the shim
 * itself pass straight through (a per-thread flag).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "wire.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#define FUSE_SUPER_MAGIC_ 0x65735546
#define EXPORT __attribute__((visibility("default")))


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
	struct udax_wire *w;		/* the layout's connection (a reference), or NULL */
	bool held;			/* tbl_lock: the layout is ours (not recalled,
					 * not given back, the daemon alive) */
	bool registered;		/* recalls reach it (udax_wire_layout_add) */
	uint64_t id;			/* layout id on that connection */
	bool devdax;
	int prot;			/* the caller's (a recall keeps it: a store raises SIGBUS) */
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

/* ---- the layout protocol: through wire.h ---- */

/* One request, its reply (the daemon's reason for a refusal goes to dbg). */
static int call(struct udax_wire *w, uint16_t type, const void *p, uint32_t len, void **rp,
		uint32_t *rlen)
{
	void *rep = NULL;
	uint32_t n = 0;
	int ret = udax_wire_call(w, type, p, len, &rep, &n, NULL);

	if (ret < 0 && rep && n)
		dbg("daemon: %s", (char *)rep);
	if (ret == 0 && rp) {
		*rp = rep;
		*rlen = n;
	} else {
		free(rep);
	}
	return ret;
}

/*
 * A recall of @arg's layout, or the end of its connection (the daemon died,
 * the file system was unmounted): make the range SIGBUS, then give the
 * layout back (a lost daemon needs no answer).  The program is not told.
 * Context: the connection's reader thread, or direct_mmap() registering
 * a layout whose recall came before (wire.h).
 */
static void pmap_recall(void *arg, const struct udax_recall_msg *r, bool daemon_lost)
{
	struct pmap *pm = arg;

	in_shim++;
	pthread_mutex_lock(&tbl_lock);
	if (pm->held) {
		if (pm->granted)
			sigbus_back(pm->addr, pm->granted, pm->prot);
		pm->held = false;	/* nothing to UNMAP at munmap */
		dbg("%s %p+%zu: SIGBUS from now on", daemon_lost ? "daemon lost," : "recalled",
		    (void *)pm->addr, pm->granted);
	}
	pthread_mutex_unlock(&tbl_lock);
	if (r && !daemon_lost) {
		struct udax_return_req rr = { .id = r->id, .recall_seq = r->recall_seq };

		udax_wire_send(pm->w, UDAX_REQ_RETURN, &rr, sizeof(rr));
	}
	in_shim--;
}

/* Test only (libudax-preload(7)): stall between the MAP reply and registering the layout. */
static void test_map_delay(void)
{
	const char *e = getenv("UDAX_PRELOAD_TEST_MAP_DELAY_MS");
	long ms = e ? strtol(e, NULL, 10) : 0;

	if (ms > 0) {
		dbg("test: stalling %ld ms after the MAP reply", ms);
		usleep((useconds_t)ms * 1000);
	}
}

/*
 * Ask for [off, off+len) of @fd and map it at exactly @at.  Return 0 with a
 * reference to the layout's connection and its id (the caller registers
 * the layout for recalls), -EPERM / -ENOTTY (not allowed / not ours: the
 * caller passes through), or -errno.
 */
static int layout_map(int fd, char *at, off_t off, size_t len, bool write,
		      struct udax_wire **wp, uint64_t *id, bool *devdax)
{
	struct udax_ioc_hello hello;
	struct udax_map_req rq = { .off = (uint64_t)off, .len = len,
				   .prot = UDAX_PROT_READ | (write ? UDAX_PROT_WRITE : 0),
				   /* mmap(2) never changes the size (the last page may
				    * reach past EOF: see "End of file" above) */
				   .flags = UDAX_MAP_F_KEEP_SIZE,
				   .addr = (uint64_t)(uintptr_t)at };
	struct udax_map_rep rep;
	struct udax_wire *w = NULL;
	void *rp = NULL;
	uint32_t rlen = 0;
	int ret;

	for (int attempt = 0;; attempt++) {
		ret = udax_wire_hello(fd, &hello);
		if (ret < 0)
			return ret == -EPERM || ret == -EACCES ? -EPERM : -ENOTTY;
		if (!(hello.flags & UDAX_HELLO_ALLOWED)) {
			udax_wire_put(&w);
			return -EPERM;
		}
		if (!w) {
			ret = udax_wire_get(&w, hello.sock);
			if (ret < 0) {
				dbg("connecting to %s: %s", hello.sock, strerror(-ret));
				return -ECONNREFUSED;
			}
		}
		memcpy(rq.ticket, hello.ticket, sizeof(rq.ticket));
		ret = call(w, UDAX_REQ_MAP, &rq, sizeof(rq), &rp, &rlen);
		if (ret != -EBUSY || attempt > 200)
			break;
		usleep(attempt < 10 ? 1000 : 10000);	/* a recall is under way */
	}
	if (ret < 0) {
		udax_wire_put(&w);
		return ret;
	}
	test_map_delay();
	if (rlen < sizeof(rep)) {
		free(rp);
		udax_wire_put(&w);
		return -EPROTO;
	}
	memcpy(&rep, rp, sizeof(rep));
	const struct udax_run *runs = (const struct udax_run *)((char *)rp + sizeof(rep));
	struct udax_id_req ir = { .id = rep.id };
	if (rlen < sizeof(rep) + (size_t)rep.nruns * sizeof(*runs) || rep.off != (uint64_t)off ||
	    rep.len != len) {
		ret = -EPROTO;	/* a granted range other than the one asked for */
		goto fail;
	}
	/* the latest device descriptor: this reply's or an earlier one's */
	int dev = udax_wire_dev_fd(w);
	if (dev < 0) {
		ret = -EPROTO;
		goto fail;
	}
	int prot = PROT_READ | (write ? PROT_WRITE : 0);
	int flags = MAP_FIXED | (rep.media_kind == 1 ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED);
	size_t pos = 0;
	for (uint32_t i = 0; i < rep.nruns; i++) {
		if (pos + runs[i].len > len ||
		    real_mmap(at + pos, runs[i].len, prot, flags, dev, (off_t)runs[i].dev_off) ==
		    MAP_FAILED) {
			ret = pos + runs[i].len > len ? -EPROTO : -errno;
			goto fail;
		}
		pos += runs[i].len;
	}
	if (pos != len) {
		ret = -EPROTO;
		goto fail;
	}
	free(rp);
	*wp = w;
	*id = rep.id;
	*devdax = rep.media_kind == 1;
	return 0;
fail:
	free(rp);
	call(w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL);
	udax_wire_put(&w);
	return ret;
}

/* Give a layout back (munmap).  The range must already be replaced. */
static void layout_unmap(struct udax_wire *w, uint64_t id)
{
	struct udax_id_req ir = { .id = id };

	call(w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL);
}

/* msync on a direct mapping: write the CPU caches back, then fence. */
static void persist(const void *addr, size_t len)
{
#if defined(__x86_64__) || defined(__i386__)
	for (uintptr_t p = (uintptr_t)addr & ~(uintptr_t)63; p < (uintptr_t)addr + len; p += 64)
		__builtin_ia32_clflush((const void *)p);
	__builtin_ia32_sfence();
#else
	real_msync((void *)((uintptr_t)addr & ~(uintptr_t)(page_size - 1)),
		   len + ((uintptr_t)addr & (uintptr_t)(page_size - 1)), MS_SYNC);
#endif
}

static void pmap_close(struct pmap *pm);

/*
 * The direct path.  Return the address, or MAP_FAILED with errno set;
 * *pass = true when the caller should fall back to the C library (not
 * allowed direct access).
 */
static void *direct_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t off,
			 const struct stat *st, bool *pass)
{
	size_t len = round_up(length), granted;
	bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE), devdax = false;
	struct udax_wire *w = NULL;
	uint64_t id = 0;
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
	/* grant only up to EOF rounded to a page (see the header comment) */
	uint64_t eof = round_up((size_t)st->st_size);
	granted = (uint64_t)off >= eof ? 0 : (size_t)((eof - (uint64_t)off) < len ? eof - (uint64_t)off : len);

	/* the whole range first: the caller's address, or one we reserve */
	if (fixed) {
		base = addr;
		if (!(flags & MAP_FIXED) &&
		    real_mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			      -1, 0) == MAP_FAILED)
			return MAP_FAILED;
	} else {
		base = real_mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
		if (base == MAP_FAILED)
			return MAP_FAILED;
	}
	if (granted) {
		ret = layout_map(fd, base, off, granted, prot & PROT_WRITE, &w, &id, &devdax);
		if (ret < 0) {
			dbg("layout of off %lld len %zu: %s", (long long)off, granted, strerror(-ret));
			if (!fixed)
				real_munmap(base, len);
			/* not allowed direct access: the ordinary FUSE path */
			*pass = ret == -EPERM || ret == -ENOTTY;
			errno = -ret;
			return MAP_FAILED;
		}
		if ((prot & ~(PROT_READ | PROT_WRITE)) || !(prot & PROT_READ))
			mprotect(base, granted, prot);
		/* as libudax does: a child must not keep the device pages after a
		 * recall here replaced them (it could reach reused blocks) */
		madvise(base, granted, MADV_DONTFORK);
	}
	pm = calloc(1, sizeof(*pm));
	ret = !pm ? -ENOMEM : granted < len ? sigbus_back(base + granted, len - granted, prot) : 0;
	if (ret < 0) {
		free(pm);
		real_munmap(base, len);	/* no access reaches the blocks once they go */
		if (w)
			layout_unmap(w, id);
		udax_wire_put(&w);
		errno = -ret;
		return MAP_FAILED;
	}
	*pm = (struct pmap){ .addr = base, .len = len, .granted = granted, .live = len,
			     .w = w, .held = w != NULL, .id = id, .devdax = devdax, .prot = prot,
			     .pid = getpid() };
	pthread_mutex_lock(&tbl_lock);
	pm->next = tbl;
	tbl = pm;
	pthread_mutex_unlock(&tbl_lock);
	/*
	 * Recalls reach the mapping from now on.  One that came while the
	 * range was being mapped (it overtook the MAP reply) is delivered
	 * right here: pmap_recall() replaces the fresh mapping by the SIGBUS
	 * backing and gives the layout back before the caller sees the address.
	 */
	if (w) {
		ret = udax_wire_layout_add(w, id, pmap_recall, pm);
		if (ret < 0) {
			/* never keep a mapping that a recall could not reach */
			struct pmap **pp = &tbl;

			pthread_mutex_lock(&tbl_lock);
			while (*pp != pm)
				pp = &(*pp)->next;
			*pp = pm->next;
			pthread_mutex_unlock(&tbl_lock);
			pmap_close(pm);
			errno = -ret;
			return MAP_FAILED;
		}
		pm->registered = true;
	}
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

/* Unmap @pm's range and give its layout back.  Context: tbl_lock not held. */
static void pmap_close(struct pmap *pm)
{
	/* address space first, so no access can reach the blocks once they go */
	real_munmap(pm->addr, pm->len);
	if (pm->pid == getpid() && pm->w) {
		/* no recall for it from now on (waits for one running) */
		if (pm->registered)
			udax_wire_layout_del(pm->w, pm->id);
		pthread_mutex_lock(&tbl_lock);
		bool held = pm->held;
		pm->held = false;
		pthread_mutex_unlock(&tbl_lock);
		if (held)
			layout_unmap(pm->w, pm->id);
		udax_wire_put(&pm->w);
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

	resolve();
	if (in_shim || !tbl)
		return real_msync(addr, length, flags);
	pthread_mutex_lock(&tbl_lock);
	pm = find(addr, length);
	if (!pm) {
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
	if (l && pm->held)
		persist(addr, l);
	pthread_mutex_unlock(&tbl_lock);
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
