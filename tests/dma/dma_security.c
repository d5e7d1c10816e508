/* SPDX-License-Identifier: MIT */
/*
 * dma_security - the trust boundary of direct access:
 *  - a descriptor opened read-only never gets a writable layout, even when
 *    the request bypasses the library's own check (raw protocol);
 *  - a uid that dax_allow does not list gets a clear refusal (EPERM and a
 *    reason naming dax_allow), while the ordinary FUSE path still works for
 *    it; listing it in dax_allow grants access;
 *  - a ticket is good for one request only;
 *  - a client cannot drop another client's references: layout ids are per
 *    connection (ESTALE), and the victim's layout stays mapped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udax/udax.h>
#include <udax/udax_proto.h>

#include "harness.h"
#include "lib/status.h"

#define NOBODY 65534

static const struct fsmount *g_fm;

/* As nobody: returns 0 if the refusal was the expected one, else 1. */
static int as_nobody_refused(void *arg)
{
	(void)arg;
	if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return 2;
	int fd = open(t_path(g_fm, "shared"), O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "nobody: open: %s\n", strerror(errno));
		return 3;
	}
	char c;
	if (pread(fd, &c, 1, 0) != 1) {
		fprintf(stderr, "nobody: the ordinary FUSE path must still work\n");
		return 4;
	}
	struct udax_map *m = NULL;
	int err = udax_map_open(&m, fd, 0, 4096, PROT_READ, NULL);
	printf("nobody: udax_map_open -> %d: %s\n", err, udax_last_error());
	if (err != -EPERM || !strstr(udax_last_error(), "dax_allow"))
		return 5;
	return 0;
}

static int as_nobody_allowed(void *arg)
{
	(void)arg;
	if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return 2;
	int fd = open(t_path(g_fm, "shared"), O_RDWR);
	struct udax_map *m = NULL;
	int err = udax_map_open(&m, fd, 0, 4096, PROT_READ | PROT_WRITE, NULL);
	if (err) {
		fprintf(stderr, "nobody with dax_allow: %d %s\n", err, udax_last_error());
		return 5;
	}
	((char *)udax_map_addr(m))[0] = 'N';
	udax_persist(m, udax_map_addr(m), 1);
	udax_map_close(&m);
	return 0;
}

int main(void)
{
	struct fsmount fm;
	struct udax_ioc_hello h;
	int err;

	t_require_env();
	if (geteuid() != 0)
		t_skip("needs root to switch to uid %d", NOBODY);
	t_mount(&fm, "sec", 64u << 20, "allow_other");
	g_fm = &fm;

	int fd = open(t_path(&fm, "shared"), O_RDWR | O_CREAT, 0666);
	if (fd < 0 || fchmod(fd, 0666) < 0 || pwrite(fd, "x", 1, 0) != 1)
		t_die("create: %s", strerror(errno));

	/* read-only descriptor: the library refuses, and so does the daemon */
	int ro = open(t_path(&fm, "shared"), O_RDONLY);
	struct udax_map *m = NULL;
	err = udax_map_open(&m, ro, 0, 4096, PROT_READ | PROT_WRITE, NULL);
	CHECK(err == -EACCES, "library: read-only fd, writable map -> %d", err);
	err = proto_hello(ro, &h);
	if (err)
		t_die("UDAX_IOC_HELLO: %s", strerror(-err));
	CHECK(!(h.flags & UDAX_HELLO_WRITABLE), "hello says writable for an O_RDONLY fd");
	struct udax_wire *s = NULL;
	err = proto_connect(h.sock, &s);
	if (err)
		t_die("connect %s: %s", h.sock, strerror(-err));
	struct udax_map_req rq = { .off = 0, .len = 4096, .prot = UDAX_PROT_READ | UDAX_PROT_WRITE };
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	err = proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), NULL, 0, NULL);
	CHECK(err == -EACCES, "daemon: writable layout through a read-only open -> %d", err);
	/* the ticket was consumed by that request */
	rq.prot = UDAX_PROT_READ;
	err = proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), NULL, 0, NULL);
	CHECK(err == -EACCES, "a ticket is single use -> %d", err);
	/* a fresh ticket, read-only: granted */
	proto_hello(ro, &h);
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	char repbuf[256];
	err = proto_call(s, UDAX_REQ_MAP, &rq, sizeof(rq), repbuf, sizeof(repbuf), NULL);
	CHECK(err == 0, "read-only layout through a read-only open -> %d", err);
	struct udax_map_rep rep;
	memcpy(&rep, repbuf, sizeof(rep));
	CHECK(rep.prot == UDAX_PROT_READ, "granted prot %u", rep.prot);

	/* the victim: this process, through the library (its own connection) */
	err = udax_map_open(&m, fd, 0, 8192, PROT_READ | PROT_WRITE, NULL);
	if (err)
		t_die("udax_map_open: %s", udax_last_error());
	/* the attacker: another connection naming ids 1..8 */
	struct udax_wire *s2 = NULL;
	if (proto_connect(h.sock, &s2))
		t_die("connect %s", h.sock);
	for (uint64_t id = 1; id <= 8; id++) {
		struct udax_id_req ir = { id };
		err = proto_call(s2, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, 0, NULL);
		CHECK(err == -ESTALE, "UNMAP of another connection's id %llu -> %d",
		      (unsigned long long)id, err);
		struct udax_pin_req pr = { .id = id, .ring_fd = 0, .addr = 1 << 20, .len = 4096 };
		err = proto_call(s2, UDAX_REQ_UNPIN, &pr, sizeof(pr), NULL, 0, NULL);
		CHECK(err == -ESTALE, "UNPIN of another connection's id -> %d", err);
	}
	struct udax_status *status = NULL;
	char why[256] = "";
	size_t nmapped = 0;
	err = udax_status_get(s2, &status, why, sizeof(why));
	CHECK(err == 0, "status -> %d (%s)", err, why);
	for (size_t i = 0; status && i < status->nlayouts; i++)
		nmapped += (status->layouts[i].flags & UDAX_SLAYOUT_MAPPED) != 0;
	CHECK(nmapped > 0, "the victim's layout is still mapped (%zu mapped layouts)", nmapped);
	((char *)udax_map_addr(m))[4096] = 'V';
	CHECK(udax_persist(m, (char *)udax_map_addr(m) + 4096, 1) == 0, "victim still works");
	udax_status_free(&status);
	proto_close(&s2);
	proto_close(&s);
	udax_map_close(&m);

	/* not allowed: clear refusal; the ordinary path works */
	int rc = t_wait(t_fork(as_nobody_refused, NULL), 20000);
	CHECK(rc == 0, "uid %d with default dax_allow: child status %d", NOBODY, rc);
	close(ro);
	close(fd);

	/* allowed by the mount option */
	snprintf(fm.opts, sizeof(fm.opts), "allow_other,dax_allow=uid:0,uid:%d", NOBODY);
	t_remount(&fm);
	rc = t_wait(t_fork(as_nobody_allowed, NULL), 20000);
	CHECK(rc == 0, "uid %d listed in dax_allow: child status %d", NOBODY, rc);
	return t_exit("dma_security");
}
