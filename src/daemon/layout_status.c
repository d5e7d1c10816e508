/* SPDX-License-Identifier: MIT */
/*
 * layout_status.c - UDAX_REQ_STATUS: the service's state as the typed
 * records of udax_proto.h (little-endian), built on a thread of its own:
 * clients, layouts and pins under the service lock; page runs and waiters
 * from the dax layer; file names from the file system's own directories.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout_int.h"
#include "core/util.h"

/* ---- status (records, udax_proto.h) ---- */

/* Directory entries the name search visits at most, per status request. */
#define STATUS_WALK_MAX 1000000
/*
 * Bytes of records at most (file names make records of up to 4 KiB): half
 * of what either side accepts in one message, so the reply always fits
 * beside other queued output.  Past it, records are dropped and counted.
 */
#define STATUS_MAX_BYTES (UDAX_MSG_MAX / 2)

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
	uint64_t n;			/* records written */
	uint64_t dropped;		/* records left out by UDAX_STATUS_MAX_RECORDS */
};

/*
 * Append a record of @type: @fixed bytes (the structure, fields already
 * little-endian; its header is filled here), then @str with its NUL,
 * padded to 8 bytes.  Counted as dropped once the stream is full (room is
 * kept for the END record).
 */
static void sb_rec(struct sbuf *sb, uint16_t type, void *rec, size_t fixed, const char *str)
{
	size_t slen = str ? strlen(str) + 1 : 0;
	size_t len = (fixed + slen + 7) & ~(size_t)7;
	struct udax_srec *h = rec;

	if (sb->oom)
		return;
	if (type != UDAX_SREC_END && (sb->n + 1 >= UDAX_STATUS_MAX_RECORDS ||
				      sb->len + len + sizeof(struct udax_srec_end) > STATUS_MAX_BYTES)) {
		sb->dropped++;
		return;
	}
	if (sb->len + len > sb->cap) {
		size_t ncap = sb->cap ? sb->cap * 2 : 16384;
		while (ncap < sb->len + len)
			ncap *= 2;
		char *np = realloc(sb->p, ncap);
		if (!np) {
			sb->oom = true;
			return;
		}
		sb->p = np;
		sb->cap = ncap;
	}
	h->type = htole16(type);
	h->reserved = 0;
	h->len = htole32((uint32_t)len);
	memcpy(sb->p + sb->len, rec, fixed);
	memset(sb->p + sb->len + fixed, 0, len - fixed);
	if (slen)
		memcpy(sb->p + sb->len + fixed, str, slen);
	sb->len += len;
	sb->n++;
}

/* The inodes the reply names, to look up their names. */
struct inoset {
	uint64_t *v;
	size_t n, cap;
	bool off;			/* names not shown to this asker: add nothing */
};

static void inoset_add(struct inoset *s, uint64_t ino)
{
	if (s->off || (s->n && s->v[s->n - 1] == ino))
		return;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *nv = realloc(s->v, ncap * sizeof(*nv));
		if (!nv)
			return;		/* that file goes unnamed */
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = ino;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Page runs, built from the page handles (dx_dax_foreach_handle). */
struct run {
	struct dx_page_info first;	/* index and pfn of its first page */
	uint64_t npages;
	uint32_t handles;
};

struct runs {
	struct run *v;
	size_t n, cap;
	uint64_t dropped;		/* runs left out (at most that many records) */
};

static bool run_extends(const struct run *r, const struct dx_page_info *pi)
{
	const struct dx_page_info *f = &r->first;

	return f->ino == pi->ino && f->order == pi->order && f->refcount == pi->refcount &&
	       f->mapcount == pi->mapcount && f->pincount == pi->pincount &&
	       f->tracked == pi->tracked && f->index + r->npages == pi->index &&
	       f->pfn + r->npages == pi->pfn;
}

static void run_merge(struct run *r, const struct run *next)
{
	r->npages += next->npages;
	r->handles += next->handles;
	if (next->first.age_ns > r->first.age_ns)
		r->first.age_ns = next->first.age_ns;
}

/* Context: the pfn-index lock held (no call into the dax layer). */
static int runs_page(const struct dx_page_info *pi, void *arg)
{
	struct runs *rs = arg;
	struct run one = { *pi, 1ull << pi->order, 1 };

	if (pi->refcount == 0)
		return 0;
	if (rs->n && run_extends(&rs->v[rs->n - 1], pi)) {
		run_merge(&rs->v[rs->n - 1], &one);
		return 0;
	}
	if (rs->n == rs->cap) {
		size_t ncap = rs->cap ? rs->cap * 2 : 256;
		struct run *nv = rs->cap < UDAX_STATUS_MAX_RECORDS ?
			realloc(rs->v, ncap * sizeof(*nv)) : NULL;
		if (!nv) {
			rs->dropped++;
			return 0;
		}
		rs->v = nv;
		rs->cap = ncap;
	}
	rs->v[rs->n++] = one;
	return 0;
}

static int cmp_run(const void *a, const void *b)
{
	const struct dx_page_info *x = &((const struct run *)a)->first;
	const struct dx_page_info *y = &((const struct run *)b)->first;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void emit_runs(struct sbuf *sb, struct runs *rs, struct inoset *inos)
{
	/* handles come in device order: sort by file position and merge again */
	if (rs->n)	/* no pages: the array was never allocated */
		qsort(rs->v, rs->n, sizeof(*rs->v), cmp_run);
	for (size_t i = 0; i < rs->n;) {
		struct run r = rs->v[i];
		size_t j = i + 1;

		for (; j < rs->n && run_extends(&r, &rs->v[j].first); j++)
			run_merge(&r, &rs->v[j]);
		struct udax_srec_pages rec = {
			.ino = htole64(r.first.ino), .index = htole64(r.first.index),
			.npages = htole64(r.npages), .pfn = htole64(r.first.pfn),
			.handles = htole32(r.handles), .order = htole32(r.first.order),
			.refcount = htole32(r.first.refcount), .mapcount = htole32(r.first.mapcount),
			.pincount = htole32(r.first.pincount),
			.flags = htole32(r.first.tracked ? UDAX_SPAGES_TRACKED : 0),
			.age_ns = htole64(r.first.age_ns),
		};
		sb_rec(sb, UDAX_SREC_PAGES, &rec, sizeof(rec), NULL);
		inoset_add(inos, r.first.ino);
		i = j;
	}
	sb->dropped += rs->dropped;
}

struct waiters_ctx {
	struct sbuf *sb;
	struct inoset *inos;
};

/* Context: the pfn-index lock held. */
static int status_waiter(const struct dx_waiter_info *wi, void *arg)
{
	struct waiters_ctx *wc = arg;
	struct udax_srec_waiter rec = {
		.ino = htole64(wi->ino), .start = htole64(wi->start),
		.end = htole64(wi->end == UDAX_END_OF_FILE ? UINT64_MAX : wi->end),
		.wait_index = htole64(wi->wait_index), .wait_pfn = htole64(wi->wait_pfn),
		.refcount = htole32(wi->refcount),
		.flags = htole32(wi->entry_lock ? UDAX_SWAITER_ENTRY_LOCK : 0),
		.waiting_ns = htole64(wi->waiting_ns),
	};
	sb_rec(wc->sb, UDAX_SREC_WAITER, &rec, sizeof(rec), NULL);
	inoset_add(wc->inos, wi->ino);
	return 0;
}

/*
 * The names of the wanted inodes, from the file system's own directories:
 * a breadth-first walk from the root with ufs_readdir() (no lookup counts,
 * no inode lock: a file whose truncate waits for a pin is named all the
 * same; the namespace lock is only ever held shared here, and nothing
 * holds it exclusively while waiting for a layout).
 */
struct walk {
	const uint64_t *want;
	size_t nwant, found;
	char **name;			/* per wanted inode, malloc'd */
	struct wdir {
		uint64_t ino;
		char *path;
	} *q;
	size_t qhead, qn, qcap;
	const char *cur;		/* the directory being read */
	size_t visited;
	bool full;			/* STATUS_WALK_MAX reached */
};

static int walk_fill(void *arg, const char *name, const struct ufs_entry *e, uint64_t next)
{
	struct walk *w = arg;
	(void)next;

	if (!e->ino)
		return 0;		/* "." and ".." */
	if (++w->visited > STATUS_WALK_MAX) {
		w->full = true;
		return 1;
	}
	const uint64_t *hit = bsearch(&e->ino, w->want, w->nwant, sizeof(*w->want), cmp_u64);
	bool dir = S_ISDIR(e->st.st_mode);
	if ((!hit || w->name[hit - w->want]) && !dir)
		return 0;
	char *path = NULL;
	if (asprintf(&path, "%s/%s", w->cur, name) < 0)
		return 0;
	if (hit && !w->name[hit - w->want]) {
		w->name[hit - w->want] = dir ? strdup(path) : path;
		w->found++;
		if (!dir)
			return 0;
	}
	if (w->qn == w->qcap) {
		size_t ncap = w->qcap ? w->qcap * 2 : 64;
		struct wdir *nq = realloc(w->q, ncap * sizeof(*nq));
		if (!nq) {
			free(path);
			w->full = true;	/* what is below stays unsearched */
			return 0;
		}
		w->q = nq;
		w->qcap = ncap;
	}
	w->q[w->qn++] = (struct wdir){ e->ino, path };
	return 0;
}

static void emit_names(struct layout_service *ls, struct sbuf *sb, struct inoset *inos)
{
	struct walk w = { 0 };

	if (inos->n)
		qsort(inos->v, inos->n, sizeof(*inos->v), cmp_u64);
	size_t n = 0;
	for (size_t i = 0; i < inos->n; i++)
		if (!n || inos->v[n - 1] != inos->v[i])
			inos->v[n++] = inos->v[i];
	inos->n = n;
	if (!n)
		return;
	w.want = inos->v;
	w.nwant = n;
	w.name = calloc(n, sizeof(*w.name));
	if (!w.name) {
		sb->oom = true;
		return;
	}
	const uint64_t root = UFS_ROOT_INO;
	const uint64_t *rh = bsearch(&root, w.want, n, sizeof(root), cmp_u64);
	if (rh) {
		w.name[rh - w.want] = strdup("/");
		w.found++;
	}
	w.q = malloc(sizeof(*w.q));
	if (w.q) {
		w.q[0] = (struct wdir){ UFS_ROOT_INO, strdup("") };
		w.qn = w.qcap = 1;
	}
	while (w.qhead < w.qn && w.found < n && !w.full) {
		struct wdir d = w.q[w.qhead++];
		if (d.path) {
			w.cur = d.path;
			/* a directory removed meanwhile is skipped (-ENOENT, -ENOTDIR) */
			ufs_readdir(ls->fs, d.ino, 0, false, walk_fill, &w);
		} else {
			w.full = true;	/* out of memory: unsearched */
		}
		free(d.path);
	}
	bool complete = w.qhead == w.qn && !w.full;
	for (size_t i = w.qhead; i < w.qn; i++)
		free(w.q[i].path);
	free(w.q);
	for (size_t i = 0; i < n; i++) {
		struct udax_srec_file rec = {
			.ino = htole64(w.want[i]),
			.flags = htole32(w.name[i] ? 0 : complete ? UDAX_SFILE_UNLINKED :
					 UDAX_SFILE_UNKNOWN),
		};
		sb_rec(sb, UDAX_SREC_FILE, &rec, sizeof(rec), w.name[i] ? w.name[i] : "");
		free(w.name[i]);
	}
	free(w.name);
}

struct status_job {
	struct layout_service *ls;
	struct lclient *asker;
	uint32_t seq;
};

/*
 * Build the status records and queue them as the reply.  On a thread of
 * its own, like a grant: the name search reads directories and may take
 * long on a large tree; the event thread goes on meanwhile.
 */
static void *status_main(void *arg)
{
	struct status_job *job = arg;
	struct layout_service *ls = job->ls;
	struct lclient *asker = job->asker;
	struct sbuf sb = { 0 };
	struct inoset inos = { 0 };
	struct runs rs = { 0 };
	uint64_t now = dx_now_ns();
	bool privileged = asker->uid == 0 ||
		ls_allowed(ls, asker->uid, asker->gid, asker->groups, asker->ngroups);

	struct dx_dax_stats st;
	dx_dax_stats(ufs_dax(ls->fs), &st);
	struct udax_srec_head head = {
		.version = htole32(UDAX_STATUS_VERSION), .pid = (int32_t)htole32((uint32_t)getpid()),
		.quarantined_blocks = htole64(ufs_quarantined_blocks(ls->fs)),
		.tracked_entries = htole64(st.tracked_entries),
		.live_handles = htole64(st.live_handles), .busy_handles = htole64(st.busy_handles),
		.waiters = htole64(st.waiters), .handle_bytes = htole64(st.handle_bytes),
		.unsafe_frees = htole64(st.unsafe_frees),
	};
	sb_rec(&sb, UDAX_SREC_HEAD, &head, sizeof(head), ls->mountpoint);

	struct udax_srec_device dev = {
		.size = htole64(dx_media_size(ls->media)),
		.align = htole64(dx_media_align(ls->media)),
		.target_node = (int32_t)htole32((uint32_t)dx_media_numa_node(ls->media)),
		.mode = htole32(dx_media_kind(ls->media) == UDAX_MEDIA_DEVDAX ?
				UDAX_SDEV_DEVDAX : UDAX_SDEV_EMULATION),
	};
	const char *path = dx_media_path(ls->media);
	sb_rec(&sb, UDAX_SREC_DEVICE, &dev, sizeof(dev), path ? path : "");

	pthread_mutex_lock(&ls->lock);
	uint32_t cid = 0;
	for (struct lclient *cl = ls->clients; cl; cl = cl->next) {
		if (!cl->maps && cl != asker)
			continue;
		bool show = privileged || cl->uid == asker->uid;
		inos.off = !show;
		struct udax_srec_client c = {
			.cid = htole32(++cid), .pid = (int32_t)htole32(show ? (uint32_t)cl->pid : 0),
			.uid = htole32((uint32_t)cl->uid),
			.flags = htole32((cl->exited ? 0 : UDAX_SCLIENT_ALIVE) |
					 (cl == asker ? UDAX_SCLIENT_ASKER : 0)),
			.age_ns = htole64(now - cl->t_connect),
		};
		if (show)
			snprintf(c.comm, sizeof(c.comm), "%s", cl->comm);
		sb_rec(&sb, UDAX_SREC_CLIENT, &c, sizeof(c), NULL);
		for (struct lmap *lm = cl->maps; lm; lm = lm->next) {
			if (lm->state != LM_ACTIVE)
				continue;
			struct udax_srec_layout l = {
				.cid = htole32(cid),
				.flags = htole32((lm->writable ? UDAX_SLAYOUT_WRITABLE : 0) |
						 (lm->mapped ? UDAX_SLAYOUT_MAPPED : 0) |
						 (lm->recall_sent ? UDAX_SLAYOUT_RECALLING : 0)),
				.id = htole64(lm->id), .ino = htole64(lm->ino),
				.off = htole64(lm->off), .len = htole64(lm->len),
				.pins = htole32(lm->pins), .age_ns = htole64(now - lm->t_grant),
				.pin_age_ns = htole64(lm->pins ? now - lm->t_pin : 0),
			};
			sb_rec(&sb, UDAX_SREC_LAYOUT, &l, sizeof(l), NULL);
			inoset_add(&inos, lm->ino);
			for (struct lpin *p = lm->pinlist; p; p = p->next) {
				struct udax_srec_pin pr = {
					.cid = htole32(cid),
					.flags = htole32((p->adopted ? UDAX_SPIN_ADOPTED : 0) |
							 (p->ring ? UDAX_SPIN_SUPERVISED : 0) |
							 (p->want_release ? UDAX_SPIN_RELEASING : 0)),
					.layout_id = htole64(lm->id),
					.addr = htole64(show ? p->addr : 0),
					.len = htole64(p->len),
					.ring_fd = (int32_t)htole32((uint32_t)(p->ring && show ?
									p->ring->client_fd : -1)),
				};
				sb_rec(&sb, UDAX_SREC_PIN, &pr, sizeof(pr), NULL);
			}
		}
	}
	pthread_mutex_unlock(&ls->lock);

	/*
	 * Paths say where other users keep what they map: an asker who is
	 * neither root nor allowed direct access gets the names of its own
	 * layouts' files only (as it gets pid and comm of its own clients only).
	 */
	inos.off = !privileged;
	dx_dax_foreach_handle(ufs_dax(ls->fs), runs_page, &rs);
	emit_runs(&sb, &rs, &inos);
	free(rs.v);
	struct waiters_ctx wc = { &sb, &inos };
	dx_dax_foreach_waiter(ufs_dax(ls->fs), status_waiter, &wc);
	emit_names(ls, &sb, &inos);
	free(inos.v);

	struct udax_srec_end end = { .nrecords = htole64(sb.n), .dropped = htole64(sb.dropped) };
	sb_rec(&sb, UDAX_SREC_END, &end, sizeof(end), NULL);

	pthread_mutex_lock(&ls->lock);
	if (sb.oom)
		ls_queue_err(asker, UDAX_REQ_STATUS, job->seq, -ENOMEM, "out of memory");
	else
		ls_queue_msg(asker, UDAX_REQ_STATUS | UDAX_MSG_REPLY, job->seq, 0, -1,
			     sb.p, sb.len, NULL, 0);
	asker->grants--;
	pthread_mutex_unlock(&ls->lock);
	ls_wake(ls);
	free(sb.p);
	free(job);
	return NULL;
}

void ls_req_status(struct layout_service *ls, struct lclient *asker, const struct udax_msg *h)
{
	struct status_job *job = malloc(sizeof(*job));
	pthread_attr_t attr;
	pthread_t th;
	int err;

	pthread_mutex_lock(&ls->lock);
	if (!job || asker->grants >= MAX_GRANTS) {
		ls_queue_err(asker, UDAX_REQ_STATUS, h->seq, job ? -EAGAIN : -ENOMEM,
			     job ? "too many requests in flight" : "out of memory");
		pthread_mutex_unlock(&ls->lock);
		free(job);
		return;
	}
	asker->grants++;
	pthread_mutex_unlock(&ls->lock);
	*job = (struct status_job){ ls, asker, h->seq };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&th, &attr, status_main, job);
	pthread_attr_destroy(&attr);
	if (err) {
		pthread_mutex_lock(&ls->lock);
		asker->grants--;
		ls_queue_err(asker, UDAX_REQ_STATUS, h->seq, -err, "cannot start a status thread");
		pthread_mutex_unlock(&ls->lock);
		free(job);
	}
}
