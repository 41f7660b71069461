# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The damos_autotune role's checks and units, rendered by Ansible's own templar from the
role's files: what preflight refuses, and what the units and the lock's tmpfiles.d say."""

from __future__ import annotations

import base64
import importlib.util
import os
import re

import pytest

from ansible.parsing.dataloader import DataLoader

try:
    from ansible.template import Templar, trust_as_template
except ImportError:
    # Before ansible-core 2.19 the templar has no trust tags and another interface. The role's
    # rendering under the floor release is tested on the fleet instead (damos_autotune's deploy).
    pytest.skip('renders with the templar of ansible-core 2.19 or later', allow_module_level=True)

# The role's directory in the collection under test, wherever this file sits.
ROLE = importlib.util.find_spec('ansible_collections.kernel.damon.roles.damos_autotune').submodule_search_locations[0]
LOADER = DataLoader()


def trusted(value):
    """The role's own files are trusted templates, as when a play runs the role."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trusted(item) for item in value]
    return value


def role_file(name):
    return LOADER.load_from_file(os.path.join(ROLE, name))


def templar(task_vars=None, **overrides):
    variables = {}
    for name in ('defaults/main.yml', 'vars/main.yml'):
        variables.update(trusted(role_file(name)))
    variables.update(ansible_managed='Ansible managed', ansible_check_mode=False, role_path=ROLE,
                     damos_autotune_score_file='/srv/score')
    # The user's inputs, never templates: as the play would pass them.
    variables.update(overrides)
    variables.update(trusted(task_vars or {}))
    return Templar(loader=LOADER, variables=variables).copy_with_new_env(
        searchpath=[os.path.join(ROLE, 'templates')])


def render(template, **overrides):
    with open(os.path.join(ROLE, 'templates', template), encoding='utf-8') as handle:
        return templar(**overrides).template(trust_as_template(handle.read())).splitlines()


def settings_of(lines, name):
    return [line.partition('=')[2] for line in lines if line.startswith(name + '=')]


def true(engine, condition):
    return engine.evaluate_conditional(trust_as_template(str(condition)))


# What preflight's own look-ups register on a Debian 13 host.
REGISTERED = {'__damos_autotune_systemd_version': {'stdout': 'systemd 257 (257.9-1~deb13u1)\n+PAM +AUDIT',
                                                   'stdout_lines': ['systemd 257 (257.9-1~deb13u1)', '+PAM +AUDIT']}}


def static_tasks(name):
    """The tasks of a tasks file, with the files it imports (import_tasks) in their place."""
    for task in role_file(name):
        if 'ansible.builtin.import_tasks' in task:
            yield from static_tasks('tasks/' + task['ansible.builtin.import_tasks'])
        else:
            yield task


def preflight(entry='tasks/preflight.yml', **overrides):
    """{name: fail_msg} of the preflight asserts that fail."""
    failed = {}
    for task in static_tasks(entry):
        check = task.get('ansible.builtin.assert')
        if check is None:
            continue
        engine = templar(task.get('vars'), **dict(REGISTERED, **overrides))
        when = task.get('when', [])
        if not all(true(engine, condition) for condition in (when if isinstance(when, list) else [when])):
            continue
        that = check['that'] if isinstance(check['that'], list) else [check['that']]
        if not all(true(engine, condition) for condition in that):
            failed[task['name']] = engine.template(trust_as_template(check['fail_msg']))
    return failed


FEEDER = 'damos-autotune-feeder.service.j2'
APPLY = 'damos-autotune-apply.service.j2'


# ---------------------------------------------------------------- preflight

def test_a_plain_configuration_passes_preflight():
    assert preflight() == {}
    assert preflight(damos_autotune_score_file=None, damos_autotune_score_command=['/usr/bin/score', '--now'],
                     damos_autotune_score_user='www-data', damos_autotune_score_user_create=False,
                     damos_autotune_scheme={'operations': 'vaddr', 'systemd_unit': 'user@1000.service'}) == {}


def test_a_host_without_systemd_as_init_fails_preflight():
    # What the command module prints where /run/systemd/system is missing (removes=).
    skipped = 'skipped, since /run/systemd/system does not exist'
    failed = preflight(__damos_autotune_systemd_version={'stdout': skipped, 'stdout_lines': [skipped]})
    assert list(failed) == ['The host runs systemd', 'The feeder can be handed the DAMON files (OpenFile=, systemd 253)']
    assert 'no /run/systemd/system' in failed['The host runs systemd']


def test_systemd_before_openfile_fails_preflight():
    old = 'systemd 252 (252.39-1~deb12u1)'
    failed = preflight(__damos_autotune_systemd_version={'stdout': old, 'stdout_lines': [old]})
    assert list(failed) == ['The feeder can be handed the DAMON files (OpenFile=, systemd 253)']
    assert 'systemd 252' in failed['The feeder can be handed the DAMON files (OpenFile=, systemd 253)']


@pytest.mark.parametrize('user', ['root', '0', 0, 1000, 'Workload', 'www-data\n', 'a\nb', '-x', 'x y', 'x:y',
                                  'a' * 33, '', '%n'])
def test_the_score_user_must_be_a_plain_user_name(user):
    failed = preflight(damos_autotune_score_user=user)
    assert list(failed) == ['The score user is a plain user name other than root']


@pytest.mark.parametrize('path', ['/tmp/score', '/var/tmp/app/score', '//tmp/score', '/tmp', 'score', './score',
                                  '/srv/score\n', '/srv/a\nExecStartPre=/bin/sh', '/srv/a\rscore_command=["id"]',
                                  '/srv/a\x85b', '/srv/a\u2028b', '/srv/a\x00b'])
def test_the_score_file_must_be_an_absolute_path_the_feeder_sees(path):
    failed = preflight(damos_autotune_score_file=path)
    assert list(failed) == ['The score file is an absolute path that the feeder can see']
    assert 'PrivateTmp=yes' in failed['The score file is an absolute path that the feeder can see']


@pytest.mark.parametrize('path', ['/srv/score', '/run/app/score 1', '/var/lib/tmp/score', '/tmpfs/score',
                                  '/srv/50%'])
def test_a_score_file_elsewhere_passes(path):
    assert preflight(damos_autotune_score_file=path) == {}


@pytest.mark.parametrize('unit', ['-x.service', 'a b.service', 'app.service\nExecStartPre=/bin/sh', 'app.timer',
                                  '%n.service', 'app', 'app.service\n', 5, 'a' * 250 + '.service'])
def test_the_vaddr_target_unit_must_be_a_unit_name(unit):
    failed = preflight(damos_autotune_scheme={'operations': 'vaddr', 'systemd_unit': unit})
    assert list(failed) == ["The vaddr target's systemd unit is a unit name"]


@pytest.mark.parametrize('unit', ['app.service', 'user@1000.service', 'app-x\\x2dy.service', 'run-u12.scope'])
def test_unit_names_pass(unit):
    assert preflight(damos_autotune_scheme={'operations': 'vaddr', 'systemd_unit': unit}) == {}


@pytest.mark.parametrize('interval, timeout, command_timeout', [
    ('1s', '30s', None), (1, 30, None), (0.5, '1', '250ms'), ('0.5', '1.5', 2), (' 100ms ', '0.2s', '1.5'),
    ('2m', '1h', '10 s'),
])
def test_times_pass_preflight(interval, timeout, command_timeout):
    assert preflight(damos_autotune_interval=interval, damos_autotune_timeout=timeout,
                     damos_autotune_score_command_timeout=command_timeout) == {}


@pytest.mark.parametrize('option', ['damos_autotune_interval', 'damos_autotune_timeout'])
@pytest.mark.parametrize('value', ['x', '', '-1', -1, '1e3', '10 sec', '1.5ns', True, None])
def test_an_interval_or_timeout_that_is_not_a_time_fails_preflight(option, value):
    # The score command's timeout is the interval unless set.
    failed = preflight(damos_autotune_score_command_timeout='1s', **{option: value})
    assert list(failed) == ['The inputs make sense together']
    assert 'damos_autotune_interval must be a time such as 1s or 500ms' in failed['The inputs make sense together']


@pytest.mark.parametrize('value', ['x', '-1', '1.5ns', '5 seconds', False])
def test_a_score_command_timeout_that_is_not_a_time_fails_preflight(value):
    failed = preflight(damos_autotune_score_command_timeout=value)
    assert list(failed) == ['A user_input goal has exactly one score source, read by an unprivileged user']
    assert 'damos_autotune_score_command_timeout must be a time (got %s)' % value in list(failed.values())[0]


@pytest.mark.parametrize('mode, interval, passes', [
    ('timer', '100ms', True), ('timer', '99ms', False), ('timer', 0.1, True), ('timer', '0.09', False),
    ('daemon', '10ms', True), ('daemon', '9999us', False), ('daemon', 0.01, True),
])
def test_the_shortest_interval(mode, interval, passes):
    failed = preflight(damos_autotune_mode=mode, damos_autotune_interval=interval)
    assert (failed == {}) == passes, failed


def test_a_failing_preflight_does_not_show_the_score_command():
    failed = preflight(damos_autotune_score_command='curl -H "Authorization: Bearer s3cr3t" http://app/score')
    assert len(failed) == 1
    message = list(failed.values())[0]
    assert 'exactly one of damos_autotune_score_file' in message and 's3cr3t' not in message


# ---------------------------------------------------------------- the settings, with the score command

def test_the_settings_are_root_s_and_kept_out_of_logs_and_diffs():
    # damos_autotune_files keeps secret_files out of the result and the diff
    # (test_damos_autotune_files.py); here: the settings go there, root's 0600, only there.
    task, = [task for task in role_file('tasks/install.yml') if 'kernel.damon.damos_autotune_files' in task]
    engine = templar(damos_autotune_score_file=None, damos_autotune_score_command='score --token x',
                     ansible_search_path=[ROLE])
    secret, = engine.template(trusted(task['kernel.damon.damos_autotune_files']['secret_files']))
    assert secret['path'] == '/etc/kernel-damon/damos_autotune.conf' and secret['mode'] == '0600'
    assert '--token' in base64.b64decode(secret['content_b64']).decode()
    assert 'damos_autotune.conf' not in str(task['kernel.damon.damos_autotune_files']['files'])


# ---------------------------------------------------------------- the units

@pytest.mark.parametrize('template, mode', [(FEEDER, 'timer'), (FEEDER, 'daemon'), (APPLY, 'timer')])
def test_the_units_keep_the_score_user_s_ipc_and_log_tracebacks_as_errors(template, mode):
    lines = render(template, damos_autotune_mode=mode)
    assert 'NoNewPrivileges=yes' in lines
    # RemoveIPC= would delete the shared memory of a workload that runs as the score user.
    assert not settings_of(lines, 'RemoveIPC')
    assert settings_of(lines, 'SyslogLevel') == ['err'] and settings_of(lines, 'LogLevelMax') == ['notice']


@pytest.mark.parametrize('overrides, limit', [
    ({}, '33s'),                                    # 1 s score timeout + 2 s lock wait + 30 s
    ({'damos_autotune_interval': '5s', 'damos_autotune_score_command_timeout': '10s'}, '45s'),
    ({'damos_autotune_interval': '300ms'}, '33s'),  # 0.3 + 2 + 30, rounded up
])
def test_a_timer_tick_has_a_time_limit(overrides, limit):
    lines = render(FEEDER, damos_autotune_mode='timer', **overrides)
    assert settings_of(lines, 'Type') == ['oneshot'] and settings_of(lines, 'TimeoutStartSec') == [limit]
    assert not settings_of(lines, 'WatchdogSec')


def test_the_daemon_has_a_watchdog():
    lines = render(FEEDER, damos_autotune_mode='daemon', damos_autotune_interval='100ms',
                   damos_autotune_score_file='', damos_autotune_score_command='echo 1')
    assert settings_of(lines, 'Type') == ['notify'] and settings_of(lines, 'NotifyAccess') == ['main']
    # 2 x (0.1 s score timeout + 2 s lock wait + 30 s, rounded up: 33 s + the interval, rounded up: 1 s)
    assert settings_of(lines, 'WatchdogSec') == ['68s']
    assert settings_of(lines, 'ExecStart')[0].endswith(' feed --loop')
    # Watching a score file, it wakes once per timeout (30 s): 3 x 30 s + the 33 s tick limit.
    lines = render(FEEDER, damos_autotune_mode='daemon', damos_autotune_interval='100ms')
    assert settings_of(lines, 'WatchdogSec') == ['123s']


@pytest.mark.parametrize('mode', ['timer', 'daemon'])
def test_the_feeder_is_handed_its_settings_the_lock_and_the_boot_id(mode):
    passed = settings_of(render(FEEDER, damos_autotune_mode=mode), 'OpenFile')
    assert '/etc/kernel-damon/damos_autotune.conf:settings:read-only' in passed
    assert '/run/kernel-damon/lock:lock:graceful' in passed
    assert '/proc/sys/kernel/random/boot_id:boot_id:read-only' in passed


def test_the_lock_is_root_s_alone():
    lines = render('damos-autotune.tmpfiles.j2')
    assert [line for line in lines if not line.startswith('#')] == [
        'd /run/kernel-damon 0700 root root -', 'f /run/kernel-damon/lock 0600 root root -',
        'd /var/lib/prometheus/node-exporter 0755 root root -']
    lines = render('damos-autotune.tmpfiles.j2', damos_autotune_metrics=False)
    assert [line for line in lines if line.startswith('d ')] == ['d /run/kernel-damon 0700 root root -']
    apply = render(APPLY)
    assert settings_of(apply, 'ReadWritePaths')[0] == '/sys/kernel/mm/damon/admin /run/kernel-damon'


def test_the_boot_unit_is_handed_the_boot_id():
    # ProcSubset=pid hides /proc/sys; without it, what the boot unit configures is not ours.
    assert settings_of(render(APPLY), 'OpenFile') == ['/proc/sys/kernel/random/boot_id:boot_id:read-only']


def test_the_interval_reaches_the_units_as_parsed():
    lines = render(FEEDER, damos_autotune_mode='daemon', damos_autotune_interval=' 250ms ')
    assert '# A tick when the score file changes, at most every 0.25 s.' in lines
    assert settings_of(render('damos-autotune-feeder.timer.j2', damos_autotune_interval='2'), 'Description') == [
        "Feed the workload's score to the DAMOS quota goal every 2 s"]


# ---------------------------------------------------------------- metrics

METRICS = 'damos-autotune-metrics.service.j2'


def test_metrics_are_written_with_the_feeder_and_can_be_switched():
    def units(**overrides):
        return [unit['unit'] for unit in templar(**overrides).template(
            trust_as_template('{{ __damos_autotune_unit_templates }}'))]

    assert 'damos-autotune-metrics.service' in units()
    assert 'damos-autotune-metrics.service' not in units(damos_autotune_metrics=False)
    psi_goal = {'metric': 'some_mem_psi_us', 'target': '5ms'}
    assert 'damos-autotune-metrics.service' not in units(damos_autotune_goal=psi_goal)
    assert units(damos_autotune_goal=psi_goal, damos_autotune_metrics=True) == [
        'damos-autotune-apply.service', 'damos-autotune-metrics.service']


def test_the_metrics_unit_writes_where_and_when_it_is_told():
    lines = render(METRICS, damos_autotune_metrics_interval='1m', damos_autotune_metrics_dir='/srv/textfiles')
    assert settings_of(lines, 'ExecStart')[0].endswith(' metrics --loop --interval 60000ms --dir /srv/textfiles')
    assert settings_of(lines, 'ReadWritePaths') == ['/sys/kernel/mm/damon/admin /run/kernel-damon /srv/textfiles']
    assert settings_of(lines, 'User') == [] and settings_of(lines, 'PrivateNetwork') == ['yes']


@pytest.mark.parametrize('overrides', [
    {'damos_autotune_metrics_interval': '500ms'},
    {'damos_autotune_metrics_interval': 'often'},
    {'damos_autotune_metrics_dir': 'relative/dir'},
    {'damos_autotune_metrics_dir': '/srv/two words'},
    {'damos_autotune_metrics_dir': '/tmp/textfiles'},
    {'damos_autotune_metrics_dir': '/var//tmp'},
    {'damos_autotune_metrics': 'yes please'},
])
def test_bad_metrics_settings_fail_preflight(overrides):
    failed = preflight(**overrides)
    assert list(failed) == ['The metrics settings make sense']
    assert 'damos_autotune_metrics_dir' in failed['The metrics settings make sense']


@pytest.mark.parametrize('overrides', [
    {'damos_autotune_metrics_interval': '500ms'},
    {'damos_autotune_metrics_dir': 'relative/dir'},
    {'damos_autotune_metrics_dir': '/tmp/textfiles'},
])
def test_the_metrics_entry_point_checks_the_same_settings(overrides):
    alone = {'__damos_autotune_main_deployed': {'stat': {'exists': False}}}
    assert preflight('tasks/metrics.yml', **alone) == {}
    assert list(preflight('tasks/metrics.yml', **dict(alone, **overrides))) == ['The metrics settings make sense']


def test_the_metrics_entry_point_is_refused_where_the_main_one_is_deployed():
    failed = preflight('tasks/metrics.yml', __damos_autotune_main_deployed={'stat': {'exists': True}})
    assert list(failed) == ["Only where the role's main entry point is not deployed"]
    assert 'set damos_autotune_metrics: true there' in failed["Only where the role's main entry point is not deployed"]


@pytest.mark.parametrize('template', [METRICS, APPLY, FEEDER])
@pytest.mark.parametrize('overrides', [{}, {'damos_autotune_mode': 'timer'},
                                       {'damos_autotune_scheme': {'operations': 'vaddr',
                                                                  'systemd_unit': 'app.service'}}])
def test_every_line_of_a_unit_is_a_comment_a_section_or_a_setting(template, overrides):
    for line in render(template, **overrides):
        assert line == '' or line.startswith(('#', '[')) or re.match(r'^[A-Z][A-Za-z]+=', line), line
        assert '#' not in line.split('=', 1)[-1] or line.startswith('#'), line


def test_the_boot_unit_follows_a_workload_service():
    lines = render(APPLY, damos_autotune_scheme={'operations': 'vaddr', 'systemd_unit': 'web@1.service'})
    assert settings_of(lines, 'BindsTo') == ['web@1.service'] and settings_of(lines, 'Wants') == []
    assert 'web@1.service' in settings_of(lines, 'After')
    assert settings_of(lines, 'WantedBy') == ['multi-user.target web@1.service']


def test_the_boot_unit_waits_for_a_scope_and_follows_nothing_without_a_unit():
    lines = render(APPLY, damos_autotune_scheme={'operations': 'vaddr', 'systemd_unit': 'session-1.scope'})
    assert settings_of(lines, 'Wants') == ['session-1.scope'] and settings_of(lines, 'BindsTo') == []
    assert settings_of(lines, 'WantedBy') == ['multi-user.target']
    lines = render(APPLY)
    assert settings_of(lines, 'Wants') == settings_of(lines, 'BindsTo') == []
    assert settings_of(lines, 'WantedBy') == ['multi-user.target']
