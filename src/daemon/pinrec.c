/* SPDX-License-Identifier: MIT */
/*
 * pinrec.c - see pinrec.h.
 *
 * Lock: pr->lock protects the descriptor's appends and the live count; the
 * quarantine list is written once by pinrec_open() and read-only after.
 * It is a leaf lock (callers may hold the layout service lock).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pinrec.h"
#include "procscan.h"
#include "core/util.h"

#define MAGIC_LINE "udaxfs-pins 1"
#define MAX_FILE (16u << 20)	/* a record file never grows near this */

struct pinrec {
	pthread_mutex_t lock;
	int fd;				/* O_APPEND; pr->lock */
	char path[PATH_MAX];
	struct pinrec_range *q;		/* the quarantine, sorted, merged; const after open */
	size_t nq;
	uint64_t qbytes;
	uint64_t next_key;		/* pr->lock */
	uint64_t live;			/* pins recorded and not crossed out; pr->lock */
};

struct open_rec {
	uint64_t key;
	struct pinrec_range r;
};

void pinrec_path(char *buf, size_t size, const char *dir, const struct procscan_id *id)
{
	if (!dir)
		dir = PINREC_DIR;
	if (id->chr)
		snprintf(buf, size, "%s/chr-%u:%u.pins", dir, major(id->rdev), minor(id->rdev));
	else
		snprintf(buf, size, "%s/file-%ju-%ju.pins", dir, (uintmax_t)id->dev,
			 (uintmax_t)id->ino);
}

static int read_boot_id(char *buf, size_t size)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

uint64_t pinrec_start_time(pid_t pid)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields restart after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* field 3 (state) is the first after it; starttime is field 22 */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct pinrec_range *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int push(struct pinrec_range **v, size_t *n, size_t *cap, const struct pinrec_range *r)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct pinrec_range *nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = *r;
	return 0;
}

/* Parse @text (the old file) into the quarantine of @pr.  Return 0 or -errno. */
static int parse(struct pinrec *pr, char *text, const char *boot, bool *other_boot)
{
	struct open_rec *open_v = NULL;
	size_t nopen = 0, capopen = 0, cap = 0;
	unsigned int lineno = 0;
	int err = 0;
	char *save = NULL;
	const char *cur = "";

	*other_boot = false;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		cur = line;
		if (lineno == 1) {
			if (strcmp(line, MAGIC_LINE) != 0)
				goto bad;
			continue;
		}
		if (lineno == 2) {
			if (strncmp(line, "boot ", 5) != 0)
				goto bad;
			if (strcmp(line + 5, boot) != 0) {
				*other_boot = true;	/* written before a reboot: no pin survived it */
				goto out;
			}
			continue;
		}
		struct pinrec_range r = { 0 };
		unsigned long long key, off, len, start;
		int pid;
		if (line[0] == 'q' && sscanf(line, "q %llu %llu %d %llu", &off, &len, &pid, &start) == 4) {
			r = (struct pinrec_range){ off, len, pid, start };
			err = push(&pr->q, &pr->nq, &cap, &r);
		} else if (line[0] == '+' &&
			   sscanf(line, "+ %llu %llu %llu %d %llu", &key, &off, &len, &pid, &start) == 5) {
			if (nopen == capopen) {
				size_t nc = capopen ? capopen * 2 : 16;
				struct open_rec *nv = realloc(open_v, nc * sizeof(*nv));
				if (!nv) {
					err = -ENOMEM;
					goto out;
				}
				open_v = nv;
				capopen = nc;
			}
			open_v[nopen++] = (struct open_rec){ key, { off, len, pid, start } };
		} else if (line[0] == '-' && sscanf(line, "- %llu", &key) == 1) {
			/* cross out every range of that pin */
			for (size_t i = 0; i < nopen;)
				if (open_v[i].key == key)
					open_v[i] = open_v[--nopen];
				else
					i++;
		} else {
			goto bad;
		}
		if (err)
			goto out;
	}
	if (lineno < 2 && lineno)
		goto bad;
	for (size_t i = 0; i < nopen && !err; i++)
		err = push(&pr->q, &pr->nq, &cap, &open_v[i].r);
	goto out;
bad:
	dx_seterr("%s: line %u is not a pin record (\"%.40s\"); check that no client of an "
		    "earlier udaxfs still pins the device, then run udaxctl quarantine --release",
		    pr->path, lineno, cur);
	err = -EUCLEAN;
out:
	free(open_v);
	return err;
}

/* Sort and merge overlapping or touching ranges; count the bytes. */
static void merge(struct pinrec *pr)
{
	size_t w = 0;

	qsort(pr->q, pr->nq, sizeof(*pr->q), cmp_range);
	for (size_t i = 0; i < pr->nq; i++) {
		if (w && pr->q[i].off <= pr->q[w - 1].off + pr->q[w - 1].len) {
			uint64_t end = dx_max(pr->q[w - 1].off + pr->q[w - 1].len,
						pr->q[i].off + pr->q[i].len);
			pr->q[w - 1].len = end - pr->q[w - 1].off;
			continue;
		}
		pr->q[w++] = pr->q[i];
	}
	pr->nq = w;
	pr->qbytes = 0;
	for (size_t i = 0; i < pr->nq; i++)
		pr->qbytes += pr->q[i].len;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write the compacted file under a temporary name and rename it into place. */
static int rewrite(struct pinrec *pr, const char *boot)
{
	char tmp[PATH_MAX + 32], line[160];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", pr->path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int n = snprintf(line, sizeof(line), MAGIC_LINE "\nboot %s\n", boot);
	err = write_all(fd, line, (size_t)n);
	for (size_t i = 0; i < pr->nq && !err; i++) {
		n = snprintf(line, sizeof(line), "q %" PRIu64 " %" PRIu64 " %d %" PRIu64 "\n",
			     pr->q[i].off, pr->q[i].len, (int)pr->q[i].pid, pr->q[i].start);
		err = write_all(fd, line, (size_t)n);
	}
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, pr->path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int pinrec_open(struct pinrec **out, const char *dir, const struct procscan_id *id)
{
	struct pinrec *pr = calloc(1, sizeof(*pr));
	char boot[64], *text = NULL;
	bool other_boot = false;
	int err, fd;

	*out = NULL;
	if (!pr)
		return -ENOMEM;
	pthread_mutex_init(&pr->lock, NULL);
	pr->fd = -1;
	pr->next_key = 1;
	if (!dir)
		dir = PINREC_DIR;
	pinrec_path(pr->path, sizeof(pr->path), dir, id);
	err = read_boot_id(boot, sizeof(boot));
	if (err) {
		dx_seterr("/proc/sys/kernel/random/boot_id: %s", strerror(-err));
		goto fail;
	}
	/* a system without /run (a minimal guest): make it; the boot id still
	 * tells a record that survived a reboot */
	if (mkdir(dir, 0700) < 0 && errno == ENOENT) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", dir);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = 0;
			mkdir(parent, 0755);
		}
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		dx_seterr("%s: %s (the record of live pins lives there)", dir, strerror(errno));
		goto fail;
	}
	fd = open(pr->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_size > MAX_FILE || !(text = malloc((size_t)st.st_size + 1))) {
			close(fd);
			err = -EFBIG;
			dx_seterr("%s: cannot read it (%jd bytes)", pr->path, (intmax_t)st.st_size);
			goto fail;
		}
		size_t got = 0;
		while (got < (size_t)st.st_size) {
			ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(fd);
		text[got] = 0;
		err = parse(pr, text, boot, &other_boot);
		free(text);
		if (err)
			goto fail;
		if (other_boot) {
			free(pr->q);
			pr->q = NULL;
			pr->nq = 0;
		}
		merge(pr);
	} else if (errno != ENOENT) {
		err = -errno;
		dx_seterr("%s: %s", pr->path, strerror(errno));
		goto fail;
	}
	err = rewrite(pr, boot);
	if (err) {
		dx_seterr("%s: cannot write the record of live pins: %s", pr->path, strerror(-err));
		goto fail;
	}
	pr->fd = open(pr->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (pr->fd < 0) {
		err = -errno;
		dx_seterr("%s: %s", pr->path, strerror(errno));
		goto fail;
	}
	*out = pr;
	return 0;
fail:
	free(pr->q);
	pthread_mutex_destroy(&pr->lock);
	free(pr);
	return err;
}

size_t pinrec_quarantine(const struct pinrec *pr, const struct pinrec_range **r)
{
	*r = pr ? pr->q : NULL;
	return pr ? pr->nq : 0;
}

uint64_t pinrec_quarantined_bytes(const struct pinrec *pr)
{
	return pr ? pr->qbytes : 0;
}

int pinrec_add(struct pinrec *pr, pid_t pid, const struct pinrec_range *r, size_t n,
	       uint64_t *key)
{
	char *buf;
	size_t len = 0, cap = n * 96 + 1;
	uint64_t start = pinrec_start_time(pid);
	int err;

	*key = 0;
	if (!pr)
		return 0;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&pr->lock);
	uint64_t k = pr->next_key++;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "+ %" PRIu64 " %" PRIu64 " %" PRIu64
					" %d %" PRIu64 "\n", k, r[i].off, r[i].len, (int)pid, start);
	/* one write: an append of a few hundred bytes on tmpfs is not torn */
	err = write_all(pr->fd, buf, len);
	if (!err) {
		pr->live++;
		*key = k;
	}
	pthread_mutex_unlock(&pr->lock);
	free(buf);
	return err;
}

void pinrec_del(struct pinrec *pr, uint64_t key)
{
	char line[48];

	if (!pr || !key)
		return;
	int n = snprintf(line, sizeof(line), "- %" PRIu64 "\n", key);
	pthread_mutex_lock(&pr->lock);
	if (write_all(pr->fd, line, (size_t)n) == 0 && pr->live)
		pr->live--;
	pthread_mutex_unlock(&pr->lock);
}

void pinrec_close(struct pinrec **prp)
{
	struct pinrec *pr = prp ? *prp : NULL;

	if (!pr)
		return;
	*prp = NULL;
	if (pr->fd >= 0)
		close(pr->fd);
	if (!pr->live && !pr->nq)
		unlink(pr->path);
	free(pr->q);
	pthread_mutex_destroy(&pr->lock);
	free(pr);
}
