// SPDX-License-Identifier: MIT
/*
 * bench_truncate_dma.c - one truncate-under-DMA case of udaxctl bench
 * truncate-dma: start the clients and the checker (bench_dma.c), then per
 * iteration wait until every client streams, time the shrinking
 * ftruncate, let the checker grab the freed blocks, wait until every
 * client has given its layout back (or stop it, under a policy that sends
 * no recall), verify the canary, and give the blocks back.  Afterwards the
 * latency is split into its parts, from the daemon's own timestamps when
 * it keeps them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "bench_truncate.h"

struct waitarg {
	struct bench_shm *shm;
	unsigned int nclients;
	uint64_t min_completions;
	uint32_t seq;
	uint32_t recalls;
};

static bool any_failed(struct waitarg *w)
{
	for (unsigned int i = 0; i < w->nclients; i++)
		if (w->shm->c[i].state == BC_FAILED || w->shm->c[i].state == BC_EXITED)
			return true;
	return w->shm->chk_err != 0;
}

static bool all_streaming(void *arg)
{
	struct waitarg *w = arg;

	if (any_failed(w))
		return true;
	for (unsigned int i = 0; i < w->nclients; i++)
		if (w->shm->c[i].state != BC_STREAMING ||
		    w->shm->c[i].epoch_completions < w->min_completions)
			return false;
	return true;
}

static bool all_returned(void *arg)
{
	struct waitarg *w = arg;

	if (any_failed(w))
		return true;
	for (unsigned int i = 0; i < w->nclients; i++)
		if (w->shm->c[i].recalls < w->recalls)
			return false;
	return true;
}

static bool checker_acked(void *arg)
{
	struct waitarg *w = arg;

	return w->shm->chk_ack == w->seq || w->shm->chk_err;
}

static int checker_cmd(struct bench_shm *shm, uint32_t cmd, uint32_t *seq)
{
	struct waitarg w = { .shm = shm, .seq = ++*seq };

	shm->chk_cmd = cmd;
	__atomic_store_n(&shm->chk_seq, w.seq, __ATOMIC_SEQ_CST);
	bench_ring(shm);
	int ret = bench_wait(shm, checker_acked, &w, 30 * SEC);
	if (ret == 0 && shm->chk_err)
		ret = -EIO;
	return ret;
}

static const char *client_error(struct bench_shm *shm, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (shm->c[i].state == BC_FAILED || shm->c[i].state == BC_EXITED)
			return shm->c[i].msg[0] ? shm->c[i].msg : "client exited";
	if (shm->chk_err)
		return shm->chk_msg[0] ? shm->chk_msg : "checker failed";
	return NULL;
}

/* Daemon-side moments per truncate (0: not reported). */
struct daemon_times {
	uint64_t *recall, *unpin, *freed;
	unsigned int matched;
	int err;
};

/*
 * Fetch the daemon's recent break_layouts timestamps and give each truncate
 * in [from, to) the one that started inside its call (the bench file's
 * inode first).  Return @to (the next one to match).
 */
static unsigned int fetch_daemon(int fd, const uint64_t *t0s, const uint64_t *t1s,
				 unsigned int from, unsigned int to, struct daemon_times *dd)
{
	struct bench_break *bs;
	struct stat st;
	int got;

	if (from >= to || dd->err == -ENOSYS || fstat(fd, &st) < 0)
		return to;
	bs = calloc(4096, sizeof(*bs));
	if (!bs)
		return to;
	got = bdma_break_stats(fd, bs, 4096);
	if (got < 0)
		dd->err = got;
	for (unsigned int it = from; it < to && got > 0; it++) {
		const struct bench_break *best = NULL;

		for (int k = 0; k < got; k++) {
			if (bs[k].t_start < t0s[it] || bs[k].t_start > t1s[it])
				continue;
			if (!best || (bs[k].ino == (uint64_t)st.st_ino && best->ino != (uint64_t)st.st_ino))
				best = &bs[k];
		}
		if (!best)
			continue;
		dd->recall[it] = best->t_recall_sent;
		dd->unpin[it] = best->t_last_unpin;
		dd->freed[it] = best->t_freed ? best->t_freed : best->t_done;
		dd->matched++;
	}
	free(bs);
	return to;
}

/* One case's processes, shared memory and per-truncate moments. */
struct dma_run {
	const struct bench_case *bc;
	struct result *r;
	char path[PATH_MAX], src[PATH_MAX], canary[PATH_MAX];
	int fd;				/* the bench file */
	struct bench_shm *shm;
	pid_t pids[BENCH_MAX_CLIENTS + 1];
	unsigned int npids, nc;
	struct waitarg w;
	uint32_t seq;			/* the last checker command */
	/* per truncate: the call, and the clients' last unpin, drain, first recall seen */
	uint64_t *t0s, *t1s, *unpins, *drains, *seens;
	struct daemon_times dd;
	unsigned int fetched;		/* truncates matched with the daemon's timestamps */
	uint64_t start_ns, bytes0;	/* when the first truncate came, completions then */
};

/* The DMA source: bytes that never look like the canary pattern. */
static int make_source(const char *src, const struct bench_case *bc)
{
	size_t n = (size_t)dx_max(bc->io_size, 65536);
	int sfd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	unsigned char *buf;

	if (sfd < 0)
		return -errno;
	buf = malloc(n);
	if (!buf) {
		close(sfd);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(0xd0 ^ (i * 7));
	for (uint64_t off = 0; off < bc->io_size * 4; off += n)
		if (pwrite(sfd, buf, n, (off_t)off) != (ssize_t)n)
			break;
	free(buf);
	close(sfd);
	return 0;
}

/* The shared memory and the per-truncate arrays. */
static int dma_alloc(struct dma_run *d)
{
	unsigned int n = O.iterations;

	d->shm = mmap(NULL, sizeof(*d->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (d->shm == MAP_FAILED) {
		d->shm = NULL;
		return -errno;
	}
	d->w.shm = d->shm;
	d->t0s = calloc(n, sizeof(*d->t0s));
	d->t1s = calloc(n, sizeof(*d->t1s));
	d->unpins = calloc(n, sizeof(*d->unpins));
	d->drains = calloc(n, sizeof(*d->drains));
	d->seens = calloc(n, sizeof(*d->seens));
	d->dd.recall = calloc(n, sizeof(uint64_t));
	d->dd.unpin = calloc(n, sizeof(uint64_t));
	d->dd.freed = calloc(n, sizeof(uint64_t));
	if (!d->t0s || !d->t1s || !d->unpins || !d->drains || !d->seens || !d->dd.recall ||
	    !d->dd.unpin || !d->dd.freed)
		return -ENOMEM;
	return 0;
}

static void dma_free(struct dma_run *d)
{
	free(d->t0s);
	free(d->t1s);
	free(d->unpins);
	free(d->drains);
	free(d->seens);
	free(d->dd.recall);
	free(d->dd.unpin);
	free(d->dd.freed);
	if (d->shm)
		munmap(d->shm, sizeof(*d->shm));
}

/* Fork the clients, then the checker. */
static int dma_spawn(struct dma_run *d)
{
	fflush(NULL);
	for (unsigned int i = 0; i <= d->nc; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return -errno;
		if (pid == 0) {
			signal(SIGINT, SIG_IGN);
			if (i < d->nc)
				_exit(bdma_client_main(d->shm, i, d->bc, d->path, d->src));
			_exit(bdma_checker_main(d->shm, d->canary));
		}
		d->pids[d->npids++] = pid;
	}
	return 0;
}

/* Tell every child to stop, and reap it (killed when it does not go). */
static void dma_stop(struct dma_run *d)
{
	struct bench_shm *shm = d->shm;

	shm->stop = 1;
	shm->chk_cmd = CHK_QUIT;
	shm->chk_seq++;
	for (unsigned int i = 0; i < d->nc; i++)
		shm->c[i].resume = UINT32_MAX;
	bench_ring(shm);
	for (unsigned int i = 0; i < d->npids; i++) {
		int st;

		for (int k = 0; k < 500 && waitpid(d->pids[i], &st, WNOHANG) == 0; k++) {
			bench_ring(shm);
			usleep(10000);
		}
		if (waitpid(d->pids[i], &st, WNOHANG) == 0) {
			kill(d->pids[i], SIGKILL);
			waitpid(d->pids[i], &st, 0);
		}
	}
}

/* Wait for @cond; a client or the checker that failed is an error too. */
static int dma_wait(struct dma_run *d, bool (*cond)(void *arg), uint64_t timeout_ns)
{
	int ret = bench_wait(d->shm, cond, &d->w, timeout_ns);

	if (ret == 0 && any_failed(&d->w))
		ret = -EIO;
	return ret;
}

/*
 * Every client has drained, unpinned and returned its layout after
 * truncate @it.  A policy that sends no recall: after 2 s stop the clients
 * as a recall would (counted in r->kicked).
 */
static int dma_wait_returned(struct dma_run *d, unsigned int it)
{
	int ret;

	d->w.recalls = it + 1;
	ret = bench_wait(d->shm, all_returned, &d->w, 2 * SEC);
	if (ret == -ETIMEDOUT) {
		for (unsigned int i = 0; i < d->nc; i++)
			d->shm->c[i].kick = it + 1;
		bench_ring(d->shm);
		d->r->kicked++;
		ret = bench_wait(d->shm, all_returned, &d->w, 30 * SEC);
	}
	if (ret == 0 && any_failed(&d->w))
		ret = -EIO;
	return ret;
}

/* Truncate @it happened in [t0, t1): keep its moments and the clients'. */
static void dma_record(struct dma_run *d, unsigned int it, uint64_t t0, uint64_t t1)
{
	struct bench_shm *shm = d->shm;
	uint64_t lu = 0, ld = 0, ls = UINT64_MAX;

	d->r->corruptions += shm->chk_corrupt;
	d->r->canary_pages += shm->chk_pages;
	d->t0s[it] = t0;
	d->t1s[it] = t1;
	for (unsigned int i = 0; i < d->nc; i++) {
		/* the client's last act: unpin, then give the layout back */
		lu = dx_max(lu, dx_max(shm->c[i].t_unpinned, shm->c[i].t_returned));
		ld = dx_max(ld, shm->c[i].t_drained);
		ls = dx_min(ls, shm->c[i].t_recall);
	}
	d->unpins[it] = lu;
	d->drains[it] = ld;
	d->seens[it] = ls;
	lat_add(&d->r->under, (double)(t1 - t0) / 1000.0);
	d->r->truncates++;
}

/* One truncate under DMA, checked by the canary, and the blocks given back. */
static int dma_truncate_once(struct dma_run *d, unsigned int it)
{
	const struct bench_case *bc = d->bc;
	struct bench_shm *shm = d->shm;
	struct result *r = d->r;
	int ret;

	/* every truncate happens under DMA: all clients pinned and streaming */
	ret = dma_wait(d, all_streaming, 30 * SEC);
	if (ret < 0)
		return ret;
	if (it == 0) {
		d->start_ns = ctl_now_ns();
		for (unsigned int i = 0; i < d->nc; i++)
			d->bytes0 += shm->c[i].completions;
	}
	shm->chk_bytes = bc->file_size - shrink_to(bc->file_size);
	uint64_t t0 = ctl_now_ns();
	if (ftruncate(d->fd, (off_t)shrink_to(bc->file_size)) < 0) {
		ret = -errno;
		snprintf(r->note, sizeof(r->note), "truncate failed: %s", strerror(errno));
		return ret;
	}
	uint64_t t1 = ctl_now_ns();
	/* the checker grabs the freed blocks at once */
	ret = checker_cmd(shm, CHK_ARM, &d->seq);
	if (ret < 0)
		return ret;
	ret = dma_wait_returned(d, it);
	if (ret < 0)
		return ret;
	/* every DMA that will ever land has landed: verify */
	ret = checker_cmd(shm, CHK_VERIFY, &d->seq);
	if (ret < 0)
		return ret;
	dma_record(d, it, t0, t1);
	/* give the blocks back, then let the clients map and pin again */
	ret = refill(d->fd, bc->file_size);
	if (ret < 0)
		return ret;
	/* the daemon keeps the last UDAX_BREAKS_MAX: collect before they roll over */
	if (r->truncates - d->fetched >= 512)
		d->fetched = fetch_daemon(d->fd, d->t0s, d->t1s, d->fetched, r->truncates, &d->dd);
	for (unsigned int i = 0; i < d->nc; i++)
		shm->c[i].resume = it + 1;
	bench_ring(shm);
	if ((it & 15) == 0 || it + 1 == O.iterations)
		prog("%s qd=%llu io=%lluK clients=%llu: truncate %u/%u, corruptions %llu",
		     bc->policy, (unsigned long long)bc->qd,
		     (unsigned long long)(bc->io_size >> 10), (unsigned long long)d->nc,
		     it + 1, O.iterations, (unsigned long long)r->corruptions);
	return 0;
}

/* The DMA rate over the truncate loop, in completions and MiB/s. */
static void dma_throughput(struct dma_run *d)
{
	uint64_t el = ctl_now_ns() - d->start_ns, b = 0;
	struct result *r = d->r;

	for (unsigned int i = 0; i < d->nc; i++)
		b += d->shm->c[i].completions;
	r->completions = b - d->bytes0;
	r->dma_mib_s = el ? (double)(b - d->bytes0) * (double)d->bc->io_size /
			    ((double)el / 1e9) / (1024.0 * 1024.0) : 0;
}

/*
 * The parts of each truncate, relative to its call: the daemon's
 * timestamps when it keeps them, else the clients'; and the mechanism:
 * last unpin -> truncate returned, minus a no-DMA truncate's round trip.
 */
static void dma_parts(struct dma_run *d)
{
	struct daemon_times *dd = &d->dd;
	struct result *r = d->r;
	struct lat recall_ns = { 0 };
	struct pct nd;

	fetch_daemon(d->fd, d->t0s, d->t1s, d->fetched, r->truncates, dd);
	r->daemon_parts = dd->matched > 0;
	for (unsigned int it = 0; it < r->truncates; it++) {
		uint64_t t0 = d->t0s[it], t1 = d->t1s[it];
		uint64_t unpin = dd->unpin[it] ? dd->unpin[it] : d->unpins[it];

#define REL(t) ((t) > t0 ? (double)((t) - t0) / 1000.0 : 0.0)
		if (dd->recall[it])
			lat_add(&r->p_recall, REL(dd->recall[it]));
		if (dd->freed[it])
			lat_add(&r->p_freed, REL(dd->freed[it]));
		if (d->seens[it] != UINT64_MAX)
			lat_add(&r->p_seen, REL(d->seens[it]));
		lat_add(&r->p_drained, REL(d->drains[it]));
		lat_add(&r->p_unpin, REL(unpin));
		lat_add(&r->p_returned, REL(t1));
		lat_add(&recall_ns, unpin && unpin < t1 ? (double)(t1 - unpin) / 1000.0 : 0.0);
#undef REL
	}
	if (!r->daemon_parts)
		snprintf(r->note, sizeof(r->note), "the daemon reports no break_layouts timestamps "
			 "(%s): last unpin is when the client had unpinned and returned the layout",
			 dd->err ? strerror(-dd->err) : "none matched");
	lat_pct(&r->nodma, &nd);
	for (size_t i = 0; i < recall_ns.n; i++) {
		lat_add(&r->unpin_ret, recall_ns.v[i]);
		lat_add(&r->mech, dx_max(0.0, recall_ns.v[i] - nd.p50));
	}
	lat_free(&recall_ns);
}

int run_dma(const char *mnt, struct result *r)
{
	struct dma_run *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->bc = &r->bc;
	d->r = r;
	d->fd = -1;
	d->nc = (unsigned int)r->bc.clients;
	d->w.nclients = d->nc;
	snprintf(d->path, sizeof(d->path), "%s/%s-dma", mnt, O.tag);
	snprintf(d->canary, sizeof(d->canary), "%s/%s-canary", mnt, O.tag);
	snprintf(d->src, sizeof(d->src), "%s/%s-src", O.source_dir, O.tag);

	ret = make_source(d->src, d->bc);
	if (ret < 0)
		goto out;
	d->fd = open(d->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (d->fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = refill(d->fd, d->bc->file_size);
	if (ret < 0)
		goto out;
	ret = dma_alloc(d);
	if (ret < 0)
		goto out;

	ret = dma_spawn(d);
	d->w.min_completions = d->bc->qd;
	d->start_ns = ctl_now_ns();
	for (unsigned int it = 0; ret == 0 && it < O.iterations && !interrupted; it++)
		ret = dma_truncate_once(d, it);
	if (ret == 0) {
		dma_throughput(d);
		r->dma_ran = true;
		dma_parts(d);
	} else if (!r->note[0]) {
		const char *m = client_error(d->shm, d->nc);

		snprintf(r->note, sizeof(r->note), "%s", m ? m : strerror(-ret));
	}
	dma_stop(d);
out:
	dma_free(d);
	if (d->fd >= 0)
		close(d->fd);
	unlink(d->path);
	unlink(d->canary);
	unlink(d->src);
	free(d);
	return ret;
}
