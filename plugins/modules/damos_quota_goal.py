#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: damos_quota_goal
short_description: Manage one quota auto-tuning goal of a DAMOS scheme
version_added: 0.1.0
author:
  - kernel.damon maintainers (!UNKNOWN)
description:
  - Creates, updates or removes one quota goal, C(kdamonds/<K>/contexts/0/schemes/<S>/quotas/goals/<G>),
    of an existing DAMOS scheme, and hands it to the running kdamond with C(commit_schemes_quota_goals).
  - That keyword re-reads only the goals, so the scheme keeps its statistics and its auto-tuned
    quota, and DAMON's aggregation is not restarted. This makes the module fit for a feeder that
    updates the O(current) value of a V(user_input) goal about once per charge window.
  - The module never starts or stops a kdamond, and never writes C(commit). When the kdamond is
    stopped, the goal is only staged and takes effect at the next start.
  - B(Omitted means kept.) An option left out keeps what the goal has. O(metric) and O(target) are
    required when the goal is created.
  - Use M(kernel.damon.damos_scheme) to create the scheme, or to set all of its goals at once.
extends_documentation_fragment:
  - kernel.damon._damon
  - kernel.damon._damon.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is written; RV(sysfs_writes) lists the writes the module would make.
  diff_mode:
    support: full
options:
  goal:
    description:
      - Index of the goal in the scheme's C(quotas/goals/) directory.
      - With O(state=present), at most the current number of goals, so that goals are appended in order.
    type: int
    default: 0
  state:
    description:
      - V(present) creates the goal at O(goal) or updates it.
      - V(absent) removes the goal at O(goal). The goals after it move down by one index.
    type: str
    choices: [present, absent]
    default: present
  metric:
    description:
      - What the goal measures, C(target_metric). Required when the goal is created.
      - V(user_input) is a value you feed through O(current) (Linux 6.8).
        V(some_mem_psi_us) is the system's I(some) memory pressure stall time per charge window (6.9);
        it needs PSI enabled, else it always reads 0 and the quota only grows.
        V(node_mem_used_bp) and V(node_mem_free_bp) are the used and free memory of node O(nid) (6.16).
        V(node_memcg_used_bp) and V(node_memcg_free_bp) are the memory of cgroup O(path) on node O(nid) (6.19).
        V(active_mem_bp) and V(inactive_mem_bp) are the active and inactive share of the LRU lists (7.0).
        V(node_eligible_mem_bp) is the share of the memory eligible for the scheme's access pattern that sits on
        node O(nid), for C(paddr) schemes only (first seen on 7.3).
      - The kernel assumes that more quota moves the metric up. Pair the metric with the action so that this holds,
        for example V(pageout) with V(some_mem_psi_us) or V(node_mem_free_bp).
    type: str
    choices:
      - user_input
      - some_mem_psi_us
      - node_mem_used_bp
      - node_mem_free_bp
      - node_memcg_used_bp
      - node_memcg_free_bp
      - active_mem_bp
      - inactive_mem_bp
      - node_eligible_mem_bp
  target:
    description:
      - The value to reach, C(target_value). Required when the goal is created or its O(metric) changes.
        Must be above 0, because the kernel ignores a goal whose target is 0.
      - A time for V(some_mem_psi_us). A plain integer is in microseconds; strings take V(ns), V(us), V(ms) or V(s), such as V(750us).
      - A ratio for the C(*_bp) metrics. A plain integer is in basis points (1/10000); strings take V(N%) or V(Nbp), such as V(5%).
      - A plain integer for V(user_input).
    type: raw
  current:
    description:
      - The current value of a V(user_input) goal, C(current_value), in the unit of O(target).
      - The kernel keeps using the last committed value until a new one arrives, so feed it about once per charge window.
      - Only for V(user_input); the kernel measures the other metrics itself and never writes this file.
    type: int
  nid:
    description:
      - NUMA node of the C(node_*) metrics, C(nid), required with them when the goal is created or its O(metric)
        changes. Checked against C(/sys/devices/system/node/has_memory),
        because an invalid node could crash kernels without the 2026 fix.
    type: int
  path:
    description:
      - cgroup of the C(node_memcg_*) metrics, C(path), relative to the cgroup v2 mount, for example V(/workload.slice),
        required with them when the goal is created or its O(metric) changes. Checked against C(/sys/fs/cgroup).
    type: str
notes:
  - The module fails when the scheme O(scheme) of kdamond O(kdamond) does not exist.
  - The kernel never writes measured values back to C(current_value), so a goal with a self-measured metric
    shows the value last written there. Read the effect of the goals with M(kernel.damon.damos_facts),
    from C(effective_bytes).
  - Starting a kdamond is the job of M(kernel.damon.damos_scheme), so the C(EBUSY) that Debian's 7.x kernels
    give at start while DAMON_STAT runs does not concern this module; see O(kernel.damon.damos_scheme#module:stop_exclusive_modules).
seealso:
  - module: kernel.damon.damos_scheme
  - module: kernel.damon.damos_facts
  - name: DAMOS quota goals
    description: Aim-oriented feedback-driven auto-tuning in the DAMON design document.
    link: https://docs.kernel.org/mm/damon/design.html#aim-oriented-feedback-driven-auto-tuning
"""

EXAMPLES = r"""
# The scheme of kernel.damon.damos_scheme's first example runs with a goal of 500us of
# memory stall per second. Move the target online; the tuned quota is kept.
# (damo tune ... --damos_quota_goal some_mem_psi_us 750us)
- name: Allow 750us of memory stall per second
  kernel.damon.damos_quota_goal:
    kdamond: 0
    scheme: 0
    goal: 0
    metric: some_mem_psi_us
    target: 750us
  become: true

# User feedback: feed the workload's score to a user_input goal aiming at 10000.
# Run it about once per charge window, for example from a systemd timer; the task
# writes nothing and commits nothing while the score stays the same.
- name: Read the workload's score
  ansible.builtin.slurp:
    src: /run/workload/score
  register: workload_score

- name: Feed the score to DAMON
  kernel.damon.damos_quota_goal:
    goal: 0
    metric: user_input
    target: 10000
    current: "{{ workload_score.content | b64decode | trim | int }}"
  become: true

# A second goal: keep at least 10% of node 0 free. The most satisfied goal drives the
# quota, so the scheme backs off as soon as either goal is met.
- name: Add a free memory goal on node 0
  kernel.damon.damos_quota_goal:
    goal: 1
    metric: node_mem_free_bp
    target: 10%
    nid: 0
  become: true

- name: Remove the free memory goal again
  kernel.damon.damos_quota_goal:
    goal: 1
    state: absent
  become: true
"""

RETURN = r"""
diff:
  description:
    - The goal before and after the run (predicted in check mode), as parsed values named after its sysfs files.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description:
        - C(running), whether the kdamond runs, and C(goal), the goal's C(target_metric), C(target_value),
          C(current_value), C(nid) and C(path) as far as the kernel has them; V(null) when the goal does not exist.
      type: dict
    after:
      description: The same after the run.
      type: dict
  sample:
    before:
      running: true
      goal: {target_metric: some_mem_psi_us, target_value: 500, current_value: 0}
    after:
      running: true
      goal: {target_metric: some_mem_psi_us, target_value: 750, current_value: 0}
sysfs_writes:
  description:
    - Every write, in order, as C(<path>=<value>) with the path relative to C(/sys/kernel/mm/damon/admin),
      including the keyword written to C(state). Predicted in check mode. Empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample:
    - kdamonds/0/contexts/0/schemes/0/quotas/goals/0/current_value=9120
    - kdamonds/0/state=commit_schemes_quota_goals
commit:
  description:
    - V(commit_schemes_quota_goals) when the running kdamond was updated; V(null) when nothing was committed,
      because nothing changed or the kdamond is stopped.
  returned: always
  type: str
  sample: commit_schemes_quota_goals
kdamond:
  description: The kdamond after the run.
  returned: always
  type: dict
  contains:
    index:
      description: The kdamond index, O(kdamond).
      type: int
      sample: 0
    state:
      description: The kdamond's C(state), V(on) or V(off); V(null) when the kdamond does not exist.
      type: str
      sample: "on"
    pid:
      description: The pid of the C(kdamond.<K>) thread, V(-1) when it is not running.
      type: int
      sample: 1234
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.damon.plugins.module_utils._damon_module import (
    goal_options,
    run_writer,
    target_address_spec,
    writer_spec,
)
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_quota_goal


def argument_spec():
    spec = target_address_spec()
    spec.update(
        goal=dict(type='int', default=0),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    spec.update(goal_options())
    spec.update(writer_spec())
    return spec


def build_module():
    return AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)


def main():
    run_writer(build_module(), ensure_quota_goal)


if __name__ == '__main__':
    main()
