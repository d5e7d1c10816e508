/* SPDX-License-Identifier: MIT */
/*
 * cachetab DIR - the daemon's page-cache table (udax_proto.h,
 * UDAX_REQ_CACHETAB), from the side of a client that speaks the protocol
 * itself:
 *   - a connection that presented no ticket is refused the table;
 *   - a writable layout gets a slot; the grant's invalidation clears its
 *     flag; a READ of the range through the mount sets it before the
 *     reply; an INVAL of the layout clears it again;
 *   - a read-only layout gets no slot;
 *   - a client that lies (maps the table writable, writes to it, resizes
 *     it, upgrades its read-only mapping) is refused each time.
 *     Negative control: the same attempts on an unsealed memfd succeed,
 *     so the checks can see a writable table.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/wire.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL: " __VA_ARGS__); printf("\n"); } \
			   else { printf("ok: " __VA_ARGS__); printf("\n"); } } while (0)

static int map_req(struct udax_wire *w, int fd, uint64_t off, uint64_t len, bool write,
		   struct udax_map_rep *rep)
{
	struct udax_ioc_hello h;
	int err = udax_wire_hello(fd, &h);
	if (err)
		return err;
	struct udax_map_req rq = { .off = off, .len = len,
				   .prot = UDAX_PROT_READ | (write ? UDAX_PROT_WRITE : 0),
				   .flags = UDAX_MAP_F_KEEP_SIZE };
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	void *rp = NULL;
	uint32_t rlen = 0;
	err = udax_wire_call(w, UDAX_REQ_MAP, &rq, sizeof(rq), &rp, &rlen, NULL);
	if (!err && rlen < sizeof(*rep))
		err = -EPROTO;
	if (!err)
		memcpy(rep, rp, sizeof(*rep));
	free(rp);
	return err;
}

/* Wait up to 2 s for the flag to read @want. */
static bool flag_becomes(const _Atomic uint32_t *f, uint32_t want)
{
	for (int i = 0; i < 2000; i++) {
		if ((atomic_load(f) != 0) == (want != 0))
			return true;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The ways a client could try to write the table through @fd; how many worked. */
static int lies_that_work(int fd, size_t len)
{
	int worked = 0;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		worked++;
		munmap(p, len);
	}
	uint32_t one = 1;
	if (pwrite(fd, &one, sizeof(one), 0) == (ssize_t)sizeof(one))
		worked++;
	if (ftruncate(fd, (off_t)len * 2) == 0)
		worked++;
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		if (mprotect(p, len, PROT_READ | PROT_WRITE) == 0)
			worked++;
		munmap(p, len);
	}
	return worked;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "Usage: cachetab DIR\n");
		return 2;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/cachetab-file", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 8 << 20) < 0) {
		perror(path);
		return 1;
	}
	struct udax_ioc_hello h;
	struct udax_wire *w = NULL;
	if (udax_wire_hello(fd, &h) || udax_wire_open(&w, h.sock)) {
		printf("SKIP: no layout service\n");
		return 77;
	}

	/* no ticket yet: refused */
	int tfd = -1;
	int err = udax_wire_call(w, UDAX_REQ_CACHETAB, NULL, 0, NULL, NULL, &tfd);
	CHECK(err == -EACCES && tfd < 0, "a connection without a ticket is refused the table (%d)", err);

	struct udax_map_rep rw, ro;
	err = map_req(w, fd, 0, 2 << 20, true, &rw);
	CHECK(err == 0, "writable layout granted (%d)", err);
	if (err)
		return 1;
	CHECK(rw.cache_slot != UDAX_CACHE_SLOT_NONE, "a writable layout has a page-cache slot");
	int rofd = open(path, O_RDONLY);
	err = map_req(w, rofd, 4 << 20, 2 << 20, false, &ro);
	CHECK(err == 0 && ro.cache_slot == UDAX_CACHE_SLOT_NONE,
	      "a read-only layout has none (%d, slot %u)", err, ro.cache_slot);

	uint32_t n = 0;
	const _Atomic uint32_t *tab = udax_wire_cachetab(w, &n);
	CHECK(tab && rw.cache_slot < n, "the table is mapped, %u slots", n);
	if (!tab || rw.cache_slot >= n)
		return 1;
	const _Atomic uint32_t *flag = tab + rw.cache_slot;

	CHECK(flag_becomes(flag, 0), "the grant's invalidation clears the flag");
	/* a READ through the mount (any descriptor) sets it before it is answered */
	char buf[4096];
	CHECK(pread(rofd, buf, sizeof(buf), 4096) == (ssize_t)sizeof(buf) && atomic_load(flag) != 0,
	      "a READ of the range through the mount sets the flag before the reply");
	struct udax_inval_req iv = { .id = rw.id, .off = 8192, .len = 4096 };
	err = udax_wire_call(w, UDAX_REQ_INVAL, &iv, sizeof(iv), NULL, NULL, NULL);
	CHECK(err == 0 && atomic_load(flag) == 0,
	      "an INVAL of the layout clears it before it is answered (%d)", err);
	/* a READ outside the layout's range leaves it alone */
	CHECK(pread(rofd, buf, sizeof(buf), 6 << 20) == (ssize_t)sizeof(buf) && atomic_load(flag) == 0,
	      "a READ outside the range leaves the flag clear");

	/* the lying client */
	tfd = -1;
	void *rp = NULL;
	uint32_t rlen = 0;
	err = udax_wire_call(w, UDAX_REQ_CACHETAB, NULL, 0, &rp, &rlen, &tfd);
	free(rp);
	CHECK(err == 0 && tfd >= 0, "the table's descriptor is handed out (%d)", err);
	size_t len = (size_t)n * sizeof(uint32_t);
	if (tfd >= 0) {
		int lies = lies_that_work(tfd, len);
		CHECK(lies == 0, "no way to write the table works (%d did)", lies);
		close(tfd);
	}
	int ctl = memfd_create("cachetab-control", MFD_CLOEXEC);
	CHECK(ctl >= 0 && ftruncate(ctl, (off_t)len) == 0 && lies_that_work(ctl, len) == 4,
	      "negative control: an unsealed memfd lets all four through");
	CHECK(atomic_load(flag) == 0, "the flag is what the daemon wrote");

	udax_wire_put(&w);
	close(rofd);
	close(fd);
	printf("%s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
