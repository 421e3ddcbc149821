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

"""The estimators: per-host failure risk (default) and the paper's framing.

``svm`` (default): one sample per host and time; the model answers "will
this host be in failure state within the horizon?" with a probability. It
scores any host from its own features, so hosts added after training are
scored too. As in the paper, the classifier is scikit-learn's SVM (RBF
kernel), in a pipeline that imputes missing non-CPU features and scales.

``fixed_hosts``: the paper's own framing, kept for evaluation. The input is
the concatenation of the features of a fixed, ordered list of hosts and the
class is the index of the best destination (lowest future peak CPU). It
cannot score a host set other than the one it was trained on.
"""

import numpy as np
from sklearn import base as sk_base
from sklearn import calibration
from sklearn import ensemble
from sklearn import frozen
from sklearn import impute
from sklearn import kernel_approximation
from sklearn import pipeline
from sklearn import preprocessing
from sklearn import svm
from sklearn.utils import validation
import threadpoolctl

from watcher_failpredict.prediction import empty_columns
from watcher_failpredict.prediction import peak_risk
from watcher_failpredict.prediction import thresholds

#: SVC's fit time grows between quadratically and cubically with the number
#: of samples, and the probability calibration fits it five more times
#: (internal Platt-scaling cross-validation). 4000 samples fit in seconds;
#: a day of 10 s data on 50 hosts is 400,000 samples, which would take
#: hours. The samples of one history are strongly autocorrelated, so a
#: stratified subsample loses little.
DEFAULT_MAX_SAMPLES = 4000

MODEL_KINDS = ('svm', 'svm_nystroem', 'gbt', 'gbt_peak', 'gbt_peak_cycle',
               'fixed_hosts')

#: Kinds answering "will this host fail within the horizon?" per host.
RISK_KINDS = ('svm', 'svm_nystroem', 'gbt', 'gbt_peak', 'gbt_peak_cycle')

#: Kinds whose fit() also needs the future peak (``future_peak=``).
PEAK_TARGET_KINDS = ('gbt_peak', 'gbt_peak_cycle')

#: The feature set (see feature_sets) each kind is trained on.
#: ``gbt_peak_cycle`` is ``gbt_peak`` on the cyclic set: the same learner,
#: also shown each host's last load cycle and its forecasters' errors.
FEATURE_SET = {'svm': 'v1', 'svm_nystroem': 'v1', 'gbt': 'multiscale',
               'gbt_peak': 'multiscale', 'gbt_peak_cycle': 'cyclic',
               'fixed_hosts': 'v1'}

#: Default costs and the threshold rules live in thresholds (shared with
#: peak_risk); kept here under their old names.
DEFAULT_COST_FALSE_MIGRATION = thresholds.DEFAULT_COST_FALSE_MIGRATION
DEFAULT_COST_MISSED_FAILURE = thresholds.DEFAULT_COST_MISSED_FAILURE
bayes_threshold = thresholds.bayes_threshold
cost_threshold = thresholds.cost_threshold

#: Fewer failures than this in the calibration slice: the trees'
#: probabilities are kept (a map fitted on 3 failures is noise).
MIN_CALIBRATION_FAILURES = 10


def stratified_subsample(y, max_samples, random_state=0):
    """Indices of at most max_samples rows keeping each class's share.

    Every class present keeps at least one row, so a rare failure class is
    never subsampled away.
    """
    y = np.asarray(y)
    n = y.shape[0]
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    rng = np.random.RandomState(random_state)
    chosen = []
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        k = max(1, int(round(max_samples * rows.size / n)))
        chosen.append(rng.choice(rows, size=min(k, rows.size),
                                 replace=False))
    return np.sort(np.concatenate(chosen))


class SubsampledClassifier(sk_base.ClassifierMixin, sk_base.BaseEstimator):
    """Fit ``estimator`` on a stratified subsample of at most max_samples.

    Lets a pipeline containing a super-linear learner (SVC) be fitted on a
    history of any length; prediction is unaffected.
    """

    def __init__(self, estimator=None, max_samples=DEFAULT_MAX_SAMPLES,
                 random_state=0):
        self.estimator = estimator
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y):
        X, y = validation.check_X_y(X, y, ensure_all_finite=False)
        if self.estimator is None:
            raise ValueError('SubsampledClassifier needs an estimator')
        idx = stratified_subsample(y, self.max_samples, self.random_state)
        self.estimator_ = sk_base.clone(self.estimator).fit(X[idx], y[idx])
        self.classes_ = self.estimator_.classes_
        self.n_fit_samples_ = int(idx.size)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        validation.check_is_fitted(self, 'estimator_')
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        validation.check_is_fitted(self, 'estimator_')
        return self.estimator_.predict_proba(X)

    def decision_function(self, X):
        validation.check_is_fitted(self, 'estimator_')
        return self.estimator_.decision_function(X)


def _svc(random_state, C=1.0, gamma='scale'):
    """RBF SVC with Platt-scaled probabilities.

    This is what ``SVC(probability=True)`` does (a sigmoid fitted on 5-fold
    internal cross-validation, one final SVC), spelled the way scikit-learn
    1.9 asks for since it deprecated that parameter.
    """
    return calibration.CalibratedClassifierCV(
        svm.SVC(kernel='rbf', C=C, gamma=gamma, class_weight='balanced',
                random_state=random_state),
        method='sigmoid', cv=5, ensemble=False)


def _pipeline(estimator):
    return pipeline.Pipeline([
        ('impute', impute.SimpleImputer(strategy='median')),
        ('scale', preprocessing.StandardScaler()),
        ('classify', estimator),
    ])


class FixedHostDestinationClassifier(sk_base.ClassifierMixin,
                                     sk_base.BaseEstimator):
    """The paper's classifier: which of a fixed host list is the best target.

    ``X`` rows are the concatenated features of ``hosts`` (in that order);
    ``y`` is the index into ``hosts`` of the best destination. The class
    set, and so the model, is tied to ``hosts``: :meth:`check_hosts` refuses
    any other host list, which is why this is not the default model.
    """

    def __init__(self, hosts=(), C=1.0, gamma='scale',
                 max_samples=DEFAULT_MAX_SAMPLES, random_state=0):
        self.hosts = hosts
        self.C = C
        self.gamma = gamma
        self.max_samples = max_samples
        self.random_state = random_state

    def check_hosts(self, names):
        """Raise ValueError unless ``names`` is the trained host list."""
        validation.check_is_fitted(self, 'hosts_')
        if tuple(names) != self.hosts_:
            missing = sorted(set(self.hosts_) - set(names))
            extra = sorted(set(names) - set(self.hosts_))
            raise ValueError(
                'the fixed_hosts model can only score the host list it was '
                f'trained on, in that order ({len(self.hosts_)} hosts); '
                f'missing {missing}, unknown {extra}; train a new model or '
                'use model_kind svm, which scores any host')

    def fit(self, X, y):
        hosts = tuple(self.hosts)
        if not hosts:
            raise ValueError('FixedHostDestinationClassifier needs hosts')
        X, y = validation.check_X_y(X, y, ensure_all_finite=False)
        if X.shape[1] % len(hosts):
            raise ValueError(f'X has {X.shape[1]} columns, not a multiple '
                             f'of {len(hosts)} hosts')
        if y.min() < 0 or y.max() >= len(hosts):
            raise ValueError(f'y must be host indices in [0, {len(hosts)})')
        self.hosts_ = hosts
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.arange(len(hosts))
        present = np.unique(y)
        if present.size == 1:
            # one host always best: nothing to learn, answer it
            self.constant_ = int(present[0])
            self.pipeline_ = None
            return self
        self.constant_ = None
        self.pipeline_ = _pipeline(SubsampledClassifier(
            _svc(self.random_state, self.C, self.gamma), self.max_samples,
            self.random_state)).fit(X, y)
        return self

    def predict_proba(self, X):
        """Probability of each host (column) being the best destination."""
        validation.check_is_fitted(self, 'hosts_')
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f'X must have {self.n_features_in_} columns '
                             f'(features of {len(self.hosts_)} hosts), got '
                             f'shape {X.shape}')
        out = np.zeros((X.shape[0], len(self.hosts_)))
        if self.pipeline_ is None:
            out[:, self.constant_] = 1.0
            return out
        proba = self.pipeline_.predict_proba(X)
        out[:, self.pipeline_.classes_.astype(int)] = proba
        return out

    def predict(self, X):
        return np.argmax(self.predict_proba(X), axis=1)


class CalibratedRiskClassifier(sk_base.ClassifierMixin,
                               sk_base.BaseEstimator):
    """Gradient-boosted failure risk, calibrated, with a cost threshold.

    Rows must be in time order (training sorts them). The earliest
    ``1 - calibration_fraction`` of them fit a HistGradientBoosting
    classifier (native NaN handling, near-linear in samples); the latest
    part, never seen by the trees, fits the probability map
    (``CalibratedClassifierCV`` on the frozen trees: isotonic with enough
    failures, sigmoid otherwise) and then the decision threshold
    ``threshold_`` minimising ``cost_fp * FP + cost_fn * FN`` there. The
    test stretch is never used. If the calibration part has a single class,
    the trees' own probabilities are kept and the threshold is the Bayes
    one for the costs (``calibrated_`` is False).
    """

    def __init__(self, cost_fp=DEFAULT_COST_FALSE_MIGRATION,
                 cost_fn=DEFAULT_COST_MISSED_FAILURE,
                 calibration_fraction=0.25, max_iter=150,
                 learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20,
                 n_threads=1, random_state=0):
        self.cost_fp = cost_fp
        self.cost_fn = cost_fn
        self.calibration_fraction = calibration_fraction
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y):
        """Fit trees, calibration and threshold (OpenMP threads limited to
        n_threads: on a busy 2-core host, spinning OpenMP workers made a
        1 s fit take 7 s).
        """
        with threadpoolctl.threadpool_limits(self.n_threads):
            return self._fit(X, y)

    def _fit(self, X, y):
        X, y = validation.check_X_y(X, y, ensure_all_finite=False)
        y = y.astype(int)
        if not 0 < self.calibration_fraction < 1:
            raise ValueError('calibration_fraction must be in (0, 1), got '
                             f'{self.calibration_fraction}')
        if np.unique(y).size < 2:
            raise ValueError('CalibratedRiskClassifier needs both classes '
                             'in the training rows')
        # a metric a source never has (traces: no disk/net) is an all-NaN
        # column, which HistGradientBoosting cannot bin: make it constant
        self.empty_columns_ = empty_columns.find(X)
        X = self._fill(X)
        n = y.size
        cut = int(round(n * (1 - self.calibration_fraction)))
        if np.unique(y[:cut]).size < 2:
            cut = n     # every failure is late: fit on everything
        self.trees_ = ensemble.HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=self.random_state).fit(X[:cut], y[:cut])
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        X_cal, y_cal = X[cut:], y[cut:]
        n_pos = int(y_cal.sum())
        self.calibrated_ = (MIN_CALIBRATION_FAILURES <= n_pos < y_cal.size)
        if self.calibrated_:
            method = 'isotonic' if n_pos >= 100 else 'sigmoid'
            cal = calibration.CalibratedClassifierCV(
                frozen.FrozenEstimator(self.trees_),
                method=method).fit(X_cal, y_cal)
            raw = self.trees_.predict_proba(X_cal)[:, 1]
            mapped = cal.predict_proba(X_cal)[:, 1]
            # a sigmoid fitted on a handful of failures can come out
            # decreasing and invert the trees' ranking: refuse that map
            if np.std(raw) > 0 and np.std(mapped) > 0 and \
                    np.corrcoef(raw, mapped)[0, 1] < 0:
                self.calibrated_ = False
        if self.calibrated_:
            self.calibrator_ = cal
            self.calibration_method_ = method
            self.threshold_ = cost_threshold(mapped, y_cal, self.cost_fp,
                                             self.cost_fn)
        else:
            self.calibrator_ = None
            self.calibration_method_ = None
            self.threshold_ = bayes_threshold(self.cost_fp, self.cost_fn)
        self.n_fit_samples_ = int(cut)
        self.n_calibration_samples_ = int(n - cut)
        return self

    def predict_proba(self, X):
        validation.check_is_fitted(self, 'trees_')
        X = self._fill(np.asarray(X, dtype=float))
        est = self.calibrator_ or self.trees_
        with threadpoolctl.threadpool_limits(self.n_threads):
            return est.predict_proba(X)

    def _fill(self, X):
        return empty_columns.fill(X, self.empty_columns_)

    def predict(self, X):
        """1 where the risk reaches the cost-based threshold."""
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)


#: The peak regressor lives with the other peak forecast (peak_risk);
#: kept here under its old names (bundles pickled before refer to it so).
DEFAULT_PEAK_MAX_SAMPLES = peak_risk.DEFAULT_MAX_SAMPLES
PeakRegressor = peak_risk.PeakRegressor


def make_peak_model(random_state=0, **params):
    """A fresh, unfitted :class:`PeakRegressor` (params: its constructor's)."""
    return PeakRegressor(random_state=random_state, **params)


#: The Nystroem SVM fits on a stratified subsample of at most this many
#: rows. Its fit is linear in rows, but LinearSVC on 300 kernel components
#: runs three times for the calibration folds: on all 750,000 training rows
#: of a week of 1-minute data on 100 hosts it took 655 s
#: (bench/training_scale.py), four times the 2-minute budget. Neighbouring
#: rows of one host are near copies. Chosen for that budget, not tuned on
#: any result.
DEFAULT_NYSTROEM_MAX_SAMPLES = 50000


def _nystroem_svm(random_state, C=1.0, n_components=300, gamma=None,
                  max_samples=DEFAULT_NYSTROEM_MAX_SAMPLES):
    """RBF SVM at scale: Nystroem feature map + linear SVM, calibrated.

    The Nystroem map approximates the RBF kernel with n_components
    landmark samples, so fitting is linear in the number of samples
    instead of SVC's quadratic-to-cubic cost, and the whole pipeline fits
    on a stratified subsample of at most max_samples rows (every failure
    kept in its share). Probabilities from a sigmoid (Platt) fitted by
    CalibratedClassifierCV on 3 folds.
    """
    return SubsampledClassifier(pipeline.Pipeline([
        ('impute', impute.SimpleImputer(strategy='median')),
        ('scale', preprocessing.StandardScaler()),
        ('map', kernel_approximation.Nystroem(
            kernel='rbf', gamma=gamma, n_components=n_components,
            random_state=random_state)),
        ('classify', calibration.CalibratedClassifierCV(
            svm.LinearSVC(C=C, class_weight='balanced',
                          random_state=random_state),
            method='sigmoid', cv=3)),
    ]), max_samples=max_samples, random_state=random_state)


def make_model(kind='svm', random_state=0, **params):
    """A fresh, unfitted estimator of the given kind.

    ``svm``: Pipeline(SimpleImputer, StandardScaler, SubsampledClassifier(
    CalibratedClassifierCV(SVC(rbf, balanced), sigmoid, cv=5,
    ensemble=False))), i.e. SVC with probability=True as scikit-learn now
    spells it. params: C, gamma, max_samples.

    ``svm_nystroem``: the SVM made to scale (see _nystroem_svm); params:
    C, n_components, gamma, max_samples.

    ``gbt``: CalibratedRiskClassifier (gradient-boosted trees on the
    multiscale feature set, calibrated, cost-based threshold); params: its
    constructor's (cost_fp, cost_fn, max_iter, ...).

    ``gbt_peak``: peak_risk.PeakRiskClassifier (the probability that the
    future peak, forecast by gradient-boosted trees, crosses the
    threshold; its fit() also takes ``future_peak``); params: its
    constructor's (threshold and now_column are required in practice).

    ``fixed_hosts``: FixedHostDestinationClassifier; params: hosts (the
    ordered host list, required), C, gamma, max_samples.
    """
    if kind == 'svm':
        unknown = set(params) - {'C', 'gamma', 'max_samples'}
        if unknown:
            raise ValueError(f'unknown svm parameter(s) {sorted(unknown)}')
        return _pipeline(SubsampledClassifier(
            _svc(random_state, params.get('C', 1.0),
                 params.get('gamma', 'scale')),
            max_samples=params.get('max_samples', DEFAULT_MAX_SAMPLES),
            random_state=random_state))
    if kind == 'svm_nystroem':
        unknown = set(params) - {'C', 'n_components', 'gamma',
                                 'max_samples'}
        if unknown:
            raise ValueError(f'unknown svm_nystroem parameter(s) '
                             f'{sorted(unknown)}')
        return _nystroem_svm(random_state, **params)
    if kind == 'gbt':
        return CalibratedRiskClassifier(random_state=random_state, **params)
    if kind in PEAK_TARGET_KINDS:
        return peak_risk.PeakRiskClassifier(random_state=random_state,
                                            **params)
    if kind == 'fixed_hosts':
        return FixedHostDestinationClassifier(random_state=random_state,
                                              **params)
    raise ValueError(f'unknown model kind {kind!r}; known: {MODEL_KINDS}')
