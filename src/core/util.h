/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers shared by every part of udaxfs.
 *
 * Conventions used across the tree (see also README "Hacking"):
 *  - functions return 0 (or a count) on success and -errno on failure;
 *    errno is never the channel.
 *  - a human-readable reason for the last failure in this thread is kept by
 *    udax_seterr() and read with udax_errmsg(); tools print it.
 *  - UDAX_BUG_ON() guards invariants that protect data.  It is ALWAYS on,
 *    release builds included: a broken invariant aborts the daemon rather
 *    than letting a busy block be reused.
 */
#ifndef UDAX_UTIL_H
#define UDAX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdarg.h>
#include <sys/types.h>

#define UDAX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define udax_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define udax_min(a, b) ((a) < (b) ? (a) : (b))
#define udax_max(a, b) ((a) > (b) ? (a) : (b))
#define UDAX_ALIGN_UP(x, a)   ((((x) + (a) - 1) / (a)) * (a))
#define UDAX_ALIGN_DOWN(x, a) (((x) / (a)) * (a))
#define UDAX_IS_POW2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define udax_likely(x)   __builtin_expect(!!(x), 1)
#define udax_unlikely(x) __builtin_expect(!!(x), 0)

#define UDAX_KIB (1024ULL)
#define UDAX_MIB (1024ULL * 1024)
#define UDAX_GIB (1024ULL * 1024 * 1024)

/* Always-on invariant check: prints file:line and the condition, aborts. */
#define UDAX_BUG_ON(cond) \
	do { \
		if (udax_unlikely(cond)) \
			udax_bug(__FILE__, __LINE__, __func__, #cond); \
	} while (0)
/* Debug-only check (compiled out unless --enable-debug). */
#ifdef UDAX_DEBUG
#define UDAX_DBG_ASSERT(cond) UDAX_BUG_ON(!(cond))
#else
#define UDAX_DBG_ASSERT(cond) ((void)0)
#endif

__attribute__((noreturn)) void udax_bug(const char *file, int line,
					const char *func, const char *cond);
/*
 * Tests can replace the abort in udax_bug() with their own handler (e.g. a
 * longjmp) to prove that an invariant really fires.  NULL restores abort().
 */
typedef void (*udax_bug_handler_t)(const char *file, int line, const char *cond);
void udax_set_bug_handler(udax_bug_handler_t h);

/* Per-thread error message. */
void udax_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *udax_errmsg(void);
void udax_clearerr(void);

/*
 * Parse a size with an optional binary suffix (K, M, G, T, P; "KiB" etc.
 * accepted too).  Return: 0, or -EINVAL (not a size) / -ERANGE (overflow).
 */
int udax_parse_size(const char *s, uint64_t *out);
/* Format a size as "1.5 GiB" into buf.  Returns buf. */
char *udax_fmt_size(uint64_t v, char *buf, size_t len);

/*
 * CRC32C (Castagnoli).  crc starts at 0; feeding the result back in
 * continues the same checksum.  udax_crc32c() uses the SSE4.2 instruction
 * when the CPU has it (UDAX_CRC32C_SW=1 in the environment forces the table
 * code), the table code otherwise; udax_crc32c_impl() names the choice.
 * The two implementations are exported so a test can compare them;
 * udax_crc32c_hw() falls back to the table code where there is no
 * instruction (see udax_crc32c_hw_available()).
 */
uint32_t udax_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t udax_crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t udax_crc32c_hw(uint32_t crc, const void *data, size_t len);
bool udax_crc32c_hw_available(void);
const char *udax_crc32c_impl(void);

/* Monotonic clock in nanoseconds. */
uint64_t udax_now_ns(void);
/* Wall clock as a timespec. */
void udax_now_ts(struct timespec *ts);

#endif /* UDAX_UTIL_H */
