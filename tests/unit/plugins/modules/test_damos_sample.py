# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos_sample as Ansible runs it: the argument spec of build_module(), then main() on the
fake kernel: the samples and summary, the refresh keywords (never in check mode), the
warning for a kdamond of another owner, and the core's refusals as the module's failure."""

from __future__ import annotations

import os

import pytest

from ansible_collections.kernel.damon.plugins.modules import damos_sample

REFRESH = 'kdamonds/0/state=update_schemes_stats'


@pytest.fixture
def running(running_on):
    """A running scheme of kernel.damon's with a 1 GiB size quota, and the module on its host."""
    return running_on(damos_sample)


# ---------------------------------------------------------------- build_module()

def test_defaults(build):
    params = build(damos_sample).params
    assert params == {'kdamond': 0, 'scheme': 0, 'duration': 0, 'interval': '1s', 'refresh': True}


@pytest.mark.parametrize('option, value, kind', [('kdamond', 'first', 'int'), ('scheme', 'last', 'int'),
                                                 ('refresh', 'sometimes', 'bool')])
def test_types_are_enforced(run, option, value, kind):
    result, status = run(damos_sample.build_module, {option: value})
    assert status == 1 and result['failed']
    assert "'%s'" % option in result['msg'] and 'unable to convert to %s' % kind in result['msg']


def test_times_are_left_to_the_core(build):
    """duration and interval take the core's units ('500ms', 2): the spec passes them as given."""
    params = build(damos_sample, duration='1m', interval=2).params
    assert (params['duration'], params['interval']) == ('1m', 2)


def test_unknown_options_are_refused(run):
    result, status = run(damos_sample.build_module, {'samples': 3})
    assert status == 1 and 'Unsupported parameters' in result['msg'] and 'samples' in result['msg']


# ---------------------------------------------------------------- main() on the fake kernel

def test_one_sample_refreshed_first(run, running):
    result, status = run(damos_sample.main)
    assert status == 0 and not result['changed'] and not result.get('failed')
    assert (result['kdamond'], result['scheme'], result['interval']) == (0, 0, 1.0)
    assert len(result['samples']) == 1 and result['samples'][0]['state'] == 'on'
    assert result['samples'][0]['bytes'] == 1 << 30
    assert result['summary']['samples'] == 1 and result['summary']['cap_bytes'] == 1 << 30
    assert REFRESH in running.writes
    assert 'warnings' not in result


def test_duration_and_interval_make_the_series(run, running):
    result, status = run(damos_sample.main, {'duration': '3s', 'interval': '1s'})
    assert status == 0 and len(result['samples']) == 4 and result['summary']['samples'] == 4
    assert running.writes.count(REFRESH) == 4


def test_check_mode_reads_without_refreshing(run, running):
    before = running.snapshot()
    result, status = run(damos_sample.main, check=True)
    assert status == 0 and len(result['samples']) == 1
    assert running.writes == [] and running.snapshot() == before


def test_a_kdamond_of_another_owner_is_only_read_and_said_so(run, running):
    os.unlink(running.managed_path)
    result, status = run(damos_sample.main)
    assert status == 0 and running.writes == []
    assert result['warnings'] == ['kdamond 0 was not configured by kernel.damon: its stats and effective quota were '
                                  'not refreshed and show what its owner last requested']


@pytest.mark.parametrize('args, msg', [
    ({'interval': '5ms'}, "interval: invalid value '5ms'; accepted: a time of at least 10ms, such as 1s"),
    ({'scheme': 1}, 'scheme: invalid value 1; accepted: an existing scheme of kdamond 0 (the host has 1 kdamonds, '
                    'kdamond 0 has 1 schemes)'),
    ({'duration': 'soon'}, None),
])
def test_the_cores_refusal_is_the_modules_failure(run, running, args, msg):
    result, status = run(damos_sample.main, args)
    assert status == 1 and result['failed']
    if msg is None:
        assert result['msg'].startswith("duration: invalid value 'soon'; accepted: ")
    else:
        assert result['msg'] == msg
    assert running.writes == []
