# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics: DAMON's state (the part of the facts, gather_facts(), that they show,
read by metrics_facts()) and the score feeder's state in Prometheus' text format, and the
atomic write of a *.prom file into node_exporter's textfile collector directory.  The role's
metrics unit (damos-autotune metrics) calls collect() and write_textfile() every refresh;
README "Metrics" lists the names, which are a contract.

Part of the core (docs/design.md, "Layers"): pure standard library; depends on _damon_facts
and _damon_host.
"""

from __future__ import annotations

import errno
import os
import stat

from ._damon_errors import DamonError, DamonKernelError, DamonLockBusyError
from ._damon_facts import refresh_stats
from ._damon_model import kdamond_dir

SCHEME_LABELS = ('kdamond', 'context', 'scheme')
GOAL_LABELS = SCHEME_LABELS + ('goal', 'metric')
FEEDER_LABELS = SCHEME_LABELS + ('goal',)

# name: (type, help, labels).  Base units (bytes, seconds); counters end in _total.
FAMILIES = {
    'damon_available': ('gauge', "1 when the kernel has DAMON's sysfs interface.", ()),
    'damon_metrics_refresh_timestamp_seconds': ('gauge', 'When these metrics were read (Unix time).', ()),
    'damon_metrics_refresh_interval_seconds': ('gauge', 'How often the writer refreshes these metrics.', ()),
    'damon_kdamond_running': ('gauge', '1 while the kdamond runs (state on).', ('kdamond',)),
    'damon_kdamond_pid': ('gauge', "The kdamond's pid; -1 while it is off.", ('kdamond',)),
    'damon_kdamond_restarts_total': ('counter', "Times the kdamond's pid changed to a new one while the writer ran.",
                                     ('kdamond',)),
    'damon_kdamond_refresh_interval_seconds': ('gauge', 'How often the kernel itself copies stats and effective '
                                               'quotas to sysfs (refresh_ms); 0: only when asked.', ('kdamond',)),
    'damon_scheme_info': ('gauge', "A scheme's operations set and action, as labels; always 1.",
                          SCHEME_LABELS + ('operations', 'action')),
    'damon_scheme_effective_quota_bytes': ('gauge', 'The size quota the kernel applies now (auto-tuned by goals).',
                                           SCHEME_LABELS),
    'damon_scheme_quota_size_bytes': ('gauge', 'The configured size quota; 0: none.', SCHEME_LABELS),
    'damon_scheme_quota_time_seconds': ('gauge', 'The configured time quota; 0: none.', SCHEME_LABELS),
    'damon_scheme_quota_reset_interval_seconds': ('gauge', 'The quota charge reset interval.', SCHEME_LABELS),
    'damon_scheme_tried_regions_total': ('counter', 'Regions the scheme was tried on (nr_tried).', SCHEME_LABELS),
    'damon_scheme_tried_bytes_total': ('counter', 'Bytes the scheme was tried on (sz_tried).', SCHEME_LABELS),
    'damon_scheme_applied_regions_total': ('counter', 'Regions the action was applied to (nr_applied).',
                                           SCHEME_LABELS),
    'damon_scheme_applied_bytes_total': ('counter', 'Bytes the action was applied to (sz_applied).', SCHEME_LABELS),
    'damon_scheme_quota_exceeds_total': ('counter', 'Times the quota was exceeded (qt_exceeds).', SCHEME_LABELS),
    'damon_goal_target_value': ('gauge', "A quota goal's target value, in the metric's unit.", GOAL_LABELS),
    'damon_goal_current_value': ('gauge', "A quota goal's current value, in the metric's unit.", GOAL_LABELS),
    'damon_memory_pressure_some_seconds_total': ('counter', 'Time some task stalled on memory (PSI).', ()),
    'damon_memory_pressure_full_seconds_total': ('counter', 'Time all non-idle tasks stalled on memory (PSI).', ()),
    'damon_feeder_last_score': ('gauge', 'The value the feeder last fed: the score, or the target while frozen.',
                                FEEDER_LABELS),
    'damon_feeder_last_update_timestamp_seconds': ('gauge', 'When the feeder last read a valid, fresh score '
                                                   '(Unix time).', FEEDER_LABELS),
    'damon_feeder_rejected_scores_total': ('counter', 'Scores the feeder read and rejected (not a valid number).',
                                           FEEDER_LABELS),
    'damon_feeder_stale': ('gauge', '1 while the feeder feeds the target because no valid score came in time.',
                           FEEDER_LABELS),
    'damon_feeder_writes_total': ('counter', 'Values the feeder wrote to current_value.', FEEDER_LABELS),
}


class Restarts:
    """damon_kdamond_restarts_total: how often each kdamond's pid changed to a new one, from
    one refresh to the next, while this writer runs (a counter that starts at 0 with it)."""

    def __init__(self):
        self.pids, self.counts = {}, {}

    def update(self, kdamonds):
        for kdamond in kdamonds:
            index, pid = kdamond['index'], kdamond['pid']
            self.counts.setdefault(index, 0)
            if pid <= 0:
                continue
            if self.pids.get(index, pid) != pid:
                self.counts[index] += 1
            self.pids[index] = pid
        return self.counts


def _label_value(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _number(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render(samples):
    """Prometheus' text format of samples [(name, labels, value)]: each family once, with its
    HELP and TYPE, in FAMILIES' order; names outside FAMILIES are a programming error."""
    by_name = {}
    for name, labels, value in samples:
        if name not in FAMILIES:
            raise KeyError(name)
        by_name.setdefault(name, []).append((labels, value))
    lines = []
    for name, (kind, help_text, unused) in FAMILIES.items():
        if name not in by_name:
            continue
        lines += ['# HELP %s %s' % (name, help_text), '# TYPE %s %s' % (name, kind)]
        for labels, value in by_name[name]:
            shown = ','.join('%s="%s"' % (key, _label_value(labels[key])) for key in sorted(labels))
            lines.append('%s%s %s' % (name, '{%s}' % shown if shown else '', _number(value)))
    return '\n'.join(lines) + '\n'


def _scheme_samples(kdamond, cindex, context, sindex, scheme):
    labels = {'kdamond': kdamond['index'], 'context': cindex, 'scheme': sindex}
    quotas, stats = scheme.get('quotas', {}), scheme.get('stats', {})
    yield 'damon_scheme_info', dict(labels, operations=context.get('operations', ''),
                                    action=scheme.get('action', '')), 1
    for name, key, scale in (('damon_scheme_effective_quota_bytes', 'effective_bytes', 1),
                             ('damon_scheme_quota_size_bytes', 'bytes', 1),
                             ('damon_scheme_quota_time_seconds', 'ms', 1000),
                             ('damon_scheme_quota_reset_interval_seconds', 'reset_interval_ms', 1000)):
        if isinstance(quotas.get(key), int):
            yield name, labels, quotas[key] if scale == 1 else quotas[key] / scale
    for name, key in (('damon_scheme_tried_regions_total', 'nr_tried'), ('damon_scheme_tried_bytes_total', 'sz_tried'),
                      ('damon_scheme_applied_regions_total', 'nr_applied'),
                      ('damon_scheme_applied_bytes_total', 'sz_applied'),
                      ('damon_scheme_quota_exceeds_total', 'qt_exceeds')):
        if isinstance(stats.get(key), int):
            yield name, labels, stats[key]
    for gindex, goal in enumerate(quotas.get('goals', [])):
        goal_labels = dict(labels, goal=gindex, metric=goal.get('target_metric', 'user_input'))
        yield 'damon_goal_target_value', goal_labels, goal['target_value']
        yield 'damon_goal_current_value', goal_labels, goal['current_value']


def samples(facts, now, interval, restarts, feeders=()):
    """[(name, labels, value)] of the facts (gather_facts), the time of the refresh (Unix
    seconds), the refresh interval (seconds), Restarts, and the feeders' states: dicts with
    kdamond, scheme, goal and the state keys of the feeder (fed, valid_ns, rejected, frozen,
    writes)."""
    out = [('damon_available', {}, facts['available']), ('damon_metrics_refresh_timestamp_seconds', {}, now),
           ('damon_metrics_refresh_interval_seconds', {}, interval)]
    counts = restarts.update(facts['kdamonds'])
    for kdamond in facts['kdamonds']:
        labels = {'kdamond': kdamond['index']}
        out += [('damon_kdamond_running', labels, kdamond['state'] == 'on'),
                ('damon_kdamond_pid', labels, kdamond['pid']),
                ('damon_kdamond_restarts_total', labels, counts[kdamond['index']])]
        if isinstance(kdamond.get('refresh_ms'), int):
            out.append(('damon_kdamond_refresh_interval_seconds', labels, kdamond['refresh_ms'] / 1000))
        for cindex, context in enumerate(kdamond['contexts']):
            for sindex, scheme in enumerate(context.get('schemes', [])):
                out += _scheme_samples(kdamond, cindex, context, sindex, scheme)
    psi = facts.get('memory_psi') or {}
    for kind in ('some', 'full'):
        if isinstance(psi.get(kind, {}).get('total'), int):
            out.append(('damon_memory_pressure_%s_seconds_total' % kind, {}, psi[kind]['total'] / 1e6))
    for feeder in feeders:
        labels = {'kdamond': feeder['kdamond'], 'context': 0, 'scheme': feeder['scheme'], 'goal': feeder['goal']}
        if feeder.get('fed'):
            out.append(('damon_feeder_last_score', labels, feeder['fed'][1]))
        if feeder.get('valid_ns'):
            out.append(('damon_feeder_last_update_timestamp_seconds', labels, feeder['valid_ns'] / 1e9))
        out += [('damon_feeder_rejected_scores_total', labels, feeder.get('rejected', 0)),
                ('damon_feeder_stale', labels, bool(feeder.get('frozen'))),
                ('damon_feeder_writes_total', labels, feeder.get('writes', 0))]
    return out


def _optional(host, rel):
    """The value of a file that older kernels do not have, or None there."""
    try:
        return host.read(rel)
    except DamonKernelError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _count(host, rel):
    """The number in an nr_* file, 0 where the directory is not there."""
    return int(_optional(host, rel) or 0)


def _numbers(host, directory, names):
    found = {}
    for name in names:
        value = _optional(host, directory + '/' + name)
        if value is not None:
            found[name] = int(value)
    return found


def metrics_facts(host):
    """The part of gather_facts() that samples() shows, read from those files only: a third
    of the files gather_facts() reads, and none of its directory walks or feature probes (a
    refresh runs every few seconds on every host; README "Measured").  The lists follow the
    nr_* files, which the kernel keeps equal to the numbered directories."""
    facts = {'available': host.available(), 'memory_psi': host.memory_psi(), 'kdamonds': []}
    if not facts['available']:
        return facts
    for index in range(int(host.read('kdamonds/nr_kdamonds'))):
        base = kdamond_dir(index)
        kdamond = {'index': index, 'state': host.read(base + '/state'), 'pid': int(host.read(base + '/pid')),
                   'contexts': []}
        kdamond.update(_numbers(host, base, ('refresh_ms',)))
        for cindex in range(_count(host, base + '/contexts/nr_contexts')):
            cbase = '%s/contexts/%d' % (base, cindex)
            context = {'operations': host.read(cbase + '/operations'), 'schemes': []}
            for sindex in range(_count(host, cbase + '/schemes/nr_schemes')):
                sbase = '%s/schemes/%d' % (cbase, sindex)
                quotas = _numbers(host, sbase + '/quotas', ('ms', 'bytes', 'reset_interval_ms', 'effective_bytes'))
                quotas['goals'] = []
                for gindex in range(_count(host, sbase + '/quotas/goals/nr_goals')):
                    gbase = '%s/quotas/goals/%d' % (sbase, gindex)
                    goal = _numbers(host, gbase, ('target_value', 'current_value'))
                    metric = _optional(host, gbase + '/target_metric')
                    if metric is not None:
                        goal['target_metric'] = metric
                    quotas['goals'].append(goal)
                context['schemes'].append({
                    'action': host.read(sbase + '/action'), 'quotas': quotas,
                    'stats': _numbers(host, sbase + '/stats', ('nr_tried', 'sz_tried', 'nr_applied', 'sz_applied',
                                                               'qt_exceeds'))})
            kdamond['contexts'].append(context)
        facts['kdamonds'].append(kdamond)
    return facts


def refresh_managed(host):
    """Ask the running kdamonds this collection configured, whose kernel does not refresh them
    itself (refresh_ms), to copy their stats and effective quotas to sysfs.  Never waits for
    the collection's lock: a writer that holds it is left alone, and this refresh shows the
    stats as they were (False)."""
    if not host.available():
        return True
    count = int(host.read('kdamonds/nr_kdamonds'))
    due = [index for index in sorted(host.managed()) if index < count
           and host.read(kdamond_dir(index) + '/state') == 'on'
           and not int(_optional(host, kdamond_dir(index) + '/refresh_ms') or 0)]
    if not due:
        return True
    timeout = host.lock_timeout
    host.lock_timeout = 0.0
    try:
        with host.lock():
            for index in due:
                refresh_stats(host, index)
    except DamonLockBusyError:
        return False
    finally:
        host.lock_timeout = timeout
    return True


def collect(host, now, interval, restarts, feeders=()):
    """The metrics text of one refresh (the stats refreshed first where they may be)."""
    refresh_managed(host)
    return render(samples(metrics_facts(host), now, interval, restarts, feeders))


def open_collector_dir(path, allow_uid=None):
    """An O_DIRECTORY descriptor of the textfile collector's directory, refused (DamonError)
    when it is reached through a symlink, is not root's (or allow_uid's, for tests) or
    others may write to it: whoever may write there could swap the file under node_exporter."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise DamonError('cannot open the metrics directory %s: %s' % (path, os.strerror(err.errno))) from None
    info = os.fstat(fd)
    problem = None
    if info.st_uid not in (0, allow_uid):
        problem = 'owned by uid %d, not root' % info.st_uid
    elif info.st_mode & 0o022:
        problem = 'writable by group or others (mode %04o)' % stat.S_IMODE(info.st_mode)
    if problem:
        os.close(fd)
        raise DamonError('the metrics directory %s is %s; metrics are written only into a directory that only '
                         'root may write' % (path, problem))
    return fd


def _temporary_writer(entry, name):
    """The pid in a temporary file name of write_textfile() for name, or None."""
    prefix, suffix = '.%s.' % name, '.tmp'
    pid = entry[len(prefix):-len(suffix)] if entry.startswith(prefix) and entry.endswith(suffix) else ''
    return int(pid) if pid.isdigit() and pid.isascii() else None


def write_textfile(directory, name, text, allow_uid=None):
    """Replace directory/name with text, atomically: node_exporter reads either the old file
    or the new one, never a part (a temporary file that its collector ignores, not *.prom,
    renamed over it)."""
    dir_fd = open_collector_dir(directory, allow_uid)
    temporary = '.%s.%d.tmp' % (name, os.getpid())
    try:
        # Ours from an earlier process with this pid, or one a writer killed mid-write left.
        for entry in os.listdir(dir_fd):
            writer = _temporary_writer(entry, name)
            if writer is not None and (writer == os.getpid() or not os.path.exists('/proc/%d' % writer)):
                try:
                    os.unlink(entry, dir_fd=dir_fd)
                except FileNotFoundError:
                    pass
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=dir_fd)
        try:
            os.fchmod(fd, 0o644)
            data = text.encode('utf-8')
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
