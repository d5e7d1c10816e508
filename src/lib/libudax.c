/* SPDX-License-Identifier: MIT */
/*
 * libudax.c - the client library for direct access to udaxfs files.
 *
 * Objects:
 *   struct udax_map one direct mapping: a contiguous range of the process
 *                   mapping the device runs of a file range, a pmem2 map
 *                   for the persist function, the pin state, and a
 *                   reference to its connection (wire.h: one per process
 *                   and daemon, with the reader thread that delivers
 *                   recalls to map_recall_cb()).
 *   the recall thread (rc_main) runs the applications' recall handlers; a
 *                   handler may call udax_unpin(), which waits for a reply
 *                   that only the reader thread can read, so handlers never
 *                   run on it.
 *
 * Locks: map->mu -> g_rc_lock; the connection's own locks are inside
 * wire.c.  map->mu is never held while the application's recall handler
 * runs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpmem2.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "libudax_int.h"
#include "wire.h"

#define UDAX_EXPORT __attribute__((visibility("default")))

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

#define PAGE 4096ul
#define UDAX_IS_POW2_(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define PIN_MAX (1ul << 30)		/* io_uring's largest single fixed buffer */
#define MAP_RETRIES 50			/* a grant racing a recall is refused with EBUSY */
#define MAX_ORPHANS 64

struct udax_map {
	struct udax_map *rc_next;	/* g_rc_head; g_rc_lock */
	struct udax_wire *w;		/* the connection; a reference */
	uint64_t id, ino;
	uint64_t off, len;		/* what the caller asked for */
	uint64_t goff, glen;		/* the granted range (aligned to the device) */
	int prot;
	bool devdax;
	bool pinnable;			/* emulation on tmpfs */
	bool registered;		/* recalls reach it (udax_wire_layout_add) */
	char *addr;			/* off's address, inside [base, base + glen) */
	char *base;
	size_t va_len;			/* reserved range (>= len, aligned) */
	char *va;
	pmem2_persist_fn persist;
	udax_recall_fn recall;
	void *recall_arg;
	unsigned int flags;
	int efd;			/* UDAX_MAP_RECALL_FD: readable while a recall is pending */

	pthread_mutex_t mu;		/* the fields below; never held across the handler */
	bool pinned, pin_any;
	struct io_uring *ring;
	unsigned int buf_index;
	bool unmapped;			/* udax_map_unmap(): VA replaced, map refs dropped */
	bool recalled;			/* layout given back (or the daemon is gone) */
	/* g_rc_lock: */
	bool recall_pending;
	bool daemon_lost;		/* the recall is the end of the connection */
	bool rc_queued, rc_busy;
	uint64_t recall_seq;
	/*
	 * udax_pread()/udax_pwrite() copies in progress (udax_io.c): a copier
	 * raises io_active, then checks io_closed; the recall, unmap and close
	 * paths set io_closed, then wait for io_active to drop to 0 before the
	 * range is replaced and the layout given back.  Sequentially
	 * consistent atomics: either the copier sees io_closed, or the drainer
	 * sees its count.
	 */
	atomic_uint io_active;
	atomic_bool io_closed;
};

static int g_sigbus_fd = -1;		/* an empty memfd: mapping it raises SIGBUS on access */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static __thread char t_err[256];

/*
 * The recall thread: runs the applications' recall handlers.  A handler may
 * call udax_unpin(), which waits for a reply that only the connection's
 * reader thread can read, so handlers never run on a reader thread.
 */
static pthread_mutex_t g_rc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_rc_cond = PTHREAD_COND_INITIALIZER;	/* work queued / rc_busy cleared */
static struct udax_map *g_rc_head;	/* g_rc_lock */
static bool g_rc_started;		/* g_rc_lock */

/* ---- errors ---- */

static int set_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t_err, sizeof(t_err), fmt, ap);
	va_end(ap);
	return err;
}

int udax__set_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t_err, sizeof(t_err), fmt, ap);
	va_end(ap);
	return err;
}

UDAX_EXPORT const char *udax_last_error(void)
{
	return t_err;
}

/* ---- process-wide state ---- */

static void atfork_child(void)
{
	/*
	 * The child has none of the parent's threads and must not use its
	 * maps (udax.h); the connections are forgotten by wire.c.  The
	 * child's first recall starts its own recall thread.
	 */
	g_rc_head = NULL;
	g_rc_started = false;
	pthread_mutex_init(&g_rc_lock, NULL);
	pthread_cond_init(&g_rc_cond, NULL);
}

static void once_init(void)
{
	g_sigbus_fd = (int)memfd_create("udax-recalled", MFD_CLOEXEC);
	pthread_atfork(NULL, NULL, atfork_child);
}

/*
 * Send a request and wait for its reply, with the daemon's reason in
 * udax_last_error() on failure.
 * Return: the reply's status (0 or -errno) or a transport error.
 */
static int conn_call(struct udax_wire *w, uint16_t type, const void *p, size_t len,
		     void **rp, uint32_t *rlen, int *rfd)
{
	void *rep = NULL;
	uint32_t n = 0;
	int err = udax_wire_call(w, type, p, (uint32_t)len, &rep, &n, rfd);

	if (err == -ENOTCONN)
		set_err(err, "the udaxfs daemon closed the connection");
	else if (err < 0 && n && rep)
		set_err(err, "%s", (char *)rep);
	else if (err < 0)
		set_err(err, "udaxfs daemon: %s", strerror(-err));
	if (rp)
		*rp = rep;
	else
		free(rep);
	if (rlen)
		*rlen = n;
	return err;
}

static int do_recall(struct udax_map *m);

static void *rc_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g_rc_lock);
	for (;;) {
		while (!g_rc_head)
			pthread_cond_wait(&g_rc_cond, &g_rc_lock);
		struct udax_map *m = g_rc_head;
		g_rc_head = m->rc_next;
		m->rc_queued = false;
		m->rc_busy = true;
		pthread_mutex_unlock(&g_rc_lock);
		do_recall(m);
		pthread_mutex_lock(&g_rc_lock);
		m->rc_busy = false;
		pthread_cond_broadcast(&g_rc_cond);
	}
	return NULL;
}

/*
 * A recall of @arg's layout, or the end of its connection: queue it for the
 * recall thread or the map's eventfd.  Context: a wire reader thread, or
 * udax_wire_layout_add() for a recall that came before the layout was added.
 */
static void map_recall_cb(void *arg, const struct udax_recall_msg *r, bool daemon_lost)
{
	struct udax_map *m = arg;

	pthread_mutex_lock(&g_rc_lock);
	m->recall_pending = true;
	if (r)
		m->recall_seq = r->recall_seq;
	if (daemon_lost)
		m->daemon_lost = true;
	if (m->flags & UDAX_MAP_RECALL_FD) {
		uint64_t one = 1;
		ssize_t n = write(m->efd, &one, sizeof(one));
		(void)n;
	} else if (!m->rc_queued) {
		if (!g_rc_started) {
			/* the library's threads must not take the application's signals */
			sigset_t all, old;
			pthread_t t;
			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old);
			if (pthread_create(&t, NULL, rc_main, NULL) == 0) {
				pthread_detach(t);
				g_rc_started = true;
			}
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
		m->rc_queued = true;
		m->rc_next = g_rc_head;
		g_rc_head = m;
		pthread_cond_broadcast(&g_rc_cond);
	}
	pthread_mutex_unlock(&g_rc_lock);
}

/* ---- mapping ---- */

/* Replace [va, va+len) by a mapping that raises SIGBUS on access. */
static int sigbus_range(void *va, size_t len)
{
	void *p = mmap(va, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, g_sigbus_fd, 0);
	if (p == MAP_FAILED)
		p = mmap(va, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	return p == MAP_FAILED ? -errno : 0;
}

/*
 * Reserve the address range for [goff, goff + glen) before asking for the
 * layout, so that the request can say where the range will live
 * (udax_map_req.addr).  Device mappings of 2 MiB or more are aligned to
 * 2 MiB: a devdax needs it, and an emulation file on a tmpfs with huge
 * pages then gets a 2 MiB page per fault, as a devdax does.
 */
static int reserve_va(struct udax_map *m)
{
	size_t align = 2ul << 20;
	if (m->glen < align)
		align = PAGE;
	m->va_len = m->glen + align;
	m->va = mmap(NULL, m->va_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		     -1, 0);
	if (m->va == MAP_FAILED) {
		m->va = NULL;
		return set_err(-errno, "reserving %zu bytes of address space: %s", m->va_len,
			       strerror(errno));
	}
	m->base = (char *)(((uintptr_t)m->va + align - 1) & ~(uintptr_t)(align - 1));
	m->addr = m->base + (m->off - m->goff);
	return 0;
}

static int map_runs(struct udax_map *m, const struct udax_run *runs, uint32_t nruns, int dev_fd)
{
	int prot = PROT_READ | ((m->prot & PROT_WRITE) ? PROT_WRITE : 0);
	int flags = MAP_FIXED | (m->devdax ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED);
	size_t pos = 0;
	for (uint32_t i = 0; i < nruns; i++) {
		if (pos + runs[i].len > m->glen)
			return set_err(-EPROTO, "the daemon's runs exceed the mapping");
		void *p = mmap(m->base + pos, runs[i].len, prot, flags, dev_fd,
			       (off_t)runs[i].dev_off);
		if (p == MAP_FAILED)
			return set_err(-errno, "mapping device offset %#" PRIx64 ": %s",
				       runs[i].dev_off, strerror(errno));
	pos += runs[i].len;
	}
	if (pos != m->glen)
		return set_err(-EPROTO, "the daemon's runs cover %zu of %" PRIu64 " bytes", pos,
			       m->glen);
	/*
	 * A child of fork() would keep the device pages mapped after a recall
	 * replaced them here, and could reach a block after it was freed and
	 * reused.  Children do not inherit direct mappings.
	 */
	if (madvise(m->va, m->va_len, MADV_DONTFORK) < 0)
		return set_err(-errno, "madvise(MADV_DONTFORK): %s", strerror(errno));
	return 0;
}

/*
 * libpmem2's cache-line persist function (flush with clwb, clflushopt or
 * clflush, whichever the CPU has, then a fence).  It takes only (addr, len),
 * so it is fetched once, through a pmem2 map of a small memfd that lives as
 * long as the process: a pmem2_map_from_existing() per udax map would cost
 * 144 bytes each that libpmem2 1.12.1's pmem2_map_delete() never frees
 * (found with LeakSanitizer).
 */
static pthread_once_t g_persist_once = PTHREAD_ONCE_INIT;
static pmem2_persist_fn g_persist_cl;		/* NULL: not available */
static pmem2_memcpy_fn g_memcpy_nt;		/* its memcpy (persists); NULL: none */
static struct pmem2_source *g_persist_src;	/* kept: the fn's map lives on */
static struct pmem2_map *g_persist_map;

static void persist_init(void)
{
	int fd = (int)memfd_create("udax-persist", MFD_CLOEXEC);
	if (fd < 0)
		return;
	void *p = MAP_FAILED;
	if (ftruncate(fd, (off_t)PAGE) == 0)
		p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED && pmem2_source_from_fd(&g_persist_src, fd) == 0 &&
	    pmem2_map_from_existing(&g_persist_map, g_persist_src, p, PAGE,
				    PMEM2_GRANULARITY_CACHE_LINE) == 0)
	{
		g_persist_cl = pmem2_get_persist_fn(g_persist_map);
		g_memcpy_nt = pmem2_get_memcpy_fn(g_persist_map);
	}
	close(fd);	/* the mapping (and so the pmem2 map) stays */
}

static int setup_persist(struct udax_map *m, int dev_fd)
{
	(void)dev_fd;
	if (!(m->prot & PROT_WRITE))
		return 0;
	/*
	 * A devdax (MAP_SYNC) and an emulation file on tmpfs persist with CPU
	 * cache-line flushes + fence, libpmem2's function: on tmpfs msync()
	 * does nothing (shmem has no write-back) yet costs ~700 ns, and the
	 * daemon's media layer flushes the same way, so the emulation costs
	 * what a device would.  Any other emulation file has page granularity:
	 * msync of the pages, done by us in udax_persist() because libpmem2
	 * 1.12.1's page persist on a pmem2_map_from_existing() map loops
	 * forever on msync(addr, 0) (seen here under gdb/strace).
	 */
	if (!m->devdax && !m->pinnable)
		return 0;
	pthread_once(&g_persist_once, persist_init);
	if (!g_persist_cl)
		return set_err(-ENOTSUP, "libpmem2 gave no cache-line persist function: %s",
			       pmem2_errormsg());
	m->persist = g_persist_cl;
	return 0;
}

/*
 * io_drain() - refuse new udax_pread()/udax_pwrite() copies on @m and wait
 * for those in progress; from now on no copy touches the range.
 * UDAX_TEST_RECALL_NO_DRAIN=1 (a test aid, see udax_pread(3)) skips the
 * wait so that the stale-data checker can prove it sees the failure.
 * Context: any; copies are short (bounded by their length), so a yield
 * loop is enough.
 */
static void io_drain(struct udax_map *m)
{
	static int no_drain = -1;

	atomic_store(&m->io_closed, true);
	if (no_drain < 0) {
		const char *e = getenv("UDAX_TEST_RECALL_NO_DRAIN");
		no_drain = e && *e == '1';
	}
	if (no_drain)
		return;
	while (atomic_load(&m->io_active))
		sched_yield();
}

int udax__map_io_get(struct udax_map *m)
{
	atomic_fetch_add(&m->io_active, 1);
	if (atomic_load(&m->io_closed)) {
		atomic_fetch_sub(&m->io_active, 1);
		return -ESTALE;
	}
	return 0;
}

void udax__map_io_put(struct udax_map *m)
{
	atomic_fetch_sub(&m->io_active, 1);
}

void udax__map_info(const struct udax_map *m, char **addr, uint64_t *off, uint64_t *len,
		    bool *writable)
{
	*addr = m->addr;
	*off = m->off;
	*len = m->len;
	*writable = (m->prot & PROT_WRITE) != 0;
}

/* Copy @n bytes into the map at @dst and make them durable.  Context: io_get held. */
int udax__map_store(struct udax_map *m, void *dst, const void *src, size_t n)
{
	if (m->persist && g_memcpy_nt) {
		/* libpmem2's memcpy: non-temporal for large copies, then fence */
		g_memcpy_nt(dst, src, n, 0);
		return 0;
	}
	memcpy(dst, src, n);
	if (m->persist) {
		m->persist(dst, n);
		return 0;
	}
	uintptr_t start = (uintptr_t)dst & ~(uintptr_t)(PAGE - 1);
	uintptr_t end = ((uintptr_t)dst + n + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	if (end > start && msync((void *)start, end - start, MS_SYNC) < 0)
		return set_err(-errno, "msync: %s", strerror(errno));
	return 0;
}

void udax__map_conn(struct udax_map *m, struct udax_wire **w, uint64_t *id)
{
	udax_wire_hold(m->w);
	*w = m->w;
	*id = m->id;
}

int udax__inval(struct udax_wire *w, uint64_t id, uint64_t off, uint64_t len)
{
	struct udax_inval_req rq = { .id = id, .off = off, .len = len };
	return conn_call(w, UDAX_REQ_INVAL, &rq, sizeof(rq), NULL, NULL, NULL);
}

static void map_free(struct udax_map *m)
{
	if (m->va)
		munmap(m->va, m->va_len);
	if (m->efd >= 0)
		close(m->efd);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/*
 * Take @m off the recall path: no callback runs for it any more, none is
 * queued, and none of its handlers is running.
 */
static void map_unregister(struct udax_map *m)
{
	if (m->registered)
		udax_wire_layout_del(m->w, m->id);
	m->registered = false;
	pthread_mutex_lock(&g_rc_lock);
	struct udax_map **rp = &g_rc_head;
	while (*rp && *rp != m)
		rp = &(*rp)->rc_next;
	if (*rp)
		*rp = m->rc_next;
	m->rc_queued = false;
	while (m->rc_busy)
		pthread_cond_wait(&g_rc_cond, &g_rc_lock);
	pthread_mutex_unlock(&g_rc_lock);
}

/*
 * grow_for_map() - a writable mapping that reaches past EOF grows the file
 * to its end through the mount first.  fallocate never shrinks, so a
 * concurrent writer's growth is kept.  The daemon does not change the size
 * behind the kernel's back when the kernel owns it (-o writeback_cache): it
 * answers EBUSY if the file was truncated again in between, and we retry.
 */
static int grow_for_map(int fd, uint64_t off, uint64_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return set_err(-errno, "fstat: %s", strerror(errno));
	if ((uint64_t)st.st_size >= off + len)
		return 0;
	if (fallocate(fd, 0, (off_t)off, (off_t)len) < 0)
		return set_err(-errno, "growing the file to %" PRIu64 " bytes for the mapping: %s",
			       off + len, strerror(errno));
	return 0;
}

static int ask_hello(int fd, struct udax_ioc_hello *hello)
{
	int e = udax_wire_hello(fd, hello);
	if (e == -ENOTTY || e == -EINVAL || e == -ENOSYS || e == -EOPNOTSUPP)
		return set_err(-ENOTTY, "not a file on a udaxfs mount (no layout service)");
	if (e == -EPROTO)
		return set_err(-EPROTO, "udaxfs daemon speaks protocol %u, the library %u",
			       hello->version, UDAX_PROTO_VERSION);
	if (e)
		return set_err(e, "UDAX_IOC_HELLO: %s", strerror(-e));
	return 0;
}

UDAX_EXPORT int udax_map_open(struct udax_map **out, int fd, off_t off, size_t len, int prot,
			      const struct udax_map_opts *o)
{
	return udax__map_open(out, fd, off, len, prot, o, false);
}

int udax__map_open(struct udax_map **out, int fd, off_t off, size_t len, int prot,
		   const struct udax_map_opts *o, bool nowait)
{
	struct udax_ioc_hello hello;
	struct udax_map *m;
	struct udax_wire *w = NULL;
	void *rp = NULL;
	uint32_t rlen = 0;
	int err, fl;

	t_err[0] = 0;
	if (!out)
		return set_err(-EINVAL, "out is NULL");
	*out = NULL;
	if (off < 0 || len == 0 || (uint64_t)off % PAGE || len % PAGE ||
	    !(prot & PROT_READ) || (prot & ~(PROT_READ | PROT_WRITE)))
		return set_err(-EINVAL, "offset and length must be page multiples, "
			       "prot PROT_READ or PROT_READ|PROT_WRITE");
	if (o && (o->flags & ~(UDAX_MAP_RECALL_FD | UDAX_MAP_KEEP_SIZE)))
		return set_err(-EINVAL, "unknown flags %#x", o->flags);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return set_err(-errno, "fcntl(F_GETFL): %s", strerror(errno));
	if ((prot & PROT_WRITE) && (fl & O_ACCMODE) == O_RDONLY)
		return set_err(-EACCES, "the file is open read-only: no writable mapping");
	pthread_once(&g_once, once_init);
	if (g_sigbus_fd < 0)
		return set_err(-ENOMEM, "memfd_create failed");

	m = calloc(1, sizeof(*m));
	if (!m)
		return set_err(-ENOMEM, "out of memory");
	m->efd = -1;
	m->prot = prot;
	m->off = (uint64_t)off;
	m->len = len;
	pthread_mutex_init(&m->mu, NULL);
	if (o) {
		m->recall = o->recall;
		m->recall_arg = o->recall_arg;
		m->flags = o->flags;
	}
	if (m->flags & UDAX_MAP_RECALL_FD) {
		m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->efd < 0) {
			err = set_err(-errno, "eventfd: %s", strerror(errno));
			goto fail;
		}
	}

	struct udax_map_req rq = {
		.prot = UDAX_PROT_READ | ((prot & PROT_WRITE) ? UDAX_PROT_WRITE : 0),
		.flags = (o && (o->flags & UDAX_MAP_KEEP_SIZE)) ? UDAX_MAP_F_KEEP_SIZE : 0,
	};
	for (int attempt = 0;; attempt++) {
		err = ask_hello(fd, &hello);
		if (err)
			goto fail;
		/*
		 * Ask for the pages of the request only; a writable request
		 * grows the file to its end first.  A device-DAX refuses mappings not
		 * aligned to its `align` (often 2 MiB): the daemon then grants
		 * the aligned range around the request (its part past EOF is
		 * allocated space) and we show the caller its part of it.
		 */
		rq.off = (uint64_t)off & ~(uint64_t)(PAGE - 1);
		rq.len = (((uint64_t)off + len + PAGE - 1) & ~(uint64_t)(PAGE - 1)) - rq.off;
		if (!m->va) {
			/* the range the daemon will grant (hello.dev_align), reserved now */
			uint64_t al = hello.dev_align > PAGE && UDAX_IS_POW2_(hello.dev_align) ?
				      hello.dev_align : PAGE;
			m->devdax = hello.media_kind == 1;
			m->goff = rq.off & ~(al - 1);
			m->glen = ((rq.off + rq.len + al - 1) & ~(al - 1)) - m->goff;
			err = reserve_va(m);
			if (err)
				goto fail;
		}
		rq.addr = (uint64_t)(uintptr_t)m->addr;
		if ((prot & PROT_WRITE) && !(rq.flags & UDAX_MAP_F_KEEP_SIZE)) {
			err = grow_for_map(fd, rq.off, rq.len);
			if (err)
				goto fail;
		}
		if (!w) {
			err = udax_wire_get(&w, hello.sock);
			if (err) {
				set_err(err, "cannot connect to the udaxfs layout service %s: %s",
					hello.sock, strerror(-err));
				goto fail;
			}
		}
		memcpy(rq.ticket, hello.ticket, sizeof(rq.ticket));
		err = conn_call(w, UDAX_REQ_MAP, &rq, sizeof(rq), &rp, &rlen, NULL);
		if (err != -EBUSY || attempt >= MAP_RETRIES || nowait)
			break;
		free(rp);
		rp = NULL;
		struct timespec ts = { 0, 1000000L * (attempt < 10 ? 1 : 10) };
		nanosleep(&ts, NULL);
	}
	if (err)
		goto fail;
	struct udax_map_rep rep;
	if (rlen < sizeof(rep)) {
		err = set_err(-EPROTO, "short MAP reply");
		goto fail;
	}
	memcpy(&rep, rp, sizeof(rep));
	m->w = w;
	m->id = rep.id;
	m->ino = rep.ino;
	if (rlen < sizeof(rep) + (size_t)rep.nruns * sizeof(struct udax_run)) {
		err = set_err(-EPROTO, "short MAP reply");
		goto fail_layout;
	}
	if (rep.off != m->goff || rep.len != m->glen) {
		err = set_err(-EPROTO, "the daemon granted [%" PRIu64 ", +%" PRIu64 "), not the "
			      "aligned range around the request [%" PRIu64 ", +%" PRIu64 ")",
			      rep.off, rep.len, m->goff, m->glen);
		goto fail_layout;
	}
	m->devdax = rep.media_kind == 1;
	m->pinnable = hello.pinnable != 0;

	/*
	 * The device descriptor rode on this reply or an earlier one; the
	 * connection keeps every one it received open (another thread may be
	 * mapping through an older, read-only one right now).
	 */
	int dev_fd = udax_wire_dev_fd(w);
	if (dev_fd < 0) {
		err = set_err(-EPROTO, "the daemon sent no device descriptor");
		goto fail_layout;
	}
	err = map_runs(m, (const struct udax_run *)((char *)rp + sizeof(rep)), rep.nruns, dev_fd);
	if (!err)
		err = setup_persist(m, dev_fd);
	if (err)
		goto fail_layout;
	/*
	 * Recalls reach the map from now on; one that came before (it
	 * overtook the MAP reply) is delivered now, and tears down the range
	 * just mapped.
	 */
	err = udax_wire_layout_add(w, m->id, map_recall_cb, m);
	if (err) {
		set_err(err, "registering the layout for recalls: %s", strerror(-err));
		goto fail_layout;
	}
	m->registered = true;
	free(rp);
	*out = m;
	return 0;

fail_layout: {
		struct udax_id_req ir = { rep.id };
		char save[sizeof(t_err)];
		memcpy(save, t_err, sizeof(save));
		conn_call(w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL, NULL);
		memcpy(t_err, save, sizeof(save));
	}
fail:
	free(rp);
	m->w = NULL;
	udax_wire_put(&w);
	map_free(m);
	return err;
}

UDAX_EXPORT void *udax_map_addr(const struct udax_map *m)
{
	return m ? m->addr : NULL;
}

UDAX_EXPORT size_t udax_map_len(const struct udax_map *m)
{
	return m ? (size_t)m->len : 0;
}

UDAX_EXPORT off_t udax_map_offset(const struct udax_map *m)
{
	return m ? (off_t)m->off : 0;
}

UDAX_EXPORT int udax_map_recalled(const struct udax_map *m)
{
	if (!m)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&m->mu);
	int r = m->recalled;
	pthread_mutex_unlock((pthread_mutex_t *)&m->mu);
	return r;
}

UDAX_EXPORT int udax_persist(struct udax_map *m, const void *addr, size_t len)
{
	if (!m)
		return set_err(-EINVAL, "map is NULL");
	const char *a = addr;
	if (a < m->addr || len > m->len || a + len > m->addr + m->len)
		return set_err(-EINVAL, "range is outside the mapping");
	if (!(m->prot & PROT_WRITE))
		return 0;		/* read-only: nothing to make durable */
	if (m->persist) {
		m->persist(addr, len);	/* cache-line flushes + fence */
		return 0;
	}
	uintptr_t start = (uintptr_t)a & ~(uintptr_t)(PAGE - 1);
	uintptr_t end = ((uintptr_t)a + len + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	if (end > start && msync((void *)start, end - start, MS_SYNC) < 0)
		return set_err(-errno, "msync: %s", strerror(errno));
	return 0;
}

/* Unregister the buffer from its ring.  Context: m->mu held. */
static int unregister_buf(struct udax_map *m)
{
	int r;
	if (m->pin_any) {
		r = io_uring_unregister_buffers(m->ring);
	} else {
		struct iovec none = { NULL, 0 };
		__u64 tag = 0;
		r = io_uring_register_buffers_update_tag(m->ring, m->buf_index, &none, &tag, 1);
		if (r > 0)
			r = 0;
	}
	if (r < 0)
		return set_err(r, "unregistering the io_uring buffer: %s", strerror(-r));
	m->pinned = false;
	return 0;
}

/* The PIN / UNPIN request for the whole map on @ring.  Context: m->mu held. */
static int pin_call(struct udax_map *m, uint16_t type, struct io_uring *ring)
{
	struct udax_pin_req pr = {
		.id = m->id, .ring_fd = ring ? ring->ring_fd : -1,
		.addr = (uint64_t)(uintptr_t)m->addr, .len = m->len,
	};
	return conn_call(m->w, type, &pr, sizeof(pr), NULL, NULL, NULL);
}

UDAX_EXPORT int udax_pin(struct udax_map *m, struct io_uring *ring, unsigned int *buf_index)
{
	int err;
	if (!m || !ring || !buf_index)
		return set_err(-EINVAL, "NULL argument");
	if (m->len > PIN_MAX)
		return set_err(-EINVAL, "io_uring fixed buffers are limited to 1 GiB");
	pthread_mutex_lock(&m->mu);
	if (m->recalled || m->unmapped) {
		err = set_err(-ESTALE, "the layout was recalled or unmapped");
		goto out;
	}
	if (m->pinned) {
		err = set_err(-EBUSY, "the map is already pinned");
		goto out;
	}
	err = pin_call(m, UDAX_REQ_PIN, ring);
	if (err) {
		if (err == -EBUSY)
			set_err(err, "a recall of this layout is under way: the pin is refused");
		goto out;
	}
	struct iovec iov = { m->addr, m->len };
	int r;
	if (*buf_index == UDAX_PIN_ANY) {
		r = io_uring_register_buffers(ring, &iov, 1);
	} else {
		__u64 tag = 0;
		r = io_uring_register_buffers_update_tag(ring, *buf_index, &iov, &tag, 1);
		if (r > 0)
			r = 0;
	}
	if (r < 0) {
		if (r == -EFAULT || r == -EOPNOTSUPP)
			set_err(r, "io_uring cannot pin these pages (%s): an emulation file must "
				"live on tmpfs (/dev/shm) for pins", strerror(-r));
		else
			set_err(r, "registering the io_uring buffer: %s", strerror(-r));
		char save[sizeof(t_err)];
		memcpy(save, t_err, sizeof(save));
		pin_call(m, UDAX_REQ_UNPIN, ring);
		memcpy(t_err, save, sizeof(save));
		err = r;
		goto out;
	}
	m->pinned = true;
	m->pin_any = *buf_index == UDAX_PIN_ANY;
	m->ring = ring;
	m->buf_index = m->pin_any ? 0 : *buf_index;
	*buf_index = m->buf_index;
out:
	pthread_mutex_unlock(&m->mu);
	return err;
}

UDAX_EXPORT int udax_unpin(struct udax_map *m, struct io_uring *ring)
{
	int err = 0;
	if (!m)
		return set_err(-EINVAL, "map is NULL");
	pthread_mutex_lock(&m->mu);
	if (!m->pinned) {
		/* a recall unpinned it already: not an error */
		if (!m->recalled)
			err = set_err(-EINVAL, "the map is not pinned");
		goto out;
	}
	if (ring && ring != m->ring) {
		err = set_err(-EINVAL, "the map is pinned on another ring");
		goto out;
	}
	struct io_uring *r = m->ring;
	err = unregister_buf(m);
	if (err)
		goto out;
	err = pin_call(m, UDAX_REQ_UNPIN, r);
	if (err == -ENOTCONN)
		err = 0;	/* the daemon is gone: its pin went with it */
out:
	pthread_mutex_unlock(&m->mu);
	return err;
}

UDAX_EXPORT int udax_map_unmap(struct udax_map *m)
{
	int err = 0;
	if (!m)
		return set_err(-EINVAL, "map is NULL");
	pthread_mutex_lock(&m->mu);
	if (m->recalled || m->unmapped)
		goto out;
	io_drain(m);
	err = sigbus_range(m->base, m->glen);
	if (err) {
		set_err(err, "replacing the mapping: %s", strerror(-err));
		goto out;
	}
	m->unmapped = true;
	struct udax_id_req ir = { m->id };
	err = conn_call(m->w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL, NULL);
	if (!err && !m->pinned)
		m->recalled = true;	/* the daemon forgot the layout: nothing left to return */
out:
	pthread_mutex_unlock(&m->mu);
	return err;
}

/*
 * Handle the pending recall of @m: the application's handler first (it
 * stops and reaps DMA), then unregister, make the range raise SIGBUS, and
 * give the layout back.  The end of the connection (the daemon died, the
 * file system was unmounted) is handled the same way, without the RETURN.
 * Context: no lock held; the recall thread or udax_recall_process().
 * Return: 1 handled, 0 nothing pending.
 */
static int do_recall(struct udax_map *m)
{
	pthread_mutex_lock(&g_rc_lock);
	bool pending = m->recall_pending;
	bool lost = m->daemon_lost;
	uint64_t seq = m->recall_seq;
	pthread_mutex_unlock(&g_rc_lock);
	if (!pending)
		return 0;
	pthread_mutex_lock(&m->mu);
	bool done = m->recalled;
	pthread_mutex_unlock(&m->mu);
	if (!done && m->recall)
		m->recall(m, m->recall_arg);

	pthread_mutex_lock(&m->mu);
	if (!m->recalled) {
		io_drain(m);
		if (m->pinned)
			unregister_buf(m);	/* the handler promised: nothing in flight */
		if (!m->unmapped)
			sigbus_range(m->base, m->glen);
		m->recalled = true;
		if (!lost) {
			struct udax_return_req rr = { m->id, seq };
			udax_wire_send(m->w, UDAX_REQ_RETURN, &rr, sizeof(rr));
		}
	}
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_lock(&g_rc_lock);
	m->recall_pending = false;
	pthread_mutex_unlock(&g_rc_lock);
	return 1;
}

UDAX_EXPORT int udax_recall_fd(struct udax_map *m)
{
	if (!m)
		return set_err(-EINVAL, "map is NULL");
	if (m->efd < 0)
		return set_err(-EINVAL, "the map was opened without UDAX_MAP_RECALL_FD");
	return m->efd;
}

UDAX_EXPORT int udax_recall_process(struct udax_map *m)
{
	if (!m)
		return set_err(-EINVAL, "map is NULL");
	if (m->efd >= 0) {
		uint64_t v;
		ssize_t r = read(m->efd, &v, sizeof(v));
		(void)r;
	}
	return do_recall(m);
}

UDAX_EXPORT int udax_map_close(struct udax_map **mp)
{
	struct udax_map *m = mp ? *mp : NULL;
	int err = 0;
	if (!m)
		return 0;
	*mp = NULL;
	map_unregister(m);
	io_drain(m);
	pthread_mutex_lock(&m->mu);
	if (!m->recalled) {
		struct udax_id_req ir = { m->id };
		if (m->pinned) {
			struct io_uring *r = m->ring;
			err = unregister_buf(m);
			if (!err)
				err = pin_call(m, UDAX_REQ_UNPIN, r);
		}
		if (!m->unmapped) {
			sigbus_range(m->base, m->glen);
			int e = conn_call(m->w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL, NULL);
			if (!err && e != -ESTALE)
				err = e;
		}
	}
	pthread_mutex_unlock(&m->mu);
	udax_wire_put(&m->w);
	map_free(m);
	return err;
}
