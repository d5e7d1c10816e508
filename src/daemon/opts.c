/* SPDX-License-Identifier: MIT */
/*
 * opts.c - the udaxfs command line.
 *
 *   udaxfs DEVICE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s] [-h] [-V]
 *
 * Mount options come in three kinds:
 *  - ours (emul_align, dax_policy, recall_timeout, dax_allow, max_threads),
 *    consumed here and never shown to libfuse;
 *  - standard ones libfuse or the kernel understand (allow_other, ro,
 *    nosuid, noatime, ...), passed through;
 *  - the ones mount(8), mount.fuse3 and fstab use for themselves (_netdev,
 *    nofail, noauto, user, x-systemd.*, ...), dropped.
 * Anything else is refused here, before anything is opened, so that a typo
 * in fstab fails loudly instead of being half-applied.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "core/util.h"

/* Passed to libfuse as they are (mount flags and kernel options). */
static const char *const pass_opts[] = {
	"allow_other", "default_permissions", "auto_unmount",
	"rw", "ro", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
	"async", "sync", "dirsync", "atime", "noatime", "diratime", "nodiratime",
	"lazytime", "nolazytime", "relatime", "norelatime", "strictatime",
	"nostrictatime",
	NULL
};

/* Options with a value that are passed to libfuse as they are. */
static const char *const pass_prefix[] = {
	"fsname=", "max_read=",
	NULL
};

/* What mount(8), mount.fuse3 and fstab keep for themselves: ignored. */
static const char *const ignore_opts[] = {
	"_netdev", "nofail", "noauto", "auto", "user", "nouser", "users",
	"owner", "group", "defaults", "loud", "silent",
	NULL
};
static const char *const ignore_prefix[] = {
	"x-", "comment=", "user=", "subtype=", "helper=",
	NULL
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static bool has_prefix(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strncmp(*list, s, strlen(*list)) == 0)
			return true;
	return false;
}

/* Append @opt to the comma list *@list, escaping ',' and '\' when @escape. */
static int add_opt(char **list, const char *opt, bool escape)
{
	size_t old = *list ? strlen(*list) : 0;
	size_t need = old + 2 * strlen(opt) + 2;
	char *n = realloc(*list, need);
	char *p;

	if (!n)
		return -ENOMEM;
	p = n + old;
	if (old)
		*p++ = ',';
	for (; *opt; opt++) {
		if (escape && (*opt == ',' || *opt == '\\'))
			*p++ = '\\';
		*p++ = *opt;
	}
	*p = '\0';
	*list = n;
	return 0;
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("udaxfs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return -EINVAL;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* One item of a dax_allow list: uid:N, gid:N or all. */
static bool allow_item_ok(const char *s)
{
	if (strcmp(s, "all") == 0)
		return true;
	if (strncmp(s, "uid:", 4) && strncmp(s, "gid:", 4))
		return false;
	s += 4;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* A mount option that takes a whole number, and where the number goes. */
struct num_opt {
	const char *name;		/* with its '=' */
	uint64_t min, max;
	const char *what;		/* the error's "not a number ..." */
	uint64_t *u64;			/* one of these two */
	unsigned int *uint;
};

/*
 * An option NAME=N of those that take a whole number.
 * Return: 0 (set), 1 (@opt is none of them) or -EINVAL (message printed).
 */
static int parse_num(struct udaxd_opts *o, const char *opt)
{
	const struct num_opt nums[] = {
		{ "recall_timeout=", 0, UINT64_MAX / 1000000, "of milliseconds",
		  &o->recall_timeout_ms, NULL },
		{ "uring_qdepth=", 1, 256, "from 1 to 256", NULL, &o->uring_qdepth },
		{ "poll_us=", 0, 1000000, "of microseconds up to 1000000", &o->poll_us, NULL },
		{ "wait_clients=", 0, 86400, "of seconds from 0 to 86400", NULL, &o->wait_clients_s },
		{ "max_threads=", 1, 1024, "from 1 to 1024", NULL, &o->max_threads },
	};
	size_t i;

	for (i = 0; i < UDAX_ARRAY_SIZE(nums); i++) {
		const struct num_opt *t = &nums[i];
		size_t len = strlen(t->name);
		uint64_t n;

		if (strncmp(opt, t->name, len) != 0)
			continue;
		if (parse_u64(opt + len, &n) || n < t->min || n > t->max)
			return bad("%s: not a number %s", opt, t->what);
		if (t->u64)
			*t->u64 = n;
		else
			*t->uint = (unsigned int)n;
		return 0;
	}
	return 1;
}

/* One option of a -o list.  Return: 0 or -EINVAL (message printed). */
static int parse_one(struct udaxd_opts *o, const char *opt, bool *have_fsname)
{
	const char *v = strchr(opt, '=');
	uint64_t n;
	int rc;

	rc = parse_num(o, opt);
	if (rc <= 0)
		return rc;
	if (strncmp(opt, "emul_align=", 11) == 0) {
		if (dx_parse_size(v + 1, &n) || !UDAX_IS_POW2(n) || n < 4096)
			return bad("emul_align=%s: not a power of two >= 4096", v + 1);
		o->emul_align = n;
		return 0;
	}
	if (strncmp(opt, "dax_policy=", 11) == 0) {
		if (dx_policy_parse(v + 1, &o->policy))
			return bad("dax_policy=%s: unknown policy (default, untrack-first or unsafe)",
				   v + 1);
		return 0;
	}
	if (strncmp(opt, "dax_allow=", 10) == 0) {
		if (!allow_item_ok(v + 1))
			return bad("dax_allow=%s: expected a list of uid:N, gid:N or all", v + 1);
		free(o->dax_allow);
		o->dax_allow = strdup(v + 1);
		return o->dax_allow ? 0 : -ENOMEM;
	}
	if (strncmp(opt, "timeout=", 8) == 0) {
		char *end;
		double t;

		errno = 0;
		t = strtod(v + 1, &end);
		if (errno || *end || end == v + 1 || !(t >= 0 && t <= 86400))
			return bad("timeout=%s: not a number of seconds from 0 to 86400", v + 1);
		o->timeout = t;
		return 0;
	}
	if (strcmp(opt, "libfuse_mt") == 0) {
		o->libfuse_mt = true;
		return 0;
	}
	if (strcmp(opt, "writeback_cache") == 0 || strcmp(opt, "no_writeback_cache") == 0) {
		o->writeback_cache = opt[0] == 'w';
		return 0;
	}
	if (strcmp(opt, "io_uring") == 0 || strcmp(opt, "no_io_uring") == 0) {
		o->io_uring = opt[0] == 'i';
		return 0;
	}
	if (strcmp(opt, "reader_loop") == 0) {
		o->libfuse_mt = false;
		return 0;
	}
	if (strcmp(opt, "quarantine=ignore") == 0) {
		o->quarantine_ignore = true;
		return 0;
	}
	if (strncmp(opt, "quarantine=", 11) == 0)
		return bad("quarantine=%s: the only value is 'ignore' (tests only: unsafe)", v + 1);
	if (in_list(ignore_opts, opt) || has_prefix(ignore_prefix, opt))
		return 0;
	if (strcmp(opt, "ro") == 0)
		o->readonly = true;
	else if (strcmp(opt, "rw") == 0)
		o->readonly = false;
	if (strncmp(opt, "fsname=", 7) == 0)
		*have_fsname = true;
	if (in_list(pass_opts, opt) || has_prefix(pass_prefix, opt))
		return add_opt(&o->fuse_opts, opt, false);
	return bad("unknown mount option '%s'", opt);
}

/* Split a -o argument at unescaped commas. */
static int parse_list(struct udaxd_opts *o, const char *list, bool *have_fsname)
{
	char *buf = malloc(strlen(list) + 1);
	bool in_allow = false;
	const char *s;
	char *d;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (s = list; ; ) {
		d = buf;
		while (*s && *s != ',') {
			if (*s == '\\' && s[1])
				s++;
			*d++ = *s++;
		}
		*d = '\0';
		if (in_allow && allow_item_ok(buf)) {
			/* -o dax_allow=uid:0,uid:1000: the list goes on */
			rc = add_opt(&o->dax_allow, buf, false);
		} else if (*buf) {
			in_allow = strncmp(buf, "dax_allow=", 10) == 0;
			rc = parse_one(o, buf, have_fsname);
		}
		if (rc)
			break;
		if (!*s)
			break;
		s++;
	}
	free(buf);
	return rc;
}

void udaxd_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s DEVICE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s] [-h] [-V]\n"
"\n"
"Mount the udaxfs file system on DEVICE (a /dev/daxX.Y device or an\n"
"emulation file made by mkfs.udaxfs) at MOUNTPOINT.\n"
"\n"
"  -f                 stay in the foreground\n"
"  -d                 print every FUSE request (implies -f)\n"
"  -s                 serve requests from a single thread\n"
"  -h, --help         print this help and exit\n"
"  -V, --version      print the version and exit\n"
"  -o OPTIONS         comma-separated mount options:\n"
"     ro, rw                 read-only or read-write (default rw)\n"
"     allow_other            let other users use the mount\n"
"     emul_align=SIZE        enforce a device-DAX alignment on an emulation file\n"
"     dax_policy=POLICY      default, untrack-first or unsafe\n"
"     recall_timeout=MS      fail a truncate blocked by a pin after MS ms\n"
"                            with EBUSY (0: wait, interruptibly, forever)\n"
"     dax_allow=LIST         who may map the device directly, e.g.\n"
"                            uid:1000,gid:100 (default: root and the owner)\n"
"     timeout=SEC            kernel caches names and attributes SEC s (1)\n"
"     writeback_cache        let the kernel cache writes; data is durable at\n"
"                            fsync or close, not when write() returns\n"
"     max_threads=N          at most N worker threads (default 64)\n"
"     reader_loop            one reader thread plus a watchdog instead of\n"
"                            libfuse's thread pool (helps on busy CPUs)\n"
"     poll_us=N              poll /dev/fuse N us before sleeping (0)\n"
"     io_uring               serve requests over io_uring, one queue per CPU\n"
"                            (needs the fuse module parameter\n"
"                            " UDAXD_URING_PARAM "=Y;\n"
"                            without it, says so and serves /dev/fuse)\n"
"     uring_qdepth=N         requests in flight per io_uring queue (%u)\n"
"     wait_clients=SEC       if processes still map or hold DEVICE (clients\n"
"                            of an earlier daemon), wait up to SEC s for them\n"
"                            to go instead of refusing the mount at once\n"
"     quarantine=ignore      TESTS ONLY, UNSAFE: reuse blocks that pins of an\n"
"                            earlier mount may still hold (see udaxfs(8))\n"
"     max_read=BYTES         the largest read request the kernel sends\n"
"     libfuse_mt             libfuse's thread pool (the default)\n"
"     and the usual: nosuid, nodev, noexec, noatime, auto_unmount, fsname=...\n"
"\n"
"See udaxfs(8).\n", prog, UDAXD_URING_QDEPTH);
}

/*
 * udaxd_parse_args() - see daemon.h.
 * Context: start-up, single-threaded.
 * Return: 0 or -EINVAL / -ENOMEM (message printed).
 */
int udaxd_parse_args(int argc, char **argv, struct udaxd_opts *o)
{
	bool have_fsname = false;
	int i, rc;

	memset(o, 0, sizeof(*o));
	o->policy = UDAX_POLICY_DEFAULT;
	o->timeout = 1.0;
	/* libfuse's pool: on an idle machine it answers a request in about
	 * half the time of the reader loop (contrib/bench/fs-bench.sh: stat
	 * 44k/s against 22k/s); the reader loop only wins when every CPU is
	 * busy, so it is an option (reader_loop) rather than the default. */
	o->libfuse_mt = true;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-o") == 0) {
			if (++i == argc)
				return bad("%s", "option -o needs an argument");
			rc = parse_list(o, argv[i], &have_fsname);
		} else if (strncmp(a, "-o", 2) == 0) {
			rc = parse_list(o, a + 2, &have_fsname);
		} else if (strcmp(a, "-f") == 0) {
			o->foreground = true;
			rc = 0;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
			o->debug = o->foreground = true;
			rc = 0;
		} else if (strcmp(a, "-s") == 0) {
			o->single_thread = true;
			rc = 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->show_help = true;
			return 0;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			o->show_version = true;
			return 0;
		} else if (a[0] == '-' && a[1]) {
			return bad("unknown option '%s' (see udaxfs -h)", a);
		} else if (!o->device) {
			o->device = a;
			rc = 0;
		} else if (!o->mountpoint) {
			o->mountpoint = a;
			rc = 0;
		} else {
			return bad("unexpected argument '%s' (see udaxfs -h)", a);
		}
		if (rc)
			return rc;
	}
	if (!o->device)
		return bad("%s (see udaxfs -h)", "missing DEVICE and MOUNTPOINT");
	if (!o->mountpoint)
		return bad("%s (see udaxfs -h)", "missing MOUNTPOINT");

	/*
	 * Permission checks are the kernel's, exactly as for a kernel file
	 * system: the core trusts that an operation reaching it was allowed.
	 */
	rc = add_opt(&o->fuse_opts, "default_permissions", false);
	if (!rc)
		rc = add_opt(&o->fuse_opts, "subtype=udaxfs", false);
	if (!rc && !have_fsname) {
		char *fsname = malloc(strlen(o->device) + 8);

		if (!fsname)
			return -ENOMEM;
		strcpy(fsname, "fsname=");
		strcat(fsname, o->device);
		rc = add_opt(&o->fuse_opts, fsname, true);
		free(fsname);
	}
	if (!rc && o->readonly)
		rc = add_opt(&o->fuse_opts, "ro", false);
	return rc;
}

void udaxd_free_opts(struct udaxd_opts *o)
{
	free(o->fuse_opts);
	free(o->dax_allow);
	free(o->mountpoint_abs);
	memset(o, 0, sizeof(*o));
}
