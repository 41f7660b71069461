# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_damon_feed's primitives on the fake kernel: kdamond_pid and feed_quota_goal,
and the collection lock they take.  The damos_autotune role's feeder program, which calls
them, is tested in tests/unit/roles/damos_autotune/test_feeder.py."""

from __future__ import annotations

import errno
import fcntl
import os

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_feed import feed_quota_goal, kdamond_pid
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme
from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import (
    DamonConflictError,
    DamonError,
    DamonKernelError,
    DamonValidationError,
)
from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import holding_lock

K0 = 'kdamonds/0'
G0 = K0 + '/contexts/0/schemes/0/quotas/goals/0'
FEED = [G0 + '/current_value=%s', K0 + '/state=commit_schemes_quota_goals']


def user_input_scheme(host, running=True, metric='user_input', target=10000):
    goal = {'metric': metric, 'target': target if metric == 'user_input' else '500us'}
    ensure_scheme(host, {'operations': 'paddr', 'action': 'pageout', 'running': running,
                         'quotas': {'reset_interval': '1s', 'size': '1G'}, 'goals': [goal]})
    host.writes.clear()


def feeds(value):
    return [FEED[0] % value, FEED[1]]


def test_pid_of_absent_stopped_and_running_kdamond(host):
    assert kdamond_pid(host, 0) == -1
    user_input_scheme(host, running=False)
    assert kdamond_pid(host, 0) == -1
    user_input_scheme(host)
    assert kdamond_pid(host, 0) == int(host.read(K0 + '/pid')) > 0
    assert host.writes == []


def test_feeds_value_then_commits_goals_only(host):
    user_input_scheme(host)
    pid = kdamond_pid(host, 0)
    result = feed_quota_goal(host, 0, 0, 0, 4000)
    assert result == {'state': 'on', 'pid': pid, 'value': 4000, 'target': 10000, 'written': True,
                      'sysfs_writes': feeds(4000)}
    assert host.read(G0 + '/current_value') == '4000'
    assert kdamond_pid(host, 0) == pid


def test_a_staged_value_that_was_never_committed_is_committed(host):
    """A feed killed between its current_value write and its commit leaves the value staged
    only; the next feed of that value must commit it, not take the staged file for applied."""
    user_input_scheme(host)
    pid = feed_quota_goal(host, 0, 0, 0, 4000)['pid']
    host.write(G0 + '/current_value', 5000)     # killed here, before the commit
    host.writes.clear()
    result = feed_quota_goal(host, 0, 0, 0, 5000, fed_pid=pid)
    assert result['written'] and result['sysfs_writes'] == feeds(5000)


def test_restarted_kdamond_is_fed_again(host):
    user_input_scheme(host)
    old = feed_quota_goal(host, 0, 0, 0, 4000)['pid']
    host.write(K0 + '/state', 'off')
    host.write(K0 + '/state', 'on')
    assert kdamond_pid(host, 0) != old
    result = feed_quota_goal(host, 0, 0, 0, 4000, fed_pid=old)
    assert result['written'] and result['sysfs_writes'] == feeds(4000)
    assert result['pid'] == kdamond_pid(host, 0)


def test_none_feeds_the_target(host):
    user_input_scheme(host, target=7000)
    result = feed_quota_goal(host, 0, 0, 0, None)
    assert result['value'] == 7000 and result['sysfs_writes'] == feeds(7000)


@pytest.mark.parametrize('running', [False, None])
def test_stopped_or_absent_kdamond_is_left_alone(host, running):
    if running is not None:
        user_input_scheme(host, running=running)
    before = host.snapshot()
    result = feed_quota_goal(host, 0, 0, 0, 4000)
    assert result['state'] == ('off' if running is not None else 'absent')
    assert not result['written'] and result['pid'] == -1
    assert host.snapshot() == before


@pytest.mark.parametrize('value', [-5, '1e400', 'abc', '', True, 2 ** 64])
def test_invalid_value_writes_nothing(host, value):
    user_input_scheme(host)
    before = host.snapshot()
    with pytest.raises(DamonValidationError) as err:
        feed_quota_goal(host, 0, 0, 0, value)
    assert str(err.value).startswith('current: invalid value')
    assert host.snapshot() == before


def test_measured_metric_is_not_fed(make_host):
    host = make_host('7.3.4')
    user_input_scheme(host, metric='some_mem_psi_us')
    before = host.snapshot()
    with pytest.raises(DamonConflictError, match='measures some_mem_psi_us itself'):
        feed_quota_goal(host, 0, 0, 0, 4000)
    assert host.snapshot() == before


def test_missing_goal(host):
    user_input_scheme(host)
    with pytest.raises(DamonConflictError, match='no goal 1 in scheme 0'):
        feed_quota_goal(host, 0, 0, 1, 4000)


def test_kdamond_owned_by_someone_else_is_not_fed(host):
    user_input_scheme(host)
    os.remove(host.managed_path)
    before = host.snapshot()
    with pytest.raises(DamonConflictError, match='not recorded'):
        feed_quota_goal(host, 0, 0, 0, 4000)
    assert host.snapshot() == before


def test_ebusy_is_retried(host):
    user_input_scheme(host)
    host.busy = 2
    assert feed_quota_goal(host, 0, 0, 0, 4000)['sysfs_writes'] == feeds(4000)


def test_ebusy_for_too_long_names_the_file(host):
    user_input_scheme(host)
    host.busy = 10 ** 6
    with pytest.raises(DamonKernelError) as err:
        feed_quota_goal(host, 0, 0, 0, 4000)
    assert err.value.errno == errno.EBUSY and err.value.path.endswith(G0 + '/current_value')


def test_takes_the_collection_lock(host):
    user_input_scheme(host)
    host.lock_timeout = 0.3
    with holding_lock(host):
        before = host.snapshot()
        with pytest.raises(DamonConflictError, match='another kernel.damon writer'):
            feed_quota_goal(host, 0, 0, 0, 4000)
        assert host.snapshot() == before


def test_lock_on_a_passed_descriptor_is_released_after_the_feed(host):
    """The feeder locks a dup of a descriptor systemd passed it and keeps the original open
    between ticks: the lock must still be free for the modules once a feed is done."""
    user_input_scheme(host)
    passed = os.open(host.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    host._open_lock = lambda: os.dup(passed)
    other = os.open(host.lock_path, os.O_RDWR)
    try:
        assert feed_quota_goal(host, 0, 0, 0, 4000)['written']
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)   # raises if the feeder kept it
    finally:
        os.close(other)
        os.close(passed)


def test_commit_that_stops_the_kdamond_is_reported(host):
    user_input_scheme(host)

    def stopping_write(path, data, write=host._raw_write):
        write(path, data)
        if data == 'commit_schemes_quota_goals':
            host._set_running(K0, False)
    host._raw_write = stopping_write
    with pytest.raises(DamonError, match='stopped kdamond 0'):
        feed_quota_goal(host, 0, 0, 0, 4000)


@pytest.mark.parametrize('seconds', [-1, 1.5, True, '10'])
def test_lock_timeout_must_be_whole_seconds(host, seconds):
    with pytest.raises(DamonValidationError, match="lock_timeout: invalid value .*; accepted: a whole number of seconds"):
        host.set_lock_timeout(seconds)
    assert host.lock_timeout == 60.0


def test_lock_timeout_bounds_the_wait_for_another_writer(host):
    user_input_scheme(host)
    host.set_lock_timeout(0)
    with holding_lock(host):
        with pytest.raises(DamonConflictError, match=r'holds .* \(waited 0 s\)'):
            feed_quota_goal(host, 0, 0, 0, 4000)


@pytest.mark.parametrize('blocking', [False, True])
def test_a_lock_error_other_than_another_writer_is_named_not_waited_for(host, blocking):
    user_input_scheme(host)
    # flock() on an O_PATH descriptor fails with EBADF: not contention, so no wait either.
    host._open_lock = lambda: os.open(host.lock_path, os.O_PATH)
    host.lock_blocking = blocking
    before = host.snapshot()
    with pytest.raises(DamonError) as caught:
        feed_quota_goal(host, 0, 0, 0, 4000)
    assert not isinstance(caught.value, DamonConflictError)
    assert str(caught.value) == 'locking %s failed: EBADF (Bad file descriptor)' % host.shown(host.lock_path)
    assert host.snapshot() == before


def test_blocking_lock_gives_up_after_the_timeout_and_takes_a_freed_lock(host):
    import threading

    user_input_scheme(host)
    host.lock_blocking = True
    host.lock_timeout = 0.2
    with holding_lock(host) as held:
        before = host.snapshot()
        with pytest.raises(DamonConflictError, match='another kernel.damon writer holds'):
            feed_quota_goal(host, 0, 0, 0, 4000)
        assert host.snapshot() == before
        # Freed while the feed waits in flock(): the feed goes through.
        host.lock_timeout = 30
        threading.Timer(0.2, fcntl.flock, (held, fcntl.LOCK_UN)).start()
        assert feed_quota_goal(host, 0, 0, 0, 4000)['sysfs_writes'] == feeds(4000)
    other = os.open(host.lock_path, os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)   # released after the feed
    finally:
        os.close(other)
