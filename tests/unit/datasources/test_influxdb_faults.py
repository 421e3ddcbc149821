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

"""Fault injection: an InfluxDB that refuses, hangs, trickles, resets,
answers garbage or an HTTP error, against the client, the datasource and a
whole audit.

The server is a loopback fake on 127.0.0.1 (one thread per connection, a
free port) that misbehaves as each test tells it. Every case asserts the
exact error class, that the message names the cause, and that the time
taken is bounded by the deadline (``MARGIN`` covers a loaded 2-core
machine).
"""

import json
import logging
import socket
import struct
import threading
import time
import urllib.parse

import msgpack
import pytest

from watcher_failpredict import conf as fp_conf
from watcher_failpredict.datasources import base as ds_base
from watcher_failpredict.datasources import deadline as deadline_mod
from watcher_failpredict.datasources.influxdb import client
from watcher_failpredict.datasources.influxdb import datasource as idb
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.strategies import errors
from watcher_failpredict.testbed.audit_cluster import Cluster

#: Seconds a bounded operation may overrun its deadline here (thread
#: start-up, a loaded machine); far below what an unbounded read takes.
MARGIN = 2.0
SECRET = 'trickle-pw-s3cret'
END = 1_700_000_000 // 600 * 600


def _results(form):
    """One empty result per statement of the request's ``q``."""
    q = form.get('q', [''])[0]
    return {'results': [{'statement_id': i}
                        for i in range(q.count(';\n') + 1)]}


def _response(status, body, content_type='application/x-msgpack'):
    return (f'HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n'
            f'Content-Length: {len(body)}\r\n\r\n').encode('ascii') + body


class FaultServer:
    """A fake InfluxDB on 127.0.0.1 behaving as ``mode`` says.

    Modes: 'ok' (empty results, after ``delay`` seconds), 'hang' (read the
    request, never answer), 'trickle' (the whole answer, status line
    included, one byte per ``interval``), 'trickle_body' (status and
    headers at once, then the body so), 'reset' (headers and part of the
    body, then a TCP reset), 'raw' (send ``payload`` as is). With
    ``ssl_context`` (server side) it speaks TLS.
    """

    def __init__(self, mode, payload=b'', delay=0.0, interval=1.0,
                 ssl_context=None):
        self.mode, self.payload = mode, payload
        self.ssl_context = ssl_context
        self.delay, self.interval = delay, interval
        self.requests = []
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(('127.0.0.1', 0))
        self._listener.listen(16)
        scheme = 'https' if ssl_context else 'http'
        self.url = f'{scheme}://127.0.0.1:{self._listener.getsockname()[1]}'
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self._stop.set()
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                sock, _addr = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,),
                             daemon=True).start()

    def _send(self, sock, data):
        sock.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _serve(self, sock):
        try:
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            rfile = sock.makefile('rb')
        except OSError:
            return
        try:
            while not self._stop.is_set():
                line = rfile.readline()
                if not line:
                    return
                headers = {}
                for raw in iter(rfile.readline, b'\r\n'):
                    key, _, value = raw.decode('latin-1').partition(':')
                    headers[key.strip().lower()] = value.strip()
                body = rfile.read(int(headers.get('content-length', 0)))
                form = urllib.parse.parse_qs(body.decode('ascii'))
                with self._lock:
                    self.requests.append((line.decode('ascii').strip(),
                                          form))
                self._answer(sock, rfile, form)
        except (OSError, ValueError):   # ValueError: reset closed rfile
            return

    def _answer(self, sock, rfile, form):
        answer = _response(200, msgpack.packb(_results(form)))
        if self.mode == 'ok':
            self._stop.wait(self.delay)
            self._send(sock, answer)
        elif self.mode == 'hang':
            self._stop.wait()
        elif self.mode in ('trickle', 'trickle_body'):
            start = 0
            if self.mode == 'trickle_body':
                start = answer.index(b'\r\n\r\n') + 4
                self._send(sock, answer[:start])
            for i in range(start, len(answer)):
                if self._stop.wait(self.interval):
                    return
                self._send(sock, answer[i:i + 1])
        elif self.mode == 'reset':
            body = msgpack.packb({'results': [{'statement_id': 0, 'series': [
                {'name': 'cpu_value', 'columns': ['time', 'value'],
                 'values': [[END + i, 1.0] for i in range(200)]}]}]})
            data = _response(200, body)
            self._send(sock, data[:len(data) // 2])
            time.sleep(0.2)
            # SO_LINGER 0: close sends a RST, not a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
            rfile.close()   # its reference would keep the socket open
            sock.close()
        elif self.mode == 'raw':
            self._send(sock, self.payload)


@pytest.fixture
def fault_server():
    servers = []

    def start(mode, **kwargs):
        servers.append(FaultServer(mode, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _query(influx):
    """One timed query: (exception info, elapsed seconds)."""
    t0 = time.monotonic()
    with pytest.raises(Exception) as info:
        influx.query(['SELECT mean("value") FROM "cpu_value" WHERE '
                      '"host" = $h0'], {'h0': 'compute-1'})
    return info, time.monotonic() - t0


def _client(url, **kwargs):
    kwargs.setdefault('database', 'collectd')
    return client.InfluxDBClient(url, **kwargs)


# -- the client -----------------------------------------------------------


def test_connection_refused_is_metrics_unavailable_naming_the_cause():
    # A bound socket that does not listen: connecting is refused at once.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(('127.0.0.1', 0))
        url = f'http://127.0.0.1:{closed.getsockname()[1]}'
        influx = _client(url, retries=1, timeout=2.0, deadline=4.0)
        info, elapsed = _query(influx)
    assert info.type is metric_windows.MetricsUnavailable
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    message = str(info.value)
    assert 'ConnectionRefusedError' in message and url in message
    assert 'after 2 attempt(s)' in message
    assert influx.request_count == 2
    assert elapsed < 4.0 + MARGIN


def test_a_hang_is_bounded_by_the_socket_timeout_and_retried(fault_server):
    server = fault_server('hang')
    influx = _client(server.url, retries=1, timeout=0.5, deadline=10.0)
    info, elapsed = _query(influx)
    assert info.type is metric_windows.MetricsUnavailable
    assert isinstance(info.value.__cause__, TimeoutError)
    assert 'timed out' in str(info.value)
    assert influx.request_count == 2 == len(server.requests)
    assert 1.0 <= elapsed < 1.0 + MARGIN


def test_a_hang_beyond_the_deadline_stops_at_the_deadline(fault_server):
    server = fault_server('hang')
    influx = _client(server.url, retries=2, timeout=30.0, deadline=1.5)
    info, elapsed = _query(influx)
    assert info.type is client.InfluxDBDeadlineExceeded
    # both what the client's callers catch
    assert isinstance(info.value, client.InfluxDBQueryError)
    assert isinstance(info.value, metric_windows.MetricsUnavailable)
    message = str(info.value)
    assert message.startswith('the InfluxDB request deadline of 1.5 s '
                              'passed after 1.')
    assert 'while waiting for the answer' in message
    assert ('POST /query (SELECT mean("value") FROM "cpu_value" WHERE '
            '"host" = $h0)') in message
    assert server.url in message and "database 'collectd'" in message
    # never retried: the deadline covers every attempt
    assert influx.request_count == 1 == len(server.requests)
    assert 1.5 - 0.05 <= elapsed < 1.5 + MARGIN


@pytest.mark.parametrize('mode,phase', [
    ('trickle', 'while waiting for the answer'),        # status line too
    ('trickle_body', "while reading the answer's body"),
])
def test_a_trickling_server_cannot_hold_a_request_past_its_deadline(
        fault_server, caplog, mode, phase):
    caplog.set_level(logging.DEBUG)
    server = fault_server(mode, interval=1.0)    # 1 byte/s
    influx = _client(server.url, retries=2, timeout=5.0, deadline=2.5,
                     username='reader', password=SECRET)
    info, elapsed = _query(influx)
    assert info.type is client.InfluxDBDeadlineExceeded
    message = str(info.value)
    assert 'the InfluxDB request deadline of 2.5 s passed' in message
    assert phase in message and 'POST /query (SELECT mean' in message
    assert SECRET not in message + caplog.text
    assert influx.request_count == 1
    # it did trickle: each byte came well within the socket timeout
    assert server.bytes_sent >= 1
    assert 2.5 - 0.05 <= elapsed < 2.5 + MARGIN
    # the connection it abandoned is not reused: the next query opens
    # another (which the server trickles again)
    info, elapsed = _query(influx)
    assert info.type is client.InfluxDBDeadlineExceeded
    assert len(server.requests) == 2
    assert elapsed < 2.5 + MARGIN


def test_a_reset_mid_body_is_metrics_unavailable(fault_server):
    server = fault_server('reset')
    influx = _client(server.url, retries=0, timeout=5.0, deadline=5.0)
    info, elapsed = _query(influx)
    assert info.type is metric_windows.MetricsUnavailable
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert 'ConnectionResetError' in str(info.value)
    assert server.bytes_sent > 0 and len(server.requests) == 1
    assert elapsed < 5.0 + MARGIN


@pytest.mark.parametrize('payload,response_format,expected', [
    (_response(200, b'{"results": [{"statement_id": 0}',
               'application/json'), 'json',
     'malformed JSON answer (32 bytes'),
    (_response(200, b'\xc1\x00'), 'msgpack',
     'malformed MessagePack answer (2 bytes'),
    (_response(200, b'\x81\xa7results'), 'msgpack',
     'ValueError: Unpack failed: incomplete input'),
    (_response(200, b'[1, 2]', 'application/json'), 'json',
     'answer without results: [1, 2]'),
    (_response(200, msgpack.packb({'results': [7]})), 'msgpack',
     "answer without results: {'results': [7]}"),
])
def test_malformed_answers_are_refused_naming_what_is_wrong(
        fault_server, payload, response_format, expected):
    server = fault_server('raw', payload=payload)
    influx = _client(server.url, retries=1, timeout=2.0, deadline=8.0,
                     response_format=response_format)
    info, elapsed = _query(influx)
    assert info.type is metric_windows.MetricsUnavailable
    assert type(info.value.__cause__) is client.InfluxDBQueryError
    assert expected in str(info.value)
    assert influx.request_count == 2 == len(server.requests)
    assert elapsed < 8.0 + MARGIN


@pytest.mark.parametrize('status,body,content_type,expected', [
    (500, msgpack.packb({'error': 'engine on fire'}),
     'application/x-msgpack', 'HTTP 500: engine on fire'),
    (503, b'<html>Service Unavailable</html>', 'text/html',
     'HTTP 503: <html>Service Unavailable</html>'),
    (401, json.dumps({'error': 'authorization failed'}).encode(),
     'application/json', 'HTTP 401: authorization failed'),
])
def test_http_errors_are_refusals_naming_the_status(
        fault_server, caplog, status, body, content_type, expected):
    caplog.set_level(logging.DEBUG)
    server = fault_server('raw', payload=_response(status, body,
                                                   content_type))
    influx = _client(server.url, retries=1, timeout=2.0, deadline=8.0,
                     username='reader', password=SECRET)
    info, elapsed = _query(influx)
    assert info.type is metric_windows.MetricsUnavailable
    assert type(info.value.__cause__) is client.InfluxDBQueryError
    message = str(info.value)
    assert expected in message and server.url in message
    # the failed attempt is logged, naming the status, never the password
    assert expected in caplog.text
    assert SECRET not in message + caplog.text
    assert influx.request_count == 2 == len(server.requests)
    assert elapsed < 8.0 + MARGIN


def test_deadlines_are_checked():
    for bad in (0, -1, float('nan'), float('inf'), 'soon'):
        with pytest.raises(ValueError, match='finite positive'):
            client.InfluxDBClient('http://127.0.0.1:1', deadline=bad)
        with pytest.raises(ValueError, match='finite positive'):
            idb.InfluxDBDataSource(url='http://127.0.0.1:1',
                                   read_deadline=bad)
    influx = client.InfluxDBClient('http://127.0.0.1:1', timeout=3,
                                   retries=2)
    assert influx.deadline == 18.0   # 2 x timeout per attempt
    early = deadline_mod.Deadline(1, 'a')
    late = deadline_mod.Deadline(5, 'b')
    assert deadline_mod.Deadline.earliest(None, late, early) is early
    assert deadline_mod.Deadline.earliest(None) is None


# -- the datasource -------------------------------------------------------


def _datasource(url, **kwargs):
    kwargs.setdefault('timeout', 5.0)
    kwargs.setdefault('retries', 2)
    return idb.InfluxDBDataSource(url=url, database='collectd', **kwargs)


def test_a_trickled_read_fails_naming_the_read_and_the_deadline(
        fault_server):
    server = fault_server('trickle')
    ds = _datasource(server.url, read_deadline=2.0)
    ds.start_read_deadline()
    t0 = time.monotonic()
    with pytest.raises(client.InfluxDBDeadlineExceeded) as info:
        ds.cluster_windows(metric_windows.COMPUTE_NODE, ('cmp-1', 'cmp-2'),
                           600, 10, metrics=('cpu', 'memory', 'load'),
                           end=END)
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert message.startswith(
        'the read of compute_node cpu, memory, load of 2 name(s) over '
        '610 s did not end in time: the audit\'s metrics read deadline '
        '([failpredict] metrics_read_deadline) of 2 s passed')
    assert 'POST /query (SELECT' in message
    # the read is split in two concurrent requests: both stopped
    assert len(server.requests) == 2
    assert 2.0 - 0.05 <= elapsed < 2.0 + MARGIN
    ds.close()


def _timed_reads(ds, n):
    """Read ``n`` distinct windows; (reads done, error or None, seconds)."""
    t0, done = time.monotonic(), 0
    try:
        for i in range(n):
            ds.cluster_windows(metric_windows.COMPUTE_NODE, ('cmp-1',), 60,
                               10, metrics=('cpu',), end=END + 600 * i)
            done += 1
    except metric_windows.MetricsUnavailable as exc:
        return done, exc, time.monotonic() - t0
    return done, None, time.monotonic() - t0


def test_every_read_of_an_audit_shares_one_deadline(fault_server):
    server = fault_server('ok', delay=1.0)    # each answer takes 1 s
    ds = _datasource(server.url, read_deadline=2.5, query_split=1)
    ds.start_read_deadline()
    done, error, elapsed = _timed_reads(ds, 4)
    # 1 + 1 s fit in 2.5 s, the third read's 1 s does not
    assert done == 2
    assert type(error) is client.InfluxDBDeadlineExceeded
    assert 'the read of compute_node cpu of 1 name(s)' in str(error)
    assert 'of 2.5 s passed' in str(error)
    assert 2.5 - 0.05 <= elapsed < 2.5 + MARGIN
    # Outside an audit each read has the deadline to itself.
    ds.end_read_deadline()
    ds.reset_caches()
    assert ds.current_deadline().what == ds_base.READ_DEADLINE
    done, error, elapsed = _timed_reads(ds, 3)
    assert (done, error) == (3, None)
    ds.close()


def test_read_history_names_the_chunk_and_the_deadline(fault_server):
    server = fault_server('ok', delay=0.8)
    ds = _datasource(server.url, read_deadline=30.0, query_split=1)
    # per chunk: 0.8 s of 0.25 s
    t0 = time.monotonic()
    with pytest.raises(client.InfluxDBDeadlineExceeded) as info:
        ds.read_history(('cmp-1',), END, END + 3 * 600, 10, 600,
                        chunk_deadline=0.25)
    assert time.monotonic() - t0 < 0.25 + MARGIN
    message = str(info.value)
    assert message.startswith('history chunk 1 of 3 [2023-11-14T22:10:00Z'
                              ' .. 2023-11-14T22:20:00Z): the read of '
                              'compute_node cpu')
    assert 'the per-chunk read deadline of 0.25 s passed' in message
    # overall: two chunks of 0.8 s fit in 2 s, the third does not
    t0 = time.monotonic()
    with pytest.raises(client.InfluxDBDeadlineExceeded) as info:
        ds.read_history(('cmp-1',), END, END + 3 * 600, 10, 600,
                        chunk_deadline=5, deadline=2.0)
    assert time.monotonic() - t0 < 2.0 + MARGIN
    message = str(info.value)
    assert message.startswith('history chunk 3 of 3')
    assert 'the overall history read deadline of 2 s passed' in message
    # within both, the history is read
    win = ds.read_history(('cmp-1',), END, END + 2 * 600, 10, 600,
                          chunk_deadline=5, deadline=10)
    assert win.names == ('cmp-1',)
    ds.close()


# -- an audit ---------------------------------------------------------------


def test_an_audit_against_a_trickling_server_fails_within_its_deadline(
        fault_server):
    server = fault_server('trickle')
    cluster = Cluster()
    cluster.host('src', 95.0)
    cluster.host('dst', 10.0)
    cluster.instance('vm1', 'src', cpu=100, vcpus=2)
    strategy = cluster.strategy()
    fp_conf.CONF.set_override('metrics_read_deadline', 2.0,
                              group='failpredict')
    try:
        # influxdb_timeout 10 s and 2 retries: without the deadline each
        # byte arriving within 10 s would keep the read going for minutes
        ds = idb.InfluxDBDataSource(url=server.url, database='collectd',
                                    timeout=10.0, retries=2)
    finally:
        fp_conf.CONF.clear_override('metrics_read_deadline',
                                    group='failpredict')
    strategy.datasource_backend = ds
    t0 = time.monotonic()
    with pytest.raises(errors.MetricsReadFailed) as info:
        strategy.execute()
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert message.startswith(
        'cannot read host metrics: the read of compute_node cpu, memory, '
        'load of 2 name(s) over ')
    assert ("the audit's metrics read deadline ([failpredict] "
            "metrics_read_deadline) of 2 s passed") in message
    assert server.url in message
    assert 2.0 - 0.05 <= elapsed < 2.0 + MARGIN
    # the audit's deadline ended with it
    assert ds.current_deadline().what == ds_base.READ_DEADLINE
    assert ds.current_deadline().seconds == 2.0
    ds.close()


def test_an_audit_against_a_refusing_server_fails_naming_the_cause():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(('127.0.0.1', 0))
        url = f'http://127.0.0.1:{closed.getsockname()[1]}'
        cluster = Cluster()
        cluster.host('src', 95.0)
        cluster.host('dst', 10.0)
        strategy = cluster.strategy()
        strategy.datasource_backend = idb.InfluxDBDataSource(
            url=url, database='collectd', timeout=2.0, retries=1,
            read_deadline=5.0)
        t0 = time.monotonic()
        with pytest.raises(errors.MetricsReadFailed) as info:
            strategy.execute()
    message = str(info.value)
    assert message.startswith('cannot read host metrics: InfluxDB at '
                              f'{url}')
    assert 'ConnectionRefusedError' in message
    assert time.monotonic() - t0 < 5.0 + MARGIN
