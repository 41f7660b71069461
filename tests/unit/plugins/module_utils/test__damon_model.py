# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DAMON model is written once (_damon_model); everything that has to spell part of it
again (the modules' documentation, which validate-modules needs literal, the role's lists
and argument specs, the role's tasks) is checked against it here.  A name that is in one
table and not in another fails a test below."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.kernel.damon.plugins.doc_fragments import _damon as _damon_fragment
from ansible_collections.kernel.damon.plugins.module_utils import _damon_model as model
from ansible_collections.kernel.damon.plugins.module_utils._damon_facts import gather_facts
from ansible_collections.kernel.damon.plugins.module_utils._damon_host import read_tree
from ansible_collections.kernel.damon.plugins.module_utils._damon_model import nest, scheme_options, subtree
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme
from ansible_collections.kernel.damon.plugins.module_utils._damon_units import ULONG_MAX
from ansible_collections.kernel.damon.plugins.module_utils._damon_module import goal_options
from ansible_collections.kernel.damon.plugins.module_utils._damon_sample import MEASURED_METRICS
from ansible_collections.kernel.damon.plugins.modules import damos_quota_goal, damos_scheme

K0 = 'kdamonds/0'
ROOT = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..')
ROLE = os.path.join(ROOT, 'roles', 'damos_autotune')

# damos_scheme's options that say what to do, not what the scheme is.
SCHEME_MODULE_ONLY = {'kdamond', 'scheme', 'state', 'running', 'take_over', 'lock_timeout', 'stop_kdamonds',
                      'stop_exclusive_modules'}


def _yaml(*parts):
    with open(os.path.join(*parts), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def _doc(module):
    """A module's documented options, with those of the doc fragments it extends."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    options = dict(doc['options'])
    for fragment in doc.get('extends_documentation_fragment', []):
        name, unused, variant = fragment.split('.')[2].partition('.')
        text = getattr(_damon_fragment.ModuleDocFragment, variant.upper() or 'DOCUMENTATION')
        options.update(yaml.safe_load(text).get('options') or {})
    return options


def _names(fields):
    return {field.option for field in fields}


# ---------------------------------------------------------------- keywords

def test_every_action_is_for_some_operations():
    assert set(model.PADDR_ACTIONS) | set(model.VADDR_ACTIONS) == set(model.ACTIONS)


@pytest.mark.parametrize('doc_path, table', [
    (('operations',), model.OPERATIONS),
    (('action',), model.ACTIONS),
    (('goals', 'metric'), model.GOAL_METRICS),
    (('quotas', 'goal_tuner'), model.GOAL_TUNERS),
    (('watermarks', 'metric'), model.WATERMARK_METRICS),
    (('filters', 'type'), model.FILTER_TYPES),
])
def test_damos_scheme_documents_and_accepts_the_models_keywords(doc_path, table):
    doc, spec = {'suboptions': _doc(damos_scheme)}, {'options': damos_scheme.argument_spec()}
    for name in doc_path:
        doc, spec = doc['suboptions'][name], spec['options'][name]
    assert set(doc['choices']) == set(table), 'DOCUMENTATION of %s' % '.'.join(doc_path)
    assert set(spec['choices']) == set(table), 'argument spec of %s' % '.'.join(doc_path)


def test_damos_quota_goal_and_the_role_take_every_goal_metric():
    assert set(_doc(damos_quota_goal)['metric']['choices']) == set(model.GOAL_METRICS)
    assert set(damos_quota_goal.argument_spec()['metric']['choices']) == set(model.GOAL_METRICS)
    role_goal = _yaml(ROLE, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']['damos_autotune_goal']
    assert set(role_goal['options']['metric']['choices']) == set(model.GOAL_METRICS)


def test_damos_sample_measures_only_metrics_the_model_has():
    assert set(MEASURED_METRICS) <= set(model.GOAL_METRICS)


def test_filter_types_that_take_options_and_core_layer_types_exist():
    assert set(model.FILTER_TYPE_OPTIONS) <= set(model.FILTER_TYPES)
    assert set(model.CORE_FILTER_TYPES) <= set(model.FILTER_TYPES)
    for needed in model.FILTER_TYPE_OPTIONS.values():
        assert set(needed) <= _names(model.FILTER)


def test_the_role_stops_the_models_exclusive_modules():
    assert _yaml(ROLE, 'vars', 'main.yml')['__damos_autotune_exclusive_modules'] == list(model.EXCLUSIVE_MODULES)
    described = ' '.join(_doc(damos_scheme)['stop_exclusive_modules']['description'])
    assert set(re.findall(r'\bDAMON_[A-Z_]+', described)) == {name.upper() for name in model.EXCLUSIVE_MODULES}


# ---------------------------------------------------------------- options

def test_damos_scheme_takes_the_models_options_and_only_them():
    assert set(damos_scheme.argument_spec()) == set(model.SCHEME_OPTIONS) | SCHEME_MODULE_ONLY
    assert set(_doc(damos_scheme)) == set(model.SCHEME_OPTIONS) | SCHEME_MODULE_ONLY


@pytest.mark.parametrize('option, fields', [
    ('intervals', model.INTERVALS),
    ('intervals_goal', model.INTERVALS_GOAL),
    ('nr_regions', model.NR_REGIONS),
    ('regions', model.REGION),
    ('access_pattern', model.ACCESS_PATTERN),
    ('access_pattern.size', model.RANGE),
    ('access_pattern.access_rate', model.RANGE),
    ('access_pattern.age', model.RANGE),
    ('quotas', model.QUOTAS + (model.Field('weights', 'weights'),)),
    ('quotas.weights', model.WEIGHTS),
    ('goals', model.GOAL),
    ('watermarks', model.WATERMARKS),
    ('filters', model.FILTER),
])
def test_suboptions_are_the_models_fields(option, fields):
    spec, doc = {'options': damos_scheme.argument_spec()}, {'suboptions': _doc(damos_scheme)}
    for name in option.split('.'):
        spec, doc = spec['options'][name], doc['suboptions'][name]
    assert set(spec['options']) == _names(fields)
    assert set(doc['suboptions']) == _names(fields)


def test_the_groups_name_the_models_fields():
    groups = dict(model.CONTEXT_GROUPS, **model.SCHEME_GROUPS)
    assert set(groups) == {'intervals', 'intervals_goal', 'nr_regions', 'quotas', 'quotas.weights', 'watermarks'}
    assert set(goal_options()) == _names(model.GOAL)
    for fields in [fields for unused, fields in groups.values()] + [model.SCHEME, model.GOAL, model.FILTER]:
        for field in fields:
            assert field.feature is None or field.feature in model.FILE_FEATURES, field


def test_the_role_passes_every_scheme_option():
    role_vars = _yaml(ROLE, 'vars', 'main.yml')
    options, reserved = role_vars['__damos_autotune_scheme_options'], role_vars['__damos_autotune_scheme_reserved']
    assert set(options) | {'goals'} == set(model.SCHEME_OPTIONS)
    assert set(options) | set(reserved) == set(damos_scheme.argument_spec()) - {'lock_timeout'}
    # present.yml passes each of them by name (a dict templated as one argument is unsafe).
    task = next(task for task in _yaml(ROLE, 'tasks', 'present.yml') if 'kernel.damon.damos_scheme' in task)
    passed = {name for name, value in task['kernel.damon.damos_scheme'].items()
              if re.match(r'^\{\{ __damos_autotune_scheme\.%s \| default\(omit\) \}\}$' % name, str(value))}
    assert passed == set(options)


def test_the_inverse_gives_options_the_module_takes():
    """scheme_options() reads a full 7.3 scheme back; every key it gives, at every level, is an
    option of damos_scheme's argument spec."""
    spec = damos_scheme.argument_spec()
    tree = {'contexts': [{'operations': 'paddr', 'monitoring_attrs': {
        'intervals': {'sample_us': 1, 'aggr_us': 2, 'update_us': 3,
                      'intervals_goal': {'access_bp': 1, 'aggrs': 0, 'min_sample_us': 1, 'max_sample_us': 2}},
        'nr_regions': {'min': 10, 'max': 20}},
        'targets': [{'regions': [{'start': 1, 'end': 2}]}],
        'schemes': [{'action': 'migrate_cold', 'apply_interval_us': 0, 'target_nid': 0,
                     'access_pattern': {'sz': {'min': 0, 'max': 1}, 'nr_accesses': {'min': 0, 'max': 1},
                                        'age': {'min': 0, 'max': 1}},
                     'quotas': {'ms': 0, 'bytes': 1, 'reset_interval_ms': 1, 'goal_tuner': 'consist',
                                'weights': {'sz_permil': 0, 'nr_accesses_permil': 1, 'age_permil': 1},
                                'goals': [{'target_metric': 'node_memcg_used_bp', 'target_value': 5, 'current_value': 0,
                                           'nid': 0, 'path': '/a'}]},
                     'watermarks': {'metric': 'none', 'interval_us': 1, 'high': 3, 'mid': 2, 'low': 1},
                     'core_filters': [{'type': 'addr', 'matching': True, 'allow': False, 'addr_start': 0,
                                       'addr_end': 4096, 'memcg_path': '', 'damon_target_idx': 0, 'min': 0,
                                       'max': 0}],
                     'ops_filters': [{'type': 'memcg', 'matching': True, 'allow': False, 'memcg_path': '/a'}]}]}]}
    options = model.scheme_options(tree, 0)

    def check(given, options_spec, where):
        for key, value in given.items():
            assert key in options_spec, '%s%s' % (where, key)
            inner = options_spec[key].get('options')
            for item in value if isinstance(value, list) else [value]:
                if inner and isinstance(item, dict):
                    check(item, inner, '%s%s.' % (where, key))
    check(options, spec, '')
    assert set(options) == set(model.SCHEME_OPTIONS) - {'pid', 'pidfile', 'systemd_unit'}


# ---------------------------------------------------------------- the options' files, as docs/design.md lists them

def options_table():
    """docs/design.md's table of damos_scheme's options and their files, from the model."""
    rows = []

    def add(option, fields, where, directory):
        for field in fields:
            release = model.FILE_FEATURES[field.feature][0] if field.feature else None
            rows.append('| `%s%s` | %s `%s%s` | %s | %s |' % (
                option, field.option, where, directory, field.file,
                '' if field.default is None else '`%s`' % field.default if field.default != '' else '(empty)',
                model.since(release) if release else ''))

    add('', model.CONTEXT, 'context', '')
    add('', model.TARGET, 'context', 'targets/0/')
    add('regions[N].', model.REGION, 'context', 'targets/0/regions/N/')
    for option, (directory, fields) in model.CONTEXT_GROUPS.items():
        add(option + '.', fields, 'context', directory + '/')
    add('', model.SCHEME, 'scheme', '')
    for field in model.ACCESS_PATTERN:
        add('access_pattern.%s.' % field.option, model.RANGE, 'scheme', 'access_pattern/%s/' % field.file)
    for option, (directory, fields) in model.SCHEME_GROUPS.items():
        add(option + '.', fields, 'scheme', directory + '/')
    add('goals[N].', model.GOAL, 'scheme', 'quotas/goals/N/')
    add('filters[N].', model.FILTER, 'scheme', '{core_,ops_,}filters/N/')
    return '\n'.join(['| option | sysfs file | when created | needs |', '|---|---|---|---|'] + rows) + '\n'


def test_design_md_lists_every_option_with_its_file():
    with open(os.path.join(ROOT, 'docs', 'design.md'), encoding='utf-8') as handle:
        text = handle.read()
    assert options_table() in text, 'docs/design.md should hold this table:\n' + options_table()


# ---------------------------------------------------------------- the inverse (the rollout's revert)

# Every option of damos_scheme away from its default, as far as each kernel has it.
RICH = {'operations': 'paddr', 'regions': [{'start': '16M', 'end': '256M'}, {'start': '300M', 'end': '400M'}],
        'intervals': {'sample': '20ms', 'aggr': '400ms', 'update': '2s'}, 'nr_regions': {'min': 20, 'max': 500},
        'action': 'pageout', 'access_pattern': {'size': {'min': '8K', 'max': '1G'}, 'access_rate': {'min': 0, 'max': 2},
                                                'age': {'min': '10s', 'max': 'max'}},
        'quotas': {'time': '20ms', 'size': '64M', 'reset_interval': '2s',
                   'weights': {'size': 3, 'access_rate': 5, 'age': 7}},
        'goals': [{'metric': 'user_input', 'target': 9000, 'current': 120},
                  {'metric': 'some_mem_psi_us', 'target': '750us'}],
        'watermarks': {'metric': 'free_mem_rate', 'interval': '3s', 'high': 900, 'mid': 500, 'low': 100},
        'filters': [{'type': 'addr', 'addr_start': 0, 'addr_end': '64M'},
                    {'type': 'memcg', 'memcg_path': 'workload.slice', 'matching': False},
                    {'type': 'anon'}]}
OTHER = {'operations': 'paddr', 'action': 'stat', 'intervals': {'sample': '5ms', 'aggr': '100ms', 'update': '1s'},
         'nr_regions': {'min': 10, 'max': 1000}, 'access_pattern': {'age': {'min': 0}},
         'quotas': {'time': 0, 'size': '1G', 'reset_interval': '1s', 'weights': {'size': 0, 'access_rate': 10, 'age': 1}},
         'goals': [{'metric': 'user_input', 'target': 100, 'current': 1}],
         'watermarks': {'metric': 'none'}, 'filters': []}


def config(host):
    """Kdamond 0's configuration: its tree without stats, effective quotas, state and pid."""
    return {rel: value for rel, value in read_tree(host, K0, include_ro=False).items()
            if '/stats/' not in rel and not rel.endswith('/effective_bytes')}


@pytest.mark.parametrize('release', ['6.12.117', '7.3.4'])
def test_scheme_options_put_back_every_option(make_host, release):
    host = make_host(release)
    rich = dict(RICH, apply_interval='200ms') if release != '6.12.117' else RICH
    ensure_scheme(host, rich)
    before = config(host)
    kdamond = gather_facts(host, refresh=False)['kdamonds'][0]
    options = scheme_options(kdamond, 0)
    assert options['filters'][1] == {'type': 'memcg', 'matching': False, 'memcg_path': '/workload.slice',
                                     **({'allow': False} if release == '7.3.4' else {})}
    assert options['access_pattern']['age'] == {'min': 25, 'max': ULONG_MAX}
    # A change of every option, then the options read before it: the tree is back byte for byte.
    ensure_scheme(host, OTHER)
    assert config(host) != before
    assert ensure_scheme(host, options)['changed'] is True
    assert config(host) == before
    assert ensure_scheme(host, options)['changed'] is False
    # And on a fresh host of the same kernel they make the same tree.
    fresh = make_host(release)
    ensure_scheme(fresh, options)
    assert config(fresh) == before


def test_scheme_options_from_a_tree_read_with_nest_and_what_a_kernel_lacks(make_host):
    host = make_host('6.12.117')
    ensure_scheme(host, RICH)
    facts = scheme_options(gather_facts(host, refresh=False)['kdamonds'][0], 0)
    tree = nest(subtree(read_tree(host, K0, include_ro=True), K0))
    assert scheme_options(tree, 0) == facts
    # 6.12 has no goal_tuner, intervals_goal or filter allow file: those options are left out.
    assert 'goal_tuner' not in facts['quotas'] and 'intervals_goal' not in facts
    assert 'allow' not in facts['filters'][0] and 'target_nid' not in facts
    assert scheme_options(tree, 1) is None and scheme_options({}, 0) is None
