/* SPDX-License-Identifier: MIT */
/*
 * devdax-rules.h - shared bits of the device-rules probe (devdax-rules.c)
 * and its optional media-layer part (rules-media.c).
 */
#ifndef UDAX_DEVDAX_RULES_H
#define UDAX_DEVDAX_RULES_H

#include <stdint.h>

/*
 * Every check prints one line:
 *   ok   NAME: detail          the rule held
 *   FAIL NAME: detail          the rule did not hold (counted)
 *   skip NAME: reason          could not be checked here (not counted)
 *   FACT key=value             what the real device showed (collected by
 *                              the harness into devdax-facts-*.txt)
 */
void rules_ok(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rules_fail(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rules_skip(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rules_fact(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * rules_media() - check that udaxfs's own device layer enforces the
 * device's rules on @path (size and align as sysfs reports them), and that
 * an emulation file opened with the same alignment enforces the same ones.
 * Context: may create and remove a file in @tmpdir.
 */
void rules_media(const char *path, uint64_t size, uint64_t align, const char *tmpdir);

#endif /* UDAX_DEVDAX_RULES_H */
