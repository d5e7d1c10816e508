/* SPDX-License-Identifier: MIT */
/*
 * libudax_int.h - libudax internals shared by the map side (libudax.c,
 * udax_recall.c, udax_pin.c, udax_err.c) and udax_io.c (read/write on
 * maps and files).  Not installed; nothing
 * here is exported from the library.
 */
#ifndef UDAX_LIBUDAX_INT_H
#define UDAX_LIBUDAX_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct udax_map;
struct udax_wire;
struct udax_map_opts;

/*
 * Enter a copy on @m: 0, or -ESTALE once a recall, unmap or close has
 * begun (the copy must not touch the range).  Pair with udax__map_io_put().
 * Context: any; lock-free.
 */
int udax__map_io_get(struct udax_map *m);
void udax__map_io_put(struct udax_map *m);
/* The caller's range of @m: its address, file offset, length, and whether it is writable. */
void udax__map_info(const struct udax_map *m, char **addr, uint64_t *off, uint64_t *len,
		    bool *writable);
/* Copy into the map and make it durable.  Context: inside io_get/io_put.  Return: 0, -errno. */
int udax__map_store(struct udax_map *m, void *dst, const void *src, size_t n);
/*
 * After direct stores into @m: true if the daemon's page-cache flag of the
 * layout says the kernel caches none of its pages read through the mount
 * (udax_proto.h, struct udax_cachetab_rep); false if it may, or if there is
 * no flag.  Issues the full fence that orders the stores before the look.
 * Context: inside io_get/io_put.
 */
bool udax__map_cache_clean(struct udax_map *m);
/*
 * The connection (a reference: udax_wire_put() it) and layout id of @m, to
 * ask for an invalidation after the copy (udax__inval).  Context: inside
 * io_get/io_put (the map stays alive).
 */
void udax__map_conn(struct udax_map *m, struct udax_wire **w, uint64_t *id);
/*
 * Have the daemon drop the kernel's cached pages of file range [off, off +
 * len) of layout @id (UDAX_REQ_INVAL); returns when they are gone.  Never
 * inside io_get/io_put: the kernel may wait for a read that a truncate
 * holds up, and the truncate waits for this map's copies to drain.
 * Return: 0, -errno.
 */
int udax__inval(struct udax_wire *w, uint64_t id, uint64_t off, uint64_t len);
/* udax_map_open() without the EBUSY retries when @nowait (a grant racing a recall fails fast). */
int udax__map_open(struct udax_map **out, int fd, off_t off, size_t len, int prot,
		   const struct udax_map_opts *o, bool nowait);
/* Record a failure reason for udax_last_error().  Return: @err. */
int udax__set_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* UDAX_LIBUDAX_INT_H */
