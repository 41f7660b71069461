# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts: what DAMON runs on a host and how it is configured (ansible_facts.damon), read
from the tree with the model's layout, and refresh_stats(), which asks a running kdamond to
copy its stats and effective quotas into sysfs first.

Part of the core (docs/design.md, "Layers"): pure standard library.  It loads the host,
the model, the units and the errors and nothing that plans or writes a configuration, so
damos_facts and damos_sample stay small.
"""

from __future__ import annotations

from ._damon_errors import DamonKernelError
from ._damon_host import read_tree
from ._damon_model import kdamond_dir, nest, subtree
from ._damon_units import format_bytes, parse_int

_BYTE_KEYS = ('bytes', 'effective_bytes', 'sz_tried', 'sz_applied', 'sz_ops_filter_passed')


def _with_human_bytes(node):
    for key in _BYTE_KEYS:
        if isinstance(node.get(key), int):
            node[key + '_human'] = format_bytes(node[key])
    return node


def _scheme_facts(scheme):
    facts = {key: value for key, value in scheme.items() if not key.endswith('filters')}
    size = facts.get('access_pattern', {}).get('sz')
    if size:
        size.update(min_human=format_bytes(size['min']), max_human=format_bytes(size['max']))
    _with_human_bytes(facts.get('quotas', {}))
    _with_human_bytes(facts.get('stats', {}))
    facts['filters'] = [dict(entry, layer=layer.replace('_filters', '') if layer != 'filters' else 'legacy')
                        for layer in ('core_filters', 'ops_filters', 'filters') for entry in scheme.get(layer, [])]
    return facts


def _context_facts(context):
    attrs = context.get('monitoring_attrs', {})
    facts = {key: value for key, value in context.items() if key not in ('monitoring_attrs', 'schemes')}
    facts.update(intervals=attrs.get('intervals', {}), nr_regions=attrs.get('nr_regions', {}),
                 schemes=[_scheme_facts(scheme) for scheme in context.get('schemes', [])])
    return facts


def _kdamond_facts(host, index, managed):
    kdamond = kdamond_dir(index)
    node = nest(subtree(read_tree(host, kdamond, include_ro=True), kdamond))
    facts = {'index': index, 'state': host.read(kdamond + '/state'), 'pid': int(host.read(kdamond + '/pid')),
             'managed': index in managed}
    facts.update({key: value for key, value in node.items() if key != 'contexts'})
    facts['contexts'] = [_context_facts(context) for context in node.get('contexts', [])]
    return facts


def refresh_stats(host, index):
    """Copy stats and effective quotas of a running kdamond into sysfs before reading."""
    keywords = ['update_schemes_stats']
    if host.feature('effective_quotas'):
        keywords.append('update_schemes_effective_quotas')
    for keyword in keywords:
        try:
            host.write(kdamond_dir(index) + '/state', keyword)
        except DamonKernelError:
            # A vaddr kdamond stops by itself when its processes exit.
            if host.read(kdamond_dir(index) + '/state') == 'on':
                raise
            return


def gather_facts(host, kdamonds=None, refresh=True):
    """ansible_facts.damon: what DAMON runs on this host and how it is configured."""
    facts = {'available': False, 'reason': None, 'kernel': host.release, 'features': {},
             'exclusive_modules': host.exclusive_modules(), 'memory_psi': host.memory_psi(),
             'managed': sorted(host.managed()), 'kdamonds': []}
    if not host.available():
        facts['reason'] = ('%s does not exist: this kernel has no DAMON sysfs interface (CONFIG_DAMON_SYSFS)'
                           % host.shown(host.admin))
        return facts
    count = int(host.read('kdamonds/nr_kdamonds'))
    wanted = range(count) if kdamonds is None else (parse_int('kdamonds', index) for index in kdamonds)
    wanted = [index for index in wanted if index < count]
    if refresh:
        # Only kdamonds this collection configured: an update_* keyword rewrites the
        # stats files of the kdamond it goes to, and others' trees are left byte for byte.
        managed = set(facts['managed'])
        with host.lock():
            for index in wanted:
                if index in managed and host.read(kdamond_dir(index) + '/state') == 'on':
                    refresh_stats(host, index)
    facts.update(available=True, features=host.features(),
                 kdamonds=[_kdamond_facts(host, index, set(facts['managed'])) for index in wanted])
    return facts
