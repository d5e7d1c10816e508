/* SPDX-License-Identifier: MIT */
/*
 * dma_truncate_wait - a truncate from another process blocks while the
 * file's pages are pinned as io_uring fixed buffers and READ_FIXED "DMA"
 * into them is running; it still blocks after the unpin while the mapping
 * (a reference too) is held; it completes only after the layout is given
 * back.  Then a late access to the old range raises SIGBUS, as after a
 * kernel truncate.  Prints how long the truncate waited and how long it
 * took to finish after the layout was returned.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define LEN (1u << 20)

static const struct fsmount *g_fm;
static int g_pipe[2];

struct tres {
	uint64_t t0, t1;
	int rc, err;
};

static int truncater(void *arg)
{
	(void)arg;
	struct tres r = { 0 };
	int fd = open(t_path(g_fm, "a"), O_RDWR);
	r.t0 = t_now_ns();
	r.rc = ftruncate(fd, 0);
	r.err = errno;
	r.t1 = t_now_ns();
	if (write(g_pipe[1], &r, sizeof(r)) != sizeof(r))
		return 2;
	return 0;
}

static sigjmp_buf g_jb;
static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(g_jb, 1);
}

int main(void)
{
	struct fsmount fm;
	struct udax_map *m = NULL;
	struct io_uring ring;
	struct udax_map_opts mo = { .flags = UDAX_MAP_RECALL_FD };
	int err;

	t_require_env();
	t_uring_init(&ring, 16);
	t_mount(&fm, "trw", 64u << 20, NULL);
	g_fm = &fm;
	if (pipe(g_pipe) < 0)
		t_die("pipe");

	int fd = open(t_path(&fm, "a"), O_RDWR | O_CREAT, 0644);
	err = udax_map_open(&m, fd, 0, LEN, PROT_READ | PROT_WRITE, &mo);
	if (err)
		t_die("udax_map_open: %s", udax_last_error());
	unsigned int bi = UDAX_PIN_ANY;
	err = udax_pin(m, &ring, &bi);
	if (err == -EFAULT || err == -EOPNOTSUPP)
		t_skip("io_uring cannot pin here: %s", udax_last_error());
	if (err)
		t_die("udax_pin: %s", udax_last_error());
	struct dma d = { .ring = &ring, .src_fd = t_pattern_file(65536, 0xD5),
			 .buf = udax_map_addr(m), .len = LEN, .io = 4096, .qd = 4, .bi = bi,
			 .seed = 1 };

	/* DMA runs; then a truncate starts in another process */
	uint64_t t_end = t_now_ns() + 50000000ull;
	while (t_now_ns() < t_end) {
		dma_submit(&d);
		dma_reap(&d, 1);
	}
	pid_t pid = t_fork(truncater, NULL);
	uint64_t t_start = t_now_ns(), t_recall = 0, dma_before = d.done;
	struct pollfd pf = { .fd = udax_recall_fd(m), .events = POLLIN };
	t_end = t_start + 400000000ull;
	while (t_now_ns() < t_end) {
		dma_submit(&d);
		dma_reap(&d, 1);
		if (!t_recall && poll(&pf, 1, 0) == 1)
			t_recall = t_now_ns();
	}
	uint64_t dma_during = d.done - dma_before;
	CHECK(t_wait(pid, 0) == -ETIMEDOUT, "the truncate did not wait for the pin");
	CHECK(t_recall != 0, "no recall was delivered within 400 ms");
	CHECK(dma_during > 0 && d.errors == 0, "DMA ran while truncate waited: %llu done, %llu errors",
	      (unsigned long long)dma_during, (unsigned long long)d.errors);
	printf("recall delivered %.3f ms after the truncate started; %llu READ_FIXED completed "
	       "while it waited\n", t_recall ? (double)(t_recall - t_start) / 1e6 : -1.0,
	       (unsigned long long)dma_during);

	/* stop DMA, reap, unpin: the mapping still holds the pages */
	CHECK(dma_drain(&d) == 0, "drain");
	CHECK(udax_unpin(m, &ring) == 0, "unpin: %s", udax_last_error());
	t_sleep_ms(100);
	CHECK(t_wait(pid, 0) == -ETIMEDOUT, "the truncate did not wait for the mapping");

	/* give the layout back: now the truncate may finish */
	uint64_t t_ret = t_now_ns();
	CHECK(udax_recall_process(m) == 1, "a recall was pending");
	uint64_t t_ret_done = t_now_ns();
	CHECK(t_wait(pid, 10000) == 0, "truncater did not finish");
	struct tres r;
	CHECK(read(g_pipe[0], &r, sizeof(r)) == sizeof(r), "result");
	CHECK(r.rc == 0, "ftruncate: %s", strerror(r.err));
	CHECK(r.t1 >= t_ret, "the truncate returned before the layout was given back");
	printf("truncate waited %.3f ms; returned %.3f ms after the layout return was sent "
	       "(%.3f ms to process the recall)\n",
	       (double)(r.t1 - r.t0) / 1e6, (double)(r.t1 - t_ret_done) / 1e6,
	       (double)(t_ret_done - t_ret) / 1e6);
	struct stat st;
	fstat(fd, &st);
	CHECK(st.st_size == 0, "size after truncate %lld", (long long)st.st_size);
	CHECK(udax_map_recalled(m) == 1, "map marked recalled");

	/* a late access raises SIGBUS */
	struct sigaction sa = { .sa_handler = on_sigbus };
	sigaction(SIGBUS, &sa, NULL);
	volatile int got_bus = 0;
	if (sigsetjmp(g_jb, 1) == 0)
		((volatile char *)udax_map_addr(m))[0] = 1;
	else
		got_bus = 1;
	CHECK(got_bus, "a store to the recalled range did not raise SIGBUS");
	signal(SIGBUS, SIG_DFL);
	CHECK(udax_pin(m, &ring, &bi) == -ESTALE, "pin of a recalled map is refused");

	udax_map_close(&m);
	close(fd);
	io_uring_queue_exit(&ring);
	return t_exit("dma_truncate_wait");
}
