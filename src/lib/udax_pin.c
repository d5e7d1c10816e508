/* SPDX-License-Identifier: MIT */
/*
 * udax_pin.c - libudax's pins: a whole map registered as one io_uring fixed
 * buffer (udax_pin(), udax_unpin()), declared to the daemon first
 * (UDAX_REQ_PIN) so that a truncate waits for the ring to let it go.
 */
#include "config.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>

#include "udax_map_int.h"

#define PIN_MAX (1ul << 30)		/* io_uring's largest single fixed buffer */

int udax__unregister_buf(struct udax_map *m)
{
	int r;
	if (m->pin_any) {
		r = io_uring_unregister_buffers(m->ring);
	} else {
		struct iovec none = { NULL, 0 };
		__u64 tag = 0;
		r = io_uring_register_buffers_update_tag(m->ring, m->buf_index, &none, &tag, 1);
		if (r > 0)
			r = 0;
	}
	if (r < 0)
		return udax__set_err(r, "unregistering the io_uring buffer: %s", strerror(-r));
	m->pinned = false;
	return 0;
}

/* The PIN / UNPIN request for the whole map on @ring. */
static struct udax_pin_req pin_req(const struct udax_map *m, const struct io_uring *ring)
{
	return (struct udax_pin_req){
		.id = m->id, .ring_fd = ring ? ring->ring_fd : -1,
		.addr = (uint64_t)(uintptr_t)m->addr, .len = m->len,
	};
}

int udax__pin_call(struct udax_map *m, uint16_t type, struct io_uring *ring)
{
	struct udax_pin_req pr = pin_req(m, ring);
	return udax__conn_call(m->w, type, &pr, sizeof(pr), NULL, NULL, NULL);
}

UDAX_EXPORT int udax_pin(struct udax_map *m, struct io_uring *ring, unsigned int *buf_index)
{
	int err;
	if (!m || !ring || !buf_index)
		return udax__set_err(-EINVAL, "NULL argument");
	if (m->len > PIN_MAX)
		return udax__set_err(-EINVAL, "io_uring fixed buffers are limited to 1 GiB");
	pthread_mutex_lock(&m->mu);
	if (m->recalled || m->unmapped) {
		err = udax__set_err(-ESTALE, "the layout was recalled or unmapped");
		goto out;
	}
	if (m->pinned) {
		err = udax__set_err(-EBUSY, "the map is already pinned");
		goto out;
	}
	err = udax__pin_call(m, UDAX_REQ_PIN, ring);
	if (err) {
		if (err == -EBUSY)
			udax__set_err(err, "a recall of this layout is under way: the pin is "
				      "refused");
		goto out;
	}
	struct iovec iov = { m->addr, m->len };
	int r;
	if (*buf_index == UDAX_PIN_ANY) {
		r = io_uring_register_buffers(ring, &iov, 1);
	} else {
		__u64 tag = 0;
		r = io_uring_register_buffers_update_tag(ring, *buf_index, &iov, &tag, 1);
		if (r > 0)
			r = 0;
	}
	if (r < 0) {
		if (r == -EFAULT || r == -EOPNOTSUPP)
			udax__set_err(r, "io_uring cannot pin these pages (%s): an emulation "
				      "file must live on tmpfs (/dev/shm) for pins", strerror(-r));
		else
			udax__set_err(r, "registering the io_uring buffer: %s", strerror(-r));
		struct udax_pin_req pr = pin_req(m, ring);
		udax__conn_undo(m->w, UDAX_REQ_UNPIN, &pr, sizeof(pr));
		err = r;
		goto out;
	}
	m->pinned = true;
	m->pin_any = *buf_index == UDAX_PIN_ANY;
	m->ring = ring;
	m->buf_index = m->pin_any ? 0 : *buf_index;
	*buf_index = m->buf_index;
out:
	pthread_mutex_unlock(&m->mu);
	return err;
}

UDAX_EXPORT int udax_unpin(struct udax_map *m, struct io_uring *ring)
{
	int err = 0;
	if (!m)
		return udax__set_err(-EINVAL, "map is NULL");
	pthread_mutex_lock(&m->mu);
	if (!m->pinned) {
		/* a recall unpinned it already: not an error */
		if (!m->recalled)
			err = udax__set_err(-EINVAL, "the map is not pinned");
		goto out;
	}
	if (ring && ring != m->ring) {
		err = udax__set_err(-EINVAL, "the map is pinned on another ring");
		goto out;
	}
	struct io_uring *r = m->ring;
	err = udax__unregister_buf(m);
	if (err)
		goto out;
	err = udax__pin_call(m, UDAX_REQ_UNPIN, r);
	if (err == -ENOTCONN)
		err = 0;	/* the daemon is gone: its pin went with it */
out:
	pthread_mutex_unlock(&m->mu);
	return err;
}

