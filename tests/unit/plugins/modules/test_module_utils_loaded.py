# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each entry point loads of the core, read from the import statements: the readers never
load what plans or writes a configuration, and the damos_autotune role installs exactly the
files its feeder and boot unit load."""

from __future__ import annotations

import ast
import os

import pytest
import yaml

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..')
MODULE_UTILS = os.path.join(ROOT, 'plugins', 'module_utils')
WRITERS = {'_damon_stage', '_damon_plan', '_damon_journal', '_damon_feed'}


def _imports(path, package):
    """The module_utils files that a file imports: by the collection's name, relatively, or as
    the package kernel_damon (the feeder on a host)."""
    with open(path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ''
            if node.level == 1 and package:
                found.add(module)
            elif module.startswith('ansible_collections.kernel.damon.plugins.module_utils.'):
                found.add(module.rsplit('.', 1)[1])
            elif module.startswith('kernel_damon.'):
                found.add(module.split('.', 1)[1])
    return found


def _loaded(path):
    """Every module_utils file that importing path loads, transitively."""
    todo, seen = list(_imports(path, False)), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_imports(os.path.join(MODULE_UTILS, name + '.py'), True))
    return seen


@pytest.mark.parametrize('module', ['damos_facts', 'damos_sample'])
def test_readers_load_nothing_that_writes_a_configuration(module):
    loaded = _loaded(os.path.join(ROOT, 'plugins', 'modules', module + '.py'))
    assert '_damon_facts' in loaded
    assert not loaded & WRITERS, sorted(loaded & WRITERS)


def test_the_role_installs_what_its_feeder_and_boot_unit_load():
    role = os.path.join(ROOT, 'roles', 'damos_autotune')
    with open(os.path.join(role, 'vars', 'main.yml'), encoding='utf-8') as handle:
        installed = yaml.safe_load(handle)['__damos_autotune_core_files']
    loaded = _loaded(os.path.join(role, 'files', 'damos_autotune.py'))
    assert sorted(name + '.py' for name in loaded) == sorted(installed)
    # The metrics writer (damos-autotune metrics) reads the facts; nothing loads the modules' glue.
    assert '_damon_metrics' in loaded and not loaded & {'_damon_module', '_damon_sample'}


def test_the_core_imports_nothing_but_the_standard_library_and_itself():
    for name in os.listdir(MODULE_UTILS):
        if name.endswith('.py') and name != '__init__.py':
            with open(os.path.join(MODULE_UTILS, name), encoding='utf-8') as handle:
                tree = ast.parse(handle.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != '__future__':
                    assert not node.module.startswith(('ansible', 'kernel_damon')), (name, node.module)
