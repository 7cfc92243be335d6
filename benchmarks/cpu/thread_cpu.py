#!/usr/bin/env python3
# Whole-process start-up profile of one command (a JVM started with exec, e.g. ./spotserve generate ...):
#   benchmarks/cpu/thread_cpu.py OUTPREFIX CMD...
# prints wall seconds, CPU seconds by thread group (main = the thread named "java", C2 and C1 compiler threads, the
# generate kernel warm-up thread, the rest) and the process's peak RSS (VmHWM), polled from /proc every 10 ms.
# CPU time of the main thread is what the other agents' load inflates least. Stdout/stderr go to OUTPREFIX.out/.err.
import os, sys, time, subprocess, glob
t0 = time.monotonic()
prefix = sys.argv[1]
p = subprocess.Popen(sys.argv[2:], stdout=open(prefix + '.out', 'wb'), stderr=open(prefix + '.err', 'wb'))
tick = os.sysconf('SC_CLK_TCK'); last = {}; hwm = 0
while p.poll() is None:
    for f in glob.glob('/proc/%d/task/*/stat' % p.pid):
        try:
            s = open(f).read()
        except OSError:
            continue
        comm = s[s.index('(') + 1:s.rindex(')')]; rest = s[s.rindex(')') + 2:].split()
        last[f] = (comm, (int(rest[11]) + int(rest[12])) / tick)
    try:
        for line in open('/proc/%d/status' % p.pid):
            if line.startswith('VmHWM'):
                hwm = max(hwm, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.01)
wall = time.monotonic() - t0
groups = {}
for f, (comm, cpu) in last.items():
    tid = int(f.split('/')[4])
    g = 'C2' if comm.startswith('C2') else 'C1' if comm.startswith('C1') else 'warm' if comm.startswith('spotserve-warm') else 'main' if comm == 'java' else 'other'
    groups[g] = groups.get(g, 0) + cpu
print('wall %.2f  ' % wall + '  '.join('%s %.2f' % (k, groups.get(k, 0)) for k in ('main', 'C2', 'C1', 'warm', 'other')) + '  hwm %.1f MB' % (hwm / 1024))
