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

"""The planned mode's inputs: placement history, background, outlook and
the sub-problem the planner is given.
"""

import numpy as np
import pytest

from watcher_failpredict.strategies import forecast_inputs as fi
from watcher_failpredict.strategies import load_forecast as lf
from watcher_failpredict.strategies import migrations


def test_gaps_are_interpolated_and_rows_with_too_many_refused():
    rows = np.array([[1.0, np.nan, 3.0, 4.0] + [4.0] * 16,
                     [np.nan] * 3 + [1.0] * 17,
                     [np.nan] * 20])
    filled, ok = fi.gaps_filled(rows)
    assert ok.tolist() == [True, False, False]
    assert filled[0, :4].tolist() == [1.0, 2.0, 3.0, 4.0]
    # 3 of 20 missing is 15 %: over the 10 % allowed
    assert np.isnan(filled[1, 0]) and np.isnan(filled[2]).all()
    assert fi.gaps_filled(rows, max_missing=0.2)[1].tolist() == [
        True, True, False]
    # the ends are held
    assert fi.gaps_filled(rows, max_missing=0.2)[0][1, :3].tolist() == [
        1.0] * 3


def _mig(uuid, src, dst, at):
    return migrations.Migration(uuid, src, dst, at)


def test_placement_history_walks_back_through_the_migrations():
    times = np.arange(10) * 10.0      # window starts 0, 10, ..., 90
    hosts = ['a', 'b', 'c']
    where = fi.placement_history(
        ['v1', 'v2', 'v3'], hosts, {'v1': 'c', 'v2': 'a', 'v3': 'b'}, [
            # v1: a -> b ended at 35, b -> c at 70 (given out of order)
            _mig('v1', 'b', 'c', 70.0), _mig('v1', 'a', 'b', 35.0),
            # v2 is still on a: a migration under way changes nothing
            _mig('v2', 'a', 'c', 90.0),
            # v3 came from a host outside the scope
            _mig('v3', 'x', 'b', 50.0)], times)
    # a window that began before the migration ended is the source's
    assert where[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert where[1].tolist() == [0] * 10
    assert where[2].tolist() == [-1] * 5 + [1] * 5


def test_background_is_the_load_less_the_vnfs_there_then():
    load = np.array([[5.0, 5.0, 5.0], [2.0, 2.0, 0.5]])
    demand = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    where = np.array([[0, 0, 1], [0, -1, 1]])
    bg = fi.background(load, demand, where)
    assert bg.tolist() == [[2.0, 4.0, 5.0], [2.0, 2.0, 0.0]]


def test_hosts_to_plan_are_chosen_on_the_forecast_not_the_present():
    t = np.arange(720)
    load = np.full((30, 720), 6.0)
    # host 3 is quiet now and peaks within the next 66 steps, every 180
    load[3] = np.where(((t % 180) >= 20) & ((t % 180) < 60), 16.0, 3.0)
    # host 5 is busy now and quiet over the next 66 steps
    load[5] = np.where((t % 180) >= 150, 16.0, 3.0)
    # host 7, the quietest, runs no VNF; host 9 has the most room
    load[7] = 0.5
    load[9] = 1.0
    has_vnfs = np.ones(30, dtype=bool)
    has_vnfs[7] = False
    cores = np.full(30, 12.0)
    assert load[3, -1] < load[5, -1]
    got = fi.hosts_to_plan(load, cores, has_vnfs, 66, 30, 1, 2)
    assert got.tolist() == [3, 7, 9]
    # without VNFs a host is a destination only
    load[7] = 30.0
    assert fi.hosts_to_plan(load, cores, has_vnfs, 66, 30, 1, 1).tolist() \
        == [3, 9]
    # a cluster no larger than that is weighed whole
    assert fi.hosts_to_plan(load[:3], cores[:3], has_vnfs[:3], 66, 30, 1,
                            2).tolist() == [0, 1, 2]


def test_outlook_replays_a_repeating_load_and_trusts_it():
    t = np.arange(720)
    bg = np.where((t % 180) < 60, 14.0, 2.0)[None, :].repeat(2, axis=0)
    bg[1] = 3.0
    demand = np.full((3, 720), 1.5)
    seen = fi.outlook(bg, demand, np.full(2, 12.0), 66, 30)
    # the cycle is estimated one step short on so sharp a wave (179): a
    # small error, well within the tolerance
    assert seen.trusted and seen.share < 0.02
    # the next 66 steps of the square wave: t = 720... is phase 0
    assert seen.bg[0, :58].tolist() == [14.0] * 58
    assert seen.bg[0, 61:].tolist() == [2.0] * 5
    assert seen.bg[1].tolist() == [3.0] * 66
    # the same wave, shifted half a cycle over its last 200 steps
    drift = bg.copy()
    drift[0, -200:] = np.where(((t[-200:] + 90) % 180) < 60, 14.0, 2.0)
    seen = fi.outlook(drift, demand, np.full(2, 12.0), 66, 30)
    assert not seen.trusted and seen.share > 0.2
    # a new workload for the last 20 steps only: 14 % of the cores off
    # over the backtest's 66 steps (the old check trusted it), 32 % over
    # its worst 30 (20 x 12 cores on one host of two, / 30 / 12)
    recent = bg.copy()
    recent[0, -20:] = 14.0
    seen = fi.outlook(recent, demand, np.full(2, 12.0), 66, 30)
    assert np.nanmean(seen.errors / 12.0) == pytest.approx(0.144, abs=0.001)
    assert not seen.trusted
    assert seen.share == pytest.approx(0.317, abs=0.001)


def _square(clock):
    return np.where(clock % 180 < 60, 14.0, 2.0)


def test_outlook_turns_to_the_analog_forecast_when_seasonal_missed():
    t = np.arange(2160.0)                      # 6 h at 10 s
    steady = np.vstack([_square(t), _square(t + 90.0)])
    demand = np.full((3, 2160), 1.5)
    cores = np.full(2, 12.0)
    seen = fi.outlook(steady, demand, cores, 66, 30, step=10.0,
                      forecast='seasonal_or_analog')
    # the seasonal one holds: it is planned on, no search made
    assert seen.trusted and seen.forecast == 'seasonal'
    # the wave 30 % slower over its last 2 h 30 min
    since = 1260.0
    clock = np.where(t < since, t, since + (t - since) / 1.3)
    slow = np.vstack([_square(clock), _square(clock + 90.0)])
    seasonal = fi.outlook(slow, demand, cores, 66, 30)
    assert not seasonal.trusted and seasonal.forecast == 'seasonal'
    seen = fi.outlook(slow, demand, cores, 66, 30, step=10.0,
                      forecast='seasonal_or_analog')
    assert seen.trusted and seen.forecast == 'analog'
    assert seen.share < 0.05 < 0.2 < seasonal.share
    # the VNFs' demand is the seasonal one either way
    np.testing.assert_array_equal(seen.demand, seasonal.demand)
    assert fi.outlook(slow, demand, cores, 66, 30, step=10.0,
                      forecast='analog').forecast == 'analog'


def test_outlook_plans_on_the_time_envelope_when_the_peaks_came_early():
    t = np.arange(2160.0)
    # the square wave 20 steps early over its last 150: neither forecast
    # (nor the analog's envelope) passes, the seasonal one's envelope over
    # 30 steps either way does
    clock = np.where(t < 2160 - 150, t, t + 20.0)
    bg = np.vstack([_square(clock), _square(clock + 90.0)])
    demand = np.full((3, 2160), 1.5)
    cores = np.full(2, 12.0)
    kw = dict(step=10.0, forecast='seasonal_or_analog')
    missed = fi.outlook(bg, demand, cores, 66, 30, **kw)
    assert not missed.trusted and missed.share > 0.2
    assert missed.bg_high is None and missed.of is None
    seen = fi.outlook(bg, demand, cores, 66, 30, margin=30, **kw)
    assert seen.trusted and seen.forecast == 'envelope'
    assert seen.of == 'seasonal' and seen.share == 0.0
    seasonal = fi.outlook(bg, demand, cores, 66, 30)
    low, high = lf.time_envelope(seasonal.bg, 30)
    np.testing.assert_array_equal(seen.bg, low)
    np.testing.assert_array_equal(seen.bg_high, high)
    np.testing.assert_array_equal(seen.demand, seasonal.demand)
    # the wider the margin, the less of the early peaks falls outside;
    # 5 steps either way do not hold 20 steps early
    shares = [fi.outlook(bg, demand, cores, 66, 30, margin=m, **kw).share
              for m in (10, 15, 20)]
    assert 0.2 > shares[0] > shares[1] > shares[2] == 0.0
    narrow = fi.outlook(bg, demand, cores, 66, 30, margin=5, **kw)
    assert not narrow.trusted and narrow.forecast == 'seasonal'
    assert narrow.share == missed.share


def test_outlook_keeps_the_nearer_when_neither_passes():
    noise = np.random.default_rng(3).uniform(0.0, 12.0, (2, 2160))
    demand = np.full((3, 2160), 1.5)
    both = [fi.outlook(noise, demand, np.full(2, 12.0), 66, 30, step=10.0,
                       forecast=f) for f in ('seasonal', 'analog')]
    seen = fi.outlook(noise, demand, np.full(2, 12.0), 66, 30, step=10.0,
                      forecast='seasonal_or_analog')
    assert not seen.trusted
    assert seen.share == min(o.share for o in both)
    assert seen.forecast == min(both, key=lambda o: o.share).forecast


def test_outlook_refuses_an_unknown_forecast_or_analog_without_step():
    bg, demand = np.ones((2, 100)), np.ones((1, 100))
    with pytest.raises(ValueError, match="one of seasonal_or_analog, "
                       "seasonal, analog, got 'arima'"):
        fi.outlook(bg, demand, np.full(2, 12.0), 10, 3, forecast='arima')
    with pytest.raises(ValueError, match='seconds per step'):
        fi.outlook(bg, demand, np.full(2, 12.0), 10, 3, forecast='analog')
