# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos_scheme as Ansible runs it: the argument spec of build_module() (defaults, choices,
mutually exclusive targets, what each filter and goal requires), then main() on the fake
kernel (the result, check mode, the diff, and the core's errors as the module's failure)."""

from __future__ import annotations

import pytest

from ansible_collections.kernel.damon.plugins.modules import damos_scheme

SCHEME = {'operations': 'paddr', 'action': 'pageout', 'quotas': {'reset_interval': '1s', 'size': '1G'}}
S0 = 'kdamonds/0/contexts/0/schemes/0'


# ---------------------------------------------------------------- build_module()

def test_defaults(build):
    params = build(damos_scheme).params
    assert {name: params[name] for name in ('state', 'kdamond', 'scheme', 'running', 'take_over', 'lock_timeout',
                                            'stop_kdamonds', 'stop_exclusive_modules')} == {
        'state': 'present', 'kdamond': 0, 'scheme': 0, 'running': None, 'take_over': False, 'lock_timeout': 60,
        'stop_kdamonds': False, 'stop_exclusive_modules': False}
    assert params['action'] is None and params['filters'] is None and params['goals'] is None


def test_a_filter_matches_and_rejects_unless_told_otherwise(build):
    params = build(damos_scheme, filters=[{'type': 'anon'}, {'type': 'young', 'matching': False, 'allow': True}])
    assert [(f['type'], f['matching'], f['allow']) for f in params.params['filters']] == [
        ('anon', True, False), ('young', False, True)]


@pytest.mark.parametrize('targets', [
    {'pid': 1234, 'pidfile': '/run/app.pid'},
    {'pid': 1234, 'systemd_unit': 'app.service'},
    {'pidfile': '/run/app.pid', 'systemd_unit': 'app.service'},
])
def test_one_process_target_at_most(run, targets):
    result, status = run(damos_scheme.build_module, dict(targets, operations='vaddr'))
    assert status == 1 and result['failed']
    assert result['msg'] == 'parameters are mutually exclusive: pid|pidfile|systemd_unit'


@pytest.mark.parametrize('option, value, choices', [
    ('state', 'gone', 'present, absent'),
    ('operations', 'xaddr', 'paddr, vaddr, fvaddr'),
    ('action', 'swap', ', '.join(damos_scheme.ACTIONS)),
])
def test_choices_are_enforced(run, option, value, choices):
    result, status = run(damos_scheme.build_module, {option: value})
    assert status == 1
    assert result['msg'] == 'value of %s must be one of: %s, got: %s' % (option, choices, value)


@pytest.mark.parametrize('suboption, value', [
    ('quotas', {'goal_tuner': 'fast'}),
    ('watermarks', {'metric': 'free_swap_rate'}),
])
def test_choices_of_suboptions_are_enforced(run, suboption, value):
    result, status = run(damos_scheme.build_module, {suboption: value})
    assert status == 1
    name, bad = next(iter(value.items()))
    assert result['msg'].startswith('value of %s must be one of: ' % name)
    assert result['msg'].endswith('got: %s found in %s' % (bad, suboption))


def test_filter_type_is_required_and_one_of_the_kernels(run):
    result, status = run(damos_scheme.build_module, {'filters': [{'matching': True}]})
    assert status == 1 and result['msg'] == 'missing required arguments: type found in filters'
    result, status = run(damos_scheme.build_module, {'filters': [{'type': 'file'}]})
    assert status == 1
    assert result['msg'] == 'value of type must be one of: %s, got: file found in filters' % ', '.join(
        damos_scheme.FILTER_TYPES)


@pytest.mark.parametrize('kind, missing', [
    ('memcg', 'memcg_path'),
    ('addr', 'addr_start, addr_end'),
    ('target', 'target_idx'),
    ('hugepage_size', 'min, max'),
])
def test_a_filter_type_requires_its_options(run, kind, missing):
    result, status = run(damos_scheme.build_module, {'filters': [{'type': kind}]})
    assert status == 1
    assert result['msg'] == 'type is %s but all of the following are missing: %s found in filters' % (kind, missing)


def test_a_filter_type_with_its_options_is_accepted(build):
    filters = [{'type': 'memcg', 'memcg_path': '/workload.slice'}, {'type': 'addr', 'addr_start': 0, 'addr_end': '1G'}]
    assert [f['type'] for f in build(damos_scheme, filters=filters).params['filters']] == ['memcg', 'addr']


@pytest.mark.parametrize('goal, msg', [
    ({'metric': 'user_input'}, 'missing required arguments: target found in goals'),
    ({'target': 500}, 'missing required arguments: metric found in goals'),
    ({'metric': 'node_mem_used_bp', 'target': '60%'},
     'metric is node_mem_used_bp but all of the following are missing: nid found in goals'),
    ({'metric': 'node_memcg_free_bp', 'target': '40%'},
     'metric is node_memcg_free_bp but all of the following are missing: nid, path found in goals'),
    ({'metric': 'cpu_time', 'target': 1}, None),
])
def test_a_goal_in_the_list_is_complete(run, goal, msg):
    result, status = run(damos_scheme.build_module, {'goals': [goal]})
    assert status == 1
    if msg is None:
        assert result['msg'].startswith('value of metric must be one of: user_input, some_mem_psi_us, ')
        assert result['msg'].endswith('got: cpu_time found in goals')
    else:
        assert result['msg'] == msg


def test_a_region_needs_start_and_end(run):
    result, status = run(damos_scheme.build_module, {'regions': [{'start': 0}]})
    assert status == 1 and result['msg'] == 'missing required arguments: end found in regions'


def test_lock_timeout_is_an_integer(run, build):
    assert build(damos_scheme, lock_timeout='5').params['lock_timeout'] == 5
    result, status = run(damos_scheme.build_module, {'lock_timeout': 'soon'})
    assert status == 1 and "'lock_timeout'" in result['msg'] and 'unable to convert to int' in result['msg']


def test_unknown_options_are_refused(run):
    result, status = run(damos_scheme.build_module, {'actoin': 'pageout'})
    assert status == 1 and 'Unsupported parameters' in result['msg'] and 'actoin' in result['msg']


# ---------------------------------------------------------------- main() on the fake kernel

def test_creates_the_scheme_then_changes_nothing(run, on_fake, host):
    on_fake(damos_scheme, host)
    result, status = run(damos_scheme.main, SCHEME)
    assert status == 0 and result['changed'] and not result.get('failed')
    assert result['commit'] == 'on' and S0 + '/action=pageout' in result['sysfs_writes']
    assert result['kdamond'] == {'index': 0, 'state': 'on', 'pid': int(host.read('kdamonds/0/pid'))}
    assert host.read(S0 + '/action') == 'pageout' and host.read('kdamonds/0/state') == 'on'
    assert 'diff' not in result
    assert callable(host.run_command)         # systemd_unit asks systemctl through the module
    again, status = run(damos_scheme.main, SCHEME)
    assert status == 0 and not again['changed'] and again['sysfs_writes'] == [] and again['commit'] is None


def test_check_mode_reports_the_change_and_writes_nothing(run, on_fake, host):
    on_fake(damos_scheme, host)
    before = host.snapshot()
    result, status = run(damos_scheme.main, SCHEME, check=True)
    assert status == 0 and result['changed'] and S0 + '/action=pageout' in result['sysfs_writes']
    assert host.snapshot() == before


def test_diff_shows_the_scheme_before_and_after(run, on_fake, host):
    on_fake(damos_scheme, host)
    run(damos_scheme.main, SCHEME)
    result, status = run(damos_scheme.main, dict(SCHEME, action='stat'), diff=True)
    assert status == 0 and result['changed'] and result['commit'] == 'commit'
    assert result['diff']['before']['scheme']['action'] == 'pageout'
    assert result['diff']['after']['scheme']['action'] == 'stat'
    assert result['diff']['before']['running'] and result['diff']['after']['running']


def test_the_cores_refusal_is_the_modules_failure(run, on_fake, host):
    on_fake(damos_scheme, host)
    before = host.snapshot()
    result, status = run(damos_scheme.main, dict(SCHEME, kdamond=2))
    assert status == 1 and result['failed']
    assert result['msg'] == 'kdamond: invalid value 2; accepted: 0 to add the first kdamond (there is none)'
    assert host.snapshot() == before


def test_lock_timeout_reaches_the_host(run, on_fake, host):
    on_fake(damos_scheme, host)
    before = host.snapshot()
    result, status = run(damos_scheme.main, dict(SCHEME, lock_timeout=-1))
    assert status == 1
    assert result['msg'] == 'lock_timeout: invalid value -1; accepted: a whole number of seconds, 0 or more'
    assert host.snapshot() == before
    run(damos_scheme.main, dict(SCHEME, lock_timeout=7))
    assert host.lock_timeout == 7


def test_the_cores_warnings_are_the_modules_warnings(run, on_fake, host):
    on_fake(damos_scheme, host)
    run(damos_scheme.main, SCHEME)
    run(damos_scheme.main, dict(SCHEME, scheme=1, action='stat'))
    result, status = run(damos_scheme.main, {'state': 'absent', 'scheme': 0})
    assert status == 0 and result['changed']
    assert result['warnings'] == ['schemes after 0 move down one index; a running kdamond matches schemes by index, '
                                  'so their stats and quota tuning move with them']
    assert host.read('kdamonds/0/contexts/0/schemes/nr_schemes') == '1' and host.read(S0 + '/action') == 'stat'
