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

"""The datasource contract, run against both backends from one suite.

The same history (hosts' CPU, memory, load, disk and network I/O;
instances' CPU and memory) is written into a real ``influxd`` as collectd
stores it (:mod:`~watcher_failpredict.datasources.collectd_schema`) and
into a real ``prometheus`` as node_exporter and the libvirt exporter
expose it (:mod:`~watcher_failpredict.datasources.prometheus.
exporter_schema`, loaded by ``promtool``); each datasource must give back
the same windows, in the same units and on the same time grid, with
missing samples as NaN, in a number of requests that does not depend on
the cluster's size.
"""

import dataclasses

import numpy as np
import pytest

from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import influxdb
from watcher_failpredict.datasources import prometheus
from watcher_failpredict.datasources.prometheus import exporter_schema
from watcher_failpredict.datasources.prometheus import local_server
from watcher_failpredict.datasources.prometheus import query
from watcher_failpredict.datasources import windows as w

T0 = 1_700_000_000
STEP = 10
GIB = 2.0 ** 30
MEM_TOTAL = 8 * GIB
#: What an audit reads (see the strategy's pre_execute, _with_last_cycle
#: and _instance_windows): host windows, host means, with a cyclic model
#: the hosts' CPU one load cycle back, instance windows.
AUDIT_HOST_WINDOWS = ('cpu', 'memory', 'load')
AUDIT_HOST_MEANS = ('disk', 'net')


@dataclasses.dataclass
class History:
    times: np.ndarray
    hosts: dict       # name -> {metric: array over times}
    instances: dict   # uuid -> {'cpu': % of its vCPUs, 'mib': ..,
    #                              'vcpus': n}
    resets: dict = dataclasses.field(default_factory=dict)  # host -> index


def history(n_hosts=3, n_instances=2, start=T0 - 900, end=T0):
    times = np.arange(start, end, STEP, dtype=float)
    k = np.arange(times.size)
    hosts = {}
    for h in range(n_hosts):
        hosts[f'compute-{h}.example.org'] = {
            'cpu': 20 + 10 * (h % 6) + 5 * np.sin(k / 7 + h),
            'memory': 40 + 3 * (h % 6) + 2 * np.cos(k / 5),
            'load': 1 + h + 0.5 * np.sin(k / 3),
            'disk': 1e5 * (1 + h) * (1.5 + np.sin(k / 4)),
            'net': 2e4 * (1 + h) * (1.5 + np.cos(k / 6)),
        }
    instances = {}
    for i in range(n_instances):
        uuid = f'{i:08d}-aaaa-bbbb-cccc-{i:012d}'
        instances[uuid] = {'cpu': 30 + 20 * (i % 3) + 10 * np.sin(k / 9),
                           'mib': 512 + 64 * i + 16 * np.cos(k / 8),
                           'vcpus': 1 + i % 4}
    return History(times, hosts, instances)


def _reset_counter(totals, j):
    """The counter restarted from zero at sample j - 1 (a reboot)."""
    out = np.array(totals, dtype=float)
    out[j:] -= out[j - 1]
    return out


class InfluxBackend:
    name = 'influxdb'

    def __init__(self, server, db):
        self.server, self.db = server, db

    def write(self, hist):
        lines = []
        for host, m in hist.hosts.items():
            totals = {}
            for key in ('disk', 'net'):
                half = np.nan_to_num(m[key]) / 2
                inc = np.concatenate([[0.0], np.diff(hist.times) * half[1:]])
                tot = 1e6 + np.cumsum(inc)
                if host in hist.resets and key == 'disk':
                    tot = _reset_counter(tot, hist.resets[host])
                totals[key] = tot
            for i, t in enumerate(hist.times):
                def given(key):
                    v = m[key][i]
                    return None if np.isnan(v) else float(v)
                mem = given('memory')
                lines += cs.host_lines(
                    host, int(t), cpu_pct=given('cpu'), mem_pct=mem,
                    mem_used_bytes=None if mem is None else
                    MEM_TOTAL * mem / 100, mem_total_bytes=MEM_TOTAL,
                    load=given('load'),
                    disk_read_bytes_total=None if given('disk') is None
                    else totals['disk'][i],
                    disk_write_bytes_total=None if given('disk') is None
                    else totals['disk'][i],
                    net_rx_bytes_total=None if given('net') is None
                    else totals['net'][i],
                    net_tx_bytes_total=None if given('net') is None
                    else totals['net'][i],
                    full=False)
        for uuid, m in hist.instances.items():
            state = {}
            for i, t in enumerate(hist.times):
                lines += cs.instance_lines(
                    uuid, int(t), float(m['cpu'][i]),
                    float(m['mib'][i]) * 2 ** 20, form='virt',
                    vcpus=m['vcpus'], state=state, full=False)
        self.server.write_lines(self.db, lines)

    def datasource(self, **kwargs):
        return influxdb.InfluxDBDataSource(
            url=self.server.url, database=self.db, cpu_form='percent',
            memory_form='percent', instance_metrics='virt',
            collectd_interval=STEP, retries=0, timeout=30,
            response_format='json', **kwargs)


class PrometheusBackend:
    name = 'prometheus'

    def __init__(self, server, instant_only=False):
        self.server = server
        #: Aetos' way: instant queries by GET, windows from subqueries
        self.instant_only = instant_only

    def write(self, hist):
        series = []
        for host, m in hist.hosts.items():
            parts = exporter_schema.host_series(
                host, hist.times, m['cpu'], m['memory'], m['load'],
                m['disk'], m['net'], mem_total_bytes=MEM_TOTAL)
            if host in hist.resets:
                parts = [
                    (n, lab, t, _reset_counter(v, hist.resets[host])
                     if n in (query.NODE_DISK_READ, query.NODE_DISK_WRITTEN)
                     else v) for n, lab, t, v in parts]
            series += parts
        for uuid, m in hist.instances.items():
            series += exporter_schema.instance_series(
                uuid, hist.times, m['cpu'], m['mib'] * 2 ** 20,
                vcpus=m['vcpus'])
        self.server.load(local_server.openmetrics(series))
        if not self.server.running:
            self.server.start()

    def datasource(self, **kwargs):
        return prometheus.PrometheusDataSource(
            url=self.server.url, scrape_interval=STEP, retries=0,
            timeout=30, instant_only=self.instant_only, **kwargs)


@pytest.fixture(params=['influxdb', 'prometheus', 'prometheus-instant'])
def backend(request):
    if request.param == 'influxdb':
        server = request.getfixturevalue('influxdb_server')
        return InfluxBackend(server, request.getfixturevalue('influxdb_db'))
    return PrometheusBackend(request.getfixturevalue('prometheus_server'),
                             instant_only=request.param.endswith('instant'))


def expected(hist, values, times):
    """The history's value at each window start (NaN where none)."""
    idx = {t: i for i, t in enumerate(hist.times)}
    return np.array([values[idx[t]] if t in idx else np.nan for t in times])


def assert_windows(actual, wanted, what):
    np.testing.assert_allclose(actual, wanted, rtol=1e-6, atol=1e-6,
                               equal_nan=True, err_msg=what)


def test_host_windows_match_the_written_history(backend):
    hist = history()
    backend.write(hist)
    ds = backend.datasource()
    names = tuple(hist.hosts) + ('never-reported',)
    win = ds.cluster_windows(w.COMPUTE_NODE, names, 300, STEP, end=T0 - 1)
    # The grid: STEP-wide windows ending after "now", starts on the grid.
    assert win.step == STEP and win.times[-1] == T0 - STEP
    assert win.times.size == 300 // STEP + 1
    assert set(win.data) == set(w.HOST_METRICS)
    for host, m in hist.hosts.items():
        for metric in w.HOST_METRICS:
            assert_windows(win.series(metric, host),
                           expected(hist, m[metric], win.times),
                           f'{backend.name} {host} {metric}')
        assert win.last_seen[win.index(host)] == T0 - STEP
    for metric in w.HOST_METRICS:
        assert np.isnan(win.series(metric, 'never-reported')).all()
    assert np.isnan(win.last_seen[-1])


def test_instance_windows_match_the_written_history(backend):
    hist = history(n_hosts=1, n_instances=3)
    backend.write(hist)
    ds = backend.datasource()
    uuids = tuple(hist.instances)
    win = ds.cluster_windows(w.INSTANCE, uuids, 120, STEP, end=T0 - 1)
    # Both backends measure CPU time: percent of ONE vCPU.
    assert ds.instance_cpu_per_vcpu
    for uuid, m in hist.instances.items():
        assert_windows(win.series('cpu', uuid),
                       expected(hist, m['cpu'] * m['vcpus'], win.times),
                       f'{backend.name} {uuid} cpu')
        assert_windows(win.series('memory', uuid),
                       expected(hist, m['mib'], win.times),
                       f'{backend.name} {uuid} memory')


def test_a_missing_scrape_is_nan_in_its_window(backend):
    hist = history(n_hosts=2, n_instances=0)
    host = next(iter(hist.hosts))
    gap = hist.times.size - 5
    for metric in w.HOST_METRICS:
        hist.hosts[host][metric][gap] = np.nan
    backend.write(hist)
    win = backend.datasource().cluster_windows(
        w.COMPUTE_NODE, tuple(hist.hosts), 200, STEP, end=T0 - 1)
    col = int(np.flatnonzero(win.times == hist.times[gap])[0])
    for metric in w.HOST_METRICS:
        series = win.series(metric, host)
        assert np.isnan(series[col]), (backend.name, metric)
        # never zero-filled, and the windows before are intact
        assert_windows(series[:col],
                       expected(hist, hist.hosts[host][metric],
                                win.times[:col]), metric)


def test_a_counter_reset_gives_no_negative_or_huge_rate(backend):
    hist = history(n_hosts=1, n_instances=0)
    host = next(iter(hist.hosts))
    j = hist.times.size - 10
    hist.resets[host] = j
    backend.write(hist)
    win = backend.datasource().cluster_windows(
        w.COMPUTE_NODE, (host,), 200, STEP, end=T0 - 1)
    disk = win.series('disk', host)
    want = expected(hist, hist.hosts[host]['disk'], win.times)
    col = int(np.flatnonzero(win.times == hist.times[j])[0])
    # InfluxDB drops the step across the reset; Prometheus' rate() adds the
    # old value back (the counter restarted from zero): either no rate or
    # the true one, never a negative or a huge one.
    assert np.isnan(disk[col]) or disk[col] == pytest.approx(want[col])
    others = np.arange(disk.size) != col
    assert_windows(disk[others], want[others], 'disk around the reset')


def _audit_reads(ds, hosts, uuids):
    """The bulk reads of one audit, as the strategy makes them."""
    ds.reset_caches()
    before = ds.request_count
    ds.cluster_windows(w.COMPUTE_NODE, hosts, 300, STEP,
                       metrics=AUDIT_HOST_WINDOWS, end=T0 - 1)
    ds.cluster_means(w.COMPUTE_NODE, hosts, 300, STEP, AUDIT_HOST_MEANS,
                     end=T0 - 1)
    # the last cycle of hosts whose cycles differ by up to 100 s
    ds.cluster_windows(w.COMPUTE_NODE, hosts, 300 + 100, STEP,
                       metrics=('cpu',), end=T0 - 1 - 200)
    ds.cluster_windows(w.INSTANCE, uuids, 300, STEP,
                       metrics=('cpu', 'memory'), end=T0 - 1)
    return ds.request_count - before


def test_requests_of_an_audit_do_not_grow_with_the_cluster(backend):
    hist = history(n_hosts=40, n_instances=80, start=T0 - 400)
    backend.write(hist)
    ds = backend.datasource()
    hosts, uuids = tuple(hist.hosts), tuple(hist.instances)
    small = _audit_reads(ds, hosts[:3], uuids[:4])
    large = _audit_reads(ds, hosts, uuids)
    assert small == large <= 8, (backend.name, small, large)
    # and the reads are whole: every host and instance got its windows
    win = ds.cluster_windows(w.COMPUTE_NODE, hosts, 300, STEP,
                             metrics=AUDIT_HOST_WINDOWS, end=T0 - 1)
    assert not np.isnan(win.data['cpu'][:, -1]).any()


def test_host_name_map_maps_watcher_names_to_the_metrics_names(backend):
    hist = history(n_hosts=2, n_instances=0)
    backend.write(hist)
    real = next(iter(hist.hosts))
    ds = backend.datasource(host_name_map={'compute-0': real})
    assert ds.collectd_host('compute-0') == real
    assert ds.collectd_host('other') == 'other'
    win = ds.cluster_windows(w.COMPUTE_NODE, (ds.collectd_host('compute-0'),),
                             60, STEP, metrics=('load',), end=T0 - 1)
    assert_windows(win.series('load', real),
                   expected(hist, hist.hosts[real]['load'], win.times),
                   'mapped load')


def test_watcher_helpers_read_the_same_values(backend):
    hist = history(n_hosts=1, n_instances=0)
    backend.write(hist)
    ds = backend.datasource()
    ds.clock = lambda: T0 - 1
    host = next(iter(hist.hosts))

    class Node:
        hostname = host

    cpu = ds.get_host_cpu_usage(Node(), period=60, granularity=STEP)
    # the six windows of the 60 s up to the end of the one still filling
    k = hist.times >= T0 - 60
    assert cpu == pytest.approx(np.mean(hist.hosts[host]['cpu'][k]))
    ram = ds.get_host_ram_usage(Node(), period=60, granularity=STEP)
    assert ram == pytest.approx(
        np.mean(MEM_TOTAL * hist.hosts[host]['memory'][k] / 100 / 1024))


def test_counter_means_are_last_minus_last_before_over_the_period(backend):
    """cluster_means of disk and net: per device, (last sample of the
    period - last sample of the period before) / period, summed per host;
    both backends compute it so (the strategy's decisions depend on it).
    """
    hist = history(n_hosts=3, n_instances=0)
    backend.write(hist)
    ds = backend.datasource()
    hosts = tuple(hist.hosts)
    # An end on a sample's time: that sample belongs to the next period
    # (the windows' mean would count it: about 1 % off here).
    period, end = 300, T0 - STEP
    means = ds.cluster_means(w.COMPUTE_NODE, hosts + ('absent',), period,
                             STEP, ('disk', 'net'), end=end)
    last = np.flatnonzero(hist.times < end)[-1]
    before = np.flatnonzero(hist.times < end - period)[-1]
    for metric in ('disk', 'net'):
        for i, host in enumerate(hosts):
            rates = hist.hosts[host][metric][before + 1:last + 1]
            want = rates.sum() * STEP / period
            assert means[metric][i] == pytest.approx(want, rel=1e-9), (
                backend.name, metric, host)
            # within a few % of the windows' mean, which it stands for
            assert means[metric][i] == pytest.approx(rates.mean(), rel=0.05)
        assert np.isnan(means[metric][-1])
