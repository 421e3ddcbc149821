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

"""The seasonal forecast, its backtest and the trust rule."""

import numpy as np
import pytest

from watcher_failpredict.strategies import load_forecast


def test_seasonal_forecast_replays_one_cycle_back_or_holds_the_mean():
    past = np.array([np.arange(12.0), np.arange(12.0) * 10])
    out = load_forecast.seasonal_forecast(past, [5, 0], 3, 4)
    # row 0: steps 12, 13, 14 are steps 7, 8, 9; row 1: its last 4 held
    np.testing.assert_array_equal(out[0], [7.0, 8.0, 9.0])
    np.testing.assert_array_equal(out[1], [95.0] * 3)
    # a cycle shorter than the forecast would read the future
    with pytest.raises(ValueError, match=r'span 3-12 steps; rows \[0\]'):
        load_forecast.seasonal_forecast(past, [2, 0], 3, 4)
    with pytest.raises(ValueError, match='span 3-12'):
        load_forecast.seasonal_forecast(past, [0, 13], 3, 4)
    with pytest.raises(ValueError, match='expected 2 cycles, got 1'):
        load_forecast.seasonal_forecast(past, [5], 3, 4)


def test_backtest_is_the_forecast_made_before_the_last_steps():
    # a repeating pattern: the seasonal forecast of its last 4 steps is
    # exact, persistence is off by the pattern's swing
    pattern = np.array([0.0, 0.0, 4.0, 4.0, 0.0, 8.0])
    past = np.vstack([np.tile(pattern, 3), np.tile(pattern, 3)])
    err = load_forecast.backtest_errors(past, [6, 0], 4, 2)
    assert err[0] == 0.0
    # row 1 held at the mean of steps 12-13 (0, 0): the last four are
    # 4, 4, 0, 8 -> mean absolute error 4
    assert err[1] == pytest.approx(4.0)
    # the same by hand, for a shift of the pattern: seasonal now wrong
    shifted = np.concatenate([np.tile(pattern, 2), np.roll(pattern, 3)])
    err = load_forecast.backtest_errors(shifted[None], [6], 4, 2)
    expect = np.abs(shifted[14:] - shifted[8:12]).mean()
    assert err[0] == pytest.approx(expect) and expect > 0


def test_backtest_is_nan_where_the_history_is_too_short():
    past = np.arange(10.0)[None].repeat(3, axis=0)
    # cycle 8 > the 6 steps before the last 4; cycle 2 < the 4 steps
    err = load_forecast.backtest_errors(past, [8, 2, 0], 4, 3)
    assert np.isnan(err[0]) and np.isnan(err[1]) and np.isfinite(err[2])
    assert np.isnan(load_forecast.backtest_errors(past, [0, 0, 0], 10,
                                                  3)).all()


def test_trusted_averages_the_hosts_error_share_of_their_cores():
    # constant residuals: every window is the mean; the host with no
    # backtest (NaN) is left out
    res = np.array([[1.2] * 4, [3.6] * 4, [np.nan] * 4])
    ok, share = load_forecast.trusted(res, [12, 12, 12], 2, 0.2)
    assert ok and share == pytest.approx(0.2)
    ok, share = load_forecast.trusted([[1.2] * 4, [3.7] * 4], [12, 12], 2,
                                      0.2)
    assert not ok and share > 0.2
    ok, share = load_forecast.trusted([[np.nan] * 4], [12], 2)
    assert not ok and np.isnan(share)


def test_trusted_judges_the_worst_period_not_the_whole_backtest():
    # right for six steps, then 4.8 cores off (40 % of 12) for the last
    # two: 10 % over the whole backtest, 40 % over its last period of two
    res = np.array([[0.0] * 6 + [4.8] * 2])
    ok, share = load_forecast.trusted(res, [12], 2, 0.2)
    assert not ok and share == pytest.approx(0.4)
    # by hand: the windows' means are 0, 0, 0, 0, 0.2, 0.4 (share)
    ok, share = load_forecast.trusted(res, [12], 3, 0.3)
    assert ok and share == pytest.approx((0.0 + 0.4 + 0.4) / 3)
    # a period longer than the backtest is the whole backtest
    ok, share = load_forecast.trusted(res, [12], 20, 0.2)
    assert ok and share == pytest.approx(0.1)


def test_backtest_residuals_are_the_errors_step_by_step():
    pattern = np.array([0.0, 0.0, 4.0, 4.0, 0.0, 8.0])
    past = np.vstack([np.tile(pattern, 3), np.tile(pattern, 3)])
    res = load_forecast.backtest_residuals(past, [6, 0], 4, 2)
    assert res[0].tolist() == [0.0] * 4
    assert res[1].tolist() == [4.0, 4.0, 0.0, 8.0]
    assert load_forecast.backtest_errors(past, [6, 0], 4, 2).tolist() == \
        res.mean(axis=1).tolist()


def _sine(t, period):
    return 6.0 + 5.0 * np.sin(2.0 * np.pi * t / period)


def _stretched(n_old, n_new, period, scale, step=10.0):
    """A sine of ``period`` s for ``n_old`` steps of ``step`` s, then the
    same sine ``scale`` times slower, continuous, for ``n_new`` steps and
    a look-ahead more (returned apart: the history, what followed).
    """
    t = step * np.arange(n_old + n_new + 126)
    since = step * n_old
    clock = np.where(t < since, t, since + (t - since) / scale)
    wave = _sine(clock, period)
    return wave[:n_old + n_new], wave[n_old + n_new:]


def test_analog_forecast_follows_a_cycle_that_slowed_down():
    # 5 h 10 min of a 30 min cycle, then 50 min of it 30 % slower: not
    # two whole slow cycles (39 min) to copy one from
    past, then = _stretched(1860, 300, 1800.0, 1.3)
    out = load_forecast.analog_forecast(past[None], 126, 10.0)
    assert np.abs(out[0] - then).mean() < 0.3
    # without the time scales, the best copy is an old cycle's
    flat = load_forecast.analog_forecast(past[None], 126, 10.0,
                                         scales=(1.0,))
    assert np.abs(flat[0] - then).mean() > 2.0
    seasonal = load_forecast.seasonal_forecast(past[None], [180], 126, 30)
    assert np.abs(seasonal[0] - then).mean() > 2.0
    # 2 h after the change the slow cycle is in the history too, and the
    # time scales still help
    past, then = _stretched(1440, 720, 1800.0, 1.3)
    out = load_forecast.analog_forecast(past[None], 126, 10.0)
    flat = load_forecast.analog_forecast(past[None], 126, 10.0,
                                         scales=(1.0,))
    assert np.abs(out[0] - then).mean() < 0.4 < \
        np.abs(flat[0] - then).mean()


def test_analog_forecast_of_a_repeating_load_is_one_cycle_back():
    pattern = np.array([0.0] * 60 + [4.0] * 30 + [9.0] * 30 + [1.0] * 60)
    past = np.tile(pattern, 12)[None]          # 6 h at 10 s, cycle 30 min
    out = load_forecast.analog_forecast(past, 126, 10.0)
    np.testing.assert_allclose(out[0], past[0, -180:-54], atol=1e-9)


def test_analog_forecast_needs_twice_the_match_of_history():
    past = np.tile(np.arange(6.0), (2, 230))   # 1,380 steps: < 4 h at 10 s
    out = load_forecast.analog_forecast(past, 5, 10.0)
    # held at the mean of the last 60 s
    np.testing.assert_array_equal(out, np.full((2, 5), 2.5))
    assert np.isnan(load_forecast.analog_residuals(past, 5, 10.0)).all()
    # one match's worth more (4 h 1 min): a match, a backtest
    longer = np.tile(np.arange(6.0), (2, 241))
    res = load_forecast.analog_residuals(longer, 5, 10.0)
    assert np.isfinite(res).all()


def test_analog_backtest_is_the_forecast_made_before_the_last_steps():
    past, _ = _stretched(1800, 400, 1800.0, 1.3)
    res = load_forecast.analog_residuals(past[None], 126, 10.0)
    then = load_forecast.analog_forecast(past[None, :-126], 126, 10.0)
    np.testing.assert_array_equal(res, np.abs(past[None, -126:] - then))


def test_time_envelope_is_the_lowest_and_highest_within_the_margin():
    forecast = np.array([[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]])
    low, high = load_forecast.time_envelope(forecast, 1)
    assert low.tolist() == [[1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]]
    assert high.tolist() == [[3.0, 4.0, 4.0, 5.0, 9.0, 9.0, 9.0]]
    low, high = load_forecast.time_envelope(forecast, 2)
    assert low.tolist() == [[1.0] * 6 + [2.0]]
    assert high.tolist() == [[4.0, 4.0, 5.0, 9.0, 9.0, 9.0, 9.0]]
    # no margin: the forecast itself, a copy
    low, high = load_forecast.time_envelope(forecast, 0)
    np.testing.assert_array_equal(low, forecast)
    np.testing.assert_array_equal(high, forecast)
    low[0, 0] = -1.0
    assert forecast[0, 0] == 3.0
    # wider than the forecast: its extremes throughout
    low, high = load_forecast.time_envelope(forecast, 50)
    assert low.tolist() == [[1.0] * 7] and high.tolist() == [[9.0] * 7]
    with pytest.raises(ValueError, match='at least 0 steps, got -1'):
        load_forecast.time_envelope(forecast, -1)


def test_envelope_misses_count_only_the_load_outside_it():
    actual = np.array([[1.0, 5.0, 3.0, 2.0, 4.0]])
    low = np.full((1, 5), 2.0)
    high = np.full((1, 5), 4.0)
    assert load_forecast.envelope_misses(actual, low, high).tolist() == [
        [1.0, 1.0, 0.0, 0.0, 0.0]]


def test_seasonal_and_analog_backtests_are_the_forecasts_made_before():
    t = np.arange(2160.0)
    past = np.vstack([np.sin(2 * np.pi * t / 180.0) + 2.0, np.full(2160, 3.0)])
    then = load_forecast.seasonal_backtest(past, [180, 0], 66, 30)
    np.testing.assert_array_equal(then, load_forecast.seasonal_forecast(
        past[:, :-66], [180, 0], 66, 30))
    # a cycle longer than the history then has none; a row without one
    # is held at its mean
    short = load_forecast.seasonal_backtest(past[:, :200], [180, 0], 66,
                                            30)
    assert np.isnan(short[0]).all() and np.isfinite(short[1]).all()
    assert load_forecast.seasonal_backtest(past[:, :66], [0, 0], 66,
                                           30) is None
    then = load_forecast.analog_backtest(past, 66, 10.0)
    np.testing.assert_array_equal(then, load_forecast.analog_forecast(
        past[:, :-66], 66, 10.0))
    # under two matches (4 h at 10 s) of history before: none
    assert load_forecast.analog_backtest(past[:, :1500], 66, 10.0) is None
