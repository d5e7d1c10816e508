/* SPDX-License-Identifier: MIT */
/*
 * harness.h - shared pieces of the direct-access tests (tests/dma): make an
 * emulated device on /dev/shm, mkfs, mount udaxfs, run a "DMA" stand-in
 * (io_uring READ_FIXED into the mapped pages), unmount.
 *
 * Checks, exit codes and skips are the common ones (../harness.h): every
 * test exits 0 (pass), 1 (fail) or 77 (skip, with the reason: no
 * /dev/fuse, io_uring refused, udaxfs not built).  A mounted file system
 * is unmounted by t_skip(), t_die(), a failed REQUIRE and t_exit().
 */
#ifndef UDAX_TESTS_DMA_HARNESS_H
#define UDAX_TESTS_DMA_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <liburing.h>

#include "../harness.h"

struct fsmount {
	char img[256];		/* /dev/shm/udaxfs-test-<test>-<pid>.img */
	char mnt[256];		/* /tmp/udaxfs-test-<test>-<pid>.mnt */
	char opts[512];		/* -o list it was mounted with */
	uint64_t size;
	bool mounted;
};

uint64_t t_now_ns(void);
void t_sleep_ms(unsigned int ms);

/* Skip (77) unless /dev/fuse, /dev/shm and the udaxfs binaries are there. */
void t_require_env(void);
/* mkfs a @size emulation file and mount it with @opts (may be NULL).  Dies on failure. */
void t_mount(struct fsmount *fm, const char *name, uint64_t size, const char *opts);
/* Unmount and mount the same image again (to read what is on the device). */
void t_remount(struct fsmount *fm);
/* Unmount and run fsck.udaxfs -n on the image.  Return its exit status. */
int t_unmount_fsck(struct fsmount *fm);
/* Wait until no daemon holds @img (its lock goes when its last write is durable). */
void t_wait_released(const char *img);
/* Unmount, remove the image and the mount point.  Safe to call twice. */
void t_umount(struct fsmount *fm);
/* fm->mnt + "/" + name */
const char *t_path(const struct fsmount *fm, const char *name);

/* io_uring_queue_init or skip (77) with the reason. */
void t_uring_init(struct io_uring *ring, unsigned int entries);

/*
 * A DMA stand-in: READ_FIXED of @io bytes from @src_fd into random
 * @io-aligned offsets of the registered buffer @buf (buffer index @bi) of
 * @len bytes, keeping @qd requests in flight.
 */
struct dma {
	struct io_uring *ring;
	int src_fd;
	char *buf;
	size_t len, io;
	unsigned int qd, inflight, bi;
	uint64_t done, errors;
	unsigned int seed;
};
/* Top the queue up to qd requests. */
int dma_submit(struct dma *d);
/* Reap completions; wait for at least @min of them.  Return count reaped or -errno. */
int dma_reap(struct dma *d, unsigned int min);
/* Reap until nothing is in flight. */
int dma_drain(struct dma *d);
/* A /dev/shm file of @len bytes of @byte, opened read-only, unlinked. */
int t_pattern_file(size_t len, int byte);

/* Run @fn in a child; return its pid.  The child exits with fn's return. */
pid_t t_fork(int (*fn)(void *), void *arg);
/* waitpid with a timeout: return the exit status (or 128+signal), -ETIMEDOUT. */
int t_wait(pid_t pid, unsigned int timeout_ms);

/* statvfs f_bfree of the mount. */
uint64_t t_free_blocks(const struct fsmount *fm);

/* ---- the protocol (udax_proto.h) through the library's client (wire.h) ---- */
struct udax_ioc_hello;
struct udax_wire;
/* UDAX_IOC_HELLO on @fd.  Return 0 or -errno. */
int proto_hello(int fd, struct udax_ioc_hello *h);
/* A new private connection to the layout socket named in a hello.  Return 0 or -errno. */
int proto_connect(const char *name, struct udax_wire **out);
/* Hang up (NULL-safe). */
void proto_close(struct udax_wire **w);
/*
 * One request, one reply: return the reply's status; copy at most @max
 * payload bytes to @out (*len set to the payload length).
 */
int proto_call(struct udax_wire *w, unsigned int type, const void *in, size_t in_len,
	       void *out, size_t max, size_t *len);
/* A message that has no reply (RETURN). */
int proto_send(struct udax_wire *w, unsigned int type, const void *in, size_t in_len);
/* A bare connected socket, for tests that send malformed bytes.  Return it or -errno. */
int proto_raw_connect(const char *name);

#endif /* UDAX_TESTS_DMA_HARNESS_H */
