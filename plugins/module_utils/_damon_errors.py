# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The errors of kernel.damon's core.  str() of each is the message meant for the user: it
names the option, the value and what is accepted (DamonValidationError), or the sysfs file,
the value and the errno (DamonKernelError).

Part of the core (docs/design.md, "Layers"): pure standard library, imported on managed
hosts without Ansible.
"""

from __future__ import annotations

import errno
import os


class DamonError(Exception):
    """Base class; str() is the message meant for the user."""


class DamonValidationError(DamonError):
    def __init__(self, option, value, accepted):
        self.option, self.value, self.accepted = option, value, accepted
        if value is None:
            message = '%s: missing; accepted: %s' % (option, accepted)
        else:
            message = '%s: invalid value %r; accepted: %s' % (option, value, accepted)
        super().__init__(message)


class DamonKernelError(DamonError):
    def __init__(self, path, value, errno_):
        self.path, self.value, self.errno = path, value, errno_
        action = 'reading %s' % path if value is None else 'writing %r to %s' % (value, path)
        super().__init__('%s failed: %s (%s)' % (
            action, errno.errorcode.get(errno_, str(errno_)), os.strerror(errno_)))


class DamonConflictError(DamonError):
    pass


class DamonLockBusyError(DamonConflictError):
    """Another writer of this collection held the lock for all of lock_timeout."""


class DamonUnavailableError(DamonError):
    pass


def append_note(err, note):
    """Extend an error's message in place, keeping its class for callers."""
    if note:
        err.args = ('%s; %s' % (err, note),)
    return err
