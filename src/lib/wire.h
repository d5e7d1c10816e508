/* SPDX-License-Identifier: MIT */
/*
 * wire.h - the one client of the layout protocol (udax_proto.h), shared by
 * libudax.so, libudax-preload.so, udaxctl and the tests.  Not installed: a
 * convenience library linked (with hidden visibility) into each of them, so
 * a process holding libudax.so and the shim has one copy, and one
 * connection per daemon, in each.
 *
 * A struct udax_wire is one connection to one daemon's layout socket:
 *  - framing with partial sends and receives; requests are matched to
 *    replies by seq, so any number of threads may have a request in flight;
 *  - one reader thread per connection, with every signal blocked, reads
 *    every message: replies, the device descriptors that ride on them
 *    (SCM_RIGHTS; kept open by the connection until it is freed) and
 *    recalls, which it hands to the callback registered for the layout id;
 *  - a recall for a layout id that has no callback yet (the recall overtook
 *    its MAP reply on the way to the caller) is kept, and delivered when the
 *    callback is added;
 *  - the end of the connection (the daemon died or the file system was
 *    unmounted) is reported to every registered callback, as a recall;
 *  - fork: a child never uses its parent's connections.  Its first
 *    udax_wire_get() connects afresh; a connection inherited from the parent
 *    is inert in the child (calls fail with -ENOTCONN, layout_add/del and put
 *    do nothing) and its socket and descriptors are closed in the child
 *    (which does not affect the parent's).
 *
 * Conventions: return 0 or -errno; no errno channel.
 */
#ifndef UDAX_WIRE_H
#define UDAX_WIRE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

#include <udax/udax_proto.h>

#ifndef MAP_SHARED_VALIDATE	/* C libraries older than these flags */
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

struct udax_wire;

/*
 * A recall (or the loss of the daemon) for one layout.  @r is the recall
 * (NULL when @daemon_lost).  Runs on the connection's reader thread, or on
 * the thread calling udax_wire_layout_add() for a recall that arrived
 * before it; never twice at once for one layout.  It must not wait for a
 * reply on this connection (only the reader thread can read it):
 * udax_wire_send() is fine, udax_wire_call() is not.  It may call
 * udax_wire_layout_del() for its own layout.
 */
typedef void (*udax_wire_recall_fn)(void *arg, const struct udax_recall_msg *r,
				    bool daemon_lost);

/*
 * udax_wire_hello() - UDAX_IOC_HELLO on @fd (a file or directory of the
 * mount): the ticket and the daemon's socket name.
 * Return: 0; -EPROTO if the daemon speaks another protocol version; the
 * ioctl's -errno (-ENOTTY, -EINVAL...: not a udaxfs mount).
 */
int udax_wire_hello(int fd, struct udax_ioc_hello *out);

/*
 * udax_wire_get() - the process's connection to the daemon behind
 * @sock_name (a hello's sock), connecting on first use or after the previous
 * one ended.  Shared: every caller of one name gets the same connection.
 * udax_wire_open() - a new private connection (tests of per-connection
 * checks, one-shot tools); it is closed by its last udax_wire_put().
 * Return: 0, -ECONNREFUSED / -ENOENT... from connect(), -ENOMEM, -EAGAIN
 * (no thread).
 */
int udax_wire_get(struct udax_wire **out, const char *sock_name);
int udax_wire_open(struct udax_wire **out, const char *sock_name);
/* One more reference to a connection the caller holds (released by udax_wire_put). */
void udax_wire_hold(struct udax_wire *w);
/* Drop a reference; NULL-safe; clears *w. */
void udax_wire_put(struct udax_wire **w);

/*
 * udax_wire_call() - send a request and wait for its reply.
 * @rep (may be NULL): the reply's payload, malloc'd and NUL-terminated
 *	after @rep_len bytes, or NULL when empty; also set when the status is
 *	an error (the daemon's reason as text).  The caller frees it.
 * @rep_fd (may be NULL): the descriptor that came with the reply or -1;
 *	owned by the connection (open until the connection is freed).
 * Return: the reply's status (0 or -errno); -ENOTCONN if the connection
 * ended before the reply (or in a forked child); -errno of a failed send.
 */
int udax_wire_call(struct udax_wire *w, uint16_t type, const void *req, uint32_t len,
		   void **rep, uint32_t *rep_len, int *rep_fd);
/* Send a message that has no reply (UDAX_REQ_RETURN).  Return 0 or -errno. */
int udax_wire_send(struct udax_wire *w, uint16_t type, const void *req, uint32_t len);

/*
 * udax_wire_map_runs() - map the device runs of a MAP reply (@runs, @nruns,
 * in file order) back to back at @at, from the device descriptor @dev_fd
 * (udax_wire_dev_fd()), readable and, when @write, writable; MAP_SYNC when
 * the reply's media is a device-DAX (@devdax).  The runs must cover exactly
 * @len bytes.  @map is the mmap() to call (the preload shim passes the C
 * library's, past its own).
 * Return: 0; -EPROTO if the runs do not add up to @len; the -errno of a
 * failed mmap, with its run's device offset in *@bad_off.  What was mapped
 * before a failure stays mapped (MAP_FIXED: the caller's range).
 */
typedef void *(*udax_wire_mmap_fn)(void *, size_t, int, int, int, off_t);
int udax_wire_map_runs(udax_wire_mmap_fn map, char *at, uint64_t len,
		       const struct udax_run *runs, uint32_t nruns, bool write, bool devdax,
		       int dev_fd, uint64_t *bad_off);

/*
 * The daemon's page-cache table, mapped read-only once per connection
 * (UDAX_REQ_CACHETAB), its slot count in *n; NULL if the daemon has none.
 * Valid while the connection is referenced.
 */
const _Atomic uint32_t *udax_wire_cachetab(struct udax_wire *w, uint32_t *n);
/* The latest device descriptor received, or -1.  Owned by the connection. */
int udax_wire_dev_fd(struct udax_wire *w);
/* true once the connection ended (EOF, protocol error, or inherited over fork). */
bool udax_wire_dead(struct udax_wire *w);

/*
 * udax_wire_layout_add() - send recalls of layout @id to @fn.  A recall that
 * arrived earlier is delivered now, on this thread, before returning; so is
 * the daemon's loss if the connection already ended.  Add the layout only
 * once the range it grants is mapped (a callback then finds something to
 * tear down), and before telling anybody the mapping exists.
 * Return: 0, -ENOMEM, -ENOTCONN (forked child).
 */
int udax_wire_layout_add(struct udax_wire *w, uint64_t id, udax_wire_recall_fn fn, void *arg);
/*
 * udax_wire_layout_del() - no more callbacks for @id: waits until a running
 * one returns (unless called from it).  Unknown ids are ignored.
 */
void udax_wire_layout_del(struct udax_wire *w, uint64_t id);

#endif /* UDAX_WIRE_H */
