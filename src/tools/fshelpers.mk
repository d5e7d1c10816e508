# Links to the file system helpers where util-linux looks for them.
# mount(8) finds mount.udaxfs (type udaxfs) and mount.fuse.udaxfs (type
# fuse.udaxfs) only in /sbin, /sbin/fs.d and /sbin/fs; mkfs(8) and fsck(8)
# look there before PATH.  With a prefix such as /usr/local the programs
# live elsewhere, so install links them into $(fshelpersdir)
# (configure --with-fs-helpers-dir; empty: no links).  Each link points at
# the installed program in $(sbindir); mount.udaxfs finds udaxfs through
# its own real path.  Nothing is linked when the two directories are one,
# and uninstall removes only links that point at our programs.
FS_HELPER_LINKS = mount.udaxfs:mount.udaxfs mount.fuse.udaxfs:mount.udaxfs \
	mkfs.udaxfs:mkfs.udaxfs fsck.udaxfs:fsck.udaxfs

install-exec-hook: install-fs-helpers
uninstall-hook: uninstall-fs-helpers

install-fs-helpers:
	@dir='$(fshelpersdir)'; test -n "$$dir" || exit 0; \
	d="$(DESTDIR)$$dir"; \
	if test -z '$(DESTDIR)' && ! { test -d "$$d" && test -w "$$d"; } && \
	   ! { test ! -e "$$d" && $(MKDIR_P) "$$d" 2>/dev/null; }; then \
		echo "warning: $$d is not writable: mount/mkfs/fsck -t udaxfs will not find the helpers" >&2; \
		echo "warning: (install as root, or configure --with-fs-helpers-dir=DIR or =no)" >&2; \
		exit 0; \
	fi; \
	$(MKDIR_P) "$$d" || exit 1; \
	if test "$$d" -ef "$(DESTDIR)$(sbindir)"; then exit 0; fi; \
	for pair in $(FS_HELPER_LINKS); do \
		link=$${pair%%:*}; prog=$${pair#*:}; \
		if test -e "$$d/$$link" && ! test -L "$$d/$$link"; then \
			echo "error: $$d/$$link exists and is not a link: not replacing it" >&2; exit 1; \
		fi; \
		echo " ln -sf '$(sbindir)/$$prog' '$$d/$$link'"; \
		ln -sf "$(sbindir)/$$prog" "$$d/$$link" || exit 1; \
	done

uninstall-fs-helpers:
	@dir='$(fshelpersdir)'; test -n "$$dir" || exit 0; \
	d="$(DESTDIR)$$dir"; \
	for pair in $(FS_HELPER_LINKS); do \
		link=$${pair%%:*}; prog=$${pair#*:}; \
		if test -L "$$d/$$link" && \
		   test "$$(readlink "$$d/$$link")" = "$(sbindir)/$$prog"; then \
			echo " rm -f '$$d/$$link'"; rm -f "$$d/$$link"; \
		fi; \
	done

.PHONY: install-fs-helpers uninstall-fs-helpers
