/* SPDX-License-Identifier: MIT */
/*
 * media.c - the device layer: open a device-DAX character device or an
 * emulation file, map it once with libpmem2, and route every persistence
 * primitive through here (so the crash backend sees each fence).
 *
 * libpmem2's error codes stay inside this file: callers get -errno and a
 * dx_errmsg() that names the path and quotes pmem2_errormsg().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "media_int.h"
#include "util.h"

#define UDAX_MEDIA_MIN_SIZE (4 * UDAX_MIB)

/* ---- CPU persistence for tmpfs emulation (x86-64; elsewhere libpmem2) ---- */
#if defined(__x86_64__)
#include <cpuid.h>
#include <emmintrin.h>

enum { FL_CLFLUSH, FL_CLFLUSHOPT, FL_CLWB };
static int cpu_flush_kind = -1;

static int cpu_flush_probe(void)
{
	unsigned int a, b, c, d;

	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		if (b & (1u << 24))
			return FL_CLWB;
		if (b & (1u << 23))
			return FL_CLFLUSHOPT;
	}
	return FL_CLFLUSH;
}

static void cpu_flush(const void *addr, size_t len)
{
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(UDAX_CACHELINE - 1);
	uintptr_t end = (uintptr_t)addr + len;

	switch (__atomic_load_n(&cpu_flush_kind, __ATOMIC_RELAXED)) {
	case FL_CLWB:
		for (; p < end; p += UDAX_CACHELINE)
			__asm__ volatile("clwb %0" : "+m"(*(volatile char *)p));
		break;
	case FL_CLFLUSHOPT:
		for (; p < end; p += UDAX_CACHELINE)
			__asm__ volatile("clflushopt %0" : "+m"(*(volatile char *)p));
		break;
	default:
		for (; p < end; p += UDAX_CACHELINE)
			__asm__ volatile("clflush %0" : "+m"(*(volatile char *)p));
		break;
	}
}

static void cpu_drain(void)
{
	__asm__ volatile("sfence" ::: "memory");
}

/*
 * Copies of at least this many bytes use non-temporal stores, which
 * bypass the cache (no write-back needed afterwards, as libpmem2 does on a
 * device-DAX); smaller ones are cached stores plus write-back.
 */
#define NT_THRESHOLD 256

/* Non-temporal memcpy/memset; the caller drains.  Unaligned edges are
 * stored normally and written back. */
static void nt_copy(char *d, const char *s, int c, size_t len, bool set)
{
	size_t head = (size_t)(-(uintptr_t)d & (UDAX_CACHELINE - 1));
	__m128i v = _mm_set1_epi8((char)c);
	size_t body;

	if (head > len)
		head = len;
	if (head) {
		set ? memset(d, c, head) : memcpy(d, s, head);
		cpu_flush(d, head);
		d += head;
		s += set ? 0 : head;
		len -= head;
	}
	body = len & ~(size_t)(UDAX_CACHELINE - 1);
	for (size_t i = 0; i < body; i += UDAX_CACHELINE) {
		__m128i a0 = v, a1 = v, a2 = v, a3 = v;

		if (!set) {
			a0 = _mm_loadu_si128((const __m128i *)(s + i));
			a1 = _mm_loadu_si128((const __m128i *)(s + i + 16));
			a2 = _mm_loadu_si128((const __m128i *)(s + i + 32));
			a3 = _mm_loadu_si128((const __m128i *)(s + i + 48));
		}
		_mm_stream_si128((__m128i *)(d + i), a0);
		_mm_stream_si128((__m128i *)(d + i + 16), a1);
		_mm_stream_si128((__m128i *)(d + i + 32), a2);
		_mm_stream_si128((__m128i *)(d + i + 48), a3);
	}
	d += body;
	s += set ? 0 : body;
	len -= body;
	if (len) {
		set ? memset(d, c, len) : memcpy(d, s, len);
		cpu_flush(d, len);
	}
}

static bool cpu_persist_available(void)
{
	/* every opener computes the same value: a racy first store is benign */
	if (__atomic_load_n(&cpu_flush_kind, __ATOMIC_RELAXED) < 0)
		__atomic_store_n(&cpu_flush_kind, cpu_flush_probe(), __ATOMIC_RELAXED);
	return true;
}
#else
#define NT_THRESHOLD SIZE_MAX
static void cpu_flush(const void *addr, size_t len) { (void)addr; (void)len; }
static void cpu_drain(void) { __sync_synchronize(); }
static bool cpu_persist_available(void) { return false; }
static void nt_copy(char *d, const char *s, int c, size_t len, bool set)
{
	(void)d; (void)s; (void)c; (void)len; (void)set;
}
#endif

/* Read one unsigned or signed decimal/hex number from a sysfs file. */
static int sysfs_read_num(const char *dir, const char *name, long long *out)
{
	char path[PATH_MAX], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	errno = 0;
	*out = strtoll(buf, NULL, 0);
	return errno ? -errno : 0;
}

/*
 * devdax_probe() - find the dax device behind char device @rdev and read its
 * size, alignment and NUMA node from /sys/bus/dax/devices/<name>/.
 * Return: 0, -ENODEV (not a device-DAX).
 */
static int devdax_probe(struct dx_media *m, dev_t rdev)
{
	char link[PATH_MAX], target[PATH_MAX], dir[PATH_MAX];
	const char *name;
	long long v;
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(rdev), minor(rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -ENODEV;
	target[n] = '\0';
	name = strrchr(target, '/');
	name = name ? name + 1 : target;
	if (strncmp(name, "dax", 3) != 0)
		return -ENODEV;
	snprintf(dir, sizeof(dir), "/sys/bus/dax/devices/%.200s", name);
	if (sysfs_read_num(dir, "size", &v) < 0 || v <= 0) {
		/* an older layout: the class directory itself */
		snprintf(dir, sizeof(dir), "%s", link);
		if (sysfs_read_num(dir, "size", &v) < 0 || v <= 0)
			return -ENODEV;
	}
	m->size = (uint64_t)v;
	if (sysfs_read_num(dir, "align", &v) == 0 && v > 0)
		m->align = (uint64_t)v;
	else
		m->align = (2 * UDAX_MIB);
	m->numa_node = -1;
	if (sysfs_read_num(dir, "target_node", &v) == 0 && v >= 0)
		m->numa_node = (int)v;
	else if (sysfs_read_num(dir, "numa_node", &v) == 0 && v >= 0)
		m->numa_node = (int)v;
	return 0;
}

/* "3 MiB" when exact, else dx_fmt_size()'s "3.5 MiB". */
static char *fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned int u = 0;
	uint64_t x = v;

	while (x && x % 1024 == 0 && u + 1 < UDAX_ARRAY_SIZE(units)) {
		x /= 1024;
		u++;
	}
	if (u == 0 && v >= 1024)
		return dx_fmt_size(v, buf, len);
	snprintf(buf, len, "%" PRIu64 " %s", x, units[u]);
	return buf;
}

static int check_geometry(const struct dx_media *m)
{
	char a[32], b[32];

	if (m->size < UDAX_MEDIA_MIN_SIZE) {
		dx_seterr("%s: size %s is smaller than the 4 MiB minimum", m->path,
			    fmt_size(m->size, a, sizeof(a)));
		return -EINVAL;
	}
	if (m->size % 4096) {
		dx_seterr("%s: size %" PRIu64 " is not a multiple of 4096 bytes", m->path, m->size);
		return -EINVAL;
	}
	if (m->size % m->align) {
		dx_seterr("%s: size %s is not a multiple of the %s alignment", m->path,
			    fmt_size(m->size, a, sizeof(a)),
			    fmt_size(m->align, b, sizeof(b)));
		return -EINVAL;
	}
	return 0;
}

/* Map the whole source with libpmem2.  Return: 0 or -errno with a message. */
static int media_map(struct dx_media *m)
{
	struct pmem2_config *cfg = NULL;
	int ret;

	ret = pmem2_source_from_fd(&m->src, m->fd);
	if (ret)
		goto err_pmem;
	ret = pmem2_config_new(&cfg);
	if (ret)
		goto err_pmem;
	ret = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (ret)
		goto err_pmem;
	ret = pmem2_config_set_length(cfg, m->size);
	if (ret)
		goto err_pmem;
	if (m->readonly)
		ret = pmem2_config_set_protection(cfg, PMEM2_PROT_READ);
	if (ret)
		goto err_pmem;
	if (m->crash)
		ret = pmem2_config_set_sharing(cfg, PMEM2_PRIVATE);
	if (ret)
		goto err_pmem;
	ret = pmem2_map_new(&m->map, cfg, m->src);
	if (ret)
		goto err_pmem;
	pmem2_config_delete(&cfg);
	m->base = pmem2_map_get_address(m->map);
	m->persist = pmem2_get_persist_fn(m->map);
	m->flush = pmem2_get_flush_fn(m->map);
	m->drain = pmem2_get_drain_fn(m->map);
	m->memcpy_fn = pmem2_get_memcpy_fn(m->map);
	m->memset_fn = pmem2_get_memset_fn(m->map);
	return 0;

err_pmem:
	dx_seterr("%s: libpmem2: %s", m->path, pmem2_errormsg());
	if (cfg)
		pmem2_config_delete(&cfg);
	/* libpmem2 returns -errno for system errors and its own codes
	 * (<= -100000) for configuration problems */
	if (ret <= -100000 || ret >= 0)
		return -EINVAL;
	return ret;
}

int dx_media_open(struct dx_media **out, const struct dx_media_opts *o)
{
	struct dx_media *m;
	struct statfs sfs;
	struct stat st;
	int ret;

	*out = NULL;
	if (!o || !o->path || !*o->path) {
		dx_seterr("no device given");
		return -EINVAL;
	}
	if (o->emul_align && (!UDAX_IS_POW2(o->emul_align) || o->emul_align < 4096)) {
		dx_seterr("%s: alignment %" PRIu64 " is not a power of two >= 4096",
			    o->path, o->emul_align);
		return -EINVAL;
	}
	if (o->crash_emul && o->readonly) {
		dx_seterr("%s: crash emulation needs a writable device", o->path);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fd = -1;
	m->numa_node = -1;
	m->readonly = o->readonly;
	m->path = strdup(o->path);
	if (!m->path) {
		ret = -ENOMEM;
		goto err_free;
	}
	m->fd = open(o->path, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (m->fd < 0) {
		ret = -errno;
		dx_seterr("%s: %s", o->path, strerror(-ret));
		goto err_free;
	}
	if (fstat(m->fd, &st) < 0) {
		ret = -errno;
		dx_seterr("%s: %s", o->path, strerror(-ret));
		goto err_close;
	}
	if (S_ISCHR(st.st_mode)) {
		if (devdax_probe(m, st.st_rdev) < 0) {
			dx_seterr("%s: not a device-DAX or regular file", o->path);
			ret = -ENODEV;
			goto err_close;
		}
		if (o->crash_emul) {
			dx_seterr("%s: crash emulation works on emulation files only", o->path);
			ret = -EOPNOTSUPP;
			goto err_close;
		}
		m->kind = UDAX_MEDIA_DEVDAX;
		m->pinnable = true;
	} else if (S_ISREG(st.st_mode)) {
		m->kind = UDAX_MEDIA_EMUL;
		m->size = (uint64_t)st.st_size;
		m->align = o->emul_align ? o->emul_align : 4096;
		m->pinnable = fstatfs(m->fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
	} else {
		dx_seterr("%s: not a device-DAX or regular file", o->path);
		ret = -ENODEV;
		goto err_close;
	}
	ret = check_geometry(m);
	if (ret)
		goto err_close;
	if (o->crash_emul) {
		ret = dx_crash_init(m);
		if (ret)
			goto err_close;
	}
	m->cpu_persist = m->kind == UDAX_MEDIA_EMUL && m->pinnable && !o->emul_msync &&
			 !m->crash && cpu_persist_available();
	ret = media_map(m);
	if (ret)
		goto err_map;
	*out = m;
	return 0;

err_map:
	if (m->map)
		pmem2_map_delete(&m->map);
	if (m->src)
		pmem2_source_delete(&m->src);
	dx_crash_fini(m);
err_close:
	close(m->fd);
err_free:
	free(m->path);
	free(m);
	return ret;
}

void dx_media_close(struct dx_media **mp)
{
	struct dx_media *m = mp ? *mp : NULL;

	if (!m)
		return;
	if (m->map)
		pmem2_map_delete(&m->map);
	if (m->src)
		pmem2_source_delete(&m->src);
	dx_crash_fini(m);
	if (m->fd >= 0)
		close(m->fd);
	free(m->path);
	free(m);
	*mp = NULL;
}

enum dx_media_kind dx_media_kind(const struct dx_media *m) { return m->kind; }
void *dx_media_base(const struct dx_media *m) { return m->base; }
uint64_t dx_media_size(const struct dx_media *m) { return m->size; }
uint64_t dx_media_align(const struct dx_media *m) { return m->align; }
int dx_media_numa_node(const struct dx_media *m) { return m->numa_node; }
int dx_media_fd(const struct dx_media *m) { return m->fd; }
const char *dx_media_path(const struct dx_media *m) { return m->path; }
bool dx_media_readonly(const struct dx_media *m) { return m->readonly; }
bool dx_media_pinnable(const struct dx_media *m) { return m->pinnable; }

int dx_media_check_map(const struct dx_media *m, uint64_t off, uint64_t len)
{
	if (len == 0 || off % m->align || len % m->align)
		return -EINVAL;
	if (off > m->size || len > m->size - off)
		return -ERANGE;
	return 0;
}

const char *dx_media_persist_mode(const struct dx_media *m)
{
	if (m->crash)
		return "crash";
	if (m->cpu_persist)
		return "cpu";
	return m->kind == UDAX_MEDIA_DEVDAX ? "pmem2" : "msync";
}

void dx_media_flush(struct dx_media *m, const void *addr, size_t len)
{
	if (m->cpu_persist)
		cpu_flush(addr, len);
	else if (m->crash)
		dx_crash_flush(m, addr, len);
	else
		m->flush(addr, len);
}

void dx_media_drain(struct dx_media *m)
{
	if (m->cpu_persist)
		cpu_drain();
	else if (m->crash)
		dx_crash_drain(m);
	else
		m->drain();
}

void dx_media_persist(struct dx_media *m, const void *addr, size_t len)
{
	if (m->cpu_persist) {
		cpu_flush(addr, len);
		cpu_drain();
	} else if (m->crash) {
		dx_crash_flush(m, addr, len);
		dx_crash_drain(m);
	} else {
		m->persist(addr, len);
	}
}

void dx_media_memcpy_persist(struct dx_media *m, void *dst, const void *src, size_t len)
{
	UDAX_BUG_ON(m->readonly);
	if (m->cpu_persist && len >= NT_THRESHOLD) {
		nt_copy(dst, src, 0, len, false);
		cpu_drain();
	} else if (m->crash || m->cpu_persist) {
		memcpy(dst, src, len);
		dx_media_persist(m, dst, len);
	} else {
		m->memcpy_fn(dst, src, len, 0);
	}
}

void dx_media_memset_persist(struct dx_media *m, void *dst, int c, size_t len)
{
	UDAX_BUG_ON(m->readonly);
	if (m->cpu_persist && len >= NT_THRESHOLD) {
		nt_copy(dst, NULL, c, len, true);
		cpu_drain();
	} else if (m->crash || m->cpu_persist) {
		memset(dst, c, len);
		dx_media_persist(m, dst, len);
	} else {
		m->memset_fn(dst, c, len, 0);
	}
}
