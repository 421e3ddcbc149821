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
half-written file, and a crash leaves no partial file under the final name.

The content goes to a temporary file in the destination's directory (a
rename is atomic only within one file system), is fsynced, and replaces
the destination in one ``os.replace``; the directory is then fsynced so
the rename itself survives a crash. Used for model bundles, reports and
fetched trace files alike.
"""

import contextlib
import os
import tempfile


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


@contextlib.contextmanager
def atomic_open(path, mode='w', encoding='utf-8', permissions=0o644):
    """Open a temporary file that replaces ``path`` when the block ends.

    :param mode: 'w' (text, ``encoding``) or 'wb'
    :param permissions: mode bits of the final file (mkstemp creates 0600)
    :yields: the open file; ``f.name`` is the temporary path, e.g. to hash
        the bytes before they become visible
    On any error in the block the temporary file is removed and an
    existing ``path`` is left as it was.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open mode must be w or wb, got {mode!r}')
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.',
                               suffix='.tmp', dir=directory)
    os.close(fd)
    try:
        with open(tmp, mode, encoding=None if 'b' in mode else encoding,
                  newline=None if 'b' in mode else '') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, permissions)
        os.replace(tmp, path)
    except BaseException:
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
