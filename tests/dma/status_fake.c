// SPDX-License-Identifier: MIT
/*
 * status_fake MODE - a stand-in for the daemon's layout service that answers
 * one UDAX_REQ_STATUS with a record stream built to MODE: "good" (a valid
 * stream: what the reader must accept), or a broken one (what it must
 * refuse, naming the fault, without crashing).  Prints its abstract socket
 * name (for UDAXCTL_TEST_STATUS_SOCKET) on the first line of stdout, serves
 * one connection and exits.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <udax/udax_proto.h>

static char out[1 << 16];
static size_t out_len;
static uint64_t nrec;

static void rec(uint16_t type, void *r, size_t fixed, const char *str, size_t forced_len)
{
	struct udax_srec *h = r;
	size_t slen = str ? strlen(str) + 1 : 0;
	size_t len = forced_len ? forced_len : (fixed + slen + 7) & ~(size_t)7;
	size_t copy = fixed < len ? fixed : len;

	h->type = htole16(type);
	h->reserved = 0;
	h->len = htole32((uint32_t)len);
	memset(out + out_len, 0, len > copy ? len : copy);
	memcpy(out + out_len, r, copy);
	if (slen && fixed + slen <= len)
		memcpy(out + out_len + fixed, str, slen);
	out_len += len;
	nrec++;
}

static void head(uint32_t version, bool bad_string)
{
	struct udax_srec_head h = { .version = htole32(version), .pid = (int32_t)htole32(4242),
				    .busy_handles = htole64(8192) };

	if (bad_string) {
		/* the mount point fills the record to its end with no NUL */
		rec(UDAX_SREC_HEAD, &h, sizeof(h), NULL, sizeof(h) + 8);
		memset(out + out_len - 8, 'x', 8);
	} else {
		rec(UDAX_SREC_HEAD, &h, sizeof(h), "/fake/mnt", 0);
	}
}

static void body(uint32_t cid_of_layout)
{
	struct udax_srec_device d = { .size = htole64(1ull << 30), .align = htole64(4096),
				      .target_node = (int32_t)htole32(0),
				      .mode = htole32(UDAX_SDEV_DEVDAX) };
	rec(UDAX_SREC_DEVICE, &d, sizeof(d), "/dev/dax7.1", 0);
	struct udax_srec_client c = { .cid = htole32(1), .pid = (int32_t)htole32(777),
				      .uid = htole32(1000), .flags = htole32(UDAX_SCLIENT_ALIVE) };
	snprintf(c.comm, sizeof(c.comm), "fakeclient");
	rec(UDAX_SREC_CLIENT, &c, sizeof(c), NULL, 0);
	struct udax_srec_layout l = { .cid = htole32(cid_of_layout), .id = htole64(1),
				      .ino = htole64(12), .len = htole64(32 << 20),
				      .flags = htole32(UDAX_SLAYOUT_MAPPED), .pins = htole32(1) };
	rec(UDAX_SREC_LAYOUT, &l, sizeof(l), NULL, 0);
	struct udax_srec_pages p = { .ino = htole64(12), .npages = htole64(8192),
				     .pfn = htole64(100), .handles = htole32(8192),
				     .refcount = htole32(2), .mapcount = htole32(1),
				     .pincount = htole32(1), .flags = htole32(UDAX_SPAGES_TRACKED) };
	rec(UDAX_SREC_PAGES, &p, sizeof(p), NULL, 0);
	struct udax_srec_file f = { .ino = htole64(12) };
	rec(UDAX_SREC_FILE, &f, sizeof(f), "/dir/fakefile", 0);
}

static void end(void)
{
	struct udax_srec_end e = { .nrecords = htole64(nrec) };

	rec(UDAX_SREC_END, &e, sizeof(e), NULL, 0);
}

/* Build the reply for @mode.  Return: the status to send, or 1 for an unknown mode. */
static int build(const char *mode)
{
	if (!strcmp(mode, "good")) {
		head(UDAX_STATUS_VERSION, false);
		body(1);
		end();
	} else if (!strcmp(mode, "cut")) {		/* a reply cut inside a record */
		head(UDAX_STATUS_VERSION, false);
		body(1);
		end();
		out_len -= 12;
	} else if (!strcmp(mode, "noend")) {		/* whole records, the END missing */
		head(UDAX_STATUS_VERSION, false);
		body(1);
	} else if (!strcmp(mode, "badlen")) {		/* a length not a multiple of 8 */
		head(UDAX_STATUS_VERSION, false);
		struct udax_srec_end e = { 0 };
		rec(UDAX_SREC_END, &e, sizeof(e), NULL, 12);
	} else if (!strcmp(mode, "shortrec")) {		/* a record shorter than its type */
		head(UDAX_STATUS_VERSION, false);
		struct udax_srec_layout l = { 0 };
		rec(UDAX_SREC_LAYOUT, &l, sizeof(l), NULL, 16);
		end();
	} else if (!strcmp(mode, "hugelen")) {		/* a length far past the reply */
		head(UDAX_STATUS_VERSION, false);
		struct udax_srec_end e = { 0 };
		rec(UDAX_SREC_END, &e, sizeof(e), NULL, 0);
		((struct udax_srec *)(out + out_len - sizeof(e)))->len = htole32(0xfffffff8u);
	} else if (!strcmp(mode, "tiny")) {		/* less than a header */
		memcpy(out, "\1\0\0", 3);
		out_len = 3;
	} else if (!strcmp(mode, "empty")) {
		out_len = 0;
	} else if (!strcmp(mode, "nohead")) {
		body(1);
		end();
	} else if (!strcmp(mode, "version")) {		/* a later, incompatible stream */
		head(UDAX_STATUS_VERSION + 1, false);
		end();
	} else if (!strcmp(mode, "orphan")) {		/* a layout of a client never introduced */
		head(UDAX_STATUS_VERSION, false);
		body(9);
		end();
	} else if (!strcmp(mode, "nostring")) {		/* the mount point not NUL-terminated */
		head(UDAX_STATUS_VERSION, true);
		end();
	} else if (!strcmp(mode, "miscount")) {		/* END counts other records than came */
		head(UDAX_STATUS_VERSION, false);
		body(1);
		nrec += 3;
		end();
	} else if (!strcmp(mode, "json")) {		/* an older daemon's document */
		out_len = (size_t)snprintf(out, sizeof(out), "{\"version\":1,\"pid\":1}\n") + 1;
	} else if (!strcmp(mode, "garbage")) {
		srandom(7);
		for (out_len = 0; out_len < 4000; out_len++)
			out[out_len] = (char)random();
	} else if (!strcmp(mode, "error")) {
		out_len = (size_t)snprintf(out, sizeof(out), "the fake daemon refuses") + 1;
		return -EIO;
	} else {
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64];
	struct udax_msg rq;
	int status, ls, s;

	if (argc != 2) {
		fprintf(stderr, "Usage: status_fake MODE\n");
		return 2;
	}
	status = build(argv[1]);
	if (status == 1) {
		fprintf(stderr, "status_fake: unknown mode %s\n", argv[1]);
		return 2;
	}
	snprintf(name, sizeof(name), "@udax-status-fake-%d", (int)getpid());
	memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))) ||
	    listen(ls, 1)) {
		perror("status_fake: socket");
		return 1;
	}
	printf("%s\n", name);
	fflush(stdout);
	s = accept(ls, NULL, NULL);
	if (s < 0) {
		perror("status_fake: accept");
		return 1;
	}
	/* one request header (STATUS has no payload) */
	if (recv(s, &rq, sizeof(rq), MSG_WAITALL) != (ssize_t)sizeof(rq) ||
	    rq.magic != UDAX_MSG_MAGIC || rq.type != UDAX_REQ_STATUS) {
		fprintf(stderr, "status_fake: expected a STATUS request\n");
		return 1;
	}
	struct udax_msg rep = { .magic = UDAX_MSG_MAGIC, .type = UDAX_REQ_STATUS | UDAX_MSG_REPLY,
				.len = (uint32_t)out_len, .seq = rq.seq, .status = status };
	if (send(s, &rep, sizeof(rep), MSG_NOSIGNAL) != (ssize_t)sizeof(rep) ||
	    (out_len && send(s, out, out_len, MSG_NOSIGNAL) != (ssize_t)out_len)) {
		perror("status_fake: send");
		return 1;
	}
	/* until the reader hangs up */
	while (recv(s, &rq, sizeof(rq), 0) > 0)
		;
	close(s);
	close(ls);
	return 0;
}
