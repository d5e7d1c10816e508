/* SPDX-License-Identifier: MIT */
/*
 * procscan.h - who else holds the device: the processes that map it or
 * hold a descriptor of it, found through /proc.  udaxfs refuses to mount a
 * device that clients of an earlier daemon still map: a CPU store through
 * their mapping would land in whatever block the new daemon hands out.
 */
#ifndef UDAXD_PROCSCAN_H
#define UDAXD_PROCSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One process that holds the device. */
struct procscan_hit {
	pid_t pid;
	char comm[32];
	char what[96];		/* "maps it (3 mappings), fd 7" */
};

/* What a device is, as a descriptor or a mapping shows it. */
struct procscan_id {
	bool chr;		/* a character device: match st_rdev */
	dev_t rdev;		/* chr */
	dev_t dev;		/* !chr: the emulation file's st_dev and st_ino */
	ino_t ino;
};

/* Fill @id from the path.  Return 0 or -errno. */
int procscan_id_of(const char *path, struct procscan_id *id);
/*
 * procscan_holders() - every process but the caller that maps @id or holds
 * a descriptor of it.  *@hits is a malloc'd array of *@n (free it), at
 * most @max.  Processes that exit during the scan are skipped.
 * Context: start-up; reads /proc/PID/{maps,map_files,fd} (root sees all).
 * Return: 0, -ENOMEM, or -errno when /proc cannot be read.
 */
int procscan_holders(const struct procscan_id *id, struct procscan_hit **hits, size_t *n,
		     size_t max);

#endif /* UDAXD_PROCSCAN_H */
