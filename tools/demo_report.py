# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make demo's table: one row per host and recipe from the samples tools/demo.yml saved
(DIR/<host>-<recipe>.json), printed and written to DIR/demo.md.

Usage: demo_report.py DIR
"""

import glob
import json
import os
import statistics
import sys


def goal_value(metric, value):
    if value is None:
        return '-'
    if metric == 'some_mem_psi_us':
        return '%d us' % value
    if metric == 'user_input':
        # The demo workload's score: its slowdown in basis points.
        return '%.1f %% slower' % (value / 100.0)
    return str(value)


def mib(value):
    if value is None:
        return '-'
    for unit, name in ((1 << 50, 'PiB'), (1 << 40, 'TiB'), (1 << 30, 'GiB'), (1 << 20, 'MiB'), (1 << 10, 'KiB')):
        if value >= unit:
            return '%.0f %s' % (value / float(unit), name)
    return '%d B' % value


def row(data):
    samples = data['samples']
    last = samples[-1]
    goal = (last.get('goals') or [{}])[0]
    metric = goal.get('target_metric')
    # The tuner needs about thirty charge windows to grow a quota from 1 byte: judge the second
    # half. Memory is what the last sample shows.
    settled = samples[len(samples) // 2:]
    currents = [s['goals'][0]['current_value'] for s in settled
                if s.get('goals') and s['goals'][0].get('current_value') is not None]
    quotas = [s['effective_bytes'] for s in settled if s.get('effective_bytes') is not None]
    swap, compr = last.get('swap_used_bytes'), last.get('zram_compr_bytes')
    saved = swap - compr if swap is not None and compr is not None else None
    psi = data.get('summary', {}).get('psi_some_percent')
    # The workload's own slowdown over the same second half, whatever the goal.
    start, length = data.get('started_boottime'), data.get('summary', {}).get('seconds') or 0
    slowdowns = []
    for line in (data.get('slowdown_history') or '').splitlines():
        fields = line.split()
        if start is not None and len(fields) == 2 and start + length / 2 <= float(fields[0]) <= start + length:
            slowdowns.append(int(fields[1]))
    return [data['host'], data.get('kernel', '-'), data['recipe'],
            '%s %s' % (metric, goal_value(metric, goal.get('target_value'))),
            goal_value(metric, statistics.median(currents)) if currents else '-',
            mib(statistics.median(quotas)) if quotas else '-',
            goal_value('user_input', statistics.median(slowdowns)) if slowdowns else '-',
            mib(swap), mib(compr), mib(saved), '-' if psi is None else '%.2f %%' % psi]


HEADER = ['host', 'kernel', 'recipe', 'goal', 'goal current value (median, 2nd half)', 'quota (median, 2nd half)',
          'workload (median, 2nd half)', 'paged out (swap in use)', 'zram keeps (compressed)', 'memory saved', 'PSI some (window)']


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    rows = []
    for path in sorted(glob.glob(os.path.join(argv[1], '*.json'))):
        with open(path, encoding='utf-8') as handle:
            rows.append(row(json.load(handle)))
    if not rows:
        sys.exit('demo_report: no samples in %s' % argv[1])
    lines = ['| ' + ' | '.join(HEADER) + ' |', '|' + '---|' * len(HEADER)]
    lines += ['| ' + ' | '.join(cells) + ' |' for cells in rows]
    text = '\n'.join(lines) + '\n'
    with open(os.path.join(argv[1], 'demo.md'), 'w', encoding='utf-8') as handle:
        handle.write(text)
    sys.stdout.write(text)


if __name__ == '__main__':
    main(sys.argv)
