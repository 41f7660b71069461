# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, apply, commit: from the desired tree that staging built to a kdamond that runs it.
Under the collection's lock a run reads the tree, checks that the kdamond is ours, stages
(_damon_stage), plans the minimal writes, records them in a journal, writes them, commits
with the lightest keyword, and restores the tree it read if the kernel refuses; a run that
was interrupted (_damon_journal) is completed by the next one.  ensure_scheme() and
ensure_quota_goal() are the entry points of damos_scheme and damos_quota_goal, and of the
boot unit's re-apply.

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible.
"""

from __future__ import annotations

from functools import partial

from ._damon_errors import (
    DamonConflictError,
    DamonError,
    DamonKernelError,
    DamonUnavailableError,
    DamonValidationError,
    append_note,
)
from ._damon_host import read_tree, remove_state_file
from ._damon_journal import intended, journal_path, load_journal, write_journal
from ._damon_model import (
    COMMIT_KEYWORDS,
    context_dir,
    goal_dir,
    is_count_file,
    nest,
    scheme_dir,
    subtree,
    tree_order_key,
)
from ._damon_stage import Stage, memcg_problem, stage_quota_goal, stage_scheme
from ._damon_units import INT_MAX, parse_bool, parse_choice, parse_int


# ---------------------------------------------------------------- planning

def plan_writes(current, desired):
    """The writes that turn the current flat map into the desired one, in tree order.

    An nr_* file is written only when its count changes; the kernel then recreates every
    child with defaults, so every desired file below it is rewritten.
    """
    writes, recreated = [], []
    for rel in sorted(desired, key=tree_order_key):
        value = desired[rel]
        if any(rel.startswith(prefix) for prefix in recreated):
            writes.append((rel, value))
        elif current.get(rel) != value:
            writes.append((rel, value))
            if is_count_file(rel):
                recreated.append(rel.rsplit('/', 1)[0] + '/')
    return writes


def commit_keyword(writes):
    """Goal-only changes are merged with commit_schemes_quota_goals, which keeps the
    aggregation schedule; anything else needs a full commit."""
    if all('/quotas/goals/' in write[0] for write in writes):
        return 'commit_schemes_quota_goals'
    return 'commit'


# ---------------------------------------------------------------- ownership, exclusive modules, restore

def _kdamond_states(host, current):
    count = int(current.get('kdamonds/nr_kdamonds', '0'))
    return {index: host.read('kdamonds/%d/state' % index) for index in range(count)}


def _check_ownership(host, index, current, states, take_over, owned):
    configured = int(current.get('kdamonds/%d/contexts/nr_contexts' % index, '0')) > 0 \
        or states.get(index) == 'on'
    if configured and not take_over and index not in owned:
        unused, problem = host.ownership()
        why = ('%s cannot say (%s)' % (host.shown(host.managed_path), problem) if problem else
               'it is not recorded in %s as configured by kernel.damon in this boot' % host.shown(host.managed_path))
        raise DamonConflictError(
            'kdamond %d is configured, but %s, so another tool or an operator owns it; nothing was changed. '
            'Pass take_over: true to let kernel.damon manage it (after a reboot the damos_autotune boot unit '
            'configures it again first)' % (index, why))


def _exclusive_modules_to_stop(host, index, allowed):
    running = sorted(name for name, enabled in host.exclusive_modules().items() if enabled)
    if running and not allowed:
        raise DamonConflictError(
            '%s runs and holds DAMON exclusively, so kdamond %d cannot start (the kernel answers EBUSY); '
            'pass stop_exclusive_modules: true to stop it' % (', '.join(running), index))
    return running


def _restore(host, snapshot, restart=(), modules=()):
    """Best effort: put the staged tree back, restart kdamonds and enable again the exclusive
    modules of `modules` that are off now (the run stopped them); returns a note for errors."""
    try:
        for rel, value in plan_writes(read_tree(host), snapshot):
            host.write(rel, value)
        for index in restart:
            if host.read('kdamonds/%d/state' % index) != 'on':
                host.write('kdamonds/%d/state' % index, 'on')
    except DamonError as err:
        note = 'restoring the previous configuration failed too: %s' % err
    else:
        note = 'the previous configuration was restored'
    stopped = sorted(name for name, enabled in host.exclusive_modules().items() if name in modules and not enabled)
    if not stopped:
        return note
    try:
        for name in stopped:
            host.start_exclusive_module(name)
    except DamonError as err:
        return '%s, but %s, which this run stopped, stay off: %s' % (note, ', '.join(stopped), err)
    return '%s, and %s, which this run stopped, were enabled again' % (note, ', '.join(stopped))


# ---------------------------------------------------------------- the plan

class _Plan:
    """Everything one run will write, computed before the first write."""

    def __init__(self, index, current, states, desired, want_running, goals_only, journal=None):
        self.kdamond_dir = 'kdamonds/%d' % index
        self.index = index
        self.current, self.desired, self.states = current, desired, states
        self.writes = plan_writes(current, desired)
        self.was_on = states.get(index) == 'on'
        self.on_after = self.was_on if want_running is None else want_running
        grows = any(write[0] == 'kdamonds/nr_kdamonds' for write in self.writes)
        self.restarts = sorted(i for i, state in states.items() if state == 'on') if grows else []
        # Kdamonds that an interrupted run had stopped to grow nr_kdamonds: started again.
        self.resume = sorted(i for i in (journal or {}).get('restarts', ())
                             if i != index and states.get(i) == 'off' and i not in self.restarts)
        own = [w for w in self.writes if w[0].startswith(self.kdamond_dir + '/')]
        self.keyword = None
        if self.on_after and not self.was_on:
            self.keyword = 'on'
        elif self.was_on and not self.on_after:
            self.keyword = 'off'
        elif self.was_on and (own or journal):
            # What the kernel runs decides, not what is staged: after an interrupted run the
            # staged files may hold values the kdamond never took in.
            goals = goals_only or commit_keyword(own) == 'commit_schemes_quota_goals'
            if journal and journal['keyword'] == 'commit':
                goals = False
            self.keyword = 'commit_schemes_quota_goals' if goals else 'commit'
        if journal and journal['snapshot']:
            self.current = journal['snapshot']      # what the kernel runs: the restore's target
        self.modules = []
        self.owned = set()

    def steps(self, host):
        """(path relative to admin or host path, value) in the order they are written."""
        steps = [('kdamonds/%d/state' % i, 'off') for i in self.restarts] + list(self.writes)
        steps += [('kdamonds/%d/state' % i, 'on') for i in self.restarts + self.resume]
        steps += [(host.shown(host.exclusive_module_path(name)), 'N') for name in self.modules]
        if self.keyword:
            steps.append((self.kdamond_dir + '/state', self.keyword))
        return steps

    def apply(self, host):
        for index in self.restarts:
            host.write('kdamonds/%d/state' % index, 'off')
        for rel, value in self.writes:
            host.write(rel, value)
        for index in self.restarts + self.resume:
            host.write('kdamonds/%d/state' % index, 'on')
        for name in self.modules:
            host.stop_exclusive_module(name)
        if self.keyword:
            host.write(self.kdamond_dir + '/state', self.keyword)


def _check_resolved_at_commit(host, plan):
    """Values the kernel resolves at on/commit time can go stale between runs (a cgroup
    removed, a monitored process gone) while the files keep them.  Say so before the first
    write: a commit the kernel rejects stops the kdamond on kernels before 6.14."""
    if plan.keyword not in ('on',) + COMMIT_KEYWORDS:
        return
    context = plan.kdamond_dir + '/contexts/0/'
    goals_only = plan.keyword == 'commit_schemes_quota_goals'
    for rel, value in sorted(plan.desired.items()):
        if not rel.startswith(context):
            continue
        base, name = rel.rsplit('/', 1)
        if name == 'memcg_path' and not goals_only and plan.desired.get(base + '/type') == 'memcg':
            problem, replace = memcg_problem(host, value), 'filters'
        elif name == 'path' and plan.desired.get(base + '/target_metric', '').startswith('node_memcg_'):
            problem, replace = memcg_problem(host, value), 'goals or path'
        elif name == 'pid_target' and not goals_only and plan.desired.get(context + 'operations') != 'paddr':
            problem = None if host.pid_exists(int(value)) else 'a running process (no process %s)' % value
            replace = 'pid, pidfile or systemd_unit'
        else:
            continue
        if problem:
            raise DamonValidationError(rel, value, '%s; the kernel resolves it at every %s, so give %s to '
                                       'replace it' % (problem, plan.keyword, replace))


def _tuned_intervals(current, kdamond_dir):
    return int(current.get(kdamond_dir + '/contexts/0/monitoring_attrs/intervals/intervals_goal/aggrs', '0')) != 0


def _read_and_plan(host, index, build, take_over, want_running, goals_only, journal=None):
    """Snapshot the tree, check ownership, build the desired tree (validating) and plan.
    journal: an interrupted run on this kdamond, which this run completes (see below)."""
    current = read_tree(host)
    states = _kdamond_states(host, current)
    owned = host.managed()
    if journal is not None:
        owned |= {index}    # the interrupted run was ours, under the lock
    _check_ownership(host, index, current, states, take_over, owned)
    # Build on what the interrupted run meant to stage, so that options this run does not
    # set keep the values it was writing, not a half-written mix.
    stage = Stage(host, intended(current, journal))
    build(stage)
    plan = _Plan(index, current, states, stage.desired, want_running, goals_only, journal)
    plan.owned = owned
    return stage, plan


# ---------------------------------------------------------------- runs that were interrupted

def _complete_other(host, journal, check_mode):
    """Complete an interrupted run on another kdamond than this run's: its writes, the
    restart of the kdamonds it had stopped, its commit.  Returns the steps."""
    current = read_tree(host)
    states = _kdamond_states(host, current)
    writes = plan_writes(current, intended(current, journal))
    steps = list(writes) + [('kdamonds/%d/state' % i, 'on') for i in journal['restarts'] if states.get(i) == 'off']
    if states.get(journal['kdamond']) == 'on':
        steps.append(('kdamonds/%d/state' % journal['kdamond'], journal['keyword']))
    if check_mode:
        return steps
    try:
        for rel, value in steps:
            host.write(rel, value)
    except DamonError as err:
        note = _restore(host, journal['snapshot'], [i for i in journal['restarts'] if states.get(i) == 'on'])
        remove_state_file(journal_path(host))
        raise append_note(err, 'completing an interrupted kernel.damon run on kdamond %d failed; %s'
                          % (journal['kdamond'], note)) from None
    host.record_managed(_still_there(host, host.managed() | set(journal['owned']) | {journal['kdamond']}))
    remove_state_file(journal_path(host))
    return steps


def _still_there(host, indexes):
    return {index for index in indexes if host.is_dir('kdamonds/%d' % index)}


def _interrupted(host, index, check_mode):
    """(journal of an interrupted run on kdamond index, steps that complete one on another
    kdamond, warning)."""
    journal = load_journal(host)
    if journal is None:
        return None, [], None
    if journal.get('stale'):
        if not check_mode:
            remove_state_file(journal_path(host))
        return None, [], None
    kdamond = index if journal['kdamond'] is None else journal['kdamond']
    warning = ('a kernel.damon run on kdamond %d was interrupted before its commit%s; this run completes it'
               % (kdamond, ' (%s: %s)' % (host.shown(journal_path(host)), journal['problem'])
                  if journal.get('problem') else ''))
    if kdamond == index:
        return journal, [], warning
    return None, _complete_other(host, journal, check_mode), warning


# ---------------------------------------------------------------- one run

def _converge(host, index, build, describe, check_mode=False, want_running=None, take_over=False,
              stop_kdamonds=False, stop_exclusive_modules=False, goals_only=False):
    """Read, build the desired tree (validating it), plan, then apply and commit."""
    if not host.available():
        raise DamonUnavailableError('%s does not exist: this kernel has no DAMON sysfs interface '
                                    '(CONFIG_DAMON_SYSFS)' % host.shown(host.admin))
    with host.lock(create=not check_mode):
        journal, steps, interrupted = _interrupted(host, index, check_mode)
        stage, plan = _read_and_plan(host, index, build, take_over, want_running, goals_only, journal)
        if plan.restarts and not stop_kdamonds:
            raise DamonConflictError(
                'kdamond %d does not exist yet and nr_kdamonds can only grow while no kdamond runs '
                '(running: %s); pass stop_kdamonds: true to stop, restore and restart them'
                % (index, ', '.join(str(i) for i in plan.restarts)))
        if plan.keyword == 'on':
            plan.modules = _exclusive_modules_to_stop(host, index, stop_exclusive_modules)
        _check_resolved_at_commit(host, plan)
        prefix = []
        if plan.keyword == 'commit' and _tuned_intervals(plan.current, plan.kdamond_dir):
            # commit resets auto-tuned intervals to the staged inputs unless these hold the
            # tuned values; the refreshed inputs are then part of the snapshot.
            prefix = [(plan.kdamond_dir + '/state', 'update_tuned_intervals')]
            if not check_mode:
                host.write(plan.kdamond_dir + '/state', 'update_tuned_intervals')
                stage, plan = _read_and_plan(host, index, build, take_over, want_running, goals_only, journal)
        own_steps = plan.steps(host)
        steps += prefix + own_steps
        if not check_mode:
            if own_steps:
                write_journal(host, plan)
                try:
                    _apply(host, plan)
                except DamonError:
                    if read_tree(host) == plan.current:
                        remove_state_file(journal_path(host))   # restored: nothing is pending
                    raise
            configured = int(plan.desired.get('kdamonds/%d/contexts/nr_contexts' % index, '0')) > 0
            host.record_managed(_still_there(host, plan.owned | ({index} if configured else set())))
            if journal or own_steps:
                remove_state_file(journal_path(host))
        warnings = [interrupted] if interrupted else []
        warnings += stage.warnings
        if plan.restarts:
            warnings.append('kdamonds %s were stopped and restarted to grow nr_kdamonds; their stats and '
                            'quota tuning started again from zero' % ', '.join(map(str, plan.restarts)))
        if plan.modules:
            warnings.append('stopped %s so that kdamond %d could start' % (', '.join(plan.modules), index))
        if plan.keyword == 'on' and int(plan.current.get(plan.kdamond_dir + '/contexts/nr_contexts', '0')):
            warnings.append('kdamond %d was off (stopped since its last start, or never started); it was '
                            'started with the configuration in sysfs, its stats and quota tuning from zero' % index)
        elif goals_only and not plan.was_on and plan.writes:
            warnings.append('kdamond %d is off: the goal is staged and applies when the kdamond starts' % index)
        return {
            'changed': bool(steps),
            'diff': {'before': describe(plan.current, 'on' if plan.was_on else 'off'),
                     'after': describe(plan.desired, 'on' if plan.on_after else 'off')},
            'sysfs_writes': ['%s=%s' % step for step in steps],
            'commit': plan.keyword,
            'kdamond': _kdamond_after(host, plan, check_mode),
            'warnings': warnings,
        }


def _committed_values(plan):
    """What the kernel took in with the commit: the files this run wrote below the kdamond."""
    own = ['%s=%r' % (rel, value) for rel, value in plan.writes if rel.startswith(plan.kdamond_dir + '/')]
    if not own:
        return 'it rejected the configuration in sysfs as it was'
    return 'this run wrote %s%s' % (', '.join(own[:8]), ' and %d more' % (len(own) - 8) if len(own) > 8 else '')


def _apply(host, plan):
    try:
        plan.apply(host)
    except DamonError as err:
        restart = list(plan.restarts)
        if plan.keyword in COMMIT_KEYWORDS and isinstance(err, DamonKernelError) and err.value == plan.keyword:
            # The kernel refused the commit; a failure midway also stops the kdamond (sec. 5.6).
            append_note(err, _committed_values(plan))
            if host.read(plan.kdamond_dir + '/state') != 'on':
                restart.append(plan.index)
        raise append_note(err, _restore(host, plan.current, restart, plan.modules)) from None
    if plan.keyword not in COMMIT_KEYWORDS:
        return
    if host.read(plan.kdamond_dir + '/state') == 'on':
        return
    # Before 6.14 the kdamond applies a commit after the write returned, and an error
    # terminates it without an errno (damon-sysfs.md sec. 5.6, docs/kernel-notes.md).
    note = _restore(host, plan.current, [plan.index])
    state = host.read(plan.kdamond_dir + '/state')
    pid = host.read(plan.kdamond_dir + '/pid')
    raise DamonError('writing %r to %s stopped kdamond %d: the kernel could not apply the new configuration '
                     '(%s; this kernel reports no errno for it); %s and the kdamond is %s (pid %s), with its '
                     'stats and quota tuning started again'
                     % (plan.keyword, host.shown(host.admin_path(plan.kdamond_dir + '/state')), plan.index,
                        _committed_values(plan), note, state, pid))


def _kdamond_after(host, plan, check_mode):
    result = {'index': plan.index, 'state': 'on' if plan.on_after else 'off', 'pid': None}
    if check_mode:
        if plan.was_on and plan.on_after:
            result['pid'] = int(host.read(plan.kdamond_dir + '/pid'))
        elif not plan.on_after:
            result['pid'] = -1
    elif host.is_dir(plan.kdamond_dir):
        result.update(state=host.read(plan.kdamond_dir + '/state'), pid=int(host.read(plan.kdamond_dir + '/pid')))
    else:
        result['state'] = None
    return result


# ---------------------------------------------------------------- entry points

def _index(params, name):
    return parse_int(name, 0 if params.get(name) is None else params[name], maximum=INT_MAX)


def _present(params):
    return parse_choice('state', params.get('state') or 'present', ('present', 'absent')) == 'present'


def _describe_scheme(kdamond, scheme):
    context_path = context_dir(kdamond)
    scheme_path = scheme_dir(kdamond, scheme)

    def describe(flat, state):
        settings = {rel: value for rel, value in subtree(flat, context_path).items() if not rel.startswith('schemes/')}
        return {'running': state == 'on', 'context': nest(settings) or None,
                'scheme': nest(subtree(flat, scheme_path)) or None}
    return describe


def ensure_scheme(host, params, check_mode=False):
    """damos_scheme: make scheme `scheme` of kdamond `kdamond` (context 0) as described."""
    kdamond, scheme = _index(params, 'kdamond'), _index(params, 'scheme')
    present = _present(params)
    running = params.get('running')
    if running is None:
        running = True if present else None
    else:
        running = parse_bool('running', running)
    return _converge(host, kdamond, partial(stage_scheme, kdamond=kdamond, scheme=scheme, params=params,
                                            present=present),
                     _describe_scheme(kdamond, scheme), check_mode=check_mode,
                     want_running=running, take_over=bool(params.get('take_over')),
                     stop_kdamonds=bool(params.get('stop_kdamonds')),
                     stop_exclusive_modules=bool(params.get('stop_exclusive_modules')))


def ensure_quota_goal(host, params, check_mode=False):
    """damos_quota_goal: one goal of an existing scheme; commits goals only."""
    kdamond, scheme, goal = _index(params, 'kdamond'), _index(params, 'scheme'), _index(params, 'goal')
    present = _present(params)
    goal_path = goal_dir(kdamond, scheme, goal)

    def describe(flat, state):
        return {'running': state == 'on', 'goal': nest(subtree(flat, goal_path)) or None}

    return _converge(host, kdamond, partial(stage_quota_goal, kdamond=kdamond, scheme=scheme, goal=goal,
                                            params=params, present=present),
                     describe, check_mode=check_mode, take_over=bool(params.get('take_over')), goals_only=True)
