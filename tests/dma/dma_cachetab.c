/* SPDX-License-Identifier: MIT */
/*
 * dma_cachetab - the daemon's page-cache table (udax_proto.h,
 * UDAX_REQ_CACHETAB), from the side of a client that speaks the protocol
 * itself:
 *   - a connection that presented no ticket is refused the table;
 *   - a writable layout gets a slot; the grant's invalidation clears its
 *     flag; a READ of the range through the mount sets it before the
 *     reply; an INVAL of the layout clears it again; a READ outside the
 *     range leaves it alone;
 *   - a read-only layout gets no slot;
 *   - a client that lies (maps the table writable, writes to it, resizes
 *     it, upgrades its read-only mapping) is refused each time;
 *   - clients that die holding a writable layout leave no slot taken:
 *     twice as many as the table has slots (the daemon is started with a
 *     small one), and a new layout still gets a slot.  Negative control:
 *     layouts this process holds fill the table, and a new one gets none.
 *     Negative control: the same attempts on an unsealed memfd succeed,
 *     so the checks can see a writable table.
 * The stale read the flag prevents is tests/dma/cachetab.sh's.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "harness.h"
#include "lib/wire.h"

/* A layout of [off, off + len) of @fd on connection @w.  Return: the reply's status. */
static int map_req(struct udax_wire *w, int fd, uint64_t off, uint64_t len, bool write,
		   struct udax_map_rep *rep)
{
	struct udax_ioc_hello h;
	int err = proto_hello(fd, &h);
	if (err)
		return err;
	struct udax_map_req rq = { .off = off, .len = len,
				   .prot = UDAX_PROT_READ | (write ? UDAX_PROT_WRITE : 0),
				   .flags = UDAX_MAP_F_KEEP_SIZE };
	memcpy(rq.ticket, h.ticket, sizeof(rq.ticket));
	size_t n = 0;
	err = proto_call(w, UDAX_REQ_MAP, &rq, sizeof(rq), rep, sizeof(*rep), &n);
	return err ? err : n < sizeof(*rep) ? -EPROTO : 0;
}

/* Wait up to 2 s for the flag to read @want (0, or set). */
static bool flag_becomes(const _Atomic uint32_t *f, bool want)
{
	for (int i = 0; i < 2000; i++) {
		if ((atomic_load(f) != 0) == want)
			return true;
		t_sleep_ms(1);
	}
	return false;
}

#define SLOTS 32

/* A client that takes a writable layout of the file and dies without giving it back. */
struct child_arg { const char *mnt; };
static int child_main(void *arg)
{
	const struct child_arg *ca = arg;
	char path[600];
	snprintf(path, sizeof(path), "%s/f", ca->mnt);
	int fd = open(path, O_RDWR);
	struct udax_ioc_hello h;
	struct udax_wire *w = NULL;
	struct udax_map_rep r;
	if (fd < 0 || proto_hello(fd, &h) || proto_connect(h.sock, &w) ||
	    map_req(w, fd, 0, 2 << 20, true, &r))
		return 2;
	_exit(0);	/* the connection, the layout and its slot: the daemon's to reap */
}

/*
 * A writable layout for [2M, 4M) gets a slot, within 3 s (the daemon reaps
 * a dead client when it sees its pidfd); given back at once.
 */
static bool probe_gets_slot(struct udax_wire *w, int fd)
{
	for (int i = 0; i < 300; i++) {
		struct udax_map_rep r;
		if (map_req(w, fd, 2 << 20, 2 << 20, true, &r))
			return false;
		struct udax_id_req ir = { r.id };
		proto_call(w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, 0, NULL);
		if (r.cache_slot != UDAX_CACHE_SLOT_NONE)
			return true;
		t_sleep_ms(10);
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

int main(void)
{
	struct fsmount fm;
	struct udax_ioc_hello h;
	struct udax_wire *w = NULL;

	t_require_env();
	char slots[16];
	snprintf(slots, sizeof(slots), "%d", SLOTS);
	setenv("UDAX_TEST_CTAB_SLOTS", slots, 1);	/* the daemon's table: small enough to fill */
	t_mount(&fm, "cachetab", 64u << 20, NULL);
	int fd = open(t_path(&fm, "f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	REQUIRE(fd >= 0 && ftruncate(fd, 8 << 20) == 0, "creating the file");
	REQUIRE_OK(proto_hello(fd, &h));
	REQUIRE_OK(proto_connect(h.sock, &w));

	/* no ticket yet: refused */
	int tfd = -1;
	int err = udax_wire_call(w, UDAX_REQ_CACHETAB, NULL, 0, NULL, NULL, &tfd);
	CHECK(err == -EACCES && tfd < 0, "a connection without a ticket is refused the table (%d)",
	      err);

	struct udax_map_rep rw, ro;
	REQUIRE_OK(map_req(w, fd, 0, 2 << 20, true, &rw));
	CHECK(rw.cache_slot != UDAX_CACHE_SLOT_NONE, "a writable layout has a page-cache slot");
	int rofd = open(t_path(&fm, "f"), O_RDONLY);
	err = map_req(w, rofd, 4 << 20, 2 << 20, false, &ro);
	CHECK(err == 0 && ro.cache_slot == UDAX_CACHE_SLOT_NONE,
	      "a read-only layout has none (%d, slot %u)", err, ro.cache_slot);

	uint32_t n = 0;
	const _Atomic uint32_t *tab = udax_wire_cachetab(w, &n);
	REQUIRE(tab && rw.cache_slot < n, "the table is mapped (%u slots)", n);
	const _Atomic uint32_t *flag = tab + rw.cache_slot;

	CHECK(flag_becomes(flag, false), "the grant's invalidation clears the flag");
	/* a READ through the mount (any descriptor) sets it before it is answered */
	char buf[4096];
	CHECK(pread(rofd, buf, sizeof(buf), 4096) == (ssize_t)sizeof(buf) && atomic_load(flag) != 0,
	      "a READ of the range through the mount sets the flag before the reply");
	struct udax_inval_req iv = { .id = rw.id, .off = 8192, .len = 4096 };
	err = proto_call(w, UDAX_REQ_INVAL, &iv, sizeof(iv), NULL, 0, NULL);
	CHECK(err == 0 && atomic_load(flag) == 0,
	      "an INVAL of the layout clears it before it is answered (%d)", err);
	CHECK(pread(rofd, buf, sizeof(buf), 6 << 20) == (ssize_t)sizeof(buf) && atomic_load(flag) == 0,
	      "a READ outside the range leaves the flag clear");

	/* the lying client */
	tfd = -1;
	err = udax_wire_call(w, UDAX_REQ_CACHETAB, NULL, 0, NULL, NULL, &tfd);
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

	/*
	 * Clients that die holding a writable layout: twice as many as the
	 * table has slots (UDAX_TEST_CTAB_SLOTS), one after the other.  If
	 * their slots were kept, none would be left for the probe.
	 */
	struct child_arg ca = { fm.mnt };
	int died = 0;
	for (uint32_t i = 0; i < 2 * n; i++) {
		pid_t pid = t_fork(child_main, &ca);
		died += pid > 0 && t_wait(pid, 10000) == 0;
	}
	CHECK(died == (int)(2 * n), "%d of %u clients took a writable layout and died", died, 2 * n);
	CHECK(probe_gets_slot(w, fd), "after them a new writable layout still gets a slot");
	/*
	 * Negative control: layouts this process holds (on connections it
	 * hung up, its mapping could still be live) fill the table, and the
	 * probe sees that no slot is left.
	 */
	struct udax_wire *held[SLOTS];
	int nheld = 0;
	for (uint32_t i = 0; i < n && nheld < SLOTS; i++) {
		struct udax_map_rep r;
		if (proto_connect(h.sock, &held[nheld]) == 0 &&
		    map_req(held[nheld], fd, 0, 2 << 20, true, &r) == 0)
			nheld++;
	}
	struct udax_map_rep r;
	CHECK(map_req(w, fd, 2 << 20, 2 << 20, true, &r) == 0 && r.cache_slot == UDAX_CACHE_SLOT_NONE,
	      "negative control: with every slot held, a layout gets none (%d held, slot %u)",
	      nheld, r.cache_slot);
	while (nheld)
		proto_close(&held[--nheld]);

	proto_close(&w);
	close(rofd);
	close(fd);
	return t_exit("dma_cachetab");
}
