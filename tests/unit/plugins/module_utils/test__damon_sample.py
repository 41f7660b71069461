# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos_sample's core on the fake kernel: goal current values measured as the kernel does,
the series, the window summary the rollout gate reads, and what it writes."""

from __future__ import annotations

import os

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme
from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import DamonValidationError
from ansible_collections.kernel.damon.plugins.module_utils._damon_sample import (
    Reading, goal_current, parse_meminfo, parse_numa_stat, sample_scheme, summarize)

PSI = 'some avg10=%.2f avg60=0.00 avg300=0.00 total=%d\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'
SCHEME = {'operations': 'paddr', 'action': 'pageout', 'quotas': {'reset_interval': '1s', 'size': '64K'},
          'goals': [{'metric': 'some_mem_psi_us', 'target': '500us'}]}


class Clock:
    """A monotonic clock that host.sleep advances; each tick writes the next PSI total."""

    def __init__(self, host, psi_per_second):
        self.now, self.host, self.rate = 100.0, host, psi_per_second
        self.total = 1000
        host.sleep = self.sleep

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.total += int(self.rate * seconds)
        write(self.host, 'proc/pressure/memory', PSI % (1.5, self.total))


def write(host, rel, text):
    path = os.path.join(host.root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(text)


def test_psi_goal_series_and_summary(make_host):
    host = make_host('7.3.4')
    ensure_scheme(host, SCHEME)
    clock = Clock(host, psi_per_second=2000)
    write(host, 'proc/pressure/memory', PSI % (1.5, clock.total))
    host.writes.clear()
    result = sample_scheme(host, {'duration': '3s', 'interval': '1s'}, clock=clock)
    samples = result['samples']
    assert [s['time'] for s in samples] == [0.0, 1.0, 2.0, 3.0]
    # 2000 us of stall per second and a 1 s charge window: 2000 us per window, score 4x the target.
    assert samples[0]['goals'][0]['current_value'] is None and samples[0]['score_bp'] is None
    assert [s['goals'][0]['current_value'] for s in samples[1:]] == [2000, 2000, 2000]
    assert samples[-1]['score_bp'] == 40000 and samples[-1]['goals'][0]['target_value'] == 500
    # The fake kernel's effective quota is the size quota: at its cap from the first sample.
    assert {s['effective_bytes'] for s in samples} == {65536}
    summary = result['summary']
    assert summary['at_cap_seconds'] == 3.0 and summary['at_cap_whole_window'] is True
    assert summary['cap_bytes'] == 65536 and summary['cap_bytes_human'] == '64.0 KiB' and summary['stopped'] is False and summary['states'] == ['on']
    assert summary['psi_some_percent'] == 0.2 and summary['psi_some_avg10'] == 1.5
    assert summary['current_value'] == 2000 and summary['score_bp'] == 40000
    # Each sample refreshes the managed kdamond, nothing else.
    assert host.writes == ['kdamonds/0/state=update_schemes_stats',
                           'kdamonds/0/state=update_schemes_effective_quotas'] * 4


def test_single_sample_and_unmanaged_kdamond_is_only_read(make_host):
    host = make_host('6.12.117')
    ensure_scheme(host, SCHEME)
    os.unlink(host.managed_path)
    host.writes.clear()
    result = sample_scheme(host, {'duration': 0}, clock=Clock(host, 0))
    assert len(result['samples']) == 1 and host.writes == []
    assert result['summary']['psi_some_percent'] is None and result['summary']['at_cap_seconds'] == 0
    assert 'not configured by kernel.damon' in result['warnings'][0]


def test_stopped_kdamond_and_missing_scheme(make_host):
    host = make_host('6.12.117')
    ensure_scheme(host, dict(SCHEME, running=False))
    result = sample_scheme(host, {'duration': '1s'}, clock=Clock(host, 0))
    assert result['summary']['stopped'] is True and result['summary']['states'] == ['off']
    assert result['summary']['at_cap_seconds'] == 0
    with pytest.raises(DamonValidationError, match="scheme.*kdamond 0 has 1 schemes"):
        sample_scheme(host, {'scheme': 1}, clock=Clock(host, 0))
    with pytest.raises(DamonValidationError, match='interval'):
        sample_scheme(host, {'interval': '1ms'}, clock=Clock(host, 0))


def test_summary_counts_the_trailing_run_at_cap():
    samples = [{'time': t, 'state': 'on', 'bytes': 100, 'effective_bytes': e, 'goals': [], 'score_bp': None}
               for t, e in enumerate([100, 50, 100, 100, 100])]
    summary = summarize(samples, 1.0)
    assert summary['at_cap_seconds'] == 2.0 and summary['at_cap_whole_window'] is False
    assert (summary['effective_bytes_min'], summary['effective_bytes_max']) == (50, 100)
    assert summarize([dict(s, bytes=0) for s in samples], 1.0)['at_cap_seconds'] == 0


class _Host:
    def __init__(self, files):
        self.files = files

    def read_host_file(self, rel):
        return self.files.get(rel)


@pytest.mark.parametrize('goal, expected', [
    ({'target_metric': 'user_input', 'current_value': 7}, 7),
    ({'target_metric': 'node_mem_free_bp', 'nid': 1}, 2500),
    ({'target_metric': 'node_mem_used_bp', 'nid': 1}, 7500),
    ({'target_metric': 'active_mem_bp'}, 2000),
    ({'target_metric': 'inactive_mem_bp'}, 8000),
    ({'target_metric': 'node_memcg_used_bp', 'nid': 1, 'path': '/workload.slice'}, 1000),
    ({'target_metric': 'node_memcg_free_bp', 'nid': 1, 'path': 'workload.slice'}, 9000),
    ({'target_metric': 'node_mem_free_bp', 'nid': 3}, None),
    ({'target_metric': 'node_eligible_mem_bp', 'nid': 0}, None),
])
def test_goal_current_per_metric(goal, expected):
    host = _Host({
        'sys/devices/system/node/node1/meminfo': 'Node 1 MemTotal:  4000 kB\nNode 1 MemFree:   1000 kB\n',
        'proc/meminfo': 'MemTotal: 8000 kB\nActive:  200 kB\nInactive:  800 kB\n',
        'sys/fs/cgroup/workload.slice/memory.numa_stat': 'anon N0=0 N1=262144\nfile N0=5 N1=147456\n',
    })
    reading = Reading(host, 1.0, None, {})
    assert goal_current(goal, reading, None, 1000000) == expected


def test_psi_current_scales_to_the_charge_window():
    previous = Reading(None, 10.0, {'some': {'total': 1000}}, {})
    reading = Reading(None, 10.5, {'some': {'total': 1600}}, {})
    goal = {'target_metric': 'some_mem_psi_us'}
    # 600 us in 0.5 s is 120 us per 100 ms window.
    assert goal_current(goal, reading, previous, 100000) == 120
    assert goal_current(goal, reading, None, 100000) is None


def test_parsers():
    assert parse_meminfo('Node 0 MemTotal: 2 kB\nHugePages_Total: 0\n') == {'MemTotal': 2048, 'HugePages_Total': 0}
    assert parse_numa_stat('anon N0=4096 N1=8192\nfile N0=1\n', 1) == {'anon': 8192}


def test_swap_and_zram_are_sampled_where_the_host_has_them(make_host):
    host = make_host('7.3.4')
    ensure_scheme(host, SCHEME)
    clock = Clock(host, 0)
    write(host, 'proc/pressure/memory', PSI % (0, clock.total))
    # No swap, no zram: nothing to show, not zero.
    write(host, 'proc/meminfo', 'MemTotal: 1000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n')
    sample = sample_scheme(host, {'duration': 0}, clock=clock)['samples'][0]
    assert (sample['swap_used_bytes'], sample['zram_orig_bytes'], sample['zram_compr_bytes']) == (None, None, None)
    # Two zram devices add up; a device that has not been set up (no mm_stat) counts for nothing.
    write(host, 'proc/meminfo', 'MemTotal: 1000 kB\nSwapTotal: 524288 kB\nSwapFree: 520192 kB\n')
    write(host, 'sys/block/zram0/mm_stat', '4194304 2097152 2162688 0 2162688 12 0 0 0\n')
    write(host, 'sys/block/zram1/mm_stat', '1048576 1024 8192 0 8192 256 0 0 0\n')
    os.makedirs(os.path.join(host.root, 'sys/block/zram2'))
    write(host, 'sys/block/vda/stat', '0\n')
    sample = sample_scheme(host, {'duration': 0}, clock=clock)['samples'][0]
    assert sample['swap_used_bytes'] == 4096 * 1024
    assert (sample['zram_orig_bytes'], sample['zram_compr_bytes']) == (5242880, 2098176)
