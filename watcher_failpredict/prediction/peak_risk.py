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

"""Forecasts of a host's future peak CPU, and failure risk from them.

:class:`PeakRegressor` forecasts the peak itself; every risk bundle carries
one to rank destinations (see its docstring). :class:`PeakRiskClassifier`
(model kind ``gbt_peak``) turns a forecast of the peak's change into a
failure probability:

A host is "in failure within the horizon" exactly when the highest
trigger-period mean CPU it reaches within the horizon (its future peak,
:func:`labels.peak_targets`) is at or above the threshold. A classifier
learns that event from its positive samples alone, and on real traces
there may be a dozen of them (Alibaba machines at 80 %: 15 in a week), so
it learns noise. The peak itself is known for every sample. This model
therefore

1. regresses the peak's *change* from the level now, ``peak - now`` (``now``
   = the trigger-period mean CPU, the failure quantity itself), with
   gradient-boosted trees on every sample; predicting the change rather
   than the peak keeps a host at a level the training data never reached
   anchored at that level (trees cannot extrapolate a level, but a change
   of about zero they can);
2. measures, on the latest rows the trees never saw, how far the real peak
   falls from the prediction (the residuals);
3. gives the probability of failure as the share of those residuals that
   would carry the predicted peak over the threshold, smoothed by a
   Gaussian kernel so that risk is a strictly increasing function of the
   predicted peak:

   ``p = mean_j Phi((now + f(x) + r_j - threshold) / bw)``, a function of
   ``now + f(x) - threshold`` alone, tabulated at fit time.

When ``f`` is 0 the ranking is that of persistence (the level now), the
baseline that is hardest to beat on smooth traces; the trees only move a
host up or down the ranking where the history says its peak will differ
from its level. The alarm threshold is the cost-based one
(:func:`thresholds.cost_threshold`) on the held-back rows.
"""

import numpy as np
from scipy import special
from sklearn import base as sk_base
from sklearn import ensemble
from sklearn.utils import validation
import threadpoolctl

from watcher_failpredict.prediction import empty_columns
from watcher_failpredict.prediction import thresholds

#: The peak regressors fit on at most this many rows (a uniform random
#: subsample). A week of 1-minute data on 100 hosts has ~750,000 training
#: rows, whose neighbours in time are near copies; on all of them a
#: regressor would add ~1 min to training and break its 2-minute budget
#: (bench/training_scale.py), on 50,000 it adds a few seconds. Chosen for
#: that compute budget, not tuned on any result.
DEFAULT_MAX_SAMPLES = 50000

#: The residual distribution is kept as this many quantiles: enough for
#: probabilities to 0.1 %, and scoring 1,000 hosts stays a few ms.
N_RESIDUAL_QUANTILES = 1000

#: The risk, a smooth increasing function of one number (predicted peak
#: minus threshold), is tabulated at fit time on this many points and
#: interpolated when scoring: computing the kernel sum for 1,000 hosts x
#: 1,000 residual quantiles took ~80 ms, over the 50 ms scoring budget.
N_TABLE_POINTS = 4097

#: The table spans the residuals' range widened by this many bandwidths,
#: beyond which the risk is 0 or 1 to within Phi(-8) ~ 6e-16.
_TABLE_MARGIN_BW = 8.0

#: Rows per block of the direct kernel sum (bounds the temporary).
_BLOCK = 4096


def _kernel_risk(u, residuals, bw):
    """mean_j Phi((u + r_j) / bw) for each u (blocked)."""
    u = np.asarray(u, dtype=float)
    out = np.empty(u.shape[0])
    r = np.asarray(residuals, dtype=float)[None, :]
    for lo in range(0, u.shape[0], _BLOCK):
        out[lo:lo + _BLOCK] = special.ndtr(
            (u[lo:lo + _BLOCK, None] + r) / bw).mean(axis=1)
    return out


def _bandwidth(residuals):
    """Silverman's rule of thumb for a Gaussian kernel (CPU points)."""
    r = np.asarray(residuals, dtype=float)
    if r.size < 2:
        return 1.0
    iqr = np.subtract(*np.percentile(r, [75, 25]))
    spread = min(np.std(r), iqr / 1.34) if iqr > 0 else np.std(r)
    # identical residuals (a constant history): a nominal tenth of a point
    return float(max(0.9 * spread * r.size ** -0.2, 0.1))


class PeakRegressor(sk_base.RegressorMixin, sk_base.BaseEstimator):
    """Future peak of a host's trigger-period mean CPU within the horizon.

    Trained beside the failure classifier on the same features, so the
    strategy can still tell destinations apart when every candidate's
    failure probability is ~0: the classifier then says "none will fail"
    and nothing more, while this says how close each one will come to the
    line (see :func:`labels.peak_targets` for the target).
    HistGradientBoostingRegressor (native NaN handling, near-linear in
    samples), squared error by default, i.e. the conditional mean of the
    peak, which is what minimises the expected realised peak of the chosen
    host; ``loss='quantile'`` with ``quantile`` gives an upper quantile
    instead. Hyperparameters are the classifier's (a priori, not tuned).
    Rows whose target is unknown (NaN) are left out.
    """

    def __init__(self, loss='squared_error', quantile=None, max_iter=150,
                 learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20,
                 max_samples=DEFAULT_MAX_SAMPLES, n_threads=1,
                 random_state=0):
        self.loss = loss
        self.quantile = quantile
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y):
        X = validation.check_array(X, ensure_all_finite=False)
        y = np.asarray(y, dtype=float).ravel()
        if y.shape[0] != X.shape[0]:
            raise ValueError(f'X has {X.shape[0]} rows but y has '
                             f'{y.shape[0]}')
        known = ~np.isnan(y)
        if known.sum() < 2:
            raise ValueError('PeakRegressor needs at least 2 rows with a '
                             'known future peak')
        X, y = X[known], y[known]
        if self.max_samples is not None and y.size > self.max_samples:
            rng = np.random.RandomState(self.random_state)
            idx = np.sort(rng.choice(y.size, size=int(self.max_samples),
                                     replace=False))
            X, y = X[idx], y[idx]
        self.empty_columns_ = empty_columns.find(X)
        X = self._fill(X)
        kw = {}
        if self.loss == 'quantile':
            if self.quantile is None or not 0 < self.quantile < 1:
                raise ValueError(f'quantile loss needs quantile in (0, 1), '
                                 f'got {self.quantile!r}')
            kw['quantile'] = self.quantile
        with threadpoolctl.threadpool_limits(self.n_threads):
            self.trees_ = ensemble.HistGradientBoostingRegressor(
                loss=self.loss, max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                early_stopping=False, random_state=self.random_state,
                **kw).fit(X, y)
        self.n_features_in_ = X.shape[1]
        self.n_fit_samples_ = int(y.size)
        return self

    def _fill(self, X):
        return empty_columns.fill(X, self.empty_columns_)

    def predict(self, X):
        """Predicted peak, CPU percent (not clipped: a ranking key)."""
        validation.check_is_fitted(self, 'trees_')
        X = self._fill(np.asarray(X, dtype=float))
        with threadpoolctl.threadpool_limits(self.n_threads):
            return self.trees_.predict(X)

    def describe(self):
        """What the bundle's metadata records about it (JSON)."""
        validation.check_is_fitted(self, 'trees_')
        return {'kind': 'hist_gradient_boosting_regressor',
                'target': 'future peak of the trigger-period mean CPU '
                          'within the horizon (percent)',
                'loss': self.loss, 'quantile': self.quantile,
                'max_iter': self.max_iter,
                'learning_rate': self.learning_rate,
                'max_leaf_nodes': self.max_leaf_nodes,
                'min_samples_leaf': self.min_samples_leaf,
                'n_fit_samples': self.n_fit_samples_}


class PeakRiskClassifier(sk_base.ClassifierMixin, sk_base.BaseEstimator):
    """Probability that the future peak CPU reaches ``threshold``.

    :param threshold: failure threshold, CPU percent (the label's)
    :param now_column: index of the feature holding the level now (the
        trigger-period mean CPU, ``cpu_period_mean``)
    :param fallback_column: feature used as the level where ``now_column``
        is NaN (default 0, the window's mean CPU)
    :param calibration_fraction: latest share of the (time-ordered) rows
        held back from the trees to measure residuals and pick the alarm
        threshold
    :param cost_fp, cost_fn: costs of a false migration / a missed failure
    :param max_samples: cap on the trees' training rows
    Other parameters are HistGradientBoostingRegressor's.

    ``fit(X, y, future_peak)``: rows in time order; ``y`` the failure label
    (used for the alarm threshold), ``future_peak`` the regression target
    (:func:`labels.peak_targets`; NaN rows are left out of the trees).
    """

    def __init__(self, threshold=90.0, now_column=None, fallback_column=0,
                 calibration_fraction=0.25,
                 cost_fp=thresholds.DEFAULT_COST_FALSE_MIGRATION,
                 cost_fn=thresholds.DEFAULT_COST_MISSED_FAILURE,
                 max_iter=150, learning_rate=0.1, max_leaf_nodes=31,
                 min_samples_leaf=20, max_samples=DEFAULT_MAX_SAMPLES,
                 n_threads=1, random_state=0):
        self.threshold = threshold
        self.now_column = now_column
        self.fallback_column = fallback_column
        self.calibration_fraction = calibration_fraction
        self.cost_fp = cost_fp
        self.cost_fn = cost_fn
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y, future_peak=None):
        X, y = validation.check_X_y(X, y, ensure_all_finite=False)
        y = y.astype(int)
        if future_peak is None:
            raise ValueError('PeakRiskClassifier.fit needs future_peak (the '
                             'future peak CPU of every row, '
                             'labels.peak_targets)')
        peak = np.asarray(future_peak, dtype=float).ravel()
        if peak.shape[0] != X.shape[0]:
            raise ValueError(f'future_peak has {peak.shape[0]} rows, X has '
                             f'{X.shape[0]}')
        if self.now_column is None or not (
                0 <= int(self.now_column) < X.shape[1]):
            raise ValueError(f'now_column must index one of the '
                             f'{X.shape[1]} features, got '
                             f'{self.now_column!r}')
        if not 0 < self.calibration_fraction < 1:
            raise ValueError('calibration_fraction must be in (0, 1), got '
                             f'{self.calibration_fraction}')
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])
        delta = peak - self._now(X)
        known = ~np.isnan(delta)
        if known.sum() < 20:
            raise ValueError(f'PeakRiskClassifier needs at least 20 rows '
                             f'with a known level and future peak, got '
                             f'{int(known.sum())}')
        n = y.size
        cut = int(round(n * (1 - self.calibration_fraction)))
        n_fit = int(known[:cut].sum())
        cal_rows = np.flatnonzero(known[cut:]) + cut
        if n_fit < 10 or cal_rows.size < 10:
            raise ValueError('PeakRiskClassifier needs at least 10 rows with '
                             'a known peak on each side of the calibration '
                             f'cut (got {n_fit} and {cal_rows.size})')
        # the change from the level now: a PeakRegressor on that target
        self.regressor_ = PeakRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            max_samples=self.max_samples, n_threads=self.n_threads,
            random_state=self.random_state).fit(X[:cut], delta[:cut])
        resid = delta[cal_rows] - self.regressor_.predict(X[cal_rows])
        qs = (np.arange(N_RESIDUAL_QUANTILES) + 0.5) / N_RESIDUAL_QUANTILES
        self.residual_quantiles_ = np.quantile(resid, qs)
        self.bandwidth_ = _bandwidth(resid)
        margin = _TABLE_MARGIN_BW * self.bandwidth_
        self.table_x_ = np.linspace(
            -self.residual_quantiles_[-1] - margin,
            -self.residual_quantiles_[0] + margin, N_TABLE_POINTS)
        self.table_p_ = _kernel_risk(self.table_x_, self.residual_quantiles_,
                                     self.bandwidth_)
        self.n_fit_samples_ = self.regressor_.n_fit_samples_
        self.n_calibration_samples_ = int(cal_rows.size)
        p_cal = self._proba(X[cut:])
        self.threshold_ = thresholds.cost_threshold(
            p_cal, y[cut:], self.cost_fp, self.cost_fn)
        return self

    def _now(self, X):
        now = X[:, int(self.now_column)]
        return np.where(np.isnan(now), X[:, int(self.fallback_column)], now)

    def predict_peak(self, X):
        """Predicted future peak (CPU percent): level now + change."""
        validation.check_is_fitted(self, 'regressor_')
        X = np.asarray(X, dtype=float)
        return self._now(X) + self.regressor_.predict(X)

    def _proba(self, X):
        u = self.predict_peak(X) - float(self.threshold)
        p = np.interp(u, self.table_x_, self.table_p_)
        # no level at all (NaN features): no evidence of failure
        return np.where(np.isnan(u), 0.0, p)

    def predict_proba(self, X):
        p = self._proba(np.asarray(X, dtype=float))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """1 where the risk reaches the cost-based threshold."""
        validation.check_is_fitted(self, 'threshold_')
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)
