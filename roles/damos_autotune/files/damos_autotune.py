# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos-autotune: feed a workload's score to a DAMOS user_input quota goal.

Installed by the kernel.damon.damos_autotune role next to the collection's core (the
package kernel_damon: the modules' module_utils), which does the sysfs work:
validation, the lock, EBUSY retries, the write of current_value and
commit_schemes_quota_goals (feed_quota_goal), and the boot-time re-apply (ensure_scheme).
This file reads the score, validates it and decides.

  feed [--loop]   one tick (timer mode), or a tick every interval (daemon mode)
  apply           at boot: re-apply the stored scheme and goal
  status          print the feeder's state

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
                      'busy_ns': None}
        self.state.update(state)
        self.reopen = False
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
        except (OSError, ValueError):
            return None     # EBUSY from DAMON's lock, or a recreated directory: the core decides

    def _desired(self, now):
        """observe() of this tick's score.  A daemon's idle tick costs one stat(): while the
        score file is the one the last tick read a valid score from, unchanged (same
        file_identity) and not stale, the answer is the same, without open, read and parse.
        Only a score read SETTLED_NS after its last change is remembered: a rewrite within
        the file system's timestamp granularity could otherwise keep mtime and ctime."""
        settings, unchanged = self.settings, self.unchanged
        if settings.score_file and self.deadline is None:
            self.deadline = Deadline(settings.command_timeout)
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
        desired = self._desired(now)
        desired = state['fed'] if desired is None else desired
        if desired is None:
            return
        pid = self._pid()
        if pid == -1:
            state['waiting'] = True
            return
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
_STATE_TYPES = {'valid_ns': int, 'fed_pid': int, 'writes': int, 'last_write_ns': int, 'busy_ns': int,
                'frozen': bool,
                'waiting': bool, 'problem': str, 'kernel_problem': str, 'fed': tuple}


def load_state(path=STATE):
    state = {}
    try:
        with open(path, 'r', encoding='ascii', errors='replace') as handle:
            lines = handle.read(4096).splitlines()
    except OSError:
        return state
    for line in lines:
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
    third of the watchdog period."""

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


def cmd_feed(settings, fds, environ, loop):
    if settings.score_command:
        guard_score_command()
    feeder = Feeder(settings, fds, load_state(STATE))
    interval = settings.interval_ns / NS
    notifier = None
    if loop:
        log(NOTICE, 'feeding %s to goal %d of scheme %d of kdamond %d every %s' % (
            settings.source, settings.goal, settings.scheme, settings.kdamond, seconds(settings.interval_ns)))
        notifier = Notifier(environ)
        notifier.ready()
    unsaved = False
    while True:
        before = dict(feeder.state)
        feeder.tick()
        if feeder.state != before:
            try:
                save_state(feeder.state, STATE)
                unsaved = False
            except OSError as err:
                # Without its state a timer-mode tick cannot tell a stale score from a new one.
                if not unsaved:
                    log(ERR, 'cannot save the feeder state to %s: %s' % (STATE, err))
                unsaved = True
        if not loop:
            return 0
        now = time.monotonic()
        notifier.alive(now)
        if feeder.reopen:
            return REOPEN
        time.sleep(interval - (now % interval))


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
    sys.stderr.write('usage: damos-autotune feed [--loop] | apply | status\n')
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
