// SPDX-License-Identifier: MIT
/*
 * udaxctl_status.c - udaxctl status MOUNTPOINT [--json], and the client
 * side of the layout socket that udaxctl uses (udax_proto.h): a HELLO
 * ioctl on the mount point names the daemon's socket; UDAX_REQ_STATUS
 * returns status records (decoded by status.h), which --json writes as one
 * JSON object (with json-c, as daxctl does) and the default output turns
 * into tables per client and per file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <udax/udax_proto.h>

#include "lib/status.h"
#include "udaxctl.h"
#include "lib/wire.h"

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

/* ---- JSON (json-c): the records, with the keys udax_proto.h's fields name ---- */

static int jadd(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

#define J_U64(o, k, v) jadd(o, k, json_object_new_uint64(v))
#define J_I64(o, k, v) jadd(o, k, json_object_new_int64(v))
#define J_BOOL(o, k, v) jadd(o, k, json_object_new_boolean(v))
#define J_STR(o, k, v) jadd(o, k, json_object_new_string(v))

static int jpush(struct json_object *a, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_array_add(a, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* daxctl's chardev is the device's name ("dax0.0"); an emulation file keeps its path. */
static const char *chardev(const struct udax_status *st)
{
	const char *p = st->device_path ? st->device_path : "";
	const char *b = strrchr(p, '/');

	return st->device.mode == UDAX_SDEV_DEVDAX && b ? b + 1 : p;
}

/* json-c's null is a NULL object */
static int jnull(struct json_object *o, const char *key)
{
	return json_object_object_add(o, key, NULL) ? -ENOMEM : 0;
}

/* @key: the file's name, "(unlinked)", or null when the daemon could not tell. */
static int jfile(struct json_object *o, const char *key, const struct udax_status *st,
		 uint64_t ino)
{
	const struct udax_status_file *f = udax_status_file(st, ino);

	if (!f || (f->flags & UDAX_SFILE_UNKNOWN))
		return jnull(o, key);
	return J_STR(o, key, f->flags & UDAX_SFILE_UNLINKED ? "(unlinked)" : f->path);
}

static struct json_object *status_json(const struct udax_status *st)
{
	struct json_object *doc = json_object_new_object(), *o, *a, *cl, *ls, *ps;
	int e = 0;

	if (!doc)
		return NULL;
	e |= J_I64(doc, "version", st->head.version);
	e |= J_I64(doc, "pid", st->head.pid);
	e |= J_STR(doc, "mountpoint", st->mountpoint);
	e |= jadd(doc, "dax", o = json_object_new_object());
	if (o) {
		e |= J_U64(o, "tracked_entries", st->head.tracked_entries);
		e |= J_U64(o, "live_handles", st->head.live_handles);
		e |= J_U64(o, "busy_handles", st->head.busy_handles);
		e |= J_U64(o, "waiters", st->head.waiters);
		e |= J_U64(o, "handle_bytes", st->head.handle_bytes);
		e |= J_U64(o, "unsafe_frees", st->head.unsafe_frees);
	}
	e |= J_U64(doc, "quarantined_blocks", st->head.quarantined_blocks);
	if (st->has_device) {
		e |= jadd(doc, "device", o = json_object_new_object());
		if (o) {
			e |= J_STR(o, "chardev", chardev(st));
			e |= J_STR(o, "path", st->device_path);
			e |= J_U64(o, "size", st->device.size);
			e |= J_U64(o, "align", st->device.align);
			e |= J_I64(o, "target_node", st->device.target_node);
			e |= J_STR(o, "mode", st->device.mode == UDAX_SDEV_DEVDAX ? "devdax" :
				   "emulation");
		}
	}
	e |= jadd(doc, "clients", a = json_object_new_array());
	for (size_t c = 0; a && c < st->nclients; c++) {
		const struct udax_srec_client *C = &st->clients[c];

		e |= jpush(a, cl = json_object_new_object());
		if (!cl)
			break;
		e |= C->pid ? J_I64(cl, "pid", C->pid) : jnull(cl, "pid");
		e |= J_STR(cl, "comm", C->comm);
		e |= J_U64(cl, "uid", C->uid);
		e |= J_U64(cl, "age_ns", C->age_ns);
		e |= J_BOOL(cl, "alive", C->flags & UDAX_SCLIENT_ALIVE);
		e |= J_BOOL(cl, "asker", C->flags & UDAX_SCLIENT_ASKER);
		e |= jadd(cl, "layouts", ls = json_object_new_array());
		for (size_t l = 0; ls && l < st->nlayouts; l++) {
			const struct udax_srec_layout *L = &st->layouts[l];

			if (L->cid != C->cid)
				continue;
			e |= jpush(ls, o = json_object_new_object());
			if (!o)
				break;
			e |= J_U64(o, "id", L->id);
			e |= J_U64(o, "ino", L->ino);
			e |= jfile(o, "file", st, L->ino);
			e |= J_U64(o, "off", L->off);
			e |= J_U64(o, "len", L->len);
			e |= J_BOOL(o, "writable", L->flags & UDAX_SLAYOUT_WRITABLE);
			e |= J_BOOL(o, "mapped", L->flags & UDAX_SLAYOUT_MAPPED);
			e |= J_U64(o, "pins", L->pins);
			e |= J_BOOL(o, "recalling", L->flags & UDAX_SLAYOUT_RECALLING);
			e |= J_U64(o, "age_ns", L->age_ns);
			e |= J_U64(o, "pin_age_ns", L->pin_age_ns);
		}
		e |= jadd(cl, "pins", ps = json_object_new_array());
		for (size_t p = 0; ps && p < st->npins; p++) {
			const struct udax_srec_pin *P = &st->pins[p];

			if (P->cid != C->cid)
				continue;
			e |= jpush(ps, o = json_object_new_object());
			if (!o)
				break;
			e |= J_U64(o, "layout", P->layout_id);
			e |= J_U64(o, "addr", P->addr);
			e |= J_U64(o, "len", P->len);
			e |= J_I64(o, "ring_fd", P->ring_fd);
			e |= J_BOOL(o, "adopted", P->flags & UDAX_SPIN_ADOPTED);
			e |= J_BOOL(o, "supervised", P->flags & UDAX_SPIN_SUPERVISED);
			e |= J_BOOL(o, "releasing", P->flags & UDAX_SPIN_RELEASING);
		}
	}
	e |= jadd(doc, "pages", a = json_object_new_array());
	for (size_t i = 0; a && i < st->npages; i++) {
		const struct udax_srec_pages *P = &st->pages[i];

		e |= jpush(a, o = json_object_new_object());
		if (!o)
			break;
		e |= J_U64(o, "ino", P->ino);
		e |= J_U64(o, "index", P->index);
		e |= J_U64(o, "npages", P->npages);
		e |= J_U64(o, "pfn", P->pfn);
		e |= J_U64(o, "handles", P->handles);
		e |= J_U64(o, "order", P->order);
		e |= J_U64(o, "refcount", P->refcount);
		e |= J_U64(o, "mapcount", P->mapcount);
		e |= J_U64(o, "pincount", P->pincount);
		e |= J_BOOL(o, "tracked", P->flags & UDAX_SPAGES_TRACKED);
		e |= J_U64(o, "age_ns", P->age_ns);
	}
	e |= jadd(doc, "waiters", a = json_object_new_array());
	for (size_t i = 0; a && i < st->nwaiters; i++) {
		const struct udax_srec_waiter *W = &st->waiters[i];

		e |= jpush(a, o = json_object_new_object());
		if (!o)
			break;
		e |= J_U64(o, "ino", W->ino);
		e |= jfile(o, "file", st, W->ino);
		e |= J_U64(o, "start", W->start);
		e |= J_I64(o, "end", W->end == UINT64_MAX ? -1 : (int64_t)W->end);
		e |= J_U64(o, "wait_index", W->wait_index);
		e |= J_U64(o, "wait_pfn", W->wait_pfn);
		e |= J_U64(o, "refcount", W->refcount);
		e |= J_BOOL(o, "entry_lock", W->flags & UDAX_SWAITER_ENTRY_LOCK);
		e |= J_U64(o, "waiting_ns", W->waiting_ns);
	}
	e |= jadd(doc, "files", a = json_object_new_array());
	for (size_t i = 0; a && i < st->nfiles; i++) {
		const struct udax_status_file *F = &st->files[i];

		e |= jpush(a, o = json_object_new_object());
		if (!o)
			break;
		e |= J_U64(o, "ino", F->ino);
		e |= jfile(o, "name", st, F->ino);
		e |= J_BOOL(o, "unlinked", F->flags & UDAX_SFILE_UNLINKED);
	}
	e |= J_U64(doc, "truncated", st->dropped);
	if (e) {
		json_object_put(doc);
		return NULL;
	}
	return doc;
}

/* ---- the human-readable report ---- */

static char *age(uint64_t ns, char *buf, size_t len)
{
	double s = (double)ns / 1e9;

	if (s < 1e-3)
		snprintf(buf, len, "%.0fus", (double)ns / 1e3);
	else if (s < 1)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else if (s < 120)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 7200)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(ns / 60000000000ull),
			 (unsigned long long)(ns / 1000000000ull % 60));
	else
		snprintf(buf, len, "%.1fh", s / 3600);
	return buf;
}

static const char *ino_path(const struct udax_status *st, uint64_t ino)
{
	const struct udax_status_file *f = udax_status_file(st, ino);

	if (!f || (f->flags & UDAX_SFILE_UNKNOWN))
		return "?";
	return f->flags & UDAX_SFILE_UNLINKED ? "(unlinked)" : f->path;
}

/* The asking udaxctl is a client too while it asks: leave it out of the tables. */
static bool is_me(const struct udax_status *st, const struct udax_srec_client *c)
{
	if (!(c->flags & UDAX_SCLIENT_ASKER))
		return false;
	for (size_t l = 0; l < st->nlayouts; l++)
		if (st->layouts[l].cid == c->cid)
			return false;
	return true;
}

static void print_human(const char *mnt, const struct udax_status *st)
{
	char a1[32], a2[32];

	printf("udaxfs %s, daemon pid %d\n", mnt, (int)st->head.pid);
	if (st->has_device)
		printf("  device %s (%s), %llu bytes, align %llu, NUMA node %d\n",
		       st->device_path, st->device.mode == UDAX_SDEV_DEVDAX ? "devdax" : "emulation",
		       (unsigned long long)st->device.size, (unsigned long long)st->device.align,
		       (int)st->device.target_node);
	printf("  tracked entries %llu, live handles %llu, busy %llu, waiting truncates %llu, "
	       "handle memory %llu bytes%s\n",
	       (unsigned long long)st->head.tracked_entries,
	       (unsigned long long)st->head.live_handles,
	       (unsigned long long)st->head.busy_handles, (unsigned long long)st->head.waiters,
	       (unsigned long long)st->head.handle_bytes,
	       st->head.unsafe_frees ? " (UNSAFE policy: blocks freed under pins)" : "");
	printf("  quarantined blocks %llu%s\n", (unsigned long long)st->head.quarantined_blocks,
	       st->head.quarantined_blocks ? " (pins of an earlier mount never seen released: "
	       "out of use until reboot or udaxctl quarantine --release)" : "");
	if (st->dropped)
		printf("  TRUNCATED: the daemon left out %llu records (over its limits)\n",
		       (unsigned long long)st->dropped);

	size_t ncl = 0;
	for (size_t c = 0; c < st->nclients; c++)
		ncl += !is_me(st, &st->clients[c]);
	printf("\nclients: %zu\n", ncl);
	if (ncl)
		printf("  %-8s %-16s %-6s %-9s %7s %5s  %s\n", "PID", "COMMAND", "UID", "AGE",
		       "LAYOUTS", "PINS", "STATE");
	for (size_t c = 0; c < st->nclients; c++) {
		const struct udax_srec_client *C = &st->clients[c];
		unsigned long long pins = 0;
		size_t nl = 0;
		char pid[24];

		if (is_me(st, C))
			continue;
		for (size_t l = 0; l < st->nlayouts; l++) {
			if (st->layouts[l].cid != C->cid)
				continue;
			nl++;
			pins += st->layouts[l].pins;
		}
		if (C->pid)
			snprintf(pid, sizeof(pid), "%d", (int)C->pid);
		else
			snprintf(pid, sizeof(pid), "-");
		printf("  %-8s %-16s %-6u %-9s %7zu %5llu  %s\n", pid, C->comm[0] ? C->comm : "-",
		       C->uid, age(C->age_ns, a1, sizeof(a1)), nl, pins,
		       C->flags & UDAX_SCLIENT_ALIVE ? "alive" :
		       "exited (references held until released)");
	}

	printf("\nlayouts:\n");
	for (size_t l = 0; l < st->nlayouts; l++) {
		const struct udax_srec_layout *L = &st->layouts[l];
		const struct udax_srec_client *C = udax_status_client(st, L->cid);
		char pid[24];

		if (!l)
			printf("  %-8s %-10s %-24s %12s %12s %-3s %-6s %4s %-9s %-9s %s\n", "PID",
			       "INO", "FILE", "OFFSET", "LENGTH", "RW", "MAPPED", "PINS", "AGE",
			       "PIN AGE", "STATE");
		if (C && C->pid)
			snprintf(pid, sizeof(pid), "%d", (int)C->pid);
		else
			snprintf(pid, sizeof(pid), "-");
		printf("  %-8s %-10llu %-24s %12llu %12llu %-3s %-6s %4u %-9s %-9s %s\n", pid,
		       (unsigned long long)L->ino, ino_path(st, L->ino), (unsigned long long)L->off,
		       (unsigned long long)L->len, L->flags & UDAX_SLAYOUT_WRITABLE ? "rw" : "r",
		       L->flags & UDAX_SLAYOUT_MAPPED ? "yes" : "no", L->pins,
		       age(L->age_ns, a1, sizeof(a1)),
		       L->pins ? age(L->pin_age_ns, a2, sizeof(a2)) : "-",
		       L->flags & UDAX_SLAYOUT_RECALLING ? "recalling" : "");
	}
	if (!st->nlayouts)
		printf("  (none)\n");

	/* per file: pages with references, and who waits on them */
	printf("\nfiles with referenced pages:\n");
	size_t nf = 0;
	for (size_t f = 0; f < st->nfiles; f++) {
		uint64_t ino = st->files[f].ino, np = 0, pins = 0, maps = 0, refs = 0;
		uint64_t oldest = 0, longest = 0;
		size_t nw = 0;

		for (size_t i = 0; i < st->npages; i++) {
			const struct udax_srec_pages *P = &st->pages[i];

			if (P->ino != ino)
				continue;
			np += P->npages;
			pins += (uint64_t)P->pincount * P->handles;
			maps += (uint64_t)P->mapcount * P->handles;
			refs += (uint64_t)P->refcount * P->handles;
			if (P->age_ns > oldest)
				oldest = P->age_ns;
		}
		for (size_t i = 0; i < st->nwaiters; i++)
			if (st->waiters[i].ino == ino) {
				nw++;
				if (st->waiters[i].waiting_ns > longest)
					longest = st->waiters[i].waiting_ns;
			}
		if (!np && !nw)
			continue;
		if (!nf++)
			printf("  %-10s %-24s %6s %8s %8s %8s %-9s %7s %s\n", "INO", "FILE", "PAGES",
			       "REFS", "MAPS", "PINS", "OLDEST", "WAITERS", "LONGEST WAIT");
		printf("  %-10llu %-24s %6llu %8llu %8llu %8llu %-9s %7zu %s\n",
		       (unsigned long long)ino, ino_path(st, ino), (unsigned long long)np,
		       (unsigned long long)refs, (unsigned long long)maps, (unsigned long long)pins,
		       age(oldest, a1, sizeof(a1)), nw, nw ? age(longest, a2, sizeof(a2)) : "-");
	}
	if (!nf)
		printf("  (none)\n");

	printf("\nwaiters (truncate / punch / unlink waiting for pages to go idle):\n");
	for (size_t i = 0; i < st->nwaiters; i++) {
		const struct udax_srec_waiter *W = &st->waiters[i];
		char e[32];

		if (W->end == UINT64_MAX)
			snprintf(e, sizeof(e), "EOF");
		else
			snprintf(e, sizeof(e), "%llu", (unsigned long long)W->end);
		printf("  ino %llu (%s) pages %llu..%s: waiting %s on page %llu (pfn %llu, "
		       "refcount %u)\n", (unsigned long long)W->ino, ino_path(st, W->ino),
		       (unsigned long long)W->start, e, age(W->waiting_ns, a1, sizeof(a1)),
		       (unsigned long long)W->wait_index, (unsigned long long)W->wait_pfn,
		       W->refcount);
	}
	if (!st->nwaiters)
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

/*
 * The daemon's socket: the one the mount names, or (a test aid, for a
 * stand-in daemon) the abstract name in UDAXCTL_TEST_STATUS_SOCKET.
 */
static int status_connect(const char *mnt, struct udax_wire **w)
{
	const char *fake = getenv("UDAXCTL_TEST_STATUS_SOCKET");

	if (fake && fake[0])
		return udax_wire_open(w, fake);
	return ctl_daemon_connect(mnt, w);
}

int udaxctl_status(int argc, char **argv)
{
	static const struct option lo[] = { { "json", 0, 0, 'j' }, { "help", 0, 0, 'h' },
					    { "version", 0, 0, 'V' }, { 0, 0, 0, 0 } };
	bool json = false;
	const char *mnt;
	char type[256] = "", why[512] = "";
	struct udax_wire *w = NULL;
	struct udax_status *st = NULL;
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
	const char *fake = getenv("UDAXCTL_TEST_STATUS_SOCKET");
	ret = fake && fake[0] ? 1 : ctl_is_udaxfs_mount(mnt, type, sizeof(type));
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
	ret = status_connect(mnt, &w);
	if (ret < 0) {
		fprintf(stderr, "udaxctl status: %s: cannot reach the daemon's layout service: %s\n",
			mnt, strerror(-ret));
		return 1;
	}
	ret = udax_status_get(w, &st, why, sizeof(why));
	udax_wire_put(&w);
	if (ret == -EPROTO) {
		fprintf(stderr, "udaxctl status: %s: the daemon's reply is not a valid status: %s\n",
			mnt, why);
		return 1;
	}
	if (ret < 0) {
		fprintf(stderr, "udaxctl status: %s: status request failed: %s%s%s\n", mnt,
			strerror(-ret), why[0] ? ": " : "", why);
		return 1;
	}
	if (json) {
		struct json_object *doc = status_json(st);

		if (!doc) {
			fprintf(stderr, "udaxctl status: out of memory\n");
			udax_status_free(&st);
			return 1;
		}
		puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
	} else {
		print_human(mnt, st);
	}
	udax_status_free(&st);
	return 0;
}
