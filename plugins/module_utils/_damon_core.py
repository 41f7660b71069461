# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DAMON/DAMOS model shared by the kernel.damon modules, the score feeder and the boot
re-apply unit: units, kernel features, sysfs tree I/O, planning, applying, committing,
ownership and locking.

Pure standard library on purpose: the same file is installed on managed hosts and
imported there without Ansible.  See docs/design.md for the contract.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import re
import time
from functools import partial
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ADMIN_DIR = 'sys/kernel/mm/damon/admin'
ULONG_MAX = 2 ** 64 - 1
EXCLUSIVE_MODULES = ('damon_stat', 'damon_reclaim', 'damon_lru_sort')
COMMIT_KEYWORDS = ('commit', 'commit_schemes_quota_goals')


# ---------------------------------------------------------------- errors

class DamonError(Exception):
    """Base class; str() is the message meant for the user."""


class DamonValidationError(DamonError):
    def __init__(self, option, value, accepted):
        self.option, self.value, self.accepted = option, value, accepted
        if value is None:
            message = '%s: missing; accepted: %s' % (option, accepted)
        else:
            message = '%s: invalid value %r; accepted: %s' % (option, value, accepted)
        super().__init__(message)


class DamonKernelError(DamonError):
    def __init__(self, path, value, errno_):
        self.path, self.value, self.errno = path, value, errno_
        action = 'reading %s' % path if value is None else 'writing %r to %s' % (value, path)
        super().__init__('%s failed: %s (%s)' % (
            action, errno.errorcode.get(errno_, str(errno_)), os.strerror(errno_)))


class DamonConflictError(DamonError):
    pass


class DamonLockBusyError(DamonConflictError):
    """Another writer of this collection held the lock for all of lock_timeout."""


class DamonUnavailableError(DamonError):
    pass


class _LockWaitOver(Exception):
    pass


def _flock_blocking(fd, timeout):
    """flock(LOCK_EX) that gives up after timeout seconds (SIGALRM): True once locked.
    False also when the alarm came just after flock() returned; the caller's non-blocking
    try then finds the lock already held by this descriptor."""
    import signal

    def over(signum, frame):
        raise _LockWaitOver()

    previous = signal.signal(signal.SIGALRM, over)
    locked = False
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except (_LockWaitOver, OSError):
        pass        # timed out, or an error that the caller's non-blocking try reports
    finally:
        signal.signal(signal.SIGALRM, previous)
    return locked


def _append_note(err, note):
    """Extend an error's message in place, keeping its class for callers."""
    if note:
        err.args = ('%s; %s' % (err, note),)
    return err


# ---------------------------------------------------------------- units

_TIME_NS = {'ns': 1, 'us': 10 ** 3, '\u00b5s': 10 ** 3, 'ms': 10 ** 6, 's': 10 ** 9,
            'm': 60 * 10 ** 9, 'h': 3600 * 10 ** 9}
_SIZE_BYTES = {'b': 1, 'k': 2 ** 10, 'kib': 2 ** 10, 'm': 2 ** 20, 'mib': 2 ** 20,
               'g': 2 ** 30, 'gib': 2 ** 30, 't': 2 ** 40, 'tib': 2 ** 40}
_NUMBER_WITH_SUFFIX = re.compile(r'^\s*([0-9]+(?:\.[0-9]*)?)\s*(\S*)\s*$')

SIZE_ACCEPTED = "a size in bytes (int) or with K/M/G/T suffix, or 'max'"
RATIO_ACCEPTED = "basis points from 0 to 10000 (int), 'N%' up to 100% or 'Nbp'"


def _plain_int(value):
    """An int, or a string of digits; bool is deliberately not a number here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r'^\s*-?[0-9]+\s*$', value):
        return int(value)
    return None


def _suffixed(value, suffixes, lower=False):
    """(Decimal amount, suffix) for strings like '1.5s', or None."""
    if not isinstance(value, str):
        return None
    match = _NUMBER_WITH_SUFFIX.match(value)
    if not match:
        return None
    suffix = match.group(2).lower() if lower else match.group(2)
    if suffix not in suffixes:
        return None
    try:
        return Decimal(match.group(1)), suffix
    except InvalidOperation:
        return None


def _whole(amount):
    return int(amount) if amount == amount.to_integral_value() else None


def _round(amount):
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_int(option, value, minimum=0, maximum=ULONG_MAX, accepted=None):
    number = _plain_int(value)
    if number is None or number < minimum or number > maximum:
        raise DamonValidationError(option, value, accepted or 'an integer from %d to %d' % (minimum, maximum))
    return number


def parse_bool(option, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('y', 'yes', 'true', 'on', '1'):
        return True
    if text in ('n', 'no', 'false', 'off', '0'):
        return False
    raise DamonValidationError(option, value, 'a boolean')


def parse_choice(option, value, choices):
    if value not in choices:
        raise DamonValidationError(option, value, 'one of ' + ', '.join(choices))
    return value


def parse_time(option, value, unit='us'):
    """A duration as a whole number of `unit` (the unit of the sysfs file behind option)."""
    number = _plain_int(value)
    if number is not None and number >= 0:
        return number
    parsed = _suffixed(value, _TIME_NS)
    if parsed is not None:
        result = _whole(parsed[0] * _TIME_NS[parsed[1]] / _TIME_NS[unit])
        if result is not None:
            return result
    raise DamonValidationError(option, value, 'an integer number of %s, or a number with ns/us/ms/s/m/h '
                                              'that is a whole number of %s' % (unit, unit))


def parse_size(option, value):
    number = _plain_int(value)
    if number is not None and 0 <= number <= ULONG_MAX:
        return number
    if isinstance(value, str) and value.strip().lower() == 'max':
        return ULONG_MAX
    parsed = _suffixed(value, _SIZE_BYTES, lower=True)
    if parsed is not None:
        result = _whole(parsed[0] * _SIZE_BYTES[parsed[1]])
        if result is not None and result <= ULONG_MAX:
            return result
    raise DamonValidationError(option, value, SIZE_ACCEPTED)


def parse_ratio(option, value):
    """Basis points (1/10000) of a whole, so at most 10000 (100%)."""
    number = _plain_int(value)
    if number is None:
        parsed = _suffixed(value, ('%', 'bp'))
        if parsed is not None:
            number = _whole(parsed[0] * (100 if parsed[1] == '%' else 1))
    if number is not None and 0 <= number <= 10000:
        return number
    raise DamonValidationError(option, value, RATIO_ACCEPTED)


def parse_access_rate(option, value, max_samples):
    """Samples per aggregation interval; 'N%' is relative to aggr/sample (rounded)."""
    number = _plain_int(value)
    if number is not None and number >= 0:
        return number
    parsed = _suffixed(value, ('%',))
    if parsed is not None and parsed[0] <= 100:
        return _round(parsed[0] * max_samples / 100)
    raise DamonValidationError(option, value, "samples per aggregation interval (int, at most %d here) "
                                              "or 'N%%' of that maximum" % max_samples)


def parse_age(option, value, aggr_us):
    """Aggregation intervals; a time is divided by the aggregation interval (rounded)."""
    number = _plain_int(value)
    if number is not None and number >= 0:
        return number
    if isinstance(value, str) and value.strip().lower() == 'max':
        return ULONG_MAX
    parsed = _suffixed(value, _TIME_NS)
    if parsed is not None and aggr_us > 0:
        return _round(parsed[0] * _TIME_NS[parsed[1]] / _TIME_NS['us'] / aggr_us)
    raise DamonValidationError(option, value, "aggregation intervals (int), a time such as '2m', or 'max'")


def format_bytes(value):
    if value >= ULONG_MAX:
        return 'max'
    amount = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'):
        if amount < 1024:
            return '%d B' % value if unit == 'B' else '%.1f %s' % (amount, unit)
        amount /= 1024
    return '%.1f EiB' % amount


def format_us(value):
    """Microseconds in the largest unit that keeps the value whole: '500 us', '1 s'."""
    for factor, unit in ((3600 * 10 ** 6, 'h'), (60 * 10 ** 6, 'm'), (10 ** 6, 's'), (10 ** 3, 'ms')):
        if value and value % factor == 0:
            return '%d %s' % (value // factor, unit)
    return '%d us' % value


# ---------------------------------------------------------------- kernel features

def kernel_version(release):
    match = re.match(r'(\d+)\.(\d+)(?:\.(\d+))?', release or '')
    return tuple(int(part or 0) for part in match.groups()) if match else (0, 0, 0)


# Keyword values cannot be probed without writing, so they go by release (damon-sysfs.md
# sec. 1).  'collapse' and 'node_eligible_mem_bp' were seen first on 7.3.
OPERATIONS = {'vaddr': (5, 18), 'paddr': (5, 18), 'fvaddr': (5, 19)}
ACTIONS = {'willneed': (5, 18), 'cold': (5, 18), 'pageout': (5, 18), 'hugepage': (5, 18),
           'nohugepage': (5, 18), 'stat': (5, 18), 'lru_prio': (6, 0), 'lru_deprio': (6, 0),
           'migrate_hot': (6, 11), 'migrate_cold': (6, 11), 'collapse': (7, 3)}
PADDR_ACTIONS = ('pageout', 'lru_prio', 'lru_deprio', 'migrate_hot', 'migrate_cold', 'stat')
VADDR_ACTIONS = ('willneed', 'cold', 'pageout', 'hugepage', 'nohugepage', 'migrate_hot',
                 'migrate_cold', 'stat', 'collapse')
GOAL_METRICS = {'user_input': (6, 8), 'some_mem_psi_us': (6, 9), 'node_mem_used_bp': (6, 16),
                'node_mem_free_bp': (6, 16), 'node_memcg_used_bp': (6, 19),
                'node_memcg_free_bp': (6, 19), 'active_mem_bp': (7, 0), 'inactive_mem_bp': (7, 0),
                'node_eligible_mem_bp': (7, 3)}
FILTER_TYPES = {'anon': (6, 3), 'memcg': (6, 3), 'addr': (6, 6), 'target': (6, 6), 'young': (6, 10),
                'hugepage_size': (6, 15), 'unmapped': (6, 15), 'active': (6, 15)}
CORE_FILTER_TYPES = ('addr', 'target')
WATERMARK_METRICS = ('none', 'free_mem_rate')
GOAL_TUNERS = ('consist', 'temporal')

_KDAMOND = 'kdamonds/[0-9]*'
_CONTEXT = _KDAMOND + '/contexts/[0-9]*'
_SCHEME = _CONTEXT + '/schemes/[0-9]*'
# feature: (release that added it, directory that would hold it, entry name).  Detected by
# looking at an existing sibling directory first, so distribution backports count.
FILE_FEATURES = {
    'filters': ((6, 3), _SCHEME, 'filters'),
    'apply_interval': ((6, 7), _SCHEME, 'apply_interval_us'),
    'quota_goals': ((6, 8), _SCHEME + '/quotas', 'goals'),
    'effective_quotas': ((6, 9), _SCHEME + '/quotas', 'effective_bytes'),
    'goal_metric': ((6, 9), _SCHEME + '/quotas/goals/[0-9]*', 'target_metric'),
    'target_nid': ((6, 11), _SCHEME, 'target_nid'),
    'filter_allow': ((6, 14), _SCHEME + '/*filters/[0-9]*', 'allow'),
    'core_ops_filters': ((6, 15), _SCHEME, 'core_filters'),
    'intervals_goal': ((6, 15), _CONTEXT + '/monitoring_attrs/intervals', 'intervals_goal'),
    'goal_nid': ((6, 16), _SCHEME + '/quotas/goals/[0-9]*', 'nid'),
    'refresh_ms': ((6, 17), _KDAMOND, 'refresh_ms'),
    'dests': ((6, 17), _SCHEME, 'dests'),
    'addr_unit': ((6, 18), _CONTEXT, 'addr_unit'),
    'goal_path': ((6, 19), _SCHEME + '/quotas/goals/[0-9]*', 'path'),
    'obsolete_target': ((6, 19), _CONTEXT + '/targets/[0-9]*', 'obsolete_target'),
    'max_nr_snapshots': ((7, 0), _SCHEME + '/stats', 'max_nr_snapshots'),
    'goal_tuner': ((7, 1), _SCHEME + '/quotas', 'goal_tuner'),
}


def _since(version):
    return 'Linux %d.%d' % version[:2]


# ---------------------------------------------------------------- host

class Host:
    """One machine's DAMON sysfs tree and the files around it, all below `root`.

    _raw_read/_raw_write are the only calls that touch value files, so a fake kernel
    can subclass this and emulate the kernel's side effects there.

    run_command(argv) -> (rc, stdout, stderr) runs systemctl for systemd_unit; it has
    AnsibleModule.run_command's signature, so a module passes that, and host-side tools
    pass a subprocess-based one (module_utils may not call subprocess directly).
    """

    busy_timeout = 5.0
    lock_timeout = 60.0
    # Wait for the lock in flock() itself (woken as soon as it is free, so ahead of the
    # writers that poll) instead of polling; needs SIGALRM, so the main thread of a program
    # that owns its signals: the feeder, whose feed is tiny next to a module run.
    lock_blocking = False

    def __init__(self, root='/', state_dir=None, lock_path=None, release=None, sleep=time.sleep,
                 run_command=None):
        self.root = root
        self.admin = self.path(ADMIN_DIR)
        self.state_dir = state_dir or self.path('var/lib/kernel-damon')
        self.lock_path = lock_path or self.path('run/lock/kernel-damon.lock')
        self.release = release or os.uname().release
        self.version = kernel_version(self.release)
        self.sleep = sleep
        self.run_command = run_command
        self.writes = []

    # -- paths
    def path(self, rel):
        return os.path.join(self.root, rel.lstrip('/'))

    def shown(self, real):
        """The path as seen on the host, for messages (root may be a test directory)."""
        return '/' + os.path.relpath(real, self.root)

    def admin_path(self, rel):
        return os.path.join(self.admin, rel)

    # -- low level, overridable
    def _raw_read(self, path):
        with open(path, 'r', encoding='utf-8', errors='replace') as handle:
            return handle.read()

    def _raw_write(self, path, data):
        # sysfs takes one write() per value.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data.encode('utf-8'))
        finally:
            os.close(fd)

    def _busy_retry(self, operation, path, value):
        """EBUSY means someone holds DAMON's global sysfs lock (trylock): wait, bounded."""
        delay, waited = 0.05, 0.0
        while True:
            try:
                return operation()
            except OSError as err:
                if err.errno == errno.EBUSY and waited + delay <= self.busy_timeout:
                    self.sleep(delay)
                    waited += delay
                    delay = min(delay * 2, 1.0)
                    continue
                raise DamonKernelError(self.shown(path), value, err.errno) from None

    def read_value(self, path):
        raw = self._busy_retry(lambda: self._raw_read(path), path, None)
        return raw[:-1] if raw.endswith('\n') else raw

    def write_value(self, path, value, label=None):
        text = _sysfs_value(value)
        self._busy_retry(lambda: self._raw_write(path, text), path, text)
        self.writes.append('%s=%s' % (label or self.shown(path), text))

    def read(self, rel):
        return self.read_value(self.admin_path(rel))

    def write(self, rel, value):
        self.write_value(self.admin_path(rel), value, rel)

    def listdir(self, rel):
        return sorted(os.listdir(self.admin_path(rel)))

    def is_dir(self, rel):
        return os.path.isdir(self.admin_path(rel))

    def writable(self, rel):
        # Root bypasses access(); the mode bits are what tell rw from ro files.
        return bool(os.stat(self.admin_path(rel)).st_mode & 0o200)

    def available(self):
        return os.path.isdir(self.admin_path('kdamonds'))

    # -- files around DAMON
    def read_host_file(self, rel):
        """Contents of a host file below root, or None when it is absent or unsupported."""
        try:
            return self._raw_read(self.path(rel))
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.EOPNOTSUPP):
                return None
            raise DamonKernelError(self.shown(self.path(rel)), None, err.errno) from None

    def memory_nodes(self):
        """Nodes with memory; a kernel without NUMA has node 0 only."""
        text = self.read_host_file('sys/devices/system/node/has_memory')
        return {0} if text is None else parse_node_list(text)

    def system_ram(self):
        """Largest top-level 'System RAM' range of /proc/iomem as (start, end exclusive)."""
        ranges = []
        for line in (self.read_host_file('proc/iomem') or '').splitlines():
            match = re.match(r'^([0-9a-fA-F]+)-([0-9a-fA-F]+) : System RAM$', line)
            if match:
                ranges.append((int(match.group(1), 16), int(match.group(2), 16) + 1))
        ranges = [r for r in ranges if r[1] > r[0] + 1]
        if not ranges:
            raise DamonValidationError('regions', None, "start/end pairs; /proc/iomem shows no 'System RAM' "
                                                        "addresses here (reading it needs root)")
        return max(ranges, key=lambda r: r[1] - r[0])

    def memory_psi(self):
        text = self.read_host_file('proc/pressure/memory')
        return None if text is None else parse_psi(text)

    def exclusive_module_path(self, name):
        return self.path('sys/module/%s/parameters/enabled' % name)

    def exclusive_modules(self):
        """{module: enabled} for the exclusive DAMON modules this kernel has."""
        found = {}
        for name in EXCLUSIVE_MODULES:
            text = self.read_host_file('sys/module/%s/parameters/enabled' % name)
            if text is not None:
                found[name] = text.strip() in ('Y', 'y', '1')
        return found

    def stop_exclusive_module(self, name):
        self.write_value(self.exclusive_module_path(name), 'N')

    def pid_exists(self, pid):
        return pid > 0 and os.path.isdir(self.path('proc/%d' % pid))

    def cgroup_exists(self, cgroup):
        parts = [part for part in cgroup.split('/') if part]
        return '..' not in parts and os.path.isdir(self.path('/'.join(['sys/fs/cgroup'] + parts)))

    def cgroup_has_memory(self, cgroup):
        """False when cgroup v2 says the memory controller is not enabled for the cgroup:
        DAMON looks paths up among memory cgroups only.  True where it cannot tell (v1)."""
        text = self.read_host_file('sys/fs/cgroup/%s/cgroup.controllers' % cgroup.strip('/'))
        return text is None or 'memory' in text.split()

    def unit_main_pid(self, unit):
        if self.run_command is None:
            raise DamonError('systemd_unit needs a command runner: Host(run_command=...)')
        try:
            code, out, err = self.run_command(['systemctl', 'show', '-p', 'MainPID', '--value', unit])
        except OSError as exc:
            raise DamonValidationError('systemd_unit', unit, 'a systemd unit (systemctl: %s)' % exc) from None
        pid = _plain_int(out.strip()) if code == 0 else None
        if not pid:
            raise DamonValidationError('systemd_unit', unit, 'a running systemd unit with a main process%s'
                                       % ('' if code == 0 else ' (systemctl: %s)' % err.strip()))
        return pid

    # -- kernel features
    def feature(self, name):
        since, parent_glob, entry = FILE_FEATURES[name]
        siblings = sorted(glob.glob(os.path.join(self.admin, parent_glob)))
        if siblings:
            return os.path.exists(os.path.join(siblings[0], entry))
        return self.version >= since

    def require(self, name, option, value):
        if not self.feature(name):
            raise DamonValidationError(option, value, 'nothing on this host (%s needs %s or later; this host '
                                       'runs %s)' % (option, _since(FILE_FEATURES[name][0]), self.release))

    def supported(self, table):
        return [name for name, since in table.items() if self.version >= since]

    def operations(self):
        found = sorted(glob.glob(os.path.join(self.admin, _CONTEXT, 'avail_operations')))
        if found:
            return self.read_value(found[0]).split()
        return self.supported(OPERATIONS)

    def features(self):
        facts = {name: self.feature(name) for name in FILE_FEATURES}
        facts.update(operations=self.operations(), actions=self.supported(ACTIONS),
                     goal_metrics=self.supported(GOAL_METRICS), filter_types=self.supported(FILTER_TYPES))
        return facts

    # -- one lock for every kernel.damon writer
    def _open_lock(self):
        """A descriptor of the lock file, closed after unlocking.  The score feeder, which may
        not open root's files, overrides this with one that systemd opened for it."""
        os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
        return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)

    def set_lock_timeout(self, seconds):
        """The lock_timeout option: how long lock() waits for another writer."""
        if seconds is None:
            return
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise DamonValidationError('lock_timeout', seconds, 'a whole number of seconds, 0 or more')
        self.lock_timeout = float(seconds)

    def _flock_now(self, fd):
        """One non-blocking try: True once locked, False while another writer holds the lock."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise DamonError('locking %s failed: %s (%s)' % (
                self.shown(self.lock_path), errno.errorcode.get(err.errno, str(err.errno)),
                os.strerror(err.errno))) from None

    @contextlib.contextmanager
    def lock(self, create=True):
        """flock around read-plan-apply-commit.  create=False (check mode) locks only
        when some writer already created the file, so that a dry run writes nothing."""
        if not create and not os.path.exists(self.lock_path):
            yield
            return
        fd = self._open_lock()
        locked = False
        try:
            waited = self.lock_timeout if self.lock_blocking else 0.0
            locked = self.lock_blocking and _flock_blocking(fd, self.lock_timeout)
            while not (locked or self._flock_now(fd)):
                if waited >= self.lock_timeout:
                    raise DamonLockBusyError('another kernel.damon writer holds %s (waited %d s)'
                                             % (self.shown(self.lock_path), waited))
                self.sleep(0.1)
                waited += 0.1
            locked = True
            yield
        finally:
            # Unlock explicitly: closing fd alone keeps the lock while another descriptor of
            # the same open file lives (the feeder's fd is a dup of one systemd passed it).
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- ownership registry
    @property
    def managed_path(self):
        return os.path.join(self.state_dir, 'managed.json')

    def managed(self):
        try:
            with open(self.managed_path, 'r', encoding='utf-8') as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as err:
            raise DamonError('cannot read %s: %s' % (self.shown(self.managed_path), err)) from None
        return {int(index) for index in data.get('kdamonds', [])}

    def record_managed(self, index):
        indexes = self.managed()
        if index in indexes:
            return
        os.makedirs(self.state_dir, exist_ok=True)
        temporary = self.managed_path + '.tmp'
        with open(temporary, 'w', encoding='utf-8') as handle:
            json.dump({'kdamonds': sorted(indexes | {index})}, handle)
            handle.write('\n')
        os.replace(temporary, self.managed_path)


def parse_node_list(text):
    """'0-1,3' (the kernel's node list format) -> {0, 1, 3}."""
    nodes = set()
    for part in text.strip().split(','):
        if '-' in part:
            first, last = part.split('-', 1)
            nodes.update(range(int(first), int(last) + 1))
        elif part:
            nodes.add(int(part))
    return nodes


def parse_psi(text):
    psi = {}
    for line in text.splitlines():
        fields = line.split()
        if fields:
            values = dict(field.split('=', 1) for field in fields[1:] if '=' in field)
            psi[fields[0]] = {key: (int(value) if key == 'total' else float(value))
                              for key, value in values.items()}
    return psi


# ---------------------------------------------------------------- the sysfs tree as a flat map

def _sysfs_value(value):
    """Values are written as decimal strings (the kernel parses base 0: never zero-pad)."""
    if isinstance(value, bool):
        return 'Y' if value else 'N'
    return str(value)


def _nr_file(dirpath):
    base = dirpath.rsplit('/', 1)[-1]
    return '%s/nr_%s' % (dirpath, 'filters' if base.endswith('filters') else base)


def _is_count_file(rel):
    """nr_schemes in schemes/, nr_filters in *filters/, ...; not nr_accesses_permil or stats/nr_tried."""
    return '/' in rel and _nr_file(rel.rsplit('/', 1)[0]) == rel


def tree_order_key(rel):
    """A dir's nr_* file first, then its other files, then named subdirs, then numeric ones."""
    parts = rel.split('/')
    key = [(3, int(part), '') if part.isdigit() else (2, 0, part) for part in parts[:-1]]
    key.append((0 if _is_count_file(rel) else 1, 0, parts[-1]))
    return key


def read_tree(host, rel='kdamonds', include_ro=False):
    """Flat map relpath -> value of the value files below rel.

    state and pid are read separately; tried_regions is a result, not configuration.
    """
    flat = {}
    for name in host.listdir(rel):
        child = rel + '/' + name
        if host.is_dir(child):
            if name != 'tried_regions':
                flat.update(read_tree(host, child, include_ro))
        elif name not in ('state', 'pid') and (include_ro or host.writable(child)):
            flat[child] = host.read(child)
    return flat


def subtree(flat, prefix):
    start = prefix + '/'
    return {rel[len(start):]: value for rel, value in flat.items() if rel.startswith(start)}


_STRING_FILES = ('operations', 'action', 'target_metric', 'type', 'metric', 'goal_tuner',
                 'memcg_path', 'path')


def _typed(name, value):
    if name in _STRING_FILES:
        return value
    if name == 'avail_operations':
        return value.split()
    if value in ('Y', 'N'):
        return value == 'Y'
    return int(value) if re.match(r'^-?[0-9]+$', value) else value


def nest(flat):
    """Flat map -> nested dicts; a dir of numbered children (plus its nr_* file) -> list."""
    root = {}
    for rel in sorted(flat, key=tree_order_key):
        parts = rel.split('/')
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _typed(parts[-1], flat[rel])
    return _listify(root)


def _listify(node, path='.'):
    if not isinstance(node, dict):
        return node
    items = {name: _listify(child, path + '/' + name) for name, child in node.items()}
    named = [name for name in items if not name.isdigit()]
    if items and all(_is_count_file(path + '/' + name) for name in named):
        return [items[name] for name in sorted(items, key=lambda n: int(n) if n.isdigit() else -1)
                if name.isdigit()]
    return items


# ---------------------------------------------------------------- planning

def plan_writes(current, desired):
    """The writes that turn the current flat map into the desired one, in tree order.

    An nr_* file is written only when its count changes; the kernel then recreates every
    child with defaults, so every desired file below it is rewritten.
    """
    writes, recreated = [], []
    for rel in sorted(desired, key=tree_order_key):
        value = desired[rel]
        if any(rel.startswith(prefix) for prefix in recreated):
            writes.append((rel, value))
        elif current.get(rel) != value:
            writes.append((rel, value))
            if _is_count_file(rel):
                recreated.append(rel.rsplit('/', 1)[0] + '/')
    return writes


def commit_keyword(writes):
    """Goal-only changes are merged with commit_schemes_quota_goals, which keeps the
    aggregation schedule; anything else needs a full commit."""
    if all('/quotas/goals/' in write[0] for write in writes):
        return 'commit_schemes_quota_goals'
    return 'commit'


class _Stage:
    """The desired flat map, built as the current one plus modifications."""

    def __init__(self, host, current):
        self.host = host
        self.current = current
        self.desired = dict(current)
        self.warnings = []

    def get(self, rel, default=None):
        return self.desired.get(rel, default)

    def set(self, rel, value):
        self.desired[rel] = _sysfs_value(value)

    def count(self, dirpath):
        return int(self.desired.get(_nr_file(dirpath), '0'))

    def is_new(self, dirpath):
        """True for a directory that does not exist yet (its files get creation defaults)."""
        return not any(rel.startswith(dirpath + '/') for rel in self.current)

    def set_count(self, dirpath, count):
        self.desired[_nr_file(dirpath)] = str(count)
        for rel in list(self.desired):
            index = _child_index(rel, dirpath)
            if index is not None and index >= count:
                del self.desired[rel]

    def remove_child(self, dirpath, removed):
        """Drop child `removed`; later children move down one index, as after nr_* shrinks."""
        count = self.count(dirpath)
        moved = {}
        for rel, value in self.desired.items():
            index = _child_index(rel, dirpath)
            if index is None or index < removed:
                moved[rel] = value
            elif index > removed:
                moved['%s/%d%s' % (dirpath, index - 1, rel[len('%s/%d' % (dirpath, index)):])] = value
        self.desired = moved
        self.set_count(dirpath, count - 1)


def _child_index(rel, dirpath):
    if not rel.startswith(dirpath + '/'):
        return None
    first = rel[len(dirpath) + 1:].split('/', 1)
    return int(first[0]) if len(first) == 2 and first[0].isdigit() else None


# ---------------------------------------------------------------- option helpers

def _suboptions(option, value, allowed):
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - set(allowed):
        raise DamonValidationError(option, value, 'a dict with keys ' + ', '.join(allowed))
    return value


def _list_option(option, value):
    if not isinstance(value, list):
        raise DamonValidationError(option, value, 'a list')
    return value


def _require_keyword(host, option, value, table, extra=None):
    """A keyword the running kernel accepts, else say which release added it."""
    supported = [name for name in host.supported(table) if extra is None or name in extra]
    if value in supported:
        return value
    if value in table and host.version < table[value]:
        accepted = '%s (%s needs %s or later; this host runs %s)' % (
            ', '.join(supported), value, _since(table[value]), host.release)
    else:
        accepted = ', '.join(supported)
    raise DamonValidationError(option, value, accepted)


def _node(host, option, value):
    nid = parse_int(option, value, minimum=0, maximum=2 ** 31 - 1)
    nodes = host.memory_nodes()
    if nid not in nodes:
        # An invalid or memoryless nid crashed the kdamond before a 2026 stable fix.
        raise DamonValidationError(option, value, 'a node with memory (has_memory: %s)'
                                   % ','.join(str(n) for n in sorted(nodes)))
    return nid


def _memcg_problem(host, cgroup):
    """Why DAMON would not find cgroup among the memory cgroups at on/commit time (the
    kernel then answers ENOMEM, or stops the kdamond before 6.14), or None."""
    if not host.cgroup_exists(cgroup):
        return 'an existing cgroup (no directory %s)' % host.shown(host.path('sys/fs/cgroup' + cgroup))
    if not host.cgroup_has_memory(cgroup):
        parent = host.path('sys/fs/cgroup/%s/cgroup.subtree_control' % cgroup.strip('/').rpartition('/')[0])
        return ('a cgroup with the memory controller (%s is not enabled for it: +memory in %s)'
                % (cgroup, host.shown(os.path.normpath(parent))))
    return None


def _cgroup(host, option, value):
    if not isinstance(value, str) or not value.strip('/'):
        raise DamonValidationError(option, value, 'a cgroup path such as /workload.slice')
    parts = [part for part in value.split('/') if part]
    if '.' in parts or '..' in parts:
        raise DamonValidationError(option, value, 'a cgroup path without . or .. components')
    # The kernel compares with cgroup_path(): one leading '/', single slashes.
    cgroup = '/' + '/'.join(parts)
    problem = _memcg_problem(host, cgroup)
    if problem:
        raise DamonValidationError(option, value, problem)
    return cgroup


def _set_from(st, option, values, specs, created):
    """Stage files from a dict option: specs is [(key, file, parse, creation default)]."""
    for key, rel, parse, default in specs:
        if values.get(key) is not None:
            st.set(rel, parse('%s.%s' % (option, key), values[key]))
        elif created and default is not None:
            st.set(rel, default)


def _int_of(st, rel, default=0):
    return int(st.get(rel, str(default)))


# ---------------------------------------------------------------- context and targets

def _stage_context(st, context, params):
    """Operations, monitoring attributes and the target; returns the operations set."""
    host = st.host
    created = st.is_new(context)
    operations_now = st.get(context + '/operations')
    operations = params.get('operations')
    if operations is not None:
        parse_choice('operations', operations, host.operations())
    else:
        operations = 'paddr' if created else operations_now
    if created or operations != operations_now:
        st.set(context + '/operations', operations)
    _stage_monitoring_attrs(st, context + '/monitoring_attrs', params, created)
    _stage_target(st, context + '/targets', params, operations, created or operations != operations_now)
    return operations


def _stage_monitoring_attrs(st, attrs, params, created):
    intervals = attrs + '/intervals'
    goal = _suboptions('intervals_goal', params.get('intervals_goal'),
                       ('access_bp', 'aggrs', 'min_sample', 'max_sample'))
    if goal:
        st.host.require('intervals_goal', 'intervals_goal', params.get('intervals_goal'))
        _set_from(st, 'intervals_goal', goal, [
            ('access_bp', intervals + '/intervals_goal/access_bp', parse_ratio, None),
            ('aggrs', intervals + '/intervals_goal/aggrs', parse_int, None),
            ('min_sample', intervals + '/intervals_goal/min_sample_us', parse_time, None),
            ('max_sample', intervals + '/intervals_goal/max_sample_us', parse_time, None)], False)
    given = _suboptions('intervals', params.get('intervals'), ('sample', 'aggr', 'update'))
    tuned = _int_of(st, intervals + '/intervals_goal/aggrs') != 0
    if tuned and not created and (given.get('sample') is not None or given.get('aggr') is not None):
        # The kernel rewrites sample_us/aggr_us while it tunes them; comparing them would
        # report a change on every run.
        st.warnings.append('intervals.sample/aggr are auto-tuned (intervals_goal.aggrs is not 0); '
                           'the given values apply only when the context is created')
        given = {'update': given.get('update')}
    _set_from(st, 'intervals', given, [
        ('sample', intervals + '/sample_us', parse_time, 5000),
        ('aggr', intervals + '/aggr_us', parse_time, 100000),
        ('update', intervals + '/update_us', parse_time, 1000000)], created)
    _set_from(st, 'nr_regions', _suboptions('nr_regions', params.get('nr_regions'), ('min', 'max')), [
        ('min', attrs + '/nr_regions/min', parse_int, 10),
        ('max', attrs + '/nr_regions/max', parse_int, 1000)], created)
    _check_monitoring_attrs(st, attrs, params)


def _check_monitoring_attrs(st, attrs, params):
    """What on/commit would reject with a bare EINVAL, said with option names."""
    intervals = attrs + '/intervals'
    sample, aggr = _int_of(st, intervals + '/sample_us'), _int_of(st, intervals + '/aggr_us')
    if sample > aggr:
        raise DamonValidationError('intervals.sample', (params.get('intervals') or {}).get('sample', sample),
                                   'at most intervals.aggr (%s)' % format_us(aggr))
    low, high = _int_of(st, attrs + '/nr_regions/min', 10), _int_of(st, attrs + '/nr_regions/max', 1000)
    if low < 3 or low > high:
        raise DamonValidationError('nr_regions', {'min': low, 'max': high}, 'min of at least 3 and at most max')
    if _int_of(st, intervals + '/intervals_goal/aggrs'):
        lowest = _int_of(st, intervals + '/intervals_goal/min_sample_us')
        highest = _int_of(st, intervals + '/intervals_goal/max_sample_us')
        if not lowest <= sample <= highest:
            raise DamonValidationError('intervals_goal', params.get('intervals_goal'),
                                       'min_sample <= intervals.sample (%s) <= max_sample' % format_us(sample))


def _resolve_pid(host, params):
    given = [name for name in ('pid', 'pidfile', 'systemd_unit') if params.get(name) is not None]
    if len(given) > 1:
        raise DamonValidationError(given[1], params[given[1]], 'only one of pid, pidfile, systemd_unit')
    if not given:
        return None
    name = given[0]
    if name == 'pid':
        pid = parse_int('pid', params['pid'], minimum=1, maximum=2 ** 31 - 1)
    elif name == 'pidfile':
        text = host.read_host_file(params['pidfile'])
        pid = _plain_int((text or '').strip())
        if not pid:
            raise DamonValidationError('pidfile', params['pidfile'], 'a readable file holding a process id')
    else:
        pid = host.unit_main_pid(params['systemd_unit'])
    if not host.pid_exists(pid):
        raise DamonValidationError(name, params[name], 'a running process (no process %d)' % pid)
    return pid


def parse_regions(option, value):
    regions = []
    for index, region in enumerate(_list_option(option, value)):
        region = _suboptions('%s[%d]' % (option, index), region, ('start', 'end'))
        start = parse_size('%s[%d].start' % (option, index), region.get('start'))
        end = parse_size('%s[%d].end' % (option, index), region.get('end'))
        regions.append((start, end))
    for index, (start, end) in enumerate(regions):
        if start >= end or (index and regions[index - 1][1] > start):
            raise DamonValidationError(option, value, 'sorted, non-overlapping {start, end} ranges with '
                                                      'start < end')
    return regions


def _stage_target(st, targets, params, operations, switched):
    """One monitoring target: a pid for vaddr/fvaddr, physical ranges for paddr."""
    pid = _resolve_pid(st.host, params)
    regions = parse_regions('regions', params['regions']) if params.get('regions') is not None else None
    target = targets + '/0'
    if operations == 'paddr' and pid is not None:
        raise DamonValidationError('pid', pid, 'nothing with operations paddr (a pid is for vaddr/fvaddr)')
    if operations != 'paddr' and pid is None and (switched or st.count(targets) == 0):
        raise DamonValidationError('pid', None, 'a pid, pidfile or systemd_unit for operations %s' % operations)
    paddr_needs_ram = operations == 'paddr' and regions is None and (
        switched or st.count(targets) == 0 or st.count(target + '/regions') == 0)
    if not (switched or pid is not None or regions is not None or paddr_needs_ram):
        return
    st.set_count(targets, 1)
    if pid is not None:
        st.set(target + '/pid_target', pid)
    if paddr_needs_ram:
        # sysfs does not find System RAM by itself the way DAMON_RECLAIM does.
        regions = [st.host.system_ram()]
    elif regions is None and switched and st.count(target + '/regions'):
        regions = []
    if regions is not None:
        st.set_count(target + '/regions', len(regions))
        for index, (start, end) in enumerate(regions):
            st.set('%s/regions/%d/start' % (target, index), start)
            st.set('%s/regions/%d/end' % (target, index), end)


# ---------------------------------------------------------------- schemes

def _stage_scheme(st, scheme, params, operations, created):
    host = st.host
    action = params.get('action')
    if action is not None:
        _require_keyword(host, 'action', action, ACTIONS)
    elif created:
        raise DamonValidationError('action', None, 'an action (required when the scheme is created): '
                                   + ', '.join(host.supported(ACTIONS)))
    else:
        action = st.get(scheme + '/action')
    for_operations = PADDR_ACTIONS if operations == 'paddr' else VADDR_ACTIONS
    if action not in for_operations:
        raise DamonValidationError('action', action, 'with operations %s: %s' % (
            operations, ', '.join(a for a in host.supported(ACTIONS) if a in for_operations)))
    st.set(scheme + '/action', action)
    if params.get('apply_interval') is not None:
        host.require('apply_interval', 'apply_interval', params['apply_interval'])
        st.set(scheme + '/apply_interval_us', parse_time('apply_interval', params['apply_interval'], 'us'))
    if params.get('target_nid') is not None:
        host.require('target_nid', 'target_nid', params['target_nid'])
        if not action.startswith('migrate_'):
            raise DamonValidationError('target_nid', params['target_nid'], 'nothing with action %s (it is '
                                       'the destination of migrate_hot/migrate_cold)' % action)
        st.set(scheme + '/target_nid', _node(host, 'target_nid', params['target_nid']))
    _stage_access_pattern(st, scheme, params, created)
    _stage_quotas(st, scheme + '/quotas', params, created)
    _stage_watermarks(st, scheme + '/watermarks', params, created)
    if params.get('filters') is not None:
        _stage_filters(st, scheme, params['filters'], operations)


def _stage_access_pattern(st, scheme, params, created):
    pattern = _suboptions('access_pattern', params.get('access_pattern'), ('size', 'access_rate', 'age'))
    intervals = scheme.split('/schemes/')[0] + '/monitoring_attrs/intervals'
    aggr_us = _int_of(st, intervals + '/aggr_us', 100000)
    max_samples = aggr_us // max(_int_of(st, intervals + '/sample_us', 5000), 1)
    ranges = (('size', 'sz', parse_size, ULONG_MAX),
              ('access_rate', 'nr_accesses', partial(parse_access_rate, max_samples=max_samples), max_samples),
              ('age', 'age', partial(parse_age, aggr_us=aggr_us), ULONG_MAX))
    for key, name, parse, maximum in ranges:
        option = 'access_pattern.' + key
        base = '%s/access_pattern/%s' % (scheme, name)
        _set_from(st, option, _suboptions(option, pattern.get(key), ('min', 'max')), [
            ('min', base + '/min', parse, 0), ('max', base + '/max', parse, maximum)], created)
        if _int_of(st, base + '/min') > _int_of(st, base + '/max'):
            raise DamonValidationError(option, pattern.get(key), 'min at most max')


def _stage_quotas(st, quotas, params, created):
    given = _suboptions('quotas', params.get('quotas'),
                        ('time', 'size', 'reset_interval', 'weights', 'goal_tuner'))
    _set_from(st, 'quotas', given, [
        ('time', quotas + '/ms', partial(parse_time, unit='ms'), 0),
        ('size', quotas + '/bytes', parse_size, 0),
        ('reset_interval', quotas + '/reset_interval_ms', partial(parse_time, unit='ms'), 1000)], created)
    weights = _suboptions('quotas.weights', given.get('weights'), ('size', 'access_rate', 'age'))
    _set_from(st, 'quotas.weights', weights, [
        ('size', quotas + '/weights/sz_permil', parse_int, 0),
        ('access_rate', quotas + '/weights/nr_accesses_permil', parse_int, 10),
        ('age', quotas + '/weights/age_permil', parse_int, 1)], created)
    if given.get('goal_tuner') is not None:
        st.host.require('goal_tuner', 'quotas.goal_tuner', given['goal_tuner'])
        st.set(quotas + '/goal_tuner', parse_choice('quotas.goal_tuner', given['goal_tuner'], GOAL_TUNERS))
    if params.get('goals') is not None:
        goals = _list_option('goals', params['goals'])
        if goals:
            st.host.require('quota_goals', 'goals', goals)
        if st.host.feature('quota_goals'):
            st.set_count(quotas + '/goals', len(goals))
        for index, goal in enumerate(goals):
            _stage_goal(st, '%s/goals/%d' % (quotas, index), goal, 'goals[%d].' % index)


GOAL_OPTIONS = ('metric', 'target', 'current', 'nid', 'path')


def _stage_goal(st, goal, spec, prefix):
    """One quota goal; prefix is '' for damos_quota_goal and 'goals[N].' for damos_scheme."""
    host = st.host
    spec = _suboptions(prefix.rstrip('.') or 'goal', spec, GOAL_OPTIONS)
    created = st.is_new(goal)
    metric_now = None if created else st.get(goal + '/target_metric', 'user_input')
    metric = spec.get('metric')
    if metric is not None:
        _require_keyword(host, prefix + 'metric', metric, GOAL_METRICS)
    elif created:
        raise DamonValidationError(prefix + 'metric', None, 'a metric (required when the goal is created): '
                                   + ', '.join(host.supported(GOAL_METRICS)))
    else:
        metric = metric_now
    if host.feature('goal_metric'):
        st.set(goal + '/target_metric', metric)
    changed_metric = metric != metric_now
    _stage_goal_target(st, goal, spec, prefix, metric, changed_metric)
    if spec.get('current') is not None:
        if metric != 'user_input':
            raise DamonValidationError(prefix + 'current', spec['current'], 'nothing with metric %s (the kernel '
                                       'measures it; current is for user_input)' % metric)
        st.set(goal + '/current_value', parse_int(prefix + 'current', spec['current']))
    _stage_goal_scope(st, goal, spec, prefix, metric, changed_metric)
    if metric == 'some_mem_psi_us' and host.memory_psi() is None:
        st.warnings.append('PSI is off on this host (no /proc/pressure/memory): some_mem_psi_us reads 0, '
                           'so the quota only grows up to its caps')


def _stage_goal_target(st, goal, spec, prefix, metric, changed_metric):
    target = spec.get('target')
    if target is None:
        if changed_metric:
            raise DamonValidationError(prefix + 'target', None, 'a target (required when the goal is created '
                                       'or its metric changes)')
        return
    if metric.endswith('_us'):
        value = parse_time(prefix + 'target', target, 'us')
    elif metric.endswith('_bp'):
        value = parse_ratio(prefix + 'target', target)
    else:
        value = parse_int(prefix + 'target', target)
    if value <= 0:
        raise DamonValidationError(prefix + 'target', target, 'a value above 0 (the kernel ignores goals '
                                   'whose target is 0)')
    st.set(goal + '/target_value', value)


def _stage_goal_scope(st, goal, spec, prefix, metric, changed_metric):
    """nid for node_* metrics and a cgroup path for node_memcg_* metrics."""
    for option, wanted, feature, rel, parse in (
            ('nid', metric.startswith('node_'), 'goal_nid', '/nid', _node),
            ('path', metric.startswith('node_memcg_'), 'goal_path', '/path', _cgroup)):
        value = spec.get(option)
        if value is None:
            if wanted and changed_metric:
                raise DamonValidationError(prefix + option, None, 'required with metric %s' % metric)
            continue
        if not wanted:
            raise DamonValidationError(prefix + option, value, 'nothing with metric %s' % metric)
        st.host.require(feature, prefix + option, value)
        st.set(goal + rel, parse(st.host, prefix + option, value))


def _stage_watermarks(st, watermarks, params, created):
    given = _suboptions('watermarks', params.get('watermarks'), ('metric', 'interval', 'high', 'mid', 'low'))
    permil = partial(parse_int, maximum=1000)
    _set_from(st, 'watermarks', given, [
        ('metric', watermarks + '/metric', partial(parse_choice, choices=WATERMARK_METRICS), 'none'),
        ('interval', watermarks + '/interval_us', parse_time, None),
        ('high', watermarks + '/high', permil, None),
        ('mid', watermarks + '/mid', permil, None),
        ('low', watermarks + '/low', permil, None)], created)
    if st.get(watermarks + '/metric', 'none') != 'none':
        levels = [_int_of(st, watermarks + '/' + name) for name in ('high', 'mid', 'low')]
        if not levels[0] >= levels[1] >= levels[2]:
            raise DamonValidationError('watermarks', params.get('watermarks'), 'high >= mid >= low (per-mille)')


FILTER_OPTIONS = ('type', 'matching', 'allow', 'memcg_path', 'addr_start', 'addr_end', 'target_idx', 'min',
                  'max')


def _filter_files(st, option, spec):
    """Sysfs files of one filter.  matching defaults to true: 'type: anon' means anon memory."""
    host = st.host
    spec = _suboptions(option, spec, FILTER_OPTIONS)
    kind = _require_keyword(host, option + '.type', spec.get('type'), FILTER_TYPES)
    files = {'type': kind, 'matching': parse_bool(option + '.matching', spec.get('matching', True))}
    allow = parse_bool(option + '.allow', spec.get('allow', False))
    if allow:
        host.require('filter_allow', option + '.allow', spec['allow'])
    if host.feature('filter_allow'):
        files['allow'] = allow
    needed = {'memcg': ('memcg_path',), 'addr': ('addr_start', 'addr_end'), 'target': ('target_idx',),
              'hugepage_size': ('min', 'max')}.get(kind, ())
    for name in FILTER_OPTIONS[3:]:
        if spec.get(name) is None:
            if name in needed:
                raise DamonValidationError('%s.%s' % (option, name), None, 'required with type %s' % kind)
        elif name not in needed:
            raise DamonValidationError('%s.%s' % (option, name), spec[name], 'nothing with type %s' % kind)
    if kind == 'memcg':
        files['memcg_path'] = _cgroup(host, option + '.memcg_path', spec['memcg_path'])
    for low, high in (('addr_start', 'addr_end'), ('min', 'max')):
        if low in needed:
            files[low] = parse_size('%s.%s' % (option, low), spec[low])
            files[high] = parse_size('%s.%s' % (option, high), spec[high])
            if files[low] > files[high] or (low == 'addr_start' and files[low] == files[high]):
                raise DamonValidationError(option, spec, '%s below %s' % (low, high))
    if kind == 'target':
        files['damon_target_idx'] = parse_int(option + '.target_idx', spec['target_idx'])
    return files


def _stage_filters(st, scheme, filters, operations):
    """Given filters replace all of them; on 6.15+ each goes to its layer's directory."""
    specs = [_filter_files(st, 'filters[%d]' % index, spec)
             for index, spec in enumerate(_list_option('filters', filters))]
    if specs:
        st.host.require('filters', 'filters', filters)
    if st.host.feature('core_ops_filters'):
        core = [files for files in specs if files['type'] in CORE_FILTER_TYPES]
        ops = [files for files in specs if files['type'] not in CORE_FILTER_TYPES]
        if core and ops and specs != core + ops:
            st.warnings.append('the kernel evaluates core filters (addr, target) before ops filters, '
                               'whatever their order in filters')
        if ops and operations != 'paddr':
            st.warnings.append('ops-layer filters (%s) are implemented only by paddr'
                               % ', '.join(files['type'] for files in ops))
        layers = (('core_filters', core), ('ops_filters', ops), ('filters', []))
    else:
        layers = (('filters', specs),)
    for name, entries in layers:
        if name == 'filters' and not st.host.feature('filters'):
            continue
        st.set_count('%s/%s' % (scheme, name), len(entries))
        for index, files in enumerate(entries):
            for key, value in files.items():
                st.set('%s/%s/%d/%s' % (scheme, name, index, key), value)


# ---------------------------------------------------------------- applying and committing

def _kdamond_states(host, current):
    count = int(current.get('kdamonds/nr_kdamonds', '0'))
    return {index: host.read('kdamonds/%d/state' % index) for index in range(count)}


def _check_ownership(host, index, current, states, take_over):
    configured = int(current.get('kdamonds/%d/contexts/nr_contexts' % index, '0')) > 0 \
        or states.get(index) == 'on'
    if configured and not take_over and index not in host.managed():
        raise DamonConflictError(
            'kdamond %d is configured but not recorded in %s, so another tool or an operator owns it; '
            'nothing was changed. Pass take_over: true to let kernel.damon manage it'
            % (index, host.shown(host.managed_path)))


def _exclusive_modules_to_stop(host, index, allowed):
    running = sorted(name for name, enabled in host.exclusive_modules().items() if enabled)
    if running and not allowed:
        raise DamonConflictError(
            '%s runs and holds DAMON exclusively, so kdamond %d cannot start (the kernel answers EBUSY); '
            'pass stop_exclusive_modules: true to stop it' % (', '.join(running), index))
    return running


def _restore(host, snapshot, restart=()):
    """Best effort: put the staged tree back and restart kdamonds; returns a note for errors."""
    try:
        for rel, value in plan_writes(read_tree(host), snapshot):
            host.write(rel, value)
        for index in restart:
            if host.read('kdamonds/%d/state' % index) != 'on':
                host.write('kdamonds/%d/state' % index, 'on')
    except DamonError as err:
        return 'restoring the previous configuration failed too: %s' % err
    return 'the previous configuration was restored'


class _Plan:
    """Everything one run will write, computed before the first write."""

    def __init__(self, index, current, states, desired, want_running, goals_only):
        self.kdamond = 'kdamonds/%d' % index
        self.index = index
        self.current, self.desired, self.states = current, desired, states
        self.writes = plan_writes(current, desired)
        self.was_on = states.get(index) == 'on'
        self.on_after = self.was_on if want_running is None else want_running
        grows = any(write[0] == 'kdamonds/nr_kdamonds' for write in self.writes)
        self.restarts = sorted(i for i, state in states.items() if state == 'on') if grows else []
        own = [w for w in self.writes if w[0].startswith(self.kdamond + '/')]
        self.keyword = None
        if self.on_after and not self.was_on:
            self.keyword = 'on'
        elif self.was_on and not self.on_after:
            self.keyword = 'off'
        elif self.was_on and own:
            self.keyword = 'commit_schemes_quota_goals' if goals_only else commit_keyword(own)
        self.modules = []

    def steps(self, host):
        """(path relative to admin or host path, value) in the order they are written."""
        steps = [('kdamonds/%d/state' % i, 'off') for i in self.restarts] + list(self.writes)
        steps += [('kdamonds/%d/state' % i, 'on') for i in self.restarts]
        steps += [(host.shown(host.exclusive_module_path(name)), 'N') for name in self.modules]
        if self.keyword:
            steps.append((self.kdamond + '/state', self.keyword))
        return steps

    def apply(self, host):
        for index in self.restarts:
            host.write('kdamonds/%d/state' % index, 'off')
        for rel, value in self.writes:
            host.write(rel, value)
        for index in self.restarts:
            host.write('kdamonds/%d/state' % index, 'on')
        for name in self.modules:
            host.stop_exclusive_module(name)
        if self.keyword:
            host.write(self.kdamond + '/state', self.keyword)


def _check_resolved_at_commit(host, plan):
    """Values the kernel resolves at on/commit time can go stale between runs (a cgroup
    removed, a monitored process gone) while the files keep them.  Say so before the first
    write: a commit the kernel rejects stops the kdamond on kernels before 6.14."""
    if plan.keyword not in ('on',) + COMMIT_KEYWORDS:
        return
    context = plan.kdamond + '/contexts/0/'
    goals_only = plan.keyword == 'commit_schemes_quota_goals'
    for rel, value in sorted(plan.desired.items()):
        if not rel.startswith(context):
            continue
        base, name = rel.rsplit('/', 1)
        if name == 'memcg_path' and not goals_only and plan.desired.get(base + '/type') == 'memcg':
            problem, replace = _memcg_problem(host, value), 'filters'
        elif name == 'path' and plan.desired.get(base + '/target_metric', '').startswith('node_memcg_'):
            problem, replace = _memcg_problem(host, value), 'goals or path'
        elif name == 'pid_target' and not goals_only and plan.desired.get(context + 'operations') != 'paddr':
            problem = None if host.pid_exists(int(value)) else 'a running process (no process %s)' % value
            replace = 'pid, pidfile or systemd_unit'
        else:
            continue
        if problem:
            raise DamonValidationError(rel, value, '%s; the kernel resolves it at every %s, so give %s to '
                                       'replace it' % (problem, plan.keyword, replace))


def _tuned_intervals(current, kdamond):
    return int(current.get(kdamond + '/contexts/0/monitoring_attrs/intervals/intervals_goal/aggrs', '0')) != 0


def _read_and_plan(host, index, build, take_over, want_running, goals_only):
    """Snapshot the tree, check ownership, build the desired tree (validating) and plan."""
    current = read_tree(host)
    states = _kdamond_states(host, current)
    _check_ownership(host, index, current, states, take_over)
    stage = _Stage(host, current)
    build(stage)
    return stage, _Plan(index, current, states, stage.desired, want_running, goals_only)


def _converge(host, index, build, describe, check_mode=False, want_running=None, take_over=False,
              stop_kdamonds=False, stop_exclusive_modules=False, goals_only=False):
    """Read, build the desired tree (validating it), plan, then apply and commit."""
    if not host.available():
        raise DamonUnavailableError('%s does not exist: this kernel has no DAMON sysfs interface '
                                    '(CONFIG_DAMON_SYSFS)' % host.shown(host.admin))
    with host.lock(create=not check_mode):
        stage, plan = _read_and_plan(host, index, build, take_over, want_running, goals_only)
        if plan.restarts and not stop_kdamonds:
            raise DamonConflictError(
                'kdamond %d does not exist yet and nr_kdamonds can only grow while no kdamond runs '
                '(running: %s); pass stop_kdamonds: true to stop, restore and restart them'
                % (index, ', '.join(str(i) for i in plan.restarts)))
        if plan.keyword == 'on':
            plan.modules = _exclusive_modules_to_stop(host, index, stop_exclusive_modules)
        _check_resolved_at_commit(host, plan)
        prefix = []
        if plan.keyword == 'commit' and _tuned_intervals(plan.current, plan.kdamond):
            # commit resets auto-tuned intervals to the staged inputs unless these hold the
            # tuned values; the refreshed inputs are then part of the snapshot.
            prefix = [(plan.kdamond + '/state', 'update_tuned_intervals')]
            if not check_mode:
                host.write(plan.kdamond + '/state', 'update_tuned_intervals')
                stage, plan = _read_and_plan(host, index, build, take_over, want_running, goals_only)
        steps = prefix + plan.steps(host)
        if not check_mode:
            if steps:
                _apply(host, plan)
            if int(plan.desired.get('kdamonds/%d/contexts/nr_contexts' % index, '0')) > 0:
                host.record_managed(index)
        warnings = list(stage.warnings)
        if plan.restarts:
            warnings.append('kdamonds %s were stopped and restarted to grow nr_kdamonds; their stats and '
                            'quota tuning started again from zero' % ', '.join(map(str, plan.restarts)))
        if plan.modules:
            warnings.append('stopped %s so that kdamond %d could start' % (', '.join(plan.modules), index))
        if plan.keyword == 'on' and int(plan.current.get(plan.kdamond + '/contexts/nr_contexts', '0')):
            warnings.append('kdamond %d was off (stopped since its last start, or never started); it was '
                            'started with the configuration in sysfs, its stats and quota tuning from zero' % index)
        elif goals_only and not plan.was_on and plan.writes:
            warnings.append('kdamond %d is off: the goal is staged and applies when the kdamond starts' % index)
        return {
            'changed': bool(steps),
            'diff': {'before': describe(plan.current, 'on' if plan.was_on else 'off'),
                     'after': describe(plan.desired, 'on' if plan.on_after else 'off')},
            'sysfs_writes': ['%s=%s' % step for step in steps],
            'commit': plan.keyword,
            'kdamond': _kdamond_after(host, plan, check_mode),
            'warnings': warnings,
        }


def _committed_values(plan):
    """What the kernel took in with the commit: the files this run wrote below the kdamond."""
    own = ['%s=%r' % (rel, value) for rel, value in plan.writes if rel.startswith(plan.kdamond + '/')]
    if not own:
        return 'it rejected the configuration in sysfs as it was'
    return 'this run wrote %s%s' % (', '.join(own[:8]), ' and %d more' % (len(own) - 8) if len(own) > 8 else '')


def _apply(host, plan):
    try:
        plan.apply(host)
    except DamonError as err:
        restart = list(plan.restarts)
        if plan.keyword in COMMIT_KEYWORDS and isinstance(err, DamonKernelError) and err.value == plan.keyword:
            # The kernel refused the commit; a failure midway also stops the kdamond (sec. 5.6).
            _append_note(err, _committed_values(plan))
            if host.read(plan.kdamond + '/state') != 'on':
                restart.append(plan.index)
        raise _append_note(err, _restore(host, plan.current, restart)) from None
    if plan.keyword not in COMMIT_KEYWORDS:
        return
    if host.read(plan.kdamond + '/state') == 'on':
        return
    # Before 6.14 the kdamond applies a commit after the write returned, and an error
    # terminates it without an errno (damon-sysfs.md sec. 5.6, docs/kernel-notes.md).
    note = _restore(host, plan.current, [plan.index])
    state = host.read(plan.kdamond + '/state')
    pid = host.read(plan.kdamond + '/pid')
    raise DamonError('writing %r to %s stopped kdamond %d: the kernel could not apply the new configuration '
                     '(%s; this kernel reports no errno for it); %s and the kdamond is %s (pid %s), with its '
                     'stats and quota tuning started again'
                     % (plan.keyword, host.shown(host.admin_path(plan.kdamond + '/state')), plan.index,
                        _committed_values(plan), note, state, pid))


def _kdamond_after(host, plan, check_mode):
    result = {'index': plan.index, 'state': 'on' if plan.on_after else 'off', 'pid': None}
    if check_mode:
        if plan.was_on and plan.on_after:
            result['pid'] = int(host.read(plan.kdamond + '/pid'))
        elif not plan.on_after:
            result['pid'] = -1
    elif host.is_dir(plan.kdamond):
        result.update(state=host.read(plan.kdamond + '/state'), pid=int(host.read(plan.kdamond + '/pid')))
    else:
        result['state'] = None
    return result


# ---------------------------------------------------------------- entry points

def _index(params, name):
    return parse_int(name, 0 if params.get(name) is None else params[name], maximum=2 ** 31 - 1)


def _context_path(kdamond):
    return 'kdamonds/%d/contexts/0' % kdamond


def _describe_scheme(kdamond, scheme):
    context = _context_path(kdamond)
    scheme_dir = '%s/schemes/%d' % (context, scheme)

    def describe(flat, state):
        settings = {rel: value for rel, value in subtree(flat, context).items() if not rel.startswith('schemes/')}
        return {'running': state == 'on', 'context': nest(settings) or None,
                'scheme': nest(subtree(flat, scheme_dir)) or None}
    return describe


def ensure_scheme(host, params, check_mode=False):
    """damos_scheme: make scheme `scheme` of kdamond `kdamond` (context 0) as described."""
    kdamond, scheme = _index(params, 'kdamond'), _index(params, 'scheme')
    present = parse_choice('state', params.get('state') or 'present', ('present', 'absent')) == 'present'
    running = params.get('running')
    if running is None:
        running = True if present else None
    else:
        running = parse_bool('running', running)

    def build(st):
        context = _context_path(kdamond)
        schemes = context + '/schemes'
        if present:
            if st.count('kdamonds') <= kdamond:
                st.set_count('kdamonds', kdamond + 1)
            if st.count('kdamonds/%d/contexts' % kdamond) == 0:
                st.set_count('kdamonds/%d/contexts' % kdamond, 1)
            operations = _stage_context(st, context, params)
            count = st.count(schemes)
            if scheme > count:
                raise DamonValidationError('scheme', scheme, 'an existing scheme index (0..%d) or %d to add one'
                                           % (count - 1, count))
            if scheme == count:
                st.set_count(schemes, count + 1)
            _stage_scheme(st, '%s/%d' % (schemes, scheme), params, operations, scheme == count)
        elif scheme < st.count(schemes):
            if scheme < st.count(schemes) - 1:
                st.warnings.append('schemes after %d move down one index; a running kdamond matches schemes by '
                                   'index, so their stats and quota tuning move with them' % scheme)
            st.remove_child(schemes, scheme)

    return _converge(host, kdamond, build, _describe_scheme(kdamond, scheme), check_mode=check_mode,
                     want_running=running, take_over=bool(params.get('take_over')),
                     stop_kdamonds=bool(params.get('stop_kdamonds')),
                     stop_exclusive_modules=bool(params.get('stop_exclusive_modules')))


def ensure_quota_goal(host, params, check_mode=False):
    """damos_quota_goal: one goal of an existing scheme; commits goals only."""
    kdamond, scheme, goal = _index(params, 'kdamond'), _index(params, 'scheme'), _index(params, 'goal')
    present = parse_choice('state', params.get('state') or 'present', ('present', 'absent')) == 'present'
    goals = '%s/schemes/%d/quotas/goals' % (_context_path(kdamond), scheme)
    goal_dir = '%s/%d' % (goals, goal)

    def build(st):
        schemes = _context_path(kdamond) + '/schemes'
        if scheme >= st.count(schemes):
            raise DamonValidationError('scheme', scheme, 'an existing scheme of kdamond %d (it has %d)'
                                       % (kdamond, st.count(schemes)))
        st.host.require('quota_goals', 'goal', goal)
        count = st.count(goals)
        if not present:
            if goal < count:
                st.remove_child(goals, goal)
            return
        if goal > count:
            raise DamonValidationError('goal', goal, 'an existing goal index (0..%d) or %d to add one'
                                       % (count - 1, count))
        if goal == count:
            st.set_count(goals, count + 1)
        _stage_goal(st, goal_dir, {name: params.get(name) for name in GOAL_OPTIONS}, '')

    def describe(flat, state):
        return {'running': state == 'on', 'goal': nest(subtree(flat, goal_dir)) or None}

    return _converge(host, kdamond, build, describe, check_mode=check_mode,
                     take_over=bool(params.get('take_over')), goals_only=True)


# ---------------------------------------------------------------- score feeder

def kdamond_pid(host, kdamond):
    """The pid of a running kdamond, else -1 (also when it does not exist).  One sysfs read
    and no lock: what a feeder checks on every tick to notice a restarted kdamond."""
    pid_file = 'kdamonds/%d/pid' % kdamond
    if not os.path.exists(host.admin_path(pid_file)):
        return -1
    return int(host.read(pid_file))


def feed_quota_goal(host, kdamond, scheme, goal, value=None, fed_pid=None):
    """The score feeder's write: a user_input goal's current_value, then
    commit_schemes_quota_goals, under the collection lock.

    Written only when the staged current_value differs from value, or when the kdamond's
    pid is not fed_pid (it was restarted since the last feed).  Never a full commit, which
    would restart DAMON's aggregation schedule.  value None feeds the goal's target_value,
    so the tuner holds the quota where it is.  A kdamond that does not exist or is off is
    left alone (state says which).  Returns {'state', 'pid', 'value', 'target', 'written',
    'sysfs_writes'}.
    """
    if value is not None:
        value = parse_int('current', value)
    if not host.available():
        raise DamonUnavailableError('%s does not exist: this kernel has no DAMON sysfs interface '
                                    '(CONFIG_DAMON_SYSFS)' % host.shown(host.admin))
    kdamond_dir = 'kdamonds/%d' % kdamond
    goal_dir = '%s/schemes/%d/quotas/goals/%d' % (_context_path(kdamond), scheme, goal)
    result = {'state': 'absent', 'pid': -1, 'value': value, 'target': None, 'written': False,
              'sysfs_writes': []}
    with host.lock():
        if not host.is_dir(kdamond_dir):
            return result
        result['state'] = host.read(kdamond_dir + '/state')
        if result['state'] != 'on':
            return result
        result['pid'] = int(host.read(kdamond_dir + '/pid'))
        if kdamond not in host.managed():
            raise DamonConflictError('kdamond %d is not recorded in %s, so another tool or an operator owns it; '
                                     'nothing was fed' % (kdamond, host.shown(host.managed_path)))
        if not host.is_dir(goal_dir):
            raise DamonConflictError('kdamond %d has no goal %d in scheme %d to feed' % (kdamond, goal, scheme))
        metric_file = goal_dir + '/target_metric'
        metric = host.read(metric_file) if os.path.exists(host.admin_path(metric_file)) else 'user_input'
        if metric != 'user_input':
            raise DamonConflictError('goal %d of scheme %d of kdamond %d measures %s itself; only a user_input '
                                     'goal takes a fed value' % (goal, scheme, kdamond, metric))
        result['target'] = int(host.read(goal_dir + '/target_value'))
        result['value'] = result['target'] if value is None else value
        first = len(host.writes)
        if host.read(goal_dir + '/current_value') != str(result['value']) or result['pid'] != fed_pid:
            host.write(goal_dir + '/current_value', result['value'])
            host.write(kdamond_dir + '/state', 'commit_schemes_quota_goals')
            result['written'] = True
            result['state'] = host.read(kdamond_dir + '/state')
            if result['state'] != 'on':
                raise DamonError('writing commit_schemes_quota_goals to %s stopped kdamond %d'
                                 % (host.shown(host.admin_path(kdamond_dir + '/state')), kdamond))
        result['sysfs_writes'] = host.writes[first:]
    return result


# ---------------------------------------------------------------- facts

_BYTE_KEYS = ('bytes', 'effective_bytes', 'sz_tried', 'sz_applied', 'sz_ops_filter_passed')


def _with_human_bytes(node):
    for key in _BYTE_KEYS:
        if isinstance(node.get(key), int):
            node[key + '_human'] = format_bytes(node[key])
    return node


def _scheme_facts(scheme):
    facts = {key: value for key, value in scheme.items() if not key.endswith('filters')}
    size = facts.get('access_pattern', {}).get('sz')
    if size:
        size.update(min_human=format_bytes(size['min']), max_human=format_bytes(size['max']))
    _with_human_bytes(facts.get('quotas', {}))
    _with_human_bytes(facts.get('stats', {}))
    facts['filters'] = [dict(entry, layer=layer.replace('_filters', '') if layer != 'filters' else 'legacy')
                        for layer in ('core_filters', 'ops_filters', 'filters') for entry in scheme.get(layer, [])]
    return facts


def _context_facts(context):
    attrs = context.get('monitoring_attrs', {})
    facts = {key: value for key, value in context.items() if key not in ('monitoring_attrs', 'schemes')}
    facts.update(intervals=attrs.get('intervals', {}), nr_regions=attrs.get('nr_regions', {}),
                 schemes=[_scheme_facts(scheme) for scheme in context.get('schemes', [])])
    return facts


def _kdamond_facts(host, index, managed):
    kdamond = 'kdamonds/%d' % index
    node = nest(subtree(read_tree(host, kdamond, include_ro=True), kdamond))
    facts = {'index': index, 'state': host.read(kdamond + '/state'), 'pid': int(host.read(kdamond + '/pid')),
             'managed': index in managed}
    facts.update({key: value for key, value in node.items() if key != 'contexts'})
    facts['contexts'] = [_context_facts(context) for context in node.get('contexts', [])]
    return facts


def _refresh(host, index):
    """Copy stats and effective quotas of a running kdamond into sysfs before reading."""
    keywords = ['update_schemes_stats']
    if host.feature('effective_quotas'):
        keywords.append('update_schemes_effective_quotas')
    for keyword in keywords:
        try:
            host.write('kdamonds/%d/state' % index, keyword)
        except DamonKernelError:
            # A vaddr kdamond stops by itself when its processes exit.
            if host.read('kdamonds/%d/state' % index) == 'on':
                raise
            return


def gather_facts(host, kdamonds=None, refresh=True):
    """ansible_facts.damon: what DAMON runs on this host and how it is configured."""
    facts = {'available': False, 'reason': None, 'kernel': host.release, 'features': {},
             'exclusive_modules': host.exclusive_modules(), 'memory_psi': host.memory_psi(),
             'managed': sorted(host.managed()), 'kdamonds': []}
    if not host.available():
        facts['reason'] = ('%s does not exist: this kernel has no DAMON sysfs interface (CONFIG_DAMON_SYSFS)'
                           % host.shown(host.admin))
        return facts
    count = int(host.read('kdamonds/nr_kdamonds'))
    wanted = range(count) if kdamonds is None else (parse_int('kdamonds', index) for index in kdamonds)
    wanted = [index for index in wanted if index < count]
    if refresh:
        # Only kdamonds this collection configured: an update_* keyword rewrites the
        # stats files of the kdamond it goes to, and others' trees are left byte for byte.
        managed = set(facts['managed'])
        with host.lock():
            for index in wanted:
                if index in managed and host.read('kdamonds/%d/state' % index) == 'on':
                    _refresh(host, index)
    facts.update(available=True, features=host.features(),
                 kdamonds=[_kdamond_facts(host, index, set(facts['managed'])) for index in wanted])
    return facts
