"""Failure-state labels and the dataset built from them."""

import numpy as np
import pytest

from tests.unit.test_features import windows_of
from watcher_failpredict.prediction import dataset
from watcher_failpredict.prediction import labels


def test_failure_state_rolling_mean():
    cpu = np.array([[80., 100., 100., 80., 70.]])
    state = labels.failure_state(cpu, 90, 2)
    # means: 80 (one sample), 90, 100, 90, 75
    assert state.tolist() == [[False, True, True, True, False]]
    assert state.dtype == bool


def test_threshold_is_inclusive_and_per_host():
    cpu = np.array([[90., 90.], [89.9, 89.9]])
    assert labels.failure_state(cpu, 90, 2).tolist() == [[True, True],
                                                         [False, False]]


def test_too_few_samples_is_not_failure():
    cpu = np.array([[99., np.nan, np.nan, np.nan, 99., 99.]])
    state = labels.failure_state(cpu, 90, 4)
    # t=0: 1 sample of 4 needed 2 -> no; t=1..3: still one sample -> no;
    # t=4: two samples (99 at 0? no: window 1..4 holds one) -> no;
    # t=5: window 2..5 holds two samples of 99 -> failure
    assert state.tolist() == [[False, False, False, False, False, True]]
    assert not labels.failure_state(np.full((2, 5), np.nan), 90, 2).any()


def test_rolling_mean_nan_where_unknown():
    m = labels.rolling_mean(np.array([[10., np.nan, 30.]]), 2,
                            min_fraction=1.0)
    assert np.isnan(m[0, 0]) and np.isnan(m[0, 1]) and np.isnan(m[0, 2])
    m = labels.rolling_mean(np.array([[10., np.nan, 30.]]), 2)
    assert m[0].tolist() == [10., 10., 30.]


@pytest.mark.parametrize('bad', [0, -1])
def test_bad_steps_are_refused(bad):
    with pytest.raises(ValueError, match='period_steps'):
        labels.failure_state(np.ones((1, 3)), 90, bad)
    with pytest.raises(ValueError, match='horizon_steps'):
        labels.failure_within(np.ones((1, 3), bool), bad)


def test_failure_within_looks_strictly_ahead_and_masks_the_end():
    state = np.array([[False, False, True, False, False, False, True]])
    within = labels.failure_within(state, 2)
    assert isinstance(within, np.ma.MaskedArray)
    # t=0 sees 1,2 -> True; t=1 sees 2,3; t=2 sees 3,4 (its own True is
    # not the future); t=3 sees 4,5; t=4 sees 5,6 -> True; 5, 6 unknown
    assert within.mask.tolist() == [[False] * 5 + [True, True]]
    assert within.data[0, :5].tolist() == [True, True, False, False, True]
    assert within.count() == 5


def test_failure_within_horizon_longer_than_history():
    within = labels.failure_within(np.ones((2, 3), bool), 5)
    assert within.mask.all()


def test_future_peak():
    v = np.array([[1., 5., 2., 8., 3.]])
    peak = labels.future_peak(v, 2)
    assert peak[0, :3].tolist() == [5., 8., 8.]
    assert np.isnan(peak[0, 3:]).all()


def test_make_dataset_alignment_and_drops():
    # host 0 saturates at columns 6..7; host 1 has no cpu until column 4
    cpu = np.array([[50., 50., 50., 50., 50., 50., 99., 99., 50., 50.],
                    [np.nan] * 4 + [20.] * 6])
    w = windows_of(cpu)
    X, y, t, h = dataset.make_dataset(w, window_steps=3, period_steps=1,
                                      horizon_steps=2, threshold=90)
    # decision times 3..8 (t + horizon <= 10)
    got = {(int(hh), int(tt)): int(yy) for hh, tt, yy in zip(h, t, y)}
    # host 0: label(t) = failure in columns t..t+1
    assert [got[(0, tt)] for tt in range(3, 9)] == [0, 0, 1, 1, 1, 0]
    # host 1: window [t-3, t) has no cpu at t=3,4 -> dropped
    assert sorted(tt for hh, tt in got if hh == 1) == [5, 6, 7, 8]
    assert X.shape == (len(y), len(dataset.feat.feature_names()))
    # features at t see only columns before t: at t=6 host 0's window is
    # all 50 though it is saturated from column 6 on
    i = next(k for k in range(len(y)) if h[k] == 0 and t[k] == 6)
    assert X[i, 1] == 50


def test_make_dataset_stride():
    w = windows_of(np.full((2, 30), 50.))
    X, y, t, h = dataset.make_dataset(w, 5, 2, 3, 90, stride=4)
    assert sorted(set(t.tolist())) == [5, 9, 13, 17, 21, 25]
    assert not y.any()


def test_destination_dataset_picks_lowest_future_peak():
    cpu = np.array([[10., 10., 10., 10., 95., 95.],   # low now, spikes
                    [60., 60., 60., 60., 60., 60.]])   # higher, calm
    w = windows_of(cpu)
    X, y, t = dataset.make_destination_dataset(w, 2, 1, 2)
    assert X.shape[1] == 2 * len(dataset.feat.feature_names())
    by_t = dict(zip(t.tolist(), y.tolist()))
    assert by_t[2] == 0      # columns 2,3: host 0 peaks at 10
    assert by_t[3] == 1      # columns 3,4: host 0 peaks at 95
