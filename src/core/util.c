/* SPDX-License-Identifier: MIT */
/*
 * util.c - error messages, the always-on invariant check, size parsing,
 * CRC32C and clocks.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

static __thread char dx_errbuf[512];
static dx_bug_handler_t dx_bug_handler;

void dx_set_bug_handler(dx_bug_handler_t h)
{
	__atomic_store_n(&dx_bug_handler, h, __ATOMIC_RELEASE);
}

void dx_bug(const char *file, int line, const char *func, const char *cond)
{
	dx_bug_handler_t h = __atomic_load_n(&dx_bug_handler, __ATOMIC_ACQUIRE);

	if (h)
		h(file, line, cond);
	fprintf(stderr, "udaxfs: BUG at %s:%d in %s(): %s\n", file, line, func, cond);
	fflush(stderr);
	abort();
}

/*
 * An argument may be dx_errmsg() itself ("root inode: %s", dx_errmsg()):
 * format into a private buffer, then copy, so the text read is never the
 * text being written.
 */
void dx_seterr(const char *fmt, ...)
{
	char msg[sizeof(dx_errbuf)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(dx_errbuf, msg, sizeof(msg));
}

const char *dx_errmsg(void)
{
	return dx_errbuf[0] ? dx_errbuf : "unknown error";
}

void dx_clearerr(void)
{
	dx_errbuf[0] = '\0';
}

int dx_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case 'p': case 'P': shift = 50; end++; break;
	default: return -EINVAL;
	}
	if (shift && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	mult <<= shift;
	if (v && mult > UINT64_MAX / v)
		return -ERANGE;
	*out = (uint64_t)v * mult;
	return 0;
}

char *dx_fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double d = (double)v;
	unsigned int i = 0;

	while (d >= 1024.0 && i < UDAX_ARRAY_SIZE(unit) - 1) {
		d /= 1024.0;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, unit[i]);
	return buf;
}

/*
 * CRC32C, reflected polynomial 0x82F63B78.  Two implementations give the
 * same answer: the SSE4.2 crc32 instruction (8 bytes per instruction) where
 * the CPU has it, chosen once at run time, and a table-driven one (slicing
 * by 8) everywhere else.  Both are exported for the known-answer test.
 */
static uint32_t crc_tab[8][256];
static uint32_t (*crc_impl)(uint32_t crc, const void *data, size_t len);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_tab_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^
					crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

static pthread_once_t crc_tab_once = PTHREAD_ONCE_INIT;

uint32_t dx_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	pthread_once(&crc_tab_once, crc_tab_init);
	crc = ~crc;
	while (len >= 8) {
		uint64_t w;

		/* the table walk takes the low byte first: little-endian only,
		 * as format.h asserts */
		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^
		      crc_tab[5][(w >> 16) & 0xff] ^ crc_tab[4][(w >> 24) & 0xff] ^
		      crc_tab[3][(w >> 32) & 0xff] ^ crc_tab[2][(w >> 40) & 0xff] ^
		      crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t c = (uint32_t)~crc;

	/* byte steps up to an 8-byte boundary, then whole words */
	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

bool dx_crc32c_hw_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}

uint32_t dx_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	return crc32c_sse42(crc, data, len);
}
#else
bool dx_crc32c_hw_available(void)
{
	return false;
}

uint32_t dx_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	return dx_crc32c_sw(crc, data, len);
}
#endif

static void crc_init(void)
{
	const char *force = getenv("UDAX_CRC32C_SW");

	/* UDAX_CRC32C_SW=1 keeps the table code (to compare, or to rule the
	 * instruction out when chasing a checksum mismatch) */
	if (dx_crc32c_hw_available() && !(force && *force && strcmp(force, "0") != 0))
		crc_impl = dx_crc32c_hw;
	else
		crc_impl = dx_crc32c_sw;
}

const char *dx_crc32c_impl(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_impl == dx_crc32c_sw ? "table" : "sse4.2";
}

uint32_t dx_crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return crc_impl(crc, data, len);
}

uint64_t dx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void dx_now_ts(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}
