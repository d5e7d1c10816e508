// SPDX-License-Identifier: MIT
/*
 * preload_uring.c - libudax-preload.so: io_uring fixed buffers over direct
 * mappings (pins).  See preload.c for the whole shim.
 *
 * An unmodified program may register its direct mapping as io_uring fixed
 * buffers: the kernel then long-term pins the device pages, and a truncate
 * must wait for them.  The shim declares such pins to the daemon before
 * the kernel takes them (UDAX_REQ_PIN: layout, ring descriptor, range), and
 * fails the registration with the daemon's refusal (EBUSY: a recall is
 * under way; EOPNOTSUPP: the daemon cannot supervise that ring).  When the
 * kernel registration fails, or a later unregistration or slot update
 * drops a buffer, the pin is released (UDAX_REQ_UNPIN).
 *
 * Interposed: liburing's io_uring_register_buffers, _tags, _update_tag and
 * io_uring_register (the raw call it exports), and libc's syscall() for
 * SYS_io_uring_register.  Not seen: a program issuing the system call with
 * its own inline instructions (liburing's internal calls are such, which is
 * why the exported functions are interposed); the daemon's own discovery of
 * rings that hold a layout's pages is the backstop for those.
 *
 * The pin records live on the mapping table's pins list (preload_mmap.c,
 * tbl_lock): a recall there drops those of its layout.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "preload_int.h"

#ifndef IORING_REGISTER_USE_REGISTERED_RING
#define IORING_REGISTER_USE_REGISTERED_RING (1u << 31)
#endif
#define REG_CLONE_BUFFERS_ 30u		/* IORING_REGISTER_CLONE_BUFFERS (6.12) */
#define REG_SRC_REGISTERED_ (1u << 0)
#define REG_DST_REPLACE_ (1u << 1)
struct clone_buffers_ {			/* struct io_uring_clone_buffers */
	uint32_t src_fd, flags, src_off, dst_off, nr, pad[3];
};

typedef int (*reg_bufs_fn)(struct io_uring *, const struct iovec *, unsigned int);
typedef int (*reg_bufs_tags_fn)(struct io_uring *, const struct iovec *, const __u64 *,
				unsigned int);
typedef int (*reg_upd_tag_fn)(struct io_uring *, unsigned int, const struct iovec *,
			      const __u64 *, unsigned int);
typedef int (*unreg_bufs_fn)(struct io_uring *);
typedef int (*uring_register_fn)(unsigned int, unsigned int, const void *, unsigned int);
typedef long (*syscall_fn)(long, ...);

/* A registration in the making: what it pins, what it replaces. */
struct reg {
	int ring_fd;			/* -1: a registered-ring index (unknown) */
	bool whole_table;		/* the ring's whole table is (re)placed */
	unsigned int first, n;		/* otherwise the slots [first, first + n) */
	struct pin *fresh;		/* pins granted for it, not on the list yet */
};

static bool pins_disabled(void)
{
	const char *e = getenv("UDAX_PRELOAD_TEST_NO_PIN");	/* negative control only */

	return e && *e && *e != '0';
}

/* Release one pin in the daemon.  Context: no lock held. */
static void pin_release(const struct pin *p)
{
	struct udax_pin_req pr = { .id = p->pm->id, .ring_fd = p->ring_fd,
				   .addr = p->addr, .len = p->len };
	int ret = call(p->pm->w, UDAX_REQ_UNPIN, &pr, sizeof(pr), NULL, NULL);

	dbg("unpin ring %d slot %u %#llx+%llu: %d", p->ring_fd, p->slot,
	    (unsigned long long)p->addr, (unsigned long long)p->len, ret);
}

/* UNPIN and free a list of pins (not on the list).  Context: no lock held. */
static void pins_drop(struct pin *list)
{
	while (list) {
		struct pin *p = list;
		struct pmap *dead;

		list = p->next;
		pthread_mutex_lock(&tbl_lock);
		bool held = p->pm->held;
		pthread_mutex_unlock(&tbl_lock);
		if (held)
			pin_release(p);
		pthread_mutex_lock(&tbl_lock);
		dead = pm_unref(p->pm, true);
		pthread_mutex_unlock(&tbl_lock);
		if (dead)
			ghost_free(dead);
		free(p);
	}
}

/*
 * Ask the daemon for a pin on every direct mapping that @iov[i] overlaps,
 * as slot @first + i of ring @r->ring_fd.
 * Return: 0, or the daemon's refusal (the pins granted so far released).
 */
static int reg_pin(struct reg *r, unsigned int first, const struct iovec *iov, unsigned int nr)
{
	for (unsigned int i = 0; iov && i < nr; i++) {
		char *lo = iov[i].iov_base, *hi = lo + iov[i].iov_len;

		if (!lo || lo >= hi)
			continue;	/* an empty slot */
		for (;;) {
			struct pin *p = calloc(1, sizeof(*p));
			struct pmap *pm;
			char *a = NULL, *b = NULL;

			if (!p)
				return -ENOMEM;
			/* the next layout overlapping this iovec that has no pin from it yet */
			pthread_mutex_lock(&tbl_lock);
			for (pm = tbl; pm; pm = pm->next) {
				if (pm->pid != getpid() || !pm->held || !pm->granted)
					continue;
				a = pm->addr > lo ? pm->addr : lo;
				b = pm->addr + pm->granted < hi ? pm->addr + pm->granted : hi;
				if (a >= b)
					continue;
				bool seen = false;

				for (struct pin *q = r->fresh; q; q = q->next)
					seen |= q->pm == pm && q->slot == first + i;
				if (!seen)
					break;
			}
			if (pm)
				pm->inflight++;
			pthread_mutex_unlock(&tbl_lock);
			if (!pm) {
				free(p);
				break;
			}
			*p = (struct pin){ .pm = pm, .ring_fd = r->ring_fd, .slot = first + i,
					   .addr = (uint64_t)(uintptr_t)a, .len = (uint64_t)(b - a) };
			struct udax_pin_req pr = { .id = pm->id, .ring_fd = r->ring_fd,
						   .addr = p->addr, .len = p->len };
			int ret = call(pm->w, UDAX_REQ_PIN, &pr, sizeof(pr), NULL, NULL);

			dbg("pin ring %d slot %u %p+%zu of layout %llu: %d", r->ring_fd, first + i,
			    (void *)a, (size_t)(b - a), (unsigned long long)pm->id, ret);
			pthread_mutex_lock(&tbl_lock);
			if (!ret)
				pm->pins++;
			struct pmap *dead = pm_unref(pm, false);
			pthread_mutex_unlock(&tbl_lock);
			if (dead)
				ghost_free(dead);
			if (ret < 0) {
				free(p);
				/* gone meanwhile (recalled, daemon lost): the pages are not there */
				return ret == -ESTALE || ret == -ENOTCONN ? -EFAULT : ret;
			}
			p->next = r->fresh;
			r->fresh = p;
		}
	}
	return 0;
}

/* The kernel refused: release what reg_pin() took. */
static void reg_abort(struct reg *r)
{
	pins_drop(r->fresh);
	r->fresh = NULL;
}

/* The kernel took it: the replaced slots' pins go, the new ones are recorded. */
static void reg_commit(struct reg *r)
{
	struct pin *old = NULL;

	pthread_mutex_lock(&tbl_lock);
	for (struct pin **pp = &pins; *pp;) {
		struct pin *p = *pp;

		if (p->ring_fd == r->ring_fd &&
		    (r->whole_table || (p->slot >= r->first && p->slot - r->first < r->n))) {
			*pp = p->next;
			p->next = old;
			old = p;
			continue;
		}
		pp = &p->next;
	}
	struct pmap *dead = NULL;	/* ghosts nothing references, off the list */

	while (r->fresh) {
		struct pin *p = r->fresh;

		r->fresh = p->next;
		if (p->pm->held) {
			p->next = pins;
			pins = p;
			continue;
		}
		/* recalled meanwhile: the layout (and its pins) went back */
		struct pmap *d = pm_unref(p->pm, true);

		free(p);
		if (d) {
			d->next = dead;
			dead = d;
		}
	}
	pthread_mutex_unlock(&tbl_lock);
	while (dead) {
		struct pmap *d = dead;

		dead = d->next;
		ghost_free(d);
	}
	pins_drop(old);
}

/*
 * The copies IORING_REGISTER_CLONE_BUFFERS makes on ring @dst of ring
 * @c->src_fd's slots: pin them for @dst too.
 */
static int reg_pin_clone(struct reg *r, const struct clone_buffers_ *c)
{
	struct { struct pmap *pm; unsigned int slot; uint64_t addr, len; } want[64];
	unsigned int n = 0;

	pthread_mutex_lock(&tbl_lock);
	for (struct pin *p = pins; p && n < 64; p = p->next) {
		if (p->ring_fd != (int)c->src_fd || !p->pm->held || p->slot < c->src_off ||
		    (c->nr && p->slot - c->src_off >= c->nr))
			continue;
		want[n].pm = p->pm;
		want[n].slot = p->slot - c->src_off + c->dst_off;
		want[n].addr = p->addr;
		want[n].len = p->len;
		p->pm->inflight++;
		n++;
	}
	pthread_mutex_unlock(&tbl_lock);
	int ret = 0;

	for (unsigned int i = 0; i < n; i++) {
		struct pin *p = ret ? NULL : calloc(1, sizeof(*p));
		int err = 0;

		if (!ret && !p)
			ret = -ENOMEM;
		if (!ret) {
			*p = (struct pin){ .pm = want[i].pm, .ring_fd = r->ring_fd,
					   .slot = want[i].slot, .addr = want[i].addr,
					   .len = want[i].len };
			struct udax_pin_req pr = { .id = p->pm->id, .ring_fd = r->ring_fd,
						   .addr = p->addr, .len = p->len };
			err = call(p->pm->w, UDAX_REQ_PIN, &pr, sizeof(pr), NULL, NULL);
		}
		pthread_mutex_lock(&tbl_lock);
		if (p && !err) {
			want[i].pm->pins++;
			p->next = r->fresh;
			r->fresh = p;
		}
		struct pmap *dead = pm_unref(want[i].pm, false);
		pthread_mutex_unlock(&tbl_lock);
		if (dead)
			ghost_free(dead);
		if (p && err) {
			free(p);
			ret = err == -ESTALE || err == -ENOTCONN ? -EFAULT : err;
		}
	}
	return ret;
}

/*
 * Work out what io_uring_register(@fd, @opcode, @arg, @nr_args) pins and
 * replaces, and take the pins.  Return 1: a buffer operation (reg filled;
 * the caller registers, then reg_commit / reg_abort); 0: not one (pass
 * through); -errno: refused.
 */
static int reg_prepare(struct reg *r, int fd, unsigned int opcode, void *arg,
		       unsigned int nr_args)
{
	unsigned int op = opcode & ~IORING_REGISTER_USE_REGISTERED_RING;
	int ret;

	*r = (struct reg){ .ring_fd = (opcode & IORING_REGISTER_USE_REGISTERED_RING) ? -1 : fd };
	switch (op) {
	case IORING_REGISTER_BUFFERS:
		r->whole_table = true;
		ret = reg_pin(r, 0, arg, nr_args);
		break;
	case IORING_UNREGISTER_BUFFERS:
		r->whole_table = true;
		ret = 0;
		break;
	case IORING_REGISTER_BUFFERS2: {
		struct io_uring_rsrc_register rr;

		if (!arg || nr_args != sizeof(rr))
			return 0;	/* the kernel says EINVAL */
		memcpy(&rr, arg, sizeof(rr));
		r->whole_table = true;
		ret = (rr.flags & IORING_RSRC_REGISTER_SPARSE) ? 0 :
		      reg_pin(r, 0, (const struct iovec *)(uintptr_t)rr.data, rr.nr);
		break;
	}
	case IORING_REGISTER_BUFFERS_UPDATE: {
		struct io_uring_rsrc_update2 up;

		if (!arg || nr_args != sizeof(up))
			return 0;
		memcpy(&up, arg, sizeof(up));
		r->first = up.offset;
		r->n = up.nr;
		ret = reg_pin(r, up.offset, (const struct iovec *)(uintptr_t)up.data, up.nr);
		break;
	}
	case REG_CLONE_BUFFERS_: {
		struct clone_buffers_ cb;

		if (!arg || nr_args != 1)
			return 0;
		memcpy(&cb, arg, sizeof(cb));
		if (cb.flags & REG_SRC_REGISTERED_) {
			/* the source is a registered-ring index: not resolvable here */
			dbg("clone from a registered ring index: pins not declared");
			return 0;
		}
		r->whole_table = !cb.nr;
		r->first = cb.dst_off;
		r->n = cb.nr;
		ret = reg_pin_clone(r, &cb);
		break;
	}
	default:
		return 0;
	}
	if (ret < 0) {
		reg_abort(r);
		return ret;
	}
	return 1;
}

/* Any direct mapping or pin in this process (the fast pass-through test)? */
static bool pins_possible(void)
{
	return (tbl || pins || ghosts) && !pins_disabled();
}

/*
 * The common path: declare, register with @real, commit or release.
 * Return what @real returned (0 or -errno), or the daemon's refusal.
 */
static int reg_wrap(int fd, unsigned int opcode, void *arg, unsigned int nr_args,
		    int (*real)(void *ctx), void *ctx)
{
	struct reg r;
	int ret;

	if (in_shim || !pins_possible())
		return real(ctx);
	in_shim++;
	ret = reg_prepare(&r, fd, opcode, arg, nr_args);
	if (ret <= 0) {
		in_shim--;
		return ret < 0 ? ret : real(ctx);
	}
	ret = real(ctx);
	if (ret < 0)
		reg_abort(&r);
	else
		reg_commit(&r);
	in_shim--;
	return ret;
}

/* Calls of the real functions, in one shape for reg_wrap(). */
struct real_call {
	void *fn;
	struct io_uring *ring;
	const struct iovec *iov;
	const __u64 *tags;
	unsigned int off, nr;
	unsigned int fd, opcode;
	void *arg;
	long a[6];
};

static int call_reg_bufs(void *c_)
{
	struct real_call *c = c_;

	return ((reg_bufs_fn)c->fn)(c->ring, c->iov, c->nr);
}

static int call_reg_bufs_tags(void *c_)
{
	struct real_call *c = c_;

	return ((reg_bufs_tags_fn)c->fn)(c->ring, c->iov, c->tags, c->nr);
}

static int call_reg_upd_tag(void *c_)
{
	struct real_call *c = c_;

	return ((reg_upd_tag_fn)c->fn)(c->ring, c->off, c->iov, c->tags, c->nr);
}

static int call_unreg_bufs(void *c_)
{
	struct real_call *c = c_;

	return ((unreg_bufs_fn)c->fn)(c->ring);
}

static int call_uring_register(void *c_)
{
	struct real_call *c = c_;

	return ((uring_register_fn)c->fn)(c->fd, c->opcode, c->arg, c->nr);
}

static int call_syscall(void *c_)
{
	struct real_call *c = c_;
	long r = ((syscall_fn)c->fn)(SYS_io_uring_register, c->a[0], c->a[1], c->a[2], c->a[3],
				      c->a[4], c->a[5]);

	return r < 0 ? -errno : (int)r;
}

/* dlsym(RTLD_NEXT) once per name; NULL when liburing is not loaded. */
static void *next_fn(void *volatile *cache, const char *name)
{
	void *f = *cache;

	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		*cache = f;
	}
	return f;
}

static void *volatile r_reg_bufs, *volatile r_reg_bufs_tags, *volatile r_reg_upd_tag,
	*volatile r_unreg_bufs, *volatile r_uring_register, *volatile r_syscall;

EXPORT int io_uring_register_buffers(struct io_uring *ring, const struct iovec *iovecs,
				     unsigned int nr_iovecs)
{
	struct real_call c = { .fn = next_fn(&r_reg_bufs, "io_uring_register_buffers"),
			       .ring = ring, .iov = iovecs, .nr = nr_iovecs };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_REGISTER_BUFFERS, (void *)iovecs, nr_iovecs,
			call_reg_bufs, &c);
}

EXPORT int io_uring_register_buffers_tags(struct io_uring *ring, const struct iovec *iovecs,
					  const __u64 *tags, unsigned int nr)
{
	struct real_call c = { .fn = next_fn(&r_reg_bufs_tags, "io_uring_register_buffers_tags"),
			       .ring = ring, .iov = iovecs, .tags = tags, .nr = nr };
	struct io_uring_rsrc_register rr = { .nr = nr, .data = (uint64_t)(uintptr_t)iovecs,
					     .tags = (uint64_t)(uintptr_t)tags };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_REGISTER_BUFFERS2, &rr, sizeof(rr),
			call_reg_bufs_tags, &c);
}

EXPORT int io_uring_register_buffers_update_tag(struct io_uring *ring, unsigned int off,
						const struct iovec *iovecs, const __u64 *tags,
						unsigned int nr)
{
	struct real_call c = { .fn = next_fn(&r_reg_upd_tag, "io_uring_register_buffers_update_tag"),
			       .ring = ring, .off = off, .iov = iovecs, .tags = tags, .nr = nr };
	struct io_uring_rsrc_update2 up = { .offset = off, .data = (uint64_t)(uintptr_t)iovecs,
					    .tags = (uint64_t)(uintptr_t)tags, .nr = nr };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_REGISTER_BUFFERS_UPDATE, &up, sizeof(up),
			call_reg_upd_tag, &c);
}

EXPORT int io_uring_unregister_buffers(struct io_uring *ring)
{
	struct real_call c = { .fn = next_fn(&r_unreg_bufs, "io_uring_unregister_buffers"),
			       .ring = ring };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap(ring->ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0, call_unreg_bufs, &c);
}

EXPORT int io_uring_register(unsigned int fd, unsigned int opcode, const void *arg,
			     unsigned int nr_args)
{
	struct real_call c = { .fn = next_fn(&r_uring_register, "io_uring_register"),
			       .fd = fd, .opcode = opcode, .arg = (void *)arg, .nr = nr_args };

	if (!c.fn)
		return -ENOSYS;
	return reg_wrap((int)fd, opcode, (void *)arg, nr_args, call_uring_register, &c);
}

EXPORT long syscall(long number, ...)
{
	struct real_call c = { .fn = next_fn(&r_syscall, "syscall") };
	va_list ap;

	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		c.a[i] = va_arg(ap, long);
	va_end(ap);
	if (number != SYS_io_uring_register || in_shim || !pins_possible())
		return ((syscall_fn)c.fn)(number, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4], c.a[5]);
	int ret = reg_wrap((int)c.a[0], (unsigned int)c.a[1], (void *)c.a[2], (unsigned int)c.a[3],
			   call_syscall, &c);

	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return ret;
}
