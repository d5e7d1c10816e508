/* SPDX-License-Identifier: MIT */
/*
 * test_media: the device layer on emulation files: open, geometry checks
 * and their messages, alignment refusal, read-only mapping, persistence
 * primitives, and the crash-emulation backend (unflushed stores are lost,
 * flushed and drained ones are kept, the trigger saves the image).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>

#include "core/media.h"
#include "test_helpers.h"

#define MIB (1024ULL * 1024)

static void check_open_basic(void)
{
	struct dx_media_opts o = { 0 };
	struct dx_media *m = NULL;
	char path[128];
	char *p;

	t_mkfile(path, sizeof(path), "media", 8 * MIB);
	o.path = path;
	CHECK_EQ(dx_media_open(&m, &o), 0);
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK_EQ(dx_media_kind(m), UDAX_MEDIA_EMUL);
	CHECK_EQ(dx_media_size(m), 8 * MIB);
	CHECK_EQ(dx_media_align(m), 4096);
	CHECK_EQ(dx_media_numa_node(m), -1);
	CHECK(dx_media_pinnable(m));	/* /dev/shm is tmpfs */
#if defined(__x86_64__)
	CHECK(!strcmp(dx_media_persist_mode(m), "cpu"));
#endif
	CHECK(!dx_media_readonly(m));
	p = dx_media_base(m);
	dx_media_memcpy_persist(m, p + 4096, "hello", 6);
	dx_media_memset_persist(m, p + 8192, 0x5a, 100);
	p[12288] = 7;
	dx_media_persist(m, p + 12288, 1);
	dx_media_flush(m, p, 64);
	dx_media_drain(m);
	/* big copies take the non-temporal path: unaligned edges included */
	{
		static char src[70000];
		size_t i, off, len;
		int bad = 0;

		for (i = 0; i < sizeof(src); i++)
			src[i] = (char)(i * 7 + 3);
		for (off = 0; off < 70; off += 13) {
			for (len = 250; len < 70000; len = len * 3 + 1) {
				char *d = p + (1 << 20) + off;

				memset(d - 1, 0x11, len + 2);
				dx_media_memcpy_persist(m, d, src, len);
				bad += memcmp(d, src, len) != 0 || d[-1] != 0x11 || d[len] != 0x11;
				dx_media_memset_persist(m, d, 0x77, len);
				for (i = 0; i < len; i++)
					bad += d[i] != 0x77;
				bad += d[-1] != 0x11 || d[len] != 0x11;
			}
		}
		CHECK_EQ(bad, 0);
	}
	CHECK_EQ(dx_media_check_map(m, 0, 4096), 0);
	CHECK_EQ(dx_media_check_map(m, 100, 4096), -EINVAL);
	CHECK_EQ(dx_media_check_map(m, 4096, 100), -EINVAL);
	CHECK_EQ(dx_media_check_map(m, 0, 0), -EINVAL);
	CHECK_EQ(dx_media_check_map(m, 4 * MIB, 8 * MIB), -ERANGE);
	CHECK_EQ(dx_media_check_map(m, 8 * MIB, 4096), -ERANGE);
	CHECK_EQ(dx_media_crash_fences(m), 0);
	CHECK(!dx_media_crash_mode(m));
	CHECK_EQ(dx_media_crash_set_trigger(m, 1, "/dev/null"), -EINVAL);
	dx_media_close(&m);
	CHECK(m == NULL);
	dx_media_close(&m);	/* NULL-safe */

	/* the data reached the file */
	{
		int fd = open(path, O_RDONLY);
		char buf[8] = { 0 };

		CHECK(pread(fd, buf, 6, 4096) == 6);
		CHECK(!strcmp(buf, "hello"));
		close(fd);
	}

	/* libpmem2's msync path on request */
	o.emul_msync = true;
	CHECK_EQ(dx_media_open(&m, &o), 0);
	if (m) {
		CHECK(!strcmp(dx_media_persist_mode(m), "msync"));
		dx_media_memcpy_persist(m, (char *)dx_media_base(m) + 4096, "HELLO", 6);
		dx_media_close(&m);
	}
	o.emul_msync = false;

	/* read-only: opens, maps, reads */
	o.readonly = true;
	CHECK_EQ(dx_media_open(&m, &o), 0);
	if (m) {
		CHECK(dx_media_readonly(m));
		CHECK(!memcmp((char *)dx_media_base(m) + 4096, "HELLO", 6));
		dx_media_close(&m);
	}
	unlink(path);
}

static void check_refusals(void)
{
	struct dx_media_opts o = { 0 };
	struct dx_media *m = NULL;
	char path[128];

	t_mkfile(path, sizeof(path), "small", 3 * MIB);
	o.path = path;
	CHECK_EQ(dx_media_open(&m, &o), -EINVAL);
	CHECK(strstr(dx_errmsg(), "smaller than the 4 MiB minimum") != NULL);
	CHECK(strstr(dx_errmsg(), path) != NULL);
	printf("  too small: %s\n", dx_errmsg());
	unlink(path);

	t_mkfile(path, sizeof(path), "odd", 5 * MIB + 100);
	CHECK_EQ(dx_media_open(&m, &o), -EINVAL);
	CHECK(strstr(dx_errmsg(), "multiple of 4096") != NULL);
	unlink(path);

	t_mkfile(path, sizeof(path), "align", 5 * MIB);
	o.emul_align = 2 * MIB;
	CHECK_EQ(dx_media_open(&m, &o), -EINVAL);
	CHECK(strstr(dx_errmsg(), "not a multiple of the 2 MiB alignment") != NULL);
	printf("  unaligned: %s\n", dx_errmsg());
	o.emul_align = 3000;
	CHECK_EQ(dx_media_open(&m, &o), -EINVAL);
	unlink(path);

	/* 2 MiB enforced alignment: mapping checks follow it */
	t_mkfile(path, sizeof(path), "align2", 8 * MIB);
	o.emul_align = 2 * MIB;
	CHECK_EQ(dx_media_open(&m, &o), 0);
	if (m) {
		CHECK_EQ(dx_media_align(m), 2 * MIB);
		CHECK_EQ(dx_media_check_map(m, 2 * MIB, 2 * MIB), 0);
		CHECK_EQ(dx_media_check_map(m, 4096, 2 * MIB), -EINVAL);
		CHECK_EQ(dx_media_check_map(m, 0, 4096), -EINVAL);
		dx_media_close(&m);
	}
	unlink(path);
	o.emul_align = 0;

	o.path = "/dev/null";
	CHECK_EQ(dx_media_open(&m, &o), -ENODEV);
	CHECK(strstr(dx_errmsg(), "not a device-DAX or regular file") != NULL);
	o.path = "/dev/shm";
	CHECK(dx_media_open(&m, &o) < 0);
	o.path = "/nonexistent/udax-test-media";
	CHECK_EQ(dx_media_open(&m, &o), -ENOENT);
	CHECK(strstr(dx_errmsg(), "/nonexistent/udax-test-media") != NULL);
	CHECK(m == NULL);
}

static int file_byte(const char *path, off_t off)
{
	unsigned char c = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	if (pread(fd, &c, 1, off) != 1)
		c = 0;
	close(fd);
	return c;
}

static void check_crash_backend(void)
{
	struct dx_media_opts o = { 0 };
	struct dx_media *m = NULL;
	char path[128], img[160], img2[160];
	volatile uint64_t *w;
	char *p;

	t_mkfile(path, sizeof(path), "crash", 4 * MIB);
	snprintf(img, sizeof(img), "%s.img", path);
	snprintf(img2, sizeof(img2), "%s.img2", path);
	o.path = path;
	o.crash_emul = true;
	CHECK_EQ(dx_media_open(&m, &o), 0);
	if (!m)
		return;
	CHECK(dx_media_crash_mode(m));
	CHECK(!strcmp(dx_media_persist_mode(m), "crash"));
	p = dx_media_base(m);
	w = (volatile uint64_t *)p;

	w[0] = 0x1111;			/* flushed and drained: kept */
	dx_media_flush(m, p, 8);
	CHECK_EQ(dx_media_crash_pending(m), 1);
	dx_media_drain(m);
	CHECK_EQ(dx_media_crash_pending(m), 0);
	CHECK_EQ(dx_media_crash_fences(m), 1);
	w[16] = 0x2222;			/* offset 128: never flushed: lost */
	p[4096] = 0x33;			/* flushed, not drained: lost */
	dx_media_flush(m, p + 4096, 1);
	CHECK_EQ(dx_media_crash_save(m, img), 0);
	CHECK_EQ(file_byte(img, 0), 0x11);
	CHECK_EQ(file_byte(img, 128), 0);
	CHECK_EQ(file_byte(img, 4096), 0);
	/* the base image itself is never written in crash mode */
	CHECK_EQ(file_byte(path, 0), 0);

	/* trigger: after the 3rd drain the image is saved and frozen */
	CHECK_EQ(dx_media_crash_set_trigger(m, 3, img2), 0);
	dx_media_drain(m);		/* fence 2: p[4096] reaches the image */
	dx_media_memset_persist(m, p + 8192, 0x44, 10);	/* fence 3 */
	p[12288] = 0x55;
	dx_media_persist(m, p + 12288, 1);			/* fence 4: after the cut */
	CHECK_EQ(dx_media_crash_fences(m), 4);
	CHECK_EQ(file_byte(img2, 0), 0x11);
	CHECK_EQ(file_byte(img2, 4096), 0x33);
	CHECK_EQ(file_byte(img2, 8192 + 9), 0x44);
	CHECK_EQ(file_byte(img2, 12288), 0);
	{
		struct stat st;

		CHECK(stat(img2, &st) == 0 && st.st_size == (off_t)(4 * MIB));
		CHECK(st.st_blocks < 256);	/* holes kept: only a few pages written */
	}
	dx_media_close(&m);
	unlink(path);
	unlink(img);
	unlink(img2);
}

static void check_numa(void)
{
	char *p = dx_numa_alloc(1 << 20, 0);

	CHECK(p != NULL);
	if (p) {
		CHECK(p[12345] == 0);
		p[1] = 1;
		dx_numa_free(p, 1 << 20);
	}
	p = dx_numa_alloc(4096, -1);
	CHECK(p != NULL);
	dx_numa_free(p, 4096);
}

int main(void)
{
	check_open_basic();
	check_refusals();
	check_crash_backend();
	check_numa();
	return t_exit("test_media");
}
