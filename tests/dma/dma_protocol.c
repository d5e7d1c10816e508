/* SPDX-License-Identifier: MIT */
/*
 * dma_protocol - the layout socket is a trust boundary: malformed or
 * hostile messages cost the sender its connection, never the daemon.
 * Sends a bad magic, an oversized length, short and unknown requests,
 * a flood of random bytes, requests naming ids that do not exist, an
 * unaligned and an oversized MAP, a MAP with a forged ticket; after each,
 * the daemon must still answer STATUS on a fresh connection and the mount
 * must still work.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "harness.h"
#include "lib/status.h"

static char g_sock[UDAX_SOCK_NAME_MAX];

static void daemon_alive(const struct fsmount *fm, const char *after)
{
	struct udax_wire *w = NULL;
	struct udax_status *st = NULL;
	char why[256] = "";
	int err = proto_connect(g_sock, &w);
	if (!err)
		err = udax_status_get(w, &st, why, sizeof(why));
	CHECK(err == 0 && st->head.pid > 0, "STATUS after %s: %d %s", after, err, why);
	udax_status_free(&st);
	proto_close(&w);
	int fd = open(t_path(fm, "probe"), O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && pwrite(fd, "ok", 2, 0) == 2, "the mount works after %s", after);
	if (fd >= 0)
		close(fd);
}

static void send_raw(const void *p, size_t len)
{
	int s = proto_raw_connect(g_sock);
	if (s < 0)
		t_die("connect: %s", strerror(-s));
	ssize_t r = send(s, p, len, MSG_NOSIGNAL);
	(void)r;
	t_sleep_ms(20);
	close(s);
}

int main(void)
{
	struct fsmount fm;
	struct udax_ioc_hello h;

	t_require_env();
	t_mount(&fm, "proto", 64u << 20, NULL);
	int fd = open(t_path(&fm, "f"), O_RDWR | O_CREAT, 0644);
	if (fd < 0 || proto_hello(fd, &h))
		t_die("hello: %s", strerror(errno));
	memcpy(g_sock, h.sock, sizeof(g_sock));
	CHECK(h.version == UDAX_PROTO_VERSION && h.sock[0] == '@', "hello: version %u sock %s",
	      h.version, h.sock);

	struct udax_msg bad = { .magic = 0xdeadbeef, .type = UDAX_REQ_STATUS };
	send_raw(&bad, sizeof(bad));
	daemon_alive(&fm, "a bad magic");

	struct udax_msg huge = { .magic = UDAX_MSG_MAGIC, .type = UDAX_REQ_MAP,
				 .len = UDAX_MSG_MAX + 1 };
	send_raw(&huge, sizeof(huge));
	daemon_alive(&fm, "an oversized length");

	/* a header promising more than is ever sent, then a hang-up */
	struct udax_msg trunc = { .magic = UDAX_MSG_MAGIC, .type = UDAX_REQ_MAP, .len = 4096 };
	send_raw(&trunc, sizeof(trunc));
	daemon_alive(&fm, "a truncated message");

	unsigned int seed = 7;
	char noise[65536];
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (char)rand_r(&seed);
	send_raw(noise, sizeof(noise));
	daemon_alive(&fm, "64 KiB of random bytes");

	struct udax_wire *s = NULL;
	if (proto_connect(g_sock, &s))
		t_die("connect %s", g_sock);
	CHECK(proto_call(s, 99, NULL, 0, NULL, 0, NULL) == -EOPNOTSUPP, "unknown type");
	CHECK(proto_call(s, UDAX_REQ_MAP, "x", 1, NULL, 0, NULL) == -EINVAL, "short MAP");
	CHECK(proto_call(s, UDAX_REQ_PIN, "x", 1, NULL, 0, NULL) == -EINVAL, "short PIN");
	struct udax_id_req ir = { 12345 };
	CHECK(proto_call(s, UDAX_REQ_PIN, &ir, sizeof(ir), NULL, 0, NULL) == -EINVAL,
	      "the old 8-byte PIN (no ring named) is refused");
	struct udax_pin_req pr = { .id = 12345, .ring_fd = 0, .addr = 1 << 20, .len = 4096 };
	CHECK(proto_call(s, UDAX_REQ_PIN, &pr, sizeof(pr), NULL, 0, NULL) == -ESTALE,
	      "PIN of an id never granted");
	pr.ring_fd = -1;
	CHECK(proto_call(s, UDAX_REQ_PIN, &pr, sizeof(pr), NULL, 0, NULL) == -EINVAL,
	      "PIN with ring_fd -1 is refused");
	struct udax_map_req rq = { .off = 0, .len = 4096, .prot = UDAX_PROT_READ };
	memset(rq.ticket, 0x5a, sizeof(rq.ticket));
	CHECK(proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), NULL, 0, NULL) == -EACCES,
	      "a forged ticket is refused");
	proto_hello(fd, &h);
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	rq.off = 100;
	CHECK(proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), NULL, 0, NULL) == -EINVAL,
	      "an unaligned MAP is refused");
	proto_hello(fd, &h);
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	rq.off = 0;
	rq.len = 1ull << 62;
	CHECK(proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), NULL, 0, NULL) == -EINVAL,
	      "a MAP larger than the device is refused");
	proto_hello(fd, &h);
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	rq.len = 4096;
	rq.flags = 0x80;
	CHECK(proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), NULL, 0, NULL) == -EINVAL,
	      "a MAP with unknown flags is refused");
	rq.flags = 0;
	/* a RETURN with no reply expected, for an id that does not exist */
	struct udax_return_req rr = { 777, 1 };
	CHECK(proto_send(s, UDAX_REQ_RETURN, &rr, sizeof(rr)) == 0, "send RETURN");
	CHECK(proto_call(s, UDAX_REQ_STATUS, NULL, 0, NULL, 0, NULL) == 0,
	      "the same connection still answers");
	proto_close(&s);
	daemon_alive(&fm, "bad requests");

	/* the library still works */
	struct udax_map *m = NULL;
	CHECK(udax_map_open(&m, fd, 0, 8192, PROT_READ | PROT_WRITE, NULL) == 0, "map: %s",
	      udax_last_error());
	udax_map_close(&m);
	close(fd);
	return t_exit("dma_protocol");
}
