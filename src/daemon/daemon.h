/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - the udaxfs FUSE daemon: options, the per-mount state shared by
 * the FUSE operation handlers (ops.c), and start-up (main.c).
 *
 * The daemon only decodes requests, calls the core (src/core/ufs.h) and
 * replies.  It holds no lock of its own around a core call, so every
 * request is replied to exactly once, never while holding a lock.
 */
#ifndef UDAXD_DAEMON_H
#define UDAXD_DAEMON_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/dax.h"
#include "core/ufs.h"

struct layout_service;
struct udaxd_uring;

/* Everything the command line says.  Filled by udaxd_parse_args(). */
struct udaxd_opts {
	const char *device;		/* DEVICE argument (as given) */
	const char *mountpoint;		/* MOUNTPOINT argument (as given) */
	char *mountpoint_abs;		/* realpath() of it, for the layout service */
	bool foreground;		/* -f */
	bool debug;			/* -d: libfuse request trace, implies -f */
	bool single_thread;		/* -s */
	bool readonly;			/* -o ro */
	bool show_help, show_version;	/* -h, -V */
	uint64_t emul_align;		/* -o emul_align=SIZE (0 = page size) */
	enum dx_policy policy;	/* -o dax_policy= */
	uint64_t recall_timeout_ms;	/* -o recall_timeout=MS (0 = forever) */
	char *dax_allow;		/* -o dax_allow=LIST (NULL: root + owner) */
	unsigned int max_threads;	/* -o max_threads=N (0: libfuse default) */
	uint64_t poll_us;		/* -o poll_us=N: adaptive polling (0: off) */
	bool libfuse_mt;		/* libfuse's worker pool (default); false: -o reader_loop */
	double timeout;			/* -o timeout=SEC: attribute and entry cache time */
	bool writeback_cache;		/* -o writeback_cache: the kernel's write-back cache */
	bool io_uring;			/* -o io_uring: FUSE over io_uring (fuse_uring.c) */
	unsigned int uring_qdepth;	/* -o uring_qdepth=N: entries per queue (0: default) */
	unsigned int wait_clients_s;	/* -o wait_clients=SEC: wait for holders of the device */
	bool quarantine_ignore;		/* -o quarantine=ignore (tests only: unsafe) */
	char *fuse_opts;		/* the comma list handed to libfuse */
};

/*
 * udaxd_parse_args() - parse argv into @o.  Our own mount options are
 * consumed; standard ones are kept in o->fuse_opts for libfuse; the ones
 * mount(8)/mount.fuse3 pass for their own use (_netdev, nofail, x-*, ...)
 * are dropped.  An unknown option is an error.
 * Return: 0, or -EINVAL after printing one line naming what is wrong.
 */
int udaxd_parse_args(int argc, char **argv, struct udaxd_opts *o);
void udaxd_free_opts(struct udaxd_opts *o);
void udaxd_usage(FILE *out, const char *prog);

/* The per-mount state every handler reaches through fuse_req_userdata(). */
struct udaxd {
	struct ufs *fs;			/* set before the session starts; const after */
	struct dx_media *media;
	struct fuse_session *se;
	const struct udaxd_opts *opts;
	/*
	 * The layout service; NULL when it is not running.  Read
	 * with an atomic load: break_layouts may call the recall hook from
	 * any thread, including during ufs_unmount() after the service has
	 * been stopped.
	 */
	struct layout_service *ls;
	double attr_timeout;		/* seconds the kernel may cache attributes */
	double entry_timeout;		/* ... names, and negative lookups */
	int unmount_rc;			/* what ufs_unmount() said (op_destroy) */
	bool no_opendir;		/* kernel opens dirs without OPENDIR (op_init) */
	uint64_t poll_ns;		/* kio.c: poll /dev/fuse this long before sleeping */
	/* the INIT request's id while its reply is pending, and whether
	 * the kernel offered FUSE_HANDLE_KILLPRIV_V2: set by kio_note.c,
	 * read by kio.c (INIT only) */
	uint64_t kio_init_unique;
	bool kio_offered;
	/* negotiated: the daemon kills set-ID bits itself.  Atomic. */
	bool killpriv_v2;
	/* fuse_uring.c: the io_uring transport, NULL when off.  Set before
	 * the session is served, cleared by udaxd_uring_stop() after it. */
	struct udaxd_uring *uring;
	bool uring_offered;		/* kio_note.c: INIT offered FUSE_OVER_IO_URING */
};

/* kio_note.c: what the request being handled on this thread asked for */
#define UDAXD_REQ_KILL_SUIDGID	(1u << 0)	/* caller lacks CAP_FSETID */
unsigned int udaxd_req_flags(void);
void udaxd_kio_note(struct udaxd *d, const void *buf, size_t len);
/* FUSE_OVER_IO_URING is INIT's bit 41: flags2 bit 9, read only with FUSE_INIT_EXT */
#define UDAXD_OVER_IO_URING2	(1u << (41 - 32))
/* kio.c: the session's /dev/fuse traffic */
int udaxd_kio_attach(struct udaxd *d);
/* loop.c: one hot reader, more only while one is blocked */
int udaxd_loop(struct fuse_session *se, unsigned int max_threads);

/* fuse_uring.c: FUSE over io_uring */
#define UDAXD_URING_PARAM "/sys/module/fuse/parameters/enable_uring"
#define UDAXD_URING_QDEPTH 8		/* entries per queue by default */
int udaxd_uring_param(void);
int udaxd_uring_prepare(struct udaxd *d);
bool udaxd_uring_init_reply(struct udaxd *d, bool offered);
int udaxd_uring_start(struct udaxd *d, uint32_t max_write, uint32_t max_pages);
void udaxd_uring_stop(struct udaxd *d);
struct iovec;
ssize_t udaxd_uring_reply(struct udaxd *d, struct iovec *iov, int count);
ssize_t udaxd_uring_notify(struct udaxd *d, struct iovec *iov, int count);

extern const struct fuse_lowlevel_ops udaxd_ops;

/* dx_dax_ops.recall trampoline: forwards to the layout service if running. */
void udaxd_recall(void *arg, uint64_t ino, uint64_t start, uint64_t end);

#endif /* UDAXD_DAEMON_H */
