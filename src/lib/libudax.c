/* SPDX-License-Identifier: MIT */
/*
 * libudax.c - the client library for direct access to udaxfs files: maps.
 *
 * Objects:
 *   struct udax_map one direct mapping (udax_map_int.h): a contiguous range
 *                   of the process mapping the device runs of a file range,
 *                   the persist function, the pin state, and a reference to
 *                   its connection (wire.h: one per process and daemon, with
 *                   the reader thread that delivers recalls).
 *
 * The library by concern:
 *   libudax.c       opening a map (the MAP request), its accessors, persist,
 *                   unmapping and closing it;
 *   udax_recall.c   recalls: the recall thread that runs the applications'
 *                   handlers, the copy gate, the SIGBUS backing;
 *   udax_pin.c      a map as an io_uring fixed buffer (udax_pin, udax_unpin);
 *   udax_err.c      udax_last_error() and the requests that report to it;
 *   udax_io.c       udax_pread(), udax_pwrite() and udax_file.
 *
 * Locks: map->mu -> g_rc_lock (udax_recall.c); the connection's own locks
 * are inside wire.c.  map->mu is never held while the application's recall
 * handler runs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpmem2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "libudax_int.h"
#include "udax_map_int.h"
#include "wire.h"

#define PAGE 4096ul
#define UDAX_IS_POW2_(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define MAP_RETRIES 50			/* a grant racing a recall is refused with EBUSY */

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
		return udax__set_err(-errno, "reserving %zu bytes of address space: %s",
				     m->va_len, strerror(errno));
	}
	m->base = (char *)(((uintptr_t)m->va + align - 1) & ~(uintptr_t)(align - 1));
	m->addr = m->base + (m->off - m->goff);
	return 0;
}

static int map_runs(struct udax_map *m, const struct udax_run *runs, uint32_t nruns, int dev_fd)
{
	uint64_t bad_off = 0;
	int err = udax_wire_map_runs(mmap, m->base, m->glen, runs, nruns, m->prot & PROT_WRITE,
				     m->devdax, dev_fd, &bad_off);
	if (err == -EPROTO)
		return udax__set_err(err, "the daemon's runs do not cover the %" PRIu64
				     " bytes of the mapping exactly", m->glen);
	if (err)
		return udax__set_err(err, "mapping device offset %#" PRIx64 ": %s", bad_off,
				     strerror(-err));
	/*
	 * A child of fork() would keep the device pages mapped after a recall
	 * replaced them here, and could reach a block after it was freed and
	 * reused.  Children do not inherit direct mappings.
	 */
	if (madvise(m->va, m->va_len, MADV_DONTFORK) < 0)
		return udax__set_err(-errno, "madvise(MADV_DONTFORK): %s", strerror(errno));
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
		return udax__set_err(-ENOTSUP, "libpmem2 gave no cache-line persist function: "
				     "%s", pmem2_errormsg());
	m->persist = g_persist_cl;
	return 0;
}

/*
 * Make [addr, addr + len) of writable map @m durable: the cache-line
 * persist function (flushes + fence) where there is one, else msync of the
 * pages.  Return: 0, -errno.
 */
static int persist_range(struct udax_map *m, const void *addr, size_t len)
{
	if (m->persist) {
		m->persist(addr, len);
		return 0;
	}
	uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(PAGE - 1);
	uintptr_t end = ((uintptr_t)addr + len + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	if (end > start && msync((void *)start, end - start, MS_SYNC) < 0)
		return udax__set_err(-errno, "msync: %s", strerror(errno));
	return 0;
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
	return persist_range(m, dst, n);
}

bool udax__map_cache_clean(struct udax_map *m)
{
	if (!m->cache_flag)
		return false;
	atomic_thread_fence(memory_order_seq_cst);	/* the stores before the load */
	return atomic_load_explicit(m->cache_flag, memory_order_relaxed) == 0;
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
	return udax__conn_call(w, UDAX_REQ_INVAL, &rq, sizeof(rq), NULL, NULL, NULL);
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
		return udax__set_err(-errno, "fstat: %s", strerror(errno));
	if ((uint64_t)st.st_size >= off + len)
		return 0;
	if (fallocate(fd, 0, (off_t)off, (off_t)len) < 0)
		return udax__set_err(-errno, "growing the file to %" PRIu64 " bytes for the "
				     "mapping: %s", off + len, strerror(errno));
	return 0;
}

static int ask_hello(int fd, struct udax_ioc_hello *hello)
{
	int e = udax_wire_hello(fd, hello);
	if (e == -ENOTTY || e == -EINVAL || e == -ENOSYS || e == -EOPNOTSUPP)
		return udax__set_err(-ENOTTY, "not a file on a udaxfs mount (no layout service)");
	if (e == -EPROTO)
		return udax__set_err(-EPROTO, "udaxfs daemon speaks protocol %u, the library %u",
				     hello->version, UDAX_PROTO_VERSION);
	if (e)
		return udax__set_err(e, "UDAX_IOC_HELLO: %s", strerror(-e));
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

	udax__clear_err();
	if (!out)
		return udax__set_err(-EINVAL, "out is NULL");
	*out = NULL;
	if (off < 0 || len == 0 || (uint64_t)off % PAGE || len % PAGE ||
	    !(prot & PROT_READ) || (prot & ~(PROT_READ | PROT_WRITE)))
		return udax__set_err(-EINVAL, "offset and length must be page multiples, "
				     "prot PROT_READ or PROT_READ|PROT_WRITE");
	if (o && (o->flags & ~(UDAX_MAP_RECALL_FD | UDAX_MAP_KEEP_SIZE)))
		return udax__set_err(-EINVAL, "unknown flags %#x", o->flags);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return udax__set_err(-errno, "fcntl(F_GETFL): %s", strerror(errno));
	if ((prot & PROT_WRITE) && (fl & O_ACCMODE) == O_RDONLY)
		return udax__set_err(-EACCES, "the file is open read-only: no writable mapping");
	if (udax__recall_init() < 0)
		return udax__set_err(-ENOMEM, "memfd_create failed");

	m = calloc(1, sizeof(*m));
	if (!m)
		return udax__set_err(-ENOMEM, "out of memory");
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
			err = udax__set_err(-errno, "eventfd: %s", strerror(errno));
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
				udax__set_err(err, "cannot connect to the udaxfs layout service "
					      "%s: %s", hello.sock, strerror(-err));
				goto fail;
			}
		}
		memcpy(rq.ticket, hello.ticket, sizeof(rq.ticket));
		err = udax__conn_call(w, UDAX_REQ_MAP, &rq, sizeof(rq), &rp, &rlen, NULL);
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
		err = udax__set_err(-EPROTO, "short MAP reply");
		goto fail;
	}
	memcpy(&rep, rp, sizeof(rep));
	m->w = w;
	m->id = rep.id;
	m->ino = rep.ino;
	if (rlen < sizeof(rep) + (size_t)rep.nruns * sizeof(struct udax_run)) {
		err = udax__set_err(-EPROTO, "short MAP reply");
		goto fail_layout;
	}
	if (rep.off != m->goff || rep.len != m->glen) {
		err = udax__set_err(-EPROTO, "the daemon granted [%" PRIu64 ", +%" PRIu64 "), "
				    "not the aligned range around the request [%" PRIu64 ", +%"
				    PRIu64 ")", rep.off, rep.len, m->goff, m->glen);
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
		err = udax__set_err(-EPROTO, "the daemon sent no device descriptor");
		goto fail_layout;
	}
	err = map_runs(m, (const struct udax_run *)((char *)rp + sizeof(rep)), rep.nruns, dev_fd);
	if (!err)
		err = setup_persist(m, dev_fd);
	if (err)
		goto fail_layout;
	if ((m->prot & PROT_WRITE) && rep.cache_slot != UDAX_CACHE_SLOT_NONE) {
		uint32_t n = 0;
		const _Atomic uint32_t *tab = udax_wire_cachetab(w, &n);
		if (tab && rep.cache_slot < n)
			m->cache_flag = tab + rep.cache_slot;
	}
	/*
	 * Recalls reach the map from now on; one that came before (it
	 * overtook the MAP reply) is delivered now, and tears down the range
	 * just mapped.
	 */
	err = udax_wire_layout_add(w, m->id, udax__recall_cb, m);
	if (err) {
		udax__set_err(err, "registering the layout for recalls: %s", strerror(-err));
		goto fail_layout;
	}
	m->registered = true;
	free(rp);
	*out = m;
	return 0;

fail_layout: {
		struct udax_id_req ir = { rep.id };
		udax__conn_undo(w, UDAX_REQ_UNMAP, &ir, sizeof(ir));
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
		return udax__set_err(-EINVAL, "map is NULL");
	const char *a = addr;
	if (a < m->addr || len > m->len || a + len > m->addr + m->len)
		return udax__set_err(-EINVAL, "range is outside the mapping");
	if (!(m->prot & PROT_WRITE))
		return 0;		/* read-only: nothing to make durable */
	return persist_range(m, addr, len);
}

UDAX_EXPORT int udax_map_unmap(struct udax_map *m)
{
	int err = 0;
	if (!m)
		return udax__set_err(-EINVAL, "map is NULL");
	pthread_mutex_lock(&m->mu);
	if (m->recalled || m->unmapped)
		goto out;
	udax__io_drain(m);
	err = udax__sigbus_range(m->base, m->glen);
	if (err) {
		udax__set_err(err, "replacing the mapping: %s", strerror(-err));
		goto out;
	}
	m->unmapped = true;
	struct udax_id_req ir = { m->id };
	err = udax__conn_call(m->w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL, NULL);
	if (!err && !m->pinned)
		m->recalled = true;	/* the daemon forgot the layout: nothing left to return */
out:
	pthread_mutex_unlock(&m->mu);
	return err;
}

UDAX_EXPORT int udax_map_close(struct udax_map **mp)
{
	struct udax_map *m = mp ? *mp : NULL;
	int err = 0;
	if (!m)
		return 0;
	*mp = NULL;
	udax__map_unregister(m);
	udax__io_drain(m);
	pthread_mutex_lock(&m->mu);
	if (!m->recalled) {
		struct udax_id_req ir = { m->id };
		if (m->pinned) {
			struct io_uring *r = m->ring;
			err = udax__unregister_buf(m);
			if (!err)
				err = udax__pin_call(m, UDAX_REQ_UNPIN, r);
		}
		if (!m->unmapped) {
			udax__sigbus_range(m->base, m->glen);
			int e = udax__conn_call(m->w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL,
						NULL);
			if (!err && e != -ESTALE)
				err = e;
		}
	}
	pthread_mutex_unlock(&m->mu);
	udax_wire_put(&m->w);
	map_free(m);
	return err;
}
