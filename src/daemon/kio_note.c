/* SPDX-License-Identifier: MIT */
/*
 * kio_note.c - what a request asks beyond its arguments, looked at before
 * libfuse dispatches it, for both transports (kio.c reads /dev/fuse, the
 * io_uring queues take requests from their entries): INIT says whether
 * the kernel offers FUSE_HANDLE_KILLPRIV_V2 and FUSE_OVER_IO_URING; a
 * WRITE, SETATTR, OPEN or CREATE whether we are to kill set-ID bits (the
 * caller lacks CAP_FSETID), which libfuse 3.14 does not pass on.  The
 * answer is left in a thread-local for the handler, which runs on the
 * thread that took the request.
 */
#include "config.h"

#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>

#include "daemon.h"
#include "core/util.h"

/* What the request this thread is handling asked (UDAXD_REQ_*). */
static __thread unsigned int req_flags;

unsigned int udaxd_req_flags(void)
{
	return req_flags;
}

/* The request's fixed argument, if @len holds @arg_size bytes of it. */
static const void *req_arg(const void *buf, size_t len, size_t arg_size)
{
	if (len < sizeof(struct fuse_in_header) + arg_size)
		return NULL;
	return (const char *)buf + sizeof(struct fuse_in_header);
}

/* The requests that may ask to kill set-ID bits: which 32-bit field, which bit. */
struct kill_arg {
	uint32_t opcode;
	size_t arg_size;		/* the fixed argument holding the field */
	size_t off;			/* the field */
	uint32_t bit;
};

#define KILL_ARG(op, type, field, flag) \
	{ op, sizeof(struct type), offsetof(struct type, field), flag }

static const struct kill_arg kill_args[] = {
	KILL_ARG(FUSE_WRITE, fuse_write_in, write_flags, FUSE_WRITE_KILL_SUIDGID),
	KILL_ARG(FUSE_SETATTR, fuse_setattr_in, valid, FATTR_KILL_SUIDGID),
	KILL_ARG(FUSE_OPEN, fuse_open_in, open_flags, FUSE_OPEN_KILL_SUIDGID),
	KILL_ARG(FUSE_CREATE, fuse_create_in, open_flags, FUSE_OPEN_KILL_SUIDGID),
};

_Static_assert(sizeof(((struct fuse_write_in *)0)->write_flags) == 4 &&
	       sizeof(((struct fuse_setattr_in *)0)->valid) == 4 &&
	       sizeof(((struct fuse_open_in *)0)->open_flags) == 4 &&
	       sizeof(((struct fuse_create_in *)0)->open_flags) == 4,
	       "kill_args reads 32-bit fields");

/* INIT: what the kernel offers. */
static void note_init(struct udaxd *d, const void *buf, size_t n)
{
	const struct fuse_init_in *in;

	d->kio_init_unique = ((const struct fuse_in_header *)buf)->unique;
	in = req_arg(buf, n, offsetof(struct fuse_init_in, flags2));
	if (in && (in->flags & FUSE_HANDLE_KILLPRIV_V2))
		d->kio_offered = true;
	in = req_arg(buf, n, offsetof(struct fuse_init_in, unused));
	if (in && (in->flags & FUSE_INIT_EXT) && (in->flags2 & UDAXD_OVER_IO_URING2))
		d->uring_offered = true;
}

/*
 * udaxd_kio_note() - look at a request (@n bytes at @buf, 0 after a failed
 * read) before libfuse dispatches it: what INIT offers, whether a
 * WRITE/SETATTR/OPEN/CREATE asks us to kill set-ID bits (left for the
 * handler on this thread).
 */
void udaxd_kio_note(struct udaxd *d, const void *buf, size_t n)
{
	const struct fuse_in_header *h = buf;
	size_t i;

	req_flags = 0;
	if (n < sizeof(*h))
		return;
	if (h->opcode == FUSE_INIT) {
		note_init(d, buf, n);
		return;
	}
	for (i = 0; i < UDAX_ARRAY_SIZE(kill_args); i++) {
		const struct kill_arg *k = &kill_args[i];
		const char *a;
		uint32_t v;

		if (h->opcode != k->opcode)
			continue;
		a = req_arg(buf, n, k->arg_size);
		if (!a)
			return;
		memcpy(&v, a + k->off, sizeof(v));
		if (v & k->bit)
			req_flags = UDAXD_REQ_KILL_SUIDGID;
		return;
	}
}
