# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for every unit test, whatever part of the collection it tests (pytest finds a
conftest.py in each directory above a test): a fake kernel host per test."""

from __future__ import annotations

import pytest

from ansible_collections.kernel.damon.tests.unit.plugins.module_utils.fake_kernel import FakeHost


@pytest.fixture
def make_host(tmp_path):
    """FakeHost factory; each call gets its own root below tmp_path."""
    counter = [0]

    def make(release='6.12.117', **kwargs):
        counter[0] += 1
        root = tmp_path / ('host%d' % counter[0])
        root.mkdir()
        return FakeHost(root, release=release, **kwargs)
    return make


@pytest.fixture(params=['6.12.117', '7.3.4'])
def host(request, make_host):
    return make_host(request.param)
