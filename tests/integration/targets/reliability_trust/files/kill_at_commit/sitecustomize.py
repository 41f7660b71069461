# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kills the Python program that loads it (SIGKILL, nothing runs after) when it opens
$KD_KILL_AT for writing: put this directory on PYTHONPATH of one module run, with the
path of a kdamond's state file, and the run dies after its value writes and before its
commit, at the same point every time.  Test hosts only."""

import os
import signal
import sys

_AT = os.environ.get('KD_KILL_AT')
_WRITE = os.O_WRONLY | os.O_RDWR


def _hook(event, args):
    if event == 'open' and args and _AT:
        path, mode, flags = (list(args) + [None, 0])[:3]
        writing = (isinstance(flags, int) and flags & _WRITE) or (isinstance(mode, str) and 'w' in mode)
        if writing and os.fsdecode(path) == _AT:
            os.kill(os.getpid(), signal.SIGKILL)


if _AT:
    sys.addaudithook(_hook)
