/* SPDX-License-Identifier: MIT */
/*
 * preload_int.h - libudax-preload.so internals shared by its mmap side:
 * preload.c (setup, the C library's functions, the layout protocol),
 * preload_mmap.c (the mapping table, recalls, mmap/munmap/msync/mremap)
 * and preload_uring.c (io_uring buffer registrations over direct
 * mappings).  Not installed; nothing here is exported from the shim.
 */
#ifndef UDAX_PRELOAD_INT_H
#define UDAX_PRELOAD_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "wire.h"

#define EXPORT __attribute__((visibility("default")))

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef int (*msync_fn)(void *, size_t, int);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);

/* The C library's functions, past the shim's own (set by resolve()). */
extern mmap_fn real_mmap, real_mmap64;
extern munmap_fn real_munmap;
extern msync_fn real_msync;
extern mremap_fn real_mremap;

extern __thread int in_shim;		/* libudax's own calls pass through */
extern long page_size;

/* Look the C library's functions up, once (also a constructor). */
void resolve(void);
/* A line on stderr when UDAX_PRELOAD_DEBUG is set. */
void dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline size_t round_up(size_t x)
{
	return (x + (size_t)page_size - 1) & ~((size_t)page_size - 1);
}

/*
 * One direct mapping made by mmap(): its address range, its layout and the
 * layout's connection.
 */
struct pmap {
	char *addr;			/* start of the caller's range */
	size_t len;			/* caller's range, page rounded */
	size_t granted;			/* [addr, addr+granted) is the direct mapping */
	size_t live;			/* bytes of the range not yet munmapped */
	struct udax_wire *w;		/* the layout's connection (a reference), or NULL */
	bool held;			/* tbl_lock: the layout is ours (not recalled,
					 * not given back, the daemon alive) */
	bool registered;		/* recalls reach it (udax_wire_layout_add) */
	uint64_t id;			/* layout id on that connection */
	bool devdax;
	int prot;			/* the caller's (a recall keeps it: a store raises SIGBUS) */
	unsigned int pins;		/* tbl_lock: pin records naming this layout */
	unsigned int inflight;		/* tbl_lock: registrations working on it unlocked */
	bool gone;			/* tbl_lock: munmapped while pinned: on the ghosts
					 * list, the layout kept (UNMAP sent) until unpinned
					 * or recalled */
	pid_t pid;			/* the process that made it (fork) */
	struct pmap *next;
};

/*
 * A pin: part of a direct mapping registered as a fixed buffer of one
 * ring, declared to the daemon (UDAX_REQ_PIN) before the kernel took it.
 */
struct pin {
	struct pin *next;		/* pins; tbl_lock */
	struct pmap *pm;		/* the layout (pm->pins counts this record) */
	int ring_fd;			/* in this process; -1 unknown (a registered ring) */
	unsigned int slot;		/* index in the ring's buffer table */
	uint64_t addr, len;		/* the registered part of the mapping */
};

/*
 * The shim's one lock: the mapping table, its ghosts, the pin records and
 * the cache of which devices are udaxfs.  Never held while calling into
 * wire.c except udax_wire_send.
 */
extern pthread_mutex_t tbl_lock;
extern struct pmap *tbl;		/* tbl_lock */
extern struct pmap *ghosts;		/* tbl_lock: munmapped, still pinned (pmap.gone) */
extern struct pin *pins;		/* tbl_lock */

/* preload.c: is @fd a regular file on a fuse.udaxfs mount (*@st: its fstat)? */
bool is_udaxfs(int fd, struct stat *st);
/* Test only (libudax-preload(7)): an env variable's value in ms, 0 if unset. */
long test_ms(const char *name);
/*
 * preload.c: one request, its reply (the daemon's reason for a refusal goes
 * to dbg).  @rp (may be NULL) receives the malloc'd reply on success.
 * Return: the reply's status (0 or -errno) or a transport error.
 */
int call(struct udax_wire *w, uint16_t type, const void *p, uint32_t len, void **rp,
	 uint32_t *rlen);
/*
 * preload.c: ask for [off, off+len) of @fd and map it at exactly @at.
 * Return: 0 with a reference to the layout's connection and its id (the
 * caller registers the layout for recalls), -EPERM / -ENOTTY (not allowed /
 * not ours: the caller passes through), or -errno.
 */
int layout_map(int fd, char *at, off_t off, size_t len, bool write, struct udax_wire **wp,
	       uint64_t *id, bool *devdax);
/* preload.c: give a layout back (munmap).  The range must already be replaced. */
void layout_unmap(struct udax_wire *w, uint64_t id);

/* preload_mmap.c: forget a layout that nothing references any more.  Context: tbl_lock not held. */
void ghost_free(struct pmap *pm);
/*
 * preload_mmap.c: drop a reference a registration held on @pm (inflight)
 * or a pin record (@pin); take a ghost that nothing references any more
 * off the ghosts list.
 * Context: tbl_lock held.  Return: the ghost to ghost_free() after
 * unlocking, or NULL.
 */
struct pmap *pm_unref(struct pmap *pm, bool pin);

#endif /* UDAX_PRELOAD_INT_H */
