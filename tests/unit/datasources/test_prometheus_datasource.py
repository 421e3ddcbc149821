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

"""The Prometheus datasource beyond the shared contract.

Against a real ``prometheus`` (history loaded by ``promtool``): clear
errors naming what is missing, the configurable host label, names matched
literally, NaN samples, long reads split under Prometheus' point limit, a
real node_exporter scraped on loopback. Against a scripted fake server:
the client's whole-request timeout, retries and redaction.
"""

import os
import socketserver
import subprocess
import threading
import time

import numpy as np
import pytest

from watcher_failpredict.datasources import prometheus
from watcher_failpredict.datasources.prometheus import client as prom_client
from watcher_failpredict.datasources.prometheus import datasource
from watcher_failpredict.datasources.prometheus import exporter_schema
from watcher_failpredict.datasources.prometheus import local_server
from watcher_failpredict.datasources.prometheus import query
from watcher_failpredict.datasources import windows as w

T0 = 1_700_000_000
STEP = 10
TIMES = np.arange(T0 - 600, T0, STEP, dtype=float)
NODE_EXPORTER = '/usr/bin/prometheus-node-exporter'


def _host(name, cpu=50.0, load=2.0, label='fqdn'):
    n = TIMES.size
    return exporter_schema.host_series(
        name, TIMES, np.full(n, cpu), np.full(n, 30.0), np.full(n, load),
        np.full(n, 1e5), np.full(n, 1e4), label=label)


def _start(server, series):
    server.load(local_server.openmetrics(series))
    server.start()
    return server


def _ds(server, **kwargs):
    kwargs.setdefault('scrape_interval', STEP)
    kwargs.setdefault('retries', 0)
    return prometheus.PrometheusDataSource(url=server.url, **kwargs)


def test_a_missing_metric_fails_naming_it_the_label_and_the_exporter(
        prometheus_server):
    series = [s for s in _host('h1') if s[0] != query.NODE_LOAD1]
    ds = _ds(_start(prometheus_server, series))
    with pytest.raises(w.MetricsUnavailable) as err:
        ds.cluster_windows(w.COMPUTE_NODE, ('h1',), 120, STEP, end=T0 - 1)
    msg = str(err.value)
    assert 'node_load1' in msg and "'load'" in msg
    assert "'fqdn' label" in msg and 'node_exporter' in msg
    # the metrics that are there are not blamed
    assert 'node_cpu_seconds_total' not in msg
    # without load, the same read works
    win = ds.cluster_windows(w.COMPUTE_NODE, ('h1',), 120, STEP,
                             metrics=('cpu', 'disk'), end=T0 - 1)
    assert np.allclose(win.series('cpu', 'h1'), 50.0)
    assert np.allclose(win.series('disk', 'h1'), 1e5)


def test_a_host_label_absent_from_the_series_is_named(prometheus_server):
    ds = _ds(_start(prometheus_server, _host('h1')), host_label='nodename')
    with pytest.raises(w.MetricsUnavailable, match="'nodename' label"):
        ds.cluster_windows(w.COMPUTE_NODE, ('h1',), 120, STEP, end=T0 - 1)


def test_a_host_without_samples_is_nan_not_an_error(prometheus_server):
    ds = _ds(_start(prometheus_server, _host('h1')))
    win = ds.cluster_windows(w.COMPUTE_NODE, ('h2',), 120, STEP, end=T0 - 1)
    assert all(np.isnan(v).all() for v in win.data.values())
    # one query per metric, and one to find out nothing is missing
    assert ds.request_count == len(w.HOST_METRICS) + 1


def test_the_host_label_is_configurable(prometheus_server):
    ds = _ds(_start(prometheus_server, _host('h1', label='nodename')),
             host_label='nodename')
    win = ds.cluster_windows(w.COMPUTE_NODE, ('h1',), 120, STEP, end=T0 - 1)
    assert np.allclose(win.series('load', 'h1'), 2.0)
    assert np.allclose(win.series('net', 'h1'), 1e4)  # lo not counted
    with pytest.raises(ValueError, match='not a Prometheus label name'):
        _ds(prometheus_server, host_label='bad-label')


def test_names_are_matched_literally(prometheus_server):
    names = ('a.b', 'axb', 'q"uo\\te', 'x|y', 'x')
    series = []
    for i, name in enumerate(names):
        series += _host(name, load=float(i))
    ds = _ds(_start(prometheus_server, series))
    for i, name in enumerate(names):
        got = ds.fetch(w.COMPUTE_NODE, ('load',), (name,), T0 - 60, T0,
                       STEP)
        assert set(got['load']) == {name}, name
        assert np.allclose(got['load'][name][1], float(i))


def test_nan_samples_are_nan_windows(prometheus_server):
    series = _host('h1')
    load = [s for s in series if s[0] == query.NODE_LOAD1][0]
    v = load[3].copy()
    v[-3] = np.nan
    series = [s if s is not load else (s[0], s[1], s[2], v) for s in series]
    ds = _ds(_start(prometheus_server, series))
    win = ds.cluster_windows(w.COMPUTE_NODE, ('h1',), 60, STEP,
                             metrics=('load',), end=T0 - 1)
    got = win.series('load', 'h1')
    assert np.isnan(got[win.times == TIMES[-3]]).all()
    assert np.allclose(got[win.times != TIMES[-3]], 2.0)


def test_a_long_read_is_split_under_the_point_limit(prometheus_server,
                                                    monkeypatch):
    ds = _ds(_start(prometheus_server, _host('h1', load=3.0)))
    whole = ds.fetch(w.COMPUTE_NODE, ('load', 'cpu'), None, T0 - 400, T0,
                     STEP)
    monkeypatch.setattr(datasource, 'MAX_STEPS', 7)
    before = ds.request_count
    split = ds.fetch(w.COMPUTE_NODE, ('load', 'cpu'), None, T0 - 400, T0,
                     STEP)
    assert ds.request_count - before == 2 * 6  # 40 steps in pieces of 7
    for metric in ('load', 'cpu'):
        np.testing.assert_array_equal(split[metric]['h1'][0],
                                      whole[metric]['h1'][0])
        np.testing.assert_allclose(split[metric]['h1'][1],
                                   whole[metric]['h1'][1])
    assert whole['load']['h1'][0].size == 40


def test_list_names_and_availability(prometheus_server):
    hosts = ('h2', 'h1')
    series = [s for h in hosts for s in _host(h)]
    series += exporter_schema.instance_series(
        'u-1', TIMES, np.full(TIMES.size, 10.0), np.full(TIMES.size, 2e8))
    ds = _ds(_start(prometheus_server, series))
    ds.clock = lambda: T0
    assert ds.check_availability() == 'available'
    assert ds.list_names() == ['h1', 'h2']
    assert ds.list_names(w.INSTANCE) == ['u-1']
    prometheus_server.stop()
    assert ds.check_availability() == 'not available'


def test_the_configured_datasource_is_prometheus_when_asked(
        prometheus_server):
    from watcher_failpredict.conf import CONF
    from watcher_failpredict.datasources import configured
    _start(prometheus_server, _host('h1'))
    CONF.set_override('datasource', 'prometheus', 'failpredict')
    CONF.set_override('prometheus_url', prometheus_server.url, 'failpredict')
    CONF.set_override('prometheus_scrape_interval', STEP, 'failpredict')
    try:
        ds = configured.datasource()
    finally:
        CONF.clear_override('datasource', 'failpredict')
        CONF.clear_override('prometheus_url', 'failpredict')
        CONF.clear_override('prometheus_scrape_interval', 'failpredict')
    assert isinstance(ds, prometheus.PrometheusDataSource)
    assert ds.url == prometheus_server.url and ds.host_label == 'fqdn'
    win = ds.cluster_windows(w.COMPUTE_NODE, ('h1',), 60, STEP,
                             metrics=('load',), end=T0 - 1)
    assert np.allclose(win.series('load', 'h1'), 2.0)


@pytest.mark.skipif(not os.path.exists(NODE_EXPORTER),
                    reason='prometheus-node-exporter is not installed')
def test_prometheus_scraping_a_real_node_exporter(tmp_path):
    """Real node_exporter on loopback, scraped every second by a real
    prometheus: the datasource reads this machine's metrics.
    """
    port = local_server.free_port()
    exporter = subprocess.Popen(
        [NODE_EXPORTER, f'--web.listen-address=127.0.0.1:{port}',
         '--collector.disable-defaults', '--collector.cpu',
         '--collector.meminfo', '--collector.loadavg',
         '--collector.diskstats', '--collector.netdev'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = local_server.PrometheusServer(scrape_configs=[{
        'job_name': 'node',
        'static_configs': [{'targets': [f'127.0.0.1:{port}'],
                            'labels': {'fqdn': 'this-host'}}],
    }], scrape_interval=1)
    try:
        server.start()
        ds = prometheus.PrometheusDataSource(url=server.url,
                                             scrape_interval=1, retries=0)
        deadline = time.monotonic() + 30
        while True:
            try:
                win = ds.cluster_windows(w.COMPUTE_NODE, ('this-host',), 4,
                                         2, end=time.time() - 2)
                last = {m: win.data[m][0, -2] for m in w.HOST_METRICS}
            except w.MetricsUnavailable as exc:  # not scraped yet
                last = exc
            if isinstance(last, dict) and \
                    not any(np.isnan(v) for v in last.values()):
                break
            assert time.monotonic() < deadline, (last, server.log_tail())
            ds.reset_caches()
            time.sleep(0.5)
        assert 0 <= last['cpu'] <= 100
        assert 0 < last['memory'] < 100
        assert last['load'] >= 0
        assert last['disk'] >= 0 and last['net'] >= 0
        with open('/proc/meminfo') as f:
            info = dict(line.split(':', 1) for line in f)
        total = float(info['MemTotal'].split()[0])
        avail = float(info['MemAvailable'].split()[0])
        # this machine's memory now, within what moved in a few seconds
        assert last['memory'] == pytest.approx(100 * (1 - avail / total),
                                               abs=10)
    finally:
        server.stop()
        exporter.terminate()
        exporter.wait(10)


# -- the client, against a scripted fake server ------------------------------

class _Fake(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        line = self.rfile.readline()
        if not line:
            return
        headers = {}
        for raw in iter(self.rfile.readline, b'\r\n'):
            key, _, value = raw.decode('utf-8').partition(':')
            headers[key.strip().lower()] = value.strip()
        self.rfile.read(int(headers.get('content-length', 0)))
        with srv.lock:
            srv.seen.append(headers)
        status, body, trickle = srv.answer
        head = (f'HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n'
                f'Content-Length: {len(body)}\r\nConnection: close\r\n\r\n')
        self.wfile.write(head.encode('ascii'))
        for i in range(len(body)):
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()
            time.sleep(trickle)


@pytest.fixture
def fake_prometheus():
    srv = socketserver.ThreadingTCPServer(('127.0.0.1', 0), _Fake)
    srv.daemon_threads = True
    srv.seen, srv.lock = [], threading.Lock()
    srv.answer = (200, b'{"status":"success","data":{}}', 0)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    srv.url = f'http://127.0.0.1:{srv.server_address[1]}'
    yield srv
    srv.shutdown()
    srv.server_close()


def test_the_timeout_bounds_the_whole_request(fake_prometheus):
    # 40 bytes, 0.1 s apart: every read is quick, the answer takes 4 s
    body = b'{"status":"success","data":{"x": 12345}}'
    fake_prometheus.answer = (200, body, 0.1)
    client = prom_client.PrometheusClient(fake_prometheus.url, timeout=0.5)
    t = time.monotonic()
    with pytest.raises(w.MetricsUnavailable, match='timeout|Timeout'):
        client.query('up')
    assert time.monotonic() - t < 1.5


def test_token_is_sent_and_never_shown_and_errors_are_explained(
        fake_prometheus, caplog):
    token = 'gAAAA-very-secret-token'
    fake_prometheus.answer = (
        400, ('{"status":"error","errorType":"bad_data","error":"parse '
              'error near ' + token + '"}').encode(), 0)
    client = prom_client.PrometheusClient(
        fake_prometheus.url, retries=2, token=token,
        headers={'X-Project': 'p1'})
    with pytest.raises(w.MetricsUnavailable) as err:
        client.query_range('up', T0, T0 + 10, 10)
    assert fake_prometheus.seen[0]['authorization'] == f'Bearer {token}'
    assert fake_prometheus.seen[0]['x-project'] == 'p1'
    assert client.request_count == 3 == len(fake_prometheus.seen)
    assert 'bad_data' in str(err.value) and 'parse error' in str(err.value)
    assert token not in str(err.value) and token not in caplog.text
    assert 'p1' not in str(err.value)


def test_a_url_with_credentials_is_refused():
    with pytest.raises(ValueError, match='credentials'):
        prom_client.PrometheusClient('http://u:secret@127.0.0.1:9090')
