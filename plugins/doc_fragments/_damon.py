# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    # The options every writer shares: which kdamond and scheme, and the ownership gate.
    DOCUMENTATION = r"""
options:
  kdamond:
    description:
      - Index of the kdamond, the C(kdamonds/<K>) directory under C(/sys/kernel/mm/damon/admin).
      - An existing kdamond, or, where the module creates one, the next index (the current number of kdamonds).
        A larger index is refused before any change.
    type: int
    default: 0
  scheme:
    description:
      - Index of the DAMOS scheme in context 0 of the kdamond, C(contexts/0/schemes/<S>).
      - DAMON matches schemes by index when it commits, so keep each scheme at a stable index.
    type: int
    default: 0
  take_over:
    description:
      - Allow writing to a kdamond that this collection did not configure.
      - A kdamond that has contexts or is running, and that is not recorded in
        C(/var/lib/kernel-damon/managed.json) as configured by this collection in this boot,
        belongs to someone else (for example C(damo) or an operator). Without
        O(take_over=true), the module fails instead of changing it.
      - Once the module has configured the kdamond, the kdamond is recorded with the boot's id
        and its directory, and later runs in the same boot no longer need this option. After a
        reboot, or after another tool wrote C(nr_kdamonds) (which makes every kdamond directory
        anew), a configured kdamond is foreign again; the boot unit of the role
        C(kernel.damon.damos_autotune) configures its kdamond again at boot.
      - An ownership record that cannot be read or has the wrong shape means that nothing is
        ours; O(take_over=true) claims the kdamond and writes the record anew.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for the collection's lock while another writer of this collection (another
        module run, or the feeder of the role C(kernel.damon.damos_autotune)) holds it, before failing without
        a change.
      - A run holds the lock from reading DAMON to committing, well under a second on a real host.
        Many runs started at once on a slow host queue for longer.
    type: int
    default: 60
attributes:
  action_group:
    description: Use C(group/kernel.damon.damon) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - kernel.damon.damon
requirements:
  - Linux with C(CONFIG_DAMON_SYSFS), that is the directory C(/sys/kernel/mm/damon/admin)
  - Root on the managed host (C(become=true)), because every DAMON sysfs file is readable and writable by root only
notes:
  - The module writes only below C(/sys/kernel/mm/damon/admin/kdamonds/), records the kdamonds
    it configured in C(/var/lib/kernel-damon/managed.json), and holds an exclusive C(flock) on
    C(/run/kernel-damon/lock) (a directory only root may write) from reading to committing, so
    that it never interleaves with another writer of this collection and no other user can hold
    it up.
  - Before its first write below a running kdamond, a run records what it will write in
    C(/var/lib/kernel-damon/pending.json) and removes it after its commit. If a run is
    interrupted in between (killed, a controller timeout), the next run of any module, or the
    boot unit, completes it with a commit; the feeder of the role does not feed until then.
  - A value file is written only when its value differs, and an C(nr_*) file only when the
    number of entries changes, because the kernel recreates every directory below an C(nr_*)
    file with default values. All options are validated before the first write.
  - DAMON sysfs files hold staged input, not what the kdamond runs. The module treats
    "sysfs equals the desired state, and no run was interrupted before its commit" as
    converged and commits after every change.
  - The kernel's DAMON sysfs lock is global; while another tool holds it, reads and writes
    fail with C(EBUSY). The module retries those with a bounded backoff.
  - DAMON settings do not survive a reboot.
"""

    # Attribute descriptions, so that modules only say how much they support.
    ATTRIBUTES = r"""
options: {}
attributes:
  check_mode:
    description:
      - Can run in check mode and return a changed status prediction without modifying the target.
  diff_mode:
    description:
      - Returns details on what has changed (or would change in check mode) when in diff mode.
  platform:
    description:
      - Target operating systems and families that the module can operate against.
    support: full
    platforms: linux
"""

    FACTS_ATTRIBUTES = r"""
options: {}
attributes:
  facts:
    description:
      - Returns an C(ansible_facts) dictionary that updates the existing host facts.
"""

    # What the read-only modules (damos_facts, damos_sample) need, and how much they support
    # check and diff mode.
    READ_ONLY_ATTRIBUTES = r"""
options: {}
requirements:
  - Linux with C(CONFIG_DAMON_SYSFS), that is the directory C(/sys/kernel/mm/damon/admin)
  - Root on the managed host (C(become=true)), because every DAMON sysfs file is readable by root only
attributes:
  check_mode:
    support: full
    details:
      - The module changes no configuration. With O(refresh=true) it asks the kernel to refresh
        the read-only statistics and effective quotas; in check mode it writes nothing at all, not
        even those requests, and reports what the files last held.
  diff_mode:
    support: N/A
    details:
      - The module changes no configuration.
"""
