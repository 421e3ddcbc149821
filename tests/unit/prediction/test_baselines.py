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

"""Forecasting baselines: each on hand-built histories with known answers."""

import numpy as np
import pytest

from watcher_failpredict.prediction import baselines as bl


def test_persistence_is_the_trigger_period_mean_ignoring_gaps():
    cpu = np.array([[10., 20., np.nan, 40., 60., 80.]])
    # decision t=6 sees columns 0..5; period 3 -> mean(40, 60, 80)
    assert bl.persistence(cpu, [6], [0], 3)[0] == pytest.approx(60.0)
    # t=4: columns 1..3 = 20, nan, 40 -> 30 (NaN ignored)
    assert bl.persistence(cpu, [4], [0], 3)[0] == pytest.approx(30.0)


def test_least_cpu_now_is_the_last_sample_and_handles_late_hosts():
    cpu = np.array([[50., 60., 70., np.nan],
                    [np.nan, np.nan, np.nan, 33.],     # appeared mid-window
                    [np.nan] * 4])
    got = bl.least_cpu_now(cpu, [4, 4, 4], [0, 1, 2], 4)
    assert got[0] == 70.0 and got[1] == 33.0 and np.isnan(got[2])


def test_mean_kstd():
    cpu = np.array([[10., 20., 30., 40.]])
    expected = np.mean([10, 20, 30, 40]) + 1.5 * np.std([10, 20, 30, 40])
    assert bl.mean_kstd(cpu, [4], [0], 4, k=1.5)[0] == pytest.approx(expected)


def test_linear_trend_extrapolates_a_line_to_the_horizon():
    cpu = (10 + 2 * np.arange(20, dtype=float))[None, :]
    # window columns 5..9 (20..28); horizon 3 -> the value of column 12
    assert bl.linear_trend(cpu, [10], [0], 5, 3)[0] == pytest.approx(34.0)
    cpu[0, 7] = np.nan                       # a gap does not bend a line
    assert bl.linear_trend(cpu, [10], [0], 5, 3)[0] == pytest.approx(34.0)


def test_seasonal_naive_reads_one_cycle_back_and_falls_back():
    cycle = 10
    t = np.arange(60)
    cpu = np.where(t % cycle >= 7, 95.0, 40.0)[None, :]
    # label columns t..t+2; one cycle back: t-10..t-8
    got = bl.seasonal_naive(cpu, [22, 27], [0, 0], 1, 3, cycle)
    assert got[0] == pytest.approx(40.0)   # cols 12..14 back: calm
    assert got[1] == pytest.approx(95.0)   # cols 17..19 back: saturated
    # before one full cycle of history: persistence
    early = bl.seasonal_naive(cpu, [3], [0], 2, 3, cycle)
    assert early[0] == pytest.approx(40.0)
    with pytest.raises(ValueError, match='cycle_steps'):
        bl.seasonal_naive(cpu, [25], [0], 1, 5, 3)


def test_seasonal_naive_takes_one_cycle_per_sample():
    t = np.arange(60)
    cpu = np.stack([np.where(t % 10 >= 7, 95.0, 40.0),
                    np.where(t % 20 >= 15, 95.0, 40.0)])
    # at t = 37 host 0 (cycle 10) looks at 27..29, host 1 (cycle 20) at
    # 17..19: both saturated one of their own cycles back
    got = bl.seasonal_naive(cpu, [37, 37], [0, 1], 1, 3, [10, 20])
    np.testing.assert_allclose(got, [95.0, 95.0])
    # with host 0's cycle for both, host 1 reads 27..29: calm
    assert bl.seasonal_naive(cpu, [37], [1], 1, 3, 10)[0] == 40.0
    with pytest.raises(ValueError, match='cycle_steps'):
        bl.seasonal_naive(cpu, [37, 37], [0, 1], 1, 3, [10, 2])


def test_estimate_cycle_steps_finds_each_rows_cycle():
    rng = np.random.default_rng(0)
    t = np.arange(4000)
    rows = np.stack([
        50 + 40 * np.sin(2 * np.pi * t / 700) + rng.normal(0, 5, t.size),
        np.where(t % 600 < 180, 130.0, 30.0) + rng.normal(0, 5, t.size),
        rng.normal(50, 5, t.size),                    # no cycle
        np.full(t.size, 50.0)])                       # constant: no cycle
    got = bl.estimate_cycle_steps(rows, 60, 10000)
    assert abs(got[0] - 700) <= 14                    # within 2 %
    assert got[1] == 600
    assert list(got[2:]) == [0, 0]
    # lags are searched up to half the history only
    assert bl.estimate_cycle_steps(rows[:2, :1000], 60, 10000)[0] == 0
    assert bl.estimate_cycle_steps(rows[:2, :1000], 60, 10000)[1] == 0
    with pytest.raises(ValueError, match='missing'):
        bl.estimate_cycle_steps(np.where(t < 5, np.nan, 1.0)[None], 1, 9)
    with pytest.raises(ValueError, match='n_hosts, n_steps'):
        bl.estimate_cycle_steps(t, 1, 9)


def test_dispatcher_and_errors():
    cpu = np.full((1, 30), 50.0)
    for name in bl.BASELINES:
        s = bl.score(name, cpu, [10], [0], 5, 2, 3, cycle_steps=10)
        assert s[0] == pytest.approx(50.0)
    with pytest.raises(ValueError, match='unknown baseline'):
        bl.score('oracle', cpu, [10], [0], 5, 2, 3)
    with pytest.raises(ValueError, match='cycle_steps'):
        bl.score('seasonal_naive', cpu, [10], [0], 5, 2, 3)
    with pytest.raises(ValueError, match='window_steps'):
        bl.least_cpu_now(cpu, [2], [0], 5)


def test_score_calibrator_is_monotone_and_handles_nan_and_one_class():
    rng = np.random.RandomState(0)
    s = rng.uniform(0, 100, 500)
    y = (s + rng.normal(0, 10, 500) > 80).astype(int)
    cal = bl.ScoreCalibrator().fit(s, y)
    p = cal.predict_proba(np.array([10., 50., 90., np.nan]))[:, 1]
    assert p[0] < p[1] < p[2]
    assert p[3] == pytest.approx(y.mean())
    assert 0.0 <= p.min() and p.max() <= 1.0
    flat = bl.ScoreCalibrator().fit(s, np.zeros(500, int))
    assert flat.predict_proba([99.0])[0, 1] == 0.0
