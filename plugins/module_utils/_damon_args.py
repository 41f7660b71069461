# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Argument-spec pieces shared by the kernel.damon modules (Ansible side only).

Private to this collection: no promise of a stable Python API.  Every helper returns a
fresh copy, so a module may extend what it gets without changing what the next module
gets.  Option values are handed to ``_damon_core`` unparsed: the core owns the unit
rules (``500us``, ``1G``, ``5%``) and the validation against the running kernel.
"""

from __future__ import annotations

import copy

# Quota goal metrics (damon-sysfs.md section 4.1), oldest first; the core checks each against
# the running kernel.
GOAL_METRICS = (
    'user_input',          # 6.8 (keyword 6.9)
    'some_mem_psi_us',     # 6.9
    'node_mem_used_bp',    # 6.16, needs nid
    'node_mem_free_bp',    # 6.16, needs nid
    'node_memcg_used_bp',  # 6.19, needs nid and path
    'node_memcg_free_bp',  # 6.19, needs nid and path
    'active_mem_bp',       # 7.0
    'inactive_mem_bp',     # 7.0
    'node_eligible_mem_bp',  # first seen on 7.3, needs nid, paddr only
)

NODE_METRICS = ('node_mem_used_bp', 'node_mem_free_bp', 'node_eligible_mem_bp')
MEMCG_METRICS = ('node_memcg_used_bp', 'node_memcg_free_bp')

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
_GOAL_ELEMENT_REQUIRED_IF = (
    [('metric', m, ('nid',)) for m in NODE_METRICS]
    + [('metric', m, ('nid', 'path')) for m in MEMCG_METRICS]
)


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
