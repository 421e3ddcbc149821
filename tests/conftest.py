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

"""pytest fixtures shared by the test suite.

``influxdb_server`` starts one real ``influxd`` per test session (see
:mod:`watcher_failpredict.datasources.influxdb.local_server`);
``influxdb_db`` gives each test its own fresh database on it, so tests never
see each other's points. ``prometheus_server`` is a real ``prometheus`` of
the test's own (:mod:`watcher_failpredict.datasources.prometheus.
local_server`: about 0.25 s to start; history is loaded into its TSDB by
``promtool``, which needs the server stopped, hence one per test).
``fake_influx`` is a scripted fake server for the transport's failure
cases, which a real influxd cannot be made to produce.
"""

import itertools
import socketserver
import threading
import time
import urllib.parse

import msgpack
import pytest

from tests import http_stub
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources.prometheus import (
    local_server as prom_local_server)

_db_counter = itertools.count()


@pytest.fixture(autouse=True)
def fresh_audit_memory(monkeypatch):
    """Every test starts with the ranking check's memory empty: the
    strategy's is shared by the audits of a process, and one test's audits
    must not be judged in another.
    """
    from watcher_failpredict.strategies import predicted_least_failure
    from watcher_failpredict.strategies import ranking_check
    monkeypatch.setattr(predicted_least_failure.PredictedLeastFailure,
                        'audit_memory', ranking_check.AuditMemory())


@pytest.fixture(scope='session')
def influxdb_server():
    """A real InfluxDB 1.x server on 127.0.0.1, for the whole session."""
    server = local_server.InfluxDBServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus_server():
    """A real Prometheus on 127.0.0.1 for this test.

    Not started yet: ``load()`` history into it, then ``start()``.
    """
    server = prom_local_server.PrometheusServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influxdb_db(influxdb_server):
    """The name of a database created for this test only."""
    name = f'test_{next(_db_counter)}'
    influxdb_server.create_database(name)
    yield name
    influxdb_server.query(f'DROP DATABASE "{name}"')


class _FakeInfluxHandler(socketserver.StreamRequestHandler):
    """Records each request and answers from the server's ``script``.

    ``script`` items: ``(status, body_dict)`` (msgpack-encoded; ``None``:
    no body), ``'hang'`` (never answer) or ``'drop'`` (close without
    answering); the last item repeats. ``answer``, when set, replaces
    ``script``: a function of the request's form giving one such item.
    ``seen`` records each request (with the form of a /query), ``bodies``
    its raw body.

    Plain socketserver rather than http.server: a test module elsewhere in
    the suite leaves an eventlet-patched ``http.server`` in sys.modules,
    whose green threads never run here.
    """

    def handle(self):
        srv = self.server
        while True:  # keep-alive, as influxd
            request = http_stub.read_request(self.rfile, lower=False)
            if request is None:
                return
            method, path, headers, body = request
            form = {}
            if path.endswith('/query'):
                form = urllib.parse.parse_qs(body.decode('ascii'))
            with srv.lock:
                srv.seen.append((method, path, headers, form))
                srv.bodies.append(body)
                srv.connections.add(self.client_address)
                n = len(srv.seen)
            if srv.answer is not None:
                step = srv.answer(form)
            else:
                step = srv.script[min(n, len(srv.script)) - 1]
            if step == 'hang':
                time.sleep(1)
                return
            if step == 'drop':
                return
            status, answer = step
            data = b'' if answer is None else msgpack.packb(answer)
            self.wfile.write(
                f'HTTP/1.1 {status} X\r\nContent-Type: '
                f'application/x-msgpack\r\nContent-Length: {len(data)}'
                f'\r\n\r\n'.encode('ascii') + data)
            if srv.close_after_answer:  # without saying so: a stale socket
                return


@pytest.fixture
def fake_influx():
    """A scripted fake InfluxDB HTTP server on 127.0.0.1 (see the handler)."""
    srv = socketserver.ThreadingTCPServer(('127.0.0.1', 0),
                                          _FakeInfluxHandler)
    srv.daemon_threads = True
    srv.seen, srv.connections, srv.close_after_answer = [], set(), False
    srv.bodies = []
    srv.answer, srv.lock = None, threading.Lock()
    srv.script = [(200, {'results': [{'statement_id': 0}]})]
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    srv.url = f'http://127.0.0.1:{srv.server_address[1]}'
    yield srv
    srv.shutdown()
    srv.server_close()
