# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a security review found, pinned on the fake kernel: inputs that root reads or passes
on (pidfile, systemd_unit), numbers the kernel would bound only mid-apply, and exclusive
DAMON modules that a failed start left off."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_quota_goal, ensure_scheme
from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import DamonError, DamonValidationError
from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import FakeHost, _error

C0 = 'kdamonds/0/contexts/0'
S0 = C0 + '/schemes/0'
VADDR = {'operations': 'vaddr', 'action': 'pageout', 'pidfile': '/run/web.pid'}
NOBODY = 65534


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging: a FIFO blocks open() until a writer comes."""
    def expired(signum, frame):
        raise AssertionError('still blocked after %d s' % seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def host_path(host, rel):
    path = os.path.join(host.root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def pidfile(host, text, uid=0, mode=0o644, rel='run/web.pid'):
    path = host_path(host, rel)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.chown(path, uid, 0)
    os.chmod(path, mode)
    return path


def process_of(host, pid, uid):
    """/proc/<pid> of a process that runs as uid (its owner, as on a real /proc)."""
    path = host_path(host, 'proc/%d' % pid)
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, uid)


def refused(host, message, params=None, check_mode=False):
    """The run fails with a pidfile message, before any write."""
    with deadline(5):
        with pytest.raises(DamonValidationError) as caught:
            ensure_scheme(host, dict(params or VADDR), check_mode=check_mode)
    assert caught.value.option == 'pidfile'
    assert str(caught.value).startswith("pidfile: invalid value '/run/web.pid'; accepted: ")
    assert message in str(caught.value)
    assert host.writes == []
    return str(caught.value)


# ---------------------------------------------------------------- pidfile

@pytest.fixture
def vhost(make_host):
    return make_host('7.3.4', pids=(1234, 77))


def test_a_fifo_pidfile_fails_at_once(vhost):
    os.mkfifo(host_path(vhost, 'run/web.pid'), 0o600)
    refused(vhost, 'a regular file (/run/web.pid is a FIFO)')
    refused(vhost, 'a regular file (/run/web.pid is a FIFO)', check_mode=True)


def test_a_device_pidfile_is_refused_without_reading_it(vhost):
    try:
        # /dev/null's numbers (reading /dev/zero would end in a MemoryError on the old code)
        os.mknod(host_path(vhost, 'run/web.pid'), 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as err:
        pytest.skip('cannot create a device node here: %s' % err)
    refused(vhost, 'a regular file (/run/web.pid is a character device)')


def test_a_directory_pidfile_is_refused(vhost):
    os.makedirs(host_path(vhost, 'run/web.pid'))
    refused(vhost, 'a regular file (/run/web.pid is a directory)')


def test_symlinked_pidfiles_are_refused_even_dangling(vhost):
    os.symlink('/run/gone.pid', host_path(vhost, 'run/web.pid'))
    refused(vhost, 'a regular file, not a symbolic link')
    os.unlink(host_path(vhost, 'run/web.pid'))
    pidfile(vhost, '77\n', rel='run/real.pid')
    os.symlink('real.pid', host_path(vhost, 'run/web.pid'))
    refused(vhost, 'a regular file, not a symbolic link')


@pytest.mark.parametrize('text, message', [
    ('1' * 40, 'at most 32 bytes'),
    ('77 78\n', "one process id in decimal (it holds '77 78')"),
    ('0x4d\n', "one process id in decimal (it holds '0x4d')"),
    ('-77\n', "one process id in decimal (it holds '-77')"),
    ('', "one process id in decimal (it holds '')"),
    ('4294967373\n', 'a process id from 1 to 2147483647'),
])
def test_pidfile_contents_are_one_pid(vhost, text, message):
    pidfile(vhost, text)
    refused(vhost, message)


def test_a_missing_pidfile_is_named(vhost):
    refused(vhost, 'an existing regular file (/run/web.pid does not exist)')


def test_a_pidfile_its_user_can_write_names_only_that_users_processes(vhost):
    process_of(vhost, 1234, 0)
    process_of(vhost, 77, NOBODY)
    pidfile(vhost, '1234\n', uid=NOBODY)
    message = refused(vhost, '(/run/web.pid is owned by uid 65534, and process 1234 runs as uid 0)')
    assert 'only root can write, or that names a process of the user who can' in message
    process_of(vhost, 1234, 1000)
    refused(vhost, '(/run/web.pid is owned by uid 65534, and process 1234 runs as uid 1000)', check_mode=True)
    pidfile(vhost, '77\n', uid=NOBODY)
    result = ensure_scheme(vhost, dict(VADDR))
    assert C0 + '/targets/0/pid_target=77' in result['sysfs_writes']


def test_writable_pidfiles_of_root_are_refused_and_a_root_only_one_is_trusted(vhost):
    process_of(vhost, 1234, 0)
    process_of(vhost, 77, NOBODY)
    pidfile(vhost, '1234\n', mode=0o666)
    refused(vhost, '(/run/web.pid is world-writable)')
    pidfile(vhost, '77\n', uid=NOBODY, mode=0o646)
    refused(vhost, '(/run/web.pid is world-writable)')
    pidfile(vhost, '1234\n', mode=0o664)
    refused(vhost, '(/run/web.pid is owned by root and group-writable)')
    pidfile(vhost, '77\n')
    predicted = ensure_scheme(vhost, dict(VADDR), check_mode=True)
    assert vhost.writes == []
    result = ensure_scheme(vhost, dict(VADDR))
    assert result['sysfs_writes'] == predicted['sysfs_writes']
    assert vhost.read(C0 + '/targets/0/pid_target') == '77'


# ---------------------------------------------------------------- systemd_unit

@pytest.mark.parametrize('unit', ['-Hroot@evil.service', '--host=evil.service', 'web', 'web.timer', 'web.service x',
                                  'web.service\n', '../web.service', 'w/eb.service', '', 'a' * 250 + '.service'])
def test_systemd_unit_names_are_checked_before_systemctl_runs(vhost, unit):
    calls = []
    vhost.run_command = lambda argv: calls.append(argv) or (0, '77\n', '')
    for check_mode in (True, False):
        with pytest.raises(DamonValidationError) as caught:
            ensure_scheme(vhost, {'operations': 'vaddr', 'action': 'pageout', 'systemd_unit': unit},
                          check_mode=check_mode)
        assert str(caught.value).startswith('systemd_unit: invalid value %r; accepted: a unit name ' % unit)
    assert calls == [] and vhost.writes == []


def test_systemctl_gets_the_unit_after_the_end_of_its_options(vhost):
    calls = []
    vhost.run_command = lambda argv: calls.append(argv) or (0, '77\n', '')
    for unit in ('web.service', 'getty@tty1.service', 'session-3.scope', 'user-1000.slice:x.service'):
        ensure_scheme(vhost, {'operations': 'vaddr', 'action': 'pageout', 'systemd_unit': unit}, check_mode=True)
        assert calls[-1] == ['systemctl', 'show', '-p', 'MainPID', '--value', '--', unit]


# ---------------------------------------------------------------- bounds before the first write

PADDR = {'operations': 'paddr', 'action': 'pageout'}
ULONG_OVER = 2 ** 64
INT_OVER = 2 ** 31
UINT_OVER = 2 ** 32


@pytest.mark.parametrize('params, option, accepted', [
    # durations: unsigned long files
    ({'intervals': {'update': ULONG_OVER}}, 'intervals.update', 'at most 18446744073709551615 us'),
    ({'intervals': {'update': '6000000000h'}}, 'intervals.update', 'at most 18446744073709551615 us'),
    ({'apply_interval': ULONG_OVER}, 'apply_interval', 'at most 18446744073709551615 us'),
    ({'quotas': {'reset_interval': str(ULONG_OVER)}}, 'quotas.reset_interval', 'at most 18446744073709551615 ms'),
    ({'quotas': {'time': '6000000000000h'}}, 'quotas.time', 'at most 18446744073709551615 ms'),
    ({'watermarks': {'interval': ULONG_OVER}}, 'watermarks.interval', 'at most 18446744073709551615 us'),
    ({'goals': [{'metric': 'some_mem_psi_us', 'target': ULONG_OVER}]}, 'goals[0].target',
     'at most 18446744073709551615 us'),
    # counts of aggregation intervals and samples: unsigned long files
    ({'access_pattern': {'age': {'max': ULONG_OVER}}}, 'access_pattern.age.max', 'at most 18446744073709551615'),
    ({'access_pattern': {'age': {'max': '99999999999999999999h'}}}, 'access_pattern.age.max',
     'at most 18446744073709551615'),
    ({'access_pattern': {'access_rate': {'max': ULONG_OVER}}}, 'access_pattern.access_rate.max',
     'at most 18446744073709551615'),
    # weights: unsigned int files
    ({'quotas': {'weights': {'size': UINT_OVER}}}, 'quotas.weights.size', 'an integer from 0 to 4294967295'),
    ({'quotas': {'weights': {'access_rate': UINT_OVER}}}, 'quotas.weights.access_rate',
     'an integer from 0 to 4294967295'),
    ({'quotas': {'weights': {'age': UINT_OVER}}}, 'quotas.weights.age', 'an integer from 0 to 4294967295'),
    # int files
    ({'filters': [{'type': 'target', 'target_idx': INT_OVER}]}, 'filters[0].target_idx',
     'an integer from 0 to 2147483647'),
    # digits past what int() takes (4300) were a ValueError traceback
    ({'quotas': {'size': '9' * 5000}}, 'quotas.size', 'a size in bytes'),
    ({'intervals': {'update': '9' * 5000}}, 'intervals.update', 'an integer number of us'),
])
def test_numbers_are_bounded_by_their_sysfs_file_before_any_write(make_host, params, option, accepted):
    for check_mode in (True, False):
        host = make_host('7.3.4')
        with pytest.raises(DamonValidationError) as caught:
            ensure_scheme(host, dict(PADDR, **params), check_mode=check_mode)
        assert caught.value.option == option
        assert str(caught.value).startswith('%s: invalid value ' % option)
        assert accepted in str(caught.value)
        assert host.writes == []


def test_each_file_type_takes_its_largest_value_and_refuses_one_more(make_host):
    host = make_host('7.3.4')
    largest = dict(PADDR, intervals={'update': ULONG_OVER - 1}, quotas={'weights': {'size': UINT_OVER - 1}},
                   access_pattern={'age': {'max': ULONG_OVER - 1}},
                   filters=[{'type': 'target', 'target_idx': INT_OVER - 1}])
    ensure_scheme(host, largest)
    assert host.read(C0 + '/monitoring_attrs/intervals/update_us') == str(ULONG_OVER - 1)
    assert host.read(S0 + '/quotas/weights/sz_permil') == str(UINT_OVER - 1)
    assert host.read(S0 + '/access_pattern/age/max') == str(ULONG_OVER - 1)
    assert host.read(S0 + '/core_filters/0/damon_target_idx') == str(INT_OVER - 1)
    before = host.snapshot()
    for params in ({'intervals': {'update': ULONG_OVER}}, {'quotas': {'weights': {'size': UINT_OVER}}},
                   {'access_pattern': {'age': {'max': ULONG_OVER}}},
                   {'filters': [{'type': 'target', 'target_idx': INT_OVER}]}):
        with pytest.raises(DamonValidationError):
            ensure_scheme(host, dict(largest, **params))
    assert host.snapshot() == before


@pytest.mark.parametrize('existing, kdamond, accepted', [
    (0, 1, '0 to add the first kdamond (there is none)'),
    (0, 500000, '0 to add the first kdamond (there is none)'),
    (1, 2, 'an existing kdamond index (0..0) or 1 to add one'),
])
def test_kdamond_is_at_most_one_past_the_existing_ones(make_host, existing, kdamond, accepted):
    for check_mode in (True, False):
        host = make_host('7.3.4')
        if existing:
            ensure_scheme(host, dict(PADDR, running=False))
            host.writes.clear()
        with pytest.raises(DamonValidationError) as caught:
            ensure_scheme(host, dict(PADDR, kdamond=kdamond), check_mode=check_mode)
        assert str(caught.value) == 'kdamond: invalid value %d; accepted: %s' % (kdamond, accepted)
        assert host.writes == []
    # The next index adds a kdamond.
    ensure_scheme(host, dict(PADDR, kdamond=existing, running=False))
    assert host.read('kdamonds/nr_kdamonds') == str(existing + 1)


# ---------------------------------------------------------------- exclusive modules after a failed start

class RefusingStart(FakeHost):
    """`on` fails with EINVAL (a check of the kernel's the module could not make first), and
    with refuse_modules, re-enabling an exclusive module fails too."""

    refuse_start = True
    refuse_modules = False

    def _store_state(self, kdamond, keyword):
        if keyword == 'on' and self.refuse_start:
            raise _error(errno.EINVAL)
        super()._store_state(kdamond, keyword)

    def _raw_write(self, path, data):
        if self.refuse_modules and path.startswith(self.path('sys/module/')) and data.startswith('Y'):
            raise _error(errno.EPERM)
        super()._raw_write(path, data)


@pytest.fixture
def stat_host(tmp_path):
    return RefusingStart(tmp_path, release='7.3.4', modules={'damon_stat': True, 'damon_reclaim': True,
                                                             'damon_lru_sort': False})


def test_a_failed_start_enables_the_modules_it_stopped_again(stat_host):
    stat_host.busy = 1000      # the first sysfs write fails: no module was stopped yet
    with pytest.raises(DamonError) as caught:
        ensure_scheme(stat_host, dict(PADDR, stop_exclusive_modules=True))
    assert str(caught.value).endswith('the previous configuration was restored')
    assert stat_host.exclusive_modules() == {'damon_stat': True, 'damon_reclaim': True, 'damon_lru_sort': False}
    stat_host.busy = 0
    with pytest.raises(DamonError) as caught:
        ensure_scheme(stat_host, dict(PADDR, stop_exclusive_modules=True))
    message = str(caught.value)
    assert message.startswith("writing 'on' to /sys/kernel/mm/damon/admin/kdamonds/0/state failed: EINVAL")
    assert message.endswith('the previous configuration was restored, and damon_reclaim, damon_stat, which this run '
                            'stopped, were enabled again')
    assert stat_host.exclusive_modules() == {'damon_stat': True, 'damon_reclaim': True, 'damon_lru_sort': False}
    assert stat_host.read('kdamonds/nr_kdamonds') == '0'


def test_modules_that_cannot_be_enabled_again_are_named(stat_host):
    stat_host.refuse_modules = True
    with pytest.raises(DamonError) as caught:
        ensure_scheme(stat_host, dict(PADDR, stop_exclusive_modules=True))
    message = str(caught.value)
    assert 'the previous configuration was restored, but damon_reclaim, damon_stat, which this run stopped, ' \
           'stay off: ' in message
    assert "writing 'Y' to /sys/module/damon_reclaim/parameters/enabled failed: EPERM" in message
    assert stat_host.exclusive_modules() == {'damon_stat': False, 'damon_reclaim': False, 'damon_lru_sort': False}


# The input cases whose answer does not depend on the host: the integration target
# damos_scheme keeps only those that do (missing pids, pidfiles, units, cgroups, nodes,
# kdamonds and schemes), and these run here, in both modes, on the newest fake kernel.
@pytest.mark.parametrize('params, expect', [
    ({'quotas': {'reset_interval': '1 fortnight'}}, r'quotas\.reset_interval'),
    ({'quotas': {'time': -5}}, r'quotas\.time'),
    ({'goals': [{'metric': 'some_mem_psi_us', 'target': 'abc'}]}, r'target.*abc'),
    ({'goals': [{'metric': 'some_mem_psi_us', 'target': 0}]}, r'target'),
    ({'goals': [{'metric': 'user_input', 'target': 100, 'current': -1}]}, r'current'),
    ({'goals': [{'metric': 'some_mem_psi_us', 'target': '500us', 'current': 3}]}, r'current'),
    ({'kdamond': -1}, r'kdamond'),
    ({'access_pattern': {'access_rate': {'min': '150%'}}}, r'access_rate'),
    ({'access_pattern': {'size': {'min': '2G', 'max': '1G'}}}, r'access_pattern\.size'),
    ({'access_pattern': {'age': {'min': 'forever'}}}, r'access_pattern\.age\.min'),
    ({'intervals': {'sample': '1s', 'aggr': '100ms'}}, r'intervals'),
    ({'intervals': {'update': '5 parsecs'}}, r'intervals\.update'),
    ({'intervals_goal': {'access_bp': '200%', 'aggrs': 3, 'min_sample': '1ms', 'max_sample': '10s'}},
     r'intervals_goal'),
    ({'nr_regions': {'min': 2}}, r'nr_regions'),
    ({'nr_regions': {'min': 100, 'max': 50}}, r'nr_regions'),
    ({'regions': [{'start': '8G', 'end': '4G'}]}, r'regions'),
    ({'regions': [{'start': 'abc', 'end': '4G'}]}, r'regions\[0\]\.start'),
    ({'watermarks': {'metric': 'free_mem_rate', 'high': 100, 'mid': 500, 'low': 50}}, r'watermarks'),
    ({'watermarks': {'interval': 'never'}}, r'watermarks\.interval'),
    ({'filters': [{'type': 'addr', 'addr_start': '8G', 'addr_end': '4G'}]}, r'filters\[0\]'),
    ({'filters': [{'type': 'hugepage_size', 'min': '2M', 'max': '4K'}]}, r'filters\[0\]|hugepage_size'),
    ({'filters': [{'type': 'target', 'target_idx': -1}]}, r'target_idx'),
    ({'filters': [{'type': 'sideways'}]}, r'type'),
    ({'apply_interval': 'soon'}, r'apply_interval.*soon'),
    ({'target_nid': -5}, r'target_nid'),
    ({'quotas': {'weights': {'size': -1}}}, r'quotas\.weights\.size'),
    ({'quotas': {'goal_tuner': 'bogus'}}, r'goal_tuner'),
])
def test_host_independent_bad_input_is_named_and_writes_nothing(make_host, params, expect):
    for check_mode in (True, False):
        host = make_host('7.3.4')
        before = host.snapshot()
        with pytest.raises(DamonValidationError) as caught:
            ensure_scheme(host, dict(PADDR, stop_exclusive_modules=True, **params), check_mode=check_mode)
        assert re.search(expect, str(caught.value)), str(caught.value)
        assert host.writes == []
        assert host.snapshot() == before


@pytest.mark.parametrize('params, expect', [
    ({'metric': 'user_input', 'target': 0}, r'target'),
    ({'metric': 'user_input', 'target': '1e400'}, r'target'),
    ({'metric': 'node_mem_free_bp', 'target': '101%', 'nid': 0}, r'target|node_mem_free_bp'),
    ({'metric': 'no_such_metric', 'target': 10}, r'metric'),
])
def test_host_independent_bad_goal_input_is_named_and_writes_nothing(make_host, params, expect):
    host = make_host('7.3.4')
    ensure_scheme(host, dict(PADDR, goals=[{'metric': 'user_input', 'target': 10}]))
    host.writes.clear()
    before = host.snapshot()
    for check_mode in (True, False):
        with pytest.raises(DamonValidationError) as caught:
            ensure_quota_goal(host, dict({'kdamond': 0, 'scheme': 0, 'goal': 0}, **params), check_mode=check_mode)
        assert re.search(expect, str(caught.value)), str(caught.value)
        assert host.writes == []
        assert host.snapshot() == before
