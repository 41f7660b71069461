# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A commit the kernel rejects although every check before it passed: the cgroup of a
memcg filter is removed after kernel.damon validated it and before the kernel resolves it
(at commit time).  The race is made certain by removing the cgroup right before the
commit keyword is written, and giving the kernel time to take the memcg offline.  Runs the collection's own core on the test host:

    python3 race.py CORE_DIR CGROUP PARAMS_JSON    (CORE_DIR holds the package kernel_damon)

prints one JSON line: the result of ensure_scheme, or the error it raised.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, sys.argv[1])
from kernel_damon import _damon_errors as errors  # noqa: E402  pylint: disable=wrong-import-position,import-error
from kernel_damon import _damon_host as host  # noqa: E402  pylint: disable=wrong-import-position,import-error
from kernel_damon import _damon_plan as plan  # noqa: E402  pylint: disable=wrong-import-position,import-error

CGROUP = '/sys/fs/cgroup/' + sys.argv[2].strip('/')


class RacingHost(host.Host):
    def _raw_write(self, path, data):
        if path.endswith('/state') and data == 'commit' and os.path.isdir(CGROUP):
            os.rmdir(CGROUP)
            # The memory cgroup goes offline (and out of DAMON's sight) asynchronously,
            # after an RCU grace period; until then the commit would still find it.
            time.sleep(3)
        super()._raw_write(path, data)


def main():
    try:
        out = {'failed': False, 'result': plan.ensure_scheme(RacingHost(), json.loads(sys.argv[3]))}
    except errors.DamonError as err:
        out = {'failed': True, 'msg': str(err), 'class': type(err).__name__, 'errno': getattr(err, 'errno', None)}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
