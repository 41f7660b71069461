#!/usr/bin/env python
"""A workload whose score changes every 0.3 s until the file argv[2] exists, written
atomically to argv[1]; the last score is 99999. Prints the last changing score."""
import os
import sys
import time


def put(value):
    with open(sys.argv[1] + '.new', 'w') as f:
        f.write('%d\n' % value)
    os.rename(sys.argv[1] + '.new', sys.argv[1])


i = 100
while not os.path.exists(sys.argv[2]):
    i += 1
    put(i)
    time.sleep(0.3)
put(99999)
print(i)
