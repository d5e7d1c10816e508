#include "/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c"
