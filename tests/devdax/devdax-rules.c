/* SPDX-License-Identifier: MIT */
/*
 * devdax-rules - what a real kernel device-DAX accepts and refuses, and
 * whether udaxfs's own device layer enforces the same rules.
 *
 * Runs inside the QEMU guest of tests/devdax (or on a real /dev/daxX.Y with
 * UDAX_DEVDAX=...).  It is destructive: it writes over the whole device.
 *
 *   devdax-rules DEVICE [TMPDIR]       probe every rule, then leave a
 *                                      persistence mark in the last align unit
 *   devdax-rules -c DEVICE             only verify the mark (a later boot)
 *
 * The rules, as the emulation must copy them (see README-section.md):
 *  - MAP_SHARED_VALIDATE|MAP_SYNC is accepted; MAP_PRIVATE is refused;
 *  - a length that is not a multiple of `align` is refused (EINVAL);
 *  - an offset that is not a multiple of `align` is NOT refused: the kernel
 *    silently maps the data at the rounded-down offset.  Our code must check
 *    it (dx_media_check_map);
 *  - read(2)/write(2) fail with EINVAL: only mappings reach the media;
 *  - io_uring fixed buffers can long-term pin the mapping (kernel >= 6.5),
 *    and the pin outlives munmap(): I/O still lands in the device pages.
 *
 * Exit: 0 all rules held, 1 a rule failed, 2 usage or not a device-DAX.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <liburing.h>
#include <libpmem2.h>

#include "devdax-rules.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

#define MARK_MAGIC "udax-devdax-mark"
#define MARK_DATA  (64 * 1024)

/* The persistence mark kept in the device's last align unit. */
struct rules_mark {
	char magic[16];
	uint64_t boots;		/* boots that have seen this mark, writer included */
	uint64_t seed;
	uint64_t sum;		/* FNV-1a of data[] */
	unsigned char data[MARK_DATA];
};

struct dev {
	const char *path;
	char name[64];
	int fd;
	uint64_t size;
	uint64_t align;
	char *map;		/* the whole device, MAP_SYNC */
};

static int nfail;

static void vline(const char *tag, const char *name, const char *fmt, va_list ap)
{
	printf("%-4s %s: ", tag, name);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
}

void rules_ok(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("ok", name, fmt, ap);
	va_end(ap);
}

void rules_fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	nfail++;
	va_start(ap, fmt);
	vline("FAIL", name, fmt, ap);
	va_end(ap);
}

void rules_skip(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("skip", name, fmt, ap);
	va_end(ap);
}

void rules_fact(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf("FACT %s=", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static uint64_t fnv1a(const void *p, size_t len)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *c++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int sysfs_u64(const char *name, const char *attr, uint64_t *out)
{
	char path[PATH_MAX];
	unsigned long long v;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/%s", name, attr);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	n = fscanf(f, "%lli", &v);
	fclose(f);
	if (n != 1)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Kernel version as major * 1000 + minor, from uname. */
static int kernel_version(void)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return 0;
	return ma * 1000 + mi;
}

/*
 * dev_open() - open @path, check it is a device-DAX, read its geometry.
 * Return: 0, or -errno after printing why.
 */
static int dev_open(struct dev *d, const char *path)
{
	char link[PATH_MAX], target[PATH_MAX];
	const char *name;
	struct stat st;
	ssize_t n;

	d->path = path;
	d->fd = open(path, O_RDWR | O_CLOEXEC);
	if (d->fd < 0 || fstat(d->fd, &st)) {
		fprintf(stderr, "devdax-rules: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISCHR(st.st_mode)) {
		fprintf(stderr, "devdax-rules: %s: not a character device\n", path);
		return -ENODEV;
	}
	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(st.st_rdev), minor(st.st_rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		fprintf(stderr, "devdax-rules: %s: no %s\n", path, link);
		return -ENODEV;
	}
	target[n] = '\0';
	name = strrchr(target, '/');
	name = name ? name + 1 : target;
	if (strlen(name) >= sizeof(d->name)) {
		fprintf(stderr, "devdax-rules: %s: odd sysfs name %s\n", path, name);
		return -ENODEV;
	}
	strcpy(d->name, name);
	if (sysfs_u64(d->name, "size", &d->size) || sysfs_u64(d->name, "align", &d->align) ||
	    !d->size || !d->align) {
		fprintf(stderr, "devdax-rules: %s: not a device-DAX (no /sys/bus/dax/devices/%s)\n",
			path, d->name);
		return -ENODEV;
	}
	rules_fact("device", "%s", d->name);
	rules_fact("size", "%" PRIu64, d->size);
	rules_fact("align", "%" PRIu64, d->align);
	rules_fact("st_size", "%lld", (long long)st.st_size);
	rules_fact("rdev", "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	return 0;
}

/*
 * map_and_touch() - mmap(@len, @off, @flags) and touch the first byte in a
 * child.  Return: -errno when mmap fails, 0 when the touch works, or the
 * signal number that killed the child.
 */
static int map_and_touch(struct dev *d, size_t len, off_t off, int flags)
{
	volatile char *p;
	pid_t pid;
	int st;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, d->fd, off);
	if (p == MAP_FAILED)
		return -errno;
	pid = fork();
	if (pid == 0) {
		(void)p[0];
		_exit(0);
	}
	st = 0;
	waitpid(pid, &st, 0);
	munmap((void *)p, len);
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static void check_map_sync(struct dev *d)
{
	d->map = mmap(NULL, d->size, PROT_READ | PROT_WRITE,
		      MAP_SHARED_VALIDATE | MAP_SYNC, d->fd, 0);
	if (d->map == MAP_FAILED) {
		d->map = NULL;
		rules_fail("map_sync", "mmap(MAP_SHARED_VALIDATE|MAP_SYNC) of the whole device: %s",
			   strerror(errno));
		return;
	}
	rules_ok("map_sync", "the whole device maps with MAP_SHARED_VALIDATE|MAP_SYNC");
	rules_fact("map_sync", "accepted");
	rules_fact("map_address_aligned", "%s",
		   (uintptr_t)d->map % d->align ? "no" : "yes");
}

/* Write one word per align unit (at most 8192 units), read them back. */
static void check_store_readback(struct dev *d)
{
	uint64_t stride = d->align, off;
	int bad = 0;

	while (d->size / stride > 8192)
		stride *= 2;
	for (off = 0; off < d->size; off += stride)
		*(volatile uint64_t *)(d->map + off) = 0x7564617800000000ULL + off / stride;
	msync(d->map, d->size, MS_SYNC);
	for (off = 0; off < d->size; off += stride)
		if (*(volatile uint64_t *)(d->map + off) != 0x7564617800000000ULL + off / stride)
			bad++;
	if (bad)
		rules_fail("store_readback", "%d of %" PRIu64 " words read back wrong",
			   bad, d->size / stride);
	else
		rules_ok("store_readback", "%" PRIu64 " words, stride %" PRIu64, d->size / stride, stride);
}

static void check_refusals(struct dev *d)
{
	int r;

	r = map_and_touch(d, d->align, 0, MAP_PRIVATE);
	if (r == -EINVAL)
		rules_ok("map_private", "MAP_PRIVATE refused with EINVAL");
	else
		rules_fail("map_private", "MAP_PRIVATE gave %d, expected -EINVAL", r);
	rules_fact("map_private", "%s", r == -EINVAL ? "EINVAL" : "accepted");

	if (d->align > 4096) {
		r = map_and_touch(d, 4096, 0, MAP_SHARED);
		if (r == -EINVAL)
			rules_ok("unaligned_length", "length 4096 < align refused with EINVAL");
		else
			rules_fail("unaligned_length", "length 4096 gave %d, expected -EINVAL", r);
		r = map_and_touch(d, d->align + 4096, 0, MAP_SHARED);
		if (r == -EINVAL)
			rules_ok("unaligned_length", "length align+4096 refused with EINVAL");
		else
			rules_fail("unaligned_length", "length align+4096 gave %d, expected -EINVAL", r);
		rules_fact("unaligned_length", "%s", r == -EINVAL ? "EINVAL" : "accepted");
	} else {
		rules_skip("unaligned_length", "align is the page size: mmap rounds every length up");
	}

	r = map_and_touch(d, d->align, (off_t)d->size, MAP_SHARED);
	if (r < 0)
		rules_fact("offset_past_end", "mmap %s", strerror(-r));
	else
		rules_fact("offset_past_end", "mmap accepted, first touch %s",
			   r ? strsignal(r) : "works");
	rules_ok("offset_past_end", "recorded (never used by udaxfs: check_map refuses it)");
}

/*
 * check_unaligned_offset() - the trap: an offset that is not a multiple of
 * align.  The kernel accepts the mmap; what does the mapping show?
 */
static void check_unaligned_offset(struct dev *d)
{
	static const char at0[16] = "AT-OFFSET-0", at4k[16] = "AT-OFFSET-4096";
	const char *what;
	char *u;
	pid_t pid;
	int st = 0;

	if (d->align <= 4096) {
		rules_skip("unaligned_offset", "align is the page size: every page offset is aligned");
		return;
	}
	memcpy(d->map, at0, sizeof(at0));
	memcpy(d->map + 4096, at4k, sizeof(at4k));
	u = mmap(NULL, d->align, PROT_READ, MAP_SHARED, d->fd, 4096);
	if (u == MAP_FAILED) {
		rules_ok("unaligned_offset", "offset 4096 refused by the kernel (%s)", strerror(errno));
		rules_fact("unaligned_offset", "refused %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0)
		_exit(!memcmp(u, at4k, sizeof(at4k)) ? 0 : !memcmp(u, at0, sizeof(at0)) ? 1 : 2);
	waitpid(pid, &st, 0);
	munmap(u, d->align);
	if (WIFSIGNALED(st))
		what = strsignal(WTERMSIG(st));
	else if (WEXITSTATUS(st) == 0)
		what = "accepted, shows the data at offset 4096";
	else if (WEXITSTATUS(st) == 1)
		what = "accepted, SILENTLY shows the data at offset 0";
	else
		what = "accepted, shows neither offset's data";
	rules_fact("unaligned_offset", "%s", what);
	/* Whatever the kernel does, it does not say no: that is the rule. */
	rules_ok("unaligned_offset", "kernel does not refuse offset 4096: %s", what);
}

static void check_no_rw_syscalls(struct dev *d)
{
	char b[16] = "";
	ssize_t n;

	n = read(d->fd, b, sizeof(b));
	if (n < 0 && errno == EINVAL)
		rules_ok("read_syscall", "read(2) fails with EINVAL");
	else
		rules_fail("read_syscall", "read(2) gave %zd (%s)", n, n < 0 ? strerror(errno) : "data");
	n = write(d->fd, b, sizeof(b));
	if (n < 0 && errno == EINVAL)
		rules_ok("write_syscall", "write(2) fails with EINVAL");
	else
		rules_fail("write_syscall", "write(2) gave %zd (%s)", n, n < 0 ? strerror(errno) : "data");
	rules_fact("read_write_syscalls", "%s", n < 0 ? strerror(errno) : "accepted");
}

static int uring_rw(struct io_uring *ring, int op_write, int fd, void *buf, size_t len, off_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (op_write)
		io_uring_prep_write_fixed(sqe, fd, buf, len, off, 0);
	else
		io_uring_prep_read_fixed(sqe, fd, buf, len, off, 0);
	io_uring_submit(ring);
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/*
 * check_pins() - io_uring fixed buffers over a separate mapping of the
 * device's third align unit: register (a long-term pin), READ_FIXED into it,
 * then munmap it and show the pin still reaches the device pages.
 */
static void check_pins(struct dev *d, const char *tmpdir)
{
	size_t len = d->align < (1 << 20) ? (1 << 20) : d->align;
	off_t off = (off_t)(2 * d->align);
	int kv = kernel_version(), fd, ret;
	char path[PATH_MAX], *src, *out, *m;
	struct io_uring ring;
	struct iovec iov;
	size_t i;

	len = (len + d->align - 1) / d->align * d->align;
	if ((uint64_t)off + len > d->size) {
		rules_skip("pin", "device too small");
		return;
	}
	src = malloc(len);
	out = malloc(len);
	for (i = 0; i < len; i++)
		src[i] = (char)(i * 7 + 3);
	snprintf(path, sizeof(path), "%s/devdax-rules-pin.%d", tmpdir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || pwrite(fd, src, len, 0) != (ssize_t)len) {
		rules_fail("pin", "cannot write %s: %s", path, strerror(errno));
		goto out_free;
	}
	ret = io_uring_queue_init(4, &ring, 0);
	if (ret) {
		rules_skip("pin", "io_uring_queue_init: %s", strerror(-ret));
		goto out_file;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, d->fd, off);
	if (m == MAP_FAILED) {
		rules_fail("pin", "mmap of the pin range: %s", strerror(errno));
		goto out_ring;
	}
	iov.iov_base = m;
	iov.iov_len = len;
	ret = io_uring_register_buffers(&ring, &iov, 1);
	rules_fact("pin_register", "%s (kernel %d.%d)", ret ? strerror(-ret) : "works",
		   kv / 1000, kv % 1000);
	if (ret == -EOPNOTSUPP && kv < 6005) {
		/* io_uring rejected file-backed VMAs itself before 6.5 */
		rules_skip("pin", "kernel %d.%d < 6.5 cannot register a devdax mapping (EOPNOTSUPP)",
			   kv / 1000, kv % 1000);
		munmap(m, len);
		goto out_ring;
	}
	if (ret) {
		rules_fail("pin", "io_uring_register_buffers over the device: %s", strerror(-ret));
		munmap(m, len);
		goto out_ring;
	}
	memset(m, 0, len);
	ret = uring_rw(&ring, 0, fd, m, len, 0);
	if (ret != (int)len || memcmp(d->map + off, src, len))
		rules_fail("pin", "READ_FIXED into the device gave %d or wrong data", ret);
	else
		rules_ok("pin", "READ_FIXED into a pinned device mapping (%zu bytes)", len);

	/* the pin outlives munmap: DMA still lands in the device pages */
	munmap(m, len);
	memset(d->map + off, 0x5a, len);
	ret = uring_rw(&ring, 1, fd, m, len, (off_t)len);
	if (ret != (int)len || pread(fd, out, len, (off_t)len) != (ssize_t)len ||
	    memchr(out, 0, len) || out[0] != 0x5a || out[len - 1] != 0x5a) {
		rules_fail("pin_outlives_munmap", "WRITE_FIXED after munmap gave %d or other data", ret);
		rules_fact("pin_outlives_munmap", "no");
	} else {
		ret = uring_rw(&ring, 0, fd, m, len, 0);
		if (ret == (int)len && !memcmp(d->map + off, src, len)) {
			rules_ok("pin_outlives_munmap",
				 "after munmap, fixed-buffer I/O still reads and writes the device pages");
			rules_fact("pin_outlives_munmap", "yes");
		} else {
			rules_fail("pin_outlives_munmap", "READ_FIXED after munmap gave %d or other data", ret);
		}
	}
	io_uring_unregister_buffers(&ring);
out_ring:
	io_uring_queue_exit(&ring);
out_file:
	if (fd >= 0)
		close(fd);
	unlink(path);
out_free:
	free(src);
	free(out);
}

static const char *gran_name(enum pmem2_granularity g)
{
	switch (g) {
	case PMEM2_GRANULARITY_BYTE:
		return "byte";
	case PMEM2_GRANULARITY_CACHE_LINE:
		return "cache-line";
	case PMEM2_GRANULARITY_PAGE:
		return "page";
	}
	return "?";
}

static void check_pmem2(struct dev *d)
{
	struct pmem2_source *src = NULL;
	struct pmem2_config *cfg = NULL;
	struct pmem2_map *map = NULL;
	size_t sz = 0, al = 0;
	int ret;

	ret = pmem2_source_from_fd(&src, d->fd);
	if (ret) {
		rules_fail("pmem2", "pmem2_source_from_fd: %s", pmem2_errormsg());
		return;
	}
	pmem2_source_size(src, &sz);
	pmem2_source_alignment(src, &al);
	if (sz == d->size && al == d->align)
		rules_ok("pmem2_geometry", "libpmem2 size and alignment equal sysfs");
	else
		rules_fail("pmem2_geometry", "libpmem2 size %zu align %zu, sysfs %" PRIu64 " %" PRIu64,
			   sz, al, d->size, d->align);
	pmem2_config_new(&cfg);
	pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	ret = pmem2_map_new(&map, cfg, src);
	if (ret) {
		rules_fail("pmem2_map", "pmem2_map_new: %s", pmem2_errormsg());
	} else {
		rules_ok("pmem2_map", "mapped %zu bytes", pmem2_map_get_size(map));
		rules_fact("pmem2_granularity", "%s", gran_name(pmem2_map_get_store_granularity(map)));
		pmem2_map_delete(&map);
	}
	pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_BYTE);
	ret = pmem2_map_new(&map, cfg, src);
	rules_fact("pmem2_require_byte", "%s", ret ? "refused (no eADR)" : "accepted");
	if (!ret)
		pmem2_map_delete(&map);
	pmem2_config_delete(&cfg);
	pmem2_source_delete(&src);
}

/* The mark lives in the last align unit; it must fit. */
static struct rules_mark *mark_ptr(struct dev *d)
{
	uint64_t room = (sizeof(struct rules_mark) + d->align - 1) / d->align * d->align;

	if (room > d->size / 2)
		return NULL;
	return (struct rules_mark *)(d->map + d->size - room);
}

static void mark_write(struct dev *d)
{
	struct rules_mark *mk = mark_ptr(d);
	uint64_t x;
	size_t i;

	if (!mk) {
		rules_skip("mark", "device too small");
		return;
	}
	mk->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (x = mk->seed, i = 0; i < MARK_DATA; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		mk->data[i] = (unsigned char)(x >> 56);
	}
	mk->sum = fnv1a(mk->data, MARK_DATA);
	mk->boots = 1;
	memcpy(mk->magic, MARK_MAGIC, sizeof(mk->magic));
	msync(mk, sizeof(*mk), MS_SYNC);
	printf("MARK %016" PRIx64 "\n", mk->sum);
	rules_ok("mark", "persistence mark written (sum %016" PRIx64 ")", mk->sum);
}

static void mark_check(struct dev *d, const char *want)
{
	struct rules_mark *mk = mark_ptr(d);
	char sum[32];

	if (!mk || memcmp(mk->magic, MARK_MAGIC, sizeof(mk->magic))) {
		rules_fail("mark", "no persistence mark from the previous boot");
		return;
	}
	snprintf(sum, sizeof(sum), "%016" PRIx64, fnv1a(mk->data, MARK_DATA));
	if (mk->sum != strtoull(sum, NULL, 16) || (want && strcmp(want, sum)))
		rules_fail("mark", "mark data changed: %s, stored %016" PRIx64 ", expected %s",
			   sum, mk->sum, want ? want : "-");
	else
		rules_ok("mark", "mark from the previous boot intact (sum %s, boot %" PRIu64 ")",
			 sum, ++mk->boots);
}

static void usage(void)
{
	fprintf(stderr, "Usage: devdax-rules DEVICE [TMPDIR]\n"
			"       devdax-rules -c DEVICE [SUM]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct dev d = { .fd = -1 };
	int check_only = 0;

	if (argc > 1 && !strcmp(argv[1], "-c")) {
		check_only = 1;
		argv++;
		argc--;
	}
	if (argc < 2 || argv[1][0] == '-')
		usage();
	if (dev_open(&d, argv[1]))
		return 2;
	check_map_sync(&d);
	if (!d.map)
		return 1;
	if (check_only) {
		mark_check(&d, argc > 2 ? argv[2] : NULL);
	} else {
		check_store_readback(&d);
		check_refusals(&d);
		check_unaligned_offset(&d);
		check_no_rw_syscalls(&d);
		check_pins(&d, argc > 2 ? argv[2] : "/tmp");
		check_pmem2(&d);
		rules_media(d.path, d.size, d.align, argc > 2 ? argv[2] : "/tmp");
		mark_write(&d);
	}
	munmap(d.map, d.size);
	close(d.fd);
	printf("devdax-rules: %s\n", nfail ? "FAILED" : "all rules held");
	return nfail ? 1 : 0;
}
