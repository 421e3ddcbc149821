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

"""The planner over a forecast: values by hand, timing, greed, refusals."""

import dataclasses

import numpy as np
import pytest

from watcher_failpredict.strategies import queueing
from watcher_failpredict.strategies import stay_planner


def forecast(bg, demand, host_of, cores=4.0, dt=10.0):
    bg = np.asarray(bg, dtype=float)
    demand = np.asarray(demand, dtype=float)
    return stay_planner.Forecast(
        bg=bg, demand=demand, vcpus=np.ones(demand.shape[0]),
        cores=np.full(bg.shape[0], cores), host_of=np.asarray(host_of),
        dt=dt)


def test_move_gain_is_the_queueing_count_over_the_forecast_by_hand():
    # host 0 saturates at step 2; the migration ends after step 1
    bg = [[1.0, 2.0, 6.0, 6.0], [0.5, 0.5, 0.5, 0.5]]
    fc = forecast(bg, [[0.6] * 4], [0], dt=100.0)
    where = np.zeros((1, 4), dtype=int)
    extra = np.zeros((2, 4))
    got = stay_planner.move_gain(fc, where, extra, 0, 1, 1, 0.5)
    over = queueing.MIGRATION_OVERHEAD_CORES
    by_hand = 0.0
    for t in range(4):
        before = queueing.host_requests(bg[0][t], [0.6], [1], 4.0)
        if t < 1:
            after = queueing.host_requests(bg[0][t], [0.6], [1], 4.0, over)
        else:
            after = queueing.host_requests(bg[1][t], [0.6], [1], 4.0)
        by_hand += (before - after) * 100.0
    by_hand -= (0.5 + queueing.SWITCHOVER_S) * float(
        queueing.requests_in_system(2 * queueing.KNEE))
    assert got == pytest.approx(by_hand)
    assert got > 0


def test_a_host_that_stays_quiet_is_not_worth_a_move():
    fc = forecast([[1.0] * 30, [0.5] * 30], [[0.6] * 30], [0])
    assert stay_planner.plan(fc, lambda planned: [(0, 1)],
                             {0: (20.0, 0.5)}, 2) == []


def test_a_peak_the_migration_would_miss_is_not_worth_a_move():
    # saturated for the first 5 steps only; the migration takes 6
    bg = [[6.0] * 5 + [1.0] * 25, [0.5] * 30]
    fc = forecast(bg, [[0.6] * 30], [0])
    slow = stay_planner.plan(fc, lambda planned: [(0, 1)], {0: (60.0, 0.5)},
                             1)
    fast = stay_planner.plan(fc, lambda planned: [(0, 1)], {0: (10.0, 0.5)},
                             1)
    assert slow == []
    assert [(m.vnf, m.dest, m.steps) for m in fast] == [(0, 1, 1)]


def test_a_coming_peak_moves_the_vnf_before_it_and_to_where_it_stays_quiet():
    # host 0 peaks from step 10; host 1 is quiet now but peaks from step
    # 12, host 2 stays quiet: only the forecast tells 1 from 2
    bg = [[1.0] * 10 + [6.0] * 50, [0.5] * 12 + [6.0] * 48, [1.0] * 60]
    fc = forecast(bg, [[0.6] * 60], [0])
    moves = stay_planner.plan(fc, lambda planned: [(0, 1), (0, 2)],
                              {0: (30.0, 0.5)}, 1)
    assert [(m.vnf, m.dest) for m in moves] == [(0, 2)]
    assert moves[0].gain > 0


def test_greedy_moves_see_the_earlier_ones_and_the_candidates_the_plan():
    # two VNFs on a saturated host; host 1 takes one without saturating,
    # not both (2.5 + 0.9 + 0.9 > 4); host 2 is busier, still room for one
    bg = [[4.0] * 40, [2.5] * 40, [2.9] * 40]
    fc = forecast(bg, [[0.9] * 40, [0.9] * 40], [0, 0])
    seen = []

    def allowed(planned):
        seen.append(list(planned))
        return [(v, d) for v in (0, 1) for d in (1, 2)]
    moves = stay_planner.plan(fc, allowed, {0: (20.0, 0.5),
                                            1: (20.0, 0.5)}, 3)
    assert sorted(m.dest for m in moves) == [1, 2]
    assert {m.vnf for m in moves} == {0, 1}
    assert moves[0].dest == 1 and moves[0].gain >= moves[1].gain
    # the candidates were asked after each move, with the moves so far
    assert seen[0] == [] and seen[1] == [(moves[0].vnf, 1)]
    assert len(seen) == 3


def test_a_vnf_without_a_finite_migration_is_not_moved():
    bg = [[6.0] * 30, [0.5] * 30]
    fc = forecast(bg, [[0.6] * 30], [0])
    assert stay_planner.plan(fc, lambda planned: [(0, 1)],
                             {0: (float('inf'), 0.5)}, 1) == []
    assert stay_planner.plan(fc, lambda planned: [(0, 1)], {}, 1) == []
    assert len(stay_planner.plan(fc, lambda planned: [(0, 1)],
                                 {0: (20.0, 0.5)}, 1)) == 1


def test_a_forecast_with_gaps_or_wrong_shapes_is_refused():
    with pytest.raises(ValueError, match='forecast of bg has missing'):
        forecast([[1.0, np.nan]], [[0.5, 0.5]], [0])
    with pytest.raises(ValueError, match='must share T'):
        forecast([[1.0, 1.0]], [[0.5, 0.5, 0.5]], [0])
    with pytest.raises(ValueError, match=r'host_of must have shape \(1,\)'):
        forecast([[1.0, 1.0]], [[0.5, 0.5]], [0, 0])


def test_the_bounded_search_chooses_what_valuing_every_move_chooses():
    """plan() values a VNF's moves only while its bound can reach the best
    move found; on random clusters its first move is the best of all by
    move_gain (the first asked on a tie), and nothing when none pays.
    """
    rng = np.random.default_rng(1)
    chosen = 0
    for _ in range(150):
        hosts, vnfs, steps = rng.integers(2, 7), rng.integers(2, 25), 40
        fc = stay_planner.Forecast(
            bg=rng.uniform(0, 16, (hosts, steps)),
            demand=rng.uniform(0, 2.5, (vnfs, steps)),
            vcpus=rng.integers(1, 3, vnfs).astype(float),
            cores=np.full(hosts, 12.0),
            host_of=rng.integers(0, hosts, vnfs), dt=10.0)
        migration = {v: (float(rng.uniform(5, 100)), 0.5)
                     for v in range(vnfs)}
        got = stay_planner.plan(fc, lambda planned: [
            (v, d) for v in range(vnfs) for d in range(hosts)], migration, 1)
        where = np.repeat(fc.host_of[:, None], steps, axis=1)
        best = None
        for v in range(vnfs):
            for d in range(hosts):
                if d == fc.host_of[v]:
                    continue
                gain = stay_planner.move_gain(
                    fc, where, np.zeros((hosts, steps)), v, d,
                    int(np.ceil(migration[v][0] / fc.dt)), 0.5)
                if gain > 0 and (best is None or gain > best[2] + 1e-9 *
                                 max(abs(best[2]), 1.0)):
                    best = (v, d, gain)
        if best is None:
            assert got == []
        else:
            chosen += 1
            assert (got[0].vnf, got[0].dest) == best[:2]
            assert got[0].gain == pytest.approx(best[2])
    assert 20 < chosen < 150


def test_an_envelope_values_the_departure_on_its_low_the_arrival_on_its_high():
    # host 0 saturated, host 1 quiet on the low; on the high, host 1 has
    # a peak that may come any time over the look-ahead
    low = np.array([[6.0] * 30, [0.5] * 30, [0.5] * 30])
    high = low.copy()
    high[1] = 6.0
    demand = [[0.6] * 30]
    candidates = (lambda planned: [(0, 1), (0, 2)])
    migration = {0: (20.0, 0.5)}
    plain = forecast(low, demand, [0])
    assert [(m.vnf, m.dest) for m in stay_planner.plan(
        plain, candidates, migration, 1)] == [(0, 1)]
    enveloped = dataclasses.replace(plain, bg_high=high)
    moves = stay_planner.plan(enveloped, candidates, migration, 1)
    # host 2 is quiet at its high too: the move goes there, worth what it
    # is worth on the low (both quiet destinations alike)
    assert [(m.vnf, m.dest) for m in moves] == [(0, 2)]
    assert moves[0].gain == pytest.approx(stay_planner.move_gain(
        plain, np.zeros((1, 30), dtype=int), np.zeros((3, 30)), 0, 2, 2,
        0.5))
    # arriving on host 1's high costs more than leaving host 0 spares
    where, extra = np.zeros((1, 30), dtype=int), np.zeros((3, 30))
    assert stay_planner.move_gain(enveloped, where, extra, 0, 1, 2, 0.5) < \
        0 < stay_planner.move_gain(plain, where, extra, 0, 1, 2, 0.5)
    # a departure is valued on the low: a source saturated at its high
    # only is not worth leaving
    only_high = dataclasses.replace(
        forecast([[1.0] * 30, [0.5] * 30, [0.5] * 30], demand, [0]),
        bg_high=np.array([[6.0] * 30, [0.5] * 30, [0.5] * 30]))
    assert stay_planner.plan(only_high, candidates, migration, 1) == []


def test_an_envelope_must_match_the_forecast():
    with pytest.raises(ValueError, match=r'bg_high must have the shape of '
                       r'bg \(2, 4\), got \(2, 3\)'):
        stay_planner.Forecast(
            bg=np.ones((2, 4)), demand=np.ones((1, 4)), vcpus=np.ones(1),
            cores=np.full(2, 4.0), host_of=np.zeros(1, dtype=int), dt=10.0,
            bg_high=np.ones((2, 3)))
    with pytest.raises(ValueError, match='the forecast of bg_high has '
                       'missing values'):
        stay_planner.Forecast(
            bg=np.ones((2, 4)), demand=np.ones((1, 4)), vcpus=np.ones(1),
            cores=np.full(2, 4.0), host_of=np.zeros(1, dtype=int), dt=10.0,
            bg_high=np.full((2, 4), np.nan))
