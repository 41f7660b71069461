# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DAMON/DAMOS model shared by the kernel.damon modules, the score feeder and the boot
re-apply unit: units and validation, planning with minimal writes, applying, committing,
restoring, and the feeder's primitives, on top of _damon_sysfs (the kernel side: features,
sysfs I/O, the lock, ownership, reading the tree, facts).

Pure standard library on purpose: both files are installed on managed hosts and imported
there without Ansible.  See docs/design.md for the contract.
"""

from __future__ import annotations

import json
import os
import re
from functools import partial
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ._damon_sysfs import (
    ACTIONS,
    CORE_FILTER_TYPES,
    FILTER_TYPES,
    GOAL_METRICS,
    GOAL_TUNERS,
    INT_MAX,
    PADDR_ACTIONS,
    UINT_MAX,
    ULONG_MAX,
    VADDR_ACTIONS,
    WATERMARK_METRICS,
    DamonConflictError,
    DamonError,
    DamonKernelError,
    DamonUnavailableError,
    DamonValidationError,
    _is_count_file,
    _nr_file,
    _plain_int,
    _since,
    _sysfs_value,
    nest,
    parse_int,
    read_state_file,
    read_tree,
    remove_state_file,
    subtree,
    tree_order_key,
    write_state_file,
)

COMMIT_KEYWORDS = ('commit', 'commit_schemes_quota_goals')


# ---------------------------------------------------------------- errors

def _append_note(err, note):
    """Extend an error's message in place, keeping its class for callers."""
    if note:
        err.args = ('%s; %s' % (err, note),)
    return err


# ---------------------------------------------------------------- units

_TIME_NS = {'ns': 1, 'us': 10 ** 3, '\u00b5s': 10 ** 3, 'ms': 10 ** 6, 's': 10 ** 9,
            'm': 60 * 10 ** 9, 'h': 3600 * 10 ** 9}
_SIZE_BYTES = {'b': 1, 'k': 2 ** 10, 'kib': 2 ** 10, 'm': 2 ** 20, 'mib': 2 ** 20,
               'g': 2 ** 30, 'gib': 2 ** 30, 't': 2 ** 40, 'tib': 2 ** 40}
_NUMBER_WITH_SUFFIX = re.compile(r'^\s*([0-9]+(?:\.[0-9]*)?)\s*(\S*)\s*$')

SIZE_ACCEPTED = "a size in bytes (int) or with K/M/G/T suffix, or 'max'"
RATIO_ACCEPTED = "basis points from 0 to 10000 (int), 'N%' up to 100% or 'Nbp'"


def _suffixed(value, suffixes, lower=False):
    """(Decimal amount, suffix) for strings like '1.5s', or None."""
    if not isinstance(value, str):
        return None
    match = _NUMBER_WITH_SUFFIX.match(value)
    if not match:
        return None
    suffix = match.group(2).lower() if lower else match.group(2)
    if suffix not in suffixes:
        return None
    try:
        return Decimal(match.group(1)), suffix
    except InvalidOperation:
        return None


def _whole(amount):
    return int(amount) if amount == amount.to_integral_value() else None


def _round(amount):
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_bool(option, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('y', 'yes', 'true', 'on', '1'):
        return True
    if text in ('n', 'no', 'false', 'off', '0'):
        return False
    raise DamonValidationError(option, value, 'a boolean')


def parse_choice(option, value, choices):
    if value not in choices:
        raise DamonValidationError(option, value, 'one of ' + ', '.join(choices))
    return value


def parse_time(option, value, unit='us', maximum=ULONG_MAX):
    """A duration as a whole number of `unit` (the unit of the sysfs file behind option,
    an unsigned long for every duration DAMON has)."""
    number = _plain_int(value)
    if number is None or number < 0:
        parsed = _suffixed(value, _TIME_NS)
        number = None if parsed is None else _whole(parsed[0] * _TIME_NS[parsed[1]] / _TIME_NS[unit])
    if number is not None and 0 <= number <= maximum:
        return number
    raise DamonValidationError(option, value, 'an integer number of %s, or a number with ns/us/ms/s/m/h '
                                              'that is a whole number of %s; at most %d %s'
                                              % (unit, unit, maximum, unit))


def parse_size(option, value):
    number = _plain_int(value)
    if number is not None and 0 <= number <= ULONG_MAX:
        return number
    if isinstance(value, str) and value.strip().lower() == 'max':
        return ULONG_MAX
    parsed = _suffixed(value, _SIZE_BYTES, lower=True)
    if parsed is not None:
        result = _whole(parsed[0] * _SIZE_BYTES[parsed[1]])
        if result is not None and result <= ULONG_MAX:
            return result
    raise DamonValidationError(option, value, SIZE_ACCEPTED)


def parse_ratio(option, value):
    """Basis points (1/10000) of a whole, so at most 10000 (100%)."""
    number = _plain_int(value)
    if number is None:
        parsed = _suffixed(value, ('%', 'bp'))
        if parsed is not None:
            number = _whole(parsed[0] * (100 if parsed[1] == '%' else 1))
    if number is not None and 0 <= number <= 10000:
        return number
    raise DamonValidationError(option, value, RATIO_ACCEPTED)


def parse_access_rate(option, value, max_samples):
    """Samples per aggregation interval; 'N%' is relative to aggr/sample (rounded)."""
    number = _plain_int(value)
    if number is not None and 0 <= number <= ULONG_MAX:
        return number
    parsed = _suffixed(value, ('%',))
    if parsed is not None and parsed[0] <= 100:
        return _round(parsed[0] * max_samples / 100)
    raise DamonValidationError(option, value, "samples per aggregation interval (int, %d is every sample here, "
                                              "at most %d) or 'N%%' of every sample" % (max_samples, ULONG_MAX))


def parse_age(option, value, aggr_us):
    """Aggregation intervals; a time is divided by the aggregation interval (rounded)."""
    number = _plain_int(value)
    if isinstance(value, str) and value.strip().lower() == 'max':
        return ULONG_MAX
    if number is None or number < 0:
        parsed = _suffixed(value, _TIME_NS)
        if parsed is not None and aggr_us > 0:
            number = _round(parsed[0] * _TIME_NS[parsed[1]] / _TIME_NS['us'] / aggr_us)
    if number is not None and 0 <= number <= ULONG_MAX:
        return number
    raise DamonValidationError(option, value, "aggregation intervals (int), a time such as '2m', or 'max'; at "
                                              "most %d aggregation intervals" % ULONG_MAX)


def format_us(value):
    """Microseconds in the largest unit that keeps the value whole: '500 us', '1 s'."""
    for factor, unit in ((3600 * 10 ** 6, 'h'), (60 * 10 ** 6, 'm'), (10 ** 6, 's'), (10 ** 3, 'ms')):
        if value and value % factor == 0:
            return '%d %s' % (value // factor, unit)
    return '%d us' % value


# ---------------------------------------------------------------- planning

def plan_writes(current, desired):
    """The writes that turn the current flat map into the desired one, in tree order.

    An nr_* file is written only when its count changes; the kernel then recreates every
    child with defaults, so every desired file below it is rewritten.
    """
    writes, recreated = [], []
    for rel in sorted(desired, key=tree_order_key):
        value = desired[rel]
        if any(rel.startswith(prefix) for prefix in recreated):
            writes.append((rel, value))
        elif current.get(rel) != value:
            writes.append((rel, value))
            if _is_count_file(rel):
                recreated.append(rel.rsplit('/', 1)[0] + '/')
    return writes


def commit_keyword(writes):
    """Goal-only changes are merged with commit_schemes_quota_goals, which keeps the
    aggregation schedule; anything else needs a full commit."""
    if all('/quotas/goals/' in write[0] for write in writes):
        return 'commit_schemes_quota_goals'
    return 'commit'


class _Stage:
    """The desired flat map, built as the current one plus modifications."""

    def __init__(self, host, current):
        self.host = host
        self.current = current
        self.desired = dict(current)
        self.warnings = []

    def get(self, rel, default=None):
        return self.desired.get(rel, default)

    def set(self, rel, value):
        self.desired[rel] = _sysfs_value(value)

    def count(self, dirpath):
        return int(self.desired.get(_nr_file(dirpath), '0'))

    def is_new(self, dirpath):
        """True for a directory that does not exist yet (its files get creation defaults)."""
        return not any(rel.startswith(dirpath + '/') for rel in self.current)

    def set_count(self, dirpath, count):
        self.desired[_nr_file(dirpath)] = str(count)
        for rel in list(self.desired):
            index = _child_index(rel, dirpath)
            if index is not None and index >= count:
                del self.desired[rel]

    def remove_child(self, dirpath, removed):
        """Drop child `removed`; later children move down one index, as after nr_* shrinks."""
        count = self.count(dirpath)
        moved = {}
        for rel, value in self.desired.items():
            index = _child_index(rel, dirpath)
            if index is None or index < removed:
                moved[rel] = value
            elif index > removed:
                moved['%s/%d%s' % (dirpath, index - 1, rel[len('%s/%d' % (dirpath, index)):])] = value
        self.desired = moved
        self.set_count(dirpath, count - 1)


def _child_index(rel, dirpath):
    if not rel.startswith(dirpath + '/'):
        return None
    first = rel[len(dirpath) + 1:].split('/', 1)
    return int(first[0]) if len(first) == 2 and first[0].isdigit() else None


# ---------------------------------------------------------------- option helpers

def _suboptions(option, value, allowed):
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - set(allowed):
        raise DamonValidationError(option, value, 'a dict with keys ' + ', '.join(allowed))
    return value


def _list_option(option, value):
    if not isinstance(value, list):
        raise DamonValidationError(option, value, 'a list')
    return value


def _require_keyword(host, option, value, table, extra=None):
    """A keyword the running kernel accepts, else say which release added it."""
    supported = [name for name in host.supported(table) if extra is None or name in extra]
    if value in supported:
        return value
    if value in table and host.version < table[value]:
        accepted = '%s (%s needs %s or later; this host runs %s)' % (
            ', '.join(supported), value, _since(table[value]), host.release)
    else:
        accepted = ', '.join(supported)
    raise DamonValidationError(option, value, accepted)


def _node(host, option, value):
    nid = parse_int(option, value, minimum=0, maximum=INT_MAX)
    nodes = host.memory_nodes()
    if nid not in nodes:
        # An invalid or memoryless nid crashed the kdamond before a 2026 stable fix.
        raise DamonValidationError(option, value, 'a node with memory (has_memory: %s)'
                                   % ','.join(str(n) for n in sorted(nodes)))
    return nid


def _memcg_problem(host, cgroup):
    """Why DAMON would not find cgroup among the memory cgroups at on/commit time (the
    kernel then answers ENOMEM, or stops the kdamond before 6.14), or None."""
    if not host.cgroup_exists(cgroup):
        return 'an existing cgroup (no directory %s)' % host.shown(host.path('sys/fs/cgroup' + cgroup))
    if not host.cgroup_has_memory(cgroup):
        parent = host.path('sys/fs/cgroup/%s/cgroup.subtree_control' % cgroup.strip('/').rpartition('/')[0])
        return ('a cgroup with the memory controller (%s is not enabled for it: +memory in %s)'
                % (cgroup, host.shown(os.path.normpath(parent))))
    return None


def _cgroup(host, option, value):
    if not isinstance(value, str) or not value.strip('/'):
        raise DamonValidationError(option, value, 'a cgroup path such as /workload.slice')
    parts = [part for part in value.split('/') if part]
    if '.' in parts or '..' in parts:
        raise DamonValidationError(option, value, 'a cgroup path without . or .. components')
    # The kernel compares with cgroup_path(): one leading '/', single slashes.
    cgroup = '/' + '/'.join(parts)
    problem = _memcg_problem(host, cgroup)
    if problem:
        raise DamonValidationError(option, value, problem)
    return cgroup


def _set_from(st, option, values, specs, created):
    """Stage files from a dict option: specs is [(key, file, parse, creation default)]."""
    for key, rel, parse, default in specs:
        if values.get(key) is not None:
            st.set(rel, parse('%s.%s' % (option, key), values[key]))
        elif created and default is not None:
            st.set(rel, default)


def _int_of(st, rel, default=0):
    return int(st.get(rel, str(default)))


# ---------------------------------------------------------------- context and targets

def _stage_context(st, context, params):
    """Operations, monitoring attributes and the target; returns the operations set."""
    host = st.host
    created = st.is_new(context)
    operations_now = st.get(context + '/operations')
    operations = params.get('operations')
    if operations is not None:
        parse_choice('operations', operations, host.operations())
    else:
        operations = 'paddr' if created else operations_now
    if created or operations != operations_now:
        st.set(context + '/operations', operations)
    _stage_monitoring_attrs(st, context + '/monitoring_attrs', params, created)
    _stage_target(st, context + '/targets', params, operations, created or operations != operations_now)
    return operations


def _stage_monitoring_attrs(st, attrs, params, created):
    intervals = attrs + '/intervals'
    goal = _suboptions('intervals_goal', params.get('intervals_goal'),
                       ('access_bp', 'aggrs', 'min_sample', 'max_sample'))
    if goal:
        st.host.require('intervals_goal', 'intervals_goal', params.get('intervals_goal'))
        _set_from(st, 'intervals_goal', goal, [
            ('access_bp', intervals + '/intervals_goal/access_bp', parse_ratio, None),
            ('aggrs', intervals + '/intervals_goal/aggrs', parse_int, None),
            ('min_sample', intervals + '/intervals_goal/min_sample_us', parse_time, None),
            ('max_sample', intervals + '/intervals_goal/max_sample_us', parse_time, None)], False)
    given = _suboptions('intervals', params.get('intervals'), ('sample', 'aggr', 'update'))
    tuned = _int_of(st, intervals + '/intervals_goal/aggrs') != 0
    if tuned and not created and (given.get('sample') is not None or given.get('aggr') is not None):
        # The kernel rewrites sample_us/aggr_us while it tunes them; comparing them would
        # report a change on every run.
        st.warnings.append('intervals.sample/aggr are auto-tuned (intervals_goal.aggrs is not 0); '
                           'the given values apply only when the context is created')
        given = {'update': given.get('update')}
    _set_from(st, 'intervals', given, [
        ('sample', intervals + '/sample_us', parse_time, 5000),
        ('aggr', intervals + '/aggr_us', parse_time, 100000),
        ('update', intervals + '/update_us', parse_time, 1000000)], created)
    _set_from(st, 'nr_regions', _suboptions('nr_regions', params.get('nr_regions'), ('min', 'max')), [
        ('min', attrs + '/nr_regions/min', parse_int, 10),
        ('max', attrs + '/nr_regions/max', parse_int, 1000)], created)
    _check_monitoring_attrs(st, attrs, params)


def _check_monitoring_attrs(st, attrs, params):
    """What on/commit would reject with a bare EINVAL, said with option names."""
    intervals = attrs + '/intervals'
    sample, aggr = _int_of(st, intervals + '/sample_us'), _int_of(st, intervals + '/aggr_us')
    if sample > aggr:
        raise DamonValidationError('intervals.sample', (params.get('intervals') or {}).get('sample', sample),
                                   'at most intervals.aggr (%s)' % format_us(aggr))
    low, high = _int_of(st, attrs + '/nr_regions/min', 10), _int_of(st, attrs + '/nr_regions/max', 1000)
    if low < 3 or low > high:
        raise DamonValidationError('nr_regions', {'min': low, 'max': high}, 'min of at least 3 and at most max')
    if _int_of(st, intervals + '/intervals_goal/aggrs'):
        lowest = _int_of(st, intervals + '/intervals_goal/min_sample_us')
        highest = _int_of(st, intervals + '/intervals_goal/max_sample_us')
        if not lowest <= sample <= highest:
            raise DamonValidationError('intervals_goal', params.get('intervals_goal'),
                                       'min_sample <= intervals.sample (%s) <= max_sample' % format_us(sample))


def _resolve_pid(host, params):
    given = [name for name in ('pid', 'pidfile', 'systemd_unit') if params.get(name) is not None]
    if len(given) > 1:
        raise DamonValidationError(given[1], params[given[1]], 'only one of pid, pidfile, systemd_unit')
    if not given:
        return None
    name = given[0]
    if name == 'pid':
        pid = parse_int('pid', params['pid'], minimum=1, maximum=INT_MAX)
    elif name == 'pidfile':
        # Read as root from a file a workload may write: see Host.pidfile_pid for the rules.
        pid = host.pidfile_pid(params['pidfile'])
    else:
        pid = host.unit_main_pid(params['systemd_unit'])
    if not host.pid_exists(pid):
        raise DamonValidationError(name, params[name], 'a running process (no process %d)' % pid)
    return pid


def parse_regions(option, value):
    regions = []
    for index, region in enumerate(_list_option(option, value)):
        region = _suboptions('%s[%d]' % (option, index), region, ('start', 'end'))
        start = parse_size('%s[%d].start' % (option, index), region.get('start'))
        end = parse_size('%s[%d].end' % (option, index), region.get('end'))
        regions.append((start, end))
    for index, (start, end) in enumerate(regions):
        if start >= end or (index and regions[index - 1][1] > start):
            raise DamonValidationError(option, value, 'sorted, non-overlapping {start, end} ranges with '
                                                      'start < end')
    return regions


def _stage_target(st, targets, params, operations, switched):
    """One monitoring target: a pid for vaddr/fvaddr, physical ranges for paddr."""
    pid = _resolve_pid(st.host, params)
    regions = parse_regions('regions', params['regions']) if params.get('regions') is not None else None
    target = targets + '/0'
    if operations == 'paddr' and pid is not None:
        raise DamonValidationError('pid', pid, 'nothing with operations paddr (a pid is for vaddr/fvaddr)')
    if operations != 'paddr' and pid is None and (switched or st.count(targets) == 0):
        raise DamonValidationError('pid', None, 'a pid, pidfile or systemd_unit for operations %s' % operations)
    paddr_needs_ram = operations == 'paddr' and regions is None and (
        switched or st.count(targets) == 0 or st.count(target + '/regions') == 0)
    if not (switched or pid is not None or regions is not None or paddr_needs_ram):
        return
    st.set_count(targets, 1)
    if pid is not None:
        st.set(target + '/pid_target', pid)
    if paddr_needs_ram:
        # sysfs does not find System RAM by itself the way DAMON_RECLAIM does.
        regions = [st.host.system_ram()]
    elif regions is None and switched and st.count(target + '/regions'):
        regions = []
    if regions is not None:
        st.set_count(target + '/regions', len(regions))
        for index, (start, end) in enumerate(regions):
            st.set('%s/regions/%d/start' % (target, index), start)
            st.set('%s/regions/%d/end' % (target, index), end)


# ---------------------------------------------------------------- schemes

def _stage_scheme(st, scheme, params, operations, created):
    host = st.host
    action = params.get('action')
    if action is not None:
        _require_keyword(host, 'action', action, ACTIONS)
    elif created:
        raise DamonValidationError('action', None, 'an action (required when the scheme is created): '
                                   + ', '.join(host.supported(ACTIONS)))
    else:
        action = st.get(scheme + '/action')
    for_operations = PADDR_ACTIONS if operations == 'paddr' else VADDR_ACTIONS
    if action not in for_operations:
        raise DamonValidationError('action', action, 'with operations %s: %s' % (
            operations, ', '.join(a for a in host.supported(ACTIONS) if a in for_operations)))
    st.set(scheme + '/action', action)
    if params.get('apply_interval') is not None:
        host.require('apply_interval', 'apply_interval', params['apply_interval'])
        st.set(scheme + '/apply_interval_us', parse_time('apply_interval', params['apply_interval'], 'us'))
    if params.get('target_nid') is not None:
        host.require('target_nid', 'target_nid', params['target_nid'])
        if not action.startswith('migrate_'):
            raise DamonValidationError('target_nid', params['target_nid'], 'nothing with action %s (it is '
                                       'the destination of migrate_hot/migrate_cold)' % action)
        st.set(scheme + '/target_nid', _node(host, 'target_nid', params['target_nid']))
    _stage_access_pattern(st, scheme, params, created)
    _stage_quotas(st, scheme + '/quotas', params, created)
    _stage_watermarks(st, scheme + '/watermarks', params, created)
    if params.get('filters') is not None:
        _stage_filters(st, scheme, params['filters'], operations)


def _stage_access_pattern(st, scheme, params, created):
    pattern = _suboptions('access_pattern', params.get('access_pattern'), ('size', 'access_rate', 'age'))
    intervals = scheme.split('/schemes/')[0] + '/monitoring_attrs/intervals'
    aggr_us = _int_of(st, intervals + '/aggr_us', 100000)
    max_samples = aggr_us // max(_int_of(st, intervals + '/sample_us', 5000), 1)
    ranges = (('size', 'sz', parse_size, ULONG_MAX),
              ('access_rate', 'nr_accesses', partial(parse_access_rate, max_samples=max_samples), max_samples),
              ('age', 'age', partial(parse_age, aggr_us=aggr_us), ULONG_MAX))
    for key, name, parse, maximum in ranges:
        option = 'access_pattern.' + key
        base = '%s/access_pattern/%s' % (scheme, name)
        _set_from(st, option, _suboptions(option, pattern.get(key), ('min', 'max')), [
            ('min', base + '/min', parse, 0), ('max', base + '/max', parse, maximum)], created)
        if _int_of(st, base + '/min') > _int_of(st, base + '/max'):
            raise DamonValidationError(option, pattern.get(key), 'min at most max')


def _stage_quotas(st, quotas, params, created):
    given = _suboptions('quotas', params.get('quotas'),
                        ('time', 'size', 'reset_interval', 'weights', 'goal_tuner'))
    _set_from(st, 'quotas', given, [
        ('time', quotas + '/ms', partial(parse_time, unit='ms'), 0),
        ('size', quotas + '/bytes', parse_size, 0),
        ('reset_interval', quotas + '/reset_interval_ms', partial(parse_time, unit='ms'), 1000)], created)
    weights = _suboptions('quotas.weights', given.get('weights'), ('size', 'access_rate', 'age'))
    weight = partial(parse_int, maximum=UINT_MAX)     # kstrtouint files
    _set_from(st, 'quotas.weights', weights, [
        ('size', quotas + '/weights/sz_permil', weight, 0),
        ('access_rate', quotas + '/weights/nr_accesses_permil', weight, 10),
        ('age', quotas + '/weights/age_permil', weight, 1)], created)
    if given.get('goal_tuner') is not None:
        st.host.require('goal_tuner', 'quotas.goal_tuner', given['goal_tuner'])
        st.set(quotas + '/goal_tuner', parse_choice('quotas.goal_tuner', given['goal_tuner'], GOAL_TUNERS))
    if params.get('goals') is not None:
        goals = _list_option('goals', params['goals'])
        if goals:
            st.host.require('quota_goals', 'goals', goals)
        if st.host.feature('quota_goals'):
            st.set_count(quotas + '/goals', len(goals))
        for index, goal in enumerate(goals):
            _stage_goal(st, '%s/goals/%d' % (quotas, index), goal, 'goals[%d].' % index)


GOAL_OPTIONS = ('metric', 'target', 'current', 'nid', 'path')


def _stage_goal(st, goal, spec, prefix):
    """One quota goal; prefix is '' for damos_quota_goal and 'goals[N].' for damos_scheme."""
    host = st.host
    spec = _suboptions(prefix.rstrip('.') or 'goal', spec, GOAL_OPTIONS)
    created = st.is_new(goal)
    metric_now = None if created else st.get(goal + '/target_metric', 'user_input')
    metric = spec.get('metric')
    if metric is not None:
        _require_keyword(host, prefix + 'metric', metric, GOAL_METRICS)
    elif created:
        raise DamonValidationError(prefix + 'metric', None, 'a metric (required when the goal is created): '
                                   + ', '.join(host.supported(GOAL_METRICS)))
    else:
        metric = metric_now
    if host.feature('goal_metric'):
        st.set(goal + '/target_metric', metric)
    changed_metric = metric != metric_now
    _stage_goal_target(st, goal, spec, prefix, metric, changed_metric)
    if spec.get('current') is not None:
        if metric != 'user_input':
            raise DamonValidationError(prefix + 'current', spec['current'], 'nothing with metric %s (the kernel '
                                       'measures it; current is for user_input)' % metric)
        st.set(goal + '/current_value', parse_int(prefix + 'current', spec['current']))
    _stage_goal_scope(st, goal, spec, prefix, metric, changed_metric)
    if metric == 'some_mem_psi_us' and host.memory_psi() is None:
        st.warnings.append('PSI is off on this host (no /proc/pressure/memory): some_mem_psi_us reads 0, '
                           'so the quota only grows up to its caps')


def _stage_goal_target(st, goal, spec, prefix, metric, changed_metric):
    target = spec.get('target')
    if target is None:
        if changed_metric:
            raise DamonValidationError(prefix + 'target', None, 'a target (required when the goal is created '
                                       'or its metric changes)')
        return
    if metric.endswith('_us'):
        value = parse_time(prefix + 'target', target, 'us')
    elif metric.endswith('_bp'):
        value = parse_ratio(prefix + 'target', target)
    else:
        value = parse_int(prefix + 'target', target)
    if value <= 0:
        raise DamonValidationError(prefix + 'target', target, 'a value above 0 (the kernel ignores goals '
                                   'whose target is 0)')
    st.set(goal + '/target_value', value)


def _stage_goal_scope(st, goal, spec, prefix, metric, changed_metric):
    """nid for node_* metrics and a cgroup path for node_memcg_* metrics."""
    for option, wanted, feature, rel, parse in (
            ('nid', metric.startswith('node_'), 'goal_nid', '/nid', _node),
            ('path', metric.startswith('node_memcg_'), 'goal_path', '/path', _cgroup)):
        value = spec.get(option)
        if value is None:
            if wanted and changed_metric:
                raise DamonValidationError(prefix + option, None, 'required with metric %s' % metric)
            continue
        if not wanted:
            raise DamonValidationError(prefix + option, value, 'nothing with metric %s' % metric)
        st.host.require(feature, prefix + option, value)
        st.set(goal + rel, parse(st.host, prefix + option, value))


def _stage_watermarks(st, watermarks, params, created):
    given = _suboptions('watermarks', params.get('watermarks'), ('metric', 'interval', 'high', 'mid', 'low'))
    permil = partial(parse_int, maximum=1000)
    _set_from(st, 'watermarks', given, [
        ('metric', watermarks + '/metric', partial(parse_choice, choices=WATERMARK_METRICS), 'none'),
        ('interval', watermarks + '/interval_us', parse_time, None),
        ('high', watermarks + '/high', permil, None),
        ('mid', watermarks + '/mid', permil, None),
        ('low', watermarks + '/low', permil, None)], created)
    if st.get(watermarks + '/metric', 'none') != 'none':
        levels = [_int_of(st, watermarks + '/' + name) for name in ('high', 'mid', 'low')]
        if not levels[0] >= levels[1] >= levels[2]:
            raise DamonValidationError('watermarks', params.get('watermarks'), 'high >= mid >= low (per-mille)')


FILTER_OPTIONS = ('type', 'matching', 'allow', 'memcg_path', 'addr_start', 'addr_end', 'target_idx', 'min',
                  'max')


def _filter_files(st, option, spec):
    """Sysfs files of one filter.  matching defaults to true: 'type: anon' means anon memory."""
    host = st.host
    spec = _suboptions(option, spec, FILTER_OPTIONS)
    kind = _require_keyword(host, option + '.type', spec.get('type'), FILTER_TYPES)
    files = {'type': kind, 'matching': parse_bool(option + '.matching', spec.get('matching', True))}
    allow = parse_bool(option + '.allow', spec.get('allow', False))
    if allow:
        host.require('filter_allow', option + '.allow', spec['allow'])
    if host.feature('filter_allow'):
        files['allow'] = allow
    needed = {'memcg': ('memcg_path',), 'addr': ('addr_start', 'addr_end'), 'target': ('target_idx',),
              'hugepage_size': ('min', 'max')}.get(kind, ())
    for name in FILTER_OPTIONS[3:]:
        if spec.get(name) is None:
            if name in needed:
                raise DamonValidationError('%s.%s' % (option, name), None, 'required with type %s' % kind)
        elif name not in needed:
            raise DamonValidationError('%s.%s' % (option, name), spec[name], 'nothing with type %s' % kind)
    if kind == 'memcg':
        files['memcg_path'] = _cgroup(host, option + '.memcg_path', spec['memcg_path'])
    for low, high in (('addr_start', 'addr_end'), ('min', 'max')):
        if low in needed:
            files[low] = parse_size('%s.%s' % (option, low), spec[low])
            files[high] = parse_size('%s.%s' % (option, high), spec[high])
            if files[low] > files[high] or (low == 'addr_start' and files[low] == files[high]):
                raise DamonValidationError(option, spec, '%s below %s' % (low, high))
    if kind == 'target':
        files['damon_target_idx'] = parse_int(option + '.target_idx', spec['target_idx'], maximum=INT_MAX)
    return files


def _stage_filters(st, scheme, filters, operations):
    """Given filters replace all of them; on 6.15+ each goes to its layer's directory."""
    specs = [_filter_files(st, 'filters[%d]' % index, spec)
             for index, spec in enumerate(_list_option('filters', filters))]
    if specs:
        st.host.require('filters', 'filters', filters)
    if st.host.feature('core_ops_filters'):
        core = [files for files in specs if files['type'] in CORE_FILTER_TYPES]
        ops = [files for files in specs if files['type'] not in CORE_FILTER_TYPES]
        if core and ops and specs != core + ops:
            st.warnings.append('the kernel evaluates core filters (addr, target) before ops filters, '
                               'whatever their order in filters')
        if ops and operations != 'paddr':
            st.warnings.append('ops-layer filters (%s) are implemented only by paddr'
                               % ', '.join(files['type'] for files in ops))
        layers = (('core_filters', core), ('ops_filters', ops), ('filters', []))
    else:
        layers = (('filters', specs),)
    for name, entries in layers:
        if name == 'filters' and not st.host.feature('filters'):
            continue
        st.set_count('%s/%s' % (scheme, name), len(entries))
        for index, files in enumerate(entries):
            for key, value in files.items():
                st.set('%s/%s/%d/%s' % (scheme, name, index, key), value)


# ---------------------------------------------------------------- the inverse: options from a read tree

def _pairs(node, keys):
    """{option: value} of the sysfs files KEYS {option: file} that NODE (a read dict) has."""
    return {option: node[name] for option, name in keys.items() if isinstance(node, dict) and name in node}


def _min_max(node):
    return _pairs(node, {'min': 'min', 'max': 'max'})


def scheme_options(kdamond, scheme):
    """The damos_scheme options that make scheme SCHEME of a kdamond what it is in KDAMOND (the
    kdamond as damos_facts shows it, or its tree read with nest(); sysfs names, context 0):
    every option the module has, as plain integers in the unit of each sysfs file. Files of
    options the kernel lacks are not in a read tree, so their options are left out. None when
    the scheme does not exist."""
    contexts = kdamond.get('contexts') or []
    context = contexts[0] if contexts else {}
    schemes = context.get('schemes') or []
    if not 0 <= scheme < len(schemes):
        return None
    found = schemes[scheme]
    options = {'operations': context.get('operations'), 'action': found.get('action')}
    # Facts lift monitoring_attrs' files into the context; a tree read with nest() has them below.
    attrs = context.get('monitoring_attrs') or context
    intervals = attrs.get('intervals') or {}
    goal = intervals.get('intervals_goal') or {}
    if goal:
        options['intervals_goal'] = _pairs(goal, {'access_bp': 'access_bp', 'aggrs': 'aggrs',
                                                  'min_sample': 'min_sample_us', 'max_sample': 'max_sample_us'})
    # While the kernel tunes sample and aggr, giving them only draws a warning.
    options['intervals'] = _pairs(intervals, {'update': 'update_us'} if goal.get('aggrs') else
                                  {'sample': 'sample_us', 'aggr': 'aggr_us', 'update': 'update_us'})
    options['nr_regions'] = _min_max(attrs.get('nr_regions'))
    targets = context.get('targets') or []
    if targets and options['operations'] == 'paddr':
        options['regions'] = [_pairs(region, {'start': 'start', 'end': 'end'})
                              for region in targets[0].get('regions') or []]
    elif targets:
        options['pid'] = targets[0].get('pid_target')
    for option, name in (('apply_interval', 'apply_interval_us'), ('target_nid', 'target_nid')):
        if name in found and (option != 'target_nid' or str(options['action']).startswith('migrate_')):
            options[option] = found[name]
    pattern = found.get('access_pattern') or {}
    options['access_pattern'] = {option: _min_max(pattern.get(name)) for option, name in (
        ('size', 'sz'), ('access_rate', 'nr_accesses'), ('age', 'age')) if name in pattern}
    quotas = found.get('quotas') or {}
    options['quotas'] = _pairs(quotas, {'time': 'ms', 'size': 'bytes', 'reset_interval': 'reset_interval_ms',
                                        'goal_tuner': 'goal_tuner'})
    options['quotas']['weights'] = _pairs(quotas.get('weights'), {
        'size': 'sz_permil', 'access_rate': 'nr_accesses_permil', 'age': 'age_permil'})
    goals = []
    for entry in quotas.get('goals') or []:
        metric = entry.get('target_metric') or 'user_input'
        # A target of 0 is a goal the kernel skips, and one damos_scheme refuses to write.
        if not entry.get('target_value'):
            continue
        item = {'metric': metric, 'target': entry['target_value']}
        if metric == 'user_input':
            item['current'] = entry.get('current_value') or 0
        if metric.startswith('node_'):
            item['nid'] = entry.get('nid', 0)
        if metric.startswith('node_memcg_'):
            item['path'] = entry.get('path') or ''
        goals.append(item)
    if 'goals' in quotas:
        options['goals'] = goals
    options['watermarks'] = _pairs(found.get('watermarks'), {
        'metric': 'metric', 'interval': 'interval_us', 'high': 'high', 'mid': 'mid', 'low': 'low'})
    filters = []
    # Facts list every layer's filters under filters; a tree read with nest() has one list per layer.
    for entry in (found.get('core_filters') or []) + (found.get('ops_filters') or []) + (found.get('filters') or []):
        item = _pairs(entry, {'type': 'type', 'matching': 'matching', 'allow': 'allow'})
        item.update(_pairs(entry, {'memcg': {'memcg_path': 'memcg_path'},
                                   'addr': {'addr_start': 'addr_start', 'addr_end': 'addr_end'},
                                   'target': {'target_idx': 'damon_target_idx'},
                                   'hugepage_size': {'min': 'min', 'max': 'max'}}.get(entry.get('type'), {})))
        filters.append(item)
    if any(name in found for name in ('filters', 'core_filters', 'ops_filters')):
        options['filters'] = filters
    # An option with nothing read is not given (an empty list is: no goals, no filters).
    for parent in (options, options['quotas']):
        for name in [name for name, value in parent.items() if value is None or value == {}]:
            del parent[name]
    return options


# ---------------------------------------------------------------- applying and committing

def _kdamond_states(host, current):
    count = int(current.get('kdamonds/nr_kdamonds', '0'))
    return {index: host.read('kdamonds/%d/state' % index) for index in range(count)}


def _check_ownership(host, index, current, states, take_over, owned):
    configured = int(current.get('kdamonds/%d/contexts/nr_contexts' % index, '0')) > 0 \
        or states.get(index) == 'on'
    if configured and not take_over and index not in owned:
        unused, problem = host.ownership()
        why = ('%s cannot say (%s)' % (host.shown(host.managed_path), problem) if problem else
               'it is not recorded in %s as configured by kernel.damon in this boot' % host.shown(host.managed_path))
        raise DamonConflictError(
            'kdamond %d is configured, but %s, so another tool or an operator owns it; nothing was changed. '
            'Pass take_over: true to let kernel.damon manage it (after a reboot the damos_autotune boot unit '
            'configures it again first)' % (index, why))


def _exclusive_modules_to_stop(host, index, allowed):
    running = sorted(name for name, enabled in host.exclusive_modules().items() if enabled)
    if running and not allowed:
        raise DamonConflictError(
            '%s runs and holds DAMON exclusively, so kdamond %d cannot start (the kernel answers EBUSY); '
            'pass stop_exclusive_modules: true to stop it' % (', '.join(running), index))
    return running


def _restore(host, snapshot, restart=(), modules=()):
    """Best effort: put the staged tree back, restart kdamonds and enable again the exclusive
    modules of `modules` that are off now (the run stopped them); returns a note for errors."""
    try:
        for rel, value in plan_writes(read_tree(host), snapshot):
            host.write(rel, value)
        for index in restart:
            if host.read('kdamonds/%d/state' % index) != 'on':
                host.write('kdamonds/%d/state' % index, 'on')
    except DamonError as err:
        note = 'restoring the previous configuration failed too: %s' % err
    else:
        note = 'the previous configuration was restored'
    stopped = sorted(name for name, enabled in host.exclusive_modules().items() if name in modules and not enabled)
    if not stopped:
        return note
    try:
        for name in stopped:
            host.start_exclusive_module(name)
    except DamonError as err:
        return '%s, but %s, which this run stopped, stay off: %s' % (note, ', '.join(stopped), err)
    return '%s, and %s, which this run stopped, were enabled again' % (note, ', '.join(stopped))


class _Plan:
    """Everything one run will write, computed before the first write."""

    def __init__(self, index, current, states, desired, want_running, goals_only, journal=None):
        self.kdamond = 'kdamonds/%d' % index
        self.index = index
        self.current, self.desired, self.states = current, desired, states
        self.writes = plan_writes(current, desired)
        self.was_on = states.get(index) == 'on'
        self.on_after = self.was_on if want_running is None else want_running
        grows = any(write[0] == 'kdamonds/nr_kdamonds' for write in self.writes)
        self.restarts = sorted(i for i, state in states.items() if state == 'on') if grows else []
        # Kdamonds that an interrupted run had stopped to grow nr_kdamonds: started again.
        self.resume = sorted(i for i in (journal or {}).get('restarts', ())
                             if i != index and states.get(i) == 'off' and i not in self.restarts)
        own = [w for w in self.writes if w[0].startswith(self.kdamond + '/')]
        self.keyword = None
        if self.on_after and not self.was_on:
            self.keyword = 'on'
        elif self.was_on and not self.on_after:
            self.keyword = 'off'
        elif self.was_on and (own or journal):
            # What the kernel runs decides, not what is staged: after an interrupted run the
            # staged files may hold values the kdamond never took in.
            goals = goals_only or commit_keyword(own) == 'commit_schemes_quota_goals'
            if journal and journal['keyword'] == 'commit':
                goals = False
            self.keyword = 'commit_schemes_quota_goals' if goals else 'commit'
        if journal and journal['snapshot']:
            self.current = journal['snapshot']      # what the kernel runs: the restore's target
        self.modules = []
        self.owned = set()

    def steps(self, host):
        """(path relative to admin or host path, value) in the order they are written."""
        steps = [('kdamonds/%d/state' % i, 'off') for i in self.restarts] + list(self.writes)
        steps += [('kdamonds/%d/state' % i, 'on') for i in self.restarts + self.resume]
        steps += [(host.shown(host.exclusive_module_path(name)), 'N') for name in self.modules]
        if self.keyword:
            steps.append((self.kdamond + '/state', self.keyword))
        return steps

    def apply(self, host):
        for index in self.restarts:
            host.write('kdamonds/%d/state' % index, 'off')
        for rel, value in self.writes:
            host.write(rel, value)
        for index in self.restarts + self.resume:
            host.write('kdamonds/%d/state' % index, 'on')
        for name in self.modules:
            host.stop_exclusive_module(name)
        if self.keyword:
            host.write(self.kdamond + '/state', self.keyword)


def _check_resolved_at_commit(host, plan):
    """Values the kernel resolves at on/commit time can go stale between runs (a cgroup
    removed, a monitored process gone) while the files keep them.  Say so before the first
    write: a commit the kernel rejects stops the kdamond on kernels before 6.14."""
    if plan.keyword not in ('on',) + COMMIT_KEYWORDS:
        return
    context = plan.kdamond + '/contexts/0/'
    goals_only = plan.keyword == 'commit_schemes_quota_goals'
    for rel, value in sorted(plan.desired.items()):
        if not rel.startswith(context):
            continue
        base, name = rel.rsplit('/', 1)
        if name == 'memcg_path' and not goals_only and plan.desired.get(base + '/type') == 'memcg':
            problem, replace = _memcg_problem(host, value), 'filters'
        elif name == 'path' and plan.desired.get(base + '/target_metric', '').startswith('node_memcg_'):
            problem, replace = _memcg_problem(host, value), 'goals or path'
        elif name == 'pid_target' and not goals_only and plan.desired.get(context + 'operations') != 'paddr':
            problem = None if host.pid_exists(int(value)) else 'a running process (no process %s)' % value
            replace = 'pid, pidfile or systemd_unit'
        else:
            continue
        if problem:
            raise DamonValidationError(rel, value, '%s; the kernel resolves it at every %s, so give %s to '
                                       'replace it' % (problem, plan.keyword, replace))


def _tuned_intervals(current, kdamond):
    return int(current.get(kdamond + '/contexts/0/monitoring_attrs/intervals/intervals_goal/aggrs', '0')) != 0


def _read_and_plan(host, index, build, take_over, want_running, goals_only, journal=None):
    """Snapshot the tree, check ownership, build the desired tree (validating) and plan.
    journal: an interrupted run on this kdamond, which this run completes (see below)."""
    current = read_tree(host)
    states = _kdamond_states(host, current)
    owned = host.managed()
    if journal is not None:
        owned |= {index}    # the interrupted run was ours, under the lock
    _check_ownership(host, index, current, states, take_over, owned)
    # Build on what the interrupted run meant to stage, so that options this run does not
    # set keep the values it was writing, not a half-written mix.
    stage = _Stage(host, intended(current, journal))
    build(stage)
    plan = _Plan(index, current, states, stage.desired, want_running, goals_only, journal)
    plan.owned = owned
    return stage, plan


# ---------------------------------------------------------------- runs that were interrupted

# An interrupted run (SIGKILL, a controller timeout, Ctrl-C) may leave values in sysfs that
# no running kdamond took in: sysfs files only stage.  Before its first write below a
# running kdamond a run records in this journal what it will write and what the kernel runs
# (the snapshot), and removes it after its commit.  Whichever root writer takes the lock
# next completes the run (docs/design.md, "Interrupted runs").
_JOURNAL_KEYS = {'version': int, 'boot_id': (str, type(None)), 'kdamond': int, 'keyword': str,
                 'writes': list, 'restarts': list, 'owned': list, 'snapshot': dict}
_REL = re.compile(r'^kdamonds(/[A-Za-z0-9_]+)+$')


def journal_path(host):
    return os.path.join(host.state_dir, 'pending.json')


def _valid_journal(data):
    if not isinstance(data, dict) or set(data) != set(_JOURNAL_KEYS) or data.get('version') != 1:
        return False
    if any(isinstance(data[key], bool) or not isinstance(data[key], kind) for key, kind in _JOURNAL_KEYS.items()):
        return False
    pairs = data['writes'] + [list(item) for item in data['snapshot'].items()]
    numbers = data['restarts'] + data['owned'] + [data['kdamond']]
    return (data['keyword'] in COMMIT_KEYWORDS
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers)
            and all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                    and _REL.match(pair[0]) is not None and isinstance(pair[1], str) for pair in pairs))


def load_journal(host):
    """The interrupted run of this boot, or None.  One from an earlier boot is moot (sysfs
    starts empty at boot): {'stale': True}.  One that cannot be read or has the wrong shape
    still says "a run was interrupted": the next run commits its kdamond in full
    ({'kdamond': None})."""
    text, problem = read_state_file(journal_path(host))
    if text is None and problem is None:
        return None
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        data = None
    if not _valid_journal(data):
        return {'kdamond': None, 'keyword': 'commit', 'writes': [], 'restarts': [], 'owned': [], 'snapshot': {},
                'problem': problem or 'not a kernel.damon journal'}
    if data['boot_id'] != host.boot_id():
        return {'stale': True}
    return data


def intended(current, journal):
    """The staged tree as the interrupted run in journal meant to leave it."""
    if not journal:
        return current
    desired = dict(current)
    desired.update(journal['writes'])
    return desired


def _write_journal(host, plan):
    """Record the plan before its first write, when an interruption could leave values in
    sysfs that a running kdamond does not run."""
    if not (plan.writes and (plan.was_on or plan.restarts or plan.resume)):
        return
    write_state_file(journal_path(host), json.dumps({
        'version': 1, 'boot_id': host.boot_id(), 'kdamond': plan.index,
        'keyword': 'commit_schemes_quota_goals' if plan.keyword == 'commit_schemes_quota_goals' else 'commit',
        'writes': [list(write) for write in plan.writes],
        'restarts': sorted(set(plan.restarts) | set(plan.resume) | ({plan.index} if plan.was_on else set())),
        'owned': sorted(plan.owned), 'snapshot': plan.current}, sort_keys=True) + '\n')


def _complete_other(host, journal, check_mode):
    """Complete an interrupted run on another kdamond than this run's: its writes, the
    restart of the kdamonds it had stopped, its commit.  Returns the steps."""
    current = read_tree(host)
    states = _kdamond_states(host, current)
    writes = plan_writes(current, intended(current, journal))
    steps = list(writes) + [('kdamonds/%d/state' % i, 'on') for i in journal['restarts'] if states.get(i) == 'off']
    if states.get(journal['kdamond']) == 'on':
        steps.append(('kdamonds/%d/state' % journal['kdamond'], journal['keyword']))
    if check_mode:
        return steps
    try:
        for rel, value in steps:
            host.write(rel, value)
    except DamonError as err:
        note = _restore(host, journal['snapshot'], [i for i in journal['restarts'] if states.get(i) == 'on'])
        remove_state_file(journal_path(host))
        raise _append_note(err, 'completing an interrupted kernel.damon run on kdamond %d failed; %s'
                           % (journal['kdamond'], note)) from None
    host.record_managed(_still_there(host, host.managed() | set(journal['owned']) | {journal['kdamond']}))
    remove_state_file(journal_path(host))
    return steps


def _still_there(host, indexes):
    return {index for index in indexes if host.is_dir('kdamonds/%d' % index)}


def _interrupted(host, index, check_mode):
    """(journal of an interrupted run on kdamond index, steps that complete one on another
    kdamond, warning)."""
    journal = load_journal(host)
    if journal is None:
        return None, [], None
    if journal.get('stale'):
        if not check_mode:
            remove_state_file(journal_path(host))
        return None, [], None
    kdamond = index if journal['kdamond'] is None else journal['kdamond']
    warning = ('a kernel.damon run on kdamond %d was interrupted before its commit%s; this run completes it'
               % (kdamond, ' (%s: %s)' % (host.shown(journal_path(host)), journal['problem'])
                  if journal.get('problem') else ''))
    if kdamond == index:
        return journal, [], warning
    return None, _complete_other(host, journal, check_mode), warning


def _converge(host, index, build, describe, check_mode=False, want_running=None, take_over=False,
              stop_kdamonds=False, stop_exclusive_modules=False, goals_only=False):
    """Read, build the desired tree (validating it), plan, then apply and commit."""
    if not host.available():
        raise DamonUnavailableError('%s does not exist: this kernel has no DAMON sysfs interface '
                                    '(CONFIG_DAMON_SYSFS)' % host.shown(host.admin))
    with host.lock(create=not check_mode):
        journal, steps, interrupted = _interrupted(host, index, check_mode)
        stage, plan = _read_and_plan(host, index, build, take_over, want_running, goals_only, journal)
        if plan.restarts and not stop_kdamonds:
            raise DamonConflictError(
                'kdamond %d does not exist yet and nr_kdamonds can only grow while no kdamond runs '
                '(running: %s); pass stop_kdamonds: true to stop, restore and restart them'
                % (index, ', '.join(str(i) for i in plan.restarts)))
        if plan.keyword == 'on':
            plan.modules = _exclusive_modules_to_stop(host, index, stop_exclusive_modules)
        _check_resolved_at_commit(host, plan)
        prefix = []
        if plan.keyword == 'commit' and _tuned_intervals(plan.current, plan.kdamond):
            # commit resets auto-tuned intervals to the staged inputs unless these hold the
            # tuned values; the refreshed inputs are then part of the snapshot.
            prefix = [(plan.kdamond + '/state', 'update_tuned_intervals')]
            if not check_mode:
                host.write(plan.kdamond + '/state', 'update_tuned_intervals')
                stage, plan = _read_and_plan(host, index, build, take_over, want_running, goals_only, journal)
        own_steps = plan.steps(host)
        steps += prefix + own_steps
        if not check_mode:
            if own_steps:
                _write_journal(host, plan)
                try:
                    _apply(host, plan)
                except DamonError:
                    if read_tree(host) == plan.current:
                        remove_state_file(journal_path(host))   # restored: nothing is pending
                    raise
            configured = int(plan.desired.get('kdamonds/%d/contexts/nr_contexts' % index, '0')) > 0
            host.record_managed(_still_there(host, plan.owned | ({index} if configured else set())))
            if journal or own_steps:
                remove_state_file(journal_path(host))
        warnings = [interrupted] if interrupted else []
        warnings += stage.warnings
        if plan.restarts:
            warnings.append('kdamonds %s were stopped and restarted to grow nr_kdamonds; their stats and '
                            'quota tuning started again from zero' % ', '.join(map(str, plan.restarts)))
        if plan.modules:
            warnings.append('stopped %s so that kdamond %d could start' % (', '.join(plan.modules), index))
        if plan.keyword == 'on' and int(plan.current.get(plan.kdamond + '/contexts/nr_contexts', '0')):
            warnings.append('kdamond %d was off (stopped since its last start, or never started); it was '
                            'started with the configuration in sysfs, its stats and quota tuning from zero' % index)
        elif goals_only and not plan.was_on and plan.writes:
            warnings.append('kdamond %d is off: the goal is staged and applies when the kdamond starts' % index)
        return {
            'changed': bool(steps),
            'diff': {'before': describe(plan.current, 'on' if plan.was_on else 'off'),
                     'after': describe(plan.desired, 'on' if plan.on_after else 'off')},
            'sysfs_writes': ['%s=%s' % step for step in steps],
            'commit': plan.keyword,
            'kdamond': _kdamond_after(host, plan, check_mode),
            'warnings': warnings,
        }


def _committed_values(plan):
    """What the kernel took in with the commit: the files this run wrote below the kdamond."""
    own = ['%s=%r' % (rel, value) for rel, value in plan.writes if rel.startswith(plan.kdamond + '/')]
    if not own:
        return 'it rejected the configuration in sysfs as it was'
    return 'this run wrote %s%s' % (', '.join(own[:8]), ' and %d more' % (len(own) - 8) if len(own) > 8 else '')


def _apply(host, plan):
    try:
        plan.apply(host)
    except DamonError as err:
        restart = list(plan.restarts)
        if plan.keyword in COMMIT_KEYWORDS and isinstance(err, DamonKernelError) and err.value == plan.keyword:
            # The kernel refused the commit; a failure midway also stops the kdamond (sec. 5.6).
            _append_note(err, _committed_values(plan))
            if host.read(plan.kdamond + '/state') != 'on':
                restart.append(plan.index)
        raise _append_note(err, _restore(host, plan.current, restart, plan.modules)) from None
    if plan.keyword not in COMMIT_KEYWORDS:
        return
    if host.read(plan.kdamond + '/state') == 'on':
        return
    # Before 6.14 the kdamond applies a commit after the write returned, and an error
    # terminates it without an errno (damon-sysfs.md sec. 5.6, docs/kernel-notes.md).
    note = _restore(host, plan.current, [plan.index])
    state = host.read(plan.kdamond + '/state')
    pid = host.read(plan.kdamond + '/pid')
    raise DamonError('writing %r to %s stopped kdamond %d: the kernel could not apply the new configuration '
                     '(%s; this kernel reports no errno for it); %s and the kdamond is %s (pid %s), with its '
                     'stats and quota tuning started again'
                     % (plan.keyword, host.shown(host.admin_path(plan.kdamond + '/state')), plan.index,
                        _committed_values(plan), note, state, pid))


def _kdamond_after(host, plan, check_mode):
    result = {'index': plan.index, 'state': 'on' if plan.on_after else 'off', 'pid': None}
    if check_mode:
        if plan.was_on and plan.on_after:
            result['pid'] = int(host.read(plan.kdamond + '/pid'))
        elif not plan.on_after:
            result['pid'] = -1
    elif host.is_dir(plan.kdamond):
        result.update(state=host.read(plan.kdamond + '/state'), pid=int(host.read(plan.kdamond + '/pid')))
    else:
        result['state'] = None
    return result


# ---------------------------------------------------------------- entry points

def _index(params, name):
    return parse_int(name, 0 if params.get(name) is None else params[name], maximum=INT_MAX)


def _context_path(kdamond):
    return 'kdamonds/%d/contexts/0' % kdamond


def _describe_scheme(kdamond, scheme):
    context = _context_path(kdamond)
    scheme_dir = '%s/schemes/%d' % (context, scheme)

    def describe(flat, state):
        settings = {rel: value for rel, value in subtree(flat, context).items() if not rel.startswith('schemes/')}
        return {'running': state == 'on', 'context': nest(settings) or None,
                'scheme': nest(subtree(flat, scheme_dir)) or None}
    return describe


def ensure_scheme(host, params, check_mode=False):
    """damos_scheme: make scheme `scheme` of kdamond `kdamond` (context 0) as described."""
    kdamond, scheme = _index(params, 'kdamond'), _index(params, 'scheme')
    present = parse_choice('state', params.get('state') or 'present', ('present', 'absent')) == 'present'
    running = params.get('running')
    if running is None:
        running = True if present else None
    else:
        running = parse_bool('running', running)

    def build(st):
        context = _context_path(kdamond)
        schemes = context + '/schemes'
        if present:
            kdamonds = st.count('kdamonds')
            if kdamond > kdamonds:
                # Growing nr_kdamonds by more than one would create empty kdamonds nobody asked for.
                raise DamonValidationError('kdamond', kdamond, '0 to add the first kdamond (there is none)'
                                           if kdamonds == 0 else 'an existing kdamond index (0..%d) or %d to add one'
                                           % (kdamonds - 1, kdamonds))
            if kdamond == kdamonds:
                st.set_count('kdamonds', kdamond + 1)
            if st.count('kdamonds/%d/contexts' % kdamond) == 0:
                st.set_count('kdamonds/%d/contexts' % kdamond, 1)
            operations = _stage_context(st, context, params)
            count = st.count(schemes)
            if scheme > count:
                raise DamonValidationError('scheme', scheme, 'an existing scheme index (0..%d) or %d to add one'
                                           % (count - 1, count))
            if scheme == count:
                st.set_count(schemes, count + 1)
            _stage_scheme(st, '%s/%d' % (schemes, scheme), params, operations, scheme == count)
        elif scheme < st.count(schemes):
            if scheme < st.count(schemes) - 1:
                st.warnings.append('schemes after %d move down one index; a running kdamond matches schemes by '
                                   'index, so their stats and quota tuning move with them' % scheme)
            st.remove_child(schemes, scheme)

    return _converge(host, kdamond, build, _describe_scheme(kdamond, scheme), check_mode=check_mode,
                     want_running=running, take_over=bool(params.get('take_over')),
                     stop_kdamonds=bool(params.get('stop_kdamonds')),
                     stop_exclusive_modules=bool(params.get('stop_exclusive_modules')))


def ensure_quota_goal(host, params, check_mode=False):
    """damos_quota_goal: one goal of an existing scheme; commits goals only."""
    kdamond, scheme, goal = _index(params, 'kdamond'), _index(params, 'scheme'), _index(params, 'goal')
    present = parse_choice('state', params.get('state') or 'present', ('present', 'absent')) == 'present'
    goals = '%s/schemes/%d/quotas/goals' % (_context_path(kdamond), scheme)
    goal_dir = '%s/%d' % (goals, goal)

    def build(st):
        schemes = _context_path(kdamond) + '/schemes'
        if scheme >= st.count(schemes):
            raise DamonValidationError('scheme', scheme, 'an existing scheme of kdamond %d (it has %d)'
                                       % (kdamond, st.count(schemes)))
        st.host.require('quota_goals', 'goal', goal)
        count = st.count(goals)
        if not present:
            if goal < count:
                st.remove_child(goals, goal)
            return
        if goal > count:
            raise DamonValidationError('goal', goal, 'an existing goal index (0..%d) or %d to add one'
                                       % (count - 1, count))
        if goal == count:
            st.set_count(goals, count + 1)
        _stage_goal(st, goal_dir, {name: params.get(name) for name in GOAL_OPTIONS}, '')

    def describe(flat, state):
        return {'running': state == 'on', 'goal': nest(subtree(flat, goal_dir)) or None}

    return _converge(host, kdamond, build, describe, check_mode=check_mode,
                     take_over=bool(params.get('take_over')), goals_only=True)


# ---------------------------------------------------------------- score feeder

def kdamond_pid(host, kdamond):
    """The pid of a running kdamond, else -1 (also when it does not exist).  One sysfs read
    and no lock: what a feeder checks on every tick to notice a restarted kdamond."""
    pid_file = 'kdamonds/%d/pid' % kdamond
    if not os.path.exists(host.admin_path(pid_file)):
        return -1
    return int(host.read(pid_file))


def feed_quota_goal(host, kdamond, scheme, goal, value=None, fed_pid=None):
    """The score feeder's write: a user_input goal's current_value, then
    commit_schemes_quota_goals, under the collection lock.

    Written on every call, whatever current_value stages: a staged value may never have
    been committed (a feed killed between its two writes), and the caller calls only when
    its own record of what it fed, or the kdamond's pid, says so.  fed_pid is kept for
    callers and ignored.  Never a full commit, which would restart DAMON's aggregation
    schedule.  value None feeds the goal's target_value,
    so the tuner holds the quota where it is.  A kdamond that does not exist or is off is
    left alone (state says which).  Returns {'state', 'pid', 'value', 'target', 'written',
    'sysfs_writes'}.
    """
    if value is not None:
        value = parse_int('current', value)
    if not host.available():
        raise DamonUnavailableError('%s does not exist: this kernel has no DAMON sysfs interface '
                                    '(CONFIG_DAMON_SYSFS)' % host.shown(host.admin))
    kdamond_dir = 'kdamonds/%d' % kdamond
    goal_dir = '%s/schemes/%d/quotas/goals/%d' % (_context_path(kdamond), scheme, goal)
    result = {'state': 'absent', 'pid': -1, 'value': value, 'target': None, 'written': False,
              'sysfs_writes': []}
    with host.lock():
        if not host.is_dir(kdamond_dir):
            return result
        result['state'] = host.read(kdamond_dir + '/state')
        if result['state'] != 'on':
            return result
        result['pid'] = int(host.read(kdamond_dir + '/pid'))
        if kdamond not in host.managed():
            raise DamonConflictError('kdamond %d is not recorded in %s as configured by kernel.damon in this '
                                     'boot, so another tool or an operator owns it; nothing was fed'
                                     % (kdamond, host.shown(host.managed_path)))
        journal = load_journal(host)
        if journal is not None and not journal.get('stale'):
            raise DamonConflictError('a kernel.damon run was interrupted before its commit (%s); the next run of '
                                     'a module, or the boot unit, completes it; nothing was fed'
                                     % host.shown(journal_path(host)))
        if not host.is_dir(goal_dir):
            raise DamonConflictError('kdamond %d has no goal %d in scheme %d to feed' % (kdamond, goal, scheme))
        metric_file = goal_dir + '/target_metric'
        metric = host.read(metric_file) if os.path.exists(host.admin_path(metric_file)) else 'user_input'
        if metric != 'user_input':
            raise DamonConflictError('goal %d of scheme %d of kdamond %d measures %s itself; only a user_input '
                                     'goal takes a fed value' % (goal, scheme, kdamond, metric))
        result['target'] = int(host.read(goal_dir + '/target_value'))
        result['value'] = result['target'] if value is None else value
        first = len(host.writes)
        host.write(goal_dir + '/current_value', result['value'])
        host.write(kdamond_dir + '/state', 'commit_schemes_quota_goals')
        result['written'] = True
        result['state'] = host.read(kdamond_dir + '/state')
        if result['state'] != 'on':
            raise DamonError('writing commit_schemes_quota_goals to %s stopped kdamond %d'
                             % (host.shown(host.admin_path(kdamond_dir + '/state')), kdamond))
        result['sysfs_writes'] = host.writes[first:]
    return result
