/* SPDX-License-Identifier: MIT */
/*
 * rules-media.c - devdax-rules' check of udaxfs's own device layer: on a
 * real device-DAX, dx_media_open() must see the geometry sysfs reports and
 * dx_media_check_map() must refuse every range the kernel would map
 * wrongly or refuse; an emulation file opened with the same alignment must
 * answer exactly the same.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/media.h"
#include "core/util.h"
#include "devdax-rules.h"

struct map_case {
	const char *what;
	uint64_t off;		/* in units of bytes, computed per device */
	uint64_t len;
	int want;
};

/* The ranges to ask about, for a device of @size bytes aligned to @align. */
static int map_cases(struct map_case *c, uint64_t size, uint64_t align)
{
	int n = 0;

	c[n++] = (struct map_case){ "offset 0, one unit", 0, align, 0 };
	c[n++] = (struct map_case){ "the whole device", 0, size, 0 };
	c[n++] = (struct map_case){ "last unit", size - align, align, 0 };
	c[n++] = (struct map_case){ "offset == size", size, align, -ERANGE };
	c[n++] = (struct map_case){ "runs past the end", size - align, 2 * align, -ERANGE };
	c[n++] = (struct map_case){ "length 0", 0, 0, -EINVAL };
	c[n++] = (struct map_case){ "length not a multiple of align", 0, align + 4096 / 2, -EINVAL };
	c[n++] = (struct map_case){ "offset 512", 512, align, -EINVAL };
	if (align > 4096) {
		/* the kernel maps these silently wrong or refuses: we must refuse */
		c[n++] = (struct map_case){ "offset 4096", 4096, align, -EINVAL };
		c[n++] = (struct map_case){ "length 4096", 0, 4096, -EINVAL };
		c[n++] = (struct map_case){ "offset align+4096", align + 4096, align, -EINVAL };
	}
	return n;
}

static int check_cases(const char *name, struct dx_media *m, uint64_t size, uint64_t align)
{
	struct map_case c[16];
	int i, n, bad = 0, ret;

	n = map_cases(c, size, align);
	for (i = 0; i < n; i++) {
		ret = dx_media_check_map(m, c[i].off, c[i].len);
		if (ret != c[i].want) {
			rules_fail(name, "check_map(%s: off %" PRIu64 " len %" PRIu64 ") = %d, want %d",
				   c[i].what, c[i].off, c[i].len, ret, c[i].want);
			bad++;
		}
	}
	if (!bad)
		rules_ok(name, "check_map answered all %d ranges right (align %" PRIu64 ")", n, align);
	return bad;
}

void rules_media(const char *path, uint64_t size, uint64_t align, const char *tmpdir)
{
	struct dx_media_opts o = { .path = path };
	struct dx_media *m = NULL;
	char emul[PATH_MAX];
	uint64_t esize;
	int ret, fd;

	ret = dx_media_open(&m, &o);
	if (ret) {
		rules_fail("media_open", "dx_media_open(%s): %s", path, dx_errmsg());
		return;
	}
	if (dx_media_kind(m) != UDAX_MEDIA_DEVDAX || dx_media_size(m) != size ||
	    dx_media_align(m) != align)
		rules_fail("media_open", "kind %d size %" PRIu64 " align %" PRIu64
			   ", sysfs says devdax %" PRIu64 " %" PRIu64, dx_media_kind(m),
			   dx_media_size(m), dx_media_align(m), size, align);
	else
		rules_ok("media_open", "device layer sees a devdax of sysfs's size and align");
	rules_fact("media_numa_node", "%d", dx_media_numa_node(m));
	check_cases("media_check_map", m, size, align);
	dx_media_close(&m);

	/* the emulation, told the same alignment, must enforce the same rules */
	esize = 16 * align > 16 * UDAX_MIB ? 16 * align : 16 * UDAX_MIB;
	snprintf(emul, sizeof(emul), "%s/devdax-rules-emul.%d", tmpdir, (int)getpid());
	fd = open(emul, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)esize)) {
		rules_fail("emul_check_map", "cannot create %s: %s", emul, strerror(errno));
		goto out;
	}
	close(fd);
	o.path = emul;
	o.emul_align = align;
	ret = dx_media_open(&m, &o);
	if (ret) {
		rules_fail("emul_check_map", "dx_media_open(%s, align %" PRIu64 "): %s",
			   emul, align, dx_errmsg());
		goto out;
	}
	if (dx_media_align(m) != align)
		rules_fail("emul_check_map", "emulation align %" PRIu64 ", asked for %" PRIu64,
			   dx_media_align(m), align);
	check_cases("emul_check_map", m, esize, align);
	dx_media_close(&m);
out:
	unlink(emul);
}
