/* SPDX-License-Identifier: MIT */
/*
 * pinrec.h - the record of live pins that outlives the daemon.
 *
 * A pin granted to a client is a long-term io_uring pin of device pages
 * (the stand-in for device DMA).  It outlives the client's munmap, and it
 * outlives this daemon: a daemon that is killed, or unmounts while pins
 * are still live, cannot drop them, and a new daemon mounting the same
 * device would hand those blocks to other files while the kernel may still
 * DMA into them.
 *
 * So every pin granted is written down, before the grant is answered, in
 * a small file per device under /run/udaxfs (a tmpfs: cleared at reboot,
 * when no pin can survive), and crossed out when the daemon has seen it
 * released.  A file lists, per record, the device byte range, the client's
 * pid and start time (/proc/PID/stat), and the boot id it was written in.
 *
 * At mount, every range still listed for this boot is QUARANTINED: the
 * allocator never hands those blocks out, and blocks of it that a file
 * frees do not go back to the free pool.  The rule is conservative: a
 * quarantine lasts until reboot, or until an administrator runs
 * `udaxctl quarantine --release DEVICE` with the device unmounted.  It is
 * not lifted when the listed client exits: a ring outlives its process when
 * a fork()ed child or a pidfd_getfd(2) caller holds its descriptor, and
 * buffers cloned to another ring stay pinned, so the client's death proves
 * nothing about the pages.
 *
 * File format (text, one record per line, appended with one write(2)):
 *   udaxfs-pins 1
 *   boot BOOT_ID
 *   q OFF LEN PID START      quarantined (carried over from an earlier mount)
 *   + KEY OFF LEN PID START  pin granted (KEY: unique within the file)
 *   - KEY                    ... seen released
 * At mount the file is read, and rewritten (to a temporary name, then
 * renamed) with one q line per range still live.  The file is keyed by
 * the device's identity, not by the file system's UUID: a pin holds device
 * pages, and a new mkfs does not release them.
 */
#ifndef UDAXD_PINREC_H
#define UDAXD_PINREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PINREC_DIR "/run/udaxfs"

struct pinrec;
struct procscan_id;

/* One device byte range. */
struct pinrec_range {
	uint64_t off, len;
	pid_t pid;		/* the client that was granted the pin */
	uint64_t start;		/* its start time, clock ticks after boot */
};

/*
 * pinrec_path() - the record file of a device: DIR/chr-MAJ:MIN.pins or
 * DIR/file-DEV-INO.pins.  @dir NULL: PINREC_DIR.
 */
void pinrec_path(char *buf, size_t size, const char *dir, const struct procscan_id *id);
/*
 * pinrec_open() - read the device's record (a record of another boot is
 * dropped), keep its live ranges as the quarantine, rewrite it compacted,
 * and keep it open for the pins of this mount.
 * Context: start-up, before the file system is mounted.
 * Return: 0, or -errno (the directory or the file cannot be written, or a
 * record is malformed: the message names the file and line).
 */
int pinrec_open(struct pinrec **out, const char *dir, const struct procscan_id *id);
/* The quarantined ranges (valid until pinrec_close).  Return their number. */
size_t pinrec_quarantine(const struct pinrec *pr, const struct pinrec_range **r);
/* Quarantined bytes. */
uint64_t pinrec_quarantined_bytes(const struct pinrec *pr);
/*
 * pinrec_add() - write down a pin granted on device ranges @r[0..n) to
 * @pid; *@key receives the record's key (never 0).  NULL @pr: no-op.
 * Context: any thread; one append.  Return: 0 or -errno.
 */
int pinrec_add(struct pinrec *pr, pid_t pid, const struct pinrec_range *r, size_t n,
	       uint64_t *key);
/* pinrec_del() - the pin @key was seen released.  Key 0 or NULL @pr: no-op. */
void pinrec_del(struct pinrec *pr, uint64_t key);
/*
 * pinrec_close() - stop recording.  Records of pins still live stay in the
 * file for the next mount; a file with none left (no pin, no quarantine)
 * is removed.  NULL-safe; clears *@prp.
 */
void pinrec_close(struct pinrec **prp);
/* Start time of @pid (field 22 of /proc/PID/stat), 0 when unknown. */
uint64_t pinrec_start_time(pid_t pid);

#endif /* UDAXD_PINREC_H */
