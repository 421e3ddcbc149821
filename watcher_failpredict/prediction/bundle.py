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
import os

import joblib
import numpy as np

from watcher_failpredict import atomic
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import features as feat

FORMAT = 'watcher-failpredict-model'
FORMAT_VERSION = 1

REQUIRED_METADATA = (
    'format', 'format_version', 'feature_schema_version', 'feature_names',
    'model_kind', 'threshold', 'period', 'horizon', 'window', 'granularity',
    'training_span', 'hosts_seen', 'n_samples', 'positive_rate',
    'library_versions', 'created_at', 'evaluation',
)


class ModelError(Exception):
    """A model bundle cannot be used; the message names the file and why."""


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


def save_bundle(bundle, path):
    """Write ``bundle`` to ``path`` atomically; return its sha256 (hex).

    The payload goes to a temporary file in the same directory, is fsynced,
    and replaces ``path`` in one rename; the directory is fsynced so the
    rename survives a crash. On any error the temporary file is removed and
    an existing ``path`` is left as it was.
    """
    missing = [k for k in REQUIRED_METADATA if k not in bundle.metadata]
    if missing:
        raise ValueError(f'bundle metadata lacks {missing}')
    path = os.path.abspath(os.fspath(path))
    payload = {'format': FORMAT, 'format_version': FORMAT_VERSION,
               'metadata': bundle.metadata, 'model': bundle.model}
    if bundle.peak_model is not None:
        payload['peak_model'] = bundle.peak_model
    with atomic.atomic_open(path, 'wb') as f:
        joblib.dump(payload, f)
        f.flush()
        digest = file_sha256(f.name)
    return digest


def load_bundle(path, expected_sha256=None):
    """Read, verify and return the bundle at ``path``.

    :param expected_sha256: hex digest; when given, checked on the file's
        bytes before anything is unpickled
    :raises ModelError: missing or unreadable file, digest mismatch, not a
        bundle, wrong format or feature schema version, missing metadata,
        model without predict_proba
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
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise fail(f'metadata lacks {missing}')
    version = metadata['feature_schema_version']
    if version != feat.FEATURE_SCHEMA_VERSION:
        raise fail(f'feature schema version {version!r}, this code computes '
                   f'version {feat.FEATURE_SCHEMA_VERSION}; retrain the '
                   'model')
    try:
        expected = feature_sets.feature_names(
            metadata.get('feature_set', 'v1'),
            metadata.get('feature_params'))
    except ValueError as exc:
        raise fail(f'{exc}; retrain the model') from None
    if list(metadata['feature_names']) != expected:
        raise fail('feature names differ from this code\'s; retrain the '
                   'model')
    model = payload.get('model')
    if not callable(getattr(model, 'predict_proba', None)):
        raise fail(f'model {type(model).__name__} has no predict_proba')
    peak_model = payload.get('peak_model')
    if peak_model is not None and \
            not callable(getattr(peak_model, 'predict', None)):
        raise fail(f'peak model {type(peak_model).__name__} has no predict')
    return ModelBundle(model, metadata, peak_model)
