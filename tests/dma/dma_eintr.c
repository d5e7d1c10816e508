/* SPDX-License-Identifier: MIT */
/*
 * dma_eintr - the policies of a truncate blocked on a pin:
 *  - default: it waits interruptibly; a signal (SIGALRM with a handler
 *    installed without SA_RESTART) makes ftruncate fail with EINTR and
 *    leaves the file unchanged (size and data);
 *  - mount option recall_timeout=MS: it fails with EBUSY after about MS
 *    milliseconds, file unchanged.
 * Under neither policy is a block freed under the live pin: the holder's
 * data is intact afterwards.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define LEN (1u << 20)

static const struct fsmount *g_fm;

static void on_alarm(int sig)
{
	(void)sig;
}

struct tr_arg {
	bool alarm;
	int want;		/* expected errno */
	unsigned int min_ms;	/* it must have waited at least this long */
};

static int truncater(void *arg)
{
	const struct tr_arg *a = arg;
	int fd = open(t_path(g_fm, "a"), O_RDWR);
	if (a->alarm) {
		struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = { .it_value = { 0, 300000 } };
		setitimer(ITIMER_REAL, &it, NULL);
	}
	uint64_t t0 = t_now_ns();
	int rc = ftruncate(fd, 0);
	int e = errno;
	double ms = (double)(t_now_ns() - t0) / 1e6;
	printf("  ftruncate -> %d (%s) after %.1f ms\n", rc, rc ? strerror(e) : "ok", ms);
	if (rc == 0 || e != a->want)
		return 1;
	if (ms < a->min_ms)
		return 2;
	struct stat st;
	fstat(fd, &st);
	if (st.st_size != LEN)
		return 3;
	return 0;
}

static void one_policy(struct fsmount *fm, const char *name, const char *opts,
		       struct tr_arg *ta)
{
	struct udax_map *m = NULL;
	struct io_uring ring;
	struct udax_map_opts mo = { .flags = UDAX_MAP_RECALL_FD };	/* never answers */

	t_uring_init(&ring, 8);
	t_mount(fm, name, 64u << 20, opts);
	g_fm = fm;
	int fd = open(t_path(fm, "a"), O_RDWR | O_CREAT, 0644);
	if (udax_map_open(&m, fd, 0, LEN, PROT_READ | PROT_WRITE, &mo))
		t_die("udax_map_open: %s", udax_last_error());
	unsigned char *p = udax_map_addr(m);
	for (size_t i = 0; i < LEN; i++)
		p[i] = (unsigned char)(i * 7 + 3);
	udax_persist(m, p, LEN);
	unsigned int bi = UDAX_PIN_ANY;
	int err = udax_pin(m, &ring, &bi);
	if (err == -EFAULT || err == -EOPNOTSUPP)
		t_skip("io_uring cannot pin here: %s", udax_last_error());
	if (err)
		t_die("udax_pin: %s", udax_last_error());

	printf("%s (-o %s):\n", name, opts ? opts : "defaults");
	int rc = t_wait(t_fork(truncater, ta), 20000);
	CHECK(rc == 0, "%s: truncater status %d (want %s, file unchanged)", name, rc,
	      strerror(ta->want));

	/* the holder's pages were never freed: its data is intact, through the
	 * mapping and through the mount */
	size_t bad = 0;
	for (size_t i = 0; i < LEN; i++)
		bad += p[i] != (unsigned char)(i * 7 + 3);
	CHECK(bad == 0, "%s: %zu bytes of the pinned range changed", name, bad);
	unsigned char *buf = malloc(LEN);
	CHECK(pread(fd, buf, LEN, 0) == LEN, "pread");
	bad = 0;
	for (size_t i = 0; i < LEN; i++)
		bad += buf[i] != (unsigned char)(i * 7 + 3);
	CHECK(bad == 0, "%s: %zu bytes read through the mount changed", name, bad);
	free(buf);

	/* a later truncate succeeds once the holder lets go */
	udax_unpin(m, &ring);
	udax_map_close(&m);
	CHECK(ftruncate(fd, 0) == 0, "%s: truncate after release: %s", name, strerror(errno));
	close(fd);
	io_uring_queue_exit(&ring);
	t_umount(fm);
}

int main(void)
{
	struct fsmount fm;
	struct tr_arg intr = { .alarm = true, .want = EINTR, .min_ms = 250 };
	struct tr_arg tmo = { .alarm = false, .want = EBUSY, .min_ms = 250 };

	t_require_env();
	one_policy(&fm, "eintr", NULL, &intr);
	one_policy(&fm, "timeout", "recall_timeout=300", &tmo);
	return t_exit("dma_eintr");
}
