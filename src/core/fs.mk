# device layer, superblock, mkfs, journal, allocator (the lower layer).
# The crash backend is media_crash.c.
libudax_core_la_SOURCES += src/core/media.h src/core/media_int.h src/core/media.c \
	src/core/media_crash.c src/core/numa.c src/core/format.h \
	src/core/super.h src/core/super.c src/core/journal.h src/core/journal.c \
	src/core/alloc.h src/core/alloc.c
