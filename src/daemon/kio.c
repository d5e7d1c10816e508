/* SPDX-License-Identifier: MIT */
/*
 * kio.c - a thin shim on the /dev/fuse channel (libfuse custom I/O) that
 * negotiates FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14 cannot ask for.
 *
 * Why: without it the kernel, before *every* write(2) through the mount,
 * asks the file system for the "security.capability" xattr (file_remove_privs
 * -> cap_inode_need_killpriv): a second round trip per write.  With
 * KILLPRIV_V2 the kernel marks the superblock SB_NOSEC, inodes then get
 * S_NOSEC after their first write, and the file system itself kills the
 * set-user-ID/set-group-ID bits and security.capability on write, truncate
 * and chown - which the core does (ufs_kill_mask() says what, when).
 * Measured: a 4 KiB buffered write costs one request instead of two.
 *
 * How: reads pass through unchanged, but the request header is looked at
 * (kio_note.c: INIT: does the kernel offer the flag; WRITE/SETATTR/OPEN/
 * CREATE: does it ask us to kill set-ID bits) and the answer is left in a
 * thread-local for the handler, which libfuse runs on the thread that read
 * the request.  The INIT reply gets the flag added before it is written.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon.h"
#include "core/util.h"


/*
 * Adaptive polling: after a request, a worker keeps reading without
 * sleeping for up to poll_ns, so the next request of a synchronous stream
 * (psync I/O, a metadata loop) is picked up without a wake-up of the
 * worker: one cross-CPU wake-up per request instead of two.  It yields
 * while it polls, so a requester on the same CPU still runs.
 */
static __thread int nonblock_fd = -1;

static ssize_t read_polling(struct udaxd *d, int fd, void *buf, size_t len)
{
	uint64_t until;
	struct pollfd p;
	ssize_t n;

	if (!d->poll_ns)
		return read(fd, buf, len);
	if (nonblock_fd != fd) {
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return read(fd, buf, len);
		nonblock_fd = fd;
	}
	until = dx_now_ns() + d->poll_ns;
	for (;;) {
		n = read(fd, buf, len);
		if (n >= 0 || errno != EAGAIN)
			return n;
		if (dx_now_ns() < until) {
			sched_yield();
			continue;
		}
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -1;
		until = dx_now_ns() + d->poll_ns;
	}
}

static ssize_t kio_read(int fd, void *buf, size_t len, void *userdata)
{
	struct udaxd *d = userdata;
	ssize_t n = read_polling(d, fd, buf, len);

	udaxd_kio_note(d, buf, n > 0 ? (size_t)n : 0);
	return n;
}

/*
 * The INIT reply: add FUSE_HANDLE_KILLPRIV_V2 when offered, and
 * FUSE_OVER_IO_URING when offered and -o io_uring has its rings ready;
 * once the kernel took the reply, the io_uring queues register.
 */
static ssize_t init_reply(struct udaxd *d, int fd, struct iovec *iov, int count)
{
	struct fuse_init_out *io = iov[1].iov_base;
	bool uring = false;
	uint32_t max_pages;
	ssize_t n;

	if (d->kio_offered && io->major == FUSE_KERNEL_VERSION) {
		/* the kernel reads the flag whatever minor libfuse says (7.31) */
		io->flags |= FUSE_HANDLE_KILLPRIV_V2;
		__atomic_store_n(&d->killpriv_v2, true, __ATOMIC_RELEASE);
	}
	if (d->uring && io->major == FUSE_KERNEL_VERSION &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, unused) &&
	    udaxd_uring_init_reply(d, d->uring_offered)) {
		io->flags |= FUSE_INIT_EXT;
		io->flags2 |= UDAXD_OVER_IO_URING2;
		uring = true;
	}
	n = writev(fd, iov, count);
	if (uring) {
		max_pages = (io->flags & FUSE_MAX_PAGES) ? io->max_pages : 32;
		if (n < 0)
			udaxd_uring_stop(d);	/* no connection to serve */
		else
			udaxd_uring_start(d, io->max_write, max_pages);
	}
	return n;
}

static ssize_t kio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct udaxd *d = userdata;
	ssize_t n;

	if (d->kio_init_unique && count >= 2 &&
	    iov[0].iov_len == sizeof(struct fuse_out_header) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, max_background)) {
		struct fuse_out_header *oh = iov[0].iov_base;

		if (oh->unique == d->kio_init_unique) {
			d->kio_init_unique = 0;
			if (oh->error == 0)
				return init_reply(d, fd, iov, count);
		}
	}
	if (d->uring) {
		/* a reply to a request that came from an io_uring queue entry */
		n = udaxd_uring_reply(d, iov, count);
		if (n != -2)
			return n;
		/* a notification from a thread that serves a queue */
		n = udaxd_uring_notify(d, iov, count);
		if (n != -2)
			return n;
	}
	return writev(fd, iov, count);
}

static const struct fuse_custom_io kio = {
	.writev = kio_writev,
	.read = kio_read,
};

/*
 * udaxd_kio_attach() - route the session's /dev/fuse traffic through kio.
 * Context: after fuse_session_mount(), before the session loop.
 * Return: 0 or -errno.
 */
int udaxd_kio_attach(struct udaxd *d)
{
	return fuse_session_custom_io(d->se, &kio, fuse_session_fd(d->se));
}
