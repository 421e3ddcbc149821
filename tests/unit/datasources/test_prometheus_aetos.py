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

"""The Prometheus datasource through Aetos (a Keystone-token proxy).

A local proxy on 127.0.0.1 stands for Aetos: it refuses any request whose
``X-Auth-Token`` is not the current token and forwards the others, under
its own path prefix, to a real ``prometheus``. The datasource gets its
URL and its token from a real keystoneauth1 session (a ``token_endpoint``
plugin: what a Keystone catalogue lookup and a token look like to the
client, without a Keystone).
"""

import http.client
import socketserver
import threading

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
import numpy as np
import pytest

from tests import http_stub
from watcher_failpredict.conf import CONF
from watcher_failpredict.datasources import configured
from watcher_failpredict.datasources.prometheus import aetos
from watcher_failpredict.datasources.prometheus import exporter_schema
from watcher_failpredict.datasources.prometheus import local_server
from watcher_failpredict.datasources import windows as w

T0 = 1_700_000_000
STEP = 10
PREFIX = '/metric-storage'


class _AetosProxy(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        while True:
            request = http_stub.read_request(self.rfile)
            if request is None:
                return
            method, path, headers, body = request
            token = headers.get('x-auth-token')
            with srv.lock:
                srv.seen.append((path, token))
            if token != srv.token or not path.startswith(PREFIX + '/'):
                status, data = 401, (b'{"status":"error","errorType":'
                                     b'"unauthorized","error":"The request '
                                     b'you have made requires '
                                     b'authentication."}')
            else:
                conn = http.client.HTTPConnection('127.0.0.1', srv.backend,
                                                  timeout=30)
                fwd = {'Content-Type': headers.get('content-type', '')}
                conn.request(method, path[len(PREFIX):], body or None, fwd)
                resp = conn.getresponse()
                status, data = resp.status, resp.read()
                conn.close()
            self.wfile.write(
                f'HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n'
                f'Content-Length: {len(data)}\r\n\r\n'.encode('ascii')
                + data)


@pytest.fixture
def aetos_proxy(prometheus_server):
    n = 40
    times = np.arange(T0 - n * STEP, T0, STEP, dtype=float)
    series = exporter_schema.host_series(
        'compute-1', times, np.full(n, 42.0), np.full(n, 30.0),
        np.full(n, 3.0), np.full(n, 1e5), np.full(n, 1e4))
    prometheus_server.load(local_server.openmetrics(series))
    prometheus_server.start()
    srv = socketserver.ThreadingTCPServer(('127.0.0.1', 0), _AetosProxy)
    srv.daemon_threads = True
    srv.seen, srv.lock, srv.token = [], threading.Lock(), 'tok-1'
    srv.backend = prometheus_server.port
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    srv.url = f'http://127.0.0.1:{srv.server_address[1]}{PREFIX}'
    yield srv
    srv.shutdown()
    srv.server_close()


def _session(endpoint, token):
    plugin = token_endpoint.Token(endpoint, token)
    return ks_session.Session(auth=plugin), plugin


def test_windows_through_aetos_carry_the_session_token(aetos_proxy):
    sess, plugin = _session(aetos_proxy.url, 'tok-1')
    ds = configured.datasource('aetos', session=lambda: sess,
                               scrape_interval=STEP, retries=0)
    assert isinstance(ds, aetos.AetosDataSource)
    assert ds.url == aetos_proxy.url        # the session's endpoint
    win = ds.cluster_windows(w.COMPUTE_NODE, ('compute-1',), 120, STEP,
                             end=T0 - 1)
    assert np.allclose(win.series('cpu', 'compute-1'), 42.0)
    assert np.allclose(win.series('load', 'compute-1'), 3.0)
    assert np.allclose(win.series('disk', 'compute-1'), 1e5)
    # one request per metric, as on Prometheus, each with the token
    assert len(aetos_proxy.seen) == len(w.HOST_METRICS) == ds.request_count
    assert {tok for _p, tok in aetos_proxy.seen} == {'tok-1'}
    # a renewed token is asked of the session for every request
    plugin.token = aetos_proxy.token = 'tok-2'
    ds.reset_caches()
    ds.cluster_windows(w.COMPUTE_NODE, ('compute-1',), 60, STEP,
                       metrics=('load',), end=T0 - 1)
    assert aetos_proxy.seen[-1][1] == 'tok-2'


def test_a_refused_token_fails_the_read_without_showing_it(aetos_proxy,
                                                           caplog):
    sess, _plugin = _session(aetos_proxy.url, 'stale-secret-token')
    ds = aetos.AetosDataSource(sess, scrape_interval=STEP, retries=1)
    with pytest.raises(w.MetricsUnavailable) as err:
        ds.cluster_windows(w.COMPUTE_NODE, ('compute-1',), 60, STEP,
                           end=T0 - 1)
    msg = str(err.value)
    assert 'HTTP 401' in msg and 'unauthorized' in msg
    assert aetos_proxy.url.split(PREFIX)[0] in msg
    assert 'stale-secret-token' not in msg + caplog.text
    # each metric's query, retried once
    assert ds.request_count == 2 * len(w.HOST_METRICS)


def test_an_explicit_endpoint_wins_over_the_catalogue(aetos_proxy):
    sess, _plugin = _session('http://127.0.0.1:9/elsewhere', 'tok-1')
    CONF.set_override('aetos_endpoint', aetos_proxy.url, 'failpredict')
    try:
        ds = aetos.AetosDataSource(sess, scrape_interval=STEP, retries=0)
    finally:
        CONF.clear_override('aetos_endpoint', 'failpredict')
    assert ds.url == aetos_proxy.url
    win = ds.cluster_windows(w.COMPUTE_NODE, ('compute-1',), 60, STEP,
                             metrics=('memory',), end=T0 - 1)
    assert np.allclose(win.series('memory', 'compute-1'), 30.0)


def test_no_metric_storage_in_the_catalogue_is_named():
    class NoCatalogue:
        def get_endpoint(self, **kwargs):
            assert kwargs['service_type'] == 'metric-storage'
            assert kwargs['interface'] == 'public'
            return None

        def get_auth_headers(self):
            return {}

    with pytest.raises(w.MetricsUnavailable,
                       match='no metric-storage endpoint.*aetos_endpoint'):
        aetos.AetosDataSource(NoCatalogue())
    with pytest.raises(ValueError, match='needs a Keystone session'):
        configured.datasource('aetos')
