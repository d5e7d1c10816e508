/* SPDX-License-Identifier: MIT */
/*
 * main.c - udaxfs start-up and shut-down.
 *
 * Order of events (and why):
 *  1. parse the command line: a bad option fails before anything is opened;
 *  2. unless -f, fork now and let the parent wait on a pipe for the child's
 *     verdict.  Everything that can fail (opening the device, validating the
 *     superblock, journal recovery, the FUSE mount) runs in the child while
 *     its stderr is still the terminal, and the parent exits with the
 *     child's status - so `mount` and fstab see the real error and exit
 *     code.  (libfuse's fuse_daemonize() forks after the mount, which would
 *     lose the threads the core starts while mounting.)
 *  3. open the device, move to its NUMA node, mount the core (validate,
 *     recover), start the layout service, create and mount the FUSE
 *     session, tell the parent "ready", detach, serve;
 *  4. on unmount or a signal: unmount the FUSE session, then op_destroy()
 *     stops the layout service and unmounts the core.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <numa.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "core/alloc.h"
#include "daemon.h"
#include "layout.h"
#include "core/media.h"
#include "pinrec.h"
#include "procscan.h"
#include "core/util.h"

/* True once stderr is /dev/null: messages go to syslog instead. */
static bool detached;

static void say(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (detached) {
		vsyslog(prio, fmt, ap);
	} else {
		fputs("udaxfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

static void fuse_log_syslog(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

/* ufs_mount_opts.log: "using the backup superblock" and the like. */
static void core_log(void *arg, const char *msg)
{
	const struct udaxd_opts *o = arg;
	size_t n = strlen(msg);

	while (n && msg[n - 1] == '\n')
		n--;
	if (strncmp(msg, o->device, strlen(o->device)) == 0)
		say(LOG_WARNING, "%.*s", (int)n, msg);	/* it names the device itself */
	else
		say(LOG_WARNING, "%s: %.*s", o->device, (int)n, msg);
}

/*
 * Fork; the parent waits for one status byte from the child (0 = mounted)
 * and exits with it.  The child returns the pipe's write end.
 */
static int start_background(void)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds)) {
		say(LOG_ERR, "pipe: %s", strerror(errno));
		exit(1);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		say(LOG_ERR, "fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		unsigned char status = 1;
		ssize_t n;

		close(fds[1]);
		do
			n = read(fds[0], &status, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			/* died without a word: report how */
			int ws;

			if (waitpid(pid, &ws, 0) == pid && WIFSIGNALED(ws))
				fprintf(stderr, "udaxfs: killed by signal %d while mounting\n",
					WTERMSIG(ws));
			status = 1;
		} else if (status) {
			waitpid(pid, NULL, 0);
		}
		_exit(status);
	}
	close(fds[0]);
	setsid();
	return fds[1];
}

/* Tell the waiting parent how it went (once). */
static void notify_parent(int *fd, unsigned char status)
{
	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) != 1) {
		/* the parent is gone: nothing else to tell */
	}
	close(*fd);
	*fd = -1;
}

static void detach(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (chdir("/")) {
		/* stay where we are */
	}
	if (fd < 0)
		return;
	openlog("udaxfs", LOG_PID, LOG_DAEMON);
	fuse_set_log_func(fuse_log_syslog);
	detached = true;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Worker threads inherit the main thread's CPU and memory placement. */
static void place_on_node(int node)
{
	if (node < 0 || numa_available() < 0 || node > numa_max_node())
		return;
	if (numa_run_on_node(node))
		say(LOG_WARNING, "cannot run on NUMA node %d: %s", node, strerror(errno));
	numa_set_preferred(node);
}

/*
 * lock_device() - one daemon per device: an exclusive flock on a private
 * descriptor of the device (never the one handed to direct-access
 * clients, so a client cannot keep it alive).  A daemon that was just
 * unmounted may still be writing its clean state, so wait up to 3 s.
 * Return: the locked descriptor, or -errno (-EBUSY: in use).
 */
static int lock_device(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	int i;

	if (fd < 0)
		return -errno;
	for (i = 0; flock(fd, LOCK_EX | LOCK_NB); i++) {
		if (errno != EWOULDBLOCK || i == 60) {
			int e = errno == EWOULDBLOCK ? EBUSY : errno;

			close(fd);
			return -e;
		}
		usleep(50 * 1000);
	}
	return fd;
}

/*
 * check_holders() - refuse a device that other processes still map or hold
 * (clients of an earlier daemon that died or unmounted under them: their
 * stores and pins would land in blocks this mount hands to other files),
 * naming each; with -o wait_clients=SEC, wait up to SEC s for them to go.
 * Runs before anything is written to the device.
 * Return: 0 (nobody), -EBUSY (message printed), -errno.
 */
static int check_holders(const struct udaxd_opts *o, const struct procscan_id *id)
{
	uint64_t deadline = dx_now_ns() + (uint64_t)o->wait_clients_s * 1000000000ull;
	bool said = false;

	for (;;) {
		struct procscan_hit *h = NULL;
		size_t n = 0;
		int rc = procscan_holders(id, &h, &n, 64);

		if (rc) {
			say(LOG_ERR, "%s: cannot look for processes that hold it in /proc: %s",
			    o->device, strerror(-rc));
			return rc;
		}
		if (!n)
			return 0;
		if (dx_now_ns() < deadline) {
			if (!said)
				say(LOG_WARNING, "%s: %zu process%s still hold%s the device; waiting "
				    "up to %u s (wait_clients)", o->device, n, n == 1 ? "" : "es",
				    n == 1 ? "s" : "", o->wait_clients_s);
			said = true;
			free(h);
			usleep(100 * 1000);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			say(LOG_ERR, "%s: pid %d (%s) %s", o->device, (int)h[i].pid, h[i].comm,
			    h[i].what);
		say(LOG_ERR, "%s: refusing to mount: %zu process%s still map%s or hold%s the "
		    "device (clients of an earlier udaxfs?); their stores and DMA would land in "
		    "blocks given to other files.  Stop them, or mount with -o wait_clients=SEC",
		    o->device, n, n == 1 ? "" : "es", n == 1 ? "s" : "", n == 1 ? "s" : "");
		free(h);
		return -EBUSY;
	}
}

/*
 * open_pinrec() - open the device's record of live pins and turn what an
 * earlier mount left in it into quarantined block runs (*@q, *@nq).
 * Return: 0 or -errno (message printed).
 */
static int open_pinrec(const struct udaxd_opts *o, const struct procscan_id *id,
		       struct pinrec **pr, struct ufs_blk_range **q, size_t *nq)
{
	const struct pinrec_range *r;
	size_t n;
	int rc;

	*q = NULL;
	*nq = 0;
	rc = pinrec_open(pr, NULL, id);
	if (rc) {
		say(LOG_ERR, "%s: %s", o->device, dx_errmsg());
		return rc;
	}
	n = pinrec_quarantine(*pr, &r);
	if (!n)
		return 0;
	if (o->quarantine_ignore) {
		say(LOG_WARNING, "%s: quarantine=ignore: %" PRIu64 " KiB that pins of an earlier "
		    "mount may still hold are given out again (tests only: this is unsafe)",
		    o->device, pinrec_quarantined_bytes(*pr) >> 10);
		return 0;
	}
	*q = calloc(n, sizeof(**q));
	if (!*q)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t first = r[i].off / UFS_BLOCK_SIZE;
		uint64_t last = (r[i].off + r[i].len + UFS_BLOCK_SIZE - 1) / UFS_BLOCK_SIZE;

		(*q)[i] = (struct ufs_blk_range){ first, last - first };
	}
	*nq = n;
	say(LOG_WARNING, "%s: %" PRIu64 " KiB in %zu range%s quarantined: pins an earlier mount "
	    "granted (first: client pid %d) were never seen released; those blocks stay out of "
	    "use until reboot or `udaxctl quarantine --release %s` while unmounted",
	    o->device, pinrec_quarantined_bytes(*pr) >> 10, n, n == 1 ? "" : "s",
	    (int)r[0].pid, o->device);
	return 0;
}

/* Add "-o LIST" and the switches to the argument list libfuse parses. */
static int build_fuse_args(const struct udaxd_opts *o, struct fuse_args *args)
{
	if (fuse_opt_add_arg(args, "udaxfs"))
		return -ENOMEM;
	if (o->debug && fuse_opt_add_arg(args, "-d"))
		return -ENOMEM;
	if (fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, o->fuse_opts))
		return -ENOMEM;
	return 0;
}

static int serve(struct udaxd *d, const struct udaxd_opts *o)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (o->single_thread)
		return fuse_session_loop(d->se);
	if (!o->libfuse_mt)
		return udaxd_loop(d->se, o->max_threads);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	if (o->max_threads)
		fuse_loop_cfg_set_max_threads(cfg, o->max_threads);
	rc = fuse_session_loop_mt(d->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/*
 * start_uring() - -o io_uring: make the rings now, so that INIT offers
 * the transport only when it can be served.  Never touches the module
 * parameter; when it is off, says so and serves /dev/fuse.
 */
static void start_uring(struct udaxd *d, const struct udaxd_opts *o)
{
	int rc = udaxd_uring_param();

	if (rc == -ENOENT) {
		say(LOG_WARNING, "-o io_uring: this kernel has no FUSE over io_uring (no %s); "
		    "serving over /dev/fuse", UDAXD_URING_PARAM);
		return;
	}
	if (rc == 0) {
		say(LOG_WARNING, "-o io_uring: %s is N; serving over /dev/fuse", UDAXD_URING_PARAM);
		return;
	}
	rc = udaxd_uring_prepare(d);
	if (rc)
		say(LOG_WARNING, "-o io_uring: cannot set up the rings: %s; serving over /dev/fuse",
		    strerror(-rc));
	(void)o;
}

/*
 * run() - everything between the command line and exit.
 * @parent_fd: the pipe to the waiting parent, or -1 in the foreground.
 * Return: the exit status.
 */
static int run(struct udaxd_opts *o, int parent_fd)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct dx_media_opts mo;
	struct ufs_mount_opts uo;
	struct dx_dax_ops dax_ops = { .recall = udaxd_recall };
	struct layout_opts lo;
	struct layout_service *ls = NULL;
	struct udaxd d;
	struct stat st;
	struct procscan_id devid;
	struct pinrec *pr = NULL;
	struct ufs_blk_range *quar = NULL;
	size_t nquar = 0;
	int rc, status = 1, lock_fd = -1;

	memset(&d, 0, sizeof(d));
	d.opts = o;
	d.poll_ns = o->poll_us * 1000;
	/*
	 * Changes made through this mount keep the kernel's cache right;
	 * only a direct-access writer growing a file goes around it (the
	 * layout service invalidates when the layout is returned), so the
	 * default stays short (-o timeout=).
	 */
	d.attr_timeout = o->timeout;
	d.entry_timeout = o->timeout;

	o->mountpoint_abs = realpath(o->mountpoint, NULL);
	if (!o->mountpoint_abs || stat(o->mountpoint_abs, &st)) {
		say(LOG_ERR, "%s: %s", o->mountpoint, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		say(LOG_ERR, "%s: %s", o->mountpoint, strerror(ENOTDIR));
		goto out;
	}

	lock_fd = lock_device(o->device);
	if (lock_fd < 0) {
		if (lock_fd == -EBUSY)
			say(LOG_ERR, "%s: in use by another udaxfs daemon", o->device);
		else
			say(LOG_ERR, "%s: %s", o->device, strerror(-lock_fd));
		goto out;
	}
	rc = procscan_id_of(o->device, &devid);
	if (rc) {
		say(LOG_ERR, "%s: %s", o->device, strerror(-rc));
		goto out;
	}
	if (!o->readonly) {
		if (check_holders(o, &devid))
			goto out;
		if (open_pinrec(o, &devid, &pr, &quar, &nquar))
			goto out;
	}

	memset(&mo, 0, sizeof(mo));
	mo.path = o->device;
	mo.emul_align = o->emul_align;
	mo.readonly = o->readonly;
	rc = dx_media_open(&d.media, &mo);
	if (rc) {
		say(LOG_ERR, "%s", dx_errmsg());
		goto out;
	}
	place_on_node(dx_media_numa_node(d.media));

	memset(&uo, 0, sizeof(uo));
	uo.readonly = o->readonly;
	uo.policy = o->policy;
	uo.recall_timeout_ns = o->recall_timeout_ms * 1000000ULL;
	uo.dax_ops = &dax_ops;
	uo.dax_ops_arg = &d;
	uo.log = core_log;
	uo.log_arg = o;
	uo.quarantine = quar;
	uo.nquarantine = nquar;
	rc = ufs_mount(&d.fs, d.media, &uo);
	if (rc) {
		say(LOG_ERR, "%s", dx_errmsg());
		goto out_media;
	}

	memset(&lo, 0, sizeof(lo));
	lo.mountpoint = o->mountpoint_abs;
	lo.owner_uid = getuid();
	lo.dax_allow = o->dax_allow;
	lo.keep_size = o->writeback_cache;
	lo.pinrec = pr;
	dx_clearerr();
	rc = layout_service_start(&ls, d.fs, &lo);
	if (rc) {
		say(LOG_ERR, "%s: direct access service: %s", o->device,
		    *dx_errmsg() ? dx_errmsg() : strerror(-rc));
		goto out_fs;
	}
	__atomic_store_n(&d.ls, ls, __ATOMIC_RELEASE);

	if (build_fuse_args(o, &args)) {
		say(LOG_ERR, "%s", strerror(ENOMEM));
		goto out_fs;
	}
	d.se = fuse_session_new(&args, &udaxd_ops, sizeof(udaxd_ops), &d);
	if (!d.se)
		goto out_fs;	/* libfuse said why */
	if (ls)
		layout_set_session(ls, d.se);
	if (fuse_set_signal_handlers(d.se))
		goto out_session;
	if (fuse_session_mount(d.se, o->mountpoint_abs))
		goto out_signals;	/* libfuse said why */
	rc = udaxd_kio_attach(&d);
	if (rc) {
		say(LOG_ERR, "%s: %s", o->mountpoint, strerror(-rc));
		if (ls)
			layout_set_session(ls, NULL);
		fuse_session_unmount(d.se);
		goto out_signals;
	}

	if (o->io_uring)
		start_uring(&d, o);

	if (parent_fd >= 0) {
		notify_parent(&parent_fd, 0);
		detach();
	}
	rc = serve(&d, o);
	udaxd_uring_stop(&d);
	/* no notification may be written to /dev/fuse once unmount closes it */
	if (ls)
		layout_set_session(ls, NULL);
	fuse_session_unmount(d.se);
	status = rc < 0 ? 1 : 0;
	if (rc < 0)
		say(LOG_ERR, "%s: session ended: %s", o->device, strerror(-rc));

out_signals:
	fuse_remove_signal_handlers(d.se);
out_session:
	if (ls)
		layout_set_session(ls, NULL);
	/* calls op_destroy() if the kernel ever sent INIT */
	fuse_session_destroy(d.se);
	d.se = NULL;
out_fs:
	if (d.ls || d.fs) {
		/* INIT never came (or the session never existed): tear down here */
		ls = __atomic_exchange_n(&d.ls, NULL, __ATOMIC_ACQ_REL);
		layout_service_stop(&ls);
		if (d.fs) {
			d.unmount_rc = ufs_unmount(&d.fs);
			if (d.unmount_rc)
				say(LOG_ERR, "%s: unmount: %s", o->device, dx_errmsg());
		}
	}
	if (d.unmount_rc)
		status = 1;
out_media:
	dx_media_close(&d.media);
out:
	/* pins still live stay in the record for the next mount */
	pinrec_close(&pr);
	free(quar);
	if (lock_fd >= 0)
		close(lock_fd);	/* after everything is durable */
	fuse_opt_free_args(&args);
	notify_parent(&parent_fd, (unsigned char)status ? (unsigned char)status : 1);
	return status;
}

/*
 * malloc_trim() (the core calls it after many frees) gives back the free
 * pages inside the heaps, but not the free top of a worker thread's arena:
 * the C library keeps that up to its trim threshold, which it raises (up
 * to 64 MiB) each time a large block it had mapped is freed (a big
 * directory's index, a request buffer).  After a mass unlink in a big
 * directory about 10 MB stayed resident that way.  Fixing the threshold at
 * its default also stops the raising.  A policy of the whole process, so
 * the program sets it, not the library it links.
 */
static void heap_policy(void)
{
#ifdef __GLIBC__
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
}

int main(int argc, char **argv)
{
	struct udaxd_opts o;
	int parent_fd = -1;
	int rc;

	rc = udaxd_parse_args(argc, argv, &o);
	if (rc) {
		udaxd_free_opts(&o);
		return 1;
	}
	if (o.show_help) {
		udaxd_usage(stdout, "udaxfs");
		udaxd_free_opts(&o);
		return 0;
	}
	if (o.show_version) {
		printf("udaxfs (%s) %s\nlibfuse %s\n", PACKAGE_NAME, PACKAGE_VERSION, fuse_pkgversion());
		udaxd_free_opts(&o);
		return 0;
	}
	heap_policy();
	if (!o.foreground)
		parent_fd = start_background();
	rc = run(&o, parent_fd);
	udaxd_free_opts(&o);
	return rc;
}
