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

"""The InfluxDB datasource against a real influxd (influxdb/local_server.py).

Points are rendered by collectd_schema exactly as InfluxDB's collectd input
stores them, written over HTTP, and read back through the datasource.
"""

import datetime
import json
import logging
import time

import numpy as np
import pytest
from watcher.decision_engine.model import element

from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import influxdb as idb
from watcher_failpredict.datasources.influxdb import client
from watcher_failpredict.datasources.influxdb import datasource
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources import windows as metric_windows

T0 = 1_700_000_000 // 600 * 600  # a fixed, bucket-aligned past instant
STEP = 10
GIB = 2.0 ** 30


#: collectd_interval that makes every read of these tests (granularity 30
#: or 60 s) take each path: 'server' windows on the server (GROUP BY time),
#: 'raw' reads raw points and windows them locally.
READ_MODE_INTERVAL = {'server': 1.0, 'raw': 60.0}
_read_mode = {'interval': None}


@pytest.fixture(autouse=True, params=sorted(READ_MODE_INTERVAL))
def read_mode(request):
    """Run every test of this module on both read paths."""
    _read_mode['interval'] = READ_MODE_INTERVAL[request.param]
    yield request.param
    _read_mode['interval'] = None


def _ds(server, db, **kwargs):
    kwargs.setdefault('retries', 0)
    kwargs.setdefault('collectd_interval', _read_mode['interval'])
    return idb.InfluxDBDataSource(url=server.url, database=db, **kwargs)


def _write(server, db, lines):
    assert server.write_lines(db, lines) == len(lines)


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
             rtype=metric_windows.COMPUTE_NODE):
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

@pytest.mark.parametrize('forms,memory_form', [
    (('percent',), 'percent'), (('absolute',), 'absolute'),
    (('absolute', 'percent'), 'percent'),
    (('absolute', 'percent'), 'absolute')])
def test_memory_percent_and_absolute_forms(influxdb_server, influxdb_db,
                                           forms, memory_form):
    lines = []
    for k in range(60):
        lines += cs.host_lines('m', T0 + STEP * k, mem_used_bytes=3 * GIB,
                               mem_total_bytes=12 * GIB, mem_forms=forms)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db, memory_form=memory_form)
    w = _windows(ds, ['m'], ('memory',))
    np.testing.assert_allclose(_valid(w.data['memory'][0]), 25.0, rtol=1e-9)
    assert _valid(w.data['memory'][0]).size == 10
    raw = ds.fetch(metric_windows.COMPUTE_NODE, ('memory_kib',), ('m',), T0,
                   T0 + 600, 60)
    if 'absolute' in forms:
        np.testing.assert_allclose(raw['memory_kib']['m'][1],
                                   3 * GIB / 1024)
    else:
        assert raw['memory_kib'] == {}


def test_memory_form_reads_only_the_configured_form(influxdb_server,
                                                    influxdb_db):
    # Both forms written, deliberately inconsistent, to see which is read.
    lines = []
    for k in range(60):
        t = T0 + STEP * k
        lines += cs.host_lines('m', t, mem_used_bytes=3 * GIB,
                               mem_total_bytes=12 * GIB,
                               mem_forms=('absolute',))
        lines.append(cs.point(cs.MEMORY, {'host': 'm', 'type': 'percent',
                                          'type_instance': 'used'}, 60.0, t))
    _write(influxdb_server, influxdb_db, lines)
    for form, expected in (('percent', 60.0), ('absolute', 25.0)):
        ds = _ds(influxdb_server, influxdb_db, memory_form=form)
        w = _windows(ds, ['m'], ('memory',))
        np.testing.assert_allclose(_valid(w.data['memory'][0]), expected)
        assert ds.request_count == 1
    with pytest.raises(ValueError, match='memory_form'):
        _ds(influxdb_server, influxdb_db, memory_form='both')


# -- counters -----------------------------------------------------------------

def test_disk_and_net_counters_give_rates_reset_and_loopback(
        influxdb_server, influxdb_db, read_mode):
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
    if read_mode == 'server':
        # Window 1 is the first with data: a rate needs the bucket before.
        assert np.isnan(disk[:2]).all()
    else:
        # Raw samples: window 1's later samples have predecessors in it.
        assert np.isnan(disk[0]) and disk[1] == pytest.approx(1500.0)
    others = [i for i in range(2, disk.size) if i != reset_window]
    np.testing.assert_allclose(disk[others], 1500.0, rtol=1e-9)
    # 'lo' (7x larger) and the if_packets / disk_ops types are ignored.
    np.testing.assert_allclose(net[others], 500.0, rtol=1e-9)
    # The reset step itself is dropped, never negative.
    if read_mode == 'server':
        assert np.isnan(disk[reset_window]) or \
            0 <= disk[reset_window] < 1500
    else:  # the window's other steps keep their exact rates
        assert disk[reset_window] == pytest.approx(1500.0)


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
    w = _windows(ds, [uuid], ('cpu', 'memory'), rtype=metric_windows.INSTANCE)
    np.testing.assert_allclose(_valid(w.data['cpu'][0]), expected_cpu,
                               atol=1e-6)
    np.testing.assert_allclose(_valid(w.data['memory'][0]), 700.0)
    assert _valid(w.data['cpu'][0]).size >= 9
    assert ds.list_names(metric_windows.INSTANCE) == [uuid]
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
    assert ds.list_names(metric_windows.COMPUTE_NODE) == ['cmp-1', 'cmp-2']
    node = element.ComputeNode(uuid='n1', hostname='compute-1.example.org')
    series = ds.statistic_series(
        node, metric_windows.COMPUTE_NODE, 'host_cpu_usage',
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
    raw = ds.fetch(metric_windows.COMPUTE_NODE, ('cpu', 'memory'), (evil,),
                   T0, T0 + 600, 60)
    assert set(raw['cpu']) == {evil} and set(raw['memory']) == {evil}
    np.testing.assert_allclose(raw['cpu'][evil][1], 12.5)
    w = _windows(ds, [evil], ('cpu',))
    np.testing.assert_allclose(_valid(w.data['cpu'][0]), 12.5)
    assert evil in ds.list_names(metric_windows.COMPUTE_NODE)
    # Nothing was dropped.
    assert influxdb_db in influxdb_server.query('SHOW DATABASES')


@pytest.mark.parametrize('form', ['virt', 'guest'])
def test_reads_together_are_one_request_and_the_reads_alone(
        influxdb_server, influxdb_db, form):
    """Planned mode's joint read: hosts' and instances' windows in one
    request, each read's names bound apart (a name that looks like the
    other read's placeholder is only a name), equal to each read alone.
    """
    hosts = {'cmp-1': lambda k: 20.0, '$r1h0': lambda k: 70.0,
             EVIL_NAMES[1]: lambda k: 45.0}
    lines = _host_history(hosts, 60, load=2.5)
    uuids = ['$r0h0', '6f1c3d0e-1111-4c5e-9a7e-0123456789ab']
    state = {}
    for k in range(60):
        for j, uuid in enumerate(uuids):
            lines += cs.instance_lines(uuid, T0 + STEP * k,
                                       cpu_pct=30.0 + 10 * j,
                                       mem_used_bytes=2 ** 29, form=form,
                                       vcpus=1, state=state)
    _write(influxdb_server, influxdb_db, lines)
    host_read = (metric_windows.COMPUTE_NODE, ('$r1h0', 'cmp-1', 'gone'),
                 600, 60, ('load', 'cpu'), T0 + 599)
    vm_read = (metric_windows.INSTANCE, tuple(uuids), 600, 60, ('cpu',),
               T0 + 599)
    nobody = (metric_windows.INSTANCE, (), 600, 60, ('cpu',), T0 + 599)
    ds = _ds(influxdb_server, influxdb_db, instance_metrics=form)
    before = ds.request_count
    hw, iw, none = ds.cluster_windows_together([host_read, vm_read, nobody])
    assert ds.request_count - before == 1
    np.testing.assert_allclose(_valid(hw.data['cpu'][0]), 70.0, atol=1e-6)
    np.testing.assert_allclose(_valid(hw.data['cpu'][1]), 20.0, atol=1e-6)
    np.testing.assert_allclose(_valid(hw.data['load'][1]), 2.5)
    assert np.isnan(hw.data['cpu'][2]).all()
    np.testing.assert_allclose(_valid(iw.data['cpu'][0]), 30.0, atol=1e-6)
    np.testing.assert_allclose(_valid(iw.data['cpu'][1]), 40.0, atol=1e-6)
    assert _valid(iw.data['cpu'][0]).size >= 9
    assert none.data['cpu'].shape[0] == 0
    # cached: the reads alone are not sent again
    assert ds.cluster_windows(*vm_read) is iw
    assert ds.request_count - before == 1
    alone = _ds(influxdb_server, influxdb_db, instance_metrics=form)
    for read, joint in ((host_read, hw), (vm_read, iw)):
        w = alone.cluster_windows(*read)
        for metric in read[4]:
            np.testing.assert_array_equal(w.data[metric], joint.data[metric])


def test_requests_per_cluster_read_do_not_grow_with_the_cluster(
        influxdb_server, influxdb_db):
    hosts = {f'node-{i:03d}': (lambda k, i=i: float(i % 100))
             for i in range(600)}
    _write(influxdb_server, influxdb_db,
           _host_history(hosts, 13, disk_read_bytes_total=0,
                         disk_write_bytes_total=0, net_rx_bytes_total=0,
                         net_tx_bytes_total=0, cpu_form='jiffies'))
    deltas, windows = {}, {}
    for split in (datasource.QUERY_SPLIT, 1):
        ds = _ds(influxdb_server, influxdb_db, cpu_form='jiffies',
                 query_split=split)
        # 600 names: above NAME_FILTER_LIMIT, every host is read.
        for n in (10, 200, 600):
            names = sorted(hosts)[:n]
            before = ds.request_count
            w = windows[split, n] = ds.cluster_windows(
                metric_windows.COMPUTE_NODE, names, 120, 60, end=T0 + 119)
            deltas[split, n] = ds.request_count - before
            np.testing.assert_allclose(
                np.nanmean(w.data['cpu'], axis=1),
                [float(int(name[-3:]) % 100) for name in names], atol=0.2)
            assert not np.isnan(w.data['memory']).all(axis=1).any()
    # QUERY_SPLIT concurrent requests per read, whatever its size.
    assert deltas == {(2, 10): 2, (2, 200): 2, (2, 600): 2,
                      (1, 10): 1, (1, 200): 1, (1, 600): 1}
    for n in (10, 200, 600):
        for metric in metric_windows.HOST_METRICS:
            np.testing.assert_array_equal(windows[2, n].data[metric],
                                          windows[1, n].data[metric])


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


def test_a_malformed_answer_fails_the_read_naming_the_metric(fake_influx):
    """Answers are decoded in the thread that fetched them; a bad one still
    fails the whole read, with the metric it belonged to in the message.
    """
    def answer(form):
        results = []
        for i, q in enumerate(form['q'][0].split(';\n')):
            series = []
            if '"load_shortterm"' in q:  # three columns: not (time, value)
                series = [{'name': 'load_shortterm', 'tags': {'host': 'a'},
                           'columns': ['time', 'value', 'x'],
                           'values': [[T0, 1.0, 2.0]]}]
            results.append({'statement_id': i, 'series': series})
        return 200, {'results': results}
    fake_influx.answer = answer
    ds = idb.InfluxDBDataSource(url=fake_influx.url, database='collectd',
                                retries=0)
    with pytest.raises(metric_windows.MetricsUnavailable,
                       match=r'unexpected answer for load: .*columns'):
        ds.cluster_windows(metric_windows.COMPUTE_NODE, ['a'], 600, 10,
                           end=T0 + 599)
    assert len(fake_influx.seen) == datasource.QUERY_SPLIT


def test_a_failing_group_of_a_split_read_fails_the_read(fake_influx):
    """Both groups are sent, both counted; the read raises, none is lost."""
    def answer(form):
        queries = form['q'][0].split(';\n')
        if 'SELECT b' in queries and fail['b']:
            return 500, {'error': 'shard gone'}
        return 200, {'results': [{'statement_id': i, 'q': q}
                                 for i, q in enumerate(queries)]}
    fail = {'b': True}
    fake_influx.answer = answer
    ds = idb.InfluxDBDataSource(url=fake_influx.url, database='collectd',
                                retries=1)
    with pytest.raises(metric_windows.MetricsUnavailable, match='shard gone'):
        ds._read(['SELECT a', 'SELECT b', 'SELECT c'], {'h0': 'x'},
                 [1, 1, 1])
    assert ds.request_count == 3 == len(fake_influx.seen)
    sent = sorted(form['q'][0] for _m, _p, _h, form in fake_influx.seen)
    assert sent == ['SELECT a;\nSELECT c', 'SELECT b', 'SELECT b']
    assert all(json.loads(form['params'][0]) == {'h0': 'x'}
               for _m, _p, _h, form in fake_influx.seen)
    # Answers land at their statements' places.
    fail['b'] = False
    got = ds._read(['SELECT a', 'SELECT b', 'SELECT c'], None, [1, 1, 1])
    assert [r['q'] for r in got] == ['SELECT a', 'SELECT b', 'SELECT c']
    assert ds.request_count == 5


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
        other, metric_windows.COMPUTE_NODE, 'host_cpu_usage',
        start_time=datetime.datetime.fromtimestamp(now - 600 - now % 60,
                                                   datetime.timezone.utc),
        end_time=datetime.datetime.fromtimestamp(now - now % 60,
                                                 datetime.timezone.utc),
        granularity=60)
    assert len(series) == 10
    np.testing.assert_allclose(list(series.values()), 88.0)
    assert ds.check_availability() == 'available'
    # One request per helper call, even for a read of two statements (a
    # jiffies counter in server mode): workload_balance makes one call per
    # instance, and splitting such small reads would only double them.
    jiffies = _ds(influxdb_server, influxdb_db, cpu_form='jiffies',
                  collectd_interval=1.0)
    before = jiffies.request_count
    jiffies.get_host_cpu_usage(node, 300, 'mean', 60)
    assert jiffies.read_mode(60) == 'server'
    assert jiffies.request_count - before == 1


# -- failures and credentials -------------------------------------------------

SECRET = 'pa$$w0rd with spaces&p=leak'


def test_stopped_server_raises_metrics_unavailable(caplog):
    server = local_server.InfluxDBServer().start()
    url = server.url
    server.create_database('collectd')
    ds = idb.InfluxDBDataSource(url=url, database='collectd', retries=2,
                                username='watcher', password=SECRET)
    assert ds.check_availability() == 'available'
    server.stop()
    caplog.set_level(logging.DEBUG)
    before = ds.request_count
    with pytest.raises(metric_windows.MetricsUnavailable) as info:
        ds.cluster_windows(metric_windows.COMPUTE_NODE, ['a', 'b'], 600, 60)
    message = str(info.value)
    assert url in message and "'collectd'" in message
    assert 'refused' in message.lower() or 'connect' in message.lower()
    # Each of the read's QUERY_SPLIT requests: 1 try + 2 retries.
    assert ds.request_count - before == 3 * datasource.QUERY_SPLIT
    for text in (message, caplog.text):
        assert SECRET not in text and 'w0rd' not in text
    assert ds.check_availability() == 'not available'


def test_password_never_in_logs_or_errors_with_auth(caplog):
    caplog.set_level(logging.DEBUG)
    server = local_server.InfluxDBServer(auth=True,
                                         admin_password=SECRET).start()
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
        with pytest.raises(metric_windows.MetricsUnavailable) as info:
            _windows(bad, ['h'], ('cpu',))
        message = str(info.value)
        assert 'authorization failed' in message and server.url in message
        # Credentials in the URL are used but never shown either.
        in_url = idb.InfluxDBDataSource(
            url=server.url.replace('//', '//admin:wrong-pw@'),
            database='collectd', retries=0)
        assert 'wrong-pw' not in in_url.url
        with pytest.raises(metric_windows.MetricsUnavailable) as info2:
            _windows(in_url, ['h'], ('cpu',))
    finally:
        server.stop()
    for text in (message, str(info2.value), caplog.text):
        assert SECRET not in text and 'w0rd' not in text
        assert 'wrong-pw' not in text


# -- read paths and transport ------------------------------------------------

def _jittered_cluster(hosts=3, n=90, seed=7):
    """collectd-like lines: 10 s samples with jitter, one reboot, gaps."""
    rng = np.random.default_rng(seed)
    lines = []
    for h in range(hosts):
        disk = net = 0.0
        t_prev = None
        for k in range(n):
            t = T0 - 60 + STEP * k + int(rng.integers(0, 3))
            if h == 1 and k in (20, 21):
                continue  # a gap of two samples
            if t_prev is not None:
                disk += (1000 + 100 * h) * (t - t_prev)
                net += (300 + 10 * k) * (t - t_prev)
            if h == 2 and k == 50:
                disk = net = 0.0  # reboot: counters restart
            t_prev = t
            lines += cs.host_lines(
                f'host-{h}', t, cpu_pct=float(rng.uniform(0, 100)),
                mem_used_bytes=float(rng.uniform(1, 7)) * GIB,
                mem_total_bytes=8 * GIB, load=float(rng.uniform(0, 4)),
                disk_read_bytes_total=disk, disk_write_bytes_total=disk / 2,
                net_rx_bytes_total=net, net_tx_bytes_total=net / 3,
                full=True)
    return lines


def test_msgpack_and_json_answers_decode_identically(influxdb_server,
                                                     influxdb_db):
    _write(influxdb_server, influxdb_db, _jittered_cluster())
    names = ('host-0', 'host-1', 'host-2')
    for interval in READ_MODE_INTERVAL.values():
        got = {}
        for fmt in client.RESPONSE_FORMATS:
            ds = _ds(influxdb_server, influxdb_db, response_format=fmt,
                     collectd_interval=interval)
            assert ds.client.headers()['Accept'] == client.ACCEPT[fmt]
            metrics = tuple(metric_windows.HOST_METRICS) + ('memory_kib',)
            got[fmt] = ds.fetch(metric_windows.COMPUTE_NODE, metrics, names,
                                T0, T0 + 600, 30)
            # The undecoded answers too: same times (ints, epoch seconds)
            # and the same values once read as floats.
            stmt = (f'SELECT "value" FROM "{cs.MEMORY}" WHERE "host" = $h '
                    f'AND time >= {T0}s AND time < {T0 + 100}s '
                    f'GROUP BY "type", "type_instance"')
            got[fmt, 'raw'] = ds._query([stmt], {'h': 'host-0'})[0]
        js, mp = got['json'], got['msgpack']
        assert set(js) == set(mp)
        for metric in js:
            assert set(js[metric]) == set(mp[metric]) == set(names), metric
            for name in names:
                np.testing.assert_array_equal(js[metric][name][0],
                                              mp[metric][name][0])
                np.testing.assert_array_equal(js[metric][name][1],
                                              mp[metric][name][1])
        rj, rm = got['json', 'raw'], got['msgpack', 'raw']
        assert len(rj['series']) == len(rm['series']) == 12
        for sj, sm in zip(rj['series'], rm['series']):
            assert sj['tags'] == sm['tags']
            assert [r[0] for r in sj['values']] == \
                [r[0] for r in sm['values']]
            assert all(isinstance(r[0], int) for r in sm['values'])
            assert [float(r[1]) for r in sj['values']] == \
                [r[1] for r in sm['values']]


def test_raw_and_server_paths_give_the_same_windows(influxdb_server,
                                                    influxdb_db):
    """At 10 s windows of jittered 10 s data both paths agree.

    Gauges exactly; counter rates where each window's rate is made of the
    same steps (the server divides max-per-window differences by the window
    width, the raw path averages per-step rates, so with jitter they differ
    by the share of a step that crosses a window edge: a few percent).
    """
    _write(influxdb_server, influxdb_db, _jittered_cluster())
    names = ('host-0', 'host-1', 'host-2', 'no-such-host')
    wins = {}
    for mode, interval in (('server', 1.0), ('raw', 10.0)):
        ds = _ds(influxdb_server, influxdb_db, collectd_interval=interval)
        assert ds.read_mode(10) == mode
        wins[mode] = ds.cluster_windows(metric_windows.COMPUTE_NODE, names,
                                        600, 10, end=T0 + 599)
        assert ds.request_count == datasource.QUERY_SPLIT
    srv, raw = wins['server'], wins['raw']
    np.testing.assert_array_equal(srv.times, raw.times)
    for metric in ('cpu', 'memory', 'load'):
        np.testing.assert_array_equal(np.isnan(srv.data[metric]),
                                      np.isnan(raw.data[metric]))
        np.testing.assert_allclose(srv.data[metric], raw.data[metric],
                                   rtol=1e-12)
    for metric in ('disk', 'net'):
        s_, r_ = srv.data[metric], raw.data[metric]
        both = ~np.isnan(s_) & ~np.isnan(r_)
        assert both.sum() >= 0.9 * (~np.isnan(s_)).sum() > 100
        np.testing.assert_allclose(r_[both], s_[both], rtol=0.35)
        # Averaged over the hour the two agree closely.
        np.testing.assert_allclose(np.nanmean(r_, axis=1)[:3],
                                   np.nanmean(s_, axis=1)[:3], rtol=0.03)
        assert np.nanmin(r_) >= 0
    assert np.isnan(raw.data['cpu'][3]).all() and np.isnan(raw.last_seen[3])
    np.testing.assert_allclose(raw.last_seen, srv.last_seen)


def test_raw_counter_rates_are_exact_per_step_and_skip_resets(
        influxdb_server, influxdb_db):
    # Irregular steps (7, 13, 10, ... s), constant 500 B/s, a reset at 25.
    times = T0 + np.cumsum([0] + [7, 13, 10] * 20)
    lines, total = [], 4e6
    for k, t in enumerate(times.tolist()):
        if k:
            total += 500.0 * (times[k] - times[k - 1])
        if k == 25:
            total = 100.0
        lines += cs.host_lines('h', t, disk_read_bytes_total=total,
                               disk_write_bytes_total=0.0)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db, collectd_interval=10)
    assert ds.read_mode(20) == 'raw'
    raw = ds.fetch(metric_windows.COMPUTE_NODE, ('disk',), ('h',), T0,
                   T0 + 600, 20)
    t, v = raw['disk']['h']
    # Every window but the reset's holds exactly 500 B/s; the reset step
    # is dropped, never negative, and its window keeps its other steps.
    reset_w = (times[25] - T0) // 20 * 20 + T0
    np.testing.assert_allclose(v[t != reset_w], 500.0, rtol=1e-12)
    assert (v >= 0).all()
    # The first sample (T0) has no predecessor: window T0 is its next step.
    assert t[0] == T0 and t.size == 30
    assert np.all(np.diff(t) > 0) and np.all((t - T0) % 20 == 0)


def test_read_mode_follows_collectd_interval(influxdb_server, influxdb_db):
    ds = _ds(influxdb_server, influxdb_db, collectd_interval=10)
    assert [ds.read_mode(g) for g in (1, 10, 29, 30, 60, 300)] == \
        ['raw'] * 3 + ['server'] * 3
    assert _ds(influxdb_server, influxdb_db,
               collectd_interval=0.5).read_mode(2) == 'server'
    with pytest.raises(ValueError, match='collectd_interval'):
        _ds(influxdb_server, influxdb_db, collectd_interval=0)
    with pytest.raises(ValueError, match='response_format'):
        _ds(influxdb_server, influxdb_db, response_format='xml')
    # The defaults come from [failpredict].
    default = idb.InfluxDBDataSource(url=influxdb_server.url)
    assert default.collectd_interval == 10.0
    assert default.memory_form == 'percent'
    # Raw statements never ask the server to window; server ones do.
    sent = []
    for interval in (10, 1):
        ds = _ds(influxdb_server, influxdb_db, collectd_interval=interval)
        orig = ds._read
        ds._read = (lambda st, b, w=None, each=None, orig=orig, **kw:
                    sent.append(st) or orig(st, b, w, each, **kw))
        ds.fetch(metric_windows.COMPUTE_NODE,
                 tuple(metric_windows.HOST_METRICS), ('x',), T0, T0 + 600, 10)
    raw_sent, server_sent = sent
    assert not any('time(' in s for s in raw_sent)
    assert len(raw_sent) == 5  # cpu, memory, load, disk, net
    assert all('GROUP BY time(10s' in s for s in server_sent)
    assert len(server_sent) == 5 + 4  # + newest-window disk/net statements


def test_thousands_of_bound_names_travel_in_the_body(influxdb_server,
                                                     influxdb_db):
    """A filter past influxd's 1 MB limit on a GET's URL still reads."""
    _write(influxdb_server, influxdb_db,
           _host_history({EVIL_NAMES[0]: lambda k: 5.0}, 3, load=2.5))
    names = [EVIL_NAMES[0]] + [f'absent-{i:03d}-' + 'x' * 2000
                               for i in range(600)]
    ds = _ds(influxdb_server, influxdb_db)
    raw = ds.fetch(metric_windows.COMPUTE_NODE, ('load',), names, T0, T0 + 30,
                   10)
    assert set(raw['load']) == {EVIL_NAMES[0]}
    np.testing.assert_allclose(raw['load'][EVIL_NAMES[0]][1], 2.5)
    assert ds.request_count == 1


# -- window means of counters (cluster_means) ---------------------------------

def test_cluster_means_of_counters_match_the_windows_mean(influxdb_server,
                                                          influxdb_db):
    """Server-side mean rates agree with the mean of the windows' rates."""
    rng = np.random.default_rng(3)
    lines, totals = [], {}
    for k in range(130):
        t = T0 + STEP * k + int(rng.integers(0, 3))   # collectd jitter
        for h, base_rate in (('h1', 1000.0), ('h2', 50_000.0)):
            rate = base_rate * (1.0 + 0.5 * np.sin(k / 7.0))
            tot = totals.setdefault(h, [0.0, 0.0])
            tot[0] += rate * STEP
            tot[1] += 0.3 * rate * STEP
            lines += cs.host_lines(h, t, disk_read_bytes_total=tot[0],
                                   disk_write_bytes_total=tot[0] / 2,
                                   net_rx_bytes_total=tot[1],
                                   net_tx_bytes_total=tot[1], load=1.5,
                                   full=True)
    _write(influxdb_server, influxdb_db, lines)
    ds = _ds(influxdb_server, influxdb_db, collectd_interval=10.0)
    names = ('h1', 'h2', 'ghost')
    end = T0 + 1290
    before = ds.request_count
    means = ds.cluster_means(metric_windows.COMPUTE_NODE, names, 600, 10,
                             ('disk', 'net'), end=end)
    assert ds.request_count - before == datasource.QUERY_SPLIT
    win = ds.cluster_windows(metric_windows.COMPUTE_NODE, names, 600, 10,
                             metrics=('disk', 'net'), end=end)
    for metric in ('disk', 'net'):
        expected = np.nanmean(win.data[metric][:2, -60:], axis=1)
        np.testing.assert_allclose(means[metric][:2], expected, rtol=0.03)
        assert np.isnan(means[metric][2])              # no metrics: NaN
    # The base class's answer (other metrics): the windows' own mean.
    load = ds.cluster_means(metric_windows.COMPUTE_NODE, names, 600, 10,
                            ('load',), end=end)
    np.testing.assert_allclose(load['load'][:2], 1.5)
