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

"""The peak regressor and the destination ranking rule that uses it.

The ranking rule (prediction.ranking) is tested on hand-made numbers; the
regressor is really trained by the training API on the synthetic cluster of
test_training; the strategy test uses a transparent stand-in model (every
risk 0, peak = highest CPU sample in the window) so the rule's effect is
visible: the busier host wins because the quiet one had spikes.
"""

import dataclasses
import logging

import joblib
import numpy as np
import pytest

from tests.unit.prediction import test_training as synth
from tests.unit.strategies import test_strategy as ts
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import evaluation as ev
from watcher_failpredict.prediction import labels as lab
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import ranking
from watcher_failpredict.prediction import risk_model
from watcher_failpredict.strategies import placement as pl

# -- the rule -----------------------------------------------------------------


def test_equally_safe_hosts_ranked_by_predicted_peak_not_cpu_now():
    risks = [0.001, 0.0, 0.004]
    peaks = [40.0, 70.0, 55.0]
    cpu_now = [60.0, 10.0, 30.0]      # host 0 is the busiest now
    assert ranking.order(risks, peaks, cpu_now) == [0, 2, 1]
    # the historical rule (no regressor): risk, then CPU now
    assert ranking.order(risks, None, cpu_now) == [1, 0, 2]


def test_material_risk_comes_before_the_peak():
    # host 0 has the lowest peak but a risk 0.2 above the safest
    assert ranking.best([0.2, 0.0, 0.005], [30.0, 80.0, 60.0]) == 2
    # buckets are anchored at the lowest risk: 0.004 and 0.013 differ by
    # less than 0.01, so the peak decides even across a rounding edge
    assert ranking.best([0.004, 0.013], [60.0, 50.0]) == 1
    assert ranking.best([0.004, 0.015], [60.0, 50.0]) == 0
    assert ranking.best([0.004, 0.015], [60.0, 50.0],
                        risk_tolerance=0.05) == 1


def test_nan_risk_dropped_nan_peak_last_and_bad_input():
    assert ranking.order([np.nan, 0.0, 0.0], [10.0, np.nan, 50.0]) == [2, 1]
    assert ranking.best([np.nan], [1.0]) is None
    assert ranking.order([0.0, 0.0], [50.0, 50.0], names=['b', 'a']) == \
        [1, 0]
    with pytest.raises(ValueError, match='risk_tolerance'):
        ranking.order([0.0], [1.0], risk_tolerance=0)
    with pytest.raises(ValueError, match='expected 2 values'):
        ranking.order([0.0, 0.0], [1.0])


def test_rank_destinations_carries_both_numbers():
    ranked = pl.rank_destinations(['a', 'b', 'c'], [0.0, 0.002, np.nan],
                                  [70.0, 20.0, 5.0], [50.0, 65.0, 1.0])
    assert [r.name for r in ranked] == ['a', 'b']
    assert ranked[0].peak == 50.0 and ranked[0].risk == 0.0
    legacy = pl.rank_destinations(['a', 'b'], [0.0, 0.0], [70.0, 20.0])
    assert [r.name for r in legacy] == ['b', 'a']
    assert np.isnan(legacy[0].peak)


def test_destination_regret_with_the_new_rule():
    # decision at t=0: host 0 failing; hosts 1-3 all at risk ~0
    peak = np.array([[96.0], [80.0], [50.0], [65.0]])      # realised
    failing = np.array([[True], [False], [False], [False]])
    risk = np.array([[0.9], [0.003], [0.001], [0.0]])
    cpu_now = np.array([[95.0], [20.0], [60.0], [40.0]])
    good_peak = np.array([[99.0], [85.0], [52.0], [60.0]])
    bad_peak = np.array([[99.0], [40.0], [70.0], [60.0]])
    # no regressor: lowest risk (host 3) -> 65 - 50
    assert ev.destination_regret(risk, peak, failing, [0], None, cpu_now)[
        'mean_regret'] == pytest.approx(15.0)
    # the predicted peak decides among the equally safe
    assert ev.destination_regret(risk, peak, failing, [0], good_peak,
                                 cpu_now)['mean_regret'] == 0.0
    r = ev.destination_regret(risk, peak, failing, [0], bad_peak, cpu_now)
    assert r['mean_regret'] == pytest.approx(30.0)
    assert r['mean_chosen_peak'] == pytest.approx(80.0)
    # a material risk still wins over a low predicted peak
    risky = risk.copy()
    risky[1, 0] = 0.3
    r = ev.destination_regret(risky, peak, failing, [0], bad_peak, cpu_now)
    # host 1 (lowest predicted peak) is out; host 3 (60 < 70) is chosen
    assert r['mean_chosen_peak'] == pytest.approx(65.0)
    assert r['mean_regret'] == pytest.approx(15.0)


# -- the regressor -------------------------------------------------------


def test_peak_regressor_ignores_unknown_targets_and_empty_columns():
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 100, (400, 3))
    X[:, 2] = np.nan                          # a metric the source lacks
    y = X[:, 0] + 10.0
    y[::7] = np.nan
    reg = models.PeakRegressor(max_iter=50, max_samples=300).fit(X, y)
    assert reg.n_fit_samples_ == 300
    pred = reg.predict(np.array([[20.0, 50.0, np.nan],
                                 [80.0, 50.0, np.nan]]))
    assert pred[0] == pytest.approx(30.0, abs=5)
    assert pred[1] == pytest.approx(90.0, abs=5)
    assert reg.describe()['loss'] == 'squared_error'
    with pytest.raises(ValueError, match='quantile'):
        models.PeakRegressor(loss='quantile').fit(X, y)
    with pytest.raises(ValueError, match='known future peak'):
        models.PeakRegressor().fit(X[:3], [np.nan] * 3)


@pytest.fixture(scope='module')
def trained():
    return synth_train()


def synth_train(**kw):
    from watcher_failpredict.prediction import training
    return training.train(synth.synthetic_windows(1600), threshold=90.0,
                          period=300, horizon=600, window=300,
                          model_kind='gbt', **kw)


def test_training_fits_and_records_the_regressor(trained):
    bundle, evaluation = trained
    assert isinstance(bundle.peak_model, models.PeakRegressor)
    assert bundle.has_peak_model
    md = bundle.metadata['peak_model']
    assert md['kind'] == 'hist_gradient_boosting_regressor'
    assert md['n_fit_samples'] == bundle.metadata['n_samples']
    pk = evaluation['peak_model']
    assert pk['n'] > 0
    # it predicts the peak better than "the peak is the level now"
    assert pk['mae'] < pk['mae_persistence']


def test_predict_peak_is_sane_on_known_hosts(trained):
    bundle, _ = trained
    # 80 steps of history, then the 60 steps (600 s) the peak is about
    full = synth.make_windows(synth.patterns(np.arange(1000, 1140)), seed=7)
    recent = dataclasses.replace(
        full, times=full.times[:80],
        data={k: v[:, :80] for k, v in full.data.items()},
        last_seen=np.full(7, full.times[79]))
    assert recent.names == ('sine-a', 'sine-b', 'ramp-a', 'ramp-b',
                            'burst', 'calm-a', 'calm-b')
    peak = bundle.predict_peak(recent)
    by = dict(zip(recent.names, peak))
    assert peak.shape == (len(recent.names),)
    assert np.all((peak > 0) & (peak < 110))
    assert by['calm-a'] == pytest.approx(80.0, abs=5)
    assert by['calm-b'] == pytest.approx(55.0, abs=5)
    # against what really follows
    true = lab.peak_targets(full.data['cpu'], 30, 60, np.full(7, 80),
                            np.arange(7))
    now = lab.rolling_mean(full.data['cpu'], 30)[:, 79]
    assert np.mean(np.abs(peak - true)) < 6.0
    assert np.mean(np.abs(peak - true)) < np.mean(np.abs(now - true))
    # rising hosts: well above their level now, as they will be
    assert by['sine-b'] > now[1] + 8 and by['ramp-a'] > now[2] + 8
    # a host without data: NaN
    cpu = recent.data['cpu'].copy()
    cpu[0] = np.nan
    blind = recent.__class__(names=recent.names, times=recent.times,
                             step=recent.step,
                             data=dict(recent.data, cpu=cpu),
                             last_seen=recent.last_seen)
    out = bundle.predict_peak(blind)
    assert np.isnan(out[0]) and not np.isnan(out[1:]).any()


def test_peak_model_saved_and_loaded(tmp_path, trained):
    bundle, _ = trained
    recent = synth.make_windows(synth.patterns(np.arange(1000, 1080)),
                                seed=7)
    path = tmp_path / 'm.joblib'
    digest = bundle_mod.save_bundle(bundle, path)
    loaded = bundle_mod.load_bundle(path, digest)
    assert loaded.has_peak_model
    np.testing.assert_allclose(loaded.predict_peak(recent),
                               bundle.predict_peak(recent))
    # a peak model that cannot predict is refused
    joblib.dump({'format': bundle_mod.FORMAT,
                 'format_version': bundle_mod.FORMAT_VERSION,
                 'metadata': bundle.metadata, 'model': bundle.model,
                 'peak_model': object()}, tmp_path / 'bad.joblib')
    with pytest.raises(bundle_mod.ModelError, match='peak model'):
        bundle_mod.load_bundle(tmp_path / 'bad.joblib',
                               bundle_mod.file_sha256(tmp_path / 'bad.joblib'))


def test_bundles_without_a_regressor_still_load_and_rank_as_before(
        tmp_path, trained):
    bundle, _ = trained
    md = {k: v for k, v in bundle.metadata.items() if k != 'peak_model'}
    # the payload an older version wrote: no 'peak_model' key at all
    joblib.dump({'format': bundle_mod.FORMAT,
                 'format_version': bundle_mod.FORMAT_VERSION,
                 'metadata': md, 'model': bundle.model},
                tmp_path / 'old.joblib')
    old_path = tmp_path / 'old.joblib'
    old = bundle_mod.load_bundle(old_path, bundle_mod.file_sha256(old_path))
    recent = synth.make_windows(synth.patterns(np.arange(1000, 1080)),
                                seed=7)
    assert not old.has_peak_model
    assert np.isnan(old.predict_peak(recent)).all()
    np.testing.assert_allclose(old.predict_risk(recent),
                               bundle.predict_risk(recent))


def test_training_without_the_regressor():
    bundle, evaluation = synth_train(peak_model=False)
    assert bundle.peak_model is None and 'peak_model' not in \
        bundle.metadata and 'peak_model' not in evaluation


def test_peak_targets_match_the_label():
    cpu = np.array([[10.0, 20.0, 95.0, 95.0, 30.0, 30.0]])
    t = np.array([1, 2, 3])
    peaks = lab.peak_targets(cpu, 1, 2, t, np.zeros(3, int))
    np.testing.assert_allclose(peaks, [95.0, 95.0, 95.0])
    peaks = lab.peak_targets(cpu, 2, 2, t, np.zeros(3, int))
    # period-2 means: 10, 15, 57.5, 95, 62.5, 30
    np.testing.assert_allclose(peaks, [57.5, 95.0, 95.0])


# -- the strategy ------------------------------------------------------------


class ZeroRiskBundle(risk_model.RankingRisk):
    """Stand-in: every risk 0, no peak regressor."""

    def __init__(self):
        super().__init__(ts.META)

    def predict_risk(self, windows):
        return np.zeros(len(windows.names))


class ZeroRiskPeakBundle(ZeroRiskBundle):
    """Stand-in: every risk 0; predicted peak = highest CPU in the window."""

    has_peak_model = True

    def predict_risk_and_peak(self, windows):
        return (self.predict_risk(windows),
                np.nanmax(windows.data['cpu'][:, -30:], axis=1))


def _spiky_cluster():
    c = ts.Cluster()
    c.host('hot', 97.0)
    c.instance('vnf-1', 'hot', cpu=80.0)
    c.host('steady', 50.0)                   # busier now, never above 50
    spiky = np.full(c.n, 15.0)
    spiky[-12:-9] = 85.0                     # recent spikes, mean now ~22
    c.host('spiky', spiky)
    return c


def test_strategy_prefers_lower_predicted_peak_among_zero_risk(caplog):
    c = _spiky_cluster()
    with caplog.at_level(logging.INFO, logger=ts.LOGGER):
        sol = c.strategy(bundle=ZeroRiskPeakBundle()).execute()
    assert ts.moves(sol) == [('vnf-1', 'hot', 'steady')]
    line = [r.getMessage() for r in caplog.records
            if 'Destinations of vnf-1' in r.getMessage()][0]
    # both numbers, peaks with the VNF (80 % of 1 of 12 vCPUs: +6.7 points)
    assert 'steady 0.000 (peak 56.7 %)' in line
    assert 'spiky 0.000 (peak 91.7 %)' in line
    # the same cluster with a model lacking the regressor: lower CPU now
    sol = _spiky_cluster().strategy(bundle=ZeroRiskBundle()).execute()
    assert ts.moves(sol) == [('vnf-1', 'hot', 'spiky')]
