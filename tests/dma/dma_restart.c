/* SPDX-License-Identifier: MIT */
/*
 * dma_restart - a new daemon on a device whose old daemon died under a pin.
 *
 * A client maps file A (libudax), pins it (io_uring fixed buffer) and keeps
 * READ_FIXED of a 0xA5 pattern streaming into it.  The daemon is killed
 * (SIGKILL) and its dead FUSE mount detached.  Then:
 *  1. a new udaxfs on the same device must refuse to mount while the client
 *     still maps the device, and name the client's pid;
 *  2. the client unmaps A and closes its device descriptors, but its ring
 *     keeps the pages pinned and the DMA keeps landing in them (a pin
 *     outlives munmap).  The new udaxfs mounts now, and quarantines what
 *     the old daemon recorded as pinned: after unlinking A and filling the
 *     device with file B (0x3C), no page of B may show 0xA5, and
 *     fsck.udaxfs finds the image clean.  udaxctl status reports the
 *     quarantine, and `udaxctl quarantine --release` clears it once unmounted.
 * Bug fixed: the new daemon reused A's blocks at once and the DMA landed in
 * 256 of B's 256 pages that took them.
 *
 * The same again when the old daemon unmounted cleanly but gave up waiting
 * for the pin ("pages still pinned"): the pin's record stays for the next
 * mount.
 *
 * NEGATIVE CONTROL: the same run with -o quarantine=ignore (tests only) must
 * find A's pattern in B, which proves the check can see the corruption.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "harness.h"
#include "lib/status.h"

#define DEV_SIZE (24ull << 20)
#define A_LEN (1u << 20)
#define DMA_BYTE 0xA5
#define B_BYTE 0x3C

static const struct fsmount *g_fm;
static int g_ready[2], g_cmd[2];

/* Close every descriptor of this process that reaches @img. */
static void close_device_fds(const char *img)
{
	struct stat want, st;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (stat(img, &want) < 0 || !d)
		return;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d))
			continue;
		if (fstat(fd, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
			close(fd);
	}
	closedir(d);
}

static int dma_client(void *arg)
{
	(void)arg;
	struct io_uring ring;
	struct udax_map *m = NULL;
	struct udax_map_opts mo = { .flags = UDAX_MAP_RECALL_FD };	/* never answers */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (io_uring_queue_init(16, &ring, 0) < 0)
		return T_SKIP;
	int fd = open(t_path(g_fm, "A"), O_RDWR);
	if (fd < 0 || udax_map_open(&m, fd, 0, A_LEN, PROT_READ | PROT_WRITE, &mo)) {
		fprintf(stderr, "client: %s\n", udax_last_error());
		return 3;
	}
	unsigned int bi = UDAX_PIN_ANY;
	if (udax_pin(m, &ring, &bi)) {
		fprintf(stderr, "client: %s\n", udax_last_error());
		return 4;
	}
	close(fd);	/* the mount can be unmounted; the layout and the pin stay */
	struct dma d = { .ring = &ring, .src_fd = t_pattern_file(65536, DMA_BYTE),
			 .buf = udax_map_addr(m), .len = A_LEN, .io = 65536, .qd = 4, .bi = bi,
			 .seed = 7 };
	char c = 'r';
	if (write(g_ready[1], &c, 1) != 1)
		return 5;
	fcntl(g_cmd[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		dma_submit(&d);
		dma_reap(&d, 1);
		if (read(g_cmd[0], &c, 1) == 1 && c == 'u') {
			/* drop the mapping and the device: only the ring's pin is left */
			munmap(udax_map_addr(m), A_LEN);
			close_device_fds(g_fm->img);
			if (write(g_ready[1], &c, 1) != 1)
				return 6;
		}
	}
}

/* Run argv with stderr captured in @err; return the exit status. */
static int run_capture(const char *const argv[], char *err, size_t size)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		t_die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t n;
	while ((n = read(p[0], err + got, size - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = 0;
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *bin(const char *name)
{
	static char buf[4][4200];
	static int k;
	const char *b = getenv("top_builddir");
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", b ? b : ".", name);
	return buf[k];
}

static int mount_again(struct fsmount *fm, const char *opts, char *err, size_t size)
{
	const char *argv[] = { bin("udaxfs"), fm->img, fm->mnt, opts ? "-o" : NULL, opts, NULL };
	int rc = run_capture(argv, err, size);
	if (rc == 0) {
		fm->mounted = true;
		for (int i = 0; i < 200; i++) {
			struct stat a, b;
			char parent[300];
			snprintf(parent, sizeof(parent), "%s/..", fm->mnt);
			if (stat(fm->mnt, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev)
				break;
			t_sleep_ms(10);
		}
	}
	return rc;
}

/* A field of the daemon's status ("pid", "quarantined_blocks"); -1 if missing. */
static long status_field(const struct fsmount *fm, const char *key)
{
	struct udax_ioc_hello h;
	struct udax_status *st = NULL;
	char why[256] = "";
	long v = -1;
	int fd = open(fm->mnt, O_RDONLY | O_DIRECTORY);
	int f2 = open(t_path(fm, "status-probe"), O_RDWR | O_CREAT, 0600);
	if (f2 < 0 || proto_hello(f2, &h)) {
		if (fd >= 0)
			close(fd);
		if (f2 >= 0)
			close(f2);
		return -1;
	}
	struct udax_wire *w = NULL;
	int s = proto_connect(h.sock, &w);
	if (s == 0 && udax_status_get(w, &st, why, sizeof(why)) == 0) {
		if (!strcmp(key, "pid"))
			v = st->head.pid;
		else if (!strcmp(key, "quarantined_blocks"))
			v = (long)st->head.quarantined_blocks;
	} else {
		fprintf(stderr, "status: %s\n", why);
	}
	udax_status_free(&st);
	proto_close(&w);
	close(f2);
	unlink(t_path(fm, "status-probe"));
	if (fd >= 0)
		close(fd);
	return v;
}

static void kill_daemon(struct fsmount *fm, pid_t dpid)
{
	kill(dpid, SIGKILL);
	for (int i = 0; i < 500 && kill(dpid, 0) == 0; i++)
		t_sleep_ms(10);
	const char *um[] = { "umount", "-l", fm->mnt, NULL };
	char err[512];
	run_capture(um, err, sizeof(err));
	fm->mounted = false;
}

/* Fill the device with B; return the number of B's pages that are not all B_BYTE. */
static long fill_and_check(const struct fsmount *fm, long *pages)
{
	static char buf[65536] __attribute__((aligned(4096)));
	int fd = open(t_path(fm, "B"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	off_t off = 0;
	if (fd < 0)
		t_die("creating B: %s", strerror(errno));
	memset(buf, B_BYTE, sizeof(buf));
	for (;;) {
		ssize_t n = pwrite(fd, buf, sizeof(buf), off);
		if (n <= 0)
			break;
		off += n;
	}
	fsync(fd);
	close(fd);
	t_sleep_ms(300);	/* the DMA keeps streaming: let it land */
	fd = open(t_path(fm, "B"), O_RDONLY | O_DIRECT);
	if (fd < 0)
		t_die("opening B with O_DIRECT: %s", strerror(errno));
	long bad = 0;
	*pages = 0;
	for (off_t o = 0;; o += (off_t)sizeof(buf)) {
		ssize_t n = pread(fd, buf, sizeof(buf), o);
		if (n <= 0)
			break;
		for (ssize_t p = 0; p < n; p += 4096) {
			(*pages)++;
			for (ssize_t i = p; i < p + 4096 && i < n; i++)
				if ((unsigned char)buf[i] != B_BYTE) {
					bad++;
					break;
				}
		}
	}
	close(fd);
	return bad;
}

static void release_quarantine(const struct fsmount *fm)
{
	const char *argv[] = { bin("udaxctl"), "quarantine", "--release", fm->img, NULL };
	char err[2048];
	int rc = run_capture(argv, err, sizeof(err));
	CHECK(rc == 0, "udaxctl quarantine --release %s exited %d: %s", fm->img, rc, err);
}

enum how { KILLED_IGNORE, KILLED, UNMOUNTED };

/* Unmount cleanly while the pin is live: the daemon gives up waiting and exits. */
static void unmount_daemon(struct fsmount *fm, pid_t dpid)
{
	const char *um[] = { "fusermount3", "-u", fm->mnt, NULL };
	char err[512];
	for (int i = 0; i < 100 && run_capture(um, err, sizeof(err)) != 0; i++)
		t_sleep_ms(50);
	for (int i = 0; i < 1500 && kill(dpid, 0) == 0; i++)
		t_sleep_ms(10);
	CHECK(kill(dpid, 0) < 0, "the daemon did not exit after the unmount");
	fm->mounted = false;
}

/* One run; return how many pages of B hold something else than B's bytes. */
static long scenario(enum how how)
{
	bool ignore = how == KILLED_IGNORE;
	struct fsmount fm;
	char err[8192];

	t_mount(&fm, ignore ? "restart-ctl" : how == KILLED ? "restart" : "restart-umount",
		DEV_SIZE, NULL);
	g_fm = &fm;
	int fd = open(t_path(&fm, "A"), O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, A_LEN) < 0)
		t_die("creating A: %s", strerror(errno));
	close(fd);
	if (pipe2(g_ready, O_CLOEXEC) < 0 || pipe2(g_cmd, O_CLOEXEC) < 0)
		t_die("pipe: %s", strerror(errno));
	pid_t client = t_fork(dma_client, NULL);
	char c;
	if (read(g_ready[0], &c, 1) != 1) {
		int st = t_wait(client, 5000);
		if (st == T_SKIP)
			t_skip("io_uring is not available");
		t_die("the DMA client failed (status %d)", st);
	}
	long dpid = status_field(&fm, "pid");
	if (dpid <= 0)
		t_die("cannot read the daemon's pid from its status");
	if (how == UNMOUNTED)
		unmount_daemon(&fm, (pid_t)dpid);
	else
		kill_daemon(&fm, (pid_t)dpid);

	/* 1. the client still maps the device: refused, naming it */
	int rc = mount_again(&fm, NULL, err, sizeof(err));
	char want[64];
	snprintf(want, sizeof(want), "pid %d ", (int)client);
	CHECK(rc != 0, "udaxfs mounted a device its old client still maps");
	CHECK(strstr(err, want) != NULL, "the refusal does not name the client (%s): %s", want, err);
	if (rc == 0)
		kill_daemon(&fm, (pid_t)status_field(&fm, "pid"));
	/* ... and wrote nothing: fsck still sees the old daemon's state */

	/* 2. the client lets go of the mapping; its pin stays */
	c = 'u';
	if (write(g_cmd[1], &c, 1) != 1 || read(g_ready[0], &c, 1) != 1)
		t_die("the DMA client did not drop its mapping");
	rc = mount_again(&fm, ignore ? "quarantine=ignore" : NULL, err, sizeof(err));
	if (rc != 0)
		t_die("udaxfs refused the device once nobody mapped it (%d): %s", rc, err);
	long q = status_field(&fm, "quarantined_blocks");
	if (ignore)
		CHECK(q == 0, "quarantine=ignore still quarantines %ld blocks", q);
	else
		CHECK(q >= (long)(A_LEN / 4096), "quarantined %ld blocks, want at least %u", q,
		      A_LEN / 4096);
	if (!ignore)
		CHECK(strstr(err, "quarantined") != NULL, "the mount log says nothing of the "
		      "quarantine: %s", err);
	if (unlink(t_path(&fm, "A")) < 0)
		t_die("unlink A: %s", strerror(errno));
	long pages;
	long bad = fill_and_check(&fm, &pages);
	printf("%s, %s: %ld of %ld pages of B hold foreign bytes (quarantined blocks: %ld)\n",
	       how == UNMOUNTED ? "unmounted under the pin" : "daemon killed",
	       ignore ? "quarantine=ignore" : "quarantine", bad, pages, q);
	kill(client, SIGKILL);
	t_wait(client, 10000);
	close(g_ready[0]);
	close(g_ready[1]);
	close(g_cmd[0]);
	close(g_cmd[1]);

	/* unmount, fsck the image, release the quarantine */
	const char *um[] = { "fusermount3", "-u", fm.mnt, NULL };
	for (int i = 0; i < 100 && run_capture(um, err, sizeof(err)) != 0; i++)
		t_sleep_ms(50);
	t_wait_released(fm.img);
	fm.mounted = false;
	const char *fsck[] = { bin("fsck.udaxfs"), "-n", fm.img, NULL };
	rc = run_capture(fsck, err, sizeof(err));
	CHECK(rc == 0, "fsck.udaxfs -n %s exited %d: %s", fm.img, rc, err);
	release_quarantine(&fm);
	t_umount(&fm);
	return bad;
}

int main(void)
{
	t_require_env();
	long ctl = scenario(KILLED_IGNORE);
	CHECK(ctl > 0, "negative control: with quarantine=ignore no DMA landed in B, so the "
	      "check cannot see the corruption");
	long bad = scenario(KILLED);
	CHECK(bad == 0, "daemon killed: %ld pages of B received the old client's DMA", bad);
	bad = scenario(UNMOUNTED);
	CHECK(bad == 0, "unmounted under the pin: %ld pages of B received the old client's DMA",
	      bad);
	return t_exit("dma_restart");
}
