# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics on the fake kernel: what the textfile says, that promtool accepts it,
the refresh that never waits for a writer, and the file written where only root may write."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import DamonError
from ansible_collections.kernel.damon.plugins.module_utils._damon_facts import gather_facts
from ansible_collections.kernel.damon.plugins.module_utils._damon_host import read_user_file
from ansible_collections.kernel.damon.plugins.module_utils._damon_metrics import (
    FAMILIES,
    Restarts,
    collect,
    metrics_facts,
    render,
    samples,
    write_textfile,
)
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme
from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import holding_lock, scheme

FEEDER = {'kdamond': 0, 'scheme': 0, 'goal': 0, 'fed': ('score', 7500), 'valid_ns': 1764000000 * 10 ** 9,
          'rejected': 3, 'frozen': False, 'writes': 12}
USER_INPUT = [{'metric': 'user_input', 'target': 10000, 'current': 10000}]


def parse(text):
    """{(name, frozenset(labels)): value} of a textfile, and the TYPE of each family."""
    values, types = {}, {}
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            name, kind = line.split()[2:]
            types[name] = kind
        elif line and not line.startswith('#'):
            match = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
            labels = frozenset(re.findall(r'([a-z_]+)="([^"]*)"', match.group(2) or ''))
            values[(match.group(1), labels)] = float(match.group(3))
    return values, types


def value(values, name, **labels):
    return values[(name, frozenset((key, str(label)) for key, label in labels.items()))]


def running_host(make_host, release='7.3.4', **changes):
    host = make_host(release)
    ensure_scheme(host, scheme(**changes))
    return host


def test_the_textfile_shows_quota_goal_stats_psi_and_feeder(make_host):
    host = running_host(make_host, goals=USER_INPUT)
    text = collect(host, 1764000123.5, 15.0, Restarts(), [FEEDER])
    values, types = parse(text)
    scheme_labels = {'kdamond': 0, 'context': 0, 'scheme': 0}
    assert value(values, 'damon_available') == 1
    assert value(values, 'damon_metrics_refresh_timestamp_seconds') == 1764000123.5
    assert value(values, 'damon_kdamond_running', kdamond=0) == 1
    assert value(values, 'damon_kdamond_pid', kdamond=0) == 4242
    assert value(values, 'damon_scheme_effective_quota_bytes', **scheme_labels) == 2 ** 30
    assert value(values, 'damon_scheme_quota_reset_interval_seconds', **scheme_labels) == 1.0
    assert value(values, 'damon_scheme_info', operations='paddr', action='pageout', **scheme_labels) == 1
    assert value(values, 'damon_goal_target_value', goal=0, metric='user_input', **scheme_labels) == 10000
    assert value(values, 'damon_goal_current_value', goal=0, metric='user_input', **scheme_labels) == 10000
    assert value(values, 'damon_memory_pressure_some_seconds_total') == 170e-6
    feeder_labels = dict(scheme_labels, goal=0)
    assert value(values, 'damon_feeder_last_score', **feeder_labels) == 7500
    assert value(values, 'damon_feeder_last_update_timestamp_seconds', **feeder_labels) == 1764000000
    assert value(values, 'damon_feeder_rejected_scores_total', **feeder_labels) == 3
    assert value(values, 'damon_feeder_stale', **feeder_labels) == 0
    for name in ('damon_scheme_tried_bytes_total', 'damon_scheme_applied_bytes_total',
                 'damon_scheme_quota_exceeds_total', 'damon_kdamond_refresh_interval_seconds'):
        assert any(key[0] == name for key in values), name
    # Every family written is declared with its type; counters end in _total.
    assert set(types) == {key[0] for key in values}
    assert all((kind == 'counter') == name.endswith('_total') for name, kind in types.items())
    # The stats were refreshed first: the collection configured this kdamond.
    assert host.writes[-2:] == ['kdamonds/0/state=update_schemes_stats',
                                'kdamonds/0/state=update_schemes_effective_quotas']


@pytest.mark.parametrize('release', ['6.9.12', '6.12.117', '7.3.4'])
def test_the_refresh_reads_what_the_facts_would_show(make_host, release):
    """metrics_facts() reads only the files the metrics show: the text is the one the whole
    facts (gather_facts) make, for every kernel's layout, two kdamonds (one stopped), two
    schemes and two goals."""
    host = running_host(make_host, release, goals=USER_INPUT + [{'metric': 'some_mem_psi_us', 'target': '2ms'}])
    ensure_scheme(host, scheme(scheme=1))
    ensure_scheme(host, scheme(kdamond=1, operations='vaddr', pid=1234, action='stat', stop_kdamonds=True))
    host.write('kdamonds/1/state', 'off')
    for facts in (gather_facts(host, refresh=False), metrics_facts(host)):
        assert [kdamond['state'] for kdamond in facts['kdamonds']] == ['on', 'off']
    assert render(samples(metrics_facts(host), 5.0, 15.0, Restarts())) == render(
        samples(gather_facts(host, refresh=False), 5.0, 15.0, Restarts()))


def test_promtool_accepts_the_textfile(make_host, tmp_path):
    promtool = shutil.which('promtool')
    if promtool is None:
        pytest.fail('promtool is not on PATH: tests/tools/units puts the one tests/tools/bootstrap unpacks there')
    host = running_host(make_host, goals=USER_INPUT)
    text = collect(host, 1764000123.5, 15.0, Restarts(), [FEEDER])
    proc = subprocess.run([promtool, 'check', 'metrics'], input=text, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, '', '')
    # promtool reads what it is given: a broken line fails.
    proc = subprocess.run([promtool, 'check', 'metrics'], input=text + 'damon_bad{x="1" 1\n', capture_output=True,
                          text=True, check=False)
    assert proc.returncode != 0


def test_a_stopped_kdamond_and_a_stale_feeder(make_host):
    host = running_host(make_host, goals=USER_INPUT)
    host.write('kdamonds/0/state', 'off')
    writes = len(host.writes)
    values, unused = parse(collect(host, 1.0, 15.0, Restarts(), [dict(FEEDER, frozen=True, fed=('target', 10000))]))
    assert value(values, 'damon_kdamond_running', kdamond=0) == 0
    assert value(values, 'damon_kdamond_pid', kdamond=0) == -1
    assert value(values, 'damon_feeder_stale', kdamond=0, context=0, scheme=0, goal=0) == 1
    assert value(values, 'damon_feeder_last_score', kdamond=0, context=0, scheme=0, goal=0) == 10000
    assert len(host.writes) == writes, 'a stopped kdamond is not asked to refresh'


def test_a_kdamond_that_refreshes_itself_is_not_asked(make_host):
    host = running_host(make_host)
    host.write('kdamonds/0/refresh_ms', '1000')
    writes = len(host.writes)
    values, unused = parse(collect(host, 1.0, 15.0, Restarts()))
    assert value(values, 'damon_kdamond_refresh_interval_seconds', kdamond=0) == 1.0
    assert len(host.writes) == writes


def test_an_older_kernel_has_no_refresh_ms_and_no_effective_quota(make_host):
    host = running_host(make_host, '6.8.0', goals=USER_INPUT)
    values, unused = parse(collect(host, 1.0, 15.0, Restarts()))
    assert not any(key[0] in ('damon_kdamond_refresh_interval_seconds', 'damon_scheme_effective_quota_bytes')
                   for key in values)
    assert host.writes[-1] == 'kdamonds/0/state=update_schemes_stats'


def test_the_refresh_never_waits_for_a_writer(make_host):
    host = running_host(make_host)
    host.lock_timeout = 60.0
    writes = len(host.writes)
    with holding_lock(host):
        done = []
        worker = threading.Thread(target=lambda: done.append(collect(host, 1.0, 15.0, Restarts())))
        worker.start()
        worker.join(10)
        assert done, 'collect() waited for the lock'
    assert len(host.writes) == writes and host.lock_timeout == 60.0
    assert 'damon_scheme_effective_quota_bytes' in done[0]


def test_others_kdamonds_are_shown_but_never_written(make_host):
    host = running_host(make_host)
    os.unlink(host.managed_path)
    writes = len(host.writes)
    values, unused = parse(collect(host, 1.0, 15.0, Restarts()))
    assert value(values, 'damon_kdamond_running', kdamond=0) == 1
    assert len(host.writes) == writes


def test_without_damon_the_file_says_so(make_host):
    host = make_host('6.1.0')
    shutil.rmtree(host.admin)
    values, unused = parse(collect(host, 1.0, 15.0, Restarts()))
    assert value(values, 'damon_available') == 0


def test_restarts_count_new_pids_only():
    restarts = Restarts()
    assert restarts.update([{'index': 0, 'pid': 100}]) == {0: 0}
    assert restarts.update([{'index': 0, 'pid': 100}]) == {0: 0}
    assert restarts.update([{'index': 0, 'pid': -1}]) == {0: 0}
    assert restarts.update([{'index': 0, 'pid': 200}, {'index': 1, 'pid': -1}]) == {0: 1, 1: 0}
    assert restarts.update([{'index': 0, 'pid': 300}, {'index': 1, 'pid': 7}]) == {0: 2, 1: 0}


def test_label_values_are_escaped_and_unknown_names_refused():
    text = render([('damon_scheme_info', {'kdamond': 0, 'context': 0, 'scheme': 0, 'operations': 'a"b\\c\nd',
                                          'action': 'x'}, 1)])
    assert 'operations="a\\"b\\\\c\\nd"' in text
    with pytest.raises(KeyError):
        render([('damon_made_up', {}, 1)])
    assert all(name.startswith('damon_') for name in FAMILIES)


def test_samples_need_no_host():
    facts = {'available': False, 'kdamonds': [], 'memory_psi': None}
    assert samples(facts, 5.0, 15.0, Restarts()) == [
        ('damon_available', {}, False), ('damon_metrics_refresh_timestamp_seconds', {}, 5.0),
        ('damon_metrics_refresh_interval_seconds', {}, 15.0)]


# ---------------------------------------------------------------- the file

def collector_dir(tmp_path):
    path = tmp_path / 'collector'
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    return str(path)


def test_the_textfile_is_replaced_whole(tmp_path):
    directory = collector_dir(tmp_path)
    write_textfile(directory, 'damon.prom', 'damon_available 1\n', allow_uid=os.geteuid())
    write_textfile(directory, 'damon.prom', 'damon_available 0\n', allow_uid=os.geteuid())
    path = os.path.join(directory, 'damon.prom')
    with open(path, encoding='utf-8') as handle:
        assert handle.read() == 'damon_available 0\n'
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'
    assert os.listdir(directory) == ['damon.prom'], 'no temporary file is left'


def test_a_leftover_temporary_file_is_replaced(tmp_path):
    directory = collector_dir(tmp_path)
    leftover = os.path.join(directory, '.damon.prom.%d.tmp' % os.getpid())
    os.symlink('/etc/passwd', leftover)
    write_textfile(directory, 'damon.prom', 'damon_available 1\n', allow_uid=os.geteuid())
    assert os.listdir(directory) == ['damon.prom']


def test_a_killed_writer_s_temporary_file_goes_and_a_live_one_s_stays(tmp_path):
    directory = collector_dir(tmp_path)
    child = subprocess.Popen(['sleep', '30'])
    try:
        child_dead = subprocess.Popen(['true'])
        child_dead.wait()
        live, dead = '.damon.prom.%d.tmp' % child.pid, '.damon.prom.%d.tmp' % child_dead.pid
        for entry in (live, dead, '.other.prom.1.tmp', 'notes.txt'):
            with open(os.path.join(directory, entry), 'w', encoding='utf-8') as handle:
                handle.write('x')
        write_textfile(directory, 'damon.prom', 'damon_available 1\n', allow_uid=os.geteuid())
        assert sorted(os.listdir(directory)) == sorted(['damon.prom', live, '.other.prom.1.tmp', 'notes.txt'])
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize('problem', ['symlink', 'world-writable', 'group-writable', 'missing'])
def test_the_collector_directory_must_be_roots_alone(tmp_path, problem):
    directory = collector_dir(tmp_path)
    if problem == 'symlink':
        os.symlink(directory, str(tmp_path / 'link'))
        directory = str(tmp_path / 'link')
    elif problem == 'missing':
        directory = str(tmp_path / 'nowhere')
    else:
        os.chmod(directory, 0o777 if problem == 'world-writable' else 0o775)
    with pytest.raises(DamonError, match='metrics directory'):
        write_textfile(directory, 'damon.prom', 'damon_available 1\n', allow_uid=os.geteuid())
    assert not os.path.exists(os.path.join(directory, 'damon.prom'))


@pytest.mark.skipif(os.geteuid() != 0, reason='needs another owner')
def test_a_directory_of_another_user_is_refused(tmp_path):
    directory = collector_dir(tmp_path)
    os.chown(directory, 1000, 1000)
    with pytest.raises(DamonError, match='owned by uid 1000'):
        write_textfile(directory, 'damon.prom', 'x 1\n')


# ---------------------------------------------------------------- the feeder's state, read by root

@pytest.mark.parametrize('kind', ['symlink', 'fifo', 'hardlink', 'large', 'directory-symlink'])
def test_the_feeder_state_is_read_only_when_it_is_a_plain_file(tmp_path, kind):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    path = str(run_dir / 'state')
    secret = tmp_path / 'secret'
    secret.write_text('valid_ns=1\n')
    if kind == 'symlink':
        os.symlink(str(secret), path)
    elif kind == 'fifo':
        os.mkfifo(path)
    elif kind == 'hardlink':
        os.link(str(secret), path)
    elif kind == 'large':
        with open(path, 'w', encoding='ascii') as handle:
            handle.write('x' * 5000)
    else:
        (run_dir / 'state').write_text('valid_ns=1\n')
        os.symlink(str(run_dir), str(tmp_path / 'link'))
        path = str(tmp_path / 'link' / 'state')
    text, problem = read_user_file(path, 4096)
    assert text is None and problem


def test_the_feeder_state_is_read(tmp_path):
    (tmp_path / 'state').write_text('valid_ns=1\n')
    assert read_user_file(str(tmp_path / 'state'), 4096) == ('valid_ns=1\n', None)
    assert read_user_file(str(tmp_path / 'gone'), 4096) == (None, None)
