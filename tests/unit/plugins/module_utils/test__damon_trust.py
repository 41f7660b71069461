# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a local user, a reboot, a crash or an interrupted run can do to the writers: the
lock, the ownership record, the state files and the journal of interrupted runs, on the
fake kernel."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_feed import feed_quota_goal
from ansible_collections.kernel.damon.plugins.module_utils._damon_journal import journal_path
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_quota_goal, ensure_scheme
from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import DamonConflictError, DamonError
from ansible_collections.kernel.damon.plugins.module_utils._damon_facts import gather_facts

K0 = 'kdamonds/0'
S0 = K0 + '/contexts/0/schemes/0'
G0 = S0 + '/quotas/goals/0'
SCHEME = {'operations': 'paddr', 'action': 'pageout', 'quotas': {'reset_interval': '1s', 'size': '1G'},
          'goals': [{'metric': 'user_input', 'target': 10000, 'current': 10000}]}


def scheme(**changes):
    params = json.loads(json.dumps(SCHEME))
    params.update(changes)
    return params


def foreign_kdamond(host):
    """Another tool (damo, an operator) configures kdamond 0: nr_kdamonds, a context, on."""
    for rel, value in (('kdamonds/nr_kdamonds', 1), (K0 + '/contexts/nr_contexts', 1),
                       (K0 + '/contexts/0/operations', 'paddr'), (K0 + '/contexts/0/targets/nr_targets', 1),
                       (K0 + '/contexts/0/targets/0/regions/nr_regions', 1),
                       (K0 + '/contexts/0/targets/0/regions/0/start', 4096),
                       (K0 + '/contexts/0/targets/0/regions/0/end', 1 << 30), (K0 + '/state', 'on')):
        host.write(rel, value)
    host.writes.clear()


# ---------------------------------------------------------------- the lock

def test_lock_lives_in_a_root_only_directory(host):
    ensure_scheme(host, scheme())
    assert host.lock_path == host.path('run/kernel-damon/lock')
    assert oct(os.stat(os.path.dirname(host.lock_path)).st_mode & 0o7777) == '0o700'
    assert oct(os.stat(host.lock_path).st_mode & 0o7777) == '0o600'


def test_a_flock_on_the_old_world_writable_lock_blocks_nobody(host):
    old = host.path('run/lock/kernel-damon.lock')
    os.makedirs(os.path.dirname(old))
    held = os.open(old, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        host.set_lock_timeout(0)
        assert ensure_scheme(host, scheme())['changed']
    finally:
        os.close(held)


@pytest.mark.parametrize('planted', ['dir', 'file'])
def test_a_symlink_at_the_lock_is_refused_and_its_target_never_created(host, tmp_path, planted):
    target = tmp_path / 'created-by-root'
    os.makedirs(host.path('run'))
    if planted == 'dir':
        os.symlink(str(target), host.path('run/kernel-damon'))
    else:
        os.mkdir(host.path('run/kernel-damon'), 0o700)
        os.symlink(str(target), host.lock_path)
    with pytest.raises(DamonError) as err:
        ensure_scheme(host, scheme())
    assert str(err.value).startswith('locking /run/kernel-damon/lock failed: E')
    assert not os.path.lexists(str(target))
    assert host.writes == [] and host.read('kdamonds/nr_kdamonds') == '0'


@pytest.mark.parametrize('problem, expected', [
    ('dir-mode', 'writable by group or others (mode 0777)'),
    ('file-owner', 'owned by uid 65534, not root'),
    ('fifo', 'not a regular file')])
def test_a_lock_someone_else_could_hold_is_refused(host, problem, expected):
    if os.geteuid() != 0 and problem == 'file-owner':
        pytest.skip('chown needs root')
    os.makedirs(host.path('run/kernel-damon'), 0o700)
    if problem == 'dir-mode':
        os.chmod(host.path('run/kernel-damon'), 0o777)
    elif problem == 'file-owner':
        os.close(os.open(host.lock_path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chown(host.lock_path, 65534, 65534)
    else:
        os.mkfifo(host.lock_path, 0o600)
    with pytest.raises(DamonError) as err:
        ensure_scheme(host, scheme())
    assert expected in str(err.value)
    assert host.writes == []


# ---------------------------------------------------------------- ownership is per boot

def test_after_a_reboot_another_tools_kdamond_is_foreign(host):
    ensure_scheme(host, scheme())
    assert host.managed() == {0}
    host.reboot()
    foreign_kdamond(host)
    before = host.snapshot()
    with pytest.raises(DamonConflictError) as err:
        ensure_scheme(host, scheme())
    assert 'not recorded in /var/lib/kernel-damon/managed.json as configured by kernel.damon in this boot' \
        in str(err.value)
    assert 'take_over: true' in str(err.value)
    with pytest.raises(DamonConflictError):
        feed_quota_goal(host, 0, 0, 0, 5000)
    assert host.snapshot() == before and host.writes == []
    assert gather_facts(host, refresh=True)['managed'] == []
    assert ensure_scheme(host, scheme(take_over=True))['changed']
    assert host.managed() == {0}


def test_a_kdamond_made_anew_by_another_tool_in_the_same_boot_is_foreign(host):
    ensure_scheme(host, scheme())
    host.write(K0 + '/state', 'off')
    foreign_kdamond(host)        # writes nr_kdamonds: every kdamond directory is made anew
    with pytest.raises(DamonConflictError):
        ensure_scheme(host, scheme())


def test_growing_nr_kdamonds_keeps_our_other_kdamonds_ours(host):
    ensure_scheme(host, scheme())
    ensure_scheme(host, scheme(kdamond=1, stop_kdamonds=True))
    assert host.managed() == {0, 1}
    assert not ensure_scheme(host, scheme())['changed']


def test_after_a_reboot_the_boot_unit_configures_an_empty_kdamond_again(host):
    ensure_scheme(host, scheme())
    host.reboot()
    assert host.managed() == set()
    assert ensure_scheme(host, scheme())['changed']
    assert host.managed() == {0}


def test_a_record_of_the_previous_version_counts_only_in_the_boot_it_was_written(host):
    ensure_scheme(host, scheme())
    with open(host.managed_path, 'w', encoding='utf-8') as handle:
        handle.write('{"kdamonds": [0]}\n')
    stamp = int(os.stat(host.managed_path).st_mtime)
    with open(host.path('proc/stat'), 'w', encoding='utf-8') as handle:
        handle.write('cpu  1 2 3\nbtime %d\n' % (stamp - 60))
    assert host.managed() == {0}
    with open(host.path('proc/stat'), 'w', encoding='utf-8') as handle:
        handle.write('cpu  1 2 3\nbtime %d\n' % (stamp + 60))
    assert host.managed() == set()


# ---------------------------------------------------------------- state files

BROKEN = {'empty': '', 'list': '[]', 'null': 'null', 'truncated': '{"version": 2, "boot_id": "b0',
          'wrong shape': '{"kdamonds": 5}', 'bad record': '{"version": 2, "boot_id": null, "kdamonds": {"x": 1}}'}


@pytest.mark.parametrize('case', sorted(BROKEN))
def test_a_broken_ownership_record_means_nothing_is_ours(host, case):
    ensure_scheme(host, scheme())
    with open(host.managed_path, 'w', encoding='utf-8') as handle:
        handle.write(BROKEN[case])
    facts = gather_facts(host)
    assert facts['managed'] == [] and facts['kdamonds'][0]['managed'] is False
    before = host.snapshot()
    with pytest.raises(DamonConflictError) as err:
        ensure_scheme(host, scheme(quotas={'size': '2G'}))
    assert '/var/lib/kernel-damon/managed.json cannot say' in str(err.value)
    assert host.snapshot() == before
    # take_over claims the kdamond and writes the record anew
    assert ensure_scheme(host, scheme(quotas={'size': '2G'}, take_over=True))['changed']
    assert host.managed() == {0}
    assert json.load(open(host.managed_path))['version'] == 2


@pytest.mark.parametrize('kind', ['fifo', 'symlink', 'huge'])
def test_a_state_file_that_is_no_plain_file_is_not_read(host, tmp_path, kind):
    os.makedirs(host.state_dir)
    if kind == 'fifo':
        os.mkfifo(host.managed_path)
    elif kind == 'symlink':
        target = tmp_path / 'elsewhere.json'
        target.write_text('{"kdamonds": [0]}')
        os.symlink(str(target), host.managed_path)
    else:
        with open(host.managed_path, 'w', encoding='utf-8') as handle:
            handle.write(' ' * (2 << 20))
    assert host.ownership()[0] == {} and host.ownership()[1]
    assert gather_facts(host)['managed'] == []


def test_the_record_is_written_whole_and_readable_under_any_umask(host):
    old = os.umask(0o077)
    try:
        ensure_scheme(host, scheme())
    finally:
        os.umask(old)
    assert oct(os.stat(host.managed_path).st_mode & 0o777) == '0o644'
    assert oct(os.stat(host.state_dir).st_mode & 0o777) == '0o755'
    assert not os.path.exists(host.managed_path + '.tmp')


# ---------------------------------------------------------------- interrupted runs

class Killed(BaseException):
    """SIGKILL, as far as the run is concerned: nothing after it runs."""


def interrupt(host, when):
    """Make the next run die before its write number `when` (a commit: 'commit')."""
    calls = [0]
    real = host._raw_write

    def dying(path, data):
        calls[0] += 1
        if (when == 'commit' and path.endswith('/state') and data in ('commit', 'commit_schemes_quota_goals')) \
                or calls[0] == when:
            host._raw_write = real
            raise Killed()
        return real(path, data)
    host._raw_write = dying


def running_config(host):
    return host.applied[K0]


@pytest.mark.parametrize('when', ['commit', 2])
def test_the_next_run_completes_a_run_killed_before_its_commit(host, when):
    ensure_scheme(host, scheme())
    changed = scheme(quotas={'size': '2G', 'reset_interval': '2s'})
    interrupt(host, when)
    with pytest.raises(Killed):
        ensure_scheme(host, changed)
    assert os.path.exists(journal_path(host))
    check = ensure_scheme(host, changed, check_mode=True)
    assert check['changed'] and check['commit'] == 'commit'
    host.writes.clear()
    result = ensure_scheme(host, changed)
    assert result['changed'] and result['sysfs_writes'][-1] == K0 + '/state=commit'
    assert 'was interrupted before its commit' in ' '.join(result['warnings'])
    assert running_config(host)[S0 + '/quotas/bytes'] == str(2 << 30)
    assert running_config(host)[S0 + '/quotas/reset_interval_ms'] == '2000'
    assert not os.path.exists(journal_path(host))
    assert not ensure_scheme(host, changed)['changed']


def test_another_writer_completes_the_interrupted_run_first(host):
    ensure_scheme(host, scheme())
    interrupt(host, 'commit')
    with pytest.raises(Killed):
        ensure_scheme(host, scheme(quotas={'size': '2G'}))
    result = ensure_quota_goal(host, {'metric': 'user_input', 'target': 9000})
    assert result['commit'] == 'commit'       # the interrupted run needed a full commit
    assert running_config(host)[S0 + '/quotas/bytes'] == str(2 << 30)
    assert running_config(host)[G0 + '/target_value'] == '9000'
    assert not os.path.exists(journal_path(host))


def test_the_feeder_does_not_feed_while_a_run_is_incomplete(host):
    ensure_scheme(host, scheme())
    interrupt(host, 'commit')
    with pytest.raises(Killed):
        ensure_scheme(host, scheme(quotas={'size': '2G'}))
    with pytest.raises(DamonConflictError) as err:
        feed_quota_goal(host, 0, 0, 0, 5000)
    assert 'was interrupted before its commit' in str(err.value)


def test_a_journal_of_an_earlier_boot_is_dropped(host):
    ensure_scheme(host, scheme())
    interrupt(host, 'commit')
    with pytest.raises(Killed):
        ensure_scheme(host, scheme(quotas={'size': '2G'}))
    host.reboot()
    assert ensure_scheme(host, scheme())['changed']
    assert not os.path.exists(journal_path(host))


@pytest.mark.parametrize('text', ['', '{"version": 1}', 'null'])
def test_a_broken_journal_asks_for_a_full_commit(host, text):
    ensure_scheme(host, scheme())
    with open(journal_path(host), 'w', encoding='utf-8') as handle:
        handle.write(text)
    result = ensure_scheme(host, scheme())
    assert result['changed'] and result['sysfs_writes'] == [K0 + '/state=commit']
    assert not os.path.exists(journal_path(host))


def test_a_run_with_nothing_to_change_on_a_running_kdamond_writes_no_journal(host):
    ensure_scheme(host, scheme())
    assert not ensure_scheme(host, scheme())['changed']
    assert not os.path.exists(journal_path(host))
