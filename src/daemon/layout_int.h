/* SPDX-License-Identifier: MIT */
/*
 * layout_int.h - the layout service's own objects, shared by its files
 * (not by the rest of the daemon, which sees layout.h only):
 *
 *   layout.c         start, stop, the HELLO ioctl and its tickets
 *   layout_conn.c    connections: the event thread, framing, output queues,
 *                    accept limits, client exit and reaping
 *   layout_grant.c   layouts: MAP (grant threads), UNMAP, RETURN, references
 *   layout_pin.c     pins: PIN, UNPIN, supervision of rings, discovery
 *   layout_recall.c  recalls for break_layouts and the record of breaks
 *   layout_status.c  status records (UDAX_REQ_STATUS)
 *   layout_acl.c     dax_allow: who may have direct access
 *   layout_inval.c   the notifier thread (page-cache invalidation)
 *   layout_cache.c   the page-cache table: a flag per writable layout that
 *                    tells its client whether a direct store may have gone
 *                    around a page the kernel caches
 *
 * Objects:
 *
 *   struct layout_service  the service: listening socket, tickets, clients.
 *   struct lclient  one connection (one client process): its credentials,
 *                   a pidfd, input buffer, output queue, layouts.
 *   struct lmap     one layout: inode, byte range, writable, segments (each
 *                   a page handle), whether the map references are held
 *                   and how many pins were granted on it.
 *   struct lpin     one pin on a layout; struct lring, the daemon's own
 *                   reference to the ring it is registered on.
 *
 * Threads and lock order: layout.h.  Functions named ls_* are shared
 * between these files; each states its context where it is defined.
 */
#ifndef UDAXD_LAYOUT_INT_H
#define UDAXD_LAYOUT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <udax/udax_proto.h>

#include "core/dax.h"
#include "layout.h"
#include "core/media.h"
#include "core/ufs.h"

#define MAX_TICKETS 1024
#define MAX_ALLOW 64
#define MAX_GROUPS 64
/* A client that does not read its replies loses its connection past this. */
#define OUT_MAX_BYTES (64u << 20)
/* Grants in flight per client (each has a thread). */
#define MAX_GRANTS 32
/*
 * What one connection may cost.  Any local user can connect (the socket is
 * abstract); only a ticket (a file opened on the mount) leads to layouts.
 * With these limits the connections take at most about 2 x CONN_MAX_TOTAL
 * descriptors (socket + pidfd) of the daemon's 20000 and, for input, at
 * most IN_BUF_BYTES each while a message is being received.
 */
#define CONN_MAX_TOTAL 1024		/* open connections, all users */
#define CONN_ROOT_RESERVE 256		/* ... and this many more for uid 0 */
#define CONN_MAX_PER_UID 128		/* open connections of one uid */
#define IN_BUF_BYTES (16u << 10)	/* input buffered per connection */
#define OUT_PAUSE_BYTES (256u << 10)	/* stop reading requests while this much waits */
#define NOTICKET_TIMEOUT_S 10
#define LS_INO_HASH_BITS 10		/* chains of layouts by inode */		/* a connection that never presented a ticket */

struct ticket {
	uint8_t key[16];
	uint64_t ino;
	bool writable;
	bool used;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	uint64_t t_ns;
};

enum lmap_state { LM_GRANTING, LM_ACTIVE };

/* The daemon's own reference to a client's ring (pidfd_getfd). */
struct lring {
	struct lring *next;		/* cl->rings; ls->lock */
	int fd;				/* our descriptor; const */
	int info;			/* its /proc/self/fdinfo, kept open; const */
	int client_fd;			/* its number in the client when taken; const */
	unsigned int users;		/* lpins on it; ls->lock */
};

/*
 * One pin: a registered buffer over a layout's pages, declared by the
 * client (PIN) or adopted by discovery.  Holds one UDAX_REF_PIN per
 * segment of its layout until the daemon has seen, from the kernel, that
 * the ring no longer reaches the pages (pin_release()).
 */
struct lpin {
	struct lpin *next;		/* lm->pinlist; ls->lock */
	struct lring *ring;		/* NULL: not supervised (verification off), or
					 * adopted from a ring the daemon could not take:
					 * then watched through /proc; const */
	uint64_t addr, len;		/* the buffer, client virtual addresses; const */
	bool adopted;			/* found by discovery; const */
	bool want_release;		/* UNPIN, RETURN, UNMAP (adopted), death; ls->lock */
	bool revoking;			/* the event thread works on it; ls->lock */
	uint32_t unpin_seq;		/* an UNPIN waiting for the release (0: none);
					 * event thread */
	uint64_t t_fail_log;		/* last failure logged; event thread */
	bool t_fail_log_round;		/* visited by this retry round; ls->lock */
};

struct lmap {
	struct lmap *next;		/* cl->maps; ls->lock */
	struct lmap *ino_next;		/* its inode's chain in ls->ino_hash; see there */
	struct lmap **ino_pprev;	/* what points at it there; see there */
	struct lclient *cl;
	uint64_t id, ino, off, len;	/* the granted range: device-aligned */
	uint64_t size_end;		/* i_size grows to it (0: UDAX_MAP_F_KEEP_SIZE) */
	bool writable;
	enum lmap_state state;		/* ls->lock */
	bool mapped;			/* MAP refs held; ls->lock */
	unsigned int pins;		/* PIN refs per segment (lpins in pinlist); ls->lock */
	struct lpin *pinlist;		/* ls->lock */
	uint64_t va;			/* client address of file offset off (MAP.addr;
					 * 0: unknown); ls->lock */
	bool recall_pending;		/* recalled while GRANTING; ls->lock */
	bool recall_sent;		/* ls->lock */
	bool reap_seen;			/* client_reap's round; ls->lock */
	uint64_t recall_seq;		/* ls->lock */
	uint32_t cslot;			/* writable: its page-cache flag (layout_cache.c),
					 * or UDAX_CACHE_SLOT_NONE; const */
	uint64_t t_grant, t_pin;
	uint64_t prec_key;		/* its record in ls->pinrec while pins > 0; event thread */
	size_t nseg;			/* set before ACTIVE, const after */
	struct ufs_layout_seg *segs;
};

struct outbuf {
	struct outbuf *next;
	size_t len, off;
	int fd;				/* -1, or a descriptor to pass with byte 0 */
	char data[];
};

struct lclient {
	struct lclient *next;		/* ls->clients; ls->lock */
	int sock;			/* -1 after EOF; event thread */
	int pidfd;			/* -1 after exit; written by the event thread
					 * under ls->lock */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	char comm[32];
	uint64_t t_connect;
	bool eof, exited;		/* event thread (read under ls->lock by status) */
	bool ticketed;			/* presented a valid ticket once; event thread */
	bool paused;			/* too much output waiting: not reading; event thread */
	uint32_t ev_mask;		/* the socket's epoll events; event thread */
	int fd_access;			/* -1, O_RDONLY, O_RDWR: the device fd sent; ls->lock */
	uint64_t next_id;		/* ls->lock */
	struct lmap *maps;		/* ls->lock */
	unsigned int grants;		/* grant and status threads and UDAX_REQ_INVALs in flight;
				 * ls->lock */
	bool want_out;			/* EPOLLOUT armed; event thread */
	char *in;			/* event thread */
	size_t in_len, in_cap;
	struct outbuf *out_head, *out_tail;	/* ls->lock */
	size_t out_bytes;		/* queued; ls->lock */
	bool overflow;			/* out_bytes would pass OUT_MAX_BYTES; ls->lock */
	struct lring *rings;		/* our references to its rings; ls->lock */
	bool adopt_logged;		/* an adoption was logged; ls->lock */
	bool recall_mark;		/* visited by this layout_recall(); ls->lock */
};

struct inval {
	struct inval *next;
	uint64_t ino, off, len;		/* len 0: nothing to drop (a barrier) */
	uint32_t cslot;			/* clear this page-cache flag right before the drop
					 * (holds a reference), or UDAX_CACHE_SLOT_NONE */
	struct lclient *cl;		/* UDAX_REQ_INVAL: answer it (holds a cl->grants count) */
	uint32_t seq;
};

struct allow {
	bool gid;
	uint32_t id;
};

struct layout_service {
	struct ufs *fs;
	struct dx_media *media;
	char mountpoint[4096];
	bool keep_size;			/* layout_opts.keep_size; const after start */
	struct pinrec *pinrec;		/* layout_opts.pinrec; const after start */
	char sock_name[UDAX_SOCK_NAME_MAX];	/* '@' + abstract name */
	int lsock, efd, epfd;
	int dev_rw, dev_ro;		/* device descriptors handed to clients */
	struct allow allow[MAX_ALLOW];
	int nallow;
	bool allow_all;

	pthread_mutex_t lock;		/* the service lock: everything marked ls->lock */
	struct lclient *clients;
	struct ticket tickets[MAX_TICKETS];
	uint64_t recall_seq;
	bool stopping;
	struct fuse_session *se;	/* ls->lock */
	unsigned int notifying;		/* notifications being written to se; ls->lock */
	pthread_cond_t notify_cond;	/* notifying dropped to 0; ls->lock */

	unsigned int refused;		/* connections refused since the last log line; event thread */
	uint64_t t_refused_log;		/* event thread */
	uint64_t t_sweep;		/* last sweep for ticketless connections; event thread */

	bool retry;			/* pins wait for a release retry; ls->lock */
	struct udax_break_rec *breaks;	/* ring of UDAX_BREAKS_MAX; ls->lock */
	unsigned int breaks_head, breaks_n;	/* ls->lock */

	pthread_t ev_thread;
	pthread_t inval_thread;
	pthread_cond_t inval_cond;	/* ls->lock */
	struct inval *inval_head, *inval_tail;	/* ls->lock */
	/*
	 * Every layout (granting or active) by inode, so that a recall visits
	 * only the layouts of its file, not every client's every layout;
	 * chained through lmap.ino_next.  Changed under ls->lock and
	 * chain_lock both, read under either: READs through the mount walk it
	 * under chain_lock alone (layout_note_fill()), and never wait for
	 * ls->lock, which is held across scans of a client's descriptors.
	 * Lock order: ls->lock, then chain_lock.
	 */
	struct lmap *ino_hash[1u << LS_INO_HASH_BITS];
	pthread_mutex_t chain_lock;

	/* the page-cache table (layout_cache.c) */
	_Atomic uint32_t *ctab;		/* ctab_n flags, shared; NULL: none */
	uint32_t ctab_n;		/* LS_CTAB_SLOTS (a test may ask fewer); const */
	int ctab_fd;			/* the sealed memfd behind it, or -1 */
	uint32_t *ctab_ref;		/* references per slot; ls->lock */
	uint32_t *ctab_free;		/* free slots (a stack); ls->lock */
	uint32_t ctab_nfree;		/* ls->lock */
	atomic_uint ctab_live;		/* slots in use: READs skip the lock while 0 */
};

/*
 * ticket_live() - @c was issued less than UDAX_TICKET_TTL_S before @now.  A
 * ticket stamped after @now (by a worker that read the clock later) is live.
 */
static inline bool ticket_live(const struct ticket *c, uint64_t now)
{
	return c->t_ns >= now || now - c->t_ns <= (uint64_t)UDAX_TICKET_TTL_S * 1000000000ull;
}

/* Does @lm cover any of page indexes [start, end]? */
static inline bool range_overlaps(const struct lmap *lm, uint64_t start, uint64_t end)
{
	uint64_t first = lm->off >> UDAX_PAGE_SHIFT;
	uint64_t last = (lm->off + lm->len - 1) >> UDAX_PAGE_SHIFT;
	return first <= end && start <= last;
}

/* The chain in ls->ino_hash of the layouts of @ino (others may share it). */
static inline struct lmap **ls_ino_chain(struct layout_service *ls, uint64_t ino)
{
	return &ls->ino_hash[(ino * 0x9e3779b97f4a7c15ull) >> (64 - LS_INO_HASH_BITS)];
}

/* The running service, for layout_recall() called with a NULL arg. */
extern _Atomic(struct layout_service *) ls_current;

/* layout.c */
void ls_wake(struct layout_service *ls);

/* layout_acl.c */
int ls_parse_allow(struct layout_service *ls, const char *list, uid_t owner);
bool ls_allowed(const struct layout_service *ls, uid_t uid, gid_t gid,
		const gid_t *groups, int ngroups);

/* layout_cache.c */
#define LS_CTAB_SLOTS 16384u		/* 64 KiB of flags: writable layouts with a flag */
int ls_ctab_init(struct layout_service *ls);
void ls_ctab_fini(struct layout_service *ls);
uint32_t ls_ctab_get_locked(struct layout_service *ls);
void ls_ctab_hold_locked(struct layout_service *ls, uint32_t slot);
void ls_ctab_put_locked(struct layout_service *ls, uint32_t slot);
void ls_ctab_clear(struct layout_service *ls, uint32_t slot);
void ls_req_cachetab(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h);

/* layout_conn.c */
int ls_queue_msg(struct lclient *cl, uint16_t type, uint32_t seq, int32_t status,
		 int fd, const void *p1, size_t l1, const void *p2, size_t l2);
void ls_queue_err(struct lclient *cl, uint16_t type, uint32_t seq, int err,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ls_reply_simple(struct layout_service *ls, struct lclient *cl, uint16_t type,
		     uint32_t seq, int status);
void ls_reply_err(struct layout_service *ls, struct lclient *cl, uint16_t type, uint32_t seq,
		  int err, const char *why);
bool ls_client_send_now(struct lclient *cl);
void ls_outbufs_free(struct outbuf *ob);
int ls_client_watch(struct layout_service *ls, struct lclient *cl);
void *ls_event_main(void *arg);

/* layout_grant.c */
void ls_put_segs(struct lmap *lm, enum dx_ref kind, unsigned int times);
void ls_lmap_unlink_free(struct layout_service *ls, struct lmap *lm);
bool ls_lmap_drop_all(struct layout_service *ls, struct lmap *lm);
void ls_req_map(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		const void *payload);
void ls_req_inval(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
		  const void *payload);
void ls_req_id(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h,
	       const void *payload);

/* layout_pin.c */
void ls_pin_unrecord(struct layout_service *ls, struct lmap *lm);
int ls_pin_revoke_verify(struct layout_service *ls, struct lmap *lm, struct lpin *pin);
bool ls_lmap_progress(struct layout_service *ls, struct lmap *lm);
void ls_discover_locked(struct layout_service *ls, struct lclient *cl, struct lmap *only,
			uint64_t ino, uint64_t start, uint64_t end);
void ls_pins_want_release_locked(struct lmap *lm, bool adopted_only);
void ls_req_pin(struct layout_service *ls, struct lclient *cl, struct lmap *lm,
		const struct udax_msg *h, const struct udax_pin_req *rq);
void ls_req_unpin(struct layout_service *ls, struct lclient *cl, struct lmap *lm,
		  const struct udax_msg *h, const struct udax_pin_req *rq);

/* layout_recall.c */
void ls_req_breaks(struct layout_service *ls, struct lclient *cl, const struct udax_msg *h);

/* layout_status.c */
void ls_req_status(struct layout_service *ls, struct lclient *asker, const struct udax_msg *h);

/* layout_inval.c */
/* Append @iv to the notifier's queue and wake it.  Context: ls->lock held. */
void ls_inval_push(struct layout_service *ls, struct inval *iv);
void ls_queue_inval(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len,
		    uint32_t cslot);
void ls_do_inval(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len);
void *ls_inval_main(void *arg);

#endif /* UDAXD_LAYOUT_INT_H */
