/* SPDX-License-Identifier: MIT */
/*
 * udax_err.c - libudax's error reporting (udax_last_error(): the reason
 * for the calling thread's last failure) and its requests to the daemon,
 * which put the daemon's reason for a refusal there.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "udax_map_int.h"

static __thread char t_err[256];

int udax__set_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t_err, sizeof(t_err), fmt, ap);
	va_end(ap);
	return err;
}

void udax__clear_err(void)
{
	t_err[0] = 0;
}

UDAX_EXPORT const char *udax_last_error(void)
{
	return t_err;
}

int udax__conn_call(struct udax_wire *w, uint16_t type, const void *p, size_t len, void **rp,
		    uint32_t *rlen, int *rfd)
{
	void *rep = NULL;
	uint32_t n = 0;
	int err = udax_wire_call(w, type, p, (uint32_t)len, &rep, &n, rfd);

	if (err == -ENOTCONN)
		udax__set_err(err, "the udaxfs daemon closed the connection");
	else if (err < 0 && n && rep)
		udax__set_err(err, "%s", (char *)rep);
	else if (err < 0)
		udax__set_err(err, "udaxfs daemon: %s", strerror(-err));
	if (rp)
		*rp = rep;
	else
		free(rep);
	if (rlen)
		*rlen = n;
	return err;
}

void udax__conn_undo(struct udax_wire *w, uint16_t type, const void *p, size_t len)
{
	char save[sizeof(t_err)];

	memcpy(save, t_err, sizeof(save));
	udax__conn_call(w, type, p, len, NULL, NULL, NULL);
	memcpy(t_err, save, sizeof(save));
}
