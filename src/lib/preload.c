// SPDX-License-Identifier: MIT
/*
 * preload.c - libudax-preload.so: give unmodified programs direct mappings
 * of udaxfs files (LD_PRELOAD=libudax-preload.so program ...).
 *
 * mmap()/mmap64() of a file on a udaxfs mount with MAP_SHARED, or with
 * MAP_SHARED_VALIDATE|MAP_SYNC (which FUSE alone refuses with EOPNOTSUPP),
 * gets a direct mapping of the device pages through libudax, at the address
 * the caller asked for (MAP_FIXED honoured).  munmap() gives the layout
 * back, msync() is a CPU cache flush, mremap() of such a mapping may shrink it
 * but not grow or move it (ENOMEM, as the kernel says when it cannot).
 * Every other mapping goes straight to the C library.  See libudax-preload(7).
 *
 * The shim's mmap side, by concern:
 *   preload.c        setup (the C library's functions, fork), which files
 *                    are udaxfs, and the layout protocol (MAP, UNMAP);
 *   preload_mmap.c   the mapping table, recalls, and mmap, munmap, msync,
 *                    mremap;
 *   preload_uring.c  io_uring fixed buffers over direct mappings (pins).
 * read() and write() are preload_io.c's, through libudax.
 *
 * Why the shim places its mappings itself instead of calling libudax's
 * map functions: libpmem2 and libpmem reserve an address range and then
 * map the file MAP_FIXED into it, so the mapping must land exactly there;
 * and libudax registers its tmpfs maps with libpmem2
 * (pmem2_map_from_existing), which makes the application's own
 * pmem2_map_new() of the same range fail with PMEM2_E_MAP_EXISTS.  Its
 * protocol traffic goes through wire.h, the client libudax uses too:
 * HELLO ioctl, one connection per daemon, MAP with the ticket and the
 * address, UNMAP on munmap, RETURN on a recall.
 *
 * Thread safety: the mapping table has one mutex (tbl_lock), never held
 * while calling into wire.c except udax_wire_send; calls made by the shim
 * itself pass straight through (a per-thread flag).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <udax/udax_proto.h>

#include "preload_int.h"
#include "wire.h"

#define FUSE_SUPER_MAGIC_ 0x65735546

mmap_fn real_mmap, real_mmap64;
munmap_fn real_munmap;
msync_fn real_msync;
mremap_fn real_mremap;

__thread int in_shim;
static bool debug;
long page_size = 4096;

pthread_mutex_t tbl_lock = PTHREAD_MUTEX_INITIALIZER;

/* st_dev -> is it udaxfs; a few entries are enough (tbl_lock) */
static struct { dev_t dev; bool udax; } devcache[32];
static unsigned int ndevcache;

void dbg(const char *fmt, ...)
{
	va_list ap;

	if (!debug)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "udax-preload[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/*
 * fork: the table must be consistent in the child, whose only thread is
 * the one that forked (a reader thread holding tbl_lock would leave it
 * locked forever there).  The child's own entries are told apart by pid.
 */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&tbl_lock);
}

static void atfork_release(void)
{
	pthread_mutex_unlock(&tbl_lock);
}

__attribute__((constructor)) static void shim_init(void)
{
	static bool once;

	if (!once) {
		once = true;
		pthread_atfork(atfork_prepare, atfork_release, atfork_release);
	}
	in_shim++;
	real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	real_mmap64 = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
	real_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	real_msync = (msync_fn)dlsym(RTLD_NEXT, "msync");
	real_mremap = (mremap_fn)dlsym(RTLD_NEXT, "mremap");
	if (!real_mmap64)
		real_mmap64 = real_mmap;
	page_size = sysconf(_SC_PAGESIZE);
	debug = getenv("UDAX_PRELOAD_DEBUG") && *getenv("UDAX_PRELOAD_DEBUG") != '0';
	in_shim--;
}

void resolve(void)
{
	if (!real_mmap)
		shim_init();
}

/* Is @dev a fuse.udaxfs mount?  Look in /proc/self/mountinfo. */
static bool mountinfo_is_udax(dev_t dev)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool yes = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned int ma, mi;
		char *sep = strstr(line, " - ");
		char type[128];

		if (!sep || sscanf(line, "%*u %*u %u:%u", &ma, &mi) != 2 ||
		    sscanf(sep + 3, "%127s", type) != 1)
			continue;
		if (makedev(ma, mi) == dev)
			yes = strcmp(type, "fuse.udaxfs") == 0;
	}
	fclose(f);
	return yes;
}

bool is_udaxfs(int fd, struct stat *st)
{
	struct statfs sfs;
	bool yes;

	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))
		return false;
	pthread_mutex_lock(&tbl_lock);
	for (unsigned int i = 0; i < ndevcache; i++)
		if (devcache[i].dev == st->st_dev) {
			yes = devcache[i].udax;
			pthread_mutex_unlock(&tbl_lock);
			return yes;
		}
	pthread_mutex_unlock(&tbl_lock);
	yes = fstatfs(fd, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC_ &&
	      mountinfo_is_udax(st->st_dev);
	pthread_mutex_lock(&tbl_lock);
	if (ndevcache < sizeof(devcache) / sizeof(devcache[0])) {
		devcache[ndevcache].dev = st->st_dev;
		devcache[ndevcache++].udax = yes;
	}
	pthread_mutex_unlock(&tbl_lock);
	return yes;
}

/* ---- the layout protocol: through wire.h ---- */

/* Test only (libudax-preload(7)): an env variable's value in ms, 0 if unset. */
long test_ms(const char *name)
{
	const char *e = getenv(name);

	return e ? strtol(e, NULL, 10) : 0;
}

/* One request, its reply (the daemon's reason for a refusal goes to dbg). */
int call(struct udax_wire *w, uint16_t type, const void *p, uint32_t len, void **rp,
	 uint32_t *rlen)
{
	void *rep = NULL;
	uint32_t n = 0;
	int ret = udax_wire_call(w, type, p, len, &rep, &n, NULL);

	if (ret < 0 && rep && n)
		dbg("daemon: %s", (char *)rep);
	if (ret == 0 && rp) {
		*rp = rep;
		*rlen = n;
	} else {
		free(rep);
	}
	return ret;
}

/* Test only (libudax-preload(7)): stall between the MAP reply and registering the layout. */
static void test_map_delay(void)
{
	long ms = test_ms("UDAX_PRELOAD_TEST_MAP_DELAY_MS");

	if (ms > 0) {
		dbg("test: stalling %ld ms after the MAP reply", ms);
		usleep((useconds_t)ms * 1000);
	}
}

/*
 * Ask for [off, off+len) of @fd and map it at exactly @at.  Return 0 with a
 * reference to the layout's connection and its id (the caller registers
 * the layout for recalls), -EPERM / -ENOTTY (not allowed / not ours: the
 * caller passes through), or -errno.
 */
int layout_map(int fd, char *at, off_t off, size_t len, bool write, struct udax_wire **wp,
	       uint64_t *id, bool *devdax)
{
	struct udax_ioc_hello hello;
	struct udax_map_req rq = { .off = (uint64_t)off, .len = len,
				   .prot = UDAX_PROT_READ | (write ? UDAX_PROT_WRITE : 0),
				   /* mmap(2) never changes the size (the last page may
				    * reach past EOF: see "End of file" in
				    * preload_mmap.c) */
				   .flags = UDAX_MAP_F_KEEP_SIZE,
				   .addr = (uint64_t)(uintptr_t)at };
	struct udax_map_rep rep;
	struct udax_wire *w = NULL;
	void *rp = NULL;
	uint32_t rlen = 0;
	int ret;

	for (int attempt = 0;; attempt++) {
		ret = udax_wire_hello(fd, &hello);
		if (ret < 0)
			return ret == -EPERM || ret == -EACCES ? -EPERM : -ENOTTY;
		if (!(hello.flags & UDAX_HELLO_ALLOWED)) {
			udax_wire_put(&w);
			return -EPERM;
		}
		if (!w) {
			ret = udax_wire_get(&w, hello.sock);
			if (ret < 0) {
				dbg("connecting to %s: %s", hello.sock, strerror(-ret));
				return -ECONNREFUSED;
			}
		}
		memcpy(rq.ticket, hello.ticket, sizeof(rq.ticket));
		ret = call(w, UDAX_REQ_MAP, &rq, sizeof(rq), &rp, &rlen);
		if (ret != -EBUSY || attempt > 200)
			break;
		usleep(attempt < 10 ? 1000 : 10000);	/* a recall is under way */
	}
	if (ret < 0) {
		udax_wire_put(&w);
		return ret;
	}
	test_map_delay();
	if (rlen < sizeof(rep)) {
		free(rp);
		udax_wire_put(&w);
		return -EPROTO;
	}
	memcpy(&rep, rp, sizeof(rep));
	const struct udax_run *runs = (const struct udax_run *)((char *)rp + sizeof(rep));
	struct udax_id_req ir = { .id = rep.id };
	if (rlen < sizeof(rep) + (size_t)rep.nruns * sizeof(*runs) || rep.off != (uint64_t)off ||
	    rep.len != len) {
		ret = -EPROTO;	/* a granted range other than the one asked for */
		goto fail;
	}
	/* the latest device descriptor: this reply's or an earlier one's */
	int dev = udax_wire_dev_fd(w);
	if (dev < 0) {
		ret = -EPROTO;
		goto fail;
	}
	uint64_t bad_off;
	ret = udax_wire_map_runs(real_mmap, at, len, runs, rep.nruns, write, rep.media_kind == 1,
				 dev, &bad_off);
	if (ret < 0)
		goto fail;
	free(rp);
	*wp = w;
	*id = rep.id;
	*devdax = rep.media_kind == 1;
	return 0;
fail:
	free(rp);
	call(w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL);
	udax_wire_put(&w);
	return ret;
}

/* Give a layout back (munmap).  The range must already be replaced. */
void layout_unmap(struct udax_wire *w, uint64_t id)
{
	struct udax_id_req ir = { .id = id };

	call(w, UDAX_REQ_UNMAP, &ir, sizeof(ir), NULL, NULL);
}
