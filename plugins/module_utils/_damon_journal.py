# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal of a run in progress (var/lib/kernel-damon/pending.json): what a run will
write below a running kdamond and what the kernel ran before, recorded before the first
write and removed after the commit, so that the next root writer can complete a run that
was interrupted (docs/design.md, "Interrupted runs").  Its format, its checks, reading and
writing it; _damon_plan completes what it records, and the score feeder refuses to feed
while one is pending.

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible.
"""

from __future__ import annotations

import json
import os
import re

from ._damon_host import read_state_file, write_state_file
from ._damon_model import COMMIT_KEYWORDS

# An interrupted run (SIGKILL, a controller timeout, Ctrl-C) may leave values in sysfs that
# no running kdamond took in: sysfs files only stage.  Before its first write below a
# running kdamond a run records in this journal what it will write and what the kernel runs
# (the snapshot), and removes it after its commit.  Whichever root writer takes the lock
# next completes the run (docs/design.md, "Interrupted runs").
_JOURNAL_KEYS = {'version': int, 'boot_id': (str, type(None)), 'kdamond': int, 'keyword': str,
                 'writes': list, 'restarts': list, 'owned': list, 'snapshot': dict}


_REL = re.compile(r'^kdamonds(/[A-Za-z0-9_]+)+$')


def journal_path(host):
    return os.path.join(host.state_dir, 'pending.json')


def _valid_journal(data):
    if not isinstance(data, dict) or set(data) != set(_JOURNAL_KEYS) or data.get('version') != 1:
        return False
    if any(isinstance(data[key], bool) or not isinstance(data[key], kind) for key, kind in _JOURNAL_KEYS.items()):
        return False
    pairs = data['writes'] + [list(item) for item in data['snapshot'].items()]
    numbers = data['restarts'] + data['owned'] + [data['kdamond']]
    return (data['keyword'] in COMMIT_KEYWORDS
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers)
            and all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                    and _REL.match(pair[0]) is not None and isinstance(pair[1], str) for pair in pairs))


def load_journal(host):
    """The interrupted run of this boot, or None.  One from an earlier boot is moot (sysfs
    starts empty at boot): {'stale': True}.  One that cannot be read or has the wrong shape
    still says "a run was interrupted": the next run commits its kdamond in full
    ({'kdamond': None})."""
    text, problem = read_state_file(journal_path(host))
    if text is None and problem is None:
        return None
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        data = None
    if not _valid_journal(data):
        return {'kdamond': None, 'keyword': 'commit', 'writes': [], 'restarts': [], 'owned': [], 'snapshot': {},
                'problem': problem or 'not a kernel.damon journal'}
    if data['boot_id'] != host.boot_id():
        return {'stale': True}
    return data


def intended(current, journal):
    """The staged tree as the interrupted run in journal meant to leave it."""
    if not journal:
        return current
    desired = dict(current)
    desired.update(journal['writes'])
    return desired


def write_journal(host, plan):
    """Record the plan before its first write, when an interruption could leave values in
    sysfs that a running kdamond does not run."""
    if not (plan.writes and (plan.was_on or plan.restarts or plan.resume)):
        return
    write_state_file(journal_path(host), json.dumps({
        'version': 1, 'boot_id': host.boot_id(), 'kdamond': plan.index,
        'keyword': 'commit_schemes_quota_goals' if plan.keyword == 'commit_schemes_quota_goals' else 'commit',
        'writes': [list(write) for write in plan.writes],
        'restarts': sorted(set(plan.restarts) | set(plan.resume) | ({plan.index} if plan.was_on else set())),
        'owned': sorted(plan.owned), 'snapshot': plan.current}, sort_keys=True) + '\n')
