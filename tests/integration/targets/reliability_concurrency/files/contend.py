#!/usr/bin/env python
"""Another DAMON tool at work: ask kdamond argv[1] for its stats in a loop, as `damo report`
or a monitoring agent would, until the file argv[2] exists. Each request holds DAMON's global
sysfs lock (a trylock), so concurrent writers get EBUSY. Prints requests and EBUSY answers.
One process: a shell loop forked twice per request, which took the emulated guest's CPU from
the runs it is meant to contend with."""
import errno
import os
import sys
import time

state = '/sys/kernel/mm/damon/admin/kdamonds/%s/state' % sys.argv[1]
requests = busy = 0
while not os.path.exists(sys.argv[2]):
    requests += 1
    try:
        fd = os.open(state, os.O_WRONLY)
        try:
            os.write(fd, b'update_schemes_stats')
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno == errno.EBUSY:
            busy += 1
    # 50 requests a second: enough to collide with every writer.
    time.sleep(0.02)
print(requests, busy)
