/* SPDX-License-Identifier: MIT */
/*
 * layout_acl.c - the mount option dax_allow: which users and groups may
 * have direct access (a device descriptor reaches the whole device, so this
 * is decided once per connection's credentials, never per file).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layout_int.h"
#include "core/util.h"

int ls_parse_allow(struct layout_service *ls, const char *list, uid_t owner)
{
	ls->nallow = 0;
	if (!list) {
		ls->allow[ls->nallow++] = (struct allow){ false, 0 };
		ls->allow[ls->nallow++] = (struct allow){ false, owner };
		return 0;
	}
	char *dup = strdup(list), *save = NULL;
	if (!dup)
		return -ENOMEM;
	for (char *tok = strtok_r(dup, ",:", &save); tok; tok = strtok_r(NULL, ",:", &save)) {
		bool is_gid;
		if (strcmp(tok, "all") == 0) {
			ls->allow_all = true;
			continue;
		}
		if (strcmp(tok, "uid") == 0)
			is_gid = false;
		else if (strcmp(tok, "gid") == 0)
			is_gid = true;
		else
			goto bad;
		char *num = strtok_r(NULL, ",:", &save), *end;
		if (!num)
			goto bad;
		errno = 0;
		unsigned long v = strtoul(num, &end, 10);
		if (errno || *end || end == num || v > UINT32_MAX || ls->nallow == MAX_ALLOW)
			goto bad;
		ls->allow[ls->nallow++] = (struct allow){ is_gid, (uint32_t)v };
	}
	free(dup);
	return 0;
bad:
	free(dup);
	dx_seterr("dax_allow=%s: expected a list of uid:N, gid:N or all", list);
	return -EINVAL;
}

bool ls_allowed(const struct layout_service *ls, uid_t uid, gid_t gid,
		const gid_t *groups, int ngroups)
{
	if (ls->allow_all)
		return true;
	for (int i = 0; i < ls->nallow; i++) {
		const struct allow *a = &ls->allow[i];
		if (!a->gid && a->id == uid)
			return true;
		if (a->gid && a->id == gid)
			return true;
		for (int g = 0; a->gid && g < ngroups; g++)
			if (groups[g] == a->id)
				return true;
	}
	return false;
}
