// SPDX-License-Identifier: MIT
/*
 * preload_pin - an unmodified program under libudax-preload.so registers
 * its direct mapping as io_uring fixed buffers; the shim declares the pin
 * to the daemon first (libudax-preload(7), "Pins").
 *
 *   preload_pin MOUNTDIR declare|control
 *
 * declare: every registration path (io_uring_register_buffers, the
 * syscall, a slot update) shows as a pin of the layout in the daemon's
 * status and goes away with the unregistration, or at once when the
 * kernel refuses the registration; a pin outlives munmap
 * (the layout stays, unmapped, until unregistered); a registration while a
 * recall of the layout is under way fails with EBUSY.
 * control (run with UDAX_PRELOAD_TEST_NO_PIN=1): the same registrations
 * show no pin and the one during the recall succeeds: proof that the
 * checks above see a missing declaration.
 *
 * Exit: 0 pass, 1 fail, 77 no io_uring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/status.h"
#include "lib/wire.h"

#include "../harness.h"

#define LEN (1u << 20)

static const char *g_dir;

struct lstate {
	bool present, mapped, recalling;
	int pins;
};

/* The daemon's view of the layouts of inode @ino (the first one found). */
static int layout_state(uint64_t ino, struct lstate *ls)
{
	struct udax_ioc_hello h;
	struct udax_wire *w = NULL;
	struct udax_status *st = NULL;
	char why[256] = "";
	int fd = open(g_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = fd < 0 ? -errno : udax_wire_hello(fd, &h);

	memset(ls, 0, sizeof(*ls));
	if (fd >= 0)
		close(fd);
	if (!ret)
		ret = udax_wire_open(&w, h.sock);
	if (!ret)
		ret = udax_status_get(w, &st, why, sizeof(why));
	udax_wire_put(&w);
	if (ret < 0) {
		fprintf(stderr, "status: %s\n", why);
		return ret;
	}
	for (size_t i = 0; i < st->nlayouts; i++) {
		const struct udax_srec_layout *l = &st->layouts[i];

		if (l->ino != ino)
			continue;
		ls->present = true;
		ls->mapped = l->flags & UDAX_SLAYOUT_MAPPED;
		ls->recalling = l->flags & UDAX_SLAYOUT_RECALLING;
		ls->pins = (int)l->pins;
		break;
	}
	udax_status_free(&st);
	return 0;
}

static char *map_file(int fd)
{
	char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static int sys_register(int ring_fd, unsigned int op, void *arg, unsigned int nr)
{
	long r = syscall(SYS_io_uring_register, ring_fd, op, arg, nr);

	return r < 0 ? -errno : (int)r;
}

int main(int argc, char **argv)
{
	struct io_uring ring;
	struct stat st;
	struct lstate ls;
	char path[4096];

	if (argc != 3 || (strcmp(argv[2], "declare") && strcmp(argv[2], "control"))) {
		fprintf(stderr, "Usage: preload_pin MOUNTDIR declare|control\n");
		return 1;
	}
	bool declare = !strcmp(argv[2], "declare");
	int want = declare ? 1 : 0;

	g_dir = argv[1];
	snprintf(path, sizeof(path), "%s/pinned", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *buf = calloc(1, LEN);
	if (fd < 0 || !buf || pwrite(fd, buf, LEN, 0) != LEN || fstat(fd, &st) < 0) {
		perror(path);
		return 1;
	}
	int r = io_uring_queue_init(8, &ring, 0);

	t_require_uring(r);
	uint64_t ino = (uint64_t)st.st_ino;
	char *p = map_file(fd);
	struct iovec iov = { p, LEN };

	/* 1. liburing's registration */
	r = io_uring_register_buffers(&ring, &iov, 1);
	CHECK(r == 0, "io_uring_register_buffers: %s", strerror(-r));
	CHECK(layout_state(ino, &ls) == 0 && ls.present && ls.pins == want,
	      "after io_uring_register_buffers: present %d pins %d (want %d)", ls.present, ls.pins,
	      want);
	r = io_uring_unregister_buffers(&ring);
	CHECK(r == 0, "io_uring_unregister_buffers: %s", strerror(-r));
	CHECK(layout_state(ino, &ls) == 0 && ls.present && ls.pins == 0,
	      "after the unregistration: pins %d", ls.pins);

	/* 1b. the kernel refuses (the second buffer is not mapped): the pin is released */
	struct iovec two[2] = { { p, LEN }, { (void *)(uintptr_t)4096, 4096 } };
	r = io_uring_register_buffers(&ring, two, 2);
	CHECK(r < 0, "a registration with an unmapped buffer succeeded");
	CHECK(layout_state(ino, &ls) == 0 && ls.present && ls.pins == 0,
	      "after the kernel refused: pins %d", ls.pins);

	/* 2. the system call, through libc's syscall() */
	r = sys_register(ring.ring_fd, IORING_REGISTER_BUFFERS, &iov, 1);
	CHECK(r == 0, "syscall(IORING_REGISTER_BUFFERS): %s", strerror(-r));
	CHECK(layout_state(ino, &ls) == 0 && ls.pins == want, "after the syscall: pins %d", ls.pins);
	r = sys_register(ring.ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	CHECK(r == 0, "syscall(IORING_UNREGISTER_BUFFERS): %s", strerror(-r));
	CHECK(layout_state(ino, &ls) == 0 && ls.pins == 0, "after its unregistration: pins %d",
	      ls.pins);

	/* 3. a slot update of a sparse table, then a second update emptying the slot */
	r = io_uring_register_buffers_sparse(&ring, 4);
	if (r == 0) {
		__u64 tag = 0;
		struct iovec half = { p + LEN / 2, LEN / 2 }, none = { NULL, 0 };

		r = io_uring_register_buffers_update_tag(&ring, 2, &half, &tag, 1);
		CHECK(r == 1, "io_uring_register_buffers_update_tag: %d", r);
		CHECK(layout_state(ino, &ls) == 0 && ls.pins == want, "after the update: pins %d",
		      ls.pins);
		r = io_uring_register_buffers_update_tag(&ring, 2, &none, &tag, 1);
		CHECK(r == 1, "emptying the slot: %d", r);
		CHECK(layout_state(ino, &ls) == 0 && ls.pins == 0, "after emptying it: pins %d",
		      ls.pins);
		io_uring_unregister_buffers(&ring);
	} else {
		printf("sparse tables refused (%s): update path not tested\n", strerror(-r));
	}

	/* 4. a pin outlives munmap */
	r = io_uring_register_buffers(&ring, &iov, 1);
	CHECK(r == 0, "register again: %s", strerror(-r));
	munmap(p, LEN);
	CHECK(layout_state(ino, &ls) == 0, "status");
	if (declare)
		CHECK(ls.present && !ls.mapped && ls.pins == 1,
		      "after munmap of a pinned mapping: present %d mapped %d pins %d", ls.present,
		      ls.mapped, ls.pins);
	r = io_uring_unregister_buffers(&ring);
	CHECK(r == 0, "unregister after munmap: %s", strerror(-r));
	CHECK(layout_state(ino, &ls) == 0 && !ls.present,
	      "the layout is gone once unpinned and unmapped: present %d pins %d", ls.present,
	      ls.pins);

	/* 5. a registration while a recall is under way (the shim holds the
	 *    recall for UDAX_PRELOAD_TEST_RECALL_DELAY_MS) */
	p = map_file(fd);
	iov.iov_base = p;
	pid_t pid = fork();
	if (pid == 0) {
		_exit(ftruncate(open(path, O_RDWR), 0) == 0 ? 0 : 1);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (layout_state(ino, &ls) < 0 || (ls.present && ls.recalling))
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 10)
			break;
		usleep(2000);
	}
	CHECK(ls.recalling, "the recall never showed as under way");
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (declare)
		CHECK(r == -EBUSY, "registration during a recall: %d (want -EBUSY)", r);
	else
		CHECK(r == 0, "control: an undeclared registration during a recall: %d", r);
	if (r == 0)
		io_uring_unregister_buffers(&ring);
	errno = 0;
	long sr = syscall(SYS_io_uring_register, ring.ring_fd, IORING_REGISTER_BUFFERS, &iov, 1);
	if (declare) {
		/* the recall is over by now: the range raises SIGBUS, the kernel refuses it */
		CHECK(sr == -1 && errno != 0, "syscall registration after the recall: %ld", sr);
	}
	if (sr == 0)
		sys_register(ring.ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the truncate failed");
	munmap(p, LEN);
	io_uring_queue_exit(&ring);
	close(fd);
	printf("%s: ", argv[2]);
	return t_exit("preload_pin");
}
