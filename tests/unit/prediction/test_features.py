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

"""Features of host windows, on hand-made arrays."""

import dataclasses
import warnings

import numpy as np
import pytest

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import features as feat

NAMES = feat.feature_names()


def col(name):
    return NAMES.index(name)


def windows_of(cpu, memory=None, step=10, names=None, **extra):
    cpu = np.asarray(cpu, dtype=float)
    names = names or tuple(f'h{i}' for i in range(cpu.shape[0]))
    data = {'cpu': cpu}
    if memory is not None:
        data['memory'] = np.asarray(memory, dtype=float)
    data.update({k: np.asarray(v, dtype=float) for k, v in extra.items()})
    return metric_windows.ClusterWindows(
        names=tuple(names), times=1000.0 + step * np.arange(cpu.shape[1]),
        step=step, data=data, last_seen=np.zeros(len(names)))


def test_schema_and_names():
    assert feat.FEATURE_SCHEMA_VERSION == 1
    assert NAMES[:6] == ['cpu_last', 'cpu_mean', 'cpu_std', 'cpu_max',
                         'cpu_min', 'cpu_slope']
    assert {'memory_slope', 'load_mean', 'disk_log1p_mean',
            'net_log1p_mean'} <= set(NAMES)
    assert len(NAMES) == len(set(NAMES))


def test_values_on_a_ramp():
    cpu = np.array([[10., 20., 30., 40.]])
    mem = np.array([[50., 50., 50., 50.]])
    load = np.array([[4., 3., 2., 1.]])
    disk = np.array([[np.e - 1] * 4])
    net = np.zeros((1, 4))
    x = feat.features_from_arrays(cpu, mem, load, disk, net)[0]
    assert x[col('cpu_last')] == 40
    assert x[col('cpu_mean')] == 25
    assert x[col('cpu_std')] == pytest.approx(np.std([10, 20, 30, 40]))
    assert x[col('cpu_max')] == 40 and x[col('cpu_min')] == 10
    assert x[col('cpu_slope')] == pytest.approx(10.0)
    assert x[col('memory_slope')] == pytest.approx(0.0)
    assert x[col('load_slope')] == pytest.approx(-1.0)
    assert x[col('load_last')] == 1
    assert x[col('disk_log1p_mean')] == pytest.approx(1.0)
    assert x[col('net_log1p_mean')] == 0


def test_nan_gaps_are_ignored_not_zero():
    cpu = np.array([[10., np.nan, 30., np.nan]])
    z = np.full((1, 4), np.nan)
    x = feat.features_from_arrays(cpu, z, z, z, z)[0]
    assert x[col('cpu_last')] == 30       # last real sample, not NaN
    assert x[col('cpu_mean')] == 20
    assert x[col('cpu_min')] == 10
    # slope over points (0, 10) and (2, 30)
    assert x[col('cpu_slope')] == pytest.approx(10.0)
    # other metrics entirely missing: their features NaN, cpu ones not
    assert np.isnan(x[col('memory_mean')])
    assert np.isnan(x[col('disk_log1p_mean')])


def test_no_cpu_gives_a_nan_row():
    cpu = np.array([[np.nan] * 3, [50., 50., 50.]])
    mem = np.ones((2, 3))
    x = feat.features_from_arrays(cpu, mem, mem, mem, mem)
    assert np.isnan(x[0]).all()
    assert not np.isnan(x[1]).any()


def test_single_sample_has_zero_slope_and_std():
    cpu = np.array([[np.nan, np.nan, 70.]])
    x = feat.features_from_arrays(cpu, cpu, cpu, cpu, cpu)[0]
    assert x[col('cpu_slope')] == 0 and x[col('cpu_std')] == 0
    assert x[col('cpu_last')] == 70


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match='memory'):
        feat.features_from_arrays(np.ones((2, 3)), np.ones((2, 4)),
                                  np.ones((2, 3)), np.ones((2, 3)),
                                  np.ones((2, 3)))


def test_host_features_uses_last_window_steps():
    cpu = [[0., 0., 0., 10., 20., 30.],
           [np.nan, np.nan, np.nan, np.nan, 80., 90.]]   # appears late
    w = windows_of(cpu)
    x = feat.host_features(w, 3)
    assert x.shape == (2, len(NAMES))
    assert x[0, col('cpu_mean')] == 20 and x[0, col('cpu_min')] == 10
    assert x[1, col('cpu_mean')] == 85 and x[1, col('cpu_last')] == 90
    assert x[1, col('cpu_slope')] == pytest.approx(10.0)
    # metrics not read at all are NaN features, cpu ones still valid
    assert np.isnan(x[:, col('net_log1p_mean')]).all()


def test_host_features_pads_short_history_with_nan():
    w = windows_of([[40., 60.]])
    x = feat.host_features(w, 5)
    assert x[0, col('cpu_mean')] == 50
    assert x[0, col('cpu_slope')] == pytest.approx(20.0)


def test_host_without_cpu_in_window_is_nan_even_if_seen_before():
    w = windows_of([[90., 90., np.nan, np.nan]])
    assert np.isnan(feat.host_features(w, 2)).all()
    assert not np.isnan(feat.host_features(w, 4)[0, :6]).any()


def test_vectorised_windows_equal_one_by_one():
    rng = np.random.RandomState(1)
    cpu = rng.uniform(0, 100, (3, 40))
    cpu[1, 5:9] = np.nan
    w = windows_of(cpu, memory=rng.uniform(0, 100, (3, 40)))
    times = np.array([8, 9, 20, 40])
    bulk = feature_sets.window_features(w, 8, times)
    for j, t in enumerate(times):
        sub = windows_of(cpu[:, :t], memory=w.data['memory'][:, :t])
        np.testing.assert_allclose(bulk[:, j], feat.host_features(sub, 8))


@pytest.mark.parametrize('feature_set', ['v1', 'multiscale'])
def test_mean_only_metrics_enter_the_features_only_by_their_mean(
        feature_set):
    """The strategy reads MEAN_ONLY_METRICS as their window mean and fills
    the window with it: every feature set must then give the same columns
    (a new feature using, e.g., the slope of disk I/O breaks this test).
    """
    from watcher_failpredict.prediction import feature_sets
    rng = np.random.default_rng(7)
    n, steps, w = 4, 62, 60
    data = {m: rng.uniform(0, 100, (n, steps))
            for m in metric_windows.HOST_METRICS}
    data['disk'] *= 1e4
    data['disk'][1, 10:20] = np.nan          # gaps are ignored by the mean
    data['net'][2] = np.nan                  # no metrics at all: NaN
    win = metric_windows.ClusterWindows(
        names=tuple(f'h{i}' for i in range(n)),
        times=1_700_000_000.0 + 10.0 * np.arange(steps), step=10,
        data=data, last_seen=np.full(n, 1_700_000_610.0))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)   # all-NaN means
        filled = dict(data)
        for m in feat.MEAN_ONLY_METRICS:
            mean = np.nanmean(data[m][:, -w:], axis=1)
            filled[m] = np.repeat(mean[:, None], steps, axis=1)
        params = (feature_sets.default_params(w, 30, cycle=3600)
                  if feature_set == 'multiscale' else None)
        got = feature_sets.host_features(
            dataclasses.replace(win, data=filled), w,
            feature_set, params)
        want = feature_sets.host_features(win, w, feature_set, params)
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
