# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos_facts as Ansible runs it: the argument spec of build_module(), then main() on the
fake kernel: the facts it returns, and the refresh keywords it writes only when asked and
never in check mode."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.kernel.damon.plugins.modules import damos_facts

REFRESH = 'kdamonds/0/state=update_schemes_stats'


@pytest.fixture
def running(running_on):
    """A running scheme of kernel.damon's, and the module working on its host."""
    return running_on(damos_facts)


# ---------------------------------------------------------------- build_module()

def test_defaults(build):
    params = build(damos_facts).params
    assert (params['kdamonds'], params['refresh']) == (None, True)


def test_kdamonds_are_indexes(run, build):
    assert build(damos_facts, kdamonds=['0', 2]).params['kdamonds'] == [0, 2]
    result, status = run(damos_facts.build_module, {'kdamonds': ['first']})
    assert status == 1 and result['failed']
    assert "option 'kdamonds'" in result['msg'] and 'unable to convert to int' in result['msg']


def test_refresh_is_a_boolean(run):
    result, status = run(damos_facts.build_module, {'refresh': 'sometimes'})
    assert status == 1 and "'refresh'" in result['msg'] and 'unable to convert to bool' in result['msg']


def test_writer_options_are_refused(run):
    result, status = run(damos_facts.build_module, {'take_over': True})
    assert status == 1 and 'Unsupported parameters' in result['msg'] and 'take_over' in result['msg']


# ---------------------------------------------------------------- main() on the fake kernel

def test_facts_of_a_running_scheme_refreshed_first(run, running):
    result, status = run(damos_facts.main)
    assert status == 0 and not result['changed'] and not result.get('failed')
    facts = result['ansible_facts']['damon']
    assert facts['available'] and facts['kernel'] == running.release and facts['managed'] == [0]
    kdamond = facts['kdamonds'][0]
    assert (kdamond['index'], kdamond['state'], kdamond['managed']) == (0, 'on', True)
    assert kdamond['pid'] == int(running.read('kdamonds/0/pid'))
    assert kdamond['contexts'][0]['schemes'][0]['action'] == 'pageout'
    assert REFRESH in running.writes


@pytest.mark.parametrize('check, refresh', [(True, True), (False, False)])
def test_no_refresh_in_check_mode_or_when_told(run, running, check, refresh):
    before = running.snapshot()
    result, status = run(damos_facts.main, {'refresh': refresh}, check=check)
    assert status == 0 and result['ansible_facts']['damon']['kdamonds'][0]['state'] == 'on'
    assert running.writes == [] and running.snapshot() == before


def test_only_the_kdamonds_asked_for(run, running):
    result, status = run(damos_facts.main, {'kdamonds': [1]})
    assert status == 0 and result['ansible_facts']['damon']['kdamonds'] == []
    assert running.writes == []


def test_a_kernel_without_damon_sysfs_is_a_fact_not_a_failure(run, host, on_fake):
    shutil.rmtree(host.admin)
    assert not os.path.exists(host.admin)
    on_fake(damos_facts, host)
    result, status = run(damos_facts.main)
    assert status == 0 and not result.get('failed')
    facts = result['ansible_facts']['damon']
    assert not facts['available'] and facts['kdamonds'] == []
    assert facts['reason'] == ('/sys/kernel/mm/damon/admin does not exist: this kernel has no DAMON sysfs interface '
                               '(CONFIG_DAMON_SYSFS)')
