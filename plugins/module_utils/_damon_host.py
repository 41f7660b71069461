# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host: one machine's DAMON sysfs tree and the files around it.  Host reads and writes
sysfs files (with EBUSY retries), detects the kernel's features, reads the host files DAMON
options refer to (nodes, System RAM, PSI, cgroups, pidfiles, units), holds the collection's
lock and its ownership registry; read_tree() reads the tree as a flat map.  Root's own state
files are written here too: nothing else in the core opens a file.

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible; depends on _damon_model, _damon_units and _damon_errors.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import re
import stat
import time

from ._damon_errors import DamonError, DamonKernelError, DamonLockBusyError, DamonValidationError
from ._damon_model import (
    ACTIONS,
    CONTEXT_GLOB,
    EXCLUSIVE_MODULES,
    FILE_FEATURES,
    FILTER_TYPES,
    GOAL_METRICS,
    OPERATIONS,
    since,
)
from ._damon_units import INT_MAX, kernel_version, parse_node_list, parse_psi, plain_int, sysfs_value

ADMIN_DIR = 'sys/kernel/mm/damon/admin'


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


# ---------------------------------------------------------------- root's own files

STATE_FILE_LIMIT = 1 << 20


def _os_problem(err):
    return '%s (%s)' % (errno.errorcode.get(err.errno, str(err.errno)), os.strerror(err.errno))


def _not_private(info, is_type, what):
    """Why a file the collection keeps as root cannot be trusted, or None: only root (or the
    user running this, in tests) may own it and only its owner may write it."""
    if not is_type(info.st_mode):
        return 'not %s' % what
    if info.st_uid not in (0, os.geteuid()):
        return 'owned by uid %d, not root' % info.st_uid
    if info.st_mode & 0o022:
        return 'writable by group or others (mode %04o)' % stat.S_IMODE(info.st_mode)
    return None


def open_private_dir(path, mode=0o700):
    """An O_DIRECTORY descriptor of one of the collection's directories: created with mode
    when missing, never reached through a symlink, refused when another user owns it or may
    write to it.  Raises OSError, or DamonError naming the directory."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    try:
        os.mkdir(path, mode)
        created = True
    except FileExistsError:
        created = False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if created:
        os.fchmod(fd, mode)     # whatever the umask
    problem = _not_private(os.fstat(fd), stat.S_ISDIR, 'a directory')
    if problem:
        os.close(fd)
        raise DamonError('%s is %s; kernel.damon keeps its lock and state only in a directory of root\'s '
                         'that no one else may write (remove it: kernel.damon creates it again)' % (path, problem))
    return fd


def _read_checked(name, limit, refuse, dir_fd=None):
    """(text, None), (None, None) when absent, or (None, why it cannot be used): the file
    opened without following a symlink and without blocking (a FIFO in its place cannot
    hold root up), refused when refuse(its stat) says why, or when longer than limit bytes
    or not UTF-8 text."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, 'cannot open it: %s' % _os_problem(err)
    try:
        problem = refuse(os.fstat(fd))
        if problem:
            return None, 'it is %s' % problem
        data = os.read(fd, limit + 1)
    except OSError as err:
        return None, 'cannot read it: %s' % _os_problem(err)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None, 'it is larger than %d bytes' % limit
    try:
        return data.decode('utf-8'), None
    except UnicodeDecodeError:
        return None, 'it is not UTF-8 text'


def read_state_file(path, limit=STATE_FILE_LIMIT):
    """_read_checked() of a state file: a root-owned regular file, not a symlink, of at most
    limit bytes."""
    return _read_checked(path, limit, lambda info: _not_private(info, stat.S_ISREG, 'a regular file'))


def read_user_file(path, limit=STATE_FILE_LIMIT):
    """_read_checked() of a file that a less trusted user keeps for root to read (the score
    feeder's state): reached through no symlink (neither the file nor its directory), a
    regular file with one link, owned by its directory's owner, at most limit bytes."""
    try:
        dir_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, 'cannot open its directory: %s' % _os_problem(err)

    def refuse(info):
        if not stat.S_ISREG(info.st_mode):
            return 'not a regular file'
        if info.st_nlink != 1 or info.st_uid != owner:
            return 'a file of %d links and uid %d in a directory of uid %d' % (info.st_nlink, info.st_uid, owner)
        return None

    try:
        owner = os.fstat(dir_fd).st_uid
        return _read_checked(os.path.basename(path), limit, refuse, dir_fd)
    finally:
        os.close(dir_fd)


def write_state_file(path, text):
    """Replace a state file whole: a temporary file in the same root-only directory, fsync,
    rename, fsync of the directory; mode 0644 whatever the umask (the score feeder, an
    unprivileged user, reads it)."""
    dir_fd = open_private_dir(os.path.dirname(path), 0o755)
    name = os.path.basename(path)
    try:
        fd = os.open(name + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=dir_fd)
        try:
            os.fchmod(fd, 0o644)
            os.write(fd, text.encode('utf-8'))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(name + '.tmp', name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_state_file(path):
    dir_fd = open_private_dir(os.path.dirname(path), 0o755)
    try:
        os.unlink(os.path.basename(path), dir_fd=dir_fd)
        os.fsync(dir_fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------- files a workload may write

PIDFILE_MAX = 32
# systemd's unit name characters; UNIT_NAME_MAX is 256 with the NUL.
_UNIT_NAME = re.compile(r'^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*\.(service|scope)\Z')
UNIT_NAME_MAX = 255
_FILE_TYPES = ((stat.S_ISFIFO, 'a FIFO'), (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
               (stat.S_ISDIR, 'a directory'), (stat.S_ISSOCK, 'a socket'))


def _check_regular(info, refuse, shown):
    if stat.S_ISLNK(info.st_mode):
        raise refuse('a regular file, not a symbolic link', '%s is one; give the path it points to' % shown)
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_TYPES if test(info.st_mode)), 'not a regular file')
        raise refuse('a regular file', '%s is %s' % (shown, kind))


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
        # Not /run/lock: it is world-writable, so any user could plant a symlink there or
        # hold flock() on a file he can open.  /run/kernel-damon is root's alone.
        self.lock_path = lock_path or self.path('run/kernel-damon/lock')
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
        # os.read, not open(): four system calls per file instead of seven (no fstat, isatty
        # or lseek), which an emulated guest feels in every metrics refresh.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = [os.read(fd, 65536)]
            while chunks[-1]:
                chunks.append(os.read(fd, 65536))
        finally:
            os.close(fd)
        return b''.join(chunks).decode('utf-8', errors='replace')

    def _raw_write(self, path, data):
        # sysfs takes one write() per value.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data.encode('utf-8'))
        finally:
            os.close(fd)

    def _busy_retry(self, operation, path, value):
        """EBUSY means someone holds DAMON's global sysfs lock (trylock): try again, bounded.

        The kernel never queues a waiter, so only a try while the lock is free succeeds. A tool
        that asks a kdamond for its stats in a loop holds the lock for up to a sampling interval
        per request (100 ms at 100 ms sampling), with short gaps between: tries backed off to 1 s
        found the gap too rarely (the 7.3 fleet's concurrency target, 5 s and still EBUSY). So
        the delay grows from 10 ms to 50 ms only: about a hundred tries within busy_timeout."""
        delay, waited = 0.01, 0.0
        while True:
            try:
                return operation()
            except OSError as err:
                if err.errno == errno.EBUSY and waited + delay <= self.busy_timeout:
                    self.sleep(delay)
                    waited += delay
                    delay = min(delay * 2, 0.05)
                    continue
                raise DamonKernelError(self.shown(path), value, err.errno) from None

    def read_value(self, path):
        raw = self._busy_retry(lambda: self._raw_read(path), path, None)
        return raw[:-1] if raw.endswith('\n') else raw

    def write_value(self, path, value, label=None):
        text = sysfs_value(value)
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

    def start_exclusive_module(self, name):
        self.write_value(self.exclusive_module_path(name), 'Y')

    def pid_exists(self, pid):
        return pid > 0 and os.path.isdir(self.path('proc/%d' % pid))

    def process_uid(self, pid):
        """Who a process runs as (the owner of /proc/<pid>, its effective uid; root for a
        process that is not dumpable), or None when it does not exist."""
        try:
            return os.stat(self.path('proc/%d' % pid)).st_uid
        except OSError:
            return None

    def pidfile_pid(self, rel):
        """The pid in a pidfile, read as systemd reads PIDFile=: a regular file that is not a
        symlink, opened without blocking (a FIFO would block forever), at most PIDFILE_MAX
        bytes of decimal digits.  A pidfile that a user other than root can write (not owned
        by root, or group-writable) counts only for a process of its owner; a world-writable
        one not at all.  Anything else is a DamonValidationError('pidfile', rel, why)."""
        path = self.path(rel)
        shown = self.shown(path)

        def refuse(accepted, why):
            return DamonValidationError('pidfile', rel, '%s (%s)' % (accepted, why))

        try:
            # Look before opening: opening a device can have effects of its own.
            before = os.lstat(path)
        except OSError as err:
            if err.errno == errno.ENOENT:
                raise refuse('an existing regular file', '%s does not exist' % shown) from None
            raise refuse('a readable regular file', '%s: %s' % (shown, os.strerror(err.errno))) from None
        _check_regular(before, refuse, shown)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as err:
            raise refuse('a readable regular file', '%s: %s' % (shown, os.strerror(err.errno))) from None
        try:
            info = os.fstat(fd)
            _check_regular(info, refuse, shown)     # replaced since lstat()
            data = b''
            while len(data) <= PIDFILE_MAX:
                chunk = os.read(fd, PIDFILE_MAX + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        except OSError as err:
            raise refuse('a readable regular file', '%s: %s' % (shown, os.strerror(err.errno))) from None
        finally:
            os.close(fd)
        if len(data) > PIDFILE_MAX:
            raise refuse('a file of at most %d bytes holding a process id' % PIDFILE_MAX,
                         '%s is longer' % shown)
        text = data.decode('ascii', 'replace').strip()
        if not re.match(r'^[0-9]+\Z', text):
            raise refuse('a file holding one process id in decimal', 'it holds %r' % text)
        pid = int(text)
        if not 0 < pid <= INT_MAX:
            raise refuse('a process id from 1 to %d' % INT_MAX, 'it holds %d' % pid)
        trust = 'a pidfile that only root can write, or that names a process of the user who can'
        if info.st_mode & stat.S_IWOTH:
            raise refuse(trust, '%s is world-writable' % shown)
        if info.st_uid == 0 and info.st_mode & stat.S_IWGRP:
            raise refuse(trust, '%s is owned by root and group-writable' % shown)
        if info.st_uid != 0:
            runs_as = self.process_uid(pid)
            if runs_as is not None and runs_as != info.st_uid:
                raise refuse(trust, '%s is owned by uid %d, and process %d runs as uid %d'
                             % (shown, info.st_uid, pid, runs_as))
        return pid

    def cgroup_exists(self, cgroup):
        parts = [part for part in cgroup.split('/') if part]
        return '..' not in parts and os.path.isdir(self.path('/'.join(['sys/fs/cgroup'] + parts)))

    def cgroup_has_memory(self, cgroup):
        """False when cgroup v2 says the memory controller is not enabled for the cgroup:
        DAMON looks paths up among memory cgroups only.  True where it cannot tell (v1)."""
        text = self.read_host_file('sys/fs/cgroup/%s/cgroup.controllers' % cgroup.strip('/'))
        return text is None or 'memory' in text.split()

    def unit_main_pid(self, unit):
        # Checked before systemctl runs as root: no option ('-H host'), nothing but a unit name.
        if not isinstance(unit, str) or not _UNIT_NAME.match(unit) or len(unit) > UNIT_NAME_MAX:
            raise DamonValidationError('systemd_unit', unit, "a unit name such as web.service (letters, digits and "
                                       "the characters :_.@-\\ only, not starting with '-', ending in .service or "
                                       ".scope, at most %d characters)" % UNIT_NAME_MAX)
        if self.run_command is None:
            raise DamonError('systemd_unit needs a command runner: Host(run_command=...)')
        try:
            code, out, err = self.run_command(['systemctl', 'show', '-p', 'MainPID', '--value', '--', unit])
        except OSError as exc:
            raise DamonValidationError('systemd_unit', unit, 'a systemd unit (systemctl: %s)' % exc) from None
        pid = plain_int(out.strip()) if code == 0 else None
        if not pid or not 0 < pid <= INT_MAX:
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
                                       'runs %s)' % (option, since(FILE_FEATURES[name][0]), self.release))

    def supported(self, table):
        return [name for name, since in table.items() if self.version >= since]

    def operations(self):
        found = sorted(glob.glob(os.path.join(self.admin, CONTEXT_GLOB, 'avail_operations')))
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
        try:
            dir_fd = open_private_dir(os.path.dirname(self.lock_path))
            try:
                fd = os.open(os.path.basename(self.lock_path),
                             os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600,
                             dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as err:
            raise DamonError('locking %s failed: %s' % (self.shown(self.lock_path), _os_problem(err))) from None
        problem = _not_private(os.fstat(fd), stat.S_ISREG, 'a regular file')
        if problem:
            os.close(fd)
            raise DamonError('locking %s failed: it is %s; only a root-owned regular file in a directory of '
                             "root's is used as the lock (remove it: kernel.damon creates it again)"
                             % (self.shown(self.lock_path), problem))
        return fd

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

    # -- ownership registry: which kdamonds this collection configured, in this boot
    @property
    def managed_path(self):
        return os.path.join(self.state_dir, 'managed.json')

    def boot_id(self):
        """This boot's id (random per boot), None where the kernel has none.  The score
        feeder, whose sandbox hides /proc/sys, overrides it with a descriptor systemd passed."""
        text = self.read_host_file('proc/sys/kernel/random/boot_id')
        return text.strip() if text else None

    def boot_time(self):
        """The boot's wall-clock time in seconds (btime of /proc/stat), or None."""
        for line in (self.read_host_file('proc/stat') or '').splitlines():
            if line.startswith('btime '):
                return plain_int(line[6:])
        return None

    def kdamond_identity(self, index):
        """The inode of kdamonds/<index>: writing nr_kdamonds makes every kdamond directory
        anew, so another tool's `damo start` after ours gives a new one."""
        try:
            return os.stat(self.admin_path('kdamonds/%d' % index)).st_ino
        except OSError:
            return None

    def ownership(self):
        """({index: inode or None}, problem): the kdamonds recorded as configured by this
        collection in this boot.  A file that cannot be read or has the wrong shape means
        "nothing is ours" (problem says why), so that writers refuse configured kdamonds
        until take_over: true claims them and writes the file anew; it never raises."""
        text, problem = read_state_file(self.managed_path)
        if text is None:
            return {}, problem
        try:
            data = json.loads(text)
        except ValueError as err:
            return {}, 'it is not JSON (%s)' % err
        if isinstance(data, dict) and data.get('version') == 2:
            records = data.get('kdamonds')
            if not isinstance(records, dict) or not all(
                    re.match(r'^[0-9]{1,9}$', key) and isinstance(value, dict)
                    and (value.get('ino') is None or plain_int(value.get('ino')) is not None)
                    for key, value in records.items()):
                return {}, 'its "kdamonds" is not a map of kdamond indexes to records'
            if data.get('boot_id') != self.boot_id():
                return {}, None     # recorded in an earlier boot: nothing is ours until configured again
            return {int(key): value.get('ino') for key, value in records.items()}, None
        if isinstance(data, dict) and isinstance(data.get('kdamonds'), list) and all(
                plain_int(index) is not None for index in data['kdamonds']):
            # Written by kernel.damon 0.1 (no boot id): trusted when written in this boot.
            booted = self.boot_time()
            if booted is not None and os.stat(self.managed_path).st_mtime < booted:
                return {}, None
            return {int(index): None for index in data['kdamonds']}, None
        return {}, 'it is not a kernel.damon ownership record ({"version": 2, "boot_id": ..., "kdamonds": {...}})'

    def managed(self):
        """Indexes of the kdamonds this collection configured in this boot, whose directory
        nobody has made anew since."""
        records, unused = self.ownership()
        return {index for index, ino in records.items()
                if ino is None or ino == self.kdamond_identity(index)}

    def record_managed(self, indexes):
        """Record indexes, and only them, as ours in this boot; no write when nothing changed."""
        records, problem = self.ownership()
        wanted = {index: self.kdamond_identity(index) for index in sorted(indexes)}
        exists = os.path.lexists(self.managed_path)
        if (records == wanted and problem is None and exists) or not (wanted or exists):
            return
        write_state_file(self.managed_path, json.dumps(
            {'version': 2, 'boot_id': self.boot_id(),
             'kdamonds': {str(index): {'ino': ino} for index, ino in wanted.items()}}, sort_keys=True) + '\n')


# ---------------------------------------------------------------- the sysfs tree as a flat map

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
