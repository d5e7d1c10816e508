// SPDX-License-Identifier: MIT
/*
 * bench_truncate.c - udaxctl bench truncate-dma (DESIGN.md section 5):
 * how long does truncate wait for DMA to drain?
 *
 * Processes (all children of this one, which is also the truncator):
 *   - clients:   map the file through libudax, register it as io_uring fixed
 *                buffers (a pin) and stream READ_FIXED (or WRITE_FIXED) at
 *                queue depth Q and I/O size B; on a recall they stop
 *                submitting, reap, unpin, return the layout, and wait to be
 *                allowed to map and pin again (bench_dma.c);
 *   - checker:   right after each truncate, allocates a canary file of the
 *                freed size through libudax (so it likely gets the freed
 *                blocks), writes a pattern into it, and verifies it once
 *                every client has drained: a DMA that landed in a freed and
 *                reused block shows up as a corrupted canary page;
 *   - futex ping-pong pair: the floor, measured in the same run;
 *   - passthrough_ll over tmpfs: the no-DMA truncate of a plain FUSE file
 *     system, the peer for udaxfs' own no-DMA truncate.
 *
 * Without a MOUNTPOINT it formats an emulated device in /dev/shm and mounts
 * udaxfs itself, once per policy (-o dax_policy=), and cleans up
 * (bench_mount.c).
 *
 * This file: the options, the no-DMA and peer measurements, the report.
 * One case under DMA is run by bench_truncate_dma.c; the state and the
 * small helpers every part uses are in bench_common.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "bench_truncate.h"

static struct result *R;
static int nres;
static struct lat futex_cross, futex_same, passthrough_lat;
static char passthrough_path[PATH_MAX];	/* the peer binary that was measured */
static char futex_cross_desc[64], futex_same_desc[64];

/* ---- small helpers ---- */

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "udaxctl bench truncate-dma: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(see udaxctl bench truncate-dma --help)\n");
	va_end(ap);
	exit(2);
}

/* The no-DMA truncate: refill, then time the shrinking ftruncate. */
static int measure_nodma(const char *path, uint64_t size, unsigned int n, struct lat *out,
			 const char *what)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int ret = 0;

	if (fd < 0)
		return -errno;
	for (unsigned int i = 0; i < n && !interrupted; i++) {
		ret = refill(fd, size);
		if (ret < 0)
			break;
		uint64_t t0 = ctl_now_ns();
		if (ftruncate(fd, (off_t)shrink_to(size)) < 0) {
			ret = -errno;
			break;
		}
		uint64_t t1 = ctl_now_ns();
		lat_add(out, (double)(t1 - t0) / 1000.0);
		if ((i & 63) == 0)
			prog("%s: no-DMA truncate %u/%u", what, i, n);
	}
	close(fd);
	unlink(path);
	return ret;
}

/* ---- passthrough_ll over tmpfs ---- */

static int measure_passthrough(void)
{
	static const char *const sub[] = { "src/tools", "tools", NULL };
	char dir[PATH_MAX], mnt[PATH_MAX], file[PATH_MAX + 32], srcopt[PATH_MAX + 64];
	char *pt = O.passthrough ? strdup(O.passthrough)
				 : ctl_find_prog("UDAX_PASSTHROUGH_LL", "bench-passthrough_ll", sub);
	int ret;

	if (!pt)
		return -ENOENT;
	if (!realpath(pt, passthrough_path))
		snprintf(passthrough_path, sizeof(passthrough_path), "%s", pt);
	snprintf(dir, sizeof(dir), "%s/%s-ptsrc", O.source_dir, O.tag);
	snprintf(mnt, sizeof(mnt), "%s/%s-ptmnt", O.source_dir, O.tag);
	mkdir(dir, 0700);
	mkdir(mnt, 0700);
	snprintf(srcopt, sizeof(srcopt), "source=%s,writeback", dir);
	char *argv[] = { pt, "-o", srcopt, mnt, NULL };
	ret = run_cmd(argv, true);
	if (ret == 0)
		ret = wait_mounted(mnt, "fuse.bench-passthrough_ll");
	if (ret == 0) {
		snprintf(file, sizeof(file), "%s/truncate-nodma", mnt);
		ret = measure_nodma(file, O.file_size[0], O.nodma_iterations, &passthrough_lat,
				    "passthrough_ll");
		unmount_fuse(mnt);
	}
	rmdir(mnt);
	snprintf(file, sizeof(file), "%s/truncate-nodma", dir);
	unlink(file);
	rmdir(dir);
	free(pt);
	return ret;
}

static int run_case(const char *mnt, struct result *r)
{
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/%s-nodma", mnt, O.tag);
	ret = measure_nodma(path, r->bc.file_size, O.nodma_iterations, &r->nodma, r->bc.policy);
	if (ret < 0) {
		snprintf(r->note, sizeof(r->note), "no-DMA truncate failed: %s", strerror(-ret));
		return ret;
	}
	if (!bdma_available()) {
		snprintf(r->note, sizeof(r->note), "libudax not built in: no DMA measured");
		return 0;
	}
	return run_dma(mnt, r);
}

/* ---- output ---- */

static void print_pct_rows(FILE *f, const char *name, struct lat *const *l, int n, bool all)
{
	static const char *const lab[] = { "p50", "p90", "p99", "p99.9", "max" };
	struct pct p[64];

	for (int i = 0; i < n; i++)
		lat_pct(l[i], &p[i]);
	for (int k = 0; k < (all ? 5 : 2); k++) {
		int kk = all ? k : (k == 0 ? 0 : 2);

		fprintf(f, "  %-22s %-5s", k == 0 ? name : "", lab[kk]);
		for (int i = 0; i < n; i++) {
			double v = kk == 0 ? p[i].p50 : kk == 1 ? p[i].p90 : kk == 2 ? p[i].p99 :
				   kk == 3 ? p[i].p999 : p[i].max;

			if (p[i].n)
				fprintf(f, " %14.1f", v);
			else
				fprintf(f, " %14s", "-");
		}
		fputc('\n', f);
	}
}

static void print_table(FILE *f)
{
	struct pct fc, fs, pt;
	char sz[5][32];

	lat_pct(&futex_cross, &fc);
	lat_pct(&futex_same, &fs);
	lat_pct(&passthrough_lat, &pt);
	fprintf(f, "udaxctl bench truncate-dma: %u truncates per case, shrink to %s, %s, "
		"%s of %d CPUs\n", O.iterations, O.shrink_half ? "half" : "0",
		O.dma_write ? "WRITE_FIXED (DMA reads the pages)" : "READ_FIXED (DMA writes the pages)",
		O.mountpoint ? O.mountpoint : "emulated device in /dev/shm", (int)sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(f, "futex one-way floor, %s: p50 %.1f  p99 %.1f  max %.1f us\n",
		futex_cross_desc, fc.p50, fc.p99, fc.max);
	fprintf(f, "futex one-way,       %s: p50 %.1f  p99 %.1f  max %.1f us\n",
		futex_same_desc, fs.p50, fs.p99, fs.max);
	if (pt.n) {
		fprintf(f, "passthrough_ll (tmpfs, -o writeback) no-DMA ftruncate: p50 %.1f  p90 %.1f  "
			"p99 %.1f  max %.1f us\n", pt.p50, pt.p90, pt.p99, pt.max);
		fprintf(f, "passthrough_ll binary: %s\n", passthrough_path);
	} else
		fprintf(f, "passthrough_ll: not measured\n");

	/* group the results by sweep point; policies are the columns */
	bool *done = calloc((size_t)nres, sizeof(bool));
	for (int a = 0; a < nres; a++) {
		if (done[a])
			continue;
		int idx[64], n = 0;
		for (int b = a; b < nres && n < 64; b++) {
			struct bench_case *x = &R[a].bc, *y = &R[b].bc;

			if (!done[b] && x->pinned == y->pinned && x->qd == y->qd &&
			    x->io_size == y->io_size && x->clients == y->clients &&
			    x->file_size == y->file_size) {
				idx[n++] = b;
				done[b] = true;
			}
		}
		struct bench_case *c = &R[a].bc;
		fprintf(f, "\n== file %s, pinned %s, qd %llu, io %s, clients %llu ==\n",
			dx_fmt_size(c->file_size, sz[0], 32), dx_fmt_size(c->pinned, sz[1], 32),
			(unsigned long long)c->qd, dx_fmt_size(c->io_size, sz[2], 32),
			(unsigned long long)c->clients);
		fprintf(f, "  %-22s %-5s", "(microseconds)", "");
		for (int i = 0; i < n; i++)
			fprintf(f, " %14s", R[idx[i]].bc.policy);
		fputc('\n', f);
		struct lat *l[64];
#define ROWS(field, name, all) do { \
		for (int i = 0; i < n; i++) l[i] = &R[idx[i]].field; \
		print_pct_rows(f, name, l, n, all); } while (0)
		ROWS(under, "truncate under DMA", true);
		ROWS(nodma, "truncate, no DMA", true);
		ROWS(mech, "mechanism", true);
		ROWS(unpin_ret, "last unpin -> return", false);
		fprintf(f, "  parts (from truncate call):\n");
		ROWS(p_recall, " recall sent (daemon)", false);
		ROWS(p_seen, " recall seen (client)", false);
		ROWS(p_drained, " client drained", false);
		ROWS(p_unpin, " last unpin", false);
		ROWS(p_returned, " truncate returned", false);
		ROWS(p_freed, " blocks freed (daemon)", false);
#undef ROWS
		fprintf(f, "  %-28s", "truncates under DMA");
		for (int i = 0; i < n; i++)
			fprintf(f, " %14u", R[idx[i]].truncates);
		fprintf(f, "\n  %-28s", "corruptions (pages)");
		for (int i = 0; i < n; i++)
			fprintf(f, " %14llu", (unsigned long long)R[idx[i]].corruptions);
		fprintf(f, "\n  %-28s", "DMA MiB/s while streaming");
		for (int i = 0; i < n; i++)
			fprintf(f, " %14.0f", R[idx[i]].dma_mib_s);
		fputc('\n', f);
		for (int i = 0; i < n; i++)
			if (R[idx[i]].kicked)
				fprintf(f, "  note (%s): %u truncates returned and no recall reached the "
					"clients within 2 s; the bench stopped them\n", R[idx[i]].bc.policy,
					R[idx[i]].kicked);
		for (int i = 0; i < n; i++)
			if (R[idx[i]].note[0])
				fprintf(f, "  note (%s): %s\n", R[idx[i]].bc.policy, R[idx[i]].note);
	}
	free(done);

	/* the targets, for the first sweep point of each policy */
	fprintf(f, "\ntargets:\n");
	for (int p = 0; p < O.npolicies; p++) {
		struct result *r = NULL;
		struct pct m, nd;

		for (int i = 0; i < nres && !r; i++)
			if (!strcmp(R[i].bc.policy, O.policies[p]))
				r = &R[i];
		if (!r)
			continue;
		lat_pct(&r->mech, &m);
		lat_pct(&r->nodma, &nd);
		bool safe = strcmp(r->bc.policy, "unsafe") != 0;
		if (safe)
			fprintf(f, "  %-14s mechanism p50 %.1f us vs 3 x futex %.1f us: %s; ", r->bc.policy,
				m.p50, 3 * fc.p50, !m.n ? "n/a" : m.p50 <= 3 * fc.p50 ? "met" : "MISSED");
		else
			fprintf(f, "  %-14s mechanism: n/a (frees without waiting); ", r->bc.policy);
		if (pt.n)
			fprintf(f, "no-DMA p50 %.1f vs 1.2 x passthrough_ll %.1f us: %s; ", nd.p50,
				1.2 * pt.p50, nd.p50 <= 1.2 * pt.p50 ? "met" : "MISSED");
		fprintf(f, "corruptions %llu over %u: %s\n", (unsigned long long)r->corruptions,
			r->truncates, !r->dma_ran ? "n/a" : safe ?
			(r->corruptions == 0 && r->truncates >= 1000 ? "met" :
			 r->corruptions == 0 ? "0 (fewer than 1000 truncates)" : "MISSED") :
			(r->corruptions ? "non-zero, as expected without the wait" : "0 (unsafe: race not hit)"));
	}
}

static void json_case(FILE *f, struct result *r)
{
	struct pct p;

	fprintf(f, "{\"truncates\": %u, \"corruptions\": %llu, \"canary_pages_checked\": %llu, "
		"\"dma_completions\": %llu, \"dma_mib_s\": %.1f, \"dma_ran\": %s, \"daemon_parts\": %s, "
		"\"no_recall\": %u, ",
		r->truncates, (unsigned long long)r->corruptions,
		(unsigned long long)r->canary_pages, (unsigned long long)r->completions,
		r->dma_mib_s, r->dma_ran ? "true" : "false", r->daemon_parts ? "true" : "false",
		r->kicked);
	fprintf(f, "\"params\": {\"file_size\": %llu, \"pinned\": %llu, \"qd\": %llu, "
		"\"io_size\": %llu, \"clients\": %llu, \"dma\": \"%s\", \"shrink_to\": \"%s\"}, ",
		(unsigned long long)r->bc.file_size, (unsigned long long)r->bc.pinned,
		(unsigned long long)r->bc.qd, (unsigned long long)r->bc.io_size,
		(unsigned long long)r->bc.clients, r->bc.dma_write ? "write_fixed" : "read_fixed",
		O.shrink_half ? "half" : "zero");
#define J(name, field) do { lat_pct(&r->field, &p); fprintf(f, "\"" name "\": "); \
		pct_json(f, &p); fprintf(f, ", "); } while (0)
	J("truncate_under_dma_us", under);
	J("truncate_no_dma_us", nodma);
	J("mechanism_us", mech);
	J("unpin_to_return_us", unpin_ret);
	fprintf(f, "\"parts_us\": {");
	J("recall_sent", p_recall);
	J("recall_seen", p_seen);
	J("client_drained", p_drained);
	J("last_unpin", p_unpin);
	J("blocks_freed", p_freed);
	lat_pct(&r->p_returned, &p);
	fprintf(f, "\"truncate_returned\": ");
	pct_json(f, &p);
	fprintf(f, "}, ");
#undef J
	fprintf(f, "\"note\": ");
	ctl_json_str(f, r->note);
	fprintf(f, "}");
}

/* The whole run as one JSON object: each policy as its first sweep point,
 * and every sweep point under "runs". */
static void print_json_full(FILE *f)
{
	struct pct p;

	fprintf(f, "{\n  \"benchmark\": \"truncate-dma\",\n  \"iterations\": %u,\n", O.iterations);
	fprintf(f, "  \"cpus\": %ld,\n  \"mountpoint\": ", sysconf(_SC_NPROCESSORS_ONLN));
	ctl_json_str(f, O.mountpoint ? O.mountpoint : "");
	lat_pct(&futex_cross, &p);
	fprintf(f, ",\n  \"futex_oneway_us\": ");
	pct_json(f, &p);
	fprintf(f, ",\n  \"futex_placement\": ");
	ctl_json_str(f, futex_cross_desc);
	lat_pct(&futex_same, &p);
	fprintf(f, ",\n  \"futex_same_cpu_oneway_us\": ");
	pct_json(f, &p);
	fprintf(f, ",\n  \"futex_same_cpu_placement\": ");
	ctl_json_str(f, futex_same_desc);
	lat_pct(&passthrough_lat, &p);
	fprintf(f, ",\n  \"passthrough_ll_truncate_us\": ");
	if (p.n)
		pct_json(f, &p);
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"policies\": {");
	int k = 0;
	for (int pi = 0; pi < O.npolicies; pi++) {
		for (int i = 0; i < nres; i++) {
			if (strcmp(R[i].bc.policy, O.policies[pi]))
				continue;
			fprintf(f, "%s\n    ", k++ ? "," : "");
			ctl_json_str(f, O.policies[pi]);
			fprintf(f, ": ");
			json_case(f, &R[i]);
			break;
		}
	}
	fprintf(f, "\n  },\n  \"runs\": [");
	for (int i = 0; i < nres; i++) {
		fprintf(f, "%s\n    {\"policy\": ", i ? "," : "");
		ctl_json_str(f, R[i].bc.policy);
		fprintf(f, ", \"result\": ");
		json_case(f, &R[i]);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
}

static int write_plot(const char *out)
{
	char *gp = ctl_find_prog(NULL, "gnuplot", NULL);
	char dir[] = "/tmp/udaxbench-plotXXXXXX";
	char script[PATH_MAX], data[PATH_MAX + 32];
	const char *ext = strrchr(out, '.');
	bool svg = ext && !strcasecmp(ext, ".svg");
	FILE *s;
	int ret;

	if (!gp) {
		fprintf(stderr, "udaxctl bench: gnuplot is not installed: no plot written\n");
		return -ENOENT;
	}
	if (!mkdtemp(dir)) {
		free(gp);
		return -errno;
	}
	snprintf(script, sizeof(script), "%s/cdf.gp", dir);
	s = fopen(script, "w");
	if (!s) {
		ret = -errno;
		goto out;
	}
	fprintf(s, "set terminal %s size 1000,640\nset output '%s'\n",
		svg ? "svg dynamic" : "pngcairo", out);
	fprintf(s, "set title 'truncate latency CDF (udaxctl bench truncate-dma)'\n"
		"set xlabel 'microseconds'\nset ylabel 'fraction of truncates'\n"
		"set logscale x\nset key bottom right\nset grid\nset yrange [0:1]\n"
		"set termoption noenhanced\n");
	fprintf(s, "plot ");
	int nplots = 0;
	for (int i = 0; i < nres; i++) {
		struct { struct lat *l; const char *what; } cur[] = {
			{ &R[i].under, "under DMA" }, { &R[i].nodma, "no DMA" },
			{ &R[i].mech, "mechanism" },
		};
		for (size_t k = 0; k < UDAX_ARRAY_SIZE(cur); k++) {
			/* the unsafe policy does not wait: it has no mechanism to plot */
			if (!cur[k].l->n || (k == 2 && !strcmp(R[i].bc.policy, "unsafe")))
				continue;
			snprintf(data, sizeof(data), "%s/d%d_%zu.dat", dir, i, k);
			FILE *d = fopen(data, "w");
			if (!d)
				continue;
			lat_write_cdf(cur[k].l, d);
			fclose(d);
			fprintf(s, "%s'%s' using 1:2 with lines lw 2 title '%s %s%s'", nplots++ ? ", " : "",
				data, R[i].bc.policy, cur[k].what, nres > O.npolicies ? " (sweep)" : "");
		}
	}
	const char *extra[] = { "futex one-way", "passthrough_ll no DMA" };
	struct lat *el[] = { &futex_cross, &passthrough_lat };
	for (int k = 0; k < 2; k++) {
		if (!el[k]->n)
			continue;
		snprintf(data, sizeof(data), "%s/e%d.dat", dir, k);
		FILE *d = fopen(data, "w");
		if (!d)
			continue;
		lat_write_cdf(el[k], d);
		fclose(d);
		fprintf(s, "%s'%s' using 1:2 with lines dt 2 lw 2 title '%s'", nplots++ ? ", " : "",
			data, extra[k]);
	}
	fprintf(s, "\n");
	fclose(s);
	if (!nplots) {
		ret = -ENODATA;
		goto out;
	}
	char *argv[] = { gp, script, NULL };
	ret = run_cmd(argv, false);
out:
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			ret = ret ? ret : -EIO;
	}
	free(gp);
	return ret;
}

/* ---- command line ---- */

static void help(void)
{
	printf(
"Usage: udaxctl bench truncate-dma [MOUNTPOINT] [options]\n"
"  Measures how long truncate waits for DMA (io_uring fixed buffers) to drain.\n"
"  Without MOUNTPOINT: formats an emulated device in /dev/shm and mounts\n"
"  udaxfs itself, once per --policy, and cleans up afterwards.\n"
"options (LIST = comma-separated values, swept; sizes take K/M/G):\n"
"  --iterations N       truncates under DMA per case (default 1000)\n"
"  --nodma-iterations N no-DMA truncates per case (default: --iterations)\n"
"  --policy LIST        default,untrack-first,unsafe (default: default)\n"
"  --pinned LIST        bytes mapped and pinned by each client (default: file size)\n"
"  --qd LIST            DMA queue depth per client (default 8)\n"
"  --io-size LIST       DMA I/O size (default 64K)\n"
"  --clients LIST       DMA client processes (default 1, max %d)\n"
"  --file-size LIST     size of the truncated file (default 4M)\n"
"  --dma read|write     READ_FIXED (DMA writes the pages; default) or WRITE_FIXED\n"
"  --shrink zero|half   truncate to 0 (default) or to half the size\n"
"  --futex-rounds N     ping-pong round trips for the floor (default 2000)\n"
"  --futex-cpus A,B     CPUs for the floor's two processes (default 0,1)\n"
"  --device-size SIZE   emulated device size (default 512M)\n"
"  --recall-timeout MS  mount option recall_timeout= (own mounts only)\n"
"  --source-dir DIR     tmpfs directory for the DMA source file (default /dev/shm)\n"
"  --passthrough-ll P   libfuse passthrough_ll binary\n"
"  --no-passthrough     do not measure the passthrough_ll peer\n"
"  --json               print one JSON object instead of the table\n"
"  --json-file FILE     also write the JSON object to FILE\n"
"  --plot FILE          latency CDF, PNG or SVG by extension (needs gnuplot)\n"
"  --quiet              no progress line\n"
"  -h, --help           print this help and exit\n"
"  -V, --version        print the version and exit\n", BENCH_MAX_CLIENTS);
}

static void list_opt(const char *name, const char *arg, uint64_t **v, int *n, uint64_t lo,
		     uint64_t hi)
{
	free(*v);
	*n = ctl_parse_size_list(arg, v);
	if (*n < 0)
		die_usage("--%s: not a list of sizes/numbers: '%s'", name, arg);
	for (int i = 0; i < *n; i++)
		if ((*v)[i] < lo || (*v)[i] > hi)
			die_usage("--%s: %llu out of range [%llu, %llu]", name,
				  (unsigned long long)(*v)[i], (unsigned long long)lo,
				  (unsigned long long)hi);
}

static unsigned int num_opt(const char *name, const char *arg, unsigned int lo)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (*end || v < lo || v > 100000000)
		die_usage("--%s: bad number '%s'", name, arg);
	return (unsigned int)v;
}

static void parse(int argc, char **argv)
{
	enum { O_ITER = 256, O_NODMA, O_POLICY, O_PINNED, O_QD, O_IO, O_CLIENTS, O_FILE, O_DMA,
	       O_SHRINK, O_FROUNDS, O_FCPUS, O_DEVSZ, O_RTMO, O_SRC, O_PT, O_NOPT, O_JSON,
	       O_PLOT, O_QUIET, O_HELP, O_JSONF };
	static const struct option lo[] = {
		{ "iterations", 1, 0, O_ITER }, { "nodma-iterations", 1, 0, O_NODMA },
		{ "policy", 1, 0, O_POLICY }, { "pinned", 1, 0, O_PINNED }, { "qd", 1, 0, O_QD },
		{ "io-size", 1, 0, O_IO }, { "clients", 1, 0, O_CLIENTS },
		{ "file-size", 1, 0, O_FILE }, { "dma", 1, 0, O_DMA }, { "shrink", 1, 0, O_SHRINK },
		{ "futex-rounds", 1, 0, O_FROUNDS }, { "futex-cpus", 1, 0, O_FCPUS },
		{ "device-size", 1, 0, O_DEVSZ }, { "recall-timeout", 1, 0, O_RTMO },
		{ "source-dir", 1, 0, O_SRC }, { "passthrough-ll", 1, 0, O_PT },
		{ "no-passthrough", 0, 0, O_NOPT }, { "json", 0, 0, O_JSON },
		{ "plot", 1, 0, O_PLOT }, { "quiet", 0, 0, O_QUIET }, { "help", 0, 0, O_HELP },
		{ "json-file", 1, 0, O_JSONF }, { "version", 0, 0, 'V' },
		{ 0, 0, 0, 0 } };
	char *pol = "default";
	int c;
	int nodma = -1;

	O.iterations = 1000;
	O.futex_rounds = 2000;
	O.device_size = 512 * UDAX_MIB;
	O.source_dir = "/dev/shm";
	O.futex_cpu_a = 0;
	O.futex_cpu_b = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
	list_opt("qd", "8", &O.qd, &O.nqd, 1, 4096);
	list_opt("io-size", "64K", &O.io_size, &O.nio, 512, 64 * UDAX_MIB);
	list_opt("clients", "1", &O.clients, &O.nclients, 1, BENCH_MAX_CLIENTS);
	list_opt("file-size", "4M", &O.file_size, &O.nfile, 4096, 64 * UDAX_GIB);
	optind = 1;
	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case O_ITER: O.iterations = num_opt("iterations", optarg, 1); break;
		case O_NODMA: nodma = (int)num_opt("nodma-iterations", optarg, 1); break;
		case O_POLICY: pol = optarg; break;
		case O_PINNED: list_opt("pinned", optarg, &O.pinned, &O.npinned, 4096, 64 * UDAX_GIB); break;
		case O_QD: list_opt("qd", optarg, &O.qd, &O.nqd, 1, 4096); break;
		case O_IO: list_opt("io-size", optarg, &O.io_size, &O.nio, 512, 64 * UDAX_MIB); break;
		case O_CLIENTS: list_opt("clients", optarg, &O.clients, &O.nclients, 1, BENCH_MAX_CLIENTS); break;
		case O_FILE: list_opt("file-size", optarg, &O.file_size, &O.nfile, 4096, 64 * UDAX_GIB); break;
		case O_DMA:
			if (strcmp(optarg, "read") && strcmp(optarg, "write"))
				die_usage("--dma: read or write, not '%s'", optarg);
			O.dma_write = !strcmp(optarg, "write");
			break;
		case O_SHRINK:
			if (strcmp(optarg, "zero") && strcmp(optarg, "half") && strcmp(optarg, "0"))
				die_usage("--shrink: zero or half, not '%s'", optarg);
			O.shrink_half = !strcmp(optarg, "half");
			break;
		case O_FROUNDS: O.futex_rounds = num_opt("futex-rounds", optarg, 10); break;
		case O_FCPUS:
			if (sscanf(optarg, "%d,%d", &O.futex_cpu_a, &O.futex_cpu_b) != 2 ||
			    O.futex_cpu_a < 0 || O.futex_cpu_b < 0)
				die_usage("--futex-cpus: A,B expected, not '%s'", optarg);
			break;
		case O_DEVSZ:
			if (dx_parse_size(optarg, &O.device_size) < 0 || O.device_size < 16 * UDAX_MIB)
				die_usage("--device-size: bad size '%s' (at least 16M)", optarg);
			break;
		case O_RTMO: O.recall_timeout_ms = num_opt("recall-timeout", optarg, 1); break;
		case O_SRC: O.source_dir = optarg; break;
		case O_PT: O.passthrough = optarg; break;
		case O_NOPT: O.no_passthrough = true; break;
		case O_JSON: O.json = true; break;
		case O_PLOT: O.plot = optarg; break;
		case O_JSONF: O.json_file = optarg; break;
		case O_QUIET: O.quiet = true; break;
		case O_HELP: case 'h': help(); exit(0);
		case 'V': exit(ctl_version());
		default: die_usage("bad option");
		}
	}
	if (optind < argc)
		O.mountpoint = argv[optind++];
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	O.nodma_iterations = nodma > 0 ? (unsigned int)nodma : O.iterations;

	char *dup = strdup(pol), *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "default") && strcmp(t, "untrack-first") && strcmp(t, "unsafe"))
			die_usage("--policy: unknown policy '%s' (default, untrack-first, unsafe)", t);
		O.policies = realloc(O.policies, (size_t)(O.npolicies + 1) * sizeof(char *));
		O.policies[O.npolicies++] = t;
	}
	if (!O.npolicies)
		die_usage("--policy: empty list");
	if (O.mountpoint && O.npolicies > 1)
		die_usage("with a MOUNTPOINT the mount's own dax_policy applies: give at most one "
			  "--policy (it labels the results)");
	if (O.mountpoint && O.recall_timeout_ms)
		die_usage("--recall-timeout is a mount option: only for the bench's own mounts");
	snprintf(O.tag, sizeof(O.tag), "udaxbench-%d", (int)getpid());
}

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int run_policy(const char *mnt, const char *policy, unsigned int *done, unsigned int total)
{
	int ret = 0;

	for (int a = 0; a < O.nfile; a++)
	for (int b = 0; b < (O.npinned ? O.npinned : 1); b++)
	for (int q = 0; q < O.nqd; q++)
	for (int s = 0; s < O.nio; s++)
	for (int k = 0; k < O.nclients; k++) {
		struct result *r = &R[nres++];

		memset(r, 0, sizeof(*r));
		r->bc.policy = policy;
		r->bc.file_size = UDAX_ALIGN_UP(O.file_size[a], 4096);
		/* pin inside the part the truncate cuts off, or it recalls nothing */
		r->bc.pin_off = shrink_to(r->bc.file_size);
		r->bc.pinned = r->bc.file_size - r->bc.pin_off;
		if (O.npinned)
			r->bc.pinned = dx_min(UDAX_ALIGN_UP(O.pinned[b], 4096), r->bc.pinned);
		r->bc.qd = O.qd[q];
		r->bc.io_size = dx_min(O.io_size[s], r->bc.pinned);
		r->bc.clients = O.clients[k];
		r->bc.dma_write = O.dma_write;
		prog("case %u/%u: %s", ++*done, total, policy);
		int rc = run_case(mnt, r);
		if (rc < 0 && !ret)
			ret = rc;
		if (interrupted)
			return -EINTR;
	}
	return ret;
}

int bench_truncate_dma(int argc, char **argv)
{
	unsigned int per;
	unsigned int done = 0, total;
	int ret = 0, rc;

	parse(argc, argv);
	prog_start();
	per = (unsigned int)(O.nfile * (O.npinned ? O.npinned : 1) * O.nqd * O.nio * O.nclients);
	total = per * (unsigned int)O.npolicies;
	R = calloc(total, sizeof(*R));
	if (!R)
		return 1;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	signal(SIGPIPE, SIG_IGN);

	if (O.mountpoint) {
		char type[256] = "";

		rc = ctl_is_udaxfs_mount(O.mountpoint, type, sizeof(type));
		if (rc <= 0) {
			fprintf(stderr, "udaxctl bench: %s: %s\n", O.mountpoint,
				rc < 0 ? strerror(-rc) : type[0] ? "not a udaxfs mount (it is a different file system)"
					: "not a udaxfs mount point");
			return 1;
		}
	}

	/* the floor: futex ping-pong across two CPUs, and on one CPU */
	prog("futex ping-pong floor");
	snprintf(futex_cross_desc, sizeof(futex_cross_desc), "processes pinned to cpu%d and cpu%d",
		 O.futex_cpu_a, O.futex_cpu_b);
	snprintf(futex_same_desc, sizeof(futex_same_desc), "both processes pinned to cpu%d",
		 O.futex_cpu_a);
	if ((rc = futex_pingpong(O.futex_rounds, O.futex_cpu_a, O.futex_cpu_b, &futex_cross)) < 0 ||
	    (rc = futex_pingpong(O.futex_rounds, O.futex_cpu_a, O.futex_cpu_a, &futex_same)) < 0)
		fprintf(stderr, "udaxctl bench: futex ping-pong: %s\n", strerror(-rc));

	/* the peer: passthrough_ll over tmpfs */
	if (!O.no_passthrough) {
		prog("passthrough_ll no-DMA truncate");
		rc = measure_passthrough();
		if (rc < 0)
			fprintf(stderr, "udaxctl bench: passthrough_ll not measured: %s%s\n",
				strerror(-rc), rc == -ENOENT ? " (bench-passthrough_ll is looked for "
				"beside udaxctl, in " UDAX_PKGLIBEXECDIR " and in PATH; it is built "
				"from libfuse3-dev's example passthrough_ll.c: install libfuse3-dev "
				"and rebuild, or give --passthrough-ll PATH)" : "");
	}

	for (int p = 0; p < O.npolicies && !interrupted; p++) {
		if (O.mountpoint) {
			rc = run_policy(O.mountpoint, O.policies[p], &done, total);
		} else {
			struct selfmount sm = { .mounted = false };

			rc = self_mount(&sm, O.policies[p]);
			if (rc == 0)
				rc = run_policy(sm.mnt, O.policies[p], &done, total);
			self_unmount(&sm);
		}
		if (rc < 0 && !ret)
			ret = rc;
	}
	prog_done();
	if (O.json)
		print_json_full(stdout);
	else
		print_table(stdout);
	fflush(stdout);
	if (O.json_file) {
		FILE *jf = fopen(O.json_file, "w");

		if (jf) {
			print_json_full(jf);
			if (fclose(jf) != 0)
				jf = NULL;
		}
		if (!jf)
			fprintf(stderr, "udaxctl bench: %s: %s\n", O.json_file, strerror(errno));
	}
	if (O.plot && nres)
		if ((rc = write_plot(O.plot)) < 0)
			fprintf(stderr, "udaxctl bench: plot %s not written: %s\n", O.plot, strerror(-rc));
	if (interrupted) {
		fprintf(stderr, "udaxctl bench: interrupted\n");
		return 130;
	}
	return ret < 0 ? 1 : 0;
}
