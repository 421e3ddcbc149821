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

"""Writing samples into Prometheus through its remote-write receiver.

``POST /api/v1/write`` (Prometheus started with
``--web.enable-remote-write-receiver``, 2.33 and later) takes a
snappy-compressed protobuf ``WriteRequest``. Both encodings are small
enough to write here, with no dependency: the protobuf has four messages
(``WriteRequest``, ``TimeSeries``, ``Label``, ``Sample``), and the snappy
block format is valid with literals only (a compressed block need not
compress). Used by ``evaluate --prometheus``
(:mod:`watcher_failpredict.testbed.prom`).

Prometheus appends samples in order only: a series' samples must be newer
than its last one, and a request's older than the newest sample of the
database minus one hour are refused ("out of bounds"), so a history is
written in time order (:func:`requests` cuts it into time slices).
"""

import http.client
import struct
import urllib.parse

import numpy as np

PATH = '/api/v1/write'
#: Samples per request at most.
MAX_SAMPLES = 50000


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7f
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _label(name, value):
    return _field(1, _field(1, name.encode()) + _field(2, value.encode()))


def _sample(value, t_ms):
    # Sample: double value = 1 (fixed64), int64 timestamp = 2 (varint)
    body = b'\x09' + struct.pack('<d', value) + b'\x10' + _varint(
        int(t_ms) & 0xffffffffffffffff)
    return _field(2, body)


def encode(series):
    """A ``WriteRequest`` of ``series`` (as
    :func:`~.local_server.openmetrics` takes them; times in seconds).
    """
    out = bytearray()
    for name, labels, times, values in series:
        if not len(times):
            continue
        body = b''.join(_label(k, str(v)) for k, v in sorted(
            dict(labels, __name__=name).items()))
        t_ms = np.round(np.asarray(times, dtype=float) * 1000).astype(int)
        body += b''.join(_sample(float(v), t)
                         for t, v in zip(t_ms.tolist(), values))
        out += _field(1, body)
    return bytes(out)


def snappy_block(data):
    """``data`` in the snappy block format, as literals (uncompressed)."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        out += b'\xf4' + struct.pack('<H', len(chunk) - 1) + chunk
    return bytes(out)


def requests(series, max_samples=MAX_SAMPLES):
    """``series`` cut into time slices of at most about ``max_samples``
    samples, oldest first: each one a list of series for :func:`encode`.
    """
    series = [(n, lab, np.asarray(t, dtype=float), np.asarray(v))
              for n, lab, t, v in series if len(t)]
    if not series:
        return []
    times = np.unique(np.concatenate([s[2] for s in series]))
    per_time = max(1, max_samples // len(series))
    out = []
    for i in range(0, times.size, per_time):
        lo, hi = times[i], times[min(i + per_time, times.size) - 1]
        piece = []
        for name, labels, t, v in series:
            sel = (t >= lo) & (t <= hi)
            if sel.any():
                piece.append((name, labels, t[sel], v[sel]))
        out.append(piece)
    return out


class RemoteWriter:
    """POSTs series to one Prometheus's remote-write receiver."""

    def __init__(self, url, timeout=60.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ValueError(f'not an http(s) URL: {url!r}')
        self.url = f'{parts.scheme}://{parts.netloc}{parts.path}'.rstrip('/')
        self._parts = parts
        self.timeout = timeout
        self.requests = 0
        self.samples = 0

    def write(self, series):
        """Write ``series``; returns the number of samples sent."""
        n = 0
        for piece in requests(series):
            body = snappy_block(encode(piece))
            self._post(body)
            n += sum(len(s[2]) for s in piece)
        self.samples += n
        return n

    def _post(self, body):
        p = self._parts
        cls = (http.client.HTTPSConnection if p.scheme == 'https'
               else http.client.HTTPConnection)
        conn = cls(p.hostname, p.port, timeout=self.timeout)
        try:
            conn.request('POST', p.path.rstrip('/') + PATH, body=body,
                         headers={'Content-Encoding': 'snappy',
                                  'Content-Type': 'application/x-protobuf',
                                  'X-Prometheus-Remote-Write-Version':
                                      '0.1.0'})
            resp = conn.getresponse()
            text = resp.read()[:500].decode('utf-8', 'replace').strip()
        finally:
            conn.close()
        self.requests += 1
        if resp.status == 404:
            raise RuntimeError(
                f'{self.url}{PATH} answers 404: start prometheus with '
                f'--web.enable-remote-write-receiver')
        if resp.status // 100 != 2:
            raise RuntimeError(f'{self.url}{PATH} refused the samples: '
                               f'HTTP {resp.status}: {text}')
