# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DAMON model, written once and in DAMON's own words: which keywords and files each
kernel release has, how the sysfs tree is laid out, and for every damos_scheme option the
sysfs file that holds it, how its value is parsed, its value when the kernel creates the
directory, and the feature that gates it.

Everything else reads these tables: staging (_damon_stage) turns options into files with
them, the host (_damon_host) detects features with them, the facts (_damon_facts) shape the
tree with them, and scheme_options() below turns a read tree back into options with them.
The modules' argument specs take their choices from them, and a unit test checks the
modules' documentation and the role's lists against them.

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible; depends on _damon_units and _damon_errors only.
"""

from __future__ import annotations

import re
from collections import namedtuple
from functools import partial

from ._damon_units import (
    UINT_MAX,
    parse_choice,
    parse_int,
    parse_ratio,
    parse_size,
    parse_time,
)

# ---------------------------------------------------------------- keywords, by release

# Keyword values cannot be probed without writing, so they go by release (damon-sysfs.md
# sec. 1).  'collapse' and 'node_eligible_mem_bp' were seen first on 7.3.
OPERATIONS = {'paddr': (5, 18), 'vaddr': (5, 18), 'fvaddr': (5, 19)}
ACTIONS = {'willneed': (5, 18), 'cold': (5, 18), 'pageout': (5, 18), 'hugepage': (5, 18),
           'nohugepage': (5, 18), 'stat': (5, 18), 'lru_prio': (6, 0), 'lru_deprio': (6, 0),
           'migrate_hot': (6, 11), 'migrate_cold': (6, 11), 'collapse': (7, 3)}
PADDR_ACTIONS = ('pageout', 'lru_prio', 'lru_deprio', 'migrate_hot', 'migrate_cold', 'stat')
VADDR_ACTIONS = ('willneed', 'cold', 'pageout', 'hugepage', 'nohugepage', 'migrate_hot',
                 'migrate_cold', 'stat', 'collapse')
GOAL_METRICS = {'user_input': (6, 8), 'some_mem_psi_us': (6, 9), 'node_mem_used_bp': (6, 16),
                'node_mem_free_bp': (6, 16), 'node_memcg_used_bp': (6, 19),
                'node_memcg_free_bp': (6, 19), 'active_mem_bp': (7, 0), 'inactive_mem_bp': (7, 0),
                'node_eligible_mem_bp': (7, 3)}
FILTER_TYPES = {'anon': (6, 3), 'memcg': (6, 3), 'addr': (6, 6), 'target': (6, 6), 'young': (6, 10),
                'hugepage_size': (6, 15), 'unmapped': (6, 15), 'active': (6, 15)}
CORE_FILTER_TYPES = ('addr', 'target')
WATERMARK_METRICS = ('none', 'free_mem_rate')
GOAL_TUNERS = ('consist', 'temporal')
EXCLUSIVE_MODULES = ('damon_stat', 'damon_reclaim', 'damon_lru_sort')

COMMIT_KEYWORDS = ('commit', 'commit_schemes_quota_goals')

KDAMOND_GLOB = 'kdamonds/[0-9]*'
CONTEXT_GLOB = KDAMOND_GLOB + '/contexts/[0-9]*'
SCHEME_GLOB = CONTEXT_GLOB + '/schemes/[0-9]*'


# feature: (release that added it, directory that would hold it, entry name).  Detected by
# looking at an existing sibling directory first, so distribution backports count.
FILE_FEATURES = {
    'filters': ((6, 3), SCHEME_GLOB, 'filters'),
    'apply_interval': ((6, 7), SCHEME_GLOB, 'apply_interval_us'),
    'quota_goals': ((6, 8), SCHEME_GLOB + '/quotas', 'goals'),
    'effective_quotas': ((6, 9), SCHEME_GLOB + '/quotas', 'effective_bytes'),
    'goal_metric': ((6, 9), SCHEME_GLOB + '/quotas/goals/[0-9]*', 'target_metric'),
    'target_nid': ((6, 11), SCHEME_GLOB, 'target_nid'),
    'filter_allow': ((6, 14), SCHEME_GLOB + '/*filters/[0-9]*', 'allow'),
    'core_ops_filters': ((6, 15), SCHEME_GLOB, 'core_filters'),
    'intervals_goal': ((6, 15), CONTEXT_GLOB + '/monitoring_attrs/intervals', 'intervals_goal'),
    'goal_nid': ((6, 16), SCHEME_GLOB + '/quotas/goals/[0-9]*', 'nid'),
    'refresh_ms': ((6, 17), KDAMOND_GLOB, 'refresh_ms'),
    'dests': ((6, 17), SCHEME_GLOB, 'dests'),
    'addr_unit': ((6, 18), CONTEXT_GLOB, 'addr_unit'),
    'goal_path': ((6, 19), SCHEME_GLOB + '/quotas/goals/[0-9]*', 'path'),
    'obsolete_target': ((6, 19), CONTEXT_GLOB + '/targets/[0-9]*', 'obsolete_target'),
    'max_nr_snapshots': ((7, 0), SCHEME_GLOB + '/stats', 'max_nr_snapshots'),
    'goal_tuner': ((7, 1), SCHEME_GLOB + '/quotas', 'goal_tuner'),
}


def since(version):
    """'Linux 6.9' for (6, 9): how messages name the release that added something."""
    return 'Linux %d.%d' % version[:2]


# ---------------------------------------------------------------- the tree's layout

def kdamond_dir(kdamond):
    return 'kdamonds/%d' % kdamond


def context_dir(kdamond):
    """kernel.damon configures context 0 of a kdamond (DAMON runs one context per kdamond)."""
    return 'kdamonds/%d/contexts/0' % kdamond


def scheme_dir(kdamond, scheme):
    return '%s/schemes/%d' % (context_dir(kdamond), scheme)


def goal_dir(kdamond, scheme, goal):
    return '%s/quotas/goals/%d' % (scheme_dir(kdamond, scheme), goal)


def nr_file(dirpath):
    base = dirpath.rsplit('/', 1)[-1]
    return '%s/nr_%s' % (dirpath, 'filters' if base.endswith('filters') else base)


def is_count_file(rel):
    """nr_schemes in schemes/, nr_filters in *filters/, ...; not nr_accesses_permil or stats/nr_tried."""
    return '/' in rel and nr_file(rel.rsplit('/', 1)[0]) == rel


def tree_order_key(rel):
    """A dir's nr_* file first, then its other files, then named subdirs, then numeric ones."""
    parts = rel.split('/')
    key = [(3, int(part), '') if part.isdigit() else (2, 0, part) for part in parts[:-1]]
    key.append((0 if is_count_file(rel) else 1, 0, parts[-1]))
    return key


def subtree(flat, prefix):
    start = prefix + '/'
    return {rel[len(start):]: value for rel, value in flat.items() if rel.startswith(start)}


_STRING_FILES = ('operations', 'action', 'target_metric', 'type', 'metric', 'goal_tuner',
                 'memcg_path', 'path')


def _typed(name, value):
    if name in _STRING_FILES:
        return value
    if name == 'avail_operations':
        return value.split()
    if value in ('Y', 'N'):
        return value == 'Y'
    return int(value) if re.match(r'^-?[0-9]+$', value) else value


def nest(flat):
    """Flat map -> nested dicts; a dir of numbered children (plus its nr_* file) -> list."""
    root = {}
    for rel in sorted(flat, key=tree_order_key):
        parts = rel.split('/')
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _typed(parts[-1], flat[rel])
    return _listify(root)


def _listify(node, path='.'):
    if not isinstance(node, dict):
        return node
    items = {name: _listify(child, path + '/' + name) for name, child in node.items()}
    named = [name for name in items if not name.isdigit()]
    if items and all(is_count_file(path + '/' + name) for name in named):
        return [items[name] for name in sorted(items, key=lambda n: int(n) if n.isdigit() else -1)
                if name.isdigit()]
    return items


# ---------------------------------------------------------------- options and their files

# One option of damos_scheme (or of a goal, a filter, a region) and the sysfs file that holds
# it: parse(option name, value) gives the file's value (None: it depends on other options,
# staging parses it); default is what staging writes to the file when a run creates its
# directory and the option is not given (None: the kernel's own value stays), and for a
# goal's files the value a goal has where the kernel lacks the file; feature names the
# FILE_FEATURES entry without which the file does not exist (None: every DAMON sysfs has it).
Field = namedtuple('Field', ('option', 'file', 'parse', 'default', 'feature'))
Field.__new__.__defaults__ = (None, None, None)

# the context directory's own files
CONTEXT = (
    Field('operations', 'operations', None, 'paddr'),
)
# targets/0 of a vaddr/fvaddr context: the process (pid, pidfile and systemd_unit resolve to it)
TARGET = (
    Field('pid', 'pid_target'),
)
# monitoring_attrs/intervals of a context
INTERVALS = (
    Field('sample', 'sample_us', parse_time, 5000),
    Field('aggr', 'aggr_us', parse_time, 100000),
    Field('update', 'update_us', parse_time, 1000000),
)
# monitoring_attrs/intervals/intervals_goal: the kernel tunes sample and aggr while aggrs is not 0
INTERVALS_GOAL = (
    Field('access_bp', 'access_bp', parse_ratio, None, 'intervals_goal'),
    Field('aggrs', 'aggrs', parse_int, None, 'intervals_goal'),
    Field('min_sample', 'min_sample_us', parse_time, None, 'intervals_goal'),
    Field('max_sample', 'max_sample_us', parse_time, None, 'intervals_goal'),
)
# monitoring_attrs/nr_regions
NR_REGIONS = (
    Field('min', 'min', parse_int, 10),
    Field('max', 'max', parse_int, 1000),
)
# targets/0/regions/N of a paddr context
REGION = (
    Field('start', 'start', parse_size),
    Field('end', 'end', parse_size),
)
# the scheme directory's own files
SCHEME = (
    Field('action', 'action'),
    Field('apply_interval', 'apply_interval_us', parse_time, None, 'apply_interval'),
    Field('target_nid', 'target_nid', None, None, 'target_nid'),
)
# access_pattern/<file>/{min,max}: the parsers depend on the intervals (a rate in % of every
# sample, an age as a time), so staging makes them; default is the max file's creation value
# (None: ULONG_MAX, or every sample for access_rate).
ACCESS_PATTERN = (
    Field('size', 'sz'),
    Field('access_rate', 'nr_accesses'),
    Field('age', 'age'),
)
RANGE = (
    Field('min', 'min'),
    Field('max', 'max'),
)
# quotas
QUOTAS = (
    Field('time', 'ms', partial(parse_time, unit='ms'), 0),
    Field('size', 'bytes', parse_size, 0),
    Field('reset_interval', 'reset_interval_ms', partial(parse_time, unit='ms'), 1000),
    Field('goal_tuner', 'goal_tuner', partial(parse_choice, choices=GOAL_TUNERS), None, 'goal_tuner'),
)
# quotas/weights (kstrtouint files)
WEIGHTS = (
    Field('size', 'sz_permil', partial(parse_int, maximum=UINT_MAX), 0),
    Field('access_rate', 'nr_accesses_permil', partial(parse_int, maximum=UINT_MAX), 10),
    Field('age', 'age_permil', partial(parse_int, maximum=UINT_MAX), 1),
)
# quotas/goals/N: target's unit follows the metric (parse_goal_target)
GOAL = (
    Field('metric', 'target_metric', None, 'user_input', 'goal_metric'),
    Field('target', 'target_value'),
    Field('current', 'current_value', parse_int, 0),
    Field('nid', 'nid', None, 0, 'goal_nid'),
    Field('path', 'path', None, '', 'goal_path'),
)
# watermarks (levels in per-mille of free memory)
WATERMARKS = (
    Field('metric', 'metric', partial(parse_choice, choices=WATERMARK_METRICS), 'none'),
    Field('interval', 'interval_us', parse_time),
    Field('high', 'high', partial(parse_int, maximum=1000)),
    Field('mid', 'mid', partial(parse_int, maximum=1000)),
    Field('low', 'low', partial(parse_int, maximum=1000)),
)
# filters/N, core_filters/N, ops_filters/N (the layers of 6.15)
FILTER = (
    Field('type', 'type'),
    Field('matching', 'matching'),
    Field('allow', 'allow', None, None, 'filter_allow'),
    Field('memcg_path', 'memcg_path'),
    Field('addr_start', 'addr_start', parse_size),
    Field('addr_end', 'addr_end', parse_size),
    Field('target_idx', 'damon_target_idx'),
    Field('min', 'min', parse_size),
    Field('max', 'max', parse_size),
)
# The filter directories of a scheme: the core and ops layers of 6.15, then filters, the only
# one before 6.15 (kept empty after).
FILTER_LAYERS = ('core_filters', 'ops_filters', 'filters')
# The options a filter of each type needs, and only it takes.
FILTER_TYPE_OPTIONS = {'memcg': ('memcg_path',), 'addr': ('addr_start', 'addr_end'), 'target': ('target_idx',),
                       'hugepage_size': ('min', 'max')}

# damos_scheme's dict options: option -> (directory below the context or the scheme, fields).
CONTEXT_GROUPS = {
    'intervals': ('monitoring_attrs/intervals', INTERVALS),
    'intervals_goal': ('monitoring_attrs/intervals/intervals_goal', INTERVALS_GOAL),
    'nr_regions': ('monitoring_attrs/nr_regions', NR_REGIONS),
}
SCHEME_GROUPS = {
    'quotas': ('quotas', QUOTAS),
    'quotas.weights': ('quotas/weights', WEIGHTS),
    'watermarks': ('watermarks', WATERMARKS),
}
# Every option that describes a scheme (what scheme_options() gives back), in the order of
# the tree: the context's, its target's, then the scheme's.
PROCESS_OPTIONS = ('pid', 'pidfile', 'systemd_unit')
SCHEME_OPTIONS = ('operations',) + PROCESS_OPTIONS + ('regions', 'intervals', 'intervals_goal', 'nr_regions') \
    + tuple(field.option for field in SCHEME) + ('access_pattern', 'quotas', 'goals', 'watermarks', 'filters')


def goal_scope(metric):
    """The options that say where a goal's metric is measured: nid for node_* metrics, nid and
    a cgroup path for node_memcg_* metrics."""
    if metric.startswith('node_memcg_'):
        return ('nid', 'path')
    if metric.startswith('node_'):
        return ('nid',)
    return ()


def parse_goal_target(option, metric, value):
    """A goal's target in its metric's unit: microseconds for *_us, basis points for *_bp, a
    plain number otherwise (user_input)."""
    if metric.endswith('_us'):
        return parse_time(option, value, 'us')
    if metric.endswith('_bp'):
        return parse_ratio(option, value)
    return parse_int(option, value)


# ---------------------------------------------------------------- the inverse: options from a read tree

def _read(node, fields):
    """{option: value} of the fields whose file NODE (a dict read with nest()) has."""
    return {field.option: node[field.file] for field in fields if isinstance(node, dict) and field.file in node}


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
    options = _read(context, CONTEXT)
    # Facts lift monitoring_attrs' files into the context; a tree read with nest() has them below.
    attrs = context.get('monitoring_attrs') or context
    intervals = attrs.get('intervals') or {}
    goal = intervals.get('intervals_goal') or {}
    if goal:
        options['intervals_goal'] = _read(goal, INTERVALS_GOAL)
    # While the kernel tunes sample and aggr, giving them only draws a warning.
    options['intervals'] = _read(intervals, [field for field in INTERVALS
                                             if not goal.get('aggrs') or field.option == 'update'])
    options['nr_regions'] = _read(attrs.get('nr_regions'), NR_REGIONS)
    targets = context.get('targets') or []
    if targets and options.get('operations') == 'paddr':
        options['regions'] = [_read(region, REGION) for region in targets[0].get('regions') or []]
    elif targets:
        options.update(_read(targets[0], TARGET))
    options.update(_read(found, SCHEME))
    if not str(options.get('action')).startswith('migrate_'):
        options.pop('target_nid', None)     # a destination only migrate_* actions have
    pattern = found.get('access_pattern') or {}
    options['access_pattern'] = {field.option: _read(pattern[field.file], RANGE)
                                 for field in ACCESS_PATTERN if field.file in pattern}
    quotas = found.get('quotas') or {}
    options['quotas'] = _read(quotas, QUOTAS)
    options['quotas']['weights'] = _read(quotas.get('weights'), WEIGHTS)
    if 'goals' in quotas:
        options['goals'] = [_goal_options(entry) for entry in quotas['goals'] or []
                            # A target of 0 is a goal the kernel skips, and one damos_scheme refuses to write.
                            if entry.get('target_value')]
    options['watermarks'] = _read(found.get('watermarks'), WATERMARKS)
    # Facts list every layer's filters under filters; a tree read with nest() has one list per layer.
    if any(layer in found for layer in FILTER_LAYERS):
        options['filters'] = [_filter_options(entry) for layer in FILTER_LAYERS for entry in found.get(layer) or []]
    # An option with nothing read is not given (an empty list is: no goals, no filters).
    for parent in (options, options['quotas']):
        for name in [name for name, value in parent.items() if value is None or value == {}]:
            del parent[name]
    return options


def _goal_options(entry):
    """A goal's options: its metric (user_input before goals had one), its target, and what
    that metric takes (current for user_input, its scope for node_* metrics)."""
    defaults = {field.option: field.default for field in GOAL}
    values = dict(defaults, **{key: value for key, value in _read(entry, GOAL).items() if value is not None})
    metric = values['metric'] or defaults['metric']
    wanted = ('metric', 'target') + (('current',) if metric == 'user_input' else ()) + goal_scope(metric)
    return {option: values[option] for option in wanted}


def _filter_options(entry):
    common = ('type', 'matching', 'allow')
    wanted = common + FILTER_TYPE_OPTIONS.get(entry.get('type'), ())
    return {option: value for option, value in _read(entry, FILTER).items() if option in wanted}
