/* SPDX-License-Identifier: MIT */
/*
 * bench_truncate.h - the pieces of udaxctl bench truncate-dma, private to
 * it: the options and results (bench_truncate.c: options, the no-DMA and
 * peer measurements, the report; bench_common.c: the state and helpers
 * all parts use), the udaxfs mount it makes for itself (bench_mount.c) and
 * the truncate-under-DMA runner (bench_truncate_dma.c).
 * The clients and the checker are in bench_dma.c (udaxctl.h).
 */
#ifndef UDAX_BENCH_TRUNCATE_H
#define UDAX_BENCH_TRUNCATE_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "udaxctl.h"

#define SEC 1000000000ull

struct opts {
	const char *mountpoint;		/* NULL: mount our own */
	unsigned int iterations;
	unsigned int nodma_iterations;
	unsigned int futex_rounds;
	char **policies;
	int npolicies;
	uint64_t *pinned, *qd, *io_size, *clients, *file_size;
	int npinned, nqd, nio, nclients, nfile;
	bool dma_write;
	bool shrink_half;
	bool json, quiet;
	const char *plot;
	const char *json_file;		/* --json-file: the JSON also goes here */
	uint64_t device_size;
	const char *source_dir;
	const char *passthrough;	/* path to passthrough_ll */
	bool no_passthrough;
	uint64_t recall_timeout_ms;
	int futex_cpu_a, futex_cpu_b;
	char tag[64];			/* unique name part: udaxbench-<pid> */
};

/* Results of one case. */
struct result {
	struct bench_case bc;
	struct lat under, nodma, mech;
	struct lat unpin_ret;		/* last unpin -> truncate returned, raw */
	/* parts, relative to the truncate call (us) */
	struct lat p_recall, p_seen, p_drained, p_unpin, p_returned, p_freed;
	bool daemon_parts;		/* parts from the daemon's own timestamps */
	unsigned int truncates;
	unsigned int kicked;		/* truncates after which no recall arrived */
	uint64_t corruptions, canary_pages, completions;
	double dma_mib_s;
	bool dma_ran;
	char note[200];
};

/* ---- bench_common.c: the state and helpers every part uses ---- */

/* Set once by the option parser, read-only afterwards. */
extern struct opts O;
/* Set by SIGINT/SIGTERM: every loop stops at its next step. */
extern volatile sig_atomic_t interrupted;

/* Decide where progress goes: stderr when it is a terminal (or with
 * UDAX_BENCH_PROGRESS set), else nowhere; never stdout. */
void prog_start(void);
/* A progress line, rewritten in place. */
void prog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Clear the progress line. */
void prog_done(void);
/* Bring back the blocks a truncate frees (fallocate, else zeros).  Return 0 or -errno. */
int refill(int fd, uint64_t size);
/* The size a truncate shrinks @size to (--shrink-half or 0). */
uint64_t shrink_to(uint64_t size);

/* ---- bench_mount.c: helper programs and the mounts they make ---- */

/* Run @argv (stdout to /dev/null when @quiet).  Return 0, -EIO (it failed), -errno. */
int run_cmd(char *const argv[], bool quiet);
/* fusermount3 -u -z @mnt.  Return as run_cmd(), -ENOENT without fusermount3. */
int unmount_fuse(const char *mnt);
/* Wait until @mnt shows up as a mount of type @type.  Return 0, -ETIMEDOUT. */
int wait_mounted(const char *mnt, const char *type);

/* The emulated device in /dev/shm and the udaxfs mount made on it. */
struct selfmount {
	char dev[PATH_MAX], mnt[PATH_MAX];
	bool mounted;
};
/*
 * self_mount() - mkfs an emulated device of --device-size bytes and mount
 * udaxfs on it with -o dax_policy=@policy (and --recall-timeout).  Says
 * what failed on stderr.  Return 0 or -errno; call self_unmount() either way.
 */
int self_mount(struct selfmount *sm, const char *policy);
/* Unmount (retrying while busy) and remove the device and the mount point. */
void self_unmount(struct selfmount *sm);

/* ---- bench_truncate_dma.c ---- */

/*
 * run_dma() - the truncate-under-DMA case @r->bc on the mount @mnt: start
 * the clients and the checker, truncate --iterations times while every
 * client streams, and fill @r (latencies, their parts, corruptions, the
 * DMA rate).  @r->nodma must already be measured (the mechanism's share is
 * what exceeds a no-DMA truncate).  Return 0 or -errno (@r->note says why).
 */
int run_dma(const char *mnt, struct result *r);

#endif /* UDAX_BENCH_TRUNCATE_H */
