/* SPDX-License-Identifier: MIT */
/*
 * mkfs.udaxfs - make a udaxfs file system on a device-DAX or an emulation
 * file.  Also works as `mkfs -t udaxfs DEVICE` (util-linux passes the
 * options, then the device; options after the device are accepted too).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/media.h"
#include "core/super.h"
#include "core/util.h"
#include "cli.h"

static const char *prog = "mkfs.udaxfs";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s DEVICE|FILE [-s SIZE] [-b BLOCKSIZE] [-L LABEL] [-f] [-q] [-V] [-h]\n"
		"Make a udaxfs file system on a device-DAX (/dev/daxX.Y) or an emulation file.\n"
		"\n"
		"  -s, --size SIZE             create (or extend) the emulation file to SIZE\n"
		"                              bytes (sparse); suffixes K, M, G, T, P (binary)\n"
		"  -b, --block-size BLOCKSIZE  block size; format version 1 supports 4096 only\n"
		"  -L, --label LABEL           volume label (at most 63 bytes)\n"
		"  -f, --force                 overwrite an existing file system or other signature\n"
		"  -q, --quiet                 print nothing on success\n"
		"  -t udaxfs                   accepted as mkfs(8) may pass it; another type\n"
		"                              is refused\n"
		"  -V, --version               print the version and exit\n"
		"  -h, --help                  print this help and exit\n", prog);
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Create or grow the emulation file at @path to @size bytes (sparse). */
static int prepare_file(const char *path, uint64_t size, bool force)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return die("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		close(fd);
		return die("%s: %s", path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return die("%s: -s works on regular (emulation) files only", path);
	}
	if ((uint64_t)st.st_size > size && !force) {
		close(fd);
		return die("%s: is larger than the requested size; use -f to shrink it", path);
	}
	if ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0) {
		int e = errno;

		close(fd);
		return die("%s: cannot set the size: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

static char *fmt_uuid(const uint8_t *u, char *buf)
{
	sprintf(buf, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		u[13], u[14], u[15]);
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "label", required_argument, NULL, 'L' },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ufs_mkfs_opts mo = { 0 };
	struct dx_media_opts o = { 0 };
	struct dx_media *m = NULL;
	const char *dev = NULL, *label = NULL;
	uint64_t size = 0, bs = UFS_BLOCK_SIZE;
	bool quiet = false;
	struct ufs_super sb;
	char a[32], b[32], c[40];
	int opt, ret;

	/* GNU getopt permutes: options may follow the device */
	while ((opt = getopt_long(argc, argv, "s:b:L:fqVht:", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (dx_parse_size(optarg, &size) < 0 || size == 0)
				return die("-s %s: not a size", optarg);
			break;
		case 'b':
			if (dx_parse_size(optarg, &bs) < 0)
				return die("-b %s: not a size", optarg);
			if (bs != UFS_BLOCK_SIZE)
				return die("-b %s: format version 1 supports only 4096-byte blocks",
					   optarg);
			break;
		case 'L':
			label = optarg;
			if (strlen(label) >= sizeof(sb.s_label))
				return die("-L: label is longer than %zu bytes", sizeof(sb.s_label) - 1);
			break;
		case 'f':
			mo.force = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 't':	/* `mkfs -t udaxfs` may pass it through */
			if (!cli_fstype_ok(prog, optarg))
				return 1;
			break;
		case 'V':
			cli_version(prog);
			printf("on-media format version %u\n", UFS_VERSION);
			return 0;
		default:
			return cli_common(opt, prog, usage, 1);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: no device given\n", prog);
		usage(stderr);
		return 1;
	}
	if (argc - optind > 1)
		return die("too many arguments: %s", argv[optind + 1]);
	dev = argv[optind];
	if (size) {
		if (size % UFS_BLOCK_SIZE)
			return die("-s: size %" PRIu64 " is not a multiple of 4096", size);
		ret = prepare_file(dev, size, mo.force);
		if (ret)
			return ret;
	}
	o.path = dev;
	ret = dx_media_open(&m, &o);
	if (ret)
		return die("%s", dx_errmsg());
	mo.label = label;
	ret = ufs_mkfs(m, &mo, &sb);
	if (ret) {
		dx_media_close(&m);
		return die("%s", dx_errmsg());
	}
	if (!quiet) {
		printf("%s: made udaxfs (format v%u) on %s (%s)\n", prog, UFS_VERSION, dev,
		       dx_media_kind(m) == UDAX_MEDIA_DEVDAX ? "device-DAX" : "emulation file");
		printf("  size:        %s, %" PRIu64 " blocks of %u bytes\n",
		       dx_fmt_size(sb.s_blocks_count * UFS_BLOCK_SIZE, a, sizeof(a)),
		       sb.s_blocks_count, UFS_BLOCK_SIZE);
		printf("  inodes:      %" PRIu64 " (%s inode table)\n", sb.s_inode_count - 2,
		       dx_fmt_size(sb.s_itable_blocks * UFS_BLOCK_SIZE, a, sizeof(a)));
		printf("  journal:     %s\n",
		       dx_fmt_size(sb.s_journal_blocks * UFS_BLOCK_SIZE, a, sizeof(a)));
		printf("  data start:  block %" PRIu64 " (offset %s, 2 MiB aligned); %s free\n",
		       sb.s_data_start, dx_fmt_size(sb.s_data_start * UFS_BLOCK_SIZE, a, sizeof(a)),
		       dx_fmt_size(sb.s_free_blocks_hint * UFS_BLOCK_SIZE, b, sizeof(b)));
		printf("  uuid:        %s\n", fmt_uuid(sb.s_uuid, c));
		printf("  label:       %s\n", sb.s_label[0] ? sb.s_label : "(none)");
	}
	dx_media_close(&m);
	return 0;
}
