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

"""gbt_peak: failure risk as the probability that the forecast peak crosses
the threshold (prediction.peak_risk), and the Nystroem SVM's subsample.
"""

import numpy as np
import pytest
from sklearn import metrics

from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import peak_risk
from watcher_failpredict.prediction import traces
from watcher_failpredict.prediction import training

THRESHOLD = 90.0


def _data(n=6000, seed=0, informative=True, level_hi=95.0):
    """Columns: [window mean, level now, x1 (drives the change), noise].

    peak = now + 6 x1 + N(0, 3) when informative, else now + N(0, 3).
    """
    rng = np.random.RandomState(seed)
    now = rng.uniform(40, level_hi, n)
    x1 = rng.normal(size=n)
    X = np.column_stack([now + rng.normal(0, 2, n), now, x1,
                         rng.normal(size=n)])
    peak = now + (6 * x1 if informative else 0) + rng.normal(0, 3, n)
    y = (peak >= THRESHOLD).astype(int)
    return X, y, peak


def _model(**kw):
    kw.setdefault('max_iter', 60)
    return models.make_model('gbt_peak', threshold=THRESHOLD, now_column=1,
                             fallback_column=0, **kw)


def test_probabilities_are_calibrated_and_beat_persistence():
    X, y, peak = _data()
    m = _model().fit(X, y, future_peak=peak)
    assert m.n_calibration_samples_ == 1500 and m.n_fit_samples_ == 4500
    Xt, yt, _ = _data(4000, seed=1)
    p = m.predict_proba(Xt)[:, 1]
    assert np.all((p >= 0) & (p <= 1))
    # calibrated: per decile of predicted risk, observed rate within 0.08
    order = np.argsort(p)
    for part in np.array_split(order, 10):
        assert abs(p[part].mean() - yt[part].mean()) < 0.08
    brier = np.mean((p - yt) ** 2)
    assert brier < 0.5 * np.mean((yt.mean() - yt) ** 2)
    # the change the trees learned from x1 ranks better than the level now
    ap_model = metrics.average_precision_score(yt, p)
    ap_persistence = metrics.average_precision_score(yt, Xt[:, 1])
    assert ap_model > ap_persistence + 0.1


def test_uninformative_history_ranks_like_persistence():
    X, y, peak = _data(informative=False)
    m = _model().fit(X, y, future_peak=peak)
    Xt, yt, _ = _data(3000, seed=2, informative=False)
    p = m.predict_proba(Xt)[:, 1]
    ap_model = metrics.average_precision_score(yt, p)
    ap_persistence = metrics.average_precision_score(yt, Xt[:, 1])
    assert ap_model >= ap_persistence - 0.02
    # risk strictly follows the level where it is not saturated
    mid = (p > 1e-6) & (p < 1 - 1e-6)
    assert mid.sum() > 100
    rho = np.corrcoef(np.argsort(np.argsort(p[mid])),
                      np.argsort(np.argsort(Xt[mid, 1])))[0, 1]
    assert rho > 0.95


def test_rare_failures_and_levels_never_seen_in_training():
    # training levels stay below 86 %: a handful of failures come from
    # x1 alone; a classifier has almost nothing to learn from
    X, y, peak = _data(level_hi=86.0)
    assert 0 < y.sum() < 200
    m = _model().fit(X, y, future_peak=peak)
    # a host already far above the line stays risky (the level anchors it)
    hot = np.array([[97.0, 97.0, 0.0, 0.0], [99.0, 99.0, -0.5, 0.0]])
    assert np.all(m.predict_proba(hot)[:, 1] > 0.9)
    cold = np.array([[45.0, 45.0, 0.0, 0.0]])
    assert m.predict_proba(cold)[0, 1] < 0.01


def test_nan_level_falls_back_and_all_nan_row_is_no_risk():
    X, y, peak = _data()
    m = _model().fit(X, y, future_peak=peak)
    row = np.array([[97.0, np.nan, 0.0, 0.0], [np.nan] * 4])
    p = m.predict_proba(row)[:, 1]
    assert p[0] > 0.9 and p[1] == 0.0


def test_threshold_follows_the_costs():
    X, y, peak = _data()
    lax = _model(cost_fp=1, cost_fn=10).fit(X, y, future_peak=peak)
    strict = _model(cost_fp=10, cost_fn=1).fit(X, y, future_peak=peak)
    assert lax.threshold_ < strict.threshold_
    assert lax.predict(X).sum() > strict.predict(X).sum()


def test_bad_input_is_refused_by_name():
    X, y, peak = _data(200)
    with pytest.raises(ValueError, match='needs future_peak'):
        _model().fit(X, y)
    with pytest.raises(ValueError, match='future_peak has 10 rows'):
        _model().fit(X, y, future_peak=peak[:10])
    with pytest.raises(ValueError, match='now_column must index'):
        models.make_model('gbt_peak', now_column=7).fit(
            X, y, future_peak=peak)
    with pytest.raises(ValueError, match='at least 20 rows'):
        _model().fit(X, y, future_peak=np.full(200, np.nan))
    with pytest.raises(ValueError, match='calibration_fraction'):
        _model(calibration_fraction=1.0).fit(X, y, future_peak=peak)


def test_bandwidth_rule():
    assert peak_risk._bandwidth(np.zeros(50)) == pytest.approx(0.1)
    r = np.random.RandomState(0).normal(0, 4, 1000)
    assert 0.8 < peak_risk._bandwidth(r) < 1.0   # 0.9 * 4 * 1000^-0.2 = 0.90


def test_trained_through_training_api_and_bundle(tmp_path):
    w = traces.synthetic_periodic(n_hosts=6, days=0.5, step=60, seed=3)
    bundle, ev = training.train(w, threshold=85.0, period=300, horizon=600,
                                window=1800, model_kind='gbt_peak',
                                cycle=86400)
    md = bundle.metadata
    assert md['model_kind'] == 'gbt_peak'
    assert md['feature_set'] == 'multiscale'
    assert 0 < md['decision_threshold'] < 1
    assert ev['model']['roc_auc'] > 0.8
    path = str(tmp_path / 'm.pkl')
    digest = bundle_mod.save_bundle(bundle, path)
    loaded = bundle_mod.load_bundle(path, expected_sha256=digest)
    risk = loaded.predict_risk(w)
    assert risk.shape == (6,) and np.all((risk >= 0) & (risk <= 1))
    np.testing.assert_allclose(risk, bundle.predict_risk(w))


def test_nystroem_svm_fits_on_a_stratified_subsample():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(5000, 4))
    y = (X[:, 0] > 1.8).astype(int)          # ~3.6 % failures
    m = models.make_model('svm_nystroem', n_components=50,
                          max_samples=1000).fit(X, y)
    assert m.n_fit_samples_ <= 1001
    # every class keeps its share: the failures are not subsampled away
    assert m.estimator_.classes_.tolist() == [0, 1]
    p = m.predict_proba(X)[:, 1]
    assert metrics.roc_auc_score(y, p) > 0.9


def test_tabulated_risk_matches_the_kernel_sum():
    X, y, peak = _data()
    m = _model().fit(X, y, future_peak=peak)
    Xt, _, _ = _data(2000, seed=4)
    u = m.predict_peak(Xt) - THRESHOLD
    direct = peak_risk._kernel_risk(u, m.residual_quantiles_, m.bandwidth_)
    np.testing.assert_allclose(m.predict_proba(Xt)[:, 1], direct,
                               atol=1e-4)
    assert np.all(np.diff(m.table_p_) >= 0)
    assert m.table_p_[0] < 1e-9 and m.table_p_[-1] > 1 - 1e-9
