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
