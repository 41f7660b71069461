# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The units: values as users write them, parsed into what sysfs files hold, and back; and
the errors' messages."""

from __future__ import annotations

import pytest

from ansible_collections.kernel.damon.plugins.module_utils._damon_errors import (
    DamonKernelError,
    DamonValidationError,
)
from ansible_collections.kernel.damon.plugins.module_utils._damon_units import (
    format_bytes,
    format_us,
    parse_access_rate,
    parse_age,
    parse_node_list,
    parse_ratio,
    parse_size,
    parse_time,
    ULONG_MAX,
)


# ---------------------------------------------------------------- units

@pytest.mark.parametrize('value, unit, expected', [
    (500, 'us', 500), ('500', 'us', 500), ('500us', 'us', 500), ('1ms', 'us', 1000), ('1.5s', 'us', 1500000),
    ('5m', 'us', 300000000), ('1h', 'ms', 3600000), ('1s', 'ms', 1000), ('2000ns', 'us', 2)])
def test_parse_time(value, unit, expected):
    assert parse_time('intervals.sample', value, unit) == expected


@pytest.mark.parametrize('value', ['1ns', '5x', -1, True, '1.5', 'ms'])
def test_parse_time_rejects(value):
    with pytest.raises(DamonValidationError) as err:
        parse_time('intervals.sample', value, 'us')
    assert str(err.value).startswith('intervals.sample: invalid value %r; accepted: an integer number of us'
                                     % (value,))


@pytest.mark.parametrize('value, expected', [
    (0, 0), (4096, 4096), ('4K', 4096), ('4KiB', 4096), ('1.5K', 1536), ('1G', 2 ** 30), ('1gib', 2 ** 30),
    ('2T', 2 ** 41), ('512B', 512), ('max', ULONG_MAX)])
def test_parse_size(value, expected):
    assert parse_size('quotas.size', value) == expected


def test_parse_size_message():
    with pytest.raises(DamonValidationError) as err:
        parse_size('quotas.size', '4Q')
    assert str(err.value) == ("quotas.size: invalid value '4Q'; accepted: a size in bytes (int) or with "
                              "K/M/G/T suffix, or 'max'")
    assert (err.value.option, err.value.value) == ('quotas.size', '4Q')


@pytest.mark.parametrize('value, expected', [(50, 50), ('5%', 500), ('0.5%', 50), ('500bp', 500), ('100%', 10000)])
def test_parse_ratio(value, expected):
    assert parse_ratio('target', value) == expected


@pytest.mark.parametrize('value', ['0.001%', 'half', '-5%', '5 percent'])
def test_parse_ratio_rejects(value):
    with pytest.raises(DamonValidationError, match="accepted: basis points"):
        parse_ratio('target', value)


def test_parse_access_rate_and_age():
    assert parse_access_rate('access_pattern.access_rate', '5%', 20) == 1
    assert parse_access_rate('access_pattern.access_rate', '100%', 20) == 20
    assert parse_access_rate('access_pattern.access_rate', 3, 20) == 3
    with pytest.raises(DamonValidationError, match=r"'101%'; accepted: samples per aggregation interval"):
        parse_access_rate('access_pattern.access_rate', '101%', 20)
    assert parse_age('access_pattern.age', '2m', 100000) == 1200
    assert parse_age('access_pattern.age', 'max', 100000) == ULONG_MAX
    assert parse_age('access_pattern.age', 7, 100000) == 7
    with pytest.raises(DamonValidationError, match="accepted: aggregation intervals"):
        parse_age('access_pattern.age', '2 fortnights', 100000)


def test_formats_and_node_lists():
    assert format_bytes(2 ** 30) == '1.0 GiB'
    assert format_bytes(512) == '512 B'
    assert format_bytes(ULONG_MAX) == 'max'
    assert format_us(500) == '500 us'
    assert format_us(1000000) == '1 s'
    assert format_us(100000) == '100 ms'
    assert parse_node_list('0-1,3\n') == {0, 1, 3}


def test_kernel_error_message():
    err = DamonKernelError('/sys/kernel/mm/damon/admin/kdamonds/0/state', 'commit', 22)
    assert str(err) == ("writing 'commit' to /sys/kernel/mm/damon/admin/kdamonds/0/state failed: "
                        "EINVAL (Invalid argument)")
    assert str(DamonKernelError('/x/state', None, 16)) == 'reading /x/state failed: EBUSY (Device or resource busy)'
