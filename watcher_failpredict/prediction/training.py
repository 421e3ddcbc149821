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

"""Train a model bundle on a history of host windows and evaluate it.

The split is by time, never shuffled: the model is fitted on the earlier
stretch of the history and scored on the later one, with a gap of
``window + horizon`` between them so that no test sample's window or label
overlaps a training sample's (neighbouring samples of a time series are
nearly copies; a shuffled split would report memorisation as skill).

The held-out report puts the model next to a persistence baseline, "the
host's current mean CPU is its risk", which is what a least-CPU-now policy
implicitly believes. A model that does not beat it is not worth deploying,
and the report says so plainly.

The bundle holds the model fitted on the training stretch, i.e. exactly the
model the evaluation describes. The steps (samples, split, fit) are
:mod:`pipeline`'s, the same the evaluation report runs.
"""

import datetime
import platform

import numpy as np
import sklearn
from sklearn import metrics as skm

from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import features as feat
from watcher_failpredict.prediction import labels as lab
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import pipeline

_CPU_MEAN = feat.feature_names().index('cpu_mean')
_CPU_LAST = feat.feature_names().index('cpu_last')


def _iso(ts):
    return datetime.datetime.fromtimestamp(
        float(ts), datetime.timezone.utc).isoformat()


def _binary_scores(y, score, predicted):
    out = {
        'roc_auc': None, 'pr_auc': None,
        'precision': float(skm.precision_score(y, predicted,
                                               zero_division=0)),
        'recall': float(skm.recall_score(y, predicted, zero_division=0)),
        'f1': float(skm.f1_score(y, predicted, zero_division=0)),
    }
    if np.unique(y).size == 2:
        out['roc_auc'] = float(skm.roc_auc_score(y, score))
        out['pr_auc'] = float(skm.average_precision_score(y, score))
    return out


def decision_threshold(model):
    """The model's probability threshold (cost-based when it has one)."""
    return float(getattr(model, 'threshold_', 0.5))


def evaluate_risk(model, X, y, threshold):
    """Held-out scores of a risk model and of the persistence baseline."""
    proba = bundle_mod.failure_probability(model, X)
    cpu_mean = X[:, _CPU_MEAN]
    return {
        'model': _binary_scores(y, proba, proba >= decision_threshold(model)),
        'baseline_persistence': _binary_scores(y, cpu_mean,
                                               cpu_mean >= threshold),
    }


def evaluate_peak(regressor, X, target, now_column=_CPU_MEAN):
    """Held-out mean absolute error (CPU points) of the peak regressor,
    beside persistence: "the peak is the level now" (column
    ``now_column`` of X), which is what a least-CPU-now ranking assumes.
    How well it *ranks* destinations is the evaluation report's
    destination regret.
    """
    target = np.asarray(target, dtype=float)
    known = ~np.isnan(target)
    if not known.any():
        return {'mae': None, 'mae_persistence': None, 'n': 0}
    pred = regressor.predict(X[known])
    now = X[known, now_column]
    ok = ~np.isnan(now)
    return {'mae': float(np.mean(np.abs(pred - target[known]))),
            'mae_persistence': (float(np.mean(np.abs(
                now[ok] - target[known][ok]))) if ok.any() else None),
            'n': int(known.sum())}


def _check_classes(y, what, threshold, span_hint):
    positives = int(np.sum(y == 1))
    if positives == 0:
        raise ValueError(
            f'{what} has no failure samples (no host reaches a mean CPU of '
            f'{threshold:g} % over the period): lower --threshold or use a '
            f'history that contains saturations ({span_hint})')
    if positives == y.size:
        raise ValueError(
            f'{what} has only failure samples (every host is always at or '
            f'above {threshold:g} %): raise --threshold or use a history '
            f'with calm stretches ({span_hint})')


def _positive_rate(model_kind, y):
    """Share of failure labels (None for fixed_hosts: y is a host index)."""
    return (float(np.mean(y == 1)) if model_kind != 'fixed_hosts'
            else None)


def _report(progress, stage, done, total):
    if progress is not None:
        progress(stage, done, total)


def train(windows, threshold=90.0, period=300, horizon=300, window=600,
          model_kind='svm', test_fraction=0.25, progress=None,
          random_state=0, max_samples=models.DEFAULT_MAX_SAMPLES, stride=1,
          exclude_intervals=None, cycle=None,
          cost_fp=models.DEFAULT_COST_FALSE_MIGRATION,
          cost_fn=models.DEFAULT_COST_MISSED_FAILURE, peak_model=True):
    """Fit a model on ``windows`` and evaluate it on a later stretch.

    :param windows: ClusterWindows of host metrics over the whole history
    :param threshold: CPU percent of the failure state
    :param period: trigger period, seconds (rolling mean CPU over it)
    :param horizon: how far ahead a failure is predicted, seconds
    :param window: feature window, seconds
    :param model_kind: 'svm' (per-host risk, default), 'svm_nystroem',
        'gbt', 'gbt_peak', 'gbt_peak_cycle' (see models) or 'fixed_hosts'
    :param test_fraction: share of decision times held out (the latest)
    :param progress: callable(stage, done, total) or None
    :param max_samples: training subsample cap (see models)
    :param stride: keep every stride-th decision time
    :param exclude_intervals: ``[(host, start, end)]`` of past migrations
        (Unix s); samples they touched are left out of training and of the
        held-out scores (see :mod:`contamination`)
    :param cycle: load-cycle length in seconds for the multiscale features
        (gbt), e.g. 86400; None = no cycle position. For the cyclic set
        (gbt_peak_cycle) the declared cycle of every host; None = each
        host's estimated from the history (see :mod:`cycles`)
    :param cost_fp, cost_fn: cost of a false migration / a missed failure;
        they set the gbt and gbt_peak models' decision threshold
    :param peak_model: also fit a regressor of the future peak CPU on the
        same features and rows (risk kinds only; see
        :class:`peak_risk.PeakRegressor`); the strategy ranks destinations of
        equal risk by it
    :returns: (ModelBundle, evaluation dict)
    :raises ValueError: bad parameters, too short a history, or training
        labels of a single class
    """
    step = int(windows.step)
    steps = pipeline.to_steps(step, window, period, horizon)
    w, p, h = steps
    if model_kind not in models.MODEL_KINDS:
        raise ValueError(f'unknown model kind {model_kind!r}; known: '
                         f'{models.MODEL_KINDS}')
    n_steps = len(windows.times)
    train_end, test_start = pipeline.split_times(n_steps, w, h,
                                                 test_fraction)
    times = np.asarray(windows.times, dtype=float)
    span_hint = (f'history {_iso(times[0])} .. {_iso(times[-1] + step)}, '
                 f'{len(windows.names)} hosts') if n_steps else 'empty'

    _report(progress, 'features', 0, 1)
    feature_set = models.FEATURE_SET[model_kind]
    fparams = pipeline.feature_params(feature_set, windows, steps, cycle)
    n_excluded = 0
    if model_kind != 'fixed_hosts':
        X, y, t_idx, h_idx, n_excluded = pipeline.risk_samples(
            windows, steps, threshold, feature_set, fparams, stride,
            exclude_intervals,
            # the gbt kinds calibrate on their latest rows
            time_order=model_kind in ('gbt',) + models.PEAK_TARGET_KINDS)
    else:
        X, y, t_idx = pipeline.destination_samples(windows, steps, stride)
    _report(progress, 'features', 1, 1)
    train_rows = t_idx <= train_end
    test_rows = t_idx >= test_start
    for rows, what, lo, hi in (
            (train_rows, 'training', 0, train_end),
            (test_rows, 'held-out', test_start - w, n_steps - 1)):
        if not rows.any():
            raise ValueError(
                f'no usable samples in the {what} stretch {_iso(times[lo])}'
                f' .. {_iso(times[hi] + step)}: no host has CPU data there; '
                f'shorten the span to where the data is ({span_hint})')
    X_tr, y_tr, X_te, y_te = (X[train_rows], y[train_rows], X[test_rows],
                              y[test_rows])

    _report(progress, 'fit', 0, 1)
    target = None
    if model_kind != 'fixed_hosts':
        _check_classes(y_tr, 'the training stretch', threshold, span_hint)
        target = lab.peak_targets(windows.data['cpu'], p, h, t_idx, h_idx)
        X_fit, y_fit, fit_rows = pipeline.training_rows(
            feature_set, windows, steps, threshold, fparams,
            pipeline.Samples(X, y, t_idx, h_idx, n_excluded), train_rows,
            stride, exclude_intervals, random_state)
        model = pipeline.fit_risk_model(
            model_kind, X_fit, y_fit, target[fit_rows], threshold, fparams,
            random_state, max_samples, cost_fp, cost_fn)
    else:
        model = pipeline.fit_destination_model(X_tr, y_tr, windows.names,
                                               random_state, max_samples)
    regressor = None
    if peak_model and model_kind != 'fixed_hosts':
        regressor = pipeline.fit_peak_model(X_fit, target[fit_rows],
                                            random_state)
    _report(progress, 'fit', 1, 1)

    _report(progress, 'evaluate', 0, 1)
    if model_kind != 'fixed_hosts':
        scores = evaluate_risk(model, X_te, y_te, threshold)
        if regressor is not None:
            names = feature_sets.feature_names(feature_set, fparams)
            now_col = names.index('cpu_period_mean' if 'cpu_period_mean'
                                  in names else 'cpu_mean')
            scores['peak_model'] = evaluate_peak(
                regressor, X_te, target[test_rows], now_col)
    else:
        scores = _evaluate_destination(model, windows, X_te, y_te,
                                       t_idx[test_rows], p, h, threshold)
    evaluation = dict(
        scores,
        n_train=int(y_tr.size), n_test=int(y_te.size),
        positive_rate_train=_positive_rate(model_kind, y_tr),
        positive_rate_test=_positive_rate(model_kind, y_te),
        train_span=[_iso(times[0]), _iso(times[train_end - 1] + step)],
        test_span=[_iso(times[test_start - w]), _iso(times[-1] + step)],
        excluded_contaminated=n_excluded,
    )
    if model_kind != 'fixed_hosts':
        m, b = evaluation['model'], evaluation['baseline_persistence']
        evaluation['beats_baseline'] = (
            m['roc_auc'] is not None and b['roc_auc'] is not None
            and m['roc_auc'] > b['roc_auc'])
    _report(progress, 'evaluate', 1, 1)

    cpu = windows.data.get('cpu')
    seen = [n for i, n in enumerate(windows.names)
            if cpu is not None and not np.isnan(cpu[i]).all()]
    metadata = {
        'format': bundle_mod.FORMAT,
        'format_version': bundle_mod.FORMAT_VERSION,
        'feature_schema_version': feat.FEATURE_SCHEMA_VERSION,
        'feature_set': feature_set,
        'feature_params': fparams,
        'feature_names': feature_sets.feature_names(feature_set, fparams),
        'model_kind': model_kind,
        'decision_threshold': (decision_threshold(model)
                               if model_kind != 'fixed_hosts' else None),
        'costs': {'false_migration': float(cost_fp),
                  'missed_failure': float(cost_fn)},
        'excluded_contaminated': n_excluded,
        'threshold': float(threshold),
        'period': p * step, 'horizon': h * step, 'window': w * step,
        'granularity': step,
        'training_span': evaluation['train_span'],
        'hosts_seen': seen,
        'n_samples': int(y_tr.size),
        'positive_rate': _positive_rate(model_kind, y_tr),
        'library_versions': {'sklearn': sklearn.__version__,
                             'numpy': np.__version__,
                             'python': platform.python_version()},
        'created_at': datetime.datetime.now(
            datetime.timezone.utc).isoformat(),
        'evaluation': evaluation,
    }
    if regressor is not None:
        metadata['peak_model'] = regressor.describe()
    return (bundle_mod.ModelBundle(model, metadata, regressor),
            evaluation)


def _evaluate_destination(model, windows, X, y, t_idx, p, h, threshold):
    """Scores of the fixed-host destination model vs least-CPU-now.

    For every held-out time: the future peak (rolling-mean CPU over the
    period, within the horizon) of the host each policy picks, and how often
    that host then fails; the oracle's pick bounds what is possible.
    """
    cpu = np.asarray(windows.data['cpu'], dtype=float)
    peak = lab.future_peak(lab.rolling_mean(cpu, p), h)[:, t_idx - 1]
    cols = np.arange(t_idx.size)
    n_feat = len(feat.feature_names())
    cpu_last = X.reshape(X.shape[0], -1, n_feat)[:, :, _CPU_LAST]
    picks = {
        'model': model.predict(X),
        'baseline_least_cpu': np.argmin(cpu_last, axis=1),
        'oracle': y,
    }
    out = {}
    for name, pick in picks.items():
        chosen = peak[pick, cols]
        out[name] = {
            'accuracy': float(np.mean(pick == y)),
            'mean_future_peak_cpu': float(np.mean(chosen)),
            'destination_failure_rate': float(np.mean(chosen >= threshold)),
        }
    return out
