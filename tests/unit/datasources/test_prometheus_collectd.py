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

"""The Prometheus datasource on collectd's write_prometheus metrics.

``prometheus_schema = collectd``. First a history in the exposition's
shape loaded by promtool into a real prometheus, read back to exact
values; then the real thing: collectd 5.12 (Debian ``collectd``; its
write_prometheus plugin needs ``libprotobuf-c1`` and ``libmicrohttpd12``,
its virt plugin ``libvirt0``) configured from
``etc/collectd/compute-host-prometheus.conf``, listening on a free
127.0.0.1 port, scraped by a real prometheus with the ``collectd`` job of
``etc/prometheus/scrape-config.yml``; the datasource reads this machine's
CPU, memory and load and the virt plugin's instances (libvirt's fake
``test://`` driver) by their UUID.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import numpy as np
import pytest
import yaml

from tests.unit.datasources import test_collectd_virt as virt_test
from watcher_failpredict.datasources import prometheus
from watcher_failpredict.datasources.prometheus import local_server
from watcher_failpredict.datasources.prometheus import query
from watcher_failpredict.datasources import windows as w

COLLECTD = '/usr/sbin/collectd'
WRITE_PROMETHEUS_SO = '/usr/lib/collectd/write_prometheus.so'
ETC = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc')

T0 = 1_700_000_000
STEP = 10
TIMES = np.arange(T0 - 600, T0, STEP, dtype=float)
UUID = '3f1d2c4b-8a9e-4f60-b7a1-0c2d3e4f5a61'


def _read(*parts):
    with open(os.path.join(ETC, *parts)) as f:
        return f.read()


# -- a history in write_prometheus' shape, exact values -----------------------

def _collectd_series(host, idle_pct, used_bytes, load, disk_bps, net_bps,
                     uuid, vm_cpu_pct, vm_used_bytes):
    """write_prometheus' series of one host and one instance, as scraped
    with the sample's collectd job (fqdn / uuid copied from instance).
    """
    n = TIMES.size
    dt = TIMES - TIMES[0]
    host_labels = {'instance': host, 'fqdn': host, 'job': 'collectd'}
    vm_labels = {'instance': uuid, 'uuid': uuid, 'job': 'collectd'}
    out = [(query.COLLECTD_CPU, dict(host_labels, cpu=state), TIMES,
            np.full(n, pct))
           for state, pct in (('idle', idle_pct), ('user', 100 - idle_pct))]
    total = 8 * 2 ** 30
    free = total - used_bytes - 3 * 2 ** 20
    for state, value in (('used', used_bytes), ('free', free),
                         ('buffered', 2 ** 20), ('cached', 2 ** 20),
                         ('slab_recl', 2 ** 19), ('slab_unrecl', 2 ** 19)):
        out.append((query.COLLECTD_MEMORY, dict(host_labels, memory=state),
                    TIMES, np.full(n, float(value))))
    # collectd_memory_percent: not read (a site may not report it)
    out.append((query.COLLECTD_LOAD, host_labels, TIMES, np.full(n, load)))
    for name in (query.COLLECTD_DISK_READ, query.COLLECTD_DISK_WRITE):
        out.append((name, dict(host_labels, disk='vda'), TIMES,
                    1e6 + dt * disk_bps / 2))
    for name in (query.COLLECTD_NET_RX, query.COLLECTD_NET_TX):
        out.append((name, dict(host_labels, interface='eth0'), TIMES,
                    1e6 + dt * net_bps / 2))
        # loopback traffic never leaves the host: not read
        out.append((name, dict(host_labels, interface='lo'), TIMES,
                    1e6 + dt * 1e9))
    out.append((query.COLLECTD_VIRT_CPU, vm_labels, TIMES,
                5e9 + dt * vm_cpu_pct / 100 * 1e9))
    for part, value in (('total', 2 ** 31), ('available', 2 ** 30),
                        ('unused', 2 ** 30 - vm_used_bytes)):
        out.append((query.COLLECTD_VIRT_MEMORY, dict(vm_labels, virt=part),
                    TIMES, np.full(n, float(value))))
    return out


def test_collectd_schema_reads_exact_values(prometheus_server):
    prometheus_server.load(local_server.openmetrics(_collectd_series(
        'cmp-1', idle_pct=35.0, used_bytes=2 * 2 ** 30, load=1.5,
        disk_bps=4e5, net_bps=6e4, uuid=UUID, vm_cpu_pct=150.0,
        vm_used_bytes=300 * 2 ** 20)))
    prometheus_server.start()
    ds = prometheus.PrometheusDataSource(
        url=prometheus_server.url, scrape_interval=STEP, retries=0,
        schema='collectd')
    assert ds.schema == 'collectd'
    hosts = ds.cluster_windows(w.COMPUTE_NODE, ('cmp-1',), 300, 60,
                               end=T0 - 60)
    assert np.allclose(hosts.series('cpu', 'cmp-1'), 65.0)
    assert np.allclose(hosts.series('memory', 'cmp-1'), 25.0)
    kib = ds.fetch(w.COMPUTE_NODE, ('memory_kib',), ('cmp-1',), T0 - 300,
                   T0 - STEP, 60)
    assert np.allclose(kib['memory_kib']['cmp-1'][1], 2 * 2 ** 20)
    assert np.allclose(hosts.series('load', 'cmp-1'), 1.5)
    assert np.allclose(hosts.series('disk', 'cmp-1'), 4e5)
    assert np.allclose(hosts.series('net', 'cmp-1'), 6e4)
    means = ds.cluster_means(w.COMPUTE_NODE, ('cmp-1',), 300, 60,
                             ('disk', 'net'), end=T0 - 60)
    assert np.allclose(means['disk'], [4e5]) and \
        np.allclose(means['net'], [6e4])
    vms = ds.cluster_windows(w.INSTANCE, (UUID, 'no-such-vm'), 300, 60,
                             metrics=('cpu', 'memory'), end=T0 - 60)
    # percent of ONE vCPU, as the virt plugin over InfluxDB
    assert np.allclose(vms.series('cpu', UUID), 150.0)
    assert np.allclose(vms.series('memory', UUID), 300.0)
    assert np.isnan(vms.series('cpu', 'no-such-vm')).all()
    ds.clock = lambda: T0
    assert ds.list_names(w.COMPUTE_NODE) == ['cmp-1']
    assert ds.list_names(w.INSTANCE) == [UUID]
    # the other schema finds none of these series, and says what it needs
    other = prometheus.PrometheusDataSource(
        url=prometheus_server.url, scrape_interval=STEP, retries=0)
    with pytest.raises(w.MetricsUnavailable, match='node_exporter'):
        other.cluster_windows(w.COMPUTE_NODE, ('cmp-1',), 300, 60,
                              metrics=('cpu',), end=T0 - 60)


def test_collectd_schema_names_the_missing_plugin(prometheus_server):
    series = [s for s in _collectd_series(
        'cmp-1', 35.0, 2 ** 30, 1.0, 1e5, 1e4, UUID, 50.0, 2 ** 28)
        if s[0] != query.COLLECTD_LOAD]
    prometheus_server.load(local_server.openmetrics(series))
    prometheus_server.start()
    ds = prometheus.PrometheusDataSource(
        url=prometheus_server.url, scrape_interval=STEP, retries=0,
        schema='collectd')
    with pytest.raises(w.MetricsUnavailable) as err:
        ds.cluster_windows(w.COMPUTE_NODE, ('cmp-1',), 120, STEP,
                           end=T0 - 60)
    msg = str(err.value)
    assert query.COLLECTD_LOAD in msg and 'write_prometheus' in msg
    assert "'fqdn' label" in msg


def test_an_unknown_schema_is_refused():
    with pytest.raises(ValueError, match='prometheus_schema'):
        prometheus.PrometheusDataSource(url='http://127.0.0.1:1',
                                        schema='telegraf')


# -- real collectd, scraped by a real prometheus ------------------------------

def _write_prometheus_missing():
    """Why collectd's write_prometheus cannot load here, or None."""
    if not os.path.exists(COLLECTD):
        return f'{COLLECTD} not found (Debian package "collectd")'
    ldd = subprocess.run(['ldd', WRITE_PROMETHEUS_SO], capture_output=True,
                         text=True)
    if ldd.returncode != 0 or 'not found' in ldd.stdout:
        return ('collectd\'s write_prometheus plugin cannot load (Debian '
                'packages "libprotobuf-c1" and "libmicrohttpd12"; '
                'tools/run-tests installs them): ' + ldd.stdout)
    return virt_test._virt_missing()


def _collectd_conf(port, node_xml, base_dir):
    """etc/collectd/compute-host-prometheus.conf for this test: loopback,
    a free port, 1 s interval, libvirt's fake driver.
    """
    text = _read('collectd', 'compute-host-prometheus.conf')
    subs = ((r'^Hostname .*$', 'Hostname "collectd-host"'),
            (r'^Interval .*$', 'Interval 1'),
            (r'^  Host .*$', '  Host "127.0.0.1"'),
            (r'^  Port .*$', f'  Port "{port}"'),
            (r'qemu:///system', f'test://{node_xml}'))
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text, flags=re.M)
        assert n == 1, pattern
    return (f'BaseDir "{base_dir}"\nPIDFile "{base_dir}/collectd.pid"\n'
            f'TypesDB "/usr/share/collectd/types.db"\n' + text)


def _collectd_job(port):
    """The sample's collectd scrape job, aimed at the test's collectd."""
    conf = yaml.safe_load(_read('prometheus', 'scrape-config.yml'))
    (job,) = [j for j in conf['scrape_configs']
              if j['job_name'] == 'collectd']
    job['static_configs'] = [{'targets': [f'127.0.0.1:{port}']}]
    return job


def _meminfo_used_pct():
    """The memory plugin's used percent, from /proc/meminfo now."""
    with open('/proc/meminfo') as f:
        info = {k: float(v.split()[0]) for k, v in
                (line.split(':', 1) for line in f)}
    used = (info['MemTotal'] - info['MemFree'] - info['Buffers'] -
            info['Cached'] - info['SReclaimable'] - info['SUnreclaim'])
    return 100 * used / info['MemTotal']


@pytest.fixture(scope='module')
def collectd_prometheus():
    why = _write_prometheus_missing()
    if why:
        pytest.fail(why)
    tmp = tempfile.mkdtemp(prefix='failpredict-collectd-prom-')
    port = local_server.free_port()
    node = os.path.join(tmp, 'node.xml')
    with open(node, 'w') as f:
        f.write(virt_test._NODE_XML.format(domains='\n'.join(
            virt_test._DOMAIN_XML.format(i=i + 1, uuid=u, mem=512,
                                         vcpus=i + 1)
            for i, u in enumerate(virt_test.NOVA_UUIDS))))
    conf = os.path.join(tmp, 'collectd.conf')
    with open(conf, 'w') as f:
        f.write(_collectd_conf(port, node, tmp))
    log = open(os.path.join(tmp, 'collectd.log'), 'wb')
    proc = subprocess.Popen([COLLECTD, '-f', '-C', conf], stdout=log,
                            stderr=subprocess.STDOUT)
    server = local_server.PrometheusServer(
        scrape_configs=[_collectd_job(port)], scrape_interval=1)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                with open(os.path.join(tmp, 'collectd.log')) as f:
                    pytest.fail(f'collectd exited: {f.read()}')
            try:
                with urllib.request.urlopen(
                        f'http://127.0.0.1:{port}/metrics', timeout=2) as r:
                    body = r.read().decode()
                # (the cpu plugin's percentages need two reads)
                if query.COLLECTD_VIRT_CPU in body and \
                        query.COLLECTD_CPU in body:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, 'write_prometheus silent'
            time.sleep(0.3)
        server.start()
        yield server, body
    finally:
        server.stop()
        proc.kill()
        proc.wait(10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _read_until_complete(ds, resource_type, names, metrics):
    """The median of the last 3 complete windows (2 s) of every name,
    once all are scraped: a counter's first window after the start holds
    fewer samples, and rate() extrapolates those.
    """
    deadline = time.monotonic() + 40
    while True:
        try:
            win = ds.cluster_windows(resource_type, names, 10, 2,
                                     metrics=metrics, end=time.time() - 2)
            last = {(m, n): win.series(m, n)[-4:-1]
                    for m in metrics for n in names}
        except w.MetricsUnavailable as exc:  # not scraped yet
            last = exc
        if isinstance(last, dict) and \
                not any(np.isnan(v).any() for v in last.values()):
            return {k: float(np.median(v)) for k, v in last.items()}
        assert time.monotonic() < deadline, last
        ds.reset_caches()
        time.sleep(0.5)


def test_real_collectd_exposition_has_the_names_the_schema_reads(
        collectd_prometheus):
    _server, body = collectd_prometheus
    for name in (query.COLLECTD_CPU, query.COLLECTD_MEMORY,
                 query.COLLECTD_LOAD, query.COLLECTD_DISK_READ,
                 query.COLLECTD_NET_RX, query.COLLECTD_VIRT_CPU,
                 query.COLLECTD_VIRT_MEMORY):
        assert re.search(rf'^{name}{{', body, flags=re.M), name
    assert re.search(r'^collectd_cpu_percent\{cpu="idle",'
                     r'instance="collectd-host"\}', body, flags=re.M)
    for uuid in virt_test.NOVA_UUIDS:
        assert f'{query.COLLECTD_VIRT_CPU}{{instance="{uuid}"}}' in body


def test_datasource_reads_real_collectd_host_metrics(collectd_prometheus):
    server, _body = collectd_prometheus
    ds = prometheus.PrometheusDataSource(url=server.url, scrape_interval=1,
                                         retries=0, schema='collectd')
    metrics = ('cpu', 'memory', 'load', 'net')
    last = _read_until_complete(ds, w.COMPUTE_NODE, ('collectd-host',),
                                metrics)
    value = {m: last[(m, 'collectd-host')] for m in metrics}
    assert 0 <= value['cpu'] <= 100
    # this machine's memory now, within what moved in a few seconds
    assert value['memory'] == pytest.approx(_meminfo_used_pct(), abs=5)
    # Watcher's host_ram_usage: KiB used, the same reading
    now = time.time() - 2
    kib = ds.fetch(w.COMPUTE_NODE, ('memory', 'memory_kib'),
                   ('collectd-host',), now - 4, now, 2)
    with open('/proc/meminfo') as f:
        total_kib = float(f.readline().split()[1])
    pct = kib['memory']['collectd-host'][1]
    used = kib['memory_kib']['collectd-host'][1]
    ok = ~np.isnan(pct)
    assert ok.any()
    assert np.allclose(used[ok], pct[ok] / 100 * total_kib, rtol=0.01)
    with open('/proc/loadavg') as f:
        load1 = float(f.read().split()[0])
    assert value['load'] == pytest.approx(load1, abs=max(1.0, load1 / 2))
    assert value['net'] >= 0
    assert ds.list_names(w.COMPUTE_NODE) == ['collectd-host']


def test_datasource_reads_real_collectd_virt_instances(collectd_prometheus):
    server, _body = collectd_prometheus
    ds = prometheus.PrometheusDataSource(url=server.url, scrape_interval=1,
                                         retries=0, schema='collectd')
    uuids = tuple(virt_test.NOVA_UUIDS)
    last = _read_until_complete(ds, w.INSTANCE, uuids, ('cpu',))
    for uuid in uuids:
        # libvirt's fake driver: CPU time is the wall clock, one busy vCPU
        assert last[('cpu', uuid)] == pytest.approx(100.0, abs=15), uuid
    assert ds.list_names(w.INSTANCE) == sorted(uuids)
    # no balloon statistics from the fake driver: missing, not zero
    win = ds.cluster_windows(w.INSTANCE, uuids, 6, 2, metrics=('memory',),
                             end=time.time() - 2)
    assert np.isnan(win.data['memory']).all()
