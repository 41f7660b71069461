# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sum up the audit hook's logs (bench/files/audit) in a directory, one entry per log:

    python3 summary.py DIR    ->    {"<log name>": {"writes": [...], "cpu_s": x, "wall_s": y}}

writes are the sysfs files opened for writing by every Python process of the step, in
order; cpu_s their CPU time added up; wall_s the longest-running one's wall time (the
processes of a step are nested: the command module waits for damo).
"""

from __future__ import annotations

import glob
import json
import os
import sys


def summary(directory):
    steps = {}
    for path in sorted(glob.glob(os.path.join(directory, '*.log'))):
        with open(path, 'r', encoding='utf-8') as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
        walls = [line['wall_s'] for line in lines if line.get('wall_s') is not None]
        steps[os.path.basename(path)[:-len('.log')]] = {
            'writes': [write for line in lines for write in line['writes']],
            'cpu_s': round(sum(line['cpu_s'] for line in lines), 3),
            'wall_s': round(max(walls), 3) if walls else None,
        }
    return steps


if __name__ == '__main__':
    print(json.dumps(summary(sys.argv[1])))
