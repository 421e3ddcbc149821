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

"""An audit with a model trained on the cyclic features (issue 11).

The strategy reads each host's last load cycle in one more bulk read and
must compute exactly the features training computed from the history at
the same decision time: a model is only as good as the agreement between
what it was trained on and what it is shown.
"""

import dataclasses

import numpy as np
import pytest

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import training
from watcher_failpredict.strategies import errors
from watcher_failpredict.testbed.audit_cluster import Cluster
from watcher_failpredict.testbed.audit_cluster import NOW
from watcher_failpredict.testbed.audit_cluster import STEP

N = 1440        # 4 h of 10 s samples
CYCLES = {'c1500': 150, 'c2100': 210, 'flat': 0}


def _cpu(name, rng):
    n = CYCLES[name]
    if not n:
        return rng.uniform(20.0, 50.0, N)
    t = np.arange(N) + 37
    return np.clip(np.where(t % n < 0.35 * n, 99.0, 25.0) +
                   rng.normal(0, 2, N), 0, 100)


@pytest.fixture(scope='module')
def cluster_and_bundle():
    rng = np.random.default_rng(11)
    c = Cluster()
    times = NOW - N * STEP + STEP * np.arange(N)
    for name in CYCLES:
        c.host(name, 0.0, metrics=False)
        cpu = _cpu(name, rng)
        for metric, values in (('cpu', cpu), ('memory', 40.0),
                               ('load', cpu / 100 * 12 * 1.4),
                               ('disk', 1e5), ('net', 1e6)):
            c.ds.add(metric_windows.COMPUTE_NODE, metric, name, times,
                     np.broadcast_to(values, (N,)))
    c.instance('vm1', 'c1500', cpu=80.0, vcpus=2)
    hist = c.ds.cluster_windows(metric_windows.COMPUTE_NODE, tuple(CYCLES),
                                (N - 1) * STEP, STEP, end=NOW)
    bundle, _ev = training.train(hist, threshold=90.0, period=300,
                                 horizon=300, window=600,
                                 model_kind='gbt_peak_cycle')
    return c, bundle, hist


def test_the_audit_shows_the_model_what_training_showed_it(
        cluster_and_bundle):
    c, bundle, hist = cluster_and_bundle
    fp = bundle.metadata['feature_params']
    assert fp['host_cycles']['c1500'] == pytest.approx(1500, abs=20)
    assert fp['host_cycles']['c2100'] == pytest.approx(2100, abs=20)
    assert fp['host_cycles']['flat'] == 0.0
    s = c.strategy(bundle=bundle, horizon=300)
    before = c.ds.fetch_count
    s.pre_execute()
    # host windows, disk and network means, and the last cycle: one read
    # each, whatever the number of hosts
    assert c.ds.fetch_count - before == 3
    got = bundle.features(s.windows)
    want = feature_sets.window_features(
        hist, bundle.window_steps, [hist.times.size], 'cyclic', fp)[:, 0]
    order = [hist.index(n) for n in s.windows.names]
    np.testing.assert_allclose(got, want[order], equal_nan=True)
    names = feature_sets.feature_names('cyclic', fp)
    peak = got[:, names.index('cycle_ahead_peak')]
    by_host = dict(zip(s.windows.names, peak))
    assert np.isfinite(by_host['c1500']) and np.isfinite(by_host['c2100'])
    assert np.isnan(by_host['flat'])


def test_a_planned_move_adds_the_vnf_to_the_destinations_last_cycle(
        cluster_and_bundle):
    c, bundle, _hist = cluster_and_bundle
    s = c.strategy(bundle=bundle, horizon=300)
    s.pre_execute()
    before = s.windows.subset(['c2100']).data
    src, dst = (c.model.get_node_by_uuid(f'uuid-{n}')
                for n in ('c1500', 'c2100'))
    inst = c.model.get_instance_by_uuid('vm1')
    cpu = np.full(s.windows.times.size, 80.0)
    mem = np.full(s.windows.times.size, 800.0)
    s._plan_move(inst, src, dst, cpu, mem)
    after = s.windows.subset(['c2100']).data
    # 2 vCPUs at 80 % on a 12-core host, at every step of both series
    added = after['cpu'] - before['cpu']
    sampled = ~np.isnan(added)
    assert sampled.sum() >= 59
    np.testing.assert_allclose(added[sampled], 80.0 * 2 / 12)
    np.testing.assert_allclose(
        after[feature_sets.LAST_CYCLE] - before[feature_sets.LAST_CYCLE],
        80.0 * 2 / 12)


def test_a_failed_last_cycle_read_fails_the_audit_naming_it(
        cluster_and_bundle, monkeypatch):
    c, bundle, _hist = cluster_and_bundle
    real = c.ds.cluster_windows

    def cpu_only_fails(resource_type, names, period, granularity,
                       metrics=None, end=None):
        if metrics == ('cpu',):
            raise metric_windows.MetricsUnavailable('backend timed out')
        return real(resource_type, names, period, granularity, metrics, end)

    monkeypatch.setattr(c.ds, 'cluster_windows', cpu_only_fails)
    with pytest.raises(errors.MetricsReadFailed,
                       match="last load cycle: backend timed out"):
        c.strategy(bundle=bundle, horizon=300).pre_execute()


def test_cycles_too_far_apart_to_read_at_once_are_refused(
        cluster_and_bundle, monkeypatch):
    c, bundle, _hist = cluster_and_bundle
    fp = dict(bundle.metadata['feature_params'],
              host_cycles={'c1500': 1500.0, 'c2100': 7 * 86400.0,
                           'flat': 0.0})
    monkeypatch.setitem(bundle.metadata, 'feature_params', fp)
    with pytest.raises(errors.IncompatibleParameters,
                       match='retrain with one declared cycle'):
        c.strategy(bundle=bundle, horizon=300).pre_execute()


def test_garbage_one_cycle_ago_is_a_lost_sample_not_a_load(
        cluster_and_bundle, monkeypatch, caplog):
    c, bundle, _hist = cluster_and_bundle
    real = c.ds.cluster_windows

    def garbage_back(resource_type, names, period, granularity,
                     metrics=None, end=None):
        win = real(resource_type, names, period, granularity, metrics, end)
        if metrics == ('cpu',):
            cpu = win.data['cpu'].copy()
            row = win.index('c1500')
            cpu[row, -5] = 250.0
            cpu[row, -4] = np.inf
            win = dataclasses.replace(win, data={'cpu': cpu})
        return win

    monkeypatch.setattr(c.ds, 'cluster_windows', garbage_back)
    s = c.strategy(bundle=bundle, horizon=300)
    with caplog.at_level('WARNING'):
        s.pre_execute()
    # the host is still evaluated: only its readings one cycle ago were bad
    assert 'c1500' in s.windows.names
    last = s.windows.series(feature_sets.LAST_CYCLE, 'c1500')
    assert np.isnan(last).sum() == 2
    assert np.nanmax(last) <= 100.5
    assert 'Readings one load cycle ago ignored as missing: c1500 ' \
        '(implausible cpu reading 250' in caplog.text
