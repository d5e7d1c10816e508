/* SPDX-License-Identifier: MIT */
/*
 * status.h - the reader of the daemon's status records (UDAX_REQ_STATUS,
 * udax_proto.h), shared by udaxctl and the tests: one decoder that checks
 * every record against the stream's rules and says, for a stream that
 * breaks them, which record and what is wrong.  Part of libudaxwire (not
 * installed).
 *
 * The records come out as the protocol's own structures, converted to host
 * byte order and zero-extended to the size this reader knows; strings are
 * separate NUL-terminated copies.
 */
#ifndef UDAX_STATUS_H
#define UDAX_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <udax/udax_proto.h>

struct udax_wire;

struct udax_status_file {
	uint64_t ino;
	uint32_t flags;			/* UDAX_SFILE_* */
	char *path;			/* below the mount point ("/a/b"); "" with a flag */
};

struct udax_status {
	struct udax_srec_head head;
	char *mountpoint;
	bool has_device;
	struct udax_srec_device device;
	char *device_path;		/* NULL without a device record */
	struct udax_srec_client *clients;
	size_t nclients;
	struct udax_srec_layout *layouts;
	size_t nlayouts;
	struct udax_srec_pin *pins;
	size_t npins;
	struct udax_srec_pages *pages;	/* page runs */
	size_t npages;
	struct udax_srec_waiter *waiters;
	size_t nwaiters;
	struct udax_status_file *files;
	size_t nfiles;
	uint64_t dropped;		/* the END record's: records the daemon left out */
	uint64_t skipped;		/* records of types this reader does not know */
};

/*
 * udax_status_decode() - check and decode a whole record stream.
 * Return: 0 and *@out (free with udax_status_free()); -EPROTO with @why
 * naming the record, its offset and what is wrong; -ENOMEM.
 */
int udax_status_decode(const void *buf, size_t len, struct udax_status **out,
		       char *why, size_t whylen);
/*
 * udax_status_get() - UDAX_REQ_STATUS on @w, decoded.
 * Return: 0; the request's -errno (@why: the daemon's reason, if any);
 * -EPROTO or -ENOMEM as udax_status_decode().
 */
int udax_status_get(struct udax_wire *w, struct udax_status **out, char *why, size_t whylen);
/* NULL-safe; clears *st. */
void udax_status_free(struct udax_status **st);
/* The file record of @ino, or NULL when the daemon sent none. */
const struct udax_status_file *udax_status_file(const struct udax_status *st, uint64_t ino);
/* The client record numbered @cid, or NULL. */
const struct udax_srec_client *udax_status_client(const struct udax_status *st, uint32_t cid);

#endif /* UDAX_STATUS_H */
