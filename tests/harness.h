/* SPDX-License-Identifier: MIT */
/*
 * harness.h - the one set of assertions and exit codes every C test uses.
 *
 * Exit codes are automake's: T_PASS (0), T_FAIL (1), T_SKIP (77, with the
 * reason printed), T_ERROR (99: the test could not set itself up, e.g. no
 * room in /dev/shm; automake reports it apart from a failure).
 *
 * One semantics for the checks:
 *   CHECK(cond[, fmt, ...])  counts; a false @cond prints "FAIL file:line:
 *                            cond[: message]" and what the core last said
 *                            (dx_errmsg(), when the test links the core
 *                            and it says anything), then the test goes on,
 *                            so that one run shows every failed check.
 *   CHECK_EQ(a, b)           the same, printing both values.
 *   REQUIRE(cond[, fmt, ...]) the same print, then the test stops (T_FAIL):
 *                            for a check the rest of the test builds on.
 *   REQUIRE_OK(call)         REQUIRE for a call that returns 0 (or more) or
 *                            -errno: prints strerror(-ret) and dx_errmsg().
 *   CHECK_SYS(expr)          CHECK for a system call that returns -1 and
 *                            sets errno: prints strerror(errno); evaluates
 *                            to @expr's value so calls nest.
 *   t_fail(fmt, ...)         a failed check said in words, for a test that
 *                            judges with if/else (counts, goes on).
 * A message's arguments are evaluated only when the check failed.
 * t_exit(name) runs t_cleanup, prints "NAME: N checks, M failed" and returns
 * the exit code.
 *
 * The counters are shared by every file of a test program (weak
 * definitions: one instance per program, no harness.c to link) and are
 * atomic, so threads may check.  A test that must undo something before it
 * exits (an unmount) sets t_cleanup; t_skip(), t_die(), REQUIRE*() and
 * t_exit() call it.
 */
#ifndef UDAX_TESTS_HARNESS_H
#define UDAX_TESTS_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77
#define T_ERROR 99

/* What the core last said about an error; absent when the test does not link it. */
const char *dx_errmsg(void);
#pragma weak dx_errmsg

/* One instance per program (see above).  Written through the atomics below. */
int t_checks __attribute__((weak));
int t_failures __attribute__((weak));
/* Run once by t_skip(), t_die(), a failed REQUIRE or t_exit() before the test exits. */
void (*t_cleanup)(void) __attribute__((weak));

static inline void t_run_cleanup(void)
{
	void (*fn)(void) = t_cleanup;

	t_cleanup = NULL;	/* once, even when the cleanup itself dies */
	if (fn)
		fn();
}

/*
 * What the core last said, or NULL: the test does not link the core, or
 * nothing was said in this thread (dx_errmsg() then reads "unknown
 * error").  It may be older than the failed check: it is printed as a
 * lead, labelled as the core's.
 */
static inline const char *t_errmsg(void)
{
	const char *m = dx_errmsg ? dx_errmsg() : NULL;

	return m && *m && strcmp(m, "unknown error") ? m : NULL;
}

/* Count a check; return @ok.  */
static inline bool t_count_(bool ok)
{
	__atomic_add_fetch(&t_checks, 1, __ATOMIC_RELAXED);
	return ok;
}

/*
 * A check failed: count and print it, stop when @fatal.  @fmt starts with
 * one space (see CHECK): " " alone means no message.  @err > 0 is an errno
 * to print.
 */
static inline void t_fail_(bool fatal, const char *file, int line, const char *expr, int err,
			   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static inline void t_fail_(bool fatal, const char *file, int line, const char *expr, int err,
			   const char *fmt, ...)
{
	const char *em = t_errmsg();
	va_list ap;

	__atomic_add_fetch(&t_failures, 1, __ATOMIC_RELAXED);
	fflush(stdout);		/* after the progress lines it belongs to */
	flockfile(stderr);
	fprintf(stderr, "FAIL %s:%d: %s", file, line, expr);
	if (fmt[1]) {
		fputc(':', stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	if (err > 0)
		fprintf(stderr, " (%s)", strerror(err));
	if (em)
		fprintf(stderr, " [core: %s]", em);
	fputc('\n', stderr);
	funlockfile(stderr);
	if (fatal) {
		t_run_cleanup();
		exit(T_FAIL);
	}
}

/*
 * The message is optional: "" __VA_ARGS__ would be an empty format string
 * (a warning), so it is glued to one space, which t_fail_() skips.  Its
 * arguments are evaluated only when the check failed (they may describe
 * what is only valid then).
 */
#define T_CHECK_(fatal, cond, ...) do { \
	if (!t_count_(!!(cond))) \
		t_fail_(fatal, __FILE__, __LINE__, #cond, 0, " " __VA_ARGS__); \
} while (0)
#define CHECK(cond, ...) T_CHECK_(false, cond, __VA_ARGS__)
#define REQUIRE(cond, ...) T_CHECK_(true, cond, __VA_ARGS__)
#define CHECK_EQ(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (!t_count_(a_ == b_)) \
		t_fail_(false, __FILE__, __LINE__, #a " == " #b, 0, " %lld != %lld", a_, b_); \
} while (0)
#define REQUIRE_OK(call) do { \
	long r_ = (long)(call); \
	if (!t_count_(r_ >= 0)) \
		t_fail_(true, __FILE__, __LINE__, #call, (int)-r_, " "); \
} while (0)
#define CHECK_SYS(expr) t_check_sys_((long)(expr), __FILE__, __LINE__, #expr)

static inline long t_check_sys_(long r, const char *file, int line, const char *expr)
{
	int e = errno;

	if (!t_count_(r != -1))
		t_fail_(false, file, line, expr, e, " ");
	errno = e;
	return r;
}

/*
 * A failed check whose message says it all (what was compared and what was
 * found), for a test that judges with if/else: counted like a CHECK.
 */
static inline void t_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void t_fail(const char *fmt, ...)
{
	va_list ap;

	t_count_(false);
	__atomic_add_fetch(&t_failures, 1, __ATOMIC_RELAXED);
	fflush(stdout);		/* after the progress lines it belongs to */
	flockfile(stderr);
	fputs("FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/* Undo what the test set up (t_cleanup), print the summary; return the exit code. */
static inline int t_exit(const char *name)
{
	int f;

	t_run_cleanup();	/* an unmount may still fail a check: count after it */
	f = __atomic_load_n(&t_failures, __ATOMIC_RELAXED);

	printf("%s: %d checks, %d failed\n", name, __atomic_load_n(&t_checks, __ATOMIC_RELAXED), f);
	return f ? T_FAIL : T_PASS;
}

static inline void t_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Exit T_SKIP saying why (on stdout, where automake's log shows it). */
static inline void t_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("SKIP: ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	fflush(stdout);
	t_run_cleanup();
	exit(T_SKIP);
}

static inline void t_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Exit T_FAIL saying why: for a failure that is not a check (set-up, a child). */
static inline void t_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	t_run_cleanup();
	exit(T_FAIL);
}

/* Skip unless /dev/fuse can be opened (no FUSE in this container). */
static inline void t_require_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		t_skip("cannot open /dev/fuse: %s", strerror(errno));
	close(fd);
}

/* Skip unless the effective user is root (the test needs a capability). */
static inline void t_require_root(void)
{
	if (geteuid() != 0)
		t_skip("needs root (euid %u)", (unsigned int)geteuid());
}

/* Skip unless @path is a character device (a real device-DAX node). */
static inline void t_require_device(const char *path)
{
	struct stat st;

	if (!path || !*path)
		t_skip("no device named");
	if (stat(path, &st) < 0)
		t_skip("%s: %s", path, strerror(errno));
	if (!S_ISCHR(st.st_mode))
		t_skip("%s is not a character device", path);
}

/*
 * Skip when io_uring_queue_init() (or any set-up call returning -errno)
 * failed with @err: a kernel or seccomp policy that refuses io_uring is
 * not a failure of the file system.  Used as
 *   t_require_uring(io_uring_queue_init(8, &ring, 0));
 */
static inline void t_require_uring(int err)
{
	if (err < 0)
		t_skip("io_uring refused: %s", strerror(-err));
}

#endif /* UDAX_TESTS_HARNESS_H */
