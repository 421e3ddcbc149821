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

"""The one InfluxDB 1.x HTTP client of watcher-failpredict.

Every exchange with ``influxd`` in the tree goes through
:class:`InfluxDBClient`: the datasource's queries, the risk recorder's and
the testbed's writes, the one-machine stack (``tools/stack``), the
benchmark and the tests' throwaway server
(:mod:`~watcher_failpredict.datasources.influxdb.local_server`).

* Queries are POSTed form-encoded (``q``, ``db``, ``epoch``, ``params``)
  to ``/query``, so long bind-parameter lists never meet URL limits
  (influxd refuses a GET whose URL passes 1 MB), and answered as
  MessagePack (``Accept: application/x-msgpack``), which InfluxDB 1.6
  encodes and ``msgpack`` decodes about 2.5x faster than JSON (JSON is
  kept for comparison and diagnosis).
* Each thread keeps one persistent ``http.client`` connection per client.
  Measured at 1,000 hosts (10 s windows, a 7 MB answer; median of 15
  interleaved reads): a host read took 2.20 s through ``requests`` and
  1.60 s through ``http.client``; a 400-instance read 0.47 and 0.39 s.
* Writes are line protocol POSTed to ``/write`` (precision: seconds).
* Every operation is retried ``retries`` times and then raises
  :exc:`~watcher_failpredict.datasources.windows.MetricsUnavailable`
  naming the server and the last cause (chained as ``__cause__``);
  :attr:`InfluxDBClient.request_count` counts every attempt. Messages and
  logs never show the password (nor the credentials of a
  ``user:password@`` URL).
* ``timeout`` bounds each blocking socket operation; a wall-clock
  :class:`~watcher_failpredict.datasources.deadline.Deadline` bounds the
  whole operation (connect, send, the full answer, every retry): the
  client's own (``deadline`` seconds, by default 2 x ``timeout`` per
  attempt) or an earlier one the caller passes (the datasource's
  per-audit deadline). When it passes, a watchdog shuts the socket down,
  so a server trickling its answer byte by byte cannot hold a read beyond
  it, and :exc:`InfluxDBDeadlineExceeded` names the request, the deadline
  and what the request was doing; it is never retried.

It needs the standard library, numpy (through the windows module's error
type) and, for MessagePack answers, ``msgpack``; neither Watcher nor oslo.
"""

import base64
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse

from watcher_failpredict.datasources import deadline as deadline_mod
from watcher_failpredict.datasources import windows as metric_windows

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 8086
RESPONSE_FORMATS = ('msgpack', 'json')
ACCEPT = {'msgpack': 'application/x-msgpack', 'json': 'application/json'}
#: Errors of one attempt that a retry may cure (connection refused or
#: reset, timeouts, an HTTP error status, a statement's error).
_RETRIED = (OSError, ValueError, http.client.HTTPException)
#: How each operation's failure is worded ("could not be read (query)").
_FAILED_TO = {'write': 'written to'}


class InfluxDBQueryError(Exception):
    """InfluxDB refused a request (HTTP status or a statement's error)."""


class InfluxDBDeadlineExceeded(InfluxDBQueryError,
                               deadline_mod.DeadlineExceeded):
    """A request did not end before its wall-clock deadline.

    Both an :exc:`InfluxDBQueryError` and a
    :exc:`~watcher_failpredict.datasources.windows.MetricsUnavailable`
    (through :exc:`~.deadline.DeadlineExceeded`): operations raise it as is,
    without retrying, and whoever handles unavailable metrics (the
    strategy: a failed audit) handles it too.
    """


#: How long a query's text may be in a message (the rest is elided).
_QUERY_IN_MESSAGE = 160


class _Watchdog:
    """Shuts a connection's socket down when its deadline passes.

    A socket timeout bounds one blocking operation; a server that sends a
    byte before each one expires (or a TLS handshake, a status line, a
    header or a body trickled so) would hold the request for ever. At the
    deadline the watchdog shuts the socket down (not closed: the owning
    thread still holds it), which ends any blocking call in that thread at
    once; the thread then sees :attr:`fired` and reports the deadline.
    """

    def __init__(self, conn, deadline):
        self._conn = conn
        self.deadline = deadline
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer = None

    def arm(self):
        if self.deadline is None:
            return
        self._timer = threading.Timer(max(self.deadline.remaining(), 0.0),
                                      self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self):
        with self._lock:
            if self._done:
                return
            self.fired = True
            sock = self._conn.sock
            if sock is not None:
                try:
                    # the plain socket's shutdown, also under TLS: the SSL
                    # object's would tear down state the reader is using
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def disarm(self):
        """Stop watching; True if the deadline fired meanwhile."""
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()
        return self.fired

    def expired(self):
        return self.fired or (self.deadline is not None
                              and self.deadline.passed())


def safe_url(url):
    """``url`` without user information, query or fragment (for messages)."""
    p = urllib.parse.urlsplit(str(url))
    host = p.hostname or ''
    if ':' in host:
        host = f'[{host}]'
    netloc = host + (f':{p.port}' if p.port else '')
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, '', ''))


def _quoted_identifier(name, what):
    if not name or '"' in name or '\\' in name:
        raise ValueError(f'{what} {name!r} must be non-empty, without '
                         f'quotes or backslashes')
    return f'"{name}"'


class InfluxDBClient:
    """A small InfluxDB 1.x HTTP client (queries, writes, ping, databases).

    :param url: ``http(s)://host[:port][/path]``; credentials in the URL
        (``user:password@``) are used when ``username`` is not given
    :param database: the database queries and writes go to by default
    :param verify_ssl: for https, verify the server's certificate against
        ``ca_file`` (or the system's trust store)
    :param timeout: seconds for connecting and for every blocking read
    :param retries: attempts after the first before giving up
    :param response_format: 'msgpack' or 'json' answers to queries
    :param deadline: wall-clock seconds one operation may take in all
        (connect, send, the whole answer, every attempt); default
        2 x ``timeout`` per attempt, which leaves ``timeout`` its say on a
        server that does not answer and stops one that trickles
    :raises ValueError: on a URL, response format or deadline it cannot use
    """

    def __init__(self, url, database=None, username=None, password=None,
                 verify_ssl=True, ca_file=None, timeout=60.0, retries=0,
                 response_format='msgpack', deadline=None):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ('http', 'https') or not parsed.hostname:
            raise ValueError(f'InfluxDB URL {safe_url(url)!r} must be '
                             f'http(s)://host[:port][/path]')
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(f'response_format={response_format!r}; '
                             f'expected one of {RESPONSE_FORMATS}')
        self.url = safe_url(url)
        self._parsed = parsed
        self.database = database
        self.username = username
        self._password = password
        if username is None and parsed.username:
            self.username = urllib.parse.unquote(parsed.username)
            self._password = urllib.parse.unquote(parsed.password or '')
        self.verify_ssl = verify_ssl
        self.ca_file = ca_file
        self.timeout = float(timeout)
        self.retries = int(retries)
        if deadline is None:
            deadline = 2 * self.timeout * (self.retries + 1)
        #: Seconds each operation may take in all (its own deadline).
        self.deadline = deadline_mod.checked_seconds(deadline, 'deadline')
        self.response_format = response_format
        #: HTTP requests made so far (each retry attempt counts).
        self.request_count = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections = []

    def __repr__(self):
        return (f'{type(self).__name__}(url={self.url!r}, '
                f'database={self.database!r})')

    # -- retries and messages -------------------------------------------------

    def redact(self, text):
        """``text`` without the password, shortened for a log line."""
        text = str(text)
        # Messages that quote a request path with its query string (the
        # whole InfluxQL and bind parameters): keep the path only.
        text = re.sub(r'(url: )([^\s?]*)\?\S*', r'\1\2?...', text)
        if self._password:
            for secret in {self._password,
                           urllib.parse.quote(self._password, safe=''),
                           urllib.parse.quote_plus(self._password)}:
                text = text.replace(secret, '***')
        if len(text) > 400:
            text = text[:400] + '...'
        return text

    def own_deadline(self):
        """A fresh deadline of :attr:`deadline` seconds for one operation."""
        return deadline_mod.Deadline(
            self.deadline, 'the InfluxDB request deadline')

    def call(self, what, func, *args, deadline=None, **kwargs):
        """Run ``func`` with retries; MetricsUnavailable after the last.

        ``func`` is called with a ``deadline`` keyword argument: the
        earlier of this operation's own (:meth:`own_deadline`) and
        ``deadline``.

        :param what: the operation, for messages ('query', 'write', ...)
        :param deadline: a :class:`~.deadline.Deadline` the whole operation
            (every attempt) must also end by
        :raises InfluxDBDeadlineExceeded: the deadline passed (not retried)
        """
        deadline = deadline_mod.Deadline.earliest(self.own_deadline(),
                                                  deadline)
        attempts = self.retries + 1
        cause = last = None
        for attempt in range(attempts):
            if deadline.passed():
                raise self.deadline_error(
                    deadline, f'{what} (before attempt {attempt + 1} of '
                    f'{attempts}; last cause: {cause})',
                    'retrying') from last
            with self._lock:  # concurrent readers count too
                self.request_count += 1
            try:
                return func(*args, deadline=deadline, **kwargs)
            except InfluxDBDeadlineExceeded:
                raise
            except (_RETRIED + (InfluxDBQueryError,)) as exc:
                last = exc
                cause = f'{type(exc).__name__}: {self.redact(exc)}'
                LOG.warning('InfluxDB %s at %s (database %s) failed, '
                            'attempt %d of %d: %s', what, self.url,
                            self.database, attempt + 1, attempts, cause)
                if attempt + 1 < attempts:
                    time.sleep(max(0.0, min(0.5, 0.05 * 2 ** attempt,
                                            deadline.remaining())))
        raise metric_windows.MetricsUnavailable(
            f'InfluxDB at {self.url} (database {self.database!r}) could not '
            f'be {_FAILED_TO.get(what, "read")} ({what}) after {attempts} '
            f'attempt(s): {cause}') from last

    def deadline_error(self, deadline, request, phase):
        """The :exc:`InfluxDBDeadlineExceeded` of ``request`` (redacted)."""
        return InfluxDBDeadlineExceeded(
            f'{deadline} passed after {deadline.elapsed():.1f} s while '
            f'{phase}: {self.redact(request)} at {self.url} (database '
            f'{self.database!r})')

    @staticmethod
    def describe_query(query):
        """The query as messages name it: its first characters."""
        text = ' '.join(str(query).split())
        if len(text) > _QUERY_IN_MESSAGE:
            text = text[:_QUERY_IN_MESSAGE] + '...'
        return text

    # -- connections ----------------------------------------------------------

    def new_connection(self):
        """An unopened ``http.client`` connection to the server.

        HTTPS verifies the server against ``ca_file`` (or the system's
        trust store) unless ``verify_ssl`` is false, which then ignores
        ``ca_file`` rather than half-verifying.
        """
        p = self._parsed
        if p.scheme != 'https':
            return http.client.HTTPConnection(p.hostname,
                                              p.port or DEFAULT_PORT,
                                              timeout=self.timeout)
        if self.verify_ssl:
            context = ssl.create_default_context(cafile=self.ca_file or None)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(p.hostname, p.port or DEFAULT_PORT,
                                           timeout=self.timeout,
                                           context=context)

    def _connection(self):
        """This thread's persistent connection (kept alive between calls)."""
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = self._local.conn = self.new_connection()
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

    def headers(self, content_type=None):
        """The request headers: Accept, Content-Type, basic authentication."""
        headers = {'Accept': ACCEPT[self.response_format]}
        if content_type:
            headers['Content-Type'] = content_type
        if self.username is not None:
            token = f'{self.username}:{self._password or ""}'
            headers['Authorization'] = 'Basic ' + base64.b64encode(
                token.encode('utf-8')).decode('ascii')
        return headers

    def _path(self, endpoint):
        return self._parsed.path.rstrip('/') + endpoint

    def _exchange(self, method, path, body, headers, deadline=None,
                  request=None):
        """One request on this thread's connection: status, type, body.

        A kept-alive connection the server has meanwhile closed fails on
        first use: the request is then sent once more on a fresh
        connection, within the same attempt (queries and pings are
        read-only; a write of the same points again changes nothing).

        :param deadline: a :class:`~.deadline.Deadline` the whole exchange
            (connect, send, status, headers, every byte of the body) must
            end by; each socket operation also keeps ``timeout``
        :param request: how messages name the request (default: method
            and path)
        :raises InfluxDBDeadlineExceeded: the deadline passed
        """
        request = request or f'{method} {path.split("?")[0]}'
        for last in (False, True):
            conn = self._connection()
            reused = conn.sock is not None
            phase = 'sending the request' if reused else 'connecting'
            conn.timeout = self.timeout
            if deadline is not None:
                if deadline.passed():
                    raise self.deadline_error(deadline, request, phase)
                # no single operation may outlast the deadline either
                conn.timeout = min(self.timeout,
                                   max(deadline.remaining(), 0.001))
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            watchdog = _Watchdog(conn, deadline)
            watchdog.arm()
            try:
                conn.request(method, path, body, headers)
                phase = 'waiting for the answer'
                resp = conn.getresponse()
                phase = 'reading the answer\'s body'
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as exc:
                conn.close()
                if watchdog.expired():
                    raise self.deadline_error(deadline, request,
                                              phase) from exc
                if reused and not last:
                    continue
                raise
            except BaseException as exc:
                conn.close()  # never reuse a connection left mid-answer
                if watchdog.expired() and isinstance(exc, Exception):
                    raise self.deadline_error(deadline, request,
                                              phase) from exc
                raise
            finally:
                if watchdog.disarm():
                    conn.close()  # its socket is shut down
            return resp.status, resp.getheader('Content-Type', ''), data

    @staticmethod
    def decode_body(content_type, data):
        """An answer's body as Python objects (MessagePack or JSON)."""
        if not data:
            return {}
        if content_type.startswith(ACCEPT['msgpack']):
            import msgpack  # only where MessagePack answers are read
            return msgpack.unpackb(data, raw=False)
        return json.loads(data)

    @staticmethod
    def _refusal(status, answer, data):
        error = answer.get('error') if isinstance(answer, dict) else None
        return InfluxDBQueryError(
            f'HTTP {status}: {error or data[:200].decode("utf-8", "replace")}')

    # -- single attempts ------------------------------------------------------

    def post_query(self, query, bind_params=None, database=None, epoch='s',
                   deadline=None):
        """One POST /query round trip: the answer's ``results`` list.

        The query and bind parameters travel form-encoded in the body, so
        thousands of bound names never meet URL length limits.

        :param database: default: the client's database
        :param epoch: precision of the times answered ('s'), or None for
            RFC 3339 strings
        :param deadline: see :meth:`_exchange`
        :raises InfluxDBQueryError: an HTTP error or a statement's error
        :raises InfluxDBDeadlineExceeded: the deadline passed
        """
        form = {'q': query}
        if epoch is not None:
            form['epoch'] = epoch
        database = self.database if database is None else database
        if database is not None:
            form['db'] = database
        if bind_params:
            form['params'] = json.dumps(bind_params)
        body = urllib.parse.urlencode(form).encode('ascii')
        status, content_type, data = self._exchange(
            'POST', self._path('/query'), body,
            self.headers('application/x-www-form-urlencoded'), deadline,
            f'POST {self._path("/query")} ({self.describe_query(query)})')
        try:
            answer = self.decode_body(content_type, data)
        except ValueError as exc:   # msgpack's errors are ValueErrors too
            if status == 200:
                kind = ('MessagePack' if content_type.startswith(
                    ACCEPT['msgpack']) else 'JSON')
                raise InfluxDBQueryError(
                    f'malformed {kind} answer ({len(data)} bytes, '
                    f'Content-Type {content_type!r}): '
                    f'{type(exc).__name__}: {exc}') from exc
            answer = {}
        if status != 200:
            raise self._refusal(status, answer, data)
        results = answer.get('results') if isinstance(answer, dict) else None
        if not isinstance(results, list) or \
                not all(isinstance(r, dict) for r in results):
            raise InfluxDBQueryError(
                f'answer without results: {str(answer)[:200]}')
        for result in results:
            if result.get('error'):
                raise InfluxDBQueryError(
                    f'statement {result.get("statement_id")}: '
                    f'{result["error"]}')
        return results

    def _post_write(self, lines, database, precision, deadline=None):
        query = urllib.parse.urlencode({'db': database,
                                        'precision': precision})
        body = ('\n'.join(lines) + '\n').encode('utf-8')
        status, content_type, data = self._exchange(
            'POST', self._path('/write?' + query), body,
            self.headers('text/plain; charset=utf-8'), deadline,
            f'POST {self._path("/write")} ({len(lines)} line(s) into '
            f'{database!r})')
        if status != 204:
            try:
                answer = self.decode_body(content_type, data)
            except ValueError:
                answer = {}
            raise self._refusal(status, answer, data)

    def _get_ping(self, deadline=None):
        status, _type, _data = self._exchange('GET', self._path('/ping'),
                                              None, self.headers(), deadline)
        if status != 204:
            raise InfluxDBQueryError(f'HTTP {status} to /ping (expected 204)')

    # -- operations (with retries) --------------------------------------------

    def query(self, statements, bind_params=None, database=None, epoch='s',
              deadline=None):
        """Send ``statements`` in one request; one raw result per statement.

        :param statements: InfluxQL statements (joined with ``;``)
        :param bind_params: ``{name: value}`` for ``$name`` placeholders
        :param deadline: a :class:`~.deadline.Deadline` to end by, if
            earlier than the client's own
        :raises MetricsUnavailable: after the last failed attempt, or when
            the answer does not match the statements one to one
        :raises InfluxDBDeadlineExceeded: a deadline passed
        """
        statements = list(statements)
        results = self.call('query', self.post_query, ';\n'.join(statements),
                            bind_params, database, epoch, deadline=deadline)
        if len(results) != len(statements):
            raise metric_windows.MetricsUnavailable(
                f'InfluxDB at {self.url} (database {self.database!r}) '
                f'answered {len(results)} results to {len(statements)} '
                f'statements')
        return results

    def write(self, lines, database=None, precision='s', batch=5000):
        """Write line-protocol strings, ``batch`` lines per request.

        :param database: default: the client's database
        :returns: the number of lines written
        :raises MetricsUnavailable: a batch could not be written
        """
        if isinstance(lines, str):
            lines = [lines]
        lines = list(lines)
        if int(batch) < 1:
            raise ValueError(f'batch={batch} must be >= 1')
        batch = int(batch)
        database = self.database if database is None else database
        if database is None:
            raise ValueError(f'no database to write to at {self.url}')
        for i in range(0, len(lines), batch):
            self.call('write', self._post_write, lines[i:i + batch],
                      database, precision)
        return len(lines)

    def ping(self):
        """Check the server answers /ping; MetricsUnavailable if not."""
        self.call('ping', self._get_ping)

    def answers_ping(self):
        """True if the server answers /ping now (one attempt, no log)."""
        try:
            self._get_ping(deadline=self.own_deadline())
        except (_RETRIED + (InfluxDBQueryError,)):
            return False
        return True

    def create_database(self, name):
        """Create database ``name`` (nothing happens if it exists)."""
        self.query([f'CREATE DATABASE {_quoted_identifier(name, "database")}'])
        return name

    def drop_database(self, name):
        """Drop database ``name`` and all its points."""
        self.query([f'DROP DATABASE {_quoted_identifier(name, "database")}'])
