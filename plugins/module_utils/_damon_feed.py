# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The score feeder's primitives: kdamond_pid(), the cheap check a feeder makes on every
tick, and feed_quota_goal(), the write of a user_input goal's current_value and its
commit_schemes_quota_goals.  Used by the damos_autotune role's feeder on managed hosts; it
loads the host, the model, the journal and the units, not the planner.

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible.
"""

from __future__ import annotations

import os

from ._damon_errors import DamonConflictError, DamonError, DamonUnavailableError
from ._damon_journal import journal_path, load_journal
from ._damon_model import goal_dir, kdamond_dir
from ._damon_units import parse_int


def kdamond_pid(host, kdamond):
    """The pid of a running kdamond, else -1 (also when it does not exist).  One sysfs read
    and no lock: what a feeder checks on every tick to notice a restarted kdamond."""
    pid_file = kdamond_dir(kdamond) + '/pid'
    if not os.path.exists(host.admin_path(pid_file)):
        return -1
    return int(host.read(pid_file))


def feed_quota_goal(host, kdamond, scheme, goal, value=None, fed_pid=None):
    """The score feeder's write: a user_input goal's current_value, then
    commit_schemes_quota_goals, under the collection lock.

    Written on every call, whatever current_value stages: a staged value may never have
    been committed (a feed killed between its two writes), and the caller calls only when
    its own record of what it fed, or the kdamond's pid, says so.  fed_pid is kept for
    callers and ignored.  Never a full commit, which would restart DAMON's aggregation
    schedule.  value None feeds the goal's target_value,
    so the tuner holds the quota where it is.  A kdamond that does not exist or is off is
    left alone (state says which).  Returns {'state', 'pid', 'value', 'target', 'written',
    'sysfs_writes'}.
    """
    if value is not None:
        value = parse_int('current', value)
    if not host.available():
        raise DamonUnavailableError('%s does not exist: this kernel has no DAMON sysfs interface '
                                    '(CONFIG_DAMON_SYSFS)' % host.shown(host.admin))
    kdamond_path = kdamond_dir(kdamond)
    goal_path = goal_dir(kdamond, scheme, goal)
    result = {'state': 'absent', 'pid': -1, 'value': value, 'target': None, 'written': False,
              'sysfs_writes': []}
    with host.lock():
        if not host.is_dir(kdamond_path):
            return result
        result['state'] = host.read(kdamond_path + '/state')
        if result['state'] != 'on':
            return result
        result['pid'] = int(host.read(kdamond_path + '/pid'))
        if kdamond not in host.managed():
            raise DamonConflictError('kdamond %d is not recorded in %s as configured by kernel.damon in this '
                                     'boot, so another tool or an operator owns it; nothing was fed'
                                     % (kdamond, host.shown(host.managed_path)))
        journal = load_journal(host)
        if journal is not None and not journal.get('stale'):
            raise DamonConflictError('a kernel.damon run was interrupted before its commit (%s); the next run of '
                                     'a module, or the boot unit, completes it; nothing was fed'
                                     % host.shown(journal_path(host)))
        if not host.is_dir(goal_path):
            raise DamonConflictError('kdamond %d has no goal %d in scheme %d to feed' % (kdamond, goal, scheme))
        metric_file = goal_path + '/target_metric'
        metric = host.read(metric_file) if os.path.exists(host.admin_path(metric_file)) else 'user_input'
        if metric != 'user_input':
            raise DamonConflictError('goal %d of scheme %d of kdamond %d measures %s itself; only a user_input '
                                     'goal takes a fed value' % (goal, scheme, kdamond, metric))
        result['target'] = int(host.read(goal_path + '/target_value'))
        result['value'] = result['target'] if value is None else value
        first = len(host.writes)
        host.write(goal_path + '/current_value', result['value'])
        host.write(kdamond_path + '/state', 'commit_schemes_quota_goals')
        result['written'] = True
        result['state'] = host.read(kdamond_path + '/state')
        if result['state'] != 'on':
            raise DamonError('writing commit_schemes_quota_goals to %s stopped kdamond %d'
                             % (host.shown(host.admin_path(kdamond_path + '/state')), kdamond))
        result['sysfs_writes'] = host.writes[first:]
    return result
