/* SPDX-License-Identifier: MIT */
/*
 * dma_kill - a client killed (SIGKILL) in the middle of DMA: the daemon
 * drops its references once the process has exited (pidfd), a truncate
 * that was waiting for them completes, and after unlink no block leaks
 * (the free block count returns to what it was before the file existed).
 * And not before: a client that closes its connection but lives on keeps
 * its references (its io_uring could still be using the pages) until it
 * exits.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "harness.h"

#define LEN (4u << 20)

static const struct fsmount *g_fm;
static int g_ready[2];

static int dma_client(void *arg)
{
	(void)arg;
	struct io_uring ring;
	struct udax_map *m = NULL;
	/* never answers recalls: only its death releases the pages */
	struct udax_map_opts mo = { .flags = UDAX_MAP_RECALL_FD };
	if (io_uring_queue_init(16, &ring, 0) < 0)
		return T_SKIP;
	int fd = open(t_path(g_fm, "victim"), O_RDWR);
	if (udax_map_open(&m, fd, 0, LEN, PROT_READ | PROT_WRITE, &mo)) {
		fprintf(stderr, "client: %s\n", udax_last_error());
		return 3;
	}
	memset(udax_map_addr(m), 0x11, LEN);
	unsigned int bi = UDAX_PIN_ANY;
	if (udax_pin(m, &ring, &bi)) {
		fprintf(stderr, "client: %s\n", udax_last_error());
		return 4;
	}
	struct dma d = { .ring = &ring, .src_fd = t_pattern_file(65536, 0xD5),
			 .buf = udax_map_addr(m), .len = LEN, .io = 65536, .qd = 8, .bi = bi,
			 .seed = 3 };
	char c = 'r';
	if (write(g_ready[1], &c, 1) != 1)
		return 5;
	for (;;) {
		dma_submit(&d);
		dma_reap(&d, 1);
	}
}

static int g_go[2];

/* Takes a layout over the raw protocol, hangs up, and lives on until told. */
static int hangup_client(void *arg)
{
	(void)arg;
	struct udax_ioc_hello h;
	int fd = open(t_path(g_fm, "victim2"), O_RDWR);
	if (fd < 0 || proto_hello(fd, &h))
		return 3;
	struct udax_wire *s = NULL;
	struct udax_map_req rq = { .off = 0, .len = 65536, .prot = UDAX_PROT_READ | UDAX_PROT_WRITE };
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	if (proto_connect(h.sock, &s) || proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), NULL, 0, NULL))
		return 4;
	proto_close(&s);
	char c = 'r';
	if (write(g_ready[1], &c, 1) != 1 || read(g_go[0], &c, 1) != 1)
		return 5;
	return 0;
}

static int truncater2(void *arg)
{
	(void)arg;
	int fd = open(t_path(g_fm, "victim2"), O_RDWR);
	return ftruncate(fd, 0) == 0 ? 0 : 1;
}

static int truncater(void *arg)
{
	(void)arg;
	int fd = open(t_path(g_fm, "victim"), O_RDWR);
	return ftruncate(fd, 0) == 0 ? 0 : 1;
}

int main(void)
{
	struct fsmount fm;
	struct io_uring probe;

	t_require_env();
	t_uring_init(&probe, 4);
	io_uring_queue_exit(&probe);
	t_mount(&fm, "kill", 64u << 20, NULL);
	g_fm = &fm;
	if (pipe(g_ready) < 0)
		t_die("pipe");

	/* baseline with the (empty) file already there: its directory entry
	 * may take a directory block that outlives the unlink */
	int fd = open(t_path(&fm, "victim"), O_RDWR | O_CREAT, 0644);
	close(fd);
	uint64_t free0 = t_free_blocks(&fm);
	pid_t client = t_fork(dma_client, NULL);
	char c;
	if (read(g_ready[0], &c, 1) != 1) {
		int rc = t_wait(client, 5000);
		if (rc == T_SKIP)
			t_skip("io_uring refused in the client");
		t_die("the DMA client failed to start (status %d)", rc);
	}
	uint64_t free1 = t_free_blocks(&fm);
	CHECK(free1 + LEN / 4096 <= free0 + 16, "the mapping allocated: free %llu -> %llu",
	      (unsigned long long)free0, (unsigned long long)free1);
	t_sleep_ms(100);

	/* a truncate waits for the live client... */
	pid_t tr = t_fork(truncater, NULL);
	t_sleep_ms(200);
	CHECK(t_wait(tr, 0) == -ETIMEDOUT, "the truncate did not wait for the live client");
	/* ...and completes once it is killed mid-DMA */
	uint64_t t_kill = t_now_ns();
	kill(client, SIGKILL);
	int rc = t_wait(client, 10000);
	CHECK(rc == 128 + SIGKILL, "client status %d", rc);
	rc = t_wait(tr, 10000);
	CHECK(rc == 0, "truncate after the client died: status %d", rc);
	printf("truncate completed %.3f ms after SIGKILL of the DMA client\n",
	       (double)(t_now_ns() - t_kill) / 1e6);

	CHECK(unlink(t_path(&fm, "victim")) == 0, "unlink: %s", strerror(errno));
	uint64_t free2 = 0;
	for (int i = 0; i < 500; i++) {
		free2 = t_free_blocks(&fm);
		if (free2 == free0)
			break;
		t_sleep_ms(10);
	}
	CHECK(free2 == free0, "blocks leaked: free %llu before, %llu after",
	      (unsigned long long)free0, (unsigned long long)free2);

	/* not before exit: a hung-up but living client keeps its references */
	fd = open(t_path(&fm, "victim2"), O_RDWR | O_CREAT, 0644);
	close(fd);
	if (pipe(g_go) < 0)
		t_die("pipe");
	pid_t hup = t_fork(hangup_client, NULL);
	if (read(g_ready[0], &c, 1) != 1)
		t_die("the hang-up client failed (status %d)", t_wait(hup, 5000));
	tr = t_fork(truncater2, NULL);
	t_sleep_ms(300);
	CHECK(t_wait(tr, 0) == -ETIMEDOUT,
	      "references were dropped at hang-up, before the client exited");
	uint64_t t_exit_req = t_now_ns();
	CHECK(write(g_go[1], &c, 1) == 1, "go");
	CHECK(t_wait(hup, 5000) == 0, "hang-up client status");
	CHECK(t_wait(tr, 10000) == 0, "truncate after the hung-up client exited");
	printf("truncate completed %.3f ms after the hung-up client was told to exit\n",
	       (double)(t_now_ns() - t_exit_req) / 1e6);
	return t_exit("dma_kill");
}
