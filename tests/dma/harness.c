/* SPDX-License-Identifier: MIT */
/*
 * harness.c - see harness.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <udax/udax_proto.h>

#include "harness.h"
#include "lib/wire.h"

#define FUSE_SUPER_MAGIC 0x65735546

static struct fsmount *t_cleanup_fm;

/* t_cleanup: leave no mount and no image behind, whatever ends the test */
static void umount_on_exit(void)
{
	if (t_cleanup_fm)
		t_umount(t_cleanup_fm);
}

uint64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void t_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static char bindir[4096];

static const char *prog(const char *name)
{
	static char buf[2][4200];
	static int k;
	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", bindir, name);
	return buf[k];
}

void t_require_env(void)
{
	const char *b = getenv("top_builddir");
	snprintf(bindir, sizeof(bindir), "%s", b ? b : ".");
	if (access("/dev/fuse", R_OK | W_OK) != 0)
		t_skip("/dev/fuse is not usable: %s", strerror(errno));
	if (access("/dev/shm", W_OK) != 0)
		t_skip("/dev/shm is not writable (pins need a tmpfs emulation file)");
	if (access(prog("udaxfs"), X_OK) != 0 || access(prog("mkfs.udaxfs"), X_OK) != 0)
		t_skip("udaxfs or mkfs.udaxfs is not built in %s", bindir);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static int run(const char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);	/* keep stderr: it says why */
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool is_mounted(const char *mnt)
{
	struct statfs sf;
	return statfs(mnt, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

static void do_mount(struct fsmount *fm)
{
	const char *argv[8];
	int n = 0;
	argv[n++] = prog("udaxfs");
	argv[n++] = fm->img;
	argv[n++] = fm->mnt;
	if (fm->opts[0]) {
		argv[n++] = "-o";
		argv[n++] = fm->opts;
	}
	argv[n] = NULL;
	int rc = run(argv);
	if (rc != 0)
		t_die("udaxfs %s %s -o %s exited %d", fm->img, fm->mnt, fm->opts, rc);
	for (int i = 0; i < 200 && !is_mounted(fm->mnt); i++)
		t_sleep_ms(10);
	if (!is_mounted(fm->mnt))
		t_die("%s is not a FUSE mount after udaxfs returned", fm->mnt);
	fm->mounted = true;
}

void t_mount(struct fsmount *fm, const char *name, uint64_t size, const char *opts)
{
	memset(fm, 0, sizeof(*fm));
	snprintf(fm->img, sizeof(fm->img), "/dev/shm/udaxfs-test-%s-%d.img", name, (int)getpid());
	snprintf(fm->mnt, sizeof(fm->mnt), "/tmp/udaxfs-test-%s-%d.mnt", name, (int)getpid());
	snprintf(fm->opts, sizeof(fm->opts), "%s", opts ? opts : "");
	/*
	 * UDAX_TEST_EMUL_ALIGN=2M (tests/dma/align2m.sh) mounts with the
	 * alignment of a real device-DAX, whose mappings must be 2 MiB
	 * aligned: the emulation file must then be a multiple of it.
	 */
	const char *al = getenv("UDAX_TEST_EMUL_ALIGN");
	if (al && *al) {
		uint64_t a = 0;
		char *end;
		unsigned long long v = strtoull(al, &end, 0);
		if (*end == 'K' || *end == 'k')
			a = v << 10;
		else if (*end == 'M' || *end == 'm')
			a = v << 20;
		else if (*end == 'G' || *end == 'g')
			a = v << 30;
		else
			a = v;
		if (!a || (a & (a - 1)))
			t_die("UDAX_TEST_EMUL_ALIGN=%s: not a power of two", al);
		size = (size + a - 1) & ~(a - 1);
		size_t l = strlen(fm->opts);
		snprintf(fm->opts + l, sizeof(fm->opts) - l, "%semul_align=%s", l ? "," : "", al);
	}
	/* UDAX_TEST_MOUNT_OPTS (tests/dma/writeback.sh): more mount options */
	const char *mo = getenv("UDAX_TEST_MOUNT_OPTS");
	if (mo && *mo) {
		size_t l = strlen(fm->opts);
		snprintf(fm->opts + l, sizeof(fm->opts) - l, "%s%s", l ? "," : "", mo);
	}
	fm->size = size;
	t_cleanup_fm = fm;
	t_cleanup = umount_on_exit;
	int fd = open(fm->img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		t_die("creating %s: %s", fm->img, strerror(errno));
	close(fd);
	if (mkdir(fm->mnt, 0755) < 0 && errno != EEXIST)
		t_die("mkdir %s: %s", fm->mnt, strerror(errno));
	const char *mk[] = { prog("mkfs.udaxfs"), fm->img, NULL };
	int rc = run(mk);
	if (rc != 0)
		t_die("mkfs.udaxfs %s exited %d", fm->img, rc);
	do_mount(fm);
}

static void do_umount(struct fsmount *fm)
{
	if (!fm->mounted)
		return;
	const char *um[] = { "fusermount3", "-u", fm->mnt, NULL };
	for (int i = 0; i < 100; i++) {
		if (run(um) == 0)
			break;
		t_sleep_ms(50);	/* busy: a child may still hold a file open */
	}
	/* the daemon finishes unmounting its core after the kernel let go */
	for (int i = 0; i < 300 && is_mounted(fm->mnt); i++)
		t_sleep_ms(10);
	t_wait_released(fm->img);
	fm->mounted = false;
}

/*
 * Wait (up to 20 s) until no daemon holds @img: a daemon keeps its lock on
 * the device until its last write is durable, and a test that reads or
 * checks the image before then races it.
 */
void t_wait_released(const char *img)
{
	int fd = open(img, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < 2000 && flock(fd, LOCK_EX | LOCK_NB) < 0; i++)
		t_sleep_ms(10);
	flock(fd, LOCK_UN);
	close(fd);
}

void t_remount(struct fsmount *fm)
{
	do_umount(fm);
	do_mount(fm);
}

int t_unmount_fsck(struct fsmount *fm)
{
	do_umount(fm);
	const char *argv[] = { prog("fsck.udaxfs"), "-n", fm->img, NULL };
	return run(argv);
}

void t_umount(struct fsmount *fm)
{
	do_umount(fm);
	if (fm->mnt[0])
		rmdir(fm->mnt);
	if (fm->img[0])
		unlink(fm->img);
	t_cleanup_fm = NULL;
}

const char *t_path(const struct fsmount *fm, const char *name)
{
	static char buf[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", fm->mnt, name);
	return buf[k];
}

void t_uring_init(struct io_uring *ring, unsigned int entries)
{
	int r = io_uring_queue_init(entries, ring, 0);
	if (r < 0)
		t_skip("io_uring_queue_init: %s", strerror(-r));
}

int dma_submit(struct dma *d)
{
	int queued = 0;
	while (d->inflight < d->qd) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(d->ring);
		if (!sqe)
			break;
		size_t slots = d->len / d->io;
		size_t slot = (size_t)rand_r(&d->seed) % slots;
		io_uring_prep_read_fixed(sqe, d->src_fd, d->buf + slot * d->io, (unsigned int)d->io,
					 0, (int)d->bi);
		d->inflight++;
		queued++;
	}
	if (queued) {
		int r = io_uring_submit(d->ring);
		if (r < 0)
			return r;
	}
	return queued;
}

int dma_reap(struct dma *d, unsigned int min)
{
	unsigned int got = 0;
	while (d->inflight) {
		struct io_uring_cqe *cqe;
		int r = got < min ? io_uring_wait_cqe(d->ring, &cqe) : io_uring_peek_cqe(d->ring, &cqe);
		if (r == -EAGAIN)
			break;
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		if (cqe->res < 0)
			d->errors++;
		else
			d->done++;
		io_uring_cqe_seen(d->ring, cqe);
		d->inflight--;
		got++;
	}
	return (int)got;
}

int dma_drain(struct dma *d)
{
	int r = dma_reap(d, d->inflight);
	return r < 0 ? r : 0;
}

int t_pattern_file(size_t len, int byte)
{
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm/udaxfs-test-src-%d-%d", (int)getpid(), byte);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		t_die("creating %s: %s", path, strerror(errno));
	unlink(path);
	char *b = malloc(len);
	if (!b)
		t_die("out of memory");
	memset(b, byte, len);
	if (pwrite(fd, b, len, 0) != (ssize_t)len)
		t_die("writing %s: %s", path, strerror(errno));
	free(b);
	return fd;
}

pid_t t_fork(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		t_die("fork: %s", strerror(errno));
	if (pid == 0) {
		t_cleanup_fm = NULL;	/* the parent unmounts */
		_exit(fn(arg));
	}
	return pid;
}

int t_wait(pid_t pid, unsigned int timeout_ms)
{
	uint64_t end = t_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (t_now_ns() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(2);
	}
}

uint64_t t_free_blocks(const struct fsmount *fm)
{
	struct statvfs sv;
	if (statvfs(fm->mnt, &sv) < 0)
		t_die("statvfs %s: %s", fm->mnt, strerror(errno));
	return sv.f_bfree;
}

int proto_hello(int fd, struct udax_ioc_hello *h)
{
	return udax_wire_hello(fd, h);
}

int proto_connect(const char *name, struct udax_wire **out)
{
	*out = NULL;
	return udax_wire_open(out, name);
}

void proto_close(struct udax_wire **w)
{
	udax_wire_put(w);
}

int proto_raw_connect(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t nl = strnlen(name, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, name, nl);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + nl)) < 0) {
		int e = -errno;
		close(s);
		return e;
	}
	return s;
}

int proto_call(struct udax_wire *w, unsigned int type, const void *in, size_t in_len,
	       void *out, size_t max, size_t *len)
{
	void *rep = NULL;
	uint32_t n = 0;
	int err = udax_wire_call(w, (uint16_t)type, in, (uint32_t)in_len, &rep, &n, NULL);
	if (err < 0 && rep && n)
		fprintf(stderr, "  daemon says: %s\n", (char *)rep);
	if (out && rep)
		memcpy(out, rep, n < max ? n : max);
	if (len)
		*len = n;
	free(rep);
	return err;
}

int proto_send(struct udax_wire *w, unsigned int type, const void *in, size_t in_len)
{
	return udax_wire_send(w, (uint16_t)type, in, (uint32_t)in_len);
}
