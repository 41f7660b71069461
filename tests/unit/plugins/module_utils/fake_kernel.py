# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake kernel for unit tests: a Host over a temp dir that emulates DAMON sysfs.

Files per release follow damon-sysfs.md and what Debian's 6.12.117 and 7.3.4 kernels
showed in the test VMs.  Emulated: nr_* recreates children with defaults (even for the
same count), nr_kdamonds EBUSY while a kdamond runs, state keywords, keyword/number
parsing (EINVAL), read-only files (mode 0400, EACCES), exclusive modules (EBUSY on `on`),
and an invalid commit: EINVAL from 6.14, a silently terminated kdamond before.
holding_lock() plays another writer of the collection, which holds its lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os

from ansible_collections.kernel.damon.plugins.module_utils._damon_host import Host, read_tree
from ansible_collections.kernel.damon.plugins.module_utils._damon_model import ACTIONS, FILTER_TYPES, GOAL_METRICS
from ansible_collections.kernel.damon.plugins.module_utils._damon_units import kernel_version


# Paths of kdamond 0's first context, scheme and goal, and the seed's PSI scheme, which the
# tests of the core share.
K0 = 'kdamonds/0'
C0 = K0 + '/contexts/0'
S0 = C0 + '/schemes/0'
G0 = S0 + '/quotas/goals/0'

PSI_SCHEME = {'operations': 'paddr', 'action': 'pageout', 'quotas': {'reset_interval': '1s', 'size': '1G'},
              'goals': [{'metric': 'some_mem_psi_us', 'target': '500us'}]}


def scheme(**changes):
    params = json.loads(json.dumps(PSI_SCHEME))
    params.update(changes)
    return params


class RO(str):
    """A read-only (0400) file's default value."""


def _since(version, since, template):
    return template if version >= since else {}


def _kdamond(v):
    return dict(state='off', pid=RO('-1'), contexts={'nr_contexts': '0'},
                **_since(v, (6, 17), {'refresh_ms': '0'}))


def _context(v):
    intervals = dict(sample_us='5000', aggr_us='100000', update_us='60000000',
                     **_since(v, (6, 15), {'intervals_goal': dict.fromkeys(
                         ('access_bp', 'aggrs', 'min_sample_us', 'max_sample_us'), '0')}))
    attrs = dict(intervals=intervals, nr_regions={'min': '10', 'max': '1000'},
                 **_since(v, (7, 3), {'probes': {'nr_probes': '0'}}))
    return dict(avail_operations=RO('vaddr\nfvaddr\npaddr'), operations='vaddr', monitoring_attrs=attrs,
                targets={'nr_targets': '0'}, schemes={'nr_schemes': '0'},
                **_since(v, (6, 18), {'addr_unit': '1'}), **_since(v, (7, 3), {'pause': 'N'}))


def _target(v):
    return dict(pid_target='0', regions={'nr_regions': '0'}, **_since(v, (6, 19), {'obsolete_target': 'N'}))


def _scheme(v):
    quotas = dict(ms='0', bytes='0', reset_interval_ms='0',
                  weights=dict.fromkeys(('sz_permil', 'nr_accesses_permil', 'age_permil'), '0'),
                  **_since(v, (6, 8), {'goals': {'nr_goals': '0'}}),
                  **_since(v, (6, 9), {'effective_bytes': RO('0')}),
                  **_since(v, (7, 1), {'goal_tuner': 'consist'}),
                  **_since(v, (7, 3), {'fail_charge_num': '0', 'fail_charge_denom': '0'}))
    stats = dict(dict.fromkeys(('nr_tried', 'sz_tried', 'nr_applied', 'sz_applied', 'qt_exceeds'), RO('0')),
                 **_since(v, (6, 14), {'sz_ops_filter_passed': RO('0')}),
                 **_since(v, (7, 0), {'nr_snapshots': RO('0'), 'max_nr_snapshots': '0'}))
    return dict(action='stat', access_pattern={name: {'min': '0', 'max': '0'}
                                               for name in ('sz', 'nr_accesses', 'age')},
                quotas=quotas, stats=stats,
                watermarks=dict(metric='none', interval_us='0', high='0', mid='0', low='0'),
                **_since(v, (6, 3), {'filters': {'nr_filters': '0'}}),
                **_since(v, (6, 6), {'tried_regions': {'total_bytes': RO('0')}}),
                **_since(v, (6, 7), {'apply_interval_us': '0'}),
                **_since(v, (6, 11), {'target_nid': '-1'}),
                **_since(v, (6, 15), {'core_filters': {'nr_filters': '0'}, 'ops_filters': {'nr_filters': '0'}}),
                **_since(v, (6, 17), {'dests': {'nr_dests': '0'}}))


def _goal(v):
    return dict(target_value='0', current_value='0', **_since(v, (6, 9), {'target_metric': 'user_input'}),
                **_since(v, (6, 16), {'nid': '0'}), **_since(v, (6, 19), {'path': ''}))


def _filter(v):
    return dict(type='anon', matching='N', memcg_path='', **_since(v, (6, 14), {'allow': 'N'}),
                **_since(v, (6, 6), {'addr_start': '0', 'addr_end': '0', 'damon_target_idx': '0'}),
                **_since(v, (6, 15), {'min': '0', 'max': '0'}))


CHILDREN = {'kdamonds': _kdamond, 'contexts': _context, 'targets': _target,
            'regions': lambda v: {'start': '0', 'end': '0'}, 'schemes': _scheme, 'goals': _goal,
            'filters': _filter, 'core_filters': _filter, 'ops_filters': _filter,
            'dests': lambda v: {'id': '0', 'weight': '0'},
            'probes': lambda v: {'weight': '0', 'filters': {'nr_filters': '0'}}}
BOOLS = ('matching', 'allow', 'obsolete_target', 'pause')
STRINGS = ('memcg_path', 'path')
IOMEM = """00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000f0000-000fffff : System ROM
00100000-1ffdcfff : System RAM
  01000000-01ffffff : Kernel code
fd000000-fdffffff : PCI Bus 0000:00
"""


def _error(code):
    return OSError(code, os.strerror(code))


def _kernel_int(text):
    """kstrto*(buf, 0): 0x hex, leading-0 octal, else decimal."""
    sign, digits = (-1, text[1:]) if text.startswith('-') else (1, text)
    try:
        if digits[:2].lower() == '0x':
            return sign * int(digits[2:], 16)
        return sign * int(digits, 8 if len(digits) > 1 and digits[0] == '0' else 10)
    except ValueError:
        raise _error(errno.EINVAL) from None


class FakeHost(Host):
    """Host(root=tmp_path) whose _raw_write behaves like DAMON sysfs."""

    def __init__(self, tmp_path, release='6.12.117', modules=None, nodes='0', cgroups=('workload.slice',),
                 pids=(1234,), **kwargs):
        root = str(tmp_path)
        self.kernel = kernel_version(release)
        self.busy = 0                # the next N admin writes fail with EBUSY
        self.commit_stops = False    # a commit terminates the kdamond (damon-sysfs.md 5.6)
        self.next_pid = 4242
        if modules is None:
            modules = {'damon_reclaim': False, 'damon_lru_sort': False}
            if self.kernel >= (7, 0):
                modules['damon_stat'] = False
        self.generation = 0          # kdamond directories made so far (their identity)
        self.applied = {}            # 'kdamonds/N': the staged tree it took in at on/commit
        files = {'proc/sys/kernel/random/boot_id': 'b0b0b0b0-0000-4000-8000-000000000001\n',
                 'proc/iomem': IOMEM, 'proc/pressure/memory':
                 'some avg10=0.00 avg60=0.00 avg300=0.00 total=170\n'
                 'full avg10=0.00 avg60=0.00 avg300=0.00 total=170\n',
                 'sys/devices/system/node/has_memory': nodes + '\n'}
        files.update(('sys/module/%s/parameters/enabled' % name, 'Y\n' if on else 'N\n')
                     for name, on in modules.items())
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), 'w', encoding='utf-8') as handle:
                handle.write(text)
        for rel in ['sys/fs/cgroup/' + name for name in cgroups] + ['proc/%d' % pid for pid in pids]:
            os.makedirs(os.path.join(root, rel), exist_ok=True)
        kwargs.setdefault('sleep', lambda seconds: None)
        super().__init__(root=root, release=release, **kwargs)
        self._build(self.admin, {'kdamonds': {'nr_kdamonds': '0'}})

    # -- tree building
    def _put(self, path, text, mode=None):
        if os.path.exists(path):
            os.chmod(path, 0o600)
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(text + '\n')
        os.chmod(path, mode or (0o400 if isinstance(text, RO) else 0o600))

    def _build(self, path, template):
        os.makedirs(path, exist_ok=True)
        for name, value in template.items():
            if isinstance(value, dict):
                self._build(os.path.join(path, name), value)
            else:
                self._put(os.path.join(path, name), value)

    def _remove(self, path):
        for name in os.listdir(path):
            child = os.path.join(path, name)
            if os.path.isdir(child):
                self._remove(child)
                os.rmdir(child)
            else:
                os.chmod(child, 0o600)
                os.unlink(child)

    def reboot(self):
        """What a reboot leaves: a new boot id and an empty DAMON tree; files kept."""
        with open(self.path('proc/sys/kernel/random/boot_id'), 'w', encoding='utf-8') as handle:
            handle.write('b0b0b0b0-0000-4000-8000-%012d\n' % (self.generation + 2))
        self._remove(self.admin_path('kdamonds'))
        self._build(self.admin, {'kdamonds': {'nr_kdamonds': '0'}})

    def listdir(self, rel):
        return [name for name in super().listdir(rel) if not name.startswith('.')]

    def kdamond_identity(self, index):
        # A counter, not the inode: a temp file system may hand a freed inode out again.
        path = self.admin_path('kdamonds/%d/.generation' % index)
        return int(open(path).read()) if os.path.exists(path) else None

    def snapshot(self):
        """Every file below the root, byte for byte, with its mode (but the empty lock file)."""
        files = {}
        for directory, unused_dirs, names in os.walk(self.root):
            for name in names:
                path = os.path.join(directory, name)
                if path == self.lock_path:
                    continue
                with open(path, 'rb') as handle:
                    files[os.path.relpath(path, self.root)] = (handle.read(), os.stat(path).st_mode)
        return files

    def _get(self, rel):
        return self.read(rel)

    # -- the kernel's side of a write
    def _raw_write(self, path, data):
        if not path.startswith(self.admin + '/'):
            self._put(path, data.strip(), os.stat(path).st_mode & 0o777)
            return
        if not os.stat(path).st_mode & 0o200:
            raise _error(errno.EACCES)
        if self.busy:
            self.busy -= 1
            raise _error(errno.EBUSY)
        rel = os.path.relpath(path, self.admin)
        directory, name = os.path.split(rel)
        value = data[:-1] if data.endswith('\n') else data
        if name == ('nr_filters' if directory.endswith('filters') else 'nr_' + os.path.basename(directory)):
            self._store_count(directory, name, value)
        elif name == 'state':
            self._store_state(directory, value)
        else:
            self._put(path, self._parse(rel, name, value))

    def _parse(self, rel, name, value):
        keywords = {'operations': ('vaddr', 'fvaddr', 'paddr'), 'metric': ('none', 'free_mem_rate'),
                    'goal_tuner': ('consist', 'temporal'),
                    'action': [a for a, since in ACTIONS.items() if self.kernel >= since],
                    'target_metric': [m for m, since in GOAL_METRICS.items() if self.kernel >= since],
                    'type': [t for t, since in FILTER_TYPES.items() if self.kernel >= since and
                             ('/ops_filters/' not in rel or t not in ('addr', 'target')) and
                             ('/core_filters/' not in rel or t in ('addr', 'target'))]}
        if name in keywords:
            if value not in keywords[name]:
                raise _error(errno.EINVAL)
            return value
        if name in BOOLS:
            if value[:1] not in ('Y', 'y', '1', 'N', 'n', '0'):
                raise _error(errno.EINVAL)
            return 'Y' if value[:1] in ('Y', 'y', '1') else 'N'
        return value if name in STRINGS else str(_kernel_int(value))

    def _store_count(self, directory, name, value):
        count = _kernel_int(value)
        if count < 0 or (name == 'nr_contexts' and count > 1):
            raise _error(errno.EINVAL)
        if name == 'nr_kdamonds' and self.running():
            raise _error(errno.EBUSY)
        path = self.admin_path(directory)
        for entry in os.listdir(path):
            if entry.isdigit():
                self._remove(os.path.join(path, entry))
                os.rmdir(os.path.join(path, entry))
        child = CHILDREN[os.path.basename(directory)]
        for index in range(count):
            self._build(os.path.join(path, str(index)), child(self.kernel))
            if name == 'nr_kdamonds':
                self.generation += 1
                with open(os.path.join(path, str(index), '.generation'), 'w', encoding='utf-8') as handle:
                    handle.write(str(self.generation))
        self._put(os.path.join(path, name), str(count))

    def running(self):
        count = int(self._get('kdamonds/nr_kdamonds'))
        return [i for i in range(count) if self._get('kdamonds/%d/state' % i) == 'on']

    def _store_state(self, kdamond, keyword):
        on = self._get(kdamond + '/state') == 'on'
        if keyword == 'on':
            if on or any(self.exclusive_modules().values()):
                raise _error(errno.EBUSY)
            self._check_context(kdamond)
            self._set_running(kdamond, True)
            self.applied[kdamond] = read_tree(self, kdamond)
        elif keyword == 'off':
            if not on:
                raise _error(errno.EINVAL)
            self._set_running(kdamond, False)
        elif keyword in ('commit', 'commit_schemes_quota_goals', 'update_schemes_stats',
                         'update_schemes_effective_quotas', 'update_tuned_intervals'):
            if not on:
                raise _error(errno.EINVAL)
            if keyword == 'commit':
                try:
                    self._check_context(kdamond)
                except OSError:
                    # Before 6.14 commands ran from the aggregation callback: the write
                    # succeeds and the callback's error terminates the kdamond (seen on 6.12).
                    if self.kernel >= (6, 14):
                        raise
                    self._set_running(kdamond, False)
                if self.commit_stops:
                    self._set_running(kdamond, False)
            if keyword in ('commit', 'commit_schemes_quota_goals') and self._get(kdamond + '/state') == 'on':
                staged = read_tree(self, kdamond)
                if keyword == 'commit':
                    self.applied[kdamond] = staged
                else:
                    self.applied[kdamond] = dict(
                        {rel: value for rel, value in self.applied.get(kdamond, {}).items() if '/quotas/goals/' not in rel},
                        **{rel: value for rel, value in staged.items() if '/quotas/goals/' in rel})
            if keyword == 'update_schemes_effective_quotas':
                self._fill_effective_quotas(kdamond)
            if keyword == 'update_tuned_intervals':
                self._tune_intervals(kdamond)
        else:
            raise _error(errno.EINVAL)

    def _set_running(self, kdamond, on):
        self._put(self.admin_path(kdamond + '/state'), 'on' if on else 'off')
        self._put(self.admin_path(kdamond + '/pid'), RO(self.next_pid if on else -1))
        self.next_pid += 1 if on else 0

    def _check_context(self, kdamond):
        """A few of the checks on/commit make, enough to see EINVAL in tests."""
        context = kdamond + '/contexts/0'
        if self._get(kdamond + '/contexts/nr_contexts') != '1':
            raise _error(errno.EINVAL)
        intervals = context + '/monitoring_attrs/intervals'
        low, high = (int(self._get(context + '/monitoring_attrs/nr_regions/' + n)) for n in ('min', 'max'))
        if int(self._get(intervals + '/sample_us')) > int(self._get(intervals + '/aggr_us')) or \
                low < 3 or low > high:
            raise _error(errno.EINVAL)
        targets = int(self._get(context + '/targets/nr_targets'))
        if self._get(context + '/operations') == 'paddr':
            if targets != 1 or self._get(context + '/targets/0/regions/nr_regions') == '0':
                raise _error(errno.EINVAL)
        elif any(not self.pid_exists(int(self._get('%s/targets/%d/pid_target' % (context, t))))
                 for t in range(targets)):
            raise _error(errno.EINVAL)

    def _tune_intervals(self, kdamond):
        """Pretend the tuner doubled both intervals (it keeps their ratio)."""
        intervals = kdamond + '/contexts/0/monitoring_attrs/intervals/'
        for name in ('sample_us', 'aggr_us'):
            self._put(self.admin_path(intervals + name), str(2 * int(self._get(intervals + name))))

    def _fill_effective_quotas(self, kdamond):
        schemes = kdamond + '/contexts/0/schemes'
        for index in range(int(self._get(schemes + '/nr_schemes'))):
            quotas = '%s/%d/quotas' % (schemes, index)
            self._put(self.admin_path(quotas + '/effective_bytes'), RO(self._get(quotas + '/bytes')))


@contextlib.contextmanager
def holding_lock(host):
    """Another writer of the collection holds its lock; yields that writer's descriptor."""
    held = os.open(host.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield held
    finally:
        os.close(held)
