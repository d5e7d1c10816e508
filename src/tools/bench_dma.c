// SPDX-License-Identifier: MIT
/*
 * bench_dma.c - the libudax side of udaxctl bench truncate-dma: the DMA
 * client, the corruption checker, and the daemon's break_layouts stats.
 *
 * The client is a separate process.  It maps [0, pinned) of the file with
 * libudax, registers the mapping as io_uring fixed buffer 0 (udax_pin) and
 * keeps Q READ_FIXED (file -> pages: the "device" writes the pages) or
 * WRITE_FIXED (pages -> file) of B bytes in flight against a source file on
 * tmpfs.  The recall descriptor is polled from the same ring (a POLL_ADD
 * SQE), so a recall is seen as soon as the kernel completes that poll.  On
 * a recall it stops submitting, reaps every I/O in flight, unpins and gives
 * the layout back (udax_recall_process), then waits for the truncator's
 * go-ahead and maps and pins again.  All timestamps go to shared memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "udaxctl.h"

#define TAG_RECALL	(~0ull)
#define SEC		1000000000ull

bool bdma_available(void)
{
	return true;
}

struct client {
	struct bench_shm *shm;
	struct bench_client *me;
	const struct bench_case *bc;
	struct io_uring ring;
	struct udax_map *map;
	char *addr;
	int fd, src, rfd;
	uint64_t inflight, next, src_size;
	bool pinned;
};

static int cfail(struct client *c, int err, const char *what)
{
	snprintf(c->me->msg, sizeof(c->me->msg), "client %d: %s: %s%s%s", (int)getpid(), what,
		 strerror(err < 0 ? -err : err), udax_last_error()[0] ? ": " : "",
		 udax_last_error());
	c->me->err = err;
	c->me->state = BC_FAILED;
	bench_ring(c->shm);
	return 1;
}

/* The recall handler: the DMA loop has already reaped everything in flight. */
static void on_recall(struct udax_map *map, void *arg)
{
	struct client *c = arg;

	if (c->pinned) {
		udax_unpin(map, &c->ring);
		c->pinned = false;
		c->me->t_unpinned = ctl_now_ns();
	}
}

static int submit_one(struct client *c)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	uint64_t bsz = c->bc->io_size, span = c->bc->pinned / bsz * bsz;
	uint64_t boff = (c->next * bsz) % span;
	uint64_t soff = (c->next * bsz) % c->src_size;

	if (!sqe)
		return -EBUSY;
	if (c->bc->dma_write)
		io_uring_prep_write_fixed(sqe, c->src, c->addr + boff, (unsigned int)bsz, soff, 0);
	else
		io_uring_prep_read_fixed(sqe, c->src, c->addr + boff, (unsigned int)bsz, soff, 0);
	io_uring_sqe_set_data64(sqe, c->next);
	c->next++;
	c->inflight++;
	return 0;
}

static int arm_recall_poll(struct client *c)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, c->rfd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_RECALL);
	return 0;
}

/* Map and pin [pin_off, pin_off + pinned); retry while a truncate is still recalling. */
static int map_and_pin(struct client *c)
{
	struct udax_map_opts mo = { .recall = on_recall, .recall_arg = c,
				    .flags = UDAX_MAP_RECALL_FD };
	int ret;

	for (int tries = 0;; tries++) {
		ret = udax_map_open(&c->map, c->fd, (off_t)c->bc->pin_off, c->bc->pinned,
				    PROT_READ | PROT_WRITE, &mo);
		if (ret == 0) {
			unsigned int idx = UDAX_PIN_ANY;

			c->addr = udax_map_addr(c->map);
			ret = udax_pin(c->map, &c->ring, &idx);
			if (ret == 0) {
				c->pinned = true;
				break;
			}
			udax_map_close(&c->map);
		}
		if (ret != -EBUSY || tries > 20000 || c->shm->stop)
			return ret;
		usleep(100);
	}
	c->rfd = udax_recall_fd(c->map);
	return c->rfd < 0 ? c->rfd : 0;
}

/*
 * Stream until a recall (or a forced stop) arrives, then drain, unpin and
 * give the layout back.  Return 0, or -errno.
 */
static int stream(struct client *c)
{
	struct bench_client *me = c->me;
	bool stopping = false, poll_armed = true;
	int ret;

	me->epoch_completions = 0;
	ret = arm_recall_poll(c);
	for (uint64_t i = 0; ret == 0 && i < c->bc->qd; i++)
		ret = submit_one(c);
	if (ret == 0)
		ret = io_uring_submit(&c->ring) < 0 ? -EIO : 0;
	if (ret < 0)
		return ret;
	me->epoch++;
	__atomic_store_n(&me->state, BC_STREAMING, __ATOMIC_SEQ_CST);
	bench_ring(c->shm);

	while (c->inflight || poll_armed) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 2000000 };

		ret = io_uring_wait_cqe_timeout(&c->ring, &cqe, &ts);
		if (ret == -ETIME || ret == -EINTR) {
			if ((c->shm->stop || me->resume == UINT32_MAX) && !stopping) {
				stopping = true;	/* the bench is over */
				me->t_recall = ctl_now_ns();
			}
			if (stopping && poll_armed) {
				/* cancel the recall poll so the loop can end */
				struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

				if (sqe) {
					io_uring_prep_poll_remove(sqe, TAG_RECALL);
					io_uring_sqe_set_data64(sqe, TAG_RECALL - 1);
					io_uring_submit(&c->ring);
				}
			}
			continue;
		}
		if (ret < 0)
			return ret;
		if (!stopping && me->kick > me->recalls) {
			stopping = true;	/* the truncate sent no recall */
			me->t_recall = ctl_now_ns();
		}
		uint64_t tag = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&c->ring, cqe);
		if (tag == TAG_RECALL - 1)
			continue;
		if (tag == TAG_RECALL) {
			poll_armed = false;
			if (!stopping) {
				stopping = true;
				me->t_recall = ctl_now_ns();
			}
			continue;
		}
		c->inflight--;
		if (res < 0 && res != -ECANCELED)
			return res;
		me->completions++;
		me->epoch_completions++;
		if (me->epoch_completions == c->bc->qd)
			bench_ring(c->shm);
		if (!stopping) {
			ret = submit_one(c);
			if (ret == 0)
				ret = io_uring_submit(&c->ring) < 0 ? -EIO : 0;
			if (ret < 0)
				return ret;
		}
	}
	/* everything reaped: the pages are idle as far as this process goes */
	me->t_drained = ctl_now_ns();
	me->t_unpinned = 0;
	ret = udax_recall_process(c->map);
	if (ret < 0)
		return ret;
	/* the layout is back (UDAX_REQ_RETURN has no reply): the daemon's final
	 * put - the map references - follows this moment */
	me->t_returned = ctl_now_ns();
	if (c->pinned) {
		/* no recall was pending (forced stop): unpin by hand */
		on_recall(c->map, c);
	}
	if (me->t_unpinned > me->t_returned)
		me->t_returned = me->t_unpinned;
	udax_map_close(&c->map);
	return 0;
}

int bdma_client_main(struct bench_shm *shm, unsigned int idx, const struct bench_case *bc,
		     const char *path, const char *src_path)
{
	struct client c = { .shm = shm, .me = &shm->c[idx], .bc = bc, .fd = -1, .src = -1,
			    .rfd = -1 };
	struct stat st;
	int ret;

	c.fd = open(path, O_RDWR);
	if (c.fd < 0)
		return cfail(&c, -errno, path);
	c.src = open(src_path, bc->dma_write ? O_RDWR : O_RDONLY);
	if (c.src < 0 || fstat(c.src, &st) < 0)
		return cfail(&c, -errno, src_path);
	c.src_size = (uint64_t)st.st_size / bc->io_size * bc->io_size;
	if (!c.src_size)
		return cfail(&c, -EINVAL, "source file too small");
	ret = io_uring_queue_init((unsigned int)bc->qd + 4, &c.ring, 0);
	if (ret < 0)
		return cfail(&c, ret, "io_uring_queue_init");

	for (uint32_t round = 0; !shm->stop; round++) {
		/* after recall N, wait until the truncator has refilled the file */
		while (c.me->resume < round && !shm->stop) {
			uint32_t b = shm->bell;

			if (c.me->resume >= round)
				break;
			fx_wait(&shm->bell, b, 100000000ull);
		}
		if (shm->stop)
			break;
		ret = map_and_pin(&c);
		if (ret < 0)
			return cfail(&c, ret, "map and pin");
		ret = stream(&c);
		if (ret < 0)
			return cfail(&c, ret, "DMA stream");
		/* state first: once recalls moves, the truncator may go on and must
		 * not mistake this client for one still streaming */
		__atomic_store_n(&c.me->state, BC_RETURNED, __ATOMIC_SEQ_CST);
		__atomic_store_n(&c.me->recalls, round + 1, __ATOMIC_SEQ_CST);
		bench_ring(shm);
	}
	io_uring_queue_exit(&c.ring);
	c.me->state = BC_EXITED;
	bench_ring(shm);
	return 0;
}

/* ---- the checker ---- */

static bool chk_new_cmd(void *arg)
{
	struct bench_shm *shm = arg;

	return shm->chk_seq != shm->chk_ack;
}

static uint64_t pattern(uint64_t seq, uint64_t page, uint64_t word)
{
	return 0x5afec0de00000000ull ^ (seq << 40) ^ (page << 9) ^ word;
}

int bdma_checker_main(struct bench_shm *shm, const char *canary_path)
{
	struct udax_map *map = NULL;
	int fd = open(canary_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint64_t len = 0, seq = 0;
	int ret = 0;

	if (fd < 0) {
		shm->chk_err = errno;
		snprintf(shm->chk_msg, sizeof(shm->chk_msg), "checker: %s: %s", canary_path,
			 strerror(errno));
		bench_ring(shm);
		return 1;
	}
	for (;;) {
		if (bench_wait(shm, chk_new_cmd, shm, 3600 * SEC) < 0)
			break;
		uint32_t s = shm->chk_seq, cmd = shm->chk_cmd;

		if (cmd == CHK_QUIT)
			break;
		if (cmd == CHK_ARM) {
			len = (shm->chk_bytes + 4095) / 4096 * 4096;
			seq++;
			ret = udax_map_open(&map, fd, 0, len, PROT_READ | PROT_WRITE, NULL);
			if (ret < 0) {
				snprintf(shm->chk_msg, sizeof(shm->chk_msg),
					 "checker: mapping the canary: %s: %s", strerror(-ret),
					 udax_last_error());
				break;
			}
			uint64_t *w = udax_map_addr(map);
			for (uint64_t p = 0; p < len / 4096; p++)
				for (uint64_t k = 0; k < 512; k++)
					w[p * 512 + k] = pattern(seq, p, k);
			udax_persist(map, w, len);
			shm->t_chk_armed = ctl_now_ns();
		} else if (cmd == CHK_VERIFY && map) {
			const uint64_t *w = udax_map_addr(map);
			uint64_t bad = 0;

			for (uint64_t p = 0; p < len / 4096; p++)
				for (uint64_t k = 0; k < 512; k++)
					if (w[p * 512 + k] != pattern(seq, p, k)) {
						bad++;
						break;
					}
			shm->chk_corrupt = bad;
			shm->chk_pages = len / 4096;
			udax_map_close(&map);
			/* free the canary's blocks for the next round */
			if (ftruncate(fd, 0) < 0) {
				ret = -errno;
				snprintf(shm->chk_msg, sizeof(shm->chk_msg),
					 "checker: freeing the canary: %s", strerror(errno));
				break;
			}
		}
		__atomic_store_n(&shm->chk_ack, s, __ATOMIC_SEQ_CST);
		bench_ring(shm);
	}
	if (ret < 0) {
		shm->chk_err = -ret;
		bench_ring(shm);
	}
	udax_map_close(&map);
	close(fd);
	unlink(canary_path);
	return ret < 0;
}

/* ---- daemon-side timestamps ---- */

int bdma_break_stats(int fd, struct bench_break *out, unsigned int max)
{
	return udaxctl_fetch_breaks(fd, out, max);
}
