# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Counts the sysfs writes of any Python program, for the benchmarks in bench/.

Put this directory on PYTHONPATH and set KD_BENCH_WRITES to a file: every open() or
os.open() of a path under /sys for writing raises the interpreter's "open" audit event
(PEP 578), which is recorded here, and the list is appended to that file as one JSON line
when the program exits.  damo writes each value with its own open() (damo/_damo_fs.py
write_file) and kernel.damon with its own os.open() (Host._raw_write), so one open for
writing is one sysfs write for both tools, counted the same way and without trusting
either tool's own report.  A write retried after EBUSY is counted again.

The line also holds the process's CPU time (user + system, from getrusage) and its wall
time since it started (from /proc/self/stat), so that a task's cost in the guest can be
told apart from the controller's and SSH's.
"""

import atexit
import json
import os
import resource
import sys

_LOG = os.environ.get('KD_BENCH_WRITES')
_WRITES = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _path(value):
    try:
        return os.fsdecode(value)
    except TypeError:
        return None


def _hook(event, args):
    if event != 'open' or not args:
        return
    path = _path(args[0])
    if path is None or not path.startswith('/sys/'):
        return
    mode, flags = args[1], args[2]
    if (isinstance(mode, str) and any(c in mode for c in 'wax+')) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS):
        _WRITES.append(path)


def _wall():
    """Seconds since this process started."""
    try:
        with open('/proc/self/stat', 'rb') as handle:
            started = int(handle.read().rsplit(b')', 1)[1].split()[19]) / os.sysconf('SC_CLK_TCK')
        with open('/proc/uptime', 'rb') as handle:
            return float(handle.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None


def _flush():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    line = {'argv': sys.argv[:3], 'pid': os.getpid(), 'writes': _WRITES,
            'cpu_s': usage.ru_utime + usage.ru_stime, 'wall_s': _wall()}
    with open(_LOG, 'a', encoding='utf-8') as handle:
        handle.write(json.dumps(line) + '\n')


if _LOG:
    sys.addaudithook(_hook)
    atexit.register(_flush)
