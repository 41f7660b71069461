# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""damos_autotune_mode: the mode the role computes (auto by the interval), and what it makes
of the feeder's unit: a timer's tick, a polling daemon (a score command) or an event-driven
one (a score file), each with its own time limit."""

from __future__ import annotations

import pytest

# Skips this file, as that one, under an ansible-core without the templar they render with.
from ansible_collections.kernel.damon.tests.unit.roles.damos_autotune.test_role import (
    FEEDER, preflight, render, role_file, settings_of, templar)
from ansible.template import trust_as_template

COMMAND = {'damos_autotune_score_file': None, 'damos_autotune_score_command': ['/usr/bin/score']}


def value(name, **overrides):
    return templar(**overrides).template(trust_as_template('{{ %s }}' % name))


def test_auto_is_the_default():
    assert role_file('defaults/main.yml')['damos_autotune_mode'] == 'auto'
    spec = role_file('meta/argument_specs.yml')['argument_specs']['main']['options']['damos_autotune_mode']
    assert spec['default'] == 'auto' and spec['choices'] == ['auto', 'timer', 'daemon']


@pytest.mark.parametrize('interval, mode', [
    ('10ms', 'daemon'), ('1s', 'daemon'), (30, 'daemon'), ('59999ms', 'daemon'),
    ('60s', 'timer'), ('1m', 'timer'), ('2m', 'timer'), (3600, 'timer'),
])
def test_auto_is_a_daemon_below_a_minute_and_a_timer_from_a_minute_on(interval, mode):
    assert value('__damos_autotune_mode', damos_autotune_interval=interval) == mode
    running = 'damos-autotune-feeder.timer' if mode == 'timer' else 'damos-autotune-feeder.service'
    assert value('__damos_autotune_running_units', damos_autotune_interval=interval) == [
        running, 'damos-autotune-metrics.service']


@pytest.mark.parametrize('mode, interval', [('timer', '1s'), ('timer', '100ms'), ('daemon', '5m'), ('daemon', '1s')])
def test_timer_and_daemon_are_kept_whatever_the_interval(mode, interval):
    assert value('__damos_autotune_mode', damos_autotune_mode=mode, damos_autotune_interval=interval) == mode


def test_a_long_interval_gets_a_timer_tick():
    lines = render(FEEDER, damos_autotune_interval='2m')
    assert settings_of(lines, 'Type') == ['oneshot'] and settings_of(lines, 'ExecStart')[0].endswith(' feed')
    assert not settings_of(lines, 'WatchdogSec')


def test_a_score_file_gets_an_event_driven_daemon_whose_watchdog_goes_with_its_check():
    lines = render(FEEDER)
    assert settings_of(lines, 'Type') == ['notify'] and settings_of(lines, 'ExecStart')[0].endswith(' feed --loop')
    assert '# A tick when the score file changes, at most every 1 s.' in lines
    # 3 x the 30 s timeout + the tick limit (1 s score timeout + 2 s lock wait + 30 s).
    assert settings_of(lines, 'WatchdogSec') == ['123s']


def test_a_score_command_gets_a_polling_daemon():
    lines = render(FEEDER, **COMMAND)
    assert '# A tick every 1 s.' in lines
    # 2 x (the tick limit, 33 s, + the interval).
    assert settings_of(lines, 'WatchdogSec') == ['68s']


def test_the_event_driven_watchdog_is_never_shorter_than_the_polling_one():
    # 3 x 1 s + 33 s is shorter than 2 x (33 s + 1 s): where it cannot watch the file, it polls.
    lines = render(FEEDER, damos_autotune_interval='100ms', damos_autotune_timeout='1s')
    assert settings_of(lines, 'WatchdogSec') == ['68s']


@pytest.mark.parametrize('interval, passes', [('10ms', True), ('9999us', False), ('60s', True), ('1h', True)])
def test_the_shortest_interval_in_auto_mode_is_the_daemon_s(interval, passes):
    failed = preflight(damos_autotune_interval=interval, damos_autotune_timeout='2h')
    assert (failed == {}) == passes, failed
    if not passes:
        assert '10ms in daemon mode' in failed['The inputs make sense together']
