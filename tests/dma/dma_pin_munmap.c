/* SPDX-License-Identifier: MIT */
/*
 * dma_pin_munmap - regression test for the mapping_mapped() bug from the
 * seed thread: a pin outlives munmap.  The pages are registered as an
 * io_uring fixed buffer, then the mapping goes away (udax_map_unmap: the
 * address range is replaced and the daemon drops the map references, so
 * mapcount is 0) while READ_FIXED keeps landing in the pages through the
 * registered buffer.  A truncate must still wait, and finish only after
 * the unpin.  A break_layouts that shortcuts on "nobody has it mapped"
 * would let it through at once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define LEN (512u << 10)

static const struct fsmount *g_fm;
static int g_pipe[2];

static int truncater(void *arg)
{
	(void)arg;
	int fd = open(t_path(g_fm, "a"), O_RDWR);
	int rc = ftruncate(fd, 4096);
	uint64_t t1 = t_now_ns();
	if (rc < 0)
		t1 = 0;
	if (write(g_pipe[1], &t1, sizeof(t1)) != sizeof(t1))
		return 2;
	return 0;
}

int main(void)
{
	struct fsmount fm;
	struct udax_map *m = NULL;
	struct io_uring ring;
	struct udax_map_opts mo = { .flags = UDAX_MAP_RECALL_FD };

	t_require_env();
	t_uring_init(&ring, 16);
	t_mount(&fm, "pmu", 64u << 20, NULL);
	g_fm = &fm;
	if (pipe(g_pipe) < 0)
		t_die("pipe");
	int fd = open(t_path(&fm, "a"), O_RDWR | O_CREAT, 0644);
	int err = udax_map_open(&m, fd, 0, LEN, PROT_READ | PROT_WRITE, &mo);
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
			 .seed = 2 };

	/* unmap while pinned: the registered buffer still reaches the pages */
	CHECK(udax_map_unmap(m) == 0, "unmap: %s", udax_last_error());
	pid_t pid = t_fork(truncater, NULL);
	uint64_t t_end = t_now_ns() + 300000000ull, before = d.done;
	while (t_now_ns() < t_end) {
		dma_submit(&d);
		dma_reap(&d, 1);
	}
	CHECK(d.done > before && d.errors == 0,
	      "READ_FIXED into the unmapped-but-pinned pages ran: %llu done, %llu errors",
	      (unsigned long long)(d.done - before), (unsigned long long)d.errors);
	CHECK(t_wait(pid, 0) == -ETIMEDOUT,
	      "the truncate did not wait for a pin whose mapping was gone (mapping_mapped bug)");
	dma_drain(&d);
	uint64_t t_unpin = t_now_ns();
	CHECK(udax_unpin(m, &ring) == 0, "unpin: %s", udax_last_error());
	CHECK(t_wait(pid, 10000) == 0, "truncater did not finish after the unpin");
	uint64_t t1 = 0;
	CHECK(read(g_pipe[0], &t1, sizeof(t1)) == sizeof(t1) && t1 != 0, "ftruncate failed");
	CHECK(t1 >= t_unpin, "the truncate returned before the unpin");
	printf("truncate returned %.3f ms after the unpin started\n", (double)(t1 - t_unpin) / 1e6);
	struct stat st;
	fstat(fd, &st);
	CHECK(st.st_size == 4096, "size %lld", (long long)st.st_size);
	udax_map_close(&m);
	close(fd);
	io_uring_queue_exit(&ring);
	return t_exit("dma_pin_munmap");
}
