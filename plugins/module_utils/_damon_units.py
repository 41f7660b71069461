# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Units: the values users write (`500us`, `1G`, `5%`, `max`) parsed into the whole numbers
DAMON's sysfs files hold, and those numbers formatted back for people.  Each parser names
the option, the value and what it accepts when it refuses one.

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible; depends on _damon_errors only.
"""

from __future__ import annotations

import re

from ._damon_errors import DamonValidationError

# The kernel's parsers of DAMON sysfs files: kstrtoul, kstrtouint, kstrtoint (damon-sysfs.md sec. 2).
ULONG_MAX = 2 ** 64 - 1
UINT_MAX = 2 ** 32 - 1
INT_MAX = 2 ** 31 - 1

# The time units a value may carry ('µs' is accepted as 'us' too).
TIME_UNITS = ('ns', 'us', 'ms', 's', 'm', 'h')
_TIME_NS = {'ns': 1, 'us': 10 ** 3, '\u00b5s': 10 ** 3, 'ms': 10 ** 6, 's': 10 ** 9,
            'm': 60 * 10 ** 9, 'h': 3600 * 10 ** 9}
_SIZE_BYTES = {'b': 1, 'k': 2 ** 10, 'kib': 2 ** 10, 'm': 2 ** 20, 'mib': 2 ** 20,
               'g': 2 ** 30, 'gib': 2 ** 30, 't': 2 ** 40, 'tib': 2 ** 40}
_NUMBER_WITH_SUFFIX = re.compile(r'^\s*([0-9]+(?:\.[0-9]*)?)\s*(\S*)\s*$')

SIZE_ACCEPTED = "a size in bytes (int) or with K/M/G/T suffix, or 'max'"
RATIO_ACCEPTED = "basis points from 0 to 10000 (int), 'N%' up to 100% or 'Nbp'"


def plain_int(value):
    """An int, or a string of digits; bool is deliberately not a number here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r'^\s*-?[0-9]+\s*$', value):
        try:
            return int(value)
        except ValueError:      # more digits than int() converts (4300): out of any range here
            return None
    return None


def _suffixed(value, suffixes, lower=False):
    """(Decimal amount, suffix) for strings like '1.5s', or None.  decimal is imported here, on
    the first value with a unit: damos_facts loads this file and never parses one, and
    importing decimal would cost it more than the rest of the file."""
    from decimal import Decimal, InvalidOperation

    if not isinstance(value, str):
        return None
    match = _NUMBER_WITH_SUFFIX.match(value)
    if not match:
        return None
    suffix = match.group(2).lower() if lower else match.group(2)
    if suffix not in suffixes:
        return None
    try:
        return Decimal(match.group(1)), suffix
    except InvalidOperation:
        return None


def _whole(amount):
    return int(amount) if amount == amount.to_integral_value() else None


def _round(amount):
    from decimal import ROUND_HALF_UP

    return int(amount.quantize(type(amount)(1), rounding=ROUND_HALF_UP))


def parse_int(option, value, minimum=0, maximum=ULONG_MAX, accepted=None):
    number = plain_int(value)
    if number is None or number < minimum or number > maximum:
        raise DamonValidationError(option, value, accepted or 'an integer from %d to %d' % (minimum, maximum))
    return number


def parse_bool(option, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('y', 'yes', 'true', 'on', '1'):
        return True
    if text in ('n', 'no', 'false', 'off', '0'):
        return False
    raise DamonValidationError(option, value, 'a boolean')


def parse_choice(option, value, choices):
    if value not in choices:
        raise DamonValidationError(option, value, 'one of ' + ', '.join(choices))
    return value


def parse_time(option, value, unit='us', maximum=ULONG_MAX):
    """A duration as a whole number of `unit` (the unit of the sysfs file behind option,
    an unsigned long for every duration DAMON has)."""
    number = plain_int(value)
    if number is None or number < 0:
        parsed = _suffixed(value, _TIME_NS)
        number = None if parsed is None else _whole(parsed[0] * _TIME_NS[parsed[1]] / _TIME_NS[unit])
    if number is not None and 0 <= number <= maximum:
        return number
    raise DamonValidationError(option, value, 'an integer number of %s, or a number with %s '
                                              'that is a whole number of %s; at most %d %s'
                                              % (unit, '/'.join(TIME_UNITS), unit, maximum, unit))


def parse_size(option, value):
    number = plain_int(value)
    if number is not None and 0 <= number <= ULONG_MAX:
        return number
    if isinstance(value, str) and value.strip().lower() == 'max':
        return ULONG_MAX
    parsed = _suffixed(value, _SIZE_BYTES, lower=True)
    if parsed is not None:
        result = _whole(parsed[0] * _SIZE_BYTES[parsed[1]])
        if result is not None and result <= ULONG_MAX:
            return result
    raise DamonValidationError(option, value, SIZE_ACCEPTED)


def parse_ratio(option, value):
    """Basis points (1/10000) of a whole, so at most 10000 (100%)."""
    number = plain_int(value)
    if number is None:
        parsed = _suffixed(value, ('%', 'bp'))
        if parsed is not None:
            number = _whole(parsed[0] * (100 if parsed[1] == '%' else 1))
    if number is not None and 0 <= number <= 10000:
        return number
    raise DamonValidationError(option, value, RATIO_ACCEPTED)


def parse_access_rate(option, value, max_samples):
    """Samples per aggregation interval; 'N%' is relative to aggr/sample (rounded)."""
    number = plain_int(value)
    if number is not None and 0 <= number <= ULONG_MAX:
        return number
    parsed = _suffixed(value, ('%',))
    if parsed is not None and parsed[0] <= 100:
        return _round(parsed[0] * max_samples / 100)
    raise DamonValidationError(option, value, "samples per aggregation interval (int, %d is every sample here, "
                                              "at most %d) or 'N%%' of every sample" % (max_samples, ULONG_MAX))


def parse_age(option, value, aggr_us):
    """Aggregation intervals; a time is divided by the aggregation interval (rounded)."""
    number = plain_int(value)
    if isinstance(value, str) and value.strip().lower() == 'max':
        return ULONG_MAX
    if number is None or number < 0:
        parsed = _suffixed(value, _TIME_NS)
        if parsed is not None and aggr_us > 0:
            number = _round(parsed[0] * _TIME_NS[parsed[1]] / _TIME_NS['us'] / aggr_us)
    if number is not None and 0 <= number <= ULONG_MAX:
        return number
    raise DamonValidationError(option, value, "aggregation intervals (int), a time such as '2m', or 'max'; at "
                                              "most %d aggregation intervals" % ULONG_MAX)


def format_us(value):
    """Microseconds in the largest unit that keeps the value whole: '500 us', '1 s'."""
    for factor, unit in ((3600 * 10 ** 6, 'h'), (60 * 10 ** 6, 'm'), (10 ** 6, 's'), (10 ** 3, 'ms')):
        if value and value % factor == 0:
            return '%d %s' % (value // factor, unit)
    return '%d us' % value


def format_bytes(value):
    if value >= ULONG_MAX:
        return 'max'
    amount = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'):
        if amount < 1024:
            return '%d B' % value if unit == 'B' else '%.1f %s' % (amount, unit)
        amount /= 1024
    return '%.1f EiB' % amount


def sysfs_value(value):
    """Values are written as decimal strings (the kernel parses base 0: never zero-pad)."""
    if isinstance(value, bool):
        return 'Y' if value else 'N'
    return str(value)


def kernel_version(release):
    match = re.match(r'(\d+)\.(\d+)(?:\.(\d+))?', release or '')
    return tuple(int(part or 0) for part in match.groups()) if match else (0, 0, 0)


def parse_node_list(text):
    """'0-1,3' (the kernel's node list format) -> {0, 1, 3}."""
    nodes = set()
    for part in text.strip().split(','):
        if '-' in part:
            first, last = part.split('-', 1)
            nodes.update(range(int(first), int(last) + 1))
        elif part:
            nodes.add(int(part))
    return nodes


def parse_psi(text):
    psi = {}
    for line in text.splitlines():
        fields = line.split()
        if fields:
            values = dict(field.split('=', 1) for field in fields[1:] if '=' in field)
            psi[fields[0]] = {key: (int(value) if key == 'total' else float(value))
                              for key, value in values.items()}
    return psi
