// SPDX-License-Identifier: MIT
/*
 * bench_futex.c - the floor of the truncate-under-DMA benchmark: a futex
 * ping-pong between two processes, measured in the same run.  Each hop is
 * timed from just before FUTEX_WAKE in one process to just after the other
 * returns from FUTEX_WAIT (CLOCK_MONOTONIC is the same clock in both).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "udaxctl.h"

void fx_wait(volatile uint32_t *w, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000ull),
		.tv_nsec = (long)(timeout_ns % 1000000000ull),
	};

	syscall(SYS_futex, w, FUTEX_WAIT, val, timeout_ns ? &ts : NULL, NULL, 0);
}

void fx_wake(volatile uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

struct pp {
	volatile uint32_t turn;		/* odd: child's turn, even: parent's */
	volatile uint64_t t_wake;	/* when the last hop's wake was issued */
	double hop_us[];		/* hop i, written by the woken side */
};

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Play one side: wait for my turns (parity @me), record the hop, pass the turn. */
static void play(struct pp *pp, unsigned int hops, uint32_t me)
{
	for (uint32_t t = me; t < hops; t += 2) {
		uint32_t cur;

		while ((cur = __atomic_load_n(&pp->turn, __ATOMIC_ACQUIRE)) != t)
			fx_wait(&pp->turn, cur, 1000000000ull);
		uint64_t now = ctl_now_ns();
		if (t > 0)
			pp->hop_us[t - 1] = (double)(now - pp->t_wake) / 1000.0;
		pp->t_wake = ctl_now_ns();
		__atomic_store_n(&pp->turn, t + 1, __ATOMIC_RELEASE);
		fx_wake(&pp->turn);
	}
}

int futex_pingpong(unsigned int rounds, int cpu_a, int cpu_b, struct lat *oneway)
{
	unsigned int hops = 2 * rounds + 1;
	size_t sz = sizeof(struct pp) + hops * sizeof(double);
	struct pp *pp;
	pid_t pid;
	int st, ret = 0;

	pp = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pp == MAP_FAILED)
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out_unmap;
	}
	if (pid == 0) {
		pin_cpu(cpu_b);
		play(pp, hops, 1);
		_exit(0);
	}
	{
		cpu_set_t old;

		sched_getaffinity(0, sizeof(old), &old);
		pin_cpu(cpu_a);
		play(pp, hops, 0);
		sched_setaffinity(0, sizeof(old), &old);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		ret = -ECHILD;
	/* skip the first few hops: page faults and migration */
	for (unsigned int i = 8; ret == 0 && i + 1 < hops; i++)
		lat_add(oneway, pp->hop_us[i]);
out_unmap:
	munmap(pp, sz);
	return ret;
}
