/* SPDX-License-Identifier: MIT */
/*
 * wire.c - the one client of the layout protocol (see wire.h).
 *
 * Objects:
 *   struct udax_wire  one connection: the socket, the requests waiting for
 *                     replies (struct pending, on their callers' stacks),
 *                     the layouts' recall callbacks, recalls that came
 *                     before their layout (orphans), the device descriptors
 *                     received, and a reader thread.
 *
 * References (refs, atomic): every udax_wire_get()/open() caller, the
 * shared list (g_wires) while the connection is in it, and the reader
 * thread.  users counts the first two: when it drops to zero the socket is
 * shut down, the reader sees the end and drops its own reference.
 *
 * Locks: g_lock (g_wires, users) -> w->lock (everything the reader shares);
 * w->send only around the sending of one whole message.  No lock is held
 * while a recall callback runs.
 *
 * Fork: g_gen counts the forks this process came through (the child
 * handler increments it in the child).  A connection whose gen differs was
 * inherited: it is never locked again (its locks may have been held by a
 * parent thread that does not exist here) and every call on it fails.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "wire.h"

#define MAX_ORPHANS 64
#define MAX_FDS 8

struct pending {
	struct pending *next;
	uint32_t seq;
	bool done;
	int status;
	void *payload;
	uint32_t len;
	int fd;
};

struct wlayout {
	struct wlayout *next;		/* w->layouts; w->lock */
	uint64_t id;
	udax_wire_recall_fn fn;
	void *arg;
	bool busy;			/* w->lock: a callback runs on busy_thread */
	pthread_t busy_thread;
	bool deleted;			/* w->lock: del from the callback; freed after it */
	bool lost_told;			/* w->lock: the daemon's loss was delivered */
};

struct udax_wire {
	struct udax_wire *next;		/* g_wires; g_lock */
	bool shared;			/* g_lock: in g_wires */
	unsigned int users;		/* g_lock */
	atomic_uint refs;
	unsigned int gen;		/* g_gen at creation; read-only */
	char name[UDAX_SOCK_NAME_MAX];
	int sock;
	pthread_mutex_t send;		/* one whole message at a time */
	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;		/* a reply arrived, a callback ended, the end */
	uint32_t seq;
	bool dead;			/* the reader saw the end */
	struct pending *pend;
	struct wlayout *layouts;
	struct udax_recall_msg orphans[MAX_ORPHANS];
	unsigned int norphans, orphan_next;
	int fds[MAX_FDS];		/* descriptors received, oldest first */
	unsigned int nfds;
	int dev_fd;			/* the latest of them, or -1 */
	const _Atomic uint32_t *ctab;	/* the daemon's page-cache table, read-only; const once set */
	uint32_t ctab_n;		/* its slots */
	int ctab_state;			/* 0 not asked yet, 1 mapped, -1 refused */
	bool drop_orphans;		/* test: answer unclaimed recalls at once */
	bool ignore_loss;		/* test: do not tell the layouts about the end */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct udax_wire *g_wires;	/* g_lock */
static atomic_uint g_gen;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static bool stale(const struct udax_wire *w)
{
	return w->gen != atomic_load(&g_gen);
}

/* ---- fork ---- */

static void atfork_prepare(void)
{
	pthread_mutex_lock(&g_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&g_lock);
}

/*
 * The child has copies of the parent's sockets but none of its threads:
 * its replies would go to nobody, and the daemon's records of the
 * connection are the parent's.  Close the child's copies (the parent's
 * socket stays open in the parent) and forget the list; the structures
 * are left as they are (their locks may be held by threads that do not
 * exist here) and refuse every use (stale()).
 */
static void atfork_child(void)
{
	atomic_fetch_add(&g_gen, 1);
	for (struct udax_wire *w = g_wires; w; w = w->next) {
		close(w->sock);
		for (unsigned int i = 0; i < w->nfds; i++)
			close(w->fds[i]);
	}
	g_wires = NULL;
	pthread_mutex_init(&g_lock, NULL);
}

static void once_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ---- the hello ---- */

int udax_wire_hello(int fd, struct udax_ioc_hello *out)
{
	memset(out, 0, sizeof(*out));
	out->version = UDAX_PROTO_VERSION;
	if (ioctl(fd, UDAX_IOC_HELLO, out) < 0)
		return -errno;
	out->sock[sizeof(out->sock) - 1] = '\0';
	if (out->version != UDAX_PROTO_VERSION)
		return -EPROTO;
	return 0;
}

/* ---- socket I/O ---- */

/* Send one whole message.  Context: takes w->send. */
static int wire_send(struct udax_wire *w, uint16_t type, uint32_t seq, const void *p,
		     uint32_t len)
{
	struct udax_msg h = {
		.magic = UDAX_MSG_MAGIC, .type = type, .len = len, .seq = seq,
	};
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)p, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	size_t total = sizeof(h) + len, sent = 0;
	int err = 0;

	pthread_mutex_lock(&w->send);
	while (sent < total) {
		ssize_t n = sendmsg(w->sock, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno == EPIPE || errno == ECONNRESET ? -ENOTCONN : -errno;
			break;
		}
		sent += (size_t)n;
		/* step the iovecs past what went out */
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov[0].iov_len) {
			n -= (ssize_t)mh.msg_iov[0].iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + n;
			mh.msg_iov[0].iov_len -= (size_t)n;
		}
	}
	pthread_mutex_unlock(&w->send);
	return err;
}

/*
 * Keep a received descriptor: it is the device, and mappings made through
 * it (or being made right now by another thread) outlive any reply.
 * Context: reader thread; takes w->lock.  Return @fd, or -1 if it had to be
 * closed (more than MAX_FDS: the daemon sends one, two at most).
 */
static int keep_fd(struct udax_wire *w, int fd)
{
	pthread_mutex_lock(&w->lock);
	if (w->nfds == MAX_FDS) {
		pthread_mutex_unlock(&w->lock);
		close(fd);
		return -1;
	}
	w->fds[w->nfds++] = fd;
	w->dev_fd = fd;
	pthread_mutex_unlock(&w->lock);
	return fd;
}

/*
 * Read exactly @len bytes; the first passed descriptor in *fd (the caller
 * keeps or hands it on), any other closed.  Return 0, -EPIPE at the end,
 * -errno.
 */
static int read_full(struct udax_wire *w, void *buf, size_t len, int *fd)
{
	size_t got = 0;

	while (got < len) {
		union {
			char b[CMSG_SPACE(sizeof(int) * 4)];
			struct cmsghdr align;
		} u;
		struct iovec iov = { (char *)buf + got, len - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = u.b, .msg_controllen = sizeof(u.b) };
		ssize_t n = recvmsg(w->sock, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (*fd < 0)
					*fd = f;
				else
					close(f);	/* the daemon sends one at most */
			}
		}
		if (n == 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

static struct wlayout *find_layout(struct udax_wire *w, uint64_t id)
{
	struct wlayout *l = w->layouts;

	while (l && l->id != id)
		l = l->next;
	return l;
}

/*
 * Run @id's callback.  Waits while another callback of the layout runs.
 * Context: w->lock held; dropped around the callback.
 * Return: false if the layout is gone.
 */
static bool deliver(struct udax_wire *w, uint64_t id, const struct udax_recall_msg *r,
		    bool lost)
{
	struct wlayout *l;

	for (;;) {
		l = find_layout(w, id);
		if (!l)
			return false;
		if (!l->busy)
			break;
		pthread_cond_wait(&w->cond, &w->lock);
	}
	if (lost)
		l->lost_told = true;
	l->busy = true;
	l->busy_thread = pthread_self();
	pthread_mutex_unlock(&w->lock);
	l->fn(l->arg, r, lost);
	pthread_mutex_lock(&w->lock);
	l->busy = false;
	if (l->deleted)
		free(l);
	pthread_cond_broadcast(&w->cond);
	return true;
}

static void keep_orphan(struct udax_wire *w, const struct udax_recall_msg *r)
{
	for (unsigned int i = 0; i < w->norphans; i++) {
		if (w->orphans[i].id == r->id) {
			w->orphans[i] = *r;	/* the newer recall of the same layout */
			return;
		}
	}
	if (w->norphans < MAX_ORPHANS) {
		w->orphans[w->norphans++] = *r;
		return;
	}
	/*
	 * Full: recalls of layouts that were unmapped just before the recall
	 * came are never claimed, so the table fills with those over time;
	 * replace the oldest slot in turn.
	 */
	w->orphans[w->orphan_next] = *r;
	w->orphan_next = (w->orphan_next + 1) % MAX_ORPHANS;
}

static void wire_free(struct udax_wire *w)
{
	while (w->layouts) {
		struct wlayout *l = w->layouts;

		w->layouts = l->next;
		free(l);
	}
	if (w->sock >= 0)
		close(w->sock);
	for (unsigned int i = 0; i < w->nfds; i++)
		close(w->fds[i]);
	if (w->ctab)
		munmap((void *)w->ctab, (size_t)w->ctab_n * sizeof(uint32_t));
	pthread_mutex_destroy(&w->send);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

static void ref_put(struct udax_wire *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1)
		wire_free(w);
}

/* Context: g_lock held. */
static void users_put_locked(struct udax_wire *w)
{
	if (--w->users == 0)
		shutdown(w->sock, SHUT_RDWR);	/* the reader sees the end and goes */
}

/* The connection ended: fail the waiting calls, tell every layout. */
static void reader_end(struct udax_wire *w)
{
	pthread_mutex_lock(&w->lock);
	w->dead = true;
	pthread_cond_broadcast(&w->cond);
	for (; !w->ignore_loss;) {
		struct wlayout *l = w->layouts;

		while (l && (l->lost_told || l->deleted))
			l = l->next;
		if (!l)
			break;
		l->lost_told = true;
		deliver(w, l->id, NULL, true);
	}
	pthread_mutex_unlock(&w->lock);

	pthread_mutex_lock(&g_lock);
	if (w->shared && !stale(w)) {
		struct udax_wire **pp = &g_wires;

		while (*pp && *pp != w)
			pp = &(*pp)->next;
		if (*pp)
			*pp = w->next;
		w->shared = false;
		users_put_locked(w);
		pthread_mutex_unlock(&g_lock);
		ref_put(w);	/* the list's */
	} else {
		pthread_mutex_unlock(&g_lock);
	}
}

static void *reader_main(void *arg)
{
	struct udax_wire *w = arg;

	for (;;) {
		struct udax_msg h;
		int fd = -1;
		char *payload = NULL;
		int err = read_full(w, &h, sizeof(h), &fd);

		if (!err && (h.magic != UDAX_MSG_MAGIC || h.len > UDAX_MSG_MAX))
			err = -EPROTO;
		if (!err) {
			payload = malloc((size_t)h.len + 1);
			err = payload ? read_full(w, payload, h.len, &fd) : -ENOMEM;
		}
		if (err) {
			if (fd >= 0)
				close(fd);
			free(payload);
			break;
		}
		payload[h.len] = '\0';
		/*
		 * A descriptor is the device (kept for the connection's life:
		 * mappings made through it outlive the reply), except the
		 * page-cache table's, which goes to its caller.
		 */
		bool own_fd = h.type == (UDAX_REQ_CACHETAB | UDAX_MSG_REPLY);
		if (fd >= 0 && !own_fd)
			fd = keep_fd(w, fd);
		pthread_mutex_lock(&w->lock);
		if (h.type == UDAX_MSG_RECALL && h.len >= sizeof(struct udax_recall_msg)) {
			struct udax_recall_msg rm;

			memcpy(&rm, payload, sizeof(rm));
			if (!deliver(w, rm.id, &rm, false)) {
				if (!w->drop_orphans) {
					/* the MAP reply is still on its way to its caller */
					keep_orphan(w, &rm);
				} else {
					/* test only: what a client without orphans did */
					struct udax_return_req rr = { rm.id, rm.recall_seq };

					pthread_mutex_unlock(&w->lock);
					wire_send(w, UDAX_REQ_RETURN, 0, &rr, sizeof(rr));
					pthread_mutex_lock(&w->lock);
				}
			}
		} else if (h.type & UDAX_MSG_REPLY) {
			struct pending *p = w->pend;

			while (p && p->seq != h.seq)
				p = p->next;
			if (p && !p->done) {
				p->done = true;
				p->status = h.status;
				p->payload = payload;
				p->len = h.len;
				p->fd = fd;
				fd = -1;
				payload = NULL;
				pthread_cond_broadcast(&w->cond);
			}
		}
		if (own_fd && fd >= 0)
			close(fd);	/* nobody asked for it */
		pthread_mutex_unlock(&w->lock);
		free(payload);
	}
	reader_end(w);
	ref_put(w);	/* the reader's */
	return NULL;
}

/* ---- connections ---- */

static int wire_connect(struct udax_wire **out, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t nl = strnlen(name, sizeof(sa.sun_path) - 1);
	struct udax_wire *w;
	sigset_t all, old;
	pthread_t t;
	int err;

	if (nl == 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->gen = atomic_load(&g_gen);
	w->dev_fd = -1;
	w->users = 1;
	atomic_init(&w->refs, 2);	/* the caller's, the reader's */
	const char *t_drop = getenv("UDAX_TEST_DROP_ORPHANS");
	w->drop_orphans = t_drop && *t_drop && *t_drop != '0';
	const char *t_loss = getenv("UDAX_TEST_IGNORE_DAEMON_LOSS");
	w->ignore_loss = t_loss && *t_loss && *t_loss != '0';
	memcpy(sa.sun_path, name, nl);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract */
	w->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->sock < 0 ||
	    connect(w->sock, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + nl)) < 0) {
		err = -errno;
		if (w->sock >= 0)
			close(w->sock);
		free(w);
		return err;
	}
	pthread_mutex_init(&w->send, NULL);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	/* the reader must never take the application's signals */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&t, NULL, reader_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		w->refs = 1;
		wire_free(w);
		return err;
	}
	pthread_detach(t);
	*out = w;
	return 0;
}

int udax_wire_open(struct udax_wire **out, const char *sock_name)
{
	pthread_once(&g_once, once_init);
	return wire_connect(out, sock_name);
}

int udax_wire_get(struct udax_wire **out, const char *sock_name)
{
	struct udax_wire *w;
	int err;

	pthread_once(&g_once, once_init);
	pthread_mutex_lock(&g_lock);
	for (w = g_wires; w; w = w->next) {
		if (strcmp(w->name, sock_name) == 0 && !udax_wire_dead(w)) {
			w->users++;
			atomic_fetch_add(&w->refs, 1);
			pthread_mutex_unlock(&g_lock);
			*out = w;
			return 0;
		}
	}
	err = wire_connect(&w, sock_name);
	if (!err) {
		/* one more user and reference: the list's */
		w->users++;
		atomic_fetch_add(&w->refs, 1);
		w->shared = true;
		w->next = g_wires;
		g_wires = w;
		*out = w;
	}
	pthread_mutex_unlock(&g_lock);
	return err;
}

void udax_wire_put(struct udax_wire **wp)
{
	struct udax_wire *w = wp ? *wp : NULL;

	if (!w)
		return;
	*wp = NULL;
	if (stale(w))
		return;		/* the parent's: never touched here */
	pthread_mutex_lock(&g_lock);
	users_put_locked(w);
	pthread_mutex_unlock(&g_lock);
	ref_put(w);
}

void udax_wire_hold(struct udax_wire *w)
{
	if (stale(w))
		return;		/* the parent's: never touched here (put ignores it too) */
	pthread_mutex_lock(&g_lock);
	w->users++;
	atomic_fetch_add(&w->refs, 1);
	pthread_mutex_unlock(&g_lock);
}

bool udax_wire_dead(struct udax_wire *w)
{
	if (stale(w))
		return true;
	pthread_mutex_lock(&w->lock);
	bool d = w->dead;
	pthread_mutex_unlock(&w->lock);
	return d;
}

int udax_wire_dev_fd(struct udax_wire *w)
{
	if (stale(w))
		return -1;
	pthread_mutex_lock(&w->lock);
	int fd = w->dev_fd;
	pthread_mutex_unlock(&w->lock);
	return fd;
}

/*
 * The daemon's page-cache table (udax_proto.h, UDAX_REQ_CACHETAB), asked
 * for and mapped read-only once per connection.  Return: the flags and
 * their number in *n, or NULL (a daemon without one: the caller looks at
 * the kernel's cache itself).
 */
const _Atomic uint32_t *udax_wire_cachetab(struct udax_wire *w, uint32_t *n)
{
	*n = 0;
	if (stale(w))
		return NULL;
	pthread_mutex_lock(&w->lock);
	int st = w->ctab_state;
	pthread_mutex_unlock(&w->lock);
	if (st == 0) {
		void *rp = NULL;
		uint32_t rlen = 0;
		int fd = -1;
		const _Atomic uint32_t *tab = NULL;
		struct udax_cachetab_rep rep = { 0 };
		int err = udax_wire_call(w, UDAX_REQ_CACHETAB, NULL, 0, &rp, &rlen, &fd);
		if (!err && rlen >= sizeof(rep) && fd >= 0) {
			memcpy(&rep, rp, sizeof(rep));
			void *p = rep.nslots ? mmap(NULL, (size_t)rep.nslots * sizeof(uint32_t),
						    PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
			if (p != MAP_FAILED)
				tab = p;
		}
		if (fd >= 0)
			close(fd);
		free(rp);
		pthread_mutex_lock(&w->lock);
		if (w->ctab_state == 0) {
			w->ctab = tab;
			w->ctab_n = tab ? rep.nslots : 0;
			w->ctab_state = tab ? 1 : -1;
			tab = NULL;
		}
		pthread_mutex_unlock(&w->lock);
		if (tab)	/* another thread mapped it first */
			munmap((void *)tab, (size_t)rep.nslots * sizeof(uint32_t));
	}
	pthread_mutex_lock(&w->lock);
	const _Atomic uint32_t *t = w->ctab_state == 1 ? w->ctab : NULL;
	*n = w->ctab_n;
	pthread_mutex_unlock(&w->lock);
	return t;
}

int udax_wire_map_runs(udax_wire_mmap_fn map, char *at, uint64_t len,
		       const struct udax_run *runs, uint32_t nruns, bool write, bool devdax,
		       int dev_fd, uint64_t *bad_off)
{
	int prot = PROT_READ | (write ? PROT_WRITE : 0);
	int flags = MAP_FIXED | (devdax ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED);
	uint64_t pos = 0;

	for (uint32_t i = 0; i < nruns; i++) {
		if (pos + runs[i].len > len)
			return -EPROTO;
		if (map(at + pos, runs[i].len, prot, flags, dev_fd, (off_t)runs[i].dev_off) ==
		    MAP_FAILED) {
			*bad_off = runs[i].dev_off;
			return -errno;
		}
		pos += runs[i].len;
	}
	return pos == len ? 0 : -EPROTO;
}

int udax_wire_send(struct udax_wire *w, uint16_t type, const void *req, uint32_t len)
{
	if (stale(w))
		return -ENOTCONN;
	return wire_send(w, type, 0, req, len);
}

int udax_wire_call(struct udax_wire *w, uint16_t type, const void *req, uint32_t len,
		   void **rep, uint32_t *rep_len, int *rep_fd)
{
	struct pending pe = { .fd = -1 };
	int err;

	if (rep)
		*rep = NULL;
	if (rep_len)
		*rep_len = 0;
	if (rep_fd)
		*rep_fd = -1;
	if (stale(w))
		return -ENOTCONN;
	pthread_mutex_lock(&w->lock);
	if (w->dead) {
		pthread_mutex_unlock(&w->lock);
		return -ENOTCONN;
	}
	pe.seq = ++w->seq ? w->seq : ++w->seq;	/* 0 is for pushes */
	pe.next = w->pend;
	w->pend = &pe;
	pthread_mutex_unlock(&w->lock);

	err = wire_send(w, type, pe.seq, req, len);

	pthread_mutex_lock(&w->lock);
	while (!err && !pe.done && !w->dead)
		pthread_cond_wait(&w->cond, &w->lock);
	struct pending **pp = &w->pend;

	while (*pp != &pe)
		pp = &(*pp)->next;
	*pp = pe.next;
	pthread_mutex_unlock(&w->lock);
	if (!pe.done)
		return err ? err : -ENOTCONN;
	if (rep)
		*rep = pe.payload;
	else
		free(pe.payload);
	if (rep_len)
		*rep_len = pe.len;
	if (rep_fd)
		*rep_fd = pe.fd;
	return pe.status;
}

int udax_wire_layout_add(struct udax_wire *w, uint64_t id, udax_wire_recall_fn fn, void *arg)
{
	struct wlayout *l;

	if (stale(w))
		return -ENOTCONN;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->id = id;
	l->fn = fn;
	l->arg = arg;
	pthread_mutex_lock(&w->lock);
	l->next = w->layouts;
	w->layouts = l;
	for (unsigned int i = 0; i < w->norphans; i++) {
		if (w->orphans[i].id != id)
			continue;
		struct udax_recall_msg rm = w->orphans[i];

		w->orphans[i] = w->orphans[--w->norphans];
		if (w->orphan_next > w->norphans)
			w->orphan_next = 0;
		deliver(w, id, &rm, false);
		break;
	}
	if (w->dead && !w->ignore_loss && find_layout(w, id) == l && !l->lost_told)
		deliver(w, id, NULL, true);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void udax_wire_layout_del(struct udax_wire *w, uint64_t id)
{
	if (stale(w))
		return;
	pthread_mutex_lock(&w->lock);
	struct wlayout **pp = &w->layouts;

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	struct wlayout *l = *pp;

	if (l) {
		*pp = l->next;
		if (l->busy && pthread_equal(l->busy_thread, pthread_self())) {
			l->deleted = true;	/* freed when the callback returns */
		} else {
			while (l->busy)
				pthread_cond_wait(&w->cond, &w->lock);
			free(l);
		}
	}
	pthread_mutex_unlock(&w->lock);
}
