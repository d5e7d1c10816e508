/* SPDX-License-Identifier: MIT */
/*
 * udaxctl.h - internal interfaces between the parts of udaxctl
 * (udaxctl.c: command line; udaxctl_util.c: shared helpers; udaxctl_status.c,
 * udaxctl_pin.c, udaxctl_quarantine.c: those commands; bench_*.c: the
 * truncate-under-DMA benchmark).  Not installed.
 */
#ifndef UDAXCTL_H
#define UDAXCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- commands ---- */
int udaxctl_status(int argc, char **argv);
int bench_truncate_dma(int argc, char **argv);
int udaxctl_pin(int argc, char **argv);
int udaxctl_quarantine(int argc, char **argv);
/* --version of udaxctl and each subcommand: print "udaxctl (udaxfs) VERSION"; returns 0. */
int ctl_version(void);

/* ---- helpers (udaxctl_util.c) ---- */
uint64_t ctl_now_ns(void);
/* Directory holding this executable (for finding sibling build products). */
const char *ctl_self_dir(void);
/* Find an executable: $ENV, then next to udaxctl (and its build subdirs), then $PATH.
 * Return a malloc'd path or NULL. */
char *ctl_find_prog(const char *env, const char *name, const char *const *subdirs);
/* Print a JSON string literal (quoted, escaped). */
void ctl_json_str(FILE *f, const char *s);
/* Is @path the root of a udaxfs mount?  Fills fstype (if non-NULL).
 * Return 1 yes, 0 no, -errno. */
int ctl_is_udaxfs_mount(const char *path, char *fstype, size_t len);
/* Parse a comma list of sizes / numbers into a malloc'd array.  Return count or -EINVAL. */
int ctl_parse_size_list(const char *s, uint64_t **out);

/* ---- statistics (bench_stats.c) ---- */
struct lat {
	double *v;		/* microseconds */
	size_t n, cap;
	bool sorted;
};
struct pct {
	double p50, p90, p99, p999, max, min, mean;
	size_t n;
};
void lat_add(struct lat *l, double us);
void lat_free(struct lat *l);
/* Percentiles by nearest rank on the sorted samples; all zero when empty. */
void lat_pct(struct lat *l, struct pct *out);
void pct_json(FILE *f, const struct pct *p);
/* Write "<us> <cumulative fraction>" lines (the CDF) for gnuplot. */
int lat_write_cdf(struct lat *l, FILE *f);

/* ---- the futex floor (bench_futex.c) ---- */
/*
 * futex_pingpong() - two processes bounce a futex word @rounds times;
 * each one-way hop (wake -> woken) goes into @oneway.  cpu_a/cpu_b pin the
 * two processes (-1: leave them unpinned).  Return 0 or -errno.
 */
int futex_pingpong(unsigned int rounds, int cpu_a, int cpu_b, struct lat *oneway);
/* Futex helpers on a word in shared memory (MAP_SHARED: not private futexes). */
void fx_wait(volatile uint32_t *w, uint32_t val, uint64_t timeout_ns);
void fx_wake(volatile uint32_t *w);


/* ---- the truncate-under-DMA benchmark: shared state (bench_common.c, bench_dma.c) ---- */
#define BENCH_MAX_CLIENTS 16

/* One sweep point under one policy. */
struct bench_case {
	const char *policy;
	uint64_t pinned, qd, io_size, clients, file_size;
	uint64_t pin_off;		/* clients map [pin_off, pin_off + pinned): inside
					 * the part each truncate cuts off */
	bool dma_write;			/* WRITE_FIXED (read the pages) instead of READ_FIXED */
};

enum bench_client_state {
	BC_STARTING = 0,
	BC_STREAMING,			/* pinned, DMA in flight */
	BC_RETURNED,			/* recalled: drained, unpinned, layout returned */
	BC_FAILED,
	BC_EXITED,
};

/*
 * One DMA client process.  Written by that client, read by the truncator;
 * every change bumps bench_shm.bell.  Timestamps are CLOCK_MONOTONIC ns of
 * the most recent recall.
 */
struct bench_client {
	volatile uint32_t state;
	volatile uint32_t epoch;	/* bumped each time streaming (re)starts */
	volatile uint32_t resume;	/* written by the truncator: recalls it may recover from */
	volatile uint32_t recalls;	/* recalls handled */
	volatile uint32_t kick;		/* truncator: stop as if recalled once recalls < kick
					 * (a policy that sent no recall) */
	volatile uint64_t completions;	/* DMA completions reaped, total */
	volatile uint64_t epoch_completions; /* ... since streaming last (re)started */
	volatile uint64_t t_recall, t_drained, t_unpinned, t_returned;
	int err;
	char msg[200];
};

/* Checker commands (bench_shm.chk_cmd): */
#define CHK_IDLE	0
#define CHK_ARM		1	/* allocate canary blocks, write the pattern */
#define CHK_VERIFY	2	/* verify the pattern, count, free the canary */
#define CHK_QUIT	3

struct bench_shm {
	volatile uint32_t bell;		/* futex word: bumped on every state change */
	volatile uint32_t stop;		/* set by the truncator: everybody exits */
	volatile uint32_t chk_cmd, chk_seq;	/* command and its sequence number */
	volatile uint32_t chk_ack;	/* sequence number of the last command done */
	volatile uint64_t chk_bytes;	/* canary size to allocate for the next ARM */
	volatile uint64_t chk_corrupt;	/* corrupted canary pages found by the last VERIFY */
	volatile uint64_t chk_pages;	/* canary pages checked by the last VERIFY */
	volatile uint64_t t_chk_armed;	/* when the last pattern was in place */
	int chk_err;
	char chk_msg[200];
	struct bench_client c[BENCH_MAX_CLIENTS];
};

void bench_ring(struct bench_shm *shm);
/* Wait until cond(arg) is true or timeout; return 0 or -ETIMEDOUT. */
int bench_wait(struct bench_shm *shm, bool (*cond)(void *arg), void *arg, uint64_t timeout_ns);

/* Daemon-side timestamps of one break_layouts (CLOCK_MONOTONIC ns). */
struct bench_break {
	uint64_t ino, start, end;
	uint64_t t_start, t_recall_sent, t_last_unpin, t_idle, t_done, t_freed;
};

/* udaxctl_status.c: a private connection (wire.h) to the layout service of
 * the mount holding @path_on_mount.  Return 0 or -errno. */
struct udax_wire;
int ctl_daemon_connect(const char *path_on_mount, struct udax_wire **out);
/* Send @type with @payload, wait for its reply; *rep is malloc'd (NUL-terminated). */
int ctl_daemon_request(struct udax_wire *w, uint16_t type, const void *payload, uint32_t len,
		       void **rep, uint32_t *rep_len);
int udaxctl_fetch_breaks(int fd, struct bench_break *out, unsigned int max);

/* bench_dma.c: the parts that need libudax.  All return 0 or -errno. */
bool bdma_available(void);
/* Child process bodies; they return the exit status. */
int bdma_client_main(struct bench_shm *shm, unsigned int idx, const struct bench_case *bc,
		     const char *path, const char *src_path);
int bdma_checker_main(struct bench_shm *shm, const char *canary_path);
/* Fetch up to @max of the most recent break_layouts stats of the mount
 * holding @fd, oldest first.  Return the count or -errno (-ENOSYS: the
 * daemon does not keep them). */
int bdma_break_stats(int fd, struct bench_break *out, unsigned int max);

#endif /* UDAXCTL_H */
