/* SPDX-License-Identifier: MIT */
/*
 * fuzz_image.h - the image fuzz target, shared by the libFuzzer build
 * (run-fuzz.sh, clang) and the plain corpus replay driver (gcc).
 *
 * An input is a list of patches applied over a freshly made base image
 * (mkfs plus a few files, directories, a symlink, xattrs, a fragmented
 * file with a deep extent tree), so the fuzzer reaches deep structures
 * instead of dying at the superblock magic:
 *
 *   patch := op:u8  off:u32le  len:u16le  bytes[len]
 *   op & 1      absolute device offset (off mod image size)
 *   otherwise   region ((op & 0x7f) >> 1) % UDAX_FUZZ_NREGIONS (superblock,
 *               journal, inode bitmap, block bitmap, inode table, data area,
 *               backup superblock), offset off mod the region's size
 *   op & 0x80   after all patches, recompute the checksums (superblocks,
 *               journal header, inodes, extent nodes) so the input reaches
 *               the code behind the checksum checks
 *
 * A truncated last patch is applied as far as it goes.
 */
#ifndef UDAX_FUZZ_IMAGE_H
#define UDAX_FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define UDAX_FUZZ_IMAGE_SIZE (4u * 1024 * 1024)
#define UDAX_FUZZ_NREGIONS 7

/* Load the base image from @path (made by fuzz_mkbase).  Return: 0 or -errno. */
int udax_fuzz_init(const char *base_path);
/* Run one input: build the image, fsck -n it, mount it, walk it, unmount. */
int udax_fuzz_one(const uint8_t *data, size_t size);

#endif
