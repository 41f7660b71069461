# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""damos_facts on the fake kernel."""

from __future__ import annotations

import os

from ansible_collections.kernel.damon.plugins.module_utils._damon_facts import gather_facts
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme
from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import G0, scheme


# ---------------------------------------------------------------- damos_facts

def test_facts(make_host):
    host = make_host('7.3.4')
    ensure_scheme(host, scheme())
    facts = gather_facts(host)
    assert facts['available'] is True and facts['kernel'] == '7.3.4'
    assert facts['managed'] == [0] and facts['memory_psi']['some']['total'] == 170
    assert facts['exclusive_modules'] == {'damon_stat': False, 'damon_reclaim': False, 'damon_lru_sort': False}
    assert facts['features']['goal_nid'] is True and 'node_mem_used_bp' in facts['features']['goal_metrics']
    kdamond = facts['kdamonds'][0]
    assert (kdamond['index'], kdamond['state'], kdamond['pid'], kdamond['managed']) == (0, 'on', 4242, True)
    context = kdamond['contexts'][0]
    assert context['operations'] == 'paddr' and context['intervals']['aggr_us'] == 100000
    assert context['targets'][0]['regions'] == [{'start': 1048576, 'end': 536727552}]
    quotas = context['schemes'][0]['quotas']
    assert (quotas['effective_bytes'], quotas['effective_bytes_human']) == (2 ** 30, '1.0 GiB')
    assert quotas['goals'][0]['target_metric'] == 'some_mem_psi_us' and quotas['goals'][0]['target_value'] == 500
    assert host.writes[-2:] == ['kdamonds/0/state=update_schemes_stats',
                                'kdamonds/0/state=update_schemes_effective_quotas']
    writes = len(host.writes)
    assert gather_facts(host, kdamonds=[0, 5], refresh=False)['kdamonds'][0]['index'] == 0
    assert len(host.writes) == writes


def test_facts_feature_detection_prefers_existing_files(make_host):
    # A 6.12 distribution kernel with a backported goals/N/nid file: the file wins over the version.
    host = make_host('6.12.117')
    ensure_scheme(host, scheme())
    assert gather_facts(host, refresh=False)['features']['goal_nid'] is False
    with open(os.path.join(host.admin, G0, 'nid'), 'w', encoding='utf-8') as handle:
        handle.write('0\n')
    assert gather_facts(host, refresh=False)['features']['goal_nid'] is True
