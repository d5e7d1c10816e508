# The DAX page lifecycle: the xarray, page handles and their
# slab, entry locks and the wait table, break_layouts.  No FUSE here.
libudax_core_la_SOURCES += \
	src/core/xarray.h src/core/xarray.c \
	src/core/dax.h src/core/dax_int.h \
	src/core/page.c src/core/dax.c
