# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet filters: report rows from facts and samples, their formats, the picture, the revert."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.kernel.damon.plugins.filter.damon_fleet import (
    CSV_COLUMNS, FilterModule, health_breaches, previous_scheme, report_format, report_row, tuning_svg)

FACTS = {
    'available': True, 'kernel': '6.12.117+deb13-amd64',
    'memory_psi': {'some': {'avg10': 0.25, 'total': 1000}},
    'kdamonds': [{'index': 0, 'state': 'on', 'pid': 812, 'contexts': [{'schemes': [{
        'action': 'pageout',
        'quotas': {'ms': 0, 'bytes': 1073741824, 'reset_interval_ms': 1000, 'effective_bytes': 65536,
                   'goals': [{'target_metric': 'some_mem_psi_us', 'target_value': 500, 'current_value': 0,
                              'nid': 0}]},
        'stats': {'sz_applied': 3145728, 'qt_exceeds': 4}}]}]}],
}
SAMPLE = {'interval': 1.0, 'summary': {'psi_some_percent': 0.5},
          'samples': [{'time': float(t), 'state': 'on', 'bytes': 1048576, 'effective_bytes': 2 ** (10 + 2 * t),
                       'goals': [{'target_metric': 'some_mem_psi_us', 'target_value': 500,
                                  'current_value': None if t == 0 else 100 * t,
                                  'score_bp': None if t == 0 else 2000 * t}],
                       'score_bp': None if t == 0 else 2000 * t} for t in range(6)]}


def test_row_from_facts_and_sample():
    row = report_row(FACTS, 'damon-1', sample=SAMPLE, rollout='healthy')
    assert (row['host'], row['kernel'], row['state'], row['pid'], row['action']) == (
        'damon-1', '6.12.117+deb13-amd64', 'on', 812, 'pageout')
    assert (row['goal_metric'], row['target_value'], row['current_value'], row['score_bp']) == (
        'some_mem_psi_us', 500, 500, 10000)
    assert (row['effective_bytes'], row['quota_cap_bytes'], row['sz_applied'], row['qt_exceeds']) == (
        65536, 1073741824, 3145728, 4)
    assert (row['target'], row['current'], row['effective_human']) == ('500 us', '500 us', '64.0 KiB of 1.0 GiB')
    assert row['psi_human'] == '0.25 % avg10, 0.50 % window' and row['rollout_human'] == 'healthy'


def test_row_without_sample_or_scheme():
    row = report_row(FACTS, 'damon-1', rollout='untouched')
    assert row['current_value'] is None and row['current'] == '-' and row['target'] == '500 us'
    bare = report_row({'available': False, 'kernel': '5.10', 'kdamonds': []}, 'old', breaches=['x'])
    assert (bare['state'], bare['action'], bare['effective_human'], bare['rollout_human']) == (
        'unavailable', None, '-', '-: x')
    user = json.loads(json.dumps(FACTS))
    user['kdamonds'][0]['contexts'][0]['schemes'][0]['quotas']['goals'] = [
        {'target_metric': 'user_input', 'target_value': 400, 'current_value': 100}]
    row = report_row(user, 'h')
    assert (row['current_value'], row['score_bp'], row['current']) == (100, 2500, '100')
    with pytest.raises(AnsibleFilterError):
        report_row(None, 'h')


def test_formats():
    rows = [report_row(FACTS, 'damon-1', sample=SAMPLE, rollout='breached', breaches=['a', 'b']),
            report_row(FACTS, 'damon-2', rollout='untouched')]
    parsed = list(csv.DictReader(io.StringIO(report_format(rows, 'csv'))))
    assert [r['host'] for r in parsed] == ['damon-1', 'damon-2'] and list(parsed[0]) == list(CSV_COLUMNS)
    assert parsed[0]['effective_bytes'] == '65536' and parsed[0]['breaches'] == 'a; b'
    assert parsed[1]['current_value'] == ''
    assert json.loads(report_format(rows, 'json'))[1]['host'] == 'damon-2'
    markdown = report_format(rows, 'markdown').splitlines()
    assert len(markdown) == 4 and markdown[0].startswith('| HOST |') and 'damon-2' in markdown[3]
    table = report_format(rows, 'table').splitlines()
    assert table[0].split()[:3] == ['HOST', 'KERNEL', 'KDAMOND'] and table[1].startswith('damon-1  ')
    assert 'breached: a; b' in table[1]
    with pytest.raises(AnsibleFilterError, match='format'):
        report_format(rows, 'xml')


def test_the_site_playbook_s_table_of_quotas():
    off = json.loads(json.dumps(FACTS))
    off['kernel'] = '7.3.0-1-amd64'
    off['kdamonds'][0].update(state='off', pid=-1)
    quotas = off['kdamonds'][0]['contexts'][0]['schemes'][0]['quotas']
    quotas.update(effective_bytes=1, goals=[])
    rows = [report_row(FACTS, 'damon-1', rollout='healthy'), report_row(off, 'damon-2'),
            report_row({'available': True, 'kernel': '6.1.0', 'kdamonds': []}, 'damon-3')]
    assert report_format(rows, 'quotas').splitlines() == [
        'HOST                     KERNEL                 STATE PID      GOAL                         EFFECTIVE QUOTA',
        'damon-1                  6.12.117+deb13-amd64   on    812      some_mem_psi_us 500          64.0 KiB per 1000 ms',
        'damon-2                  7.3.0-1-amd64          off   -1       -                            1 B per 1000 ms',
        'damon-3                  6.1.0                  -     -        -                            -']
    # A longer value widens its column for every row.
    long = report_format([report_row(FACTS, 'a-very-long-host-name.example.com'), rows[0]], 'quotas').splitlines()
    assert [line.index('6.12') for line in long[1:]] == [34, 34] and long[0].index('KERNEL') == 34
    assert report_format([], 'quotas') == report_format(rows, 'quotas').splitlines()[0] + '\n'


def test_builtin_svg():
    svg = tuning_svg(SAMPLE, 'damon-1', engine='builtin')
    root = ET.fromstring(svg)
    ns = {'s': 'http://www.w3.org/2000/svg'}
    assert 'damon-1: some_mem_psi_us, target 500 us' in root.find('s:title', ns).text
    quota = root.findall(".//s:polyline[@class='quota']", ns)
    score = root.findall(".//s:polyline[@class='score']", ns)
    assert len(quota) == 1 and len(quota[0].get('points').split()) == 6
    # The first sample has no score yet: the line starts at the second.
    assert len(score) == 1 and len(score[0].get('points').split()) == 5
    assert root.findall(".//s:line[@class='score-limit']", ns) and root.findall(".//s:line[@class='quota-limit']", ns)
    with pytest.raises(AnsibleFilterError):
        tuning_svg({'samples': []})
    with pytest.raises(AnsibleFilterError, match='engine'):
        tuning_svg(SAMPLE, engine='gnuplot')


def test_builtin_svg_draws_the_memory_paged_out_where_the_host_has_swap():
    ns = {'s': 'http://www.w3.org/2000/svg'}
    plain = ET.fromstring(tuning_svg(SAMPLE, 'damon-1', engine='builtin'))
    assert not plain.findall(".//s:polyline[@class='memory']", ns)
    swapped = {'samples': [dict(point, swap_used_bytes=point['time'] * (64 << 20),
                                zram_compr_bytes=None if point['time'] == 0 else point['time'] * (32 << 20))
                           for point in SAMPLE['samples']]}
    root = ET.fromstring(tuning_svg(swapped, 'damon-1', engine='builtin'))
    memory = root.findall(".//s:polyline[@class='memory']", ns)
    # Swap from the first sample, zram's compressed size from the second; a third panel below the others.
    assert [len(line.get('points').split()) for line in memory] == [6, 5]
    assert int(root.get('height')) > int(plain.get('height'))
    labels = [text.text for text in root.findall('.//s:text', ns)]
    # Linear ticks in round MiB, up to above the largest value (320 MiB).
    assert 'paged out: swap in use' in labels and {'0 B', '100.0 MiB', '400.0 MiB'} <= set(labels)


def test_matplotlib_svg():
    pytest.importorskip('matplotlib')
    svg = tuning_svg(SAMPLE, 'damon-1', engine='matplotlib')
    assert svg.lstrip().startswith('<?xml') and 'damon-1: some_mem_psi_us, target 500 us' in svg


def test_previous_scheme():
    assert previous_scheme(FACTS) == {
        'kdamond': 0, 'scheme': 0, 'running': True, 'state': 'present', 'action': 'pageout',
        'quotas': {'time': 0, 'size': 1073741824, 'reset_interval': 1000},
        'goals': [{'metric': 'some_mem_psi_us', 'target': 500}]}
    assert previous_scheme({'kdamonds': []}, 0, 0) == {'kdamond': 0, 'scheme': 0, 'running': False, 'state': 'absent'}
    assert previous_scheme(FACTS, 0, 1)['state'] == 'absent'
    facts = json.loads(json.dumps(FACTS))
    facts['kdamonds'][0]['contexts'][0]['schemes'][0]['quotas']['goals'] = [
        {'target_metric': 'node_memcg_used_bp', 'target_value': 3000, 'current_value': 0, 'nid': 1, 'path': '/a'},
        {'target_metric': 'user_input', 'target_value': 10, 'current_value': 3},
        {'target_metric': 'user_input', 'target_value': 0, 'current_value': 0}]
    assert previous_scheme(facts)['goals'] == [
        {'metric': 'node_memcg_used_bp', 'target': 3000, 'nid': 1, 'path': '/a'},
        {'metric': 'user_input', 'target': 10, 'current': 3}]


# ---------------------------------------------------------------- the rollout's health gate

def window(**summary):
    """A damos_sample result (as async_status returns it) of a healthy 8 s window, with summary changes."""
    healthy = {'samples': 9, 'seconds': 8.0, 'states': ['on'], 'stopped': False, 'cap_bytes': 0,
               'cap_bytes_human': 'none', 'at_cap_seconds': 0.0, 'psi_some_percent': 0.5}
    return {'finished': 1, 'changed': False, 'summary': dict(healthy, **summary)}


PINNED = window(cap_bytes=65536, cap_bytes_human='64.0 KiB', at_cap_seconds=6.0)


def test_a_healthy_host_has_no_breach():
    assert health_breaches(FACTS, 0, window(), psi_limit=10, pinned_seconds=5) == []
    # At the limits, not above them.
    assert health_breaches(FACTS, sample=window(psi_some_percent=10.0), psi_limit=10) == []
    assert health_breaches(FACTS, sample=PINNED, pinned_seconds=6.5) == []
    # No window (the change failed before it): the facts alone.
    assert health_breaches(FACTS) == [] and health_breaches(FACTS, sample={}) == []


def test_the_quota_pinned_at_its_cap():
    assert health_breaches(FACTS, sample=PINNED, pinned_seconds=5) == [
        'effective quota pinned at its cap of 64.0 KiB for 6 s']
    assert health_breaches(FACTS, sample=PINNED, pinned_seconds=6) == [
        'effective quota pinned at its cap of 64.0 KiB for 6 s']
    # 0 turns the check off (also the default); without a cap the quota cannot be pinned.
    assert health_breaches(FACTS, sample=PINNED, pinned_seconds=0) == []
    assert health_breaches(FACTS, sample=PINNED) == []
    assert health_breaches(FACTS, sample=window(at_cap_seconds=60.0), pinned_seconds=5) == []


def test_memory_pressure_above_the_limit():
    assert health_breaches(FACTS, sample=window(psi_some_percent=12.345), psi_limit=10) == [
        'memory PSI some 12.35 % of the window, above the limit of 10.00 %']
    assert health_breaches(FACTS, sample=window(psi_some_percent=0.5), psi_limit=0.25) == [
        'memory PSI some 0.50 % of the window, above the limit of 0.25 %']
    # A window without a PSI share (one sample, no PSI) passes.
    assert health_breaches(FACTS, sample=window(psi_some_percent=None), psi_limit=0) == []


def test_a_kdamond_that_is_not_running():
    off = json.loads(json.dumps(FACTS))
    off['kdamonds'][0].update(state='off', pid=-1)
    assert health_breaches(off, sample=window(states=['off', 'on'], stopped=True)) == [
        'kdamond 0 is off (states seen in the window: off, on)']
    # Running at the end, but stopped during the window.
    assert health_breaches(FACTS, sample=window(states=['off', 'on'], stopped=True)) == [
        'kdamond 0 is on (states seen in the window: off, on)']
    # No such kdamond in the facts, no window.
    assert health_breaches(FACTS, kdamond=1) == ['kdamond 1 is missing (states seen in the window: )']
    assert health_breaches({'available': True, 'kdamonds': []}) == [
        'kdamond 0 is missing (states seen in the window: )']


def test_every_breach_in_order():
    off = json.loads(json.dumps(FACTS))
    off['kdamonds'][0]['state'] = 'off'
    sample = window(states=['on', 'off'], stopped=True, psi_some_percent=40.0, cap_bytes=65536,
                    cap_bytes_human='64.0 KiB', at_cap_seconds=8.0)
    assert health_breaches(off, 0, sample, psi_limit=10, pinned_seconds=8,
                           error='Roll the scheme out to the batch: EBUSY') == [
        'Roll the scheme out to the batch: EBUSY',
        'kdamond 0 is off (states seen in the window: on, off)',
        'memory PSI some 40.00 % of the window, above the limit of 10.00 %',
        'effective quota pinned at its cap of 64.0 KiB for 8 s']


def test_a_failed_task_is_a_breach():
    # The failed task's result has no summary.
    assert health_breaches(FACTS, sample={'failed': True, 'msg': 'x'}, error='Collect the settle window: x') == [
        'Collect the settle window: x']
    assert health_breaches(FACTS, sample=window(), error='') == []


def test_thresholds_as_the_playbook_templates_them():
    # Templated variables may arrive as strings (older ansible-core).
    sample = window(psi_some_percent=20.0, cap_bytes=65536, cap_bytes_human='64.0 KiB', at_cap_seconds=8.0)
    assert health_breaches(FACTS, '0', sample, psi_limit='10.0', pinned_seconds='8.0') == [
        'memory PSI some 20.00 % of the window, above the limit of 10.00 %',
        'effective quota pinned at its cap of 64.0 KiB for 8 s']


def test_the_gate_refuses_what_it_cannot_read():
    with pytest.raises(AnsibleFilterError, match='expected ansible_facts.damon'):
        health_breaches(None)
    with pytest.raises(AnsibleFilterError, match='sample must be the result of damos_sample'):
        health_breaches(FACTS, sample=['x'])
    with pytest.raises(AnsibleFilterError, match="psi_limit must be a number, got 'ten'"):
        health_breaches(FACTS, psi_limit='ten')
    with pytest.raises(AnsibleFilterError, match='pinned_seconds must be a number'):
        health_breaches(FACTS, pinned_seconds=None)
    with pytest.raises(AnsibleFilterError, match='kdamond must be an integer'):
        health_breaches(FACTS, kdamond='first')


def test_filter_names():
    assert sorted(FilterModule().filters()) == [
        'damon_health_breaches', 'damon_previous_scheme', 'damon_report_format', 'damon_report_row',
        'damon_tuning_svg']
