/* SPDX-License-Identifier: MIT */
/*
 * udax.h - libudax: direct access to files on a udaxfs mount.
 *
 * A process opens a file on the mount as usual, then asks for a direct
 * mapping (a "layout") of a range of it: the daemon allocates the blocks,
 * tracks their pages and hands back where they live on the device; the
 * library maps those device pages into one contiguous range of the
 * process.  Loads and stores then go straight to the device, and
 * udax_persist() makes stores durable with CPU cache flushes (libpmem2), no
 * msync.  On a real device-DAX the mapping is MAP_SHARED_VALIDATE|MAP_SYNC;
 * on an emulation file it is MAP_SHARED.
 *
 * The mapped pages may be registered as io_uring fixed buffers (udax_pin),
 * which long-term pins them in the kernel, the stand-in for device DMA.  A
 * truncate, hole punch, zero/collapse/insert range or unlink from anyone
 * else then waits until the pages are idle: the daemon sends a recall, the
 * library calls the application's handler (which must stop issuing I/O on
 * the buffer and reap every completion that used it), unregisters the
 * buffer, replaces the mapping so that a late access raises SIGBUS (as
 * after a kernel truncate), and gives the layout back.  Only then are the
 * blocks freed.
 *
 * Requests are bound to an open file through a FUSE ioctl on its
 * descriptor, so the kernel's permission check at open() is what grants
 * access; a file opened read-only never gets a writable mapping, and only
 * users allowed by the mount option dax_allow get direct access at all
 * (the device descriptor reaches the whole device).  See udax_proto.h for
 * the protocol and why it has that shape, and libudax(7).
 *
 * Conventions: every function returns 0 (or a non-negative value) on
 * success and -errno on failure; errno is not used as the channel.
 * udax_last_error() gives a human-readable reason for the last failure in
 * the calling thread.  Functions are thread-safe for distinct maps; one map
 * must not be used by two threads at once, except that the recall machinery
 * runs concurrently with the owner (see udax_map_open(3)).  After fork()
 * the child must not use the parent's maps; its first udax_map_open()
 * opens its own connection.  When the connection to the daemon ends (the
 * daemon died, the file system was unmounted) every map is handled as
 * recalled (handler, unpin, SIGBUS range; udax_map_recalled() says 1).
 */
#ifndef UDAX_UDAX_H
#define UDAX_UDAX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udax_map;
struct io_uring;

/*
 * A recall handler: stop issuing I/O that uses the map's pages and reap
 * every completion that did; return when none is in flight.  Called on a
 * library thread (default) or from udax_recall_process() (with
 * UDAX_MAP_RECALL_FD).  It may call udax_unpin() itself; it must not call
 * udax_map_close() on @map.
 */
typedef void (*udax_recall_fn)(struct udax_map *map, void *arg);

/* udax_map_opts.flags */
#define UDAX_MAP_RECALL_FD	(1u << 0)	/* no library thread calls the handler:
						 * poll udax_recall_fd(), call
						 * udax_recall_process() */

struct udax_map_opts {
	udax_recall_fn recall;		/* may be NULL */
	void *recall_arg;
	unsigned int flags;		/* UDAX_MAP_* */
	unsigned int reserved[7];	/* zero */
};

/* udax_pin(): let the library choose (register the ring's only buffer table). */
#define UDAX_PIN_ANY (~0u)

/*
 * udax_map_open() - map [off, off + len) of the udaxfs file open as @fd.
 * @prot: PROT_READ, or PROT_READ|PROT_WRITE (needs @fd open for writing).
 * Mapping allocates the whole range (there is no fault handling on a
 * device-DAX mapping); a writable mapping past EOF extends the file.
 * @off and @len must be multiples of the page size.  @o may be NULL.
 */
int udax_map_open(struct udax_map **out, int fd, off_t off, size_t len, int prot,
		  const struct udax_map_opts *o);
/* udax_map_close() - unpin (if pinned), unmap, give the layout back; NULL-safe; clears *mp. */
int udax_map_close(struct udax_map **mp);

void *udax_map_addr(const struct udax_map *map);
size_t udax_map_len(const struct udax_map *map);
off_t udax_map_offset(const struct udax_map *map);
/* 1 if the daemon recalled the layout (the range now raises SIGBUS), else 0. */
int udax_map_recalled(const struct udax_map *map);

/* udax_persist() - make stores to [addr, addr + len) durable (flush + fence). */
int udax_persist(struct udax_map *map, const void *addr, size_t len);

/*
 * udax_pin() - register the whole map as one io_uring fixed buffer.
 * *buf_index == UDAX_PIN_ANY: the ring must have no registered buffers; the
 * map becomes buffer 0.  Otherwise: update slot *buf_index of a table
 * registered with io_uring_register_buffers_sparse().  The daemon grants
 * the pin first (refused with -EBUSY while a recall is under way).
 */
int udax_pin(struct udax_map *map, struct io_uring *ring, unsigned int *buf_index);
/*
 * udax_unpin() - the caller has reaped every completion that used the
 * buffer: unregister it, then tell the daemon the pages are idle.
 */
int udax_unpin(struct udax_map *map, struct io_uring *ring);
/*
 * udax_map_unmap() - drop the mapping (the address range becomes SIGBUS and
 * the daemon drops the map references) but keep a pin: exactly like
 * munmap() of a buffer still registered with io_uring.  Truncate still
 * waits for the pin.
 */
int udax_map_unmap(struct udax_map *map);

/*
 * udax_recall_fd() - with UDAX_MAP_RECALL_FD: a descriptor that polls
 * readable while a recall is pending; then call udax_recall_process().
 */
int udax_recall_fd(struct udax_map *map);
/* Handle a pending recall.  Return: 1 handled, 0 none pending, -errno. */
int udax_recall_process(struct udax_map *map);

/* Reason for the last failure in this thread ("" if none). */
const char *udax_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* UDAX_UDAX_H */
