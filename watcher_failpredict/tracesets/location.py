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

"""Where trace files are read from.

One documented place: the directory given as ``--traces DIR`` (the
``traces`` argument), else ``$FAILPREDICT_TRACES``, else
``$XDG_CACHE_HOME/watcher-failpredict/traces`` (``~/.cache/...`` when
``XDG_CACHE_HOME`` is unset). Nothing beside the repository or the
installed package is ever looked at, except the files the package itself
ships (the CC-BY-4.0 Azure V1 subset, :data:`PACKAGED_DIR`), which are
read when the traces directory does not hold the file.

A file may be stored plain (``x.csv``) or compressed (``x.csv.gz``,
``x.csv.bz2``): :func:`find` returns whichever exists and
:func:`open_text` reads all three.
"""

import bz2
import gzip
import os

TRACES_ENV = 'FAILPREDICT_TRACES'
CACHE_SUBDIR = os.path.join('watcher-failpredict', 'traces')
#: Trace files shipped inside the package (licence permitting).
PACKAGED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'data')
COMPRESSED_SUFFIXES = ('.gz', '.bz2')


class TraceSetMissing(ValueError):
    """A trace file is not in the traces directory (nor shipped); the
    message says which set holds it and the command that fetches it.
    """


def cache_dir():
    """``$XDG_CACHE_HOME/watcher-failpredict/traces`` or
    ``~/.cache/watcher-failpredict/traces``.
    """
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache')
    return os.path.abspath(os.path.join(base, CACHE_SUBDIR))


def traces_dir(path=None):
    """The traces directory: ``path``, else ``$FAILPREDICT_TRACES``, else
    :func:`cache_dir`. It need not exist.
    """
    if path:
        return os.path.abspath(os.path.expanduser(path))
    if os.environ.get(TRACES_ENV):
        return os.path.abspath(os.path.expanduser(os.environ[TRACES_ENV]))
    return cache_dir()


def where_from(path=None):
    """Which rule chose the traces directory, for messages."""
    if path:
        return '--traces'
    if os.environ.get(TRACES_ENV):
        return f'${TRACES_ENV}'
    return 'the user cache ($XDG_CACHE_HOME or ~/.cache)'


def _existing(path):
    for candidate in (path,) + tuple(path + s for s in COMPRESSED_SUFFIXES):
        if os.path.isfile(candidate):
            return candidate
    return None


def find(relpath, traces=None):
    """The path of ``<folder>/<file>`` in the traces directory, else in the
    package's own data, plain or compressed.

    :raises TraceSetMissing: neither has it; the message names the
        directory looked in and how to fetch the set
    """
    relpath = relpath.replace('\\', '/').lstrip('/')
    if '..' in relpath.split('/'):
        raise ValueError(f'trace file {relpath!r}: must be <folder>/<file> '
                         f'inside the traces directory, without ..')
    folder = traces_dir(traces)
    found = _existing(os.path.join(folder, relpath)) or _existing(
        os.path.join(PACKAGED_DIR, relpath))
    if found:
        return found
    # imported here: the catalogue itself finds files through this module
    from watcher_failpredict.tracesets import catalog
    if '/' in relpath:
        hint = catalog.fetch_instruction(relpath.split('/')[0])
    else:
        hint = (f'put {relpath} in the traces directory (--traces DIR or '
                f'${TRACES_ENV})')
    raise TraceSetMissing(
        f'trace file {relpath} not found in the traces directory {folder} '
        f'(from {where_from(traces)}); {hint}')


def open_text(path):
    """A text stream (UTF-8, universal newlines off, as csv wants) of a
    plain, .gz or .bz2 file.
    """
    if path.endswith('.gz'):
        return gzip.open(path, 'rt', encoding='utf-8', newline='')
    if path.endswith('.bz2'):
        return bz2.open(path, 'rt', encoding='utf-8', newline='')
    return open(path, encoding='utf-8', newline='')
