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

"""The calibrated gradient-boosted risk model, its cost threshold, the
Nystroem SVM and the multiscale feature set in bundles.
"""

import numpy as np
import pytest

from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import traces
from watcher_failpredict.prediction import training


def test_bayes_threshold():
    assert models.bayes_threshold(1, 5) == pytest.approx(1 / 6)
    assert models.bayes_threshold(1, 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match='costs must be positive'):
        models.bayes_threshold(0, 1)


def test_cost_threshold_minimises_cost_on_given_data():
    proba = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0])
    # equal costs: alarm on the top two (cost 1: one FN) or top four
    # (cost 1: one FP); ties go to fewer alarms -> threshold 0.8
    assert models.cost_threshold(proba, y, 1, 1) == pytest.approx(0.8)
    # a missed failure 5x worse: alarm down to 0.4 (cost 1 FP)
    assert models.cost_threshold(proba, y, 1, 5) == pytest.approx(0.4)
    # false migrations very costly: only the alarms that are sure
    assert models.cost_threshold(proba, y, 100, 1) == pytest.approx(0.8)
    # ... and none when the top score is a false alarm
    assert models.cost_threshold([0.9, 0.5], [0, 1], 100, 1) > 0.9
    assert models.cost_threshold(proba, np.zeros(6, int), 1, 5) == \
        pytest.approx(1 / 6)
    with pytest.raises(ValueError, match='differ'):
        models.cost_threshold(proba, y[:3], 1, 1)


def _data(n=4000, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    X[rng.uniform(size=n) < 0.05, 2] = np.nan     # HGB handles NaN
    logit = 2.5 * X[:, 0] - 1.5 * X[:, 1] - 2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_gbt_is_calibrated_and_threshold_follows_the_costs():
    X, y = _data()
    m = models.make_model('gbt', cost_fp=1, cost_fn=5, max_iter=60).fit(X, y)
    assert m.calibrated_ and m.n_calibration_samples_ == 1000
    assert 0 < m.threshold_ < 0.5
    Xt, yt = _data(2000, seed=1)
    p = m.predict_proba(Xt)[:, 1]
    assert p.min() >= 0 and p.max() <= 1
    brier = np.mean((p - yt) ** 2)
    assert brier < np.mean((yt.mean() - yt) ** 2) * 0.8
    # calibrated: mean predicted close to observed rate
    assert abs(p.mean() - yt.mean()) < 0.05
    strict = models.make_model('gbt', cost_fp=5, cost_fn=1,
                               max_iter=60).fit(X, y)
    assert strict.threshold_ > m.threshold_
    assert set(m.predict(Xt)) <= {0, 1}


def test_gbt_without_late_positives_falls_back_to_bayes_threshold():
    X, y = _data(2000)
    y[1500:] = 0                     # calibration slice has one class
    m = models.make_model('gbt', max_iter=20).fit(X, y)
    assert not m.calibrated_
    assert m.threshold_ == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match='both classes'):
        models.make_model('gbt').fit(X, np.zeros(2000, int))


def test_nystroem_svm_fits_and_rejects_unknown_params():
    X, y = _data(3000)
    m = models.make_model('svm_nystroem', n_components=100).fit(X, y)
    p = m.predict_proba(X)[:, 1]
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, p) > 0.8
    with pytest.raises(ValueError, match='unknown svm_nystroem'):
        models.make_model('svm_nystroem', landmarks=3)
    with pytest.raises(ValueError, match='unknown model kind'):
        models.make_model('xgb')


def test_multiscale_names_and_cycle_columns():
    params = feature_sets.default_params(30, 5, cycle=3600)
    names = feature_sets.feature_names('multiscale', params)
    assert names[:14] == feature_sets.feature_names('v1')
    assert names[-2:] == ['cycle_sin', 'cycle_cos']
    cpu = np.tile(np.linspace(10, 40, 30), (2, 1))
    arrays = [cpu] + [np.full_like(cpu, np.nan)] * 4
    X = feature_sets.features_from_arrays(arrays, np.array([0.0, 900.0]),
                                          'multiscale', params)
    assert X.shape == (2, len(names))
    assert X[0, names.index('cycle_cos')] == pytest.approx(1.0)
    assert X[1, names.index('cycle_sin')] == pytest.approx(1.0)
    assert X[0, names.index('cpu_lag1')] == pytest.approx(40.0)
    assert X[0, names.index('cpu_period_mean')] == pytest.approx(
        np.mean(np.linspace(10, 40, 30)[-5:]))
    empty = feature_sets.features_from_arrays(
        [np.full_like(cpu, np.nan)] * 5, 0.0, 'multiscale', params)
    assert np.isnan(empty).all()
    with pytest.raises(ValueError, match='unknown feature set'):
        feature_sets.feature_names('v2')


def test_gbt_bundle_round_trip_and_v1_bundles_still_load(tmp_path):
    w = traces.synthetic_periodic(n_hosts=6, days=0.5, step=60)
    b, ev = training.train(w, threshold=90, period=300, horizon=600,
                           window=1800, model_kind='gbt', cycle=3600)
    md = b.metadata
    assert md['model_kind'] == 'gbt' and md['feature_set'] == 'multiscale'
    assert md['feature_params']['cycle'] == 3600
    assert 0 < md['decision_threshold'] < 1
    path = tmp_path / 'gbt.joblib'
    digest = bundle_mod.save_bundle(b, path)
    loaded = bundle_mod.load_bundle(path, digest)
    risk = loaded.predict_risk(w)
    assert risk.shape == (6,) and np.all((risk >= 0) & (risk <= 1))
    assert ev['model']['roc_auc'] > 0.9
    v1, _ = training.train(w, threshold=90, period=300, horizon=600,
                           window=1800, model_kind='svm', max_samples=500)
    assert v1.metadata['feature_set'] == 'v1'
    v1_digest = bundle_mod.save_bundle(v1, tmp_path / 'svm.joblib')
    assert bundle_mod.load_bundle(tmp_path / 'svm.joblib', v1_digest
                                  ).predict_risk(w).shape == (6,)
    # a bundle whose names do not match its feature set is refused
    md['feature_names'] = md['feature_names'][:-1]
    bad_digest = bundle_mod.save_bundle(b, tmp_path / 'bad.joblib')
    with pytest.raises(bundle_mod.ModelError, match='feature names'):
        bundle_mod.load_bundle(tmp_path / 'bad.joblib', bad_digest)
