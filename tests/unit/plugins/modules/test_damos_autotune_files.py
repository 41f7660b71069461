# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos_autotune_files, the damos_autotune role's installer, run as Ansible runs a module
(a process with its arguments) on files in a temporary directory."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

MODULE = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'plugins', 'modules',
                      'damos_autotune_files.py')

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the module makes its files root\'s')


def b64(text):
    return base64.b64encode(text.encode()).decode()


def run(tmp_path, check=False, **args):
    args.update(_ansible_check_mode=check, _ansible_diff=True)
    path = tmp_path / 'args.json'
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    done = subprocess.run([sys.executable, MODULE, str(path)], capture_output=True, text=True, check=False)
    return json.loads(done.stdout)


def tree(root):
    """{relative path: (mode, content or None)} of everything under ROOT but args.json."""
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            if name == 'args.json':
                continue
            st = os.lstat(path)
            content = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, 'rb') as handle:
                    content = handle.read()
            found[os.path.relpath(path, root)] = (st.st_mode, content)
    return found


def inputs(root):
    return dict(
        directories=[str(root / 'lib'), str(root / 'lib' / 'pkg')],
        files=[{'path': str(root / 'lib' / 'pkg' / 'core.py'), 'content_b64': b64('X = 1\n'), 'mode': '0644'},
               {'path': str(root / 'lib' / 'run'), 'content_b64': b64('#!/bin/sh\n'), 'mode': '0755'}],
        secret_files=[{'path': str(root / 'lib' / 'settings'), 'content_b64': b64('token=hunter2\n'),
                       'mode': '0600'}])


def test_check_mode_predicts_and_writes_nothing_then_a_run_installs_then_nothing_changes(tmp_path):
    predicted = run(tmp_path, check=True, **inputs(tmp_path))
    assert predicted['changed'] is True
    assert tree(tmp_path) == {}
    installed = run(tmp_path, **inputs(tmp_path))
    assert installed['changed_paths'] == predicted['changed_paths']
    assert len(installed['changed_paths']) == 5
    found = tree(tmp_path)
    assert found['lib/pkg/core.py'] == (0o100644, b'X = 1\n')
    assert found['lib/run'] == (0o100755, b'#!/bin/sh\n')
    assert found['lib/settings'] == (0o100600, b'token=hunter2\n')
    assert found['lib'][0] == 0o40755
    again = run(tmp_path, **inputs(tmp_path))
    assert again['changed'] is False and again['changed_paths'] == []
    assert tree(tmp_path) == found


def test_the_secret_is_neither_in_the_diff_nor_in_the_result(tmp_path):
    result = run(tmp_path, **inputs(tmp_path))
    assert 'hunter2' not in json.dumps(result)
    assert b64('token=hunter2\n') not in json.dumps(result)
    shown = {d['after_header']: d['after'] for d in result['diff']}
    assert shown[str(tmp_path / 'lib' / 'pkg' / 'core.py')] == 'X = 1\n'
    assert shown[str(tmp_path / 'lib' / 'settings')] == '(secret: not shown)\n'


def test_a_wrong_mode_alone_is_mended_without_rewriting(tmp_path):
    run(tmp_path, **inputs(tmp_path))
    target = tmp_path / 'lib' / 'run'
    inode = os.stat(target).st_ino
    os.chmod(target, 0o777)
    result = run(tmp_path, **inputs(tmp_path))
    assert result['changed_paths'] == [str(target)]
    assert os.stat(target).st_mode == 0o100755 and os.stat(target).st_ino == inode


def test_a_symlink_in_place_of_a_file_is_replaced_not_followed(tmp_path):
    run(tmp_path, **inputs(tmp_path))
    victim = tmp_path / 'victim'
    victim.write_text('untouched\n')
    target = tmp_path / 'lib' / 'pkg' / 'core.py'
    os.unlink(target)
    os.symlink(victim, target)
    result = run(tmp_path, **inputs(tmp_path))
    assert result['changed_paths'] == [str(target)]
    assert not os.path.islink(target) and target.read_text() == 'X = 1\n'
    assert victim.read_text() == 'untouched\n'


def test_a_fifo_in_place_of_a_file_fails_naming_it(tmp_path):
    run(tmp_path, **inputs(tmp_path))
    target = tmp_path / 'lib' / 'run'
    os.unlink(target)
    os.mkfifo(target)
    result = run(tmp_path, **inputs(tmp_path))
    assert result['failed'] is True
    assert result['msg'] == '%s exists and is not a regular file' % target


@pytest.mark.parametrize('change, message', [
    ({'path': 'relative'}, 'files[0].path relative: not an absolute path'),
    ({'content_b64': '*'}, 'content_b64 is not base64'),
    ({'mode': '0999'}, "invalid mode '0999'; accepted: an octal mode such as 0644"),
])
def test_bad_input_is_named_and_nothing_is_written(tmp_path, change, message):
    args = inputs(tmp_path)
    args['files'][0].update(change)
    result = run(tmp_path, **args)
    assert result['failed'] is True and message in result['msg']
    assert tree(tmp_path) == {}


def test_absent_removes_files_and_trees_and_no_symlink_target(tmp_path):
    run(tmp_path, **inputs(tmp_path))
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'keep').write_text('keep\n')
    os.symlink(victim, tmp_path / 'link')
    gone = [str(tmp_path / 'lib'), str(tmp_path / 'link'), str(tmp_path / 'never')]
    predicted = run(tmp_path, check=True, absent=gone)
    assert predicted['changed_paths'] == gone[:2] and os.path.isdir(tmp_path / 'lib')
    removed = run(tmp_path, absent=gone)
    assert removed['changed_paths'] == gone[:2]
    assert sorted(tree(tmp_path)) == ['victim', 'victim/keep']
    assert run(tmp_path, absent=gone)['changed'] is False


def test_absent_refuses_the_root_directory(tmp_path):
    result = run(tmp_path, absent=['/'])
    assert result['failed'] is True and result['msg'] == 'absent: / is not an absolute path below /'


def test_pending_is_left_before_the_first_file_changes_and_stays_until_removed(tmp_path):
    marker = str(tmp_path / 'lib' / 'restart-pending')
    fresh = run(tmp_path, check=True, pending=marker, **inputs(tmp_path))
    assert fresh['pending'] is True and tree(tmp_path) == {}
    installed = run(tmp_path, pending=marker, **inputs(tmp_path))
    assert installed['changed'] is True and installed['pending'] is True
    assert tree(tmp_path)['lib/restart-pending'] == (0o100600, b'')
    # A run killed before the caller's restart: the next run changes no file, and still says so.
    again = run(tmp_path, pending=marker, **inputs(tmp_path))
    assert again['changed'] is False and again['pending'] is True
    # The caller restarted and removed the marker: nothing is pending any more.
    os.unlink(marker)
    done = run(tmp_path, pending=marker, **inputs(tmp_path))
    assert done['changed'] is False and done['pending'] is False
    assert 'lib/restart-pending' not in tree(tmp_path)


def test_pending_goes_down_before_a_file_that_cannot_be_written(tmp_path):
    marker = str(tmp_path / 'lib' / 'restart-pending')
    first = inputs(tmp_path)
    run(tmp_path, **first)
    # core.py changes, then run cannot be written (a directory in its place): the run fails
    # half done, and the marker says a restart is owed.
    os.unlink(tmp_path / 'lib' / 'run')
    os.mkdir(tmp_path / 'lib' / 'run')
    changed = dict(first)
    changed['files'] = [dict(first['files'][0], content_b64=b64('X = 2\n')), first['files'][1]]
    failed = run(tmp_path, pending=marker, **changed)
    assert failed['failed'] is True and 'lib/run' in failed['msg']
    assert tree(tmp_path)['lib/pkg/core.py'] == (0o100644, b'X = 2\n')
    assert tree(tmp_path)['lib/restart-pending'] == (0o100600, b'')


def test_no_marker_when_nothing_changes_and_no_pending_key_without_the_option(tmp_path):
    marker = str(tmp_path / 'lib' / 'restart-pending')
    first = run(tmp_path, **inputs(tmp_path))
    assert 'pending' not in first
    quiet = run(tmp_path, pending=marker, **inputs(tmp_path))
    assert quiet['changed'] is False and quiet['pending'] is False
    assert not os.path.lexists(marker)
    relative = run(tmp_path, pending='restart-pending', **inputs(tmp_path))
    assert relative['failed'] is True and 'pending: restart-pending is not an absolute path' in relative['msg']


def test_temporary_files_of_a_killed_write_are_removed_and_nothing_else(tmp_path):
    run(tmp_path, **inputs(tmp_path))
    lib = tmp_path / 'lib'
    (lib / '.run.k1ll3d_x').write_bytes(b'half')
    (lib / '.run.short').write_bytes(b'not ours: not 8 characters')
    (lib / '.other.abcdefgh').write_bytes(b'not ours: another name')
    os.symlink('/etc/passwd', lib / '.settings.abcd1234')
    cleaned = run(tmp_path, **inputs(tmp_path))
    assert cleaned['changed'] is True
    assert cleaned['changed_paths'] == [str(lib / '.run.k1ll3d_x')]
    left = sorted(os.listdir(lib))
    assert left == ['.other.abcdefgh', '.run.short', '.settings.abcd1234', 'pkg', 'run', 'settings']
    assert run(tmp_path, **inputs(tmp_path))['changed'] is False
