#!/usr/bin/env python
"""Print every readable file of the DAMON admin tree (or of the subtree given) as
path=value, sorted: two snapshots compare byte for byte. One process: a shell loop forked
twice per file, ten seconds per snapshot on an emulated guest."""
import glob
import os
import sys

ADMIN = '/sys/kernel/mm/damon/admin'


def value(path):
    try:
        with open(path, 'rb') as f:
            return f.read(4096).decode('utf-8', 'replace').rstrip('\n')
    except OSError as e:
        return 'error: %s' % os.strerror(e.errno)


root = os.path.join(ADMIN, sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] else ADMIN
paths = []
for top, dirs, files in os.walk(root):
    dirs[:] = [d for d in dirs if d != 'tried_regions']
    paths.extend(os.path.join(top, f) for f in files)
out = ['%s=%s' % (os.path.relpath(p, ADMIN), value(p)) for p in sorted(paths)]
out += ['%s=%s' % (p, value(p)) for p in sorted(glob.glob('/sys/module/damon_*/parameters/enabled'))]
sys.stdout.write(''.join(line + '\n' for line in out))
