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

"""Whether to move at all: the strategy's speed_floor gate.

A host in failure state (mean CPU over the period at or above the
threshold) is relieved only when its consumers are starved: the share of
the CPU they ask for that they get, min(1, cores / load average), averaged
over the period, is below speed_floor. The hosts here have 12 cores.
"""

import logging

import numpy as np
import pytest

from tests.unit.strategies import test_proactive as tp
from tests.unit.strategies import test_strategy as ts
from watcher_failpredict.strategies import move_gate

LOGGER = ts.LOGGER


def _failing(load, speed_floor=None, **params):
    """'src' at 95 % CPU reporting ``load`` runnable cores, one VNF; the
    whether-to-move rule is speed_floor (not the default queueing rule).
    """
    params.setdefault('move_rule', 'speed_floor')
    c = ts.Cluster()
    c.host('src', 95.0, load=load)
    c.host('dst', 10.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    if speed_floor is not None:
        params['speed_floor'] = speed_floor
    return c.strategy(**params).execute()


def test_failing_host_whose_consumers_get_their_cpu_is_left_alone(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    solution = _failing(load=11.0)      # demand below the 12 cores
    assert ts.moves(solution) == []
    ind = ts.indicators(solution)
    assert ind['hosts_in_failure'] == 1
    assert ind['moves_not_worth'] == 1
    assert ind['migrations_planned'] == 0
    assert ('Host src is failing (95.0 %) but its consumers get 100 % of '
            'the CPU they ask for (speed_floor 85 %)') in caplog.text


def test_starved_failing_host_is_relieved():
    solution = _failing(load=20.0)      # 12 / 20: they get 60 %
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    assert ts.indicators(solution)['moves_not_worth'] == 0


@pytest.mark.parametrize('load,expect_moves', [
    (16.0, 0),            # 12 / 16 = 0.75, at the floor: not starved enough
    (16.5, 1),            # 0.727, below it
])
def test_floor_boundary(load, expect_moves):
    solution = _failing(load=load, speed_floor=0.75)
    assert len(ts.moves(solution)) == expect_moves


def test_speed_floor_one_moves_whenever_the_threshold_is_crossed():
    """The paper's rule, which the testbed's simple baselines run."""
    solution = _failing(load=5.0, speed_floor=1.0)
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    assert ts.indicators(solution)['moves_not_worth'] == 0


def test_speed_is_the_mean_over_the_trigger_period_only():
    # starved long ago, not during the period (the last 300 s)
    n = ts.Cluster.n
    load = np.full(n, 30.0)
    load[-30:] = 11.0
    assert ts.moves(_failing(load=load, speed_floor=0.9)) == []
    # and the other way round
    load = np.full(n, 11.0)
    load[-30:] = 30.0
    assert ts.moves(_failing(load=load, speed_floor=0.9)) == [
        ('vm1', 'src', 'dst')]


def test_missing_load_average_warns_and_moves(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    solution = _failing(load=np.nan, speed_floor=0.9)
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    assert 'reports no load average' in caplog.text


def test_proactive_mode_gates_a_failing_host_too(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    c = ts.Cluster()
    c.host('src', 95.0, load=11.0)
    c.host('dst', 10.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    solution = c.strategy(bundle=tp.RampRiskBundle(), mode='proactive',
                          speed_floor=0.9).execute()
    assert ts.moves(solution) == []
    assert ts.indicators(solution)['moves_not_worth'] == 1
    assert 'speed_floor' in caplog.text


# -- the pure functions -------------------------------------------------------


def test_consumer_speed_is_processor_sharing_per_sample():
    # 8 cores: demand 4 -> 1, 8 -> 1, 16 -> 0.5, NaN ignored
    assert move_gate.consumer_speed([4.0, 8.0, 16.0, np.nan], 8) == \
        pytest.approx((1 + 1 + 0.5) / 3)
    assert move_gate.consumer_speed([0.0, 0.0], 8) == 1.0
    assert np.isnan(move_gate.consumer_speed([np.nan, np.nan], 8))
    assert np.isnan(move_gate.consumer_speed([], 8))


@pytest.mark.parametrize('speed,floor,worth', [
    (0.5, 0.85, True), (0.85, 0.85, False), (0.99, 0.85, False),
    (1.0, 1.0, True), (np.nan, 0.85, True), (0.2, 0.0, False)])
def test_worth_moving(speed, floor, worth):
    assert move_gate.worth_moving(speed, floor) is worth


def test_lowest_period_speed_is_the_worst_window_of_the_forecast():
    demand = [[8.0, 16.0, 16.0, 4.0, 8.0],   # 1, .5, .5, 1, 1
              [4.0, 4.0, 4.0, 4.0, 4.0],
              [10.0, 8.0, 8.0, 8.0, 8.0]]    # .8 then 1
    got = move_gate.lowest_period_speed(demand, [8.0, 8.0, 8.0], 2)
    np.testing.assert_allclose(got, [0.5, 1.0, 0.9])
    # each window as consumer_speed sees it
    assert got[0] == move_gate.consumer_speed(demand[0][1:3], 8.0)
    # a look-ahead shorter than the period: its mean
    np.testing.assert_allclose(
        move_gate.lowest_period_speed(demand, [8.0, 8.0, 8.0], 30),
        [0.8, 1.0, 0.96])
    assert move_gate.lowest_period_speed(np.zeros((2, 0)), [8.0, 8.0],
                                         3).tolist() == [1.0, 1.0]
