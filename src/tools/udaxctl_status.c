// SPDX-License-Identifier: MIT
/* udaxctl_status.c - udaxctl status MOUNTPOINT [--json] (placeholder until libudax lands). */
#include <stdio.h>
#include <string.h>

#include "udaxctl.h"

int udaxctl_status(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "udaxctl status: not built yet\n");
	return 1;
}
