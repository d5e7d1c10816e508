/* SPDX-License-Identifier: MIT */
/*
 * dma_hostile - what connections to the layout socket may cost.  Any local
 * user can connect (the socket is abstract); only a ticket leads anywhere.
 *
 * As user nobody:
 *  - 21000 connect/close cycles and 5 rounds of 2000 connections held at
 *    once: the daemon's descriptor count (/proc/DPID/fd) stays within its
 *    per-uid connection limit (128) plus a small slack, and falls back once
 *    they are closed.  (Bug fixed: each connection took a pidfd freed only
 *    when the connecting process exited; 21,000 cycles took the daemon to
 *    19,999 of its 20,000 descriptors.)
 *  - four connections each sending the header of a 64 MiB message and as
 *    much of its body as the socket takes: the daemon's VmRSS grows by less
 *    than 16 MiB.  (Bug fixed: 3 MB -> 265 MB.)
 *  - a connection that never presents a ticket is closed after 10 s.
 * Then a root client that pins a file and is killed is reaped: a truncate
 * of its file returns (bug fixed: it stayed blocked until unmount, since
 * the daemon could not open the client's pidfd any more).
 *
 * Positive control of the measure: 100 connections held by nobody (under
 * the limit) raise the daemon's descriptor count by at least 100.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "harness.h"
#include "lib/status.h"

#define NOBODY 65534
#define PER_UID_LIMIT 128
#define FD_SLACK 24
#define RSS_BOUND_KB (16 * 1024)

static const struct fsmount *g_fm;
static char g_sock[UDAX_SOCK_NAME_MAX];
static int g_pipe[2];

static int count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *de; (de = readdir(d));)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void become_nobody(void)
{
	struct rlimit rl;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		_exit(T_SKIP);
}

static void signal_parent(char c)
{
	if (write(g_pipe[1], &c, 1) != 1)
		_exit(9);
}

/* nobody: hold 100 connections until told (the positive control) */
static int hold100(void *arg)
{
	(void)arg;
	int s[100];
	become_nobody();
	for (int i = 0; i < 100; i++)
		if ((s[i] = proto_raw_connect(g_sock)) < 0)
			return 3;
	signal_parent('h');
	pause();
	return 0;
}

/* nobody: many connections, opened and closed */
static int flood(void *arg)
{
	(void)arg;
	static int s[2000];
	become_nobody();
	for (int i = 0; i < 21000; i++) {
		int c = proto_raw_connect(g_sock);
		if (c >= 0)
			close(c);
	}
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 2000; i++)
			s[i] = proto_raw_connect(g_sock);
		for (int i = 0; i < 2000; i++)
			if (s[i] >= 0)
				close(s[i]);
	}
	return 0;
}

/* nobody: four unfinished 64 MiB messages, held open until told */
static int huge(void *arg)
{
	(void)arg;
	int s[4];
	char *buf = calloc(1, 1 << 20);
	become_nobody();
	if (!buf)
		return 3;
	for (int i = 0; i < 4; i++) {
		s[i] = proto_raw_connect(g_sock);
		if (s[i] < 0)
			return 4;
		fcntl(s[i], F_SETFL, O_NONBLOCK);
		struct udax_msg h = { .magic = UDAX_MSG_MAGIC, .type = UDAX_REQ_MAP,
				      .len = 64u << 20, .seq = 1 };
		send(s[i], &h, sizeof(h), MSG_NOSIGNAL);
		uint64_t end = t_now_ns() + 2000000000ull;
		size_t sent = 0;
		while (sent < (64u << 20) - 1 && t_now_ns() < end) {
			ssize_t n = send(s[i], buf, 1 << 20, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (errno == EAGAIN)
				t_sleep_ms(5);
			else
				break;
		}
	}
	signal_parent('m');
	pause();
	return 0;
}

/* nobody: one connection that never presents a ticket; exits 0 when the daemon hangs up */
static int idle_conn(void *arg)
{
	(void)arg;
	char c;
	become_nobody();
	int s = proto_raw_connect(g_sock);
	if (s < 0)
		return 3;
	struct timeval tv = { 30, 0 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = recv(s, &c, 1, 0);
	return n == 0 ? 0 : 2;
}

/* root: map and pin the victim file, stream DMA into it, until killed */
static int pinner(void *arg)
{
	(void)arg;
	struct io_uring ring;
	struct udax_map *m = NULL;
	struct udax_map_opts mo = { .flags = UDAX_MAP_RECALL_FD };
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (io_uring_queue_init(8, &ring, 0) < 0)
		return T_SKIP;
	int fd = open(t_path(g_fm, "victim"), O_RDWR);
	if (fd < 0 || udax_map_open(&m, fd, 0, 1u << 20, PROT_READ | PROT_WRITE, &mo)) {
		fprintf(stderr, "pinner: %s\n", udax_last_error());
		return 3;
	}
	unsigned int bi = UDAX_PIN_ANY;
	if (udax_pin(m, &ring, &bi)) {
		fprintf(stderr, "pinner: %s\n", udax_last_error());
		return 4;
	}
	struct dma d = { .ring = &ring, .src_fd = t_pattern_file(65536, 0x5A),
			 .buf = udax_map_addr(m), .len = 1u << 20, .io = 65536, .qd = 4, .bi = bi,
			 .seed = 1 };
	signal_parent('p');
	for (;;) {
		dma_submit(&d);
		dma_reap(&d, 1);
	}
}

static int truncator(void *arg)
{
	(void)arg;
	return truncate(t_path(g_fm, "victim"), 0) == 0 ? 0 : 3;
}

static pid_t daemon_pid(const struct fsmount *fm)
{
	struct udax_ioc_hello h;
	struct udax_status *st = NULL;
	char why[256] = "";
	long v = -1;
	int f = open(t_path(fm, "probe"), O_RDWR | O_CREAT, 0600);
	if (f < 0 || proto_hello(f, &h))
		t_die("UDAX_IOC_HELLO failed");
	snprintf(g_sock, sizeof(g_sock), "%s", h.sock);
	struct udax_wire *w = NULL;
	int s = proto_connect(h.sock, &w);
	if (s == 0 && udax_status_get(w, &st, why, sizeof(why)) == 0)
		v = st->head.pid;
	else
		fprintf(stderr, "status: %s\n", why);
	udax_status_free(&st);
	proto_close(&w);
	close(f);
	if (v <= 0)
		t_die("cannot read the daemon's pid from its status");
	return (pid_t)v;
}

static char wait_child(void)
{
	char c = 0;
	if (read(g_pipe[0], &c, 1) != 1)
		return 0;
	return c;
}

/* Wait (up to 3 s) until the daemon's descriptors are at most @max; return the count. */
static int settle_fds(pid_t dpid, int max)
{
	int n = count_fds(dpid);
	for (int i = 0; i < 300 && n > max; i++) {
		t_sleep_ms(10);
		n = count_fds(dpid);
	}
	return n;
}

int main(void)
{
	struct fsmount fm;

	t_require_env();
	if (geteuid() != 0)
		t_skip("needs root to act as user nobody");
	t_mount(&fm, "hostile", 64u << 20, NULL);
	g_fm = &fm;
	if (pipe2(g_pipe, O_CLOEXEC) < 0)
		t_die("pipe: %s", strerror(errno));
	int fd = open(t_path(&fm, "victim"), O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, 1u << 20) < 0)
		t_die("creating the victim: %s", strerror(errno));
	close(fd);
	pid_t dpid = daemon_pid(&fm);
	int base = settle_fds(dpid, 0);
	long rss0 = rss_kb(dpid);
	printf("daemon pid %d: %d descriptors, VmRSS %ld kB at rest\n", (int)dpid, base, rss0);

	/* positive control: the count sees connections */
	pid_t h = t_fork(hold100, NULL);
	if (wait_child() != 'h') {
		if (t_wait(h, 5000) == T_SKIP)
			t_skip("cannot become user nobody");
		t_die("the holding client failed");
	}
	int held = count_fds(dpid);
	for (int i = 0; i < 200 && held < base + 100; i++) {
		t_sleep_ms(10);
		held = count_fds(dpid);
	}
	printf("control: 100 connections held by nobody: %d descriptors\n", held);
	CHECK(held >= base + 100, "100 held connections show as %d descriptors (base %d): the "
	      "count cannot see connections", held, base);
	kill(h, SIGKILL);
	t_wait(h, 5000);

	/* the flood: bounded while it runs, back to rest after */
	pid_t f = t_fork(flood, NULL);
	int peak = 0;
	uint64_t deadline = t_now_ns() + 180000000000ull;
	for (;;) {
		int n = count_fds(dpid);
		if (n > peak)
			peak = n;
		int st = t_wait(f, 1);
		if (st != -ETIMEDOUT) {
			CHECK(st == 0, "the flooding client exited %d", st);
			break;
		}
		if (t_now_ns() > deadline) {
			/* the daemon stopped accepting (out of descriptors?): connects block */
			kill(f, SIGKILL);
			t_wait(f, 5000);
			CHECK(0, "the flood did not finish in 180 s (peak %d descriptors)", peak);
			break;
		}
	}
	int after = settle_fds(dpid, base + 4);
	printf("flood (21000 cycles, 5 x 2000 held) as nobody: peak %d descriptors, %d after "
	       "(bound %d)\n", peak, after, base + PER_UID_LIMIT + FD_SLACK);
	CHECK(peak <= base + PER_UID_LIMIT + FD_SLACK, "the daemon's descriptors peaked at %d "
	      "(base %d)", peak, base);
	CHECK(after <= base + 4, "%d descriptors after the flood (base %d)", after, base);

	/* four unfinished huge messages */
	pid_t m = t_fork(huge, NULL);
	if (wait_child() != 'm')
		t_die("the huge-message client failed");
	t_sleep_ms(200);
	long rss1 = rss_kb(dpid);
	printf("four unfinished 64 MiB messages: VmRSS %ld kB -> %ld kB (bound +%d kB)\n", rss0,
	       rss1, RSS_BOUND_KB);
	CHECK(rss1 - rss0 < RSS_BOUND_KB, "VmRSS grew by %ld kB", rss1 - rss0);
	kill(m, SIGKILL);
	t_wait(m, 5000);

	/* a connection that never presents a ticket is closed */
	pid_t ic = t_fork(idle_conn, NULL);
	int st = t_wait(ic, 40000);
	CHECK(st == 0, "a ticketless idle connection was not closed (client status %d)", st);

	/* a pinner that dies is reaped: the truncate returns */
	pid_t p = t_fork(pinner, NULL);
	if (wait_child() != 'p') {
		st = t_wait(p, 5000);
		if (st == T_SKIP)
			t_skip("io_uring is not available");
		t_die("the pinner failed (status %d)", st);
	}
	pid_t tr = t_fork(truncator, NULL);
	t_sleep_ms(200);
	CHECK(t_wait(tr, 1) == -ETIMEDOUT, "the truncate did not wait for the pin");
	kill(p, SIGKILL);
	t_wait(p, 5000);
	st = t_wait(tr, 30000);
	CHECK(st == 0, "the truncate of a killed pinner's file did not return (status %d)", st);
	if (st == -ETIMEDOUT)
		kill(tr, SIGKILL);
	t_umount(&fm);
	return t_exit("dma_hostile");
}
