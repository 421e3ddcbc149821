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

"""Proactive mode, the cost-benefit gate and the horizon check.

Through the strategy's public execute() on real Watcher ModelRoot clusters
(the helpers of test_strategy). The stand-in model's risk is a ramp of the
mean CPU over the last 300 s: 0 below 50 %, 1 at 90 %, so that moving load
off a hot host reduces the cluster's risk (a linear risk would make every
move zero-sum) and each expected number can be worked out by hand.
"""

import logging
import warnings

import numpy as np
import pytest

from tests.unit.strategies import test_strategy as ts
from watcher_failpredict import conf as fp_conf
from watcher_failpredict.prediction import risk_model
from watcher_failpredict.strategies import placement
from watcher_failpredict.strategies import predicted_least_failure as plf

LOGGER = ts.LOGGER


class RampRiskBundle(risk_model.RankingRisk):
    """risk = clip((mean CPU of the last 300 s - 50) / 40, 0, 1)."""

    def __init__(self, horizon=600):
        super().__init__(dict(ts.META, horizon=horizon))

    def predict_risk(self, windows):
        cpu = windows.data['cpu'][:, -30:]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            return np.clip((np.nanmean(cpu, axis=1) - 50.0) / 40.0, 0, 1)


def _at_risk_cluster(dst_cpu=10.0):
    """'src' at 80 % (below the 90 % threshold, risk 0.75) with one busy
    2-vCPU VNF (16.7 host points); 'dst' calm.
    """
    c = ts.Cluster()
    c.host('src', 80.0)
    c.host('dst', dst_cpu)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    return c


def test_proactive_triggers_before_the_cpu_threshold(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    solution = _at_risk_cluster().strategy(
        bundle=RampRiskBundle(), mode='proactive',
        risk_threshold=0.5).execute()
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    ind = ts.indicators(solution)
    assert ind['hosts_in_failure'] == 0          # CPU never crossed 90 %
    assert ind['migrations_planned'] == 1
    # risk 0.75 -> 0.33 on src, dst stays at 0
    assert ind['cluster_risk_before'] == pytest.approx(0.75, abs=1e-6)
    assert ind['cluster_risk_after'] == pytest.approx(
        (80 - 100 * 2 / 12 - 50) / 40, abs=1e-6)
    assert 'Hosts at risk' in caplog.text and 'src (0.750)' in caplog.text


def test_reactive_is_the_default_and_ignores_predicted_risk():
    for params in ({}, {'mode': 'reactive'}):
        solution = _at_risk_cluster().strategy(
            bundle=RampRiskBundle(), **params).execute()
        assert ts.moves(solution) == []
    # and a failing host is handled exactly as before
    default = ts._simple().strategy().execute()
    explicit = ts._simple().strategy(mode='reactive').execute()
    assert ts.moves(default) == ts.moves(explicit) == [
        ('vm1', 'src', 'dst')]


def test_risk_below_risk_threshold_does_not_trigger():
    solution = _at_risk_cluster().strategy(
        bundle=RampRiskBundle(), mode='proactive',
        risk_threshold=0.8).execute()
    assert ts.moves(solution) == []


def test_gate_refuses_a_move_whose_cost_exceeds_its_benefit(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    # benefit in VNFs on a failing host: vm1 alone goes from risk 0.75 to
    # dst's 0 (26.7 % with it): 0.750; migration ~20 s / 600 s horizon: a
    # weight of 40 makes the cost ~1.3 > benefit
    solution = _at_risk_cluster().strategy(
        bundle=RampRiskBundle(), mode='proactive', cost_weight=40).execute()
    assert ts.moves(solution) == []
    assert 'not planned: cost exceeds benefit: benefit 0.750 VNFs' in \
        caplog.text
    # the same move with the default weight passes
    ok = _at_risk_cluster().strategy(bundle=RampRiskBundle(),
                                     mode='proactive').execute()
    assert ts.moves(ok) == [('vm1', 'src', 'dst')]


def test_gate_counts_the_destination_vnfs_against_the_move(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    # dst at 60 %: risk 0.25 -> 0.667 with vm1. Empty, it is a better place
    # for vm1 than src (0.75): 0.750 - 0.667 = 0.083 VNFs > ~0.033
    ok = _at_risk_cluster(dst_cpu=60.0).strategy(
        bundle=RampRiskBundle(), mode='proactive',
        risk_threshold=0.7).execute()
    assert ts.moves(ok) == [('vm1', 'src', 'dst')]
    # with two VNFs of its own, their added risk outweighs vm1's gain:
    # before 0.75 x 1 + 0.25 x 2 = 1.25, after 0.667 x 3 = 2.0
    c = _at_risk_cluster(dst_cpu=60.0)
    c.instance('vm2', 'dst', cpu=10.0)
    c.instance('vm3', 'dst', cpu=10.0)
    solution = c.strategy(bundle=RampRiskBundle(), mode='proactive',
                          risk_threshold=0.7).execute()
    assert ts.moves(solution) == []
    assert 'cost exceeds benefit: benefit -0.750 VNFs' in caplog.text
    assert 'x 2 -> 3' in caplog.text


def test_destination_pushed_over_risk_threshold_is_refused(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    solution = _at_risk_cluster(dst_cpu=60.0).strategy(
        bundle=RampRiskBundle(), mode='proactive',
        risk_threshold=0.5).execute()
    assert ts.moves(solution) == []
    assert 'No destination of vm1 stays below risk_threshold 0.5' in \
        caplog.text


def test_non_converging_migration_is_not_planned(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    fp_conf.CONF.set_override('migration_bandwidth_mbps', 100.0,
                              group='failpredict')
    try:
        solution = _at_risk_cluster().strategy(
            bundle=RampRiskBundle(), mode='proactive').execute()
    finally:
        fp_conf.CONF.clear_override('migration_bandwidth_mbps',
                                    group='failpredict')
    assert ts.moves(solution) == []
    assert 'pre-copy does not converge' in caplog.text


def test_failing_host_in_proactive_mode_also_passes_the_gate():
    c = ts.Cluster()
    c.host('src', 95.0)
    c.host('dst', 10.0)
    c.instance('vm1', 'src', cpu=100.0, vcpus=2)
    solution = c.strategy(bundle=RampRiskBundle(), mode='proactive').execute()
    assert ts.moves(solution) == [('vm1', 'src', 'dst')]
    assert ts.indicators(solution)['hosts_in_failure'] == 1


def test_horizon_shorter_than_migration_time_warns(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    # reactive move of a busy 1 GB VNF: ~20 s + 60 s margin > 30 s horizon
    solution = ts._simple().strategy(bundle=RampRiskBundle(horizon=30))
    assert len(ts.moves(solution.execute())) == 1
    warned = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING]
    assert any('predicts 30 s ahead but migrating vm1' in w
               for w in warned), warned
    caplog.clear()
    ts._simple().strategy(bundle=RampRiskBundle(horizon=600)).execute()
    assert 'predicts' not in caplog.text


def test_schema_accepts_mode_and_rejects_bad_values():
    import jsonschema
    from watcher.common import utils
    schema = plf.PredictedLeastFailure.get_schema()
    utils.StrictDefaultValidatingDraft4Validator(schema).validate(
        {'mode': 'proactive', 'risk_threshold': 0.3, 'cost_weight': 0})
    for bad in ({'mode': 'eager'}, {'risk_threshold': 1.5},
                {'cost_weight': -1}):
        with pytest.raises(jsonschema.ValidationError):
            utils.StrictDefaultValidatingDraft4Validator(schema).validate(bad)


# -- the pure rules -----------------------------------------------------------


def test_gate_arithmetic():
    # 3 VNFs on the source, 1 on the destination:
    # before 0.9 x 3 + 0.1 x 1 = 2.8, after 0.2 x 2 + 0.3 x 2 = 1.0
    v = placement.gate(0.9, 0.2, 0.1, 0.3, migration_seconds=60,
                       horizon=600, cost_weight=2.0, src_instances=3,
                       dst_instances=1)
    assert v.benefit == pytest.approx(1.8)
    assert v.cost == pytest.approx(0.2)
    assert v.passed and 'cost 0.200 = 2 x 60 s / 600 s' in v.reason
    assert 'x 3 -> 2 instances' in v.reason and 'x 1 -> 2' in v.reason
    v = placement.gate(0.9, 0.2, 0.1, 0.3, migration_seconds=600,
                       horizon=600, cost_weight=2.0, src_instances=3,
                       dst_instances=1)
    assert not v.passed and v.reason.startswith('cost exceeds benefit')
    # one small VNF off a host it cannot relieve: the source stays at 1.0
    # but the VNF itself escapes it
    v = placement.gate(1.0, 1.0, 0.05, 0.06, 45, 300, 1.0,
                       src_instances=4, dst_instances=4)
    assert v.benefit == pytest.approx(4.0 + 0.2 - 3.0 - 0.3)
    assert v.passed
    # a lone VNF moved to a host as risky as its own: nothing gained
    assert not placement.gate(0.5, 0.0, 0.4, 0.5, 1, 600, 1.0).passed
    # equal cost and benefit: no move (a migration is never free)
    assert not placement.gate(0.5, 0.4, 0, 0.4, 60, 600, 1.0).passed
    assert not placement.gate(0.9, 0.0, 0, 0, float('inf'), 600, 1.0).passed
    assert not placement.gate(float('nan'), 0, 0, 0, 1, 600, 1.0).passed
    with pytest.raises(ValueError, match='horizon'):
        placement.migration_penalty(10, 0, 1.0)
    with pytest.raises(ValueError, match='source holds the moving'):
        placement.gate(0.5, 0.4, 0, 0, 60, 600, 1.0, src_instances=0)


def test_is_at_risk():
    assert placement.is_at_risk(0.5, 0.5)
    assert not placement.is_at_risk(0.49, 0.5)
    assert not placement.is_at_risk(float('nan'), 0.0)
