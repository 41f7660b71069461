# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos_quota_goal as Ansible runs it: the argument spec of build_module(), then main() on
the fake kernel, where a goal of an existing scheme is created or fed with a goals-only commit."""

from __future__ import annotations

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme
from ansible_collections.kernel.damon.plugins.modules import damos_quota_goal

G0 = 'kdamonds/0/contexts/0/schemes/0/quotas/goals/0'
COMMIT_GOALS = 'kdamonds/0/state=commit_schemes_quota_goals'


@pytest.fixture
def scheme(host, on_fake):
    """A running scheme of kernel.damon's, without goals, and the module working on it."""
    ensure_scheme(host, {'operations': 'paddr', 'action': 'pageout',
                         'quotas': {'reset_interval': '1s', 'size': '1G'}})
    on_fake(damos_quota_goal, host)
    return host


# ---------------------------------------------------------------- build_module()

def test_defaults(build):
    params = build(damos_quota_goal).params
    assert {name: params[name] for name in ('kdamond', 'scheme', 'goal', 'state', 'take_over', 'lock_timeout')} == {
        'kdamond': 0, 'scheme': 0, 'goal': 0, 'state': 'present', 'take_over': False, 'lock_timeout': 60}
    # Nothing about the goal itself is required or defaulted: what is omitted is kept.
    assert [params[name] for name in ('metric', 'target', 'current', 'nid', 'path')] == [None] * 5


def test_state_is_present_or_absent(run):
    result, status = run(damos_quota_goal.build_module, {'state': 'gone'})
    assert status == 1 and result['failed']
    assert result['msg'] == 'value of state must be one of: present, absent, got: gone'


def test_every_metric_of_the_collection_is_a_choice(run, build):
    result, status = run(damos_quota_goal.build_module, {'metric': 'cpu_time'})
    assert status == 1
    assert result['msg'] == 'value of metric must be one of: %s, got: cpu_time' % ', '.join((
        'user_input', 'some_mem_psi_us', 'node_mem_used_bp', 'node_mem_free_bp', 'node_memcg_used_bp',
        'node_memcg_free_bp', 'active_mem_bp', 'inactive_mem_bp', 'node_eligible_mem_bp'))
    assert build(damos_quota_goal, metric='node_eligible_mem_bp', target='50%').params['target'] == '50%'


@pytest.mark.parametrize('option', ['current', 'goal', 'nid'])
def test_integers_are_enforced(run, option):
    result, status = run(damos_quota_goal.build_module, {option: 'many'})
    assert status == 1 and "'%s'" % option in result['msg'] and 'unable to convert to int' in result['msg']


def test_the_options_of_a_scheme_are_refused(run):
    result, status = run(damos_quota_goal.build_module, {'action': 'pageout'})
    assert status == 1 and 'Unsupported parameters' in result['msg'] and 'action' in result['msg']


# ---------------------------------------------------------------- main() on the fake kernel

def test_creates_the_goal_with_a_goals_only_commit(run, scheme):
    result, status = run(damos_quota_goal.main, {'metric': 'user_input', 'target': 10000, 'current': 4000})
    assert status == 0 and result['changed'] and result['commit'] == 'commit_schemes_quota_goals'
    assert result['sysfs_writes'][-1] == COMMIT_GOALS
    assert scheme.read(G0 + '/current_value') == '4000' and scheme.read(G0 + '/target_value') == '10000'
    assert result['kdamond']['state'] == 'on'
    again, status = run(damos_quota_goal.main, {'metric': 'user_input', 'target': 10000, 'current': 4000})
    assert status == 0 and not again['changed'] and again['sysfs_writes'] == []


def test_an_omitted_option_keeps_what_the_goal_has(run, scheme):
    run(damos_quota_goal.main, {'metric': 'user_input', 'target': 10000, 'current': 4000})
    result, status = run(damos_quota_goal.main, {'current': 5000}, diff=True)
    assert status == 0 and result['changed']
    assert result['sysfs_writes'] == [G0 + '/current_value=5000', COMMIT_GOALS]
    assert scheme.read(G0 + '/target_value') == '10000'
    assert result['diff']['before']['goal']['current_value'] == 4000
    assert result['diff']['after']['goal']['current_value'] == 5000


def test_check_mode_reports_the_change_and_writes_nothing(run, scheme):
    before = scheme.snapshot()
    result, status = run(damos_quota_goal.main, {'metric': 'user_input', 'target': 10000}, check=True)
    assert status == 0 and result['changed'] and COMMIT_GOALS in result['sysfs_writes']
    assert scheme.snapshot() == before


def test_a_new_goal_needs_a_metric(run, scheme):
    """The argument spec leaves metric optional (an existing goal keeps its own); the core
    refuses to create a goal without one, and the module fails with its message."""
    before = scheme.snapshot()
    result, status = run(damos_quota_goal.main, {'target': 10000})
    assert status == 1 and result['failed']
    assert result['msg'].startswith('metric: missing; accepted: a metric (required when the goal is created): '
                                    'user_input, some_mem_psi_us')
    assert scheme.snapshot() == before


def test_a_scheme_that_does_not_exist(run, scheme):
    result, status = run(damos_quota_goal.main, {'scheme': 1, 'metric': 'user_input', 'target': 1})
    assert status == 1
    assert result['msg'] == 'scheme: invalid value 1; accepted: an existing scheme of kdamond 0 (it has 1)'


def test_removes_the_goal(run, scheme):
    run(damos_quota_goal.main, {'metric': 'user_input', 'target': 10000})
    result, status = run(damos_quota_goal.main, {'state': 'absent'})
    assert status == 0 and result['changed']
    assert scheme.read('kdamonds/0/contexts/0/schemes/0/quotas/goals/nr_goals') == '0'
