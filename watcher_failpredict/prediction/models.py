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
from sklearn import impute
from sklearn import pipeline
from sklearn import preprocessing
from sklearn import svm
from sklearn.utils import validation

#: SVC's fit time grows between quadratically and cubically with the number
#: of samples, and the probability calibration fits it five more times
#: (internal Platt-scaling cross-validation). 4000 samples fit in seconds;
#: a day of 10 s data on 50 hosts is 400,000 samples, which would take
#: hours. The samples of one history are strongly autocorrelated, so a
#: stratified subsample loses little.
DEFAULT_MAX_SAMPLES = 4000

MODEL_KINDS = ('svm', 'fixed_hosts')


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


def make_model(kind='svm', random_state=0, **params):
    """A fresh, unfitted estimator of the given kind.

    ``svm``: Pipeline(SimpleImputer, StandardScaler, SubsampledClassifier(
    CalibratedClassifierCV(SVC(rbf, balanced), sigmoid, cv=5,
    ensemble=False))), i.e. SVC with probability=True as scikit-learn now
    spells it. params: C, gamma, max_samples.

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
    if kind == 'fixed_hosts':
        return FixedHostDestinationClassifier(random_state=random_state,
                                              **params)
    raise ValueError(f'unknown model kind {kind!r}; known: {MODEL_KINDS}')
