# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Staging: module options in, the desired sysfs tree out.  Each option is validated (against
the running kernel too: its keywords, features, nodes, cgroups and processes) and turned
into the files the model's tables name, on a copy of the current tree (Stage).  Nothing
here writes to the host; _damon_plan compares, writes and commits.

stage_scheme() and stage_quota_goal() are what damos_scheme and damos_quota_goal stage;
the other functions stage one part of the tree each, in the tree's order.

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible.
"""

from __future__ import annotations

import os
from functools import partial

from ._damon_errors import DamonValidationError
from ._damon_model import (
    ACCESS_PATTERN,
    ACTIONS,
    CONTEXT,
    CONTEXT_GROUPS,
    CORE_FILTER_TYPES,
    FILTER,
    FILTER_LAYERS,
    FILTER_TYPE_OPTIONS,
    FILTER_TYPES,
    GOAL,
    GOAL_METRICS,
    PADDR_ACTIONS,
    PROCESS_OPTIONS,
    RANGE,
    REGION,
    SCHEME,
    SCHEME_GROUPS,
    TARGET,
    VADDR_ACTIONS,
    context_dir,
    goal_scope,
    nr_file,
    parse_goal_target,
    since,
)
from ._damon_units import (
    INT_MAX,
    ULONG_MAX,
    format_us,
    parse_access_rate,
    parse_age,
    parse_bool,
    parse_choice,
    parse_int,
    parse_size,
    sysfs_value,
)

GOAL_OPTIONS = tuple(field.option for field in GOAL)
FILTER_OPTIONS = tuple(field.option for field in FILTER)


# ---------------------------------------------------------------- the desired tree

class Stage:
    """The desired flat map, built as the current one plus modifications."""

    def __init__(self, host, current):
        self.host = host
        self.current = current
        self.desired = dict(current)
        self.warnings = []

    def get(self, rel, default=None):
        return self.desired.get(rel, default)

    def set(self, rel, value):
        self.desired[rel] = sysfs_value(value)

    def count(self, dirpath):
        return int(self.desired.get(nr_file(dirpath), '0'))

    def is_new(self, dirpath):
        """True for a directory that does not exist yet (its files get creation defaults)."""
        return not any(rel.startswith(dirpath + '/') for rel in self.current)

    def set_count(self, dirpath, count):
        self.desired[nr_file(dirpath)] = str(count)
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


# ---------------------------------------------------------------- options in general

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
            ', '.join(supported), value, since(table[value]), host.release)
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


def memcg_problem(host, cgroup):
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
    problem = memcg_problem(host, cgroup)
    if problem:
        raise DamonValidationError(option, value, problem)
    return cgroup


def _names(fields):
    return tuple(field.option for field in fields)


def _file(fields, option):
    return next(field.file for field in fields if field.option == option)


def _set_fields(st, option, values, fields, fields_dir, created):
    """Stage a dict option's files from the model's fields: a given value parsed (its file
    must exist on this kernel), else the file's creation value when the directory is new."""
    for field in fields:
        name = '%s.%s' % (option, field.option) if option else field.option
        if values.get(field.option) is not None:
            if field.feature:
                st.host.require(field.feature, name, values[field.option])
            st.set('%s/%s' % (fields_dir, field.file), field.parse(name, values[field.option]))
        elif created and field.default is not None:
            st.set('%s/%s' % (fields_dir, field.file), field.default)


def _stage_group(st, option, given, base_dir, groups, created):
    """One of the dict options of CONTEXT_GROUPS or SCHEME_GROUPS, below base_dir."""
    group_dir, fields = groups[option]
    nested = tuple(name.split('.', 1)[1] for name in groups if name.startswith(option + '.'))
    values = _suboptions(option, given, _names(fields) + nested)
    _set_fields(st, option, values, fields, '%s/%s' % (base_dir, group_dir), created)
    return values


def _int_of(st, rel, default=0):
    return int(st.get(rel, str(default)))


# ---------------------------------------------------------------- what the modules stage

def stage_scheme(st, kdamond, scheme, params, present):
    """damos_scheme: scheme `scheme` of kdamond `kdamond` (context 0) as params describe it,
    or removed (present false)."""
    schemes_dir = context_dir(kdamond) + '/schemes'
    if not present:
        if scheme < st.count(schemes_dir):
            if scheme < st.count(schemes_dir) - 1:
                st.warnings.append('schemes after %d move down one index; a running kdamond matches schemes by '
                                   'index, so their stats and quota tuning move with them' % scheme)
            st.remove_child(schemes_dir, scheme)
        return
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
    operations = _stage_context(st, context_dir(kdamond), params)
    count = st.count(schemes_dir)
    if scheme > count:
        raise DamonValidationError('scheme', scheme, 'an existing scheme index (0..%d) or %d to add one'
                                   % (count - 1, count))
    if scheme == count:
        st.set_count(schemes_dir, count + 1)
    _stage_scheme(st, '%s/%d' % (schemes_dir, scheme), params, operations, scheme == count)


def stage_quota_goal(st, kdamond, scheme, goal, params, present):
    """damos_quota_goal: goal `goal` of an existing scheme as params describe it, or removed."""
    schemes_dir = context_dir(kdamond) + '/schemes'
    if scheme >= st.count(schemes_dir):
        raise DamonValidationError('scheme', scheme, 'an existing scheme of kdamond %d (it has %d)'
                                   % (kdamond, st.count(schemes_dir)))
    st.host.require('quota_goals', 'goal', goal)
    goals_dir = '%s/%d/quotas/goals' % (schemes_dir, scheme)
    count = st.count(goals_dir)
    if not present:
        if goal < count:
            st.remove_child(goals_dir, goal)
        return
    if goal > count:
        raise DamonValidationError('goal', goal, 'an existing goal index (0..%d) or %d to add one'
                                   % (count - 1, count))
    if goal == count:
        st.set_count(goals_dir, count + 1)
    _stage_goal(st, '%s/%d' % (goals_dir, goal), {name: params.get(name) for name in GOAL_OPTIONS}, '')


# ---------------------------------------------------------------- context and targets

def _stage_context(st, context_dir, params):
    """Operations, monitoring attributes and the target; returns the operations set."""
    host = st.host
    created = st.is_new(context_dir)
    field = CONTEXT[0]
    operations_now = st.get('%s/%s' % (context_dir, field.file))
    operations = params.get(field.option)
    if operations is not None:
        parse_choice(field.option, operations, host.operations())
    else:
        operations = field.default if created else operations_now
    if created or operations != operations_now:
        st.set('%s/%s' % (context_dir, field.file), operations)
    _stage_monitoring_attrs(st, context_dir + '/monitoring_attrs', params, created)
    _stage_target(st, context_dir + '/targets', params, operations, created or operations != operations_now)
    return operations


def _stage_monitoring_attrs(st, attrs_dir, params, created):
    context_dir = attrs_dir.rsplit('/', 1)[0]
    intervals_dir = context_dir + '/' + CONTEXT_GROUPS['intervals'][0]
    goal = _suboptions('intervals_goal', params.get('intervals_goal'), _names(CONTEXT_GROUPS['intervals_goal'][1]))
    if goal:
        st.host.require('intervals_goal', 'intervals_goal', params.get('intervals_goal'))
        _stage_group(st, 'intervals_goal', goal, context_dir, CONTEXT_GROUPS, False)
    given = _suboptions('intervals', params.get('intervals'), _names(CONTEXT_GROUPS['intervals'][1]))
    tuned = _int_of(st, intervals_dir + '/intervals_goal/aggrs') != 0
    if tuned and not created and (given.get('sample') is not None or given.get('aggr') is not None):
        # The kernel rewrites sample_us/aggr_us while it tunes them; comparing them would
        # report a change on every run.
        st.warnings.append('intervals.sample/aggr are auto-tuned (intervals_goal.aggrs is not 0); '
                           'the given values apply only when the context is created')
        given = {'update': given.get('update')}
    _stage_group(st, 'intervals', given, context_dir, CONTEXT_GROUPS, created)
    _stage_group(st, 'nr_regions', params.get('nr_regions'), context_dir, CONTEXT_GROUPS, created)
    _check_monitoring_attrs(st, attrs_dir, params)


def _check_monitoring_attrs(st, attrs_dir, params):
    """What on/commit would reject with a bare EINVAL, said with option names."""
    intervals_dir = attrs_dir + '/intervals'
    sample, aggr = _int_of(st, intervals_dir + '/sample_us'), _int_of(st, intervals_dir + '/aggr_us')
    if sample > aggr:
        raise DamonValidationError('intervals.sample', (params.get('intervals') or {}).get('sample', sample),
                                   'at most intervals.aggr (%s)' % format_us(aggr))
    low, high = _int_of(st, attrs_dir + '/nr_regions/min', 10), _int_of(st, attrs_dir + '/nr_regions/max', 1000)
    if low < 3 or low > high:
        raise DamonValidationError('nr_regions', {'min': low, 'max': high}, 'min of at least 3 and at most max')
    if _int_of(st, intervals_dir + '/intervals_goal/aggrs'):
        lowest = _int_of(st, intervals_dir + '/intervals_goal/min_sample_us')
        highest = _int_of(st, intervals_dir + '/intervals_goal/max_sample_us')
        if not lowest <= sample <= highest:
            raise DamonValidationError('intervals_goal', params.get('intervals_goal'),
                                       'min_sample <= intervals.sample (%s) <= max_sample' % format_us(sample))


def _resolve_pid(host, params):
    given = [name for name in PROCESS_OPTIONS if params.get(name) is not None]
    if len(given) > 1:
        raise DamonValidationError(given[1], params[given[1]], 'only one of ' + ', '.join(PROCESS_OPTIONS))
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
        region = _suboptions('%s[%d]' % (option, index), region, _names(REGION))
        regions.append(tuple(field.parse('%s[%d].%s' % (option, index, field.option), region.get(field.option))
                             for field in REGION))
    for index, (start, end) in enumerate(regions):
        if start >= end or (index and regions[index - 1][1] > start):
            raise DamonValidationError(option, value, 'sorted, non-overlapping {start, end} ranges with '
                                                      'start < end')
    return regions


def _stage_target(st, targets_dir, params, operations, switched):
    """One monitoring target: a pid for vaddr/fvaddr, physical ranges for paddr."""
    pid = _resolve_pid(st.host, params)
    regions = parse_regions('regions', params['regions']) if params.get('regions') is not None else None
    target_dir = targets_dir + '/0'
    if operations == 'paddr' and pid is not None:
        raise DamonValidationError('pid', pid, 'nothing with operations paddr (a pid is for vaddr/fvaddr)')
    if operations != 'paddr' and pid is None and (switched or st.count(targets_dir) == 0):
        raise DamonValidationError('pid', None, 'a pid, pidfile or systemd_unit for operations %s' % operations)
    paddr_needs_ram = operations == 'paddr' and regions is None and (
        switched or st.count(targets_dir) == 0 or st.count(target_dir + '/regions') == 0)
    if not (switched or pid is not None or regions is not None or paddr_needs_ram):
        return
    st.set_count(targets_dir, 1)
    if pid is not None:
        st.set('%s/%s' % (target_dir, _file(TARGET, 'pid')), pid)
    if paddr_needs_ram:
        # sysfs does not find System RAM by itself the way DAMON_RECLAIM does.
        regions = [st.host.system_ram()]
    elif regions is None and switched and st.count(target_dir + '/regions'):
        regions = []
    if regions is not None:
        st.set_count(target_dir + '/regions', len(regions))
        for index, bounds in enumerate(regions):
            for field, value in zip(REGION, bounds):
                st.set('%s/regions/%d/%s' % (target_dir, index, field.file), value)


# ---------------------------------------------------------------- schemes

def _stage_scheme(st, scheme_dir, params, operations, created):
    host = st.host
    action = params.get('action')
    if action is not None:
        _require_keyword(host, 'action', action, ACTIONS)
    elif created:
        raise DamonValidationError('action', None, 'an action (required when the scheme is created): '
                                   + ', '.join(host.supported(ACTIONS)))
    else:
        action = st.get('%s/%s' % (scheme_dir, _file(SCHEME, 'action')))
    for_operations = PADDR_ACTIONS if operations == 'paddr' else VADDR_ACTIONS
    if action not in for_operations:
        raise DamonValidationError('action', action, 'with operations %s: %s' % (
            operations, ', '.join(a for a in host.supported(ACTIONS) if a in for_operations)))
    st.set('%s/%s' % (scheme_dir, _file(SCHEME, 'action')), action)
    _set_fields(st, '', params, [field for field in SCHEME if field.option == 'apply_interval'], scheme_dir, False)
    if params.get('target_nid') is not None:
        host.require('target_nid', 'target_nid', params['target_nid'])
        if not action.startswith('migrate_'):
            raise DamonValidationError('target_nid', params['target_nid'], 'nothing with action %s (it is '
                                       'the destination of migrate_hot/migrate_cold)' % action)
        st.set('%s/%s' % (scheme_dir, _file(SCHEME, 'target_nid')), _node(host, 'target_nid', params['target_nid']))
    _stage_access_pattern(st, scheme_dir, params, created)
    _stage_quotas(st, scheme_dir, params, created)
    _stage_watermarks(st, scheme_dir, params, created)
    if params.get('filters') is not None:
        _stage_filters(st, scheme_dir, params['filters'], operations)


def _stage_access_pattern(st, scheme_dir, params, created):
    pattern = _suboptions('access_pattern', params.get('access_pattern'), _names(ACCESS_PATTERN))
    intervals_dir = scheme_dir.split('/schemes/')[0] + '/' + CONTEXT_GROUPS['intervals'][0]
    aggr_us = _int_of(st, intervals_dir + '/aggr_us', 100000)
    max_samples = aggr_us // max(_int_of(st, intervals_dir + '/sample_us', 5000), 1)
    # A range's parser and its max file's creation value depend on the intervals.
    ranges = {'size': (parse_size, ULONG_MAX),
              'access_rate': (partial(parse_access_rate, max_samples=max_samples), max_samples),
              'age': (partial(parse_age, aggr_us=aggr_us), ULONG_MAX)}
    for field in ACCESS_PATTERN:
        parse, maximum = ranges[field.option]
        option = 'access_pattern.' + field.option
        range_dir = '%s/access_pattern/%s' % (scheme_dir, field.file)
        bounds = [bound._replace(parse=parse, default=default) for bound, default in zip(RANGE, (0, maximum))]
        _set_fields(st, option, _suboptions(option, pattern.get(field.option), _names(RANGE)), bounds, range_dir,
                    created)
        if _int_of(st, range_dir + '/min') > _int_of(st, range_dir + '/max'):
            raise DamonValidationError(option, pattern.get(field.option), 'min at most max')


def _stage_quotas(st, scheme_dir, params, created):
    quotas = _stage_group(st, 'quotas', params.get('quotas'), scheme_dir, SCHEME_GROUPS, created)
    _stage_group(st, 'quotas.weights', quotas.get('weights'), scheme_dir, SCHEME_GROUPS, created)
    if params.get('goals') is not None:
        goals_dir = '%s/%s/goals' % (scheme_dir, SCHEME_GROUPS['quotas'][0])
        goals = _list_option('goals', params['goals'])
        if goals:
            st.host.require('quota_goals', 'goals', goals)
        if st.host.feature('quota_goals'):
            st.set_count(goals_dir, len(goals))
        for index, goal in enumerate(goals):
            _stage_goal(st, '%s/%d' % (goals_dir, index), goal, 'goals[%d].' % index)


def _stage_goal(st, goal_dir, spec, prefix):
    """One quota goal; prefix is '' for damos_quota_goal and 'goals[N].' for damos_scheme."""
    host = st.host
    spec = _suboptions(prefix.rstrip('.') or 'goal', spec, GOAL_OPTIONS)
    files = {field.option: '%s/%s' % (goal_dir, field.file) for field in GOAL}
    created = st.is_new(goal_dir)
    metric_now = None if created else st.get(files['metric'], 'user_input')
    metric = spec.get('metric')
    if metric is not None:
        _require_keyword(host, prefix + 'metric', metric, GOAL_METRICS)
    elif created:
        raise DamonValidationError(prefix + 'metric', None, 'a metric (required when the goal is created): '
                                   + ', '.join(host.supported(GOAL_METRICS)))
    else:
        metric = metric_now
    if host.feature('goal_metric'):
        st.set(files['metric'], metric)
    changed_metric = metric != metric_now
    target = spec.get('target')
    if target is not None:
        value = parse_goal_target(prefix + 'target', metric, target)
        if value <= 0:
            raise DamonValidationError(prefix + 'target', target, 'a value above 0 (the kernel ignores goals '
                                       'whose target is 0)')
        st.set(files['target'], value)
    elif changed_metric:
        raise DamonValidationError(prefix + 'target', None, 'a target (required when the goal is created '
                                   'or its metric changes)')
    if spec.get('current') is not None:
        if metric != 'user_input':
            raise DamonValidationError(prefix + 'current', spec['current'], 'nothing with metric %s (the kernel '
                                       'measures it; current is for user_input)' % metric)
        st.set(files['current'], parse_int(prefix + 'current', spec['current']))
    _stage_goal_scope(st, files, spec, prefix, metric, changed_metric)
    if metric == 'some_mem_psi_us' and host.memory_psi() is None:
        st.warnings.append('PSI is off on this host (no /proc/pressure/memory): some_mem_psi_us reads 0, '
                           'so the quota only grows up to its caps')


def _stage_goal_scope(st, files, spec, prefix, metric, changed_metric):
    """nid for node_* metrics and a cgroup path for node_memcg_* metrics."""
    wanted = goal_scope(metric)
    for field, parse in ((field, {'nid': _node, 'path': _cgroup}[field.option])
                         for field in GOAL if field.option in ('nid', 'path')):
        value = spec.get(field.option)
        if value is None:
            if field.option in wanted and changed_metric:
                raise DamonValidationError(prefix + field.option, None, 'required with metric %s' % metric)
            continue
        if field.option not in wanted:
            raise DamonValidationError(prefix + field.option, value, 'nothing with metric %s' % metric)
        st.host.require(field.feature, prefix + field.option, value)
        st.set(files[field.option], parse(st.host, prefix + field.option, value))


def _stage_watermarks(st, scheme_dir, params, created):
    _stage_group(st, 'watermarks', params.get('watermarks'), scheme_dir, SCHEME_GROUPS, created)
    watermarks_dir = '%s/%s' % (scheme_dir, SCHEME_GROUPS['watermarks'][0])
    if st.get(watermarks_dir + '/metric', 'none') != 'none':
        levels = [_int_of(st, watermarks_dir + '/' + name) for name in ('high', 'mid', 'low')]
        if not levels[0] >= levels[1] >= levels[2]:
            raise DamonValidationError('watermarks', params.get('watermarks'), 'high >= mid >= low (per-mille)')


def _filter_files(st, option, spec):
    """{file: value} of one filter.  matching defaults to true: 'type: anon' means anon memory."""
    host = st.host
    spec = _suboptions(option, spec, FILTER_OPTIONS)
    kind = _require_keyword(host, option + '.type', spec.get('type'), FILTER_TYPES)
    values = {'type': kind, 'matching': parse_bool(option + '.matching', spec.get('matching', True))}
    allow = parse_bool(option + '.allow', spec.get('allow', False))
    if allow:
        host.require('filter_allow', option + '.allow', spec['allow'])
    if host.feature('filter_allow'):
        values['allow'] = allow
    needed = FILTER_TYPE_OPTIONS.get(kind, ())
    for name in FILTER_OPTIONS[3:]:
        if spec.get(name) is None:
            if name in needed:
                raise DamonValidationError('%s.%s' % (option, name), None, 'required with type %s' % kind)
        elif name not in needed:
            raise DamonValidationError('%s.%s' % (option, name), spec[name], 'nothing with type %s' % kind)
    if kind == 'memcg':
        values['memcg_path'] = _cgroup(host, option + '.memcg_path', spec['memcg_path'])
    for field in FILTER:
        if field.option in needed and field.parse is not None:
            values[field.option] = field.parse('%s.%s' % (option, field.option), spec[field.option])
    for low, high in (('addr_start', 'addr_end'), ('min', 'max')):
        if low in needed:
            if values[low] > values[high] or (low == 'addr_start' and values[low] == values[high]):
                raise DamonValidationError(option, spec, '%s below %s' % (low, high))
    if kind == 'target':
        values['target_idx'] = parse_int(option + '.target_idx', spec['target_idx'], maximum=INT_MAX)
    return {field.file: values[field.option] for field in FILTER if field.option in values}


def _stage_filters(st, scheme_dir, filters, operations):
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
        layers = zip(FILTER_LAYERS, (core, ops, []))
    else:
        layers = ((FILTER_LAYERS[-1], specs),)
    for name, entries in layers:
        if name == FILTER_LAYERS[-1] and not st.host.feature('filters'):
            continue
        st.set_count('%s/%s' % (scheme_dir, name), len(entries))
        for index, files in enumerate(entries):
            for key, value in files.items():
                st.set('%s/%s/%d/%s' % (scheme_dir, name, index, key), value)
