// SPDX-License-Identifier: MIT
/*
 * udaxctl_status.c - udaxctl status MOUNTPOINT [--json], and the client
 * side of the layout socket that udaxctl uses (udax_proto.h): a HELLO
 * ioctl on the mount point names the daemon's socket; UDAX_REQ_STATUS
 * returns a JSON document, which --json prints as is and the default
 * output turns into tables per client and per file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "udaxctl.h"
#include "wire.h"

/* ---- the layout socket (through wire.h, the library's own client) ---- */

int ctl_daemon_connect(const char *path, struct udax_wire **out)
{
	struct udax_ioc_hello h;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = udax_wire_hello(fd, &h);
	close(fd);
	if (ret < 0)
		return ret;
	if (h.sock[0] == '\0')
		return -EPROTO;
	return udax_wire_open(out, h.sock);
}

int ctl_daemon_request(struct udax_wire *w, uint16_t type, const void *payload, uint32_t len,
		       void **rep, uint32_t *rep_len)
{
	void *buf = NULL;
	int ret = udax_wire_call(w, type, payload, len, &buf, rep_len, NULL);

	if (ret < 0) {
		if (buf && *rep_len)
			fprintf(stderr, "udaxctl: daemon: %s\n", (char *)buf);
		free(buf);
		return ret;
	}
	if (!buf) {
		buf = calloc(1, 1);	/* an empty reply: still a string */
		if (!buf)
			return -ENOMEM;
	}
	*rep = buf;
	return 0;
}

int udaxctl_fetch_breaks(int fd, struct bench_break *out, unsigned int max)
{
	char path[64];
	struct udax_wire *w = NULL;
	void *rep;
	uint32_t len;
	int ret;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = ctl_daemon_connect(path, &w);
	if (ret < 0)
		return ret;
	ret = ctl_daemon_request(w, UDAX_REQ_BREAKS, NULL, 0, &rep, &len);
	udax_wire_put(&w);
	if (ret < 0)
		return ret;
	const struct udax_break_rec *b = rep;
	unsigned int n = len / sizeof(*b), skip = n > max ? n - max : 0;
	for (unsigned int i = skip; i < n; i++) {
		struct bench_break *o = &out[i - skip];

		o->ino = b[i].ino;
		o->t_start = b[i].t_start;
		o->t_recall_sent = b[i].t_recall_sent;
		o->t_last_unpin = b[i].t_last_unpin;
		o->t_idle = b[i].t_idle;
		o->t_done = b[i].t_done;
		o->t_freed = b[i].t_freed;
		o->start = b[i].start;
		o->end = b[i].end;
	}
	free(rep);
	return (int)(n - skip);
}

/* ---- a small JSON reader, enough for the status document ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jv {
	enum jtype t;
	double num;
	bool b;
	char *str;
	struct jv **items;	/* array items, or object values */
	char **keys;		/* object keys */
	size_t n;
};

static void jfree(struct jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jfree(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
		(*p)++;
}

static char *jparse_str(const char **p)
{
	const char *s = *p + 1;
	size_t cap = 16, n = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	for (; *s && *s != '"'; s++) {
		char c = *s;

		if (c == '\\') {
			s++;
			switch (*s) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned int u = 0;

				if (sscanf(s + 1, "%4x", &u) != 1) {
					free(out);
					return NULL;
				}
				s += 4;
				c = u < 0x80 ? (char)u : '?';
				break;
			}
			case '\0': free(out); return NULL;
			default: c = *s;
			}
		}
		if (n + 2 > cap) {
			char *nb = realloc(out, cap *= 2);

			if (!nb) {
				free(out);
				return NULL;
			}
			out = nb;
		}
		out[n++] = c;
	}
	if (*s != '"') {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*p = s + 1;
	return out;
}

static struct jv *jparse(const char **p, int depth)
{
	struct jv *v = calloc(1, sizeof(*v));

	if (!v || depth > 32)
		goto bad;
	skip_ws(p);
	if (**p == '{' || **p == '[') {
		bool obj = **p == '{';
		char close = obj ? '}' : ']';

		v->t = obj ? J_OBJ : J_ARR;
		(*p)++;
		skip_ws(p);
		if (**p == close) {
			(*p)++;
			return v;
		}
		for (;;) {
			char *key = NULL;

			skip_ws(p);
			if (obj) {
				if (**p != '"' || !(key = jparse_str(p)))
					goto bad;
				skip_ws(p);
				if (**p != ':') {
					free(key);
					goto bad;
				}
				(*p)++;
			}
			struct jv *it = jparse(p, depth + 1);
			if (!it) {
				free(key);
				goto bad;
			}
			struct jv **ni = realloc(v->items, (v->n + 1) * sizeof(*ni));
			char **nk = obj ? realloc(v->keys, (v->n + 1) * sizeof(*nk)) : NULL;
			if (!ni || (obj && !nk)) {
				free(ni ? ni : v->items);
				v->items = NULL;
				jfree(it);
				free(key);
				goto bad;
			}
			v->items = ni;
			if (obj) {
				v->keys = nk;
				v->keys[v->n] = key;
			}
			v->items[v->n++] = it;
			skip_ws(p);
			if (**p == ',') {
				(*p)++;
				continue;
			}
			if (**p == close) {
				(*p)++;
				return v;
			}
			goto bad;
		}
	}
	if (**p == '"') {
		v->t = J_STR;
		if (!(v->str = jparse_str(p)))
			goto bad;
		return v;
	}
	if (!strncmp(*p, "true", 4) || !strncmp(*p, "false", 5)) {
		v->t = J_BOOL;
		v->b = **p == 't';
		*p += v->b ? 4 : 5;
		return v;
	}
	if (!strncmp(*p, "null", 4)) {
		*p += 4;
		return v;
	}
	{
		char *end;

		v->t = J_NUM;
		v->num = strtod(*p, &end);
		if (end == *p)
			goto bad;
		*p = end;
		return v;
	}
bad:
	jfree(v);
	return NULL;
}

static struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return o->items[i];
	return NULL;
}

static double jnum(const struct jv *o, const char *key)
{
	struct jv *v = jget(o, key);

	return v && v->t == J_NUM ? v->num : v && v->t == J_BOOL ? v->b : 0;
}

static const char *jstr(const struct jv *o, const char *key)
{
	struct jv *v = jget(o, key);

	return v && v->t == J_STR ? v->str : "";
}

static bool jbool(const struct jv *o, const char *key)
{
	struct jv *v = jget(o, key);

	return v && v->t == J_BOOL && v->b;
}

static size_t jlen(const struct jv *a)
{
	return a && a->t == J_ARR ? a->n : 0;
}

/* ---- the human-readable report ---- */

static char *age(double ns, char *buf, size_t len)
{
	double s = ns / 1e9;

	if (s < 1e-3)
		snprintf(buf, len, "%.0fus", ns / 1e3);
	else if (s < 1)
		snprintf(buf, len, "%.1fms", ns / 1e6);
	else if (s < 120)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0fm%02.0fs", s / 60 - 0.5, s - 60 * (double)(long)(s / 60));
	else
		snprintf(buf, len, "%.1fh", s / 3600);
	return buf;
}

/* ino -> path below the mount, for the per-file table (best effort, bounded) */
static struct {
	uint64_t *ino;
	char **path;
	size_t n, want;
	size_t visited;
	uint64_t *wanted;
	size_t nwanted;
	size_t mnt_len;
} ipath;

static FILE *ipath_out;		/* the resolving child streams its finds here */

static int ipath_visit(const char *fpath, const struct stat *st, int flag, struct FTW *f)
{
	(void)flag; (void)f;
	if (++ipath.visited > 20000)
		return 1;
	for (size_t i = 0; i < ipath.nwanted; i++) {
		if (ipath.wanted[i] != (uint64_t)st->st_ino)
			continue;
		uint64_t *ni = realloc(ipath.ino, (ipath.n + 1) * sizeof(*ni));
		char **np = realloc(ipath.path, (ipath.n + 1) * sizeof(*np));
		if (ni)
			ipath.ino = ni;
		if (np)
			ipath.path = np;
		if (!ni || !np)
			return 1;
		ipath.ino[ipath.n] = (uint64_t)st->st_ino;
		ipath.path[ipath.n++] = strdup(fpath + ipath.mnt_len);
		if (ipath_out) {
			fprintf(ipath_out, "%llu %s\n", (unsigned long long)st->st_ino,
				fpath + ipath.mnt_len);
			fflush(ipath_out);
		}
	}
	return 0;
}

/*
 * Find the names of the wanted inodes, in a child with a deadline: a stat()
 * of a file whose truncate is waiting for a pin blocks until the truncate
 * ends (the daemon holds the inode's lock meanwhile), and that is exactly
 * when status is wanted.  Names not found in time print as "?".
 */
static void resolve_paths(const char *mnt)
{
	int pfd[2];
	pid_t pid;

	ipath.mnt_len = strlen(mnt);
	while (ipath.mnt_len > 1 && mnt[ipath.mnt_len - 1] == '/')
		ipath.mnt_len--;
	if (pipe(pfd) < 0)
		return;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	if (pid == 0) {
		FILE *o;

		close(pfd[0]);
		o = fdopen(pfd[1], "w");
		ipath_out = o;
		if (o) {
			nftw(mnt, ipath_visit, 16, FTW_PHYS | FTW_MOUNT);
			fclose(o);
		}
		_exit(0);
	}
	close(pfd[1]);
	char buf[65536];
	size_t got = 0;
	uint64_t end = ctl_now_ns() + 1000000000ull;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		uint64_t now = ctl_now_ns();

		if (now >= end || got + 1 >= sizeof(buf))
			break;
		if (poll(&p, 1, (int)((end - now) / 1000000 + 1)) <= 0)
			break;
		ssize_t n = read(pfd[0], buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pfd[0]);
	kill(pid, SIGKILL);	/* a child stuck on a blocked stat() */
	waitpid(pid, NULL, 0);
	buf[got] = '\0';
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');
		uint64_t *ni;
		char **np;

		if (!sp)
			continue;
		*sp = '\0';
		ni = realloc(ipath.ino, (ipath.n + 1) * sizeof(*ni));
		if (ni)
			ipath.ino = ni;
		np = realloc(ipath.path, (ipath.n + 1) * sizeof(*np));
		if (np)
			ipath.path = np;
		if (!ni || !np)
			break;
		ipath.ino[ipath.n] = strtoull(l, NULL, 10);
		ipath.path[ipath.n++] = strdup(sp + 1);
	}
}

static const char *ino_path(uint64_t ino)
{
	for (size_t i = 0; i < ipath.n; i++)
		if (ipath.ino[i] == ino && ipath.path[i])
			return ipath.path[i][0] ? ipath.path[i] : "/";
	return "?";
}

static void want_ino(uint64_t ino)
{
	for (size_t i = 0; i < ipath.nwanted; i++)
		if (ipath.wanted[i] == ino)
			return;
	uint64_t *n = realloc(ipath.wanted, (ipath.nwanted + 1) * sizeof(*n));
	if (!n)
		return;
	ipath.wanted = n;
	ipath.wanted[ipath.nwanted++] = ino;
}

/* The asking udaxctl is a client too while it asks: leave it out of the tables. */
static bool is_me(const struct jv *cl)
{
	struct jv *pid = jget(cl, "pid");

	return pid && pid->t == J_NUM && (pid_t)pid->num == getpid() && !jlen(jget(cl, "layouts"));
}

static void print_human(const char *mnt, const struct jv *doc)
{
	struct jv *dax = jget(doc, "dax"), *clients = jget(doc, "clients");
	struct jv *pages = jget(doc, "pages"), *waiters = jget(doc, "waiters");
	char a1[32], a2[32];

	printf("udaxfs %s, daemon pid %.0f\n", mnt, jnum(doc, "pid"));
	printf("  tracked entries %.0f, live handles %.0f, busy %.0f, waiting truncates %.0f, "
	       "handle memory %.0f bytes%s\n",
	       jnum(dax, "tracked_entries"), jnum(dax, "live_handles"), jnum(dax, "busy_handles"),
	       jnum(dax, "waiters"), jnum(dax, "handle_bytes"),
	       jnum(dax, "unsafe_frees") ? " (UNSAFE policy: blocks freed under pins)" : "");

	/* collect the inodes for the per-file table */
	for (size_t c = 0; c < jlen(clients); c++) {
		struct jv *ls = jget(clients->items[c], "layouts");

		for (size_t l = 0; l < jlen(ls); l++)
			want_ino((uint64_t)jnum(ls->items[l], "ino"));
	}
	for (size_t i = 0; i < jlen(pages); i++)
		want_ino((uint64_t)jnum(pages->items[i], "ino"));
	for (size_t i = 0; i < jlen(waiters); i++)
		want_ino((uint64_t)jnum(waiters->items[i], "ino"));
	if (ipath.nwanted)
		resolve_paths(mnt);

	size_t ncl = 0;
	for (size_t c = 0; c < jlen(clients); c++)
		ncl += !is_me(clients->items[c]);
	printf("\nclients: %zu\n", ncl);
	if (ncl)
		printf("  %-8s %-16s %-6s %-9s %7s %5s  %s\n", "PID", "COMMAND", "UID", "AGE",
		       "LAYOUTS", "PINS", "STATE");
	for (size_t c = 0; c < jlen(clients); c++) {
		struct jv *cl = clients->items[c], *ls = jget(cl, "layouts");
		double pins = 0;

		if (is_me(cl))
			continue;

		for (size_t l = 0; l < jlen(ls); l++)
			pins += jnum(ls->items[l], "pins");
		struct jv *pidv = jget(cl, "pid");
		char pid[24];
		if (pidv && pidv->t == J_NUM)
			snprintf(pid, sizeof(pid), "%.0f", pidv->num);
		else
			snprintf(pid, sizeof(pid), "-");
		printf("  %-8s %-16s %-6.0f %-9s %7zu %5.0f  %s\n", pid,
		       jstr(cl, "comm")[0] ? jstr(cl, "comm") : "-", jnum(cl, "uid"),
		       age(jnum(cl, "age_ns"), a1, sizeof(a1)), jlen(ls), pins,
		       jbool(cl, "alive") ? "alive" : "exited (references held until released)");
	}

	printf("\nlayouts:\n");
	size_t nl = 0;
	for (size_t c = 0; c < jlen(clients); c++) {
		struct jv *cl = clients->items[c], *ls = jget(cl, "layouts");

		for (size_t l = 0; l < jlen(ls); l++) {
			struct jv *L = ls->items[l];

			if (!nl++)
				printf("  %-8s %-10s %-24s %12s %12s %-3s %-6s %4s %-9s %-9s %s\n", "PID",
				       "INO", "FILE", "OFFSET", "LENGTH", "RW", "MAPPED", "PINS",
				       "AGE", "PIN AGE", "STATE");
			struct jv *pidv = jget(cl, "pid");
			char pid[24];
			if (pidv && pidv->t == J_NUM)
				snprintf(pid, sizeof(pid), "%.0f", pidv->num);
			else
				snprintf(pid, sizeof(pid), "-");
			uint64_t ino = (uint64_t)jnum(L, "ino");
			printf("  %-8s %-10llu %-24s %12.0f %12.0f %-3s %-6s %4.0f %-9s %-9s %s\n", pid,
			       (unsigned long long)ino, ino_path(ino), jnum(L, "off"), jnum(L, "len"),
			       jbool(L, "writable") ? "rw" : "r", jbool(L, "mapped") ? "yes" : "no",
			       jnum(L, "pins"), age(jnum(L, "age_ns"), a1, sizeof(a1)),
			       jnum(L, "pins") ? age(jnum(L, "pin_age_ns"), a2, sizeof(a2)) : "-",
			       jbool(L, "recalling") ? "recalling" : "");
		}
	}
	if (!nl)
		printf("  (none)\n");

	/* per file: pages with references, and who waits on them */
	printf("\nfiles with referenced pages:\n");
	size_t nf = 0;
	for (size_t w = 0; w < ipath.nwanted; w++) {
		uint64_t ino = ipath.wanted[w];
		double np = 0, pins = 0, maps = 0, refs = 0, oldest = 0;
		size_t nw = 0;
		double longest = 0;

		for (size_t i = 0; i < jlen(pages); i++) {
			struct jv *P = pages->items[i];

			if ((uint64_t)jnum(P, "ino") != ino)
				continue;
			np += 1;
			pins += jnum(P, "pincount");
			maps += jnum(P, "mapcount");
			refs += jnum(P, "refcount");
			if (jnum(P, "age_ns") > oldest)
				oldest = jnum(P, "age_ns");
		}
		for (size_t i = 0; i < jlen(waiters); i++)
			if ((uint64_t)jnum(waiters->items[i], "ino") == ino) {
				nw++;
				if (jnum(waiters->items[i], "waiting_ns") > longest)
					longest = jnum(waiters->items[i], "waiting_ns");
			}
		if (!np && !nw)
			continue;
		if (!nf++)
			printf("  %-10s %-24s %6s %8s %8s %8s %-9s %7s %s\n", "INO", "FILE", "PAGES",
			       "REFS", "MAPS", "PINS", "OLDEST", "WAITERS", "LONGEST WAIT");
		printf("  %-10llu %-24s %6.0f %8.0f %8.0f %8.0f %-9s %7zu %s\n",
		       (unsigned long long)ino, ino_path(ino), np, refs, maps, pins,
		       age(oldest, a1, sizeof(a1)), nw, nw ? age(longest, a2, sizeof(a2)) : "-");
	}
	if (!nf)
		printf("  (none)\n");

	printf("\nwaiters (truncate / punch / unlink waiting for pages to go idle):\n");
	for (size_t i = 0; i < jlen(waiters); i++) {
		struct jv *W = waiters->items[i];
		uint64_t ino = (uint64_t)jnum(W, "ino");
		double end = jnum(W, "end");
		char e[32];

		if (end < 0)
			snprintf(e, sizeof(e), "EOF");
		else
			snprintf(e, sizeof(e), "%.0f", end);
		printf("  ino %llu (%s) pages %.0f..%s: waiting %s on page %.0f (pfn %.0f, refcount %.0f)\n",
		       (unsigned long long)ino, ino_path(ino), jnum(W, "start"), e,
		       age(jnum(W, "waiting_ns"), a1, sizeof(a1)), jnum(W, "wait_index"),
		       jnum(W, "wait_pfn"), jnum(W, "refcount"));
	}
	if (!jlen(waiters))
		printf("  (none)\n");
}

static void status_usage(FILE *f)
{
	fprintf(f,
		"Usage: udaxctl status MOUNTPOINT [--json]\n"
		"Show a udaxfs mount's direct-access clients, their mappings and pins,\n"
		"and every truncate or punch waiting for a page to become idle.\n"
		"\n"
		"  -j, --json     print the daemon's report as one JSON object\n"
		"  -h, --help     print this help and exit\n"
		"  -V, --version  print the version and exit\n");
}

int udaxctl_status(int argc, char **argv)
{
	static const struct option lo[] = { { "json", 0, 0, 'j' }, { "help", 0, 0, 'h' },
					    { "version", 0, 0, 'V' }, { 0, 0, 0, 0 } };
	bool json = false;
	const char *mnt;
	char type[256] = "";
	void *rep = NULL;
	uint32_t len;
	struct udax_wire *w = NULL;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jhV", lo, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'h') {
			status_usage(stdout);
			return 0;
		} else if (c == 'V') {
			return ctl_version();
		} else {
			status_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		status_usage(stderr);
		return 2;
	}
	mnt = argv[optind];
	ret = ctl_is_udaxfs_mount(mnt, type, sizeof(type));
	if (ret <= 0) {
		if (ret < 0)
			fprintf(stderr, "udaxctl status: %s: %s\n", mnt, strerror(-ret));
		else if (type[0])
			fprintf(stderr, "udaxctl status: %s is not a udaxfs mount (it is %s)\n", mnt,
				type);
		else
			fprintf(stderr, "udaxctl status: %s is not a mount point (no udaxfs mounted there)\n",
				mnt);
		return 1;
	}
	ret = ctl_daemon_connect(mnt, &w);
	if (ret < 0) {
		fprintf(stderr, "udaxctl status: %s: cannot reach the daemon's layout service: %s\n",
			mnt, strerror(-ret));
		return 1;
	}
	ret = ctl_daemon_request(w, UDAX_REQ_STATUS, NULL, 0, &rep, &len);
	udax_wire_put(&w);
	if (ret < 0) {
		fprintf(stderr, "udaxctl status: %s: status request failed: %s\n", mnt, strerror(-ret));
		return 1;
	}
	const char *p = rep;
	struct jv *doc = jparse(&p, 0);
	if (!doc || doc->t != J_OBJ) {
		fprintf(stderr, "udaxctl status: %s: the daemon's status is not valid JSON\n", mnt);
		jfree(doc);
		free(rep);
		return 1;
	}
	if (json) {
		fputs(rep, stdout);
		if (len && ((char *)rep)[strlen(rep) - 1] != '\n')
			putchar('\n');
	} else {
		print_human(mnt, doc);
	}
	jfree(doc);
	free(rep);
	return 0;
}
