/* SPDX-License-Identifier: MIT */
/*
 * fuse_uring_reply.c - replies of FUSE over io_uring: libfuse writes
 * every reply through the session's custom I/O (kio.c), which hands the
 * ones whose request came from a ring entry here.  The reply header goes
 * into the entry's header, the reply's arguments into its payload (the
 * kernel copies them from there: fuse_uring_copy_from_ring()), and one
 * COMMIT_AND_FETCH both delivers the reply and offers the entry for the
 * next request.
 */
#include "config.h"

#include <errno.h>
#include <linux/fuse.h>
#include <string.h>

#include "fuse_uring_int.h"

static struct ufu_ent *find_ent(struct udaxd_uring *u, uint64_t unique)
{
	unsigned int i, j;

	for (i = 0; i < u->nq; i++) {
		struct ufu_queue *q = &u->qs[i];

		if (!q->ents)
			continue;
		for (j = 0; j < u->qdepth; j++)
			if (__atomic_load_n(&q->ents[j].unique, __ATOMIC_ACQUIRE) == unique)
				return &q->ents[j];
	}
	return NULL;
}

/*
 * ufu_commit() - answer @e's request with the header @oh (its length set
 * here) and the @payload_sz bytes already in the entry's payload, and
 * offer the entry for the next request.  @inline_commit: the caller is
 * the queue's reader and submits with its next wait.
 * Return: 0 or -errno.
 */
int ufu_commit(struct ufu_ent *e, struct fuse_out_header *oh, size_t payload_sz,
	       bool inline_commit)
{
	oh->len = (uint32_t)(sizeof(*oh) + payload_sz);
	memcpy(e->hdr->in_out, oh, sizeof(*oh));
	e->hdr->ring_ent_in_out.payload_sz = (uint32_t)payload_sz;
	__atomic_store_n(&e->unique, 0, __ATOMIC_RELEASE);
	return ufu_queue_sqe(e->q, IORING_OP_URING_CMD, UFU_CMD_COMMIT_AND_FETCH, e, oh->unique,
			     inline_commit);
}

/*
 * udaxd_uring_reply() - send a reply libfuse wrote, if its request came
 * from a ring entry.
 * Return: the bytes "written" (the reply's length), or -2 when the request
 * did not come from a ring (the caller writes it to /dev/fuse).
 */
ssize_t udaxd_uring_reply(struct udaxd *d, struct iovec *iov, int count)
{
	struct udaxd_uring *u = d->uring;
	struct fuse_out_header oh;
	struct ufu_ent *e;
	size_t total = 0, off = 0;
	int i;

	if (!u || count < 1 || iov[0].iov_len < sizeof(oh))
		return -2;
	memcpy(&oh, iov[0].iov_base, sizeof(oh));
	if (oh.unique == 0)
		return -2;	/* a notification */
	e = ufu_cur_ent;
	if (!e || __atomic_load_n(&e->unique, __ATOMIC_ACQUIRE) != oh.unique)
		e = find_ent(u, oh.unique);
	if (!e)
		return -2;
	for (i = 0; i < count; i++)
		total += iov[i].iov_len;
	for (i = 1; i < count; i++) {
		if (off + iov[i].iov_len > u->payload_len) {
			oh.error = -EIO;	/* cannot happen: replies fit max_write */
			off = 0;
			break;
		}
		if (iov[i].iov_base != e->payload + off)
			memcpy(e->payload + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	if (oh.error)
		off = 0;
	if (ufu_commit(e, &oh, off, ufu_cur_ent == e) < 0) {
		errno = EIO;
		return -1;
	}
	return (ssize_t)total;
}
