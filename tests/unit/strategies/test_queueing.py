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

"""``move_rule=queueing``: what a move spares the requests, and the gate.

The pure functions first (every figure worked out by hand), then the
strategy through its public execute(). Hosts have 12 cores.
"""

import logging
import math
import re

import numpy as np
import pytest

from tests.unit.strategies import test_strategy as ts
from watcher_failpredict.strategies import queueing

LOGGER = ts.LOGGER
KNEE_COUNT = queueing.KNEE / (1 - queueing.KNEE)       # 19 at 0.95
SLOPE = 1 / (1 - queueing.KNEE) ** 2                   # 400


# -- the pure functions -------------------------------------------------------


def test_speed_is_processor_sharing():
    assert queueing.speed(6.0, 12) == 1.0
    assert queueing.speed(12.0, 12) == 1.0
    assert queueing.speed(18.0, 12) == pytest.approx(2 / 3)
    assert np.isnan(queueing.speed(np.nan, 12))


@pytest.mark.parametrize('rho,count', [
    (0.0, 0.0), (0.5, 1.0), (0.9, 9.0), (queueing.KNEE, KNEE_COUNT),
    (1.0, KNEE_COUNT + SLOPE * 0.05), (1.5, KNEE_COUNT + SLOPE * 0.55),
    (-0.2, 0.0)])
def test_requests_in_system_is_littles_law_then_its_tangent(rho, count):
    assert float(queueing.requests_in_system(rho)) == pytest.approx(count)


def test_requests_in_system_is_continuous_and_increasing_at_the_knee():
    k = queueing.KNEE
    below, at, above = queueing.requests_in_system([k - 1e-6, k, k + 1e-6])
    assert below < at < above
    assert above - below == pytest.approx(2e-6 * SLOPE, rel=1e-3)


def test_host_requests_counts_each_vnf_at_the_host_speed():
    # 10 + 2 x 0.5 = 11 cores of demand on 12: full speed, rho 0.5 each
    assert queueing.host_requests(10.0, [0.5, 0.5], [1, 1], 12) == \
        pytest.approx(2.0)
    # 17 + 1 = 18 on 12: speed 2/3, rho 0.75, 3 requests each
    assert queueing.host_requests(17.0, [0.5, 0.5], [1, 1], 12) == \
        pytest.approx(6.0)
    # a 2-vCPU VNF with 1 core of demand is at rho 0.5
    assert queueing.host_requests(0.0, [1.0], [2], 12) == pytest.approx(1.0)
    # a migration's threads slow every VNF: 17.75 + 0.25 = 18 on 12
    assert queueing.host_requests(16.75, [0.5, 0.5], [1, 1], 12,
                                  extra=0.25) == pytest.approx(6.0)


def test_host_load_background_is_what_the_vnfs_do_not_explain():
    h = queueing.HostLoad(12.0, 18.0, (0.5, 1.5), (1.0, 2.0))
    assert h.background == pytest.approx(16.0)
    assert queueing.HostLoad(12.0, 1.0, (0.5, 1.5), (1.0, 2.0)).background \
        == 0.0
    # without VNF 1 the demand is 16.5 (speed 12/16.5)
    rho = 0.5 / (12 / 16.5)
    assert h.requests(without=1) == pytest.approx(rho / (1 - rho))


def test_move_value_is_the_spared_requests_over_the_stay_minus_costs():
    src = queueing.HostLoad(12.0, 18.0, (0.5, 0.5), (1.0, 1.0))
    dst = queueing.HostLoad(12.0, 4.0, (), ())
    v = queueing.move_value(src, 0, dst, migration_s=40.0, downtime_s=0.5,
                            stay_s=600.0)
    # before: 2 VNFs at rho 0.75 (6 requests); after: the source at 17.5
    # cores (speed 12/17.5) keeps one, the moved one runs at rho 0.5 on
    # a destination at 4.5 cores
    rho_after = 0.5 / (12 / 17.5)
    spared = 6.0 - (rho_after / (1 - rho_after) + 1.0)
    assert v.spared_per_s == pytest.approx(spared)
    # the copy threads: the source at 18.25 cores for the 40 s
    rho_copy = 0.5 / (12 / 18.25)
    copying = 2 * rho_copy / (1 - rho_copy) - 6.0
    assert v.migration_cost == pytest.approx(40.0 * copying)
    outage = (0.5 + queueing.SWITCHOVER_S) * float(
        queueing.requests_in_system(2 * queueing.KNEE))
    assert v.outage_cost == pytest.approx(outage)
    assert v.value == pytest.approx(560.0 * spared - 40.0 * copying - outage)
    assert v.pays
    assert 'worth +' in v.reason()


def test_a_move_off_a_host_at_full_speed_does_not_pay():
    # demand 11 on 12 cores: the VNFs run at full speed already
    src = queueing.HostLoad(12.0, 11.0, (0.5, 0.5), (1.0, 1.0))
    dst = queueing.HostLoad(12.0, 4.0, (), ())
    v = queueing.move_value(src, 0, dst, 40.0, 0.5, 600.0)
    assert v.spared_per_s == pytest.approx(0.0)
    assert not v.pays
    assert v.value == pytest.approx(-v.migration_cost - v.outage_cost)


def test_a_move_onto_a_host_it_saturates_can_cost_more_than_it_spares():
    src = queueing.HostLoad(12.0, 12.5, (0.5, 0.5), (1.0, 1.0))
    idle = queueing.HostLoad(12.0, 0.0, (), ())
    busy = queueing.HostLoad(12.0, 14.0, (), ())
    assert queueing.move_value(src, 0, idle, 40, 0.5, 600).value > \
        queueing.move_value(src, 0, busy, 40, 0.5, 600).value
    assert queueing.move_value(src, 0, busy, 40, 0.5, 600).spared_per_s < 0


def test_the_busiest_vnf_spares_the_most_on_a_saturated_host():
    src = queueing.HostLoad(12.0, 20.0, (0.2, 0.8), (1.0, 1.0))
    idle = queueing.HostLoad(12.0, 0.0, (), ())
    small = queueing.move_value(src, 0, idle, 40, 0.5, 600)
    large = queueing.move_value(src, 1, idle, 40, 0.5, 600)
    assert large.spared_per_s > small.spared_per_s > 0


def test_a_migration_that_does_not_converge_never_pays():
    src = queueing.HostLoad(12.0, 30.0, (0.9,), (1.0,))
    idle = queueing.HostLoad(12.0, 0.0, (), ())
    v = queueing.move_value(src, 0, idle, math.inf, 0.5, 600)
    assert v.value == -math.inf and not v.pays
    assert v.spared_per_s > 0
    assert "would not converge" in v.reason()


# -- through the strategy -----------------------------------------------------


def _cluster(src_load, src_vnfs=((('vm1', 60.0),)), dst_cpu=10.0):
    """'src' at 95 % CPU with ``src_load`` runnable cores, and 'dst'."""
    c = ts.Cluster()
    c.host('src', 95.0, load=src_load)
    c.host('dst', dst_cpu)
    for uuid, cpu in src_vnfs:
        c.instance(uuid, 'src', cpu=cpu)
    return c


def test_queueing_rule_leaves_a_host_whose_vnfs_are_not_slowed(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    solution = _cluster(src_load=11.0).strategy(
        move_rule='queueing').execute()
    assert ts.moves(solution) == []
    ind = ts.indicators(solution)
    assert ind['hosts_in_failure'] == 1
    assert ind['moves_not_worth'] == 1
    # counted over the cooldown (600 s, longer than the model's horizon)
    assert ('Move of vm1 from src to dst not planned: it spares 0.000 '
            'requests in system for 600 s') in caplog.text


def test_queueing_rule_relieves_a_host_whose_vnfs_queue(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    solution = _cluster(src_load=20.0).strategy(
        move_rule='queueing').execute()
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    assert ts.indicators(solution)['moves_not_worth'] == 0
    assert 'Move of vm1 from src to dst spares' in caplog.text


def test_queueing_rule_moves_even_where_speed_floor_would_not():
    # 12 / 13.5 = 0.89 of the CPU asked for: above speed_floor 0.85, but
    # a VNF busy 85 % of its vCPU is then at rho 0.96, past the knee
    c = _cluster(src_load=13.5, src_vnfs=(('vm1', 85.0),))
    assert ts.moves(c.strategy(move_rule='speed_floor').execute()) == []
    assert ts.moves(c.strategy(move_rule='queueing').execute()) == [
        ('vm1', 'src', 'dst')]


def test_queueing_rule_moves_the_vnf_that_spares_the_most():
    c = _cluster(src_load=20.0, src_vnfs=(('small', 20.0), ('big', 80.0)))
    assert ts.moves(c.strategy(move_rule='queueing').execute()) == [
        ('big', 'src', 'dst')]


def test_queueing_rule_counts_the_vnfs_that_cannot_move(caplog):
    """A locked VNF still shares the source's cores: moving the small one
    is worth what it spares the locked one too.
    """
    caplog.set_level(logging.INFO, logger=LOGGER)
    c = ts.Cluster()
    c.host('src', 95.0, load=20.0)
    c.host('dst', 10.0, load=1.0)
    c.instance('locked', 'src', cpu=80.0, locked=True)
    c.instance('small', 'src', cpu=20.0)
    solution = c.strategy(move_rule='queueing').execute()
    assert ts.moves(solution) == [('small', 'src', 'dst')]
    src = queueing.HostLoad(12.0, 20.0, (0.8, 0.2), (1.0, 1.0))
    dst = queueing.HostLoad(12.0, 1.0, (), ())
    spared = queueing.move_value(src, 1, dst, 0.0, 0.0, 600).spared_per_s
    assert spared > 5     # the small VNF alone: 0.5 -> 0.25
    assert f'spares {spared:.3f} requests' in caplog.text


def test_queueing_rule_without_load_average_falls_back(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    solution = _cluster(src_load=np.nan).strategy(
        move_rule='queueing').execute()
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    assert 'falling back to speed_floor and instance_choice' in caplog.text


# -- starved_window: the latest minute, not the trigger period's mean ---------

#: 600 s of history at 10 s: a load of ``before`` cores, then ``after``
#: over the last minute (6 samples)
def _rising(before, after):
    return np.r_[np.full(54, float(before)), np.full(6, float(after))]


def _starved(*vnf_cpus):
    """'src' at 80 % CPU (threshold 90) whose load rose from 10 to 20
    cores over the last minute, with VNFs vm1, vm2... using ``vnf_cpus``
    % of their vCPU, and an idle 'dst'.
    """
    c = ts.Cluster()
    c.host('src', 80.0, load=_rising(10.0, 20.0))
    c.host('dst', 10.0)
    for k, cpu in enumerate(vnf_cpus, 1):
        c.instance(f'vm{k}', 'src', cpu=cpu)
    return c


def test_a_host_starved_in_the_last_minute_is_relieved_below_threshold(
        caplog):
    # 80 % CPU over the trigger period (threshold 90), but over the last
    # minute its consumers get 12 / 20 of the CPU they ask for
    caplog.set_level(logging.INFO, logger=LOGGER)
    c = _starved(60.0)
    solution = c.strategy(starved_window=60).execute()
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    ind = ts.indicators(solution)
    assert (ind['hosts_in_failure'], ind['hosts_starved']) == (0, 1)
    assert ('Hosts starved over the last 60 s, relieved before the '
            'threshold (their consumers got less than speed_floor 85 % of '
            'the CPU they ask for): src (load 20.0 on 12 cores)'
            ) in caplog.text
    # valued over that minute: at 12 / 20 vm1 (0.6 cores) is at rho 1.0,
    # past the knee (39 requests), and 1.5 once moved
    spared = float(re.search(r'spares ([\d.]+) requests',
                             caplog.text).group(1))
    assert spared > 30
    # 0: the paper's trigger alone
    caplog.clear()
    solution = c.strategy(starved_window=0).execute()
    assert ts.moves(solution) == []
    assert 'hosts_starved' not in ts.indicators(solution)
    assert 'No host in failure state' in caplog.text


def test_a_host_starved_only_on_average_over_the_minute_is_not():
    # 10 s at 40 cores among 50 s at 10: mean load 15 (12 / 15 = 0.8)
    # but its consumers got min(1, 12 / load) = 0.88 of what they asked
    # for on average, above speed_floor, as the move gate measures it
    c = ts.Cluster()
    c.host('src', 80.0, load=np.r_[np.full(59, 10.0), 40.0])
    c.host('dst', 10.0)
    c.instance('vm1', 'src', cpu=60.0)
    solution = c.strategy(starved_window=60).execute()
    assert ts.indicators(solution)['hosts_starved'] == 0
    assert ts.moves(solution) == []


def test_a_starved_host_also_at_risk_is_one_source():
    # proactive mode: src (80 % CPU) is at risk by the stand-in model
    # (risk 0.8 >= 0.5) and starved; it gives up one VNF, once
    c = _starved(60.0, 60.0)
    solution = c.strategy(mode='proactive', starved_window=60,
                          max_migrations=2).execute()
    assert len(ts.moves(solution)) == 1
    assert ts.indicators(solution)['hosts_starved'] == 1


def test_speed_floor_1_keeps_the_papers_trigger():
    # the testbed's simple rules: speed_floor 1 moves whenever the
    # threshold is crossed, and only then
    c = _starved(60.0)
    assert ts.moves(c.strategy(move_rule='speed_floor', speed_floor=1.0,
                               starved_window=60).execute()) == []


def test_a_starved_host_left_alone_is_not_a_move_not_worth(caplog):
    # its VNF asks for 5 % of a vCPU: at 12 / 20 it is busy 8 % of the
    # time, and moving it spares less than the switch-over costs
    caplog.set_level(logging.INFO, logger=LOGGER)
    c = _starved(5.0)
    solution = c.strategy(starved_window=60).execute()
    assert ts.moves(solution) == []
    ind = ts.indicators(solution)
    assert (ind['hosts_starved'], ind['moves_not_worth']) == (1, 0)
    assert 'Move of vm1 from src to dst not planned' in caplog.text


@pytest.mark.parametrize('window', [0, 60, 600])
def test_a_failing_host_is_valued_over_the_trigger_period(window, caplog):
    # src failing (95 %) whose load rose to 20 over the last minute: over
    # the period (its mean load about 12.8) vm1 is at rho 0.64 and the
    # move does not pay, whatever the window
    caplog.set_level(logging.INFO, logger=LOGGER)
    c = _cluster(src_load=_rising(11.0, 20.0))
    solution = c.strategy(starved_window=window).execute()
    assert ts.moves(solution) == []
    assert ts.indicators(solution)['hosts_in_failure'] == 1
    assert ts.indicators(solution)['moves_not_worth'] == 1
    spared = float(re.search(r'spares ([\d.]+) requests',
                             caplog.text).group(1))
    assert spared < 1
