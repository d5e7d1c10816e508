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
 * and chown - which the daemon does in ops.c (udaxd_kill_privs()).
 * Measured: a 4 KiB buffered write costs one request instead of two.
 *
 * How: reads pass through unchanged, but the request header is looked at
 * (INIT: does the kernel offer the flag; WRITE/SETATTR/OPEN/CREATE: does it
 * ask us to kill set-ID bits) and the answer is left in a thread-local for
 * the handler, which libfuse runs on the thread that read the request.
 * The INIT reply gets the flag added before it is written.
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
#include "util.h"

/* What the request this thread is handling asked (UDAXD_REQ_*). */
static __thread unsigned int req_flags;

unsigned int udaxd_req_flags(void)
{
	return req_flags;
}

static const void *req_arg(const void *buf, size_t len, size_t arg_size)
{
	if (len < sizeof(struct fuse_in_header) + arg_size)
		return NULL;
	return (const char *)buf + sizeof(struct fuse_in_header);
}

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
	until = udax_now_ns() + d->poll_ns;
	for (;;) {
		n = read(fd, buf, len);
		if (n >= 0 || errno != EAGAIN)
			return n;
		if (udax_now_ns() < until) {
			sched_yield();
			continue;
		}
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -1;
		until = udax_now_ns() + d->poll_ns;
	}
}

static ssize_t kio_read(int fd, void *buf, size_t len, void *userdata)
{
	struct udaxd *d = userdata;
	const struct fuse_in_header *h = buf;
	ssize_t n = read_polling(d, fd, buf, len);
	const void *a;

	req_flags = 0;
	if (n < (ssize_t)sizeof(*h))
		return n;
	switch (h->opcode) {
	case FUSE_INIT:
		a = req_arg(buf, (size_t)n, offsetof(struct fuse_init_in, flags2));
		if (a && (((const struct fuse_init_in *)a)->flags & FUSE_HANDLE_KILLPRIV_V2)) {
			d->kio_init_unique = h->unique;
			d->kio_offered = true;
		}
		break;
	case FUSE_WRITE:
		a = req_arg(buf, (size_t)n, sizeof(struct fuse_write_in));
		if (a && (((const struct fuse_write_in *)a)->write_flags & FUSE_WRITE_KILL_SUIDGID))
			req_flags = UDAXD_REQ_KILL_SUIDGID;
		break;
	case FUSE_SETATTR:
		a = req_arg(buf, (size_t)n, sizeof(struct fuse_setattr_in));
		if (a && (((const struct fuse_setattr_in *)a)->valid & FATTR_KILL_SUIDGID))
			req_flags = UDAXD_REQ_KILL_SUIDGID;
		break;
	case FUSE_OPEN:
		a = req_arg(buf, (size_t)n, sizeof(struct fuse_open_in));
		if (a && (((const struct fuse_open_in *)a)->open_flags & FUSE_OPEN_KILL_SUIDGID))
			req_flags = UDAXD_REQ_KILL_SUIDGID;
		break;
	case FUSE_CREATE:
		a = req_arg(buf, (size_t)n, sizeof(struct fuse_create_in));
		if (a && (((const struct fuse_create_in *)a)->open_flags & FUSE_OPEN_KILL_SUIDGID))
			req_flags = UDAXD_REQ_KILL_SUIDGID;
		break;
	}
	return n;
}

static ssize_t kio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct udaxd *d = userdata;

	if (d->kio_init_unique && count >= 2 &&
	    iov[0].iov_len == sizeof(struct fuse_out_header) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, max_background)) {
		struct fuse_out_header *oh = iov[0].iov_base;

		if (oh->unique == d->kio_init_unique) {
			struct fuse_init_out *io = iov[1].iov_base;

			/* the kernel reads the flag whatever minor libfuse says (7.31) */
			if (oh->error == 0 && io->major == FUSE_KERNEL_VERSION) {
				io->flags |= FUSE_HANDLE_KILLPRIV_V2;
				__atomic_store_n(&d->killpriv_v2, true, __ATOMIC_RELEASE);
			}
			d->kio_init_unique = 0;
		}
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
