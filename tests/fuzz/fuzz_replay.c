/* SPDX-License-Identifier: MIT */
/*
 * fuzz_replay.c - replay fuzz inputs without libFuzzer (builds with gcc,
 * runs in every make check): fuzz_replay BASE_IMAGE FILE_OR_DIR...
 * A crash or an assertion in the target fails the run.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_image.h"

static int replay_file(const char *path, unsigned long *count)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;
	pid_t pid;
	int st;

	if (!f) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (!buf || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
		fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	/* each input in a child: one crash does not hide the next */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		udax_fuzz_one(buf, (size_t)len);
		_exit(0);
	}
	free(buf);
	(*count)++;
	if (pid < 0 || waitpid(pid, &st, 0) < 0) {
		fprintf(stderr, "fuzz_replay: fork: %s\n", strerror(errno));
		return 1;
	}
	if (WIFSIGNALED(st) || WEXITSTATUS(st)) {
		printf("fuzz_replay: CRASH on %s (%s %d)\n", path,
		       WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) :
		       WEXITSTATUS(st));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long count = 0;
	int i, rc = 0;

	if (argc < 3) {
		fprintf(stderr, "Usage: fuzz_replay BASE_IMAGE FILE_OR_DIR...\n");
		return 2;
	}
	if (udax_fuzz_init(argv[1]))
		return 1;
	for (i = 2; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st)) {
			fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			struct dirent *de;
			DIR *d = opendir(argv[i]);

			while (d && (de = readdir(d))) {
				char p[4096];

				if (de->d_name[0] == '.')
					continue;
				snprintf(p, sizeof(p), "%s/%s", argv[i], de->d_name);
				rc |= replay_file(p, &count);
			}
			if (d)
				closedir(d);
		} else {
			rc |= replay_file(argv[i], &count);
		}
	}
	printf("fuzz_replay: replayed %lu inputs%s\n", count, rc ? ", some crashed" : "");
	return rc;
}
