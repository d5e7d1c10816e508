/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers shared by every part of udaxfs.
 *
 * Conventions used across the tree (see also README "Hacking"):
 *  - functions return 0 (or a count) on success and -errno on failure;
 *    errno is never the channel.
 *  - a human-readable reason for the last failure in this thread is kept by
 *    dx_seterr() and read with dx_errmsg(); tools print it.
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
#define dx_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define dx_min(a, b) ((a) < (b) ? (a) : (b))
#define dx_max(a, b) ((a) > (b) ? (a) : (b))
#define UDAX_ALIGN_UP(x, a)   ((((x) + (a) - 1) / (a)) * (a))
#define UDAX_ALIGN_DOWN(x, a) (((x) / (a)) * (a))
#define UDAX_IS_POW2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define dx_likely(x)   __builtin_expect(!!(x), 1)
#define dx_unlikely(x) __builtin_expect(!!(x), 0)

#define UDAX_KIB (1024ULL)
#define UDAX_MIB (1024ULL * 1024)
#define UDAX_GIB (1024ULL * 1024 * 1024)

/* Always-on invariant check: prints file:line and the condition, aborts. */
#define UDAX_BUG_ON(cond) \
	do { \
		if (dx_unlikely(cond)) \
			dx_bug(__FILE__, __LINE__, __func__, #cond); \
	} while (0)
/* Debug-only check (compiled out unless --enable-debug). */
#ifdef UDAX_DEBUG
#define UDAX_DBG_ASSERT(cond) UDAX_BUG_ON(!(cond))
#else
#define UDAX_DBG_ASSERT(cond) ((void)0)
#endif

/*
 * dx_bug() - report a broken invariant (UDAX_BUG_ON) and abort: the
 * handler set by dx_set_bug_handler() runs first (it may longjmp away).
 * Context: any.  Return: never.
 */
__attribute__((noreturn)) void dx_bug(const char *file, int line,
					const char *func, const char *cond);
/*
 * Tests can replace the abort in dx_bug() with their own handler (e.g. a
 * longjmp) to prove that an invariant really fires.  NULL restores abort().
 */
typedef void (*dx_bug_handler_t)(const char *file, int line, const char *cond);
/*
 * dx_set_bug_handler() - run @h before dx_bug() aborts (NULL: none).
 * Context: any; process-wide.  Return: nothing.
 */
void dx_set_bug_handler(dx_bug_handler_t h);

/*
 * dx_seterr() - keep a human-readable reason for this thread's last
 * failure; an argument may be dx_errmsg() itself (it is formatted
 * before the buffer is overwritten).
 * Context: any; per thread.  Return: nothing.
 */
void dx_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * dx_errmsg() - this thread's last reason (dx_seterr()).
 * Context: any; per thread.  Return: the message, or "unknown error" when
 * none was set since the last dx_clearerr(); valid until the next
 * dx_seterr() in this thread.
 */
const char *dx_errmsg(void);
/*
 * dx_clearerr() - forget this thread's reason, so that a later
 * dx_errmsg() tells whether the next call set one.
 * Context: any; per thread.  Return: nothing.
 */
void dx_clearerr(void);

/*
 * dx_parse_size() - parse a size with an optional binary suffix (K, M,
 * G, T, P; "KiB" etc. accepted too) into *@out.
 * Context: any.  Return: 0, or -EINVAL (not a size) / -ERANGE (overflow).
 */
int dx_parse_size(const char *s, uint64_t *out);
/*
 * dx_fmt_size() - format @v bytes as "512 B" or "1.5 GiB" into @buf
 * (@len bytes, truncated to fit).
 * Context: any.  Return: @buf.
 */
char *dx_fmt_size(uint64_t v, char *buf, size_t len);

/*
 * CRC32C (Castagnoli).  crc starts at 0; feeding the result back in
 * continues the same checksum.  dx_crc32c() uses the SSE4.2 instruction
 * when the CPU has it (UDAX_CRC32C_SW=1 in the environment forces the table
 * code), the table code otherwise; dx_crc32c_impl() names the choice.
 * The two implementations are exported so a test can compare them;
 * dx_crc32c_hw() falls back to the table code where there is no
 * instruction (see dx_crc32c_hw_available()).
 */
/*
 * dx_crc32c() - continue the CRC32C @crc over @len bytes of @data, with
 * the implementation chosen at the first call.
 * Context: any.  Return: the new checksum.
 */
uint32_t dx_crc32c(uint32_t crc, const void *data, size_t len);
/* dx_crc32c_sw() - the same, always by the table.  Context: any.  Return: as dx_crc32c(). */
uint32_t dx_crc32c_sw(uint32_t crc, const void *data, size_t len);
/*
 * dx_crc32c_hw() - the same by the SSE4.2 instruction, by the table where
 * the CPU lacks it.  Context: any.  Return: as dx_crc32c().
 */
uint32_t dx_crc32c_hw(uint32_t crc, const void *data, size_t len);
/* dx_crc32c_hw_available() - Context: any.  Return: does this CPU have the instruction? */
bool dx_crc32c_hw_available(void);
/*
 * dx_crc32c_impl() - name the implementation dx_crc32c() uses.
 * Context: any.  Return: "sse4.2" or "table" (a static string).
 */
const char *dx_crc32c_impl(void);

/* dx_now_ns() - Context: any.  Return: CLOCK_MONOTONIC in nanoseconds. */
uint64_t dx_now_ns(void);
/* dx_now_ts() - the wall clock (CLOCK_REALTIME) into *@ts.  Context: any.  Return: nothing. */
void dx_now_ts(struct timespec *ts);

#endif /* UDAX_UTIL_H */
