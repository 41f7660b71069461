# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the reliability targets (tests/integration/targets/reliability_*) found on the
fleet's kernels, pinned on the fake kernel: values the kernel resolves only at on/commit
time, commits the kernel rejects, and kdamonds found stopped."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_quota_goal, ensure_scheme
from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import (
    DamonError,
    DamonKernelError,
    DamonValidationError,
)
from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import FakeHost, _error

S0 = 'kdamonds/0/contexts/0/schemes/0'


def scheme(**extra):
    params = {'kdamond': 0, 'action': 'pageout', 'quotas': {'reset_interval': '1s', 'size': '1G'},
              'goals': [{'metric': 'user_input', 'target': 10000, 'current': 5000}]}
    params.update(extra)
    return params


def memcg_filters(host, path):
    layer = 'ops_filters' if host.feature('core_ops_filters') else 'filters'
    return '%s/%s/0' % (S0, layer), [{'type': 'memcg', 'memcg_path': path}]


def cgroup_v2(host, name, controllers):
    """A cgroup v2 directory whose cgroup.controllers lists what its parent enables."""
    path = os.path.join(host.root, 'sys/fs/cgroup', name.strip('/'))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, 'cgroup.controllers'), 'w', encoding='utf-8') as handle:
        handle.write(' '.join(controllers) + '\n')


class MemcgKernel(FakeHost):
    """Resolves memcg filter paths at commit like DAMON: a missing cgroup is ENOMEM from
    6.14 (damon_call()), and before that the kdamond stops without an errno.  With
    remove_at_commit, the cgroup disappears between validation and commit."""

    remove_at_commit = None
    stop_on_reject = False

    def _store_state(self, kdamond, keyword):
        if keyword == 'commit' and self.remove_at_commit:
            os.rmdir(os.path.join(self.root, 'sys/fs/cgroup', self.remove_at_commit.strip('/')))
            self.remove_at_commit = None
        if keyword == 'commit' and self._get(kdamond + '/state') == 'on' and self._unresolved(kdamond):
            if self.kernel < (6, 14) or self.stop_on_reject:
                self._set_running(kdamond, False)
            if self.kernel >= (6, 14):
                raise _error(errno.ENOMEM)
            return
        super()._store_state(kdamond, keyword)

    def _unresolved(self, kdamond):
        schemes = kdamond + '/contexts/0/schemes'
        for index in range(int(self._get(schemes + '/nr_schemes'))):
            for layer in ('filters', 'ops_filters'):
                base = '%s/%d/%s' % (schemes, index, layer)
                if not self.is_dir(base):
                    continue
                for entry in range(int(self._get(base + '/nr_filters'))):
                    rel = '%s/%d' % (base, entry)
                    if self._get(rel + '/type') == 'memcg' and not self.cgroup_exists(self._get(rel + '/memcg_path')):
                        return True
        return False


@pytest.fixture(params=['6.12.117', '7.3.4'])
def memcg_host(request, tmp_path):
    return MemcgKernel(tmp_path, release=request.param, cgroups=('workload.slice', 'batch.slice'))


def test_cgroup_without_the_memory_controller_is_refused_before_any_write(host):
    ensure_scheme(host, scheme())
    cgroup_v2(host, 'batch.slice', ['memory', 'pids'])
    cgroup_v2(host, 'batch.slice/job', [])     # batch.slice does not enable memory below it
    before = host.snapshot()
    with pytest.raises(DamonValidationError, match=r"memcg_path: invalid value '/batch.slice/job'; "
                                                   r"accepted: a cgroup with the memory controller"):
        ensure_scheme(host, scheme(filters=memcg_filters(host, '/batch.slice/job')[1]))
    assert host.snapshot() == before


def test_cgroup_paths_are_written_as_the_kernel_compares_them(host):
    ensure_scheme(host, scheme())
    base, filters = memcg_filters(host, 'workload.slice//')
    ensure_scheme(host, scheme(filters=filters))
    assert host.read(base + '/memcg_path') == '/workload.slice'
    with pytest.raises(DamonValidationError, match=r"without \. or \.\."):
        ensure_scheme(host, scheme(filters=memcg_filters(host, '/workload.slice/../workload.slice')[1]))


def test_a_cgroup_removed_between_runs_is_named_before_any_write(memcg_host):
    host = memcg_host
    base, filters = memcg_filters(host, '/batch.slice')
    ensure_scheme(host, scheme(filters=filters))
    pid = host.read('kdamonds/0/pid')
    os.rmdir(os.path.join(host.root, 'sys/fs/cgroup/batch.slice'))
    before = host.snapshot()
    with pytest.raises(DamonValidationError) as caught:
        ensure_scheme(host, scheme(quotas={'size': '2G'}))
    message = str(caught.value)
    assert message.startswith("%s/memcg_path: invalid value '/batch.slice'" % base)
    assert 'no directory /sys/fs/cgroup/batch.slice' in message and 'give filters' in message
    assert host.snapshot() == before
    assert host.read('kdamonds/0/state') == 'on' and host.read('kdamonds/0/pid') == pid
    # A goal-only commit does not resolve filters: feeding the goal still works.
    result = ensure_quota_goal(host, {'kdamond': 0, 'current': 7000})
    assert result['commit'] == 'commit_schemes_quota_goals'
    # Replacing the filters repairs it.
    assert ensure_scheme(host, scheme(quotas={'size': '2G'}, filters=[]))['commit'] == 'commit'


def test_a_commit_the_kernel_rejects_keeps_the_previous_configuration(memcg_host):
    """The cgroup disappears after validation (a race nothing before the commit can see)."""
    host = memcg_host
    ensure_scheme(host, scheme())
    pid = host.read('kdamonds/0/pid')
    before = host.snapshot()
    base, filters = memcg_filters(host, '/batch.slice')
    host.remove_at_commit = '/batch.slice'
    with pytest.raises(DamonError) as caught:
        ensure_scheme(host, scheme(filters=filters))
    message = str(caught.value)
    assert "%s/memcg_path='/batch.slice'" % base in message
    assert 'the previous configuration was restored' in message
    assert host.read('kdamonds/0/state') == 'on'
    after = host.snapshot()
    if host.kernel >= (6, 14):
        # The kernel refused the commit and the kdamond ran on, untouched.
        assert isinstance(caught.value, DamonKernelError) and caught.value.errno == errno.ENOMEM
        assert message.startswith("writing 'commit' to /sys/kernel/mm/damon/admin/kdamonds/0/state failed: ENOMEM")
        assert host.read('kdamonds/0/pid') == pid
        assert after == before
    else:
        # 6.12 stops the kdamond: restarted from the restored, previous configuration.
        assert 'this kernel reports no errno' in message and 'stopped kdamond 0' in message
        assert host.read('kdamonds/0/pid') != pid
        changed = {rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel)}
        assert changed == {'sys/kernel/mm/damon/admin/kdamonds/0/pid'}


def test_a_rejected_commit_that_stops_the_kdamond_restarts_it(tmp_path):
    host = MemcgKernel(tmp_path / 'stops', release='7.3.4', cgroups=('batch.slice',))
    ensure_scheme(host, scheme())
    host.remove_at_commit, host.stop_on_reject = '/batch.slice', True
    with pytest.raises(DamonKernelError, match='ENOMEM.*restored'):
        ensure_scheme(host, scheme(filters=memcg_filters(host, '/batch.slice')[1]))
    assert host.read('kdamonds/0/state') == 'on'
    assert host.read(S0 + '/ops_filters/nr_filters') == '0'


def test_a_kdamond_found_off_is_reported_and_started(host):
    ensure_scheme(host, scheme())
    host._set_running('kdamonds/0', False)
    fed = ensure_quota_goal(host, {'kdamond': 0, 'current': 3000})
    assert fed['commit'] is None and fed['kdamond']['state'] == 'off'
    assert fed['warnings'] == ['kdamond 0 is off: the goal is staged and applies when the kdamond starts']
    result = ensure_scheme(host, scheme(goals=[{'metric': 'user_input', 'target': 10000, 'current': 3000}]))
    assert result['sysfs_writes'] == ['kdamonds/0/state=on']
    assert any(warning.startswith('kdamond 0 was off') for warning in result['warnings'])
    assert host.read(S0 + '/quotas/goals/0/current_value') == '3000'
    assert not ensure_scheme(host, scheme(goals=[{'metric': 'user_input', 'target': 10000,
                                                  'current': 3000}]))['warnings']


def test_a_vaddr_process_gone_between_runs_is_named(make_host):
    host = make_host('7.3.4', pids=(1234, 5678))
    ensure_scheme(host, {'kdamond': 0, 'operations': 'vaddr', 'pid': 1234, 'action': 'stat'})
    host._set_running('kdamonds/0', False)    # the process exited and took its kdamond along
    os.rmdir(os.path.join(host.root, 'proc/1234'))
    before = host.snapshot()
    with pytest.raises(DamonValidationError, match=r"pid_target: invalid value '1234'; accepted: a running "
                                                   r"process \(no process 1234\).*give pid, pidfile or systemd_unit"):
        ensure_scheme(host, {'kdamond': 0, 'action': 'stat'})
    assert host.snapshot() == before
    result = ensure_scheme(host, {'kdamond': 0, 'pid': 5678, 'action': 'stat'})
    assert result['kdamond']['state'] == 'on'
