/* SPDX-License-Identifier: MIT */
/*
 * media_crash.c - the crash-emulation backend.
 *
 * The file system works on a private copy-on-write mapping of the image.
 * A second private mapping, the durable image, holds only what reached
 * "media": a flush marks cache lines pending (a dirty bitmap deduplicates,
 * a list keeps them in order), a drain copies the pending lines from the
 * working mapping into the durable image and counts a fence.  A simulated
 * power cut at fence n is the durable image right after the n-th drain.
 *
 * Cost: one bit per cache line of device (2 MiB per GiB) plus the pages
 * actually changed; a drain copies only its pending lines.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "media_int.h"
#include "util.h"

int dx_crash_init(struct dx_media *m)
{
	struct dx_crash *c;
	uint64_t lines = m->size / UDAX_CACHELINE;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->dirty = calloc((lines + 63) / 64, sizeof(uint64_t));
	c->cap = 1024;
	c->pending = malloc(c->cap * sizeof(*c->pending));
	if (!c->dirty || !c->pending) {
		ret = -ENOMEM;
		goto err;
	}
	c->durable = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, m->fd, 0);
	if (c->durable == MAP_FAILED) {
		ret = -errno;
		c->durable = NULL;
		dx_seterr("%s: crash emulation: cannot map the durable image: %s",
			    m->path, strerror(-ret));
		goto err;
	}
	m->crash = c;
	return 0;
err:
	free(c->dirty);
	free(c->pending);
	free(c);
	return ret;
}

void dx_crash_fini(struct dx_media *m)
{
	struct dx_crash *c = m->crash;

	if (!c)
		return;
	if (c->durable)
		munmap(c->durable, m->size);
	free(c->dirty);
	free(c->pending);
	free(c->trigger_path);
	pthread_mutex_destroy(&c->lock);
	free(c);
	m->crash = NULL;
}

void dx_crash_flush(struct dx_media *m, const void *addr, size_t len)
{
	struct dx_crash *c = m->crash;
	uint64_t off, first, last, l;

	if (!len)
		return;
	off = dx_media_off(m, addr);
	UDAX_BUG_ON(off >= m->size || len > m->size - off);
	first = off / UDAX_CACHELINE;
	last = (off + len - 1) / UDAX_CACHELINE;
	pthread_mutex_lock(&c->lock);
	if (c->stopped)
		goto out;
	for (l = first; l <= last; l++) {
		uint64_t bit = 1ULL << (l % 64);

		if (c->dirty[l / 64] & bit)
			continue;
		if (c->npending == c->cap) {
			size_t ncap = c->cap * 2;
			uint64_t *np = realloc(c->pending, ncap * sizeof(*np));

			/* out of memory in a test backend: no way to go on honestly */
			UDAX_BUG_ON(!np);
			c->pending = np;
			c->cap = ncap;
		}
		c->dirty[l / 64] |= bit;
		c->pending[c->npending++] = l;
	}
out:
	pthread_mutex_unlock(&c->lock);
}

/* Copy one line in aligned 8-byte words: an 8-byte store never tears. */
static void copy_line(char *dst, const char *src)
{
	const volatile uint64_t *s = (const volatile uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;
	unsigned int i;

	for (i = 0; i < UDAX_CACHELINE / 8; i++)
		d[i] = s[i];
}

/* Write the durable image to @path, keeping all-zero pages as holes. */
static int crash_save_locked(struct dx_media *m, const char *path)
{
	static const char zero[4096];
	struct dx_crash *c = m->crash;
	uint64_t off;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		dx_seterr("%s: %s", path, strerror(-ret));
		return ret;
	}
	if (ftruncate(fd, (off_t)m->size) < 0) {
		ret = -errno;
		goto out;
	}
	for (off = 0; off < m->size; off += 4096) {
		const char *p = c->durable + off;
		size_t done = 0;

		if (!memcmp(p, zero, 4096))
			continue;
		while (done < 4096) {
			ssize_t n = pwrite(fd, p + done, 4096 - done, (off_t)(off + done));

			if (n < 0) {
				if (errno == EINTR)
					continue;
				ret = -errno;
				goto out;
			}
			done += (size_t)n;
		}
	}
out:
	if (ret)
		dx_seterr("%s: cannot save the crash image: %s", path, strerror(-ret));
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}

void dx_crash_drain(struct dx_media *m)
{
	struct dx_crash *c = m->crash;
	size_t i;

	pthread_mutex_lock(&c->lock);
	c->fences++;
	if (c->stopped)
		goto out;
	for (i = 0; i < c->npending; i++) {
		uint64_t l = c->pending[i];

		copy_line(c->durable + l * UDAX_CACHELINE, m->base + l * UDAX_CACHELINE);
		c->dirty[l / 64] &= ~(1ULL << (l % 64));
	}
	c->npending = 0;
	if (c->trigger && c->fences == c->trigger) {
		c->trigger_err = crash_save_locked(m, c->trigger_path);
		c->stopped = true;
	}
out:
	pthread_mutex_unlock(&c->lock);
}

uint64_t dx_media_crash_fences(const struct dx_media *m)
{
	struct dx_crash *c = m->crash;
	uint64_t n;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->fences;
	pthread_mutex_unlock(&c->lock);
	return n;
}

bool dx_media_crash_mode(const struct dx_media *m)
{
	return m->crash != NULL;
}

uint64_t dx_media_crash_pending(const struct dx_media *m)
{
	struct dx_crash *c = m->crash;
	uint64_t n;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->npending;
	pthread_mutex_unlock(&c->lock);
	return n;
}

int dx_media_crash_set_trigger(struct dx_media *m, uint64_t n, const char *path)
{
	struct dx_crash *c = m->crash;
	char *p = NULL;

	if (!c) {
		dx_seterr("%s: not opened in crash-emulation mode", m->path);
		return -EINVAL;
	}
	if (n && (!path || !(p = strdup(path))))
		return path ? -ENOMEM : -EINVAL;
	pthread_mutex_lock(&c->lock);
	free(c->trigger_path);
	c->trigger_path = p;
	c->trigger = n;
	c->trigger_err = 0;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int dx_media_crash_save(struct dx_media *m, const char *path)
{
	struct dx_crash *c = m->crash;
	int ret;

	if (!c) {
		dx_seterr("%s: not opened in crash-emulation mode", m->path);
		return -EINVAL;
	}
	pthread_mutex_lock(&c->lock);
	ret = crash_save_locked(m, path);
	pthread_mutex_unlock(&c->lock);
	return ret;
}
