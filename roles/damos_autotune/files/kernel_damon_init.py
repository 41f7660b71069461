# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's core on a managed host (installed by the damos_autotune role): the
modules' own module_utils files that the feeder and the boot unit import (the role's
__damos_autotune_core_files), unchanged: they import each other relatively."""
