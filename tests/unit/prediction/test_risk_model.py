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

"""Every risk model the strategy can be given implements RiskModel."""

import numpy as np
import pytest

from tests.unit.prediction import test_training as synth
from tests.unit.testbed.test_run import SHORT
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import baseline_risk
from watcher_failpredict.prediction import baselines
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import risk_model
from watcher_failpredict.prediction import training
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import scenario

#: 10 s steps, a 100 s window and period, a 50 s horizon.
META = {'model_kind': 'ranking', 'threshold': 90.0, 'period': 100,
        'horizon': 50, 'window': 100, 'granularity': 10}


def _windows(rows):
    rows = np.asarray(rows, dtype=float)
    return metric_windows.ClusterWindows(
        names=tuple(cluster.host_name(i) for i in range(len(rows))),
        times=1000.0 + 10 * np.arange(rows.shape[1]), step=10,
        data={'cpu': rows}, last_seen=np.full(len(rows), 1.0))


#: Three hosts over 12 steps: flat at 60, climbing 20 -> 75, and one
#: without any sample.
FLAT = np.full(12, 60.0)
RISING = np.linspace(20.0, 75.0, 12)
WINDOWS = _windows([FLAT, RISING, np.full(12, np.nan)])


def _all_baselines():
    return [baseline_risk.BaselineRisk(META, name, cycle_s=60)
            for name in baselines.BASELINES]


def _assert_ranking(model, windows):
    assert isinstance(model, risk_model.RiskModel)
    assert model.has_peak_model is False
    risk, peak = model.predict_risk_and_peak(windows)
    assert peak is None
    assert risk.shape == (len(windows.names),)
    np.testing.assert_array_equal(risk, model.predict_risk(windows))
    for key in ('period', 'window', 'granularity'):
        assert model.metadata[key] == META[key]
    return risk


@pytest.mark.parametrize('model', _all_baselines(),
                         ids=lambda m: m.name)
def test_each_baseline_is_a_risk_model_scoring_its_own_baseline(model):
    risk = _assert_ranking(model, WINDOWS)
    # the windows' end is decision time 12: the baseline's own score of
    # the two hosts with data, / 100; no sample ranks last
    cpu = WINDOWS.data['cpu']
    expect = baselines.score(model.name, cpu, np.full(2, 12), np.arange(2),
                             window_steps=10, period_steps=10,
                             horizon_steps=5 if model.name ==
                             'seasonal_naive' else 0, cycle_steps=6)
    np.testing.assert_allclose(risk[:2], np.clip(expect, 0, None) / 100)
    assert risk[2] == baseline_risk.NO_SAMPLE_SCORE / 100
    assert np.argmax(risk) == 2


def test_baseline_values_on_a_flat_and_a_rising_host():
    by_name = {m.name: m.predict_risk(WINDOWS) for m in _all_baselines()}
    last10 = RISING[2:]
    assert by_name['persistence'][:2] == pytest.approx(
        [0.6, last10.mean() / 100])
    assert by_name['least_cpu_now'][:2] == pytest.approx([0.6, 0.75])
    assert by_name['mean_kstd'][:2] == pytest.approx(
        [0.6, (last10.mean() + 2 * last10.std()) / 100])
    # no horizon given: the trend is the line's value at the window's end
    assert by_name['linear_trend'][:2] == pytest.approx([0.6, 0.75])
    # one 60 s cycle (6 steps) back, the peak of the 10-step mean within
    # the 5-step horizon: the flat host is flat, the rising one lower
    assert by_name['seasonal_naive'][0] == pytest.approx(0.6)
    assert by_name['seasonal_naive'][1] < by_name['persistence'][1]


def test_baseline_risk_refuses_unknown_names_and_a_seasonal_without_cycle():
    with pytest.raises(ValueError, match="unknown baseline 'ewma'"):
        baseline_risk.BaselineRisk(META, 'ewma')
    with pytest.raises(ValueError, match='needs the load cycle'):
        baseline_risk.BaselineRisk(META, 'seasonal_naive')


def test_calibrated_baseline_gives_the_calibrators_probability():
    scores = np.linspace(0.0, 100.0, 201)
    y = (scores > 70).astype(int)
    cal = baselines.ScoreCalibrator().fit(scores, y)
    model = baseline_risk.BaselineRisk(META, 'least_cpu_now',
                                       calibrator=cal)
    risk = _assert_ranking(model, WINDOWS)
    np.testing.assert_allclose(risk[:2],
                               cal.predict_proba([60.0, 75.0])[:, 1])
    assert risk[1] > 0.5 > risk[0]
    assert risk[2] == 1.0               # no sample: ranks last


def test_current_cpu_and_random_rankings():
    cur = _assert_ranking(baseline_risk.CurrentCpuRisk(META), WINDOWS)
    np.testing.assert_allclose(cur[:2], [0.6, RISING[2:].mean() / 100])
    assert np.isnan(cur[2])             # no sample: the strategy skips it
    rand = baseline_risk.RandomRisk(META, np.random.default_rng(5))
    assert isinstance(rand, risk_model.RiskModel)
    got, peak = rand.predict_risk_and_peak(WINDOWS)
    assert peak is None
    # one uniform draw per host from the generator it was given
    np.testing.assert_array_equal(got, np.random.default_rng(5).random(3))
    assert not np.array_equal(rand.predict_risk(WINDOWS), got)


def test_testbed_rankings_are_risk_models():
    scn = scenario.validate(SHORT)
    tb = cluster.Testbed(scn, 1)
    tb.run_until(120)
    md = policies.model_metadata(scn)
    history = np.full((tb.n_servers, 400), 50.0)
    times, host, _ = tb.metric_samples(0)
    win = metric_windows.ClusterWindows(
        names=tuple(cluster.host_name(s) for s in range(tb.n_servers)),
        times=times, step=10, data={'cpu': host['cpu']},
        last_seen=np.full(tb.n_servers, times[-1]))
    for model in (policies.OracleRisk(md, tb),
                  policies.SeasonalRisk(md, tb, history)):
        assert isinstance(model, risk_model.RiskModel)
        risk, peak = model.predict_risk_and_peak(win)
        assert peak is None and not model.has_peak_model
        assert risk.shape == (tb.n_servers,)
        assert np.isfinite(risk).all() and (risk >= 0).all()


@pytest.fixture(scope='module')
def trained():
    bundle, _ = training.train(synth.synthetic_windows(1600),
                               max_samples=300)
    return bundle


def test_bundle_is_a_risk_model_with_and_without_its_peak_regressor(
        trained):
    recent = synth.make_windows(synth.patterns(np.arange(1000, 1080)),
                                seed=7)
    assert isinstance(trained, risk_model.RiskModel)
    assert trained.has_peak_model
    risk, peak = trained.predict_risk_and_peak(recent)
    np.testing.assert_array_equal(risk, trained.predict_risk(recent))
    np.testing.assert_array_equal(peak, trained.predict_peak(recent))
    assert risk.shape == peak.shape == (len(recent.names),)
    assert ((risk >= 0) & (risk <= 1)).all()
    old = bundle_mod.ModelBundle(trained.model, trained.metadata)
    assert isinstance(old, risk_model.RiskModel)
    assert not old.has_peak_model
    risk_old, peak_old = old.predict_risk_and_peak(recent)
    assert peak_old is None
    np.testing.assert_array_equal(risk_old, risk)


def test_an_object_missing_a_method_is_not_a_risk_model():
    class RiskOnly:
        metadata = META
        has_peak_model = False

        def predict_risk(self, windows):
            return np.zeros(len(windows.names))

    assert not isinstance(RiskOnly(), risk_model.RiskModel)
    with pytest.raises(NotImplementedError, match='RankingRisk does not '
                       'implement predict_risk'):
        risk_model.RankingRisk(META).predict_risk(WINDOWS)
