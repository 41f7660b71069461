# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet filters: one report row per host from damos_facts (and damos_sample), the rows as a
terminal table, CSV, Markdown, JSON or the site playbook's table of effective quotas, a
picture of a sampled window as SVG, the rollout's health gate, and the damos_scheme options
that put a scheme back the way the facts show it.

Everything runs on the controller.  matplotlib draws the picture when the controller's
Python has it; otherwise a small built-in SVG writer does, so reports never need it.
Documentation: damon_report_row.yml, damon_report_format.yml, damon_tuning_svg.yml,
damon_health_breaches.yml, damon_previous_scheme.yml.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from xml.sax.saxutils import escape

from ansible.errors import AnsibleFilterError

from ansible_collections.kernel.damon.plugins.module_utils._damon_model import scheme_options
from ansible_collections.kernel.damon.plugins.module_utils._damon_units import format_bytes, format_us

# (key, header) of the machine-readable formats (CSV), raw values in their units.
CSV_COLUMNS = (
    'host', 'kernel', 'kdamond', 'state', 'pid', 'action', 'goal_metric', 'target_value', 'current_value',
    'score_bp', 'effective_bytes', 'quota_cap_bytes', 'reset_interval_ms', 'sz_applied', 'qt_exceeds',
    'psi_some_avg10', 'psi_some_window_percent', 'rollout', 'breaches',
)
# (key, header) of the human formats (terminal table, Markdown).
HUMAN_COLUMNS = (
    ('host', 'HOST'), ('kernel', 'KERNEL'), ('kdamond_human', 'KDAMOND'), ('action', 'ACTION'),
    ('goal_metric', 'GOAL'), ('target', 'TARGET'), ('current', 'CURRENT'), ('effective_human', 'QUOTA'),
    ('sz_applied_human', 'APPLIED'), ('qt_exceeds', 'QT_EXCEEDS'), ('psi_human', 'PSI some'),
    ('rollout_human', 'ROLLOUT'),
)

# The site playbook's table of effective quotas: each column's header and least width (the
# last column is not padded), one space apart.
QUOTA_COLUMNS = (('HOST', 24), ('KERNEL', 22), ('STATE', 5), ('PID', 8), ('GOAL', 28), ('EFFECTIVE QUOTA', 0))


def format_goal_value(metric, value):
    """A goal value in its metric's unit: a time for PSI, a percentage for *_bp."""
    if value is None:
        return '-'
    if metric == 'some_mem_psi_us':
        return format_us(int(value))
    if metric and metric.endswith('_bp'):
        return '%.2f %%' % (value / 100.0)
    return str(value)


def _pick(items, index):
    return items[index] if isinstance(items, list) and 0 <= index < len(items) else {}


def _find_kdamond(facts, index):
    for kdamond in facts.get('kdamonds') or []:
        if kdamond.get('index') == index:
            return kdamond
    return {}


def report_row(facts, host, kdamond=0, scheme=0, sample=None, rollout=None, breaches=None):
    """One report row from ansible_facts.damon, with the measured goal values of a damos_sample result."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError('damon_report_row: expected ansible_facts.damon (a dict), got %s'
                                 % type(facts).__name__)
    row = dict.fromkeys(CSV_COLUMNS)
    row.update(host=host, kernel=facts.get('kernel'), kdamond=kdamond, rollout=rollout,
               breaches=list(breaches or []), state='-')
    psi = (facts.get('memory_psi') or {}).get('some') or {}
    row['psi_some_avg10'] = psi.get('avg10')
    node = _find_kdamond(facts, kdamond)
    if not facts.get('available'):
        row['state'] = 'unavailable'
    elif node:
        row.update(state=node.get('state'), pid=node.get('pid'))
    found = _pick(_pick(node.get('contexts'), 0).get('schemes'), scheme)
    quotas = found.get('quotas') or {}
    stats = found.get('stats') or {}
    goals = quotas.get('goals') or []
    row.update(action=found.get('action'), effective_bytes=quotas.get('effective_bytes'),
               quota_cap_bytes=quotas.get('bytes'), reset_interval_ms=quotas.get('reset_interval_ms'),
               sz_applied=stats.get('sz_applied'), qt_exceeds=stats.get('qt_exceeds'))
    last = ((sample or {}).get('samples') or [{}])[-1]
    measured = last.get('goals') or []
    # The goal the kernel tunes towards: the highest score (damon-sysfs.md 4.2), else goal 0.
    scored = [(goal.get('score_bp'), -i) for i, goal in enumerate(measured) if goal.get('score_bp') is not None]
    index = -max(scored)[1] if scored else 0
    goal = _pick(goals, index)
    if goal:
        row.update(goal_metric=goal.get('target_metric'), target_value=goal.get('target_value'))
        if index < len(measured):
            row.update(current_value=measured[index].get('current_value'), score_bp=measured[index].get('score_bp'))
        elif goal.get('target_metric') == 'user_input':
            row['current_value'] = goal.get('current_value')
            if goal.get('target_value'):
                row['score_bp'] = goal['current_value'] * 10000 // goal['target_value']
    summary = (sample or {}).get('summary') or {}
    row['psi_some_window_percent'] = summary.get('psi_some_percent')
    return _humanize(row)


def _humanize(row):
    metric = row.get('goal_metric')
    pid = row.get('pid')
    row['kdamond_human'] = '%s %s' % (row.get('state') or '-', '(%s)' % pid if pid not in (None, -1) else '')
    row['kdamond_human'] = row['kdamond_human'].strip()
    row['target'] = format_goal_value(metric, row.get('target_value')) if metric else '-'
    row['current'] = format_goal_value(metric, row.get('current_value')) if metric else '-'
    effective = row.get('effective_bytes')
    row['effective_human'] = format_bytes(effective) if isinstance(effective, int) else '-'
    if isinstance(effective, int) and row.get('quota_cap_bytes'):
        row['effective_human'] += ' of ' + format_bytes(row['quota_cap_bytes'])
    applied = row.get('sz_applied')
    row['sz_applied_human'] = format_bytes(applied) if isinstance(applied, int) else '-'
    psi = ['%.2f %% avg10' % row['psi_some_avg10']] if row.get('psi_some_avg10') is not None else []
    if row.get('psi_some_window_percent') is not None:
        psi.append('%.2f %% window' % row['psi_some_window_percent'])
    row['psi_human'] = ', '.join(psi) or '-'
    rollout = row.get('rollout') or '-'
    if row.get('breaches'):
        rollout += ': ' + '; '.join(row['breaches'])
    row['rollout_human'] = rollout
    return row


def _cell(value):
    return '-' if value is None else str(value)


def _quota_cells(row):
    metric, effective = row.get('goal_metric'), row.get('effective_bytes')
    return [_cell(row.get('host')), _cell(row.get('kernel')), _cell(row.get('state')), _cell(row.get('pid')),
            '%s %s' % (metric, _cell(row.get('target_value'))) if metric else '-',
            '%s per %s ms' % (format_bytes(effective), _cell(row.get('reset_interval_ms')))
            if isinstance(effective, int) else '-']


def _quota_table(rows):
    lines = [[header for header, unused in QUOTA_COLUMNS]] + [_quota_cells(row) for row in rows]
    widths = [max([least] + [len(text) for text in column])
              for (unused, least), column in zip(QUOTA_COLUMNS, zip(*lines))]
    return ''.join(' '.join(text.ljust(width) for text, width in zip(line[:-1], widths)) + ' ' + line[-1] + '\n'
                   for line in lines)


def report_format(rows, fmt='table'):
    """The rows as 'table' (terminal), 'csv', 'markdown', 'json' or 'quotas' (a short terminal table) text."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError('damon_report_format: expected a list of rows from damon_report_row')
    if fmt == 'quotas':
        return _quota_table(rows)
    if fmt == 'json':
        return json.dumps(rows, indent=2, sort_keys=True) + '\n'
    if fmt == 'csv':
        out = io.StringIO()
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(['; '.join(row.get(key) or []) if key == 'breaches' else
                             '' if row.get(key) is None else row.get(key) for key in CSV_COLUMNS])
        return out.getvalue()
    cells = [[_cell(row.get(key)) for key, unused in HUMAN_COLUMNS] for row in rows]
    headers = [header for unused, header in HUMAN_COLUMNS]
    if fmt == 'markdown':
        lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
        lines += ['| ' + ' | '.join(cell.replace('|', '\\|') for cell in line) + ' |' for line in cells]
        return '\n'.join(lines) + '\n'
    if fmt == 'table':
        widths = [max(len(text) for text in column) for column in zip(headers, *cells)]
        lines = ['  '.join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                 for line in [headers] + cells]
        return '\n'.join(lines) + '\n'
    raise AnsibleFilterError("damon_report_format: format %r is not one of table, csv, markdown, json, quotas"
                             % (fmt,))


# ---------------------------------------------------------------- pictures

def _series(sample, goal):
    samples = (sample or {}).get('samples') or []
    if not samples:
        raise AnsibleFilterError('damon_tuning_svg: expected a damos_sample result with samples')
    times = [point.get('time') or 0.0 for point in samples]
    quota = [point.get('effective_bytes') for point in samples]
    score, target, metric, current = [], None, None, None
    for point in samples:
        found = _pick(point.get('goals') or [], goal)
        value = found.get('score_bp')
        score.append(None if value is None else value / 100.0)
        if found:
            target, metric, current = found.get('target_value'), found.get('target_metric'), found.get('current_value')
    cap = samples[-1].get('bytes') or 0
    # Where paged-out memory went, on a host with swap (damos_sample's swap and zram keys).
    memory = []
    if any(point.get('swap_used_bytes') is not None for point in samples):
        memory.append(('paged out: swap in use', '#d62728', [point.get('swap_used_bytes') for point in samples]))
        if any(point.get('zram_compr_bytes') is not None for point in samples):
            memory.append(('what zram keeps of it in memory (compressed)', '#9467bd',
                           [point.get('zram_compr_bytes') for point in samples]))
    return times, quota, score, cap, target, metric, current, memory


def _nice_step(span, count=5):
    raw = span / float(count) if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


# The tuner multiplies the quota (it doubles at best, and drops to 1 byte at worst), so the
# quota is drawn on a log2 scale, from 1 byte to the power of two above the largest value.
def _byte_ticks(top):
    """Powers of two from 1 byte up to at least top, at most eight of them."""
    bits = max(int(math.ceil(math.log2(max(top, 2)))), 1)
    step = next(step for step in (1, 2, 4, 5, 10, 20) if bits / float(step) <= 7)
    return [2 ** (i * step) for i in range(int(math.ceil(bits / float(step))) + 1)]


def _memory_ticks(memory):
    """Linear ticks in whole MiB (or bytes below 1 MiB) from 0 to above the largest value."""
    top = max([v for unused, unused2, values in memory for v in values if v is not None] + [1])
    unit = 1 << 20 if top >= 1 << 20 else 1
    step = max(_nice_step(top / float(unit), 4), 1) * unit
    return [i * step for i in range(int(top // step) + 2)]


SCORE_CLIP = 300.0


def _score_axis(score):
    """Score axis top in percent; scores above SCORE_CLIP are drawn at the top edge."""
    highest = max([v for v in score if v is not None] + [100.0])
    return (SCORE_CLIP, True) if highest > SCORE_CLIP else (highest * 1.2, False)


def _builtin_svg(title, times, quota, score, cap, target_label, memory=()):
    width, left, right = 820, 90, 20
    # Panels of 190 px, 70 px apart, below the title.
    panels = [(40 + 260 * i, 230 + 260 * i) for i in range(3 if memory else 2)]
    height = panels[-1][1] + 30
    t_max = max(times[-1], 1e-9)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (width, height, width, height),
           '<title>%s</title>' % escape(title), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15">%s</text>' % (left, escape(title))]

    def x_of(t):
        return left + (width - left - right) * t / t_max

    def frame(top, bottom, ticks, scale, tick_label):
        def y_of(v):
            return bottom - (bottom - top) * scale(min(v, ticks[-1])) / scale(ticks[-1])
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>'
                   % (left, top, width - left - right, bottom - top))
        for tick in ticks:
            y = y_of(tick)
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, width - right, y, y))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y + 4, escape(tick_label(tick))))
        return y_of

    def line(y_of, values, name, color):
        segments, current = [], []
        for t, v in zip(times, values):
            if v is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append('%.1f,%.1f' % (x_of(t), y_of(v)))
        if current:
            segments.append(current)
        for points in segments:
            out.append('<polyline class="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (name, color, ' '.join(points)))

    def limit_line(y_of, name, limit, label):
        y = y_of(limit)
        out.append('<line class="%s-limit" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c00" '
                   'stroke-dasharray="6 4"/>' % (name, left, width - right, y, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end" fill="#c00">%s</text>'
                   % (width - right - 4, y - 4, escape(label)))

    def legend(top, entries):
        for i, (name, color) in enumerate(entries):
            out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (left + 6, top + 16 + 15 * i, color, escape(name)))

    ticks = _byte_ticks(max([v for v in quota if v is not None] + [cap, 1]))
    y_of = frame(panels[0][0], panels[0][1], ticks, lambda v: math.log2(max(v, 1)), format_bytes)
    line(y_of, quota, 'quota', '#1f77b4')
    if cap:
        limit_line(y_of, 'quota', cap, 'cap %s' % format_bytes(cap))
    legend(panels[0][0], [('effective quota per charge window (log scale)', '#1f77b4')])
    score_top, clipped = _score_axis(score)
    step = _nice_step(score_top, 4)
    ticks = [i * step for i in range(int(score_top // step) + (1 if clipped else 2))]
    y_of = frame(panels[1][0], panels[1][1], ticks, float, lambda v: '%g %%' % v)
    line(y_of, score, 'score', '#2ca02c')
    limit_line(y_of, 'score', 100.0, target_label)
    legend(panels[1][0], [('goal score (current / target)' + (', clipped at %g %%' % SCORE_CLIP if clipped else ''),
                           '#2ca02c')])
    if memory:
        y_of = frame(panels[2][0], panels[2][1], _memory_ticks(memory), float, format_bytes)
        for name, color, values in memory:
            line(y_of, values, 'memory', color)
        legend(panels[2][0], [(name, color) for name, color, unused in memory])
    step = _nice_step(t_max, 8)
    tick = 0.0
    while tick <= t_max + 1e-9:
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' % (x_of(tick), panels[-1][1] + 16, tick))
        tick += step
    out.append('<text x="%d" y="%d" text-anchor="middle">seconds</text>' % ((width + left) // 2, height - 2))
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def _matplotlib_svg(title, times, quota, score, cap, target_label, memory=()):
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    # Figure without pyplot: no global backend or state in the controller process.
    with matplotlib.rc_context({'svg.fonttype': 'none', 'svg.hashsalt': 'kernel.damon'}):
        figure = Figure(figsize=(8.2, 7.8 if memory else 5.2))
        axes = figure.subplots(3 if memory else 2, 1, sharex=True)
        upper, lower = axes[0], axes[1]
        upper.plot(times, [float('nan') if v is None else max(v, 1) for v in quota], color='#1f77b4',
                   label='effective quota per charge window')
        if cap:
            upper.axhline(cap, color='#c00', linestyle='--', label='cap %s' % format_bytes(cap))
        ticks = _byte_ticks(max([v for v in quota if v is not None] + [cap, 1]))
        upper.set_yscale('log', base=2)
        upper.set_ylim(1, ticks[-1])
        upper.yaxis.set_major_locator(FixedLocator(ticks))
        upper.yaxis.set_minor_locator(NullLocator())
        upper.yaxis.set_major_formatter(FuncFormatter(lambda v, unused: format_bytes(int(max(v, 0)))))
        upper.legend(loc='best', fontsize='small')
        score_top, clipped = _score_axis(score)
        lower.plot(times, [float('nan') if v is None else min(v, score_top) for v in score], color='#2ca02c',
                   label='goal score (current / target)' + (', clipped at %g %%' % SCORE_CLIP if clipped else ''))
        lower.axhline(100.0, color='#c00', linestyle='--', label=target_label)
        lower.yaxis.set_major_formatter(FuncFormatter(lambda v, unused: '%g %%' % v))
        lower.set_ylim(0, score_top)
        lower.legend(loc='best', fontsize='small')
        if memory:
            bottom = axes[2]
            for name, color, values in memory:
                bottom.plot(times, [float('nan') if v is None else v for v in values], color=color, label=name)
            ticks = _memory_ticks(memory)
            bottom.set_ylim(0, ticks[-1])
            bottom.yaxis.set_major_locator(FixedLocator(ticks))
            bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, unused: format_bytes(int(max(v, 0)))))
            bottom.legend(loc='best', fontsize='small')
        axes[-1].set_xlabel('seconds')
        figure.suptitle(title)
        figure.tight_layout()
        out = io.StringIO()
        figure.savefig(out, format='svg', metadata={'Date': None})
    return out.getvalue()


def tuning_svg(sample, title='', goal=0, engine='auto'):
    """An SVG picture of a damos_sample window: effective quota and goal score against time, and
    where the host has swap, the memory paged out to it (and what zram keeps of it)."""
    times, quota, score, cap, target, metric, current, memory = _series(sample, goal)
    target_label = 'target %s' % format_goal_value(metric, target) if metric else 'target'
    title = title or 'DAMOS tuning'
    if metric:
        title += ': %s, target %s' % (metric, format_goal_value(metric, target))
    if engine not in ('auto', 'matplotlib', 'builtin'):
        raise AnsibleFilterError("damon_tuning_svg: engine %r is not one of auto, matplotlib, builtin" % (engine,))
    if engine != 'builtin':
        try:
            return _matplotlib_svg(title, times, quota, score, cap, target_label, memory)
        except ImportError:
            if engine == 'matplotlib':
                raise AnsibleFilterError('damon_tuning_svg: engine=matplotlib, but the controller Python '
                                         'cannot import matplotlib') from None
    return _builtin_svg(title, times, quota, score, cap, target_label, memory)


# ---------------------------------------------------------------- health gate

def _number(option, value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('damon_health_breaches: %s must be a number, got %r' % (option, value)) from None


def health_breaches(facts, kdamond=0, sample=None, psi_limit=10, pinned_seconds=0, error=None):
    """Why a host fails the rollout's health gate, one message per breach in a fixed order (the
    error of a failed task, the kdamond not running, memory pressure, the quota pinned at its
    cap); an empty list for a healthy host."""
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError('damon_health_breaches: expected ansible_facts.damon (a dict), got %s'
                                 % type(facts).__name__)
    if sample is not None and not isinstance(sample, Mapping):
        raise AnsibleFilterError('damon_health_breaches: sample must be the result of damos_sample (a dict), got %s'
                                 % type(sample).__name__)
    try:
        kdamond = int(kdamond)
    except (TypeError, ValueError):
        raise AnsibleFilterError('damon_health_breaches: kdamond must be an integer, got %r' % (kdamond,)) from None
    psi_limit, pinned_seconds = _number('psi_limit', psi_limit), _number('pinned_seconds', pinned_seconds)
    summary = (sample or {}).get('summary') or {}
    node = _find_kdamond(facts, kdamond)
    breaches = [str(error)] if error else []
    if node.get('state', '') != 'on' or summary.get('stopped'):
        breaches.append('kdamond %d is %s (states seen in the window: %s)' % (
            kdamond, node.get('state', 'missing'), ', '.join(str(state) for state in summary.get('states') or [])))
    psi = summary.get('psi_some_percent')
    if psi is not None and _number('the sample\'s psi_some_percent', psi) > psi_limit:
        breaches.append('memory PSI some %.2f %% of the window, above the limit of %.2f %%' % (float(psi), psi_limit))
    cap = int(_number('the sample\'s cap_bytes', summary.get('cap_bytes') or 0))
    at_cap = _number('the sample\'s at_cap_seconds', summary.get('at_cap_seconds') or 0)
    if pinned_seconds > 0 and cap > 0 and at_cap >= pinned_seconds:
        breaches.append('effective quota pinned at its cap of %s for %.0f s'
                        % (summary.get('cap_bytes_human') or format_bytes(cap), at_cap))
    return breaches


# ---------------------------------------------------------------- rollback

def previous_scheme(facts, kdamond=0, scheme=0):
    """damos_scheme options that put the scheme back as ansible_facts.damon shows it: every
    option damos_scheme has (kernel.damon's core inverts its own option-to-file mapping)."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError('damon_previous_scheme: expected ansible_facts.damon (a dict), got %s'
                                 % type(facts).__name__)
    node = _find_kdamond(facts, kdamond)
    options = {'kdamond': kdamond, 'scheme': scheme, 'running': node.get('state') == 'on'}
    found = scheme_options(node, scheme)
    if found is None:
        return dict(options, state='absent')
    return dict(options, state='present', **found)


class FilterModule(object):
    def filters(self):
        return {
            'damon_report_row': report_row,
            'damon_report_format': report_format,
            'damon_tuning_svg': tuning_svg,
            'damon_health_breaches': health_breaches,
            'damon_previous_scheme': previous_scheme,
        }
