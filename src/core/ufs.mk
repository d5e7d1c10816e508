# The file system objects the daemon calls (ufs.h, the upper layer):
# mount/unmount and the inode cache, extent trees, file data,
# directories, xattrs.
libudax_core_la_SOURCES += src/core/ufs.h src/core/ufs_int.h src/core/txn.c src/core/icache.c src/core/mount.c \
	src/core/extent.h src/core/extent.c src/core/inode_int.h src/core/inode.c src/core/file.c \
	src/core/falloc.c src/core/grant.c src/core/dir_int.h src/core/dir.c src/core/namei.c \
	src/core/xattr.c
