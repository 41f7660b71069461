#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: damos_facts
short_description: Gather DAMON and DAMOS facts, including the effective quotas
version_added: 0.1.0
author:
  - kernel.damon maintainers (!UNKNOWN)
description:
  - Reads the DAMON sysfs tree C(/sys/kernel/mm/damon/admin) and returns it as
    C(ansible_facts.damon), with the kdamonds and their contexts, schemes, quotas, quota goals,
    statistics, watermarks and filters, plus what the kernel supports, the DAMON kernel modules
    that run DAMON exclusively, memory pressure (PSI) and which kdamonds this collection configured.
  - The effective size quota, C(effective_bytes), is what quota auto-tuning settled on;
    C(damo report damon) shows it as C(effective_sz_bytes).
  - Every byte value comes with a C(*_human) twin, for example C(effective_bytes_human=1.0 GiB).
  - On a host without DAMON sysfs the module does not fail; it returns
    RV(ansible_facts.damon.available=false) and the reason.
extends_documentation_fragment:
  - kernel.damon._damon.attributes
  - kernel.damon._damon.read_only_attributes
  - kernel.damon._damon.facts_attributes
attributes:
  facts:
    support: full
options:
  kdamonds:
    description:
      - Indexes of the kdamonds to report. All kdamonds when omitted.
    type: list
    elements: int
  refresh:
    description:
      - Write C(update_schemes_stats) and C(update_schemes_effective_quotas) to the C(state) file of each
        running kdamond that this collection manages before reading, so that C(stats) and C(effective_bytes)
        are current. The kernel updates those files only on request (or every C(refresh_ms) where that is set).
      - Kdamonds this collection does not manage are never written to, not even these keywords (they rewrite
        the kdamond's C(stats) files); their values are what their owner last requested.
      - Each request waits for the kdamond's next sampling interval, so it can take a while under memory pressure.
      - V(false) reads what the files hold, which may be old.
    type: bool
    default: true
notes:
  - Sysfs value files hold staged input, not necessarily what a kdamond runs; the facts show the staged input.
  - The kernel never writes measured values back to a goal's C(current_value), so the facts show the value last written there.
  - A freshly started scheme with goals starts from an effective quota of 1 byte that at best doubles every charge window.
    Expect small values during the first minute.
  - The module retries reads that fail with C(EBUSY) because another tool holds the kernel's global DAMON sysfs lock.
  - On Debian's 7.x kernels DAMON_STAT runs from boot and makes starting a sysfs kdamond fail with C(EBUSY);
    RV(ansible_facts.damon.exclusive_modules) shows it, and
    O(kernel.damon.damos_scheme#module:stop_exclusive_modules) lets M(kernel.damon.damos_scheme) disable it.
seealso:
  - module: kernel.damon.damos_scheme
  - module: kernel.damon.damos_quota_goal
  - name: DAMON sysfs interface
    description: The kernel's usage guide for C(/sys/kernel/mm/damon/admin).
    link: https://docs.kernel.org/admin-guide/mm/damon/usage.html
"""

EXAMPLES = r"""
# How aggressively is DAMOS reclaiming under its goal?
# (damo report damon --json, field effective_sz_bytes)
- name: Gather DAMON facts
  kernel.damon.damos_facts:
  become: true

- name: Show the effective quota of scheme 0
  ansible.builtin.debug:
    msg: >-
      {{ scheme.quotas.effective_bytes_human }} per {{ scheme.quotas.reset_interval_ms }} ms,
      goal {{ scheme.quotas.goals[0].target_metric }} {{ scheme.quotas.goals[0].target_value }}
  vars:
    scheme: "{{ ansible_facts.damon.kdamonds[0].contexts[0].schemes[0] }}"

# Before starting a kdamond: is DAMON usable, and is an exclusive module in the way?
- name: Gather DAMON facts without asking running kdamonds for anything
  kernel.damon.damos_facts:
    refresh: false
  become: true

- name: Check that DAMON sysfs is there and supports PSI goals
  ansible.builtin.assert:
    that:
      - ansible_facts.damon.available
      - "'some_mem_psi_us' in ansible_facts.damon.features.goal_metrics"
    fail_msg: "DAMON cannot run PSI goals here: {{ ansible_facts.damon.reason | default('no some_mem_psi_us goal metric', true) }}"

- name: List the DAMON modules that would block a kdamond from starting
  ansible.builtin.debug:
    msg: "{{ ansible_facts.damon.exclusive_modules | dict2items | selectattr('value') | map(attribute='key') | list }}"

# Only one kdamond, for example from a monitoring job.
- name: Read kdamond 0 only
  kernel.damon.damos_facts:
    kdamonds: [0]
  become: true
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    damon:
      description:
        - DAMON on the host. Below C(kdamonds), keys carry the names of the sysfs files they come from
          and values their units (C(_us), C(_ms), C(_bytes), C(_bp), C(_permil)).
      returned: always
      type: dict
      contains:
        available:
          description: Whether DAMON sysfs can be used on the host.
          type: bool
          returned: always
          sample: true
        reason:
          description: Why DAMON sysfs cannot be used; V(null) when it can.
          type: str
          returned: always
          sample: /sys/kernel/mm/damon/admin does not exist (kernel built without CONFIG_DAMON_SYSFS)
        kernel:
          description: The running kernel's release, as C(uname -r) shows it.
          type: str
          returned: always
          sample: 7.3.0-1-amd64
        features:
          description:
            - DAMON sysfs features of the running kernel, without writing anything.
            - One boolean per sysfs feature, detected by the files that exist (by the kernel release where no
              kdamond has the directory to look in), plus the lists of C(operations) (from C(avail_operations)),
              C(actions), C(goal_metrics) and C(filter_types) that the kernel release supports.
            - Empty when DAMON sysfs is not available.
          type: dict
          returned: always
          sample:
            filters: true
            apply_interval: true
            quota_goals: true
            effective_quotas: true
            goal_metric: true
            target_nid: true
            filter_allow: true
            core_ops_filters: true
            intervals_goal: true
            goal_nid: true
            refresh_ms: true
            dests: true
            addr_unit: true
            goal_path: false
            obsolete_target: false
            max_nr_snapshots: false
            goal_tuner: false
            operations: [vaddr, fvaddr, paddr]
            actions: [willneed, cold, pageout, hugepage, nohugepage, lru_prio, lru_deprio, migrate_hot, migrate_cold, stat]
            goal_metrics: [user_input, some_mem_psi_us, node_mem_used_bp, node_mem_free_bp]
            filter_types: [anon, memcg, addr, target, young, hugepage_size, unmapped, active]
        exclusive_modules:
          description:
            - The DAMON kernel modules that run DAMON exclusively and are built into the kernel
              (C(damon_stat), C(damon_reclaim), C(damon_lru_sort)), each with whether it is enabled.
            - While one of them is enabled, a sysfs kdamond cannot start.
          type: dict
          returned: always
          sample:
            damon_stat: true
            damon_reclaim: false
            damon_lru_sort: false
        memory_psi:
          description:
            - Memory pressure stall information, C(/proc/pressure/memory); V(null) when PSI is disabled.
            - The C(total) values are cumulative microseconds.
          type: dict
          returned: always
          sample:
            some: {avg10: 0.12, avg60: 0.08, avg300: 0.02, total: 1834021}
            full: {avg10: 0.0, avg60: 0.01, avg300: 0.0, total: 402313}
        managed:
          description:
            - Indexes of the kdamonds this collection configured in this boot, from C(/var/lib/kernel-damon/managed.json).
            - Empty when that file cannot be read or has the wrong shape.
          type: list
          elements: int
          returned: always
          sample: [0]
        kdamonds:
          description:
            - The kdamonds, in index order; only those of O(kdamonds) when it is given.
          type: list
          elements: dict
          returned: always
          contains:
            index:
              description: The kdamond index C(<K>).
              type: int
              sample: 0
            state:
              description: V(on) or V(off).
              type: str
              sample: "on"
            pid:
              description: The pid of the C(kdamond.<K>) thread, V(-1) when it is not running.
              type: int
              sample: 812
            managed:
              description: Whether this collection configured the kdamond.
              type: bool
              sample: true
            contexts:
              description: The monitoring contexts of the kdamond; zero or one.
              type: list
              elements: dict
              contains:
                operations:
                  description: The operations set, V(paddr), V(vaddr) or V(fvaddr).
                  type: str
                  sample: paddr
                intervals:
                  description: C(monitoring_attrs/intervals), in microseconds.
                  type: dict
                  sample: {sample_us: 5000, aggr_us: 100000, update_us: 1000000}
                nr_regions:
                  description: C(monitoring_attrs/nr_regions).
                  type: dict
                  sample: {min: 10, max: 1000}
                targets:
                  description: The monitoring targets, with their C(pid_target) and initial regions.
                  type: list
                  elements: dict
                  sample:
                    - pid_target: 0
                      regions:
                        - {start: 4294967296, end: 6442450944}
                schemes:
                  description: The DAMOS schemes of the context, in index order.
                  type: list
                  elements: dict
                  contains:
                    action:
                      description: The DAMOS action.
                      type: str
                      sample: pageout
                    access_pattern:
                      description: C(access_pattern/{sz,nr_accesses,age}/{min,max}), as the kernel takes them.
                      type: dict
                      sample:
                        sz: {min: 0, max: 18446744073709551615, min_human: 0 B, max_human: max}
                        nr_accesses: {min: 0, max: 20}
                        age: {min: 0, max: 18446744073709551615}
                    quotas:
                      description: The quotas of the scheme and their auto-tuning goals.
                      type: dict
                      contains:
                        ms:
                          description: Time quota, milliseconds per charge window.
                          type: int
                          sample: 0
                        bytes:
                          description: Size quota, bytes per charge window; also the cap on the goal-tuned quota.
                          type: int
                          sample: 0
                        reset_interval_ms:
                          description: The charge window.
                          type: int
                          sample: 1000
                        effective_bytes:
                          description:
                            - The effective size quota the kernel uses, bytes per charge window; Linux 6.9 and later.
                            - Current after O(refresh=true) while the kdamond runs.
                          type: int
                          sample: 1073741824
                        effective_bytes_human:
                          description: RV(ansible_facts.damon.kdamonds[].contexts[].schemes[].quotas.effective_bytes), in binary units.
                          type: str
                          sample: 1.0 GiB
                        weights:
                          description: Prioritisation weights, per-mille.
                          type: dict
                          sample: {sz_permil: 0, nr_accesses_permil: 10, age_permil: 1}
                        goals:
                          description: The quota goals, in index order.
                          type: list
                          elements: dict
                          contains:
                            target_metric:
                              description: The goal metric.
                              type: str
                              sample: some_mem_psi_us
                            target_value:
                              description: The target, in the metric's unit (microseconds, basis points or the user's unit).
                              type: int
                              sample: 500
                            current_value:
                              description: The value last written; the kernel does not update it.
                              type: int
                              sample: 0
                            nid:
                              description: NUMA node of the C(node_*) metrics; absent before Linux 6.16.
                              type: int
                              sample: 0
                            path:
                              description: cgroup of the C(node_memcg_*) metrics; absent before Linux 6.19.
                              type: str
                              sample: ""
                    stats:
                      description:
                        - C(stats/), current after O(refresh=true) while the kdamond runs; byte counts with C(*_human) twins.
                      type: dict
                      sample: {nr_tried: 5120, sz_tried: 2147483648, sz_tried_human: 2.0 GiB, nr_applied: 3072,
                               sz_applied: 1073741824, sz_applied_human: 1.0 GiB, qt_exceeds: 17}
                    watermarks:
                      description: C(watermarks/).
                      type: dict
                      sample: {metric: none, interval_us: 0, high: 0, mid: 0, low: 0}
                    filters:
                      description:
                        - The DAMOS filters in the order the kernel evaluates them, each with the sysfs files of its
                          directory and C(layer), V(core) (C(core_filters/)), V(ops) (C(ops_filters/)) or V(legacy) (C(filters/)).
                      type: list
                      elements: dict
                      sample:
                        - {type: anon, matching: true, allow: false, layer: ops}
"""

from ansible.module_utils.basic import AnsibleModule

# Only what reads: the facts never load what plans or writes a configuration.
from ansible_collections.kernel.damon.plugins.module_utils._damon_facts import gather_facts
from ansible_collections.kernel.damon.plugins.module_utils._damon_module import run_reader


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            kdamonds=dict(type='list', elements='int'),
            refresh=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )


def _read(host, params):
    facts = gather_facts(host, kdamonds=params['kdamonds'], refresh=params['refresh'])
    return dict(changed=False, ansible_facts=dict(damon=facts))


def main():
    run_reader(build_module(), _read)


if __name__ == '__main__':
    main()
