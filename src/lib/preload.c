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
	unsigned int pins;		/* tbl_lock: pin records naming this layout */
	unsigned int inflight;		/* tbl_lock: registrations working on it unlocked */
	bool gone;			/* tbl_lock: munmapped while pinned: on the ghosts
					 * list, the layout kept (UNMAP sent) until unpinned
					 * or recalled */
	pid_t pid;			/* the process that made it (fork) */
	struct pmap *next;
};

static pthread_mutex_t tbl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pmap *tbl;		/* tbl_lock */
static struct pmap *ghosts;		/* tbl_lock: munmapped, still pinned (pmap.gone) */

/*
 * A pin: part of a direct mapping registered as a fixed buffer of one
 * ring, declared to the daemon (UDAX_REQ_PIN) before the kernel took it.
 */
struct pin {
	struct pin *next;		/* pins; tbl_lock */
	struct pmap *pm;		/* the layout (pm->pins counts this record) */
	int ring_fd;			/* in this process; -1 unknown (a registered ring) */
	unsigned int slot;		/* index in the ring's buffer table */
	uint64_t addr, len;		/* the registered part of the mapping */
};
static struct pin *pins;		/* tbl_lock */

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

/*
 * fork: the table must be consistent in the child, whose only thread is
 * the one that forked (a reader thread holding tbl_lock would leave it
 * locked forever there).  The child's own entries are told apart by pid.
 */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&tbl_lock);
}

static void atfork_release(void)
{
	pthread_mutex_unlock(&tbl_lock);
}

__attribute__((constructor)) static void shim_init(void)
{
	static bool once;

	if (!once) {
		once = true;
		pthread_atfork(atfork_prepare, atfork_release, atfork_release);
	}
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

/* Test only (libudax-preload(7)): an env variable's value in ms, 0 if unset. */
static long test_ms(const char *name)
{
	const char *e = getenv(name);

	return e ? strtol(e, NULL, 10) : 0;
}

/* Test only: hold a recall before handling it, so that a test sees it under way. */
static void test_recall_delay(void)
{
	long ms = test_ms("UDAX_PRELOAD_TEST_RECALL_DELAY_MS");

	if (ms > 0)
		usleep((useconds_t)ms * 1000);
}

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
static void ghost_free(struct pmap *pm);

static void pmap_recall(void *arg, const struct udax_recall_msg *r, bool daemon_lost)
{
	struct pmap *pm = arg;
	bool free_ghost = false;

	in_shim++;
	test_recall_delay();
	pthread_mutex_lock(&tbl_lock);
	if (pm->held) {
		if (pm->granted && !pm->gone)
			sigbus_back(pm->addr, pm->granted, pm->prot);
		pm->held = false;	/* nothing to UNMAP at munmap */
		dbg("%s %p+%zu: SIGBUS from now on", daemon_lost ? "daemon lost," : "recalled",
		    (void *)pm->addr, pm->granted);
	}
	/*
	 * Giving the layout back drops its pins in the daemon too.  Records
	 * of registrations still under way (not on the list yet) stay counted
	 * until reg_commit() or reg_abort() drops them.
	 */
	for (struct pin **pp = &pins; *pp;) {
		struct pin *p = *pp;

		if (p->pm != pm) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		pm->pins--;
		free(p);
	}
	if (pm->gone && !pm->inflight && !pm->pins) {
		struct pmap **gp = &ghosts;

		while (*gp && *gp != pm)
			gp = &(*gp)->next;
		if (*gp) {
			*gp = pm->next;
			free_ghost = true;
		}
	}
	pthread_mutex_unlock(&tbl_lock);
	if (r && !daemon_lost) {
		struct udax_return_req rr = { .id = r->id, .recall_seq = r->recall_seq };

		udax_wire_send(pm->w, UDAX_REQ_RETURN, &rr, sizeof(rr));
	}
	if (free_ghost)
		ghost_free(pm);		/* layout_del from its own callback is allowed */
	in_shim--;
}

/* Test only (libudax-preload(7)): stall between the MAP reply and registering the layout. */
static void test_map_delay(void)
{
	long ms = test_ms("UDAX_PRELOAD_TEST_MAP_DELAY_MS");

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

/* Forget a layout that nothing references any more.  Context: tbl_lock not held. */
static void ghost_free(struct pmap *pm)
{
	if (pm->registered)
		udax_wire_layout_del(pm->w, pm->id);
	udax_wire_put(&pm->w);
	free(pm);
}

/*
 * Unmap @pm's range and give its layout back, or, while the layout is
 * pinned (a ring still holds part of it as a fixed buffer: a pin outlives
 * munmap, as with the kernel), drop only the map references (UNMAP) and
 * keep the layout on the ghosts list until the last pin goes or a recall
 * takes it.  Context: tbl_lock not held.
 */
static void pmap_close(struct pmap *pm)
{
	/* address space first, so no access can reach the blocks once they go */
	real_munmap(pm->addr, pm->len);
	if (pm->pid != getpid() || !pm->w) {
		free(pm);	/* inherited over fork, or no layout (past EOF) */
		return;
	}
	pthread_mutex_lock(&tbl_lock);
	bool held = pm->held, keep = held && (pm->pins || pm->inflight);

	if (keep) {
		pm->gone = true;
		pm->next = ghosts;
		ghosts = pm;
	} else {
		pm->held = false;
	}
	pthread_mutex_unlock(&tbl_lock);
	if (keep) {
		dbg("munmap %p+%zu: pinned, layout kept until unpinned", (void *)pm->addr, pm->len);
		layout_unmap(pm->w, pm->id);	/* the daemon keeps a pinned layout */
		return;
	}
	/* no recall for it from now on (waits for one running) */
	if (pm->registered)
		udax_wire_layout_del(pm->w, pm->id);
	pm->registered = false;
	if (held)
		layout_unmap(pm->w, pm->id);
	ghost_free(pm);
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

		dbg("munmap %p+%zu", (void *)b, l);
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

/*
 * ---- pins: io_uring fixed buffers over direct mappings ----
 *
 * An unmodified program may register its direct mapping as io_uring fixed
 * buffers: the kernel then long-term pins the device pages, and a truncate
 * must wait for them.  The shim declares such pins to the daemon before
 * the kernel takes them (UDAX_REQ_PIN: layout, ring descriptor, range), and
 * fails the registration with the daemon's refusal (EBUSY: a recall is
 * under way; EOPNOTSUPP: the daemon cannot supervise that ring).  When the
 * kernel registration fails, or a later unregistration or slot update
 * drops a buffer, the pin is released (UDAX_REQ_UNPIN).
 *
 * Interposed: liburing's io_uring_register_buffers, _tags, _update_tag and
 * io_uring_register (the raw call it exports), and libc's syscall() for
 * SYS_io_uring_register.  Not seen: a program issuing the system call with
 * its own inline instructions (liburing's internal calls are such, which is
 * why the exported functions are interposed); the daemon's own discovery of
 * rings that hold a layout's pages is the backstop for those.
 */
#include <liburing.h>
#include <sys/syscall.h>

#ifndef IORING_REGISTER_USE_REGISTERED_RING
#define IORING_REGISTER_USE_REGISTERED_RING (1u << 31)
#endif
#define REG_CLONE_BUFFERS_ 30u		/* IORING_REGISTER_CLONE_BUFFERS (6.12) */
#define REG_SRC_REGISTERED_ (1u << 0)
#define REG_DST_REPLACE_ (1u << 1)
struct clone_buffers_ {			/* struct io_uring_clone_buffers */
	uint32_t src_fd, flags, src_off, dst_off, nr, pad[3];
};

typedef int (*reg_bufs_fn)(struct io_uring *, const struct iovec *, unsigned int);
typedef int (*reg_bufs_tags_fn)(struct io_uring *, const struct iovec *, const __u64 *,
				unsigned int);
typedef int (*reg_upd_tag_fn)(struct io_uring *, unsigned int, const struct iovec *,
			      const __u64 *, unsigned int);
typedef int (*unreg_bufs_fn)(struct io_uring *);
typedef int (*uring_register_fn)(unsigned int, unsigned int, const void *, unsigned int);
typedef long (*syscall_fn)(long, ...);

/* A registration in the making: what it pins, what it replaces. */
struct reg {
	int ring_fd;			/* -1: a registered-ring index (unknown) */
	bool whole_table;		/* the ring's whole table is (re)placed */
	unsigned int first, n;		/* otherwise the slots [first, first + n) */
	struct pin *fresh;		/* pins granted for it, not on the list yet */
};

static bool pins_disabled(void)
{
	const char *e = getenv("UDAX_PRELOAD_TEST_NO_PIN");	/* negative control only */

	return e && *e && *e != '0';
}

/* Release one pin in the daemon.  Context: no lock held. */
static void pin_release(const struct pin *p)
{
	struct udax_pin_req pr = { .id = p->pm->id, .ring_fd = p->ring_fd,
				   .addr = p->addr, .len = p->len };
	int ret = call(p->pm->w, UDAX_REQ_UNPIN, &pr, sizeof(pr), NULL, NULL);

	dbg("unpin ring %d slot %u %#llx+%llu: %d", p->ring_fd, p->slot,
	    (unsigned long long)p->addr, (unsigned long long)p->len, ret);
}

/*
 * Drop a reference a registration held on @pm (inflight) or a pin record
 * (pins); free a ghost that nothing references any more.
 * Context: tbl_lock held; returns the ghost to free (after unlocking) or NULL.
 */
static struct pmap *pm_unref(struct pmap *pm, bool pin)
{
	if (pin)
		pm->pins--;
	else
		pm->inflight--;
	if (!pm->gone || pm->pins || pm->inflight)
		return NULL;
	struct pmap **gp = &ghosts;

	while (*gp && *gp != pm)
		gp = &(*gp)->next;
	if (!*gp)
		return NULL;
	*gp = pm->next;
	return pm;
}

/* UNPIN and free a list of pins (not on the list).  Context: no lock held. */
static void pins_drop(struct pin *list)
{
	while (list) {
		struct pin *p = list;
		struct pmap *dead;

		list = p->next;
		pthread_mutex_lock(&tbl_lock);
		bool held = p->pm->held;
		pthread_mutex_unlock(&tbl_lock);
		if (held)
			pin_release(p);
		pthread_mutex_lock(&tbl_lock);
		dead = pm_unref(p->pm, true);
		pthread_mutex_unlock(&tbl_lock);
		if (dead)
			ghost_free(dead);
		free(p);
	}
}

/*
 * Ask the daemon for a pin on every direct mapping that @iov[i] overlaps,
 * as slot @first + i of ring @r->ring_fd.
 * Return: 0, or the daemon's refusal (the pins granted so far released).
 */
static int reg_pin(struct reg *r, unsigned int first, const struct iovec *iov, unsigned int nr)
{
	for (unsigned int i = 0; iov && i < nr; i++) {
		char *lo = iov[i].iov_base, *hi = lo + iov[i].iov_len;

		if (!lo || lo >= hi)
			continue;	/* an empty slot */
		for (;;) {
			struct pin *p = calloc(1, sizeof(*p));
			struct pmap *pm;
			char *a = NULL, *b = NULL;

			if (!p)
				return -ENOMEM;
			/* the next layout overlapping this iovec that has no pin from it yet */
			pthread_mutex_lock(&tbl_lock);
			for (pm = tbl; pm; pm = pm->next) {
				if (pm->pid != getpid() || !pm->held || !pm->granted)
					continue;
				a = pm->addr > lo ? pm->addr : lo;
				b = pm->addr + pm->granted < hi ? pm->addr + pm->granted : hi;
				if (a >= b)
					continue;
				bool seen = false;

				for (struct pin *q = r->fresh; q; q = q->next)
					seen |= q->pm == pm && q->slot == first + i;
				if (!seen)
					break;
			}
			if (pm)
				pm->inflight++;
			pthread_mutex_unlock(&tbl_lock);
			if (!pm) {
				free(p);
				break;
			}
			*p = (struct pin){ .pm = pm, .ring_fd = r->ring_fd, .slot = first + i,
					   .addr = (uint64_t)(uintptr_t)a, .len = (uint64_t)(b - a) };
			struct udax_pin_req pr = { .id = pm->id, .ring_fd = r->ring_fd,
						   .addr = p->addr, .len = p->len };
			int ret = call(pm->w, UDAX_REQ_PIN, &pr, sizeof(pr), NULL, NULL);

			dbg("pin ring %d slot %u %p+%zu of layout %llu: %d", r->ring_fd, first + i,
			    (void *)a, (size_t)(b - a), (unsigned long long)pm->id, ret);
			pthread_mutex_lock(&tbl_lock);
			if (!ret)
				pm->pins++;
			struct pmap *dead = pm_unref(pm, false);
			pthread_mutex_unlock(&tbl_lock);
			if (dead)
				ghost_free(dead);
			if (ret < 0) {
				free(p);
				/* gone meanwhile (recalled, daemon lost): the pages are not there */
				return ret == -ESTALE || ret == -ENOTCONN ? -EFAULT : ret;
			}
			p->next = r->fresh;
			r->fresh = p;
		}
	}
	return 0;
}

/* The kernel refused: release what reg_pin() took. */
static void reg_abort(struct reg *r)
{
	pins_drop(r->fresh);
	r->fresh = NULL;
}

/* The kernel took it: the replaced slots' pins go, the new ones are recorded. */
static void reg_commit(struct reg *r)
{
	struct pin *old = NULL;

	pthread_mutex_lock(&tbl_lock);
	for (struct pin **pp = &pins; *pp;) {
		struct pin *p = *pp;

		if (p->ring_fd == r->ring_fd &&
		    (r->whole_table || (p->slot >= r->first && p->slot - r->first < r->n))) {
			*pp = p->next;
			p->next = old;
			old = p;
			continue;
		}
		pp = &p->next;
	}
	struct pmap *dead = NULL;	/* ghosts nothing references, off the list */

	while (r->fresh) {
		struct pin *p = r->fresh;

		r->fresh = p->next;
		if (p->pm->held) {
			p->next = pins;
			pins = p;
			continue;
		}
		/* recalled meanwhile: the layout (and its pins) went back */
		struct pmap *d = pm_unref(p->pm, true);

		free(p);
		if (d) {
			d->next = dead;
			dead = d;
		}
	}
	pthread_mutex_unlock(&tbl_lock);
	while (dead) {
		struct pmap *d = dead;

		dead = d->next;
		ghost_free(d);
	}
	pins_drop(old);
}

/*
 * The copies IORING_REGISTER_CLONE_BUFFERS makes on ring @dst of ring
 * @c->src_fd's slots: pin them for @dst too.
 */
static int reg_pin_clone(struct reg *r, const struct clone_buffers_ *c)
{
	struct { struct pmap *pm; unsigned int slot; uint64_t addr, len; } want[64];
	unsigned int n = 0;

	pthread_mutex_lock(&tbl_lock);
	for (struct pin *p = pins; p && n < 64; p = p->next) {
		if (p->ring_fd != (int)c->src_fd || !p->pm->held || p->slot < c->src_off ||
		    (c->nr && p->slot - c->src_off >= c->nr))
			continue;
		want[n].pm = p->pm;
		want[n].slot = p->slot - c->src_off + c->dst_off;
		want[n].addr = p->addr;
		want[n].len = p->len;
		p->pm->inflight++;
		n++;
	}
	pthread_mutex_unlock(&tbl_lock);
	int ret = 0;

	for (unsigned int i = 0; i < n; i++) {
		struct pin *p = ret ? NULL : calloc(1, sizeof(*p));
		int err = 0;

		if (!ret && !p)
			ret = -ENOMEM;
		if (!ret) {
			*p = (struct pin){ .pm = want[i].pm, .ring_fd = r->ring_fd,
					   .slot = want[i].slot, .addr = want[i].addr,
					   .len = want[i].len };
			struct udax_pin_req pr = { .id = p->pm->id, .ring_fd = r->ring_fd,
						   .addr = p->addr, .len = p->len };
			err = call(p->pm->w, UDAX_REQ_PIN, &pr, sizeof(pr), NULL, NULL);
		}
		pthread_mutex_lock(&tbl_lock);
		if (p && !err) {
			want[i].pm->pins++;
			p->next = r->fresh;
			r->fresh = p;
		}
		struct pmap *dead = pm_unref(want[i].pm, false);
		pthread_mutex_unlock(&tbl_lock);
		if (dead)
			ghost_free(dead);
		if (p && err) {
			free(p);
			ret = err == -ESTALE || err == -ENOTCONN ? -EFAULT : err;
		}
	}
	return ret;
}

/*
 * Work out what io_uring_register(@fd, @opcode, @arg, @nr_args) pins and
 * replaces, and take the pins.  Return 1: a buffer operation (reg filled;
 * the caller registers, then reg_commit / reg_abort); 0: not one (pass
 * through); -errno: refused.
 */
static int reg_prepare(struct reg *r, int fd, unsigned int opcode, void *arg,
		       unsigned int nr_args)
{
	unsigned int op = opcode & ~IORING_REGISTER_USE_REGISTERED_RING;
	int ret;

	*r = (struct reg){ .ring_fd = (opcode & IORING_REGISTER_USE_REGISTERED_RING) ? -1 : fd };
	switch (op) {
	case IORING_REGISTER_BUFFERS:
		r->whole_table = true;
		ret = reg_pin(r, 0, arg, nr_args);
		break;
	case IORING_UNREGISTER_BUFFERS:
		r->whole_table = true;
		ret = 0;
		break;
	case IORING_REGISTER_BUFFERS2: {
		struct io_uring_rsrc_register rr;

		if (!arg || nr_args != sizeof(rr))
			return 0;	/* the kernel says EINVAL */
		memcpy(&rr, arg, sizeof(rr));
		r->whole_table = true;
		ret = (rr.flags & IORING_RSRC_REGISTER_SPARSE) ? 0 :
		      reg_pin(r, 0, (const struct iovec *)(uintptr_t)rr.data, rr.nr);
		break;
	}
	case IORING_REGISTER_BUFFERS_UPDATE: {
		struct io_uring_rsrc_update2 up;

		if (!arg || nr_args != sizeof(up))
			return 0;
		memcpy(&up, arg, sizeof(up));
		r->first = up.offset;
		r->n = up.nr;
		ret = reg_pin(r, up.offset, (const struct iovec *)(uintptr_t)up.data, up.nr);
		break;
	}
	case REG_CLONE_BUFFERS_: {
		struct clone_buffers_ cb;

		if (!arg || nr_args != 1)
			return 0;
		memcpy(&cb, arg, sizeof(cb));
		if (cb.flags & REG_SRC_REGISTERED_) {
			/* the source is a registered-ring index: not resolvable here */
			dbg("clone from a registered ring index: pins not declared");
			return 0;
		}
		r->whole_table = !cb.nr;
		r->first = cb.dst_off;
		r->n = cb.nr;
		ret = reg_pin_clone(r, &cb);
		break;
	}
	default:
		return 0;
	}
	if (ret < 0) {
		reg_abort(r);
		return ret;
	}
	return 1;
}

/* Any direct mapping or pin in this process (the fast pass-through test)? */
static bool pins_possible(void)
{
	return (tbl || pins || ghosts) && !pins_disabled();
}

/*
 * The common path: declare, register with @real, commit or release.
 * Return what @real returned (0 or -errno), or the daemon's refusal.
 */
static int reg_wrap(int fd, unsigned int opcode, void *arg, unsigned int nr_args,
		    int (*real)(void *ctx), void *ctx)
{
	struct reg r;
	int ret;

	if (in_shim || !pins_possible())
		return real(ctx);
	in_shim++;
	ret = reg_prepare(&r, fd, opcode, arg, nr_args);
	if (ret <= 0) {
		in_shim--;
		return ret < 0 ? ret : real(ctx);
	}
	ret = real(ctx);
	if (ret < 0)
		reg_abort(&r);
	else
		reg_commit(&r);
	in_shim--;
	return ret;
}

/* Calls of the real functions, in one shape for reg_wrap(). */
struct real_call {
	void *fn;
	struct io_uring *ring;
	const struct iovec *iov;
	const __u64 *tags;
	unsigned int off, nr;
	unsigned int fd, opcode;
	void *arg;
	long a[6];
};

static int call_reg_bufs(void *c_)
{
	struct real_call *c = c_;

	return ((reg_bufs_fn)c->fn)(c->ring, c->iov, c->nr);
}

static int call_reg_bufs_tags(void *c_)
{
	struct real_call *c = c_;

	return ((reg_bufs_tags_fn)c->fn)(c->ring, c->iov, c->tags, c->nr);
}

static int call_reg_upd_tag(void *c_)
{
	struct real_call *c = c_;

	return ((reg_upd_tag_fn)c->fn)(c->ring, c->off, c->iov, c->tags, c->nr);
}

static int call_unreg_bufs(void *c_)
{
	struct real_call *c = c_;

	return ((unreg_bufs_fn)c->fn)(c->ring);
}

static int call_uring_register(void *c_)
{
	struct real_call *c = c_;

	return ((uring_register_fn)c->fn)(c->fd, c->opcode, c->arg, c->nr);
}

static int call_syscall(void *c_)
{
	struct real_call *c = c_;
	long r = ((syscall_fn)c->fn)(SYS_io_uring_register, c->a[0], c->a[1], c->a[2], c->a[3],
				      c->a[4], c->a[5]);

	return r < 0 ? -errno : (int)r;
}

/* dlsym(RTLD_NEXT) once per name; NULL when liburing is not loaded. */
static void *next_fn(void *volatile *cache, const char *name)
{
	void *f = *cache;

	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		*cache = f;
	}
	return f;
}

static void *volatile r_reg_bufs, *volatile r_reg_bufs_tags, *volatile r_reg_upd_tag,
	*volatile r_unreg_bufs, *volatile r_uring_register, *volatile r_syscall;

EXPORT int io_uring_register_buffers(struct io_uring *ring, const struct iovec *iovecs,
				     unsigned int nr_iovecs)
{
	struct real_call c = { .fn = next_fn(&r_reg_bufs, "io_uring_register_buffers"),
			       .ring = ring, .iov = iovecs, .nr = nr_iovecs };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_REGISTER_BUFFERS, (void *)iovecs, nr_iovecs,
			call_reg_bufs, &c);
}

EXPORT int io_uring_register_buffers_tags(struct io_uring *ring, const struct iovec *iovecs,
					  const __u64 *tags, unsigned int nr)
{
	struct real_call c = { .fn = next_fn(&r_reg_bufs_tags, "io_uring_register_buffers_tags"),
			       .ring = ring, .iov = iovecs, .tags = tags, .nr = nr };
	struct io_uring_rsrc_register rr = { .nr = nr, .data = (uint64_t)(uintptr_t)iovecs,
					     .tags = (uint64_t)(uintptr_t)tags };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_REGISTER_BUFFERS2, &rr, sizeof(rr),
			call_reg_bufs_tags, &c);
}

EXPORT int io_uring_register_buffers_update_tag(struct io_uring *ring, unsigned int off,
						const struct iovec *iovecs, const __u64 *tags,
						unsigned int nr)
{
	struct real_call c = { .fn = next_fn(&r_reg_upd_tag, "io_uring_register_buffers_update_tag"),
			       .ring = ring, .off = off, .iov = iovecs, .tags = tags, .nr = nr };
	struct io_uring_rsrc_update2 up = { .offset = off, .data = (uint64_t)(uintptr_t)iovecs,
					    .tags = (uint64_t)(uintptr_t)tags, .nr = nr };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_REGISTER_BUFFERS_UPDATE, &up, sizeof(up),
			call_reg_upd_tag, &c);
}

EXPORT int io_uring_unregister_buffers(struct io_uring *ring)
{
	struct real_call c = { .fn = next_fn(&r_unreg_bufs, "io_uring_unregister_buffers"),
			       .ring = ring };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0, call_unreg_bufs, &c);
}

EXPORT int io_uring_register(unsigned int fd, unsigned int opcode, const void *arg,
			     unsigned int nr_args)
{
	struct real_call c = { .fn = next_fn(&r_uring_register, "io_uring_register"),
			       .fd = fd, .opcode = opcode, .arg = (void *)arg, .nr = nr_args };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap((int)fd, opcode, (void *)arg, nr_args, call_uring_register, &c);
}

EXPORT long syscall(long number, ...)
{
	struct real_call c = { .fn = next_fn(&r_syscall, "syscall") };
	va_list ap;

	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		c.a[i] = va_arg(ap, long);
	va_end(ap);
	if (number != SYS_io_uring_register || in_shim || !pins_possible())
		return ((syscall_fn)c.fn)(number, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4], c.a[5]);
	int ret = reg_wrap((int)c.a[0], (unsigned int)c.a[1], (void *)c.a[2], (unsigned int)c.a[3],
			   call_syscall, &c);

	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return ret;
}
