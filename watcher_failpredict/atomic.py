# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Atomic file writes: a reader sees the old file or the new one, never a
half-written file, and an interruption leaves no partial file behind.

The content goes to a temporary file in the destination's directory (a
rename is atomic only within one file system), is fsynced, and replaces
the destination in one ``os.replace``; the directory is then fsynced so
the rename itself survives a crash. Used for model bundles, reports and
fetched trace files alike.

Where Linux allows it, the temporary file is unnamed (``O_TMPFILE``) while
it is written and gets a name only once complete, just before the rename:
a process killed by SIGKILL (or a power cut) mid-write leaves nothing in
the directory. Elsewhere (other systems, file systems without
``O_TMPFILE``, no ``/proc``) it is a named ``mkstemp`` file, removed on any
exception, including the one a SIGTERM handler raises
(``watcher-failpredict`` installs one), so only SIGKILL can leave it.
"""

import contextlib
import os
import secrets
import tempfile

#: Where a process's open files can be named (for linkat of an O_TMPFILE).
_FD_DIR = '/proc/self/fd'


def fsync_dir(directory):
    """Flush a directory's entries (a rename into it) to disk; best effort
    on file systems that cannot fsync a directory.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary_name(path):
    return f'.{os.path.basename(path)}.{secrets.token_hex(6)}.tmp'


def open_unnamed(directory):
    """Descriptor of a new unnamed file in ``directory`` (O_TMPFILE), or
    None where the system or its file system cannot make one.
    """
    flag = getattr(os, 'O_TMPFILE', None)
    # naming it takes linkat(AT_SYMLINK_FOLLOW), which os.link calls only
    # when given a directory descriptor
    if flag is None or os.link not in os.supports_dir_fd or \
            not os.path.isdir(_FD_DIR):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o600)
    except OSError:
        # EOPNOTSUPP, EISDIR (old kernels), ...; a missing or read-only
        # directory fails the mkstemp fallback with its own clear error
        return None


def link_unnamed(fd, path):
    """Give the unnamed file ``fd`` a fresh temporary name beside ``path``;
    return that name.
    """
    directory = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        while True:
            name = _temporary_name(path)
            try:
                # src is absolute (src_dir_fd unused); the descriptor makes
                # os.link use linkat, following the /proc link to the file
                os.link(f'{_FD_DIR}/{fd}', name, src_dir_fd=directory,
                        dst_dir_fd=directory, follow_symlinks=True)
                return os.path.join(os.path.dirname(path), name)
            except FileExistsError:
                continue
    finally:
        os.close(directory)


@contextlib.contextmanager
def atomic_open(path, mode='w', encoding='utf-8', permissions=0o644):
    """Open a temporary file that replaces ``path`` when the block ends.

    :param mode: 'w' (text, ``encoding``) or 'wb'
    :param permissions: mode bits of the final file
    :yields: the open file (not necessarily named: ``f.name`` may be its
        descriptor)
    On any error in the block the temporary file is removed (or, unnamed,
    never appears) and an existing ``path`` is left as it was.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open mode must be w or wb, got {mode!r}')
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    fd = open_unnamed(directory)
    tmp = None
    if fd is None:
        fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.',
                                   suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, mode,
                       encoding=None if 'b' in mode else encoding,
                       newline=None if 'b' in mode else '') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), permissions)
            if tmp is None:
                # complete: named only now, for the one atomic rename
                tmp = link_unnamed(f.fileno(), path)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    fsync_dir(directory)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_open(path, 'w') as f:
        f.write(text)
    return path
