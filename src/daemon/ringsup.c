/* SPDX-License-Identifier: MIT */
/*
 * ringsup.c - ring supervision (see ringsup.h): take a reference to a
 * client's io_uring, read its registered buffers from fdinfo, revoke a
 * buffer (empty the slot, cancel what may still use it, verify).
 *
 * What the kernel (6.18) gives us, and where it comes from:
 *  - fdinfo of a ring (io_uring/fdinfo.c) prints "UserBufs:\t<nr>" and then,
 *    only if it got the ring's uring_lock with a trylock, one line per slot:
 *    "%5u: 0x<addr>/<len>" or "%5u: <none>".  Fewer lines than <nr> means
 *    the table was skipped: read again.
 *  - io_uring_register(2) is open to any holder of the ring descriptor,
 *    except on a single-issuer ring (-EEXIST from another task) and for
 *    opcodes a restricted ring does not allow (-EACCES).
 *  - IORING_REGISTER_BUFFERS_UPDATE with {NULL, 0} empties a slot
 *    (io_uring/rsrc.c: no node is made for a NULL base); the old node, and
 *    so the pinned pages, stay alive while a request that imported the
 *    buffer still holds it.  A request imports the buffer at issue, under
 *    uring_lock, which io_uring_register(2) holds too: once the slot is
 *    empty, no request can import it any more.
 *  - IORING_REGISTER_SYNC_CANCEL without IORING_ASYNC_CANCEL_ALL/ANY
 *    cancels one matching request and, when the match is running on an
 *    io-wq worker (of any task attached to the ring), waits until it
 *    finishes; it returns -ENOENT when nothing matches (io_uring/cancel.c).
 *    With ALL or ANY it counts instead and does not wait for running
 *    requests, so those cannot give "nothing left".  We therefore match by
 *    opcode (IORING_ASYNC_CANCEL_OP, Linux 6.6) and loop until -ENOENT, for
 *    every opcode that can use a fixed buffer.  Requests of other opcodes
 *    on the client's ring are left alone; a fixed-buffer request that used
 *    another buffer of the same ring is cancelled too (it completes with
 *    -ECANCELED): that is the revocation a recall implies.
 *  - A request already handed to a driver (block I/O in flight, iopoll)
 *    is neither cancellable nor visible: see udaxfs(8), "Pin supervision".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ringsup.h"

/* Kernel ABI numbers (include/uapi/linux/io_uring.h), in case the headers are older. */
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_kcmp
#define __NR_kcmp 312
#endif
#define RS_KCMP_FILE			0
#define RS_REGISTER_PROBE		8
#define RS_REGISTER_BUFFERS_UPDATE	16
#define RS_REGISTER_SYNC_CANCEL		24
#define RS_CANCEL_OP			(1u << 5)

/* Opcodes that may use a registered buffer (enum io_uring_op). */
static const uint8_t fixed_ops[] = {
	4,	/* IORING_OP_READ_FIXED */
	5,	/* IORING_OP_WRITE_FIXED */
	46,	/* IORING_OP_URING_CMD (IORING_URING_CMD_FIXED) */
	47,	/* IORING_OP_SEND_ZC (IORING_RECVSEND_FIXED_BUF) */
	48,	/* IORING_OP_SENDMSG_ZC */
	60,	/* IORING_OP_READV_FIXED */
	61,	/* IORING_OP_WRITEV_FIXED */
};

/* struct io_uring_rsrc_update2 */
struct rs_update2 {
	uint32_t offset;
	uint32_t resv;
	uint64_t data;
	uint64_t tags;
	uint32_t nr;
	uint32_t resv2;
};

/* struct io_uring_sync_cancel_reg as of Linux 6.6 (opcode added) */
struct rs_sync_cancel {
	uint64_t addr;
	int32_t fd;
	uint32_t flags;
	int64_t tv_sec, tv_nsec;
	uint8_t opcode;
	uint8_t pad[7];
	uint64_t pad2[3];
};

#define TABLE_RETRIES 200
#define IO_URING_LINK "anon_inode:[io_uring]"

static int ring_register(int fd, unsigned int op, void *arg, unsigned int nr)
{
	long r = syscall(__NR_io_uring_register, fd, op, arg, nr);
	return r < 0 ? -errno : (int)r;
}

bool ringsup_enabled(void)
{
	static int cached = -1;
	if (cached < 0) {
		const char *e = getenv("UDAXFS_NO_RING_VERIFY");
		cached = !(e && *e && strcmp(e, "0") != 0);
	}
	return cached;
}

static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static bool is_io_uring_link(const char *path)
{
	char l[64];
	ssize_t n = readlink(path, l, sizeof(l) - 1);
	if (n <= 0)
		return false;
	l[n] = 0;
	return strcmp(l, IO_URING_LINK) == 0;
}

int ringsup_take(int pidfd, int fd, char *why, size_t whylen)
{
	char path[64];
	int own = (int)syscall(__NR_pidfd_getfd, pidfd, fd, 0);
	if (own < 0) {
		int e = errno;
		say(why, whylen, "cannot take the ring (descriptor %d of the client) with "
		    "pidfd_getfd: %s", fd, strerror(e));
		return e == EBADF ? -EBADF : e == ESRCH ? -ESRCH : e == EPERM ? -EPERM : -e;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", own);
	if (!is_io_uring_link(path)) {
		say(why, whylen, "descriptor %d of the client is not an io_uring", fd);
		close(own);
		return -EOPNOTSUPP;
	}
	/* A probe every task may ask for, unless the ring refuses other tasks. */
	size_t psz = 16 + 256 * 8;
	void *probe = calloc(1, psz);
	int r = probe ? ring_register(own, RS_REGISTER_PROBE, probe, 256) : -ENOMEM;
	free(probe);
	if (r == -EEXIST) {
		say(why, whylen, "the ring was set up with IORING_SETUP_SINGLE_ISSUER: only its "
		    "submitter may register on it, so the daemon cannot revoke its buffers");
		goto unsupported;
	}
	if (r < 0 && r != -EACCES) {
		say(why, whylen, "IORING_REGISTER_PROBE on the ring: %s", strerror(-r));
		goto unsupported;
	}
	/* nr 0 is refused with -EINVAL only after the ring's own checks */
	struct rs_update2 up = { 0 };
	r = ring_register(own, RS_REGISTER_BUFFERS_UPDATE, &up, 0);
	if (r == -EACCES || r == -EEXIST || r == -EBADFD) {
		say(why, whylen, "the ring refuses buffer updates from the daemon (%s)",
		    strerror(-r));
		goto unsupported;
	}
	struct rs_sync_cancel sc = { .fd = -1, .flags = RS_CANCEL_OP, .opcode = 255,
				     .tv_sec = 0, .tv_nsec = 0 };
	r = ring_register(own, RS_REGISTER_SYNC_CANCEL, &sc, 1);
	if (r != -ENOENT && r != 0) {
		say(why, whylen, r == -EINVAL ?
		    "the kernel cannot cancel by opcode (IORING_ASYNC_CANCEL_OP, Linux 6.6)" :
		    "the ring refuses IORING_REGISTER_SYNC_CANCEL from the daemon (%s)",
		    strerror(-r));
		goto unsupported;
	}
	return own;
unsupported:
	close(own);
	return -EOPNOTSUPP;
}

int ringsup_same(pid_t pid_a, int fd_a, int fd_b)
{
	pid_t self = getpid();
	long r = syscall(__NR_kcmp, pid_a ? pid_a : self, self, RS_KCMP_FILE,
			 (unsigned long)fd_a, (unsigned long)fd_b);
	if (r < 0)
		return -errno;
	return r == 0;
}

/*
 * Read a whole /proc file from offset 0 (@fd kept open: a seq_file
 * regenerates its text on a read at offset 0, which spares the path walk).
 * Return: length, or -errno.  *@out malloc'ed.
 */
static ssize_t slurp_fd(int fd, char **out)
{
	size_t cap = 8192, len = 0;
	char *p = malloc(cap);
	for (;;) {
		if (!p)
			return -ENOMEM;
		if (cap - len < 4096) {
			char *np = realloc(p, cap * 2);
			if (!np) {
				free(p);
				return -ENOMEM;
			}
			p = np;
			cap *= 2;
		}
		ssize_t n = pread(fd, p + len, cap - len - 1, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(p);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	p[len] = 0;
	*out = p;
	return (ssize_t)len;
}

int ringsup_info_open(pid_t pid, int fd)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int info = open(path, O_RDONLY | O_CLOEXEC);
	return info < 0 ? -errno : info;
}

/*
 * Parse the UserBufs table of one fdinfo text.
 * Return: 0, -EAGAIN (table skipped), -EPROTO (no UserBufs line), -ENOMEM.
 */
static int parse_bufs(const char *text, struct ringsup_buf **out, size_t *nout)
{
	const char *p = strstr(text, "\nUserBufs:");
	if (!p)
		return -EPROTO;
	p += strlen("\nUserBufs:");
	unsigned long nr = strtoul(p, (char **)&p, 10);
	struct ringsup_buf *b = NULL;
	size_t n = 0, lines = 0;
	while (*p == '\n')
		p++;
	while (lines < nr) {
		unsigned int slot;
		unsigned long long addr;
		unsigned int len;
		int used = 0;
		if (sscanf(p, " %u: <none>%n", &slot, &used) == 1 && used > 0) {
			lines++;
		} else if (sscanf(p, " %u: 0x%llx/%u%n", &slot, &addr, &len, &used) == 3 &&
			   used > 0) {
			lines++;
			if (!(n & (n + 1)) || !b) {
				struct ringsup_buf *nb = realloc(b, (n + 1) * 2 * sizeof(*b));
				if (!nb) {
					free(b);
					return -ENOMEM;
				}
				b = nb;
			}
			b[n++] = (struct ringsup_buf){ slot, addr, len };
		} else {
			break;
		}
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	if (lines < nr) {
		free(b);
		return -EAGAIN;
	}
	*out = b;
	*nout = n;
	return 0;
}

int ringsup_read_info(int info, struct ringsup_buf **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	for (int attempt = 0; attempt < TABLE_RETRIES; attempt++) {
		char *text = NULL;
		ssize_t len = slurp_fd(info, &text);
		if (len < 0)
			return (int)len;
		int r = parse_bufs(text, out, n);
		free(text);
		if (r != -EAGAIN)
			return r;
		/* the ring's lock was busy: someone is submitting or registering */
		if (attempt < 20)
			sched_yield();
		else
			nanosleep(&(struct timespec){ 0, 50000 }, NULL);
	}
	return -EAGAIN;
}

int ringsup_read_bufs(pid_t pid, int fd, struct ringsup_buf **out, size_t *n)
{
	int info = ringsup_info_open(pid, fd);
	if (info < 0)
		return info;
	int err = ringsup_read_info(info, out, n);
	close(info);
	return err;
}

bool ringsup_overlaps(uint64_t addr, uint64_t len, const struct ringsup_range *r, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		if (addr < r[i].end && r[i].start < addr + len)
			return true;
	return false;
}

int ringsup_count_overlaps(int info, const struct ringsup_range *r, size_t nr)
{
	struct ringsup_buf *b;
	size_t n;
	int err = ringsup_read_info(info, &b, &n);
	if (err)
		return err;
	int count = 0;
	for (size_t i = 0; i < n; i++)
		count += ringsup_overlaps(b[i].addr, b[i].len, r, nr);
	free(b);
	return count;
}

/* Empty slot @slot of @fd.  Return 0 or -errno. */
static int empty_slot(int fd, uint32_t slot)
{
	struct iovec none = { NULL, 0 };
	struct rs_update2 up = { .offset = slot, .data = (uint64_t)(uintptr_t)&none, .nr = 1 };
	int r = ring_register(fd, RS_REGISTER_BUFFERS_UPDATE, &up, sizeof(up));
	return r < 0 ? r : 0;
}

/* Cancel every request of @opcode, waiting for running ones.  Return 0 or -errno. */
static int cancel_op(int fd, uint8_t opcode, unsigned int timeout_ms)
{
	/* each round cancels one, or waits for one that runs; bounded against
	 * a client that keeps submitting */
	for (int round = 0; round < 4096; round++) {
		struct rs_sync_cancel sc = {
			.fd = -1, .flags = RS_CANCEL_OP, .opcode = opcode,
			.tv_sec = timeout_ms / 1000, .tv_nsec = (int64_t)(timeout_ms % 1000) * 1000000,
		};
		int r = ring_register(fd, RS_REGISTER_SYNC_CANCEL, &sc, 1);
		if (r == -ENOENT)
			return 0;
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
	}
	return -ETIME;
}

int ringsup_revoke(int fd, int info, const struct ringsup_range *r, size_t nr,
		   unsigned int timeout_ms, char *why, size_t whylen)
{
	struct ringsup_buf *b;
	size_t n;
	int err = ringsup_read_info(info, &b, &n);
	if (err) {
		say(why, whylen, "reading the ring's registered buffers: %s", strerror(-err));
		return err == -ENOENT ? -EBADF : err;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ringsup_overlaps(b[i].addr, b[i].len, r, nr))
			continue;
		err = empty_slot(fd, b[i].slot);
		if (err) {
			say(why, whylen, "emptying slot %u of the ring: %s", b[i].slot,
			    strerror(-err));
			free(b);
			return err;
		}
	}
	free(b);
	for (size_t i = 0; i < sizeof(fixed_ops); i++) {
		err = cancel_op(fd, fixed_ops[i], timeout_ms);
		if (err) {
			say(why, whylen, "cancelling fixed-buffer requests (opcode %u): %s",
			    fixed_ops[i], strerror(-err));
			return err;
		}
	}
	return 0;
}

int ringsup_scan_pid(pid_t pid,
		     int (*fn)(void *arg, int fd, const struct ringsup_buf *b, size_t n),
		     void *arg)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || fd < 0)
			continue;
		char lp[80];
		snprintf(lp, sizeof(lp), "/proc/%d/fd/%ld", (int)pid, fd);
		if (!is_io_uring_link(lp))
			continue;
		struct ringsup_buf *b;
		size_t n;
		int err = ringsup_read_bufs(pid, (int)fd, &b, &n);
		if (err == -ENOENT)
			continue;	/* closed meanwhile */
		if (err) {
			ret = err;
			break;
		}
		if (n)
			ret = fn(arg, (int)fd, b, n);
		free(b);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}
