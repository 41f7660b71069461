#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: damos_autotune_files
short_description: Install or remove the files of the damos_autotune role in one module run
version_added: 0.1.0
author:
  - kernel.damon maintainers (!UNKNOWN)
description:
  - The installer of the role C(kernel.damon.damos_autotune), which passes it the feeder, the
    collection's core, their configuration and the units. A collection's role cannot carry a
    module of its own, so it is here; its options follow the role, not a promise to other users.
  - Removes what O(absent) lists, creates the directories in O(directories) and writes the
    files in O(files) and O(secret_files), all root's, each only when its content, mode or owner
    differs, in one module run for all the role's files instead of two per file.
  - Every input is checked before the first change. A file is replaced atomically (a temporary
    file in its directory, synced, then renamed over it); a symlink in its place is replaced and
    a symlink in O(absent) removed, never followed. Anything else in a file's place (a
    directory, a FIFO) fails naming the path. Temporary files that a killed run left beside a
    file are removed.
extends_documentation_fragment:
  - kernel.damon._damon.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  absent:
    description:
      - Files and directories to remove (a directory with all it holds), before anything is written.
    type: list
    elements: path
    default: []
  directories:
    description:
      - Directories to create, mode C(0755), root's; parents first.
    type: list
    elements: path
    default: []
  files:
    description:
      - Files to write, root's.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content_b64:
        description:
          - The content, base64-encoded, so that templating cannot turn a JSON file into a dictionary
            on the way. Not in the result's C(invocation); the diff shows the content.
        type: str
        required: true
      mode:
        description: Octal mode, such as C(0644).
        type: str
        required: true
  pending:
    description:
      - A file that marks changes not yet followed by what the caller does after this module (the
        role reloads systemd and restarts the feeder). It is written, empty, root's and C(0600),
        before the first file of O(files) or O(secret_files) changes, so a run killed between this
        module and that restart leaves it behind; RV(pending) is true while it exists, and the
        caller removes it once the restart is done. Its directory must exist or be in
        O(directories).
    type: path
  secret_files:
    description:
      - Files like O(files) whose content is in neither the log nor the diff (the feeder's settings
        may hold a token of the score command).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content_b64:
        description: The content, base64-encoded.
        type: str
        required: true
      mode:
        description: Octal mode, such as C(0600).
        type: str
        required: true
"""

EXAMPLES = r"""
# What the role does; use the role rather than this module.
- name: Install a program and its settings
  kernel.damon.damos_autotune_files:
    directories: [/usr/local/lib/example]
    files:
      - path: /usr/local/lib/example/run.py
        content_b64: "{{ lookup('ansible.builtin.file', 'run.py', rstrip=false) | b64encode }}"
        mode: "0644"
    secret_files:
      - path: /etc/example.conf
        content_b64: "{{ lookup('ansible.builtin.template', 'example.conf.j2') | b64encode }}"
        mode: "0600"
  become: true

- name: Remove them
  kernel.damon.damos_autotune_files:
    absent: [/usr/local/lib/example, /etc/example.conf]
  become: true
"""

RETURN = r"""
changed_paths:
  description: The directories and files that were (in check mode, would be) created, changed or removed.
  type: list
  elements: str
  returned: always
pending:
  description:
    - Whether the O(pending) file exists after this run (in check mode, would exist), because
      this run changed a file or an earlier run did and was not followed by the restart.
  type: bool
  returned: when O(pending) is set
"""

import base64
import binascii
import errno
import os
import re
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

SECRET = '(secret: not shown)\n'

# One file of files or secret_files. content_b64 stays out of the result's invocation (a few
# hundred kB, and the secret); the diff shows the content of files.
FILE_OPTIONS = dict(
    path=dict(type='path', required=True),
    content_b64=dict(type='str', required=True, no_log=True),
    mode=dict(type='str', required=True))


def _mode(value, where):
    try:
        mode = int(value, 8)
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ValueError('%s: invalid mode %r; accepted: an octal mode such as 0644' % (where, value))
    return mode


def _wanted(module):
    """Decode and check every input before the first write."""
    for option in ('absent', 'directories'):
        for path in module.params[option]:
            if not os.path.isabs(path) or os.path.normpath(path) == '/':
                raise ValueError('%s: %s is not an absolute path below /' % (option, path))
    wanted = []
    for option, secret in (('files', False), ('secret_files', True)):
        for index, item in enumerate(module.params[option]):
            where = '%s[%d].path %s' % (option, index, item['path'])
            if not os.path.isabs(item['path']):
                raise ValueError('%s: not an absolute path' % where)
            try:
                content = base64.b64decode(item['content_b64'], validate=True)
            except (binascii.Error, ValueError):
                raise ValueError('%s: content_b64 is not base64' % where)
            wanted.append((item['path'], content, _mode(item['mode'], where), secret))
    return wanted


def _absent(path, check, diffs):
    """Remove PATH (a directory with its contents); return True when it existed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not check:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    diffs.append({'before_header': path, 'after_header': path,
                  'before': 'present\n', 'after': 'absent\n'})
    return True


def _directory(path, check):
    """Create PATH or make it root's and 0755; return True when something changed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not check:
            os.mkdir(path, 0o755)
            os.chown(path, 0, 0, follow_symlinks=False)
            os.chmod(path, 0o755)
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError('%s exists and is not a directory (a symlink is not followed)' % path)
    if stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0 and st.st_gid == 0:
        return False
    if not check:
        os.chown(path, 0, 0, follow_symlinks=False)
        os.chmod(path, 0o755)
    return True


def _current(path, size):
    """(content or None, fd or None) of the regular file at PATH; None when absent or a symlink.

    Reads at most SIZE + 1 bytes: a longer file differs anyway."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ValueError('%s exists and is not a regular file' % path)
    chunks, left = [], size + 1
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b''.join(chunks), fd


def _write(path, content, mode):
    """Replace PATH atomically by a root-owned file with CONTENT and MODE."""
    directory = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
    except OSError as e:
        raise OSError(e.errno, e.strerror, path)
    try:
        os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _file(path, content, mode, secret, check, diffs):
    """Make PATH hold CONTENT with MODE, root's; return True when something changed."""
    current, fd = _current(path, len(content))
    try:
        if current == content:
            st = os.fstat(fd)
            if stat.S_IMODE(st.st_mode) == mode and st.st_uid == 0 and st.st_gid == 0:
                return False
            if not check:
                os.fchown(fd, 0, 0)
                os.fchmod(fd, mode)
            diffs.append({'before_header': path + ' (mode, owner)', 'after_header': path + ' (mode, owner)',
                          'before': '%04o %d:%d\n' % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid),
                          'after': '%04o 0:0\n' % mode})
            return True
    finally:
        if fd is not None:
            os.close(fd)
    if not check:
        _write(path, content, mode)
    before = '' if current is None else current.decode('utf-8', 'replace')
    after = content.decode('utf-8', 'replace')
    if secret:
        before, after = ('' if current is None else SECRET), SECRET
    diffs.append({'before_header': path, 'after_header': path, 'before': before, 'after': after})
    return True


def _leftovers(path, check, diffs):
    """Remove the temporary files that a write of PATH killed halfway left beside it (named
    as _write names them); return their paths."""
    directory, name = os.path.split(path)
    pattern = re.compile(r'\A\.%s\.[A-Za-z0-9_]{8}\Z' % re.escape(name))
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    removed = []
    for found in sorted(names):
        leftover = os.path.join(directory, found)
        if pattern.match(found) and stat.S_ISREG(os.lstat(leftover).st_mode):
            if not check:
                os.unlink(leftover)
            diffs.append({'before_header': leftover, 'after_header': leftover,
                          'before': 'present\n', 'after': 'absent\n'})
            removed.append(leftover)
    return removed


def _pending(path, check):
    """Leave the marker at PATH (nothing in check mode)."""
    if check:
        return
    current, fd = _current(path, 0)
    if fd is not None:
        os.close(fd)
    if current is None:
        _write(path, b'', 0o600)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            absent=dict(type='list', elements='path', default=[]),
            directories=dict(type='list', elements='path', default=[]),
            files=dict(type='list', elements='dict', default=[], options=FILE_OPTIONS),
            pending=dict(type='path'),
            # The paths and modes are no secret; content_b64 is kept out of the log as in files.
            secret_files=dict(type='list', elements='dict', default=[], no_log=False, options=FILE_OPTIONS),
        ),
        supports_check_mode=True,
    )
    check = module.check_mode
    marker = module.params['pending']
    changed, diffs, extra = [], [], {}
    try:
        wanted = _wanted(module)
        if marker is not None:
            if not os.path.isabs(marker):
                raise ValueError('pending: %s is not an absolute path' % marker)
            extra['pending'] = os.path.lexists(marker)
        for path in module.params['absent']:
            if _absent(path, check, diffs):
                changed.append(path)
        for path in module.params['directories']:
            if _directory(path, check):
                changed.append(path)
        for path, content, mode, secret in wanted:
            changed.extend(_leftovers(path, check, diffs))
            # The marker goes down before the first file changes, not after: a run killed in
            # between must leave it.
            if marker is not None and not extra['pending'] and _file(path, content, mode, secret, True, []):
                _pending(marker, check)
                extra['pending'] = True
            if _file(path, content, mode, secret, check, diffs):
                changed.append(path)
    except ValueError as e:
        module.fail_json(msg=str(e), changed_paths=changed)
    except OSError as e:
        module.fail_json(msg='%s: %s' % (e.filename or 'damos_autotune_files', os.strerror(e.errno)),
                         errno=e.errno, changed_paths=changed)
    module.exit_json(changed=bool(changed), changed_paths=changed,
                     diff=diffs if module._diff else [], **extra)


if __name__ == '__main__':
    main()
