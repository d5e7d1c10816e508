// SPDX-License-Identifier: MIT
/*
 * status.c - decode the daemon's status records (status.h).  Every rule of
 * udax_proto.h is checked before a record is used: a stream from an older
 * daemon, a reply cut short or a buggy writer ends in one clear message,
 * never in a read past the buffer.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "wire.h"

_Static_assert(sizeof(struct udax_srec_head) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_device) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_client) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_layout) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_pin) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_pages) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_waiter) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_file) % 8 == 0, "records are 8-byte multiples");
_Static_assert(sizeof(struct udax_srec_end) % 8 == 0, "records are 8-byte multiples");

/*
 * LE(field) - turn one little-endian field into host order, in place.  The
 * width comes from the field's own type, so a decoder cannot swap a 64-bit
 * field as 32 bits (or a signed one through the wrong cast).
 */
#define LE(x) ((x) = _Generic((x),						\
	uint16_t: le16toh((uint16_t)(x)),					\
	uint32_t: le32toh((uint32_t)(x)),					\
	int32_t: (int32_t)le32toh((uint32_t)(x)),				\
	uint64_t: le64toh((uint64_t)(x))))

static void le_hdr(struct udax_srec *h)
{
	LE(h->type);
	LE(h->reserved);
	LE(h->len);
}

static void le_head(struct udax_srec_head *r)
{
	LE(r->version);
	LE(r->pid);
	LE(r->quarantined_blocks);
	LE(r->tracked_entries);
	LE(r->live_handles);
	LE(r->busy_handles);
	LE(r->waiters);
	LE(r->handle_bytes);
	LE(r->unsafe_frees);
}

static void le_device(struct udax_srec_device *r)
{
	LE(r->size);
	LE(r->align);
	LE(r->target_node);
	LE(r->mode);
}

static void le_client(struct udax_srec_client *r)
{
	LE(r->cid);
	LE(r->pid);
	LE(r->uid);
	LE(r->flags);
	LE(r->age_ns);
}

static void le_layout(struct udax_srec_layout *r)
{
	LE(r->cid);
	LE(r->flags);
	LE(r->id);
	LE(r->ino);
	LE(r->off);
	LE(r->len);
	LE(r->pins);
	LE(r->age_ns);
	LE(r->pin_age_ns);
}

static void le_pin(struct udax_srec_pin *r)
{
	LE(r->cid);
	LE(r->flags);
	LE(r->layout_id);
	LE(r->addr);
	LE(r->len);
	LE(r->ring_fd);
}

static void le_pages(struct udax_srec_pages *r)
{
	LE(r->ino);
	LE(r->index);
	LE(r->npages);
	LE(r->pfn);
	LE(r->handles);
	LE(r->order);
	LE(r->refcount);
	LE(r->mapcount);
	LE(r->pincount);
	LE(r->flags);
	LE(r->age_ns);
}

static void le_waiter(struct udax_srec_waiter *r)
{
	LE(r->ino);
	LE(r->start);
	LE(r->end);
	LE(r->wait_index);
	LE(r->wait_pfn);
	LE(r->refcount);
	LE(r->flags);
	LE(r->waiting_ns);
}

static void le_file(struct udax_srec_file *r)
{
	LE(r->ino);
	LE(r->flags);
}

static void le_end(struct udax_srec_end *r)
{
	LE(r->nrecords);
	LE(r->dropped);
}

static const char *type_name(uint16_t type)
{
	switch (type) {
	case UDAX_SREC_HEAD: return "HEAD";
	case UDAX_SREC_DEVICE: return "DEVICE";
	case UDAX_SREC_CLIENT: return "CLIENT";
	case UDAX_SREC_LAYOUT: return "LAYOUT";
	case UDAX_SREC_PIN: return "PIN";
	case UDAX_SREC_PAGES: return "PAGES";
	case UDAX_SREC_WAITER: return "WAITER";
	case UDAX_SREC_FILE: return "FILE";
	case UDAX_SREC_END: return "END";
	case 0: return "no header";
	default: return "unknown type";
	}
}

/* The fixed part a record of @type must have, 0 for types this reader skips. */
static size_t known_size(uint16_t type)
{
	switch (type) {
	case UDAX_SREC_HEAD: return sizeof(struct udax_srec_head);
	case UDAX_SREC_DEVICE: return sizeof(struct udax_srec_device);
	case UDAX_SREC_CLIENT: return sizeof(struct udax_srec_client);
	case UDAX_SREC_LAYOUT: return sizeof(struct udax_srec_layout);
	case UDAX_SREC_PIN: return sizeof(struct udax_srec_pin);
	case UDAX_SREC_PAGES: return sizeof(struct udax_srec_pages);
	case UDAX_SREC_WAITER: return sizeof(struct udax_srec_waiter);
	case UDAX_SREC_FILE: return sizeof(struct udax_srec_file);
	case UDAX_SREC_END: return sizeof(struct udax_srec_end);
	default: return 0;
	}
}

struct dec {
	char *why;
	size_t whylen;
	size_t n;			/* records seen */
	size_t off;			/* of the current record */
	uint16_t type;
};

static int bad(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct dec *d, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->why && d->whylen)
		snprintf(d->why, d->whylen, "status record %zu (%s, byte %zu): %s", d->n + 1,
			 type_name(d->type), d->off, msg);
	return -EPROTO;
}

/* Append @rec (@size bytes) to the array *@arr of *@n. */
static int push(void *arr, size_t *n, const void *rec, size_t size)
{
	char **a = arr;
	char *na = realloc(*a, (*n + 1) * size);

	if (!na)
		return -ENOMEM;
	memcpy(na + *n * size, rec, size);
	*a = na;
	(*n)++;
	return 0;
}

/* The string after a record's fixed part: NUL-terminated within the record. */
static int tail_str(struct dec *d, const char *rec, size_t fixed, size_t len, char **out)
{
	const char *s = rec + fixed;
	size_t room = len - fixed;
	const char *nul = room ? memchr(s, '\0', room) : NULL;

	if (!nul)
		return bad(d, "its string (%zu bytes after the fixed part) is not NUL-terminated",
			   room);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int udax_status_decode(const void *buf, size_t len, struct udax_status **out,
		       char *why, size_t whylen)
{
	const char *p = buf;
	struct udax_status *st;
	struct dec d = { why, whylen, 0, 0, 0 };
	bool ended = false;
	int err = 0;

	*out = NULL;
	if (why && whylen)
		why[0] = '\0';
	if (len && p[0] == '{')
		return bad(&d, "this is JSON: the daemon is from an older udaxfs (restart it, "
			   "or use the udaxctl that came with it)");
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	while (d.off < len && !err) {
		struct udax_srec h;
		union {
			struct udax_srec_head head;
			struct udax_srec_device device;
			struct udax_srec_client client;
			struct udax_srec_layout layout;
			struct udax_srec_pin pin;
			struct udax_srec_pages pages;
			struct udax_srec_waiter waiter;
			struct udax_srec_file file;
			struct udax_srec_end end;
		} r;
		const char *rec = p + d.off;

		d.type = 0;
		if (len - d.off < sizeof(h)) {
			err = bad(&d, "only %zu bytes left, less than a record header", len - d.off);
			break;
		}
		memcpy(&h, rec, sizeof(h));
		le_hdr(&h);
		d.type = h.type;
		if (ended) {
			err = bad(&d, "a record after the END record");
			break;
		}
		if (h.len < sizeof(h) || h.len % 8) {
			err = bad(&d, "length %u is not a multiple of 8 of at least %zu", h.len,
				  sizeof(h));
			break;
		}
		if (h.len > len - d.off) {
			err = bad(&d, "length %u runs past the end of the reply (%zu bytes left): "
				  "the reply was cut short", h.len, len - d.off);
			break;
		}
		size_t ks = known_size(h.type);
		if (d.n == 0 && h.type != UDAX_SREC_HEAD) {
			err = bad(&d, "the stream does not start with a HEAD record");
			break;
		}
		if (!ks) {
			st->skipped++;	/* a later daemon's record type */
			goto next;
		}
		if (h.len < ks) {
			err = bad(&d, "length %u is shorter than the %zu bytes of this record type",
				  h.len, ks);
			break;
		}
		memset(&r, 0, sizeof(r));
		memcpy(&r, rec, ks);
		switch (h.type) {
		case UDAX_SREC_HEAD:
			if (d.n) {
				err = bad(&d, "a second HEAD record");
				break;
			}
			le_head(&r.head);
			if (r.head.version != UDAX_STATUS_VERSION) {
				err = bad(&d, "status version %u; this reader knows version %u",
					  r.head.version, UDAX_STATUS_VERSION);
				break;
			}
			st->head = r.head;
			err = tail_str(&d, rec, ks, h.len, &st->mountpoint);
			break;
		case UDAX_SREC_DEVICE:
			le_device(&r.device);
			if (st->has_device) {
				err = bad(&d, "a second DEVICE record");
				break;
			}
			st->device = r.device;
			st->has_device = true;
			err = tail_str(&d, rec, ks, h.len, &st->device_path);
			break;
		case UDAX_SREC_CLIENT:
			le_client(&r.client);
			if (udax_status_client(st, r.client.cid)) {
				err = bad(&d, "client number %u appears twice", r.client.cid);
				break;
			}
			if (!memchr(r.client.comm, '\0', sizeof(r.client.comm))) {
				err = bad(&d, "its comm is not NUL-terminated");
				break;
			}
			err = push(&st->clients, &st->nclients, &r.client, sizeof(r.client));
			break;
		case UDAX_SREC_LAYOUT:
			le_layout(&r.layout);
			if (!udax_status_client(st, r.layout.cid)) {
				err = bad(&d, "layout %" PRIu64 " names client %u, which no earlier "
					  "CLIENT record introduced", r.layout.id, r.layout.cid);
				break;
			}
			err = push(&st->layouts, &st->nlayouts, &r.layout, sizeof(r.layout));
			break;
		case UDAX_SREC_PIN:
			le_pin(&r.pin);
			if (!udax_status_client(st, r.pin.cid)) {
				err = bad(&d, "a pin names client %u, which no earlier CLIENT record "
					  "introduced", r.pin.cid);
				break;
			}
			err = push(&st->pins, &st->npins, &r.pin, sizeof(r.pin));
			break;
		case UDAX_SREC_PAGES:
			le_pages(&r.pages);
			if (!r.pages.npages || r.pages.index + r.pages.npages < r.pages.index) {
				err = bad(&d, "a page run of %" PRIu64 " pages from index %" PRIu64,
					  r.pages.npages, r.pages.index);
				break;
			}
			err = push(&st->pages, &st->npages, &r.pages, sizeof(r.pages));
			break;
		case UDAX_SREC_WAITER:
			le_waiter(&r.waiter);
			err = push(&st->waiters, &st->nwaiters, &r.waiter, sizeof(r.waiter));
			break;
		case UDAX_SREC_FILE: {
			struct udax_status_file f;

			le_file(&r.file);
			f.ino = r.file.ino;
			f.flags = r.file.flags;
			err = tail_str(&d, rec, ks, h.len, &f.path);
			if (err)
				break;
			err = push(&st->files, &st->nfiles, &f, sizeof(f));
			if (err)
				free(f.path);
			break;
		}
		case UDAX_SREC_END:
			le_end(&r.end);
			if (r.end.nrecords != d.n) {
				err = bad(&d, "it counts %" PRIu64 " records before it, %zu arrived",
					  r.end.nrecords, d.n);
				break;
			}
			st->dropped = r.end.dropped;
			ended = true;
			break;
		}
next:
		if (err)
			break;
		d.off += h.len;
		d.n++;
	}
	if (!err && !ended) {
		d.type = UDAX_SREC_END;
		err = bad(&d, "missing: the reply (%zu bytes) ends without it, so it was cut short",
			  len);
	}
	if (err) {
		udax_status_free(&st);
		return err;
	}
	*out = st;
	return 0;
}

int udax_status_get(struct udax_wire *w, struct udax_status **out, char *why, size_t whylen)
{
	void *rep = NULL;
	uint32_t len = 0;
	int err = udax_wire_call(w, UDAX_REQ_STATUS, NULL, 0, &rep, &len, NULL);

	*out = NULL;
	if (err < 0) {
		if (why && whylen)
			snprintf(why, whylen, "%s", rep && len ? (char *)rep : strerror(-err));
		free(rep);
		return err;
	}
	err = udax_status_decode(rep, rep ? len : 0, out, why, whylen);
	free(rep);
	return err;
}

void udax_status_free(struct udax_status **stp)
{
	struct udax_status *st = stp ? *stp : NULL;

	if (!st)
		return;
	*stp = NULL;
	for (size_t i = 0; i < st->nfiles; i++)
		free(st->files[i].path);
	free(st->files);
	free(st->mountpoint);
	free(st->device_path);
	free(st->clients);
	free(st->layouts);
	free(st->pins);
	free(st->pages);
	free(st->waiters);
	free(st);
}

const struct udax_status_file *udax_status_file(const struct udax_status *st, uint64_t ino)
{
	for (size_t i = 0; i < st->nfiles; i++)
		if (st->files[i].ino == ino)
			return &st->files[i];
	return NULL;
}

const struct udax_srec_client *udax_status_client(const struct udax_status *st, uint32_t cid)
{
	for (size_t i = 0; i < st->nclients; i++)
		if (st->clients[i].cid == cid)
			return &st->clients[i];
	return NULL;
}
