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

And the real thing: Aetos 3.0.0 (PyPI ``aetos``, pinned in
test-requirements.txt) served on 127.0.0.1 in front of the real
prometheus, its keystonemiddleware validating tokens against a fake
Keystone identity endpoint on loopback (:mod:`tests.fake_keystone`).
"""

import http.client
import os
import socketserver
import subprocess
import sys
import threading
import time

from keystoneauth1.identity import v3 as ks_v3
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
import numpy as np
import pytest

from tests import fake_keystone
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


# -- the real Aetos ----------------------------------------------------------

_AETOS_CONF = """\
[DEFAULT]
auth_mode = keystone
paste_config = {paste}
[prometheus]
host = 127.0.0.1
port = {prometheus_port}
[keystone_authtoken]
www_authenticate_uri = {keystone}
auth_url = {keystone}
auth_type = password
username = aetos
password = aetos-service-pw
project_name = service
user_domain_name = Default
project_domain_name = Default
"""

#: Serves Aetos' WSGI application (its own api-paste.ini pipeline with
#: keystonemiddleware) on 127.0.0.1.
_SERVE_AETOS = """\
import sys
from wsgiref import simple_server
from aetos import app
application = app.build_wsgi_app(argv=['--config-file', sys.argv[1]])
simple_server.make_server('127.0.0.1', int(sys.argv[2]),
                          application).serve_forever()
"""


@pytest.fixture
def real_aetos(prometheus_server, tmp_path):
    try:
        import aetos as aetos_pkg
    except ImportError:
        pytest.fail('aetos is not installed: pip install -r '
                    'test-requirements.txt (aetos==3.0.0; tools/run-tests '
                    'does)')
    n = 40
    times = np.arange(T0 - n * STEP, T0, STEP, dtype=float)
    load = 1.0 + np.arange(n) % 4          # a different value per window
    series = exporter_schema.host_series(
        'compute-1', times, np.full(n, 42.0), np.full(n, 30.0), load,
        np.full(n, 1e5), np.full(n, 1e4))
    prometheus_server.load(local_server.openmetrics(series))
    prometheus_server.start()
    port = local_server.free_port()
    # One Keystone user for Aetos' keystonemiddleware; the clients log in
    # as it too (the fake knows one user): what is checked is the token.
    keystone = fake_keystone.FakeKeystone(
        'aetos', 'aetos-service-pw', 'service',
        {'metric-storage': f'http://127.0.0.1:{port}'},
        token='tok-real-aetos').start()
    keystone.catalog['identity'] = keystone.url
    conf = tmp_path / 'aetos.conf'
    paste = tmp_path / 'api-paste.ini'
    # Aetos' own pipeline; its auth_token filter reads this test's file
    # rather than searching /etc/aetos.
    with open(os.path.join(os.path.dirname(aetos_pkg.__file__),
                           'api-paste.ini')) as f:
        text = f.read()
    marker = ('keystonemiddleware.auth_token:filter_factory\n'
              'oslo_config_project = aetos\n')
    assert marker in text
    paste.write_text(text.replace(
        marker, marker + f'oslo_config_file = {conf}\n'))
    conf.write_text(_AETOS_CONF.format(
        paste=paste, prometheus_port=prometheus_server.port,
        keystone=keystone.url))
    log = open(tmp_path / 'aetos.log', 'wb')
    proc = subprocess.Popen([sys.executable, '-c', _SERVE_AETOS, str(conf),
                             str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection('127.0.0.1', port,
                                                  timeout=5)
                conn.request('GET', '/api/v1/query?query=up')
                status = conn.getresponse().status
                conn.close()
                if status == 401:      # up, and asking for a token
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail('Aetos did not start: ' +
                            (tmp_path / 'aetos.log').read_text()[-3000:])
            time.sleep(0.2)
        yield url, keystone, load
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
        keystone.stop()


def test_windows_through_the_real_aetos(real_aetos):
    url, keystone, load = real_aetos
    auth = ks_v3.Password(
        auth_url=keystone.url, username='aetos',
        password='aetos-service-pw', user_domain_name='Default',
        project_name='service', project_domain_name='Default')
    sess = ks_session.Session(auth=auth)
    ds = aetos.AetosDataSource(sess, scrape_interval=STEP, retries=0)
    # found in the catalogue; Aetos serves instant GET queries only
    assert ds.url == url and ds.instant_only
    win = ds.cluster_windows(w.COMPUTE_NODE, ('compute-1', 'compute-2'),
                             120, STEP, end=T0 - 1)
    assert np.allclose(win.series('cpu', 'compute-1'), 42.0)
    assert np.allclose(win.series('memory', 'compute-1'), 30.0)
    assert np.allclose(win.series('disk', 'compute-1'), 1e5)
    assert np.allclose(win.series('net', 'compute-1'), 1e4)
    # each window its own sample: the subqueries' alignment is right
    first = T0 - len(load) * STEP                  # the history's start
    idx = ((win.times - first) // STEP).astype(int)
    assert win.times.size == 13 and (idx >= 0).all()
    assert np.allclose(win.series('load', 'compute-1'), load[idx])
    assert np.isnan(win.series('cpu', 'compute-2')).all()
    # one request per metric, as on Prometheus
    assert ds.request_count == len(w.HOST_METRICS)
    # every request's token was checked by Aetos' keystonemiddleware
    assert keystone.validations and \
        set(keystone.validations) == {'tok-real-aetos'}
    means = ds.cluster_means(w.COMPUTE_NODE, ('compute-1',), 120, STEP,
                             ('disk', 'net'), end=T0 - 1)
    assert np.allclose(means['disk'], [1e5])
    # a token Aetos does not accept: refused, not shown
    bad = aetos.AetosDataSource(_session(url, 'not-a-token')[0],
                                scrape_interval=STEP, retries=0)
    with pytest.raises(w.MetricsUnavailable, match='HTTP 401') as err:
        bad.cluster_windows(w.COMPUTE_NODE, ('compute-1',), 60, STEP,
                            metrics=('load',), end=T0 - 1)
    assert 'not-a-token' not in str(err.value)
