#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: damos_sample
short_description: Sample a DAMOS scheme's effective quota and goal scores over a time window
version_added: 0.1.0
author:
  - kernel.damon maintainers (!UNKNOWN)
description:
  - Reads one DAMOS scheme every O(interval) for O(duration) on the host and returns the series of
    the effective size quota, the bytes the action was applied to, the quota-exceeded count, memory
    pressure (PSI), and for each quota goal its target, its current value and its score.
  - The kernel never writes the value it measures for a goal back to C(current_value), so the module
    measures it again the way the kernel does. C(some_mem_psi_us) is the growth of the C(some) total
    of C(/proc/pressure/memory) between two samples, scaled to one charge window (C(reset_interval_ms));
    C(node_mem_*_bp) come from the node's C(meminfo), C(node_memcg_*_bp) from the cgroup's
    C(memory.numa_stat), C(active_mem_bp) and C(inactive_mem_bp) from C(/proc/meminfo), and C(user_input)
    is the value last written to C(current_value).
  - Used by the C(kernel.damon.rollout) playbook as the settle window of each batch and by
    C(kernel.damon.report) for its sampling mode; the result feeds the filters
    P(kernel.damon.damon_report_row#filter) and P(kernel.damon.damon_tuning_svg#filter).
  - Sampling runs on the host so that the PSI difference and the timestamps come from the host's own
    monotonic clock, and a window of any length costs one connection per host.
extends_documentation_fragment:
  - kernel.damon._damon.attributes
  - kernel.damon._damon.read_only_attributes
options:
  kdamond:
    description:
      - Index of the kdamond.
    type: int
    default: 0
  scheme:
    description:
      - Index of the scheme in context 0 of the kdamond. It must exist.
    type: int
    default: 0
  duration:
    description:
      - Length of the window, a time such as V(60s) or V(5m), or microseconds as an integer.
      - V(0) takes one sample; a C(some_mem_psi_us) goal then has no current value, because it takes
        two samples to measure one.
    type: raw
    default: 0
  interval:
    description:
      - Time between two samples, at least V(10ms). Samples are taken at fixed times from the start,
        so the slowness of one read does not shift the next.
    type: raw
    default: 1s
  refresh:
    description:
      - Write C(update_schemes_stats) and C(update_schemes_effective_quotas) to the kdamond's C(state) file
        before each sample, as M(kernel.damon.damos_facts) does, when the kdamond runs and this collection
        configured it. A kdamond of someone else is only read.
    type: bool
    default: true
notes:
  - The module holds the collection's lock file only while it refreshes, never for the whole window, so
    writers such as a score feeder keep running during a long window.
  - A window of minutes keeps the task, and its connection, open that long. Use C(async) with a long window
    on many hosts.
seealso:
  - module: kernel.damon.damos_facts
  - module: kernel.damon.damos_scheme
"""

EXAMPLES = r"""
- name: Watch the quota tune towards its PSI goal for a minute
  kernel.damon.damos_sample:
    kdamond: 0
    scheme: 0
    duration: 60s
    interval: 1s
  become: true
  register: tuning

- name: Where did the quota settle, and how close is the goal?
  ansible.builtin.debug:
    msg: >-
      effective quota {{ tuning.summary.effective_bytes }} bytes,
      score {{ tuning.summary.score_bp }} bp of 10000,
      {{ tuning.summary.psi_some_percent }} % of the window stalled on memory

- name: Draw the window as a picture on the controller
  ansible.builtin.copy:
    content: "{{ tuning | kernel.damon.damon_tuning_svg(title=inventory_hostname) }}"
    dest: "/tmp/tuning-{{ inventory_hostname }}.svg"
    mode: "0644"
  delegate_to: localhost
  become: false
"""

RETURN = r"""
kdamond:
  description: The kdamond index sampled.
  type: int
  returned: success
  sample: 0
scheme:
  description: The scheme index sampled.
  type: int
  returned: success
  sample: 0
interval:
  description: Seconds between two samples.
  type: float
  returned: success
  sample: 1.0
samples:
  description: The series, oldest first.
  type: list
  elements: dict
  returned: success
  contains:
    time:
      description: Seconds since the first sample, from the host's monotonic clock.
      type: float
      sample: 12.004
    state:
      description: The kdamond's C(state), V(on) or V(off).
      type: str
      sample: "on"
    effective_bytes:
      description: The effective size quota, bytes per charge window; V(null) before Linux 6.9.
      type: int
      sample: 1048576
    bytes:
      description: The size quota, C(quotas/bytes), which caps the goal-tuned quota; V(0) for no cap.
      type: int
      sample: 1073741824
    sz_applied:
      description: C(stats/sz_applied), total bytes the action was applied to.
      type: int
      sample: 52428800
    qt_exceeds:
      description: C(stats/qt_exceeds), charge windows that ended with the quota used up.
      type: int
      sample: 17
    psi_some_total:
      description: The C(some) total of C(/proc/pressure/memory), microseconds; V(null) without PSI.
      type: int
      sample: 1834021
    psi_some_avg10:
      description: The C(some avg10) of C(/proc/pressure/memory), percent.
      type: float
      sample: 0.12
    goals:
      description: Each quota goal with C(target_metric), C(target_value), C(current_value) (measured as described
        above; V(null) when it cannot be measured yet) and C(score_bp) (current x 10000 / target).
      type: list
      elements: dict
      sample: [{target_metric: some_mem_psi_us, target_value: 500, current_value: 120, score_bp: 2400}]
    score_bp:
      description: The highest goal score, the one the kernel tunes towards; V(null) without a scored goal.
      type: int
      sample: 2400
    swap_used_bytes:
      description: Swap in use (C(SwapTotal - SwapFree) of C(/proc/meminfo)), where a pageout scheme's anonymous
        memory goes; V(null) on a host without swap.
      type: int
      sample: 201326592
    zram_orig_bytes:
      description: Data the host's zram devices hold, uncompressed (C(orig_data_size) of C(/sys/block/zram*/mm_stat));
        V(null) on a host without zram.
      type: int
      sample: 201326592
    zram_compr_bytes:
      description: The same data compressed (C(compr_data_size)), the memory it still takes; V(null) without zram.
      type: int
      sample: 100663296
summary:
  description: The window at a glance, as the health gate of the rollout playbook reads it.
  type: dict
  returned: success
  contains:
    samples:
      description: Number of samples.
      type: int
      sample: 61
    seconds:
      description: Seconds between the first and the last sample.
      type: float
      sample: 60.002
    states:
      description: The kdamond states seen.
      type: list
      elements: str
      sample: ["on"]
    stopped:
      description: Whether any sample found the kdamond not running.
      type: bool
      sample: false
    cap_bytes:
      description: The size quota at the last sample, the cap of the tuned quota; V(0) for no cap.
      type: int
      sample: 1073741824
    cap_bytes_human:
      description: RV(summary.cap_bytes) in binary units, V(none) for no cap.
      type: str
      sample: 1.0 GiB
    at_cap_seconds:
      description: How long, up to the last sample, the effective quota has been at its cap without a break,
        in whole sampling intervals; V(0) without a cap.
      type: float
      sample: 0.0
    at_cap_whole_window:
      description: Whether every sample of the window found the effective quota at its cap.
      type: bool
      sample: false
    effective_bytes:
      description: The effective quota at the last sample.
      type: int
      sample: 1048576
    effective_bytes_min:
      description: The smallest effective quota of the window.
      type: int
      sample: 1
    effective_bytes_max:
      description: The largest effective quota of the window.
      type: int
      sample: 1048576
    score_bp:
      description: The highest goal score at the last sample.
      type: int
      sample: 2400
    current_value:
      description: The current value of the goal with that score, at the last sample.
      type: int
      sample: 120
    psi_some_percent:
      description: Share of the window in which some task stalled on memory, percent, from the PSI totals of the
        first and the last sample; V(null) with a single sample or without PSI.
      type: float
      sample: 0.012
    psi_some_avg10:
      description: The C(some avg10) at the last sample.
      type: float
      sample: 0.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.damon.plugins.module_utils._damon_module import run_reader
from ansible_collections.kernel.damon.plugins.module_utils._damon_sample import sample_scheme


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            kdamond=dict(type='int', default=0),
            scheme=dict(type='int', default=0),
            duration=dict(type='raw', default=0),
            interval=dict(type='raw', default='1s'),
            refresh=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )


def main():
    run_reader(build_module(), sample_scheme)


if __name__ == '__main__':
    main()
