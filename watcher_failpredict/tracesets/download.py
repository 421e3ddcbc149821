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

"""Resumable, verified HTTP downloads (stdlib only).

:func:`download` appends to ``<dest>.part`` and asks the server for the
rest with an HTTP ``Range`` request, so an interrupted download resumes
where it stopped (a server that ignores the range sends the whole file,
which then replaces the partial one). The finished file is hashed and,
when a digest is expected, checked; only then is it renamed to ``dest``
(one atomic rename), so ``dest`` is always a complete file. Progress goes
to a stream (stderr) as a bar.
"""

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request

from watcher_failpredict import atomic

USER_AGENT = 'watcher-failpredict-traces'
BLOCK = 1 << 20
#: Bytes per network read: small enough for a live progress bar.
READ_BLOCK = 1 << 16


class DownloadError(OSError):
    """A download failed; the message names the URL and what happened."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(BLOCK), b''):
            digest.update(block)
    return digest.hexdigest()


def human_size(n):
    if n is None:
        return 'size unknown'
    for unit in ('B', 'KB', 'MB', 'GB'):
        if n < 1000 or unit == 'GB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1000.0


class ByteProgress:
    """A byte-count progress bar on ``stream``.

    On a terminal it redraws one line; elsewhere (logs, CI) it writes a
    line at every tenth of the total (or every 50 MB if the total is
    unknown), so a log stays short.
    """

    def __init__(self, label, total, stream, width=30):
        self.label, self.total, self.stream = label, total, stream
        self.width = width
        self.tty = bool(getattr(stream, 'isatty', lambda: False)())
        self.started = time.monotonic()
        self._last_mark = -1

    def update(self, done):
        if self.stream is None:
            return
        if self.total:
            frac = min(done / self.total, 1.0)
            mark = int(frac * 10)
            fill = int(frac * self.width)
            bar = '#' * fill + '.' * (self.width - fill)
            text = (f'{self.label} [{bar}] {human_size(done)} / '
                    f'{human_size(self.total)}')
        else:
            mark = done // (50 * 1000 * 1000)
            text = f'{self.label} {human_size(done)}'
        if self.tty:
            self.stream.write('\r' + text)
        elif mark != self._last_mark:
            self.stream.write(text + '\n')
        self._last_mark = mark
        self.stream.flush()

    def close(self):
        if self.stream is not None and self.tty:
            self.stream.write('\n')
            self.stream.flush()


def _content_range_start(header):
    m = re.match(r'\s*bytes\s+(\d+)-', header or '')
    return int(m.group(1)) if m else None


def _open(url, offset, timeout):
    headers = {'User-Agent': USER_AGENT}
    if offset:
        headers['Range'] = f'bytes={offset}-'
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None        # the partial file is already complete
        raise DownloadError(f'{url}: HTTP {exc.code} {exc.reason}') \
            from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, 'reason', exc)
        raise DownloadError(f'{url}: cannot connect: {reason}') from None


def download(url, dest, expected_sha256=None, stream=None, timeout=60.0):
    """Download ``url`` to ``dest``, resuming ``dest + '.part'``.

    :param expected_sha256: hex digest; a file that does not match is
        deleted (resuming it would not help) and refused
    :param stream: where the progress bar goes (None: silent)
    :returns: the file's sha256 (hex)
    :raises DownloadError: HTTP error, connection failure or reset,
        truncated body, digest mismatch; the message names ``url``
    """
    part = dest + '.part'
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    response = _open(url, offset, timeout)
    if response is not None:
        with response:
            if offset and response.status == 206:
                start = _content_range_start(
                    response.headers.get('Content-Range'))
                if start != offset:
                    raise DownloadError(
                        f'{url}: asked for bytes from {offset}, the server '
                        f'sent {response.headers.get("Content-Range")!r}')
            elif offset:
                offset = 0     # the server ignored Range: start again
            length = response.headers.get('Content-Length')
            length = int(length) if length and length.isdigit() else None
            total = offset + length if length is not None else None
            bar = ByteProgress(os.path.basename(dest), total, stream)
            received = offset
            with open(part, 'ab' if offset else 'wb') as f:
                try:
                    for block in iter(lambda: response.read(READ_BLOCK), b''):
                        f.write(block)
                        received += len(block)
                        bar.update(received)
                except (OSError, http.client.HTTPException) as exc:
                    raise DownloadError(
                        f'{url}: connection lost after {received} bytes '
                        f'({exc}); run the command again to resume') \
                        from None
                finally:
                    bar.close()
            if total is not None and received < total:
                raise DownloadError(
                    f'{url}: the connection closed after {received} of '
                    f'{total} bytes; run the command again to resume')
    digest = sha256_of(part)
    if expected_sha256 and digest != expected_sha256.lower():
        os.unlink(part)
        raise DownloadError(
            f'{url}: sha256 {digest} does not match the expected '
            f'{expected_sha256.lower()}; the download was deleted')
    os.replace(part, dest)
    atomic.fsync_dir(os.path.dirname(os.path.abspath(dest)))
    return digest
