#!/usr/bin/env python3
# memory.py MOUNTPOINT PID N - make N empty files in one directory on a
# mounted udaxfs, unlink them, and print the daemon's own memory (RssAnon,
# KiB: its heap, not the pages of the mapped device, which VmRSS also
# counts and which grow with the inode table and directory blocks touched)
# at each step: "start", "created", "forgotten" (after drop_caches makes the
# kernel send FORGET), "unlinked" (after the unlink and another
# drop_caches).  VmRSS is printed beside it.  Used by contrib/bench/memory.sh.
import os, sys, time

mnt, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def status(key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1

def rss():
    return status("RssAnon")

def total():
    return f"(VmRSS {status('VmRSS')})"

def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")
    time.sleep(1.0)

d = os.path.join(mnt, "many")
os.mkdir(d)
drop()
r0 = rss()
print(f"start {r0} {total()}", flush=True)
t = time.time()
for i in range(n):
    os.close(os.open(f"{d}/file-{i:07d}", os.O_CREAT | os.O_WRONLY, 0o644))
tc = time.time() - t
r1 = rss()
print(f"created {r1} ({(r1 - r0) * 1024 / n:.0f} B/entry, {tc:.1f} s) {total()}", flush=True)
drop()
r2 = rss()
print(f"forgotten {r2} ({(r2 - r0) * 1024 / n:.0f} B/entry) {total()}", flush=True)
t = time.time()
for i in range(n):
    os.unlink(f"{d}/file-{i:07d}")
os.rmdir(d)
tu = time.time() - t
drop()
r3 = rss()
print(f"unlinked {r3} ({(r3 - r0) * 1024 / n:.0f} B/entry, {tu:.1f} s) {total()}", flush=True)
