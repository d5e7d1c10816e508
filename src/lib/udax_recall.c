/* SPDX-License-Identifier: MIT */
/*
 * udax_recall.c - libudax's recalls: the daemon takes a layout back (a
 * truncate, a hole punch, a conflicting grant) or its connection ends.
 *
 * The connection's reader thread (wire.c) calls udax__recall_cb(), which
 * queues the map for the recall thread (rc_main) or signals the map's
 * eventfd (UDAX_MAP_RECALL_FD: the application calls udax_recall_process()).
 * The recall thread runs the applications' recall handlers; a handler may
 * call udax_unpin(), which waits for a reply that only the reader thread
 * can read, so handlers never run on a reader thread.  do_recall() then
 * drains the map's copies (the copy gate below), unregisters its buffer,
 * replaces its range by the SIGBUS backing and gives the layout back.
 *
 * Locks: map->mu -> g_rc_lock.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "udax_map_int.h"

static int g_sigbus_fd = -1;		/* an empty memfd: mapping it raises SIGBUS on access */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/*
 * The recall thread: runs the applications' recall handlers.  A handler may
 * call udax_unpin(), which waits for a reply that only the connection's
 * reader thread can read, so handlers never run on a reader thread.
 */
static pthread_mutex_t g_rc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_rc_cond = PTHREAD_COND_INITIALIZER;	/* work queued / rc_busy cleared */
static struct udax_map *g_rc_head;	/* g_rc_lock */
static bool g_rc_started;		/* g_rc_lock */

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

int udax__recall_init(void)
{
	pthread_once(&g_once, once_init);
	return g_sigbus_fd < 0 ? -ENOMEM : 0;
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
void udax__recall_cb(void *arg, const struct udax_recall_msg *r, bool daemon_lost)
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

/* Replace [va, va+len) by a mapping that raises SIGBUS on access. */
int udax__sigbus_range(void *va, size_t len)
{
	void *p = mmap(va, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, g_sigbus_fd, 0);
	if (p == MAP_FAILED)
		p = mmap(va, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	return p == MAP_FAILED ? -errno : 0;
}

/*
 * udax__io_drain() - refuse new udax_pread()/udax_pwrite() copies on @m and
 * wait for those in progress; from now on no copy touches the range.
 * UDAX_TEST_RECALL_NO_DRAIN=1 (a test aid, see udax_pread(3)) skips the
 * wait so that the stale-data checker can prove it sees the failure.
 * Context: any; copies are short (bounded by their length), so a yield
 * loop is enough.
 */
void udax__io_drain(struct udax_map *m)
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

/*
 * Take @m off the recall path: no callback runs for it any more, none is
 * queued, and none of its handlers is running.
 */
void udax__map_unregister(struct udax_map *m)
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
		udax__io_drain(m);
		if (m->pinned)
			/* the handler promised: nothing in flight */
			udax__unregister_buf(m);
		if (!m->unmapped)
			udax__sigbus_range(m->base, m->glen);
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
		return udax__set_err(-EINVAL, "map is NULL");
	if (m->efd < 0)
		return udax__set_err(-EINVAL, "the map was opened without UDAX_MAP_RECALL_FD");
	return m->efd;
}

UDAX_EXPORT int udax_recall_process(struct udax_map *m)
{
	if (!m)
		return udax__set_err(-EINVAL, "map is NULL");
	if (m->efd >= 0) {
		uint64_t v;
		ssize_t r = read(m->efd, &v, sizeof(v));
		(void)r;
	}
	return do_recall(m);
}

