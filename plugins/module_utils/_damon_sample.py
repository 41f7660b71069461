# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sampling one DAMOS scheme over a time window, on the host: its effective quota,
statistics, and each quota goal's current value measured the way the kernel measures it.

Pure standard library, like the rest of the core, so host-side tools can import it too; it
loads the facts, the host, the model and the units, nothing that plans or writes a
configuration.

Why on the host: the kernel never writes the value it measures for a self-measuring goal
back to ``current_value`` (damon-sysfs.md 4.1), so a goal's current value has to be
measured again here.  For ``some_mem_psi_us`` that is a difference of two PSI totals
divided by the time between them, which only the host's own monotonic clock gives
exactly; and one module call per host per window costs one connection, where a
controller polling every second would cost one task round trip per sample and host.
"""

from __future__ import annotations

import math
import os
import time

from ._damon_errors import DamonKernelError, DamonValidationError
from ._damon_facts import refresh_stats
from ._damon_model import kdamond_dir, scheme_dir
from ._damon_units import format_bytes, parse_int, parse_time

# Goal metrics whose current value this module measures, and the host files it reads.
MEASURED_METRICS = ('user_input', 'some_mem_psi_us', 'node_mem_used_bp', 'node_mem_free_bp',
                    'node_memcg_used_bp', 'node_memcg_free_bp', 'active_mem_bp', 'inactive_mem_bp')


def parse_meminfo(text):
    """/proc/meminfo or a node's meminfo -> {field: bytes}."""
    values = {}
    for line in (text or '').splitlines():
        fields = line.replace(':', ' ').split()
        # Node files start with 'Node <nid>'.
        if fields[:1] == ['Node']:
            fields = fields[2:]
        if len(fields) >= 2 and fields[1].isdigit():
            values[fields[0]] = int(fields[1]) * (1024 if fields[2:3] == ['kB'] else 1)
    return values


def parse_numa_stat(text, nid):
    """memory.numa_stat -> {stat: bytes on node nid}."""
    values = {}
    key = 'N%d=' % nid
    for line in (text or '').splitlines():
        fields = line.split()
        for field in fields[1:]:
            if field.startswith(key):
                values[fields[0]] = int(field[len(key):])
    return values


class Reading:
    """What one sample reads from the host besides the scheme's own files."""

    def __init__(self, host, when, psi, meminfo_cache):
        self.host = host
        self.when = when
        self.psi_some_total = psi['some']['total'] if psi and 'some' in psi else None
        self.psi_some_avg10 = psi['some'].get('avg10') if psi and 'some' in psi else None
        self._meminfo = meminfo_cache

    def meminfo(self, rel):
        if rel not in self._meminfo:
            self._meminfo[rel] = parse_meminfo(self.host.read_host_file(rel))
        return self._meminfo[rel]


def _ratio_bp(part, whole):
    return part * 10000 // whole if whole else None


def goal_current(goal, reading, previous, reset_interval_us):
    """A goal's current value as the kernel computes it for one charge window, or None.

    some_mem_psi_us: the stall time per charge window, from the PSI totals of this
    reading and the previous one; None for the first reading of a window.
    """
    metric = goal.get('target_metric')
    if metric == 'user_input':
        return goal.get('current_value')
    if metric == 'some_mem_psi_us':
        if previous is None or reading.psi_some_total is None or previous.psi_some_total is None:
            return None
        elapsed_us = (reading.when - previous.when) * 1e6
        if elapsed_us <= 0:
            return None
        return int(round((reading.psi_some_total - previous.psi_some_total) * reset_interval_us / elapsed_us))
    nid = goal.get('nid', 0)
    if metric in ('node_mem_used_bp', 'node_mem_free_bp'):
        info = reading.meminfo('sys/devices/system/node/node%d/meminfo' % nid)
        total, free = info.get('MemTotal'), info.get('MemFree')
        if total is None or free is None:
            return None
        return _ratio_bp(total - free if metric == 'node_mem_used_bp' else free, total)
    if metric in ('node_memcg_used_bp', 'node_memcg_free_bp'):
        total = reading.meminfo('sys/devices/system/node/node%d/meminfo' % nid).get('MemTotal')
        path = (goal.get('path') or '').strip('/')
        stat = reading.host.read_host_file('sys/fs/cgroup/%s/memory.numa_stat' % path if path
                                           else 'sys/fs/cgroup/memory.numa_stat')
        if total is None or stat is None:
            return None
        used = sum(parse_numa_stat(stat, nid).get(name, 0) for name in ('anon', 'file'))
        return _ratio_bp(used if metric == 'node_memcg_used_bp' else max(total - used, 0), total)
    if metric in ('active_mem_bp', 'inactive_mem_bp'):
        info = reading.meminfo('proc/meminfo')
        active, inactive = info.get('Active'), info.get('Inactive')
        if active is None or inactive is None:
            return None
        return _ratio_bp(active if metric == 'active_mem_bp' else inactive, active + inactive)
    return None


def _score_bp(current, target):
    """current x 10000 / target, as the kernel scores a goal; None when it cannot be scored."""
    if current is None or not target:
        return None
    return current * 10000 // target


def _read_int(host, rel, default=None):
    try:
        return int(host.read(rel))
    except (DamonKernelError, ValueError, OSError):
        return default


def _read_goals(host, scheme_path):
    goals = []
    base = scheme_path + '/quotas/goals'
    if not host.is_dir(base):
        return goals
    for index in range(_read_int(host, base + '/nr_goals', 0)):
        path = '%s/%d' % (base, index)
        # Before 6.9 there is no target_metric file: every goal is user_input.
        goal = {'target_metric': host.read(path + '/target_metric') if _exists(host, path + '/target_metric')
                else 'user_input',
                'target_value': _read_int(host, path + '/target_value', 0),
                'current_value': _read_int(host, path + '/current_value', 0)}
        if _exists(host, path + '/nid'):
            goal['nid'] = _read_int(host, path + '/nid', 0)
        if _exists(host, path + '/path'):
            goal['path'] = host.read(path + '/path')
        goals.append(goal)
    return goals


def memory_out(host, reading):
    """Where paged-out anonymous memory went: swap in use, and what the zram devices hold.

    {'swap_used_bytes': .., 'zram_orig_bytes': .., 'zram_compr_bytes': ..}; a value is None
    when the host has no swap or no zram device."""
    info = reading.meminfo('proc/meminfo')
    total, free = info.get('SwapTotal'), info.get('SwapFree')
    out = {'swap_used_bytes': total - free if total and free is not None else None,
           'zram_orig_bytes': None, 'zram_compr_bytes': None}
    try:
        devices = sorted(name for name in os.listdir(host.path('sys/block')) if name.startswith('zram'))
    except OSError:
        devices = []
    for name in devices:
        # mm_stat: orig_data_size compr_data_size mem_used_total ... (bytes).
        fields = (host.read_host_file('sys/block/%s/mm_stat' % name) or '').split()
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
            out['zram_orig_bytes'] = (out['zram_orig_bytes'] or 0) + int(fields[0])
            out['zram_compr_bytes'] = (out['zram_compr_bytes'] or 0) + int(fields[1])
    return out


def _exists(host, rel):
    return os.path.exists(host.admin_path(rel))


def take_sample(host, kdamond, scheme, refresh, previous, started, clock, meminfo_cache):
    """One sample: refresh (managed, running kdamonds only), then read."""
    kdamond_path = kdamond_dir(kdamond)
    path = scheme_dir(kdamond, scheme)
    state = host.read(kdamond_path + '/state')
    if refresh and state == 'on':
        with host.lock():
            refresh_stats(host, kdamond)
        state = host.read(kdamond_path + '/state')
    meminfo_cache.clear()
    reading = Reading(host, clock(), host.memory_psi(), meminfo_cache)
    reset_interval_ms = _read_int(host, path + '/quotas/reset_interval_ms', 0)
    goals = _read_goals(host, path)
    measured = []
    for goal in goals:
        current = goal_current(goal, reading, previous.reading if previous else None,
                               (reset_interval_ms or 1000) * 1000)
        measured.append({'target_metric': goal['target_metric'], 'target_value': goal['target_value'],
                         'current_value': current, 'score_bp': _score_bp(current, goal['target_value'])})
    scores = [goal['score_bp'] for goal in measured if goal['score_bp'] is not None]
    sample = {
        'time': round(reading.when - started, 3),
        'state': state,
        'effective_bytes': _read_int(host, path + '/quotas/effective_bytes'),
        'bytes': _read_int(host, path + '/quotas/bytes', 0),
        'sz_applied': _read_int(host, path + '/stats/sz_applied'),
        'qt_exceeds': _read_int(host, path + '/stats/qt_exceeds'),
        'psi_some_total': reading.psi_some_total,
        'psi_some_avg10': reading.psi_some_avg10,
        'goals': measured,
        # The kernel tunes towards the goal with the highest score (damon-sysfs.md 4.2).
        'score_bp': max(scores) if scores else None,
    }
    sample.update(memory_out(host, reading))
    return _Sample(sample, reading)


class _Sample:
    def __init__(self, data, reading):
        self.data = data
        self.reading = reading


def summarize(samples, interval_s):
    """Window summary used by the rollout's health gate."""
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    cap = last.get('bytes') or 0
    run = 0
    if cap:
        for sample in reversed(samples):
            if sample.get('state') != 'on' or (sample.get('effective_bytes') or 0) < cap:
                break
            run += 1
    psi_percent = None
    elapsed = (last.get('time') or 0) - (first.get('time') or 0)
    if elapsed > 0 and last.get('psi_some_total') is not None and first.get('psi_some_total') is not None:
        psi_percent = round((last['psi_some_total'] - first['psi_some_total']) / (elapsed * 1e6) * 100, 3)
    driving = [goal for goal in last.get('goals', []) if goal.get('score_bp') == last.get('score_bp')]
    return {
        'samples': len(samples),
        'seconds': round(elapsed, 3),
        'states': sorted({sample.get('state') for sample in samples}),
        'stopped': any(sample.get('state') != 'on' for sample in samples),
        'cap_bytes': cap,
        'cap_bytes_human': format_bytes(cap) if cap else 'none',
        # In whole sampling intervals, so that a window sampled at cap throughout reads
        # exactly its length whatever the read latencies.
        'at_cap_seconds': round(max(run - 1, 0) * interval_s, 3),
        'at_cap_whole_window': bool(cap) and run == len(samples) and run > 0,
        'effective_bytes': last.get('effective_bytes'),
        'effective_bytes_min': min((s['effective_bytes'] for s in samples if s.get('effective_bytes') is not None),
                                   default=None),
        'effective_bytes_max': max((s['effective_bytes'] for s in samples if s.get('effective_bytes') is not None),
                                   default=None),
        'score_bp': last.get('score_bp'),
        'current_value': driving[0]['current_value'] if driving else None,
        'psi_some_percent': psi_percent,
        'psi_some_avg10': last.get('psi_some_avg10'),
    }


def sample_scheme(host, params, clock=time.monotonic):
    """damos_sample: sample scheme `scheme` of kdamond `kdamond` every `interval` for `duration`."""
    kdamond = parse_int('kdamond', params.get('kdamond', 0) or 0)
    scheme = parse_int('scheme', params.get('scheme', 0) or 0)
    duration_us = parse_time('duration', params.get('duration') or 0)
    interval_us = parse_time('interval', params.get('interval') or '1s')
    if interval_us < 10000:
        raise DamonValidationError('interval', params.get('interval'), 'a time of at least 10ms, such as 1s')
    refresh = params.get('refresh', True)
    if not host.available():
        raise DamonValidationError('kdamond', kdamond, 'a kdamond of DAMON sysfs, which this host does not have '
                                                       '(%s is missing)' % host.shown(host.admin))
    count = int(host.read('kdamonds/nr_kdamonds'))
    if kdamond >= count or not host.is_dir(scheme_dir(kdamond, scheme)):
        raise DamonValidationError('scheme', scheme, 'an existing scheme of kdamond %d (the host has %d kdamonds%s)'
                                   % (kdamond, count, '' if kdamond >= count else
                                      ', kdamond %d has %s schemes' % (kdamond, _schemes(host, kdamond))))
    managed = kdamond in host.managed()
    refresh = bool(refresh) and managed
    interval_s = interval_us / 1e6
    steps = int(math.ceil(duration_us / float(interval_us))) if duration_us else 0
    started = clock()
    samples, previous, cache = [], None, {}
    for step in range(steps + 1):
        delay = started + step * interval_s - clock()
        if step and delay > 0:
            host.sleep(delay)
        current = take_sample(host, kdamond, scheme, refresh, previous, started, clock, cache)
        samples.append(current.data)
        previous = current
    warnings = []
    if not managed:
        warnings.append('kdamond %d was not configured by kernel.damon: its stats and effective quota were not '
                        'refreshed and show what its owner last requested' % kdamond)
    return {'changed': False, 'kdamond': kdamond, 'scheme': scheme, 'interval': interval_s,
            'samples': samples, 'summary': summarize(samples, interval_s), 'warnings': warnings}


def _schemes(host, kdamond):
    path = 'kdamonds/%d/contexts' % kdamond
    if _read_int(host, path + '/nr_contexts', 0) < 1:
        return 'no context and no'
    return str(_read_int(host, path + '/0/schemes/nr_schemes', 0))
