/* SPDX-License-Identifier: MIT */
/*
 * udax_proto.h - the wire format between libudax (client) and the udaxfs
 * daemon's layout service.  Public (installed) so that other clients, the
 * LD_PRELOAD shim and `udaxctl status` speak the same protocol.
 *
 * How a request is bound to an open file (why this shape):
 *
 *  1. The client issues the FUSE ioctl UDAX_IOC_HELLO on a descriptor of the
 *     file (or of any file or directory on the mount).  The kernel only
 *     delivers it for a descriptor the caller really holds, so the daemon
 *     learns, from the kernel: the inode, the access mode the file was
 *     opened with, and the caller's uid/gid.  The daemon answers with the
 *     name of its layout socket and a one-time 128-bit ticket bound to
 *     (inode, access mode, uid, gid).  The kernel's permission check at
 *     open() is therefore what grants access.
 *  2. The client connects once per process and mount to that (abstract)
 *     unix socket and sends UDAX_REQ_MAP carrying the ticket.  The daemon
 *     checks that the ticket is unused and fresh, that the peer's
 *     SO_PEERCRED uid matches the ticket's, and that the uid/gid is allowed
 *     direct access (mount option dax_allow).  It then allocates and tracks
 *     the range and replies with device runs; the first reply that needs it
 *     carries the device descriptor (SCM_RIGHTS; read-only if the
 *     connection has only read-only layouts so far).
 *
 *  The socket name comes from the genuine daemon through the mount (step 1),
 *  so a process squatting a similar abstract name cannot impersonate it.
 *  Passing the file descriptor itself over SCM_RIGHTS was the alternative;
 *  it costs the same round trips but makes the daemon close() a descriptor
 *  of its own mount (a FLUSH request to itself) on every request.  The
 *  socket (rather than FUSE poll notifications) is the recall channel
 *  because the daemon must push recalls from break_layouts without blocking,
 *  and because a socket EOF plus a pidfd tells it when a client has died.
 *
 * Framing: a SOCK_STREAM connection carrying messages, each a struct
 * udax_msg header followed by hdr.len payload bytes.  Integers are in host
 * byte order (the socket never leaves the machine).  Requests carry a
 * client-chosen seq that the reply echoes; pushes (recalls) have seq 0.
 * Replies have UDAX_MSG_REPLY in type and status = 0 or -errno; on error the
 * payload may be a NUL-terminated human-readable reason.
 *
 * Messages:
 *   UDAX_REQ_MAP     -> struct udax_map_req      <- struct udax_map_rep + runs
 *   UDAX_REQ_PIN     -> struct udax_pin_req       <- (empty) 0 / -EBUSY (recall under way)
 *                       / -EOPNOTSUPP (the daemon cannot supervise that ring)
 *   UDAX_REQ_UNPIN   -> struct udax_pin_req       <- (empty) once the daemon has seen that the
 *                       kernel no longer holds the pages (see "Pins" below)
 *   UDAX_REQ_UNMAP   -> struct udax_id_req        <- (empty)   drops the map references;
 *                       pins taken through this layout stay until UNPIN (a pin outlives munmap)
 *   UDAX_REQ_RETURN  -> struct udax_return_req    (no reply)  a recalled layout is given back:
 *                       drops map and pin references of that layout
 *   UDAX_REQ_STATUS  -> (empty)                   <- status records (see below)
 *   UDAX_REQ_BREAKS  -> (empty)                   <- struct udax_break_rec[n] (see below);
 *                       -ENOSYS from a daemon that does not keep them
 *   UDAX_REQ_INVAL   -> struct udax_inval_req     <- (empty) once the kernel's page cache
 *                       of the range holds nothing older than the client's direct stores
 *                       made before the request (see struct udax_inval_req)
 *   UDAX_REQ_CACHETAB -> (empty)                  <- struct udax_cachetab_rep + a descriptor:
 *                       the page-cache flags of writable layouts (see udax_map_rep.cache_slot)
 *   UDAX_MSG_RECALL  <- struct udax_recall_msg    (daemon push)
 */
#ifndef UDAX_PROTO_H
#define UDAX_PROTO_H

#include <stdint.h>
#include <linux/ioctl.h>

#define UDAX_PROTO_VERSION 2
#define UDAX_MSG_MAGIC 0x55444158u	/* "UDAX" */

/* ---- step 1: FUSE ioctl on an open file of the mount ---- */
#define UDAX_SOCK_NAME_MAX 108
struct udax_ioc_hello {
	uint32_t version;		/* in: UDAX_PROTO_VERSION; out: the daemon's */
	uint32_t flags;			/* out: UDAX_HELLO_* */
	uint64_t ino;			/* out: the inode the ticket is bound to */
	uint8_t ticket[16];		/* out: one-time ticket, valid UDAX_TICKET_TTL_S */
	char sock[UDAX_SOCK_NAME_MAX];	/* out: socket name; a leading '@' means abstract */
	uint32_t media_kind;		/* out: 1 devdax (MAP_SYNC), 2 emulation */
	uint32_t pinnable;		/* out: 1 if io_uring can pin the device pages */
	uint64_t dev_size;		/* out: bytes */
	uint64_t dev_align;		/* out: every device mapping is aligned to this */
	uint64_t reserved[4];
};
#define UDAX_HELLO_WRITABLE	(1u << 0)	/* the descriptor was opened for writing */
#define UDAX_HELLO_ALLOWED	(1u << 1)	/* the caller is allowed direct access */
#define UDAX_TICKET_TTL_S	30

#define UDAX_IOC_MAGIC 0xDA
#define UDAX_IOC_HELLO _IOWR(UDAX_IOC_MAGIC, 1, struct udax_ioc_hello)

/* ---- step 2: the socket ---- */
enum udax_msg_type {
	UDAX_REQ_MAP = 1,
	UDAX_REQ_PIN = 2,
	UDAX_REQ_UNPIN = 3,
	UDAX_REQ_UNMAP = 4,
	UDAX_REQ_RETURN = 5,
	UDAX_REQ_STATUS = 6,
	UDAX_REQ_BREAKS = 7,
	UDAX_REQ_INVAL = 8,
	UDAX_REQ_CACHETAB = 9,
	UDAX_MSG_RECALL = 16,
};
#define UDAX_MSG_REPLY	0x8000u		/* or'ed into the request's type */
#define UDAX_MSG_MAX	(64u << 20)	/* largest payload either side accepts */

struct udax_msg {
	uint32_t magic;			/* UDAX_MSG_MAGIC */
	uint16_t type;			/* enum udax_msg_type, | UDAX_MSG_REPLY */
	uint16_t flags;			/* UDAX_MSGF_* */
	uint32_t len;			/* payload bytes that follow */
	uint32_t seq;			/* request id; 0 for pushes */
	int32_t status;			/* replies: 0 or -errno */
	uint32_t reserved;
};
#define UDAX_MSGF_FD	(1u << 0)	/* an SCM_RIGHTS descriptor rides on this message */

#define UDAX_PROT_READ	1u
#define UDAX_PROT_WRITE	2u

struct udax_map_req {
	uint8_t ticket[16];
	uint64_t off;			/* file byte offset, page aligned */
	uint64_t len;			/* bytes, page aligned, > 0 */
	uint32_t prot;			/* UDAX_PROT_* */
	uint32_t flags;			/* UDAX_MAP_F_* */
	uint64_t addr;			/* where the client maps the range in its own
					 * address space (0: not known yet) */
};
/*
 * Never change the file size, whatever the range (the page-rounded end of
 * an mmap(2) past EOF must not grow the file).  Without it a writable
 * grant grows the file to off + len, unless the mount lets the kernel own
 * the size (-o writeback_cache): then the grant fails with -EBUSY while
 * the file is shorter, and the client grows it through the mount first.
 */
#define UDAX_MAP_F_KEEP_SIZE	1u

struct udax_run {
	uint64_t dev_off;		/* device byte offset (aligned to dev_align) */
	uint64_t len;			/* bytes */
};

struct udax_map_rep {
	uint64_t id;			/* layout id, unique per connection */
	uint64_t ino;
	uint64_t off, len;		/* the granted file range (the request's) */
	uint32_t prot;			/* granted UDAX_PROT_* */
	uint32_t nruns;			/* struct udax_run[nruns] follow, in file order */
	uint32_t media_kind;		/* 1 devdax, 2 emulation */
	uint32_t fd_access;		/* if UDAX_MSGF_FD: O_RDONLY or O_RDWR */
	uint64_t dev_align;
	uint32_t cache_slot;		/* writable: its flag in the page-cache table, or
					 * UDAX_CACHE_SLOT_NONE */
	uint32_t reserved;
};
#define UDAX_CACHE_SLOT_NONE	0xffffffffu

/*
 * The page-cache table (UDAX_REQ_CACHETAB): a memfd of nslots 32-bit flags
 * that the daemon writes and clients map read-only (it is sealed against
 * writable mappings).  The flag of a writable layout is 0 while the kernel
 * holds no page of the layout's range that was read or written through the
 * mount since the daemon last dropped the range; the daemon sets it to
 * non-zero before it serves any READ (or cached WRITE) that overlaps the
 * range, and clears it only right before it drops the range's pages again
 * (the grant's invalidation, and every UDAX_REQ_INVAL of the layout).  So
 * a client that made its direct stores globally visible (a full fence)
 * and then reads 0 knows that no read through the mount can return what
 * was there before its stores: it need not ask for an invalidation.  A
 * non-zero flag says nothing: the client looks (cachestat(2)) or asks.
 */
struct udax_cachetab_rep {
	uint32_t nslots;
	uint32_t flags;			/* zero */
};

struct udax_id_req {
	uint64_t id;
};

/*
 * Pins.  A pin is a registration of (part of) a layout's mapping as io_uring
 * fixed buffers on one ring.  The client names the ring by its descriptor
 * number in the client process; the daemon takes its own reference to the
 * ring (pidfd_getfd) so that it can see, from the kernel, whether the ring
 * still holds the buffer, and revoke it, whoever holds the ring later (a
 * forked child, a process that took it with pidfd_getfd) and whether or
 * not the client drains.  A pin is released only when the daemon has seen
 * that the ring's table no longer covers [addr, addr + len) and that no
 * request that used the buffer is still in flight.
 */
struct udax_pin_req {
	uint64_t id;			/* the layout (first, as in struct udax_id_req) */
	int32_t ring_fd;		/* the ring's descriptor in the client; -1: not known */
	uint32_t flags;			/* zero */
	uint64_t addr, len;		/* the registered buffer, client virtual addresses */
};

struct udax_return_req {
	uint64_t id;
	uint64_t recall_seq;		/* the recall being answered */
};

/*
 * UDAX_REQ_INVAL: the client stored into [off, off + len) of a writable
 * layout @id and the kernel may cache pages of it (read through the mount
 * by a descriptor opened before the grant).  The daemon drops those pages
 * (FUSE's inval_inode: waits for pages being read in; the daemon drops
 * the whole layout's range and clears its page-cache flag) and answers once
 * they are gone, and once every invalidation it queued before the request
 * (a returned writable layout's) is done; so an unknown id (the layout was
 * recalled and given back meanwhile) is answered too, with 0.
 */
struct udax_inval_req {
	uint64_t id;
	uint64_t off, len;		/* file bytes */
};

struct udax_recall_msg {
	uint64_t id;			/* the layout recalled (all of it) */
	uint64_t recall_seq;
	uint64_t ino;
	uint64_t start, end;		/* page indexes of the break_layouts range, inclusive */
};

/*
 * UDAX_REQ_STATUS reply: a stream of status records, built by the daemon
 * and turned into text or JSON only by the reader (udaxctl status).  Any
 * connected user may ask; other users' clients are shown without pid, comm,
 * pin addresses and file names unless the asker is root or allowed direct
 * access.
 *
 * Unlike the rest of the protocol, status records are little-endian (they
 * are what a tool decodes, possibly from a dump), each with a struct
 * udax_srec header whose len counts header and body, is a multiple of 8
 * and is at least the size of that type's structure below.  A later daemon
 * may append fields to a record (a reader uses the ones it knows and skips
 * the rest by len) or add record types (a reader skips unknown types); a
 * change of meaning bumps UDAX_STATUS_VERSION, which a reader refuses.
 * Strings follow a record's fixed part, NUL-terminated, padded with NULs.
 *
 * The stream: one UDAX_SREC_HEAD first, one UDAX_SREC_END last (its
 * nrecords counts every record before it, so a reply cut short is seen),
 * and in between, in this order: the device, clients, each followed by
 * its layouts and pins, page runs, waiters, and the names of the files
 * that the layouts, page runs and waiters name (to an asker who is not
 * root nor allowed direct access: of its own layouts' files only).  No
 * record is cut silently: what a limit leaves out (UDAX_STATUS_MAX_RECORDS,
 * or half of UDAX_MSG_MAX bytes) is counted in the END record's dropped.
 */
#define UDAX_STATUS_VERSION	1
#define UDAX_STATUS_MAX_RECORDS	(1u << 18)

enum udax_srec_type {
	UDAX_SREC_HEAD = 1,		/* struct udax_srec_head, then the mount point */
	UDAX_SREC_DEVICE = 2,		/* struct udax_srec_device, then the device path */
	UDAX_SREC_CLIENT = 3,		/* struct udax_srec_client */
	UDAX_SREC_LAYOUT = 4,		/* struct udax_srec_layout */
	UDAX_SREC_PIN = 5,		/* struct udax_srec_pin */
	UDAX_SREC_PAGES = 6,		/* struct udax_srec_pages */
	UDAX_SREC_WAITER = 7,		/* struct udax_srec_waiter */
	UDAX_SREC_FILE = 8,		/* struct udax_srec_file, then the path */
	UDAX_SREC_END = 15,		/* struct udax_srec_end */
};

struct udax_srec {
	uint16_t type;			/* enum udax_srec_type */
	uint16_t reserved;		/* zero */
	uint32_t len;			/* bytes of the record, this header included */
};

struct udax_srec_head {
	struct udax_srec h;
	uint32_t version;		/* UDAX_STATUS_VERSION */
	int32_t pid;			/* the daemon's */
	uint64_t quarantined_blocks;	/* pins of an earlier mount never seen released */
	/* the page handles (struct dx_dax_stats) */
	uint64_t tracked_entries, live_handles, busy_handles, waiters;
	uint64_t handle_bytes, unsafe_frees;
};

#define UDAX_SDEV_DEVDAX	1	/* a device-DAX character device */
#define UDAX_SDEV_EMULATION	2	/* a regular file standing in for one */
struct udax_srec_device {
	struct udax_srec h;
	uint64_t size;			/* bytes */
	uint64_t align;			/* every mapping of it is aligned to this */
	int32_t target_node;		/* NUMA node, -1 unknown */
	uint32_t mode;			/* UDAX_SDEV_* */
};

#define UDAX_SCLIENT_ALIVE	(1u << 0)	/* its process has not exited */
#define UDAX_SCLIENT_ASKER	(1u << 1)	/* the connection that asked */
struct udax_srec_client {
	struct udax_srec h;
	uint32_t cid;			/* its number in this reply (layouts, pins) */
	int32_t pid;			/* 0: not shown to the asker */
	uint32_t uid;
	uint32_t flags;			/* UDAX_SCLIENT_* */
	uint64_t age_ns;		/* since it connected */
	char comm[32];			/* NUL-terminated; empty when not shown */
};

#define UDAX_SLAYOUT_WRITABLE	(1u << 0)
#define UDAX_SLAYOUT_MAPPED	(1u << 1)	/* map references held */
#define UDAX_SLAYOUT_RECALLING	(1u << 2)	/* recall sent, not returned yet */
struct udax_srec_layout {
	struct udax_srec h;
	uint32_t cid;
	uint32_t flags;			/* UDAX_SLAYOUT_* */
	uint64_t id, ino, off, len;	/* the granted byte range */
	uint32_t pins;
	uint32_t reserved;
	uint64_t age_ns, pin_age_ns;	/* pin_age_ns 0 when not pinned */
};

#define UDAX_SPIN_ADOPTED	(1u << 0)	/* found on a ring the client never declared */
#define UDAX_SPIN_SUPERVISED	(1u << 1)	/* the daemon holds the ring and can revoke */
#define UDAX_SPIN_RELEASING	(1u << 2)	/* its end waits for the kernel's word */
struct udax_srec_pin {
	struct udax_srec h;
	uint32_t cid;
	uint32_t flags;			/* UDAX_SPIN_* */
	uint64_t layout_id;
	uint64_t addr, len;		/* the buffer, client virtual addresses */
	int32_t ring_fd;		/* the ring's descriptor in the client, -1 unknown */
	uint32_t reserved;
};

/*
 * A run of referenced pages: consecutive page indexes of one file on
 * consecutive device pages whose handles have the same order and counts.
 * Only pages with a non-zero refcount are listed.
 */
#define UDAX_SPAGES_TRACKED	(1u << 0)	/* still in the file's mapping */
struct udax_srec_pages {
	struct udax_srec h;
	uint64_t ino;
	uint64_t index;			/* the first page index (4 KiB units) */
	uint64_t npages;		/* 4 KiB pages in the run */
	uint64_t pfn;			/* the first device page */
	uint32_t handles;		/* page handles merged (one per 4 KiB or 2 MiB) */
	uint32_t order;			/* each handle's (0 or 9) */
	uint32_t refcount, mapcount, pincount;	/* each handle's */
	uint32_t flags;			/* UDAX_SPAGES_* */
	uint64_t age_ns;		/* the oldest handle's */
};

#define UDAX_SWAITER_ENTRY_LOCK	(1u << 0)	/* waits for a locked entry, not a page */
struct udax_srec_waiter {
	struct udax_srec h;
	uint64_t ino;
	uint64_t start, end;		/* page indexes, inclusive; end UINT64_MAX: EOF */
	uint64_t wait_index, wait_pfn;	/* the busy page it sleeps on */
	uint32_t refcount;		/* that page's refcount now */
	uint32_t flags;			/* UDAX_SWAITER_* */
	uint64_t waiting_ns;
};

/*
 * A file's name, found by the daemon in its own directories (no lookup
 * through the mount, so a file whose truncate waits is named all the same).
 * One of its names when it has several.  A file named nowhere in the
 * reply has no FILE record (names withheld from this asker).
 */
#define UDAX_SFILE_UNLINKED	(1u << 0)	/* no name left (open or mapped only) */
#define UDAX_SFILE_UNKNOWN	(1u << 1)	/* not searched: the directory walk's limit */
struct udax_srec_file {
	struct udax_srec h;
	uint64_t ino;
	uint32_t flags;			/* UDAX_SFILE_*; with either, the path is empty */
	uint32_t reserved;
};

struct udax_srec_end {
	struct udax_srec h;
	uint64_t nrecords;		/* records before this one */
	uint64_t dropped;		/* records left out by the limits above */
};

/*
 * UDAX_REQ_BREAKS reply: the daemon-side timestamps of the most recent
 * break_layouts calls made for truncate / punch / zero / collapse / unlink
 * (at most UDAX_BREAKS_MAX, oldest first), for `udaxctl bench
 * truncate-dma`.  Times are CLOCK_MONOTONIC nanoseconds (the same clock
 * as the clients'), 0 when not reached; the first five are the fields of
 * struct dx_break_stats (src/core/dax.h); t_freed is when the file
 * system call that freed the blocks returned.
 */
#define UDAX_BREAKS_MAX 4096
struct udax_break_rec {
	uint64_t ino;
	uint64_t start, end;		/* page indexes, inclusive; end UINT64_MAX: EOF */
	uint64_t t_start;		/* layout lock taken */
	uint64_t t_recall_sent;		/* first recall queued */
	uint64_t t_last_unpin;		/* the put that made the range idle */
	uint64_t t_idle;		/* a full pass found nothing busy */
	uint64_t t_done;		/* entries deleted */
	uint64_t t_freed;		/* blocks freed, the operation about to reply */
	uint32_t passes, waits;
	int32_t result;			/* 0 or -errno of the operation */
	uint32_t reserved;
};

#endif /* UDAX_PROTO_H */
