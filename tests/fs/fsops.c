/* SPDX-License-Identifier: MIT */
/*
 * fsops - POSIX behaviour of a mounted udaxfs, with exact errno checks.
 *
 *   fsops DIR            run every test in a fresh subdirectory of DIR
 *   fsops DIR NAME...    run only the named tests
 *   fsops -l             list the tests
 *
 * DIR must be on a udaxfs mount made with allow_other; run as root (the
 * permission tests switch to uid/gid 65534 in a child process).  Each test
 * counts its checks; any failed check makes the exit status 1.  The ENOSPC
 * test ("enospc") fills the whole file system, so it is not in the default
 * set: run it alone on a small device.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../harness.h"

#define NOBODY 65534

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

/* expr must not return -1 (OK() nests: OK(close(OK(open(...))))) */
#define OK(expr) (errno = 0, CHECK_SYS(expr))
/* expr must return -1 with errno == err */
#define ERR(expr, err) do { \
	long r_; \
	int e_; \
	errno = 0; \
	r_ = (long)(expr); \
	e_ = errno; \
	CHECK(r_ == -1 && e_ == (err), "%s: expected %s, got %ld (%s)", #expr, ename(err), r_, \
	      r_ == -1 ? ename(e_) : "no error"); \
} while (0)

static char *path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* a path in a small ring of static buffers: several may be live at once */
static char *path(const char *fmt, ...)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *b = bufs[next++ & 7];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, PATH_MAX, fmt, ap);
	va_end(ap);
	return b;
}

static void fill_pattern(char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (char)((i * 31 + seed * 7 + (i >> 12)) & 0xff);
}

static int write_file(const char *p, const void *buf, size_t len, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static ssize_t read_file(const char *p, void *buf, size_t len)
{
	int fd = open(p, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len);
	close(fd);
	return n;
}

/* Run fn in a child as uid/gid @id (no supplementary groups); true if it passed. */
static bool as_user(uid_t id, void (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int ws;

	if (pid == 0) {
		t_failures = 0;
		if (setgroups(0, NULL) || setresgid(id, id, id) || setresuid(id, id, id)) {
			perror("fsops: switching user");
			_exit(2);
		}
		fn(arg);
		_exit(t_failures ? T_FAIL : T_PASS);
	}
	if (pid < 0 || waitpid(pid, &ws, 0) != pid)
		return false;
	return WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
}

/* ------------------------------------------------------------------ */

static void test_basic(const char *d)
{
	char buf[8192], back[8192];
	struct stat st;
	int fd;

	fill_pattern(buf, sizeof(buf), 1);
	fd = OK(open(path("%s/f", d), O_RDWR | O_CREAT | O_EXCL, 0640));
	CHECK(OK(pwrite(fd, buf, sizeof(buf), 0)) == sizeof(buf));
	CHECK(OK(pread(fd, back, sizeof(back), 0)) == sizeof(back));
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	OK(fstat(fd, &st));
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0640);
	CHECK(st.st_size == sizeof(buf));
	CHECK(st.st_nlink == 1);
	CHECK(st.st_uid == getuid() && st.st_gid == getgid());
	/* a read past the end returns 0; a partial read stops at the end */
	CHECK(OK(pread(fd, back, 10, 100000)) == 0);
	CHECK(OK(pread(fd, back, sizeof(back), 8000)) == 192);
	/* a write past the end leaves a hole that reads as zeros */
	CHECK(OK(pwrite(fd, "x", 1, 100000)) == 1);
	CHECK(OK(pread(fd, back, 100, 50000)) == 100);
	CHECK(back[0] == 0 && back[99] == 0);
	OK(fsync(fd));
	OK(fdatasync(fd));
	OK(close(fd));

	ERR(open(path("%s/f", d), O_RDWR | O_CREAT | O_EXCL, 0640), EEXIST);
	ERR(open(path("%s/nonexistent", d), O_RDONLY), ENOENT);
	ERR(stat(path("%s/nonexistent", d), &st), ENOENT);
	ERR(unlink(path("%s/nonexistent", d)), ENOENT);
	ERR(open(path("%s/no/such", d), O_RDONLY | O_CREAT, 0644), ENOENT);

	/* O_TRUNC, O_APPEND */
	fd = OK(open(path("%s/f", d), O_RDWR | O_TRUNC));
	OK(fstat(fd, &st));
	CHECK(st.st_size == 0);
	OK(close(fd));
	fd = OK(open(path("%s/f", d), O_WRONLY | O_APPEND));
	CHECK(OK(write(fd, "abc", 3)) == 3);
	CHECK(OK(write(fd, "def", 3)) == 3);
	OK(close(fd));
	CHECK(read_file(path("%s/f", d), back, sizeof(back)) == 6);
	CHECK(memcmp(back, "abcdef", 6) == 0);

	/* unlink while open: the data stays reachable through the descriptor */
	fd = OK(open(path("%s/f", d), O_RDWR));
	OK(unlink(path("%s/f", d)));
	ERR(stat(path("%s/f", d), &st), ENOENT);
	CHECK(OK(pread(fd, back, 6, 0)) == 6);
	CHECK(memcmp(back, "abcdef", 6) == 0);
	CHECK(OK(pwrite(fd, "XY", 2, 0)) == 2);
	OK(fstat(fd, &st));
	CHECK(st.st_nlink == 0);
	OK(close(fd));
}

static void test_names(const char *d)
{
	char name[300];
	struct stat st;
	int fd;

	memset(name, 'n', sizeof(name));
	name[255] = '\0';	/* 255 bytes: the longest name allowed */
	fd = OK(open(path("%s/%s", d, name), O_CREAT | O_WRONLY, 0644));
	if (fd >= 0)
		close(fd);
	OK(stat(path("%s/%s", d, name), &st));
	name[255] = 'n';
	name[256] = '\0';	/* 256 bytes: too long */
	ERR(open(path("%s/%s", d, name), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	ERR(mkdir(path("%s/%s", d, name), 0755), ENAMETOOLONG);
	ERR(stat(path("%s/%s", d, name), &st), ENAMETOOLONG);
	ERR(symlink("x", path("%s/%s", d, name)), ENAMETOOLONG);
	ERR(mknod(path("%s/%s", d, name), S_IFIFO | 0644, 0), ENAMETOOLONG);

	/* names with every odd byte but '/' and NUL */
	OK(close(OK(open(path("%s/sp ace\ttab\x01\xff", d), O_CREAT | O_WRONLY, 0644))));
	OK(stat(path("%s/sp ace\ttab\x01\xff", d), &st));
	/* . and .. resolve as directories */
	OK(stat(path("%s/.", d), &st));
	CHECK(S_ISDIR(st.st_mode));
	OK(stat(path("%s/..", d), &st));
	CHECK(S_ISDIR(st.st_mode));
}

static void test_dirs(const char *d)
{
	struct stat st, st2;
	int fd;

	OK(mkdir(path("%s/a", d), 0750));
	OK(stat(path("%s/a", d), &st));
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750);
	CHECK(st.st_nlink == 2);
	OK(stat(d, &st2));
	OK(mkdir(path("%s/a/b", d), 0755));
	OK(stat(path("%s/a", d), &st));
	CHECK(st.st_nlink == 3);
	ERR(mkdir(path("%s/a", d), 0755), EEXIST);
	ERR(rmdir(path("%s/a", d)), ENOTEMPTY);
	ERR(rmdir(path("%s/nonexistent", d)), ENOENT);
	OK(close(OK(open(path("%s/a/file", d), O_CREAT | O_WRONLY, 0644))));
	ERR(rmdir(path("%s/a/file", d)), ENOTDIR);
	ERR(mkdir(path("%s/a/file/x", d), 0755), ENOTDIR);
	ERR(open(path("%s/a/file/x", d), O_RDONLY), ENOTDIR);
	ERR(open(path("%s/a/file", d), O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(open(path("%s/a", d), O_WRONLY), EISDIR);
	ERR(open(path("%s/a", d), O_RDWR), EISDIR);
	ERR(unlink(path("%s/a", d)), EISDIR);
	ERR(rmdir(path("%s/a/.", d)), EINVAL);
	ERR(rename(path("%s/a", d), path("%s/a/b/c", d)), EINVAL);
	ERR(link(path("%s/a", d), path("%s/alink", d)), EPERM);
	OK(unlink(path("%s/a/file", d)));
	OK(rmdir(path("%s/a/b", d)));
	OK(stat(path("%s/a", d), &st));
	CHECK(st.st_nlink == 2);
	OK(rmdir(path("%s/a", d)));
	ERR(stat(path("%s/a", d), &st), ENOENT);

	/* fsync on a directory */
	fd = OK(open(d, O_RDONLY | O_DIRECTORY));
	OK(fsync(fd));
	OK(close(fd));

	/* setgid directory: new entries inherit the group, subdirs the bit */
	OK(mkdir(path("%s/sg", d), 0755));
	OK(chown(path("%s/sg", d), 0, 100));
	OK(chmod(path("%s/sg", d), 02775));
	OK(close(OK(open(path("%s/sg/f", d), O_CREAT | O_WRONLY, 0644))));
	OK(stat(path("%s/sg/f", d), &st));
	CHECK(st.st_gid == 100);
	OK(mkdir(path("%s/sg/sub", d), 0755));
	OK(stat(path("%s/sg/sub", d), &st));
	CHECK(st.st_gid == 100 && (st.st_mode & S_ISGID));
}

static void test_readdir(const char *d)
{
	enum { N = 600 };
	static bool seen[N];
	struct dirent *de;
	int dots = 0, n = 0, bad = 0;
	DIR *dir;
	int i;

	OK(mkdir(path("%s/rd", d), 0755));
	for (i = 0; i < N; i++) {
		if (i % 3 == 0)
			OK(mkdir(path("%s/rd/entry-%04d", d, i), 0755));
		else
			OK(close(OK(open(path("%s/rd/entry-%04d", d, i), O_CREAT | O_WRONLY, 0644))));
	}
	dir = opendir(path("%s/rd", d));
	CHECK(dir != NULL);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
			dots++;
			CHECK(de->d_type == DT_DIR);
			continue;
		}
		if (sscanf(de->d_name, "entry-%d", &i) != 1 || i < 0 || i >= N || seen[i]) {
			bad++;
			continue;
		}
		seen[i] = true;
		n++;
		if (de->d_type != (i % 3 == 0 ? DT_DIR : DT_REG))
			bad++;
	}
	closedir(dir);
	CHECK(dots == 2);
	CHECK(n == N);
	CHECK(bad == 0);

	/* entries removed while a listing is under way: the rest still come, once */
	memset(seen, 0, sizeof(seen));
	dir = opendir(path("%s/rd", d));
	n = 0;
	bad = 0;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (sscanf(de->d_name, "entry-%d", &i) != 1 || seen[i])
			bad++;
		else
			seen[i] = true;
		if (n++ == 10) {
			for (i = 0; i < N; i += 2)
				if (!seen[i] && i % 3)
					unlink(path("%s/rd/entry-%04d", d, i));
		}
	}
	closedir(dir);
	CHECK(bad == 0);
	for (i = 1; i < N; i += 2)
		CHECK(i % 3 == 0 || seen[i]);	/* never removed, so always listed */
}

static void test_links(const char *d)
{
	char buf[PATH_MAX + 1], target[4096];
	struct stat st, st2;
	ssize_t n;

	OK(write_file(path("%s/orig", d), "hello", 5, 0644));
	OK(link(path("%s/orig", d), path("%s/hard", d)));
	OK(stat(path("%s/orig", d), &st));
	OK(stat(path("%s/hard", d), &st2));
	CHECK(st.st_ino == st2.st_ino && st.st_nlink == 2);
	ERR(link(path("%s/orig", d), path("%s/hard", d)), EEXIST);
	ERR(link(path("%s/nonexistent", d), path("%s/h2", d)), ENOENT);
	OK(unlink(path("%s/orig", d)));
	OK(stat(path("%s/hard", d), &st2));
	CHECK(st2.st_nlink == 1);
	CHECK(read_file(path("%s/hard", d), buf, sizeof(buf)) == 5);

	OK(symlink("hard", path("%s/sym", d)));
	OK(lstat(path("%s/sym", d), &st));
	CHECK(S_ISLNK(st.st_mode) && st.st_size == 4);
	n = OK(readlink(path("%s/sym", d), buf, sizeof(buf)));
	CHECK(n == 4 && memcmp(buf, "hard", 4) == 0);
	CHECK(read_file(path("%s/sym", d), buf, sizeof(buf)) == 5);	/* followed */
	ERR(symlink("x", path("%s/sym", d)), EEXIST);
	ERR(readlink(path("%s/hard", d), buf, sizeof(buf)), EINVAL);
	OK(symlink("nowhere", path("%s/dangling", d)));
	ERR(stat(path("%s/dangling", d), &st), ENOENT);
	OK(lstat(path("%s/dangling", d), &st));
	/* the longest target the kernel passes */
	memset(target, 't', sizeof(target));
	target[4095] = '\0';
	OK(symlink(target, path("%s/longsym", d)));
	n = OK(readlink(path("%s/longsym", d), buf, sizeof(buf)));
	CHECK(n == 4095 && memcmp(buf, target, 4095) == 0);
	ERR(symlink("a", path("%s/nonexistent/x", d)), ENOENT);
	OK(unlink(path("%s/sym", d)));
	OK(stat(path("%s/hard", d), &st2));	/* unlinking a symlink keeps its target */
}

static void test_mknod(const char *d)
{
	struct stat st;

	OK(mkfifo(path("%s/fifo", d), 0640));
	OK(stat(path("%s/fifo", d), &st));
	CHECK(S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0640);
	OK(mknod(path("%s/sock", d), S_IFSOCK | 0600, 0));
	OK(stat(path("%s/sock", d), &st));
	CHECK(S_ISSOCK(st.st_mode));
	OK(mknod(path("%s/chr", d), S_IFCHR | 0600, makedev(1, 3)));
	OK(stat(path("%s/chr", d), &st));
	CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
	OK(mknod(path("%s/blk", d), S_IFBLK | 0600, makedev(259, 70000)));
	OK(stat(path("%s/blk", d), &st));
	CHECK(S_ISBLK(st.st_mode) && major(st.st_rdev) == 259 && minor(st.st_rdev) == 70000);
	OK(mknod(path("%s/reg", d), S_IFREG | 0600, 0));
	OK(stat(path("%s/reg", d), &st));
	CHECK(S_ISREG(st.st_mode) && st.st_size == 0);
	ERR(mknod(path("%s/fifo", d), S_IFIFO | 0600, 0), EEXIST);

	/* a fifo on the mount works as a fifo (the kernel serves it) */
	if (fork() == 0) {
		int fd = open(path("%s/fifo", d), O_WRONLY);

		_exit(fd >= 0 && write(fd, "ping", 4) == 4 ? 0 : 1);
	} else {
		char b[8] = "";
		int fd = OK(open(path("%s/fifo", d), O_RDONLY));
		int ws = 0;

		CHECK(read(fd, b, sizeof(b)) == 4 && memcmp(b, "ping", 4) == 0);
		close(fd);
		wait(&ws);
		CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
}

static void test_rename(const char *d)
{
	struct stat a, b, st;
	char buf[16];

	OK(write_file(path("%s/a", d), "AAAA", 4, 0644));
	OK(write_file(path("%s/b", d), "BB", 2, 0644));
	OK(stat(path("%s/a", d), &a));
	OK(stat(path("%s/b", d), &b));

	ERR(renameat2(AT_FDCWD, path("%s/a", d), AT_FDCWD, path("%s/b", d), RENAME_NOREPLACE),
	    EEXIST);
	OK(renameat2(AT_FDCWD, path("%s/a", d), AT_FDCWD, path("%s/b", d), RENAME_EXCHANGE));
	OK(stat(path("%s/a", d), &st));
	CHECK(st.st_ino == b.st_ino);
	OK(stat(path("%s/b", d), &st));
	CHECK(st.st_ino == a.st_ino);
	CHECK(read_file(path("%s/a", d), buf, sizeof(buf)) == 2);
	CHECK(read_file(path("%s/b", d), buf, sizeof(buf)) == 4);
	ERR(renameat2(AT_FDCWD, path("%s/a", d), AT_FDCWD, path("%s/none", d), RENAME_EXCHANGE),
	    ENOENT);
	ERR(renameat2(AT_FDCWD, path("%s/a", d), AT_FDCWD, path("%s/b", d),
		      RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
	OK(renameat2(AT_FDCWD, path("%s/a", d), AT_FDCWD, path("%s/c", d), RENAME_NOREPLACE));
	ERR(stat(path("%s/a", d), &st), ENOENT);

	/* plain rename replaces the target; the old inode goes away */
	OK(rename(path("%s/c", d), path("%s/b", d)));
	OK(stat(path("%s/b", d), &st));
	CHECK(st.st_ino == b.st_ino && st.st_size == 2);
	ERR(rename(path("%s/none", d), path("%s/x", d)), ENOENT);

	/* directories */
	OK(mkdir(path("%s/d1", d), 0755));
	OK(mkdir(path("%s/d2", d), 0755));
	OK(mkdir(path("%s/d3", d), 0755));
	OK(write_file(path("%s/d2/f", d), "x", 1, 0644));
	ERR(rename(path("%s/d1", d), path("%s/d2", d)), ENOTEMPTY);
	ERR(rename(path("%s/b", d), path("%s/d1", d)), EISDIR);
	ERR(rename(path("%s/d1", d), path("%s/b", d)), ENOTDIR);
	OK(rename(path("%s/d1", d), path("%s/d3", d)));	/* over an empty dir */
	ERR(stat(path("%s/d1", d), &st), ENOENT);
	/* move across directories: ".." follows, link counts move */
	OK(rename(path("%s/d3", d), path("%s/d2/moved", d)));
	OK(stat(path("%s/d2", d), &st));
	CHECK(st.st_nlink == 3);
	OK(stat(path("%s/d2/moved/..", d), &st));
	OK(stat(path("%s/d2", d), &b));
	CHECK(st.st_ino == b.st_ino);
	/* exchange a file and a directory */
	OK(renameat2(AT_FDCWD, path("%s/b", d), AT_FDCWD, path("%s/d2", d), RENAME_EXCHANGE));
	OK(stat(path("%s/b/moved", d), &st));
	OK(stat(path("%s/d2", d), &st));
	CHECK(S_ISREG(st.st_mode));
	/* rename to itself is a no-op */
	OK(rename(path("%s/d2", d), path("%s/d2", d)));
	/* RENAME_WHITEOUT is refused */
	ERR(renameat2(AT_FDCWD, path("%s/d2", d), AT_FDCWD, path("%s/w", d), RENAME_WHITEOUT),
	    EINVAL);
}

static void test_setattr(const char *d)
{
	struct timespec ts[2];
	char buf[20000];
	struct stat st;
	int fd, i;

	OK(write_file(path("%s/f", d), "0123456789", 10, 0644));
	OK(chmod(path("%s/f", d), 04751));
	OK(stat(path("%s/f", d), &st));
	CHECK((st.st_mode & 07777) == 04751);
	OK(chown(path("%s/f", d), 1234, 5678));
	OK(stat(path("%s/f", d), &st));
	CHECK(st.st_uid == 1234 && st.st_gid == 5678);
	CHECK((st.st_mode & S_ISUID) == 0);	/* chown clears set-user-ID */

	ts[0].tv_sec = 1000000000;
	ts[0].tv_nsec = 123456789;
	ts[1].tv_sec = 1500000000;
	ts[1].tv_nsec = 987654321;
	OK(utimensat(AT_FDCWD, path("%s/f", d), ts, 0));
	OK(stat(path("%s/f", d), &st));
	CHECK(st.st_atim.tv_sec == ts[0].tv_sec && st.st_atim.tv_nsec == ts[0].tv_nsec);
	CHECK(st.st_mtim.tv_sec == ts[1].tv_sec && st.st_mtim.tv_nsec == ts[1].tv_nsec);
	OK(utimensat(AT_FDCWD, path("%s/f", d), NULL, 0));
	OK(stat(path("%s/f", d), &st));
	CHECK(st.st_mtim.tv_sec > 1500000000);

	/* truncate: shrink, then grow: the regrown part reads as zeros */
	OK(truncate(path("%s/f", d), 4));
	OK(stat(path("%s/f", d), &st));
	CHECK(st.st_size == 4);
	OK(truncate(path("%s/f", d), 20000));
	CHECK(read_file(path("%s/f", d), buf, sizeof(buf)) == 20000);
	CHECK(memcmp(buf, "0123", 4) == 0);
	for (i = 4; i < 20000 && buf[i] == 0; i++)
		;
	CHECK(i == 20000);
	fd = OK(open(path("%s/f", d), O_RDWR));
	OK(ftruncate(fd, 4097));
	OK(fstat(fd, &st));
	CHECK(st.st_size == 4097);
	ERR(ftruncate(fd, -1), EINVAL);
	OK(close(fd));
	/* mtime and ctime move on write */
	OK(stat(path("%s/f", d), &st));
	{
		struct stat st2;

		usleep(20000);
		OK(write_file(path("%s/f", d), "z", 1, 0644));
		OK(stat(path("%s/f", d), &st2));
		CHECK(st2.st_mtim.tv_sec > st.st_mtim.tv_sec ||
		      (st2.st_mtim.tv_sec == st.st_mtim.tv_sec &&
		       st2.st_mtim.tv_nsec > st.st_mtim.tv_nsec));
	}
}

static bool is_zero(const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void test_fallocate(const char *d)
{
	enum { MB = 1024 * 1024, BS = 4096 };
	static char buf[4 * 1024 * 1024], back[4 * 1024 * 1024];
	struct stat st;
	int fd;

	fd = OK(open(path("%s/fa", d), O_RDWR | O_CREAT, 0644));
	/* mode 0: allocate and extend */
	OK(fallocate(fd, 0, 0, 2 * MB));
	OK(fstat(fd, &st));
	CHECK(st.st_size == 2 * MB);
	CHECK(st.st_blocks >= 2 * MB / 512);
	CHECK(OK(pread(fd, back, 2 * MB, 0)) == 2 * MB);
	CHECK(is_zero(back, 2 * MB));
	/* KEEP_SIZE: blocks but no size change */
	OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 2 * MB, MB));
	OK(fstat(fd, &st));
	CHECK(st.st_size == 2 * MB);
	CHECK(st.st_blocks >= 3 * MB / 512);
	OK(ftruncate(fd, 0));

	/* PUNCH_HOLE */
	fill_pattern(buf, 4 * MB, 3);
	CHECK(OK(pwrite(fd, buf, 4 * MB, 0)) == 4 * MB);
	OK(fsync(fd));	/* -o writeback_cache: allocated once written back */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MB, MB));
	OK(fstat(fd, &st));
	CHECK(st.st_size == 4 * MB);
	/* absolute: with the write-back cache the kernel's st_blocks from
	 * before the punch may still be the one from before the write */
	CHECK(st.st_blocks > 0 && st.st_blocks <= 3 * MB / 512);
	CHECK(OK(pread(fd, back, 4 * MB, 0)) == 4 * MB);
	CHECK(memcmp(back, buf, MB) == 0);
	CHECK(is_zero(back + MB, MB));
	CHECK(memcmp(back + 2 * MB, buf + 2 * MB, 2 * MB) == 0);
	/* an unaligned punch zeroes partial blocks */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3 * MB + 100, 5000));
	CHECK(OK(pread(fd, back, 4 * MB, 0)) == 4 * MB);
	CHECK(memcmp(back + 3 * MB, buf + 3 * MB, 100) == 0);
	CHECK(is_zero(back + 3 * MB + 100, 5000));
	CHECK(memcmp(back + 3 * MB + 5100, buf + 3 * MB + 5100, MB - 5100) == 0);
	ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, MB), EOPNOTSUPP);	/* needs KEEP_SIZE */

	/* ZERO_RANGE, also past the end (extends) */
	CHECK(OK(pwrite(fd, buf, 4 * MB, 0)) == 4 * MB);
	OK(fallocate(fd, FALLOC_FL_ZERO_RANGE, 10, 3 * BS));
	CHECK(OK(pread(fd, back, 4 * MB, 0)) == 4 * MB);
	CHECK(memcmp(back, buf, 10) == 0 && is_zero(back + 10, 3 * BS));
	CHECK(memcmp(back + 10 + 3 * BS, buf + 10 + 3 * BS, 4 * MB - 10 - 3 * BS) == 0);
	OK(fallocate(fd, FALLOC_FL_ZERO_RANGE, 4 * MB, BS));
	OK(fstat(fd, &st));
	CHECK(st.st_size == 4 * MB + BS);

	/*
	 * COLLAPSE_RANGE and INSERT_RANGE: the core has them, but the FUSE
	 * kernel module refuses every mode but KEEP_SIZE, PUNCH_HOLE and
	 * ZERO_RANGE itself (fs/fuse/file.c); checked when they get through.
	 */
	OK(ftruncate(fd, 0));
	CHECK(OK(pwrite(fd, buf, 4 * MB, 0)) == 4 * MB);
	if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, MB, MB) && errno == EOPNOTSUPP) {
		printf("note: this kernel's FUSE does not pass COLLAPSE_RANGE/INSERT_RANGE\n");
	} else {
		OK(fstat(fd, &st));
		CHECK(st.st_size == 3 * MB);
		CHECK(OK(pread(fd, back, 3 * MB, 0)) == 3 * MB);
		CHECK(memcmp(back, buf, MB) == 0);
		CHECK(memcmp(back + MB, buf + 2 * MB, 2 * MB) == 0);
		ERR(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 100, BS), EINVAL);
		OK(fallocate(fd, FALLOC_FL_INSERT_RANGE, BS, 2 * BS));
		OK(fstat(fd, &st));
		CHECK(st.st_size == 3 * MB + 2 * BS);
		CHECK(OK(pread(fd, back, 3 * MB + 2 * BS, 0)) == 3 * MB + 2 * BS);
		CHECK(memcmp(back, buf, BS) == 0);
		CHECK(is_zero(back + BS, 2 * BS));
		CHECK(memcmp(back + 3 * BS, buf + BS, MB - BS) == 0);
		ERR(fallocate(fd, FALLOC_FL_INSERT_RANGE, 3 * MB + 2 * BS, BS), EINVAL);
	}

	/* modes the file system does not have */
	ERR(fallocate(fd, FALLOC_FL_KEEP_SIZE | 0x100, 0, BS), EOPNOTSUPP);
	OK(close(fd));
}

/* Mounted with -o writeback_cache (tests/fs/writeback.sh says so)? */
static bool writeback_cache(void)
{
	const char *o = getenv("UDAX_TEST_MOUNT_OPTS");

	return o && strstr(o, "writeback_cache");
}

static void test_seek(const char *d)
{
	enum { MB = 1024 * 1024, BS = 4096 };
	char buf[BS];
	off_t r;
	int fd;

	memset(buf, 'd', sizeof(buf));
	fd = OK(open(path("%s/sparse", d), O_RDWR | O_CREAT, 0644));
	CHECK(OK(pwrite(fd, buf, BS, 0)) == BS);
	CHECK(OK(pwrite(fd, buf, BS, MB)) == BS);
	OK(ftruncate(fd, 2 * MB));
	if (writeback_cache()) {
		/* the daemon cannot see the kernel's dirty pages: the kernel
		 * answers itself, with the whole file as data */
		CHECK(lseek(fd, 0, SEEK_DATA) == 0);
		CHECK(lseek(fd, 0, SEEK_HOLE) == 2 * MB);
		CHECK(lseek(fd, BS, SEEK_DATA) == BS);
		ERR(lseek(fd, 2 * MB, SEEK_DATA), ENXIO);
		/* the same file as below for after_remount */
		OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, BS));
		OK(close(fd));
		return;
	}
	CHECK(lseek(fd, 0, SEEK_DATA) == 0);
	r = lseek(fd, 0, SEEK_HOLE);
	CHECK(r == BS);
	r = lseek(fd, BS, SEEK_DATA);
	CHECK(r == MB);
	r = lseek(fd, MB + 10, SEEK_DATA);
	CHECK(r == MB + 10);
	r = lseek(fd, MB, SEEK_HOLE);
	CHECK(r == MB + BS);
	ERR(lseek(fd, MB + BS, SEEK_DATA), ENXIO);	/* only a hole up to EOF */
	ERR(lseek(fd, 2 * MB, SEEK_DATA), ENXIO);
	ERR(lseek(fd, 2 * MB, SEEK_HOLE), ENXIO);
	CHECK(lseek(fd, 2 * MB - 1, SEEK_HOLE) == 2 * MB - 1);
	/* a punched hole is a hole */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, BS));
	CHECK(lseek(fd, 0, SEEK_DATA) == MB);
	OK(close(fd));
}

static void test_copy_range(const char *d)
{
	enum { LEN = 3 * 1024 * 1024 + 1234 };
	static char buf[LEN], back[LEN];
	loff_t in = 0, out = 0;
	ssize_t n, total = 0;
	int fi, fo;

	fill_pattern(buf, LEN, 5);
	OK(write_file(path("%s/src", d), buf, LEN, 0644));
	fi = OK(open(path("%s/src", d), O_RDONLY));
	fo = OK(open(path("%s/dst", d), O_WRONLY | O_CREAT, 0644));
	while (total < LEN) {
		n = copy_file_range(fi, &in, fo, &out, LEN - total, 0);
		if (n <= 0) {
			CHECK(n > 0);
			break;
		}
		total += n;
	}
	CHECK(total == LEN);
	close(fi);
	close(fo);
	CHECK(read_file(path("%s/dst", d), back, LEN) == LEN);
	CHECK(memcmp(buf, back, LEN) == 0);
	/* into the middle of an existing file, unaligned */
	fi = OK(open(path("%s/src", d), O_RDONLY));
	fo = OK(open(path("%s/dst", d), O_WRONLY));
	in = 7;
	out = 4099;
	n = OK(copy_file_range(fi, &in, fo, &out, 10000, 0));
	CHECK(n == 10000);
	close(fi);
	close(fo);
	CHECK(read_file(path("%s/dst", d), back, LEN) == LEN);
	CHECK(memcmp(back, buf, 4099) == 0);
	CHECK(memcmp(back + 4099, buf + 7, 10000) == 0);
	CHECK(memcmp(back + 14099, buf + 14099, LEN - 14099) == 0);
}

static void test_xattr(const char *d)
{
	char buf[256], list[1024];
	static char big[65536];
	ssize_t n;
	char *p;
	bool seen_a = false, seen_t = false;

	OK(write_file(path("%s/x", d), "", 0, 0644));
	const char *f = path("%s/x", d);

	ERR(getxattr(f, "user.a", buf, sizeof(buf)), ENODATA);
	OK(setxattr(f, "user.a", "value-a", 7, 0));
	CHECK(getxattr(f, "user.a", NULL, 0) == 7);	/* size query */
	n = OK(getxattr(f, "user.a", buf, sizeof(buf)));
	CHECK(n == 7 && memcmp(buf, "value-a", 7) == 0);
	ERR(getxattr(f, "user.a", buf, 3), ERANGE);
	ERR(setxattr(f, "user.a", "v", 1, XATTR_CREATE), EEXIST);
	ERR(setxattr(f, "user.b", "v", 1, XATTR_REPLACE), ENODATA);
	OK(setxattr(f, "user.a", "longer value", 12, XATTR_REPLACE));
	n = OK(getxattr(f, "user.a", buf, sizeof(buf)));
	CHECK(n == 12 && memcmp(buf, "longer value", 12) == 0);
	OK(setxattr(f, "user.empty", "", 0, 0));
	CHECK(getxattr(f, "user.empty", buf, sizeof(buf)) == 0);
	OK(setxattr(f, "trusted.t", "T", 1, 0));	/* root may */
	OK(setxattr(f, "security.s", "S", 1, 0));
	n = OK(listxattr(f, list, sizeof(list)));
	CHECK(listxattr(f, NULL, 0) == n);
	for (p = list; p < list + n; p += strlen(p) + 1) {
		seen_a |= !strcmp(p, "user.a");
		seen_t |= !strcmp(p, "trusted.t");
	}
	CHECK(seen_a && seen_t);
	ERR(listxattr(f, list, 3), ERANGE);
	/* a value as large as one block holds, and one larger than any block */
	fill_pattern(big, sizeof(big), 9);
	OK(setxattr(f, "user.big", big, 3000, 0));
	{
		static char bigback[65536];

		CHECK(getxattr(f, "user.big", bigback, sizeof(bigback)) == 3000);
		CHECK(memcmp(big, bigback, 3000) == 0);
		if (setxattr(f, "user.huge", big, sizeof(big), 0)) {
			CHECK(errno == ENOSPC || errno == E2BIG);	/* as ext4 */
		} else {
			CHECK(getxattr(f, "user.huge", bigback, sizeof(bigback)) == sizeof(big));
			CHECK(memcmp(big, bigback, sizeof(big)) == 0);
		}
	}
	OK(removexattr(f, "user.a"));
	ERR(getxattr(f, "user.a", buf, sizeof(buf)), ENODATA);
	ERR(removexattr(f, "user.a"), ENODATA);
	ERR(setxattr(f, "bogus.x", "v", 1, 0), EOPNOTSUPP);
	/* on a directory and through a symlink (lsetxattr on user.* refused) */
	OK(setxattr(d, "user.dir", "D", 1, 0));
	CHECK(getxattr(d, "user.dir", buf, sizeof(buf)) == 1);
	OK(symlink("x", path("%s/xl", d)));
	ERR(lsetxattr(path("%s/xl", d), "user.l", "v", 1, 0), EPERM);
	/* survives rename */
	OK(rename(f, path("%s/x2", d)));
	CHECK(getxattr(path("%s/x2", d), "trusted.t", buf, sizeof(buf)) == 1);
}

/* ---- as another user ---- */

struct perm_arg {
	const char *d;
};

static void perm_child(void *arg)
{
	const char *d = ((struct perm_arg *)arg)->d;
	char buf[16], list[256];
	struct stat st;
	ssize_t n;
	char *p;
	int fd;

	/* private file: no read, no write */
	ERR(open(path("%s/private", d), O_RDONLY), EACCES);
	ERR(open(path("%s/public", d), O_WRONLY), EACCES);
	fd = OK(open(path("%s/public", d), O_RDONLY));
	CHECK(read(fd, buf, sizeof(buf)) == 6);
	close(fd);
	/* root's 0755 directory: no new names, no removal */
	ERR(open(path("%s/new", d), O_CREAT | O_WRONLY, 0644), EACCES);
	ERR(mkdir(path("%s/newdir", d), 0755), EACCES);
	ERR(unlink(path("%s/public", d)), EACCES);
	ERR(rename(path("%s/public", d), path("%s/p2", d)), EACCES);
	ERR(symlink("x", path("%s/sl", d)), EACCES);
	ERR(mkfifo(path("%s/ff", d), 0644), EACCES);
	/* a 0700 directory cannot be searched or listed */
	ERR(stat(path("%s/closed/inside", d), &st), EACCES);
	ERR(open(path("%s/closed", d), O_RDONLY | O_DIRECTORY), EACCES);
	/* someone else's file: no chmod, chown, utimes, truncate */
	ERR(chmod(path("%s/public", d), 0777), EPERM);
	ERR(chown(path("%s/public", d), NOBODY, NOBODY), EPERM);
	ERR(truncate(path("%s/public", d), 0), EACCES);
	ERR(utimensat(AT_FDCWD, path("%s/public", d), NULL, 0), EACCES);
	/* xattrs: trusted.* invisible, user.* needs write access */
	ERR(getxattr(path("%s/public", d), "trusted.t", buf, sizeof(buf)), ENODATA);
	ERR(setxattr(path("%s/public", d), "trusted.t", "x", 1, 0), EPERM);
	ERR(setxattr(path("%s/public", d), "user.u", "x", 1, 0), EACCES);
	n = OK(listxattr(path("%s/public", d), list, sizeof(list)));
	for (p = list; p < list + n; p += strlen(p) + 1)
		CHECK(strncmp(p, "trusted.", 8) != 0);
	CHECK(listxattr(path("%s/public", d), NULL, 0) == n);
	/* the shared 1777 directory: create, own, but not remove root's file */
	fd = OK(open(path("%s/shared/mine", d), O_CREAT | O_WRONLY, 0600));
	close(fd);
	OK(stat(path("%s/shared/mine", d), &st));
	CHECK(st.st_uid == NOBODY && st.st_gid == NOBODY);
	ERR(unlink(path("%s/shared/roots", d)), EPERM);
	ERR(rename(path("%s/shared/roots", d), path("%s/shared/x", d)), EPERM);
	OK(setxattr(path("%s/shared/mine", d), "user.u", "x", 1, 0));
	ERR(setxattr(path("%s/shared/mine", d), "security.s", "x", 1, 0), EPERM);
	OK(chmod(path("%s/shared/mine", d), 0644));
	ERR(chown(path("%s/shared/mine", d), 0, 0), EPERM);
	/* writing a file with the set-user-ID bit clears it */
	OK(chmod(path("%s/shared/mine", d), 04755));
	fd = OK(open(path("%s/shared/mine", d), O_WRONLY));
	CHECK(write(fd, "x", 1) == 1);
	close(fd);
	OK(stat(path("%s/shared/mine", d), &st));
	CHECK(!(st.st_mode & S_ISUID));
	/* so does truncating it, and set-group-ID goes with group execute */
	OK(chmod(path("%s/shared/mine", d), 06775));
	OK(truncate(path("%s/shared/mine", d), 0));
	OK(stat(path("%s/shared/mine", d), &st));
	CHECK(!(st.st_mode & (S_ISUID | S_ISGID)));
	OK(unlink(path("%s/shared/mine", d)));
}

static void test_perm(const char *d)
{
	struct perm_arg a = { d };

	OK(chmod(d, 0755));
	OK(write_file(path("%s/private", d), "secret", 6, 0600));
	OK(write_file(path("%s/public", d), "public", 6, 0644));
	OK(setxattr(path("%s/public", d), "trusted.t", "T", 1, 0));
	OK(setxattr(path("%s/public", d), "user.visible", "V", 1, 0));
	OK(mkdir(path("%s/closed", d), 0700));
	OK(write_file(path("%s/closed/inside", d), "x", 1, 0644));
	OK(mkdir(path("%s/shared", d), 01777));
	OK(chmod(path("%s/shared", d), 01777));
	OK(write_file(path("%s/shared/roots", d), "r", 1, 0666));
	CHECK(as_user(NOBODY, perm_child, &a));

	/* root (CAP_FSETID) keeps set-ID bits on write; a file capability
	 * goes on any write, as the VFS does it */
	{
		/* struct vfs_cap_data, revision 2: cap_net_bind_service permitted */
		uint32_t cap[5] = { 0x02000000, 1u << 10, 0, 0, 0 };
		struct stat st;
		int fd;

		OK(write_file(path("%s/suid", d), "x", 1, 0755));
		OK(chmod(path("%s/suid", d), 06755));
		OK(setxattr(path("%s/suid", d), "security.capability", cap, sizeof(cap), 0));
		CHECK(getxattr(path("%s/suid", d), "security.capability", NULL, 0) == sizeof(cap));
		fd = OK(open(path("%s/suid", d), O_WRONLY));
		CHECK(write(fd, "y", 1) == 1);
		close(fd);
		OK(stat(path("%s/suid", d), &st));
		CHECK((st.st_mode & 07777) == 06755);
		ERR(getxattr(path("%s/suid", d), "security.capability", NULL, 0), ENODATA);
	}
}

static void test_statfs(const char *d)
{
	enum { MB = 1024 * 1024 };
	static char buf[8 * MB];
	struct statvfs a, b;
	int i;

	/*
	 * Blocks of files unlinked by earlier tests come back when their
	 * FORGET arrives, which may be after later requests (over io_uring,
	 * FORGETs still travel on /dev/fuse): start from a settled count.
	 */
	OK(statvfs(d, &a));
	for (i = 0; i < 50; i++) {
		usleep(20 * 1000);
		OK(statvfs(d, &b));
		if (b.f_bfree == a.f_bfree && b.f_ffree == a.f_ffree)
			break;
		a = b;
	}
	CHECK(a.f_bsize == 4096);
	CHECK(a.f_blocks > 0 && a.f_bfree <= a.f_blocks && a.f_bavail <= a.f_bfree);
	CHECK(a.f_files > 0 && a.f_ffree <= a.f_files);
	CHECK(a.f_namemax == 255);
	OK(write_file(path("%s/space", d), buf, sizeof(buf), 0644));
	OK(statvfs(d, &b));
	CHECK(b.f_bfree + 8 * MB / 4096 <= a.f_bfree);
	CHECK(b.f_ffree < a.f_ffree);
	OK(unlink(path("%s/space", d)));
	/* given back (bar metadata) once the kernel's release and FORGET arrive */
	for (i = 0; i < 100; i++) {
		OK(statvfs(d, &b));
		if (b.f_bfree + 16 >= a.f_bfree)
			break;
		usleep(20000);
	}
	CHECK(b.f_bfree + 16 >= a.f_bfree);
	OK(syncfs(OK(open(d, O_RDONLY))));
}

static void test_mmap(const char *d)
{
	enum { LEN = 64 * 1024 };
	char back[LEN];
	char *p;
	int fd;

	fd = OK(open(path("%s/m", d), O_RDWR | O_CREAT, 0644));
	OK(ftruncate(fd, LEN));
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	if (p == MAP_FAILED)
		return;
	memset(p, 'm', LEN);
	memcpy(p + 5000, "mapped", 6);
	OK(msync(p, LEN, MS_SYNC));
	munmap(p, LEN);
	close(fd);
	CHECK(read_file(path("%s/m", d), back, LEN) == LEN);
	CHECK(back[0] == 'm' && memcmp(back + 5000, "mapped", 6) == 0);
}

static void test_direct(const char *d)
{
	enum { LEN = 1024 * 1024 };
	char *buf, *back;
	int fd;

	if (posix_memalign((void **)&buf, 4096, LEN) || posix_memalign((void **)&back, 4096, LEN))
		return;
	fill_pattern(buf, LEN, 11);
	fd = OK(open(path("%s/direct", d), O_RDWR | O_CREAT | O_DIRECT, 0644));
	CHECK(OK(pwrite(fd, buf, LEN, 0)) == LEN);
	CHECK(OK(pread(fd, back, LEN, 0)) == LEN);
	CHECK(memcmp(buf, back, LEN) == 0);
	close(fd);
	/* a buffered reader sees what the direct writer wrote */
	CHECK(read_file(path("%s/direct", d), back, LEN) == LEN);
	CHECK(memcmp(buf, back, LEN) == 0);
	free(buf);
	free(back);
}

/* Fill the file system: ENOSPC, then free space, then it works again. */
static void test_enospc(const char *d)
{
	enum { CH = 1024 * 1024 };
	static char buf[CH];
	struct statvfs sv;
	long long total = 0;
	int fd, i, e = 0;
	ssize_t n;

	memset(buf, 'f', sizeof(buf));
	fd = OK(open(path("%s/fill", d), O_WRONLY | O_CREAT, 0644));
	/*
	 * Without the write-back cache write() itself fails; with it
	 * (-o writeback_cache) the error reaches us at fsync, as on NFS.
	 */
	for (;;) {
		n = write(fd, buf, CH);
		if (n < 0 || fsync(fd) < 0) {
			e = errno;
			break;
		}
		total += n;
		if (n < CH)
			continue;	/* the next one fails */
	}
	CHECK(e == ENOSPC);
	CHECK(total > 0);
	OK(statvfs(d, &sv));
	CHECK(sv.f_bavail < 16);
	ERR(fallocate(fd, 0, total, CH), ENOSPC);
	/* names need space too, eventually */
	for (i = 0; i < 100000; i++) {
		int f2 = open(path("%s/n%d", d, i), O_CREAT | O_WRONLY, 0644);

		if (f2 < 0) {
			e = errno;
			break;
		}
		if (write(f2, buf, 4096) < 0) {
			e = errno;
			close(f2);
			break;
		}
		if (close(f2) < 0) {	/* write-back cache: the error shows here */
			e = errno;
			break;
		}
	}
	CHECK(e == ENOSPC);
	close(fd);
	OK(unlink(path("%s/fill", d)));
	/* the blocks come back once the kernel's release and FORGET arrive */
	for (i = 0; i < 100; i++) {
		OK(statvfs(d, &sv));
		if (sv.f_bavail * sv.f_bsize >= (unsigned long long)total / 2)
			break;
		usleep(20000);
	}
	CHECK(sv.f_bavail * sv.f_bsize >= (unsigned long long)total / 2);
	OK(write_file(path("%s/after", d), buf, CH, 0644));
}

/* After a remount: what the default tests left behind is all there. */
static void test_after_remount(const char *d)
{
	char top[PATH_MAX], buf[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(top, sizeof(top), "%s/..", d);
	OK(stat(path("%s/links/hard", top), &st));
	CHECK(S_ISREG(st.st_mode) && st.st_size == 5 && st.st_nlink == 1);
	n = OK(readlink(path("%s/links/dangling", top), buf, sizeof(buf)));
	CHECK(n == 7 && !memcmp(buf, "nowhere", 7));
	n = OK(readlink(path("%s/links/longsym", top), buf, sizeof(buf)));
	CHECK(n == 4095);
	OK(stat(path("%s/mknod/fifo", top), &st));
	CHECK(S_ISFIFO(st.st_mode));
	OK(stat(path("%s/mknod/blk", top), &st));
	CHECK(S_ISBLK(st.st_mode) && minor(st.st_rdev) == 70000);
	OK(stat(path("%s/setattr/f", top), &st));
	CHECK(st.st_uid == 1234 && st.st_gid == 5678);
	n = OK(getxattr(path("%s/xattr/x2", top), "trusted.t", buf, sizeof(buf)));
	CHECK(n == 1 && buf[0] == 'T');
	CHECK(getxattr(path("%s/xattr/x2", top), "user.big", NULL, 0) == 3000);
	OK(stat(path("%s/rename/b/moved", top), &st));
	CHECK(S_ISDIR(st.st_mode));
	OK(stat(path("%s/copy_range/dst", top), &st));
	CHECK(st.st_size == 3 * 1024 * 1024 + 1234);
	OK(stat(path("%s/seek/sparse", top), &st));
	fd = OK(open(path("%s/seek/sparse", top), O_RDONLY));
	CHECK(lseek(fd, 0, SEEK_DATA) == (writeback_cache() ? 0 : 1024 * 1024));
	CHECK(pread(fd, buf, 1, 0) == 1 && buf[0] == 0);
	CHECK(pread(fd, buf, 1, 1024 * 1024) == 1 && buf[0] == 'd');
	close(fd);
}

/* ------------------------------------------------------------------ */

struct test {
	const char *name;
	void (*fn)(const char *dir);
	bool by_default;
};

static const struct test tests[] = {
	{ "basic", test_basic, true },
	{ "names", test_names, true },
	{ "dirs", test_dirs, true },
	{ "readdir", test_readdir, true },
	{ "links", test_links, true },
	{ "mknod", test_mknod, true },
	{ "rename", test_rename, true },
	{ "setattr", test_setattr, true },
	{ "fallocate", test_fallocate, true },
	{ "seek", test_seek, true },
	{ "copy_range", test_copy_range, true },
	{ "xattr", test_xattr, true },
	{ "perm", test_perm, true },
	{ "statfs", test_statfs, true },
	{ "mmap", test_mmap, true },
	{ "direct", test_direct, true },
	{ "enospc", test_enospc, false },
	{ "after_remount", test_after_remount, false },
};

static int run(const char *top, const struct test *t)
{
	int before = t_failures;
	int c0 = t_checks;
	const char *d = path("%s/%s", top, t->name);

	if (mkdir(d, 0755) && errno != EEXIST) {
		t_fail("%s: mkdir %s: %s", t->name, d, strerror(errno));
		return 1;
	}
	t->fn(strdup(d));
	printf("%s %s (%d checks)\n", t_failures == before ? "ok  " : "FAIL", t->name,
	       t_checks - c0);
	fflush(stdout);
	return t_failures != before;
}

/*
 * wbprobe: does a write() return while the daemon is stopped (SIGSTOP)?
 * With the kernel's write-back cache it lands in the page cache and
 * returns; without it, it is a request that waits for the daemon.  The
 * first, whole page is written while the daemon runs (the kernel then
 * knows the file has no security.capability); the probe writes into a
 * fresh page past EOF, which needs nothing from the daemon when cached.
 * Exit: 0 returned within 3 s, 1 it waited, 2 error.
 */
static int wb_fd;
static volatile int wb_done;

static void *wb_writer(void *arg)
{
	const char *mark = arg;

	if (write(wb_fd, mark, strlen(mark)) == (ssize_t)strlen(mark))
		__atomic_store_n(&wb_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Wait (up to 5 s) until every thread of @pid is in state T (stopped). */
static int wait_stopped(pid_t pid)
{
	char path[64];

	for (int i = 0; i < 500; i++) {
		DIR *d;
		struct dirent *e;
		bool all = true;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		d = opendir(path);
		if (!d)
			return -1;
		while (all && (e = readdir(d))) {
			char st[512], *p;
			FILE *f;

			if (e->d_name[0] == '.')
				continue;
			snprintf(st, sizeof(st), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
			f = fopen(st, "re");
			if (!f)
				continue;	/* the thread exited */
			if (!fgets(st, sizeof(st), f) || !(p = strrchr(st, ')')) || p[1] != ' ' ||
			    (p[2] != 'T' && p[2] != 't'))
				all = false;
			fclose(f);
		}
		closedir(d);
		if (all)
			return 0;
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	fprintf(stderr, "wbprobe: daemon %d did not stop\n", (int)pid);
	return -1;
}

static int wbprobe(const char *file, pid_t daemon, const char *mark)
{
	static char page[4096];
	pthread_t th;
	int i, rc = 1;

	memset(page, 'a', sizeof(page));
	wb_fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (wb_fd < 0 || write(wb_fd, page, sizeof(page)) != (ssize_t)sizeof(page)) {
		perror(file);
		return 2;
	}
	if (kill(daemon, SIGSTOP) < 0) {
		perror("kill -STOP");
		return 2;
	}
	/* kill() returns before the daemon's threads have stopped: a thread
	 * still running on the other CPU could serve the write and make the
	 * control pass for the wrong reason.  Wait until every thread shows
	 * state T (stopped). */
	if (wait_stopped(daemon) < 0) {
		kill(daemon, SIGCONT);
		return 2;
	}
	if (pthread_create(&th, NULL, wb_writer, (void *)mark)) {
		kill(daemon, SIGCONT);
		return 2;
	}
	for (i = 0; i < 300; i++) {
		if (__atomic_load_n(&wb_done, __ATOMIC_ACQUIRE)) {
			rc = 0;
			break;
		}
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	kill(daemon, SIGCONT);
	pthread_join(th, NULL);
	if (close(wb_fd) < 0) {		/* write-back at close: must succeed */
		perror("close");
		return 2;
	}
	printf("wbprobe: the write %s\n", rc ? "waited for the daemon" : "returned");
	return rc;
}

int main(int argc, char **argv)
{
	size_t i;
	int bad = 0, a;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "wbprobe"))
		return wbprobe(argv[2], (pid_t)atoi(argv[3]), argv[4]);
	if (argc == 2 && !strcmp(argv[1], "-l")) {
		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	if (argc < 2) {
		fprintf(stderr, "Usage: fsops DIR [TEST...] | fsops -l | "
			"fsops wbprobe FILE DAEMON_PID MARK\n");
		return 2;
	}
	umask(022);
	if (argc == 2) {
		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			if (tests[i].by_default)
				bad += run(argv[1], &tests[i]);
	} else {
		for (a = 2; a < argc; a++) {
			for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
				if (!strcmp(argv[a], tests[i].name))
					break;
			if (i == sizeof(tests) / sizeof(tests[0])) {
				fprintf(stderr, "fsops: no test '%s'\n", argv[a]);
				return 2;
			}
			bad += run(argv[1], &tests[i]);
		}
	}
	t_exit("fsops");
	return bad ? T_FAIL : T_PASS;
}
