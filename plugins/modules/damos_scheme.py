#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: damos_scheme
short_description: Manage a DAMOS scheme and the kdamond that runs it
version_added: 0.1.0
author:
  - kernel.damon maintainers (!UNKNOWN)
description:
  - Configures one DAMON-based Operation Scheme (DAMOS) through the DAMON sysfs interface
    C(/sys/kernel/mm/damon/admin), together with the monitoring context it runs in, and
    starts, updates online or stops the kdamond.
  - The scheme lives at C(kdamonds/<K>/contexts/0/schemes/<S>), where O(kdamond) is C(<K>) and O(scheme) is C(<S>).
    A kdamond that does not exist yet is created by growing C(nr_kdamonds); the other kdamonds keep their settings.
    O(kdamond) may be at most the current number of kdamonds, so that kdamonds are added one at a time.
  - B(Omitted means kept.) An option left out keeps what the host has. When the kdamond,
    context or scheme is being created, an omitted option gets the creation default given in its description.
    O(goals) and O(filters), when given, are the exact list; when omitted, they are kept as they are.
  - A running kdamond is updated online. When every changed file is below C(quotas/goals/),
    the module writes C(commit_schemes_quota_goals) to the kdamond's C(state), which keeps
    the auto-tuned quota; otherwise it writes C(commit). It then reads C(state) again. If
    the commit stopped the kdamond, the module reports it, restores the previous configuration
    and restarts the kdamond.
  - Time, size and ratio options accept a plain integer, in the unit of the sysfs file
    behind the option (given in each description), or a string with a unit.
    Times take V(ns), V(us), V(ms), V(s), V(m) or V(h), for example V(500us) or V(1s);
    the result must be a whole number in the file's unit, so V(1500us) is an error where the file holds milliseconds.
    Every number must fit the kernel's type of its file, which the module checks before the first write.
    Times, sizes, ages, access rates and addresses are at most 2^64-1 (unsigned long), O(quotas.weights) at most
    2^32-1 (unsigned int), O(filters[].target_idx) at most 2^31-1 (int).
    Sizes take V(B), V(K), V(KiB), V(M), V(MiB), V(G), V(GiB), V(T) or V(TiB), all binary
    (V(4K) is 4096 bytes), or V(max) for 2^64-1.
    Ratios take a plain integer in basis points (1/10000), V(N%) (V(0.5%) is 50 bp) or V(Nbp).
  - Use M(kernel.damon.damos_quota_goal) to change a single quota goal, for example from a
    feeder that updates a C(user_input) goal, and M(kernel.damon.damos_facts) to read the
    effective quota and the statistics.
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
    details:
      - The diff shows the parsed values the module manages (for example V(500us) as C(500)), not raw files.
options:
  state:
    description:
      - V(present) creates the scheme at O(scheme) or updates it.
        O(scheme) may be at most the current number of schemes, so that schemes are appended in order.
      - V(absent) removes the scheme at O(scheme). The schemes after it move down by one index.
        Only O(kdamond), O(scheme), O(running) and the ownership and stop options matter then.
    type: str
    choices: [present, absent]
    default: present
  running:
    description:
      - Whether the kdamond runs when the module is done.
      - V(true) starts a stopped kdamond (C(on)) or commits to a running one.
        V(false) stops it (C(off)) after staging the configuration.
      - Defaults to V(true) with O(state=present). With O(state=absent), the kdamond keeps
        running or stays stopped unless this is set.
    type: bool
  operations:
    description:
      - The monitoring operations set of the context.
      - V(paddr) monitors the physical address space of the whole system,
        V(vaddr) and V(fvaddr) the virtual address space of one process (O(pid), O(pidfile) or O(systemd_unit)).
      - Checked against C(avail_operations) of the running kernel.
      - Creation default V(paddr).
    type: str
    choices: [paddr, vaddr, fvaddr]
  pid:
    description:
      - Process to monitor with O(operations=vaddr) or O(operations=fvaddr), written to C(targets/0/pid_target).
      - One of O(pid), O(pidfile) or O(systemd_unit) is required when the context is created with, or switched to,
        V(vaddr) or V(fvaddr); afterwards, the target is kept when all three are omitted.
      - A C(vaddr) kdamond stops by itself when its target process exits.
    type: int
  pidfile:
    description:
      - File holding the pid of the process to monitor, read on the managed host at every run.
      - It must be a regular file, not a symbolic link (its last component), FIFO or device, holding one decimal
        pid in at most 32 bytes (a trailing newline is fine).
      - The module runs as root, so it trusts the file as systemd trusts C(PIDFile=). A pidfile that only root can write
        names any process. A pidfile owned by another user, or one that root owns but its group can write, names only
        a process that runs as the file's owner. A world-writable pidfile is refused. The module fails before any
        change when one of these rules is broken.
    type: path
  systemd_unit:
    description:
      - systemd unit whose C(MainPID) is the process to monitor, resolved at every run.
        After the service restarts, the next run moves the target to the new process.
      - A full unit name ending in C(.service) or C(.scope), such as V(web.service) or V(getty@tty1.service), made of
        letters, digits, C(:), C(_), C(.), C(@), C(-) and backslashes only, not starting with C(-); the module checks it
        before it runs C(systemctl show -p MainPID --value -- <unit>).
      - The module fails when the unit has no main process.
    type: str
  regions:
    description:
      - Monitoring target regions of target 0, C(targets/0/regions/<R>/{start,end}), sorted and not overlapping.
      - Creation default with O(operations=paddr) the largest C(System RAM) range of C(/proc/iomem).
        With O(operations=vaddr), omitted regions let DAMON choose them from the process's mappings.
        With O(operations=fvaddr), regions are needed when the scheme is created.
    type: list
    elements: dict
    suboptions:
      start:
        description:
          - Start address, inclusive. A plain integer is a byte address; size strings such as V(4G) are accepted.
        type: raw
        required: true
      end:
        description:
          - End address, exclusive. A plain integer is a byte address; size strings such as V(8G) are accepted.
        type: raw
        required: true
  intervals:
    description:
      - Monitoring intervals of the context, C(monitoring_attrs/intervals/).
    type: dict
    suboptions:
      sample:
        description:
          - Sampling interval, C(sample_us). A plain integer is in microseconds. Must not exceed O(intervals.aggr).
          - Creation default V(5ms).
        type: raw
      aggr:
        description:
          - Aggregation interval, C(aggr_us), the unit of a region's age and the default apply interval of schemes.
            A plain integer is in microseconds.
          - Creation default V(100ms).
        type: raw
      update:
        description:
          - Operations update interval, C(update_us). A plain integer is in microseconds.
          - Creation default V(1s).
        type: raw
  intervals_goal:
    description:
      - Monitoring intervals auto-tuning, C(monitoring_attrs/intervals/intervals_goal/). Linux 6.15 and later.
      - While it is active, the kernel rewrites C(sample_us) and C(aggr_us), so the module
        leaves O(intervals.sample) and O(intervals.aggr) out of its comparison.
    type: dict
    suboptions:
      access_bp:
        description:
          - Target share of the observable access events captured per aggregation, C(access_bp).
            A ratio; a plain integer is in basis points. About V(4%) is the usual choice.
        type: raw
      aggrs:
        description:
          - Number of aggregation intervals per tuning step, C(aggrs). V(0) disables the auto-tuning.
        type: int
      min_sample:
        description:
          - Lower bound of the tuned sampling interval, C(min_sample_us). A plain integer is in microseconds.
        type: raw
      max_sample:
        description:
          - Upper bound of the tuned sampling interval, C(max_sample_us). A plain integer is in microseconds.
        type: raw
  nr_regions:
    description:
      - Bounds on the number of monitoring regions, C(monitoring_attrs/nr_regions/).
    type: dict
    suboptions:
      min:
        description:
          - Minimum number of regions; at least V(3). Creation default V(10).
        type: int
      max:
        description:
          - Maximum number of regions; at least O(nr_regions.min). Creation default V(1000).
        type: int
  action:
    description:
      - The DAMOS action, C(schemes/<S>/action). Required when the scheme is created.
      - Checked against the running kernel and O(operations). With V(paddr), DAMON supports
        V(pageout), V(lru_prio), V(lru_deprio), V(migrate_hot), V(migrate_cold) and V(stat);
        with V(vaddr) and V(fvaddr), V(willneed), V(cold), V(pageout), V(hugepage),
        V(nohugepage), V(migrate_hot), V(migrate_cold), V(stat) and, where the kernel has it (first seen on 7.3), V(collapse).
    type: str
    choices: [willneed, cold, pageout, hugepage, nohugepage, lru_prio, lru_deprio, migrate_hot, migrate_cold, stat, collapse]
  apply_interval:
    description:
      - How often the scheme is applied, and so how often its quota and goals are evaluated,
        C(apply_interval_us). A plain integer is in microseconds. V(0) means the aggregation interval. Linux 6.7 and later.
    type: raw
  target_nid:
    description:
      - Destination NUMA node of O(action=migrate_hot) and O(action=migrate_cold), C(target_nid). Linux 6.11 and later.
    type: int
  access_pattern:
    description:
      - The regions the action applies to, C(schemes/<S>/access_pattern/). Each range is closed.
      - Creation default all regions, that is size V(0) to V(max), access rate V(0) to V(100%) and age V(0) to V(max).
        Under a quota, the O(quotas.weights) decide which of them come first.
    type: dict
    suboptions:
      size:
        description:
          - Region size range, C(sz/{min,max}). Sizes; a plain integer is in bytes.
        type: dict
        suboptions:
          min:
            description: Smallest region size.
            type: raw
          max:
            description: Largest region size.
            type: raw
      access_rate:
        description:
          - Access frequency range, C(nr_accesses/{min,max}). A plain integer is the number of samples per
            aggregation interval that saw an access; V(N%) is a share of the maximum, the aggregation
            interval divided by the sampling interval.
        type: dict
        suboptions:
          min:
            description: Lowest access rate.
            type: raw
          max:
            description: Highest access rate.
            type: raw
      age:
        description:
          - Age range, C(age/{min,max}), that is how long the access rate of a region stayed about the same.
            A plain integer counts aggregation intervals; a time such as V(2m) is divided by the
            aggregation interval; V(max) is unbounded.
        type: dict
        suboptions:
          min:
            description: Lowest age.
            type: raw
          max:
            description: Highest age.
            type: raw
  quotas:
    description:
      - Limits on how much memory the action may be applied to per charge window, C(schemes/<S>/quotas/).
      - With O(goals), the kernel auto-tunes the effective size quota within these limits every
        O(quotas.reset_interval). A new scheme starts from a quota of 1 byte that at best doubles per
        window, so allow about 30 windows before judging it.
    type: dict
    suboptions:
      time:
        description:
          - Time quota, C(ms), that is how long the action may run per window. A plain integer is in milliseconds.
            V(0) means no time quota. Creation default V(0).
        type: raw
      size:
        description:
          - Size quota, C(bytes), that is how much memory the action may be applied to per window, and the cap on the
            goal-tuned quota. A plain integer is in bytes. V(0) means no size quota. Creation default V(0).
        type: raw
      reset_interval:
        description:
          - The charge window, C(reset_interval_ms). A plain integer is in milliseconds.
            This is what C(damo) calls the quota interval. Creation default V(1s).
        type: raw
      weights:
        description:
          - How regions are prioritised under the quota, C(weights/), each in per-mille, at most 4294967295.
          - Creation default O(quotas.weights.size=0), O(quotas.weights.access_rate=10), O(quotas.weights.age=1),
            which puts the coldest memory first.
        type: dict
        suboptions:
          size:
            description: Weight of the region size, C(sz_permil).
            type: int
          access_rate:
            description: Weight of the access rate, C(nr_accesses_permil).
            type: int
          age:
            description: Weight of the age, C(age_permil).
            type: int
      goal_tuner:
        description:
          - How the goals tune the quota, C(goal_tuner). Linux 7.1 and later.
          - V(consist) adjusts the quota in proportion to the distance from the target (the only behaviour before 7.1).
            V(temporal) applies the full quota until the target is reached, then pauses the scheme.
        type: str
        choices: [consist, temporal]
  goals:
    description:
      - The quota auto-tuning goals of the scheme, C(quotas/goals/<G>/), in order. Linux 6.8 and later
        (V(user_input) only); the other metrics need later kernels, see O(goals[].metric).
      - When given, the scheme has exactly these goals, each given in full; V([]) removes all of them.
        When omitted, the goals are kept.
      - The kernel uses the most satisfied goal, so extra goals make the scheme less aggressive.
    type: list
    elements: dict
    suboptions:
      metric:
        description:
          - What the goal measures, C(target_metric).
          - V(user_input) is a value you feed through O(goals[].current) (6.8).
            V(some_mem_psi_us) is the system's I(some) memory pressure stall time per charge window (6.9).
            V(node_mem_used_bp) and V(node_mem_free_bp) are the used and free memory of node O(goals[].nid) (6.16).
            V(node_memcg_used_bp) and V(node_memcg_free_bp) are the memory of cgroup O(goals[].path) on node O(goals[].nid) (6.19).
            V(active_mem_bp) and V(inactive_mem_bp) are the active and inactive share of the LRU lists (7.0).
            V(node_eligible_mem_bp) is the share of the memory eligible for the scheme's access pattern that sits on
            node O(goals[].nid), for O(operations=paddr) only (first seen on 7.3).
        type: str
        required: true
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
          - The value to reach, C(target_value); must be above 0, because the kernel ignores a goal whose target is 0.
          - A time for V(some_mem_psi_us) (a plain integer is in microseconds), a ratio for the C(*_bp) metrics
            (a plain integer is in basis points), a plain integer for V(user_input).
        type: raw
        required: true
      current:
        description:
          - The current value of a V(user_input) goal, C(current_value). Ignored by the kernel for other metrics.
        type: int
      nid:
        description:
          - NUMA node of the C(node_*) metrics, C(nid); checked against C(/sys/devices/system/node/has_memory).
          - Required with the C(node_*) metrics.
        type: int
      path:
        description:
          - cgroup of the C(node_memcg_*) metrics, C(path), relative to the cgroup v2 mount, for example V(/workload.slice);
            checked against C(/sys/fs/cgroup).
          - Required with the C(node_memcg_*) metrics.
        type: str
  watermarks:
    description:
      - Activation of the scheme by free memory, C(schemes/<S>/watermarks/).
      - Creation default O(watermarks.metric=none), always active.
    type: dict
    suboptions:
      metric:
        description:
          - V(none) keeps the scheme always active; V(free_mem_rate) uses the system's free memory, in per-mille.
        type: str
        choices: [none, free_mem_rate]
      interval:
        description:
          - How often the metric is checked, C(interval_us). A plain integer is in microseconds.
        type: raw
      high:
        description:
          - Per-mille; above it the scheme is deactivated.
        type: int
      mid:
        description:
          - Per-mille; below it (and not below O(watermarks.low)) the scheme is activated.
        type: int
      low:
        description:
          - Per-mille; below it the scheme is deactivated.
        type: int
  filters:
    description:
      - DAMOS filters, evaluated in order; the first filter that matches a piece of memory decides.
      - When given, the scheme has exactly these filters; V([]) removes all of them. When omitted, the filters are kept.
      - On Linux 6.15 and later, V(addr) and V(target) filters go to C(core_filters/) and the others to
        C(ops_filters/); core filters are always evaluated first. Earlier kernels use C(filters/).
        Ops-layer filters work with O(operations=paddr) only.
    type: list
    elements: dict
    suboptions:
      type:
        description:
          - What the filter matches.
          - V(anon) anonymous pages (6.3), V(memcg) pages of the cgroup O(filters[].memcg_path) (6.3),
            V(addr) an address range (6.6), V(target) a monitoring target (6.6), V(young) recently accessed pages (6.10),
            V(hugepage_size) huge pages in a size range (6.15), V(unmapped) unmapped pages (6.15), V(active) pages on an active LRU list (6.15).
        type: str
        required: true
        choices: [anon, active, memcg, young, hugepage_size, unmapped, addr, target]
      matching:
        description:
          - V(true) applies the filter to the memory that matches O(filters[].type), V(false) to the memory that does not.
        type: bool
        default: true
      allow:
        description:
          - V(false) rejects the memory the filter applies to, V(true) allows it. V(true) needs Linux 6.14 or later.
          - Memory that no filter applies to is allowed if the last filter rejects, and rejected if the last filter allows.
        type: bool
        default: false
      memcg_path:
        description:
          - cgroup path of a V(memcg) filter, relative to the cgroup v2 mount; checked against C(/sys/fs/cgroup).
        type: str
      addr_start:
        description:
          - Start of the range of an V(addr) filter, inclusive. A plain integer is a byte address.
        type: raw
      addr_end:
        description:
          - End of the range of an V(addr) filter, exclusive. A plain integer is a byte address.
        type: raw
      target_idx:
        description:
          - Index of the monitoring target of a V(target) filter, C(damon_target_idx), at most 2147483647.
        type: int
      min:
        description:
          - Smallest huge page size of a V(hugepage_size) filter. A plain integer is in bytes.
        type: raw
      max:
        description:
          - Largest huge page size of a V(hugepage_size) filter. A plain integer is in bytes.
        type: raw
  stop_kdamonds:
    description:
      - Allow stopping the running kdamonds when O(kdamond) does not exist yet.
      - The kernel refuses to change C(nr_kdamonds) while any kdamond runs. With this option, the module
        snapshots the running kdamonds, stops them, grows C(nr_kdamonds), restores their settings and restarts them.
        Their quota auto-tuning then starts again from 1 byte.
      - Without it, the module fails and names this option.
    type: bool
    default: false
  stop_exclusive_modules:
    description:
      - Allow disabling the DAMON_STAT, DAMON_RECLAIM and DAMON_LRU_SORT kernel modules when they keep the kdamond from starting.
      - These modules run DAMON exclusively, so while one of them is enabled, writing C(on) fails with C(EBUSY).
        With this option, the module writes V(N) to C(/sys/module/damon_<name>/parameters/enabled) before starting the kdamond.
      - If the kdamond then fails to start, the module restores the previous configuration and writes V(Y) again to
        the modules it disabled; the error message says whether they run again or, naming them, that they stay off.
      - Without it, the module fails, naming the module that holds DAMON and this option.
    type: bool
    default: false
notes:
  - B(EBUSY at start on Debian 7.x kernels.) Debian's 7.x kernels (trixie-backports) enable
    DAMON_STAT at boot. Because DAMON_STAT runs DAMON exclusively, starting any sysfs kdamond fails
    with C(EBUSY) until it is disabled. Set O(stop_exclusive_modules=true) to let the module disable it,
    and boot with C(damon_stat.enabled=N) on the kernel command line to keep it off after a reboot.
    M(kernel.damon.damos_facts) reports it in RV(kernel.damon.damos_facts#module:ansible_facts.damon.exclusive_modules).
  - Ownership, O(take_over) and O(stop_kdamonds) guard other people's kdamonds. The module never writes,
    stops or wipes a kdamond it did not configure unless told to.
  - The kernel never writes measured values back to C(current_value), so a PSI goal shows the value last written there.
seealso:
  - module: kernel.damon.damos_quota_goal
  - module: kernel.damon.damos_facts
  - name: DAMON sysfs interface
    description: The kernel's usage guide for C(/sys/kernel/mm/damon/admin).
    link: https://docs.kernel.org/admin-guide/mm/damon/usage.html
  - name: DAMOS quota goals
    description: Aim-oriented feedback-driven auto-tuning in the DAMON design document.
    link: https://docs.kernel.org/mm/damon/design.html#aim-oriented-feedback-driven-auto-tuning
"""

EXAMPLES = r"""
# Proactive reclaim aiming at 500us of memory pressure stall per second: DAMON pages out
# the coldest memory, more of it while the stall stays below the target, less above it.
# (damo start --damos_action pageout --damos_quota_interval 1s --damos_quota_goal some_mem_psi_us 500us)
- name: Page out cold memory, aiming at 500us of memory stall per second
  kernel.damon.damos_scheme:
    kdamond: 0
    scheme: 0
    operations: paddr
    action: pageout
    quotas:
      reset_interval: 1s
    goals:
      - metric: some_mem_psi_us
        target: 500us
    # Debian's 7.x kernels run DAMON_STAT from boot, which makes starting a kdamond fail with EBUSY.
    stop_exclusive_modules: true
  become: true

# 500us proved too strict. Only the goal changes, so the running kdamond gets
# commit_schemes_quota_goals and keeps its tuned quota. Options left out keep what the
# host has: the same task as above with 750us does the same.
# (damo tune --damos_action pageout --damos_quota_interval 1s --damos_quota_goal some_mem_psi_us 750us)
- name: Allow 750us of memory stall per second
  kernel.damon.damos_scheme:
    kdamond: 0
    scheme: 0
    goals:
      - metric: some_mem_psi_us
        target: 750us
  become: true

# User feedback: the workload writes its score (queries per second) to /run/workload/score,
# and the scheme aims at a score of 10000. A feeder then keeps "current" up to date with
# kernel.damon.damos_quota_goal.
- name: Read the workload's score
  ansible.builtin.slurp:
    src: /run/workload/score
  register: workload_score

- name: Page out cold memory of the whole system, aiming at a score of 10000
  kernel.damon.damos_scheme:
    kdamond: 0
    scheme: 0
    operations: paddr
    action: pageout
    quotas:
      reset_interval: 1s
    goals:
      - metric: user_input
        target: 10000
        current: "{{ workload_score.content | b64decode | trim | int }}"
  become: true

# One process only: vaddr follows the main process of a systemd service. If the service
# restarts, the next run re-targets the new process. A vaddr kdamond stops by itself
# when its process exits.
- name: Page out cold memory of workload.service, capped at 256 MiB per second
  kernel.damon.damos_scheme:
    kdamond: 1
    scheme: 0
    operations: vaddr
    systemd_unit: workload.service
    action: pageout
    access_pattern:
      access_rate:
        min: 0
        max: 0
      age:
        min: 30s
        max: max
    quotas:
      size: 256MiB
      reset_interval: 1s
    goals:
      - metric: some_mem_psi_us
        target: 1ms
  become: true

# Preview: what would be written, without writing anything.
- name: Show the sysfs writes a new PSI target would need
  kernel.damon.damos_scheme:
    goals:
      - metric: some_mem_psi_us
        target: 1ms
  check_mode: true
  diff: true
  become: true
  register: preview

- name: Print the predicted writes
  ansible.builtin.debug:
    var: preview.sysfs_writes

- name: Remove the scheme and stop its kdamond
  kernel.damon.damos_scheme:
    kdamond: 1
    scheme: 0
    state: absent
    running: false
  become: true
"""

RETURN = r"""
diff:
  description:
    - What the module manages, before and after the run (predicted in check mode), as parsed values
      named after their sysfs files.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description:
        - C(running), whether the kdamond runs; C(context), the settings of context 0 other than its schemes
          (V(null) when it does not exist); C(scheme), the settings of the scheme (V(null) when it does not exist).
      type: dict
    after:
      description: The same after the run.
      type: dict
  sample:
    before:
      running: true
      context: {operations: paddr}
      scheme:
        action: pageout
        quotas:
          reset_interval_ms: 1000
          goals:
            - {target_metric: some_mem_psi_us, target_value: 500}
    after:
      running: true
      context: {operations: paddr}
      scheme:
        action: pageout
        quotas:
          reset_interval_ms: 1000
          goals:
            - {target_metric: some_mem_psi_us, target_value: 750}
sysfs_writes:
  description:
    - Every write, in order, as C(<path>=<value>) with the path relative to C(/sys/kernel/mm/damon/admin),
      including the keywords written to C(state). Predicted in check mode. Empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample:
    - kdamonds/0/contexts/0/schemes/0/quotas/goals/0/target_value=750
    - kdamonds/0/state=commit_schemes_quota_goals
commit:
  description:
    - The keyword that made the kdamond take the new configuration.
    - V(on) started it, V(commit) updated it online, V(commit_schemes_quota_goals) updated only its goals online,
      V(off) stopped it; V(null) when no keyword was written.
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
      description:
        - The pid of the C(kdamond.<K>) thread, V(-1) when it is not running.
        - V(null) when it is not known, in check mode for a kdamond that would be started.
      type: int
      sample: 1234
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.damon.plugins.module_utils._damon_model import (
    ACTIONS,
    FILTER_TYPE_OPTIONS,
    FILTER_TYPES,
    GOAL_TUNERS,
    OPERATIONS,
    PROCESS_OPTIONS,
    WATERMARK_METRICS,
)
from ansible_collections.kernel.damon.plugins.module_utils._damon_module import (
    goals_list_spec,
    run_writer,
    target_address_spec,
    writer_spec,
)
from ansible_collections.kernel.damon.plugins.module_utils._damon_plan import ensure_scheme


def _dict(**options):
    return dict(type='dict', options=options)


def _range(kind='raw'):
    return _dict(min=dict(type=kind), max=dict(type=kind))


def argument_spec():
    spec = target_address_spec()
    spec.update(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        # No default: with state=absent an unset value must stay distinguishable.
        running=dict(type='bool'),
        operations=dict(type='str', choices=list(OPERATIONS)),
        pid=dict(type='int'),
        pidfile=dict(type='path'),
        systemd_unit=dict(type='str'),
        regions=dict(type='list', elements='dict', options=dict(
            start=dict(type='raw', required=True),
            end=dict(type='raw', required=True),
        )),
        intervals=_dict(sample=dict(type='raw'), aggr=dict(type='raw'), update=dict(type='raw')),
        intervals_goal=_dict(
            access_bp=dict(type='raw'),
            aggrs=dict(type='int'),
            min_sample=dict(type='raw'),
            max_sample=dict(type='raw'),
        ),
        nr_regions=_range('int'),
        action=dict(type='str', choices=list(ACTIONS)),
        apply_interval=dict(type='raw'),
        target_nid=dict(type='int'),
        access_pattern=_dict(size=_range(), access_rate=_range(), age=_range()),
        quotas=_dict(
            time=dict(type='raw'),
            size=dict(type='raw'),
            reset_interval=dict(type='raw'),
            weights=_dict(size=dict(type='int'), access_rate=dict(type='int'), age=dict(type='int')),
            goal_tuner=dict(type='str', choices=list(GOAL_TUNERS)),
        ),
        goals=goals_list_spec(),
        watermarks=_dict(
            metric=dict(type='str', choices=list(WATERMARK_METRICS)),
            interval=dict(type='raw'),
            high=dict(type='int'),
            mid=dict(type='int'),
            low=dict(type='int'),
        ),
        filters=dict(
            type='list',
            elements='dict',
            options=dict(
                type=dict(type='str', required=True, choices=list(FILTER_TYPES)),
                matching=dict(type='bool', default=True),
                allow=dict(type='bool', default=False),
                memcg_path=dict(type='str'),
                addr_start=dict(type='raw'),
                addr_end=dict(type='raw'),
                target_idx=dict(type='int'),
                min=dict(type='raw'),
                max=dict(type='raw'),
            ),
            required_if=[('type', kind, needed) for kind, needed in FILTER_TYPE_OPTIONS.items()],
        ),
        stop_kdamonds=dict(type='bool', default=False),
        stop_exclusive_modules=dict(type='bool', default=False),
    )
    spec.update(writer_spec())
    return spec


def build_module():
    return AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[PROCESS_OPTIONS],
        supports_check_mode=True,
    )


def main():
    run_writer(build_module(), ensure_scheme)


if __name__ == '__main__':
    main()
