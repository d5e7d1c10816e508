/* SPDX-License-Identifier: MIT */
/*
 * test_harness.c - the checks every C test relies on (tests/harness.h) do
 * what the header says: a failed CHECK is printed with its place and
 * expression and counted, and the test goes on; REQUIRE and REQUIRE_OK
 * stop with exit 1 after running t_cleanup; t_skip exits 77; a check's
 * message arguments are evaluated only when it failed; t_exit runs
 * t_cleanup (the direct-access tests unmount there) and its code follows
 * the failures.
 *
 * Each case runs in a child whose stderr and exit status the parent reads,
 * so a harness that swallowed a failure (exit 0, nothing printed) fails
 * here.  Negative control: a child whose checks all hold must exit 0 and
 * print no FAIL line, so the comparison can tell the two apart.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"

static int evaluated;

static int count_eval(void)
{
	return ++evaluated;
}

static void say_cleaned(void)
{
	fputs("cleaned up\n", stderr);
}

/* The child's bodies.  Each returns (or exits) with the code under test. */
static int body_pass(void)
{
	CHECK(1 + 1 == 2);
	CHECK(2 > 1, "arguments %d", count_eval());
	CHECK_EQ(3, 3);
	REQUIRE_OK(0);
	/* a message is evaluated only on failure */
	if (evaluated)
		t_die("a passing check evaluated its message");
	return t_exit("pass");
}

static int body_fail_goes_on(void)
{
	t_cleanup = say_cleaned;
	CHECK(1 == 2, "one is %d", 1);
	CHECK_EQ(4, 5);
	fputs("still running\n", stderr);
	return t_exit("fail");
}

static int body_require(void)
{
	t_cleanup = say_cleaned;
	REQUIRE(0 > 1);
	fputs("not reached\n", stderr);
	return T_PASS;
}

static int body_require_ok(void)
{
	REQUIRE_OK(-ENOENT);
	fputs("not reached\n", stderr);
	return T_PASS;
}

static int body_skip(void)
{
	t_skip("no such thing here");
}

struct run {
	int status;
	char err[4096];
};

static void run(int (*body)(void), struct run *r)
{
	int fds[2];
	pid_t pid;
	size_t n = 0;
	ssize_t k;
	int st;

	REQUIRE(pipe(fds) == 0);
	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		close(fds[1]);
		t_checks = 0;
		t_failures = 0;
		exit(body());
	}
	close(fds[1]);
	while (n < sizeof(r->err) - 1 && (k = read(fds[0], r->err + n, sizeof(r->err) - 1 - n)) > 0)
		n += (size_t)k;
	r->err[n] = '\0';
	close(fds[0]);
	REQUIRE(waitpid(pid, &st, 0) == pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void)
{
	struct run r;

	run(body_pass, &r);
	CHECK(r.status == T_PASS, "passing checks: exit %d", r.status);
	CHECK(!strstr(r.err, "FAIL"), "passing checks printed: %s", r.err);

	run(body_fail_goes_on, &r);
	CHECK(r.status == T_FAIL, "failed checks: exit %d", r.status);
	CHECK(strstr(r.err, "test_harness.c:") && strstr(r.err, "1 == 2: one is 1"),
	      "no place, expression and message: %s", r.err);
	CHECK(strstr(r.err, "4 == 5: 4 != 5"), "CHECK_EQ without its values: %s", r.err);
	CHECK(strstr(r.err, "still running"), "a failed CHECK stopped the test: %s", r.err);
	CHECK(strstr(r.err, "cleaned up"), "t_exit did not run t_cleanup: %s", r.err);

	run(body_require, &r);
	CHECK(r.status == T_FAIL, "REQUIRE: exit %d", r.status);
	CHECK(strstr(r.err, "0 > 1") && !strstr(r.err, "not reached"),
	      "REQUIRE did not stop, or said nothing: %s", r.err);
	CHECK(strstr(r.err, "cleaned up"), "REQUIRE did not run t_cleanup: %s", r.err);

	run(body_require_ok, &r);
	CHECK(r.status == T_FAIL, "REQUIRE_OK: exit %d", r.status);
	CHECK(strstr(r.err, strerror(ENOENT)) && !strstr(r.err, "not reached"),
	      "REQUIRE_OK did not stop, or did not name the error: %s", r.err);

	run(body_skip, &r);
	CHECK(r.status == T_SKIP, "t_skip: exit %d", r.status);

	return t_exit("test_harness");
}
