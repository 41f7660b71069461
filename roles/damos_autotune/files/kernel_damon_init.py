# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's core on a managed host (installed by the damos_autotune role): the
modules' own _damon_sysfs.py and _damon_core.py, for the feeder and the boot unit."""
