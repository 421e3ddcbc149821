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

"""The one training pipeline: history -> samples -> time split -> models.

:func:`training.train` (one model, the bundle the strategy loads) and
:func:`evaluation.evaluate` (every model and baseline on one split) run the
same steps, in this order, through these functions:

1. :func:`to_steps`: window, period and horizon from seconds to steps of
   the history;
2. :func:`split_times`: the last training and first held-out decision
   time, a gap of ``window + horizon`` between them;
3. :func:`risk_samples` (or :func:`destination_samples` for the paper's
   fixed-host framing): one sample per host per decision time, features
   from :mod:`feature_sets`, labels from :mod:`labels`, minus the samples
   a past migration touched (:mod:`contamination`);
4. :func:`fit_risk_model` and :func:`fit_peak_model` on the training rows
   (:func:`training_rows`: for the cyclic set, those rows and their
   misaligned copy).

Decision time ``t`` is a column boundary of the history: the features see
columns ``[t - window_steps, t)``, exactly what the strategy would see at
``t``; the label says whether the host is in failure state at any step of
``(t, t + horizon]``, i.e. columns ``t .. t + horizon_steps - 1`` (column
``s`` ends at ``s + 1`` steps).
"""

import collections

import numpy as np

from watcher_failpredict.prediction import contamination
from watcher_failpredict.prediction import cycles
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import labels as lab
from watcher_failpredict.prediction import models

#: The three lengths of the failure definition and the features, in steps.
Steps = collections.namedtuple('Steps', 'window period horizon')

#: Samples of a history: features ``X`` (n, n_features), labels ``y`` (n,)
#: (1 = failure within the horizon), the decision time ``t_index`` (n,) as
#: a column index of the windows, the host ``host_index`` (n,) as a row of
#: ``windows.names``, and how many samples a past migration touched and
#: were left out (``n_excluded``).
Samples = collections.namedtuple(
    'Samples', 'X y t_index host_index n_excluded')


def count_steps(name, seconds, step):
    """``seconds`` as a whole number of steps of ``step`` seconds.

    :raises ValueError: not positive, or not a multiple of the step (the
        message names the parameter)
    """
    seconds = float(seconds)
    if seconds <= 0:
        raise ValueError(f'{name} must be positive, got {seconds:g} s')
    n = seconds / step
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f'{name} ({seconds:g} s) must be a multiple of the '
                         f'granularity ({step} s)')
    return int(round(n))


def to_steps(step, window, period, horizon):
    """:class:`Steps` of a history sampled every ``step`` seconds."""
    return Steps(count_steps('window', window, step),
                 count_steps('period', period, step),
                 count_steps('horizon', horizon, step))


def sample_times(n_steps, window_steps, horizon_steps, stride=1):
    """Decision times t (column indices) with a full window and a label."""
    stride = int(stride)
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    return np.arange(window_steps, n_steps - horizon_steps + 1, stride)


def split_times(n_steps, window_steps, horizon_steps, test_fraction):
    """(last train time, first test time) as column indices.

    Decision times run from window_steps to n_steps - horizon_steps; the
    last ``test_fraction`` of them are held out, and the training times stop
    window_steps + horizon_steps before the first test time.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f'test_fraction must be in (0, 1), got '
                         f'{test_fraction}')
    first, last = window_steps, n_steps - horizon_steps
    gap = window_steps + horizon_steps
    span = last - first + 1
    n_test = max(1, int(round(test_fraction * span)))
    test_start = last - n_test + 1
    train_end = test_start - gap
    if train_end < first:
        need = (window_steps + 2 * horizon_steps + gap) + 2
        raise ValueError(
            f'history too short: {n_steps} steps leave no training samples '
            f'before the held-out stretch (window {window_steps} + horizon '
            f'{horizon_steps} steps + gap {gap}); read a longer span '
            f'(at least ~{int(need / (1 - test_fraction))} steps)')
    return train_end, test_start


def make_dataset(windows, window_steps, period_steps, horizon_steps,
                 threshold, stride=1, feature_set='v1', params=None):
    """Samples ``(X, y, t_index, host_index)`` of a history, any set.

    :param windows: ClusterWindows of host metrics over the whole history
    :param window_steps: feature window length in steps
    :param period_steps: trigger period in steps (failure = rolling mean
        CPU over it >= threshold)
    :param horizon_steps: how far ahead the label looks, in steps
    :param threshold: CPU percent of the failure state
    :param stride: keep every stride-th decision time
    :param feature_set, params: see :mod:`feature_sets`
    :returns: X float (n, n_features); y int (n,) 1 = failure within the
        horizon; t_index (n,) decision time as a column index of windows;
        host_index (n,) row of windows.names. Samples whose label is
        unknown or whose CPU features are NaN are dropped. Ordered by
        host, then time.
    """
    window_steps = int(window_steps)
    horizon_steps = int(horizon_steps)
    if window_steps < 1 or horizon_steps < 1:
        raise ValueError('window_steps and horizon_steps must be >= 1, got '
                         f'{window_steps} and {horizon_steps}')
    cpu = feature_sets.metric_array(windows, 'cpu')
    n_hosts, n_steps = cpu.shape
    state = lab.failure_state(cpu, threshold, period_steps)
    within = lab.failure_within(state, horizon_steps)
    times = sample_times(n_steps, window_steps, horizon_steps, stride)
    n_feat = len(feature_sets.feature_names(feature_set, params))
    if times.size == 0 or n_hosts == 0:
        return (np.empty((0, n_feat)), np.empty(0, dtype=int),
                np.empty(0, dtype=int), np.empty(0, dtype=int))
    X = feature_sets.window_features(windows, window_steps, times,
                                     feature_set, params)
    y = within[:, times - 1]
    known = ~np.ma.getmaskarray(y) & ~np.isnan(X[..., 0])
    host_idx, t_pos = np.nonzero(known)
    return (X[host_idx, t_pos], np.asarray(y.data[host_idx, t_pos], int),
            times[t_pos], host_idx)


def risk_samples(windows, steps, threshold, feature_set='v1', params=None,
                 stride=1, exclude_intervals=None, time_order=False):
    """The per-host risk samples a model is trained and scored on.

    :func:`make_dataset` minus the samples a past migration touched
    (:func:`contamination.contaminated_samples` of ``exclude_intervals``).

    :param steps: :class:`Steps` of the history
    :param time_order: order the samples by decision time, then host
        (the gbt kinds calibrate on their latest rows; the evaluation
        report keeps every method on the same time-ordered rows); else by
        host, then time
    :returns: :class:`Samples`
    """
    w, p, h = steps
    X, y, t_idx, h_idx = make_dataset(windows, w, p, h, threshold, stride,
                                      feature_set, params)
    dirty = contamination.contaminated_samples(windows, t_idx, h_idx, w, h,
                                               exclude_intervals)
    keep = ~dirty
    X, y, t_idx, h_idx = X[keep], y[keep], t_idx[keep], h_idx[keep]
    if time_order:
        # stable: within one decision time the rows stay in host order
        order = np.argsort(t_idx, kind='stable')
        X, y, t_idx, h_idx = X[order], y[order], t_idx[order], h_idx[order]
    return Samples(X, y, t_idx, h_idx, int(dirty.sum()))


def feature_params(feature_set, windows, steps, cycle=None):
    """The params of ``feature_set`` for a history (None for v1); the
    cyclic set's carry each host's cycle (:func:`cycles.cyclic_params`).
    """
    if feature_set == 'v1':
        return None
    if feature_set == 'cyclic':
        return cycles.cyclic_params(windows, steps, cycle)
    return feature_sets.default_params(steps.window, steps.period, cycle)


def training_rows(feature_set, windows, steps, threshold, params, samples,
                  rows, stride=1, exclude_intervals=None, random_state=0):
    """``(X, y, rows)`` a risk model is fitted on: the training ``rows`` of
    ``samples`` (indices into it, for the targets), and for the cyclic
    set also their misaligned copy, in time order
    (:func:`with_misaligned_cycles`).
    """
    if feature_set == 'cyclic':
        return with_misaligned_cycles(
            windows, steps, threshold, params, samples, rows, stride,
            exclude_intervals, time_order=True, random_state=random_state)
    idx = np.flatnonzero(rows)
    return samples.X[idx], samples.y[idx], idx


#: The factor each host's cycle is scaled by in the misaligned copy of the
#: cyclic set's training rows is drawn uniformly from this range, fixed
#: before any result: a cycle that has changed by up to a half.
MISALIGN_RANGE = (0.5, 1.5)


def with_misaligned_cycles(windows, steps, threshold, params, samples,
                           rows, stride=1, exclude_intervals=None,
                           time_order=False, random_state=0):
    """The training rows of a cyclic model, and the same rows once more
    with each host's last cycle read at a wrong lag.

    A history where every cycle repeats teaches a model to trust the last
    cycle; when the load drifts (longer cycles, a shifted phase), that
    model keeps trusting a forecast that has stopped working. The copy
    (same labels and targets, each host's cycle scaled by a factor drawn
    from :data:`MISALIGN_RANGE`) shows it rows where the seasonal columns
    are wrong and their recent error says so, so that it learns to follow
    them only while they work. Held-out rows are never copied.

    :param samples: :class:`Samples` of ``windows`` with ``params``
    :param rows: boolean mask of the training rows of ``samples``
    :returns: ``(X, y, rows)``: the features, labels and the indices into
        ``samples`` of every returned row (for targets), in the samples'
        order (by time when ``time_order``)
    """
    rng = np.random.default_rng([int(random_state), 29])
    factors = rng.uniform(*MISALIGN_RANGE, size=len(windows.names))
    wrong = dict(params, host_cycles={
        n: feature_sets.host_cycle(params, n) * f
        for n, f in zip(windows.names, factors)})
    other = risk_samples(windows, steps, threshold, 'cyclic', wrong, stride,
                         exclude_intervals, time_order)
    if not (np.array_equal(other.t_index, samples.t_index) and
            np.array_equal(other.host_index, samples.host_index)):
        raise AssertionError('misaligned samples differ from the samples')
    idx = np.flatnonzero(rows)
    both = np.concatenate([idx, idx])
    X = np.concatenate([samples.X[idx], other.X[idx]])
    if time_order:
        order = np.argsort(samples.t_index[both], kind='stable')
        both, X = both[order], X[order]
    return X, samples.y[both], both


def destination_samples(windows, steps, stride=1):
    """Samples of the paper's fixed-host framing.

    X at time t is the concatenation, in ``windows.names`` order, of every
    host's features; y is the index of the host whose rolling-mean CPU
    (over the trigger period) peaks lowest in ``(t, t + horizon]``, i.e.
    the best migration destination in hindsight. Times where any host has
    no CPU in its window or no known future are dropped.

    :param steps: :class:`Steps` of the history
    :returns: X (n, n_hosts * n_features), y (n,), t_index (n,)
    """
    window_steps, period_steps, horizon_steps = steps
    cpu = feature_sets.metric_array(windows, 'cpu')
    n_hosts, n_steps = cpu.shape
    times = sample_times(n_steps, window_steps, horizon_steps, stride)
    n_feat = len(feature_sets.feature_names())
    if times.size == 0 or n_hosts == 0:
        return (np.empty((0, n_hosts * n_feat)), np.empty(0, dtype=int),
                np.empty(0, dtype=int))
    X = feature_sets.window_features(windows, window_steps, times)  # h,t,f
    peak = lab.future_peak(lab.rolling_mean(cpu, period_steps),
                           horizon_steps)[:, times - 1]  # (h, t)
    ok = ~np.isnan(X[..., 0]).any(axis=0) & ~np.isnan(peak).any(axis=0)
    X = np.transpose(X, (1, 0, 2)).reshape(times.size, n_hosts * n_feat)
    y = np.argmin(np.where(np.isnan(peak), np.inf, peak), axis=0)
    return X[ok], y[ok], times[ok]


def fit_risk_model(model_kind, X, y, future_peak, threshold, fparams,
                   random_state=0, max_samples=models.DEFAULT_MAX_SAMPLES,
                   cost_fp=models.DEFAULT_COST_FALSE_MIGRATION,
                   cost_fn=models.DEFAULT_COST_MISSED_FAILURE):
    """A risk model of ``model_kind`` fitted on (X, y).

    Gives each kind its constructor parameters (the SVM its subsample cap,
    the tree kinds the costs, gbt_peak the threshold and the columns of
    the level now) and gbt_peak its regression target ``future_peak``
    (:func:`labels.peak_targets` of the same rows; ignored by the others).
    """
    if model_kind == 'svm':
        params = {'max_samples': max_samples}
    elif model_kind == 'svm_nystroem':
        params = {}
    else:
        params = {'cost_fp': cost_fp, 'cost_fn': cost_fn}
    if model_kind in models.PEAK_TARGET_KINDS:
        names = feature_sets.feature_names(models.FEATURE_SET[model_kind],
                                           fparams)
        params.update(threshold=float(threshold),
                      now_column=names.index('cpu_period_mean'),
                      fallback_column=names.index('cpu_mean'))
    fit_kw = ({'future_peak': future_peak}
              if model_kind in models.PEAK_TARGET_KINDS else {})
    return models.make_model(model_kind, random_state=random_state,
                             **params).fit(X, y, **fit_kw)


def fit_peak_model(X, future_peak, random_state=0):
    """The regressor of the future peak CPU (:class:`peak_risk.
    PeakRegressor`) fitted on the same rows as the risk model.
    """
    return models.make_peak_model(random_state=random_state).fit(
        X, future_peak)


def fit_destination_model(X, y, hosts, random_state=0,
                          max_samples=models.DEFAULT_MAX_SAMPLES):
    """The paper's which-server classifier fitted on
    :func:`destination_samples` of ``hosts`` (the windows' names).
    """
    return models.make_model('fixed_hosts', random_state=random_state,
                             hosts=tuple(hosts),
                             max_samples=max_samples).fit(X, y)
