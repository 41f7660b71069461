# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Ansible side of the kernel.damon modules: the argument-spec pieces they share and
their main(), a writer's (damos_scheme, damos_quota_goal) or a reader's (damos_facts,
damos_sample).  The only file of module_utils that knows about AnsibleModule; the core
below it is pure standard library.

Private to this collection: no promise of a stable Python API.  Every spec helper returns
a fresh copy, so a module may extend what it gets without changing what the next module
gets.  Option values are handed to the core unparsed: it owns the unit rules (``500us``,
``1G``, ``5%``) and the validation against the running kernel.  Choices come from the
model's tables (_damon_model).
"""

from __future__ import annotations

import copy

from ._damon_errors import DamonError
from ._damon_host import Host
from ._damon_model import GOAL_METRICS, goal_scope

_TARGET_ADDRESS = dict(
    kdamond=dict(type='int', default=0),
    scheme=dict(type='int', default=0),
)

# Options of every module that writes.
_WRITER = dict(
    take_over=dict(type='bool', default=False),
    lock_timeout=dict(type='int', default=60),
)

_GOAL = dict(
    metric=dict(type='str', choices=list(GOAL_METRICS)),
    # A time for some_mem_psi_us, a ratio for *_bp, a plain integer for user_input:
    # 'raw' so that the core sees '500us' and 500 alike and applies the unit rules.
    target=dict(type='raw'),
    current=dict(type='int'),
    nid=dict(type='int'),
    path=dict(type='str'),
)

# A goal given as an element of damos_scheme's exact goals list is created from
# scratch whenever the number of goals changes, so it must be complete.
_GOAL_ELEMENT_REQUIRED_IF = [('metric', metric, goal_scope(metric)) for metric in GOAL_METRICS
                             if goal_scope(metric)]


def target_address_spec():
    """kdamond and scheme indexes, both defaulting to 0."""
    return copy.deepcopy(_TARGET_ADDRESS)


def writer_spec():
    """The options of every module that writes: take_over, the only way to write a kdamond
    this collection did not configure, and lock_timeout, how long to wait for another
    writer of this collection."""
    return copy.deepcopy(_WRITER)


def goal_options():
    """The options of one quota goal, as damos_quota_goal takes them at its top level.

    Nothing is required here: an omitted option keeps what the goal has, and the core
    insists on metric and target only when it creates the goal.
    """
    return copy.deepcopy(_GOAL)


def goals_list_spec():
    """The goals option of damos_scheme: a list of complete goals, given = exactly these."""
    options = goal_options()
    options['metric']['required'] = True
    options['target']['required'] = True
    return dict(
        type='list',
        elements='dict',
        options=options,
        required_if=copy.deepcopy(_GOAL_ELEMENT_REQUIRED_IF),
    )


def run_writer(module, ensure):
    """main() of a module that writes: ensure(host, params, check_mode) from _damon_plan, its
    warnings as Ansible warnings, its diff in diff mode, a DamonError as the failure."""
    try:
        host = Host(run_command=module.run_command)
        host.set_lock_timeout(module.params['lock_timeout'])
        result = ensure(host, dict(module.params), check_mode=module.check_mode)
    except DamonError as err:
        module.fail_json(msg=str(err))
    for warning in result.get('warnings') or []:
        module.warn(warning)
    output = dict(
        changed=result['changed'],
        sysfs_writes=result['sysfs_writes'],
        commit=result['commit'],
        kdamond=result['kdamond'],
    )
    if module._diff:
        output['diff'] = result['diff']
    module.exit_json(**output)


def run_reader(module, read):
    """main() of a module that only reads: read(host, params) gives the result, its
    'warnings' become Ansible warnings.  Check mode writes nothing, not even the refresh
    keywords, so params' refresh is false then."""
    try:
        params = dict(module.params)
        params['refresh'] = params.get('refresh') and not module.check_mode
        result = read(Host(run_command=module.run_command), params)
    except DamonError as err:
        module.fail_json(msg=str(err))
    for warning in result.pop('warnings', None) or []:
        module.warn(warning)
    module.exit_json(**result)
