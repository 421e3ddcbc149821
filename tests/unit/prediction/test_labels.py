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

"""Failure-state labels."""

import numpy as np
import pytest

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
