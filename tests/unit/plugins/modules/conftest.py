# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's build_module() or main() in the test's process, with its arguments
passed the way Ansible passes them, and main() on the fake kernel instead of this machine's."""

from __future__ import annotations

import contextlib
import json
import os
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import warnings

from ansible_collections.kernel.damon.plugins.module_utils import _damon_host, _damon_module
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:
    # ansible-core before 2.19 reads the arguments from basic._ANSIBLE_ARGS alone.
    @contextlib.contextmanager
    def patch_module_args(args=None):
        payload = json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}).encode()
        with mock.patch.object(basic, '_ANSIBLE_ARGS', payload):
            yield


@pytest.fixture(autouse=True)
def no_real_host(monkeypatch):
    """A module test never reaches this machine's DAMON: a Host over the real root fails."""
    init = _damon_host.Host.__init__

    def guarded(self, root='/', **kwargs):
        if os.path.realpath(root) == '/':
            raise AssertionError('a module under test built a Host over this machine\'s root')
        init(self, root=root, **kwargs)
    monkeypatch.setattr(_damon_host.Host, '__init__', guarded)


def _internal(check, diff):
    # no_log: AnsibleModule would log its invocation to this machine's syslog.
    return {'_ansible_check_mode': check, '_ansible_diff': diff, '_ansible_no_log': True}


@pytest.fixture
def build():
    """build(module, **args): the module's AnsibleModule, as build_module() makes it from ARGS."""
    def make(module, **args):
        with patch_module_args(dict(args, **_internal(False, False))):
            return module.build_module()
    return make


@pytest.fixture
def run(capsys):
    """run(entry, args, check=False, diff=False): call ENTRY (a module's main or build_module),
    which must end the module the way Ansible sees it end (exit_json or fail_json: JSON on
    stdout, then SystemExit); returns that JSON result, its warnings as plain messages, and
    the exit status."""
    def call(entry, args=None, check=False, diff=False):
        # Warnings are gathered process-wide until a result carries them: start empty.
        getattr(warnings, '_global_warnings', []).clear()
        capsys.readouterr()
        with patch_module_args(dict(args or {}, **_internal(check, diff))):
            with pytest.raises(SystemExit) as exited:
                entry()
        result = json.loads(capsys.readouterr().out)
        if 'warnings' in result:
            # Strings before ansible-core 2.19, then WarningSummary objects: their messages.
            result['warnings'] = [item if isinstance(item, str) else item['event']['msg']
                                  for item in result['warnings']]
        return result, exited.value.code
    return call


@pytest.fixture
def on_fake(monkeypatch):
    """on_fake(module, host): the module's main() works on HOST, a FakeHost, and no other (the
    modules' main() makes its Host in _damon_module)."""
    def patch(module, host):
        def make(run_command=None):
            host.run_command = run_command
            return host
        assert module.main.__module__ == module.__name__
        monkeypatch.setattr(_damon_module, 'Host', make)
    return patch


@pytest.fixture
def running_on(host, on_fake):
    """running_on(module): a running scheme of kernel.damon's with a 1 GiB size quota on HOST,
    and MODULE's main() working on that host; returns the host."""
    def start(module):
        ensure_scheme(host, {'operations': 'paddr', 'action': 'pageout',
                             'quotas': {'reset_interval': '1s', 'size': '1G'}})
        host.writes.clear()
        on_fake(module, host)
        return host
    return start
