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

"""The one pipeline train() and the evaluation report both run."""

import numpy as np
import pytest

from tests.unit.prediction.test_features import windows_of
from tests.unit.prediction import test_training as synth
from watcher_failpredict.prediction import evaluation
from watcher_failpredict.prediction import features as feat
from watcher_failpredict.prediction import pipeline
from watcher_failpredict.prediction import training


def test_to_steps_names_the_bad_length():
    assert pipeline.to_steps(10, 600, 300, 120) == pipeline.Steps(60, 30, 12)
    with pytest.raises(ValueError, match=r'period \(305 s\) must be a '
                       r'multiple of the granularity \(10 s\)'):
        pipeline.to_steps(10, 600, 305, 120)
    with pytest.raises(ValueError, match='horizon must be positive, got 0'):
        pipeline.to_steps(10, 600, 300, 0)


def test_split_times_leaves_a_gap_of_window_plus_horizon():
    # decision times 10..95 (86); the last 22 held out: 74..95; training
    # stops window + horizon = 15 steps earlier
    assert pipeline.split_times(100, 10, 5, 0.25) == (59, 74)
    with pytest.raises(ValueError, match='history too short: 30 steps'):
        pipeline.split_times(30, 10, 5, 0.25)
    with pytest.raises(ValueError, match='test_fraction must be in'):
        pipeline.split_times(100, 10, 5, 1.0)


def test_make_dataset_alignment_and_drops():
    # host 0 saturates at columns 6..7; host 1 has no cpu until column 4
    cpu = np.array([[50., 50., 50., 50., 50., 50., 99., 99., 50., 50.],
                    [np.nan] * 4 + [20.] * 6])
    w = windows_of(cpu)
    X, y, t, h = pipeline.make_dataset(w, window_steps=3, period_steps=1,
                                       horizon_steps=2, threshold=90)
    # decision times 3..8 (t + horizon <= 10)
    got = {(int(hh), int(tt)): int(yy) for hh, tt, yy in zip(h, t, y)}
    # host 0: label(t) = failure in columns t..t+1
    assert [got[(0, tt)] for tt in range(3, 9)] == [0, 0, 1, 1, 1, 0]
    # host 1: window [t-3, t) has no cpu at t=3,4 -> dropped
    assert sorted(tt for hh, tt in got if hh == 1) == [5, 6, 7, 8]
    assert X.shape == (len(y), len(feat.feature_names()))
    # features at t see only columns before t: at t=6 host 0's window is
    # all 50 though it is saturated from column 6 on
    i = next(k for k in range(len(y)) if h[k] == 0 and t[k] == 6)
    assert X[i, 1] == 50


def test_make_dataset_stride():
    w = windows_of(np.full((2, 30), 50.))
    X, y, t, h = pipeline.make_dataset(w, 5, 2, 3, 90, stride=4)
    assert sorted(set(t.tolist())) == [5, 9, 13, 17, 21, 25]
    assert not y.any()
    with pytest.raises(ValueError, match='stride must be >= 1, got 0'):
        pipeline.make_dataset(w, 5, 2, 3, 90, stride=0)


def test_destination_dataset_picks_lowest_future_peak():
    cpu = np.array([[10., 10., 10., 10., 95., 95.],   # low now, spikes
                    [60., 60., 60., 60., 60., 60.]])   # higher, calm
    w = windows_of(cpu)
    X, y, t = pipeline.destination_samples(w, pipeline.Steps(2, 1, 2))
    assert X.shape[1] == 2 * len(feat.feature_names())
    by_t = dict(zip(t.tolist(), y.tolist()))
    assert by_t[2] == 0      # columns 2,3: host 0 peaks at 10
    assert by_t[3] == 1      # columns 3,4: host 0 peaks at 95


def test_risk_samples_drop_contaminated_rows_and_order_by_time():
    cpu = np.tile(np.array([50., 95., 60., 20.] * 5), (3, 1))
    w = windows_of(cpu)
    steps = pipeline.Steps(3, 1, 2)
    X, y, t, h = pipeline.make_dataset(w, 3, 1, 2, 90)
    # a migration on h1 over columns 8..9: samples whose window or horizon
    # overlap it are left out
    iv = [('h1', float(w.times[8]), float(w.times[9]))]
    by_host = pipeline.risk_samples(w, steps, 90, exclude_intervals=iv)
    touched = (h == 1) & (t >= 7) & (t <= 12)
    assert by_host.n_excluded == int(touched.sum()) == 6
    np.testing.assert_array_equal(by_host.X, X[~touched])
    np.testing.assert_array_equal(by_host.host_index, h[~touched])
    by_time = pipeline.risk_samples(w, steps, 90, exclude_intervals=iv,
                                    time_order=True)
    keys = list(zip(by_time.t_index.tolist(), by_time.host_index.tolist()))
    assert keys == sorted(keys)
    assert sorted(keys) == sorted(zip(by_host.t_index.tolist(),
                                      by_host.host_index.tolist()))
    assert by_time.n_excluded == 6


def test_report_scores_the_bundle_train_fits_as_its_own_model():
    """train() and the report fit the same model on the same rows: the
    report's gbt row equals the row of the bundle train() wrote.
    """
    w = synth.synthetic_windows(1800)
    kw = dict(threshold=90, period=300, horizon=300, window=600, cycle=2400)
    bundle, _ = training.train(w, model_kind='gbt', **kw)
    r = evaluation.evaluate(w, model_kinds=('gbt',), bundle=bundle, **kw)
    own, fitted = r['methods']['gbt'], r['methods']['bundle']
    for key in ('pr_auc', 'roc_auc', 'brier', 'threshold', 'precision',
                'recall', 'peak_mae'):
        assert fitted[key] == own[key], key
    assert fitted['destination'] == own['destination']
    np.testing.assert_array_equal(r['_arrays']['scores']['bundle'],
                                  r['_arrays']['scores']['gbt'])
