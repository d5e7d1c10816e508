# mount.udaxfs: the helper mount(8) runs for "mount -t udaxfs" (see
# mount.udaxfs(8) and fshelpers.mk for where it is linked).
sbin_PROGRAMS += mount.udaxfs
mount_udaxfs_SOURCES = src/tools/mount.c src/tools/cli.h
dist_man_MANS += man/mount.udaxfs.8
