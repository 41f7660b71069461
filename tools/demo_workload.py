# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo's workload (make demo): a hot working set it reads all the time and a large cold
part it wrote once and never touches again, so that proactive reclaim has memory to give and
a cost to avoid.

Every 50 ms it reads one byte of every page of the hot set and measures the CPU time that
took (thread CPU time: a page fault that brings a page back from swap is charged to it, being
preempted is not). The first seconds give its baseline. Every second it writes its slowdown
to the score file, atomically (a temporary file renamed over it): the extra CPU time of a pass
(mean of the last three seconds) over the baseline, in basis points (0 = as fast as at the
start, 1000 = 10% slower). With --history, it also appends "BOOTTIME SLOWDOWN" to that file
every second (seconds since boot, the clock of /proc/uptime), so that the demo can show the
slowdown of a recipe whose goal is not the score.

Why a slowdown and not a throughput: DAMOS raises the quota while a goal's current value is
below its target and lowers it above (the feedback loop of mm/damon/core.c), so a user_input
score must grow as reclaim goes too far. A throughput falls instead: fed as is, a throughput
below its target would make DAMOS page out more and more.
"""

import argparse
import mmap
import os
import statistics
import sys
import time

PAGE = 4096
PASS_EVERY = 0.05


def filled(size, seed):
    """Anonymous memory, every page half random bytes and half zeros: zram compresses each
    page to about half (a page of one repeated word would be stored as a mere flag)."""
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    page = bytes(seed[:PAGE // 2]) + bytes(PAGE // 2)
    chunk = page * 256
    for offset in range(0, size, len(chunk)):
        area[offset:offset + len(chunk)] = chunk[:size - offset]
    return area


def append_history(path, value):
    with open(path, 'a', encoding='ascii') as handle:
        handle.write('%.3f %d\n' % (time.clock_gettime(time.CLOCK_BOOTTIME), value))


def write_score(path, value):
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w', encoding='ascii') as handle:
        handle.write('%d\n' % value)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--hot', type=int, default=64, help='hot working set, MiB')
    parser.add_argument('--cold', type=int, default=384, help='cold part, MiB')
    parser.add_argument('--baseline', type=float, default=8.0, help='seconds that measure the baseline')
    parser.add_argument('--score', required=True, help='file that gets the slowdown in basis points')
    parser.add_argument('--history', help='file that every second gets a line: seconds since boot, slowdown')
    args = parser.parse_args()

    cold = filled(args.cold << 20, os.urandom(PAGE))
    hot = filled(args.hot << 20, os.urandom(PAGE))
    view = memoryview(hot)
    areas = (cold, hot)  # both stay mapped while the workload runs
    baseline, first, recent, window, started = None, [], [], [], time.monotonic()
    next_pass = next_report = started
    print('workload: %d MiB hot, %d MiB cold, measuring the baseline for %g s'
          % (args.hot, args.cold, args.baseline), flush=True)
    while True:
        before = time.thread_time()
        # One byte of every page, copied in C: the pass costs little CPU unless pages fault.
        bytes(view[::PAGE])
        window.append(time.thread_time() - before)
        now = time.monotonic()
        if now >= next_report and window:
            # The last three seconds: smooth enough against a tick's noise, quick enough for a
            # quota that DAMOS retunes every charge window.
            recent = (recent + [statistics.mean(window)])[-3:]
            cost = statistics.mean(recent)
            window = []
            next_report = now + 1.0
            if baseline is None:
                first.append(recent[-1])
                if now - started >= args.baseline:
                    # The first seconds' median, the first two left out (the program's own start).
                    baseline = statistics.median(first[2:] or first)
                    print('workload: baseline %.3f ms per pass' % (baseline * 1e3), flush=True)
                    write_score(args.score, 0)
            else:
                slowdown = max(0, int(round((cost / baseline - 1) * 10000)))
                write_score(args.score, slowdown)
                if args.history:
                    append_history(args.history, slowdown)
        next_pass += PASS_EVERY
        delay = next_pass - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_pass = time.monotonic()
    return len(areas)


if __name__ == '__main__':
    sys.exit(main())
