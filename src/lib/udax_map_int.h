/* SPDX-License-Identifier: MIT */
/*
 * udax_map_int.h - struct udax_map and what libudax's map files share:
 * libudax.c (opening, unmapping and closing maps), udax_err.c (errors and
 * the requests that report them), udax_pin.c (io_uring fixed buffers) and
 * udax_recall.c (recalls, the copy gate, the SIGBUS backing).  Not
 * installed; nothing here is exported from the library.  udax_io.c sees
 * maps only through libudax_int.h.
 */
#ifndef UDAX_MAP_INT_H
#define UDAX_MAP_INT_H

#include <libpmem2.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "libudax_int.h"
#include "wire.h"

#define UDAX_EXPORT __attribute__((visibility("default")))

/*
 * One direct mapping: a contiguous range of the process mapping the device
 * runs of a file range, the persist function, the pin state, and a
 * reference to its connection (wire.h: one per process and daemon, with
 * the reader thread that delivers recalls to udax__recall_cb()).
 *
 * Locks: mu -> g_rc_lock (udax_recall.c); the connection's own locks are
 * inside wire.c.  mu is never held while the application's recall handler
 * runs.
 */
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
	const _Atomic uint32_t *cache_flag;	/* writable: the daemon's page-cache flag of
						 * the layout (wire.h), or NULL */

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

/* udax_err.c: udax_last_error() says nothing (a call that may fail begins). */
void udax__clear_err(void);
/*
 * udax_err.c: send a request and wait for its reply, with the daemon's
 * reason in udax_last_error() on failure.
 * Return: the reply's status (0 or -errno) or a transport error.
 */
int udax__conn_call(struct udax_wire *w, uint16_t type, const void *p, size_t len, void **rp,
		    uint32_t *rlen, int *rfd);
/*
 * udax_err.c: a request that undoes part of a failed operation: its own
 * failure leaves udax_last_error() on the reason of the first.
 */
void udax__conn_undo(struct udax_wire *w, uint16_t type, const void *p, size_t len);

/* udax_recall.c: set up what recalls need, once.  Return: 0, -ENOMEM. */
int udax__recall_init(void);
/*
 * udax_recall.c: a recall of @arg's layout (a struct udax_map), or the end
 * of its connection: queue it for the recall thread or the map's eventfd.
 * The wire callback registered for every map (udax_wire_layout_add).
 */
void udax__recall_cb(void *arg, const struct udax_recall_msg *r, bool daemon_lost);
/*
 * udax_recall.c: take @m off the recall path: no callback runs for it any
 * more, none is queued, and none of its handlers is running.
 */
void udax__map_unregister(struct udax_map *m);
/*
 * udax_recall.c: refuse new copies on @m and wait for those in progress;
 * from now on no copy touches the range.  Context: any.
 */
void udax__io_drain(struct udax_map *m);
/* udax_recall.c: replace [va, va+len) by a mapping that raises SIGBUS on access. */
int udax__sigbus_range(void *va, size_t len);

/* udax_pin.c: unregister the map's buffer from its ring.  Context: m->mu held. */
int udax__unregister_buf(struct udax_map *m);
/* udax_pin.c: the PIN / UNPIN request for the whole map on @ring.  Context: m->mu held. */
int udax__pin_call(struct udax_map *m, uint16_t type, struct io_uring *ring);

#endif /* UDAX_MAP_INT_H */
