# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""damos_scheme and damos_quota_goal end to end on the fake kernel: what is written, in which
order, committed how, and what is refused or restored."""

from __future__ import annotations

import os

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import (
    DamonConflictError,
    DamonError,
    DamonKernelError,
    DamonUnavailableError,
    DamonValidationError,
)
from ansible_collections.kernel.damon.plugins.module_utils._damon_facts import gather_facts
from ansible_collections.kernel.damon.plugins.module_utils._damon_host import Host, read_tree
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import (
    ensure_quota_goal,
    ensure_scheme,
    plan_writes,
)
from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import C0, G0, K0, S0, scheme


# ---------------------------------------------------------------- the planner

def test_plan_writes_only_what_differs():
    current = {'kdamonds/nr_kdamonds': '1', C0 + '/operations': 'paddr', S0 + '/action': 'stat'}
    desired = dict(current, **{S0 + '/action': 'pageout'})
    assert plan_writes(current, desired) == [(S0 + '/action', 'pageout')]
    assert plan_writes(current, current) == []


def test_plan_writes_rewrites_below_a_changed_count_in_tree_order():
    schemes = C0 + '/schemes'
    current = {schemes + '/nr_schemes': '1', schemes + '/0/action': 'pageout', schemes + '/0/quotas/bytes': '4096',
               C0 + '/operations': 'paddr'}
    desired = dict(current, **{schemes + '/nr_schemes': '2', schemes + '/1/action': 'stat'})
    assert plan_writes(current, desired) == [
        (schemes + '/nr_schemes', '2'), (schemes + '/0/action', 'pageout'), (schemes + '/0/quotas/bytes', '4096'),
        (schemes + '/1/action', 'stat')]


# ---------------------------------------------------------------- damos_scheme

def test_create_writes_scheme_and_starts(host):
    result = ensure_scheme(host, scheme())
    writes = result['sysfs_writes']
    assert result['changed'] and result['commit'] == 'on'
    assert writes[:2] == ['kdamonds/nr_kdamonds=1', 'kdamonds/0/contexts/nr_contexts=1']
    assert writes[-1] == 'kdamonds/0/state=on'
    assert C0 + '/targets/0/regions/0/start=1048576' in writes          # largest System RAM range
    assert C0 + '/targets/0/regions/0/end=536727552' in writes          # iomem end + 1
    assert G0 + '/target_value=500' in writes
    assert result['kdamond'] == {'index': 0, 'state': 'on', 'pid': 4242}
    assert host.read(S0 + '/quotas/bytes') == str(2 ** 30)
    assert host.managed() == {0}


def test_second_run_writes_nothing(host):
    ensure_scheme(host, scheme())
    before, writes = host.snapshot(), len(host.writes)
    result = ensure_scheme(host, scheme())
    assert (result['changed'], result['sysfs_writes'], result['commit']) == (False, [], None)
    assert len(host.writes) == writes and host.snapshot() == before


def test_check_mode_predicts_and_writes_nothing(host):
    before = host.snapshot()
    predicted = ensure_scheme(host, scheme(), check_mode=True)
    assert host.snapshot() == before and host.writes == [] and not os.path.exists(host.lock_path)
    assert predicted['changed'] and predicted['kdamond']['state'] == 'on'
    assert ensure_scheme(host, scheme())['sysfs_writes'] == predicted['sysfs_writes']
    assert ensure_scheme(host, scheme(), check_mode=True)['changed'] is False


def test_goal_target_change_is_two_writes_on_a_running_kdamond(host):
    pid = ensure_scheme(host, scheme())['kdamond']['pid']
    result = ensure_scheme(host, scheme(goals=[{'metric': 'some_mem_psi_us', 'target': '750us'}]))
    assert result['sysfs_writes'] == [G0 + '/target_value=750', 'kdamonds/0/state=commit_schemes_quota_goals']
    assert result['commit'] == 'commit_schemes_quota_goals'
    assert result['kdamond'] == {'index': 0, 'state': 'on', 'pid': pid}
    assert result['diff']['before']['scheme']['quotas']['goals'][0]['target_value'] == 500
    assert result['diff']['after']['scheme']['quotas']['goals'][0]['target_value'] == 750


def test_other_changes_use_commit(host):
    ensure_scheme(host, scheme())
    result = ensure_scheme(host, {'quotas': {'size': '512M'}})
    assert result['sysfs_writes'] == [S0 + '/quotas/bytes=536870912', 'kdamonds/0/state=commit']
    assert result['diff']['before']['scheme']['quotas']['bytes'] == 2 ** 30
    assert result['diff']['after']['scheme']['quotas']['bytes'] == 2 ** 29


def test_adding_a_scheme_keeps_the_other_schemes_settings(host):
    ensure_scheme(host, scheme(quotas={'size': '1G', 'time': '10ms'}, access_pattern={'age': {'min': '5s'}}))
    scheme0 = {rel: value for rel, value in read_tree(host).items() if rel.startswith(S0 + '/')}
    result = ensure_scheme(host, {'scheme': 1, 'action': 'stat'})
    assert result['sysfs_writes'][0] == C0 + '/schemes/nr_schemes=2'
    assert result['commit'] == 'commit'
    after = read_tree(host)
    assert {rel: after[rel] for rel in scheme0} == scheme0
    assert after[S0 + '/access_pattern/age/min'] == '50'
    assert after[C0 + '/schemes/1/action'] == 'stat'
    assert ensure_scheme(host, {'scheme': 1, 'action': 'stat'})['changed'] is False


def test_scheme_index_must_exist_or_be_next(host):
    ensure_scheme(host, scheme())
    with pytest.raises(DamonValidationError, match=r"^scheme: invalid value 3; accepted: an existing scheme index "
                                                   r"\(0\.\.0\) or 1 to add one$"):
        ensure_scheme(host, {'scheme': 3, 'action': 'stat'})


def test_absent_scheme_moves_later_schemes_down(host):
    ensure_scheme(host, scheme())
    ensure_scheme(host, {'scheme': 1, 'action': 'lru_prio', 'quotas': {'size': '4K'}})
    result = ensure_scheme(host, {'scheme': 0, 'state': 'absent'})
    assert result['commit'] == 'commit' and result['warnings']
    assert host.read(C0 + '/schemes/nr_schemes') == '1'
    assert (host.read(S0 + '/action'), host.read(S0 + '/quotas/bytes')) == ('lru_prio', '4096')
    assert ensure_scheme(host, {'scheme': 1, 'state': 'absent'})['changed'] is False


def test_validation_failure_leaves_the_tree_unchanged(host):
    ensure_scheme(host, scheme())
    before, writes = host.snapshot(), list(host.writes)
    for params in ({'quotas': {'size': '4Q'}, 'action': 'stat'},
                   {'access_pattern': {'size': {'min': '2G', 'max': '1G'}}},
                   {'intervals': {'sample': '1s'}},
                   {'goals': [{'metric': 'some_mem_psi_us', 'target': 0}]},
                   {'action': 'hugepage'},
                   {'scheme': 1, 'action': 'pageout', 'quotas': {'time': 'forever'}}):
        with pytest.raises(DamonValidationError):
            ensure_scheme(host, params)
    assert host.snapshot() == before and host.writes == writes


def test_messages_name_the_option_and_what_is_accepted(make_host):
    host = make_host('6.12.117')
    ensure_scheme(host, scheme())
    with pytest.raises(DamonValidationError) as err:
        ensure_scheme(host, {'goals': [{'metric': 'some_mem_psi_us', 'target': 0}]})
    assert str(err.value) == ("goals[0].target: invalid value 0; accepted: a value above 0 (the kernel "
                              "ignores goals whose target is 0)")
    with pytest.raises(DamonValidationError) as err:
        ensure_scheme(host, {'action': 'hugepage'})
    assert str(err.value).startswith("action: invalid value 'hugepage'; accepted: with operations paddr: pageout")
    with pytest.raises(DamonValidationError) as err:
        ensure_scheme(host, {'intervals': {'sample': '1s'}})
    assert str(err.value) == "intervals.sample: invalid value '1s'; accepted: at most intervals.aggr (100 ms)"


def test_unsupported_features_say_which_linux_added_them(make_host):
    host = make_host('6.12.117')
    ensure_scheme(host, scheme())
    with pytest.raises(DamonValidationError) as err:
        ensure_quota_goal(host, {'goal': 1, 'metric': 'node_mem_used_bp', 'target': '50%', 'nid': 0})
    assert str(err.value) == ("metric: invalid value 'node_mem_used_bp'; accepted: user_input, some_mem_psi_us "
                              "(node_mem_used_bp needs Linux 6.16 or later; this host runs 6.12.117)")
    with pytest.raises(DamonValidationError) as err:
        ensure_scheme(host, {'intervals_goal': {'access_bp': '4%', 'aggrs': 3}})
    assert str(err.value).endswith("accepted: nothing on this host (intervals_goal needs Linux 6.15 or later; "
                                   "this host runs 6.12.117)")
    with pytest.raises(DamonValidationError, match='needs Linux 6.14 or later'):
        ensure_scheme(host, {'filters': [{'type': 'anon', 'allow': True}]})


def test_ownership_refuses_an_unmanaged_configured_kdamond(host):
    for rel, value in (('kdamonds/nr_kdamonds', 1), (K0 + '/contexts/nr_contexts', 1), (C0 + '/operations', 'paddr')):
        host.write(rel, value)
    before, writes = host.snapshot(), list(host.writes)
    with pytest.raises(DamonConflictError) as err:
        ensure_scheme(host, scheme())
    assert ('kdamond 0 is configured, but it is not recorded in /var/lib/kernel-damon/managed.json as configured by '
            'kernel.damon in this boot' in str(err.value))
    assert 'take_over: true' in str(err.value)
    assert host.snapshot() == before and host.writes == writes
    assert ensure_scheme(host, scheme(take_over=True))['changed']
    assert ensure_scheme(host, scheme())['changed'] is False


def test_empty_kdamond_dirs_may_be_claimed(host):
    host.write('kdamonds/nr_kdamonds', 2)
    result = ensure_scheme(host, scheme(kdamond=1))
    assert result['kdamond']['state'] == 'on'
    assert host.managed() == {1}


def test_exclusive_module_refusal_names_the_option(make_host):
    host = make_host('7.3.4', modules={'damon_stat': True, 'damon_reclaim': False})
    before = host.snapshot()
    with pytest.raises(DamonConflictError) as err:
        ensure_scheme(host, scheme())
    assert str(err.value) == ('damon_stat runs and holds DAMON exclusively, so kdamond 0 cannot start (the kernel '
                              'answers EBUSY); pass stop_exclusive_modules: true to stop it')
    assert host.snapshot() == before
    result = ensure_scheme(host, scheme(stop_exclusive_modules=True))
    assert result['sysfs_writes'][-2:] == ['/sys/module/damon_stat/parameters/enabled=N', 'kdamonds/0/state=on']
    assert host.exclusive_modules() == {'damon_stat': False, 'damon_reclaim': False}
    assert result['kdamond']['state'] == 'on' and result['warnings']


def test_growing_nr_kdamonds_needs_stop_kdamonds(host):
    ensure_scheme(host, scheme())
    kdamond0 = {rel: value for rel, value in read_tree(host).items() if rel.startswith(K0 + '/')}
    before = host.snapshot()
    with pytest.raises(DamonConflictError, match='stop_kdamonds: true'):
        ensure_scheme(host, {'kdamond': 1, 'operations': 'vaddr', 'pid': 1234, 'action': 'cold'})
    assert host.snapshot() == before
    result = ensure_scheme(host, {'kdamond': 1, 'operations': 'vaddr', 'pid': 1234, 'action': 'cold',
                                  'stop_kdamonds': True})
    writes = result['sysfs_writes']
    assert writes[:2] == ['kdamonds/0/state=off', 'kdamonds/nr_kdamonds=2']
    assert writes[-2:] == ['kdamonds/0/state=on', 'kdamonds/1/state=on']
    after = read_tree(host)
    assert {rel: after[rel] for rel in kdamond0} == kdamond0
    assert host.read('kdamonds/0/state') == 'on' and host.read(C0.replace('0/c', '1/c') + '/targets/0/pid_target') \
        == '1234'
    assert ensure_scheme(host, scheme())['changed'] is False


def test_auto_tuned_intervals_are_kept_across_commits(make_host):
    host = make_host('7.3.4')
    tuning = {'access_bp': '4%', 'aggrs': 3, 'min_sample': '1ms', 'max_sample': '20ms'}
    ensure_scheme(host, scheme(intervals_goal=tuning))
    result = ensure_scheme(host, {'quotas': {'size': '2G'}, 'intervals': {'sample': '5ms'}})
    assert result['sysfs_writes'] == ['kdamonds/0/state=update_tuned_intervals', S0 + '/quotas/bytes=2147483648',
                                      'kdamonds/0/state=commit']
    assert 'auto-tuned' in result['warnings'][0]
    assert host.read(C0 + '/monitoring_attrs/intervals/sample_us') == '10000'
    assert ensure_scheme(host, {'quotas': {'size': '2G'}})['changed'] is False


def test_vaddr_needs_a_running_process(make_host):
    host = make_host('6.12.117', pids=(1234,))
    with pytest.raises(DamonValidationError, match=r"^pid: missing; accepted: a pid, pidfile or systemd_unit"):
        ensure_scheme(host, {'operations': 'vaddr', 'action': 'cold'})
    with pytest.raises(DamonValidationError, match=r"^pid: invalid value 999; accepted: a running process"):
        ensure_scheme(host, {'operations': 'vaddr', 'pid': 999, 'action': 'cold'})
    with pytest.raises(DamonError, match=r'systemd_unit needs a command runner'):
        ensure_scheme(host, {'operations': 'vaddr', 'systemd_unit': 'web.service', 'action': 'cold'})
    host.run_command = lambda argv: (0, '0\n', '')
    with pytest.raises(DamonValidationError, match=r"^systemd_unit: invalid value 'web.service'; accepted: a running"):
        ensure_scheme(host, {'operations': 'vaddr', 'systemd_unit': 'web.service', 'action': 'cold'})
    host.run_command = lambda argv: (0, '1234\n', '') if argv[-1] == 'web.service' else (1, '', 'no such unit')
    result = ensure_scheme(host, {'operations': 'vaddr', 'systemd_unit': 'web.service', 'action': 'cold'})
    assert C0 + '/targets/0/pid_target=1234' in result['sysfs_writes']
    assert not any('/regions/' in write for write in result['sysfs_writes'])
    assert ensure_scheme(host, {'pid': 1234})['changed'] is False


def test_pidfile_and_exclusive_pid_options(make_host):
    host = make_host('7.3.4', pids=(1234, 77))
    os.makedirs(os.path.join(host.root, 'run'), exist_ok=True)
    with open(os.path.join(host.root, 'run/web.pid'), 'w', encoding='utf-8') as handle:
        handle.write('77\n')
    result = ensure_scheme(host, {'operations': 'fvaddr', 'pidfile': '/run/web.pid', 'action': 'pageout',
                                  'regions': [{'start': '1G', 'end': '2G'}]})
    assert C0 + '/targets/0/pid_target=77' in result['sysfs_writes']
    assert C0 + '/targets/0/regions/0/end=2147483648' in result['sysfs_writes']
    with pytest.raises(DamonValidationError, match=r'^pidfile: .*only one of pid, pidfile, systemd_unit'):
        ensure_scheme(host, {'pid': 1234, 'pidfile': '/run/web.pid'})
    with pytest.raises(DamonValidationError, match=r'^regions: .*sorted, non-overlapping'):
        ensure_scheme(host, {'regions': [{'start': '2G', 'end': '3G'}, {'start': '1G', 'end': '2G'}]})


def test_filters_go_to_their_layer(make_host):
    filters = [{'type': 'addr', 'addr_start': 0, 'addr_end': '256M'}, {'type': 'memcg', 'memcg_path': 'workload.slice'}]
    new = make_host('7.3.4')
    ensure_scheme(new, scheme(filters=filters))
    assert (new.read(S0 + '/core_filters/0/type'), new.read(S0 + '/ops_filters/0/type')) == ('addr', 'memcg')
    assert new.read(S0 + '/ops_filters/0/memcg_path') == '/workload.slice'
    assert new.read(S0 + '/ops_filters/0/matching') == 'Y'
    assert new.read(S0 + '/filters/nr_filters') == '0'
    old = make_host('6.12.117')
    ensure_scheme(old, scheme(filters=filters))
    assert (old.read(S0 + '/filters/0/type'), old.read(S0 + '/filters/1/type')) == ('addr', 'memcg')
    assert ensure_scheme(old, scheme(filters=filters))['changed'] is False
    with pytest.raises(DamonValidationError, match="an existing cgroup"):
        ensure_scheme(old, scheme(filters=[{'type': 'memcg', 'memcg_path': '/nope'}]))


def test_a_commit_that_stops_the_kdamond_is_restored_and_restarted(make_host):
    host = make_host('7.3.4')
    ensure_scheme(host, scheme())
    staged = read_tree(host)
    host.commit_stops = True
    with pytest.raises(DamonError) as err:
        ensure_scheme(host, {'quotas': {'size': '2G'}})
    assert "writing 'commit' to /sys/kernel/mm/damon/admin/kdamonds/0/state stopped kdamond 0" in str(err.value)
    assert 'the previous configuration was restored' in str(err.value)
    assert read_tree(host) == staged
    assert host.read(K0 + '/state') == 'on' and host.read(K0 + '/pid') != '4242'


def test_a_kernel_error_restores_the_staged_tree(make_host):
    host = make_host('6.12.117')
    ensure_scheme(host, scheme())
    host.write('kdamonds/0/contexts/0/schemes/0/action', 'stat')
    staged = read_tree(host)
    host.busy = 1000
    with pytest.raises(DamonKernelError) as err:
        ensure_scheme(host, {'action': 'pageout'})
    assert str(err.value).startswith("writing 'pageout' to /sys/kernel/mm/damon/admin/%s/action failed: EBUSY" % S0)
    host.busy = 0
    assert read_tree(host) == staged


def test_ebusy_is_retried(host):
    slept = []
    host.sleep = slept.append
    host.busy = 5
    assert ensure_scheme(host, scheme())['kdamond']['state'] == 'on'
    assert slept == [0.01, 0.02, 0.04, 0.05, 0.05]


def test_ebusy_is_retried_often_until_busy_timeout(host):
    # A trylock is only won by a try while it is free: many short waits, bounded by busy_timeout.
    slept = []
    host.sleep = slept.append
    host.busy = 10 ** 6
    with pytest.raises(DamonKernelError) as err:
        ensure_scheme(host, scheme())
    assert 'EBUSY' in str(err.value)
    assert max(slept) == 0.05 and len(slept) >= 90
    assert sum(slept) <= host.busy_timeout


def test_running_false_stops_and_stays_stopped(host):
    ensure_scheme(host, scheme())
    result = ensure_scheme(host, {'running': False})
    assert (result['sysfs_writes'], result['commit']) == (['kdamonds/0/state=off'], 'off')
    assert ensure_scheme(host, {'running': False})['changed'] is False
    result = ensure_scheme(host, {'quotas': {'size': '2G'}, 'running': False})
    assert result['sysfs_writes'] == [S0 + '/quotas/bytes=2147483648'] and result['commit'] is None


def test_tree_missing_is_unavailable(tmp_path):
    host = Host(root=str(tmp_path), release='6.12.117')
    with pytest.raises(DamonUnavailableError, match='CONFIG_DAMON_SYSFS'):
        ensure_scheme(host, scheme())
    facts = gather_facts(host)
    assert facts['available'] is False and 'CONFIG_DAMON_SYSFS' in facts['reason']
    assert facts['memory_psi'] is None and facts['exclusive_modules'] == {}


# ---------------------------------------------------------------- damos_quota_goal

def test_quota_goal_add_feed_and_remove(host):
    ensure_scheme(host, scheme())
    goal1 = S0 + '/quotas/goals/1'
    result = ensure_quota_goal(host, {'goal': 1, 'metric': 'user_input', 'target': 10000, 'current': 5000})
    assert result['commit'] == 'commit_schemes_quota_goals'
    assert result['sysfs_writes'][0] == S0 + '/quotas/goals/nr_goals=2'
    assert host.read(G0 + '/target_value') == '500'          # goal 0 rewritten after nr_goals
    assert host.read(goal1 + '/current_value') == '5000'
    assert ensure_quota_goal(host, {'goal': 1, 'current': 5000})['changed'] is False
    result = ensure_quota_goal(host, {'goal': 1, 'current': 6000})
    assert result['sysfs_writes'] == [goal1 + '/current_value=6000', 'kdamonds/0/state=commit_schemes_quota_goals']
    assert result['diff'] == {'before': {'running': True, 'goal': result['diff']['before']['goal']},
                              'after': {'running': True, 'goal': result['diff']['after']['goal']}}
    assert result['diff']['after']['goal']['current_value'] == 6000
    result = ensure_quota_goal(host, {'goal': 0, 'state': 'absent'})
    assert host.read(G0 + '/target_metric') == 'user_input' and host.read(S0 + '/quotas/goals/nr_goals') == '1'


def test_quota_goal_on_a_stopped_kdamond_does_not_commit(host):
    ensure_scheme(host, scheme(running=False))
    result = ensure_quota_goal(host, {'goal': 0, 'target': '1ms'})
    assert result['sysfs_writes'] == [G0 + '/target_value=1000'] and result['commit'] is None


def test_quota_goal_validation(make_host):
    host = make_host('7.3.4', nodes='0-1,3')
    ensure_scheme(host, scheme())
    before = host.snapshot()
    cases = [
        ({'goal': 0, 'current': 5}, "current: invalid value 5; accepted: nothing with metric some_mem_psi_us"),
        ({'goal': 0, 'target': '0us'}, "target: invalid value '0us'; accepted: a value above 0"),
        ({'goal': 1, 'metric': 'node_mem_free_bp', 'target': '50%'}, 'nid: missing; accepted: required with metric'),
        ({'goal': 1, 'metric': 'node_mem_free_bp', 'target': '50%', 'nid': 2},
         'nid: invalid value 2; accepted: a node with memory (has_memory: 0,1,3)'),
        ({'goal': 1, 'metric': 'node_memcg_used_bp', 'target': '5%', 'nid': 0, 'path': '/absent.slice'},
         "path: invalid value '/absent.slice'; accepted: an existing cgroup"),
        ({'goal': 2, 'metric': 'user_input', 'target': 1}, 'goal: invalid value 2; accepted: an existing goal index'),
        ({'scheme': 1, 'metric': 'user_input', 'target': 1}, 'scheme: invalid value 1; accepted: an existing scheme'),
    ]
    for params, message in cases:
        with pytest.raises(DamonValidationError) as err:
            ensure_quota_goal(host, params)
        assert str(err.value).startswith(message)
    assert host.snapshot() == before
    result = ensure_quota_goal(host, {'goal': 1, 'metric': 'node_memcg_used_bp', 'target': '5%', 'nid': 3,
                                      'path': 'workload.slice'})
    assert host.read(S0 + '/quotas/goals/1/path') == '/workload.slice'
    assert result['commit'] == 'commit_schemes_quota_goals'
