# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos-autotune: feed a workload's score to a DAMOS user_input quota goal.

Installed by the kernel.damon.damos_autotune role next to the collection's core (the
package kernel_damon: the modules' module_utils), which does the sysfs work:
validation, the lock, EBUSY retries, the write of current_value and
commit_schemes_quota_goals (feed_quota_goal), and the boot-time re-apply (ensure_scheme).
This file reads the score, validates it and decides.

  feed [--loop]   one tick (timer mode), or the daemon (daemon mode, Daemon)
  apply           at boot: re-apply the stored scheme and goal
  status          print the feeder's state
  metrics [--loop] --interval MSms --dir DIR
                  write DAMON's metrics for node_exporter's textfile collector (root)

`feed` runs as the unprivileged score user, so the score is read with that user's rights.
The DAMON files it needs are root's (0600): systemd opens them for it (OpenFile=), and they
are all it can write.  Its settings are in SETTINGS, root's too (the score command may hold
a secret), also handed over by systemd; the stored scheme is in CONFIG.

Nothing may fail silently: the units keep LogLevelMax=notice, so every error is logged at
<3>, an unexpected exception included (main()).  A score that does not come (a score file
on a hung mount) is bounded by a deadline like a score command, so that the freeze still
happens; a daemon pings systemd's watchdog, and a timer tick has a TimeoutStartSec=.

A tick is cheap when nothing changed: it reads the score (a daemon only stats an unchanged
score file) and the kdamond's pid (from the descriptor systemd passed) and stops.  Only a
new value, a restarted kdamond or a freeze imports the core (which costs more than the
rest of the tick: `re`, `json`, `decimal`).

When a daemon ticks (Daemon): with a score command, every interval.  With a score file, it
sleeps in poll() on inotify (ScoreWatch: the file and its directory) and ticks when the file
changed, at most once per interval; otherwise only (a) when the last valid score goes stale,
to freeze (Feeder.stale_at), (b) once per check period, the timeout, for what no event
tells: a restarted kdamond, a replaced directory, and the watchdog's ping, which goes with it
(the unit's WatchdogSec= is 3 x the timeout + the longest tick), and (c) every interval
while a write is owed (the lock, EBUSY).  Idle, that is one wake-up per timeout.  Where
inotify cannot watch the file (no inotify, its limits, a missing or unsearchable directory, a
network file system, whose other clients' writes it never sees), the daemon says so once and
ticks every interval, trying to watch again once per check period.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time

LIB = os.path.dirname(os.path.realpath(__file__))
CONFIG = '/etc/kernel-damon/damos_autotune.json'
SETTINGS = '/etc/kernel-damon/damos_autotune.conf'
STATE = '/run/damos-autotune/state'
METRICS_FILE = 'damon.prom'
ADMIN = '/sys/kernel/mm/damon/admin'
MAX_SCORE_BYTES = 64
NS = 10 ** 9
# Exit status of a daemon whose DAMON file descriptors went stale (the kernel recreated the
# directories): systemd starts it again with fresh ones (RestartForceExitStatus=).
REOPEN = 75
# A score file untouched this long before a tick read it is remembered by its identity
# (Feeder._desired): well above any file system's timestamp granularity.
SETTLED_NS = NS // 10
_NEEDED_FILES = frozenset(('state', 'pid', 'target_value', 'current_value'))

# Journal priorities (SyslogLevelPrefix): the units keep LogLevelMax=notice, so an idle
# tick logs nothing, not even systemd's own "Starting"/"Finished" lines.
ERR, WARNING, NOTICE = 3, 4, 5
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
# The most of a settings file read through its descriptor.
MAX_SETTINGS_BYTES = 1 << 16
# Rounds of end_descendants(): each kills the processes that the last one orphaned.
MAX_KILL_ROUNDS = 16
# A daemon wakes this long after the score's deadline (Feeder.stale_at), which is inclusive.
STALE_MARGIN_S = 0.001


def log(priority, message):
    sys.stderr.write('<%d>%s\n' % (priority, message))
    sys.stderr.flush()


def seconds(ns):
    return '%g s' % round(ns / NS, 3)


class Settings:
    """The feeder's settings: "name=value" lines (SETTINGS, written by the role), parsed
    without json, which would import `re` on every tick."""

    def __init__(self, text):
        values = {}
        # Only "\n" ends a line: str.splitlines() would also split a score file path at
        # "\r" or "\x85", and the rest of it would be read as a setting of its own.
        for line in text.split('\n'):
            if line and not line.startswith('#'):
                name, unused, value = line.partition('=')
                values[name.strip()] = value

        def number(name):
            return int(values[name])

        self.kdamond, self.scheme, self.goal = number('kdamond'), number('scheme'), number('goal')
        self.target, self.scale, self.min, self.max = number('target'), number('scale'), number('min'), number('max')
        self.interval_ns, self.timeout_ns = number('interval_ns'), number('timeout_ns')
        self.command_timeout = number('command_timeout_ns') / NS
        self.score_file = values.get('score_file') or None
        self.score_command = None
        if values.get('score_command'):
            import json

            self.score_command = json.loads(values['score_command'])
        self.source = self.score_file or 'the score command'

    def files(self):
        """The DAMON files of the goal, by the names the unit passes them under."""
        kdamond = '%s/kdamonds/%d' % (ADMIN, self.kdamond)
        goal = '%s/contexts/0/schemes/%d/quotas/goals/%d' % (kdamond, self.scheme, self.goal)
        return {'state': kdamond + '/state', 'pid': kdamond + '/pid', 'target_metric': goal + '/target_metric',
                'target_value': goal + '/target_value', 'current_value': goal + '/current_value'}


# ---------------------------------------------------------------- the score

class Reading:
    """One tick's view of the score source: its bytes and time, or why there are none."""

    def __init__(self, payload=b'', problem=None, detail='', time_ns=0, identity=None):
        self.payload, self.problem, self.detail, self.time_ns = payload, problem, detail, time_ns
        # A score file's identity when it was read: see file_identity().
        self.identity = identity


def file_identity(info):
    """What changes whenever a file's content or who may read it changes: a rewrite in place
    changes size or mtime and ctime, a replacement (rename, new symlink target) the inode,
    chmod and chown the ctime; ctime cannot be set back by anyone."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _errno_name(err):
    return errno.errorcode.get(err.errno, str(err.errno))


def read_file(path):
    """The score file (symlinks followed: the kernel decides what the score user may read);
    its modification time is the score's time."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        problem = {errno.ENOENT: 'missing', errno.ENOTDIR: 'missing', errno.EACCES: 'denied',
                   errno.EPERM: 'denied'}.get(err.errno, 'unreadable')
        return Reading(problem=problem, detail=_errno_name(err))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Reading(problem='unreadable', detail='not a regular file')
        return Reading(os.read(fd, MAX_SCORE_BYTES + 1), time_ns=info.st_mtime_ns, identity=file_identity(info))
    except OSError as err:
        return Reading(problem='unreadable', detail=_errno_name(err))
    finally:
        os.close(fd)


def run_command(argv, timeout):
    """The score command's standard output (its first MAX_SCORE_BYTES + 1 bytes); its time
    is when it started.  Whatever it started dies with it (end_descendants)."""
    import selectors
    import signal
    import subprocess

    started = time.time_ns()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as err:
        return Reading(problem='failed', detail='cannot run %s: %s' % (argv[0], _errno_name(err)))
    data, deadline = b'', time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while len(data) <= MAX_SCORE_BYTES:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(proc.stdout.fileno(), MAX_SCORE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    proc.stdout.close()
    try:
        code = proc.wait(max(deadline - time.monotonic(), 0.01))
    except subprocess.TimeoutExpired:
        code = None
    if code is None or len(data) > MAX_SCORE_BYTES:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
    end_descendants()
    if len(data) > MAX_SCORE_BYTES:
        return Reading(data, time_ns=started)
    if code is None:
        return Reading(problem='failed', detail='timed out after %g s' % timeout)
    if code != 0:
        return Reading(problem='failed', detail='exit status %d' % code)
    return Reading(data, time_ns=started)


def _children(parent):
    """The pids whose parent is `parent` (/proc/PID/stat: the field after the command's
    closing parenthesis is the state, then the ppid)."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as handle:
                fields = handle.read(512).rpartition(b')')[2].split()
        except OSError:
            continue    # gone meanwhile
        if len(fields) > 1 and fields[1] == b'%d' % parent:
            found.append(int(name))
    return found


def end_descendants():
    """SIGKILL and reap every process the score command left behind, in its process group or
    not (setsid, a double fork).  The feeder is their child subreaper (guard_score_command()), so
    each of them is its child or, once its parent is killed, becomes one: a few rounds of
    "kill and reap the children" end them all.  Bounded: a process that does not die from
    SIGKILL (blocked in the kernel) is left to the unit's TimeoutStartSec= or WatchdogSec=."""
    import signal

    for unused in range(MAX_KILL_ROUNDS):
        children = _children(os.getpid())
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _stat(path):
    return os.stat(path)


NO_ANSWER = object()
# Feeder._pid() while DAMON's own lock is held (EBUSY).
BUSY = object()


class Deadline:
    """Runs a blocking call (a stat() or read of the score file) on one thread that lives as
    long as the feeder, and waits for it at most `timeout` seconds: a score file on a hung
    mount (NFS, FUSE) must not hold up the tick, and with it the freeze at the target.  One
    handover per call (two locks), no thread per tick.  A call that did not return in time
    may never return: until it does, every call answers NO_ANSWER at once."""

    def __init__(self, timeout):
        # The interpreter's own _thread and _signal, not threading and signal: those import
        # collections and enum, which cost a timer tick more than the rest of it on a slow host.
        import _thread

        self.timeout = timeout
        self._go, self._done = _thread.allocate_lock(), _thread.allocate_lock()
        self._go.acquire()
        self._done.acquire()
        self._job = self._answer = None
        # time.monotonic() when the call that has not returned yet was handed over.
        self.late_since = None
        # Not waited for at exit: a reader stuck on a hung mount must not keep the tick alive.
        _thread.start_new_thread(self._serve, ())

    def _serve(self):
        import _signal

        # Every signal for the main thread: its wait for the lock ends with SIGALRM.
        _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
        while True:
            self._go.acquire()
            function, argument = self._job
            try:
                self._answer = (function(argument), None)
            except Exception as err:    # handed back to the caller
                self._answer = (None, err)
            self._done.release()

    def call(self, function, argument):
        """function(argument), its exception, or NO_ANSWER."""
        if self.late_since is not None:
            if not self._done.acquire(False):
                return NO_ANSWER
            self.late_since = None      # the late answer is old news
        self._job = (function, argument)
        self._go.release()
        if not self._done.acquire(True, self.timeout):
            self.late_since = time.monotonic()
            return NO_ANSWER
        (result, error), self._answer = self._answer, None
        if error is not None:
            raise error
        return result

    def silence(self):
        """Why there is no answer, for the log."""
        return 'no answer within %g s (waiting for one for %s)' % (
            self.timeout, seconds(int((time.monotonic() - self.late_since) * NS)))


def read_score(settings, deadline=None):
    if settings.score_file:
        if deadline is None:
            return read_file(settings.score_file)
        reading = deadline.call(read_file, settings.score_file)
        return Reading(problem='no-answer', detail=deadline.silence()) if reading is NO_ANSWER else reading
    return run_command(settings.score_command, settings.command_timeout)


def _shown(payload):
    text = repr(payload[:24])
    return text + ('... (%d bytes)' % len(payload) if len(payload) > 24 else '')


def parse_score(payload, settings):
    """(value, None) or (None, (kind, message)).  A score is a non-negative decimal number,
    at most MAX_SCORE_BYTES long, multiplied by scale and rounded, within [min, max]."""
    if len(payload) > MAX_SCORE_BYTES:
        return None, ('too-long', 'longer than %d bytes' % MAX_SCORE_BYTES)
    text = payload.strip(b' \t\r\n')
    if not text:
        return None, ('empty', 'empty')
    if any(byte < 0x20 or byte > 0x7e for byte in text):
        return None, ('binary', 'not text: %s' % _shown(payload))
    number = text[1:] if text[:1] == b'-' else text
    whole, dot, fraction = number.partition(b'.')
    if not whole.isdigit() or (dot and not fraction.isdigit()) or len(whole) > 20 or len(fraction) > 9:
        return None, ('not-a-number', 'not a decimal number: %s' % _shown(payload))
    if text[:1] == b'-':
        return None, ('negative', 'negative: %s' % _shown(payload))
    # Integers only: no float, so no inf, nan or rounding surprises.
    digits = len(fraction)
    scaled = (int(whole) * 10 ** digits + (int(fraction) if digits else 0)) * settings.scale
    value = (2 * scaled + 10 ** digits) // (2 * 10 ** digits)
    if not settings.min <= value <= settings.max:
        return None, ('out-of-range', '%s is outside %d..%d' % (text.decode(), settings.min, settings.max))
    return value, None


# ---------------------------------------------------------------- waiting for the score file

# inotify(7).  The score file's directory is watched for what replaces, creates or removes
# the file, the file itself (its inode) for what is written to it: writes to the other files
# of its directory wake no one.  A change is complete when a writer closes the file, renames
# a file onto its name or changes its times or mode (touch, chmod): read at once.  Other
# events may be the first step of one (the truncation before the write, the deletion before
# the new file): read SETTLE_S later.  Of a batch of events, the last one decides.
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x2000, 0x4000, 0x8000
IN_ONLYDIR = 0x1000000
COMPLETE = IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB
PARTIAL = IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM
# A watched directory itself was deleted, moved or unmounted: watch the path anew.
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED
DIRECTORY_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
FILE_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB
SETTLE_S = 0.01
# File systems whose files change without this kernel's knowledge (other clients of a network
# file system, a FUSE server): inotify sees only this host's own writes there.
REMOTE_FILE_SYSTEMS = frozenset(('nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'ceph', '9p', 'afs', 'coda', 'lustre',
                                 'gfs2', 'ocfs2', 'glusterfs', 'gpfs', 'beegfs', 'orangefs', 'virtiofs', 'fuse'))


def file_system(dev):
    """The type of the file system on device `dev` (/proc/self/mountinfo), '' if unknown."""
    wanted = b'%d:%d' % (os.major(dev), os.minor(dev))
    with open('/proc/self/mountinfo', 'rb') as handle:
        for line in handle:
            fields = line.split()
            # "36 35 98:0 /root /mount/point options [optional fields] - type source options"
            if len(fields) > 7 and fields[2] == wanted and b'-' in fields[6:]:
                return fields[fields.index(b'-', 6) + 1].decode('ascii', 'replace')
    return ''


def _said(err):
    return '%s: %s' % (err.filename, err.strerror if err.errno == errno.EREMOTE else _errno_name(err))


class ScoreWatch:
    """inotify(7) through the C library: the daemon sleeps in poll() on `fd` until the score
    file changes.  Watched: the file's directory, for events that name it (a file replaced by
    rename, deleted or created); where the path resolves elsewhere (a symlink), the directory
    of the file it resolves to as well; and the file, for writes.  What the path resolves to
    is looked up again (follow()) after an event that may have changed it, after one that
    says a watched directory went away (GONE), and once per check period, for what no event
    tells (a directory above replaced, a symlink in the path changed)."""

    def __init__(self, path):
        """OSError or AttributeError where inotify is not to be had (ENOSYS, EMFILE: too many
        instances; a C library without it)."""
        import ctypes
        import struct

        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch, self._rm_watch, self._errno = libc.inotify_add_watch, libc.inotify_rm_watch, ctypes.get_errno
        self._event = struct.Struct('iIII')     # wd, mask, cookie, len; then len bytes of name
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), 'inotify_init1', 'inotify')
        self.fd, self.path = fd, path
        # What resolve() found when the watches were added; None while nothing is watched.
        self.places = None
        # {wd of a directory: the names of interest in it}; the wd of the file, None while
        # there is none.
        self.names, self.file_wd = {}, None
        # An event said that what is watched may no longer be what the path resolves to.
        self.stale = False
        # {st_dev: file system type}, as file_system() found it.
        self._kinds = {}

    def close(self):
        os.close(self.fd)

    def resolve(self):
        """[(directory, name, (st_dev, st_ino) of the directory)]: the directory of the path
        as given and, when the path resolves elsewhere, that of the file it resolves to."""
        pairs = [os.path.split(self.path)]
        real = os.path.realpath(self.path)
        if real != self.path:
            pairs.append(os.path.split(real))
        places = []
        for directory, name in pairs:
            info = os.stat(directory)
            places.append((directory, name, (info.st_dev, info.st_ino)))
        return places

    def _watch(self, path, mask):
        wd = self._add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = self._errno()
            raise OSError(err, os.strerror(err), path)
        return wd

    def add(self, places):
        """([the wd of each directory], the file's wd or None where it is missing), or
        OSError (the watch limit: ENOSPC; a directory it may not read: EACCES)."""
        wds = []
        try:
            for directory, unused, identity in places:
                kind = self._kinds.get(identity[0])
                if kind is None:
                    kind = self._kinds[identity[0]] = file_system(identity[0])
                if kind in REMOTE_FILE_SYSTEMS or kind.startswith('fuse.'):
                    raise OSError(errno.EREMOTE, 'on %s, where inotify does not see what other hosts or the '
                                  'server change' % kind, directory)
                wds.append(self._watch(directory, DIRECTORY_MASK))
            try:
                file_wd = self._watch(self.path, FILE_MASK)
            except OSError as err:
                if err.errno not in (errno.ENOENT, errno.ENOTDIR):
                    raise
                file_wd = None      # its directory's watch sees it come
        except OSError:
            self._remove(wds)
            raise
        return wds, file_wd

    def _remove(self, wds):
        for wd in wds:
            self._rm_watch(self.fd, wd)     # EINVAL where it is gone already: no matter

    def follow(self, deadline):
        """Watch what the path resolves to now, unless that is watched already: None, or
        why it cannot be watched (then nothing is).  On the Deadline's thread: a path on a
        hung mount must not hold up the daemon."""
        try:
            answer = deadline.call(_follow, self)
        except OSError as err:
            self.forget()
            return _said(err)
        if answer is NO_ANSWER:
            self.forget()
            return deadline.silence()
        places, added = answer
        if added is not None:
            wds, file_wd = added
            names = {}
            for wd, place in zip(wds, places):
                names.setdefault(wd, set()).add(os.fsencode(place[1]))
            self._remove((set(self.names) | {self.file_wd}) - set(names) - {file_wd, None})
            self.places, self.names, self.file_wd = places, names, file_wd
        self.stale = False
        return None

    def forget(self):
        self._remove(set(self.names) | ({self.file_wd} - {None}))
        self.places, self.names, self.file_wd, self.stale = None, {}, None, False

    def read(self):
        """The events queued since the last read: COMPLETE or PARTIAL (as the last one about
        the score file was), with GONE where a watched directory went away; 0: none about
        it.  One read(): if more are queued, poll() says so at once."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return 0
        gone, last, offset, size = 0, 0, 0, self._event.size
        while offset + size <= len(data):
            wd, mask, unused, length = self._event.unpack_from(data, offset)
            name = data[offset + size:offset + size + length].rstrip(b'\0')
            offset += size + length
            if mask & IN_Q_OVERFLOW:
                last = COMPLETE         # events were lost: read the score
            elif wd == self.file_wd:
                if mask & (COMPLETE | PARTIAL):
                    last = COMPLETE if mask & COMPLETE else PARTIAL
            elif wd not in self.names:
                if not mask & IN_IGNORED:
                    self._rm_watch(self.fd, wd)     # added by a follow() that answered too late
            elif mask & GONE:
                gone = GONE
                self.stale = True
            elif name in self.names[wd]:
                last = COMPLETE if mask & COMPLETE else PARTIAL
                self.stale = True       # another file, or none, at the path: watch that
        return gone | last


def _follow(watch):
    """ScoreWatch.follow()'s file system work: (places, the wds of new watches), or
    (places, None) where those places are watched already."""
    places = watch.resolve()
    if places == watch.places and not watch.stale:
        return places, None
    return places, watch.add(places)


def watch_score_file(path):
    """A ScoreWatch, or None (said once) where inotify is not to be had: the daemon polls."""
    try:
        return ScoreWatch(path)
    except (OSError, AttributeError) as err:
        why = _errno_name(err) if isinstance(err, OSError) else 'not in the C library'
        log(NOTICE, '%s: cannot watch it for changes (inotify: %s): reading it every interval' % (path, why))
        return None


# ---------------------------------------------------------------- the DAMON side

def passed_fds(environ):
    """{name: fd} of the files systemd opened for this process (OpenFile=, sd_listen_fds)."""
    if environ.get('LISTEN_PID') != str(os.getpid()):
        return {}
    names = environ.get('LISTEN_FDNAMES', '').split(':')
    count = int(environ.get('LISTEN_FDS', '0') or '0')
    return {name: 3 + index for index, name in enumerate(names[:count])}


def passed_boot_id(fds):
    """This boot's id from the descriptor systemd opened (OpenFile=...:boot_id), or None
    when none was passed: the units' ProcSubset=pid hides /proc/sys, where the core reads
    it to tell the kdamonds configured in this boot."""
    if 'boot_id' not in fds:
        return None
    return os.pread(fds['boot_id'], 64, 0).decode('ascii', 'replace').strip()


def make_host(settings, fds):
    """The core's Host, reading and writing the goal's DAMON files through the passed
    descriptors: the feeder may not open them itself."""
    if LIB not in sys.path:
        sys.path.insert(0, LIB)
    from kernel_damon._damon_errors import DamonConflictError
    from kernel_damon._damon_host import Host

    by_path = {path: fds[name] for name, path in settings.files().items() if name in fds}

    class PassedFilesHost(Host):
        def _raw_read(self, path):
            if path in by_path:
                return os.pread(by_path[path], 4096, 0).decode('utf-8', 'replace')
            return super()._raw_read(path)

        def _raw_write(self, path, data):
            if path not in by_path:
                raise OSError(errno.EACCES, 'not passed to the feeder', path)
            os.pwrite(by_path[path], data.encode('utf-8'), 0)

        def _open_lock(self):
            # Never create the lock file as this user: root's units could not open it then.
            if 'lock' not in fds:
                raise DamonConflictError('%s was not passed to the feeder (it is created at boot by '
                                         'tmpfiles.d)' % self.lock_path)
            return os.dup(fds['lock'])

        def boot_id(self):
            boot_id = passed_boot_id(fds)
            if boot_id is None:
                raise DamonConflictError('/proc/sys/kernel/random/boot_id was not passed to the feeder '
                                         '(OpenFile= of its unit): run the kernel.damon.damos_autotune '
                                         'role again to install the current unit')
            return boot_id

    host = PassedFilesHost()
    # A tick must not queue behind a long Ansible run for a minute; it waits in flock()
    # itself, so that it gets the lock as soon as the run releases it, ahead of module runs
    # that queue too (they poll).
    host.lock_timeout = max(settings.interval_ns / NS, 2.0)
    host.lock_blocking = True
    return host


class Feeder:
    """The decisions of the ticks; state is what one tick leaves for the next."""

    def __init__(self, settings, fds, state, make_host=make_host):
        self.settings, self.fds, self._make_host, self.host = settings, fds, make_host, None
        self.state = {'valid_ns': time.time_ns(), 'fed': None, 'fed_pid': None, 'problem': None,
                      'kernel_problem': None, 'frozen': False, 'waiting': False, 'writes': 0, 'last_write_ns': 0,
                      'busy_ns': None, 'rejected': 0}
        self.state.update(state)
        self.reopen = False
        # The last tick could not write what it had to (the lock, EBUSY, a refusal): a daemon
        # ticks again after an interval, not at its next check.
        self.owed = False
        # The time of the score the last tick found valid and fresh; None after a problem.
        self.score_ns = None
        self.files = settings.files()
        # (identity, desired) of the last valid score read from the score file: see _desired().
        self.unchanged = None
        # Bounds the stat() and read of a score file (a score command has its own timeout).
        self.deadline = None

    def observe(self, reading, now):
        """What to feed: ('score', value), ('target', target), or None to keep what was fed."""
        settings, state = self.settings, self.state
        problem = None
        if reading.problem is None:
            value, rejected = parse_score(reading.payload, settings)
            if rejected:
                problem = ('invalid-' + rejected[0], '%s: rejected score: %s; nothing written'
                           % (settings.source, rejected[1]))
                state['rejected'] += 1
            elif now - reading.time_ns > settings.timeout_ns:
                problem = ('stale', '%s: the score %d is %s old (timeout %s)' % (
                    settings.source, value, seconds(now - reading.time_ns), seconds(settings.timeout_ns)))
                state['valid_ns'] = min(state['valid_ns'], reading.time_ns)
            else:
                state['valid_ns'] = max(state['valid_ns'], reading.time_ns)
        else:
            problem = (reading.problem, '%s: no score (%s: %s); nothing written'
                       % (settings.source, reading.problem, reading.detail))
        self._episode('problem', problem)
        self.score_ns = reading.time_ns if problem is None else None
        if problem is None:
            if state['frozen']:
                state['frozen'] = False
                log(NOTICE, '%s: feeding scores again' % settings.source)
            return ('score', value)
        if now - state['valid_ns'] > settings.timeout_ns:
            if not state['frozen']:
                state['frozen'] = True
                log(WARNING, '%s: no valid score for %s (timeout %s): feeding the target %d so that the quota '
                    'holds' % (settings.source, seconds(now - state['valid_ns']), seconds(settings.timeout_ns),
                               settings.target))
            return ('target', settings.target)
        return None

    def stale_at(self):
        """When (time.time_ns()) the next tick freezes the quota if no new score comes: the
        last valid score's time, or the last time there was one, + the timeout.  None once
        frozen."""
        if self.state['frozen']:
            return None
        since = self.state['valid_ns'] if self.score_ns is None else min(self.score_ns, self.state['valid_ns'])
        return since + self.settings.timeout_ns

    def bounded(self):
        """The Deadline of the score file's stat() and read, started on first use."""
        if self.deadline is None:
            self.deadline = Deadline(self.settings.command_timeout)
        return self.deadline

    def _episode(self, slot, problem):
        """A problem is logged once when it starts, and once when it is over."""
        key = problem[0] if problem else None
        if key != self.state[slot]:
            if problem:
                log(WARNING, problem[1])
            elif slot == 'problem':
                log(NOTICE, '%s: valid scores again' % self.settings.source)
            else:
                log(NOTICE, 'kdamond %d: feeding works again' % self.settings.kdamond)
            self.state[slot] = key

    def _pid(self):
        """The kdamond's pid from the descriptor systemd passed, without the core: -1 while it
        is stopped or not configured yet (waited for quietly), None when unknown."""
        if not self.fds.keys() >= _NEEDED_FILES:
            # Not there when the unit started.  A daemon needs a new start once they are.
            self.reopen = os.path.exists(self.files['current_value'])
            return -1
        try:
            return int(os.pread(self.fds['pid'], 32, 0))
        except OSError as err:
            # EBUSY: another writer (the metrics writer's stats refresh, damo) holds DAMON's
            # own lock for a moment; asked again next tick, not answered with a write.
            return BUSY if err.errno == errno.EBUSY else None
        except ValueError:
            return None     # a recreated directory: the core decides

    def _desired(self, now):
        """observe() of this tick's score.  A daemon's idle tick costs one stat(): while the
        score file is the one the last tick read a valid score from, unchanged (same
        file_identity) and not stale, the answer is the same, without open, read and parse.
        Only a score read SETTLED_NS after its last change is remembered: a rewrite within
        the file system's timestamp granularity could otherwise keep mtime and ctime."""
        settings, unchanged = self.settings, self.unchanged
        if settings.score_file:
            self.bounded()
        if unchanged is not None:
            try:
                info = self.deadline.call(_stat, settings.score_file)
            except OSError:
                info = None
            # NO_ANSWER: read_score() below answers at once that there is no answer.
            if (info is not None and info is not NO_ANSWER and file_identity(info) == unchanged[0]
                    and now - info.st_mtime_ns <= settings.timeout_ns):
                return unchanged[1]
            self.unchanged = None
        reading = read_score(settings, self.deadline)
        desired = self.observe(reading, now)
        # observe() answers ('score', value) only for a valid, fresh score.
        if (reading.identity is not None and desired is not None and desired[0] == 'score'
                and now - reading.identity[4] > SETTLED_NS):
            self.unchanged = (reading.identity, desired)
        return desired

    def tick(self, now=None):
        now = time.time_ns() if now is None else now
        state = self.state
        self.owed = False
        desired = self._desired(now)
        desired = state['fed'] if desired is None else desired
        if desired is None:
            return
        pid = self._pid()
        if pid == -1:
            state['waiting'] = True
            return
        if pid is BUSY:
            if desired == state['fed']:
                self.owed = True
                return
            pid = None
        if desired == state['fed'] and pid == state['fed_pid']:
            return
        self._feed(desired, now)

    def _feed(self, desired, now):
        if self.host is None:
            self.host = self._make_host(self.settings, self.fds)
        from kernel_damon._damon_errors import DamonError, DamonLockBusyError
        from kernel_damon._damon_feed import feed_quota_goal

        settings, state = self.settings, self.state
        refused = None
        try:
            result = feed_quota_goal(self.host, settings.kdamond, settings.scheme, settings.goal,
                                     desired[1] if desired[0] == 'score' else None, fed_pid=state['fed_pid'])
        except DamonError as err:
            refused = err
        finally:
            self.host.writes.clear()
        busy = isinstance(refused, DamonLockBusyError) or getattr(refused, 'errno', None) == errno.EBUSY
        state['busy_ns'] = (state['busy_ns'] or now) if busy else None
        self.owed = refused is not None
        if busy:
            # An Ansible run holds the collection's lock, or another tool DAMON's own: the
            # next tick tries again. Said once, and only when the feeding has waited longer
            # than a score may be old (the timeout).
            if now - state['busy_ns'] > settings.timeout_ns:
                self._episode('kernel_problem', ('busy', 'kdamond %d: %s; feeding has waited %s (timeout %s)' % (
                    settings.kdamond, refused, seconds(now - state['busy_ns']), seconds(settings.timeout_ns))))
            return
        if refused is not None:
            if getattr(refused, 'errno', None) == errno.ENODEV:
                self.reopen = True      # the kernel recreated the directory of a passed file
            else:
                self._episode('kernel_problem', ('kernel', 'kdamond %d: %s' % (settings.kdamond, refused)))
            return
        if result['state'] != 'on':
            state['waiting'] = True
            return
        self._episode('kernel_problem', None)
        if state['waiting'] and state['fed_pid'] is not None:
            log(NOTICE, 'kdamond %d runs again (pid %d): fed %d' % (settings.kdamond, result['pid'], result['value']))
        state.update(fed=desired, fed_pid=result['pid'], waiting=False)
        if result['written']:
            state['writes'] += 1
            state['last_write_ns'] = now


# One "key=value" line each: cheaper to read than JSON, which would import `re`.
# rejected: how many scores read were not valid numbers (invalid-*), for the metrics.
MAX_STATE_BYTES = 4096
_STATE_TYPES = {'valid_ns': int, 'fed_pid': int, 'writes': int, 'last_write_ns': int, 'busy_ns': int,
                'rejected': int, 'frozen': bool,
                'waiting': bool, 'problem': str, 'kernel_problem': str, 'fed': tuple}


def load_state(path=STATE):
    try:
        with open(path, 'r', encoding='ascii', errors='replace') as handle:
            return parse_state(handle.read(MAX_STATE_BYTES))
    except OSError:
        return {}


def parse_state(text):
    """The state's keys that parse; the others are left out (a tick starts afresh)."""
    state = {}
    for line in text.splitlines():
        key, unused, text = line.partition('=')
        kind = _STATE_TYPES.get(key)
        if kind is None or text == '-':
            continue
        try:
            if kind is tuple:
                what, unused, number = text.partition(' ')
                state[key] = (what, int(number))
            elif kind is bool:
                state[key] = text == '1'
            else:
                state[key] = kind(text)
        except ValueError:
            continue
    return state


def save_state(state, path=STATE):
    def shown(value):
        if value is None:
            return '-'
        if isinstance(value, bool):
            return '1' if value else '0'
        if isinstance(value, tuple):
            return '%s %d' % value
        return str(value)

    temporary = path + '.tmp'
    with open(temporary, 'w', encoding='ascii') as handle:
        handle.write(''.join('%s=%s\n' % (key, shown(state.get(key))) for key in sorted(_STATE_TYPES)))
    os.replace(temporary, path)


def _prctl(option, value, why):
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        log(WARNING, 'prctl(%s) failed: %s' % (why, os.strerror(ctypes.get_errno())))


def guard_score_command():
    """Before the first score command: other processes of the score user (such as the score
    command) may not ptrace the feeder for the DAMON file descriptors it holds; and whatever
    the command leaves behind becomes the feeder's child, for end_descendants()."""
    _prctl(PR_SET_DUMPABLE, 0, 'PR_SET_DUMPABLE, 0')
    _prctl(PR_SET_CHILD_SUBREAPER, 1, 'PR_SET_CHILD_SUBREAPER, 1')


def _read_fd(fd, limit):
    data = b''
    while len(data) <= limit:
        chunk = os.pread(fd, limit + 1 - len(data), len(data))
        if not chunk:
            return data
        data += chunk
    raise ValueError('longer than %d bytes' % limit)


def load_settings(fds):
    """The settings from the descriptor systemd passed (OpenFile=): the file is root's 0600,
    because the score command may hold a secret.  From the path when run by hand as root."""
    if 'settings' in fds:
        fd = fds.pop('settings')
        try:
            return Settings(_read_fd(fd, MAX_SETTINGS_BYTES).decode('utf-8'))
        finally:
            os.close(fd)    # the score command does not inherit it either (close_fds)
    with open(SETTINGS, 'r', encoding='utf-8') as handle:
        return Settings(handle.read(MAX_SETTINGS_BYTES))


class Notifier:
    """sd_notify(3) for Type=notify with WatchdogSec=, from the standard library: READY=1
    once, WATCHDOG=1 from the tick loop.  The socket is connected once; a ping costs one
    comparison with the clock reading the loop takes anyway, and a send() at most every
    third of the watchdog period (`every`; an event-driven Daemon makes it its check period)."""

    def __init__(self, environ):
        self.socket, self.every, self.next = None, None, 0.0
        address = environ.get('NOTIFY_SOCKET', '')
        usec, pid = environ.get('WATCHDOG_USEC', ''), environ.get('WATCHDOG_PID', '')
        if hasattr(environ, 'pop'):
            # Not for the score command: the feeder alone speaks for the unit.
            for name in ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'):
                environ.pop(name, None)
        if not address.startswith(('/', '@')):
            return
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            # "@name" is a socket in the abstract namespace.
            sock.connect('\0' + address[1:] if address[0] == '@' else address)
        except OSError as err:
            sock.close()
            log(ERR, 'cannot reach systemd at NOTIFY_SOCKET=%s: %s' % (address, err))
            return
        self.socket = sock
        if usec.isdigit() and int(usec) > 0 and pid in ('', str(os.getpid())):
            self.every = int(usec) / 3e6

    def _send(self, message):
        try:
            self.socket.send(message)
        except OSError as err:
            log(ERR, 'cannot notify systemd (%s): %s' % (message.decode(), err))

    def ready(self):
        if self.socket is not None:
            self._send(b'READY=1')

    def alive(self, now):
        """`now`: time.monotonic()."""
        if self.every is not None and now >= self.next:
            self.next = now + self.every
            self._send(b'WATCHDOG=1')


def tick_and_save(feeder, unsaved, now=None):
    """One tick, and the state saved if it changed; whether it is still unsaved."""
    before = dict(feeder.state)
    feeder.tick(now)
    if feeder.state == before:
        return unsaved
    try:
        save_state(feeder.state, STATE)
        return False
    except OSError as err:
        # Without its state a timer-mode tick cannot tell a stale score from a new one.
        if not unsaved:
            log(ERR, 'cannot save the feeder state to %s: %s' % (STATE, err))
        return True


class Clock:
    """The daemon's clocks and its one blocking call: time.monotonic() for its schedule,
    time.time_ns() for the score's age (the file's mtime), poll().  Tests pass their own."""

    monotonic = staticmethod(time.monotonic)
    time_ns = staticmethod(time.time_ns)

    def __init__(self):
        self._poll = None

    def wait(self, fd, timeout):
        """True when fd became readable within `timeout` seconds; without fd, a sleep."""
        if fd is None:
            time.sleep(timeout)
            return False
        if self._poll is None:
            import select

            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)
        # Milliseconds, rounded up by Python: never woken before the deadline.
        return bool(self._poll.poll(timeout * 1000))


class Daemon:
    """feed --loop: a tick, then a sleep until the next one is due (the module's docstring
    says when).  The ticks are the Feeder's, as in timer mode; this decides only when."""

    def __init__(self, feeder, notifier, watch=None, clock=None):
        self.feeder, self.notifier, self.watch = feeder, notifier, watch
        self.clock = Clock() if clock is None else clock
        settings = feeder.settings
        self.interval, self.check = settings.interval_ns / NS, settings.timeout_ns / NS
        if watch is not None and notifier.every is not None:
            # The ping goes with the check (WatchdogSec= is 3 x the check + a tick): no
            # wake-up of its own.
            notifier.every = min(notifier.every, self.check)
        # time.monotonic() of the last tick's end; of the last follow() of the watch.
        self.ticked = self.followed = None
        # When the events read since the last tick ask for the next one.
        self.asked = None
        # The watch could not follow the path, and the log said so.
        self.unwatched = False
        self.unsaved = False

    def run(self, wakes=None):
        """Ticks until the feeder must be started again with fresh files (REOPEN).  `wakes`
        bounds the sleeps, for tests: None when they are used up."""
        if self.ticked is None:
            self._tick()
        while not self.feeder.reopen:
            now = self.clock.monotonic()
            wake = self.next_tick(now)
            if now < wake:
                if wakes is not None:
                    if wakes <= 0:
                        return None
                    wakes -= 1
                if self._sleep(wake - now):
                    continue        # events: the schedule may have changed
            self._tick()
        return REOPEN

    def watching(self):
        return self.watch is not None and self.watch.places is not None

    def next_tick(self, now):
        """When (time.monotonic()) the next tick is due."""
        interval, ticked = self.interval, self.ticked
        if not self.watching():
            return ticked + interval - ticked % interval    # on the interval's beats
        due = ticked + self.check
        if self.notifier.every is not None:
            due = min(due, self.notifier.next)
        stale = self.feeder.stale_at()
        if stale is not None:
            stale = now + (stale - self.clock.time_ns()) / NS + STALE_MARGIN_S
            # A check due less than an interval before the freeze waits for it: one wake-up.
            if stale < due + interval:
                due = stale
        if self.feeder.owed:
            due = ticked
        if self.asked is not None:
            due = min(due, self.asked)
        # At most one tick per interval, whatever the events and deadlines ask.
        return max(due, ticked + interval)

    def _sleep(self, timeout):
        """Until the next tick is due (False), or until events come (True).  Not for events
        while a tick is asked for already: a file written without pause costs a wake-up per
        interval, not one per write; the tick reads what they wrote."""
        if not self.watching() or self.asked is not None:
            self.clock.wait(None, timeout)
            return False
        if not self.clock.wait(self.watch.fd, timeout):
            return False
        found, now = self.watch.read(), self.clock.monotonic()
        if found:
            self.asked = now if found & COMPLETE else now + SETTLE_S
        return True

    def _tick(self):
        if self.watch is not None:
            if self.watching():
                self.watch.read()       # events so far: this tick reads what they announce
            self._follow(self.clock.monotonic())    # before the read: no change goes unseen
        self.asked = None
        self.unsaved = tick_and_save(self.feeder, self.unsaved, self.clock.time_ns())
        self.ticked = self.clock.monotonic()
        self.notifier.alive(self.ticked)

    def _follow(self, now):
        """Watch the path, or check that what is watched is still what it resolves to: once
        per check period, and after events that said it may not be.  Unwatched, the daemon
        ticks every interval and tries again once per check period."""
        watch = self.watch
        if self.followed is not None and now < self.followed + self.check and not watch.stale:
            return
        self.followed = now
        source = self.feeder.settings.source
        why = watch.follow(self.feeder.bounded())
        if why is None and self.unwatched:
            log(NOTICE, '%s: watching it for changes again' % source)
        elif why is not None and not self.unwatched:
            log(NOTICE, '%s: cannot watch it for changes (%s): reading it every %s until it can' % (
                source, why, seconds(self.feeder.settings.interval_ns)))
        self.unwatched = why is not None


def cmd_feed(settings, fds, environ, loop):
    if settings.score_command:
        guard_score_command()
    feeder = Feeder(settings, fds, load_state(STATE))
    if not loop:
        tick_and_save(feeder, False)
        return 0
    notifier = Notifier(environ)
    # DAMOS_AUTOTUNE_POLL=1 (a drop-in's Environment=): read the score file every interval,
    # as where it cannot be watched; bench/feeder.sh compares both ways.
    polls = environ.get('DAMOS_AUTOTUNE_POLL') == '1'
    watch = watch_score_file(settings.score_file) if settings.score_file and not polls else None
    log(NOTICE, 'feeding %s to goal %d of scheme %d of kdamond %d %s' % (
        settings.source, settings.goal, settings.scheme, settings.kdamond,
        ('when it changes, at most every %s' if watch else 'every %s') % seconds(settings.interval_ns)))
    notifier.ready()
    return Daemon(feeder, notifier, watch).run()


# ---------------------------------------------------------------- apply (root, at boot)

def _run(argv):
    import subprocess

    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def load_config(path=CONFIG):
    import json

    with open(path, 'r', encoding='utf-8') as handle:
        return json.load(handle)


def _kind(value):
    return {dict: 'an object', list: 'a list', str: 'a string', bool: 'a boolean', type(None): 'null',
            int: 'a number', float: 'a number'}.get(type(value), type(value).__name__)


def stored_scheme(data):
    """The damos_scheme parameters in CONFIG's JSON; ValueError saying what is wrong with
    its shape (ensure_scheme() validates the values)."""
    if not isinstance(data, dict):
        raise ValueError('the file holds %s, not an object' % _kind(data))
    scheme = data.get('scheme')
    if not isinstance(scheme, dict):
        raise ValueError('"scheme" is %s, not an object' % ('missing' if 'scheme' not in data else _kind(scheme)))
    kdamond = scheme.get('kdamond')
    number = isinstance(kdamond, int) and not isinstance(kdamond, bool)
    if not number or kdamond < 0:
        shown = 'missing' if 'kdamond' not in scheme else kdamond if number else _kind(kdamond)
        raise ValueError('"scheme"."kdamond" is %s, not a kdamond index' % shown)
    goals = scheme.get('goals')
    if goals is not None and not (isinstance(goals, list) and all(isinstance(goal, dict) for goal in goals)):
        raise ValueError('"scheme"."goals" is %s, not a list of objects' % _kind(goals))
    return scheme


def cmd_apply(fds):
    sys.path.insert(0, LIB)
    from kernel_damon._damon_errors import DamonError
    from kernel_damon._damon_feed import kdamond_pid
    from kernel_damon._damon_host import Host
    from kernel_damon._damon_plan import ensure_scheme

    try:
        params = stored_scheme(load_config(CONFIG))
    except (OSError, ValueError) as err:
        log(ERR, 'cannot re-apply the stored scheme: %s: %s; nothing changed. Run the '
            'kernel.damon.damos_autotune role again to store it.' % (CONFIG, err))
        return 1
    host = Host(run_command=_run)
    boot_id = passed_boot_id(fds)
    if boot_id is not None:
        # Passed by the boot unit, whose sandbox hides /proc/sys; by hand, read as usual.
        host.boot_id = lambda: boot_id
    kdamond = params['kdamond']
    try:
        if host.available() and kdamond_pid(host, kdamond) != -1:
            # The kdamond runs: this is not a boot.  Keep the fed value, which the stored
            # current (the target, so that the quota holds until the feeder speaks) would undo.
            params = dict(params, goals=[{key: value for key, value in goal.items() if key != 'current'}
                                         for goal in params.get('goals') or []])
        result = ensure_scheme(host, params)
    except DamonError as err:
        log(ERR, 'kdamond %d: re-applying the stored scheme failed: %s' % (kdamond, err))
        return 1
    for warning in result['warnings']:
        log(WARNING, warning)
    after = result['kdamond']
    log(NOTICE, 'kdamond %d: stored scheme %s (%d sysfs writes); state %s, pid %s' % (
        after['index'], 'applied' if result['changed'] else 'already in place', len(result['sysfs_writes']),
        after['state'], after['pid']))
    return 0


def feeder_for_metrics():
    """([the feeder's state with its kdamond, scheme and goal], problem): read by root, from
    a directory the score user owns, so as read_user_file() allows; ([], None) where the
    role deploys no feeder or it has not run yet."""
    from kernel_damon._damon_host import read_state_file, read_user_file

    text, problem = read_state_file(SETTINGS, MAX_SETTINGS_BYTES)
    if text is None:
        return [], problem and '%s: %s' % (SETTINGS, problem)
    settings = Settings(text)
    feeder = {'kdamond': settings.kdamond, 'scheme': settings.scheme, 'goal': settings.goal}
    text, problem = read_user_file(STATE, MAX_STATE_BYTES)
    if text is None:
        # No state yet (the feeder has not run in this boot), or one root may not trust.
        return [], problem and '%s: %s; the feeder\'s metrics are left out' % (STATE, problem)
    feeder.update(parse_state(text))
    return [feeder], None


def metrics_arguments(argv):
    """(loop, interval in s, directory) of `metrics [--loop] --interval Nms --dir DIR`."""
    loop = argv[:1] == ['--loop']
    rest = argv[1:] if loop else argv
    if len(rest) != 4 or rest[0] != '--interval' or rest[2] != '--dir' or not rest[1].endswith('ms'):
        raise ValueError('usage')
    interval = int(rest[1][:-2]) / 1000
    if interval < 1 or not os.path.isabs(rest[3]):
        raise ValueError('usage')
    return loop, interval, rest[3]


def cmd_metrics(loop, interval, directory, host=None):
    """Write METRICS_FILE: once, or every interval (on its beats) until stopped.  A problem is
    logged when it starts and when it is over, not every refresh.  host: tests pass theirs."""
    sys.path.insert(0, LIB)
    from kernel_damon._damon_errors import DamonError
    from kernel_damon._damon_host import Host
    from kernel_damon._damon_metrics import Restarts, collect, write_textfile

    host = Host(run_command=_run) if host is None else host
    restarts, said = Restarts(), None
    if loop:
        log(NOTICE, 'writing DAMON metrics to %s every %g s' % (os.path.join(directory, METRICS_FILE), interval))
    while True:
        problems = []
        try:
            feeders, problem = feeder_for_metrics()
            problems.append(problem)
        except (KeyError, ValueError) as err:
            feeders = []
            problems.append('%s: %s: %s; the feeder\'s metrics are left out' % (SETTINGS, type(err).__name__, err))
        try:
            write_textfile(directory, METRICS_FILE, collect(host, time.time(), interval, restarts, feeders))
        except (DamonError, OSError) as err:
            problems.append('cannot write %s: %s' % (os.path.join(directory, METRICS_FILE), err))
        problems = '; '.join(problem for problem in problems if problem) or None
        if problems != said:
            log(WARNING if problems else NOTICE, problems or 'metrics are written again')
            said = problems
        if not loop:
            return 0 if problems is None else 1
        time.sleep(interval - time.time() % interval)


def cmd_status():
    state = load_state(STATE)
    sys.stdout.write(''.join('%s=%s\n' % (key, state.get(key, '-')) for key in sorted(_STATE_TYPES)))
    return 0


def _main(argv, environ):
    if argv == ['feed'] or argv == ['feed', '--loop']:
        fds = passed_fds(environ)
        try:
            settings = load_settings(fds)
        except (OSError, KeyError, ValueError) as err:
            log(ERR, 'cannot read the settings in %s: %s: %s; run the kernel.damon.damos_autotune role '
                'again to write them' % (SETTINGS, type(err).__name__, err))
            return 1
        return cmd_feed(settings, fds, environ, argv[1:] == ['--loop'])
    if argv == ['apply']:
        return cmd_apply(passed_fds(environ))
    if argv == ['status']:
        return cmd_status()
    if argv[:1] == ['metrics']:
        try:
            arguments = metrics_arguments(argv[1:])
        except ValueError:
            arguments = None
        if arguments is not None:
            return cmd_metrics(*arguments)
    sys.stderr.write('usage: damos-autotune feed [--loop] | apply | status | '
                     'metrics [--loop] --interval MSms --dir DIR (MS >= 1000, DIR absolute)\n')
    return 2


def main(argv=None, environ=None):
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    try:
        return _main(argv, environ)
    except Exception as err:
        # A bare traceback would reach the journal at the units' SyslogLevel= only: at <3>,
        # every line, so that LogLevelMax=notice keeps it and a crash loop is never silent.
        import traceback

        log(ERR, 'damos-autotune %s failed: %s: %s' % (' '.join(argv), type(err).__name__, err))
        for line in traceback.format_exc().splitlines():
            log(ERR, line)
        return 1
