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

"""The shared windows machinery of every datasource.

The backend-neutral core (datasources/windows.py) and the Watcher adapter
on top of it (datasources/base.py).
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from watcher_failpredict.datasources import base
from watcher_failpredict.datasources import memory
from watcher_failpredict.datasources import windows as metric_windows

NOW = 1_700_000_000.0


class RecordingDataSource(memory.InMemoryDataSource):
    def __init__(self):
        super().__init__()
        self.asked = []

    def fetch(self, resource_type, metrics, names, start, end, granularity,
              bulk=False):
        self.asked.append(names)
        return super().fetch(resource_type, metrics, names, start, end,
                             granularity)


def _cluster(n):
    ds = RecordingDataSource()
    t = NOW - 600 + 10 * np.arange(60)
    for i in range(n):
        ds.add(metric_windows.COMPUTE_NODE, 'cpu', f'h{i}', t,
               np.full(60, float(i)))
    return ds


def test_align_averages_into_buckets_and_marks_gaps():
    raw = {'cpu': {'a': ([0, 5, 10, 30], [10.0, 20.0, 40.0, 80.0])}}
    w = metric_windows.align(raw, ('a', 'b'), ('cpu',), 0, 40, 10)
    np.testing.assert_allclose(w.data['cpu'][0], [15.0, 40.0, np.nan, 80.0])
    assert np.isnan(w.data['cpu'][1]).all()
    assert w.last_seen[0] == 30 and np.isnan(w.last_seen[1])


def test_few_names_are_filtered_at_the_backend_many_are_not():
    ds = _cluster(base.NAME_FILTER_LIMIT + 5)
    few = ('h1', 'h7', 'h9')
    w = ds.cluster_windows(metric_windows.COMPUTE_NODE, few, 300, 10, end=NOW)
    assert ds.asked[-1] == few
    np.testing.assert_allclose(np.nanmean(w.data['cpu'], axis=1), [1, 7, 9])
    many = tuple(f'h{i}' for i in range(base.NAME_FILTER_LIMIT + 1))
    w = ds.cluster_windows(metric_windows.COMPUTE_NODE, many, 300, 10, end=NOW)
    assert ds.asked[-1] is None
    assert w.data['cpu'].shape[0] == len(many)
    assert ds.fetch_count == 2


def test_a_repeated_read_is_served_from_the_cache():
    ds = _cluster(3)
    a = ds.cluster_windows(metric_windows.COMPUTE_NODE, ('h0', 'h1'), 300, 10,
                           end=NOW)
    b = ds.cluster_windows(metric_windows.COMPUTE_NODE, ('h0', 'h1'), 300, 10,
                           end=NOW)
    assert a is b and ds.fetch_count == 1


def test_reads_together_are_the_reads_alone_and_share_the_cache():
    ds = _cluster(4)
    t = NOW - 600 + 10 * np.arange(60)
    ds.add(metric_windows.INSTANCE, 'cpu', 'vm-1', t, np.full(60, 42.0))
    hosts = (metric_windows.COMPUTE_NODE, ('h3', 'h1'), 300, 10, ('cpu',),
             NOW)
    vms = (metric_windows.INSTANCE, ('vm-1', 'vm-2'), 300, 10, ('cpu',), NOW)
    hw, iw = ds.cluster_windows_together([hosts, vms])
    # this backend has no joint read: one fetch each, names filtered
    assert ds.fetch_count == 2 and ds.asked == [('h3', 'h1'),
                                                ('vm-1', 'vm-2')]
    np.testing.assert_allclose(np.nanmean(hw.data['cpu'], axis=1), [3, 1])
    np.testing.assert_allclose(_valid_row(iw.data['cpu'][0]), 42.0)
    assert np.isnan(iw.data['cpu'][1]).all()
    # the same windows as each read alone, from the cache
    assert ds.cluster_windows(*hosts) is hw
    assert ds.cluster_windows(*vms) is iw
    assert ds.cluster_windows_together([vms, hosts]) == [iw, hw]
    assert ds.fetch_count == 2
    fresh = _cluster(4)
    np.testing.assert_array_equal(fresh.cluster_windows(*hosts).data['cpu'],
                                  hw.data['cpu'])
    with pytest.raises(ValueError, match='bogus'):
        ds.cluster_windows_together([hosts[:4] + (('bogus',), NOW)])


def _valid_row(row):
    return row[~np.isnan(row)]


def test_bad_requests_name_what_is_wrong():
    ds = _cluster(1)
    with pytest.raises(ValueError, match='bogus'):
        ds.cluster_windows(metric_windows.COMPUTE_NODE, ('h0',), 300, 10,
                           metrics=['bogus'])
    with pytest.raises(ValueError, match='positive'):
        ds.cluster_windows(metric_windows.COMPUTE_NODE, ('h0',), 0, 10)


def _align_reference(raw, names, metrics, start, end, step):
    """align() as it was before vectorising: one name at a time."""
    n_steps = max(int((end - start) // step), 0)
    data, last_seen = {}, np.full(len(names), np.nan)
    for metric in metrics:
        arr = np.full((len(names), n_steps), np.nan)
        for i, name in enumerate(names):
            if name not in raw.get(metric, {}):
                continue
            t, v = (np.asarray(x, dtype=float) for x in raw[metric][name])
            ok = ~np.isnan(v)
            if ok.any():
                last_seen[i] = np.nanmax([last_seen[i], t[ok].max()])
            b = ((t - start) // step).astype(int)
            ok &= (b >= 0) & (b < n_steps)
            for k in range(n_steps):
                sel = ok & (b == k)
                if sel.any():
                    arr[i, k] = v[sel].mean()
        data[metric] = arr
    return data, last_seen


def test_vectorised_align_matches_the_per_name_loop():
    rng = np.random.default_rng(3)
    names = tuple(f'n{i}' for i in range(40)) + ('n5',)  # n5 twice
    raw = {'cpu': {}, 'net': {}}
    for i in range(45):  # n40..n44 are not asked for
        for metric in raw:
            if rng.random() < 0.15:
                continue  # some names have no samples of a metric
            k = int(rng.integers(0, 40))
            t = np.sort(rng.uniform(-30, 330, k))  # some outside the range
            v = rng.normal(50, 20, k)
            v[rng.random(k) < 0.1] = np.nan
            if i == 7:
                v[:] = np.nan  # only NaN: never seen
            raw[metric][f'n{i}'] = (t.tolist(), v)
    raw['cpu']['n3'] = ([], [])
    w = metric_windows.align(raw, names, ('cpu', 'net', 'disk'), 0, 300, 20)
    ref, ref_seen = _align_reference(raw, names, ('cpu', 'net', 'disk'), 0,
                                     300, 20)
    for metric in ('cpu', 'net', 'disk'):
        assert w.data[metric].shape == (41, 15)
        np.testing.assert_allclose(w.data[metric], ref[metric], rtol=1e-12)
    assert np.isnan(w.data['disk']).all()
    np.testing.assert_array_equal(w.last_seen, ref_seen)
    assert np.isnan(w.last_seen[7])
    np.testing.assert_array_equal(w.series('cpu', 'n5'), w.data['cpu'][40])
    with pytest.raises(ValueError, match="'n1'"):
        metric_windows.align({'cpu': {'n1': ([1, 2], [3.0])}}, ('n1',),
                             ('cpu',), 0, 10, 5)


def test_the_core_module_loads_neither_watcher_nor_oslo():
    # A fresh interpreter: this one has Watcher loaded already.
    code = textwrap.dedent("""
        import sys
        from watcher_failpredict.datasources import windows
        windows.align({}, ('h',), ('cpu',), 0, 20, 10)
        heavy = sorted(m for m in sys.modules
                       if m.split('.')[0] == 'watcher'
                       or m.startswith('oslo_'))
        print(','.join(heavy))
    """)
    done = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=True, timeout=120)
    assert done.stdout.strip() == ''


def test_chunk_bounds_are_whole_steps_and_cover_the_range():
    assert metric_windows.chunk_bounds(0, 100, 10, 35) == [
        (0, 30), (30, 60), (60, 90), (90, 100)]
    # A chunk shorter than a step still reads one step at a time.
    assert metric_windows.chunk_bounds(0, 30, 10, 4) == [
        (0, 10), (10, 20), (20, 30)]
    assert metric_windows.chunk_bounds(50, 50, 10, 60) == []


def test_read_history_reads_chunks_and_reports_progress():
    ds = _cluster(3)
    ds.add(metric_windows.COMPUTE_NODE, 'load', 'h2', [NOW - 300], [4.0])
    calls = []
    start, end = NOW - 600, NOW
    w = ds.read_history(('h2', 'h0'), start, end, 10, 250,
                        progress=lambda done, total: calls.append(
                            (done, total)))
    # 250 s chunks of 10 s steps: 600 s in 3 reads, each named.
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert ds.asked == [('h2', 'h0')] * 3
    assert w.names == ('h2', 'h0') and w.step == 10
    np.testing.assert_array_equal(w.times, start + 10 * np.arange(60))
    np.testing.assert_array_equal(w.data['cpu'][0], 2.0)
    np.testing.assert_array_equal(w.data['cpu'][1], 0.0)
    assert np.nansum(w.data['load'][0]) == 4.0
    assert np.isnan(w.data['load'][1]).all()
    assert w.last_seen.tolist() == [NOW - 10, NOW - 10]
    # Without a filter every host is read, only the names asked kept.
    ds.asked.clear()
    w = ds.read_history(('h1',), start, end, 10, 600, filter_names=False)
    assert ds.asked == [None] and w.names == ('h1',)
    np.testing.assert_array_equal(w.data['cpu'][0], 1.0)


def test_reset_caches_forgets_windows_and_watcher_metrics():
    ds = _cluster(1)
    a = ds.cluster_windows(metric_windows.COMPUTE_NODE, ('h0',), 300, 10,
                           end=NOW)
    watcher_cache = ds.metric_cache
    ds.reset_caches()
    b = ds.cluster_windows(metric_windows.COMPUTE_NODE, ('h0',), 300, 10,
                           end=NOW)
    assert a is not b and ds.fetch_count == 2
    assert ds.metric_cache is not watcher_cache
    np.testing.assert_array_equal(a.data['cpu'], b.data['cpu'])


# -- physical ranges (issue 14 point 8) ---------------------------------------


def _host_windows(**rows):
    """Windows of hosts named as ``rows``' keys, each a dict metric ->
    list of values.
    """
    names = tuple(rows)
    metrics = sorted({m for r in rows.values() for m in r})
    n = max(len(v) for r in rows.values() for v in r.values())
    data = {m: np.array([rows[h].get(m, [np.nan] * n) for h in names],
                        dtype=float) for m in metrics}
    return metric_windows.ClusterWindows(
        names=names, times=np.arange(n, dtype=float) * 10, step=10,
        data=data, last_seen=np.full(len(names), 10.0 * n))


def test_implausible_reasons_name_metric_value_and_range():
    win = _host_windows(
        ok={'cpu': [0.0, 100.0, np.nan], 'load': [0.0, 50.0, 3.0]},
        idle250={'cpu': [40.0, -150.0, 40.0]},
        over={'memory': [20.0, 130.0, 20.0]},
        negload={'load': [1.0, -3.0, 1.0]},
        inf={'net': [1e6, np.inf, 1e6]},
        slack={'cpu': [100.0 + 1e-14, -1e-9, 100.4]})
    reasons = metric_windows.implausible_reasons(
        win, metric_windows.COMPUTE_NODE)
    assert set(reasons) == {'idle250', 'over', 'negload', 'inf'}
    assert reasons['idle250'] == \
        'implausible cpu reading -150 (physical range 0 to 100)'
    assert reasons['over'] == \
        'implausible memory reading 130 (physical range 0 to 100)'
    assert reasons['negload'] == \
        'implausible load reading -3 (physical range 0 to inf)'
    assert 'net reading inf' in reasons['inf']


def test_instance_ranges_and_nan_is_a_gap_not_garbage():
    win = _host_windows(a={'cpu': [np.nan] * 3, 'memory': [512.0] * 3},
                        b={'cpu': [50.0, 150.0, 50.0]},
                        c={'memory': [-1.0, 2.0, 3.0]})
    assert set(metric_windows.implausible_reasons(
        win, metric_windows.INSTANCE)) == {'b', 'c'}
