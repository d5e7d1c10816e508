// SPDX-License-Identifier: MIT
/*
 * preload_mmap.c - libudax-preload.so: the direct mappings that mmap()
 * makes, their table (struct pmap, tbl_lock) and their recalls; munmap(),
 * msync() and mremap() on them.  See preload.c for the whole shim.
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
 * Pins (preload_uring.c) keep a munmapped layout alive as a ghost until
 * the last pin on it goes or a recall takes it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "preload_int.h"
#include "wire.h"

struct pmap *tbl;
struct pmap *ghosts;
struct pin *pins;

static int sigbus_fd = -1;		/* empty memfd: accesses raise SIGBUS */

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

/* Test only: hold a recall before handling it, so that a test sees it under way. */
static void test_recall_delay(void)
{
	long ms = test_ms("UDAX_PRELOAD_TEST_RECALL_DELAY_MS");

	if (ms > 0)
		usleep((useconds_t)ms * 1000);
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
void ghost_free(struct pmap *pm)
{
	if (pm->registered)
		udax_wire_layout_del(pm->w, pm->id);
	udax_wire_put(&pm->w);
	free(pm);
}

/*
 * Drop a reference a registration held on @pm (inflight) or a pin record
 * (pins); free a ghost that nothing references any more.
 * Context: tbl_lock held; returns the ghost to free (after unlocking) or NULL.
 */
struct pmap *pm_unref(struct pmap *pm, bool pin)
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
