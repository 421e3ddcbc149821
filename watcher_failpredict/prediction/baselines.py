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

"""Forecasting baselines a learned risk model has to beat.

Each baseline is a pure function of a host's CPU history that returns a
*score* (a CPU level in percent: higher means more likely to fail) at the
same decision times, hosts and labels the models see. The functions take
the full history ``cpu`` (n_hosts, n_steps) and the sample coordinates
``(t_index, host_index)`` of :func:`pipeline.make_dataset`; decision
time ``t`` sees columns ``[t - window_steps, t)`` only, never the future.

* ``persistence``: the mean CPU over the trigger period now ("the host
  stays as it is");
* ``least_cpu_now``: the last CPU sample (what a least-CPU placement such
  as Watcher's ``workload_balance`` ranks by);
* ``mean_kstd``: mean + k x std of the window (a headroom rule);
* ``linear_trend``: least-squares line over the window, extrapolated to
  t + horizon (the load when a migration started now has completed);
* ``seasonal_naive``: the peak of the trigger-period mean within the
  horizon one load cycle ago (NaN without a full cycle of history; the
  score then falls back to persistence).

:class:`ScoreCalibrator` maps a score to a probability with a one-feature
logistic regression fitted on the training stretch only, so baselines get a
Brier score, a calibration curve and a cost-based decision threshold the
same way the models do.
"""

import warnings

import numpy as np
from sklearn import base as sk_base
from sklearn import linear_model
from sklearn.utils import validation

from watcher_failpredict.prediction import features as feat
from watcher_failpredict.prediction import labels as lab


def _windows(cpu, t_index, host_index, window_steps):
    """(n_samples, window_steps) CPU windows ending before each t."""
    cpu = np.asarray(cpu, dtype=float)
    t_index = np.asarray(t_index, dtype=int)
    host_index = np.asarray(host_index, dtype=int)
    if np.any(t_index < window_steps):
        raise ValueError(f'decision times must be >= window_steps '
                         f'({window_steps}); got {t_index.min()}')
    offs = np.arange(-window_steps, 0)
    return cpu[host_index[:, None], t_index[:, None] + offs[None, :]]


def persistence(cpu, t_index, host_index, period_steps):
    """Mean CPU over the trigger period ending at t (NaN-aware)."""
    rm = lab.rolling_mean(np.asarray(cpu, dtype=float), period_steps)
    return rm[np.asarray(host_index), np.asarray(t_index) - 1]


def least_cpu_now(cpu, t_index, host_index, window_steps):
    """The latest CPU sample in the window (NaN if the window is empty)."""
    return feat.nan_last(_windows(cpu, t_index, host_index, window_steps))


def mean_kstd(cpu, t_index, host_index, window_steps, k=2.0):
    """Mean + k x standard deviation of the window's CPU."""
    w = _windows(cpu, t_index, host_index, window_steps)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanmean(w, -1) + float(k) * np.nanstd(w, -1)


def linear_trend(cpu, t_index, host_index, window_steps, horizon_steps):
    """CPU at t + horizon by a least-squares line over the window.

    The line passes through the window's mean at its centre, sample
    ``(window_steps - 1) / 2``; the horizon's end is sample
    ``window_steps - 1 + horizon_steps``.
    """
    w = _windows(cpu, t_index, host_index, window_steps)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        mean = np.nanmean(w, -1)
    slope = feat.nan_slope(w)
    ahead = (window_steps - 1) / 2.0 + horizon_steps
    return mean + slope * ahead


def seasonal_naive(cpu, t_index, host_index, period_steps, horizon_steps,
                   cycle_steps):
    """Peak period-mean CPU in the horizon, one cycle earlier.

    ``cycle_steps`` is one cycle for every sample, or one per sample.
    Falls back to :func:`persistence` where the history is shorter than a
    cycle or the value one cycle ago is missing.
    """
    cpu = np.asarray(cpu, dtype=float)
    t_index = np.asarray(t_index, dtype=int)
    host_index = np.asarray(host_index, dtype=int)
    cycle_steps = np.broadcast_to(np.asarray(cycle_steps, dtype=int),
                                  t_index.shape)
    if cycle_steps.size and cycle_steps.min() < horizon_steps:
        raise ValueError(f'cycle_steps ({cycle_steps.min()}) must be >= '
                         f'horizon_steps ({horizon_steps})')
    rm = lab.rolling_mean(cpu, period_steps)
    peak = lab.future_peak(rm, horizon_steps)
    back = t_index - 1 - cycle_steps
    ok = back >= 0
    out = np.full(t_index.shape, np.nan)
    out[ok] = peak[host_index[ok], back[ok]]
    now = persistence(cpu, t_index, host_index, period_steps)
    return np.where(np.isnan(out), now, out)


def estimate_cycle_steps(values, min_lag, max_lag, min_correlation=0.5):
    """Each row's load cycle, from its autocorrelation.

    For a host whose cycle nobody declared (the testbed's servers each
    repeat their own pattern). ``values`` (n_hosts, n_steps) is the history
    with no gaps; the lag is searched in ``[min_lag, max_lag]``, clipped to
    half the history (so every lag is averaged over at least as many pairs
    as it spans) and to lags after the autocorrelation has first turned
    negative (a smooth load correlates with itself at short lags). The
    cycle is the first peak reaching 90 % of the best autocorrelation (a
    multiple of the cycle correlates as well as the cycle itself). A row
    whose best autocorrelation is below ``min_correlation`` has no usable
    cycle: 0.

    :returns: int array (n_hosts,), the cycle in steps or 0
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f'values must be (n_hosts, n_steps), got '
                         f'{values.shape}')
    if np.isnan(values).any():
        raise ValueError('values must have no missing samples')
    n = values.shape[1]
    lo, hi = max(int(min_lag), 1), min(int(max_lag), n // 2)
    out = np.zeros(values.shape[0], dtype=int)
    if hi < lo:
        return out
    x = values - values.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, size, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), size, axis=1)[:, :n]
    var = acov[:, :1]
    with np.errstate(invalid='ignore', divide='ignore'):
        # unbiased per lag: n / (n - lag), so long lags are not penalised
        acf = acov * (n / (n - np.arange(n)))[None, :] / var
    acf = np.where(var > 0, acf, np.nan)
    for i, full in enumerate(acf):
        # a smooth load correlates with itself at short lags: a cycle
        # starts after the autocorrelation has first turned negative
        neg = np.flatnonzero(full < 0)
        if not neg.size:
            continue
        row = full[max(lo, int(neg[0])):hi + 1]
        if not np.isfinite(row).any() or np.nanmax(row) < min_correlation:
            continue
        base = max(lo, int(neg[0]))
        # a periodic load correlates as well at every multiple of its
        # cycle: take the first peak that comes close to the best one
        near = np.nan_to_num(row, nan=-np.inf) >= 0.9 * np.nanmax(row)
        first = int(np.argmax(near))
        run_end = first + (int(np.argmin(near[first:])) if not
                           near[first:].all() else near.size - first)
        out[i] = base + first + int(np.argmax(row[first:run_end]))
    return out


BASELINES = ('persistence', 'least_cpu_now', 'mean_kstd', 'linear_trend',
             'seasonal_naive')


def score(name, cpu, t_index, host_index, window_steps, period_steps,
          horizon_steps, cycle_steps=None, k=2.0):
    """Score of baseline ``name`` at the given samples (dispatcher)."""
    if name == 'persistence':
        return persistence(cpu, t_index, host_index, period_steps)
    if name == 'least_cpu_now':
        return least_cpu_now(cpu, t_index, host_index, window_steps)
    if name == 'mean_kstd':
        return mean_kstd(cpu, t_index, host_index, window_steps, k)
    if name == 'linear_trend':
        return linear_trend(cpu, t_index, host_index, window_steps,
                            horizon_steps)
    if name == 'seasonal_naive':
        if not cycle_steps:
            raise ValueError('seasonal_naive needs cycle_steps')
        return seasonal_naive(cpu, t_index, host_index, period_steps,
                              horizon_steps, cycle_steps)
    raise ValueError(f'unknown baseline {name!r}; known: {BASELINES}')


class ScoreCalibrator(sk_base.ClassifierMixin, sk_base.BaseEstimator):
    """Probability of failure from a baseline's score (logistic, 1-D).

    A monotone map: it never changes a baseline's ranking (PR-AUC,
    ROC-AUC, destination choice), only makes its Brier score and decision
    threshold comparable with the models'. NaN scores get the training
    stretch's positive rate.
    """

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        X = np.asarray(X, dtype=float).reshape(len(y), -1)[:, :1]
        y = np.asarray(y, dtype=int)
        ok = ~np.isnan(X[:, 0])
        self.prior_ = float(np.mean(y)) if y.size else 0.0
        self.classes_ = np.array([0, 1])
        if np.unique(y[ok]).size < 2:
            self.model_ = None
            return self
        self.center_ = float(np.mean(X[ok, 0]))
        self.scale_ = float(np.std(X[ok, 0])) or 1.0
        self.model_ = linear_model.LogisticRegression(C=self.C).fit(
            (X[ok] - self.center_) / self.scale_, y[ok])
        return self

    def predict_proba(self, X):
        validation.check_is_fitted(self, 'classes_')
        X = np.asarray(X, dtype=float).reshape(-1, 1)
        p = np.full(X.shape[0], self.prior_)
        ok = ~np.isnan(X[:, 0])
        if self.model_ is not None and ok.any():
            p[ok] = self.model_.predict_proba(
                (X[ok] - self.center_) / self.scale_)[:, 1]
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
