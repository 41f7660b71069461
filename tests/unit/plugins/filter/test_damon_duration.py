# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damon_duration: a time as a whole number of a unit, read by the modules' parser."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.kernel.damon.plugins.filter.damon_duration import FilterModule, duration

S = 10 ** 9


@pytest.mark.parametrize('value, ns', [
    ('1.5s', 1500000000), ('500ms', 500000000), ('2m', 120 * S), ('1h', 3600 * S), ('100us', 100000),
    ('250ns', 250), ('10 ms', 10000000), (' 2s ', 2 * S), ('0.29s', 290000000), ('3.000000001s', 3000000001),
    ('1.s', S), ('1\u00b5s', 1000), ('0s', 0),
])
def test_a_time_with_a_unit(value, ns):
    assert duration(value) == ns
    assert duration(value, 'ns', bare_unit='s') == ns


def test_a_plain_number_counts_in_bare_unit():
    # Default: the unit of the result, as the modules read a plain integer in their option's unit.
    assert duration(10) == 10 and duration('10') == 10
    assert duration(10, 'ms') == 10 and duration('1500', 'us') == 1500
    # The role's reading: seconds, with or without a decimal point, as an int, a float or a string.
    for value, ns in ((10, 10 * S), ('10', 10 * S), (0.5, S // 2), ('0.5', S // 2), (4.35, 4350000000),
                      ('4.35', 4350000000), (' 2 ', 2 * S), ('0.0001', 100000), (0, 0)):
        assert duration(value, 'ns', bare_unit='s') == ns, value


def test_other_units():
    assert duration('1.5s', 'ms') == 1500
    assert duration('2m', 's') == 120
    assert duration('120', 'm', bare_unit='s') == 2 and duration('90', 'm', bare_unit='s', invalid=-1) == -1
    assert duration('1.5', 'us', bare_unit='ms') == 1500


@pytest.mark.parametrize('value', [
    'x', '', ' ', '-1', -1, '1e3', '1e-05', 1e-05, '1S', 'S', 's', '1 sec', '.5s', '+1s', '1.5ns', True, False,
    None, [1], {'s': 1}, '100000000000000000000000', 2 ** 64,
])
def test_what_is_not_a_time_fails_with_the_value_named(value):
    with pytest.raises(AnsibleFilterError, match=r'damon_duration: .* is not a time'):
        duration(value, 'ns', bare_unit='s')
    assert duration(value, 'ns', bare_unit='s', invalid=-1) == -1
    assert duration(value, invalid=None) is None


def test_not_a_whole_number_of_the_unit():
    with pytest.raises(AnsibleFilterError, match="'1500us' is not a time.*whole number of ms"):
        duration('1500us', 'ms')
    # A plain number in the unit itself must be an integer.
    assert duration('0.5', 's', invalid='bad') == 'bad'
    assert duration('0.5', 'ms', bare_unit='s') == 500


def test_the_units_are_checked():
    with pytest.raises(AnsibleFilterError, match="unit 'sec' is not one of ns, us, ms, s, m, h"):
        duration('1s', 'sec')
    # A wrong unit is the playbook's error, never an invalid input.
    with pytest.raises(AnsibleFilterError, match="bare_unit 'seconds'"):
        duration('1', bare_unit='seconds', invalid=-1)


def test_filter_name():
    assert FilterModule().filters() == {'damon_duration': duration}
