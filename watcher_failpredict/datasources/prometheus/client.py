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

"""The one Prometheus HTTP API client of watcher-failpredict.

Every exchange with a Prometheus server (or, later, an Aetos proxy in
front of one) goes through :class:`PrometheusClient`: the datasource's
range and instant queries, the tests' loopback server
(:mod:`~watcher_failpredict.datasources.prometheus.local_server`).

* Queries are POSTed form-encoded to ``/api/v1/query_range`` and
  ``/api/v1/query`` (Prometheus accepts both verbs), so a long host filter
  never meets URL length limits; answers are JSON.
* Each thread keeps one persistent ``http.client`` connection, as the
  InfluxDB client does (a bulk read sends its queries concurrently).
* ``timeout`` bounds a **whole** request (connect, send, every read of the
  answer), not each blocking socket operation: a server trickling its
  answer cannot hold an audit longer than that.
* An optional bearer token (``Authorization: Bearer ...``), extra
  headers, and ``auth_headers``, a callable asked before every request
  (for Aetos: a keystoneauth session's ``get_auth_headers``, i.e. a valid
  ``X-Auth-Token`` that keystoneauth renews when it expires), travel with
  every request; messages and logs never show their values.
* Every operation is retried ``retries`` times and then raises
  :exc:`~watcher_failpredict.datasources.windows.MetricsUnavailable`
  naming the server and the last cause; :attr:`request_count` counts every
  attempt.

It needs the standard library only (and the windows module's error type):
neither Watcher nor oslo.
"""

import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse

from watcher_failpredict.datasources import windows as metric_windows

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 9090
#: Errors of one attempt that a retry may cure.
_RETRIED = (OSError, ValueError, http.client.HTTPException)


class PrometheusQueryError(Exception):
    """Prometheus refused a request (HTTP status or ``status: error``)."""


class RequestTimeout(OSError):
    """A whole request took longer than the client's ``timeout``."""


def safe_url(url):
    """``url`` without user information, query or fragment (for messages)."""
    p = urllib.parse.urlsplit(str(url))
    host = p.hostname or ''
    if ':' in host:
        host = f'[{host}]'
    netloc = host + (f':{p.port}' if p.port else '')
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, '', ''))


class PrometheusClient:
    """A small Prometheus HTTP API client (query, query_range, ready).

    :param url: ``http(s)://host[:port][/path]``, the API's base (the part
        before ``/api/v1``); a URL with ``user:password@`` is refused
    :param timeout: seconds for one whole request
    :param retries: attempts after the first before giving up
    :param token: bearer token sent as ``Authorization: Bearer``
    :param headers: extra request headers (e.g. ``X-Auth-Token``); their
        values are kept out of messages
    :param auth_headers: ``callable() -> dict`` of headers added to each
        request (fresh credentials); their values are kept out of messages
    :param get_only: send queries as GET, the form in the URL (for a proxy
        that refuses POST, such as Aetos)
    :param verify_ssl: for https, verify the server's certificate against
        ``ca_file`` (or the system's trust store)
    :raises ValueError: on a URL it cannot use
    """

    def __init__(self, url, timeout=10.0, retries=0, token=None,
                 headers=None, verify_ssl=True, ca_file=None,
                 auth_headers=None, get_only=False):
        parsed = urllib.parse.urlsplit(str(url))
        if parsed.scheme not in ('http', 'https') or not parsed.hostname:
            raise ValueError(f'Prometheus URL {safe_url(url)!r} must be '
                             f'http(s)://host[:port][/path]')
        if parsed.username is not None or parsed.password is not None:
            raise ValueError('the Prometheus URL embeds credentials; pass a '
                             'token or headers instead')
        if not float(timeout) > 0:
            raise ValueError(f'timeout={timeout!r} must be positive')
        self.url = safe_url(url)
        self._parsed = parsed
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.verify_ssl = verify_ssl
        self.ca_file = ca_file
        self._headers = dict(headers or {})
        if token:
            self._headers['Authorization'] = f'Bearer {token}'
        self._secrets = [v for v in self._headers.values() if v]
        if token:
            self._secrets.append(token)
        self._auth_headers = auth_headers
        #: send queries as GET with the form in the URL (Aetos 3.0.0
        #: refuses POST with 405)
        self.get_only = bool(get_only)
        #: HTTP requests made so far (each retry attempt counts).
        self.request_count = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections = []

    def __repr__(self):
        return f'{type(self).__name__}(url={self.url!r})'

    # -- messages and retries -------------------------------------------------

    def redact(self, text):
        """``text`` without token or header values, shortened for a log."""
        text = str(text)
        for secret in self._secrets:
            text = text.replace(secret, '***')
        if len(text) > 400:
            text = text[:400] + '...'
        return text

    def call(self, what, func, *args):
        """Run ``func`` with retries; MetricsUnavailable after the last."""
        attempts = self.retries + 1
        cause = None
        for attempt in range(attempts):
            with self._lock:
                self.request_count += 1
            try:
                return func(*args)
            except (_RETRIED + (PrometheusQueryError,)) as exc:
                cause = f'{type(exc).__name__}: {self.redact(exc)}'
                LOG.warning('Prometheus %s at %s failed, attempt %d of %d: '
                            '%s', what, self.url, attempt + 1, attempts,
                            cause)
                if attempt + 1 < attempts:
                    time.sleep(min(0.5, 0.05 * 2 ** attempt))
        raise metric_windows.MetricsUnavailable(
            f'Prometheus at {self.url} could not be read ({what}) after '
            f'{attempts} attempt(s): {cause}')

    # -- connections ----------------------------------------------------------

    def _new_connection(self):
        p = self._parsed
        if p.scheme != 'https':
            return http.client.HTTPConnection(
                p.hostname, p.port or DEFAULT_PORT, timeout=self.timeout)
        if self.verify_ssl:
            context = ssl.create_default_context(cafile=self.ca_file or None)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(
            p.hostname, p.port or 443, timeout=self.timeout, context=context)

    def _connection(self):
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = self._local.conn = self._new_connection()
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self):
        """Close every thread's connection (they reopen on use)."""
        with self._lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _path(self, endpoint):
        return self._parsed.path.rstrip('/') + endpoint

    @staticmethod
    def _remaining(deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RequestTimeout('the request took longer than its timeout')
        return left

    def _read_body(self, resp, conn, deadline):
        """The answer's body, read in pieces, each within the deadline."""
        chunks = []
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(self._remaining(deadline))
            # read1: at most one recv, so that a trickling server meets
            # the deadline between two pieces
            piece = resp.read1(1 << 16)
            if not piece:
                break
            chunks.append(piece)
            self._remaining(deadline)
        # read1 leaves a fully read answer open: read() closes it, so that
        # the connection takes the next request
        chunks.append(resp.read())
        return b''.join(chunks)

    def _exchange(self, method, endpoint, form):
        """One request on this thread's connection: (status, body).

        A kept-alive connection the server has meanwhile closed fails on
        first use: the request is then sent once more on a fresh
        connection, within the same attempt and deadline (queries are
        read-only).
        """
        deadline = time.monotonic() + self.timeout
        body = None
        headers = dict(self._headers, Accept='application/json')
        if self._auth_headers is not None:
            try:
                fresh = dict(self._auth_headers() or {})
            except Exception as exc:  # keystoneauth's, retried by call()
                raise PrometheusQueryError(
                    f'no credentials for the request: '
                    f'{type(exc).__name__}: {exc}') from None
            with self._lock:
                self._secrets.extend(v for v in fresh.values()
                                     if v and v not in self._secrets)
            headers.update(fresh)
        path = self._path(endpoint)
        if form is not None and method == 'GET':
            path += '?' + urllib.parse.urlencode(form)
        elif form is not None:
            body = urllib.parse.urlencode(form).encode('utf-8')
            headers['Content-Type'] = 'application/x-www-form-urlencoded'
        for last in (False, True):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.timeout = self._remaining(deadline)
                if reused:
                    conn.sock.settimeout(conn.timeout)
                conn.request(method, path, body, headers)
                if conn.sock is not None:
                    conn.sock.settimeout(self._remaining(deadline))
                resp = conn.getresponse()
                data = self._read_body(resp, conn, deadline)
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                conn.close()
                if reused and not last:
                    continue
                raise
            except socket.timeout:
                conn.close()
                raise RequestTimeout(
                    f'no complete answer within {self.timeout} s') from None
            except BaseException:
                conn.close()  # never reuse a connection left mid-answer
                raise
            if resp.will_close:
                conn.close()
            return resp.status, data

    # -- single attempts ------------------------------------------------------

    def _api(self, endpoint, form):
        """One POST (GET if ``get_only``) to the API: the answer's
        ``data``.

        :raises PrometheusQueryError: an HTTP error or ``status: error``
        """
        status, data = self._exchange('GET' if self.get_only else 'POST',
                                      endpoint, form)
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            if status == 200:
                raise
            answer = {}
        if status != 200 or answer.get('status') != 'success':
            error = answer.get('error') if isinstance(answer, dict) else None
            kind = answer.get('errorType') if isinstance(answer,
                                                         dict) else None
            raise PrometheusQueryError(
                f'HTTP {status}: {kind or ""} '
                f'{error or data[:200].decode("utf-8", "replace")}')
        return answer.get('data') or {}

    def _get_ready(self):
        status, _data = self._exchange('GET', '/-/ready', None)
        if status != 200:
            raise PrometheusQueryError(f'HTTP {status} to /-/ready')

    # -- operations (with retries) --------------------------------------------

    def query_range(self, promql, start, end, step):
        """A range query: the answer's ``data`` (``resultType`` matrix).

        :param start: first evaluation time, Unix seconds (float, ms
            precision)
        :param end: last evaluation time (inclusive)
        :param step: seconds between evaluations
        """
        form = {'query': promql, 'start': f'{float(start):.3f}',
                'end': f'{float(end):.3f}', 'step': f'{float(step):g}',
                'timeout': f'{self.timeout:g}s'}
        return self.call('query_range', self._api, '/api/v1/query_range',
                         form)

    def query(self, promql, at=None):
        """An instant query at ``at`` (default: the server's now)."""
        form = {'query': promql, 'timeout': f'{self.timeout:g}s'}
        if at is not None:
            form['time'] = f'{float(at):.3f}'
        return self.call('query', self._api, '/api/v1/query', form)

    def ready(self):
        """Check the server answers /-/ready; MetricsUnavailable if not."""
        self.call('ready', self._get_ready)

    def answers_ready(self):
        """True if the server answers /-/ready now (one attempt, no log)."""
        try:
            self._get_ready()
        except (_RETRIED + (PrometheusQueryError,)):
            return False
        return True
