/* SPDX-License-Identifier: MIT */
/*
 * dma_ticket_race - concurrent layout requests on one file: 8 processes
 * each open and close a direct mapping of the same file 300 times.  Every
 * udax_map_open() must succeed: a ticket issued by UDAX_IOC_HELLO must
 * still be there when its MAP arrives, however many other processes ask
 * for tickets at the same time.  (Bug fixed: about 8% of the requests
 * failed with EACCES "unknown or expired ticket".)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <udax/udax.h>

#include "harness.h"

#define NPROC 8
#define ROUNDS 300
#define LEN (64u << 10)

static const struct fsmount *g_fm;

static int mapper(void *arg)
{
	(void)arg;
	int fd = open(t_path(g_fm, "shared"), O_RDWR);
	int fails = 0;
	if (fd < 0)
		return 3;
	for (int i = 0; i < ROUNDS; i++) {
		struct udax_map *m = NULL;
		int err = udax_map_open(&m, fd, 0, LEN, PROT_READ | PROT_WRITE, NULL);
		if (err) {
			if (fails++ < 3)
				fprintf(stderr, "pid %d round %d: %s\n", (int)getpid(), i,
					udax_last_error());
			continue;
		}
		udax_map_close(&m);
	}
	close(fd);
	if (fails)
		fprintf(stderr, "pid %d: %d of %d map requests failed\n", (int)getpid(), fails,
			ROUNDS);
	return fails ? 2 : 0;
}

int main(void)
{
	struct fsmount fm;

	t_require_env();
	t_mount(&fm, "ticketrace", 64u << 20, NULL);
	g_fm = &fm;
	int fd = open(t_path(&fm, "shared"), O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, LEN) < 0)
		t_die("creating the file: %s", strerror(errno));
	close(fd);

	pid_t pids[NPROC];
	for (int i = 0; i < NPROC; i++)
		pids[i] = t_fork(mapper, NULL);
	int bad = 0;
	for (int i = 0; i < NPROC; i++) {
		int st = t_wait(pids[i], 300000);
		if (st == T_SKIP)
			t_skip("direct access unavailable");
		if (st != 0)
			bad++;
	}
	CHECK(bad == 0, "%d of %d processes saw a failed map request", bad, NPROC);
	t_umount(&fm);
	return t_exit("dma_ticket_race");
}
