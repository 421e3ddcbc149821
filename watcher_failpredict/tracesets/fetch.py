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

"""Fetch one trace set: download, verify, convert, install.

Downloads go to ``<traces>/.downloads/`` (resumable, see
:mod:`.download`). A source the catalogue pins is checked against its
digest; a source without a published digest is downloaded and hashed,
then **refused** unless the operator passes the digest they expect
(``expected={'rnd.zip': HEX}``) or ``accept_unverified``: the computed
digest is printed either way so it can be checked and passed next time.
The set is converted into a temporary folder beside its final place and
renamed into ``<traces>/<folder>`` only when every file is written, so
the loaders never see half a set.
"""

import datetime
import os
import re
import shutil
import tempfile

from watcher_failpredict import atomic
from watcher_failpredict.tracesets import catalog
from watcher_failpredict.tracesets import convert
from watcher_failpredict.tracesets import download
from watcher_failpredict.tracesets import location

DOWNLOADS = '.downloads'
PROVENANCE = 'SOURCE.txt'
_HEX64 = re.compile(r'^[0-9a-f]{64}$')


class FetchError(ValueError):
    """A set cannot be fetched; the message says why and what to do."""


def parse_expected(items):
    """``['FILE=HEX', ...]`` -> ``{FILE: hex}``.

    :raises FetchError: not FILE=HEX with a 64-digit hex digest
    """
    out = {}
    for item in items or ():
        name, sep, digest = item.partition('=')
        digest = digest.strip().lower()
        if not sep or not name.strip() or not _HEX64.match(digest):
            raise FetchError(f'--sha256 {item!r}: expected FILE=HEX with a '
                             f'64-digit hex sha256, e.g. rnd.zip=<digest>')
        out[name.strip()] = digest
    return out


def _download_from_any(source, dest, pin, stream, timeout):
    """Try the source's URLs in order; a digest mismatch is final."""
    errors = []
    for url in source.urls:
        try:
            return download.download(url, dest, pin, stream, timeout)
        except download.DownloadError as exc:
            if 'does not match' in str(exc):
                raise
            errors.append(str(exc))
            if stream is not None and url != source.urls[-1]:
                stream.write(f'{exc}; trying the next location\n')
    raise download.DownloadError('; '.join(errors))


def _verified_archive(trace_set, source, downloads, expected,
                      accept_unverified, stream, timeout):
    given = expected.get(source.filename)
    if source.sha256 and given and given != source.sha256:
        raise FetchError(f'{source.filename}: the catalogue pins sha256 '
                         f'{source.sha256} (published in '
                         f'{source.digest_origin}); --sha256 gave {given}')
    pin = source.sha256 or given
    dest = os.path.join(downloads, source.filename)
    if os.path.exists(dest):
        digest = download.sha256_of(dest)
        if pin and digest != pin:
            os.unlink(dest)
            raise FetchError(f'{dest}: sha256 {digest} does not match the '
                             f'expected {pin}; the file was deleted, run '
                             f'the command again to download it anew')
    else:
        if stream is not None:
            stream.write(f'downloading {source.urls[0]} '
                         f'({download.human_size(source.size)})\n')
        digest = _download_from_any(source, dest, pin, stream, timeout)
    if pin:
        if stream is not None:
            stream.write(f'{source.filename}: sha256 {digest} verified\n')
        return dest, digest, 'verified'
    if stream is not None:
        stream.write(f'{source.filename}: sha256 {digest} (the publisher '
                     f'gives no digest to check it against)\n')
    if not accept_unverified:
        raise FetchError(
            f'{dest}: not converted: the publisher of {trace_set.name} '
            f'gives no sha256, and this download\'s is {digest}. If you '
            f'trust it, run again with --sha256 {source.filename}={digest} '
            f'(or --accept-unverified); the file is kept, so it is not '
            f'downloaded again')
    return dest, digest, 'NOT verified (accepted by the operator)'


def _provenance(trace_set, checked):
    lines = [f'{trace_set.title}', '',
             f'fetched by watcher-failpredict traces fetch {trace_set.name} '
             f'on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}',
             f'licence: {trace_set.licence}',
             f'cite: {trace_set.citation}',
             f'publisher: {trace_set.homepage}', '', 'sources:']
    for source, (path, digest, state) in checked:
        lines.append(f'  {source.urls[0]}')
        lines.append(f'    sha256 {digest} ({state})')
    lines.append('')
    return '\n'.join(lines)


def _install(tmp, target):
    """Put the converted folder in place: one rename, after moving an
    older copy aside (removed once the new one is in).
    """
    old = None
    if os.path.exists(target):
        old = tempfile.mkdtemp(prefix=f'.{os.path.basename(target)}.old.',
                               dir=os.path.dirname(target))
        os.rmdir(old)
        os.rename(target, old)
    os.rename(tmp, target)
    atomic.fsync_dir(os.path.dirname(target))
    if old:
        shutil.rmtree(old, ignore_errors=True)


def fetch(name, traces=None, expected=None, accept_unverified=False,
          stream=None, keep_downloads=False, force=False, timeout=60.0):
    """Download, verify, convert and install trace set ``name``.

    :param traces: the traces directory (default: location.traces_dir())
    :param expected: {source filename: sha256 hex} for sources the
        publisher gives no digest for (a pinned digest cannot be
        overridden)
    :param accept_unverified: convert an unpinned source anyway
    :param stream: progress and digests (stderr)
    :param force: fetch again even if the set is present
    :returns: (state, folder): 'shipped', 'present' or 'fetched'
    :raises FetchError, download.DownloadError, convert.ConversionError
    """
    trace_set = catalog.get(name)
    state, folder = catalog.status(trace_set, traces)
    if trace_set.shipped and not trace_set.sources:
        return 'shipped', folder
    if state == 'present' and not force:
        return 'present', folder
    root = location.traces_dir(traces)
    downloads = os.path.join(root, DOWNLOADS)
    os.makedirs(downloads, exist_ok=True)
    expected = dict(expected or {})
    unknown = sorted(set(expected) - {s.filename for s in trace_set.sources})
    if unknown:
        raise FetchError(f'--sha256 {unknown[0]}: {trace_set.name} has no '
                         f'such file; its files: '
                         f'{", ".join(s.filename for s in trace_set.sources)}')
    checked = [(source, _verified_archive(trace_set, source, downloads,
                                          expected, accept_unverified,
                                          stream, timeout))
               for source in trace_set.sources]
    archives = {source.filename: path for source, (path, _, _) in checked}
    target = os.path.join(root, trace_set.folder)
    tmp = tempfile.mkdtemp(prefix=f'.{trace_set.folder}.', dir=root)
    try:
        if stream is not None:
            stream.write(f'converting into {target}\n')
        getattr(convert, trace_set.converter)(archives, tmp)
        missing = [f for f in trace_set.files
                   if not os.path.exists(os.path.join(tmp, f))]
        if missing:
            raise FetchError(f'converting {trace_set.name} did not produce '
                             f'{", ".join(missing)}')
        atomic.write_text(os.path.join(tmp, PROVENANCE),
                          _provenance(trace_set, checked))
        os.chmod(tmp, 0o755)
        _install(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not keep_downloads:
        for path in archives.values():
            os.unlink(path)
    return 'fetched', target
