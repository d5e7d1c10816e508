/* SPDX-License-Identifier: MIT */
/*
 * media.h - the device layer: a device-DAX character device (/dev/daxX.Y)
 * or a regular file that emulates one, mapped once with libpmem2.
 *
 * Everything that makes stores durable goes through this layer (flush,
 * drain, persist, memcpy_persist) so that the crash-emulation backend can
 * see every fence.  Nothing here ever calls read()/write() on the device:
 * a devdax has no such syscalls.
 *
 * Context: all functions are thread-safe once dx_media_open() returned;
 * none of them sleep except open/close.
 */
#ifndef UDAX_MEDIA_H
#define UDAX_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dx_media;

enum dx_media_kind {
	UDAX_MEDIA_DEVDAX = 1,	/* a kernel device-DAX character device */
	UDAX_MEDIA_EMUL   = 2,	/* a regular file emulating one */
};

struct dx_media_opts {
	const char *path;	/* /dev/daxX.Y or a regular file */
	uint64_t emul_align;	/* emulation only: enforce this devdax alignment
				 * (power of two >= 4096; 0 = page size) */
	bool readonly;		/* map read-only; every store path refuses */
	/*
	 * Crash emulation: stores reach the "durable image" only
	 * when flushed and drained through this layer.  See
	 * dx_media_crash_*() below.
	 */
	bool crash_emul;
	/*
	 * Emulation files on tmpfs have no backing store: msync(), which is
	 * what libpmem2 must use for a non-DAX mapping, does nothing there
	 * but costs a system call per fence (~650 ns measured).  By default
	 * such files are persisted like a device-DAX instead: CPU cache-line
	 * write-back (clwb/clflushopt/clflush) and a store fence.  Set this to
	 * keep libpmem2's msync-based functions anyway.
	 */
	bool emul_msync;
};

/*
 * Crash emulation details (crash_emul = true; emulation files only):
 *  - the working mapping is a private (copy-on-write) mapping of the file,
 *    so the file itself is never modified: the same base image can be
 *    reused for many runs;
 *  - the "durable image" starts as the file's content and receives a
 *    cache line only when it was flushed and then drained through this
 *    layer; copies are 8-byte granular, so an aligned 8-byte store never
 *    tears, larger stores may;
 *  - direct-access clients that map the device fd themselves are not seen
 *    (they would map the file, not the working copy): tests only.
 */

/*
 * dx_media_open() - open and map the whole device.
 * Context: may sleep (open, mmap, sysfs).
 * Return: 0 with *@out set, or -errno with dx_errmsg() naming what is wrong (not a
 * device or regular file, too small, bad alignment, libpmem2 failure).
 */
int dx_media_open(struct dx_media **out, const struct dx_media_opts *o);
/*
 * dx_media_close() - unmap and close; NULL-safe; clears *@mp.
 * Context: may sleep; nothing else may use the media any more.  Return: nothing.
 */
void dx_media_close(struct dx_media **mp);

/*
 * The properties of an open device, fixed at open.
 * Context: any (they read fields set once by dx_media_open()).
 */
/* dx_media_kind() - Return: UDAX_MEDIA_DEVDAX or UDAX_MEDIA_EMUL. */
enum dx_media_kind dx_media_kind(const struct dx_media *m);
/* dx_media_base() - Return: the base address of the mapping (device offset 0). */
void *dx_media_base(const struct dx_media *m);
/* dx_media_size() - Return: usable bytes (a devdax's sysfs size; the file's size). */
uint64_t dx_media_size(const struct dx_media *m);
/* dx_media_align() - Return: the alignment every device mmap must respect (devdax `align`). */
uint64_t dx_media_align(const struct dx_media *m);
/* dx_media_numa_node() - Return: the device's NUMA node, or -1 when unknown. */
int dx_media_numa_node(const struct dx_media *m);
/* dx_media_fd() - Return: the descriptor the device was opened with (handed to clients). */
int dx_media_fd(const struct dx_media *m);
/* dx_media_path() - Return: the path it was opened by (owned by @m). */
const char *dx_media_path(const struct dx_media *m);
/* dx_media_readonly() - Return: was it opened read-only (every store path refuses)? */
bool dx_media_readonly(const struct dx_media *m);
/* dx_media_pinnable() - Return: true when the emulation file is on tmpfs/shmem (io_uring can pin it). */
bool dx_media_pinnable(const struct dx_media *m);

/*
 * dx_media_check_map() - may a client mmap the device at [off, off+len)?
 * A real devdax silently maps offset 0's data for an unaligned offset, so
 * every device mapping is checked here first.
 * Context: any.
 * Return: 0, -EINVAL (not aligned to dx_media_align()), -ERANGE (past end).
 */
int dx_media_check_map(const struct dx_media *m, uint64_t off, uint64_t len);

/*
 * dx_media_off() / dx_media_ptr() - the device offset of a pointer into
 * the mapping, and back.  Context: any.  Return: the offset / the pointer.
 */
static inline uint64_t dx_media_off(const struct dx_media *m, const void *p)
{
	return (uint64_t)((const char *)p - (const char *)dx_media_base(m));
}
static inline void *dx_media_ptr(const struct dx_media *m, uint64_t off)
{
	return (char *)dx_media_base(m) + off;
}

/*
 * Persistence primitives (libpmem2 underneath, or the crash backend, which
 * sees every fence).
 * Context: any; never sleeps (an msync-mode file: one system call).
 * Return: nothing: a store to the mapping cannot fail short of a machine check.
 * dx_media_flush() - write back the cache lines of [@addr, @addr + @len).
 * dx_media_drain() - wait until every flush so far is durable (a fence).
 * dx_media_persist() - flush, then drain.
 */
void dx_media_flush(struct dx_media *m, const void *addr, size_t len);
void dx_media_drain(struct dx_media *m);
void dx_media_persist(struct dx_media *m, const void *addr, size_t len);
/*
 * dx_media_memcpy_persist() - memcpy that leaves the destination durable
 * on return (non-temporal stores for large copies).  Asserts that the
 * media is writable, as does dx_media_memset_persist().
 */
void dx_media_memcpy_persist(struct dx_media *m, void *dst, const void *src, size_t len);
/* dx_media_memset_persist() - memset that leaves the destination durable on return. */
void dx_media_memset_persist(struct dx_media *m, void *dst, int c, size_t len);

/*
 * Crash emulation (only when opened with crash_emul).
 * dx_media_crash_fences() - number of drains so far.
 * dx_media_crash_set_trigger() - after the n-th drain (1-based), save the
 *   durable image to @path and stop recording (0 disables).
 * dx_media_crash_save() - write the current durable image to @path.
 * Context: take the crash backend's lock; save writes a file (may sleep).
 * Return: fences: the count (0 when not in crash mode); set_trigger and
 * save: 0, -EINVAL (not in crash mode, or no @path), -ENOMEM, -errno from
 * writing the file.
 */
uint64_t dx_media_crash_fences(const struct dx_media *m);
int dx_media_crash_set_trigger(struct dx_media *m, uint64_t n, const char *path);
int dx_media_crash_save(struct dx_media *m, const char *path);

/*
 * dx_media_persist_mode() - how stores are made durable.  Context: any.
 * Return: "cpu" (cache-line flushes + fence), "msync" (libpmem2 on a
 * non-DAX file), "pmem2" (libpmem2 on a device-DAX) or "crash" (the crash
 * backend); a static string.
 */
const char *dx_media_persist_mode(const struct dx_media *m);
/* dx_media_crash_mode() - Context: any.  Return: was the device opened with crash_emul? */
bool dx_media_crash_mode(const struct dx_media *m);
/*
 * dx_media_crash_pending() - Context: takes the crash backend's lock.
 * Return: flushed cache lines not yet drained (crash mode; 0 otherwise).
 */
uint64_t dx_media_crash_pending(const struct dx_media *m);

/*
 * NUMA-placed DRAM for large tables (bitmaps summaries, indexes): zeroed
 * pages on @node when libnuma works and @node >= 0, anywhere otherwise.
 * Free with the same length.
 * Context: may sleep (mmap).  Return: the memory or NULL (ENOMEM).
 */
void *dx_numa_alloc(size_t len, int node);
/* dx_numa_free() - free what dx_numa_alloc(@len) returned (NULL-safe).  Return: nothing. */
void dx_numa_free(void *p, size_t len);

#endif /* UDAX_MEDIA_H */
