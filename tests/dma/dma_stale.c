/* SPDX-License-Identifier: MIT */
/*
 * dma_stale - the stale-DMA detector: an io_uring READ_FIXED kept pending on
 * a pipe into the pinned pages of file A must never land in a block after
 * A's blocks were freed (truncate, punch hole or unlink) and reused by
 * file B.  Each iteration:
 *
 *   1. an actor maps A directly, registers the mapping as a fixed buffer
 *      in one of the ways below and queues QD reads of IO bytes from a
 *      pipe into it (they stay pending: nothing is written to the pipe);
 *   2. this process truncates, punches or unlinks A (round robin);
 *   3. it fills the free space with file B (known bytes), fsyncs it;
 *   4. it pours the DMA pattern into the pipe: a read the daemon failed to
 *      revoke lands now, in pages that may belong to B;
 *   5. it reads B back (O_DIRECT) and counts pages that hold the pattern.
 *
 * Modes (the ways a pin escaped the client's word before the daemon
 * supervised rings itself):
 *   shim-liburing  an unmodified program run under libudax-preload.so
 *                  registers its own mapping with io_uring_register_buffers
 *   shim-raw       ... with a raw io_uring_register(2) system call
 *   ring2          a libudax client registers its map on a second ring of
 *                  its own, without udax_pin()
 *   clone          a libudax client pins, then clones the buffer into a
 *                  second ring (IORING_REGISTER_CLONE_BUFFERS; skipped when
 *                  the kernel lacks it)
 *   fork           a libudax client pins, forks a child that queues the
 *                  reads on the inherited ring; the client is SIGKILLed
 *   getfd          ... another process takes the ring with pidfd_getfd(2)
 *                  and queues the reads; the client is SIGKILLed
 *   nullh          a libudax client with a NULL recall handler
 *   noreap         a libudax client whose handler returns without reaping
 *   refuse         not a DMA run: a pin on a ring set up with
 *                  IORING_SETUP_SINGLE_ISSUER, which the daemon could not
 *                  revoke, must be refused with EOPNOTSUPP (the control
 *                  shows a trusting daemon accepts it)
 *
 * Usage: dma_stale MODE [ITERATIONS] [--control]
 * Passes when no page is corrupted, no block leaked (free blocks back to
 * the start value) and fsck.udaxfs -n is clean.  --control is the
 * NEGATIVE CONTROL: the daemon runs with UDAXFS_NO_RING_VERIFY=1 (it trusts
 * the client's word, as it did before), and the run must then count
 * corrupted pages (> 0), which proves that the detector sees them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define DEV_SIZE (32ull << 20)
#define A_LEN (2u << 20)		/* a multiple of 2 MiB: also runs with emul_align=2M */
#define QD 8
#define IO (64u << 10)
#define DMA_BYTE 0xD7
#define B_BYTE 0x42
#define RUN_BYTES 64		/* a page holding this many DMA bytes in a row is corrupted */

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#define REG_BUFFERS 0
#define REG_CLONE_BUFFERS 30

static const char *g_mode;
static const struct fsmount *g_fm;
static int g_pipe[2];		/* the DMA source */
static int g_ready[2];		/* actors report here */

struct ready_msg {
	char tag;		/* 'R' ready, 'S' skip (kernel lacks it), 'F' failed */
	pid_t victim;		/* the process the test kills (0: none) */
	pid_t extra;		/* another process the test kills at the end */
	int ring_fd;
	struct io_uring_params p;
	char why[160];
};

static void report(struct ready_msg *m)
{
	ssize_t r = write(g_ready[1], m, sizeof(*m));
	(void)r;
}

static void report_fail(char tag, const char *what, int err)
{
	struct ready_msg m = { .tag = tag };
	snprintf(m.why, sizeof(m.why), "%s: %s", what, strerror(err));
	report(&m);
}

/* Queue QD reads from the pipe into @buf (buffer index @bi) of @ring. */
static int queue_reads(struct io_uring *ring, char *buf, int bi)
{
	for (unsigned int i = 0; i < QD; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_read_fixed(sqe, g_pipe[0], buf + (size_t)i * (A_LEN / QD), IO, 0,
					 bi);
	}
	int r = io_uring_submit(ring);
	return r < 0 ? r : 0;
}

/* Actors still alive when the test dies: killed at exit. */
static pid_t g_live[8];

static void kill_live(void)
{
	for (size_t i = 0; i < sizeof(g_live) / sizeof(g_live[0]); i++)
		if (g_live[i] > 0)
			kill(g_live[i], SIGKILL);
}
/* the harness unmounts in t_die(): actors holding the mount go first */
#define t_die(...) (kill_live(), t_die(__VA_ARGS__))

static void park(void)
{
	for (;;)
		pause();
}

/* ---- actors: unmodified program under the shim (exec'ed) ---- */

static int app_main(const char *mode, const char *path)
{
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		report_fail('F', path, errno);
		return 1;
	}
	char *p = mmap(NULL, A_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		report_fail('F', path, errno);
		return 1;
	}
	close(fd);
	memset(p, 'a', A_LEN);	/* touch: it is a direct mapping of device pages */
	struct io_uring ring;
	int r = io_uring_queue_init(QD * 2, &ring, 0);
	if (r < 0) {
		report_fail('S', mode, -r);
		return T_SKIP;
	}
	struct iovec iov = { p, A_LEN };
	if (strcmp(mode, "shim-raw") == 0)
		r = syscall(__NR_io_uring_register, ring.ring_fd, REG_BUFFERS, &iov, 1) < 0 ? -errno : 0;
	else
		r = io_uring_register_buffers(&ring, &iov, 1);
	if (r < 0) {
		report_fail('F', mode, -r);
		return 1;
	}
	r = queue_reads(&ring, p, 0);
	if (r < 0) {
		report_fail('F', mode, -r);
		return 1;
	}
	struct ready_msg m = { .tag = 'R' };
	report(&m);
	park();
	return 0;
}

/* ---- actors: libudax clients (forked) ---- */

static void on_recall_noreap(struct udax_map *m, void *arg)
{
	(void)m;
	(void)arg;	/* returns at once: the reads are still pending */
}

static int lib_actor(void *arg)
{
	(void)arg;
	const char *mode = g_mode;
	struct udax_map_opts mo = { 0 };
	if (strcmp(mode, "noreap") == 0)
		mo.recall = on_recall_noreap;
	int fd = open(t_path(g_fm, "A"), O_RDWR);
	struct udax_map *m = NULL;
	int err = fd < 0 ? -errno : udax_map_open(&m, fd, 0, A_LEN, PROT_READ | PROT_WRITE, &mo);
	if (err) {
		report_fail('F', udax_last_error(), -err);
		return 1;
	}
	close(fd);
	char *buf = udax_map_addr(m);
	memset(buf, 'a', A_LEN);
	struct io_uring_params p = { 0 };
	struct io_uring ring, ring2;
	int r = io_uring_queue_init_params(QD * 2, &ring, &p);
	if (r < 0) {
		report_fail('S', mode, -r);
		return T_SKIP;
	}
	struct ready_msg rm = { .tag = 'R' };
	unsigned int bi = UDAX_PIN_ANY;
	if (strcmp(mode, "ring2") == 0) {
		struct iovec iov = { buf, A_LEN };
		r = io_uring_register_buffers(&ring, &iov, 1);	/* no udax_pin */
		if (r < 0) {
			report_fail('F', mode, -r);
			return 1;
		}
		r = queue_reads(&ring, buf, 0);
	} else {
		err = udax_pin(m, &ring, &bi);
		if (err) {
			report_fail('F', udax_last_error(), -err);
			return 1;
		}
		if (strcmp(mode, "clone") == 0) {
			r = io_uring_queue_init(QD * 2, &ring2, 0);
			struct {
				uint32_t src_fd, flags, src_off, dst_off, nr, pad[3];
			} cb = { .src_fd = (uint32_t)ring.ring_fd };
			if (r == 0 && syscall(__NR_io_uring_register, ring2.ring_fd,
					      REG_CLONE_BUFFERS, &cb, 1) < 0) {
				report_fail('S', "IORING_REGISTER_CLONE_BUFFERS", errno);
				return T_SKIP;
			}
			r = queue_reads(&ring2, buf, 0);
		} else if (strcmp(mode, "fork") == 0) {
			pid_t k = fork();
			if (k == 0) {
				/* the child: the inherited ring, its registered buffer */
				r = queue_reads(&ring, buf, (int)bi);
				struct ready_msg km = { .tag = r < 0 ? 'F' : 'K' };
				if (r < 0)
					snprintf(km.why, sizeof(km.why), "child reads: %s",
						 strerror(-r));
				report(&km);
				park();
			}
			rm.extra = k;
			r = 0;
		} else if (strcmp(mode, "getfd") == 0) {
			rm.ring_fd = ring.ring_fd;
			rm.p = p;
			r = 0;
		} else {
			r = queue_reads(&ring, buf, (int)bi);
		}
	}
	if (r < 0) {
		report_fail('F', mode, -r);
		return 1;
	}
	rm.victim = getpid();
	report(&rm);
	park();
	return 0;
}

/* The pidfd_getfd taker: takes the client's ring and queues the reads on it. */
struct taker_arg {
	pid_t client;
	int ring_fd;
	struct io_uring_params p;
};

static int taker(void *arg)
{
	struct taker_arg *ta = arg;
	int pidfd = (int)syscall(__NR_pidfd_open, ta->client, 0);
	int fd = pidfd < 0 ? -1 : (int)syscall(__NR_pidfd_getfd, pidfd, ta->ring_fd, 0);
	if (fd < 0) {
		report_fail('S', "pidfd_getfd", errno);
		return T_SKIP;
	}
	struct io_uring ring;
	int r = io_uring_queue_mmap(fd, &ta->p, &ring);
	if (r < 0) {
		report_fail('F', "io_uring_queue_mmap of the taken ring", -r);
		return 1;
	}
	/* the buffer's address is the client's: the kernel resolved it at registration */
	r = -ENOENT;
	char line[256];
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	unsigned long long addr = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, " 0: 0x%llx/", &addr) == 1)
			break;
	if (f)
		fclose(f);
	r = addr ? queue_reads(&ring, (char *)(uintptr_t)addr, 0) : -ENOENT;
	struct ready_msg m = { .tag = r < 0 ? 'F' : 'K' };
	if (r < 0)
		snprintf(m.why, sizeof(m.why), "taker reads: %s", strerror(-r));
	report(&m);
	park();
	return 0;
}

/* A pin the daemon cannot supervise is refused.  Exit 0 as expected, 1 not, 77. */
static int refuse_client(void *arg)
{
	bool control = arg != NULL;
	int fd = open(t_path(g_fm, "R"), O_CREAT | O_RDWR, 0644);
	struct udax_map *m = NULL;
	int err = fd < 0 ? -errno : udax_map_open(&m, fd, 0, A_LEN, PROT_READ | PROT_WRITE, NULL);
	if (err) {
		fprintf(stderr, "udax_map_open: %s\n", udax_last_error());
		return 1;
	}
	struct io_uring ring;
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER };
	int r = io_uring_queue_init_params(8, &ring, &p);
	if (r < 0) {
		printf("SKIP refuse: no single-issuer rings: %s\n", strerror(-r));
		return T_SKIP;
	}
	unsigned int bi = UDAX_PIN_ANY;
	err = udax_pin(m, &ring, &bi);
	printf("udax_pin on a single-issuer ring: %d (%s)\n", err, err ? udax_last_error() : "ok");
	if (control)
		return err == 0 ? 0 : 1;
	if (err != -EOPNOTSUPP || !strstr(udax_last_error(), "SINGLE_ISSUER"))
		return 1;
	/* an ordinary ring still works, and unpins */
	struct io_uring r2;
	if (io_uring_queue_init(8, &r2, 0) < 0)
		return T_SKIP;
	bi = UDAX_PIN_ANY;
	err = udax_pin(m, &r2, &bi);
	if (!err)
		err = udax_unpin(m, &r2);
	if (err)
		fprintf(stderr, "pin/unpin on an ordinary ring: %s\n", udax_last_error());
	udax_map_close(&m);
	return err ? 1 : 0;
}

/* ---- the test ---- */

static int wait_msg(struct ready_msg *m, unsigned int timeout_ms)
{
	for (unsigned int t = 0; t < timeout_ms; t += 5) {
		ssize_t r = read(g_ready[0], m, sizeof(*m));
		if (r == (ssize_t)sizeof(*m))
			return 0;
		t_sleep_ms(5);
	}
	return -ETIMEDOUT;
}

static void kill_wait(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	t_wait(pid, 10000);
}

/* Fill the free space with B.  Return the bytes written. */
static size_t fill_b(void)
{
	int fd = open(t_path(g_fm, "B"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		t_die("create B: %s", strerror(errno));
	static char chunk[256 << 10];
	memset(chunk, B_BYTE, sizeof(chunk));
	size_t total = 0;
	for (;;) {
		ssize_t w = write(fd, chunk, sizeof(chunk));
		if (w <= 0)
			break;
		total += (size_t)w;
		if (total >= DEV_SIZE)
			break;
	}
	fsync(fd);
	close(fd);
	return total;
}

/* Count the pages of B that hold the DMA pattern. */
static uint64_t check_b(size_t len)
{
	int fd = open(t_path(g_fm, "B"), O_RDONLY | O_DIRECT);
	if (fd < 0)
		fd = open(t_path(g_fm, "B"), O_RDONLY);
	if (fd < 0)
		t_die("open B: %s", strerror(errno));
	char *buf = aligned_alloc(4096, 1 << 20);
	uint64_t bad = 0;
	for (size_t off = 0; off < len;) {
		ssize_t r = pread(fd, buf, 1 << 20, (off_t)off);
		if (r <= 0)
			break;
		for (ssize_t pg = 0; pg < r; pg += 4096) {
			size_t run = 0;
			for (ssize_t i = pg; i < r && i < pg + 4096; i++) {
				run = (unsigned char)buf[i] == DMA_BYTE ? run + 1 : 0;
				if (run >= RUN_BYTES) {
					bad++;
					break;
				}
			}
		}
		off += (size_t)r;
	}
	free(buf);
	close(fd);
	return bad;
}

/* Start the actor for one iteration.  Return 0, or 77 when the mode is unsupported. */
static int start_actor(const char *self, pid_t *kill_list, int *nkill)
{
	struct ready_msg m;
	bool shim = strncmp(g_mode, "shim-", 5) == 0;
	pid_t pid;
	if (shim) {
		pid = fork();
		if (pid == 0) {
			char pre[600];
			const char *b = getenv("top_builddir");
			snprintf(pre, sizeof(pre), "%s/.libs/libudax-preload.so", b ? b : ".");
			setenv("LD_PRELOAD", pre, 1);
			char ready[16], src[16];
			snprintf(ready, sizeof(ready), "%d", g_ready[1]);
			snprintf(src, sizeof(src), "%d", g_pipe[0]);
			execl(self, self, "--app", g_mode, t_path(g_fm, "A"), src, ready, (char *)NULL);
			_exit(127);
		}
	} else {
		pid = t_fork(lib_actor, NULL);
	}
	kill_list[(*nkill)++] = pid;
	g_live[0] = pid;
	if (wait_msg(&m, 10000))
		t_die("%s: the actor did not report", g_mode);
	if (m.tag == 'S') {
		printf("SKIP %s: %s\n", g_mode, m.why);
		return T_SKIP;
	}
	if (m.tag == 'F')
		t_die("%s: actor failed: %s", g_mode, m.why);
	if (strcmp(g_mode, "fork") == 0) {
		/* the client ('R') and its child ('K') report in either order */
		struct ready_msg km;
		if (wait_msg(&km, 10000))
			t_die("fork: only one of the client and its child reported");
		if (km.tag == 'R') {
			struct ready_msg t = km;
			km = m;
			m = t;
		}
		if (m.tag != 'R' || km.tag != 'K')
			t_die("fork: the child did not queue its reads: tags %c %c: %s %s", m.tag, km.tag, m.why, km.why);
	}
	if (m.extra)
		g_live[1] = kill_list[(*nkill)++] = m.extra;
	if (strcmp(g_mode, "getfd") == 0) {
		struct taker_arg ta = { m.victim, m.ring_fd, m.p };
		g_live[2] = kill_list[(*nkill)++] = t_fork(taker, &ta);
		struct ready_msg km;
		if (wait_msg(&km, 10000))
			t_die("getfd: the taker did not report");
		if (km.tag == 'S') {
			printf("SKIP %s: %s\n", g_mode, km.why);
			return T_SKIP;
		}
		if (km.tag != 'K')
			t_die("getfd: the taker failed: %s", km.why);
	}
	if (strcmp(g_mode, "fork") == 0 || strcmp(g_mode, "getfd") == 0) {
		/* the client dies; its ring lives on in another process */
		kill(m.victim, SIGKILL);
		t_wait(m.victim, 10000);
		kill_list[0] = 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "--app") == 0) {
		g_pipe[0] = atoi(argv[4]);
		g_ready[1] = atoi(argv[5]);
		return app_main(argv[2], argv[3]);
	}
	if (argc < 2) {
		fprintf(stderr, "Usage: %s MODE [ITERATIONS] [--control]\n", argv[0]);
		return T_FAIL;
	}
	g_mode = argv[1];
	const char *modes[] = { "shim-liburing", "shim-raw", "ring2", "clone", "fork", "getfd",
				"nullh", "noreap", "refuse" };
	bool known = false;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		known |= strcmp(modes[i], g_mode) == 0;
	if (!known) {
		fprintf(stderr, "dma_stale: unknown mode '%s'\n", g_mode);
		return T_FAIL;
	}
	int iters = argc > 2 && argv[2][0] != '-' ? atoi(argv[2]) : 20;
	bool control = argc > 2 && strcmp(argv[argc - 1], "--control") == 0;
	t_require_env();
	prctl(PR_SET_CHILD_SUBREAPER, 1);	/* forked grandchildren come back to us */
	if (control)
		setenv("UDAXFS_NO_RING_VERIFY", "1", 1);	/* the daemon inherits it */
	struct fsmount fm;
	char name[64];
	snprintf(name, sizeof(name), "idle-stale-%s%s", g_mode, control ? "-ctl" : "");
	t_mount(&fm, name, DEV_SIZE, NULL);
	unsetenv("UDAXFS_NO_RING_VERIFY");
	g_fm = &fm;
	atexit(kill_live);	/* runs before the harness unmounts */
	if (pipe2(g_ready, O_CLOEXEC | O_NONBLOCK) < 0)
		t_die("pipe: %s", strerror(errno));
	fcntl(g_ready[1], F_SETFL, 0);
	fcntl(g_ready[1], F_SETFD, 0);	/* the exec'ed app writes to it */
	/* the root directory's first block comes with its first entry */
	int wfd = open(t_path(&fm, "warm"), O_CREAT | O_WRONLY, 0644);
	if (wfd >= 0)
		close(wfd);
	unlink(t_path(&fm, "warm"));
	uint64_t free0 = t_free_blocks(&fm);
	if (strcmp(g_mode, "refuse") == 0) {
		int r = t_wait(t_fork(refuse_client, control ? &fm : NULL), 30000);
		CHECK(r == 0 || r == T_SKIP, "refuse%s: exit %d", control ? " (control)" : "", r);
		t_umount(&fm);
		return r == T_SKIP ? T_SKIP : t_failures ? T_FAIL : T_PASS;
	}
	uint64_t corrupted = 0, done = 0;
	static const char *ops[] = { "truncate", "punch", "unlink" };
	int rc = T_PASS;
	for (int it = 0; it < iters; it++) {
		const char *op = ops[it % 3];
		int afd = open(t_path(&fm, "A"), O_CREAT | O_RDWR | O_TRUNC, 0644);
		if (afd < 0 || ftruncate(afd, A_LEN) < 0)
			t_die("create A: %s", strerror(errno));
		if (pipe(g_pipe) < 0)
			t_die("pipe: %s", strerror(errno));
		fcntl(g_pipe[1], F_SETPIPE_SZ, 1 << 20);
		pid_t kill_list[4] = { 0 };
		int nkill = 0;
		int r = start_actor(argv[0], kill_list, &nkill);
		if (r == T_SKIP) {
			for (int k = 0; k < nkill; k++)
				kill_wait(kill_list[k]);
			t_umount(&fm);
			return T_SKIP;
		}
		close(g_pipe[0]);
		if (strcmp(op, "truncate") == 0)
			r = ftruncate(afd, 0);
		else if (strcmp(op, "punch") == 0)
			r = fallocate(afd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, A_LEN);
		if (r < 0)
			t_die("%s A: %s", op, strerror(errno));
		close(afd);
		if (strcmp(op, "unlink") == 0 && unlink(t_path(&fm, "A")) < 0)
			t_die("unlink A: %s", strerror(errno));
		size_t blen = fill_b();
		/* what a live read would deliver */
		static char pat[QD * IO];
		memset(pat, DMA_BYTE, sizeof(pat));
		fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);
		ssize_t w = write(g_pipe[1], pat, sizeof(pat));
		(void)w;
		t_sleep_ms(30);
		uint64_t bad = check_b(blen);
		corrupted += bad;
		done++;
		for (int k = 0; k < nkill; k++)
			kill_wait(kill_list[k]);
		memset(g_live, 0, sizeof(g_live));
		close(g_pipe[1]);
		unlink(t_path(&fm, "B"));
		unlink(t_path(&fm, "A"));
		if (control && corrupted)
			break;	/* seen: enough for the control */
		/* B filled the device and its blocks come back only when the
		 * kernel's FORGET arrives, which is asynchronous (over io_uring
		 * it may come after the next requests): the next A needs them */
		for (int i = 0; i < 500 && t_free_blocks(&fm) < free0; i++)
			t_sleep_ms(20);
	}
	/* every block comes back once the actors are gone (eviction is asynchronous) */
	uint64_t free1 = 0;
	for (int i = 0; i < 500; i++) {
		free1 = t_free_blocks(&fm);
		if (free1 == free0)
			break;
		t_sleep_ms(20);
	}
	printf("dma_stale %s%s: %llu iterations, %llu corrupted pages, free blocks %llu -> %llu\n",
	       g_mode, control ? " (control: no ring verification)" : "",
	       (unsigned long long)done, (unsigned long long)corrupted,
	       (unsigned long long)free0, (unsigned long long)free1);
	if (control) {
		CHECK(corrupted > 0, "the negative control saw no corruption: the detector is blind");
		t_umount(&fm);
		return t_failures ? T_FAIL : T_PASS;
	}
	CHECK(corrupted == 0, "%llu pages of B hold the DMA pattern", (unsigned long long)corrupted);
	CHECK(free1 == free0, "leaked %lld blocks", (long long)(free0 - free1));
	int frc = t_unmount_fsck(&fm);
	CHECK(frc == 0, "fsck.udaxfs -n exited %d", frc);
	t_umount(&fm);
	if (t_failures)
		rc = T_FAIL;
	return rc;
}
