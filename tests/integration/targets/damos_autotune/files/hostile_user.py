# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local user (run as nobody) against kernel.damon's root writers, on a test host:

1. before the collection creates its paths, plant a symlink at each of them (and at the
   lock's former place in world-writable /run/lock), pointing at a file that does not exist;
2. then, until stopped, open every file of the collection it can and hold flock() on it.

Writes what it managed to do to REPORT as JSON on SIGTERM.  Test hosts only."""

import fcntl
import json
import os
import signal
import sys
import time

REPORT = sys.argv[1]
PLANTED = '/var/tmp/kd-planted'
PATHS = ['/run/lock/kernel-damon.lock', '/run/kernel-damon', '/run/kernel-damon/lock',
         '/var/lib/kernel-damon', '/var/lib/kernel-damon/managed.json', '/var/lib/kernel-damon/managed.json.tmp',
         '/var/lib/kernel-damon/pending.json', '/var/lib/kernel-damon/pending.json.tmp', '/etc/kernel-damon',
         '/etc/kernel-damon/damos_autotune.json', '/etc/kernel-damon/damos_autotune.conf', '/run/damos-autotune',
         '/run/damos-autotune/state', '/usr/local/lib/kernel-damon', '/usr/local/sbin/damos-autotune',
         '/etc/tmpfiles.d/damos-autotune.conf']
DIRS = ['/run/lock', '/run/kernel-damon', '/var/lib/kernel-damon', '/etc/kernel-damon', '/run/damos-autotune',
        '/usr/local/lib/kernel-damon', '/usr/local/lib/kernel-damon/kernel_damon', '/etc/systemd/system',
        '/sys/kernel/mm/damon/admin/kdamonds/0']
report = {'planted': [], 'targets': [], 'locked': []}
held = {}


def stop(signum, frame):
    with open(REPORT, 'w', encoding='utf-8') as handle:
        json.dump(report, handle)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
for number, path in enumerate(PATHS):
    target = '%s-%d' % (PLANTED, number)
    try:
        os.symlink(target, path)
        report['planted'].append(path)
        report['targets'].append(target)
    except OSError:
        pass
while True:
    for directory in DIRS:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if path in held or not (name.startswith(('kernel', 'damos', 'damon', 'managed', 'pending', 'lock', 'state'))
                                    or directory.startswith(('/run/kernel-damon', '/var/lib/kernel-damon'))):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            held[path] = fd
            report['locked'].append(path)
    time.sleep(0.5)
