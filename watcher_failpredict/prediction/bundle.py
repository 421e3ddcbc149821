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

"""The model bundle: one file holding a fitted model and what it means.

A bundle is a joblib pickle of ``{'format', 'format_version', 'metadata',
'model'}`` and, since the peak regressor, ``'peak_model'`` (absent or None
in older bundles, which load and rank exactly as before). The metadata
says which features (schema version and names), which failure definition
(threshold, period), horizon, window and granularity the model was
trained for, on what data and with which libraries, and how it scored on
held-out data; the strategy checks it before trusting the model.

A pickle is code. :func:`load_bundle` therefore reads the file once into
memory, checks its sha256 against the expected digest (``[failpredict]
model_sha256``) and only then unpickles those same bytes, so neither a
tampered file nor a file swapped between check and load is ever executed.
:func:`save_bundle` writes atomically: readers see the old file or the new
one, never half a file.
"""

import hashlib
import io
import logging
import math
import numbers
import os

import joblib
import numpy as np
from sklearn import exceptions as sk_exceptions
from sklearn.utils import validation as sk_validation

from watcher_failpredict import atomic
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import features as feat
from watcher_failpredict.prediction import models

LOG = logging.getLogger(__name__)

FORMAT = 'watcher-failpredict-model'
FORMAT_VERSION = 1

REQUIRED_METADATA = (
    'format', 'format_version', 'feature_schema_version', 'feature_names',
    'model_kind', 'threshold', 'period', 'horizon', 'window', 'granularity',
    'training_span', 'hosts_seen', 'n_samples', 'positive_rate',
    'library_versions', 'created_at', 'evaluation',
)


#: Sane bounds of the metadata the strategy relies on (seconds). A
#: granularity, period or horizon beyond the audit parameters' own maxima
#: (strategies/parameters.py) could never match an audit.
MAX_GRANULARITY = 3600
MAX_PERIOD = 86400
MAX_HORIZON = 86400
#: Most window steps a model may need: the strategy reads at most this many
#: steps per host (strategies.parameters.MAX_WINDOW_STEPS, the same
#: number; a test pins them equal).
MAX_WINDOW_STEPS = 8640


class ModelError(Exception):
    """A model bundle cannot be used; the message names the file and why."""


def unverified_warning(path):
    """Log that ``path`` is used without a digest check (every load)."""
    LOG.warning('Model bundle %s is loaded WITHOUT a sha256 check '
                '(allow_unverified_model): a model file is a pickle, i.e. '
                'code, and anyone who can replace it runs code here. Set '
                '[failpredict] model_sha256 to the digest that '
                '"watcher-failpredict show-model %s" prints.', path, path)


def failure_probability(classifier, X):
    """Probability of class 1 (failure) per row of ``X``."""
    proba = classifier.predict_proba(X)
    # every model kind has classes_; a classifier without them is read as
    # ordering its columns (0, 1)
    classes = list(getattr(classifier, 'classes_', (0, 1)))
    return proba[:, classes.index(1)]


class ModelBundle:
    """A fitted model plus its metadata (see REQUIRED_METADATA).

    ``peak_model``: optional regressor of the future peak CPU (see
    :class:`peak_risk.PeakRegressor`), on the same features as ``model``;
    metadata ``peak_model`` describes it.

    Implements :class:`risk_model.RiskModel`, the interface the strategy
    ranks hosts through.
    """

    def __init__(self, model, metadata, peak_model=None):
        self.model = model
        self.metadata = dict(metadata)
        self.peak_model = peak_model

    @property
    def has_peak_model(self):
        """Whether :meth:`predict_peak` can answer (else all NaN)."""
        return self.peak_model is not None

    def __repr__(self):
        md = self.metadata
        return (f'<ModelBundle {md.get("model_kind")} threshold='
                f'{md.get("threshold")} horizon={md.get("horizon")}s>')

    @property
    def window_steps(self):
        return max(1, int(round(self.metadata['window'] /
                                self.metadata['granularity'])))

    def check_windows(self, windows):
        """Refuse windows at another granularity than the model's."""
        granularity = int(self.metadata['granularity'])
        if int(windows.step) != granularity:
            raise ValueError(
                f'windows have a {windows.step} s step but the model was '
                f'trained on {granularity} s; read the metrics with '
                f'granularity={granularity}')

    def features(self, windows):
        """Per-host features ``(n_hosts, n_features)`` as the model sees."""
        self.check_windows(windows)
        return feature_sets.host_features(
            windows, self.window_steps,
            self.metadata.get('feature_set', 'v1'),
            self.metadata.get('feature_params'))

    def predict_risk(self, windows):
        """Probability that each host fails within the horizon.

        :param windows: ClusterWindows of host metrics, at the model's
            granularity, covering at least the model's window (shorter
            histories count as missing samples)
        :returns: array (n_hosts,); NaN for hosts that cannot be evaluated
            (no CPU sample in the window)
        """
        return self._risk(windows, self.features(windows))

    def _risk(self, windows, X):
        risk = np.full(len(windows.names), np.nan)
        ok = ~np.isnan(X[:, 0]) if X.size else np.zeros(0, dtype=bool)
        if not ok.any():
            return risk
        kind = self.metadata.get('model_kind', 'svm')
        if kind == 'fixed_hosts':
            self.model.check_hosts(windows.names)
            p_best = self.model.predict_proba(X.reshape(1, -1))[0]
            risk[ok] = 1.0 - p_best[ok]
            return risk
        risk[ok] = failure_probability(self.model, X[ok])
        return risk

    def predict_peak(self, windows):
        """Predicted future peak of each host's trigger-period mean CPU.

        The highest period-mean CPU (percent) the host is expected to
        reach within the horizon: the destination ranking's second key
        when failure risks do not separate the candidates.

        :returns: array (n_hosts,); NaN for hosts that cannot be evaluated
            and everywhere when the bundle has no peak regressor
        """
        peak = np.full(len(windows.names), np.nan)
        if self.peak_model is None:
            return peak
        return self._peak(windows, self.features(windows))

    def _peak(self, windows, X):
        peak = np.full(len(windows.names), np.nan)
        ok = ~np.isnan(X[:, 0]) if X.size else np.zeros(0, dtype=bool)
        if ok.any():
            peak[ok] = self.peak_model.predict(X[ok])
        return peak

    def predict_risk_and_peak(self, windows):
        """(:meth:`predict_risk`, :meth:`predict_peak`) from one feature
        computation: the strategy needs both for every destination set.
        The peak is None when the bundle has no peak regressor.
        """
        if self.peak_model is None:
            return self.predict_risk(windows), None
        X = self.features(windows)
        return self._risk(windows, X), self._peak(windows, X)


def file_sha256(path):
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def read_sha256(path):
    """Hex sha256 of the bundle file at ``path``, never unpickling it.

    :raises ModelError: no such file, or it cannot be read (named)
    """
    path = os.fspath(path)
    try:
        return file_sha256(path)
    except FileNotFoundError:
        raise ModelError(f'model bundle {path}: no such file') from None
    except OSError as exc:
        raise ModelError(f'model bundle {path}: cannot read it '
                         f'({exc.strerror or exc})') from None


def save_bundle(bundle, path):
    """Write ``bundle`` to ``path`` atomically; return its sha256 (hex).

    The payload goes to a temporary file in the same directory (unnamed
    until complete where Linux allows, see :mod:`atomic`), is fsynced, and
    replaces ``path`` in one rename; the directory is fsynced so the rename
    survives a crash. On any error the temporary file is removed and an
    existing ``path`` is left as it was.
    """
    missing = [k for k in REQUIRED_METADATA if k not in bundle.metadata]
    if missing:
        raise ValueError(f'bundle metadata lacks {missing}')
    path = os.path.abspath(os.fspath(path))
    payload = {'format': FORMAT, 'format_version': FORMAT_VERSION,
               'metadata': bundle.metadata, 'model': bundle.model}
    if bundle.peak_model is not None:
        payload['peak_model'] = bundle.peak_model
    # serialised in memory first: the digest is of exactly the bytes
    # written, and the temporary file may have no name to re-read it by
    buffer = io.BytesIO()
    joblib.dump(payload, buffer)
    data = buffer.getvalue()
    with atomic.atomic_open(path, 'wb') as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def load_bundle(path, expected_sha256=None, allow_unverified=False):
    """Read, verify, validate and return the bundle at ``path``.

    :param expected_sha256: hex digest, checked on the file's bytes before
        anything is unpickled
    :param allow_unverified: without ``expected_sha256``, unpickle the file
        anyway (a WARNING is logged); False refuses it, because a pickle is
        code
    :raises ModelError: missing or unreadable file, no digest and no
        opt-in, digest mismatch, not a bundle, or anything
        :func:`validate_bundle` refuses; the message names the file and the
        problem
    """
    path = os.fspath(path)

    def fail(reason):
        return ModelError(f'model bundle {path}: {reason}')

    if not os.path.exists(path):
        raise fail('no such file')
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise fail(f'cannot read it ({exc.strerror or exc})') from None
    if expected_sha256:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.strip().lower():
            raise fail(f'sha256 is {actual}, expected {expected_sha256}; '
                       'refusing to load it (retrain, or update '
                       'model_sha256 if this file is the one you trained)')
    elif not allow_unverified:
        raise fail(
            'no sha256 to check it against, and a model file is a pickle, '
            'i.e. code: set [failpredict] model_sha256 to the digest that '
            '"watcher-failpredict train" printed or that '
            f'"watcher-failpredict show-model {path}" prints (the CLI\'s '
            '--sha256), or opt in with [failpredict] allow_unverified_model '
            '= true (the CLI\'s --allow-unverified)')
    else:
        unverified_warning(path)
    try:
        payload = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise fail(f'not a model bundle (cannot unpickle: '
                   f'{type(exc).__name__}: {exc})') from None
    if not isinstance(payload, dict) or payload.get('format') != FORMAT:
        raise fail(f'not a {FORMAT} file')
    if payload.get('format_version') != FORMAT_VERSION:
        raise fail(f'format version {payload.get("format_version")!r}, '
                   f'this code reads {FORMAT_VERSION}; retrain the model')
    metadata = payload.get('metadata')
    if not isinstance(metadata, dict):
        raise fail('metadata missing')
    bundle = ModelBundle(payload.get('model'), metadata,
                         payload.get('peak_model'))
    try:
        validate_bundle(bundle)
    except ModelError as exc:
        raise fail(str(exc)) from None
    return bundle


# -- validation ---------------------------------------------------------------

def _number(metadata, key, low, high, integral=False):
    """``metadata[key]`` as a finite number in (low, high]."""
    value = metadata[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value):
        raise ModelError(f'metadata {key}={value!r} is not a finite number')
    if integral and value != int(value):
        raise ModelError(f'metadata {key}={value!r} is not a whole number')
    if not low < value <= high:
        raise ModelError(f'metadata {key}={value!r} is outside ({low}, '
                         f'{high}]')
    return value


def _check_metadata(md):
    """Types and ranges of the metadata the strategy and engine read."""
    missing = [k for k in REQUIRED_METADATA if k not in md]
    if missing:
        raise ModelError(f'metadata lacks {missing}')
    version = md['feature_schema_version']
    if version != feat.FEATURE_SCHEMA_VERSION:
        raise ModelError(f'feature schema version {version!r}, this code '
                         f'computes version {feat.FEATURE_SCHEMA_VERSION}; '
                         'retrain the model')
    kind = md['model_kind']
    if kind not in models.MODEL_KINDS:
        raise ModelError(f'metadata model_kind={kind!r} is not one of '
                         f'{models.MODEL_KINDS}')
    _number(md, 'threshold', 0, 100)
    granularity = _number(md, 'granularity', 0, MAX_GRANULARITY,
                          integral=True)
    _number(md, 'period', 0, MAX_PERIOD)
    _number(md, 'horizon', 0, MAX_HORIZON)
    window = _number(md, 'window', 0, MAX_WINDOW_STEPS * granularity)
    if window < granularity:
        raise ModelError(f'metadata window={window!r} is shorter than one '
                         f'{granularity} s step')
    names = md['feature_names']
    if not isinstance(names, (list, tuple)) or \
            not all(isinstance(n, str) for n in names):
        raise ModelError(f'metadata feature_names is not a list of names: '
                         f'{names!r}'[:200])
    hosts = md['hosts_seen']
    if not isinstance(hosts, (list, tuple)):
        raise ModelError(f'metadata hosts_seen is not a list: {hosts!r}'
                         [:200])


def _check_feature_params(feature_set, params, window_steps):
    """The multiscale parameters fit the window the strategy reads."""
    if feature_set == 'v1':
        return
    if not isinstance(params, dict):
        raise ModelError(f'metadata feature_params={params!r} is not a '
                         'mapping'[:200])

    def whole(key, value, low, high):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
                or not low <= value <= high:
            raise ModelError(
                f'metadata feature_params {key}={value!r} is not a whole '
                f'number in [{low}, {high}] (window {window_steps} steps)')

    for key in ('window_steps', 'period_steps', 'lags', 'scales'):
        if key not in params:
            raise ModelError(f'metadata feature_params lacks {key!r}')
    if params['window_steps'] != window_steps:
        raise ModelError(
            f'metadata feature_params window_steps='
            f'{params["window_steps"]!r} but window / granularity gives '
            f'{window_steps} steps')
    whole('period_steps', params['period_steps'], 1, window_steps)
    for key, low in (('lags', 1), ('scales', 2)):
        if not isinstance(params[key], (list, tuple)):
            raise ModelError(f'metadata feature_params {key} is not a list')
        for value in params[key]:
            whole(key, value, low, window_steps)
    cycle = params.get('cycle')
    if cycle is not None and (isinstance(cycle, bool) or not isinstance(
            cycle, numbers.Real) or not math.isfinite(cycle) or cycle <= 0):
        raise ModelError(f'metadata feature_params cycle={cycle!r} is not a '
                         'positive number of seconds')
    if feature_set == 'cyclic':
        _check_cyclic_params(params)


def _seconds(value):
    return not isinstance(value, bool) and isinstance(
        value, numbers.Real) and math.isfinite(value) and value >= 0


def _check_cyclic_params(params):
    """The cyclic set's horizon and per-host cycles (seconds, 0 = none)."""
    h = params.get('horizon_steps')
    if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
        raise ModelError(f'metadata feature_params horizon_steps={h!r} is '
                         'not a positive whole number')
    cycles = params.get('host_cycles')
    if not isinstance(cycles, dict):
        raise ModelError(f'metadata feature_params host_cycles={cycles!r} '
                         'is not a mapping'[:200])
    for host, cycle in cycles.items():
        if not isinstance(host, str) or not _seconds(cycle):
            raise ModelError(
                f'metadata feature_params host_cycles[{host!r}]={cycle!r} '
                'is not a number of seconds >= 0'[:200])


def _check_fitted(estimator, what):
    try:
        sk_validation.check_is_fitted(estimator)
    except sk_exceptions.NotFittedError:
        raise ModelError(f'{what} {type(estimator).__name__} is not '
                         'fitted') from None
    except TypeError:
        raise ModelError(f'{what} {type(estimator).__name__} is not a '
                         'scikit-learn estimator') from None


def _check_width(estimator, what, expected, feature_set):
    n = getattr(estimator, 'n_features_in_', None)
    if n is not None and n != expected:
        raise ModelError(f'{what} expects {n} features, the bundle\'s '
                         f'feature set {feature_set!r} gives {expected}')


def _smoke_windows(bundle):
    """Synthetic host windows at the model's granularity, one window long:
    a steady host, a rising one and one without samples.
    """
    steps = bundle.window_steps
    granularity = int(bundle.metadata['granularity'])
    if bundle.metadata['model_kind'] == 'fixed_hosts':
        names = tuple(getattr(bundle.model, 'hosts_', ()))
    else:
        names = ('smoke-steady', 'smoke-rising', 'smoke-silent')
    n = len(names)
    rising = np.linspace(20.0, 95.0, steps)
    cpu = np.tile(rising, (n, 1))
    cpu[0::3] = 50.0
    cpu[2::3] = np.nan
    level = {'memory': 40.0, 'load': 1.0, 'disk': 1e5, 'net': 1e5}
    data = {'cpu': cpu}
    data.update({m: np.where(np.isnan(cpu), np.nan, v)
                 for m, v in level.items()})
    if bundle.metadata.get('feature_set') == 'cyclic':
        data[feature_sets.LAST_CYCLE] = cpu[:, ::-1].copy()
    times = 1.7e9 + granularity * np.arange(steps, dtype=float)
    return metric_windows.ClusterWindows(
        names=names, times=times, step=granularity, data=data,
        last_seen=np.full(n, times[-1]))


def _smoke_prediction(bundle):
    """Score synthetic windows as the strategy does; refuse a model whose
    answer is not finite probabilities (and finite peaks) per host.
    """
    windows = _smoke_windows(bundle)
    n = len(windows.names)
    try:
        risk, peak = bundle.predict_risk_and_peak(windows)
        if bundle.metadata['model_kind'] != 'fixed_hosts':
            X = bundle.features(windows)[:2]
            proba = np.asarray(bundle.model.predict_proba(X), dtype=float)
    except Exception as exc:
        raise ModelError(f'smoke prediction on synthetic rows failed '
                         f'({type(exc).__name__}: {exc})'[:400]) from None
    if bundle.metadata['model_kind'] != 'fixed_hosts':
        n_classes = len(bundle.model.classes_)
        if proba.shape != (2, n_classes) or not np.isfinite(proba).all() \
                or (proba < 0).any() or (proba > 1).any():
            raise ModelError(
                f'smoke prediction: predict_proba gave {proba!r} for 2 '
                f'rows of {n_classes} classes; expected finite '
                f'probabilities of shape (2, {n_classes})'[:400])
    risk = np.asarray(risk, dtype=float)
    expected_nan = np.zeros(n, dtype=bool)
    expected_nan[2::3] = True        # the hosts without samples
    if risk.shape != (n,) or not np.isfinite(risk[~expected_nan]).all() or \
            (risk[~expected_nan] < 0).any() or \
            (risk[~expected_nan] > 1).any():
        raise ModelError(f'smoke prediction: risks {risk!r} for {n} '
                         'synthetic hosts are not probabilities in [0, 1]'
                         [:400])
    if peak is not None:
        peak = np.asarray(peak, dtype=float)
        if peak.shape != (n,) or not np.isfinite(peak[~expected_nan]).all():
            raise ModelError(f'smoke prediction: peak model gave {peak!r} '
                             f'for {n} synthetic hosts, not finite numbers'
                             [:400])


def validate_bundle(bundle):
    """Refuse a bundle the strategy could not score with.

    Checks the metadata's types and ranges, that the model is a fitted
    estimator with predict_proba whose classes include 1 (failure) and
    whose input width is the feature set's, the same for the peak
    regressor (predict), and a smoke prediction on synthetic windows.

    :raises ModelError: naming the problem
    """
    md = bundle.metadata
    _check_metadata(md)
    feature_set = md.get('feature_set', 'v1')
    try:
        expected = feature_sets.feature_names(feature_set,
                                              md.get('feature_params'))
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f'feature set {feature_set!r}: {exc}; retrain the '
                         'model') from None
    _check_feature_params(feature_set, md.get('feature_params'),
                          bundle.window_steps)
    if list(md['feature_names']) != expected:
        raise ModelError('feature names differ from this code\'s; retrain '
                         'the model')
    model = bundle.model
    if not callable(getattr(model, 'predict_proba', None)):
        raise ModelError(f'model {type(model).__name__} has no '
                         'predict_proba')
    _check_fitted(model, 'model')
    classes = list(getattr(model, 'classes_', ()))
    if md['model_kind'] == 'fixed_hosts':
        hosts = tuple(getattr(model, 'hosts_', ()))
        _check_width(model, 'model', len(hosts) * len(expected),
                     feature_set)
        if classes != list(range(len(hosts))):
            raise ModelError(f'fixed_hosts model classes {classes} are not '
                             f'the indices of its {len(hosts)} hosts')
    else:
        _check_width(model, 'model', len(expected), feature_set)
        if 1 not in classes:
            raise ModelError(f'model classes {classes} lack 1 (failure): it '
                             'cannot give a failure probability')
    peak_model = bundle.peak_model
    if peak_model is not None:
        if not callable(getattr(peak_model, 'predict', None)):
            raise ModelError(f'peak model {type(peak_model).__name__} has '
                             'no predict')
        _check_fitted(peak_model, 'peak model')
        _check_width(peak_model, 'peak model', len(expected), feature_set)
    _smoke_prediction(bundle)
