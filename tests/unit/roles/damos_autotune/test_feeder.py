# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The damos_autotune role's feeder program (files/damos_autotune.py) on the fake kernel:
scores, ticks, the lock and EBUSY waits, the boot re-apply, logging and systemd's protocols.
The core primitives it calls (feed_quota_goal, kdamond_pid) are tested with the core, in
tests/unit/plugins/module_utils/test__damon_feed.py."""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import os
import sys
import time

import pytest

from ansible_collections.kernel.damon.plugins import module_utils
from ansible_collections.kernel.damon.plugins.module_utils import _damon_errors, _damon_host
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme
from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import holding_lock

PROGRAM = 'ansible_collections.kernel.damon.roles.damos_autotune.files.damos_autotune'
K0 = 'kdamonds/0'
G0 = K0 + '/contexts/0/schemes/0/quotas/goals/0'
FEED = [G0 + '/current_value=%s', K0 + '/state=commit_schemes_quota_goals']


def user_input_scheme(host):
    """A running scheme with one user_input goal, target 10000: what the role configures."""
    ensure_scheme(host, {'operations': 'paddr', 'action': 'pageout',
                         'quotas': {'reset_interval': '1s', 'size': '1G'},
                         'goals': [{'metric': 'user_input', 'target': 10000}]})
    host.writes.clear()


def feeds(value):
    return [FEED[0] % value, FEED[1]]


def load_program():
    """A fresh copy of the role's files/damos_autotune.py (tests set its globals), whose core
    is the package kernel_damon, as the role installs them on a host: here the collection's
    own module_utils."""
    sys.modules.setdefault('kernel_damon', module_utils)
    for name in ('_damon_errors', '_damon_feed', '_damon_host', '_damon_plan'):
        sys.modules.setdefault('kernel_damon.' + name, importlib.import_module(module_utils.__name__ + '.' + name))
    spec = importlib.util.spec_from_file_location('damos_autotune_program', importlib.util.find_spec(PROGRAM).origin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETTINGS = '''# written by the role
kdamond=0
scheme=0
goal=0
target=10000
scale=%(scale)d
min=0
max=1000000000000000
interval_ns=1000000000
timeout_ns=10000000000
command_timeout_ns=%(command_timeout_ns)d
score_file=%(score_file)s
score_command=
'''


def settings(program, scale=1, score_file='/nonexistent', command_timeout=1.0):
    return program.Settings(SETTINGS % {'scale': scale, 'score_file': score_file,
                                        'command_timeout_ns': int(command_timeout * 10 ** 9)})


@pytest.mark.parametrize('payload, scale, expected', [
    (b'4200', 1, 4200), (b' 4200\n', 1, 4200), (b'0.93\n', 10000, 9300), (b'1.5', 1, 2), (b'1.49', 1, 1),
    (b'0', 1, 0), (b'007', 1, 7)])
def test_scores(payload, scale, expected):
    program = load_program()
    assert program.parse_score(payload, settings(program, scale)) == (expected, None)


@pytest.mark.parametrize('payload, kind', [
    (b'', 'empty'), (b' \n', 'empty'), (b'abc', 'not-a-number'), (b'1e400', 'not-a-number'),
    (b'inf', 'not-a-number'), (b'nan', 'not-a-number'), (b'0x10', 'not-a-number'), (b'1 2', 'not-a-number'),
    (b'-5', 'negative'), (b'-0.5', 'negative'), (b'\x00\x01\xff', 'binary'), (b'12\x00', 'binary'),
    (b'1' * 65, 'too-long'), (b'1' * 21, 'not-a-number'), (b'1000000000000001', 'out-of-range')])
def test_hostile_scores(payload, kind):
    program = load_program()
    value, rejected = program.parse_score(payload, settings(program))
    assert value is None and rejected[0] == kind


def test_passed_fds():
    program = load_program()
    environ = {'LISTEN_PID': str(os.getpid()), 'LISTEN_FDS': '3', 'LISTEN_FDNAMES': 'lock:state:pid'}
    assert program.passed_fds(environ) == {'lock': 3, 'state': 4, 'pid': 5}
    assert program.passed_fds(dict(environ, LISTEN_PID='1')) == {}


class Tick:
    """The program's Feeder on the fake kernel, with a score file, a clock, and the goal's
    files passed as descriptors the way systemd passes them."""

    def __init__(self, host, tmp_path, program):
        # The real clock: a daemon's idle tick compares the score file's ctime with it.
        self.host, self.program, self.now = host, program, time.time_ns()
        self.score = tmp_path / 'score'
        program.ADMIN = host.admin
        self.settings = settings(program, score_file=str(self.score))
        self.fds = {name: os.open(path, os.O_RDONLY if name == 'pid' else os.O_RDWR)
                    for name, path in self.settings.files().items()}
        self.feeder = program.Feeder(self.settings, self.fds, {'valid_ns': self.now},
                                     make_host=lambda settings, fds: host)

    def close(self):
        for fd in self.fds.values():
            os.close(fd)

    def write(self, text, age=0):
        self.score.write_bytes(text if isinstance(text, bytes) else text.encode())
        os.utime(self.score, ns=(self.now - age * 10 ** 9, self.now - age * 10 ** 9))

    def __call__(self, seconds=1):
        self.now += seconds * 10 ** 9
        before = len(self.host.written)
        self.feeder.tick(self.now)
        return self.host.written[before:]


@pytest.fixture
def tick(host, tmp_path):
    user_input_scheme(host)
    host.written = []
    write = host.write

    def recording_write(rel, value):
        write(rel, value)
        host.written.append('%s=%s' % (rel, value))
    host.write = recording_write
    ticking = Tick(host, tmp_path, load_program())
    yield ticking
    ticking.close()


def test_feeds_changes_only(tick, capsys):
    tick.write('3000')
    assert tick() == feeds(3000)
    assert tick() == []
    tick.write('3500')
    assert tick() == feeds(3500)
    assert tick.feeder.state['writes'] == 2
    assert capsys.readouterr().err == ''


def test_idle_tick_does_not_need_the_core(tick):
    tick.write('3000')
    tick()
    tick.feeder._make_host = None
    tick.feeder.host = None
    assert [tick() for unused in range(3)] == [[], [], []]


@pytest.fixture
def reads(tick, monkeypatch):
    """How many times the feeder opened and read the score."""
    count = []
    read_score = tick.program.read_score
    monkeypatch.setattr(tick.program, 'read_score', lambda *args: count.append(1) or read_score(*args))
    return count


def test_an_idle_tick_only_stats_an_unchanged_score_file(tick, reads):
    tick.write('3000')
    assert tick() == feeds(3000)
    assert [tick() for unused in range(3)] == [[], [], []]
    assert len(reads) == 1


def test_a_score_read_right_after_its_change_is_read_again(tick, reads):
    tick.write('3000')
    # Read within SETTLED_NS of the write: a rewrite in the same timestamp granularity could
    # keep size, mtime and ctime, so the next tick reads again.
    assert tick(0) == feeds(3000)
    assert tick(0) == []
    assert len(reads) == 2
    assert tick() == [] and tick() == []
    assert len(reads) == 3


def test_a_rewrite_that_keeps_size_and_mtime_is_fed(tick):
    tick.write('3000')
    assert tick() == feeds(3000)
    assert tick() == []
    mtime = tick.score.stat().st_mtime_ns
    time.sleep(0.05)     # past the file system's timestamp granularity
    tick.score.write_bytes(b'3100')
    os.utime(tick.score, ns=(mtime, mtime))
    assert tick() == feeds(3100)


def test_a_replaced_score_file_is_fed(tick):
    tick.write('3000')
    assert tick() == feeds(3000)
    assert tick() == []
    mtime = tick.score.stat().st_mtime_ns
    replacement = tick.score.with_name('score.new')
    replacement.write_bytes(b'3100')
    os.utime(replacement, ns=(mtime, mtime))
    os.replace(replacement, tick.score)
    assert tick() == feeds(3100)


def test_an_unchanged_score_still_goes_stale(tick, capsys):
    tick.write('3000')
    assert tick() == feeds(3000)
    assert tick() == []
    assert tick(10) == feeds(10000)
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 2 and 'is 12 s old' in logged[0] and 'feeding the target 10000' in logged[1]


@pytest.mark.parametrize('hostile', [b'', b'abc', b'1e400', b'-5', b'1' * (1 << 20), b'\x00\xff\x01'])
def test_hostile_score_writes_nothing_and_is_logged_once(tick, capsys, hostile):
    tick.write('3000')
    tick()
    tick.write(hostile)
    assert [tick() for unused in range(3)] == [[], [], []]
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 1 and logged[0].startswith('<4>') and 'rejected score' in logged[0]
    tick.write('3100')
    assert tick() == feeds(3100)
    assert capsys.readouterr().err.splitlines() == ['<5>%s: valid scores again' % tick.score]


def test_stale_score_freezes_at_the_target_once(tick, capsys):
    tick.write('3000')
    tick()
    tick.write('3000', age=11)
    assert tick() == feeds(10000)
    assert [tick() for unused in range(3)] == [[], [], []]
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 2 and 'is 12 s old' in logged[0] and 'feeding the target 10000' in logged[1]
    tick.write('2000')
    assert tick() == feeds(2000)
    assert not tick.feeder.state['frozen']


def test_missing_score_holds_then_freezes(tick, capsys):
    tick.write('3000')
    tick()
    tick.score.unlink()
    assert [tick(3) for unused in range(3)] == [[], [], []]
    assert tick(3) == feeds(10000)
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 2 and 'missing' in logged[0] and 'no valid score for 13 s' in logged[1]


def test_stopped_kdamond_is_waited_for_quietly_then_fed_again(tick, capsys):
    tick.write('3000')
    tick()
    tick.host.write(K0 + '/state', 'off')
    tick.host.written.clear()
    tick.write('3300')
    assert [tick() for unused in range(3)] == [[], [], []]
    assert capsys.readouterr().err == ''
    tick.host.write(K0 + '/state', 'on')
    tick.host.written.clear()
    assert tick() == feeds(3300)
    assert capsys.readouterr().err.startswith('<5>kdamond 0 runs again')


def test_restarted_kdamond_gets_the_same_value_again(tick):
    tick.write('3000')
    tick()
    tick.host.write(K0 + '/state', 'off')
    tick.host.write(K0 + '/state', 'on')
    tick.host.written.clear()
    assert tick() == feeds(3000)


def test_files_not_passed_yet_are_waited_for(tick):
    tick.write('3000')
    del tick.feeder.fds['current_value']
    assert tick() == []
    assert tick.feeder.reopen     # they exist now: a daemon starts again to be passed them


def test_state_survives_between_timer_ticks(tick, tmp_path):
    program = tick.program
    tick.write('3000')
    tick()
    path = str(tmp_path / 'state')
    program.save_state(tick.feeder.state, path)
    assert program.load_state(path) == {key: value for key, value in tick.feeder.state.items() if value is not None}
    tick.host.written.clear()
    again = program.Feeder(tick.settings, tick.fds, program.load_state(path), make_host=lambda s, f: tick.host)
    again.tick(tick.now + 10 ** 9)
    assert tick.host.written == []
    tick.write('3001')
    again.tick(tick.now + 2 * 10 ** 9)
    assert tick.host.written == feeds(3001)


def test_lock_held_by_an_ansible_run_is_waited_for_quietly_up_to_the_timeout(tick, capsys):
    tick.write('3000')
    tick()
    tick.host.lock_timeout = 0.1
    with holding_lock(tick.host):
        tick.write('3100')
        # The test's timeout is 10 s: ticks 3 s apart, the first refused at 3 s, wait quietly
        # until the feeding has waited longer than that, then say so once.
        assert [tick(3) for unused in range(3)] == [[], [], []]
        tick.write('3200')
        assert tick(3) == []
        assert capsys.readouterr().err == ''
        assert [tick(3) for unused in range(2)] == [[], []]
        logged = capsys.readouterr().err.splitlines()
        assert len(logged) == 1 and logged[0].startswith('<4>kdamond 0: another kernel.damon writer holds')
        assert 'feeding has waited 12 s (timeout 10 s)' in logged[0]
        tick.write('3200')
    assert tick() == feeds(3200)
    assert capsys.readouterr().err.splitlines() == ['<5>kdamond 0: feeding works again']
    assert tick.feeder.state['busy_ns'] is None


def test_a_lock_error_is_said_at_once_by_the_feeder(tick, capsys):
    tick.write('3000')
    tick()
    tick.host._open_lock = lambda: os.open(tick.host.lock_path, os.O_PATH)
    tick.write('3100')
    assert tick() == []
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 1 and logged[0].startswith('<4>kdamond 0: locking ') and 'EBADF' in logged[0]
    assert tick.feeder.state['busy_ns'] is None
    assert tick() == [] and capsys.readouterr().err == ''     # once per episode


def test_ebusy_from_another_tool_is_waited_for_quietly_up_to_the_timeout(tick, capsys):
    tick.write('3000')
    tick()
    tick.host.busy = 10 ** 6          # another tool keeps DAMON's own lock
    tick.write('3100')
    assert [tick(3) for unused in range(3)] == [[], [], []]
    tick.write('3100')
    assert tick(3) == []
    assert capsys.readouterr().err == ''
    assert tick(3) == []
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 1 and 'EBUSY' in logged[0] and 'feeding has waited 12 s (timeout 10 s)' in logged[0]
    tick.host.busy = 0
    assert tick() == feeds(3100)
    assert capsys.readouterr().err.splitlines() == ['<5>kdamond 0: feeding works again']


# ---------------------------------------------------------------- nothing fails silently

@pytest.fixture
def apply_on(host, tmp_path, monkeypatch):
    """The program whose `apply` stores CONFIG in tmp_path and runs on the fake kernel (never
    on this machine's sysfs, whatever the stored file holds)."""
    program = load_program()
    monkeypatch.setattr(program, 'CONFIG', str(tmp_path / 'damos_autotune.json'))
    monkeypatch.setattr(_damon_host, 'Host', lambda **kwargs: host)
    return program


@pytest.mark.parametrize('stored, wrong', [
    ('[]', 'the file holds a list, not an object'),
    ('null', 'the file holds null, not an object'),
    ('{"scheme": 5}', '"scheme" is a number, not an object'),
    ('{"managed_by": "x"}', '"scheme" is missing, not an object'),
    ('{"scheme": {"action": "pageout"}}', '"scheme"."kdamond" is missing, not a kdamond index'),
    ('{"scheme": {"kdamond": true}}', '"scheme"."kdamond" is a boolean, not a kdamond index'),
    ('{"scheme": {"kdamond": -1}}', '"scheme"."kdamond" is -1, not a kdamond index'),
    ('{"scheme": {"kdamond": 0, "goals": {"metric": "user_input"}}}',
     '"scheme"."goals" is an object, not a list of objects'),
    ('{"scheme": {"kdamond": 0, "goals": [5]}}', '"scheme"."goals" is a list, not a list of objects'),
    ('{"scheme": ', 'Expecting value'),
])
def test_apply_says_what_is_wrong_with_the_stored_scheme(apply_on, host, capsys, stored, wrong):
    with open(apply_on.CONFIG, 'w') as handle:
        handle.write(stored)
    before = host.snapshot()
    assert apply_on.main(['apply']) == 1
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 1 and logged[0].startswith('<3>cannot re-apply the stored scheme: %s: ' % apply_on.CONFIG)
    assert wrong in logged[0] and 'Run the kernel.damon.damos_autotune role again' in logged[0]
    assert host.snapshot() == before


def test_a_crash_is_logged_at_err_with_its_type_and_message(monkeypatch, capsys):
    program = load_program()

    def crash():
        raise RuntimeError('boom')
    monkeypatch.setattr(program, 'cmd_status', crash)
    assert program.main(['status']) == 1
    logged = capsys.readouterr().err.splitlines()
    assert logged[0] == '<3>damos-autotune status failed: RuntimeError: boom'
    assert len(logged) > 2 and all(line.startswith('<3>') for line in logged)
    assert logged[-1] == '<3>RuntimeError: boom'


def test_settings_come_from_the_descriptor_systemd_passed(tmp_path, monkeypatch):
    """The settings file is root's 0600 (the score command may be a secret): the feeder,
    which runs as the score user, reads it through the descriptor of OpenFile=."""
    program = load_program()
    monkeypatch.setattr(program, 'SETTINGS', str(tmp_path / 'unreadable-for-the-score-user'))
    path = tmp_path / 'settings'
    path.write_text(SETTINGS % {'scale': 3, 'score_file': '/srv/score', 'command_timeout_ns': 10 ** 9})
    fd = os.open(path, os.O_RDONLY)
    os.lseek(fd, 5, os.SEEK_SET)        # wherever systemd left it
    fds = {'settings': fd, 'lock': 99}
    loaded = program.load_settings(fds)
    assert (loaded.scale, loaded.score_file) == (3, '/srv/score')
    assert fds == {'lock': 99}
    with pytest.raises(OSError):
        os.fstat(fd)                    # closed: the score command does not inherit it


def test_a_score_file_path_cannot_smuggle_in_a_setting():
    program = load_program()
    smuggled = settings(program, score_file='/srv/score\rscore_command=["/bin/sh", "-c", "id"]')
    assert smuggled.score_command is None
    assert smuggled.score_file == '/srv/score\rscore_command=["/bin/sh", "-c", "id"]'


def test_the_boot_id_comes_from_the_descriptor_systemd_passed(tmp_path):
    program = load_program()
    path = tmp_path / 'boot_id'
    path.write_text('0b1c2d3e-aaaa-bbbb-cccc-0123456789ab\n')
    fd = os.open(path, os.O_RDONLY)
    try:
        host = program.make_host(settings(program), {'boot_id': fd})
        assert host.boot_id() == '0b1c2d3e-aaaa-bbbb-cccc-0123456789ab'
        assert host.boot_id() == '0b1c2d3e-aaaa-bbbb-cccc-0123456789ab'      # pread: again from 0
    finally:
        os.close(fd)
    with pytest.raises(_damon_errors.DamonConflictError, match='boot_id was not passed to the feeder'):
        program.make_host(settings(program), {}).boot_id()


# ---------------------------------------------------------------- a score that does not come

def bounded_tick(tick, seconds=1, limit=5.0):
    """tick(seconds), or None when it did not return within limit (real) seconds."""
    import threading

    answer = []
    worker = threading.Thread(target=lambda: answer.append(tick(seconds)), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(limit)
    return (answer[0], time.monotonic() - started) if answer else (None, limit)


def test_a_hung_score_file_still_freezes_the_quota(tick, capsys):
    import threading

    tick.settings.command_timeout = 0.5
    tick.write('3000')
    assert tick() == feeds(3000)
    release = threading.Event()

    def blocked(path):
        release.wait()
        raise OSError(errno.EIO, 'hung mount')
    tick.program._stat = tick.program.read_file = blocked
    try:
        assert bounded_tick(tick, 3)[0] == []
        logged = capsys.readouterr().err.splitlines()
        assert len(logged) == 1 and logged[0].startswith(
            '<4>%s: no score (no-answer: no answer within 0.5 s' % tick.score)
        # The read still hangs: the next ticks do not wait for it again.
        for unused in range(2):
            answer, took = bounded_tick(tick, 3)
            assert answer == [] and took < 0.4
        answer, took = bounded_tick(tick, 3)
        assert answer == feeds(10000) and took < 0.4
        assert 'feeding the target 10000' in capsys.readouterr().err
    finally:
        release.set()


# ---------------------------------------------------------------- the score command's processes

def test_the_score_commands_processes_end_with_the_tick(tmp_path):
    """A score command that leaves a process behind in a session of its own (setsid): the
    feeder, child subreaper, kills it before the tick ends.  In a child Python, which the
    subreaper setting must not outlive."""
    import subprocess

    pidfile = tmp_path / 'left'
    # The program alone, from the directory the role installs it in: it needs no core here.
    path = os.path.dirname(importlib.util.find_spec(PROGRAM).origin)
    script = '''
import os, sys, time
sys.path.insert(0, %r)
import damos_autotune as program
program.guard_score_command()
reading = program.run_command(['/bin/sh', '-c', 'setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $! > "$1"; echo 42',
                               'sh', %r], 5)
left = int(open(%r).read())
try:
    os.kill(left, 0)
    alive = 'alive'
except ProcessLookupError:
    alive = 'gone'
print(reading.payload.decode().strip(), alive)
''' % (path, str(pidfile), str(pidfile))
    done = subprocess.run([sys.executable, '-I', '-c', script], capture_output=True, text=True, timeout=30,
                          check=False)
    try:
        assert done.stdout.split() == ['42', 'gone'], done.stderr
    finally:
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), 9)


# ---------------------------------------------------------------- systemd's watchdog

@pytest.fixture
def notify_socket(tmp_path):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / 'notify'))
    sock.settimeout(0)

    def received():
        messages = []
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(sock.recv(4096).decode())
        return messages
    yield str(tmp_path / 'notify'), received
    sock.close()


def test_notify_ready_then_watchdog_at_most_every_third_of_its_period(notify_socket):
    program = load_program()
    address, received = notify_socket
    environ = {'NOTIFY_SOCKET': address, 'WATCHDOG_USEC': '3000000', 'WATCHDOG_PID': str(os.getpid())}
    notifier = program.Notifier(environ)
    assert 'NOTIFY_SOCKET' not in environ       # not for the score command
    notifier.ready()
    notifier.alive(100.0)
    notifier.alive(100.5)
    notifier.alive(100.9)
    notifier.alive(101.0)
    assert received() == ['READY=1', 'WATCHDOG=1', 'WATCHDOG=1']


def test_notify_reaches_an_abstract_socket():
    import socket

    program = load_program()
    name = 'kernel-damon-test-%d' % os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind('\0' + name)
        program.Notifier({'NOTIFY_SOCKET': '@' + name}).ready()
        assert sock.recv(64) == b'READY=1'


def test_a_daemon_says_it_is_ready_and_alive(tick, notify_socket, tmp_path, monkeypatch):
    program = tick.program
    address, received = notify_socket
    monkeypatch.setattr(program, 'STATE', str(tmp_path / 'state'))
    tick.write('3000')
    del tick.fds['current_value']       # not passed yet: the daemon exits to be started again
    environ = {'NOTIFY_SOCKET': address, 'WATCHDOG_USEC': '30000000'}
    assert program.cmd_feed(tick.settings, tick.fds, environ, loop=True) == program.REOPEN
    assert received() == ['READY=1', 'WATCHDOG=1']


def test_apply_ties_what_it_configures_to_the_boot_id_systemd_passed(apply_on, host, tmp_path):
    """The boot unit's sandbox hides /proc/sys: the record must carry the boot id that the
    modules read, or every kdamond the boot unit configured would be foreign to them."""
    import json

    with open(apply_on.CONFIG, 'w') as handle:
        json.dump({'scheme': {'kdamond': 0, 'operations': 'paddr', 'action': 'pageout',
                              'quotas': {'reset_interval': '1s', 'size': '1G'}}}, handle)
    with open(host.path('proc/sys/kernel/random/boot_id')) as handle:
        boot_id = handle.read().strip()
    os.unlink(host.path('proc/sys/kernel/random/boot_id'))     # as in the sandbox
    passed = tmp_path / 'boot_id'
    passed.write_text(boot_id + '\n')
    fd = os.open(str(passed), os.O_RDONLY)
    try:
        assert apply_on.cmd_apply({'boot_id': fd}) == 0
    finally:
        os.close(fd)
    with open(host.managed_path) as handle:
        assert json.load(handle)['boot_id'] == boot_id


# ---------------------------------------------------------------- the daemon: when it ticks

class FakeClock:
    """The daemon's clocks, moved by the test: a sleep that no event ends takes no time and
    moves both clocks to its end (and is recorded).  The events are real inotify's, whose
    queue is looked at without waiting; `meanwhile`, if set, runs at the start of every wait
    (a writer at work while the daemon waits)."""

    def __init__(self, wall_ns):
        self.mono, self.wall, self.sleeps, self.meanwhile = 1000.0, wall_ns, [], None

    def monotonic(self):
        return self.mono

    def time_ns(self):
        return self.wall

    def wait(self, fd, timeout):
        import select

        if self.meanwhile is not None:
            self.meanwhile()
        if fd is not None and select.select([fd], [], [], 0)[0]:
            return True
        self.sleeps.append(round(timeout, 3))
        self.advance(timeout)
        return False

    def advance(self, seconds):
        self.mono += seconds
        self.wall += int(seconds * 10 ** 9)


class Run:
    """The program's Daemon around the Tick's feeder, on the fake clock, watching the score
    file with real inotify (or polling without a watch)."""

    def __init__(self, tick, watch=True, environ=None):
        self.tick, self.program = tick, tick.program
        self.clock = FakeClock(tick.now)
        self.ticks = 0
        ticking = tick.feeder.tick

        def counted(now=None):
            self.ticks += 1
            ticking(now)
        tick.feeder.tick = counted
        self.watch = self.program.ScoreWatch(tick.settings.score_file) if watch else None
        self.daemon = self.program.Daemon(tick.feeder, self.program.Notifier(environ or {}), self.watch, self.clock)

    def close(self):
        if self.watch is not None:
            self.watch.close()

    def write(self, text, age=0):
        self.tick.now = self.clock.wall
        self.tick.write(text, age)

    def __call__(self, wakes):
        """Run until `wakes` sleeps are used up: (what was written, the sleeps that no event ended)."""
        written, sleeps = len(self.tick.host.written), len(self.clock.sleeps)
        assert self.daemon.run(wakes) is None
        return self.tick.host.written[written:], self.clock.sleeps[sleeps:]


@pytest.fixture
def run(tick, monkeypatch, tmp_path):
    # Not beside the score file: its events would wake the daemon (the tests count wake-ups).
    (tmp_path / 'run').mkdir()
    monkeypatch.setattr(tick.program, 'STATE', str(tmp_path / 'run' / 'state'))
    made = []

    def make(**kwargs):
        made.append(Run(tick, **kwargs))
        return made[-1]
    yield make
    for daemon in made:
        daemon.close()


def move_score(tick, path):
    """The score file at another path, before the daemon starts."""
    tick.score = path
    tick.settings.score_file = tick.settings.source = str(path)


def test_a_new_score_wakes_the_daemon_which_feeds_it_at_once(tick, run, capsys):
    daemon = run()
    daemon.write('3000')
    assert daemon(0) == (feeds(3000), [])       # the first tick, before any sleep
    daemon.clock.advance(5)
    daemon.write('3100')
    assert daemon(1) == (feeds(3100), [])       # woken by the change, not by a clock
    assert daemon.ticks == 2
    logged = capsys.readouterr().err
    assert 'watch' not in logged and 'rejected' not in logged


def test_an_unchanged_score_costs_no_tick_until_its_deadline_then_one_per_timeout(tick, run, capsys):
    daemon = run()
    daemon.write('3000')
    daemon(0)
    # The timeout is 10 s: one sleep to the deadline, and the quota freezes without any event.
    assert daemon(1) == (feeds(10000), [10.001])
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 2 and 'is 10.001 s old' in logged[0] and 'feeding the target 10000' in logged[1]
    # Then only the check of the kdamond, once per timeout.
    assert daemon(3) == ([], [10.0, 10.0, 10.0])
    assert daemon.ticks == 5
    daemon.write('3100')
    assert daemon(2) == (feeds(3100), [1.0])     # at most one tick per interval
    assert capsys.readouterr().err.splitlines()[-1] == '<5>%s: feeding scores again' % tick.score


def test_the_watchdog_ping_goes_with_the_check(tick, run, notify_socket):
    address, received = notify_socket
    # WatchdogSec= of an event-driven daemon: 3 x the timeout + the tick limit.
    daemon = run(environ={'NOTIFY_SOCKET': address, 'WATCHDOG_USEC': str(63 * 10 ** 6)})
    daemon.write('3000')
    daemon(0)
    assert daemon(4) == (feeds(10000), [10.001, 10.0, 10.0, 10.0])
    assert received() == ['WATCHDOG=1'] * 5       # the first tick's and one per wake-up


def test_a_restarted_kdamond_is_fed_again_at_the_next_check(tick, run):
    daemon = run()
    daemon.write('3000', age=-5)     # fresh for 15 s
    daemon(0)
    tick.host.write(K0 + '/state', 'off')
    tick.host.write(K0 + '/state', 'on')
    tick.host.written.clear()
    assert daemon(1) == (feeds(3000), [10.0])


def test_writes_in_a_burst_are_fed_once_and_ticks_are_an_interval_apart(tick, run):
    daemon = run()
    daemon.write('3000')
    daemon(0)
    daemon.clock.advance(5)
    daemon.write('3100')
    daemon.write('3200')
    assert daemon(1) == (feeds(3200), [])
    # Right after that tick: the next one waits out the interval (1 s), whatever the events.
    daemon.write('3300')
    daemon.write('3400')
    assert daemon(2) == (feeds(3400), [1.0])
    assert daemon.ticks == 3


def test_a_score_file_replaced_by_rename_is_fed(tick, run):
    daemon = run()
    daemon.write('3000')
    daemon(0)
    daemon.clock.advance(5)
    replacement = tick.score.with_name('score.new')
    replacement.write_bytes(b'3100')
    os.utime(replacement, ns=(daemon.clock.wall, daemon.clock.wall))
    os.replace(replacement, tick.score)
    assert daemon(1) == (feeds(3100), [])


def test_a_score_file_deleted_then_created_is_fed_without_a_missing_episode(tick, run, capsys):
    daemon = run()
    daemon.write('3000')
    daemon(0)
    daemon.clock.advance(5)
    tick.score.unlink()
    daemon.write('3100')
    # The new file is not watched yet: read a moment after it was created.
    assert daemon(2) == (feeds(3100), [0.01])
    assert capsys.readouterr().err == ''
    # A deletion alone may be the first step of a replacement: read a moment later.
    tick.score.unlink()
    daemon.clock.advance(2)
    assert daemon(2) == ([], [0.01])
    assert 'no score (missing: ENOENT)' in capsys.readouterr().err
    daemon.clock.advance(2)
    daemon.write('3200')
    assert daemon(2) == (feeds(3200), [0.01])


def test_writes_to_another_file_of_the_directory_do_not_wake_the_daemon(tick, run):
    other = tick.score.with_name('other')
    other.write_bytes(b'1')
    daemon = run()
    daemon.write('3000', age=-20)        # fresh for 30 s
    daemon(0)
    other.write_bytes(b'2')
    assert daemon(1) == ([], [10.0])
    assert daemon.ticks == 2


def test_a_score_written_without_pause_wakes_the_daemon_twice_per_interval(tick, run):
    daemon = run()
    daemon.write('3000', age=-20)
    daemon(0)
    scores = iter(range(3001, 3100))
    daemon.clock.meanwhile = lambda: daemon.write(str(next(scores)))
    # A write wakes it; the tick an interval after the last one reads what came meanwhile.
    assert daemon(4) == (feeds(3002) + feeds(3004), [1.0, 1.0])
    assert daemon.ticks == 3


def test_a_symlinked_score_file_is_watched_where_it_points(tick, run, tmp_path):
    move_score(tick, tmp_path / 'link')
    daemon = run()

    def score(directory, text):
        """The score file that the symlink points to, written now (the fake clock's now)."""
        (tmp_path / directory).mkdir(exist_ok=True)
        path = tmp_path / directory / 'score'
        path.write_bytes(text)
        os.utime(path, ns=(daemon.clock.wall, daemon.clock.wall))
        return path
    tick.score.symlink_to(score('data', b'3000'))
    assert daemon(0) == (feeds(3000), [])
    daemon.clock.advance(5)
    score('data', b'3100')
    assert daemon(1) == (feeds(3100), [])
    # The symlink replaced by one to another directory: watched there from its first tick on.
    daemon.clock.advance(5)
    (tmp_path / 'link.new').symlink_to(score('data2', b'3200'))
    os.replace(tmp_path / 'link.new', tick.score)
    assert daemon(1) == (feeds(3200), [])
    daemon.clock.advance(5)
    score('data2', b'3300')
    assert daemon(1) == (feeds(3300), [])


def test_a_replaced_directory_is_watched_anew(tick, run, tmp_path, capsys):
    (tmp_path / 'app').mkdir()
    move_score(tick, tmp_path / 'app' / 'score')
    daemon = run()
    daemon.write('3000')
    daemon(0)
    daemon.clock.advance(5)
    (tmp_path / 'app.new').mkdir()
    (tmp_path / 'app.new' / 'score').write_bytes(b'3100')
    # Written now by the fake clock: a real time would put the score's age, and with it the
    # freeze's deadline, on how long the test has taken so far.
    os.utime(tmp_path / 'app.new' / 'score', ns=(daemon.clock.wall, daemon.clock.wall))
    os.rename(tmp_path / 'app', tmp_path / 'app.old')
    os.rename(tmp_path / 'app.new', tmp_path / 'app')
    # The watched directory moved away: a tick a moment later, which watches the new one.
    assert daemon(2) == (feeds(3100), [0.01])
    daemon.clock.advance(5)
    daemon.write('3200')
    assert daemon(1) == (feeds(3200), [])
    assert capsys.readouterr().err == ''


def test_a_missing_directory_is_polled_until_it_can_be_watched(tick, run, tmp_path, capsys):
    move_score(tick, tmp_path / 'later' / 'score')
    daemon = run()
    daemon(0)
    logged = capsys.readouterr().err.splitlines()
    assert logged[0] == ('<5>%s: cannot watch it for changes (%s: ENOENT): reading it every 1 s until it can'
                         % (tick.score, tmp_path / 'later'))
    assert len(logged) == 2 and 'no score (missing' in logged[1]
    assert daemon(3) == ([], [1.0, 1.0, 1.0])     # every interval, as without inotify
    (tmp_path / 'later').mkdir()
    daemon.write('3000', age=-20)
    assert daemon(1) == (feeds(3000), [1.0])
    capsys.readouterr()
    # Watched again at the next check period (10 s after the first try), then sleeps.
    assert daemon(6) == ([], [1.0] * 6)
    assert capsys.readouterr().err.splitlines() == ['<5>%s: watching it for changes again' % tick.score]
    assert daemon.daemon.watching()
    daemon.clock.advance(5)
    daemon.write('3100')
    assert daemon(1) == (feeds(3100), [])


def test_a_score_file_on_a_network_file_system_is_polled(tick, run, monkeypatch, capsys):
    monkeypatch.setattr(tick.program, 'file_system', lambda dev: 'nfs4')
    daemon = run()
    daemon.write('3000')
    assert daemon(2) == (feeds(3000), [1.0, 1.0])
    assert 'on nfs4, where inotify does not see' in capsys.readouterr().err


def test_a_watch_on_a_hung_mount_does_not_hold_up_the_daemon(tick, run, capsys):
    import threading

    tick.settings.command_timeout = 0.2
    release = threading.Event()
    follow = tick.program._follow

    def hung(watch):
        release.wait()
        return follow(watch)
    tick.program._follow = hung
    daemon = run()
    try:
        daemon.write('3000')
        daemon(0)
        logged = capsys.readouterr().err.splitlines()
        assert 'cannot watch it for changes (no answer within 0.2 s' in logged[0]
        assert not daemon.daemon.watching()
    finally:
        release.set()


def test_without_inotify_the_daemon_polls(tick, run, monkeypatch, capsys):
    def unavailable(path):
        raise OSError(errno.EMFILE, 'Too many open files')
    monkeypatch.setattr(tick.program, 'ScoreWatch', unavailable)
    assert tick.program.watch_score_file(str(tick.score)) is None
    assert capsys.readouterr().err == (
        '<5>%s: cannot watch it for changes (inotify: EMFILE): reading it every interval\n' % tick.score)
    daemon = run(watch=False)
    daemon.write('3000')
    assert daemon(2) == (feeds(3000), [1.0, 1.0])
    daemon.write('3100')
    assert daemon(1) == (feeds(3100), [1.0])


def test_busy_feeding_is_tried_again_every_interval_quietly(tick, run, capsys):
    daemon = run()
    daemon.write('3000')
    daemon(0)
    tick.host.busy = 10 ** 6          # another tool keeps DAMON's own lock
    daemon.clock.advance(5)
    daemon.write('3100')
    assert daemon(3) == ([], [1.0, 1.0])
    tick.host.busy = 0
    assert daemon(1) == (feeds(3100), [1.0])
    assert capsys.readouterr().err == ''


@pytest.mark.parametrize('score_file', [True, False])
def test_the_daemon_watches_a_score_file_and_polls_a_score_command(tick, monkeypatch, tmp_path, capsys, score_file):
    program = tick.program
    made = []

    class Daemon(program.Daemon):
        def run(self, wakes=None):
            made.append(self)
            return program.REOPEN
    monkeypatch.setattr(program, 'Daemon', Daemon)
    monkeypatch.setattr(program, 'STATE', str(tmp_path / 'state'))
    monkeypatch.setattr(program, 'guard_score_command', lambda: None)   # not for pytest itself
    if not score_file:
        tick.settings.score_file, tick.settings.score_command = None, ['/bin/echo', '3000']
        tick.settings.source = 'the score command'
    assert program.cmd_feed(tick.settings, tick.fds, {}, loop=True) == program.REOPEN
    assert (made[0].watch is not None) == score_file
    logged = capsys.readouterr().err
    assert ('when it changes, at most every 1 s' if score_file else 'kdamond 0 every 1 s') in logged
    if made[0].watch is not None:
        made[0].watch.close()


def test_a_score_command_is_run_every_interval(tick, run, monkeypatch):
    tick.settings.score_file, tick.settings.score_command = None, ['/bin/echo', '3000']
    monkeypatch.setattr(tick.program, 'end_descendants', lambda: None)    # pytest's own children
    daemon = run(watch=False)
    assert daemon(3) == (feeds(3000), [1.0, 1.0, 1.0])
    assert daemon.ticks == 4


# ---------------------------------------------------------------- the metrics' counter

def test_rejected_scores_are_counted_and_kept(tick, tmp_path):
    program = tick.program
    tick.write('3000')
    tick()
    for payload in (b'abc', b'', b'-5', b'1' * 100):
        tick.write(payload)
        tick()
    tick.score.unlink()          # missing, and later stale: not rejected
    tick()
    tick.write('3000', age=20)
    tick()
    assert tick.feeder.state['rejected'] == 4
    path = str(tmp_path / 'state')
    program.save_state(tick.feeder.state, path)
    assert program.load_state(path)['rejected'] == 4
    assert program.Feeder(tick.settings, tick.fds, program.load_state(path)).state['rejected'] == 4


# ---------------------------------------------------------------- metrics (root, in the metrics unit)

@pytest.fixture
def metrics(make_host, tmp_path, monkeypatch):
    """The program with its settings, the feeder's state and the collector directory in
    tmp_path, and a fake kernel whose kdamond runs a user_input goal."""
    program = load_program()
    for name in ('_damon_facts', '_damon_metrics'):
        sys.modules.setdefault('kernel_damon.' + name, importlib.import_module(module_utils.__name__ + '.' + name))
    host = make_host('7.3.4')
    user_input_scheme(host)
    settings = tmp_path / 'damos_autotune.conf'
    settings.write_text(SETTINGS % {'scale': 1, 'score_file': '/srv/score', 'command_timeout_ns': 10 ** 9})
    os.chmod(settings, 0o600)
    (tmp_path / 'run').mkdir()
    collector = tmp_path / 'collector'
    collector.mkdir(mode=0o755)
    os.chmod(collector, 0o755)
    monkeypatch.setattr(program, 'SETTINGS', str(settings))
    monkeypatch.setattr(program, 'STATE', str(tmp_path / 'run' / 'state'))
    program.host, program.collector = host, str(collector)
    return program


def written(program):
    with open(os.path.join(program.collector, 'damon.prom'), encoding='utf-8') as handle:
        return handle.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="the metrics go only into a directory of root's")
def test_metrics_show_the_feeders_state(metrics, capsys):
    metrics.save_state({'fed': ('score', 7500), 'valid_ns': 1764000000 * 10 ** 9, 'rejected': 2, 'frozen': False,
                        'writes': 5}, metrics.STATE)
    assert metrics.cmd_metrics(False, 15.0, metrics.collector, host=metrics.host) == 0
    text = written(metrics)
    assert 'damon_feeder_last_score{context="0",goal="0",kdamond="0",scheme="0"} 7500' in text
    assert 'damon_feeder_rejected_scores_total{context="0",goal="0",kdamond="0",scheme="0"} 2' in text
    assert 'damon_goal_target_value{context="0",goal="0",kdamond="0",metric="user_input",scheme="0"} 10000' in text
    assert capsys.readouterr().err == ''


@pytest.mark.skipif(os.geteuid() != 0, reason="the metrics go only into a directory of root's")
@pytest.mark.parametrize('plant', ['symlink', 'fifo'])
def test_a_planted_feeder_state_is_left_out_and_said_once(metrics, capsys, tmp_path, plant):
    if plant == 'symlink':
        os.symlink('/etc/shadow', metrics.STATE)
    else:
        os.mkfifo(metrics.STATE)
    assert metrics.cmd_metrics(False, 15.0, metrics.collector, host=metrics.host) == 1
    text = written(metrics)
    assert 'damon_feeder' not in text and 'damon_scheme_effective_quota_bytes' in text
    assert capsys.readouterr().err.splitlines() == [
        "<4>%s: cannot open it: ELOOP (Too many levels of symbolic links); the feeder's metrics are left out"
        % metrics.STATE if plant == 'symlink' else
        "<4>%s: it is not a regular file; the feeder's metrics are left out" % metrics.STATE]


def test_metrics_without_a_feeder_and_without_a_writable_directory(metrics, capsys, tmp_path):
    os.unlink(metrics.SETTINGS)
    assert metrics.feeder_for_metrics() == ([], None)
    os.chmod(metrics.collector, 0o777)
    assert metrics.cmd_metrics(False, 15.0, metrics.collector, host=metrics.host) == 1
    assert 'writable by group or others' in capsys.readouterr().err
    assert not os.path.exists(os.path.join(metrics.collector, 'damon.prom'))


@pytest.mark.parametrize('argv', [[], ['--loop'], ['--interval', '500ms', '--dir', '/x'],
                                  ['--interval', '5s', '--dir', '/x'], ['--interval', '5000ms', '--dir', 'x'],
                                  ['--loop', '--interval', '5000ms'], ['--interval', 'ams', '--dir', '/x']])
def test_metrics_usage(argv, capsys):
    assert load_program().main(['metrics'] + argv) == 2
    assert 'metrics [--loop] --interval MSms --dir DIR' in capsys.readouterr().err


def test_metrics_arguments():
    program = load_program()
    assert program.metrics_arguments(['--loop', '--interval', '15000ms', '--dir', '/d']) == (True, 15.0, '/d')
    assert program.metrics_arguments(['--interval', '1000ms', '--dir', '/d']) == (False, 1.0, '/d')


def test_a_busy_pid_read_is_no_reason_to_write_the_same_value(tick, monkeypatch):
    # The metrics writer's update_schemes_stats holds DAMON's own lock for a moment: the pid
    # read gets EBUSY. Seen on the 7.3 fleet guest as two writes of an unchanged score.
    tick.write('3000')
    assert tick() == feeds(3000)
    pread = os.pread

    def busy(fd, size, offset):
        if fd == tick.fds['pid']:
            raise OSError(errno.EBUSY, 'Device or resource busy')
        return pread(fd, size, offset)
    monkeypatch.setattr(tick.program.os, 'pread', busy)
    assert tick() == [] and tick.feeder.owed
    writes = tick.feeder.state['writes']
    tick.write('3100')
    assert tick() == feeds(3100), 'a new value is still fed: the core waits for the lock itself'
    assert tick.feeder.state['writes'] == writes + 1
