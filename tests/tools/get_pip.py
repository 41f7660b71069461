"""Offline stand-in for get-pip.py, installed by tests/tools/bootstrap.

ansible-test bootstraps pip in each virtualenv it creates by running a get-pip.py that it
downloads from a host unreachable here, unless ~/.ansible/test/cache/get_pip_<ver>.py
exists.  It runs that file as `python get_pip_X_Y.py --disable-pip-version-check pip==X.Y
--no-setuptools --no-wheel`.  This one bootstraps pip from the standard library's
ensurepip and then lets that pip install the requested versions from the package index.
"""

import ensurepip
import importlib
import os
import runpy
import sys


def main():
    env = dict(os.environ)
    # ensurepip drops PIP_* and points PIP_CONFIG_FILE at /dev/null; the machine's pip
    # configuration (index, find-links, certificates) is needed for the install below.
    ensurepip.bootstrap(upgrade=True)
    os.environ.clear()
    os.environ.update(env)
    importlib.invalidate_caches()
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    sys.argv = ['pip', 'install', '--upgrade'] + args
    runpy.run_module('pip', run_name='__main__', alter_sys=True)


if __name__ == '__main__':
    main()
