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

"""The failure-risk model as a Watcher scoring engine.

Watcher's plug point for learned models is the scoring engine: the decision
engine syncs every ``watcher_scoring_engines`` entry point into its database
at start-up (name, description, metainfo), and ``openstack optimize
scoringengine list`` / ``show`` present them. :class:`FailureRiskScorer`
wraps the model bundle configured in ``[failpredict] model_path`` so that
operators see which model the strategy uses (feature columns, kind, version,
training span, sha256), and so that the strategy scores through this very
object (:meth:`FailureRiskScorer.load`).

Watcher keeps one instance per process (``scoring_factory`` caches it), while
the configured file may be retrained and replaced at any time. So
:meth:`FailureRiskScorer.load` re-reads the configuration on every call,
hashes the file, and only unpickles it again when its digest changed; the
sha256 check against ``model_sha256`` happens in ``load_bundle`` on the
bytes it unpickles. Without ``model_sha256`` the file is refused (never
unpickled, at start-up neither) unless ``allow_unverified_model`` is true,
and then every load, cached or not, logs a WARNING.

An engine must never break the decision engine's start-up sync: when no
model is configured or it cannot be loaded, :meth:`get_metainfo` says so (with
the reason) instead of raising. ``calculate_score`` raises then, naming the
reason.
"""

import json
import math
import threading

import numpy as np
from watcher.common import exception
from watcher.decision_engine.scoring import base

from watcher_failpredict import conf as fp_conf
from watcher_failpredict.prediction import bundle as bundle_mod

CONF = fp_conf.CONF
NAME = 'failpredict_risk'
#: The metadata entries shown in get_metainfo(), as the bundle holds them.
META_KEYS = ('model_kind', 'feature_schema_version', 'threshold', 'period',
             'horizon', 'window', 'granularity', 'training_span',
             'n_samples', 'positive_rate', 'created_at', 'library_versions')


class ModelNotConfigured(bundle_mod.ModelError):
    """``[failpredict] model_path`` is not set."""


def _package_version():
    try:
        from importlib import metadata
        return metadata.version('watcher-failpredict')
    except Exception:  # not installed as a distribution
        return None


class FailureRiskScorer(base.ScoringEngine):
    """Probability that a compute host fails within the model's horizon."""

    def __init__(self, config=None, model_bundle=None):
        """:param model_bundle: a loaded bundle to serve instead of the
        configured file (tests, the testbed)
        """
        super().__init__(config)
        self._fixed = model_bundle
        self._lock = threading.Lock()
        self._cached = None     # (path, file sha256, ModelBundle)

    def get_name(self):
        return NAME

    def get_description(self):
        return ('watcher-failpredict: probability that a compute host is in '
                'failure state (mean CPU >= threshold) within the horizon, '
                'from its collectd windows (the model at [failpredict] '
                'model_path).')

    # -- the model ------------------------------------------------------------

    def load(self):
        """The bundle the strategy and calculate_score use.

        :returns: (ModelBundle, sha256 of its file or None)
        :raises ModelNotConfigured: no ``model_path``
        :raises bundle.ModelError: missing, tampered or incompatible file
        """
        if self._fixed is not None:
            return self._fixed, None
        path = CONF.failpredict.model_path
        if not path:
            raise ModelNotConfigured(
                'no failure-prediction model configured: set '
                '[failpredict] model_path to a bundle written by '
                '"watcher-failpredict train"')
        digest = bundle_mod.read_sha256(path)
        expected = CONF.failpredict.model_sha256
        allow_unverified = CONF.failpredict.allow_unverified_model
        with self._lock:
            cached = self._cached
            if cached and cached[0] == path and cached[1] == digest:
                if expected and expected.lower() == digest:
                    return cached[2], digest
                if not expected and allow_unverified:
                    # the same rule as an unpickling load: warn each time
                    bundle_mod.unverified_warning(path)
                    return cached[2], digest
            model = bundle_mod.load_bundle(path, expected, allow_unverified)
            self._cached = (path, digest, model)
            return model, digest

    # -- ScoringEngine --------------------------------------------------------

    def get_metainfo(self):
        """JSON: the loaded model's identity and how to call calculate_score.

        Deterministic (sorted keys): Watcher re-creates the database row
        whenever the metainfo changes, e.g. after retraining.
        """
        info = {
            'engine_version': _package_version(),
            'input': 'JSON list of feature rows (one per host, columns in '
                     'feature_columns order), or an object host name -> '
                     'row',
            'result_columns': ['risk'],
            'model_path': None if self._fixed is not None else
            CONF.failpredict.model_path,
        }
        try:
            model, digest = self.load()
        except bundle_mod.ModelError as exc:
            info.update(status='unavailable', error=str(exc))
            return json.dumps(info, sort_keys=True, default=str)
        md = model.metadata
        info.update(
            status='loaded', sha256=digest,
            format_version=md.get('format_version'),
            feature_columns=list(md.get('feature_names') or []),
            hosts_seen=len(md.get('hosts_seen') or []),
            **{k: md.get(k) for k in META_KEYS})
        return json.dumps(info, sort_keys=True, default=str)

    def calculate_score(self, features):
        """Risks of failure for feature rows given as JSON.

        :param features: JSON list of rows, or object ``{host: row}``; each
            row has one number (or null for a missing value) per feature
            column of get_metainfo()
        :returns: JSON list of risks (same order), or object ``{host:
            risk}``; null where the row cannot be scored (no CPU feature)
        :raises ValueError: malformed input, naming what is wrong
        """
        try:
            parsed = json.loads(features)
        except (TypeError, ValueError) as exc:
            raise ValueError(f'features: not JSON ({exc})') from None
        if isinstance(parsed, dict):
            names, rows = list(parsed), list(parsed.values())
        elif isinstance(parsed, list):
            names, rows = None, parsed
        else:
            raise ValueError('features: expected a JSON list of rows or an '
                             'object host -> row')
        model, _ = self.load()
        risks = self.score_rows(model, rows)
        out = [None if math.isnan(r) else float(r) for r in risks]
        return json.dumps(dict(zip(names, out)) if names is not None
                          else out)

    @staticmethod
    def score_rows(model, rows):
        """Risk per feature row with ``model`` (a ModelBundle); NaN rows
        (missing first feature, the CPU level) cannot be scored.
        """
        columns = list(model.metadata.get('feature_names') or [])
        if model.metadata.get('model_kind') == 'fixed_hosts':
            raise ValueError('the configured model is of kind fixed_hosts: '
                             'it ranks its training host set as a whole and '
                             'cannot score independent rows')
        X = np.empty((len(rows), len(columns)), dtype=float)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                raise ValueError(
                    f'features row {i}: expected a list of {len(columns)} '
                    f'values ({", ".join(columns)}), got {row!r}'[:300])
            try:
                X[i] = [math.nan if v is None else float(v) for v in row]
            except (TypeError, ValueError):
                raise ValueError(f'features row {i}: non-numeric value in '
                                 f'{row!r}'[:300]) from None
        risk = np.full(len(rows), np.nan)
        ok = ~np.isnan(X[:, 0]) if X.size else np.zeros(len(rows), bool)
        if ok.any():
            risk[ok] = bundle_mod.failure_probability(model.model, X[ok])
        return risk


def get_engine():
    """Our engine as Watcher's scoring_factory serves it (one per process).

    Falls back to a fresh instance when the entry point is not installed,
    so a source checkout still works.
    """
    from watcher.decision_engine.scoring import scoring_factory
    try:
        engine = scoring_factory.get_scoring_engine(NAME)
    except (KeyError, exception.LoadingError):
        engine = None
    if not isinstance(engine, FailureRiskScorer):
        engine = FailureRiskScorer()
    return engine
