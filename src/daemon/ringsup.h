/* SPDX-License-Identifier: MIT */
/*
 * ringsup.h - ring supervision: what the daemon can see and do, from the
 * kernel, about the io_uring rings of its clients, so that a pin is released
 * on the kernel's word instead of the client's.
 *
 * A pin is a registration of a client's direct mapping as an io_uring fixed
 * buffer.  The daemon takes its own reference to the ring (pidfd_getfd(2)),
 * reads the ring's registered-buffer table from /proc/self/fdinfo/<fd>
 * ("UserBufs:" then one "slot: 0xADDR/LEN" or "slot: <none>" line per slot),
 * and to release a pin it revokes: it empties every slot that overlaps the
 * pin's address range (IORING_REGISTER_BUFFERS_UPDATE with an empty iovec:
 * any holder of the ring descriptor may update it), cancels the requests
 * that may still use the old buffer (IORING_REGISTER_SYNC_CANCEL, by opcode,
 * for every opcode that can use a fixed buffer, waiting for those already
 * running), then reads the table again.  Only then are the pages idle.
 *
 * Everything here is a plain helper: no locks, no daemon state.
 */
#ifndef UDAXD_RINGSUP_H
#define UDAXD_RINGSUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One registered buffer slot of a ring, as fdinfo shows it. */
struct ringsup_buf {
	uint32_t slot;
	uint64_t addr, len;
};

/* A client virtual address range [start, end). */
struct ringsup_range {
	uint64_t start, end;
};

/*
 * ringsup_enabled() - false when the daemon was started with
 * UDAXFS_NO_RING_VERIFY=1 in its environment: a test aid that makes pins
 * trust the client's word again (no ring reference, no revocation, no
 * discovery), so that the stale-DMA tests can show their detector sees
 * the corruption this module prevents.  Never use it in production.
 */
bool ringsup_enabled(void);

/*
 * ringsup_take() - take the daemon's own reference to descriptor @fd of
 * the process of @pidfd, check that it is an io_uring and that the daemon
 * may register on it (a single-issuer ring or a ring restricted against
 * buffer updates and cancellation cannot be supervised).
 * @why receives a reason on failure.
 * Context: any thread, no lock needed; does not block.
 * Return: the new descriptor (close-on-exec), or -EOPNOTSUPP (not
 * supervisable), -EBADF (no such descriptor), -EPERM, -ESRCH, -errno.
 */
int ringsup_take(int pidfd, int fd, char *why, size_t whylen);

/*
 * ringsup_same() - do descriptor @fd_a of process @pid_a (0: ours) and
 * our descriptor @fd_b name the same open file?  kcmp(2) KCMP_FILE.
 * Return: 1 same, 0 different, -errno (-ENOSYS: no kcmp).
 */
int ringsup_same(pid_t pid_a, int fd_a, int fd_b);

/*
 * ringsup_read_bufs() - the registered buffers of the ring @fd of @pid
 * (0: our own descriptor), non-empty slots only.  fdinfo leaves the table
 * out when it cannot take the ring's lock at once: that is detected and
 * retried (briefly; then -EAGAIN).  *@out is malloc'ed (NULL if none).
 * Context: any thread; may sleep for a few microseconds between retries.
 * Return: 0, -EAGAIN, -ENOENT (gone), -ENOMEM, -errno.
 */
int ringsup_read_bufs(pid_t pid, int fd, struct ringsup_buf **out, size_t *n);

/*
 * ringsup_info_open() - open the fdinfo of descriptor @fd of @pid (0: ours),
 * to be read again and again with ringsup_read_info() (cheaper than
 * ringsup_read_bufs(), which opens it each time).  Return: fd or -errno.
 */
int ringsup_info_open(pid_t pid, int fd);
/* ringsup_read_bufs() on an fdinfo descriptor from ringsup_info_open(). */
int ringsup_read_info(int info, struct ringsup_buf **out, size_t *n);

/* Does [addr, addr+len) overlap any of @r[0..nr)? */
bool ringsup_overlaps(uint64_t addr, uint64_t len, const struct ringsup_range *r, size_t nr);

/*
 * ringsup_count_overlaps() - how many registered slots of a ring overlap
 * @r[0..nr); @info from ringsup_info_open().  Return: the count, or -errno
 * (-EAGAIN: the table could not be read).
 */
int ringsup_count_overlaps(int info, const struct ringsup_range *r, size_t nr);

/*
 * ringsup_revoke() - take @r[0..nr) away from our ring @fd (@info: its
 * fdinfo, from ringsup_info_open()): empty every overlapping slot, then
 * cancel (and wait for) the requests that may use a fixed buffer.  The
 * caller verifies afterwards with ringsup_count_overlaps() (a client may
 * register the range again meanwhile).  A ring that already dropped the
 * buffer and has nothing in flight costs one fdinfo read and one system
 * call per fixed-buffer opcode.
 * Context: any thread, no lock held (waits for running requests, bounded
 * by @timeout_ms per opcode).
 * Return: 0; -ETIME (requests still running), -EAGAIN (table
 * unreadable), -errno.  @why says what failed.
 */
int ringsup_revoke(int fd, int info, const struct ringsup_range *r, size_t nr,
		   unsigned int timeout_ms, char *why, size_t whylen);

/*
 * ringsup_scan_pid() - call @fn for every io_uring descriptor of process
 * @pid that has at least one registered buffer: @fd is its number in
 * @pid, @b[0..n) its non-empty slots.  @fn returns 0 to go on, non-zero
 * to stop (that value is returned).  Only descriptors whose link reads
 * "anon_inode:[io_uring]" are looked at.
 * Context: any thread; reads /proc (no other lock taken).
 * Return: 0, @fn's non-zero value, -ESRCH (process gone), -errno.
 */
int ringsup_scan_pid(pid_t pid,
		     int (*fn)(void *arg, int fd, const struct ringsup_buf *b, size_t n),
		     void *arg);

#endif /* UDAXD_RINGSUP_H */
