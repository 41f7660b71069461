"""Test fleet only: keep the bytecode of Python modules imported from zip archives.

Ansible sends every module run as a zip archive that Python imports with zipimport, which
never caches bytecode: each task compiled ansible-core's module_utils again, 2-3 s of CPU
on the emulated fleet. This keeps the compiled code of zip-imported sources in a root-only
directory, keyed by the path inside the archive and the source itself, so an identical
source is compiled once. The code that runs is the code that would have been compiled.
"""
import marshal
import os
import sys
import zipimport

_DIR = '/var/cache/fleet-zipcache'
_compile = zipimport._compile_source


def _renamed(code, filename):
    consts = tuple(_renamed(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile(pathname, source):
    archive, sep, inner = pathname.partition('.zip' + os.sep)
    if not sep or os.geteuid() != 0:
        return _compile(pathname, source)
    import hashlib
    digest = hashlib.sha256(source)
    digest.update(b'\0%s\0%s' % (inner.encode('utf-8', 'surrogateescape'), sys.implementation.cache_tag.encode()))
    path = os.path.join(_DIR, digest.hexdigest())
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        code = _compile(pathname, source)
        tmp = '%s.%d' % (path, os.getpid())
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, 'wb') as f:
                f.write(marshal.dumps(code))
            os.rename(tmp, path)
        except OSError:
            pass
        return code
    with os.fdopen(fd, 'rb') as f:
        data = f.read()
    try:
        code = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        # A file cut short (a guest reset before the page cache reached the disk): compile.
        return _compile(pathname, source)
    return _renamed(code, pathname)


try:
    _st = os.lstat(_DIR)
    if _st.st_uid == 0 and _st.st_mode & 0o777 == 0o700:
        zipimport._compile_source = _cached_compile
except OSError:
    pass
