/* SPDX-License-Identifier: MIT */
/*
 * layout.h - the daemon's layout service: grants direct mappings
 * of file ranges to clients, tracks their pins, recalls them for
 * break_layouts.  Implemented in layout*.c (layout_int.h lists which file
 * does what); the FUSE side (ops.c) only calls these hooks.  Protocol:
 * include/udax/udax_proto.h.
 *
 * Threads: the service runs one event thread (socket, pidfds, recall
 * queue), one notifier thread (fuse_lowlevel_notify_inval_inode, which may
 * wait for write-back served by FUSE workers, so it never runs on the event
 * thread or under a lock), a short-lived thread per status request (its
 * name search reads directories), and a short-lived thread per layout grant (a
 * grant may wait for i_rwsem held by a truncate that itself waits for the
 * event thread to process a layout return, and it writes back the kernel's
 * dirty pages of its range - before it holds any reference, since that
 * write-back may wait for a truncate that waits for references).
 *
 * Lock order: everything in dax.h ranks above the service lock: the recall
 * hook is called with the layout lock held and takes the service lock; the
 * service never calls into ufs/dax while holding it, except dx_page_get()
 * (atomics only) when discovery adopts a pin.  Under the service lock the
 * daemon may read /proc of a client and register on a client's ring (a
 * ring's own lock, never ours, is what such a call can wait for).
 */
#ifndef UDAXD_LAYOUT_H
#define UDAXD_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct udaxd;
struct ufs;
struct fuse_session;
struct dx_break_stats;

struct pinrec;

struct layout_opts {
	const char *mountpoint;		/* absolute */
	uid_t owner_uid;		/* the mount owner */
	const char *dax_allow;		/* -o dax_allow=uid:0,uid:1000,gid:100 (NULL: root + owner) */
	/*
	 * -o writeback_cache: the kernel owns the file size (it ignores the
	 * size in our attribute replies), so a grant never grows a file:
	 * clients grow it through the mount (fallocate) before they map.
	 */
	bool keep_size;
	/* the record of live pins that outlives the daemon (pinrec.h); NULL: none */
	struct pinrec *pinrec;
};

struct layout_service;

/* Start the service (socket, threads).  Return 0 or -errno (-EINVAL: bad dax_allow). */
int layout_service_start(struct layout_service **out, struct ufs *fs, const struct layout_opts *o);
/* Stop it: refuse new requests, drop nothing that is still pinned.  NULL-safe; clears *lsp. */
void layout_service_stop(struct layout_service **lsp);
/*
 * layout_set_session() - the FUSE session, for page-cache invalidation of a
 * range when a writable layout is granted or returned (coherence between
 * direct stores and reads through the mount).  Call after
 * fuse_session_new(), before fuse_session_mount(); NULL to stop notifying,
 * before fuse_session_unmount() closes the descriptor notifications are
 * written to: it returns once no notification is being written.
 */
void layout_set_session(struct layout_service *ls, struct fuse_session *se);
/*
 * layout_recall() - dx_dax_ops.recall: queue recalls for page indexes
 * [start, end] (end may be UDAX_END_OF_FILE) of @ino; never blocks.
 * @arg is the struct layout_service * (NULL: the one running service).
 * Context: called by break_layouts with the layout lock held.
 */
void layout_recall(void *arg, uint64_t ino, uint64_t start, uint64_t end);
/*
 * layout_ino_has_writable() - true while some client holds a writable
 * layout of @ino; ops.c may open such files with direct_io (and no
 * keep_cache) so reads through the mount never see stale cached pages.
 */
bool layout_ino_has_writable(struct layout_service *ls, uint64_t ino);
/*
 * layout_note_fill() - the mount is about to serve a READ, or a WRITE
 * through a cached descriptor, of [off, off + len) of @ino: the kernel may
 * cache those pages.  Call it before the device is touched (see
 * layout_cache.c for why the order matters).  Context: a FUSE worker.
 */
void layout_note_fill(struct layout_service *ls, uint64_t ino, uint64_t off, uint64_t len);
/*
 * layout_note_break() - remember the daemon-side timestamps of one
 * break_layouts made for truncate/punch/zero/collapse/insert/unlink of @ino
 * (@rc: the operation's result, @t_freed: when it returned), for
 * UDAX_REQ_BREAKS (udaxctl bench truncate-dma).  A ring of
 * UDAX_BREAKS_MAX; never blocks long.  NULL @ls: ignored.
 * Context: any thread, no lock held.
 */
void layout_note_break(struct layout_service *ls, uint64_t ino,
		       const struct dx_break_stats *bs, int rc, uint64_t t_freed);
/* FUSE ioctl on an open file (cmd from include/udax/udax_proto.h).
 * Fills *out (at most out_max bytes); return bytes or -errno
 * (-ENOTTY: not ours).  Never blocks; call from a FUSE worker. */
int layout_ioctl(struct layout_service *ls, uint64_t ino, int open_flags, uid_t uid, gid_t gid,
		 pid_t pid, unsigned int cmd, const void *in, size_t in_len, void *out, size_t out_max);

#endif /* UDAXD_LAYOUT_H */
