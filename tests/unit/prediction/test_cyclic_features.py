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

"""The cyclic feature set (issue 11, point 4): each host's last load
cycle and its simple forecasters' recent errors, and the per-host cycles
training estimates and carries in the bundle.
"""

import numpy as np
import pytest

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import cycles
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import training

STEP = 10
W, P, H = 60, 30, 30       # window 600 s, period 300 s, horizon 300 s


def params(host_cycles=None, cycle=None):
    return feature_sets.default_params(W, P, cycle, horizon_steps=H,
                                       host_cycles=host_cycles or {})


def windows_of(cpu, names=None):
    cpu = np.asarray(cpu, dtype=float)
    n, m = cpu.shape
    names = tuple(names or (f'h{i}' for i in range(n)))
    times = 1.7e9 + STEP * np.arange(m, dtype=float)
    data = {'cpu': cpu, 'memory': np.full(cpu.shape, 40.0),
            'load': np.full(cpu.shape, 1.0), 'disk': np.full(cpu.shape, 1e5),
            'net': np.full(cpu.shape, 1e5)}
    return metric_windows.ClusterWindows(
        names=names, times=times, step=STEP, data=data,
        last_seen=np.full(n, times[-1]))


def column(name):
    return feature_sets.feature_names('cyclic', params()).index(name)


def square(n, cycle_steps, high=100.0, low=20.0, duty=0.3, shift=0):
    t = np.arange(n) + shift
    return np.where((t % cycle_steps) < duty * cycle_steps, high, low)


def test_names_extend_the_multiscale_set():
    ms = feature_sets.feature_names('multiscale', params())
    cyc = feature_sets.feature_names('cyclic', params())
    assert cyc[:len(ms)] == ms
    assert cyc[len(ms):] == list(feature_sets._CYCLIC)
    with pytest.raises(ValueError, match='horizon_steps'):
        feature_sets.feature_names('cyclic', feature_sets.default_params(
            W, P))


def test_host_lags_are_cycle_minus_horizon_on_the_step_grid():
    p = params({'a': 3600.0, 'b': 0.0, 'c': 301.0, 'd': 1234.0})
    lags = feature_sets.host_lags(p, ['a', 'b', 'c', 'd', 'new'], STEP)
    # c: a cycle no longer than the horizon would read the future: none
    assert lags.tolist() == [3300.0, 0.0, 0.0, 930.0, 0.0]
    # a host the bundle does not know takes the declared cycle
    declared = feature_sets.host_lags(params({}, cycle=1800.0), ['new'],
                                      STEP)
    assert declared.tolist() == [1500.0]


def test_last_cycle_is_the_cpu_one_cycle_back_shifted_by_the_horizon():
    cpu = np.arange(400, dtype=float)[None, :].repeat(2, axis=0)
    win = feature_sets.with_last_cycle(windows_of(cpu), params(
        {'h0': 1000.0, 'h1': 0.0}))
    last = win.data[feature_sets.LAST_CYCLE]
    lag = 100 - H     # 1000 s cycle = 100 steps, minus the horizon
    assert np.isnan(last[0, :lag]).all()
    np.testing.assert_array_equal(last[0, lag:], cpu[0, :-lag])
    assert np.isnan(last[1]).all()


def test_on_an_exact_cycle_seasonal_naive_is_perfect_and_sees_the_peak():
    """A square wave of 120 steps: one cycle ago, the coming horizon's
    peak is known exactly, and seasonal naive has made no error.
    """
    cycle = 120
    cpu = square(600, cycle, duty=0.5)[None, :]
    win = feature_sets.with_last_cycle(windows_of(cpu), params(
        {'h0': cycle * STEP}))
    # a decision time 10 steps before the next high phase starts
    t = 5 * cycle - 10
    X = feature_sets.window_features(win, W, [t], 'cyclic', params(
        {'h0': cycle * STEP}))[0, 0]
    assert X[column('err_seasonal')] == 0.0
    # the period-mean peak over the coming horizon: the 30-step mean
    # ending 20 steps into the high phase holds 20 high steps and 10 low
    assert X[column('cycle_ahead_peak')] == pytest.approx(
        (20 * 100.0 + 10 * 20.0) / 30)
    # the window saw the high phase end: persistence was wrong there
    assert X[column('err_persistence')] > 0.0
    # the host is low now and was low one cycle ago: no level change
    assert X[column('cycle_now_mean')] == pytest.approx(20.0)
    assert X[column('cycle_level_change')] == pytest.approx(0.0)
    assert X[column('cycle_ahead_peak_moved')] == pytest.approx(
        X[column('cycle_ahead_peak')])


def test_level_change_moves_the_seasonal_forecast():
    cycle = 120
    cpu = square(600, cycle)
    cpu[480:] += 15.0           # this cycle runs 15 points above the last
    p = params({'h0': cycle * STEP})
    win = feature_sets.with_last_cycle(windows_of(cpu[None, :]), p)
    X = feature_sets.window_features(win, W, [590], 'cyclic', p)[0, 0]
    assert X[column('cycle_level_change')] == pytest.approx(15.0)
    assert X[column('cycle_ahead_peak_moved')] == pytest.approx(
        X[column('cycle_ahead_peak')] + 15.0)
    assert X[column('err_seasonal')] > 0.0


def test_features_use_nothing_after_the_decision_time():
    rng = np.random.default_rng(0)
    cpu = rng.uniform(0, 100, (2, 500))
    p = params({'h0': 1500.0, 'h1': 2000.0})
    t = 400
    before = feature_sets.window_features(
        feature_sets.with_last_cycle(windows_of(cpu), p), W, [t], 'cyclic',
        p)
    changed = cpu.copy()
    changed[:, t:] = rng.uniform(0, 100, (2, 500 - t))
    after = feature_sets.window_features(
        feature_sets.with_last_cycle(windows_of(changed), p), W, [t],
        'cyclic', p)
    np.testing.assert_array_equal(before, after)


def test_a_host_without_a_cycle_has_nan_cyclic_columns_only():
    p = params({'h0': 0.0})
    cpu = square(300, 100)[None, :]
    X = feature_sets.window_features(
        feature_sets.with_last_cycle(windows_of(cpu), p), W, [200],
        'cyclic', p)[0, 0]
    for name in ('cycle_ahead_peak', 'cycle_now_mean', 'err_seasonal'):
        assert np.isnan(X[column(name)]), name
    # forecasters that need no cycle still have their error
    assert np.isfinite(X[column('err_persistence')])
    assert np.isfinite(X[column('err_drift')])
    assert np.isfinite(X[column('cpu_mean')])


def test_cycle_estimation_finds_each_hosts_cycle():
    rng = np.random.default_rng(3)
    n = 1200
    cpu = np.stack([square(n, 90), square(n, 150, shift=40),
                    rng.uniform(30, 60, n)]) + rng.normal(0, 3, (3, n))
    cpu[0, 100:110] = np.nan          # gaps are interpolated, not fatal
    found = cycles.estimate_host_cycles(cpu, STEP, P, H)
    assert found[0] == pytest.approx(900.0, abs=2 * STEP)
    assert found[1] == pytest.approx(1500.0, abs=2 * STEP)
    assert found[2] == 0.0


def _history(n_steps=1440):
    rng = np.random.default_rng(5)
    cpu = np.stack([
        square(n_steps, 150, high=100.0, low=25.0),
        square(n_steps, 210, high=98.0, low=30.0, shift=70),
        square(n_steps, 120, high=97.0, low=35.0, shift=30),
        rng.uniform(20.0, 50.0, n_steps)]) + rng.normal(0, 2, (4, n_steps))
    return windows_of(np.clip(cpu, 0, 100),
                      names=('c1500', 'c2100', 'c1200', 'flat'))


def test_training_carries_each_hosts_cycle_and_the_bundle_round_trips(
        tmp_path):
    win = _history()
    bundle, _ev = training.train(win, threshold=90.0, period=300,
                                 horizon=300, window=600,
                                 model_kind='gbt_peak_cycle')
    md = bundle.metadata
    assert md['feature_set'] == 'cyclic'
    cyc = md['feature_params']['host_cycles']
    assert cyc['c1500'] == pytest.approx(1500.0, abs=2 * STEP)
    assert cyc['c2100'] == pytest.approx(2100.0, abs=2 * STEP)
    assert cyc['c1200'] == pytest.approx(1200.0, abs=2 * STEP)
    assert cyc['flat'] == 0.0
    path = tmp_path / 'm.pkl'
    digest = bundle_mod.save_bundle(bundle, str(path))
    loaded = bundle_mod.load_bundle(str(path), digest)
    assert loaded.metadata['feature_params'] == md['feature_params']
    # the loaded model scores windows that carry the last cycle
    scored = feature_sets.with_last_cycle(win, md['feature_params'])
    np.testing.assert_allclose(loaded.predict_risk(scored),
                               bundle.predict_risk(scored))


def test_training_with_a_declared_cycle_gives_it_to_every_host():
    win = _history()
    bundle, _ev = training.train(win, threshold=90.0, period=300,
                                 horizon=300, window=600,
                                 model_kind='gbt_peak_cycle', cycle=1500)
    fp = bundle.metadata['feature_params']
    assert fp['cycle'] == 1500.0 and fp['host_cycles'] == {}
    assert feature_sets.host_lags(fp, win.names, STEP).tolist() == \
        [1200.0] * 4


@pytest.mark.parametrize('bad,match', [
    ({'host_cycles': {'a': -5.0}}, r"host_cycles\['a'\]=-5.0"),
    ({'host_cycles': {'a': float('inf')}}, r"host_cycles\['a'\]=inf"),
    ({'host_cycles': ['a']}, 'host_cycles=.* is not a mapping'),
    ({'horizon_steps': 0}, 'horizon_steps=0'),
    ({'horizon_steps': 2.5}, 'horizon_steps=2.5')])
def test_bad_cyclic_params_are_refused_with_their_name(bad, match):
    p = dict(params({'a': 600.0}), **bad)
    with pytest.raises(bundle_mod.ModelError, match=match):
        bundle_mod._check_feature_params('cyclic', p, W)


def test_the_misaligned_copy_teaches_the_model_to_leave_a_broken_cycle():
    """Trained on loads that repeat, then shown loads whose cycles have
    shrunk by a quarter and shifted (the bundle's cycles are now wrong):
    without the misaligned copy the model keeps trusting the last cycle,
    with it the model follows the forecasters that still work.
    """
    from sklearn import metrics as skm

    from watcher_failpredict.prediction import labels as lab
    from watcher_failpredict.prediction import pipeline
    rng = np.random.default_rng(0)
    periods = [150, 180, 210, 240, 170, 200]
    n = 2000

    def load(shifts, scale):
        return np.clip(np.stack([
            square(n, int(c * scale), high=99.0, low=30.0, duty=0.35,
                   shift=17 * i + shifts)
            for i, c in enumerate(periods)]) + rng.normal(0, 3, (6, n)),
            0, 100)

    steps = pipeline.Steps(W, P, H)
    history = windows_of(load(0, 1.0))
    p = cycles.cyclic_params(history, steps)
    assert [p['host_cycles'][f'h{i}'] for i in range(6)] == [
        c * STEP for c in periods]
    s = pipeline.risk_samples(history, steps, 90.0, 'cyclic', p,
                              time_order=True)
    target = lab.peak_targets(history.data['cpu'], P, H, s.t_index,
                              s.host_index)
    plain = pipeline.fit_risk_model('gbt_peak_cycle', s.X, s.y, target,
                                    90.0, p, 0, 4000, 1, 5)
    X, y, rows = pipeline.with_misaligned_cycles(
        history, steps, 90.0, p, s, np.ones(s.y.size, bool),
        time_order=True)
    assert X.shape[0] == 2 * s.y.size
    np.testing.assert_array_equal(y, s.y[rows])
    # time order kept: the gbt kinds calibrate on their latest rows
    assert np.all(np.diff(s.t_index[rows]) >= 0)
    copied = pipeline.fit_risk_model('gbt_peak_cycle', X, y, target[rows],
                                     90.0, p, 0, 4000, 1, 5)
    scores = {}
    for what, cpu in (('same', load(0, 1.0)), ('drifted', load(40, 0.75))):
        t = pipeline.risk_samples(windows_of(cpu), steps, 90.0, 'cyclic', p)
        scores[what] = [skm.average_precision_score(
            t.y, m.predict_proba(t.X)[:, 1]) for m in (plain, copied)]
    # as good while the cycles hold, far better once they have changed
    assert scores['same'][1] >= scores['same'][0] - 0.02, scores
    assert scores['drifted'][1] >= scores['drifted'][0] + 0.2, scores
