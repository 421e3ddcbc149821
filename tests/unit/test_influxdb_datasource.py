"""The InfluxDB datasource against a real influxd (tests/influxdb_server.py).

Points are rendered by collectd_schema exactly as InfluxDB's collectd input
stores them, written over HTTP, and read back through the datasource.
"""

import datetime
import logging
import time

import numpy as np
import pytest
from watcher.decision_engine.model import element

from tests.influxdb_server import InfluxDBServer
from watcher_failpredict.datasources import base
from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import influxdb as idb

T0 = 1_700_000_000 // 600 * 600  # a fixed, bucket-aligned past instant
STEP = 10
GIB = 2.0 ** 30


def _ds(server, db, **kwargs):
    kwargs.setdefault('retries', 0)
    return idb.InfluxDBDataSource(url=server.url, database=db, **kwargs)


def _write(server, db, lines):
    assert cs.write_lines(server.url, db, lines) == len(lines)


def _host_history(hosts, n, t0=T0, cpu_form='percent', n_cpus=2,
                  full=False, **fixed):
    """Lines for ``hosts`` ({name: cpu function of k}) over n samples."""
    state = {}
    lines = []
    for k in range(n):
        t = t0 + STEP * k
        for host, cpu in hosts.items():
            kw = dict(mem_pct=40.0, mem_total_bytes=8 * GIB, load=1.5)
            kw.update(fixed)
            lines += cs.host_lines(host, t, cpu_pct=cpu(k), cpu_form=cpu_form,
                                   n_cpus=n_cpus, state=state, full=full,
                                   **kw)
    return lines


def _windows(ds, names, metrics, period=600, g=60, end=T0 + 600,
             rtype=base.COMPUTE_NODE):
    return ds.cluster_windows(rtype, tuple(names), period, g,
                              metrics=metrics, end=end - 1)


def _valid(arr):
    return arr[~np.isnan(arr)]


# -- CPU ---------------------------------------------------------------------

@pytest.mark.parametrize('cpu_form', ['percent', 'jiffies'])
def test_cpu_forms_give_the_written_percentages(influxdb_server, influxdb_db,
                                                cpu_form):
    # cpu ramps by minute: 10, 20, ... so each 60 s window has one value.
    hosts = {'calm': lambda k: 10.0 + 10 * (k // 6),
             'busy': lambda k: 95.0}
    _write(influxdb_server, influxdb_db,
           _host_history(hosts, 60, cpu_form=cpu_form, n_cpus=4, full=True))
    ds = _ds(influxdb_server, influxdb_db, cpu_form=cpu_form)
    w = _windows(ds, ['calm', 'busy'], ('cpu',))
    cpu = w.data['cpu']
    # Window i covers [T0 + 60 (i-1), T0 + 60 i); the first is before T0.
    assert np.isnan(cpu[:, 0]).all()
    expected = 10.0 + 10 * np.arange(10)
    if cpu_form == 'jiffies':
        # A rate needs the previous sample: minute m's first rate still
        # spans the step from minute m-1, so allow that one sample's share.
        np.testing.assert_allclose(cpu[0, 2:], expected[1:], atol=10 / 6 + .5)
    else:
        np.testing.assert_allclose(cpu[0, 1:], expected, atol=1e-6)
    np.testing.assert_allclose(_valid(cpu[1]), 95.0, atol=0.5)


def test_jiffies_form_reads_all_cpus_of_a_host(influxdb_server, influxdb_db):
    _write(influxdb_server, influxdb_db,
           _host_history({'h': lambda k: 60.0}, 30, cpu_form='jiffies',
                         n_cpus=8, full=True))
    rows = influxdb_server.query(
        'SHOW TAG VALUES FROM "cpu_value" WITH KEY = "instance"',
        influxdb_db)
    assert '"7"' in rows and '"8"' not in rows
    ds = _ds(influxdb_server, influxdb_db, cpu_form='jiffies')
    w = _windows(ds, ['h'], ('cpu',), period=300, g=60, end=T0 + 300)
    np.testing.assert_allclose(_valid(w.data['cpu'][0]), 60.0, atol=0.2)
    assert _valid(w.data['cpu'][0]).size >= 4


# -- memory -------------------------------------------------------------------

@pytest.mark.parametrize('forms', [('percent',), ('absolute',),
                                   ('absolute', 'percent')])
def test_memory_percent_and_absolute_forms(influxdb_server, influxdb_db,
                                           forms):
    lines = []
    for k in range(60):
        lines += cs.host_lines('m', T0 + STEP * k, mem_used_bytes=3 * GIB,
                               mem_total_bytes=12 * GIB, mem_forms=forms)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db)
    w = _windows(ds, ['m'], ('memory',))
    np.testing.assert_allclose(_valid(w.data['memory'][0]), 25.0, rtol=1e-9)
    assert _valid(w.data['memory'][0]).size == 10
    raw = ds._fetch(base.COMPUTE_NODE, ('memory_kib',), ('m',), T0,
                    T0 + 600, 60)
    if 'absolute' in forms:
        np.testing.assert_allclose(raw['memory_kib']['m'][1],
                                   3 * GIB / 1024)
    else:
        assert raw['memory_kib'] == {}


# -- counters -----------------------------------------------------------------

def test_disk_and_net_counters_give_rates_reset_and_loopback(
        influxdb_server, influxdb_db):
    lines = []
    for k in range(60):
        t = T0 + STEP * k
        # Rates: disk 1000 + 500 B/s, net 300 + 200 B/s; reboot at k=30
        # resets every counter to (almost) zero.
        n = k if k < 30 else k - 30
        lines += cs.host_lines(
            'h', t, disk_read_bytes_total=1e6 * (k < 30) + 1000 * STEP * n,
            disk_write_bytes_total=5e5 * (k < 30) + 500 * STEP * n,
            net_rx_bytes_total=9e5 * (k < 30) + 300 * STEP * n,
            net_tx_bytes_total=200 * STEP * n, full=True)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db)
    w = _windows(ds, ['h'], ('disk', 'net'), period=600, g=30)
    disk, net = w.data['disk'][0], w.data['net'][0]
    assert np.nanmin(disk) >= 0 and np.nanmin(net) >= 0
    # The reset falls in the window starting at T0 + 300: its rate is the
    # two good steps of three, so only check the other windows exactly.
    reset_window = int((T0 + 300 - w.times[0]) // 30)
    # Window 1 is the first with data: a rate needs the bucket before.
    assert np.isnan(disk[:2]).all()
    others = [i for i in range(2, disk.size) if i != reset_window]
    np.testing.assert_allclose(disk[others], 1500.0, rtol=1e-9)
    # 'lo' (7x larger) and the if_packets / disk_ops types are ignored.
    np.testing.assert_allclose(net[others], 500.0, rtol=1e-9)
    # The reset step itself is dropped, never negative.
    assert np.isnan(disk[reset_window]) or 0 <= disk[reset_window] < 1500


def test_newest_partial_window_of_a_counter_is_not_biased(influxdb_server,
                                                          influxdb_db):
    lines = []
    for k in range(32):  # ends 10 s into a 60 s window
        lines += cs.host_lines('h', T0 + STEP * k,
                               disk_read_bytes_total=2000 * STEP * k,
                               disk_write_bytes_total=0)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db)
    w = _windows(ds, ['h'], ('disk',), period=300, g=60, end=T0 + 320)
    np.testing.assert_allclose(_valid(w.data['disk'][0]), 2000.0)
    assert w.times[-1] == T0 + 300 and w.data['disk'][0][-1] == 2000.0


def test_load(influxdb_server, influxdb_db):
    _write(influxdb_server, influxdb_db,
           _host_history({'h': lambda k: 5.0}, 60, load=3.25, full=True))
    w = _windows(_ds(influxdb_server, influxdb_db), ['h'], ('load',))
    np.testing.assert_allclose(_valid(w.data['load'][0]), 3.25)


# -- instances ----------------------------------------------------------------

@pytest.mark.parametrize('form,vcpus,expected_cpu', [
    ('guest', 2, 35.0),
    # virt: percent of ONE vCPU, i.e. 35 % of 2 vCPUs reads as 70.
    ('virt', 2, 70.0),
])
def test_instance_forms(influxdb_server, influxdb_db, form, vcpus,
                        expected_cpu):
    uuid = '6f1c3d0e-1111-4c5e-9a7e-0123456789ab'
    state = {}
    lines = []
    for k in range(60):
        lines += cs.instance_lines(uuid, T0 + STEP * k, cpu_pct=35.0,
                                   mem_used_bytes=700 * 2 ** 20, form=form,
                                   vcpus=vcpus, state=state)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db, instance_metrics=form)
    w = _windows(ds, [uuid], ('cpu', 'memory'), rtype=base.INSTANCE)
    np.testing.assert_allclose(_valid(w.data['cpu'][0]), expected_cpu,
                               atol=1e-6)
    np.testing.assert_allclose(_valid(w.data['memory'][0]), 700.0)
    assert _valid(w.data['cpu'][0]).size >= 9
    assert ds.list_names(base.INSTANCE) == [uuid]
    # the strategy divides by the flavor's vCPUs exactly when this says so
    assert ds.instance_cpu_per_vcpu is (form == 'virt')


# -- names, filters, injection ------------------------------------------------

def test_host_name_map_and_list_names(influxdb_server, influxdb_db):
    _write(influxdb_server, influxdb_db,
           _host_history({'cmp-1': lambda k: 33.0, 'cmp-2': lambda k: 66.0},
                         60))
    ds = _ds(influxdb_server, influxdb_db,
             host_name_map={'compute-1.example.org': 'cmp-1'})
    assert ds.collectd_host('compute-1.example.org') == 'cmp-1'
    assert ds.collectd_host('cmp-2') == 'cmp-2'
    assert ds.list_names(base.COMPUTE_NODE) == ['cmp-1', 'cmp-2']
    node = element.ComputeNode(uuid='n1', hostname='compute-1.example.org')
    series = ds.statistic_series(
        node, base.COMPUTE_NODE, 'host_cpu_usage',
        start_time=datetime.datetime.fromtimestamp(T0, datetime.timezone.utc),
        end_time=datetime.datetime.fromtimestamp(T0 + 600,
                                                 datetime.timezone.utc),
        granularity=60)
    assert len(series) == 10
    np.testing.assert_allclose(list(series.values()), 33.0)


EVIL_NAMES = [
    'we\'ird "host", x=1 ünïcødé ☃',
    "x' OR host =~ /.*/ OR host = 'cmp-2",
    'x"; DROP DATABASE "{db}"; SELECT * FROM "cpu_value',
    "$h1",
]


@pytest.mark.parametrize('evil', EVIL_NAMES)
def test_tag_values_are_bound_not_interpolated(influxdb_server, influxdb_db,
                                               evil):
    evil = evil.format(db=influxdb_db)
    _write(influxdb_server, influxdb_db,
           _host_history({evil: lambda k: 12.5, 'cmp-2': lambda k: 99.0,
                          '$h0': lambda k: 77.0}, 60))
    ds = _ds(influxdb_server, influxdb_db)
    raw = ds._fetch(base.COMPUTE_NODE, ('cpu', 'memory'), (evil,), T0,
                    T0 + 600, 60)
    assert set(raw['cpu']) == {evil} and set(raw['memory']) == {evil}
    np.testing.assert_allclose(raw['cpu'][evil][1], 12.5)
    w = _windows(ds, [evil], ('cpu',))
    np.testing.assert_allclose(_valid(w.data['cpu'][0]), 12.5)
    assert evil in ds.list_names(base.COMPUTE_NODE)
    # Nothing was dropped.
    assert influxdb_db in influxdb_server.query('SHOW DATABASES')


def test_one_request_per_cluster_read_whatever_the_cluster_size(
        influxdb_server, influxdb_db):
    hosts = {f'node-{i:03d}': (lambda k, i=i: float(i % 100))
             for i in range(200)}
    _write(influxdb_server, influxdb_db,
           _host_history(hosts, 13, disk_read_bytes_total=0,
                         disk_write_bytes_total=0, net_rx_bytes_total=0,
                         net_tx_bytes_total=0, cpu_form='jiffies'))
    ds = _ds(influxdb_server, influxdb_db, cpu_form='jiffies')
    deltas = {}
    for n in (10, 200):
        names = sorted(hosts)[:n]
        before = ds.request_count
        w = ds.cluster_windows(base.COMPUTE_NODE, names, 120, 60,
                               end=T0 + 119)
        deltas[n] = ds.request_count - before
        np.testing.assert_allclose(
            np.nanmean(w.data['cpu'], axis=1),
            [float(int(name[-3:]) % 100) for name in names], atol=0.2)
        assert not np.isnan(w.data['memory']).all(axis=1).any()
    assert deltas[10] == deltas[200] == 1


def test_missing_host_and_missing_samples_are_nan_not_zero(influxdb_server,
                                                           influxdb_db):
    # 'gappy' stops reporting for the 3rd and 4th minute.
    hosts = {'ok': lambda k: 50.0}
    lines = _host_history(hosts, 60)
    lines += [ln for ln in _host_history({'gappy': lambda k: 50.0}, 60)
              if not T0 + 120 <= int(ln.rsplit(' ', 1)[1]) < T0 + 240]
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db)
    w = _windows(ds, ['ok', 'gappy', 'ghost'], ('cpu', 'memory', 'load'))
    for metric in ('cpu', 'memory', 'load'):
        arr = w.data[metric]
        assert np.isnan(arr[2]).all()
        assert np.isnan(arr[1, 3:5]).all()
        assert not np.isnan(arr[0, 1:]).any()
        assert (arr[~np.isnan(arr)] > 0).all()
    assert np.isnan(w.last_seen[2])


# -- Watcher's per-resource helpers -------------------------------------------

def test_watcher_helpers_on_model_objects(influxdb_server, influxdb_db):
    now = int(time.time())
    state = {}
    uuid = 'a1b2c3d4-0000-4000-8000-000000000001'
    lines = []
    for t in range(now - 900, now + 1, STEP):
        lines += cs.host_lines('compute-7', t, cpu_pct=42.0, mem_pct=55.0,
                               mem_total_bytes=16 * GIB)
        lines += cs.host_lines('compute-8', t, cpu_pct=88.0, mem_pct=10.0,
                               mem_total_bytes=16 * GIB)
        lines += cs.instance_lines(uuid, t, cpu_pct=64.0,
                                   mem_used_bytes=512 * 2 ** 20, state=state)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db)
    node = element.ComputeNode(uuid='node-uuid-7', hostname='compute-7')
    other = element.ComputeNode(uuid='node-uuid-8', hostname='compute-8')
    inst = element.Instance(uuid=uuid)
    assert ds.get_host_cpu_usage(node, 300, 'mean', 60) == pytest.approx(42)
    assert ds.get_host_cpu_usage(other, 300, 'max', 60) == pytest.approx(88)
    assert ds.get_host_ram_usage(node, 300, 'mean', 60) == pytest.approx(
        0.55 * 16 * 2 ** 20)
    assert ds.get_instance_cpu_usage(inst, 300, 'mean', 60) == \
        pytest.approx(64)
    assert ds.get_instance_ram_usage(inst, 300, 'mean', 60) == \
        pytest.approx(512)
    missing = element.ComputeNode(uuid='node-uuid-x', hostname='nowhere')
    assert ds.get_host_cpu_usage(missing, 300, 'mean', 60) is None
    series = ds.statistic_series(
        other, base.COMPUTE_NODE, 'host_cpu_usage',
        start_time=datetime.datetime.fromtimestamp(now - 600 - now % 60,
                                                   datetime.timezone.utc),
        end_time=datetime.datetime.fromtimestamp(now - now % 60,
                                                 datetime.timezone.utc),
        granularity=60)
    assert len(series) == 10
    np.testing.assert_allclose(list(series.values()), 88.0)
    assert ds.check_availability() == 'available'


# -- failures and credentials -------------------------------------------------

SECRET = 'pa$$w0rd with spaces&p=leak'


def test_stopped_server_raises_metrics_unavailable(caplog):
    server = InfluxDBServer().start()
    url = server.url
    server.create_database('collectd')
    ds = idb.InfluxDBDataSource(url=url, database='collectd', retries=2,
                                username='watcher', password=SECRET)
    assert ds.check_availability() == 'available'
    server.stop()
    caplog.set_level(logging.DEBUG)
    before = ds.request_count
    with pytest.raises(base.MetricsUnavailable) as info:
        ds.cluster_windows(base.COMPUTE_NODE, ['a', 'b'], 600, 60)
    message = str(info.value)
    assert url in message and "'collectd'" in message
    assert 'refused' in message.lower() or 'connect' in message.lower()
    assert ds.request_count - before == 3  # 1 try + 2 retries
    for text in (message, caplog.text):
        assert SECRET not in text and 'w0rd' not in text
    assert ds.check_availability() == 'not available'


def test_password_never_in_logs_or_errors_with_auth(caplog):
    caplog.set_level(logging.DEBUG)
    server = InfluxDBServer(auth=True, admin_password=SECRET).start()
    try:
        server.create_database('collectd')
        server.write_lines('collectd', _host_history({'h': lambda k: 20.0},
                                                     60))
        good = idb.InfluxDBDataSource(url=server.url, database='collectd',
                                      username='admin', password=SECRET,
                                      retries=0)
        w = _windows(good, ['h'], ('cpu',))
        np.testing.assert_allclose(_valid(w.data['cpu'][0]), 20.0)
        assert SECRET not in repr(good)
        wrong = 'not-' + SECRET
        bad = idb.InfluxDBDataSource(url=server.url, database='collectd',
                                     username='admin', password=wrong,
                                     retries=1)
        with pytest.raises(base.MetricsUnavailable) as info:
            _windows(bad, ['h'], ('cpu',))
        message = str(info.value)
        assert 'authorization failed' in message and server.url in message
        # Credentials in the URL are used but never shown either.
        in_url = idb.InfluxDBDataSource(
            url=server.url.replace('//', '//admin:wrong-pw@'),
            database='collectd', retries=0)
        assert 'wrong-pw' not in in_url.url
        with pytest.raises(base.MetricsUnavailable) as info2:
            _windows(in_url, ['h'], ('cpu',))
    finally:
        server.stop()
    for text in (message, str(info2.value), caplog.text):
        assert SECRET not in text and 'w0rd' not in text
        assert 'wrong-pw' not in text
