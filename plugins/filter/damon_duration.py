# -*- coding: utf-8 -*-
# Copyright (c) kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""damon_duration: a time such as 1.5s, 500ms or 2m as a whole number of a unit, parsed by the
collection's core (the parser every module of kernel.damon uses for its durations).

Runs on the controller. Documentation: damon_duration.yml.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import DamonValidationError
from ansible_collections.kernel.damon.plugins.module_utils._damon_units import TIME_UNITS, ULONG_MAX, parse_time

# A number without a unit: what bare_unit applies to.
_BARE = re.compile(r'^\s*[0-9]+(?:\.[0-9]*)?\s*$')
# Tells "no invalid= given" (raise) from any value the caller may want back, None included.
_RAISE = object()


def duration(value, unit='ns', bare_unit=None, invalid=_RAISE):
    """value (an int, a float or a string such as '1.5s') as a whole number of unit; a number
    without a unit is a number of bare_unit (default: unit)."""
    bare_unit = unit if bare_unit is None else bare_unit
    for name, given in (('unit', unit), ('bare_unit', bare_unit)):
        if given not in TIME_UNITS:
            raise AnsibleFilterError('damon_duration: %s %r is not one of %s' % (name, given, ', '.join(TIME_UNITS)))
    # A float is read as it prints (0.5 -> '0.5'); a bool stays a bool, which is no time to the core.
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if isinstance(text, str) and _BARE.match(text):
        text = text.strip() + bare_unit
    try:
        return parse_time('damon_duration', text, unit)
    except DamonValidationError:
        if invalid is not _RAISE:
            return invalid
        raise AnsibleFilterError(
            'damon_duration: %r is not a time: expected a plain number (of %s) or a number with %s, '
            'that makes a whole number of %s from 0 to %d' % (value, bare_unit, '/'.join(TIME_UNITS), unit, ULONG_MAX)
        ) from None


class FilterModule(object):
    def filters(self):
        return {'damon_duration': duration}
